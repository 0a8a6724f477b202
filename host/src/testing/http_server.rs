//! A real HTTP/1.1 server on 127.0.0.1 for driver tests (hyper 1.x), with routes that
//! exercise what an HTTP driver must cope with: fixed JSON, echo, slow and hung answers, large
//! streamed bodies, redirects and arbitrary status codes.
//!
//! Routes (anything else is `404`):
//! - `GET /json`: `200`, `application/json`, the fixed body [`JSON_BODY`].
//! - `ANY /echo`: `200`, a JSON object with the request's `method`, `path`, `query` (or
//!   `null`), `headers` (lower-case names; repeated headers joined with `", "`), `body` (UTF-8,
//!   lossy) and `body_len`.
//! - `/delay/{ms}`: `200` with `{"delayed_ms": ms}` after `ms` milliseconds (and the most of
//!   these in flight at once is recorded: [`TestHttp::most_concurrent_delays`]).
//! - `/hang`: never answers (the connection stays open until the client gives up).
//! - `/big/{bytes}`: `200` with a body of exactly `bytes` bytes (`a`..`z` repeating), streamed in
//!   16 KiB chunks with a `content-length`; `/big/{bytes}?chunked` sends it chunked, with no
//!   length announced.
//! - `/redirect?to=URL`: `302` with `location: URL` (percent-decoded); `400` without `to`.
//! - `/status/{code}`: that status (100–999, else `400`), body `status {code}`.
//! - `POST /pricing`: a pricing API for the orders example. The request needs
//!   `x-api-key: test-key` (else `401 {"error":"bad key"}`) and a JSON body
//!   `{"customer": string, "total": number}` (else `400 {"error": ...}`); a customer whose name
//!   starts with `unknown` is `404 {"error":"no such customer"}`; any other gets
//!   `200 {"customer": ..., "discount": d}` with `d` = 0.15 for a total of 500 or more, 0.05
//!   for 100 or more, else 0, and an `x-price-rule` header naming the rule.
//!
//! [`TestHttp::start_tls`] serves the same routes over TLS (rustls), with a certificate for
//! `127.0.0.1` and `localhost` signed by a throwaway CA made at start ([`TestHttp::ca_der`]).
//!
//! Invariants:
//! - Reachable from this machine only: it binds 127.0.0.1, never another interface.
//! - Every request that reaches the server is counted ([`TestHttp::requests`]) and logged as
//!   `METHOD /path?query` ([`TestHttp::request_log`]) before it is routed, so a test can assert
//!   that a denied call never arrived.
//! - The server runs on its own thread with its own single-threaded tokio runtime: sync tests
//!   and async tests (any runtime flavour) use it alike, and it never competes with the test's
//!   runtime. Dropping [`TestHttp`] shuts it down and closes every connection, hung ones too.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// The body of `GET /json`.
pub const JSON_BODY: &str = r#"{"name":"graphjit","ok":true,"n":42,"items":[1,2,3]}"#;

/// Chunk size of `/big` bodies: small enough that a client cap is hit mid-stream.
const BIG_CHUNK: usize = 16 * 1024;

