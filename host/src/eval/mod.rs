//! `eval`: the reference interpreter, and the definition of what a graph means.
//!
//! Invariants:
//! - `eval` knows nothing of codegen, rustc or wasmtime; it is written independently of the
//!   guest's `ops`, from the rules in docs/graph-format.md ("Semantics"), and the differential
//!   tests hold the two to bit-exact agreement.
//! - Demand-driven: a region evaluates only the nodes its results need, in canonical order;
//!   the first error in that order is the result. An `if` runs only the branch taken.
//! - Never panics: every lookup is checked and an impossible state is `EvalError::Internal`.
//!   Recursion is over region nesting only (bounded by the graph's depth limit), never data.
//! - Bounded: fuel (one unit per node evaluated plus one per 64 tensor elements) stops any
//!   loop promptly; each new tensor is checked against the memory limit before allocation.

mod ops;

use graphjit_value::{Tensor, Value};

use crate::graph::{Const, Graph, NodeId, Op, Region, Type};

/// Budgets for one evaluation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EvalLimits {
    /// Units of work: one per node evaluated, plus one per 64 tensor elements produced.
    pub(crate) fuel: u64,
    /// Largest single tensor, in bytes.
    pub(crate) memory_bytes: u64,
}

/// Outputs in the graph's output order, NaNs canonical.
#[derive(Clone, Debug)]
pub(crate) struct EvalOutcome {
    pub(crate) outputs: Vec<Value>,
    pub(crate) fuel_used: u64,
}

/// Why an evaluation stopped.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub(crate) enum EvalError {
    /// Checked i64 arithmetic overflowed (the graph's logic).
    #[error("i64 overflow")]
    Overflow { node: NodeId },
    /// Integer division or remainder by zero (the graph's logic).
    #[error("division by zero")]
    DivisionByZero { node: NodeId },
    /// A value outside an operation's domain (the graph's logic).
    #[error("{message}")]
    InvalidValue { node: NodeId, message: String },
    /// A tensor larger than the memory limit (a limit).
    #[error("a tensor of {bytes} bytes exceeds the memory limit")]
    OutOfMemory { node: NodeId, bytes: u64 },
    /// The fuel budget ran out (a limit).
    #[error("out of fuel: used {used} of {budget}")]
    Fuel { budget: u64, used: u64 },
    /// Inputs of the wrong number or type (a caller bug).
    #[error("bad input: {0}")]
    BadInput(String),
    /// An IR invariant did not hold (a graphjit bug).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Evaluates `graph` on `inputs` (in `graph.inputs` order).
pub(crate) fn eval(
    graph: &Graph,
    inputs: &[Value],
    limits: &EvalLimits,
) -> Result<EvalOutcome, EvalError> {
    if inputs.len() != graph.inputs.len() {
        return Err(EvalError::BadInput(format!(
            "{} inputs given, {} expected",
            inputs.len(),
            graph.inputs.len()
        )));
    }
    let mut interp = Interp {
        graph,
        demanded: graph.demanded(),
        values: vec![None; graph.nodes.len()],
        fuel_used: 0,
        limits: *limits,
    };
    for (&id, value) in graph.inputs.iter().zip(inputs) {
        if !crate::values::has_type(value, &graph.node(id).ty) {
            return Err(EvalError::BadInput(format!(
                "input {:?} must be {}",
                graph.node(id).name,
                graph.node(id).ty
            )));
        }
        interp.values[id.index()] = Some(value.clone());
    }
    let outputs = interp.region(&graph.root)?;
    Ok(EvalOutcome {
        outputs: outputs.into_iter().map(Value::canonicalized).collect(),
        fuel_used: interp.fuel_used,
    })
}

struct Interp<'g> {
    graph: &'g Graph,
    demanded: Vec<bool>,
    values: Vec<Option<Value>>,
    fuel_used: u64,
    limits: EvalLimits,
}

