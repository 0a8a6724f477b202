//! Criterion benchmarks of the spine (results and the command in `benches/RESULTS.md`):
//! - `cold_jit/{10,100}_nodes`: graph JSON → ready, loaded graph (codegen + rustc + Cranelift);
//!   `cold_jit/rustc_floor`: the same rustc invocation on a trivial `no_std` crate, the floor;
//! - `instantiate_call/tiny`: a fresh instance of a ready graph, one call;
//!   `instantiate_call/bare_wasmtime`: the same component on wasmtime alone (same engine
//!   configuration, fresh store, instantiate, call), the floor;
//! - `tensor_1m/{wasm,native,native_fused,native_fused_inlined,eval}`: a 1M-element
//!   elementwise chain + sum, in the guest, in hand-written native Rust with the same float
//!   rules (per op, fused by hand, fused by hand with the guest's inlined `tanhf`), and in the
//!   reference interpreter;
//! - `cache/{memory_hit,disk_hit}`: graph → ready instance from L1 and from L2;
//! - `effects/{loop100_log,loop100_pure}`: 100 host calls (a `log` with a trivial runner) vs the
//!   same loop without them: the difference / 100 is one guest → host → guest round trip;
//! - `matmul512/{guest,host_kernel}`: a 512×512 matmul in the guest vs the native kernel;
//! - `matmul512_gpu/host_kernel_cuda`: the same kernel served by cuBLAS, only when the host's
//!   kernel backend runs matmul on a CUDA device (`--features cuda`); otherwise it prints why
//!   it was skipped;
//! - `fusion/{fused,unfused}`, `fanout/{batched,sequential}`: the optimizer's targets (see
//!   `optimizer_benches`);
//! - `lists/{fused,unfused,native}`, `json_parse/{wasm,eval,serde_json}`,
//!   `map_http/{batched,sequential}`, `cached/{hit,miss}`: structured data (see
//!   `structured_benches`); `db_rows/{graphjit,tokio_postgres}`: 100k PostgreSQL rows (see
//!   `db_benches`);
//! - `replacement_latency` (printed, not criterion): p50/p99 of `invoke` with and without hot
//!   replacements every 20 ms.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use graphjit::testing::baselines;
use graphjit::{CacheConfig, CacheSource, Graph, Host, HostConfig, RunLimits, Value};

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

/// A host with the given memory-cache entries and disk directory.
fn host_with(memory_entries: usize, disk_dir: Option<std::path::PathBuf>) -> Host {
    Host::with_config(&HostConfig {
        cache: CacheConfig {
            memory_entries,
            disk_dir,
            ..CacheConfig::default()
        },
        ..HostConfig::default()
    })
    .expect("toolchain available")
}

/// A hand-written native baseline of `TENSOR_1M`.
type Baseline = fn() -> f32;

/// The same computation fused by hand: one pass, no intermediate vectors, the same element
/// functions and the same 8-lane reduction order (what graphjit's fusion generates), with
/// `libm::tanhf`.
fn tensor_native_fused() -> f32 {
    tensor_native_fused_with(libm::tanhf)
}

/// `tensor_native_fused` with the guest's own inlinable `tanhf` (`graphjit_value::math`)
/// instead of `libm`'s: what native code gets from the same trick the guest uses.
fn tensor_native_fused_inlined() -> f32 {
    tensor_native_fused_with(graphjit_value::math::tanhf)
}

/// The hand-fused loop with `tanh` as given (generic, so an inlinable one is inlined).
fn tensor_native_fused_with(tanh: impl Fn(f32) -> f32) -> f32 {
    let n = 1_048_576usize;
    let scale = 0.000_001f32;
    let mut p = [0.0f32; 8];
    for i in 0..n {
        let a = i as f32 * scale;
        let b = tanh(a);
        let c = if b > 0.0 { b } else { 0.0 };
        p[i % 8] += c + a;
    }
    let q = [p[0] + p[4], p[1] + p[5], p[2] + p[6], p[3] + p[7]];
    (q[0] + q[2]) + (q[1] + q[3])
}

