//! Named dimensions: `{"tensor": ["batch", 784]}`, a graph generic in the sizes its inputs
//! bring, and its specialization for one binding of the names.
//!
//! Rules (docs/graph-format.md "Named dimensions"):
//! - A name is an identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 64 bytes); it may stand for a
//!   dim of any tensor type or `shape` in the graph.
//! - Names bind only from top-level `input` nodes whose type is a tensor: each given value's
//!   shape must have the declared rank and sizes, and a name must get one size from every
//!   input that carries it. A name no input binds is refused at load.
//! - A constant's type, an input's `default` and an input type that nests a tensor in a list,
//!   record or option may not name dims (their sizes could not follow the binding).
//! - A generic graph is checked at load with every name 1 (so one that types only for some
//!   sizes is refused), and again, fully, for each binding it is specialized to: a
//!   specialization is an ordinary graph whose canonical hash (and so cache key) holds the
//!   sizes.
//!
//! Invariant: the same bytes and binding give the same specialization; a template's hash does
//! not depend on JSON key order, whitespace or node order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use super::super::Graph;
use super::super::error::{GraphError, GraphErrorKind as Kind, Limits};
use super::super::json::{DimJson, GraphJson, NodeJson, TypeJson};

/// Longest dim name accepted.
const MAX_NAME_BYTES: usize = 64;
/// Most distinct names in one graph.
pub(crate) const MAX_DIMS: usize = 16;

/// One dimension as written.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum Dim {
    Size(u32),
    Name(String),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Size(n) => write!(f, "{n}"),
            Dim::Name(name) => f.write_str(name),
        }
    }
}

/// Each input that binds names, with its shape as written.
pub(crate) type InputShapes = Vec<(String, Vec<Dim>)>;

/// The sizes of a template's names, in [`Template::dims`] order.
pub(crate) type Binding = Vec<u32>;

/// A graph whose tensor types name dims: checked once, specialized per binding.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    bytes: Arc<[u8]>,
    limits: Limits,
    /// Every name, sorted.
    pub(crate) dims: Vec<String>,
    /// Each input that binds names, with its shape as written; sorted by input name.
    pub(crate) inputs: InputShapes,
    /// The graph with every name 1: what the template is validated as, and what tells its
    /// inputs, outputs, footprint and effects.
    pub(crate) probe: Graph,
    /// blake3 of the normalized JSON (keys sorted, `nodes` sorted by id).
    pub(crate) hash: blake3::Hash,
}

/// Size of each name: `None` lowers a graph without names.
pub(super) type Sizes<'a> = Option<&'a BTreeMap<String, u32>>;

/// A written shape with each name replaced by its size.
pub(super) fn resolve(shape: &[DimJson], sizes: Sizes<'_>) -> Result<Vec<u32>, GraphError> {
    shape
        .iter()
        .map(|d| match d {
            DimJson::Size(n) => Ok(*n),
            DimJson::Name(name) => sizes.and_then(|s| s.get(name)).copied().ok_or_else(|| {
                GraphError::new(
                    Kind::Type,
                    format!("the dim {name:?} is not bound"),
                    "bind it with a tensor input whose type names it",
                )
            }),
        })
        .collect()
}

/// The names a graph's JSON uses, with the inputs that bind them; empty when it names none.
/// Refuses the placements the module rules forbid.
pub(super) fn names(json: &GraphJson) -> Result<(Vec<String>, InputShapes), GraphError> {
    let mut used = BTreeSet::new();
    let mut inputs = Vec::new();
    walk_nodes(&json.nodes, true, &mut used, &mut inputs)?;
    if used.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    if used.len() > MAX_DIMS {
        return Err(GraphError::new(
            Kind::ResourceExceeded,
            format!(
                "the graph names {} dims; the limit is {MAX_DIMS}",
                used.len()
            ),
            "name fewer dims",
        ));
    }
    let bound: BTreeSet<&String> = inputs
        .iter()
        .flat_map(|(_, shape): &(String, Vec<Dim>)| shape.iter())
        .filter_map(|d| match d {
            Dim::Name(n) => Some(n),
            Dim::Size(_) => None,
        })
        .collect();
    if let Some(free) = used.iter().find(|n| !bound.contains(n)) {
        return Err(GraphError::new(
            Kind::Type,
            format!("the dim {free:?} is named but no input binds it"),
            format!("give a tensor input a type that names {free:?}, or write a size"),
        ));
    }
    inputs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((used.into_iter().collect(), inputs))
}

