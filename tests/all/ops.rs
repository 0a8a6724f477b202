//! Ops added through the op table (ARCHITECTURE.md, "Adding an op"): each one's values in
//! `eval`, the same bits in the compiled component with and without the passes, its fusion,
//! and its typing errors. `clamp` is the first; the text ops (`contains` … `parse_f64`) follow.

use std::collections::BTreeMap;

use graphjit::{Graph, RunLimits, Tensor, Value};

use crate::support::{block_on, compile, eval_with, graph, run_with, unoptimized, values};

/// The outputs of `g` in eval, asserted equal (bit for bit, error kind and node alike) to
/// the compiled run with every pass and with none.
pub(crate) fn agreed(g: &Graph) -> Vec<Value> {
    let limits = RunLimits::default();
    let expected = values(&eval_with(g, limits).expect("eval"));
    let optimized = values(&run_with(&compile(g), limits).expect("run"));
    let compiled = unoptimized().compile(g).expect("compiles unoptimized");
    let plain =
        values(&block_on(unoptimized().run(&compiled, &BTreeMap::new(), limits)).expect("run"));
    // `Value`'s f64 equality would call NaN unequal: compare the bits through Debug of the
    // bit patterns instead.
    let bits = |vs: &[Value]| vs.iter().map(bit_pattern).collect::<Vec<_>>();
    assert_eq!(
        bits(&expected),
        bits(&optimized),
        "eval vs run with the passes"
    );
    assert_eq!(
        bits(&expected),
        bits(&plain),
        "eval vs run without the passes"
    );
    expected
}

pub(crate) fn bit_pattern(v: &Value) -> String {
    match v {
        Value::F64(x) => format!("f64:{:#018x}", x.to_bits()),
        Value::Tensor(t) => {
            let bits: Vec<String> = t
                .data
                .iter()
                .map(|x| format!("{:#010x}", x.to_bits()))
                .collect();
            format!("tensor{:?}:{}", t.shape, bits.join(","))
        }
        other => format!("{other:?}"),
    }
}

const SCALARS: &str = r#"{"version": 1, "nodes": [
    {"id": "x", "op": "input", "type": "i64", "default": 15},
    {"id": "zero", "op": "const", "value": 0},
    {"id": "ten", "op": "const", "value": 10},
    {"id": "minus", "op": "const", "value": -4},
    {"id": "high", "op": "clamp", "args": ["x", "zero", "ten"]},
    {"id": "low", "op": "clamp", "args": ["minus", "zero", "ten"]},
    {"id": "inside", "op": "clamp", "args": ["x", "zero", "x"]},
    {"id": "crossed", "op": "clamp", "args": ["x", "ten", "zero"]},
    {"id": "f", "op": "input", "type": "f64", "default": 2.5},
    {"id": "one", "op": "const", "value": 1.0},
    {"id": "two", "op": "const", "value": 2.0},
    {"id": "nan", "op": "const", "type": "f64", "value": "nan"},
    {"id": "f_high", "op": "clamp", "args": ["f", "one", "two"]},
    {"id": "nan_x", "op": "clamp", "args": ["nan", "one", "two"]},
    {"id": "nan_bound", "op": "clamp", "args": ["f", "nan", "two"]}
], "outputs": {"a_high": "high", "b_low": "low", "c_inside": "inside", "d_crossed": "crossed",
               "e_f_high": "f_high", "f_nan_x": "nan_x", "g_nan_bound": "nan_bound"}}"#;

#[test]
fn clamp_of_scalars_is_min_of_max_in_both_engines() {
    let out = agreed(&graph(SCALARS));
    assert_eq!(
        out,
        vec![
            Value::I64(10),
            Value::I64(0),
            Value::I64(15),
            // lo > hi: hi, as NumPy's clip.
            Value::I64(0),
            Value::F64(2.0),
            // min/max ignore a NaN operand: a NaN x gives lo, a NaN bound is no bound.
            Value::F64(1.0),
            Value::F64(2.0),
        ]
    );
}

#[test]
fn clamp_folds_constant_scalars_to_the_value_eval_gives() {
    // With every argument a constant, `fold` computes the clamp at compile time.
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "a", "op": "const", "value": 7},
            {"id": "lo", "op": "const", "value": 1},
            {"id": "hi", "op": "const", "value": 5},
            {"id": "c", "op": "clamp", "args": ["a", "lo", "hi"]}
        ], "outputs": {"c": "c"}}"#,
    );
    let explained = crate::support::host().explain(&g);
    assert!(
        explained.after.iter().all(|line| !line.contains("clamp(")),
        "folded away: {:?}",
        explained.after
    );
    assert_eq!(agreed(&g), vec![Value::I64(5)]);
}

