//! The walk over regions: demand, canonical order, fuel, memory, and the nodes that carry
//! regions or move values around (`input`, `param`, `const`, `if`, `loop`, `fork`, `get`,
//! `sequence`). Every other op is a value rule in [`super::scalar`] or [`super::tensor`].
//!
//! Cost rule (fuel), charged **before** the node runs so that no budget is overrun by more
//! than one node's work:
//! - every evaluated node: `1 + W / 64`, where `W` is the number of f32 elements in the
//!   node's result type (summed over a tuple), except `matmul` (`W = m·k·n`) and the
//!   reductions (`W` = the argument's elements);
//! - every loop iteration: 1 more (so a body that evaluates nothing still pays);
//! - a node whose result holds strings: 1 per 256 string bytes, charged after the node runs
//!   (a single string never exceeds the memory limit, so the overrun is bounded).
//!
//! Memory rule: a node that allocates a new tensor (everything that yields a tensor except
//! `input`, `param`, `if`, `loop`, `fork`, `get` and `sequence`, which pass values on) fails
//! with `OutOfMemory` before it runs if `4 · elements` exceeds the limit; `concat` does the same
//! for its result's bytes.
//!
//! Values live behind `Rc`, so passing one on (a loop state, a branch result, a `sequence`)
//! never copies it; only `fork` and `get` copy, and their results are charged by size.
//!
//! Live memory: the bytes of every value held (tensor data, string bytes; values passed on by
//! `param`, `if` and `loop` are the same allocation and count once) may not exceed
//! the memory limit: the node whose value passes it fails with `OutOfMemory`. A value is let go
//! right after the last node of its region that reads it (directly, or from a nested region),
//! unless it is one of the region's results — as the compiled guest drops a large tensor after
//! its last reader — so a long chain of large tensors needs only what is live at once.

mod accounting;
mod regions;

use std::rc::Rc;

use graphjit_value::Value;

use graphjit_value::effects::{self as conv, cell_from_value};
use graphjit_value::http as http_conv;

use super::{EffectFn, EffectServer, EvalError, EvalLimits, const_value, data, scalar, tensor};
use crate::effects::{EffectAnswer, EffectBudget, EffectCall, EffectError, HttpRequest};
use crate::graph::{Graph, Node, NodeId, Op, Region, Type};
use accounting::{
    allocation_bytes, describe, last_readers, list_len, node_cost, string_bytes, value_bytes,
};

/// One evaluation's state: a slot per node, the demanded set and the fuel meter.
pub(super) struct Interp<'g, 'e> {
    graph: &'g Graph,
    /// Serves effect nodes (`None`: every call fails, nothing is sent).
    effects: Option<&'e mut EffectFn<'e>>,
    /// The run's effect caps and deadline, kept as a compiled run's host imports keep them.
    budget: EffectBudget,
    demanded: Vec<bool>,
    /// Fuel each node costs before it runs (first bullet of the cost rule).
    costs: Vec<u64>,
    /// The latest value of each node; a loop body's slots are overwritten every iteration.
    values: Vec<Option<Rc<Value>>>,
    /// The bytes each slot's value counts against the memory limit (see "Live memory").
    held: Vec<u64>,
    /// The sum of `held`.
    live_bytes: u64,
    /// For each node, the values of its region to let go once it has run (their last reader).
    release_after: Vec<Vec<NodeId>>,
    fuel_used: u64,
    /// Fuel use at which the wall clock is read next.
    next_clock_check: u64,
    limits: EvalLimits,
    /// The host's memo for `cached` nodes (`None`: one that holds nothing and keeps nothing,
    /// charged the same fuel).
    memo: Option<crate::memo::RunMemo>,
    /// For each `cached` node, the outer nodes its body reads (`Graph::outer_reads`).
    memo_reads: std::collections::BTreeMap<NodeId, Vec<NodeId>>,
    memo_hits: u32,
    memo_misses: u32,
}

