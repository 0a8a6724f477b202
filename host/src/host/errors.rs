//! Every stage's typed error mapped into the public [`Error`], with the failing node's
//! user-facing id and a remediation.

use super::validated::Graph;
use crate::codegen;
use crate::compile::{self};
use crate::effects::{self};
use crate::error::{Error, ErrorKind, Stage};
use crate::eval;
use crate::graph::NodeId;
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

pub(super) fn compile_error(e: compile::RustCompileError) -> Error {
    let kind = if e.is_toolchain() {
        ErrorKind::Toolchain
    } else {
        ErrorKind::RustCompileError
    };
    let remediation = e.remediation();
    Error::new(kind, Stage::Compile, e.to_string(), remediation)
}

pub(super) fn runtime_error(
    e: runtime::RuntimeError,
    graph: Option<&Graph>,
    stage: Stage,
) -> Error {
    use runtime::RuntimeError as R;
    let node = |n: u32| graph.and_then(|g| g.node_name(n));
    let message = e.to_string();
    let (kind, node, remediation) = match e {
        R::Fuel { budget, used } => (
            ErrorKind::FuelExhausted { budget, used },
            None,
            "raise --fuel, or bound the graph's loops more tightly".to_string(),
        ),
        R::Memory { limit, requested } => (
            ErrorKind::MemoryExceeded { limit, requested },
            None,
            "raise --memory, or use smaller tensors".to_string(),
        ),
        R::OutOfMemory { node: n, bytes } => (
            ErrorKind::MemoryExceeded {
                limit: 0,
                requested: bytes,
            },
            node(n),
            "raise --memory, or use smaller tensors".to_string(),
        ),
        R::Deadline { limit } => (
            ErrorKind::DeadlineExceeded {
                limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            },
            None,
            "raise the deadline, or do less work per run".to_string(),
        ),
        R::Overflow { node: n } => (
            ErrorKind::Overflow,
            node(n),
            "check the operands' ranges; i64 arithmetic is checked".to_string(),
        ),
        R::DivisionByZero { node: n } => (
            ErrorKind::DivisionByZero,
            node(n),
            "guard the division with an `if` on the divisor".to_string(),
        ),
        R::InvalidValue { node: n, .. } => (
            ErrorKind::InvalidValue,
            node(n),
            "check the value's range before converting".to_string(),
        ),
        R::ImportDenied { ref import } => (
            ErrorKind::ImportDenied {
                import: import.clone(),
            },
            None,
            "the component may import only graphjit interfaces its footprint allows".to_string(),
        ),
        R::Effect { node: n, ref error } => effect_error(error, node(n)),
        other => (
            if matches!(other, R::Trap { .. }) {
                ErrorKind::Trap
            } else {
                ErrorKind::Internal
            },
            None,
            "report this as a bug".to_string(),
        ),
    };
    Error::new(kind, stage, message, remediation).at_node(node)
}

/// The kind, node and remediation of a failed effect call.
pub(crate) fn effect_error(
    error: &effects::EffectError,
    node: Option<String>,
) -> (ErrorKind, Option<String>, String) {
    use effects::EffectError as E;
    let remediation = match error {
        E::FootprintDenied(_) => {
            "declare what the graph needs in its footprint (the message says what), or remove the call"
        }
        E::Limit(_) => "raise the run's effect caps, or make fewer or smaller calls",
        E::Connection(_) => "check that the server is up and reachable (--database-url)",
        E::Timeout(_) => "raise --deadline-ms, or make the call cheaper",
        E::Constraint(_) => "the data violates a constraint: check the values written",
        E::Syntax(_) => "fix the SQL (or the names it uses)",
        E::Permission(_) => {
            "the server refused the privilege; a graph without a write set runs read-only"
        }
        E::HttpStatus(_) => "the server answered with an error status",
        E::BodyTooLarge(_) => "ask for less data",
        E::BadAnswer(_) => "make the node's \"type\" match what the effect returns",
        E::Other(_) => "see the message",
    };
    let kind = match error.class() {
        None => ErrorKind::FootprintDenied,
        Some(class) => ErrorKind::EffectFailed { class },
    };
    (kind, node, remediation.to_owned())
}

pub(super) fn eval_error(e: eval::EvalError, graph: &Graph, memory_limit: u64) -> Error {
    use eval::EvalError as E;
    let message = e.to_string();
    let node = |n: NodeId| graph.node_name(n.0);
    if let E::Effect { node: n, error } = &e {
        let (kind, node, remediation) = effect_error(error, node(*n));
        return Error::new(kind, Stage::Eval, message, remediation).at_node(node);
    }
    let (kind, node, remediation) = match e {
        E::Fuel { budget, used } => (
            ErrorKind::FuelExhausted { budget, used },
            None,
            "raise --fuel",
        ),
        E::Deadline { limit } => (
            ErrorKind::DeadlineExceeded {
                limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            },
            None,
            "raise --deadline-ms, or make the graph cheaper",
        ),
        E::OutOfMemory { node: n, bytes } => (
            ErrorKind::MemoryExceeded {
                limit: memory_limit,
                requested: bytes,
            },
            node(n),
            "raise --memory, or use smaller tensors",
        ),
        E::Overflow { node: n } => (
            ErrorKind::Overflow,
            node(n),
            "check the operands' ranges; i64 arithmetic is checked",
        ),
        E::DivisionByZero { node: n } => (
            ErrorKind::DivisionByZero,
            node(n),
            "guard the division with an `if` on the divisor",
        ),
        E::InvalidValue { node: n, .. } => (
            ErrorKind::InvalidValue,
            node(n),
            "check the value's range before converting",
        ),
        E::BadInput(_) => (
            ErrorKind::InvalidInput,
            None,
            "pass values of the declared input types",
        ),
        E::Internal(_) | E::Effect { .. } => (ErrorKind::Internal, None, "report this as a bug"),
    };
    Error::new(kind, Stage::Eval, message, remediation).at_node(node)
}
