//! SQL: which tables each statement reads and writes, and what is refused.

use super::{construct, denied_table, footprint, tables};
use crate::footprint::lexical::Lexeme;
use crate::footprint::sql::{MAX_SQL_BYTES, StatementKind, analyze};
use crate::footprint::{Access, Denied, FunctionRefusal, SqlConstruct};

/// `(reads, writes)` as `schema.table` strings, or the refusal.
fn rw(sql: &str) -> Result<(Vec<String>, Vec<String>), Denied> {
    let access = analyze(sql)?;
    let names = |set: &std::collections::BTreeSet<_>| {
        set.iter()
            .map(|t: &crate::footprint::TableName| t.to_string())
            .collect()
    };
    Ok((names(&access.reads), names(&access.writes)))
}

fn ok(reads: &[&str], writes: &[&str]) -> Result<(Vec<String>, Vec<String>), Denied> {
    let strings = |list: &[&str]| list.iter().map(|s| (*s).to_string()).collect();
    Ok((strings(reads), strings(writes)))
}

fn function(name: &str, reason: FunctionRefusal) -> Result<(Vec<String>, Vec<String>), Denied> {
    Err(Denied::Function {
        name: name.to_string(),
        reason,
    })
}

fn refused(c: SqlConstruct) -> Result<(Vec<String>, Vec<String>), Denied> {
    Err(construct(c))
}

#[test]
fn plain_statements() {
    assert_eq!(rw("SELECT * FROM users"), ok(&["public.users"], &[]));
    assert_eq!(
        rw(
            "SELECT u.id FROM users u JOIN orders o ON o.user_id = u.id LEFT JOIN items i USING (id)"
        ),
        ok(&["public.items", "public.orders", "public.users"], &[])
    );
    assert_eq!(
        rw("INSERT INTO audit_log (msg) VALUES ('x'), ($1)"),
        ok(&[], &["public.audit_log"])
    );
    assert_eq!(
        rw("INSERT INTO archive SELECT * FROM orders WHERE created < now()"),
        ok(&["public.orders"], &["public.archive"])
    );
    assert_eq!(
        rw("UPDATE orders SET total = 0 FROM users WHERE users.id = orders.user_id"),
        ok(&["public.orders", "public.users"], &["public.orders"])
    );
    assert_eq!(
        rw("UPDATE t SET a = (SELECT max(b) FROM u)"),
        ok(&["public.t", "public.u"], &["public.t"])
    );
    assert_eq!(
        rw("DELETE FROM orders USING users WHERE users.id = orders.user_id AND users.banned"),
        ok(&["public.orders", "public.users"], &["public.orders"])
    );
    assert_eq!(
        rw("MERGE INTO stock s USING deliveries d ON s.item = d.item \
            WHEN MATCHED THEN UPDATE SET qty = s.qty + d.qty \
            WHEN NOT MATCHED THEN INSERT (item, qty) VALUES (d.item, d.qty)"),
        ok(&["public.deliveries", "public.stock"], &["public.stock"])
    );
    assert_eq!(rw("VALUES (1), (2)"), ok(&[], &[]));
    assert_eq!(rw("SELECT 1"), ok(&[], &[]));
}

#[test]
fn insert_reads_its_target_only_when_it_observes_rows() {
    assert_eq!(
        rw("INSERT INTO log (m) VALUES ('x') RETURNING id"),
        ok(&["public.log"], &["public.log"])
    );
    assert_eq!(
        rw("INSERT INTO log (id, m) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET m = EXCLUDED.m"),
        ok(&["public.log"], &["public.log"])
    );
    assert_eq!(
        rw("INSERT INTO t SELECT * FROM t"),
        ok(&["public.t"], &["public.t"])
    );
}

#[test]
fn statement_kinds_and_multiple_statements() {
    let access =
        analyze("SELECT * FROM a; INSERT INTO b VALUES (1); UPDATE c SET x = 1; DELETE FROM d")
            .expect("four statements");
    assert_eq!(
        access.statements,
        [
            StatementKind::Select,
            StatementKind::Insert,
            StatementKind::Update,
            StatementKind::Delete
        ]
    );
    assert_eq!(access.reads, tables(&["a", "c", "d"]));
    assert_eq!(access.writes, tables(&["b", "c", "d"]));
    let with_insert =
        analyze("WITH x AS (SELECT 1) INSERT INTO b SELECT * FROM x").expect("parses");
    assert_eq!(with_insert.statements, [StatementKind::Insert]);
}

