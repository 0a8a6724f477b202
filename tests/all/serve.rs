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
    start_with("", "")
}

/// The service with two tenants, `acme` and `beta`; `top` adds service settings and
/// `tenants` more `[tenants.NAME]` tables.
fn start_with(top: &str, tenants: &str) -> Service {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = format!(
        r#"listen = "127.0.0.1:{port}"
max_body_bytes = 200000
{top}

[tenants.acme]
key_hash = "{}"
fuel = 2000000000
max_concurrent_runs = 1
footprint_ceiling = {{ http = [{{ method = "GET", scheme = "http", host = "127.0.0.1", port = 9, path_prefix = "/api" }}] }}

[tenants.beta]
key_hash = "{}"
fuel = 5000000
max_graph_bytes = 4000

{tenants}
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
    /// Sends SIGTERM.
    fn terminate(&self) {
        let term = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(term.success());
    }

    /// Waits at most `limit` for the process to exit, and asserts it exited cleanly.
    fn exits_cleanly_within(&mut self, limit: Duration) {
        let start = Instant::now();
        let exit = loop {
            if let Some(exit) = self.child.try_wait().expect("wait") {
                break exit;
            }
            assert!(start.elapsed() < limit, "the service did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(exit.success(), "{exit}");
    }

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
    // Per deployment: acme's two invocations answered; beta's `adder`, undeployed, left no
    // series; undeploying acme's removes its series too (and an invocation of a name not
    // deployed makes none, so the label set stays bounded).
    let metrics = || {
        service
            .try_request("GET", "/metrics", None, "")
            .expect("metrics")
            .2
    };
    let acme_ok =
        r#"graphjit_deployment_invocations_total{tenant="acme",deployment="adder",outcome="ok"} 2"#;
    let text = metrics();
    assert!(text.contains(acme_ok), "{text}");
    assert!(
        !text.contains(r#"tenant="beta",deployment="adder""#),
        "{text}"
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
    let text = metrics();
    assert!(!text.contains(r#"deployment="adder""#), "{text}");
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

/// acme's run of a graph that spins for about a second, on a thread of its own; returns once
/// the service counts it in flight, with the request's body and the thread (its status).
fn acme_slow_run_in_flight(service: &Service) -> (String, std::thread::JoinHandle<u16>) {
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
    let start = Instant::now();
    loop {
        let (_, _, text) = service
            .try_request("GET", "/metrics", None, "")
            .expect("metrics");
        if text.contains(r#"graphjit_in_flight_runs{tenant="acme"} 1"#) {
            return (slow, first);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30) && !first.is_finished(),
            "the first run never showed as in flight: {text}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_tenant_over_its_concurrent_runs_gets_429_with_retry_after() {
    let service = start();
    // acme may run one graph at a time: once its first run is in progress, a second one is
    // refused.
    let (slow, first) = acme_slow_run_in_flight(&service);
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

#[test]
fn a_full_instance_pool_is_429_for_every_tenant() {
    // One instance slot for the whole service: while acme's run holds it, beta (whose own
    // slots are free) is refused before anything is instantiated, and served after.
    let service = start_with("max_instances = 1", "");
    let (_, first) = acme_slow_run_in_flight(&service);
    let (_, _, text) = service
        .try_request("GET", "/metrics", None, "")
        .expect("metrics");
    assert!(text.contains("graphjit_instance_slots 1\n"), "{text}");
    assert!(
        text.contains("graphjit_instance_slots_in_use 1\n"),
        "{text}"
    );
    let hello = json!({"graph": example("hello.json")}).to_string();
    let (status, head, body) = service
        .try_request("POST", "/v1/run", Some(BETA_KEY), &hello)
        .expect("request");
    assert_eq!(status, 429, "{head}{body}");
    assert!(head.contains("retry-after: 1"), "{head}");
    let body: Json = serde_json::from_str(&body).expect("json");
    assert_eq!(body["error"]["kind"], "instance_pool_full", "{body}");
    let first = first.join().expect("first run");
    assert!(matches!(first, 200 | 422 | 504), "{first}");
    let (status, body) = service.request("POST", "/v1/run", Some(BETA_KEY), &hello);
    assert_eq!(status, 200, "{body}");
}

const GAMMA_KEY: &str = "gamma-00112233445566778899-secret";

/// ADD with a constant of its own: a graph no other test (or request) has compiled.
fn fresh_graph(tag: &str) -> Json {
    let n = u64::from_str_radix(&blake3_hex(tag)[..12], 16).expect("hex") % 1_000_000;
    json!({"version": 1, "nodes": [
        {"id": "a", "op": "input", "type": "i64", "default": 1},
        {"id": "k", "op": "const", "value": n},
        {"id": "s", "op": "add", "args": ["a", "k"]}], "outputs": {"sum": "s"}})
}

fn blake3_hex(text: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    blake3::hash(format!("{text}-{nanos}-{}", std::process::id()).as_bytes())
        .to_hex()
        .to_string()
}

#[test]
fn a_compile_past_its_sandbox_is_resource_exceeded_and_the_service_stays_up() {
    // gamma's rustc may map 24 MiB: far less than rustc needs (about 110 MB for the smallest
    // guest), so its every compile reaches the sandbox's memory limit (or hangs into its
    // timeout): both are a limit.
    let service = start_with(
        "",
        &format!(
            "[tenants.gamma]\nkey_hash = \"{}\"\ncompile_memory = 25165824\ncompile_timeout_ms = 5000\n",
            key_hash(GAMMA_KEY)
        ),
    );
    let graph = fresh_graph("sandbox");
    let (status, answer) = service.request(
        "POST",
        "/v1/run",
        Some(GAMMA_KEY),
        &json!({"graph": graph}).to_string(),
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["kind"], "resource_exceeded", "{answer}");
    assert_eq!(answer["error"]["stage"], "compile", "{answer}");
    // Deploying is compiled in the same sandbox.
    let (status, answer) = service.request(
        "PUT",
        "/v1/deployments/starved",
        Some(GAMMA_KEY),
        &graph.to_string(),
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["kind"], "resource_exceeded", "{answer}");
    // The service is up, and the failure was gamma's alone: the same graph compiles for acme.
    assert_eq!(
        service
            .try_request("GET", "/healthz", None, "")
            .expect("up")
            .0,
        200
    );
    let (status, answer) = service.request(
        "POST",
        "/v1/run",
        Some(ACME_KEY),
        &json!({"graph": graph}).to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stats"]["cache"], "miss", "{answer}");
}

#[test]
fn a_tenant_past_its_compile_budget_gets_429_until_it_refills() {
    // gamma may compile for 1 ms a minute: the first compile is admitted (there is budget
    // left) and overdraws it; the next graph that needs rustc waits for the refill.
    let service = start_with(
        "",
        &format!(
            "[tenants.gamma]\nkey_hash = \"{}\"\ncompile_ms_per_minute = 1\n",
            key_hash(GAMMA_KEY)
        ),
    );
    let first = json!({"graph": fresh_graph("budget-1")}).to_string();
    let (status, answer) = service.request("POST", "/v1/run", Some(GAMMA_KEY), &first);
    assert_eq!(status, 200, "{answer}");
    let second = json!({"graph": fresh_graph("budget-2")}).to_string();
    let (status, head, body) = service
        .try_request("POST", "/v1/run", Some(GAMMA_KEY), &second)
        .expect("request");
    assert_eq!(status, 429, "{head}{body}");
    let retry: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("retry-after: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("a Retry-After header");
    assert!(retry >= 1, "{head}");
    let refusal: Json = serde_json::from_str(&body).expect("json");
    assert_eq!(refusal["error"]["kind"], "quota_exceeded", "{body}");
    // A graph already compiled needs no budget; other tenants have their own.
    let (status, answer) = service.request("POST", "/v1/run", Some(GAMMA_KEY), &first);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stats"]["cache"], "memory", "{answer}");
    let (status, answer) = service.request("POST", "/v1/run", Some(ACME_KEY), &second);
    assert_eq!(status, 200, "{answer}");
    let (_, _, metrics) = service
        .try_request("GET", "/metrics", None, "")
        .expect("metrics");
    assert!(
        metrics.contains(r#"graphjit_refused_total{tenant="gamma",outcome="compile_budget"} 1"#),
        "{metrics}"
    );
}

#[test]
fn sigterm_drains_the_runs_in_flight_and_refuses_new_requests_with_503() {
    let mut service = start_with(
        "drain_timeout_ms = 20000",
        &format!(
            "[tenants.gamma]\nkey_hash = \"{}\"\nfuel = 1000000000000\n",
            key_hash(GAMMA_KEY)
        ),
    );
    // About three seconds of loop (or its deadline): long enough to be in flight at SIGTERM.
    let slow = json!({"graph": {"version": 1, "nodes": [
        {"id": "x", "op": "const", "value": 0},
        {"id": "l", "op": "loop", "args": ["x"], "iterations": 4000000000u64,
         "body": {"params": ["i", "s"], "nodes": [{"id": "t", "op": "add", "args": ["s", "i"]}], "results": ["t"]}}],
        "outputs": {"l": "l"}}, "deadline_ms": 2500})
    .to_string();
    let port = service.port;
    let first = std::thread::spawn(move || {
        try_request(port, "POST", "/v1/run", Some(GAMMA_KEY), &slow).expect("an answer")
    });
    let start = Instant::now();
    loop {
        let (_, _, text) = service
            .try_request("GET", "/metrics", None, "")
            .expect("metrics");
        if text.contains(r#"graphjit_in_flight_runs{tenant="gamma"} 1"#) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never in flight");
        std::thread::sleep(Duration::from_millis(10));
    }
    service.terminate();
    // The drain has begun once readiness says so; the run is still in flight.
    let start = Instant::now();
    loop {
        let (status, _, _) = service
            .try_request("GET", "/readyz", None, "")
            .expect("readyz");
        if status == 503 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never draining");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !first.is_finished(),
        "the slow run ended before the drain could be seen"
    );
    let (status, head, body) = service
        .try_request(
            "POST",
            "/v1/run",
            Some(ACME_KEY),
            &json!({"graph": example("hello.json")}).to_string(),
        )
        .expect("a refusal");
    assert_eq!(status, 503, "{head}{body}");
    assert!(head.contains("retry-after: 1"), "{head}");
    let refusal: Json = serde_json::from_str(&body).expect("json");
    assert_eq!(refusal["error"]["kind"], "draining", "{body}");
    // The run in flight is answered in full, and then the service exits cleanly.
    let (status, _, body) = first.join().expect("first");
    assert!(matches!(status, 200 | 504), "{status} {body}");
    let answer: Json = serde_json::from_str(&body).expect("a JSON answer");
    assert!(
        answer.get("output").is_some() || answer.get("error").is_some(),
        "{answer}"
    );
    service.exits_cleanly_within(Duration::from_secs(20));
    let log = service.log();
    assert!(log.contains("drained; stopping"), "{log}");
}

#[test]
fn each_tenant_has_its_own_database_memo_and_maybe_cache_partition() {
    use graphjit::testing::postgres::TestPostgres;
    let pg = TestPostgres::start().unwrap_or_else(|e| panic!("PostgreSQL is needed: {e}"));
    let url = |db: &str| {
        let base = pg.url();
        let server = base
            .rsplit_once('/')
            .map_or(base.as_str(), |(server, _)| server);
        format!("{server}/{db}")
    };
    for db in ["delta_db", "gamma_db"] {
        crate::support::pg_execute(&pg.url(), &format!("CREATE DATABASE {db}"));
    }
    crate::support::pg_execute(
        &url("delta_db"),
        "CREATE TABLE orders (id int); INSERT INTO orders VALUES (1), (2), (3);",
    );
    crate::support::pg_execute(
        &url("gamma_db"),
        "CREATE TABLE orders (id int); INSERT INTO orders VALUES (1), (2);",
    );
    const DELTA_KEY: &str = "delta-0123456789abcdef-secret";
    const EPSILON_KEY: &str = "epsilon-0123456789abcdef-secret";
    let ceiling = r#"footprint_ceiling = { db = { read = ["orders"] } }"#;
    let service = start_with(
        "",
        &format!(
            "[tenants.delta]\nkey_hash = \"{}\"\n{ceiling}\ndatabase_url = \"{}\"\n\n\
             [tenants.gamma]\nkey_hash = \"{}\"\n{ceiling}\ndatabase_url = \"{}\"\npartition_cache = true\n\n\
             [tenants.epsilon]\nkey_hash = \"{}\"\n{ceiling}\n",
            key_hash(DELTA_KEY),
            url("delta_db"),
            key_hash(GAMMA_KEY),
            url("gamma_db"),
            key_hash(EPSILON_KEY),
        ),
    );
    // A count behind a `cached` region: the memo must not carry one tenant's answer to
    // another. The constant keeps this graph apart from other tests' compiles.
    let tag = u64::from_str_radix(&blake3_hex("db")[..8], 16).expect("hex");
    let graph = json!({"version": 2, "nodes": [
        {"id": "x", "op": "const", "value": tag},
        {"id": "c", "op": "cached", "key": "count-v1", "ttl_ms": 60000, "args": ["x"],
         "body": {"params": ["z"], "nodes": [
            {"id": "n", "op": "db_query", "sql": "SELECT count(*) + $1 FROM orders",
             "args": ["z"], "type": "i64"}], "result": "n"}},
        {"id": "k", "op": "const", "value": tag},
        {"id": "r", "op": "sub", "args": ["c", "k"]}],
        "outputs": {"n": "r"}, "footprint": {"db": {"read": ["orders"]}}});
    let body = json!({"graph": graph}).to_string();
    let run = |key: &str| service.request("POST", "/v1/run", Some(key), &body);
    let (status, delta) = run(DELTA_KEY);
    assert_eq!(status, 200, "{delta}");
    assert_eq!(delta["output"]["n"], 3, "{delta}");
    assert_eq!(delta["stats"]["cache"], "miss", "{delta}");
    // gamma: its own database, its own memo (a miss, not delta's 3), and its own cache
    // partition (a compile of its own, not delta's artifact).
    let (status, gamma) = run(GAMMA_KEY);
    assert_eq!(status, 200, "{gamma}");
    assert_eq!(gamma["output"]["n"], 2, "{gamma}");
    assert_eq!(gamma["stats"]["cache"], "miss", "{gamma}");
    assert_eq!(gamma["stats"]["memo"]["misses"], 1, "{gamma}");
    assert_ne!(
        gamma["stats"]["key"], delta["stats"]["key"],
        "partitioned keys"
    );
    // Each memo then serves its own tenant's answer.
    let (_, again) = run(DELTA_KEY);
    assert_eq!(again["output"]["n"], 3, "{again}");
    assert_eq!(again["stats"]["memo"]["hits"], 1, "{again}");
    let (_, again) = run(GAMMA_KEY);
    assert_eq!(again["output"]["n"], 2, "{again}");
    assert_eq!(again["stats"]["memo"]["hits"], 1, "{again}");
    // epsilon shares the cache (delta's artifact serves it) but not delta's database (it has
    // none) nor delta's memo (which would have answered 3).
    let (status, epsilon) = run(EPSILON_KEY);
    assert_eq!(status, 422, "{epsilon}");
    assert_eq!(epsilon["error"]["kind"], "effect_failed", "{epsilon}");
    let message = epsilon["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("no database configured"), "{epsilon}");
}

#[test]
fn a_tenant_holds_at_most_max_deployments() {
    // Each deployment pins an artifact in memory: the count bounds what one tenant keeps.
    let service = start_with(
        "",
        &format!(
            "[tenants.gamma]\nkey_hash = \"{}\"\nmax_deployments = 1\n",
            key_hash(GAMMA_KEY)
        ),
    );
    let put = |name: &str| {
        service.request(
            "PUT",
            &format!("/v1/deployments/{name}"),
            Some(GAMMA_KEY),
            ADD,
        )
    };
    assert_eq!(put("one").0, 200);
    let (status, refusal) = put("two");
    assert_eq!(status, 403, "{refusal}");
    assert_eq!(refusal["error"]["kind"], "ceiling_exceeded", "{refusal}");
    // Replacing the one it holds is allowed; after an undeploy there is room again.
    let (status, replaced) = put("one");
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["version"], 2, "{replaced}");
    let (status, _) = service.request("DELETE", "/v1/deployments/one", Some(GAMMA_KEY), "");
    assert_eq!(status, 204);
    assert_eq!(put("two").0, 200);
    // Other tenants have their own count.
    assert_eq!(
        service
            .request("PUT", "/v1/deployments/one", Some(ACME_KEY), ADD)
            .0,
        200
    );
}

#[test]
fn a_client_that_sends_half_a_request_head_is_cut_off_and_does_not_hold_the_shutdown() {
    let mut service = start_with("header_timeout_ms = 500\ndrain_timeout_ms = 1000", "");
    // A client that starts a request head and never finishes it (slowloris).
    let half = |port: u16| {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connects");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: graphjit\r\n")
            .expect("writes");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream
    };
    let mut slow = half(service.port);
    let start = Instant::now();
    let mut buf = [0u8; 512];
    let read = slow.read(&mut buf);
    let waited = start.elapsed();
    if let Err(e) = &read {
        assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the connection was still open after {waited:?}"
        );
    }
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(5),
        "cut off after {waited:?}: {read:?}"
    );
    // Everyone else is still served.
    let (status, _) = service.request("GET", "/healthz", None, "");
    assert_eq!(status, 200);
    // A half head still arriving at SIGTERM does not keep the service from stopping.
    let _held = half(service.port);
    service.terminate();
    service.exits_cleanly_within(Duration::from_secs(5));
}

#[test]
fn a_graph_with_named_dims_runs_once_per_shape_with_the_shape_in_its_key() {
    let service = start();
    let graph: Json = serde_json::from_str(
        r#"{"version": 2, "nodes": [
            {"id": "x", "op": "input", "type": {"tensor": ["batch", 2]}},
            {"id": "s", "op": "sum", "args": ["x"], "axis": 1}
        ], "outputs": {"s": "s"}}"#,
    )
    .expect("json");
    let with = |x: Json| json!({"graph": graph, "inputs": {"x": x}}).to_string();
    let (status, two) = service.request(
        "POST",
        "/v1/run",
        Some(ACME_KEY),
        &with(json!([[1, 2], [3, 4]])),
    );
    assert_eq!(status, 200, "{two}");
    assert_eq!(
        two["output"]["s"],
        json!({"shape": [2], "data": [3.0, 7.0]})
    );
    let (status, three) = service.request(
        "POST",
        "/v1/run",
        Some(ACME_KEY),
        &with(json!([[1, 2], [3, 4], [5, 6]])),
    );
    assert_eq!(status, 200, "{three}");
    assert_eq!(three["output"]["s"]["shape"], json!([3]));
    assert_ne!(
        two["stats"]["key"], three["stats"]["key"],
        "one key per shape"
    );
    let (status, again) = service.request(
        "POST",
        "/v1/run",
        Some(ACME_KEY),
        &with(json!([[0, 0], [1, 1]])),
    );
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["stats"]["key"], two["stats"]["key"]);
    assert_eq!(again["stats"]["cache"], "memory", "{again}");
    // A shape that does not fit the declared one is the client's error, naming the input.
    let (status, bad) =
        service.request("POST", "/v1/run", Some(ACME_KEY), &with(json!([[1, 2, 3]])));
    assert_eq!(
        (status, &bad["error"]["kind"]),
        (400, &json!("invalid_input")),
        "{bad}"
    );
    assert_eq!(bad["error"]["node"], "x");
    // Deployments do not specialize yet: a generic graph is refused, typed, not half-deployed.
    let (status, body) = service.request(
        "PUT",
        "/v1/deployments/batched",
        Some(ACME_KEY),
        &graph.to_string(),
    );
    assert_eq!(
        (status, &body["error"]["kind"]),
        (400, &json!("invalid_input")),
        "{body}"
    );
}
