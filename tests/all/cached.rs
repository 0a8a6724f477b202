//! `cached` (the seed's `Cached CacheKey ComputeNode`): a region whose result the host keeps
//! across runs under its key, the graph's footprint and the values the body reads. Both
//! engines make the same keys, so an entry one stores is a hit for the other; a hit skips the
//! body's effects (a real HTTP server counts what reaches it); entries expire after `ttl_ms`
//! and the memo is bounded.

use std::collections::BTreeMap;

use graphjit::testing::http_server::TestHttp;
use graphjit::{CompiledGraph, ErrorKind, Graph, Host, HostConfig, RunLimits, RunOutput, Value};

use crate::support::{block_on, graph, loopback, memory_only};

fn host_with(config: HostConfig) -> Host {
    Host::with_config(&config).expect("host")
}

fn inputs(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

fn run(host: &Host, compiled: &CompiledGraph, inputs: &BTreeMap<String, Value>) -> RunOutput {
    block_on(host.run(compiled, inputs, RunLimits::default())).expect("run")
}

fn eval(host: &Host, g: &Graph, inputs: &BTreeMap<String, Value>) -> RunOutput {
    block_on(host.eval_effects(g, inputs, RunLimits::default())).expect("eval")
}

fn counts(out: &RunOutput) -> (u32, u32) {
    (out.memo_hits, out.memo_misses)
}

/// `3 · (0 + 1 + … + (n − 1))`, cached under "triangle"; `scale` is read from outside the body.
const TRIANGLE: &str = r#"{"version": 2, "nodes": [
    {"id": "n", "op": "input", "type": "i64"},
    {"id": "scale", "op": "input", "type": "i64", "default": 3},
    {"id": "c", "op": "cached", "key": "triangle", "args": ["n"],
     "body": {"params": ["m"], "nodes": [
        {"id": "zero", "op": "const", "value": 0},
        {"id": "r", "op": "range", "args": ["zero", "m"]},
        {"id": "s", "op": "fold", "args": ["r", "zero"], "body": {"params": ["acc", "x"], "nodes": [
            {"id": "t", "op": "mul", "args": ["x", "scale"]},
            {"id": "a", "op": "add", "args": ["acc", "t"]}], "result": "a"}}
     ], "result": "s"}}
], "outputs": {"out": "c"}}"#;

fn triangle(n: i64, scale: i64) -> Value {
    Value::I64(scale * n * (n - 1) / 2)
}

#[test]
fn a_pure_region_runs_once_and_both_engines_hit_each_others_entries() {
    let host = host_with(memory_only());
    let g = graph(TRIANGLE);
    let compiled = host.compile(&g).expect("compiles");
    let at = |n| inputs(&[("n", Value::I64(n))]);

    let first = run(&host, &compiled, &at(10_000));
    assert_eq!(first.outputs[0].1, triangle(10_000, 3));
    assert_eq!(counts(&first), (0, 1));
    let second = run(&host, &compiled, &at(10_000));
    assert_eq!(second.outputs, first.outputs);
    assert_eq!(counts(&second), (1, 0));
    assert!(
        second.fuel_used * 10 < first.fuel_used,
        "a hit skips the body: {} vs {} fuel",
        second.fuel_used,
        first.fuel_used
    );
    // What the compiled run stored, eval finds; and the other way round.
    let interp = eval(&host, &g, &at(10_000));
    assert_eq!(
        (interp.outputs.clone(), counts(&interp)),
        (first.outputs, (1, 0))
    );
    let stored_by_eval = eval(&host, &g, &at(77));
    assert_eq!(counts(&stored_by_eval), (0, 1));
    let found_by_wasm = run(&host, &compiled, &at(77));
    assert_eq!(found_by_wasm.outputs, stored_by_eval.outputs);
    assert_eq!(found_by_wasm.outputs[0].1, triangle(77, 3));
    assert_eq!(counts(&found_by_wasm), (1, 0));

    let stats = host.memo_stats();
    assert_eq!((stats.entries, stats.hits, stats.misses), (2, 3, 2));
}

