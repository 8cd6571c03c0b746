//! The transport: pooled HTTP/1.1 connections to a set of endpoints, with failover.

use crate::config::{Credentials, RetryConfig, TransportBuilder};
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::pool::{Conn, Pool, SendError};
use crate::stream::MessageStream;
use crate::tls;
use bytes::Bytes;
use etcd_wire::stream::{parse_message, StreamDecoder, StreamMessage};
use etcd_wire::{
    AuthenticateRequest, AuthenticateResponse, Idempotency, Rpc, StreamRpc, VersionResponse,
};
use http::header::{HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST};
use http::{Method, Request, StatusCode};
use http_body::Body as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

/// A client of etcd speaking its gRPC-JSON gateway (HTTP/1.1, JSON; the default) or, with
/// the cargo feature `grpc` and [`Protocol::Grpc`](crate::Protocol), native gRPC (HTTP/2,
/// protobuf): cheap to clone, shared by many tasks. Both protocols share one failover loop
/// (endpoints, retries by idempotency, deadlines, token renewal).
///
/// Over the gateway a call goes to its request type's path after the API prefix (such as
/// `/v3/kv/range`); the prefix (`/v3`, `/v3beta`, `/v3alpha`) is detected once per endpoint
/// from `GET /version`. Over gRPC it goes to its gRPC method (`/etcdserverpb.KV/Range`).
#[derive(Clone)]
pub struct Transport {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) pool: Pool,
    pub(crate) preferred: AtomicUsize,
    pub(crate) request_timeout: Option<Duration>,
    /// The default deadline of a whole call, retries included.
    deadline: Option<Duration>,
    retry: RetryConfig,
    pub(crate) max_response_len: usize,
    credentials: Option<Credentials>,
    /// Whether calls that need a leader say so (`Grpc-Metadata-hasleader: true`).
    pub(crate) require_leader: bool,
    token: RwLock<Option<HeaderValue>>,
    /// The server said auth is not enabled: send no token until it asks for one.
    auth_off: std::sync::atomic::AtomicBool,
    auth_lock: tokio::sync::Mutex<()>,
    /// The buffer the last large multi-frame answer was joined in, kept for the next one:
    /// a fresh buffer of megabytes costs a page fault per 4 KiB written.
    spare: std::sync::Mutex<Vec<u8>>,
    /// The native gRPC side, when the transport speaks gRPC instead of the gateway's JSON.
    #[cfg(feature = "grpc")]
    pub(crate) grpc: Option<crate::grpc::Grpc>,
}

/// Keep a joined-answer buffer for reuse up to this capacity.
const MAX_SPARE: usize = 16 << 20;

/// A whole answer body: the one frame it came in, or its frames joined in a buffer that
/// goes back to the transport once decoded ([`Transport::recycle`]).
enum Body {
    Frame(Bytes),
    Joined(Vec<u8>),
}

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Body::Frame(b) => b,
            Body::Joined(v) => v,
        }
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("endpoints", &self.endpoints())
            .finish_non_exhaustive()
    }
}

/// What one attempt asks for.
#[derive(Clone, Copy)]
pub(crate) enum Call {
    Unary,
    Stream,
}

/// The gateway header that makes a member without a leader refuse a call at once with
/// "no leader" (etcd's require-leader metadata, `hasleader`).
const REQUIRE_LEADER: http::HeaderName = http::HeaderName::from_static("grpc-metadata-hasleader");

/// Where a request goes and how it may be retried.
#[derive(Clone, Copy)]
pub(crate) struct Route<'a> {
    /// The method path after the API prefix.
    pub(crate) method: &'a str,
    pub(crate) idempotency: Idempotency,
    /// Whether to send the require-leader header (when the transport is configured to).
    pub(crate) require_leader: bool,
    /// The whole call's deadline, retries included (`None`: none).
    pub(crate) deadline: Option<Duration>,
}

/// The time limit of one attempt (see [`Transport::attempt_limit`]).
#[derive(Clone, Copy)]
pub(crate) struct AttemptLimit {
    timeout: Option<Duration>,
    /// What an expiry reports: the call's deadline when that is what ended it.
    reported: Option<Duration>,
}

impl AttemptLimit {
    /// Runs `work` within the limit; on expiry, a timeout of `endpoint` whose outcome is
    /// unknown when `sent` (the request may have reached the server).
    pub(crate) async fn run<T>(
        self,
        endpoint: &str,
        sent: bool,
        work: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match self.timeout {
            Some(after) => tokio::time::timeout(after, work)
                .await
                .map_err(|_| Error::Timeout {
                    endpoint: endpoint.to_string(),
                    after: self.reported.unwrap_or(after),
                    outcome_unknown: sent,
                })?,
            None => work.await,
        }
    }
}

