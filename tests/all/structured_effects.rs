//! Effects on structured data (graph format version 2), against real servers: `http` with
//! headers, a JSON body and the full response; `db_execute_many` in one transaction on
//! PostgreSQL and on the embedded SQLite. Every case runs in wasm and in eval, which agree.

use std::collections::BTreeMap;

use graphjit::testing::http_server::TestHttp;
use graphjit::testing::postgres::TestPostgres;
use graphjit::{EffectClass, Error, ErrorKind, Graph, Host, HostConfig, RunLimits, Value};

use crate::support::{block_on, graph, loopback, memory_only};

type Outputs = Result<Vec<(String, Value)>, Error>;

fn run(host: &Host, g: &Graph, inputs: &BTreeMap<String, Value>) -> Outputs {
    let compiled = host.compile(g)?;
    block_on(host.run(&compiled, inputs, RunLimits::default())).map(|o| o.outputs)
}

fn eval(host: &Host, g: &Graph, inputs: &BTreeMap<String, Value>) -> Outputs {
    block_on(host.eval_effects(g, inputs, RunLimits::default())).map(|o| o.outputs)
}

/// Both engines, which must agree (on the value or on the error's kind and node).
fn both(host: &Host, g: &Graph, inputs: &BTreeMap<String, Value>) -> Outputs {
    let wasm = run(host, g, inputs);
    let interp = eval(host, g, inputs);
    match (&wasm, &interp) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "wasm == eval"),
        (Err(a), Err(b)) => {
            assert_eq!(a.kind, b.kind, "same error kind: {a} / {b}");
            assert_eq!(a.node, b.node, "same node: {a} / {b}");
        }
        _ => panic!("wasm {wasm:?}, eval {interp:?}"),
    }
    wasm
}

fn json_of(out: &[(String, Value)], name: &str) -> serde_json::Value {
    let value = &out
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no output {name}"))
        .1;
    graphjit::value_to_json(value)
}

fn is_class(e: &Error, want: EffectClass) -> bool {
    matches!(&e.kind, ErrorKind::EffectFailed { class, .. } if *class == want)
}

mod http {
    use super::*;

    fn host() -> Host {
        Host::with_config(&loopback()).expect("host")
    }