fn walk_nodes(
    nodes: &[NodeJson],
    top: bool,
    used: &mut BTreeSet<String>,
    inputs: &mut InputShapes,
) -> Result<(), GraphError> {
    for node in nodes {
        let at = |e: GraphError| e.at(&node.id);
        let mut here = BTreeSet::new();
        if let Some(ty) = &node.ty {
            type_names(ty, &mut here).map_err(at)?;
        }
        if let Some(shape) = &node.shape {
            shape_names(shape, &mut here).map_err(at)?;
        }
        if !here.is_empty() {
            let refuse = |what: &str, fix: &str| {
                Err(GraphError::new(
                    Kind::Type,
                    format!("{what} cannot name a dim ({})", list(&here)),
                    fix.to_string(),
                )
                .at(&node.id))
            };
            match (node.op.as_str(), &node.ty) {
                ("const", _) => {
                    return refuse("a constant's type", "write the constant's sizes");
                }
                ("input", _) if node.default.is_some() => {
                    return refuse(
                        "an input with a default",
                        "drop the default (a default's shape is fixed) or write sizes",
                    );
                }
                ("input", Some(TypeJson::Tensor { tensor })) if top => {
                    let shape = tensor
                        .iter()
                        .map(|d| match d {
                            DimJson::Size(n) => Dim::Size(*n),
                            DimJson::Name(n) => Dim::Name(n.clone()),
                        })
                        .collect();
                    inputs.push((node.id.clone(), shape));
                }
                ("input", _) => {
                    return refuse(
                        "an input that is not a tensor",
                        "name dims only in tensor inputs' types",
                    );
                }
                _ => {}
            }
            used.extend(here);
        }
        for region in [&node.then, &node.otherwise, &node.body]
            .into_iter()
            .flatten()
        {
            walk_nodes(&region.nodes, false, used, inputs)?;
        }
    }
    Ok(())
}

fn list(names: &BTreeSet<String>) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn type_names(ty: &TypeJson, out: &mut BTreeSet<String>) -> Result<(), GraphError> {
    match ty {
        TypeJson::Name(_) => Ok(()),
        TypeJson::Tensor { tensor } => shape_names(tensor, out),
        TypeJson::List(l) => type_names(&l.list, out),
        TypeJson::Option(o) => type_names(&o.option, out),
        TypeJson::Record(r) => r.record.0.iter().try_for_each(|(_, t)| type_names(t, out)),
    }
}

fn shape_names(shape: &[DimJson], out: &mut BTreeSet<String>) -> Result<(), GraphError> {
    for dim in shape {
        if let DimJson::Name(name) = dim {
            check_name(name)?;
            out.insert(name.clone());
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), GraphError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok
        && name.len() <= MAX_NAME_BYTES
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Ok(());
    }
    Err(GraphError::new(
        Kind::Type,
        format!("{name:?} is not a dim: write a size or a name of letters, digits and `_`"),
        "write a size such as 784, or a name such as \"batch\" (at most 64 bytes)",
    ))
}

impl Template {
    /// The template of `json` (read from `bytes`, in format `version`), lowered once with
    /// every name 1.
    pub(super) fn new(
        bytes: &[u8],
        json: GraphJson,
        version: u64,
        limits: &Limits,
        (dims, inputs): (Vec<String>, InputShapes),
    ) -> Result<Template, GraphError> {
        let ones: BTreeMap<String, u32> = dims.iter().map(|d| (d.clone(), 1)).collect();
        let probe = super::Lowering::new(limits, version, Some(&ones))
            .graph(json)
            .map_err(|mut e| {
                e.message = format!(
                    "with every named dim 1 (a named dim must fit any size): {}",
                    e.message
                );
                e
            })?;
        let hash = normalized_hash(bytes)?;
        Ok(Template {
            bytes: Arc::from(bytes),
            limits: *limits,
            dims,
            inputs,
            probe,
            hash,
        })
    }

