//! Tensors beyond one shape (issue 14's first slice): NumPy broadcasting of every elementwise
//! op, reductions along an axis (`axis`, `keepdims`), and `softmax` / `log_softmax` as pure
//! ops. Each graph runs in `eval` and in the compiled component with and without the passes,
//! bit for bit (`ops::agreed`); the values are checked against the rule written out here.

use graphjit::{Graph, Tensor, Value};

use crate::ops::agreed;
use crate::support::graph;

fn tensor(shape: &[u32], data: &[f32]) -> Value {
    Value::Tensor(Tensor {
        shape: shape.to_vec(),
        data: data.to_vec(),
    })
}

fn tensors(out: &[Value]) -> Vec<&Tensor> {
    out.iter()
        .map(|v| match v {
            Value::Tensor(t) => t,
            other => panic!("a tensor: {other:?}"),
        })
        .collect()
}

#[test]
fn elementwise_ops_broadcast_by_numpys_rule_in_both_engines() {
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "m", "op": "const", "type": {"tensor": [2, 3]}, "value": [1, 2, 3, 4, 5, 6]},
            {"id": "row", "op": "const", "type": {"tensor": [3]}, "value": [10, 20, 30]},
            {"id": "col", "op": "const", "type": {"tensor": [2, 1]}, "value": [100, 200]},
            {"id": "a_plus_row", "op": "add", "args": ["m", "row"]},
            {"id": "b_row_minus", "op": "sub", "args": ["row", "m"]},
            {"id": "c_outer", "op": "mul", "args": ["col", "row"]},
            {"id": "d_col_div", "op": "div", "args": ["m", "col"]},
            {"id": "e_max", "op": "max", "args": ["col", "m"]},
            {"id": "lo", "op": "const", "type": {"tensor": [3]}, "value": [2, 0, 4]},
            {"id": "hi", "op": "const", "type": {"tensor": [2, 1]}, "value": [2.5, 5]},
            {"id": "f_clamp", "op": "clamp", "args": ["m", "lo", "hi"]}
        ], "outputs": {"a": "a_plus_row", "b": "b_row_minus", "c": "c_outer", "d": "d_col_div",
                       "e": "e_max", "f": "f_clamp"}}"#,
    );
    let out = agreed(&g);
    assert_eq!(
        out,
        vec![
            tensor(&[2, 3], &[11.0, 22.0, 33.0, 14.0, 25.0, 36.0]),
            // Argument order is kept: `row - m`.
            tensor(&[2, 3], &[9.0, 18.0, 27.0, 6.0, 15.0, 24.0]),
            // [2, 1] × [3]: the outer product.
            tensor(&[2, 3], &[1000.0, 2000.0, 3000.0, 2000.0, 4000.0, 6000.0]),
            tensor(
                &[2, 3],
                &[
                    1.0 / 100.0,
                    2.0 / 100.0,
                    3.0 / 100.0,
                    4.0 / 200.0,
                    5.0 / 200.0,
                    6.0 / 200.0
                ]
            ),
            tensor(&[2, 3], &[100.0, 100.0, 100.0, 200.0, 200.0, 200.0]),
            // min(max(m, lo), hi): row 0 capped at 2.5, row 1 at 5 (lo > hi gives hi).
            tensor(&[2, 3], &[2.0, 2.0, 2.5, 4.0, 5.0, 5.0]),
        ]
    );
}

#[test]
fn a_broadcast_zip_between_fused_chains_keeps_the_bits_and_stays_unfused() {
    // exp(m · ¼) + row, then tanh, summed: the broadcast `add` is not fused (a fused program
    // reads each argument at the element's index), the chains on each side of it are.
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "i", "op": "iota", "shape": [64, 32]},
            {"id": "q", "op": "const", "type": {"tensor": []}, "value": [0.001]},
            {"id": "s", "op": "mul", "args": ["i", "q"]},
            {"id": "e", "op": "exp", "args": ["s"]},
            {"id": "r", "op": "iota", "shape": [32]},
            {"id": "rn", "op": "neg", "args": ["r"]},
            {"id": "plus", "op": "add", "args": ["e", "rn"]},
            {"id": "t", "op": "tanh", "args": ["plus"]},
            {"id": "total", "op": "sum", "args": ["t"]}
        ], "outputs": {"total": "total"}}"#,
    );
    let explained = crate::support::host().explain(&g);
    let after = explained.after.join("\n");
    assert!(after.contains("= add("), "the broadcast add stays: {after}");
    assert!(after.contains("→ sum]"), "tanh fused into the sum: {after}");
    agreed(&g);
}

