//! Native gRPC (feature `grpc`): HTTP/2 and protobuf to etcd's gRPC services.
//!
//! One HTTP/2 connection per endpoint carries every call and stream of the transport,
//! multiplexed. The connection is ours (TCP and rustls from [`tls`](crate::tls), ALPN `h2`),
//! driven by the `h2` crate (hyper's HTTP/2); the gRPC layer on it is the few rules etcd
//! needs: a message is a 5-byte prefix (uncompressed flag, big-endian length) and its
//! protobuf bytes; the status is the `grpc-status` and `grpc-message` trailers (or headers,
//! for an answer without a body). Endpoint choice, failover, deadlines and auth stay in
//! [`Transport`](crate::Transport), shared with the gateway: this module only carries one
//! attempt to one endpoint.
//!
//! Why not tonic's client core over hyper: measured on this 2-core machine (64 concurrent
//! gets against etcd 3.5), it cost 36 µs of client CPU per call against 19-20 µs for the
//! same calls written on `h2` directly, and gave 17k calls/s against 21-25k. Most of the
//! difference is a task hyper spawns per request to stream its body, where `h2` takes a
//! unary call's one message at once; docs/ARCHITECTURE.md has the details.

use crate::client::{Route, Transport};
use crate::endpoint::Endpoint;
use crate::error::{connect_error, tls_cause, Error};
use crate::tls::{Connector, Io};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use etcd_wire::{Code, Rpc, StreamRpc, VersionResponse};
use futures_util::StreamExt;
use h2::client::{ResponseFuture, SendRequest};
use h2::{RecvStream, SendStream};
use http::header::{HeaderName, CONTENT_TYPE, TE};
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, Uri};
use hyper_util::rt::TokioIo;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tower_service::Service;

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
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");

/// The gRPC side of a transport: one HTTP/2 connection per endpoint.
pub(crate) struct Grpc {
    connector: Connector,
    /// The connection of each endpoint.
    conns: Vec<Mutex<Option<Conn>>>,
    /// Held while connecting, so that concurrent first calls open one connection.
    connecting: Vec<tokio::sync::Mutex<()>>,
    generation: std::sync::atomic::AtomicU64,
    max_message: usize,
}

/// One HTTP/2 connection.
#[derive(Clone)]
struct Conn {
    /// Which connection of the transport this is (to forget this one only).
    generation: u64,
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
pub(crate) struct Metadata {
    /// The auth token (`token` metadata).
    pub(crate) token: Option<HeaderValue>,
    /// Whether a member without a leader must refuse at once (`hasleader` metadata).
    pub(crate) require_leader: bool,
}

impl Grpc {
    pub(crate) fn new(connector: Connector, endpoints: usize, max_message: usize) -> Grpc {
        Grpc {
            connector,
            conns: (0..endpoints).map(|_| Mutex::new(None)).collect(),
            connecting: (0..endpoints)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            generation: std::sync::atomic::AtomicU64::new(0),
            max_message,
        }
    }

    fn cached(&self, idx: usize) -> Option<Conn> {
        let slot = match self.conns[idx].lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        slot.as_ref().filter(|c| c.ended.get().is_none()).cloned()
    }

    /// Forgets the connection of endpoint `idx` if it is still generation `generation`
    /// (it broke: the next call opens a fresh one).
    fn forget(&self, idx: usize, generation: u64) {
        let mut slot = match self.conns[idx].lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if slot.as_ref().is_some_and(|c| c.generation == generation) {
            *slot = None;
        }
    }

    /// Forgets the connection of endpoint `idx`, whichever it is (a call on it timed out:
    /// a frozen server is not asked again on it).
    pub(crate) fn forget_current(&self, idx: usize) {
        let mut slot = match self.conns[idx].lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = None;
    }

