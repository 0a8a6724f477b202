//! Table names as PostgreSQL resolves them, shared by footprint entries and SQL.
//!
//! A [`TableName`] is always fully qualified (`schema.name`) and already case-folded, so that
//! two names are the same table exactly when they compare equal. Invariants:
//! - Unquoted identifiers fold to ASCII lower case; double-quoted ones keep their exact bytes,
//!   as PostgreSQL does in a UTF-8 database, but may not hold capital ASCII letters
//!   (`"Users"` is refused): SQLite ignores the case of quoted names, so `"Users"` and
//!   `users` would be two tables to one database and one to the other.
//! - An unqualified name resolves to [`DEFAULT_SCHEMA`], except names starting with `pg_`,
//!   which resolve to `pg_catalog` (PostgreSQL searches `pg_catalog` before the path, and every
//!   relation in it is named `pg_*`). The same rule applies to footprint entries and to SQL, so
//!   `"pg_user"` in a footprint means what `pg_user` means in a query.
//! - No part is empty or longer than [`MAX_IDENTIFIER_BYTES`] (PostgreSQL would silently
//!   truncate a longer one to a different name).
//!
//! ASSUMPTION: the database driver pins `search_path` to `public` for every session (no
//! per-role or per-database override, no `pg_temp` tables: graphs cannot create any).
//! FAILURE MODE: another search path makes unqualified names reach other schemas than the
//! check assumed. MITIGATION: the driver sets the path on each pooled connection.
//!
//! This module knows nothing of SQL parsing or HTTP.

use std::fmt;

/// The schema an unqualified table name belongs to (see the module invariants).
pub(crate) const DEFAULT_SCHEMA: &str = "public";

/// PostgreSQL's `NAMEDATALEN - 1`: longer identifiers are truncated by the server, which would
/// make the name the check saw differ from the table the server opens; refused instead.
pub(crate) const MAX_IDENTIFIER_BYTES: usize = 63;

/// A fully qualified, case-folded table name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TableName {
    schema: String,
    name: String,
}

/// Why a table name is not valid (a user error in the footprint).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TableNameError {
    /// The entry is empty, or one of its parts is (`public.`, `""`).
    #[error("a table name part is empty")]
    Empty,
    /// More than `schema.table` (`db.schema.table` is refused).
    #[error("more than two parts (write `schema.table` or `table`)")]
    TooManyParts,
    /// A part is over [`MAX_IDENTIFIER_BYTES`].
    #[error("a part is {length} bytes, over PostgreSQL's limit of {MAX_IDENTIFIER_BYTES}")]
    TooLong {
        /// The part's length in bytes.
        length: usize,
    },
    /// A part holds capital ASCII letters (`"Users"`): SQLite compares quoted names without
    /// case and PostgreSQL with it, so such a name could mean two tables.
    #[error("a part has capital letters; use lower-case names (SQLite ignores their case)")]
    Capitals,
    /// A double quote is not closed.
    #[error("an unterminated double quote")]
    UnterminatedQuote,
    /// A character an unquoted identifier may not hold (quote the part to use it).
    #[error("{found:?} at byte {at} is not allowed in an unquoted identifier")]
    BadCharacter {
        /// The offending character.
        found: char,
        /// Its byte offset in the entry.
        at: usize,
    },
}

impl TableName {
    /// Builds a name from identifiers that are already case-folded, applying the default-schema
    /// rule when `schema` is `None`.
    pub(crate) fn resolve(schema: Option<&str>, name: &str) -> Result<Self, TableNameError> {
        check_part(name)?;
        let schema = match schema {
            Some(schema) => {
                check_part(schema)?;
                schema
            }
            None if name.starts_with("pg_") => "pg_catalog",
            None => DEFAULT_SCHEMA,
        };
        Ok(Self {
            schema: schema.to_string(),
            name: name.to_string(),
        })
    }

    /// Parses a footprint entry: `table` or `schema.table`, each part an SQL identifier
    /// (unquoted: folded to lower case; `"Quoted"`: exact, `""` for a quote inside).
    pub(crate) fn parse(text: &str) -> Result<Self, TableNameError> {
        let parts = split_identifiers(text)?;
        match parts.as_slice() {
            [name] => Self::resolve(None, name),
            [schema, name] => Self::resolve(Some(schema), name),
            _ => Err(TableNameError::TooManyParts),
        }
    }

    /// The schema, case-folded.
    pub(crate) fn schema(&self) -> &str {
        &self.schema
    }

    /// The table's own name, case-folded.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// A system catalog or a schema PostgreSQL reserves (`pg_catalog`, `information_schema`,
    /// `pg_toast`, `pg_temp_*`, any `pg_*` schema).
    pub(crate) fn is_system(&self) -> bool {
        self.schema == "information_schema" || self.schema.starts_with("pg_")
    }
}

impl TryFrom<String> for TableName {
    type Error = TableNameError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

/// `schema.name`, each part quoted when it would not read back the same unquoted, so that
/// `TableName::parse(&t.to_string()) == Ok(t)`.
impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_identifier(f, &self.schema)?;
        f.write_str(".")?;
        write_identifier(f, &self.name)
    }
}

fn check_part(part: &str) -> Result<(), TableNameError> {
    if part.is_empty() {
        return Err(TableNameError::Empty);
    }
    if part.len() > MAX_IDENTIFIER_BYTES {
        return Err(TableNameError::TooLong { length: part.len() });
    }
    if part.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(TableNameError::Capitals);
    }
    Ok(())
}

fn needs_quotes(part: &str) -> bool {
    let mut chars = part.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    !first_ok || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn write_identifier(f: &mut fmt::Formatter<'_>, part: &str) -> fmt::Result {
    if needs_quotes(part) {
        write!(f, "\"{}\"", part.replace('"', "\"\""))
    } else {
        f.write_str(part)
    }
}

/// Splits `a.b` into folded identifiers, honouring double quotes.
fn split_identifiers(text: &str) -> Result<Vec<String>, TableNameError> {
    let mut parts = Vec::new();
    let mut chars = text.char_indices().peekable();
    loop {
        let mut part = String::new();
        if chars.peek().is_some_and(|&(_, c)| c == '"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(TableNameError::UnterminatedQuote),
                    Some((_, '"')) if chars.peek().is_some_and(|&(_, c)| c == '"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some((_, '"')) => break,
                    Some((_, c)) => part.push(c),
                }
            }
        } else {
            while let Some(&(at, c)) = chars.peek() {
                if c == '.' {
                    break;
                }
                let allowed = c.is_alphabetic()
                    || c == '_'
                    || (!part.is_empty() && (c.is_ascii_digit() || c == '$'));
                if !allowed {
                    return Err(TableNameError::BadCharacter { found: c, at });
                }
                part.push(c.to_ascii_lowercase());
                chars.next();
            }
        }
        check_part(&part)?;
        parts.push(part);
        match chars.next() {
            None => return Ok(parts),
            Some((_, '.')) => {}
            Some((at, found)) => return Err(TableNameError::BadCharacter { found, at }),
        }
    }
}
