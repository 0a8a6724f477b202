//! Effects end to end against a real PostgreSQL on loopback: wasm and eval agree, the
//! footprint refuses what it does not declare (and nothing is written), link-time refusal,
//! kernels, and a server killed between runs.

use std::collections::BTreeMap;

use graphjit::testing::postgres::TestPostgres;
use graphjit::{EffectClass, ErrorKind, Graph, Host, RunLimits, Stage, Value};

use crate::support::{block_on, graph, memory_only};

/// A cluster with `orders`, `audit_log` and `secrets`, and a host connected to it.
struct Db {
    pg: TestPostgres,
    host: Host,
}

fn setup() -> Db {
    let pg = TestPostgres::start()
        .unwrap_or_else(|e| panic!("a real PostgreSQL is needed (scripts/test installs it): {e}"));
    let url = pg.url();
    crate::support::pg_execute(
        &url,
        "CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total bigint NOT NULL);
         INSERT INTO orders (customer, total) VALUES ('ada', 120), ('bob', 80), ('ada', 300);
         CREATE TABLE audit_log (msg text NOT NULL);
         CREATE TABLE secrets (value text);
         INSERT INTO secrets VALUES ('hunter2');
         CREATE TABLE \"Secrets\" (value text);",
    );
    let host = Host::with_config(&memory_only()).expect("host");
    block_on(host.connect_database(&url)).expect("database");
    Db { pg, host }
}

impl Db {
    fn count(&self, table: &str) -> i64 {
        let url = self.pg.url();
        let table = table.to_owned();
        block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connects");
            tokio::spawn(connection);
            let row = client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .expect("count");
            row.get::<_, i64>(0)
        })
    }

    fn run(&self, g: &Graph) -> Result<Vec<(String, Value)>, graphjit::Error> {
        let compiled = self.host.compile(g)?;
        block_on(
            self.host
                .run(&compiled, &BTreeMap::new(), RunLimits::default()),
        )
        .map(|out| out.outputs)
    }

    fn eval(&self, g: &Graph) -> Result<Vec<(String, Value)>, graphjit::Error> {
        block_on(
            self.host
                .eval_effects(g, &BTreeMap::new(), RunLimits::default()),
        )
        .map(|out| out.outputs)
    }
}

fn db_graph(nodes: &str, outputs: &str, footprint: &str) -> Graph {
    graph(&format!(
        r#"{{"version": 1, "nodes": [{nodes}], "outputs": {outputs}, "footprint": {footprint}}}"#
    ))
}

#[test]
fn queries_and_writes_agree_between_wasm_and_eval() {
    let db = setup();
    let report = db_graph(
        r#"{"id": "min", "op": "input", "type": "i64", "default": 100},
           {"id": "n", "op": "db_query", "sql": "SELECT count(*) FROM orders WHERE total > $1", "args": ["min"], "type": "i64"},
           {"id": "totals", "op": "db_query", "sql": "SELECT total FROM orders ORDER BY id", "type": {"tensor": [3]}},
           {"id": "who", "op": "db_query", "sql": "SELECT customer FROM orders WHERE total = (SELECT max(total) FROM orders)", "type": "string"}"#,
        r#"{"n": "n", "totals": "totals", "who": "who"}"#,
        r#"{"db": {"read": ["orders"]}}"#,
    );
    let wasm = db.run(&report).expect("runs");
    assert_eq!(wasm, db.eval(&report).expect("evaluates"), "wasm == eval");
    assert_eq!(wasm[0].1, Value::I64(2));
    assert_eq!(wasm[2].1, Value::Str("ada".into()));
    let Value::Tensor(t) = &wasm[1].1 else {
        panic!("totals is a tensor")
    };
    assert_eq!(t.data, [120.0, 80.0, 300.0]);

    let write = db_graph(
        r#"{"id": "msg", "op": "input", "type": "string", "default": "hello"},
           {"id": "w", "op": "db_execute", "sql": "INSERT INTO audit_log (msg) VALUES ($1)", "args": ["msg"]},
           {"id": "n", "op": "db_query", "sql": "SELECT count(*) FROM audit_log", "type": "i64", "after": ["w"]}"#,
        r#"{"written": "w", "n": "n"}"#,
        r#"{"db": {"read": ["audit_log"], "write": ["audit_log"]}}"#,
    );
    let out = db.run(&write).expect("writes");
    assert_eq!(
        out[0],
        ("n".to_string(), Value::I64(1)),
        "the read ran after the write"
    );
    assert_eq!(out[1], ("written".to_string(), Value::I64(1)));
    let _ = db.eval(&write).expect("eval writes too");
    assert_eq!(db.count("audit_log"), 2);
}

