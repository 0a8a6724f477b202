//! Ops without regions from their JSON name and fields, checked against the op table, and
//! the effect fields' limits.

use crate::graph::error::{GraphError, GraphErrorKind as Kind};
use crate::graph::json::NodeJson;
use crate::graph::ops::Field;
use crate::graph::types::Type;
use crate::graph::{AnswerType, Op, OpKind, OpSpec};
use graphjit_value::effects::{Column, ColumnType};

use super::dims::{Sizes, resolve};
use super::values::json_f64;

/// Ops without regions, from their JSON name and fields.
pub(super) fn simple_op(kind: OpKind, json: &NodeJson, sizes: Sizes<'_>) -> Result<Op, GraphError> {
    let name = kind.spec().name;
    let need_shape = || {
        let written = json.shape.as_ref().ok_or_else(|| {
            GraphError::new(
                Kind::Field,
                format!("`{name}` needs a \"shape\""),
                "add \"shape\": [dims]",
            )
        })?;
        resolve(written, sizes)
    };
    Ok(match kind {
        OpKind::Unary(op) => Op::Unary(op),
        OpKind::Str(op) => Op::Str(op),
        OpKind::Binary(op) => Op::Binary(op),
        OpKind::Compare(op) => Op::Compare(op),
        OpKind::Reduce(op) => match (json.axis, json.keepdims) {
            (None, None) => Op::Reduce(op),
            (Some(axis), keepdims) => Op::ReduceAxis {
                op,
                axis,
                keepdims: keepdims.unwrap_or(false),
            },
            (None, Some(_)) => {
                return Err(GraphError::new(
                    Kind::Field,
                    format!("`{name}` takes \"keepdims\" only with an \"axis\""),
                    "add \"axis\": k, or remove \"keepdims\" (a whole-tensor reduction is [])",
                ));
            }
        },
        OpKind::Fork => Op::Fork,
        OpKind::Sequence => Op::Sequence,
        OpKind::Get => Op::Get { index: json.index },
        OpKind::List => Op::List,
        OpKind::Range => Op::Range,
        OpKind::Slice => Op::Slice,
        OpKind::Reverse => Op::Reverse,
        OpKind::Zip => Op::Zip,
        OpKind::Split => Op::Split,
        OpKind::Join => Op::Join,
        OpKind::JsonEmit => Op::JsonEmit,
        OpKind::Any => Op::Any,
        OpKind::All => Op::All,
        OpKind::Some => Op::Some,
        OpKind::IsSome => Op::IsSome,
        OpKind::UnwrapOr => Op::UnwrapOr,
        OpKind::Unwrap => Op::Unwrap,
        OpKind::Iota => Op::Iota {
            shape: need_shape()?,
        },
        OpKind::Fill => {
            let value = json.value.as_ref().and_then(json_f64).ok_or_else(|| {
                GraphError::new(
                    Kind::Field,
                    "`fill` needs a numeric \"value\"",
                    "add \"value\": 0.5",
                )
            })?;
            Op::Fill {
                shape: need_shape()?,
                value: value as f32,
            }
        }
        OpKind::Reshape => Op::Reshape {
            shape: need_shape()?,
        },
        OpKind::Transpose => Op::Transpose,
        OpKind::MatMul => Op::MatMul,
        OpKind::Clamp => Op::Clamp,
        OpKind::Softmax => Op::Softmax {
            axis: json.axis.unwrap_or(-1),
            log: false,
        },
        OpKind::LogSoftmax => Op::Softmax {
            axis: json.axis.unwrap_or(-1),
            log: true,
        },
        OpKind::LayerNorm => {
            // ONNX's default; rounded to f32, the precision the op computes in.
            let epsilon = json.epsilon.unwrap_or(1e-5) as f32;
            if !(epsilon.is_finite() && epsilon >= 0.0) {
                return Err(GraphError::new(
                    Kind::Field,
                    format!("`layer_norm`'s \"epsilon\" must be a finite f32 ≥ 0, got {epsilon}"),
                    "write \"epsilon\": 1e-5 (the default)",
                ));
            }
            Op::LayerNorm {
                axis: json.axis.unwrap_or(-1),
                epsilon,
            }
        }
        OpKind::ToF64 => Op::ToF64,
        OpKind::ToI64 => Op::ToI64,
        OpKind::ToTensor => Op::ToTensor,
        OpKind::Concat => Op::Concat,
        OpKind::Len => Op::Len,
        OpKind::ToString => Op::ToString,
        OpKind::DbExecute => Op::DbExecute {
            sql: need_text(json, "sql", &json.sql)?,
        },
        OpKind::DbExecuteMany => Op::DbExecuteMany {
            sql: need_text(json, "sql", &json.sql)?,
            fields: json.fields.clone().ok_or_else(|| {
                GraphError::new(
                    Kind::Field,
                    "`db_execute_many` needs \"fields\": the record fields bound to $1, $2, …",
                    "add \"fields\": [\"id\", \"total\"]",
                )
            })?,
        },
        OpKind::Kernel => Op::Kernel {
            name: need_text(json, "kernel", &json.kernel)?,
        },
        OpKind::Log => {
            let level = json.level.clone().unwrap_or_else(|| "info".to_owned());
            if !LOG_LEVELS.contains(&level.as_str()) {
                return Err(GraphError::new(
                    Kind::Field,
                    format!("unknown log level {level:?}"),
                    format!("use one of {LOG_LEVELS:?}"),
                ));
            }
            Op::Log { level }
        }
        // Lowered by `Lowering::node` itself (they need its scopes or a declared type).
        OpKind::Input
        | OpKind::Const
        | OpKind::If
        | OpKind::Loop
        | OpKind::DbQuery
        | OpKind::Http
        | OpKind::Map
        | OpKind::Filter
        | OpKind::Fold
        | OpKind::SortBy
        | OpKind::GroupBy
        | OpKind::Cached
        | OpKind::JsonParse
        | OpKind::Record
        | OpKind::GetField
        | OpKind::With
        | OpKind::None => {
            return Err(GraphError::new(
                Kind::UnknownOp,
                format!("`{name}` reached the generic lowering"),
                "report this as a bug",
            ));
        }
        // Never written: `OpKind::from_name` does not return them.
        OpKind::Param | OpKind::NativeMatMul | OpKind::Fused | OpKind::FusedReductions => {
            return Err(GraphError::new(
                Kind::UnknownOp,
                format!("unknown op {name:?}"),
                "see the op list in docs/graph-format.md",
            ));
        }
    })
}

