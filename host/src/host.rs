//! The library's entry point: a [`Host`] parses graphs, compiles them to components and runs
//! them (or evaluates them with the reference interpreter).
//!
//! Invariants: `host` is glue — it owns no semantics of its own; it maps every stage's typed
//! error into [`Error`] with the failing node's user-facing id, and never panics.

use std::collections::BTreeMap;
use std::hash::Hash as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graphjit_value::Value;

use crate::cache::{
    Artifact, Blake3Hasher, Built, Cache, CacheConfig, CacheCounters, CacheKey, CacheSource,
    DiskCacheError, DiskStats, KeyIngredients, Lookup, StageTimes,
};
use crate::codegen;
use crate::compile::{self, Compiler};
use crate::deploy;
use crate::effects::{self, Dispatcher, EffectHandler, Services};
use crate::error::{Error, ErrorKind, Stage};
use crate::eval;
use crate::footprint::{EgressPolicy, Footprint};
use crate::graph::{self, NodeId};
use crate::interface::Interface;
use crate::lifecycle::{Lifecycle, Running, State, TraceLog, Transition};
use crate::passes::{self, PassConfig, PassReport};
use crate::runtime::{self, Runtime};
use crate::values;

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

/// A parsed, validated graph.
#[derive(Clone, Debug)]
pub struct Graph {
    pub(crate) inner: graph::Graph,
    /// blake3 of the canonical form, computed once at parse time.
    hash: blake3::Hash,
    /// The footprint, shared by every run's effect dispatcher.
    footprint: Arc<Footprint>,
}

impl Graph {
    /// Parses and validates a graph from JSON (format v1, `docs/graph-format.md`).
    pub fn from_json(bytes: &[u8]) -> Result<Graph, Error> {
        let inner = graph::parse(bytes, &graph::Limits::default())?;
        let hash = inner.canonical_hash();
        let footprint = Arc::new(inner.footprint.clone());
        Ok(Graph {
            inner,
            hash,
            footprint,
        })
    }

    /// The graph's identity: blake3 of its canonical form, hex.
    pub fn hash(&self) -> String {
        self.hash.to_hex().to_string()
    }

    /// The same graph with another IR (what the optimizer made of it): identity, inputs,
    /// outputs and footprint unchanged.
    pub(crate) fn with_inner(&self, inner: graph::Graph) -> Graph {
        Graph {
            inner,
            hash: self.hash,
            footprint: Arc::clone(&self.footprint),
        }
    }

    /// The generated Rust for this graph after `passes` (what a host with that configuration
    /// compiles; deterministic).
    pub fn rust_source_with(&self, passes: &PassConfig) -> Result<String, Error> {
        let (inner, _) = passes::optimize(&self.inner, passes).map_err(|e| {
            Error::new(
                ErrorKind::OptimizationFailed,
                Stage::Optimize,
                e,
                "report this as a bug; --passes none avoids the optimizer",
            )
        })?;
        Ok(codegen::generate(&inner).source)
    }

    /// The generated Rust for this graph as written, before any pass (deterministic: same
    /// graph, same text).
    pub fn rust_source(&self) -> String {
        codegen::generate(&self.inner).source
    }

    /// Whether the graph has effect nodes (DB, HTTP, kernels, log).
    pub fn has_effects(&self) -> bool {
        self.inner.nodes.iter().any(|n| n.op.is_effect())
    }

    /// Output names, in the order results are returned.
    pub fn output_names(&self) -> &[String] {
        &self.inner.outputs
    }

    /// Input names with their types (as text), sorted by name.
    pub fn inputs(&self) -> Vec<(String, String)> {
        self.inner
            .inputs
            .iter()
            .map(|&id| {
                let node = self.inner.node(id);
                (node.name.clone(), node.ty.to_string())
            })
            .collect()
    }

    /// The caller's limits `base`, lowered by the run limits written in the graph: each limit
    /// the graph declares is the smaller of the two, so a graph can ask for less than the
    /// caller allows, never for more.
    pub fn limits_over(&self, base: RunLimits) -> RunLimits {
        let lower =
            |declared: Option<u64>, allowed: u64| declared.map_or(allowed, |d| d.min(allowed));
        RunLimits {
            fuel: lower(self.inner.limits.fuel, base.fuel),
            memory_bytes: lower(self.inner.limits.memory_bytes, base.memory_bytes),
            ..base
        }
    }

    /// Parses command-line text for each named input by its declared type.
    pub fn parse_inputs(
        &self,
        pairs: &[(String, String)],
    ) -> Result<BTreeMap<String, Value>, Error> {
        let mut out = BTreeMap::new();
        for (name, text) in pairs {
            let node = self.input_node(name)?;
            let value = values::parse_input(text, &self.inner.node(node).ty).map_err(|m| {
                input_error(m, "pass a value of the input's type").at_node(Some(name.clone()))
            })?;
            out.insert(name.clone(), value);
        }
        Ok(out)
    }

