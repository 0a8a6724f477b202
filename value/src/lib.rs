//! graphjit's runtime values and the byte encoding that carries them across the sandbox boundary.
//!
//! One definition serves both sides: the host (eval, the CLI, the runtime) and every generated
//! guest, which links this crate through the guest template. The encoding is the only thing the
//! host and a guest exchange for inputs and outputs, so both sides read it with the same code.
//!
//! Invariants:
//! - `no_std` + `alloc`: this crate knows nothing of the host, wasmtime or graphs.
//! - Decoding never panics and never allocates more than the input's own length justifies: every
//!   length prefix is checked against the bytes that remain before anything is reserved.
//! - NaN is canonical on the wire: [`encode`] writes every NaN as [`CANONICAL_NAN_F64`] /
//!   [`CANONICAL_NAN_F32`], so results compare bit-exactly whichever engine produced them.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

pub mod axes;
pub mod effects;
pub mod http;
pub mod json;
pub mod lists;
pub mod math;
pub mod text;

/// The one NaN an f64 output may carry (quiet, positive, zero payload).
pub const CANONICAL_NAN_F64: u64 = 0x7ff8_0000_0000_0000;
/// The one NaN an f32 tensor element may carry (quiet, positive, zero payload).
pub const CANONICAL_NAN_F32: u32 = 0x7fc0_0000;

/// Replaces any NaN by the canonical one; other values pass unchanged.
#[must_use]
pub fn canonical_f64(x: f64) -> f64 {
    if x.is_nan() {
        f64::from_bits(CANONICAL_NAN_F64)
    } else {
        x
    }
}

/// Replaces any NaN by the canonical one; other values pass unchanged.
#[must_use]
pub fn canonical_f32(x: f32) -> f32 {
    if x.is_nan() {
        f32::from_bits(CANONICAL_NAN_F32)
    } else {
        x
    }
}

/// A dense, row-major f32 tensor with a static shape.
#[derive(Clone, PartialEq, Debug)]
pub struct Tensor {
    /// Extent of each dimension; `[]` is a scalar holding one element.
    pub shape: Vec<u32>,
    /// `shape.iter().product()` elements, row-major.
    pub data: Vec<f32>,
}

impl Tensor {
    /// Number of elements a shape holds, or `None` if it overflows `usize`.
    #[must_use]
    pub fn element_count(shape: &[u32]) -> Option<usize> {
        shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
    }
}

/// A value flowing through a graph: an input, a constant, an intermediate or an output.
#[derive(Clone, Debug)]
pub enum Value {
    /// `bool`
    Bool(bool),
    /// `i64`
    I64(i64),
    /// `f64`
    F64(f64),
    /// UTF-8 `string`
    Str(String),
    /// `{"tensor": [..]}`: f32 with a static shape
    Tensor(Tensor),
    /// A fixed-size group of values (from `fork` or a loop with several states)
    Tuple(Vec<Value>),
    /// `{"list": T}`: any number of values of one type
    List(Vec<Value>),
    /// `{"record": {..}}`: named fields, sorted by name, names unique
    Record(Vec<(String, Value)>),
    /// `{"option": T}`: a value or none (a NULL)
    Option(Option<alloc::boxed::Box<Value>>),
    /// `bytes`: any octets
    Bytes(Vec<u8>),
}

/// Bit-exact equality: floats compare by their bits, so `NaN == NaN` (once canonical) and
/// `0.0 != -0.0`. This is the equality the differential tests use.
impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::I64(a), Value::I64(b)) => a == b,
            (Value::F64(a), Value::F64(b)) => a.to_bits() == b.to_bits(),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Tensor(a), Value::Tensor(b)) => {
                a.shape == b.shape
                    && a.data.len() == b.data.len()
                    && a.data
                        .iter()
                        .zip(&b.data)
                        .all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (Value::Tuple(a), Value::Tuple(b)) | (Value::List(a), Value::List(b)) => a == b,
            (Value::Record(a), Value::Record(b)) => a == b,
            (Value::Option(a), Value::Option(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            _ => false,
        }
    }
}

impl Value {
    /// A copy with every NaN (at any depth) replaced by the canonical NaN.
    #[must_use]
    pub fn canonicalized(mut self) -> Value {
        self.canonicalize();
        self
    }