#[test]
fn the_key_holds_what_the_body_reads_from_outside_it() {
    // `scale` is not an argument: the body reads it from outside. Another scale must not be
    // served the first one's result.
    let host = host_with(memory_only());
    let g = graph(TRIANGLE);
    let compiled = host.compile(&g).expect("compiles");
    for scale in [3, 5, 3] {
        let i = inputs(&[("n", Value::I64(10)), ("scale", Value::I64(scale))]);
        assert_eq!(run(&host, &compiled, &i).outputs[0].1, triangle(10, scale));
        assert_eq!(eval(&host, &g, &i).outputs[0].1, triangle(10, scale));
    }
    let stats = host.memo_stats();
    assert_eq!((stats.entries, stats.misses, stats.hits), (2, 2, 4));
}

#[test]
fn another_key_or_another_body_never_shares_entries() {
    let host = host_with(memory_only());
    let i = inputs(&[("n", Value::I64(10))]);
    let variants = [
        TRIANGLE.to_string(),
        TRIANGLE.replace("\"triangle\"", "\"triangle-v2\""),
        // The same key over another body (add instead of mul): a different computation.
        TRIANGLE.replace(
            r#""op": "mul", "args": ["x", "scale"]"#,
            r#""op": "add", "args": ["x", "scale"]"#,
        ),
    ];
    let mut values = Vec::new();
    for text in &variants {
        let g = graph(text);
        let out = run(&host, &host.compile(&g).expect("compiles"), &i);
        assert_eq!(counts(&out), (0, 1), "{text}");
        values.push(out.outputs[0].1.clone());
    }
    assert_eq!(values[0], triangle(10, 3));
    assert_eq!(values[2], Value::I64(45 + 30), "sum of x + 3 for x < 10");
}

#[test]
fn the_memo_is_bounded_by_entries_least_recently_used_first() {
    let host = host_with(HostConfig {
        memo_entries: 2,
        ..memory_only()
    });
    let g = graph(TRIANGLE);
    let compiled = host.compile(&g).expect("compiles");
    let mut seen = Vec::new();
    for n in [1, 2, 1, 3, 2, 1] {
        let out = run(&host, &compiled, &inputs(&[("n", Value::I64(n))]));
        assert_eq!(out.outputs[0].1, triangle(n, 3));
        seen.push(out.memo_hits);
    }
    // 1 miss, 2 miss, 1 hit, 3 miss (evicts 2), 2 miss (evicts 1), 1 miss.
    assert_eq!(seen, [0, 0, 1, 0, 0, 0]);
    let stats = host.memo_stats();
    assert_eq!((stats.entries, stats.evictions), (2, 3));

    let none = host_with(HostConfig {
        memo_entries: 0,
        ..memory_only()
    });
    let compiled = none.compile(&g).expect("compiles");
    for _ in 0..2 {
        let out = run(&none, &compiled, &inputs(&[("n", Value::I64(4))]));
        assert_eq!(counts(&out), (0, 1));
    }
}

#[test]
fn a_body_that_fails_stores_nothing() {
    let host = host_with(memory_only());
    let g = graph(
        r#"{"version": 2, "nodes": [
            {"id": "d", "op": "input", "type": "i64"},
            {"id": "c", "op": "cached", "key": "quotient", "args": ["d"],
             "body": {"params": ["x"], "nodes": [
                {"id": "hundred", "op": "const", "value": 100},
                {"id": "q", "op": "div", "args": ["hundred", "x"]}], "result": "q"}}
        ], "outputs": {"q": "c"}}"#,
    );
    let compiled = host.compile(&g).expect("compiles");
    let zero = inputs(&[("d", Value::I64(0))]);
    for _ in 0..2 {
        let e = block_on(host.run(&compiled, &zero, RunLimits::default())).expect_err("0");
        assert_eq!(
            (e.kind, e.node.as_deref()),
            (ErrorKind::DivisionByZero, Some("q"))
        );
        let e = block_on(host.eval_effects(&g, &zero, RunLimits::default())).expect_err("0");
        assert_eq!(
            (e.kind, e.node.as_deref()),
            (ErrorKind::DivisionByZero, Some("q"))
        );
    }
    assert_eq!(host.memo_stats().entries, 0);
    let four = inputs(&[("d", Value::I64(4))]);
    assert_eq!(run(&host, &compiled, &four).outputs[0].1, Value::I64(25));
    assert_eq!(counts(&run(&host, &compiled, &four)), (1, 0));
}

