//! HTTP destinations: URLs normalized first, then matched against the footprint's rules.
//!
//! Invariants:
//! - Matching sees only the normalized URL (WHATWG parsing by the `url` crate: scheme and
//!   host lower-cased, IDNA to punycode, IPv4 in any spelling — `2130706433`, `0x7f.1` — to
//!   dotted decimal, default ports dropped, `.`/`..`/`%2e%2e` segments resolved, `\` read as
//!   `/`; then percent-escapes of unreserved characters decoded and the others upper-cased).
//!   The [`CheckedUrl`] returned is that normalized URL: what was checked is what is sent.
//! - Refused before any rule is consulted: schemes other than http/https, userinfo, a
//!   `#fragment`, a host ending in `.`, `%2F`/`%5C`/`%00` in the path, non-standard methods,
//!   URLs over [`MAX_URL_BYTES`].
//! - A rule allows a request when method, scheme, host, port and path prefix all match:
//!   method and scheme exactly; host exactly after the same normalization (IP literals only
//!   match a rule naming the same address; `*.example.com` matches any name ending in
//!   `.example.com`, not `example.com` itself and never an IP); port exactly (the rule's
//!   default is the scheme's); path prefix on segment boundaries (`/v1` and `/v1/` both allow
//!   `/v1` and `/v1/…`, never `/v10`), case-sensitively. The query string is not matched.
//! - Each redirect hop is checked the same way ([`Footprint::check_redirect`]).
//!
//! The resolved address is checked separately, by `egress`; this module does no DNS.

use url::{Host, Url};

use super::denied::{json_escape, shown};
use super::{Denied, Footprint, HttpRefusal, RulePart};

/// The longest URL (or redirect `Location`) a request may use. Far above real API URLs;
/// bounds parsing and the strings kept in errors.
pub(crate) const MAX_URL_BYTES: usize = 8 * 1024;

/// Methods a rule may name and a request may use (upper case, as sent). CONNECT and TRACE are
/// left out on purpose.
const METHODS: &[&str] = &["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];

/// One allowed destination. Built only through validation ([`HttpRule::try_from`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "HttpRuleJson")]
pub(crate) struct HttpRule {
    method: String,
    scheme: String,
    host: HostPattern,
    port: u16,
    /// Normalized, starts with `/`, no trailing `/` except for the root.
    path_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(Host<String>),
    /// `*.suffix`: names with at least one more label before `.suffix`.
    Subdomains(String),
}

/// An HTTP rule as written in the footprint JSON.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpRuleJson {
    method: String,
    scheme: String,
    host: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    path_prefix: Option<String>,
}

/// Why an HTTP rule is not valid (a user error in the footprint).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RuleError {
    /// Not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (upper case).
    #[error("method {0:?} is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")]
    Method(String),
    /// Not `http` or `https`.
    #[error("scheme {0:?} is not http or https")]
    Scheme(String),
    /// Not a host name or IP address alone (no port, path, userinfo, trailing dot).
    #[error("host {0:?} is not a bare host name or IP address")]
    Host(String),
    /// `*.` followed by fewer than two labels, or a wildcard elsewhere.
    #[error("wildcard {0:?}: only a leading '*.' before at least two labels is allowed")]
    Wildcard(String),
    /// Port 0.
    #[error("port 0")]
    Port,
    /// Not starting with `/`, or with `?`, `#`, dot segments or encoded separators.
    #[error("path_prefix {0:?} must start with '/' and hold no '?', '#', '.'/'..' segments or %2F")]
    PathPrefix(String),
}

impl TryFrom<HttpRuleJson> for HttpRule {
    type Error = RuleError;

    fn try_from(rule: HttpRuleJson) -> Result<Self, Self::Error> {
        if !METHODS.contains(&rule.method.as_str()) {
            return Err(RuleError::Method(shown(&rule.method)));
        }
        let scheme = rule.scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(RuleError::Scheme(shown(&rule.scheme)));
        }
        let host = parse_rule_host(&scheme, &rule.host)?;
        let default_port = if scheme == "https" { 443 } else { 80 };
        let port = rule.port.unwrap_or(default_port);
        if port == 0 {
            return Err(RuleError::Port);
        }
        let path_prefix = parse_path_prefix(rule.path_prefix.as_deref().unwrap_or("/"))?;
        Ok(Self {
            method: rule.method,
            scheme,
            host,
            port,
            path_prefix,
        })
    }
}

