//! The keep-alive hub: one driver task keeps every lease of a client alive.
//!
//! The driver holds a schedule of when each lease is next due (TTL/3 after its last
//! refresh) and the deadline after which it must be taken for lost. Keep-alives go out as
//! messages on one bidirectional stream (the gateway's WebSocket: one connection for all
//! leases) or, where the server allows none, as one POST each, from tasks whose answers
//! come back to the driver. Either way the timing and the verdicts are the same code.

use crate::backend::{Backend, BidiConn};
use crate::config::{Counters, StreamMode, RECONNECT_BACKOFF};
use crate::error::{Error, LeaseLost, Result};
use etcd_wire::lease::{LeaseKeepAliveRequest, LeaseKeepAliveResponse};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// The shortest wait before a failed refresh is tried again.
const MIN_RETRY: Duration = Duration::from_millis(100);

/// The most POST keep-alives in flight at once (per-call mode): each holds a connection.
const MAX_POSTS: usize = 32;

/// The client's keep-alive driver, started by the first keeper.
pub(crate) struct KeepAliveHub {
    backend: Backend,
    mode: StreamMode,
    counters: Arc<Counters>,
    commands: OnceLock<mpsc::UnboundedSender<Command>>,
}

/// What a [`LeaseKeeper`](crate::LeaseKeeper) tells the driver.
pub(crate) enum Command {
    Add {
        id: i64,
        ttl: i64,
        state: watch::Sender<Option<LeaseLost>>,
    },
    Remove {
        id: i64,
    },
}

impl KeepAliveHub {
    /// A hub for the client of `backend`; its driver starts with the first keeper.
    pub(crate) fn new(backend: Backend, mode: StreamMode, counters: Arc<Counters>) -> Self {
        KeepAliveHub {
            backend,
            mode,
            counters,
            commands: OnceLock::new(),
        }
    }

    /// A sender for the keepers it serves, starting the driver (it connects when the
    /// first keep-alive is due).
    pub(crate) fn commands(&self) -> mpsc::UnboundedSender<Command> {
        self.commands.get_or_init(|| self.start()).clone()
    }

    fn start(&self) -> mpsc::UnboundedSender<Command> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (answers_tx, answers_rx) = mpsc::unbounded_channel();
        let driver = Driver {
            backend: self.backend.clone(),
            counters: self.counters.clone(),
            post: self.mode == StreamMode::PerCall,
            conn: None,
            leases: HashMap::new(),
            schedule: BTreeSet::new(),
            commands: rx,
            answers_tx,
            answers: answers_rx,
            failures: 0,
            post_queue: VecDeque::new(),
            posts_in_flight: 0,
            reconnect_at: None,
        };
        tokio::spawn(driver.run());
        tx
    }
}

struct Entry {
    /// The TTL granted at the last refresh.
    ttl: Duration,
    /// Past this, without a refresh, the lease must be taken for lost.
    deadline: Instant,
    /// When it is next due (its key in the schedule).
    next: Instant,
    /// When the keep-alive in flight was sent, if one is.
    sent: Option<Instant>,
    last_error: Option<String>,
    state: watch::Sender<Option<LeaseLost>>,
}

/// An answer from a POST keep-alive task: lease, when it was sent, new TTL or error.
type Answer = (i64, Instant, Result<i64>);

struct Driver {
    backend: Backend,
    /// The client's counters (reconnects).
    counters: Arc<Counters>,
    /// One POST per keep-alive instead of the shared stream.
    post: bool,
    conn: Option<BidiConn<LeaseKeepAliveRequest>>,
    leases: HashMap<i64, Entry>,
    schedule: BTreeSet<(Instant, i64)>,
    commands: mpsc::UnboundedReceiver<Command>,
    answers_tx: mpsc::UnboundedSender<Answer>,
    answers: mpsc::UnboundedReceiver<Answer>,
    failures: u32,
    /// POST keep-alives waiting for a slot, and how many are in flight.
    post_queue: VecDeque<i64>,
    posts_in_flight: usize,
    /// No connection attempt before this (backoff).
    reconnect_at: Option<Instant>,
}