#[test]
fn a_round_of_reads_shares_one_transaction_and_each_read_keeps_its_own_error() {
    let db = setup();
    // `a`, `b`, `c` and `w` are independent: one round. The reads are pipelined in one
    // read-only transaction; the write runs in its own.
    let round = |c_sql: &str| {
        db_graph(
            &format!(
                r#"{{"id": "a", "op": "db_query", "sql": "SELECT count(*) FROM orders", "type": "i64"}},
                   {{"id": "b", "op": "db_query", "sql": "SELECT max(total) FROM orders", "type": "i64"}},
                   {{"id": "c", "op": "db_query", "sql": "{c_sql}", "type": "i64"}},
                   {{"id": "w", "op": "db_execute", "sql": "INSERT INTO audit_log (msg) VALUES ('round')"}}"#
            ),
            r#"{"a": "a", "b": "b", "c": "c", "w": "w"}"#,
            r#"{"db": {"read": ["orders", "audit_log"], "write": ["audit_log"]}}"#,
        )
    };
    let good = round("SELECT min(total) FROM orders");
    let compiled = db.host.compile(&good).expect("compiles");
    let out = block_on(
        db.host
            .run(&compiled, &BTreeMap::new(), RunLimits::default()),
    )
    .expect("runs");
    assert_eq!((out.effect_calls, out.effect_rounds), (4, 1), "one round");
    let values: Vec<&Value> = out.outputs.iter().map(|(_, v)| v).collect();
    assert_eq!(
        values,
        [
            &Value::I64(3),
            &Value::I64(300),
            &Value::I64(80),
            &Value::I64(1)
        ]
    );
    assert_eq!(db.count("audit_log"), 1, "the write of the round committed");

    // The last read fails on the server: the pipelined transaction is aborted, so `a` and `b`
    // run again on their own; the run ends with `c`'s own error, not another's.
    let bad = round("SELECT no_such_column FROM orders");
    let error = db.run(&bad).expect_err("undefined column");
    assert_eq!(error.node.as_deref(), Some("c"), "{error}");
    assert!(
        matches!(
            &error.kind,
            ErrorKind::EffectFailed {
                class: EffectClass::Syntax
            }
        ),
        "{error}"
    );
    assert_eq!(
        db.eval(&bad).expect_err("eval too").node.as_deref(),
        Some("c")
    );
}

/// SQL the footprint `{"db": {"read": ["orders"]}}` must refuse: `(what, op, sql)`.
const HOSTILE_SQL: &[(&str, &str, &str)] = &[
    (
        "a write from a read-only graph",
        "db_execute",
        "DELETE FROM orders",
    ),
    (
        "insert without a write set",
        "db_execute",
        "INSERT INTO orders (customer, total) VALUES ('eve', 1)",
    ),
    (
        "a second statement",
        "db_execute",
        "SELECT 1; DROP TABLE orders",
    ),
    (
        "a table in a CTE",
        "db_query",
        "WITH s AS (SELECT value FROM secrets) SELECT count(*) FROM s",
    ),
    (
        "a table in a subquery",
        "db_query",
        "SELECT count(*) FROM orders WHERE customer IN (SELECT value FROM secrets)",
    ),
    (
        "a table in a UNION",
        "db_query",
        "SELECT customer FROM orders UNION SELECT value FROM secrets",
    ),
    (
        "a quoted mixed-case table",
        "db_query",
        "SELECT count(*) FROM \"Secrets\"",
    ),
    (
        "an upper-case name",
        "db_query",
        "SELECT count(*) FROM SECRETS",
    ),
    (
        "a schema-qualified table",
        "db_query",
        "SELECT count(*) FROM public.secrets",
    ),
    (
        "pg_catalog",
        "db_query",
        "SELECT count(*) FROM pg_catalog.pg_user",
    ),
    (
        "information_schema",
        "db_query",
        "SELECT count(*) FROM information_schema.tables",
    ),
    (
        "pg_sleep",
        "db_query",
        "SELECT count(*) FROM orders WHERE pg_sleep(5) IS NOT NULL",
    ),
    ("lo_import", "db_query", "SELECT lo_import('/etc/passwd')"),
    (
        "COPY TO PROGRAM",
        "db_execute",
        "COPY orders TO PROGRAM 'touch /tmp/graphjit-pwned'",
    ),
    (
        "a data-modifying CTE",
        "db_query",
        "WITH d AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM d",
    ),
];

/// A graph running one of [`HOSTILE_SQL`] as node `q`, declaring only `orders` as read.
fn hostile_graph(op: &str, sql: &str) -> Graph {
    let ty = if op == "db_query" {
        r#", "type": "i64""#
    } else {
        ""
    };
    db_graph(
        &format!(
            r#"{{"id": "q", "op": "{op}", "sql": {}{ty}}}"#,
            serde_json::json!(sql)
        ),
        r#"{"q": "q"}"#,
        r#"{"db": {"read": ["orders"]}}"#,
    )
}

