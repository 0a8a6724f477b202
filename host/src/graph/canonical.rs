//! The graph's identity: blake3 over a canonical byte encoding.
//!
//! Invariants: the encoding is a function of the canonical graph alone — no JSON order, no
//! whitespace, no hash-map iteration, no pointer values. Floats are encoded by their bits
//! (NaN is already canonical from `lower`). Every field that changes meaning is encoded; the
//! graph's display `name` and its run `limits` are not (they change neither code nor results).

use super::{
    AnswerType, BodyType, Const, FusedStep, Graph, HttpAnswer, Node, NodeId, Op, Region, Type,
};
use crate::footprint::Footprint;

/// Bumped whenever the encoding or the semantics of an existing op changes. 2: a reduction
/// says whether it has an axis (one JSON name, two ops).
const ENCODING_VERSION: u32 = 2;

pub(super) fn hash(graph: &Graph) -> blake3::Hash {
    let mut e = Encoder::new();
    e.bytes(b"graphjit-graph");
    e.u32(ENCODING_VERSION);
    e.len(graph.nodes.len());
    e.region(graph, &graph.root);
    e.len(graph.outputs.len());
    for name in &graph.outputs {
        e.str(name);
    }
    e.footprint(&graph.footprint);
    e.hasher.finalize()
}

/// The identity of what `cached` node `id` computes, apart from the values it reads: its key,
/// lifetime, type and body, with the body's nodes numbered from 0 in region order and each
/// capture by its position in the node's captures (so the same body means the same digest in
/// any graph), and node names left out (they change no value). The host's memo key is this,
/// the footprint and the encoded reads (`crate::memo`). `None` for a node that is not `cached`.
pub(super) fn memo_digest(graph: &Graph, id: NodeId, demanded: &[bool]) -> Option<blake3::Hash> {
    let node = graph.nodes.get(id.index())?;
    let Op::Cached { key, ttl_ms, body } = &node.op else {
        return None;
    };
    let mut local = std::collections::BTreeMap::new();
    let mut pending = vec![body];
    while let Some(region) = pending.pop() {
        for &inner in region.params.iter().chain(&region.nodes) {
            let next = local.len() as u32;
            local.insert(inner, next);
            pending.extend(graph.node(inner).op.regions());
        }
    }
    let outer = graph.outer_reads(id, demanded);
    for (position, &capture) in outer.iter().enumerate() {
        local.insert(capture, CAPTURE | position as u32);
    }
    let mut e = Encoder::new();
    e.local = Some(local);
    e.bytes(b"graphjit-cached");
    e.u32(ENCODING_VERSION);
    e.str(key);
    e.u64(ttl_ms.map_or(0, |ms| ms));
    e.ty(&node.ty);
    e.len(node.args.len());
    e.len(outer.len());
    e.region(graph, body);
    Some(e.hasher.finalize())
}

/// blake3 over the footprint's normalized encoding (a memo key's footprint part).
pub(super) fn footprint_hash(footprint: &Footprint) -> blake3::Hash {
    let mut e = Encoder::new();
    e.bytes(b"graphjit-footprint");
    e.footprint(footprint);
    e.hasher.finalize()
}

/// Marks a capture's number in [`memo_digest`]'s local numbering.
const CAPTURE: u32 = 1 << 31;

struct Encoder {
    hasher: blake3::Hasher,
    /// Local numbers for node ids and no node names ([`memo_digest`]); `None`: the graph's.
    local: Option<std::collections::BTreeMap<NodeId, u32>>,
}

