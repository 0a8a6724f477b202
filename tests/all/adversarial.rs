//! The adversarial SQL corpus (`tests/adversarial/sql.json`), written as an attacker would:
//! lexer disagreements (comments, operators, strings, escapes, CR, quoting and case), reads
//! and writes outside the footprint, privileged functions, and session state. Every case runs
//! on both databases (a real PostgreSQL on loopback, the embedded SQLite), through both
//! engines (`run` and `eval`), against a footprint that declares only `orders` for reading.
//!
//! The evidence asserted, per case: the sentinel in `secrets` is never returned, not even in
//! an error message; and after the whole corpus, every table's row count is unchanged, no
//! file was written, no table was created, and a later graph's checked query still reads
//! `public.orders` (no session state survived).

use std::collections::BTreeMap;
use std::path::Path;

use graphjit::{CacheConfig, Error, Graph, Host, HostConfig, RunLimits, Value};

use crate::support::{block_on, graph};

/// In `secrets`: what no case may ever see.
const SENTINEL: &str = "hunter2-sentinel";
/// A file some cases try to write on the database host (the same machine here).
const PWNED: &str = "/tmp/graphjit-pwned";

const SCHEMA: &str =
    "CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total bigint NOT NULL);
INSERT INTO orders (customer, total) VALUES ('ada', 120), ('bob', 80), ('ada', 300);
CREATE TABLE audit_log (msg text NOT NULL);
INSERT INTO audit_log VALUES ('one');
CREATE TABLE secrets (value text);
INSERT INTO secrets VALUES ('hunter2-sentinel');";

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    op: String,
    sql: String,
}

fn corpus() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/adversarial/sql.json");
    let text = std::fs::read_to_string(path).expect("the corpus");
    serde_json::from_str(&text).expect("the corpus parses")
}

fn case_graph(case: &Case) -> Graph {
    let ty = if case.op == "db_query" {
        r#", "type": "string""#
    } else {
        ""
    };
    graph(&format!(
        r#"{{"version": 1, "nodes": [{{"id": "q", "op": "{}", "sql": {}{ty}}}],
            "outputs": {{"q": "q"}}, "footprint": {{"db": {{"read": ["orders"]}}}}}}"#,
        case.op,
        serde_json::json!(case.sql)
    ))
}

fn counts_graph() -> Graph {
    graph(
        r#"{"version": 1, "nodes": [
            {"id": "o", "op": "db_query", "sql": "SELECT count(*) FROM orders", "type": "i64"},
            {"id": "a", "op": "db_query", "sql": "SELECT count(*) FROM audit_log", "type": "i64"},
            {"id": "s", "op": "db_query", "sql": "SELECT count(*) FROM secrets", "type": "i64"}],
           "outputs": {"o": "o", "a": "a", "s": "s"},
           "footprint": {"db": {"read": ["orders", "audit_log", "secrets"]}}}"#,
    )
}

/// Both engines' outcome for one graph on one host.
fn outcomes(host: &Host, g: &Graph) -> Vec<(&'static str, Result<String, Error>)> {
    let shown = |out: graphjit::RunOutput| format!("{:?}", out.outputs);
    let run = host.compile(g).and_then(|compiled| {
        block_on(host.run(&compiled, &BTreeMap::new(), RunLimits::default())).map(shown)
    });
    let eval = block_on(host.eval_effects(g, &BTreeMap::new(), RunLimits::default())).map(shown);
    vec![("run", run), ("eval", eval)]
}

fn cached_host(cache: &Path) -> Host {
    Host::with_config(&HostConfig {
        cache: CacheConfig {
            disk_dir: Some(cache.to_path_buf()),
            ..CacheConfig::default()
        },
        ..HostConfig::default()
    })
    .expect("host")
}

