//! Named dimensions (issue 14): `{"tensor": ["batch", 3]}` binds from the inputs at run time,
//! is checked with errors naming the dim, and compiles once per binding (the binding is in the
//! specialization's hash and so its cache key); eval takes any binding. Each specialization's
//! compiled run agrees with eval of the generic graph, bit for bit.

use std::collections::BTreeMap;

use graphjit::{CacheSource, ErrorKind, Graph, Host, RunLimits, Stage, Tensor, Value};

use crate::ops::bit_pattern;
use crate::support::{block_on, graph, host};

const MLP: &str = r#"{"version": 2, "name": "mlp", "nodes": [
    {"id": "x", "op": "input", "type": {"tensor": ["batch", 2, 3]}},
    {"id": "flat", "op": "reshape", "args": ["x"], "shape": ["batch", 6]},
    {"id": "w", "op": "const", "type": {"tensor": [6, 2]},
     "value": [0.1, 0.2, 0.3, -0.4, 0.5, 0.6, -0.7, 0.8, 0.9, 1.0, -1.1, 1.2]},
    {"id": "b", "op": "const", "type": {"tensor": [2]}, "value": [0.01, -0.02]},
    {"id": "h", "op": "matmul", "args": ["flat", "w"]},
    {"id": "hb", "op": "add", "args": ["h", "b"]},
    {"id": "r", "op": "relu", "args": ["hb"]},
    {"id": "p", "op": "softmax", "args": ["r"]},
    {"id": "col", "op": "sum", "args": ["p"], "axis": 0}
], "outputs": {"p": "p", "col": "col"}}"#;

fn batch(n: u32) -> BTreeMap<String, Value> {
    let data = (0..n * 6).map(|i| (i as f32 * 0.37).sin()).collect();
    let x = Value::Tensor(Tensor {
        shape: vec![n, 2, 3],
        data,
    });
    BTreeMap::from([("x".to_owned(), x)])
}

fn bits(out: &graphjit::RunOutput) -> Vec<String> {
    out.outputs.iter().map(|(_, v)| bit_pattern(v)).collect()
}

#[test]
fn a_batch_sized_mlp_compiles_once_per_batch_and_agrees_with_eval() {
    let g = graph(MLP);
    assert!(g.is_generic());
    assert_eq!(g.dims(), vec!["batch".to_owned()]);
    assert_eq!(
        g.inputs(),
        vec![("x".to_owned(), "tensor[batch, 2, 3]".to_owned())]
    );
    let mut keys = Vec::new();
    for n in [1, 4, 0] {
        let inputs = batch(n);
        let expected = Host::eval(&g, &inputs, RunLimits::default()).expect("eval");
        let spec = g.specialize(&inputs).expect("specializes");
        assert!(!spec.is_generic());
        assert_eq!(
            spec.specialized_from(),
            Some((g.hash().as_str(), format!("batch = {n}").as_str()))
        );
        let compiled = host().compile(&spec).expect("compiles");
        let out = block_on(host().run(&compiled, &inputs, RunLimits::default())).expect("runs");
        assert_eq!(bits(&expected), bits(&out), "batch {n}: eval vs compiled");
        match &out.outputs[1].1 {
            Value::Tensor(p) => assert_eq!(p.shape, vec![n, 2]),
            other => panic!("p is a tensor: {other:?}"),
        }
        keys.push(compiled.stats.key.clone());
        // The same binding again: the same specialization, answered from memory.
        let again = g.specialize(&inputs).expect("specializes");
        assert_eq!(again.hash(), spec.hash());
        let warm = host().compile(&again).expect("compiles");
        assert_eq!(warm.stats.cache, CacheSource::Memory);
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 3, "one cache key per binding");
    let made: Vec<String> = g
        .specializations()
        .into_iter()
        .map(|(binding, _)| format!("{binding:?}"))
        .collect();
    assert_eq!(
        made,
        vec![
            r#"[("batch", 0)]"#.to_owned(),
            r#"[("batch", 1)]"#.to_owned(),
            r#"[("batch", 4)]"#.to_owned()
        ]
    );
    let explained = host().explain(&g);
    assert_eq!(explained.dims, vec!["batch".to_owned()]);
    assert_eq!(explained.specializations.len(), 3);
    assert!(explained.specializations[2].starts_with("batch = 4: "));
}

#[test]
fn a_generic_graph_compiles_only_as_a_specialization() {
    let g = graph(MLP);
    let e = host().compile(&g).expect_err("generic");
    assert_eq!((e.kind, e.stage), (ErrorKind::InvalidInput, Stage::Compile));
    assert!(e.message.contains("batch"), "{}", e.message);
    assert!(g.rust_source().is_err());
}

const TWO_INPUTS: &str = r#"{"version": 2, "nodes": [
    {"id": "x", "op": "input", "type": {"tensor": ["batch", 3]}},
    {"id": "y", "op": "input", "type": {"tensor": ["batch"]}},
    {"id": "s", "op": "sum", "args": ["x"], "axis": 1},
    {"id": "z", "op": "add", "args": ["s", "y"]}
], "outputs": {"z": "z"}}"#;

