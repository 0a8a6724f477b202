//! Effect calls from generated code: each effect node is one call to a host import, and its
//! answer becomes a value of the node's type with graphjit-value's shared conversions (the
//! same ones `eval` uses, so both agree on every answer).
//!
//! Invariants:
//! - A failed call, or an answer that does not fit the node's type, is
//!   [`RunError::Effect`] naming the node; nothing here panics.
//! - Only the functions generated code calls are linked: a graph without DB nodes never
//!   references `db`, so its component does not import it.

use alloc::string::String;
use alloc::vec::Vec;

use crate::bindings::graphjit::guest::effect_types as wit;
use crate::bindings::graphjit::guest::types::EffectFailure;
use crate::bindings::graphjit::guest::rounds::{self, Answer, Call};
use crate::bindings::graphjit::guest::{db, http, kernels, log as wit_log};
use crate::{RunError, Tensor, Value};
pub use graphjit_value::effects::{AnswerType, Column, ColumnType};
pub use graphjit_value::http::{BodyType, HttpAnswer};
use graphjit_value::effects::{self as conv, Cell, Rows};
use graphjit_value::http as http_conv;

fn failed(node: u32, error: wit::EffectError) -> RunError {
    RunError::Effect(EffectFailure { node, error })
}

fn bad_answer(node: u32, message: String) -> RunError {
    failed(node, wit::EffectError::BadAnswer(message))
}

fn to_wit_cell(cell: Cell) -> wit::Cell {
    match cell {
        Cell::Null => wit::Cell::Null,
        Cell::Int(i) => wit::Cell::Int(i),
        Cell::Float(x) => wit::Cell::Float(x),
        Cell::Bool(b) => wit::Cell::Boolean(b),
        Cell::Text(s) => wit::Cell::Text(s),
        Cell::Bytes(b) => wit::Cell::Bytes(b),
    }
}

fn from_wit_cell(cell: wit::Cell) -> Cell {
    match cell {
        wit::Cell::Null => Cell::Null,
        wit::Cell::Int(i) => Cell::Int(i),
        wit::Cell::Float(x) => Cell::Float(x),
        wit::Cell::Boolean(b) => Cell::Bool(b),
        wit::Cell::Text(s) => Cell::Text(s),
        wit::Cell::Bytes(b) => Cell::Bytes(b),
    }
}

fn params(node: u32, values: &[Value]) -> Result<Vec<wit::Cell>, RunError> {
    values
        .iter()
        .map(|v| conv::cell_from_value(v).map(to_wit_cell))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| bad_answer(node, m))
}

/// `db_query`: the rows of `sql` with `$n` bound to `values`, as a value of type `ty`.
pub fn db_query(node: u32, sql: &str, values: &[Value], ty: &AnswerType) -> Result<Value, RunError> {
    let cells = params(node, values)?;
    let rows = db::query(sql, &cells).map_err(|e| failed(node, e))?;
    rows_answer(node, rows, ty)
}

fn rows_answer(node: u32, rows: wit::Rows, ty: &AnswerType) -> Result<Value, RunError> {
    let rows = Rows {
        columns: rows.columns,
        rows: rows
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(from_wit_cell).collect())
            .collect(),
    };
    conv::rows_to_value(&rows, ty).map_err(|m| bad_answer(node, m))
}

/// `db_execute`: the row count of `sql`.
pub fn db_execute(node: u32, sql: &str, values: &[Value]) -> Result<i64, RunError> {
    let cells = params(node, values)?;
    let count = db::execute(sql, &cells).map_err(|e| failed(node, e))?;
    count_answer(node, count)
}

fn count_answer(node: u32, count: u64) -> Result<i64, RunError> {
    i64::try_from(count).map_err(|_| bad_answer(node, alloc::format!("row count {count}")))
}

/// `db_execute_many`: `sql` once per record of `list` (its `fields` bound to `$1`, `$2`, …),
/// in one transaction; the summed row count.
pub fn db_execute_many(node: u32, sql: &str, list: &Value, fields: &[&str]) -> Result<i64, RunError> {
    let rows = conv::param_rows(list, fields).map_err(|m| bad_answer(node, m))?;
    let rows: Vec<Vec<wit::Cell>> = rows
        .into_iter()
        .map(|row| row.into_iter().map(to_wit_cell).collect())
        .collect();
    let count = db::execute_many(sql, &rows).map_err(|e| failed(node, e))?;
    count_answer(node, count)
}