    fn input_node(&self, name: &str) -> Result<NodeId, Error> {
        self.inner
            .inputs
            .iter()
            .copied()
            .find(|&id| self.inner.node(id).name == name)
            .ok_or_else(|| {
                let known: Vec<String> = self
                    .inputs()
                    .into_iter()
                    .map(|(n, t)| format!("{n}: {t}"))
                    .collect();
                input_error(
                    format!("the graph has no input {name:?}"),
                    format!("inputs are: {}", known.join(", ")),
                )
            })
    }

    /// The inputs in boundary order: given values checked against their types, defaults for
    /// the rest; a missing input without default is an error.
    pub(crate) fn bind_inputs(&self, given: &BTreeMap<String, Value>) -> Result<Vec<Value>, Error> {
        for name in given.keys() {
            self.input_node(name)?;
        }
        self.inner
            .inputs
            .iter()
            .map(|&id| {
                let node = self.inner.node(id);
                let value = match (given.get(&node.name), &node.op) {
                    (Some(v), _) => v.clone(),
                    (None, graph::Op::Input { default: Some(c) }) => const_value(c),
                    (None, _) => {
                        return Err(input_error(
                            format!(
                                "input {:?} ({}) has no value and no default",
                                node.name, node.ty
                            ),
                            format!("pass --input {}=VALUE", node.name),
                        ));
                    }
                };
                if !values::has_type(&value, &node.ty) {
                    return Err(input_error(
                        format!("input {:?} must be {}", node.name, node.ty),
                        "pass a value of the declared type",
                    ));
                }
                Ok(value)
            })
            .collect()
    }

    /// The user-facing id of a node index reported by a guest or by eval.
    pub(crate) fn node_name(&self, index: u32) -> Option<String> {
        self.inner.nodes.get(index as usize).map(|n| n.name.clone())
    }
}

pub(crate) fn const_value(c: &graph::Const) -> Value {
    match c {
        graph::Const::Bool(b) => Value::Bool(*b),
        graph::Const::I64(i) => Value::I64(*i),
        graph::Const::F64(x) => Value::F64(*x),
        graph::Const::Str(s) => Value::Str(s.clone()),
        graph::Const::Tensor(t) => Value::Tensor(t.clone()),
    }
}

fn input_error(message: impl Into<String>, remediation: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, Stage::Input, message, remediation)
}

/// What a run produced.
#[derive(Clone, Debug)]
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
}

/// How a graph was made ready, and what it cost.
#[derive(Clone, Debug, serde::Serialize)]
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
    graph: Graph,
    artifact: Arc<Artifact>,
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

/// How a [`Host`] is set up.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// Cache bounds and the disk cache directory.
    pub cache: CacheConfig,
    /// How many lifecycle transitions the trace keeps ([`Host::trace`]).
    pub trace_capacity: usize,
    /// What HTTP effects may reach, beyond each graph's footprint.
    pub http: HttpSettings,
    /// The optimizer's passes (part of every cache key).
    pub passes: PassConfig,
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
        }
    }
}

/// What `graphjit explain` shows about a graph, without compiling it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Explanation {
    /// The graph's display name.
    pub name: Option<String>,
    /// The canonical hash (the graph's identity).
    pub hash: String,
    /// Nodes in all regions.
    pub nodes: usize,
    /// Inputs as `(name, type)`.
    pub inputs: Vec<(String, String)>,
    /// Output names.
    pub outputs: Vec<String>,
    /// Effect nodes by op (`db_query`, `http`, …).
    pub effects: BTreeMap<String, usize>,
    /// The footprint: tables read, tables written, HTTP rules, kernels.
    pub footprint: BTreeMap<String, Vec<String>>,
    /// The cache key on this host.
    pub key: String,
    /// What the key is made of.
    pub ingredients: KeyIngredients,
    /// Where a run would get the compiled graph now, and why.
    pub cache: CacheSource,
    /// The assumptions its execution rests on (seed 5.3), with the TLA+ properties that
    /// depend on each.
    pub assumptions: Vec<crate::assumptions::Assumption>,
    /// The pass pipeline and what each pass changed.
    pub passes: Vec<PassReport>,
    /// Nodes after the passes.
    pub nodes_optimized: usize,
    /// The rounds of the optimized graph (the `batch` pass): the ids of the effects each
    /// round sends as one host call, in canonical order.
    pub rounds: Vec<Vec<String>>,
    /// Where each `matmul` runs (the `place` pass), with the cost model's estimates.
    pub placements: Vec<crate::passes::Placement>,
    /// The memory plan of the optimized graph: the most tensor bytes live at once, each
    /// buffer freed after its last reader (strings not counted).
    pub planned_peak_bytes: u64,
    /// The graph as written, one line per node in canonical order (`id = op(args) : type`).
    pub before: Vec<String>,
    /// The graph after the passes, the same way.
    pub after: Vec<String>,
}

