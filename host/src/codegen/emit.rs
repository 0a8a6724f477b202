//! One emitter per op: the Rust expression a node's binding gets.
//!
//! Invariant: `Generator::expr` matches every `Op` variant by name (no `_` arm), so a new op
//! without an emitter does not compile; an emitter that meets a type its op has no rule for
//! returns a `CodegenError` at the node (typing should have refused the graph).

use std::fmt::Write as _;

use super::literal::{f64_literal, shape_literal, str_literal};
use super::{At, Generator, Result};
use crate::graph::{BinaryOp, CompareOp, Const, Op, ReduceOp, Scalar, StrOp, Type, UnaryOp};

impl Generator<'_> {
    /// The expression for a node that is not `if`, `loop` or a parameter.
    pub(super) fn expr(&self, at: &At) -> Result<String> {
        let node = at.node;
        match &node.op {
            Op::If { .. } | Op::Loop { .. } | Op::Param => Err(at.error(format!(
                "`{}` is a block, not an expression",
                node.op.name()
            ))),
            Op::Input { .. } => self.input(at),
            Op::Const(c) => Ok(const_expr(c, at.at())),
            Op::Unary(op) => unary_expr(*op, &node.ty, &self.var(at.arg(0)?), at.at())
                .ok_or_else(|| at.no_rule("this type")),
            Op::Binary(op) => self.binary(at, *op),
            Op::Compare(op) => self.compare(at, *op),
            Op::Str(op) => self.string(at, *op),
            Op::Fork => Ok(self.fork(at)),
            Op::Sequence => Ok(self.sequence(at)),
            Op::Get { index } => {
                let tuple = self.var(at.arg(0)?);
                Ok(match node.ty.is_copy() {
                    true => format!("{tuple}.{index}"),
                    false => format!("{tuple}.{index}.clone()"),
                })
            }
            Op::Iota { shape } => Ok(format!(
                "rt::ops::iota(&{}, {})?",
                shape_literal(shape),
                at.at()
            )),
            Op::Fill { shape, value } => Ok(format!(
                "rt::ops::fill(&{}, {:#010x}, {})?",
                shape_literal(shape),
                value.to_bits(),
                at.at()
            )),
            Op::Reshape { shape } => Ok(format!(
                "rt::ops::reshape(&{}, &{}, {})?",
                self.var(at.arg(0)?),
                shape_literal(shape),
                at.at()
            )),
            Op::Transpose => self.call(at, "rt::ops::transpose", 1),
            Op::MatMul => self.call(at, "rt::ops::matmul", 2),
            Op::NativeMatMul => self.call(at, "rt::native::matmul", 2),
            Op::Clamp => self.clamp(at),
            Op::Reduce(op) => {
                let f = match op {
                    ReduceOp::Sum => "rt::ops::sum",
                    ReduceOp::Max => "rt::ops::reduce_max",
                    ReduceOp::Min => "rt::ops::reduce_min",
                    ReduceOp::Mean => "rt::ops::mean",
                };
                self.call(at, f, 1)
            }
            Op::ToF64 => {
                let x = at.arg(0)?;
                match &self.graph.node(x).ty {
                    Type::I64 => Ok(format!("{} as f64", self.var(x))),
                    Type::Tensor(_) => Ok(format!("rt::ops::item(&{})", self.var(x))),
                    _ => Err(at.no_rule("this argument")),
                }
            }
            Op::ToI64 => Ok(format!(
                "rt::ops::to_i64({}, {})?",
                self.var(at.arg(0)?),
                at.at()
            )),
            Op::ToTensor => Ok(format!(
                "rt::ops::scalar_tensor({}, {})?",
                self.var(at.arg(0)?),
                at.at()
            )),
            Op::Concat => Ok(format!(
                "rt::ops::concat(&{}, &{})",
                self.var(at.arg(0)?),
                self.var(at.arg(1)?)
            )),
            Op::Len => Ok(format!("rt::ops::len(&{})", self.var(at.arg(0)?))),
            Op::ToString => {
                let x = at.arg(0)?;
                match &self.graph.node(x).ty {
                    Type::I64 => Ok(format!("rt::ops::i64_to_string({})", self.var(x))),
                    Type::F64 => Ok(format!("rt::ops::f64_to_string({})", self.var(x))),
                    _ => Err(at.no_rule("this argument")),
                }
            }
            Op::DbQuery { .. } | Op::DbExecute { .. } | Op::Http { .. } | Op::Kernel { .. } => {
                self.effect(at)
            }
            Op::Log { level } => self.log(at, level),
            Op::Fused { steps, reduce } => self.fused_call(at, steps, reduce.as_ref()),
            Op::FusedReductions {
                steps,
                outputs,
                shape,
            } => self.fused_reductions(at, steps, outputs, shape),
        }
    }

    /// `f(&a, &b, …, at)?` over the node's first `arity` arguments (tensors by reference).
    /// A string op: `rt::ops::NAME(args)`, strings by reference, with the node for the ops
    /// that can fail (`?`).
    fn string(&self, at: &At, op: StrOp) -> Result<String> {
        let (params, _) = op.signature();
        let mut args = Vec::with_capacity(params.len() + 1);
        for (i, param) in params.iter().enumerate() {
            let var = self.var(at.arg(i)?);
            args.push(match param {
                Scalar::Str => format!("&{var}"),
                Scalar::Bool | Scalar::I64 | Scalar::F64 => var,
            });
        }
        let fallible = matches!(
            op,
            StrOp::Replace | StrOp::Substring | StrOp::ParseI64 | StrOp::ParseF64
        );
        if fallible {
            args.push(at.at().to_string());
        }
        Ok(format!(
            "rt::ops::{}({}){}",
            op.name(),
            args.join(", "),
            if fallible { "?" } else { "" }
        ))
    }

    fn call(&self, at: &At, f: &str, arity: usize) -> Result<String> {
        let mut out = format!("{f}(");
        for i in 0..arity {
            let _ = write!(out, "&{}, ", self.var(at.arg(i)?));
        }
        let _ = write!(out, "{})?", at.at());
        Ok(out)
    }

    /// Input `k` of the graph (inputs cross the boundary sorted by name).
    fn input(&self, at: &At) -> Result<String> {
        let k = self
            .graph
            .inputs
            .iter()
            .position(|&i| i == at.id)
            .ok_or_else(|| at.error("an input node that is not among the graph's inputs".into()))?;
        match &at.node.ty {
            Type::Bool => Ok(format!("inputs.bool({k})?")),
            Type::I64 => Ok(format!("inputs.i64({k})?")),
            Type::F64 => Ok(format!("inputs.f64({k})?")),
            Type::Str => Ok(format!("inputs.string({k})?")),
            Type::Tensor(shape) => Ok(format!("inputs.tensor({k}, &{})?", shape_literal(shape))),
            Type::Tuple(_) => Err(at.no_rule("a tuple")),
        }
    }

    fn binary(&self, at: &At, op: BinaryOp) -> Result<String> {
        let (a, b) = (self.var(at.arg(0)?), self.var(at.arg(1)?));
        binary_expr(op, &at.node.ty, &a, &b, at.at()).ok_or_else(|| at.no_rule("this type"))
    }

    fn compare(&self, at: &At, op: CompareOp) -> Result<String> {
        let symbol = match op {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        };
        Ok(format!(
            "{} {symbol} {}",
            self.var(at.arg(0)?),
            self.var(at.arg(1)?)
        ))
    }

    fn fork(&self, at: &At) -> String {
        let items: Vec<String> = at
            .node
            .args
            .iter()
            .map(|&x| self.owned(x, at.local(x)))
            .collect();
        if items.is_empty() {
            // An empty `fork` is the empty tuple (`(,)` is not Rust).
            "()".to_string()
        } else {
            format!("({},)", items.join(", "))
        }
    }

    fn sequence(&self, at: &At) -> String {
        let Some((&last, before)) = at.node.args.split_last() else {
            return "()".to_string();
        };
        let last = self.owned(last, at.local(last));
        if before.is_empty() {
            return last;
        }
        let touch: Vec<String> = before
            .iter()
            .map(|&x| format!("&{}", self.var(x)))
            .collect();
        format!("{{ let _ = ({},); {last} }}", touch.join(", "))
    }

    /// On tensors: the op's elementwise program as one loop (one allocation, the bits eval
    /// computes); on scalars: the type's own max, then min.
    fn clamp(&self, at: &At) -> Result<String> {
        let node = at.node;
        match &node.ty {
            Type::Tensor(_) => {
                let program = node
                    .op
                    .element_program(node.args.len())
                    .ok_or_else(|| at.no_rule("these arguments"))?;
                self.fused_call(at, &program, None)
            }
            ty => {
                let (x, lo, hi) = (
                    self.var(at.arg(0)?),
                    self.var(at.arg(1)?),
                    self.var(at.arg(2)?),
                );
                let raised = binary_expr(BinaryOp::Max, ty, &x, &lo, at.at());
                raised
                    .and_then(|raised| binary_expr(BinaryOp::Min, ty, &raised, &hi, at.at()))
                    .ok_or_else(|| at.no_rule("this type"))
            }
        }
    }
}

