//! Effect calls. Each effect op is described once — the guest function, its request
//! arguments, its answer arguments and the conversion of the answer to the node's type — and
//! spelled from that description in all three places it appears:
//!
//! - alone: `rt::effects::F(at, REQUEST, ANSWER)?`
//! - added to a round: `round.F(at, REQUEST);`
//! - taken from the round's answers: `round.F(at, ANSWER)?`
//!
//! each wrapped in `rt::effects::as_T(…, at)?` where the answer is a dynamic value.

use super::literal::{shape_literal, str_literal};
use super::{At, Generator, Result};
use crate::graph::{AnswerType, NodeId, Op, Region, Type};

/// How the guest turns an effect's answer into the node's value.
struct Answer {
    /// Extra arguments of the answering call (`&AnswerType::I64`, `&[4u32]`), if any.
    args: Option<String>,
    /// How the answer's `rt::Value` becomes the node's Rust value.
    extract: Extract,
}

enum Extract {
    /// The call's value is the node's.
    None,
    /// An `rt::effects::as_*` conversion of a scalar or tensor answer.
    Scalar(&'static str),
    /// Rows, read as the node's list of records by this expression of `v0`
    /// (`rt::data::read_*`; the answer was checked against the columns already).
    Data(String),
}

impl Answer {
    /// `call` (a guest call returning `Result`) with the answer's conversion applied.
    fn wrap(&self, call: String, at: u32) -> String {
        match &self.extract {
            Extract::Scalar(extract) => format!("rt::effects::{extract}({call}?, {at})?"),
            Extract::Data(read) => format!("{{ let v0 = {call}?; {read} }}"),
            Extract::None => format!("{call}?"),
        }
    }

    fn args(&self) -> String {
        self.args
            .as_ref()
            .map_or_else(String::new, |a| format!(", {a}"))
    }
}

impl Generator<'_> {
    /// An effect's request arguments (after the node number). Moves the arguments it
    /// consumes: call it once per node.
    fn request(&self, at: &At) -> Result<String> {
        let node = at.node;
        Ok(match &node.op {
            Op::DbQuery { sql, .. } | Op::DbExecute { sql } => {
                format!("{}, &[{}]", str_literal(sql), self.sql_values(at)?)
            }
            Op::Http { method, url, .. } => {
                let body = node.args.first().map_or_else(
                    || "None".to_string(),
                    |&b| format!("Some(&{})", self.var(b)),
                );
                format!("{}, {}, {body}", str_literal(method), str_literal(url))
            }
            Op::Kernel { name } => {
                let refs: Vec<String> = node
                    .args
                    .iter()
                    .map(|&x| format!("&{}", self.var(x)))
                    .collect();
                format!("{}, &[{}]", str_literal(name), refs.join(", "))
            }
            _ => return Err(at.no_rule("a request (not a db, http or kernel call)")),
        })
    }

    /// How the node's answer is read.
    fn answer(&self, at: &At) -> Result<Answer> {
        let node = at.node;
        let dynamic = |answer: &AnswerType| -> Result<Answer> {
            let extract = match &node.ty {
                Type::Bool => Extract::Scalar("as_bool"),
                Type::I64 => Extract::Scalar("as_i64"),
                Type::F64 => Extract::Scalar("as_f64"),
                Type::Str => Extract::Scalar("as_string"),
                Type::Tensor(_) => Extract::Scalar("as_tensor"),
                ty @ Type::List(_) if matches!(answer, AnswerType::Rows(_)) => Extract::Data(
                    super::emit::read_expr("v0", ty, 1).ok_or_else(|| at.no_rule("this answer"))?,
                ),
                Type::Tuple(_)
                | Type::List(_)
                | Type::Record(_)
                | Type::Option(_)
                | Type::Bytes => return Err(at.no_rule("this answer")),
            };
            Ok(Answer {
                args: Some(format!("&{}", answer_literal(answer))),
                extract,
            })
        };
        match &node.op {
            Op::DbQuery { answer, .. } | Op::Http { answer, .. } => dynamic(answer),
            Op::DbExecute { .. } => Ok(Answer {
                args: None,
                extract: Extract::None,
            }),
            Op::Kernel { .. } => match &node.ty {
                Type::Tensor(shape) => Ok(Answer {
                    args: Some(format!("&{}", shape_literal(shape))),
                    extract: Extract::None,
                }),
                _ => Err(at.no_rule("a result that is not a tensor")),
            },
            _ => Err(at.no_rule("an answer (not a db, http or kernel call)")),
        }
    }

