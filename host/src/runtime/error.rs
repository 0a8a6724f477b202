//! Why a component could not be loaded or a run did not produce outputs.
//!
//! Invariants: every wasmtime error and every guest `run-error` ends as exactly one variant
//! here; nothing is flattened to a string where a kind exists; no path panics.

use std::time::Duration;

use super::bindings::graphjit::guest::types::RunError;
use super::host_imports;
use super::limiter::RunState;
use crate::effects::EffectError;

/// The one error type of `runtime`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RuntimeError {
    /// A limit: the run used its whole fuel budget (`used == budget` when it ran out).
    #[error("out of fuel: the budget was {budget}, {used} used")]
    Fuel {
        /// The run's fuel budget.
        budget: u64,
        /// Fuel consumed.
        used: u64,
    },
    /// A limit: the guest's memory would have grown beyond the limit (at instantiation, when
    /// the limit is below the guest's initial memory, or during the run).
    #[error("memory limit exceeded: limit {limit} bytes, {requested} bytes requested")]
    Memory {
        /// The memory limit in bytes (after clamping to the engine's maximum).
        limit: u64,
        /// The memory size the guest asked for.
        requested: u64,
    },
    /// A limit: the run passed its wall-clock deadline.
    #[error("deadline of {limit:?} exceeded")]
    Deadline {
        /// The deadline.
        limit: Duration,
    },
    /// A user error (the graph's data): checked i64 arithmetic overflowed at `node`.
    #[error("i64 overflow at node {node}")]
    Overflow {
        /// Node index in the graph's canonical order.
        node: u32,
    },
    /// A user error (the graph's data): integer division or remainder by zero at `node`.
    #[error("division by zero at node {node}")]
    DivisionByZero {
        /// Node index in the graph's canonical order.
        node: u32,
    },
    /// A user error (the graph's data): a value outside an operation's domain at `node`.
    #[error("invalid value at node {node}: {message}")]
    InvalidValue {
        /// Node index in the graph's canonical order.
        node: u32,
        /// What was wrong, from the guest.
        message: String,
    },
    /// A user error (the graph's data): a list read at `index`, outside its `len` elements.
    #[error("index {index} is out of range for a list of {len} at node {node}")]
    IndexOutOfRange {
        /// Node index in the graph's canonical order.
        node: u32,
        /// The position asked for.
        index: i64,
        /// The list's length.
        len: u64,
    },
    /// A user error (the graph's data): `unwrap` of an empty option at `node`.
    #[error("missing value (unwrap of none) at node {node}")]
    MissingValue {
        /// Node index in the graph's canonical order.
        node: u32,
    },
    /// A limit, detected by the guest: an allocation of `bytes` at `node` was refused within the
    /// memory limit (`node == u32::MAX`: decoding inputs or encoding outputs).
    #[error("out of memory at node {node}: {bytes} bytes could not be allocated")]
    OutOfMemory {
        /// Node index in the graph's canonical order, or `u32::MAX`.
        node: u32,
        /// Size of the refused allocation.
        bytes: u64,
    },
    /// A bug (host side): the guest could not decode its inputs or they had the wrong types.
    #[error("the guest rejected its inputs: {message}")]
    BadInput {
        /// The guest's explanation.
        message: String,
    },
    /// A bug (guest side) or a limit wasmtime enforces itself (stack overflow): any trap that
    /// is not fuel, memory or the deadline.
    #[error("the guest trapped: {message}")]
    Trap {
        /// wasmtime's description of the trap.
        message: String,
    },
    /// A user error: the component imports something that is not an allowed graphjit
    /// interface (a WASI interface, say). Nothing of it ran.
    #[error("the component imports `{import}`, which is not an allowed graphjit interface")]
    ImportDenied {
        /// The import's name, as the component declares it.
        import: String,
    },
    /// A user error: the bytes are not a valid component or Cranelift could not compile them.
    #[error("not a loadable component: {message}")]
    InvalidComponent {
        /// wasmtime's reason.
        message: String,
    },
    /// A limit: every instance slot of the engine's pool is in use by other runs
    /// (`HostConfig::max_instances`). Nothing of the graph ran; retrying later may succeed.
    #[error("the host's instance pool is full: {message}")]
    PoolExhausted {
        /// wasmtime's reason (which of the pool's resources ran out, and its limit).
        message: String,
    },
    /// A bug: instantiation failed for a reason other than memory or a full pool (a missing
    /// export).
    #[error("instantiation failed: {message}")]
    Instantiate {
        /// wasmtime's reason.
        message: String,
    },
    /// An effect node's call failed (the footprint refused it, the driver failed, or the
    /// answer did not fit the node's type).
    #[error("effect at node {node} failed: {error}")]
    Effect {
        /// Node index in the graph's canonical order.
        node: u32,
        /// Why.
        error: EffectError,
    },
    /// A bug (guest side): the output bytes do not decode as values.
    #[error("the guest's output does not decode: {message}")]
    BadOutput {
        /// The decoder's reason.
        message: String,
    },
    /// An environment error or a bug: the engine could not be created (address space for the
    /// instance pool, an invalid configuration).
    #[error("the wasmtime engine could not be created: {message}")]
    Engine {
        /// wasmtime's reason.
        message: String,
    },
}

