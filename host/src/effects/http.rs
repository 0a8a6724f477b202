//! The HTTP runner: reqwest with connect and total timeouts, a body cap, no proxies, and
//! redirects followed by hand so that every hop passes the footprint and the egress policy.
//!
//! Invariants:
//! - The URL sent is the footprint's normalized one, never the graph's string.
//! - The host name is resolved once per hop; every resolved address passes
//!   [`EgressPolicy::check_addr`], and the connection may go only to those addresses (the
//!   client is pinned to them), so a DNS answer that changes after the check cannot redirect
//!   the request (no rebinding).
//! - Proxies from the environment are ignored; redirects are never followed by reqwest.
//! - A body is read in chunks and abandoned at the cap: the host never holds more than the
//!   cap plus one chunk.
//! - `https` goes through rustls (ring provider, TLS 1.2 and 1.3), verifying the server's
//!   certificate against Mozilla's roots (`webpki-roots`, built in: the host's certificate
//!   store plays no part) plus any roots the host's configuration adds. A certificate that
//!   does not verify is a connection error; nothing is sent in clear instead.
//! - A graph's headers never include one the sandbox owns ([`refused_header`]), nor a value
//!   with a control character; on a redirect to another origin, `authorization` and `cookie`
//!   are dropped (the new origin passed the footprint, but was not the one the credential was
//!   written for), as browsers and curl do.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::call::EffectError;
use crate::footprint::{CheckedUrl, Denied, EgressPolicy, Footprint};

/// How the runner connects, and what it accepts.
#[derive(Clone, Debug)]
pub(crate) struct HttpConfig {
    /// Limit for opening a connection.
    pub(crate) connect_timeout: Duration,
    /// Limit for one request, redirects included (the run's deadline may be shorter).
    pub(crate) total_timeout: Duration,
    /// The most body bytes one response may carry.
    pub(crate) max_body_bytes: u64,
    /// The most redirects one request follows.
    pub(crate) max_redirects: u32,
    /// Which resolved addresses requests may reach.
    pub(crate) egress: EgressPolicy,
    /// TLS for `https`: rustls with the roots it trusts. `None` only if rustls could not be
    /// configured at all; then every request fails to connect, never a panic.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(30),
            max_body_bytes: 16 << 20,
            max_redirects: 5,
            egress: EgressPolicy::default(),
            tls: tls_config(&[]).ok().map(Arc::new),
        }
    }
}

/// rustls with the ring provider, Mozilla's roots and `extra_roots` (DER certificates); `Err`
/// names a certificate that is not one.
pub(crate) fn tls_config(extra_roots: &[Vec<u8>]) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for (i, der) in extra_roots.iter().enumerate() {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| format!("extra root certificate {i}: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Why a graph may not set the header `name` (lower-cased), or `None` when it may.
///
/// The sandbox owns the request's framing and routing: `host` (the footprint checked the URL's
/// host, and a different `Host` would reach another virtual host behind the same address),
/// `content-length` and `transfer-encoding` (request smuggling), the hop-by-hop headers of
/// RFC 9110 §7.6.1 (`connection`, `keep-alive`, `te`, `trailer`, `upgrade`, `proxy-*`),
/// `expect`, and the forwarding headers a server may trust for its allow-lists (`forwarded`,
/// `x-forwarded-*`, `x-real-ip`, `via`). A name that is not an HTTP token is refused too.
pub(crate) fn refused_header(name: &str) -> Option<&'static str> {
    let token = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Some("not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)");
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("header names are sent lower-cased");
    }
    match name {
        "host" => Some("the sandbox sends the host the footprint checked"),
        "content-length" | "transfer-encoding" => Some("the sandbox frames the body"),
        "connection" | "keep-alive" | "te" | "trailer" | "upgrade" => {
            Some("a hop-by-hop header belongs to the connection, which the sandbox owns")
        }
        "expect" => Some("the sandbox sends the body without waiting for 100-continue"),
        "forwarded" | "x-real-ip" | "via" => Some("forwarding headers are the proxy's to set"),
        _ if name.starts_with("proxy-") => Some("no proxy is used"),
        _ if name.starts_with("x-forwarded-") => Some("forwarding headers are the proxy's to set"),
        _ => None,
    }
}