fn benches(c: &mut Criterion) {
    // No cache at all: every compile below is the cold path.
    let host = host_with(0, None);
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
    // The floor under every cold compile: the same rustc, flags and linker on a crate that
    // uses nothing. `cold_jit/10_nodes` over this is what our code and template add.
    cold.bench_function("rustc_floor", |b| {
        b.iter(|| black_box(baselines::rustc_floor(&host).expect("the floor compiles")))
    });
    cold.finish();

    let tiny_graph = Graph::from_json(chain_graph(4).as_bytes()).expect("parses");
    let tiny = host.compile(&tiny_graph).expect("compiles");
    let bare = baselines::BareInstance::new(&host, &tiny_graph).expect("bare instance");
    assert_eq!(
        rt.block_on(bare.instantiate_call()).expect("bare run"),
        rt.block_on(bare.instantiate_call()).expect("bare run"),
    );
    let mut instantiate = c.benchmark_group("instantiate_call");
    instantiate.bench_function("tiny", |b| {
        b.iter(|| rt.block_on(host.run(&tiny, &inputs, limits)).expect("runs"))
    });
    // The same component on an engine configured the same way, wasmtime alone: a fresh store,
    // instantiate, call. `tiny` over this is what graphjit's run path adds.
    instantiate.bench_function("bare_wasmtime", |b| {
        b.iter(|| black_box(rt.block_on(bare.instantiate_call()).expect("runs")))
    });
    instantiate.finish();

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
    let by_hand: [(&str, Baseline); 2] = [
        ("native_fused", tensor_native_fused),
        ("native_fused_inlined", tensor_native_fused_inlined),
    ];
    for (name, fused) in by_hand {
        assert_eq!(
            fused().to_bits(),
            tensor_native().to_bits(),
            "{name}: same bits"
        );
        tensor.bench_function(name, |b| b.iter(|| black_box(fused())));
    }
    tensor.bench_function("eval", |b| {
        b.iter(|| Host::eval(&graph, &inputs, limits).expect("evaluates"))
    });
    tensor.finish();
}

fn cache_benches(c: &mut Criterion) {
    let json = chain_graph(10);
    let graph = Graph::from_json(json.as_bytes()).expect("parses");
    let mut group = c.benchmark_group("cache");

    let memory = host_with(16, None);
    memory.compile(&graph).expect("compiles");
    group.bench_function("memory_hit", |b| {
        b.iter(|| {
            let ready = memory.compile(&graph).expect("hit");
            assert_eq!(ready.stats.cache, CacheSource::Memory);
            black_box(ready)
        })
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let disk = host_with(0, Some(dir.path().join("components")));
    disk.compile(&graph).expect("compiles");
    group.bench_function("disk_hit", |b| {
        b.iter(|| {
            let ready = disk.compile(&graph).expect("hit");
            assert_eq!(ready.stats.cache, CacheSource::Disk);
            black_box(ready)
        })
    });
    group.finish();
}

/// p50/p99 of `invoke` latency with and without a replacement every 20 ms, printed (criterion
/// reports central tendencies, and this target is about the tail).
fn replacement_latency(_c: &mut Criterion) {
    let host = host_with(256, None);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let versions: Vec<Graph> = (1..=21)
        .map(|v| {
            Graph::from_json(
                chain_graph(10)
                    .replace("1.0001", &format!("1.000{v}"))
                    .as_bytes(),
            )
            .expect("parses")
        })
        .collect();
    let deployments = graphjit::Deployments::new(&host);
    let measure = |swap: bool| -> (Duration, Duration, usize) {
        rt.block_on(async {
            deployments
                .deploy("svc", &versions[0])
                .await
                .expect("deploys");
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let client = {
                let deployments = deployments.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let start = std::time::Instant::now();
                        deployments
                            .invoke("svc", &BTreeMap::new(), RunLimits::default())
                            .await
                            .expect("invokes");
                        latencies.push(start.elapsed());
                    }
                    latencies
                })
            };
            for g in &versions[1..] {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if swap {
                    deployments.deploy("svc", g).await.expect("deploys");
                } else {
                    // The same cache lookup as a deploy, without the swap: isolates the swap.
                    host.compile_async(g).await.expect("compiles");
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let mut latencies = client.await.expect("client");
            latencies.sort();
            let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
            (at(0.5), at(0.99), latencies.len())
        })
    };
    // Warm the cache with every version so both runs compare swaps, not compiles.
    for g in &versions {
        host.compile(g).expect("compiles");
    }
    let (p50_still, p99_still, n_still) = measure(false);
    let (p50_swap, p99_swap, n_swap) = measure(true);
    eprintln!(
        "replacement/invoke: without swaps p50 {p50_still:?} p99 {p99_still:?} (n={n_still}); \
         with 20 swaps p50 {p50_swap:?} p99 {p99_swap:?} (n={n_swap}); p99 ratio {:.2}",
        p99_swap.as_secs_f64() / p99_still.as_secs_f64()
    );
}

/// A loop of 100 iterations whose body logs its state (one host call each) or, for the
/// baseline, does the same pure work without the call.
fn loop_graph(with_log: bool) -> String {
    let body = if with_log {
        r#"{"id": "l", "op": "log", "level": "debug", "args": ["s"]},
           {"id": "n", "op": "add", "args": ["l", "one"]}"#
    } else {
        r#"{"id": "n", "op": "add", "args": ["s", "one"]}"#
    };
    format!(
        r#"{{"version": 1, "nodes": [
            {{"id": "one", "op": "const", "value": 1}},
            {{"id": "zero", "op": "const", "value": 0}},
            {{"id": "lp", "op": "loop", "args": ["zero"], "iterations": 100,
              "body": {{"params": ["i", "s"], "nodes": [{body}], "results": ["n"]}}}}
        ], "outputs": {{"n": "lp"}}}}"#
    )
}

