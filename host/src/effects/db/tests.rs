//! The PostgreSQL runner against a real server: a throwaway cluster per test
//! ([`TestPostgres`]), never a mock. Without PostgreSQL installed these tests fail with the
//! command that installs it.

use std::time::{Duration, Instant};

use super::cells::decode_numeric;
use super::*;
use crate::testing::postgres::TestPostgres;

/// Generous: these tests check kinds and limits, not speed.
const CALL: Duration = Duration::from_secs(20);

fn cluster() -> TestPostgres {
    TestPostgres::start().unwrap_or_else(|e| panic!("{e}"))
}

async fn runner_with(pg: &TestPostgres, adjust: impl FnOnce(&mut DbConfig)) -> PostgresRunner {
    let mut config = DbConfig::new(pg.url());
    adjust(&mut config);
    PostgresRunner::connect(config)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", pg.log()))
}

async fn runner(pg: &TestPostgres) -> PostgresRunner {
    runner_with(pg, |_| {}).await
}

async fn exec(db: &PostgresRunner, sql: &str, params: &[Cell]) -> u64 {
    db.execute(sql, params, RunAs::Operator, Access::ReadWrite, CALL)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn query(db: &PostgresRunner, sql: &str, params: &[Cell]) -> Rows {
    db.query(sql, params, RunAs::Operator, Access::ReadOnly, CALL)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn count(db: &PostgresRunner, table: &str) -> i64 {
    match query(db, &format!("SELECT count(*) FROM {table}"), &[])
        .await
        .rows
        .as_slice()
    {
        [row] => match row.as_slice() {
            [Cell::Int(n)] => *n,
            other => panic!("count(*) gave {other:?}"),
        },
        other => panic!("count(*) gave {other:?}"),
    }
}

fn str_cell(s: &str) -> Cell {
    Cell::Text(s.to_string())
}

async fn items_table(db: &PostgresRunner) {
    exec(
        db,
        "CREATE TABLE items (
            id int8 PRIMARY KEY,
            name text NOT NULL,
            qty int4 CHECK (qty >= 0) CONSTRAINT qty_is_sane CHECK (qty < 1000),
            price numeric(10, 2),
            ok bool,
            data bytea,
            score float8
        )",
        &[],
    )
    .await;
}

#[test]
fn the_runner_is_send_sync_and_cheap_to_share() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<PostgresRunner>();
    shareable::<DbError>();
}

#[tokio::test]
async fn creates_tables_and_queries_with_params() {
    let pg = cluster();
    let db = runner(&pg).await;
    items_table(&db).await;
    let insert = "INSERT INTO items (id, name, qty, price, ok, data, score) \
                  VALUES ($1, $2, $3, $4::text::numeric, $5, $6, $7)";
    for (id, name, qty) in [(1, "apple", 3), (2, "pear", 0), (3, "plum", 7)] {
        let params = [
            Cell::Int(id),
            Cell::Text(name.into()),
            Cell::Int(qty),
            Cell::Text("1.50".into()),
            Cell::Bool(qty > 0),
            Cell::Bytes(vec![0, 1, 255]),
            Cell::Float(0.25),
        ];
        assert_eq!(exec(&db, insert, &params).await, 1);
    }
    let rows = query(
        &db,
        "SELECT id, name, qty FROM items WHERE qty >= $1 ORDER BY id",
        &[Cell::Int(1)],
    )
    .await;
    assert_eq!(rows.columns, ["id", "name", "qty"]);
    assert_eq!(
        rows.rows,
        [
            [Cell::Int(1), str_cell("apple"), Cell::Int(3)],
            [Cell::Int(3), str_cell("plum"), Cell::Int(7)]
        ]
    );
    let updated = exec(&db, "UPDATE items SET qty = qty + 1 WHERE ok", &[]).await;
    assert_eq!(updated, 2);
    // A parameter is a value, never SQL: a hostile string is stored as written.
    let hostile = "x'); DROP TABLE items; --";
    exec(
        &db,
        "INSERT INTO items (id, name) VALUES ($1, $2)",
        &[Cell::Int(4), Cell::Text(hostile.into())],
    )
    .await;
    let rows = query(&db, "SELECT name FROM items WHERE id = $1", &[Cell::Int(4)]).await;
    assert_eq!(rows.rows, [[str_cell(hostile)]]);
    assert_eq!(count(&db, "items").await, 4);
}

