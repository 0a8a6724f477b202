//! The driver trait both databases implement: PostgreSQL ([`PostgresRunner`]) and the embedded
//! SQLite ([`SqliteRunner`]). The dispatcher serves SQL through it alone, so a new database is
//! one implementation, not a new arm in every match.
//!
//! Invariants:
//! - The SQL a driver receives has passed the footprint check, and is the checker's canonical
//!   print of it; the driver enforces the same footprint again with the database's own
//!   privileges (`grants`), so a checker mistake is not a breach on its own.
//! - One cell model in and out (`graphjit_value::effects::Cell`, the one eval, the WIT
//!   conversion and both drivers share); failures are [`EffectError`]s, classified by the
//!   driver.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use graphjit_value::effects::{Cell, Rows};

use super::call::EffectError;
use super::db::{Access, DbError, Grants, PostgresRunner, RunAs};
use super::sqlite::SqliteRunner;

/// A boxed future of a driver's answer.
pub(crate) type DbFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, EffectError>> + Send + 'a>>;

/// A boxed future of a round's answers, one per statement, in order.
pub(crate) type DbRoundFuture<'a> =
    Pin<Box<dyn Future<Output = Vec<Result<Rows, EffectError>>> + Send + 'a>>;

/// A database that serves a graph's SQL.
pub(crate) trait Database: Send + Sync + std::fmt::Debug {
    /// The rows of `sql`, in its own transaction (read-only for [`Access::ReadOnly`]), with
    /// the privileges of `grants`, within `timeout`.
    fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [Cell],
        grants: &'a Grants,
        access: Access,
        timeout: Duration,
    ) -> DbFuture<'a, Rows>;

    /// The row count of `sql`, in its own transaction, as [`Database::query`] runs it.
    fn execute<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [Cell],
        grants: &'a Grants,
        access: Access,
        timeout: Duration,
    ) -> DbFuture<'a, u64>;

    /// `sql` once per row of `rows`, all in one transaction: every row's statement or none
    /// (the first failure rolls the lot back); the summed row count.
    fn execute_many<'a>(
        &'a self,
        sql: &'a str,
        rows: &'a [Vec<Cell>],
        grants: &'a Grants,
        access: Access,
        timeout: Duration,
    ) -> DbFuture<'a, u64>;

    /// Independent read-only queries of one round, one answer each, in order: by default each
    /// on its own, at once.
    fn query_round<'a>(
        &'a self,
        statements: &'a [(String, Vec<Cell>)],
        grants: &'a Grants,
        timeout: Duration,
    ) -> DbRoundFuture<'a> {
        let each = statements
            .iter()
            .map(move |(sql, params)| self.query(sql, params, grants, Access::ReadOnly, timeout));
        Box::pin(futures_util::future::join_all(each))
    }
}

impl Database for PostgresRunner {
    fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [Cell],
        grants: &'a Grants,
        access: Access,
        timeout: Duration,
    ) -> DbFuture<'a, Rows> {
        Box::pin(async move {
            PostgresRunner::query(self, sql, params, RunAs::Footprint(grants), access, timeout)
                .await
                .map_err(classify)
        })
    }

    fn execute<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [Cell],
        grants: &'a Grants,
        access: Access,
        timeout: Duration,
    ) -> DbFuture<'a, u64> {
        Box::pin(async move {
            PostgresRunner::execute(self, sql, params, RunAs::Footprint(grants), access, timeout)
                .await
                .map_err(classify)
        })
    }

    fn execute_many<'a>(
        &'a self,
        sql: &'a str,
        rows: &'a [Vec<Cell>],
        grants: &'a Grants,
        access: Access,
        timeout: Duration,
    ) -> DbFuture<'a, u64> {
        Box::pin(async move {
            PostgresRunner::execute_many(self, sql, rows, RunAs::Footprint(grants), access, timeout)
                .await
                .map_err(classify)
        })
    }

    /// One connection, one read-only transaction, the statements pipelined.
    fn query_round<'a>(
        &'a self,
        statements: &'a [(String, Vec<Cell>)],
        grants: &'a Grants,
        timeout: Duration,
    ) -> DbRoundFuture<'a> {
        Box::pin(async move {
            PostgresRunner::query_round(self, statements, RunAs::Footprint(grants), timeout)
                .await
                .into_iter()
                .map(|rows| rows.map_err(classify))
                .collect()
        })
    }
}

impl Database for SqliteRunner {
    fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [Cell],
        grants: &'a Grants,
        access: Access,
        timeout: Duration,
    ) -> DbFuture<'a, Rows> {
        Box::pin(SqliteRunner::query(
            self,
            sql,
            params.to_vec(),
            grants,
            access,
            timeout,
        ))
    }

    fn execute<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [Cell],
        grants: &'a Grants,
        access: Access,
        timeout: Duration,
    ) -> DbFuture<'a, u64> {
        Box::pin(SqliteRunner::execute(
            self,
            sql,
            params.to_vec(),
            grants,
            access,
            timeout,
        ))
    }

    fn execute_many<'a>(
        &'a self,
        sql: &'a str,
        rows: &'a [Vec<Cell>],
        grants: &'a Grants,
        access: Access,
        timeout: Duration,
    ) -> DbFuture<'a, u64> {
        Box::pin(SqliteRunner::execute_many(
            self,
            sql,
            rows.to_vec(),
            grants,
            access,
            timeout,
        ))
    }
}

/// A PostgreSQL failure as the WIT error variant.
fn classify(error: DbError) -> EffectError {
    let message = error.to_string();
    match error {
        DbError::Connection { .. } | DbError::Config { .. } => EffectError::Connection(message),
        DbError::Timeout { .. } => EffectError::Timeout(message),
        DbError::Constraint { .. } => EffectError::Constraint(message),
        DbError::Syntax { .. }
        | DbError::UndefinedTable { .. }
        | DbError::UndefinedColumn { .. }
        | DbError::ParamCount { .. }
        | DbError::ParamType { .. } => EffectError::Syntax(message),
        DbError::Permission { .. } | DbError::ReadOnly { .. } => EffectError::Permission(message),
        DbError::RowLimit { .. } | DbError::ByteLimit { .. } => EffectError::Limit(message),
        DbError::UnsupportedType { .. } => EffectError::BadAnswer(message),
        _ => EffectError::Other(message),
    }
}
