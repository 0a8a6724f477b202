//! The public, validated [`Graph`]: parsing, identity, inputs and their binding.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use graphjit_value::Value;

use super::build::generate;
use super::errors::optimize;
use super::types::RunLimits;
use crate::error::{Error, ErrorKind, Setting, Stage};
use crate::footprint::Footprint;
use crate::graph::{self, NodeId};
use crate::passes::PassConfig;
use crate::values;

/// A parsed, validated graph; or a graph generic in named dims (`{"tensor": ["batch", 784]}`),
/// which [`Graph::specialize`] turns into one graph per binding of the names.
#[derive(Clone, Debug)]
pub struct Graph {
    /// The graph; for a generic graph, the graph with every named dim 1 (what it was
    /// validated as, and what tells its outputs, footprint and effects).
    pub(crate) inner: graph::Graph,
    /// blake3 of the canonical form, computed once at parse time (of a template: of its
    /// normalized JSON).
    pub(super) hash: blake3::Hash,
    /// The footprint, shared by every run's effect dispatcher.
    pub(super) footprint: Arc<Footprint>,
    /// The template and its specializations, for a graph that names dims.
    pub(super) generic: Option<Arc<Generic>>,
    /// For a specialization: the template's hash and the binding (`batch = 4`).
    pub(super) specialized: Option<Arc<(String, String)>>,
}

/// Most specializations one generic graph keeps for compiled runs; a binding beyond them is
/// `resource_exceeded` for [`Graph::specialize`] (eval still takes any binding).
pub const MAX_SPECIALIZATIONS: usize = 8;

/// A template and the specializations made of it, shared by the clones of one [`Graph`].
#[derive(Debug)]
pub(super) struct Generic {
    pub(super) template: graph::Template,
    pub(super) specializations: Mutex<BTreeMap<graph::Binding, Graph>>,
}

impl Graph {
    /// Parses and validates a graph from JSON (format v1 or v2, `docs/graph-format.md`).
    pub fn from_json(bytes: &[u8]) -> Result<Graph, Error> {
        match graph::read(bytes, &graph::Limits::default())? {
            graph::Parsed::Graph(inner) => Ok(Graph::concrete(inner)),
            graph::Parsed::Template(template) => {
                let inner = template.probe.clone();
                let footprint = Arc::new(inner.footprint.clone());
                Ok(Graph {
                    inner,
                    hash: template.hash,
                    footprint,
                    generic: Some(Arc::new(Generic {
                        template,
                        specializations: Mutex::new(BTreeMap::new()),
                    })),
                    specialized: None,
                })
            }
        }
    }

    fn concrete(inner: graph::Graph) -> Graph {
        let hash = inner.canonical_hash();
        let footprint = Arc::new(inner.footprint.clone());
        Graph {
            inner,
            hash,
            footprint,
            generic: None,
            specialized: None,
        }
    }

    /// For a specialization of a generic graph: the generic graph's hash and the binding
    /// (`batch = 4, n = 3`).
    pub fn specialized_from(&self) -> Option<(&str, &str)> {
        self.specialized
            .as_deref()
            .map(|(hash, binding)| (hash.as_str(), binding.as_str()))
    }

    /// The dims the graph names, sorted (empty for a graph of fixed shapes).
    pub fn dims(&self) -> Vec<String> {
        self.generic
            .as_ref()
            .map_or_else(Vec::new, |g| g.template.dims.clone())
    }

    /// Whether the graph names dims (and must be specialized before it compiles).
    pub fn is_generic(&self) -> bool {
        self.generic.is_some()
    }

