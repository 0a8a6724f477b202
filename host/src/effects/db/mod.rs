//! The PostgreSQL runner (seed §6.2's runner pattern): a statement and its parameters in, typed
//! rows or a row count out, under a deadline, with the pool and its limits fixed at
//! construction.
//!
//! Invariants:
//! - One call, one transaction: every [`PostgresRunner::query`] and [`PostgresRunner::execute`]
//!   runs `BEGIN` (`READ ONLY` for [`Access::ReadOnly`]), the one statement, `COMMIT`. A failure
//!   anywhere rolls it back. Nothing survives between calls but the pooled connection and its
//!   prepared statements.
//! - Parameters travel as bound values of prepared statements, never spliced into SQL text.
//!   Statements are prepared once per connection and cached there.
//! - Three clocks bound a call: the connect timeout (opening a connection), the server-side
//!   `statement_timeout` (set on every connection at start-up) and the caller's deadline (the
//!   whole call, pool wait included). When the deadline fires, the query is cancelled on the
//!   server and its connection is discarded, never returned to the pool mid-statement.
//! - Results are capped while they are read: at most `max_rows + 1` rows are fetched from the
//!   server (a portal), and reading stops at the first row past the byte cap.
//! - The runner knows nothing of graphs, footprints or wasm: the footprint check happens before
//!   it is called (ARCHITECTURE.md, "host/src/effects"). It is `Send + Sync` and shared by any number of tasks.
//!
//! ## Driver: PostgreSQL (via tokio-postgres) — seed §6.3
//! Assumptions:
//! 1. Results match SQL semantics for PostgreSQL 14+ (tested against the distribution's server).
//! 2. The server enforces `statement_timeout`; the runner's deadline backs it up client-side.
//! 3. Connections are plain TCP (`NoTls`): the server is on loopback or a trusted network.
//!    TLS is not implemented yet.
//!
//! Failure modes: server unreachable or gone → `Connection`; slow statement → `Timeout`;
//! bad SQL → `Syntax`/`UndefinedTable`/`UndefinedColumn`; bad data → `Constraint`; a write in
//! a read-only call → `ReadOnly`; oversized result → `RowLimit`/`ByteLimit`.
//!
//! Mitigations: a bounded pool (dead connections are dropped on return), timeouts at three
//! levels, prepared statements against injection, result caps enforced while streaming.

mod cells;
mod error;
mod grants;
mod roles;
mod stream;
#[cfg(test)]
mod tests;

use std::pin::pin;
use std::time::Duration;

use deadpool_postgres::{Object, Pool, RecyclingMethod};
use futures_util::TryStreamExt;
use tokio::time::Instant;
use tokio_postgres::{NoTls, Statement};

use cells::{Bind, CellKind, param_fits, read_cell};
pub(crate) use cells::{Cell, Rows};
pub(crate) use error::{DbError, TimeoutKind};
use error::{classify, classify_pool};
pub(crate) use grants::{Grants, TableUse};
pub(crate) use roles::role_name;

/// Default pool size: enough for a handful of concurrent runs per host without exhausting the
/// server's `max_connections` (100 by default) when several hosts share it.
pub(crate) const DEFAULT_POOL_SIZE: usize = 8;
/// Default connect timeout: a loopback or LAN server answers in milliseconds; longer means
/// it is down, and a run should not spend its deadline finding out.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default per-statement limit on the server: guards the database against a runaway query
/// even when the caller's deadline is generous.
pub(crate) const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default row cap: guards host memory against `SELECT *` on a large table.
pub(crate) const DEFAULT_MAX_ROWS: usize = 10_000;
/// Default byte cap (sum of `Cell::footprint`s): guards host memory against wide rows.
pub(crate) const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;