#[tokio::test]
async fn every_cell_type_maps() {
    let pg = cluster();
    let db = runner(&pg).await;
    let sql = "SELECT $1::int2 AS i2, $2::int4 AS i4, $3::int8 AS i8, $4::float4 AS f4, \
               $5::float8 AS f8, $6::bool AS b, $7::text AS t, $8::varchar AS v, \
               $9::bytea AS by, $10::int4 AS n, 'c'::char(3) AS ch, 'pg_class'::name AS nm, \
               12.50::numeric AS num, -0.0001::numeric AS small, 'NaN'::numeric AS nan, \
               123456789012345678901234567890.123::numeric AS big, 100000::numeric AS round, \
               '{\"a\": [1, 2]}'::jsonb AS jb, $11::json AS js, 26::oid AS o, pg_sleep(0) AS v0, \
               'Infinity'::float8 AS inf";
    let params = [
        Cell::Int(-7),
        Cell::Int(70_000),
        Cell::Int(i64::MIN),
        Cell::Float(1.5),
        Cell::Float(-2.25),
        Cell::Bool(true),
        Cell::Text("ünï 漢字".into()),
        Cell::Text("var".into()),
        Cell::Bytes(vec![0, 159, 146, 150]),
        Cell::Null,
        Cell::Text(r#"{"k":"v"}"#.into()),
    ];
    let rows = query(&db, sql, &params).await;
    assert_eq!(
        rows.columns,
        [
            "i2", "i4", "i8", "f4", "f8", "b", "t", "v", "by", "n", "ch", "nm", "num", "small",
            "nan", "big", "round", "jb", "js", "o", "v0", "inf"
        ]
    );
    assert_eq!(
        rows.rows,
        [[
            Cell::Int(-7),
            Cell::Int(70_000),
            Cell::Int(i64::MIN),
            Cell::Float(1.5),
            Cell::Float(-2.25),
            Cell::Bool(true),
            str_cell("ünï 漢字"),
            str_cell("var"),
            Cell::Bytes(vec![0, 159, 146, 150]),
            Cell::Null,
            str_cell("c  "),
            str_cell("pg_class"),
            str_cell("12.50"),
            str_cell("-0.0001"),
            str_cell("NaN"),
            str_cell("123456789012345678901234567890.123"),
            str_cell("100000"),
            str_cell(r#"{"a": [1, 2]}"#),
            str_cell(r#"{"k":"v"}"#),
            Cell::Int(26),
            Cell::Null,
            Cell::Float(f64::INFINITY),
        ]]
    );
}

#[tokio::test]
async fn parameters_are_checked_against_their_types() {
    let pg = cluster();
    let db = runner(&pg).await;
    let too_big = db
        .query(
            "SELECT $1::int2",
            &[Cell::Int(70_000)],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert_eq!(
        too_big,
        Err(DbError::ParamType {
            index: 0,
            param: "int",
            pg_type: "int2".into()
        })
    );
    let lossy = db
        .query(
            "SELECT $1::float4",
            &[Cell::Float(0.1)],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert!(matches!(lossy, Err(DbError::ParamType { pg_type, .. }) if pg_type == "float4"));
    let wrong = db
        .query(
            "SELECT $1::bool",
            &[Cell::Text("yes".into())],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert!(matches!(
        wrong,
        Err(DbError::ParamType { param: "text", .. })
    ));
    let missing = db
        .query(
            "SELECT $1::int8, $2::text",
            &[Cell::Int(1)],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert_eq!(
        missing,
        Err(DbError::ParamCount {
            expected: 2,
            got: 1
        })
    );
}

#[tokio::test]
async fn unsupported_column_types_are_named() {
    let pg = cluster();
    let db = runner(&pg).await;
    let result = db
        .query(
            "SELECT 1 AS fine, now() AS at",
            &[],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert_eq!(
        result,
        Err(DbError::UnsupportedType {
            column: "at".into(),
            pg_type: "timestamptz".into()
        })
    );
    // The remedy the error suggests works.
    assert_eq!(
        query(&db, "SELECT now()::text IS NOT NULL AS at", &[])
            .await
            .rows,
        [[Cell::Bool(true)]]
    );
}

#[tokio::test]
async fn read_only_calls_refuse_writes() {
    let pg = cluster();
    let db = runner(&pg).await;
    items_table(&db).await;
    exec(&db, "INSERT INTO items (id, name) VALUES (1, 'a')", &[]).await;
    let insert = "INSERT INTO items (id, name) VALUES ($1, 'b')";
    let result = db
        .execute(
            insert,
            &[Cell::Int(2)],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert!(
        matches!(&result, Err(DbError::ReadOnly { .. })),
        "{result:?}"
    );
    let returning = "UPDATE items SET name = 'z' RETURNING id";
    let result = db
        .query(returning, &[], RunAs::Operator, Access::ReadOnly, CALL)
        .await;
    assert!(
        matches!(&result, Err(DbError::ReadOnly { .. })),
        "{result:?}"
    );
    let result = db
        .execute(
            "DROP TABLE items",
            &[],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert!(
        matches!(&result, Err(DbError::ReadOnly { .. })),
        "{result:?}"
    );
    assert_eq!(count(&db, "items").await, 1);
    let rows = query(&db, "SELECT name FROM items", &[]).await;
    assert_eq!(rows.rows, [[str_cell("a")]]);
}

#[tokio::test]
async fn constraint_violations_name_the_constraint() {
    let pg = cluster();
    let db = runner(&pg).await;
    items_table(&db).await;
    exec(&db, "INSERT INTO items (id, name) VALUES (1, 'a')", &[]).await;
    let cases = [
        (
            "INSERT INTO items (id, name) VALUES (1, 'again')",
            "23505",
            "items_pkey",
        ),
        (
            "INSERT INTO items (id, name, qty) VALUES (2, 'b', 5000)",
            "23514",
            "qty_is_sane",
        ),
        (
            "INSERT INTO items (id, name, qty) VALUES (2, 'b', -1)",
            "23514",
            "items_qty_check",
        ),
    ];
    for (sql, code, name) in cases {
        match db
            .execute(sql, &[], RunAs::Operator, Access::ReadWrite, CALL)
            .await
        {
            Err(DbError::Constraint {
                sqlstate,
                constraint,
                table,
                ..
            }) => {
                assert_eq!(sqlstate, code, "{sql}");
                assert_eq!(constraint.as_deref(), Some(name), "{sql}");
                assert_eq!(table.as_deref(), Some("items"), "{sql}");
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
    let not_null = db
        .execute(
            "INSERT INTO items (id) VALUES (3)",
            &[],
            RunAs::Operator,
            Access::ReadWrite,
            CALL,
        )
        .await;
    assert!(matches!(&not_null, Err(DbError::Constraint { sqlstate, .. }) if sqlstate == "23502"));
    // Each failed call rolled back; the one good row remains.
    assert_eq!(count(&db, "items").await, 1);
}

#[tokio::test]
async fn bad_sql_is_classified_by_sqlstate() {
    let pg = cluster();
    let db = runner(&pg).await;
    items_table(&db).await;
    let syntax = db
        .query("SELEC 1", &[], RunAs::Operator, Access::ReadOnly, CALL)
        .await;
    assert!(
        matches!(&syntax, Err(DbError::Syntax { sqlstate, position: Some(1), .. }) if sqlstate == "42601"),
        "{syntax:?}"
    );
    let table = db
        .query(
            "SELECT * FROM nowhere",
            &[],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert!(
        matches!(&table, Err(DbError::UndefinedTable { .. })),
        "{table:?}"
    );
    let column = db
        .query(
            "SELECT nope FROM items",
            &[],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert!(
        matches!(&column, Err(DbError::UndefinedColumn { .. })),
        "{column:?}"
    );
    let zero = db
        .query("SELECT 1 / 0", &[], RunAs::Operator, Access::ReadOnly, CALL)
        .await;
    assert!(
        matches!(&zero, Err(DbError::Other { sqlstate: Some(s), .. }) if s == "22012"),
        "{zero:?}"
    );
    // A role without rights: permission denied is its own kind.
    exec(&db, "CREATE ROLE reader LOGIN", &[]).await;
    let url = pg.url().replace("postgres@", "reader@");
    let reader = PostgresRunner::connect(DbConfig::new(url))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let denied = reader
        .query(
            "SELECT * FROM items",
            &[],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert!(
        matches!(&denied, Err(DbError::Permission { .. })),
        "{denied:?}"
    );
    // The pool survives every error above.
    assert_eq!(
        query(&db, "SELECT 1::int8", &[]).await.rows,
        [[Cell::Int(1)]]
    );
}

#[tokio::test]
async fn statement_timeout_is_a_typed_timeout() {
    let pg = cluster();
    let db = runner_with(&pg, |c| c.statement_timeout = Duration::from_millis(200)).await;
    let started = Instant::now();
    let result = db
        .query(
            "SELECT pg_sleep(5)",
            &[],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert_eq!(
        result,
        Err(DbError::Timeout {
            kind: TimeoutKind::Statement,
            limit: Duration::from_millis(200)
        })
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        query(&db, "SELECT 2::int8", &[]).await.rows,
        [[Cell::Int(2)]]
    );
}

#[tokio::test]
async fn the_deadline_cancels_the_query_on_the_server() {
    let pg = cluster();
    let db = runner(&pg).await;
    let started = Instant::now();
    let limit = Duration::from_millis(300);
    let result = db
        .query(
            "SELECT pg_sleep(30)",
            &[],
            RunAs::Operator,
            Access::ReadOnly,
            limit,
        )
        .await;
    assert_eq!(
        result,
        Err(DbError::Timeout {
            kind: TimeoutKind::Deadline,
            limit
        })
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The cancelled statement is gone from the server, not left sleeping.
    let sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' \
                    AND state = 'active'";
    let mut still = -1;
    for _ in 0..50 {
        still = match query(&db, sleeping, &[]).await.rows.as_slice() {
            [row] => match row.as_slice() {
                [Cell::Int(n)] => *n,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        if still == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(still, 0, "the query kept running after its deadline");
    // A zero deadline is refused before anything runs.
    let none = db
        .query(
            "SELECT 1",
            &[],
            RunAs::Operator,
            Access::ReadOnly,
            Duration::ZERO,
        )
        .await;
    assert!(
        matches!(
            none,
            Err(DbError::Timeout {
                kind: TimeoutKind::Deadline,
                ..
            })
        ),
        "{none:?}"
    );
    // An unbounded deadline is no deadline, not an overflow.
    let unbounded = db
        .query(
            "SELECT 5::int8",
            &[],
            RunAs::Operator,
            Access::ReadOnly,
            Duration::MAX,
        )
        .await;
    assert_eq!(unbounded.map(|r| r.rows), Ok(vec![vec![Cell::Int(5)]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_is_a_connection_error_and_a_restart_recovers() {
    let mut pg = cluster();
    let db = runner(&pg).await;
    let running = {
        let db = db.clone();
        tokio::spawn(async move {
            db.query(
                "SELECT pg_sleep(30)",
                &[],
                RunAs::Operator,
                Access::ReadOnly,
                CALL,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.kill().unwrap_or_else(|e| panic!("{e}"));
    let result = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap_or_else(|_| panic!("the query outlived its server by 10 s"))
        .unwrap_or_else(|e| panic!("the query task panicked: {e}"));
    assert!(
        matches!(&result, Err(DbError::Connection { .. })),
        "{result:?}"
    );
    // While the server is down, new calls fail typed too.
    let down = db
        .query("SELECT 1", &[], RunAs::Operator, Access::ReadOnly, CALL)
        .await;
    assert!(matches!(&down, Err(DbError::Connection { .. })), "{down:?}");

    pg.restart().unwrap_or_else(|e| panic!("{e}"));
    let fresh = runner(&pg).await;
    assert_eq!(
        query(&fresh, "SELECT 3::int8", &[]).await.rows,
        [[Cell::Int(3)]]
    );
}

#[tokio::test]
async fn connecting_to_nothing_is_a_connection_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let config = DbConfig::new(format!("postgres://postgres@127.0.0.1:{port}/postgres"));
    let result = PostgresRunner::connect(config).await;
    assert!(
        matches!(&result, Err(DbError::Connection { sqlstate: None, .. })),
        "{result:?}"
    );
    let result = PostgresRunner::connect(DbConfig::new("postgres://[bad")).await;
    assert!(matches!(&result, Err(DbError::Config { .. })), "{result:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_connect_timeout() {
    // Accepts TCP (the kernel's backlog does) but never speaks the protocol.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = silent
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut config = DbConfig::new(format!("postgres://postgres@127.0.0.1:{port}/postgres"));
    config.connect_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let result = PostgresRunner::connect(config).await;
    assert_eq!(
        result.err(),
        Some(DbError::Timeout {
            kind: TimeoutKind::Connect,
            limit: Duration::from_millis(300)
        })
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_pooled_connection_counts_against_the_deadline() {
    let pg = cluster();
    let db = runner_with(&pg, |c| c.pool_size = 1).await;
    let holder = {
        let db = db.clone();
        tokio::spawn(async move {
            db.query(
                "SELECT pg_sleep(1)",
                &[],
                RunAs::Operator,
                Access::ReadOnly,
                CALL,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let limit = Duration::from_millis(200);
    let waited = db
        .query("SELECT 1", &[], RunAs::Operator, Access::ReadOnly, limit)
        .await;
    assert_eq!(
        waited,
        Err(DbError::Timeout {
            kind: TimeoutKind::Deadline,
            limit
        })
    );
    let held = holder.await.unwrap_or_else(|e| panic!("{e}"));
    assert!(held.is_ok(), "{held:?}");
}

#[tokio::test]
async fn results_are_capped_in_rows_and_bytes() {
    let pg = cluster();
    let db = runner_with(&pg, |c| {
        c.max_rows = 10;
        c.max_bytes = 1000;
    })
    .await;
    let ten = query(&db, "SELECT g::int8 FROM generate_series(1, 10) g", &[]).await;
    assert_eq!(ten.rows.len(), 10);
    let eleven = db
        .query(
            "SELECT g FROM generate_series(1, 11) g",
            &[],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert_eq!(eleven, Err(DbError::RowLimit { limit: 10 }));
    // A huge result is refused after reading at most 11 rows, quickly.
    let started = Instant::now();
    let huge = db
        .query(
            "SELECT g FROM generate_series(1, 10000000) g",
            &[],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert_eq!(huge, Err(DbError::RowLimit { limit: 10 }));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let one = query(&db, "SELECT repeat('x', 600)", &[]).await;
    assert_eq!(one.rows[0][0].footprint(), 600);
    let two = db
        .query(
            "SELECT repeat('x', 600) FROM generate_series(1, 2)",
            &[],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert_eq!(two, Err(DbError::ByteLimit { limit: 1000 }));
    let wide = db
        .query(
            "SELECT repeat('x', 5000)",
            &[],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert_eq!(wide, Err(DbError::ByteLimit { limit: 1000 }));
    // The caps apply to results, not to statements that return nothing.
    assert_eq!(
        exec(
            &db,
            "CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g",
            &[]
        )
        .await,
        100
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_queries_share_a_pool_of_four() {
    let pg = cluster();
    let db = runner_with(&pg, |c| c.pool_size = 4).await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                let sql = "SELECT $1::int8 * 2 AS twice, pg_sleep(0.2), \
                           (SELECT count(*) FROM pg_stat_activity WHERE application_name = 'graphjit') AS open";
                db.query(sql, &[Cell::Int(i)], RunAs::Operator, Access::ReadOnly, CALL).await
            })
        })
        .collect();
    for (i, task) in (0..).zip(tasks) {
        let rows = task
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        match rows.rows.as_slice() {
            [row] => {
                assert_eq!(row[0], Cell::Int(2 * i));
                assert!(
                    matches!(row[2], Cell::Int(open) if open <= 4),
                    "more than 4 connections: {row:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // Four at a time, 200 ms each: at least five rounds.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(950),
        "{elapsed:?}: the pool ran more than 4 at once"
    );
    eprintln!("20 queries of 200 ms through 4 connections: {elapsed:?}");
}

#[tokio::test]
async fn statements_are_prepared_once_per_connection() {
    let pg = cluster();
    let db = runner_with(&pg, |c| c.pool_size = 1).await;
    let sql = "SELECT $1::int8 + 1";
    let rounds: u32 = 200;
    let started = Instant::now();
    for i in 0..i64::from(rounds) {
        assert_eq!(
            query(&db, sql, &[Cell::Int(i)]).await.rows,
            [[Cell::Int(i + 1)]]
        );
    }
    let per_call = started.elapsed() / rounds;
    eprintln!("query round trip (BEGIN READ ONLY, cached statement, COMMIT): {per_call:?}");
    let prepared = "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1";
    let rows = query(&db, prepared, &[Cell::Text(sql.into())]).await;
    assert_eq!(rows.rows, [[Cell::Int(1)]]);
}

#[test]
fn numeric_decoding_is_exact() {
    fn raw(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [ndigits, weight as u16, sign, dscale].iter().chain(digits) {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out
    }
    assert_eq!(decode_numeric(&raw(0, 0, 0, 0, &[])).as_deref(), Some("0"));
    assert_eq!(
        decode_numeric(&raw(0, 0, 0, 3, &[])).as_deref(),
        Some("0.000")
    );
    assert_eq!(
        decode_numeric(&raw(2, 0, 0, 2, &[12, 5000])).as_deref(),
        Some("12.50")
    );
    assert_eq!(
        decode_numeric(&raw(1, -1, 0x4000, 4, &[1])).as_deref(),
        Some("-0.0001")
    );
    assert_eq!(
        decode_numeric(&raw(1, -2, 0, 6, &[1200])).as_deref(),
        Some("0.000012")
    );
    assert_eq!(
        decode_numeric(&raw(1, 1, 0, 0, &[10])).as_deref(),
        Some("100000")
    );
    assert_eq!(
        decode_numeric(&raw(0, 0, 0xC000, 0, &[])).as_deref(),
        Some("NaN")
    );
    // Malformed input is an error, never a panic.
    assert_eq!(decode_numeric(&[0, 1]), None);
    assert_eq!(decode_numeric(&raw(2, 0, 0, 0, &[1])), None);
    assert_eq!(decode_numeric(&raw(1, 0, 0, 0, &[10_000])), None);
    assert_eq!(decode_numeric(&raw(0, 0, 0x1234, 0, &[])), None);
}

/// Statements the footprint check would refuse, sent straight to the driver as a footprint's:
/// PostgreSQL itself refuses each, because the connection logs in as a role holding only the
/// footprint's privileges — and no statement can switch back to the operator's role.
#[tokio::test]
async fn postgres_enforces_the_footprint_through_the_role_itself() {
    let pg = cluster();
    let db = runner(&pg).await;
    for sql in [
        "CREATE TABLE t (id serial PRIMARY KEY, a int8)",
        "INSERT INTO t (a) VALUES (1)",
        "CREATE TABLE secret (s text)",
        "INSERT INTO secret VALUES ('sentinel')",
        "CREATE SCHEMA other",
        "CREATE TABLE other.t (a int8)",
        "INSERT INTO other.t VALUES (99)",
    ] {
        exec(&db, sql, &[]).await;
    }
    let grants = Grants {
        read: [("public".to_string(), "t".to_string())].into(),
        write: [("public".to_string(), "t".to_string())].into(),
        allow_function: |_| false,
    };
    let as_graph = RunAs::Footprint(&grants);
    let graph_query = |sql: &'static str| db.query(sql, &[], as_graph, Access::ReadWrite, CALL);
    for sql in [
        "SELECT s FROM secret",
        "SELECT count(*) FROM secret",
        "SELECT a FROM other.t",
        "SELECT pg_read_file('/etc/hostname')",
        "SELECT lo_import('/etc/hostname')::int8",
        "SELECT set_config('role', 'postgres', true)",
        "SELECT set_config('session_authorization', 'postgres', true)",
    ] {
        let refused = graph_query(sql).await;
        assert!(
            matches!(&refused, Err(DbError::Permission { .. })),
            "{sql}: {refused:?}"
        );
        assert!(!format!("{refused:?}").contains("sentinel"), "{sql}");
    }
    for sql in [
        "DELETE FROM secret",
        "INSERT INTO secret VALUES ('x')",
        "CREATE TABLE mine (a int)",
        "DROP TABLE secret",
    ] {
        let refused = db
            .execute(sql, &[], as_graph, Access::ReadWrite, CALL)
            .await;
        assert!(
            matches!(&refused, Err(DbError::Permission { .. })),
            "{sql}: {refused:?}"
        );
    }
    // What the footprint declares works, the serial's sequence included.
    let inserted = db
        .execute(
            "INSERT INTO t (a) VALUES (2)",
            &[],
            as_graph,
            Access::ReadWrite,
            CALL,
        )
        .await
        .expect("declared write");
    assert_eq!(inserted, 1);
    // Session state a statement sets does not reach the next call on a pooled connection.
    let moved = graph_query("SELECT set_config('search_path', 'other', false)").await;
    assert!(moved.is_ok(), "{moved:?}");
    for _ in 0..(2 * roles::ROLE_POOL_SIZE) {
        assert_eq!(
            graph_query("SELECT count(*) FROM t").await.expect("t").rows,
            [[Cell::Int(2)]],
            "public.t, never other.t"
        );
    }
    assert_eq!(count(&db, "secret").await, 1, "nothing was deleted");
    // The role is what it should be: no attributes, no memberships.
    let role = role_name(&grants);
    let rows = query(
        &db,
        "SELECT (rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls)::bool FROM pg_roles WHERE rolname = $1",
        &[Cell::Text(role)],
    )
    .await;
    assert_eq!(rows.rows, [[Cell::Bool(false)]]);
}

/// A cell far over the byte cap is refused as its message's length arrives: the host never
/// holds it (resident memory grows by much less than the cell), and the runner still serves.
#[tokio::test]
async fn a_huge_cell_is_refused_before_the_host_holds_it() {
    let pg = cluster();
    let db = runner(&pg).await;
    let before = crate::testing::resident_bytes();
    // 400 MB in one cell, against the default 16 MiB cap.
    let refused = db
        .query(
            "SELECT repeat('x', 400000000)",
            &[],
            RunAs::Operator,
            Access::ReadOnly,
            CALL,
        )
        .await;
    assert_eq!(
        refused,
        Err(DbError::ByteLimit {
            limit: DEFAULT_MAX_BYTES
        })
    );
    let grown = crate::testing::resident_bytes().saturating_sub(before);
    assert!(grown < 200 << 20, "resident memory grew {grown} bytes");
    assert_eq!(
        query(&db, "SELECT 1::int8", &[]).await.rows,
        [[Cell::Int(1)]]
    );
}
