//! The embedded database: SQLite (rusqlite, bundled), in memory, for hosts given no
//! PostgreSQL — so that a DB example runs anywhere. Same contract as the PostgreSQL runner:
//! the footprint check happens before (in the dispatcher), one transaction per call,
//! read-only unless the statement writes, a deadline, row and byte caps, typed errors.
//!
//! Invariants:
//! - Parameters are bound by name (`$1`, `$2`, …), never formatted into the SQL, and a
//!   statement must use exactly the parameters given.
//! - Read-only calls run with `PRAGMA query_only`: SQLite itself refuses any write.
//! - A call past its deadline is interrupted by SQLite's progress handler (typed timeout).
//! - The connection is used from tokio's blocking pool, one call at a time.
//! - SQLite enforces the footprint itself: while a graph's statement is prepared, an
//!   authorizer allows only the declared tables for the declared access (reads inside a
//!   declared view count as the view's), only allow-listed functions, and only reads and
//!   writes of rows — no PRAGMA, ATTACH, DDL or transaction control — whatever the text says.
//! - Limits on the connection bound what one statement may build: string and blob length
//!   (so no cell exceeds the byte cap before it is counted), SQL length, expression depth,
//!   compound selects, attached databases (none), and the process's SQLite heap.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use graphjit_value::effects::{Cell, Rows};
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode};

use super::call::EffectError;
use super::db::{Access, Grants, TableUse};

/// The most rows a query may return.
const MAX_ROWS: usize = 10_000;
/// The most bytes of cells a query may return.
const MAX_BYTES: usize = 16 << 20;

/// Per-connection limits (`sqlite3_limit`), set after the operator's init script. Each bounds
/// what one hostile statement can make SQLite build: a value longer than the byte cap (it
/// would be allocated before the cap could count it), a huge expression tree or compound
/// select, or a reach into another database file.
const LIMITS: &[(Limit, i32)] = &[
    (Limit::SQLITE_LIMIT_LENGTH, MAX_BYTES as i32),
    (Limit::SQLITE_LIMIT_SQL_LENGTH, 64 * 1024),
    (Limit::SQLITE_LIMIT_COLUMN, 2_000),
    (Limit::SQLITE_LIMIT_EXPR_DEPTH, 200),
    (Limit::SQLITE_LIMIT_COMPOUND_SELECT, 200),
    (Limit::SQLITE_LIMIT_VDBE_OP, 1_000_000),
    (Limit::SQLITE_LIMIT_FUNCTION_ARG, 100),
    (Limit::SQLITE_LIMIT_ATTACHED, 0),
    (Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 1_000),
    (Limit::SQLITE_LIMIT_VARIABLE_NUMBER, 1_000),
    (Limit::SQLITE_LIMIT_TRIGGER_DEPTH, 10),
];

/// The SQLite heap limit for the whole process (`PRAGMA hard_heap_limit`; SQLite has one per
/// process, not per connection): past it an allocation fails with a typed error instead of
/// growing the host, e.g. under a recursive CTE that builds ever longer strings.
const MAX_HEAP_BYTES: i64 = 512 << 20;

/// One in-memory SQLite database.
#[derive(Clone)]
pub(crate) struct SqliteRunner {
    connection: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteRunner").finish_non_exhaustive()
    }
}

fn classify(error: &rusqlite::Error) -> EffectError {
    let message = error.to_string();
    match error.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => EffectError::Constraint(message),
        Some(ErrorCode::AuthorizationForStatementDenied) => EffectError::FootprintDenied(format!(
            "the database refused the statement: {message} (it uses a table or function outside \
             the footprint)"
        )),
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => EffectError::Permission(message),
        Some(ErrorCode::OperationInterrupted) => EffectError::Timeout(message),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => EffectError::Timeout(message),
        Some(ErrorCode::Unknown) | None => EffectError::Syntax(message),
        Some(_) => EffectError::Other(message),
    }
}

