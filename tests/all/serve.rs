//! `graphjit serve` from outside: a real service process on a real socket, two tenants, raw
//! HTTP/1.1. The contract of docs/service.md: keys, tenant isolation, ceilings, statuses,
//! deployments, metrics.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

const ACME_KEY: &str = "acme-0123456789abcdef-secret";
const BETA_KEY: &str = "beta-fedcba9876543210-secret";

fn key_hash(key: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_graphjit"))
        .arg("key-hash")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("graphjit runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{key}\n").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("key-hash");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

/// The service, stopped (SIGTERM) when dropped.
struct Service {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start() -> Service {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = format!(
        r#"listen = "127.0.0.1:{port}"
max_body_bytes = 200000

[tenants.acme]
key_hash = "{}"
fuel = 2000000000
max_concurrent_runs = 1
footprint_ceiling = {{ http = [{{ method = "GET", scheme = "http", host = "127.0.0.1", port = 9, path_prefix = "/api" }}] }}

[tenants.beta]
key_hash = "{}"
fuel = 5000000
max_graph_bytes = 4000
"#,
        key_hash(ACME_KEY),
        key_hash(BETA_KEY)
    );
    let path = dir.path().join("service.toml");
    std::fs::write(&path, config).expect("config");
    let log = std::fs::File::create(dir.path().join("service.log")).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_graphjit"))
        .args(["serve", "--config"])
        .arg(&path)
        .stderr(log)
        .spawn()
        .expect("graphjit serve starts");
    let service = Service {
        child,
        port,
        _dir: dir,
    };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok((200, _, _)) = service.try_request("GET", "/healthz", None, "") {
            return service;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the service did not become healthy");
}

impl Service {
    /// What the service logged so far (stderr: one JSON object per line).
    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("service.log")).unwrap_or_default()
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: &str,
    ) -> std::io::Result<(u16, String, String)> {
        try_request(self.port, method, path, key, body)
    }

    fn request(&self, method: &str, path: &str, key: Option<&str>, body: &str) -> (u16, Json) {
        request(self.port, method, path, key, body)
    }
}

/// One HTTP/1.1 request to the service on `port`: status, lower-cased head, body.
fn try_request(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_ascii_lowercase(), body.to_string()))
}

fn request(port: u16, method: &str, path: &str, key: Option<&str>, body: &str) -> (u16, Json) {
    let (status, _, body) = try_request(port, method, path, key, body).expect("request");
    (
        status,
        serde_json::from_str(&body).unwrap_or(Json::String(body)),
    )
}

fn example(name: &str) -> Json {
    let path = format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("example")).expect("json")
}

const ADD: &str = r#"{"version": 1, "nodes": [
    {"id": "a", "op": "input", "type": "i64"},
    {"id": "b", "op": "input", "type": "i64", "default": 1},
    {"id": "s", "op": "add", "args": ["a", "b"]}], "outputs": {"sum": "s"}}"#;

