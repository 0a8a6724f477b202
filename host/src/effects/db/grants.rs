//! [`Grants`]: what one graph's SQL may touch, in the form the databases enforce it — tables
//! per access and the functions it may call. The footprint check is the early, explainable
//! refusal; these grants are what the database itself is told (SQLite's authorizer,
//! PostgreSQL's per-footprint role), so that a statement the check misread is still refused.
//!
//! Invariants:
//! - Built from the footprint's declared sets only, never from the SQL text.
//! - Names are `(schema, table)`, already case-folded by the footprint; SQLite's `main`
//!   database stands for the default schema (`public`), and SQLite compares names without ASCII
//!   case, as it resolves them.
//! - Knows nothing of graphs or SQL parsing: `allow_function` is handed in.

use std::collections::BTreeSet;

/// The schema SQLite's `main` database stands for.
const SQLITE_MAIN_SCHEMA: &str = "public";

/// Tables and functions one graph's statements may use.
#[derive(Clone, Debug)]
pub(crate) struct Grants {
    /// `(schema, table)` pairs whose rows statements may observe.
    pub(crate) read: BTreeSet<(String, String)>,
    /// `(schema, table)` pairs statements may insert into, update or delete from.
    pub(crate) write: BTreeSet<(String, String)>,
    /// Whether a (case-folded, unqualified) function name may be called.
    pub(crate) allow_function: fn(&str) -> bool,
}

/// How a table is used, as a database's authorizer reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TableUse {
    /// Its rows are read.
    Read,
    /// Rows are inserted, updated or deleted.
    Write,
}

impl Grants {
    /// Whether SQLite may use `table` of database `database` (`main`, `temp`, …) so.
    pub(crate) fn allows_sqlite(
        &self,
        database: Option<&str>,
        table: &str,
        usage: TableUse,
    ) -> bool {
        if database.is_some_and(|d| !d.eq_ignore_ascii_case("main")) {
            return false;
        }
        let set = match usage {
            TableUse::Read => &self.read,
            TableUse::Write => &self.write,
        };
        set.iter()
            .any(|(schema, name)| schema == SQLITE_MAIN_SCHEMA && name.eq_ignore_ascii_case(table))
    }

    /// Whether the function may be called (SQLite reports names as written: folded here).
    pub(crate) fn allows_function(&self, name: &str) -> bool {
        (self.allow_function)(&name.to_ascii_lowercase())
    }
}
