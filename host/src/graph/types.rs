//! Value types and the typing rule of every op.
//!
//! Invariant: typing is total and never panics; an ill-typed node gets a message that says
//! what was expected, and the caller attaches the node and a remediation.

use std::fmt;

use graphjit_value::axes;

use super::{BinaryOp, CompareOp, Op, ReduceOp, Scalar, UnaryOp};

/// The static type of a value. Tensor shapes are static: sizes are known before a run; a
/// list's length is not (it is bounded by the run's memory limit).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Type {
    Bool,
    I64,
    F64,
    Str,
    Tensor(Vec<u32>),
    Tuple(Vec<Type>),
    /// `{"list": T}` (format 2)
    List(Box<Type>),
    /// `{"record": {"name": T, ..}}` (format 2): fields sorted by name, names unique.
    Record(Vec<(String, Type)>),
    /// `{"option": T}` (format 2): a `T` or none.
    Option(Box<Type>),
    /// `bytes` (format 2)
    Bytes,
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
            Type::List(item) => write!(f, "list<{item}>"),
            Type::Record(fields) => {
                f.write_str("record{")?;
                for (i, (name, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name:?}: {t}")?;
                }
                f.write_str("}")
            }
            Type::Option(item) => write!(f, "option<{item}>"),
            Type::Bytes => f.write_str("bytes"),
        }
    }
}

impl Type {
    /// True for types whose Rust representation is `Copy` in generated code.
    pub(crate) fn is_copy(&self) -> bool {
        matches!(self, Type::Bool | Type::I64 | Type::F64)
    }

    /// Type nodes in this type: one, plus its parts' (the cost of cloning it).
    pub(crate) fn size(&self) -> u64 {
        match self {
            Type::Tuple(items) => items
                .iter()
                .fold(1u64, |acc, t| acc.saturating_add(t.size())),
            Type::Record(fields) => fields
                .iter()
                .fold(1u64, |acc, (_, t)| acc.saturating_add(t.size())),
            Type::List(item) | Type::Option(item) => item.size().saturating_add(1),
            Type::Bool | Type::I64 | Type::F64 | Type::Str | Type::Tensor(_) | Type::Bytes => 1,
        }
    }

    /// How deep values nest in this type: 0 for a scalar, tensor or bytes, 1 for a tuple,
    /// list, record or option of them.
    pub(crate) fn depth(&self) -> usize {
        match self {
            Type::Tuple(items) => 1 + items.iter().map(Type::depth).max().unwrap_or(0),
            Type::Record(fields) => 1 + fields.iter().map(|(_, t)| t.depth()).max().unwrap_or(0),
            Type::List(item) | Type::Option(item) => 1 + item.depth(),
            Type::Bool | Type::I64 | Type::F64 | Type::Str | Type::Tensor(_) | Type::Bytes => 0,
        }
    }

    /// Whether the type needs format version 2 (a list, record, option or bytes anywhere).
    pub(crate) fn is_v2(&self) -> bool {
        match self {
            Type::List(_) | Type::Record(_) | Type::Option(_) | Type::Bytes => true,
            Type::Tuple(items) => items.iter().any(Type::is_v2),
            Type::Bool | Type::I64 | Type::F64 | Type::Str | Type::Tensor(_) => false,
        }
    }

    /// The JSON schema values of this type are read and written by (`json_parse`,
    /// `json_emit`); `None` for tuples, which JSON does not name.
    pub(crate) fn schema(&self) -> Option<graphjit_value::json::Schema> {
        use graphjit_value::json::Schema;
        Some(match self {
            Type::Bool => Schema::Bool,
            Type::I64 => Schema::I64,
            Type::F64 => Schema::F64,
            Type::Str => Schema::Str,
            Type::Bytes => Schema::Bytes,
            Type::Tensor(shape) => Schema::Tensor(shape.clone()),
            Type::List(item) => Schema::List(Box::new(item.schema()?)),
            Type::Option(item) => Schema::Option(Box::new(item.schema()?)),
            Type::Record(fields) => Schema::Record(
                fields
                    .iter()
                    .map(|(n, t)| Some((n.clone(), t.schema()?)))
                    .collect::<Option<Vec<_>>>()?,
            ),
            Type::Tuple(_) => return None,
        })
    }