/// Refuses fields that the node's op does not take, so a misplaced field is never ignored.
pub(super) fn check_fields(spec: &OpSpec, json: &NodeJson) -> Result<(), GraphError> {
    let op = spec.name;
    let present = [
        (Field::Args, json.args.is_some()),
        (Field::Type, json.ty.is_some()),
        (Field::Value, json.value.is_some()),
        (Field::Default, json.default.is_some()),
        (Field::Shape, json.shape.is_some()),
        (Field::Iterations, json.iterations.is_some()),
        (Field::Index, json.index.is_some()),
        (Field::Then, json.then.is_some()),
        (Field::Else, json.otherwise.is_some()),
        (Field::Body, json.body.is_some()),
        (Field::Sql, json.sql.is_some()),
        (Field::Method, json.method.is_some()),
        (Field::Url, json.url.is_some()),
        (Field::Kernel, json.kernel.is_some()),
        (Field::Level, json.level.is_some()),
        (Field::After, json.after.is_some()),
        (Field::Fields, json.fields.is_some()),
        (Field::Which, json.field.is_some()),
        (Field::Headers, json.headers.is_some()),
        (Field::Response, json.response.is_some()),
        (Field::Key, json.key.is_some()),
        (Field::TtlMs, json.ttl_ms.is_some()),
        (Field::Axis, json.axis.is_some()),
        (Field::Keepdims, json.keepdims.is_some()),
        (Field::Epsilon, json.epsilon.is_some()),
    ];
    match present
        .iter()
        .find(|(field, here)| *here && !spec.fields.contains(field))
    {
        Some((field, _)) => {
            let allowed: Vec<&str> = spec.fields.iter().map(|f| f.name()).collect();
            let field = field.name();
            Err(GraphError::new(
                Kind::Field,
                format!("`{op}` does not take the field {field:?}"),
                format!("remove {field:?}; `{op}` takes {allowed:?}"),
            ))
        }
        None => Ok(()),
    }
}

/// Levels a `log` node may use.
pub(super) const LOG_LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];

/// The longest SQL, URL, method or kernel name a graph may hold in one field.
pub(super) const MAX_EFFECT_TEXT: usize = 64 * 1024;

