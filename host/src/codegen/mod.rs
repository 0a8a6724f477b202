//! Graph → safe Rust source for one guest component.
//!
//! Invariants:
//! - `codegen` never runs user code and never reads the clock, the environment or a hash map's
//!   iteration order: the same graph gives byte-identical source.
//! - Identifiers are generated (`n17`, `s0`); user text appears only as escaped ASCII string
//!   literals or inside `//` comments after `{:?}` escaping, so no string can change the
//!   code's shape.
//! - The source contains no `unsafe`, no `unwrap`, no indexing and no unchecked integer
//!   arithmetic: every fallible step is an `ops` call returning `Result`, propagated with `?`.
//! - Loops are `for` over a literal range; every tensor allocation goes through `ops`, which
//!   checks it (memory) — fuel bounds the rest.
//! - A state typing should have ruled out (an op on a type it has no rule for, a missing
//!   argument) is a [`CodegenError`] naming the node, never text that rustc would reject.
//!
//! Layout: this file walks regions (blocks, `if`, `loop`, liveness drops); `emit.rs` has one
//! small emitter per op, reached by an exhaustive match on the op; `effects.rs` describes each
//! effect call once for its three spellings (alone, added to a round, taken from a round);
//! `fused.rs` writes fused loops; `lists.rs` the list regions, fused list chains and `cached`.

mod effects;
mod emit;
mod fused;
mod lists;
mod literal;
pub(crate) mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::graph::{Graph, Node, NodeId, Op, Region};
use literal::rust_type;

/// Generated source plus, for each line, the node it came from (for rustc diagnostics).
#[derive(Clone, Debug)]
pub(crate) struct GeneratedRust {
    pub(crate) source: String,
    /// `line_nodes[i]` is the node that produced line `i + 1`, if any.
    pub(crate) line_nodes: Vec<Option<NodeId>>,
}

/// Codegen met a graph it has no rule for: a bug in typing or in a pass (typing accepts only
/// graphs codegen can write), reported as `codegen_failed` at the node instead of as Rust that
/// does not compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CodegenError {
    pub(crate) node: Option<NodeId>,
    pub(crate) message: String,
}

impl fmt::Display for CodegenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub(crate) type Result<T> = std::result::Result<T, CodegenError>;

/// Generates the guest crate's source for `graph`.
pub(crate) fn generate(graph: &Graph) -> Result<GeneratedRust> {
    let mut generator = Generator::new(graph);
    generator.file()?;
    Ok(GeneratedRust {
        source: generator.out,
        line_nodes: generator.line_nodes,
    })
}

struct Generator<'g> {
    graph: &'g Graph,
    demanded: Vec<bool>,
    /// Reads of each node's variable in the generated code.
    reads: Vec<u32>,
    out: String,
    line_nodes: Vec<Option<NodeId>>,
    indent: usize,
    current: Option<NodeId>,
    loop_depth: usize,
    /// Effect nodes sent in a round, and the variable holding that round's answers.
    round_of: BTreeMap<NodeId, String>,
    /// Values already moved into their one reader (never dropped again).
    moved: std::cell::RefCell<BTreeSet<NodeId>>,
    /// References to each node anywhere in the graph (`Graph::reads`), for list fusion.
    all_reads: Vec<u32>,
}

/// The node an emitter is writing, and the region it stands in (which decides whether an
/// argument may be moved).
struct At<'a> {
    id: NodeId,
    node: &'a Node,
    region: &'a Region,
}

impl At<'_> {
    /// The node number the guest reports errors at.
    fn at(&self) -> u32 {
        self.id.0
    }

    /// Whether `x` is defined in this node's own region (not captured from outside).
    fn local(&self, x: NodeId) -> bool {
        self.region.nodes.contains(&x) || self.region.params.contains(&x)
    }

    /// Argument `i`, or the error typing should have prevented.
    fn arg(&self, i: usize) -> Result<NodeId> {
        self.node.args.get(i).copied().ok_or_else(|| {
            self.error(format!(
                "`{}` has {} arguments, its emitter reads argument {i}",
                self.node.op.name(),
                self.node.args.len()
            ))
        })
    }

    fn error(&self, message: String) -> CodegenError {
        CodegenError {
            node: Some(self.id),
            message,
        }
    }

    /// The error for an op on a type it has no rule for.
    fn no_rule(&self, what: &str) -> CodegenError {
        self.error(format!(
            "no code for `{}` on {what} (result type {})",
            self.node.op.name(),
            self.node.ty
        ))
    }
}

impl<'g> Generator<'g> {
    fn new(graph: &'g Graph) -> Self {
        let demanded = graph.demanded();
        let mut reads = vec![0u32; graph.nodes.len()];
        count_reads(graph, &graph.root, &demanded, &mut reads);
        for r in &graph.root.results {
            reads[r.index()] += 1;
        }
        Generator {
            graph,
            demanded,
            reads,
            out: String::new(),
            line_nodes: Vec::new(),
            indent: 0,
            current: None,
            loop_depth: 0,
            round_of: BTreeMap::new(),
            moved: std::cell::RefCell::new(BTreeSet::new()),
            all_reads: graph.reads(),
        }
    }

