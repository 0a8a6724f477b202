//! The compiled component agrees with `eval`, bit for bit, on generated graphs; generation is
//! deterministic; hostile strings cannot change the generated code's shape.

use graphjit::testing::{arb_graph, hostile_strings};
use graphjit::{Error, Graph, RunLimits, RunOutput};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

use crate::support::{block_on, compile, eval_with, graph, run_with, values};

/// How many generated graphs the differential test compiles (`GRAPHJIT_DIFF_CASES` overrides).
fn cases() -> usize {
    std::env::var("GRAPHJIT_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn outcome(
    result: &Result<RunOutput, Error>,
) -> Result<Vec<graphjit::Value>, (String, Option<String>)> {
    match result {
        Ok(out) => Ok(values(out)),
        Err(e) => Err((e.kind_name().to_string(), e.node.clone())),
    }
}

#[test]
fn compiled_wasm_agrees_with_eval_on_generated_graphs() {
    let mut runner = TestRunner::deterministic();
    let strategy = arb_graph();
    let graphs: Vec<String> = (0..cases())
        .map(|_| {
            strategy
                .new_tree(&mut runner)
                .expect("generator")
                .current()
                .to_string()
        })
        .collect();
    let limits = RunLimits::default();
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    // rustc is single-threaded per crate: compile on every core.
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(json) = graphs.get(i) else { break };
                    let g = graph(json);
                    let expected = outcome(&eval_with(&g, limits));
                    let actual = outcome(&run_with(&compile(&g), limits));
                    if expected != actual {
                        failures.lock().expect("lock").push(format!(
                            "graph {i}:\n{json}\neval: {expected:?}\nwasm: {actual:?}"
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().expect("lock");
    assert!(
        failures.is_empty(),
        "{} of {} graphs disagree; first:\n{}",
        failures.len(),
        graphs.len(),
        failures[0]
    );
}

const PERMUTABLE: &str = r#"{"version": 1, "name": "p", "nodes": [
    {"id": "x", "op": "input", "type": "f64", "default": 2.5},
    {"id": "c", "op": "const", "value": 3.0},
    {"id": "m", "op": "mul", "args": ["x", "c"]},
    {"id": "t", "op": "iota", "shape": [2, 3]},
    {"id": "e", "op": "exp", "args": ["t"]},
    {"id": "s", "op": "sum", "args": ["e"]},
    {"id": "f", "op": "to_f64", "args": ["s"]},
    {"id": "r", "op": "add", "args": ["m", "f"]}
], "outputs": {"r": "r", "m": "m"}}"#;

/// Rewrites `PERMUTABLE` with nodes reversed, keys reordered and other whitespace.
fn permuted() -> String {
    let mut value: serde_json::Value = serde_json::from_str(PERMUTABLE).expect("json");
    let nodes = value["nodes"].as_array_mut().expect("nodes");
    nodes.reverse();
    // serde_json's Map keeps keys sorted, so re-serializing reorders every object's keys;
    // pretty printing changes all whitespace.
    let text = serde_json::to_string_pretty(&value).expect("json");
    assert_ne!(text, PERMUTABLE);
    text
}

#[test]
fn permuted_json_has_the_same_hash_and_identical_rust() {
    let a = graph(PERMUTABLE);
    let b = graph(&permuted());
    assert_eq!(a.hash(), b.hash());
    assert_eq!(
        a.rust_source().expect("rust"),
        b.rust_source().expect("rust")
    );
    // A real change changes the hash.
    let c = graph(&PERMUTABLE.replace("3.0", "3.5"));
    assert_ne!(a.hash(), c.hash());
}

#[test]
fn same_graph_gives_byte_identical_component() {
    let g = graph(PERMUTABLE);
    let first = crate::support::host().compile_wasm(&g).expect("compiles");
    let second = crate::support::host()
        .compile_wasm(&graph(&permuted()))
        .expect("compiles");
    assert!(
        first == second,
        "components differ ({} vs {} bytes)",
        first.len(),
        second.len()
    );
}

fn string_graph(id: &str, literal: &str) -> String {
    serde_json::json!({
        "version": 1,
        "nodes": [
            {"id": id, "op": "const", "value": literal},
            {"id": "suffix", "op": "const", "value": "!"},
            {"id": "joined", "op": "concat", "args": [id, "suffix"]},
            {"id": "n", "op": "len", "args": ["joined"]}
        ],
        "outputs": {"joined": "joined", "n": "n"}
    })
    .to_string()
}

#[test]
fn hostile_strings_never_change_the_code_shape() {
    // Ids starting with "a" sort before "suffix", so canonical order is the same for all.
    let benign = graph(&string_graph("aplain", "plain"))
        .rust_source()
        .expect("rust");
    let benign_lines: Vec<&str> = benign.lines().collect();
    for hostile in hostile_strings() {
        let json = string_graph(&format!("a{hostile}"), hostile);
        let g = graph(&json);
        let source = g.rust_source().expect("rust");
        let lines: Vec<&str> = source.lines().collect();
        assert_eq!(
            lines.len(),
            benign_lines.len(),
            "line count changed for {hostile:?}:\n{source}"
        );
        for (a, b) in lines.iter().zip(&benign_lines) {
            let only_text_differs =
                a.trim_start().starts_with("//") || a.contains("String::from(\"");
            assert!(
                a == b || only_text_differs,
                "hostile {hostile:?} changed code line:\n{a}\nvs\n{b}"
            );
        }
        let out = run_with(&compile(&g), RunLimits::default()).expect("runs");
        let expected = format!("{hostile}!");
        assert_eq!(values(&out)[0], graphjit::Value::Str(expected.clone()));
        assert_eq!(values(&out)[1], graphjit::Value::I64(expected.len() as i64));
    }
}

#[test]
fn graphs_render_the_same_outputs_in_eval_and_wasm_for_examples() {
    for path in ["examples/hello.json", "examples/tensor.json"] {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path);
        let g = Graph::from_json(&std::fs::read(full).expect("example exists"))
            .expect("example parses");
        let limits = RunLimits::default();
        assert_eq!(
            outcome(&eval_with(&g, limits)),
            outcome(&run_with(&compile(&g), limits)),
            "{path}"
        );
    }
}

#[test]
fn every_example_in_the_format_doc_parses_and_agrees() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/graph-format.md"),
    )
    .expect("doc");
    let blocks: Vec<&str> = doc
        .split("```json")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert!(blocks.len() >= 7, "the doc lost its examples");
    for block in blocks {
        let g = graph(block);
        if g.has_effects() {
            // Served by a real database: tests/all/effects.rs runs these.
            continue;
        }
        let limits = RunLimits::default();
        let expected = outcome(&eval_with(&g, limits));
        assert!(expected.is_ok(), "doc example fails: {expected:?}\n{block}");
        assert_eq!(
            expected,
            outcome(&run_with(&compile(&g), limits)),
            "{block}"
        );
    }
}

