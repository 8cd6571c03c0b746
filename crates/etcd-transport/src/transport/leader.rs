//! Writes to the leader: where a write starts, and finding the member that leads.
//!
//! etcd forwards a proposal that reaches a follower to its leader, one more hop inside the
//! cluster for every write. Measured on etcd 3.5.30 (three members on loopback, a client
//! over the gateway whose reads keep to a follower, medians of 12 alternating rounds), with
//! writes started at the leader put after put took 17 % less time (p50 615 µs against
//! 738 µs) and 12 % less of the members' CPU per write (866 µs against 981 µs); 64 puts in
//! flight made 24 % more writes a second (7,303 against 5,913) at 20 % less CPU per write.
//! So writes (calls that are not idempotent) start at the member that led when last asked;
//! reads keep to the client's own member, which keeps the load spread.
//!
//! Only where a write *starts* changes: what happens when it fails is the failover loop's
//! rule for every call, and a failure at the hinted leader forgets it. The hint is only a
//! preference, never needed for correctness: a stale one costs the forwarding hop it was
//! meant to save.

use super::Transport;
use crate::endpoints::Endpoints;
use crate::error::Error;
use crate::route::Route;
use etcd_wire::{StatusRequest, StatusResponse};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How often the leader is asked again while writes go on: a leader may change without any
/// write failing (its old self forwards them).
const REFRESH: Duration = Duration::from_secs(10);

/// How soon the leader is asked again after a search found none, or after the hinted
/// leader failed.
const RETRY: Duration = Duration::from_secs(1);

/// The longest a member may take to say who leads.
const ASK_TIMEOUT: Duration = Duration::from_secs(3);

/// The state of the leader search of a transport.
pub(super) struct LeaderHint {
    /// Whether writes start at the leader.
    on: bool,
    /// A search is running.
    searching: AtomicBool,
    /// When the last search started.
    last: Mutex<Option<Instant>>,
}

impl LeaderHint {
    pub(super) fn new(on: bool) -> LeaderHint {
        LeaderHint {
            on,
            searching: AtomicBool::new(false),
            last: Mutex::new(None),
        }
    }

    pub(super) fn is_on(&self) -> bool {
        self.on
    }

    /// Whether a search should start now (and notes that it does): none is running, and
    /// the last one started long enough ago (`known`: a leader is known).
    fn due(&self, known: bool) -> bool {
        if self.searching.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        let mut last = match self.last.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let wait = if known { REFRESH } else { RETRY };
        if last.is_some_and(|at| now.saturating_duration_since(at) < wait) {
            return false;
        }
        if self.searching.swap(true, Ordering::AcqRel) {
            return false;
        }
        *last = Some(now);
        true
    }
}

impl Transport {
    /// Where a write on `list` starts: the leader when known (`None`: the preferred
    /// endpoint). Starts a search in the background when the leader is not known, or was
    /// found a while ago.
    pub(super) fn write_start(&self, list: &Arc<Endpoints>) -> Option<usize> {
        let hint = &self.inner.leader;
        if !hint.on || list.len() < 2 {
            return None;
        }
        let leader = list.leader();
        if hint.due(leader.is_some()) {
            let transport = self.clone();
            let list = list.clone();
            tokio::spawn(async move {
                let found = transport.find_leader(&list).await;
                tracing::debug!(leader = ?found.map(|i| list[i].base.clone()), "leader search");
                list.set_leader(found);
                transport
                    .inner
                    .leader
                    .searching
                    .store(false, Ordering::Release);
            });
        }
        leader
    }

    /// The index of the member of `list` that leads: every member is asked for its status
    /// at once; the one that names itself leader wins (the highest term, should an old
    /// leader cut off from the others still believe it leads).
    async fn find_leader(&self, list: &Endpoints) -> Option<usize> {
        let mut asks = tokio::task::JoinSet::new();
        for idx in 0..list.len() {
            let transport = self.clone();
            let endpoint = list[idx].clone();
            asks.spawn(async move {
                let ask = async {
                    let request = StatusRequest {};
                    let route = Route::rpc(&request, None);
                    let token = transport.token_for_request(&endpoint).await?;
                    let wire = &transport.inner.wire;
                    transport
                        .attempt(endpoint.clone(), route, token, None, |at| {
                            wire.unary(at, &request)
                        })
                        .await?
                };
                let answer: Result<StatusResponse, Error> =
                    match tokio::time::timeout(ASK_TIMEOUT, ask).await {
                        Ok(answer) => answer,
                        Err(_) => return None,
                    };
                answer.ok().map(|status| (idx, status))
            });
        }
        let mut best: Option<(usize, u64)> = None;
        while let Some(joined) = asks.join_next().await {
            let Ok(Some((idx, status))) = joined else {
                continue;
            };
            let leads = status.leader != 0 && status.leader == status.header.member_id;
            if leads && best.is_none_or(|(_, term)| status.raft_term > term) {
                best = Some((idx, status.raft_term));
            }
        }
        best.map(|(idx, _)| idx)
    }

    /// The endpoint writes start at: the member found leading when last asked, if any.
    /// Known once a write has been made (the search runs beside it) and only when writes
    /// go to the leader (see
    /// [`TransportBuilder::leader_writes`](crate::TransportBuilder::leader_writes)).
    pub fn leader_hint(&self) -> Option<String> {
        let list = self.list();
        list.leader().map(|idx| list[idx].base.clone())
    }
}
