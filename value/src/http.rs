//! HTTP requests from graph values and responses into graph values: the rules of the `http`
//! node, one definition for `eval` and every guest (so both send the same bytes and read the
//! same answer).
//!
//! Invariants:
//! - A body is sent as written when it is a string or bytes; any other value goes as its
//!   canonical JSON ([`crate::json::emit`]) with `content-type: application/json`, unless the
//!   node sets `content-type` itself.
//! - A header whose value is an empty option is not sent; header names arrive lower-cased and
//!   checked (by the graph's lowering and again by the host).
//! - Answering the body (`"response": "body"`, the default) makes a status outside 200–299 an
//!   error ([`AnswerError::Status`]); the full response (`"response": "full"`) hands every
//!   status to the graph as `{status, headers?, body}`, so a graph decides what a 404 means.
//! - A JSON body is read by the declared type ([`crate::json::parse`]); an empty body read as
//!   an option is none (a 204, say). Nothing here panics.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::json::Schema;
use crate::{Value, canonical_f64};

/// How a body becomes a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyType {
    /// UTF-8 text, as is.
    Str,
    /// The trimmed text as an integer.
    I64,
    /// The trimmed text as a number.
    F64,
    /// The trimmed text, `true` or `false`.
    Bool,
    /// The bytes, as they came.
    Bytes,
    /// JSON, read as this type.
    Json(Schema),
}

/// What an `http` node's value is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAnswer {
    /// How the body is read.
    pub body: BodyType,
    /// `{status, headers?, body}` for any status, instead of the body of a 2xx.
    pub full: bool,
    /// The full response carries the response's headers (`headers` field).
    pub headers: bool,
}

impl HttpAnswer {
    /// Whether the host must send the response's headers back.
    pub fn wants_headers(&self) -> bool {
        self.full && self.headers
    }
}

/// A request's headers and body, ready to send.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Request {
    /// `(lower-cased name, value)`, in the node's order; `content-type` added last for JSON.
    pub headers: Vec<(String, String)>,
    /// The body, if the node has one.
    pub body: Option<Vec<u8>>,
}

/// The headers and body of a request: `headers` pairs each declared name with its value (a
/// string, or an option of one: none leaves the header out), `body` is the node's body value.
pub fn request(headers: &[(&str, &Value)], body: Option<&Value>) -> Result<Request, String> {
    let mut out = Vec::with_capacity(headers.len() + 1);
    for (name, value) in headers {
        let text = match value {
            Value::Str(s) => Some(s),
            Value::Option(None) => None,
            Value::Option(Some(inner)) => match &**inner {
                Value::Str(s) => Some(s),
                other => return Err(format!("header {name}: a {} value", other.kind_name())),
            },
            other => return Err(format!("header {name}: a {} value", other.kind_name())),
        };
        if let Some(text) = text {
            out.push((String::from(*name), text.clone()));
        }
    }
    let body = match body {
        None => None,
        Some(Value::Str(s)) => Some(s.clone().into_bytes()),
        Some(Value::Bytes(b)) => Some(b.clone()),
        Some(value) => {
            let text = crate::json::emit(value).map_err(|e| format!("the JSON body: {e}"))?;
            if !out.iter().any(|(name, _)| name == "content-type") {
                out.push((
                    String::from("content-type"),
                    String::from("application/json"),
                ));
            }
            Some(text.into_bytes())
        }
    };
    Ok(Request { headers: out, body })
}

/// Why a response did not become the node's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerError {
    /// A status outside 200–299 where the node reads only the body.
    Status(u16),
    /// The body (or a header) does not fit the declared type.
    Bad(String),
}

/// A response as the node's value.
pub fn answer(
    status: u16,
    headers: Vec<(String, String)>,
    body: &[u8],
    ty: &HttpAnswer,
) -> Result<Value, AnswerError> {
    if !ty.full {
        if !(200..300).contains(&status) {
            return Err(AnswerError::Status(status));
        }
        return body_to_value(body, &ty.body).map_err(AnswerError::Bad);
    }
    let body = body_to_value(body, &ty.body)
        .map_err(|e| AnswerError::Bad(format!("the body of a {status} response: {e}")))?;
    let mut fields = Vec::with_capacity(3);
    fields.push((String::from("body"), body));
    if ty.headers {
        let list = headers
            .into_iter()
            .map(|(name, value)| {
                Value::Record(alloc::vec![
                    (String::from("name"), Value::Str(name)),
                    (String::from("value"), Value::Str(value)),
                ])
            })
            .collect();
        fields.push((String::from("headers"), Value::List(list)));
    }
    fields.push((String::from("status"), Value::I64(i64::from(status))));
    Ok(Value::Record(fields))
}