#[test]
fn the_service_runs_graphs_per_tenant_within_their_ceilings() {
    let hash = key_hash(ACME_KEY);
    assert!(
        hash.starts_with("blake3:") && hash.len() == 7 + 64,
        "{hash}"
    );
    let service = start();

    // Keys.
    let run = json!({"graph": example("hello.json")}).to_string();
    let (status, body) = service.request("POST", "/v1/run", None, &run);
    assert_eq!(
        (status, &body["error"]["kind"]),
        (401, &json!("unauthorized"))
    );
    let (status, _) = service.request("POST", "/v1/run", Some("not-a-key"), &run);
    assert_eq!(status, 401);

    // A run answers what `graphjit run --json` prints.
    let (status, body) = service.request("POST", "/v1/run", Some(ACME_KEY), &run);
    assert_eq!(status, 200, "{body}");
    let cli = Command::new(env!("CARGO_BIN_EXE_graphjit"))
        .args(["run", "--json", "--no-disk-cache"])
        .arg(format!(
            "{}/../examples/hello.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .output()
        .expect("graphjit run");
    let cli: Json = serde_json::from_slice(&cli.stdout).expect("json");
    assert_eq!(body["output"], cli["output"]);
    assert!(body["stats"]["fuel_used"].as_u64().is_some_and(|f| f > 0));

    // Inputs, typed errors and their statuses.
    let add: Json = serde_json::from_str(ADD).expect("json");
    let with = |inputs: Json| json!({"graph": add, "inputs": inputs}).to_string();
    let (status, body) =
        service.request("POST", "/v1/run", Some(ACME_KEY), &with(json!({"a": 41})));
    assert_eq!((status, &body["output"]["sum"]), (200, &json!(42)));
    let (status, body) =
        service.request("POST", "/v1/run", Some(ACME_KEY), &with(json!({"a": "x"})));
    assert_eq!(
        (status, &body["error"]["kind"]),
        (400, &json!("invalid_input"))
    );
    let (status, body) = service.request(
        "POST",
        "/v1/run",
        Some(ACME_KEY),
        &with(json!({"a": 9223372036854775807_i64})),
    );
    assert_eq!(
        (status, &body["error"]["kind"]),
        (422, &json!("overflow")),
        "{body}"
    );
    let (status, body) = service.request(
        "POST",
        "/v1/run",
        Some(ACME_KEY),
        r#"{"graph": {"version": 1}}"#,
    );
    assert_eq!(
        (status, &body["error"]["kind"]),
        (400, &json!("invalid_graph")),
        "{body}"
    );
    let (status, body) = service.request("POST", "/v1/run", Some(ACME_KEY), "not json");
    assert_eq!(
        (status, &body["error"]["kind"]),
        (400, &json!("invalid_request"))
    );
    let big = format!("{{\"graph\": \"{}\"}}", "x".repeat(300_000));
    let (status, body) = service.request("POST", "/v1/run", Some(ACME_KEY), &big);
    assert_eq!(
        (status, &body["error"]["kind"]),
        (413, &json!("body_too_large")),
        "{body}"
    );

    // An input given twice is refused, never last-one-wins.
    let (status, body) = service.request(
        "POST",
        "/v1/run",
        Some(ACME_KEY),
        &format!(r#"{{"graph": {ADD}, "inputs": {{"a": 1, "a": 2}}}}"#),
    );
    assert_eq!(
        (status, &body["error"]["kind"]),
        (400, &json!("invalid_input")),
        "{body}"
    );

    // Ceilings: a request may lower them, not raise them.
    let bomb = |fuel: u64| json!({"graph": example("fuel-bomb.json"), "fuel": fuel}).to_string();
    let (status, body) = service.request("POST", "/v1/run", Some(ACME_KEY), &bomb(1_000_000));
    assert_eq!(
        (status, &body["error"]["kind"]),
        (422, &json!("fuel_exhausted")),
        "{body}"
    );
    let (status, body) = service.request("POST", "/v1/run", Some(BETA_KEY), &bomb(10_000_000));
    assert_eq!(
        (status, &body["error"]["kind"]),
        (403, &json!("ceiling_exceeded")),
        "{body}"
    );
    // beta's graphs are at most 4,000 bytes.
    let mut padded: Json = serde_json::from_str(ADD).expect("json");
    padded["name"] = json!("x".repeat(5000));
    let (status, body) = service.request(
        "POST",
        "/v1/run",
        Some(BETA_KEY),
        &json!({ "graph": padded }).to_string(),
    );
    assert_eq!(
        (status, &body["error"]["kind"]),
        (403, &json!("ceiling_exceeded")),
        "{body}"
    );

    // Footprint ceilings: acme may GET 127.0.0.1:9/api only; beta nothing.
    let fetch = |path: &str| {
        json!({"graph": {"version": 1, "nodes": [
            {"id": "r", "op": "http", "method": "GET", "url": format!("http://127.0.0.1:9{path}")}],
            "outputs": {"r": "r"},
            "footprint": {"http": [{"method": "GET", "scheme": "http", "host": "127.0.0.1", "port": 9, "path_prefix": path}]}}})
        .to_string()
    };
    let (status, body) = service.request("POST", "/v1/run", Some(ACME_KEY), &fetch("/admin"));
    assert_eq!(
        (status, &body["error"]["kind"]),
        (403, &json!("footprint_denied")),
        "{body}"
    );
    let (status, body) = service.request("POST", "/v1/run", Some(BETA_KEY), &fetch("/api"));
    assert_eq!(
        (status, &body["error"]["kind"]),
        (403, &json!("footprint_denied")),
        "{body}"
    );
    // Within the ceiling it runs, and the host's egress policy (loopback refused) denies the
    // call at run time: 422, not the 403 of the ceiling.
    let (status, body) = service.request("POST", "/v1/run", Some(ACME_KEY), &fetch("/api/v1"));
    assert_eq!(
        (status, &body["error"]["kind"]),
        (422, &json!("footprint_denied")),
        "{body}"
    );

    // Deployments belong to their tenant.
    let (status, body) = service.request("PUT", "/v1/deployments/adder", Some(ACME_KEY), ADD);
    assert_eq!((status, &body["version"]), (200, &json!(1)), "{body}");
    let invoke = json!({"inputs": {"a": 1, "b": 2}}).to_string();
    let (status, body) = service.request(
        "POST",
        "/v1/deployments/adder/invoke",
        Some(ACME_KEY),
        &invoke,
    );
    assert_eq!((status, &body["output"]["sum"]), (200, &json!(3)), "{body}");
    for (method, path) in [
        ("POST", "/v1/deployments/adder/invoke"),
        ("DELETE", "/v1/deployments/adder"),
    ] {
        let (status, body) = service.request(method, path, Some(BETA_KEY), &invoke);
        assert_eq!(
            (status, &body["error"]["kind"]),
            (404, &json!("unknown_deployment")),
            "{method} {path}"
        );
    }
    let (status, body) = service.request(
        "POST",
        "/v1/deployments/adder/invoke",
        Some(ACME_KEY),
        &json!({"graph": add, "inputs": {"a": 1}}).to_string(),
    );
    assert_eq!(
        (status, &body["error"]["kind"]),
        (400, &json!("invalid_request")),
        "{body}"
    );
    // beta's own `adder` is another deployment; acme's is untouched by it.
    let (status, _) = service.request("PUT", "/v1/deployments/adder", Some(BETA_KEY), ADD);
    assert_eq!(status, 200);
    let (status, _) = service.request("DELETE", "/v1/deployments/adder", Some(BETA_KEY), "");
    assert_eq!(status, 204);
    let (status, body) = service.request(
        "POST",
        "/v1/deployments/adder/invoke",
        Some(ACME_KEY),
        &invoke,
    );
    assert_eq!((status, &body["output"]["sum"]), (200, &json!(3)));
    let (status, body) = service.request("PUT", "/v1/deployments/adder", Some(ACME_KEY), ADD);
    assert_eq!(
        (status, &body["version"], &body["replaced"]),
        (200, &json!(2), &json!(1))
    );
    let (status, _) = service.request("DELETE", "/v1/deployments/adder", Some(ACME_KEY), "");
    assert_eq!(status, 204);
    let (status, _) = service.request(
        "POST",
        "/v1/deployments/adder/invoke",
        Some(ACME_KEY),
        &invoke,
    );
    assert_eq!(status, 404);
    let (status, _) = service.request("PUT", "/v1/deployments/no%20spaces", Some(ACME_KEY), ADD);
    assert_eq!(status, 400);

    // Metrics, in Prometheus text.
    let (status, head, text) = service
        .try_request("GET", "/metrics", None, "")
        .expect("metrics");
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    assert!(
        text.contains(r#"graphjit_runs_total{tenant="acme",outcome="ok"}"#),
        "{text}"
    );
    assert!(text.contains(r#"outcome="fuel_exhausted""#), "{text}");
    assert!(
        text.contains(r#"graphjit_refused_total{tenant="beta",outcome="fuel"}"#),
        "{text}"
    );
    assert!(
        !text.contains(ACME_KEY) && !text.contains("adder"),
        "{text}"
    );

    // docs/openapi.json: every operation it lists is served, and answers a status it lists.
    let spec: Json = serde_json::from_str(include_str!("../../docs/openapi.json")).expect("json");
    let paths = spec["paths"].as_object().expect("paths");
    for (path, item) in paths {
        let url = path.replace("{name}", "undocumented");
        for method in ["get", "put", "post", "delete"] {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let (status, _, _) = service
                .try_request(&method.to_uppercase(), &url, Some(ACME_KEY), "{}")
                .expect("request");
            let documented = operation["responses"]
                .as_object()
                .expect("responses")
                .contains_key(&status.to_string());
            assert!(
                documented,
                "{method} {path} answered {status}, not in docs/openapi.json"
            );
        }
    }

    // Structured logs: JSON lines naming tenants and outcomes, never a key.
    let log = service.log();
    let lines: Vec<Json> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["tenant"] == "acme" && l["fields"]["outcome"] == "fuel_exhausted"),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["tenant"] == "beta" && l["fields"]["reason"] == "fuel"),
        "{log}"
    );
    assert!(!log.contains(ACME_KEY) && !log.contains(BETA_KEY), "{log}");
}

#[test]
fn a_tenant_over_its_concurrent_runs_gets_429_with_retry_after() {
    let service = start();
    // acme may run one graph at a time; this one spins for about a second.
    let slow = json!({"graph": {"version": 1, "nodes": [
        {"id": "x", "op": "const", "value": 0},
        {"id": "l", "op": "loop", "args": ["x"], "iterations": 300000000,
         "body": {"params": ["i", "s"], "nodes": [{"id": "t", "op": "add", "args": ["s", "i"]}], "results": ["t"]}}],
        "outputs": {"l": "l"}}, "deadline_ms": 1500})
    .to_string();
    let port = service.port;
    let first = std::thread::spawn({
        let slow = slow.clone();
        move || request(port, "POST", "/v1/run", Some(ACME_KEY), &slow).0
    });
    // Once the first run is in progress (the gauge says so), a second one is refused.
    let start = Instant::now();
    loop {
        let (_, _, text) = service
            .try_request("GET", "/metrics", None, "")
            .expect("metrics");
        if text.contains(r#"graphjit_in_flight_runs{tenant="acme"} 1"#) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30) && !first.is_finished(),
            "the first run never showed as in flight: {text}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (status, head, _) = service
        .try_request("POST", "/v1/run", Some(ACME_KEY), &slow)
        .expect("request");
    assert_eq!(status, 429, "{head}");
    assert!(head.contains("retry-after: 1"), "{head}");
    let first = first.join().expect("first run");
    assert!(matches!(first, 200 | 422 | 504), "{first}");
    // beta has its own slots: not blocked by acme.
    let (status, _) = service.request(
        "POST",
        "/v1/run",
        Some(BETA_KEY),
        &json!({"graph": example("hello.json")}).to_string(),
    );
    assert_eq!(status, 200);
}
