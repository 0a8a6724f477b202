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
            .call(sql, params, grants, access, timeout, Work::Query)
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
            .call(sql, params, grants, access, timeout, Work::Execute)
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
    params: &[Cell],
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
mod tests {
    use super::*;

    fn grants() -> Grants {
        Grants {
            read: [("public".to_string(), "t".to_string())].into(),
            write: [("public".to_string(), "t".to_string())].into(),
            allow_function: |name| name == "count",
        }
    }

    fn db() -> SqliteRunner {
        SqliteRunner::open(Some(
            "CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'x'), (2, NULL);",
        ))
        .expect("the call succeeds")
    }

    #[tokio::test]
    async fn queries_bind_by_name_and_reads_are_read_only() {
        let db = db();
        let rows = db
            .query(
                "SELECT b FROM t WHERE a = $2 OR a = $1 ORDER BY a",
                vec![Cell::Int(9), Cell::Int(1)],
                &grants(),
                Access::ReadOnly,
                Duration::from_secs(5),
            )
            .await
            .expect("the call succeeds");
        assert_eq!(rows.rows, vec![vec![Cell::Text("x".into())]]);
        let refused = db
            .execute(
                "DELETE FROM t",
                vec![],
                &grants(),
                Access::ReadOnly,
                Duration::from_secs(5),
            )
            .await
            .expect_err("the call is refused");
        assert!(matches!(refused, EffectError::Permission(_)), "{refused:?}");
        let n = db
            .execute(
                "DELETE FROM t WHERE a = $1",
                vec![Cell::Int(2)],
                &grants(),
                Access::ReadWrite,
                Duration::from_secs(5),
            )
            .await
            .expect("the call succeeds");
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn errors_are_typed_and_roll_back() {
        let db = db();
        let syntax = db
            .query(
                "SELEC 1",
                vec![],
                &grants(),
                Access::ReadOnly,
                Duration::from_secs(5),
            )
            .await
            .expect_err("the call is refused");
        assert!(matches!(syntax, EffectError::Syntax(_)), "{syntax:?}");
        let count = db
            .query(
                "SELECT count(*) FROM t WHERE a = $1",
                vec![],
                &grants(),
                Access::ReadOnly,
                Duration::from_secs(5),
            )
            .await
            .expect_err("the call is refused");
        assert!(matches!(count, EffectError::Syntax(_)), "{count:?}");
        let slow = db
            .query(
                "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r",
                vec![],
                &grants(),
                Access::ReadOnly,
                Duration::from_millis(50),
            )
            .await
            .expect_err("the call is refused");
        assert!(matches!(slow, EffectError::Timeout(_)), "{slow:?}");
        // Still usable, and still holding both rows.
        let rows = db
            .query(
                "SELECT count(*) FROM t",
                vec![],
                &grants(),
                Access::ReadOnly,
                Duration::from_secs(5),
            )
            .await
            .expect("the call succeeds");
        assert_eq!(rows.rows, vec![vec![Cell::Int(2)]]);
    }
}

/// SQLite as the oracle for the footprint check: random token soup around real table names;
/// whatever the check accepts, the tables SQLite's own authorizer reports while preparing the
/// checked text stay within what the check said, and so within the footprint.
#[cfg(test)]
mod oracle {
    use std::sync::{Arc, Mutex};

    use rusqlite::Connection;
    use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

    use crate::footprint::Footprint;

    /// xorshift64*: deterministic soup, the same every run.
    struct Lcg(u64);

    impl Lcg {
        fn new(seed: u64) -> Lcg {
            Lcg(seed)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
        }
    }

    /// Pieces a hostile author might splice: comments of every kind, operators that glue,
    /// quotes, escapes, line ends, case games, and the tables.
    const PIECES: &[&str] = &[
        "SELECT",
        "a",
        "FROM",
        "t",
        "secret",
        "\"secret\"",
        "\"SECRET\"",
        "SECRET",
        "main.secret",
        "WHERE",
        "UNION",
        "ALL",
        "(",
        ")",
        ",",
        "*",
        "1",
        "'x'",
        "''",
        "'",
        "\"",
        "--",
        "/*",
        "*/",
        "\r",
        "\n",
        "\t",
        " ",
        "-",
        "+",
        "|",
        "||",
        "/",
        "<",
        ">",
        "=",
        "!",
        "@",
        "#",
        "~",
        "E'",
        "\\",
        "$$",
        "$1",
        "?",
        ":a",
        "[",
        "]",
        "`",
        ";",
        "DELETE",
        "INSERT INTO",
        "VALUES",
        "count(*)",
        "x'00'",
        "AS",
        "OR",
        "NOT",
        "IS",
        "NULL",
        ".",
        "0x1",
        "1e",
        "sqlite_master",
    ];

    fn soup(rng: &mut Lcg) -> String {
        let mut sql = String::from("SELECT a FROM t ");
        let n = 1 + rng.below(14);
        for _ in 0..n {
            sql.push_str(PIECES[rng.below(PIECES.len() as u64) as usize]);
            if rng.below(3) != 0 {
                sql.push(' ');
            }
        }
        sql
    }

