//! One emitter per op: the Rust expression a node's binding gets.
//!
//! Invariant: `Generator::expr` matches every `Op` variant by name (no `_` arm), so a new op
//! without an emitter does not compile; an emitter that meets a type its op has no rule for
//! returns a `CodegenError` at the node (typing should have refused the graph).

use std::fmt::Write as _;

use super::literal::{data_literal, rust_type, shape_literal, str_literal};
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
            Op::Const(c) => {
                const_expr(c, &node.ty, at.at()).ok_or_else(|| at.no_rule("its constant"))
            }
            Op::Unary(op) => unary_expr(*op, &node.ty, &self.var(at.arg(0)?), at.at())
                .ok_or_else(|| at.no_rule("this type")),
            Op::Binary(op @ (BinaryOp::Min | BinaryOp::Max)) if node.args.len() == 1 => {
                let f = if *op == BinaryOp::Min { "min" } else { "max" };
                Ok(format!(
                    "rt::data::{f}_{}(&{})",
                    self.number_list(at)?,
                    self.var(at.arg(0)?)
                ))
            }
            Op::Binary(op) => self.binary(at, *op),
            Op::Compare(op) => self.compare(at, *op),
            Op::Str(op) => self.string(at, *op),
            Op::Fork => Ok(self.fork(at)),
            Op::Sequence => Ok(self.sequence(at)),
            Op::Get { index: Some(index) } | Op::GetField { index, .. } => {
                let tuple = self.var(at.arg(0)?);
                Ok(match node.ty.is_copy() {
                    true => format!("{tuple}.{index}"),
                    false => format!("{tuple}.{index}.clone()"),
                })
            }
            Op::Get { index: None } => Ok(format!(
                "rt::data::get(&{}, {}, {})?",
                self.var(at.arg(0)?),
                self.var(at.arg(1)?),
                at.at()
            )),
            Op::List => {
                let items: Vec<String> = node
                    .args
                    .iter()
                    .map(|&x| self.owned(x, at.local(x)))
                    .collect();
                Ok(format!(
                    "rt::data::list_of([{}], {})?",
                    items.join(", "),
                    at.at()
                ))
            }
            Op::Range => Ok(format!(
                "rt::data::range({}, {}, {})?",
                self.var(at.arg(0)?),
                self.var(at.arg(1)?),
                at.at()
            )),
            Op::Slice => Ok(format!(
                "rt::data::slice(&{}, {}, {}, {})?",
                self.var(at.arg(0)?),
                self.var(at.arg(1)?),
                self.var(at.arg(2)?),
                at.at()
            )),
            Op::Reverse => Ok(format!(
                "rt::data::reverse(&{}, {})?",
                self.var(at.arg(0)?),
                at.at()
            )),
            Op::Any => Ok(format!("rt::data::any(&{})", self.var(at.arg(0)?))),
            Op::All => Ok(format!("rt::data::all(&{})", self.var(at.arg(0)?))),
            Op::Record { .. } => Ok(self.fork(at)),
            Op::With { index, .. } => {
                let record = at.arg(0)?;
                let value = at.arg(1)?;
                Ok(format!(
                    "{{ let mut r = {}; r.{index} = {}; r }}",
                    self.owned(record, at.local(record)),
                    self.owned(value, at.local(value))
                ))
            }
            Op::Some => {
                let x = at.arg(0)?;
                Ok(format!("Some({})", self.owned(x, at.local(x))))
            }
            Op::None => Ok(format!(
                "None::<{}>",
                match &node.ty {
                    Type::Option(item) => rust_type(item),
                    _ => return Err(at.no_rule("a non-option")),
                }
            )),
            Op::IsSome => Ok(format!("{}.is_some()", self.var(at.arg(0)?))),
            Op::UnwrapOr => {
                let (x, d) = (at.arg(0)?, at.arg(1)?);
                Ok(format!(
                    "match {} {{ Some(v) => v, None => {} }}",
                    self.owned(x, at.local(x)),
                    self.owned(d, at.local(d))
                ))
            }
            Op::Unwrap => {
                let x = at.arg(0)?;
                Ok(format!(
                    "rt::data::unwrap({}, {})?",
                    self.owned(x, at.local(x)),
                    at.at()
                ))
            }
            Op::Zip => Ok(format!(
                "rt::data::zip(&{}, &{}, {})?",
                self.var(at.arg(0)?),
                self.var(at.arg(1)?),
                at.at()
            )),
            Op::Split => Ok(format!(
                "rt::data::split(&{}, &{}, {})?",
                self.var(at.arg(0)?),
                self.var(at.arg(1)?),
                at.at()
            )),
            Op::Join => Ok(format!(
                "rt::data::join(&{}, &{}, {})?",
                self.var(at.arg(0)?),
                self.var(at.arg(1)?),
                at.at()
            )),
            Op::JsonParse => {
                let schema = node
                    .ty
                    .schema()
                    .ok_or_else(|| at.no_rule("a type JSON does not name"))?;
                Ok(format!(
                    "{{ let v0 = rt::data::json_parse(&{}, &{}, {})?; {} }}",
                    self.var(at.arg(0)?),
                    schema_literal(&schema),
                    at.at(),
                    read_expr("v0", &node.ty, 1).ok_or_else(|| at.no_rule("a tuple"))?
                ))
            }
            Op::JsonEmit => {
                let x = at.arg(0)?;
                let ty = &self.graph.node(x).ty;
                Ok(format!(
                    "rt::data::json_emit(&{}, {})?",
                    value_expr(&self.owned(x, at.local(x)), ty),
                    at.at()
                ))
            }
            Op::Map { .. }
            | Op::Filter { .. }
            | Op::Fold { .. }
            | Op::SortBy { .. }
            | Op::GroupBy { .. }
            | Op::Cached { .. } => Err(at.error(format!(
                "`{}` is a block, not an expression",
                node.op.name()
            ))),
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
            Op::Reduce(ReduceOp::Sum) if matches!(node.ty, Type::I64) => Ok(format!(
                "rt::data::sum_i64(&{}, {})?",
                self.var(at.arg(0)?),
                at.at()
            )),
            Op::Reduce(ReduceOp::Sum) if matches!(node.ty, Type::F64) => {
                Ok(format!("rt::data::sum_f64(&{})", self.var(at.arg(0)?)))
            }
            Op::Reduce(op) => {
                let f = match op {
                    ReduceOp::Sum => "rt::ops::sum",
                    ReduceOp::Max => "rt::ops::reduce_max",
                    ReduceOp::Min => "rt::ops::reduce_min",
                    ReduceOp::Mean => "rt::ops::mean",
                };
                self.call(at, f, 1)
            }
            // `keepdims` is in the result's shape.
            Op::ReduceAxis { op, axis, .. } => {
                let (a, k) = self.along(at, *axis)?;
                // The guest's `Reduction` and `AxisReduce` name their members alike.
                let kind = super::fused::reduction_kind(*op);
                let Type::Tensor(shape) = &node.ty else {
                    return Err(at.no_rule("a result that is not a tensor"));
                };
                Ok(format!(
                    "rt::ops::reduce_axis(&{a}, {k}, &{}, rt::ops::AxisReduce::{kind}, {})?",
                    shape_literal(shape),
                    at.at()
                ))
            }
            Op::LayerNorm { axis, epsilon } => {
                let (x, k) = self.along(at, *axis)?;
                let scale = self.var(at.arg(1)?);
                let bias = match node.args.get(2) {
                    Some(&b) => format!("Some(&{})", self.var(b)),
                    None => "None".to_owned(),
                };
                Ok(format!(
                    "rt::ops::layer_norm(&{x}, &{scale}, {bias}, {k}, {:#010x}, {})?",
                    epsilon.to_bits(),
                    at.at()
                ))
            }
            Op::Softmax { axis, log } => {
                let (a, k) = self.along(at, *axis)?;
                Ok(format!("rt::ops::softmax(&{a}, {k}, {log}, {})?", at.at()))
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
            Op::Concat if node.ty == Type::Str => Ok(format!(
                "rt::ops::concat(&{}, &{})",
                self.var(at.arg(0)?),
                self.var(at.arg(1)?)
            )),
            Op::Concat => Ok(format!(
                "rt::data::concat(&{}, &{}, {})?",
                self.var(at.arg(0)?),
                self.var(at.arg(1)?),
                at.at()
            )),
            Op::Len => {
                let x = at.arg(0)?;
                let module = match self.graph.node(x).ty {
                    Type::Str => "ops",
                    _ => "data",
                };
                Ok(format!("rt::{module}::len(&{})", self.var(x)))
            }
            Op::ToString => {
                let x = at.arg(0)?;
                match &self.graph.node(x).ty {
                    Type::I64 => Ok(format!("rt::ops::i64_to_string({})", self.var(x))),
                    Type::F64 => Ok(format!("rt::ops::f64_to_string({})", self.var(x))),
                    _ => Err(at.no_rule("this argument")),
                }
            }
            Op::DbQuery { .. }
            | Op::DbExecute { .. }
            | Op::DbExecuteMany { .. }
            | Op::Http { .. }
            | Op::Kernel { .. } => self.effect(at),
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
            ty @ (Type::List(_) | Type::Record(_) | Type::Option(_) | Type::Bytes) => Ok(format!(
                "{{ let v0 = inputs.value({k})?; {} }}",
                read_expr("v0", ty, 1).ok_or_else(|| at.no_rule("a tuple"))?
            )),
        }
    }

    /// `i64` or `f64`: the element type of the number list argument 0.
    fn number_list(&self, at: &At) -> Result<&'static str> {
        match &self.graph.node(at.arg(0)?).ty {
            Type::List(item) if **item == Type::I64 => Ok("i64"),
            Type::List(item) if **item == Type::F64 => Ok("f64"),
            _ => Err(at.no_rule("this list")),
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

    /// The variable of a node's tensor argument and axis `axis` (as written) of it, as an
    /// index.
    fn along(&self, at: &At, axis: i64) -> Result<(String, usize)> {
        let a = at.arg(0)?;
        let Type::Tensor(shape) = &self.graph.node(a).ty else {
            return Err(at.no_rule("an argument that is not a tensor"));
        };
        let k = graphjit_value::axes::axis_index(axis, shape.len())
            .ok_or_else(|| at.no_rule("an axis the tensor lacks"))?;
        Ok((self.var(a), k))
    }

    /// On tensors: the op's elementwise program as one loop (one allocation, the bits eval
    /// computes), or, where a bound broadcasts beyond `[]`, `max` then `min` as two zips; on
    /// scalars: the type's own max, then min.
    fn clamp(&self, at: &At) -> Result<String> {
        let node = at.node;
        let broadcasts = |shape: &Vec<u32>| {
            at.node.args.iter().skip(1).any(|&b| {
                let Type::Tensor(s) = &self.graph.node(b).ty else {
                    return false;
                };
                !s.is_empty() && s != shape
            }) || matches!(at.node.args.first().map(|&x| &self.graph.node(x).ty),
                Some(Type::Tensor(s)) if s != shape)
        };
        match &node.ty {
            Type::Tensor(shape) if broadcasts(shape) => {
                let (x, lo, hi) = (
                    self.var(at.arg(0)?),
                    self.var(at.arg(1)?),
                    self.var(at.arg(2)?),
                );
                let (max, min) = (
                    super::fused::binary_f32_fn(BinaryOp::Max),
                    super::fused::binary_f32_fn(BinaryOp::Min),
                );
                let (Some(max), Some(min)) = (max, min) else {
                    return Err(at.no_rule("tensors"));
                };
                let n = at.at();
                Ok(format!(
                    "rt::ops::zip(&rt::ops::zip(&{x}, &{lo}, {max}, {n})?, &{hi}, {min}, {n})?"
                ))
            }
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

/// The expression for constant `c` of type `ty` (`None`: a constant of another type, which
/// lowering rules out).
fn const_expr(c: &Const, ty: &Type, at: u32) -> Option<String> {
    data_literal(&crate::eval::const_value(c), ty, at)
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
        (
            Type::Bool
            | Type::I64
            | Type::F64
            | Type::Str
            | Type::Tuple(_)
            | Type::List(_)
            | Type::Record(_)
            | Type::Option(_)
            | Type::Bytes,
            _,
        ) => return None,
    })
}

/// A `rt::json::Schema` expression.
pub(super) fn schema_literal(schema: &graphjit_value::json::Schema) -> String {
    use graphjit_value::json::Schema;
    match schema {
        Schema::Bool => "rt::json::Schema::Bool".into(),
        Schema::I64 => "rt::json::Schema::I64".into(),
        Schema::F64 => "rt::json::Schema::F64".into(),
        Schema::Str => "rt::json::Schema::Str".into(),
        Schema::Bytes => "rt::json::Schema::Bytes".into(),
        Schema::Tensor(shape) => format!(
            "rt::json::Schema::Tensor(alloc::vec::Vec::from({}))",
            shape_literal(shape)
        ),
        Schema::List(item) => format!(
            "rt::json::Schema::List(alloc::boxed::Box::new({}))",
            schema_literal(item)
        ),
        Schema::Option(item) => format!(
            "rt::json::Schema::Option(alloc::boxed::Box::new({}))",
            schema_literal(item)
        ),
        Schema::Record(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|(n, s)| {
                    format!(
                        "(alloc::string::String::from({}), {})",
                        str_literal(n),
                        schema_literal(s)
                    )
                })
                .collect();
            format!(
                "rt::json::Schema::Record(alloc::vec![{}])",
                parts.join(", ")
            )
        }
    }
}