fn parse_rule_host(scheme: &str, host: &str) -> Result<HostPattern, RuleError> {
    let bad = || RuleError::Host(shown(host));
    if host.is_empty() || host.ends_with('.') || host.len() > 253 {
        return Err(bad());
    }
    let (wildcard, rest) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host),
    };
    if rest.contains('*') {
        return Err(RuleError::Wildcard(shown(host)));
    }
    if rest
        .chars()
        .any(|c| matches!(c, '/' | '\\' | '@' | '?' | '#' | '%') || c.is_whitespace())
    {
        return Err(bad());
    }
    // A port, even the default one, is the rule's `port` field, not part of the host.
    let has_port = match rest.strip_prefix('[') {
        Some(inner) => !inner.ends_with(']'),
        None => rest.contains(':'),
    };
    if has_port {
        return Err(bad());
    }
    let url = Url::parse(&format!("{scheme}://{rest}/")).map_err(|_| bad())?;
    if url.port().is_some() || url.path() != "/" || !url.username().is_empty() {
        return Err(bad());
    }
    let parsed = url.host().ok_or_else(bad)?.to_owned();
    if !wildcard {
        return Ok(HostPattern::Exact(parsed));
    }
    match parsed {
        Host::Domain(domain) if domain.split('.').filter(|l| !l.is_empty()).count() >= 2 => {
            Ok(HostPattern::Subdomains(domain))
        }
        _ => Err(RuleError::Wildcard(shown(host))),
    }
}

fn parse_path_prefix(prefix: &str) -> Result<String, RuleError> {
    let bad = || RuleError::PathPrefix(shown(prefix));
    if !prefix.starts_with('/') || prefix.contains(['?', '#', '\\']) {
        return Err(bad());
    }
    // Dot segments (also `%2e` ones) and encoded separators are refused, not resolved: a
    // prefix should say plainly what it allows.
    normalize_path(prefix).map_err(|_| bad())?;
    let url = Url::parse(&format!("http://h{prefix}")).map_err(|_| bad())?;
    let path = normalize_path(url.path()).map_err(|_| bad())?;
    Ok(trim_prefix(&path))
}

fn trim_prefix(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Decodes percent-escapes of unreserved characters, upper-cases the others, and refuses
/// encoded separators and NUL. Does not touch dot segments (the URL parser resolved them).
fn normalize_path(path: &str) -> Result<String, HttpRefusal> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let escaped = (byte == b'%')
            .then(|| Some((hex(*bytes.get(index + 1)?)?, hex(*bytes.get(index + 2)?)?)))
            .flatten();
        match escaped {
            Some((high, low)) => {
                let decoded = high * 16 + low;
                if matches!(decoded, b'/' | b'\\' | 0) {
                    return Err(HttpRefusal::EncodedSeparator);
                }
                if decoded.is_ascii_alphanumeric() || matches!(decoded, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(decoded));
                } else {
                    out.push_str(&format!("%{decoded:02X}"));
                }
                index += 3;
            }
            None => {
                // A multi-byte char is copied whole; the parser already escaped non-ASCII.
                let end = (index + 1..=bytes.len())
                    .find(|&end| path.is_char_boundary(end))
                    .unwrap_or(bytes.len());
                out.push_str(path.get(index..end).unwrap_or_default());
                index = end;
            }
        }
    }
    // The URL parser resolves `.`, `..` and their `%2e` spellings; one left after decoding
    // could only come from an escape it did not know, and is refused like an encoded `/`.
    if out
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(HttpRefusal::EncodedSeparator);
    }
    Ok(out)
}

fn hex(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// A URL that passed the footprint: normalized, with the rule that allowed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckedUrl {
    url: Url,
    rule: usize,
}

impl CheckedUrl {
    /// The normalized URL: send this one, not the string the graph gave.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// The index in `footprint.http` of the rule that allowed it.
    pub(crate) fn rule(&self) -> usize {
        self.rule
    }

    /// The host to resolve (each resolved address goes through `EgressPolicy::check_addr`).
    pub(crate) fn host(&self) -> Option<Host<&str>> {
        self.url.host()
    }

    /// The port, explicit or the scheme's default.
    pub(crate) fn port(&self) -> Option<u16> {
        self.url.port_or_known_default()
    }
}

impl Footprint {
    /// Checks one HTTP request against the footprint's rules.
    pub(crate) fn check_http(&self, method: &str, url: &str) -> Result<CheckedUrl, Denied> {
        let refused = |url: &str, reason| Denied::Http {
            method: shown(method),
            url: shown(url),
            reason,
        };
        let normalized = normalize(url).map_err(|reason| refused(url, reason))?;
        match self.match_rules(method, &normalized) {
            Ok(rule) => Ok(CheckedUrl {
                url: normalized,
                rule,
            }),
            Err(reason) => Err(refused(normalized.as_str(), reason)),
        }
    }

    /// Checks a redirect hop: `location` resolved against the URL that answered with it, then
    /// the same check as [`Footprint::check_http`], with the method the next request will use.
    pub(crate) fn check_redirect(
        &self,
        method: &str,
        previous: &CheckedUrl,
        location: &str,
    ) -> Result<CheckedUrl, Denied> {
        let refused = |url: &str, reason| Denied::Http {
            method: shown(method),
            url: shown(url),
            reason,
        };
        if location.len() > MAX_URL_BYTES {
            let length = location.len();
            return Err(refused(location, HttpRefusal::TooLong { length }));
        }
        let joined = previous.url.join(location).map_err(|error| {
            let reason = error.to_string();
            refused(location, HttpRefusal::Invalid { reason })
        })?;
        self.check_http(method, joined.as_str())
    }

