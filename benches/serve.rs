//! `graphjit serve` under load (issue 13; results and the command in `benches/RESULTS.md`).
//! Not criterion: a bounded client of its own (HTTP/1.1 keep-alive over `std::net`, one thread
//! per connection) that records every request's latency.
//!
//! - `invoke`: a deployed tiny graph invoked over HTTP by `CONNECTIONS` connections for
//!   `SECS` seconds: requests/s, p50, p99, errors;
//! - `bare`: the same client against a bare axum handler in this process that does only what
//!   the sandbox must (`testing::baselines::BareInstance`: fresh store, instantiate, call,
//!   the same component and engine configuration): the ceiling of the HTTP stack and the
//!   sandbox without graphjit's layers;
//! - `noisy`: tenant B invokes its deployment at a steady rate (one connection, one request
//!   every 5 ms) alone, then while tenant A floods the same service with fuel bombs, memory
//!   bombs and distinct graphs that each need rustc: B's p50/p99 and errors in both phases,
//!   and how A was answered (by status).
//!
//! Run: `cargo bench -p graphjit --bench serve` (`GRAPHJIT_SERVE_BENCH_SECS` sets each phase's
//! length, default 5). Everything shares this machine's cores: the client, the service and
//! the bare server; compare the two servers' figures from one run only.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use graphjit::testing::baselines::BareInstance;
use graphjit::{Graph, Host, HostConfig};

const A_KEY: &str = "tenant-a-0123456789abcdef";
const B_KEY: &str = "tenant-b-0123456789abcdef";
const CONNECTIONS: usize = 4;

const TINY: &str = r#"{"version": 1, "nodes": [
    {"id": "a", "op": "input", "type": "i64", "default": 20},
    {"id": "b", "op": "const", "value": 22},
    {"id": "s", "op": "add", "args": ["a", "b"]}], "outputs": {"sum": "s"}}"#;