/// Every round of `graph`, region by region (outer first), as node ids.
fn effect_rounds(graph: &graph::Graph) -> Vec<Vec<String>> {
    let mut rounds = Vec::new();
    let mut regions = vec![&graph.root];
    while let Some(region) = regions.pop() {
        for round in graph.rounds(region) {
            rounds.push(
                region.nodes[round]
                    .iter()
                    .map(|&id| graph.node(id).name.clone())
                    .collect(),
            );
        }
        for &id in region.nodes.iter().rev() {
            regions.extend(graph.node(id).op.regions().into_iter().rev());
        }
    }
    rounds
}

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
    compiler: Compiler,
    runtime: Runtime,
    pub(crate) cache: Cache,
    trace: Arc<TraceLog>,
    /// The drivers effects are served by.
    services: Arc<Services>,
    /// Every key ingredient but the graph, fixed for this host.
    base_key: KeyIngredients,
    pub(crate) deployments: Mutex<BTreeMap<String, deploy::Deployment>>,
    /// The pass pipeline every compile runs.
    passes: PassConfig,
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
        let runtime = Runtime::new(&runtime::RuntimeConfig::default())
            .map_err(|e| runtime_error(e, None, Stage::Load))?;
        let cache = Cache::new(&config.cache).map_err(|e| {
            let remediation = match &e {
                DiskCacheError::Insecure { .. } => {
                    "use a directory only you can write (chmod go-w), or another --cache-dir"
                }
                DiskCacheError::Io { .. } => "use a writable --cache-dir",
            };
            Error::new(
                ErrorKind::CacheUnavailable,
                Stage::Setup,
                e.to_string(),
                remediation,
            )
        })?;
        let base_key = base_key(&compiler, &runtime, &config.passes);
        let tls = effects::tls_config(&config.http.extra_roots).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                Stage::Run,
                format!("the HTTP settings' TLS roots: {e}"),
                "pass DER-encoded CA certificates in HttpSettings::extra_roots",
            )
        })?;
        Ok(Host {
            inner: Arc::new(HostInner {
                compiler,
                runtime,
                cache,
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
                deployments: Mutex::new(BTreeMap::new()),
                passes: config.passes.clone(),
            }),
        })
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

    /// What the host knows about `graph` before compiling it: its shape, effects, footprint,
    /// cache key and where a run would find it, and the assumptions it rests on.
    pub fn explain(&self, graph: &Graph) -> Explanation {
        let mut effects: BTreeMap<String, usize> = BTreeMap::new();
        for node in graph.inner.nodes.iter().filter(|n| n.op.is_effect()) {
            *effects.entry(node.op.name().to_owned()).or_default() += 1;
        }
        let interfaces: std::collections::BTreeSet<Interface> = graph
            .inner
            .nodes
            .iter()
            .filter_map(|n| n.op.interface())
            .collect();
        let fp = &graph.footprint;
        let mut footprint = BTreeMap::new();
        footprint.insert(
            "db.read".to_owned(),
            fp.db.read.iter().map(ToString::to_string).collect(),
        );
        footprint.insert(
            "db.write".to_owned(),
            fp.db.write.iter().map(ToString::to_string).collect(),
        );
        footprint.insert(
            "http".to_owned(),
            fp.http.iter().map(|r| format!("{r:?}")).collect(),
        );
        footprint.insert("kernels".to_owned(), fp.kernels.iter().cloned().collect());
        let ingredients = self.key_ingredients(graph);
        let key = ingredients.key();
        let (nodes_optimized, pass_reports, rounds, placements, planned_peak_bytes, after) =
            match self.optimize(graph) {
                Ok((optimized, reports)) => {
                    let placed = reports.iter().any(|r| r.pass == crate::passes::Pass::Place);
                    let mut placements = crate::passes::placements(&optimized.inner);
                    if !placed {
                        // Without the pass every matmul stays in the guest; the estimates still
                        // show what it would have chosen.
                        placements
                            .iter_mut()
                            .for_each(|p| p.choice = "guest (place is off)");
                    }
                    (
                        optimized.inner.nodes.len(),
                        reports,
                        effect_rounds(&optimized.inner),
                        placements,
                        crate::codegen::plan::peak_bytes(&optimized.inner),
                        optimized.inner.listing(),
                    )
                }
                Err(_) => (
                    graph.inner.nodes.len(),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    0,
                    Vec::new(),
                ),
            };
        Explanation {
            passes: pass_reports,
            nodes_optimized,
            rounds,
            placements,
            planned_peak_bytes,
            before: graph.inner.listing(),
            after,
            name: graph.inner.name.clone(),
            hash: graph.hash(),
            nodes: graph.inner.nodes.len(),
            inputs: graph.inputs(),
            outputs: graph.inner.outputs.clone(),
            effects,
            footprint,
            key: key.to_hex(),
            ingredients,
            cache: self.inner.cache.peek(&key),
            assumptions: crate::assumptions::for_effects(&interfaces),
        }
    }

    /// The graph after this host's pass pipeline, with what each pass did.
    pub fn optimize(&self, graph: &Graph) -> Result<(Graph, Vec<PassReport>), Error> {
        passes::optimize(&graph.inner, &self.inner.passes)
            .map(|(inner, reports)| (graph.with_inner(inner), reports))
            .map_err(|e| {
                Error::new(
                    ErrorKind::OptimizationFailed,
                    Stage::Optimize,
                    e,
                    "report this as a bug; --passes none avoids the optimizer",
                )
            })
    }

    /// Graphviz of `graph` after this host's passes.
    pub fn dot(&self, graph: &Graph) -> Result<String, Error> {
        Ok(self.optimize(graph)?.0.inner.to_dot())
    }

    /// The Rust this host generates for `graph` (after its passes).
    pub fn rust_source(&self, graph: &Graph) -> Result<String, Error> {
        Ok(self.optimize(graph)?.0.rust_source())
    }

    /// The compiler this host runs (for the benchmarks' rustc floor, `testing::baselines`).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn compiler(&self) -> &Compiler {
        &self.inner.compiler
    }

    /// Compiles a graph (after this host's passes) to a component (wasm bytes), without
    /// caching or loading it.
    pub fn compile_wasm(&self, graph: &Graph) -> Result<Vec<u8>, Error> {
        let (optimized, _) = self.optimize(graph)?;
        let generated = codegen::generate(&optimized.inner);
        Ok(self.rustc(&optimized, &generated)?.wasm)
    }

    fn rustc(
        &self,
        graph: &Graph,
        generated: &codegen::GeneratedRust,
    ) -> Result<compile::Compiled, Error> {
        self.inner
            .compiler
            .compile(&generated.source, &compile::CompileOptions::default())
            .map_err(|e| {
                let node = compile_error_node(&e, generated).and_then(|id| graph.node_name(id.0));
                compile_error(e).at_node(node)
            })
    }

    /// Makes a graph ready to run: from the memory cache, else from the one compilation of
    /// its key in flight (which reads the disk cache or compiles). Blocks while compiling; in
    /// async code use [`Host::compile_async`].
    pub fn compile(&self, graph: &Graph) -> Result<CompiledGraph, Error> {
        let start = Instant::now();
        let key = self.cache_key(graph);
        let key_time = start.elapsed();
        let (built, coalesced) = self
            .inner
            .cache
            .get_or_build(key, || self.build(graph, key));
        let built = built?;
        Ok(CompiledGraph {
            graph: graph.clone(),
            stats: CompileStats {
                key: key.to_hex(),
                cache: built.source,
                reason: if coalesced {
                    format!("waited for a concurrent request's build ({})", built.reason)
                } else {
                    built.reason
                },
                coalesced,
                stages: if coalesced {
                    StageTimes::default()
                } else {
                    StageTimes {
                        key: key_time,
                        ..built.stages
                    }
                },
                total: start.elapsed(),
            },
            artifact: built.artifact,
        })
    }

    /// [`Host::compile`] on tokio's blocking pool, so that other tasks keep running.
    pub async fn compile_async(&self, graph: &Graph) -> Result<CompiledGraph, Error> {
        let host = self.clone();
        let graph = graph.clone();
        tokio::task::spawn_blocking(move || host.compile(&graph))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    Stage::Compile,
                    format!("the compile task ended abnormally: {e}"),
                    "report this as a bug",
                )
            })?
    }

    /// One build of `key`, walking the lifecycle: GraphReceived → Optimizing → Generating →
    /// Compiling → Ready, or → Failed.
    fn build(&self, graph: &Graph, key: CacheKey) -> Result<Built, Error> {
        let inner = &self.inner;
        let lifecycle = Arc::new(Lifecycle::new(Arc::clone(&inner.trace)));
        let mut stages = StageTimes::default();
        let passes = &inner.passes;
        lifecycle.advance(State::Optimizing, &format!("passes: {passes}"));
        let start = Instant::now();
        let optimized = match passes::optimize(&graph.inner, passes) {
            Ok((optimized, _reports)) => graph.with_inner(optimized),
            Err(e) => {
                lifecycle.advance(State::Failed, &e);
                return Err(Error::new(
                    ErrorKind::OptimizationFailed,
                    Stage::Optimize,
                    e,
                    "report this as a bug; --passes none avoids the optimizer",
                ));
            }
        };
        stages.optimize = start.elapsed();
        lifecycle.advance(State::Generating, "");
        let mut reason = "not in memory; no disk cache configured".to_owned();
        if let Some(disk) = inner.cache.disk() {
            let start = Instant::now();
            let found = disk.get(&key);
            stages.disk_read = start.elapsed();
            match found {
                Lookup::Hit(bytes) => {
                    let start = Instant::now();
                    let allowed = |i: Interface| i.allowed_by(&graph.footprint);
                    match inner.runtime.load_precompiled(&bytes, &allowed) {
                        Ok(loaded) => {
                            stages.load = start.elapsed();
                            lifecycle.advance(State::Compiling, "disk hit: generation skipped");
                            lifecycle.advance(State::Ready, "loaded from the disk cache");
                            return Ok(Built {
                                artifact: Arc::new(Artifact::new(
                                    key,
                                    loaded,
                                    lifecycle,
                                    optimized,
                                    self.effect_handler(graph),
                                )),
                                source: CacheSource::Disk,
                                reason: "found on disk, integrity checked".to_owned(),
                                stages,
                            });
                        }
                        Err(e) => {
                            inner.cache.note_discarded();
                            reason = format!("disk entry did not load ({e}); recompiled");
                        }
                    }
                }
                Lookup::Absent => reason = "not in memory or on disk".to_owned(),
                Lookup::Discarded(why) => {
                    inner.cache.note_discarded();
                    reason = format!("disk entry discarded ({why}); recompiled");
                }
            }
        }
        let fail = |e: Error| {
            lifecycle.advance(State::Failed, &e.message);
            e
        };
        let start = Instant::now();
        let generated = codegen::generate(&optimized.inner);
        stages.codegen = start.elapsed();
        lifecycle.advance(State::Compiling, "");
        let compiled = self.rustc(&optimized, &generated).map_err(fail)?;
        stages.rustc = compiled.rustc_time;
        let start = Instant::now();
        let loaded = inner
            .runtime
            .load(&compiled.wasm, &|i: Interface| {
                i.allowed_by(&graph.footprint)
            })
            .map_err(|e| fail(runtime_error(e, Some(&optimized), Stage::Load)))?;
        stages.load = start.elapsed();
        lifecycle.advance(State::Ready, "compiled");
        if let Some(disk) = inner.cache.disk() {
            let start = Instant::now();
            let written = inner
                .runtime
                .serialize(&loaded)
                .map_err(|e| e.to_string())
                .and_then(|bytes| disk.put(&key, &bytes).map_err(|e| e.to_string()));
            stages.disk_write = start.elapsed();
            if let Err(e) = written {
                // The graph is ready; only the next process pays for the failed write.
                tracing::warn!(key = %key, error = e, "could not write the disk cache");
                reason = format!("{reason}; disk cache write failed: {e}");
            }
        }
        Ok(Built {
            artifact: Arc::new(Artifact::new(
                key,
                loaded,
                lifecycle,
                optimized,
                self.effect_handler(graph),
            )),
            source: CacheSource::Miss,
            reason,
            stages,
        })
    }

    /// The effect handler of a graph's artifacts: its footprint in front of this host's
    /// drivers, or `None` when it has no effect node.
    fn effect_handler(&self, graph: &Graph) -> Option<Arc<dyn EffectHandler>> {
        graph.has_effects().then(|| {
            Arc::new(Dispatcher::new(
                Arc::clone(&graph.footprint),
                Arc::clone(&self.inner.services),
            )) as Arc<dyn EffectHandler>
        })
    }

    /// Runs a compiled graph in a fresh instance under `limits`. If the handle's artifact was
    /// evicted meanwhile, the graph is made ready again through the cache first.
    pub async fn run(
        &self,
        compiled: &CompiledGraph,
        inputs: &BTreeMap<String, Value>,
        limits: RunLimits,
    ) -> Result<RunOutput, Error> {
        let graph = &compiled.graph;
        let bound = graph.bind_inputs(inputs)?;
        let mut encoded = Vec::with_capacity(graphjit_value::encoded_len(&bound));
        graphjit_value::encode(&bound, &mut encoded);
        let (artifact, running) = self.begin(compiled).await?;
        self.run_on(graph, &artifact, running, &encoded, limits)
            .await
    }

    /// Starts a request on `compiled`'s artifact, or on a fresh one if it was retired.
    async fn begin(&self, compiled: &CompiledGraph) -> Result<(Arc<Artifact>, Running), Error> {
        if let Ok(running) = compiled.artifact.lifecycle.begin() {
            return Ok((Arc::clone(&compiled.artifact), running));
        }
        // Retired or failed: what the cache gives now. A fresh artifact can itself be retired
        // by cache pressure before we start on it; a few attempts settle that.
        for _ in 0..3 {
            let fresh = self.compile_async(&compiled.graph).await?;
            if let Ok(running) = fresh.artifact.lifecycle.begin() {
                return Ok((fresh.artifact, running));
            }
        }
        Err(Error::new(
            ErrorKind::Internal,
            Stage::Run,
            "no ready artifact could be obtained for the graph",
            "raise the memory cache bounds; report this as a bug if it persists",
        ))
    }

    /// Runs one request on a started artifact; `running` ends the request when dropped.
    pub(crate) async fn run_on(
        &self,
        graph: &Graph,
        artifact: &Artifact,
        mut running: Running,
        encoded: &[u8],
        limits: RunLimits,
    ) -> Result<RunOutput, Error> {
        let run_limits = runtime::RunLimits {
            fuel: limits.fuel,
            memory_bytes: limits.memory_bytes,
            deadline: limits.deadline,
            max_effect_calls: limits.max_effect_calls,
            max_effect_bytes: limits.max_effect_bytes,
        };
        let outcome = self
            .inner
            .runtime
            .run(
                &artifact.loaded,
                encoded,
                &run_limits,
                artifact.effects.clone(),
            )
            .await;
        if let Err(runtime::RuntimeError::Instantiate { .. }) = &outcome {
            running.artifact_failed();
        }
        drop(running);
        // Node indices from the guest are those of the graph it was generated from.
        let generated_from = &artifact.graph;
        let outcome = outcome.map_err(|e| runtime_error(e, Some(generated_from), Stage::Run))?;
        let values = outcome
            .decode()
            .map_err(|e| runtime_error(e, Some(generated_from), Stage::Run))?;
        Ok(RunOutput {
            outputs: name_outputs(graph, values)?,
            fuel_used: outcome.fuel_used,
            run_time: outcome.run_time,
            context: artifact.lifecycle.context(),
            peak_memory_bytes: outcome.peak_memory_bytes,
            effect_calls: outcome.effect_calls,
            effect_rounds: outcome.effect_rounds,
        })
    }

    /// Serves DB effects from the PostgreSQL at `url` (`postgres://user@host:port/db`).
    /// Graphs still reach only the tables their footprint declares.
    pub async fn connect_database(&self, url: &str) -> Result<(), Error> {
        let runner = effects::db::PostgresRunner::connect(effects::db::DbConfig::new(url))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::DriverUnavailable,
                    Stage::Setup,
                    format!("cannot use the database: {e}"),
                    "check --database-url and that the server is up",
                )
            })?;
        self.set_database(effects::DbService::Postgres(runner))
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
                "check the --db-init script",
            )
        })?;
        self.set_database(effects::DbService::Sqlite(runner))
    }

    fn set_database(&self, service: effects::DbService) -> Result<(), Error> {
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

    /// Evaluates a graph with the reference interpreter (no compilation).
    pub fn eval(
        graph: &Graph,
        inputs: &BTreeMap<String, Value>,
        limits: RunLimits,
    ) -> Result<RunOutput, Error> {
        let bound = graph.bind_inputs(inputs)?;
        let start = Instant::now();
        let eval_limits = eval::EvalLimits {
            fuel: limits.fuel,
            memory_bytes: limits.memory_bytes,
            deadline: eval::Deadline::after(start, limits.deadline),
        };
        let outcome = eval::eval(&graph.inner, &bound, &eval_limits)
            .map_err(|e| eval_error(e, graph, limits.memory_bytes))?;
        Ok(RunOutput {
            outputs: name_outputs(graph, outcome.outputs)?,
            fuel_used: outcome.fuel_used,
            run_time: start.elapsed(),
            context: 0,
            peak_memory_bytes: 0,
            effect_calls: 0,
            effect_rounds: 0,
        })
    }

    /// Evaluates a graph with the reference interpreter, serving its effect nodes through this
    /// host's drivers and the graph's footprint, exactly as a compiled run's host imports are.
    /// Runs on tokio's blocking pool (the interpreter is synchronous; each effect call waits).
    pub async fn eval_effects(
        &self,
        graph: &Graph,
        inputs: &BTreeMap<String, Value>,
        limits: RunLimits,
    ) -> Result<RunOutput, Error> {
        let bound = graph.bind_inputs(inputs)?;
        let dispatcher = Dispatcher::new(
            Arc::clone(&graph.footprint),
            Arc::clone(&self.inner.services),
        );
        let graph = graph.clone();
        let handle = tokio::runtime::Handle::current();
        let task = tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let deadline = eval::Deadline::after(start, limits.deadline);
            let eval_limits = eval::EvalLimits {
                fuel: limits.fuel,
                memory_bytes: limits.memory_bytes,
                deadline,
            };
            // The same caps, counted the same way, as a compiled run's host imports.
            let mut meter =
                runtime::EffectMeter::new(limits.max_effect_calls, limits.max_effect_bytes);
            let mut serve = |call: effects::EffectCall| {
                meter.admit_one()?;
                // `eval` reads the clock around every call, and a call that ends past the
                // deadline ends the evaluation; this bounds the wait.
                let remaining = deadline.map_or(limits.deadline, |d| {
                    d.at.saturating_duration_since(Instant::now())
                });
                if remaining.is_zero() {
                    return Err(effects::EffectError::Timeout(
                        "the run's deadline passed".into(),
                    ));
                }
                let answer = handle.block_on(async {
                    tokio::time::timeout(remaining, dispatcher.call(call, remaining))
                        .await
                        .unwrap_or_else(|_| {
                            Err(effects::EffectError::Timeout(
                                "the run's deadline passed".into(),
                            ))
                        })
                })?;
                meter.account(answer.bytes())?;
                Ok(answer)
            };
            let outcome = eval::eval_with(&graph.inner, &bound, &eval_limits, &mut serve)
                .map_err(|e| eval_error(e, &graph, limits.memory_bytes))?;
            let calls = meter.calls();
            Ok::<_, Error>(RunOutput {
                outputs: name_outputs(&graph, outcome.outputs)?,
                fuel_used: outcome.fuel_used,
                run_time: start.elapsed(),
                context: 0,
                peak_memory_bytes: 0,
                effect_calls: calls,
                effect_rounds: calls,
            })
        });
        task.await.map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                Stage::Eval,
                format!("the evaluation task ended abnormally: {e}"),
                "report this as a bug",
            )
        })?
    }
}

