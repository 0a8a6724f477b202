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

use std::rc::Rc;

use graphjit_value::Value;

use graphjit_value::effects::{self as conv, cell_from_value};

use super::{EffectFn, EffectServer, EvalError, EvalLimits, const_value, data, scalar, tensor};
use crate::effects::{EffectAnswer, EffectBudget, EffectCall, EffectError};
use crate::graph::{Graph, Node, NodeId, Op, Region, Type, Work};

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
        Ok(Interp {
            graph,
            effects,
            budget,
            demanded: graph.demanded(),
            costs,
            values: vec![None; graph.nodes.len()],
            held: vec![0; graph.nodes.len()],
            live_bytes: 0,
            release_after: last_readers(graph),
            fuel_used: 0,
            next_clock_check: 0,
            limits,
        })
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
            Op::Param | Op::If { .. } | Op::Loop { .. }
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
            Op::Http { method, url, .. } => EffectCall::Http {
                method: method.clone(),
                url: url.clone(),
                body: match args.first() {
                    Some(Value::Str(s)) => Some(s.clone().into_bytes()),
                    _ => None,
                },
            },
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
            (Op::DbExecute { .. }, EffectAnswer::Count(n)) => i64::try_from(n)
                .map(Value::I64)
                .map_err(|_| bad(format!("row count {n}"))),
            (Op::Http { answer, .. }, EffectAnswer::Response { status, body }) => {
                if !(200..300).contains(&status) {
                    return Err(failed(EffectError::HttpStatus(status)));
                }
                conv::body_to_value(&body, answer).map_err(bad)
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
        );
        if passes_on {
            return Ok(0);
        }
        let mut walked = list_len(value);
        if !matches!(node.op, Op::Len | Op::GetField { .. } | Op::IsSome) {
            for arg in self.arguments(node)? {
                walked = walked.saturating_add(list_len(arg));
            }
        }
        Ok(walked)
    }

    /// `map`, `filter` and `fold`: the body once per element of `args[0]`, in order, 1 fuel
    /// per iteration besides the body's nodes. The list being built counts against the memory
    /// limit as it grows.
    fn run_list_region(
        &mut self,
        id: NodeId,
        node: &Node,
        body: &'g Region,
    ) -> Result<Rc<Value>, EvalError> {
        let list = Rc::clone(
            self.get(
                node.args
                    .first()
                    .copied()
                    .ok_or_else(|| internal("a list op without its list"))?,
            )?,
        );
        let Value::List(items) = &*list else {
            return Err(internal("a list op on something other than a list"));
        };
        let fold = matches!(node.op, Op::Fold { .. });
        let (acc_param, item_param) = match (body.params.as_slice(), fold) {
            ([acc, item], true) => (Some(*acc), *item),
            ([item], false) => (None, *item),
            _ => return Err(internal("a list op's body has the wrong params")),
        };
        let mut acc = match node.args.get(1) {
            Some(&init) if fold => Some(Rc::clone(self.get(init)?)),
            _ => None,
        };
        let mut out: Vec<Value> = Vec::new();
        let mut keyed: Vec<(Value, usize, Value)> = Vec::new();
        let mut out_bytes = 0u64;
        for (position, item) in items.iter().enumerate() {
            self.charge(1)?;
            let item = Rc::new(item.clone());
            if let (Some(param), Some(acc)) = (acc_param, acc.take()) {
                self.set(param, acc)?;
            }
            self.set(item_param, Rc::clone(&item))?;
            let result = self
                .region(body)?
                .pop()
                .ok_or_else(|| internal("a list op's body without a result"))?;
            match &node.op {
                Op::Fold { .. } => acc = Some(result),
                Op::Map { .. } => {
                    let value = Rc::unwrap_or_clone(result);
                    out_bytes = out_bytes.saturating_add(value_bytes(&value).saturating_add(8));
                    out.push(value);
                }
                Op::SortBy { .. } | Op::GroupBy { .. } => {
                    let key = Rc::unwrap_or_clone(result);
                    let item = Rc::unwrap_or_clone(item);
                    let bytes = value_bytes(&key) + value_bytes(&item);
                    out_bytes = out_bytes.saturating_add(bytes.saturating_add(16));
                    keyed.push((key, position, item));
                }
                _ => {
                    if matches!(*result, Value::Bool(true)) {
                        out_bytes = out_bytes.saturating_add(value_bytes(&item).saturating_add(8));
                        out.push(Rc::unwrap_or_clone(item));
                    }
                }
            }
            let live = self.live_bytes.saturating_add(out_bytes);
            if live > self.limits.memory_bytes {
                return Err(EvalError::OutOfMemory {
                    node: id,
                    bytes: live,
                });
            }
        }
        // Stable: ties keep list order (positions are unique).
        keyed.sort_unstable_by(|a, b| data::key_order(&a.0, &b.0).then(a.1.cmp(&b.1)));
        Ok(Rc::new(match &node.op {
            Op::Fold { .. } => return acc.ok_or_else(|| internal("`fold` lost its accumulator")),
            Op::SortBy { .. } => Value::List(keyed.into_iter().map(|(_, _, x)| x).collect()),
            Op::GroupBy { .. } => {
                let mut groups: Vec<(Value, Vec<Value>)> = Vec::new();
                for (key, _, item) in keyed {
                    match groups.last_mut() {
                        Some((last, items)) if data::key_order(last, &key).is_eq() => {
                            items.push(item);
                        }
                        _ => groups.push((key, vec![item])),
                    }
                }
                Value::List(
                    groups
                        .into_iter()
                        .map(|(key, items)| {
                            Value::Record(vec![
                                ("items".to_string(), Value::List(items)),
                                ("key".to_string(), key),
                            ])
                        })
                        .collect(),
                )
            }
            _ => Value::List(out),
        }))
    }

    fn arguments(&self, node: &Node) -> Result<Vec<&Value>, EvalError> {
        node.args
            .iter()
            .map(|&a| self.get(a).map(|v| &**v))
            .collect()
    }

    /// `states = args; for i in 0..iterations { bind (i, states); states = body results }`.
    fn run_loop(
        &mut self,
        node: &Node,
        iterations: u64,
        body: &'g Region,
    ) -> Result<Rc<Value>, EvalError> {
        let mut states: Vec<Rc<Value>> = node
            .args
            .iter()
            .map(|&a| self.get(a).cloned())
            .collect::<Result<_, _>>()?;
        let Some((&index_param, state_params)) = body.params.split_first() else {
            return Err(internal("a loop body without an index param"));
        };
        if state_params.len() != states.len() || body.results.len() != states.len() {
            return Err(internal(
                "a loop body's params or results disagree with its states",
            ));
        }
        for i in 0..iterations {
            self.charge(1)?;
            let index = i64::try_from(i).map_err(|_| internal("loop index beyond i64"))?;
            self.set(index_param, Rc::new(Value::I64(index)))?;
            for (&param, state) in state_params.iter().zip(states) {
                self.set(param, state)?;
            }
            states = self.region(body)?;
        }
        if let [single] = states.as_slice() {
            return Ok(Rc::clone(single));
        }
        Ok(Rc::new(Value::Tuple(
            states.into_iter().map(Rc::unwrap_or_clone).collect(),
        )))
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
            | Op::ToTensor
    ) || args.iter().any(|a| matches!(a, Value::Tensor(_)))
}

