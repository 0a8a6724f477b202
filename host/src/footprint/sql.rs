//! The tables an SQL string reads and writes, taken from a real PostgreSQL parse.
//!
//! [`analyze`] parses with `sqlparser`'s PostgreSQL dialect and walks every statement with
//! its [`Visitor`]; [`Footprint::check_sql`] then compares the result with the declared sets.
//! Invariants:
//! - Only SELECT (with VALUES and set operations), INSERT, UPDATE, DELETE and MERGE are
//!   accepted, several per string allowed; every other statement is refused by kind.
//! - Every relation the parser records is counted: as a write when it is the target of an
//!   INSERT/UPDATE/DELETE/MERGE (found by address in the AST, so a CTE or subquery elsewhere
//!   naming the same table is still a read), else as a read, unless it is an unqualified
//!   name of a CTE in scope (PostgreSQL's scoping: a CTE sees earlier siblings, all of them
//!   under RECURSIVE, and the main query sees all; inner WITHs shadow outer ones). A CTE
//!   body's own tables are counted; a data-modifying CTE's target is a write.
//! - A write target is also a read when the statement observes its rows: always for UPDATE,
//!   DELETE and MERGE, for INSERT when it has RETURNING or ON CONFLICT. Writing never grants
//!   reading (PostgreSQL's own privilege rules, at table granularity).
//! - Forms the walk cannot vouch for are refused rather than guessed at ([`SqlConstruct`]);
//!   every function call must be on the allow-list in `functions`.
//! - No input panics: length is bounded by [`MAX_SQL_BYTES`], nesting by the parser's
//!   recursion limit, and long operator chains by `sqlparser`'s stack growth
//!   (`recursive-protection`, on by default).
//!
//! This module knows nothing of drivers: it never connects to a database.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    ArrayElemTypeDef, DataType, Expr, FromTable, Ident, ObjectName, ObjectNamePart, Query, Select,
    SetExpr, Statement, TableFactor, TableWithJoins, Visit, Visitor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};

use super::denied::shown;
use super::table::{MAX_IDENTIFIER_BYTES, TableName};
use super::{Access, Denied, Footprint, SqlConstruct, functions, lexical};

/// The longest SQL string a graph may send. Real queries are far shorter; the bound keeps
/// parsing time and the AST (whose left-deep operator chains are as deep as the text is long)
/// small, so that a hostile query cannot exhaust the host's stack or CPU.
pub(crate) const MAX_SQL_BYTES: usize = 16 * 1024;

/// How deep the parser may nest (subqueries, parentheses). `sqlparser`'s default is 50.
const MAX_PARSER_DEPTH: usize = 50;

/// The kind of one accepted statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatementKind {
    /// SELECT, VALUES, or a set operation of them (possibly with data-modifying CTEs).
    Select,
    /// INSERT.
    Insert,
    /// UPDATE.
    Update,
    /// DELETE.
    Delete,
    /// MERGE.
    Merge,
}

/// What an SQL string touches, once checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SqlAccess {
    /// Tables whose rows the SQL observes.
    pub(crate) reads: BTreeSet<TableName>,
    /// Tables the SQL modifies. Empty means the SQL can run in a read-only transaction.
    pub(crate) writes: BTreeSet<TableName>,
    /// The statements, in order.
    pub(crate) statements: Vec<StatementKind>,
    /// The text a driver runs: the canonical print of what was checked (`lexical`), never the
    /// graph's own text.
    pub(crate) sql: String,
}

impl Footprint {
    /// Checks SQL against the declared tables: every write target in `db.write`, every table
    /// read in `db.read`. Writes are checked first, then reads, each in name order.
    pub(crate) fn check_sql(&self, sql: &str) -> Result<SqlAccess, Denied> {
        let access = analyze(sql)?;
        let refused = |table: &TableName, access: Access| Denied::Table {
            table: table.clone(),
            access,
            system: table.is_system(),
        };
        if let Some(table) = access.writes.iter().find(|t| !self.db.write.contains(*t)) {
            return Err(refused(table, Access::Write));
        }
        if let Some(table) = access.reads.iter().find(|t| !self.db.read.contains(*t)) {
            return Err(refused(table, Access::Read));
        }
        Ok(access)
    }
}