/// An `http` request: the body (a string or bytes as they are, other values as JSON) and
/// the headers (none: not sent), by graphjit-value's rules.
fn http_request(
    node: u32,
    method: &str,
    url: &str,
    headers: &[(&str, Value)],
    body: Option<Value>,
    response_headers: bool,
) -> Result<wit::HttpRequest, RunError> {
    let named: Vec<(&str, &Value)> = headers.iter().map(|(n, v)| (*n, v)).collect();
    let request = http_conv::request(&named, body.as_ref()).map_err(|m| bad_answer(node, m))?;
    Ok(wit::HttpRequest {
        method: String::from(method),
        url: String::from(url),
        headers: request.headers,
        body: request.body,
        response_headers,
    })
}

/// `http`: the response as a value of type `ty` (for a body-only answer, non-2xx statuses
/// are errors).
pub fn http(
    node: u32,
    method: &str,
    url: &str,
    headers: &[(&str, Value)],
    body: Option<Value>,
    ty: &HttpAnswer,
) -> Result<Value, RunError> {
    let request = http_request(node, method, url, headers, body, ty.wants_headers())?;
    let response = http::request(&request).map_err(|e| failed(node, e))?;
    response_answer(node, response, ty)
}

fn response_answer(node: u32, response: wit::HttpResponse, ty: &HttpAnswer) -> Result<Value, RunError> {
    http_conv::answer(response.status, response.headers, &response.body, ty).map_err(|e| match e {
        http_conv::AnswerError::Status(status) => failed(node, wit::EffectError::HttpStatus(status)),
        http_conv::AnswerError::Bad(message) => bad_answer(node, message),
    })
}

/// `kernel`: the host's kernel `name` on `args`, checked to have shape `expected`.
pub fn kernel(node: u32, name: &str, args: &[&Tensor], expected: &[u32]) -> Result<Tensor, RunError> {
    let out = kernels::call(name, &wit_tensors(args)).map_err(|e| failed(node, e))?;
    conv::tensor_answer(out.shape, out.data, expected).map_err(|m| bad_answer(node, m))
}

fn wit_tensors(args: &[&Tensor]) -> Vec<wit::Tensor> {
    args.iter()
        .map(|t| wit::Tensor {
            shape: t.shape.clone(),
            data: t.data.clone(),
        })
        .collect()
}

/// A round being prepared: the effects of one stage, in canonical order, sent as one host
/// call by [`Round::run`]. If preparing a call fails (a parameter that is no SQL value), the
/// calls before it still go out and the failure is reported at that node, after their
/// answers: the same error, in the same order, as one call at a time.
pub struct Round {
    calls: Vec<Call>,
    failed: Option<RunError>,
}

impl Round {
    /// An empty round.
    pub fn new() -> Round {
        Round {
            calls: Vec::new(),
            failed: None,
        }
    }

    fn push(&mut self, call: Result<Call, RunError>) {
        if self.failed.is_some() {
            return;
        }
        match call {
            Ok(call) => self.calls.push(call),
            Err(e) => self.failed = Some(e),
        }
    }

    /// Adds a `db_query`.
    pub fn db_query(&mut self, node: u32, sql: &str, values: &[Value]) {
        let call = params(node, values).map(|params| {
            Call::Query(rounds::SqlCall {
                sql: String::from(sql),
                params,
            })
        });
        self.push(call);
    }

    /// Adds a `db_execute`.
    pub fn db_execute(&mut self, node: u32, sql: &str, values: &[Value]) {
        let call = params(node, values).map(|params| {
            Call::Execute(rounds::SqlCall {
                sql: String::from(sql),
                params,
            })
        });
        self.push(call);
    }

    /// Adds an `http` request (`response_headers`: whether the node reads them).
    pub fn http(
        &mut self,
        node: u32,
        method: &str,
        url: &str,
        headers: &[(&str, Value)],
        body: Option<Value>,
        response_headers: bool,
    ) {
        let call = http_request(node, method, url, headers, body, response_headers);
        self.push(call.map(Call::Request));
    }

