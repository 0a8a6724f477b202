//! The value rules of scalar ops: checked i64, IEEE/libm f64, bool logic, strings, and the
//! conversions between them (docs/graph-format.md, "Semantics").
//!
//! Invariants: floats go through the `libm` crate (never the platform's math library) or a
//! native IEEE operator; integers through `checked_*`; an argument combination that typing
//! rules out is `EvalError::Internal`, never a panic.

use graphjit_value::Value;

use super::EvalError;
use super::interp::internal;
use crate::graph::{BinaryOp, CompareOp, NodeId, Op, StrOp, UnaryOp};

/// 2^63, exact in f64: `to_i64` accepts `[-2^63, 2^63)`.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// Applies scalar `op` (at `node`) to `args`; `memory_bytes` bounds a `concat` result.
pub(super) fn apply(
    op: &Op,
    args: &[&Value],
    node: NodeId,
    memory_bytes: u64,
) -> Result<Value, EvalError> {
    match (op, args) {
        (Op::Unary(u), [a]) => unary(*u, a, node),
        (Op::Binary(b), [x, y]) => binary(*b, x, y, node),
        (Op::Compare(c), [x, y]) => compare(*c, x, y).map(Value::Bool),
        // min(max(x, lo), hi), with the type's own min and max (as the tensor rule does).
        (Op::Clamp, [x, lo, hi]) => {
            let raised = binary(BinaryOp::Max, x, lo, node)?;
            binary(BinaryOp::Min, &raised, hi, node)
        }
        (Op::ToF64, [Value::I64(i)]) => Ok(Value::F64(*i as f64)),
        (Op::ToI64, [Value::F64(x)]) => to_i64(*x, node).map(Value::I64),
        (Op::Concat, [Value::Str(a), Value::Str(b)]) => concat(a, b, node, memory_bytes),
        (Op::Len, [Value::Str(s)]) => i64::try_from(s.len())
            .map(Value::I64)
            .map_err(|_| internal("a string longer than i64::MAX bytes")),
        (Op::Str(s), args) => string(*s, args, node, memory_bytes),
        (Op::ToString, [Value::I64(i)]) => Ok(Value::Str(format!("{i}"))),
        (Op::ToString, [Value::F64(x)]) => Ok(Value::Str(format!("{x}"))),
        _ => Err(ill_typed(op)),
    }
}

fn ill_typed(op: &Op) -> EvalError {
    internal(format!(
        "`{}` got scalar arguments its type rule forbids",
        op.name()
    ))
}

/// `f64 → i64` by truncation toward zero; NaN or outside `[-2^63, 2^63)` is `InvalidValue`.
pub(super) fn to_i64(x: f64, node: NodeId) -> Result<i64, EvalError> {
    if x.is_nan() || !(-TWO_POW_63..TWO_POW_63).contains(&x) {
        return Err(EvalError::InvalidValue {
            node,
            message: format!("{x} is not representable as i64"),
        });
    }
    Ok(x as i64)
}

fn concat(a: &str, b: &str, node: NodeId, memory_bytes: u64) -> Result<Value, EvalError> {
    let bytes = (a.len() as u64).saturating_add(b.len() as u64);
    if bytes > memory_bytes {
        return Err(EvalError::OutOfMemory { node, bytes });
    }
    let mut s = String::with_capacity(a.len().saturating_add(b.len()));
    s.push_str(a);
    s.push_str(b);
    Ok(Value::Str(s))
}

/// The string ops: `graphjit_value::text`, the rules the guest calls too.
fn string(op: StrOp, args: &[&Value], node: NodeId, memory_bytes: u64) -> Result<Value, EvalError> {
    use graphjit_value::text;
    let invalid = |message: String| EvalError::InvalidValue { node, message };
    Ok(match (op, args) {
        (StrOp::Contains, [Value::Str(s), Value::Str(p)]) => Value::Bool(text::contains(s, p)),
        (StrOp::StartsWith, [Value::Str(s), Value::Str(p)]) => Value::Bool(text::starts_with(s, p)),
        (StrOp::EndsWith, [Value::Str(s), Value::Str(p)]) => Value::Bool(text::ends_with(s, p)),
        (StrOp::Replace, [Value::Str(s), Value::Str(from), Value::Str(to)]) => {
            let bytes = text::replaced_len(s, from, to).map_or(u64::MAX, |n| n as u64);
            if bytes > memory_bytes {
                return Err(EvalError::OutOfMemory { node, bytes });
            }
            Value::Str(text::replace(s, from, to))
        }
        (StrOp::Trim, [Value::Str(s)]) => Value::Str(text::trim(s)),
        (StrOp::ToLower, [Value::Str(s)]) => Value::Str(text::to_lower(s)),
        (StrOp::ToUpper, [Value::Str(s)]) => Value::Str(text::to_upper(s)),
        (StrOp::Substring, [Value::Str(s), Value::I64(start), Value::I64(len)]) => {
            Value::Str(text::substring(s, *start, *len).map_err(invalid)?)
        }
        (StrOp::ParseI64, [Value::Str(s)]) => Value::I64(text::parse_i64(s).map_err(invalid)?),
        (StrOp::ParseF64, [Value::Str(s)]) => Value::F64(text::parse_f64(s).map_err(invalid)?),
        _ => return Err(ill_typed(&Op::Str(op))),
    })
}

