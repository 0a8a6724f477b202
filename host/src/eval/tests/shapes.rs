//! No graph makes the host panic: sizes are checked (checked or saturating arithmetic) in
//! typing, in the optimizer, in codegen and in `eval`, whatever shapes and sizes a graph
//! writes. The property test runs with overflow checks on (the test profile's default; the
//! first test fails if a profile turns them off), so an unchecked product is a panic here.

use proptest::prelude::*;
use serde_json::{Value as Json, json};

use super::LIMITS;
use crate::eval::{EvalError, EvalLimits, eval};
use crate::graph::{GraphErrorKind, Limits, parse};
use crate::testing::default_inputs;

#[test]
fn overflow_checks_are_on_in_tests() {
    let max = std::hint::black_box(u32::MAX);
    let wrapped = std::panic::catch_unwind(|| max + std::hint::black_box(1));
    assert!(
        wrapped.is_err(),
        "this profile does not check overflow, so the property tests below prove less"
    );
}

/// A dimension: mostly small (so graphs type-check and run), sometimes one that overflows a
/// product.
fn dim() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => 0u32..=4,
        1 => Just(1u32 << 16),
        1 => Just(1u32 << 31),
        1 => Just(u32::MAX),
        1 => any::<u32>(),
    ]
}

fn shape() -> impl Strategy<Value = Vec<u32>> {
    proptest::collection::vec(dim(), 0..=4)
}