#[test]
fn the_footprint_refuses_and_nothing_is_written() {
    let db = setup();
    let cases = HOSTILE_SQL;
    let before = (
        db.count("orders"),
        db.count("secrets"),
        db.count("audit_log"),
    );
    for (what, op, sql) in cases {
        let g = hostile_graph(op, sql);
        for (side, result) in [("wasm", db.run(&g)), ("eval", db.eval(&g))] {
            let error = result.expect_err(what);
            assert_eq!(
                error.kind,
                ErrorKind::FootprintDenied,
                "{what} ({side}): {error}"
            );
            assert_eq!(error.node.as_deref(), Some("q"), "{what}");
            let expected = if side == "wasm" {
                Stage::Run
            } else {
                Stage::Eval
            };
            assert_eq!(error.stage, expected, "{what}");
        }
    }
    assert_eq!(
        (
            db.count("orders"),
            db.count("secrets"),
            db.count("audit_log")
        ),
        before,
        "nothing was written"
    );
    assert!(!std::path::Path::new("/tmp/graphjit-pwned").exists());
}

#[test]
fn a_db_node_without_a_db_footprint_is_refused_before_anything_runs() {
    let db = setup();
    let g = db_graph(
        r#"{"id": "w", "op": "db_execute", "sql": "DELETE FROM orders"}"#,
        r#"{"w": "w"}"#,
        r#"{"kernels": ["softmax"]}"#,
    );
    let error = db.host.compile(&g).expect_err("refused at load");
    assert!(
        matches!(&error.kind, ErrorKind::ImportDenied { import } if import.contains("/db@")),
        "{error}"
    );
    assert_eq!(db.count("orders"), 3);
}

#[test]
fn a_server_killed_between_runs_is_a_typed_error_and_the_host_recovers() {
    let mut db = setup();
    let g = db_graph(
        r#"{"id": "n", "op": "db_query", "sql": "SELECT count(*) FROM orders", "type": "i64"}"#,
        r#"{"n": "n"}"#,
        r#"{"db": {"read": ["orders"]}}"#,
    );
    assert_eq!(db.run(&g).expect("runs")[0].1, Value::I64(3));
    db.pg.kill().expect("kill");
    // The backends notice the postmaster's death within milliseconds; a query already on a
    // pooled connection may still finish in that window.
    let mut attempts = 0;
    let error = loop {
        match db.run(&g) {
            Err(error) => break error,
            Ok(_) if attempts < 50 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Ok(out) => panic!("still answering 5 s after the kill: {out:?}"),
        }
    };
    assert!(
        matches!(
            &error.kind,
            ErrorKind::EffectFailed {
                class: EffectClass::Connection
            }
        ),
        "{error}"
    );
    db.pg.restart().expect("restart");
    assert_eq!(db.run(&g).expect("runs again")[0].1, Value::I64(3));
}

#[test]
fn kernels_run_in_the_host_and_only_declared_ones() {
    let host = Host::with_config(&memory_only()).expect("host");
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "a", "op": "iota", "shape": [2, 3]},
            {"id": "b", "op": "fill", "shape": [3, 2], "value": 0.5},
            {"id": "m", "op": "kernel", "kernel": "matmul", "args": ["a", "b"]},
            {"id": "s", "op": "kernel", "kernel": "softmax", "args": ["m"]}
        ], "outputs": {"m": "m", "s": "s"}, "footprint": {"kernels": ["matmul", "softmax"]}}"#,
    );
    let compiled = host.compile(&g).expect("compiles");
    let wasm = block_on(host.run(&compiled, &BTreeMap::new(), RunLimits::default())).expect("runs");
    let eval =
        block_on(host.eval_effects(&g, &BTreeMap::new(), RunLimits::default())).expect("evaluates");
    assert_eq!(wasm.outputs, eval.outputs);
    let Value::Tensor(m) = &wasm.outputs[0].1 else {
        panic!("tensor")
    };
    assert_eq!(m.data, [1.5, 1.5, 6.0, 6.0]);
    // Declared kernels only: the same graph without softmax in its footprint.
    let denied = graph(
        &serde_json::to_string(&{
            let mut v: serde_json::Value = serde_json::from_str(
                r#"{"version": 1, "nodes": [
                {"id": "a", "op": "iota", "shape": [2, 2]},
                {"id": "s", "op": "kernel", "kernel": "softmax", "args": ["a"]}
            ], "outputs": {"s": "s"}, "footprint": {"kernels": ["matmul"]}}"#,
            )
            .expect("json");
            v["name"] = "denied".into();
            v
        })
        .expect("json"),
    );
    let compiled = host.compile(&denied).expect("compiles");
    let error = block_on(host.run(&compiled, &BTreeMap::new(), RunLimits::default()))
        .expect_err("the run fails");
    assert_eq!(error.kind, ErrorKind::FootprintDenied, "{error}");
}

#[test]
fn the_effect_examples_in_the_format_doc_run_against_postgres() {
    let db = setup();
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/graph-format.md"),
    )
    .expect("doc");
    let mut ran = 0;
    for block in doc
        .split("```json")
        .skip(1)
        .filter_map(|b| b.split("```").next())
    {
        let g = graph(block);
        if !g.has_effects() {
            continue;
        }
        let wasm = db.run(&g).unwrap_or_else(|e| panic!("{e}\n{block}"));
        let eval = db.eval(&g).unwrap_or_else(|e| panic!("{e}\n{block}"));
        // Each run wrote one audit row: the second saw one more.
        let count = |out: &[(String, Value)], name: &str| {
            out.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
        };
        assert_eq!(count(&wasm, "big_orders"), Some(Value::I64(2)), "{block}");
        assert_eq!(count(&eval, "big_orders"), Some(Value::I64(2)), "{block}");
        assert_eq!(count(&wasm, "audit_rows"), Some(Value::I64(1)), "{block}");
        assert_eq!(count(&eval, "audit_rows"), Some(Value::I64(2)), "{block}");
        ran += 1;
    }
    assert!(ran >= 1, "the doc lost its effect example");
}