    /// The index of the first rule that allows the request, or why none does.
    fn match_rules(&self, method: &str, url: &Url) -> Result<usize, HttpRefusal> {
        if !METHODS.contains(&method) {
            return Err(HttpRefusal::Method);
        }
        let mut closest: Option<(usize, RulePart)> = None;
        for (index, rule) in self.http.iter().enumerate() {
            match rule.first_mismatch(method, url) {
                None => return Ok(index),
                Some(part) if closest.is_none_or(|(_, best)| part > best) => {
                    closest = Some((index, part));
                }
                Some(_) => {}
            }
        }
        Err(HttpRefusal::NoRule {
            closest: closest.map(|(index, _)| index),
            part: closest.map_or(RulePart::Scheme, |(_, part)| part),
            suggestion: suggest_rule(method, url),
        })
    }
}

impl HttpRule {
    /// The first part (in [`RulePart`] order) that does not match, or `None` if all do.
    fn first_mismatch(&self, method: &str, url: &Url) -> Option<RulePart> {
        if url.scheme() != self.scheme {
            return Some(RulePart::Scheme);
        }
        let host_matches = match (&self.host, url.host()) {
            (HostPattern::Exact(expected), Some(host)) => host.to_owned() == *expected,
            (HostPattern::Subdomains(suffix), Some(Host::Domain(domain))) => domain
                .strip_suffix(suffix.as_str())
                .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
            _ => false,
        };
        if !host_matches {
            return Some(RulePart::Host);
        }
        if url.port_or_known_default() != Some(self.port) {
            return Some(RulePart::Port);
        }
        if !path_allowed(&self.path_prefix, url.path()) {
            return Some(RulePart::Path);
        }
        if method != self.method {
            return Some(RulePart::Method);
        }
        None
    }
}

impl HttpRule {
    /// Whether every request this rule allows, `ceiling` allows too (a tenant's footprint
    /// ceiling): the same method, scheme and port, a host the ceiling's pattern covers, and a
    /// path prefix at or below the ceiling's.
    pub(crate) fn within(&self, ceiling: &HttpRule) -> bool {
        let below = |name: &str, suffix: &str| {
            name.strip_suffix(suffix)
                .is_some_and(|label| label.len() > 1 && label.ends_with('.'))
        };
        let host = match (&self.host, &ceiling.host) {
            (HostPattern::Exact(a), HostPattern::Exact(b)) => a == b,
            (HostPattern::Exact(Host::Domain(name)), HostPattern::Subdomains(suffix)) => {
                below(name, suffix)
            }
            (HostPattern::Subdomains(inner), HostPattern::Subdomains(suffix)) => {
                inner == suffix || below(inner, suffix)
            }
            _ => false,
        };
        self.method == ceiling.method
            && self.scheme == ceiling.scheme
            && self.port == ceiling.port
            && host
            && path_allowed(&ceiling.path_prefix, &self.path_prefix)
    }
}

/// `path` is `prefix` or below it, on segment boundaries.
fn path_allowed(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Parses and normalizes a request URL (see the module invariants).
pub(crate) fn normalize(url: &str) -> Result<Url, HttpRefusal> {
    if url.len() > MAX_URL_BYTES {
        return Err(HttpRefusal::TooLong { length: url.len() });
    }
    let mut parsed = Url::parse(url).map_err(|error| HttpRefusal::Invalid {
        reason: error.to_string(),
    })?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(HttpRefusal::Scheme);
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(HttpRefusal::Userinfo);
    }
    if parsed.fragment().is_some() {
        return Err(HttpRefusal::Fragment);
    }
    match parsed.host() {
        None => {
            return Err(HttpRefusal::Invalid {
                reason: "no host".to_string(),
            });
        }
        Some(Host::Domain(domain)) if domain.ends_with('.') => {
            return Err(HttpRefusal::TrailingDot);
        }
        Some(_) => {}
    }
    let path = normalize_path(parsed.path())?;
    if path != parsed.path() {
        parsed.set_path(&path);
    }
    Ok(parsed)
}

/// A rule, as footprint JSON, that allows exactly this request's destination and path.
fn suggest_rule(method: &str, url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or_default();
    format!(
        "{{\"method\": \"{}\", \"scheme\": \"{}\", \"host\": \"{}\", \"port\": {port}, \
         \"path_prefix\": \"{}\"}}",
        json_escape(&shown(method)),
        url.scheme(),
        json_escape(&shown(host)),
        json_escape(&shown(url.path()))
    )
}