    /// One `http` node (`node`: its fields after the id) over `before` nodes, with the
    /// footprint allowing any path on the server (and on `localhost`, for redirects).
    fn request(server: &TestHttp, before: &str, node: &str) -> Graph {
        let port = server.addr().port();
        let node = node.replace("PORT", &port.to_string());
        graph(&format!(
            r#"{{"version": 2, "nodes": [{before}
                {{"id": "r", "op": "http", {node}}}
            ], "outputs": {{"r": "r"}},
            "footprint": {{"http": [
                {{"method": "POST", "scheme": "http", "host": "127.0.0.1", "port": {port}}},
                {{"method": "GET", "scheme": "http", "host": "127.0.0.1", "port": {port}}},
                {{"method": "GET", "scheme": "http", "host": "localhost", "port": {port}}}
            ]}}}}"#
        ))
    }

    const ORDER: &str = r#"
        {"id": "customer", "op": "input", "type": "string"},
        {"id": "total", "op": "input", "type": "f64"},
        {"id": "key", "op": "input", "type": "string"},
        {"id": "body", "op": "record", "fields": ["customer", "total"], "args": ["customer", "total"]},"#;

    const PRICE: &str = r#""method": "POST", "url": "http://127.0.0.1:PORT/pricing",
        "headers": ["X-Api-Key"], "args": ["body", "key"], "response": "full",
        "type": {"record": {"status": "i64",
                            "headers": {"list": {"record": {"name": "string", "value": "string"}}},
                            "body": "string"}}"#;

    fn order(customer: &str, total: f64, key: &str) -> BTreeMap<String, Value> {
        BTreeMap::from([
            ("customer".to_owned(), Value::Str(customer.to_owned())),
            ("total".to_owned(), Value::F64(total)),
            ("key".to_owned(), Value::Str(key.to_owned())),
        ])
    }

    #[test]
    fn a_json_body_and_headers_go_out_and_the_full_response_comes_back() {
        let server = TestHttp::start();
        let host = host();
        // The body read as JSON of a declared record.
        let typed = PRICE.replace(
            r#""body": "string""#,
            r#""body": {"record": {"customer": "string", "discount": "f64"}}"#,
        );
        let g = request(&server, ORDER, &typed);
        let out = both(&host, &g, &order("ada", 420.0, "test-key")).expect("priced");
        let r = json_of(&out, "r");
        assert_eq!(r["status"], 200);
        assert_eq!(
            r["body"],
            serde_json::json!({"customer": "ada", "discount": 0.05})
        );
        let rule = r["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .find(|h| h["name"] == "x-price-rule")
            .map(|h| h["value"].clone());
        assert_eq!(rule, Some(serde_json::json!("silver")));
        assert_eq!(server.requests(), 2, "one request per engine");

        // A 401 is a value the graph can branch on, not an error, when it reads the full
        // response; the same answer read as the body alone is `http_status`.
        let g = request(&server, ORDER, PRICE);
        let out = both(&host, &g, &order("ada", 420.0, "wrong")).expect("answered");
        let r = json_of(&out, "r");
        assert_eq!(r["status"], 401);
        assert_eq!(r["body"], r#"{"error":"bad key"}"#);
        let body_only = PRICE.replace(r#""response": "full","#, "").replace(
            r#"{"record": {"status": "i64",
                            "headers": {"list": {"record": {"name": "string", "value": "string"}}},
                            "body": "string"}}"#,
            r#""string""#,
        );
        let g = request(&server, ORDER, &body_only);
        let e = both(&host, &g, &order("ada", 420.0, "wrong")).expect_err("401");
        assert!(is_class(&e, EffectClass::HttpStatus), "{e}");
        // A body that does not fit the declared type is a bad answer naming the JSON path.
        let g = request(&server, ORDER, &typed);
        let e = both(&host, &g, &order("unknown-x", 1.0, "test-key")).expect_err("404 body");
        assert!(is_class(&e, EffectClass::BadAnswer), "{e}");
        assert!(e.message.contains("404"), "{e}");
    }

    #[test]
    fn headers_are_sent_as_declared_and_json_gets_its_content_type() {
        let server = TestHttp::start();
        let host = host();
        let before = r#"
            {"id": "n", "op": "const", "value": 7},
            {"id": "list", "op": "list", "args": ["n", "n"]},
            {"id": "token", "op": "const", "value": "Bearer t0"},
            {"id": "trace", "op": "none", "type": {"option": "string"}},"#;
        let node = r#""method": "POST", "url": "http://127.0.0.1:PORT/echo",
            "headers": ["authorization", "x-trace"], "args": ["list", "token", "trace"]"#;
        let g = request(&server, before, node);
        let out = both(&host, &g, &BTreeMap::new()).expect("echoed");
        let Value::Str(text) = &out[0].1 else {
            panic!("a string")
        };
        let echoed: serde_json::Value = serde_json::from_str(text).expect("echo is JSON");
        assert_eq!(echoed["body"], "[7,7]", "the canonical JSON of the list");
        assert_eq!(echoed["headers"]["authorization"], "Bearer t0");
        assert_eq!(echoed["headers"]["content-type"], "application/json");
        assert!(
            echoed["headers"].get("x-trace").is_none(),
            "an empty option sends no header: {echoed}"
        );
    }

    #[test]
    fn headers_the_sandbox_owns_are_refused_when_the_graph_loads() {
        for name in [
            "Host",
            "content-length",
            "Transfer-Encoding",
            "connection",
            "keep-alive",
            "upgrade",
            "te",
            "proxy-authorization",
            "x-forwarded-for",
            "forwarded",
            "bad header",
            "x\r\nhost",
            "",
        ] {
            let json = format!(
                r#"{{"version": 2, "nodes": [
                    {{"id": "v", "op": "const", "value": "x"}},
                    {{"id": "r", "op": "http", "method": "GET", "url": "http://127.0.0.1:1/",
                     "headers": [{}], "args": ["v"]}}
                ], "outputs": {{"r": "r"}},
                "footprint": {{"http": [{{"method": "GET", "scheme": "http", "host": "127.0.0.1", "port": 1}}]}}}}"#,
                serde_json::to_string(name).expect("a JSON string")
            );
            let e = Graph::from_json(json.as_bytes()).expect_err(name);
            assert_eq!(e.kind, ErrorKind::InvalidGraph, "{name:?}: {e}");
            assert_eq!(e.node.as_deref(), Some("r"), "{name:?}");
        }
        // Twice the same name, a header without a value, and version 1.
        for (headers, args, version) in [
            (r#"["a", "A"]"#, r#"["v", "v"]"#, 2),
            (r#"["a", "b"]"#, r#"["v"]"#, 2),
            (r#"["a"]"#, r#"["v"]"#, 1),
        ] {
            let json = format!(
                r#"{{"version": {version}, "nodes": [
                    {{"id": "v", "op": "const", "value": "x"}},
                    {{"id": "r", "op": "http", "method": "GET", "url": "http://127.0.0.1:1/",
                     "headers": {headers}, "args": {args}}}
                ], "outputs": {{"r": "r"}}}}"#
            );
            let e = Graph::from_json(json.as_bytes()).expect_err(headers);
            assert_eq!(e.kind, ErrorKind::InvalidGraph, "{headers}: {e}");
        }
    }

    #[test]
    fn a_hostile_header_value_is_refused_before_anything_is_sent() {
        let server = TestHttp::start();
        let host = host();
        let g = request(
            &server,
            r#"{"id": "v", "op": "input", "type": "string"},"#,
            r#""method": "GET", "url": "http://127.0.0.1:PORT/echo", "headers": ["x-note"],
               "args": ["v"]"#,
        );
        for hostile in ["a\r\nhost: evil.example", "a\nb", "nul\0", "del\u{7f}"] {
            let inputs = BTreeMap::from([("v".to_owned(), Value::Str(hostile.to_owned()))]);
            let e = both(&host, &g, &inputs).expect_err(hostile);
            assert!(is_class(&e, EffectClass::Other), "{hostile:?}: {e}");
            assert!(e.message.contains("control character"), "{e}");
        }
        assert_eq!(server.requests(), 0, "nothing reached the server");
        // A tab and non-ASCII text are fine.
        let inputs = BTreeMap::from([("v".to_owned(), Value::Str("a\tü".to_owned()))]);
        let out = both(&host, &g, &inputs).expect("sent");
        let Value::Str(text) = &out[0].1 else {
            panic!("a string")
        };
        let echoed: serde_json::Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(echoed["headers"]["x-note"], "a\tü");
    }

    #[test]
    fn credentials_do_not_follow_a_redirect_to_another_origin() {
        let server = TestHttp::start();
        let host = host();
        let port = server.addr().port();
        let before = r#"{"id": "auth", "op": "const", "value": "Bearer secret"},"#;
        for (to, kept) in [
            (format!("http://127.0.0.1:{port}/echo"), true),
            (format!("http://localhost:{port}/echo"), false),
        ] {
            let node = format!(
                r#""method": "GET", "url": "http://127.0.0.1:PORT/redirect?to={to}",
                   "headers": ["authorization"], "args": ["auth"]"#
            );
            let out =
                both(&host, &request(&server, before, &node), &BTreeMap::new()).expect("followed");
            let Value::Str(text) = &out[0].1 else {
                panic!("a string")
            };
            let echoed: serde_json::Value = serde_json::from_str(text).expect("JSON");
            assert_eq!(
                echoed["headers"].get("authorization").is_some(),
                kept,
                "{to}: {echoed}"
            );
        }
    }
}

