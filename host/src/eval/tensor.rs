//! The value rules of f32 tensor ops: elementwise maps and zips with `[]` broadcasting, the
//! 8-lane reductions, matmul, transpose, reshape, iota, fill and the scalar conversions
//! (docs/graph-format.md, "Semantics").
//!
//! Invariants: element functions are the `libm` crate's f32 functions or native IEEE
//! operators; no fused multiply-add; one fixed reduction order; every index is checked (or
//! provably below a length already checked against the shape), so a malformed tensor is
//! `EvalError::Internal`, never a panic.

use graphjit_value::{Tensor, Value, axes, math};

use super::EvalError;
use super::interp::internal;
use crate::graph::{BinaryOp, NodeId, Op, ReduceOp, UnaryOp};

/// An elementwise f32 function of one argument.
type UnaryFn = fn(f32) -> f32;
/// An elementwise f32 function of two arguments.
type BinaryFn = fn(f32, f32) -> f32;

/// Lanes of the defined reduction order.
const LANES: usize = 8;

/// Applies tensor `op` (at `node`) to `args`.
pub(super) fn apply(op: &Op, args: &[&Value], node: NodeId) -> Result<Value, EvalError> {
    let t = match (op, args) {
        (Op::Unary(u), [Value::Tensor(a)]) => map(a, unary_fn(*u)?),
        (Op::Binary(b), [Value::Tensor(x), Value::Tensor(y)]) => zip(x, y, binary_fn(*b)?)?,
        (Op::Iota { shape }, []) => {
            let n = element_count(shape)?;
            tensor(shape, (0..n).map(|i| i as f32).collect())
        }
        (Op::Fill { shape, value }, []) => tensor(shape, vec![*value; element_count(shape)?]),
        (Op::Reshape { shape }, [Value::Tensor(a)]) => {
            if element_count(shape)? != a.data.len() {
                return Err(internal("`reshape` to a different element count"));
            }
            tensor(shape, a.data.clone())
        }
        (Op::Transpose, [Value::Tensor(a)]) => transpose(a)?,
        // The op's elementwise program (`Op::element_steps`), as the fused loop runs it.
        // Bounds that broadcast beyond `[]`: `max` then `min`, the program's own two steps.
        (Op::Clamp, [Value::Tensor(x), Value::Tensor(lo), Value::Tensor(hi)])
            if ![lo, hi]
                .iter()
                .all(|t| t.shape.is_empty() || t.shape == x.shape) =>
        {
            let raised = zip(x, lo, binary_fn(BinaryOp::Max)?)?;
            zip(&raised, hi, binary_fn(BinaryOp::Min)?)?
        }
        (Op::Clamp, [Value::Tensor(x), Value::Tensor(lo), Value::Tensor(hi)]) => {
            let program = op
                .element_program(args.len())
                .ok_or_else(|| internal("`clamp` without its elementwise program"))?;
            let shape = [x, lo, hi]
                .into_iter()
                .map(|t| &t.shape)
                .find(|s| !s.is_empty())
                .map_or(&[][..], |s| s.as_slice());
            return fused(&program, args, shape);
        }
        (Op::MatMul | Op::NativeMatMul, [Value::Tensor(a), Value::Tensor(b)]) => matmul(a, b)?,
        (Op::Reduce(r), [Value::Tensor(a)]) => tensor(&[], vec![reduce(*r, &a.data)]),
        (Op::ReduceAxis { op, axis, keepdims }, [Value::Tensor(a)]) => {
            let k = axis_of(*axis, a)?;
            let mut data = Vec::new();
            axes::reduce_axis(&a.data, &a.shape, k, reduction(*op), &mut data)
                .map_err(|_| internal("a reduction along an axis of a malformed tensor"))?;
            tensor(&axes::reduced_shape(&a.shape, k, *keepdims), data)
        }
        (Op::LayerNorm { axis, epsilon }, [Value::Tensor(x), Value::Tensor(scale), rest @ ..]) => {
            let k = axis_of(*axis, x)?;
            let bias = match rest {
                [] => None,
                [Value::Tensor(b)] => Some(b.data.as_slice()),
                _ => return Err(internal("`layer_norm` with a bias that is not a tensor")),
            };
            let mut data = Vec::new();
            axes::layer_norm(&x.data, &x.shape, k, &scale.data, bias, *epsilon, &mut data)
                .map_err(|_| internal("`layer_norm` of a malformed tensor"))?;
            tensor(&x.shape, data)
        }
        (Op::Softmax { axis, log }, [Value::Tensor(a)]) => {
            let k = axis_of(*axis, a)?;
            let mut data = Vec::new();
            axes::softmax_axis(&a.data, &a.shape, k, *log, &mut data)
                .map_err(|_| internal("`softmax` of a malformed tensor"))?;
            tensor(&a.shape, data)
        }
        (Op::ToTensor, [Value::F64(x)]) => tensor(&[], vec![*x as f32]),
        (Op::ToF64, [Value::Tensor(a)]) => {
            return match a.data.as_slice() {
                [x] => Ok(Value::F64(f64::from(*x))),
                _ => Err(internal("`to_f64` of a tensor without exactly one element")),
            };
        }
        _ => {
            return Err(internal(format!(
                "`{}` at {node:?} got tensor arguments its type rule forbids",
                op.name()
            )));
        }
    };
    Ok(Value::Tensor(t))
}

