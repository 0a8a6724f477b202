//! The compile cache from outside: keys, memory and disk hits, bad disk files, single flight,
//! and two processes sharing one directory.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use graphjit::{CacheConfig, CacheSource, Host, HostConfig, RunLimits, State, Value};

use crate::support::{block_on, graph, memory_only};

const GRAPH: &str = r#"{"version": 1, "nodes": [
    {"id": "x", "op": "input", "type": "i64", "default": 5},
    {"id": "k", "op": "const", "value": 9},
    {"id": "y", "op": "mul", "args": ["x", "k"]}
], "outputs": {"y": "y"}}"#;

/// The same graph, keys and nodes in another order.
const GRAPH_PERMUTED: &str = r#"{"outputs": {"y": "y"}, "nodes": [
    {"op": "mul", "args": ["x", "k"], "id": "y"},
    {"value": 9, "id": "k", "op": "const"},
    {"default": 5, "type": "i64", "op": "input", "id": "x"}
], "version": 1}"#;

fn with_disk(dir: &Path) -> Host {
    Host::with_config(&HostConfig {
        cache: CacheConfig {
            disk_dir: Some(dir.to_path_buf()),
            ..CacheConfig::default()
        },
        ..HostConfig::default()
    })
    .expect("host")
}

fn run_y(host: &Host, compiled: &graphjit::CompiledGraph) -> Value {
    let out = block_on(host.run(compiled, &BTreeMap::new(), RunLimits::default())).expect("runs");
    out.outputs[0].1.clone()
}

#[test]
fn memory_hit_for_the_same_graph_in_any_order_and_a_miss_for_another() {
    let host = Host::with_config(&memory_only()).expect("host");
    let first = host.compile(&graph(GRAPH)).expect("compiles");
    assert_eq!(first.stats.cache, CacheSource::Miss);
    let again = host.compile(&graph(GRAPH_PERMUTED)).expect("compiles");
    assert_eq!(again.stats.cache, CacheSource::Memory, "{:?}", again.stats);
    assert_eq!(again.stats.key, first.stats.key);
    assert_eq!(again.context(), first.context(), "the same artifact");
    assert_eq!(again.stats.stages.rustc, std::time::Duration::ZERO);
    let other = host
        .compile(&graph(&GRAPH.replace("\"value\": 9", "\"value\": 10")))
        .expect("compiles");
    assert_eq!(other.stats.cache, CacheSource::Miss);
    assert_ne!(other.stats.key, first.stats.key);
    assert_eq!(run_y(&host, &other), Value::I64(50));
}

#[test]
fn disk_hit_in_a_fresh_host_and_bad_files_are_recompiled() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache_dir = dir.path().join("components");
    let g = graph(GRAPH);
    let first = with_disk(&cache_dir).compile(&g).expect("compiles");
    assert_eq!(first.stats.cache, CacheSource::Miss);

    // A fresh host has an empty memory cache: the component comes from disk, no rustc.
    let host = with_disk(&cache_dir);
    let hit = host.compile(&g).expect("loads");
    assert_eq!(hit.stats.cache, CacheSource::Disk, "{:?}", hit.stats);
    assert_eq!(hit.stats.stages.rustc, std::time::Duration::ZERO);
    assert_eq!(run_y(&host, &hit), Value::I64(45));

    let file = cache_dir.join(format!("{}.cwasm", first.stats.key));
    let good = std::fs::read(&file).expect("cache file");
    let damaged: [(&str, Vec<u8>); 3] = [
        ("corrupt", {
            let mut bytes = good.clone();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x55;
            bytes
        }),
        ("truncated", good[..good.len() - 100].to_vec()),
        ("foreign", {
            // A whole, valid file of another graph under this key's name.
            let other = graph(&GRAPH.replace("\"value\": 9", "\"value\": 11"));
            let other_key = with_disk(&cache_dir)
                .compile(&other)
                .expect("compiles")
                .stats
                .key;
            std::fs::read(cache_dir.join(format!("{other_key}.cwasm"))).expect("other file")
        }),
    ];
    for (what, bytes) in damaged {
        std::fs::write(&file, &bytes).expect("damage the file");
        let host = with_disk(&cache_dir);
        let compiled = host.compile(&g).expect("recompiles");
        assert_eq!(
            compiled.stats.cache,
            CacheSource::Miss,
            "{what}: {:?}",
            compiled.stats
        );
        assert!(
            compiled.stats.reason.contains("discarded"),
            "{what}: {}",
            compiled.stats.reason
        );
        assert_eq!(host.cache_counters().discarded, 1, "{what}");
        assert_eq!(
            run_y(&host, &compiled),
            Value::I64(45),
            "{what}: right answer"
        );
        assert_eq!(
            std::fs::read(&file).expect("rewritten"),
            good,
            "{what}: the recompiled component replaced the bad file, byte for byte"
        );
    }
}

