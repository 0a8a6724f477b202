//! Per-store state: the memory limiter that remembers what it refused, and the deadline.
//!
//! Invariants: the limiter never lets a memory exceed its limit, and never refuses without
//! recording the request, so that a later trap can be reported as
//! [`super::RuntimeError::Memory`] with the limit and the requested size.

use std::sync::Arc;
use std::time::Instant;

use crate::effects::EffectHandler;

use super::config::{
    MAX_CORE_INSTANCES_PER_RUN, MAX_MEMORIES_PER_RUN, MAX_TABLE_ELEMENTS, MAX_TABLES_PER_RUN,
};

/// A `ResourceLimiter` for one run.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: u64,
    refused: Option<u64>,
    /// The largest size a memory was allowed to grow to: the run's peak linear memory.
    peak: u64,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> MemoryLimiter {
        MemoryLimiter {
            limit,
            refused: None,
            peak: 0,
        }
    }

    /// The guest's linear-memory high-water mark in bytes.
    pub(crate) fn peak(&self) -> u64 {
        self.peak
    }

    /// The limit in bytes.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// The largest memory size (bytes) that was refused, if any was.
    pub(crate) fn refused(&self) -> Option<u64> {
        self.refused
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let desired = u64::try_from(desired).unwrap_or(u64::MAX);
        let over_maximum =
            maximum.is_some_and(|max| u64::try_from(max).is_ok_and(|max| desired > max));
        if desired > self.limit || over_maximum {
            self.refused = Some(self.refused.map_or(desired, |r| r.max(desired)));
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES_PER_RUN
    }

    fn tables(&self) -> usize {
        MAX_TABLES_PER_RUN
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES_PER_RUN
    }
}

/// What a store carries for one run.
#[derive(Debug)]
pub(crate) struct RunState {
    pub(crate) limiter: MemoryLimiter,
    /// When the run must end.
    pub(crate) deadline: Instant,
    /// Set by the epoch callback (or an effect call) when the deadline ended the run.
    pub(crate) deadline_hit: bool,
    /// The run's effect handler and its accounting.
    pub(crate) effects: EffectState,
    /// The host's memo as this run sees it (`None`: every lookup misses, nothing is kept).
    pub(crate) memo: Option<crate::memo::RunMemo>,
}

/// Effect calls of one run: who serves them, and what they have used so far.
pub(crate) struct EffectState {
    pub(crate) handler: Option<Arc<dyn EffectHandler>>,
    /// Host calls made for effects: a single effect, or a whole round, counts one.
    pub(crate) rounds: u32,
    /// The call and byte caps and the deadline (the same budget `eval` keeps).
    pub(crate) budget: crate::effects::EffectBudget,
}

impl std::fmt::Debug for EffectState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EffectState")
            .field("handler", &self.handler.is_some())
            .field("rounds", &self.rounds)
            .field("budget", &self.budget)
            .finish()
    }
}
