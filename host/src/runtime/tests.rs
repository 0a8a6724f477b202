//! Tests with real guests: compiled by rustc against the template, run in wasmtime.
//! No mocks: every guest below is a component built the way generated graphs are.

#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use graphjit_value::{Value, decode, encode};

use super::*;
use crate::compile::{CompileOptions, test_compiler};

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| match Runtime::new(&RuntimeConfig::default()) {
        Ok(runtime) => runtime,
        Err(e) => panic!("no runtime for the tests: {e}"),
    })
}

/// Compiles a guest whose body is `body` (inside `fn graph(mut inputs: Inputs)`) and loads it.
fn load(body: &str) -> LoadedGraph {
    let source = format!(
        "#![no_std]\nextern crate alloc;\n#[allow(unused_imports)]\nuse alloc::vec::Vec;\n\
         use graphjit_guest::{{Inputs, RunError, Value}};\n\n\
         #[allow(unused_mut)]\nfn graph(mut inputs: Inputs) -> Result<Vec<Value>, RunError> {{\n{body}\n}}\n\n\
         graphjit_guest::export_graph!(graph);\n"
    );
    let compiled = match test_compiler().compile(&source, &CompileOptions::default()) {
        Ok(compiled) => compiled,
        Err(e) => panic!("guest does not compile: {e}\n{source}"),
    };
    runtime().load(&compiled.wasm, &|_| false).unwrap()
}

fn encoded(values: &[Value]) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode(values, &mut bytes);
    bytes
}

async fn run(
    graph: &LoadedGraph,
    inputs: &[Value],
    limits: &RunLimits,
) -> Result<Vec<Value>, RuntimeError> {
    let outcome = runtime()
        .run(graph, &encoded(inputs), limits, None, None)
        .await?;
    outcome.decode()
}

const ADD: &str = "let a = inputs.i64(0)?;\nlet b = inputs.i64(1)?;\n\
                   Ok(alloc::vec![Value::I64(a.checked_add(b).ok_or(RunError::Overflow(2))?)])";

