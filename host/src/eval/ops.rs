//! The value-level rules of every op without a region, as docs/graph-format.md states them.
//!
//! Invariant: floats go through `libm` (never the platform's math library), integers through
//! `checked_*`, reductions through the one defined 8-lane order; no fused multiply-add.

use graphjit_value::{Tensor, Value};

use super::EvalError;
use crate::graph::{BinaryOp, CompareOp, NodeId, Op, ReduceOp, Type, UnaryOp};

pub(super) fn apply(op: &Op, args: &[&Value], ty: &Type, node: NodeId) -> Result<Value, EvalError> {
    let internal =
        || EvalError::Internal(format!("`{}` got arguments of the wrong types", op.name()));
    Ok(match (op, args) {
        (Op::Unary(u), [a]) => unary(*u, a, node).ok_or_else(internal)??,
        (Op::Binary(b), [x, y]) => binary(*b, x, y, node).ok_or_else(internal)??,
        (Op::Compare(c), [x, y]) => Value::Bool(compare(*c, x, y).ok_or_else(internal)?),
        (Op::Iota { shape }, []) => tensor(shape, (0..count(shape)).map(|i| i as f32).collect()),
        (Op::Fill { shape, value }, []) => tensor(shape, vec![*value; count(shape)]),
        (Op::Reshape { shape }, [Value::Tensor(t)]) => tensor(shape, t.data.clone()),
        (Op::Transpose, [Value::Tensor(t)]) => transpose(t).ok_or_else(internal)?,
        (Op::MatMul, [Value::Tensor(a), Value::Tensor(b)]) => matmul(a, b).ok_or_else(internal)?,
        (Op::Reduce(r), [Value::Tensor(t)]) => tensor(&[], vec![reduce(*r, &t.data)]),
        (Op::ToF64, [Value::I64(i)]) => Value::F64(*i as f64),
        (Op::ToF64, [Value::Tensor(t)]) => {
            Value::F64(f64::from(*t.data.first().ok_or_else(internal)?))
        }
        (Op::ToI64, [Value::F64(x)]) => Value::I64(to_i64(*x, node)?),
        (Op::ToTensor, [Value::F64(x)]) => tensor(&[], vec![*x as f32]),
        (Op::Concat, [Value::Str(a), Value::Str(b)]) => Value::Str(format!("{a}{b}")),
        (Op::Len, [Value::Str(s)]) => Value::I64(i64::try_from(s.len()).unwrap_or(i64::MAX)),
        (Op::ToString, [Value::I64(i)]) => Value::Str(i.to_string()),
        (Op::ToString, [Value::F64(x)]) => Value::Str(x.to_string()),
        _ => return Err(internal()),
    })
    .and_then(|v| {
        if crate::values::has_type(&v, ty) {
            Ok(v)
        } else {
            Err(internal())
        }
    })
}

fn count(shape: &[u32]) -> usize {
    Tensor::element_count(shape).unwrap_or(0)
}

fn tensor(shape: &[u32], data: Vec<f32>) -> Value {
    Value::Tensor(Tensor {
        shape: shape.to_vec(),
        data,
    })
}

fn to_i64(x: f64, node: NodeId) -> Result<i64, EvalError> {
    // [-2^63, 2^63): 2^63 is exact in f64.
    if x.is_nan() || x < -9_223_372_036_854_775_808.0 || x >= 9_223_372_036_854_775_808.0 {
        return Err(EvalError::InvalidValue {
            node,
            message: format!("{x} is not representable as i64"),
        });
    }
    Ok(x as i64)
}

