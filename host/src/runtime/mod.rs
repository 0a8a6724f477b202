//! runtime: runs wasm32 components in wasmtime under fuel, a memory limit and a deadline.
//!
//! Invariants:
//! - `runtime` knows nothing of graphs, codegen or rustc: it takes component bytes and encoded
//!   inputs and returns encoded outputs or a [`RuntimeError`].
//! - No guest code runs before its imports are checked against the allow-list
//!   ([`imports::TYPES_INTERFACE`] only; no WASI): a denied import fails [`Runtime::load`].
//! - Every run gets a fresh store: fuel, memory limit and deadline are per run, and no state
//!   survives from one run to the next.
//! - The host never panics on what a guest does: every trap and every guest error is a
//!   [`RuntimeError`] variant.
//! - One `unsafe` block: loading a precompiled component ([`Runtime::load_precompiled`]),
//!   with the seed's five lines; everything else is safe (the bindings' code is wasmtime's).

pub(crate) mod bindings;
mod config;
pub(crate) mod engine;
mod error;
mod host_imports;
mod imports;
mod limiter;

use std::time::{Duration, Instant};

pub(crate) use config::{DEFAULT_MAX_INSTANCES, RunLimits, RuntimeConfig};
pub(crate) use error::RuntimeError;
#[cfg(any(test, feature = "testing"))]
pub(crate) use imports::TYPES_INTERFACE;

use bindings::GraphPre;
use error::{Phase, classify, describe};
use limiter::{EffectState, MemoryLimiter, RunState};

use std::sync::Arc;

use crate::effects::{EffectBudget, EffectHandler};

/// One engine (Cranelift, the instance pool, the epoch ticker) for the whole host.
pub(crate) struct Runtime {
    engine: wasmtime::Engine,
    config: RuntimeConfig,
    /// Every host import, defined once; each component is checked against its graph's
    /// allowances before it is linked.
    linker: wasmtime::component::Linker<RunState>,
    // Dropped after the engine's users; stops the ticker thread.
    _ticker: engine::EpochTicker,
}

/// A component compiled by Cranelift, its imports checked, ready to instantiate.
#[derive(Clone)]
pub(crate) struct LoadedGraph {
    pre: GraphPre<RunState>,
    /// How long Cranelift (or deserializing) took.
    pub(crate) compile_time: Duration,
    /// Size of the compiled code image in bytes.
    pub(crate) code_bytes: usize,
}

impl std::fmt::Debug for LoadedGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedGraph")
            .field("compile_time", &self.compile_time)
            .field("code_bytes", &self.code_bytes)
            .finish_non_exhaustive()
    }
}

/// What a successful run returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RunOutcome {
    /// The outputs, in graphjit-value's encoding.
    pub(crate) output: Vec<u8>,
    /// Fuel consumed by instantiation and the call.
    pub(crate) fuel_used: u64,
    /// The guest's linear-memory high-water mark in bytes.
    pub(crate) peak_memory_bytes: u64,
    /// Effect calls the run made.
    pub(crate) effect_calls: u32,
    /// Host calls those effects took (a round of several effects is one).
    pub(crate) effect_rounds: u32,
    /// `cached` nodes served from the memo, and those that ran their body.
    pub(crate) memo_hits: u32,
    pub(crate) memo_misses: u32,
    /// Wall time of instantiation and the call.
    pub(crate) run_time: Duration,
}

impl RunOutcome {
    /// Decodes the outputs; bytes that do not decode are [`RuntimeError::BadOutput`].
    pub(crate) fn decode(&self) -> Result<Vec<graphjit_value::Value>, RuntimeError> {
        graphjit_value::decode(&self.output).map_err(|e| RuntimeError::BadOutput {
            message: e.to_string(),
        })
    }
}

