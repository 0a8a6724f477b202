//! How effect answers become graph values, and graph values become effect arguments: one
//! definition, used by every guest (through the guest template) and by `eval`, so the two
//! agree on every answer bit for bit.
//!
//! Invariants:
//! - Conversions never panic; every answer that does not fit the node's declared type is an
//!   `Err` with a message saying what was expected and what came.
//! - A database answer fits a scalar type only as exactly one row of exactly one column; NULL
//!   never silently becomes a zero.
//! - Numbers cross into tensors by `as f32` (round to nearest), and NaN is canonicalized.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::{Tensor, Value, canonical_f32, canonical_f64};

/// One SQL value: a parameter or a result cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// Integers of any width.
    Int(i64),
    /// Floating point (and numerics the driver reports as floats).
    Float(f64),
    /// Booleans.
    Bool(bool),
    /// Text.
    Text(String),
    /// Binary data.
    Bytes(Vec<u8>),
}

impl Cell {
    /// The bytes this cell counts against an answer's byte caps (the drivers' per-result cap,
    /// the run's effect byte cap): the payload length of text and bytes, 8 for numbers, 1 for
    /// booleans and NULL.
    pub fn footprint(&self) -> usize {
        match self {
            Cell::Null | Cell::Bool(_) => 1,
            Cell::Int(_) | Cell::Float(_) => 8,
            Cell::Text(s) => s.len(),
            Cell::Bytes(b) => b.len(),
        }
    }

    /// The variant's name, for error messages (`null`, `int`, `float`, `bool`, `text`,
    /// `bytes`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Cell::Null => "null",
            Cell::Int(_) => "int",
            Cell::Float(_) => "float",
            Cell::Bool(_) => "bool",
            Cell::Text(_) => "text",
            Cell::Bytes(_) => "bytes",
        }
    }
}

/// A query's rows.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Rows {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each with one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

/// The type an effect node declares for its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerType {
    /// `bool`
    Bool,
    /// `i64`
    I64,
    /// `f64`
    F64,
    /// `string`
    Str,
    /// `{"tensor": shape}`
    Tensor(Vec<u32>),
    /// `{"list": {"record": {..}}}` of scalar (or option of scalar) fields: one record per
    /// row, its fields the columns of the same names; sorted by name, as the record is.
    Rows(Vec<Column>),
}

/// A column a row answer expects: its name, the type its cells convert to, and whether it
/// may be NULL (an `option` field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// The column's (and the record field's) name.
    pub name: String,
    /// What its cells become.
    pub ty: ColumnType,
    /// NULL becomes none; without this, NULL is an error.
    pub nullable: bool,
}

/// The type of a column's values in the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// `bool`: a boolean cell.
    Bool,
    /// `i64`: an integer cell.
    I64,
    /// `f64`: a float cell, or an integer (converted as `as f64` converts it).
    F64,
    /// `string`: a text cell.
    Str,
    /// `bytes`: a binary cell.
    Bytes,
}

/// A graph value as a query parameter (tensors and tuples are not parameters).
pub fn cell_from_value(value: &Value) -> Result<Cell, String> {
    match value {
        Value::Bool(b) => Ok(Cell::Bool(*b)),
        Value::I64(i) => Ok(Cell::Int(*i)),
        Value::F64(x) => Ok(Cell::Float(*x)),
        Value::Str(s) => Ok(Cell::Text(s.clone())),
        Value::Tensor(_) => Err("a tensor cannot be an SQL parameter".into()),
        Value::Bytes(b) => Ok(Cell::Bytes(b.clone())),
        Value::Option(None) => Ok(Cell::Null),
        Value::Option(Some(v)) => cell_from_value(v),
        Value::Tuple(_) | Value::List(_) | Value::Record(_) => Err(format!(
            "a {} cannot be an SQL parameter",
            value.kind_name()
        )),
    }
}

