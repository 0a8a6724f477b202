//! Named deployments and hot code replacement under load (seed 9.3).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use graphjit::{Deployments, ErrorKind, Host, RunLimits, Stage, State, Value};

use crate::support::{graph, memory_only};

/// Version `v` of the deployed graph: returns `v` itself (and does a little work), so every
/// response says which version computed it.
fn version_graph(v: i64) -> graphjit::Graph {
    graph(&format!(
        r#"{{"version": 1, "nodes": [
            {{"id": "x", "op": "input", "type": "i64", "default": 1}},
            {{"id": "v", "op": "const", "value": {v}}},
            {{"id": "y", "op": "mul", "args": ["x", "v"]}}
        ], "outputs": {{"y": "y"}}}}"#
    ))
}

#[test]
fn unknown_deployment_is_a_typed_error() {
    let host = Host::with_config(&memory_only()).expect("host");
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let deployments = Deployments::new(&host);
    let error = runtime
        .block_on(deployments.invoke("nope", &BTreeMap::new(), RunLimits::default()))
        .expect_err("no such deployment");
    assert_eq!(error.kind, ErrorKind::UnknownDeployment);
    assert_eq!(error.stage, Stage::Input);
}

#[test]
fn replacement_under_load_drops_nothing_and_serves_only_ready_versions() {
    const VERSIONS: i64 = 21; // the first deploy and 20 replacements
    const CLIENTS: usize = 4;
    let host = Host::with_config(&memory_only()).expect("host");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    // Each version compiles while the previous one serves: that is what is being tested.
    let graphs: Vec<_> = (1..=VERSIONS).map(version_graph).collect();
    let deployments = Deployments::new(&host);

    let responses = runtime.block_on(async {
        deployments
            .deploy("svc", &graphs[0])
            .await
            .expect("first deploy");
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let deployments = deployments.clone();
            let stop = Arc::clone(&stop);
            clients.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let inv = deployments
                        .invoke("svc", &BTreeMap::new(), RunLimits::default())
                        .await
                        .expect("no request fails during replacement");
                    seen.push((
                        inv.version,
                        inv.output.context,
                        inv.output.outputs[0].1.clone(),
                    ));
                }
                seen
            }));
        }
        let mut deployed = Vec::new();
        for (i, g) in graphs.iter().enumerate().skip(1) {
            let d = deployments
                .deploy("svc", g)
                .await
                .expect("replacement compiles");
            assert_eq!(d.version, i as u64 + 1);
            assert_eq!(d.replaced, Some(i as u64));
            deployed.push((d.version, d.compiled.context()));
        }
        // Let the clients see the last version for a moment, then stop them.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for client in clients {
            all.extend(client.await.expect("client task"));
        }
        all
    });

    assert!(
        responses.len() > 100,
        "the clients ran: {}",
        responses.len()
    );
    let versions: BTreeSet<u64> = responses.iter().map(|r| r.0).collect();
    assert!(
        versions.len() >= 3,
        "requests spanned several versions: {versions:?}"
    );
    for (version, _, value) in &responses {
        assert_eq!(
            *value,
            Value::I64(*version as i64),
            "the version that claims a response computed it"
        );
    }
    assert!(
        versions.contains(&(VERSIONS as u64)),
        "the last version served"
    );

    let trace = host.trace();
    for t in &trace {
        assert!(graphjit::is_legal(t.from, t.to), "{t:?}");
    }
    assert!(host.illegal_transitions().is_empty());
    // Each context's transitions in order form one legal path.
    let mut state: BTreeMap<u64, Option<State>> = BTreeMap::new();
    for t in &trace {
        let current = state.entry(t.context).or_insert(None);
        assert_eq!(*current, t.from, "context {} jumped: {t:?}", t.context);
        *current = Some(t.to);
    }
    // Every old version drained and was evicted; only the current one remains in service.
    // Every context that served a response had reached Ready.
    let served: BTreeSet<u64> = responses.iter().map(|r| r.1).collect();
    let current_context = *state.keys().max().expect("contexts");
    for (context, last) in &state {
        if *context == current_context {
            assert!(matches!(last, Some(State::Ready)), "current: {last:?}");
        } else {
            assert_eq!(
                *last,
                Some(State::Evicted),
                "old context {context} was evicted"
            );
        }
    }
    for context in served {
        let reached_ready = trace
            .iter()
            .any(|t| t.context == context && t.to == State::Ready);
        assert!(
            reached_ready,
            "context {context} served without being Ready"
        );
    }
    assert_eq!(deployments.list(), [("svc".to_string(), VERSIONS as u64)]);
}
