//! Every stage's typed error mapped into the public [`Error`], with the failing node's
//! user-facing id and a remediation.

use crate::codegen;
use crate::compile::{self};
use crate::effects::{self};
use crate::error::{EffectClass, Error, ErrorKind, Setting, Stage};
use crate::eval;
use crate::graph::{self, NodeId};
use crate::passes::{self, PassConfig, PassReport};
use crate::runtime::{self};

pub(super) fn compile_error_node(
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

/// `graph` after `passes`; a failure is a bug in a pass (`optimization_failed`).
pub(super) fn optimize(
    graph: &graph::Graph,
    passes: &PassConfig,
) -> Result<(graph::Graph, Vec<PassReport>), Error> {
    passes::optimize(graph, passes).map_err(|e| {
        Error::new(
            ErrorKind::OptimizationFailed,
            Stage::Optimize,
            e,
            "report this as a bug; running without passes avoids the optimizer",
        )
        .for_setting(Setting::Passes)
    })
}

pub(super) fn compile_error(e: compile::RustCompileError) -> Error {
    let kind = if e.is_toolchain() {
        ErrorKind::Toolchain
    } else if e.is_limit() {
        ErrorKind::ResourceExceeded
    } else {
        ErrorKind::RustCompileError
    };
    let remediation = e.remediation();
    Error::new(kind, Stage::Compile, e.to_string(), remediation)
}

/// The one remediation table for what a run can do wrong, shared by the compiled runtime and
/// the interpreter: what to do about `kind`, and the setting that does it.
fn remedy(kind: &ErrorKind) -> (&'static str, Option<Setting>) {
    match kind {
        ErrorKind::FuelExhausted { .. } => (
            "raise the fuel budget, or bound the graph's loops more tightly",
            Some(Setting::Fuel),
        ),
        ErrorKind::MemoryExceeded { .. } => (
            "raise the memory limit, or use smaller values",
            Some(Setting::Memory),
        ),
        ErrorKind::DeadlineExceeded { .. } => (
            "raise the deadline, or do less work per run",
            Some(Setting::Deadline),
        ),
        ErrorKind::Overflow => (
            "check the operands' ranges; i64 arithmetic is checked",
            None,
        ),
        ErrorKind::DivisionByZero => ("guard the division with an `if` on the divisor", None),
        ErrorKind::InvalidValue => ("check the value's range before converting", None),
        ErrorKind::IndexOutOfRange => (
            "compare the position with `len` first, or use `slice`, which clamps",
            None,
        ),
        ErrorKind::MissingValue => (
            "test the option with `is_some`, or give a default with `unwrap_or`",
            None,
        ),
        ErrorKind::InvalidInput => (
            "pass values of the declared input types",
            Some(Setting::Inputs),
        ),
        ErrorKind::ImportDenied { .. } => (
            "the component may import only graphjit interfaces its footprint allows",
            None,
        ),
        ErrorKind::FootprintDenied => (
            "declare what the graph needs in its footprint (the message says what), or remove the call",
            None,
        ),
        ErrorKind::EffectFailed { class } => match class {
            EffectClass::Limit => (
                "raise the run's effect caps, or make fewer or smaller calls",
                None,
            ),
            EffectClass::Connection => ("check that the server is up and reachable", None),
            EffectClass::Timeout => (
                "raise the deadline, or make the call cheaper",
                Some(Setting::Deadline),
            ),
            EffectClass::Constraint => (
                "the data violates a constraint: check the values written",
                None,
            ),
            EffectClass::Syntax => ("fix the SQL (or the names it uses)", None),
            EffectClass::Permission => (
                "the server refused the privilege; a graph without a write set runs read-only",
                None,
            ),
            EffectClass::HttpStatus => ("the server answered with an error status", None),
            EffectClass::BodyTooLarge => ("ask for less data", None),
            EffectClass::BadAnswer => (
                "make the node's \"type\" match what the effect returns",
                None,
            ),
            EffectClass::Other => ("see the message", None),
        },
        _ => ("report this as a bug", None),
    }
}

/// An error of `kind`, its remediation from the table.
fn remedied(kind: ErrorKind, stage: Stage, message: String, node: Option<String>) -> Error {
    let (remediation, setting) = remedy(&kind);
    let error = Error::new(kind, stage, message, remediation).at_node(node);
    match setting {
        Some(setting) => error.for_setting(setting),
        None => error,
    }
}

/// The kind of a failed effect call.
fn effect_kind(error: &effects::EffectError) -> ErrorKind {
    match error.class() {
        None => ErrorKind::FootprintDenied,
        Some(class) => ErrorKind::EffectFailed { class },
    }
}

pub(super) fn runtime_error(
    e: runtime::RuntimeError,
    graph: Option<&graph::Graph>,
    stage: Stage,
) -> Error {
    use runtime::RuntimeError as R;
    let node = |n: u32| graph.and_then(|g| g.node_name(n));
    let message = e.to_string();
    if let R::PoolExhausted { .. } = &e {
        return Error::new(
            ErrorKind::ResourceExceeded,
            stage,
            message,
            "retry shortly: the host runs at most `max_instances` graphs at once (HostConfig)",
        )
        .caused_by(e);
    }
    let (kind, node) = match &e {
        R::Fuel { budget, used } => (
            ErrorKind::FuelExhausted {
                budget: *budget,
                used: *used,
            },
            None,
        ),
        R::Memory { limit, requested } => (
            ErrorKind::MemoryExceeded {
                limit: *limit,
                requested: *requested,
            },
            None,
        ),
        R::OutOfMemory { node: n, bytes } => (
            ErrorKind::MemoryExceeded {
                limit: 0,
                requested: *bytes,
            },
            node(*n),
        ),
        R::Deadline { limit } => (
            ErrorKind::DeadlineExceeded {
                limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            },
            None,
        ),
        R::Overflow { node: n } => (ErrorKind::Overflow, node(*n)),
        R::DivisionByZero { node: n } => (ErrorKind::DivisionByZero, node(*n)),
        R::InvalidValue { node: n, .. } => (ErrorKind::InvalidValue, node(*n)),
        R::IndexOutOfRange { node: n, .. } => (ErrorKind::IndexOutOfRange, node(*n)),
        R::MissingValue { node: n } => (ErrorKind::MissingValue, node(*n)),
        R::ImportDenied { import } => (
            ErrorKind::ImportDenied {
                import: import.clone(),
            },
            None,
        ),
        R::Effect { node: n, error } => (effect_kind(error), node(*n)),
        R::Trap { .. } => (ErrorKind::Trap, None),
        _ => (ErrorKind::Internal, None),
    };
    remedied(kind, stage, message, node).caused_by(e)
}

pub(super) fn eval_error(e: eval::EvalError, graph: &graph::Graph, memory_limit: u64) -> Error {
    use eval::EvalError as E;
    let message = e.to_string();
    let node = |n: NodeId| graph.node_name(n.0);
    let (kind, node) = match &e {
        E::Effect { node: n, error } => (effect_kind(error), node(*n)),
        E::Fuel { budget, used } => (
            ErrorKind::FuelExhausted {
                budget: *budget,
                used: *used,
            },
            None,
        ),
        E::Deadline { limit } => (
            ErrorKind::DeadlineExceeded {
                limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            },
            None,
        ),
        E::OutOfMemory { node: n, bytes } => (
            ErrorKind::MemoryExceeded {
                limit: memory_limit,
                requested: *bytes,
            },
            node(*n),
        ),
        E::Overflow { node: n } => (ErrorKind::Overflow, node(*n)),
        E::DivisionByZero { node: n } => (ErrorKind::DivisionByZero, node(*n)),
        E::InvalidValue { node: n, .. } => (ErrorKind::InvalidValue, node(*n)),
        E::IndexOutOfRange { node: n, .. } => (ErrorKind::IndexOutOfRange, node(*n)),
        E::MissingValue { node: n } => (ErrorKind::MissingValue, node(*n)),
        E::BadInput(_) => (ErrorKind::InvalidInput, None),
        E::Internal(_) => (ErrorKind::Internal, None),
    };
    remedied(kind, Stage::Eval, message, node).caused_by(e)
}
