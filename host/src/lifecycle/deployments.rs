//! The deployment-level trace: hot replacement's events, one per action of
//! `specs/HotReplacement.tla`, recorded in order next to the lifecycle transitions.
//!
//! | event                  | spec action    | recorded by                                            |
//! | ---------------------- | -------------- | ------------------------------------------------------ |
//! | `Compiled`             | `Compiled(v)`  | `Deployments::deploy` (and the refresh in `Deployments::invoke`) once it holds the Ready artifact |
//! | `Swapped { replaced }` | `Swap(v)`      | the swap, under the deployments lock                  |
//! | `Retired`              | `RetireOld(v)` | `Lifecycle::retire` of a swapped-in artifact          |
//! | `RequestStarted`       | `Start(c)`     | `Lifecycle::begin_request`, under the deployments lock |
//! | `RequestFinished`      | `Finish(c)`    | the request's `Running` guard ending it               |
//! | `RequestBroke`         | `Break(c)`     | the same, when it moves the artifact to Failed        |
//! | `Evicted`              | `Evict(v)`     | the last request of a retired, swapped-in artifact    |
//!
//! A spec version is one artifact: the event's `context`. `Deploy(v)` (the build starting) and
//! `CompileFailed(v)` are not recorded here: the build allocates the context, so `Deployments::deploy`
//! learns it only from a built artifact, and a failed build returns an error without one; the
//! lifecycle trace has both (`None → GraphReceived`, `… → Failed`).
//!
//! Invariants:
//! - Every event but `Compiled` is recorded under the artifact's lifecycle lock, together with
//!   the transition it goes with, so the log's order is the order the lifecycle saw; `Swapped`
//!   and `RequestStarted` are also under the deployments lock, so a request's start and a swap
//!   are ordered as they happened.
//! - Bounded like the transitions ([`TraceLog`]'s capacity): a full log keeps its first
//!   events, so what it holds is always a prefix of what happened.
//! - Only artifacts a deployment swapped in, and requests [`crate::Deployments::invoke`] started, leave
//!   events; `Host::run`'s requests and undeployment are outside the spec and leave none of
//!   their own.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::{Cell, Lifecycle, Running, State, TraceLog, Unavailable};

/// One hot-replacement event of one deployment ([`crate::Host::deploy_trace`]); each kind is
/// one action of `specs/HotReplacement.tla`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeployEvent {
    /// The deployment's name.
    pub deployment: String,
    /// The deployment's version number; 0 for [`DeployEventKind::Compiled`], which is
    /// recorded before the swap numbers the version.
    pub version: u64,
    /// The artifact (lifecycle context, as in [`crate::Transition`]): the spec's version.
    pub context: u64,
    /// What happened.
    pub kind: DeployEventKind,
    /// Time since the host started, on the clock of [`crate::Transition::at`].
    pub at: Duration,
}

/// What happened to a deployed artifact (one action of `specs/HotReplacement.tla` each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum DeployEventKind {
    /// `Compiled(v)`: the deploy holds the new artifact, Ready.
    Compiled,
    /// `Swap(v)`: the artifact became the deployment's current one, replacing the artifact
    /// (context) `replaced`, if there was one.
    Swapped {
        /// The context replaced.
        replaced: Option<u64>,
    },
    /// `RetireOld(v)`: the replaced artifact takes no new request (and is Evicted now if idle).
    Retired,
    /// `Start(c)`: a request started on the artifact.
    RequestStarted {
        /// The request's number, unique per host.
        request: u64,
    },
    /// `Finish(c)`: the request ended on the artifact it started on.
    RequestFinished {
        /// The request's number.
        request: u64,
    },
    /// `Break(c)`: the request found the artifact broken and ended it: Failed.
    RequestBroke {
        /// The request's number.
        request: u64,
    },
    /// `Evict(v)`: a retired artifact's last request ended: Evicted.
    Evicted,
}

/// The deployment version an artifact serves as.
#[derive(Clone, Debug)]
pub(crate) struct DeployTag {
    deployment: Arc<str>,
    version: u64,
}