/// One node; arguments are indices into the nodes before it (taken modulo their number).
#[derive(Clone, Debug)]
enum Spec {
    Iota(Vec<u32>),
    Fill(Vec<u32>, f32),
    Const(Vec<u32>, usize),
    Reshape(usize, Vec<u32>),
    /// `reshape` to the argument's shape reversed (same element count, when it is known).
    Reverse(usize),
    Transpose(usize),
    MatMul(usize, usize),
    Unary(&'static str, usize),
    Binary(&'static str, usize, usize),
    Reduce(&'static str, usize),
    ToF64(usize),
    Fork(Vec<usize>),
    Get(usize, u32),
    Loop(usize, u64),
    Kernel(&'static str, usize, usize),
}

fn spec() -> impl Strategy<Value = Spec> {
    let i = || any::<usize>();
    prop_oneof![
        shape().prop_map(Spec::Iota),
        (shape(), any::<f32>()).prop_map(|(s, v)| Spec::Fill(s, v)),
        (shape(), 0usize..5).prop_map(|(s, n)| Spec::Const(s, n)),
        (i(), shape()).prop_map(|(a, s)| Spec::Reshape(a, s)),
        i().prop_map(Spec::Reverse),
        i().prop_map(Spec::Transpose),
        (i(), i()).prop_map(|(a, b)| Spec::MatMul(a, b)),
        (prop_oneof![Just("relu"), Just("neg"), Just("exp")], i())
            .prop_map(|(op, a)| Spec::Unary(op, a)),
        (prop_oneof![Just("add"), Just("mul"), Just("max")], i(), i())
            .prop_map(|(op, a, b)| Spec::Binary(op, a, b)),
        (
            prop_oneof![Just("sum"), Just("mean"), Just("reduce_max")],
            i()
        )
            .prop_map(|(op, a)| Spec::Reduce(op, a)),
        i().prop_map(Spec::ToF64),
        proptest::collection::vec(i(), 0..4).prop_map(Spec::Fork),
        (i(), 0u32..4).prop_map(|(a, k)| Spec::Get(a, k)),
        (i(), 0u64..4).prop_map(|(a, n)| Spec::Loop(a, n)),
        (
            prop_oneof![Just("matmul"), Just("softmax"), Just("conv2d")],
            i(),
            i()
        )
            .prop_map(|(k, a, b)| Spec::Kernel(k, a, b)),
    ]
}

/// The graph's JSON: node `n{k}` for the `k`-th spec, every node an output (so that every
/// one is evaluated). Shapes of `iota`, `fill`, `const` and `reshape` are tracked so that
/// `Reverse` can write a reshape that type-checks.
fn graph_json(specs: &[Spec]) -> String {
    let mut nodes = Vec::new();
    let mut shapes: Vec<Option<Vec<u32>>> = Vec::new();
    for (k, spec) in specs.iter().enumerate() {
        let arg = |a: usize| format!("n{}", a % k.max(1));
        let id = format!("n{k}");
        let (node, shape): (Json, Option<Vec<u32>>) = match (spec, k) {
            (Spec::Iota(s), _) => (json!({"id": id, "op": "iota", "shape": s}), Some(s.clone())),
            (Spec::Fill(s, v), _) => (
                json!({"id": id, "op": "fill", "shape": s, "value": f64::from(*v).clamp(-1e30, 1e30)}),
                Some(s.clone()),
            ),
            (Spec::Const(s, n), _) => (
                json!({"id": id, "op": "const", "type": {"tensor": s},
                       "value": vec![0.5; *n]}),
                Some(s.clone()),
            ),
            // The first node has nothing to read: a scalar tensor.
            (_, 0) => (
                json!({"id": id, "op": "iota", "shape": []}),
                Some(Vec::new()),
            ),
            (Spec::Reshape(a, s), _) => (
                json!({"id": id, "op": "reshape", "args": [arg(*a)], "shape": s}),
                Some(s.clone()),
            ),
            (Spec::Reverse(a), _) => {
                let mut s = shapes[*a % k].clone().unwrap_or_default();
                s.reverse();
                (
                    json!({"id": id, "op": "reshape", "args": [arg(*a)], "shape": s}),
                    Some(s),
                )
            }
            (Spec::Transpose(a), _) => (
                json!({"id": id, "op": "transpose", "args": [arg(*a)]}),
                None,
            ),
            (Spec::MatMul(a, b), _) => (
                json!({"id": id, "op": "matmul", "args": [arg(*a), arg(*b)]}),
                None,
            ),
            (Spec::Unary(op, a), _) => (json!({"id": id, "op": op, "args": [arg(*a)]}), None),
            (Spec::Binary(op, a, b), _) => (
                json!({"id": id, "op": op, "args": [arg(*a), arg(*b)]}),
                None,
            ),
            (Spec::Reduce(op, a), _) => (json!({"id": id, "op": op, "args": [arg(*a)]}), None),
            (Spec::ToF64(a), _) => (json!({"id": id, "op": "to_f64", "args": [arg(*a)]}), None),
            (Spec::Fork(args), _) => (
                json!({"id": id, "op": "fork",
                       "args": args.iter().map(|&a| arg(a)).collect::<Vec<_>>()}),
                None,
            ),
            (Spec::Get(a, index), _) => (
                json!({"id": id, "op": "get", "args": [arg(*a)], "index": index}),
                None,
            ),
            (Spec::Loop(a, n), _) => (
                json!({"id": id, "op": "loop", "args": [arg(*a)], "iterations": n,
                       "body": {"params": [format!("i{k}"), format!("s{k}")],
                                "nodes": [{"id": format!("b{k}"), "op": "relu",
                                           "args": [format!("s{k}")]}],
                                "results": [format!("b{k}")]}}),
                None,
            ),
            (Spec::Kernel(name, a, b), _) => {
                let args = if *name == "softmax" {
                    vec![arg(*a)]
                } else {
                    vec![arg(*a), arg(*b)]
                };
                (
                    json!({"id": id, "op": "kernel", "kernel": name, "args": args}),
                    None,
                )
            }
        };
        nodes.push(node);
        shapes.push(shape);
    }
    let outputs: serde_json::Map<String, Json> = (0..specs.len())
        .map(|k| (format!("o{k}"), Json::String(format!("n{k}"))))
        .collect();
    json!({"version": 1, "nodes": nodes, "outputs": outputs,
           "footprint": {"kernels": ["matmul", "softmax", "conv2d"]}})
    .to_string()
}

/// Small budgets: a property case must stay fast, and every limit path is exercised.
const SMALL: EvalLimits = EvalLimits {
    fuel: 200_000,
    memory_bytes: 1 << 20,
    deadline: None,
};

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Lowering, the optimizer, codegen and `eval` never panic, whatever the shapes; a graph
    /// that is refused is refused with a typed error.
    #[test]
    fn arbitrary_shapes_never_panic(specs in proptest::collection::vec(spec(), 1..12)) {
        // Grown one node at a time: a node that is refused (lowering must not panic on it
        // either) is left out, so the graph that runs keeps every node that type-checks.
        let mut kept: Vec<Spec> = Vec::new();
        let mut g = None;
        for spec in specs {
            kept.push(spec);
            match parse(graph_json(&kept).as_bytes(), &Limits::default()) {
                Ok(parsed) => g = Some(parsed),
                Err(_) => {
                    kept.pop();
                }
            }
        }
        let json = graph_json(&kept);
        let Some(g) = g else {
            return Ok(());
        };
        let (optimized, _) = crate::passes::optimize(&g, &crate::passes::PassConfig::default())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{json}")))?;
        // Codegen has a rule for every graph typing accepts, before and after the passes.
        for graph in [&g, &optimized] {
            crate::codegen::generate(graph)
                .map_err(|e| TestCaseError::fail(format!("codegen_failed: {e}\n{json}")))?;
        }
        let inputs = default_inputs(&g).expect("no inputs");
        for graph in [&g, &optimized] {
            match eval(graph, &inputs, &SMALL) {
                Ok(_)
                | Err(EvalError::Fuel { .. } | EvalError::OutOfMemory { .. } | EvalError::Effect { .. }) => {}
                Err(other) => prop_assert!(false, "{other:?}\n{json}"),
            }
        }
    }

    /// Any shape written on `iota`, `fill` or `reshape` is a typed error or a graph; a product
    /// past the limit is `ResourceExceeded`, never an overflow.
    #[test]
    fn written_shapes_are_checked_before_typing(s in shape(), op in 0usize..3) {
        let nodes = match op {
            0 => json!([{"id": "t", "op": "iota", "shape": s}]),
            1 => json!([{"id": "t", "op": "fill", "shape": s, "value": 1.0}]),
            _ => json!([{"id": "a", "op": "iota", "shape": [1]},
                        {"id": "t", "op": "reshape", "args": ["a"], "shape": s}]),
        };
        let json = json!({"version": 1, "nodes": nodes, "outputs": {"t": "t"}}).to_string();
        let elements = s.iter().try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)));
        match parse(json.as_bytes(), &Limits::default()) {
            Ok(_) => prop_assert!(elements.is_some_and(|n| n <= 1 << 26)),
            Err(e) if elements.is_none_or(|n| n > 1 << 26) => {
                prop_assert_eq!(e.kind, GraphErrorKind::ResourceExceeded, "{}", json);
            }
            Err(e) => prop_assert_eq!(e.kind, GraphErrorKind::Type, "{}", json),
        }
    }
}