/// A required text field of an effect node.
pub(super) fn need_text(
    json: &NodeJson,
    field: &str,
    value: &Option<String>,
) -> Result<String, GraphError> {
    let text = value.clone().ok_or_else(|| {
        GraphError::new(
            Kind::Field,
            format!("`{}` needs a {field:?}", json.op),
            format!("add \"{field}\": \"...\""),
        )
    })?;
    if text.len() > MAX_EFFECT_TEXT {
        return Err(GraphError::new(
            Kind::ResourceExceeded,
            format!(
                "{field:?} is {} bytes; the limit is {MAX_EFFECT_TEXT}",
                text.len()
            ),
            "shorten it",
        ));
    }
    Ok(text)
}

/// The answer type an effect node declares.
pub(super) fn answer_type(ty: &Type) -> Result<AnswerType, GraphError> {
    Ok(match ty {
        Type::Bool => AnswerType::Bool,
        Type::I64 => AnswerType::I64,
        Type::F64 => AnswerType::F64,
        Type::Str => AnswerType::Str,
        Type::Tensor(shape) if shape.len() <= 2 => AnswerType::Tensor(shape.clone()),
        Type::List(item) if matches!(**item, Type::Record(_)) => {
            let Type::Record(fields) = &**item else {
                return Err(GraphError::new(
                    Kind::Type,
                    "rows of a record",
                    "report this",
                ));
            };
            let columns = fields
                .iter()
                .map(|(name, t)| {
                    let (t, nullable) = match t {
                        Type::Option(inner) => (&**inner, true),
                        t => (t, false),
                    };
                    let ty = match t {
                        Type::Bool => ColumnType::Bool,
                        Type::I64 => ColumnType::I64,
                        Type::F64 => ColumnType::F64,
                        Type::Str => ColumnType::Str,
                        Type::Bytes => ColumnType::Bytes,
                        other => {
                            return Err(GraphError::new(
                                Kind::Type,
                                format!("column {name:?} cannot be {other}"),
                                "give each field a scalar type (bool, i64, f64, string, bytes), \
                                 or an option of one for a column that may be NULL",
                            ));
                        }
                    };
                    Ok(Column {
                        name: name.clone(),
                        ty,
                        nullable,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            AnswerType::Rows(columns)
        }
        other => {
            return Err(GraphError::new(
                Kind::Type,
                format!("an effect cannot answer {other}"),
                "use bool, i64, f64, string, a tensor of rank 0 to 2, or (for db_query) a \
                 list of records whose fields are the columns",
            ));
        }
    })
}

/// Argument checks of effect nodes that `infer` cannot express (SQL parameters are scalars,
/// bytes, or options of them: none is NULL).
pub(super) fn check_effect(op: &Op, args: &[Type]) -> Result<(), GraphError> {
    fn parameter(t: &Type) -> bool {
        match t {
            Type::Bool | Type::I64 | Type::F64 | Type::Str | Type::Bytes => true,
            Type::Option(item) => parameter(item),
            _ => false,
        }
    }
    if let Op::DbExecuteMany { fields, .. } = op {
        let item = match args {
            [Type::List(item)] => &**item,
            _ => {
                return Err(GraphError::new(
                    Kind::Type,
                    "`db_execute_many` takes one list of records",
                    "pass a list whose records hold the statement's parameters",
                ));
            }
        };
        for name in fields {
            match item.field(name) {
                Some((_, t)) if parameter(t) => {}
                Some((_, t)) => {
                    return Err(GraphError::new(
                        Kind::Type,
                        format!("field {name:?} is {t}, which cannot be an SQL parameter"),
                        "bind bool, i64, f64, string or bytes fields (or options of them)",
                    ));
                }
                None => {
                    return Err(GraphError::new(
                        Kind::Type,
                        format!("the list's items ({item}) have no field {name:?}"),
                        "name fields of the records in \"fields\"",
                    ));
                }
            }
        }
        return Ok(());
    }
    if let Op::DbQuery { .. } | Op::DbExecute { .. } = op
        && let Some(bad) = args.iter().find(|t| !parameter(t))
    {
        return Err(GraphError::new(
            Kind::Type,
            format!("an SQL parameter cannot be {bad}"),
            "pass bool, i64, f64, string or bytes values (or options of them, for NULL)",
        ));
    }
    Ok(())
}