fn secs() -> Duration {
    let secs = std::env::var("GRAPHJIT_SERVE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(secs)
}

fn key_hash(key: &str) -> String {
    format!("blake3:{}", blake3::hash(key.as_bytes()).to_hex())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// The service process, stopped when dropped (its config directory with it).
struct Service {
    child: Child,
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

fn start_service(port: u16) -> Service {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\ndrain_timeout_ms = 1000\n\n\
         [tenants.a]\nkey_hash = \"{}\"\nmax_concurrent_runs = 2\nmax_concurrent_compiles = 1\n\
         memory = 67108864\n\n\
         [tenants.b]\nkey_hash = \"{}\"\nmax_concurrent_runs = 64\n",
        key_hash(A_KEY),
        key_hash(B_KEY)
    );
    let path = dir.path().join("service.toml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("config: {e}"));
    let child = Command::new(env!("CARGO_BIN_EXE_graphjit"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("GRAPHJIT_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("graphjit serve: {e}"));
    let service = Service { child, _dir: dir };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(mut c) = Client::connect(port)
            && c.send("GET", "/healthz", None, "")
                .is_ok_and(|r| r.0 == 200)
        {
            return service;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the service did not start");
}

/// One keep-alive HTTP/1.1 connection.
struct Client {
    reader: BufReader<TcpStream>,
    port: u16,
}

impl Client {
    fn connect(port: u16) -> std::io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Client {
            reader: BufReader::new(stream),
            port,
        })
    }

    /// Sends one request and reads the whole answer: its status and body length. Reconnects
    /// once if the server closed the connection.
    fn send(
        &mut self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: &str,
    ) -> std::io::Result<(u16, usize)> {
        match self.exchange(method, path, key, body) {
            Ok(answer) => Ok(answer),
            Err(_) => {
                *self = Client::connect(self.port)?;
                self.exchange(method, path, key, body)
            }
        }
    }

    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: &str,
    ) -> std::io::Result<(u16, usize)> {
        let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.reader.get_mut().write_all(request.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no status line: {line:?}")))?;
        let mut length = 0usize;
        let mut close = false;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let header = line.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            if let Some(value) = header.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            if header == "connection: close" {
                close = true;
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        if close {
            *self = Client::connect(self.port)?;
        }
        Ok((status, length))
    }
}

/// Latencies and failures of one phase.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    /// When each request of `latencies` was sent (the steady client only).
    sent: Vec<Instant>,
    errors: usize,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
    }

    fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted[at.min(sorted.len() - 1)]
    }

    fn report(&self, name: &str, elapsed: Duration) {
        println!(
            "{name:<24} {:>7} requests  {:>8.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  errors {}",
            self.latencies.len(),
            self.latencies.len() as f64 / elapsed.as_secs_f64(),
            self.quantile(0.5).as_secs_f64() * 1e3,
            self.quantile(0.99).as_secs_f64() * 1e3,
            self.errors
        );
    }
}

/// `connections` clients sending `path` back to back for `length`.
fn closed_loop(port: u16, path: &str, key: Option<&str>, body: &str, length: Duration) -> Tally {
    let handles: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (path, key, body) = (path.to_owned(), key.map(str::to_owned), body.to_owned());
            std::thread::spawn(move || {
                let mut tally = Tally::default();
                let Ok(mut client) = Client::connect(port) else {
                    tally.errors += 1;
                    return tally;
                };
                let end = Instant::now() + length;
                while Instant::now() < end {
                    let start = Instant::now();
                    match client.send("POST", &path, key.as_deref(), &body) {
                        Ok((200, _)) => tally.latencies.push(start.elapsed()),
                        _ => tally.errors += 1,
                    }
                }
                tally
            })
        })
        .collect();
    let mut all = Tally::default();
    for handle in handles {
        all.merge(handle.join().unwrap_or_default());
    }
    all
}

/// One connection sending `path` every `period` for `length` (a steady client).
fn steady(port: u16, key: &str, body: &str, period: Duration, length: Duration) -> Tally {
    let mut tally = Tally::default();
    let Ok(mut client) = Client::connect(port) else {
        tally.errors += 1;
        return tally;
    };
    let start = Instant::now();
    let mut next = start;
    while start.elapsed() < length {
        let sent = Instant::now();
        match client.send("POST", "/v1/deployments/tiny/invoke", Some(key), body) {
            Ok((200, _)) => {
                tally.latencies.push(sent.elapsed());
                tally.sent.push(sent);
            }
            _ => tally.errors += 1,
        }
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    tally
}

/// What tenant A's flood got: answers by status, and when each request began and ended.
type Flood = (BTreeMap<u16, usize>, Vec<Instant>);

/// Tenant A's flood of `kinds` (`fuel`, `memory`, `compile`) until `stop`.
fn flood(port: u16, kinds: &[&str], stop: Arc<AtomicBool>) -> Flood {
    let fuel_bomb = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/fuel-bomb.json"
    ))
    .unwrap_or_else(|e| panic!("fuel-bomb.json: {e}"));
    // 64 MiB of i64s: past tenant A's 64 MiB memory ceiling.
    let memory_bomb = r#"{"version": 2, "nodes": [
        {"id": "n", "op": "const", "value": 8388608},
        {"id": "z", "op": "const", "value": 0},
        {"id": "r", "op": "range", "args": ["z", "n"]},
        {"id": "m", "op": "map", "args": ["r"], "body": {"params": ["x"], "nodes": [], "result": "x"}},
        {"id": "k", "op": "concat", "args": ["m", "m"]},
        {"id": "l", "op": "len", "args": ["k"]}], "outputs": {"l": "l"}}"#;
    let mut workers: Vec<Box<dyn Fn(u64) -> String + Send>> = Vec::new();
    if kinds.contains(&"fuel") {
        workers.push(Box::new(move |_| format!(r#"{{"graph": {fuel_bomb}}}"#)));
    }
    if kinds.contains(&"memory") {
        workers.push(Box::new(move |_| format!(r#"{{"graph": {memory_bomb}}}"#)));
    }
    if kinds.contains(&"compile") {
        // A graph no one compiled: each needs rustc.
        workers.push(Box::new(|n| {
            format!(
                r#"{{"graph": {{"version": 1, "nodes": [{{"id": "a", "op": "const", "value": {n}}}, {{"id": "b", "op": "mul", "args": ["a", "a"]}}], "outputs": {{"b": "b"}}}}}}"#,
                n = 1_000_000 + n
            )
        }));
    }
    let handles: Vec<_> = workers
        .into_iter()
        .enumerate()
        .map(|(w, body)| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut statuses = BTreeMap::new();
                let mut events = Vec::new();
                let mut n = (w as u64) << 32;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    events.push(Instant::now());
                    let status = Client::connect(port)
                        .and_then(|mut c| c.send("POST", "/v1/run", Some(A_KEY), &body(n)))
                        .map_or(0, |(status, _)| status);
                    events.push(Instant::now());
                    *statuses.entry(status).or_insert(0) += 1;
                    if status == 429 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                (statuses, events)
            })
        })
        .collect();
    let (mut all, mut events) = (BTreeMap::new(), Vec::new());
    for handle in handles {
        let (statuses, times) = handle.join().unwrap_or_default();
        for (status, count) in statuses {
            *all.entry(status).or_insert(0) += count;
        }
        events.extend(times);
    }
    events.sort();
    (all, events)
}

/// Of B's slowest 1% and of all its requests, the share sent within `window` of an A
/// request's start or end: whether the tail follows A's requests or A's running.
fn tail_near_events(b: &Tally, events: &[Instant], window: Duration) -> (f64, f64) {
    let near = |t: Instant| {
        let at = events.partition_point(|e| *e < t);
        [at.checked_sub(1), Some(at)]
            .into_iter()
            .flatten()
            .filter_map(|i| events.get(i))
            .any(|e| e.max(&t).duration_since(*e.min(&t)) <= window)
    };
    let p99 = b.quantile(0.99);
    let share = |pick: &dyn Fn(Duration) -> bool| {
        let chosen: Vec<Instant> = b
            .latencies
            .iter()
            .zip(&b.sent)
            .filter(|(l, _)| pick(**l))
            .map(|(_, t)| *t)
            .collect();
        let hits = chosen.iter().filter(|t| near(**t)).count();
        hits as f64 / chosen.len().max(1) as f64
    };
    (share(&|l| l >= p99), share(&|_| true))
}

/// The bare floor: axum on this process's runtime, one instantiate + call per request.
fn start_bare(port: u16) -> tokio::runtime::Runtime {
    let host = Host::with_config(&HostConfig {
        cache: graphjit::CacheConfig {
            disk_dir: None,
            ..graphjit::CacheConfig::default()
        },
        ..HostConfig::default()
    })
    .unwrap_or_else(|e| panic!("host: {e}"));
    let graph = Graph::from_json(TINY.as_bytes()).unwrap_or_else(|e| panic!("graph: {e}"));
    let bare = Arc::new(BareInstance::new(&host, &graph).unwrap_or_else(|e| panic!("{e}")));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.spawn(async move {
        let app = axum::Router::new()
            .route(
                "/invoke",
                axum::routing::post(
                    |axum::extract::State(bare): axum::extract::State<Arc<BareInstance>>| async move {
                        match bare.instantiate_call().await {
                            Ok(out) => (axum::http::StatusCode::OK, out),
                            Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.into_bytes()),
                        }
                    },
                ),
            )
            .with_state(bare);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let _ = axum::serve(listener, app).await;
    });
    runtime
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that names none of ours skips the run.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !filter.is_empty() && !filter.iter().any(|f| "serve".contains(f.as_str())) {
        return;
    }
    let length = secs();
    let port = free_port();
    let _service = start_service(port);
    let mut setup = Client::connect(port).unwrap_or_else(|e| panic!("connect: {e}"));
    let (status, _) = setup
        .send("PUT", "/v1/deployments/tiny", Some(B_KEY), TINY)
        .unwrap_or_else(|e| panic!("deploy: {e}"));
    assert_eq!(status, 200, "deploy");
    let invoke = r#"{"inputs": {"a": 20}}"#;
    // Warm both paths before measuring.
    let _ = closed_loop(
        port,
        "/v1/deployments/tiny/invoke",
        Some(B_KEY),
        invoke,
        Duration::from_secs(1),
    );
    println!("graphjit serve, {CONNECTIONS} keep-alive connections, {length:?} per phase");
    let start = Instant::now();
    let tally = closed_loop(
        port,
        "/v1/deployments/tiny/invoke",
        Some(B_KEY),
        invoke,
        length,
    );
    tally.report("invoke/graphjit_serve", start.elapsed());

    let bare_port = free_port();
    let _bare = start_bare(bare_port);
    std::thread::sleep(Duration::from_millis(300));
    let _ = closed_loop(bare_port, "/invoke", None, "", Duration::from_secs(1));
    let start = Instant::now();
    let tally = closed_loop(bare_port, "/invoke", None, "", length);
    tally.report("invoke/bare_axum_wasmtime", start.elapsed());
    drop(_bare);

    let period = Duration::from_millis(5);
    let start = Instant::now();
    let quiet = steady(port, B_KEY, invoke, period, length);
    quiet.report("noisy/b_quiet", start.elapsed());
    for kinds in [
        &["fuel"][..],
        &["memory"][..],
        &["compile"][..],
        &["fuel", "memory", "compile"][..],
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let attacker = {
            let stop = Arc::clone(&stop);
            let kinds: Vec<&'static str> = kinds.to_vec();
            std::thread::spawn(move || flood(port, &kinds, stop))
        };
        std::thread::sleep(Duration::from_millis(500));
        let start = Instant::now();
        let loud = steady(port, B_KEY, invoke, period, length);
        let name = format!("noisy/b_vs_{}", kinds.join("+"));
        loud.report(&name, start.elapsed());
        stop.store(true, Ordering::Relaxed);
        let (statuses, events) = attacker.join().unwrap_or_default();
        let (tail, all) = tail_near_events(&loud, &events, Duration::from_millis(5));
        println!(
            "{:<24} B's slowest 1% sent within 5 ms of an A request's start or end: {:.0}% (all of B's: {:.0}%)",
            "",
            tail * 100.0,
            all * 100.0
        );
        println!(
            "{:<24} p99 ratio {:.2}; A answered {statuses:?} (status: count; 0 = none)",
            "",
            loud.quantile(0.99).as_secs_f64() / quiet.quantile(0.99).as_secs_f64().max(1e-9)
        );
    }
}
