//! [`Denied`]: what a footprint check refused, exactly, and what the graph author can do.
//!
//! Invariants:
//! - Every refusal names the thing refused (table and access, statement, function, URL and the
//!   rule part that failed, kernel, address and its range); none is a bare string.
//! - Every variant is a user error of the graph (or, for [`Denied::Egress`], the operator's
//!   policy); none is a host bug. Checking never panics on any input.
//! - Strings carried here are bounded: URLs are cut at [`MAX_SHOWN_BYTES`], SQL is never
//!   copied whole.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use super::egress::AddrClass;
use super::table::TableName;

/// The longest URL or message a refusal repeats; longer ones are cut (on a char boundary) and
/// marked with `…`, so that a hostile input cannot make errors and logs large.
pub(crate) const MAX_SHOWN_BYTES: usize = 256;

/// Reading or writing a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Access {
    /// `SELECT`-like access: the statement observes the table's rows.
    Read,
    /// `INSERT`, `UPDATE`, `DELETE`, `MERGE` target.
    Write,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
        })
    }
}

/// A check refused an effect before any driver saw it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Denied {
    /// User error: the SQL reads or writes a table the footprint does not name for that access.
    #[error("{access} of table {table} is outside the footprint{}", system_note(*system))]
    Table {
        /// The table, fully qualified and case-folded.
        table: TableName,
        /// Whether the statement reads or writes it.
        access: Access,
        /// It is a system catalog (`pg_catalog`, `information_schema`, …).
        system: bool,
    },
    /// User error: a statement other than SELECT, INSERT, UPDATE, DELETE or MERGE.
    #[error("SQL statement {index} is {kind}, which graphs may not run")]
    Statement {
        /// Its position in the SQL string, from 0.
        index: usize,
        /// Its leading keywords (`DROP TABLE`, `COPY`, `SET`, …).
        kind: String,
    },
    /// User error: a clause or form the check does not analyse (and so refuses).
    #[error("SQL uses {construct}, which the footprint check refuses")]
    SqlConstruct {
        /// What was found.
        construct: SqlConstruct,
    },
    /// User error: a function outside the allow-list of pure functions.
    #[error("SQL calls {name}(): {reason}")]
    Function {
        /// The function's name as written (case-folded, qualified if it was).
        name: String,
        /// Why it is refused.
        reason: FunctionRefusal,
    },
    /// User error: text another lexer (PostgreSQL's, SQLite's) could cut into other tokens
    /// than the check did, so it is refused before it is parsed (`footprint::lexical`).
    #[error("SQL contains {lexeme}, which the footprint check refuses")]
    SqlLexeme {
        /// What was found.
        lexeme: super::lexical::Lexeme,
    },
    /// User error: the SQL does not parse as PostgreSQL.
    #[error("SQL does not parse: {message}")]
    SqlSyntax {
        /// The parser's message (bounded).
        message: String,
    },
    /// Limit: the SQL text is longer than [`super::sql::MAX_SQL_BYTES`].
    #[error("SQL is {length} bytes, over the limit of {limit}")]
    SqlTooLong {
        /// Its length.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// User error: an HTTP request outside the footprint, or a URL the check refuses outright.
    #[error("HTTP {method} {url} refused: {reason}")]
    Http {
        /// The method as given (bounded).
        method: String,
        /// The URL, normalized when it parsed, else as given (bounded).
        url: String,
        /// What failed.
        reason: HttpRefusal,
    },
    /// User error: a kernel the footprint does not name.
    #[error("kernel {name:?} is outside the footprint")]
    Kernel {
        /// The kernel's name as given (bounded).
        name: String,
    },
    /// Policy: a resolved address in a range the host's egress policy refuses.
    #[error("connecting to {addr} refused: {class}{}", via_note(*via))]
    Egress {
        /// The address the name resolved to.
        addr: IpAddr,
        /// Its range.
        class: AddrClass,
        /// The IPv4 address embedded in it (IPv4-mapped, -compatible, NAT64, 6to4), when the
        /// class is that address's.
        via: Option<Ipv4Addr>,
    },
}

