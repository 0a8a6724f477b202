//! Evaluation order (demand, canonical order, first error), `if` and `loop`, fuel, memory and
//! input checks.

use std::time::{Duration, Instant};

use graphjit_value::{Tensor, Value};
use serde_json::json;

use super::{LIMITS, failing_node, graph, id_of, run_graph, run_nodes};
use crate::eval::{EvalError, EvalLimits, eval};

#[test]
fn only_demanded_nodes_run_and_the_first_error_in_canonical_order_wins() {
    let zero_div = |id: &str| json!({"id": id, "op": "div", "args": ["one", "zero"]});
    let zero_rem = |id: &str| json!({"id": id, "op": "rem", "args": ["one", "zero"]});
    let base = || {
        vec![
            json!({"id": "one", "op": "const", "value": 1}),
            json!({"id": "zero", "op": "const", "value": 0}),
            json!({"id": "max", "op": "const", "value": i64::MAX}),
        ]
    };
    // An unused failing node never runs.
    let mut nodes = base();
    nodes.push(zero_div("unused"));
    assert_eq!(run_nodes(json!(nodes), "one"), Ok(Value::I64(1)));
    // Two independent failures, ready at the same point: the one whose id sorts first runs
    // first, so it is the error.
    for (first, second) in [("a", "b"), ("b", "a")] {
        let mut nodes = base();
        nodes.push(zero_div(first));
        nodes.push(zero_rem(second));
        nodes.push(json!({"id": "both", "op": "fork", "args": [second, first]}));
        let json = json!({"version": 1, "nodes": nodes, "outputs": {"out": "both"}});
        let g = graph(&json.to_string());
        let e = run_graph(&g, LIMITS).expect_err("fails");
        assert_eq!(failing_node(&g, &e).as_deref(), Some("a"));
    }
}

#[test]
fn if_runs_only_the_branch_taken_but_its_captures_always() {
    let program = |cond: bool, outer_op: &str, then: serde_json::Value| {
        run_nodes(
            json!([
                {"id": "one", "op": "const", "value": 1},
                {"id": "zero", "op": "const", "value": 0},
                {"id": "c", "op": "const", "value": cond},
                {"id": "outer", "op": outer_op, "args": ["one", "zero"]},
                {"id": "r", "op": "if", "args": ["c"], "then": then,
                 "else": {"nodes": [{"id": "o2", "op": "mul", "args": ["outer", "outer"]}],
                          "result": "o2"}},
            ]),
            "r",
        )
    };
    let failing_then =
        || json!({"nodes": [{"id": "bad", "op": "div", "args": ["one", "zero"]}], "result": "bad"});
    assert_eq!(program(false, "add", failing_then()), Ok(Value::I64(1)));
    assert!(matches!(
        program(true, "add", failing_then()),
        Err(EvalError::DivisionByZero { .. })
    ));
    let plain_then = json!({"nodes": [], "result": "one"});
    assert_eq!(program(true, "add", plain_then.clone()), Ok(Value::I64(1)));
    // `outer` is captured by the `if` (a dependency), so it runs even though only the branch
    // not taken uses it.
    assert!(matches!(
        program(true, "div", plain_then),
        Err(EvalError::DivisionByZero { .. })
    ));
}

#[test]
fn loops_bind_the_index_and_states() {
    let sum_of_indices = |iterations: u64| {
        run_nodes(
            json!([
                {"id": "zero", "op": "const", "value": 0},
                {"id": "half", "op": "const", "value": 0.5},
                {"id": "l", "op": "loop", "args": ["zero", "half"], "iterations": iterations,
                 "body": {"params": ["i", "acc", "x"], "nodes": [
                     {"id": "acc2", "op": "add", "args": ["acc", "i"]},
                     {"id": "x2", "op": "mul", "args": ["x", "half"]},
                 ], "results": ["acc2", "x2"]}},
            ]),
            "l",
        )
    };
    assert_eq!(
        sum_of_indices(10),
        Ok(Value::Tuple(vec![
            Value::I64(45),
            Value::F64(0.5f64.powi(11))
        ]))
    );
    assert_eq!(
        sum_of_indices(0),
        Ok(Value::Tuple(vec![Value::I64(0), Value::F64(0.5)]))
    );
    // One state: the value is the state itself; a body may return a param unchanged.
    let same = run_nodes(
        json!([
            {"id": "s", "op": "const", "value": "ünï"},
            {"id": "l", "op": "loop", "args": ["s"], "iterations": 3,
             "body": {"params": ["i", "x"], "nodes": [], "results": ["x"]}},
        ]),
        "l",
    );
    assert_eq!(same, Ok(Value::Str("ünï".into())));
}

