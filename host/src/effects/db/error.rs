//! The PostgreSQL driver's errors, classified into kinds a caller can match on.
//!
//! Invariants:
//! - Server errors are classified by SQLSTATE ([`classify`]), never by message text: the
//!   message is kept for people, the kind is for code. A SQLSTATE not listed here becomes
//!   [`DbError::Other`] with the code kept.
//! - Client-side failures (connection lost, connect timeout) are told apart by the driver's
//!   typed accessors (`is_closed`, the `io::Error` source), not by their text.
//! - Every limit variant carries the limit that was hit.

use std::fmt;
use std::time::Duration;

use tokio_postgres::error::SqlState;

/// Which time limit ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeoutKind {
    /// Opening a connection (`DbConfig::connect_timeout`).
    Connect,
    /// The server cancelled the statement (`DbConfig::statement_timeout`, SQLSTATE 57014).
    Statement,
    /// The caller's remaining run deadline, enforced by the runner (the query is cancelled on
    /// the server and its connection discarded).
    Deadline,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "connect",
            TimeoutKind::Statement => "statement",
            TimeoutKind::Deadline => "deadline",
        })
    }
}

/// A failed database call. Each variant says whose fault it is: the statement's (user error),
/// the environment's, or a limit's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum DbError {
    /// The connection URL or pool settings are invalid (user error in configuration).
    #[error("invalid database configuration: {message}")]
    Config { message: String },
    /// The server could not be reached, refused the login, or went away mid-call
    /// (environment; SQLSTATE classes 08 and 28, 3D000, 53300, 57P01–57P03, or no SQLSTATE).
    #[error("database connection failed: {message}")]
    Connection {
        sqlstate: Option<String>,
        message: String,
    },
    /// A time limit ran out (a limit).
    #[error("database call exceeded its {kind} timeout of {limit:?}")]
    Timeout { kind: TimeoutKind, limit: Duration },
    /// An integrity constraint was violated (user data; SQLSTATE class 23).
    #[error("constraint {} violated ({sqlstate}): {message}", constraint.as_deref().unwrap_or("?"))]
    Constraint {
        sqlstate: String,
        constraint: Option<String>,
        table: Option<String>,
        message: String,
    },
    /// The SQL does not parse (user error; 42601, 42602, 42622, 42000).
    #[error("SQL syntax error ({sqlstate}): {message}")]
    Syntax {
        sqlstate: String,
        message: String,
        position: Option<u32>,
    },
    /// A table or view that does not exist (user error; 42P01).
    #[error("undefined table: {message}")]
    UndefinedTable { message: String },
    /// A column that does not exist (user error; 42703).
    #[error("undefined column: {message}")]
    UndefinedColumn { message: String },
    /// The role may not do this (policy; 42501).
    #[error("permission denied: {message}")]
    Permission { message: String },
    /// A write inside a read-only transaction (policy; 25006).
    #[error("write refused in a read-only transaction: {message}")]
    ReadOnly { message: String },
    /// The transaction lost a serialization race or a deadlock; retrying may succeed
    /// (environment; 40001, 40P01).
    #[error("serialization failure ({sqlstate}): {message}")]
    Serialization { sqlstate: String, message: String },
    /// The result has more rows than the cap (a limit).
    #[error("result exceeds the row limit of {limit}")]
    RowLimit { limit: usize },
    /// The result's cells add up to more bytes than the cap (a limit).
    #[error("result exceeds the byte limit of {limit}")]
    ByteLimit { limit: usize },
    /// A result column of a type with no cell mapping (user error; cast it in SQL).
    #[error("column {column:?} has unsupported type {pg_type}; cast it, e.g. {column}::text")]
    UnsupportedType { column: String, pg_type: String },
    /// A parameter whose value does not fit the type PostgreSQL inferred for it (user error).
    #[error("parameter ${} is {param}, which does not fit type {pg_type}", index + 1)]
    ParamType {
        index: usize,
        param: &'static str,
        pg_type: String,
    },
    /// The statement takes a different number of parameters (user error).
    #[error("statement takes {expected} parameters, {got} given")]
    ParamCount { expected: usize, got: usize },
    /// Any other failure, with its SQLSTATE when the server sent one.
    #[error("database error ({}): {message}", sqlstate.as_deref().unwrap_or("no SQLSTATE"))]
    Other {
        sqlstate: Option<String>,
        message: String,
    },
}

