//! Rebuilding a graph without some nodes: ids renumbered densely in arena order, every
//! reference rewritten (arguments, `after`, captures, region params, nodes and results,
//! inputs).
//!
//! Invariants:
//! - A removed node is either unused by every kept node, or `replace` names the kept node that
//!   stands for it (common subexpression elimination).
//! - Captures are kept (renumbered), not recomputed: an `if` or `loop` evaluates the outer
//!   nodes its regions were written to use before it runs — even when the inner node that used
//!   one was dead — so recomputing them could drop an evaluation (and its error) that `eval`
//!   of the original graph performs. (Found by the preservation test, seed 225.)

use crate::graph::{Graph, Node, NodeId, Region};

/// `graph` without the nodes marked in `remove`; uses of a removed node `n` go to
/// `replace[n]`.
pub(super) fn rebuild(graph: &Graph, remove: &[bool], replace: &[Option<NodeId>]) -> Graph {
    let mut new_id: Vec<Option<NodeId>> = vec![None; graph.nodes.len()];
    let mut next = 0u32;
    for (i, slot) in new_id.iter_mut().enumerate() {
        if !remove[i] {
            *slot = Some(NodeId(next));
            next += 1;
        }
    }
    // A use of `id`: follow replacements (a chain at most as long as the graph), then renumber.
    let map = |id: NodeId| -> NodeId {
        let mut current = id;
        for _ in 0..graph.nodes.len() {
            match replace[current.index()] {
                Some(other) if other != current => current = other,
                _ => break,
            }
        }
        new_id[current.index()].unwrap_or(current)
    };
    let map_region = |region: &Region| -> Region {
        Region {
            params: region.params.iter().map(|&p| map(p)).collect(),
            nodes: region
                .nodes
                .iter()
                .filter(|n| !remove[n.index()])
                .map(|&n| map(n))
                .collect(),
            results: region.results.iter().map(|&r| map(r)).collect(),
        }
    };
    let mut nodes: Vec<Node> = Vec::with_capacity(next as usize);
    for (i, node) in graph.nodes.iter().enumerate() {
        if remove[i] {
            continue;
        }
        let mut op = node.op.clone();
        for region in op.regions_mut() {
            *region = map_region(region);
        }
        nodes.push(Node {
            name: node.name.clone(),
            op,
            args: node.args.iter().map(|&a| map(a)).collect(),
            after: node.after.iter().map(|&a| map(a)).collect(),
            captures: node
                .captures
                .iter()
                .filter(|c| !remove[c.index()] || replace[c.index()].is_some())
                .map(|&c| map(c))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            ty: node.ty.clone(),
        });
    }
    Graph {
        name: graph.name.clone(),
        nodes,
        root: map_region(&graph.root),
        inputs: graph.inputs.iter().map(|&i| map(i)).collect(),
        outputs: graph.outputs.clone(),
        limits: graph.limits,
        footprint: graph.footprint.clone(),
        batch_effects: graph.batch_effects,
        fuse_lists: graph.fuse_lists,
    }
}
