//! List chains: the pipelines of `range`, `map`, `filter` and `fold` that generated code runs
//! as one loop when the `fuse` pass turned list fusion on (`Graph::fuse_lists`).

use super::{Graph, NodeId, Op, Region};

impl Graph {
    /// The list pipelines of `region` that generated code runs as one loop when the graph
    /// fuses lists (Haskell's stream fusion, without laziness): chains of `range`, `map`,
    /// `filter` and `fold` where each member is the first argument of the next and read by
    /// nothing else, ending in a `fold`, `map` or `filter` whose list is made. No intermediate
    /// list is made. Each chain is its members in order; a source that is not a member (any
    /// list) is iterated as it is.
    ///
    /// What keeps the meaning: no body holds an effect or a `cached` node (their order across
    /// elements would change); between two members stands no node that can fail (only
    /// constants and nodes a run skips), so no error moves before or after the chain; and the
    /// fused loop reports the error an unfused run meets first: a failure in stage `j` stops
    /// stages `j` and later for the elements after it, while the earlier stages go on over
    /// them, since their failure at a later element would have come first.
    /// `reads` is [`Graph::reads`].
    pub(crate) fn list_chains(
        &self,
        region: &Region,
        demanded: &[bool],
        reads: &[u32],
    ) -> Vec<Vec<NodeId>> {
        if !self.fuse_lists {
            return Vec::new();
        }
        let position = |id: NodeId| region.nodes.iter().position(|&n| n == id);
        let streams = |id: NodeId, tail: bool| {
            let node = self.node(id);
            match &node.op {
                Op::Range => !tail,
                Op::Map { body } | Op::Filter { body } => self.streamable(body),
                Op::Fold { body } => tail && self.streamable(body),
                _ => false,
            }
        };
        // The member before each node, if it has one.
        let mut previous: std::collections::BTreeMap<NodeId, NodeId> = Default::default();
        for (at, &id) in region.nodes.iter().enumerate() {
            let node = self.node(id);
            if !demanded[id.index()] || !streams(id, true) || matches!(node.op, Op::Range) {
                continue;
            }
            let Some(&source) = node.args.first() else {
                continue;
            };
            let Some(from) = position(source) else {
                continue;
            };
            let quiet_between = region.nodes[from + 1..at]
                .iter()
                .all(|&n| !demanded[n.index()] || matches!(self.node(n).op, Op::Const(_)));
            if streams(source, false) && reads[source.index()] == 1 && quiet_between {
                previous.insert(id, source);
            }
        }
        let followed: std::collections::BTreeSet<NodeId> = previous.values().copied().collect();
        let mut chains = Vec::new();
        for &end in region.nodes.iter().filter(|id| !followed.contains(id)) {
            let mut chain = vec![end];
            while let Some(&before) = chain.last().and_then(|last| previous.get(last)) {
                chain.push(before);
            }
            if chain.len() >= 2 {
                chain.reverse();
                chains.push(chain);
            }
        }
        chains
    }

    /// Whether a list op's body may run element by element interleaved with other bodies:
    /// no effect and no `cached` node in it.
    fn streamable(&self, body: &Region) -> bool {
        !self.holds_effect(body)
            && !body.nodes.iter().any(|&id| {
                let op = &self.node(id).op;
                matches!(op, Op::Cached { .. })
                    || op.regions().into_iter().any(|r| !self.streamable(r))
            })
    }

    /// How many times each node is referenced: as an argument or `after` of any node in any
    /// region, or as a region's result (the root's: an output).
    pub(crate) fn reads(&self) -> Vec<u32> {
        let mut reads = vec![0u32; self.nodes.len()];
        let mut regions = vec![&self.root];
        while let Some(region) = regions.pop() {
            for &r in &region.results {
                reads[r.index()] += 1;
            }
            for &id in &region.nodes {
                let node = self.node(id);
                for &a in node.args.iter().chain(&node.after) {
                    reads[a.index()] += 1;
                }
                regions.extend(node.op.regions());
            }
        }
        reads
    }
}
