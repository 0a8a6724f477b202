//! Structured data in generated code: lists are `Vec<T>`, records are tuples of their fields
//! in name order, options are `Option<T>`, bytes are `Vec<u8>`. This module reads them from
//! the graph's inputs (`read_*`), writes them as outputs (`write_*`), and holds the list and
//! option ops generated code calls.
//!
//! Invariants:
//! - The rules that are more than a loop (positions, slices, sums, min/max) are
//!   `graphjit_value::lists`, which `eval` uses too.
//! - No panics; every list this module makes reserves fallibly, so running out of memory is a
//!   typed `OutOfMemory` at the node.
//! - A value that does not have the expected type or field names is `BadInput` (a host bug:
//!   the host checks inputs against the graph's types before a run).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use graphjit_value::lists::{self, SortKey};
use graphjit_value::{json, text};

use crate::{InvalidValue, NO_NODE, RunError, Tensor, Value, out_of_memory};

// ---- reading inputs ---------------------------------------------------------------------

fn wrong(expected: &str, got: &Value) -> RunError {
    RunError::BadInput(format!("expected {expected}, got {}", got.kind_name()))
}

/// A `bool`.
pub fn read_bool(v: Value) -> Result<bool, RunError> {
    match v {
        Value::Bool(b) => Ok(b),
        other => Err(wrong("bool", &other)),
    }
}

/// An `i64`.
pub fn read_i64(v: Value) -> Result<i64, RunError> {
    match v {
        Value::I64(x) => Ok(x),
        other => Err(wrong("i64", &other)),
    }
}

/// An `f64`.
pub fn read_f64(v: Value) -> Result<f64, RunError> {
    match v {
        Value::F64(x) => Ok(x),
        other => Err(wrong("f64", &other)),
    }
}

/// A string.
pub fn read_string(v: Value) -> Result<String, RunError> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(wrong("string", &other)),
    }
}

/// Bytes.
pub fn read_bytes(v: Value) -> Result<Vec<u8>, RunError> {
    match v {
        Value::Bytes(b) => Ok(b),
        other => Err(wrong("bytes", &other)),
    }
}

/// A tensor of exactly `shape`.
pub fn read_tensor(v: Value, shape: &[u32]) -> Result<Tensor, RunError> {
    match v {
        Value::Tensor(t) if t.shape == shape => Ok(t),
        other => Err(wrong("a tensor of its declared shape", &other)),
    }
}

/// A list, each element read by `item`.
pub fn read_list<T>(
    v: Value,
    mut item: impl FnMut(Value) -> Result<T, RunError>,
) -> Result<Vec<T>, RunError> {
    let Value::List(items) = v else {
        return Err(wrong("list", &v));
    };
    let mut out = with_capacity(items.len(), NO_NODE)?;
    for x in items {
        out.push(item(x)?);
    }
    Ok(out)
}

/// An option, its value read by `item`.
pub fn read_option<T>(
    v: Value,
    item: impl FnOnce(Value) -> Result<T, RunError>,
) -> Result<Option<T>, RunError> {
    match v {
        Value::Option(None) => Ok(None),
        Value::Option(Some(x)) => item(*x).map(Some),
        other => Err(wrong("option", &other)),
    }
}

/// A record with exactly the fields `names` (sorted), their values in that order.
pub fn read_record<const N: usize>(v: Value, names: [&str; N]) -> Result<[Value; N], RunError> {
    let Value::Record(fields) = v else {
        return Err(wrong("record", &v));
    };
    let same = fields.len() == N && fields.iter().zip(names).all(|((n, _), m)| n == m);
    if !same {
        return Err(RunError::BadInput(format!(
            "expected a record with fields {names:?}"
        )));
    }
    let values: Vec<Value> = fields.into_iter().map(|(_, v)| v).collect();
    values
        .try_into()
        .map_err(|_| RunError::BadInput(String::from("record fields")))
}

// ---- writing outputs --------------------------------------------------------------------

/// A list as a value, each element written by `item`.
pub fn write_list<T>(
    items: Vec<T>,
    mut item: impl FnMut(T) -> Result<Value, RunError>,
) -> Result<Value, RunError> {
    let mut out = with_capacity(items.len(), NO_NODE)?;
    for x in items {
        out.push(item(x)?);
    }
    Ok(Value::List(out))
}

