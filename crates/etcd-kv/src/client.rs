//! The client: a cheap-to-clone handle shared by many tasks.

use crate::backend::Backend;
use crate::config::{Counters, Limits, Liveness, StreamMode, StreamStats};
use crate::error::{Error, Result};
use crate::key::{IntoBytes, Namespace};
use crate::lease::hub::KeepAliveHub;
use crate::lease::once::OnceStream;
use crate::membership::AutoSync;
use crate::watch::hub::WatchHub;
use etcd_transport::{Protocol, RetryConfig, TlsConfig, Transport, TransportBuilder};
use etcd_wire::Rpc;
use std::sync::Arc;
use std::time::Duration;

/// An etcd client. Clone it freely: clones share connections. Every method takes `&self`.
///
/// ```no_run
/// # async fn demo() -> etcd_kv::Result<()> {
/// let client = etcd_kv::Client::connect("http://127.0.0.1:2379").await?;
/// client.put("greeting", "hello").await?;
/// let kv = client.get("greeting").await?.expect("just written");
/// assert_eq!(kv.value(), b"hello");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    pub(crate) namespace: Namespace,
    /// This view's deadline for each call, retries included; `None`: the client's.
    pub(crate) deadline: Option<Duration>,
}

pub(crate) struct Inner {
    pub(crate) backend: Backend,
    pub(crate) limits: Limits,
    pub(crate) stream_mode: StreamMode,
    /// The watches' driver, started by the first watch.
    pub(crate) watch_hub: WatchHub,
    /// The keep-alives' driver, started by the first keeper.
    pub(crate) keep_alive_hub: KeepAliveHub,
    /// The stream of [`Client::lease_keep_alive_once`], opened by its first call.
    pub(crate) once_stream: OnceStream,
    /// What [`Client::stream_stats`] reports.
    pub(crate) counters: Arc<Counters>,
    /// The highest revision of a key-value answer (see [`crate::floor`]).
    pub(crate) floor: crate::floor::Floor,
    /// The task following the cluster's membership, when asked for; ends with the client.
    _auto_sync: Option<AutoSync>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.inner.backend.endpoints())
            .field("namespace", &self.namespace.0)
            .finish()
    }
}

impl Client {
    /// Connects to one endpoint with default settings and checks that it answers as etcd
    /// does (see [`ClientBuilder::connect`]).
    ///
    /// `endpoint` is a URL (`http://127.0.0.1:2379`, `https://etcd.example:2379`) or a bare
    /// `host:port`, which means `http://host:port`; the port is required (see
    /// [`ClientBuilder::endpoint`] for what is refused).
    pub async fn connect(endpoint: impl Into<String>) -> Result<Client> {
        Client::builder().endpoint(endpoint).connect().await
    }

    /// A builder for a client with several endpoints, timeouts, TLS, auth or a namespace.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A view of this client in which every key is prefixed with `prefix` on the way out and
    /// stripped on the way back, like Go's `clientv3/namespace`. Views nest.
    pub fn with_namespace(&self, prefix: impl IntoBytes) -> Client {
        let prefix = prefix.into_bytes();
        let combined = if self.namespace.is_empty() {
            prefix
        } else {
            let mut p = self.namespace.0.to_vec();
            p.extend_from_slice(&prefix);
            p.into()
        };
        Client {
            inner: self.inner.clone(),
            namespace: Namespace(combined),
            deadline: self.deadline,
        }
    }

    /// A view of this client whose calls each have `deadline`, retries across endpoints
    /// included (instead of the client's, 30 s by default; see
    /// [`ClientBuilder::deadline`]): `client.with_deadline(Duration::from_secs(2)).get(k)`.
    /// Watches and keepers are not calls: their own rules apply.
    pub fn with_deadline(&self, deadline: Duration) -> Client {
        Client {
            inner: self.inner.clone(),
            namespace: self.namespace.clone(),
            deadline: Some(deadline),
        }
    }

    /// The namespace prefix of this view (empty for none).
    pub fn namespace(&self) -> &[u8] {
        &self.namespace.0
    }

