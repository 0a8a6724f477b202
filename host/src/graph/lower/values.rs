//! Declared types and constants: a node's `type` field, type-size limits, and JSON values
//! lowered to exact constants.

use graphjit_value::{Tensor, Value, canonical_f64};

use super::dims::{Sizes, resolve};
use crate::graph::Const;
use crate::graph::error::{GraphError, GraphErrorKind as Kind};
use crate::graph::json::{NodeJson, TypeJson};
use crate::graph::types::{Type, shape_elements};

use super::Lowering;

impl Lowering<'_> {
    pub(super) fn declared_type(&self, json: &NodeJson) -> Result<Type, GraphError> {
        let Some(written) = &json.ty else {
            return Err(GraphError::new(
                Kind::Field,
                format!("`{}` needs a \"type\"", json.op),
                "add \"type\": \"i64\" (or bool, f64, string, {\"tensor\": [dims]})",
            ));
        };
        let ty = type_from_json(written, 0, self.limits.max_depth, self.sizes)?;
        if ty.is_v2() && self.version < 2 {
            return Err(GraphError::new(
                Kind::Version,
                format!("{ty} needs graph format version 2"),
                "write \"version\": 2 (every version 1 graph means the same in version 2)",
            ));
        }
        self.check_type_size(&ty)?;
        Ok(ty)
    }

    pub(super) fn check_type_size(&self, ty: &Type) -> Result<(), GraphError> {
        let elements = match ty {
            Type::Tensor(shape) => shape_elements(shape),
            Type::Tuple(_) | Type::List(_) | Type::Record(_) | Type::Option(_) => {
                // Values nest no deeper than regions do: every stage recurses over a type, and
                // the value encoding refuses nesting past `graphjit_value::MAX_DEPTH`.
                if ty.depth() > self.limits.max_depth {
                    return Err(GraphError::new(
                        Kind::ResourceExceeded,
                        format!("{ty} nests deeper than {}", self.limits.max_depth),
                        "flatten the data: fork values side by side, or use records",
                    ));
                }
                return match ty {
                    Type::Tuple(items) => items.iter().try_for_each(|t| self.check_type_size(t)),
                    Type::Record(fields) => {
                        fields.iter().try_for_each(|(_, t)| self.check_type_size(t))
                    }
                    Type::List(item) | Type::Option(item) => self.check_type_size(item),
                    _ => Ok(()),
                };
            }
            Type::Bool | Type::I64 | Type::F64 | Type::Str | Type::Bytes => return Ok(()),
        };
        match elements {
            Some(n) if n <= self.limits.max_tensor_elements => Ok(()),
            _ => Err(GraphError::new(
                Kind::ResourceExceeded,
                format!(
                    "{ty} has more than {} elements",
                    self.limits.max_tensor_elements
                ),
                "use smaller tensors, or split the work",
            )),
        }
    }

    pub(super) fn constant(
        &mut self,
        value: &serde_json::Value,
        ty: &Type,
    ) -> Result<Const, GraphError> {
        let bad = |what: &str| {
            GraphError::new(
                Kind::Value,
                format!("{value} is not {what}"),
                format!("write a value of type {ty}"),
            )
        };
        Ok(match ty {
            Type::Bool => Const::Bool(value.as_bool().ok_or_else(|| bad("a bool"))?),
            Type::I64 => Const::I64(
                value
                    .as_i64()
                    .ok_or_else(|| bad("an i64 (integers only, within ±2^63)"))?,
            ),
            Type::F64 => Const::F64(json_f64(value).ok_or_else(|| bad("an f64"))?),
            Type::Str => {
                let s = value.as_str().ok_or_else(|| bad("a string"))?;
                if s.len() > self.limits.max_string_bytes {
                    return Err(GraphError::new(
                        Kind::ResourceExceeded,
                        format!(
                            "string of {} bytes exceeds the limit of {}",
                            s.len(),
                            self.limits.max_string_bytes
                        ),
                        "pass long text as an input",
                    ));
                }
                Const::Str(s.to_string())
            }
            Type::Tensor(shape) => {
                let expected = Tensor::element_count(shape).unwrap_or(usize::MAX);
                let items = value
                    .as_array()
                    .ok_or_else(|| bad("a flat array of numbers"))?;
                self.constant_elements = self.constant_elements.saturating_add(items.len());
                if self.constant_elements > self.limits.max_constant_elements {
                    return Err(GraphError::new(
                        Kind::ResourceExceeded,
                        format!(
                            "tensor constants hold more than {} elements in all",
                            self.limits.max_constant_elements
                        ),
                        "build big tensors with iota/fill, or pass them as inputs",
                    ));
                }
                if items.len() != expected {
                    return Err(GraphError::new(
                        Kind::Value,
                        format!(
                            "{ty} needs {expected} elements, the value has {}",
                            items.len()
                        ),
                        "write the elements flat, in row-major order",
                    ));
                }
                let data = items
                    .iter()
                    .map(|v| json_f64(v).map(|x| x as f32))
                    .collect::<Option<Vec<f32>>>()
                    .ok_or_else(|| bad("an array of numbers"))?;
                Const::Tensor(Tensor {
                    shape: shape.clone(),
                    data,
                })
            }
            Type::Tuple(_) => return Err(bad("a constant (tuples are built with fork)")),
            Type::List(_) | Type::Record(_) | Type::Option(_) | Type::Bytes => {
                let value = self.data(value, ty)?;
                Const::Data(value)
            }
        })
    }

    /// A list, record, option or bytes constant: JSON read as the type says
    /// (`values::json_to_value`), within the graph's limits on constants.
    fn data(&mut self, value: &serde_json::Value, ty: &Type) -> Result<Value, GraphError> {
        let value = crate::values::json_to_value(value, ty).map_err(|message| {
            GraphError::new(
                Kind::Value,
                message,
                format!(
                    "write a value of type {ty} (see \"Structured data\" in docs/graph-format.md)"
                ),
            )
        })?;
        let bytes = value.footprint_bytes();
        self.constant_elements = self.constant_elements.saturating_add(bytes / 4);
        if self.constant_elements > self.limits.max_constant_elements
            || bytes > self.limits.max_string_bytes
        {
            return Err(GraphError::new(
                Kind::ResourceExceeded,
                format!("a constant of {bytes} bytes is over the graph's limits on constants"),
                "pass large data as an input",
            ));
        }
        Ok(value)
    }
}