/// SQL forms refused because the check cannot vouch for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqlConstruct {
    /// No statement at all (empty, or only comments).
    NoStatement,
    /// `SELECT … INTO t` creates a table.
    SelectInto,
    /// `FOR UPDATE` / `FOR SHARE` lock rows (PostgreSQL asks for UPDATE privilege).
    RowLocks,
    /// `TABLE t` shorthand (write `SELECT * FROM t`).
    TableShorthand,
    /// `db.schema.table`.
    CatalogQualifiedName,
    /// An identifier over 63 bytes (PostgreSQL would truncate it).
    LongIdentifier,
    /// `""`, or an identifier quoted other than with double quotes.
    OddIdentifier,
    /// A FROM item other than a table, subquery, join, `UNNEST` or function call
    /// (`JSON_TABLE`, `XMLTABLE`, `PIVOT`, …).
    UnsupportedFromItem,
    /// An INSERT/UPDATE/DELETE/MERGE target that is not a plain table, or targets with joins.
    UnsupportedWriteTarget,
    /// A cast to a `reg*` type (`'t'::regclass`) looks tables up in the catalogs.
    RegTypeCast,
    /// A clause of another SQL dialect (SETTINGS, FORMAT, FOR XML, pipe operators, …).
    ForeignClause,
    /// Nesting deeper than the parser's recursion limit.
    TooDeep,
}

impl fmt::Display for SqlConstruct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoStatement => "no statement",
            Self::SelectInto => "SELECT ... INTO (it creates a table)",
            Self::RowLocks => "a row-locking clause (FOR UPDATE / FOR SHARE)",
            Self::TableShorthand => "the TABLE shorthand",
            Self::CatalogQualifiedName => "a database-qualified name (db.schema.table)",
            Self::LongIdentifier => "an identifier over 63 bytes",
            Self::OddIdentifier => "an empty or non-double-quoted identifier",
            Self::UnsupportedFromItem => "a FROM item other than a table, subquery or function",
            Self::UnsupportedWriteTarget => "a write target that is not a single plain table",
            Self::RegTypeCast => "a cast to a reg* catalog type",
            Self::ForeignClause => "a clause PostgreSQL does not have",
            Self::TooDeep => "nesting deeper than the parser's limit",
        })
    }
}

/// Why a function call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FunctionRefusal {
    /// Known to have side effects or to escape the database (`pg_sleep`, `lo_import`,
    /// `nextval`, `dblink`, `set_config`, …).
    SideEffect,
    /// Not on the allow-list of functions known to be pure.
    NotAllowListed,
    /// Qualified with a schema other than `pg_catalog` (a user-defined function).
    UserDefined,
}

impl fmt::Display for FunctionRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SideEffect => "it has side effects or reaches outside the database",
            Self::NotAllowListed => "it is not on the list of functions known to be pure",
            Self::UserDefined => "user-defined functions are not allowed",
        })
    }
}

/// Which part of an HTTP rule a URL failed, in the order they are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RulePart {
    /// `http` vs `https`.
    Scheme,
    /// The host (exact, or `*.domain`).
    Host,
    /// The port (explicit or the scheme's default).
    Port,
    /// The path prefix, on segment boundaries.
    Path,
    /// The method.
    Method,
}

impl fmt::Display for RulePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Scheme => "scheme",
            Self::Host => "host",
            Self::Port => "port",
            Self::Path => "path_prefix",
            Self::Method => "method",
        })
    }
}

/// Why an HTTP request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpRefusal {
    /// The URL does not parse (the `url` crate's reason).
    Invalid {
        /// The parser's message.
        reason: String,
    },
    /// Limit: longer than [`super::url::MAX_URL_BYTES`].
    TooLong {
        /// Its length.
        length: usize,
    },
    /// A scheme other than `http` or `https`.
    Scheme,
    /// `user@host` or `user:password@host`.
    Userinfo,
    /// A `#fragment` (never sent; refused as a likely confusion).
    Fragment,
    /// A host ending in `.`.
    TrailingDot,
    /// `%2F`, `%5C` or `%00` in the path (servers disagree on what they mean).
    EncodedSeparator,
    /// A method other than GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (upper case).
    Method,
    /// No rule allows it.
    NoRule {
        /// The rule that matched the most parts (index into `footprint.http`), if any rule.
        closest: Option<usize>,
        /// The first part that rule failed on.
        part: RulePart,
        /// A rule that would allow exactly this request.
        suggestion: String,
    },
}

