//! The build pipeline: passes → codegen → rustc → Cranelift, behind the cache and its
//! lifecycle.

use std::hash::Hash as _;
use std::sync::Arc;
use std::time::Instant;

use super::Host;
use super::errors::{compile_error, compile_error_node, optimize, runtime_error};
use super::types::{CompileStats, CompiledGraph};
use super::validated::Graph;
use crate::cache::{
    Artifact, Blake3Hasher, Built, CacheKey, CacheSource, KeyIngredients, Lookup, StageTimes,
};
use crate::codegen;
use crate::compile::{self, CompileLimits, Compiler};
use crate::error::{Error, ErrorKind, Stage};
use crate::graph::{self};
use crate::interface::Interface;
use crate::lifecycle::{Lifecycle, State};
use crate::passes::PassConfig;
use crate::runtime::Runtime;

impl Host {
    /// The compiler this host runs (for the benchmarks' rustc floor, `testing::baselines`).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn compiler(&self) -> &Compiler {
        &self.inner.compiler
    }

    /// Compiles a graph (after this host's passes) to a component (wasm bytes), without
    /// caching or loading it.
    pub fn compile_wasm(&self, graph: &Graph) -> Result<Vec<u8>, Error> {
        let (optimized, _) = self.optimize(graph)?;
        let generated = generate(&optimized.inner)?;
        Ok(self
            .rustc(&optimized, &generated, self.inner.compile_limits)?
            .wasm)
    }

    fn rustc(
        &self,
        graph: &Graph,
        generated: &codegen::GeneratedRust,
        limits: CompileLimits,
    ) -> Result<compile::Compiled, Error> {
        let options = compile::CompileOptions {
            limits,
            ..compile::CompileOptions::default()
        };
        self.inner
            .compiler
            .compile(&generated.source, &options)
            .map_err(|e| {
                let node = compile_error_node(&e, generated).and_then(|id| graph.node_name(id.0));
                compile_error(e).at_node(node)
            })
    }

    /// Makes a graph ready to run: from the memory cache, else from the one compilation of
    /// its key in flight (which reads the disk cache or compiles). Blocks while compiling; in
    /// async code use [`Host::compile_async`].
    pub fn compile(&self, graph: &Graph) -> Result<CompiledGraph, Error> {
        self.compile_within(graph, self.inner.compile_limits)
    }

    /// [`Host::compile`] with rustc's sandbox limits lowered to `limits` (never raised past
    /// the host's [`HostConfig::compile_limits`](super::HostConfig::compile_limits)): a
    /// service gives each tenant its own. A compile that reaches a limit is
    /// `resource_exceeded`; it is not remembered, and a request under other limits compiles
    /// the graph afresh rather than share that failure.
    pub fn compile_within(
        &self,
        graph: &Graph,
        limits: CompileLimits,
    ) -> Result<CompiledGraph, Error> {
        graph.require_concrete()?;
        let limits = self.inner.compile_limits.lowered_by(limits);
        let start = Instant::now();
        let key = self.cache_key(graph);
        let key_time = start.elapsed();
        let (built, coalesced) = self
            .inner
            .cache
            .get_or_build(key, limits, || self.build(graph, key, limits));
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

    /// Whether [`Host::compile`] of `graph` would be answered from memory, without compiling
    /// or loading anything (a service's compile quota lets such requests through).
    pub fn is_compiled(&self, graph: &Graph) -> bool {
        self.inner.cache.in_memory(&self.cache_key(graph))
    }

    /// [`Host::compile`] on tokio's blocking pool, so that other tasks keep running.
    pub async fn compile_async(&self, graph: &Graph) -> Result<CompiledGraph, Error> {
        self.compile_within_async(graph, self.inner.compile_limits)
            .await
    }

    /// [`Host::compile_within`] on tokio's blocking pool.
    pub async fn compile_within_async(
        &self,
        graph: &Graph,
        limits: CompileLimits,
    ) -> Result<CompiledGraph, Error> {
        let host = self.clone();
        let graph = graph.clone();
        tokio::task::spawn_blocking(move || host.compile_within(&graph, limits))
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
    fn build(&self, graph: &Graph, key: CacheKey, limits: CompileLimits) -> Result<Built, Error> {
        let inner = &self.inner;
        let lifecycle = Arc::new(Lifecycle::new(Arc::clone(&inner.trace)));
        let mut stages = StageTimes::default();
        let passes = &inner.passes;
        lifecycle.advance(State::Optimizing, &format!("passes: {passes}"));
        let start = Instant::now();
        let optimized = match optimize(&graph.inner, passes) {
            Ok((optimized, _reports)) => graph.with_inner(optimized),
            Err(e) => {
                lifecycle.advance(State::Failed, &e.message);
                return Err(e);
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
                                    Arc::new(optimized.inner),
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
        let generated = generate(&optimized.inner).map_err(fail)?;
        stages.codegen = start.elapsed();
        lifecycle.advance(State::Compiling, "");
        let compiled = self.rustc(&optimized, &generated, limits).map_err(fail)?;
        stages.rustc = compiled.rustc_time;
        let start = Instant::now();
        let loaded = inner
            .runtime
            .load(&compiled.wasm, &|i: Interface| {
                i.allowed_by(&graph.footprint)
            })
            .map_err(|e| fail(runtime_error(e, Some(&optimized.inner), Stage::Load)))?;
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
                Arc::new(optimized.inner),
                self.effect_handler(graph),
            )),
            source: CacheSource::Miss,
            reason,
            stages,
        })
    }
}

/// Every key ingredient that does not depend on the graph.
pub(super) fn base_key(
    compiler: &Compiler,
    runtime: &Runtime,
    passes: &PassConfig,
) -> KeyIngredients {
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
        partition: String::new(),
    }
}

/// Generates a graph's Rust; codegen's typed failure becomes `codegen_failed` at its node.
pub(super) fn generate(graph: &graph::Graph) -> Result<codegen::GeneratedRust, Error> {
    codegen::generate(graph).map_err(|e| {
        Error::new(
            ErrorKind::CodegenFailed,
            Stage::Codegen,
            format!("codegen: {e}"),
            "report this as a bug with the graph; typing accepted a node codegen has no rule \
             for (--passes none shows whether a pass made it)",
        )
        .at_node(e.node.map(|n| graph.node(n).name.clone()))
    })
}