/// A running test server; dropping it stops the server.
#[derive(Debug)]
pub struct TestHttp {
    addr: SocketAddr,
    /// The CA that signed the server's certificate (TLS mode only), DER.
    ca: Option<Vec<u8>>,
    seen: Arc<Seen>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What reached the server.
#[derive(Debug, Default)]
struct Seen {
    count: AtomicU64,
    log: Mutex<Vec<String>>,
    /// `/delay` requests being answered right now, and the most there ever were at once.
    delaying: AtomicU64,
    most_delaying: AtomicU64,
}

impl TestHttp {
    /// Starts the server on a free loopback port.
    ///
    /// # Panics
    /// If no loopback port or thread can be had: a broken test machine, reported as a failed
    /// test (see [`TestHttp::try_start`] to handle it instead).
    pub fn start() -> TestHttp {
        match Self::try_start() {
            Ok(server) => server,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts the server over TLS on a free loopback port: `https://127.0.0.1:PORT`, with a
    /// certificate signed by a CA made for this server alone ([`TestHttp::ca_der`]).
    ///
    /// # Panics
    /// As [`TestHttp::start`].
    pub fn start_tls() -> TestHttp {
        match tls_identity()
            .and_then(|(acceptor, ca)| Self::try_start_with(Some(acceptor), Some(ca)))
        {
            Ok(server) => server,
            Err(e) => panic!("{e}"),
        }
    }

    /// The CA certificate (DER) a client must trust to reach a [`TestHttp::start_tls`] server.
    pub fn ca_der(&self) -> Option<&[u8]> {
        self.ca.as_deref()
    }

    /// Starts the server on a free loopback port.
    pub fn try_start() -> Result<TestHttp, String> {
        Self::try_start_with(None, None)
    }

    fn try_start_with(
        tls: Option<tokio_rustls::TlsAcceptor>,
        ca: Option<Vec<u8>>,
    ) -> Result<TestHttp, String> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound port: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("cannot make the listener non-blocking: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot build the server's runtime: {e}"))?;
        let seen = Arc::new(Seen::default());
        let (shutdown, stop) = oneshot::channel();
        let thread_seen = Arc::clone(&seen);
        let thread = std::thread::Builder::new()
            .name(format!("graphjit-test-http-{}", addr.port()))
            .spawn(move || {
                // Dropping the runtime at the end of this closure cancels every connection task.
                runtime.block_on(serve(listener, tls, thread_seen, stop));
            })
            .map_err(|e| format!("cannot spawn the server thread: {e}"))?;
        Ok(TestHttp {
            addr,
            ca,
            seen,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`, or `https://…` in TLS mode (no trailing slash).
    pub fn base_url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests have reached the server (counted before routing).
    pub fn requests(&self) -> u64 {
        self.seen.count.load(Ordering::SeqCst)
    }

    /// The most `/delay/{ms}` requests the server was answering at the same time: 1 for
    /// requests that came one after another, more when a client sent them concurrently.
    pub fn most_concurrent_delays(&self) -> u64 {
        self.seen.most_delaying.load(Ordering::SeqCst)
    }

    /// Every request so far, in arrival order, as `METHOD /path?query`.
    pub fn request_log(&self) -> Vec<String> {
        self.seen
            .log
            .lock()
            .map(|log| log.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

impl Drop for TestHttp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A throwaway CA, and a TLS acceptor whose certificate (for 127.0.0.1 and localhost) it
/// signed.
fn tls_identity() -> Result<(tokio_rustls::TlsAcceptor, Vec<u8>), String> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
    let fail = |e: rcgen::Error| format!("making the test certificates: {e}");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(fail)?)
        .map_err(fail)?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).map_err(fail)?;
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V4(
            Ipv4Addr::LOCALHOST,
        )));
    let leaf_key = KeyPair::generate().map_err(fail)?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca).map_err(fail)?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der())
        .map_err(|e| format!("the test key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(vec![leaf_cert.der().clone()], key)
        .map_err(|e| format!("the test certificate: {e}"))?;
    Ok((
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca.der().to_vec(),
    ))
}

async fn serve(
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    seen: Arc<Seen>,
    mut stop: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => {
                // A failed accept (out of file descriptors, a reset) drops that one connection.
                let Ok((stream, _)) = accepted else { continue };
                let seen = Arc::clone(&seen);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| route(request, Arc::clone(&seen)));
                    let http = hyper::server::conn::http1::Builder::new();
                    // A client that hangs up mid-request (or mid-handshake) is normal here.
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        }
    }
}

