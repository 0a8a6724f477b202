//! The values that cross the PostgreSQL driver's edge: [`Param`]s in, [`Cell`]s out, and the
//! one mapping between them and PostgreSQL's types.
//!
//! Invariants:
//! - One table decides every conversion: [`param_fits`] for parameters, [`CellKind::of`] for
//!   columns. A type absent from them is refused with a typed error naming the parameter or the
//!   column; nothing is converted through text behind the caller's back.
//! - No silent loss: an `I64` bound to `int2`/`int4` must fit, an `F64` bound to `float4` must
//!   round-trip exactly, and `numeric` is read as its exact decimal text (`Cell::Str`), never
//!   rounded to `f64`. A caller that wants a float casts in SQL (`x::float8`).
//! - Cells know their size ([`Cell::footprint`]), so the runner caps a result in bytes as it
//!   reads it, one row at a time.

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

/// A statement parameter (`$1`, `$2`, …).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Param {
    /// SQL `NULL`, of whatever type the parameter has.
    Null,
    /// `int2`, `int4` (when it fits) or `int8`.
    I64(i64),
    /// `float8`, or `float4` when the value survives the round trip.
    F64(f64),
    /// `bool`.
    Bool(bool),
    /// `text`, `varchar`, `char(n)`, `name`, an untyped literal, `json` or `jsonb`.
    Str(String),
    /// `bytea`.
    Bytes(Vec<u8>),
}

/// A value read from a result column.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cell {
    /// SQL `NULL` (and the result of a `void` function such as `pg_sleep`).
    Null,
    /// `int2`, `int4`, `int8`, `oid`.
    I64(i64),
    /// `float4`, `float8`.
    F64(f64),
    /// `bool`.
    Bool(bool),
    /// `text`, `varchar`, `char(n)`, `name`, `json`, `jsonb`, and `numeric` as exact decimal
    /// text (`"12.50"`, `"NaN"`, `"Infinity"`).
    Str(String),
    /// `bytea`.
    Bytes(Vec<u8>),
}

/// A query's result: column names in order, then rows of cells in the same order.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Rows {
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<Vec<Cell>>,
}

impl Param {
    /// The variant's name, for error messages.
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            Param::Null => "null",
            Param::I64(_) => "i64",
            Param::F64(_) => "f64",
            Param::Bool(_) => "bool",
            Param::Str(_) => "str",
            Param::Bytes(_) => "bytes",
        }
    }
}

impl Cell {
    /// The bytes this cell counts against a result's byte cap: the payload length of strings
    /// and byte strings, 8 for numbers, 1 for booleans and nulls.
    pub(crate) fn footprint(&self) -> usize {
        match self {
            Cell::Null | Cell::Bool(_) => 1,
            Cell::I64(_) | Cell::F64(_) => 8,
            Cell::Str(s) => s.len(),
            Cell::Bytes(b) => b.len(),
        }
    }
}

/// Whether `param` can be bound to a parameter of type `ty` without loss.
pub(crate) fn param_fits(param: &Param, ty: &Type) -> bool {
    match (param, ty) {
        (Param::Null, _) => true,
        (Param::I64(_), &Type::INT8) => true,
        (Param::I64(v), &Type::INT4) => i32::try_from(*v).is_ok(),
        (Param::I64(v), &Type::INT2) => i16::try_from(*v).is_ok(),
        (Param::F64(_), &Type::FLOAT8) => true,
        (Param::F64(v), &Type::FLOAT4) => v.is_nan() || f64::from(*v as f32) == *v,
        (Param::Bool(_), &Type::BOOL) => true,
        (Param::Str(_), ty) => is_text(ty) || *ty == Type::JSON || *ty == Type::JSONB,
        (Param::Bytes(_), &Type::BYTEA) => true,
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

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if !param_fits(self, ty) {
            // The runner checks every parameter first; this is the driver's own second check.
            return Err(
                format!("a {} parameter does not fit type {}", self.kind_name(), ty).into(),
            );
        }
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::I64(v) => match *ty {
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Param::F64(v) if *ty == Type::FLOAT4 => (*v as f32).to_sql(ty, out),
            Param::F64(v) => v.to_sql(ty, out),
            Param::Bool(v) => v.to_sql(ty, out),
            Param::Str(s) if *ty == Type::JSONB => {
                // jsonb's binary format: a version byte (1), then the JSON text.
                out.put_u8(1);
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            Param::Str(s) if *ty == Type::JSON => {
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            Param::Str(s) => s.as_str().to_sql(ty, out),
            Param::Bytes(b) => b.as_slice().to_sql(ty, out),
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
        CellKind::Int2 => get(row, index, |v: i16| Cell::I64(v.into())),
        CellKind::Int4 => get(row, index, |v: i32| Cell::I64(v.into())),
        CellKind::Int8 => get(row, index, Cell::I64),
        CellKind::Oid => get(row, index, |v: u32| Cell::I64(v.into())),
        CellKind::Float4 => get(row, index, |v: f32| Cell::F64(v.into())),
        CellKind::Float8 => get(row, index, Cell::F64),
        CellKind::Bool => get(row, index, Cell::Bool),
        CellKind::Text => get(row, index, Cell::Str),
        CellKind::Bytea => get(row, index, Cell::Bytes),
        CellKind::Numeric => get(row, index, |v: NumericText| Cell::Str(v.0)),
        CellKind::Json | CellKind::Jsonb => get(row, index, |v: JsonText| Cell::Str(v.0)),
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