/// `graphjit` with `args`, run from the repository root.
fn cli(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_graphjit"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("runs");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), json)
}

#[test]
fn the_effect_examples_run_from_the_command_line() {
    let pg = TestPostgres::start().unwrap_or_else(|e| panic!("PostgreSQL is needed: {e}"));
    let url = pg.url();
    let schema = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/db/schema.sql"
    ))
    .expect("schema");
    block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connects");
        tokio::spawn(connection);
        client.batch_execute(&schema).await.expect("schema loads");
    });
    let base = ["--json", "--no-disk-cache", "--database-url", url.as_str()];
    let (code, report) = cli(&[&["run", "examples/db-report.json"][..], &base].concat());
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["output"]["big_orders"], 2, "{report}");
    assert_eq!(report["output"]["revenue"], 545.0, "{report}");
    // The same example on the embedded database, without PostgreSQL.
    let (code, embedded) = cli(&[
        "run",
        "examples/db-report.json",
        "--json",
        "--no-disk-cache",
        "--db-init",
        "examples/db/schema.sql",
    ]);
    assert_eq!(code, Some(0), "{embedded}");
    assert_eq!(embedded["output"], report["output"]);
    assert_eq!(report["output"]["top_customer"], "ada", "{report}");
    assert_eq!(report["output"]["reports_so_far"], 1, "{report}");
    let (code, again) = cli(&[&["eval", "examples/db-report.json"][..], &base].concat());
    assert_eq!(code, Some(0), "{again}");
    assert_eq!(
        again["output"]["reports_so_far"], 2,
        "eval wrote through the same driver"
    );

    let (code, denied) = cli(&[&["run", "examples/denied.json"][..], &base].concat());
    assert_eq!(code, Some(4), "{denied}");
    assert_eq!(denied["error"]["kind"], "footprint_denied", "{denied}");
    assert!(
        denied["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("secrets")),
        "names what was refused: {denied}"
    );

    // The HTTP example targets a local server; without --allow-loopback the host refuses the
    // address before connecting.
    let (code, http) = cli(&[
        "run",
        "examples/http-fetch.json",
        "--json",
        "--no-disk-cache",
    ]);
    assert_eq!(code, Some(4), "{http}");
    assert_eq!(http["error"]["kind"], "footprint_denied", "{http}");

    let (code, kernels) = cli(&["run", "examples/kernels.json", "--json", "--no-disk-cache"]);
    assert_eq!(code, Some(0), "{kernels}");
    let (_, kernels_eval) = cli(&["eval", "examples/kernels.json", "--json"]);
    assert_eq!(kernels["output"], kernels_eval["output"]);
}

mod http {
    //! HTTP effects against a real local server.

    use super::*;
    use graphjit::testing::http_server::TestHttp;
    use graphjit::{HostConfig, HttpSettings};

    fn host(allow_loopback: bool) -> Host {
        Host::with_config(&HostConfig {
            http: HttpSettings {
                allow_loopback,
                max_body_bytes: 4096,
                ..HttpSettings::default()
            },
            ..memory_only()
        })
        .expect("host")
    }