const TENSORS: &str = r#"{"version": 1, "nodes": [
    {"id": "t", "op": "const", "type": {"tensor": [6]}, "value": [-3, -0.5, 0.25, 0.75, 2, "nan"]},
    {"id": "lo", "op": "const", "type": {"tensor": []}, "value": [0]},
    {"id": "hi", "op": "const", "type": {"tensor": [6]}, "value": [1, 1, 1, 0.5, 1, 1]},
    {"id": "c", "op": "clamp", "args": ["t", "lo", "hi"]}
], "outputs": {"c": "c"}}"#;

#[test]
fn clamp_of_tensors_broadcasts_a_scalar_bound_in_both_engines() {
    let out = agreed(&graph(TENSORS));
    assert_eq!(
        out,
        vec![Value::Tensor(Tensor {
            shape: vec![6],
            data: vec![0.0, 0.0, 0.25, 0.5, 1.0, 0.0],
        })]
    );
}

#[test]
fn clamp_in_a_chain_fuses_into_one_loop_with_the_same_bits() {
    // tanh(iota · ¼ − 3), clamped to [−½, ½], summed: one fused map→reduce loop.
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "i", "op": "iota", "shape": [4096]},
            {"id": "q", "op": "const", "type": {"tensor": []}, "value": [0.25]},
            {"id": "three", "op": "const", "type": {"tensor": []}, "value": [3]},
            {"id": "lo", "op": "const", "type": {"tensor": []}, "value": [-0.5]},
            {"id": "hi", "op": "fill", "shape": [4096], "value": 0.5},
            {"id": "s", "op": "mul", "args": ["i", "q"]},
            {"id": "d", "op": "sub", "args": ["s", "three"]},
            {"id": "h", "op": "tanh", "args": ["d"]},
            {"id": "c", "op": "clamp", "args": ["h", "lo", "hi"]},
            {"id": "total", "op": "sum", "args": ["c"]}
        ], "outputs": {"total": "total"}}"#,
    );
    let explained = crate::support::host().explain(&g);
    // What is left: one fused map→reduce loop, and the `[]` constants it reads as literals.
    let computed: Vec<&String> = explained
        .after
        .iter()
        .filter(|line| !line.contains("= const("))
        .collect();
    assert_eq!(computed.len(), 1, "one loop: {:?}", explained.after);
    assert!(
        computed[0].contains("= fused[") && computed[0].contains("→ sum]"),
        "{:?}",
        explained.after
    );
    let out = agreed(&g);
    let Value::Tensor(total) = &out[0] else {
        panic!("a tensor: {out:?}")
    };
    // 4096 elements: 12 below −3 + ~0.55 map to −½ … the sum is what eval says, bit for bit
    // (checked by `agreed`); here only its sign and size, to show the clamp happened.
    assert!(
        total.data[0] > 1000.0 && total.data[0] < 2048.0,
        "{total:?}"
    );
}

#[test]
fn clamp_refuses_mixed_types_and_fields_it_does_not_take() {
    let refused = |json: &str| Graph::from_json(json.as_bytes()).expect_err("refused");
    let mixed = refused(
        r#"{"version": 1, "nodes": [
            {"id": "x", "op": "const", "value": 1},
            {"id": "y", "op": "const", "value": 1.5},
            {"id": "c", "op": "clamp", "args": ["x", "y", "y"]}
        ], "outputs": {"c": "c"}}"#,
    );
    assert_eq!(mixed.kind_name(), "invalid_graph");
    assert_eq!(mixed.node.as_deref(), Some("c"));
    assert!(
        mixed.message.contains("`clamp` takes x, lo and hi"),
        "{mixed}"
    );
    let shapes = refused(
        r#"{"version": 1, "nodes": [
            {"id": "a", "op": "iota", "shape": [3]},
            {"id": "b", "op": "iota", "shape": [4]},
            {"id": "c", "op": "clamp", "args": ["a", "b", "a"]}
        ], "outputs": {"c": "c"}}"#,
    );
    assert!(shapes.message.contains("do not broadcast"), "{shapes}");
    let arity = refused(
        r#"{"version": 1, "nodes": [
            {"id": "x", "op": "const", "value": 1},
            {"id": "c", "op": "clamp", "args": ["x", "x"]}
        ], "outputs": {"c": "c"}}"#,
    );
    assert!(arity.message.contains("takes 3 arguments"), "{arity}");
    let field = refused(
        r#"{"version": 1, "nodes": [
            {"id": "x", "op": "const", "value": 1},
            {"id": "c", "op": "clamp", "args": ["x", "x", "x"], "shape": [1]}
        ], "outputs": {"c": "c"}}"#,
    );
    assert_eq!(field.node.as_deref(), Some("c"));
    assert!(
        field.message.contains("does not take the field \"shape\""),
        "{field}"
    );
}