const AXES: &str = r#"{"version": 1, "nodes": [
    {"id": "m", "op": "const", "type": {"tensor": [2, 3]}, "value": [1, "nan", 3, -4, 5, 6]},
    {"id": "a", "op": "sum", "args": ["m"], "axis": 0},
    {"id": "b", "op": "sum", "args": ["m"], "axis": -1, "keepdims": true},
    {"id": "c", "op": "reduce_max", "args": ["m"], "axis": 1},
    {"id": "d", "op": "reduce_min", "args": ["m"], "axis": 0, "keepdims": true},
    {"id": "e", "op": "mean", "args": ["m"], "axis": 1},
    {"id": "empty", "op": "fill", "shape": [2, 0], "value": 1},
    {"id": "f", "op": "sum", "args": ["empty"], "axis": 1},
    {"id": "g", "op": "reduce_max", "args": ["empty"], "axis": 1},
    {"id": "h", "op": "mean", "args": ["empty"], "axis": 1},
    {"id": "k", "op": "sum", "args": ["empty"], "axis": 0}
], "outputs": {"a": "a", "b": "b", "c": "c", "d": "d", "e": "e", "f": "f", "g": "g", "h": "h",
               "k": "k"}}"#;

#[test]
fn reductions_along_an_axis_in_both_engines() {
    let out = agreed(&graph(AXES));
    let t = tensors(&out);
    assert_eq!(t[0].shape, [3]);
    assert_eq!(t[0].data[0], -3.0);
    assert!(t[0].data[1].is_nan(), "NaN propagates through a sum");
    assert_eq!(t[0].data[2], 9.0);
    assert_eq!(t[1].shape, [2, 1], "keepdims keeps the axis as 1");
    assert!(t[1].data[0].is_nan());
    assert_eq!(t[1].data[1], 7.0);
    // reduce_max / reduce_min ignore NaN (fmaxf, fminf), as the whole-tensor ones do.
    assert_eq!(
        t[2],
        &Tensor {
            shape: vec![2],
            data: vec![3.0, 6.0]
        }
    );
    assert_eq!(
        t[3],
        &Tensor {
            shape: vec![1, 3],
            data: vec![-4.0, 5.0, 3.0]
        }
    );
    assert!(t[4].data[0].is_nan());
    assert_eq!(t[4].data[1], 7.0 / 3.0);
    // An empty axis: the identities (0, -inf) and a NaN mean, as for an empty tensor.
    assert_eq!(
        t[5],
        &Tensor {
            shape: vec![2],
            data: vec![0.0, 0.0]
        }
    );
    assert_eq!(t[6].data, [f32::NEG_INFINITY; 2]);
    assert!(t[7].data.iter().all(|x| x.is_nan()), "{:?}", t[7]);
    assert_eq!(
        t[8],
        &Tensor {
            shape: vec![0],
            data: vec![]
        }
    );
}

#[test]
fn a_sum_along_a_vectors_only_axis_is_the_whole_sum_bit_for_bit() {
    // 1000 elements of iota · 0.1: the 8-lane order matters to the rounding; both the axis
    // rule and the whole-tensor rule use it.
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "i", "op": "iota", "shape": [1000]},
            {"id": "q", "op": "fill", "shape": [1000], "value": 0.1},
            {"id": "x", "op": "mul", "args": ["i", "q"]},
            {"id": "whole", "op": "sum", "args": ["x"]},
            {"id": "along", "op": "sum", "args": ["x"], "axis": 0},
            {"id": "sq", "op": "reshape", "args": ["x"], "shape": [1, 1000]},
            {"id": "rows", "op": "sum", "args": ["sq"], "axis": 1}
        ], "outputs": {"a": "whole", "b": "along", "c": "rows"}}"#,
    );
    let out = agreed(&g);
    let t = tensors(&out);
    assert_eq!(t[0].data[0].to_bits(), t[1].data[0].to_bits());
    assert_eq!(t[0].data[0].to_bits(), t[2].data[0].to_bits());
}

