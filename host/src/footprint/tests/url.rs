//! HTTP: normalization first, then rules; URL tricks each with their exact outcome.

use super::footprint;
use crate::footprint::url::MAX_URL_BYTES;
use crate::footprint::{Denied, Footprint, FootprintError, HttpRefusal, RuleError, RulePart};

/// Rule 0: GET https api.example.com /v1/; rule 1: POST …/v1/upload; rule 2: GET http
/// 127.0.0.1:8080 /; rule 3: GET https *.cdn.example.net; rule 4: GET http [::1]:8080.
fn rules() -> Footprint {
    footprint(
        r#"{"http": [
            {"method": "GET", "scheme": "https", "host": "api.example.com", "port": 443, "path_prefix": "/v1/"},
            {"method": "POST", "scheme": "https", "host": "api.example.com", "path_prefix": "/v1/upload"},
            {"method": "GET", "scheme": "http", "host": "127.0.0.1", "port": 8080},
            {"method": "GET", "scheme": "https", "host": "*.cdn.example.net"},
            {"method": "GET", "scheme": "http", "host": "[::1]", "port": 8080}
        ]}"#,
    )
}

/// The normalized URL and rule index, or the refusal's URL and reason.
fn check(method: &str, url: &str) -> Result<(String, usize), (String, HttpRefusal)> {
    match rules().check_http(method, url) {
        Ok(checked) => Ok((checked.url().as_str().to_string(), checked.rule())),
        Err(Denied::Http { url, reason, .. }) => Err((url, reason)),
        Err(other) => panic!("not an HTTP refusal: {other:?}"),
    }
}

fn allowed(url: &str, rule: usize) -> Result<(String, usize), (String, HttpRefusal)> {
    Ok((url.to_string(), rule))
}

/// The refusal's reason alone.
fn reason(method: &str, url: &str) -> HttpRefusal {
    match check(method, url) {
        Err((_, reason)) => reason,
        Ok(ok) => panic!("{method} {url} was allowed: {ok:?}"),
    }
}

/// The closest rule and the part it failed on.
fn no_rule(method: &str, url: &str) -> (Option<usize>, RulePart) {
    match reason(method, url) {
        HttpRefusal::NoRule { closest, part, .. } => (closest, part),
        other => panic!("{method} {url}: {other:?}"),
    }
}

#[test]
fn allowed_requests_come_back_normalized() {
    assert_eq!(
        check("GET", "https://api.example.com/v1/users?id=1"),
        allowed("https://api.example.com/v1/users?id=1", 0)
    );
    assert_eq!(
        check("GET", "HTTPS://API.Example.COM:443/v1/x"),
        allowed("https://api.example.com/v1/x", 0)
    );
    assert_eq!(
        check("GET", "https://api.example.com/v1"),
        allowed("https://api.example.com/v1", 0)
    );
    assert_eq!(
        check("POST", "https://api.example.com/v1/upload/part/2"),
        allowed("https://api.example.com/v1/upload/part/2", 1)
    );
    // Unreserved characters are decoded, other escapes upper-cased.
    assert_eq!(
        check("GET", "https://api.example.com/%76%31/%75sers/a%2cb"),
        allowed("https://api.example.com/v1/users/a%2Cb", 0)
    );
    // Dot segments that stay inside the prefix are fine once resolved.
    assert_eq!(
        check("GET", "https://api.example.com/v1/a/../b/./c"),
        allowed("https://api.example.com/v1/b/c", 0)
    );
}

#[test]
fn userinfo_is_refused() {
    assert_eq!(
        check("GET", "https://api.example.com@evil.com/v1/"),
        Err((
            "https://api.example.com@evil.com/v1/".to_string(),
            HttpRefusal::Userinfo
        ))
    );
    assert_eq!(
        reason("GET", "https://user:pw@api.example.com/v1/"),
        HttpRefusal::Userinfo
    );
    assert_eq!(
        reason("GET", "https://:pw@api.example.com/v1/"),
        HttpRefusal::Userinfo
    );
}