#[test]
fn fused_elementwise_dags_agree_with_eval() {
    // The default host runs every pass, fusion included; eval runs the graph as written.
    for seed in 0..40 {
        let json = graphjit::testing::elementwise_dag(seed);
        let g = graph(&json);
        let limits = RunLimits::default();
        let expected = outcome(&eval_with(&g, limits));
        assert_eq!(
            expected,
            outcome(&run_with(&compile(&g), limits)),
            "seed {seed}: {json}"
        );
    }
}

/// A matmul the `place` pass sends to the host gives the guest op's bits (the host kernel sums
/// each element in the defined order), and one it keeps in the guest does too.
#[test]
fn placed_matmul_agrees_with_eval_bit_for_bit() {
    let product = |m: u32, k: u32, n: u32| {
        graph(&format!(
            r#"{{"version": 1, "nodes": [
                {{"id": "ra", "op": "iota", "shape": [{ak}]}},
                {{"id": "rb", "op": "iota", "shape": [{bk}]}},
                {{"id": "a", "op": "sin", "args": ["ra"]}},
                {{"id": "b0", "op": "cos", "args": ["rb"]}},
                {{"id": "am", "op": "reshape", "args": ["a"], "shape": [{m}, {k}]}},
                {{"id": "bm", "op": "reshape", "args": ["b0"], "shape": [{k}, {n}]}},
                {{"id": "c", "op": "matmul", "args": ["am", "bm"]}}
            ], "outputs": {{"c": "c"}}}}"#,
            ak = m * k,
            bk = k * n
        ))
    };
    for ((m, k, n), choice) in [((96, 80, 72), "host"), ((4, 4, 4), "guest")] {
        let g = product(m, k, n);
        let placed = crate::support::host().explain(&g).placements;
        assert_eq!(placed.len(), 1);
        assert_eq!(placed[0].choice, choice, "{m}×{k}×{n}: {placed:?}");
        let bits = |out: &RunOutput| -> Vec<u32> {
            match values(out).as_slice() {
                [graphjit::Value::Tensor(t)] => t.data.iter().map(|x| x.to_bits()).collect(),
                other => panic!("one tensor, not {other:?}"),
            }
        };
        let wasm = run_with(&compile(&g), RunLimits::default()).expect("runs");
        let reference = eval_with(&g, RunLimits::default()).expect("evaluates");
        assert_eq!(bits(&wasm), bits(&reference), "{m}×{k}×{n}: same bits");
    }
}