#[test]
fn a_second_statement_is_checked_too() {
    assert_eq!(
        rw("SELECT 1; DROP TABLE users"),
        Err(Denied::Statement {
            index: 1,
            kind: "DROP TABLE".to_string()
        })
    );
    assert_eq!(
        rw("SELECT 1;\nDELETE FROM users"),
        ok(&["public.users"], &["public.users"])
    );
}

/// Comments and non-standard strings are where lexers disagree: refused outright, with what
/// to remove, before anything is parsed (`footprint::lexical`).
#[test]
fn comments_and_dollar_quotes_are_refused_before_parsing() {
    let lexeme = |sql: &str| match rw(sql) {
        Err(Denied::SqlLexeme { lexeme }) => lexeme,
        other => panic!("{sql}: {other:?}"),
    };
    assert_eq!(lexeme("SELECT 1 -- ; DROP TABLE users"), Lexeme::Comment);
    assert_eq!(
        lexeme("SELECT 1 /* ; DROP TABLE users; */"),
        Lexeme::Comment
    );
    assert_eq!(
        lexeme("SELECT 1 /* nested /* ; */ DROP TABLE users; */"),
        Lexeme::Comment
    );
    assert!(matches!(
        lexeme("SELECT $$; DROP TABLE users; $$"),
        Lexeme::StringForm(_)
    ));
    assert!(matches!(
        lexeme("SELECT $tag$ '; DELETE FROM users $tag$ FROM t"),
        Lexeme::StringForm(_) | Lexeme::Placeholder
    ));
    // A plain string hides nothing: its quote doubling is read alike everywhere.
    assert_eq!(rw("SELECT 'x'';DROP TABLE users;--'"), ok(&[], &[]));
    // The text a driver runs is the canonical print, not the graph's.
    let access = analyze("select  a\n\tFROM   t where a=$1").expect("parses");
    assert_eq!(access.sql, "SELECT a FROM t WHERE a = $1");
}

#[test]
fn ctes_are_not_tables_but_their_bodies_are_read() {
    assert_eq!(
        rw("WITH recent AS (SELECT * FROM orders) SELECT * FROM recent"),
        ok(&["public.orders"], &[])
    );
    // A CTE shadows a table of the same name for unqualified references only.
    assert_eq!(
        rw("WITH users AS (SELECT 1 AS id) SELECT * FROM users"),
        ok(&[], &[])
    );
    assert_eq!(
        rw("WITH users AS (SELECT 1 AS id) SELECT * FROM public.users"),
        ok(&["public.users"], &[])
    );
    // An inner WITH does not leak out of its subquery.
    assert_eq!(
        rw("SELECT * FROM (WITH users AS (SELECT 1) SELECT * FROM users) s, users"),
        ok(&["public.users"], &[])
    );
    // Without RECURSIVE, a CTE sees only earlier siblings: `b` in `a` is the table.
    assert_eq!(
        rw("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b"),
        ok(&["public.b"], &[])
    );
    assert_eq!(
        rw("WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b"),
        ok(&[], &[])
    );
    assert_eq!(
        rw(
            "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 5) \
            SELECT * FROM t"
        ),
        ok(&[], &[])
    );
    // Case folding applies to CTE names too.
    assert_eq!(
        rw("WITH Recent AS (SELECT 1) SELECT * FROM RECENT"),
        ok(&[], &[])
    );
    assert_eq!(
        rw("WITH \"recent\" AS (SELECT 1) SELECT * FROM Recent"),
        ok(&[], &[])
    );
    // A write target is always a table, even when a CTE has its name.
    assert_eq!(
        rw("WITH t AS (SELECT 1) DELETE FROM t"),
        ok(&["public.t"], &["public.t"])
    );
}

