//! The compute graph: parsing, validation, types and canonical identity (the purity boundary).
//!
//! JSON arrives in [`json`], is checked and lowered at once by [`lower`] into the internal
//! graph defined here, keyed by [`NodeId`] newtypes; nothing downstream sees JSON.
//!
//! Invariants (checked by [`Graph::check_invariants`] after every transformation):
//! - `graph` knows nothing of codegen, rustc or wasmtime.
//! - Every region lists its nodes in **canonical order**: a topological order of the
//!   dependencies (arguments and the outer nodes a sub-region captures) with ties broken by
//!   node name. JSON node order never matters, so permuted graphs are the same graph.
//! - `NodeId`s are assigned in pre-order over that canonical order, so they read top to bottom
//!   in generated code and are stable for the same graph.
//! - A node references only nodes before it in its own region, its region's parameters, or
//!   nodes of enclosing regions: the graph is acyclic by construction.
//! - Every node has a type; types are checked once here and trusted downstream.
//!
//! Semantics (defined by `eval`): a region evaluates the nodes its results demand, in
//! canonical order; an `if` evaluates only the branch taken; a `loop` runs its body exactly
//! `iterations` times. The first error in that order is the run's error.

mod canonical;
mod chains;
mod dot;
mod error;
mod json;
mod lower;
mod ops;
mod types;

pub(crate) use error::{GraphError, GraphErrorKind, Limits};
pub(crate) use lower::dims::{Binding, Dim};
#[cfg(any(test, feature = "testing"))]
pub(crate) use lower::parse;
pub(crate) use lower::{Parsed, Template, read};
pub(crate) use ops::{
    BinaryOp, Class, CompareOp, Fusion, OpKind, OpSpec, ReduceOp, Scalar, StrOp, UnaryOp, Work,
};
pub(crate) use types::Type;

use graphjit_value::Tensor;
pub(crate) use graphjit_value::effects::AnswerType;
pub(crate) use graphjit_value::http::{BodyType, HttpAnswer};

use crate::footprint::Footprint;
use crate::interface::Interface;

/// Index of a node in [`Graph::nodes`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub(crate) struct NodeId(pub(crate) u32);

impl NodeId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// A validated, typed graph in canonical form.
#[derive(Clone, Debug)]
pub(crate) struct Graph {
    /// Optional human name from the JSON (`"name"`).
    pub(crate) name: Option<String>,
    /// Every node of every region, indexed by `NodeId`.
    pub(crate) nodes: Vec<Node>,
    /// The top-level region; its results are the graph's outputs in `outputs` order.
    pub(crate) root: Region,
    /// Input nodes, sorted by name: the order in which inputs cross the boundary.
    pub(crate) inputs: Vec<NodeId>,
    /// Output names, sorted; `root.results[i]` is the node behind `outputs[i]`.
    pub(crate) outputs: Vec<String>,
    /// Run limits the graph asks for (the caller may lower or override them).
    pub(crate) limits: GraphLimits,
    /// What the graph's effects may touch; everything else is refused.
    pub(crate) footprint: Footprint,
    /// Whether adjacent independent effects go out as one round (set by the `batch` pass;
    /// see [`Graph::rounds`]). Changes how effects are issued, never what a run computes.
    pub(crate) batch_effects: bool,
    /// Whether list pipelines are written as one loop each (set by the `fuse` pass; see
    /// [`Graph::list_chains`]). Changes how code is written, never what a run computes.
    pub(crate) fuse_lists: bool,
}

/// A `cached` node as the host's memo sees it ([`Graph::memo_sites`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct MemoSite {
    pub(crate) node: NodeId,
    /// Identifies the node's entries: its memo digest and the graph's footprint.
    pub(crate) prefix: [u8; 32],
    pub(crate) ttl_ms: Option<u64>,
}

/// Run limits written in the graph itself.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(crate) struct GraphLimits {
    pub(crate) fuel: Option<u64>,
    pub(crate) memory_bytes: Option<u64>,
}

/// A scope: parameters, nodes in canonical order, results.
#[derive(Clone, Debug, Default)]
pub(crate) struct Region {
    /// Parameter nodes (`Op::Param`): for a loop body, the iteration index then the states.
    pub(crate) params: Vec<NodeId>,
    /// The region's own nodes, canonical order.
    pub(crate) nodes: Vec<NodeId>,
    /// What the region evaluates to.
    pub(crate) results: Vec<NodeId>,
}

