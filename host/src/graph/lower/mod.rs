//! JSON → validated, typed, canonical [`Graph`].
//!
//! Invariants: never panics on any input; every rejection is a [`GraphError`] naming the node
//! at fault and suggesting a fix; the result does not depend on JSON key or node order.
//!
//! Layout: this file is the walk (graph, regions, one node at a time); `fields.rs` reads an
//! op's fields against the op table; `values.rs` declared types and constants; `regions.rs`
//! `if` and `loop`; `order.rs` names, limits and the canonical order.

use std::collections::{HashMap, HashSet};

use super::error::{GraphError, GraphErrorKind as Kind, Limits};
use super::json::{GraphJson, NodeJson, VersionProbe};
use super::types::{Type, infer};
use super::{Graph, GraphLimits, Node, NodeId, Op, OpKind, Region};
use crate::footprint::Footprint;

pub(crate) mod dims;
mod fields;
mod http;
mod order;
mod regions;
mod values;

use fields::{answer_type, check_effect, check_fields, need_text, simple_op};
use order::{canonical_order, collect_names};
use values::infer_const_type;

use dims::Sizes;
pub(crate) use dims::Template;

/// The newest graph format version this build reads; every older one still parses and means
/// the same (version 2 adds lists, records, options and bytes).
pub(crate) const FORMAT_VERSION: u64 = 2;

/// What a graph's JSON is: a graph, or a template generic in named dims.
#[derive(Debug)]
pub(crate) enum Parsed {
    Graph(Graph),
    Template(Template),
}

/// Parses, validates and canonicalizes a graph; one that names dims is checked as a
/// [`Template`] (see [`dims`]).
pub(crate) fn read(bytes: &[u8], limits: &Limits) -> Result<Parsed, GraphError> {
    let (json, version) = read_json(bytes, limits)?;
    let names = dims::names(&json)?;
    if names.0.is_empty() {
        return Lowering::new(limits, version, None)
            .graph(json)
            .map(Parsed::Graph);
    }
    Template::new(bytes, json, version, limits, names).map(Parsed::Template)
}

/// Parses, validates and canonicalizes a graph that names no dims.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn parse(bytes: &[u8], limits: &Limits) -> Result<Graph, GraphError> {
    match read(bytes, limits)? {
        Parsed::Graph(graph) => Ok(graph),
        Parsed::Template(t) => Err(GraphError::new(
            Kind::Type,
            format!(
                "the graph names dims ({}): specialize it for its inputs",
                t.dims.join(", ")
            ),
            "bind the dims from the inputs (Graph::specialize) before this step",
        )),
    }
}

/// Lowers a graph's JSON with the given size for each named dim.
fn lower_json(bytes: &[u8], limits: &Limits, sizes: Sizes<'_>) -> Result<Graph, GraphError> {
    let (json, version) = read_json(bytes, limits)?;
    Lowering::new(limits, version, sizes).graph(json)
}

/// The JSON document and its format version, size-checked.
fn read_json(bytes: &[u8], limits: &Limits) -> Result<(GraphJson, u64), GraphError> {
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
    let version = match probe.version {
        Some(serde_json::Value::Number(n))
            if n.as_u64()
                .is_some_and(|v| (1..=FORMAT_VERSION).contains(&v)) =>
        {
            n.as_u64().unwrap_or(FORMAT_VERSION)
        }
        Some(other) => {
            return Err(GraphError::new(
                Kind::Version,
                format!("graph format version {other} is not supported"),
                format!("write \"version\": 1 or {FORMAT_VERSION}"),
            ));
        }
        None => {
            return Err(GraphError::new(
                Kind::Version,
                "the graph has no \"version\" field",
                format!("add \"version\": {FORMAT_VERSION} at the top level"),
            ));
        }
    };
    let json: GraphJson = serde_json::from_slice(bytes).map_err(syntax_error)?;
    Ok((json, version))
}

