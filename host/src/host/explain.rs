//! What the host can say about a graph without compiling it: `explain`, the pass
//! pipeline's result, Graphviz and the generated Rust.

use std::collections::BTreeMap;

use super::Host;
use super::validated::Graph;
use crate::cache::{CacheSource, KeyIngredients};
use crate::error::Error;
use crate::graph::{self};
use crate::interface::Interface;
use crate::passes::PassReport;

/// What `graphjit explain` shows about a graph, without compiling it.
#[derive(Clone, Debug, serde::Serialize)]
#[non_exhaustive]
pub struct Explanation {
    /// The graph's display name.
    pub name: Option<String>,
    /// The canonical hash (the graph's identity).
    pub hash: String,
    /// Nodes in all regions.
    pub nodes: usize,
    /// Inputs as `(name, type)`.
    pub inputs: Vec<(String, String)>,
    /// Output names.
    pub outputs: Vec<String>,
    /// Effect nodes by op (`db_query`, `http`, …).
    pub effects: BTreeMap<String, usize>,
    /// The footprint: tables read, tables written, HTTP rules, kernels.
    pub footprint: BTreeMap<String, Vec<String>>,
    /// The cache key on this host.
    pub key: String,
    /// What the key is made of.
    pub ingredients: KeyIngredients,
    /// Where a run would get the compiled graph now, and why.
    pub cache: CacheSource,
    /// The assumptions its execution rests on (seed 5.3), with the TLA+ properties that
    /// depend on each.
    pub assumptions: Vec<crate::assumptions::Assumption>,
    /// The pass pipeline and what each pass changed.
    pub passes: Vec<PassReport>,
    /// Nodes after the passes.
    pub nodes_optimized: usize,
    /// The rounds of the optimized graph (the `batch` pass): the ids of the effects each
    /// round sends as one host call, in canonical order.
    pub rounds: Vec<Vec<String>>,
    /// The `cached` nodes of the optimized graph: id, key, lifetime, and what its memo key
    /// reads (`c: key "k", ttl 60000 ms, reads a, b; holds effects`).
    pub cached: Vec<String>,
    /// This host's memo of `cached` results: entries, bytes, hits and misses so far.
    pub memo: crate::memo::MemoStats,
    /// Where each `matmul` runs (the `place` pass), with the cost model's estimates.
    pub placements: Vec<crate::passes::Placement>,
    /// The memory plan of the optimized graph: the most tensor bytes live at once, each
    /// buffer freed after its last reader (strings not counted).
    pub planned_peak_bytes: u64,
    /// The dims the graph names (`{"tensor": ["batch", 784]}`); for such a graph the other
    /// fields describe it with every named dim 1, and [`Explanation::specializations`] the
    /// graphs it compiles as.
    pub dims: Vec<String>,
    /// Of a generic graph: each specialization made so far, `batch = 4: <hash>`.
    pub specializations: Vec<String>,
    /// Of a specialization: the generic graph's hash and the binding, `<hash>: batch = 4`.
    pub specialization_of: Option<String>,
    /// The graph as written, one line per node in canonical order (`id = op(args) : type`).
    pub before: Vec<String>,
    /// The graph after the passes, the same way.
    pub after: Vec<String>,
}

/// Every round of `graph`, region by region (outer first), as node ids; a `map` whose
/// elements' effects go out as one round is `map ID per element: EFFECT, …`.
pub(super) fn effect_rounds(graph: &graph::Graph) -> Vec<Vec<String>> {
    let mut rounds = Vec::new();
    let mut regions = vec![&graph.root];
    while let Some(region) = regions.pop() {
        for round in graph.rounds(region) {
            rounds.push(
                region.nodes[round]
                    .iter()
                    .map(|&id| graph.node(id).name.clone())
                    .collect(),
            );
        }
        for &id in &region.nodes {
            let node = graph.node(id);
            if let (Some(range), graph::Op::Map { body }) = (graph.element_round(node), &node.op) {
                let members: Vec<&str> = body.nodes[range]
                    .iter()
                    .map(|&m| graph.node(m).name.as_str())
                    .collect();
                rounds.push(vec![format!(
                    "{} (per element of map {}: one round of n calls)",
                    members.join(", "),
                    node.name
                )]);
            }
        }
        for &id in region.nodes.iter().rev() {
            regions.extend(graph.node(id).op.regions().into_iter().rev());
        }
    }
    rounds
}

