//! The driver's task: the loop that serves commands, messages and the liveness probe, and
//! what each command and message does to the watches.

use super::state::{Command, Sub};
use super::stream::{is_invalid_token, next_message, poll_check, Conn, Probe, PONG_POLL};
use crate::backend::{Backend, BidiConn};
use crate::config::{Counters, Liveness};
use crate::error::Result;
use crate::watch::event::{group_by_revision, WatchResponse};
use etcd_wire::watch::{WatchProgressRequest, WatchRequest, WatchResponse as WireResponse};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub(super) struct Driver {
    pub(super) backend: Backend,
    pub(super) liveness: Liveness,
    /// The client's counters (reconnects).
    pub(super) counters: Arc<Counters>,
    pub(super) shared: bool,
    pub(super) commands: mpsc::UnboundedReceiver<Command>,
    /// For resume notices from waiter tasks; weak, so that it keeps nothing alive.
    pub(super) resume: mpsc::WeakUnboundedSender<Command>,
    pub(super) subs: HashMap<u64, Box<Sub>>,
    /// Server-side watch ID → sub.
    pub(super) by_server_id: HashMap<i64, u64>,
    pub(super) next_server_id: i64,
    pub(super) conn: Option<Conn>,
    /// Consecutive failed or useless connections: the backoff grows with it; only an
    /// event or a progress notification resets it (a `created` does not).
    pub(super) failures: u32,
    /// When the backoff before the next connection ends: fixed once, so that commands
    /// served meanwhile (progress requests every few milliseconds) do not restart it.
    pub(super) reconnect_at: Option<Instant>,
    pub(super) last_message: Instant,
    pub(super) probe: Option<Probe>,
    pub(super) commands_open: bool,
    /// The token was renewed for a stream refused "permission denied" since a watch was
    /// last created: a second refusal is for real.
    pub(super) stream_auth_retried: bool,
    /// A member refused the token: renew it, asking that member first, right before the
    /// next connection (after its backoff). A token renewed before the backoff could
    /// expire unused while waiting (etcd's simple tokens live for `--auth-token-ttl`, 2 s
    /// in the robustness suite) and be refused again, round after round.
    pub(super) renew_at: Option<String>,
    /// Whether the server orders its answers to progress requests with the stream's events
    /// (etcd 3.4.25+, 3.5.8+), learnt on the first connection: only then may they move a
    /// watch's resume point.
    pub(super) ordered_progress: Option<bool>,
}

/// What to do after handling a message.
pub(super) enum Next {
    Continue,
    /// Drop the connection, move to another endpoint, resume every watch.
    Reconnect,
}

impl Driver {
    /// Where to renew a token that `e` refused: the member that refused it (it answers,
    /// where the client's preferred endpoint may be one that stopped answering).
    pub(super) fn refused_at(&self, e: &crate::error::Error) -> String {
        e.endpoint()
            .map(str::to_string)
            .or_else(|| self.conn.as_ref().map(Conn::endpoint))
            .unwrap_or_default()
    }

    pub(super) fn new(
        backend: Backend,
        liveness: Liveness,
        counters: Arc<Counters>,
        conn: Option<BidiConn<WatchRequest>>,
        commands: mpsc::UnboundedReceiver<Command>,
        resume: &mpsc::UnboundedSender<Command>,
    ) -> Driver {
        let shared = conn.is_some();
        Driver {
            backend,
            liveness,
            counters,
            shared,
            commands,
            resume: resume.downgrade(),
            subs: HashMap::new(),
            by_server_id: HashMap::new(),
            next_server_id: 1,
            conn: conn.map(|c| Conn::Shared(Box::new(c))),
            failures: 0,
            reconnect_at: None,
            last_message: Instant::now(),
            probe: None,
            commands_open: true,
            ordered_progress: None,
            stream_auth_retried: false,
            renew_at: None,
        }
    }

    pub(super) async fn run(mut self) {
        loop {
            if !self.commands_open && self.subs.is_empty() {
                break;
            }
            if self.conn.is_none() && self.subs.values().any(|s| !s.paused) {
                self.connect().await;
                continue;
            }
            let wake_at = match &self.probe {
                // The member answered; its connection's pong is read by `next`, which says
                // nothing: look again shortly.
                Some(probe) if probe.check.is_none() => {
                    probe.deadline.min(Instant::now() + PONG_POLL)
                }
                Some(probe) => probe.deadline,
                None => self.last_message + self.liveness.idle,
            };
            tokio::select! {
                command = self.commands.recv(), if self.commands_open => match command {
                    Some(command) => self.command(command).await,
                    None => self.commands_open = false,
                },
                message = next_message(&mut self.conn) => {
                    self.last_message = Instant::now();
                    if let Next::Reconnect = self.message(message).await {
                        self.reconnect().await;
                    }
                }
                result = poll_check(&mut self.probe) => match result {
                    Err(e) => {
                        tracing::info!(error = %e, "the watch stream's member failed its liveness check; moving");
                        self.reconnect().await;
                    }
                    Ok(()) => {
                        // The member has a leader; done now if its connection answered too
                        // (else the deadline decides).
                        if let Some(probe) = &self.probe {
                            if self.stream_alive(probe) {
                                self.probe = None;
                                self.last_message = Instant::now();
                            }
                        }
                    }
                },
                _ = tokio::time::sleep_until(wake_at), if self.conn.is_some() => {
                    match self.probe.take() {
                        Some(probe) => {
                            // Alive if the member said it has a leader, and the stream's own
                            // connection answered its ping or carried a message since.
                            let stream_alive = self.stream_alive(&probe);
                            if probe.check.is_none() && stream_alive {
                                self.last_message = Instant::now();
                            } else if Instant::now() < probe.deadline {
                                self.probe = Some(probe);
                            } else {
                                tracing::info!(
                                    endpoint = ?self.conn.as_ref().map(Conn::endpoint),
                                    leader = probe.check.is_none(),
                                    stream = stream_alive,
                                    "watch stream's member failed its liveness probe; moving"
                                );
                                self.reconnect().await;
                            }
                        }
                        None => self.idle().await,
                    }
                }
            }
        }
        if let Some(Conn::Shared(conn)) = self.conn.take() {
            conn.close().await;
        }
    }