/// `a × b` for 512×512 matrices, with the `matmul` op or through the host kernel.
fn matmul_graph(kernel: bool) -> String {
    square_matmul_graph(512, kernel)
}

/// `a × b` for n×n matrices (`a` = iota · 10⁻⁴, `b` = aᵀ), summed: with the `matmul` op (where
/// it runs is the `place` pass's choice) or the `kernel` node (always the host's ndarray GEMM).
fn square_matmul_graph(n: u32, kernel: bool) -> String {
    let op = if kernel {
        r#""op": "kernel", "kernel": "matmul""#
    } else {
        r#""op": "matmul""#
    };
    let elements = n * n;
    format!(
        r#"{{"version": 1, "nodes": [
            {{"id": "r", "op": "iota", "shape": [{elements}]}},
            {{"id": "k", "op": "const", "type": {{"tensor": []}}, "value": [0.0001]}},
            {{"id": "s", "op": "mul", "args": ["r", "k"]}},
            {{"id": "a", "op": "reshape", "args": ["s"], "shape": [{n}, {n}]}},
            {{"id": "b", "op": "transpose", "args": ["a"]}},
            {{"id": "c", {op}, "args": ["a", "b"]}},
            {{"id": "t", "op": "sum", "args": ["c"]}}
        ], "outputs": {{"t": "t"}}, "footprint": {{"kernels": ["matmul"]}}}}"#
    )
}

fn effect_benches(c: &mut Criterion) {
    let host = host_with(16, None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let inputs = BTreeMap::new();
    let limits = RunLimits::default();
    let mut group = c.benchmark_group("effects");
    for (name, json) in [
        ("loop100_log", loop_graph(true)),
        ("loop100_pure", loop_graph(false)),
    ] {
        let compiled = host
            .compile(&Graph::from_json(json.as_bytes()).expect("parses"))
            .expect("compiles");
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(host.run(&compiled, &inputs, limits))
                    .expect("runs")
            })
        });
    }
    group.finish();

    // 2·512³ flops take more than the default fuel in the guest.
    let limits = RunLimits {
        fuel: u64::MAX / 4,
        deadline: Duration::from_secs(120),
        ..RunLimits::default()
    };
    let mut group = c.benchmark_group("matmul512");
    group.sample_size(10);
    // `guest` keeps the op in the guest (no `place` pass); `host_kernel` is the kernel node.
    let unplaced = host_with_passes("fold,cse,dce,fuse,batch");
    for (name, kernel) in [("guest", false), ("host_kernel", true)] {
        let host = if kernel { &host } else { &unplaced };
        let compiled = host
            .compile(&Graph::from_json(matmul_graph(kernel).as_bytes()).expect("parses"))
            .expect("compiles");
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(host.run(&compiled, &inputs, limits))
                    .expect("runs")
            })
        });
    }
    group.finish();
}

