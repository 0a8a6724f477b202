//! The values that cross the PostgreSQL driver's edge: [`Cell`]s in (as [`Bind`] parameters)
//! and out, and the one mapping between them and PostgreSQL's types. `Cell` is the one cell
//! model every database driver, the WIT conversion and eval share.
//!
//! Invariants:
//! - One table decides every conversion: [`param_fits`] for parameters, [`CellKind::of`] for
//!   columns. A type absent from them is refused with a typed error naming the parameter or the
//!   column; nothing is converted through text behind the caller's back.
//! - No silent loss: an `I64` bound to `int2`/`int4` must fit, an `F64` bound to `float4` must
//!   round-trip exactly, and `numeric` is read as its exact decimal text (`Cell::Text`), never
//!   rounded to `f64`. A caller that wants a float casts in SQL (`x::float8`).
//! - Cells know their size (`Cell::footprint`), so the runner caps a result in bytes as it
//!   reads it, one row at a time.

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
pub(crate) use graphjit_value::effects::{Cell, Rows};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

/// A cell bound as a statement parameter (`$1`, `$2`, …): the one cell model
/// (`graphjit_value::effects::Cell`, shared with SQLite, the WIT conversion and eval), given
/// PostgreSQL's binary encoding here.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bind<'a>(pub(crate) &'a Cell);

/// Whether `param` can be bound to a parameter of type `ty` without loss.
pub(crate) fn param_fits(param: &Cell, ty: &Type) -> bool {
    match (param, ty) {
        (Cell::Null, _) => true,
        (Cell::Int(_), &Type::INT8) => true,
        (Cell::Int(v), &Type::INT4) => i32::try_from(*v).is_ok(),
        (Cell::Int(v), &Type::INT2) => i16::try_from(*v).is_ok(),
        (Cell::Float(_), &Type::FLOAT8) => true,
        (Cell::Float(v), &Type::FLOAT4) => v.is_nan() || f64::from(*v as f32) == *v,
        (Cell::Bool(_), &Type::BOOL) => true,
        (Cell::Text(_), ty) => is_text(ty) || *ty == Type::JSON || *ty == Type::JSONB,
        (Cell::Bytes(_), &Type::BYTEA) => true,
        _ => false,
    }
}

fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for Bind<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if !param_fits(self.0, ty) {
            // The runner checks every parameter first; this is the driver's own second check.
            return Err(format!(
                "a {} parameter does not fit type {}",
                self.0.kind_name(),
                ty
            )
            .into());
        }
        match self.0 {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Int(v) => match *ty {
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Cell::Float(v) if *ty == Type::FLOAT4 => (*v as f32).to_sql(ty, out),
            Cell::Float(v) => v.to_sql(ty, out),
            Cell::Bool(v) => v.to_sql(ty, out),
            Cell::Text(s) if *ty == Type::JSONB => {
                // jsonb's binary format: a version byte (1), then the JSON text.
                out.put_u8(1);
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            Cell::Text(s) if *ty == Type::JSON => {
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            Cell::Text(s) => s.as_str().to_sql(ty, out),
            Cell::Bytes(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        // Decided per value in `to_sql` (an i64 fits int4 or not depending on the value).
        true
    }

    to_sql_checked!();
}

/// How a column of a given type is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CellKind {
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    Bool,
    Text,
    Bytea,
    Numeric,
    Json,
    Jsonb,
    Void,
}

impl CellKind {
    /// How to read a column of type `ty`, or `None` if it is not supported.
    pub(crate) fn of(ty: &Type) -> Option<CellKind> {
        Some(match *ty {
            Type::INT2 => CellKind::Int2,
            Type::INT4 => CellKind::Int4,
            Type::INT8 => CellKind::Int8,
            Type::OID => CellKind::Oid,
            Type::FLOAT4 => CellKind::Float4,
            Type::FLOAT8 => CellKind::Float8,
            Type::BOOL => CellKind::Bool,
            Type::BYTEA => CellKind::Bytea,
            Type::NUMERIC => CellKind::Numeric,
            Type::JSON => CellKind::Json,
            Type::JSONB => CellKind::Jsonb,
            Type::VOID => CellKind::Void,
            ref ty if is_text(ty) => CellKind::Text,
            _ => return None,
        })
    }
}

/// Reads column `index` of `row` as `kind` (checked against the column's type beforehand).
pub(crate) fn read_cell(
    row: &tokio_postgres::Row,
    index: usize,
    kind: CellKind,
) -> Result<Cell, tokio_postgres::Error> {
    fn get<'a, T: FromSql<'a>>(
        row: &'a tokio_postgres::Row,
        index: usize,
        to_cell: impl FnOnce(T) -> Cell,
    ) -> Result<Cell, tokio_postgres::Error> {
        Ok(row
            .try_get::<_, Option<T>>(index)?
            .map_or(Cell::Null, to_cell))
    }
    match kind {
        CellKind::Int2 => get(row, index, |v: i16| Cell::Int(v.into())),
        CellKind::Int4 => get(row, index, |v: i32| Cell::Int(v.into())),
        CellKind::Int8 => get(row, index, Cell::Int),
        CellKind::Oid => get(row, index, |v: u32| Cell::Int(v.into())),
        CellKind::Float4 => get(row, index, |v: f32| Cell::Float(v.into())),
        CellKind::Float8 => get(row, index, Cell::Float),
        CellKind::Bool => get(row, index, Cell::Bool),
        CellKind::Text => get(row, index, Cell::Text),
        CellKind::Bytea => get(row, index, Cell::Bytes),
        CellKind::Numeric => get(row, index, |v: NumericText| Cell::Text(v.0)),
        CellKind::Json | CellKind::Jsonb => get(row, index, |v: JsonText| Cell::Text(v.0)),
        CellKind::Void => Ok(Cell::Null),
    }
}

/// `numeric` as exact decimal text, decoded from the binary format (PostgreSQL's
/// `numeric_send`): ndigits, weight, sign, dscale, then ndigits base-10000 digits.
struct NumericText(String);

const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

impl<'a> FromSql<'a> for NumericText {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        decode_numeric(raw)
            .map(NumericText)
            .ok_or_else(|| "malformed numeric value".into())
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

pub(crate) fn decode_numeric(raw: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<u16> {
        let bytes = raw.get(2 * i..2 * i + 2)?;
        Some(u16::from_be_bytes([bytes[0], bytes[1]]))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    match sign {
        NUMERIC_NAN => return Some("NaN".into()),
        NUMERIC_PINF => return Some("Infinity".into()),
        NUMERIC_NINF => return Some("-Infinity".into()),
        0 | NUMERIC_NEG => {}
        _ => return None,
    }
    if raw.len() != 8 + 2 * ndigits {
        return None;
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| word(4 + i)).collect::<Option<_>>()?;
    if digits.iter().any(|&d| d > 9999) {
        return None;
    }
    // Group `g` (0-based) is worth 10000^(weight - g).
    let group = |g: i64| -> u16 {
        usize::try_from(g)
            .ok()
            .and_then(|g| digits.get(g).copied())
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == NUMERIC_NEG && digits.iter().any(|&d| d != 0) {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        text.push_str(&group(0).to_string());
        for g in 1..=weight {
            text.push_str(&format!("{:04}", group(g)));
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut g = weight + 1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", group(g)));
            g += 1;
        }
        fraction.truncate(dscale);
        text.push('.');
        text.push_str(&fraction);
    }
    Some(text)
}

/// `json` (text) or `jsonb` (a version byte, then text) as its JSON text.
struct JsonText(String);

impl<'a> FromSql<'a> for JsonText {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let text = match (*ty == Type::JSONB, raw.split_first()) {
            (true, Some((1, rest))) => rest,
            (true, _) => return Err("unsupported jsonb version".into()),
            (false, _) => raw,
        };
        Ok(JsonText(std::str::from_utf8(text)?.to_string()))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON || *ty == Type::JSONB
    }
}
