//! Ops the `place` pass moved to the host (`native` interface): the call, and its answer
//! checked against the shape the node's type promises.
//!
//! Invariants:
//! - The host returns exactly what the in-guest op would (same bits); here only the shape is
//!   checked, and a wrong one is a typed error at the node, never a panic.

use crate::bindings::graphjit::guest::native as host;
use crate::{InvalidValue, RunError, Tensor};

/// `matmul`, computed by the host.
pub fn matmul(a: &Tensor, b: &Tensor, node: u32) -> Result<Tensor, RunError> {
    let (m, k, n) = match (a.shape.as_slice(), b.shape.as_slice()) {
        (&[m, k], &[_, n]) => (m, k, n),
        _ => return Err(bad_answer(node)),
    };
    let c = host::matmul(m, k, n, &a.data, &b.data);
    if Some(c.len()) != (m as usize).checked_mul(n as usize) {
        return Err(bad_answer(node));
    }
    Ok(Tensor {
        shape: alloc::vec![m, n],
        data: c,
    })
}

fn bad_answer(node: u32) -> RunError {
    RunError::InvalidValue(InvalidValue {
        node,
        message: "the host's native matmul answered with the wrong shape".into(),
    })
}
