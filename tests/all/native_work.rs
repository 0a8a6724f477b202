//! Native work obeys the run's bounds: a host kernel is charged fuel by its work before it
//! runs (so a call that costs more than the run has left ends it out of fuel, with nothing
//! run), and kernels and placed products stop at the deadline, off the async workers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use graphjit::{ErrorKind, Graph, RunLimits};

use crate::support::{block_on, graph, host};

/// `a × b` of 4096 × 2048 by 2048 × 4096 on the host: 3.4 × 10^10 multiply-adds, many seconds
/// of CPU if nothing stops it (the arguments stay within wasmtime's 128 MiB per-call copy).
fn big_kernel() -> Graph {
    graph(
        r#"{"version": 1, "nodes": [
            {"id": "a", "op": "fill", "shape": [4096, 2048], "value": 0.5},
            {"id": "b", "op": "fill", "shape": [2048, 4096], "value": 0.25},
            {"id": "c", "op": "kernel", "kernel": "matmul", "args": ["a", "b"]},
            {"id": "s", "op": "sum", "args": ["c"]}],
           "outputs": {"s": "s"}, "footprint": {"kernels": ["matmul"]}}"#,
    )
}

fn limits(fuel: u64, deadline: Duration) -> RunLimits {
    RunLimits {
        fuel,
        memory_bytes: 512 << 20,
        deadline,
        ..RunLimits::default()
    }
}

#[test]
fn a_kernel_costing_more_than_the_fuel_left_ends_the_run_before_it_runs() {
    let g = big_kernel();
    let compiled = host().compile(&g).expect("compiles");
    let started = Instant::now();
    let error = block_on(host().run(
        &compiled,
        &BTreeMap::new(),
        limits(1_000_000_000, Duration::from_secs(60)),
    ))
    .expect_err("out of fuel");
    assert!(
        matches!(error.kind, ErrorKind::FuelExhausted { .. }),
        "{error}"
    );
    // Refused at admission: the fills ran, the product never did.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let eval = block_on(host().eval_effects(
        &g,
        &BTreeMap::new(),
        limits(1_000_000_000, Duration::from_secs(60)),
    ))
    .expect_err("out of fuel");
    assert!(
        matches!(eval.kind, ErrorKind::FuelExhausted { .. }),
        "{eval}"
    );
}

#[test]
fn a_kernel_running_past_the_deadline_stops_there_in_both_engines() {
    let g = big_kernel();
    let compiled = host().compile(&g).expect("compiles");
    let deadline = Duration::from_millis(800);
    let started = Instant::now();
    let error = block_on(host().run(&compiled, &BTreeMap::new(), limits(u64::MAX / 4, deadline)))
        .expect_err("past the deadline");
    let took = started.elapsed();
    assert!(
        matches!(error.kind, ErrorKind::DeadlineExceeded { .. }),
        "{error}"
    );
    assert!(
        took < deadline + Duration::from_secs(2),
        "run took {took:?}"
    );
    let started = Instant::now();
    let eval = block_on(host().eval_effects(&g, &BTreeMap::new(), limits(u64::MAX / 4, deadline)))
        .expect_err("past the deadline");
    let took = started.elapsed();
    assert!(
        matches!(
            eval.kind,
            ErrorKind::DeadlineExceeded { .. } | ErrorKind::EffectFailed { .. }
        ),
        "{eval}"
    );
    assert!(eval.to_string().contains("deadline"), "{eval}");
    assert!(
        took < deadline + Duration::from_secs(2),
        "eval took {took:?}"
    );
}