    /// Adds a `kernel` call (`node` as for `http`).
    pub fn kernel(&mut self, _node: u32, name: &str, args: &[&Tensor]) {
        self.push(Ok(Call::Kernel(rounds::KernelCall {
            name: String::from(name),
            args: wit_tensors(args),
        })));
    }

    /// Sends the round: one host call, served concurrently.
    pub fn run(self) -> Answers {
        let results = if self.calls.is_empty() {
            Vec::new()
        } else {
            rounds::run(&self.calls)
        };
        Answers {
            results: results.into_iter(),
            failed: self.failed,
        }
    }
}

impl Default for Round {
    fn default() -> Round {
        Round::new()
    }
}

/// A round's results, taken in the order the calls were added, each turned into its node's
/// value by the same conversions as a single call.
pub struct Answers {
    results: alloc::vec::IntoIter<Result<Answer, wit::EffectError>>,
    failed: Option<RunError>,
}

impl Answers {
    fn next(&mut self, node: u32) -> Result<Answer, RunError> {
        match self.results.next() {
            Some(result) => result.map_err(|e| failed(node, e)),
            None => Err(self
                .failed
                .take()
                .unwrap_or_else(|| bad_answer(node, String::from("the round has no answer for this node")))),
        }
    }

    /// The answer of a `db_query`, as a value of type `ty`.
    pub fn db_query(&mut self, node: u32, ty: &AnswerType) -> Result<Value, RunError> {
        match self.next(node)? {
            Answer::Rows(rows) => rows_answer(node, rows, ty),
            _ => Err(bad_answer(node, String::from("expected rows"))),
        }
    }

    /// The answer of a `db_execute`: the row count.
    pub fn db_execute(&mut self, node: u32) -> Result<i64, RunError> {
        match self.next(node)? {
            Answer::Count(count) => count_answer(node, count),
            _ => Err(bad_answer(node, String::from("expected a row count"))),
        }
    }

    /// The answer of an `http` request, as a value of type `ty`.
    pub fn http(&mut self, node: u32, ty: &HttpAnswer) -> Result<Value, RunError> {
        match self.next(node)? {
            Answer::Response(r) => response_answer(node, r, ty),
            _ => Err(bad_answer(node, String::from("expected a response"))),
        }
    }

    /// The answer of a `kernel` call, checked to have shape `expected`.
    pub fn kernel(&mut self, node: u32, expected: &[u32]) -> Result<Tensor, RunError> {
        match self.next(node)? {
            Answer::Tensor(t) => {
                conv::tensor_answer(t.shape, t.data, expected).map_err(|m| bad_answer(node, m))
            }
            _ => Err(bad_answer(node, String::from("expected a tensor"))),
        }
    }
}

/// `log`: one line at `level`.
pub fn log(level: &str, message: &str) {
    wit_log::log(level, message);
}

/// The answer as an i64 (the type the node declared).
pub fn as_i64(value: Value, node: u32) -> Result<i64, RunError> {
    match value {
        Value::I64(v) => Ok(v),
        _ => Err(bad_answer(node, String::from("expected i64"))),
    }
}

/// The answer as an f64.
pub fn as_f64(value: Value, node: u32) -> Result<f64, RunError> {
    match value {
        Value::F64(v) => Ok(v),
        _ => Err(bad_answer(node, String::from("expected f64"))),
    }
}

/// The answer as a bool.
pub fn as_bool(value: Value, node: u32) -> Result<bool, RunError> {
    match value {
        Value::Bool(v) => Ok(v),
        _ => Err(bad_answer(node, String::from("expected bool"))),
    }
}

/// The answer as a string.
pub fn as_string(value: Value, node: u32) -> Result<String, RunError> {
    match value {
        Value::Str(v) => Ok(v),
        _ => Err(bad_answer(node, String::from("expected string"))),
    }
}

/// The answer as a tensor.
pub fn as_tensor(value: Value, node: u32) -> Result<Tensor, RunError> {
    match value {
        Value::Tensor(v) => Ok(v),
        _ => Err(bad_answer(node, String::from("expected a tensor"))),
    }
}