impl fmt::Display for HttpRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { reason } => write!(f, "not a valid URL ({reason})"),
            Self::TooLong { length } => write!(f, "the URL is {length} bytes, over the limit"),
            Self::Scheme => f.write_str("only http and https are allowed"),
            Self::Userinfo => f.write_str("credentials in the URL (user@host) are refused"),
            Self::Fragment => f.write_str("a #fragment is refused"),
            Self::TrailingDot => f.write_str("a host ending in '.' is refused"),
            Self::EncodedSeparator => f.write_str("an encoded '/', '\\' or NUL in the path"),
            Self::Method => f.write_str("not a standard upper-case method"),
            Self::NoRule {
                closest: None,
                part,
                ..
            } => write!(f, "the footprint has no http rules (first part: {part})"),
            Self::NoRule {
                closest: Some(rule),
                part,
                ..
            } => write!(
                f,
                "no rule allows it (closest: rule {rule}, its {part} differs)"
            ),
        }
    }
}

impl Denied {
    /// What the graph author (or, for egress, the operator) can change to get past this.
    pub(crate) fn remediation(&self) -> String {
        match self {
            Self::Table {
                table,
                access,
                system: true,
            } => format!(
                "{table} is a system catalog; graphs rarely need one. If this graph does, name \
                 \"{}\" exactly in footprint.db.{access}",
                json_escape(&table.to_string())
            ),
            Self::Table {
                table,
                access: Access::Read,
                ..
            } => format!(
                "add \"{}\" to footprint.db.read",
                json_escape(&table.to_string())
            ),
            Self::Table {
                table,
                access: Access::Write,
                ..
            } => format!(
                "add \"{}\" to footprint.db.write (a write target that the statement also reads \
                 must be in footprint.db.read too: writing does not grant reading)",
                json_escape(&table.to_string())
            ),
            Self::Statement { .. } => "graphs may run only SELECT, INSERT, UPDATE, DELETE and \
                 MERGE; do schema changes, COPY, settings and transactions outside graphjit"
                .to_string(),
            Self::SqlConstruct { construct } => format!(
                "rewrite the query without {construct} (docs/graph-format.md, \"Footprint\")"
            ),
            Self::Function { name, .. } => format!(
                "rewrite the query without {name}(); only functions known to be pure may be \
                 called (docs/graph-format.md, \"Footprint\")"
            ),
            Self::SqlLexeme { lexeme } => lexeme.remediation().to_string(),
            Self::SqlSyntax { .. } => {
                "fix the SQL: it must parse as PostgreSQL (one or more statements)".to_string()
            }
            Self::SqlTooLong { limit, .. } => {
                format!("keep the SQL under {limit} bytes; pass data as parameters")
            }
            Self::Http {
                reason: HttpRefusal::NoRule { suggestion, .. },
                ..
            } => format!("add this rule to footprint.http: {suggestion}"),
            Self::Http { reason, .. } => format!("use a plain http(s) URL: {reason}"),
            Self::Kernel { name } => format!(
                "add \"{}\" to footprint.kernels",
                json_escape(&shown(name.as_str()))
            ),
            Self::Egress { class, .. } => format!(
                "the host's egress policy refuses {class} addresses; the graph cannot change \
                 this, an operator can allow the network in EgressPolicy"
            ),
        }
    }
}

fn system_note(system: bool) -> &'static str {
    if system { " (a system catalog)" } else { "" }
}

fn via_note(via: Option<Ipv4Addr>) -> String {
    via.map(|v| format!(" (it embeds {v})")).unwrap_or_default()
}

/// `text`, cut to [`MAX_SHOWN_BYTES`] on a char boundary.
pub(crate) fn shown(text: &str) -> String {
    if text.len() <= MAX_SHOWN_BYTES {
        return text.to_string();
    }
    let mut end = MAX_SHOWN_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", text.get(..end).unwrap_or_default())
}

/// Escapes `"` and `\` so that the text can sit inside a JSON string in a remediation.
pub(crate) fn json_escape(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_string()
}
