//! List fusion (the `fuse` pass on lists): a chain of `range`, `map`, `filter` and `fold`
//! runs as one loop with no intermediate list. It must change nothing a run computes: the
//! values, and when several elements fail, the error an unfused run meets first. Each case
//! runs fused, unfused (no passes) and in eval.

use std::collections::BTreeMap;

use graphjit::{Error, ErrorKind, Graph, RunLimits, RunOutput, Value};

use crate::support::{block_on, graph, host, unoptimized};

fn run_on(
    host: &graphjit::Host,
    g: &Graph,
    inputs: &BTreeMap<String, Value>,
) -> Result<RunOutput, Error> {
    let compiled = host.compile(g).expect("compiles");
    block_on(host.run(&compiled, inputs, RunLimits::default()))
}

/// Fused, unfused and eval, which must agree on the value or on the error's kind and node.
fn all_three(g: &Graph, inputs: &BTreeMap<String, Value>) -> Result<Vec<(String, Value)>, Error> {
    let fused = run_on(host(), g, inputs).map(|o| o.outputs);
    let unfused = run_on(unoptimized(), g, inputs).map(|o| o.outputs);
    let interp = graphjit::Host::eval(g, inputs, RunLimits::default()).map(|o| o.outputs);
    for (name, other) in [("unfused", &unfused), ("eval", &interp)] {
        match (&fused, other) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "fused == {name}"),
            (Err(a), Err(b)) => {
                assert_eq!(
                    (&a.kind, &a.node),
                    (&b.kind, &b.node),
                    "fused {a} / {name} {b}"
                )
            }
            _ => panic!("fused {fused:?}, {name} {other:?}"),
        }
    }
    fused
}

fn fused_source(g: &Graph) -> String {
    host().rust_source(g).expect("rust")
}

/// `range(0, n)` → `map` (`100 / (x - a)`) → `filter` (`10 / (y - b) >= 0`, i.e. y > b; fails
/// where y = b) → `fold` (sum).
fn pipeline() -> Graph {
    graph(
        r#"{"version": 2, "nodes": [
        {"id": "n", "op": "input", "type": "i64", "default": 10},
        {"id": "a", "op": "input", "type": "i64", "default": -1},
        {"id": "b", "op": "input", "type": "i64", "default": -1000},
        {"id": "zero", "op": "const", "value": 0},
        {"id": "r", "op": "range", "args": ["zero", "n"]},
        {"id": "m", "op": "map", "args": ["r"], "body": {"params": ["x"], "nodes": [
            {"id": "hundred", "op": "const", "value": 100},
            {"id": "xa", "op": "sub", "args": ["x", "a"]},
            {"id": "q", "op": "div", "args": ["hundred", "xa"]}], "result": "q"}},
        {"id": "f", "op": "filter", "args": ["m"], "body": {"params": ["y"], "nodes": [
            {"id": "ten", "op": "const", "value": 10},
            {"id": "yb", "op": "sub", "args": ["y", "b"]},
            {"id": "p", "op": "div", "args": ["ten", "yb"]},
            {"id": "nil", "op": "const", "value": 0},
            {"id": "keep", "op": "ge", "args": ["p", "nil"]}], "result": "keep"}},
        {"id": "total", "op": "fold", "args": ["f", "zero"], "body": {"params": ["acc", "v"], "nodes": [
            {"id": "s", "op": "add", "args": ["acc", "v"]}], "result": "s"}}
    ], "outputs": {"total": "total"}}"#,
    )
}

fn at(n: i64, a: i64, b: i64) -> BTreeMap<String, Value> {
    [("n", n), ("a", a), ("b", b)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::I64(v)))
        .collect()
}

#[test]
fn a_range_map_filter_fold_chain_is_one_loop_with_the_same_value() {
    let g = pipeline();
    let source = fused_source(&g);
    assert!(
        source.contains(r#"one loop for range "r" → map "m" → filter "f" → fold "total""#),
        "{source}"
    );
    assert!(
        !source.contains("rt::data::range("),
        "no list is made: {source}"
    );
    // 100 / (x + 1) for x in 0..10: 100 50 33 25 20 16 14 12 11 10, all kept.
    let out = all_three(&g, &at(10, -1, -1000)).expect("runs");
    assert_eq!(out[0].1, Value::I64(291));
    let empty = all_three(&g, &at(0, -1, -1000)).expect("runs");
    assert_eq!(empty[0].1, Value::I64(0));
}

#[test]
fn the_error_reported_is_the_one_an_unfused_run_meets_first() {
    let g = pipeline();
    // map fails at x = 7 (7 - 7); filter fails where y = -25 (x = 3): in an unfused run the
    // map fails first (it runs over every element before the filter starts), so the fused
    // loop must report the map's error although the filter failed at an earlier element.
    let e = all_three(&g, &at(10, 7, -25)).expect_err("fails");
    assert_eq!(
        (e.kind, e.node.as_deref()),
        (ErrorKind::DivisionByZero, Some("q"))
    );
    // Only the filter fails: its error, at its node.
    let e = all_three(&g, &at(10, -1, 50)).expect_err("fails");
    assert_eq!(
        (e.kind, e.node.as_deref()),
        (ErrorKind::DivisionByZero, Some("p"))
    );
    // Only the fold fails: overflow summing (a huge divisor does not; make the sum overflow
    // with a map that yields i64::MAX / 2 + 1 twice).
    let big = graph(
        r#"{"version": 2, "nodes": [
        {"id": "l", "op": "const", "type": {"list": "i64"}, "value": [1, 2, 3]},
        {"id": "zero", "op": "const", "value": 0},
        {"id": "m", "op": "map", "args": ["l"], "body": {"params": ["x"], "nodes": [
            {"id": "h", "op": "const", "value": 4611686018427387904}], "result": "h"}},
        {"id": "total", "op": "fold", "args": ["m", "zero"], "body": {"params": ["acc", "v"], "nodes": [
            {"id": "s", "op": "add", "args": ["acc", "v"]}], "result": "s"}}
    ], "outputs": {"total": "total"}}"#,
    );
    assert!(fused_source(&big).contains("one loop for map"));
    let e = all_three(&big, &BTreeMap::new()).expect_err("overflow");
    assert_eq!(
        (e.kind, e.node.as_deref()),
        (ErrorKind::Overflow, Some("s"))
    );
}