impl Runtime {
    /// Creates the engine and starts its epoch ticker.
    pub(crate) fn new(config: &RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let engine = engine::build(config)?;
        let ticker = engine::EpochTicker::start(engine.clone(), config.epoch_tick)?;
        let mut linker = wasmtime::component::Linker::<RunState>::new(&engine);
        let setup = |e: wasmtime::Error| RuntimeError::Engine {
            message: describe(&e),
        };
        linker.instance(imports::TYPES_INTERFACE).map_err(setup)?;
        host_imports::add_to_linker(&mut linker).map_err(setup)?;
        Ok(Runtime {
            engine,
            config: config.clone(),
            linker,
            _ticker: ticker,
        })
    }

    /// Compiles `wasm` with Cranelift, refuses it if it imports anything not allowed, and
    /// prepares its instantiation. Runs none of its code.
    pub(crate) fn load(
        &self,
        wasm: &[u8],
        allowed: &dyn Fn(crate::interface::Interface) -> bool,
    ) -> Result<LoadedGraph, RuntimeError> {
        let start = Instant::now();
        let component = wasmtime::component::Component::new(&self.engine, wasm).map_err(|e| {
            RuntimeError::InvalidComponent {
                message: describe(&e),
            }
        })?;
        self.prepare(component, start, allowed)
    }