    /// The connection to endpoint `idx`, opened (and its driving task spawned) if needed.
    async fn connection(&self, idx: usize, endpoint: &Endpoint) -> Result<Conn, Error> {
        if let Some(conn) = self.cached(idx) {
            return Ok(conn);
        }
        let _connecting = self.connecting[idx].lock().await;
        if let Some(conn) = self.cached(idx) {
            return Ok(conn);
        }
        let mut connector = self.connector.clone();
        let io = async {
            poll_fn(|cx| connector.poll_ready(cx)).await?;
            connector.call(endpoint.origin.clone()).await
        }
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
        let mut slot = match self.conns[idx].lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Starts a call on endpoint `idx`: its headers go out; the request body is the
    /// returned stream.
    async fn start(
        &self,
        idx: usize,
        endpoint: &Endpoint,
        method: &'static str,
        metadata: &Metadata,
    ) -> Result<(Conn, ResponseFuture, SendStream<Bytes>), Error> {
        let conn = self.connection(idx, endpoint).await?;
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
                self.forget(idx, conn.generation);
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
                self.forget(idx, conn.generation);
                Err(unsent(e))
            }
        }
    }

    /// One unary call to endpoint `idx`.
    pub(crate) async fn unary<M, A>(
        &self,
        idx: usize,
        endpoint: &Endpoint,
        method: &'static str,
        message: M,
        metadata: &Metadata,
    ) -> Result<A, Error>
    where
        M: prost::Message,
        A: prost::Message + Default,
    {
        let (conn, response, mut body) = self.start(idx, endpoint, method, metadata).await?;
        let call = Call {
            endpoint: &endpoint.base,
            limit: self.max_message,
        };
        if let Err(e) = body.send_data(frame(&message), true) {
            self.forget(idx, conn.generation);
            return Err(call.broken(e, &conn).await);
        }
        let result = async {
            let mut recv = call.open(response.await?)?;
            let mut buffer = BytesMut::new();
            let answer = call.message(&mut recv, &mut buffer).await?;
            // The status trailers follow the one message.
            call.trailers(&mut recv).await?;
            answer.ok_or_else(|| {
                Failure::Status(etcd_wire::Status::new(
                    Code::Internal.as_i32(),
                    "the answer had no message",
                ))
            })
        };
        match result.await {
            Ok(answer) => A::decode(answer).map_err(|e| call.invalid(e)),
            Err(Failure::H2(e)) => {
                if e.is_io() || e.is_go_away() {
                    self.forget(idx, conn.generation);
                }
                Err(call.broken(e, &conn).await)
            }
            Err(failure) => Err(call.failed(failure)),
        }
    }

    /// Opens a streaming call on endpoint `idx` that first sends `first`; the request
    /// side stays open for [`GrpcStream::send`] until [`GrpcStream::finish_requests`].
    /// Returns once the call is on its way: answers (and the call's own errors) come from
    /// [`GrpcStream::next`], since etcd sends no headers before its first answer.
    pub(crate) async fn open<M, A>(
        &self,
        idx: usize,
        endpoint: &Endpoint,
        method: &'static str,
        first: Option<M>,
        metadata: &Metadata,
        send_timeout: Duration,
    ) -> Result<GrpcStream<M, A>, Error>
    where
        M: prost::Message,
        A: prost::Message + Default,
    {
        let (conn, response, mut body) = self.start(idx, endpoint, method, metadata).await?;
        if let Some(first) = first {
            if let Err(e) = body.send_data(frame(&first), false) {
                return Err(Call {
                    endpoint: &endpoint.base,
                    limit: self.max_message,
                }
                .broken(e, &conn)
                .await);
            }
        }
        Ok(GrpcStream {
            body: Some(body),
            state: State::Opening(response),
            buffer: BytesMut::new(),
            endpoint: endpoint.base.clone(),
            send_timeout,
            limit: self.max_message,
            conn,
            _messages: std::marker::PhantomData,
        })
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

/// A message as gRPC frames it: uncompressed flag, big-endian length, protobuf bytes.
fn frame(message: &impl prost::Message) -> Bytes {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(len as u32);
    // A BytesMut grows as needed: encoding cannot fail.
    let _ = message.encode(&mut buf);
    buf.freeze()
}

/// How one call's answers are read, and its failures named.
#[derive(Clone, Copy)]
struct Call<'a> {
    endpoint: &'a str,
    limit: usize,
}

/// What ended a call early: an HTTP/2 error, or the server's gRPC status.
enum Failure {
    H2(h2::Error),
    Status(etcd_wire::Status),
    Http(u16),
    TooLarge,
    Compressed,
}

impl From<h2::Error> for Failure {
    fn from(e: h2::Error) -> Failure {
        Failure::H2(e)
    }
}

impl<'a> Call<'a> {
    /// The body of an answer, once its headers say the call goes on: an HTTP error, or a
    /// gRPC status in the headers (an answer without messages), is the call's failure.
    fn open(&self, response: http::Response<RecvStream>) -> Result<RecvStream, Failure> {
        let status = response.status();
        if let Some(s) = grpc_status(response.headers()) {
            if s.grpc_code() != Code::Ok {
                return Err(Failure::Status(s));
            }
        }
        if status != http::StatusCode::OK {
            return Err(Failure::Http(status.as_u16()));
        }
        if response
            .headers()
            .get(GRPC_ENCODING)
            .is_some_and(|e| e != "identity")
        {
            return Err(Failure::Compressed);
        }
        Ok(response.into_body())
    }