#[test]
fn data_modifying_ctes_are_writes() {
    assert_eq!(
        rw(
            "WITH gone AS (DELETE FROM sessions WHERE expired RETURNING *) SELECT count(*) FROM gone"
        ),
        ok(&["public.sessions"], &["public.sessions"])
    );
    assert_eq!(
        rw("WITH x AS (INSERT INTO log (m) VALUES ('a') RETURNING id) SELECT id FROM x"),
        ok(&["public.log"], &["public.log"])
    );
    assert_eq!(
        rw("WITH u AS (UPDATE accounts SET v = 1 RETURNING *) SELECT * FROM u"),
        ok(&["public.accounts"], &["public.accounts"])
    );
    let access = analyze("WITH gone AS (DELETE FROM s RETURNING *) SELECT 1").expect("parses");
    assert_eq!(access.statements, [StatementKind::Select]);
    assert!(
        !access.writes.is_empty(),
        "a SELECT with a deleting CTE is not read-only"
    );
}

#[test]
fn tables_hidden_in_subqueries_are_found() {
    assert_eq!(
        rw("SELECT 1 WHERE EXISTS (SELECT 1 FROM secrets)"),
        ok(&["public.secrets"], &[])
    );
    assert_eq!(
        rw("SELECT * FROM users WHERE id IN (SELECT user_id FROM orders)"),
        ok(&["public.orders", "public.users"], &[])
    );
    assert_eq!(
        rw("SELECT (SELECT max(total) FROM orders) AS m"),
        ok(&["public.orders"], &[])
    );
    assert_eq!(
        rw("SELECT a FROM t GROUP BY a HAVING count(*) > (SELECT count(*) FROM u)"),
        ok(&["public.t", "public.u"], &[])
    );
    assert_eq!(
        rw("SELECT * FROM (SELECT * FROM (SELECT * FROM deep) a) b"),
        ok(&["public.deep"], &[])
    );
    assert_eq!(
        rw("SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id) x"),
        ok(&["public.orders", "public.users"], &[])
    );
    assert_eq!(
        rw("SELECT * FROM users u JOIN LATERAL (SELECT * FROM orders) x ON true"),
        ok(&["public.orders", "public.users"], &[])
    );
    assert_eq!(
        rw("SELECT coalesce((SELECT v FROM s LIMIT 1), 0)"),
        ok(&["public.s"], &[])
    );
    assert_eq!(
        rw("SELECT * FROM t ORDER BY (SELECT 1 FROM o LIMIT 1)"),
        ok(&["public.o", "public.t"], &[])
    );
    assert_eq!(
        rw("SELECT sum(x) OVER (PARTITION BY (SELECT 1 FROM w)) FROM t"),
        ok(&["public.t", "public.w"], &[])
    );
}

#[test]
fn set_operations_read_every_branch() {
    assert_eq!(
        rw(
            "SELECT a FROM t1 UNION SELECT a FROM t2 INTERSECT SELECT a FROM t3 \
            EXCEPT SELECT a FROM t4 UNION ALL (SELECT a FROM t5)"
        ),
        ok(
            &[
                "public.t1",
                "public.t2",
                "public.t3",
                "public.t4",
                "public.t5"
            ],
            &[]
        )
    );
}

#[test]
fn names_fold_like_postgresql() {
    assert_eq!(rw("SELECT * FROM USERS"), ok(&["public.users"], &[]));
    assert_eq!(rw("SELECT * FROM Users"), ok(&["public.users"], &[]));
    assert_eq!(rw("SELECT * FROM \"users\""), ok(&["public.users"], &[]));
    // Quoted names with capitals mean two tables to PostgreSQL and one to SQLite: refused.
    assert_eq!(
        rw("SELECT * FROM \"Users\""),
        Err(Denied::SqlLexeme {
            lexeme: Lexeme::QuotedCase
        })
    );
    assert_eq!(rw("SELECT * FROM PUBLIC.Users"), ok(&["public.users"], &[]));
    assert_eq!(
        rw("SELECT * FROM \"app\".\"users list\""),
        ok(&["app.\"users list\""], &[])
    );
    assert_eq!(
        rw("SELECT * FROM \"we\"\"ird\""),
        ok(&["public.\"we\"\"ird\""], &[])
    );
    assert_eq!(rw("SELECT * FROM other.users"), ok(&["other.users"], &[]));
}

