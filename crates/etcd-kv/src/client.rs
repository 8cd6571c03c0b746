//! The client: a cheap-to-clone handle shared by many tasks.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::key::{IntoBytes, Namespace};
use crate::lease::KeepAliveHub;
use crate::watch::WatchHub;
use etcd_transport::{Protocol, RetryConfig, TlsConfig, Transport, TransportBuilder};
use etcd_wire::Rpc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// etcd's default `--max-txn-ops`: the most operations (and the most compares) one
/// transaction may have.
pub const DEFAULT_MAX_TXN_OPS: usize = 128;

/// etcd's default `--max-request-bytes`: 1.5 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// The server limits a client checks requests against before sending them, so that a
/// transaction too large for etcd is refused with a clear error and nothing is sent. Set
/// them to the server's flags with [`ClientBuilder::max_txn_ops`] and
/// [`ClientBuilder::max_request_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The server's `--max-txn-ops` (default [`DEFAULT_MAX_TXN_OPS`]).
    pub max_txn_ops: usize,
    /// The server's `--max-request-bytes` (default [`DEFAULT_MAX_REQUEST_BYTES`]): every
    /// unary request whose keys and values add up to more is refused before sending.
    pub max_request_bytes: usize,
}

impl Limits {
    /// Refuses a request carrying `payload` bytes of keys and values over
    /// `max_request_bytes`.
    pub(crate) fn check(&self, payload: usize) -> Result<()> {
        if payload > self.max_request_bytes {
            return Err(Error::invalid(format!(
                "the request is too large: its keys and values alone are {payload} bytes, over \
                 the limit of {} bytes (etcd's --max-request-bytes); store less in one request, \
                 or raise the server's --max-request-bytes and the client's max_request_bytes \
                 (ClientBuilder::max_request_bytes) with it",
                self.max_request_bytes
            )));
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_txn_ops: DEFAULT_MAX_TXN_OPS,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        }
    }
}

/// How watches and lease keep-alives travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StreamMode {
    /// All watches of a client share one connection (per endpoint), and so do all
    /// keep-alives (the gateway's WebSocket), where the server allows it; otherwise
    /// [`PerCall`](Self::PerCall), chosen by itself. The default.
    #[default]
    Auto,
    /// One connection (a POST stream) per watch, one request per keep-alive: what works
    /// through any HTTP/1.1 proxy, and with auth on etcd 3.4 and 3.5.
    PerCall,
}

/// How a client finds out that the member under a watch is gone (frozen, cut off from
/// its peers, or unreachable) and moves the watch to another endpoint.
///
/// After `idle` without a message on a watch stream, the client probes it: a ping on the
/// stream's own connection (the gateway's WebSocket; over gRPC the connection is shared
/// with unary calls, which prove it alive), and a serializable one-key read on that member
/// that must be refused at once if the member has no leader. The stream stays if, within
/// `timeout`, the member said it has a leader and the connection answered (or carried a
/// message). A member that answers "no leader" while another endpoint has one is cut off:
/// the watches move at once; where no endpoint has a leader (an election), it is asked again
/// every 200 ms until then, so that an election moves nothing. Otherwise the watches move
/// to the next endpoint and resume from their first undelivered revision.
///
/// What it does not take for a dead member: a busy one (the probe is a tiny read, answered
/// beside large ranges), an unanswered progress request (etcd 3.5.13+ leaves it unanswered
/// while a watch catches up), a short election. What it costs: on a silent stream, one
/// small read per `idle`. The defaults (1 s, 1.5 s) move a watch off a frozen member
/// within 2.5 s of its last message, off a partitioned one within 1 s of its noticing
/// that it lost its leader (etcd's election timeout). Members also end require-leader
/// streams themselves (gRPC and the gateway's POST streams) about three election timeouts
/// after losing their leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Liveness {
    /// Silence after which the stream is probed. Default 1 s.
    pub idle: Duration,
    /// How long a probe may take. Default 1.5 s.
    pub timeout: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            idle: Duration::from_secs(1),
            timeout: Duration::from_millis(1500),
        }
    }
}

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
    pub(crate) liveness: Liveness,
    /// The watches' shared stream, started by the first watch.
    pub(crate) watch_hub: tokio::sync::OnceCell<WatchHub>,
    /// The keep-alives' shared stream, started by the first keeper.
    pub(crate) keep_alive_hub: OnceLock<KeepAliveHub>,
    /// The stream of [`Client::lease_keep_alive_once`], opened by its first call.
    pub(crate) once_stream: crate::lease::OnceStream,
    /// What [`Client::stream_stats`] reports.
    pub(crate) counters: Arc<Counters>,
}

/// The counters behind [`StreamStats`], shared with the stream drivers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) watch_reconnects: AtomicU64,
    pub(crate) keep_alive_reconnects: AtomicU64,
}