/// One node: what it computes, from which arguments, with which type.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    /// The id the user wrote; appears in errors, never in generated identifiers.
    pub(crate) name: String,
    pub(crate) op: Op,
    pub(crate) args: Vec<NodeId>,
    /// Ordering-only dependencies (`"after"`): evaluated before this node, values unused.
    /// How a graph says "this write happens before that read".
    pub(crate) after: Vec<NodeId>,
    /// Outer nodes that this node's sub-regions reference (empty for nodes without regions).
    pub(crate) captures: Vec<NodeId>,
    pub(crate) ty: Type,
}

impl Node {
    /// Everything that must be evaluated before this node: arguments, `after`, captures.
    pub(crate) fn dependencies(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.args
            .iter()
            .chain(&self.after)
            .chain(&self.captures)
            .copied()
    }
}

/// A constant value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Const {
    Bool(bool),
    I64(i64),
    F64(f64),
    Str(String),
    Tensor(Tensor),
    /// A list, record, option or bytes constant (format 2), of the node's type.
    Data(graphjit_value::Value),
}

/// What a node computes.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    /// A named input of the graph (root region only), with an optional default.
    Input {
        default: Option<Const>,
    },
    /// A region parameter (loop index or state); bound by the enclosing node.
    Param,
    Const(Const),
    /// Elementwise or scalar unary op on i64, f64, bool or tensors, by type.
    Unary(UnaryOp),
    /// Elementwise or scalar binary op, by type.
    Binary(BinaryOp),
    Compare(CompareOp),
    /// A string op (`contains`, `replace`, `substring`, `parse_i64`, …).
    Str(StrOp),
    /// `args[0]` ? `then` : `otherwise`; only the branch taken is evaluated.
    If {
        then: Region,
        otherwise: Region,
    },
    /// Runs `body` exactly `iterations` times; `args` are the initial states.
    Loop {
        iterations: u64,
        body: Region,
    },
    /// Independent branches evaluated into a tuple.
    Fork,
    /// Evaluates every argument in order; the value is the last one.
    Sequence,
    /// Element `index` of a tuple; without an index, element `args[1]` of the list
    /// `args[0]` (out of range: `index_out_of_range`).
    Get {
        index: Option<u32>,
    },
    /// A list of the arguments (at least one, all of one type; an empty list is a `const`).
    List,
    /// `range(start, end)`: the i64s from `start` up to, not including, `end`.
    Range,
    /// `slice(list, start, len)`: up to `len` elements from `start` (negative: invalid_value).
    Slice,
    /// The list in reverse order.
    Reverse,
    /// Whether any (all) element of a list of bools is true; false (true) when empty.
    Any,
    All,
    /// `body` (param: the element) once per element, in order: the list of its results.
    Map {
        body: Region,
    },
    /// The elements for which `body` (param: the element) gives true, in order.
    Filter {
        body: Region,
    },
    /// `fold(list, init)`: `acc = body(acc, element)` for each element in order; `acc`.
    Fold {
        body: Region,
    },
    /// The list in the order of the keys `body` (param: the element) gives, stable.
    SortBy {
        body: Region,
    },
    /// The elements grouped by the key `body` gives: a list of `{"items", "key"}` records in
    /// key order, each group's items in list order.
    GroupBy {
        body: Region,
    },
    /// A memoization point: `body` (params: the arguments) once, unless the host holds its
    /// result for `key` and the values the body reads (arguments and captures), stored by an
    /// earlier run less than `ttl_ms` ago (required when the body holds an effect; without
    /// it an entry lives until evicted). A hit skips the body, effects included.
    Cached {
        key: String,
        ttl_ms: Option<u64>,
        body: Region,
    },
    /// `zip(a, b)`: `{"first", "second"}` records, as long as the shorter list.
    Zip,
    /// `split(text, separator)`: the pieces between the separators.
    Split,
    /// `join(list<string>, separator)`.
    Join,
    /// A string's JSON read as the node's (declared) type; errors name the JSON path.
    JsonParse,
    /// A value's canonical JSON text.
    JsonEmit,
    /// A record of the arguments: `names[i]` is `args[i]`'s field, sorted, unique.
    Record {
        names: Vec<String>,
    },
    /// Field `name` of a record (`index`: its position in the record type).
    GetField {
        name: String,
        index: u32,
    },
    /// `with(record, value)`: the record with field `name` replaced by `value`.
    With {
        name: String,
        index: u32,
    },
    /// An option holding its argument.
    Some,
    /// The empty option of the declared type.
    None,
    IsSome,
    /// `unwrap_or(option, default)`.
    UnwrapOr,
    /// The option's value; none is `missing_value`.
    Unwrap,
    /// A tensor of the given shape whose element `i` is `i as f32`.
    Iota {
        shape: Vec<u32>,
    },
    /// A tensor of the given shape filled with one value.
    Fill {
        shape: Vec<u32>,
        value: f32,
    },
    Reshape {
        shape: Vec<u32>,
    },
    /// Swaps the two axes of a matrix.
    Transpose,
    MatMul,
    /// `clamp(x, lo, hi)`: `min(max(x, lo), hi)` with the `min`/`max` of `x`'s type, on i64,
    /// f64 or tensors (elementwise, `[]` bounds broadcast). NumPy's `clip` when `lo ≤ hi`.
    Clamp,
    /// `matmul` placed in the host by the `place` pass: the same product, bit for bit (the
    /// same per-element summation order), computed natively. Never written in JSON.
    NativeMatMul,
    /// A whole-tensor reduction (to `[]`), or `sum` of a list.
    Reduce(ReduceOp),
    /// A reduction along one axis (`axis` as written: negative counts from the end), which
    /// is dropped from the shape or, with `keepdims`, kept with extent 1.
    ReduceAxis {
        op: ReduceOp,
        axis: i64,
        keepdims: bool,
    },
    /// `softmax` (or, with `log`, `log_softmax`) along `axis` (as written; `-1` by default),
    /// one line at a time in the defined order (`graphjit_value::axes::softmax_axis`).
    Softmax {
        axis: i64,
        log: bool,
    },
    /// `layer_norm(x, scale[, bias])` over the axes `axis..` (as written; `-1` by default),
    /// ONNX's `LayerNormalization` (`graphjit_value::axes::layer_norm`).
    LayerNorm {
        axis: i64,
        epsilon: f32,
    },
    /// `i64 → f64` (round to nearest), or a one-element tensor's element.
    ToF64,
    /// `f64 → i64`, truncating; NaN or out of range is an error.
    ToI64,
    /// `f64 → tensor []` (rounded to f32).
    ToTensor,
    /// String concatenation.
    Concat,
    /// Byte length of a string.
    Len,
    /// Decimal text of an i64 or f64.
    ToString,
    /// Effect: SQL that returns rows (`args` are `$1`, `$2`, …), answered as `answer`.
    DbQuery {
        sql: String,
        answer: AnswerType,
    },
    /// Effect: SQL that returns a row count (`args` are the parameters); an i64.
    DbExecute {
        sql: String,
    },
    /// Effect: one statement per element of a list of records (`args`: the list), each
    /// binding the record's `fields` to `$1`, `$2`, …, all in one transaction; the summed
    /// row count, an i64.
    DbExecuteMany {
        sql: String,
        fields: Vec<String>,
    },
    /// Effect: an HTTP request (`args`: the body, if any, then one value per header name in
    /// `headers`, lower-cased), answered as `answer`.
    Http {
        method: String,
        url: String,
        headers: Vec<String>,
        answer: HttpAnswer,
    },
    /// Effect: a host kernel on tensors, by name.
    Kernel {
        name: String,
    },
    /// Effect: logs its argument at `level`; the value is the argument.
    Log {
        level: String,
    },
    /// Made by the fusion pass, never written in JSON: a chain of elementwise tensor ops as
    /// one loop. `args` are the chain's inputs (tensors of the result's shape, or `[]`,
    /// broadcast); for each element, `steps` compute registers in order and the last one is
    /// the element's value — exactly the ops the chain applied, in the same order.
    Fused {
        steps: Vec<FusedStep>,
        /// When set, the elements are not stored but reduced (in the defined 8-lane order) to
        /// a `[]` tensor: map→reduce fusion. `shape` is then the elements' shape.
        reduce: Option<(ReduceOp, Vec<u32>)>,
    },
    /// Several fused map→reduce programs over one element shape, computed in one loop
    /// (horizontal fusion): `steps` as in `Fused` (the members' programs one after another),
    /// and for each output the register it reduces and how. The value is a tuple of `[]`
    /// tensors, one per output, in order; each is what that member alone would give.
    FusedReductions {
        steps: Vec<FusedStep>,
        outputs: Vec<(u32, ReduceOp)>,
        shape: Vec<u32>,
    },
}