/// What one attempt got.
enum Answer {
    Body(Body),
    /// A streamed answer, with the connection it holds.
    Stream(Incoming, Conn),
}

impl Transport {
    /// A builder for a transport.
    pub fn builder() -> TransportBuilder {
        TransportBuilder::default()
    }

    /// A transport to one endpoint with default settings.
    pub fn new(endpoint: impl Into<String>) -> Result<Transport, Error> {
        Transport::builder().endpoint(endpoint).build()
    }

    pub(crate) fn from_builder(b: TransportBuilder) -> Result<Transport, Error> {
        if b.endpoints.is_empty() {
            return Err(Error::Config(
                "no endpoint given: add one with .endpoint(\"http://127.0.0.1:2379\")".into(),
            ));
        }
        let endpoints = b
            .endpoints
            .iter()
            .map(|url| Endpoint::parse(url, b.api_prefix.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        let any_https = endpoints.iter().any(Endpoint::is_https);
        let connector = tls::connector(b.connect_timeout, b.tls.as_ref(), any_https, false)?;
        let pool = Pool::new(connector, b.pool_idle_timeout, endpoints.len());
        #[cfg(feature = "grpc")]
        let grpc = match b.protocol {
            crate::Protocol::Grpc => Some(crate::grpc::Grpc::new(
                tls::connector(b.connect_timeout, b.tls.as_ref(), any_https, true)?,
                endpoints.len(),
                b.max_response_len,
            )),
            crate::Protocol::Gateway => None,
        };
        let token = match b.token {
            Some(t) => {
                let mut value = HeaderValue::from_str(&t.0).map_err(|_| {
                    Error::Config("the auth token is not a valid header value".into())
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Transport {
            inner: Arc::new(Inner {
                endpoints,
                pool,
                preferred: AtomicUsize::new(0),
                request_timeout: b.request_timeout,
                deadline: b.deadline,
                retry: b.retry,
                max_response_len: b.max_response_len,
                credentials: b.credentials,
                require_leader: b.require_leader,
                token: RwLock::new(token),
                auth_off: std::sync::atomic::AtomicBool::new(false),
                auth_lock: tokio::sync::Mutex::new(()),
                spare: std::sync::Mutex::new(Vec::new()),
                #[cfg(feature = "grpc")]
                grpc,
            }),
        })
    }

    /// The endpoint URLs, in configured order.
    pub fn endpoints(&self) -> Vec<String> {
        self.inner
            .endpoints
            .iter()
            .map(|e| e.base.clone())
            .collect()
    }

    /// The endpoint that answered last, where the next request goes first.
    pub fn current_endpoint(&self) -> &str {
        &self.inner.endpoints[self.preferred()].base
    }

    pub(crate) fn preferred(&self) -> usize {
        self.inner.preferred.load(Ordering::Relaxed) % self.inner.endpoints.len()
    }

    /// Makes the next requests start at the endpoint after `endpoint`, e.g. after a stream
    /// from it broke.
    pub fn demote(&self, endpoint: &str) {
        let n = self.inner.endpoints.len();
        if let Some(i) = self.inner.endpoints.iter().position(|e| e.base == endpoint) {
            let _ = self.inner.preferred.compare_exchange(
                i,
                (i + 1) % n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Sends a request and decodes its answer: the path, whether a retry is safe, whether it
    /// needs a leader and the decoder all come from the request type (see [`Rpc`]).
    ///
    /// Cancel safety: dropping the future abandons the request; its connection is closed,
    /// not reused. A write abandoned this way may or may not have been applied.
    pub async fn call<R: Rpc>(&self, request: &R) -> Result<R::Response, Error> {
        self.call_within(request, self.inner.deadline).await
    }

    /// [`call`](Self::call) with a deadline of its own for the whole call, retries included
    /// (`None`: none), instead of the transport's default.
    pub async fn call_within<R: Rpc>(
        &self,
        request: &R,
        deadline: Option<Duration>,
    ) -> Result<R::Response, Error> {
        let route = Route {
            method: R::PATH,
            idempotency: request.idempotency(),
            require_leader: R::REQUIRE_LEADER,
            deadline,
        };
        #[cfg(feature = "grpc")]
        if let Some(grpc) = &self.inner.grpc {
            let (_, answer) = self
                .failover(route, |idx, token, until| {
                    self.grpc_attempt(grpc, idx, route, request, token, until)
                })
                .await?;
            return Ok(answer);
        }
        let (endpoint, bytes) = self.call_unary(route, request).await?;
        let decoded = R::decode(&bytes).map_err(|source| Error::Decode {
            endpoint: self.inner.endpoints[endpoint].base.clone(),
            source,
        });
        self.recycle(bytes);
        decoded
    }

    /// Sends an untyped request to `method` (e.g. `"kv/put"`) and decodes the answer, for
    /// gateway methods that have no [`Rpc`] type.
    pub async fn unary<Req, Resp>(
        &self,
        method: &str,
        request: &Req,
        idempotency: Idempotency,
    ) -> Result<Resp, Error>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let route = Route {
            method,
            idempotency,
            deadline: self.inner.deadline,
            require_leader: true,
        };
        let (endpoint, bytes) = self.call_unary(route, request).await?;
        let decoded = etcd_wire::from_slice(&bytes).map_err(|source| Error::Decode {
            endpoint: self.inner.endpoints[endpoint].base.clone(),
            source,
        });
        self.recycle(bytes);
        decoded
    }

    /// Sends a unary request with failover and returns the endpoint index and answer body.
    async fn call_unary<Req>(&self, route: Route<'_>, request: &Req) -> Result<(usize, Body), Error>
    where
        Req: Serialize + ?Sized,
    {
        self.gateway_only(route.method)?;
        let body = encode(request)?;
        // Pinned in place: wrapping the (several KiB) future by value would copy it.
        let call = std::pin::pin!(self.exchange(route, body, Call::Unary));
        let (endpoint, answer) = call
            .instrument(tracing::debug_span!("etcd", method = route.method))
            .await?;
        match answer {
            Answer::Body(bytes) => Ok((endpoint, bytes)),
            Answer::Stream(..) => Err(Error::Config(
                "internal: stream answer to a unary call".into(),
            )),
        }
    }

    /// Sends the one request of a streaming method whose stream answers exactly once, such
    /// as the gateway's `lease/keepalive` over a plain POST, over a pooled connection, and
    /// decodes that answer.
    pub async fn call_stream_once<R: StreamRpc>(&self, request: &R) -> Result<R::Response, Error> {
        self.call_stream_once_within(request, self.inner.deadline)
            .await
    }

    /// [`call_stream_once`](Self::call_stream_once) with a deadline of its own for the
    /// whole call, retries included (`None`: none): a keep-alive must not wait out the
    /// request timeout on a frozen member while its lease runs out.
    pub async fn call_stream_once_within<R: StreamRpc>(
        &self,
        request: &R,
        deadline: Option<Duration>,
    ) -> Result<R::Response, Error> {
        let route = Route {
            method: R::PATH,
            idempotency: Idempotency::Idempotent,
            deadline,
            require_leader: R::REQUIRE_LEADER,
        };
        #[cfg(feature = "grpc")]
        if let Some(grpc) = &self.inner.grpc {
            return self.grpc_call_stream_once(grpc, route, request).await;
        }
        let (endpoint, bytes) = self.call_unary(route, request).await?;
        let endpoint = &self.inner.endpoints[endpoint].base;
        let decode_error = |source| Error::Decode {
            endpoint: endpoint.clone(),
            source,
        };
        let mut decoder = StreamDecoder::new(self.inner.max_response_len);
        decoder.push(&bytes).map_err(decode_error)?;
        self.recycle(bytes);
        let line = decoder
            .finish()
            .map_err(decode_error)?
            .ok_or(etcd_wire::DecodeError::NotAMessage)
            .map_err(decode_error)?;
        match parse_message::<R::Response>(&line).map_err(decode_error)? {
            StreamMessage::Result(message) => Ok(message),
            StreamMessage::Error(status) => Err(Error::Server {
                endpoint: endpoint.clone(),
                status,
            }),
        }
    }

    /// Opens a streaming call with one request (watch, observe, snapshot) over its own POST
    /// and returns its answers as a [`Stream`](futures_core::Stream).
    ///
    /// Opening is retried on another endpoint like an idempotent request; the request timeout
    /// applies until the response headers arrive. The stream has its own connection, which
    /// is closed when the stream is dropped (never returned to the pool).
    pub async fn call_stream<R: StreamRpc>(
        &self,
        request: &R,
    ) -> Result<MessageStream<R::Response>, Error> {
        let route = Route {
            method: R::PATH,
            idempotency: Idempotency::Idempotent,
            deadline: self.inner.deadline,
            require_leader: R::REQUIRE_LEADER,
        };
        #[cfg(feature = "grpc")]
        if let Some(grpc) = &self.inner.grpc {
            return self.grpc_call_stream(grpc, route, request).await;
        }
        self.open_stream(route, request).await
    }

    /// [`call_stream`](Self::call_stream) for an untyped request to `method`.
    pub async fn stream<Req, Resp>(
        &self,
        method: &str,
        request: &Req,
    ) -> Result<MessageStream<Resp>, Error>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let route = Route {
            method,
            idempotency: Idempotency::Idempotent,
            deadline: self.inner.deadline,
            require_leader: true,
        };
        self.open_stream(route, request).await
    }

    async fn open_stream<Req, Resp>(
        &self,
        route: Route<'_>,
        request: &Req,
    ) -> Result<MessageStream<Resp>, Error>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        self.gateway_only(route.method)?;
        let body = encode(request)?;
        // Pinned in place: wrapping the (several KiB) future by value would copy it.
        let call = std::pin::pin!(self.exchange(route, body, Call::Stream));
        let (endpoint, answer) = call
            .instrument(tracing::debug_span!("etcd_stream", method = route.method))
            .await?;
        match answer {
            Answer::Stream(incoming, conn) => Ok(MessageStream::new(
                incoming,
                conn,
                self.inner.endpoints[endpoint].base.clone(),
                self.inner.max_response_len,
            )),
            Answer::Body(_) => Err(Error::Config(
                "internal: unary answer to a stream call".into(),
            )),
        }
    }

    /// Asks `endpoint` alone, once, whether it has a leader: a serializable one-key read
    /// with the require-leader header, within `timeout`. `Ok` means it answered and has a
    /// leader; a member without one answers "no leader", a frozen one times out.
    pub async fn check_leader(&self, endpoint: &str, timeout: Duration) -> Result<(), Error> {
        let Some(idx) = self.endpoint_index(endpoint) else {
            return Err(Error::Config(format!("unknown endpoint {endpoint}")));
        };
        let request = etcd_wire::RangeRequest {
            key: Bytes::from_static(b"\0"),
            serializable: true,
            count_only: true,
            ..etcd_wire::RangeRequest::default()
        };
        let route = Route {
            method: <etcd_wire::RangeRequest as Rpc>::PATH,
            idempotency: Idempotency::Idempotent,
            deadline: self.inner.deadline,
            require_leader: true,
        };
        let probe = async {
            let token = self.token_for_request(idx).await?;
            self.attempt_rpc(idx, route, &request, token).await
        };
        match tokio::time::timeout(timeout, probe).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Timeout {
                endpoint: endpoint.to_string(),
                after: timeout,
                outcome_unknown: false,
            }),
        }
    }

    pub(crate) fn endpoint_index(&self, endpoint: &str) -> Option<usize> {
        self.inner.endpoints.iter().position(|e| e.base == endpoint)
    }

    /// How long one attempt of a request may take (10 s when unlimited, for callers that
    /// need a bound).
    pub fn request_timeout(&self) -> Duration {
        self.inner
            .request_timeout
            .unwrap_or(Duration::from_secs(10))
    }

    /// True when requests carry an auth token (configured, or from credentials).
    pub fn uses_auth(&self) -> bool {
        self.inner.credentials.is_some() || self.current_token().is_some()
    }

    /// Authenticates again with the configured credentials unless the token was renewed
    /// since `stale` was read; for streams whose server reports the token invalid in its
    /// own way (a watch is cancelled with "permission denied"). Without credentials,
    /// nothing happens.
    pub async fn renew_token(&self) -> Result<(), Error> {
        let stale = self.current_token();
        let idx = self.preferred();
        Box::pin(self.renew_token_unless_replaced(idx, stale)).await
    }

    /// The server version from `GET /version`, asking the endpoints in turn from the
    /// current one until one answers; later requests start at that endpoint.
    pub async fn server_version(&self) -> Result<String, Error> {
        let n = self.inner.endpoints.len();
        if n > 1 && !self.inner.endpoints[self.preferred()].prefix_known() {
            Box::pin(self.find_live(None)).await;
        }
        let start = self.preferred();
        let mut last = None;
        for i in 0..n {
            let idx = (start + i) % n;
            match self.fetch_version(idx).await {
                Ok(v) => {
                    self.inner.preferred.store(idx, Ordering::Relaxed);
                    return Ok(v.etcdserver);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(Error::all_failed(n, last))
    }

    /// Asks every endpoint for its version at once (its API prefix, when unknown) and makes
    /// the first in configured order among those that answer within a short grace of the
    /// first answer the preferred one; returns when one is chosen, all have failed, or the
    /// deadline (or the request timeout) has passed. Slower answers are still kept (the
    /// prefix), by tasks of their own.
    async fn find_live(&self, until: Option<Instant>) -> Option<usize> {
        /// How long a later answer from an endpoint earlier in the order may take.
        const GRACE: Duration = Duration::from_millis(50);
        let n = self.inner.endpoints.len();
        let start = self.preferred();
        let (tx, mut rx) = tokio::sync::mpsc::channel(n);
        for idx in 0..n {
            let transport = self.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let ok = transport.prefix(idx).await.is_ok();
                let _ = tx.send((idx, ok)).await;
            });
        }
        drop(tx);
        let wait = until
            .map(|u| u.saturating_duration_since(Instant::now()))
            .or(self.inner.request_timeout)
            .unwrap_or(Duration::from_secs(10));
        let mut stop = Instant::now() + wait;
        let rank = |idx: usize| (idx + n - start) % n;
        let mut best: Option<usize> = None;
        let mut answered = 0;
        while answered < n {
            let Ok(Some((idx, ok))) = tokio::time::timeout_at(stop, rx.recv()).await else {
                break;
            };
            answered += 1;
            if !ok || best.is_some_and(|b| rank(b) < rank(idx)) {
                continue;
            }
            if best.is_none() {
                stop = stop.min(Instant::now() + GRACE);
            }
            best = Some(idx);
            if rank(idx) == 0 {
                break;
            }
        }
        if let Some(idx) = best {
            self.inner.preferred.store(idx, Ordering::Relaxed);
        }
        best
    }

    /// Tries endpoints in turn from the preferred one, within the retry policy.
    async fn exchange(
        &self,
        route: Route<'_>,
        body: Bytes,
        call: Call,
    ) -> Result<(usize, Answer), Error> {
        self.failover(route, |idx, token, until| {
            self.attempt(idx, route, body.clone(), token, call, until)
        })
        .await
    }

    /// Runs `attempt(endpoint index, token, deadline)` on endpoints in turn from the
    /// preferred one, within the retry policy: what is safe to repeat is repeated on the
    /// next endpoint, a rejected token is renewed once, a certificate problem tries each
    /// endpoint once. The one loop of every call, whatever the protocol.
    pub(crate) async fn failover<A, F, Fut>(
        &self,
        route: Route<'_>,
        mut attempt: F,
    ) -> Result<(usize, A), Error>
    where
        F: FnMut(usize, Option<HeaderValue>, Option<Instant>) -> Fut,
        Fut: std::future::Future<Output = Result<A, Error>>,
    {
        let inner = &*self.inner;
        let n = inner.endpoints.len();
        let until = route.deadline.map(|d| Instant::now() + d);
        if n > 1 && !inner.endpoints[self.preferred()].prefix_known() {
            // A fresh client: ask every endpoint at once and start with the first that
            // answers, rather than wait out a hung one.
            Box::pin(self.find_live(until)).await;
        }
        let mut idx = self.preferred();
        let mut reauthenticated = false;
        let mut retry = 0u32;
        let mut tls_failures = 0;
        loop {
            let token = self.token_for_request(idx).await;
            let result = match token {
                Ok(token) => attempt(idx, token.clone(), until)
                    .await
                    .map_err(|e| (e, token)),
                Err(e) => Err((e, None)),
            };
            let (err, token) = match result {
                Ok(answer) => {
                    inner.preferred.store(idx, Ordering::Relaxed);
                    return Ok((idx, answer));
                }
                Err(e) => e,
            };
            if (err.is_invalid_token() || err.is_missing_token())
                && inner.credentials.is_some()
                && !reauthenticated
            {
                // The server rejected the token (or its absence: auth was enabled again)
                // before doing anything: renew it and repeat.
                reauthenticated = true;
                inner.auth_off.store(false, Ordering::Relaxed);
                // Rare: boxed so that its future does not grow every request's.
                Box::pin(self.renew_token_unless_replaced(idx, token)).await?;
                continue;
            }
            if err.is_tls() || err.is_not_etcd() {
                // A certificate problem, or a server that is not etcd, does not go away:
                // each endpoint once, no backoff.
                tls_failures += 1;
                if tls_failures >= n {
                    return Err(Error::all_failed(n, Some(err)));
                }
                idx = (idx + 1) % n;
                continue;
            }
            let again = err.is_unsent()
                || err.is_rejected_unavailable()
                || (route.idempotency == Idempotency::Idempotent
                    && (err.is_timeout()
                        || matches!(err, Error::Io { .. })
                        || err.is_retryable_status()));
            if !again {
                return Err(err);
            }
            tracing::debug!(endpoint = %inner.endpoints[idx].base, error = %err, "etcd request failed");
            retry += 1;
            let past_deadline = until.is_some_and(|u| Instant::now() >= u);
            if retry > inner.retry.max_retries || past_deadline {
                return Err(Error::Unavailable {
                    attempts: retry,
                    last: Box::new(err),
                });
            }
            idx = (idx + 1) % n;
            let mut delay = inner.retry.delay(retry, n);
            if let Some(u) = until {
                delay = delay.min(u.saturating_duration_since(Instant::now()));
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
    }

    /// One request to one endpoint.
    async fn attempt(
        &self,
        idx: usize,
        route: Route<'_>,
        body: Bytes,
        token: Option<HeaderValue>,
        call: Call,
        until: Option<Instant>,
    ) -> Result<Answer, Error> {
        let inner = &*self.inner;
        let endpoint = &inner.endpoints[idx];
        let limit = self.attempt_limit(route, until);
        let prefix = if endpoint.prefix_known() {
            self.prefix(idx).await?
        } else {
            limit.run(&endpoint.base, false, self.prefix(idx)).await?
        };
        let uri = endpoint.method_uri(prefix, route.method)?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(HOST, endpoint.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, token);
        }
        if route.require_leader && inner.require_leader {
            request = request.header(REQUIRE_LEADER, HeaderValue::from_static("true"));
        }
        if matches!(call, Call::Stream) {
            // A stream owns its connection: never hand it back to the pool.
            request = request.header(CONNECTION, "close");
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| Error::Config(format!("invalid request: {e}")))?;
        let exchange = async {
            let (response, conn) = inner
                .pool
                .send(idx, &endpoint.origin, request)
                .await
                .map_err(|e| send_error(&endpoint.base, e))?;
            let status = response.status();
            if status.is_success() && matches!(call, Call::Stream) {
                return Ok(Answer::Stream(response.into_body(), conn));
            }
            let bytes = self.read_body(idx, response.into_body()).await?;
            if !matches!(call, Call::Stream) {
                inner.pool.give_back(idx, conn);
            }
            if status.is_success() {
                Ok(Answer::Body(bytes))
            } else {
                Err(server_error(&endpoint.base, status, &bytes))
            }
        };
        limit
            .run(&endpoint.base, true, std::pin::pin!(exchange))
            .await
    }

    /// How long one attempt may take: the request timeout, or what is left of the call's
    /// deadline when that is sooner.
    pub(crate) fn attempt_limit(&self, route: Route<'_>, until: Option<Instant>) -> AttemptLimit {
        let left = until.map(|u| u.saturating_duration_since(Instant::now()));
        let timeout = match (self.inner.request_timeout, left) {
            (Some(t), Some(l)) => Some(t.min(l)),
            (t, l) => t.or(l),
        };
        // When the call's deadline is what ends the attempt, the error names the deadline.
        let reported = match (timeout, left, route.deadline) {
            (Some(t), Some(l), Some(d)) if l <= t => Some(d),
            (t, ..) => t,
        };
        AttemptLimit { timeout, reported }
    }

    /// Reads a whole body, within the response limit.
    ///
    /// A body that arrives in one frame is returned as it is (no copy). Otherwise frames are
    /// copied into one buffer as they arrive and dropped at once, so that hyper can reuse its
    /// read buffer instead of allocating (and page-faulting in) a new one for every frame of a
    /// large answer.
    async fn read_body(&self, idx: usize, mut body: Incoming) -> Result<Body, Error> {
        let limit = self.inner.max_response_len;
        let too_large = || Error::ResponseTooLarge {
            endpoint: self.inner.endpoints[idx].base.clone(),
            limit,
        };
        if body.size_hint().lower() > limit as u64 {
            return Err(too_large());
        }
        let mut first: Option<Bytes> = None;
        let mut joined: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Io {
                endpoint: self.inner.endpoints[idx].base.clone(),
                outcome_unknown: true,
                source: Box::new(e),
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let received = first.as_ref().map_or(0, Bytes::len) + joined.len();
            if received + data.len() > limit {
                return Err(too_large());
            }
            match first.take() {
                None if joined.is_empty() => first = Some(data),
                previous => {
                    if let Some(previous) = previous {
                        joined = self.take_spare();
                        let hint = usize::try_from(body.size_hint().lower()).unwrap_or(0);
                        joined.reserve((previous.len() + data.len()).saturating_add(hint));
                        joined.extend_from_slice(&previous);
                    }
                    joined.extend_from_slice(&data);
                }
            }
        }
        Ok(match first {
            Some(frame) => Body::Frame(frame),
            None => Body::Joined(joined),
        })
    }

    /// An empty buffer to join a large answer in: the one kept from the last, if any.
    fn take_spare(&self) -> Vec<u8> {
        let mut spare = match self.inner.spare.lock() {
            Ok(mut guard) => std::mem::take(&mut *guard),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        spare.clear();
        spare
    }

    /// Keeps a decoded answer's joined buffer for the next large answer (the larger of the
    /// two, up to [`MAX_SPARE`]).
    fn recycle(&self, body: Body) {
        let Body::Joined(buffer) = body else {
            return;
        };
        if buffer.capacity() > MAX_SPARE {
            return;
        }
        let mut spare = match self.inner.spare.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buffer.capacity() > spare.capacity() {
            *spare = buffer;
        }
    }

    /// One attempt of `request` on endpoint `idx`, whatever the protocol, within the
    /// request timeout.
    async fn attempt_rpc<R: Rpc>(
        &self,
        idx: usize,
        route: Route<'_>,
        request: &R,
        token: Option<HeaderValue>,
    ) -> Result<R::Response, Error> {
        #[cfg(feature = "grpc")]
        if let Some(grpc) = &self.inner.grpc {
            return self
                .grpc_attempt(grpc, idx, route, request, token, None)
                .await;
        }
        let answer = self
            .attempt(idx, route, encode(request)?, token, Call::Unary, None)
            .await?;
        let Answer::Body(bytes) = answer else {
            return Err(Error::Config(
                "internal: stream answer to a unary call".into(),
            ));
        };
        let decoded = R::decode(&bytes).map_err(|source| Error::Decode {
            endpoint: self.inner.endpoints[idx].base.clone(),
            source,
        });
        self.recycle(bytes);
        decoded
    }

    /// Untyped calls name gateway paths and carry JSON: they have no gRPC form.
    fn gateway_only(&self, method: &str) -> Result<(), Error> {
        #[cfg(feature = "grpc")]
        if self.inner.grpc.is_some() {
            return Err(Error::Config(format!(
                "{method}: untyped calls need the gateway protocol; over gRPC use a typed request (etcd_wire::Rpc)"
            )));
        }
        let _ = method;
        Ok(())
    }

    /// The protocol this transport speaks.
    pub fn protocol(&self) -> crate::Protocol {
        #[cfg(feature = "grpc")]
        if self.inner.grpc.is_some() {
            return crate::Protocol::Grpc;
        }
        crate::Protocol::Gateway
    }

    /// The API prefix of an endpoint, asking `GET /version` the first time.
    pub(crate) async fn prefix(&self, idx: usize) -> Result<&str, Error> {
        let endpoint = &self.inner.endpoints[idx];
        endpoint
            .prefix
            .get_or_try_init(|| async {
                // Once per endpoint: boxed so that every request's future stays small.
                let v = Box::pin(self.fetch_version(idx)).await?;
                // An answer without a version (a proxy...) is taken as a current etcd.
                let prefix = v.api_prefix().unwrap_or("/v3");
                tracing::debug!(endpoint = %endpoint.base, version = %v.etcdserver, prefix, "detected API prefix");
                Ok::<_, Error>(prefix.to_string())
            })
            .await
            .map(String::as_str)
    }

    async fn fetch_version(&self, idx: usize) -> Result<VersionResponse, Error> {
        #[cfg(feature = "grpc")]
        if let Some(grpc) = &self.inner.grpc {
            return match self.grpc_version(grpc, idx).await {
                // With auth on, etcd 3.4.42+, 3.5.28 to 3.5.31 and 3.6.9 to 3.6.11 answer
                // Maintenance/Status only to an admin (CVE-2026-33413): the member is there,
                // and `GET /version` on the same port (HTTP/1.1) tells its version to anyone.
                Err(e) if is_auth_refusal(&e) => {
                    tracing::debug!(endpoint = %self.inner.endpoints[idx].base, error = %e, "Maintenance/Status refused: the version from GET /version");
                    self.http_version(idx).await.map_err(|http| {
                        tracing::debug!(error = %http, "GET /version failed too");
                        e
                    })
                }
                other => other,
            };
        }
        self.http_version(idx).await
    }

    /// The version from `GET /version` (HTTP/1.1, no token needed): an answer that is not
    /// etcd's (a 4xx, an HTML page, JSON without a version) is [`Error::NotEtcd`].
    async fn http_version(&self, idx: usize) -> Result<VersionResponse, Error> {
        let inner = &*self.inner;
        let endpoint = &inner.endpoints[idx];
        let request = Request::builder()
            .method(Method::GET)
            .uri(format!("{}/version", endpoint.path))
            .header(HOST, endpoint.host.clone())
            .body(Full::new(Bytes::new()))
            .map_err(|e| Error::Config(format!("invalid endpoint: {e}")))?;
        let exchange = async {
            let (response, conn) = inner
                .pool
                .send(idx, &endpoint.origin, request)
                .await
                .map_err(|e| send_error(&endpoint.base, e))?;
            let status = response.status();
            let bytes = self.read_body(idx, response.into_body()).await?;
            inner.pool.give_back(idx, conn);
            if status.is_server_error() {
                // Something in between (or a starting member) failing: not a verdict.
                return Err(server_error(&endpoint.base, status, &bytes));
            }
            let not_etcd = |reason: String| Error::NotEtcd {
                endpoint: endpoint.base.clone(),
                reason,
            };
            if !status.is_success() {
                return Err(not_etcd(crate::error::not_etcd_answer(
                    status.as_u16(),
                    &bytes,
                )));
            }
            match etcd_wire::from_slice::<VersionResponse>(&bytes) {
                Ok(v) if v.server_version().is_some() => Ok(v),
                _ => Err(not_etcd(crate::error::not_etcd_answer(
                    status.as_u16(),
                    &bytes,
                ))),
            }
        };
        let after = inner.request_timeout.unwrap_or(Duration::from_secs(10));
        tokio::time::timeout(after, exchange)
            .await
            .map_err(|_| Error::Timeout {
                endpoint: endpoint.base.clone(),
                after,
                outcome_unknown: false,
            })?
    }

    /// The token to send: the configured one, or one fetched with the credentials.
    pub(crate) async fn token_for_request(&self, idx: usize) -> Result<Option<HeaderValue>, Error> {
        if let Some(t) = self.current_token() {
            return Ok(Some(t));
        }
        if self.inner.credentials.is_none() || self.inner.auth_off.load(Ordering::Relaxed) {
            return Ok(None);
        }
        Box::pin(self.renew_token_unless_replaced(idx, None)).await?;
        Ok(self.current_token())
    }

    fn current_token(&self) -> Option<HeaderValue> {
        match self.inner.token.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Authenticates again unless another task already replaced the `stale` token.
    async fn renew_token_unless_replaced(
        &self,
        idx: usize,
        stale: Option<HeaderValue>,
    ) -> Result<(), Error> {
        let Some(credentials) = &self.inner.credentials else {
            return Ok(());
        };
        let _guard = self.inner.auth_lock.lock().await;
        let current = self.current_token();
        if current.is_some() && current != stale {
            return Ok(());
        }
        let request = AuthenticateRequest {
            name: credentials.user.clone(),
            password: credentials.password.clone(),
        };
        let route = Route {
            method: <AuthenticateRequest as Rpc>::PATH,
            idempotency: Idempotency::Idempotent,
            deadline: self.inner.deadline,
            require_leader: false,
        };
        let answer = self.attempt_rpc(idx, route, &request, None).await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) if e.is_auth_not_enabled() => {
                // Auth was disabled: go on without a token until the server asks for one.
                self.inner.auth_off.store(true, Ordering::Relaxed);
                match self.inner.token.write() {
                    Ok(mut guard) => *guard = None,
                    Err(poisoned) => *poisoned.into_inner() = None,
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let auth: AuthenticateResponse = answer;
        let mut value = HeaderValue::from_str(&auth.token).map_err(|_| Error::Http {
            endpoint: self.inner.endpoints[idx].base.clone(),
            status: 200,
            body: "authenticate returned a token that is not a valid header value".into(),
        })?;
        // Never shown by hyper's or http's Debug.
        value.set_sensitive(true);
        match self.inner.token.write() {
            Ok(mut guard) => *guard = Some(value),
            Err(poisoned) => *poisoned.into_inner() = Some(value),
        }
        Ok(())
    }
}

fn encode<T: Serialize + ?Sized>(request: &T) -> Result<Bytes, Error> {
    serde_json::to_vec(request)
        .map(Bytes::from)
        .map_err(Error::Encode)
}

fn send_error(endpoint: &str, e: SendError) -> Error {
    match e {
        SendError::Connect(source) => crate::error::connect_error(endpoint, source),
        // A certificate refused by the server shows (TLS 1.3) as its alert on the first
        // read, before it handled the request.
        SendError::NotSent(source) | SendError::Io(source)
            if crate::error::tls_cause(&source).is_some() =>
        {
            Error::TlsHandshake {
                endpoint: endpoint.to_string(),
                source: Box::new(source),
            }
        }
        SendError::NotSent(source) => Error::Io {
            endpoint: endpoint.to_string(),
            outcome_unknown: false,
            source: Box::new(source),
        },
        SendError::Io(source) => Error::Io {
            endpoint: endpoint.to_string(),
            outcome_unknown: true,
            source: Box::new(source),
        },
    }
}

/// The server refused a request for want of a token or of a permission: it is up.
#[cfg(feature = "grpc")]
fn is_auth_refusal(e: &Error) -> bool {
    e.is_missing_token()
        || e.is_invalid_token()
        || e.status()
            .is_some_and(|s| s.grpc_code() == etcd_wire::Code::PermissionDenied)
}

fn server_error(endpoint: &str, status: StatusCode, body: &[u8]) -> Error {
    match etcd_wire::from_slice::<etcd_wire::Status>(body) {
        Ok(s) if !s.message.is_empty() || s.grpc_code() != etcd_wire::Code::Unknown => {
            Error::Server {
                endpoint: endpoint.to_string(),
                status: s,
            }
        }
        _ => {
            let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
            Error::Http {
                endpoint: endpoint.to_string(),
                status: status.as_u16(),
                body: text,
            }
        }
    }
}