/// A fused elementwise chain: per element, the steps in order (the same element functions as
/// the unfused ops, so the same bits).
pub(super) fn fused(
    steps: &[crate::graph::FusedStep],
    args: &[&Value],
    shape: &[u32],
) -> Result<Value, EvalError> {
    use crate::graph::FusedStep;
    let n = element_count(shape)?;
    let inputs: Vec<&Tensor> = args
        .iter()
        .map(|a| match a {
            Value::Tensor(t) if t.shape.is_empty() || t.shape == shape => Ok(t),
            _ => Err(internal(
                "a fused input that is not a tensor of the result's shape or []",
            )),
        })
        .collect::<Result<_, _>>()?;
    let unary: Vec<Option<UnaryFn>> = steps
        .iter()
        .map(|s| match s {
            FusedStep::Unary(op, _) => unary_fn(*op).map(Some),
            _ => Ok(None),
        })
        .collect::<Result<_, _>>()?;
    let binary: Vec<Option<BinaryFn>> = steps
        .iter()
        .map(|s| match s {
            FusedStep::Binary(op, _, _) => binary_fn(*op).map(Some),
            _ => Ok(None),
        })
        .collect::<Result<_, _>>()?;
    let mut regs = vec![0f32; steps.len()];
    let mut data = Vec::with_capacity(n);
    for i in 0..n {
        for (j, step) in steps.iter().enumerate() {
            let reg = |r: u32| {
                regs.get(r as usize)
                    .copied()
                    .filter(|_| (r as usize) < j)
                    .ok_or_else(|| internal("a fused step reads a later register"))
            };
            let value = match (*step, unary[j], binary[j]) {
                (FusedStep::Arg(k), _, _) => {
                    let t = inputs
                        .get(k as usize)
                        .ok_or_else(|| internal("a fused step reads a missing argument"))?;
                    let at = if t.shape.is_empty() { 0 } else { i };
                    *t.data
                        .get(at)
                        .ok_or_else(|| internal("a tensor's data disagrees with its shape"))?
                }
                (FusedStep::Index, _, _) => i as f32,
                (FusedStep::Const(bits), _, _) => f32::from_bits(bits),
                (FusedStep::Unary(_, r), Some(f), _) => f(reg(r)?),
                (FusedStep::Binary(_, a, b), _, Some(f)) => f(reg(a)?, reg(b)?),
                _ => return Err(internal("a fused step without its function")),
            };
            regs[j] = value;
        }
        data.push(
            *regs
                .last()
                .ok_or_else(|| internal("an empty fused program"))?,
        );
    }
    Ok(Value::Tensor(tensor(shape, data)))
}