    /// The endpoint URLs, in configured order (as last set by
    /// [`set_endpoints`](Self::set_endpoints) or a sync).
    pub fn endpoints(&self) -> Vec<String> {
        self.inner.backend.endpoints()
    }

    /// The endpoint the next request goes to first: the one that answered last.
    pub fn current_endpoint(&self) -> String {
        self.inner.backend.current_endpoint()
    }

    /// The endpoint writes start at: the member found leading when last asked, if any
    /// (see [`ClientBuilder::leader_writes`]). Known shortly after the first write.
    pub fn leader_hint(&self) -> Option<String> {
        self.inner.backend.leader_hint()
    }

    /// How often this client's watch and keep-alive streams were reconnected (shared by
    /// its clones).
    pub fn stream_stats(&self) -> StreamStats {
        self.inner.counters.stats()
    }

    /// The server limits requests are checked against before sending.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The version of the server behind the current endpoint, such as `"3.5.1"`.
    pub async fn server_version(&self) -> Result<String> {
        self.inner.backend.server_version().await
    }

    /// A client over `backend` (etcd-transport's, or in unit tests the scripted one), its
    /// stream hubs not started yet.
    pub(crate) fn from_backend(
        backend: Backend,
        limits: Limits,
        stream_mode: StreamMode,
        liveness: Liveness,
        namespace: Namespace,
        auto_sync: Option<AutoSync>,
    ) -> Client {
        let counters = Arc::new(Counters::default());
        Client {
            inner: Arc::new(Inner {
                watch_hub: WatchHub::new(backend.clone(), stream_mode, liveness, counters.clone()),
                keep_alive_hub: KeepAliveHub::new(backend.clone(), stream_mode, counters.clone()),
                once_stream: OnceStream::default(),
                backend,
                limits,
                stream_mode,
                counters,
                floor: Default::default(),
                _auto_sync: auto_sync,
            }),
            namespace,
            deadline: None,
        }
    }

    /// A client over the scripted backend of unit tests, with the default limits and no
    /// namespace.
    #[cfg(test)]
    pub(crate) fn scripted(
        script: &crate::backend::script::Script,
        stream_mode: StreamMode,
        liveness: Liveness,
    ) -> Client {
        Client::from_backend(
            Backend::Script(script.clone()),
            Limits::default(),
            stream_mode,
            liveness,
            Namespace::default(),
            None,
        )
    }

    /// Sends a request and decodes its answer: what travels and how is the backend's.
    /// A request whose keys and values alone exceed the request limit is refused here,
    /// before anything is sent (every unary call of the client passes here).
    pub(crate) async fn call<R: Rpc>(&self, request: &R) -> Result<R::Response> {
        self.inner.limits.check(request.payload_len())?;
        self.inner.backend.call(request, self.deadline).await
    }

    /// Sends a range; a serializable one is asked again (then of another member) while its
    /// answer is older than this client's revision floor ([`crate::floor`]).
    pub(crate) async fn call_range(
        &self,
        request: &etcd_wire::RangeRequest,
    ) -> Result<etcd_wire::RangeResponse> {
        self.inner
            .floor
            .read(
                &self.inner.backend,
                self.deadline,
                request.serializable,
                || self.call(request),
            )
            .await
    }

    /// Raises this client's revision floor to an answer's revision.
    pub(crate) fn saw_revision(&self, revision: i64) {
        self.inner.floor.raise(revision);
    }
}

/// Builds a [`Client`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    transport: TransportBuilder,
    namespace: Option<bytes::Bytes>,
    limits: Limits,
    stream_mode: StreamMode,
    liveness: Liveness,
    auto_sync: Option<Duration>,
    #[cfg(feature = "srv")]
    discovery: Option<etcd_transport::SrvDiscovery>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            transport: Transport::builder(),
            namespace: None,
            limits: Limits::default(),
            stream_mode: StreamMode::default(),
            liveness: Liveness::default(),
            auto_sync: None,
            #[cfg(feature = "srv")]
            discovery: None,
        }
    }
}