/// A graph applying the string op `op` to string inputs `texts` (and i64 constants `numbers`
/// after them, for `substring`), its result the one output.
fn text_op(op: &str, texts: &[&str], numbers: &[i64]) -> Graph {
    let mut nodes = Vec::new();
    let mut args = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        nodes.push(serde_json::json!({"id": format!("s{i}"), "op": "input", "type": "string", "default": text}));
        args.push(format!("s{i}"));
    }
    for (i, n) in numbers.iter().enumerate() {
        nodes.push(serde_json::json!({"id": format!("n{i}"), "op": "const", "value": n}));
        args.push(format!("n{i}"));
    }
    nodes.push(serde_json::json!({"id": "r", "op": op, "args": args}));
    graph(&serde_json::json!({"version": 1, "nodes": nodes, "outputs": {"r": "r"}}).to_string())
}

#[test]
fn string_ops_agree_in_both_engines_with_and_without_the_passes() {
    let text = |s: &str| Value::Str(s.to_owned());
    let cases: Vec<(Graph, Value)> = vec![
        (
            text_op("contains", &["héllo", "él"], &[]),
            Value::Bool(true),
        ),
        (text_op("contains", &["héllo", ""], &[]), Value::Bool(true)),
        (
            text_op("starts_with", &["héllo", "hé"], &[]),
            Value::Bool(true),
        ),
        (
            text_op("ends_with", &["héllo", "hé"], &[]),
            Value::Bool(false),
        ),
        (
            text_op("replace", &["a-b-c", "-", "+="], &[]),
            text("a+=b+=c"),
        ),
        (text_op("replace", &["ab", "", "-"], &[]), text("-a-b-")),
        (text_op("replace", &["aaa", "aa", "b"], &[]), text("ba")),
        (text_op("trim", &["\t x y \u{3000}\n"], &[]), text("x y")),
        (text_op("to_upper", &["straße"], &[]), text("STRASSE")),
        (text_op("to_lower", &["ÀB"], &[]), text("àb")),
        (text_op("substring", &["héllo"], &[1, 3]), text("éll")),
        (text_op("substring", &["héllo"], &[4, 100]), text("o")),
        (text_op("substring", &["héllo"], &[9, 1]), text("")),
        (
            text_op("parse_i64", &["-9223372036854775808"], &[]),
            Value::I64(i64::MIN),
        ),
        (text_op("parse_f64", &["-1.5e3"], &[]), Value::F64(-1500.0)),
        (
            text_op("parse_f64", &["INF"], &[]),
            Value::F64(f64::INFINITY),
        ),
    ];
    for (g, expected) in cases {
        assert_eq!(agreed(&g), [expected]);
    }
}

#[test]
fn bad_numbers_and_negative_positions_are_invalid_value_at_the_node_in_both_engines() {
    for g in [
        text_op("parse_i64", &["12 apples"], &[]),
        text_op("parse_i64", &["9223372036854775808"], &[]),
        text_op("parse_i64", &[" 1"], &[]),
        text_op("parse_f64", &["1,5"], &[]),
        text_op("substring", &["abc"], &[-1, 2]),
        text_op("substring", &["abc"], &[0, -2]),
    ] {
        let limits = RunLimits::default();
        let eval = eval_with(&g, limits).expect_err("eval fails");
        let run = run_with(&compile(&g), limits).expect_err("run fails");
        for e in [&eval, &run] {
            assert_eq!(e.kind, graphjit::ErrorKind::InvalidValue, "{e}");
            assert_eq!(e.node.as_deref(), Some("r"), "{e}");
        }
    }
}

