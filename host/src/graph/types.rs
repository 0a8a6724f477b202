//! Value types and the typing rule of every op.
//!
//! Invariant: typing is total and never panics; an ill-typed node gets a message that says
//! what was expected, and the caller attaches the node and a remediation.

use std::fmt;

use super::{BinaryOp, CompareOp, Op, Scalar, UnaryOp};

/// The static type of a value. Tensor shapes are static: sizes are known before a run.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Type {
    Bool,
    I64,
    F64,
    Str,
    Tensor(Vec<u32>),
    Tuple(Vec<Type>),
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::I64 => f.write_str("i64"),
            Type::F64 => f.write_str("f64"),
            Type::Str => f.write_str("string"),
            Type::Tensor(shape) => write!(f, "tensor{shape:?}"),
            Type::Tuple(items) => {
                f.write_str("(")?;
                for (i, t) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl Type {
    /// True for types whose Rust representation is `Copy` in generated code.
    pub(crate) fn is_copy(&self) -> bool {
        matches!(self, Type::Bool | Type::I64 | Type::F64)
    }

    /// Type nodes in this type: one, plus its items' for a tuple (the cost of cloning it).
    pub(crate) fn size(&self) -> u64 {
        match self {
            Type::Tuple(items) => items
                .iter()
                .fold(1u64, |acc, t| acc.saturating_add(t.size())),
            _ => 1,
        }
    }

    /// How deep tuples nest in this type: 0 for a scalar or tensor, 1 for a tuple of them.
    pub(crate) fn tuple_depth(&self) -> usize {
        match self {
            Type::Tuple(items) => 1 + items.iter().map(Type::tuple_depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// Number of tensor elements, if this is a tensor type whose element count fits a u64.
    pub(crate) fn tensor_elements(&self) -> Option<u64> {
        match self {
            Type::Tensor(shape) => shape_elements(shape),
            _ => None,
        }
    }
}

/// Elements of a tensor of `shape`, or `None` when the product overflows a u64 (dims are u32,
/// so three large ones do): every product of sizes in typing is checked.
pub(crate) fn shape_elements(shape: &[u32]) -> Option<u64> {
    shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
}

/// The result type of `op` applied to arguments of types `args`, or why it is ill-typed.
/// `If` and `Loop` are typed by `lower`, which sees their regions.
pub(crate) fn infer(op: &Op, args: &[&Type]) -> Result<Type, String> {
    use Type::{Bool, F64, I64, Str, Tensor};
    match op {
        Op::Input { .. }
        | Op::Param
        | Op::Const(_)
        | Op::If { .. }
        | Op::Loop { .. }
        | Op::DbQuery { .. }
        | Op::Http { .. }
        | Op::Fused { .. }
        | Op::FusedReductions { .. } => {
            Err(format!("`{}` is typed from its declaration", op.name()))
        }
        Op::DbExecute { .. } => Ok(I64),
        Op::Log { .. } => {
            let [a] = arity::<1>(op, args)?;
            Ok(a.clone())
        }
        Op::Kernel { name } => kernel_type(name, args),
        Op::Str(s) => {
            let (params, result) = s.signature();
            let ty = |t: Scalar| match t {
                Scalar::Bool => Bool,
                Scalar::I64 => I64,
                Scalar::F64 => F64,
                Scalar::Str => Str,
            };
            if args.len() == params.len() && args.iter().zip(params).all(|(a, &p)| **a == ty(p)) {
                Ok(ty(result))
            } else {
                let wanted: Vec<String> = params.iter().map(|&p| ty(p).to_string()).collect();
                let got: Vec<String> = args.iter().map(ToString::to_string).collect();
                Err(format!(
                    "`{}` takes ({}), got ({})",
                    s.name(),
                    wanted.join(", "),
                    got.join(", ")
                ))
            }
        }
        Op::Unary(u) => {
            let [a] = arity::<1>(op, args)?;
            let ok = match (u, a) {
                (UnaryOp::Not, Bool) => true,
                (UnaryOp::Neg | UnaryOp::Abs, I64 | F64 | Tensor(_)) => true,
                (UnaryOp::Relu | UnaryOp::Sigmoid, Tensor(_)) => true,
                (UnaryOp::Not | UnaryOp::Relu | UnaryOp::Sigmoid, _)
                | (UnaryOp::Neg | UnaryOp::Abs, _) => false,
                (_, F64 | Tensor(_)) => true,
                _ => false,
            };
            if ok {
                Ok(a.clone())
            } else {
                Err(format!("`{}` does not apply to {a}", u.name()))
            }
        }
        Op::Binary(b) => {
            let [x, y] = arity::<2>(op, args)?;
            let logic = matches!(b, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor);
            match (x, y) {
                (Bool, Bool) if logic => Ok(Bool),
                (I64, I64) if !logic && *b != BinaryOp::Pow => Ok(I64),
                (F64, F64) if !logic && *b != BinaryOp::Rem => Ok(F64),
                (Tensor(s), Tensor(t)) if !logic && !matches!(b, BinaryOp::Rem | BinaryOp::Pow) => {
                    broadcast(s, t).map(Tensor).ok_or_else(|| {
                        format!("shapes {s:?} and {t:?} differ (only equal shapes or a [] scalar broadcast)")
                    })
                }
                _ if x != y && !matches!((x, y), (Tensor(_), Tensor(_))) => Err(format!(
                    "`{}` needs two arguments of one type, got {x} and {y}",
                    b.name()
                )),
                _ => Err(format!("`{}` does not apply to {x}", b.name())),
            }
        }
        Op::Clamp => match arity::<3>(op, args)? {
            [I64, I64, I64] => Ok(I64),
            [F64, F64, F64] => Ok(F64),
            [Tensor(x), Tensor(lo), Tensor(hi)] => broadcast(x, lo)
                .and_then(|s| broadcast(&s, hi))
                .map(Tensor)
                .ok_or_else(|| {
                    format!(
                        "`clamp` shapes {x:?}, {lo:?} and {hi:?} do not broadcast (only equal \
                         shapes or [] scalars)"
                    )
                }),
            [x, lo, hi] => Err(format!(
                "`clamp` takes x, lo and hi of one type (i64, f64 or tensors), got {x}, {lo} and {hi}"
            )),
        },
        Op::Compare(c) => {
            let [x, y] = arity::<2>(op, args)?;
            let ordered = !matches!(c, CompareOp::Eq | CompareOp::Ne);
            match (x, y) {
                (I64, I64) | (F64, F64) => Ok(Bool),
                (Bool, Bool) | (Str, Str) if !ordered => Ok(Bool),
                _ if x != y => Err(format!("cannot compare {x} with {y}")),
                _ => Err(format!("`{}` does not apply to {x}", c.name())),
            }
        }
        Op::Fork => Ok(Type::Tuple(args.iter().map(|t| (*t).clone()).collect())),
        Op::Sequence => args
            .last()
            .map(|t| (*t).clone())
            .ok_or_else(|| "`sequence` needs at least one argument".to_string()),
        Op::Get { index } => {
            let [t] = arity::<1>(op, args)?;
            match t {
                Type::Tuple(items) => items.get(*index as usize).cloned().ok_or_else(|| {
                    format!(
                        "index {index} is out of range for a tuple of {}",
                        items.len()
                    )
                }),
                other => Err(format!("`get` needs a tuple, got {other}")),
            }
        }
        Op::Iota { shape } | Op::Fill { shape, .. } => {
            arity::<0>(op, args)?;
            Ok(Tensor(shape.clone()))
        }
        Op::Reshape { shape } => {
            let [t] = arity::<1>(op, args)?;
            if !matches!(t, Tensor(_)) {
                return Err(format!("`reshape` needs a tensor, got {t}"));
            }
            let from = t
                .tensor_elements()
                .ok_or_else(|| format!("{t} has more elements than a u64 counts"))?;
            let to = shape_elements(shape)
                .ok_or_else(|| format!("{shape:?} has more elements than a u64 counts"))?;
            if from != to {
                return Err(format!(
                    "cannot reshape {t} ({from} elements) to {shape:?} ({to} elements)"
                ));
            }
            Ok(Tensor(shape.clone()))
        }
        Op::Transpose => match arity::<1>(op, args)? {
            [Tensor(s)] if s.len() == 2 => Ok(Tensor(vec![s[1], s[0]])),
            [t] => Err(format!("`transpose` needs a 2-D tensor, got {t}")),
        },
        Op::MatMul | Op::NativeMatMul => match arity::<2>(op, args)? {
            [Tensor(a), Tensor(b)] if a.len() == 2 && b.len() == 2 && a[1] == b[0] => {
                Ok(Tensor(vec![a[0], b[1]]))
            }
            [x, y] => Err(format!(
                "`matmul` needs [m,k] and [k,n] tensors, got {x} and {y}"
            )),
        },
        Op::Reduce(r) => match arity::<1>(op, args)? {
            [Tensor(_)] => Ok(Tensor(Vec::new())),
            [t] => Err(format!("`{}` needs a tensor, got {t}", r.name())),
        },
        Op::ToF64 => match arity::<1>(op, args)? {
            [I64] => Ok(F64),
            [t @ Tensor(_)] if t.tensor_elements() == Some(1) => Ok(F64),
            [t] => Err(format!(
                "`to_f64` takes an i64 or a one-element tensor, got {t}"
            )),
        },
        Op::ToI64 => match arity::<1>(op, args)? {
            [F64] => Ok(I64),
            [t] => Err(format!("`to_i64` takes an f64, got {t}")),
        },
        Op::ToTensor => match arity::<1>(op, args)? {
            [F64] => Ok(Tensor(Vec::new())),
            [t] => Err(format!("`to_tensor` takes an f64, got {t}")),
        },
        Op::Concat => match arity::<2>(op, args)? {
            [Str, Str] => Ok(Str),
            [x, y] => Err(format!("`concat` takes two strings, got {x} and {y}")),
        },
        Op::Len => match arity::<1>(op, args)? {
            [Str] => Ok(I64),
            [t] => Err(format!("`len` takes a string, got {t}")),
        },
        Op::ToString => match arity::<1>(op, args)? {
            [I64 | F64] => Ok(Str),
            [t] => Err(format!("`to_string` takes an i64 or f64, got {t}")),
        },
    }
}

/// Result shape of an elementwise op: equal shapes, or one side a `[]` scalar.
pub(crate) fn broadcast(a: &[u32], b: &[u32]) -> Option<Vec<u32>> {
    if a == b || b.is_empty() {
        Some(a.to_vec())
    } else if a.is_empty() {
        Some(b.to_vec())
    } else {
        None
    }
}

fn arity<'a, const N: usize>(op: &Op, args: &[&'a Type]) -> Result<[&'a Type; N], String> {
    <[&Type; N]>::try_from(args).map_err(|_| {
        format!(
            "`{}` takes {N} argument{}, got {}",
            op.name(),
            if N == 1 { "" } else { "s" },
            args.len()
        )
    })
}

/// Kernels the host offers, with their argument and result types.
pub(crate) const KERNELS: [&str; 3] = ["matmul", "softmax", "conv2d"];

/// The result type of kernel `name` on `args`:
/// - `matmul`: `[m, k] × [k, n] → [m, n]`;
/// - `softmax`: any tensor → the same shape (over the last axis);
/// - `conv2d`: input `[h, w]`, filter `[kh, kw]` (no larger) → `[h − kh + 1, w − kw + 1]`
///   (valid cross-correlation, stride 1).
fn kernel_type(name: &str, args: &[&Type]) -> Result<Type, String> {
    use Type::Tensor;
    match (name, args) {
        ("matmul", [Tensor(a), Tensor(b)]) => match (a.as_slice(), b.as_slice()) {
            ([m, k], [k2, n]) if k == k2 => Ok(Tensor(vec![*m, *n])),
            _ => Err(format!(
                "kernel matmul needs [m, k] and [k, n], got {a:?} and {b:?}"
            )),
        },
        ("softmax", [Tensor(a)]) if !a.is_empty() => Ok(Tensor(a.clone())),
        ("conv2d", [Tensor(x), Tensor(f)]) => match (x.as_slice(), f.as_slice()) {
            ([h, w], [kh, kw]) if kh <= h && kw <= w && *kh > 0 && *kw > 0 => {
                Ok(Tensor(vec![h - kh + 1, w - kw + 1]))
            }
            _ => Err(format!(
                "kernel conv2d needs an input [h, w] and a non-empty filter no larger, got {x:?} and {f:?}"
            )),
        },
        (known, _) if KERNELS.contains(&known) => Err(format!(
            "kernel {known} does not take {} arguments of these types",
            args.len()
        )),
        (unknown, _) => Err(format!(
            "unknown kernel {unknown:?}; the host offers {KERNELS:?}"
        )),
    }
}
