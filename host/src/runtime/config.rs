//! Engine-wide settings and per-run limits, with their defaults.
//!
//! Invariants: every limit is a documented constant here, with the risk it guards against; no
//! other file of `runtime` invents a number.

use std::time::Duration;

/// Default fuel per run (≈ one unit per wasm instruction, ~1 s of guest work).
///
/// Guards against a guest that loops for too long (graphs' loops are bounded, but bounds can
/// be large): fuel makes the cut deterministic, the same on every machine.
pub(crate) const DEFAULT_FUEL: u64 = 1_000_000_000;

/// Default linear-memory limit per run (256 MiB).
///
/// Guards the host's memory against a guest (or inputs) that allocates without bound. Must
/// exceed a guest's initial memory (~1.1 MiB: 1 MiB stack plus data); a lower limit is refused
/// at instantiation as [`super::RuntimeError::Memory`], not a trap.
pub(crate) const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;

/// Default wall-clock deadline per run.
///
/// Guards against what fuel does not measure: time spent in the host (lowering large inputs)
/// and a machine so loaded that the fuel budget takes far longer than expected.
pub(crate) const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// Default largest memory any instance may have: the pooling allocator's slot size (1 GiB).
///
/// Guards the host's address space and resident memory: a run's memory limit above this is
/// clamped to it. wasm32 could address 4 GiB.
pub(crate) const DEFAULT_MAX_MEMORY_BYTES: u64 = 1 << 30;

/// Default number of instances that can be alive at once (pooling allocator slots).
///
/// Guards the host's address space (each slot reserves its memory's address range up front)
/// and bounds concurrency: when all slots are busy, a run fails to instantiate instead of
/// allocating more.
pub(crate) const DEFAULT_MAX_INSTANCES: u32 = 64;

/// Default period of the epoch ticker, the granularity of deadlines.
///
/// Shorter ticks notice a passed deadline sooner but wake the ticker thread (and every running
/// guest, which checks the clock and yields to tokio) more often.
pub(crate) const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(5);

/// Fuel between two yields of a running guest back to tokio (1–2 ms of guest work here: a
/// loop burns about 8e9 fuel a second; 1e6 measured no better for a neighbour's latency in
/// the serve bench).
///
/// Guards the async executor against a guest that would otherwise hold a worker thread for its
/// whole run, starving other tasks (other guests, effects).
pub(crate) const DEFAULT_FUEL_YIELD_INTERVAL: u64 = 10_000_000;

/// Tables, instances and memories one store may create (a guest is one core instance with one
/// memory and one table; the margin covers adapter shims).
///
/// Guards against a component that instantiates many modules to multiply its memory allowance.
pub(crate) const MAX_CORE_INSTANCES_PER_RUN: usize = 8;
/// See [`MAX_CORE_INSTANCES_PER_RUN`].
pub(crate) const MAX_MEMORIES_PER_RUN: usize = 2;
/// See [`MAX_CORE_INSTANCES_PER_RUN`].
pub(crate) const MAX_TABLES_PER_RUN: usize = 4;

/// Most elements a table may grow to.
///
/// Guards host memory against `table.grow` loops; Rust guests use one small funcref table.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Engine-wide settings, fixed when the [`super::Runtime`] is created.
#[derive(Clone, Debug)]
pub(crate) struct RuntimeConfig {
    /// Largest memory an instance may have (pool slot size); run limits above it are clamped.
    pub(crate) max_memory_bytes: u64,
    /// Instances alive at once.
    pub(crate) max_instances: u32,
    /// Epoch ticker period (deadline granularity).
    pub(crate) epoch_tick: Duration,
    /// Fuel between two yields to tokio.
    pub(crate) fuel_yield_interval: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            max_instances: DEFAULT_MAX_INSTANCES,
            epoch_tick: DEFAULT_EPOCH_TICK,
            fuel_yield_interval: DEFAULT_FUEL_YIELD_INTERVAL,
        }
    }
}

/// Limits for one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RunLimits {
    /// Fuel budget (instantiation and the call together).
    pub(crate) fuel: u64,
    /// Linear-memory limit in bytes (clamped to [`RuntimeConfig::max_memory_bytes`]).
    pub(crate) memory_bytes: u64,
    /// Wall-clock deadline, from the start of instantiation; covers time in effect calls.
    pub(crate) deadline: Duration,
    /// The most effect calls the run may make.
    pub(crate) max_effect_calls: u32,
    /// The most bytes effect answers may carry into the run, all calls together.
    pub(crate) max_effect_bytes: u64,
}

/// Default cap on effect calls per run.
pub(crate) const DEFAULT_MAX_EFFECT_CALLS: u32 = 1_000;
/// Default cap on bytes effect answers bring into one run.
pub(crate) const DEFAULT_MAX_EFFECT_BYTES: u64 = 64 << 20;

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            fuel: DEFAULT_FUEL,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            deadline: DEFAULT_DEADLINE,
            max_effect_calls: DEFAULT_MAX_EFFECT_CALLS,
            max_effect_bytes: DEFAULT_MAX_EFFECT_BYTES,
        }
    }
}
