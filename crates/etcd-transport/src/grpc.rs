//! Native gRPC (feature `grpc`): HTTP/2 and protobuf to etcd's gRPC services.
//!
//! One HTTP/2 connection per endpoint carries every call and stream of the transport,
//! multiplexed. The connection is ours (TCP and rustls from [`tls`](crate::tls), ALPN `h2`),
//! driven by hyper's HTTP/2 client; gRPC framing, status trailers and the prost codec are
//! tonic's client core. Endpoint choice, failover, deadlines and auth stay in
//! [`Transport`](crate::Transport), shared with the gateway: this module only carries one
//! attempt to one endpoint.

use crate::client::{Route, Transport};
use crate::endpoint::Endpoint;
use crate::error::{connect_error, tls_cause, Error};
use crate::tls::{Connector, Io};
use etcd_wire::{Rpc, StreamRpc, VersionResponse};
use futures_util::StreamExt;
use http::uri::PathAndQuery;
use http::HeaderValue;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::body::Body;
use tonic::metadata::MetadataValue;
use tower_service::Service;

/// HTTP/2 flow-control windows: large enough that a big range answer is not throttled
/// by window updates on a fast link (the default 64 KiB stream window costs round trips).
const STREAM_WINDOW: u32 = 4 << 20;
const CONNECTION_WINDOW: u32 = 8 << 20;

/// Requests a stream holds before a send waits for the server to take them.
const SEND_QUEUE: usize = 64;

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
    send: SendRequest<Body>,
    /// Why the connection ended, once it has: a request on it only learns that it was
    /// closed, while the cause (a certificate refused after the handshake...) is here.
    ended: Arc<OnceLock<ConnectionEnded>>,
}

/// The error that ended a connection.
#[derive(Debug, Clone)]
struct ConnectionEnded(Arc<hyper::Error>);

impl std::fmt::Display for ConnectionEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the connection ended: {}", self.0)
    }
}

impl std::error::Error for ConnectionEnded {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
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

impl Metadata {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let map = request.metadata_mut();
        if let Some(token) = &self.token {
            if let Ok(text) = token.to_str() {
                if let Ok(mut value) = MetadataValue::try_from(text) {
                    value.set_sensitive(true);
                    map.insert("token", value);
                }
            }
        }
        if self.require_leader {
            map.insert("hasleader", MetadataValue::from_static("true"));
        }
        request
    }
}

/// A connection as the tower service tonic's client core calls.
#[derive(Clone)]
struct Channel(SendRequest<Body>);

type ResponseFuture = Pin<
    Box<dyn Future<Output = Result<http::Response<hyper::body::Incoming>, hyper::Error>> + Send>,
>;

impl Service<http::Request<Body>> for Channel {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> ResponseFuture {
        Box::pin(self.0.send_request(request))
    }
}