impl Driver {
    async fn run(mut self) {
        let mut commands_open = true;
        loop {
            if !commands_open && self.leases.is_empty() {
                return;
            }
            let wake = self.schedule.first().map(|(at, _)| *at);
            tokio::select! {
                command = self.commands.recv(), if commands_open => match command {
                    Some(command) => self.command(command),
                    None => commands_open = false,
                },
                answer = next_answer(&mut self.conn) => match answer {
                    Some(Ok(answer)) => {
                        let sent = self
                            .leases
                            .get(&answer.id)
                            .and_then(|e| e.sent)
                            .unwrap_or_else(Instant::now);
                        self.answered(answer.id, sent, Ok(answer.ttl));
                    }
                    Some(Err(e)) => self.lost_conn(e),
                    None => self.lost_conn(Error::Protocol("the keep-alive stream ended".into())),
                },
                Some((id, sent, result)) = self.answers.recv() => {
                    self.posts_in_flight -= 1;
                    self.answered(id, sent, result);
                    self.pump_posts();
                }
                _ = sleep_until(wake) => self.due().await,
            }
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Add { id, ttl, state } => {
                let now = Instant::now();
                let ttl = Duration::from_secs(ttl.max(1) as u64);
                let next = now + ttl / 3;
                self.unschedule(id);
                self.leases.insert(
                    id,
                    Entry {
                        ttl,
                        deadline: now + ttl,
                        next,
                        sent: None,
                        last_error: None,
                        state,
                    },
                );
                self.schedule.insert((next, id));
            }
            Command::Remove { id } => {
                self.unschedule(id);
                self.leases.remove(&id);
            }
        }
    }

    fn unschedule(&mut self, id: i64) {
        if let Some(entry) = self.leases.get(&id) {
            self.schedule.remove(&(entry.next, id));
        }
    }

    fn reschedule(&mut self, id: i64, next: Instant) {
        if let Some(entry) = self.leases.get_mut(&id) {
            self.schedule.remove(&(entry.next, id));
            entry.next = next;
            self.schedule.insert((next, id));
        }
    }

    /// Sends the keep-alives that are due, and gives up on leases past their deadline.
    async fn due(&mut self) {
        let now = Instant::now();
        let due: Vec<i64> = self
            .schedule
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect();
        if due.is_empty() {
            return;
        }
        // An unanswered keep-alive on the stream: the member is gone, move on.
        let stalled = due
            .iter()
            .any(|id| self.leases.get(id).is_some_and(|e| e.sent.is_some()));
        if stalled && self.conn.is_some() {
            self.lost_conn(Error::Protocol(
                "no answer to a keep-alive on the stream".into(),
            ));
        }
        let mut send = Vec::with_capacity(due.len());
        for id in due {
            let Some(entry) = self.leases.get_mut(&id) else {
                continue;
            };
            if now >= entry.deadline {
                let last_error = entry
                    .last_error
                    .take()
                    .unwrap_or_else(|| "no answer before the lease's deadline".into());
                let _ = entry
                    .state
                    .send(Some(LeaseLost::Unreachable { last_error }));
                self.unschedule(id);
                self.leases.remove(&id);
                continue;
            }
            let next = (now + retry_interval(entry.ttl)).min(entry.deadline);
            entry.sent = Some(now);
            self.reschedule(id, next);
            send.push(id);
        }
        if send.is_empty() {
            return;
        }
        if self.post {
            self.post_queue.extend(send);
            self.pump_posts();
            return;
        }
        if self.conn.is_none() && !self.connect().await {
            if self.post {
                // The server takes no stream (learnt just now): these go as POSTs, now
                // rather than a retry interval late.
                self.post_queue.extend(send);
                self.pump_posts();
            }
            return;
        }
        for id in send {
            let Some(conn) = &mut self.conn else {
                return;
            };
            if let Err(e) = conn.send(&LeaseKeepAliveRequest { id }).await {
                self.lost_conn(e);
                return;
            }
        }
    }

