//! Fusion: a chain of elementwise tensor ops (the op table's `Fusion::Map` ops: unary maps,
//! binary zips and `clamp`, with `[]` broadcast) of one shape becomes one `fused` node that computes each element through the whole chain, so
//! the intermediate tensors are never allocated (vertical). Then fused reductions of one
//! shape that do not read each other become one `fused_reductions` loop (horizontal: one pass
//! over shared inputs instead of one per reduction).
//!
//! Invariants:
//! - Bit-exact: each element goes through the same element functions in the same order as
//!   before (no contraction into FMA, no reassociation).
//! - Only nodes whose every use is inside the group are absorbed; a value anything else reads
//!   (a region result, an output, a capture, an `after`, another node) stays materialized.
//! - Deterministic: groups grow from roots taken in reverse canonical order, absorbing
//!   arguments in argument order; no hash-map order decides anything.
//! - Bounded: at most [`MAX_STEPS`] ops (each two steps at most, plus one per input) and
//!   [`MAX_INPUTS`] inputs per group, so a fused
//!   node's code stays small (TVM caps fused ops for compile time too).

use std::collections::BTreeSet;

use super::compact;
use crate::graph::{FusedStep, Fusion, Graph, NodeId, Op, Region, Type};

/// Most ops in one fused node.
pub(super) const MAX_STEPS: usize = 32;
/// Most distinct inputs of one fused node.
pub(super) const MAX_INPUTS: usize = 6;

/// A tensor node of a [`Fusion::Map`] op (the op table), whose elementwise program exists.
fn elementwise(graph: &Graph, id: NodeId) -> bool {
    let node = graph.node(id);
    let Type::Tensor(shape) = &node.ty else {
        return false;
    };
    // A fused program reads each argument at the element's index, or a `[]` one at 0: an
    // argument broadcast by NumPy's rule beyond that (a row of a matrix) is not fused (yet).
    let indexed = node.args.iter().all(|&a| match &graph.node(a).ty {
        Type::Tensor(s) => s.is_empty() || s == shape,
        _ => false,
    });
    node.op.spec().fusion == Fusion::Map
        && indexed
        && node
            .op
            .element_steps(&vec![0; node.args.len()], 0)
            .is_some()
}

/// Whether something other than a node's `args` reads each node (results, outputs, captures,
/// `after`), and every node's readers through `args`.
fn uses(graph: &Graph) -> (Vec<bool>, Vec<Vec<NodeId>>) {
    let mut pinned = vec![false; graph.nodes.len()];
    let mut readers: Vec<Vec<NodeId>> = vec![Vec::new(); graph.nodes.len()];
    let mut regions: Vec<&Region> = vec![&graph.root];
    while let Some(region) = regions.pop() {
        for &r in &region.results {
            pinned[r.index()] = true;
        }
        for &id in &region.nodes {
            let node = graph.node(id);
            for &a in &node.args {
                readers[a.index()].push(id);
            }
            for &a in node.after.iter().chain(&node.captures) {
                pinned[a.index()] = true;
            }
            regions.extend(node.op.regions());
        }
    }
    (pinned, readers)
}

/// Vertical fusion (chains, and a chain into its reduction), then horizontal fusion of the
/// sibling reductions that gives.
pub(super) fn fuse(graph: &Graph) -> (Graph, usize) {
    let (vertical, chained) = fuse_chains(graph);
    let (mut horizontal, merged) = fuse_siblings(&vertical);
    let streamed = fuse_lists(&mut horizontal);
    (horizontal, chained + merged + streamed)
}

/// List fusion: turns on [`Graph::list_chains`], so that each list pipeline is written as one
/// loop; returns the list ops that joined a chain.
fn fuse_lists(graph: &mut Graph) -> usize {
    graph.fuse_lists = true;
    let demanded = graph.demanded();
    let reads = graph.reads();
    let mut members = 0;
    let mut regions = vec![&graph.root];
    while let Some(region) = regions.pop() {
        members += graph
            .list_chains(region, &demanded, &reads)
            .iter()
            .map(Vec::len)
            .sum::<usize>();
        for &id in &region.nodes {
            regions.extend(graph.node(id).op.regions());
        }
    }
    members
}