impl ClientBuilder {
    /// Adds an endpoint URL: `http://host:port` or `https://host:port`, optionally with a
    /// path (a reverse proxy's); a bare `host:port` means `http://host:port`. The port is
    /// required (etcd's is usually 2379). A member on a unix socket is `unix://<socket path>`
    /// (`unix:///run/etcd.sock`; a relative path is from this process's working
    /// directory: etcd's `--listen-client-urls unix://localhost:2379` makes the socket
    /// `localhost:2379` in etcd's), over either protocol. [`build`](Self::build) and
    /// [`connect`](Self::connect) refuse, with [`Error::InvalidInput`] saying what to write
    /// instead and before anything is resolved or sent, anything that would dial something
    /// else than meant: a missing or out-of-range port, a misspelt or unsupported scheme
    /// (`unixs://`), a path ending in the API prefix (`/v3`: the client
    /// adds it; [`api_prefix`](Self::api_prefix) forces one), credentials in the URL (use
    /// [`credentials`](Self::credentials); the error never shows them), a query, white
    /// space, several endpoints in one string.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.transport = self.transport.endpoint(url);
        self
    }

    /// This builder with the endpoints found by its SRV discovery, if any.
    #[cfg(feature = "srv")]
    async fn discovered(mut self) -> Result<ClientBuilder> {
        if let Some(srv) = self.discovery.take() {
            let found = srv.endpoints().await.map_err(Error::from_transport)?;
            self.transport = self.transport.endpoints(found);
        }
        Ok(self)
    }

    /// Finds the endpoints in DNS SRV records when [`connect`](Self::connect)ing (feature
    /// `srv`): `_etcd-client-ssl._tcp.<domain>` (`https://`) and
    /// `_etcd-client._tcp.<domain>` (`http://`), as `etcdctl --discovery-srv` does. They
    /// come after any endpoints given. A lookup that finds nothing fails `connect` with
    /// [`Error::Transport`] (`SRV discovery under ... failed`). See
    /// [`SrvDiscovery`](etcd_transport::SrvDiscovery).
    ///
    /// ```no_run
    /// # async fn demo() -> etcd_kv::Result<()> {
    /// use etcd_kv::SrvDiscovery;
    /// let client = etcd_kv::Client::builder()
    ///     .discovery(SrvDiscovery::new("example.com"))
    ///     .connect()
    ///     .await?;
    /// # let _ = client; Ok(()) }
    /// ```
    #[cfg(feature = "srv")]
    #[cfg_attr(docsrs, doc(cfg(feature = "srv")))]
    pub fn discovery(mut self, srv: etcd_transport::SrvDiscovery) -> Self {
        self.discovery = Some(srv);
        self
    }

    /// Adds several endpoint URLs; requests fail over between them.
    pub fn endpoints<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.transport = self.transport.endpoints(urls);
        self
    }

    /// How long to wait for a connection. Default 3 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.transport = self.transport.connect_timeout(timeout);
        self
    }

    /// TCP keep-alive of every connection: once a connection has carried nothing for
    /// `interval`, the kernel probes the peer every `interval` and closes the connection
    /// after 3 unanswered probes. Default 30 s; `None` turns it off. It protects idle
    /// connections (pooled ones, a quiet watch) against a peer that vanished without
    /// closing them (a host that lost power, a NAT or firewall that forgot the flow); a
    /// frozen etcd process still answers probes through its kernel, which
    /// [`watch_liveness`](Self::watch_liveness) and the request timeout cover.
    pub fn tcp_keepalive(mut self, interval: Option<Duration>) -> Self {
        self.transport = self.transport.tcp_keepalive(interval);
        self
    }

    /// HTTP/2 keep-alive of the gRPC connections: while calls or streams are open, a PING
    /// every `interval`; one unanswered for `timeout` closes the connection (its calls fail
    /// and its streams move on). Off by default. Keep `interval` at or above etcd's
    /// `--grpc-keepalive-min-time` (5 s by default), which closes connections that ping
    /// more often. See
    /// [`TransportBuilder::http2_keep_alive`](etcd_transport::TransportBuilder::http2_keep_alive).
    pub fn http2_keep_alive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.transport = self.transport.http2_keep_alive(interval, timeout);
        self
    }

    /// How long one attempt of a request may take. Default 10 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.transport = self.transport.request_timeout(timeout);
        self
    }

    /// The retry policy for requests that are safe to repeat.
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.transport = self.transport.retry(retry);
        self
    }

    /// TLS settings for `https://` endpoints.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.transport = self.transport.tls(tls);
        self
    }

    /// Authenticates as this user; tokens are renewed automatically.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.transport = self.transport.credentials(user, password);
        self
    }

    /// Prefixes every key with `prefix` (see [`Client::with_namespace`]).
    pub fn namespace(mut self, prefix: impl IntoBytes) -> Self {
        self.namespace = Some(prefix.into_bytes());
        self
    }

    /// The server's `--max-txn-ops` (default [`DEFAULT_MAX_TXN_OPS`](crate::DEFAULT_MAX_TXN_OPS)): larger transactions
    /// are refused before sending.
    pub fn max_txn_ops(mut self, n: usize) -> Self {
        self.limits.max_txn_ops = n;
        self
    }

    /// The server's `--max-request-bytes` (default [`DEFAULT_MAX_REQUEST_BYTES`](crate::DEFAULT_MAX_REQUEST_BYTES)): a request
    /// whose keys and values alone are larger (a put, a transaction's operations and
    /// compares together, a lock name, an election value) is refused with
    /// [`Error::InvalidInput`] before anything is sent.
    pub fn max_request_bytes(mut self, n: usize) -> Self {
        self.limits.max_request_bytes = n;
        self
    }

    /// Sends this auth token with every request (no renewal; prefer
    /// [`credentials`](Self::credentials)).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.transport = self.transport.token(token);
        self
    }

    /// Uses this API prefix (`/v3`, `/v3beta`, `/v3alpha`) instead of asking each
    /// endpoint's version.
    pub fn api_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.transport = self.transport.api_prefix(prefix);
        self
    }

    /// The largest answer accepted, in bytes (default 64 MiB); page anything larger.
    pub fn max_response_len(mut self, bytes: usize) -> Self {
        self.transport = self.transport.max_response_len(bytes);
        self
    }

    /// The deadline of every call, retries across endpoints included (default 30 s): a
    /// read that keeps failing over ends there, whatever retries the policy still allows.
    /// Per call: [`Client::with_deadline`].
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.transport = self.transport.deadline(deadline);
        self
    }

    /// Removes the per-attempt request timeout.
    pub fn no_request_timeout(mut self) -> Self {
        self.transport = self.transport.no_request_timeout();
        self
    }

    /// How long an idle connection is kept for reuse. Default 60 s.
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.transport = self.transport.pool_idle_timeout(timeout);
        self
    }

    /// Whether calls and watches require the member to have a leader (default true): a
    /// member cut off from its cluster then refuses at once ("no leader", nothing applied),
    /// and the call moves to the next endpoint instead of waiting for etcd's own timeout
    /// with an unknown outcome. Maintenance calls (status...) never require one.
    pub fn require_leader(mut self, on: bool) -> Self {
        self.transport = self.transport.require_leader(on);
        self
    }

    /// Whether the client starts at the first endpoint of the list that answers (default
    /// false). By default each client starts at a place of its own in the list (the
    /// clients of a process in turn, from a random place), so that services built with the
    /// same list spread their requests, watches and keep-alives over the members; a client
    /// still keeps to one member while it answers, and moves on in list order when it does
    /// not. Set it to pin clients to the first endpoint on purpose.
    pub fn prefer_first(mut self, on: bool) -> Self {
        self.transport = self.transport.prefer_first(on);
        self
    }

    /// Whether writes (puts, deletes, transactions that write, lease grants and revokes...)
    /// start at the member that leads, rather than at the member the client keeps to for
    /// reads. etcd hands a write that reaches a follower on to its leader: one more hop,
    /// measured at 17 % of a put's latency and 12–20 % of the members' CPU per write (3
    /// members, etcd 3.5.30, loopback).
    ///
    /// On by default with more than one endpoint; off with
    /// [`prefer_first(true)`](Self::prefer_first) unless set here. The leader is found in
    /// the background (every endpoint's status, asked at the first write, every 10 s while
    /// writes go on, and 1 s after it stopped answering); until then writes start where
    /// reads do. Only where a write starts changes: whether a failed write is retried
    /// follows the same rules either way, and one whose fate is unknown says so
    /// ([`Error::is_outcome_unknown`](crate::Error::is_outcome_unknown)).
    pub fn leader_writes(mut self, on: bool) -> Self {
        self.transport = self.transport.leader_writes(on);
        self
    }

    /// The protocol to speak: etcd's gRPC-JSON gateway (default), or native gRPC. The API,
    /// its types and its errors are the same over either.
    ///
    /// `Protocol::Grpc` needs the cargo feature `grpc` (`etcd-kv = { version = "...",
    /// features = ["grpc"] }`): without it the variant does not exist and the example
    /// below fails to compile with "no variant named `Grpc`".
    ///
    /// ```no_run
    /// # #[cfg(feature = "grpc")]
    /// # async fn demo() -> etcd_kv::Result<()> {
    /// let client = etcd_kv::Client::builder()
    ///     .endpoint("http://127.0.0.1:2379")
    ///     .protocol(etcd_kv::Protocol::Grpc)
    ///     .connect()
    ///     .await?;
    /// client.put("greeting", "hello").await?;
    /// # Ok(()) }
    /// ```
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.transport = self.transport.protocol(protocol);
        self
    }

    /// How watches and keep-alives travel (default [`StreamMode::Auto`]).
    pub fn stream_mode(mut self, mode: StreamMode) -> Self {
        self.stream_mode = mode;
        self
    }

    /// When a silent watch stream is probed, and how long the probe may take (see
    /// [`Liveness`]).
    pub fn watch_liveness(mut self, idle: Duration, timeout: Duration) -> Self {
        self.liveness = Liveness { idle, timeout };
        self
    }

    /// Follows the cluster's membership: every `interval` (the first one after it), the
    /// endpoint list becomes the client URLs of the voting members `member_list` reports
    /// (see [`Client::sync_endpoints`]), so that a member added (or a learner promoted) is
    /// used and a removed one is no longer tried. Off by default, as in Go's clientv3
    /// (`AutoSyncInterval`). A failed sync changes nothing and is tried again at the next
    /// interval; the task ends when the client (and all its clones) is dropped.
    ///
    /// It starts a task: [`build`](Self::build) then needs a tokio runtime. Needs
    /// permission to list members when auth is on (etcd 3.4.42+, 3.5.28+ and 3.6.9+ answer
    /// `member_list` only to an authenticated user).
    pub fn auto_sync(mut self, interval: Duration) -> Self {
        self.auto_sync = Some(interval);
        self
    }

    /// Builds the client without contacting the server. Bad endpoints (see
    /// [`endpoint`](Self::endpoint)) and an empty list are [`Error::InvalidInput`]; so is
    /// [`auto_sync`](Self::auto_sync) outside a tokio runtime.
    pub fn build(self) -> Result<Client> {
        let backend = Backend::Transport(self.transport.build().map_err(Error::from_transport)?);
        let auto_sync = self
            .auto_sync
            .map(|interval| AutoSync::start(backend.clone(), interval))
            .transpose()?;
        Ok(Client::from_backend(
            backend,
            self.limits,
            self.stream_mode,
            self.liveness,
            Namespace(self.namespace.unwrap_or_default()),
            auto_sync,
        ))
    }

    /// Builds the client and checks that an endpoint answers as etcd does (its version:
    /// `GET /version` over the gateway, Maintenance/Status over gRPC); each is tried in
    /// turn, and requests then start at the one that answered. A server that answers
    /// something else (an HTML page, a 404, garbage, no HTTP/2 over gRPC) is
    /// [`Error::NotEtcd`], naming the endpoint; none answering at all is
    /// [`Error::Unavailable`].
    pub async fn connect(self) -> Result<Client> {
        #[cfg(feature = "srv")]
        let builder = self.discovered().await?;
        #[cfg(not(feature = "srv"))]
        let builder = self;
        let client = builder.build()?;
        client.server_version().await?;
        Ok(client)
    }
}