    /// Sends queued POST keep-alives, at most [`MAX_POSTS`] at a time.
    fn pump_posts(&mut self) {
        while self.posts_in_flight < MAX_POSTS {
            let Some(id) = self.post_queue.pop_front() else {
                return;
            };
            if !self.leases.contains_key(&id) {
                continue;
            }
            let Some(entry) = self.leases.get(&id) else {
                continue;
            };
            // Twice the retry interval: a member that does not answer by then (frozen, cut
            // off) is left for the next endpoint, long before the lease runs out.
            let deadline = retry_interval(entry.ttl) * 2;
            self.posts_in_flight += 1;
            let backend = self.backend.clone();
            let answers = self.answers_tx.clone();
            tokio::spawn(async move {
                let sent = Instant::now();
                let result = backend
                    .call_stream_once(&LeaseKeepAliveRequest { id }, Some(deadline))
                    .await;
                if let Err(e) = &result {
                    if e.is_transient() {
                        if let Some(endpoint) = e.endpoint() {
                            backend.demote(endpoint);
                        }
                    }
                }
                let result = result
                    .map(|a: LeaseKeepAliveResponse| a.ttl)
                    .map_err(|e| crate::request::lease_error(e, id));
                let _ = answers.send((id, sent, result));
            });
        }
    }

    /// Opens the shared stream, unless backing off; false when there is none now.
    async fn connect(&mut self) -> bool {
        if self.reconnect_at.is_some_and(|at| Instant::now() < at) {
            return false;
        }
        match self.backend.open_bidi::<LeaseKeepAliveRequest>().await {
            Ok(Some(conn)) => {
                tracing::debug!(
                    endpoint = conn.endpoint(),
                    "keep-alives share one WebSocket stream"
                );
                self.conn = Some(conn);
                self.reconnect_at = None;
                true
            }
            Ok(None) => {
                self.post = true;
                false
            }
            Err(e) => {
                self.failures += 1;
                self.note_error(&e);
                self.reconnect_at = Some(Instant::now() + RECONNECT_BACKOFF.delay(self.failures));
                false
            }
        }
    }

    /// The stream broke or stalled: drop it (the next due keep-alives reconnect).
    fn lost_conn(&mut self, e: Error) {
        tracing::debug!(error = %e, "keep-alive stream lost");
        if let Some(conn) = self.conn.take() {
            self.counters
                .keep_alive_reconnects
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.backend.demote(conn.endpoint());
        }
        self.note_error(&e);
        let now = Instant::now();
        // What was in flight is resent at once on the next connection.
        let pending: Vec<i64> = self
            .leases
            .iter()
            .filter(|(_, e)| e.sent.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in pending {
            if let Some(entry) = self.leases.get_mut(&id) {
                entry.sent = None;
            }
            self.reschedule(id, now);
        }
    }

    fn note_error(&mut self, e: &Error) {
        let text = e.to_string();
        for entry in self.leases.values_mut() {
            entry.last_error = Some(text.clone());
        }
    }

    /// A lease's keep-alive was answered.
    fn answered(&mut self, id: i64, sent: Instant, result: Result<i64>) {
        let Some(entry) = self.leases.get_mut(&id) else {
            return;
        };
        match result {
            Ok(ttl) if ttl > 0 => {
                self.failures = 0;
                let ttl = Duration::from_secs(ttl as u64);
                entry.ttl = ttl;
                entry.deadline = sent + ttl;
                entry.sent = None;
                entry.last_error = None;
                self.reschedule(id, sent + ttl / 3);
            }
            Ok(_) | Err(Error::LeaseNotFound { .. }) => {
                let _ = entry.state.send(Some(LeaseLost::Expired));
                self.unschedule(id);
                self.leases.remove(&id);
            }
            Err(e) => {
                tracing::debug!(lease = id, error = %e, "lease refresh failed; retrying");
                entry.sent = None;
                entry.last_error = Some(e.to_string());
                // Already rescheduled for a retry when sent.
            }
        }
    }
}

/// How soon a keep-alive of a lease of `ttl` is sent again when unanswered: a tenth of
/// the TTL, between 100 ms and 1 s. On a stream, an answer still missing by then means the
/// member is gone (the stream moves).
fn retry_interval(ttl: Duration) -> Duration {
    (ttl / 10).clamp(MIN_RETRY, Duration::from_secs(1))
}

async fn next_answer(
    conn: &mut Option<BidiConn<LeaseKeepAliveRequest>>,
) -> Option<Result<LeaseKeepAliveResponse>> {
    match conn {
        Some(conn) => conn.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