/// `record`'s arguments paired with its `fields`, sorted by name (a record's canonical
/// order), names unique.
fn record_fields(json: &NodeJson, args: Vec<NodeId>) -> Result<(Op, Vec<NodeId>), GraphError> {
    let names = json.fields.clone().ok_or_else(|| {
        GraphError::new(
            Kind::Field,
            "`record` needs \"fields\": the name of each argument",
            "add \"fields\": [\"name\", ...], one per argument",
        )
    })?;
    if names.len() != args.len() {
        return Err(GraphError::new(
            Kind::Field,
            format!(
                "`record` has {} fields for {} arguments",
                names.len(),
                args.len()
            ),
            "give one field name per argument",
        ));
    }
    let mut pairs: Vec<(String, NodeId)> = names.into_iter().zip(args).collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(pair) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(GraphError::new(
            Kind::Field,
            format!("`record` names the field {:?} twice", pair[0].0),
            "give each field one name",
        ));
    }
    let (names, args) = pairs.into_iter().unzip();
    Ok((Op::Record { names }, args))
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
    /// The size of each named dim (a template's specialization), if the graph names any.
    sizes: Sizes<'l>,
    /// The graph's format version (types of version 2 are refused in version 1).
    version: u64,
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
    fn new(limits: &'l Limits, version: u64, sizes: Sizes<'l>) -> Self {
        Lowering {
            limits,
            sizes,
            version,
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
            fuse_lists: false,
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
            OpKind::Map | OpKind::Filter | OpKind::Fold | OpKind::SortBy | OpKind::GroupBy => {
                return self.list_region_node(kind, json, args, &arg_types);
            }
            OpKind::Cached => return self.cached_node(json, args, arg_types),
            OpKind::JsonParse => {
                let ty = self.declared_type(json).map_err(at)?;
                if arg_types != [Type::Str] {
                    return Err(at(GraphError::new(
                        Kind::Type,
                        "`json_parse` takes one string",
                        "pass the JSON text as a string",
                    )));
                }
                (Op::JsonParse, ty)
            }
            OpKind::None => {
                let ty = self.declared_type(json).map_err(at)?;
                if !matches!(ty, Type::Option(_)) {
                    return Err(at(GraphError::new(
                        Kind::Type,
                        format!("`none` is typed as an option, not {ty}"),
                        "write \"type\": {\"option\": T}",
                    )));
                }
                (Op::None, ty)
            }
            OpKind::Record => {
                let (op, args) = record_fields(json, args).map_err(at)?;
                let arg_types: Vec<&Type> =
                    args.iter().map(|a| &self.nodes[a.index()].ty).collect();
                let ty = infer(&op, &arg_types).map_err(|m| {
                    at(GraphError::new(
                        Kind::Type,
                        m,
                        "see `record` in docs/graph-format.md",
                    ))
                })?;
                self.check_type_size(&ty).map_err(at)?;
                self.count_type(&ty).map_err(at)?;
                let id = self.alloc(&json.id, op, args, ty);
                return Ok(id);
            }
            OpKind::GetField | OpKind::With => {
                let name = json.field.clone().ok_or_else(|| {
                    at(GraphError::new(
                        Kind::Field,
                        format!("`{}` needs a \"field\"", json.op),
                        "add \"field\": \"name\"",
                    ))
                })?;
                let index = arg_types
                    .first()
                    .and_then(|t| t.field(&name))
                    .map_or(0, |(i, _)| u32::try_from(i).unwrap_or(u32::MAX));
                let op = if kind == OpKind::GetField {
                    Op::GetField { name, index }
                } else {
                    Op::With { name, index }
                };
                let refs: Vec<&Type> = arg_types.iter().collect();
                let ty = infer(&op, &refs).map_err(|m| {
                    at(GraphError::new(
                        Kind::Type,
                        m,
                        "name a field the record has",
                    ))
                })?;
                (op, ty)
            }
            OpKind::DbQuery => {
                let ty = self.declared_type(json).map_err(at)?;
                let answer = answer_type(&ty).map_err(at)?;
                let sql = need_text(json, "sql", &json.sql).map_err(at)?;
                (Op::DbQuery { sql, answer }, ty)
            }
            OpKind::Http => {
                if self.version < 2 && (json.headers.is_some() || json.response.is_some()) {
                    return Err(at(GraphError::new(
                        Kind::Field,
                        "\"headers\" and \"response\" are fields of graph format version 2",
                        "write \"version\": 2",
                    )));
                }
                let ty = match &json.ty {
                    Some(_) => self.declared_type(json).map_err(at)?,
                    None => Type::Str,
                };
                let method = need_text(json, "method", &json.method).map_err(at)?;
                let url = need_text(json, "url", &json.url).map_err(at)?;
                let headers = http::headers(json).map_err(at)?;
                let answer = http::answer(json, &ty).map_err(at)?;
                http::check_args(&headers, &arg_types, self.version).map_err(at)?;
                (
                    Op::Http {
                        method,
                        url,
                        headers,
                        answer,
                    },
                    ty,
                )
            }
            kind => {
                let op = simple_op(kind, json, self.sizes).map_err(at)?;
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
}