/// The host kernel's matmul on the GPU, when this host has one that runs it (`--features cuda`
/// on a machine with a CUDA device, the driver and cuBLAS, and a backend that puts matmul
/// there); otherwise a printed reason and nothing measured.
fn gpu_kernel_benches(c: &mut Criterion) {
    let host = host_with(16, None);
    let backend = host.kernel_backend();
    if !backend.starts_with("cuda: ") || backend.contains("on GPU: none") {
        eprintln!("matmul512_gpu skipped: the kernels' backend runs no matmul on a GPU: {backend}");
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let inputs = BTreeMap::new();
    let limits = RunLimits {
        fuel: u64::MAX / 4,
        deadline: Duration::from_secs(120),
        ..RunLimits::default()
    };
    let compiled = host
        .compile(&Graph::from_json(matmul_graph(true).as_bytes()).expect("parses"))
        .expect("compiles");
    let mut group = c.benchmark_group("matmul512_gpu");
    group.sample_size(10);
    group.bench_function("host_kernel_cuda", |b| {
        b.iter(|| {
            rt.block_on(host.run(&compiled, &inputs, limits))
                .expect("runs")
        })
    });
    group.finish();
}

/// A host with the given passes, loopback HTTP allowed (for the local delay server).
fn host_with_passes(passes: &str) -> Host {
    Host::with_config(&HostConfig {
        passes: graphjit::PassConfig::parse(passes).expect("passes"),
        http: graphjit::HttpSettings {
            allow_loopback: true,
            ..graphjit::HttpSettings::default()
        },
        ..HostConfig::default()
    })
    .expect("toolchain available")
}

fn example(name: &str) -> String {
    let path = format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The optimizer's targets (issue 4): `fusion/{fused,unfused}` runs `examples/fusion.json`
/// (five elementwise ops over 1M f32 + a mean) with every pass and with none, and prints each
/// one's peak guest memory; `fanout/{batched,sequential}` runs `examples/fanout.json` (eight
/// independent GETs) against a local server that answers each after 20 ms, with and without
/// the `batch` pass.
fn optimizer_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let limits = RunLimits::default();
    let inputs = BTreeMap::new();

    let fusion = Graph::from_json(example("fusion.json").as_bytes()).expect("parses");
    let mut group = c.benchmark_group("fusion");
    group.sample_size(20);
    let mut outputs = Vec::new();
    for (name, passes) in [("fused", "all"), ("unfused", "none")] {
        let host = host_with_passes(passes);
        let compiled = host.compile(&fusion).expect("compiles");
        let out = rt
            .block_on(host.run(&compiled, &inputs, limits))
            .expect("runs");
        eprintln!(
            "fusion/{name}: peak guest memory {} bytes",
            out.peak_memory_bytes
        );
        outputs.push(out.outputs);
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(host.run(&compiled, &inputs, limits))
                    .expect("runs")
            })
        });
    }
    assert_eq!(outputs[0], outputs[1], "fused and unfused agree");
    group.finish();

    // Placement: each size in the guest (no `place` pass) and as the pass decides (`auto`);
    // for 4×4 and 32×32, where it decides "guest", the `kernel` node stands in for the host
    // path: the same call and copies, and ndarray's GEMM for the product.
    let limits_big = RunLimits {
        fuel: u64::MAX / 4,
        deadline: Duration::from_secs(120),
        ..RunLimits::default()
    };
    let unplaced = host_with_passes("fold,cse,dce,fuse,batch");
    let auto = host_with_passes("all");
    let mut group = c.benchmark_group("placement");
    group.sample_size(10);
    for n in [4u32, 32, 64, 128, 512] {
        let g = Graph::from_json(square_matmul_graph(n, false).as_bytes()).expect("parses");
        let choice = auto
            .explain(&g)
            .placements
            .first()
            .map_or("none", |p| p.choice);
        eprintln!("placement/{n}: the model chooses {choice}");
        for (name, host) in [("guest", &unplaced), ("auto", &auto)] {
            let compiled = host.compile(&g).expect("compiles");
            group.bench_function(format!("{name}_{n}"), |b| {
                b.iter(|| {
                    rt.block_on(host.run(&compiled, &inputs, limits_big))
                        .expect("runs")
                })
            });
        }
    }
    for n in [4u32, 32] {
        let proxy = Graph::from_json(square_matmul_graph(n, true).as_bytes()).expect("parses");
        let compiled = auto.compile(&proxy).expect("compiles");
        group.bench_function(format!("kernel_call_{n}"), |b| {
            b.iter(|| {
                rt.block_on(auto.run(&compiled, &inputs, limits_big))
                    .expect("runs")
            })
        });
    }
    group.finish();

    let server = graphjit::testing::http_server::TestHttp::start();
    let port = server.addr().port();
    let fanout = example("fanout.json")
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("\"port\": 8080", &format!("\"port\": {port}"));
    let fanout = Graph::from_json(fanout.as_bytes()).expect("parses");
    let mut group = c.benchmark_group("fanout");
    group.sample_size(10);
    for (name, passes) in [("batched", "all"), ("sequential", "fold,cse,dce,fuse")] {
        let host = host_with_passes(passes);
        let compiled = host.compile(&fanout).expect("compiles");
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(host.run(&compiled, &inputs, limits))
                    .expect("runs")
            })
        });
    }
    group.finish();
}

