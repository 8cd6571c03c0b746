//! The HTTP/2 connections of the gRPC side: one per endpoint, opened lazily by the dialer
//! (TCP, TLS, or a unix socket), forgotten when broken or after a timeout; the headers of a
//! call.

use crate::endpoint::Endpoint;
use crate::error::{connect_error, tls_cause, Error};
use crate::route::Attempt;
use crate::tls::{Dialer, Io};
use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use h2::SendStream;
use http::header::{HeaderName, CONTENT_TYPE, TE};
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Uri};
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

/// HTTP/2 flow-control windows: large enough that a big range answer is not throttled
/// by window updates on a fast link (the default 64 KiB stream window costs round trips).
const STREAM_WINDOW: u32 = 4 << 20;
const CONNECTION_WINDOW: u32 = 8 << 20;

/// The most a stream buffers unsent before a send waits for the server to read.
const SEND_BUFFER: usize = 1 << 20;

/// `token` metadata: the auth token.
const TOKEN: HeaderName = HeaderName::from_static("token");
/// `hasleader` metadata: a member without a leader must refuse at once.
const HAS_LEADER: HeaderName = HeaderName::from_static("hasleader");

/// The gRPC side of a transport: one HTTP/2 connection per endpoint, kept by the
/// endpoint ([`Slot`]).
pub(crate) struct Grpc {
    dialer: Dialer,
    generation: std::sync::atomic::AtomicU64,
    /// The message size limit.
    pub(super) max_message: usize,
    /// How long a step with no deadline of its own may take (a stream's send, the version
    /// probe): the request timeout, 10 s when unlimited.
    pub(super) step_timeout: Duration,
}

/// Where an endpoint keeps its HTTP/2 connection.
#[derive(Default)]
pub(crate) struct Slot {
    /// The connection, until it breaks or is forgotten.
    conn: Mutex<Option<Conn>>,
    /// Held while connecting, so that concurrent first calls open one connection.
    connecting: tokio::sync::Mutex<()>,
}

/// One HTTP/2 connection.
#[derive(Clone)]
pub(super) struct Conn {
    /// Which connection of the transport this is (to forget this one only).
    pub(super) generation: u64,
    send: SendRequest<Bytes>,
    /// Why the connection ended, once it has: a request on it only learns that it was
    /// closed, while the cause (a certificate refused after the handshake...) is here.
    ended: Arc<OnceLock<ConnectionEnded>>,
}

/// The error that ended a connection.
#[derive(Debug, Clone)]
struct ConnectionEnded(Arc<h2::Error>);

impl std::fmt::Display for ConnectionEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the connection ended: {}", self.0)
    }
}

impl std::error::Error for ConnectionEnded {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // h2's error hides the I/O error it wraps from `source()`.
        match self.0.get_io() {
            Some(io) => Some(io),
            None => Some(&*self.0),
        }
    }
}

/// What every request carries besides its message.
#[derive(Clone, Default)]
pub(super) struct Metadata {
    /// The auth token (`token` metadata).
    token: Option<HeaderValue>,
    /// Whether a member without a leader must refuse at once (`hasleader` metadata).
    require_leader: bool,
}

impl Metadata {
    /// What an attempt's requests carry.
    pub(super) fn of(at: &Attempt<'_>) -> Metadata {
        Metadata {
            token: at.token.clone(),
            require_leader: at.require_leader,
        }
    }
}

impl Grpc {
    pub(crate) fn new(dialer: Dialer, max_message: usize, step_timeout: Duration) -> Grpc {
        Grpc {
            dialer,
            generation: std::sync::atomic::AtomicU64::new(0),
            max_message,
            step_timeout,
        }
    }

    fn cached(slot: &Slot) -> Option<Conn> {
        let slot = match slot.conn.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        slot.as_ref().filter(|c| c.ended.get().is_none()).cloned()
    }

    /// Forgets the connection in `slot` if it is still generation `generation` (it broke:
    /// the next call opens a fresh one).
    pub(super) fn forget(slot: &Slot, generation: u64) {
        let mut slot = match slot.conn.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if slot.as_ref().is_some_and(|c| c.generation == generation) {
            *slot = None;
        }
    }

    /// Forgets the connection in `slot`, whichever it is (a call on it timed out: a frozen
    /// server is not asked again on it).
    pub(crate) fn forget_current(slot: &Slot) {
        let mut slot = match slot.conn.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = None;
    }

