//! Shared helpers: one `Host` per test binary, a tokio runtime, graph builders.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use graphjit::{
    CacheConfig, CompiledGraph, Error, Graph, Host, HostConfig, RunLimits, RunOutput, Value,
};

/// The shared host: memory cache only, so that every graph the tests compile goes through
/// rustc at least once per test binary (the disk cache has its own tests).
pub(crate) fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| Host::with_config(&memory_only()).expect("toolchain and engine available"))
}

/// A host configuration without the disk cache.
pub(crate) fn memory_only() -> HostConfig {
    HostConfig {
        cache: CacheConfig {
            disk_dir: None,
            ..CacheConfig::default()
        },
        ..HostConfig::default()
    }
}

/// [`memory_only`], and HTTP effects may reach the test servers on loopback.
pub(crate) fn loopback() -> HostConfig {
    HostConfig {
        http: graphjit::HttpSettings {
            allow_loopback: true,
            ..graphjit::HttpSettings::default()
        },
        ..memory_only()
    }
}

pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio")
    })
    .block_on(f)
}

pub(crate) fn graph(json: &str) -> Graph {
    Graph::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("graph should parse: {e}\n{json}"))
}

pub(crate) fn compile(graph: &Graph) -> CompiledGraph {
    host().compile(graph).unwrap_or_else(|e| {
        panic!(
            "graph should compile: {e}\n{}",
            graph.rust_source().unwrap_or_default()
        )
    })
}

pub(crate) fn run_with(compiled: &CompiledGraph, limits: RunLimits) -> Result<RunOutput, Error> {
    block_on(host().run(compiled, &BTreeMap::new(), limits))
}

pub(crate) fn eval_with(graph: &Graph, limits: RunLimits) -> Result<RunOutput, Error> {
    Host::eval(graph, &BTreeMap::new(), limits)
}

/// The outputs' values alone.
pub(crate) fn values(out: &RunOutput) -> Vec<Value> {
    out.outputs.iter().map(|(_, v)| v.clone()).collect()
}

/// Runs `sql` (one or more statements) on the PostgreSQL at `url` as its operator: test setup.
pub(crate) fn pg_execute(url: &str, sql: &str) {
    block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connects");
        tokio::spawn(connection);
        client.batch_execute(sql).await.expect("setup SQL");
    });
}

/// A host that runs no pass, so each op meets codegen as written.
pub(crate) fn unoptimized() -> &'static Host {
    static HOST: std::sync::OnceLock<Host> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        Host::with_config(&HostConfig {
            passes: graphjit::PassConfig::parse("none").expect("passes"),
            ..memory_only()
        })
        .expect("host")
    })
}