#[test]
fn ip_literals_in_any_spelling_match_only_a_rule_naming_that_ip() {
    // The url crate reads decimal, hex and octal IPv4 forms as the address they denote.
    for spelling in [
        "http://2130706433:8080/",
        "http://0x7f.1:8080/",
        "http://0x7f000001:8080/",
        "http://017700000001:8080/",
        "http://127.1:8080/",
        "http://127.0.0.1:8080/",
    ] {
        assert_eq!(
            check("GET", spelling),
            allowed("http://127.0.0.1:8080/", 2),
            "{spelling}"
        );
    }
    let (url, _) = check("GET", "http://2130706433/").expect_err("port 80 is not allowed");
    assert_eq!(url, "http://127.0.0.1/");
    assert_eq!(no_rule("GET", "http://0x7f.1/"), (Some(2), RulePart::Port));
    // A name that resolves to 127.0.0.1 is not the IP rule's host.
    assert_eq!(
        no_rule("GET", "http://localhost:8080/"),
        (Some(2), RulePart::Host)
    );
    // IPv4-mapped IPv6 is another host than the IPv4 rule names.
    assert_eq!(
        no_rule("GET", "http://[::ffff:127.0.0.1]:8080/"),
        (Some(2), RulePart::Host)
    );
    assert_eq!(
        check("GET", "http://[0:0:0:0:0:0:0:1]:8080/x"),
        allowed("http://[::1]:8080/x", 4)
    );
    // An IP never matches a name rule.
    assert_eq!(
        no_rule("GET", "https://93.184.216.34/v1/"),
        (Some(0), RulePart::Host)
    );
}

#[test]
fn ports_must_match_exactly() {
    assert_eq!(
        no_rule("GET", "https://api.example.com:8443/v1/"),
        (Some(0), RulePart::Port)
    );
    assert_eq!(
        no_rule("GET", "http://127.0.0.1:8081/"),
        (Some(2), RulePart::Port)
    );
    assert_eq!(
        no_rule("GET", "http://api.example.com/v1/"),
        (Some(2), RulePart::Host)
    );
}

#[test]
fn dot_segments_cannot_climb_out_of_the_prefix() {
    for url in [
        "https://api.example.com/v1/../admin",
        "https://api.example.com/v1/%2e%2e/admin",
        "https://api.example.com/v1/%2E%2e/admin",
        "https://api.example.com/v1/.%2e/admin",
        "https://api.example.com/v1/x/../../admin",
        "https://api.example.com/v1/..\\admin",
    ] {
        let (normalized, reason) = check("GET", url).expect_err(url);
        assert_eq!(normalized, "https://api.example.com/admin", "{url}");
        assert!(
            matches!(
                reason,
                HttpRefusal::NoRule {
                    closest: Some(0),
                    part: RulePart::Path,
                    ..
                }
            ),
            "{url}: {reason:?}"
        );
    }
}

#[test]
fn prefixes_match_on_segment_boundaries() {
    assert_eq!(
        no_rule("GET", "https://api.example.com/v10/x"),
        (Some(0), RulePart::Path)
    );
    assert_eq!(
        no_rule("GET", "https://api.example.com/v1x"),
        (Some(0), RulePart::Path)
    );
    assert_eq!(
        no_rule("GET", "https://api.example.com/V1/x"),
        (Some(0), RulePart::Path)
    );
    assert_eq!(
        no_rule("GET", "https://api.example.com/"),
        (Some(0), RulePart::Path)
    );
    assert_eq!(
        no_rule("POST", "https://api.example.com/v1/uploads"),
        (Some(0), RulePart::Method)
    );
    assert_eq!(
        no_rule("POST", "https://api.example.com/v1/users"),
        (Some(0), RulePart::Method)
    );
}

#[test]
fn encoded_separators_are_refused() {
    for url in [
        "https://api.example.com/v1/a%2Fb",
        "https://api.example.com/v1%2F..%2Fadmin",
        "https://api.example.com/v1/a%2fb",
        "https://api.example.com/v1/a%5Cb",
        "https://api.example.com/v1/a%00b",
    ] {
        assert_eq!(reason("GET", url), HttpRefusal::EncodedSeparator, "{url}");
    }
    // A double-encoded slash is a literal "%2F" to the server, not a separator.
    assert_eq!(
        check("GET", "https://api.example.com/v1/a%252Fb"),
        allowed("https://api.example.com/v1/a%252Fb", 0)
    );
}

#[test]
fn hosts_compare_exactly_after_normalization() {
    assert_eq!(
        reason("GET", "https://api.example.com./v1/"),
        HttpRefusal::TrailingDot
    );
    assert_eq!(
        no_rule("GET", "https://api.example.com.evil.com/v1/"),
        (Some(0), RulePart::Host)
    );
    assert_eq!(
        no_rule("GET", "https://evilapi.example.com/v1/"),
        (Some(0), RulePart::Host)
    );
    assert_eq!(
        no_rule("GET", "https://example.com/v1/"),
        (Some(0), RulePart::Host)
    );
    // A homograph: Cyrillic 'а' (U+0430) is punycode, not api.example.com.
    let (url, reason) = check("GET", "https://\u{430}pi.example.com/v1/").expect_err("homograph");
    assert!(url.starts_with("https://xn--"), "{url}");
    assert!(
        matches!(
            reason,
            HttpRefusal::NoRule {
                closest: Some(0),
                part: RulePart::Host,
                ..
            }
        ),
        "{reason:?}"
    );
    // Full-width letters fold to ASCII under IDNA, and so reach the same host.
    assert_eq!(
        check("GET", "https://\u{ff41}pi.example.com/v1/x"),
        allowed("https://api.example.com/v1/x", 0)
    );
}