/// A type as written in JSON; `depth` is how deep it sits in the type being read.
fn type_from_json(
    json: &TypeJson,
    depth: usize,
    max_depth: usize,
    sizes: Sizes<'_>,
) -> Result<Type, GraphError> {
    if depth > max_depth {
        return Err(GraphError::new(
            Kind::ResourceExceeded,
            format!("a type nests deeper than {max_depth}"),
            "flatten the data",
        ));
    }
    let inner = |json: &TypeJson| type_from_json(json, depth + 1, max_depth, sizes).map(Box::new);
    Ok(match json {
        TypeJson::Tensor { tensor } => Type::Tensor(resolve(tensor, sizes)?),
        TypeJson::List(list) => Type::List(inner(&list.list)?),
        TypeJson::Option(option) => match *inner(&option.option)? {
            Type::Option(_) => {
                return Err(GraphError::new(
                    Kind::Type,
                    "an option cannot hold an option (none and some(none) would read the same)",
                    "use one option, or a record with a flag",
                ));
            }
            item => Type::Option(Box::new(item)),
        },
        TypeJson::Record(record) => {
            let mut fields = Vec::with_capacity(record.record.0.len());
            for (name, ty) in &record.record.0 {
                fields.push((name.clone(), *inner(ty)?));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            if let Some(pair) = fields.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(GraphError::new(
                    Kind::Type,
                    format!("the record type names field {:?} twice", pair[0].0),
                    "give each field one type",
                ));
            }
            Type::Record(fields)
        }
        TypeJson::Name(name) => match name.as_str() {
            "bool" => Type::Bool,
            "i64" => Type::I64,
            "f64" => Type::F64,
            "string" => Type::Str,
            "bytes" => Type::Bytes,
            other => {
                return Err(GraphError::new(
                    Kind::Type,
                    format!("unknown type {other:?}"),
                    "use bool, i64, f64, string, bytes, {\"tensor\": [dims]}, {\"list\": T}, \
                     {\"record\": {\"name\": T}} or {\"option\": T}",
                ));
            }
        },
    })
}

/// A JSON number, or one of the strings "nan", "inf", "-inf" (JSON has no literal for them).
pub(super) fn json_f64(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => match s.as_str() {
            "nan" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
    .map(canonical_f64)
}

pub(super) fn infer_const_type(value: &serde_json::Value) -> Result<Type, GraphError> {
    match value {
        serde_json::Value::Bool(_) => Ok(Type::Bool),
        serde_json::Value::Number(n) if n.is_i64() => Ok(Type::I64),
        serde_json::Value::Number(_) => Ok(Type::F64),
        serde_json::Value::String(_) => Ok(Type::Str),
        _ => Err(GraphError::new(
            Kind::Field,
            format!("cannot tell the type of constant {value}"),
            "add \"type\" (tensors need {\"tensor\": [dims]})",
        )),
    }
}

pub(super) fn list_types(types: &[Type]) -> String {
    let names: Vec<String> = types.iter().map(Type::to_string).collect();
    format!("({})", names.join(", "))
}