/// `None`: ill-typed (a bug); `Some(Err)`: the op's own error.
fn unary(op: UnaryOp, a: &Value, node: NodeId) -> Option<Result<Value, EvalError>> {
    let overflow = EvalError::Overflow { node };
    Some(Ok(match a {
        Value::Bool(b) if op == UnaryOp::Not => Value::Bool(!b),
        Value::I64(i) => match op {
            UnaryOp::Neg => return Some(i.checked_neg().map(Value::I64).ok_or(overflow)),
            UnaryOp::Abs => return Some(i.checked_abs().map(Value::I64).ok_or(overflow)),
            _ => return None,
        },
        Value::F64(x) => Value::F64(match op {
            UnaryOp::Neg => -x,
            UnaryOp::Abs => libm::fabs(*x),
            UnaryOp::Sqrt => libm::sqrt(*x),
            UnaryOp::Exp => libm::exp(*x),
            UnaryOp::Ln => libm::log(*x),
            UnaryOp::Sin => libm::sin(*x),
            UnaryOp::Cos => libm::cos(*x),
            UnaryOp::Tanh => libm::tanh(*x),
            UnaryOp::Floor => libm::floor(*x),
            UnaryOp::Ceil => libm::ceil(*x),
            UnaryOp::Not | UnaryOp::Relu | UnaryOp::Sigmoid => return None,
        }),
        Value::Tensor(t) => {
            let f: fn(f32) -> f32 = match op {
                UnaryOp::Neg => |x| -x,
                UnaryOp::Abs => libm::fabsf,
                UnaryOp::Sqrt => libm::sqrtf,
                UnaryOp::Exp => libm::expf,
                UnaryOp::Ln => libm::logf,
                UnaryOp::Sin => libm::sinf,
                UnaryOp::Cos => libm::cosf,
                UnaryOp::Tanh => libm::tanhf,
                UnaryOp::Floor => libm::floorf,
                UnaryOp::Ceil => libm::ceilf,
                UnaryOp::Relu => |x| if x > 0.0 { x } else { 0.0 },
                UnaryOp::Sigmoid => |x| 1.0 / (1.0 + libm::expf(-x)),
                UnaryOp::Not => return None,
            };
            tensor(&t.shape, t.data.iter().map(|&x| f(x)).collect())
        }
        _ => return None,
    }))
}

fn binary(op: BinaryOp, x: &Value, y: &Value, node: NodeId) -> Option<Result<Value, EvalError>> {
    Some(Ok(match (x, y) {
        (Value::Bool(a), Value::Bool(b)) => Value::Bool(match op {
            BinaryOp::And => *a && *b,
            BinaryOp::Or => *a || *b,
            BinaryOp::Xor => a ^ b,
            _ => return None,
        }),
        (Value::I64(a), Value::I64(b)) => {
            return integer(op, *a, *b, node).map(|r| r.map(Value::I64));
        }
        (Value::F64(a), Value::F64(b)) => Value::F64(match op {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Min => libm::fmin(*a, *b),
            BinaryOp::Max => libm::fmax(*a, *b),
            BinaryOp::Pow => libm::pow(*a, *b),
            _ => return None,
        }),
        (Value::Tensor(a), Value::Tensor(b)) => {
            let f: fn(f32, f32) -> f32 = match op {
                BinaryOp::Add => |a, b| a + b,
                BinaryOp::Sub => |a, b| a - b,
                BinaryOp::Mul => |a, b| a * b,
                BinaryOp::Div => |a, b| a / b,
                BinaryOp::Min => libm::fminf,
                BinaryOp::Max => libm::fmaxf,
                _ => return None,
            };
            let data: Vec<f32> = match (a.shape.is_empty(), b.shape.is_empty()) {
                (true, false) => {
                    let s = *a.data.first()?;
                    b.data.iter().map(|&v| f(s, v)).collect()
                }
                (false, true) => {
                    let s = *b.data.first()?;
                    a.data.iter().map(|&v| f(v, s)).collect()
                }
                _ if a.shape == b.shape => {
                    a.data.iter().zip(&b.data).map(|(&u, &v)| f(u, v)).collect()
                }
                _ => return None,
            };
            let shape = if a.shape.is_empty() {
                &b.shape
            } else {
                &a.shape
            };
            tensor(shape, data)
        }
        _ => return None,
    }))
}

