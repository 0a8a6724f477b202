//! Codegen's impossible states are typed errors at the node, never Rust that rustc rejects.
//! The graphs here are ones typing refuses, so they are made by editing a parsed graph the
//! way a buggy pass would.

use super::{CodegenError, generate};
use crate::graph::{self, FusedStep, Graph, Limits, NodeId, Op, UnaryOp};

fn parsed(json: &str) -> Graph {
    graph::parse(json.as_bytes(), &Limits::default()).expect("graph")
}

fn node_named(g: &Graph, name: &str) -> NodeId {
    let index = g.nodes.iter().position(|n| n.name == name).expect("node");
    NodeId(u32::try_from(index).expect("index"))
}

const TENSOR_NEG: &str = r#"{"version": 1, "nodes": [
    {"id": "t", "op": "iota", "shape": [8]},
    {"id": "n", "op": "neg", "args": ["t"]},
    {"id": "s", "op": "sum", "args": ["n"]}
], "outputs": {"s": "s"}}"#;

fn failure(g: &Graph) -> CodegenError {
    match generate(g) {
        Ok(generated) => panic!("codegen wrote:\n{}", generated.source),
        Err(e) => e,
    }
}

#[test]
fn the_unedited_graph_generates() {
    let g = parsed(TENSOR_NEG);
    let source = generate(&g).expect("codegen").source;
    assert!(
        source.contains("rt::ops::map(&n0, rt::ops::neg_f32, 1)?"),
        "{source}"
    );
}

#[test]
fn an_op_on_a_type_it_has_no_rule_for_fails_at_its_node() {
    let mut g = parsed(TENSOR_NEG);
    let n = node_named(&g, "n");
    g.nodes[n.index()].op = Op::Unary(UnaryOp::Not);
    let e = failure(&g);
    assert_eq!(e.node, Some(n));
    assert!(e.message.contains("`not`"), "{}", e.message);
}

#[test]
fn a_missing_argument_fails_at_its_node() {
    let mut g = parsed(TENSOR_NEG);
    let n = node_named(&g, "n");
    g.nodes[n.index()].args.clear();
    let e = failure(&g);
    assert_eq!(e.node, Some(n));
    assert!(e.message.contains("argument 0"), "{}", e.message);
}

#[test]
fn a_fused_program_reading_a_later_register_fails_at_its_node() {
    let mut g = parsed(TENSOR_NEG);
    let n = node_named(&g, "n");
    g.nodes[n.index()].op = Op::Fused {
        steps: vec![FusedStep::Unary(UnaryOp::Neg, 1), FusedStep::Arg(0)],
        reduce: None,
    };
    let e = failure(&g);
    assert_eq!(e.node, Some(n));
    assert!(e.message.contains("register r1"), "{}", e.message);
}

#[test]
fn a_fused_program_with_a_scalar_only_op_fails_at_its_node() {
    let mut g = parsed(TENSOR_NEG);
    let n = node_named(&g, "n");
    g.nodes[n.index()].op = Op::Fused {
        steps: vec![FusedStep::Arg(0), FusedStep::Unary(UnaryOp::Not, 0)],
        reduce: None,
    };
    let e = failure(&g);
    assert_eq!(e.node, Some(n));
    assert!(
        e.message.contains("no f32 element function"),
        "{}",
        e.message
    );
}

#[test]
fn the_public_error_is_codegen_failed_naming_the_node() {
    let public = crate::Graph::from_json(TENSOR_NEG.as_bytes()).expect("graph");
    let mut g = public.inner.clone();
    let n = node_named(&g, "n");
    g.nodes[n.index()].op = Op::Unary(UnaryOp::Not);
    let e = public
        .with_inner(g)
        .rust_source()
        .expect_err("codegen_failed");
    assert_eq!(e.kind, crate::ErrorKind::CodegenFailed);
    assert_eq!(e.stage, crate::Stage::Codegen);
    assert_eq!(e.node.as_deref(), Some("n"));
}