    fn fetch(server: &TestHttp, path: &str, prefix: &str) -> Graph {
        let port = server.addr().port();
        graph(&format!(
            r#"{{"version": 1, "nodes": [
                {{"id": "r", "op": "http", "method": "GET", "url": "http://127.0.0.1:{port}{path}"}}
            ], "outputs": {{"body": "r"}},
            "footprint": {{"http": [{{"method": "GET", "scheme": "http", "host": "127.0.0.1", "port": {port}, "path_prefix": "{prefix}"}}]}}}}"#
        ))
    }

    fn run(host: &Host, g: &Graph) -> Result<Vec<(String, Value)>, graphjit::Error> {
        let compiled = host.compile(g)?;
        block_on(host.run(&compiled, &BTreeMap::new(), RunLimits::default())).map(|o| o.outputs)
    }

    fn eval(host: &Host, g: &Graph) -> Result<Vec<(String, Value)>, graphjit::Error> {
        block_on(host.eval_effects(g, &BTreeMap::new(), RunLimits::default())).map(|o| o.outputs)
    }

    #[test]
    fn a_declared_request_is_served_and_eval_agrees() {
        let server = TestHttp::start();
        let host = host(true);
        let g = fetch(&server, "/json", "/json");
        let wasm = run(&host, &g).expect("fetches");
        assert_eq!(wasm, eval(&host, &g).expect("fetches"));
        let Value::Str(body) = &wasm[0].1 else {
            panic!("a string body")
        };
        assert!(body.starts_with('{'), "{body}");
        assert_eq!(server.requests(), 2);
    }

    #[test]
    fn refusals_never_reach_the_server() {
        let server = TestHttp::start();
        let open = host(true);
        let port = server.addr().port();
        // Path outside the prefix, `..` out of it, and a redirect to an undeclared place.
        for (path, prefix) in [
            ("/echo", "/json"),
            ("/json/../echo", "/json"),
            ("/json10", "/json"),
        ] {
            let error = run(&open, &fetch(&server, path, prefix)).expect_err(path);
            assert_eq!(error.kind, ErrorKind::FootprintDenied, "{path}: {error}");
        }
        assert_eq!(server.requests(), 0, "no refused request was sent");
        // The footprint allows it, the host's egress policy does not (loopback by default).
        let error = run(&host(false), &fetch(&server, "/json", "/json")).expect_err("egress");
        assert_eq!(error.kind, ErrorKind::FootprintDenied, "{error}");
        assert!(error.message.contains("127.0.0.1"), "{error}");
        assert_eq!(server.requests(), 0);
        // A redirect to a host the footprint does not name: the first hop is sent, the
        // second is refused.
        let to = format!("/redirect?to=http://localhost:{port}/json");
        let error = run(&open, &fetch(&server, &to, "/redirect")).expect_err("redirect");
        assert_eq!(error.kind, ErrorKind::FootprintDenied, "{error}");
        assert_eq!(server.requests(), 1);
    }

    /// `examples/fanout.json` (8 independent requests to `/delay/20`) aimed at `server`.
    fn fanout(server: &TestHttp) -> Graph {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/fanout.json");
        let text = std::fs::read_to_string(path).expect("the example exists");
        let port = server.addr().port().to_string();
        graph(
            &text
                .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
                .replace("\"port\": 8080", &format!("\"port\": {port}")),
        )
    }

    fn host_with_passes(passes: &str) -> Host {
        Host::with_config(&HostConfig {
            http: HttpSettings {
                allow_loopback: true,
                ..HttpSettings::default()
            },
            passes: graphjit::PassConfig::parse(passes).expect("passes"),
            ..memory_only()
        })
        .expect("host")
    }

    #[test]
    fn independent_requests_go_out_as_one_concurrent_round() {
        let server = TestHttp::start();
        let g = fanout(&server);
        let batched = host_with_passes("all");
        assert_eq!(
            batched.explain(&g).rounds,
            [["a", "b", "c", "d", "e", "f", "g", "h"]],
            "explain shows the round"
        );
        let compiled = batched.compile(&g).expect("compiles");
        let out =
            block_on(batched.run(&compiled, &BTreeMap::new(), RunLimits::default())).expect("runs");
        assert_eq!(
            (out.effect_calls, out.effect_rounds),
            (8, 1),
            "one round of 8"
        );
        assert!(
            server.most_concurrent_delays() >= 2,
            "the server saw the requests overlap (at most {} at once)",
            server.most_concurrent_delays()
        );
        assert_eq!(
            out.outputs,
            eval(&batched, &g).expect("evaluates"),
            "wasm == eval"
        );

        let server = TestHttp::start();
        let g = fanout(&server);
        let sequential = host_with_passes("fold,cse,dce,fuse");
        let compiled = sequential.compile(&g).expect("compiles");
        let one_by_one =
            block_on(sequential.run(&compiled, &BTreeMap::new(), RunLimits::default()))
                .expect("runs");
        assert_eq!((one_by_one.effect_calls, one_by_one.effect_rounds), (8, 8));
        assert_eq!(
            server.most_concurrent_delays(),
            1,
            "without batching, one at a time"
        );
        assert_eq!(
            one_by_one.outputs, out.outputs,
            "the same answers either way"
        );
    }

    #[test]
    fn a_round_ends_with_the_first_failure_in_canonical_order() {
        let server = TestHttp::start();
        let port = server.addr().port();
        // `a` is denied (outside the prefix), `b` answers 500, `c` is fine: all three are one
        // round; the run ends with `a`'s error whatever finished first, as one at a time.
        let nodes = |a: &str| {
            format!(
                r#"{{"version": 1, "nodes": [
                    {{"id": "a", "op": "http", "method": "GET", "url": "http://127.0.0.1:{port}{a}"}},
                    {{"id": "b", "op": "http", "method": "GET", "url": "http://127.0.0.1:{port}/status/500"}},
                    {{"id": "c", "op": "http", "method": "GET", "url": "http://127.0.0.1:{port}/delay/1"}}
                ], "outputs": {{"a": "a", "b": "b", "c": "c"}},
                "footprint": {{"http": [
                    {{"method": "GET", "scheme": "http", "host": "127.0.0.1", "port": {port}, "path_prefix": "/status"}},
                    {{"method": "GET", "scheme": "http", "host": "127.0.0.1", "port": {port}, "path_prefix": "/delay"}}]}}}}"#
            )
        };
        for passes in ["all", "none"] {
            let host = host_with_passes(passes);
            let denied = graph(&nodes("/json"));
            let error = run(&host, &denied).expect_err("denied");
            assert_eq!(error.kind, ErrorKind::FootprintDenied, "{passes}: {error}");
            assert_eq!(error.node.as_deref(), Some("a"), "{passes}: {error}");
            let eval_error = eval(&host, &denied).expect_err("denied");
            assert_eq!(eval_error.node.as_deref(), Some("a"), "{passes}");

            let status = graph(&nodes("/delay/2"));
            let error = run(&host, &status).expect_err("500");
            assert!(
                matches!(
                    &error.kind,
                    ErrorKind::EffectFailed {
                        class: EffectClass::HttpStatus
                    }
                ),
                "{passes}: {error}"
            );
            assert_eq!(error.node.as_deref(), Some("b"), "{passes}: {error}");
        }
    }

    #[test]
    fn https_verifies_the_server_against_the_hosts_roots() {
        let server = TestHttp::start_tls();
        let port = server.addr().port();
        let g = graph(&format!(
            r#"{{"version": 1, "nodes": [
                {{"id": "r", "op": "http", "method": "GET", "url": "https://127.0.0.1:{port}/json"}}
            ], "outputs": {{"body": "r"}},
            "footprint": {{"http": [{{"method": "GET", "scheme": "https", "host": "127.0.0.1", "port": {port}, "path_prefix": "/json"}}]}}}}"#
        ));
        // Mozilla's roots alone do not know the test CA: the handshake fails, no request.
        let error = run(&host(true), &g).expect_err("untrusted certificate");
        assert!(
            matches!(
                &error.kind,
                ErrorKind::EffectFailed {
                    class: EffectClass::Connection
                }
            ),
            "{error}"
        );
        assert_eq!(
            server.requests(),
            0,
            "nothing was sent without a verified server"
        );

        let trusting = Host::with_config(&HostConfig {
            http: HttpSettings {
                allow_loopback: true,
                extra_roots: vec![server.ca_der().expect("a TLS server").to_vec()],
                ..HttpSettings::default()
            },
            ..memory_only()
        })
        .expect("host");
        let wasm = run(&trusting, &g).expect("fetches over TLS");
        assert_eq!(
            wasm[0].1,
            Value::Str(graphjit::testing::http_server::JSON_BODY.into())
        );
        assert_eq!(wasm, eval(&trusting, &g).expect("eval too"));
        assert_eq!(server.requests(), 2);

        // The command line: `--tls-root` with the CA as DER, then as PEM.
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("g.json");
        let json = format!(
            r#"{{"version": 1, "nodes": [
                {{"id": "r", "op": "http", "method": "GET", "url": "https://127.0.0.1:{port}/json"}}
            ], "outputs": {{"body": "r"}},
            "footprint": {{"http": [{{"method": "GET", "scheme": "https", "host": "127.0.0.1", "port": {port}, "path_prefix": "/json"}}]}}}}"#
        );
        std::fs::write(&file, json).expect("write graph");
        let der = dir.path().join("ca.der");
        std::fs::write(&der, server.ca_der().expect("a TLS server")).expect("write ca");
        let file = file.to_str().expect("utf-8 path");
        let base = ["run", file, "--json", "--no-disk-cache", "--allow-loopback"];
        let (code, out) =
            super::cli(&[&base[..], &["--tls-root", der.to_str().expect("path")]].concat());
        assert_eq!(code, Some(0), "{out}");
        assert_eq!(
            out["output"]["body"],
            graphjit::testing::http_server::JSON_BODY
        );
        let (code, out) = super::cli(&base);
        assert_eq!(code, Some(4), "without the root: {out}");
        assert_eq!(out["error"]["kind"], "effect_failed", "{out}");

        // Something that is not a certificate is refused when the host is made.
        let bad = Host::with_config(&HostConfig {
            http: HttpSettings {
                extra_roots: vec![b"not a certificate".to_vec()],
                ..HttpSettings::default()
            },
            ..memory_only()
        });
        assert!(bad.is_err(), "a bad root is a typed error");
    }

    #[test]
    fn faults_are_typed_and_the_host_keeps_serving() {
        let server = TestHttp::start();
        let host = host(true);
        let kind = |path: &str, prefix: &str, limits: RunLimits| {
            let compiled = host
                .compile(&fetch(&server, path, prefix))
                .expect("compiles");
            block_on(host.run(&compiled, &BTreeMap::new(), limits))
                .expect_err(path)
                .kind
        };
        let quick = RunLimits {
            deadline: std::time::Duration::from_millis(300),
            ..RunLimits::default()
        };
        let hung = kind("/hang", "/hang", quick);
        assert!(
            matches!(hung, ErrorKind::DeadlineExceeded { .. }),
            "{hung:?}"
        );
        let big = kind("/big/100000", "/big", RunLimits::default());
        assert!(
            matches!(
                &big,
                ErrorKind::EffectFailed {
                    class: EffectClass::BodyTooLarge
                }
            ),
            "{big:?}"
        );
        let status = kind("/status/500", "/status", RunLimits::default());
        assert!(
            matches!(
                &status,
                ErrorKind::EffectFailed {
                    class: EffectClass::HttpStatus
                }
            ),
            "{status:?}"
        );
        assert!(
            run(&host, &fetch(&server, "/json", "/json")).is_ok(),
            "still serving"
        );
    }
}

