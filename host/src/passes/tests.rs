//! Preservation, measured: for each pass alone and for the whole pipeline, `eval(p(g))` equals
//! `eval(g)` — outputs bit for bit, or the same error at the same node — over generated graphs;
//! plus what each pass is for, on small graphs.

#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use graphjit_value::Value;

use super::*;
use crate::eval::{EvalError, EvalLimits, eval};
use crate::graph::{Limits, parse};
use crate::testing::{default_inputs, generate};

const LIMITS: EvalLimits = EvalLimits {
    fuel: 50_000_000,
    memory_bytes: 64 << 20,
    deadline: None,
};

/// Generated graphs per pass (and for the pipeline).
const GRAPHS: u64 = 500;

fn graph(json: &str) -> Graph {
    parse(json.as_bytes(), &Limits::default()).unwrap()
}

/// What a run shows: outputs (by bits) or the error's kind and node name.
fn observe(g: &Graph) -> Result<Vec<Vec<u8>>, String> {
    let inputs = default_inputs(g).unwrap();
    match eval(g, &inputs, &LIMITS) {
        Ok(out) => Ok(out
            .outputs
            .iter()
            .map(|v| {
                let mut bytes = Vec::new();
                graphjit_value::encode(std::slice::from_ref(v), &mut bytes);
                bytes
            })
            .collect()),
        Err(EvalError::Fuel { .. }) => Err("fuel".into()),
        Err(e) => Err(format!(
            "{:?} at {:?}",
            std::mem::discriminant(&e),
            e.node().map(|n| g.nodes[n.index()].name.clone())
        )),
    }
}

fn check_preserves(config: &PassConfig) -> usize {
    let mut changed_graphs = 0;
    for seed in 0..GRAPHS {
        let json = generate(seed).to_string();
        let g = graph(&json);
        let (optimized, reports) =
            optimize(&g, config).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        // Counted for the last pass listed: the one under test (earlier ones prepare).
        if reports.last().is_some_and(|r| r.changed > 0) {
            changed_graphs += 1;
        }
        let (before, after) = (observe(&g), observe(&optimized));
        if before == Err("fuel".into()) {
            continue;
        }
        assert_eq!(before, after, "seed {seed}, passes {config}: {json}");
        assert!(
            optimized.nodes.len() <= g.nodes.len(),
            "seed {seed}: a pass grew the graph"
        );
    }
    changed_graphs
}

#[test]
fn dce_preserves_eval() {
    let changed = check_preserves(&PassConfig::parse("dce").unwrap());
    assert!(
        changed > 50,
        "dce fired on only {changed} of {GRAPHS} graphs"
    );
}

#[test]
fn fold_preserves_eval() {
    let changed = check_preserves(&PassConfig::parse("fold").unwrap());
    assert!(
        changed > 50,
        "fold fired on only {changed} of {GRAPHS} graphs"
    );
}

#[test]
fn cse_preserves_eval() {
    let changed = check_preserves(&PassConfig::parse("cse").unwrap());
    // The generator seldom repeats a computation; each_pass_does_its_job covers CSE directly.
    assert!(changed > 0, "cse never fired on {GRAPHS} graphs");
}

#[test]
fn fuse_preserves_eval() {
    // The shared generator rarely builds private elementwise chains; this checks fusion does
    // nothing wrong there, and `fuse_preserves_eval_on_elementwise_dags` exercises it.
    check_preserves(&PassConfig::parse("dce,fuse").unwrap());
}

#[test]
fn fuse_preserves_eval_on_elementwise_dags() {
    let mut fired = 0;
    for seed in 0..GRAPHS {
        let json = crate::testing::elementwise_dag(seed);
        let g = graph(&json);
        let (optimized, reports) = optimize(&g, &PassConfig::default()).unwrap();
        if reports
            .iter()
            .any(|r| r.pass == Pass::Fuse && r.changed > 0)
        {
            fired += 1;
        }
        assert_eq!(observe(&g), observe(&optimized), "seed {seed}: {json}");
    }
    assert!(
        fired > GRAPHS / 2,
        "fusion fired on only {fired} of {GRAPHS} DAGs"
    );
}

