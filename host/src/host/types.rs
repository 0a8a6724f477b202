//! The values an embedder hands the host and gets back: limits, configuration, outputs,
//! compiled handles.

use std::sync::Arc;
use std::time::Duration;

use graphjit_value::Value;

use super::default_disk_dir;
use super::validated::Graph;
use crate::cache::{Artifact, CacheConfig, CacheSource, StageTimes};
use crate::lifecycle::State;
use crate::passes::PassConfig;

/// Limits for one run. Defaults are documented on [`RunLimits::default`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunLimits {
    /// Wasm fuel (≈ one unit per instruction); for `eval`, one unit per node evaluated.
    pub fuel: u64,
    /// Bytes of guest linear memory (and the per-allocation cap for `eval`).
    pub memory_bytes: u64,
    /// Wall-clock limit of the run, time in effect calls included.
    pub deadline: Duration,
    /// The most effect calls the run may make.
    pub max_effect_calls: u32,
    /// The most bytes effect answers may bring into the run, all calls together.
    pub max_effect_bytes: u64,
}

impl Default for RunLimits {
    /// 10^9 fuel (about a second of guest work), 256 MiB memory, 10 s wall clock.
    fn default() -> Self {
        RunLimits {
            fuel: 1_000_000_000,
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(10),
            max_effect_calls: 1_000,
            max_effect_bytes: 64 << 20,
        }
    }
}

/// What a run produced.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RunOutput {
    /// `(output name, value)`, in the graph's output order.
    pub outputs: Vec<(String, Value)>,
    /// Fuel the run consumed.
    pub fuel_used: u64,
    /// Wall time of instantiation and the call (of the interpretation, for `eval`).
    pub run_time: Duration,
    /// The lifecycle context (compiled artifact) that served the run; 0 for `eval`.
    pub context: u64,
    /// The guest's linear-memory high-water mark in bytes (0 for `eval`).
    pub peak_memory_bytes: u64,
    /// Effect calls the run made.
    pub effect_calls: u32,
    /// Host calls those effects took: a round of independent effects (the `batch` pass) is
    /// one, a single effect is one. `eval` issues every effect on its own.
    pub effect_rounds: u32,
    /// `cached` nodes answered from the host's memo (their bodies skipped, effects included).
    pub memo_hits: u32,
    /// `cached` nodes whose body ran (nothing held, or expired).
    pub memo_misses: u32,
}

/// How a graph was made ready, and what it cost.
#[derive(Clone, Debug, serde::Serialize)]
#[non_exhaustive]
pub struct CompileStats {
    /// The cache key, 64 hex digits.
    pub key: String,
    /// Where the ready graph came from.
    pub cache: CacheSource,
    /// Why it hit or missed.
    pub reason: String,
    /// Whether this request waited for another request's compilation of the same key.
    pub coalesced: bool,
    /// Time per stage (zero for stages that did not run for this request).
    pub stages: StageTimes,
    /// Wall time of the whole request.
    pub total: Duration,
}

/// A graph compiled to a component and loaded into the engine, ready to instantiate.
#[derive(Clone, Debug)]
pub struct CompiledGraph {
    pub(super) graph: Graph,
    pub(super) artifact: Arc<Artifact>,
    /// How it was made ready.
    pub stats: CompileStats,
}

impl CompiledGraph {
    /// The graph this was compiled from.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The lifecycle context of the artifact behind this handle.
    pub fn context(&self) -> u64 {
        self.artifact.lifecycle.context()
    }

    /// The artifact's current lifecycle state.
    pub fn state(&self) -> State {
        self.artifact.lifecycle.state()
    }

    pub(crate) fn artifact(&self) -> &Arc<Artifact> {
        &self.artifact
    }
}

/// How much one PostgreSQL query may return ([`Host::connect_database_with`](super::Host::connect_database_with));
/// a query past either bound fails with an effect `limit` error, never a partial answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatabaseLimits {
    /// Rows (default 10,000).
    pub max_rows: usize,
    /// Bytes of cell data (default 16 MiB).
    pub max_bytes: usize,
}

impl Default for DatabaseLimits {
    fn default() -> Self {
        DatabaseLimits {
            max_rows: crate::effects::db::DEFAULT_MAX_ROWS,
            max_bytes: crate::effects::db::DEFAULT_MAX_BYTES,
        }
    }
}

/// How a [`Host`](super::Host) is set up.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// Cache bounds and the disk cache directory.
    pub cache: CacheConfig,
    /// How many lifecycle transitions the trace keeps ([`Host::trace`](super::Host::trace)).
    pub trace_capacity: usize,
    /// What HTTP effects may reach, beyond each graph's footprint.
    pub http: HttpSettings,
    /// The optimizer's passes (part of every cache key).
    pub passes: PassConfig,
    /// The most entries the memo of `cached` nodes keeps (0: it keeps none).
    pub memo_entries: usize,
    /// The most bytes the memo keeps: values plus 64 per entry.
    pub memo_bytes: u64,
    /// The sandbox every rustc runs in (wall and CPU time, memory, file size): the most any
    /// compile gets ([`Host::compile_within`](super::Host::compile_within) may lower it).
    pub compile_limits: crate::CompileLimits,
    /// Runs instantiated at once: the engine's pool of instance slots (each reserves address
    /// space for `max_memory` and a fiber stack). A run that finds every slot in use fails
    /// with `resource_exceeded` before any of its code runs.
    pub max_instances: u32,
}

/// The host's HTTP egress policy and limits (every graph's footprint applies on top).
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Allow loopback addresses (127.0.0.0/8, ::1): for tests against a local server.
    pub allow_loopback: bool,
    /// Allow private addresses (RFC 1918, fc00::/7).
    pub allow_private: bool,
    /// The most body bytes one response may carry.
    pub max_body_bytes: u64,
    /// Limit for opening a connection.
    pub connect_timeout: Duration,
    /// Limit for one request, redirects included (the run's deadline may be shorter).
    pub total_timeout: Duration,
    /// CA certificates (DER) trusted for `https` besides Mozilla's roots, which are built in
    /// (the machine's certificate store is not consulted): a private CA, a test server's.
    pub extra_roots: Vec<Vec<u8>>,
}

impl Default for HttpSettings {
    /// Public addresses only; 16 MiB bodies; 5 s to connect, 30 s in all; Mozilla's roots.
    fn default() -> Self {
        HttpSettings {
            allow_loopback: false,
            allow_private: false,
            max_body_bytes: 16 << 20,
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(30),
            extra_roots: Vec::new(),
        }
    }
}

impl Default for HostConfig {
    /// L1 in memory with [`CacheConfig`]'s defaults; L2 under the user's cache directory
    /// (`$GRAPHJIT_CACHE_DIR`, else `$XDG_CACHE_HOME/graphjit`, else `~/.cache/graphjit`, then
    /// `components/`), bounded to 1 GiB.
    fn default() -> Self {
        HostConfig {
            cache: CacheConfig {
                disk_dir: Some(default_disk_dir()),
                ..CacheConfig::default()
            },
            trace_capacity: 100_000,
            http: HttpSettings::default(),
            passes: PassConfig::default(),
            memo_entries: crate::memo::DEFAULT_MEMO_ENTRIES,
            memo_bytes: crate::memo::DEFAULT_MEMO_BYTES,
            compile_limits: crate::CompileLimits::default(),
            max_instances: crate::runtime::DEFAULT_MAX_INSTANCES,
        }
    }
}
