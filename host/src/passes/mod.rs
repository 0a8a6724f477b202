//! passes: the optimizer (seed 3.2). Each pass is a pure function from a graph to a
//! graph with a report of what it changed; the pipeline runs the configured passes in a fixed
//! order and checks the graph's invariants after each.
//!
//! Implemented: constant folding (`fold`), common subexpression elimination (`cse`), dead code
//! elimination (`dce`), fusion of elementwise tensor chains and of a chain into its reduction
//! (`fuse`), placement of `matmul` in the guest or the host by a cost model (`place`), batching
//! of independent effects into rounds (`batch`). Vectorization (beyond LLVM's simd128
//! auto-vectorization of the generated loops) and memory planning are not yet here (issue 4).
//!
//! Invariants:
//! - Preservation: for every pass `p` and graph `g`, `eval(p(g)) == eval(g)` — outputs and
//!   errors, bit for bit (fuel used may only go down). Tested over generated graphs.
//! - Effects are never removed, merged, reordered or folded; inputs are never removed (they are
//!   the graph's interface).
//! - A node that would fail (overflow, division by zero, …) is never folded away: it stays and
//!   fails at run time at the same point.
//! - Deterministic: no hash-map iteration decides anything; the same graph and configuration
//!   give the same result.

mod compact;
mod fuse;
mod place;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::graph::{Class, Const, Graph, NodeId, Op, Region, Type};
pub use place::Placement;
pub(crate) use place::decisions as placements;

/// One pass, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pass {
    /// Dead code elimination: nodes no output, effect or region result needs.
    Dce,
    /// Constant folding of scalar ops whose arguments are constants.
    Fold,
    /// Common subexpression elimination within a region.
    Cse,
    /// Fusion: chains of elementwise tensor ops become one loop, without intermediate tensors.
    Fuse,
    /// Batching: the effects of one stage go out as one round and run concurrently.
    Batch,
    /// Placement: each `matmul` in the guest or natively in the host, by a cost model.
    Place,
}

impl Pass {
    /// Every pass, in pipeline order.
    pub const ALL: [Pass; 6] = [
        Pass::Fold,
        Pass::Cse,
        Pass::Dce,
        Pass::Fuse,
        Pass::Place,
        Pass::Batch,
    ];

    /// The name used by `--passes`.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Dce => "dce",
            Pass::Fold => "fold",
            Pass::Cse => "cse",
            Pass::Fuse => "fuse",
            Pass::Batch => "batch",
            Pass::Place => "place",
        }
    }
}

/// Which passes run (always in pipeline order, whatever order they were listed in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassConfig {
    passes: Vec<Pass>,
}

impl Default for PassConfig {
    /// Every pass.
    fn default() -> Self {
        PassConfig {
            passes: Pass::ALL.to_vec(),
        }
    }
}

impl PassConfig {
    /// No pass.
    pub fn none() -> PassConfig {
        PassConfig { passes: Vec::new() }
    }

    /// Parses `all`, `none`, or a comma-separated list of pass names.
    pub fn parse(text: &str) -> Result<PassConfig, String> {
        match text.trim() {
            "all" => return Ok(PassConfig::default()),
            "none" | "" => return Ok(PassConfig::none()),
            _ => {}
        }
        let mut passes = Vec::new();
        for name in text.split(',').map(str::trim) {
            let pass = Pass::ALL
                .into_iter()
                .find(|p| p.name() == name)
                .ok_or_else(|| {
                    format!(
                        "unknown pass {name:?}; passes are {}, or all, or none",
                        Pass::ALL.map(Pass::name).join(", ")
                    )
                })?;
            if !passes.contains(&pass) {
                passes.push(pass);
            }
        }
        passes.sort_by_key(|p| Pass::ALL.iter().position(|q| q == p));
        Ok(PassConfig { passes })
    }

    /// The passes that run, in order.
    pub fn passes(&self) -> &[Pass] {
        &self.passes
    }
}

impl fmt::Display for PassConfig {
    /// `none`, or the pass names in pipeline order (the form hashed into cache keys).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.passes.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.passes.iter().map(|p| p.name()).collect();
        f.write_str(&names.join(","))
    }
}

/// What one pass did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PassReport {
    /// The pass.
    pub pass: Pass,
    /// Nodes before and after.
    pub nodes_before: usize,
    /// Nodes after.
    pub nodes_after: usize,
    /// Nodes the pass changed (removed, folded or merged).
    pub changed: usize,
}

/// Runs the configured passes on `graph`. `Err` is a pass that broke an invariant (a bug).
pub(crate) fn optimize(
    graph: &Graph,
    config: &PassConfig,
) -> Result<(Graph, Vec<PassReport>), String> {
    let mut current = graph.clone();
    let mut reports = Vec::new();
    for &pass in config.passes() {
        let before = current.nodes.len();
        let (next, changed) = match pass {
            Pass::Dce => dce(&current),
            Pass::Fold => fold(&current),
            Pass::Cse => cse(&current),
            Pass::Fuse => fuse::fuse(&current),
            Pass::Batch => batch(&current),
            Pass::Place => place::place(&current),
        };
        next.check_invariants()
            .map_err(|e| format!("pass {} broke an invariant: {e}", pass.name()))?;
        reports.push(PassReport {
            pass,
            nodes_before: before,
            nodes_after: next.nodes.len(),
            changed,
        });
        current = next;
    }
    Ok((current, reports))
}