    /// The next message of `recv`, read into `buffer`; `None` at the end of the body.
    async fn message(
        &self,
        recv: &mut RecvStream,
        buffer: &mut BytesMut,
    ) -> Result<Option<Bytes>, Failure> {
        loop {
            if buffer.len() >= 5 {
                if buffer[0] != 0 {
                    return Err(Failure::Compressed);
                }
                let len = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
                if len > self.limit {
                    return Err(Failure::TooLarge);
                }
                if buffer.len() >= 5 + len {
                    buffer.advance(5);
                    return Ok(Some(buffer.split_to(len).freeze()));
                }
                buffer.reserve(5 + len - buffer.len());
            }
            match recv.data().await {
                Some(Ok(chunk)) => {
                    let _ = recv.flow_control().release_capacity(chunk.len());
                    if buffer.is_empty() && chunk.len() >= 5 {
                        // The common case: the chunk holds whole messages; no copy.
                        *buffer = BytesMut::from(chunk);
                    } else {
                        buffer.extend_from_slice(&chunk);
                    }
                }
                Some(Err(e)) => return Err(e.into()),
                None if buffer.is_empty() => return Ok(None),
                None => return Err(h2::Error::from(h2::Reason::PROTOCOL_ERROR).into()),
            }
        }
    }

    /// The status trailers: `Ok` for status 0.
    async fn trailers(&self, recv: &mut RecvStream) -> Result<(), Failure> {
        // Anything after the last message is not ours to read.
        while let Some(chunk) = recv.data().await {
            let chunk = chunk?;
            let _ = recv.flow_control().release_capacity(chunk.len());
        }
        let trailers = recv.trailers().await?;
        match trailers.as_ref().and_then(grpc_status) {
            Some(s) if s.grpc_code() == Code::Ok => Ok(()),
            Some(s) => Err(Failure::Status(s)),
            None => Err(Failure::Status(etcd_wire::Status::new(
                Code::Unknown.as_i32(),
                "the answer ended without a gRPC status",
            ))),
        }
    }

    fn invalid(&self, e: prost::DecodeError) -> Error {
        Error::Server {
            endpoint: self.endpoint.to_string(),
            status: etcd_wire::Status::new(
                Code::Internal.as_i32(),
                format!("undecodable protobuf answer: {e}"),
            ),
        }
    }

    /// The error of a call the server answered (a status, an HTTP error...).
    fn failed(&self, failure: Failure) -> Error {
        let endpoint = self.endpoint.to_string();
        match failure {
            Failure::Status(status) => Error::Server { endpoint, status },
            Failure::Http(status) => Error::Http {
                endpoint,
                status,
                body: "not a gRPC answer".into(),
            },
            Failure::TooLarge => Error::ResponseTooLarge {
                endpoint,
                limit: self.limit,
            },
            Failure::Compressed => Error::Server {
                endpoint,
                status: etcd_wire::Status::new(
                    Code::Unimplemented.as_i32(),
                    "a compressed answer (none was asked for)",
                ),
            },
            Failure::H2(e) => Error::Io {
                endpoint,
                outcome_unknown: true,
                source: Box::new(e),
            },
        }
    }