/// Parses `sql` and collects the tables it reads and writes, refusing anything that is not
/// plainly a query or a DML statement (see the module invariants). Independent of any
/// footprint.
pub(crate) fn analyze(sql: &str) -> Result<SqlAccess, Denied> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(Denied::SqlTooLong {
            length: sql.len(),
            limit: MAX_SQL_BYTES,
        });
    }
    lexical::check(sql)?;
    let statements = Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(MAX_PARSER_DEPTH)
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|error| match error {
            ParserError::RecursionLimitExceeded => Denied::SqlConstruct {
                construct: SqlConstruct::TooDeep,
            },
            ParserError::TokenizerError(message) | ParserError::ParserError(message) => {
                Denied::SqlSyntax {
                    message: shown(&message),
                }
            }
        })?;
    if statements.is_empty() {
        return Err(Denied::SqlConstruct {
            construct: SqlConstruct::NoStatement,
        });
    }
    let mut walker = Walker::default();
    let mut kinds = Vec::with_capacity(statements.len());
    for (index, statement) in statements.iter().enumerate() {
        let Some(kind) = statement_kind(statement) else {
            return Err(Denied::Statement {
                index,
                kind: leading_keywords(statement),
            });
        };
        kinds.push(kind);
        if let ControlFlow::Break(denied) = statement.visit(&mut walker) {
            return Err(denied);
        }
    }
    let canonical = lexical::canonical(&statements, MAX_PARSER_DEPTH)?;
    Ok(SqlAccess {
        reads: walker.reads,
        writes: walker.writes,
        statements: kinds,
        sql: canonical,
    })
}

fn statement_kind(statement: &Statement) -> Option<StatementKind> {
    match statement {
        Statement::Query(query) => Some(match query.body.as_ref() {
            SetExpr::Insert(_) => StatementKind::Insert,
            SetExpr::Update(_) => StatementKind::Update,
            SetExpr::Delete(_) => StatementKind::Delete,
            SetExpr::Merge(_) => StatementKind::Merge,
            _ => StatementKind::Select,
        }),
        Statement::Insert(_) => Some(StatementKind::Insert),
        Statement::Update(_) => Some(StatementKind::Update),
        Statement::Delete(_) => Some(StatementKind::Delete),
        Statement::Merge(_) => Some(StatementKind::Merge),
        _ => None,
    }
}