    pub(super) async fn command(&mut self, command: Command) {
        match command {
            Command::Create(mut sub) => {
                if self.conn.is_some() && self.shared {
                    if let Err(e) = self.send_create(&mut sub).await {
                        tracing::debug!(error = %e, "watch create failed to send");
                        self.subs.insert(sub.id, sub);
                        self.reconnect().await;
                        return;
                    }
                }
                self.subs.insert(sub.id, sub);
            }
            Command::Cancel { id } => {
                if let Some(sub) = self.subs.remove(&id) {
                    self.cancel_on_server(sub.server_id).await;
                }
                if !self.shared && self.subs.is_empty() {
                    // Per-call: the connection was the watch's own.
                    self.conn = None;
                }
            }
            Command::Progress { id } => {
                if let Some(sub) = self.subs.get_mut(&id) {
                    sub.wants_progress = true;
                    let request = WatchRequest {
                        progress_request: Some(WatchProgressRequest {}),
                        ..WatchRequest::default()
                    };
                    if let Some(Conn::Shared(c)) = &mut self.conn {
                        let _ = c.send(&request).await;
                    }
                }
            }
            Command::Resume { id } => self.resume(id).await,
        }
    }

    pub(super) async fn message(&mut self, message: Option<Result<WireResponse>>) -> Next {
        let message = match message {
            Some(Ok(m)) => m,
            Some(Err(e)) if e.is_transient() => {
                tracing::debug!(error = %e, "watch stream error; resuming");
                return Next::Reconnect;
            }
            Some(Err(e)) if self.backend.uses_auth() && is_invalid_token(&e) => {
                // A token this member does not know (expired, issued before it restarted, or
                // not applied there yet): reconnect with a renewed one, as often as it happens
                // (with the backoff of any failure); only a renewal refused for good ends the
                // watches.
                self.renew_at = Some(self.refused_at(&e));
                return Next::Reconnect;
            }
            Some(Err(e))
                if e.is_auth() && self.backend.uses_auth() && !self.stream_auth_retried =>
            {
                // etcd refuses a watch stream whose token expired (or that a restarted
                // member never issued) as "permission denied" (etcd issue #12385), the
                // gateway as a stream error: renew the token and reopen the stream, once
                // until a watch is created on it again.
                self.stream_auth_retried = true;
                tracing::debug!(error = %e, "watch stream refused; reconnecting with a renewed token");
                self.renew_at = Some(self.refused_at(&e));
                self.drop_stream();
                return Next::Continue;
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "watch stream ended by a permanent error");
                self.end_all(e);
                return Next::Continue;
            }
            None => {
                tracing::debug!("watch stream ended by the server; resuming");
                return Next::Reconnect;
            }
        };
        let mut server_id = message.watch_id;
        if server_id == -1 {
            if !message.created && !message.canceled && message.events.is_empty() {
                // A progress notification for the whole stream (answer to a progress request).
                self.progress_all(message.header.revision);
                return Next::Continue;
            }
            // etcd 3.4 answers a create it refuses (permission denied) with ID -1: it is the
            // oldest create not yet answered.
            match self.oldest_pending() {
                Some(pending) => server_id = pending,
                None => return Next::Continue,
            }
        }
        let Some(&id) = self.by_server_id.get(&server_id) else {
            // An answer for a watch cancelled meanwhile (or an older incarnation).
            return Next::Continue;
        };
        let Some(sub) = self.subs.get_mut(&id) else {
            return Next::Continue;
        };
        if message.created && !message.canceled {
            self.stream_auth_retried = false;
            sub.active = true;
            sub.auth_retried = false;
            if sub.next_revision == 0 {
                // A watch from "now": resume after the revision it was created at.
                sub.next_revision = message.header.revision + 1;
            }
            if let Some(created) = sub.created.take() {
                let _ = created.send(Ok(()));
            }
        }
        if message.canceled {
            return self.canceled(id, message).await;
        }
        if message.events.is_empty() {
            if !message.created && message.header.revision > 0 && sub.active {
                // The watch's own progress notification.
                self.failures = 0;
                let current = sub.is_current(message.header.revision);
                sub.next_revision = sub.next_revision.max(message.header.revision + 1);
                if current && (sub.create.progress_notify || sub.wants_progress) {
                    sub.wants_progress = false;
                    self.deliver(id, vec![WatchResponse::progress(message.header.revision)])
                        .await;
                }
            }
            return Next::Continue;
        }
        self.failures = 0;
        let batches = group_by_revision(message.events, &sub.ns);
        self.deliver(id, batches).await;
        Next::Continue
    }
}
