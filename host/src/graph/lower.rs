//! JSON → validated, typed, canonical [`Graph`].
//!
//! Invariants: never panics on any input; every rejection is a [`GraphError`] naming the node
//! at fault and suggesting a fix; the result does not depend on JSON key or node order.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use graphjit_value::{Tensor, canonical_f64};

use super::error::{GraphError, GraphErrorKind as Kind, Limits};
use super::json::{GraphJson, NodeJson, RegionJson, TypeJson, VersionProbe};
use super::ops::Field;
use super::types::{Type, infer, shape_elements};
use super::{
    AnswerType, Class, Const, Graph, GraphLimits, Node, NodeId, Op, OpKind, OpSpec, Region,
};
use crate::footprint::Footprint;

/// The graph format version this build reads.
pub(crate) const FORMAT_VERSION: u64 = 1;

/// Parses, validates and canonicalizes a graph.
pub(crate) fn parse(bytes: &[u8], limits: &Limits) -> Result<Graph, GraphError> {
    if bytes.len() > limits.max_json_bytes {
        return Err(GraphError::new(
            Kind::ResourceExceeded,
            format!(
                "graph is {} bytes; the limit is {}",
                bytes.len(),
                limits.max_json_bytes
            ),
            "split the graph, or move large constants into inputs",
        ));
    }
    let probe: VersionProbe = serde_json::from_slice(bytes).map_err(syntax_error)?;
    match probe.version {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(FORMAT_VERSION) => {}
        Some(other) => {
            return Err(GraphError::new(
                Kind::Version,
                format!("graph format version {other} is not supported"),
                format!("write \"version\": {FORMAT_VERSION}"),
            ));
        }
        None => {
            return Err(GraphError::new(
                Kind::Version,
                "the graph has no \"version\" field",
                format!("add \"version\": {FORMAT_VERSION} at the top level"),
            ));
        }
    }
    let json: GraphJson = serde_json::from_slice(bytes).map_err(syntax_error)?;
    Lowering::new(limits).graph(json)
}

fn syntax_error(e: serde_json::Error) -> GraphError {
    GraphError::new(
        Kind::Syntax,
        format!("{e}"),
        "check the graph against docs/graph-format.md (fields are case-sensitive; unknown fields are refused)",
    )
}

struct Lowering<'l> {
    limits: &'l Limits,
    nodes: Vec<Node>,
    /// Names visible at the current point, innermost scope last.
    scopes: Vec<HashMap<String, NodeId>>,
    /// Every name defined anywhere, to tell "out of scope" from "unknown".
    all_names: HashSet<String>,
    constant_elements: usize,
    /// Type nodes in each node's type, by node index (so that counting never walks a type
    /// twice).
    type_sizes: Vec<u64>,
    /// Type nodes materialized so far (see [`Limits::max_type_nodes`]).
    type_nodes: u64,
}

impl<'l> Lowering<'l> {
    fn new(limits: &'l Limits) -> Self {
        Lowering {
            limits,
            nodes: Vec::new(),
            scopes: Vec::new(),
            all_names: HashSet::new(),
            constant_elements: 0,
            type_sizes: Vec::new(),
            type_nodes: 0,
        }
    }

    fn graph(mut self, json: GraphJson) -> Result<Graph, GraphError> {
        let mut count = 0usize;
        collect_names(
            &json.nodes,
            &[],
            0,
            self.limits,
            &mut self.all_names,
            &mut count,
        )?;
        if json.outputs.is_empty() {
            return Err(GraphError::new(
                Kind::Field,
                "the graph has no outputs",
                "add \"outputs\": {\"name\": \"node_id\"}",
            ));
        }
        let output_names: Vec<&String> = json.outputs.values().collect();
        let root = self.region(&json.nodes, &[], &output_names)?;
        let inputs = {
            let mut inputs: Vec<NodeId> = root
                .nodes
                .iter()
                .copied()
                .filter(|&id| matches!(self.nodes[id.index()].op, Op::Input { .. }))
                .collect();
            inputs.sort_by(|a, b| self.nodes[a.index()].name.cmp(&self.nodes[b.index()].name));
            inputs
        };
        let footprint = match json.footprint {
            None => Footprint::default(),
            Some(value) => serde_json::from_value::<Footprint>(value).map_err(|e| {
                GraphError::new(
                    Kind::Field,
                    format!("the footprint is not valid: {e}"),
                    "see \"Footprint\" in docs/graph-format.md",
                )
            })?,
        };
        let limits = json.limits.map_or(GraphLimits::default(), |l| GraphLimits {
            fuel: l.fuel,
            memory_bytes: l.memory,
        });
        let graph = Graph {
            name: json.name,
            nodes: self.nodes,
            root,
            inputs,
            outputs: json.outputs.into_keys().collect(),
            limits,
            footprint,
            batch_effects: false,
        };
        debug_assert_eq!(graph.check_invariants(), Ok(()));
        Ok(graph)
    }

