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
                AuthAction::Select | AuthAction::Function { .. } | AuthAction::Recursive => None,
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