/// One step of a fused elementwise program; its value is register number = its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FusedStep {
    /// Argument `k`'s element.
    Arg(u32),
    /// The element's index as f32 (`iota` fused in: `i as f32`).
    Index,
    /// One value for every element, as f32 bits (`fill` fused in: no tensor is made).
    Const(u32),
    /// A unary op on an earlier register.
    Unary(UnaryOp, u32),
    /// A binary op on two earlier registers.
    Binary(BinaryOp, u32, u32),
}

impl Graph {
    /// The user-facing id of the node at `index`, if there is one (guests report indices).
    pub(crate) fn node_name(&self, index: u32) -> Option<String> {
        self.nodes.get(index as usize).map(|n| n.name.clone())
    }

    pub(crate) fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    /// The graph's identity: blake3 over its canonical encoding (see `canonical`).
    pub(crate) fn canonical_hash(&self) -> blake3::Hash {
        canonical::hash(self)
    }

    /// The `cached` nodes of every region, in id order, with what identifies each one's
    /// entries apart from the values it reads: the digest of its key and body, and this
    /// graph's footprint (a hit must never give a graph what its own footprint would refuse
    /// to fetch).
    pub(crate) fn memo_sites(&self) -> Vec<MemoSite> {
        if !self.nodes.iter().any(|n| matches!(n.op, Op::Cached { .. })) {
            return Vec::new();
        }
        let footprint = canonical::footprint_hash(&self.footprint);
        let demanded = self.demanded();
        (0..self.nodes.len())
            .filter_map(|i| {
                let id = NodeId(u32::try_from(i).ok()?);
                let digest = canonical::memo_digest(self, id, &demanded)?;
                let Op::Cached { ttl_ms, .. } = &self.node(id).op else {
                    return None;
                };
                let mut key = blake3::Hasher::new();
                key.update(digest.as_bytes());
                key.update(footprint.as_bytes());
                Some(MemoSite {
                    node: id,
                    prefix: *key.finalize().as_bytes(),
                    ttl_ms: *ttl_ms,
                })
            })
            .collect()
    }