mod effects {
    use super::*;

    /// `examples/cached-fetch.json` against the test server's pricing endpoint.
    fn example(server: &TestHttp, ttl_ms: Option<u64>) -> Graph {
        let port = server.addr().port();
        let mut text = include_str!("../../examples/cached-fetch.json")
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
            .replace("\"port\": 8080", &format!("\"port\": {port}"));
        if let Some(ms) = ttl_ms {
            text = text.replace("\"ttl_ms\": 60000", &format!("\"ttl_ms\": {ms}"));
        }
        graph(&text)
    }

    fn discounts(out: &RunOutput) -> serde_json::Value {
        graphjit::value_to_json(&out.outputs[0].1)
    }

    #[test]
    fn a_hit_skips_the_request_and_counts_against_no_effect_cap() {
        let server = TestHttp::start();
        let host = host_with(loopback());
        let g = example(&server, None);
        let compiled = host.compile(&g).expect("compiles");
        let none = BTreeMap::new();
        let want = serde_json::json!([0.05, 0.0, 0.05, 0.15]);

        // ada is asked for once: her second order is a hit within the same run.
        let first = run(&host, &compiled, &none);
        assert_eq!(discounts(&first), want);
        assert_eq!(counts(&first), (1, 3));
        assert_eq!((first.effect_calls, server.requests()), (3, 3));

        // Every element is a hit now: no request, so a run allowed no effect call succeeds.
        let capped = RunLimits {
            max_effect_calls: 0,
            ..RunLimits::default()
        };
        let second = block_on(host.run(&compiled, &none, capped)).expect("all hits");
        assert_eq!(discounts(&second), want);
        assert_eq!((counts(&second), second.effect_calls), ((4, 0), 0));
        let interp = block_on(host.eval_effects(&g, &none, capped)).expect("all hits");
        assert_eq!(discounts(&interp), want);
        assert_eq!(counts(&interp), (4, 0));
        assert_eq!(server.requests(), 3, "nothing more reached the server");

        // Another API key is another read of the body: asked again.
        let other = inputs(&[("key", Value::Str("wrong".into()))]);
        let e = block_on(host.run(&compiled, &other, RunLimits::default())).expect_err("401");
        assert_eq!(e.node.as_deref(), Some("price"), "{e}");
        assert_eq!(server.requests(), 4);
    }

    #[test]
    fn entries_with_effects_expire_after_ttl_ms() {
        let server = TestHttp::start();
        let host = host_with(loopback());
        let g = example(&server, Some(400));
        let compiled = host.compile(&g).expect("compiles");
        let none = BTreeMap::new();
        assert_eq!(counts(&run(&host, &compiled, &none)), (1, 3));
        assert_eq!(counts(&run(&host, &compiled, &none)), (4, 0));
        std::thread::sleep(std::time::Duration::from_millis(500));
        let expired = eval(&host, &g, &none);
        assert_eq!(counts(&expired), (1, 3));
        assert_eq!(server.requests(), 6);
        assert!(host.memo_stats().expired >= 3);
    }

