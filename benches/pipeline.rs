//! Criterion benchmarks of the spine (results and the command in `benches/RESULTS.md`):
//! - `cold_jit/{10,100}_nodes`: graph JSON → ready, loaded graph (codegen + rustc + Cranelift);
//! - `instantiate_call/tiny`: a fresh instance of a ready graph, one call;
//! - `tensor_1m/{wasm,native,eval}`: a 1M-element elementwise chain + sum, in the guest, in
//!   hand-written native Rust with the same float rules, and in the reference interpreter.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use graphjit::{Graph, Host, RunLimits, Value};

/// A chain of `n` i64/f64 nodes over one input, each depending on the one before.
fn chain_graph(n: usize) -> String {
    let mut nodes = vec![
        r#"{"id": "x", "op": "input", "type": "f64", "default": 1.25}"#.to_string(),
        r#"{"id": "k", "op": "const", "value": 1.0001}"#.to_string(),
    ];
    let mut last = "x".to_string();
    for i in 0..n.saturating_sub(2) {
        let op = ["mul", "add", "max", "sub"][i % 4];
        nodes.push(format!(
            r#"{{"id": "n{i}", "op": "{op}", "args": ["{last}", "k"]}}"#
        ));
        last = format!("n{i}");
    }
    format!(
        r#"{{"version": 1, "nodes": [{}], "outputs": {{"y": "{last}"}}}}"#,
        nodes.join(",")
    )
}

const TENSOR_1M: &str = r#"{"version": 1, "nodes": [
    {"id": "t", "op": "iota", "shape": [1048576]},
    {"id": "scale", "op": "const", "type": {"tensor": []}, "value": [0.000001]},
    {"id": "a", "op": "mul", "args": ["t", "scale"]},
    {"id": "b", "op": "tanh", "args": ["a"]},
    {"id": "c", "op": "relu", "args": ["b"]},
    {"id": "d", "op": "add", "args": ["c", "a"]},
    {"id": "s", "op": "sum", "args": ["d"]}
], "outputs": {"s": "s"}}"#;

/// The same computation as `TENSOR_1M`, hand-written: separate passes like the unfused
/// graph, the same f32 functions (libm) and the same 8-lane reduction order.
fn tensor_native() -> f32 {
    let n = 1_048_576usize;
    let t: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let scale = 0.000_001f32;
    let a: Vec<f32> = t.iter().map(|&x| x * scale).collect();
    let b: Vec<f32> = a.iter().map(|&x| libm::tanhf(x)).collect();
    let c: Vec<f32> = b.iter().map(|&x| if x > 0.0 { x } else { 0.0 }).collect();
    let d: Vec<f32> = c.iter().zip(&a).map(|(&x, &y)| x + y).collect();
    let mut p = [0.0f32; 8];
    for chunk in d.chunks(8) {
        for (acc, &v) in p.iter_mut().zip(chunk) {
            *acc += v;
        }
    }
    let q = [p[0] + p[4], p[1] + p[5], p[2] + p[6], p[3] + p[7]];
    (q[0] + q[2]) + (q[1] + q[3])
}

fn benches(c: &mut Criterion) {
    let host = Host::new().expect("toolchain available");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let inputs = BTreeMap::new();
    let limits = RunLimits::default();

    let mut cold = c.benchmark_group("cold_jit");
    cold.sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for n in [10usize, 100] {
        let json = chain_graph(n);
        cold.bench_function(format!("{n}_nodes"), |b| {
            b.iter(|| {
                let graph = Graph::from_json(json.as_bytes()).expect("parses");
                black_box(host.compile(&graph).expect("compiles"))
            })
        });
    }
    cold.finish();

    let tiny = host
        .compile(&Graph::from_json(chain_graph(4).as_bytes()).expect("parses"))
        .expect("compiles");
    c.bench_function("instantiate_call/tiny", |b| {
        b.iter(|| rt.block_on(host.run(&tiny, &inputs, limits)).expect("runs"))
    });

    let graph = Graph::from_json(TENSOR_1M.as_bytes()).expect("parses");
    let compiled = host.compile(&graph).expect("compiles");
    // The three must agree before their speeds are compared.
    let wasm = rt
        .block_on(host.run(&compiled, &inputs, limits))
        .expect("runs");
    let eval = Host::eval(&graph, &inputs, limits).expect("evaluates");
    assert_eq!(wasm.outputs, eval.outputs);
    let Value::Tensor(t) = &wasm.outputs[0].1 else {
        panic!("sum is a tensor")
    };
    assert_eq!(
        t.data[0].to_bits(),
        tensor_native().to_bits(),
        "native baseline computes the same sum"
    );

    let mut tensor = c.benchmark_group("tensor_1m");
    tensor.sample_size(20);
    tensor.bench_function("wasm", |b| {
        b.iter(|| {
            rt.block_on(host.run(&compiled, &inputs, limits))
                .expect("runs")
        })
    });
    tensor.bench_function("native", |b| b.iter(|| black_box(tensor_native())));
    tensor.bench_function("eval", |b| {
        b.iter(|| Host::eval(&graph, &inputs, limits).expect("evaluates"))
    });
    tensor.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