/// Most reductions one loop computes (horizontal fusion).
pub(super) const MAX_OUTPUTS: usize = 8;

/// Horizontal fusion: fused map→reduce nodes of one region over the same element shape, none
/// reading another's result, become one loop that computes them all (`FusedReductions`); each
/// former node becomes a `get` of it, where it stood. The new node stands at the first
/// member's place, so a member joins only if all its inputs are defined before that place.
/// Bounded like vertical fusion: at most [`MAX_INPUTS`] inputs, [`MAX_OUTPUTS`] outputs and
/// twice [`MAX_STEPS`] steps per loop. Returns the members merged.
fn fuse_siblings(graph: &Graph) -> (Graph, usize) {
    let mut out = graph.clone();
    let mut root = std::mem::take(&mut out.root);
    let merged = siblings_in(&mut out, &mut root);
    out.root = root;
    (out, merged)
}

fn siblings_in(graph: &mut Graph, region: &mut Region) -> usize {
    let mut merged = 0;
    for &id in &region.nodes {
        let mut op = std::mem::replace(&mut graph.nodes[id.index()].op, Op::Param);
        for sub in op.regions_mut() {
            merged += siblings_in(graph, sub);
        }
        graph.nodes[id.index()].op = op;
    }
    let position = |id: NodeId, region: &Region| region.nodes.iter().position(|&n| n == id);
    // Groups of (first member's position, members), in canonical order.
    let mut groups: Vec<Vec<NodeId>> = Vec::new();
    for &id in &region.nodes {
        let Op::Fused {
            steps,
            reduce: Some((_, shape)),
        } = &graph.node(id).op
        else {
            continue;
        };
        let joins = groups.iter().position(|group| {
            let first = group[0];
            let Op::Fused {
                reduce: Some((_, first_shape)),
                ..
            } = &graph.node(first).op
            else {
                return false;
            };
            let start = position(first, region).unwrap_or(0);
            let inputs_ready = graph
                .node(id)
                .args
                .iter()
                .all(|a| position(*a, region).is_none_or(|p| p < start));
            let mut inputs: BTreeSet<NodeId> = group
                .iter()
                .flat_map(|m| graph.node(*m).args.iter().copied())
                .collect();
            inputs.extend(graph.node(id).args.iter().copied());
            let steps_total: usize = group
                .iter()
                .map(|m| match &graph.node(*m).op {
                    Op::Fused { steps, .. } => steps.len(),
                    _ => 0,
                })
                .sum::<usize>()
                + steps.len();
            first_shape == shape
                && inputs_ready
                && group.len() < MAX_OUTPUTS
                && inputs.len() <= MAX_INPUTS
                && steps_total <= 2 * MAX_STEPS
        });
        match joins {
            Some(g) => groups[g].push(id),
            None => groups.push(vec![id]),
        }
    }
    for group in groups.into_iter().filter(|g| g.len() >= 2) {
        let mut inputs: Vec<NodeId> = Vec::new();
        let mut steps: Vec<FusedStep> = Vec::new();
        let mut outputs: Vec<(u32, crate::graph::ReduceOp)> = Vec::new();
        let mut shape = Vec::new();
        for &m in &group {
            let node = graph.node(m);
            let Op::Fused {
                steps: own,
                reduce: Some((op, elements)),
            } = &node.op
            else {
                continue;
            };
            shape.clone_from(elements);
            let base = steps.len() as u32;
            for step in own {
                steps.push(match *step {
                    FusedStep::Arg(k) => {
                        let input = node.args[k as usize];
                        let at = inputs.iter().position(|&i| i == input).unwrap_or_else(|| {
                            inputs.push(input);
                            inputs.len() - 1
                        });
                        FusedStep::Arg(at as u32)
                    }
                    FusedStep::Index => FusedStep::Index,
                    FusedStep::Const(bits) => FusedStep::Const(bits),
                    FusedStep::Unary(op, r) => FusedStep::Unary(op, r + base),
                    FusedStep::Binary(op, a, b) => FusedStep::Binary(op, a + base, b + base),
                });
            }
            outputs.push((steps.len() as u32 - 1, *op));
        }
        let names: Vec<&str> = group.iter().map(|m| graph.node(*m).name.as_str()).collect();
        let multi = NodeId(graph.nodes.len() as u32);
        graph.nodes.push(crate::graph::Node {
            name: names.join("+"),
            op: Op::FusedReductions {
                steps,
                outputs,
                shape,
            },
            args: inputs,
            after: Vec::new(),
            captures: Vec::new(),
            ty: Type::Tuple(vec![Type::Tensor(Vec::new()); group.len()]),
        });
        for (j, &m) in group.iter().enumerate() {
            let node = &mut graph.nodes[m.index()];
            node.op = Op::Get {
                index: Some(j as u32),
            };
            node.args = vec![multi];
        }
        let at = position(group[0], region).unwrap_or(0);
        region.nodes.insert(at, multi);
        merged += group.len();
    }
    merged
}