    #[test]
    fn whatever_the_check_accepts_sqlite_reads_only_declared_tables() {
        let mut connection = Connection::open_in_memory().expect("sqlite");
        connection
            .execute_batch(
                "CREATE TABLE t (a INTEGER); CREATE TABLE secret (a INTEGER);\
                 INSERT INTO t VALUES (1); INSERT INTO secret VALUES (42);",
            )
            .expect("schema");
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = Arc::clone(&seen);
        connection
            .authorizer(Some(move |context: AuthContext<'_>| {
                let table = match context.action {
                    AuthAction::Read { table_name, .. }
                    | AuthAction::Insert { table_name }
                    | AuthAction::Update { table_name, .. }
                    | AuthAction::Delete { table_name } => Some(table_name.to_ascii_lowercase()),
                    AuthAction::Select | AuthAction::Function { .. } | AuthAction::Recursive => {
                        None
                    }
                    other => Some(format!("{other:?}")),
                };
                if let Some(table) = table {
                    record.lock().expect("lock").push(table);
                }
                Authorization::Allow
            }))
            .expect("authorizer");
        let footprint: Footprint =
            serde_json::from_str(r#"{"db": {"read": ["t"]}}"#).expect("footprint");
        let mut rng = Lcg::new(0x005e_ed0f_5041);
        let (mut accepted, mut prepared) = (0, 0);
        for _ in 0..20_000 {
            let sql = soup(&mut rng);
            let Ok(access) = footprint.check_sql(&sql) else {
                continue;
            };
            accepted += 1;
            seen.lock().expect("lock").clear();
            if connection.prepare(&access.sql).is_ok() {
                prepared += 1;
            }
            let seen = seen.lock().expect("lock");
            assert!(
                seen.iter().all(|table| table == "t"),
                "{sql:?} was accepted (as {:?}) but SQLite used {seen:?}",
                access.sql
            );
        }
        // The soup must reach the database often enough for the property to mean something.
        assert!(
            accepted > 200 && prepared > 100,
            "accepted {accepted}, prepared {prepared}"
        );
    }
}

#[cfg(test)]
mod authorizer {
    use super::*;

    fn db() -> SqliteRunner {
        SqliteRunner::open(Some(
            "CREATE TABLE t (a INTEGER); CREATE TABLE secret (s TEXT);\
             INSERT INTO t VALUES (1); INSERT INTO secret VALUES ('sentinel');\
             CREATE VIEW v AS SELECT s FROM secret;",
        ))
        .expect("db")
    }

    fn only_t() -> Grants {
        Grants {
            read: [("public".to_string(), "t".to_string())].into(),
            write: [("public".to_string(), "t".to_string())].into(),
            allow_function: |name| name == "count" || name == "lower",
        }
    }

    async fn query(db: &SqliteRunner, sql: &str) -> Result<Rows, EffectError> {
        db.query(
            sql,
            vec![],
            &only_t(),
            Access::ReadWrite,
            Duration::from_secs(5),
        )
        .await
    }

    /// Statements the footprint check would refuse, sent straight to the driver: SQLite
    /// itself refuses each, whatever the text.
    #[tokio::test]
    async fn sqlite_refuses_what_the_grants_do_not_allow_on_its_own() {
        let db = db();
        for sql in [
            "SELECT s FROM secret",
            "SELECT count(*) FROM secret",
            "SELECT a FROM t UNION SELECT s FROM secret",
            "SELECT s FROM v",
            "SELECT sql FROM sqlite_master",
            "SELECT a FROM t WHERE a = (SELECT length(s) FROM secret)",
            "SELECT upper(a) FROM t",
            "PRAGMA table_info(secret)",
            "ATTACH DATABASE ':memory:' AS other",
            "CREATE TABLE x (a)",
            "DROP TABLE secret",
            "DELETE FROM secret",
            "INSERT INTO secret VALUES ('x')",
            "SELECT load_extension('x')",
        ] {
            let error = query(&db, sql).await.expect_err(sql);
            assert!(
                matches!(
                    error,
                    EffectError::FootprintDenied(_) | EffectError::Syntax(_)
                ),
                "{sql}: {error:?}"
            );
            assert!(
                !format!("{error:?}").contains("sentinel"),
                "{sql}: {error:?}"
            );
        }
        let rows = query(&db, "SELECT count(*), lower('A') FROM t")
            .await
            .expect("allowed");
        assert_eq!(rows.rows, vec![vec![Cell::Int(1), Cell::Text("a".into())]]);
        // What was refused changed nothing.
        let all = Grants {
            read: [("public".into(), "secret".into())].into(),
            ..only_t()
        };
        let left = db
            .query(
                "SELECT count(*) FROM secret",
                vec![],
                &all,
                Access::ReadOnly,
                Duration::from_secs(5),
            )
            .await
            .expect("declared");
        assert_eq!(left.rows, vec![vec![Cell::Int(1)]]);
    }

    /// A value longer than the byte cap is refused by SQLite as it is built, not after the
    /// host has materialized it.
    #[tokio::test]
    async fn a_huge_value_is_refused_by_sqlite_before_the_host_holds_it() {
        let db = db();
        let any_function = Grants {
            allow_function: |_| true,
            ..only_t()
        };
        let error = db
            .query(
                "SELECT count(*) FROM t WHERE lower(zeroblob(100000000)) = 'x'",
                vec![],
                &any_function,
                Access::ReadOnly,
                Duration::from_secs(5),
            )
            .await
            .expect_err("too big");
        assert!(
            matches!(
                error,
                EffectError::Other(_) | EffectError::Limit(_) | EffectError::Syntax(_)
            ),
            "{error:?}"
        );
        assert!(format!("{error:?}").contains("too big"), "{error:?}");
    }
}