    /// What `cached` node `id`'s body reads from outside it, in id order: the free nodes of
    /// its demanded nodes, computed afresh (not the recorded captures, which a pass may leave
    /// a superset of). With the node's arguments, the values its memo key is made of.
    pub(crate) fn outer_reads(&self, id: NodeId, demanded: &[bool]) -> Vec<NodeId> {
        let mut inner = std::collections::BTreeSet::new();
        let mut used = std::collections::BTreeSet::new();
        let mut stack: Vec<&Region> = self.node(id).op.regions();
        while let Some(region) = stack.pop() {
            inner.extend(region.params.iter().copied());
            inner.extend(region.nodes.iter().copied());
            used.extend(region.results.iter().copied());
            for &n in &region.nodes {
                if !demanded.get(n.index()).copied().unwrap_or(false) {
                    continue;
                }
                let node = self.node(n);
                used.extend(node.args.iter().chain(&node.after).copied());
                stack.extend(node.op.regions());
            }
        }
        used.into_iter()
            .filter(|n| !inner.contains(n) && *n != id)
            .collect()
    }

    /// Which nodes a run evaluates (reachable from the outputs), indexed by `NodeId`.
    /// Regions of a demanded `if`/`loop` count as demanded: one of them will run.
    pub(crate) fn demanded(&self) -> Vec<bool> {
        let mut demanded = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeId> = self.root.results.clone();
        // Effects run for their effect, used or not (when their region runs at all).
        stack.extend(
            (0..self.nodes.len())
                .filter(|&i| self.nodes[i].op.is_effect())
                .map(|i| NodeId(u32::try_from(i).unwrap_or(u32::MAX))),
        );
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut demanded[id.index()], true) {
                continue;
            }
            let node = self.node(id);
            stack.extend(node.dependencies());
            for region in node.op.regions() {
                stack.extend(region.results.iter().copied());
                stack.extend(region.params.iter().copied());
            }
        }
        demanded
    }

    /// The rounds of `region` when the graph batches effects: maximal runs of two or more
    /// effect nodes adjacent in canonical order, none depending on another, as ranges of
    /// positions in `region.nodes`. Canonical order puts the effects of one stage side by side
    /// (graph/lower/order.rs), so a run is a stage's effects. Empty when the graph does not batch.
    pub(crate) fn rounds(&self, region: &Region) -> Vec<std::ops::Range<usize>> {
        let mut rounds = Vec::new();
        if !self.batch_effects {
            return rounds;
        }
        let mut start = 0;
        while start < region.nodes.len() {
            let mut end = start;
            while end < region.nodes.len() {
                let node = self.node(region.nodes[end]);
                // A log line is never batched: it is cheap, and keeping it a single call keeps
                // `rounds` an import only graphs with a real footprint have.
                // Nor is a `db_execute_many`: it is a transaction of its own.
                let joins = node.op.is_effect()
                    && node.op.interface() != Some(Interface::Log)
                    && !matches!(node.op, Op::DbExecuteMany { .. })
                    && !node
                        .dependencies()
                        .any(|d| region.nodes[start..end].contains(&d));
                if !joins {
                    break;
                }
                end += 1;
            }
            if end - start >= 2 {
                rounds.push(start..end);
            }
            start = end.max(start + 1);
        }
        rounds
    }

    /// The effects of a `map` that its elements send as one round when the graph batches
    /// effects (Haxl's answer to the N+1 problem): the positions in the body of its effect
    /// nodes, which must be one run of independent `db_query`, `db_execute`, `http` or
    /// `kernel` nodes at the body's top level, with no effect inside a region nested in the
    /// body. Each element computes its requests, one host call carries every element's, and
    /// each element then takes its own answers in element order (codegen's `batched_map`).
    /// `None` for any other node, or when the graph does not batch.
    pub(crate) fn element_round(&self, node: &Node) -> Option<std::ops::Range<usize>> {
        let Op::Map { body } = &node.op else {
            return None;
        };
        if !self.batch_effects {
            return None;
        }
        let effects: Vec<usize> = (0..body.nodes.len())
            .filter(|&i| self.node(body.nodes[i]).op.is_effect())
            .collect();
        let (&first, &last) = (effects.first()?, effects.last()?);
        let members = &body.nodes[first..=last];
        let batchable = |id: &NodeId| {
            let op = &self.node(*id).op;
            op.is_effect()
                && op.interface() != Some(Interface::Log)
                && !matches!(op, Op::DbExecuteMany { .. })
        };
        let independent = !members
            .iter()
            .any(|&m| self.node(m).dependencies().any(|d| members.contains(&d)));
        let nested = body.nodes.iter().any(|&id| {
            self.node(id)
                .op
                .regions()
                .into_iter()
                .any(|r| self.holds_effect(r))
        });
        (effects.len() == members.len() && members.iter().all(batchable) && independent && !nested)
            .then_some(first..last + 1)
    }

    /// Whether `region`, or a region nested in it, holds an effect node.
    pub(crate) fn holds_effect(&self, region: &Region) -> bool {
        region.nodes.iter().any(|&id| {
            let op = &self.node(id).op;
            op.is_effect() || op.regions().into_iter().any(|r| self.holds_effect(r))
        })
    }

    /// Structural checks that every pass must preserve; `Err` names the first violation.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let mut defined = vec![false; self.nodes.len()];
        self.check_region(&self.root, &mut defined)?;
        if self.root.results.len() != self.outputs.len() {
            return Err("outputs and root results differ in length".into());
        }
        Ok(())
    }

    fn check_region(&self, region: &Region, defined: &mut Vec<bool>) -> Result<(), String> {
        for &p in &region.params {
            defined[p.index()] = true;
        }
        for &id in &region.nodes {
            let node = self
                .nodes
                .get(id.index())
                .ok_or_else(|| format!("{id:?} out of range"))?;
            for dep in node.dependencies() {
                if !defined.get(dep.index()).copied().unwrap_or(false) {
                    return Err(format!(
                        "node {:?} uses {dep:?} before it is defined",
                        node.name
                    ));
                }
            }
            for sub in node.op.regions() {
                self.check_region(sub, defined)?;
                // A sub-region's nodes are out of scope after it.
                for &inner in sub.params.iter().chain(&sub.nodes) {
                    defined[inner.index()] = false;
                }
            }
            defined[id.index()] = true;
        }
        for r in &region.results {
            if !defined[r.index()] {
                return Err(format!("region result {r:?} is not in scope"));
            }
        }
        Ok(())
    }
}