async fn route(
    request: Request<Incoming>,
    seen: Arc<Seen>,
) -> Result<Response<TestBody>, Infallible> {
    let target = match request.uri().query() {
        Some(query) => format!("{} {}?{query}", request.method(), request.uri().path()),
        None => format!("{} {}", request.method(), request.uri().path()),
    };
    seen.count.fetch_add(1, Ordering::SeqCst);
    match seen.log.lock() {
        Ok(mut log) => log.push(target),
        Err(poisoned) => poisoned.into_inner().push(target),
    }

    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let response = match segments.as_slice() {
        ["json"] => json(StatusCode::OK, JSON_BODY.to_string()),
        ["echo"] => echo(request).await,
        ["delay", ms] => match ms.parse::<u64>() {
            Ok(ms) => {
                let now = seen.delaying.fetch_add(1, Ordering::SeqCst) + 1;
                seen.most_delaying.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                seen.delaying.fetch_sub(1, Ordering::SeqCst);
                json(StatusCode::OK, format!(r#"{{"delayed_ms":{ms}}}"#))
            }
            Err(_) => text(StatusCode::BAD_REQUEST, "delay takes milliseconds"),
        },
        ["hang"] => std::future::pending().await,
        ["big", bytes] => match bytes.parse::<u64>() {
            Ok(total) => {
                let exact = query.as_deref() != Some("chunked");
                let mut response = Response::new(TestBody::Pattern {
                    sent: 0,
                    total,
                    exact,
                });
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                response
            }
            Err(_) => text(StatusCode::BAD_REQUEST, "big takes a byte count"),
        },
        ["redirect"] => redirect(query.as_deref()),
        ["pricing"] => pricing(request).await,
        ["status", code] => match code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(status) => text(status, &format!("status {}", status.as_u16())),
            None => text(
                StatusCode::BAD_REQUEST,
                "status takes a code from 100 to 999",
            ),
        },
        _ => text(StatusCode::NOT_FOUND, "no such route"),
    };
    Ok(response)
}

async fn pricing(request: Request<Incoming>) -> Response<TestBody> {
    let error =
        |status, message: &str| json(status, serde_json::json!({ "error": message }).to_string());
    if request.method() != hyper::Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "POST only");
    }
    let key_ok = request
        .headers()
        .get("x-api-key")
        .is_some_and(|k| k.as_bytes() == b"test-key");
    if !key_ok {
        return error(StatusCode::UNAUTHORIZED, "bad key");
    }
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body: {e}"),
            );
        }
    };
    let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&body);
    let (customer, total) = match &parsed {
        Ok(v) => match (v["customer"].as_str(), v["total"].as_f64()) {
            (Some(c), Some(t)) => (c.to_owned(), t),
            _ => return error(StatusCode::BAD_REQUEST, "needs customer and total"),
        },
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("not JSON: {e}")),
    };
    if customer.starts_with("unknown") {
        return error(StatusCode::NOT_FOUND, "no such customer");
    }
    let (discount, rule) = if total >= 500.0 {
        (0.15, "gold")
    } else if total >= 100.0 {
        (0.05, "silver")
    } else {
        (0.0, "none")
    };
    let mut response = json(
        StatusCode::OK,
        serde_json::json!({ "customer": customer, "discount": discount }).to_string(),
    );
    response
        .headers_mut()
        .insert("x-price-rule", HeaderValue::from_static(rule));
    response
}

async fn echo(request: Request<Incoming>) -> Response<TestBody> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body: {e}"),
            );
        }
    };
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let joined = match headers.remove(name.as_str()) {
            Some(serde_json::Value::String(earlier)) => format!("{earlier}, {value}"),
            _ => value,
        };
        headers.insert(name.as_str().to_string(), serde_json::Value::String(joined));
    }
    let echoed = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "body_len": body.len(),
    });
    json(StatusCode::OK, echoed.to_string())
}

fn redirect(query: Option<&str>) -> Response<TestBody> {
    let target = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("to="))
        .map(percent_decode);
    let Some(target) = target else {
        return text(StatusCode::BAD_REQUEST, "redirect takes ?to=URL");
    };
    let Ok(location) = HeaderValue::from_str(&target) else {
        return text(
            StatusCode::BAD_REQUEST,
            "the redirect target is not a valid header value",
        );
    };
    let mut response = text(StatusCode::FOUND, "redirecting");
    response.headers_mut().insert(LOCATION, location);
    response
}