mod execute_many {
    use super::*;

    const SCHEMA: &str = "CREATE TABLE discounts (customer text PRIMARY KEY, pct double precision NOT NULL, note text);
         CREATE TABLE other (x bigint);";

    fn write(sql: &str, fields: &str, write_table: &str) -> Graph {
        graph(&format!(
            r#"{{"version": 2, "nodes": [
                {{"id": "rows", "op": "input", "type": {{"list": {{"record":
                    {{"customer": "string", "pct": "f64", "note": {{"option": "string"}}}}}}}}}},
                {{"id": "w", "op": "db_execute_many", "args": ["rows"], "fields": {fields},
                 "sql": "{sql}"}},
                {{"id": "n", "op": "db_query", "after": ["w"], "type": "i64",
                 "sql": "SELECT count(*) FROM discounts"}}
            ], "outputs": {{"written": "w", "count": "n"}},
            "footprint": {{"db": {{"read": ["discounts"], "write": ["{write_table}"]}}}}}}"#
        ))
    }

    fn rows(items: &[(&str, f64, Option<&str>)]) -> BTreeMap<String, Value> {
        let list = items
            .iter()
            .map(|(c, p, n)| {
                Value::Record(vec![
                    ("customer".to_owned(), Value::Str((*c).to_owned())),
                    (
                        "note".to_owned(),
                        Value::Option(n.map(|n| Box::new(Value::Str(n.to_owned())))),
                    ),
                    ("pct".to_owned(), Value::F64(*p)),
                ])
            })
            .collect();
        BTreeMap::from([("rows".to_owned(), Value::List(list))])
    }

    const INSERT: &str = "INSERT INTO discounts (customer, pct, note) VALUES ($1, $2, $3)";

    /// `engine` is run or eval on the database under test; `count` reads the table directly.
    fn check(engine: &dyn Fn(&Graph, &BTreeMap<String, Value>) -> Outputs, prefix: &str) {
        let g = write(INSERT, r#"["customer", "pct", "note"]"#, "discounts");
        let a = format!("{prefix}a");
        let b = format!("{prefix}b");
        let c = format!("{prefix}c");
        let out = engine(&g, &rows(&[(&a, 0.1, None), (&b, 0.2, Some("vip"))])).expect("writes");
        assert_eq!(out[1].1, Value::I64(2), "rows affected: {out:?}");
        let before = out[0].1.clone();
        // Row 3 repeats a key: nothing of this call is written.
        let e = engine(
            &g,
            &rows(&[
                (&c, 0.3, None),
                (&format!("{prefix}d"), 0.4, None),
                (&a, 0.5, None),
            ]),
        )
        .expect_err("a duplicate key");
        assert!(is_class(&e, EffectClass::Constraint), "{e}");
        assert_eq!(e.node.as_deref(), Some("w"));
        let g_count = write(INSERT, r#"["customer", "pct", "note"]"#, "discounts");
        let out = engine(&g_count, &rows(&[])).expect("an empty list writes nothing");
        assert_eq!(out[1].1, Value::I64(0));
        assert_eq!(out[0].1, before, "the failed call left no row behind");
        // A table the footprint does not allow, and the wrong number of parameters.
        let g = write(
            "INSERT INTO other (x) VALUES (1)",
            r#"["customer"]"#,
            "discounts",
        );
        let e = engine(&g, &rows(&[(&c, 0.3, None)])).expect_err("outside the footprint");
        assert_eq!(e.kind, ErrorKind::FootprintDenied, "{e}");
        let g = write(
            "INSERT INTO discounts (customer, pct) VALUES ($1, $2)",
            r#"["customer"]"#,
            "discounts",
        );
        let e = engine(&g, &rows(&[(&c, 0.3, None)])).expect_err("one parameter short");
        assert!(matches!(e.kind, ErrorKind::EffectFailed { .. }), "{e}");
    }

    #[test]
    fn writes_every_row_or_none_on_postgres() {
        let pg = TestPostgres::start().unwrap_or_else(|e| panic!("PostgreSQL is needed: {e}"));
        crate::support::pg_execute(&pg.url(), SCHEMA);
        let host = Host::with_config(&memory_only()).expect("host");
        block_on(host.connect_database(&pg.url())).expect("database");
        check(&|g, i| run(&host, g, i), "w");
        check(&|g, i| eval(&host, g, i), "e");
    }

    #[test]
    fn a_host_sets_how_many_rows_one_query_may_return() {
        let pg = TestPostgres::start().unwrap_or_else(|e| panic!("PostgreSQL is needed: {e}"));
        crate::support::pg_execute(
            &pg.url(),
            "CREATE TABLE discounts (customer text PRIMARY KEY, pct double precision NOT NULL, note text);
             INSERT INTO discounts SELECT 'c' || i, 0.1, NULL FROM generate_series(1, 3) AS i;",
        );
        let g = graph(
            r#"{"version": 2, "nodes": [
                {"id": "all", "op": "db_query", "sql": "SELECT customer FROM discounts ORDER BY customer",
                 "type": {"list": {"record": {"customer": "string"}}}}
            ], "outputs": {"all": "all"}, "footprint": {"db": {"read": ["discounts"]}}}"#,
        );
        for (max_rows, fits) in [(3, true), (2, false)] {
            let host = Host::with_config(&memory_only()).expect("host");
            let limits = graphjit::DatabaseLimits {
                max_rows,
                ..graphjit::DatabaseLimits::default()
            };
            block_on(host.connect_database_with(&pg.url(), limits)).expect("database");
            let out = both(&host, &g, &BTreeMap::new());
            match (out, fits) {
                (Ok(out), true) => {
                    assert_eq!(json_of(&out, "all").as_array().map(Vec::len), Some(3))
                }
                (Err(e), false) => {
                    assert!(is_class(&e, EffectClass::Limit), "{e}");
                    assert!(e.message.contains("row limit of 2"), "{e}");
                }
                (out, _) => panic!("max_rows {max_rows}: {out:?}"),
            }
        }
    }

    #[test]
    fn writes_every_row_or_none_on_the_embedded_database() {
        let host = Host::with_config(&memory_only()).expect("host");
        host.use_embedded_database(Some(&SCHEMA.replace("double precision", "real")))
            .expect("sqlite");
        check(&|g, i| run(&host, g, i), "w");
        check(&|g, i| eval(&host, g, i), "e");
    }

    #[test]
    fn fields_must_be_parameters_of_the_records() {
        for (fields, why) in [
            (r#"["missing"]"#, "no field"),
            (r#"["tags"]"#, "cannot be an SQL parameter"),
        ] {
            let json = format!(
                r#"{{"version": 2, "nodes": [
                    {{"id": "rows", "op": "input", "type": {{"list": {{"record":
                        {{"id": "i64", "tags": {{"list": "string"}}}}}}}}}},
                    {{"id": "w", "op": "db_execute_many", "args": ["rows"], "fields": {fields},
                     "sql": "INSERT INTO t (id) VALUES ($1)"}}
                ], "outputs": {{"w": "w"}},
                "footprint": {{"db": {{"write": ["t"]}}}}}}"#
            );
            let e = Graph::from_json(json.as_bytes()).expect_err(fields);
            assert_eq!(e.kind, ErrorKind::InvalidGraph, "{e}");
            assert!(e.message.contains(why), "{fields}: {e}");
        }
    }
}

