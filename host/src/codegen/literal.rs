//! Rust spellings of graph types and constants.
//!
//! Invariant: every literal is exact (floats by their bits) and pure ASCII; user strings are
//! escaped with `escape_default`, so quotes, backslashes, newlines, `*/` and non-ASCII text
//! can never end a literal or a comment early.

use graphjit_value::Value;

use crate::graph::Type;

/// The Rust type generated code uses for `ty`.
pub(super) fn rust_type(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::I64 => "i64".into(),
        Type::F64 => "f64".into(),
        Type::Str => "alloc::string::String".into(),
        Type::Tensor(_) => "rt::Tensor".into(),
        // `()` for the empty tuple (an empty `fork`): `(,)` is not Rust.
        Type::Tuple(items) if items.is_empty() => "()".into(),
        Type::Tuple(items) => {
            let parts: Vec<String> = items.iter().map(rust_type).collect();
            format!("({},)", parts.join(", "))
        }
        Type::List(item) => format!("alloc::vec::Vec<{}>", rust_type(item)),
        // A record is the tuple of its fields in name order (`()` when it has none).
        Type::Record(fields) if fields.is_empty() => "()".into(),
        Type::Record(fields) => {
            let parts: Vec<String> = fields.iter().map(|(_, t)| rust_type(t)).collect();
            format!("({},)", parts.join(", "))
        }
        Type::Option(item) => format!("Option<{}>", rust_type(item)),
        Type::Bytes => "alloc::vec::Vec<u8>".into(),
    }
}

/// An expression building the constant `value` of type `ty`, or `None` when the value does
/// not have the type (typing and lowering rule that out).
pub(super) fn data_literal(value: &Value, ty: &Type, at: u32) -> Option<String> {
    Some(match (value, ty) {
        (Value::Bool(b), Type::Bool) => b.to_string(),
        (Value::I64(i), Type::I64) => format!("{i}i64"),
        (Value::F64(x), Type::F64) => f64_literal(*x),
        (Value::Str(s), Type::Str) => format!("alloc::string::String::from({})", str_literal(s)),
        (Value::Tensor(t), Type::Tensor(shape)) if &t.shape == shape => {
            let bits: Vec<String> = t
                .data
                .iter()
                .map(|x| format!("{:#010x}", x.to_bits()))
                .collect();
            format!(
                "rt::ops::tensor_from_bits(&{}, &[{}], {at})?",
                shape_literal(shape),
                bits.join(", ")
            )
        }
        (Value::Bytes(b), Type::Bytes) => {
            let items: Vec<String> = b.iter().map(|x| format!("{x}u8")).collect();
            format!("alloc::vec![{}]", items.join(", "))
        }
        (Value::List(items), Type::List(item)) => {
            let parts = items
                .iter()
                .map(|v| data_literal(v, item, at))
                .collect::<Option<Vec<String>>>()?;
            // `Vec::<T>::new()` when empty, so the element type is never left to inference.
            if parts.is_empty() {
                format!("alloc::vec::Vec::<{}>::new()", rust_type(item))
            } else {
                format!("alloc::vec![{}]", parts.join(", "))
            }
        }
        (Value::Record(values), Type::Record(fields)) if values.len() == fields.len() => {
            if fields.is_empty() {
                return Some("()".into());
            }
            let parts = values
                .iter()
                .zip(fields)
                .map(|((n, v), (m, t))| (n == m).then(|| data_literal(v, t, at)).flatten())
                .collect::<Option<Vec<String>>>()?;
            format!("({},)", parts.join(", "))
        }
        (Value::Option(None), Type::Option(item)) => format!("Option::<{}>::None", rust_type(item)),
        (Value::Option(Some(v)), Type::Option(item)) => {
            format!("Some({})", data_literal(v, item, at)?)
        }
        _ => return None,
    })
}

/// An exact f64 literal: plain decimal where it round-trips, `f64::from_bits` otherwise
/// (NaN, infinities, negative zero).
pub(super) fn f64_literal(x: f64) -> String {
    if x.is_finite() && !(x == 0.0 && x.is_sign_negative()) {
        // `{:?}` prints the shortest text that parses back to the same bits.
        format!("{x:?}f64")
    } else {
        format!("f64::from_bits({:#018x})", x.to_bits())
    }
}

/// A string literal holding `s` exactly, in ASCII.
pub(super) fn str_literal(s: &str) -> String {
    format!("\"{}\"", s.escape_default())
}

/// `[2u32, 3u32]`-style array literal for a shape.
pub(super) fn shape_literal(shape: &[u32]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| format!("{d}u32")).collect();
    format!("[{}]", dims.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_literals_are_exact() {
        assert_eq!(f64_literal(0.1), "0.1f64");
        assert_eq!(f64_literal(-0.0), "f64::from_bits(0x8000000000000000)");
        assert_eq!(f64_literal(1e300), "1e300f64");
        assert!(f64_literal(f64::NAN).starts_with("f64::from_bits("));
    }

    #[test]
    fn hostile_strings_stay_inside_their_literal() {
        for s in [
            "\"); } fn evil() {",
            "*/ // \n\r\t",
            "\\\"",
            "ünï\u{0}\u{202e}",
        ] {
            let lit = str_literal(s);
            assert!(lit.is_ascii());
            assert!(!lit.contains('\n'));
            // Only the delimiting quotes are unescaped.
            let inner = &lit[1..lit.len() - 1];
            assert!(
                !inner.replace("\\\\", "").replace("\\\"", "").contains('"'),
                "{lit}"
            );
        }
    }
}
