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
    /// HTTP/2 PING interval and timeout, when on.
    keep_alive: Option<(Duration, Duration)>,
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
    /// Held by the endpoint's slot and by each call on the connection: more than one
    /// holder means streams are open (the keep-alive pings only then).
    _users: Arc<()>,
}

/// What ended a connection.
#[derive(Debug, Clone)]
pub(super) struct ConnectionEnded(Arc<Ending>);

#[derive(Debug)]
enum Ending {
    /// The connection failed, or closed.
    H2(h2::Error),
    /// The server did not answer a keep-alive PING in time: closed by the client.
    NoPong(Duration),
}

impl std::fmt::Display for ConnectionEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0 {
            Ending::H2(e) => write!(f, "the connection ended: {e}"),
            Ending::NoPong(timeout) => write!(
                f,
                "the connection was closed: no answer to an HTTP/2 PING within {timeout:?}"
            ),
        }
    }
}

impl std::error::Error for ConnectionEnded {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.0 {
            // h2's error hides the I/O error it wraps from `source()`.
            Ending::H2(e) => match e.get_io() {
                Some(io) => Some(io),
                None => Some(e),
            },
            Ending::NoPong(_) => None,
        }
    }
}

/// Sends a PING every `interval` while streams are open on the connection (etcd, like
/// every gRPC server by default, refuses pings without streams), and gives up on the
/// connection when one goes unanswered for `timeout`.
struct Pinger {
    ping_pong: h2::PingPong,
    users: std::sync::Weak<()>,
    interval: Duration,
    timeout: Duration,
}

impl Pinger {
    /// Why the connection must close, or `None` once nothing holds it any more.
    async fn run(mut self) -> Option<Ending> {
        loop {
            tokio::time::sleep(self.interval).await;
            match self.users.strong_count() {
                0 => return None,
                // Only the endpoint's slot: no stream open.
                1 => continue,
                _ => {}
            }
            match tokio::time::timeout(self.timeout, self.ping_pong.ping(h2::Ping::opaque())).await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Some(Ending::H2(e)),
                Err(_) => return Some(Ending::NoPong(self.timeout)),
            }
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
    pub(crate) fn new(
        dialer: Dialer,
        max_message: usize,
        step_timeout: Duration,
        keep_alive: Option<(Duration, Duration)>,
    ) -> Grpc {
        Grpc {
            dialer,
            generation: std::sync::atomic::AtomicU64::new(0),
            max_message,
            step_timeout,
            keep_alive,
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
        let (send, mut connection) = h2::client::Builder::new()
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
        let users = Arc::new(());
        let pinger = self.keep_alive.and_then(|(interval, timeout)| {
            Some(Pinger {
                ping_pong: connection.ping_pong()?,
                users: Arc::downgrade(&users),
                interval,
                timeout,
            })
        });
        tokio::spawn(async move {
            let result = match pinger {
                None => connection.await.map_err(Ending::H2),
                Some(pinger) => tokio::select! {
                    result = &mut connection => result.map_err(Ending::H2),
                    ending = pinger.run() => match ending {
                        // Dropping the connection fails the calls on it.
                        Some(ending) => Err(ending),
                        None => connection.await.map_err(Ending::H2),
                    },
                },
            };
            let ending = match result {
                Ok(()) => Ending::H2(h2::Error::from(h2::Reason::NO_ERROR)),
                Err(e) => {
                    tracing::debug!(endpoint = %base, error = ?e, "HTTP/2 connection ended");
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
            _users: users,
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

/// The end of `conn` when the client closed it for a PING left unanswered.
pub(super) fn ended_without_pong(conn: &Conn) -> Option<ConnectionEnded> {
    conn.ended
        .get()
        .filter(|e| matches!(&*e.0, Ending::NoPong(_)))
        .cloned()
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