    fn line(&mut self, text: &str) {
        for _ in 0..self.indent {
            self.out.push_str("    ");
        }
        self.out.push_str(text);
        self.out.push('\n');
        self.line_nodes.push(self.current);
    }

    /// `open`, then `body` one level deeper, then `close`: every block the generator writes.
    fn block(
        &mut self,
        open: &str,
        close: &str,
        body: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        self.line(open);
        self.indent += 1;
        let done = body(self);
        self.indent -= 1;
        self.line(close);
        done
    }

    fn file(&mut self) -> Result<()> {
        let hash = self.graph.canonical_hash();
        self.line("// Generated by graphjit. Do not edit: regenerate from the graph.");
        self.line(&format!("// graph {}", hash.to_hex()));
        self.line("#![no_std]");
        self.line("extern crate alloc;");
        self.line("");
        self.line("use graphjit_guest as rt;");
        self.line("");
        self.line("rt::export_graph!(graph);");
        self.line("");
        let reads_inputs = self.graph.inputs.iter().any(|i| self.demanded[i.index()]);
        let param = if reads_inputs {
            "mut inputs"
        } else {
            "_inputs"
        };
        let open = format!(
            "fn graph({param}: rt::Inputs) -> Result<alloc::vec::Vec<rt::Value>, rt::RunError> {{"
        );
        self.block(&open, "}", |g| {
            let root = &g.graph.root;
            g.region_body(root)?;
            let values = root
                .results
                .iter()
                .enumerate()
                .map(|(i, &r)| {
                    // The same node may be several outputs: move only at its last mention.
                    let later = root.results[i + 1..].contains(&r);
                    let expr = if later { g.clone_of(r) } else { g.var(r) };
                    emit::value_expr(&expr, &g.graph.node(r).ty)
                })
                .collect::<Vec<String>>();
            g.current = None;
            g.line(&format!("Ok(alloc::vec![{}])", values.join(", ")));
            Ok(())
        })
    }

    fn var(&self, id: NodeId) -> String {
        format!("n{}", id.0)
    }

    fn clone_of(&self, id: NodeId) -> String {
        if self.graph.node(id).ty.is_copy() {
            self.var(id)
        } else {
            format!("{}.clone()", self.var(id))
        }
    }

    /// An owned copy of `id` for a position that consumes it: moved if this is the node's only
    /// read and no loop could run the read twice, cloned otherwise.
    fn owned(&self, id: NodeId, same_region: bool) -> String {
        if self.graph.node(id).ty.is_copy() {
            self.var(id)
        } else if same_region && self.reads[id.index()] == 1 {
            self.moved.borrow_mut().insert(id);
            self.var(id)
        } else {
            format!("{}.clone()", self.var(id))
        }
    }

    fn region_body(&mut self, region: &Region) -> Result<()> {
        let rounds = self.graph.rounds(region);
        let last_uses = plan::last_uses(self.graph, region, &self.demanded);
        let chains = self
            .graph
            .list_chains(region, &self.demanded, &self.all_reads);
        // Members of a list chain before its last: written with the last one, their drops
        // after it.
        let mut deferred = Vec::new();
        for (position, &id) in region.nodes.iter().enumerate() {
            if let Some(round) = rounds.iter().find(|r| r.start == position) {
                self.round(&region.nodes[round.clone()], region)?;
            }
            if !self.demanded[id.index()] {
                continue;
            }
            if chains.iter().any(|c| c[..c.len() - 1].contains(&id)) {
                deferred.push(id);
                continue;
            }
            match chains.iter().find(|c| c.last() == Some(&id)) {
                Some(chain) => self.fused_list(id, region, chain)?,
                None => self.node(id, region)?,
            }
            for member in deferred.drain(..) {
                self.drop_dead(member, &last_uses);
            }
            self.drop_dead(id, &last_uses);
        }
        Ok(())
    }

    /// Drops the values whose last use was `id` (memory planning by liveness, `plan.rs`), so
    /// their buffers are free for the next allocation (dlmalloc reuses them) instead of living
    /// to the end of the function. A value moved into its one reader is already gone.
    fn drop_dead(&mut self, id: NodeId, last_uses: &BTreeMap<NodeId, Vec<NodeId>>) {
        let Some(values) = last_uses.get(&id) else {
            return;
        };
        let names: Vec<String> = values
            .iter()
            .filter(|v| !self.moved.borrow().contains(v))
            .map(|&v| {
                if self.reads[v.index()] == 0 {
                    format!("_n{}", v.0)
                } else {
                    self.var(v)
                }
            })
            .collect();
        for name in names {
            self.line(&format!("drop({name});"));
        }
    }