/// A fused chain ending in a reduction: the chain's elements (of `shape`), reduced by `op` in
/// the defined order — the same bits as the chain followed by the reduction.
pub(super) fn fused_reduce(
    steps: &[crate::graph::FusedStep],
    args: &[&Value],
    shape: &[u32],
    op: ReduceOp,
) -> Result<Value, EvalError> {
    let Value::Tensor(elements) = fused(steps, args, shape)? else {
        return Err(internal("a fused chain that is not a tensor"));
    };
    Ok(Value::Tensor(tensor(&[], vec![reduce(op, &elements.data)])))
}

/// Axis `axis` (as written) of `a`, which typing checked.
fn axis_of(axis: i64, a: &Tensor) -> Result<usize, EvalError> {
    axes::axis_index(axis, a.shape.len()).ok_or_else(|| internal("an axis typing refused"))
}

/// The shared rule's name for reduction `op`.
fn reduction(op: ReduceOp) -> axes::Reduce {
    match op {
        ReduceOp::Sum => axes::Reduce::Sum,
        ReduceOp::Max => axes::Reduce::Max,
        ReduceOp::Min => axes::Reduce::Min,
        ReduceOp::Mean => axes::Reduce::Mean,
    }
}

fn tensor(shape: &[u32], data: Vec<f32>) -> Tensor {
    Tensor {
        shape: shape.to_vec(),
        data,
    }
}

fn element_count(shape: &[u32]) -> Result<usize, EvalError> {
    Tensor::element_count(shape).ok_or_else(|| internal("a tensor shape overflows usize"))
}

/// A tensor's data, checked against its shape.
fn checked_data(t: &Tensor) -> Result<&[f32], EvalError> {
    if element_count(&t.shape)? == t.data.len() {
        Ok(&t.data)
    } else {
        Err(internal("a tensor's data disagrees with its shape"))
    }
}

/// The f32 element rule of a unary op.
fn unary_fn(op: UnaryOp) -> Result<UnaryFn, EvalError> {
    Ok(match op {
        UnaryOp::Neg => |x| -x,
        UnaryOp::Abs => libm::fabsf,
        UnaryOp::Sqrt => libm::sqrtf,
        UnaryOp::Exp => math::expf,
        UnaryOp::Ln => libm::logf,
        UnaryOp::Sin => libm::sinf,
        UnaryOp::Cos => libm::cosf,
        UnaryOp::Tanh => math::tanhf,
        UnaryOp::Floor => libm::floorf,
        UnaryOp::Ceil => libm::ceilf,
        // NaN, -0.0 and every x <= 0 give +0.0.
        UnaryOp::Relu => |x| if x > 0.0 { x } else { 0.0 },
        UnaryOp::Sigmoid => |x| 1.0 / (1.0 + math::expf(-x)),
        UnaryOp::Not => return Err(internal("`not` of a tensor")),
    })
}

/// The f32 element rule of a binary op.
fn binary_fn(op: BinaryOp) -> Result<BinaryFn, EvalError> {
    Ok(match op {
        BinaryOp::Add => |a, b| a + b,
        BinaryOp::Sub => |a, b| a - b,
        BinaryOp::Mul => |a, b| a * b,
        BinaryOp::Div => |a, b| a / b,
        BinaryOp::Min => math::fminf,
        BinaryOp::Max => math::fmaxf,
        BinaryOp::Rem | BinaryOp::Pow | BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => {
            return Err(internal(format!("`{}` of tensors", op.name())));
        }
    })
}

fn map(a: &Tensor, f: fn(f32) -> f32) -> Tensor {
    tensor(&a.shape, a.data.iter().map(|&x| f(x)).collect())
}

/// `f(x[i], y[i])` over equal shapes; a `[]` side is broadcast, argument order kept (`a - s`
/// is `a[i] - s`, `s - a` is `s - a[i]`); other shapes by NumPy broadcasting.
fn zip(x: &Tensor, y: &Tensor, f: fn(f32, f32) -> f32) -> Result<Tensor, EvalError> {
    let (xs, ys) = (checked_data(x)?, checked_data(y)?);
    let (shape, data) = if x.shape == y.shape {
        (
            &x.shape,
            xs.iter().zip(ys).map(|(&a, &b)| f(a, b)).collect(),
        )
    } else if let ([], [s]) = (y.shape.as_slice(), ys) {
        (&x.shape, xs.iter().map(|&a| f(a, *s)).collect())
    } else if let ([], [s]) = (x.shape.as_slice(), xs) {
        (&y.shape, ys.iter().map(|&b| f(*s, b)).collect())
    } else {
        let shape = axes::broadcast(&x.shape, &y.shape)
            .ok_or_else(|| internal("elementwise op on shapes that do not broadcast"))?;
        let mut data = Vec::new();
        axes::zip_broadcast((xs, &x.shape), (ys, &y.shape), &shape, f, &mut data)
            .map_err(|_| internal("a broadcast of malformed tensors"))?;
        return Ok(tensor(&shape, data));
    };
    Ok(tensor(shape, data))
}