#[test]
fn sibling_reductions_become_one_loop() {
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "t", "op": "iota", "shape": [100]},
            {"id": "k", "op": "const", "type": {"tensor": []}, "value": [0.5]},
            {"id": "x", "op": "mul", "args": ["t", "k"]},
            {"id": "a", "op": "abs", "args": ["x"]},
            {"id": "n", "op": "neg", "args": ["x"]},
            {"id": "s", "op": "sum", "args": ["a"]},
            {"id": "m", "op": "reduce_max", "args": ["n"]},
            {"id": "e", "op": "exp", "args": ["x"]},
            {"id": "mean", "op": "mean", "args": ["e"]}
        ], "outputs": {"s": "s", "m": "m", "mean": "mean", "x": "x"}}"#,
    );
    let (out, _) = optimize(&g, &PassConfig::parse("fuse").unwrap()).unwrap();
    let multi: Vec<&crate::graph::Node> = out
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::FusedReductions { .. }))
        .collect();
    assert_eq!(multi.len(), 1, "one loop for the three reductions");
    let Op::FusedReductions { outputs, .. } = &multi[0].op else {
        unreachable!()
    };
    assert_eq!(outputs.len(), 3);
    assert_eq!(observe(&g), observe(&out), "same bits");

    let mut fired = 0;
    for seed in 0..GRAPHS {
        let json = crate::testing::elementwise_dag(seed);
        let g = graph(&json);
        let (optimized, _) = optimize(&g, &PassConfig::default()).unwrap();
        if optimized
            .nodes
            .iter()
            .any(|n| matches!(n.op, Op::FusedReductions { .. }))
        {
            fired += 1;
        }
        assert_eq!(observe(&g), observe(&optimized), "seed {seed}: {json}");
    }
    assert!(
        fired > GRAPHS / 2,
        "horizontal fusion fired on {fired} of {GRAPHS} DAGs"
    );
}

#[test]
fn place_and_batch_preserve_eval() {
    // Neither changes what `eval` computes by construction (a placed matmul is evaluated as
    // the op; batching only sets how effects are issued); this checks the pipeline stays
    // well-formed and the outcome identical on every generated graph. What they change at run
    // time is checked against eval in tests/all (differential, effects).
    check_preserves(&PassConfig::parse("place").unwrap());
    check_preserves(&PassConfig::parse("batch").unwrap());
}

#[test]
fn fusion_makes_one_loop_of_an_elementwise_chain() {
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "t", "op": "iota", "shape": [1000]},
            {"id": "k", "op": "const", "type": {"tensor": []}, "value": [0.001]},
            {"id": "a", "op": "mul", "args": ["t", "k"]},
            {"id": "b", "op": "tanh", "args": ["a"]},
            {"id": "c", "op": "relu", "args": ["b"]},
            {"id": "d", "op": "add", "args": ["c", "a"]},
            {"id": "s", "op": "sum", "args": ["d"]},
            {"id": "kept", "op": "exp", "args": ["k"]}
        ], "outputs": {"s": "s", "kept": "kept"}}"#,
    );
    let (out, reports) = optimize(&g, &PassConfig::parse("fuse").unwrap()).unwrap();
    let fused: Vec<&crate::graph::Node> = out
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Fused { .. }))
        .collect();
    assert_eq!(fused.len(), 1, "{:?}", out.nodes);
    assert_eq!(
        fused[0].name, "s",
        "the chain and its reduction are one node"
    );
    let Op::Fused { steps, reduce } = &fused[0].op else {
        unreachable!()
    };
    assert_eq!(
        steps.len(),
        1 + 1 + 4,
        "one input (k), the index (t is an iota), four ops: {steps:?}"
    );
    assert!(steps.contains(&crate::graph::FusedStep::Index));
    assert_eq!(reduce, &Some((crate::graph::ReduceOp::Sum, vec![1000])));
    assert!(
        out.nodes.iter().any(|n| n.name == "kept"),
        "an output is not absorbed"
    );
    assert_eq!(reports[0].changed, 5);
    assert_eq!(observe(&g), observe(&out));
}