/// One request as the guest (or `eval`) made it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) url: String,
    /// `(lower-cased name, value)`.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Vec<u8>>,
    /// Send the response's headers back.
    pub(crate) response_headers: bool,
}

/// A response after redirects, of any status.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// Only when the request asked for them: `(lower-cased name, value)` in the order received.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// The request's headers, checked: none the sandbox owns, no control characters in a value.
fn checked_headers(
    headers: &[(String, String)],
) -> Result<reqwest::header::HeaderMap, EffectError> {
    let mut map = reqwest::header::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let Some(why) = refused_header(name) {
            return Err(EffectError::Other(format!(
                "the header {name:?} cannot be set by a graph: {why}"
            )));
        }
        let bad_value = || {
            EffectError::Other(format!(
                "the header {name:?} has a value with a control character (\\r, \\n, \\0 …); \
                 nothing was sent"
            ))
        };
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(bad_value());
        }
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| EffectError::Other(format!("the header name {name:?}")))?;
        let value = reqwest::header::HeaderValue::from_str(value).map_err(|_| bad_value())?;
        map.append(name, value);
    }
    Ok(map)
}

/// The response's headers as text; a value that is not UTF-8 is a bad answer (it is never
/// altered).
fn response_headers(
    map: &reqwest::header::HeaderMap,
) -> Result<Vec<(String, String)>, EffectError> {
    map.iter()
        .map(|(name, value)| {
            let value = std::str::from_utf8(value.as_bytes()).map_err(|_| {
                EffectError::BadAnswer(format!("the response header {name} is not UTF-8"))
            })?;
            Ok((name.as_str().to_owned(), value.to_owned()))
        })
        .collect()
}

/// The runner: configuration only; a pinned client is built per hop.
#[derive(Clone, Debug, Default)]
pub(crate) struct HttpRunner {
    config: HttpConfig,
}

fn denied(denied: Denied) -> EffectError {
    EffectError::FootprintDenied(format!("{denied}; fix: {}", denied.remediation()))
}

fn classify(error: &reqwest::Error) -> EffectError {
    let message = error.to_string();
    if error.is_timeout() {
        EffectError::Timeout(message)
    } else if error.is_connect() {
        EffectError::Connection(message)
    } else {
        EffectError::Other(message)
    }
}

impl HttpRunner {
    pub(crate) fn new(config: HttpConfig) -> HttpRunner {
        HttpRunner { config }
    }