/// How a runner connects, and what it will return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DbConfig {
    /// `postgres://user[:password]@host:port/database` (or tokio-postgres's key=value form).
    pub(crate) url: String,
    /// The most connections open at once (≥ 1).
    pub(crate) pool_size: usize,
    /// Limit for opening one connection.
    pub(crate) connect_timeout: Duration,
    /// Server-side limit for one statement (`statement_timeout`, whole milliseconds, ≥ 1 ms).
    pub(crate) statement_timeout: Duration,
    /// The most rows a query may return.
    pub(crate) max_rows: usize,
    /// The most bytes (sum of `Cell::footprint`s) a query may return.
    pub(crate) max_bytes: usize,
}

impl DbConfig {
    /// The defaults above for `url`.
    pub(crate) fn new(url: impl Into<String>) -> DbConfig {
        DbConfig {
            url: url.into(),
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            max_rows: DEFAULT_MAX_ROWS,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Whether a call may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// `BEGIN READ ONLY`: the server refuses any write (`DbError::ReadOnly`).
    ReadOnly,
    /// `BEGIN`: reads and writes.
    ReadWrite,
}

/// Whose privileges a statement runs with.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RunAs<'a> {
    /// A graph's: a connection that logs in as the footprint's own role ([`roles`]), so that
    /// PostgreSQL refuses whatever the grants do not allow.
    Footprint(&'a Grants),
    /// The operator's connection role: setup and tests only, never a graph's statement.
    Operator,
}

/// The PostgreSQL runner: a connection pool and the limits every call runs under.
#[derive(Clone, Debug)]
pub(crate) struct PostgresRunner {
    /// The operator's connections: they provision footprint roles and run operator work.
    pool: Pool,
    /// One small pool per footprint role.
    roles: std::sync::Arc<roles::Roles>,
    /// Where a cancel request goes: the server's TCP host and port.
    cancel_address: Option<(String, u16)>,
    /// Server messages refused for size so far (`stream::Bounded`), on every pool.
    oversized: std::sync::Arc<std::sync::atomic::AtomicU64>,
    config: DbConfig,
}

impl PostgresRunner {
    /// Builds the pool and opens one connection, so an unreachable server or a bad login is
    /// reported here rather than on the first call.
    pub(crate) async fn connect(config: DbConfig) -> Result<PostgresRunner, DbError> {
        if config.pool_size == 0 {
            return Err(DbError::Config {
                message: "pool_size must be at least 1".into(),
            });
        }
        let mut pg: tokio_postgres::Config =
            config
                .url
                .parse()
                .map_err(|e: tokio_postgres::Error| DbError::Config {
                    message: e.to_string(),
                })?;
        let statement_ms = config.statement_timeout.as_millis().max(1);
        // `search_path` is pinned to `public` (after whatever the URL asks for, so it wins):
        // the footprint resolves an unqualified table name to `public.<name>`, and the server
        // must resolve it the same way, or a graph could read a table it did not declare.
        // `standard_conforming_strings` is pinned on: a backslash in '...' is a backslash, as
        // the footprint check's lexer reads it (a server or role default could turn it off).
        let ours = format!(
            "-c statement_timeout={statement_ms} -c search_path=public \
             -c standard_conforming_strings=on"
        );
        let options = match pg.get_options() {
            Some(existing) => format!("{existing} {ours}"),
            None => ours,
        };
        pg.options(&options)
            .connect_timeout(config.connect_timeout)
            .application_name("graphjit");
        let oversized = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let cancel_address = match pg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => Some((
                host.clone(),
                pg.get_ports().first().copied().unwrap_or(5432),
            )),
            _ => None,
        };
        if pg.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(DbError::Config {
                message: "sslmode=require: TLS to PostgreSQL is not supported yet; connect over \
                          loopback or a trusted network with sslmode=disable"
                    .into(),
            });
        }
        let connect = stream::BoundedConnect {
            cap: stream::message_cap(config.max_bytes),
            connect_timeout: config.connect_timeout,
            oversized: std::sync::Arc::clone(&oversized),
        };
        let roles = std::sync::Arc::new(roles::Roles::new(pg.clone(), connect.clone())?);
        let pool = connect.pool(pg, config.pool_size, RecyclingMethod::Fast)?;
        let runner = PostgresRunner {
            pool,
            roles,
            cancel_address,
            oversized,
            config,
        };
        let limit = runner.config.connect_timeout;
        match runner
            .checkout(RunAs::Operator, deadline_after(limit), limit)
            .await
        {
            Ok(connection) => drop(connection),
            // Here the only clock is the connect timeout.
            Err(DbError::Timeout { .. }) => {
                return Err(DbError::Timeout {
                    kind: TimeoutKind::Connect,
                    limit,
                });
            }
            Err(e) => return Err(e),
        }
        Ok(runner)
    }

