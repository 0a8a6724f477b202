use super::*;

fn db() -> SqliteRunner {
    SqliteRunner::open(Some(
        "CREATE TABLE t (a INTEGER); CREATE TABLE secret (s TEXT);\
         INSERT INTO t VALUES (1); INSERT INTO secret VALUES ('sentinel');\
         CREATE VIEW v AS SELECT s FROM secret;",
    ))
    .expect("db")
}

fn only_t() -> Grants {
    Grants {
        read: [("public".to_string(), "t".to_string())].into(),
        write: [("public".to_string(), "t".to_string())].into(),
        allow_function: |name| name == "count" || name == "lower",
    }
}

async fn query(db: &SqliteRunner, sql: &str) -> Result<Rows, EffectError> {
    db.query(
        sql,
        vec![],
        &only_t(),
        Access::ReadWrite,
        Duration::from_secs(5),
    )
    .await
}

/// Statements the footprint check would refuse, sent straight to the driver: SQLite
/// itself refuses each, whatever the text.
#[tokio::test]
async fn sqlite_refuses_what_the_grants_do_not_allow_on_its_own() {
    let db = db();
    for sql in [
        "SELECT s FROM secret",
        "SELECT count(*) FROM secret",
        "SELECT a FROM t UNION SELECT s FROM secret",
        "SELECT s FROM v",
        "SELECT sql FROM sqlite_master",
        "SELECT a FROM t WHERE a = (SELECT length(s) FROM secret)",
        "SELECT upper(a) FROM t",
        "PRAGMA table_info(secret)",
        "ATTACH DATABASE ':memory:' AS other",
        "CREATE TABLE x (a)",
        "DROP TABLE secret",
        "DELETE FROM secret",
        "INSERT INTO secret VALUES ('x')",
        "SELECT load_extension('x')",
    ] {
        let error = query(&db, sql).await.expect_err(sql);
        assert!(
            matches!(
                error,
                EffectError::FootprintDenied(_) | EffectError::Syntax(_)
            ),
            "{sql}: {error:?}"
        );
        assert!(
            !format!("{error:?}").contains("sentinel"),
            "{sql}: {error:?}"
        );
    }
    let rows = query(&db, "SELECT count(*), lower('A') FROM t")
        .await
        .expect("allowed");
    assert_eq!(rows.rows, vec![vec![Cell::Int(1), Cell::Text("a".into())]]);
    // What was refused changed nothing.
    let all = Grants {
        read: [("public".into(), "secret".into())].into(),
        ..only_t()
    };
    let left = db
        .query(
            "SELECT count(*) FROM secret",
            vec![],
            &all,
            Access::ReadOnly,
            Duration::from_secs(5),
        )
        .await
        .expect("declared");
    assert_eq!(left.rows, vec![vec![Cell::Int(1)]]);
}

/// A value longer than the byte cap is refused by SQLite as it is built, not after the
/// host has materialized it.
#[tokio::test]
async fn a_huge_value_is_refused_by_sqlite_before_the_host_holds_it() {
    let db = db();
    let any_function = Grants {
        allow_function: |_| true,
        ..only_t()
    };
    let error = db
        .query(
            "SELECT count(*) FROM t WHERE lower(zeroblob(100000000)) = 'x'",
            vec![],
            &any_function,
            Access::ReadOnly,
            Duration::from_secs(5),
        )
        .await
        .expect_err("too big");
    assert!(
        matches!(
            error,
            EffectError::Other(_) | EffectError::Limit(_) | EffectError::Syntax(_)
        ),
        "{error:?}"
    );
    assert!(format!("{error:?}").contains("too big"), "{error:?}");
}