#[test]
fn materialized_chains_over_strings_and_records_agree() {
    let g = graph(
        r#"{"version": 2, "nodes": [
        {"id": "text", "op": "input", "type": "string", "default": "b a c a d a"},
        {"id": "sep", "op": "const", "value": " "},
        {"id": "words", "op": "split", "args": ["text", "sep"]},
        {"id": "upper", "op": "map", "args": ["words"], "body": {"params": ["w1"], "nodes": [
            {"id": "u", "op": "to_upper", "args": ["w1"]}], "result": "u"}},
        {"id": "not_a", "op": "filter", "args": ["upper"], "body": {"params": ["w2"], "nodes": [
            {"id": "A", "op": "const", "value": "A"},
            {"id": "is_a", "op": "eq", "args": ["w2", "A"]},
            {"id": "keep", "op": "not", "args": ["is_a"]}], "result": "keep"}},
        {"id": "tagged", "op": "map", "args": ["not_a"], "body": {"params": ["w3"], "nodes": [
            {"id": "len", "op": "len", "args": ["w3"]},
            {"id": "rec", "op": "record", "fields": ["word", "len"], "args": ["w3", "len"]}], "result": "rec"}}
    ], "outputs": {"tagged": "tagged"}}"#,
    );
    assert!(fused_source(&g).contains(r#"map "upper" → filter "not_a" → map "tagged""#));
    let out = all_three(&g, &BTreeMap::new()).expect("runs");
    assert_eq!(
        graphjit::value_to_json(&out[0].1),
        serde_json::json!([{"len": 1, "word": "B"}, {"len": 1, "word": "C"}, {"len": 1, "word": "D"}])
    );
}

#[test]
fn a_list_read_twice_or_a_body_with_an_effect_is_not_fused() {
    // `m` is read by the fold and by an output: it must be made, so the chain stops there.
    let twice = graph(
        r#"{"version": 2, "nodes": [
        {"id": "zero", "op": "const", "value": 0},
        {"id": "five", "op": "const", "value": 5},
        {"id": "r", "op": "range", "args": ["zero", "five"]},
        {"id": "m", "op": "map", "args": ["r"], "body": {"params": ["x"], "nodes": [
            {"id": "t", "op": "add", "args": ["x", "x"]}], "result": "t"}},
        {"id": "total", "op": "fold", "args": ["m", "zero"], "body": {"params": ["acc", "v"], "nodes": [
            {"id": "s", "op": "add", "args": ["acc", "v"]}], "result": "s"}}
    ], "outputs": {"total": "total", "m": "m"}}"#,
    );
    let source = fused_source(&twice);
    assert!(
        source.contains(r#"one loop for range "r" → map "m""#),
        "{source}"
    );
    assert!(!source.contains(r#"→ fold "total""#), "{source}");
    let out = all_three(&twice, &BTreeMap::new()).expect("runs");
    assert_eq!(out[1].1, Value::I64(20));

    let logged = graph(
        r#"{"version": 2, "nodes": [
        {"id": "zero", "op": "const", "value": 0},
        {"id": "five", "op": "const", "value": 5},
        {"id": "r", "op": "range", "args": ["zero", "five"]},
        {"id": "m", "op": "map", "args": ["r"], "body": {"params": ["x"], "nodes": [
            {"id": "said", "op": "log", "args": ["x"]}], "result": "said"}},
        {"id": "total", "op": "fold", "args": ["m", "zero"], "body": {"params": ["acc", "v"], "nodes": [
            {"id": "s", "op": "add", "args": ["acc", "v"]}], "result": "s"}}
    ], "outputs": {"total": "total"}}"#,
    );
    let source = fused_source(&logged);
    assert!(!source.contains("one loop for"), "{source}");
}

#[test]
fn a_fused_chain_makes_no_intermediate_list() {
    // One million elements: unfused, the range and the map are lists of 8 MB each.
    let g = pipeline();
    let inputs = at(1_000_000, -1, -1000);
    let fused = run_on(host(), &g, &inputs).expect("fused");
    let unfused = run_on(unoptimized(), &g, &inputs).expect("unfused");
    assert_eq!(fused.outputs, unfused.outputs);
    assert!(
        fused.peak_memory_bytes * 10 < unfused.peak_memory_bytes,
        "fused peak {} bytes, unfused {}",
        fused.peak_memory_bytes,
        unfused.peak_memory_bytes
    );
}