    /// Runs a statement that returns rows, in its own transaction, within `timeout` (the
    /// caller's remaining run deadline).
    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[Cell],
        run_as: RunAs<'_>,
        access: Access,
        timeout: Duration,
    ) -> Result<Rows, DbError> {
        let deadline = deadline_after(timeout);
        let seen = self.oversized.load(std::sync::atomic::Ordering::Relaxed);
        let mut connection = self.checkout(run_as, deadline, timeout).await?;
        let work = tokio::time::timeout_at(
            deadline,
            self.query_on(&mut connection, sql, params, access),
        );
        let outcome = work.await;
        self.settle(connection, outcome, timeout, seen)
    }

    /// Runs a statement for its effect, in its own transaction, within `timeout`; returns the
    /// number of rows it affected.
    pub(crate) async fn execute(
        &self,
        sql: &str,
        params: &[Cell],
        run_as: RunAs<'_>,
        access: Access,
        timeout: Duration,
    ) -> Result<u64, DbError> {
        let deadline = deadline_after(timeout);
        let seen = self.oversized.load(std::sync::atomic::Ordering::Relaxed);
        let mut connection = self.checkout(run_as, deadline, timeout).await?;
        let work = tokio::time::timeout_at(
            deadline,
            self.execute_on(&mut connection, sql, params, access),
        );
        let outcome = work.await;
        self.settle(connection, outcome, timeout, seen)
    }

    /// Runs `sql` once per row of `rows` in one transaction (all or nothing), within
    /// `timeout`; the summed row count. The statement is prepared once and the executions are
    /// pipelined on the connection.
    pub(crate) async fn execute_many(
        &self,
        sql: &str,
        rows: &[Vec<Cell>],
        run_as: RunAs<'_>,
        access: Access,
        timeout: Duration,
    ) -> Result<u64, DbError> {
        let deadline = deadline_after(timeout);
        let seen = self.oversized.load(std::sync::atomic::Ordering::Relaxed);
        let mut connection = self.checkout(run_as, deadline, timeout).await?;
        let work = tokio::time::timeout_at(
            deadline,
            self.execute_many_on(&mut connection, sql, rows, access),
        );
        let outcome = work.await;
        self.settle(connection, outcome, timeout, seen)
    }

    /// Whether a server message was refused for size since the count was `seen`.
    fn oversized_since(&self, seen: u64) -> bool {
        self.oversized.load(std::sync::atomic::Ordering::Relaxed) != seen
    }

    /// A pooled connection of `run_as`'s pool, waiting no later than `deadline`.
    async fn checkout(
        &self,
        run_as: RunAs<'_>,
        deadline: Instant,
        limit: Duration,
    ) -> Result<Object, DbError> {
        // The timer's granularity is a millisecond: a spent deadline is refused here, before
        // anything reaches the server, rather than racing a fast statement.
        if Instant::now() >= deadline {
            return Err(DbError::Timeout {
                kind: TimeoutKind::Deadline,
                limit,
            });
        }
        let timed_out = || DbError::Timeout {
            kind: TimeoutKind::Deadline,
            limit,
        };
        let grants = match run_as {
            RunAs::Operator => None,
            RunAs::Footprint(grants) => Some(grants),
        };
        // A login refused by the role's password means another process provisioned the same
        // role since: provision again (it resets the password) and retry once.
        for attempt in 0..2 {
            let pool = match grants {
                None => self.pool.clone(),
                Some(grants) => {
                    tokio::time::timeout_at(deadline, self.roles.pool(&self.pool, grants))
                        .await
                        .map_err(|_| timed_out())??
                }
            };
            match tokio::time::timeout_at(deadline, pool.get()).await {
                Ok(Ok(connection)) => return Ok(connection),
                Ok(Err(e)) => {
                    let error = classify_pool(
                        &e,
                        self.config.connect_timeout,
                        self.config.statement_timeout,
                    );
                    let login_refused = matches!(
                        &error,
                        DbError::Connection { sqlstate: Some(code), .. } if code.starts_with("28")
                    );
                    if let (Some(grants), true, 0) = (grants, login_refused, attempt) {
                        self.roles.forget(&role_name(grants));
                        continue;
                    }
                    return Err(error);
                }
                Err(_) => return Err(timed_out()),
            }
        }
        Err(timed_out())
    }

    /// The result of a call; on a deadline, the statement is cancelled on the server and the
    /// connection leaves the pool (it may be mid-statement, mid-transaction).
    fn settle<T>(
        &self,
        connection: Object,
        outcome: Result<Result<T, DbError>, tokio::time::error::Elapsed>,
        limit: Duration,
        seen: u64,
    ) -> Result<T, DbError> {
        match outcome {
            Ok(result) => result.map_err(|e| match e {
                DbError::ByteLimit { .. } => DbError::ByteLimit {
                    limit: self.config.max_bytes,
                },
                // The stream refused a message during this call: the driver saw only its
                // connection end.
                DbError::Connection { .. } if self.oversized_since(seen) => DbError::ByteLimit {
                    limit: self.config.max_bytes,
                },
                other => other,
            }),
            Err(_) => {
                let cancel = connection.cancel_token();
                drop(Object::take(connection));
                // Best effort: if the server is gone there is nothing left to cancel. Outside a
                // tokio runtime (never the case while a call is running) it is skipped. The
                // connections are raw streams (`stream::Bounded`), so the cancel request goes
                // over a fresh socket to the same server.
                let address = self.cancel_address.clone();
                if let (Ok(runtime), Some((host, port))) =
                    (tokio::runtime::Handle::try_current(), address)
                {
                    runtime.spawn(async move {
                        if let Ok(socket) =
                            tokio::net::TcpStream::connect((host.as_str(), port)).await
                        {
                            let _ = cancel.cancel_query_raw(socket, NoTls).await;
                        }
                    });
                }
                Err(DbError::Timeout {
                    kind: TimeoutKind::Deadline,
                    limit,
                })
            }
        }
    }

    /// Runs read-only statements that return rows as one round: on one pooled connection, in
    /// one `READ ONLY` transaction, sent together (tokio-postgres pipelines requests issued
    /// concurrently on one connection: one round trip for the lot, not one each). If any of
    /// them fails, the transaction is rolled back and each statement runs again on its own
    /// (reads, so running them twice changes nothing), so that every statement gets its own
    /// answer or error — never another's "transaction is aborted".
    pub(crate) async fn query_round(
        &self,
        statements: &[(String, Vec<Cell>)],
        run_as: RunAs<'_>,
        timeout: Duration,
    ) -> Vec<Result<Rows, DbError>> {
        let deadline = deadline_after(timeout);
        let seen = self.oversized.load(std::sync::atomic::Ordering::Relaxed);
        let pipelined = async {
            let mut connection = self.checkout(run_as, deadline, timeout).await?;
            let work =
                tokio::time::timeout_at(deadline, self.pipeline_on(&mut connection, statements));
            let outcome = work.await;
            self.settle(connection, outcome, timeout, seen)
        };
        if let Ok(rows) = pipelined.await {
            return rows.into_iter().map(Ok).collect();
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let one_by_one = statements
            .iter()
            .map(|(sql, params)| self.query(sql, params, run_as, Access::ReadOnly, remaining));
        futures_util::future::join_all(one_by_one).await
    }

    /// The statements of [`PostgresRunner::query_round`] in one read-only transaction, all
    /// sent before any answer is awaited.
    async fn pipeline_on(
        &self,
        connection: &mut Object,
        statements: &[(String, Vec<Cell>)],
    ) -> Result<Vec<Rows>, DbError> {
        let classify = |e: tokio_postgres::Error| classify(&e, self.config.statement_timeout);
        let transaction = connection
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(classify)?;
        let each = statements
            .iter()
            .map(|(sql, params)| self.rows_in(&transaction, sql, params));
        let rows = futures_util::future::try_join_all(each).await?;
        transaction.commit().await.map_err(classify)?;
        Ok(rows)
    }

    async fn query_on(
        &self,
        connection: &mut Object,
        sql: &str,
        params: &[Cell],
        access: Access,
    ) -> Result<Rows, DbError> {
        let classify = |e: tokio_postgres::Error| classify(&e, self.config.statement_timeout);
        let transaction = connection
            .build_transaction()
            .read_only(access == Access::ReadOnly)
            .start()
            .await
            .map_err(classify)?;
        let rows = self.rows_in(&transaction, sql, params).await?;
        transaction.commit().await.map_err(classify)?;
        Ok(rows)
    }

    /// One statement's rows inside `transaction`, read through a portal under the row and byte
    /// caps.
    async fn rows_in(
        &self,
        transaction: &deadpool_postgres::Transaction<'_>,
        sql: &str,
        params: &[Cell],
    ) -> Result<Rows, DbError> {
        let classify = |e: tokio_postgres::Error| classify(&e, self.config.statement_timeout);
        let statement = transaction.prepare_cached(sql).await.map_err(classify)?;
        check_params(&statement, params)?;
        let columns = column_kinds(&statement)?;
        let (max_rows, max_bytes) = (self.config.max_rows, self.config.max_bytes);
        // One row past the cap is enough to know the cap was exceeded.
        let fetch = i32::try_from(max_rows.saturating_add(1)).unwrap_or(i32::MAX);
        let portal = transaction
            .bind_raw(&statement, params.iter().map(Bind))
            .await
            .map_err(classify)?;
        let mut stream = pin!(
            transaction
                .query_portal_raw(&portal, fetch)
                .await
                .map_err(classify)?
        );
        let mut rows = Vec::new();
        let mut bytes = 0usize;
        while let Some(row) = stream.try_next().await.map_err(classify)? {
            if rows.len() == max_rows {
                return Err(DbError::RowLimit { limit: max_rows });
            }
            let mut cells: Vec<Cell> = Vec::with_capacity(columns.len());
            for (index, kind) in columns.iter().enumerate() {
                let cell = read_cell(&row, index, *kind).map_err(classify)?;
                bytes = bytes.saturating_add(cell.footprint());
                if bytes > max_bytes {
                    return Err(DbError::ByteLimit { limit: max_bytes });
                }
                cells.push(cell);
            }
            rows.push(cells);
        }
        let columns = statement
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        Ok(Rows { columns, rows })
    }

    async fn execute_on(
        &self,
        connection: &mut Object,
        sql: &str,
        params: &[Cell],
        access: Access,
    ) -> Result<u64, DbError> {
        let classify = |e: tokio_postgres::Error| classify(&e, self.config.statement_timeout);
        let transaction = connection
            .build_transaction()
            .read_only(access == Access::ReadOnly)
            .start()
            .await
            .map_err(classify)?;
        let statement = transaction.prepare_cached(sql).await.map_err(classify)?;
        check_params(&statement, params)?;
        let count = transaction
            .execute_raw(&statement, params.iter().map(Bind))
            .await
            .map_err(classify)?;
        transaction.commit().await.map_err(classify)?;
        Ok(count)
    }
}

