//! Names and order: unique ids within the size and depth limits, free names of regions, and
//! the canonical order (stages by dependency, a stage's effects together, ids within).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::graph::error::{GraphError, GraphErrorKind as Kind, Limits};
use crate::graph::json::{NodeJson, RegionJson};
use crate::graph::{Class, OpKind};

/// Checks names are unique and the graph is within size and depth limits, before lowering.
pub(super) fn collect_names(
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
pub(super) fn free_names<'a>(region: &'a RegionJson, out: &mut BTreeSet<&'a str>) {
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
pub(super) fn canonical_order(nodes: &[NodeJson]) -> Result<Vec<usize>, GraphError> {
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
pub(super) fn has_effects(node: &NodeJson) -> bool {
    OpKind::from_name(&node.op).is_some_and(|k| matches!(k.spec().class, Class::Effect(_)))
        || node
            .regions()
            .any(|(_, region)| region.nodes.iter().any(has_effects))
}

/// A topological order of a region's nodes (ties by id) and, per node, the indices of the
/// nodes of this region it depends on (deduplicated); a cycle is an error naming a node on it.
pub(super) fn topological_order(
    nodes: &[NodeJson],
) -> Result<(Vec<usize>, Vec<Vec<usize>>), GraphError> {
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
pub(super) fn kahn<K: Ord>(dependencies: &[Vec<usize>], key: impl Fn(usize) -> K) -> Vec<usize> {
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