/// Every key ingredient that does not depend on the graph.
fn base_key(compiler: &Compiler, runtime: &Runtime, passes: &PassConfig) -> KeyIngredients {
    let mut engine = Blake3Hasher::default();
    runtime
        .engine()
        .precompile_compatibility_hash()
        .hash(&mut engine);
    KeyIngredients {
        graph: String::new(),
        passes: format!("passes-v1:{passes}"),
        target: compile::GUEST_TARGET.to_owned(),
        target_features: compile::CODEGEN_FLAGS.join(" "),
        opt_level: compile::CompileOptions::default()
            .opt_level
            .as_flag()
            .to_owned(),
        rustc: compiler.rustc_version().to_owned(),
        engine: engine.hex(),
        template: compiler.template_hash().to_owned(),
        codegen: crate::cache::CODEGEN_HASH.to_owned(),
    }
}

fn name_outputs(graph: &Graph, values: Vec<Value>) -> Result<Vec<(String, Value)>, Error> {
    if values.len() != graph.inner.outputs.len() {
        return Err(Error::new(
            ErrorKind::Internal,
            Stage::Run,
            format!(
                "{} outputs returned, {} expected",
                values.len(),
                graph.inner.outputs.len()
            ),
            "report this as a bug",
        ));
    }
    Ok(graph
        .inner
        .outputs
        .iter()
        .cloned()
        .zip(values.into_iter().map(Value::canonicalized))
        .collect())
}