    /// `let nK: T` (or `_nK` for a value nobody reads).
    fn binding(&self, id: NodeId) -> String {
        let node = self.graph.node(id);
        let name = if self.reads[id.index()] == 0 {
            format!("_n{}", id.0)
        } else {
            self.var(id)
        };
        format!("let {name}: {}", rust_type(&node.ty))
    }

    /// One node: a comment naming it, then its binding. `if` and `loop` write blocks; every
    /// other op is one expression from its emitter (`emit.rs`).
    fn node(&mut self, id: NodeId, region: &Region) -> Result<()> {
        let graph = self.graph;
        let node = graph.node(id);
        self.current = Some(id);
        self.line(&format!(
            "// {}: {} {:?}",
            self.var(id),
            node.op.name(),
            node.name
        ));
        let at = At { id, node, region };
        match &node.op {
            Op::If { then, otherwise } => self.if_node(&at, then, otherwise),
            Op::Loop { iterations, body } => self.loop_node(&at, *iterations, body),
            Op::Map { body }
            | Op::Filter { body }
            | Op::Fold { body }
            | Op::SortBy { body }
            | Op::GroupBy { body } => self.list_region(&at, body),
            Op::Cached { body, .. } => self.cached_node(&at, body),
            Op::Param => Ok(()),
            _ => {
                let expr = self.expr(&at)?;
                self.line(&format!("{} = {expr};", self.binding(id)));
                Ok(())
            }
        }
    }

    fn if_node(&mut self, at: &At, then: &Region, otherwise: &Region) -> Result<()> {
        let condition = self.var(at.arg(0)?);
        self.line(&format!("{} = if {condition} {{", self.binding(at.id)));
        self.sub_region(then)?;
        self.block("} else {", "};", |g| g.branch(otherwise))
    }

    /// A branch of `if`, one level deeper.
    fn sub_region(&mut self, region: &Region) -> Result<()> {
        self.indent += 1;
        let done = self.branch(region);
        self.indent -= 1;
        done
    }

    /// A branch's nodes, then its result as the block's value.
    fn branch(&mut self, region: &Region) -> Result<()> {
        self.region_body(region)?;
        if let Some(&r) = region.results.first() {
            let local = region.nodes.contains(&r);
            let value = self.owned(r, local);
            self.line(&value);
        }
        Ok(())
    }

    fn loop_node(&mut self, at: &At, iterations: u64, body: &Region) -> Result<()> {
        let graph = self.graph;
        let depth = self.loop_depth;
        let open = format!("{} = {{", self.binding(at.id));
        self.block(&open, "};", |g| {
            let states: Vec<String> = (0..at.node.args.len())
                .map(|i| format!("s{depth}_{i}"))
                .collect();
            for (state, &init) in states.iter().zip(&at.node.args) {
                let ty = rust_type(&graph.node(init).ty);
                let value = g.owned(init, at.local(init));
                g.line(&format!("let mut {state}: {ty} = {value};"));
            }
            let index = body.params.first().copied();
            let index_var = match index {
                Some(i) if g.reads[i.index()] > 0 => format!("i{depth}"),
                _ => "_".to_string(),
            };
            let open = format!("for {index_var} in 0..{iterations}u64 {{");
            g.block(&open, "}", |g| {
                g.loop_depth += 1;
                if let Some(i) = index.filter(|_| index_var != "_") {
                    g.line(&format!("{} = {index_var} as i64;", g.binding(i)));
                }
                for (state, &param) in states.iter().zip(body.params.iter().skip(1)) {
                    g.line(&format!("{} = {state};", g.binding(param)));
                }
                let done = g.region_body(body);
                g.current = Some(at.id);
                // Results are computed before any state is assigned: a simultaneous update.
                for (state, &result) in states.iter().zip(&body.results) {
                    let local = body.nodes.contains(&result) || body.params.contains(&result);
                    let value = g.owned(result, local);
                    g.line(&format!("{state} = {value};"));
                }
                g.loop_depth -= 1;
                done
            })?;
            if let [state] = states.as_slice() {
                g.line(state);
            } else {
                g.line(&format!("({},)", states.join(", ")));
            }
            Ok(())
        })
    }
}

/// Counts, per node, how many times generated code reads its variable.
fn count_reads(graph: &Graph, region: &Region, demanded: &[bool], reads: &mut [u32]) {
    for &id in &region.nodes {
        if !demanded[id.index()] {
            continue;
        }
        let node = graph.node(id);
        for &a in &node.args {
            reads[a.index()] += 1;
        }
        // `filter`, `sort_by` and `group_by` keep the element after their body has run: one
        // more read of the param.
        if let Op::Filter { body } | Op::SortBy { body } | Op::GroupBy { body } = &node.op
            && let Some(&item) = body.params.first()
        {
            reads[item.index()] += 1;
        }
        for sub in node.op.regions() {
            count_reads(graph, sub, demanded, reads);
            for &r in &sub.results {
                reads[r.index()] += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
