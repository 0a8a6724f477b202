//! The [`Dispatcher`]: one graph's footprint in front of the host's drivers. Every effect call
//! (from a guest's host import or from `eval`) comes here: the footprint check first, then the
//! runner, then the runner's failure classified into an [`EffectError`].
//!
//! Invariants:
//! - A call the footprint refuses never reaches a driver ([`EffectError::FootprintDenied`],
//!   with what was refused and what to declare).
//! - SQL that writes nothing runs in a read-only transaction, and so does every statement of
//!   a graph whose footprint declares no write set.
//! - Each driver call gets the smaller of its own timeout and what the run has left.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use graphjit_value::effects::Cell;

use super::call::{
    EffectAnswer, EffectCall, EffectError, EffectFuture, EffectHandler, RoundFuture,
};
use super::database::Database;
use super::db::{Access, Grants};
use super::http::HttpRunner;
use super::kernels::{KernelError, Kernels};

/// A deadline for a timeout too large to add to now: a year.
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
use crate::footprint::{Denied, Footprint};

/// The most log lines one host keeps (oldest dropped first).
const MAX_LOG_LINES: usize = 10_000;
/// The most bytes of log text one host keeps (oldest lines dropped first): without it, 10,000
/// lines of a guest's largest string each would hold gigabytes of host memory.
pub(crate) const MAX_LOG_BYTES: usize = 1 << 20;
/// The longest message kept whole; longer ones are cut on a char boundary and marked.
pub(crate) const MAX_LOG_MESSAGE_BYTES: usize = 4096;
/// The longest level kept.
const MAX_LOG_LEVEL_BYTES: usize = 16;

/// The host's drivers, shared by every graph's dispatcher.
#[derive(Debug, Default)]
pub(crate) struct Services {
    /// The database, once the host was given one: PostgreSQL, or the embedded SQLite.
    pub(crate) db: std::sync::OnceLock<Arc<dyn Database>>,
    /// HTTP, with the host's egress policy.
    pub(crate) http: HttpRunner,
    /// Log lines from `log` nodes: `(level, message)`, at most [`MAX_LOG_LINES`] and
    /// [`MAX_LOG_BYTES`] of them.
    pub(crate) log: Mutex<Vec<(String, String)>>,
    /// The bytes of text in `log` (changed only under its lock).
    pub(crate) log_bytes: std::sync::atomic::AtomicUsize,
    /// The kernels and their backend (native unless the host detected a GPU).
    pub(crate) kernels: Kernels,
}

impl Services {
    fn push_log(&self, level: String, message: String) {
        use std::sync::atomic::Ordering;
        let level = cut(level, MAX_LOG_LEVEL_BYTES);
        let message = cut(message, MAX_LOG_MESSAGE_BYTES);
        let size = level.len() + message.len();
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let mut bytes = self.log_bytes.load(Ordering::Relaxed);
        let mut drop = 0;
        while drop < log.len()
            && (log.len() - drop >= MAX_LOG_LINES || bytes + size > MAX_LOG_BYTES)
        {
            bytes -= log[drop].0.len() + log[drop].1.len();
            drop += 1;
        }
        log.drain(..drop);
        log.push((level, message));
        self.log_bytes.store(bytes + size, Ordering::Relaxed);
    }

    /// The bytes of log text kept now.
    #[cfg(test)]
    fn log_bytes(&self) -> usize {
        self.log_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// `text`, cut to at most `limit` bytes on a char boundary, marked when cut.
fn cut(mut text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let total = text.len();
    let mut end = limit.saturating_sub(32);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!("…[{} bytes cut]", total - end));
    text
}

/// One graph's effect handler.
#[derive(Debug, Clone)]
pub(crate) struct Dispatcher {
    footprint: Arc<Footprint>,
    /// The footprint's tables and functions as the database enforces them.
    grants: Arc<Grants>,
    services: Arc<Services>,
}

/// The most calls of one round (other than its database reads, which share one connection)
/// served at once; the rest wait for a slot, answers still in the calls' order.
pub(crate) const MAX_ROUND_CONCURRENCY: usize = 16;

/// One SQL text after its footprint check: where it runs, how, and the text to run.
struct CheckedSql<'a> {
    db: &'a dyn Database,
    access: Access,
    /// The canonical print of what was checked: the driver runs this, not the graph's text.
    sql: String,
}

impl Dispatcher {
    pub(crate) fn new(footprint: Arc<Footprint>, services: Arc<Services>) -> Dispatcher {
        let grants = Arc::new(grants(&footprint));
        Dispatcher {
            footprint,
            grants,
            services,
        }
    }

    /// The same footprint and grants served by other drivers (another tenant's database).
    pub(crate) fn with_services(&self, services: Arc<Services>) -> Dispatcher {
        Dispatcher {
            footprint: Arc::clone(&self.footprint),
            grants: Arc::clone(&self.grants),
            services,
        }
    }