/// A `range(0, n) → map (x·3) → filter (even) → fold (+)` pipeline over i64.
fn list_pipeline_graph() -> String {
    r#"{"version": 2, "nodes": [
     {"id": "n", "op": "input", "type": "i64", "default": 1000000},
     {"id": "zero", "op": "const", "value": 0},
     {"id": "r", "op": "range", "args": ["zero", "n"]},
     {"id": "tripled", "op": "map", "args": ["r"], "body": {"params": ["x"], "nodes": [
        {"id": "three", "op": "const", "value": 3},
        {"id": "t", "op": "mul", "args": ["x", "three"]}], "result": "t"}},
     {"id": "even", "op": "filter", "args": ["tripled"], "body": {"params": ["y"], "nodes": [
        {"id": "two", "op": "const", "value": 2},
        {"id": "m", "op": "rem", "args": ["y", "two"]},
        {"id": "z", "op": "const", "value": 0},
        {"id": "is", "op": "eq", "args": ["m", "z"]}], "result": "is"}},
     {"id": "total", "op": "fold", "args": ["even", "zero"], "body": {"params": ["acc", "v"], "nodes": [
        {"id": "s", "op": "add", "args": ["acc", "v"]}], "result": "s"}}
    ], "outputs": {"total": "total"}}"#
        .to_string()
}

/// The same pipeline as a native Rust iterator with the graph's checked arithmetic.
fn list_pipeline_native(n: i64) -> Option<i64> {
    (0..n).map(|x| x.checked_mul(3)).try_fold(0i64, |acc, t| {
        let t = t?;
        if t.checked_rem(2)? == 0 {
            acc.checked_add(t)
        } else {
            Some(acc)
        }
    })
}

/// `json_parse` of `records` objects (about 70 bytes each) into a list of records, then `len`.
fn json_graph() -> String {
    r#"{"version": 2, "nodes": [
     {"id": "text", "op": "input", "type": "string"},
     {"id": "rows", "op": "json_parse", "args": ["text"], "type": {"list": {"record": {
        "id": "i64", "name": "string", "price": "f64", "tags": {"list": "string"}}}}},
     {"id": "count", "op": "len", "args": ["rows"]}
    ], "outputs": {"count": "count"}}"#
        .to_string()
}

fn json_text(records: usize) -> String {
    let rows: Vec<String> = (0..records)
        .map(|i| {
            format!(
                r#"{{"id":{i},"name":"item-{i}","price":{}.25,"tags":["a","bc"]}}"#,
                i % 1000
            )
        })
        .collect();
    format!("[{}]", rows.join(","))
}

