//! `eval`: the reference interpreter, and the definition of what a graph means.
//!
//! Invariants:
//! - `eval` knows nothing of codegen, rustc or wasmtime; it is written independently of the
//!   guest's `ops`, from the rules in docs/graph-format.md ("Semantics"), and the differential
//!   tests hold the two to bit-exact agreement.
//! - Demand-driven: a region evaluates only the nodes its results need
//!   ([`Graph::demanded`]), in canonical order; the first error in that order is the result.
//!   An `if` runs only the branch taken; a `loop` runs its body exactly `iterations` times.
//! - Never panics: every lookup is checked and an impossible state is [`EvalError::Internal`].
//!   Recursion is over region nesting only (bounded by the graph's depth limit), never data.
//! - Bounded: fuel is charged before a node runs (see [`interp`]'s cost rule), so any loop
//!   stops promptly; each new tensor or string is checked against the memory limit before it
//!   is allocated; the wall clock is read in the fuel charge (every
//!   [`interp::CLOCK_CHECK_FUEL`] units, and before and after every effect call), so a run
//!   past its deadline ends with [`EvalError::Deadline`], as a compiled run does.
//!
//! Files: [`interp`] walks regions (demand, fuel, memory, `if`/`loop`/`fork`/`get`);
//! [`scalar`] holds the i64/f64/bool/string rules; [`tensor`] the f32 tensor rules.

mod data;
mod interp;
mod scalar;
mod tensor;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use graphjit_value::Value;

use crate::effects::{EffectAnswer, EffectCall, EffectError};

use crate::graph::{Const, Graph, NodeId};

/// Budgets for one evaluation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EvalLimits {
    /// Units of work (the cost rule is in [`interp`]): one per node evaluated and per loop
    /// iteration, plus one per 64 tensor elements and per 256 string bytes produced.
    pub(crate) fuel: u64,
    /// Largest single tensor or string, in bytes (a tensor of `n` elements is `4n` bytes).
    pub(crate) memory_bytes: u64,
    /// When the evaluation must end; `None` for no wall clock (tests, constant folding).
    pub(crate) deadline: Option<Deadline>,
}

/// A wall-clock deadline: the instant it passes, and the limit it was set from (reported).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) limit: Duration,
}

impl Deadline {
    /// `limit` from `start`; `None` when the sum is past what an `Instant` can hold (a limit
    /// so large that it never passes).
    pub(crate) fn after(start: Instant, limit: Duration) -> Option<Deadline> {
        start.checked_add(limit).map(|at| Deadline { at, limit })
    }

    pub(crate) fn passed(&self) -> bool {
        Instant::now() >= self.at
    }
}

/// What a successful evaluation produced.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EvalOutcome {
    /// One value per `graph.outputs` entry, in that order; every NaN canonical.
    pub(crate) outputs: Vec<Value>,
    /// Fuel charged, never more than the budget.
    pub(crate) fuel_used: u64,
    /// Effect calls admitted.
    pub(crate) effect_calls: u32,
    /// `cached` nodes answered from the memo, and those whose body ran.
    pub(crate) memo_hits: u32,
    pub(crate) memo_misses: u32,
}

/// Why an evaluation stopped.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub(crate) enum EvalError {
    /// Checked i64 arithmetic overflowed (user error: the graph's logic).
    #[error("i64 overflow")]
    Overflow { node: NodeId },
    /// Integer division or remainder by zero (user error: the graph's logic).
    #[error("division by zero")]
    DivisionByZero { node: NodeId },
    /// A value outside an operation's domain, such as NaN to i64 (user error).
    #[error("{message}")]
    InvalidValue { node: NodeId, message: String },
    /// A list read outside its elements (user error).
    #[error("index {index} is out of range for a list of {len}")]
    IndexOutOfRange { node: NodeId, index: i64, len: u64 },
    /// `unwrap` of an empty option (user error).
    #[error("missing value (unwrap of none)")]
    MissingValue { node: NodeId },
    /// A tensor or string larger than the memory limit (a limit).
    #[error("a value of {bytes} bytes exceeds the memory limit")]
    OutOfMemory { node: NodeId, bytes: u64 },
    /// The fuel budget ran out; `used` is the charge that went over it (a limit).
    #[error("out of fuel: {used} needed, the budget is {budget}")]
    Fuel { budget: u64, used: u64 },
    /// The wall-clock deadline passed (a limit; the same message as a compiled run's).
    #[error("deadline of {limit:?} exceeded")]
    Deadline { limit: Duration },
    /// Inputs of the wrong number or type (a caller bug: inputs are checked before eval).
    #[error("bad input: {0}")]
    BadInput(String),
    /// An effect node's call failed, or its answer did not fit the node's type.
    #[error("effect failed: {error}")]
    Effect { node: NodeId, error: EffectError },
    /// An IR invariant did not hold (a graphjit bug).
    #[error("internal error: {0}")]
    Internal(String),
}