    /// The binding the given input shapes make (`shape_of(input)`; `None` for an input not
    /// given): every binding input must be given, with its declared rank and sizes, and each
    /// name must get one size. Errors name the input at fault (`.node`) and the dim.
    pub(crate) fn bind<'v>(
        &self,
        shape_of: impl Fn(&str) -> Option<&'v [u32]>,
    ) -> Result<Binding, GraphError> {
        let mut sizes: Vec<Option<(u32, &str)>> = vec![None; self.dims.len()];
        for (input, written) in &self.inputs {
            let Some(shape) = shape_of(input) else {
                return Err(GraphError::new(
                    Kind::Value,
                    format!("input {input:?} binds dims and has no value"),
                    format!("give the input {input:?} a tensor"),
                )
                .at(input));
            };
            let shown = || {
                let dims: Vec<String> = written.iter().map(Dim::to_string).collect();
                format!("[{}]", dims.join(", "))
            };
            if shape.len() != written.len() {
                return Err(GraphError::new(
                    Kind::Value,
                    format!(
                        "input {input:?} must be a tensor {}; it has shape {shape:?}",
                        shown()
                    ),
                    format!("pass a tensor of rank {}", written.len()),
                )
                .at(input));
            }
            for (axis, (dim, &size)) in written.iter().zip(shape).enumerate() {
                match dim {
                    Dim::Size(n) if *n != size => {
                        return Err(GraphError::new(
                            Kind::Value,
                            format!(
                                "input {input:?} must be a tensor {}; its axis {axis} is {size}, not {n}",
                                shown()
                            ),
                            "pass a tensor of the declared sizes",
                        )
                        .at(input));
                    }
                    Dim::Size(_) => {}
                    Dim::Name(name) => {
                        let slot = self.dims.binary_search(name).map_err(|_| {
                            GraphError::new(Kind::Type, "an unlisted dim", "report this bug")
                        })?;
                        match sizes[slot] {
                            None => sizes[slot] = Some((size, input)),
                            Some((first, _)) if first == size => {}
                            Some((first, from)) => {
                                return Err(GraphError::new(
                                    Kind::Value,
                                    format!(
                                        "the dim {name:?} is {first} from input {from:?} and {size} from input {input:?}"
                                    ),
                                    format!("pass inputs that agree on {name:?}"),
                                )
                                .at(input));
                            }
                        }
                    }
                }
            }
        }
        Ok(sizes.into_iter().map(|s| s.map_or(0, |(n, _)| n)).collect())
    }

    /// The graph for one binding: lowered and typed afresh with each name's size. A graph
    /// that does not type for these sizes is an error that names them.
    pub(crate) fn specialize(&self, binding: &[u32]) -> Result<Graph, GraphError> {
        let sizes: BTreeMap<String, u32> = self
            .dims
            .iter()
            .cloned()
            .zip(binding.iter().copied())
            .collect();
        super::lower_json(&self.bytes, &self.limits, Some(&sizes)).map_err(|mut e| {
            e.message = format!("with {}: {}", self.describe(binding), e.message);
            e
        })
    }

    /// `batch = 4, n = 3`.
    pub(crate) fn describe(&self, binding: &[u32]) -> String {
        self.dims
            .iter()
            .zip(binding)
            .map(|(d, n)| format!("{d} = {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// blake3 of the JSON with object keys sorted and every `nodes` array sorted by `id`.
fn normalized_hash(bytes: &[u8]) -> Result<blake3::Hash, GraphError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(super::syntax_error)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"graphjit template 1\0");
    feed(&value, &mut hasher);
    Ok(hasher.finalize())
}

fn feed(value: &serde_json::Value, h: &mut blake3::Hasher) {
    use serde_json::Value;
    let text = |h: &mut blake3::Hasher, s: &str| {
        h.update(&(s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    match value {
        Value::Null => {
            h.update(b"n");
        }
        Value::Bool(b) => {
            h.update(if *b { b"t" } else { b"f" });
        }
        Value::Number(n) => {
            h.update(b"#");
            text(h, &n.to_string());
        }
        Value::String(s) => {
            h.update(b"s");
            text(h, s);
        }
        Value::Array(items) => {
            h.update(b"[");
            h.update(&(items.len() as u64).to_le_bytes());
            items.iter().for_each(|v| feed(v, h));
        }
        Value::Object(map) => {
            h.update(b"{");
            h.update(&(map.len() as u64).to_le_bytes());
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                text(h, key);
                match (key.as_str(), &map[key]) {
                    ("nodes", Value::Array(nodes)) => {
                        let mut sorted: Vec<&Value> = nodes.iter().collect();
                        sorted.sort_by(|a, b| {
                            let id =
                                |v: &Value| v.get("id").and_then(Value::as_str).map(str::to_owned);
                            id(a).cmp(&id(b))
                        });
                        h.update(b"[");
                        h.update(&(sorted.len() as u64).to_le_bytes());
                        sorted.into_iter().for_each(|v| feed(v, h));
                    }
                    (_, v) => feed(v, h),
                }
            }
        }
    }
}
