//! The library's entry point: a [`Host`] parses graphs, compiles them to components and runs
//! them (or evaluates them with the reference interpreter).
//!
//! Invariants: `host` is glue — it owns no semantics of its own; it maps every stage's typed
//! error into [`Error`] with the failing node's user-facing id, and never panics.

mod build;
mod errors;
mod explain;
mod run;
mod types;
mod validated;

use std::path::PathBuf;
use std::sync::Arc;

use crate::cache::{Cache, CacheCounters, CacheKey, DiskCacheError, DiskStats, KeyIngredients};
use crate::compile::{self, Compiler};
use crate::effects::{self, Services};
use crate::error::{Error, ErrorKind, Setting, Stage};
use crate::footprint::EgressPolicy;
use crate::lifecycle::{TraceLog, Transition};
use crate::passes::PassConfig;
use crate::runtime::{self, Runtime};

use build::base_key;
use errors::{compile_error, runtime_error};
pub use explain::Explanation;
pub use types::{
    CompileStats, CompiledGraph, DatabaseLimits, HostConfig, HttpSettings, RunLimits, RunOutput,
};
pub use validated::{FootprintCeiling, Graph, MAX_SPECIALIZATIONS};

/// The default disk cache directory.
pub fn default_disk_dir() -> PathBuf {
    compile::default_cache_root().join("components")
}

/// The embedding API: one per process (it owns the wasmtime engine, the toolchain facts and
/// the caches). Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Host {
    pub(crate) inner: Arc<HostInner>,
}

pub(crate) struct HostInner {
    pub(super) compiler: Compiler,
    pub(super) runtime: Arc<Runtime>,
    pub(crate) cache: Arc<Cache>,
    pub(super) trace: Arc<TraceLog>,
    /// The drivers effects are served by.
    pub(super) services: Arc<Services>,
    /// Every key ingredient but the graph, fixed for this host.
    pub(super) base_key: KeyIngredients,
    /// The pass pipeline every compile runs.
    pub(super) passes: PassConfig,
    /// What `cached` nodes computed, kept across runs (`crate::memo`).
    pub(super) memo: Arc<crate::memo::MemoTable>,
    /// The most any compile's sandbox allows.
    pub(super) compile_limits: compile::CompileLimits,
    /// The memo's bounds, for the hosts [`Host::tenant_host`] makes.
    memo_bounds: (usize, u64),
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// A host with the default configuration ([`HostConfig::default`]).
    pub fn new() -> Result<Host, Error> {
        Host::with_config(&HostConfig::default())
    }