/// Graphs of effects (`testing::effect_dag`): compiled with every pass, so independent kernel
/// calls go out as rounds, they agree with `eval` (which issues each effect on its own) on the
/// outputs, bit for bit, and on which error a run ends with and where.
#[test]
fn batched_effect_graphs_agree_with_eval() {
    let host = crate::support::host();
    let limits = RunLimits::default();
    let inputs = std::collections::BTreeMap::new();
    let (mut with_rounds, mut failed) = (0, 0);
    for seed in 0..120 {
        let json = graphjit::testing::effect_dag(seed);
        let g = graph(&json);
        if !host.explain(&g).rounds.is_empty() {
            with_rounds += 1;
        }
        let expected = outcome(&crate::support::block_on(
            host.eval_effects(&g, &inputs, limits),
        ));
        let actual = outcome(&run_with(&compile(&g), limits));
        if expected.is_err() {
            failed += 1;
        }
        assert_eq!(expected, actual, "seed {seed}: {json}");
    }
    assert!(
        with_rounds >= 30,
        "only {with_rounds} of 120 graphs had a round"
    );
    assert!(
        failed >= 10,
        "only {failed} of 120 graphs ended in an error"
    );
}

/// Fused reductions over chains that call a transcendental per element take the plain loop
/// (`Loop::Plain`), the others the blocked one: both agree with eval, bit for bit, for
/// every reduction, on a length that leaves a partial last block.
#[test]
fn both_fused_reduction_loops_agree_with_eval() {
    for reduce in ["sum", "mean", "reduce_max", "reduce_min"] {
        for element in ["tanh", "relu", "exp", "abs"] {
            let g = graph(&format!(
                r#"{{"version": 1, "nodes": [
                    {{"id": "t", "op": "iota", "shape": [1003]}},
                    {{"id": "k", "op": "const", "type": {{"tensor": []}}, "value": [-0.0137]}},
                    {{"id": "a", "op": "mul", "args": ["t", "k"]}},
                    {{"id": "b", "op": "{element}", "args": ["a"]}},
                    {{"id": "c", "op": "add", "args": ["b", "a"]}},
                    {{"id": "r", "op": "{reduce}", "args": ["c"]}}
                ], "outputs": {{"r": "r"}}}}"#
            ));
            let limits = RunLimits::default();
            assert_eq!(
                outcome(&eval_with(&g, limits)),
                outcome(&run_with(&compile(&g), limits)),
                "{element} then {reduce}"
            );
        }
    }
}