impl Interp<'_> {
    fn charge(&mut self, units: u64) -> Result<(), EvalError> {
        self.fuel_used = self.fuel_used.saturating_add(units);
        if self.fuel_used > self.limits.fuel {
            return Err(EvalError::Fuel {
                budget: self.limits.fuel,
                used: self.fuel_used,
            });
        }
        Ok(())
    }

    fn value(&self, id: NodeId) -> Result<&Value, EvalError> {
        self.values
            .get(id.index())
            .and_then(Option::as_ref)
            .ok_or_else(|| EvalError::Internal(format!("node {id:?} read before it was evaluated")))
    }

    /// Evaluates a region's demanded nodes and returns its results.
    fn region(&mut self, region: &Region) -> Result<Vec<Value>, EvalError> {
        for &id in &region.nodes {
            if self.demanded.get(id.index()).copied().unwrap_or(false) {
                let value = self.node(id)?;
                self.values[id.index()] = Some(value);
            }
        }
        region
            .results
            .iter()
            .map(|&r| self.value(r).cloned())
            .collect()
    }

    fn node(&mut self, id: NodeId) -> Result<Value, EvalError> {
        self.charge(1)?;
        let graph = self.graph;
        let node = graph.node(id);
        if let Type::Tensor(shape) = &node.ty {
            let elements: u64 = shape.iter().map(|&d| u64::from(d)).product();
            self.charge(elements / 64)?;
            let bytes = elements.saturating_mul(4);
            if bytes > self.limits.memory_bytes {
                return Err(EvalError::OutOfMemory { node: id, bytes });
            }
        }
        let args: Vec<&Value> = node
            .args
            .iter()
            .map(|&a| self.value(a))
            .collect::<Result<_, _>>()?;
        let value = match &node.op {
            Op::Input { .. } => return self.value(id).cloned(),
            Op::Param => return Err(EvalError::Internal("a param is not evaluated".into())),
            Op::Const(c) => const_value(c),
            Op::If { then, otherwise } => {
                let branch = match args.first() {
                    Some(Value::Bool(true)) => then,
                    Some(Value::Bool(false)) => otherwise,
                    _ => return Err(EvalError::Internal("if condition is not a bool".into())),
                };
                let mut results = self.region(branch)?;
                return results
                    .pop()
                    .ok_or_else(|| EvalError::Internal("branch without a result".into()));
            }
            Op::Loop { iterations, body } => {
                let mut states: Vec<Value> = args.into_iter().cloned().collect();
                for i in 0..*iterations {
                    let index = Value::I64(
                        i64::try_from(i).map_err(|_| EvalError::Internal("loop index".into()))?,
                    );
                    for (&param, value) in
                        body.params.iter().zip(std::iter::once(index).chain(states))
                    {
                        self.values[param.index()] = Some(value);
                    }
                    states = self.region(body)?;
                }
                return Ok(if states.len() == 1 {
                    states.pop().unwrap_or(Value::Tuple(Vec::new()))
                } else {
                    Value::Tuple(states)
                });
            }
            Op::Fork => Value::Tuple(args.into_iter().cloned().collect()),
            Op::Sequence => args
                .last()
                .map(|v| (*v).clone())
                .ok_or_else(|| EvalError::Internal("empty sequence".into()))?,
            Op::Get { index } => match args.first() {
                Some(Value::Tuple(items)) => items
                    .get(*index as usize)
                    .cloned()
                    .ok_or_else(|| EvalError::Internal("get out of range".into()))?,
                _ => return Err(EvalError::Internal("get on a non-tuple".into())),
            },
            op => ops::apply(op, &args, &node.ty, id)?,
        };
        Ok(value)
    }
}

fn const_value(c: &Const) -> Value {
    match c {
        Const::Bool(b) => Value::Bool(*b),
        Const::I64(i) => Value::I64(*i),
        Const::F64(x) => Value::F64(*x),
        Const::Str(s) => Value::Str(s.clone()),
        Const::Tensor(t) => Value::Tensor(Tensor {
            shape: t.shape.clone(),
            data: t.data.clone(),
        }),
    }
}