    /// The type of field `name` of a record type, with its position.
    pub(crate) fn field(&self, name: &str) -> Option<(usize, &Type)> {
        match self {
            Type::Record(fields) => fields
                .iter()
                .position(|(n, _)| n == name)
                .map(|i| (i, &fields[i].1)),
            _ => None,
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
        | Op::FusedReductions { .. }
        | Op::Map { .. }
        | Op::Filter { .. }
        | Op::Fold { .. }
        | Op::SortBy { .. }
        | Op::GroupBy { .. }
        | Op::Cached { .. }
        | Op::JsonParse
        | Op::None => Err(format!("`{}` is typed from its declaration", op.name())),
        Op::DbExecute { .. } | Op::DbExecuteMany { .. } => Ok(I64),
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
        Op::Binary(b @ (BinaryOp::Min | BinaryOp::Max)) if matches!(args, [Type::List(_)]) => {
            match args {
                [Type::List(item)] if matches!(**item, I64 | F64) => Ok(Type::Option(item.clone())),
                _ => Err(format!(
                    "`{}` of one argument takes a list of i64 or f64, got {}",
                    b.name(),
                    join(args)
                )),
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
                        format!(
                            "shapes {s:?} and {t:?} do not broadcast (aligned at the last \
                             dimension, each pair of dimensions must be equal or one of them 1)"
                        )
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
                        "`clamp` shapes {x:?}, {lo:?} and {hi:?} do not broadcast (aligned at \
                         the last dimension, each dimension equal or 1)"
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
        Op::Get { index: Some(index) } => {
            let [t] = arity::<1>(op, args)?;
            match t {
                Type::Tuple(items) => items.get(*index as usize).cloned().ok_or_else(|| {
                    format!(
                        "index {index} is out of range for a tuple of {}",
                        items.len()
                    )
                }),
                other => Err(format!(
                    "`get` with an \"index\" needs a tuple, got {other}"
                )),
            }
        }
        Op::Get { index: None } => match arity::<2>(op, args)? {
            [Type::List(item), I64] => Ok((**item).clone()),
            [x, y] => Err(format!(
                "`get` takes a list and an i64 position (or a tuple and an \"index\"), got {x} and {y}"
            )),
        },
        Op::List => match args.split_first() {
            Some((first, rest)) if rest.iter().all(|t| t == first) => {
                Ok(Type::List(Box::new((*first).clone())))
            }
            Some(_) => Err(format!(
                "`list` takes arguments of one type, got {}",
                join(args)
            )),
            None => Err(
                "`list` needs at least one argument (write an empty list as a `const` \
                         with its type)"
                    .to_string(),
            ),
        },
        Op::Range => match arity::<2>(op, args)? {
            [I64, I64] => Ok(Type::List(Box::new(I64))),
            [x, y] => Err(format!("`range` takes two i64s, got {x} and {y}")),
        },
        Op::Slice => match arity::<3>(op, args)? {
            [t @ Type::List(_), I64, I64] => Ok(t.clone()),
            [x, y, z] => Err(format!(
                "`slice` takes a list, a start and a length (i64s), got {x}, {y} and {z}"
            )),
        },
        Op::Zip => match arity::<2>(op, args)? {
            [Type::List(a), Type::List(b)] => Ok(Type::List(Box::new(Type::Record(vec![
                ("first".to_string(), (**a).clone()),
                ("second".to_string(), (**b).clone()),
            ])))),
            [x, y] => Err(format!("`zip` takes two lists, got {x} and {y}")),
        },
        Op::JsonEmit => match arity::<1>(op, args)? {
            [t] if t.schema().is_some() => Ok(Str),
            [t] => Err(format!("`json_emit` cannot write {t} (a tuple)")),
        },
        Op::Split => match arity::<2>(op, args)? {
            [Str, Str] => Ok(Type::List(Box::new(Str))),
            [x, y] => Err(format!(
                "`split` takes two strings (text, separator), got {x} and {y}"
            )),
        },
        Op::Join => match arity::<2>(op, args)? {
            [Type::List(item), Str] if **item == Str => Ok(Str),
            [x, y] => Err(format!(
                "`join` takes a list<string> and a separator, got {x} and {y}"
            )),
        },
        Op::Reverse => match arity::<1>(op, args)? {
            [t @ Type::List(_)] => Ok(t.clone()),
            [t] => Err(format!("`reverse` takes a list, got {t}")),
        },
        Op::Any | Op::All => match arity::<1>(op, args)? {
            [Type::List(item)] if **item == Bool => Ok(Bool),
            [t] => Err(format!("`{}` takes a list<bool>, got {t}", op.name())),
        },
        Op::Record { names } => {
            if names.len() != args.len() {
                return Err(format!(
                    "`record` names {} fields for {} arguments",
                    names.len(),
                    args.len()
                ));
            }
            Ok(Type::Record(
                names
                    .iter()
                    .cloned()
                    .zip(args.iter().map(|t| (*t).clone()))
                    .collect(),
            ))
        }
        Op::GetField { name, .. } => match arity::<1>(op, args)? {
            [t] => t
                .field(name)
                .map(|(_, ty)| ty.clone())
                .ok_or_else(|| format!("{t} has no field {name:?}")),
        },
        Op::With { name, .. } => match arity::<2>(op, args)? {
            [t, v] => match t.field(name) {
                Some((_, ty)) if ty == v => Ok(t.clone()),
                Some((_, ty)) => Err(format!("`with` sets field {name:?} of type {ty} to a {v}")),
                None => Err(format!("{t} has no field {name:?}")),
            },
        },
        Op::Some => match arity::<1>(op, args)? {
            [t @ Type::Option(_)] => Err(format!(
                "an option cannot hold an option (`some` of {t}): none and some(none) would \
                 read the same in JSON and SQL"
            )),
            [t] => Ok(Type::Option(Box::new(t.clone()))),
        },
        Op::IsSome => match arity::<1>(op, args)? {
            [Type::Option(_)] => Ok(Bool),
            [t] => Err(format!("`is_some` takes an option, got {t}")),
        },
        Op::UnwrapOr => match arity::<2>(op, args)? {
            [Type::Option(item), d] if **item == *d => Ok(d.clone()),
            [x, y] => Err(format!(
                "`unwrap_or` takes an option<T> and a T, got {x} and {y}"
            )),
        },
        Op::Unwrap => match arity::<1>(op, args)? {
            [Type::Option(item)] => Ok((**item).clone()),
            [t] => Err(format!("`unwrap` takes an option, got {t}")),
        },
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
        Op::Reduce(ReduceOp::Sum) if matches!(args, [Type::List(_)]) => match args {
            [Type::List(item)] if matches!(**item, I64 | F64) => Ok((**item).clone()),
            _ => Err(format!(
                "`sum` takes a list of i64 or f64, got {}",
                join(args)
            )),
        },
        Op::Reduce(r) => match arity::<1>(op, args)? {
            [Tensor(_)] => Ok(Tensor(Vec::new())),
            [t] => Err(format!("`{}` needs a tensor, got {t}", r.name())),
        },
        Op::ReduceAxis {
            op: r,
            axis,
            keepdims,
        } => match arity::<1>(op, args)? {
            [Tensor(s)] => {
                let k = along(r.name(), *axis, s)?;
                Ok(Tensor(axes::reduced_shape(s, k, *keepdims)))
            }
            [t] => Err(format!(
                "`{}` along an axis needs a tensor, got {t}",
                r.name()
            )),
        },
        Op::LayerNorm { axis, .. } => {
            let (x, params) = match args {
                [Tensor(x), rest @ ..] if (1..=2).contains(&rest.len()) => (x, rest),
                _ => {
                    return Err(format!(
                        "`layer_norm` takes a tensor x, a scale and optionally a bias, got {}",
                        join(args)
                    ));
                }
            };
            let k = along("layer_norm", *axis, x)?;
            let block = &x[k..];
            for (name, p) in ["scale", "bias"].iter().zip(params) {
                if !matches!(p, Tensor(s) if s.as_slice() == block) {
                    return Err(format!(
                        "`layer_norm` over the axes {k}.. of {x:?} needs a {name} of shape \
                         {block:?}, got {p}"
                    ));
                }
            }
            Ok(Tensor(x.clone()))
        }
        Op::Softmax { axis, .. } => match arity::<1>(op, args)? {
            [Tensor(s)] => {
                along(op.name(), *axis, s)?;
                Ok(Tensor(s.clone()))
            }
            [t] => Err(format!("`{}` needs a tensor, got {t}", op.name())),
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
            [Type::Bytes, Type::Bytes] => Ok(Type::Bytes),
            [x @ Type::List(_), y] if x == y => Ok(x.clone()),
            [x, y] => Err(format!(
                "`concat` takes two strings, two lists of one type or two bytes, got {x} and {y}"
            )),
        },
        Op::Len => match arity::<1>(op, args)? {
            [Str | Type::List(_) | Type::Bytes] => Ok(I64),
            [t] => Err(format!("`len` takes a string, a list or bytes, got {t}")),
        },
        Op::ToString => match arity::<1>(op, args)? {
            [I64 | F64] => Ok(Str),
            [t] => Err(format!("`to_string` takes an i64 or f64, got {t}")),
        },
    }
}

fn join(args: &[&Type]) -> String {
    let names: Vec<String> = args.iter().map(ToString::to_string).collect();
    names.join(", ")
}

/// Result shape of an elementwise op: NumPy broadcasting (the rule both engines index by).
pub(crate) fn broadcast(a: &[u32], b: &[u32]) -> Option<Vec<u32>> {
    axes::broadcast(a, b)
}

/// The axis `axis` (as written) of a tensor of shape `shape`, for op `name`.
fn along(name: &str, axis: i64, shape: &[u32]) -> Result<usize, String> {
    axes::axis_index(axis, shape.len()).ok_or_else(|| match shape.len() {
        0 => format!("`{name}` along axis {axis} needs a tensor with an axis, got []"),
        rank => format!(
            "`{name}` along axis {axis} of {shape:?}: an axis is -{rank}..{}",
            rank - 1
        ),
    })
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
