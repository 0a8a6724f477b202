//! PostgreSQL enforces the footprint itself: each footprint's statements run on connections
//! that *log in* as a role holding exactly that footprint's privileges.
//!
//! Why a login role, not `SET LOCAL ROLE` on the operator's connection: a role set with
//! `SET ROLE` is undone by any statement that calls `set_config('role', …)`, which PostgreSQL
//! grants to every role and checks against the *session* user. The session user of these
//! connections is the footprint role itself, a member of no role, so no statement can leave
//! its privileges, whatever the text said.
//!
//! Invariants:
//! - A role is named by the hash of its grants (`graphjit_fp_…`), created `NOSUPERUSER
//!   NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT`, member of no role (checked
//!   every time it is provisioned), and granted only: `USAGE` on the declared tables' schemas,
//!   `SELECT` on declared reads, `INSERT, UPDATE, DELETE` on declared writes and `USAGE` on
//!   the sequences those own. Declared tables that do not exist are skipped (the statement
//!   then fails as an undefined table).
//! - Its password is random, per process, set each time this process provisions the role; the
//!   operator's connection role needs `CREATEROLE` and the right to grant on the tables (it
//!   owns them, or holds them `WITH GRANT OPTION`). It never runs a graph's statement.
//! - Pools per role are few and small ([`MAX_ROLE_POOLS`], [`ROLE_POOL_SIZE`]), recycled with a
//!   full session reset (`RESET ALL`, `CLOSE ALL`, …), so a statement that changes session
//!   state cannot reach a later call.
//!
//! Residue, stated in the assumption inventory: privileges the operator granted to `PUBLIC`
//! (including the system catalogs PostgreSQL makes public) are held by every role.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use deadpool_postgres::{Pool, RecyclingMethod};

use super::{DbError, Grants};

/// Role pools kept at once (least recently used dropped first): bounds the connections one
/// host holds to `MAX_ROLE_POOLS × ROLE_POOL_SIZE` beyond the operator's pool.
pub(crate) const MAX_ROLE_POOLS: usize = 16;
/// Connections per footprint role.
pub(crate) const ROLE_POOL_SIZE: usize = 4;
/// The prefix of every role this module creates.
const ROLE_PREFIX: &str = "graphjit_fp_";

/// The per-footprint role pools of one runner.
pub(crate) struct Roles {
    /// The operator's connection settings, of which each role pool takes all but the login.
    base: tokio_postgres::Config,
    /// This process's password for every role it provisions (hex of 32 random bytes).
    password: String,
    /// How role pools connect: through the runner's bounded stream ([`super::stream`]).
    connect: super::stream::BoundedConnect,
    pools: Mutex<lru::LruCache<String, Pool>>,
    /// One provisioning at a time per runner (CREATE ROLE races with itself otherwise).
    provisioning: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roles").finish_non_exhaustive()
    }
}

