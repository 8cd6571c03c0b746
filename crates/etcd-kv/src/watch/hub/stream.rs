//! The driver's stream and its liveness probe: the connection (shared or the per-call
//! watch's own), the probe in flight, and the checks it makes.

use crate::backend::{Backend, BidiConn, ServerStream};
use crate::error::{Error, Result};
use etcd_wire::watch::{WatchRequest, WatchResponse as WireResponse};
use etcd_wire::Code;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::Instant;

/// The stream a driver reads.
pub(super) enum Conn {
    Shared(Box<BidiConn<WatchRequest>>),
    /// The per-call mode's POST stream of the driver's one watch.
    Own(ServerStream<WireResponse>),
}

impl Conn {
    pub(super) fn endpoint(&self) -> String {
        match self {
            Conn::Shared(c) => c.endpoint().to_string(),
            Conn::Own(s) => s.endpoint().to_string(),
        }
    }

    pub(super) async fn next(&mut self) -> Option<Result<WireResponse>> {
        match self {
            Conn::Shared(c) => c.next().await,
            Conn::Own(s) => s.next().await,
        }
    }
}

/// A liveness probe in flight.
pub(super) struct Probe {
    /// Whether the member has a leader (asked again while it says no, until the
    /// deadline); `None` once it said yes.
    pub(super) check: Option<Pin<Box<dyn Future<Output = Result<()>> + Send>>>,
    /// When the probe was sent: a message after it proves the stream alive.
    pub(super) sent: Instant,
    /// The ping sent on a shared stream's own connection, whose pong proves it alive
    /// (0: nothing to wait for).
    pub(super) ping: u64,
    /// When the probe has failed unless answered.
    pub(super) deadline: Instant,
}

/// How soon a member that answered "no leader" (or failed to answer) is asked again
/// within one probe: an election takes about one election timeout, after which it
/// answers yes and the watches stay.
pub(super) const RECHECK: Duration = Duration::from_millis(200);

/// How often a probe whose member answered looks for its connection's pong.
pub(super) const PONG_POLL: Duration = Duration::from_millis(20);

pub(super) async fn next_message(conn: &mut Option<Conn>) -> Option<Result<WireResponse>> {
    match conn {
        Some(conn) => conn.next().await,
        None => std::future::pending().await,
    }
}

/// True for "invalid auth token": the member does not know the token (it expired, the member
/// restarted since it was issued, or has not applied it yet); a fresh one will do.
pub(super) fn is_invalid_token(e: &Error) -> bool {
    e.status().is_some_and(|s| {
        s.grpc_code() == Code::Unauthenticated || s.message.contains("invalid auth token")
    })
}

/// True for a member's "no leader" answer.
pub(super) fn is_no_leader(e: &Error) -> bool {
    matches!(e, Error::Unavailable(_))
        && e.status().is_some_and(|s| s.message.contains("no leader"))
}

/// Whether any endpoint but `endpoint` has a leader, asking them all at once within `within`.
pub(super) async fn another_has_leader(
    backend: &Backend,
    endpoint: &str,
    within: Duration,
) -> bool {
    let others: Vec<String> = backend
        .endpoints()
        .into_iter()
        .filter(|e| e != endpoint)
        .collect();
    let mut checks: futures_util::stream::FuturesUnordered<_> = others
        .iter()
        .map(|other| backend.check_leader(other, within))
        .collect();
    while let Some(result) = futures_util::StreamExt::next(&mut checks).await {
        if result.is_ok() {
            return true;
        }
    }
    false
}

/// The leader check of the probe in flight, if any; pending otherwise.
pub(super) async fn poll_check(probe: &mut Option<Probe>) -> Result<()> {
    match probe.as_mut().and_then(|p| p.check.as_mut()) {
        Some(check) => {
            let result = check.await;
            if let Some(probe) = probe {
                probe.check = None;
            }
            result
        }
        None => std::future::pending().await,
    }
}