    /// Replaces every NaN (at any depth) by the canonical NaN, in place.
    pub fn canonicalize(&mut self) {
        match self {
            Value::F64(x) => *x = canonical_f64(*x),
            Value::Tensor(t) => t.data.iter_mut().for_each(|x| *x = canonical_f32(*x)),
            Value::Tuple(items) | Value::List(items) => {
                items.iter_mut().for_each(Value::canonicalize);
            }
            Value::Record(fields) => fields.iter_mut().for_each(|(_, v)| v.canonicalize()),
            Value::Option(Some(v)) => v.canonicalize(),
            Value::Option(None)
            | Value::Bool(_)
            | Value::I64(_)
            | Value::Str(_)
            | Value::Bytes(_) => {}
        }
    }

    /// Bytes of guest memory this value needs (used for memory accounting, not exact).
    #[must_use]
    pub fn footprint_bytes(&self) -> usize {
        match self {
            Value::Bool(_) | Value::I64(_) | Value::F64(_) => 8,
            Value::Str(s) => s.len(),
            Value::Tensor(t) => t
                .data
                .len()
                .saturating_mul(4)
                .saturating_add(t.shape.len() * 4),
            Value::Tuple(items) => items.iter().map(Value::footprint_bytes).sum(),
            // A list's element slots (as the guest's `Vec` holds them) plus what they own.
            Value::List(items) => items
                .iter()
                .map(|v| v.footprint_bytes().saturating_add(8))
                .fold(24, usize::saturating_add),
            Value::Record(fields) => fields.iter().map(|(_, v)| v.footprint_bytes()).sum(),
            Value::Option(v) => v.as_ref().map_or(8, |v| v.footprint_bytes()),
            Value::Bytes(b) => b.len(),
        }
    }

    /// The value's kind, as the graph format names it (`"list"`, `"record"`, …).
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::I64(_) => "i64",
            Value::F64(_) => "f64",
            Value::Str(_) => "string",
            Value::Tensor(_) => "tensor",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Record(_) => "record",
            Value::Option(_) => "option",
            Value::Bytes(_) => "bytes",
        }
    }
}

const TAG_BOOL: u8 = 0;
const TAG_I64: u8 = 1;
const TAG_F64: u8 = 2;
const TAG_STR: u8 = 3;
const TAG_TENSOR: u8 = 4;
const TAG_TUPLE: u8 = 5;
const TAG_LIST: u8 = 6;
const TAG_RECORD: u8 = 7;
const TAG_NONE: u8 = 8;
const TAG_SOME: u8 = 9;
const TAG_BYTES: u8 = 10;

/// Deepest nesting (tuples, lists, records, options) [`decode`] accepts.
///
/// Guards the decoder's recursion (and so the stack) against a hostile encoding; a graph's
/// types nest no deeper than this (`graph` refuses deeper types).
pub const MAX_DEPTH: u32 = 64;

/// Why a byte string is not a valid encoding of values.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DecodeError {
    /// The bytes end before the value does.
    Truncated,
    /// An unknown type tag.
    BadTag(u8),
    /// A string that is not UTF-8.
    BadUtf8,
    /// A tensor whose element count overflows or disagrees with its data.
    BadShape,
    /// Values nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A record whose field names are not strictly increasing (unsorted or repeated).
    BadRecord,
    /// Bytes left over after the last value.
    TrailingBytes,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("encoded values end early"),
            DecodeError::BadTag(t) => write!(f, "unknown value tag {t}"),
            DecodeError::BadUtf8 => f.write_str("string is not UTF-8"),
            DecodeError::BadShape => f.write_str("tensor shape disagrees with its data"),
            DecodeError::TooDeep => f.write_str("values nested too deeply"),
            DecodeError::BadRecord => f.write_str("record fields are not sorted and unique"),
            DecodeError::TrailingBytes => f.write_str("bytes left after the last value"),
        }
    }
}

/// Appends the encoding of `values` (a count, then each value) to `out`, NaNs canonicalized.
pub fn encode(values: &[Value], out: &mut Vec<u8>) {
    put_len(out, values.len());
    for v in values {
        encode_one(v, out);
    }
}

/// Bytes [`encode`] will write for `values`; lets callers reserve (and account) up front.
#[must_use]
pub fn encoded_len(values: &[Value]) -> usize {
    4 + values.iter().map(encoded_len_one).sum::<usize>()
}