impl From<RunError> for RuntimeError {
    fn from(error: RunError) -> RuntimeError {
        match error {
            RunError::Overflow(node) => RuntimeError::Overflow { node },
            RunError::DivisionByZero(node) => RuntimeError::DivisionByZero { node },
            RunError::OutOfMemory(oom) => RuntimeError::OutOfMemory {
                node: oom.node,
                bytes: oom.bytes,
            },
            RunError::InvalidValue(invalid) => RuntimeError::InvalidValue {
                node: invalid.node,
                message: invalid.message,
            },
            RunError::IndexOutOfRange(e) => RuntimeError::IndexOutOfRange {
                node: e.node,
                index: e.index,
                len: e.len,
            },
            RunError::MissingValue(node) => RuntimeError::MissingValue { node },
            RunError::BadInput(message) => RuntimeError::BadInput { message },
            RunError::Effect(failure) => RuntimeError::Effect {
                node: failure.node,
                error: host_imports::from_wit_error(failure.error),
            },
        }
    }
}

/// Where in a run a wasmtime error came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Instantiate,
    Call,
}

/// Maps a wasmtime error (a trap or another failure) to a [`RuntimeError`], using what the
/// store recorded: a refused memory growth, a deadline interruption.
pub(crate) fn classify(
    error: &wasmtime::Error,
    state: &RunState,
    fuel_budget: u64,
    deadline: Duration,
    phase: Phase,
) -> RuntimeError {
    let trap = error.downcast_ref::<wasmtime::Trap>().copied();
    if trap == Some(wasmtime::Trap::OutOfFuel) {
        return RuntimeError::Fuel {
            budget: fuel_budget,
            used: fuel_budget,
        };
    }
    if trap == Some(wasmtime::Trap::Interrupt) && state.deadline_hit {
        return RuntimeError::Deadline { limit: deadline };
    }
    if let Some(requested) = state.limiter.refused() {
        return RuntimeError::Memory {
            limit: state.limiter.limit(),
            requested,
        };
    }
    if let Some(full) = error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        return RuntimeError::PoolExhausted {
            message: full.to_string(),
        };
    }
    let message = describe(error);
    match (trap, phase) {
        (None, Phase::Instantiate) => RuntimeError::Instantiate { message },
        _ => RuntimeError::Trap { message },
    }
}

/// The error's root cause first (for a trap: what trapped), then the context around it (for a
/// trap: the wasm backtrace), one cause per line.
pub(crate) fn describe(error: &wasmtime::Error) -> String {
    let causes: Vec<String> = error.chain().map(|cause| cause.to_string()).collect();
    causes.into_iter().rev().collect::<Vec<_>>().join("\n")
}