/// A body as a value of `ty`.
pub fn body_to_value(body: &[u8], ty: &BodyType) -> Result<Value, String> {
    let text = || core::str::from_utf8(body).map_err(|e| format!("the body is not UTF-8: {e}"));
    match ty {
        BodyType::Bytes => Ok(Value::Bytes(body.to_vec())),
        BodyType::Str => Ok(Value::Str(String::from(text()?))),
        BodyType::I64 => {
            let trimmed = text()?.trim();
            trimmed
                .parse::<i64>()
                .map(Value::I64)
                .map_err(|_| format!("expected an integer body, got {:?}", preview(trimmed)))
        }
        BodyType::F64 => {
            let trimmed = text()?.trim();
            trimmed
                .parse::<f64>()
                .map(|x| Value::F64(canonical_f64(x)))
                .map_err(|_| format!("expected a number body, got {:?}", preview(trimmed)))
        }
        BodyType::Bool => match text()?.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            other => Err(format!("expected true or false, got {:?}", preview(other))),
        },
        BodyType::Json(Schema::Option(_)) if text()?.trim().is_empty() => Ok(Value::Option(None)),
        BodyType::Json(schema) => crate::json::parse(text()?, schema),
    }
}

fn preview(text: &str) -> &str {
    match text.char_indices().nth(40) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec;

    fn json(schema: Schema) -> HttpAnswer {
        HttpAnswer {
            body: BodyType::Json(schema),
            full: false,
            headers: false,
        }
    }

    #[test]
    fn bodies_parse_by_type() {
        let scalar = |body| HttpAnswer {
            body,
            full: false,
            headers: false,
        };
        assert_eq!(
            answer(200, vec![], b" 42\n", &scalar(BodyType::I64)),
            Ok(Value::I64(42))
        );
        assert!(answer(200, vec![], b"\xff", &scalar(BodyType::Str)).is_err());
        assert_eq!(
            answer(200, vec![], b"\xff", &scalar(BodyType::Bytes)),
            Ok(Value::Bytes(vec![0xff]))
        );
        assert!(answer(200, vec![], b"4x", &scalar(BodyType::I64)).is_err());
        assert_eq!(
            answer(200, vec![], b"true", &scalar(BodyType::Bool)),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            answer(404, vec![], b"true", &scalar(BodyType::Bool)),
            Err(AnswerError::Status(404))
        );
        let record = Schema::Record(vec![(String::from("d"), Schema::F64)]);
        assert_eq!(
            answer(200, vec![], br#"{"d": 0.5}"#, &json(record.clone())),
            Ok(Value::Record(vec![(String::from("d"), Value::F64(0.5))]))
        );
        let Err(AnswerError::Bad(why)) = answer(200, vec![], br#"{"d": "x"}"#, &json(record))
        else {
            panic!("a string is no f64");
        };
        assert!(why.contains("$.d"), "{why}");
        assert_eq!(
            answer(
                200,
                vec![],
                b"  ",
                &json(Schema::Option(Box::new(Schema::I64)))
            ),
            Ok(Value::Option(None))
        );
    }

    #[test]
    fn the_full_response_holds_any_status_and_its_headers() {
        let ty = HttpAnswer {
            body: BodyType::Str,
            full: true,
            headers: true,
        };
        let value = answer(
            503,
            vec![(String::from("retry-after"), String::from("3"))],
            b"busy",
            &ty,
        );
        assert_eq!(
            value,
            Ok(Value::Record(vec![
                (String::from("body"), Value::Str(String::from("busy"))),
                (
                    String::from("headers"),
                    Value::List(vec![Value::Record(vec![
                        (
                            String::from("name"),
                            Value::Str(String::from("retry-after"))
                        ),
                        (String::from("value"), Value::Str(String::from("3"))),
                    ])])
                ),
                (String::from("status"), Value::I64(503)),
            ]))
        );
    }

    #[test]
    fn requests_send_json_for_data_and_skip_empty_headers() {
        let key = Value::Str(String::from("k1"));
        let none = Value::Option(None);
        let body = Value::Record(vec![(String::from("id"), Value::I64(7))]);
        let sent = request(&[("x-key", &key), ("x-trace", &none)], Some(&body)).expect("a request");
        assert_eq!(
            sent.headers,
            vec![
                (String::from("x-key"), String::from("k1")),
                (
                    String::from("content-type"),
                    String::from("application/json")
                ),
            ]
        );
        assert_eq!(sent.body.as_deref(), Some(&br#"{"id":7}"#[..]));
        let own = Value::Str(String::from("text/plain"));
        let text = Value::Str(String::from("hi"));
        let sent = request(&[("content-type", &own)], Some(&text)).expect("a request");
        assert_eq!(sent.headers.len(), 1);
        assert_eq!(sent.body.as_deref(), Some(&b"hi"[..]));
        assert!(request(&[("x", &Value::I64(1))], None).is_err());
        assert!(request(&[], Some(&Value::F64(f64::NAN))).is_err());
    }
}