/// The sub-regions of an op, by reference or mutably (the one list behind [`Op::regions`]
/// and [`Op::regions_mut`]): every op is named, so a new op with a region does not compile
/// until it is listed.
macro_rules! sub_regions {
    ($op:expr) => {
        match $op {
            Op::If { then, otherwise } => vec![then, otherwise],
            Op::Loop { body, .. }
            | Op::Map { body }
            | Op::Filter { body }
            | Op::Fold { body }
            | Op::SortBy { body }
            | Op::GroupBy { body }
            | Op::Cached { body, .. } => vec![body],
            // Every op without a region, by name: a new op with one does not compile until
            // it is listed above.
            Op::Input { .. }
            | Op::Param
            | Op::Const(_)
            | Op::Unary(_)
            | Op::Str(_)
            | Op::Binary(_)
            | Op::Compare(_)
            | Op::Fork
            | Op::Sequence
            | Op::Get { .. }
            | Op::Iota { .. }
            | Op::Fill { .. }
            | Op::Reshape { .. }
            | Op::Transpose
            | Op::MatMul
            | Op::Clamp
            | Op::NativeMatMul
            | Op::Reduce(_)
            | Op::ReduceAxis { .. }
            | Op::Softmax { .. }
            | Op::LayerNorm { .. }
            | Op::ToF64
            | Op::ToI64
            | Op::ToTensor
            | Op::Concat
            | Op::Len
            | Op::ToString
            | Op::DbQuery { .. }
            | Op::DbExecute { .. }
            | Op::DbExecuteMany { .. }
            | Op::Http { .. }
            | Op::Kernel { .. }
            | Op::Log { .. }
            | Op::List
            | Op::Range
            | Op::Slice
            | Op::Reverse
            | Op::Any
            | Op::All
            | Op::Zip
            | Op::Split
            | Op::Join
            | Op::JsonParse
            | Op::JsonEmit
            | Op::Record { .. }
            | Op::GetField { .. }
            | Op::With { .. }
            | Op::Some
            | Op::None
            | Op::IsSome
            | Op::UnwrapOr
            | Op::Unwrap
            | Op::Fused { .. }
            | Op::FusedReductions { .. } => Vec::new(),
        }
    };
}