impl PostgresRunner {
    async fn execute_many_on(
        &self,
        connection: &mut Object,
        sql: &str,
        rows: &[Vec<Cell>],
        access: Access,
    ) -> Result<u64, DbError> {
        let classify = |e: tokio_postgres::Error| classify(&e, self.config.statement_timeout);
        let transaction = connection
            .build_transaction()
            .read_only(access == Access::ReadOnly)
            .start()
            .await
            .map_err(classify)?;
        let statement = transaction.prepare_cached(sql).await.map_err(classify)?;
        for params in rows {
            check_params(&statement, params)?;
        }
        // Sent together, answered in order; the first error ends the transaction, which is
        // dropped without a commit (rolled back).
        let each = rows.iter().map(|params| {
            let statement = &statement;
            let transaction = &transaction;
            async move {
                transaction
                    .execute_raw(statement, params.iter().map(Bind))
                    .await
                    .map_err(classify)
            }
        });
        let counts = futures_util::future::try_join_all(each).await?;
        transaction.commit().await.map_err(classify)?;
        Ok(counts.into_iter().fold(0u64, u64::saturating_add))
    }
}

/// `timeout` from now; a timeout too large to represent means no deadline worth the name (a
/// year), never an overflow panic.
fn deadline_after(timeout: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 60 * 60);
    let now = Instant::now();
    now.checked_add(timeout.min(FAR)).unwrap_or(now)
}

