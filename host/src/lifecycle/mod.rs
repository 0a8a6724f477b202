//! lifecycle: the seed's JIT code lifecycle (section 9.1) as a checked state machine, and the
//! trace of every transition a host makes.
//!
//! ```text
//! [*] → GraphReceived → Optimizing → Generating → Compiling → Ready ⇄ Executing
//!                          │             │            │         │         │
//!                          └──────► Failed ◄──────────┘         ▼         └──► Failed
//!                                                            Evicted
//! ```
//!
//! One [`Lifecycle`] belongs to one compiled artifact (a JIT context): the component a cache
//! key names, loaded and ready to instantiate. Requests share it:
//! - `Ready → Executing` when the first request starts, `Executing → Ready` when the last one
//!   ends; requests in between make no transition (the state says "someone is running it").
//! - A request that ends in a typed runtime error (fuel, overflow, …) is that request's outcome;
//!   the code is still good, so it is `Executing → Ready` like any other. `Executing → Failed`
//!   is for an artifact that cannot serve at all (it no longer instantiates).
//! - Eviction (cache pressure, or a deployment replacing this version) first *retires* the
//!   artifact: it takes no new request. `Ready → Evicted` happens when it is retired and its
//!   last request has ended, never while a request runs.
//!
//! Invariants:
//! - Only the transitions in [`TRANSITIONS`] happen; [`Lifecycle`] refuses any other, and a
//!   refused one is a bug that is recorded (debug builds assert), never a silent state change.
//! - Every transition is recorded, in order, with its time since the host started, in the
//!   host's [`TraceLog`] (bounded) and as a `tracing` event.
//! - A retired or failed artifact never starts a request.
//! - A deployed artifact's hot-replacement events ([`DeployEvent`], `deployments.rs`) are
//!   recorded under the same locks, in the same order, as the transitions they go with: each
//!   one is a step of `specs/HotReplacement.tla`'s `Next` (checked by `specs/HotReplacementTrace.tla`).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

mod deployments;

use deployments::DeployRecord;
pub(crate) use deployments::DeployTag;
pub use deployments::{DeployEvent, DeployEventKind};

/// A state of the seed's lifecycle (9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum State {
    /// The graph arrived and was validated.
    GraphReceived,
    /// The pass pipeline runs.
    Optimizing,
    /// Rust is generated.
    Generating,
    /// rustc and Cranelift run (or the artifact is read from the disk cache).
    Compiling,
    /// Loaded and idle: it can take requests.
    Ready,
    /// At least one request runs.
    Executing,
    /// A stage failed, or the artifact cannot serve: final.
    Failed,
    /// Retired and drained: final.
    Evicted,
}

impl State {
    /// The name as the seed and the TLA+ specs write it.
    pub fn name(self) -> &'static str {
        match self {
            State::GraphReceived => "GraphReceived",
            State::Optimizing => "Optimizing",
            State::Generating => "Generating",
            State::Compiling => "Compiling",
            State::Ready => "Ready",
            State::Executing => "Executing",
            State::Failed => "Failed",
            State::Evicted => "Evicted",
        }
    }
}

/// The seed's transition relation, exactly: `(from, to)`; `None` is the initial pseudo-state.
pub const TRANSITIONS: &[(Option<State>, State)] = &[
    (None, State::GraphReceived),
    (Some(State::GraphReceived), State::Optimizing),
    (Some(State::Optimizing), State::Generating),
    (Some(State::Optimizing), State::Failed),
    (Some(State::Generating), State::Compiling),
    (Some(State::Generating), State::Failed),
    (Some(State::Compiling), State::Ready),
    (Some(State::Compiling), State::Failed),
    (Some(State::Ready), State::Executing),
    (Some(State::Executing), State::Ready),
    (Some(State::Executing), State::Failed),
    (Some(State::Ready), State::Evicted),
];

/// Whether the seed allows `from → to`.
pub fn is_legal(from: Option<State>, to: State) -> bool {
    TRANSITIONS.contains(&(from, to))
}