/// An expression reading the `rt::Value` named `v` as the Rust of type `ty` (`?` on a
/// mismatch, a host bug); `depth` keeps the names of nested closures apart.
pub(super) fn read_expr(v: &str, ty: &Type, depth: usize) -> Option<String> {
    let e = format!("v{depth}");
    Some(match ty {
        Type::Bool => format!("rt::data::read_bool({v})?"),
        Type::I64 => format!("rt::data::read_i64({v})?"),
        Type::F64 => format!("rt::data::read_f64({v})?"),
        Type::Str => format!("rt::data::read_string({v})?"),
        Type::Bytes => format!("rt::data::read_bytes({v})?"),
        Type::Tensor(shape) => format!("rt::data::read_tensor({v}, &{})?", shape_literal(shape)),
        Type::List(item) => format!(
            "rt::data::read_list({v}, |{e}: rt::Value| -> Result<{}, rt::RunError> {{ Ok({}) }})?",
            rust_type(item),
            read_expr(&e, item, depth + 1)?
        ),
        Type::Option(item) => format!(
            "rt::data::read_option({v}, |{e}: rt::Value| -> Result<{}, rt::RunError> {{ Ok({}) }})?",
            rust_type(item),
            read_expr(&e, item, depth + 1)?
        ),
        // Tuples never cross as data (no input, answer or JSON has one).
        Type::Tuple(_) => return None,
        Type::Record(fields) if fields.is_empty() => {
            format!("{{ let [] = rt::data::read_record({v}, [])?; () }}")
        }
        Type::Record(fields) => {
            let names: Vec<String> = fields.iter().map(|(n, _)| str_literal(n)).collect();
            let vars: Vec<String> = (0..fields.len()).map(|i| format!("f{depth}_{i}")).collect();
            let reads = fields
                .iter()
                .zip(&vars)
                .map(|((_, t), var)| read_expr(var, t, depth + 1))
                .collect::<Option<Vec<String>>>()?;
            format!(
                "{{ let [{}] = rt::data::read_record({v}, [{}])?; ({},) }}",
                vars.join(", "),
                names.join(", "),
                reads.join(", ")
            )
        }
    })
}

