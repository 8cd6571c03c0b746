//! The client's configuration, shared by the client and its stream hubs: the server limits
//! requests are checked against, how streams travel and are probed, the backoff of their
//! reconnections, and the counters behind [`StreamStats`]. A leaf: it imports only
//! `error.rs`.

use crate::error::{Error, Result};
use etcd_transport::Backoff;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// etcd's default `--max-txn-ops`: the most operations (and the most compares) one
/// transaction may have.
pub const DEFAULT_MAX_TXN_OPS: usize = 128;

/// etcd's default `--max-request-bytes`: 1.5 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// The server limits a client checks requests against before sending them, so that a
/// transaction too large for etcd is refused with a clear error and nothing is sent. Set
/// them to the server's flags with [`ClientBuilder::max_txn_ops`](crate::ClientBuilder::max_txn_ops) and
/// [`ClientBuilder::max_request_bytes`](crate::ClientBuilder::max_request_bytes).
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

/// The counters behind [`StreamStats`], shared with the stream drivers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) watch_reconnects: AtomicU64,
    pub(crate) keep_alive_reconnects: AtomicU64,
}

/// What a client's streams went through since it was built ([`Client::stream_stats`](crate::Client::stream_stats)).
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

impl Counters {
    /// What the counters say now.
    pub(crate) fn stats(&self) -> StreamStats {
        StreamStats {
            watch_reconnects: self.watch_reconnects.load(Ordering::Relaxed),
            keep_alive_reconnects: self.keep_alive_reconnects.load(Ordering::Relaxed),
        }
    }
}

/// The backoff between reconnections of the watch and keep-alive hubs and the cache:
/// 100 ms doubling to 5 s, ±50 %.
pub(crate) const RECONNECT_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