#[test]
fn the_pipeline_preserves_eval() {
    check_preserves(&PassConfig::default());
}

#[test]
fn each_pass_does_its_job() {
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "x", "op": "input", "type": "i64", "default": 4},
            {"id": "unused_input", "op": "input", "type": "i64", "default": 1},
            {"id": "two", "op": "const", "value": 2},
            {"id": "three", "op": "const", "value": 3},
            {"id": "six", "op": "mul", "args": ["two", "three"]},
            {"id": "a", "op": "mul", "args": ["x", "six"]},
            {"id": "b", "op": "mul", "args": ["x", "six"]},
            {"id": "sum", "op": "add", "args": ["a", "b"]},
            {"id": "dead", "op": "div", "args": ["x", "x"]},
            {"id": "zero", "op": "const", "value": 0},
            {"id": "boom", "op": "div", "args": ["three", "zero"]},
            {"id": "log", "op": "log", "args": ["x"]}
        ], "outputs": {"sum": "sum", "boom": "boom"}}"#,
    );
    let (out, reports) = optimize(&g, &PassConfig::default()).unwrap();
    let names: Vec<&str> = out.nodes.iter().map(|n| n.name.as_str()).collect();
    assert!(names.contains(&"unused_input"), "inputs stay: {names:?}");
    assert!(names.contains(&"log"), "effects stay: {names:?}");
    assert!(!names.contains(&"dead"), "dead code goes: {names:?}");
    assert!(!names.contains(&"b"), "b is a: {names:?}");
    let six = out.nodes.iter().find(|n| n.name == "six").unwrap();
    assert!(matches!(six.op, Op::Const(Const::I64(6))), "{:?}", six.op);
    let boom = out.nodes.iter().find(|n| n.name == "boom").unwrap();
    assert!(
        matches!(boom.op, Op::Binary(_)),
        "a failing node is not folded away"
    );
    assert_eq!(reports.len(), Pass::ALL.len());
    assert!(reports[..3].iter().all(|r| r.changed > 0), "{reports:?}");
    // And the result still fails where it did, with the same error at the same node.
    assert_eq!(observe(&g), observe(&out));
    let _ = Value::Bool(true);
}

#[test]
fn config_parses_and_prints_in_pipeline_order() {
    assert_eq!(
        PassConfig::parse("dce,fold").unwrap().to_string(),
        "fold,dce"
    );
    assert_eq!(
        PassConfig::parse("all").unwrap().to_string(),
        "fold,cse,dce,fuse,place,batch"
    );
    assert_eq!(PassConfig::parse("none").unwrap().to_string(), "none");
    assert!(PassConfig::parse("fusion").is_err());
    assert!(PassConfig::parse("vectorize").is_err());
}

/// Regression graphs, kept as files with the outcome they must keep under every pass.
#[test]
fn regressions_keep_their_outcome() {
    // seed 225: an `if` whose dead inner node was the only user of a failing outer node; dce
    // once recomputed the `if`'s captures, dropped the outer node and turned an error into a
    // result. The expected outcome is the error at n7 (remainder by zero).
    let g = graph(include_str!(
        "regressions/captures-keep-failing-outer-node.json"
    ));
    let expected = observe(&g);
    assert!(
        matches!(&expected, Err(e) if e.ends_with("Some(\"n7\")")),
        "{expected:?}"
    );
    for config in ["dce", "fold", "cse", "all"] {
        let (optimized, _) = optimize(&g, &PassConfig::parse(config).unwrap()).unwrap();
        assert_eq!(observe(&optimized), expected, "{config}");
    }
}