/// `explain` lists the graph before and after the passes, one line per node.
#[test]
fn explain_lists_the_graph_before_and_after_the_passes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/fusion.json");
    let g = Graph::from_json(&std::fs::read(path).expect("example")).expect("parses");
    let e = crate::support::host().explain(&g);
    assert_eq!(e.before.len(), e.nodes, "{:?}", e.before);
    assert_eq!(e.after.len(), e.nodes_optimized, "{:?}", e.after);
    assert!(
        e.before.iter().any(|l| l.starts_with("\"bounded\" = min(")),
        "{:?}",
        e.before
    );
    assert!(
        e.after
            .iter()
            .any(|l| l.contains("= fused[") && l.contains("→ mean]")),
        "one fused loop reduced by mean: {:?}",
        e.after
    );
}

/// An empty `fork` is the empty tuple: codegen emits Rust that compiles (it emitted `(,)`),
/// and the compiled run, with and without the passes, agrees with `eval`.
#[test]
fn an_empty_fork_compiles_and_agrees_with_eval() {
    let g = graph(include_str!("../regressions/empty-fork.json"));
    let eval = eval_with(&g, RunLimits::default()).expect("evaluates");
    let empty = graphjit::Value::Tuple(Vec::new());
    let named = |name: &str| {
        eval.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(named("nothing"), Some(empty.clone()));
    assert_eq!(named("again"), Some(empty.clone()));
    assert_eq!(named("spin"), Some(empty));
    assert_eq!(named("seven"), Some(graphjit::Value::I64(7)));
    let wasm = run_with(&compile(&g), RunLimits::default()).expect("runs");
    assert_eq!(values(&wasm), values(&eval));
    let unoptimized = graphjit::Host::with_config(&graphjit::HostConfig {
        passes: graphjit::PassConfig::none(),
        ..crate::support::memory_only()
    })
    .expect("host");
    let compiled = unoptimized
        .compile(&g)
        .unwrap_or_else(|e| panic!("{e}\n{:?}", g.rust_source()));
    let wasm = crate::support::block_on(unoptimized.run(
        &compiled,
        &std::collections::BTreeMap::new(),
        RunLimits::default(),
    ))
    .expect("runs");
    assert_eq!(values(&wasm), values(&eval));
}

/// A pass never makes a run more expensive: the same graph compiled with every pass uses no
/// more fuel than compiled with none (beyond a fixed allowance for a fused loop's set-up), so
/// a budget that a graph meets unoptimized it meets optimized. Over the elementwise DAG
/// generator (fusion's inputs: chains, broadcasts, `iota`, `fill`, reductions) and the
/// tensor examples.
#[test]
fn the_passes_never_cost_more_fuel_than_no_passes() {
    let unoptimized = graphjit::Host::with_config(&graphjit::HostConfig {
        passes: graphjit::PassConfig::parse("none").expect("passes"),
        ..crate::support::memory_only()
    })
    .expect("host");
    let mut graphs: Vec<(String, String)> = (0..16)
        .map(|seed| {
            (
                format!("seed {seed}"),
                graphjit::testing::elementwise_dag(seed),
            )
        })
        .collect();
    for example in ["fusion.json", "tensor.json"] {
        let path = format!("{}/../examples/{example}", env!("CARGO_MANIFEST_DIR"));
        graphs.push((
            example.to_string(),
            std::fs::read_to_string(path).expect("example"),
        ));
    }
    graphs.push((
        "fill chain".to_string(),
        r#"{"version": 1, "nodes": [
            {"id": "a", "op": "fill", "shape": [65536], "value": 1.5},
            {"id": "b", "op": "iota", "shape": [65536]},
            {"id": "c", "op": "add", "args": ["a", "b"]},
            {"id": "d", "op": "mul", "args": ["c", "a"]},
            {"id": "s", "op": "sum", "args": ["d"]}],
           "outputs": {"s": "s"}}"#
            .to_string(),
    ));
    // Fused loops over tensor inputs (slices, not broadcasts): before their reads were cut
    // into blocks of eight, a per-element bounds check kept them scalar and costlier than the
    // unfused ops (issue 17: 6.49M against 4.58M fuel at 65,536 elements).
    graphs.push((
        "two tensor inputs, reduced".to_string(),
        tensor_input_chain(true),
    ));
    graphs.push((
        "two tensor inputs, mapped".to_string(),
        tensor_input_chain(false),
    ));
    let limits = RunLimits::default();
    for (name, json) in graphs {
        let g = graph(&json);
        let optimized = run_with(&compile(&g), limits);
        let plain = block_on(unoptimized.run(
            &unoptimized.compile(&g).expect("compiles"),
            &std::collections::BTreeMap::new(),
            limits,
        ));
        let (Ok(optimized), Ok(plain)) = (optimized, plain) else {
            continue;
        };
        assert!(
            optimized.fuel_used <= plain.fuel_used + plain.fuel_used / 20 + 5_000,
            "{name}: {} fuel with the passes, {} without\n{json}",
            optimized.fuel_used,
            plain.fuel_used
        );
    }
}