#[test]
fn the_embedded_database_serves_the_same_graphs_under_the_same_footprint() {
    let host = Host::with_config(&memory_only()).expect("host");
    let schema = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/db/schema.sql"
    ))
    .expect("schema");
    host.use_embedded_database(Some(&schema)).expect("sqlite");
    let run = |g: &Graph| {
        let compiled = host.compile(g)?;
        block_on(host.run(&compiled, &BTreeMap::new(), RunLimits::default())).map(|o| o.outputs)
    };
    let counts = db_graph(
        r#"{"id": "o", "op": "db_query", "sql": "SELECT count(*) FROM orders", "type": "i64"},
           {"id": "s", "op": "db_query", "sql": "SELECT count(*) FROM secrets", "type": "i64"},
           {"id": "a", "op": "db_query", "sql": "SELECT count(*) FROM audit_log", "type": "i64"}"#,
        r#"{"a": "a", "o": "o", "s": "s"}"#,
        r#"{"db": {"read": ["orders", "secrets", "audit_log"]}}"#,
    );
    let before = run(&counts).expect("counts");
    for (what, op, sql) in HOSTILE_SQL {
        let g = hostile_graph(op, sql);
        let error = run(&g).expect_err(what);
        assert_eq!(error.kind, ErrorKind::FootprintDenied, "{what}: {error}");
    }
    assert_eq!(run(&counts).expect("counts"), before, "nothing was written");
    let report = graph(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/db-report.json"
        ))
        .expect("example"),
    );
    let out = run(&report).expect("report");
    let eval =
        block_on(host.eval_effects(&report, &BTreeMap::new(), RunLimits::default())).expect("eval");
    assert_eq!(out[0].1, Value::I64(2), "big_orders");
    assert_eq!(out[2].1, Value::F64(545.0), "revenue");
    assert_eq!(out[1].1, Value::I64(1), "reports_so_far after one run");
    assert_eq!(
        eval.outputs[1].1,
        Value::I64(2),
        "eval wrote through the same database"
    );
}