#[test]
fn a_replace_past_the_memory_limit_is_refused_before_it_is_built() {
    // 4,096 chars, each with 4 KiB inserted before it: 16 MiB, over a 1 MiB limit.
    let long = "x".repeat(4096);
    let insert = "y".repeat(4096);
    let g = text_op("replace", &[&long, "", &insert], &[]);
    let limits = RunLimits {
        memory_bytes: 1 << 20,
        ..RunLimits::default()
    };
    let eval = eval_with(&g, limits).expect_err("eval refuses");
    let run = run_with(&compile(&g), limits).expect_err("run refuses");
    for e in [&eval, &run] {
        assert!(
            matches!(e.kind, graphjit::ErrorKind::MemoryExceeded { .. }),
            "{e}"
        );
    }
    assert_eq!(eval.node.as_deref(), Some("r"));
}

#[test]
fn string_ops_refuse_wrong_argument_types() {
    for json in [
        r#"{"version": 1, "nodes": [{"id": "a", "op": "const", "value": 1}, {"id": "r", "op": "trim", "args": ["a"]}], "outputs": {"r": "r"}}"#,
        r#"{"version": 1, "nodes": [{"id": "a", "op": "const", "value": "x"}, {"id": "r", "op": "contains", "args": ["a"]}], "outputs": {"r": "r"}}"#,
        r#"{"version": 1, "nodes": [{"id": "a", "op": "const", "value": "x"}, {"id": "b", "op": "const", "value": 1.5}, {"id": "r", "op": "substring", "args": ["a", "b", "b"]}], "outputs": {"r": "r"}}"#,
    ] {
        let err = Graph::from_json(json.as_bytes()).expect_err(json);
        assert_eq!(err.kind, graphjit::ErrorKind::InvalidGraph, "{json}");
        assert_eq!(err.node.as_deref(), Some("r"), "{json}");
    }
}

/// `mul` on i64 takes a fast path in the guest when both factors fit in 32 bits (no
/// 128-bit multiply); around that boundary, and at the edges of i64, the compiled run
/// agrees with `eval` on the product or on the overflow and its node.
#[test]
fn mul_agrees_with_eval_across_the_32_bit_fast_path() {
    let g = graph(
        r#"{"version": 2, "nodes": [
        {"id": "a", "op": "input", "type": "i64"},
        {"id": "b", "op": "input", "type": "i64"},
        {"id": "p", "op": "mul", "args": ["a", "b"]}
    ], "outputs": {"p": "p"}}"#,
    );
    let compiled = compile(&g);
    let (min32, max32) = (i64::from(i32::MIN), i64::from(i32::MAX));
    let pairs = [
        (max32, max32),
        (min32, min32),
        (min32, max32),
        (max32 + 1, max32 + 1),
        (min32 - 1, max32),
        (1 << 32, 1 << 31),
        (-(1 << 32), 1 << 31),
        (1 << 32, -(1 << 31)),
        (3_037_000_499, 3_037_000_499),
        (3_037_000_500, 3_037_000_500),
        (i64::MIN, 1),
        (i64::MIN, -1),
        (-1, i64::MIN),
        (i64::MAX, -1),
        (i64::MAX, 2),
        (0, i64::MIN),
    ];
    let mut overflows = 0;
    for (a, b) in pairs {
        let inputs: BTreeMap<String, Value> = [
            ("a".to_string(), Value::I64(a)),
            ("b".to_string(), Value::I64(b)),
        ]
        .into_iter()
        .collect();
        let limits = RunLimits::default();
        let ran = block_on(crate::support::host().run(&compiled, &inputs, limits));
        let evaluated = graphjit::Host::eval(&g, &inputs, limits);
        match (ran, evaluated) {
            (Ok(r), Ok(e)) => {
                assert_eq!(values(&r), values(&e), "{a} * {b}");
                assert_eq!(values(&r), vec![Value::I64(a.wrapping_mul(b))], "{a} * {b}");
            }
            (Err(r), Err(e)) => {
                assert_eq!(
                    (&r.kind, &r.node),
                    (&e.kind, &e.node),
                    "{a} * {b}: {r} / {e}"
                );
                assert!(a.checked_mul(b).is_none(), "{a} * {b} failed: {r}");
                overflows += 1;
            }
            (r, e) => panic!("{a} * {b}: run {r:?}, eval {e:?}"),
        }
    }
    assert_eq!(overflows, 5, "the pairs that overflow i64");
}
