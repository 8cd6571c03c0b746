//! The driver's connection: connecting (with backoff, token renewal and resumption of
//! every watch), dropping it, and starting the liveness probe of a silent stream (a ping
//! on the stream's own connection and a leader check of its member).

use super::driver::Driver;
use super::state::{finish, lock};
use super::stream::{another_has_leader, is_invalid_token, is_no_leader, Conn, Probe, RECHECK};
use crate::config::RECONNECT_BACKOFF;
use crate::error::Error;
use etcd_wire::watch::WatchRequest;
use tokio::time::Instant;

impl Driver {
    /// Learns, once, whether the server orders its answers to progress requests with the
    /// stream's events (from its version; not ordered when it cannot be learnt).
    pub(super) async fn learn_progress_order(&mut self) {
        if self.ordered_progress.is_none() {
            self.ordered_progress = Some(match self.backend.server_version().await {
                Ok(version) => super::progress_is_ordered(&version),
                Err(_) => false,
            });
        }
    }

    /// Whether the stream's own connection proved alive since `probe` was sent: it carried
    /// a message, or answered the probe's ping (per-call streams: no ping; the member's
    /// answer stands for it).
    pub(super) fn stream_alive(&self, probe: &Probe) -> bool {
        self.last_message > probe.sent
            || match &self.conn {
                Some(Conn::Shared(c)) => c.ponged(probe.ping),
                _ => true,
            }
    }