mod orders {
    //! `examples/orders.json`: read open orders, keep the big ones, group them by customer,
    //! price each customer on the pricing API (a 404 handled in the graph), write one row per
    //! customer in one transaction — on the embedded SQLite and on PostgreSQL.

    use super::*;

    const SCHEMA: &str = include_str!("../../examples/db/orders.sql");

    fn example(server: &TestHttp) -> Graph {
        let text = include_str!("../../examples/orders.json");
        let port = server.addr().port();
        graph(
            &text
                .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
                .replace("\"port\": 8080", &format!("\"port\": {port}")),
        )
    }

    fn host() -> Host {
        Host::with_config(&loopback()).expect("host")
    }

    fn expected() -> serde_json::Value {
        serde_json::json!([
            {"customer": "ada", "discount": 0.15, "orders": 2, "total": 570.5},
            {"customer": "bob", "discount": 0.0, "orders": 1, "total": 80.0},
            {"customer": "cy", "discount": 0.05, "orders": 1, "total": 200.0},
            {"customer": "unknown-zed", "discount": 0.0, "orders": 1, "total": 300.0}
        ])
    }

    fn check(out: &[(String, Value)]) {
        assert_eq!(json_of(out, "customers"), expected());
        assert_eq!(json_of(out, "written"), 4);
    }

