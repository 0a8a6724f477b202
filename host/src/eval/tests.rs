//! The semantics, case by case; the format doc's and `examples/`' graphs; and generated graphs.

use std::time::{Duration, Instant};

use graphjit_value::{CANONICAL_NAN_F64, Tensor, Value};
use serde_json::json;

use super::{EvalError, EvalLimits, EvalOutcome, eval};
use crate::graph::{Graph, Limits, NodeId, parse};
use crate::testing::{default_inputs, generate};

const LIMITS: EvalLimits = EvalLimits {
    fuel: 1 << 32,
    memory_bytes: 1 << 28,
};

fn graph(json: &str) -> Graph {
    parse(json.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}\n{json}"))
}

fn run_graph(g: &Graph, limits: EvalLimits) -> Result<EvalOutcome, EvalError> {
    let inputs = default_inputs(g).expect("every input has a default");
    eval(g, &inputs, &limits)
}

/// Evaluates `nodes` (a JSON array) with outputs `{"out": output}`.
fn run_nodes(nodes: serde_json::Value, output: &str) -> Result<Value, EvalError> {
    let g = graph(&json!({"version": 1, "nodes": nodes, "outputs": {"out": output}}).to_string());
    run_graph(&g, LIMITS).map(|o| o.outputs.into_iter().next().expect("one output"))
}

fn id_of(g: &Graph, name: &str) -> NodeId {
    let index = g.nodes.iter().position(|n| n.name == name).expect("node");
    NodeId(u32::try_from(index).expect("small"))
}

/// The error's node, by name.
fn failing_node(g: &Graph, e: &EvalError) -> Option<String> {
    e.node().map(|id| g.nodes[id.index()].name.clone())
}

fn i64_op(op: &str, a: i64, b: i64) -> Result<Value, EvalError> {
    let args = if matches!(op, "neg" | "abs") {
        json!(["a"])
    } else {
        json!(["a", "b"])
    };
    run_nodes(
        json!([
            {"id": "a", "op": "const", "value": a},
            {"id": "b", "op": "const", "value": b},
            {"id": "r", "op": op, "args": args},
        ]),
        "r",
    )
}

fn f64_op(op: &str, a: f64, b: f64) -> Value {
    let lit = |x: f64| {
        if x.is_nan() {
            json!("nan")
        } else if x.is_infinite() {
            json!(if x > 0.0 { "inf" } else { "-inf" })
        } else {
            json!(x)
        }
    };
    let arity = match op {
        "add" | "sub" | "mul" | "div" | "min" | "max" | "pow" | "eq" | "ne" | "lt" | "le"
        | "gt" | "ge" => json!(["a", "b"]),
        _ => json!(["a"]),
    };
    run_nodes(
        json!([
            {"id": "a", "op": "const", "type": "f64", "value": lit(a)},
            {"id": "b", "op": "const", "type": "f64", "value": lit(b)},
            {"id": "r", "op": op, "args": arity},
        ]),
        "r",
    )
    .expect("f64 ops do not fail")
}

fn bits(v: &Value) -> u64 {
    match v {
        Value::F64(x) => x.to_bits(),
        other => panic!("not an f64: {other:?}"),
    }
}

/// Evaluates a tensor op on constant tensors `a` (and `b`), returning the data.
fn tensor_op(op: &str, a: (&[u32], &[f32]), b: Option<(&[u32], &[f32])>) -> Tensor {
    let lit = |data: &[f32]| -> Vec<serde_json::Value> {
        data.iter()
            .map(|&x| match x {
                x if x.is_nan() => json!("nan"),
                f32::INFINITY => json!("inf"),
                f32::NEG_INFINITY => json!("-inf"),
                x => json!(x),
            })
            .collect()
    };
    let mut nodes =
        vec![json!({"id": "a", "op": "const", "type": {"tensor": a.0}, "value": lit(a.1)})];
    let mut args = vec!["a"];
    if let Some((shape, data)) = b {
        nodes
            .push(json!({"id": "b", "op": "const", "type": {"tensor": shape}, "value": lit(data)}));
        args.push("b");
    }
    nodes.push(json!({"id": "r", "op": op, "args": args}));
    match run_nodes(json!(nodes), "r").expect("tensor ops do not fail") {
        Value::Tensor(t) => t,
        other => panic!("not a tensor: {other:?}"),
    }
}