/// Classifies a driver error. `statement_timeout` is the configured per-statement limit,
/// reported when the server cancelled a statement for exceeding it.
pub(crate) fn classify(error: &tokio_postgres::Error, statement_timeout: Duration) -> DbError {
    let Some(db) = error.as_db_error() else {
        // A server message over the stream's bound (`stream::Bounded`): the byte cap, refused
        // before the driver held the message. The runner fills in its cap.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = source {
            if e.to_string().contains(super::stream::OVERSIZED) {
                return DbError::ByteLimit { limit: 0 };
            }
            source = e.source();
        }
        return classify_client(error);
    };
    let sqlstate = db.code().code().to_string();
    let message = db.message().to_string();
    let code = db.code();
    if *code == SqlState::QUERY_CANCELED {
        return DbError::Timeout {
            kind: TimeoutKind::Statement,
            limit: statement_timeout,
        };
    }
    if sqlstate.starts_with("23") {
        return DbError::Constraint {
            sqlstate,
            constraint: db.constraint().map(str::to_string),
            table: db.table().map(str::to_string),
            message,
        };
    }
    if sqlstate.starts_with("08") || sqlstate.starts_with("28") {
        return DbError::Connection {
            sqlstate: Some(sqlstate),
            message,
        };
    }
    let position = match db.position() {
        Some(tokio_postgres::error::ErrorPosition::Original(at)) => Some(*at),
        _ => None,
    };
    match *code {
        SqlState::SYNTAX_ERROR
        | SqlState::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION
        | SqlState::INVALID_NAME
        | SqlState::NAME_TOO_LONG => DbError::Syntax {
            sqlstate,
            message,
            position,
        },
        SqlState::UNDEFINED_TABLE => DbError::UndefinedTable { message },
        SqlState::UNDEFINED_COLUMN => DbError::UndefinedColumn { message },
        SqlState::INSUFFICIENT_PRIVILEGE => DbError::Permission { message },
        SqlState::READ_ONLY_SQL_TRANSACTION => DbError::ReadOnly { message },
        SqlState::T_R_SERIALIZATION_FAILURE | SqlState::T_R_DEADLOCK_DETECTED => {
            DbError::Serialization { sqlstate, message }
        }
        SqlState::ADMIN_SHUTDOWN
        | SqlState::CRASH_SHUTDOWN
        | SqlState::CANNOT_CONNECT_NOW
        | SqlState::TOO_MANY_CONNECTIONS
        | SqlState::INVALID_CATALOG_NAME => DbError::Connection {
            sqlstate: Some(sqlstate),
            message,
        },
        _ => DbError::Other {
            sqlstate: Some(sqlstate),
            message,
        },
    }
}

/// Errors with no SQLSTATE: the connection, the socket, the protocol.
fn classify_client(error: &tokio_postgres::Error) -> DbError {
    let message = full_message(error);
    if error.is_closed() {
        return DbError::Connection {
            sqlstate: None,
            message,
        };
    }
    let io = std::error::Error::source(error).and_then(|s| s.downcast_ref::<std::io::Error>());
    match io {
        Some(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            // The driver reports its own connect timeout as an io TimedOut; the limit is
            // filled in by the runner, which knows it.
            DbError::Timeout {
                kind: TimeoutKind::Connect,
                limit: Duration::ZERO,
            }
        }
        Some(_) => DbError::Connection {
            sqlstate: None,
            message,
        },
        None => DbError::Other {
            sqlstate: None,
            message,
        },
    }
}

/// The error and its sources, joined: tokio-postgres's own text is often just "db error".
fn full_message(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Classifies a failure to get a connection from the pool.
pub(crate) fn classify_pool(
    error: &deadpool_postgres::PoolError,
    connect_timeout: Duration,
    statement_timeout: Duration,
) -> DbError {
    use deadpool_postgres::PoolError;
    match error {
        PoolError::Timeout(_) => DbError::Timeout {
            kind: TimeoutKind::Connect,
            limit: connect_timeout,
        },
        PoolError::Backend(e) => match classify(e, statement_timeout) {
            DbError::Timeout {
                kind: TimeoutKind::Connect,
                ..
            } => DbError::Timeout {
                kind: TimeoutKind::Connect,
                limit: connect_timeout,
            },
            other => other,
        },
        PoolError::Closed => DbError::Connection {
            sqlstate: None,
            message: "the pool is closed".into(),
        },
        PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => DbError::Other {
            sqlstate: None,
            message: error.to_string(),
        },
    }
}