    /// The connection to `endpoint` (kept in its `slot`), opened (and its driving task
    /// spawned) if needed.
    async fn connection(&self, slot: &Slot, endpoint: &Endpoint) -> Result<Conn, Error> {
        if let Some(conn) = Self::cached(slot) {
            return Ok(conn);
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(conn) = Self::cached(slot) {
            return Ok(conn);
        }
        let io = self
            .dialer
            .dial(endpoint)
            .await
            .map_err(|source| connect_error(&endpoint.base, source))?;
        let io = if endpoint.is_https() {
            first_answer(endpoint, io).await?
        } else {
            Primed {
                first: Bytes::new(),
                io,
            }
        };
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(1 << 20)
            .max_send_buffer_size(SEND_BUFFER)
            .handshake::<_, Bytes>(TokioIo::new(io))
            .await
            .map_err(|e| connect_error(&endpoint.base, Box::new(e)))?;
        let base = endpoint.base.clone();
        let ended = Arc::new(OnceLock::new());
        let cause = ended.clone();
        tokio::spawn(async move {
            let ending = match connection.await {
                Ok(()) => h2::Error::from(h2::Reason::NO_ERROR),
                Err(e) => {
                    tracing::debug!(endpoint = %base, error = %e, "HTTP/2 connection ended");
                    e
                }
            };
            let _ = cause.set(ConnectionEnded(Arc::new(ending)));
        });
        let conn = Conn {
            generation: self
                .generation
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            send,
            ended,
        };
        let mut slot = match slot.conn.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Starts a call on `endpoint` (whose connection is kept in `slot`): its headers go out; the request body is the
    /// returned stream.
    pub(super) async fn start(
        &self,
        slot: &Slot,
        endpoint: &Endpoint,
        method: &'static str,
        metadata: &Metadata,
    ) -> Result<(Conn, ResponseFuture, SendStream<Bytes>), Error> {
        let conn = self.connection(slot, endpoint).await?;
        let unsent = |e: h2::Error| Error::Io {
            endpoint: endpoint.base.clone(),
            outcome_unknown: false,
            source: Box::new(e),
        };
        let ready = conn.send.clone().ready().await;
        let mut send = match ready {
            Ok(send) => send,
            Err(e) => {
                // The connection closed before this call used it: nothing was sent.
                Self::forget(slot, conn.generation);
                return Err(match ended_by_tls(&endpoint.base, &conn).await {
                    Some(tls) => tls,
                    None => unsent(e),
                });
            }
        };
        let request = request(endpoint, method, metadata)?;
        match send.send_request(request, false) {
            Ok((response, body)) => Ok((conn, response, body)),
            Err(e) => {
                Self::forget(slot, conn.generation);
                Err(unsent(e))
            }
        }
    }
}

/// The headers of a call to `method` on `endpoint`.
fn request(
    endpoint: &Endpoint,
    method: &'static str,
    metadata: &Metadata,
) -> Result<http::Request<()>, Error> {
    let mut parts = endpoint.origin.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::from_static(method));
    if parts.scheme.is_none() {
        parts.scheme = Some(Scheme::HTTP);
    }
    let uri = Uri::from_parts(parts)
        .map_err(|e| Error::Config(format!("invalid gRPC method {method:?}: {e}")))?;
    let mut request = http::Request::new(());
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(TE, HeaderValue::from_static("trailers"));
    if let Some(token) = &metadata.token {
        headers.insert(TOKEN, token.clone());
    }
    if metadata.require_leader {
        headers.insert(HAS_LEADER, HeaderValue::from_static("true"));
    }
    Ok(request)
}

/// Waits for the server's first bytes on a fresh TLS connection (a gRPC server sends its
/// HTTP/2 settings first, unasked), and keeps them for h2. Over TLS 1.3 a server that
/// refuses this client's certificate says so only now, with an alert: read here, it is a
/// typed [`Error::TlsHandshake`], rather than a broken pipe once the request is written.
async fn first_answer(endpoint: &Endpoint, io: Io) -> Result<Primed, Error> {
    use tokio::io::AsyncReadExt;
    /// Longer than any loopback or LAN round trip; a server this slow is broken anyway.
    const WAIT: Duration = Duration::from_secs(5);
    let mut io = TokioIo::new(io);
    let mut buf = vec![0u8; 4096];
    let read = tokio::time::timeout(WAIT, io.read(&mut buf))
        .await
        .map_err(|_| Error::Timeout {
            endpoint: endpoint.base.clone(),
            after: WAIT,
            outcome_unknown: false,
        })?;
    match read {
        Ok(0) => Err(Error::Connect {
            endpoint: endpoint.base.clone(),
            source: "the server closed the connection after the TLS handshake".into(),
        }),
        Ok(n) => {
            buf.truncate(n);
            Ok(Primed {
                first: Bytes::from(buf),
                io: io.into_inner(),
            })
        }
        Err(e) => Err(connect_error(&endpoint.base, Box::new(e))),
    }
}

/// A connection whose first bytes were read ahead ([`first_answer`]): they are read first.
struct Primed {
    first: Bytes,
    io: Io,
}

impl hyper::rt::Read for Primed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.first.is_empty() {
            let n = this.first.len().min(buf.remaining());
            buf.put_slice(&this.first.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Primed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

/// A [`Error::TlsHandshake`] when what ended `conn` was TLS (a client certificate the
/// server refused shows as its alert after the handshake, on the connection's own task).
pub(super) async fn ended_by_tls(endpoint: &str, conn: &Conn) -> Option<Error> {
    // The call may learn of the end a moment before the connection's task records why.
    for _ in 0..10 {
        if let Some(ended) = conn.ended.get() {
            return tls_cause(ended).is_some().then(|| Error::TlsHandshake {
                endpoint: endpoint.to_string(),
                source: Box::new(ended.clone()),
            });
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}