impl Encoder {
    fn new() -> Encoder {
        Encoder {
            hasher: blake3::Hasher::new(),
            local: None,
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.hasher.update(b);
    }
    fn u32(&mut self, v: u32) {
        self.hasher.update(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.hasher.update(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.bytes(s.as_bytes());
    }
    fn id(&mut self, id: NodeId) {
        // A node outside a digest's body and captures cannot be read by it; u32::MAX - 1 keeps
        // such an (impossible) id from aliasing a local one.
        let number = match &self.local {
            Some(local) => local.get(&id).copied().unwrap_or(u32::MAX - 1),
            None => id.0,
        };
        self.u32(number);
    }
    fn ids(&mut self, ids: &[NodeId]) {
        self.len(ids.len());
        ids.iter().for_each(|&id| self.id(id));
    }
    fn shape(&mut self, shape: &[u32]) {
        self.len(shape.len());
        shape.iter().for_each(|&d| self.u32(d));
    }

    fn region(&mut self, graph: &Graph, region: &Region) {
        self.len(region.params.len());
        for &p in &region.params {
            self.node(graph, p, graph.node(p));
        }
        self.len(region.nodes.len());
        for &id in &region.nodes {
            self.node(graph, id, graph.node(id));
        }
        self.ids(&region.results);
    }

    fn node(&mut self, graph: &Graph, id: NodeId, node: &Node) {
        self.id(id);
        if self.local.is_none() {
            self.str(&node.name);
        }
        self.str(node.op.name());
        self.ids(&node.args);
        self.ids(&node.after);
        self.ty(&node.ty);
        match &node.op {
            Op::Input { default } => match default {
                Some(c) => {
                    self.u32(1);
                    self.constant(c);
                }
                None => self.u32(0),
            },
            Op::Const(c) => self.constant(c),
            Op::If { then, otherwise } => {
                self.region(graph, then);
                self.region(graph, otherwise);
            }
            Op::Loop { iterations, body } => {
                self.u64(*iterations);
                self.region(graph, body);
            }
            // A tuple index as it always was; a list `get` (no index) as u32::MAX, which no
            // tuple index can be (tuples hold far fewer items).
            Op::Get { index } => self.u32(index.unwrap_or(u32::MAX)),
            Op::Map { body }
            | Op::Filter { body }
            | Op::Fold { body }
            | Op::SortBy { body }
            | Op::GroupBy { body } => {
                self.region(graph, body);
            }
            Op::Cached { key, ttl_ms, body } => {
                self.str(key);
                self.u64(ttl_ms.map_or(0, |ms| ms));
                self.region(graph, body);
            }
            Op::Record { names } => {
                self.len(names.len());
                names.iter().for_each(|n| self.str(n));
            }
            Op::GetField { name, index } | Op::With { name, index } => {
                self.str(name);
                self.u32(*index);
            }
            Op::Iota { shape } | Op::Reshape { shape } => self.shape(shape),
            Op::Fill { shape, value } => {
                self.shape(shape);
                self.u32(value.to_bits());
            }
            Op::DbQuery { sql, answer } => {
                self.str(sql);
                self.answer(answer);
            }
            Op::DbExecute { sql } => self.str(sql),
            Op::DbExecuteMany { sql, fields } => {
                self.str(sql);
                self.len(fields.len());
                fields.iter().for_each(|f| self.str(f));
            }
            Op::Http {
                method,
                url,
                headers,
                answer,
            } => {
                self.str(method);
                self.str(url);
                self.len(headers.len());
                headers.iter().for_each(|h| self.str(h));
                self.http_answer(answer);
            }
            Op::Kernel { name } => self.str(name),
            Op::Fused { steps, reduce } => {
                match reduce {
                    Some((op, shape)) => {
                        self.u32(1);
                        self.str(op.name());
                        self.shape(shape);
                    }
                    None => self.u32(0),
                }
                self.steps(steps);
            }
            Op::FusedReductions {
                steps,
                outputs,
                shape,
            } => {
                self.shape(shape);
                self.len(outputs.len());
                for (register, op) in outputs {
                    self.u32(*register);
                    self.str(op.name());
                }
                self.steps(steps);
            }
            Op::Log { level } => self.str(level),
            Op::Reduce(_) => self.u32(0),
            Op::ReduceAxis { axis, keepdims, .. } => {
                self.u32(1);
                self.u64(*axis as u64);
                self.u32(u32::from(*keepdims));
            }
            Op::Softmax { axis, .. } => self.u64(*axis as u64),
            Op::LayerNorm { axis, epsilon } => {
                self.u64(*axis as u64);
                self.u32(epsilon.to_bits());
            }
            Op::Param
            | Op::Unary(_)
            | Op::Str(_)
            | Op::Binary(_)
            | Op::Compare(_)
            | Op::Fork
            | Op::Sequence
            | Op::Transpose
            | Op::MatMul
            | Op::Clamp
            | Op::NativeMatMul
            | Op::ToF64
            | Op::ToI64
            | Op::ToTensor
            | Op::Concat
            | Op::Len
            | Op::ToString
            | Op::List
            | Op::Range
            | Op::Slice
            | Op::Reverse
            | Op::Zip
            | Op::Split
            | Op::Join
            | Op::JsonParse
            | Op::JsonEmit
            | Op::Any
            | Op::All
            | Op::Some
            | Op::None
            | Op::IsSome
            | Op::UnwrapOr
            | Op::Unwrap => {}
        }
    }

    fn steps(&mut self, steps: &[FusedStep]) {
        self.len(steps.len());
        for step in steps {
            match step {
                FusedStep::Arg(k) => {
                    self.u32(0);
                    self.u32(*k);
                }
                FusedStep::Index => self.u32(3),
                FusedStep::Const(bits) => {
                    self.u32(4);
                    self.u32(*bits);
                }
                FusedStep::Unary(op, r) => {
                    self.u32(1);
                    self.str(op.name());
                    self.u32(*r);
                }
                FusedStep::Binary(op, a, b) => {
                    self.u32(2);
                    self.str(op.name());
                    self.u32(*a);
                    self.u32(*b);
                }
            }
        }
    }

    fn answer(&mut self, answer: &AnswerType) {
        match answer {
            AnswerType::Bool => self.u32(0),
            AnswerType::I64 => self.u32(1),
            AnswerType::F64 => self.u32(2),
            AnswerType::Str => self.u32(3),
            AnswerType::Tensor(shape) => {
                self.u32(4);
                self.shape(shape);
            }
            // The node's type (hashed with every node) says the same; hashed here too so the
            // answer's encoding stands alone.
            AnswerType::Rows(columns) => {
                self.u32(5);
                self.len(columns.len());
                for column in columns {
                    self.str(&column.name);
                    self.str(&format!("{:?}", column.ty));
                    self.u32(u32::from(column.nullable));
                }
            }
        }
    }

    fn http_answer(&mut self, answer: &HttpAnswer) {
        match &answer.body {
            BodyType::Bool => self.u32(0),
            BodyType::I64 => self.u32(1),
            BodyType::F64 => self.u32(2),
            BodyType::Str => self.u32(3),
            BodyType::Bytes => self.u32(6),
            // The schema is the node's declared type, which is hashed with every node.
            BodyType::Json(_) => self.u32(7),
        }
        self.u32(u32::from(answer.full) | (u32::from(answer.headers) << 1));
    }

    /// The footprint in normalized form: sets in sorted order, rules sorted by their text.
    fn footprint(&mut self, footprint: &Footprint) {
        self.len(footprint.db.read.len());
        footprint
            .db
            .read
            .iter()
            .for_each(|t| self.str(&t.to_string()));
        self.len(footprint.db.write.len());
        footprint
            .db
            .write
            .iter()
            .for_each(|t| self.str(&t.to_string()));
        let mut rules: Vec<String> = footprint.http.iter().map(|r| format!("{r:?}")).collect();
        rules.sort();
        self.len(rules.len());
        rules.iter().for_each(|r| self.str(r));
        self.len(footprint.kernels.len());
        footprint.kernels.iter().for_each(|k| self.str(k));
    }

    fn ty(&mut self, ty: &Type) {
        match ty {
            Type::Bool => self.u32(0),
            Type::I64 => self.u32(1),
            Type::F64 => self.u32(2),
            Type::Str => self.u32(3),
            Type::Tensor(shape) => {
                self.u32(4);
                self.shape(shape);
            }
            Type::Tuple(items) => {
                self.u32(5);
                self.len(items.len());
                items.iter().for_each(|t| self.ty(t));
            }
            Type::List(item) => {
                self.u32(6);
                self.ty(item);
            }
            Type::Record(fields) => {
                self.u32(7);
                self.len(fields.len());
                for (name, t) in fields {
                    self.str(name);
                    self.ty(t);
                }
            }
            Type::Option(item) => {
                self.u32(8);
                self.ty(item);
            }
            Type::Bytes => self.u32(9),
        }
    }

    fn constant(&mut self, c: &Const) {
        match c {
            Const::Bool(b) => {
                self.u32(0);
                self.u32(u32::from(*b));
            }
            Const::I64(i) => {
                self.u32(1);
                self.u64(*i as u64);
            }
            Const::F64(x) => {
                self.u32(2);
                self.u64(x.to_bits());
            }
            Const::Str(s) => {
                self.u32(3);
                self.str(s);
            }
            Const::Tensor(t) => {
                self.u32(4);
                self.shape(&t.shape);
                self.len(t.data.len());
                t.data.iter().for_each(|x| self.u32(x.to_bits()));
            }
            // The value's own encoding: canonical (NaNs, sorted record fields) and exact.
            Const::Data(value) => {
                self.u32(5);
                let mut bytes = Vec::new();
                graphjit_value::encode(std::slice::from_ref(value), &mut bytes);
                self.len(bytes.len());
                self.bytes(&bytes);
            }
        }
    }
}
