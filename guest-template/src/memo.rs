//! `cached` nodes: the host's memo, asked before a body runs and told its result after.
//!
//! The reads (the body's arguments, then the outer nodes it reads) and the result cross as
//! graphjit-value's encoding, the bytes `eval` makes from the same values, so both engines
//! find each other's entries. The host charges each call to the run's fuel.

use alloc::format;
use alloc::vec::Vec;

use crate::bindings::graphjit::guest::memo as wit_memo;
use crate::{RunError, Value, out_of_memory};

/// The encoded reads of a lookup that missed: the key the body's result is stored under.
pub struct Reads(Vec<u8>);

fn encoded(values: &[Value], node: u32) -> Result<Vec<u8>, RunError> {
    let len = graphjit_value::encoded_len(values);
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(len)
        .map_err(|_| out_of_memory(node, len))?;
    graphjit_value::encode(values, &mut bytes);
    Ok(bytes)
}

/// The value the memo holds for `cached` node `node` and `reads`, or (`Err`) the reads to
/// store the body's result under. An entry that is not one value is a host bug
/// ([`RunError::BadInput`]).
pub fn lookup(node: u32, reads: Vec<Value>) -> Result<Result<Value, Reads>, RunError> {
    let key = encoded(&reads, node)?;
    drop(reads);
    let Some(found) = wit_memo::lookup(node, &key) else {
        return Ok(Err(Reads(key)));
    };
    let mut values = graphjit_value::decode(&found)
        .map_err(|e| RunError::BadInput(format!("memo entry of node {node}: {e}")))?;
    match (values.pop(), values.is_empty()) {
        (Some(value), true) => Ok(Ok(value)),
        _ => Err(RunError::BadInput(format!(
            "memo entry of node {node} is not one value"
        ))),
    }
}

/// Stores `value`, the body's result, for `node` under `reads`.
pub fn store(node: u32, reads: Reads, value: &Value) -> Result<(), RunError> {
    let bytes = encoded(core::slice::from_ref(value), node)?;
    wit_memo::store(node, &reads.0, &bytes);
    Ok(())
}