    /// The error of a call whose connection or stream broke: TLS when that is what ended
    /// the connection; otherwise a write may have been applied unless the server refused
    /// the stream before processing it.
    async fn broken(&self, e: impl Into<Failure>, conn: &Conn) -> Error {
        let e = match e.into() {
            Failure::H2(e) => e,
            other => return self.failed(other),
        };
        if tls_cause(&e).is_some() || e.get_io().is_some_and(|io| tls_cause(io).is_some()) {
            return Error::TlsHandshake {
                endpoint: self.endpoint.to_string(),
                source: Box::new(e),
            };
        }
        // A reset of this stream alone says nothing of the connection; anything else may
        // be the connection ending, whose cause its task records.
        if !e.is_reset() {
            if let Some(tls) = ended_by_tls(self.endpoint, conn).await {
                return tls;
            }
        }
        Error::Io {
            endpoint: self.endpoint.to_string(),
            outcome_unknown: e.reason() != Some(h2::Reason::REFUSED_STREAM),
            source: Box::new(e),
        }
    }
}

/// True for an error that says the server does not speak HTTP/2 at all: the HTTP/2
/// library gave up on the connection (a frame size or protocol error of its own) before
/// any answer, as it does when an HTTP/1.1 server answers the connection preface.
fn not_http2(e: &Error) -> bool {
    let source = match e {
        Error::Io { source, .. } | Error::Connect { source, .. } => source.as_ref(),
        _ => return false,
    };
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(source);
    while let Some(err) = current {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.is_go_away()
                && h2.is_library()
                && matches!(
                    h2.reason(),
                    Some(h2::Reason::FRAME_SIZE_ERROR | h2::Reason::PROTOCOL_ERROR)
                );
        }
        current = err.source();
    }
    false
}

/// The gRPC status of headers or trailers, if they hold one.
fn grpc_status(headers: &HeaderMap) -> Option<etcd_wire::Status> {
    let code = headers
        .get(GRPC_STATUS)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let message = headers
        .get(GRPC_MESSAGE)
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    Some(etcd_wire::Status::new(code, message))
}

/// `grpc-message` is percent-encoded UTF-8.
fn percent_decode(bytes: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
async fn ended_by_tls(endpoint: &str, conn: &Conn) -> Option<Error> {
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

enum State {
    Opening(ResponseFuture),
    Open(RecvStream),
    Done,
}

/// One streaming gRPC call: requests out through [`send`](Self::send), answers in through
/// [`next`](Self::next). Dropping it cancels the call (an HTTP/2 reset), not the connection.
pub(crate) struct GrpcStream<M, A> {
    body: Option<SendStream<Bytes>>,
    state: State,
    /// Answer bytes read but not yet decoded.
    buffer: BytesMut,
    endpoint: String,
    send_timeout: Duration,
    /// The message size limit.
    limit: usize,
    /// The connection the call is on.
    conn: Conn,
    _messages: std::marker::PhantomData<fn(M) -> A>,
}

impl<M: prost::Message, A: prost::Message + Default> GrpcStream<M, A> {
    /// The endpoint the call is on.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn call(&self) -> Call<'_> {
        Call {
            endpoint: &self.endpoint,
            limit: self.limit,
        }
    }

    /// Ends the requests: the server sees the end of the request stream once it has
    /// read those sent.
    pub(crate) fn finish_requests(&mut self) {
        if let Some(mut body) = self.body.take() {
            let _ = body.send_data(Bytes::new(), true);
        }
    }

    /// Sends one request; fails with [`Error::Timeout`] when the server has not made room
    /// for it within the send timeout (it stopped reading).
    pub(crate) async fn send(&mut self, message: M) -> Result<(), Error> {
        let frame = frame(&message);
        let Some(body) = &mut self.body else {
            return Err(Error::Config(
                "this stream takes no further requests".into(),
            ));
        };
        // Room in the server's window first, so that a server that stopped reading is
        // noticed here, not by memory growing.
        body.reserve_capacity(frame.len());
        let room = async {
            while body.capacity() < frame.len() {
                match poll_fn(|cx| body.poll_capacity(cx)).await {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Err(h2::Error::from(h2::Reason::STREAM_CLOSED)),
                }
            }
            Ok(())
        };
        let sent = match tokio::time::timeout(self.send_timeout, room).await {
            Ok(Ok(())) => body.send_data(frame, false),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                return Err(Error::Timeout {
                    endpoint: self.endpoint.clone(),
                    after: self.send_timeout,
                    outcome_unknown: true,
                })
            }
        };
        match sent {
            Ok(()) => Ok(()),
            Err(e) => Err(self.call().broken(e, &self.conn).await),
        }
    }

    /// The next answer: `None` once the server ended the call with status OK; an error
    /// ends the stream. Cancel safe.
    pub(crate) async fn next(&mut self) -> Option<Result<A, Error>> {
        loop {
            match &mut self.state {
                State::Opening(response) => match response.await {
                    Ok(response) => match self.call().open(response) {
                        Ok(recv) => self.state = State::Open(recv),
                        Err(failure) => {
                            self.state = State::Done;
                            return Some(Err(self.call().failed(failure)));
                        }
                    },
                    Err(e) => {
                        self.state = State::Done;
                        return Some(Err(self.call().broken(e, &self.conn).await));
                    }
                },
                State::Open(recv) => {
                    let call = Call {
                        endpoint: &self.endpoint,
                        limit: self.limit,
                    };
                    let next = match call.message(recv, &mut self.buffer).await {
                        Ok(Some(message)) => {
                            return Some(A::decode(message).map_err(|e| call.invalid(e)))
                        }
                        Ok(None) => call.trailers(recv).await,
                        Err(failure) => Err(failure),
                    };
                    self.state = State::Done;
                    return match next {
                        Ok(()) => None,
                        Err(failure @ Failure::H2(_)) => {
                            Some(Err(self.call().broken(failure, &self.conn).await))
                        }
                        Err(failure) => Some(Err(self.call().failed(failure))),
                    };
                }
                State::Done => return None,
            }
        }
    }
}