/// Fuel between two reads of the wall clock in [`Interp::charge`]: about 1024 small nodes or
/// 64k tensor elements of work, tens of microseconds, so a run ends within about that of its
/// deadline (a single node's own work is bounded by the memory limit and charged before it
/// runs), while reading the clock (~20 ns) stays far below 0.1% of the work.
pub(super) const CLOCK_CHECK_FUEL: u64 = 1024;

impl<'g, 'e> Interp<'g, 'e> {
    pub(super) fn new(
        graph: &'g Graph,
        limits: EvalLimits,
        effects: Option<EffectServer<'e>>,
        memo: Option<crate::memo::RunMemo>,
    ) -> Result<Self, EvalError> {
        if graph.root.results.len() != graph.outputs.len() {
            return Err(internal("the root region's results and the outputs differ"));
        }
        let costs = graph
            .nodes
            .iter()
            .map(|node| node_cost(graph, node))
            .collect::<Result<_, _>>()?;
        let deadline = limits.deadline.map(|d| d.at);
        let (budget, effects) = match effects {
            Some(server) => (
                EffectBudget::new(server.max_calls, server.max_bytes, deadline),
                Some(server.serve),
            ),
            None => (EffectBudget::new(0, 0, deadline), None),
        };
        let demanded = graph.demanded();
        let memo_reads = (0..graph.nodes.len())
            .filter(|&i| matches!(graph.nodes[i].op, Op::Cached { .. }))
            .map(|i| {
                let id = NodeId(i as u32);
                (id, graph.outer_reads(id, &demanded))
            })
            .collect();
        Ok(Interp {
            graph,
            effects,
            budget,
            demanded,
            costs,
            values: vec![None; graph.nodes.len()],
            held: vec![0; graph.nodes.len()],
            live_bytes: 0,
            release_after: last_readers(graph),
            fuel_used: 0,
            next_clock_check: 0,
            limits,
            memo,
            memo_reads,
            memo_hits: 0,
            memo_misses: 0,
        })
    }

    /// `cached` nodes answered from the memo, and those whose body ran.
    pub(super) fn memo_counts(&self) -> (u32, u32) {
        (self.memo_hits, self.memo_misses)
    }

    pub(super) fn fuel_used(&self) -> u64 {
        self.fuel_used
    }

    pub(super) fn effect_calls(&self) -> u32 {
        self.budget.calls()
    }

    /// One call through the run's effect budget (`effects::budget`'s steps, in the order a
    /// compiled run's host imports take them). `Err` ends the evaluation (fuel, deadline);
    /// `Ok(Err(_))` is the call's own failure.
    fn serve(&mut self, call: EffectCall) -> Result<Result<EffectAnswer, EffectError>, EvalError> {
        if self.effects.is_none() {
            return Ok(Err(EffectError::Other(
                "effects are not available to this evaluation (it has no host)".into(),
            )));
        }
        if let Err(refused) = self.budget.admit_one() {
            return Ok(Err(refused));
        }
        self.charge(EffectBudget::admission_fuel(&call))?;
        // A call is not made past the deadline, and one that ends past it ends the run,
        // whatever it answered.
        self.check_deadline()?;
        let remaining = self.budget.remaining();
        let answer = match self.effects.as_mut() {
            Some(serve) => serve(call, remaining),
            None => return Err(internal("the effect server went away")),
        };
        self.check_deadline()?;
        let Ok(answer) = answer else {
            return Ok(answer);
        };
        let bytes = answer.bytes();
        if let Err(refused) = self.budget.account(bytes) {
            return Ok(Err(refused));
        }
        self.charge(EffectBudget::answer_fuel(bytes))?;
        Ok(Ok(answer))
    }

