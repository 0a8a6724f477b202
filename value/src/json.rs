//! JSON in and out of graph values, by a declared [`Schema`]: the rules of `json_parse` and
//! `json_emit`, one definition for `eval` and every guest.
//!
//! Invariants:
//! - Parsing is driven by the schema (serde visitors over `serde_json`'s reader), so nothing
//!   is built that the schema does not ask for: a duplicate key, an unknown field, a missing
//!   field (unless it is an option), a number out of range or of the wrong kind is an error
//!   naming its JSON path (`$.orders[3].id`), never a silent merge or a truncation.
//! - Nesting is bounded by the schema (and `serde_json`'s own recursion limit).
//! - Emitting is canonical: no whitespace, record fields in name order (as records hold
//!   them), integers in decimal, floats in Rust's shortest round-trip form (`1.5`, `1e300`,
//!   `-0.0`), strings as UTF-8 with `"`, `\` and control characters escaped. JSON has no NaN
//!   or infinity: emitting one is an error.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::{Tensor, Value, canonical_f32, canonical_f64};

/// The type a JSON text is read as (the graph's data types).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schema {
    /// `true` or `false`.
    Bool,
    /// An integer within ±2^63.
    I64,
    /// Any number.
    F64,
    /// A string.
    Str,
    /// An array of numbers 0–255.
    Bytes,
    /// A flat array of numbers, as many as the shape holds.
    Tensor(Vec<u32>),
    /// An array.
    List(Box<Schema>),
    /// An object with exactly these fields (sorted by name); an option field may be absent.
    Record(Vec<(String, Schema)>),
    /// `null`, or the value.
    Option(Box<Schema>),
}

/// `text` read as a value of `schema`.
pub fn parse(text: &str, schema: &Schema) -> Result<Value, String> {
    let mut reader = serde_json::Deserializer::from_str(text);
    let value = Seed {
        schema,
        path: String::from("$"),
    }
    .deserialize(&mut reader)
    .map_err(|e| e.to_string())?;
    reader.end().map_err(|e| e.to_string())?;
    Ok(value)
}

struct Seed<'s> {
    schema: &'s Schema,
    path: String,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.schema {
            Schema::Bool => d.deserialize_bool(self),
            Schema::I64 => d.deserialize_i64(self),
            Schema::F64 => d.deserialize_f64(self),
            Schema::Str => d.deserialize_str(self),
            Schema::Bytes | Schema::Tensor(_) | Schema::List(_) => d.deserialize_seq(self),
            Schema::Record(_) => d.deserialize_map(self),
            Schema::Option(_) => d.deserialize_option(self),
        }
    }
}

