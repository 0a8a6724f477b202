//! The state machine against the seed's relation, single- and multi-threaded.

#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::sync::Arc;

use super::*;

fn ready(trace: &Arc<TraceLog>) -> Arc<Lifecycle> {
    let lifecycle = Arc::new(Lifecycle::new(Arc::clone(trace)));
    for to in [
        State::Optimizing,
        State::Generating,
        State::Compiling,
        State::Ready,
    ] {
        assert!(lifecycle.advance(to, ""));
    }
    lifecycle
}

fn path(trace: &TraceLog, context: u64) -> Vec<State> {
    trace
        .transitions()
        .into_iter()
        .filter(|t| t.context == context)
        .map(|t| t.to)
        .collect()
}

#[test]
fn the_relation_is_the_seeds_and_nothing_else() {
    use State::*;
    let all = [
        GraphReceived,
        Optimizing,
        Generating,
        Compiling,
        Ready,
        Executing,
        Failed,
        Evicted,
    ];
    let mut legal = 0;
    for from in all {
        for to in all {
            if is_legal(Some(from), to) {
                legal += 1;
            }
        }
    }
    assert_eq!(
        legal, 11,
        "the seed's diagram has 11 transitions between states"
    );
    assert!(is_legal(None, GraphReceived));
    assert!(!is_legal(None, Ready));
    assert!(
        !is_legal(Some(GraphReceived), Ready),
        "no shortcut past the pipeline"
    );
    assert!(
        !is_legal(Some(Executing), Evicted),
        "never evicted while running"
    );
    assert!(!is_legal(Some(Failed), Ready), "failed is final");
    assert!(!is_legal(Some(Evicted), Ready), "evicted is final");
}

#[test]
fn requests_share_one_executing_period() {
    let trace = Arc::new(TraceLog::new(1000));
    let lifecycle = ready(&trace);
    let first = lifecycle.begin().unwrap();
    let second = lifecycle.begin().unwrap();
    assert_eq!(lifecycle.state(), State::Executing);
    drop(first);
    assert_eq!(
        lifecycle.state(),
        State::Executing,
        "one request still runs"
    );
    drop(second);
    assert_eq!(lifecycle.state(), State::Ready);
    assert_eq!(
        path(&trace, lifecycle.context()),
        [
            State::GraphReceived,
            State::Optimizing,
            State::Generating,
            State::Compiling,
            State::Ready,
            State::Executing,
            State::Ready
        ]
    );
}

#[test]
fn retired_artifact_drains_before_eviction_and_takes_no_new_request() {
    let trace = Arc::new(TraceLog::new(1000));
    let lifecycle = ready(&trace);
    let running = lifecycle.begin().unwrap();
    lifecycle.retire("replaced");
    assert_eq!(
        lifecycle.state(),
        State::Executing,
        "in-flight request finishes"
    );
    assert_eq!(lifecycle.begin().unwrap_err(), Unavailable::Retired);
    drop(running);
    assert_eq!(lifecycle.state(), State::Evicted);
    let idle = ready(&trace);
    idle.retire("pressure");
    assert_eq!(
        idle.state(),
        State::Evicted,
        "an idle artifact is evicted at once"
    );
    assert!(trace.illegal().is_empty(), "{:?}", trace.illegal());
}

#[test]
fn a_broken_artifact_fails_and_serves_no_more() {
    let trace = Arc::new(TraceLog::new(1000));
    let lifecycle = ready(&trace);
    let mut running = lifecycle.begin().unwrap();
    running.artifact_failed();
    drop(running);
    assert_eq!(lifecycle.state(), State::Failed);
    assert_eq!(lifecycle.begin().unwrap_err(), Unavailable::Failed);
}

#[test]
fn not_ready_refuses_requests_and_illegal_steps_are_recorded() {
    let trace = Arc::new(TraceLog::new(1000));
    let lifecycle = Arc::new(Lifecycle::new(Arc::clone(&trace)));
    assert_eq!(lifecycle.begin().unwrap_err(), Unavailable::NotReady);
    // Release builds refuse and record; debug builds also assert (caught here).
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lifecycle.advance(State::Ready, "")
    }));
    assert!(!matches!(result, Ok(true)));
    assert_eq!(
        lifecycle.state(),
        State::GraphReceived,
        "the state did not change"
    );
    assert_eq!(trace.illegal().len(), 1);
}

#[test]
fn concurrent_requests_leave_a_legal_trace() {
    let trace = Arc::new(TraceLog::new(100_000));
    let lifecycle = ready(&trace);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let lifecycle = Arc::clone(&lifecycle);
            scope.spawn(move || {
                for _ in 0..500 {
                    let _running = lifecycle.begin().unwrap();
                }
            });
        }
    });
    lifecycle.retire("done");
    assert_eq!(lifecycle.state(), State::Evicted);
    let mut state = None;
    for transition in trace.transitions() {
        assert_eq!(transition.from, state, "{transition:?}");
        assert!(is_legal(transition.from, transition.to));
        state = Some(transition.to);
    }
    assert!(trace.illegal().is_empty());
}

#[test]
fn the_trace_is_bounded() {
    let trace = Arc::new(TraceLog::new(3));
    let _lifecycle = ready(&trace);
    assert_eq!(trace.transitions().len(), 3);
    assert_eq!(trace.dropped(), 2);
}