    #[test]
    fn the_orders_example_runs_on_the_embedded_database_in_both_engines() {
        let server = TestHttp::start();
        let g = example(&server);
        let inputs = BTreeMap::new();
        for engine in [run, eval] {
            // A fresh database each time: the example's write has a primary key.
            let host = host();
            host.use_embedded_database(Some(SCHEMA)).expect("sqlite");
            check(&engine(&host, &g, &inputs).expect("the pipeline runs"));
            // Run again on the same database: the rows are there, so the whole write is
            // refused and nothing is half-written.
            let e = engine(&host, &g, &inputs).expect_err("already written");
            assert!(is_class(&e, EffectClass::Constraint), "{e}");
            assert_eq!(e.node.as_deref(), Some("written"));
        }
        // Four customers priced per engine, two engines, each run twice.
        assert_eq!(server.requests(), 16);
    }

    #[test]
    fn the_orders_example_runs_on_postgres_in_both_engines() {
        let server = TestHttp::start();
        let pg = TestPostgres::start().unwrap_or_else(|e| panic!("PostgreSQL is needed: {e}"));
        crate::support::pg_execute(&pg.url(), SCHEMA);
        let host = host();
        block_on(host.connect_database(&pg.url())).expect("database");
        let g = example(&server);
        let inputs = BTreeMap::new();
        check(&run(&host, &g, &inputs).expect("runs"));
        crate::support::pg_execute(&pg.url(), "DELETE FROM customer_discounts");
        check(&eval(&host, &g, &inputs).expect("evaluates"));
        // A higher threshold leaves fewer orders, and a wrong key makes every price a 401,
        // handled in the graph as no discount.
        crate::support::pg_execute(&pg.url(), "DELETE FROM customer_discounts");
        let inputs = BTreeMap::from([
            ("threshold".to_owned(), Value::F64(250.0)),
            ("key".to_owned(), Value::Str("wrong".to_owned())),
        ]);
        let out = both_fresh(&host, &pg, &g, &inputs);
        assert_eq!(
            json_of(&out, "customers"),
            serde_json::json!([
                {"customer": "ada", "discount": 0.0, "orders": 1, "total": 450.5},
                {"customer": "unknown-zed", "discount": 0.0, "orders": 1, "total": 300.0}
            ])
        );
    }