    /// The graph for the shapes of `inputs`: for a generic graph, the specialization of the
    /// binding the inputs make (each named dim's size; checked for rank, sizes and agreement
    /// between inputs, with errors naming the dim), made once per binding and kept with the
    /// graph, at most [`MAX_SPECIALIZATIONS`]; a graph of fixed shapes is returned as it is.
    /// A specialization is an ordinary graph: its hash, and so its cache key, holds the sizes.
    /// (Borrowed for a graph of fixed shapes: nothing is copied on that path.)
    pub fn specialize(&self, inputs: &BTreeMap<String, Value>) -> Result<Cow<'_, Graph>, Error> {
        self.specialize_bounded(inputs, true)
    }

    /// [`Graph::specialize`] for the interpreter: any binding, the ones beyond the bound made
    /// afresh and not kept.
    pub(crate) fn specialize_any(
        &self,
        inputs: &BTreeMap<String, Value>,
    ) -> Result<Cow<'_, Graph>, Error> {
        self.specialize_bounded(inputs, false)
    }

    fn specialize_bounded(
        &self,
        inputs: &BTreeMap<String, Value>,
        bounded: bool,
    ) -> Result<Cow<'_, Graph>, Error> {
        let Some(generic) = &self.generic else {
            return Ok(Cow::Borrowed(self));
        };
        self.specialization(generic, inputs, bounded)
            .map(Cow::Owned)
    }

    fn specialization(
        &self,
        generic: &Generic,
        inputs: &BTreeMap<String, Value>,
        bounded: bool,
    ) -> Result<Graph, Error> {
        let template = &generic.template;
        let binding = template
            .bind(|name| match inputs.get(name) {
                Some(Value::Tensor(t)) => Some(t.shape.as_slice()),
                _ => None,
            })
            .map_err(|e| {
                let at = e.node.clone();
                input_error(e.message, e.remediation).at_node(at)
            })?;
        let table = || {
            generic
                .specializations
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(known) = table().get(&binding) {
            return Ok(known.clone());
        }
        // Lowered outside the lock: a specialization is a full parse of the graph.
        let mut graph = template
            .specialize(&binding)
            .map(Graph::concrete)
            .map_err(|e| Error::from(e).for_setting(Setting::Inputs))?;
        graph.specialized = Some(Arc::new((
            template.hash.to_hex().to_string(),
            template.describe(&binding),
        )));
        let mut table = table();
        if let Some(known) = table.get(&binding) {
            return Ok(known.clone());
        }
        if table.len() >= MAX_SPECIALIZATIONS {
            if bounded {
                return Err(Error::new(
                    ErrorKind::ResourceExceeded,
                    Stage::Input,
                    format!(
                        "the graph has {} specializations; {} would be one more",
                        table.len(),
                        template.describe(&binding)
                    ),
                    "bring inputs of shapes the graph already serves, or evaluate it",
                )
                .for_setting(Setting::Inputs));
            }
            return Ok(graph);
        }
        table.insert(binding, graph.clone());
        Ok(graph)
    }

    /// Each specialization made so far: the binding (dim name and size) and the graph's hash.
    pub fn specializations(&self) -> Vec<(Vec<(String, u32)>, String)> {
        let Some(generic) = &self.generic else {
            return Vec::new();
        };
        let table = generic
            .specializations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table
            .iter()
            .map(|(binding, graph)| {
                let named = generic
                    .template
                    .dims
                    .iter()
                    .cloned()
                    .zip(binding.iter().copied())
                    .collect();
                (named, graph.hash())
            })
            .collect()
    }

    /// `Err` for a generic graph, which only its specializations compile.
    pub(crate) fn require_concrete(&self) -> Result<(), Error> {
        match &self.generic {
            None => Ok(()),
            Some(g) => Err(Error::new(
                ErrorKind::InvalidInput,
                Stage::Compile,
                format!(
                    "the graph names dims ({}) and compiles once per binding of them",
                    g.template.dims.join(", ")
                ),
                "compile graph.specialize(&inputs), the graph for the inputs' shapes",
            )
            .for_setting(Setting::Inputs)),
        }
    }

    /// The graph's identity: blake3 of its canonical form, hex.
    pub fn hash(&self) -> String {
        self.hash.to_hex().to_string()
    }

    /// The same graph with another IR (what the optimizer made of it): identity, inputs,
    /// outputs and footprint unchanged.
    pub(crate) fn with_inner(&self, inner: graph::Graph) -> Graph {
        Graph {
            inner,
            hash: self.hash,
            footprint: Arc::clone(&self.footprint),
            generic: self.generic.clone(),
            specialized: self.specialized.clone(),
        }
    }

    /// The generated Rust for this graph after `passes` (what a host with that configuration
    /// compiles; deterministic).
    pub fn rust_source_with(&self, passes: &PassConfig) -> Result<String, Error> {
        self.require_concrete()?;
        let (inner, _) = optimize(&self.inner, passes)?;
        Ok(generate(&inner)?.source)
    }

    /// The generated Rust for this graph as written, before any pass (deterministic: same
    /// graph, same text). An error only where codegen has no rule for a node typing accepted
    /// (`codegen_failed`, a bug to report).
    pub fn rust_source(&self) -> Result<String, Error> {
        self.require_concrete()?;
        Ok(generate(&self.inner)?.source)
    }

    /// Whether the graph has effect nodes (DB, HTTP, kernels, log).
    pub fn has_effects(&self) -> bool {
        self.inner.nodes.iter().any(|n| n.op.is_effect())
    }

    /// `Err` (`footprint_denied`) naming the first thing the graph's footprint declares that
    /// `ceiling` does not allow: what a service checks before it compiles a tenant's graph.
    pub fn check_footprint_within(&self, ceiling: &FootprintCeiling) -> Result<(), Error> {
        match self.footprint.beyond(&ceiling.0) {
            None => Ok(()),
            Some(what) => Err(Error::new(
                ErrorKind::FootprintDenied,
                Stage::Parse,
                format!("the graph's footprint declares {what}, beyond this tenant's ceiling"),
                "declare only tables, HTTP destinations and kernels the tenant may use",
            )),
        }
    }

    /// Whether the graph has `cached` nodes (whose results a host keeps across runs).
    pub fn memoizes(&self) -> bool {
        self.inner
            .nodes
            .iter()
            .any(|n| matches!(n.op, crate::graph::Op::Cached { .. }))
    }

    /// Output names, in the order results are returned.
    pub fn output_names(&self) -> &[String] {
        &self.inner.outputs
    }

    /// Input names with their types (as text), sorted by name.
    pub fn inputs(&self) -> Vec<(String, String)> {
        self.inner
            .inputs
            .iter()
            .map(|&id| {
                let node = self.inner.node(id);
                let ty = match self.written_shape(&node.name) {
                    Some(shape) => {
                        let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
                        format!("tensor[{}]", dims.join(", "))
                    }
                    None => node.ty.to_string(),
                };
                (node.name.clone(), ty)
            })
            .collect()
    }

    /// The shape written for an input that binds dims (of a generic graph).
    fn written_shape(&self, input: &str) -> Option<&[graph::Dim]> {
        let generic = self.generic.as_ref()?;
        generic
            .template
            .inputs
            .iter()
            .find(|(name, _)| name == input)
            .map(|(_, shape)| shape.as_slice())
    }

    /// The caller's limits `base`, lowered by the run limits written in the graph: each limit
    /// the graph declares is the smaller of the two, so a graph can ask for less than the
    /// caller allows, never for more.
    pub fn limits_over(&self, base: RunLimits) -> RunLimits {
        let lower =
            |declared: Option<u64>, allowed: u64| declared.map_or(allowed, |d| d.min(allowed));
        RunLimits {
            fuel: lower(self.inner.limits.fuel, base.fuel),
            memory_bytes: lower(self.inner.limits.memory_bytes, base.memory_bytes),
            ..base
        }
    }

    /// Parses command-line text for each named input by its declared type; a name given twice
    /// is refused (never last-one-wins).
    pub fn parse_inputs(
        &self,
        pairs: &[(String, String)],
    ) -> Result<BTreeMap<String, Value>, Error> {
        let mut out = BTreeMap::new();
        for (name, text) in pairs {
            if out.contains_key(name) {
                return Err(input_error(
                    format!("input {name:?} is given twice"),
                    "give each input once",
                )
                .at_node(Some(name.clone())));
            }
            let node = self.input_node(name)?;
            let parsed = match self.written_shape(name) {
                // Its shape is checked when the graph is specialized for it.
                Some(_) => values::parse_tensor(text),
                None => values::parse_input(text, &self.inner.node(node).ty),
            };
            let value = parsed.map_err(|m| {
                input_error(m, "pass a value of the input's type").at_node(Some(name.clone()))
            })?;
            out.insert(name.clone(), value);
        }
        Ok(out)
    }

    fn input_node(&self, name: &str) -> Result<NodeId, Error> {
        self.inner
            .inputs
            .iter()
            .copied()
            .find(|&id| self.inner.node(id).name == name)
            .ok_or_else(|| {
                let known: Vec<String> = self
                    .inputs()
                    .into_iter()
                    .map(|(n, t)| format!("{n}: {t}"))
                    .collect();
                input_error(
                    format!("the graph has no input {name:?}"),
                    format!("inputs are: {}", known.join(", ")),
                )
            })
    }

    /// The inputs in boundary order: given values checked against their types, defaults for
    /// the rest; a missing input without default is an error.
    pub(crate) fn bind_inputs(&self, given: &BTreeMap<String, Value>) -> Result<Vec<Value>, Error> {
        for name in given.keys() {
            self.input_node(name)?;
        }
        self.inner
            .inputs
            .iter()
            .map(|&id| {
                let node = self.inner.node(id);
                let value = match (given.get(&node.name), &node.op) {
                    (Some(v), _) => v.clone(),
                    (None, graph::Op::Input { default: Some(c) }) => crate::eval::const_value(c),
                    (None, _) => {
                        return Err(input_error(
                            format!(
                                "input {:?} ({}) has no value and no default",
                                node.name, node.ty
                            ),
                            format!("give the input {:?} a value", node.name),
                        ));
                    }
                };
                if !values::has_type(&value, &node.ty) {
                    return Err(input_error(
                        format!("input {:?} must be {}", node.name, node.ty),
                        "pass a value of the declared type",
                    ));
                }
                Ok(value)
            })
            .collect()
    }

    /// The user-facing id of a node index reported by a guest or by eval.
    pub(crate) fn node_name(&self, index: u32) -> Option<String> {
        self.inner.node_name(index)
    }
}

pub(super) fn input_error(message: impl Into<String>, remediation: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, Stage::Input, message, remediation)
        .for_setting(Setting::Inputs)
}

/// The most any of a tenant's graphs may declare: a footprint in the graph's own JSON shape
/// ([`Graph::check_footprint_within`]).
#[derive(Clone, Debug, Default)]
pub struct FootprintCeiling(crate::footprint::Footprint);

impl FootprintCeiling {
    /// Reads a ceiling from a footprint's JSON (`{"db": {"read": [...]}, "http": [...], ...}`).
    pub fn from_json(text: &str) -> Result<FootprintCeiling, Error> {
        crate::footprint::Footprint::from_json(text)
            .map(FootprintCeiling)
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    Stage::Setup,
                    format!("the footprint ceiling is not valid: {e}"),
                    "write the ceiling as a footprint: db.read, db.write, http rules, kernels",
                )
            })
    }
}