fn tensor(shape: &[u32]) -> Value {
    let n: u32 = shape.iter().product();
    Value::Tensor(Tensor {
        shape: shape.to_vec(),
        data: (0..n).map(|i| i as f32).collect(),
    })
}

#[test]
fn bindings_are_checked_with_errors_that_name_the_dim_and_input() {
    let g = graph(TWO_INPUTS);
    let refused = |x: Value, y: Option<Value>| {
        let mut inputs = BTreeMap::from([("x".to_owned(), x)]);
        if let Some(y) = y {
            inputs.insert("y".to_owned(), y);
        }
        let compiled = g.specialize(&inputs).expect_err("refused");
        let evaluated = Host::eval(&g, &inputs, RunLimits::default()).expect_err("refused");
        assert_eq!(compiled, evaluated, "both paths give the same error");
        assert_eq!(compiled.kind, ErrorKind::InvalidInput);
        (compiled.node.unwrap_or_default(), compiled.message)
    };
    let (node, message) = refused(tensor(&[2, 3]), Some(tensor(&[3])));
    assert_eq!(node, "y");
    assert!(
        message.contains(r#"the dim "batch" is 2 from input "x" and 3 from input "y""#),
        "{message}"
    );
    let (node, message) = refused(tensor(&[2, 4]), Some(tensor(&[2])));
    assert_eq!(node, "x");
    assert!(message.contains("its axis 1 is 4, not 3"), "{message}");
    let (node, message) = refused(tensor(&[6]), Some(tensor(&[6])));
    assert_eq!(node, "x");
    assert!(message.contains("[batch, 3]"), "{message}");
    let (node, _) = refused(tensor(&[2, 3]), None);
    assert_eq!(node, "y");
    let (node, _) = refused(Value::F64(1.0), Some(tensor(&[2])));
    assert_eq!(node, "x");
    // Agreeing inputs run.
    let inputs = BTreeMap::from([
        ("x".to_owned(), tensor(&[2, 3])),
        ("y".to_owned(), tensor(&[2])),
    ]);
    let out = Host::eval(&g, &inputs, RunLimits::default()).expect("runs");
    assert_eq!(
        out.outputs[0].1,
        Value::Tensor(Tensor {
            shape: vec![2],
            data: vec![3.0, 13.0]
        })
    );
}

#[test]
fn a_binding_the_graph_does_not_type_for_is_an_error_that_names_the_binding() {
    // [n] + [3] types for n = 1 (broadcast) and n = 3, not for n = 4.
    let g = graph(
        r#"{"version": 2, "nodes": [
            {"id": "x", "op": "input", "type": {"tensor": ["n"]}},
            {"id": "c", "op": "const", "type": {"tensor": [3]}, "value": [1, 2, 3]},
            {"id": "y", "op": "add", "args": ["x", "c"]}
        ], "outputs": {"y": "y"}}"#,
    );
    let at = |n: u32| BTreeMap::from([("x".to_owned(), tensor(&[n]))]);
    assert!(Host::eval(&g, &at(3), RunLimits::default()).is_ok());
    let e = g.specialize(&at(4)).expect_err("does not type");
    assert_eq!(e.kind, ErrorKind::InvalidGraph);
    assert_eq!(e.node.as_deref(), Some("y"));
    assert!(e.message.starts_with("with n = 4: "), "{}", e.message);
    // A binding past the tensor size limit is resource_exceeded, not a crash.
    let g = graph(
        r#"{"version": 2, "nodes": [
            {"id": "x", "op": "input", "type": {"tensor": ["n", 1]}},
            {"id": "t", "op": "transpose", "args": ["x"]},
            {"id": "y", "op": "mul", "args": ["x", "t"]}
        ], "outputs": {"y": "y"}}"#,
    );
    let e = g.specialize(&BTreeMap::from([("x".to_owned(), tensor(&[65536, 1]))]));
    assert_eq!(e.expect_err("too big").kind, ErrorKind::ResourceExceeded);
}