    /// An effect node's value: taken from its round if it was sent in one, else one call.
    pub(super) fn effect(&self, at: &At) -> Result<String> {
        let answer = self.answer(at)?;
        let n = at.at();
        let function = function(at)?;
        let call = match self.round_of.get(&at.id) {
            Some(round) => format!("{round}.{function}({n}{})", answer.args()),
            None => {
                let request = self.request(at)?;
                format!("rt::effects::{function}({n}, {request}{})", answer.args())
            }
        };
        Ok(answer.wrap(call, n))
    }

    /// Prepares and sends one round (effects of one stage, canonical order); each member node
    /// then takes its answer where it stands ([`Generator::effect`]).
    pub(super) fn round(&mut self, members: &[NodeId], region: &Region) -> Result<()> {
        let graph = self.graph;
        let name = format!("round{}", members.first().map_or(0, |m| m.0));
        self.current = members.first().copied();
        self.line(&format!(
            "// {name}: {} effects sent as one round",
            members.len()
        ));
        self.line(&format!("let mut {name} = rt::effects::Round::new();"));
        for &id in members {
            let at = At {
                id,
                node: graph.node(id),
                region,
            };
            let (function, request) = (function(&at)?, self.request(&at)?);
            self.line(&format!("{name}.{function}({}, {request});", id.0));
            self.round_of.insert(id, name.clone());
        }
        self.line(&format!("let mut {name} = {name}.run();"));
        Ok(())
    }

    /// SQL parameters as `rt::Value`s, comma-separated.
    fn sql_values(&self, at: &At) -> Result<String> {
        let items = at
            .node
            .args
            .iter()
            .map(|&x| {
                let ty = &self.graph.node(x).ty;
                if !is_sql_parameter(ty) {
                    return Err(at.no_rule("a SQL parameter that is not a scalar"));
                }
                Ok(super::emit::value_expr(&self.owned(x, at.local(x)), ty))
            })
            .collect::<Result<Vec<String>>>()?;
        Ok(items.join(", "))
    }

    /// `log`: the argument's `Debug` text at `level`; the value is the argument.
    pub(super) fn log(&self, at: &At, level: &str) -> Result<String> {
        let x = at.arg(0)?;
        Ok(format!(
            "{{ rt::effects::log({}, &alloc::format!(\"{{:?}}\", &{})); {} }}",
            str_literal(level),
            self.var(x),
            self.owned(x, at.local(x))
        ))
    }
}

/// The types a SQL parameter may have (as `graph::lower` checks them): scalars, bytes and
/// options of those (none is NULL).
fn is_sql_parameter(ty: &Type) -> bool {
    match ty {
        Type::Bool | Type::I64 | Type::F64 | Type::Str | Type::Bytes => true,
        Type::Option(item) => !matches!(**item, Type::Option(_)) && is_sql_parameter(item),
        Type::Tensor(_) | Type::Tuple(_) | Type::List(_) | Type::Record(_) => false,
    }
}

/// The guest function of an effect: the same name alone, on a round and on its answers.
fn function(at: &At) -> Result<&'static str> {
    match &at.node.op {
        Op::DbQuery { .. } => Ok("db_query"),
        Op::DbExecute { .. } => Ok("db_execute"),
        Op::Http { .. } => Ok("http"),
        Op::Kernel { .. } => Ok("kernel"),
        _ => Err(at.no_rule("an effect call (not a db, http or kernel call)")),
    }
}

/// An `AnswerType` expression.
fn answer_literal(answer: &AnswerType) -> String {
    match answer {
        AnswerType::Bool => "rt::effects::AnswerType::Bool".into(),
        AnswerType::I64 => "rt::effects::AnswerType::I64".into(),
        AnswerType::F64 => "rt::effects::AnswerType::F64".into(),
        AnswerType::Str => "rt::effects::AnswerType::Str".into(),
        AnswerType::Tensor(shape) => format!(
            "rt::effects::AnswerType::Tensor(alloc::vec::Vec::from({}))",
            shape_literal(shape)
        ),
        AnswerType::Rows(columns) => {
            let columns: Vec<String> = columns
                .iter()
                .map(|c| {
                    format!(
                        "rt::effects::Column {{ name: alloc::string::String::from({}), ty: rt::effects::ColumnType::{:?}, nullable: {} }}",
                        str_literal(&c.name),
                        c.ty,
                        c.nullable
                    )
                })
                .collect();
            format!(
                "rt::effects::AnswerType::Rows(alloc::vec![{}])",
                columns.join(", ")
            )
        }
    }
}