    /// The drivers this dispatcher serves calls with.
    pub(crate) fn services(&self) -> &Arc<Services> {
        &self.services
    }

    async fn serve(
        &self,
        call: EffectCall,
        timeout: Duration,
    ) -> Result<EffectAnswer, EffectError> {
        let checked = match &call {
            EffectCall::DbQuery { sql, .. }
            | EffectCall::DbExecute { sql, .. }
            | EffectCall::DbExecuteMany { sql, .. } => Some(self.db(sql)?),
            _ => None,
        };
        self.serve_checked(call, checked, timeout).await
    }

    /// Serves `call`; for SQL, `checked` is its footprint check's outcome, done once by the
    /// caller (the SQL parse is the expensive part of it).
    async fn serve_checked(
        &self,
        call: EffectCall,
        checked: Option<CheckedSql<'_>>,
        timeout: Duration,
    ) -> Result<EffectAnswer, EffectError> {
        let sql_checked = || {
            checked
                .ok_or_else(|| EffectError::Other("SQL served without its footprint check".into()))
        };
        match call {
            EffectCall::DbQuery { params, .. } => {
                let CheckedSql { db, access, sql } = sql_checked()?;
                let rows = db
                    .query(&sql, &params, &self.grants, access, timeout)
                    .await?;
                Ok(EffectAnswer::Rows(rows))
            }
            EffectCall::DbExecute { params, .. } => {
                let CheckedSql { db, access, sql } = sql_checked()?;
                let count = db
                    .execute(&sql, &params, &self.grants, access, timeout)
                    .await?;
                Ok(EffectAnswer::Count(count))
            }
            EffectCall::DbExecuteMany { rows, .. } => {
                let CheckedSql { db, access, sql } = sql_checked()?;
                let count = db
                    .execute_many(&sql, &rows, &self.grants, access, timeout)
                    .await?;
                Ok(EffectAnswer::Count(count))
            }
            EffectCall::Http(request) => {
                let response = self
                    .services
                    .http
                    .request(&self.footprint, request, timeout)
                    .await?;
                Ok(EffectAnswer::Response(response))
            }
            EffectCall::Kernel { name, args } => {
                self.footprint.check_kernel(&name).map_err(denied)?;
                // Off the async workers (a kernel is CPU work), stopping at the deadline.
                let kernels = self.services.kernels.clone();
                let deadline = std::time::Instant::now()
                    .checked_add(timeout)
                    .unwrap_or_else(|| std::time::Instant::now() + FAR);
                let result =
                    tokio::task::spawn_blocking(move || kernels.run(&name, &args, deadline))
                        .await
                        .map_err(|e| EffectError::Other(format!("the kernel task failed: {e}")))?;
                match result {
                    Ok(tensor) => Ok(EffectAnswer::Tensor(tensor)),
                    Err(KernelError::Bad(why)) => Err(EffectError::BadAnswer(why)),
                    Err(KernelError::Deadline) => Err(EffectError::Timeout(format!(
                        "the kernel was still running at the run's deadline ({timeout:?} left \
                         when it started)"
                    ))),
                }
            }
            EffectCall::Log { level, message } => {
                self.services.push_log(level, message);
                Ok(EffectAnswer::Unit)
            }
        }
    }

    /// The footprint check of one SQL text, and the runner, access and text it runs with.
    fn db(&self, sql: &str) -> Result<CheckedSql<'_>, EffectError> {
        let checked = self.footprint.check_sql(sql).map_err(denied)?;
        let db = self.services.db.get().ok_or_else(|| {
            EffectError::Connection("this host has no database configured".into())
        })?;
        let access = if checked.writes.is_empty() || self.footprint.db.read_only() {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        };
        Ok(CheckedSql {
            db: db.as_ref(),
            access,
            sql: checked.sql,
        })
    }
}

impl EffectHandler for Dispatcher {
    fn call(&self, call: EffectCall, timeout: Duration) -> EffectFuture<'_> {
        Box::pin(self.serve(call, timeout))
    }

    /// A round: each call passes its interface's footprint check (a round is one import for
    /// several interfaces), then every call runs at once. The round's reads go to the
    /// database together ([`Database::query_round`]: on PostgreSQL one connection and one
    /// read-only transaction, pipelined).
    fn call_round(&self, calls: Vec<EffectCall>, timeout: Duration) -> RoundFuture<'_> {
        Box::pin(self.serve_round(calls, timeout))
    }
}