fn fuse_chains(graph: &Graph) -> (Graph, usize) {
    let demanded = graph.demanded();
    let (pinned, readers) = uses(graph);
    let mut taken = vec![false; graph.nodes.len()];
    // (the chain's last op, the chain in canonical order, the reduction it feeds, if fused too)
    let mut groups: Vec<(NodeId, Vec<NodeId>, Option<NodeId>)> = Vec::new();
    let mut regions: Vec<&Region> = vec![&graph.root];
    while let Some(region) = regions.pop() {
        let here: BTreeSet<NodeId> = region.nodes.iter().copied().collect();
        for &id in region.nodes.iter().rev() {
            regions.extend(graph.node(id).op.regions());
            if taken[id.index()] || !demanded[id.index()] || !elementwise(graph, id) {
                continue;
            }
            let ty = &graph.node(id).ty;
            let mut members: BTreeSet<NodeId> = BTreeSet::from([id]);
            loop {
                let mut grew = false;
                let candidates: Vec<NodeId> = members
                    .iter()
                    .flat_map(|&m| graph.node(m).args.iter().copied())
                    .collect();
                for a in candidates {
                    // An `iota` of the chain's shape that only the chain reads becomes its
                    // index, and a `fill` a constant: neither tensor is made.
                    let iota = graph.node(a).op.spec().fusion == Fusion::Source
                        && here.contains(&a)
                        && !members.contains(&a)
                        && !taken[a.index()]
                        && demanded[a.index()]
                        && !pinned[a.index()]
                        && &graph.node(a).ty == ty
                        && readers[a.index()].iter().all(|r| members.contains(r));
                    if iota && members.len() < MAX_STEPS {
                        members.insert(a);
                        grew = true;
                        continue;
                    }
                    let absorbable = here.contains(&a)
                        && !members.contains(&a)
                        && !taken[a.index()]
                        && demanded[a.index()]
                        && !pinned[a.index()]
                        && elementwise(graph, a)
                        && &graph.node(a).ty == ty
                        && readers[a.index()].iter().all(|r| members.contains(r));
                    if absorbable && members.len() < MAX_STEPS {
                        let mut trial = members.clone();
                        trial.insert(a);
                        if external_inputs(graph, region, &trial).len() <= MAX_INPUTS {
                            members = trial;
                            grew = true;
                        }
                    }
                }
                if !grew {
                    break;
                }
            }
            // map→reduce: a chain whose only reader is a reduction of it fuses into it.
            let reduction = match readers[id.index()].as_slice() {
                [r] if !pinned[id.index()]
                    && here.contains(r)
                    && demanded[r.index()]
                    && !taken[r.index()]
                    && graph.node(*r).op.spec().fusion == Fusion::Reduce
                    // A reduction along an axis has `sum`'s row but is not fused (yet).
                    && matches!(graph.node(*r).op, Op::Reduce(_)) =>
                {
                    Some(*r)
                }
                _ => None,
            };
            if members.len() >= 2 || reduction.is_some() {
                for m in members.iter().chain(&reduction) {
                    taken[m.index()] = true;
                }
                let ordered: Vec<NodeId> = region
                    .nodes
                    .iter()
                    .copied()
                    .filter(|n| members.contains(n))
                    .collect();
                groups.push((id, ordered, reduction));
            }
        }
    }
    if groups.is_empty() {
        return (graph.clone(), 0);
    }
    let mut out = graph.clone();
    let mut remove = vec![false; graph.nodes.len()];
    let mut changed = 0;
    'groups: for (root, members, reduction) in &groups {
        let mut region_inputs = Vec::new();
        let mut register: Vec<(NodeId, u32)> = Vec::new();
        let mut steps = Vec::new();
        for input in external_inputs_ordered(graph, members) {
            register.push((input, steps.len() as u32));
            // A `[]` tensor constant is a literal in the loop, not an input read per element.
            match broadcast_constant(graph, input) {
                Some(bits) => steps.push(FusedStep::Const(bits)),
                None => {
                    steps.push(FusedStep::Arg(region_inputs.len() as u32));
                    region_inputs.push(input);
                }
            }
        }
        let reg = |register: &[(NodeId, u32)], id: NodeId| {
            register
                .iter()
                .find(|(n, _)| *n == id)
                .map_or(0, |(_, r)| *r)
        };
        for &m in members {
            let node = graph.node(m);
            let appended = match (&node.op, node.args.as_slice()) {
                (Op::Iota { .. }, []) => vec![FusedStep::Index],
                (Op::Fill { value, .. }, []) => vec![FusedStep::Const(value.to_bits())],
                (op, args) => {
                    let registers: Vec<u32> = args.iter().map(|&a| reg(&register, a)).collect();
                    // `elementwise` admitted only members with a program; were one without
                    // it here, the group is left unfused rather than given a wrong program.
                    match op.element_steps(&registers, steps.len() as u32) {
                        Some(appended) => appended,
                        None => continue 'groups,
                    }
                }
            };
            steps.extend(appended);
            register.push((m, steps.len().saturating_sub(1) as u32));
        }
        let reduce = match reduction {
            Some(r) => match (&graph.node(*r).op, &graph.node(*root).ty) {
                (Op::Reduce(op), Type::Tensor(shape)) => Some((*r, *op, shape.clone())),
                _ => None,
            },
            None => None,
        };
        let fused_id = reduce.as_ref().map_or(*root, |(r, _, _)| *r);
        let node = &mut out.nodes[fused_id.index()];
        node.op = Op::Fused {
            steps,
            reduce: reduce.map(|(_, op, shape)| (op, shape)),
        };
        node.args = region_inputs;
        for &m in members {
            if m != fused_id {
                remove[m.index()] = true;
                changed += 1;
            }
        }
    }
    (
        compact::rebuild(&out, &remove, &vec![None; graph.nodes.len()]),
        changed,
    )
}

/// The f32 bits of `id` when it is a constant `[]` tensor (one value broadcast to every
/// element).
fn broadcast_constant(graph: &Graph, id: NodeId) -> Option<u32> {
    match &graph.node(id).op {
        Op::Const(crate::graph::Const::Tensor(t)) if t.shape.is_empty() => {
            t.data.first().map(|v| v.to_bits())
        }
        _ => None,
    }
}

/// Arguments of `members` that are not members, in order of first use (in canonical order).
fn external_inputs_ordered(graph: &Graph, members: &[NodeId]) -> Vec<NodeId> {
    let set: BTreeSet<NodeId> = members.iter().copied().collect();
    let mut out = Vec::new();
    for &m in members {
        for &a in &graph.node(m).args {
            if !set.contains(&a) && !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

fn external_inputs(graph: &Graph, region: &Region, members: &BTreeSet<NodeId>) -> Vec<NodeId> {
    let ordered: Vec<NodeId> = region
        .nodes
        .iter()
        .copied()
        .filter(|n| members.contains(n))
        .collect();
    external_inputs_ordered(graph, &ordered)
}
