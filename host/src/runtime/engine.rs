//! The one wasmtime `Engine` and the thread that advances its epoch.
//!
//! Invariants: every setting that makes runs bounded and deterministic is set here and nowhere
//! else (fuel, epochs, relaxed SIMD off, pooled and bounded memories; NaN is canonical at the
//! boundary, see below);
//! the ticker thread never touches a store and ends when the [`EpochTicker`] is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::config::{MAX_MEMORIES_PER_RUN, MAX_TABLES_PER_RUN, RuntimeConfig};
use super::error::{RuntimeError, describe};

/// Core instances one component may hold in the pool (a Rust guest has one).
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 4;

/// Bytes of each pooled table kept resident between runs.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Bytes at the start of each pooled linear memory reset by memset instead of madvise, so
/// the next run does not fault them in again: a guest's 256 KiB stack (compile/rustc.rs), its
/// data and its first heap pages. Measured on the `instantiate_call` graph: stack 256 KiB and
/// 384 KiB resident, 12.6 µs; 256 KiB resident (the stack's top not covered), 21.4 µs; 512
/// KiB, 13.2 µs (the memset grows).
const MEMORY_KEEP_RESIDENT: usize = 384 << 10;

/// Builds the engine for `config`.
pub(crate) fn build(config: &RuntimeConfig) -> Result<wasmtime::Engine, RuntimeError> {
    let instances = config.max_instances.max(1);
    let max_memory = usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX);
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(MAX_CORE_INSTANCES_PER_COMPONENT))
        .total_memories(instances)
        .total_tables(instances.saturating_mul(2))
        .total_stacks(instances)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(u32::try_from(MAX_MEMORIES_PER_RUN).unwrap_or(1))
        .max_tables_per_component(u32::try_from(MAX_TABLES_PER_RUN).unwrap_or(1))
        .max_memory_size(max_memory);

    // A run's table is reset by memset instead of madvise: measured on the tiny graph of the
    // `instantiate_call` benchmark, 24 → 20 µs per instantiate + call (the linear memory and
    // the fiber stack kept resident the same way measured no better: a guest's stack is at the
    // top of its first MiB, beyond any small resident prefix).
    pool.table_keep_resident(TABLE_KEEP_RESIDENT);
    pool.linear_memory_keep_resident(MEMORY_KEEP_RESIDENT);

    let mut wasm = wasmtime::Config::new();
    wasm.consume_fuel(true)
        .epoch_interruption(true)
        // NaN payloads are made canonical where they can be observed: every value leaving the
        // guest is canonicalized by graphjit-value's encoder, and no op exposes a float's bits.
        // Canonicalizing after every float instruction as well only costs time in hot loops.
        .cranelift_nan_canonicalization(false)
        .wasm_relaxed_simd(false)
        .wasm_component_model(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    wasmtime::Engine::new(&wasm).map_err(|e| RuntimeError::Engine {
        message: describe(&e),
    })
}

/// Increments the engine's epoch every tick, on its own thread.
#[derive(Debug)]
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(
        engine: wasmtime::Engine,
        tick: Duration,
    ) -> Result<EpochTicker, RuntimeError> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_seen = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("graphjit-epoch".to_owned())
            .spawn(move || {
                while !stop_seen.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| RuntimeError::Engine {
                message: format!("cannot start the epoch ticker: {e}"),
            })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ignored = thread.join();
        }
    }
}
