//! Transport configuration: endpoints, timeouts, retries, TLS, credentials.

use crate::backoff::Backoff;
use crate::error::Error;
use crate::Transport;
use std::path::Path;
use std::time::Duration;

/// How failed requests are retried across endpoints.
///
/// Only requests that are safe to repeat are retried: reads, and any request that provably
/// never reached a server (connection refused, DNS failure, "no leader" rejections).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// How many times a request is retried after its first attempt.
    pub max_retries: u32,
    /// The delay before the first retry that goes back to an endpoint already tried.
    pub initial_backoff: Duration,
    /// The longest delay between retries.
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        let backoff = Backoff::default();
        RetryConfig {
            max_retries: 6,
            initial_backoff: backoff.initial,
            max_backoff: backoff.max,
        }
    }
}

impl RetryConfig {
    /// No retries at all.
    pub fn none() -> Self {
        RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        }
    }

    /// Sets the number of retries.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets the first and the longest backoff.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        let backoff = Backoff::new(initial, max);
        self.initial_backoff = backoff.initial;
        self.max_backoff = backoff.max;
        self
    }

    /// The backoff between retries that go back to endpoints already tried: from
    /// `initial_backoff` doubling up to `max_backoff`, ±50 %.
    pub fn backoff_policy(&self) -> Backoff {
        Backoff::new(self.initial_backoff, self.max_backoff)
    }

    /// The delay before retry number `retry` (1-based) among `endpoints` endpoints: none while
    /// untried endpoints remain, then the backoff of each round through them.
    pub(crate) fn delay(&self, retry: u32, endpoints: usize) -> Duration {
        let endpoints = endpoints.max(1) as u32;
        if retry < endpoints {
            return Duration::ZERO;
        }
        let round = (retry / endpoints).saturating_sub(1);
        self.backoff_policy().delay(round)
    }
}

/// TLS settings for `https://` endpoints.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct TlsConfig {
    /// PEM certificates of the CAs to trust; the system's roots when empty.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain and private key, for mutual TLS.
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_pem", &self.ca_pem.as_ref().map(|c| c.len()))
            .field("identity_pem", &self.identity_pem.is_some())
            .finish()
    }
}

impl TlsConfig {
    /// Trusts the CA certificates of this PEM file (read now; its certificates are checked
    /// when the client is built).
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> std::io::Result<Self> {
        self.ca_pem = Some(read(path.as_ref())?);
        Ok(self)
    }

    /// Presents this client certificate (PEM chain) and key (PEM) for mutual TLS.
    pub fn identity_files(
        mut self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> std::io::Result<Self> {
        self.identity_pem = Some((read(cert.as_ref())?, read(key.as_ref())?));
        Ok(self)
    }
}

/// Reads a file; the error names it.
fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))
}

/// A secret (an auth token) that no `Debug` output shows.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// User name and password for etcd's auth; the transport authenticates and renews the token.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Transport`].
///
/// ```no_run
/// # async fn demo() -> Result<(), etcd_transport::Error> {
/// use std::time::Duration;
/// let transport = etcd_transport::Transport::builder()
///     .endpoints(["http://127.0.0.1:2379", "http://127.0.0.1:22379"])
///     .request_timeout(Duration::from_secs(5))
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct TransportBuilder {
    pub(crate) endpoints: Vec<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) tcp_keepalive: Option<Duration>,
    pub(crate) http2_keep_alive: Option<(Duration, Duration)>,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) retry: RetryConfig,
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) api_prefix: Option<String>,
    pub(crate) max_response_len: usize,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) token: Option<Secret>,
    pub(crate) pool_idle_timeout: Duration,
    pub(crate) require_leader: bool,
    pub(crate) protocol: Protocol,
    pub(crate) prefer_first: bool,
    pub(crate) leader_writes: Option<bool>,
}

/// The protocol a transport speaks to etcd.
///
/// `Protocol::Gateway` always exists; `Protocol::Grpc` only with the cargo feature
/// `grpc` (`etcd-kv = { version = "...", features = ["grpc"] }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// etcd's gRPC-JSON gateway: HTTP/1.1 and JSON, the gateway's WebSocket for
    /// bidirectional streams (the default).
    #[default]
    Gateway,
    /// Native gRPC: HTTP/2 and protobuf, every call and stream of the transport on one
    /// connection per endpoint.
    ///
    /// Needs the cargo feature `grpc` (of etcd-transport, or of etcd-kv, etcd-pmap or
    /// etcd-tools, which pass it on): without it this variant does not exist, and
    /// `Protocol::Grpc` fails to compile with "no variant named `Grpc`". Add
    /// `features = ["grpc"]` to the dependency.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    Grpc,
}