#[test]
fn load_refuses_dims_that_could_not_follow_the_binding() {
    let refused = |nodes: &str| {
        let json = format!(r#"{{"version": 2, "nodes": [{nodes}], "outputs": {{"y": "y"}}}}"#);
        let e = Graph::from_json(json.as_bytes()).expect_err("refused");
        (e.kind, e.node.unwrap_or_default(), e.message)
    };
    // A constant's shape is fixed.
    let (kind, node, message) = refused(
        r#"{"id": "x", "op": "input", "type": {"tensor": ["n"]}},
           {"id": "c", "op": "const", "type": {"tensor": ["n"]}, "value": [1]},
           {"id": "y", "op": "add", "args": ["x", "c"]}"#,
    );
    assert_eq!((kind, node.as_str()), (ErrorKind::InvalidGraph, "c"));
    assert!(message.contains("constant"), "{message}");
    // So is a default's.
    let (_, node, message) =
        refused(r#"{"id": "y", "op": "input", "type": {"tensor": ["n"]}, "default": [1]}"#);
    assert_eq!(node, "y");
    assert!(message.contains("default"), "{message}");
    // A dim no input binds.
    let (_, node, message) = refused(
        r#"{"id": "x", "op": "input", "type": {"tensor": [6]}},
           {"id": "y", "op": "reshape", "args": ["x"], "shape": ["rows", 2]}"#,
    );
    assert_eq!(node, "");
    assert!(
        message.contains(r#"the dim "rows" is named but no input binds it"#),
        "{message}"
    );
    // Names are identifiers.
    let long = format!("{:?}", "d".repeat(65));
    for bad in [
        r#""""#,
        r#""3x""#,
        r#""a-b""#,
        r#""bätch""#,
        r#""a\u0000""#,
        &long,
    ] {
        let (kind, node, _) = refused(&format!(
            r#"{{"id": "y", "op": "input", "type": {{"tensor": [{bad}]}}}}"#
        ));
        assert_eq!(
            (kind, node.as_str()),
            (ErrorKind::InvalidGraph, "y"),
            "{bad}"
        );
    }
    // At most 16 names.
    let many: Vec<String> = (0..17).map(|i| format!(r#""d{i}""#)).collect();
    let (kind, _, message) = refused(&format!(
        r#"{{"id": "y", "op": "input", "type": {{"tensor": [{}]}}}}"#,
        many.join(", ")
    ));
    assert_eq!(kind, ErrorKind::ResourceExceeded, "{message}");
    // Only a tensor input binds.
    let (_, node, _) =
        refused(r#"{"id": "y", "op": "input", "type": {"list": {"tensor": ["n"]}}}"#);
    assert_eq!(node, "y");
    // A graph that types only for some sizes is refused at load (checked with every dim 1).
    let (_, node, message) = refused(
        r#"{"id": "x", "op": "input", "type": {"tensor": ["n", 3]}},
           {"id": "y", "op": "reshape", "args": ["x"], "shape": [6]}"#,
    );
    assert_eq!(node, "y");
    assert!(message.starts_with("with every named dim 1"), "{message}");
}

#[test]
fn specializations_are_bounded_and_eval_takes_any_binding() {
    let g = graph(
        r#"{"version": 2, "nodes": [
            {"id": "x", "op": "input", "type": {"tensor": ["n"]}},
            {"id": "y", "op": "sum", "args": ["x"]}
        ], "outputs": {"y": "y"}}"#,
    );
    let at = |n: u32| BTreeMap::from([("x".to_owned(), tensor(&[n]))]);
    for n in 0..graphjit::MAX_SPECIALIZATIONS as u32 {
        g.specialize(&at(n)).expect("within the bound");
    }
    // A binding already made is still served; a new one is refused for compiling.
    g.specialize(&at(3)).expect("already made");
    let e = g.specialize(&at(100)).expect_err("beyond the bound");
    assert_eq!(e.kind, ErrorKind::ResourceExceeded);
    assert!(e.message.contains("n = 100"), "{}", e.message);
    let out = Host::eval(&g, &at(100), RunLimits::default()).expect("eval takes any binding");
    assert_eq!(
        out.outputs[0].1,
        Value::Tensor(Tensor {
            shape: vec![],
            data: vec![4950.0]
        })
    );
    assert_eq!(g.specializations().len(), graphjit::MAX_SPECIALIZATIONS);
}

#[test]
fn a_generic_graphs_identity_ignores_layout_and_keeps_its_names() {
    let permuted = r#"{"outputs": {"col": "col", "p": "p"}, "name": "mlp", "version": 2,
      "nodes": [
        {"op": "sum", "id": "col", "args": ["p"], "axis": 0},
        {"id": "p", "op": "softmax", "args": ["r"]},
        {"id": "r", "op": "relu", "args": ["hb"]},
        {"id": "hb", "op": "add", "args": ["h", "b"]},
        {"id": "h", "op": "matmul", "args": ["flat", "w"]},
        {"id": "b", "op": "const", "type": {"tensor": [2]}, "value": [0.01, -0.02]},
        {"id": "w", "op": "const", "type": {"tensor": [6, 2]},
         "value": [0.1, 0.2, 0.3, -0.4, 0.5, 0.6, -0.7, 0.8, 0.9, 1.0, -1.1, 1.2]},
        {"id": "flat", "op": "reshape", "args": ["x"], "shape": ["batch", 6]},
        {"id": "x", "op": "input", "type": {"tensor": ["batch", 2, 3]}}
      ]}"#;
    assert_eq!(graph(MLP).hash(), graph(permuted).hash());
    let renamed = MLP.replace("batch", "rows");
    assert_ne!(graph(MLP).hash(), graph(&renamed).hash());
    // Renaming a dim changes the template, not what a binding computes.
    assert_eq!(
        graph(MLP).specialize(&batch(2)).expect("spec").hash(),
        graph(&renamed).specialize(&batch(2)).expect("spec").hash()
    );
}