type Client = tonic::client::Grpc<Channel>;

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
        slot.as_ref().filter(|c| !c.send.is_closed()).cloned()
    }

    /// Forgets the connection of endpoint `idx` if it is still generation `generation`
    /// (a call on it timed out: the next call opens a fresh one).
    fn forget(&self, idx: usize, generation: u64) {
        let mut slot = match self.conns[idx].lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if slot.as_ref().is_some_and(|c| c.generation == generation) {
            *slot = None;
        }
    }

    /// Forgets the connection of endpoint `idx`, whichever it is.
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
                first: bytes::Bytes::new(),
                io,
            }
        };
        let (send, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(1 << 20)
            .handshake(io)
            .await
            .map_err(|e| connect_error(&endpoint.base, Box::new(e)))?;
        let base = endpoint.base.clone();
        let ended = Arc::new(OnceLock::new());
        let cause = ended.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(endpoint = %base, error = %e, "HTTP/2 connection ended");
                let _ = cause.set(ConnectionEnded(Arc::new(e)));
            }
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

    /// A ready client on endpoint `idx`'s connection.
    async fn client(&self, idx: usize, endpoint: &Endpoint) -> Result<(Conn, Client), Error> {
        let conn = self.connection(idx, endpoint).await?;
        let channel = Channel(conn.send.clone());
        let mut client = tonic::client::Grpc::with_origin(channel, endpoint.origin.clone())
            .max_decoding_message_size(self.max_message)
            .max_encoding_message_size(usize::MAX);
        if let Err(e) = client.ready().await {
            // The connection closed before this call used it: nothing was sent.
            self.forget(idx, conn.generation);
            let status = tonic::Status::from_error(Box::new(e));
            return Err(match ended_by_tls(&endpoint.base, &conn).await {
                Some(tls) => tls,
                None => Error::Io {
                    endpoint: endpoint.base.clone(),
                    outcome_unknown: false,
                    source: Box::new(status),
                },
            });
        }
        Ok((conn, client))
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
        M: prost::Message + Send + Sync + 'static,
        A: prost::Message + Default + Send + Sync + 'static,
    {
        let (conn, mut client) = self.client(idx, endpoint).await?;
        let codec = tonic_prost::ProstCodec::<M, A>::default();
        let call = client.unary(
            metadata.request(message),
            PathAndQuery::from_static(method),
            codec,
        );
        match call.await {
            Ok(answer) => Ok(answer.into_inner()),
            Err(status) => {
                if std::error::Error::source(&status).is_some() {
                    self.forget(idx, conn.generation);
                    if let Some(tls) = ended_by_tls(&endpoint.base, &conn).await {
                        return Err(tls);
                    }
                }
                Err(status_error(&endpoint.base, self.max_message, status))
            }
        }
    }

    /// Opens a streaming call on endpoint `idx` that first sends `first`; the request
    /// side stays open for [`GrpcStream::send`] until [`GrpcStream::finish_requests`].
    /// Returns once the call is on its way: answers (and the call's own errors)
    /// come from [`GrpcStream::next`], since etcd sends no headers before its first answer.
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
        M: prost::Message + Send + Sync + 'static,
        A: prost::Message + Default + Send + Sync + 'static,
    {
        let (conn, mut client) = self.client(idx, endpoint).await?;
        let (tx, mut rx) = mpsc::channel::<M>(SEND_QUEUE);
        if let Some(first) = first {
            // A fresh channel has room.
            let _ = tx.try_send(first);
        }
        let requests = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let request = metadata.request(requests);
        let codec = tonic_prost::ProstCodec::<M, A>::default();
        let opening = tokio::spawn(async move {
            client
                .streaming(request, PathAndQuery::from_static(method), codec)
                .await
                .map(tonic::Response::into_inner)
        });
        Ok(GrpcStream {
            tx: Some(tx),
            state: State::Opening(opening),
            endpoint: endpoint.base.clone(),
            send_timeout,
            limit: self.max_message,
            conn,
        })
    }
}

/// Waits for the server's first bytes on a fresh TLS connection (a gRPC server sends its
/// HTTP/2 settings first, unasked), and keeps them for hyper. Over TLS 1.3 a server that
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
                first: bytes::Bytes::from(buf),
                io: io.into_inner(),
            })
        }
        Err(e) => Err(connect_error(&endpoint.base, Box::new(e))),
    }
}

