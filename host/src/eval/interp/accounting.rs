//! The accounting rules of the interpreter (see the module docs of `interp`): the fuel a
//! node costs before it runs, the bytes a value holds, when a value is let go.

use graphjit_value::Value;

use super::internal;
use crate::eval::EvalError;
use crate::graph::{Graph, Node, NodeId, Op, Region, Type, Work};

/// Fuel a node costs before it runs: `1 + W / 64` (see the module docs).
pub(super) fn node_cost(graph: &Graph, node: &Node) -> Result<u64, EvalError> {
    let arg_type = |i: usize| -> Result<&Type, EvalError> {
        let id = node
            .args
            .get(i)
            .ok_or_else(|| internal(format!("`{}` lacks argument {i}", node.op.name())))?;
        graph
            .nodes
            .get(id.index())
            .map(|n| &n.ty)
            .ok_or_else(|| internal(format!("{id:?} is not a node")))
    };
    let work = match node.op.spec().work {
        Work::MatMul => match (arg_type(0)?, arg_type(1)?) {
            (Type::Tensor(a), Type::Tensor(b)) => match (a.as_slice(), b.as_slice()) {
                (&[m, k], &[_, n]) => u64::from(m)
                    .saturating_mul(u64::from(k))
                    .saturating_mul(u64::from(n)),
                _ => return Err(internal("`matmul` of tensors that are not matrices")),
            },
            _ => return Err(internal("`matmul` of non-tensors")),
        },
        Work::Argument => tensor_elements(arg_type(0)?),
        // A host kernel's work is the host's: the effect budget charges it with the call, in
        // the units a compiled run charges it in (`EffectBudget::admission_fuel`).
        Work::Kernel | Work::Result => tensor_elements(&node.ty),
    };
    Ok(1u64.saturating_add(work / 64))
}

/// f32 elements in a value of type `ty` (all tensors of a tuple).
pub(super) fn tensor_elements(ty: &Type) -> u64 {
    match ty {
        Type::Tensor(shape) => shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
            .unwrap_or(u64::MAX),
        Type::Tuple(items) => items
            .iter()
            .fold(0u64, |acc, t| acc.saturating_add(tensor_elements(t))),
        Type::Bool
        | Type::I64
        | Type::F64
        | Type::Str
        | Type::List(_)
        | Type::Record(_)
        | Type::Option(_)
        | Type::Bytes => 0,
    }
}

/// The elements of a list value (0 for anything else).
pub(super) fn list_len(value: &Value) -> u64 {
    match value {
        Value::List(items) => items.len() as u64,
        _ => 0,
    }
}

/// Bytes of the new tensor `node` allocates, if it allocates one (the memory rule).
pub(super) fn allocation_bytes(node: &Node) -> Option<u64> {
    let passes_values_on = matches!(
        node.op,
        Op::Input { .. }
            | Op::Param
            | Op::If { .. }
            | Op::Loop { .. }
            | Op::Cached { .. }
            | Op::Fork
            | Op::Get { .. }
            | Op::Sequence
    );
    match &node.ty {
        ty @ Type::Tensor(_) if !passes_values_on => Some(tensor_elements(ty).saturating_mul(4)),
        _ => None,
    }
}

/// For each node, the values of its own region whose last reader (in region order) it is,
/// a read from inside a nested region counting as a read by the node that holds the region.
/// A region's results are never let go.
pub(super) fn last_readers(graph: &Graph) -> Vec<Vec<NodeId>> {
    let mut release = vec![Vec::new(); graph.nodes.len()];
    let mut pending = vec![&graph.root];
    while let Some(region) = pending.pop() {
        let own: std::collections::BTreeSet<NodeId> = region.nodes.iter().copied().collect();
        let mut last: std::collections::BTreeMap<NodeId, NodeId> =
            std::collections::BTreeMap::new();
        for &reader in &region.nodes {
            let node = graph.node(reader);
            pending.extend(node.op.regions());
            for read in reads(graph, node) {
                if own.contains(&read) {
                    last.insert(read, reader);
                }
            }
        }
        for (value, reader) in last {
            if !region.results.contains(&value) {
                release[reader.index()].push(value);
            }
        }
    }
    release
}

/// Every node `node` reads: its arguments, and whatever its nested regions read (their nodes'
/// arguments and their results), transitively.
pub(super) fn reads(graph: &Graph, node: &Node) -> Vec<NodeId> {
    let mut out = node.args.clone();
    let mut pending: Vec<&Region> = node.op.regions();
    while let Some(region) = pending.pop() {
        out.extend(region.results.iter().copied());
        for &inner in &region.nodes {
            let inner = graph.node(inner);
            out.extend(inner.args.iter().copied());
            pending.extend(inner.op.regions());
        }
    }
    out
}

/// Bytes `value` holds: tensor data (4 per element), string and bytes payloads, 8 per list
/// element (the slot a guest's `Vec` holds it in), over the parts of tuples, lists, records
/// and options.
pub(super) fn value_bytes(value: &Value) -> u64 {
    match value {
        Value::Tensor(t) => (t.data.len() as u64).saturating_mul(4),
        Value::Str(s) => s.len() as u64,
        Value::Bytes(b) => b.len() as u64,
        Value::Tuple(items) => items
            .iter()
            .fold(0u64, |acc, v| acc.saturating_add(value_bytes(v))),
        Value::List(items) => items.iter().fold(0u64, |acc, v| {
            acc.saturating_add(value_bytes(v)).saturating_add(8)
        }),
        Value::Record(fields) => fields
            .iter()
            .fold(0u64, |acc, (_, v)| acc.saturating_add(value_bytes(v))),
        Value::Option(v) => v.as_ref().map_or(0, |v| value_bytes(v)),
        Value::Bool(_) | Value::I64(_) | Value::F64(_) => 0,
    }
}

/// String (and bytes) payloads held in `value`, at any depth.
pub(super) fn string_bytes(value: &Value) -> u64 {
    match value {
        Value::Str(s) => s.len() as u64,
        Value::Bytes(b) => b.len() as u64,
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .fold(0u64, |acc, v| acc.saturating_add(string_bytes(v))),
        Value::Record(fields) => fields
            .iter()
            .fold(0u64, |acc, (_, v)| acc.saturating_add(string_bytes(v))),
        Value::Option(v) => v.as_ref().map_or(0, |v| string_bytes(v)),
        Value::Bool(_) | Value::I64(_) | Value::F64(_) | Value::Tensor(_) => 0,
    }
}

/// A value's kind for messages (never its contents, which may be large).
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Bool(_) => "a bool".into(),
        Value::I64(_) => "an i64".into(),
        Value::F64(_) => "an f64".into(),
        Value::Str(_) => "a string".into(),
        Value::Tensor(t) => format!(
            "a tensor of shape {:?} with {} elements",
            t.shape,
            t.data.len()
        ),
        Value::Tuple(items) => format!("a tuple of {}", items.len()),
        Value::List(items) => format!("a list of {}", items.len()),
        Value::Record(fields) => format!("a record of {} fields", fields.len()),
        Value::Option(None) => "none".into(),
        Value::Option(Some(_)) => "an option holding a value".into(),
        Value::Bytes(b) => format!("{} bytes", b.len()),
    }
}