#[test]
fn wildcards_match_subdomains_only() {
    assert_eq!(
        check("GET", "https://img.cdn.example.net/a.png"),
        allowed("https://img.cdn.example.net/a.png", 3)
    );
    assert_eq!(
        check("GET", "https://a.b.cdn.example.net/"),
        allowed("https://a.b.cdn.example.net/", 3)
    );
    assert_eq!(
        no_rule("GET", "https://cdn.example.net/"),
        (Some(0), RulePart::Host)
    );
    assert_eq!(
        no_rule("GET", "https://evilcdn.example.net/"),
        (Some(0), RulePart::Host)
    );
    assert_eq!(
        no_rule("GET", "https://cdn.example.net.evil.com/"),
        (Some(0), RulePart::Host)
    );
}

#[test]
fn schemes_methods_fragments_and_garbage() {
    assert_eq!(
        reason("GET", "ftp://api.example.com/v1/"),
        HttpRefusal::Scheme
    );
    assert_eq!(reason("GET", "file:///etc/passwd"), HttpRefusal::Scheme);
    assert_eq!(reason("GET", "javascript:alert(1)"), HttpRefusal::Scheme);
    assert_eq!(
        no_rule("GET", "http://api.example.com:443/v1/"),
        (Some(2), RulePart::Host)
    );
    assert_eq!(
        reason("GET", "https://api.example.com/v1/#top"),
        HttpRefusal::Fragment
    );
    assert_eq!(
        reason("get", "https://api.example.com/v1/"),
        HttpRefusal::Method
    );
    assert_eq!(
        reason("CONNECT", "https://api.example.com/v1/"),
        HttpRefusal::Method
    );
    assert_eq!(
        reason("TRACE", "https://api.example.com/v1/"),
        HttpRefusal::Method
    );
    assert!(matches!(
        reason("GET", "not a url"),
        HttpRefusal::Invalid { .. }
    ));
    assert!(matches!(
        reason("GET", "https://"),
        HttpRefusal::Invalid { .. }
    ));
    assert!(matches!(
        reason("GET", "https://exa mple.com/"),
        HttpRefusal::Invalid { .. }
    ));
    let long = format!("https://api.example.com/v1/{}", "a".repeat(MAX_URL_BYTES));
    assert_eq!(
        reason("GET", &long),
        HttpRefusal::TooLong { length: long.len() }
    );
    let (shown, _) = check("GET", &long).expect_err("too long");
    assert!(shown.len() < 300, "refusals keep URLs short");
}

#[test]
fn redirects_are_checked_hop_by_hop() {
    let fp = rules();
    let first = fp
        .check_http("GET", "https://api.example.com/v1/a/b")
        .expect("allowed");
    let hop = |location: &str| fp.check_redirect("GET", &first, location);
    assert_eq!(
        hop("../c").map(|c| c.url().to_string()),
        Ok("https://api.example.com/v1/c".to_string())
    );
    assert_eq!(
        hop("/v1/d").map(|c| c.url().to_string()),
        Ok("https://api.example.com/v1/d".to_string())
    );
    for (location, part) in [
        ("/admin", RulePart::Path),
        ("../../admin", RulePart::Path),
        ("https://evil.com/v1/", RulePart::Host),
        ("//evil.com/v1/", RulePart::Host),
        ("http://api.example.com/v1/", RulePart::Host),
        ("https://169.254.169.254/latest/meta-data/", RulePart::Host),
    ] {
        match hop(location) {
            Err(Denied::Http {
                reason: HttpRefusal::NoRule { part: got, .. },
                ..
            }) => assert_eq!(got, part, "{location}"),
            other => panic!("{location}: {other:?}"),
        }
    }
    assert!(matches!(
        hop("https://user@api.example.com/v1/"),
        Err(Denied::Http {
            reason: HttpRefusal::Userinfo,
            ..
        })
    ));
    // A POST answered with 303 goes on as GET: the caller passes the method it will use.
    assert!(fp.check_redirect("POST", &first, "/v1/x").is_err());
}

