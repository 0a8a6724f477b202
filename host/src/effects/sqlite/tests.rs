use super::*;

fn grants() -> Grants {
    Grants {
        read: [("public".to_string(), "t".to_string())].into(),
        write: [("public".to_string(), "t".to_string())].into(),
        allow_function: |name| name == "count",
    }
}

fn db() -> SqliteRunner {
    SqliteRunner::open(Some(
        "CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'x'), (2, NULL);",
    ))
    .expect("the call succeeds")
}

#[tokio::test]
async fn queries_bind_by_name_and_reads_are_read_only() {
    let db = db();
    let rows = db
        .query(
            "SELECT b FROM t WHERE a = $2 OR a = $1 ORDER BY a",
            vec![Cell::Int(9), Cell::Int(1)],
            &grants(),
            Access::ReadOnly,
            Duration::from_secs(5),
        )
        .await
        .expect("the call succeeds");
    assert_eq!(rows.rows, vec![vec![Cell::Text("x".into())]]);
    let refused = db
        .execute(
            "DELETE FROM t",
            vec![],
            &grants(),
            Access::ReadOnly,
            Duration::from_secs(5),
        )
        .await
        .expect_err("the call is refused");
    assert!(matches!(refused, EffectError::Permission(_)), "{refused:?}");
    let n = db
        .execute(
            "DELETE FROM t WHERE a = $1",
            vec![Cell::Int(2)],
            &grants(),
            Access::ReadWrite,
            Duration::from_secs(5),
        )
        .await
        .expect("the call succeeds");
    assert_eq!(n, 1);
}

#[tokio::test]
async fn errors_are_typed_and_roll_back() {
    let db = db();
    let syntax = db
        .query(
            "SELEC 1",
            vec![],
            &grants(),
            Access::ReadOnly,
            Duration::from_secs(5),
        )
        .await
        .expect_err("the call is refused");
    assert!(matches!(syntax, EffectError::Syntax(_)), "{syntax:?}");
    let count = db
        .query(
            "SELECT count(*) FROM t WHERE a = $1",
            vec![],
            &grants(),
            Access::ReadOnly,
            Duration::from_secs(5),
        )
        .await
        .expect_err("the call is refused");
    assert!(matches!(count, EffectError::Syntax(_)), "{count:?}");
    let slow = db
        .query(
            "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r",
            vec![],
            &grants(),
            Access::ReadOnly,
            Duration::from_millis(50),
        )
        .await
        .expect_err("the call is refused");
    assert!(matches!(slow, EffectError::Timeout(_)), "{slow:?}");
    // Still usable, and still holding both rows.
    let rows = db
        .query(
            "SELECT count(*) FROM t",
            vec![],
            &grants(),
            Access::ReadOnly,
            Duration::from_secs(5),
        )
        .await
        .expect("the call succeeds");
    assert_eq!(rows.rows, vec![vec![Cell::Int(2)]]);
}

#[tokio::test]
async fn text_that_is_not_utf8_is_a_bad_answer_never_altered() {
    let db = SqliteRunner::open(Some(
        "CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (1, CAST(X'61FF62' AS TEXT));",
    ))
    .expect("opens");
    let read = |sql: &'static str| {
        let db = &db;
        async move {
            db.query(
                sql,
                vec![],
                &grants(),
                Access::ReadOnly,
                Duration::from_secs(5),
            )
            .await
        }
    };
    let refused = read("SELECT b FROM t").await.expect_err("not UTF-8");
    assert!(
        matches!(&refused, EffectError::BadAnswer(m) if m.contains("\"b\"")),
        "{refused:?}"
    );
    // As a blob the bytes come back exactly.
    let rows = read("SELECT CAST(b AS BLOB) AS b FROM t")
        .await
        .expect("a blob");
    assert_eq!(rows.rows, vec![vec![Cell::Bytes(vec![0x61, 0xff, 0x62])]]);
}