/// The defined order: lane `i % 8` accumulates `x[i]` for increasing `i` (lanes start at the
/// op's identity), then `q[j] = op(p[j], p[j+4])`, `r[j] = op(q[j], q[j+2])`,
/// `s = op(r[0], r[1])`. `op` is `+` (sum, mean), `fmaxf` (reduce_max), `fminf` (reduce_min);
/// `mean = s / n`.
fn reduce(op: ReduceOp, x: &[f32]) -> f32 {
    let (identity, f): (f32, fn(f32, f32) -> f32) = match op {
        ReduceOp::Sum | ReduceOp::Mean => (0.0, |a, b| a + b),
        ReduceOp::Max => (f32::NEG_INFINITY, math::fmaxf),
        ReduceOp::Min => (f32::INFINITY, math::fminf),
    };
    let mut p = [identity; LANES];
    for (lane, chunk) in (0..LANES).cycle().zip(x) {
        if let Some(acc) = p.get_mut(lane) {
            *acc = f(*acc, *chunk);
        }
    }
    let [p0, p1, p2, p3, p4, p5, p6, p7] = p;
    let q = [f(p0, p4), f(p1, p5), f(p2, p6), f(p3, p7)];
    let r = [f(q[0], q[2]), f(q[1], q[3])];
    let s = f(r[0], r[1]);
    match op {
        ReduceOp::Mean => s / (x.len() as f32),
        ReduceOp::Sum | ReduceOp::Max | ReduceOp::Min => s,
    }
}

/// `[m,k] × [k,n]`: `c[i][j]` starts at 0.0 and adds `a[i][p] * b[p][j]` for `p` in `0..k`,
/// a rounded multiply then a rounded add each step.
fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor, EvalError> {
    let (&[m, k], &[k2, n]) = (a.shape.as_slice(), b.shape.as_slice()) else {
        return Err(internal("`matmul` of tensors that are not matrices"));
    };
    if k != k2 {
        return Err(internal("`matmul` with mismatched inner dimensions"));
    }
    let (ad, bd) = (checked_data(a)?, checked_data(b)?);
    let (mu, ku, nu) = (m as usize, k as usize, n as usize);
    let mut c = Vec::with_capacity(element_count(&[m, n])?);
    // Indices stay below `m·k` and `k·n`, lengths `checked_data` confirmed, so no overflow.
    for i in 0..mu {
        for j in 0..nu {
            let mut acc = 0.0f32;
            for p in 0..ku {
                let (Some(&x), Some(&y)) = (ad.get(i * ku + p), bd.get(p * nu + j)) else {
                    return Err(internal("`matmul` index out of range"));
                };
                acc += x * y;
            }
            c.push(acc);
        }
    }
    Ok(tensor(&[m, n], c))
}

/// `[m,n] → [n,m]`: `out[j*m + i] = in[i*n + j]`.
fn transpose(a: &Tensor) -> Result<Tensor, EvalError> {
    let &[m, n] = a.shape.as_slice() else {
        return Err(internal("`transpose` of a tensor that is not a matrix"));
    };
    let data = checked_data(a)?;
    let (mu, nu) = (m as usize, n as usize);
    let mut out = Vec::with_capacity(data.len());
    // Indices stay below `m·n`, the length `checked_data` confirmed.
    for j in 0..nu {
        for i in 0..mu {
            let x = data
                .get(i * nu + j)
                .ok_or_else(|| internal("`transpose` index out of range"))?;
            out.push(*x);
        }
    }
    Ok(tensor(&[n, m], out))
}
