//! The footprint's JSON: shape, validation, defaults, kernels, and the documented example.

use super::{footprint, table, tables};
use crate::footprint::{
    Access, Denied, Footprint, FootprintError, MAX_ENTRIES, TableName, TableNameError,
};

#[test]
fn the_brief_example_parses() {
    let fp = footprint(
        r#"{"db": {"read": ["public.users", "orders"], "write": ["audit_log"]},
            "http": [{"method": "GET", "scheme": "https", "host": "api.example.com", "port": 443, "path_prefix": "/v1/"}],
            "kernels": ["matmul", "softmax"]}"#,
    );
    assert_eq!(fp.db.read, tables(&["users", "public.orders"]));
    assert_eq!(fp.db.write, tables(&["public.audit_log"]));
    assert_eq!(fp.http.len(), 1);
    assert_eq!(fp.check_kernel("matmul"), Ok(()));
    // serde's own entry point validates the same way.
    let via_serde: Footprint = serde_json::from_str(r#"{"db": {"read": ["Users"]}}"#)
        .expect("serde deserializes a footprint");
    assert_eq!(via_serde.db.read, tables(&["users"]));
    assert!(serde_json::from_str::<Footprint>(r#"{"db": {"read": ["a.b.c"]}}"#).is_err());
}

#[test]
fn every_section_is_optional_and_empty_allows_nothing() {
    for json in [
        "{}",
        r#"{"db": {}}"#,
        r#"{"db": {"read": []}, "http": [], "kernels": []}"#,
    ] {
        assert_eq!(footprint(json), Footprint::default(), "{json}");
    }
    let none = Footprint::default();
    assert!(none.db.read_only());
    assert!(matches!(
        none.check_sql("SELECT * FROM t"),
        Err(Denied::Table { .. })
    ));
    assert!(
        none.check_sql("SELECT 1").is_ok(),
        "SQL touching no table needs no entry"
    );
    assert!(matches!(
        none.check_http("GET", "https://a.example/"),
        Err(Denied::Http { .. })
    ));
    assert_eq!(
        none.check_kernel("matmul"),
        Err(Denied::Kernel {
            name: "matmul".to_string()
        })
    );
}

#[test]
fn unknown_fields_and_wrong_types_are_refused() {
    for json in [
        r#"{"dbs": {}}"#,
        r#"{"db": {"reads": []}}"#,
        r#"{"db": {"read": "users"}}"#,
        r#"{"db": null}"#,
        r#"{"kernels": [1]}"#,
        r#"{"http": [{"method": "GET", "scheme": "https"}]}"#,
        r#"{"http": [{"method": "GET", "scheme": "https", "host": "a.b", "port": 70000}]}"#,
        "[]",
        "",
        r#"{"db": []}"#,
        r#"{"db": [["users"]]}"#,
        r#"{"http": [["GET", "https", "a.b"]]}"#,
    ] {
        assert!(
            matches!(Footprint::from_json(json), Err(FootprintError::Json { .. })),
            "{json}: {:?}",
            Footprint::from_json(json)
        );
    }
}

#[test]
fn table_entries_are_validated() {
    let entry = |name: &str, section: &str| {
        Footprint::from_json(&format!(r#"{{"db": {{"{section}": [{name}]}}}}"#))
    };
    let error = |name: &str, section: Access, error: TableNameError| {
        Err(FootprintError::Table {
            section,
            entry: serde_json::from_str::<String>(name).expect("json string"),
            error,
        })
    };
    assert_eq!(
        entry(r#""""#, "read"),
        error(r#""""#, Access::Read, TableNameError::Empty)
    );
    assert_eq!(
        entry(r#""public.""#, "write"),
        error(r#""public.""#, Access::Write, TableNameError::Empty)
    );
    assert_eq!(
        entry(r#""a.b.c""#, "read"),
        error(r#""a.b.c""#, Access::Read, TableNameError::TooManyParts)
    );
    assert_eq!(
        entry(r#""\"Users""#, "read"),
        error(
            r#""\"Users""#,
            Access::Read,
            TableNameError::UnterminatedQuote
        )
    );
    assert_eq!(
        entry(r#""user s""#, "read"),
        error(
            r#""user s""#,
            Access::Read,
            TableNameError::BadCharacter { found: ' ', at: 4 }
        )
    );
    assert_eq!(
        entry(r#""1users""#, "read"),
        error(
            r#""1users""#,
            Access::Read,
            TableNameError::BadCharacter { found: '1', at: 0 }
        )
    );
    assert_eq!(
        entry(r#""users;drop""#, "read"),
        error(
            r#""users;drop""#,
            Access::Read,
            TableNameError::BadCharacter { found: ';', at: 5 }
        )
    );
    let long = "a".repeat(64);
    assert_eq!(
        entry(&format!("\"{long}\""), "read"),
        error(
            &format!("\"{long}\""),
            Access::Read,
            TableNameError::TooLong { length: 64 }
        )
    );
}

#[test]
fn table_names_resolve_like_sql() {
    assert_eq!(table("users").to_string(), "public.users");
    assert_eq!(table("USERS"), table("public.users"));
    assert_eq!(table("\"user list\"").to_string(), "public.\"user list\"");
    assert_ne!(table("\"user list\""), table("userlist"));
    // Quoted capitals would be two tables to PostgreSQL and one to SQLite.
    assert_eq!(TableName::parse("\"Users\""), Err(TableNameError::Capitals));
    assert_eq!(table("\"users\""), table("users"));
    assert_eq!(table("pg_user"), table("pg_catalog.pg_user"));
    assert!(table("pg_user").is_system());
    assert!(table("information_schema.tables").is_system());
    assert!(table("pg_temp_3.t").is_system());
    assert!(!table("public.pg_like").is_system());
    assert_eq!(table("\"a.b\"").to_string(), "public.\"a.b\"");
    assert_eq!(table("\"a.b\"").name(), "a.b");
    assert_eq!(table("\"say \"\"hi\"\"\"").name(), "say \"hi\"");
    assert_eq!(table("s.t$1").to_string(), "s.\"t$1\"");
    assert_eq!(table("\"x\".y").schema(), "x");
    assert_eq!(
        TableName::parse("ümlaut").map(|t| t.to_string()),
        Ok("public.\"ümlaut\"".into())
    );
}

#[test]
fn kernels_are_exact_and_validated() {
    let fp = footprint(r#"{"kernels": ["matmul", "softmax.v2"]}"#);
    assert_eq!(fp.check_kernel("matmul"), Ok(()));
    assert_eq!(fp.check_kernel("softmax.v2"), Ok(()));
    for name in ["MatMul", "matmul ", "soft", ""] {
        assert_eq!(
            fp.check_kernel(name),
            Err(Denied::Kernel {
                name: name.to_string()
            }),
            "{name:?}"
        );
    }
    let denied = fp.check_kernel("conv2d").expect_err("refused");
    assert_eq!(denied.remediation(), "add \"conv2d\" to footprint.kernels");
    for bad in ["", "mat mul", "a/b", "ü"] {
        assert_eq!(
            Footprint::from_json(&format!(r#"{{"kernels": ["{bad}"]}}"#)),
            Err(FootprintError::Kernel {
                name: bad.to_string()
            }),
            "{bad:?}"
        );
    }
}

#[test]
fn sections_are_bounded() {
    let many: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("\"k{i}\"")).collect();
    assert_eq!(
        Footprint::from_json(&format!(r#"{{"kernels": [{}]}}"#, many.join(","))),
        Err(FootprintError::TooMany {
            section: "kernels",
            count: MAX_ENTRIES + 1
        })
    );
}

/// The example in docs/graph-format.md ("Footprint") parses and allows what the doc says.
#[test]
fn the_documented_example_holds() {
    let doc = include_str!("../../../../docs/graph-format.md");
    let section = doc
        .split("\n## Footprint")
        .nth(1)
        .expect("docs/graph-format.md has a Footprint section");
    let example = section
        .split("~~~json")
        .nth(1)
        .and_then(|block| block.split("~~~").next())
        .expect("the Footprint section has a ~~~json example");
    let fp = footprint(example);
    assert!(
        fp.check_sql("SELECT * FROM users u JOIN orders o ON o.user_id = u.id")
            .is_ok()
    );
    assert!(
        fp.check_sql("INSERT INTO audit_log (event) VALUES ($1)")
            .is_ok()
    );
    assert_eq!(
        fp.check_sql("DELETE FROM users"),
        Err(super::denied_table("users", Access::Write))
    );
    assert!(
        fp.check_http("GET", "https://api.example.com/v1/rates?base=EUR")
            .is_ok()
    );
    assert!(
        fp.check_http("GET", "https://api.example.com/v10/rates")
            .is_err()
    );
    assert!(fp.check_kernel("matmul").is_ok());
}

#[test]
fn a_footprint_within_its_ceiling_and_the_first_thing_beyond_it() {
    let ceiling = super::footprint(
        r#"{"db": {"read": ["public.orders", "public.customers"], "write": ["public.audit"]},
            "http": [{"method": "GET", "scheme": "https", "host": "*.example.com", "path_prefix": "/api"},
                     {"method": "POST", "scheme": "http", "host": "10.0.0.1", "port": 8080}],
            "kernels": ["matmul"]}"#,
    );
    let within = |json: &str| super::footprint(json).beyond(&ceiling);
    assert_eq!(within("{}"), None);
    assert_eq!(
        within(
            r#"{"db": {"read": ["orders"]},
                "http": [{"method": "GET", "scheme": "https", "host": "a.example.com", "path_prefix": "/api/v1"},
                         {"method": "GET", "scheme": "https", "host": "*.eu.example.com", "path_prefix": "/api"},
                         {"method": "POST", "scheme": "http", "host": "10.0.0.1", "port": 8080, "path_prefix": "/x"}],
                "kernels": ["matmul"]}"#
        ),
        None
    );
    let beyond = [
        (r#"{"db": {"read": ["public.secrets"]}}"#, "reading table"),
        (r#"{"db": {"write": ["public.orders"]}}"#, "writing table"),
        (
            r#"{"http": [{"method": "GET", "scheme": "https", "host": "example.com", "path_prefix": "/api"}]}"#,
            "HTTP rule",
        ),
        (
            r#"{"http": [{"method": "GET", "scheme": "https", "host": "a.example.com", "path_prefix": "/apix"}]}"#,
            "HTTP rule",
        ),
        (
            r#"{"http": [{"method": "GET", "scheme": "https", "host": "a.example.com", "path_prefix": "/"}]}"#,
            "HTTP rule",
        ),
        (
            r#"{"http": [{"method": "GET", "scheme": "http", "host": "a.example.com", "path_prefix": "/api"}]}"#,
            "HTTP rule",
        ),
        (
            r#"{"http": [{"method": "POST", "scheme": "http", "host": "10.0.0.1", "port": 8081}]}"#,
            "HTTP rule",
        ),
        (r#"{"kernels": ["softmax"]}"#, "kernel"),
    ];
    for (json, what) in beyond {
        let found = within(json).unwrap_or_else(|| panic!("{json} is beyond the ceiling"));
        assert!(found.contains(what), "{json}: {found}");
    }
}