fn unary(op: UnaryOp, a: &Value, node: NodeId) -> Result<Value, EvalError> {
    let overflow = EvalError::Overflow { node };
    match (op, a) {
        (UnaryOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
        (UnaryOp::Neg, Value::I64(i)) => i.checked_neg().map(Value::I64).ok_or(overflow),
        (UnaryOp::Abs, Value::I64(i)) => i.checked_abs().map(Value::I64).ok_or(overflow),
        (_, Value::F64(x)) => f64_unary(op, *x).map(Value::F64),
        _ => Err(ill_typed(&Op::Unary(op))),
    }
}

fn f64_unary(op: UnaryOp, x: f64) -> Result<f64, EvalError> {
    Ok(match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => libm::fabs(x),
        UnaryOp::Sqrt => libm::sqrt(x),
        UnaryOp::Exp => libm::exp(x),
        UnaryOp::Ln => libm::log(x),
        UnaryOp::Sin => libm::sin(x),
        UnaryOp::Cos => libm::cos(x),
        UnaryOp::Tanh => libm::tanh(x),
        UnaryOp::Floor => libm::floor(x),
        UnaryOp::Ceil => libm::ceil(x),
        UnaryOp::Not | UnaryOp::Relu | UnaryOp::Sigmoid => {
            return Err(ill_typed(&Op::Unary(op)));
        }
    })
}

fn binary(op: BinaryOp, x: &Value, y: &Value, node: NodeId) -> Result<Value, EvalError> {
    match (x, y) {
        (Value::Bool(a), Value::Bool(b)) => bool_binary(op, *a, *b).map(Value::Bool),
        (Value::I64(a), Value::I64(b)) => i64_binary(op, *a, *b, node).map(Value::I64),
        (Value::F64(a), Value::F64(b)) => f64_binary(op, *a, *b).map(Value::F64),
        _ => Err(ill_typed(&Op::Binary(op))),
    }
}

fn bool_binary(op: BinaryOp, a: bool, b: bool) -> Result<bool, EvalError> {
    match op {
        BinaryOp::And => Ok(a && b),
        BinaryOp::Or => Ok(a || b),
        BinaryOp::Xor => Ok(a ^ b),
        _ => Err(ill_typed(&Op::Binary(op))),
    }
}

/// Checked: overflow is `Overflow`; `div`/`rem` by zero is `DivisionByZero` (checked first),
/// and `MIN / -1`, `MIN % -1` are `Overflow`. Division truncates toward zero.
fn i64_binary(op: BinaryOp, a: i64, b: i64, node: NodeId) -> Result<i64, EvalError> {
    let checked = |r: Option<i64>| r.ok_or(EvalError::Overflow { node });
    match op {
        BinaryOp::Add => checked(a.checked_add(b)),
        BinaryOp::Sub => checked(a.checked_sub(b)),
        BinaryOp::Mul => checked(a.checked_mul(b)),
        BinaryOp::Div | BinaryOp::Rem if b == 0 => Err(EvalError::DivisionByZero { node }),
        BinaryOp::Div => checked(a.checked_div(b)),
        BinaryOp::Rem => checked(a.checked_rem(b)),
        BinaryOp::Min => Ok(a.min(b)),
        BinaryOp::Max => Ok(a.max(b)),
        BinaryOp::Pow | BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => {
            Err(ill_typed(&Op::Binary(op)))
        }
    }
}

fn f64_binary(op: BinaryOp, a: f64, b: f64) -> Result<f64, EvalError> {
    Ok(match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Min => libm::fmin(a, b),
        BinaryOp::Max => libm::fmax(a, b),
        BinaryOp::Pow => libm::pow(a, b),
        BinaryOp::Rem | BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => {
            return Err(ill_typed(&Op::Binary(op)));
        }
    })
}

/// i64: the usual order. f64: IEEE (every comparison with NaN is false except `ne`; `-0.0 ==
/// 0.0`). bool and string: `eq`/`ne` only, strings bytewise.
fn compare(op: CompareOp, x: &Value, y: &Value) -> Result<bool, EvalError> {
    match (x, y) {
        (Value::I64(a), Value::I64(b)) => Ok(ordered(op, a, b)),
        (Value::F64(a), Value::F64(b)) => Ok(ordered(op, a, b)),
        (Value::Bool(a), Value::Bool(b)) => equality(op, a == b),
        (Value::Str(a), Value::Str(b)) => equality(op, a.as_bytes() == b.as_bytes()),
        _ => Err(ill_typed(&Op::Compare(op))),
    }
}

/// The comparison by the operators themselves (for f64, IEEE semantics).
fn ordered<T: PartialOrd>(op: CompareOp, a: &T, b: &T) -> bool {
    match op {
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        CompareOp::Lt => a < b,
        CompareOp::Le => a <= b,
        CompareOp::Gt => a > b,
        CompareOp::Ge => a >= b,
    }
}

fn equality(op: CompareOp, equal: bool) -> Result<bool, EvalError> {
    match op {
        CompareOp::Eq => Ok(equal),
        CompareOp::Ne => Ok(!equal),
        CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge => {
            Err(ill_typed(&Op::Compare(op)))
        }
    }
}