    /// Binds input node `id` to `value`, after checking its type.
    pub(super) fn bind_input(&mut self, id: NodeId, value: &Value) -> Result<(), EvalError> {
        let node = self.node_at(id)?;
        if !matches!(node.op, Op::Input { .. }) {
            return Err(internal(format!("input {id:?} is not an input node")));
        }
        if !crate::values::has_type(value, &node.ty) {
            return Err(EvalError::BadInput(format!(
                "input {:?} must be {}, got {}",
                node.name,
                node.ty,
                describe(value)
            )));
        }
        self.set(id, Rc::new(value.clone()))
    }

    /// Evaluates the root region; its results in output order.
    pub(super) fn run(&mut self) -> Result<Vec<Value>, EvalError> {
        let graph = self.graph;
        let results = self.region(&graph.root)?;
        Ok(results.into_iter().map(Rc::unwrap_or_clone).collect())
    }

    fn charge(&mut self, units: u64) -> Result<(), EvalError> {
        let used = self.fuel_used.saturating_add(units);
        if used > self.limits.fuel {
            return Err(EvalError::Fuel {
                budget: self.limits.fuel,
                used,
            });
        }
        self.fuel_used = used;
        if used >= self.next_clock_check {
            self.next_clock_check = used.saturating_add(CLOCK_CHECK_FUEL);
            self.check_deadline()?;
        }
        Ok(())
    }

    /// `Deadline` once the run's deadline has passed.
    fn check_deadline(&self) -> Result<(), EvalError> {
        match self.limits.deadline {
            Some(deadline) if deadline.passed() => Err(EvalError::Deadline {
                limit: deadline.limit,
            }),
            _ => Ok(()),
        }
    }