    /// Loads a component that [`Runtime::serialize`] wrote, skipping Cranelift. The bytes must
    /// come from a source that vouches for them (the disk cache checks the blake3 recorded at
    /// write time); their imports are checked again like any component's.
    pub(crate) fn load_precompiled(
        &self,
        bytes: &[u8],
        allowed: &dyn Fn(crate::interface::Interface) -> bool,
    ) -> Result<LoadedGraph, RuntimeError> {
        let start = Instant::now();
        // The disk cache returns a payload only when its blake3 matches the one recorded when
        // this host wrote it, under a key that includes the engine's precompile-compatibility
        // hash; wasmtime checks its own header (version, target, engine flags) again; the cache
        // directory is checked to be ours and not writable by group or others. A host that
        // cannot trust its own uid's files runs without L2 (`disk_dir: None`).
        #[expect(
            unsafe_code,
            reason = "wasmtime requires unsafe to load precompiled code"
        )]
        // ASSUMPTION: `bytes` are what `Component::serialize` wrote on an engine with this configuration.
        // DEPENDS ON: the L2 blake3 and key checks, wasmtime's header check, a private cache directory.
        // TLA+ PROPERTY: Cache!NoStaleArtifact (a key change never loads the old artifact).
        // FAILURE MODE: a crafted artifact with a matching hash, written under our uid, runs native code.
        // MITIGATION: the directory check, the hash check, the key in the header; `disk_dir: None` opts out.
        // SAFETY: the five lines above: these are bytes this engine serialized, vouched for by L2.
        let component = unsafe { wasmtime::component::Component::deserialize(&self.engine, bytes) }
            .map_err(|e| RuntimeError::InvalidComponent {
                message: describe(&e),
            })?;
        self.prepare(component, start, allowed)
    }

    /// The compiled form of a loaded graph, for the disk cache.
    pub(crate) fn serialize(&self, graph: &LoadedGraph) -> Result<Vec<u8>, RuntimeError> {
        graph
            .pre
            .instance_pre()
            .component()
            .serialize()
            .map_err(|e| RuntimeError::Engine {
                message: describe(&e),
            })
    }

    fn prepare(
        &self,
        component: wasmtime::component::Component,
        start: Instant,
        allowed: &dyn Fn(crate::interface::Interface) -> bool,
    ) -> Result<LoadedGraph, RuntimeError> {
        let compile_time = start.elapsed();
        imports::check(&component, &self.engine, allowed)?;
        let image = component.image_range();
        let code_bytes = (image.end as usize).saturating_sub(image.start as usize);
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(GraphPre::new)
            .map_err(|e| RuntimeError::Instantiate {
                message: describe(&e),
            })?;
        Ok(LoadedGraph {
            pre,
            compile_time,
            code_bytes,
        })
    }

    /// Instantiates `graph` in a fresh store under `limits` and calls its `run` export.
    pub(crate) async fn run(
        &self,
        graph: &LoadedGraph,
        input: &[u8],
        limits: &RunLimits,
        effects: Option<Arc<dyn EffectHandler>>,
        memo: Option<crate::memo::RunMemo>,
    ) -> Result<RunOutcome, RuntimeError> {
        let memory_limit = limits.memory_bytes.min(self.config.max_memory_bytes);
        let start = Instant::now();
        let deadline = start
            .checked_add(limits.deadline)
            .unwrap_or(start + Duration::from_secs(86_400));
        let state = RunState {
            limiter: MemoryLimiter::new(memory_limit),
            deadline,
            deadline_hit: false,
            effects: EffectState {
                handler: effects,
                rounds: 0,
                budget: EffectBudget::new(
                    limits.max_effect_calls,
                    limits.max_effect_bytes,
                    Some(deadline),
                ),
            },
            memo,
        };
        let mut store = wasmtime::Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        let setup = |e: wasmtime::Error| RuntimeError::Engine {
            message: describe(&e),
        };
        store.set_fuel(limits.fuel).map_err(setup)?;
        store
            .fuel_async_yield_interval(Some(self.config.fuel_yield_interval))
            .map_err(setup)?;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut context| {
            let state = context.data_mut();
            if Instant::now() >= state.deadline {
                state.deadline_hit = true;
                return Ok(wasmtime::UpdateDeadline::Interrupt);
            }
            // Not yet: check again next tick, and let other tasks run meanwhile.
            Ok(wasmtime::UpdateDeadline::Yield(1))
        });

        let fail = |store: &wasmtime::Store<RunState>, e: &wasmtime::Error, phase: Phase| {
            classify(e, store.data(), limits.fuel, limits.deadline, phase)
        };
        let instance = match graph.pre.instantiate_async(&mut store).await {
            Ok(instance) => instance,
            Err(e) => return Err(fail(&store, &e, Phase::Instantiate)),
        };
        let result = instance.call_run(&mut store, input).await;
        let run_time = start.elapsed();
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        match result {
            Ok(Ok(output)) => Ok(RunOutcome {
                output,
                fuel_used,
                peak_memory_bytes: store.data().limiter.peak(),
                effect_calls: store.data().effects.budget.calls(),
                effect_rounds: store.data().effects.rounds,
                memo_hits: store.data().memo.as_ref().map_or(0, |m| m.hits),
                memo_misses: store.data().memo.as_ref().map_or(0, |m| m.misses),
                run_time,
            }),
            Ok(Err(guest_error)) => Err(guest_error.into()),
            Err(e) => Err(fail(&store, &e, Phase::Call)),
        }
    }

    /// The engine (for callers that precompile or inspect components).
    pub(crate) fn engine(&self) -> &wasmtime::Engine {
        &self.engine
    }
}

#[cfg(test)]
mod tests;

/// What running a component assumes (the assumption inventory, `crate::assumptions`).
pub(crate) const ASSUMPTIONS: &[crate::assumptions::Assumption] = &[
    crate::assumptions::Assumption {
        component: "wasmtime",
        assumption: "wasmtime isolates a component's memory and enforces fuel, the memory \
                     limiter and epoch interruption; a component reaches the host only through \
                     the imports it was linked with",
        failure_mode: "a guest escapes the sandbox or runs unbounded",
        mitigation: "imports checked against the footprint before instantiation; fuel, memory \
                     and deadline per run; wasmtime pinned to an exact version",
        properties: &[
            "Footprint!NoUndeclaredEffect",
            "FuelTermination!AllRunsEnd",
            "FuelTermination!FuelNeverNegative",
        ],
    },
    crate::assumptions::Assumption {
        component: "wasmtime",
        assumption: "Component::deserialize of bytes this engine serialized yields the same \
                     component (the disk cache's one unsafe call)",
        failure_mode: "a tampered cache file runs native code",
        mitigation: "private cache directory, blake3 checked before loading, key in the header",
        properties: &["CompileCache!NoStaleArtifact"],
    },
];