    /// Sends `request` within `timeout`; the final status (2xx or not), headers (if asked)
    /// and body, after redirects. Refusals by the footprint, the header rules or the egress
    /// policy never send.
    pub(crate) async fn request(
        &self,
        footprint: &Footprint,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, EffectError> {
        let deadline = Instant::now() + timeout.min(self.config.total_timeout);
        let mut checked = footprint
            .check_http(&request.method, &request.url)
            .map_err(denied)?;
        let mut headers = checked_headers(&request.headers)?;
        let mut method = request.method;
        let mut body = request.body;
        for hop in 0..=self.config.max_redirects {
            let addrs = self.resolve(&checked, deadline).await?;
            let response = self
                .send(&checked, &addrs, &method, &headers, body.clone(), deadline)
                .await?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get(reqwest::header::LOCATION)
            {
                if hop == self.config.max_redirects {
                    return Err(EffectError::Other(format!(
                        "more than {} redirects",
                        self.config.max_redirects
                    )));
                }
                let location = location.to_str().map_err(|_| {
                    EffectError::Other("a redirect location that is not text".into())
                })?;
                // 303, and 301/302 after a POST, continue as GET without a body (as browsers do).
                if status == reqwest::StatusCode::SEE_OTHER
                    || (method == "POST" && matches!(status.as_u16(), 301 | 302))
                {
                    method = "GET".to_owned();
                    body = None;
                    headers.remove(reqwest::header::CONTENT_TYPE);
                }
                let next = footprint
                    .check_redirect(&method, &checked, location)
                    .map_err(denied)?;
                if next.url().origin() != checked.url().origin() {
                    headers.remove(reqwest::header::AUTHORIZATION);
                    headers.remove(reqwest::header::COOKIE);
                }
                checked = next;
                continue;
            }
            let response_headers = if request.response_headers {
                response_headers(response.headers())?
            } else {
                Vec::new()
            };
            let bytes = self.read_body(response, deadline).await?;
            return Ok(Response {
                status: status.as_u16(),
                headers: response_headers,
                body: bytes,
            });
        }
        Err(EffectError::Other("redirect loop".into()))
    }

    /// The addresses `checked`'s host resolves to, every one allowed by the egress policy.
    async fn resolve(
        &self,
        checked: &CheckedUrl,
        deadline: Instant,
    ) -> Result<Vec<SocketAddr>, EffectError> {
        let host = match checked.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(EffectError::Other("a URL without a host".into())),
        };
        let port = checked
            .port()
            .ok_or_else(|| EffectError::Other("a URL without a port".into()))?;
        let lookup = tokio::net::lookup_host((host.as_str(), port));
        let addrs: Vec<SocketAddr> = tokio::time::timeout_at(deadline, lookup)
            .await
            .map_err(|_| EffectError::Timeout(format!("resolving {host}")))?
            .map_err(|e| EffectError::Connection(format!("resolving {host}: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(EffectError::Connection(format!("{host} has no address")));
        }
        for addr in &addrs {
            self.config.egress.check_addr(addr.ip()).map_err(denied)?;
        }
        Ok(addrs)
    }

    async fn send(
        &self,
        checked: &CheckedUrl,
        addrs: &[SocketAddr],
        method: &str,
        headers: &reqwest::header::HeaderMap,
        body: Option<Vec<u8>>,
        deadline: Instant,
    ) -> Result<reqwest::Response, EffectError> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.config.connect_timeout);
        // Always preconfigured, `http` too: reqwest would otherwise look for a process-wide
        // rustls provider, and panic when there is none.
        let Some(tls) = &self.config.tls else {
            return Err(EffectError::Connection(
                "this host has no TLS configuration".into(),
            ));
        };
        builder = builder.tls_backend_preconfigured((**tls).clone());
        if let Some(url::Host::Domain(domain)) = checked.host() {
            builder = builder.resolve_to_addrs(domain, addrs);
        }
        let client = builder
            .build()
            .map_err(|e| EffectError::Other(format!("building the HTTP client: {e}")))?;
        if !matches!(checked.url().scheme(), "http" | "https") {
            return Err(EffectError::Connection(format!(
                "scheme {} is not available",
                checked.url().scheme()
            )));
        }
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| EffectError::Other(format!("method {method:?}")))?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let mut request = client
            .request(method, checked.url().clone())
            .headers(headers.clone())
            .timeout(remaining);
        if let Some(body) = body {
            request = request.body(body);
        }
        tokio::time::timeout_at(deadline, request.send())
            .await
            .map_err(|_| EffectError::Timeout("the request passed its deadline".into()))?
            .map_err(|e| classify(&e))
    }

    async fn read_body(
        &self,
        mut response: reqwest::Response,
        deadline: Instant,
    ) -> Result<Vec<u8>, EffectError> {
        let cap = self.config.max_body_bytes;
        if let Some(length) = response.content_length()
            && length > cap
        {
            return Err(EffectError::BodyTooLarge(0));
        }
        let mut body = Vec::new();
        loop {
            let chunk = tokio::time::timeout_at(deadline, response.chunk())
                .await
                .map_err(|_| EffectError::Timeout("reading the body passed its deadline".into()))?
                .map_err(|e| classify(&e))?;
            let Some(chunk) = chunk else {
                return Ok(body);
            };
            if body.len() as u64 + chunk.len() as u64 > cap {
                return Err(EffectError::BodyTooLarge(
                    body.len() as u64 + chunk.len() as u64,
                ));
            }
            body.extend_from_slice(&chunk);
        }
    }
}

/// What the HTTP driver assumes (seed 6.3; the assumption inventory).
pub(crate) const ASSUMPTIONS: &[crate::assumptions::Assumption] =
    &[crate::assumptions::Assumption {
        component: "http",
        assumption: "reqwest/hyper implement HTTP/1.1 correctly and connect only to the addresses \
                 they are pinned to; DNS answers are checked before use; rustls (ring) verifies \
                 https servers against webpki-roots' Mozilla set plus the configured roots",
        failure_mode: "a request reaches an undeclared or internal address",
        mitigation: "footprint check after normalization and on every redirect; egress policy on \
                 every resolved address; pinned resolution; no proxies; body cap",
        properties: &["Footprint!NoUndeclaredEffect"],
    }];