#[test]
fn the_adversarial_sql_corpus_reaches_nothing_on_either_database() {
    let _ = std::fs::remove_file(PWNED);
    let pg = graphjit::testing::postgres::TestPostgres::start()
        .unwrap_or_else(|e| panic!("a real PostgreSQL is needed (scripts/test installs it): {e}"));
    let url = pg.url();
    crate::support::pg_execute(
        &url,
        &format!("{SCHEMA} CREATE SCHEMA other; CREATE TABLE other.orders (id int);"),
    );
    // One disk cache for both hosts: each case compiles once.
    let cache = tempfile::tempdir().expect("cache dir");
    let postgres = cached_host(cache.path());
    block_on(postgres.connect_database(&url)).expect("database");
    let sqlite = cached_host(cache.path());
    sqlite.use_embedded_database(Some(SCHEMA)).expect("sqlite");
    let hosts = [("postgres", &postgres), ("sqlite", &sqlite)];

    let counts = counts_graph();
    let before: Vec<_> = hosts
        .iter()
        .map(|(_, host)| {
            outcomes(host, &counts)[0]
                .1
                .as_ref()
                .expect("counts")
                .clone()
        })
        .collect();
    let cases = corpus();
    assert!(cases.len() >= 60, "the corpus shrank: {}", cases.len());
    let mut refused = 0;
    for case in &cases {
        let g = case_graph(case);
        for (database, host) in hosts {
            for (engine, outcome) in outcomes(host, &g) {
                let shown = match &outcome {
                    Ok(outputs) => outputs.clone(),
                    Err(error) => {
                        refused += 1;
                        format!("{error} {}", error.remediation)
                    }
                };
                assert!(
                    !shown.contains(SENTINEL),
                    "{} ({database}, {engine}) saw the sentinel: {shown}",
                    case.name
                );
            }
        }
    }
    for ((database, host), before) in hosts.iter().zip(&before) {
        let after = outcomes(host, &counts)[0]
            .1
            .as_ref()
            .expect("counts")
            .clone();
        assert_eq!(&after, before, "{database}: row counts changed");
    }
    assert!(!Path::new(PWNED).exists(), "a case wrote {PWNED}");
    // Nothing created, and a later checked query still resolves `orders` to `public.orders`.
    let probe = graph(
        r#"{"version": 1, "nodes": [
            {"id": "n", "op": "db_query", "sql": "SELECT count(*) FROM orders", "type": "i64"}],
           "outputs": {"n": "n"}, "footprint": {"db": {"read": ["orders"]}}}"#,
    );
    for _ in 0..8 {
        for (database, host) in hosts {
            let out = outcomes(host, &probe);
            for (engine, result) in out {
                let expected = format!("{:?}", [("n".to_string(), Value::I64(3))]);
                assert_eq!(result.expect("probe"), expected, "{database} {engine}");
            }
        }
    }
    let stolen = block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connects");
        tokio::spawn(connection);
        client
            .query_one(
                "SELECT count(*) FROM pg_class WHERE relname IN ('stolen', 'mine')",
                &[],
            )
            .await
            .expect("catalog")
            .get::<_, i64>(0)
    });
    assert_eq!(stolen, 0, "a case created a table");
    // Every case is hostile: each engine on each database refuses it (or it reads nothing).
    assert!(
        refused >= cases.len() * 4 - 4,
        "only {refused} refusals of {}",
        cases.len() * 4
    );
}

#[derive(serde::Deserialize)]
struct ResourceCase {
    file: String,
    /// The error kind both engines must end with (`a|b`: either).
    expect: String,
    fuel: Option<u64>,
    deadline_ms: Option<u64>,
    memory: Option<u64>,
    /// Each engine's outcome must come within this many seconds.
    within_s: u64,
}

/// The resource corpus (`tests/adversarial/resources.json` and its graphs): graphs written to
/// exhaust the host — kernels far past any budget or deadline, loops past the deadline, a graph
/// raising its own limits, many large values live at once, overflowing shapes, types that
/// double, more nodes than rustc compiles in bounded time. Each ends in its typed error in
/// both engines, within its time bound, and never panics the host.
#[test]
fn the_resource_corpus_ends_in_typed_errors_within_bounds() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/adversarial");
    let manifest = std::fs::read_to_string(format!("{dir}/resources.json")).expect("manifest");
    let cases: Vec<ResourceCase> = serde_json::from_str(&manifest).expect("manifest parses");
    assert!(cases.len() >= 8, "the corpus shrank");
    let host = crate::support::host();
    for case in &cases {
        let bytes = std::fs::read(format!("{dir}/resources/{}", case.file)).expect("graph");
        let defaults = RunLimits::default();
        let limits = RunLimits {
            fuel: case.fuel.unwrap_or(defaults.fuel),
            deadline: case
                .deadline_ms
                .map_or(defaults.deadline, std::time::Duration::from_millis),
            memory_bytes: case.memory.unwrap_or(defaults.memory_bytes),
            ..defaults
        };
        let within = std::time::Duration::from_secs(case.within_s);
        let check = |engine: &str, started: std::time::Instant, outcome: Result<(), Error>| {
            let took = started.elapsed();
            let error = outcome.expect_err(&format!("{} ({engine}) must fail", case.file));
            assert!(
                case.expect.split('|').any(|kind| kind == error.kind_name()),
                "{} ({engine}): expected {}, got {}: {error}",
                case.file,
                case.expect,
                error.kind_name()
            );
            assert!(took <= within, "{} ({engine}) took {took:?}", case.file);
        };
        let started = std::time::Instant::now();
        let g = match Graph::from_json(&bytes) {
            Ok(g) => g,
            Err(error) => {
                check("parse", started, Err(error));
                continue;
            }
        };
        let run = host
            .compile(&g)
            .and_then(|compiled| block_on(host.run(&compiled, &BTreeMap::new(), limits)).map(drop));
        check("run", started, run);
        let started = std::time::Instant::now();
        let eval = block_on(host.eval_effects(&g, &BTreeMap::new(), limits)).map(drop);
        check("eval", started, eval);
    }
}