#[test]
fn softmax_and_log_softmax_along_an_axis_in_both_engines() {
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "x", "op": "const", "type": {"tensor": [3, 4]},
             "value": [1, 2, 3, 4,  -1, 0, "-inf", 1,  1000, 1000, 0, -1000]},
            {"id": "p", "op": "softmax", "args": ["x"]},
            {"id": "lp", "op": "log_softmax", "args": ["x"]},
            {"id": "p0", "op": "softmax", "args": ["x"], "axis": 0},
            {"id": "rows", "op": "sum", "args": ["p"], "axis": 1}
        ], "outputs": {"a": "p", "b": "lp", "c": "p0", "d": "rows"}}"#,
    );
    let out = agreed(&g);
    let t = tensors(&out);
    let x: [f64; 12] = [
        1.0,
        2.0,
        3.0,
        4.0,
        -1.0,
        0.0,
        f64::NEG_INFINITY,
        1.0,
        1000.0,
        1000.0,
        0.0,
        -1000.0,
    ];
    // The rule in f64, for a tolerance check (the engines' own bits are compared above).
    for (r, row) in x.chunks(4).enumerate() {
        let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
        for (k, v) in row.iter().enumerate() {
            let (p, lp) = ((v - m).exp() / s, (v - m) - s.ln());
            let (got_p, got_lp) = (t[0].data[r * 4 + k], t[1].data[r * 4 + k]);
            assert!(
                (f64::from(got_p) - p).abs() < 1e-6,
                "p[{r}][{k}] {got_p} vs {p}"
            );
            if lp.is_finite() {
                let err = (f64::from(got_lp) - lp).abs() / lp.abs().max(1.0);
                assert!(err < 1e-6, "lp[{r}][{k}] {got_lp} vs {lp}");
            } else {
                assert_eq!(got_lp, f32::NEG_INFINITY, "log of a -inf element's share");
            }
        }
        assert!(
            (t[3].data[r] - 1.0).abs() < 1e-6,
            "a line sums to 1: {:?}",
            t[3]
        );
    }
    // Along axis 0: each column sums to 1.
    for c in 0..4 {
        let col: f32 = (0..3).map(|r| t[2].data[r * 4 + c]).sum();
        assert!((col - 1.0).abs() < 1e-6, "column {c}: {col}");
    }
}

#[test]
fn a_two_layer_mlp_with_a_broadcast_bias_runs_in_both_engines() {
    // log_softmax(relu(x·W1 + b1)·W2 + b2) over a batch of 8: the graph issue 14 says could
    // not be written.
    let (batch, input, hidden, classes) = (8u32, 16u32, 12u32, 4u32);
    let numbers = |n: u32, scale: f32| -> String {
        let v: Vec<String> = (0..n)
            .map(|i| format!("{}", ((i * 37 % 17) as f32 - 8.0) * scale))
            .collect();
        v.join(",")
    };
    let json = format!(
        r#"{{"version": 1, "nodes": [
            {{"id": "x", "op": "input", "type": {{"tensor": [{batch}, {input}]}},
              "default": [{x}]}},
            {{"id": "w1", "op": "const", "type": {{"tensor": [{input}, {hidden}]}}, "value": [{w1}]}},
            {{"id": "b1", "op": "const", "type": {{"tensor": [{hidden}]}}, "value": [{b1}]}},
            {{"id": "w2", "op": "const", "type": {{"tensor": [{hidden}, {classes}]}}, "value": [{w2}]}},
            {{"id": "b2", "op": "const", "type": {{"tensor": [{classes}]}}, "value": [{b2}]}},
            {{"id": "h", "op": "matmul", "args": ["x", "w1"]}},
            {{"id": "hb", "op": "add", "args": ["h", "b1"]}},
            {{"id": "a", "op": "relu", "args": ["hb"]}},
            {{"id": "o", "op": "matmul", "args": ["a", "w2"]}},
            {{"id": "ob", "op": "add", "args": ["o", "b2"]}},
            {{"id": "y", "op": "log_softmax", "args": ["ob"], "axis": 1}}
        ], "outputs": {{"y": "y"}}}}"#,
        x = numbers(batch * input, 0.25),
        w1 = numbers(input * hidden, 0.05),
        b1 = numbers(hidden, 0.1),
        w2 = numbers(hidden * classes, 0.07),
        b2 = numbers(classes, 0.3),
    );
    let out = agreed(&graph(&json));
    let y = tensors(&out)[0];
    assert_eq!(y.shape, [batch, classes]);
    for row in y.data.chunks(classes as usize) {
        let total: f32 = row.iter().map(|v| v.exp()).sum();
        assert!((total - 1.0).abs() < 1e-5, "{row:?}");
    }
}

