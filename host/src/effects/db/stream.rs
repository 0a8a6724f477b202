//! The connection under every PostgreSQL client: a socket that reads the server's messages
//! with a bound on each one's size, so that one huge value (a 400 MB cell) is refused as its
//! length arrives, before the driver has buffered any of it.
//!
//! Why here: tokio-postgres reads each backend message whole into memory before the runner
//! sees a row, so the runner's byte cap alone counts a cell only after it was held.
//!
//! Invariants:
//! - Every server message is a type byte and a four-byte big-endian length (which counts
//!   itself); the connection never asks for TLS (`NoTls`, so no single-byte `SSLRequest`
//!   answer precedes them), so the whole stream is such messages.
//! - A message longer than the bound ends the connection with an I/O error that names it
//!   ([`OVERSIZED`]); the runner reports it as its byte limit, and the pool drops the
//!   connection.
//! - Knows nothing of SQL, graphs or footprints.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use deadpool_postgres::Connect;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls};

/// What the I/O error of an oversized message says (matched by the runner's classification).
pub(crate) const OVERSIZED: &str = "graphjit: a server message exceeds the byte cap";

/// The per-message bound: the result byte cap plus room for a row's framing and small cells.
pub(crate) fn message_cap(max_bytes: usize) -> u64 {
    (max_bytes as u64).saturating_add(1 << 20)
}

/// A stream that refuses any server message over `cap` bytes as soon as its header is read.
pub(crate) struct Bounded<S> {
    inner: S,
    cap: u64,
    /// Counts refusals, for the runner to tell a refused message from a dropped connection
    /// (the driver reports both as "connection closed").
    oversized: Arc<AtomicU64>,
    /// Header bytes of the current message seen so far (type + length).
    header: [u8; 5],
    header_len: usize,
    /// Body bytes of the current message still to come.
    body_left: u64,
}

impl<S> Bounded<S> {
    pub(crate) fn new(inner: S, cap: u64, oversized: Arc<AtomicU64>) -> Bounded<S> {
        Bounded {
            inner,
            cap,
            oversized,
            header: [0; 5],
            header_len: 0,
            body_left: 0,
        }
    }

    /// Follows the message framing over `bytes` just read; `Err` at an oversized message.
    fn track(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let take = usize::try_from(self.body_left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                self.body_left -= take as u64;
                bytes = &bytes[take..];
                continue;
            }
            let take = (5 - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
            self.header_len += take;
            bytes = &bytes[take..];
            if self.header_len == 5 {
                let length = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]);
                // The length counts its own four bytes.
                let body = u64::from(length).saturating_sub(4);
                if body > self.cap {
                    self.oversized.fetch_add(1, Ordering::Relaxed);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{OVERSIZED} ({body} bytes, cap {})", self.cap),
                    ));
                }
                self.body_left = body;
                self.header_len = 0;
            }
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Bounded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = buf.filled()[before..].to_vec();
                Poll::Ready(this.track(&fresh))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Bounded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Connects pools through [`Bounded`] sockets (TCP or Unix, the config's first host).
#[derive(Clone)]
pub(crate) struct BoundedConnect {
    pub(crate) cap: u64,
    pub(crate) connect_timeout: Duration,
    pub(crate) oversized: Arc<AtomicU64>,
}

type Connected = Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>;

impl Connect for BoundedConnect {
    fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> Pin<Box<dyn Future<Output = Connected> + Send + '_>> {
        let config = config.clone();
        Box::pin(async move {
            let port = config.get_ports().first().copied().unwrap_or(5432);
            match config.get_hosts().first() {
                Some(Host::Tcp(host)) => {
                    let socket = tokio::net::TcpStream::connect((host.as_str(), port));
                    let socket = self.within_timeout(&config, socket).await?;
                    let _ = socket.set_nodelay(true);
                    self.start(&config, socket).await
                }
                #[cfg(unix)]
                Some(Host::Unix(dir)) => {
                    let socket =
                        tokio::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}")));
                    let socket = self.within_timeout(&config, socket).await?;
                    self.start(&config, socket).await
                }
                _ => Err(failed(&config, io::Error::other("no host to connect to")).await),
            }
        })
    }
}