impl Seed<'_> {
    fn error<E: de::Error>(&self, message: impl fmt::Display) -> E {
        E::custom(format!("at {}: {message}", self.path))
    }

    fn expected(&self) -> String {
        match self.schema {
            Schema::Bool => "a bool".into(),
            Schema::I64 => "an integer within ±2^63".into(),
            Schema::F64 => "a number".into(),
            Schema::Str => "a string".into(),
            Schema::Bytes => "an array of numbers 0-255".into(),
            Schema::Tensor(shape) => format!("a flat array of numbers for a tensor {shape:?}"),
            Schema::List(_) => "an array".into(),
            Schema::Record(_) => "an object".into(),
            Schema::Option(_) => "null or a value".into(),
        }
    }

    fn child<'c>(&self, schema: &'c Schema, part: fmt::Arguments<'_>) -> Seed<'c> {
        let mut path = self.path.clone();
        let _ = path.write_fmt(part);
        Seed { schema, path }
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.expected(), self.path)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        match self.schema {
            Schema::Bool => Ok(Value::Bool(b)),
            _ => Err(self.error(format_args!("expected {}, got a bool", self.expected()))),
        }
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        match self.schema {
            Schema::I64 => Ok(Value::I64(i)),
            Schema::F64 => Ok(Value::F64(i as f64)),
            _ => Err(self.error(format_args!("expected {}, got a number", self.expected()))),
        }
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        match (self.schema, i64::try_from(u)) {
            (Schema::I64, Ok(i)) => Ok(Value::I64(i)),
            (Schema::I64, Err(_)) => Err(self.error(format_args!("{u} is beyond i64"))),
            (Schema::F64, _) => Ok(Value::F64(u as f64)),
            _ => Err(self.error(format_args!("expected {}, got a number", self.expected()))),
        }
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Value, E> {
        match self.schema {
            Schema::F64 => Ok(Value::F64(canonical_f64(x))),
            Schema::I64 => Err(self.error(format_args!(
                "expected an integer, got {x} (a fraction or beyond i64)"
            ))),
            _ => Err(self.error(format_args!("expected {}, got a number", self.expected()))),
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        match self.schema {
            Schema::Str => Ok(Value::Str(s.to_string())),
            _ => Err(self.error(format_args!("expected {}, got a string", self.expected()))),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        match self.schema {
            Schema::Option(_) => Ok(Value::Option(None)),
            _ => Err(self.error(format_args!("expected {}, got null", self.expected()))),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.schema {
            Schema::Option(inner) => {
                let seed = Seed {
                    schema: inner,
                    path: self.path.clone(),
                };
                Ok(Value::Option(Some(Box::new(seed.deserialize(d)?))))
            }
            _ => Err(self.error("expected no option")),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        match self.schema {
            Schema::List(item) => {
                let mut items = Vec::new();
                loop {
                    let seed = self.child(item, format_args!("[{}]", items.len()));
                    match seq.next_element_seed(seed)? {
                        Some(v) => items.push(v),
                        None => return Ok(Value::List(items)),
                    }
                }
            }
            Schema::Bytes => {
                let mut bytes = Vec::new();
                while let Some(n) = seq.next_element::<u64>().map_err(|_| {
                    self.error::<A::Error>(format_args!(
                        "[{}]: expected a number 0-255",
                        bytes.len()
                    ))
                })? {
                    let b = u8::try_from(n).map_err(|_| {
                        self.error::<A::Error>(format_args!("[{}]: {n} is not a byte", bytes.len()))
                    })?;
                    bytes.push(b);
                }
                Ok(Value::Bytes(bytes))
            }
            Schema::Tensor(shape) => {
                let expected = Tensor::element_count(shape).unwrap_or(usize::MAX);
                let mut data = Vec::new();
                while let Some(x) = seq.next_element::<f64>()? {
                    if data.len() == expected {
                        return Err(self.error(format_args!("more than {expected} elements")));
                    }
                    data.push(canonical_f32(x as f32));
                }
                if data.len() != expected {
                    return Err(self.error(format_args!(
                        "{} elements; the tensor needs {expected}",
                        data.len()
                    )));
                }
                Ok(Value::Tensor(Tensor {
                    shape: shape.clone(),
                    data,
                }))
            }
            _ => Err(self.error(format_args!("expected {}, got an array", self.expected()))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Schema::Record(fields) = self.schema else {
            return Err(self.error(format_args!("expected {}, got an object", self.expected())));
        };
        let mut values: Vec<Option<Value>> = fields.iter().map(|_| None).collect();
        while let Some(key) = map.next_key::<String>()? {
            let Some(i) = fields.iter().position(|(name, _)| *name == key) else {
                return Err(self.error(format_args!("unknown field {key:?}")));
            };
            if values[i].is_some() {
                return Err(self.error(format_args!("the field {key:?} appears twice")));
            }
            let seed = self.child(&fields[i].1, format_args!(".{key}"));
            values[i] = Some(map.next_value_seed(seed)?);
        }
        let mut record = Vec::with_capacity(fields.len());
        for ((name, schema), value) in fields.iter().zip(values) {
            let value = match (value, schema) {
                (Some(v), _) => v,
                (None, Schema::Option(_)) => Value::Option(None),
                (None, _) => return Err(self.error(format_args!("the field {name:?} is missing"))),
            };
            record.push((name.clone(), value));
        }
        Ok(Value::Record(record))
    }
}

/// The canonical JSON text of `value`; NaN or an infinity is an error.
pub fn emit(value: &Value) -> Result<String, String> {
    let mut out = String::new();
    emit_into(value, &mut out)?;
    Ok(out)
}

/// Bytes [`emit`] writes for `value` (so a caller can reserve them fallibly first).
pub fn emitted_len(value: &Value) -> Result<usize, String> {
    let mut counter = Counter(0);
    write_value(value, &mut counter)?;
    Ok(counter.0)
}

/// [`emit`], appended to `out`.
pub fn emit_into(value: &Value, out: &mut String) -> Result<(), String> {
    write_value(value, out)
}

struct Counter(usize);

impl fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 = self.0.saturating_add(s.len());
        Ok(())
    }
}

fn write_value(value: &Value, out: &mut impl fmt::Write) -> Result<(), String> {
    let failed = |_| String::from("writing JSON failed");
    match value {
        Value::Bool(b) => write!(out, "{b}").map_err(failed),
        Value::I64(i) => write!(out, "{i}").map_err(failed),
        Value::F64(x) if x.is_finite() => write!(out, "{x:?}").map_err(failed),
        Value::F64(x) => Err(format!("JSON has no number {x}")),
        Value::Str(s) => write_str(s, out).map_err(failed),
        Value::Bytes(b) => {
            out.write_char('[').map_err(failed)?;
            for (i, byte) in b.iter().enumerate() {
                if i > 0 {
                    out.write_char(',').map_err(failed)?;
                }
                write!(out, "{byte}").map_err(failed)?;
            }
            out.write_char(']').map_err(failed)
        }
        Value::Tensor(t) => {
            out.write_char('[').map_err(failed)?;
            for (i, x) in t.data.iter().enumerate() {
                if !x.is_finite() {
                    return Err(format!("JSON has no number {x}"));
                }
                if i > 0 {
                    out.write_char(',').map_err(failed)?;
                }
                write!(out, "{x:?}").map_err(failed)?;
            }
            out.write_char(']').map_err(failed)
        }
        Value::Tuple(items) | Value::List(items) => {
            out.write_char('[').map_err(failed)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_char(',').map_err(failed)?;
                }
                write_value(item, out)?;
            }
            out.write_char(']').map_err(failed)
        }
        Value::Record(fields) => {
            out.write_char('{').map_err(failed)?;
            for (i, (name, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.write_char(',').map_err(failed)?;
                }
                write_str(name, out).map_err(failed)?;
                out.write_char(':').map_err(failed)?;
                write_value(v, out)?;
            }
            out.write_char('}').map_err(failed)
        }
        Value::Option(None) => out.write_str("null").map_err(failed),
        Value::Option(Some(v)) => write_value(v, out),
    }
}

fn write_str(s: &str, out: &mut impl fmt::Write) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if u32::from(c) < 0x20 => write!(out, "\\u{:04x}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn orders() -> Schema {
        Schema::List(Box::new(Schema::Record(vec![
            ("id".into(), Schema::I64),
            ("note".into(), Schema::Option(Box::new(Schema::Str))),
            ("total".into(), Schema::F64),
        ])))
    }

    #[test]
    fn parses_by_the_schema_and_emits_canonically() {
        let v = parse(
            r#" [ {"total": 2, "id": 1}, {"id": 2, "total": -0.0, "note": "a\"\n"} ] "#,
            &orders(),
        )
        .expect("parses");
        assert_eq!(
            emit(&v).expect("emits"),
            r#"[{"id":1,"note":null,"total":2.0},{"id":2,"note":"a\"\n","total":-0.0}]"#
        );
        // Canonical text reads back to the same value.
        assert_eq!(parse(&emit(&v).expect("emits"), &orders()), Ok(v.clone()));
        assert_eq!(emitted_len(&v), Ok(emit(&v).expect("emits").len()));
    }

    #[test]
    fn hostile_json_is_an_error_naming_the_path() {
        for (text, says) in [
            (
                r#"[{"id": 1, "id": 2, "total": 1}]"#,
                "$[0]: the field \"id\" appears twice",
            ),
            (r#"[{"id": 1, "total": 1, "x": 0}]"#, "unknown field"),
            (r#"[{"total": 1}]"#, "$[0]: the field \"id\" is missing"),
            (r#"[{"id": 99999999999999999999, "total": 1}]"#, "$[0].id"),
            (r#"[{"id": 1.5, "total": 1}]"#, "$[0].id"),
            (r#"[{"id": 1, "total": "1"}]"#, "$[0].total"),
            (r#"[{"id": 1, "total": 1}] x"#, "trailing"),
            (r#"{"id": 1}"#, "expected an array"),
            ("\"\\ud800\"", ""),
        ] {
            let err = parse(text, &orders()).expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
        let deep = "[".repeat(10_000);
        assert!(parse(&deep, &Schema::List(Box::new(Schema::I64))).is_err());
        assert!(emit(&Value::F64(f64::NAN)).is_err());
    }
}
