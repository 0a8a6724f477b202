//! The value rules: checked i64, IEEE/libm f64, comparisons, strings and conversions, and the
//! tensor rules (broadcasting, reduction order, matmul without fused multiply-add).

use graphjit_value::{CANONICAL_NAN_F64, Tensor, Value};
use serde_json::json;

use super::run_nodes;
use crate::eval::EvalError;

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