    /// The stream has been silent for `idle`: probe it, or close it when it carries nothing.
    pub(super) async fn idle(&mut self) {
        let Some(conn) = &mut self.conn else {
            return;
        };
        if self.subs.is_empty() {
            if let Some(Conn::Shared(conn)) = self.conn.take() {
                tracing::debug!("no watch left: closing the shared stream");
                conn.close().await;
            }
            return;
        }
        let endpoint = conn.endpoint();
        let sent = Instant::now();
        let mut ping = 0;
        if let Conn::Shared(c) = conn {
            // The stream's own connection: a ping its far end answers whatever the stream
            // carries. Not a progress request: etcd 3.5.13+ leaves one unanswered while a
            // watch catches up or waits for a future revision, and ignores every later one on
            // the stream until its next event, the cache's and the user's included.
            ping = match c.ping().await {
                Ok(ping) => ping,
                Err(e) => {
                    tracing::debug!(error = %e, "watch stream ping failed; moving");
                    self.reconnect().await;
                    return;
                }
            };
        }
        let backend = self.backend.clone();
        let deadline = sent + self.liveness.timeout;
        self.probe = Some(Probe {
            check: Some(Box::pin(async move {
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let result = backend.check_leader(&endpoint, left).await;
                    let Err(e) = result else {
                        return Ok(());
                    };
                    // "No leader" here while another member has one: this member is cut
                    // off (not an election, which every member would report): move now.
                    if is_no_leader(&e) && another_has_leader(&backend, &endpoint, left).await {
                        return Err(e);
                    }
                    if Instant::now() + RECHECK >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(RECHECK).await;
                }
            })),
            sent,
            ping,
            deadline,
        });
    }

    /// Opens a connection (after a backoff when the last ones failed) and creates every
    /// watch on it from its next revision.
    pub(super) async fn connect(&mut self) {
        // The first attempt after a failure goes at once (to the next endpoint: the failed
        // one was demoted); later ones back off, until a fixed instant (commands served
        // meanwhile do not restart the wait).
        if self.failures > 1 {
            let failures = self.failures - 1;
            let at = *self
                .reconnect_at
                .get_or_insert_with(|| Instant::now() + RECONNECT_BACKOFF.delay(failures));
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                // Keep serving cancels while waiting.
                command = self.commands.recv(), if self.commands_open => {
                    match command {
                        Some(command) => self.command(command).await,
                        None => self.commands_open = false,
                    }
                    return;
                }
            }
        }
        self.reconnect_at = None;
        if self.subs.is_empty() {
            return;
        }
        if let Some(at) = self.renew_at.take() {
            match self.backend.renew_token(&at).await {
                Err(renewal) if !renewal.is_transient() => {
                    // Refused for good (the credentials no longer work): nothing to retry.
                    self.end_all(renewal);
                    return;
                }
                // Not now: the opening goes ahead, and a refusal asks for it again.
                Err(renewal) => tracing::debug!(error = %renewal, "token renewal failed"),
                Ok(()) => {}
            }
        }
        self.by_server_id.clear();
        let opened = if self.shared {
            match self.backend.open_bidi::<WatchRequest>().await {
                Ok(Some(conn)) => Ok(Conn::Shared(Box::new(conn))),
                Ok(None) => Err(Error::Unsupported(
                    "the endpoint no longer offers the shared watch stream".into(),
                )),
                Err(e) => Err(e),
            }
        } else {
            let Some(id) = self.subs.values().find(|s| !s.paused).map(|s| s.id) else {
                return;
            };
            let Some(mut sub) = self.subs.remove(&id) else {
                return;
            };
            let request = self.incarnate(&mut sub);
            self.subs.insert(id, sub);
            self.backend.call_stream(&request).await.map(Conn::Own)
        };
        if opened.is_ok() {
            self.learn_progress_order().await;
        }
        self.last_message = Instant::now();
        self.probe = None;
        match opened {
            Ok(conn) => {
                let endpoint = conn.endpoint();
                tracing::debug!(%endpoint, watches = self.subs.len(), "watch stream connected");
                self.conn = Some(conn);
                if self.shared {
                    let ids: Vec<u64> = self.subs.keys().copied().collect();
                    for id in ids {
                        let Some(mut sub) = self.subs.remove(&id) else {
                            continue;
                        };
                        if sub.paused {
                            self.subs.insert(id, sub);
                            continue;
                        }
                        let sent = self.send_create(&mut sub).await;
                        self.subs.insert(id, sub);
                        if sent.is_err() {
                            self.failures += 1;
                            self.conn = None;
                            return;
                        }
                    }
                } else {
                    for sub in self.subs.values() {
                        *lock(&sub.endpoint) = endpoint.clone();
                    }
                }
            }
            Err(e) if self.backend.uses_auth() && is_invalid_token(&e) => {
                // As for a stream refused the same way: try again after a backoff, with a
                // token renewed then.
                self.failures += 1;
                self.renew_at = Some(self.refused_at(&e));
            }
            Err(e) if e.is_auth() && self.backend.uses_auth() && !self.stream_auth_retried => {
                // A stale token (expired, or a restarted member's): try again with a renewed one.
                self.stream_auth_retried = true;
                tracing::debug!(error = %e, "watch stream refused; retrying with a renewed token");
                self.renew_at = Some(self.refused_at(&e));
            }
            Err(e) => {
                self.failures += 1;
                tracing::debug!(error = %e, "watch stream connect failed");
                // A watch not yet created reports the failure to its caller; the others
                // wait for the next attempt.
                let failed: Vec<u64> = self
                    .subs
                    .values()
                    .filter(|s| s.created.is_some())
                    .map(|s| s.id)
                    .collect();
                for id in failed {
                    if let Some(sub) = self.subs.remove(&id) {
                        finish(sub, e.clone());
                    }
                }
                if !e.is_transient() {
                    self.end_all(e);
                }
            }
        }
    }

    /// Drops the connection and demotes its endpoint; the loop reconnects.
    pub(super) async fn reconnect(&mut self) {
        self.probe = None;
        self.failures += 1;
        if let Some(conn) = &self.conn {
            let endpoint = conn.endpoint();
            self.counters
                .watch_reconnects
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.backend.demote(&endpoint);
            tracing::debug!(%endpoint, "watch stream lost; resuming elsewhere");
        }
        self.drop_stream();
    }

    /// Drops the stream (closing politely could wait on a frozen member); every watch is
    /// created again, from its next revision, on the next one.
    pub(super) fn drop_stream(&mut self) {
        self.conn = None;
        self.by_server_id.clear();
        for sub in self.subs.values_mut() {
            sub.server_id = 0;
            sub.active = false;
        }
    }
}