    /// Both engines on a table emptied before each.
    fn both_fresh(
        host: &Host,
        pg: &TestPostgres,
        g: &Graph,
        inputs: &BTreeMap<String, Value>,
    ) -> Vec<(String, Value)> {
        let wasm = run(host, g, inputs).expect("runs");
        crate::support::pg_execute(&pg.url(), "DELETE FROM customer_discounts");
        let interp = eval(host, g, inputs).expect("evaluates");
        assert_eq!(wasm, interp, "wasm == eval");
        wasm
    }
}

mod batched_map {
    //! Effects inside a `map` go out as one round for all its elements (the N+1 problem): in
    //! wasm with the `batch` pass, one host call served concurrently; eval issues them one by
    //! one; both agree on the values and on the first error.

    use super::*;

    fn host() -> Host {
        Host::with_config(&loopback()).expect("host")
    }

    /// `map` over `range(0, n)`: each element asks `/delay/100` with its index as a header.
    fn delays(server: &TestHttp, n: i64) -> Graph {
        let port = server.addr().port();
        graph(&format!(
            r#"{{"version": 2, "nodes": [
                {{"id": "zero", "op": "const", "value": 0}},
                {{"id": "n", "op": "const", "value": {n}}},
                {{"id": "is", "op": "range", "args": ["zero", "n"]}},
                {{"id": "answers", "op": "map", "args": ["is"], "body": {{"params": ["i"], "nodes": [
                    {{"id": "tag", "op": "to_string", "args": ["i"]}},
                    {{"id": "r", "op": "http", "method": "GET", "headers": ["x-element"],
                     "args": ["tag"], "url": "http://127.0.0.1:{port}/delay/100",
                     "type": {{"record": {{"delayed_ms": "i64"}}}}}},
                    {{"id": "ms", "op": "field", "field": "delayed_ms", "args": ["r"]}},
                    {{"id": "both", "op": "add", "args": ["ms", "i"]}}], "result": "both"}}}}
            ], "outputs": {{"answers": "answers"}},
            "footprint": {{"http": [{{"method": "GET", "scheme": "http", "host": "127.0.0.1",
                                      "port": {port}, "path_prefix": "/delay/"}}]}}}}"#
        ))
    }

    #[test]
    fn a_maps_effects_are_one_round_served_concurrently_in_element_order() {
        let server = TestHttp::start();
        let host = host();
        let g = delays(&server, 8);
        let compiled = host.compile(&g).expect("compiles");
        let out =
            block_on(host.run(&compiled, &BTreeMap::new(), RunLimits::default())).expect("runs");
        assert_eq!(
            graphjit::value_to_json(&out.outputs[0].1),
            serde_json::json!([100, 101, 102, 103, 104, 105, 106, 107]),
            "answers in element order"
        );
        assert_eq!(out.effect_calls, 8, "the caps count each call");
        assert_eq!(out.effect_rounds, 1, "one host call for the lot");
        assert!(
            server.most_concurrent_delays() >= 4,
            "served concurrently: at most {} at once",
            server.most_concurrent_delays()
        );
        let explained = host.explain(&g);
        assert!(
            explained
                .rounds
                .iter()
                .any(|r| r.iter().any(|s| s.contains("per element of map answers"))),
            "{:?}",
            explained.rounds
        );
        // eval issues them one by one, with the same values.
        let eval_out = eval(&host, &g, &BTreeMap::new()).expect("evaluates");
        assert_eq!(eval_out, out.outputs);
        // Without the pass the map calls once per element, and still agrees.
        let plain = Host::with_config(&HostConfig {
            passes: graphjit::PassConfig::parse("fold,cse,dce,fuse,place").expect("passes"),
            ..loopback()
        })
        .expect("host");
        let compiled = plain.compile(&g).expect("compiles");
        let out =
            block_on(plain.run(&compiled, &BTreeMap::new(), RunLimits::default())).expect("runs");
        assert_eq!(out.outputs, eval_out);
        assert_eq!(out.effect_rounds, 8);
    }

    /// A map pricing five customers; element 3 divides by zero before its request.
    fn pricing(server: &TestHttp, second: &str) -> Graph {
        let port = server.addr().port();
        graph(&format!(
            r#"{{"version": 2, "nodes": [
                {{"id": "a", "op": "const", "value": "ada"}},
                {{"id": "b", "op": "const", "value": "{second}"}},
                {{"id": "names", "op": "list", "args": ["a", "b", "a", "a", "a"]}},
                {{"id": "zero", "op": "const", "value": 0}},
                {{"id": "five", "op": "const", "value": 5}},
                {{"id": "is", "op": "range", "args": ["zero", "five"]}},
                {{"id": "pairs", "op": "zip", "args": ["names", "is"]}},
                {{"id": "key", "op": "const", "value": "test-key"}},
                {{"id": "hundred", "op": "const", "value": 100}},
                {{"id": "three", "op": "const", "value": 3}},
                {{"id": "prices", "op": "map", "args": ["pairs"], "body": {{"params": ["p"], "nodes": [
                    {{"id": "customer", "op": "field", "field": "first", "args": ["p"]}},
                    {{"id": "i", "op": "field", "field": "second", "args": ["p"]}},
                    {{"id": "gap", "op": "sub", "args": ["i", "three"]}},
                    {{"id": "d", "op": "div", "args": ["hundred", "gap"]}},
                    {{"id": "total", "op": "to_f64", "args": ["d"]}},
                    {{"id": "req", "op": "record", "fields": ["customer", "total"],
                     "args": ["customer", "total"]}},
                    {{"id": "r", "op": "http", "method": "POST", "headers": ["x-api-key"],
                     "args": ["req", "key"], "url": "http://127.0.0.1:{port}/pricing",
                     "type": {{"record": {{"customer": "string", "discount": "f64"}}}}}},
                    {{"id": "discount", "op": "field", "field": "discount", "args": ["r"]}}],
                    "result": "discount"}}}}
            ], "outputs": {{"prices": "prices"}},
            "footprint": {{"http": [{{"method": "POST", "scheme": "http", "host": "127.0.0.1",
                                      "port": {port}, "path_prefix": "/pricing"}}]}}}}"#
        ))
    }

    #[test]
    fn the_first_error_is_the_one_element_by_element_order_meets() {
        let server = TestHttp::start();
        let host = host();
        // Element 1's price is a 404, before element 3's division by zero.
        let e =
            both(&host, &pricing(&server, "unknown-b"), &BTreeMap::new()).expect_err("a 404 first");
        assert!(is_class(&e, EffectClass::HttpStatus), "{e}");
        assert_eq!(e.node.as_deref(), Some("r"));
        // With every customer known, the division is the first error.
        let e =
            both(&host, &pricing(&server, "bob"), &BTreeMap::new()).expect_err("division by zero");
        assert_eq!(e.kind, ErrorKind::DivisionByZero, "{e}");
        assert_eq!(e.node.as_deref(), Some("d"));
    }
}
