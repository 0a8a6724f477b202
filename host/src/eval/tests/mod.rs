//! Tests of `eval`: the value rules ([`values`]), evaluation order, regions and limits
//! ([`regions`]), and here the corpora: the format doc's examples, `examples/`, and generated
//! graphs.

mod regions;
mod shapes;
mod values;

use graphjit_value::Value;
use serde_json::json;

use super::{EvalError, EvalLimits, EvalOutcome, eval};
use crate::graph::{Graph, Limits, NodeId, parse};
use crate::testing::{default_inputs, generate};

pub(super) const LIMITS: EvalLimits = EvalLimits {
    fuel: 1 << 32,
    memory_bytes: 1 << 28,
    deadline: None,
};

pub(super) fn graph(json: &str) -> Graph {
    parse(json.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}\n{json}"))
}

pub(super) fn run_graph(g: &Graph, limits: EvalLimits) -> Result<EvalOutcome, EvalError> {
    let inputs = default_inputs(g).expect("every input has a default");
    eval(g, &inputs, &limits)
}

/// Evaluates `nodes` (a JSON array) with outputs `{"out": output}`.
pub(super) fn run_nodes(nodes: serde_json::Value, output: &str) -> Result<Value, EvalError> {
    let g = graph(&json!({"version": 1, "nodes": nodes, "outputs": {"out": output}}).to_string());
    run_graph(&g, LIMITS).map(|o| o.outputs.into_iter().next().expect("one output"))
}

pub(super) fn id_of(g: &Graph, name: &str) -> NodeId {
    let index = g.nodes.iter().position(|n| n.name == name).expect("node");
    NodeId(u32::try_from(index).expect("small"))
}

/// The error's node, by name.
pub(super) fn failing_node(g: &Graph, e: &EvalError) -> Option<String> {
    e.node().map(|id| g.nodes[id.index()].name.clone())
}

#[test]
fn every_example_in_the_format_doc_evaluates() {
    let doc = include_str!("../../../../docs/graph-format.md");
    let blocks: Vec<&str> = doc
        .split("```json")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert!(
        blocks.len() >= 14,
        "the doc lost examples: {}",
        blocks.len()
    );
    for block in blocks {
        let g = graph(block);
        if g.nodes.iter().any(|n| n.op.is_effect()) {
            // Effects need a host and a database: tests/all/effects.rs runs these.
            continue;
        }
        if let Err(e) = run_graph(&g, LIMITS) {
            panic!("doc example fails: {e}\n{block}");
        }
    }
}

#[test]
fn the_examples_evaluate() {
    for (name, json) in [
        ("hello", include_str!("../../../../examples/hello.json")),
        ("tensor", include_str!("../../../../examples/tensor.json")),
    ] {
        let outcome = run_graph(&graph(json), LIMITS);
        assert!(outcome.is_ok(), "{name}: {outcome:?}");
    }
    let hello = run_graph(
        &graph(include_str!("../../../../examples/hello.json")),
        LIMITS,
    );
    let outputs = hello.expect("hello runs").outputs;
    assert!(outputs.contains(&Value::I64(67)), "{outputs:?}");
}

/// The output (or error kind and node name) of `g`, for comparisons.
fn outcome(g: &Graph) -> Result<Vec<Value>, (String, Option<String>)> {
    run_graph(g, LIMITS)
        .map(|o| o.outputs)
        .map_err(|e| (format!("{e}"), failing_node(g, &e)))
}