#[tokio::test]
async fn add_returns_the_encoded_sum() {
    let graph = load(ADD);
    let limits = RunLimits::default();
    let outcome = runtime()
        .run(
            &graph,
            &encoded(&[Value::I64(2), Value::I64(40)]),
            &limits,
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(decode(&outcome.output).unwrap(), vec![Value::I64(42)]);
    assert!(
        outcome.fuel_used > 0 && outcome.fuel_used < 1_000_000,
        "{}",
        outcome.fuel_used
    );

    // Timings for the report: Cranelift, then instantiate + call (warm).
    let mut best = Duration::MAX;
    for _ in 0..20 {
        let outcome = runtime()
            .run(
                &graph,
                &encoded(&[Value::I64(1), Value::I64(2)]),
                &limits,
                None,
                None,
            )
            .await
            .unwrap();
        best = best.min(outcome.run_time);
    }
    eprintln!(
        "add: cranelift {:?}, instantiate+call best of 20 {:?}",
        graph.compile_time, best
    );

    let overflow = run(&graph, &[Value::I64(i64::MAX), Value::I64(1)], &limits).await;
    assert_eq!(overflow, Err(RuntimeError::Overflow { node: 2 }));
}

#[tokio::test]
async fn inputs_of_the_wrong_type_or_bytes_that_do_not_decode_are_bad_input() {
    let graph = load(ADD);
    let limits = RunLimits::default();
    let wrong = run(&graph, &[Value::F64(1.0), Value::I64(1)], &limits).await;
    assert!(
        matches!(wrong, Err(RuntimeError::BadInput { ref message }) if message.contains("expected i64")),
        "{wrong:?}"
    );
    let missing = run(&graph, &[Value::I64(1)], &limits).await;
    assert!(
        matches!(missing, Err(RuntimeError::BadInput { .. })),
        "{missing:?}"
    );
    let garbage = runtime()
        .run(&graph, &[0xff, 0xff, 0xff], &limits, None, None)
        .await;
    assert!(
        matches!(garbage, Err(RuntimeError::BadInput { .. })),
        "{garbage:?}"
    );
}

#[tokio::test]
async fn a_long_loop_runs_out_of_fuel() {
    // An f64 recurrence with a huge bound: LLVM can neither fold nor vectorize it away.
    let graph = load(
        "let mut x = inputs.f64(0)?;\nlet mut i: u64 = 0;\n\
         while i < 1_000_000_000_000_000 { x = x * 1.000_001 + 0.5; if x > 1e300 { x = 1.0; } i += 1; }\n\
         Ok(alloc::vec![Value::F64(x)])",
    );
    let limits = RunLimits {
        fuel: 1_000_000,
        ..RunLimits::default()
    };
    let start = Instant::now();
    let result = run(&graph, &[Value::F64(1.0)], &limits).await;
    assert_eq!(
        result,
        Err(RuntimeError::Fuel {
            budget: 1_000_000,
            used: 1_000_000
        })
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );

    // With fuel to spare, the deadline ends it instead.
    let limits = RunLimits {
        fuel: u64::MAX / 2,
        deadline: Duration::from_millis(100),
        ..RunLimits::default()
    };
    let start = Instant::now();
    let result = run(&graph, &[Value::F64(1.0)], &limits).await;
    assert_eq!(
        result,
        Err(RuntimeError::Deadline {
            limit: Duration::from_millis(100)
        })
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn allocations_beyond_the_memory_limit_are_typed_errors() {
    let limits = RunLimits {
        memory_bytes: 32 << 20,
        ..RunLimits::default()
    };
    // Fallible: the guest sees the refusal and reports it with the node.
    let fallible = load(
        "let n = inputs.i64(0)?;\nlet v = graphjit_guest::try_vec_f32(n as usize, 5)?;\n\
         Ok(alloc::vec![Value::I64(v.len() as i64)])",
    );
    let result = run(&fallible, &[Value::I64(1 << 28)], &limits).await;
    assert_eq!(
        result,
        Err(RuntimeError::OutOfMemory {
            node: 5,
            bytes: 1 << 30
        })
    );
    let small = run(&fallible, &[Value::I64(1000)], &limits).await;
    assert_eq!(small, Ok(vec![Value::I64(1000)]));

    // Infallible: the allocation aborts the guest (a trap); the limiter names the request.
    let infallible = load(
        "let n = inputs.i64(0)?;\nlet v = alloc::vec![7u8; n as usize];\n\
         Ok(alloc::vec![Value::I64(v.iter().map(|&b| i64::from(b)).sum())])",
    );
    let result = run(&infallible, &[Value::I64(100 << 20)], &limits).await;
    assert!(
        matches!(result, Err(RuntimeError::Memory { limit, requested }) if limit == 32 << 20 && requested > 100 << 20),
        "{result:?}"
    );

    // A limit below the guest's initial memory is refused at instantiation, as Memory.
    let tiny = RunLimits {
        memory_bytes: 64 << 10,
        ..RunLimits::default()
    };
    let result = run(&fallible, &[Value::I64(1)], &tiny).await;
    assert!(
        matches!(result, Err(RuntimeError::Memory { limit, .. }) if limit == 64 << 10),
        "{result:?}"
    );

    // Input larger than the limit: the canonical ABI's realloc is refused; still Memory.
    let big = vec![Value::Str("x".repeat(40 << 20))];
    let result = run(&fallible, &big, &limits).await;
    assert!(
        matches!(result, Err(RuntimeError::Memory { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn each_guest_error_maps_to_its_runtime_error() {
    let graph = load(
        "match inputs.i64(0)? {\n\
           0 => Err(RunError::Overflow(7)),\n\
           1 => Err(RunError::DivisionByZero(8)),\n\
           2 => Err(graphjit_guest::out_of_memory(9, 123)),\n\
           3 => Err(RunError::InvalidValue(graphjit_guest::InvalidValue { node: 10, message: alloc::string::String::from(\"NaN to i64\") })),\n\
           4 => Err(RunError::BadInput(alloc::string::String::from(\"no\"))),\n\
           n => { let table = [1i64, 2, 3]; Ok(alloc::vec![Value::I64(table[(n - 5) as usize])]) }\n\
         }",
    );
    let limits = RunLimits::default();
    let expected = [
        RuntimeError::Overflow { node: 7 },
        RuntimeError::DivisionByZero { node: 8 },
        RuntimeError::OutOfMemory {
            node: 9,
            bytes: 123,
        },
        RuntimeError::InvalidValue {
            node: 10,
            message: "NaN to i64".to_owned(),
        },
        RuntimeError::BadInput {
            message: "no".to_owned(),
        },
    ];
    for (selector, expected) in expected.into_iter().enumerate() {
        let result = run(&graph, &[Value::I64(selector as i64)], &limits).await;
        assert_eq!(result, Err(expected));
    }
    assert_eq!(
        run(&graph, &[Value::I64(6)], &limits).await,
        Ok(vec![Value::I64(2)])
    );
    // A panic (index out of bounds) traps; the host reports it and keeps going.
    let trap = run(&graph, &[Value::I64(100)], &limits).await;
    assert!(
        matches!(trap, Err(RuntimeError::Trap { ref message }) if message.starts_with("wasm trap: wasm `unreachable`")),
        "{trap:?}"
    );
    assert_eq!(
        run(&graph, &[Value::I64(7)], &limits).await,
        Ok(vec![Value::I64(3)])
    );
}

#[test]
fn a_component_importing_wasi_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.rs"),
        "fn main() { println!(\"x\"); }\n",
    )
    .unwrap();
    let status = std::process::Command::new(test_compiler().rustc_path())
        .current_dir(dir.path())
        .args([
            "--edition",
            "2024",
            "--target",
            "wasm32-wasip2",
            "main.rs",
            "-o",
            "main.wasm",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let wasm = std::fs::read(dir.path().join("main.wasm")).unwrap();
    let Err(error) = runtime().load(&wasm, &|_| false) else {
        panic!("a WASI component was accepted");
    };
    assert!(
        matches!(error, RuntimeError::ImportDenied { ref import } if import.starts_with("wasi:")),
        "{error:?}"
    );
}

#[test]
fn bytes_that_are_not_a_component_are_invalid() {
    let error = runtime().load(b"\0asm\x01\0\0\0", &|_| false).err();
    assert!(
        matches!(error, Some(RuntimeError::InvalidComponent { .. })),
        "{error:?}"
    );
    let error = runtime().load(b"not wasm", &|_| false).err();
    assert!(
        matches!(error, Some(RuntimeError::InvalidComponent { .. })),
        "{error:?}"
    );
}

#[test]
fn output_that_does_not_decode_is_bad_output() {
    let outcome = RunOutcome {
        output: vec![9, 9, 9],
        fuel_used: 0,
        run_time: Duration::ZERO,
        peak_memory_bytes: 0,
        effect_calls: 0,
        effect_rounds: 0,
        memo_hits: 0,
        memo_misses: 0,
    };
    assert!(matches!(
        outcome.decode(),
        Err(RuntimeError::BadOutput { .. })
    ));
}

#[test]
fn runtime_and_loaded_graphs_can_be_shared_across_tasks() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Runtime>();
    shareable::<LoadedGraph>();
}

#[tokio::test(flavor = "current_thread")]
async fn a_long_guest_yields_so_others_finish_first() {
    let spinner = load(
        "let mut x = inputs.f64(0)?;\nlet mut i: u64 = 0;\n\
         while i < 1_000_000_000_000_000 { x = x * 1.000_001 + 0.5; if x > 1e300 { x = 1.0; } i += 1; }\n\
         Ok(alloc::vec![Value::F64(x)])",
    );
    let adder = load(ADD);
    let long_limits = RunLimits {
        fuel: u64::MAX / 2,
        deadline: Duration::from_millis(400),
        ..RunLimits::default()
    };
    let start = Instant::now();
    let long = async {
        let result = run(&spinner, &[Value::F64(1.0)], &long_limits).await;
        (result, start.elapsed())
    };
    let short = async {
        // Let the spinner start first.
        tokio::task::yield_now().await;
        let result = run(
            &adder,
            &[Value::I64(1), Value::I64(2)],
            &RunLimits::default(),
        )
        .await;
        (result, start.elapsed())
    };
    // One thread: the short run can only finish early if the spinner yields.
    let ((long_result, long_time), (short_result, short_time)) = tokio::join!(long, short);
    assert!(
        matches!(long_result, Err(RuntimeError::Deadline { .. })),
        "{long_result:?}"
    );
    assert_eq!(short_result, Ok(vec![Value::I64(3)]));
    assert!(
        short_time < long_time,
        "short {short_time:?}, long {long_time:?}"
    );
    assert!(
        short_time < Duration::from_millis(200),
        "short {short_time:?}"
    );
}
