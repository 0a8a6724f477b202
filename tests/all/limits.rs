//! Every limit and logic failure ends in its typed error, with the node at fault; malformed
//! graphs are typed errors, never panics.

use graphjit::{ErrorKind, Graph, RunLimits, Setting, Stage};
use proptest::prelude::*;

use crate::support::{compile, eval_with, graph, run_with};

const FUEL_BOMB: &str = r#"{
  "version": 1,
  "nodes": [
    {"id": "x0", "op": "const", "value": 1.5},
    {"id": "spin", "op": "loop", "args": ["x0"], "iterations": 1000000000000000,
     "body": {"params": ["i", "x"], "nodes": [
        {"id": "k", "op": "const", "value": 0.999},
        {"id": "one", "op": "const", "value": 1.0},
        {"id": "xk", "op": "mul", "args": ["x", "k"]},
        {"id": "next", "op": "add", "args": ["xk", "one"]}
     ], "results": ["next"]}}
  ],
  "outputs": {"x": "spin"}
}"#;

#[test]
fn fuel_exhaustion_is_typed_with_budget_and_use() {
    let g = graph(FUEL_BOMB);
    let limits = RunLimits {
        fuel: 1_000_000,
        ..RunLimits::default()
    };
    let started = std::time::Instant::now();
    let err = run_with(&compile(&g), limits).expect_err("must run out of fuel");
    assert!(started.elapsed().as_secs_f64() < 2.0);
    assert_eq!(
        err.kind,
        ErrorKind::FuelExhausted {
            budget: 1_000_000,
            used: 1_000_000
        },
        "{err}"
    );
    assert_eq!(err.stage, Stage::Run);
    let eval_err = eval_with(&g, limits).expect_err("eval must run out of fuel too");
    assert!(
        matches!(
            eval_err.kind,
            ErrorKind::FuelExhausted {
                budget: 1_000_000,
                ..
            }
        ),
        "{eval_err}"
    );
    // Both engines name the setting that lifts the limit, and keep the failure underneath.
    for e in [&err, &eval_err] {
        assert_eq!(e.setting(), Some(Setting::Fuel), "{e}");
        let source = std::error::Error::source(e).expect("the engine's own error");
        assert_eq!(source.to_string(), e.message);
    }
}

#[test]
fn memory_limit_is_a_typed_error_not_an_abort() {
    // 2^24 f32 = 64 MiB, above a 16 MiB limit.
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "big", "op": "fill", "shape": [4096, 4096], "value": 1.0},
            {"id": "s", "op": "sum", "args": ["big"]}
        ], "outputs": {"s": "s"}}"#,
    );
    let limits = RunLimits {
        memory_bytes: 16 << 20,
        ..RunLimits::default()
    };
    let err = run_with(&compile(&g), limits).expect_err("must exceed memory");
    assert!(
        matches!(err.kind, ErrorKind::MemoryExceeded { .. }),
        "{err}"
    );
    let eval_err = eval_with(&g, limits).expect_err("eval must exceed memory");
    assert!(
        matches!(eval_err.kind, ErrorKind::MemoryExceeded { .. }),
        "{eval_err}"
    );
    // The same graph fits under the default limit.
    let ok = run_with(&compile(&g), RunLimits::default()).expect("fits in 256 MiB");
    assert_eq!(ok.outputs.len(), 1);
}

fn logic_error(json: &str, node: &str, kind: ErrorKind) {
    let g = graph(json);
    let err = run_with(&compile(&g), RunLimits::default()).expect_err("must fail");
    assert_eq!(
        (err.kind.clone(), err.node.as_deref()),
        (kind.clone(), Some(node)),
        "wasm: {err}"
    );
    let err = eval_with(&g, RunLimits::default()).expect_err("must fail");
    assert_eq!(
        (err.kind.clone(), err.node.as_deref()),
        (kind, Some(node)),
        "eval: {err}"
    );
}

#[test]
fn integer_overflow_names_the_node() {
    logic_error(
        r#"{"version": 1, "nodes": [
            {"id": "big", "op": "input", "type": "i64", "default": 9223372036854775807},
            {"id": "one", "op": "const", "value": 1},
            {"id": "sum", "op": "add", "args": ["big", "one"]}
        ], "outputs": {"sum": "sum"}}"#,
        "sum",
        ErrorKind::Overflow,
    );
}