fn integer(op: BinaryOp, a: i64, b: i64, node: NodeId) -> Option<Result<i64, EvalError>> {
    let overflow = |r: Option<i64>| r.ok_or(EvalError::Overflow { node });
    Some(match op {
        BinaryOp::Add => overflow(a.checked_add(b)),
        BinaryOp::Sub => overflow(a.checked_sub(b)),
        BinaryOp::Mul => overflow(a.checked_mul(b)),
        BinaryOp::Div | BinaryOp::Rem if b == 0 => Err(EvalError::DivisionByZero { node }),
        BinaryOp::Div => overflow(a.checked_div(b)),
        BinaryOp::Rem => overflow(a.checked_rem(b)),
        BinaryOp::Min => Ok(a.min(b)),
        BinaryOp::Max => Ok(a.max(b)),
        _ => return None,
    })
}

fn compare(op: CompareOp, x: &Value, y: &Value) -> Option<bool> {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (x, y) {
        (Value::I64(a), Value::I64(b)) => Some(a.cmp(b)),
        (Value::F64(a), Value::F64(b)) => a.partial_cmp(b),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Str(a), Value::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        _ => return None,
    };
    // IEEE: every comparison with NaN is false except `ne`.
    Some(match (op, ordering) {
        (CompareOp::Ne, None) => true,
        (_, None) => false,
        (CompareOp::Eq, Some(o)) => o == Ordering::Equal,
        (CompareOp::Ne, Some(o)) => o != Ordering::Equal,
        (CompareOp::Lt, Some(o)) => o == Ordering::Less,
        (CompareOp::Le, Some(o)) => o != Ordering::Greater,
        (CompareOp::Gt, Some(o)) => o == Ordering::Greater,
        (CompareOp::Ge, Some(o)) => o != Ordering::Less,
    })
}

/// The defined reduction: 8 lanes `p[i % 8]`, then `(p0+p4, p1+p5, p2+p6, p3+p7)`, then
/// `(q0+q2, q1+q3)`, then `r0+r1` (with `fmaxf`/`fminf` in place of `+` for max/min).
fn reduce(op: ReduceOp, x: &[f32]) -> f32 {
    let (init, f): (f32, fn(f32, f32) -> f32) = match op {
        ReduceOp::Sum | ReduceOp::Mean => (0.0, |a, b| a + b),
        ReduceOp::Max => (f32::NEG_INFINITY, libm::fmaxf),
        ReduceOp::Min => (f32::INFINITY, libm::fminf),
    };
    let mut p = [init; 8];
    for (i, &v) in x.iter().enumerate() {
        p[i % 8] = f(p[i % 8], v);
    }
    let q = [f(p[0], p[4]), f(p[1], p[5]), f(p[2], p[6]), f(p[3], p[7])];
    let total = f(f(q[0], q[2]), f(q[1], q[3]));
    if op == ReduceOp::Mean {
        total / x.len() as f32
    } else {
        total
    }
}

fn matmul(a: &Tensor, b: &Tensor) -> Option<Value> {
    let (&[m, k], &[k2, n]) = (a.shape.as_slice(), b.shape.as_slice()) else {
        return None;
    };
    if k != k2 {
        return None;
    }
    let (m, k, n) = (m as usize, k as usize, n as usize);
    let mut c = vec![0.0f32; m.checked_mul(n)?];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for p in 0..k {
                acc = acc + *a.data.get(i * k + p)? * *b.data.get(p * n + j)?;
            }
            *c.get_mut(i * n + j)? = acc;
        }
    }
    Some(tensor(&[m as u32, n as u32], c))
}

fn transpose(t: &Tensor) -> Option<Value> {
    let &[m, n] = t.shape.as_slice() else {
        return None;
    };
    let (mu, nu) = (m as usize, n as usize);
    let mut out = Vec::with_capacity(mu.checked_mul(nu)?);
    for j in 0..nu {
        for i in 0..mu {
            out.push(*t.data.get(i * nu + j)?);
        }
    }
    Some(tensor(&[n, m], out))
}