fn compile_error_node(
    e: &compile::RustCompileError,
    generated: &codegen::GeneratedRust,
) -> Option<NodeId> {
    let line = e.first_line()?;
    generated
        .line_nodes
        .get(line.checked_sub(1)? as usize)
        .copied()
        .flatten()
}

fn compile_error(e: compile::RustCompileError) -> Error {
    let kind = if e.is_toolchain() {
        ErrorKind::Toolchain
    } else {
        ErrorKind::RustCompileError
    };
    let remediation = e.remediation();
    Error::new(kind, Stage::Compile, e.to_string(), remediation)
}

fn runtime_error(e: runtime::RuntimeError, graph: Option<&Graph>, stage: Stage) -> Error {
    use runtime::RuntimeError as R;
    let node = |n: u32| graph.and_then(|g| g.node_name(n));
    let message = e.to_string();
    let (kind, node, remediation) = match e {
        R::Fuel { budget, used } => (
            ErrorKind::FuelExhausted { budget, used },
            None,
            "raise --fuel, or bound the graph's loops more tightly".to_string(),
        ),
        R::Memory { limit, requested } => (
            ErrorKind::MemoryExceeded { limit, requested },
            None,
            "raise --memory, or use smaller tensors".to_string(),
        ),
        R::OutOfMemory { node: n, bytes } => (
            ErrorKind::MemoryExceeded {
                limit: 0,
                requested: bytes,
            },
            node(n),
            "raise --memory, or use smaller tensors".to_string(),
        ),
        R::Deadline { limit } => (
            ErrorKind::DeadlineExceeded {
                limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            },
            None,
            "raise the deadline, or do less work per run".to_string(),
        ),
        R::Overflow { node: n } => (
            ErrorKind::Overflow,
            node(n),
            "check the operands' ranges; i64 arithmetic is checked".to_string(),
        ),
        R::DivisionByZero { node: n } => (
            ErrorKind::DivisionByZero,
            node(n),
            "guard the division with an `if` on the divisor".to_string(),
        ),
        R::InvalidValue { node: n, .. } => (
            ErrorKind::InvalidValue,
            node(n),
            "check the value's range before converting".to_string(),
        ),
        R::ImportDenied { ref import } => (
            ErrorKind::ImportDenied {
                import: import.clone(),
            },
            None,
            "the component may import only graphjit interfaces its footprint allows".to_string(),
        ),
        R::Effect { node: n, ref error } => effect_error(error, node(n)),
        other => (
            if matches!(other, R::Trap { .. }) {
                ErrorKind::Trap
            } else {
                ErrorKind::Internal
            },
            None,
            "report this as a bug".to_string(),
        ),
    };
    Error::new(kind, stage, message, remediation).at_node(node)
}