/// Turns on rounds: each run of adjacent independent effects (a stage of the canonical order)
/// is issued as one host call and served concurrently, as Haxl does. Nothing moves: the
/// canonical order already groups each stage's effects, and both engines read a round's
/// answers in that order, so outputs and the error a run ends with are unchanged. What can
/// differ is only what no order promised: every effect of a round runs even when an earlier
/// one in it fails. Reports the effects that joined a round.
fn batch(graph: &Graph) -> (Graph, usize) {
    let mut out = graph.clone();
    out.batch_effects = true;
    let mut changed = 0;
    let mut regions = vec![&out.root];
    while let Some(region) = regions.pop() {
        changed += out.rounds(region).iter().map(|r| r.len()).sum::<usize>();
        for &id in &region.nodes {
            regions.extend(out.node(id).op.regions());
        }
    }
    (out, changed)
}

/// Removes every node a run never evaluates (not demanded), keeping inputs.
fn dce(graph: &Graph) -> (Graph, usize) {
    let demanded = graph.demanded();
    let remove: Vec<bool> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| !demanded[i] && !matches!(n.op, Op::Input { .. }))
        .collect();
    let changed = remove.iter().filter(|r| **r).count();
    if changed == 0 {
        return (graph.clone(), 0);
    }
    (
        compact::rebuild(graph, &remove, &vec![None; graph.nodes.len()]),
        changed,
    )
}

/// The largest string a fold may produce (longer ones stay computed at run time).
const MAX_FOLDED_STRING: usize = 4096;

/// Replaces scalar ops whose arguments are all constants by their value, when computing it
/// succeeds (a failing node stays, to fail at run time).
fn fold(graph: &Graph) -> (Graph, usize) {
    let mut out = graph.clone();
    let mut changed = 0;
    // Canonical order is topological within a region, and arena order puts definitions
    // before uses, so one forward sweep sees folded arguments.
    for i in 0..out.nodes.len() {
        let node = &out.nodes[i];
        let foldable = node.op.spec().fold
            && !matches!(node.ty, Type::Tensor(_) | Type::Tuple(_))
            && !node.args.is_empty();
        if !foldable {
            continue;
        }
        let args: Option<Vec<graphjit_value::Value>> = node
            .args
            .iter()
            .map(|a| match &out.nodes[a.index()].op {
                Op::Const(c) if !matches!(c, Const::Tensor(_)) => Some(crate::eval::const_value(c)),
                _ => None,
            })
            .collect();
        let Some(args) = args else { continue };
        let Some(value) = crate::eval::fold(&node.op, &args, NodeId(i as u32)) else {
            continue;
        };
        let constant = match value {
            graphjit_value::Value::Bool(b) => Const::Bool(b),
            graphjit_value::Value::I64(v) => Const::I64(v),
            graphjit_value::Value::F64(x) => Const::F64(x),
            graphjit_value::Value::Str(s) if s.len() <= MAX_FOLDED_STRING => Const::Str(s),
            _ => continue,
        };
        let node = &mut out.nodes[i];
        node.op = Op::Const(constant);
        node.args.clear();
        changed += 1;
    }
    if changed == 0 {
        return (out, 0);
    }
    // Folded nodes no longer use their arguments; constants nobody uses go with dce.
    (out, changed)
}

/// Merges pure nodes of one region that compute the same thing from the same arguments: later
/// uses read the first.
fn cse(graph: &Graph) -> (Graph, usize) {
    let mut replace: Vec<Option<NodeId>> = vec![None; graph.nodes.len()];
    let mut changed = 0;
    // Only demanded nodes take part: merging into a node a run would skip could make an error
    // surface under another node's name.
    let demanded = graph.demanded();
    cse_region(graph, &graph.root, &demanded, &mut replace, &mut changed);
    if changed == 0 {
        return (graph.clone(), 0);
    }
    let remove: Vec<bool> = replace.iter().map(Option::is_some).collect();
    (compact::rebuild(graph, &remove, &replace), changed)
}

fn cse_region(
    graph: &Graph,
    region: &Region,
    demanded: &[bool],
    replace: &mut [Option<NodeId>],
    changed: &mut usize,
) {
    let resolve = |replace: &[Option<NodeId>], id: NodeId| replace[id.index()].unwrap_or(id);
    let mut seen: BTreeMap<String, NodeId> = BTreeMap::new();
    for &id in &region.nodes {
        let node = graph.node(id);
        for sub in node.op.regions() {
            cse_region(graph, sub, demanded, replace, changed);
        }
        if !demanded[id.index()] {
            continue;
        }
        let pure = node.op.spec().class == Class::Pure && node.after.is_empty();
        if !pure {
            continue;
        }
        let args: Vec<u32> = node.args.iter().map(|&a| resolve(replace, a).0).collect();
        let key = format!("{:?}|{:?}|{:?}", node.op, args, node.ty);
        match seen.get(&key) {
            Some(&first) => {
                replace[id.index()] = Some(first);
                *changed += 1;
            }
            None => {
                seen.insert(key, id);
            }
        }
    }
}