/// A connection whose first bytes were read ahead ([`first_answer`]): hyper reads those
/// first.
struct Primed {
    first: bytes::Bytes,
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
    // The request may learn of the end a moment before the connection's task records why.
    for _ in 0..10 {
        if let Some(ended) = conn.ended.get() {
            return tls_cause(ended).is_some().then(|| Error::TlsHandshake {
                endpoint: endpoint.to_string(),
                source: Box::new(ended.clone()),
            });
        }
        if !conn.send.is_closed() {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

/// Maps a tonic status: a status from the server keeps its code and message; a local one
/// with a source is a broken connection, whose request may have been applied unless
/// HTTP/2 says the server refused the stream before processing it.
fn status_error(endpoint: &str, limit: usize, status: tonic::Status) -> Error {
    use std::error::Error as _;
    if let Some(source) = status.source() {
        if tls_cause(source).is_some() {
            return Error::TlsHandshake {
                endpoint: endpoint.to_string(),
                source: Box::new(status),
            };
        }
        let refused = h2_reason(source) == Some(h2::Reason::REFUSED_STREAM);
        return Error::Io {
            endpoint: endpoint.to_string(),
            outcome_unknown: !refused,
            source: Box::new(status),
        };
    }
    if status.code() == tonic::Code::OutOfRange
        && status
            .message()
            .contains("decoded message length too large")
    {
        return Error::ResponseTooLarge {
            endpoint: endpoint.to_string(),
            limit,
        };
    }
    Error::Server {
        endpoint: endpoint.to_string(),
        status: etcd_wire::Status::new(status.code() as i32, status.message()),
    }
}

/// The HTTP/2 error code in an error's chain, if any.
fn h2_reason(e: &(dyn std::error::Error + 'static)) -> Option<h2::Reason> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.reason();
        }
        current = err.source();
    }
    None
}

enum State<A> {
    Opening(JoinHandle<Result<tonic::Streaming<A>, tonic::Status>>),
    Open(Box<tonic::Streaming<A>>),
    Done,
}

/// One streaming gRPC call: requests out through [`send`](Self::send), answers in through
/// [`next`](Self::next). Dropping it cancels the call (an HTTP/2 reset), not the connection.
pub(crate) struct GrpcStream<M, A> {
    tx: Option<mpsc::Sender<M>>,
    state: State<A>,
    endpoint: String,
    send_timeout: Duration,
    /// The message size limit, for errors.
    limit: usize,
    /// The connection the call is on.
    conn: Conn,
}

impl<M, A> Drop for GrpcStream<M, A> {
    fn drop(&mut self) {
        if let State::Opening(handle) = &self.state {
            handle.abort();
        }
    }
}

impl<M: Send + 'static, A: prost::Message + Default + 'static> GrpcStream<M, A> {
    /// The endpoint the call is on.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Ends the requests: the server sees the end of the request stream once it has
    /// read those sent.
    pub(crate) fn finish_requests(&mut self) {
        self.tx = None;
    }

    /// The error of the call: TLS when that is what ended its connection.
    async fn error(&self, status: tonic::Status) -> Error {
        if std::error::Error::source(&status).is_some() {
            if let Some(tls) = ended_by_tls(&self.endpoint, &self.conn).await {
                return tls;
            }
        }
        status_error(&self.endpoint, self.limit, status)
    }

    /// Sends one request; fails with [`Error::Timeout`] when the call has not taken it
    /// within the send timeout (the server stopped reading).
    pub(crate) async fn send(&mut self, message: M) -> Result<(), Error> {
        let Some(tx) = &self.tx else {
            return Err(Error::Config(
                "this stream takes no further requests".into(),
            ));
        };
        match tokio::time::timeout(self.send_timeout, tx.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Error::Io {
                endpoint: self.endpoint.clone(),
                outcome_unknown: false,
                source: "the stream has ended".into(),
            }),
            Err(_) => Err(Error::Timeout {
                endpoint: self.endpoint.clone(),
                after: self.send_timeout,
                outcome_unknown: true,
            }),
        }
    }

    /// The next answer: `None` once the server ended the call with status OK; an error
    /// ends the stream. Cancel safe.
    pub(crate) async fn next(&mut self) -> Option<Result<A, Error>> {
        loop {
            match &mut self.state {
                State::Opening(handle) => match handle.await {
                    Ok(Ok(stream)) => self.state = State::Open(Box::new(stream)),
                    Ok(Err(status)) => {
                        self.state = State::Done;
                        return Some(Err(self.error(status).await));
                    }
                    Err(e) => {
                        self.state = State::Done;
                        return Some(Err(Error::Io {
                            endpoint: self.endpoint.clone(),
                            outcome_unknown: false,
                            source: Box::new(e),
                        }));
                    }
                },
                State::Open(stream) => {
                    return match stream.message().await {
                        Ok(Some(message)) => Some(Ok(message)),
                        Ok(None) => {
                            self.state = State::Done;
                            None
                        }
                        Err(status) => {
                            self.state = State::Done;
                            Some(Err(self.error(status).await))
                        }
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
        let answer = tokio::time::timeout(after, call).await.map_err(|_| {
            grpc.forget_current(idx);
            Error::Timeout {
                endpoint: endpoint.base.clone(),
                after,
                outcome_unknown: false,
            }
        })??;
        let status = <etcd_wire::StatusRequest as Rpc>::from_proto(answer).map_err(|source| {
            Error::Decode {
                endpoint: endpoint.base.clone(),
                source,
            }
        })?;
        Ok(VersionResponse {
            etcdserver: status.version,
            ..VersionResponse::default()
        })
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