#[test]
fn generated_graphs_evaluate_deterministically_without_panicking() {
    const GRAPHS: u64 = 600;
    let mut failures = std::collections::BTreeMap::<&str, usize>::new();
    for seed in 0..GRAPHS {
        let json = generate(seed).to_string();
        let g = parse(json.as_bytes(), &Limits::default())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{json}"));
        let first = run_graph(&g, LIMITS);
        assert_eq!(
            first,
            run_graph(&g, LIMITS),
            "seed {seed}: not deterministic"
        );
        match first {
            Ok(out) => {
                assert!(out.fuel_used <= LIMITS.fuel);
                for (value, &result) in out.outputs.iter().zip(&g.root.results) {
                    assert!(
                        crate::values::has_type(value, &g.nodes[result.index()].ty),
                        "seed {seed}: output of the wrong type"
                    );
                    assert_eq!(value, &value.clone().canonicalized());
                }
            }
            Err(e) => {
                let kind = match e {
                    EvalError::Overflow { .. } => "overflow",
                    EvalError::DivisionByZero { .. } => "division_by_zero",
                    EvalError::InvalidValue { .. } => "invalid_value",
                    EvalError::IndexOutOfRange { .. } => "index_out_of_range",
                    EvalError::MissingValue { .. } => "missing_value",
                    other => panic!("seed {seed}: unexpected {other:?}\n{json}"),
                };
                *failures.entry(kind).or_default() += 1;
            }
        }
    }
    let failed: usize = failures.values().sum();
    assert_eq!(
        failures.len(),
        5,
        "every error path is exercised: {failures:?}"
    );
    assert!(
        failed * 4 < GRAPHS as usize,
        "most generated graphs succeed: {failures:?}"
    );
}

#[test]
fn node_order_in_json_does_not_change_the_outcome() {
    for seed in 0..150 {
        let mut json = generate(seed);
        let g = graph(&json.to_string());
        if let Some(nodes) = json["nodes"].as_array_mut() {
            nodes.reverse();
        }
        let reversed = graph(&json.to_string());
        assert_eq!(outcome(&g), outcome(&reversed), "seed {seed}");
    }
}

/// `eval`'s memory limit bounds the bytes live at once, not each value alone: eight 32 MiB
/// tensors kept until one node reads them all pass a 256 MiB limit together (each alone is
/// far under it), and a chain as long whose tensors each die at the next node fits.
#[test]
fn the_memory_limit_bounds_live_bytes_and_dead_values_are_let_go() {
    let elements = 1u32 << 23; // 32 MiB of f32
    let mut wide = vec![json!({"id": "x0", "op": "fill", "shape": [elements], "value": 1.0})];
    let mut sum = "x0".to_string();
    for i in 1..8 {
        wide.push(json!({"id": format!("x{i}"), "op": "fill", "shape": [elements], "value": 1.0}));
    }
    // Every fill is read by one `fork` at the end: all eight are live together.
    wide.push(json!({"id": "all", "op": "fork", "args": (0..8).map(|i| format!("x{i}")).collect::<Vec<_>>()}));
    wide.push(json!({"id": "first", "op": "get", "index": 0, "args": ["all"]}));
    wide.push(json!({"id": "s", "op": "sum", "args": ["first"]}));
    let g = graph(&json!({"version": 1, "nodes": wide, "outputs": {"s": "s"}}).to_string());
    let error = run_graph(&g, LIMITS).expect_err("eight 32 MiB tensors at once");
    assert!(matches!(error, EvalError::OutOfMemory { .. }), "{error:?}");
    // A chain: each tensor's last reader is the next node.
    let mut chain = vec![json!({"id": "c0", "op": "fill", "shape": [elements], "value": 1.0})];
    for i in 1..16 {
        chain.push(json!({"id": format!("c{i}"), "op": "neg", "args": [format!("c{}", i - 1)]}));
        sum = format!("c{i}");
    }
    chain.push(json!({"id": "s", "op": "sum", "args": [sum]}));
    let g = graph(&json!({"version": 1, "nodes": chain, "outputs": {"s": "s"}}).to_string());
    let out = run_graph(&g, LIMITS).expect("two 32 MiB tensors at a time");
    assert_eq!(
        out.outputs,
        vec![Value::Tensor(graphjit_value::Tensor {
            shape: vec![],
            data: vec![-8_388_608.0]
        })]
    );
}