fn const_expr(c: &Const, at: u32) -> String {
    match c {
        Const::Bool(b) => b.to_string(),
        Const::I64(i) => format!("{i}i64"),
        Const::F64(x) => f64_literal(*x),
        Const::Str(s) => format!("alloc::string::String::from({})", str_literal(s)),
        Const::Tensor(t) => {
            let bits: Vec<String> = t
                .data
                .iter()
                .map(|x| format!("{:#010x}", x.to_bits()))
                .collect();
            format!(
                "rt::ops::tensor_from_bits(&{}, &[{}], {at})?",
                shape_literal(&t.shape),
                bits.join(", ")
            )
        }
    }
}

/// A unary op on `a` of type `ty`, or `None` where the op has no rule for the type.
fn unary_expr(op: UnaryOp, ty: &Type, a: &str, at: u32) -> Option<String> {
    Some(match (op, ty) {
        (_, Type::Tensor(_)) => {
            let f = super::fused::unary_f32_fn(op)?;
            format!("rt::ops::map(&{a}, {f}, {at})?")
        }
        (UnaryOp::Not, Type::Bool) => format!("!{a}"),
        (UnaryOp::Neg, Type::I64) => format!("rt::ops::neg_i64({a}, {at})?"),
        (UnaryOp::Abs, Type::I64) => format!("rt::ops::abs_i64({a}, {at})?"),
        (UnaryOp::Neg, Type::F64) => format!("-{a}"),
        (UnaryOp::Abs, Type::F64) => format!("rt::ops::libm::fabs({a})"),
        (UnaryOp::Sqrt, Type::F64) => format!("rt::ops::libm::sqrt({a})"),
        (UnaryOp::Exp, Type::F64) => format!("rt::ops::libm::exp({a})"),
        (UnaryOp::Ln, Type::F64) => format!("rt::ops::libm::log({a})"),
        (UnaryOp::Sin, Type::F64) => format!("rt::ops::libm::sin({a})"),
        (UnaryOp::Cos, Type::F64) => format!("rt::ops::libm::cos({a})"),
        (UnaryOp::Tanh, Type::F64) => format!("rt::ops::libm::tanh({a})"),
        (UnaryOp::Floor, Type::F64) => format!("rt::ops::libm::floor({a})"),
        (UnaryOp::Ceil, Type::F64) => format!("rt::ops::libm::ceil({a})"),
        (
            UnaryOp::Not
            | UnaryOp::Neg
            | UnaryOp::Abs
            | UnaryOp::Sqrt
            | UnaryOp::Exp
            | UnaryOp::Ln
            | UnaryOp::Sin
            | UnaryOp::Cos
            | UnaryOp::Tanh
            | UnaryOp::Floor
            | UnaryOp::Ceil
            | UnaryOp::Relu
            | UnaryOp::Sigmoid,
            _,
        ) => return None,
    })
}