/// A record as a value: `names` (sorted) with their values.
pub fn write_record<const N: usize>(names: [&str; N], values: [Value; N]) -> Value {
    Value::Record(
        names
            .into_iter()
            .zip(values)
            .map(|(n, v)| (String::from(n), v))
            .collect(),
    )
}

// ---- list ops ---------------------------------------------------------------------------

/// An empty list with room for `n` elements, or `OutOfMemory` at `node`.
pub fn with_capacity<T>(n: usize, node: u32) -> Result<Vec<T>, RunError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| out_of_memory(node, n.saturating_mul(core::mem::size_of::<T>())))?;
    Ok(v)
}

/// A list of the given elements.
pub fn list_of<T, const N: usize>(items: [T; N], node: u32) -> Result<Vec<T>, RunError> {
    let mut out = with_capacity(N, node)?;
    out.extend(items);
    Ok(out)
}

/// Whether any element is true.
pub fn any(list: &[bool]) -> bool {
    list.iter().any(|&b| b)
}

/// Whether every element is true.
pub fn all(list: &[bool]) -> bool {
    list.iter().all(|&b| b)
}

/// Appends `x`, growing fallibly.
pub fn push<T>(list: &mut Vec<T>, x: T, node: u32) -> Result<(), RunError> {
    list.try_reserve(1).map_err(|_| {
        out_of_memory(
            node,
            list.len()
                .saturating_add(1)
                .saturating_mul(core::mem::size_of::<T>()),
        )
    })?;
    list.push(x);
    Ok(())
}

/// The number of elements.
pub fn len<T>(list: &[T]) -> i64 {
    i64::try_from(list.len()).unwrap_or(i64::MAX)
}

/// `start, start + 1, …, end - 1`.
pub fn range(start: i64, end: i64, node: u32) -> Result<Vec<i64>, RunError> {
    let n = usize::try_from(lists::range_len(start, end))
        .map_err(|_| out_of_memory(node, usize::MAX))?;
    let mut out = with_capacity(n, node)?;
    out.extend(start..end.max(start));
    Ok(out)
}

/// Element `index`, or `IndexOutOfRange` at `node`.
pub fn get<T: Clone>(list: &[T], index: i64, node: u32) -> Result<T, RunError> {
    lists::position(index, list.len())
        .and_then(|i| list.get(i))
        .cloned()
        .ok_or_else(|| index_out_of_range(node, index, list.len()))
}

/// The `IndexOutOfRange` error.
#[must_use]
pub fn index_out_of_range(node: u32, index: i64, len: usize) -> RunError {
    RunError::IndexOutOfRange(crate::IndexOutOfRange {
        node,
        index,
        len: len as u64,
    })
}

/// Up to `take` elements from `start` (`graphjit_value::lists::slice_range`).
pub fn slice<T: Clone>(list: &[T], start: i64, take: i64, node: u32) -> Result<Vec<T>, RunError> {
    let range = lists::slice_range(list.len(), start, take)
        .map_err(|message| RunError::InvalidValue(InvalidValue { node, message }))?;
    let part = list.get(range).unwrap_or(&[]);
    let mut out = with_capacity(part.len(), node)?;
    out.extend_from_slice(part);
    Ok(out)
}

/// `a` then `b`.
pub fn concat<T: Clone>(a: &[T], b: &[T], node: u32) -> Result<Vec<T>, RunError> {
    let mut out = with_capacity(a.len().saturating_add(b.len()), node)?;
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    Ok(out)
}

/// The elements in reverse order.
pub fn reverse<T: Clone>(list: &[T], node: u32) -> Result<Vec<T>, RunError> {
    let mut out = with_capacity(list.len(), node)?;
    out.extend(list.iter().rev().cloned());
    Ok(out)
}

/// The sum, or `Overflow` at `node`.
pub fn sum_i64(list: &[i64], node: u32) -> Result<i64, RunError> {
    match lists::sum_i64(list.iter().copied()) {
        Some(v) => Ok(v),
        None => Err(RunError::Overflow(node)),
    }
}

/// The sum, left to right.
pub fn sum_f64(list: &[f64]) -> f64 {
    lists::sum_f64(list.iter().copied())
}

/// The smallest element; none when empty.
pub fn min_i64(list: &[i64]) -> Option<i64> {
    lists::min_i64(list.iter().copied())
}

/// The largest element; none when empty.
pub fn max_i64(list: &[i64]) -> Option<i64> {
    lists::max_i64(list.iter().copied())
}