impl Transport {
    fn metadata(&self, route: Route<'_>, token: Option<HeaderValue>) -> Metadata {
        Metadata {
            token,
            require_leader: route.require_leader && self.inner.require_leader,
        }
    }

    /// One attempt of a unary call over gRPC: the endpoint is probed first when it has not
    /// answered yet (an unanswered probe means nothing was sent), then the call is made
    /// within the attempt's time limit. A timeout forgets the connection: a frozen server
    /// is not asked again on it.
    pub(crate) async fn grpc_attempt<R: Rpc>(
        &self,
        grpc: &Grpc,
        idx: usize,
        route: Route<'_>,
        request: &R,
        token: Option<HeaderValue>,
        until: Option<Instant>,
    ) -> Result<R::Response, Error> {
        let endpoint = &self.inner.endpoints[idx];
        let limit = self.attempt_limit(route, until);
        if !endpoint.prefix_known() {
            limit.run(&endpoint.base, false, self.prefix(idx)).await?;
        }
        let metadata = self.metadata(route, token);
        let call = grpc.unary::<R::Proto, R::ProtoResponse>(
            idx,
            endpoint,
            R::GRPC_METHOD,
            request.to_proto(),
            &metadata,
        );
        let answer = limit.run(&endpoint.base, true, call).await;
        if matches!(answer, Err(Error::Timeout { .. })) {
            grpc.forget_current(idx);
        }
        R::from_proto(answer?).map_err(|source| Error::Decode {
            endpoint: endpoint.base.clone(),
            source,
        })
    }