/// What one call does with its statement.
enum Work {
    Query,
    Execute,
    /// The statement once per parameter row, counts summed.
    ExecuteMany,
}

/// What one call produced.
pub(crate) enum Outcome {
    Rows(Rows),
    Count(u64),
}

impl SqliteRunner {
    /// A fresh in-memory database, after running `init` (a script of statements, trusted: it
    /// comes from the host's operator, not from a graph).
    pub(crate) fn open(init: Option<&str>) -> Result<SqliteRunner, String> {
        let connection = Connection::open_in_memory().map_err(|e| e.to_string())?;
        if let Some(script) = init {
            connection
                .execute_batch(script)
                .map_err(|e| format!("the init script failed: {e}"))?;
        }
        for (limit, value) in LIMITS {
            connection
                .set_limit(*limit, *value)
                .map_err(|e| format!("setting {limit:?}: {e}"))?;
        }
        connection
            .pragma_update(None, "hard_heap_limit", MAX_HEAP_BYTES)
            .map_err(|e| format!("setting the heap limit: {e}"))?;
        Ok(SqliteRunner {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Rows of `sql`.
    pub(crate) async fn query(
        &self,
        sql: &str,
        params: Vec<Cell>,
        grants: &Grants,
        access: Access,
        timeout: Duration,
    ) -> Result<Rows, EffectError> {
        match self
            .call(sql, vec![params], grants, access, timeout, Work::Query)
            .await?
        {
            Outcome::Rows(rows) => Ok(rows),
            Outcome::Count(_) => Err(EffectError::Other("a count for a query".into())),
        }
    }

    /// The row count of `sql`.
    pub(crate) async fn execute(
        &self,
        sql: &str,
        params: Vec<Cell>,
        grants: &Grants,
        access: Access,
        timeout: Duration,
    ) -> Result<u64, EffectError> {
        match self
            .call(sql, vec![params], grants, access, timeout, Work::Execute)
            .await?
        {
            Outcome::Count(n) => Ok(n),
            Outcome::Rows(_) => Err(EffectError::Other("rows for an execute".into())),
        }
    }

    /// `sql` once per row of `rows`, in one transaction (rolled back on the first error); the
    /// summed row count.
    pub(crate) async fn execute_many(
        &self,
        sql: &str,
        rows: Vec<Vec<Cell>>,
        grants: &Grants,
        access: Access,
        timeout: Duration,
    ) -> Result<u64, EffectError> {
        match self
            .call(sql, rows, grants, access, timeout, Work::ExecuteMany)
            .await?
        {
            Outcome::Count(n) => Ok(n),
            Outcome::Rows(_) => Err(EffectError::Other("rows for an execute".into())),
        }
    }

    async fn call(
        &self,
        sql: &str,
        params: Vec<Vec<Cell>>,
        grants: &Grants,
        access: Access,
        timeout: Duration,
        work: Work,
    ) -> Result<Outcome, EffectError> {
        let connection = Arc::clone(&self.connection);
        let sql = sql.to_owned();
        let grants = grants.clone();
        let deadline = Instant::now() + timeout;
        tokio::task::spawn_blocking(move || {
            let mut connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
            run(
                &mut connection,
                &sql,
                &params,
                grants,
                access,
                deadline,
                &work,
            )
        })
        .await
        .map_err(|e| EffectError::Other(format!("the database task ended abnormally: {e}")))?
    }
}

/// One call in its own transaction; rolled back on any error.
fn run(
    connection: &mut Connection,
    sql: &str,
    params: &[Vec<Cell>],
    grants: Grants,
    access: Access,
    deadline: Instant,
    work: &Work,
) -> Result<Outcome, EffectError> {
    let err = |e: rusqlite::Error| classify(&e);
    connection
        .progress_handler(1_000, Some(move || Instant::now() >= deadline))
        .map_err(err)?;
    let read_only = matches!(access, Access::ReadOnly);
    connection
        .pragma_update(None, "query_only", read_only)
        .map_err(err)?;
    connection.execute_batch("BEGIN").map_err(err)?;
    // The authorizer judges the statement as it is prepared (inside `statement`), and only it:
    // the driver's own BEGIN, COMMIT and PRAGMAs run without it.
    let result = match stored_names(connection).and_then(|stored| {
        connection.authorizer(Some(move |context: AuthContext<'_>| {
            authorize(&grants, &stored, &context)
        }))
    }) {
        Ok(()) => {
            let result = statement(connection, sql, params, work);
            connection
                .authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
                .map_err(err)
                .and(result)
        }
        Err(e) => Err(err(e)),
    };
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = connection.execute_batch(end).map_err(err);
    let _reset = connection.pragma_update(None, "query_only", false);
    // Clearing the handler cannot fail in a way that matters: the next call installs its own.
    let _cleared = connection.progress_handler(0, None::<fn() -> bool>);
    let outcome = result?;
    ended?;
    Ok(outcome)
}

/// The lower-cased names of every stored table and view (`main` and `temp`): SQLite reports a
/// read of no column (`count(*) FROM t`) without a database name, as it reports a CTE, so
/// such a read is judged as a table's whenever a stored table has that name.
fn stored_names(connection: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut statement = connection.prepare(
        "SELECT lower(name) FROM sqlite_schema WHERE type IN ('table', 'view') \
         UNION SELECT lower(name) FROM sqlite_temp_schema WHERE type IN ('table', 'view')",
    )?;
    let names = statement.query_map([], |row| row.get::<_, String>(0))?;
    names.collect()
}

/// SQLite's own footprint check: one answer per action found while a statement is prepared.
fn authorize(grants: &Grants, stored: &[String], context: &AuthContext<'_>) -> Authorization {
    let database = context.database_name;
    let allowed = match context.action {
        AuthAction::Select | AuthAction::Recursive => true,
        // No database and no stored table of that name: a CTE or a subquery's result.
        AuthAction::Read { table_name, .. }
            if database.is_none() && !stored.contains(&table_name.to_ascii_lowercase()) =>
        {
            true
        }
        AuthAction::Read { table_name, .. } => {
            grants.allows_sqlite(database, table_name, TableUse::Read)
                || context
                    .accessor
                    .is_some_and(|view| grants.allows_sqlite(None, view, TableUse::Read))
        }
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. } => {
            grants.allows_sqlite(database, table_name, TableUse::Write)
        }
        AuthAction::Function { function_name } => grants.allows_function(function_name),
        _ => false,
    };
    if allowed {
        Authorization::Allow
    } else {
        Authorization::Deny
    }
}

fn statement(
    connection: &Connection,
    sql: &str,
    params: &[Vec<Cell>],
    work: &Work,
) -> Result<Outcome, EffectError> {
    let err = |e: rusqlite::Error| classify(&e);
    let mut stmt = connection.prepare(sql).map_err(err)?;
    if let Work::ExecuteMany = work {
        let mut count = 0u64;
        for row in params {
            bind(&mut stmt, row)?;
            count = count.saturating_add(stmt.raw_execute().map_err(err)? as u64);
        }
        return Ok(Outcome::Count(count));
    }
    let [params] = params else {
        return Err(EffectError::Other("one parameter row expected".into()));
    };
    bind(&mut stmt, params)?;
    match work {
        Work::Execute | Work::ExecuteMany => stmt
            .raw_execute()
            .map(|n| Outcome::Count(n as u64))
            .map_err(err),
        Work::Query => {
            let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
            let mut rows = stmt.raw_query();
            let mut out = Vec::new();
            let mut bytes = 0usize;
            while let Some(row) = rows.next().map_err(err)? {
                if out.len() >= MAX_ROWS {
                    return Err(EffectError::Limit(format!(
                        "result exceeds the row limit of {MAX_ROWS}"
                    )));
                }
                let mut cells = Vec::with_capacity(columns.len());
                for (i, name) in columns.iter().enumerate() {
                    let cell = match row.get_ref(i).map_err(err)? {
                        ValueRef::Null => Cell::Null,
                        ValueRef::Integer(v) => Cell::Int(v),
                        ValueRef::Real(v) => Cell::Float(v),
                        // SQLite stores whatever bytes it was given as TEXT; text that is not
                        // UTF-8 is refused, never altered.
                        ValueRef::Text(t) => {
                            Cell::Text(String::from_utf8(t.to_vec()).map_err(|_| {
                                EffectError::BadAnswer(format!(
                                    "column {:?} holds text that is not UTF-8 (read it as a blob: \
                                     CAST(x AS BLOB))",
                                    name
                                ))
                            })?)
                        }
                        ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
                    };
                    bytes += match &cell {
                        Cell::Text(s) => s.len(),
                        Cell::Bytes(b) => b.len(),
                        _ => 8,
                    };
                    cells.push(cell);
                }
                if bytes > MAX_BYTES {
                    return Err(EffectError::Limit(format!(
                        "result exceeds the byte limit of {MAX_BYTES}"
                    )));
                }
                out.push(cells);
            }
            Ok(Outcome::Rows(Rows { columns, rows: out }))
        }
    }
}

/// Binds `params` to `$1`, `$2`, … of `stmt` (every one of them, and no other).
fn bind(stmt: &mut rusqlite::Statement<'_>, params: &[Cell]) -> Result<(), EffectError> {
    let err = |e: rusqlite::Error| classify(&e);
    if stmt.parameter_count() != params.len() {
        return Err(EffectError::Syntax(format!(
            "the statement takes {} parameters, {} given",
            stmt.parameter_count(),
            params.len()
        )));
    }
    for (i, cell) in params.iter().enumerate() {
        let name = format!("${}", i + 1);
        let index = stmt
            .parameter_index(&name)
            .map_err(err)?
            .ok_or_else(|| EffectError::Syntax(format!("the statement does not use {name}")))?;
        let bound = match cell {
            Cell::Null => stmt.raw_bind_parameter(index, rusqlite::types::Null),
            Cell::Int(i) => stmt.raw_bind_parameter(index, i),
            Cell::Float(x) => stmt.raw_bind_parameter(index, x),
            Cell::Bool(b) => stmt.raw_bind_parameter(index, b),
            Cell::Text(s) => stmt.raw_bind_parameter(index, s),
            Cell::Bytes(b) => stmt.raw_bind_parameter(index, b),
        };
        bound.map_err(err)?;
    }
    Ok(())
}

/// What the embedded database assumes (the assumption inventory).
pub(crate) const ASSUMPTIONS: &[crate::assumptions::Assumption] =
    &[crate::assumptions::Assumption {
        component: "sqlite",
        assumption: "SQLite executes statements with SQL semantics; query_only refuses writes; \
                 the progress handler interrupts long statements; the authorizer sees every \
                 table, column and function a statement uses while it is prepared, and reports \
                 stored tables with a database name except reads of no column",
        failure_mode: "wrong answers, a write in a read-only call, a statement past its \
                 deadline, a table or function outside the footprint used",
        mitigation: "lexical gate and footprint check on a real parse first, the canonical \
                 print is what SQLite prepares; the authorizer allows only declared tables, \
                 allow-listed functions and row reads and writes (a no-column read is judged \
                 as the stored table of its name); limits on value and SQL length, depth, \
                 attachments and the heap; query_only for reads; deadline via the progress \
                 handler; one transaction per call, rolled back on error; an oracle test \
                 prepares random accepted SQL and checks what the authorizer reports",
        properties: &["Footprint!NoUndeclaredEffect", "Footprint!DeniedEndsFailed"],
    }];

#[cfg(test)]
mod tests;

/// SQLite as the oracle for the footprint check: random token soup around real table names;
/// whatever the check accepts, the tables SQLite's own authorizer reports while preparing the
/// checked text stay within what the check said, and so within the footprint.
#[cfg(test)]
mod oracle;

#[cfg(test)]
mod authorizer;