/// The `cached` nodes of `graph`, one line each (see [`Explanation::cached`]).
pub(super) fn cached_nodes(graph: &graph::Graph) -> Vec<String> {
    let demanded = graph.demanded();
    graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, node)| {
            let graph::Op::Cached { key, ttl_ms, body } = &node.op else {
                return None;
            };
            let id = graph::NodeId(i as u32);
            let reads: Vec<&str> = node
                .args
                .iter()
                .chain(&graph.outer_reads(id, &demanded))
                .map(|&r| graph.node(r).name.as_str())
                .collect();
            let ttl = ttl_ms.map_or_else(|| "no expiry".to_owned(), |ms| format!("ttl {ms} ms"));
            let effects = if graph.holds_effect(body) {
                "; holds effects (skipped on a hit)"
            } else {
                ""
            };
            Some(format!(
                "{}: key {key:?}, {ttl}, reads {}{effects}",
                node.name,
                if reads.is_empty() {
                    "nothing".to_owned()
                } else {
                    reads.join(", ")
                }
            ))
        })
        .collect()
}

impl Host {
    /// What the host knows about `graph` before compiling it: its shape, effects, footprint,
    /// cache key and where a run would find it, and the assumptions it rests on.
    pub fn explain(&self, graph: &Graph) -> Explanation {
        let mut effects: BTreeMap<String, usize> = BTreeMap::new();
        for node in graph.inner.nodes.iter().filter(|n| n.op.is_effect()) {
            *effects.entry(node.op.name().to_owned()).or_default() += 1;
        }
        let interfaces: std::collections::BTreeSet<Interface> = graph
            .inner
            .nodes
            .iter()
            .filter_map(|n| n.op.interface())
            .collect();
        let fp = &graph.footprint;
        let mut footprint = BTreeMap::new();
        footprint.insert(
            "db.read".to_owned(),
            fp.db.read.iter().map(ToString::to_string).collect(),
        );
        footprint.insert(
            "db.write".to_owned(),
            fp.db.write.iter().map(ToString::to_string).collect(),
        );
        footprint.insert(
            "http".to_owned(),
            fp.http.iter().map(|r| format!("{r:?}")).collect(),
        );
        footprint.insert("kernels".to_owned(), fp.kernels.iter().cloned().collect());
        let ingredients = self.key_ingredients(graph);
        let key = ingredients.key();
        let (nodes_optimized, pass_reports, rounds, placements, planned_peak_bytes, after, cached) =
            match self.optimize(graph) {
                Ok((optimized, reports)) => {
                    let placed = reports.iter().any(|r| r.pass == crate::passes::Pass::Place);
                    let mut placements = crate::passes::placements(&optimized.inner);
                    if !placed {
                        // Without the pass every matmul stays in the guest; the estimates still
                        // show what it would have chosen.
                        placements
                            .iter_mut()
                            .for_each(|p| p.choice = "guest (place is off)");
                    }
                    (
                        optimized.inner.nodes.len(),
                        reports,
                        effect_rounds(&optimized.inner),
                        placements,
                        crate::codegen::plan::peak_bytes(&optimized.inner),
                        optimized.inner.listing(),
                        cached_nodes(&optimized.inner),
                    )
                }
                Err(_) => (
                    graph.inner.nodes.len(),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    0,
                    Vec::new(),
                    cached_nodes(&graph.inner),
                ),
            };
        let specializations = graph
            .specializations()
            .into_iter()
            .map(|(binding, hash)| {
                let named: Vec<String> =
                    binding.iter().map(|(d, n)| format!("{d} = {n}")).collect();
                format!("{}: {hash}", named.join(", "))
            })
            .collect();
        Explanation {
            dims: graph.dims(),
            specializations,
            specialization_of: graph
                .specialized_from()
                .map(|(hash, binding)| format!("{hash}: {binding}")),
            passes: pass_reports,
            nodes_optimized,
            rounds,
            cached,
            memo: self.inner.memo.stats(),
            placements,
            planned_peak_bytes,
            before: graph.inner.listing(),
            after,
            name: graph.inner.name.clone(),
            hash: graph.hash(),
            nodes: graph.inner.nodes.len(),
            inputs: graph.inputs(),
            outputs: graph.inner.outputs.clone(),
            effects,
            footprint,
            key: key.to_hex(),
            ingredients,
            cache: self.inner.cache.peek(&key),
            assumptions: crate::assumptions::for_effects(&interfaces),
        }
    }

    /// The graph after this host's pass pipeline, with what each pass did.
    pub fn optimize(&self, graph: &Graph) -> Result<(Graph, Vec<PassReport>), Error> {
        graph.require_concrete()?;
        super::errors::optimize(&graph.inner, &self.inner.passes)
            .map(|(inner, reports)| (graph.with_inner(inner), reports))
    }

    /// Graphviz of `graph` after this host's passes.
    pub fn dot(&self, graph: &Graph) -> Result<String, Error> {
        Ok(self.optimize(graph)?.0.inner.to_dot())
    }

    /// The Rust this host generates for `graph` (after its passes).
    pub fn rust_source(&self, graph: &Graph) -> Result<String, Error> {
        self.optimize(graph)?.0.rust_source()
    }
}