/// Every parameter present and of a type it fits, checked before anything runs.
fn check_params(statement: &Statement, params: &[Cell]) -> Result<(), DbError> {
    let types = statement.params();
    if types.len() != params.len() {
        return Err(DbError::ParamCount {
            expected: types.len(),
            got: params.len(),
        });
    }
    match types
        .iter()
        .zip(params)
        .position(|(ty, param)| !param_fits(param, ty))
    {
        Some(index) => Err(DbError::ParamType {
            index,
            param: params[index].kind_name(),
            pg_type: types[index].name().to_string(),
        }),
        None => Ok(()),
    }
}

/// How to read each result column, or the first column with no cell mapping.
fn column_kinds(statement: &Statement) -> Result<Vec<CellKind>, DbError> {
    statement
        .columns()
        .iter()
        .map(|column| {
            CellKind::of(column.type_()).ok_or_else(|| DbError::UnsupportedType {
                column: column.name().to_string(),
                pg_type: column.type_().name().to_string(),
            })
        })
        .collect()
}

/// What the PostgreSQL driver assumes (seed 6.3; the assumption inventory).
pub(crate) const ASSUMPTIONS: &[crate::assumptions::Assumption] = &[
    crate::assumptions::Assumption {
        component: "postgresql",
        assumption: "query results match SQL semantics for PostgreSQL 14+; READ ONLY \
                     transactions refuse writes; statement_timeout is enforced by the server",
        failure_mode: "wrong answers; a write slipping past the parser; a hung statement",
        mitigation: "footprint check on a real parse first; read-only transactions unless the \
                     statement writes; client-side deadline that cancels on the server",
        properties: &["Footprint!NoUndeclaredEffect", "Footprint!DeniedEndsFailed"],
    },
    crate::assumptions::Assumption {
        component: "postgresql",
        assumption: "a role that is no superuser, has no attributes and is a member of no role \
                     holds only the privileges granted to it and to PUBLIC; a session cannot \
                     take another role than its session user is a member of",
        failure_mode: "a graph's statement reads or writes a table outside its footprint, or \
                       calls a privileged function, despite a checker mistake",
        mitigation: "graph statements log in as a per-footprint role (graphjit_fp_<hash>) \
                     granted exactly the footprint, checked on every provisioning; sessions \
                     reset on reuse; standard_conforming_strings pinned on; residue: \
                     operator grants to PUBLIC and the public system catalogs, guarded by \
                     the checker alone",
        properties: &["Footprint!NoUndeclaredEffect"],
    },
    crate::assumptions::Assumption {
        component: "postgresql",
        assumption: "tokio-postgres reports connection loss as an error (never hangs past its \
                     timeouts); prepared statements keep parameters out of the SQL text",
        failure_mode: "a run waits forever on a dead server; injection through parameters",
        mitigation: "connect, statement and run deadlines; parameters always bound, never \
                     formatted into SQL",
        properties: &["FuelTermination!AllRunsEnd"],
    },
];
