//! Memory planning: when each buffer-holding value dies, and how much is live at once.
//!
//! Generated code drops a value right after its last reader, so the guest's allocator
//! (dlmalloc, in the run's one linear memory: the arena of the run) hands its buffer to the
//! next allocation instead of keeping every intermediate alive to the end. [`peak_bytes`]
//! walks the same plan with the sizes the types give ahead of time; `explain` shows it next to
//! the graph's node counts, and a run's measured `peak_memory_bytes` (linear memory, so also
//! the stack, static data and allocator slack) is checked against it in tests.

use std::collections::BTreeMap;

use crate::graph::{Graph, NodeId, Op, Region, Type};

/// Tensors below this many bytes are left to the end of their scope: freeing them early saves
/// little, and every early drop is one more distinct cleanup path on each `?` exit after it
/// (rustc's drop elaboration), which made a 3,000-node graph with a drop per node take over a
/// minute to compile.
pub(crate) const MIN_DROPPED_BYTES: u64 = 64 * 1024;

/// At most this many early drops per region, the largest tensors first, for the same reason.
pub(crate) const MAX_DROPS_PER_REGION: usize = 256;

/// For each node of `region`, the values defined in `region` whose last reader it is (a
/// sub-region's captures count as reads by the node holding it). Only tensors (or tuples of
/// them) of at least [`MIN_DROPPED_BYTES`] are listed, at most [`MAX_DROPS_PER_REGION`] of
/// them; region results (live to the end) and parameters never are; a value nothing reads is
/// listed at its own node.
pub(crate) fn last_uses(
    graph: &Graph,
    region: &Region,
    demanded: &[bool],
) -> BTreeMap<NodeId, Vec<NodeId>> {
    let mut last: BTreeMap<NodeId, NodeId> = BTreeMap::new();
    for &id in region.nodes.iter().filter(|id| demanded[id.index()]) {
        last.insert(id, id);
        let node = graph.node(id);
        for &used in node.args.iter().chain(&node.captures) {
            if last.contains_key(&used) {
                last.insert(used, id);
            }
        }
    }
    let mut candidates: Vec<(u64, NodeId, NodeId)> = last
        .into_iter()
        .filter(|(value, _)| {
            let node = graph.node(*value);
            !matches!(node.op, Op::Param) && !region.results.contains(value)
        })
        .map(|(value, user)| (tensor_bytes(&graph.node(value).ty), value, user))
        .filter(|&(bytes, _, _)| bytes >= MIN_DROPPED_BYTES)
        .collect();
    // Largest first, ties by id: deterministic.
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    candidates.truncate(MAX_DROPS_PER_REGION);
    let mut at: BTreeMap<NodeId, Vec<NodeId>> = BTreeMap::new();
    for (_, value, user) in candidates {
        at.entry(user).or_default().push(value);
    }
    for values in at.values_mut() {
        values.sort();
    }
    at
}

/// Bytes of tensor data a value of type `ty` holds (strings are not counted: their sizes are
/// not known ahead; a tuple of scalars holds none and is `Copy` in the generated Rust).
fn tensor_bytes(ty: &Type) -> u64 {
    match ty {
        // Typing bounds every tensor (graph `Limits`); saturating keeps this total anyway.
        Type::Tensor(_) => ty
            .tensor_elements()
            .map_or(u64::MAX, |n| n.saturating_mul(4)),
        Type::Tuple(items) => items
            .iter()
            .fold(0u64, |acc, t| acc.saturating_add(tensor_bytes(t))),
        _ => 0,
    }
}

/// The most tensor bytes live at once when the graph runs under this plan: each value
/// allocated at its node and freed after its last reader. A node with regions counts its
/// branch or body's own peak while it runs.
pub(crate) fn peak_bytes(graph: &Graph) -> u64 {
    let demanded = graph.demanded();
    region_peak(graph, &graph.root, &demanded)
}

fn region_peak(graph: &Graph, region: &Region, demanded: &[bool]) -> u64 {
    let last_uses = last_uses(graph, region, demanded);
    let (mut live, mut peak) = (0u64, 0u64);
    for &id in region.nodes.iter().filter(|id| demanded[id.index()]) {
        let node = graph.node(id);
        let inner = node
            .op
            .regions()
            .iter()
            .map(|r| region_peak(graph, r, demanded))
            .max()
            .unwrap_or(0);
        let own = tensor_bytes(&node.ty);
        peak = peak.max(live + inner + own);
        live += own;
        for dead in last_uses.get(&id).into_iter().flatten() {
            live = live.saturating_sub(tensor_bytes(&graph.node(*dead).ty));
        }
    }
    peak
}