/// The statement's leading upper-case keywords as the parser prints them (`DROP TABLE`,
/// `COPY`, `START TRANSACTION`), at most two.
fn leading_keywords(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text
        .split_whitespace()
        .take(2)
        .take_while(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    if words.is_empty() {
        "an unsupported statement".to_string()
    } else {
        words.join(" ")
    }
}

/// A write target: where it is in the AST, and whether the statement also reads it.
struct Target {
    name: *const ObjectName,
    also_read: bool,
}

/// The CTEs one query defines, and how many of them are visible at the current point.
struct Scope {
    /// Case-folded names and the address of each body.
    ctes: Vec<(String, *const Query)>,
    recursive: bool,
    visible: usize,
}

/// Collects reads and writes. Addresses identify AST nodes (write targets, CTE bodies,
/// function names in FROM); they are only compared, never dereferenced, and all point into
/// the statements being visited, which outlive the walk.
#[derive(Default)]
struct Walker {
    reads: BTreeSet<TableName>,
    writes: BTreeSet<TableName>,
    targets: Vec<Target>,
    /// `FROM f(args)`: the parser records `f` as a relation; it is a function.
    functions_in_from: Vec<*const ObjectName>,
    scopes: Vec<Scope>,
}

impl Walker {
    fn is_cte(&self, name: &str) -> bool {
        self.scopes.iter().any(|scope| {
            scope
                .ctes
                .iter()
                .take(scope.visible)
                .any(|(cte, _)| cte == name)
        })
    }

    fn add_target(&mut self, relation: &TableFactor, also_read: bool) -> ControlFlow<Denied> {
        let TableFactor::Table {
            name, args: None, ..
        } = relation
        else {
            return refuse(SqlConstruct::UnsupportedWriteTarget);
        };
        self.targets.push(Target {
            name: std::ptr::from_ref(name),
            also_read,
        });
        ControlFlow::Continue(())
    }

    fn add_targets(&mut self, tables: &[TableWithJoins], also_read: bool) -> ControlFlow<Denied> {
        for table in tables {
            if !table.joins.is_empty() {
                return refuse(SqlConstruct::UnsupportedWriteTarget);
            }
            self.add_target(&table.relation, also_read)?;
        }
        ControlFlow::Continue(())
    }
}

impl Visitor for Walker {
    type Break = Denied;

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<Denied> {
        match statement {
            Statement::Query(_) => ControlFlow::Continue(()),
            Statement::Insert(insert) => {
                let sqlparser::ast::TableObject::TableName(name) = &insert.table else {
                    return refuse(SqlConstruct::UnsupportedWriteTarget);
                };
                if insert.settings.is_some() || insert.format_clause.is_some() {
                    return refuse(SqlConstruct::ForeignClause);
                }
                self.targets.push(Target {
                    name: std::ptr::from_ref(name),
                    also_read: insert.returning.is_some() || insert.on.is_some(),
                });
                ControlFlow::Continue(())
            }
            Statement::Update(update) => {
                if !update.table.joins.is_empty() {
                    return refuse(SqlConstruct::UnsupportedWriteTarget);
                }
                self.add_target(&update.table.relation, true)
            }
            Statement::Delete(delete) => {
                if !delete.tables.is_empty() {
                    return refuse(SqlConstruct::UnsupportedWriteTarget);
                }
                match &delete.from {
                    FromTable::WithFromKeyword(tables) | FromTable::WithoutKeyword(tables) => {
                        self.add_targets(tables, true)
                    }
                }
            }
            Statement::Merge(merge) => self.add_target(&merge.table, true),
            other => ControlFlow::Break(Denied::Statement {
                index: 0,
                kind: leading_keywords(other),
            }),
        }
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Denied> {
        if !query.locks.is_empty() {
            return refuse(SqlConstruct::RowLocks);
        }
        if query.for_clause.is_some()
            || query.settings.is_some()
            || query.format_clause.is_some()
            || !query.pipe_operators.is_empty()
        {
            return refuse(SqlConstruct::ForeignClause);
        }
        check_set_expr(&query.body)?;
        if let Some(parent) = self.scopes.last_mut()
            && let Some(index) = parent
                .ctes
                .iter()
                .position(|(_, body)| std::ptr::eq(*body, query))
        {
            parent.visible = if parent.recursive {
                parent.ctes.len()
            } else {
                index
            };
        }
        let mut scope = Scope {
            ctes: Vec::new(),
            recursive: false,
            visible: 0,
        };
        if let Some(with) = &query.with {
            scope.recursive = with.recursive;
            for cte in &with.cte_tables {
                let name = fold(&cte.alias.name)?;
                scope
                    .ctes
                    .push((name, std::ptr::from_ref(cte.query.as_ref())));
            }
            scope.visible = scope.ctes.len();
        }
        self.scopes.push(scope);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &Query) -> ControlFlow<Denied> {
        self.scopes.pop();
        if let Some(parent) = self.scopes.last_mut()
            && parent
                .ctes
                .iter()
                .any(|(_, body)| std::ptr::eq(*body, query))
        {
            parent.visible = parent.ctes.len();
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<Denied> {
        if select.into.is_some() {
            return refuse(SqlConstruct::SelectInto);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Denied> {
        match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => {
                check_function(name)?;
                self.functions_in_from.push(std::ptr::from_ref(name));
                ControlFlow::Continue(())
            }
            TableFactor::Function { name, .. } => check_function(name),
            TableFactor::Table { .. }
            | TableFactor::Derived { .. }
            | TableFactor::NestedJoin { .. }
            | TableFactor::UNNEST { .. } => ControlFlow::Continue(()),
            _ => refuse(SqlConstruct::UnsupportedFromItem),
        }
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<Denied> {
        if self
            .functions_in_from
            .iter()
            .any(|f| std::ptr::eq(*f, relation))
        {
            return ControlFlow::Continue(());
        }
        let parts = fold_name(relation)?;
        let table = match parts.as_slice() {
            [name] => TableName::resolve(None, name),
            [schema, name] => TableName::resolve(Some(schema), name),
            _ => return refuse(SqlConstruct::CatalogQualifiedName),
        };
        let Ok(table) = table else {
            return refuse(SqlConstruct::OddIdentifier);
        };
        if let Some(target) = self.targets.iter().find(|t| std::ptr::eq(t.name, relation)) {
            if target.also_read {
                self.reads.insert(table.clone());
            }
            self.writes.insert(table);
            return ControlFlow::Continue(());
        }
        if let [name] = parts.as_slice()
            && self.is_cte(name)
        {
            return ControlFlow::Continue(());
        }
        self.reads.insert(table);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Denied> {
        match expr {
            Expr::Function(function) => check_function(&function.name),
            Expr::Cast { data_type, .. } if is_reg_type(data_type) => {
                refuse(SqlConstruct::RegTypeCast)
            }
            Expr::TypedString(typed) if is_reg_type(&typed.data_type) => {
                refuse(SqlConstruct::RegTypeCast)
            }
            _ => ControlFlow::Continue(()),
        }
    }
}

fn refuse(construct: SqlConstruct) -> ControlFlow<Denied> {
    ControlFlow::Break(Denied::SqlConstruct { construct })
}

/// Refuses `TABLE t` anywhere in a set-operation tree (the parser keeps its name as plain
/// strings, outside the relation visitor). Iterative: `UNION` chains can be long.
fn check_set_expr(body: &SetExpr) -> ControlFlow<Denied> {
    let mut pending = vec![body];
    while let Some(expr) = pending.pop() {
        match expr {
            SetExpr::Table(_) => return refuse(SqlConstruct::TableShorthand),
            SetExpr::SetOperation { left, right, .. } => {
                pending.push(left);
                pending.push(right);
            }
            _ => {}
        }
    }
    ControlFlow::Continue(())
}

fn check_function(name: &ObjectName) -> ControlFlow<Denied> {
    let parts = fold_name(name)?;
    let borrowed: Vec<&str> = parts.iter().map(String::as_str).collect();
    match functions::classify(&borrowed) {
        None => ControlFlow::Continue(()),
        Some(reason) => ControlFlow::Break(Denied::Function {
            name: shown(&borrowed.join(".")),
            reason,
        }),
    }
}

/// `regclass`, `regtype`, `regproc`, … (or an array of one): casting a string to one looks
/// it up in the catalogs.
fn is_reg_type(data_type: &DataType) -> bool {
    let mut current = data_type;
    loop {
        match current {
            DataType::Regclass => return true,
            DataType::Custom(name, _) => {
                return name.0.last().is_some_and(|part| match part {
                    ObjectNamePart::Identifier(ident) => {
                        ident.value.to_ascii_lowercase().starts_with("reg")
                    }
                    ObjectNamePart::Function(_) => true,
                });
            }
            DataType::Array(
                ArrayElemTypeDef::AngleBracket(inner)
                | ArrayElemTypeDef::SquareBracket(inner, _)
                | ArrayElemTypeDef::Parenthesis(inner)
                | ArrayElemTypeDef::ParenthesisNotNull(inner)
                | ArrayElemTypeDef::Qualified(inner, _),
            ) => current = inner,
            _ => return false,
        }
    }
}

/// Each part of a name, case-folded as PostgreSQL does.
fn fold_name(name: &ObjectName) -> ControlFlow<Denied, Vec<String>> {
    let mut parts = Vec::with_capacity(name.0.len());
    for part in &name.0 {
        let ObjectNamePart::Identifier(ident) = part else {
            return ControlFlow::Break(Denied::SqlConstruct {
                construct: SqlConstruct::OddIdentifier,
            });
        };
        parts.push(fold(ident)?);
    }
    ControlFlow::Continue(parts)
}

/// Unquoted: ASCII lower case (PostgreSQL in a UTF-8 database); `"quoted"`: exact.
fn fold(ident: &Ident) -> ControlFlow<Denied, String> {
    let folded = match ident.quote_style {
        None => ident.value.to_ascii_lowercase(),
        Some('"') => ident.value.clone(),
        Some(_) => {
            return ControlFlow::Break(Denied::SqlConstruct {
                construct: SqlConstruct::OddIdentifier,
            });
        }
    };
    if folded.is_empty() {
        return ControlFlow::Break(Denied::SqlConstruct {
            construct: SqlConstruct::OddIdentifier,
        });
    }
    if folded.len() > MAX_IDENTIFIER_BYTES {
        return ControlFlow::Break(Denied::SqlConstruct {
            construct: SqlConstruct::LongIdentifier,
        });
    }
    ControlFlow::Continue(folded)
}