/// A binary op on `a` and `b` giving `ty`, or `None` where the op has no rule for the type.
fn binary_expr(op: BinaryOp, ty: &Type, a: &str, b: &str, at: u32) -> Option<String> {
    Some(match (ty, op) {
        (Type::Tensor(_), _) => {
            let f = super::fused::binary_f32_fn(op)?;
            format!("rt::ops::zip(&{a}, &{b}, {f}, {at})?")
        }
        (Type::I64, BinaryOp::Add) => format!("rt::ops::add_i64({a}, {b}, {at})?"),
        (Type::I64, BinaryOp::Sub) => format!("rt::ops::sub_i64({a}, {b}, {at})?"),
        (Type::I64, BinaryOp::Mul) => format!("rt::ops::mul_i64({a}, {b}, {at})?"),
        (Type::I64, BinaryOp::Div) => format!("rt::ops::div_i64({a}, {b}, {at})?"),
        (Type::I64, BinaryOp::Rem) => format!("rt::ops::rem_i64({a}, {b}, {at})?"),
        (Type::I64, BinaryOp::Min) => format!("rt::ops::min_i64({a}, {b})"),
        (Type::I64, BinaryOp::Max) => format!("rt::ops::max_i64({a}, {b})"),
        (Type::F64, BinaryOp::Add) => format!("{a} + {b}"),
        (Type::F64, BinaryOp::Sub) => format!("{a} - {b}"),
        (Type::F64, BinaryOp::Mul) => format!("{a} * {b}"),
        (Type::F64, BinaryOp::Div) => format!("{a} / {b}"),
        (Type::F64, BinaryOp::Min) => format!("rt::ops::libm::fmin({a}, {b})"),
        (Type::F64, BinaryOp::Max) => format!("rt::ops::libm::fmax({a}, {b})"),
        (Type::F64, BinaryOp::Pow) => format!("rt::ops::libm::pow({a}, {b})"),
        (Type::Bool, BinaryOp::And) => format!("{a} & {b}"),
        (Type::Bool, BinaryOp::Or) => format!("{a} | {b}"),
        (Type::Bool, BinaryOp::Xor) => format!("{a} ^ {b}"),
        (Type::Bool | Type::I64 | Type::F64 | Type::Str | Type::Tuple(_), _) => return None,
    })
}

/// An expression converting owned `expr` of type `ty` into an `rt::Value`.
pub(super) fn value_expr(expr: &str, ty: &Type) -> String {
    match ty {
        Type::Bool => format!("rt::Value::Bool({expr})"),
        Type::I64 => format!("rt::Value::I64({expr})"),
        Type::F64 => format!("rt::Value::F64({expr})"),
        Type::Str => format!("rt::Value::Str({expr})"),
        Type::Tensor(_) => format!("rt::Value::Tensor({expr})"),
        // The empty tuple (an empty `fork`): `()` has no items to read, so no `t`.
        Type::Tuple(items) if items.is_empty() => {
            format!("{{ let () = {expr}; rt::Value::Tuple(alloc::vec![]) }}")
        }
        Type::Tuple(items) => {
            let parts: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(i, t)| value_expr(&format!("t.{i}"), t))
                .collect();
            format!(
                "{{ let t = {expr}; rt::Value::Tuple(alloc::vec![{}]) }}",
                parts.join(", ")
            )
        }
    }
}