/// The smallest element (`fmin`); none when empty.
pub fn min_f64(list: &[f64]) -> Option<f64> {
    lists::min_f64(list.iter().copied())
}

/// The largest element (`fmax`); none when empty.
pub fn max_f64(list: &[f64]) -> Option<f64> {
    lists::max_f64(list.iter().copied())
}

/// `(a[i], b[i])` pairs (the `{first, second}` records), as many as the shorter list has.
pub fn zip<A: Clone, B: Clone>(a: &[A], b: &[B], node: u32) -> Result<Vec<(A, B)>, RunError> {
    let mut out = with_capacity(a.len().min(b.len()), node)?;
    out.extend(a.iter().cloned().zip(b.iter().cloned()));
    Ok(out)
}

/// The elements of `(key, position, element)` triples in key order, stable
/// (`graphjit_value::lists::sort_keyed`).
pub fn sorted<K: SortKey, T>(mut keyed: Vec<(K, usize, T)>, node: u32) -> Result<Vec<T>, RunError> {
    lists::sort_keyed(&mut keyed);
    let mut out = with_capacity(keyed.len(), node)?;
    out.extend(keyed.into_iter().map(|(_, _, x)| x));
    Ok(out)
}

/// `(items, key)` groups (the `{items, key}` records) of `(key, position, element)` triples,
/// in key order, each group's items in list order.
pub fn grouped<K: SortKey, T>(
    mut keyed: Vec<(K, usize, T)>,
    node: u32,
) -> Result<Vec<(Vec<T>, K)>, RunError> {
    lists::sort_keyed(&mut keyed);
    let mut groups: Vec<(Vec<T>, K)> = Vec::new();
    for (key, _, item) in keyed {
        match groups.last_mut() {
            Some((items, last)) if last.order(&key).is_eq() => push(items, item, node)?,
            _ => {
                let mut items = with_capacity(1, node)?;
                items.push(item);
                push(&mut groups, (items, key), node)?;
            }
        }
    }
    Ok(groups)
}

/// The pieces of `s` between the occurrences of `sep` (`graphjit_value::text::split`); an
/// empty separator is `InvalidValue` at `node`.
pub fn split(s: &str, sep: &str, node: u32) -> Result<Vec<String>, RunError> {
    let pieces = text::split(s, sep)
        .map_err(|message| RunError::InvalidValue(InvalidValue { node, message }))?;
    let mut out = with_capacity(s.matches(sep).count().saturating_add(1), node)?;
    for piece in pieces {
        let mut owned = String::new();
        owned
            .try_reserve_exact(piece.len())
            .map_err(|_| out_of_memory(node, piece.len()))?;
        owned.push_str(piece);
        out.push(owned);
    }
    Ok(out)
}

/// The strings with `sep` between each two.
pub fn join(items: &[String], sep: &str, node: u32) -> Result<String, RunError> {
    let bytes = text::joined_len(items, sep).unwrap_or(usize::MAX);
    let mut out = String::new();
    out.try_reserve_exact(bytes)
        .map_err(|_| out_of_memory(node, bytes))?;
    text::join_into(&mut out, items, sep);
    Ok(out)
}

/// `text` read as JSON of `schema` (`graphjit_value::json`); malformed or mistyped JSON is
/// `InvalidValue` at `node`, naming the JSON path.
pub fn json_parse(text: &str, schema: &json::Schema, node: u32) -> Result<Value, RunError> {
    json::parse(text, schema).map_err(|message| RunError::InvalidValue(InvalidValue { node, message }))
}

/// `value`'s canonical JSON text; NaN or an infinity is `InvalidValue` at `node`.
pub fn json_emit(value: &Value, node: u32) -> Result<String, RunError> {
    let invalid = |message| RunError::InvalidValue(InvalidValue { node, message });
    let bytes = json::emitted_len(value).map_err(invalid)?;
    let mut out = String::new();
    out.try_reserve_exact(bytes)
        .map_err(|_| out_of_memory(node, bytes))?;
    json::emit_into(value, &mut out).map_err(invalid)?;
    Ok(out)
}

/// The option's value, or `MissingValue` at `node`.
pub fn unwrap<T>(x: Option<T>, node: u32) -> Result<T, RunError> {
    match x {
        Some(v) => Ok(v),
        None => Err(RunError::MissingValue(node)),
    }
}
