//! Per-watch bookkeeping on the server side: incarnations (a fresh server-side ID per
//! create, so that answers for an older one are dropped), cancels, etcd 3.4's watch ID -1,
//! stream-wide progress, and the end of a watch (cancelled by etcd, or every watch on a
//! permanent error).

use super::driver::{Driver, Next};
use super::state::{finish, lock, Sub};
use super::stream::Conn;
use crate::error::{Error, Result};
use crate::watch::event::WatchResponse;
use etcd_wire::watch::{WatchCancelRequest, WatchRequest, WatchResponse as WireResponse};
use etcd_wire::{Code, Status};

impl Driver {
    /// Sends a sub's create request on the shared stream under a fresh server-side ID.
    pub(super) async fn send_create(&mut self, sub: &mut Sub) -> Result<()> {
        if !matches!(self.conn, Some(Conn::Shared(_))) {
            return Ok(());
        }
        let request = self.incarnate(sub);
        let Some(Conn::Shared(conn)) = &mut self.conn else {
            return Ok(());
        };
        *lock(&sub.endpoint) = conn.endpoint().to_string();
        conn.send(&request).await
    }

    /// A new incarnation of a watch: a fresh server-side ID, and the create request that
    /// resumes it from its next revision.
    pub(super) fn incarnate(&mut self, sub: &mut Sub) -> WatchRequest {
        let server_id = self.next_server_id;
        self.next_server_id += 1;
        sub.server_id = server_id;
        sub.active = false;
        self.by_server_id.insert(server_id, sub.id);
        WatchRequest {
            create_request: Some(sub.create_request(server_id)),
            ..WatchRequest::default()
        }
    }

    pub(super) async fn cancel_on_server(&mut self, server_id: i64) {
        if server_id == 0 {
            return;
        }
        self.by_server_id.remove(&server_id);
        if let Some(Conn::Shared(conn)) = &mut self.conn {
            let request = WatchRequest {
                cancel_request: Some(WatchCancelRequest {
                    watch_id: server_id,
                }),
                ..WatchRequest::default()
            };
            let _ = conn.send(&request).await;
        }
    }

    /// The server-side ID of the oldest create request not yet answered.
    pub(super) fn oldest_pending(&self) -> Option<i64> {
        self.by_server_id
            .iter()
            .filter(|(_, id)| self.subs.get(id).is_some_and(|s| !s.active))
            .map(|(server_id, _)| *server_id)
            .min()
    }

    /// A progress notification of the stream: every active watch is up to `revision`.
    pub(super) fn progress_all(&mut self, revision: i64) {
        if revision <= 0 {
            return;
        }
        self.failures = 0;
        // Before etcd 3.4.25 and 3.5.8 this answer may overtake events still queued for
        // the stream (etcd issue #15220): only a server that orders it may move the
        // watches' resume points past them.
        let ordered = self.ordered_progress == Some(true);
        let mut paused = Vec::new();
        for sub in self.subs.values_mut() {
            if !sub.active || sub.paused {
                continue;
            }
            // What this watch may be told: the server's revision where it is ordered;
            // elsewhere only what the watch has delivered itself (every change up to the
            // revision before its next one), never ahead of events still on their way.
            let notified = if ordered {
                sub.next_revision = sub.next_revision.max(revision + 1);
                revision
            } else {
                revision.min(sub.next_revision - 1)
            };
            if sub.wants_progress && notified > 0 && sub.is_current(notified) {
                sub.wants_progress = false;
                if sub
                    .events
                    .try_send(Ok(WatchResponse::progress(notified)))
                    .is_err()
                {
                    paused.push(sub.id);
                }
            }
        }
        // A full consumer just misses this notification; its watch is not paused for it.
        drop(paused);
    }

    /// etcd cancelled a watch: compaction, permission, leader loss...
    pub(super) async fn canceled(&mut self, id: u64, message: WireResponse) -> Next {
        let Some(mut sub) = self.subs.remove(&id) else {
            return Next::Continue;
        };
        self.by_server_id.remove(&sub.server_id);
        sub.server_id = 0;
        sub.active = false;
        let endpoint = self.conn.as_ref().map(Conn::endpoint).unwrap_or_default();
        let reason = message.cancel_reason;
        tracing::debug!(%endpoint, %reason, compact_revision = message.compact_revision, "watch cancelled by etcd");
        let error = if message.compact_revision > 0 {
            Error::Compacted {
                compact_revision: message.compact_revision,
            }
        } else {
            let code = if reason.contains("permission denied") {
                Code::PermissionDenied
            } else if reason.contains("no leader") {
                Code::Unavailable
            } else if reason.contains("invalid auth token") {
                Code::Unauthenticated
            } else {
                Code::Unknown
            };
            if code == Code::Unavailable {
                // Not the watch's fault: move the whole stream.
                self.subs.insert(id, sub);
                return Next::Reconnect;
            }
            if code == Code::Unauthenticated && self.backend.uses_auth() {
                // A token this member does not know: reconnect with a renewed one (with the
                // backoff of any failure) as often as it happens; a renewal refused for good
                // ends the watches.
                self.subs.insert(id, sub);
                self.renew_at = Some(endpoint);
                return Next::Reconnect;
            }
            if code == Code::PermissionDenied && self.backend.uses_auth() && !sub.auth_retried {
                // etcd reports a watch created with an expired token as "permission
                // denied": renew the token and try once more.
                sub.auth_retried = true;
                tracing::debug!("watch refused; retrying once with a renewed token");
                self.subs.insert(id, sub);
                self.renew_at = Some(endpoint);
                // The stream carries the token it was opened with (gRPC metadata, or the
                // per-call POST's header): reopen it at once with the new one, no backoff
                // for this one retry. Every watch on it resumes from its next revision.
                self.drop_stream();
                return Next::Continue;
            }
            Error::server(&endpoint, Status::new(code.as_i32(), reason))
        };
        finish(sub, error);
        if !self.shared {
            self.conn = None;
        }
        Next::Continue
    }

    /// Ends every watch with `error` (a permanent one).
    pub(super) fn end_all(&mut self, error: Error) {
        for (_, sub) in self.subs.drain() {
            finish(sub, error.clone());
        }
        self.by_server_id.clear();
        self.conn = None;
    }
}