impl EvalError {
    /// The node at fault, for the errors that have one.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "for callers that report errors by node (the facade maps variants itself)"
        )
    )]
    pub(crate) fn node(&self) -> Option<NodeId> {
        match self {
            EvalError::Overflow { node }
            | EvalError::DivisionByZero { node }
            | EvalError::InvalidValue { node, .. }
            | EvalError::IndexOutOfRange { node, .. }
            | EvalError::MissingValue { node }
            | EvalError::OutOfMemory { node, .. }
            | EvalError::Effect { node, .. } => Some(*node),
            EvalError::Fuel { .. }
            | EvalError::Deadline { .. }
            | EvalError::BadInput(_)
            | EvalError::Internal(_) => None,
        }
    }
}

/// Serves one effect call for `eval` within the timeout given (the host's dispatcher,
/// blocking, in practice).
pub(crate) type EffectFn<'a> =
    dyn FnMut(EffectCall, Duration) -> Result<EffectAnswer, EffectError> + 'a;

/// What serves an evaluation's effect nodes, and the run's effect caps. The interpreter keeps
/// the budget (`effects::EffectBudget`) exactly as a compiled run's host imports do: admit,
/// charge the call, check the deadline, serve, account the answer.
pub(crate) struct EffectServer<'a> {
    /// The most effect calls the run may make.
    pub(crate) max_calls: u32,
    /// The most bytes the run's answers may carry in.
    pub(crate) max_bytes: u64,
    pub(crate) serve: &'a mut EffectFn<'a>,
}

/// Evaluates `graph` on `inputs` (one per `graph.inputs` entry, in that order). Effect nodes
/// fail: use [`eval_with`] to serve them.
pub(crate) fn eval(
    graph: &Graph,
    inputs: &[Value],
    limits: &EvalLimits,
) -> Result<EvalOutcome, EvalError> {
    eval_with(graph, inputs, limits, None, None)
}

/// Evaluates `graph` on `inputs`, serving effect nodes with `effects` (without one, every
/// effect call fails, as in a compiled run without a handler) and `cached` nodes from `memo`
/// (without one, every body runs and nothing is kept).
pub(crate) fn eval_with<'a>(
    graph: &Graph,
    inputs: &[Value],
    limits: &EvalLimits,
    effects: Option<EffectServer<'a>>,
    memo: Option<crate::memo::RunMemo>,
) -> Result<EvalOutcome, EvalError> {
    if inputs.len() != graph.inputs.len() {
        return Err(EvalError::BadInput(format!(
            "{} inputs given, the graph has {}",
            inputs.len(),
            graph.inputs.len()
        )));
    }
    let mut interp = interp::Interp::new(graph, *limits, effects, memo)?;
    for (&id, value) in graph.inputs.iter().zip(inputs) {
        interp.bind_input(id, value)?;
    }
    let outputs = interp.run()?;
    let (memo_hits, memo_misses) = interp.memo_counts();
    Ok(EvalOutcome {
        outputs: outputs.into_iter().map(Value::canonicalized).collect(),
        fuel_used: interp.fuel_used(),
        effect_calls: interp.effect_calls(),
        memo_hits,
        memo_misses,
    })
}

/// The value of scalar `op` at `node` on constant `args`, when computing it succeeds: what
/// constant folding replaces the node by (exactly what evaluating it would give).
pub(crate) fn fold(op: &crate::graph::Op, args: &[Value], node: NodeId) -> Option<Value> {
    if args
        .iter()
        .any(|v| matches!(v, Value::Tensor(_) | Value::Tuple(_)))
    {
        return None;
    }
    let refs: Vec<&Value> = args.iter().collect();
    scalar::apply(op, &refs, node, u64::MAX).ok()
}

/// The value of a constant (also the value of an input's default).
pub(crate) fn const_value(c: &Const) -> Value {
    match c {
        Const::Bool(b) => Value::Bool(*b),
        Const::I64(i) => Value::I64(*i),
        Const::F64(x) => Value::F64(*x),
        Const::Str(s) => Value::Str(s.clone()),
        Const::Tensor(t) => Value::Tensor(t.clone()),
        Const::Data(value) => value.clone(),
    }
}
