//! The transport: endpoints, the one failover loop of every call whatever the protocol,
//! and auth tokens. How an attempt travels is [`Wire`]'s.

use crate::bidi::BidiStream;
use crate::config::{Credentials, RetryConfig, TransportBuilder};
use crate::endpoints::{Endpoints, ListRules, Target};
use crate::error::Error;
use crate::gateway::encode;
use crate::route::{Answered, Attempt, AttemptLimit, Route};
use crate::stream::MessageStream;
use crate::wire::Wire;
use bytes::Bytes;
use etcd_wire::{AuthenticateRequest, AuthenticateResponse, Idempotency, Rpc, StreamRpc};
use http::header::HeaderValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

mod leader;

/// A client of etcd in either of its protocols: its gRPC-JSON gateway (HTTP/1.1 and JSON;
/// the default) or, with the cargo feature `grpc` and [`Protocol::Grpc`](crate::Protocol),
/// native gRPC (HTTP/2 and protobuf). Cheap to clone, shared by many tasks. Both protocols
/// share one failover loop (endpoints, retries by idempotency, deadlines, token renewal).
///
/// Over the gateway a call goes to its request type's path after the API prefix (such as
/// `/v3/kv/range`); the prefix (`/v3`, `/v3beta`, `/v3alpha`) is detected once per endpoint
/// from `GET /version`. Over gRPC it goes to its gRPC method (`/etcdserverpb.KV/Range`).
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    /// The endpoints now, replaced whole by [`Transport::set_endpoints`]; a call works on
    /// the list it started with.
    endpoints: RwLock<Arc<Endpoints>>,
    /// How a new list is made: the configured API prefix; whether `https://` endpoints
    /// can be verified (some were configured, or TLS settings were: the connector's roots
    /// are chosen at build time); whether a list starts at its first endpoint.
    rules: ListRules,
    /// How attempts travel: the protocol's side.
    wire: Wire,
    request_timeout: Option<Duration>,
    /// The default deadline of a whole call, retries included.
    deadline: Option<Duration>,
    retry: RetryConfig,
    credentials: Option<Credentials>,
    /// Whether calls that need a leader say so (require-leader metadata).
    require_leader: bool,
    token: RwLock<Option<HeaderValue>>,
    /// The server said auth is not enabled: send no token until it asks for one.
    auth_off: AtomicBool,
    auth_lock: tokio::sync::Mutex<()>,
    /// Where writes start (see [`leader`]).
    leader: leader::LeaderHint,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("endpoints", &self.endpoints())
            .finish_non_exhaustive()
    }
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
        let mut rules = ListRules {
            api_prefix: b.api_prefix.clone(),
            tls_ready: b.tls.is_some(),
            prefer_first: b.prefer_first,
        };
        let list = Endpoints::new(&b.endpoints, &rules)?;
        let any_https = list.any_https();
        rules.tls_ready |= any_https;
        let wire = Wire::new(&b, any_https)?;
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
                endpoints: RwLock::new(Arc::new(list)),
                rules,
                wire,
                request_timeout: b.request_timeout,
                deadline: b.deadline,
                retry: b.retry,
                credentials: b.credentials,
                require_leader: b.require_leader,
                token: RwLock::new(token),
                auth_off: AtomicBool::new(false),
                auth_lock: tokio::sync::Mutex::new(()),
                leader: leader::LeaderHint::new(b.leader_writes.unwrap_or(!b.prefer_first)),
            }),
        })
    }

    /// The endpoint URLs, in configured order (as last set by
    /// [`set_endpoints`](Self::set_endpoints)).
    pub fn endpoints(&self) -> Vec<String> {
        self.list().urls()
    }

    /// Replaces the endpoint list, e.g. with the members a cluster lists now. Calls in
    /// flight finish on the endpoints they started with; later calls use the new list.
    /// An endpoint in both lists keeps its connections and its detected API prefix; the
    /// connections of a dropped one close once the calls and streams using them end.
    /// The preferred endpoint stays the same while it is in the new list.
    ///
    /// URLs are checked as at build time; an error (an invalid URL, an empty list, an
    /// `https://` endpoint for a transport built without TLS settings or `https://`
    /// endpoints) changes nothing. Setting the list it already has changes nothing.
    pub fn set_endpoints<I, S>(&self, urls: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let urls: Vec<String> = urls.into_iter().map(Into::into).collect();
        let mut guard = match self.inner.endpoints.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(list) = guard.replaced(&urls, &self.inner.rules)? {
            tracing::debug!(from = ?guard.urls(), to = ?list.urls(), "endpoints replaced");
            *guard = Arc::new(list);
        }
        Ok(())
    }

    /// The endpoint that answered last, where the next request goes first.
    pub fn current_endpoint(&self) -> String {
        let list = self.list();
        list[list.preferred()].base.clone()
    }

    /// The endpoint list now.
    fn list(&self) -> Arc<Endpoints> {
        match self.inner.endpoints.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes the next requests start at the endpoint after `endpoint`, e.g. after a stream
    /// from it broke.
    pub fn demote(&self, endpoint: &str) {
        let list = self.list();
        if let Some(i) = list.index_of(endpoint) {
            list.demote(i);
        }
    }

    /// The protocol this transport speaks.
    pub fn protocol(&self) -> crate::Protocol {
        self.inner.wire.protocol()
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
        let route = Route::rpc(request, deadline);
        let wire = &self.inner.wire;
        self.answer(route, |at| wire.unary(at, request)).await
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
        let route = Route::untyped(method, idempotency, self.inner.deadline);
        let gateway = self.inner.wire.json(method)?;
        let body = encode(request)?;
        self.answer(route, |at| gateway.unary_json(at, body.clone()))
            .await
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
        let route = Route::stream::<R>(deadline);
        let wire = &self.inner.wire;
        self.answer(route, |at| wire.stream_once(at, request)).await
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
        let route = Route::stream::<R>(self.inner.deadline);
        let wire = &self.inner.wire;
        self.open(route, |at| wire.open_stream(at, request)).await
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
        let route = Route::untyped(method, Idempotency::Idempotent, self.inner.deadline);
        let gateway = self.inner.wire.json(method)?;
        let body = encode(request)?;
        self.open(route, |at| gateway.open_stream(at, body.clone()))
            .await
    }

    /// The answer of a call: `op` under the failover loop, in a span of the method.
    async fn answer<'a, A, Fut>(
        &'a self,
        route: Route<'a>,
        op: impl FnMut(Attempt<'a>) -> Fut,
    ) -> Result<A, Error>
    where
        Fut: Future<Output = Result<Answered<A>, Error>>,
    {
        // Pinned in place: wrapping the (several KiB) future by value would copy it.
        let call = std::pin::pin!(self.failover(route, op));
        let answer = call
            .instrument(tracing::debug_span!("etcd", method = route.method))
            .await?;
        answer
    }

    /// A stream opened by `op` under the failover loop, in a span of the method.
    async fn open<'a, S, Fut>(
        &'a self,
        route: Route<'a>,
        op: impl FnMut(Attempt<'a>) -> Fut,
    ) -> Result<S, Error>
    where
        Fut: Future<Output = Result<S, Error>>,
    {
        let call = std::pin::pin!(self.failover(route, op));
        let stream = call
            .instrument(tracing::debug_span!("etcd_stream", method = route.method))
            .await?;
        Ok(stream)
    }

    /// Opens a bidirectional streaming call (watch, lease keep-alive), trying each endpoint
    /// once from the current one: over the gateway a WebSocket of its own, over gRPC an
    /// HTTP/2 stream on the endpoint's connection.
    ///
    /// A server that refuses the upgrade gives [`Error::UpgradeRefused`] at once (the caller
    /// may fall back to one POST per stream). The WebSocket carries no auth token: etcd 3.4
    /// and 3.5 take none over it (see [`Transport::uses_auth`]).
    pub async fn open_bidi<R: StreamRpc>(&self) -> Result<BidiStream<R>, Error> {
        if !R::BIDIRECTIONAL {
            return Err(Error::Config(format!(
                "{} is not a bidirectional call",
                R::PATH
            )));
        }
        let route = Route::stream::<R>(None);
        let after = self.request_timeout();
        self.each_endpoint(|endpoint| async move {
            let base = endpoint.base.clone();
            let token = self.token_for_request(&endpoint);
            let open = self.attempt(endpoint.clone(), route, None, None, |at| {
                self.inner.wire.open_bidi(at, token)
            });
            match tokio::time::timeout(after, open).await {
                Ok(result) => result,
                Err(_) => Err(Error::Timeout {
                    endpoint: base,
                    after,
                    outcome_unknown: false,
                }),
            }
        })
        .await
    }

    /// Asks `endpoint` alone, once, whether it has a leader: a serializable one-key read
    /// with the require-leader header, within `timeout`. `Ok` means it answered and has a
    /// leader (an answer refusing the read for auth reasons counts: etcd checks the header
    /// first); a member without one answers "no leader", a frozen one times out. An
    /// endpoint no longer in the list is an [`Error::Config`].
    pub async fn check_leader(&self, endpoint: &str, timeout: Duration) -> Result<(), Error> {
        let list = self.list();
        let Some(idx) = list.index_of(endpoint) else {
            return Err(Error::Config(format!("unknown endpoint {endpoint}")));
        };
        let endpoint = list[idx].clone();
        let request = etcd_wire::RangeRequest {
            key: Bytes::from_static(b"\0"),
            serializable: true,
            count_only: true,
            ..etcd_wire::RangeRequest::default()
        };
        let route = Route::rpc(&request, self.inner.deadline);
        let probe = async {
            let token = self.token_for_request(&endpoint).await?;
            self.attempt(endpoint.clone(), route, token, None, |at| {
                self.inner.wire.unary(at, &request)
            })
            .await?
        };
        match tokio::time::timeout(timeout, probe).await {
            Ok(Ok(_)) => Ok(()),
            // etcd checks the require-leader header before anything else: a refusal by its
            // auth layer (this client's token expired, or its user may not read the probe's
            // key) means the member answered and has a leader.
            Ok(Err(e)) if e.is_auth_refusal() => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Timeout {
                endpoint: endpoint.base.clone(),
                after: timeout,
                outcome_unknown: false,
            }),
        }
    }

    /// The deadline of every call, retries across endpoints included (`None`: none).
    pub fn deadline(&self) -> Option<Duration> {
        self.inner.deadline
    }

    /// How long one attempt of a request may take (10 s when unlimited, for callers that
    /// need a bound).
    pub fn request_timeout(&self) -> Duration {
        self.inner
            .request_timeout
            .unwrap_or(Duration::from_secs(10))
    }

    /// The server version (from `GET /version` over the gateway, Maintenance/Status over
    /// gRPC), asking the endpoints in turn from the current one until one answers; later
    /// requests start at that endpoint.
    pub async fn server_version(&self) -> Result<String, Error> {
        let list = self.list();
        if list.len() > 1 && !list[list.preferred()].prefix_known() {
            Box::pin(self.find_live(&list, None)).await;
        }
        let wire = &self.inner.wire;
        let version = self
            .each_endpoint(|endpoint| async move { wire.version(&endpoint).await })
            .await?;
        Ok(version.etcdserver)
    }

    /// Detects the API prefix of `endpoint`, asking its version the first time.
    async fn prefix(&self, endpoint: &Target) -> Result<(), Error> {
        endpoint
            .prefix
            .get_or_try_init(|| async {
                // Once per endpoint: boxed so that every request's future stays small.
                let v = Box::pin(self.inner.wire.version(endpoint)).await?;
                // An answer without a version (a proxy...) is taken as a current etcd.
                let prefix = v.api_prefix().unwrap_or("/v3");
                tracing::debug!(endpoint = %endpoint.base, version = %v.etcdserver, prefix, "detected API prefix");
                Ok::<_, Error>(prefix.to_string())
            })
            .await
            .map(|_| ())
    }

    /// Runs `each(endpoint)` on every endpoint once, from the preferred one, until one
    /// succeeds (it becomes the preferred one). A refused upgrade ends the walk at once:
    /// the server speaks, but not WebSocket.
    async fn each_endpoint<T, F, Fut>(&self, mut each: F) -> Result<T, Error>
    where
        F: FnMut(Arc<Target>) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let list = self.list();
        let n = list.len();
        let start = list.preferred();
        let mut last = None;
        for i in 0..n {
            let idx = (start + i) % n;
            match each(list[idx].clone()).await {
                Ok(answer) => {
                    list.prefer(idx);
                    return Ok(answer);
                }
                Err(e @ Error::UpgradeRefused { .. }) => return Err(e),
                Err(e) => {
                    tracing::debug!(endpoint = %list[idx].base, error = %e, "endpoint failed");
                    last = Some(e);
                }
            }
        }
        Err(Error::all_failed(n, last))
    }

    /// Asks every endpoint of `list` for its version at once (its API prefix, when
    /// unknown) and makes the first in configured order among those that answer within a
    /// short grace of the first answer the preferred one; returns when one is chosen, all
    /// have failed, or the deadline (or the request timeout) has passed. Slower answers are
    /// still kept (the prefix), by tasks of their own.
    async fn find_live(&self, list: &Endpoints, until: Option<Instant>) -> Option<usize> {
        /// How long a later answer from an endpoint earlier in the order may take.
        const GRACE: Duration = Duration::from_millis(50);
        let n = list.len();
        let start = list.preferred();
        let (tx, mut rx) = tokio::sync::mpsc::channel(n);
        for idx in 0..n {
            let transport = self.clone();
            let endpoint = list[idx].clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let ok = transport.prefix(&endpoint).await.is_ok();
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
            list.prefer(idx);
        }
        best
    }

    /// Runs `op` on endpoints in turn from the preferred one ([`attempt`](Self::attempt)),
    /// within the retry policy: what is safe to repeat is repeated on the next endpoint, a
    /// rejected token is renewed once, a certificate problem tries each endpoint once. The
    /// one loop of every call, whatever the protocol. It works on the endpoint list of the
    /// moment it starts.
    async fn failover<'a, A, F, Fut>(&'a self, route: Route<'a>, mut op: F) -> Result<A, Error>
    where
        F: FnMut(Attempt<'a>) -> Fut,
        Fut: Future<Output = Result<A, Error>>,
    {
        let inner = &*self.inner;
        let list = self.list();
        let n = list.len();
        let until = route.deadline.map(|d| Instant::now() + d);
        if n > 1 && !list[list.preferred()].prefix_known() {
            // A fresh client: ask every endpoint at once and start with the first that
            // answers, rather than wait out a hung one.
            Box::pin(self.find_live(&list, until)).await;
        }
        // A write starts at the leader when it is known; a success there leaves the
        // endpoint that reads keep to as it is.
        let from_leader = match route.idempotency {
            Idempotency::NotIdempotent if inner.leader.is_on() => self.write_start(&list),
            _ => None,
        };
        let mut idx = from_leader.unwrap_or_else(|| list.preferred());
        let mut reauthenticated = false;
        let mut retry = 0u32;
        let mut tls_failures = 0;
        loop {
            let endpoint = &list[idx];
            let token = self.token_for_request(endpoint).await;
            let result = match token {
                Ok(token) => self
                    .attempt(endpoint.clone(), route, token.clone(), until, &mut op)
                    .await
                    .map_err(|e| (e, token)),
                Err(e) => Err((e, None)),
            };
            let (err, token) = match result {
                Ok(answer) => {
                    if from_leader != Some(idx) {
                        list.prefer(idx);
                    }
                    return Ok(answer);
                }
                Err(e) => e,
            };
            if from_leader == Some(idx) && !err.is_auth_refusal() {
                // Whatever went wrong there, the next writes start where reads do until
                // the leader is found again.
                list.forget_leader(idx);
            }
            if (err.is_invalid_token() || err.is_missing_token() || err.is_auth_old_revision())
                && inner.credentials.is_some()
                && !reauthenticated
            {
                // The server rejected the token (or its absence: auth was enabled again; or
                // its age: users or roles changed since) before doing anything: renew it
                // (once for every caller that met the same token) and repeat.
                reauthenticated = true;
                inner.auth_off.store(false, Ordering::Relaxed);
                // Rare: boxed so that its future does not grow every request's.
                Box::pin(self.renew_token_unless_replaced(endpoint, token)).await?;
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
            tracing::debug!(endpoint = %endpoint.base, error = %err, "etcd request failed");
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

    /// One attempt on `endpoint`: it is probed first when it has not answered yet (its API
    /// prefix; an unanswered probe means nothing was sent), then `op` runs the protocol's
    /// side of the attempt, within the same time limit.
    async fn attempt<'a, A, Fut>(
        &'a self,
        endpoint: Arc<Target>,
        route: Route<'a>,
        token: Option<HeaderValue>,
        until: Option<Instant>,
        op: impl FnOnce(Attempt<'a>) -> Fut,
    ) -> Result<A, Error>
    where
        Fut: Future<Output = Result<A, Error>>,
    {
        let limit = AttemptLimit::new(self.inner.request_timeout, route, until);
        if !endpoint.prefix_known() {
            // Once per endpoint: boxed so that every attempt's future stays small (and the
            // known prefix costs no future at all).
            Box::pin(limit.run(&endpoint.base, false, self.prefix(&endpoint))).await?;
        }
        op(Attempt {
            endpoint,
            route,
            token,
            require_leader: route.require_leader && self.inner.require_leader,
            limit,
        })
        .await
    }

    /// True when requests carry an auth token (configured, or from credentials).
    pub fn uses_auth(&self) -> bool {
        self.inner.credentials.is_some() || self.current_token().is_some()
    }

    /// Authenticates again with the configured credentials unless the token was renewed
    /// since `stale` was read; for streams whose server reports the token invalid in its
    /// own way (a watch is cancelled with "permission denied"). Without credentials,
    /// nothing happens.
    ///
    /// Asks the preferred endpoint first, then the others in turn while an endpoint cannot
    /// answer (unreachable, timed out, without a leader).
    pub async fn renew_token(&self) -> Result<(), Error> {
        self.renew_token_from(None).await
    }

    /// As [`renew_token`](Self::renew_token), asking `endpoint` first: the member that
    /// just refused a stream's token is known to answer, where the preferred endpoint may
    /// be one that stopped answering.
    pub async fn renew_token_at(&self, endpoint: &str) -> Result<(), Error> {
        self.renew_token_from(Some(endpoint)).await
    }

    /// Renews the token asking `first` (or the preferred endpoint) first, then the others.
    async fn renew_token_from(&self, first: Option<&str>) -> Result<(), Error> {
        let stale = self.current_token();
        let list = self.list();
        let n = list.len();
        let start = first
            .and_then(|e| list.index_of(e))
            .unwrap_or_else(|| list.preferred());
        let mut last = None;
        for i in 0..n {
            let endpoint = &list[(start + i) % n];
            match Box::pin(self.renew_token_unless_replaced(endpoint, stale.clone())).await {
                Ok(()) => return Ok(()),
                // Authenticating again is harmless: on to the next member while this one
                // could not answer.
                Err(e)
                    if e.is_unsent()
                        || e.is_timeout()
                        || matches!(e, Error::Io { .. })
                        || e.is_retryable_status() =>
                {
                    tracing::debug!(endpoint = %endpoint.base, error = %e, "token renewal failed");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::all_failed(n, last))
    }

    /// The token to send: the configured one, or one fetched with the credentials (from
    /// `endpoint`).
    async fn token_for_request(
        &self,
        endpoint: &Arc<Target>,
    ) -> Result<Option<HeaderValue>, Error> {
        if let Some(t) = self.current_token() {
            return Ok(Some(t));
        }
        if self.inner.credentials.is_none() || self.inner.auth_off.load(Ordering::Relaxed) {
            return Ok(None);
        }
        Box::pin(self.renew_token_unless_replaced(endpoint, None)).await?;
        Ok(self.current_token())
    }

    fn current_token(&self) -> Option<HeaderValue> {
        match self.inner.token.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_token(&self, token: Option<HeaderValue>) {
        match self.inner.token.write() {
            Ok(mut guard) => *guard = token,
            Err(poisoned) => *poisoned.into_inner() = token,
        }
    }

    /// Authenticates again unless another task already replaced the `stale` token.
    async fn renew_token_unless_replaced(
        &self,
        endpoint: &Arc<Target>,
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
        let route = Route::rpc(&request, self.inner.deadline).any_member();
        let answer = self
            .attempt(endpoint.clone(), route, None, None, |at| {
                self.inner.wire.unary(at, &request)
            })
            .await
            .and_then(|answered| answered);
        let auth: AuthenticateResponse = match answer {
            Ok(answer) => answer,
            Err(e) if e.is_auth_not_enabled() => {
                // Auth was disabled: go on without a token until the server asks for one.
                self.inner.auth_off.store(true, Ordering::Relaxed);
                self.set_token(None);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut value = HeaderValue::from_str(&auth.token).map_err(|_| Error::Http {
            endpoint: endpoint.base.clone(),
            status: 200,
            body: "authenticate returned a token that is not a valid header value".into(),
        })?;
        // Never shown by hyper's or http's Debug.
        value.set_sensitive(true);
        self.set_token(Some(value));
        Ok(())
    }
}