#[test]
fn division_by_zero_names_the_node() {
    logic_error(
        r#"{"version": 1, "nodes": [
            {"id": "a", "op": "const", "value": 7},
            {"id": "zero", "op": "input", "type": "i64", "default": 0},
            {"id": "q", "op": "div", "args": ["a", "zero"]}
        ], "outputs": {"q": "q"}}"#,
        "q",
        ErrorKind::DivisionByZero,
    );
}

#[test]
fn untaken_branch_errors_do_not_fire() {
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "a", "op": "const", "value": 7},
            {"id": "zero", "op": "const", "value": 0},
            {"id": "nz", "op": "ne", "args": ["zero", "zero"]},
            {"id": "r", "op": "if", "args": ["nz"],
             "then": {"nodes": [{"id": "q", "op": "div", "args": ["a", "zero"]}], "result": "q"},
             "else": {"nodes": [], "result": "a"}}
        ], "outputs": {"r": "r"}}"#,
    );
    let out = run_with(&compile(&g), RunLimits::default()).expect("else branch runs");
    assert_eq!(out.outputs[0].1, graphjit::Value::I64(7));
}

#[test]
fn oversize_graph_is_resource_exceeded() {
    let nodes: Vec<String> = (0..10_001)
        .map(|i| format!(r#"{{"id": "c{i}", "op": "const", "value": {i}}}"#))
        .collect();
    let json = format!(
        r#"{{"version": 1, "nodes": [{}], "outputs": {{"o": "c0"}}}}"#,
        nodes.join(",")
    );
    let err = Graph::from_json(json.as_bytes()).expect_err("too many nodes");
    assert_eq!(err.kind, ErrorKind::ResourceExceeded);
    let huge = r#"{"version": 1, "nodes": [{"id": "t", "op": "iota", "shape": [65536, 65536]}], "outputs": {"t": "t"}}"#;
    assert_eq!(
        Graph::from_json(huge.as_bytes())
            .expect_err("tensor too big")
            .kind,
        ErrorKind::ResourceExceeded
    );
}

#[test]
fn malformed_graphs_are_typed_errors() {
    let corpus: &[(&str, Option<&str>)] = &[
        ("", None),
        ("{", None),
        ("[]", None),
        ("null", None),
        (r#"{"nodes": [], "outputs": {}}"#, None),
        (r#"{"version": 2, "nodes": [], "outputs": {}}"#, None),
        (r#"{"version": "1", "nodes": [], "outputs": {}}"#, None),
        (
            r#"{"version": 1, "nodes": [], "outputs": {"o": "nope"}}"#,
            None,
        ),
        (
            r#"{"version": 1, "nodes": [{"id": "a", "op": "const", "value": 1}], "outputs": {"o": "a"}, "extra": 1}"#,
            None,
        ),
        (
            r#"{"version": 1, "nodes": [{"id": "a", "op": "const", "value": 1, "colour": 1}], "outputs": {"o": "a"}}"#,
            None,
        ),
        (
            r#"{"version": 1, "nodes": [{"id": "a", "op": "frobnicate"}], "outputs": {"o": "a"}}"#,
            Some("a"),
        ),
        (
            r#"{"version": 1, "nodes": [{"id": "a", "op": "const", "value": 1}, {"id": "a", "op": "const", "value": 2}], "outputs": {"o": "a"}}"#,
            Some("a"),
        ),
        (
            r#"{"version": 1, "nodes": [{"id": "a", "op": "neg", "args": ["b"]}, {"id": "b", "op": "neg", "args": ["a"]}], "outputs": {"o": "a"}}"#,
            Some("a"),
        ),
        (
            r#"{"version": 1, "nodes": [{"id": "a", "op": "add", "args": ["a", "a"]}], "outputs": {"o": "a"}}"#,
            Some("a"),
        ),
        (
            r#"{"version": 1, "nodes": [{"id": "a", "op": "const", "value": 1}, {"id": "b", "op": "const", "value": 1.5}, {"id": "c", "op": "add", "args": ["a", "b"]}], "outputs": {"o": "c"}}"#,
            Some("c"),
        ),
        (
            r#"{"version": 1, "nodes": [{"id": "a", "op": "const", "value": 1}, {"id": "c", "op": "add", "args": ["a"]}], "outputs": {"o": "c"}}"#,
            Some("c"),
        ),
        (
            r#"{"version": 1, "nodes": [{"id": "a", "op": "const", "type": "i64", "value": 1.5}], "outputs": {"o": "a"}}"#,
            Some("a"),
        ),
        (
            r#"{"version": 1, "nodes": [{"id": "a", "op": "const", "type": {"tensor": [2]}, "value": [1]}], "outputs": {"o": "a"}}"#,
            Some("a"),
        ),
        (
            r#"{"version": 1, "nodes": [{"id": "a", "op": "iota", "shape": [2, 3]}, {"id": "b", "op": "iota", "shape": [2, 3]}, {"id": "m", "op": "matmul", "args": ["a", "b"]}], "outputs": {"o": "m"}}"#,
            Some("m"),
        ),
        (
            r#"{"version": 1, "nodes": [{"id": "a", "op": "const", "value": 1}, {"id": "l", "op": "loop", "args": ["a"], "body": {"params": ["i", "s"], "results": ["s"]}}], "outputs": {"o": "l"}}"#,
            Some("l"),
        ),
        (
            r#"{"version": 1, "nodes": [{"id": "a", "op": "const", "value": 1}, {"id": "l", "op": "loop", "iterations": 3, "args": ["a"], "body": {"params": ["i", "s"], "nodes": [{"id": "inner", "op": "neg", "args": ["s"]}], "results": ["s"]}}, {"id": "x", "op": "neg", "args": ["inner"]}], "outputs": {"o": "x"}}"#,
            Some("x"),
        ),
        (
            r#"{"version": 1, "nodes": [{"id": "a", "op": "const", "value": 1}, {"id": "i", "op": "if", "args": ["a"], "then": {"result": "a"}, "else": {"result": "a"}}], "outputs": {"o": "i"}}"#,
            Some("i"),
        ),
    ];
    for (json, node) in corpus {
        let err = Graph::from_json(json.as_bytes()).expect_err(json);
        assert_eq!(err.stage, Stage::Parse, "{json}");
        assert!(matches!(err.kind, ErrorKind::InvalidGraph), "{json}: {err}");
        assert!(!err.remediation.is_empty(), "{json}: no remediation");
        if let Some(node) = node {
            assert_eq!(err.node.as_deref(), Some(*node), "{json}: {err}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Graph::from_json(&bytes);
    }

    #[test]
    fn corrupted_graphs_never_panic_the_parser(cut in 0usize..FUEL_BOMB.len(), byte in any::<u8>()) {
        let mut bytes = FUEL_BOMB.as_bytes().to_vec();
        bytes[cut] = byte;
        let _ = Graph::from_json(&bytes);
        let _ = Graph::from_json(&bytes[..cut]);
    }
}

#[test]
fn a_large_graph_fits_the_guest_stack() {
    // Guests get a 256 KiB stack (compile/rustc.rs): a graph of a few thousand nodes, with
    // strings and tensors live at once, must still run, and agree with eval.
    let mut nodes = vec![
        r#"{"id": "x", "op": "input", "type": "f64", "default": 1.25}"#.to_string(),
        r#"{"id": "k", "op": "const", "value": 1.0001}"#.to_string(),
        r#"{"id": "s", "op": "input", "type": "string", "default": "a"}"#.to_string(),
        r#"{"id": "t", "op": "iota", "shape": [4]}"#.to_string(),
    ];
    let (mut last, mut last_s, mut last_t) = ("x".to_string(), "s".to_string(), "t".to_string());
    let mut outputs = Vec::new();
    for i in 0..3000 {
        let op = ["mul", "add", "max", "sub"][i % 4];
        nodes.push(format!(
            r#"{{"id": "n{i}", "op": "{op}", "args": ["{last}", "k"]}}"#
        ));
        last = format!("n{i}");
        if i % 3 == 0 {
            nodes.push(format!(
                r#"{{"id": "s{i}", "op": "concat", "args": ["{last_s}", "s"]}}"#
            ));
            last_s = format!("s{i}");
        }
        if i % 5 == 0 {
            nodes.push(format!(
                r#"{{"id": "t{i}", "op": "add", "args": ["{last_t}", "t"]}}"#
            ));
            nodes.push(format!(
                r#"{{"id": "u{i}", "op": "sum", "args": ["t{i}"]}}"#
            ));
            outputs.push(format!(r#""u{i}": "u{i}""#));
            last_t = format!("t{i}");
        }
    }
    outputs.push(format!(
        r#""y": "{last}", "s": "{last_s}", "t": "{last_t}""#
    ));
    let json = format!(
        r#"{{"version": 1, "nodes": [{}], "outputs": {{{}}}}}"#,
        nodes.join(", "),
        outputs.join(", ")
    );
    let g = graph(&json);
    let limits = RunLimits::default();
    let wasm = run_with(&compile(&g), limits).expect("runs within the guest stack");
    let eval = eval_with(&g, limits).expect("evaluates");
    assert_eq!(wasm.outputs, eval.outputs);
}

/// Memory planning: with no pass (so nothing is fused), each intermediate tensor is freed
/// after its last reader, and the run's measured peak stays within the plan that `explain`
/// reports, which is well under keeping all five 4 MiB buffers alive.
#[test]
fn intermediates_die_after_their_last_reader() {
    let g = graph(
        r#"{"version": 1, "nodes": [
            {"id": "t", "op": "iota", "shape": [1048576]},
            {"id": "scale", "op": "const", "type": {"tensor": []}, "value": [0.000001]},
            {"id": "a", "op": "mul", "args": ["t", "scale"]},
            {"id": "b", "op": "tanh", "args": ["a"]},
            {"id": "c", "op": "relu", "args": ["b"]},
            {"id": "d", "op": "add", "args": ["c", "a"]},
            {"id": "e", "op": "neg", "args": ["d"]},
            {"id": "s", "op": "sum", "args": ["e"]}
        ], "outputs": {"s": "s"}}"#,
    );
    let host = graphjit::Host::with_config(&graphjit::HostConfig {
        passes: graphjit::PassConfig::none(),
        ..crate::support::memory_only()
    })
    .expect("host");
    let plan = host.explain(&g).planned_peak_bytes;
    let all_buffers = 6 * 4 * 1_048_576;
    assert!(
        plan < 4 * 4 * 1_048_576,
        "planned {plan} bytes: at most three buffers live"
    );
    let compiled = host.compile(&g).expect("compiles");
    let out = crate::support::block_on(host.run(
        &compiled,
        &std::collections::BTreeMap::new(),
        RunLimits::default(),
    ))
    .expect("runs");
    // Linear memory also holds the stack, static data and the allocator's slack: 1 MiB.
    assert!(
        out.peak_memory_bytes <= plan + (1 << 20),
        "measured {} bytes against a plan of {plan} (all buffers: {all_buffers})",
        out.peak_memory_bytes
    );
}

/// `eval` reads the wall clock in its fuel charge: a loop with all the fuel it wants ends at
/// the deadline with the same typed error a compiled run gives.
#[test]
fn eval_ends_at_the_deadline_like_run() {
    let g = graph(FUEL_BOMB);
    let limits = RunLimits {
        fuel: u64::MAX,
        deadline: std::time::Duration::from_millis(300),
        ..RunLimits::default()
    };
    let started = std::time::Instant::now();
    let eval_err = eval_with(&g, limits).expect_err("eval must pass its deadline");
    let took = started.elapsed();
    assert_eq!(
        eval_err.kind,
        ErrorKind::DeadlineExceeded { limit_ms: 300 },
        "{eval_err}"
    );
    assert_eq!(eval_err.stage, Stage::Eval);
    assert!(
        took < std::time::Duration::from_secs(2),
        "eval ran {took:?} past a 300 ms deadline"
    );
    let compiled = compile(&g);
    let run_err = run_with(&compiled, limits).expect_err("run must pass its deadline");
    assert_eq!(run_err.kind, eval_err.kind, "{run_err}");
}

/// A graph's `limits` can only lower the caller's: a graph asking for 10^18 fuel and memory
/// gets what the caller allows, and one asking for less gets less.
#[test]
fn a_graph_cannot_raise_its_own_limits() {
    let greedy = graph(include_str!("../regressions/raises-its-own-fuel.json"));
    let caller = RunLimits {
        fuel: 1_000_000,
        deadline: std::time::Duration::from_secs(5),
        ..RunLimits::default()
    };
    let limits = greedy.limits_over(caller);
    assert_eq!(limits, caller, "the graph's 10^18 must not raise anything");
    let defaults = greedy.limits_over(RunLimits::default());
    assert_eq!(defaults, RunLimits::default());
    for err in [
        eval_with(&greedy, limits).expect_err("eval runs out of the caller's fuel"),
        run_with(&compile(&greedy), limits).expect_err("run runs out of the caller's fuel"),
    ] {
        assert!(
            matches!(
                err.kind,
                ErrorKind::FuelExhausted {
                    budget: 1_000_000,
                    ..
                }
            ),
            "{err}"
        );
    }
    let modest = graph(
        r#"{"version": 1, "nodes": [{"id": "x", "op": "const", "value": 1}],
            "outputs": {"x": "x"}, "limits": {"fuel": 1000, "memory": 4096}}"#,
    );
    let lowered = modest.limits_over(RunLimits::default());
    assert_eq!((lowered.fuel, lowered.memory_bytes), (1000, 4096));
    let lowered = modest.limits_over(RunLimits {
        fuel: 10,
        ..RunLimits::default()
    });
    assert_eq!((lowered.fuel, lowered.memory_bytes), (10, 4096));
}

/// `n` `log` calls (a loop), then, if `kernel`, one kernel call on the loop's result.
fn logs_then(n: u64, kernel: bool) -> Graph {
    let tail = if kernel {
        r#", {"id": "m", "op": "kernel", "kernel": "matmul", "args": ["logs", "logs"]}], "outputs": {"m": "m"}"#
    } else {
        r#"], "outputs": {"logs": "logs"}"#
    };
    graph(&format!(
        r#"{{"version": 1, "nodes": [
            {{"id": "t", "op": "iota", "shape": [2, 2]}},
            {{"id": "logs", "op": "loop", "args": ["t"], "iterations": {n},
             "body": {{"params": ["i", "s"], "nodes": [
                {{"id": "l", "op": "log", "args": ["s"], "level": "debug"}}], "results": ["l"]}}}}
        {tail}, "footprint": {{"kernels": ["matmul"]}}}}"#
    ))
}

/// Both engines, through the same host, on the same graph.
fn both_engines(g: &Graph) -> [Result<graphjit::RunOutput, graphjit::Error>; 2] {
    let host = crate::support::host();
    let inputs = std::collections::BTreeMap::new();
    let limits = RunLimits::default();
    let compiled = compile(g);
    [
        crate::support::block_on(host.run(&compiled, &inputs, limits)),
        crate::support::block_on(host.eval_effects(g, &inputs, limits)),
    ]
}

/// The effect-call cap counts the same way in `run` and `eval` (one shared meter): every call,
/// `log` included, counts; a `log` past the cap is dropped (the WIT `log` has no error), any
/// other call past it fails with `limit`.
#[test]
fn both_engines_count_log_calls_against_the_cap_the_same_way() {
    let cap = RunLimits::default().max_effect_calls;
    assert_eq!(cap, 1_000, "the documented cap");
    // 1,001 log lines: the last is dropped, the graph's value is unchanged, in both engines.
    let [run, eval] = both_engines(&logs_then(u64::from(cap) + 1, false));
    let (run, eval) = (run.expect("run"), eval.expect("eval"));
    assert_eq!(run.outputs, eval.outputs);
    assert_eq!((run.effect_calls, eval.effect_calls), (cap, cap));
    // 999 lines and a kernel call: the 1,000th call is within the cap.
    let [run, eval] = both_engines(&logs_then(u64::from(cap) - 1, true));
    let (run, eval) = (run.expect("run"), eval.expect("eval"));
    assert_eq!(run.outputs, eval.outputs);
    assert_eq!((run.effect_calls, eval.effect_calls), (cap, cap));
    // 1,000 lines and a kernel call: the 1,001st call is refused, in both.
    for err in both_engines(&logs_then(u64::from(cap), true)) {
        let err = err.expect_err("the 1,001st call is past the cap");
        assert_eq!(
            (err.kind.clone(), err.node.as_deref()),
            (
                ErrorKind::EffectFailed {
                    class: graphjit::EffectClass::Limit
                },
                Some("m")
            ),
            "{err}"
        );
    }
}

/// The effects' fuel is one budget too: each call costs the same (10,000 per call, 1 per byte
/// of its answer, a kernel's work) in both engines, so a budget that pays for the pure work
/// but not for the calls stops both, and one that pays for both lets both finish.
#[test]
fn both_engines_charge_effects_the_same_fuel() {
    let g = logs_then(50, false);
    let host = crate::support::host();
    let inputs = std::collections::BTreeMap::new();
    let compiled = compile(&g);
    let with_fuel = |fuel| RunLimits {
        fuel,
        ..RunLimits::default()
    };
    // 50 calls cost 500,000 fuel in either engine; the pure work is below 400,000 in both
    // (about 330,000 in wasm, which formats each line, and 100 in eval).
    let short = with_fuel(400_000);
    let run = crate::support::block_on(host.run(&compiled, &inputs, short));
    let eval = crate::support::block_on(host.eval_effects(&g, &inputs, short));
    for (engine, result) in [("run", run), ("eval", eval)] {
        let err = result.expect_err(engine);
        assert!(
            matches!(err.kind, ErrorKind::FuelExhausted { .. }),
            "{engine}: {err}"
        );
    }
    let enough = with_fuel(1_000_000);
    let run = crate::support::block_on(host.run(&compiled, &inputs, enough)).expect("run");
    let eval = crate::support::block_on(host.eval_effects(&g, &inputs, enough)).expect("eval");
    assert_eq!(run.outputs, eval.outputs);
    for used in [run.fuel_used, eval.fuel_used] {
        assert!((500_000..1_000_000).contains(&used), "{used}");
    }
}

/// A host whose pool has one instance slot: a run that starts while another holds it fails
/// with a typed `resource_exceeded` (nothing of it ran), not an internal error; once the
/// slot is free the same compiled graph runs.
#[test]
fn a_run_that_finds_every_instance_slot_in_use_is_resource_exceeded() {
    let host = graphjit::Host::with_config(&graphjit::HostConfig {
        max_instances: 1,
        ..crate::support::memory_only()
    })
    .expect("host");
    let slow = graph(
        r#"{"version": 1, "nodes": [
        {"id": "x", "op": "const", "value": 0},
        {"id": "l", "op": "loop", "args": ["x"], "iterations": 3000000000,
         "body": {"params": ["i", "s"], "nodes": [{"id": "t", "op": "add", "args": ["s", "i"]}], "results": ["t"]}}],
        "outputs": {"l": "l"}}"#,
    );
    let quick = graph(
        r#"{"version": 1, "nodes": [{"id": "one", "op": "const", "value": 1}], "outputs": {"one": "one"}}"#,
    );
    let (slow, quick) = (
        host.compile(&slow).expect("compiles"),
        host.compile(&quick).expect("compiles"),
    );
    let none = std::collections::BTreeMap::new();
    let limits = RunLimits {
        fuel: 10_000_000_000,
        deadline: std::time::Duration::from_millis(1500),
        ..RunLimits::default()
    };
    let (held, refused) = crate::support::block_on(async {
        tokio::join!(host.run(&slow, &none, limits), async {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            host.run(&quick, &none, limits).await
        })
    });
    assert!(
        matches!(
            held.as_ref().map_err(|e| &e.kind),
            Ok(_) | Err(ErrorKind::DeadlineExceeded { .. } | ErrorKind::FuelExhausted { .. })
        ),
        "{held:?}"
    );
    let refused = refused.expect_err("the pool's one slot was in use");
    assert_eq!(refused.kind, ErrorKind::ResourceExceeded, "{refused}");
    assert_eq!(refused.stage, Stage::Run, "{refused}");
    assert!(
        refused.message.contains("instance pool is full"),
        "{refused}"
    );
    let again = crate::support::block_on(host.run(&quick, &none, limits)).expect("runs");
    assert_eq!(again.outputs[0].1, graphjit::Value::I64(1));
}