impl BoundedConnect {
    /// A pool of at most `size` connections made with `config` through this connector, each
    /// recycled by `recycling`.
    pub(crate) fn pool(
        &self,
        config: tokio_postgres::Config,
        size: usize,
        recycling: deadpool_postgres::RecyclingMethod,
    ) -> Result<deadpool_postgres::Pool, super::DbError> {
        let manager = deadpool_postgres::Manager::from_connect(
            config,
            self.clone(),
            deadpool_postgres::ManagerConfig {
                recycling_method: recycling,
            },
        );
        deadpool_postgres::Pool::builder(manager)
            .max_size(size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(self.connect_timeout))
            .build()
            .map_err(|e| super::DbError::Config {
                message: e.to_string(),
            })
    }

    /// The socket `connecting` opens, within the connect timeout.
    async fn within_timeout<S>(
        &self,
        config: &tokio_postgres::Config,
        connecting: impl Future<Output = io::Result<S>>,
    ) -> Result<S, tokio_postgres::Error> {
        match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(socket)) => Ok(socket),
            Ok(Err(e)) => Err(failed(config, e).await),
            Err(_) => Err(failed(config, io::ErrorKind::TimedOut.into()).await),
        }
    }

    /// The driver's start-up over `socket`, read through [`Bounded`].
    async fn start<S>(&self, config: &tokio_postgres::Config, socket: S) -> Connected
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let bounded = Bounded::new(socket, self.cap, Arc::clone(&self.oversized));
        let (client, connection) = config.connect_raw(bounded, NoTls).await?;
        Ok((client, spawn(connection)))
    }
}

/// `error` as the driver's own error type (which has no public constructor): the driver's
/// start-up over a stream that fails with it.
async fn failed(config: &tokio_postgres::Config, error: io::Error) -> tokio_postgres::Error {
    match config.connect_raw(Failed(Some(error)), NoTls).await {
        Err(e) => e,
        // A start-up whose every write fails cannot succeed; were it ever to, an invalid
        // configuration is the other public way to the error type (never a panic).
        Ok(_) => invalid_config(),
    }
}

fn invalid_config() -> tokio_postgres::Error {
    let mut text = String::from("port=x");
    loop {
        match text.parse::<tokio_postgres::Config>() {
            Err(e) => return e,
            Ok(_) => text.push('x'),
        }
    }
}

/// A stream whose first read or write fails with its error.
struct Failed(Option<io::Error>);

impl Failed {
    fn error(&mut self) -> io::Error {
        self.0
            .take()
            .unwrap_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl AsyncRead for Failed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(self.error()))
    }
}

impl AsyncWrite for Failed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(self.error()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Err(self.error()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn spawn<F>(connection: F) -> tokio::task::JoinHandle<()>
where
    F: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        // The error reaches the client's pending calls; nothing more to do with it here.
        let _ended = connection.await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(tag: u8, body: usize) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(u32::try_from(body + 4).expect("small")).to_be_bytes());
        m.extend(std::iter::repeat_n(b'x', body));
        m
    }

    #[test]
    fn framing_is_followed_across_any_split_and_big_messages_are_refused() {
        let mut stream = [message(b'D', 10), message(b'C', 0), message(b'D', 100)].concat();
        for split in 1..stream.len() {
            let mut bounded = Bounded::new((), 100, Arc::default());
            for chunk in stream.chunks(split) {
                bounded.track(chunk).expect("within the cap");
            }
            assert_eq!((bounded.header_len, bounded.body_left), (0, 0));
        }
        stream.extend(message(b'D', 101));
        let mut bounded = Bounded::new((), 100, Arc::default());
        let error = bounded.track(&stream).expect_err("over the cap");
        assert!(error.to_string().contains(OVERSIZED), "{error}");
    }
}
