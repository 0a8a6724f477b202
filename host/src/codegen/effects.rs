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
use crate::graph::{AnswerType, BodyType, HttpAnswer, NodeId, Op, Region, Type};

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
            Op::DbExecuteMany { sql, fields } => {
                let list = at.arg(0)?;
                let names: Vec<String> = fields.iter().map(|f| str_literal(f)).collect();
                format!(
                    "{}, &{}, &[{}]",
                    str_literal(sql),
                    super::emit::value_expr(
                        &self.owned(list, at.local(list)),
                        &self.graph.node(list).ty
                    ),
                    names.join(", ")
                )
            }
            Op::Http {
                method,
                url,
                headers,
                ..
            } => {
                let value = |x: NodeId| {
                    super::emit::value_expr(&self.owned(x, at.local(x)), &self.graph.node(x).ty)
                };
                let (body, values) = node
                    .args
                    .split_at(node.args.len() - headers.len().min(node.args.len()));
                let body = body
                    .first()
                    .map_or_else(|| "None".to_string(), |&b| format!("Some({})", value(b)));
                let headers: Vec<String> = headers
                    .iter()
                    .zip(values)
                    .map(|(name, &x)| format!("({}, {})", str_literal(name), value(x)))
                    .collect();
                format!(
                    "{}, {}, &[{}], {body}",
                    str_literal(method),
                    str_literal(url),
                    headers.join(", ")
                )
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
            Op::DbQuery { answer, .. } => dynamic(answer),
            Op::Http { answer, .. } => {
                let extract = match &node.ty {
                    Type::Bool => Extract::Scalar("as_bool"),
                    Type::I64 => Extract::Scalar("as_i64"),
                    Type::F64 => Extract::Scalar("as_f64"),
                    Type::Str => Extract::Scalar("as_string"),
                    ty => Extract::Data(
                        super::emit::read_expr("v0", ty, 1)
                            .ok_or_else(|| at.no_rule("this answer"))?,
                    ),
                };
                Ok(Answer {
                    args: Some(format!("&{}", http_answer_literal(answer))),
                    extract,
                })
            }
            Op::DbExecute { .. } | Op::DbExecuteMany { .. } => Ok(Answer {
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
        let name = format!("round{}", members.first().map_or(0, |m| m.0));
        self.current = members.first().copied();
        self.line(&format!(
            "// {name}: {} effects sent as one round",
            members.len()
        ));
        self.line(&format!("let mut {name} = rt::effects::Round::new();"));
        self.add_to_round(&name, members, region)?;
        self.line(&format!("let mut {name} = {name}.run();"));
        Ok(())
    }

    /// Adds each member's call to the round `name`; each member then takes its answer from
    /// it where its binding is written.
    pub(super) fn add_to_round(
        &mut self,
        name: &str,
        members: &[NodeId],
        region: &Region,
    ) -> Result<()> {
        let graph = self.graph;
        for &id in members {
            let at = At {
                id,
                node: graph.node(id),
                region,
            };
            let (function, mut request) = (function(&at)?, self.request(&at)?);
            if let Op::Http { answer, .. } = &at.node.op {
                request.push_str(&format!(", {}", answer.wants_headers()));
            }
            self.line(&format!("{name}.{function}({}, {request});", id.0));
            self.round_of.insert(id, name.to_owned());
        }
        Ok(())
    }

    /// A `map` whose effects go out as one round for all its elements
    /// ([`Graph::element_round`](crate::graph::Graph::element_round)). Phase 1 runs the body
    /// up to its effects for each element and adds their calls to one round, inside a closure
    /// so that an element's error stops phase 1 without losing the elements before it; the
    /// round is sent; phase 2 takes each element's answers in element order and runs the rest
    /// of the body; then phase 1's error, if there was one. The first error is therefore the
    /// one a map running its elements one by one meets (eval's order): an earlier element's
    /// answer or rest, else the element whose first part failed. What differs is only what no
    /// order promised: the calls of later elements are sent even when an earlier one fails.
    pub(super) fn batched_map(
        &mut self,
        at: &At,
        body: &Region,
        effects: std::ops::Range<usize>,
    ) -> Result<()> {
        let graph = self.graph;
        let depth = self.loop_depth;
        let [src, item, out, kept, round, early] =
            ["src", "e", "out", "kept", "batch", "early"].map(|n| format!("{n}{depth}"));
        let list = at.arg(0)?;
        let &[param] = body.params.as_slice() else {
            return Err(at.error("a map's body has the wrong params".into()));
        };
        let result = body
            .results
            .first()
            .copied()
            .ok_or_else(|| at.error("a map's body without a result".into()))?;
        let prefix = &body.nodes[..effects.start];
        let members = &body.nodes[effects.clone()];
        let suffix = &body.nodes[effects.end..];
        // What phase 2 reads of phase 1: the element and the first part's values.
        let mut needed = std::collections::BTreeSet::from([result]);
        reads_in(graph, suffix, &mut needed);
        let carried: Vec<NodeId> = std::iter::once(param)
            .chain(
                prefix
                    .iter()
                    .copied()
                    .filter(|id| self.demanded[id.index()]),
            )
            .filter(|id| needed.contains(id))
            .collect();
        let tuple = |names: Vec<String>| match names.len() {
            1 => format!("({},)", names[0]),
            _ => format!("({})", names.join(", ")),
        };
        let types = tuple(
            carried
                .iter()
                .map(|&id| super::literal::rust_type(&graph.node(id).ty))
                .collect(),
        );
        let last_uses = super::plan::last_uses(graph, body, &self.demanded);
        let open = format!("{} = {{", self.binding(at.id));
        self.block(&open, "};", |g| {
            let list_value = g.owned(list, at.local(list));
            let n = at.at();
            g.line(&format!("let {src} = {list_value};"));
            g.line(&format!(
                "// map {:?}: {} effect(s) per element, all elements' sent as one round",
                at.node.name,
                members.len()
            ));
            g.line(&format!(
                "let mut {kept}: alloc::vec::Vec<{types}> = rt::data::with_capacity({src}.len(), {n})?;"
            ));
            g.line(&format!("let mut {round} = rt::effects::Round::new();"));
            g.line(&format!(
                "let {early}: Result<(), rt::RunError> = (|| -> Result<(), rt::RunError> {{"
            ));
            g.indent += 1;
            g.block(&format!("for {item} in {src} {{"), "}", |g| {
                g.loop_depth += 1;
                g.line(&format!("{} = {item};", g.binding(param)));
                for &id in prefix {
                    if g.demanded[id.index()] {
                        g.node(id, body)?;
                        g.drop_dead(id, &last_uses);
                    }
                }
                g.add_to_round(&round, members, body)?;
                for &id in members {
                    g.drop_dead(id, &last_uses);
                }
                let values: Vec<String> = carried.iter().map(|&id| g.var(id)).collect();
                g.line(&format!("{kept}.push({});", tuple(values)));
                g.loop_depth -= 1;
                Ok(())
            })?;
            g.line("Ok(())");
            g.indent -= 1;
            g.line("})();");
            g.line(&format!("let mut {round} = {round}.run();"));
            g.line(&format!(
                "let mut {out} = rt::data::with_capacity({kept}.len(), {n})?;"
            ));
            let names = tuple(carried.iter().map(|&id| g.var(id)).collect());
            g.block(&format!("for {names} in {kept} {{"), "}", |g| {
                g.loop_depth += 1;
                for &id in members {
                    g.node(id, body)?;
                }
                for &id in suffix {
                    if g.demanded[id.index()] {
                        g.node(id, body)?;
                        g.drop_dead(id, &last_uses);
                    }
                }
                g.current = Some(at.id);
                let local = body.nodes.contains(&result) || body.params.contains(&result);
                let value = g.owned(result, local);
                g.line(&format!("{out}.push({value});"));
                g.loop_depth -= 1;
                Ok(())
            })?;
            g.line(&format!("{early}?;"));
            g.line(&out);
            Ok(())
        })
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

/// Every node the code of `nodes` reads: their arguments, and the arguments and results of
/// the regions nested in them.
fn reads_in(
    graph: &crate::graph::Graph,
    nodes: &[NodeId],
    out: &mut std::collections::BTreeSet<NodeId>,
) {
    for &id in nodes {
        let node = graph.node(id);
        out.extend(node.args.iter().copied());
        for sub in node.op.regions() {
            reads_in(graph, &sub.nodes, out);
            out.extend(sub.results.iter().copied());
        }
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
        Op::DbExecuteMany { .. } => Ok("db_execute_many"),
        Op::Http { .. } => Ok("http"),
        Op::Kernel { .. } => Ok("kernel"),
        _ => Err(at.no_rule("an effect call (not a db, http or kernel call)")),
    }
}

/// An `HttpAnswer` expression.
fn http_answer_literal(answer: &HttpAnswer) -> String {
    let body = match &answer.body {
        BodyType::Str => "rt::effects::BodyType::Str".to_owned(),
        BodyType::I64 => "rt::effects::BodyType::I64".to_owned(),
        BodyType::F64 => "rt::effects::BodyType::F64".to_owned(),
        BodyType::Bool => "rt::effects::BodyType::Bool".to_owned(),
        BodyType::Bytes => "rt::effects::BodyType::Bytes".to_owned(),
        BodyType::Json(schema) => format!(
            "rt::effects::BodyType::Json({})",
            super::emit::schema_literal(schema)
        ),
    };
    format!(
        "rt::effects::HttpAnswer {{ body: {body}, full: {}, headers: {} }}",
        answer.full, answer.headers
    )
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