    /// The version of endpoint `idx` from its Maintenance/Status (gRPC has no `/version`).
    pub(crate) async fn grpc_version(
        &self,
        grpc: &Grpc,
        idx: usize,
    ) -> Result<VersionResponse, Error> {
        let endpoint = &self.inner.endpoints[idx];
        let request = etcd_wire::StatusRequest::default();
        let metadata = Metadata::default();
        let call = grpc.unary::<<etcd_wire::StatusRequest as Rpc>::Proto, <etcd_wire::StatusRequest as Rpc>::ProtoResponse>(
            idx,
            endpoint,
            <etcd_wire::StatusRequest as Rpc>::GRPC_METHOD,
            request.to_proto(),
            &metadata,
        );
        let after = self.request_timeout();
        let not_etcd = |reason: String| Error::NotEtcd {
            endpoint: endpoint.base.clone(),
            reason,
        };
        let answer = match tokio::time::timeout(after, call).await {
            Err(_) => {
                grpc.forget_current(idx);
                return Err(Error::Timeout {
                    endpoint: endpoint.base.clone(),
                    after,
                    outcome_unknown: false,
                });
            }
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) if not_http2(&e) => {
                grpc.forget_current(idx);
                return Err(not_etcd(format!(
                    "it does not speak HTTP/2 ({}), as etcd's gRPC does; check the host and \
                     port (etcd's client port is usually 2379)",
                    std::error::Error::source(&e)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                )));
            }
            Ok(Err(Error::Http { status, .. })) => {
                return Err(not_etcd(format!(
                    "Maintenance/Status answered HTTP {status}, not gRPC; check the host and \
                     port (etcd's client port is usually 2379)"
                )))
            }
            Ok(Err(Error::Server { status, .. }))
                if status.grpc_code() == etcd_wire::Code::Unimplemented =>
            {
                return Err(not_etcd(format!(
                    "a gRPC server without etcd's Maintenance service ({}); check the host \
                     and port (etcd's client port is usually 2379)",
                    status.message
                )))
            }
            Ok(Err(e)) => return Err(e),
        };
        let status = <etcd_wire::StatusRequest as Rpc>::from_proto(answer).map_err(|source| {
            Error::Decode {
                endpoint: endpoint.base.clone(),
                source,
            }
        })?;
        let version = VersionResponse {
            etcdserver: status.version,
            ..VersionResponse::default()
        };
        if version.server_version().is_none() {
            return Err(not_etcd(format!(
                "Maintenance/Status answered without a server version ({:?}); check the host \
                 and port (etcd's client port is usually 2379)",
                version.etcdserver
            )));
        }
        Ok(version)
    }

    /// One attempt at opening a streaming call on endpoint `idx`: the endpoint is probed
    /// first when it has not answered yet, then the call is opened with `first` queued,
    /// within `limit`.
    async fn grpc_open_on<R: StreamRpc>(
        &self,
        grpc: &Grpc,
        idx: usize,
        route: Route<'_>,
        token: Option<HeaderValue>,
        limit: crate::client::AttemptLimit,
        first: Option<&R>,
    ) -> Result<GrpcStream<R::Proto, R::ProtoResponse>, Error> {
        let endpoint = &self.inner.endpoints[idx];
        if !endpoint.prefix_known() {
            limit.run(&endpoint.base, false, self.prefix(idx)).await?;
        }
        let metadata = self.metadata(route, token);
        let open = grpc.open::<R::Proto, R::ProtoResponse>(
            idx,
            endpoint,
            R::GRPC_METHOD,
            first.map(R::to_proto),
            &metadata,
            self.request_timeout(),
        );
        limit.run(&endpoint.base, false, open).await
    }

    /// Opens a streaming call over gRPC that starts with `request`, on the first endpoint
    /// that takes it.
    pub(crate) async fn grpc_stream<R: StreamRpc>(
        &self,
        grpc: &Grpc,
        route: Route<'_>,
        request: &R,
    ) -> Result<GrpcStream<R::Proto, R::ProtoResponse>, Error> {
        let (_, stream) = self
            .failover(route, |idx, token, until| async move {
                let limit = self.attempt_limit(route, until);
                let mut stream = self
                    .grpc_open_on(grpc, idx, route, token, limit, Some(request))
                    .await?;
                if !R::BIDIRECTIONAL {
                    stream.finish_requests();
                }
                Ok(stream)
            })
            .await?;
        Ok(stream)
    }

    /// [`call_stream`](Transport::call_stream) over gRPC.
    pub(crate) async fn grpc_call_stream<R: StreamRpc>(
        &self,
        grpc: &Grpc,
        route: Route<'_>,
        request: &R,
    ) -> Result<crate::MessageStream<R::Response>, Error> {
        let stream = self.grpc_stream(grpc, route, request).await?;
        let endpoint = stream.endpoint().to_string();
        let decode_endpoint = endpoint.clone();
        let messages = futures_util::stream::unfold(stream, |mut stream| async move {
            let next = stream.next().await?;
            Some((next, stream))
        })
        .map(move |answer| {
            answer.and_then(|a| {
                R::from_proto(a).map_err(|source| Error::Decode {
                    endpoint: decode_endpoint.clone(),
                    source,
                })
            })
        });
        Ok(crate::MessageStream::grpc(Box::pin(messages), endpoint))
    }

    /// [`call_stream_once`](Transport::call_stream_once) over gRPC: the first answer of a
    /// stream opened with `request`, within the request timeout.
    pub(crate) async fn grpc_call_stream_once<R: StreamRpc>(
        &self,
        grpc: &Grpc,
        route: Route<'_>,
        request: &R,
    ) -> Result<R::Response, Error> {
        let (idx, answer) = self
            .failover(route, |idx, token, until| async move {
                let limit = self.attempt_limit(route, until);
                let mut stream = self
                    .grpc_open_on(grpc, idx, route, token, limit, Some(request))
                    .await?;
                stream.finish_requests();
                let endpoint = &self.inner.endpoints[idx].base;
                let answer = async {
                    stream.next().await.unwrap_or_else(|| {
                        Err(Error::Io {
                            endpoint: endpoint.clone(),
                            outcome_unknown: false,
                            source: "the stream ended without an answer".into(),
                        })
                    })
                };
                limit.run(endpoint, true, answer).await
            })
            .await?;
        R::from_proto(answer).map_err(|source| Error::Decode {
            endpoint: self.inner.endpoints[idx].base.clone(),
            source,
        })
    }

    /// [`open_bidi`](Transport::open_bidi) over gRPC: an HTTP/2 stream on the first
    /// endpoint whose connection opens, from the current one.
    pub(crate) async fn open_bidi_grpc<R: StreamRpc>(
        &self,
        grpc: &Grpc,
    ) -> Result<crate::BidiStream<R>, Error> {
        let n = self.inner.endpoints.len();
        let start = self.preferred();
        let after = self.request_timeout();
        let route = Route {
            method: R::PATH,
            idempotency: etcd_wire::Idempotency::Idempotent,
            require_leader: R::REQUIRE_LEADER,
            deadline: None,
        };
        let mut last = None;
        for i in 0..n {
            let idx = (start + i) % n;
            let endpoint = &self.inner.endpoints[idx];
            let open = async {
                let token = self.token_for_request(idx).await?;
                let limit = self.attempt_limit(route, None);
                self.grpc_open_on::<R>(grpc, idx, route, token, limit, None)
                    .await
            };
            let opened = match tokio::time::timeout(after, open).await {
                Ok(result) => result,
                Err(_) => Err(Error::Timeout {
                    endpoint: endpoint.base.clone(),
                    after,
                    outcome_unknown: false,
                }),
            };
            match opened {
                Ok(stream) => {
                    self.inner
                        .preferred
                        .store(idx, std::sync::atomic::Ordering::Relaxed);
                    return Ok(crate::BidiStream::grpc(stream));
                }
                Err(e) => {
                    tracing::debug!(endpoint = %endpoint.base, error = %e, "cannot open a gRPC stream");
                    last = Some(e);
                }
            }
        }
        Err(Error::all_failed(n, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_framed_with_flag_and_length() {
        let message = etcd_wire::grpc::pb::etcdserverpb::RangeRequest {
            key: Bytes::from_static(b"k"),
            ..Default::default()
        };
        let framed = frame(&message);
        assert_eq!(&framed[..5], &[0, 0, 0, 0, 3]);
        assert_eq!(&framed[5..], &[0x0a, 0x01, b'k']);
    }

    #[test]
    fn statuses_come_from_headers_with_their_message_decoded() {
        let mut headers = HeaderMap::new();
        assert!(grpc_status(&headers).is_none());
        headers.insert(GRPC_STATUS, HeaderValue::from_static("5"));
        headers.insert(
            GRPC_MESSAGE,
            HeaderValue::from_static("etcdserver%3A requested lease not found %E2%9C%93"),
        );
        let status = grpc_status(&headers).unwrap();
        assert_eq!(status.grpc_code(), Code::NotFound);
        assert_eq!(
            status.message,
            "etcdserver: requested lease not found \u{2713}"
        );
        // Malformed escapes stay as they are; a bad code is no status.
        assert_eq!(percent_decode(b"100%% %4"), "100%% %4");
        headers.insert(GRPC_STATUS, HeaderValue::from_static("x"));
        assert!(grpc_status(&headers).is_none());
    }
}
