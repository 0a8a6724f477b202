//! The footprint: what a graph declares it may touch, and the checks every effect passes
//! before a driver sees it (seed 4.1 "Footprint compliance").
//!
//! A [`Footprint`] names DB tables to read and to write, HTTP rules, and kernels. The host
//! calls [`Footprint::check_sql`], [`Footprint::check_http`] (and
//! [`Footprint::check_redirect`] per hop), [`Footprint::check_kernel`], and, on each resolved
//! address, [`EgressPolicy::check_addr`]; each returns a typed [`Denied`] naming what was
//! refused, with [`Denied::remediation`] for the graph author. Invariants:
//! - Pure: no I/O, no DNS, no database; the same input always gives the same answer.
//! - Empty means nothing: a missing section allows nothing, and the default footprint allows
//!   no effect at all.
//! - Writing does not grant reading: `db.write` allows a table as a write target only; a
//!   statement that also observes the target's rows (UPDATE, DELETE, MERGE, INSERT with
//!   RETURNING or ON CONFLICT) needs it in `db.read` as well. Reading never grants writing.
//! - Valid by construction: tables and rules are parsed and normalized when the footprint is
//!   read ([`FootprintError`] otherwise), with the same rules the checks apply to SQL and
//!   URLs, so that what is declared and what is checked compare as equals.
//! - Guest input never panics the host: every entry point bounds its input and returns
//!   `Result`; a property test feeds arbitrary strings to each.
//!
//! `footprint` knows nothing of wasmtime, the graph's JSON or the drivers; the effects layer
//! calls it.
#![forbid(unsafe_code)]
#![expect(
    dead_code,
    unused_imports,
    reason = "the policy lands before the effects layer that calls it; wired into effects next"
)]

mod denied;
mod egress;
mod functions;
pub(crate) mod lexical;
mod sql;
mod table;
mod url;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

pub(crate) use denied::{Access, Denied, FunctionRefusal, HttpRefusal, RulePart, SqlConstruct};
pub(crate) use egress::{AddrClass, EgressPolicy, IpNet, IpNetError};
pub(crate) use functions::is_pure_function;
pub(crate) use sql::{MAX_SQL_BYTES, SqlAccess, StatementKind, analyze};
pub(crate) use table::{TableName, TableNameError};
pub(crate) use url::{CheckedUrl, HttpRule, HttpRuleJson, MAX_URL_BYTES, RuleError};

use denied::shown;

/// The most entries one section (`db.read`, `db.write`, `http`, `kernels`) may hold. Far
/// above real graphs; bounds the footprint's size and the per-request rule scan.
pub(crate) const MAX_ENTRIES: usize = 1024;

/// The longest kernel name; kernel names are short identifiers.
pub(crate) const MAX_KERNEL_NAME_BYTES: usize = 64;

/// What a graph may touch. `Default` allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "serde_json::Value")]
pub(crate) struct Footprint {
    /// Tables.
    pub(crate) db: DbFootprint,
    /// HTTP destinations; a request needs one rule that matches it whole.
    pub(crate) http: Vec<HttpRule>,
    /// Kernel names, exact and case-sensitive.
    pub(crate) kernels: BTreeSet<String>,
}

/// Tables a graph may read and write (fully qualified, case-folded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DbFootprint {
    /// Tables whose rows statements may observe.
    pub(crate) read: BTreeSet<TableName>,
    /// Tables statements may modify (see the module invariants: not a read grant).
    pub(crate) write: BTreeSet<TableName>,
}

impl DbFootprint {
    /// No table may be written: the driver runs the graph's SQL in a read-only transaction.
    pub(crate) fn read_only(&self) -> bool {
        self.write.is_empty()
    }
}

/// The footprint as written in JSON (every section optional).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FootprintJson {
    #[serde(default)]
    db: DbJson,
    #[serde(default)]
    http: Vec<HttpRuleJson>,
    #[serde(default)]
    kernels: Vec<String>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DbJson {
    #[serde(default)]
    read: Vec<String>,
    #[serde(default)]
    write: Vec<String>,
}

/// Why a footprint is not valid. All are user errors in the graph's footprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FootprintError {
    /// Not the footprint's JSON shape (unknown field, wrong type, …).
    #[error("footprint JSON: {message}")]
    Json {
        /// serde's message, with line and column.
        message: String,
    },
    /// An entry of `db.read` or `db.write` is not a table name.
    #[error("footprint db.{section}: {entry:?}: {error}")]
    Table {
        /// `read` or `write`.
        section: Access,
        /// The entry as written (bounded).
        entry: String,
        /// What is wrong with it.
        error: TableNameError,
    },
    /// An HTTP rule is not valid.
    #[error("footprint http rule {index}: {error}")]
    Rule {
        /// Its index in `http`.
        index: usize,
        /// What is wrong with it.
        error: RuleError,
    },
    /// A kernel name is empty, too long, or holds characters other than ASCII letters,
    /// digits, `_`, `-`, `.`.
    #[error("footprint kernel {name:?} is not a kernel name")]
    Kernel {
        /// The name as written (bounded).
        name: String,
    },
    /// Limit: a section holds more than [`MAX_ENTRIES`] entries.
    #[error("footprint {section} holds {count} entries, over the limit of {MAX_ENTRIES}")]
    TooMany {
        /// Which section.
        section: &'static str,
        /// How many it holds.
        count: usize,
    },
}