/// Fuel a node costs before it runs: `1 + W / 64` (see the module docs).
fn node_cost(graph: &Graph, node: &Node) -> Result<u64, EvalError> {
    let arg_type = |i: usize| -> Result<&Type, EvalError> {
        let id = node
            .args
            .get(i)
            .ok_or_else(|| internal(format!("`{}` lacks argument {i}", node.op.name())))?;
        graph
            .nodes
            .get(id.index())
            .map(|n| &n.ty)
            .ok_or_else(|| internal(format!("{id:?} is not a node")))
    };
    let work = match node.op.spec().work {
        Work::MatMul => match (arg_type(0)?, arg_type(1)?) {
            (Type::Tensor(a), Type::Tensor(b)) => match (a.as_slice(), b.as_slice()) {
                (&[m, k], &[_, n]) => u64::from(m)
                    .saturating_mul(u64::from(k))
                    .saturating_mul(u64::from(n)),
                _ => return Err(internal("`matmul` of tensors that are not matrices")),
            },
            _ => return Err(internal("`matmul` of non-tensors")),
        },
        Work::Argument => tensor_elements(arg_type(0)?),
        // A host kernel's work is the host's: the effect budget charges it with the call, in
        // the units a compiled run charges it in (`EffectBudget::admission_fuel`).
        Work::Kernel | Work::Result => tensor_elements(&node.ty),
    };
    Ok(1u64.saturating_add(work / 64))
}

/// f32 elements in a value of type `ty` (all tensors of a tuple).
fn tensor_elements(ty: &Type) -> u64 {
    match ty {
        Type::Tensor(shape) => shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
            .unwrap_or(u64::MAX),
        Type::Tuple(items) => items
            .iter()
            .fold(0u64, |acc, t| acc.saturating_add(tensor_elements(t))),
        Type::Bool
        | Type::I64
        | Type::F64
        | Type::Str
        | Type::List(_)
        | Type::Record(_)
        | Type::Option(_)
        | Type::Bytes => 0,
    }
}

/// The elements of a list value (0 for anything else).
fn list_len(value: &Value) -> u64 {
    match value {
        Value::List(items) => items.len() as u64,
        _ => 0,
    }
}