/// The parameter rows of a `db_execute_many`: for each record of `list`, its `fields` in
/// order (bound to `$1`, `$2`, …).
pub fn param_rows(list: &Value, fields: &[&str]) -> Result<Vec<Vec<Cell>>, String> {
    let Value::List(items) = list else {
        return Err(format!(
            "expected a list of records, got a {}",
            list.kind_name()
        ));
    };
    let mut rows = Vec::new();
    rows.try_reserve_exact(items.len())
        .map_err(|_| String::from("out of memory for the parameter rows"))?;
    for (i, item) in items.iter().enumerate() {
        let Value::Record(record) = item else {
            return Err(format!("item {i} is a {}, not a record", item.kind_name()));
        };
        let mut row = Vec::with_capacity(fields.len());
        for name in fields {
            let value = record
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
                .ok_or_else(|| format!("item {i} has no field {name:?}"))?;
            row.push(cell_from_value(value).map_err(|e| format!("item {i}, field {name:?}: {e}"))?);
        }
        rows.push(row);
    }
    Ok(rows)
}

fn describe(cell: &Cell) -> &'static str {
    match cell {
        Cell::Null => "NULL",
        Cell::Int(_) => "an integer",
        Cell::Float(_) => "a float",
        Cell::Bool(_) => "a boolean",
        Cell::Text(_) => "text",
        Cell::Bytes(_) => "bytes",
    }
}

fn single(rows: &Rows) -> Result<&Cell, String> {
    match (rows.rows.len(), rows.columns.len()) {
        (1, 1) => rows.rows[0]
            .first()
            .ok_or_else(|| String::from("the row has no cell")),
        (r, c) => Err(format!(
            "expected exactly one row of one column, got {r} rows of {c} columns"
        )),
    }
}

fn number(cell: &Cell) -> Result<f64, String> {
    match cell {
        Cell::Int(i) => Ok(*i as f64),
        Cell::Float(x) => Ok(*x),
        other => Err(format!("expected a number, got {}", describe(other))),
    }
}

/// A query's rows as a value of the node's type.
///
/// - `bool`, `i64`, `f64`, `string`: exactly one row of one column; an integer is accepted for
///   `f64` (exactly as `as f64` converts it) but a float is never truncated to `i64`.
/// - `{"tensor": [r, c]}`: exactly `r` rows of `c` numeric columns; `[n]`: `n` rows of one
///   column, or one row of `n` columns; `[]`: one number.
pub fn rows_to_value(rows: &Rows, ty: &AnswerType) -> Result<Value, String> {
    if rows.rows.iter().any(|row| row.len() != rows.columns.len()) {
        return Err("a row's length differs from the column count".into());
    }
    match ty {
        AnswerType::Bool => match single(rows)? {
            Cell::Bool(b) => Ok(Value::Bool(*b)),
            other => Err(format!("expected a boolean, got {}", describe(other))),
        },
        AnswerType::I64 => match single(rows)? {
            Cell::Int(i) => Ok(Value::I64(*i)),
            other => Err(format!("expected an integer, got {}", describe(other))),
        },
        AnswerType::F64 => Ok(Value::F64(canonical_f64(number(single(rows)?)?))),
        AnswerType::Str => match single(rows)? {
            Cell::Text(s) => Ok(Value::Str(s.clone())),
            other => Err(format!("expected text, got {}", describe(other))),
        },
        AnswerType::Rows(columns) => rows_to_records(rows, columns),
        AnswerType::Tensor(shape) => {
            let (r, c) = (rows.rows.len(), rows.columns.len());
            let fits = match shape.as_slice() {
                [] => r == 1 && c == 1,
                [n] => (r == *n as usize && c == 1) || (r == 1 && c == *n as usize),
                [sr, sc] => r == *sr as usize && c == *sc as usize,
                _ => false,
            };
            if !fits {
                return Err(format!(
                    "expected rows fitting tensor shape {shape:?}, got {r} rows of {c} columns"
                ));
            }
            let mut data = Vec::new();
            data.try_reserve_exact(r.saturating_mul(c))
                .map_err(|_| String::from("out of memory for the answer"))?;
            for row in &rows.rows {
                for cell in row {
                    data.push(canonical_f32(number(cell)? as f32));
                }
            }
            Ok(Value::Tensor(Tensor {
                shape: shape.clone(),
                data,
            }))
        }
    }
}