#[test]
fn an_empty_footprint_allows_no_request() {
    let none = Footprint::default();
    match none.check_http("GET", "https://api.example.com/") {
        Err(Denied::Http {
            reason: HttpRefusal::NoRule { closest: None, .. },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn refusals_suggest_the_rule_to_add() {
    let denied = rules()
        .check_http("GET", "https://API.example.com/v2/items")
        .expect_err("refused");
    let suggestion = r#"{"method": "GET", "scheme": "https", "host": "api.example.com", "port": 443, "path_prefix": "/v2/items"}"#;
    assert_eq!(
        denied.remediation(),
        format!("add this rule to footprint.http: {suggestion}")
    );
    assert_eq!(
        denied.to_string(),
        "HTTP GET https://api.example.com/v2/items refused: no rule allows it (closest: rule 0, \
         its path_prefix differs)"
    );
    // The suggestion is itself a valid rule that allows the request.
    let fp = footprint(&format!(r#"{{"http": [{suggestion}]}}"#));
    assert!(
        fp.check_http("GET", "https://api.example.com/v2/items")
            .is_ok()
    );
}

#[test]
fn rules_are_validated() {
    let rule = |json: &str| match Footprint::from_json(&format!(r#"{{"http": [{json}]}}"#)) {
        Err(FootprintError::Rule { index: 0, error }) => Err(error),
        Err(other) => panic!("{json}: {other:?}"),
        Ok(_) => Ok(()),
    };
    let with = |field: &str| {
        rule(&format!(
            r#"{{"method": "GET", "scheme": "https", "host": "api.example.com", {field}}}"#
        ))
    };
    assert_eq!(with(r#""port": 443"#), Ok(()));
    assert_eq!(
        rule(r#"{"method": "get", "scheme": "https", "host": "a.b"}"#),
        Err(RuleError::Method("get".to_string()))
    );
    assert_eq!(
        rule(r#"{"method": "GET", "scheme": "ftp", "host": "a.b"}"#),
        Err(RuleError::Scheme("ftp".to_string()))
    );
    for host in [
        "api.example.com:443",
        "api.example.com/v1",
        "user@api.example.com",
        "api.example.com.",
        "",
        "a b.com",
        "::1",
    ] {
        assert_eq!(
            rule(&format!(
                r#"{{"method": "GET", "scheme": "https", "host": "{host}"}}"#
            )),
            Err(RuleError::Host(host.to_string())),
            "{host}"
        );
    }
    for host in ["*.com", "a.*.com", "*", "*.*.example.com", "*.127.0.0.1"] {
        assert_eq!(
            rule(&format!(
                r#"{{"method": "GET", "scheme": "https", "host": "{host}"}}"#
            )),
            Err(RuleError::Wildcard(host.to_string())),
            "{host}"
        );
    }
    assert_eq!(with(r#""port": 0"#), Err(RuleError::Port));
    for prefix in [
        "v1",
        "/v1/../admin",
        "/v1/%2e%2e/x",
        "/a%2Fb",
        "/v1?x",
        "/v1#x",
        "/./x",
    ] {
        assert_eq!(
            with(&format!(r#""path_prefix": "{prefix}""#)),
            Err(RuleError::PathPrefix(prefix.to_string())),
            "{prefix}"
        );
    }
    assert!(matches!(
        Footprint::from_json(
            r#"{"http": [{"method": "GET", "scheme": "https", "host": "a.b", "hosts": "x"}]}"#
        ),
        Err(FootprintError::Json { .. })
    ));
}

#[test]
fn rule_hosts_are_normalized_like_urls() {
    let fp = footprint(
        r#"{"http": [
            {"method": "GET", "scheme": "HTTPS", "host": "API.Example.com", "path_prefix": "/v1/"},
            {"method": "GET", "scheme": "https", "host": "bücher.example"},
            {"method": "GET", "scheme": "http", "host": "2130706433", "port": 8080}
        ]}"#,
    );
    assert_eq!(
        fp.check_http("GET", "https://api.example.com/v1/x")
            .map(|c| c.rule()),
        Ok(0)
    );
    assert_eq!(
        fp.check_http("GET", "https://xn--bcher-kva.example/")
            .map(|c| c.rule()),
        Ok(1)
    );
    assert_eq!(
        fp.check_http("GET", "https://BÜCHER.example/")
            .map(|c| c.rule()),
        Ok(1)
    );
    assert_eq!(
        fp.check_http("GET", "http://127.0.0.1:8080/")
            .map(|c| c.rule()),
        Ok(2)
    );
}