impl FootprintError {
    /// What the graph author should change.
    pub(crate) fn remediation(&self) -> &'static str {
        match self {
            Self::Json { .. } => {
                "the footprint is {\"db\": {\"read\": [..], \"write\": [..]}, \"http\": [..], \
                 \"kernels\": [..]} (docs/graph-format.md, \"Footprint\")"
            }
            Self::Table { .. } => {
                "write tables as `table` or `schema.table`; double-quote parts that are \
                 case-sensitive or hold other characters (\"\\\"Users\\\"\")"
            }
            Self::Rule { .. } => {
                "a rule is {\"method\": \"GET\", \"scheme\": \"https\", \"host\": \"api.example.com\", \
                 \"port\": 443, \"path_prefix\": \"/v1/\"} (port and path_prefix optional)"
            }
            Self::Kernel { .. } => "kernel names are ASCII letters, digits, '_', '-' and '.'",
            Self::TooMany { .. } => "declare fewer entries",
        }
    }
}

impl Footprint {
    /// Reads and validates a footprint from its JSON (the `footprint` object alone).
    pub(crate) fn from_json(text: &str) -> Result<Self, FootprintError> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|error| FootprintError::Json {
                message: shown(&error.to_string()),
            })?;
        Self::try_from(json)
    }

    /// The first thing this footprint declares that `ceiling` does not allow (a table, an
    /// HTTP rule no ceiling rule covers, a kernel), described; `None` when it stays within.
    pub(crate) fn beyond(&self, ceiling: &Footprint) -> Option<String> {
        if let Some(t) = self.db.read.iter().find(|t| !ceiling.db.read.contains(t)) {
            return Some(format!("reading table {t}"));
        }
        if let Some(t) = self.db.write.iter().find(|t| !ceiling.db.write.contains(t)) {
            return Some(format!("writing table {t}"));
        }
        if let Some(rule) = self
            .http
            .iter()
            .find(|r| !ceiling.http.iter().any(|c| r.within(c)))
        {
            return Some(format!("the HTTP rule {rule:?}"));
        }
        self.kernels
            .iter()
            .find(|k| !ceiling.kernels.contains(*k))
            .map(|k| format!("the kernel {k:?}"))
    }

    /// Checks a kernel call: the name must be declared exactly (case-sensitive).
    pub(crate) fn check_kernel(&self, name: &str) -> Result<(), Denied> {
        if self.kernels.contains(name) {
            return Ok(());
        }
        Err(Denied::Kernel { name: shown(name) })
    }
}

/// Objects where the shape has objects: serde would also read a struct from a JSON array,
/// positionally, which the footprint's shape does not allow.
fn expect_objects(json: &serde_json::Value) -> Result<(), FootprintError> {
    let not_object = |what: &str| FootprintError::Json {
        message: format!("{what} must be a JSON object"),
    };
    let Some(top) = json.as_object() else {
        return Err(not_object("the footprint"));
    };
    if let Some(db) = top.get("db")
        && !db.is_object()
    {
        return Err(not_object("db"));
    }
    if let Some(rules) = top.get("http").and_then(serde_json::Value::as_array)
        && rules.iter().any(|rule| !rule.is_object())
    {
        return Err(not_object("each http rule"));
    }
    Ok(())
}

impl TryFrom<serde_json::Value> for Footprint {
    type Error = FootprintError;

    fn try_from(json: serde_json::Value) -> Result<Self, Self::Error> {
        expect_objects(&json)?;
        let json: FootprintJson =
            serde_json::from_value(json).map_err(|error| FootprintError::Json {
                message: shown(&error.to_string()),
            })?;
        Self::try_from(json)
    }
}

impl TryFrom<FootprintJson> for Footprint {
    type Error = FootprintError;

    fn try_from(json: FootprintJson) -> Result<Self, Self::Error> {
        for (section, count) in [
            ("db.read", json.db.read.len()),
            ("db.write", json.db.write.len()),
            ("http", json.http.len()),
            ("kernels", json.kernels.len()),
        ] {
            if count > MAX_ENTRIES {
                return Err(FootprintError::TooMany { section, count });
            }
        }
        let tables = |entries: Vec<String>, section: Access| {
            entries
                .into_iter()
                .map(|entry| {
                    TableName::parse(&entry).map_err(|error| FootprintError::Table {
                        section,
                        entry: shown(&entry),
                        error,
                    })
                })
                .collect::<Result<BTreeSet<_>, _>>()
        };
        let db = DbFootprint {
            read: tables(json.db.read, Access::Read)?,
            write: tables(json.db.write, Access::Write)?,
        };
        let http = json
            .http
            .into_iter()
            .enumerate()
            .map(|(index, rule)| {
                HttpRule::try_from(rule).map_err(|error| FootprintError::Rule { index, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut kernels = BTreeSet::new();
        for name in json.kernels {
            if !is_kernel_name(&name) {
                return Err(FootprintError::Kernel { name: shown(&name) });
            }
            kernels.insert(name);
        }
        Ok(Self { db, http, kernels })
    }
}

fn is_kernel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_KERNEL_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}