#[derive(serde::Deserialize)]
#[allow(
    dead_code,
    reason = "read by serde only: the parse is what is measured"
)]
struct JsonRow {
    id: i64,
    name: String,
    price: f64,
    tags: Vec<String>,
}

/// Fifty GETs of `/delay/10`, one per element of a `map`.
fn map_http_graph(port: u16) -> String {
    format!(
        r#"{{"version": 2, "nodes": [
     {{"id": "zero", "op": "const", "value": 0}},
     {{"id": "fifty", "op": "const", "value": 50}},
     {{"id": "r", "op": "range", "args": ["zero", "fifty"]}},
     {{"id": "bodies", "op": "map", "args": ["r"], "body": {{"params": ["i"], "nodes": [
        {{"id": "get", "op": "http", "method": "GET", "url": "http://127.0.0.1:{port}/delay/10"}}
     ], "result": "get"}}}},
     {{"id": "count", "op": "len", "args": ["bodies"]}}
    ], "outputs": {{"count": "count"}},
    "footprint": {{"http": [{{"method": "GET", "scheme": "http", "host": "127.0.0.1", "port": {port}, "path_prefix": "/delay/"}}]}}}}"#
    )
}

/// `SELECT id, name, price FROM items` as a list of records, then its length.
fn rows_graph() -> String {
    r#"{"version": 2, "nodes": [
     {"id": "rows", "op": "db_query", "sql": "SELECT id, name, price FROM items ORDER BY id",
      "type": {"list": {"record": {"id": "i64", "name": "string", "price": "f64"}}}},
     {"id": "count", "op": "len", "args": ["rows"]}
    ], "outputs": {"count": "count"}, "footprint": {"db": {"read": ["items"]}}}"#
        .to_string()
}

/// `db_rows/{graphjit,tokio_postgres}`: 100,000 rows of `(bigint, text, double)` read from a
/// throwaway PostgreSQL on loopback, by a graph (`db_query` into a list of records, in the
/// guest, through the host's driver and footprint check) and by tokio-postgres directly
/// (the same query, rows decoded into Rust values). Skipped, saying why, without PostgreSQL.
fn db_benches(c: &mut Criterion) {
    let pg = match graphjit::testing::postgres::TestPostgres::start() {
        Ok(pg) => pg,
        Err(e) => {
            eprintln!("db_rows skipped: no PostgreSQL: {e}");
            return;
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let url = pg.url();
    let client = rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connects");
        tokio::spawn(connection);
        client
            .batch_execute(
                "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price double precision NOT NULL);
                 INSERT INTO items SELECT i, 'item-' || i, i * 0.25 FROM generate_series(1, 100000) AS i;
                 ANALYZE items;",
            )
            .await
            .expect("setup");
        client
    });
    let host = Host::with_config(&HostConfig::default()).expect("host");
    let bounds = graphjit::DatabaseLimits {
        max_rows: 1_000_000,
        max_bytes: 1 << 30,
    };
    rt.block_on(host.connect_database_with(&url, bounds))
        .expect("database");
    let graph = Graph::from_json(rows_graph().as_bytes()).expect("parses");
    let compiled = host.compile(&graph).expect("compiles");
    let limits = RunLimits {
        max_effect_bytes: 1 << 30,
        ..RunLimits::default()
    };
    let none = BTreeMap::new();
    let out = rt
        .block_on(host.run(&compiled, &none, limits))
        .expect("runs");
    assert_eq!(out.outputs[0].1, Value::I64(100_000));
    let mut group = c.benchmark_group("db_rows");
    group.sample_size(10);
    group.bench_function("graphjit", |b| {
        b.iter(|| {
            rt.block_on(host.run(&compiled, &none, limits))
                .expect("runs")
        })
    });
    group.bench_function("tokio_postgres", |b| {
        b.iter(|| {
            rt.block_on(async {
                let rows = client
                    .query("SELECT id, name, price FROM items ORDER BY id", &[])
                    .await
                    .expect("query");
                let decoded: Vec<(i64, String, f64)> = rows
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect();
                black_box(decoded.len())
            })
        })
    });
    group.finish();
    drop(pg);
}