/// The default TCP keep-alive interval (see [`TransportBuilder::tcp_keepalive`]): 30 s.
pub const DEFAULT_TCP_KEEPALIVE: Duration = Duration::from_secs(30);

/// The default deadline of a whole call, retries included: 30 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// The default response limit: 64 MiB, far above etcd's 1.5 MiB request limit, so that
/// ranges of tens of thousands of keys fit; page anything larger.
pub const DEFAULT_MAX_RESPONSE_LEN: usize = 64 * 1024 * 1024;

impl Default for TransportBuilder {
    fn default() -> Self {
        TransportBuilder {
            endpoints: Vec::new(),
            connect_timeout: Duration::from_secs(3),
            tcp_keepalive: Some(DEFAULT_TCP_KEEPALIVE),
            http2_keep_alive: None,
            request_timeout: Some(Duration::from_secs(10)),
            deadline: Some(DEFAULT_DEADLINE),
            retry: RetryConfig::default(),
            tls: None,
            api_prefix: None,
            max_response_len: DEFAULT_MAX_RESPONSE_LEN,
            credentials: None,
            token: None,
            pool_idle_timeout: Duration::from_secs(60),
            require_leader: true,
            protocol: Protocol::Gateway,
            prefer_first: false,
            leader_writes: None,
        }
    }
}