    #[test]
    fn another_footprint_never_shares_entries() {
        // The same body under a wider footprint: a graph must never be handed what was
        // fetched under another graph's permissions, so the footprint is part of the key.
        let server = TestHttp::start();
        let host = host_with(loopback());
        let narrow = example(&server, None);
        let port = server.addr().port();
        let wide = graph(
            &include_str!("../../examples/cached-fetch.json")
                .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
                .replace("\"port\": 8080", &format!("\"port\": {port}"))
                .replace("\"path_prefix\": \"/pricing\"", "\"path_prefix\": \"/\""),
        );
        let none = BTreeMap::new();
        for g in [&narrow, &wide] {
            let out = run(&host, &host.compile(g).expect("compiles"), &none);
            assert_eq!(counts(&out), (1, 3));
        }
        assert_eq!(server.requests(), 6);
    }
}

#[test]
fn malformed_cached_nodes_are_typed_graph_errors() {
    let node = |fields: &str, body: &str| {
        format!(
            r#"{{"version": 2, "nodes": [
                {{"id": "a", "op": "input", "type": "i64"}},
                {{"id": "c", "op": "cached", {fields} "body": {body}}}
            ], "outputs": {{"c": "c"}},
            "footprint": {{"http": [{{"method": "GET", "scheme": "http", "host": "127.0.0.1", "port": 9, "path_prefix": "/"}}]}}}}"#
        )
    };
    let plain = r#"{"params": ["x"], "nodes": [], "result": "x"}"#;
    let fetch = r#"{"params": ["x"], "nodes": [
        {"id": "f", "op": "http", "method": "GET", "url": "http://127.0.0.1:9/"}], "result": "f"}"#;
    let cases = [
        (node(r#""args": ["a"],"#, plain), "needs a \"key\""),
        (
            node(r#""key": "", "args": ["a"],"#, plain),
            "1 to 256 bytes",
        ),
        (
            node(r#""key": "k", "ttl_ms": 0, "args": ["a"],"#, plain),
            "never hit",
        ),
        (
            node(
                r#""key": "k", "ttl_ms": 99999999999, "args": ["a"],"#,
                plain,
            ),
            "longest lifetime",
        ),
        (
            node(r#""key": "k", "args": ["a"],"#, fetch),
            "needs \"ttl_ms\"",
        ),
        (node(r#""key": "k","#, plain), "one param per argument"),
        (
            node(
                r#""key": "k", "args": ["a"],"#,
                r#"{"params": ["x"], "nodes": [{"id": "t", "op": "fork", "args": ["x", "x"]}], "result": "t"}"#,
            ),
            "a cached value is data",
        ),
        (
            node(r#""key": "k", "args": ["a"], "iterations": 3,"#, plain),
            "does not take the field \"iterations\"",
        ),
        (
            node(r#""key": "k", "args": ["a"],"#, plain)
                .replace("\"version\": 2", "\"version\": 1"),
            "version 2",
        ),
    ];
    for (text, why) in cases {
        let e = Graph::from_json(text.as_bytes()).expect_err(why);
        assert_eq!(e.kind, ErrorKind::InvalidGraph, "{why}: {e}");
        assert!(e.message.contains(why), "{why}: {e}");
        assert_eq!(e.node.as_deref(), Some("c"), "{why}: {e}");
    }
    // With a lifetime, the fetching body is a graph.
    graph(&node(
        r#""key": "k", "ttl_ms": 1000, "args": ["a"],"#,
        fetch,
    ));
}

#[test]
fn run_repeat_shows_the_memo_in_its_stats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("triangle.json");
    std::fs::write(&file, TRIANGLE).expect("write");
    for command in ["run", "eval"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_graphjit"))
            .args([command, file.to_str().expect("utf-8"), "--input", "n=100"])
            .args(["--repeat", "3", "--json", "--no-disk-cache"])
            .output()
            .expect("graphjit runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(json["output"]["out"], 14850, "{json}");
        assert_eq!(
            json["stats"]["memo"],
            serde_json::json!({"hits": 1, "misses": 0})
        );
    }
}