/// `sum(range(0, n))` under a `cached` node.
fn cached_graph() -> String {
    r#"{"version": 2, "nodes": [
     {"id": "n", "op": "input", "type": "i64", "default": 100000},
     {"id": "c", "op": "cached", "key": "bench", "args": ["n"],
      "body": {"params": ["m"], "nodes": [
        {"id": "zero", "op": "const", "value": 0},
        {"id": "r", "op": "range", "args": ["zero", "m"]},
        {"id": "s", "op": "sum", "args": ["r"]}], "result": "s"}}
    ], "outputs": {"c": "c"}}"#
        .to_string()
}

/// Structured data (issue 12): `lists/{fused,unfused,native}` (1M elements through
/// `range → map → filter → fold`, fused and not, and a native Rust iterator doing the same
/// checked arithmetic; prints each one's peak guest memory); `json_parse/{wasm,eval,serde_json}`
/// (about 0.7 MB of JSON into a list of records, throughput in bytes); `map_http/{batched,
/// sequential}` (fifty 10 ms GETs in a `map`, as one round and one by one); `cached/{hit,miss}`
/// (a `cached` sum of 100k elements served from the memo, and run every time).
fn structured_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let limits = RunLimits::default();
    let none = BTreeMap::new();

    let pipeline = Graph::from_json(list_pipeline_graph().as_bytes()).expect("parses");
    let mut group = c.benchmark_group("lists");
    group.sample_size(20);
    let want = list_pipeline_native(1_000_000).map(Value::I64);
    for (name, passes) in [("fused", "all"), ("unfused", "fold,cse,dce,place,batch")] {
        let host = host_with_passes(passes);
        let compiled = host.compile(&pipeline).expect("compiles");
        let out = rt
            .block_on(host.run(&compiled, &none, limits))
            .expect("runs");
        assert_eq!(Some(out.outputs[0].1.clone()), want, "{name} == native");
        eprintln!(
            "lists/{name}: peak guest memory {} bytes",
            out.peak_memory_bytes
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(host.run(&compiled, &none, limits))
                    .expect("runs")
            })
        });
    }
    group.bench_function("native", |b| {
        b.iter(|| black_box(list_pipeline_native(black_box(1_000_000))))
    });
    group.finish();

    let text = json_text(10_000);
    let json = Graph::from_json(json_graph().as_bytes()).expect("parses");
    let inputs: BTreeMap<String, Value> = [("text".to_string(), Value::Str(text.clone()))]
        .into_iter()
        .collect();
    let host = host_with_passes("all");
    let compiled = host.compile(&json).expect("compiles");
    let mut group = c.benchmark_group("json_parse");
    group.sample_size(20);
    group.throughput(criterion::Throughput::Bytes(text.len() as u64));
    group.bench_function("wasm", |b| {
        b.iter(|| {
            rt.block_on(host.run(&compiled, &inputs, limits))
                .expect("runs")
        })
    });
    group.bench_function("eval", |b| {
        b.iter(|| Host::eval(&json, &inputs, limits).expect("evaluates"))
    });
    group.bench_function("serde_json", |b| {
        b.iter(|| {
            let rows: Vec<JsonRow> = serde_json::from_str(black_box(&text)).expect("parses");
            black_box(rows.len())
        })
    });
    group.finish();

    let server = graphjit::testing::http_server::TestHttp::start();
    let map_http =
        Graph::from_json(map_http_graph(server.addr().port()).as_bytes()).expect("parses");
    let mut group = c.benchmark_group("map_http");
    group.sample_size(10);
    for (name, passes) in [("batched", "all"), ("sequential", "fold,cse,dce,fuse")] {
        let host = host_with_passes(passes);
        let compiled = host.compile(&map_http).expect("compiles");
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(host.run(&compiled, &none, limits))
                    .expect("runs")
            })
        });
    }
    group.finish();

    let cached = Graph::from_json(cached_graph().as_bytes()).expect("parses");
    let mut group = c.benchmark_group("cached");
    for (name, entries) in [("hit", graphjit::DEFAULT_MEMO_ENTRIES), ("miss", 0)] {
        let host = Host::with_config(&HostConfig {
            memo_entries: entries,
            ..HostConfig::default()
        })
        .expect("host");
        let compiled = host.compile(&cached).expect("compiles");
        rt.block_on(host.run(&compiled, &none, limits))
            .expect("runs");
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(host.run(&compiled, &none, limits))
                    .expect("runs")
            })
        });
    }
    group.finish();
}