/// `"name"`, with any `"` doubled: a PostgreSQL identifier that means exactly `name`.
fn ident(name: &str) -> Result<String, DbError> {
    if name.contains('\0') {
        return Err(DbError::Config {
            message: "a table name holds a NUL byte".into(),
        });
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// The role for `grants`: a name derived from them alone.
pub(crate) fn role_name(grants: &Grants) -> String {
    let mut hasher = blake3::Hasher::new();
    for (label, set) in [("read", &grants.read), ("write", &grants.write)] {
        hasher.update(label.as_bytes());
        for (schema, table) in set {
            for part in [schema, table] {
                hasher.update(&(part.len() as u64).to_le_bytes());
                hasher.update(part.as_bytes());
            }
        }
    }
    let hash = hasher.finalize().to_hex();
    format!("{ROLE_PREFIX}{}", &hash.as_str()[..24])
}

impl Roles {
    pub(crate) fn new(
        base: tokio_postgres::Config,
        connect: super::stream::BoundedConnect,
    ) -> Result<Roles, DbError> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| DbError::Config {
            message: format!("no randomness for role passwords: {e}"),
        })?;
        let password = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let capacity = NonZeroUsize::new(MAX_ROLE_POOLS).unwrap_or(NonZeroUsize::MIN);
        Ok(Roles {
            base,
            password,
            connect,
            pools: Mutex::new(lru::LruCache::new(capacity)),
            provisioning: tokio::sync::Mutex::new(()),
        })
    }

    fn cached(&self, role: &str) -> Option<Pool> {
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        pools.get(role).cloned()
    }

    /// Forgets a role's pool (its login failed: another process reset the password).
    pub(crate) fn forget(&self, role: &str) {
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        pools.pop(role);
    }

    /// The pool that logs in as `grants`' role, provisioning the role through `admin` the first
    /// time this process needs it.
    pub(crate) async fn pool(&self, admin: &Pool, grants: &Grants) -> Result<Pool, DbError> {
        let role = role_name(grants);
        if let Some(pool) = self.cached(&role) {
            return Ok(pool);
        }
        let _one_at_a_time = self.provisioning.lock().await;
        if let Some(pool) = self.cached(&role) {
            return Ok(pool);
        }
        self.provision(admin, &role, grants).await?;
        let mut config = self.base.clone();
        config.user(&role).password(&self.password);
        let pool = self
            .connect
            .pool(config, ROLE_POOL_SIZE, RecyclingMethod::Clean)?;
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        pools.put(role, pool.clone());
        Ok(pool)
    }

    /// Creates or resets `role` and grants it exactly `grants`, in one transaction on an
    /// operator connection.
    async fn provision(&self, admin: &Pool, role: &str, grants: &Grants) -> Result<(), DbError> {
        let refused = |what: &str, e: &tokio_postgres::Error| DbError::Permission {
            message: format!(
                "cannot provision the footprint role {role} ({what}): {}; the connection role \
                 needs CREATEROLE and the right to grant on the declared tables",
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_string())
            ),
        };
        let mut connection = admin.get().await.map_err(|e| DbError::Connection {
            sqlstate: None,
            message: e.to_string(),
        })?;
        let transaction = connection
            .transaction()
            .await
            .map_err(|e| refused("begin", &e))?;
        let quoted = ident(role)?;
        let exists = transaction
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
            .await
            .map_err(|e| refused("look-up", &e))?
            .is_some();
        // The password is hex: nothing in it needs quoting.
        let attributes = format!("LOGIN NOINHERIT PASSWORD '{}'", self.password);
        let create = if exists {
            format!("ALTER ROLE {quoted} {attributes}")
        } else {
            format!(
                "CREATE ROLE {quoted} {attributes} NOSUPERUSER NOCREATEDB NOCREATEROLE \
                 NOREPLICATION NOBYPASSRLS"
            )
        };
        transaction
            .batch_execute(&create)
            .await
            .map_err(|e| refused("create", &e))?;
        let row = transaction
            .query_one(
                "SELECT r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication \
                 OR r.rolbypassrls OR r.rolinherit, \
                 EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) \
                 FROM pg_roles r WHERE r.rolname = $1",
                &[&role],
            )
            .await
            .map_err(|e| refused("check", &e))?;
        let (privileged, member): (bool, bool) = (row.get(0), row.get(1));
        if privileged || member {
            return Err(DbError::Permission {
                message: format!(
                    "the footprint role {role} holds attributes or memberships it was not \
                     given (changed outside graphjit); drop it and it is created afresh"
                ),
            });
        }
        let schemas: BTreeSet<&String> = grants
            .read
            .iter()
            .chain(&grants.write)
            .map(|(s, _)| s)
            .collect();
        for schema in schemas {
            if is_catalog(schema) {
                continue;
            }
            let present = transaction
                .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[schema])
                .await
                .map_err(|e| refused("schema look-up", &e))?
                .is_some();
            if present {
                let sql = format!("GRANT USAGE ON SCHEMA {} TO {quoted}", ident(schema)?);
                transaction
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| refused("grant usage", &e))?;
            }
        }
        for (privileges, set) in [
            ("SELECT", &grants.read),
            ("INSERT, UPDATE, DELETE", &grants.write),
        ] {
            for (schema, table) in set {
                if is_catalog(schema) {
                    continue;
                }
                let name = format!("{}.{}", ident(schema)?, ident(table)?);
                let oid: Option<u32> = transaction
                    .query_one("SELECT to_regclass($1)::oid", &[&name])
                    .await
                    .map_err(|e| refused("table look-up", &e))?
                    .get(0);
                let Some(oid) = oid else { continue };
                let sql = format!("GRANT {privileges} ON TABLE {name} TO {quoted}");
                transaction
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| refused("grant", &e))?;
                if privileges == "SELECT" {
                    continue;
                }
                let sequences = transaction
                    .query(
                        "SELECT quote_ident(n.nspname) || '.' || quote_ident(s.relname) \
                         FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace \
                         JOIN pg_depend d ON d.objid = s.oid \
                         AND d.classid = 'pg_class'::regclass \
                         WHERE s.relkind = 'S' AND d.refobjid = $1 AND d.deptype IN ('a', 'i')",
                        &[&oid],
                    )
                    .await
                    .map_err(|e| refused("sequence look-up", &e))?;
                for sequence in sequences {
                    let sequence: String = sequence.get(0);
                    let sql = format!("GRANT USAGE ON SEQUENCE {sequence} TO {quoted}");
                    transaction
                        .batch_execute(&sql)
                        .await
                        .map_err(|e| refused("grant on a sequence", &e))?;
                }
            }
        }
        transaction
            .commit()
            .await
            .map_err(|e| refused("commit", &e))
    }
}

/// PostgreSQL's own schemas: readable as PostgreSQL makes them (mostly by `PUBLIC`), never
/// granted on.
fn is_catalog(schema: &str) -> bool {
    schema == "information_schema" || schema.starts_with("pg_")
}