#[test]
fn a_reshape_whose_dimensions_overflow_is_resource_exceeded() {
    // ~200 bytes: three u32::MAX dims multiply past u64 (typing panicked on the product).
    let json = include_str!("../../../../tests/regressions/reshape-overflow.json");
    let e = parse(json.as_bytes(), &Limits::default()).expect_err("refused");
    assert_eq!(e.kind, GraphErrorKind::ResourceExceeded, "{e}");
    assert_eq!(e.node.as_deref(), Some("huge"));
}

/// `f{k} = fork(f{k-1}, f{k-1})`: each type twice the last.
fn doubling_forks(n: usize) -> String {
    let mut nodes = vec![json!({"id": "f0", "op": "iota", "shape": [2]})];
    for k in 1..=n {
        let prev = format!("f{}", k - 1);
        nodes.push(json!({"id": format!("f{k}"), "op": "fork", "args": [prev, prev]}));
    }
    json!({"version": 1, "nodes": nodes, "outputs": {"o": format!("f{n}")}}).to_string()
}

#[test]
fn forks_of_forks_cannot_grow_types_exponentially() {
    // 40 nodes would need 2^40 type nodes (and as many tensors in `eval`): refused promptly.
    let start = std::time::Instant::now();
    let e = parse(doubling_forks(40).as_bytes(), &Limits::default()).expect_err("refused");
    assert_eq!(e.kind, GraphErrorKind::ResourceExceeded, "{e}");
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
    // A few doublings are fine, and evaluate.
    let g = parse(doubling_forks(4).as_bytes(), &Limits::default()).expect("small");
    assert!(super::run_graph(&g, LIMITS).is_ok());
}

#[test]
fn tuples_nest_no_deeper_than_the_region_limit() {
    let chain = |n: usize| {
        let mut nodes = vec![json!({"id": "f0", "op": "const", "value": 1})];
        for k in 1..=n {
            nodes.push(
                json!({"id": format!("f{k}"), "op": "fork", "args": [format!("f{}", k - 1)]}),
            );
        }
        json!({"version": 1, "nodes": nodes, "outputs": {"o": format!("f{n}")}}).to_string()
    };
    let depth = Limits::default().max_depth;
    assert!(parse(chain(depth).as_bytes(), &Limits::default()).is_ok());
    let e = parse(chain(depth + 1).as_bytes(), &Limits::default()).expect_err("too deep");
    assert_eq!(e.kind, GraphErrorKind::ResourceExceeded, "{e}");
    // Deeper than the value encoding decodes (so `run` could not return it while `eval` did).
    let deep = chain(graphjit_value::MAX_DEPTH as usize + 2);
    assert!(parse(deep.as_bytes(), &Limits::default()).is_err());
}
