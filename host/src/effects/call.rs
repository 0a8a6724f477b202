//! The contract between whoever makes effect calls (the runtime, for a guest's host imports;
//! `eval`, for effect nodes) and whoever serves them (the [`Dispatcher`](super::Dispatcher)):
//! pure descriptions in, typed answers or typed errors out.
//!
//! Invariants:
//! - The same [`EffectCall`] gets the same treatment whoever makes it: the footprint check,
//!   then the runner; so a graph's effects behave alike under `eval` and in wasm.
//! - [`EffectError`] mirrors the WIT `effect-error` variant one to one.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use graphjit_value::Tensor;
use graphjit_value::effects::{Cell, Rows};

/// One effect, as a pure description.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum EffectCall {
    /// SQL that returns rows.
    DbQuery { sql: String, params: Vec<Cell> },
    /// SQL that returns a row count.
    DbExecute { sql: String, params: Vec<Cell> },
    /// One statement per row of parameters, all in one transaction.
    DbExecuteMany { sql: String, rows: Vec<Vec<Cell>> },
    /// An HTTP request.
    Http(super::http::Request),
    /// A kernel on tensors.
    Kernel { name: String, args: Vec<Tensor> },
    /// A log line.
    Log { level: String, message: String },
}

impl EffectCall {
    /// The host interface the call goes out through.
    pub(crate) fn interface(&self) -> crate::interface::Interface {
        use crate::interface::Interface;
        match self {
            EffectCall::DbQuery { .. }
            | EffectCall::DbExecute { .. }
            | EffectCall::DbExecuteMany { .. } => Interface::Db,
            EffectCall::Http(_) => Interface::Http,
            EffectCall::Kernel { .. } => Interface::Kernels,
            EffectCall::Log { .. } => Interface::Log,
        }
    }
}

/// A successful effect's answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum EffectAnswer {
    Rows(Rows),
    Count(u64),
    Response(super::http::Response),
    Tensor(Tensor),
    Unit,
}

impl EffectAnswer {
    /// Bytes the answer carries back into the guest (what the run's byte cap and the fuel
    /// charge per byte count).
    pub(crate) fn bytes(&self) -> u64 {
        let cell = |c: &Cell| match c {
            Cell::Null | Cell::Bool(_) => 1,
            Cell::Int(_) | Cell::Float(_) => 8,
            Cell::Text(s) => s.len() as u64,
            Cell::Bytes(b) => b.len() as u64,
        };
        match self {
            EffectAnswer::Rows(rows) => {
                rows.columns.iter().map(|c| c.len() as u64).sum::<u64>()
                    + rows
                        .rows
                        .iter()
                        .flat_map(|row| row.iter().map(cell))
                        .sum::<u64>()
            }
            EffectAnswer::Count(_) => 8,
            EffectAnswer::Response(response) => {
                response
                    .headers
                    .iter()
                    .map(|(n, v)| (n.len() + v.len()) as u64)
                    .sum::<u64>()
                    + response.body.len() as u64
            }
            EffectAnswer::Tensor(t) => 4 * t.data.len() as u64,
            EffectAnswer::Unit => 0,
        }
    }
}

/// Why an effect failed: the WIT `effect-error`, host side.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EffectError {
    #[error("outside the footprint: {0}")]
    FootprintDenied(String),
    #[error("effect limit: {0}")]
    Limit(String),
    #[error("connection failed: {0}")]
    Connection(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("constraint violated: {0}")]
    Constraint(String),
    #[error("syntax or undefined name: {0}")]
    Syntax(String),
    #[error("permission denied: {0}")]
    Permission(String),
    #[error("HTTP status {0}")]
    HttpStatus(u16),
    #[error("response body over the cap ({0} bytes read)")]
    BodyTooLarge(u64),
    #[error("the answer does not fit the node's type: {0}")]
    BadAnswer(String),
    #[error("{0}")]
    Other(String),
}

impl EffectError {
    /// The public class of a driver's failure; `None` for a footprint denial (its own kind,
    /// `footprint_denied`: no driver saw the call).
    pub(crate) fn class(&self) -> Option<crate::error::EffectClass> {
        use crate::error::EffectClass as C;
        Some(match self {
            EffectError::FootprintDenied(_) => return None,
            EffectError::Limit(_) => C::Limit,
            EffectError::Connection(_) => C::Connection,
            EffectError::Timeout(_) => C::Timeout,
            EffectError::Constraint(_) => C::Constraint,
            EffectError::Syntax(_) => C::Syntax,
            EffectError::Permission(_) => C::Permission,
            EffectError::HttpStatus(_) => C::HttpStatus,
            EffectError::BodyTooLarge(_) => C::BodyTooLarge,
            EffectError::BadAnswer(_) => C::BadAnswer,
            EffectError::Other(_) => C::Other,
        })
    }
}

/// A boxed future, as trait objects return them.
pub(crate) type EffectFuture<'a> =
    Pin<Box<dyn Future<Output = Result<EffectAnswer, EffectError>> + Send + 'a>>;

/// A boxed future of a round's answers, in the calls' order.
pub(crate) type RoundFuture<'a> =
    Pin<Box<dyn Future<Output = Vec<Result<EffectAnswer, EffectError>>> + Send + 'a>>;

/// Serves effect calls. `timeout` is what remains of the run's deadline: the handler must
/// answer (or fail with [`EffectError::Timeout`]) within it.
pub(crate) trait EffectHandler: Send + Sync {
    /// Checks and serves one call.
    fn call(&self, call: EffectCall, timeout: Duration) -> EffectFuture<'_>;

    /// Checks and serves independent calls concurrently (a round); one answer per call, in
    /// order. By default, every call at once through [`EffectHandler::call`].
    fn call_round(&self, calls: Vec<EffectCall>, timeout: Duration) -> RoundFuture<'_> {
        let each: Vec<EffectFuture<'_>> =
            calls.into_iter().map(|c| self.call(c, timeout)).collect();
        Box::pin(futures_util::future::join_all(each))
    }
}