fn refused(json: &str) -> graphjit::Error {
    Graph::from_json(json.as_bytes()).expect_err("refused")
}

/// Each `(node, expected)`: the graph `with(node)` is `invalid_graph` at node `r`, its message
/// containing `expected`.
fn refused_at_r(with: impl Fn(&str) -> graphjit::Error, cases: &[(&str, &str)]) {
    for (node, expected) in cases {
        let e = with(node);
        assert_eq!(e.kind_name(), "invalid_graph", "{node}: {e}");
        assert_eq!(e.node.as_deref(), Some("r"), "{node}: {e}");
        assert!(e.message.contains(expected), "{node}: {e}");
    }
}

#[test]
fn axes_and_shapes_a_rule_forbids_are_typed_errors_naming_the_node() {
    let with = |node: &str| {
        refused(&format!(
            r#"{{"version": 2, "nodes": [
                {{"id": "m", "op": "iota", "shape": [2, 3]}},
                {{"id": "v", "op": "iota", "shape": [2]}},
                {{"id": "s", "op": "const", "type": {{"tensor": []}}, "value": [1]}},
                {{"id": "n", "op": "const", "value": 3}},
                {{"id": "l", "op": "range", "args": ["n", "n"]}},
                {node}
            ], "outputs": {{"r": "r"}}}}"#
        ))
    };
    let cases = [
        (
            r#"{"id": "r", "op": "sum", "args": ["m"], "axis": 2}"#,
            "an axis is -2..1",
        ),
        (
            r#"{"id": "r", "op": "mean", "args": ["m"], "axis": -3}"#,
            "an axis is -2..1",
        ),
        (
            r#"{"id": "r", "op": "sum", "args": ["m"], "keepdims": true}"#,
            "only with an \"axis\"",
        ),
        (
            r#"{"id": "r", "op": "softmax", "args": ["s"]}"#,
            "needs a tensor with an axis",
        ),
        (
            r#"{"id": "r", "op": "add", "args": ["m", "v"]}"#,
            "do not broadcast",
        ),
        (
            r#"{"id": "r", "op": "sum", "args": ["l"], "axis": 0}"#,
            "along an axis needs a tensor",
        ),
        (
            r#"{"id": "r", "op": "softmax", "args": ["m"], "keepdims": true}"#,
            "does not take the field \"keepdims\"",
        ),
    ];
    refused_at_r(with, &cases);
}

#[test]
fn a_broadcast_past_the_tensor_size_limit_is_resource_exceeded() {
    // [65536, 1] + [1, 65536] would be 2^32 elements from two inputs of 2^16 each.
    let e = refused(
        r#"{"version": 1, "nodes": [
            {"id": "c", "op": "iota", "shape": [65536, 1]},
            {"id": "r", "op": "iota", "shape": [1, 65536]},
            {"id": "o", "op": "add", "args": ["c", "r"]}
        ], "outputs": {"o": "o"}}"#,
    );
    assert_eq!(e.kind_name(), "resource_exceeded", "{e}");
    assert_eq!(e.node.as_deref(), Some("o"));
}

