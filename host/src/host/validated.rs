//! The public, validated [`Graph`]: parsing, identity, inputs and their binding.

use std::collections::BTreeMap;
use std::sync::Arc;

use graphjit_value::Value;

use super::build::generate;
use super::errors::optimize;
use super::types::RunLimits;
use crate::error::{Error, ErrorKind, Setting, Stage};
use crate::footprint::Footprint;
use crate::graph::{self, NodeId};
use crate::passes::PassConfig;
use crate::values;

/// A parsed, validated graph.
#[derive(Clone, Debug)]
pub struct Graph {
    pub(crate) inner: graph::Graph,
    /// blake3 of the canonical form, computed once at parse time.
    pub(super) hash: blake3::Hash,
    /// The footprint, shared by every run's effect dispatcher.
    pub(super) footprint: Arc<Footprint>,
}

impl Graph {
    /// Parses and validates a graph from JSON (format v1, `docs/graph-format.md`).
    pub fn from_json(bytes: &[u8]) -> Result<Graph, Error> {
        let inner = graph::parse(bytes, &graph::Limits::default())?;
        let hash = inner.canonical_hash();
        let footprint = Arc::new(inner.footprint.clone());
        Ok(Graph {
            inner,
            hash,
            footprint,
        })
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
        }
    }

    /// The generated Rust for this graph after `passes` (what a host with that configuration
    /// compiles; deterministic).
    pub fn rust_source_with(&self, passes: &PassConfig) -> Result<String, Error> {
        let (inner, _) = optimize(&self.inner, passes)?;
        Ok(generate(&inner)?.source)
    }

    /// The generated Rust for this graph as written, before any pass (deterministic: same
    /// graph, same text). An error only where codegen has no rule for a node typing accepted
    /// (`codegen_failed`, a bug to report).
    pub fn rust_source(&self) -> Result<String, Error> {
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
                (node.name.clone(), node.ty.to_string())
            })
            .collect()
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
            let value = values::parse_input(text, &self.inner.node(node).ty).map_err(|m| {
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