#[test]
fn fuel_is_charged_per_node_iteration_and_element() {
    let fuel = |json: &str| run_graph(&graph(json), LIMITS).map(|o| o.fuel_used);
    let doc = include_str!("../../../../docs/graph-format.md");
    assert!(
        doc.contains("\"id\": \"fact\""),
        "the doc keeps its factorial example"
    );
    let simple = r#"{"version": 1, "nodes": [
        {"id": "x", "op": "input", "type": "i64", "default": 20},
        {"id": "three", "op": "const", "value": 3},
        {"id": "unused", "op": "const", "value": 4},
        {"id": "y", "op": "mul", "args": ["x", "three"]}], "outputs": {"y": "y"}}"#;
    assert_eq!(fuel(simple), Ok(3));
    let factorial = r#"{"version": 1, "nodes": [
        {"id": "one", "op": "const", "value": 1},
        {"id": "fact", "op": "loop", "args": ["one", "one"], "iterations": 10,
         "body": {"params": ["i", "acc", "k"], "nodes": [
           {"id": "acc2", "op": "mul", "args": ["acc", "k"]},
           {"id": "k2", "op": "add", "args": ["k", "one"]}], "results": ["acc2", "k2"]}},
        {"id": "result", "op": "get", "args": ["fact"], "index": 0}],
        "outputs": {"factorial": "result"}}"#;
    // one, fact, result; then 10 iterations of (1 + acc2 + k2).
    assert_eq!(fuel(factorial), Ok(3 + 10 * 3));
    let tensor = r#"{"version": 1, "nodes": [
        {"id": "a", "op": "iota", "shape": [640]},
        {"id": "s", "op": "sum", "args": ["a"]},
        {"id": "m", "op": "iota", "shape": [8, 16]},
        {"id": "p", "op": "matmul", "args": ["m", "m2"]},
        {"id": "m2", "op": "iota", "shape": [16, 4]}], "outputs": {"s": "s", "p": "p"}}"#;
    // a: 1 + 10; s: 1 + 640/64; m: 1 + 2; m2: 1 + 1; p: 1 + 8*16*4/64.
    assert_eq!(fuel(tensor), Ok(11 + 11 + 3 + 2 + 9));
    let g = graph(factorial);
    let limits = EvalLimits { fuel: 32, ..LIMITS };
    assert_eq!(
        run_graph(&g, limits),
        Err(EvalError::Fuel {
            budget: 32,
            used: 33
        })
    );
}

#[test]
fn a_fuel_bomb_stops_promptly() {
    let bomb = graph(include_str!("../../../../examples/fuel-bomb.json"));
    let empty_body = graph(
        r#"{"version": 1, "nodes": [
            {"id": "t", "op": "iota", "shape": [1048576]},
            {"id": "l", "op": "loop", "args": ["t"], "iterations": 1000000000000000,
             "body": {"params": ["i", "x"], "nodes": [], "results": ["x"]}}],
            "outputs": {"l": "l"}}"#,
    );
    for g in [bomb, empty_body] {
        let start = Instant::now();
        let limits = EvalLimits {
            fuel: 1_000_000,
            ..LIMITS
        };
        let e = run_graph(&g, limits).expect_err("out of fuel");
        assert!(
            matches!(e, EvalError::Fuel { budget: 1_000_000, used } if used > 1_000_000),
            "{e:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
}

#[test]
fn allocations_beyond_the_memory_limit_are_typed_errors() {
    let g = graph(
        r#"{"version": 1, "nodes": [{"id": "big", "op": "iota", "shape": [1000]}],
           "outputs": {"o": "big"}}"#,
    );
    let limits = |memory_bytes| EvalLimits {
        memory_bytes,
        ..LIMITS
    };
    assert!(run_graph(&g, limits(4000)).is_ok());
    let e = run_graph(&g, limits(3999)).expect_err("too big");
    assert_eq!(
        e,
        EvalError::OutOfMemory {
            node: id_of(&g, "big"),
            bytes: 4000
        }
    );
    assert_eq!(e.node(), Some(id_of(&g, "big")));
    // A string that doubles every iteration hits the limit, not the host's memory.
    let doubling = graph(
        r#"{"version": 1, "nodes": [
            {"id": "s", "op": "const", "value": "\"); } */"},
            {"id": "l", "op": "loop", "args": ["s"], "iterations": 1000,
             "body": {"params": ["i", "x"], "nodes": [
               {"id": "xx", "op": "concat", "args": ["x", "x"]}], "results": ["xx"]}}],
            "outputs": {"l": "l"}}"#,
    );
    let e = run_graph(&doubling, limits(1 << 20)).expect_err("too long");
    assert!(
        matches!(e, EvalError::OutOfMemory { bytes, .. } if bytes > 1 << 20),
        "{e:?}"
    );
}

#[test]
fn inputs_are_checked() {
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "x", "op": "input", "type": "i64"},
            {"id": "t", "op": "input", "type": {"tensor": [2]}}],
            "outputs": {"x": "x", "t": "t"}}"#,
    );
    let tensor = |n: usize| {
        Value::Tensor(Tensor {
            shape: vec![2],
            data: vec![0.5; n],
        })
    };
    let good = [tensor(2), Value::I64(1)];
    assert!(eval(&g, &good, &LIMITS).is_ok(), "inputs in name order");
    for bad in [
        vec![tensor(2)],
        vec![tensor(2), Value::F64(1.0)],
        vec![tensor(3), Value::I64(1)],
        vec![Value::I64(1), tensor(2)],
    ] {
        let e = eval(&g, &bad, &LIMITS).expect_err("bad input");
        assert!(matches!(e, EvalError::BadInput(_)), "{e:?}");
        assert_eq!(e.node(), None);
    }
}
