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

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use graphjit_value::effects::{Cell, Rows};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode};

use super::call::EffectError;
use super::db::Access;

/// The most rows a query may return.
const MAX_ROWS: usize = 10_000;
/// The most bytes of cells a query may return.
const MAX_BYTES: usize = 16 << 20;

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
        Some(
            ErrorCode::ReadOnly
            | ErrorCode::PermissionDenied
            | ErrorCode::AuthorizationForStatementDenied,
        ) => EffectError::Permission(message),
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
        Ok(SqliteRunner {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Rows of `sql`.
    pub(crate) async fn query(
        &self,
        sql: &str,
        params: Vec<Cell>,
        access: Access,
        timeout: Duration,
    ) -> Result<Rows, EffectError> {
        match self.call(sql, params, access, timeout, Work::Query).await? {
            Outcome::Rows(rows) => Ok(rows),
            Outcome::Count(_) => Err(EffectError::Other("a count for a query".into())),
        }
    }

    /// The row count of `sql`.
    pub(crate) async fn execute(
        &self,
        sql: &str,
        params: Vec<Cell>,
        access: Access,
        timeout: Duration,
    ) -> Result<u64, EffectError> {
        match self
            .call(sql, params, access, timeout, Work::Execute)
            .await?
        {
            Outcome::Count(n) => Ok(n),
            Outcome::Rows(_) => Err(EffectError::Other("rows for an execute".into())),
        }
    }

    async fn call(
        &self,
        sql: &str,
        params: Vec<Cell>,
        access: Access,
        timeout: Duration,
        work: Work,
    ) -> Result<Outcome, EffectError> {
        let connection = Arc::clone(&self.connection);
        let sql = sql.to_owned();
        let deadline = Instant::now() + timeout;
        tokio::task::spawn_blocking(move || {
            let mut connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
            run(&mut connection, &sql, &params, access, deadline, &work)
        })
        .await
        .map_err(|e| EffectError::Other(format!("the database task ended abnormally: {e}")))?
    }
}

/// One call in its own transaction; rolled back on any error.
fn run(
    connection: &mut Connection,
    sql: &str,
    params: &[Cell],
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
    let result = statement(connection, sql, params, work);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = connection.execute_batch(end).map_err(err);
    let _reset = connection.pragma_update(None, "query_only", false);
    // Clearing the handler cannot fail in a way that matters: the next call installs its own.
    let _cleared = connection.progress_handler(0, None::<fn() -> bool>);
    let outcome = result?;
    ended?;
    Ok(outcome)
}

fn statement(
    connection: &Connection,
    sql: &str,
    params: &[Cell],
    work: &Work,
) -> Result<Outcome, EffectError> {
    let err = |e: rusqlite::Error| classify(&e);
    let mut stmt = connection.prepare(sql).map_err(err)?;
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
    match work {
        Work::Execute => stmt
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
                for i in 0..columns.len() {
                    let cell = match row.get_ref(i).map_err(err)? {
                        ValueRef::Null => Cell::Null,
                        ValueRef::Integer(v) => Cell::Int(v),
                        ValueRef::Real(v) => Cell::Float(v),
                        ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
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

/// What the embedded database assumes (the assumption inventory).
pub(crate) const ASSUMPTIONS: &[crate::assumptions::Assumption] =
    &[crate::assumptions::Assumption {
        component: "sqlite",
        assumption: "SQLite executes statements with SQL semantics; query_only refuses writes; \
                 the progress handler interrupts long statements",
        failure_mode: "wrong answers, a write in a read-only call, a statement past its deadline",
        mitigation: "footprint check on a real parse first; query_only for reads; deadline via the \
                 progress handler; one transaction per call, rolled back on error",
        properties: &["Footprint!NoUndeclaredEffect", "Footprint!DeniedEndsFailed"],
    }];

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> SqliteRunner {
        SqliteRunner::open(Some(
            "CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'x'), (2, NULL);",
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn queries_bind_by_name_and_reads_are_read_only() {
        let db = db();
        let rows = db
            .query(
                "SELECT b FROM t WHERE a = $2 OR a = $1 ORDER BY a",
                vec![Cell::Int(9), Cell::Int(1)],
                Access::ReadOnly,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(rows.rows, vec![vec![Cell::Text("x".into())]]);
        let refused = db
            .execute(
                "DELETE FROM t",
                vec![],
                Access::ReadOnly,
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert!(matches!(refused, EffectError::Permission(_)), "{refused:?}");
        let n = db
            .execute(
                "DELETE FROM t WHERE a = $1",
                vec![Cell::Int(2)],
                Access::ReadWrite,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn errors_are_typed_and_roll_back() {
        let db = db();
        let syntax = db
            .query("SELEC 1", vec![], Access::ReadOnly, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(syntax, EffectError::Syntax(_)), "{syntax:?}");
        let count = db
            .query(
                "SELECT count(*) FROM t WHERE a = $1",
                vec![],
                Access::ReadOnly,
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert!(matches!(count, EffectError::Syntax(_)), "{count:?}");
        let slow = db
            .query(
                "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r",
                vec![],
                Access::ReadOnly,
                Duration::from_millis(50),
            )
            .await
            .unwrap_err();
        assert!(matches!(slow, EffectError::Timeout(_)), "{slow:?}");
        // Still usable, and still holding both rows.
        let rows = db
            .query(
                "SELECT count(*) FROM t",
                vec![],
                Access::ReadOnly,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(rows.rows, vec![vec![Cell::Int(2)]]);
    }
}
