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
//! behind (or the call's deadline, if sooner) the read fails with [`Error::Behind`]. What Go's `clientv3/ordering` does,
//! always on.
//!
//! The floor is the client's (clones and namespaced views share it). Watches keep their
//! own order: a watch that moves resumes after the last revision it delivered.

use crate::client::Client;
use crate::error::{Error, Result};
use etcd_wire as wire;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Waits before asking a lagging member again: 2, 4, 8 ms; after them, the next member.
const WAITS_PER_MEMBER: u32 = 3;
const FIRST_WAIT: Duration = Duration::from_millis(2);
/// The longest wait between attempts once every member was tried.
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
}

impl Client {
    /// Raises this client's revision floor to an answer's revision.
    pub(crate) fn saw_revision(&self, revision: i64) {
        self.inner.floor.raise(revision);
    }

    /// Sends a range; a serializable one is asked again (then of another member) while its
    /// answer is older than the floor (see the module docs).
    pub(crate) async fn call_range(
        &self,
        request: &wire::RangeRequest,
    ) -> Result<wire::RangeResponse> {
        let floor = self.inner.floor.get();
        let started = tokio::time::Instant::now();
        // The call's deadline bounds everything; the waits for a member to catch up are
        // also bounded by one request timeout from the first answer behind.
        let deadline = self
            .deadline
            .or_else(|| self.inner.backend.deadline())
            .map(|d| started + d);
        let mut give_up_at: Option<tokio::time::Instant> = None;
        let mut wait = FIRST_WAIT;
        let mut waits = 0;
        loop {
            let answer = self.call(request).await?;
            let revision = answer.header.revision;
            // A linearizable answer is never behind; an answer without a revision (a fake
            // or a proxy that drops headers) cannot be judged.
            if !request.serializable || revision >= floor || revision == 0 {
                self.saw_revision(revision);
                return Ok(answer);
            }
            let endpoint = self.inner.backend.current_endpoint();
            let now = tokio::time::Instant::now();
            let limit = *give_up_at.get_or_insert_with(|| {
                let patience = now + self.inner.backend.request_timeout();
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
                self.inner.backend.demote(&endpoint);
            }
            wait = if waits < WAITS_PER_MEMBER {
                wait * 2
            } else {
                (wait * 2).min(MAX_WAIT)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::script::Script;
    use crate::config::{Liveness, StreamMode};
    use crate::{Client, Error};
    use etcd_wire as wire;
    use std::time::Duration;

    fn range_answer(revision: i64) -> wire::RangeResponse {
        wire::RangeResponse {
            header: wire::ResponseHeader {
                revision,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn put_answer(revision: i64) -> wire::PutResponse {
        wire::PutResponse {
            header: wire::ResponseHeader {
                revision,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_serializable_read_behind_the_floor_is_asked_again_then_of_the_next_member() {
        let script = Script::new(&["http://a", "http://b", "http://c"]);
        let client = Client::scripted(&script, StreamMode::default(), Liveness::default());
        let put = tokio::spawn({
            let client = client.clone();
            async move { client.put("k", "v").await }
        });
        script.call().await.answer(&put_answer(10));
        put.await.unwrap().unwrap();

        // The client moved to b, which lags: asked 3 times, then c.
        client.inner.backend.demote("http://a");
        let read = tokio::spawn({
            let client = client.clone();
            async move { client.range("k").serializable().await }
        });
        for _ in 0..3 {
            let call = script.call().await;
            assert_eq!(call.endpoint(), "http://b");
            call.answer(&range_answer(7));
        }
        let call = script.call().await;
        assert_eq!(call.endpoint(), "http://c");
        call.answer(&range_answer(10));
        let answer = read.await.unwrap().unwrap();
        assert_eq!(answer.revision(), 10);
        assert_eq!(script.demoted(), ["http://a", "http://b"]);

        // A linearizable read is taken as it comes, and a newer answer raises the floor.
        let read = tokio::spawn({
            let client = client.clone();
            async move { client.range("k").await }
        });
        script.call().await.answer(&range_answer(12));
        assert_eq!(read.await.unwrap().unwrap().revision(), 12);
        let read = tokio::spawn({
            let client = client.clone();
            async move { client.range("k").serializable().await }
        });
        let call = script.call().await;
        assert_eq!(call.endpoint(), "http://c");
        call.answer(&range_answer(11));
        script.call().await.answer(&range_answer(12));
        assert_eq!(read.await.unwrap().unwrap().revision(), 12);
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_no_member_answers_recently_enough_fails_behind_at_the_deadline() {
        let script = Script::new(&["http://a", "http://b"]);
        let client = Client::scripted(&script, StreamMode::default(), Liveness::default())
            .with_deadline(Duration::from_secs(1));
        let put = tokio::spawn({
            let client = client.clone();
            async move { client.put("k", "v").await }
        });
        script.call().await.answer(&put_answer(10));
        put.await.unwrap().unwrap();

        let started = tokio::time::Instant::now();
        let read = tokio::spawn({
            let client = client.clone();
            async move { client.range("k").serializable().await }
        });
        let answering = tokio::spawn({
            let script = script.clone();
            async move {
                let mut asked = Vec::new();
                loop {
                    let call = script.call().await;
                    asked.push(call.endpoint().to_string());
                    call.answer(&range_answer(9));
                    if asked.len() > 1000 {
                        return asked;
                    }
                }
            }
        });
        let err = read.await.unwrap().unwrap_err();
        answering.abort();
        assert!(
            matches!(
                err,
                Error::Behind {
                    revision: 9,
                    floor: 10,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("revision 9"), "{err}");
        assert!(started.elapsed() <= Duration::from_secs(1));
        assert!(script.demoted().contains(&"http://a".to_string()));
        assert!(script.demoted().contains(&"http://b".to_string()));
    }
}