#[test]
fn unqualified_names_resolve_to_public_whatever_the_url_says() {
    let db = setup();
    let url = db.pg.url();
    block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connects");
        tokio::spawn(connection);
        client
            .batch_execute(
                "CREATE SCHEMA other; CREATE TABLE other.orders (id int); INSERT INTO other.orders VALUES (1);",
            )
            .await
            .expect("schema");
    });
    // The footprint says `orders` is `public.orders`; a URL that moves the search path to
    // `other` must not make the server read `other.orders` under that name.
    let sneaky = format!("{url}?options=-c%20search_path%3Dother");
    let host = Host::with_config(&memory_only()).expect("host");
    block_on(host.connect_database(&sneaky)).expect("database");
    let g = db_graph(
        r#"{"id": "n", "op": "db_query", "sql": "SELECT count(*) FROM orders", "type": "i64"}"#,
        r#"{"n": "n"}"#,
        r#"{"db": {"read": ["orders"]}}"#,
    );
    let compiled = host.compile(&g).expect("compiles");
    let out = block_on(host.run(&compiled, &BTreeMap::new(), RunLimits::default())).expect("runs");
    assert_eq!(
        out.outputs[0].1,
        Value::I64(3),
        "public.orders has 3 rows, other.orders 1"
    );
}

/// A query answering a list of records, on either database: columns matched by name,
/// NULL only into options, the same records in wasm and eval.
fn records_query(sql: &str, record: &str) -> Graph {
    graph(&format!(
        r#"{{"version": 2, "nodes": [
            {{"id": "rows", "op": "db_query", "sql": "{sql}", "type": {{"list": {{"record": {record}}}}}}}
        ], "outputs": {{"rows": "rows"}}, "footprint": {{"db": {{"read": ["notes"]}}}}}}"#
    ))
}

const NOTES_SCHEMA: &str = "CREATE TABLE notes (id bigint NOT NULL, note text, score double precision NOT NULL, raw bytea);
     INSERT INTO notes VALUES (1, 'first', 1.5, NULL), (2, NULL, 2.0, NULL), (3, 'ünï', -0.25, NULL);";

/// A host whose embedded database holds the `notes` table.
fn notes_on_sqlite() -> Host {
    let host = Host::with_config(&memory_only()).expect("host");
    host.use_embedded_database(Some(&NOTES_SCHEMA.replace("bytea", "blob")))
        .expect("sqlite");
    host
}

fn run_on(host: &Host, g: &Graph) -> Result<Vec<(String, Value)>, graphjit::Error> {
    let compiled = host.compile(g)?;
    block_on(host.run(&compiled, &BTreeMap::new(), RunLimits::default())).map(|o| o.outputs)
}

fn eval_on(host: &Host, g: &Graph) -> Result<Vec<(String, Value)>, graphjit::Error> {
    block_on(host.eval_effects(g, &BTreeMap::new(), RunLimits::default())).map(|o| o.outputs)
}