/// Rows as a list of records: every expected column present exactly once by name, no other
/// column, each cell of its column's type, NULL only where the field is an option. An error
/// names the column and the row.
fn rows_to_records(rows: &Rows, columns: &[Column]) -> Result<Value, String> {
    let mut at = Vec::with_capacity(columns.len());
    for column in columns {
        let mut found = rows
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == column.name);
        match (found.next(), found.next()) {
            (Some((i, _)), None) => at.push(i),
            (None, _) => {
                return Err(format!(
                    "the rows have no column {:?} (they have {:?})",
                    column.name, rows.columns
                ));
            }
            (Some(_), Some(_)) => {
                return Err(format!("the rows have two columns named {:?}", column.name));
            }
        }
    }
    if let Some(extra) = rows
        .columns
        .iter()
        .find(|c| !columns.iter().any(|col| col.name == **c))
    {
        return Err(format!(
            "the rows have a column {extra:?} the record type does not (select only its fields)"
        ));
    }
    let mut out = Vec::new();
    out.try_reserve_exact(rows.rows.len())
        .map_err(|_| String::from("out of memory for the answer"))?;
    for (r, row) in rows.rows.iter().enumerate() {
        let mut fields = Vec::with_capacity(columns.len());
        for (column, &i) in columns.iter().zip(&at) {
            let cell = row.get(i).ok_or_else(|| String::from("a row is short"))?;
            let bad = |what: &str| {
                format!(
                    "row {r}, column {:?}: expected {what}, got {}",
                    column.name,
                    describe(cell)
                )
            };
            let value = match (cell, column.ty) {
                (Cell::Null, _) if column.nullable => Value::Option(None),
                (Cell::Null, _) => {
                    return Err(bad("a value (NULL only goes into an option field)"));
                }
                (Cell::Bool(b), ColumnType::Bool) => Value::Bool(*b),
                (Cell::Int(i), ColumnType::I64) => Value::I64(*i),
                (Cell::Int(i), ColumnType::F64) => Value::F64(*i as f64),
                (Cell::Float(x), ColumnType::F64) => Value::F64(canonical_f64(*x)),
                (Cell::Text(s), ColumnType::Str) => Value::Str(s.clone()),
                (Cell::Bytes(b), ColumnType::Bytes) => Value::Bytes(b.clone()),
                (_, ColumnType::Bool) => return Err(bad("a boolean")),
                (_, ColumnType::I64) => return Err(bad("an integer")),
                (_, ColumnType::F64) => return Err(bad("a number")),
                (_, ColumnType::Str) => return Err(bad("text")),
                (_, ColumnType::Bytes) => return Err(bad("bytes")),
            };
            let value = match value {
                Value::Option(None) => value,
                v if column.nullable => Value::Option(Some(alloc::boxed::Box::new(v))),
                v => v,
            };
            fields.push((column.name.clone(), value));
        }
        out.push(Value::Record(fields));
    }
    Ok(Value::List(out))
}