#[test]
fn concurrent_first_requests_compile_once() {
    let host = Host::with_config(&memory_only()).expect("host");
    let g = graph(&GRAPH.replace("\"value\": 9", "\"value\": 64"));
    let contexts: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..64)
            .map(|_| scope.spawn(|| host.compile(&g).expect("compiles").context()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let counters = host.cache_counters();
    assert_eq!(counters.compiles, 1, "{counters:?}");
    assert_eq!(
        counters.coalesced + counters.memory_hits,
        63,
        "{counters:?}"
    );
    assert!(
        contexts.iter().all(|&c| c == contexts[0]),
        "one artifact for all"
    );
    let built: Vec<_> = host
        .trace()
        .into_iter()
        .filter(|t| t.to == State::GraphReceived)
        .collect();
    assert_eq!(built.len(), 1, "one lifecycle started: {built:?}");
}

#[test]
fn memory_pressure_evicts_lru_and_the_handle_still_runs() {
    let host = Host::with_config(&HostConfig {
        cache: CacheConfig {
            memory_entries: 1,
            disk_dir: None,
            ..CacheConfig::default()
        },
        ..HostConfig::default()
    })
    .expect("host");
    let a = host.compile(&graph(GRAPH)).expect("compiles");
    let b = host
        .compile(&graph(&GRAPH.replace("\"value\": 9", "\"value\": 2")))
        .expect("compiles");
    assert_eq!(
        a.state(),
        State::Evicted,
        "a left the cache and ran nothing"
    );
    assert_eq!(b.state(), State::Ready);
    assert_eq!(host.cache_counters().evicted, 1);
    // The evicted handle is made ready again through the cache, in a new context.
    let out = block_on(host.run(&a, &BTreeMap::new(), RunLimits::default())).expect("runs");
    assert_eq!(out.outputs[0].1, Value::I64(45));
    assert_ne!(out.context, a.context());
    for t in host.trace() {
        assert!(graphjit::is_legal(t.from, t.to), "{t:?}");
    }
    assert!(host.illegal_transitions().is_empty());
}

#[test]
fn two_processes_share_one_cache_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache_dir = dir.path().join("c");
    let graph_file = dir.path().join("g.json");
    std::fs::write(&graph_file, GRAPH.replace("\"value\": 9", "\"value\": 3")).expect("write");
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_graphjit"))
            .arg("run")
            .arg(&graph_file)
            .arg("--json")
            .arg("--cache-dir")
            .arg(&cache_dir)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("one JSON object")
    };
    let first = run();
    let second = run();
    assert_eq!(first["stats"]["cache"], "miss", "{first}");
    assert_eq!(second["stats"]["cache"], "disk", "{second}");
    assert_eq!(
        first["stats"]["key"], second["stats"]["key"],
        "same key in two processes"
    );
    assert_eq!(
        second["stats"]["stages_ms"]["rustc"], 0.0,
        "compile stage skipped"
    );
    assert_eq!(second["stats"]["stages_ms"]["codegen"], 0.0);
    assert_eq!(first["output"], second["output"]);
    assert_eq!(second["output"]["y"], 15);

    let stats = Command::new(env!("CARGO_BIN_EXE_graphjit"))
        .args(["cache", "stats", "--json", "--cache-dir"])
        .arg(&cache_dir)
        .output()
        .expect("runs");
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).expect("json");
    assert_eq!(stats["entries"], 1, "{stats}");
}

#[cfg(unix)]
#[test]
fn a_cache_dir_others_can_write_is_refused_with_exit_2() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let cache_dir = dir.path().join("open");
    std::fs::create_dir(&cache_dir).expect("mkdir");
    std::fs::set_permissions(&cache_dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = Command::new(env!("CARGO_BIN_EXE_graphjit"))
        .args(["run", "examples/hello.json", "--json", "--cache-dir"])
        .arg(&cache_dir)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["error"]["kind"], "cache_unavailable", "{json}");
    assert_eq!(
        std::fs::read_dir(&cache_dir).expect("dir").count(),
        0,
        "nothing written"
    );
}

#[test]
fn explain_shows_the_key_a_run_uses_and_whether_it_would_hit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache_dir = dir.path().join("c");
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_graphjit"))
            .args(args)
            .arg("--cache-dir")
            .arg(&cache_dir)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("one JSON object")
    };
    let before = cli(&["explain", "examples/hello.json", "--json"]);
    assert_eq!(before["cache"], "miss", "{before}");
    assert_eq!(
        before["assumptions"],
        serde_json::json!([]),
        "only with --assumptions"
    );
    let run = cli(&["run", "examples/hello.json", "--json"]);
    let after = cli(&["explain", "examples/hello.json", "--json", "--assumptions"]);
    assert_eq!(
        after["key"], run["stats"]["key"],
        "explain and run agree on the key"
    );
    assert_eq!(after["cache"], "disk", "{after}");
    let components: Vec<&str> = after["assumptions"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|a| a["component"].as_str())
        .collect();
    assert!(components.contains(&"rustc") && components.contains(&"wasmtime"));
    assert!(
        !components.contains(&"postgresql"),
        "hello has no DB effects"
    );

    let db = cli(&[
        "explain",
        "examples/db-report.json",
        "--json",
        "--assumptions",
    ]);
    assert_eq!(db["effects"]["db_query"], 4, "{db}");
    assert_eq!(
        db["footprint"]["db.write"],
        serde_json::json!(["public.audit_log"])
    );
    // Every TLA+ property an assumption cites exists in specs/.
    let specs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    for assumption in db["assumptions"].as_array().expect("list") {
        assert!(
            assumption["component"] != "postgresql"
                || !assumption["properties"]
                    .as_array()
                    .expect("list")
                    .is_empty()
        );
        for property in assumption["properties"].as_array().expect("list") {
            let (module, name) = property
                .as_str()
                .and_then(|p| p.split_once('!'))
                .expect("Module!Property");
            let text = std::fs::read_to_string(specs.join(format!("{module}.tla")))
                .unwrap_or_else(|e| panic!("{module}.tla: {e}"));
            assert!(
                text.contains(&format!("{name} ==")),
                "{module}!{name} is not defined"
            );
        }
    }
    assert!(
        db["assumptions"]
            .as_array()
            .expect("list")
            .iter()
            .any(|a| a["component"] == "postgresql"),
        "{db}"
    );
}