impl DeployTag {
    /// Version `version` of `deployment`.
    pub(crate) fn new(deployment: Arc<str>, version: u64) -> DeployTag {
        DeployTag {
            deployment,
            version,
        }
    }
}

/// An event as kept: the name shared, not copied, until [`TraceLog::deploy_events`].
#[derive(Debug)]
pub(super) struct DeployRecord {
    tag: DeployTag,
    context: u64,
    kind: DeployEventKind,
    at: Duration,
}

impl TraceLog {
    fn record_deploy(&self, tag: &DeployTag, context: u64, kind: DeployEventKind) {
        let mut inner = self.lock();
        // Read under the lock: `at` never decreases along the log.
        let at = self.start.elapsed();
        // A full log keeps its first `capacity` events: a reader sees a prefix, never a gap.
        if inner.deploy_events.len() < self.capacity {
            inner.deploy_events.push(DeployRecord {
                tag: tag.clone(),
                context,
                kind,
                at,
            });
        }
    }

    fn next_request(&self) -> u64 {
        let mut inner = self.lock();
        inner.next_request += 1;
        inner.next_request
    }

    /// The hot-replacement events recorded so far, in order.
    pub(crate) fn deploy_events(&self) -> Vec<DeployEvent> {
        self.lock()
            .deploy_events
            .iter()
            .map(|record| DeployEvent {
                deployment: record.tag.deployment.to_string(),
                version: record.tag.version,
                context: record.context,
                kind: record.kind,
                at: record.at,
            })
            .collect()
    }
}

impl Lifecycle {
    /// `Compiled`: `Deployments::deploy` holds this artifact for `deployment`. Recorded only while the
    /// artifact can serve (Ready or Executing, not retired): otherwise the deploy holds an
    /// artifact the spec would not swap in, and the missing event makes the trace check reject
    /// the swap that follows.
    pub(crate) fn deploy_compiled(&self, deployment: &Arc<str>) {
        let cell = self.lock();
        if cell.retired || !matches!(cell.state, State::Ready | State::Executing) {
            return;
        }
        let tag = DeployTag::new(Arc::clone(deployment), 0);
        self.trace
            .record_deploy(&tag, self.context, DeployEventKind::Compiled);
    }

    /// `Swapped`: this artifact is now `tag`'s current one, replacing the context `replaced`.
    /// Call under the deployments lock, in the critical section that swaps.
    pub(crate) fn deploy_swapped(&self, tag: DeployTag, replaced: Option<u64>) {
        let mut cell = self.lock();
        self.trace
            .record_deploy(&tag, self.context, DeployEventKind::Swapped { replaced });
        cell.deployed = Some(tag);
    }

    /// [`Lifecycle::begin`] for a request of a deployment (`Deployments::invoke`, under the
    /// deployments lock): records `RequestStarted`, and the guard records its end.
    pub(crate) fn begin_request(self: &Arc<Self>) -> Result<Running, Unavailable> {
        let mut cell = self.lock();
        self.start(&mut cell)?;
        let request = cell.deployed.clone().map(|tag| {
            let request = self.trace.next_request();
            self.trace.record_deploy(
                &tag,
                self.context,
                DeployEventKind::RequestStarted { request },
            );
            (request, tag)
        });
        Ok(Running {
            lifecycle: Arc::clone(self),
            failed: false,
            request,
        })
    }

    /// Records `kind` for this artifact if a deployment swapped it in; under the cell's lock.
    pub(super) fn record_deploy(&self, cell: &Cell, kind: DeployEventKind) {
        if let Some(tag) = &cell.deployed {
            self.trace.record_deploy(tag, self.context, kind);
        }
    }

    /// Records a deployment request's end (`kind` of its number); under the cell's lock.
    pub(super) fn record_request_end(
        &self,
        request: Option<&(u64, DeployTag)>,
        kind: impl FnOnce(u64) -> DeployEventKind,
    ) {
        if let Some((number, tag)) = request {
            self.trace.record_deploy(tag, self.context, kind(*number));
        }
    }
}