fn encoded_len_one(v: &Value) -> usize {
    1 + match v {
        Value::Bool(_) => 1,
        Value::I64(_) | Value::F64(_) => 8,
        Value::Str(s) => 4 + s.len(),
        Value::Tensor(t) => 4 + 4 * t.shape.len() + 4 * t.data.len(),
        Value::Tuple(items) | Value::List(items) => encoded_len(items),
        Value::Record(fields) => {
            4 + fields
                .iter()
                .map(|(name, v)| 4 + name.len() + encoded_len_one(v))
                .sum::<usize>()
        }
        Value::Option(None) => 0,
        Value::Option(Some(v)) => encoded_len_one(v),
        Value::Bytes(b) => 4 + b.len(),
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    // Lengths beyond u32 cannot occur: wasm32 memory is 4 GiB and tensors are capped far below.
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn encode_one(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Bool(b) => {
            out.push(TAG_BOOL);
            out.push(u8::from(*b));
        }
        Value::I64(i) => {
            out.push(TAG_I64);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::F64(x) => {
            out.push(TAG_F64);
            out.extend_from_slice(&canonical_f64(*x).to_bits().to_le_bytes());
        }
        Value::Str(s) => {
            out.push(TAG_STR);
            put_len(out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Tensor(t) => {
            out.push(TAG_TENSOR);
            put_len(out, t.shape.len());
            for d in &t.shape {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.reserve(t.data.len() * 4);
            for x in &t.data {
                out.extend_from_slice(&canonical_f32(*x).to_bits().to_le_bytes());
            }
        }
        Value::Tuple(items) => {
            out.push(TAG_TUPLE);
            encode(items, out);
        }
        Value::List(items) => {
            out.push(TAG_LIST);
            encode(items, out);
        }
        Value::Record(fields) => {
            out.push(TAG_RECORD);
            put_len(out, fields.len());
            for (name, v) in fields {
                put_len(out, name.len());
                out.extend_from_slice(name.as_bytes());
                encode_one(v, out);
            }
        }
        Value::Option(None) => out.push(TAG_NONE),
        Value::Option(Some(v)) => {
            out.push(TAG_SOME);
            encode_one(v, out);
        }
        Value::Bytes(b) => {
            out.push(TAG_BYTES);
            put_len(out, b.len());
            out.extend_from_slice(b);
        }
    }
}

/// Decodes what [`encode`] wrote; the whole input must be consumed.
pub fn decode(bytes: &[u8]) -> Result<Vec<Value>, DecodeError> {
    let mut reader = Reader { bytes, pos: 0 };
    let values = reader.values(0)?;
    if reader.pos != bytes.len() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(values)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn values(&mut self, depth: u32) -> Result<Vec<Value>, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let n = self.len()?;
        // Every value takes at least one byte (`none`): never reserve more than the input holds.
        if n > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            values.push(self.value(depth)?);
        }
        Ok(values)
    }

    fn value(&mut self, depth: u32) -> Result<Value, DecodeError> {
        let [tag] = self.array()?;
        Ok(match tag {
            TAG_BOOL => match self.array::<1>()? {
                [0] => Value::Bool(false),
                [1] => Value::Bool(true),
                [b] => return Err(DecodeError::BadTag(b)),
            },
            TAG_I64 => Value::I64(i64::from_le_bytes(self.array()?)),
            TAG_F64 => Value::F64(f64::from_bits(u64::from_le_bytes(self.array()?))),
            TAG_STR => Value::Str(self.string()?),
            TAG_TENSOR => {
                let rank = self.len()?;
                if rank > self.remaining() / 4 {
                    return Err(DecodeError::Truncated);
                }
                let mut shape = Vec::with_capacity(rank);
                for _ in 0..rank {
                    shape.push(u32::from_le_bytes(self.array()?));
                }
                let count = Tensor::element_count(&shape).ok_or(DecodeError::BadShape)?;
                let bytes_needed = count.checked_mul(4).ok_or(DecodeError::BadShape)?;
                let raw = self.take(bytes_needed)?;
                let data = raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                Value::Tensor(Tensor { shape, data })
            }
            TAG_TUPLE => Value::Tuple(self.values(depth + 1)?),
            TAG_LIST => Value::List(self.values(depth + 1)?),
            TAG_RECORD => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
                let n = self.len()?;
                // A field takes at least six bytes (name length, a tag, a byte).
                if n > self.remaining() / 6 {
                    return Err(DecodeError::Truncated);
                }
                let mut fields: Vec<(String, Value)> = Vec::with_capacity(n);
                for _ in 0..n {
                    let name = self.string()?;
                    if fields.last().is_some_and(|(last, _)| *last >= name) {
                        return Err(DecodeError::BadRecord);
                    }
                    let value = self.value(depth + 1)?;
                    fields.push((name, value));
                }
                Value::Record(fields)
            }
            TAG_NONE => Value::Option(None),
            TAG_SOME => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
                Value::Option(Some(alloc::boxed::Box::new(self.value(depth + 1)?)))
            }
            TAG_BYTES => {
                let n = self.len()?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            other => return Err(DecodeError::BadTag(other)),
        })
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.len()?;
        let raw = self.take(n)?;
        Ok(String::from(
            core::str::from_utf8(raw).map_err(|_| DecodeError::BadUtf8)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn round_trip(values: &[Value]) -> Vec<Value> {
        let mut out = Vec::new();
        encode(values, &mut out);
        assert_eq!(out.len(), encoded_len(values));
        decode(&out).expect("decodes what encode wrote")
    }

    #[test]
    fn every_kind_round_trips() {
        let values = vec![
            Value::Bool(true),
            Value::I64(i64::MIN),
            Value::F64(-0.0),
            Value::Str(String::from("\"); } */ \n ünï")),
            Value::Tensor(Tensor {
                shape: vec![2, 2],
                data: vec![1.0, -2.5, 0.0, 3.25],
            }),
            Value::Tuple(vec![Value::I64(1), Value::Tuple(vec![])]),
            Value::List(vec![]),
            Value::List(vec![
                Value::Str(String::from("a")),
                Value::Str(String::new()),
            ]),
            Value::Record(vec![
                (String::from("id"), Value::I64(7)),
                (
                    String::from("note"),
                    Value::Option(Some(alloc::boxed::Box::new(Value::Str(String::from("x"))))),
                ),
                (String::from("z"), Value::Option(None)),
            ]),
            Value::Bytes(vec![0, 255, 1]),
        ];
        assert_eq!(round_trip(&values), values);
    }

    #[test]
    fn records_must_be_sorted_and_unique() {
        for names in [["b", "a"], ["a", "a"]] {
            let mut out = Vec::new();
            out.extend_from_slice(&1u32.to_le_bytes());
            out.push(TAG_RECORD);
            out.extend_from_slice(&2u32.to_le_bytes());
            for name in names {
                out.extend_from_slice(&1u32.to_le_bytes());
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(&[TAG_BOOL, 1]);
            }
            assert_eq!(decode(&out), Err(DecodeError::BadRecord), "{names:?}");
        }
    }

    #[test]
    fn deep_options_and_lists_are_refused() {
        let mut deep = vec![1, 0, 0, 0];
        deep.extend(core::iter::repeat_n(TAG_SOME, 10_000));
        deep.push(TAG_NONE);
        assert_eq!(decode(&deep), Err(DecodeError::TooDeep));
        let mut lists = Vec::new();
        for _ in 0..200 {
            lists.extend_from_slice(&[1, 0, 0, 0, TAG_LIST]);
        }
        lists.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(decode(&lists), Err(DecodeError::TooDeep));
        // A list claiming 2^32-1 items in a few bytes must not allocate.
        let mut huge = vec![1, 0, 0, 0, TAG_LIST];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge), Err(DecodeError::Truncated));
    }

    #[test]
    fn nan_is_canonical_on_the_wire() {
        let odd_nan = f64::from_bits(0xfff0_0000_0000_0001);
        let back = round_trip(&[Value::F64(odd_nan)]);
        let Value::F64(x) = back[0] else {
            panic!("not f64")
        };
        assert_eq!(x.to_bits(), CANONICAL_NAN_F64);
    }

    #[test]
    fn hostile_bytes_are_errors() {
        assert_eq!(decode(&[]), Err(DecodeError::Truncated));
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(decode(&[1, 0, 0, 0, 99, 0]), Err(DecodeError::BadTag(99)));
        // A tensor claiming 2^32-1 x 2^32-1 elements must not allocate.
        let mut huge = vec![1, 0, 0, 0, TAG_TENSOR, 2, 0, 0, 0];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
        // Deep tuple nesting is refused, not a stack overflow.
        let mut deep = Vec::new();
        for _ in 0..200 {
            deep.extend_from_slice(&[1, 0, 0, 0, TAG_TUPLE]);
        }
        deep.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(decode(&deep), Err(DecodeError::TooDeep));
        let mut trailing = Vec::new();
        encode(&[Value::Bool(false)], &mut trailing);
        trailing.push(0);
        assert_eq!(decode(&trailing), Err(DecodeError::TrailingBytes));
    }
}
