//! Values at the user's edge: JSON for outputs, typed parsing for `--input NAME=VALUE`.
//!
//! Invariants: conversions never panic; floats that JSON cannot spell (NaN, ±inf) are written
//! as the strings "nan", "inf", "-inf" and read back the same way, so output survives a round
//! trip through JSON exactly.

use graphjit_value::{Tensor, Value};
use serde_json::json;

use crate::graph::Type;

/// JSON for an output value: numbers, booleans, strings; tensors as `{"shape", "data"}`;
/// tuples and lists as arrays; records as objects; none as `null`, an option's value as the
/// value; bytes as an array of numbers.
pub fn value_to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Bool(b) => json!(b),
        Value::I64(i) => json!(i),
        Value::F64(x) => float_json(*x),
        Value::Str(s) => json!(s),
        Value::Tensor(t) => json!({
            "shape": t.shape,
            "data": t.data.iter().map(|&x| float_json(f64::from(x))).collect::<Vec<_>>(),
        }),
        Value::Tuple(items) | Value::List(items) => {
            serde_json::Value::Array(items.iter().map(value_to_json).collect())
        }
        Value::Record(fields) => serde_json::Value::Object(
            fields
                .iter()
                .map(|(name, v)| (name.clone(), value_to_json(v)))
                .collect(),
        ),
        Value::Option(None) => serde_json::Value::Null,
        Value::Option(Some(v)) => value_to_json(v),
        Value::Bytes(b) => json!(b),
    }
}

fn float_json(x: f64) -> serde_json::Value {
    if x.is_nan() {
        json!("nan")
    } else if x.is_infinite() {
        json!(if x > 0.0 { "inf" } else { "-inf" })
    } else {
        json!(x)
    }
}

/// Human-readable text for a value (the CLI's non-JSON output).
pub fn value_to_text(value: &Value) -> String {
    match value {
        Value::Str(s) => format!("{s:?}"),
        Value::Tensor(t) if t.data.len() > 16 => {
            let head: Vec<String> = t.data.iter().take(8).map(|x| format!("{x}")).collect();
            format!(
                "tensor{:?} [{}, … {} more]",
                t.shape,
                head.join(", "),
                t.data.len() - 8
            )
        }
        Value::Tensor(t) => {
            let all: Vec<String> = t.data.iter().map(|x| format!("{x}")).collect();
            format!("tensor{:?} [{}]", t.shape, all.join(", "))
        }
        Value::Tuple(items) => {
            let parts: Vec<String> = items.iter().map(value_to_text).collect();
            format!("({})", parts.join(", "))
        }
        Value::Option(None) => "none".to_string(),
        other => value_to_json(other).to_string(),
    }
}

/// Parses command-line text as a value of type `ty`: `42`, `1.5`, `nan`, `true`, any text for
/// a string, a JSON array of numbers (row-major) for a tensor, JSON for lists, records,
/// options and bytes (as [`json_to_value`] reads it).
pub(crate) fn parse_input(text: &str, ty: &Type) -> Result<Value, String> {
    let bad = || format!("{text:?} is not a valid {ty}");
    Ok(match ty {
        Type::Bool => Value::Bool(text.parse().map_err(|_| bad())?),
        Type::I64 => Value::I64(text.trim().parse().map_err(|_| bad())?),
        Type::F64 => Value::F64(parse_f64(text.trim()).ok_or_else(bad)?),
        Type::Str => Value::Str(text.to_string()),
        Type::Tensor(shape) => {
            let json: serde_json::Value = serde_json::from_str(text).map_err(|_| bad())?;
            return json_to_value(&json, ty)
                .map_err(|e| format!("{e} (a flat JSON array of numbers, shape {shape:?})"));
        }
        Type::Tuple(_) => return Err(format!("inputs cannot be tuples ({ty})")),
        Type::List(_) | Type::Record(_) | Type::Option(_) | Type::Bytes => {
            let json: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("{text:?} is not JSON: {e}"))?;
            return json_to_value(&json, ty);
        }
    })
}

/// A tensor of any shape from command-line text, for an input whose shape names dims: nested
/// arrays of numbers (`[[1, 2], [3, 4]]`, rectangular) or `{"shape": [..], "data": [..]}`
/// (what `--json` prints).
pub(crate) fn parse_tensor(text: &str) -> Result<Value, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{text:?} is not JSON: {e}"))?;
    json_tensor(&json).map(Value::Tensor)
}

