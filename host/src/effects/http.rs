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

    /// Sends `method url` (with `body`) within `timeout`; the final 2xx-or-not status and
    /// body, after redirects. Refusals by the footprint or the egress policy never send.
    pub(crate) async fn request(
        &self,
        footprint: &Footprint,
        method: &str,
        url: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), EffectError> {
        let deadline = Instant::now() + timeout.min(self.config.total_timeout);
        let mut checked = footprint.check_http(method, url).map_err(denied)?;
        let mut method = method.to_owned();
        let mut body = body;
        for hop in 0..=self.config.max_redirects {
            let addrs = self.resolve(&checked, deadline).await?;
            let response = self
                .send(&checked, &addrs, &method, body.clone(), deadline)
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
                }
                checked = footprint
                    .check_redirect(&method, &checked, location)
                    .map_err(denied)?;
                continue;
            }
            let bytes = self.read_body(response, deadline).await?;
            return Ok((status.as_u16(), bytes));
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