/// What a client's streams went through since it was built ([`Client::stream_stats`]).
///
/// A reconnect drops a stream (broken, refused, or a member that failed its liveness probe,
/// see [`Liveness`]) and opens it again, on the next endpoint first; every watch on it
/// resumes from its first undelivered revision, every lease is refreshed on the new one.
/// On a healthy cluster both stay at 0: a count that grows there means needless moves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamStats {
    /// Watch streams dropped and reopened (in the per-call mode, each watch's own).
    pub watch_reconnects: u64,
    /// Keep-alive streams dropped and reopened.
    pub keep_alive_reconnects: u64,
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

    /// The endpoint URLs, in configured order.
    pub fn endpoints(&self) -> Vec<String> {
        self.inner.backend.endpoints()
    }

    /// The endpoint the next request goes to first: the one that answered last.
    pub fn current_endpoint(&self) -> String {
        self.inner.backend.current_endpoint()
    }

    /// How often this client's watch and keep-alive streams were reconnected (shared by
    /// its clones).
    pub fn stream_stats(&self) -> StreamStats {
        StreamStats {
            watch_reconnects: self.inner.counters.watch_reconnects.load(Ordering::Relaxed),
            keep_alive_reconnects: self
                .inner
                .counters
                .keep_alive_reconnects
                .load(Ordering::Relaxed),
        }
    }

    /// The server limits requests are checked against before sending.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The version of the server behind the current endpoint, such as `"3.5.1"`.
    pub async fn server_version(&self) -> Result<String> {
        self.inner.backend.server_version().await
    }

    /// Sends a request and decodes its answer: what travels and how is the backend's.
    /// A request whose keys and values alone exceed the request limit is refused here,
    /// before anything is sent (every unary call of the client passes here).
    pub(crate) async fn call<R: Rpc>(&self, request: &R) -> Result<R::Response> {
        self.inner.limits.check(request.payload_len())?;
        self.inner.backend.call(request, self.deadline).await
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
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            transport: Transport::builder(),
            namespace: None,
            limits: Limits::default(),
            stream_mode: StreamMode::default(),
            liveness: Liveness::default(),
        }
    }
}

impl ClientBuilder {
    /// Adds an endpoint URL: `http://host:port` or `https://host:port`, optionally with a
    /// path (a reverse proxy's); a bare `host:port` means `http://host:port`. The port is
    /// required (etcd's is usually 2379). [`build`](Self::build) and
    /// [`connect`](Self::connect) refuse, with [`Error::InvalidInput`] saying what to write
    /// instead and before anything is resolved or sent, anything that would dial something
    /// else than meant: a missing or out-of-range port, a misspelt or unsupported scheme
    /// (`unix://` is not supported yet), a path ending in the API prefix (`/v3`: the client
    /// adds it; [`api_prefix`](Self::api_prefix) forces one), credentials in the URL (use
    /// [`credentials`](Self::credentials); the error never shows them), a query, white
    /// space, several endpoints in one string.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.transport = self.transport.endpoint(url);
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

    /// The server's `--max-txn-ops` (default [`DEFAULT_MAX_TXN_OPS`]): larger transactions
    /// are refused before sending.
    pub fn max_txn_ops(mut self, n: usize) -> Self {
        self.limits.max_txn_ops = n;
        self
    }

    /// The server's `--max-request-bytes` (default [`DEFAULT_MAX_REQUEST_BYTES`]): a request
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

    /// Builds the client without contacting the server. Bad endpoints (see
    /// [`endpoint`](Self::endpoint)) and an empty list are [`Error::InvalidInput`].
    pub fn build(self) -> Result<Client> {
        let transport = self.transport.build().map_err(Error::from_transport)?;
        Ok(Client {
            inner: Arc::new(Inner {
                backend: Backend::Transport(transport),
                limits: self.limits,
                stream_mode: self.stream_mode,
                liveness: self.liveness,
                watch_hub: tokio::sync::OnceCell::new(),
                keep_alive_hub: OnceLock::new(),
                once_stream: Default::default(),
                counters: Arc::default(),
            }),
            namespace: Namespace(self.namespace.unwrap_or_default()),
            deadline: None,
        })
    }

    /// Builds the client and checks that an endpoint answers as etcd does (its version:
    /// `GET /version` over the gateway, Maintenance/Status over gRPC); each is tried in
    /// turn, and requests then start at the one that answered. A server that answers
    /// something else (an HTML page, a 404, garbage, no HTTP/2 over gRPC) is
    /// [`Error::NotEtcd`], naming the endpoint; none answering at all is
    /// [`Error::Unavailable`].
    pub async fn connect(self) -> Result<Client> {
        let client = self.build()?;
        client.server_version().await?;
        Ok(client)
    }
}