/// [`parse_tensor`] of a JSON value.
pub(crate) fn json_tensor(json: &serde_json::Value) -> Result<Tensor, String> {
    let number = |v: &serde_json::Value| json_number(v).map(|x| x as f32);
    if let Some(object) = json.as_object() {
        let (Some(shape), Some(data), 2) = (object.get("shape"), object.get("data"), object.len())
        else {
            return Err("a tensor object has exactly \"shape\" and \"data\"".to_owned());
        };
        let shape: Vec<u32> = shape
            .as_array()
            .and_then(|dims| {
                dims.iter()
                    .map(|d| d.as_u64().and_then(|d| u32::try_from(d).ok()))
                    .collect()
            })
            .ok_or("a tensor's \"shape\" is an array of sizes")?;
        let data: Vec<f32> = data
            .as_array()
            .and_then(|items| items.iter().map(number).collect())
            .ok_or("a tensor's \"data\" is an array of numbers")?;
        if Tensor::element_count(&shape) != Some(data.len()) {
            return Err(format!(
                "a tensor of shape {shape:?} has {} elements, not {}",
                Tensor::element_count(&shape).map_or("too many".to_owned(), |n| n.to_string()),
                data.len()
            ));
        }
        return Ok(Tensor { shape, data });
    }
    // Nested arrays: the shape is read down the first elements, then every element checked.
    let mut shape = Vec::new();
    let mut probe = json;
    while let Some(items) = probe.as_array() {
        let len = u32::try_from(items.len()).map_err(|_| "a tensor axis is too long")?;
        shape.push(len);
        if shape.len() > 32 {
            return Err("a tensor nests deeper than 32 axes".to_owned());
        }
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    if shape.is_empty() {
        return Err(format!(
            "{} is not a tensor (nested arrays of numbers)",
            preview(json)
        ));
    }
    let mut data = Vec::new();
    flatten(json, &shape, &mut data, &number)?;
    Ok(Tensor { shape, data })
}

fn flatten(
    json: &serde_json::Value,
    shape: &[u32],
    out: &mut Vec<f32>,
    number: &dyn Fn(&serde_json::Value) -> Option<f32>,
) -> Result<(), String> {
    match shape.split_first() {
        None => {
            out.push(number(json).ok_or_else(|| format!("{} is not a number", preview(json)))?);
            Ok(())
        }
        Some((&len, rest)) => {
            let items = json
                .as_array()
                .filter(|items| items.len() == len as usize)
                .ok_or_else(|| {
                    format!("the nested arrays are not rectangular (expected {len} items)")
                })?;
            items
                .iter()
                .try_for_each(|item| flatten(item, rest, out, number))
        }
    }
}

/// A JSON number, or `"nan"`/`"inf"`/`"-inf"` (JSON has no literal for them).
fn json_number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => parse_f64(s),
        _ => None,
    }
}

fn parse_f64(text: &str) -> Option<f64> {
    match text {
        "nan" | "NaN" => Some(f64::NAN),
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok().filter(|x: &f64| x.is_finite()),
    }
}