/// The kind, node and remediation of a failed effect call.
pub(crate) fn effect_error(
    error: &effects::EffectError,
    node: Option<String>,
) -> (ErrorKind, Option<String>, String) {
    use effects::EffectError as E;
    let remediation = match error {
        E::FootprintDenied(_) => {
            "declare what the graph needs in its footprint (the message says what), or remove the call"
        }
        E::Limit(_) => "raise the run's effect caps, or make fewer or smaller calls",
        E::Connection(_) => "check that the server is up and reachable (--database-url)",
        E::Timeout(_) => "raise --deadline-ms, or make the call cheaper",
        E::Constraint(_) => "the data violates a constraint: check the values written",
        E::Syntax(_) => "fix the SQL (or the names it uses)",
        E::Permission(_) => {
            "the server refused the privilege; a graph without a write set runs read-only"
        }
        E::HttpStatus(_) => "the server answered with an error status",
        E::BodyTooLarge(_) => "ask for less data",
        E::BadAnswer(_) => "make the node's \"type\" match what the effect returns",
        E::Other(_) => "see the message",
    };
    let kind = match error {
        E::FootprintDenied(_) => ErrorKind::FootprintDenied,
        other => ErrorKind::EffectFailed {
            class: other.kind_name().to_owned(),
        },
    };
    (kind, node, remediation.to_owned())
}