impl Op {
    /// Sub-regions, in order (`then`, `otherwise` / a `body`).
    pub(crate) fn regions(&self) -> Vec<&Region> {
        sub_regions!(self)
    }

    /// The sub-regions, mutably, in the order of [`Op::regions`].
    pub(crate) fn regions_mut(&mut self) -> Vec<&mut Region> {
        sub_regions!(self)
    }

    /// Which op this is (its row of the op table, [`ops`]).
    pub(crate) fn kind(&self) -> OpKind {
        match self {
            Op::Input { .. } => OpKind::Input,
            Op::Param => OpKind::Param,
            Op::Const(_) => OpKind::Const,
            Op::Unary(op) => OpKind::Unary(*op),
            Op::Str(op) => OpKind::Str(*op),
            Op::Binary(op) => OpKind::Binary(*op),
            Op::Compare(op) => OpKind::Compare(*op),
            Op::If { .. } => OpKind::If,
            Op::Loop { .. } => OpKind::Loop,
            Op::Fork => OpKind::Fork,
            Op::Sequence => OpKind::Sequence,
            Op::Get { .. } => OpKind::Get,
            Op::Iota { .. } => OpKind::Iota,
            Op::Fill { .. } => OpKind::Fill,
            Op::Reshape { .. } => OpKind::Reshape,
            Op::Transpose => OpKind::Transpose,
            Op::MatMul => OpKind::MatMul,
            Op::Clamp => OpKind::Clamp,
            Op::NativeMatMul => OpKind::NativeMatMul,
            Op::Reduce(op) | Op::ReduceAxis { op, .. } => OpKind::Reduce(*op),
            Op::Softmax { log: false, .. } => OpKind::Softmax,
            Op::Softmax { log: true, .. } => OpKind::LogSoftmax,
            Op::LayerNorm { .. } => OpKind::LayerNorm,
            Op::ToF64 => OpKind::ToF64,
            Op::ToI64 => OpKind::ToI64,
            Op::ToTensor => OpKind::ToTensor,
            Op::Concat => OpKind::Concat,
            Op::Len => OpKind::Len,
            Op::ToString => OpKind::ToString,
            Op::DbQuery { .. } => OpKind::DbQuery,
            Op::DbExecute { .. } => OpKind::DbExecute,
            Op::DbExecuteMany { .. } => OpKind::DbExecuteMany,
            Op::Http { .. } => OpKind::Http,
            Op::Kernel { .. } => OpKind::Kernel,
            Op::Log { .. } => OpKind::Log,
            Op::List => OpKind::List,
            Op::Range => OpKind::Range,
            Op::Slice => OpKind::Slice,
            Op::Reverse => OpKind::Reverse,
            Op::Any => OpKind::Any,
            Op::All => OpKind::All,
            Op::Map { .. } => OpKind::Map,
            Op::Filter { .. } => OpKind::Filter,
            Op::Fold { .. } => OpKind::Fold,
            Op::SortBy { .. } => OpKind::SortBy,
            Op::GroupBy { .. } => OpKind::GroupBy,
            Op::Cached { .. } => OpKind::Cached,
            Op::Zip => OpKind::Zip,
            Op::Split => OpKind::Split,
            Op::Join => OpKind::Join,
            Op::JsonParse => OpKind::JsonParse,
            Op::JsonEmit => OpKind::JsonEmit,
            Op::Record { .. } => OpKind::Record,
            Op::GetField { .. } => OpKind::GetField,
            Op::With { .. } => OpKind::With,
            Op::Some => OpKind::Some,
            Op::None => OpKind::None,
            Op::IsSome => OpKind::IsSome,
            Op::UnwrapOr => OpKind::UnwrapOr,
            Op::Unwrap => OpKind::Unwrap,
            Op::Fused { .. } => OpKind::Fused,
            Op::FusedReductions { .. } => OpKind::FusedReductions,
        }
    }