const NOTES_RECORD: &str = r#"{"id": "i64", "note": {"option": "string"}, "score": "f64"}"#;

fn check_records(
    run: impl Fn(&Graph) -> Result<Vec<(String, Value)>, graphjit::Error>,
    eval: impl Fn(&Graph) -> Result<Vec<(String, Value)>, graphjit::Error>,
) {
    // Column order in the SQL does not matter: columns are matched by name.
    let g = records_query(
        "SELECT score, note, id FROM notes ORDER BY id",
        NOTES_RECORD,
    );
    let wasm = run(&g).expect("runs");
    assert_eq!(wasm, eval(&g).expect("evaluates"), "wasm == eval");
    assert_eq!(
        graphjit::value_to_json(&wasm[0].1),
        serde_json::json!([{"id": 1, "note": "first", "score": 1.5},
                           {"id": 2, "note": null, "score": 2.0},
                           {"id": 3, "note": "ünï", "score": -0.25}])
    );
    // NULL into a field that is not an option, a missing column, an extra one, a wrong type:
    // typed bad answers at the node, in both engines.
    for (sql, record) in [
        (
            "SELECT id, note FROM notes",
            r#"{"id": "i64", "note": "string"}"#,
        ),
        ("SELECT id FROM notes", r#"{"id": "i64", "score": "f64"}"#),
        ("SELECT id, score FROM notes", r#"{"id": "i64"}"#),
        ("SELECT score AS id FROM notes", r#"{"id": "i64"}"#),
    ] {
        let g = records_query(sql, record);
        for e in [run(&g).expect_err(sql), eval(&g).expect_err(sql)] {
            assert!(
                matches!(
                    e.kind,
                    ErrorKind::EffectFailed {
                        class: graphjit::EffectClass::BadAnswer,
                        ..
                    }
                ),
                "{sql}: {e}"
            );
            assert_eq!(e.node.as_deref(), Some("rows"), "{sql}");
        }
    }
}

#[test]
fn db_query_answers_a_list_of_records_on_postgres() {
    let db = setup();
    crate::support::pg_execute(&db.pg.url(), NOTES_SCHEMA);
    check_records(|g| db.run(g), |g| db.eval(g));
}

#[test]
fn db_query_answers_a_list_of_records_on_the_embedded_database() {
    let host = notes_on_sqlite();
    check_records(|g| run_on(&host, g), |g| eval_on(&host, g));
}

/// Options and bytes as SQL parameters: none binds NULL, some its value; read back as rows.
fn check_option_parameters(
    run: impl Fn(&Graph) -> Result<Vec<(String, Value)>, graphjit::Error>,
    eval: impl Fn(&Graph) -> Result<Vec<(String, Value)>, graphjit::Error>,
) {
    let g = graph(
        r#"{"version": 2, "nodes": [
            {"id": "four", "op": "const", "value": 4},
            {"id": "none", "op": "none", "type": {"option": "string"}},
            {"id": "w", "op": "db_execute", "args": ["four", "none"],
             "sql": "INSERT INTO notes (id, note, score) VALUES ($1, $2, 0.0)"},
            {"id": "text", "op": "const", "value": "later"},
            {"id": "some", "op": "some", "args": ["text"]},
            {"id": "w2", "op": "db_execute", "args": ["some"], "after": ["w"],
             "sql": "UPDATE notes SET note = $1 WHERE id = 2 AND note IS NULL"},
            {"id": "rows", "op": "db_query", "after": ["w2"],
             "sql": "SELECT id, note FROM notes WHERE id IN (2, 4) ORDER BY id",
             "type": {"list": {"record": {"id": "i64", "note": {"option": "string"}}}}}
        ], "outputs": {"rows": "rows", "w": "w", "w2": "w2"},
        "footprint": {"db": {"read": ["notes"], "write": ["notes"]}}}"#,
    );
    let first = run(&g).expect("runs");
    assert_eq!(
        graphjit::value_to_json(&first[0].1),
        serde_json::json!([{"id": 2, "note": "later"}, {"id": 4, "note": null}])
    );
    assert_eq!(
        first[2].1,
        Value::I64(1),
        "the NULL was matched and updated once"
    );
    let second = eval(&g).expect("evaluates");
    assert_eq!(
        second[2].1,
        Value::I64(0),
        "eval ran against the same table"
    );
    assert_eq!(
        graphjit::value_to_json(&second[0].1),
        serde_json::json!([{"id": 2, "note": "later"}, {"id": 4, "note": null},
                           {"id": 4, "note": null}]),
        "a second row 4, inserted by eval"
    );
}

#[test]
fn options_bind_as_null_or_their_value_on_postgres() {
    let db = setup();
    crate::support::pg_execute(&db.pg.url(), NOTES_SCHEMA);
    check_option_parameters(|g| db.run(g), |g| db.eval(g));
}

#[test]
fn options_bind_as_null_or_their_value_on_the_embedded_database() {
    let host = notes_on_sqlite();
    check_option_parameters(|g| run_on(&host, g), |g| eval_on(&host, g));
}