fn eval_error(e: eval::EvalError, graph: &Graph, memory_limit: u64) -> Error {
    use eval::EvalError as E;
    let message = e.to_string();
    let node = |n: NodeId| graph.node_name(n.0);
    if let E::Effect { node: n, error } = &e {
        let (kind, node, remediation) = effect_error(error, node(*n));
        return Error::new(kind, Stage::Eval, message, remediation).at_node(node);
    }
    let (kind, node, remediation) = match e {
        E::Fuel { budget, used } => (
            ErrorKind::FuelExhausted { budget, used },
            None,
            "raise --fuel",
        ),
        E::Deadline { limit } => (
            ErrorKind::DeadlineExceeded {
                limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            },
            None,
            "raise --deadline-ms, or make the graph cheaper",
        ),
        E::OutOfMemory { node: n, bytes } => (
            ErrorKind::MemoryExceeded {
                limit: memory_limit,
                requested: bytes,
            },
            node(n),
            "raise --memory, or use smaller tensors",
        ),
        E::Overflow { node: n } => (
            ErrorKind::Overflow,
            node(n),
            "check the operands' ranges; i64 arithmetic is checked",
        ),
        E::DivisionByZero { node: n } => (
            ErrorKind::DivisionByZero,
            node(n),
            "guard the division with an `if` on the divisor",
        ),
        E::InvalidValue { node: n, .. } => (
            ErrorKind::InvalidValue,
            node(n),
            "check the value's range before converting",
        ),
        E::BadInput(_) => (
            ErrorKind::InvalidInput,
            None,
            "pass values of the declared input types",
        ),
        E::Internal(_) | E::Effect { .. } => (ErrorKind::Internal, None, "report this as a bug"),
    };
    Error::new(kind, Stage::Eval, message, remediation).at_node(node)
}