impl Dispatcher {
    async fn serve_round(
        &self,
        calls: Vec<EffectCall>,
        timeout: Duration,
    ) -> Vec<Result<EffectAnswer, EffectError>> {
        let mut results: Vec<Option<Result<EffectAnswer, EffectError>>> = vec![None; calls.len()];
        let mut reads: Vec<usize> = Vec::new();
        let mut statements: Vec<(String, Vec<Cell>)> = Vec::new();
        let mut reads_db: Option<&dyn Database> = None;
        let mut others = Vec::new();
        for (i, call) in calls.into_iter().enumerate() {
            let interface = call.interface();
            if !interface.allowed_by(&self.footprint) {
                results[i] = Some(Err(EffectError::FootprintDenied(format!(
                    "the footprint allows no {interface} effects; fix: declare them in \"footprint\""
                ))));
                continue;
            }
            // One footprint check per SQL text: its outcome goes with the call.
            let checked = match &call {
                EffectCall::DbQuery { sql, .. }
                | EffectCall::DbExecute { sql, .. }
                | EffectCall::DbExecuteMany { sql, .. } => match self.db(sql) {
                    Ok(checked) => Some(checked),
                    Err(e) => {
                        results[i] = Some(Err(e));
                        continue;
                    }
                },
                _ => None,
            };
            if let (
                EffectCall::DbQuery { params, .. },
                Some(CheckedSql {
                    db,
                    access: Access::ReadOnly,
                    sql,
                }),
            ) = (&call, &checked)
            {
                reads.push(i);
                statements.push((sql.clone(), params.clone()));
                reads_db = Some(*db);
                continue;
            }
            others.push((i, call, checked));
        }
        let read_round = async {
            match reads_db {
                Some(db) if statements.len() >= 2 => {
                    db.query_round(&statements, &self.grants, timeout).await
                }
                Some(db) => {
                    let each = statements.iter().map(|(sql, params)| {
                        db.query(sql, params, &self.grants, Access::ReadOnly, timeout)
                    });
                    futures_util::future::join_all(each).await
                }
                None => Vec::new(),
            }
        };
        // At most `MAX_ROUND_CONCURRENCY` in flight: a round built by a `map` over a long list
        // holds one call per element, and must not open a connection for each at once.
        let pending: Vec<_> = others
            .into_iter()
            .map(|(_, call, checked)| Box::pin(self.serve_checked(call, checked, timeout)))
            .collect();
        let rest = futures_util::StreamExt::collect::<Vec<_>>(futures_util::StreamExt::buffered(
            futures_util::stream::iter(pending),
            MAX_ROUND_CONCURRENCY,
        ));
        let (read_rows, rest_answers) = futures_util::future::join(read_round, rest).await;
        for (i, rows) in reads.iter().zip(read_rows) {
            results[*i] = Some(rows.map(EffectAnswer::Rows));
        }
        let mut rest_answers = rest_answers.into_iter();
        for slot in results.iter_mut().filter(|s| s.is_none()) {
            *slot = rest_answers.next();
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(EffectError::Other("no answer".into()))))
            .collect()
    }
}

/// The footprint's tables and functions in the form the databases enforce them.
fn grants(footprint: &Footprint) -> Grants {
    let pairs = |set: &std::collections::BTreeSet<crate::footprint::TableName>| {
        set.iter()
            .map(|t| (t.schema().to_string(), t.name().to_string()))
            .collect()
    };
    Grants {
        read: pairs(&footprint.db.read),
        write: pairs(&footprint.db.write),
        allow_function: crate::footprint::is_pure_function,
    }
}

fn denied(denied: Denied) -> EffectError {
    EffectError::FootprintDenied(format!("{denied}; fix: {}", denied.remediation()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_a_bounded_number_of_bytes_whatever_the_lines() {
        let services = Services::default();
        let before = crate::testing::resident_bytes();
        // 2,000 lines of 1 MiB: 2 GiB if kept whole.
        for i in 0..2_000 {
            services.push_log(format!("info{i}"), "x".repeat(1 << 20));
        }
        assert!(
            services.log_bytes() <= MAX_LOG_BYTES,
            "{}",
            services.log_bytes()
        );
        let log = services.log.lock().expect("log");
        let kept: usize = log.iter().map(|(l, m)| l.len() + m.len()).sum();
        assert_eq!(kept, services.log_bytes());
        assert!(
            log.iter()
                .all(|(_, m)| m.len() <= MAX_LOG_MESSAGE_BYTES + 32)
        );
        assert!(
            log.last()
                .is_some_and(|(l, m)| l == "info1999" && m.ends_with("bytes cut]"))
        );
        drop(log);
        // Each line existed once, briefly; the process never held many of them.
        let grown = crate::testing::resident_bytes().saturating_sub(before);
        // Kept whole they would be 2 GiB; the allocator may keep some freed pages.
        assert!(grown < 1 << 30, "resident memory grew {grown} bytes");
        // Many small lines: the line cap, oldest dropped first.
        for i in 0..(MAX_LOG_LINES + 10) {
            services.push_log("i".into(), format!("{i}"));
        }
        let log = services.log.lock().expect("log");
        assert_eq!(log.len(), MAX_LOG_LINES);
        assert_eq!(log[0].1, "10");
    }
}