fn data_bits(t: &Tensor) -> Vec<u32> {
    t.data.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn i64_arithmetic_is_checked() {
    let ok = |v: i64| Ok(Value::I64(v));
    assert_eq!(i64_op("add", 2, 3), ok(5));
    assert_eq!(i64_op("div", -7, 2), ok(-3));
    assert_eq!(i64_op("rem", -7, 2), ok(-1));
    assert_eq!(i64_op("min", -7, 2), ok(-7));
    assert_eq!(i64_op("max", i64::MIN, i64::MAX), ok(i64::MAX));
    assert_eq!(i64_op("abs", -5, 0), ok(5));
    for (op, a, b) in [
        ("add", i64::MAX, 1),
        ("sub", i64::MIN, 1),
        ("mul", 1 << 32, 1 << 31),
        ("neg", i64::MIN, 0),
        ("abs", i64::MIN, 0),
        ("div", i64::MIN, -1),
        ("rem", i64::MIN, -1),
    ] {
        assert!(
            matches!(i64_op(op, a, b), Err(EvalError::Overflow { .. })),
            "{op}"
        );
    }
    for op in ["div", "rem"] {
        assert!(matches!(
            i64_op(op, i64::MIN, 0),
            Err(EvalError::DivisionByZero { .. })
        ));
    }
}

#[test]
fn f64_math_uses_ieee_and_libm() {
    let nan = CANONICAL_NAN_F64;
    assert_eq!(
        bits(&f64_op("sqrt", -1.0, 0.0)),
        nan,
        "NaN outputs are canonical"
    );
    assert_eq!(bits(&f64_op("ln", 0.0, 0.0)), f64::NEG_INFINITY.to_bits());
    assert_eq!(bits(&f64_op("div", 1.0, 0.0)), f64::INFINITY.to_bits());
    assert_eq!(bits(&f64_op("div", 0.0, 0.0)), nan);
    assert_eq!(bits(&f64_op("pow", 0.0, 0.0)), 1f64.to_bits());
    assert_eq!(bits(&f64_op("pow", f64::NAN, 0.0)), 1f64.to_bits());
    assert_eq!(bits(&f64_op("pow", -8.0, 1.0 / 3.0)), nan);
    assert_eq!(bits(&f64_op("min", f64::NAN, 1.0)), 1f64.to_bits());
    assert_eq!(bits(&f64_op("max", 2.0, f64::NAN)), 2f64.to_bits());
    assert_eq!(bits(&f64_op("neg", 0.0, 0.0)), (-0.0f64).to_bits());
    assert_eq!(bits(&f64_op("floor", -0.5, 0.0)), (-1.0f64).to_bits());
    assert_eq!(bits(&f64_op("ceil", -0.5, 0.0)), (-0.0f64).to_bits());
    assert_eq!(bits(&f64_op("abs", -0.0, 0.0)), 0f64.to_bits());
    for (op, x) in [("exp", 1.0), ("sin", 3.0), ("cos", 3.0), ("tanh", 0.5)] {
        let expected = match op {
            "exp" => libm::exp(x),
            "sin" => libm::sin(x),
            "cos" => libm::cos(x),
            _ => libm::tanh(x),
        };
        assert_eq!(bits(&f64_op(op, x, 0.0)), expected.to_bits(), "{op}");
    }
}

#[test]
fn comparisons_follow_ieee_and_strings_compare_bytes() {
    let b = |v: bool| Value::Bool(v);
    assert_eq!(f64_op("eq", f64::NAN, f64::NAN), b(false));
    assert_eq!(f64_op("ne", f64::NAN, f64::NAN), b(true));
    assert_eq!(f64_op("lt", f64::NAN, 1.0), b(false));
    assert_eq!(f64_op("ge", f64::NAN, 1.0), b(false));
    assert_eq!(f64_op("eq", -0.0, 0.0), b(true));
    assert_eq!(f64_op("le", f64::NEG_INFINITY, -1e308), b(true));
    let strings = |x: &str, y: &str, op: &str| {
        run_nodes(
            json!([
                {"id": "x", "op": "const", "value": x},
                {"id": "y", "op": "const", "value": y},
                {"id": "r", "op": op, "args": ["x", "y"]},
            ]),
            "r",
        )
        .expect("compares")
    };
    assert_eq!(strings("é", "e\u{301}", "eq"), b(false), "no normalization");
    assert_eq!(strings("a\u{0}", "a\u{0}", "eq"), b(true));
    assert_eq!(strings("a", "b", "ne"), b(true));
}

#[test]
fn conversions_and_strings() {
    let convert = |op: &str, value: serde_json::Value| {
        run_nodes(
            json!([
                {"id": "a", "op": "const", "type": "f64", "value": value},
                {"id": "r", "op": op, "args": ["a"]},
            ]),
            "r",
        )
    };
    assert_eq!(convert("to_i64", json!(-2.9)), Ok(Value::I64(-2)));
    assert_eq!(
        convert("to_i64", json!(-9_223_372_036_854_775_808.0)),
        Ok(Value::I64(i64::MIN))
    );
    for bad in [
        json!(9_223_372_036_854_775_808.0),
        json!("nan"),
        json!("-inf"),
    ] {
        let e = convert("to_i64", bad).expect_err("not representable");
        assert!(
            matches!(&e, EvalError::InvalidValue { message, .. } if message.contains("not representable as i64")),
            "{e:?}"
        );
    }
    let text = |x: serde_json::Value| match convert("to_string", x) {
        Ok(Value::Str(s)) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(text(json!(1.0)), "1");
    assert_eq!(text(json!(0.1)), "0.1");
    assert_eq!(text(json!(-0.0)), "-0");
    assert_eq!(text(json!("nan")), "NaN");
    assert_eq!(text(json!("-inf")), "-inf");
    assert_eq!(text(json!(1e21)), "1000000000000000000000");
    let r = run_nodes(
        json!([
            {"id": "a", "op": "const", "value": "ü\"\\"},
            {"id": "b", "op": "const", "value": i64::MIN},
            {"id": "s", "op": "to_string", "args": ["b"]},
            {"id": "c", "op": "concat", "args": ["a", "s"]},
            {"id": "n", "op": "len", "args": ["c"]},
            {"id": "out", "op": "fork", "args": ["c", "n"]},
        ]),
        "out",
    );
    let joined = format!("ü\"\\{}", i64::MIN);
    let expected = Value::Tuple(vec![
        Value::I64(i64::try_from(joined.len()).expect("short")),
        Value::Str(joined),
    ]);
    assert_eq!(r, Ok(expected).map(|v: Value| reverse_tuple(v)));
}

fn reverse_tuple(v: Value) -> Value {
    match v {
        Value::Tuple(mut items) => {
            items.reverse();
            Value::Tuple(items)
        }
        v => v,
    }
}

#[test]
fn reductions_use_the_eight_lane_order() {
    // In order, 2^24 + 1 rounds back to 2^24 every time; by lanes the ones add up first.
    let mut x = vec![1.0f32; 16];
    x[0] = 16_777_216.0;
    let sum = tensor_op("sum", (&[16], &x), None);
    assert_eq!(sum.shape, Vec::<u32>::new());
    assert_eq!(sum.data, vec![16_777_230.0]);
    assert_eq!(
        tensor_op("mean", (&[16], &x), None).data,
        vec![16_777_230.0f32 / 16.0]
    );
    let y = [3.0, f32::NAN, -7.0, 2.5, 9.0];
    assert_eq!(tensor_op("reduce_max", (&[5], &y), None).data, vec![9.0]);
    assert_eq!(tensor_op("reduce_min", (&[5], &y), None).data, vec![-7.0]);
    // fmaxf ignores NaN, so an all-NaN tensor reduces to the identity.
    assert_eq!(
        tensor_op("reduce_max", (&[1], &[f32::NAN]), None).data,
        vec![f32::NEG_INFINITY]
    );
    let empty: (&[u32], &[f32]) = (&[0], &[]);
    assert_eq!(tensor_op("sum", empty, None).data, vec![0.0]);
    assert_eq!(
        tensor_op("reduce_min", empty, None).data,
        vec![f32::INFINITY]
    );
    assert!(tensor_op("mean", empty, None).data[0].is_nan());
}

#[test]
fn elementwise_ops_broadcast_in_argument_order() {
    let a: (&[u32], &[f32]) = (&[3], &[1.0, 2.0, 4.0]);
    let s: (&[u32], &[f32]) = (&[], &[10.0]);
    assert_eq!(tensor_op("sub", a, Some(s)).data, vec![-9.0, -8.0, -6.0]);
    assert_eq!(tensor_op("sub", s, Some(a)).data, vec![9.0, 8.0, 6.0]);
    assert_eq!(tensor_op("div", s, Some(a)).shape, vec![3]);
    assert_eq!(
        tensor_op(
            "min",
            (&[2], &[f32::NAN, 1.0]),
            Some((&[2], &[5.0, f32::NAN]))
        )
        .data,
        vec![5.0, 1.0]
    );
    let relu = tensor_op("relu", (&[4], &[f32::NAN, -0.0, -1.0, 2.0]), None);
    assert_eq!(data_bits(&relu), vec![0, 0, 0, 2f32.to_bits()]);
    assert_eq!(tensor_op("sigmoid", (&[1], &[0.0]), None).data, vec![0.5]);
    let nan = tensor_op("sqrt", (&[2], &[-1.0, 4.0]), None);
    assert_eq!(
        data_bits(&nan),
        vec![graphjit_value::CANONICAL_NAN_F32, 2f32.to_bits()]
    );
    let e = tensor_op("exp", (&[2], &[1.0, -3.5]), None);
    assert_eq!(e.data, vec![libm::expf(1.0), libm::expf(-3.5)]);
}

#[test]
fn matmul_multiplies_then_adds_and_transpose_reshape_move_data() {
    let m = tensor_op(
        "matmul",
        (&[2, 2], &[1.0, 2.0, 3.0, 4.0]),
        Some((&[2, 2], &[5.0, 6.0, 7.0, 8.0])),
    );
    assert_eq!(
        (m.shape, m.data),
        (vec![2, 2], vec![19.0, 22.0, 43.0, 50.0])
    );
    // (1 + 2^-12)^2 rounds to 1 + 2^-11; a fused multiply-add would leave 2^-24.
    let x = 1.0 + 1.0 / 4096.0;
    let fused = tensor_op(
        "matmul",
        (&[1, 2], &[-(1.0 + 1.0 / 2048.0), x]),
        Some((&[2, 1], &[1.0, x])),
    );
    assert_eq!(data_bits(&fused), vec![0]);
    let t = tensor_op(
        "transpose",
        (&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
        None,
    );
    assert_eq!(
        (t.shape, t.data),
        (vec![3, 2], vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0])
    );
    let r = run_nodes(
        json!([
            {"id": "i", "op": "iota", "shape": [2, 3]},
            {"id": "r", "op": "reshape", "args": ["i"], "shape": [3, 1, 2]},
        ]),
        "r",
    );
    let expected = Tensor {
        shape: vec![3, 1, 2],
        data: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
    };
    assert_eq!(r, Ok(Value::Tensor(expected)));
    let f = run_nodes(
        json!([
            {"id": "x", "op": "const", "value": 0.1},
            {"id": "t", "op": "to_tensor", "args": ["x"]},
            {"id": "w", "op": "fill", "shape": [2], "value": "-inf"},
            {"id": "m", "op": "reduce_min", "args": ["w"]},
            {"id": "s", "op": "add", "args": ["t", "m"]},
            {"id": "back", "op": "to_f64", "args": ["t"]},
            {"id": "out", "op": "fork", "args": ["s", "back"]},
        ]),
        "out",
    );
    let scalar = |x: f32| {
        Value::Tensor(Tensor {
            shape: vec![],
            data: vec![x],
        })
    };
    assert_eq!(
        f,
        Ok(Value::Tuple(vec![
            scalar(f32::NEG_INFINITY),
            Value::F64(f64::from(0.1f32))
        ]))
    );
}

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
    let doc = include_str!("../../../docs/graph-format.md");
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
    let bomb = graph(include_str!("../../../examples/fuel-bomb.json"));
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

#[test]
fn every_example_in_the_format_doc_evaluates() {
    let doc = include_str!("../../../docs/graph-format.md");
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
        if let Err(e) = run_graph(&g, LIMITS) {
            panic!("doc example fails: {e}\n{block}");
        }
    }
}

#[test]
fn the_examples_evaluate() {
    for (name, json) in [
        ("hello", include_str!("../../../examples/hello.json")),
        ("tensor", include_str!("../../../examples/tensor.json")),
    ] {
        let outcome = run_graph(&graph(json), LIMITS);
        assert!(outcome.is_ok(), "{name}: {outcome:?}");
    }
    let hello = run_graph(&graph(include_str!("../../../examples/hello.json")), LIMITS);
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
                    other => panic!("seed {seed}: unexpected {other:?}\n{json}"),
                };
                *failures.entry(kind).or_default() += 1;
            }
        }
    }
    let failed: usize = failures.values().sum();
    assert_eq!(
        failures.len(),
        3,
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