#[test]
fn quoted_and_mixed_case_names_against_a_footprint() {
    let lower = footprint(r#"{"db": {"read": ["users"]}}"#);
    assert!(lower.check_sql("SELECT * FROM users").is_ok());
    assert!(lower.check_sql("SELECT * FROM USERS").is_ok());
    assert!(lower.check_sql("SELECT * FROM public.Users").is_ok());
    assert!(lower.check_sql("SELECT * FROM \"users\"").is_ok());
    assert_eq!(
        lower.check_sql("SELECT * FROM \"Users\""),
        Err(Denied::SqlLexeme {
            lexeme: Lexeme::QuotedCase
        })
    );
    let quoted = footprint(r#"{"db": {"read": ["\"user list\""]}}"#);
    assert!(quoted.check_sql("SELECT * FROM \"user list\"").is_ok());
    assert_eq!(
        quoted.check_sql("SELECT * FROM users"),
        Err(denied_table("users", Access::Read))
    );
}

#[test]
fn schema_qualification() {
    let unqualified = footprint(r#"{"db": {"read": ["users"]}}"#);
    assert!(unqualified.check_sql("SELECT * FROM public.users").is_ok());
    assert_eq!(
        unqualified.check_sql("SELECT * FROM app.users"),
        Err(denied_table("app.users", Access::Read))
    );
    let app = footprint(r#"{"db": {"read": ["app.users"]}}"#);
    assert!(app.check_sql("SELECT * FROM APP.users").is_ok());
    assert_eq!(
        app.check_sql("SELECT * FROM users"),
        Err(denied_table("public.users", Access::Read))
    );
    assert_eq!(
        rw("SELECT * FROM db.public.users"),
        refused(SqlConstruct::CatalogQualifiedName)
    );
}

#[test]
fn writes_need_the_write_set_and_reads_of_the_target_need_the_read_set() {
    let read_only = footprint(r#"{"db": {"read": ["users", "orders"]}}"#);
    assert!(read_only.db.read_only());
    for sql in [
        "DELETE FROM users WHERE id = 1",
        "UPDATE users SET name = 'x'",
        "INSERT INTO users (id) VALUES (1)",
        "MERGE INTO users u USING orders o ON u.id = o.user_id WHEN MATCHED THEN DELETE",
        "WITH d AS (DELETE FROM users RETURNING id) SELECT * FROM d",
        "SELECT * FROM orders; DELETE FROM users",
    ] {
        assert_eq!(
            read_only.check_sql(sql),
            Err(denied_table("users", Access::Write)),
            "{sql}"
        );
    }
    let write_only = footprint(r#"{"db": {"write": ["audit_log"]}}"#);
    assert!(!write_only.db.read_only());
    let access = write_only
        .check_sql("INSERT INTO audit_log (msg) VALUES ($1)")
        .expect("a blind insert needs only write");
    assert_eq!(access.writes, tables(&["audit_log"]));
    for sql in [
        "INSERT INTO audit_log (msg) VALUES ('x') RETURNING id",
        "DELETE FROM audit_log WHERE id = 1",
        "UPDATE audit_log SET msg = ''",
        "SELECT * FROM audit_log",
    ] {
        assert_eq!(
            write_only.check_sql(sql),
            Err(denied_table("audit_log", Access::Read)),
            "{sql}"
        );
    }
    let both = footprint(r#"{"db": {"read": ["t", "u"], "write": ["t"]}}"#);
    assert!(
        both.check_sql("UPDATE t SET a = u.a FROM u WHERE u.id = t.id")
            .is_ok()
    );
    assert_eq!(
        both.check_sql("INSERT INTO u SELECT * FROM t"),
        Err(denied_table("u", Access::Write))
    );
}

#[test]
fn system_catalogs_are_refused_unless_named() {
    let none = footprint(r#"{"db": {"read": ["users"]}}"#);
    for (sql, name) in [
        ("SELECT * FROM pg_catalog.pg_user", "pg_catalog.pg_user"),
        ("SELECT * FROM pg_user", "pg_catalog.pg_user"),
        ("SELECT * FROM PG_SHADOW", "pg_catalog.pg_shadow"),
        (
            "SELECT * FROM information_schema.tables",
            "information_schema.tables",
        ),
        ("SELECT * FROM pg_toast.pg_toast_1", "pg_toast.pg_toast_1"),
        (
            "SELECT * FROM users WHERE EXISTS (SELECT 1 FROM pg_stat_activity)",
            "pg_catalog.pg_stat_activity",
        ),
    ] {
        let denied = none.check_sql(sql);
        assert_eq!(denied, Err(denied_table(name, Access::Read)), "{sql}");
        let Err(Denied::Table { system, .. }) = denied else {
            unreachable!()
        };
        assert!(system, "{sql}");
    }
    let named = footprint(r#"{"db": {"read": ["pg_catalog.pg_user", "pg_settings"]}}"#);
    assert!(named.check_sql("SELECT usename FROM pg_user").is_ok());
    assert!(
        named
            .check_sql("SELECT * FROM pg_catalog.pg_settings")
            .is_ok()
    );
    assert_eq!(
        rw("SELECT 'pg_user'::regclass"),
        refused(SqlConstruct::RegTypeCast)
    );
    assert_eq!(
        rw("SELECT CAST('users' AS regtype)"),
        refused(SqlConstruct::RegTypeCast)
    );
}

#[test]
fn functions_outside_the_allow_list_are_refused() {
    use FunctionRefusal::{NotAllowListed, SideEffect, UserDefined};
    assert_eq!(rw("SELECT pg_sleep(10)"), function("pg_sleep", SideEffect));
    assert_eq!(rw("SELECT PG_SLEEP(10)"), function("pg_sleep", SideEffect));
    assert_eq!(
        rw("SELECT \"pg_sleep\"(10)"),
        function("pg_sleep", SideEffect)
    );
    assert_eq!(
        rw("SELECT pg_catalog.pg_sleep_for('1 s')"),
        function("pg_catalog.pg_sleep_for", SideEffect)
    );
    assert_eq!(
        rw("SELECT lo_import('/etc/passwd')"),
        function("lo_import", SideEffect)
    );
    assert_eq!(
        rw("SELECT lo_export(1, '/tmp/x')"),
        function("lo_export", SideEffect)
    );
    assert_eq!(
        rw("SELECT pg_read_file('/etc/passwd')"),
        function("pg_read_file", SideEffect)
    );
    assert_eq!(rw("SELECT nextval('s')"), function("nextval", SideEffect));
    assert_eq!(rw("SELECT setval('s', 1)"), function("setval", SideEffect));
    assert_eq!(
        rw("SELECT set_config('search_path', 'evil', false)"),
        function("set_config", SideEffect)
    );
    assert_eq!(
        rw("SELECT pg_terminate_backend(1)"),
        function("pg_terminate_backend", SideEffect)
    );
    assert_eq!(
        rw("SELECT txid_current()"),
        function("txid_current", SideEffect)
    );
    assert_eq!(
        rw("SELECT * FROM dblink('host=x', 'select 1') AS t(a int)"),
        function("dblink", SideEffect)
    );
    assert_eq!(
        rw("SELECT * FROM users WHERE id = (SELECT pg_sleep(1))"),
        function("pg_sleep", SideEffect)
    );
    assert_eq!(
        rw("SELECT query_to_xml('select * from secrets', true, true, '')"),
        function("query_to_xml", SideEffect)
    );
    assert_eq!(rw("SELECT my_func(1)"), function("my_func", NotAllowListed));
    assert_eq!(rw("SELECT version()"), function("version", NotAllowListed));
    assert_eq!(
        rw("SELECT public.lower('a')"),
        function("public.lower", UserDefined)
    );
    assert_eq!(
        rw("UPDATE t SET id = nextval('seq')"),
        function("nextval", SideEffect)
    );
    // Allowed: built-ins known to be pure, plain or pg_catalog-qualified.
    assert_eq!(
        rw(
            "SELECT lower(name), pg_catalog.upper(name), count(*), coalesce(max(x), 0), \
            now(), CURRENT_TIMESTAMP, date_trunc('day', t), row_number() OVER () FROM users \
            GROUP BY name, t"
        ),
        ok(&["public.users"], &[])
    );
    assert_eq!(rw("SELECT * FROM generate_series(1, 3)"), ok(&[], &[]));
    assert_eq!(
        rw("SELECT * FROM users, unnest(string_to_array('1,2', ',')) AS u(x)"),
        ok(&["public.users"], &[])
    );
}

#[test]
fn other_statements_are_refused_by_kind() {
    for (sql, kind) in [
        ("DROP TABLE users", "DROP TABLE"),
        ("TRUNCATE users", "TRUNCATE"),
        ("CREATE TABLE t (a int)", "CREATE TABLE"),
        ("ALTER TABLE users ADD COLUMN x int", "ALTER TABLE"),
        ("GRANT SELECT ON users TO public", "GRANT SELECT"),
        ("SET search_path = evil", "SET"),
        ("BEGIN", "BEGIN"),
        ("COMMIT", "COMMIT"),
        ("VACUUM users", "VACUUM"),
        ("LISTEN chan", "LISTEN"),
        ("NOTIFY chan", "NOTIFY"),
        ("CALL proc()", "CALL"),
        ("EXPLAIN ANALYZE DELETE FROM users", "EXPLAIN ANALYZE"),
        ("PREPARE p AS DELETE FROM users", "PREPARE"),
    ] {
        match rw(sql) {
            Err(Denied::Statement {
                index: 0,
                kind: got,
            }) => assert_eq!(got, kind, "{sql}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
    match rw("COPY users TO PROGRAM 'sh -c id'") {
        Err(Denied::Statement { index: 0, kind }) => assert!(kind.starts_with("COPY"), "{kind}"),
        other => panic!("COPY: {other:?}"),
    }
    // Whatever the parser makes of these, they never pass.
    for sql in [
        "DO $$ BEGIN PERFORM pg_sleep(1); END $$",
        "COPY users FROM '/etc/passwd'",
        "ROLLBACK",
        "START TRANSACTION READ WRITE",
        "RESET ALL",
        "SHOW ALL",
        "LOCK TABLE users",
        "REFRESH MATERIALIZED VIEW v",
        "DISCARD ALL",
        "EXECUTE p",
        "DEALLOCATE p",
    ] {
        assert!(
            matches!(
                rw(sql),
                Err(Denied::Statement { .. } | Denied::SqlSyntax { .. } | Denied::SqlLexeme { .. })
            ),
            "{sql}: {:?}",
            rw(sql)
        );
    }
}

#[test]
fn constructs_the_walk_cannot_vouch_for_are_refused() {
    assert_eq!(
        rw("SELECT * INTO new_t FROM users"),
        refused(SqlConstruct::SelectInto)
    );
    assert_eq!(
        rw("SELECT * FROM users FOR UPDATE"),
        refused(SqlConstruct::RowLocks)
    );
    assert_eq!(
        rw("SELECT * FROM (SELECT * FROM users FOR SHARE) s"),
        refused(SqlConstruct::RowLocks)
    );
    // The PostgreSQL dialect does not parse `TABLE t`; were it to, the walk refuses it.
    for sql in ["TABLE users", "SELECT 1 UNION TABLE users"] {
        assert!(
            matches!(
                rw(sql),
                Err(Denied::SqlSyntax { .. }
                    | Denied::SqlConstruct {
                        construct: SqlConstruct::TableShorthand
                    })
            ),
            "{sql}: {:?}",
            rw(sql)
        );
    }
    let long = "a".repeat(64);
    assert_eq!(
        rw(&format!("SELECT * FROM {long}")),
        refused(SqlConstruct::LongIdentifier)
    );
    assert!(
        matches!(
            rw("SELECT * FROM \"\""),
            Err(Denied::SqlSyntax { .. }
                | Denied::SqlConstruct {
                    construct: SqlConstruct::OddIdentifier
                })
        ),
        "{:?}",
        rw("SELECT * FROM \"\"")
    );
}

#[test]
fn malformed_empty_and_oversized_sql() {
    assert!(matches!(rw("SELEC 1"), Err(Denied::SqlSyntax { .. })));
    assert!(matches!(
        rw("SELECT 'unterminated"),
        Err(Denied::SqlSyntax { .. })
    ));
    assert!(matches!(
        rw("SELECT $$ open"),
        Err(Denied::SqlSyntax { .. } | Denied::SqlLexeme { .. })
    ));
    assert_eq!(rw(""), refused(SqlConstruct::NoStatement));
    assert_eq!(rw("  ;  "), refused(SqlConstruct::NoStatement));
    let long = format!("SELECT 1{}", " ".repeat(MAX_SQL_BYTES));
    assert_eq!(
        rw(&long),
        Err(Denied::SqlTooLong {
            length: long.len(),
            limit: MAX_SQL_BYTES
        })
    );
    let nested = format!("SELECT {}1{}", "(".repeat(200), ")".repeat(200));
    assert_eq!(rw(&nested), refused(SqlConstruct::TooDeep));
    let subqueries = format!(
        "SELECT * FROM {}users{}",
        "(SELECT * FROM ".repeat(100),
        ") s".repeat(100)
    );
    assert_eq!(rw(&subqueries), refused(SqlConstruct::TooDeep));
}

/// The AST of `1+1+…` is as deep as the text is long; on the smallest stack tokio gives a
/// worker (2 MiB), checking the longest such query must still return.
#[test]
fn the_longest_operator_chain_does_not_overflow_a_small_stack() {
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let terms = (MAX_SQL_BYTES - 16) / 2;
            let chain = format!("SELECT 1{}", "+1".repeat(terms));
            let access = analyze(&chain).map(|a| a.statements.len());
            let unions = "SELECT 1 UNION ".repeat((MAX_SQL_BYTES - 16) / 15) + "SELECT 1";
            let union = analyze(&unions).map(|a| a.statements.len());
            (access, union)
        })
        .expect("spawn");
    let (chain, union) = handle.join().expect("no stack overflow");
    assert_eq!(chain, Ok(1));
    assert_eq!(union, Ok(1));
}

#[test]
fn refusals_say_what_to_do() {
    let fp = footprint(r#"{"db": {"read": ["users"]}}"#);
    let write = fp.check_sql("DELETE FROM users").expect_err("refused");
    assert_eq!(
        write.to_string(),
        "write of table public.users is outside the footprint"
    );
    assert!(
        write
            .remediation()
            .starts_with("add \"public.users\" to footprint.db.write"),
        "{}",
        write.remediation()
    );
    let read = fp
        .check_sql("SELECT * FROM \"order list\"")
        .expect_err("refused");
    assert_eq!(
        read.remediation(),
        "add \"public.\\\"order list\\\"\" to footprint.db.read"
    );
    let comment = fp.check_sql("SELECT 1 -- x").expect_err("refused");
    assert_eq!(comment.remediation(), "remove the comment");
    let catalog = fp.check_sql("SELECT * FROM pg_user").expect_err("refused");
    assert_eq!(
        catalog.to_string(),
        "read of table pg_catalog.pg_user is outside the footprint (a system catalog)"
    );
    assert!(catalog.remediation().contains("system catalog"));
    let sleep = fp.check_sql("SELECT pg_sleep(1)").expect_err("refused");
    assert_eq!(
        sleep.to_string(),
        "SQL calls pg_sleep(): it has side effects or reaches outside the database"
    );
}

#[test]
fn odd_corners() {
    assert_eq!(rw("SELECT * FROM ONLY users"), ok(&["public.users"], &[]));
    assert_eq!(
        rw("SELECT * FROM \"public \".users"),
        ok(&["\"public \".users"], &[])
    );
    assert_eq!(
        rw("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = (SELECT x FROM s)"),
        ok(&["public.s", "public.t"], &["public.t"])
    );
    assert_eq!(
        rw("MERGE INTO t USING (SELECT * FROM secret) s ON t.id = s.id WHEN MATCHED THEN DELETE"),
        ok(&["public.secret", "public.t"], &["public.t"])
    );
    assert_eq!(
        rw("DELETE FROM t RETURNING (SELECT max(v) FROM s)"),
        ok(&["public.s", "public.t"], &["public.t"])
    );
    assert_eq!(
        rw(
            "SELECT string_agg(v, ',' ORDER BY (SELECT 1 FROM s)) FILTER (WHERE v IN (SELECT v FROM u)) FROM t"
        ),
        ok(&["public.s", "public.t", "public.u"], &[])
    );
    assert!(matches!(
        rw("COPY (SELECT * FROM users) TO STDOUT"),
        Err(Denied::Statement { index: 0, .. })
    ));
    // A Unicode-escaped identifier is either read as the name it denotes or refused.
    match rw("SELECT * FROM U&\"d\\0061ta\"") {
        Ok((reads, writes)) => {
            assert_eq!((reads, writes), (vec!["public.data".to_string()], vec![]));
        }
        Err(denied) => assert!(
            matches!(
                denied,
                Denied::SqlSyntax { .. } | Denied::SqlConstruct { .. } | Denied::SqlLexeme { .. }
            ),
            "{denied:?}"
        ),
    }
}