/// Bytes of the new tensor `node` allocates, if it allocates one (the memory rule).
fn allocation_bytes(node: &Node) -> Option<u64> {
    let passes_values_on = matches!(
        node.op,
        Op::Input { .. }
            | Op::Param
            | Op::If { .. }
            | Op::Loop { .. }
            | Op::Fork
            | Op::Get { .. }
            | Op::Sequence
    );
    match &node.ty {
        ty @ Type::Tensor(_) if !passes_values_on => Some(tensor_elements(ty).saturating_mul(4)),
        _ => None,
    }
}

/// For each node, the values of its own region whose last reader (in region order) it is,
/// a read from inside a nested region counting as a read by the node that holds the region.
/// A region's results are never let go.
fn last_readers(graph: &Graph) -> Vec<Vec<NodeId>> {
    let mut release = vec![Vec::new(); graph.nodes.len()];
    let mut pending = vec![&graph.root];
    while let Some(region) = pending.pop() {
        let own: std::collections::BTreeSet<NodeId> = region.nodes.iter().copied().collect();
        let mut last: std::collections::BTreeMap<NodeId, NodeId> =
            std::collections::BTreeMap::new();
        for &reader in &region.nodes {
            let node = graph.node(reader);
            pending.extend(node.op.regions());
            for read in reads(graph, node) {
                if own.contains(&read) {
                    last.insert(read, reader);
                }
            }
        }
        for (value, reader) in last {
            if !region.results.contains(&value) {
                release[reader.index()].push(value);
            }
        }
    }
    release
}

/// Every node `node` reads: its arguments, and whatever its nested regions read (their nodes'
/// arguments and their results), transitively.
fn reads(graph: &Graph, node: &Node) -> Vec<NodeId> {
    let mut out = node.args.clone();
    let mut pending: Vec<&Region> = node.op.regions();
    while let Some(region) = pending.pop() {
        out.extend(region.results.iter().copied());
        for &inner in &region.nodes {
            let inner = graph.node(inner);
            out.extend(inner.args.iter().copied());
            pending.extend(inner.op.regions());
        }
    }
    out
}

/// Bytes `value` holds: tensor data (4 per element), string and bytes payloads, 8 per list
/// element (the slot a guest's `Vec` holds it in), over the parts of tuples, lists, records
/// and options.
fn value_bytes(value: &Value) -> u64 {
    match value {
        Value::Tensor(t) => (t.data.len() as u64).saturating_mul(4),
        Value::Str(s) => s.len() as u64,
        Value::Bytes(b) => b.len() as u64,
        Value::Tuple(items) => items
            .iter()
            .fold(0u64, |acc, v| acc.saturating_add(value_bytes(v))),
        Value::List(items) => items.iter().fold(0u64, |acc, v| {
            acc.saturating_add(value_bytes(v)).saturating_add(8)
        }),
        Value::Record(fields) => fields
            .iter()
            .fold(0u64, |acc, (_, v)| acc.saturating_add(value_bytes(v))),
        Value::Option(v) => v.as_ref().map_or(0, |v| value_bytes(v)),
        Value::Bool(_) | Value::I64(_) | Value::F64(_) => 0,
    }
}

/// String (and bytes) payloads held in `value`, at any depth.
fn string_bytes(value: &Value) -> u64 {
    match value {
        Value::Str(s) => s.len() as u64,
        Value::Bytes(b) => b.len() as u64,
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .fold(0u64, |acc, v| acc.saturating_add(string_bytes(v))),
        Value::Record(fields) => fields
            .iter()
            .fold(0u64, |acc, (_, v)| acc.saturating_add(string_bytes(v))),
        Value::Option(v) => v.as_ref().map_or(0, |v| string_bytes(v)),
        Value::Bool(_) | Value::I64(_) | Value::F64(_) | Value::Tensor(_) => 0,
    }
}

/// A value's kind for messages (never its contents, which may be large).
fn describe(value: &Value) -> String {
    match value {
        Value::Bool(_) => "a bool".into(),
        Value::I64(_) => "an i64".into(),
        Value::F64(_) => "an f64".into(),
        Value::Str(_) => "a string".into(),
        Value::Tensor(t) => format!(
            "a tensor of shape {:?} with {} elements",
            t.shape,
            t.data.len()
        ),
        Value::Tuple(items) => format!("a tuple of {}", items.len()),
        Value::List(items) => format!("a list of {}", items.len()),
        Value::Record(fields) => format!("a record of {} fields", fields.len()),
        Value::Option(None) => "none".into(),
        Value::Option(Some(_)) => "an option holding a value".into(),
        Value::Bytes(b) => format!("{} bytes", b.len()),
    }
}

pub(super) fn internal(message: impl Into<String>) -> EvalError {
    EvalError::Internal(message.into())
}
