//! Lowering of the ops that own regions: `if` (two branches) and `loop` (a body with an
//! index and states), their result types and the outer nodes they capture.

use std::collections::BTreeSet;

use crate::graph::error::{GraphError, GraphErrorKind as Kind};
use crate::graph::json::{NodeJson, RegionJson};
use crate::graph::types::Type;
use crate::graph::{NodeId, Op, OpKind, Region};

/// Whether values of `ty` can be sort and group keys (`graphjit_value::lists::SortKey`).
fn is_key(ty: &Type) -> bool {
    matches!(ty, Type::I64 | Type::F64 | Type::Bool | Type::Str)
}

/// The longest declared cache key, in bytes.
const MAX_CACHE_KEY: usize = 256;

/// The longest lifetime of a cached entry: 30 days.
const MAX_TTL_MS: u64 = 30 * 24 * 3_600_000;

use super::Lowering;
use super::values::list_types;

impl Lowering<'_> {
    pub(super) fn if_node(
        &mut self,
        json: &NodeJson,
        args: Vec<NodeId>,
        arg_types: &[Type],
    ) -> Result<NodeId, GraphError> {
        let at = |e: GraphError| e.at(&json.id);
        if arg_types != [Type::Bool] {
            return Err(at(GraphError::new(
                Kind::Type,
                format!(
                    "`if` takes one bool argument (the condition), got {}",
                    list_types(arg_types)
                ),
                "compare values with eq/lt/... to get a bool",
            )));
        }
        let (Some(then_json), Some(else_json)) = (&json.then, &json.otherwise) else {
            return Err(at(GraphError::new(
                Kind::Field,
                "`if` needs \"then\" and \"else\" regions",
                "add both",
            )));
        };
        // The node is allocated first (pre-order ids); its op and type are filled in below.
        let id = self.alloc(&json.id, Op::Sequence, args, Type::Bool);
        let mut branches = Vec::with_capacity(2);
        for (label, region) in [("then", then_json), ("else", else_json)] {
            if !region.params.is_empty() || region.results.is_some() || region.result.is_none() {
                return Err(at(GraphError::new(
                    Kind::Field,
                    format!("the {label:?} region of `if` takes no params and one \"result\""),
                    "write {\"nodes\": [...], \"result\": \"id\"}",
                )));
            }
            branches.push(self.region(&region.nodes, &[], &region.result_names())?);
        }
        let (then_ty, else_ty) = (
            self.result_type(&branches[0], 0),
            self.result_type(&branches[1], 0),
        );
        if then_ty != else_ty {
            return Err(at(GraphError::new(
                Kind::Type,
                format!("`if` branches differ in type: then is {then_ty}, else is {else_ty}"),
                "make both branches produce the same type",
            )));
        }
        self.count_type(&then_ty).map_err(at)?;
        let otherwise = branches.pop().unwrap_or_default();
        let then = branches.pop().unwrap_or_default();
        let captures = self.captures(&[&then, &otherwise], id);
        if let Some(size) = self.type_sizes.get_mut(id.index()) {
            *size = then_ty.size();
        }
        let node = &mut self.nodes[id.index()];
        node.op = Op::If { then, otherwise };
        node.ty = then_ty;
        node.captures = captures;
        Ok(id)
    }

    pub(super) fn loop_node(
        &mut self,
        json: &NodeJson,
        args: Vec<NodeId>,
        arg_types: Vec<Type>,
    ) -> Result<NodeId, GraphError> {
        let at = |e: GraphError| e.at(&json.id);
        let iterations = json.iterations.ok_or_else(|| {
            at(GraphError::new(
                Kind::Field,
                "`loop` needs \"iterations\" (a literal count)",
                "add \"iterations\": N",
            ))
        })?;
        if iterations > i64::MAX as u64 {
            return Err(at(GraphError::new(
                Kind::Value,
                format!("{iterations} iterations exceeds i64::MAX"),
                "use a smaller count; fuel bounds the run anyway",
            )));
        }
        let body = json.body.as_ref().ok_or_else(|| {
            at(GraphError::new(
                Kind::Field,
                "`loop` needs a \"body\" region",
                "add \"body\": {\"params\": [...], ...}",
            ))
        })?;
        let states = arg_types.len();
        let results = body.results.as_ref().map_or(0, Vec::len);
        if states == 0
            || body.params.len() != states + 1
            || results != states
            || body.result.is_some()
        {
            return Err(at(GraphError::new(
                Kind::Field,
                format!(
                    "a loop with {states} initial state(s) needs {} body params (index, then states) and {states} \"results\"; got {} params and {results} results",
                    states + 1,
                    body.params.len()
                ),
                "give the loop at least one state in \"args\", and match the body's params and results to it",
            )));
        }
        let ty = if states == 1 {
            arg_types[0].clone()
        } else {
            Type::Tuple(arg_types.clone())
        };
        // The loop's type, and its params' (the index, then one per state).
        self.check_type_size(&ty).map_err(at)?;
        self.count_type(&ty).map_err(at)?;
        self.count_type_nodes(ty.size().saturating_add(1))
            .map_err(at)?;
        let id = self.alloc(&json.id, Op::Sequence, args, ty);
        let mut params = Vec::with_capacity(states + 1);
        for (i, name) in body.params.iter().enumerate() {
            let ty = if i == 0 {
                Type::I64
            } else {
                arg_types[i - 1].clone()
            };
            params.push(self.alloc(name, Op::Param, Vec::new(), ty));
        }
        let region = self.region(&body.nodes, &params, &body.result_names())?;
        for (i, expected) in arg_types.iter().enumerate() {
            let got = self.result_type(&region, i);
            if &got != expected {
                return Err(at(GraphError::new(
                    Kind::Type,
                    format!("loop state {i} starts as {expected} but the body returns {got}"),
                    "make each body result the same type as its initial state",
                )));
            }
        }
        let captures = self.captures(&[&region], id);
        let node = &mut self.nodes[id.index()];
        node.op = Op::Loop {
            iterations,
            body: region,
        };
        node.captures = captures;
        Ok(id)
    }

    /// `map`, `filter`, `fold`, `sort_by` and `group_by`: a body run once per element of the
    /// list `args[0]`, in order. All but `fold` bind the element (one param); `fold` binds the
    /// accumulator, then the element, and starts from `args[1]`. The key of `sort_by` and
    /// `group_by` is an i64, f64, bool or string.
    pub(super) fn list_region_node(
        &mut self,
        kind: OpKind,
        json: &NodeJson,
        args: Vec<NodeId>,
        arg_types: &[Type],
    ) -> Result<NodeId, GraphError> {
        let at = |e: GraphError| e.at(&json.id);
        let name = kind.spec().name;
        let fold = kind == OpKind::Fold;
        let (item, acc) = match (arg_types, fold) {
            ([Type::List(item)], false) => ((**item).clone(), None),
            ([Type::List(item), init], true) => ((**item).clone(), Some(init.clone())),
            _ => {
                return Err(at(GraphError::new(
                    Kind::Type,
                    format!(
                        "`{name}` takes {}, got {}",
                        if fold {
                            "a list and an initial value"
                        } else {
                            "one list"
                        },
                        list_types(arg_types)
                    ),
                    "see the list ops in docs/graph-format.md",
                )));
            }
        };
        let body = json.body.as_ref().ok_or_else(|| {
            at(GraphError::new(
                Kind::Field,
                format!("`{name}` needs a \"body\" region"),
                "add \"body\": {\"params\": [...], \"nodes\": [...], \"result\": \"id\"}",
            ))
        })?;
        let params_wanted = if fold { 2 } else { 1 };
        if body.params.len() != params_wanted || body.result.is_none() || body.results.is_some() {
            return Err(at(GraphError::new(
                Kind::Field,
                format!(
                    "the body of `{name}` takes {} and one \"result\"; got {} params",
                    if fold {
                        "two params (the accumulator, then the element)"
                    } else {
                        "one param (the element)"
                    },
                    body.params.len()
                ),
                "match the body's params and result to the op",
            )));
        }
        // Typed below, from the body's result.
        let param_types: Vec<Type> = acc.iter().cloned().chain([item.clone()]).collect();
        let (id, region) = self.body_node(json, args, body, param_types)?;
        let result = self.result_type(&region, 0);
        let (op, ty) = match kind {
            OpKind::Map => (Op::Map { body: region }, Type::List(Box::new(result))),
            OpKind::Filter if result == Type::Bool => {
                (Op::Filter { body: region }, Type::List(Box::new(item)))
            }
            OpKind::Fold if Some(&result) == acc.as_ref() => (Op::Fold { body: region }, result),
            OpKind::SortBy if is_key(&result) => {
                (Op::SortBy { body: region }, Type::List(Box::new(item)))
            }
            OpKind::GroupBy if is_key(&result) => (
                Op::GroupBy { body: region },
                Type::List(Box::new(Type::Record(vec![
                    ("items".to_string(), Type::List(Box::new(item))),
                    ("key".to_string(), result),
                ]))),
            ),
            _ => {
                return Err(at(GraphError::new(
                    Kind::Type,
                    match kind {
                        OpKind::Filter => format!("the body of `filter` gives {result}, not bool"),
                        OpKind::SortBy | OpKind::GroupBy => format!(
                            "the body of `{name}` gives {result}; a key is an i64, f64, bool or string"
                        ),
                        _ => format!(
                            "the body of `fold` gives {result}, but the accumulator is {}",
                            acc.map_or_else(String::new, |t| t.to_string())
                        ),
                    },
                    "make the body's result the type the op needs",
                )));
            }
        };
        self.check_type_size(&ty).map_err(at)?;
        self.count_type(&ty).map_err(at)?;
        Ok(self.fill_region_node(id, op, ty))
    }

    /// `cached`: a body whose params are the node's arguments and whose one result is the
    /// node's value, memoized by the host under `key` and the values the body reads (its
    /// arguments and captures). A body that holds an effect needs `ttl_ms`: what it read
    /// from outside may change. The value must be data (no tuple: a tuple never crosses the
    /// boundary as a value).
    pub(super) fn cached_node(
        &mut self,
        json: &NodeJson,
        args: Vec<NodeId>,
        arg_types: Vec<Type>,
    ) -> Result<NodeId, GraphError> {
        let at = |e: GraphError| e.at(&json.id);
        if self.version < 2 {
            return Err(at(GraphError::new(
                Kind::Field,
                "`cached` is an op of graph format version 2",
                "write \"version\": 2",
            )));
        }
        let key = json.key.clone().ok_or_else(|| {
            at(GraphError::new(
                Kind::Field,
                "`cached` needs a \"key\"",
                "add \"key\": \"a name for what the body computes\" (change it to drop old entries)",
            ))
        })?;
        if key.is_empty() || key.len() > MAX_CACHE_KEY {
            return Err(at(GraphError::new(
                Kind::Value,
                format!(
                    "a cache key is 1 to {MAX_CACHE_KEY} bytes, this one is {}",
                    key.len()
                ),
                "use a short name",
            )));
        }
        let ttl_ms = match json.ttl_ms {
            Some(0) => {
                return Err(at(GraphError::new(
                    Kind::Value,
                    "\"ttl_ms\" of 0 would never hit",
                    "give entries a lifetime of at least 1 ms, or remove the `cached` node",
                )));
            }
            Some(ms) if ms > MAX_TTL_MS => {
                return Err(at(GraphError::new(
                    Kind::Value,
                    format!(
                        "\"ttl_ms\" {ms} is over the longest lifetime, {MAX_TTL_MS} ms (30 days)"
                    ),
                    "use a shorter lifetime",
                )));
            }
            ttl => ttl,
        };
        let body = json.body.as_ref().ok_or_else(|| {
            at(GraphError::new(
                Kind::Field,
                "`cached` needs a \"body\" region",
                "add \"body\": {\"params\": [...], \"nodes\": [...], \"result\": \"id\"}",
            ))
        })?;
        if body.params.len() != arg_types.len() || body.result.is_none() || body.results.is_some() {
            return Err(at(GraphError::new(
                Kind::Field,
                format!(
                    "the body of `cached` takes one param per argument ({}) and one \"result\"; got {} params",
                    arg_types.len(),
                    body.params.len()
                ),
                "name each argument in \"params\" and give one \"result\"",
            )));
        }
        let (id, region) = self.body_node(json, args, body, arg_types)?;
        let ty = self.result_type(&region, 0);
        if matches!(ty, Type::Tuple(_)) {
            return Err(at(GraphError::new(
                Kind::Type,
                format!("the body of `cached` gives a tuple ({ty}); a cached value is data"),
                "make the result a record (`record`) instead of a tuple",
            )));
        }
        if ttl_ms.is_none() && self.holds_effect(&region) {
            return Err(at(GraphError::new(
                Kind::Field,
                "the body of `cached` holds an effect, so it needs \"ttl_ms\"",
                "add \"ttl_ms\": how long (ms) an answer read from outside may be reused",
            )));
        }
        self.count_type(&ty).map_err(at)?;
        let op = Op::Cached {
            key,
            ttl_ms,
            body: region,
        };
        Ok(self.fill_region_node(id, op, ty))
    }

    /// Allocates a node with one body region (first, for pre-order ids; its op and type are
    /// filled in by [`Self::fill_region_node`]), then the body's params of `param_types`, and
    /// lowers the body.
    fn body_node(
        &mut self,
        json: &NodeJson,
        args: Vec<NodeId>,
        body: &RegionJson,
        param_types: Vec<Type>,
    ) -> Result<(NodeId, Region), GraphError> {
        let id = self.alloc(&json.id, Op::Sequence, args, Type::Bool);
        let mut params = Vec::with_capacity(param_types.len());
        for (param, ty) in body.params.iter().zip(param_types) {
            self.count_type(&ty).map_err(|e| e.at(&json.id))?;
            params.push(self.alloc(param, Op::Param, Vec::new(), ty));
        }
        let region = self.region(&body.nodes, &params, &body.result_names())?;
        Ok((id, region))
    }

    /// Gives node `id` (allocated first, for pre-order ids) its op with regions, its type and
    /// the outer nodes those regions capture.
    fn fill_region_node(&mut self, id: NodeId, op: Op, ty: Type) -> NodeId {
        let captures = self.captures(&op.regions(), id);
        if let Some(size) = self.type_sizes.get_mut(id.index()) {
            *size = ty.size();
        }
        let node = &mut self.nodes[id.index()];
        node.op = op;
        node.ty = ty;
        node.captures = captures;
        id
    }

    /// Whether `region`, or a region nested in it, holds an effect node.
    fn holds_effect(&self, region: &Region) -> bool {
        region.nodes.iter().any(|&id| {
            let op = &self.nodes[id.index()].op;
            op.is_effect() || op.regions().into_iter().any(|r| self.holds_effect(r))
        })
    }

    pub(super) fn result_type(&self, region: &Region, index: usize) -> Type {
        region
            .results
            .get(index)
            .map_or(Type::Tuple(Vec::new()), |r| {
                self.nodes[r.index()].ty.clone()
            })
    }

    /// Outer nodes referenced from inside `regions` (of node `owner`), sorted by id.
    pub(super) fn captures(&self, regions: &[&Region], owner: NodeId) -> Vec<NodeId> {
        let mut inner = BTreeSet::new();
        let mut used = BTreeSet::new();
        let mut stack: Vec<&Region> = regions.to_vec();
        while let Some(region) = stack.pop() {
            inner.extend(region.params.iter().copied());
            inner.extend(region.nodes.iter().copied());
            used.extend(region.results.iter().copied());
            for &id in &region.nodes {
                let node = &self.nodes[id.index()];
                used.extend(node.dependencies());
                stack.extend(node.op.regions());
            }
        }
        used.into_iter()
            .filter(|id| !inner.contains(id) && *id != owner)
            .collect()
    }
}