/// `relu(x·y − ½) + x` over two 16,384-element tensor inputs (their defaults), then `sum`; or
/// the same squared, transposed as 128×128 and summed, so the fused loop writes a tensor.
fn tensor_input_chain(reduced: bool) -> String {
    let n = 16_384;
    let values = |m: usize, step: f64| {
        (0..n)
            .map(|i| format!("{}", (i % m) as f64 * step))
            .collect::<Vec<_>>()
            .join(",")
    };
    let tail = if reduced {
        r#"{"id": "s", "op": "sum", "args": ["d"]}"#.to_string()
    } else {
        r#"{"id": "e", "op": "mul", "args": ["d", "d"]},
           {"id": "r", "op": "reshape", "args": ["e"], "shape": [128, 128]},
           {"id": "t", "op": "transpose", "args": ["r"]},
           {"id": "s", "op": "sum", "args": ["t"]}"#
            .to_string()
    };
    format!(
        r#"{{"version": 1, "nodes": [
            {{"id": "x", "op": "input", "type": {{"tensor": [{n}]}}, "default": [{}]}},
            {{"id": "y", "op": "input", "type": {{"tensor": [{n}]}}, "default": [{}]}},
            {{"id": "k", "op": "const", "type": {{"tensor": []}}, "value": [0.5]}},
            {{"id": "a", "op": "mul", "args": ["x", "y"]}},
            {{"id": "b", "op": "sub", "args": ["a", "k"]}},
            {{"id": "c", "op": "relu", "args": ["b"]}},
            {{"id": "d", "op": "add", "args": ["c", "x"]}},
            {tail}],
           "outputs": {{"s": "s"}}}}"#,
        values(97, 0.01),
        values(89, 0.02)
    )
}

/// The benchmarks' baselines measure what they say: the rustc floor compiles, and the bare
/// wasmtime instance of a graph's own component returns the bytes that decode to what
/// `Host::run` returns (so `instantiate_call/bare_wasmtime` runs the same work).
#[test]
fn the_bench_baselines_compile_and_compute_what_run_does() {
    let host = graphjit::Host::with_config(&crate::support::memory_only()).expect("host");
    let floor = graphjit::testing::baselines::rustc_floor(&host).expect("the floor compiles");
    assert!(floor > std::time::Duration::ZERO);
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "x", "op": "input", "type": "f64", "default": 1.25},
            {"id": "k", "op": "const", "value": 1.0001},
            {"id": "y", "op": "mul", "args": ["x", "k"]}],
           "outputs": {"y": "y"}}"#,
    );
    let bare = graphjit::testing::baselines::BareInstance::new(&host, &g).expect("bare instance");
    let bytes = block_on(bare.instantiate_call()).expect("bare run");
    let run = run_with(&compile(&g), RunLimits::default()).expect("runs");
    let expected: Vec<graphjit::Value> = run.outputs.into_iter().map(|(_, v)| v).collect();
    assert_eq!(graphjit_value::decode(&bytes).expect("decodes"), expected);
}
