//! Ops the `place` pass moved to the host (`native` interface): the call, and its answer
//! checked against the shape the node's type promises.
//!
//! Invariants:
//! - The host returns exactly what the in-guest op would (same bits); here only the shape is
//!   checked, and a wrong one is a typed error at the node, never a panic.

use crate::bindings::graphjit::guest::effect_types as wit;
use crate::bindings::graphjit::guest::native as host;
use crate::{InvalidValue, RunError, Tensor};

fn wit_tensor(t: &Tensor) -> wit::Tensor {
    wit::Tensor {
        shape: t.shape.clone(),
        data: t.data.clone(),
    }
}

/// `matmul`, computed by the host.
pub fn matmul(a: &Tensor, b: &Tensor, node: u32) -> Result<Tensor, RunError> {
    let (m, n) = match (a.shape.as_slice(), b.shape.as_slice()) {
        (&[m, _], &[_, n]) => (m, n),
        _ => return Err(bad_answer(node)),
    };
    let c = host::matmul(&wit_tensor(a), &wit_tensor(b));
    let elements = (m as usize).checked_mul(n as usize);
    if c.shape.as_slice() != [m, n] || Some(c.data.len()) != elements {
        return Err(bad_answer(node));
    }
    Ok(Tensor {
        shape: c.shape,
        data: c.data,
    })
}

fn bad_answer(node: u32) -> RunError {
    RunError::InvalidValue(InvalidValue {
        node,
        message: "the host's native matmul answered with the wrong shape".into(),
    })
}