    /// The op's row of the op table.
    pub(crate) fn spec(&self) -> &'static OpSpec {
        self.kind().spec()
    }

    /// Whether the op leaves the sandbox (a host import). Effect nodes always run when the
    /// region holding them runs, whether or not their value is used.
    pub(crate) fn is_effect(&self) -> bool {
        self.interface().is_some()
    }

    /// The host interface an effect goes out through; `None` for every other op.
    pub(crate) fn interface(&self) -> Option<Interface> {
        self.spec().class.interface()
    }

    /// The op's name as written in JSON.
    pub(crate) fn name(&self) -> &'static str {
        self.spec().name
    }

    /// The elementwise program of a [`Fusion::Map`] op whose arguments' elements are in
    /// registers `args`: the steps it appends to a fused program whose next register is
    /// `next`; the last step's register is the op's element. `None` for every other op and
    /// for a wrong number of arguments. One definition, used by `fuse`, by `eval` and by
    /// `codegen` for an unfused tensor `clamp`, so all three compute the same bits.
    pub(crate) fn element_steps(&self, args: &[u32], next: u32) -> Option<Vec<FusedStep>> {
        match (self, args) {
            (Op::Unary(op), &[a]) if self.spec().fusion == Fusion::Map => {
                Some(vec![FusedStep::Unary(*op, a)])
            }
            (Op::Binary(op), &[a, b]) if self.spec().fusion == Fusion::Map => {
                Some(vec![FusedStep::Binary(*op, a, b)])
            }
            (Op::Clamp, &[x, lo, hi]) => Some(vec![
                FusedStep::Binary(BinaryOp::Max, x, lo),
                FusedStep::Binary(BinaryOp::Min, next, hi),
            ]),
            _ => None,
        }
    }

    /// The whole fused program of an elementwise op applied to its own arguments (registers
    /// `0..n` are the arguments): what an unfused node of it computes per element.
    pub(crate) fn element_program(&self, arity: usize) -> Option<Vec<FusedStep>> {
        let args: Vec<u32> = (0..arity as u32).collect();
        let mut steps: Vec<FusedStep> = args.iter().map(|&k| FusedStep::Arg(k)).collect();
        steps.extend(self.element_steps(&args, arity as u32)?);
        Some(steps)
    }
}