    /// Lowers one region whose parameters (already allocated) are `params`.
    fn region(
        &mut self,
        nodes: &[NodeJson],
        params: &[NodeId],
        results: &[&String],
    ) -> Result<Region, GraphError> {
        let mut scope: HashMap<String, NodeId> = HashMap::new();
        for &p in params {
            scope.insert(self.nodes[p.index()].name.clone(), p);
        }
        self.scopes.push(scope);
        let order = canonical_order(nodes)?;
        let mut ids = Vec::with_capacity(nodes.len());
        for index in order {
            let id = self.node(&nodes[index])?;
            ids.push(id);
            if let Some(scope) = self.scopes.last_mut() {
                scope.insert(nodes[index].id.clone(), id);
            }
        }
        let results = results
            .iter()
            .map(|name| {
                self.resolve(name, "").map_err(|mut e| {
                    e.node = None;
                    e.message = format!(
                        "a result or output refers to {name:?}, which {}",
                        e.message.trim_start_matches(&format!("{name:?} "))
                    );
                    e
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.scopes.pop();
        Ok(Region {
            params: params.to_vec(),
            nodes: ids,
            results,
        })
    }

    fn resolve(&self, name: &str, user: &str) -> Result<NodeId, GraphError> {
        for scope in self.scopes.iter().rev() {
            if let Some(&id) = scope.get(name) {
                return Ok(id);
            }
        }
        let (message, remediation) = if self.all_names.contains(name) {
            (
                format!("{name:?} is defined inside another region and is not visible here"),
                "move the node out to a region that encloses both uses",
            )
        } else {
            (
                format!("{name:?} names no node"),
                "check the spelling, or add a node with that id",
            )
        };
        Err(GraphError::new(Kind::UnknownNode, message, remediation).at(user))
    }

    /// Adds `n` type nodes to what lowering has materialized; `ResourceExceeded` past the limit.
    fn count_type_nodes(&mut self, n: u64) -> Result<(), GraphError> {
        self.type_nodes = self.type_nodes.saturating_add(n);
        if self.type_nodes > self.limits.max_type_nodes {
            return Err(GraphError::new(
                Kind::ResourceExceeded,
                format!(
                    "the graph's types hold more than {} parts in all (a tuple counts one plus \
                     its items, and each node counts its arguments' types)",
                    self.limits.max_type_nodes
                ),
                "fork fewer values, and do not fork tuples into bigger tuples",
            ));
        }
        Ok(())
    }

    /// Type nodes in the type of node `id`.
    fn type_size_of(&self, id: NodeId) -> u64 {
        self.type_sizes.get(id.index()).copied().unwrap_or(1)
    }

    /// Counts `ty`, the type of a node about to be allocated or retyped.
    fn count_type(&mut self, ty: &Type) -> Result<(), GraphError> {
        self.count_type_nodes(ty.size())
    }

    fn alloc(&mut self, name: &str, op: Op, args: Vec<NodeId>, ty: Type) -> NodeId {
        let id = NodeId(u32::try_from(self.nodes.len()).unwrap_or(u32::MAX));
        self.type_sizes.push(ty.size());
        self.nodes.push(Node {
            name: name.to_string(),
            op,
            args,
            after: Vec::new(),
            captures: Vec::new(),
            ty,
        });
        id
    }

    fn node(&mut self, json: &NodeJson) -> Result<NodeId, GraphError> {
        let at = |e: GraphError| e.at(&json.id);
        let kind = OpKind::from_name(&json.op).ok_or_else(|| {
            at(GraphError::new(
                Kind::UnknownOp,
                format!("unknown op {:?}", json.op),
                "see the op list in docs/graph-format.md",
            ))
        })?;
        check_fields(kind.spec(), json).map_err(at)?;
        let args: Vec<NodeId> = json
            .args
            .iter()
            .flatten()
            .map(|a| self.resolve(a, &json.id))
            .collect::<Result<_, _>>()?;
        let after: Vec<NodeId> = json
            .after
            .iter()
            .flatten()
            .map(|a| self.resolve(a, &json.id))
            .collect::<Result<_, _>>()?;
        // The argument types are cloned below: count them first, without walking them.
        let arg_type_nodes = args
            .iter()
            .fold(0u64, |acc, &a| acc.saturating_add(self.type_size_of(a)));
        self.count_type_nodes(arg_type_nodes).map_err(at)?;
        let arg_types: Vec<Type> = args
            .iter()
            .map(|a| self.nodes[a.index()].ty.clone())
            .collect();
        let (op, ty) = match kind {
            OpKind::Input => {
                if self.scopes.len() > 1 {
                    return Err(at(GraphError::new(
                        Kind::Field,
                        "inputs may only appear at the top level",
                        "move the input node to the graph's \"nodes\"",
                    )));
                }
                let ty = self.declared_type(json).map_err(at)?;
                let default = match &json.default {
                    Some(v) => Some(self.constant(v, &ty).map_err(at)?),
                    None => None,
                };
                (Op::Input { default }, ty)
            }
            OpKind::Const => {
                let value = json.value.as_ref().ok_or_else(|| {
                    at(GraphError::new(
                        Kind::Field,
                        "`const` needs a \"value\"",
                        "add \"value\": ...",
                    ))
                })?;
                let ty = match &json.ty {
                    Some(_) => self.declared_type(json).map_err(at)?,
                    None => infer_const_type(value).map_err(at)?,
                };
                (Op::Const(self.constant(value, &ty).map_err(at)?), ty)
            }
            OpKind::If => return self.if_node(json, args, &arg_types),
            OpKind::Loop => return self.loop_node(json, args, arg_types),
            OpKind::DbQuery => {
                let ty = self.declared_type(json).map_err(at)?;
                let answer = answer_type(&ty).map_err(at)?;
                let sql = need_text(json, "sql", &json.sql).map_err(at)?;
                (Op::DbQuery { sql, answer }, ty)
            }
            OpKind::Http => {
                let ty = match &json.ty {
                    Some(_) => self.declared_type(json).map_err(at)?,
                    None => Type::Str,
                };
                let answer = answer_type(&ty).map_err(at)?;
                if matches!(answer, AnswerType::Tensor(_)) {
                    return Err(at(GraphError::new(
                        Kind::Type,
                        "an `http` answer cannot be a tensor",
                        "use \"type\": \"string\", \"i64\", \"f64\" or \"bool\"",
                    )));
                }
                let method = need_text(json, "method", &json.method).map_err(at)?;
                let url = need_text(json, "url", &json.url).map_err(at)?;
                (
                    Op::Http {
                        method,
                        url,
                        answer,
                    },
                    ty,
                )
            }
            kind => {
                let op = simple_op(kind, json).map_err(at)?;
                // A shape written on the node is checked against the size limit before typing
                // compares element counts (a ~200-byte `reshape` must be `ResourceExceeded`).
                if let Op::Iota { shape } | Op::Fill { shape, .. } | Op::Reshape { shape } = &op {
                    self.check_type_size(&Type::Tensor(shape.clone()))
                        .map_err(at)?;
                }
                let refs: Vec<&Type> = arg_types.iter().collect();
                let ty = infer(&op, &refs).map_err(|m| {
                    at(GraphError::new(
                        Kind::Type,
                        m,
                        "see the op's argument types in docs/graph-format.md",
                    ))
                })?;
                (op, ty)
            }
        };
        if op.is_effect() {
            check_effect(&op, &arg_types).map_err(at)?;
        }
        self.check_type_size(&ty).map_err(at)?;
        self.count_type(&ty).map_err(at)?;
        let id = self.alloc(&json.id, op, args, ty);
        self.nodes[id.index()].after = after;
        Ok(id)
    }

    fn if_node(
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

    fn loop_node(
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

    fn result_type(&self, region: &Region, index: usize) -> Type {
        region
            .results
            .get(index)
            .map_or(Type::Tuple(Vec::new()), |r| {
                self.nodes[r.index()].ty.clone()
            })
    }

    /// Outer nodes referenced from inside `regions` (of node `owner`), sorted by id.
    fn captures(&self, regions: &[&Region], owner: NodeId) -> Vec<NodeId> {
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

    fn declared_type(&self, json: &NodeJson) -> Result<Type, GraphError> {
        let ty = match &json.ty {
            None => {
                return Err(GraphError::new(
                    Kind::Field,
                    format!("`{}` needs a \"type\"", json.op),
                    "add \"type\": \"i64\" (or bool, f64, string, {\"tensor\": [dims]})",
                ));
            }
            Some(TypeJson::Tensor { tensor }) => Type::Tensor(tensor.clone()),
            Some(TypeJson::Name(name)) => match name.as_str() {
                "bool" => Type::Bool,
                "i64" => Type::I64,
                "f64" => Type::F64,
                "string" => Type::Str,
                other => {
                    return Err(GraphError::new(
                        Kind::Type,
                        format!("unknown type {other:?}"),
                        "use bool, i64, f64, string or {\"tensor\": [dims]}",
                    ));
                }
            },
        };
        self.check_type_size(&ty)?;
        Ok(ty)
    }

    fn check_type_size(&self, ty: &Type) -> Result<(), GraphError> {
        let elements = match ty {
            Type::Tensor(shape) => shape_elements(shape),
            Type::Tuple(items) => {
                // Tuples nest no deeper than regions do: every stage recurses over a type, and
                // the value encoding refuses nesting past `graphjit_value::MAX_DEPTH`.
                if ty.tuple_depth() > self.limits.max_depth {
                    return Err(GraphError::new(
                        Kind::ResourceExceeded,
                        format!("tuples nest deeper than {}", self.limits.max_depth),
                        "fork values side by side instead of forking tuples of tuples",
                    ));
                }
                return items.iter().try_for_each(|t| self.check_type_size(t));
            }
            _ => return Ok(()),
        };
        match elements {
            Some(n) if n <= self.limits.max_tensor_elements => Ok(()),
            _ => Err(GraphError::new(
                Kind::ResourceExceeded,
                format!(
                    "{ty} has more than {} elements",
                    self.limits.max_tensor_elements
                ),
                "use smaller tensors, or split the work",
            )),
        }
    }

    fn constant(&mut self, value: &serde_json::Value, ty: &Type) -> Result<Const, GraphError> {
        let bad = |what: &str| {
            GraphError::new(
                Kind::Value,
                format!("{value} is not {what}"),
                format!("write a value of type {ty}"),
            )
        };
        Ok(match ty {
            Type::Bool => Const::Bool(value.as_bool().ok_or_else(|| bad("a bool"))?),
            Type::I64 => Const::I64(
                value
                    .as_i64()
                    .ok_or_else(|| bad("an i64 (integers only, within ±2^63)"))?,
            ),
            Type::F64 => Const::F64(json_f64(value).ok_or_else(|| bad("an f64"))?),
            Type::Str => {
                let s = value.as_str().ok_or_else(|| bad("a string"))?;
                if s.len() > self.limits.max_string_bytes {
                    return Err(GraphError::new(
                        Kind::ResourceExceeded,
                        format!(
                            "string of {} bytes exceeds the limit of {}",
                            s.len(),
                            self.limits.max_string_bytes
                        ),
                        "pass long text as an input",
                    ));
                }
                Const::Str(s.to_string())
            }
            Type::Tensor(shape) => {
                let expected = Tensor::element_count(shape).unwrap_or(usize::MAX);
                let items = value
                    .as_array()
                    .ok_or_else(|| bad("a flat array of numbers"))?;
                self.constant_elements = self.constant_elements.saturating_add(items.len());
                if self.constant_elements > self.limits.max_constant_elements {
                    return Err(GraphError::new(
                        Kind::ResourceExceeded,
                        format!(
                            "tensor constants hold more than {} elements in all",
                            self.limits.max_constant_elements
                        ),
                        "build big tensors with iota/fill, or pass them as inputs",
                    ));
                }
                if items.len() != expected {
                    return Err(GraphError::new(
                        Kind::Value,
                        format!(
                            "{ty} needs {expected} elements, the value has {}",
                            items.len()
                        ),
                        "write the elements flat, in row-major order",
                    ));
                }
                let data = items
                    .iter()
                    .map(|v| json_f64(v).map(|x| x as f32))
                    .collect::<Option<Vec<f32>>>()
                    .ok_or_else(|| bad("an array of numbers"))?;
                Const::Tensor(Tensor {
                    shape: shape.clone(),
                    data,
                })
            }
            Type::Tuple(_) => return Err(bad("a constant (tuples are built with fork)")),
        })
    }
}

/// A JSON number, or one of the strings "nan", "inf", "-inf" (JSON has no literal for them).
fn json_f64(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => match s.as_str() {
            "nan" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
    .map(canonical_f64)
}

fn infer_const_type(value: &serde_json::Value) -> Result<Type, GraphError> {
    match value {
        serde_json::Value::Bool(_) => Ok(Type::Bool),
        serde_json::Value::Number(n) if n.is_i64() => Ok(Type::I64),
        serde_json::Value::Number(_) => Ok(Type::F64),
        serde_json::Value::String(_) => Ok(Type::Str),
        _ => Err(GraphError::new(
            Kind::Field,
            format!("cannot tell the type of constant {value}"),
            "add \"type\" (tensors need {\"tensor\": [dims]})",
        )),
    }
}

fn list_types(types: &[Type]) -> String {
    let names: Vec<String> = types.iter().map(Type::to_string).collect();
    format!("({})", names.join(", "))
}

/// Ops without regions, from their JSON name and fields.
fn simple_op(kind: OpKind, json: &NodeJson) -> Result<Op, GraphError> {
    let name = kind.spec().name;
    let need_shape = || {
        json.shape.clone().ok_or_else(|| {
            GraphError::new(
                Kind::Field,
                format!("`{name}` needs a \"shape\""),
                "add \"shape\": [dims]",
            )
        })
    };
    Ok(match kind {
        OpKind::Unary(op) => Op::Unary(op),
        OpKind::Binary(op) => Op::Binary(op),
        OpKind::Compare(op) => Op::Compare(op),
        OpKind::Reduce(op) => Op::Reduce(op),
        OpKind::Fork => Op::Fork,
        OpKind::Sequence => Op::Sequence,
        OpKind::Get => Op::Get {
            index: json.index.ok_or_else(|| {
                GraphError::new(Kind::Field, "`get` needs an \"index\"", "add \"index\": N")
            })?,
        },
        OpKind::Iota => Op::Iota {
            shape: need_shape()?,
        },
        OpKind::Fill => {
            let value = json.value.as_ref().and_then(json_f64).ok_or_else(|| {
                GraphError::new(
                    Kind::Field,
                    "`fill` needs a numeric \"value\"",
                    "add \"value\": 0.5",
                )
            })?;
            Op::Fill {
                shape: need_shape()?,
                value: value as f32,
            }
        }
        OpKind::Reshape => Op::Reshape {
            shape: need_shape()?,
        },
        OpKind::Transpose => Op::Transpose,
        OpKind::MatMul => Op::MatMul,
        OpKind::Clamp => Op::Clamp,
        OpKind::ToF64 => Op::ToF64,
        OpKind::ToI64 => Op::ToI64,
        OpKind::ToTensor => Op::ToTensor,
        OpKind::Concat => Op::Concat,
        OpKind::Len => Op::Len,
        OpKind::ToString => Op::ToString,
        OpKind::DbExecute => Op::DbExecute {
            sql: need_text(json, "sql", &json.sql)?,
        },
        OpKind::Kernel => Op::Kernel {
            name: need_text(json, "kernel", &json.kernel)?,
        },
        OpKind::Log => {
            let level = json.level.clone().unwrap_or_else(|| "info".to_owned());
            if !LOG_LEVELS.contains(&level.as_str()) {
                return Err(GraphError::new(
                    Kind::Field,
                    format!("unknown log level {level:?}"),
                    format!("use one of {LOG_LEVELS:?}"),
                ));
            }
            Op::Log { level }
        }
        // Lowered by `Lowering::node` itself (they need its scopes or a declared type).
        OpKind::Input
        | OpKind::Const
        | OpKind::If
        | OpKind::Loop
        | OpKind::DbQuery
        | OpKind::Http => {
            return Err(GraphError::new(
                Kind::UnknownOp,
                format!("`{name}` reached the generic lowering"),
                "report this as a bug",
            ));
        }
        // Never written: `OpKind::from_name` does not return them.
        OpKind::Param | OpKind::NativeMatMul | OpKind::Fused | OpKind::FusedReductions => {
            return Err(GraphError::new(
                Kind::UnknownOp,
                format!("unknown op {name:?}"),
                "see the op list in docs/graph-format.md",
            ));
        }
    })
}

/// Refuses fields that the node's op does not take, so a misplaced field is never ignored.
fn check_fields(spec: &OpSpec, json: &NodeJson) -> Result<(), GraphError> {
    let op = spec.name;
    let present = [
        (Field::Args, json.args.is_some()),
        (Field::Type, json.ty.is_some()),
        (Field::Value, json.value.is_some()),
        (Field::Default, json.default.is_some()),
        (Field::Shape, json.shape.is_some()),
        (Field::Iterations, json.iterations.is_some()),
        (Field::Index, json.index.is_some()),
        (Field::Then, json.then.is_some()),
        (Field::Else, json.otherwise.is_some()),
        (Field::Body, json.body.is_some()),
        (Field::Sql, json.sql.is_some()),
        (Field::Method, json.method.is_some()),
        (Field::Url, json.url.is_some()),
        (Field::Kernel, json.kernel.is_some()),
        (Field::Level, json.level.is_some()),
        (Field::After, json.after.is_some()),
    ];
    match present
        .iter()
        .find(|(field, here)| *here && !spec.fields.contains(field))
    {
        Some((field, _)) => {
            let allowed: Vec<&str> = spec.fields.iter().map(|f| f.name()).collect();
            let field = field.name();
            Err(GraphError::new(
                Kind::Field,
                format!("`{op}` does not take the field {field:?}"),
                format!("remove {field:?}; `{op}` takes {allowed:?}"),
            ))
        }
        None => Ok(()),
    }
}

/// Checks names are unique and the graph is within size and depth limits, before lowering.
fn collect_names(
    nodes: &[NodeJson],
    params: &[String],
    depth: usize,
    limits: &Limits,
    names: &mut HashSet<String>,
    count: &mut usize,
) -> Result<(), GraphError> {
    if depth > limits.max_depth {
        return Err(GraphError::new(
            Kind::ResourceExceeded,
            format!("regions nest deeper than {}", limits.max_depth),
            "flatten nested ifs and loops",
        ));
    }
    for name in params.iter().chain(nodes.iter().map(|n| &n.id)) {
        *count += 1;
        if *count > limits.max_nodes {
            return Err(GraphError::new(
                Kind::ResourceExceeded,
                format!("the graph has more than {} nodes", limits.max_nodes),
                "split the graph into smaller graphs",
            ));
        }
        if !names.insert(name.clone()) {
            return Err(GraphError::new(
                Kind::DuplicateId,
                format!("id {name:?} is used twice"),
                "give every node and param its own id",
            )
            .at(name));
        }
    }
    for node in nodes {
        for (_, region) in node.regions() {
            collect_names(
                &region.nodes,
                &region.params,
                depth + 1,
                limits,
                names,
                count,
            )?;
        }
    }
    Ok(())
}

/// Names referenced inside `region` (at any depth) that it does not define itself.
fn free_names<'a>(region: &'a RegionJson, out: &mut BTreeSet<&'a str>) {
    let mut defined: HashSet<&str> = region.params.iter().map(String::as_str).collect();
    defined.extend(region.nodes.iter().map(|n| n.id.as_str()));
    let mut used: BTreeSet<&str> = region
        .result_names()
        .into_iter()
        .map(String::as_str)
        .collect();
    for node in &region.nodes {
        used.extend(node.args.iter().flatten().map(String::as_str));
        used.extend(node.after.iter().flatten().map(String::as_str));
        for (_, sub) in node.regions() {
            free_names(sub, &mut used);
        }
    }
    out.extend(used.into_iter().filter(|n| !defined.contains(n)));
}

/// Canonical order of a region's nodes: topological over dependencies between them, in
/// *stages*, ties broken by id. Returns indices into `nodes`.
///
/// A node's effect level is the number of effects on the longest dependency path that ends
/// at it, itself included (an `if`/`loop` whose regions hold effects counts as one). Effects
/// of level `L` run in stage `2L − 1`, other nodes of level `L` in stage `2L`: first every pure
/// node that needs no effect, then every effect that needs nothing else, then what needs
/// those, and so on. The effects of one stage never depend on one another and sit side by
/// side in the order, which is what lets the `batch` pass send them as one round (seed 3.2,
/// Haxl's rounds); both engines follow this one order, so which error a run ends with does not
/// depend on whether a round ran concurrently.
fn canonical_order(nodes: &[NodeJson]) -> Result<Vec<usize>, GraphError> {
    let (topo, dependencies) = topological_order(nodes)?;
    let effect_like: Vec<bool> = nodes.iter().map(has_effects).collect();
    let mut level = vec![0usize; nodes.len()];
    for &i in &topo {
        let before = dependencies[i].iter().map(|&d| level[d]).max().unwrap_or(0);
        level[i] = before + usize::from(effect_like[i]);
    }
    let stage = |i: usize| {
        if effect_like[i] {
            2 * level[i] - 1
        } else {
            2 * level[i]
        }
    };
    Ok(kahn(&dependencies, |i| (stage(i), nodes[i].id.as_str())))
}

/// Whether a node is an effect, or holds one in its regions (at any depth).
fn has_effects(node: &NodeJson) -> bool {
    OpKind::from_name(&node.op).is_some_and(|k| matches!(k.spec().class, Class::Effect(_)))
        || node
            .regions()
            .any(|(_, region)| region.nodes.iter().any(has_effects))
}

/// A topological order of a region's nodes (ties by id) and, per node, the indices of the
/// nodes of this region it depends on (deduplicated); a cycle is an error naming a node on it.
fn topological_order(nodes: &[NodeJson]) -> Result<(Vec<usize>, Vec<Vec<usize>>), GraphError> {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut dependencies: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        let mut deps: BTreeSet<&str> = node
            .args
            .iter()
            .chain(&node.after)
            .flatten()
            .map(String::as_str)
            .collect();
        for (_, region) in node.regions() {
            free_names(region, &mut deps);
        }
        for dep in deps {
            if let Some(&d) = index.get(dep) {
                if d == i {
                    return Err(GraphError::new(
                        Kind::Cycle,
                        "the node depends on itself",
                        "remove the self-reference",
                    )
                    .at(&node.id));
                }
                dependencies[i].push(d);
            }
        }
    }
    let order = kahn(&dependencies, |i| nodes[i].id.as_str());
    if order.len() < nodes.len() {
        let placed: BTreeSet<usize> = order.iter().copied().collect();
        let stuck = nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !placed.contains(i))
            .map(|(_, n)| n.id.as_str())
            .min()
            .unwrap_or("?");
        return Err(GraphError::new(
            Kind::Cycle,
            "the node is part of a dependency cycle",
            "graphs must be acyclic; use a loop node for iteration",
        )
        .at(stuck));
    }
    Ok((order, dependencies))
}

/// Kahn's algorithm over `dependencies` (per node, the nodes it needs): among the nodes whose
/// dependencies have all been placed, the one with the least `key` goes next. Shorter than the
/// node count when there is a cycle.
fn kahn<K: Ord>(dependencies: &[Vec<usize>], key: impl Fn(usize) -> K) -> Vec<usize> {
    let mut waiting_on: Vec<usize> = dependencies.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); dependencies.len()];
    for (i, deps) in dependencies.iter().enumerate() {
        for &d in deps {
            dependents[d].push(i);
        }
    }
    let mut ready: BTreeMap<K, usize> = (0..dependencies.len())
        .filter(|&i| waiting_on[i] == 0)
        .map(|i| (key(i), i))
        .collect();
    let mut order = Vec::with_capacity(dependencies.len());
    while let Some((_, i)) = ready.pop_first() {
        order.push(i);
        for &d in &dependents[i] {
            waiting_on[d] -= 1;
            if waiting_on[d] == 0 {
                ready.insert(key(d), d);
            }
        }
    }
    order
}

/// Levels a `log` node may use.
const LOG_LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];

/// The longest SQL, URL, method or kernel name a graph may hold in one field.
const MAX_EFFECT_TEXT: usize = 64 * 1024;

/// A required text field of an effect node.
fn need_text(json: &NodeJson, field: &str, value: &Option<String>) -> Result<String, GraphError> {
    let text = value.clone().ok_or_else(|| {
        GraphError::new(
            Kind::Field,
            format!("`{}` needs a {field:?}", json.op),
            format!("add \"{field}\": \"...\""),
        )
    })?;
    if text.len() > MAX_EFFECT_TEXT {
        return Err(GraphError::new(
            Kind::ResourceExceeded,
            format!(
                "{field:?} is {} bytes; the limit is {MAX_EFFECT_TEXT}",
                text.len()
            ),
            "shorten it",
        ));
    }
    Ok(text)
}

/// The answer type an effect node declares.
fn answer_type(ty: &Type) -> Result<AnswerType, GraphError> {
    Ok(match ty {
        Type::Bool => AnswerType::Bool,
        Type::I64 => AnswerType::I64,
        Type::F64 => AnswerType::F64,
        Type::Str => AnswerType::Str,
        Type::Tensor(shape) if shape.len() <= 2 => AnswerType::Tensor(shape.clone()),
        other => {
            return Err(GraphError::new(
                Kind::Type,
                format!("an effect cannot answer {other}"),
                "use bool, i64, f64, string, or a tensor of rank 0 to 2",
            ));
        }
    })
}

/// Argument checks of effect nodes that `infer` cannot express (SQL parameters are scalars).
fn check_effect(op: &Op, args: &[Type]) -> Result<(), GraphError> {
    if let Op::DbQuery { .. } | Op::DbExecute { .. } = op
        && let Some(bad) = args
            .iter()
            .find(|t| !matches!(t, Type::Bool | Type::I64 | Type::F64 | Type::Str))
    {
        return Err(GraphError::new(
            Kind::Type,
            format!("an SQL parameter cannot be {bad}"),
            "pass bool, i64, f64 or string values as parameters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::graph::{Graph, Limits, parse};

    fn names(graph: &Graph) -> Vec<&str> {
        graph
            .root
            .nodes
            .iter()
            .map(|&id| graph.node(id).name.as_str())
            .collect()
    }

    #[test]
    fn canonical_order_runs_in_stages_and_a_stages_effects_sit_together() {
        let json = r#"{"version": 1, "nodes": [
            {"id": "a", "op": "db_query", "sql": "SELECT 1", "type": "i64"},
            {"id": "b", "op": "add", "args": ["a", "one"]},
            {"id": "c", "op": "db_query", "sql": "SELECT $1", "args": ["b"], "type": "i64"},
            {"id": "d", "op": "db_query", "sql": "SELECT 2", "type": "i64"},
            {"id": "e", "op": "log", "args": ["one"], "after": ["d"]},
            {"id": "one", "op": "const", "value": 1},
            {"id": "z", "op": "mul", "args": ["one", "one"]}
        ], "outputs": {"c": "c", "z": "z", "e": "e"}, "footprint": {"db": {"read": []}}}"#;
        let mut graph = parse(json.as_bytes(), &Limits::default()).expect("parses");
        // Stage 0: what needs no effect (`one`, `z`, though `z` sorts after every effect id);
        // stage 1: the effects that need nothing else (`a`, `d`); stage 2: `b`; stage 3: what
        // needs a stage-1 effect (`c` through `b`, `e` after `d`).
        assert_eq!(names(&graph), ["one", "z", "a", "d", "b", "c", "e"]);
        assert!(
            graph.rounds(&graph.root).is_empty(),
            "no rounds until batched"
        );
        graph.batch_effects = true;
        // `a` and `d` are one round; `c` and `e` are one stage, but a log is never batched.
        let expected: Vec<std::ops::Range<usize>> = std::iter::once(2..4).collect();
        assert_eq!(graph.rounds(&graph.root), expected);
    }
}