#[test]
fn explain_shows_the_axis() {
    let explained = crate::support::host().explain(&graph(AXES));
    let before = explained.before.join("\n");
    assert!(
        before.contains("\"b\" = sum[axis -1, keepdims](\"m\")"),
        "{before}"
    );
    assert!(before.contains("\"a\" = sum[axis 0](\"m\")"), "{before}");
}

#[test]
fn layer_norm_over_trailing_axes_in_both_engines() {
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "x", "op": "const", "type": {"tensor": [2, 2, 3]},
             "value": [1, 2, 3, 4, 5, 6,  -2, 0, 2, 10, 10, 10]},
            {"id": "g3", "op": "const", "type": {"tensor": [3]}, "value": [1, 2, -1]},
            {"id": "b3", "op": "const", "type": {"tensor": [3]}, "value": [0, 0.5, 1]},
            {"id": "g23", "op": "fill", "shape": [2, 3], "value": 1},
            {"id": "last", "op": "layer_norm", "args": ["x", "g3", "b3"]},
            {"id": "two", "op": "layer_norm", "args": ["x", "g23"], "axis": 1, "epsilon": 0.001}
        ], "outputs": {"a": "last", "b": "two"}}"#,
    );
    let out = agreed(&g);
    let t = tensors(&out);
    let x = [
        1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0, -2.0, 0.0, 2.0, 10.0, 10.0, 10.0,
    ];
    let reference = |n: usize, eps: f64, scale: &[f64], bias: &[f64]| -> Vec<f64> {
        x.chunks(n)
            .flat_map(|line| {
                let mean = line.iter().sum::<f64>() / n as f64;
                let var = line.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
                let inv = 1.0 / (var + eps).sqrt();
                line.iter()
                    .enumerate()
                    .map(move |(k, v)| {
                        (v - mean) * inv * scale[k % scale.len()] + bias[k % bias.len()]
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let a = reference(3, 1e-5, &[1.0, 2.0, -1.0], &[0.0, 0.5, 1.0]);
    let b = reference(6, 1e-3, &[1.0], &[0.0]);
    for (got, want) in t[0].data.iter().zip(&a).chain(t[1].data.iter().zip(&b)) {
        assert!((f64::from(*got) - want).abs() < 1e-4, "{got} vs {want}");
    }
    // A constant line normalizes to 0 (then the bias): d = 0, so no NaN from 0/0.
    assert_eq!(&t[0].data[9..], [0.0, 0.5, 1.0]);
    assert_eq!(t[1].shape, [2, 2, 3]);
}

#[test]
fn layer_norm_refuses_parameters_of_the_wrong_shape_and_a_bad_epsilon() {
    let with = |node: &str| {
        refused(&format!(
            r#"{{"version": 1, "nodes": [
                {{"id": "x", "op": "iota", "shape": [2, 3]}},
                {{"id": "g", "op": "iota", "shape": [3]}},
                {{"id": "g2", "op": "iota", "shape": [2]}},
                {node}
            ], "outputs": {{"r": "r"}}}}"#
        ))
    };
    let cases = [
        (
            r#"{"id": "r", "op": "layer_norm", "args": ["x", "g2"]}"#,
            "needs a scale of shape [3]",
        ),
        (
            r#"{"id": "r", "op": "layer_norm", "args": ["x", "g", "g2"]}"#,
            "needs a bias of shape [3]",
        ),
        (
            r#"{"id": "r", "op": "layer_norm", "args": ["x", "g"], "axis": 0}"#,
            "needs a scale of shape [2, 3]",
        ),
        (
            r#"{"id": "r", "op": "layer_norm", "args": ["x"]}"#,
            "takes a tensor x, a scale",
        ),
        (
            r#"{"id": "r", "op": "layer_norm", "args": ["x", "g"], "epsilon": -1}"#,
            "finite f32 ≥ 0",
        ),
        (
            r#"{"id": "r", "op": "layer_norm", "args": ["x", "g"], "epsilon": 1e300}"#,
            "finite f32 ≥ 0",
        ),
    ];
    refused_at_r(with, &cases);
}
