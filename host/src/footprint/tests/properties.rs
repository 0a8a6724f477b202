//! Properties: no string panics any check; table names round-trip through their display.

use std::net::IpAddr;

use proptest::prelude::*;

use super::footprint;
use crate::footprint::{EgressPolicy, Footprint, IpNet, TableName, analyze, functions};

fn guarded() -> Footprint {
    footprint(
        r#"{"db": {"read": ["users", "orders"], "write": ["audit_log"]},
            "http": [{"method": "GET", "scheme": "https", "host": "api.example.com", "path_prefix": "/v1/"},
                     {"method": "POST", "scheme": "https", "host": "*.example.net"}],
            "kernels": ["matmul"]}"#,
    )
}

/// SQL-shaped strings: fragments that reach the parser's and the walker's corners.
fn sql_like() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        prop::sample::select(vec![
            "SELECT ",
            "* FROM ",
            "users ",
            "\"Users\" ",
            "pg_catalog.pg_user ",
            "WITH x AS (",
            "WITH RECURSIVE x AS (",
            ") ",
            "(",
            "DELETE FROM ",
            "INSERT INTO ",
            "UPDATE ",
            "SET a = 1 ",
            "RETURNING * ",
            "UNION ",
            "WHERE EXISTS ",
            "LATERAL ",
            "pg_sleep(1) ",
            "; ",
            "-- ",
            "/* ",
            "*/ ",
            "$$ ",
            "' ",
            "x ",
            "\n",
        ])
        .prop_map(String::from),
        "[a-z_\"$'();,.* ]{1,8}",
    ];
    prop::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn checking_sql_never_panics(sql in "\\PC{0,200}") {
        let _ = guarded().check_sql(&sql);
    }

    #[test]
    fn checking_sql_shaped_strings_never_panics(sql in sql_like()) {
        let fp = guarded();
        if let Ok(access) = fp.check_sql(&sql) {
            // Whatever passed stays within the footprint.
            prop_assert!(access.reads.is_subset(&fp.db.read));
            prop_assert!(access.writes.is_subset(&fp.db.write));
        }
        let _ = analyze(&sql);
    }

    #[test]
    fn checking_urls_never_panics(method in "[A-Za-z]{0,8}", url in "\\PC{0,120}") {
        let fp = guarded();
        let _ = fp.check_http(&method, &url);
        let _ = fp.check_http("GET", &format!("https://api.example.com/v1/{url}"));
        let _ = fp.check_http("GET", &format!("https://{url}"));
        if let Ok(first) = fp.check_http("GET", "https://api.example.com/v1/a") {
            let _ = fp.check_redirect("GET", &first, &url);
        }
    }

    #[test]
    fn allowed_urls_are_within_a_rule_and_stable(path in "[a-zA-Z0-9%./_~-]{0,40}") {
        let fp = guarded();
        if let Ok(checked) = fp.check_http("GET", &format!("https://api.example.com/{path}")) {
            prop_assert!(checked.url().path().starts_with("/v1"));
            // Normalizing the normalized URL changes nothing.
            let again = fp.check_http("GET", checked.url().as_str());
            prop_assert_eq!(again.map(|c| c.url().clone()), Ok(checked.url().clone()));
        }
    }

    #[test]
    fn footprint_json_never_panics(json in "\\PC{0,120}", entry in "\\PC{0,40}") {
        let _ = Footprint::from_json(&json);
        let _ = Footprint::from_json(&format!(r#"{{"db": {{"read": [{}]}}}}"#, serde_json::json!(entry)));
        let _ = Footprint::from_json(&format!(
            r#"{{"http": [{{"method": "GET", "scheme": "https", "host": {}, "path_prefix": {}}}]}}"#,
            serde_json::json!(entry), serde_json::json!(json)));
        let _ = json.parse::<IpNet>();
        let _ = guarded().check_kernel(&entry);
    }

    #[test]
    fn table_names_round_trip(text in "\\PC{0,40}") {
        if let Ok(name) = TableName::parse(&text) {
            prop_assert_eq!(TableName::parse(&name.to_string()), Ok(name));
        }
    }

    #[test]
    fn every_address_gets_an_answer(bits in any::<u128>(), v4 in any::<u32>()) {
        let policy = EgressPolicy::default();
        let _ = policy.check_addr(IpAddr::V6(std::net::Ipv6Addr::from_bits(bits)));
        let _ = policy.check_addr(IpAddr::V4(std::net::Ipv4Addr::from_bits(v4)));
    }
}

#[test]
fn function_lists_are_sorted_and_disjoint() {
    let (pure, side_effects) = functions::lists();
    assert!(
        pure.windows(2).all(|w| w[0] < w[1]),
        "PURE is sorted, no duplicates"
    );
    assert!(
        side_effects.windows(2).all(|w| w[0] < w[1]),
        "SIDE_EFFECTS is sorted"
    );
    for name in pure {
        assert_eq!(functions::classify(&[name]), None, "{name}");
        for entry in side_effects {
            let hit = match entry.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == entry,
            };
            assert!(!hit, "{name} is both pure and side-effecting ({entry})");
        }
    }
}