/// An expression converting owned `expr` of type `ty` into an `rt::Value`.
pub(super) fn value_expr(expr: &str, ty: &Type) -> String {
    value_expr_at(expr, ty, 0)
}

fn value_expr_at(expr: &str, ty: &Type, depth: usize) -> String {
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
            let t = format!("t{depth}");
            let parts: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(i, ty)| value_expr_at(&format!("{t}.{i}"), ty, depth + 1))
                .collect();
            format!(
                "{{ let {t} = {expr}; rt::Value::Tuple(alloc::vec![{}]) }}",
                parts.join(", ")
            )
        }
        Type::Bytes => format!("rt::Value::Bytes({expr})"),
        Type::List(item) => {
            let e = format!("e{depth}");
            format!(
                "rt::data::write_list({expr}, |{e}| -> Result<rt::Value, rt::RunError> {{ Ok({}) }})?",
                value_expr_at(&e, item, depth + 1)
            )
        }
        Type::Option(item) => {
            let e = format!("e{depth}");
            format!(
                "match {expr} {{ Some({e}) => rt::Value::Option(Some(alloc::boxed::Box::new({}))), None => rt::Value::Option(None) }}",
                value_expr_at(&e, item, depth + 1)
            )
        }
        Type::Record(fields) if fields.is_empty() => {
            format!("{{ let () = {expr}; rt::data::write_record([], []) }}")
        }
        Type::Record(fields) => {
            let r = format!("r{depth}");
            let names: Vec<String> = fields.iter().map(|(n, _)| str_literal(n)).collect();
            let parts: Vec<String> = fields
                .iter()
                .enumerate()
                .map(|(i, (_, ty))| value_expr_at(&format!("{r}.{i}"), ty, depth + 1))
                .collect();
            format!(
                "{{ let {r} = {expr}; rt::data::write_record([{}], [{}]) }}",
                names.join(", "),
                parts.join(", ")
            )
        }
    }
}
