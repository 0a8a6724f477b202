//! The value rules of the structured-data ops without regions: lists, records, options and
//! bytes. `map`, `filter`, `fold`, `sort_by` and `group_by` run regions and live in
//! `interp/regions.rs`.
//!
//! The rules that are more than a loop (positions, slices, sums, min/max) are
//! `graphjit_value::lists`, shared with the guest template; so are the error conditions.

use std::cmp::Ordering;

use graphjit_value::lists::SortKey;
use graphjit_value::{Value, json, lists, text};

use super::EvalError;
use super::interp::internal;
use crate::graph::{BinaryOp, NodeId, Op, ReduceOp, Type};

/// Whether `op` on `args` is a structured-data rule (this module's).
pub(super) fn is_data_op(op: &Op, args: &[&Value]) -> bool {
    matches!(
        op,
        Op::Get { index: None }
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
            | Op::Record { .. }
            | Op::GetField { .. }
            | Op::With { .. }
            | Op::Some
            | Op::IsSome
            | Op::UnwrapOr
            | Op::Unwrap
    ) || args
        .iter()
        .any(|a| matches!(a, Value::List(_) | Value::Bytes(_)))
}

/// Bytes of the list `range` would make (8 per element), checked before it is made.
pub(super) fn range_bytes(args: &[&Value]) -> Option<u64> {
    match args {
        [Value::I64(start), Value::I64(end)] => {
            Some(lists::range_len(*start, *end).saturating_mul(8))
        }
        _ => None,
    }
}

