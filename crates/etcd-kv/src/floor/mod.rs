//! Never read backwards: the client's revision floor.
//!
//! Every key-value answer (range, put, delete, txn) raises the floor to its header's
//! revision: the store had reached it when the member answered. A linearizable read never
//! goes below it (etcd serves it only once the member caught up with the leader), but a
//! serializable read answers from whatever the member has applied, and a member the client
//! moved to may lag (or be cut off from the leader). A serializable answer older than the
//! floor is therefore not returned: the read is asked again, first of the same member after
//! short waits (a small lag closes within milliseconds), then, if it stays behind, of the
//! next member; when no member catches up within one request timeout of the first answer
//! behind (or the call's deadline, if sooner) the read fails with [`Error::Behind`]. What
//! Go's `clientv3/ordering` does, always on.
//!
//! The floor is the client's (clones and namespaced views share it). Watches keep their
//! own order: a watch that moves resumes after the last revision it delivered.

use crate::backend::Backend;
use crate::error::{Error, Result};
use etcd_wire as wire;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// How many times a lagging member is asked again before the next member is: the waits
/// before them double from 2 ms (2, 4, 8 ms for the first member), up to 100 ms.
const WAITS_PER_MEMBER: u32 = 3;
const FIRST_WAIT: Duration = Duration::from_millis(2);
const MAX_WAIT: Duration = Duration::from_millis(100);

/// The highest revision a client has seen in a key-value answer.
#[derive(Debug, Default)]
pub(crate) struct Floor(AtomicI64);

impl Floor {
    /// Raises the floor to `revision` (never lowers it).
    pub(crate) fn raise(&self, revision: i64) {
        self.0.fetch_max(revision, Ordering::Relaxed);
    }

    /// The floor.
    pub(crate) fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Sends a range with `send` (the client's call); a serializable one is asked again
    /// (then of another member) while its answer is older than the floor, within
    /// `deadline` (the call's) and one request timeout of the first answer behind (see the
    /// module docs). An answer taken raises the floor.
    pub(crate) async fn read<F, Fut>(
        &self,
        backend: &Backend,
        deadline: Option<Duration>,
        serializable: bool,
        mut send: F,
    ) -> Result<wire::RangeResponse>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<wire::RangeResponse>>,
    {
        let floor = self.get();
        let started = tokio::time::Instant::now();
        // The call's deadline bounds everything; the waits for a member to catch up are
        // also bounded by one request timeout from the first answer behind.
        let deadline = deadline.or_else(|| backend.deadline()).map(|d| started + d);
        let mut give_up_at: Option<tokio::time::Instant> = None;
        let mut wait = FIRST_WAIT;
        let mut waits = 0;
        loop {
            let answer = send().await?;
            let revision = answer.header.revision;
            // A linearizable answer is never behind; an answer without a revision (a fake
            // or a proxy that drops headers) cannot be judged.
            if !serializable || revision >= floor || revision == 0 {
                self.raise(revision);
                return Ok(answer);
            }
            let endpoint = backend.current_endpoint();
            let now = tokio::time::Instant::now();
            let limit = *give_up_at.get_or_insert_with(|| {
                let patience = now + backend.request_timeout();
                deadline.map_or(patience, |d| d.min(patience))
            });
            if now + wait > limit {
                return Err(Error::Behind {
                    endpoint,
                    revision,
                    floor,
                });
            }
            tracing::debug!(%endpoint, revision, floor, "serializable read behind the client's floor");
            tokio::time::sleep(wait).await;
            waits += 1;
            if waits % WAITS_PER_MEMBER == 0 {
                backend.demote(&endpoint);
            }
            wait = (wait * 2).min(MAX_WAIT);
        }
    }
}

#[cfg(test)]
mod tests;
