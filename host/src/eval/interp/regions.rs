//! The nodes that run a region more than once: `loop` (a literal count) and the list
//! regions `map`, `filter`, `fold`, `sort_by` and `group_by` (once per element).

use std::rc::Rc;

use graphjit_value::Value;

use super::accounting::value_bytes;
use super::{Interp, internal};
use crate::eval::{EvalError, data};
use crate::graph::{Node, NodeId, Op, Region};
use crate::memo::RunMemo;

impl<'g> Interp<'g, '_> {
    /// `cached`: the memo's value for the values the body reads (its arguments, then the
    /// outer nodes it reads, encoded: NaNs canonical), or the body run on the arguments and
    /// its result stored. Fuel as `crate::memo` defines it, memo or not; a hit's value counts
    /// against the memory limit like any new value.
    pub(super) fn run_cached(
        &mut self,
        id: NodeId,
        node: &Node,
        body: &'g Region,
    ) -> Result<Rc<Value>, EvalError> {
        let outer = self.memo_reads.get(&id).cloned().unwrap_or_default();
        let reads = node
            .args
            .iter()
            .chain(&outer)
            .map(|&r| self.get(r).map(|v| (**v).clone()))
            .collect::<Result<Vec<Value>, _>>()?;
        let mut key = Vec::with_capacity(graphjit_value::encoded_len(&reads));
        graphjit_value::encode(&reads, &mut key);
        drop(reads);
        let found = self.memo.as_mut().and_then(|memo| memo.lookup(id.0, &key));
        self.charge(RunMemo::lookup_fuel(
            key.len(),
            found.as_ref().map_or(0, |v| v.len()),
        ))?;
        if let Some(found) = found {
            self.memo_hits = self.memo_hits.saturating_add(1);
            let value = match graphjit_value::decode(&found).map(Vec::into_iter) {
                Ok(mut values) => match (values.next(), values.next()) {
                    (Some(value), None) => value,
                    _ => return Err(internal("a memo entry that is not one value")),
                },
                Err(e) => return Err(internal(format!("a memo entry does not decode: {e}"))),
            };
            let bytes = self.live_bytes.saturating_add(value_bytes(&value));
            if bytes > self.limits.memory_bytes {
                return Err(EvalError::OutOfMemory { node: id, bytes });
            }
            return Ok(Rc::new(value));
        }
        self.memo_misses = self.memo_misses.saturating_add(1);
        if body.params.len() != node.args.len() {
            return Err(internal("a `cached` body without one param per argument"));
        }
        for (&param, &arg) in body.params.iter().zip(&node.args) {
            let value = Rc::clone(self.get(arg)?);
            self.set(param, value)?;
        }
        let result = self
            .region(body)?
            .pop()
            .ok_or_else(|| internal("a `cached` body without a result"))?;
        let stored = [(*result).clone()];
        let mut value = Vec::with_capacity(graphjit_value::encoded_len(&stored));
        graphjit_value::encode(&stored, &mut value);
        self.charge(RunMemo::store_fuel(value.len()))?;
        if let Some(memo) = self.memo.as_mut() {
            memo.store(id.0, &key, value);
        }
        Ok(result)
    }

    /// `map`, `filter` and `fold`: the body once per element of `args[0]`, in order, 1 fuel
    /// per iteration besides the body's nodes. The list being built counts against the memory
    /// limit as it grows.
    pub(super) fn run_list_region(
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

    /// `states = args; for i in 0..iterations { bind (i, states); states = body results }`.
    pub(super) fn run_loop(
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