/// The value of a structured-data op (see [`is_data_op`]).
pub(super) fn apply(
    op: &Op,
    args: &[&Value],
    ty: &Type,
    node: NodeId,
    memory_bytes: u64,
) -> Result<Value, EvalError> {
    let wrong = || internal(format!("`{}` on arguments typing refuses", op.name()));
    Ok(match (op, args) {
        (Op::Get { index: None }, [Value::List(items), Value::I64(i)]) => {
            lists::position(*i, items.len())
                .and_then(|p| items.get(p))
                .cloned()
                .ok_or(EvalError::IndexOutOfRange {
                    node,
                    index: *i,
                    len: items.len() as u64,
                })?
        }
        (Op::List, items) => Value::List(items.iter().map(|v| (*v).clone()).collect()),
        (Op::Range, [Value::I64(start), Value::I64(end)]) => {
            let bytes = range_bytes(args).unwrap_or(u64::MAX);
            if bytes > memory_bytes {
                return Err(EvalError::OutOfMemory { node, bytes });
            }
            Value::List((*start..*end.max(start)).map(Value::I64).collect())
        }
        (Op::Slice, [Value::List(items), Value::I64(start), Value::I64(take)]) => {
            let range = lists::slice_range(items.len(), *start, *take)
                .map_err(|message| EvalError::InvalidValue { node, message })?;
            Value::List(items.get(range).unwrap_or(&[]).to_vec())
        }
        (Op::Reverse, [Value::List(items)]) => Value::List(items.iter().rev().cloned().collect()),
        (Op::Zip, [Value::List(a), Value::List(b)]) => Value::List(
            a.iter()
                .zip(b)
                .map(|(x, y)| {
                    Value::Record(vec![
                        ("first".to_string(), x.clone()),
                        ("second".to_string(), y.clone()),
                    ])
                })
                .collect(),
        ),
        (Op::Split, [Value::Str(s), Value::Str(sep)]) => {
            let pieces =
                text::split(s, sep).map_err(|message| EvalError::InvalidValue { node, message })?;
            // Checked before the pieces are made: 8 bytes of list slot each, plus the text.
            let count = s.matches(sep.as_str()).count().saturating_add(1) as u64;
            let bytes = count.saturating_mul(8).saturating_add(s.len() as u64);
            if bytes > memory_bytes {
                return Err(EvalError::OutOfMemory { node, bytes });
            }
            Value::List(pieces.map(|p| Value::Str(p.to_string())).collect())
        }
        (Op::JsonParse, [Value::Str(s)]) => {
            let schema = ty.schema().ok_or_else(wrong)?;
            json::parse(s, &schema).map_err(|message| EvalError::InvalidValue { node, message })?
        }
        (Op::JsonEmit, [value]) => {
            let bytes = json::emitted_len(value)
                .map_err(|message| EvalError::InvalidValue { node, message })?
                as u64;
            if bytes > memory_bytes {
                return Err(EvalError::OutOfMemory { node, bytes });
            }
            Value::Str(
                json::emit(value).map_err(|message| EvalError::InvalidValue { node, message })?,
            )
        }
        (Op::Join, [Value::List(items), Value::Str(sep)]) => {
            let texts = items
                .iter()
                .map(|v| match v {
                    Value::Str(s) => Ok(s.as_str()),
                    _ => Err(wrong()),
                })
                .collect::<Result<Vec<&str>, _>>()?;
            let bytes = text::joined_len(&texts, sep).map_or(u64::MAX, |n| n as u64);
            if bytes > memory_bytes {
                return Err(EvalError::OutOfMemory { node, bytes });
            }
            let mut out = String::new();
            text::join_into(&mut out, &texts, sep);
            Value::Str(out)
        }
        (Op::Any | Op::All, [Value::List(items)]) => {
            let bools = items
                .iter()
                .map(|v| match v {
                    Value::Bool(b) => Ok(*b),
                    _ => Err(wrong()),
                })
                .collect::<Result<Vec<bool>, _>>()?;
            Value::Bool(match op {
                Op::Any => bools.iter().any(|&b| b),
                _ => bools.iter().all(|&b| b),
            })
        }
        (Op::Concat, [Value::List(a), Value::List(b)]) => {
            Value::List(a.iter().chain(b).cloned().collect())
        }
        (Op::Concat, [Value::Bytes(a), Value::Bytes(b)]) => {
            Value::Bytes(a.iter().chain(b).copied().collect())
        }
        (Op::Len, [Value::List(items)]) => Value::I64(len(items.len())),
        (Op::Len, [Value::Bytes(b)]) => Value::I64(len(b.len())),
        (Op::Reduce(ReduceOp::Sum), [Value::List(items)]) => match numbers(items, ty)? {
            Numbers::I64(xs) => Value::I64(lists::sum_i64(xs).ok_or(EvalError::Overflow { node })?),
            Numbers::F64(xs) => Value::F64(lists::sum_f64(xs)),
        },
        (Op::Binary(b @ (BinaryOp::Min | BinaryOp::Max)), [Value::List(items)]) => {
            let min = *b == BinaryOp::Min;
            let Type::Option(item) = ty else {
                return Err(wrong());
            };
            let found = match numbers(items, item)? {
                Numbers::I64(xs) if min => lists::min_i64(xs).map(Value::I64),
                Numbers::I64(xs) => lists::max_i64(xs).map(Value::I64),
                Numbers::F64(xs) if min => lists::min_f64(xs).map(Value::F64),
                Numbers::F64(xs) => lists::max_f64(xs).map(Value::F64),
            };
            Value::Option(found.map(Box::new))
        }
        (Op::Record { names }, values) if names.len() == values.len() => Value::Record(
            names
                .iter()
                .cloned()
                .zip(values.iter().map(|v| (*v).clone()))
                .collect(),
        ),
        (Op::GetField { index, .. }, [Value::Record(fields)]) => fields
            .get(*index as usize)
            .map(|(_, v)| v.clone())
            .ok_or_else(wrong)?,
        (Op::With { index, .. }, [Value::Record(fields), value]) => {
            let mut fields = fields.clone();
            let slot = fields.get_mut(*index as usize).ok_or_else(wrong)?;
            slot.1 = (*value).clone();
            Value::Record(fields)
        }
        (Op::Some, [value]) => Value::Option(Some(Box::new((*value).clone()))),
        (Op::IsSome, [Value::Option(x)]) => Value::Bool(x.is_some()),
        (Op::UnwrapOr, [Value::Option(x), default]) => match x {
            Some(v) => (**v).clone(),
            None => (*default).clone(),
        },
        (Op::Unwrap, [Value::Option(x)]) => match x {
            Some(v) => (**v).clone(),
            None => return Err(EvalError::MissingValue { node }),
        },
        _ => return Err(wrong()),
    })
}

/// Two keys of `sort_by` or `group_by` in the order `graphjit_value::lists::SortKey`
/// defines (the guest sorts with those impls themselves).
pub(super) fn key_order(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::I64(x), Value::I64(y)) => x.order(y),
        (Value::F64(x), Value::F64(y)) => x.order(y),
        (Value::Bool(x), Value::Bool(y)) => x.order(y),
        (Value::Str(x), Value::Str(y)) => x.order(y),
        // Typing allows only keys of one of these types.
        _ => Ordering::Equal,
    }
}

fn len(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A list's elements as the one number type typing allows it to hold.
enum Numbers {
    I64(Vec<i64>),
    F64(Vec<f64>),
}

/// `items` as numbers of type `ty` (the list's element type).
fn numbers(items: &[Value], ty: &Type) -> Result<Numbers, EvalError> {
    match ty {
        Type::I64 => items
            .iter()
            .map(|v| match v {
                Value::I64(x) => Ok(*x),
                _ => Err(internal("a list of mixed numbers")),
            })
            .collect::<Result<_, _>>()
            .map(Numbers::I64),
        Type::F64 => items
            .iter()
            .map(|v| match v {
                Value::F64(x) => Ok(*x),
                _ => Err(internal("a list of mixed numbers")),
            })
            .collect::<Result<_, _>>()
            .map(Numbers::F64),
        other => Err(internal(format!("a sum, min or max of {other}"))),
    }
}