    /// Finds the toolchain, builds the engine and opens the caches.
    pub fn with_config(config: &HostConfig) -> Result<Host, Error> {
        let compiler = Compiler::new().map_err(compile_error)?;
        let runtime = Runtime::new(&runtime::RuntimeConfig {
            max_instances: config.max_instances,
            ..runtime::RuntimeConfig::default()
        })
        .map_err(|e| runtime_error(e, None, Stage::Load))?;
        let cache = Cache::new(&config.cache).map_err(|e| {
            let remediation = match &e {
                DiskCacheError::Insecure { .. } => {
                    "use a cache directory only you can write (chmod go-w), or another one"
                }
                DiskCacheError::Io { .. } => "use a writable cache directory",
            };
            Error::new(
                ErrorKind::CacheUnavailable,
                Stage::Setup,
                e.to_string(),
                remediation,
            )
            .for_setting(Setting::CacheDir)
            .caused_by(e)
        })?;
        let base_key = base_key(&compiler, &runtime, &config.passes);
        let tls = effects::tls_config(&config.http.extra_roots).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                Stage::Run,
                format!("the HTTP settings' TLS roots: {e}"),
                "give DER-encoded CA certificates",
            )
            .for_setting(Setting::TlsRoots)
        })?;
        Ok(Host {
            inner: Arc::new(HostInner {
                compiler,
                runtime: Arc::new(runtime),
                cache: Arc::new(cache),
                memo_bounds: (config.memo_entries, config.memo_bytes),
                memo: Arc::new(crate::memo::MemoTable::new(
                    config.memo_entries,
                    config.memo_bytes,
                )),
                trace: Arc::new(TraceLog::new(config.trace_capacity)),
                services: Arc::new(Services {
                    http: effects::HttpRunner::new(effects::HttpConfig {
                        connect_timeout: config.http.connect_timeout,
                        total_timeout: config.http.total_timeout,
                        max_body_bytes: config.http.max_body_bytes,
                        egress: EgressPolicy {
                            allow_loopback: config.http.allow_loopback,
                            allow_private: config.http.allow_private,
                            allowed_nets: Vec::new(),
                        },
                        tls: Some(Arc::new(tls)),
                        ..effects::HttpConfig::default()
                    }),
                    kernels: effects::Kernels::detect(),
                    ..Services::default()
                }),
                base_key,
                passes: config.passes.clone(),
                compile_limits: config.compile_limits,
            }),
        })
    }

    /// A host for one tenant of a multi-tenant embedder (`graphjit serve` makes one per
    /// tenant). It shares this host's toolchain, engine, lifecycle trace, compile limits and
    /// compiled-artifact cache, and has its own:
    /// - drivers: no database until [`Host::connect_database`] on it (the tenant's own URL or
    ///   role); HTTP with this host's egress policy and limits;
    /// - memo of `cached` nodes (a region's answer from one tenant's database is never
    ///   another's), with this host's bounds;
    /// - with `partition`, its own slice of the artifact cache: its keys include the
    ///   partition, so nothing another tenant compiled is a hit for it (no timing signal of
    ///   other tenants' graphs), at the price of compiling a graph once per partition.
    ///
    /// An artifact compiled through one host and run through another is served by the
    /// running host's drivers.
    pub fn tenant_host(&self, partition: Option<&str>) -> Host {
        let inner = &self.inner;
        let base_key = KeyIngredients {
            partition: partition.unwrap_or_default().to_owned(),
            ..inner.base_key.clone()
        };
        let (memo_entries, memo_bytes) = inner.memo_bounds;
        Host {
            inner: Arc::new(HostInner {
                compiler: inner.compiler.clone(),
                runtime: Arc::clone(&inner.runtime),
                cache: Arc::clone(&inner.cache),
                trace: Arc::clone(&inner.trace),
                services: Arc::new(Services {
                    http: inner.services.http.clone(),
                    kernels: inner.services.kernels.clone(),
                    ..Services::default()
                }),
                base_key,
                passes: inner.passes.clone(),
                memo: Arc::new(crate::memo::MemoTable::new(memo_entries, memo_bytes)),
                compile_limits: inner.compile_limits,
                memo_bounds: inner.memo_bounds,
            }),
        }
    }

    /// Everything the cache key of `graph` is made of.
    pub fn key_ingredients(&self, graph: &Graph) -> KeyIngredients {
        KeyIngredients {
            graph: graph.hash.to_hex().to_string(),
            ..self.inner.base_key.clone()
        }
    }

    /// The cache key of `graph` on this host.
    pub fn cache_key(&self, graph: &Graph) -> CacheKey {
        self.inner.base_key.key_for(graph.hash.to_hex().as_str())
    }

    /// Serves DB effects from the PostgreSQL at `url` (`postgres://user@host:port/db`).
    /// Graphs still reach only the tables their footprint declares.
    pub async fn connect_database(&self, url: &str) -> Result<(), Error> {
        self.connect_database_with(url, DatabaseLimits::default())
            .await
    }

    /// [`Host::connect_database`] with other bounds on what one query may return.
    pub async fn connect_database_with(
        &self,
        url: &str,
        limits: DatabaseLimits,
    ) -> Result<(), Error> {
        let config = effects::db::DbConfig {
            max_rows: limits.max_rows,
            max_bytes: limits.max_bytes,
            ..effects::db::DbConfig::new(url)
        };
        let runner = effects::db::PostgresRunner::connect(config)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::DriverUnavailable,
                    Stage::Setup,
                    format!("cannot use the database: {e}"),
                    "check the database URL and that the server is up",
                )
                .for_setting(Setting::Database)
                .caused_by(e)
            })?;
        self.set_database(Arc::new(runner))
    }

    /// Serves DB effects from an embedded, in-memory SQLite database, first running the
    /// operator's `init` script (`CREATE TABLE …; INSERT …`). Graphs still reach only the
    /// tables their footprint declares, with the same checks as on PostgreSQL.
    pub fn use_embedded_database(&self, init: Option<&str>) -> Result<(), Error> {
        let runner = effects::SqliteRunner::open(init).map_err(|e| {
            Error::new(
                ErrorKind::DriverUnavailable,
                Stage::Setup,
                format!("cannot open the embedded database: {e}"),
                "check the embedded database's setup script",
            )
            .for_setting(Setting::DatabaseInit)
        })?;
        self.set_database(Arc::new(runner))
    }

    fn set_database(&self, service: Arc<dyn effects::Database>) -> Result<(), Error> {
        self.inner.services.db.set(service).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                Stage::Setup,
                "this host already has a database",
                "connect once per host",
            )
        })
    }

    /// Log lines `log` nodes wrote, oldest first: `(level, message)`.
    pub fn log_lines(&self) -> Vec<(String, String)> {
        self.inner
            .services
            .log
            .lock()
            .map(|log| log.clone())
            .unwrap_or_default()
    }

    /// What serves `kernel` nodes on this host, and why: `native (<why no GPU>)`, or
    /// `cuda: <device name> (…)` when built with the `cuda` feature on a machine with a CUDA
    /// device, the driver and cuBLAS.
    pub fn kernel_backend(&self) -> String {
        self.inner.services.kernels.backend().to_string()
    }

    /// The lifecycle transitions recorded so far, in order.
    pub fn trace(&self) -> Vec<Transition> {
        self.inner.trace.transitions()
    }

    /// The hot-replacement events of every deployment recorded so far, in order (each one a
    /// step of `specs/HotReplacement.tla`; bounded by [`HostConfig::trace_capacity`]).
    pub fn deploy_trace(&self) -> Vec<crate::DeployEvent> {
        self.inner.trace.deploy_events()
    }

    /// Transitions that did not fit in the trace ([`HostConfig::trace_capacity`]).
    pub fn trace_dropped(&self) -> u64 {
        self.inner.trace.dropped()
    }

    /// Transitions refused as illegal (empty unless graphjit has a bug).
    pub fn illegal_transitions(&self) -> Vec<String> {
        self.inner.trace.illegal()
    }

    /// Cache counters since this host started.
    pub fn cache_counters(&self) -> CacheCounters {
        self.inner.cache.counters()
    }

    /// The memo of `cached` nodes: entries, bytes, hits and misses since this host started.
    pub fn memo_stats(&self) -> crate::memo::MemoStats {
        self.inner.memo.stats()
    }

    /// Entries and bytes in the memory cache.
    pub fn memory_cache_usage(&self) -> (usize, usize) {
        self.inner.cache.memory_usage()
    }

    /// Entries and bytes in the disk cache (`None` without one).
    pub fn disk_cache_stats(&self) -> Option<Result<DiskStats, DiskCacheError>> {
        self.inner.cache.disk().map(|disk| disk.stats())
    }

    /// Empties the memory cache and the disk cache; returns the disk entries removed.
    pub fn clear_cache(&self) -> Result<u64, DiskCacheError> {
        self.inner.cache.clear_memory();
        match self.inner.cache.disk() {
            Some(disk) => disk.clear(),
            None => Ok(0),
        }
    }
}
