//! Placement (seed 3.2): each `matmul` runs in the guest or natively in the host (WIT
//! `native`), whichever the cost model says is faster, the copy across the boundary included.
//!
//! The model, in nanoseconds, for `[m, k] × [k, n]` (MACs = m·k·n multiply-adds):
//! - in the guest: `MACs / GUEST_MACS_PER_NS`;
//! - in the host: `CALL_NS + bytes / COPY_BYTES_PER_NS + MACs / NATIVE_MACS_PER_NS`, where the
//!   bytes are both operands and the product, each crossing once.
//!
//! The constants were measured on the 2-core development machine (benches/RESULTS.md,
//! "Placement", with the command that reproduces them). Either choice gives the same bits
//! (`crate::native`), so a wrong estimate costs time, never a different answer.
//!
//! Invariants: deterministic (a pure function of the shapes); only `matmul` moves; the
//! placed node keeps its id, arguments and type.

use serde::Serialize;

use crate::graph::{Graph, Op, Type};

/// Guest `matmul` throughput (multiply-adds per ns), i-k-j loop compiled to wasm simd128:
/// measured 2.3 at 64³ and 128³, 2.0 at 512³.
pub(crate) const GUEST_MACS_PER_NS: f64 = 2.2;
/// Host `native::matmul` throughput (multiply-adds per ns) on one thread, as products under
/// 4M multiply-adds run: measured 19.6. Larger ones split across both cores and measured ~40;
/// the model does not count that (they go to the host anyway).
pub(crate) const NATIVE_MACS_PER_NS: f64 = 20.0;
/// One guest → host → guest call with nothing to copy: measured 3–5 µs.
pub(crate) const CALL_NS: f64 = 4_000.0;
/// Bytes per ns across the boundary (both operands lowered into the host, the product lifted
/// back into the guest): measured 0.9.
pub(crate) const COPY_BYTES_PER_NS: f64 = 0.9;

/// One `matmul`'s placement, as `explain` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Placement {
    /// The node's id.
    pub node: String,
    /// `[m, k, n]`.
    pub dims: [u32; 3],
    /// Estimated time in the guest, µs.
    pub guest_us: f64,
    /// Estimated time in the host, copies included, µs.
    pub host_us: f64,
    /// `"guest"` or `"host"`.
    pub choice: &'static str,
}

/// The model's estimates `(guest_ns, host_ns)` for `[m, k] × [k, n]`.
pub(crate) fn estimate(m: u32, k: u32, n: u32) -> (f64, f64) {
    let (m, k, n) = (f64::from(m), f64::from(k), f64::from(n));
    let macs = m * k * n;
    let bytes = 4.0 * (m * k + k * n + m * n);
    let guest = macs / GUEST_MACS_PER_NS;
    let host = CALL_NS + bytes / COPY_BYTES_PER_NS + macs / NATIVE_MACS_PER_NS;
    (guest, host)
}

fn dims(graph: &Graph, args: &[crate::graph::NodeId]) -> Option<[u32; 3]> {
    let shape = |i: usize| match &graph.node(*args.get(i)?).ty {
        Type::Tensor(s) => Some(s.clone()),
        _ => None,
    };
    match (shape(0)?.as_slice(), shape(1)?.as_slice()) {
        (&[m, k], &[_, n]) => Some([m, k, n]),
        _ => None,
    }
}

/// Every `matmul` of `graph` (placed or not) with the model's estimates and choice.
pub(crate) fn decisions(graph: &Graph) -> Vec<Placement> {
    graph
        .nodes
        .iter()
        .filter(|node| matches!(node.op, Op::MatMul | Op::NativeMatMul))
        .filter_map(|node| {
            let [m, k, n] = dims(graph, &node.args)?;
            let (guest, host) = estimate(m, k, n);
            Some(Placement {
                node: node.name.clone(),
                dims: [m, k, n],
                guest_us: guest / 1000.0,
                host_us: host / 1000.0,
                choice: if host < guest { "host" } else { "guest" },
            })
        })
        .collect()
}

/// Moves each `matmul` the model says is faster in the host there.
pub(super) fn place(graph: &Graph) -> (Graph, usize) {
    let mut out = graph.clone();
    let mut changed = 0;
    for i in 0..out.nodes.len() {
        if !matches!(out.nodes[i].op, Op::MatMul) {
            continue;
        }
        let Some([m, k, n]) = dims(&out, &out.nodes[i].args) else {
            continue;
        };
        let (guest, host) = estimate(m, k, n);
        if host < guest {
            out.nodes[i].op = Op::NativeMatMul;
            changed += 1;
        }
    }
    (out, changed)
}