impl TransportBuilder {
    /// Adds one endpoint URL: `http://host:port` or `https://host:port`, optionally with a
    /// path (a reverse proxy's); a bare `host:port` means `http://host:port`. The port is
    /// required (etcd's is usually 2379). A member on a unix socket is `unix://<socket path>`
    /// (`unix:///run/etcd.sock`; a relative path is from this process's working
    /// directory: etcd's `--listen-client-urls unix://localhost:2379` makes the socket
    /// `localhost:2379` in etcd's), over either protocol. [`build`](Self::build) refuses, with an
    /// [`Error::Config`] saying what to write instead, anything that would dial something
    /// else than meant: a missing or out-of-range port, a misspelt or unsupported scheme
    /// (`unixs://`), a path ending in the API prefix (`/v3`: the
    /// transport adds it; [`api_prefix`](Self::api_prefix) forces one), credentials in the
    /// URL (use [`credentials`](Self::credentials); the error never shows them), a query,
    /// white space, several endpoints in one string.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints.push(url.into());
        self
    }

    /// Adds several endpoint URLs; requests fail over between them in order.
    pub fn endpoints<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.endpoints.extend(urls.into_iter().map(Into::into));
        self
    }

    /// How long to wait for a TCP (and TLS) connection. Default 3 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// TCP keep-alive of every connection (both protocols): once a connection has carried
    /// nothing for `interval`, the kernel probes the peer every `interval`, and closes the
    /// connection after 3 probes go unanswered. Default 30 s; `None` turns it off.
    ///
    /// It protects idle connections (pooled ones, a quiet watch stream) against a peer
    /// that vanished without closing them, such as a host that lost power or a NAT or
    /// firewall that forgot the flow: without it such a connection looks open until a
    /// request on it times out. A frozen etcd process does not count: its kernel still
    /// answers the probes (watch and keep-alive streams detect that with
    /// `watch_liveness` in etcd-kv, requests with their timeout).
    pub fn tcp_keepalive(mut self, interval: Option<Duration>) -> Self {
        self.tcp_keepalive = interval;
        self
    }

    /// HTTP/2 keep-alive of the gRPC connections (with the `grpc` feature and
    /// [`Protocol::Grpc`](crate::Protocol::Grpc); the gateway has none): while calls or
    /// streams are open on a connection, a PING every `interval`; a PING unanswered for
    /// `timeout` closes the connection, failing its calls and streams (which then move on
    /// as after any broken connection). Off by default, as in Go's clientv3.
    ///
    /// It catches a member or path that stops answering under open streams without
    /// closing the connection (frozen, partitioned) in `interval + timeout`, below the
    /// transport. Connections without open calls or streams are never pinged: etcd closes
    /// those (`too_many_pings`, after about 5 pings a second apart in tests against 3.5.30).
    /// Keep `interval` at or above etcd's `--grpc-keepalive-min-time` (5 s by default),
    /// the rate its policy allows.
    pub fn http2_keep_alive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.http2_keep_alive = Some((interval, timeout));
        self
    }

    /// How long one attempt of a unary request may take, from sending to the whole answer;
    /// for streams, until the response headers. Default 10 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// The deadline of a whole call, retries across endpoints included: past it the call
    /// fails (with the last attempt's error), however many retries the policy still allows.
    /// Each attempt gets what is left of it, at most the request timeout. Default
    /// [`DEFAULT_DEADLINE`]; per call, see [`Transport::call_within`].
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Removes the deadline of whole calls: only the retry policy bounds them.
    pub fn no_deadline(mut self) -> Self {
        self.deadline = None;
        self
    }

    /// Removes the per-request timeout.
    pub fn no_request_timeout(mut self) -> Self {
        self.request_timeout = None;
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Sets TLS options for `https://` endpoints.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Uses this API prefix (`/v3`, `/v3beta`, `/v3alpha`) instead of asking each endpoint's
    /// `GET /version`.
    pub fn api_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.api_prefix = Some(prefix.into());
        self
    }

    /// The largest answer accepted, in bytes. Default [`DEFAULT_MAX_RESPONSE_LEN`].
    pub fn max_response_len(mut self, bytes: usize) -> Self {
        self.max_response_len = bytes;
        self
    }

    /// Authenticates as this user; the token is fetched on first use and renewed when the
    /// server reports it invalid (expired, or the server restarted).
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Sends this auth token with every request (no renewal).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Secret(token.into()));
        self
    }

    /// How long an idle pooled connection is kept. Default 60 s.
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Whether calls that need a leader ask the member to refuse them at once when it has
    /// none (etcd's require-leader; default true). A member cut off from its cluster then
    /// answers "no leader" (not applied: the call moves to the next endpoint) instead of
    /// holding a write until etcd's own timeout, whose outcome is unknown. Maintenance
    /// calls never require a leader.
    pub fn require_leader(mut self, on: bool) -> Self {
        self.require_leader = on;
        self
    }

    /// Whether the client starts at the first endpoint of the list that answers (default
    /// false). By default each client starts at a place of its own in the list (the
    /// clients of a process in turn, from a random place), so that a fleet built with the
    /// same list spreads over the members instead of loading the first one; either way a
    /// client keeps to one member while it answers, and moves on in list order when it
    /// does not. Set it to pin clients to the first endpoint on purpose (a local member
    /// listed first, say).
    pub fn prefer_first(mut self, on: bool) -> Self {
        self.prefer_first = on;
        self
    }

    /// Whether writes (calls that are not idempotent: puts, deletes, transactions that
    /// write, lease grants...) start at the member that leads, rather than at the one the
    /// client keeps to for reads. etcd hands a write that reaches a follower on to its
    /// leader: one more hop inside the cluster, measured at 17 % of a put's latency and
    /// 12–20 % of the members' CPU per write on a 3-member etcd 3.5.30 on loopback.
    ///
    /// On by default with more than one endpoint, off with
    /// [`prefer_first(true)`](Self::prefer_first) (a client pinned to a member keeps all of
    /// its calls there) unless set here. The leader is found in the background, by asking
    /// every endpoint's status when the first write is made, again every 10 s while writes
    /// go on, and 1 s after the leader stopped answering; until it is found, writes start
    /// where reads do. Only where a write starts changes: a write that fails is retried, or
    /// not, by the same rules as without this (see [`RetryConfig`]).
    pub fn leader_writes(mut self, on: bool) -> Self {
        self.leader_writes = Some(on);
        self
    }

    /// The protocol to speak: the gateway (default) or native gRPC. Everything else
    /// (endpoints, failover, deadlines, TLS, auth) is the same.
    ///
    /// `Protocol::Grpc` needs the cargo feature `grpc`: without it the variant does not
    /// exist (see [`Protocol`]).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Checks the configuration (every endpoint URL: see [`endpoint`](Self::endpoint)) and
    /// builds the transport. Connects lazily; nothing is resolved or sent here.
    pub fn build(self) -> Result<Transport, Error> {
        Transport::from_builder(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_secret_in_debug() {
        let b = TransportBuilder::default()
            .token("tok-123")
            .credentials("alice", "pw-456");
        let text = format!("{b:?}");
        assert!(
            !text.contains("tok-123") && !text.contains("pw-456"),
            "{text}"
        );
        assert!(text.contains("alice"));
    }

    #[test]
    fn delays() {
        let r = RetryConfig::default().backoff(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(r.delay(1, 3), Duration::ZERO);
        assert_eq!(r.delay(2, 3), Duration::ZERO);
        let d = r.delay(3, 3);
        assert!(
            d >= Duration::from_millis(50) && d <= Duration::from_millis(150),
            "{d:?}"
        );
        let d = r.delay(40, 1);
        assert!(d <= Duration::from_millis(1500), "{d:?}");
    }
}