/// `%XX` escapes decoded (invalid escapes kept as written); `+` is left alone.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json(status: StatusCode, body: String) -> Response<TestBody> {
    let mut response = Response::new(TestBody::Full(Some(Bytes::from(body))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn text(status: StatusCode, body: &str) -> Response<TestBody> {
    let mut response = Response::new(TestBody::Full(Some(Bytes::from(body.to_string()))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Response bodies: a buffer sent at once, or a pattern generated chunk by chunk as the client
/// reads (so a client that stops reading stops the generation).
enum TestBody {
    Full(Option<Bytes>),
    Pattern { sent: u64, total: u64, exact: bool },
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            TestBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            TestBody::Pattern { sent, total, .. } => {
                let left = total.saturating_sub(*sent);
                if left == 0 {
                    return Poll::Ready(None);
                }
                let len = usize::try_from(left).map_or(BIG_CHUNK, |left| left.min(BIG_CHUNK));
                let start = *sent;
                let chunk: Vec<u8> = (start..start + len as u64)
                    .map(|i| b'a' + (i % 26) as u8)
                    .collect();
                *sent += len as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            TestBody::Full(bytes) => bytes.is_none(),
            TestBody::Pattern { sent, total, .. } => sent >= total,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            TestBody::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            TestBody::Full(None) => SizeHint::with_exact(0),
            TestBody::Pattern {
                sent,
                total,
                exact: true,
            } => SizeHint::with_exact(total - sent),
            TestBody::Pattern { exact: false, .. } => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// One raw HTTP/1.1 exchange (`connection: close`), so the test server is checked by a
    /// client that shares no code with it. Returns the status line, lower-cased headers and body.
    fn exchange(server: &TestHttp, request: &str) -> (String, String, Vec<u8>) {
        let mut stream = TcpStream::connect(server.addr()).unwrap_or_else(|e| panic!("{e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap_or_else(|e| panic!("{e}"));
        stream
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("{e}"));
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end"));
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let body = raw[split + 4..].to_vec();
        let (status, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
        (status.to_string(), headers.to_lowercase(), body)
    }

    fn get(server: &TestHttp, target: &str) -> (String, String, Vec<u8>) {
        exchange(
            server,
            &format!("GET {target} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n"),
        )
    }

    #[test]
    fn json_route() {
        let server = TestHttp::start();
        let (status, headers, body) = get(&server, "/json");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(headers.contains("content-type: application/json"));
        assert_eq!(body, JSON_BODY.as_bytes());
        assert!(server.base_url().starts_with("http://127.0.0.1:"));
    }

    #[test]
    fn echo_route() {
        let server = TestHttp::start();
        let (status, _, body) = exchange(
            &server,
            "POST /echo?a=1 HTTP/1.1\r\nhost: test\r\nx-test: one\r\nx-test: two\r\n\
             content-length: 5\r\nconnection: close\r\n\r\nhello",
        );
        assert_eq!(status, "HTTP/1.1 200 OK");
        let echoed: serde_json::Value =
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(echoed["method"], "POST");
        assert_eq!(echoed["path"], "/echo");
        assert_eq!(echoed["query"], "a=1");
        assert_eq!(echoed["headers"]["x-test"], "one, two");
        assert_eq!(echoed["body"], "hello");
        assert_eq!(echoed["body_len"], 5);
    }

    #[test]
    fn delay_route_waits() {
        let server = TestHttp::start();
        let started = std::time::Instant::now();
        let (status, _, body) = get(&server, "/delay/200");
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, br#"{"delayed_ms":200}"#);
    }

    #[test]
    fn hang_route_never_answers_and_drop_closes_it() {
        let server = TestHttp::start();
        let mut stream = TcpStream::connect(server.addr()).unwrap_or_else(|e| panic!("{e}"));
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap_or_else(|e| panic!("{e}"));
        stream
            .write_all(b"GET /hang HTTP/1.1\r\nhost: test\r\n\r\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut buf = [0u8; 16];
        let read = stream.read(&mut buf);
        assert!(read.is_err(), "a hung route answered: {read:?}");
        assert_eq!(server.requests(), 1);
        drop(server);
        // The server is gone: the hung connection is closed, not left dangling.
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(stream.read(&mut buf), Ok(0) | Err(_)));
    }

    #[test]
    fn big_route_streams_exactly_that_many_bytes() {
        let server = TestHttp::start();
        let (status, headers, body) = get(&server, "/big/100000");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(headers.contains("content-length: 100000"));
        assert_eq!(body.len(), 100_000);
        assert!(
            body.iter()
                .enumerate()
                .all(|(i, &b)| b == b'a' + (i % 26) as u8)
        );

        let (_, headers, body) = get(&server, "/big/40000?chunked");
        assert!(headers.contains("transfer-encoding: chunked"));
        assert!(!headers.contains("content-length"));
        // Chunked framing around 40000 bytes of payload.
        assert!(body.len() > 40_000);
    }

    #[test]
    fn redirect_and_status_routes() {
        let server = TestHttp::start();
        let (status, headers, _) = get(&server, "/redirect?to=http%3A%2F%2F127.0.0.1%3A1%2Fjson");
        assert_eq!(status, "HTTP/1.1 302 Found");
        assert!(headers.contains("location: http://127.0.0.1:1/json"));
        let (status, _, _) = get(&server, "/redirect");
        assert_eq!(status, "HTTP/1.1 400 Bad Request");
        let (status, _, body) = get(&server, "/status/503");
        assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
        assert_eq!(body, b"status 503");
        let (status, _, _) = get(&server, "/nowhere");
        assert_eq!(status, "HTTP/1.1 404 Not Found");
    }

    #[test]
    fn counts_and_logs_every_request() {
        let server = TestHttp::start();
        assert_eq!(server.requests(), 0);
        get(&server, "/json");
        get(&server, "/status/204");
        get(&server, "/echo?x=1");
        assert_eq!(server.requests(), 3);
        assert_eq!(
            server.request_log(),
            ["GET /json", "GET /status/204", "GET /echo?x=1"]
        );
    }

    #[tokio::test]
    async fn usable_from_an_async_test() {
        let server = TestHttp::start();
        let addr = server.addr();
        let body = tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
            stream
                .write_all(b"GET /json HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
                .unwrap_or_else(|e| panic!("{e}"));
            let mut raw = String::new();
            stream
                .read_to_string(&mut raw)
                .unwrap_or_else(|e| panic!("{e}"));
            raw
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(body.ends_with(JSON_BODY));
        drop(server);
    }
}