/// Reads a JSON value as a value of type `ty` (library callers' inputs, tensors on the CLI).
pub(crate) fn json_to_value(json: &serde_json::Value, ty: &Type) -> Result<Value, String> {
    let number = json_number;
    let bad = || format!("{json} is not a valid {ty}");
    Ok(match ty {
        Type::Bool => Value::Bool(json.as_bool().ok_or_else(bad)?),
        Type::I64 => Value::I64(json.as_i64().ok_or_else(bad)?),
        Type::F64 => Value::F64(number(json).ok_or_else(bad)?),
        Type::Str => Value::Str(json.as_str().ok_or_else(bad)?.to_string()),
        Type::Tensor(shape) => {
            let items = json.as_array().ok_or_else(bad)?;
            let expected = Tensor::element_count(shape).unwrap_or(usize::MAX);
            if items.len() != expected {
                return Err(format!(
                    "tensor{shape:?} needs {expected} elements, got {}",
                    items.len()
                ));
            }
            let data = items
                .iter()
                .map(|v| number(v).map(|x| x as f32))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(bad)?;
            Value::Tensor(Tensor {
                shape: shape.clone(),
                data,
            })
        }
        Type::Tuple(items) => {
            let parts = json.as_array().ok_or_else(bad)?;
            if parts.len() != items.len() {
                return Err(bad());
            }
            Value::Tuple(
                parts
                    .iter()
                    .zip(items)
                    .map(|(j, t)| json_to_value(j, t))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::List(item) => Value::List(
            json.as_array()
                .ok_or_else(|| format!("{} is not a list ({ty})", preview(json)))?
                .iter()
                .enumerate()
                .map(|(i, j)| json_to_value(j, item).map_err(|e| format!("[{i}]: {e}")))
                .collect::<Result<_, _>>()?,
        ),
        Type::Record(fields) => {
            let object = json
                .as_object()
                .ok_or_else(|| format!("{} is not a record ({ty})", preview(json)))?;
            if let Some(extra) = object.keys().find(|k| ty.field(k).is_none()) {
                return Err(format!("{ty} has no field {extra:?}"));
            }
            let mut values = Vec::with_capacity(fields.len());
            for (name, t) in fields {
                let v = match (object.get(name), t) {
                    (Some(j), t) => json_to_value(j, t).map_err(|e| format!(".{name}: {e}"))?,
                    // A missing field of an option type is none, as a NULL column is.
                    (None, Type::Option(_)) => Value::Option(None),
                    (None, _) => return Err(format!("the field {name:?} ({t}) is missing")),
                };
                values.push((name.clone(), v));
            }
            Value::Record(values)
        }
        Type::Option(item) => match json {
            serde_json::Value::Null => Value::Option(None),
            j => Value::Option(Some(Box::new(json_to_value(j, item)?))),
        },
        Type::Bytes => Value::Bytes(
            json.as_array()
                .ok_or_else(|| format!("{} is not bytes (an array of 0..=255)", preview(json)))?
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("{} is not bytes (an array of 0..=255)", preview(json)))?,
        ),
    })
}

/// At most 60 chars of `json`, for messages about hostile input.
fn preview(json: &serde_json::Value) -> String {
    let text = json.to_string();
    match text.char_indices().nth(60) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// Whether `value` has type `ty` (shapes included).
pub(crate) fn has_type(value: &Value, ty: &Type) -> bool {
    match (value, ty) {
        (Value::Bool(_), Type::Bool)
        | (Value::I64(_), Type::I64)
        | (Value::F64(_), Type::F64)
        | (Value::Str(_), Type::Str) => true,
        (Value::Tensor(t), Type::Tensor(shape)) => {
            &t.shape == shape && Tensor::element_count(shape) == Some(t.data.len())
        }
        (Value::Tuple(items), Type::Tuple(types)) => {
            items.len() == types.len() && items.iter().zip(types).all(|(v, t)| has_type(v, t))
        }
        (Value::List(items), Type::List(item)) => items.iter().all(|v| has_type(v, item)),
        (Value::Record(values), Type::Record(fields)) => {
            values.len() == fields.len()
                && values
                    .iter()
                    .zip(fields)
                    .all(|((n, v), (m, t))| n == m && has_type(v, t))
        }
        (Value::Option(None), Type::Option(_)) | (Value::Bytes(_), Type::Bytes) => true,
        (Value::Option(Some(v)), Type::Option(item)) => has_type(v, item),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_of_any_shape_parse_from_nested_arrays_or_shape_and_data() {
        let t = |text: &str| match parse_tensor(text) {
            Ok(Value::Tensor(t)) => Ok((t.shape, t.data)),
            Ok(other) => panic!("a tensor: {other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(
            t("[[1, 2], [3, \"inf\"]]"),
            Ok((vec![2, 2], vec![1.0, 2.0, 3.0, f32::INFINITY]))
        );
        assert_eq!(t("[]"), Ok((vec![0], vec![])));
        assert_eq!(t("[[]]"), Ok((vec![1, 0], vec![])));
        assert_eq!(
            t(r#"{"shape": [2], "data": [1, 2]}"#),
            Ok((vec![2], vec![1.0, 2.0]))
        );
        // Hostile or malformed text is an error, never a panic or a huge allocation.
        for bad in [
            "[[1, 2], [3]]",
            "[[1, 2], 3]",
            "[1, [2]]",
            "[\"x\"]",
            "7",
            "not json",
            r#"{"shape": [2], "data": [1]}"#,
            r#"{"shape": [65536, 65536, 65536], "data": []}"#,
            r#"{"shape": [-1], "data": []}"#,
            r#"{"shape": [1], "data": [1], "extra": 1}"#,
            r#"{"data": [1]}"#,
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        assert!(t(&deep).is_err());
    }

    #[test]
    fn inputs_parse_by_type() {
        assert_eq!(parse_input("42", &Type::I64), Ok(Value::I64(42)));
        assert_eq!(parse_input("-1.5", &Type::F64), Ok(Value::F64(-1.5)));
        assert!(parse_input("4x", &Type::I64).is_err());
        assert!(parse_input("99999999999999999999", &Type::I64).is_err());
        assert_eq!(parse_input("a=b", &Type::Str), Ok(Value::Str("a=b".into())));
        let t = parse_input("[1, 2, 3, 4]", &Type::Tensor(vec![2, 2])).expect("tensor");
        assert!(has_type(&t, &Type::Tensor(vec![2, 2])));
        assert!(parse_input("[1, 2, 3]", &Type::Tensor(vec![2, 2])).is_err());
    }

    #[test]
    fn non_finite_floats_round_trip_through_json() {
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0] {
            let back =
                json_to_value(&value_to_json(&Value::F64(x)), &Type::F64).expect("reads back");
            assert_eq!(back, Value::F64(x).canonicalized());
        }
    }
}