    fn node_at(&self, id: NodeId) -> Result<&'g Node, EvalError> {
        let graph = self.graph;
        graph
            .nodes
            .get(id.index())
            .ok_or_else(|| internal(format!("{id:?} is not a node")))
    }

    fn get(&self, id: NodeId) -> Result<&Rc<Value>, EvalError> {
        self.values
            .get(id.index())
            .and_then(Option::as_ref)
            .ok_or_else(|| internal(format!("{id:?} is read before it is evaluated")))
    }

    fn set(&mut self, id: NodeId, value: Rc<Value>) -> Result<(), EvalError> {
        let shares = matches!(
            self.node_at(id)?.op,
            Op::Param | Op::If { .. } | Op::Loop { .. } | Op::Cached { .. }
        );
        let bytes = if shares { 0 } else { value_bytes(&value) };
        let slot = self
            .values
            .get_mut(id.index())
            .ok_or_else(|| internal(format!("{id:?} has no slot")))?;
        *slot = Some(value);
        let held = &mut self.held[id.index()];
        self.live_bytes = self.live_bytes.saturating_sub(*held).saturating_add(bytes);
        *held = bytes;
        if self.live_bytes > self.limits.memory_bytes {
            return Err(EvalError::OutOfMemory {
                node: id,
                bytes: self.live_bytes,
            });
        }
        Ok(())
    }

    /// Lets go of the values whose last reader `id` was.
    fn release(&mut self, id: NodeId) {
        let Some(done) = self.release_after.get(id.index()) else {
            return;
        };
        for &value in done {
            let i = value.index();
            if let (Some(slot), Some(held)) = (self.values.get_mut(i), self.held.get_mut(i)) {
                *slot = None;
                self.live_bytes = self.live_bytes.saturating_sub(*held);
                *held = 0;
            }
        }
    }

    /// One effect node: the call, then its answer as the node's value, with the conversions
    /// the guest uses (graphjit-value's `effects`).
    fn effect(&mut self, node: &Node, id: NodeId, args: Vec<Value>) -> Result<Value, EvalError> {
        let failed = |error: EffectError| EvalError::Effect { node: id, error };
        let bad = |message: String| failed(EffectError::BadAnswer(message));
        let call = match &node.op {
            Op::DbQuery { sql, .. } | Op::DbExecute { sql } => {
                let params = args
                    .iter()
                    .map(cell_from_value)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(bad)?;
                if matches!(node.op, Op::DbQuery { .. }) {
                    EffectCall::DbQuery {
                        sql: sql.clone(),
                        params,
                    }
                } else {
                    EffectCall::DbExecute {
                        sql: sql.clone(),
                        params,
                    }
                }
            }
            Op::DbExecuteMany { sql, fields } => {
                let list = args.first().ok_or_else(|| internal("no list of rows"))?;
                let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
                EffectCall::DbExecuteMany {
                    sql: sql.clone(),
                    rows: conv::param_rows(list, &fields).map_err(bad)?,
                }
            }
            Op::Http {
                method,
                url,
                headers,
                answer,
            } => {
                let (body, values) = args.split_at(args.len() - headers.len().min(args.len()));
                let named: Vec<(&str, &Value)> =
                    headers.iter().map(String::as_str).zip(values).collect();
                let request = http_conv::request(&named, body.first()).map_err(bad)?;
                EffectCall::Http(HttpRequest {
                    method: method.clone(),
                    url: url.clone(),
                    headers: request.headers,
                    body: request.body,
                    response_headers: answer.wants_headers(),
                })
            }
            Op::Kernel { name } => EffectCall::Kernel {
                name: name.clone(),
                args: args
                    .iter()
                    .map(|a| match a {
                        Value::Tensor(t) => Ok(t.clone()),
                        _ => Err(internal("a kernel argument is not a tensor")),
                    })
                    .collect::<Result<_, _>>()?,
            },
            Op::Log { level } => EffectCall::Log {
                level: level.clone(),
                message: format!("{:?}", args.first()),
            },
            _ => return Err(internal("not an effect op")),
        };
        let answer = self.serve(call)?;
        let answer = match (&node.op, answer) {
            // `log` has no error (the WIT `log` returns nothing): a line the host refuses (the
            // call cap, no host) is dropped, and the node is its argument, in both engines.
            (Op::Log { .. }, Err(_)) => EffectAnswer::Unit,
            (_, answer) => answer.map_err(failed)?,
        };
        match (&node.op, answer) {
            (Op::DbQuery { answer, .. }, EffectAnswer::Rows(rows)) => {
                conv::rows_to_value(&rows, answer).map_err(bad)
            }
            (Op::DbExecute { .. } | Op::DbExecuteMany { .. }, EffectAnswer::Count(n)) => {
                i64::try_from(n)
                    .map(Value::I64)
                    .map_err(|_| bad(format!("row count {n}")))
            }
            (Op::Http { answer, .. }, EffectAnswer::Response(r)) => {
                http_conv::answer(r.status, r.headers, &r.body, answer).map_err(|e| match e {
                    http_conv::AnswerError::Status(status) => {
                        failed(EffectError::HttpStatus(status))
                    }
                    http_conv::AnswerError::Bad(message) => bad(message),
                })
            }
            (Op::Kernel { .. }, EffectAnswer::Tensor(t)) => {
                let Type::Tensor(expected) = &node.ty else {
                    return Err(internal("a kernel node that is not a tensor"));
                };
                conv::tensor_answer(t.shape, t.data, expected)
                    .map(Value::Tensor)
                    .map_err(bad)
            }
            (Op::Log { .. }, EffectAnswer::Unit) => args
                .into_iter()
                .next()
                .ok_or_else(|| internal("`log` without an argument")),
            (_, other) => Err(failed(EffectError::Other(format!(
                "the handler answered with the wrong kind of answer: {other:?}"
            )))),
        }
    }

    /// Evaluates the demanded nodes of `region` in its (canonical) order; its results.
    fn region(&mut self, region: &'g Region) -> Result<Vec<Rc<Value>>, EvalError> {
        for &id in &region.nodes {
            let demanded = self
                .demanded
                .get(id.index())
                .copied()
                .ok_or_else(|| internal(format!("{id:?} is not a node")))?;
            if demanded {
                let value = self.node(id)?;
                self.set(id, value)?;
                self.release(id);
            }
        }
        region
            .results
            .iter()
            .map(|&r| self.get(r).cloned())
            .collect()
    }

    fn node(&mut self, id: NodeId) -> Result<Rc<Value>, EvalError> {
        let node = self.node_at(id)?;
        let cost = self.costs.get(id.index()).copied().unwrap_or(1);
        self.charge(cost)?;
        if let Some(bytes) = allocation_bytes(node)
            && bytes > self.limits.memory_bytes
        {
            return Err(EvalError::OutOfMemory { node: id, bytes });
        }
        let value = match &node.op {
            Op::Input { .. } => Rc::clone(self.get(id)?),
            Op::Param => return Err(internal(format!("param {id:?} listed as a region node"))),
            Op::Const(c) => Rc::new(const_value(c)),
            Op::If { then, otherwise } => {
                let branch = match self.arguments(node)?.as_slice() {
                    [Value::Bool(true)] => then,
                    [Value::Bool(false)] => otherwise,
                    _ => return Err(internal("`if` without one bool condition")),
                };
                let mut results = self.region(branch)?;
                match (results.pop(), results.is_empty()) {
                    (Some(value), true) => value,
                    _ => return Err(internal("an `if` branch without exactly one result")),
                }
            }
            Op::Loop { iterations, body } => self.run_loop(node, *iterations, body)?,
            Op::Cached { body, .. } => self.run_cached(id, node, body)?,
            Op::Map { body }
            | Op::Filter { body }
            | Op::Fold { body }
            | Op::SortBy { body }
            | Op::GroupBy { body } => self.run_list_region(id, node, body)?,
            Op::None => Rc::new(Value::Option(None)),
            Op::Sequence => match node.args.last() {
                Some(&last) => Rc::clone(self.get(last)?),
                None => return Err(internal("`sequence` without arguments")),
            },
            Op::Fork => Rc::new(Value::Tuple(
                self.arguments(node)?.into_iter().cloned().collect(),
            )),
            Op::Get { index: Some(index) } => match self.arguments(node)?.as_slice() {
                [Value::Tuple(items)] => Rc::new(
                    items
                        .get(*index as usize)
                        .cloned()
                        .ok_or_else(|| internal("`get` index out of range"))?,
                ),
                _ => return Err(internal("`get` of something other than one tuple")),
            },
            Op::Fused { steps, reduce } => {
                let Type::Tensor(shape) = &node.ty else {
                    return Err(internal("a fused node that is not a tensor"));
                };
                let args = self.arguments(node)?;
                Rc::new(match reduce {
                    None => tensor::fused(steps, &args, shape)?,
                    Some((op, elements)) => tensor::fused_reduce(steps, &args, elements, *op)?,
                })
            }
            Op::FusedReductions {
                steps,
                outputs,
                shape,
            } => {
                // Each output is its member's program alone (the steps up to its register),
                // reduced: exactly what the separate fused nodes computed.
                let args = self.arguments(node)?;
                let mut items = Vec::with_capacity(outputs.len());
                for &(register, op) in outputs {
                    let program = steps
                        .get(..=register as usize)
                        .ok_or_else(|| internal("a fused output past the program"))?;
                    items.push(tensor::fused_reduce(program, &args, shape, op)?);
                }
                Rc::new(Value::Tuple(items))
            }
            Op::DbQuery { .. }
            | Op::DbExecute { .. }
            | Op::DbExecuteMany { .. }
            | Op::Http { .. }
            | Op::Kernel { .. }
            | Op::Log { .. } => {
                let args: Vec<Value> = self.arguments(node)?.into_iter().cloned().collect();
                Rc::new(self.effect(node, id, args)?)
            }
            // The value rules: `tensor::apply` or `scalar::apply` (each a match on the op and
            // its argument values; a combination typing forbids is `Internal`).
            op @ (Op::Unary(_)
            | Op::Str(_)
            | Op::Binary(_)
            | Op::Compare(_)
            | Op::Iota { .. }
            | Op::Fill { .. }
            | Op::Reshape { .. }
            | Op::Transpose
            | Op::MatMul
            | Op::NativeMatMul
            | Op::Clamp
            | Op::Reduce(_)
            | Op::ReduceAxis { .. }
            | Op::Softmax { .. }
            | Op::LayerNorm { .. }
            | Op::ToF64
            | Op::ToI64
            | Op::ToTensor
            | Op::Concat
            | Op::Len
            | Op::ToString
            | Op::Get { index: None }
            | Op::List
            | Op::Range
            | Op::Slice
            | Op::Reverse
            | Op::Zip
            | Op::Split
            | Op::Join
            | Op::JsonParse
            | Op::JsonEmit
            | Op::Any
            | Op::All
            | Op::Record { .. }
            | Op::GetField { .. }
            | Op::With { .. }
            | Op::Some
            | Op::IsSome
            | Op::UnwrapOr
            | Op::Unwrap) => {
                let args = self.arguments(node)?;
                let memory = self.limits.memory_bytes;
                Rc::new(if data::is_data_op(op, &args) {
                    data::apply(op, &args, &node.ty, id, memory)?
                } else if is_tensor_op(op, &args) {
                    tensor::apply(op, &args, id)?
                } else {
                    scalar::apply(op, &args, id, memory)?
                })
            }
        };
        if !crate::values::has_type(&value, &node.ty) {
            return Err(internal(format!(
                "`{}` at {id:?} produced {}, its type is {}",
                node.op.name(),
                describe(&value),
                node.ty
            )));
        }
        self.charge(string_bytes(&value) / 256)?;
        self.charge(self.elements_walked(node, &value)? / 16)?;
        Ok(value)
    }

    /// The list elements a node walked: its result's, and its list arguments' for the ops
    /// that read every element (all but `get` and `len`, which read one or none; `map`,
    /// `filter` and `fold` pay per iteration instead). The "list elements" rule.
    fn elements_walked(&self, node: &Node, value: &Value) -> Result<u64, EvalError> {
        let passes_on = matches!(
            node.op,
            Op::Input { .. }
                | Op::Param
                | Op::If { .. }
                | Op::Loop { .. }
                | Op::Sequence
                | Op::Get { .. }
                | Op::Map { .. }
                | Op::Filter { .. }
                | Op::Fold { .. }
                | Op::SortBy { .. }
                | Op::GroupBy { .. }
                | Op::Cached { .. }
        );
        // Read from the types, so a graph without lists pays nothing here per node.
        let graph = self.graph;
        let is_list = |id: &NodeId| {
            matches!(
                graph.nodes.get(id.index()).map(|n| &n.ty),
                Some(Type::List(_))
            )
        };
        if passes_on || (!matches!(node.ty, Type::List(_)) && !node.args.iter().any(is_list)) {
            return Ok(0);
        }
        let mut walked = list_len(value);
        if !matches!(node.op, Op::Len | Op::GetField { .. } | Op::IsSome) {
            for &arg in &node.args {
                walked = walked.saturating_add(list_len(self.get(arg)?));
            }
        }
        Ok(walked)
    }

    fn arguments(&self, node: &Node) -> Result<Vec<&Value>, EvalError> {
        node.args
            .iter()
            .map(|&a| self.get(a).map(|v| &**v))
            .collect()
    }
}

/// Ops whose rules live in [`tensor`]: those that make tensors, or take one.
fn is_tensor_op(op: &Op, args: &[&Value]) -> bool {
    matches!(
        op,
        Op::Iota { .. }
            | Op::Fill { .. }
            | Op::Reshape { .. }
            | Op::Transpose
            | Op::MatMul
            | Op::NativeMatMul
            | Op::Reduce(_)
            | Op::ReduceAxis { .. }
            | Op::Softmax { .. }
            | Op::LayerNorm { .. }
            | Op::ToTensor
    ) || args.iter().any(|a| matches!(a, Value::Tensor(_)))
}

pub(super) fn internal(message: impl Into<String>) -> EvalError {
    EvalError::Internal(message.into())
}