/// A kernel's answer as a tensor of the expected shape.
pub fn tensor_answer(shape: Vec<u32>, data: Vec<f32>, expected: &[u32]) -> Result<Tensor, String> {
    if shape.as_slice() != expected {
        return Err(format!(
            "the kernel returned shape {shape:?}, the graph expects {expected:?}"
        ));
    }
    if Tensor::element_count(&shape) != Some(data.len()) {
        return Err(format!(
            "the kernel returned {} elements for shape {shape:?}",
            data.len()
        ));
    }
    Ok(Tensor {
        shape,
        data: data.into_iter().map(canonical_f32).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn one(cell: Cell) -> Rows {
        Rows {
            columns: vec![String::from("c")],
            rows: vec![vec![cell]],
        }
    }

    #[test]
    fn scalars_need_exactly_one_cell_of_their_kind() {
        assert!(matches!(
            rows_to_value(&one(Cell::Int(7)), &AnswerType::I64),
            Ok(Value::I64(7))
        ));
        assert!(matches!(
            rows_to_value(&one(Cell::Int(7)), &AnswerType::F64),
            Ok(Value::F64(x)) if x == 7.0
        ));
        assert!(rows_to_value(&one(Cell::Float(7.5)), &AnswerType::I64).is_err());
        assert!(rows_to_value(&one(Cell::Null), &AnswerType::I64).is_err());
        assert!(rows_to_value(&Rows::default(), &AnswerType::I64).is_err());
        let two = Rows {
            columns: vec![String::from("c")],
            rows: vec![vec![Cell::Int(1)], vec![Cell::Int(2)]],
        };
        assert!(rows_to_value(&two, &AnswerType::I64).is_err());
    }

    #[test]
    fn tensors_take_numeric_rows_of_the_declared_shape() {
        let rows = Rows {
            columns: vec![String::from("a"), String::from("b")],
            rows: vec![
                vec![Cell::Int(1), Cell::Float(2.5)],
                vec![Cell::Int(3), Cell::Float(f64::NAN)],
            ],
        };
        let Ok(Value::Tensor(t)) = rows_to_value(&rows, &AnswerType::Tensor(vec![2, 2])) else {
            panic!("2x2 fits");
        };
        assert_eq!(t.data[..3], [1.0, 2.5, 3.0]);
        assert_eq!(t.data[3].to_bits(), crate::CANONICAL_NAN_F32);
        assert!(rows_to_value(&rows, &AnswerType::Tensor(vec![4])).is_err());
        let ragged = Rows {
            columns: vec![String::from("a"), String::from("b")],
            rows: vec![vec![Cell::Int(1)]],
        };
        assert!(rows_to_value(&ragged, &AnswerType::Tensor(vec![1, 2])).is_err());
    }

    #[test]
    fn parameters_are_scalars() {
        assert_eq!(cell_from_value(&Value::I64(3)), Ok(Cell::Int(3)));
        assert!(
            cell_from_value(&Value::Tensor(Tensor {
                shape: vec![],
                data: vec![1.0]
            }))
            .is_err()
        );
    }

    #[test]
    fn rows_become_records_by_column_name_with_null_only_into_options() {
        let columns = vec![
            Column {
                name: "id".into(),
                ty: ColumnType::I64,
                nullable: false,
            },
            Column {
                name: "note".into(),
                ty: ColumnType::Str,
                nullable: true,
            },
            Column {
                name: "total".into(),
                ty: ColumnType::F64,
                nullable: false,
            },
        ];
        let ty = AnswerType::Rows(columns);
        let rows = |names: &[&str], cells: Vec<Vec<Cell>>| Rows {
            columns: names.iter().map(|n| String::from(*n)).collect(),
            rows: cells,
        };
        // Column order does not matter; an integer is a fine f64.
        let good = rows(
            &["total", "id", "note"],
            vec![
                vec![Cell::Int(5), Cell::Int(1), Cell::Null],
                vec![Cell::Float(2.5), Cell::Int(2), Cell::Text("x".into())],
            ],
        );
        let Ok(Value::List(records)) = rows_to_value(&good, &ty) else {
            panic!("rows convert")
        };
        assert_eq!(
            records[1],
            Value::Record(vec![
                ("id".into(), Value::I64(2)),
                (
                    "note".into(),
                    Value::Option(Some(alloc::boxed::Box::new(Value::Str("x".into()))))
                ),
                ("total".into(), Value::F64(2.5)),
            ])
        );
        for (names, cells, why) in [
            (
                &["id", "note"][..],
                vec![vec![Cell::Int(1), Cell::Null]],
                "no column",
            ),
            (
                &["id", "note", "total", "x"][..],
                vec![vec![Cell::Int(1), Cell::Null, Cell::Int(1), Cell::Int(1)]],
                "does not",
            ),
            (
                &["id", "note", "total"][..],
                vec![vec![Cell::Null, Cell::Null, Cell::Int(1)]],
                "NULL only",
            ),
            (
                &["id", "note", "total"][..],
                vec![vec![Cell::Float(1.5), Cell::Null, Cell::Int(1)]],
                "an integer",
            ),
            (
                &["id", "id", "total", "note"][..],
                vec![vec![Cell::Int(1), Cell::Int(1), Cell::Int(1), Cell::Null]],
                "two columns",
            ),
        ] {
            let err = rows_to_value(&rows(names, cells), &ty).expect_err(why);
            assert!(err.contains(why), "{err}");
        }
    }
}