/// One recorded transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Transition {
    /// The artifact (JIT context) it belongs to, numbered from 1 per host.
    pub context: u64,
    /// The state left; `None` for the first transition.
    pub from: Option<State>,
    /// The state entered.
    pub to: State,
    /// Time since the host started.
    pub at: Duration,
    /// Why, where it is not obvious ("disk hit", "retired: replaced by deployment x").
    pub detail: String,
}

/// The host's record of transitions, in the order they happened, up to a bound.
#[derive(Debug)]
pub(crate) struct TraceLog {
    start: Instant,
    capacity: usize,
    inner: Mutex<TraceInner>,
}

#[derive(Debug, Default)]
struct TraceInner {
    next_context: u64,
    transitions: Vec<Transition>,
    dropped: u64,
    illegal: Vec<String>,
    /// Hot-replacement events, bounded by the same capacity (`deployments.rs`).
    deploy_events: Vec<DeployRecord>,
    next_request: u64,
}

impl TraceLog {
    /// A log keeping at most `capacity` transitions (the oldest are kept; later ones are
    /// counted as dropped).
    pub(crate) fn new(capacity: usize) -> TraceLog {
        TraceLog {
            start: Instant::now(),
            capacity,
            inner: Mutex::new(TraceInner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TraceInner> {
        // The inner state is a list; a panic elsewhere cannot leave it inconsistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next_context(&self) -> u64 {
        let mut inner = self.lock();
        inner.next_context += 1;
        inner.next_context
    }

    fn record(&self, context: u64, from: Option<State>, to: State, detail: &str) {
        let at = self.start.elapsed();
        tracing::debug!(
            context,
            from = from.map_or("[*]", State::name),
            to = to.name(),
            at_us = u64::try_from(at.as_micros()).unwrap_or(u64::MAX),
            detail,
            "lifecycle transition"
        );
        let mut inner = self.lock();
        if inner.transitions.len() < self.capacity {
            inner.transitions.push(Transition {
                context,
                from,
                to,
                at,
                detail: detail.to_owned(),
            });
        } else {
            inner.dropped += 1;
        }
    }

    fn record_illegal(&self, context: u64, from: Option<State>, to: State) {
        let message = format!(
            "context {context}: illegal transition {} -> {}",
            from.map_or("[*]", State::name),
            to.name()
        );
        tracing::error!("{message}");
        self.lock().illegal.push(message);
    }

    /// The transitions recorded so far.
    pub(crate) fn transitions(&self) -> Vec<Transition> {
        self.lock().transitions.clone()
    }

    /// Transitions refused as illegal (always empty unless there is a bug).
    pub(crate) fn illegal(&self) -> Vec<String> {
        self.lock().illegal.clone()
    }

    /// How many transitions did not fit.
    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

/// Why a request could not start on an artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// Retired (evicted or being evicted): take the current artifact instead.
    Retired,
    /// Failed: it cannot serve.
    Failed,
    /// Not yet Ready (a bug if it happens: artifacts are shared only once Ready).
    NotReady,
}

#[derive(Debug)]
struct Cell {
    state: State,
    in_flight: u64,
    retired: bool,
    /// The deployment version this artifact was swapped in as, if any (`deployments.rs`).
    deployed: Option<DeployTag>,
}

/// The lifecycle of one artifact. Shared by every request that runs it.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    context: u64,
    trace: Arc<TraceLog>,
    cell: Mutex<Cell>,
}

impl Lifecycle {
    /// A new context, in `GraphReceived`.
    pub(crate) fn new(trace: Arc<TraceLog>) -> Lifecycle {
        let context = trace.next_context();
        trace.record(context, None, State::GraphReceived, "");
        Lifecycle {
            context,
            trace,
            cell: Mutex::new(Cell {
                state: State::GraphReceived,
                in_flight: 0,
                retired: false,
                deployed: None,
            }),
        }
    }

    /// This context's number in the trace.
    pub(crate) fn context(&self) -> u64 {
        self.context
    }

    fn lock(&self) -> MutexGuard<'_, Cell> {
        // Every update below is a single assignment after its checks; a poisoned lock still
        // holds a consistent cell.
        self.cell.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current state.
    pub(crate) fn state(&self) -> State {
        self.lock().state
    }

    fn go(&self, cell: &mut Cell, to: State, detail: &str) -> bool {
        if !is_legal(Some(cell.state), to) {
            self.trace
                .record_illegal(self.context, Some(cell.state), to);
            debug_assert!(
                false,
                "illegal lifecycle transition {:?} -> {to:?}",
                cell.state
            );
            return false;
        }
        self.trace
            .record(self.context, Some(cell.state), to, detail);
        cell.state = to;
        true
    }

    /// A pipeline step: `GraphReceived → Optimizing → Generating → Compiling → Ready`, or
    /// `→ Failed` from any of the middle three. Returns whether the transition was legal.
    pub(crate) fn advance(&self, to: State, detail: &str) -> bool {
        let mut cell = self.lock();
        self.go(&mut cell, to, detail)
    }

    /// Starts a request: `Ready → Executing` for the first one. The guard ends it.
    pub(crate) fn begin(self: &Arc<Self>) -> Result<Running, Unavailable> {
        let mut cell = self.lock();
        self.start(&mut cell)?;
        Ok(Running {
            lifecycle: Arc::clone(self),
            failed: false,
            request: None,
        })
    }

    /// The checks and the transition of a request's start, under the cell's lock.
    fn start(&self, cell: &mut Cell) -> Result<(), Unavailable> {
        if cell.retired {
            return Err(Unavailable::Retired);
        }
        match cell.state {
            State::Ready => {
                self.go(cell, State::Executing, "");
            }
            State::Executing => {}
            State::Failed => return Err(Unavailable::Failed),
            State::Evicted => return Err(Unavailable::Retired),
            _ => return Err(Unavailable::NotReady),
        }
        cell.in_flight += 1;
        Ok(())
    }

    /// Takes the artifact out of service: no new request starts on it, and it moves to
    /// `Evicted` once its last request has ended (now, if none runs).
    pub(crate) fn retire(&self, why: &str) {
        let mut cell = self.lock();
        if cell.retired {
            return;
        }
        cell.retired = true;
        self.record_deploy(&cell, DeployEventKind::Retired);
        if cell.state == State::Ready {
            self.go(&mut cell, State::Evicted, why);
        }
    }

    fn end(&self, failed: bool, request: Option<&(u64, DeployTag)>) {
        let mut cell = self.lock();
        cell.in_flight = cell.in_flight.saturating_sub(1);
        if failed && cell.state == State::Executing {
            self.go(
                &mut cell,
                State::Failed,
                "the artifact no longer instantiates",
            );
            self.record_request_end(request, |request| DeployEventKind::RequestBroke { request });
            return;
        }
        self.record_request_end(request, |request| DeployEventKind::RequestFinished {
            request,
        });
        if cell.in_flight == 0 && cell.state == State::Executing {
            self.go(&mut cell, State::Ready, "");
            if cell.retired {
                self.go(&mut cell, State::Evicted, "retired and drained");
                self.record_deploy(&cell, DeployEventKind::Evicted);
            }
        }
    }
}

/// A request in progress on an artifact; dropping it ends the request.
#[derive(Debug)]
pub(crate) struct Running {
    lifecycle: Arc<Lifecycle>,
    failed: bool,
    /// The request's number and deployment version, for a request [`Deployments::invoke`] started
    /// (`Lifecycle::begin_request`); `None` for any other.
    ///
    /// [`Deployments::invoke`]: crate::Host::invoke
    request: Option<(u64, DeployTag)>,
}

impl Running {
    /// Marks the artifact itself broken: this request's end moves it to `Failed`.
    pub(crate) fn artifact_failed(&mut self) {
        self.failed = true;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.lifecycle.end(self.failed, self.request.as_ref());
    }
}

#[cfg(test)]
mod tests;