/// A two-layer MLP over a batch whose size comes with the data (`{"tensor": ["batch", 64]}`).
fn batch_mlp_graph() -> String {
    let weights = |rows: usize, cols: usize, seed: f32| {
        (0..rows * cols)
            .map(|i| format!("{:.4}", ((i as f32 + seed) * 0.618).sin() * 0.1))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        r#"{{"version": 2, "name": "batch-mlp", "nodes": [
        {{"id": "x", "op": "input", "type": {{"tensor": ["batch", 64]}}}},
        {{"id": "w1", "op": "const", "type": {{"tensor": [64, 32]}}, "value": [{w1}]}},
        {{"id": "b1", "op": "const", "type": {{"tensor": [32]}}, "value": [{b1}]}},
        {{"id": "w2", "op": "const", "type": {{"tensor": [32, 10]}}, "value": [{w2}]}},
        {{"id": "h", "op": "matmul", "args": ["x", "w1"]}},
        {{"id": "hb", "op": "add", "args": ["h", "b1"]}},
        {{"id": "r", "op": "relu", "args": ["hb"]}},
        {{"id": "o", "op": "matmul", "args": ["r", "w2"]}},
        {{"id": "p", "op": "softmax", "args": ["o"]}}
    ], "outputs": {{"p": "p"}}}}"#,
        w1 = weights(64, 32, 1.0),
        b1 = weights(1, 32, 2.0),
        w2 = weights(32, 10, 3.0),
    )
}

/// Named dims: what binding and specializing add to a run. `bind` is the per-request cost
/// once a shape has been seen (bind the dims, find the specialization); `specialize_new` a
/// shape's first request before rustc (lower and type the graph again); `run` the compiled
/// run of the specialization; `eval` the interpreter on the generic graph.
fn dims_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let limits = RunLimits::default();
    let text = batch_mlp_graph();
    let generic = Graph::from_json(text.as_bytes()).expect("parses");
    let batch = 32u32;
    let x = Value::Tensor(graphjit::Tensor {
        shape: vec![batch, 64],
        data: (0..batch * 64).map(|i| (i as f32 * 0.37).cos()).collect(),
    });
    let inputs: BTreeMap<String, Value> = [("x".to_string(), x)].into_iter().collect();
    let host = host_with(64, None);
    let spec = generic.specialize(&inputs).expect("specializes");
    let compiled = host.compile(&spec).expect("compiles");
    let mut group = c.benchmark_group("dims");
    group.sample_size(30);
    group.bench_function("bind", |b| {
        b.iter(|| generic.specialize(black_box(&inputs)).expect("specializes"))
    });
    group.bench_function("specialize_new", |b| {
        b.iter(|| {
            let fresh = Graph::from_json(black_box(text.as_bytes())).expect("parses");
            fresh.specialize(&inputs).expect("specializes").into_owned()
        })
    });
    let fixed = text.replace("\"batch\"", "32");
    group.bench_function("parse_fixed", |b| {
        b.iter(|| Graph::from_json(black_box(fixed.as_bytes())).expect("parses"))
    });
    group.bench_function("run", |b| {
        b.iter(|| {
            rt.block_on(host.run(&compiled, &inputs, limits))
                .expect("runs")
        })
    });
    group.bench_function("eval", |b| {
        b.iter(|| Host::eval(&generic, &inputs, limits).expect("evals"))
    });
    group.finish();
}

criterion_group!(
    pipeline,
    benches,
    cache_benches,
    effect_benches,
    optimizer_benches,
    structured_benches,
    db_benches,
    replacement_latency,
    gpu_kernel_benches,
    dims_benches
);
criterion_main!(pipeline);
