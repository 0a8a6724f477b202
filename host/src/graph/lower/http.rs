//! The `http` node's fields: its request headers, its body and what its value is.
//!
//! Invariants:
//! - A header name is a lower-cased HTTP token, at most once per node, and never one the
//!   sandbox owns ([`crate::effects::refused_header`]: `host`, framing and hop-by-hop headers,
//!   proxy and forwarding headers); the host checks every call again.
//! - `"response": "full"` needs the type `{"record": {"status": "i64", "body": T}}`, with an
//!   optional `"headers": {"list": {"record": {"name": "string", "value": "string"}}}`; any
//!   other record is refused, never read loosely.

use crate::graph::error::{GraphError, GraphErrorKind as Kind};
use crate::graph::json::NodeJson;
use crate::graph::types::Type;
use crate::graph::{BodyType, HttpAnswer};

/// The most headers one node may set.
const MAX_HEADERS: usize = 64;

/// The node's header names, lower-cased and checked.
pub(super) fn headers(json: &NodeJson) -> Result<Vec<String>, GraphError> {
    let Some(names) = &json.headers else {
        return Ok(Vec::new());
    };
    if names.len() > MAX_HEADERS {
        return Err(GraphError::new(
            Kind::ResourceExceeded,
            format!("{} headers; the limit is {MAX_HEADERS}", names.len()),
            "send fewer headers",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let lower = name.to_ascii_lowercase();
        crate::effects::refused_header(&lower).map_or(Ok(()), |why| {
            Err(GraphError::new(
                Kind::Field,
                format!("the header {name:?} cannot be set by a graph: {why}"),
                "remove it from \"headers\"; the host sets what the connection needs",
            ))
        })?;
        if out.contains(&lower) {
            return Err(GraphError::new(
                Kind::Field,
                format!("the header {name:?} is named twice"),
                "name each header once (join repeated values with \", \")",
            ));
        }
        out.push(lower);
    }
    Ok(out)
}

/// The argument types: the body, if any (in version 1 a string; in version 2 any value but a
/// tensor or tuple), then one string (or option of a string) per header.
pub(super) fn check_args(
    headers: &[String],
    args: &[Type],
    version: u64,
) -> Result<(), GraphError> {
    let body = match args.len().checked_sub(headers.len()) {
        Some(0) => None,
        Some(1) => Some(&args[0]),
        _ => {
            return Err(GraphError::new(
                Kind::Type,
                format!(
                    "`http` takes the body (if any) and then one value per header: {} headers, \
                     {} arguments",
                    headers.len(),
                    args.len()
                ),
                "pass [body?, header values in \"headers\" order]",
            ));
        }
    };
    if let Some(body) = body {
        let fits = match body {
            Type::Str => true,
            Type::Tensor(_) | Type::Tuple(_) => false,
            _ => version >= 2,
        };
        if !fits {
            return Err(GraphError::new(
                Kind::Type,
                format!("an `http` body cannot be {body}"),
                "pass a string (sent as is), bytes, or (version 2) any data value, sent as \
                 its canonical JSON",
            ));
        }
    }
    let header_args = &args[usize::from(body.is_some())..];
    for (name, ty) in headers.iter().zip(header_args) {
        let fits = match ty {
            Type::Str => true,
            Type::Option(inner) => **inner == Type::Str,
            _ => false,
        };
        if !fits {
            return Err(GraphError::new(
                Kind::Type,
                format!("the header {name:?} is given {ty}"),
                "pass a string, or an option of a string (none: the header is not sent)",
            ));
        }
    }
    Ok(())
}

/// What the node's value is, from `response` and its declared type.
pub(super) fn answer(json: &NodeJson, ty: &Type) -> Result<HttpAnswer, GraphError> {
    let full = match json.response.as_deref() {
        None | Some("body") => false,
        Some("full") => true,
        Some(other) => {
            return Err(GraphError::new(
                Kind::Field,
                format!("unknown \"response\" {other:?}"),
                "use \"body\" (the 2xx body, the default) or \"full\" ({status, headers?, body} \
                 for any status)",
            ));
        }
    };
    if !full {
        return Ok(HttpAnswer {
            body: body_type(ty)?,
            full,
            headers: false,
        });
    }
    let refuse = || {
        GraphError::new(
            Kind::Type,
            format!("a full `http` response is a record {{status, headers?, body}}, not {ty}"),
            "write \"type\": {\"record\": {\"status\": \"i64\", \"body\": T}}, optionally with \
             \"headers\": {\"list\": {\"record\": {\"name\": \"string\", \"value\": \"string\"}}}",
        )
    };
    let Type::Record(fields) = ty else {
        return Err(refuse());
    };
    let header_list = Type::List(Box::new(Type::Record(vec![
        ("name".to_owned(), Type::Str),
        ("value".to_owned(), Type::Str),
    ])));
    let (mut body, mut headers, mut status) = (None, false, false);
    for (name, field) in fields {
        match name.as_str() {
            "body" => body = Some(body_type(field)?),
            "headers" if *field == header_list => headers = true,
            "status" if *field == Type::I64 => status = true,
            _ => return Err(refuse()),
        }
    }
    match (body, status) {
        (Some(body), true) => Ok(HttpAnswer {
            body,
            full,
            headers,
        }),
        _ => Err(refuse()),
    }
}

/// How a body of type `ty` is read: text and bytes as they are, scalars from the trimmed
/// text, any other data type as JSON.
fn body_type(ty: &Type) -> Result<BodyType, GraphError> {
    Ok(match ty {
        Type::Str => BodyType::Str,
        Type::I64 => BodyType::I64,
        Type::F64 => BodyType::F64,
        Type::Bool => BodyType::Bool,
        Type::Bytes => BodyType::Bytes,
        Type::List(_) | Type::Record(_) | Type::Option(_) => match ty.schema() {
            Some(schema) => BodyType::Json(schema),
            None => return Err(no_body(ty)),
        },
        Type::Tensor(_) | Type::Tuple(_) => return Err(no_body(ty)),
    })
}

fn no_body(ty: &Type) -> GraphError {
    GraphError::new(
        Kind::Type,
        format!("an `http` body cannot be read as {ty}"),
        "use string, bytes, i64, f64, bool, or (version 2) a list, record or option read as JSON",
    )
}
