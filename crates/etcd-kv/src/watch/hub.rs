//! The watch hub: one driver task per stream, carrying any number of watches.
//!
//! In the shared mode, one driver per client owns one bidirectional stream (the gateway's
//! WebSocket): creating a watch is a message, dropping a [`WatchStream`] sends its cancel,
//! and a progress request is a message. Where the server allows no shared stream, each
//! watch gets a driver of its own over one POST stream (the per-call mode); the same code
//! then handles exactly one watch.
//!
//! Each watch ("sub") keeps the first revision it has not delivered whole; after any
//! reconnect it is created again from there (see [`Sub::create_request`]) under a fresh
//! server-side ID, so answers meant for an older incarnation are recognised and dropped.
//! Liveness ([`Liveness`]): after `idle` without a message the driver pings the stream's
//! connection and asks the member whether it has a leader (again while it says no); no
//! proof of both within `timeout` and the stream moves on. A consumer that falls behind
//! pauses its watch on the server (cancel) and resumes it from its next revision once it
//! has room again: memory stays bounded and no event is lost.

use super::{group_by_revision, WatchResponse, WatchStream};
use crate::backend::{Backend, BidiConn, ServerStream};
use crate::backoff::backoff;
use crate::client::{Client, Counters, Liveness, StreamMode};
use crate::error::{Error, Result};
use crate::key::Namespace;
use etcd_wire::watch::{
    WatchCancelRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest,
    WatchResponse as WireResponse,
};
use etcd_wire::{Code, Status};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Responses buffered per watch before the watch is paused on the server.
const BUFFER: usize = 1024;

/// The client's shared watch stream, or the knowledge that there is none.
pub(crate) struct WatchHub {
    /// `None`: the server allows no shared stream; each watch uses its own.
    commands: Option<mpsc::UnboundedSender<Command>>,
}

/// What a [`WatchStream`] holds of its driver.
#[derive(Debug)]
pub(crate) struct SubHandle {
    id: u64,
    commands: mpsc::UnboundedSender<Command>,
    shared: bool,
    endpoint: Arc<Mutex<String>>,
}

impl SubHandle {
    pub(crate) fn request_progress(&self) -> Result<()> {
        if !self.shared {
            return Err(Error::Unsupported(
                "progress requests need the shared watch stream (not available in the per-call stream mode)".into(),
            ));
        }
        let _ = self.commands.send(Command::Progress { id: self.id });
        Ok(())
    }

    pub(crate) fn endpoint(&self) -> String {
        lock(&self.endpoint).clone()
    }
}

impl Drop for SubHandle {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Cancel { id: self.id });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[derive(Debug)]
enum Command {
    Create(Box<Sub>),
    Cancel {
        id: u64,
    },
    Progress {
        id: u64,
    },
    /// The consumer of a paused watch has room again.
    Resume {
        id: u64,
    },
}

/// One watch, as its driver sees it.
#[derive(Debug)]
struct Sub {
    id: u64,
    /// The create request, keys in wire (namespaced) form; `start_revision` as asked.
    create: WatchCreateRequest,
    ns: Namespace,
    /// The first revision not yet delivered whole; 0 until known (a watch from "now").
    next_revision: i64,
    events: mpsc::Sender<Result<WatchResponse>>,
    /// Told once etcd has created the watch (or why it could not).
    created: Option<oneshot::Sender<Result<()>>>,
    /// The server-side ID of its current incarnation (0: not created on this connection).
    server_id: i64,
    /// Created on the server (answered `created`).
    active: bool,
    /// Cancelled on the server because the consumer fell behind: `stash` holds what did
    /// not fit.
    paused: bool,
    stash: VecDeque<WatchResponse>,
    /// A progress notification was asked for on this watch.
    wants_progress: bool,
    /// Whether the token was renewed for it since it was last created.
    auth_retried: bool,
    endpoint: Arc<Mutex<String>>,
}

/// Creates a watch: on the client's shared stream where there is one, else on its own.
pub(crate) async fn create(client: &Client, create: WatchCreateRequest) -> Result<WatchStream> {
    let inner = &client.inner;
    let shared = match inner.stream_mode {
        StreamMode::PerCall => None,
        // One hub per client: the first watch starts it, concurrent ones wait for it.
        StreamMode::Auto => inner
            .watch_hub
            .get_or_try_init(|| WatchHub::start(&inner.backend, inner.liveness, &inner.counters))
            .await?
            .commands
            .clone(),
    };
    let (events_tx, events_rx) = mpsc::channel(BUFFER);
    let (created_tx, created_rx) = oneshot::channel();
    let endpoint = Arc::new(Mutex::new(String::new()));
    let sub = Box::new(Sub {
        id: 0,
        next_revision: create.start_revision,
        create,
        ns: client.namespace.clone(),
        events: events_tx,
        created: Some(created_tx),
        server_id: 0,
        active: false,
        paused: false,
        stash: VecDeque::new(),
        wants_progress: false,
        auth_retried: false,
        endpoint: endpoint.clone(),
    });
    let is_shared = shared.is_some();
    let (commands, id) = match shared {
        Some(commands) => (commands, next_sub_id()),
        None => {
            let (tx, rx) = mpsc::unbounded_channel();
            let driver = Driver::new(
                inner.backend.clone(),
                inner.liveness,
                inner.counters.clone(),
                None,
                rx,
                &tx,
            );
            tokio::spawn(driver.run());
            (tx, 1)
        }
    };
    let handle = SubHandle {
        id,
        commands: commands.clone(),
        shared: is_shared,
        endpoint,
    };
    let mut sub = sub;
    sub.id = id;
    if commands.send(Command::Create(sub)).is_err() {
        return Err(Error::Protocol("the watch stream's task has ended".into()));
    }
    // Etcd must confirm within the request timeout (plus the time to connect).
    let deadline = inner.backend.request_timeout() * 2;
    match tokio::time::timeout(deadline, created_rx).await {
        Ok(Ok(Ok(()))) => Ok(WatchStream {
            events: events_rx,
            handle,
        }),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Err(_)) => Err(Error::Protocol(
            "the watch stream's task ended before the watch was created".into(),
        )),
        Err(_) => Err(Error::timeout(
            &handle.endpoint(),
            deadline,
            "etcd did not confirm the watch in time",
        )),
    }
}

fn next_sub_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl WatchHub {
    /// Opens the shared stream and starts its driver; a hub without one where the server
    /// allows none.
    async fn start(
        backend: &Backend,
        liveness: Liveness,
        counters: &Arc<Counters>,
    ) -> Result<WatchHub> {
        match backend.open_bidi::<WatchRequest>().await? {
            Some(conn) => {
                tracing::debug!(
                    endpoint = conn.endpoint(),
                    "watches share one WebSocket stream"
                );
                // Whether progress answers are ordered with events: from the version, now
                // (a failure leaves it for the next connection).
                let ordered = backend
                    .server_version()
                    .await
                    .ok()
                    .map(|version| super::progress_is_ordered(&version));
                let (tx, rx) = mpsc::unbounded_channel();
                // The driver holds a weak sender only for resumes: it ends once every
                // handle (the client's and the watches') is gone.
                let mut driver = Driver::new(
                    backend.clone(),
                    liveness,
                    counters.clone(),
                    Some(conn),
                    rx,
                    &tx,
                );
                driver.ordered_progress = ordered;
                tokio::spawn(driver.run());
                Ok(WatchHub { commands: Some(tx) })
            }
            None => Ok(WatchHub { commands: None }),
        }
    }
}

/// The stream a driver reads.
enum Conn {
    Shared(Box<BidiConn<WatchRequest>>),
    /// The per-call mode's POST stream of the driver's one watch.
    Own(ServerStream<WireResponse>),
}

impl Conn {
    fn endpoint(&self) -> String {
        match self {
            Conn::Shared(c) => c.endpoint().to_string(),
            Conn::Own(s) => s.endpoint().to_string(),
        }
    }

    async fn next(&mut self) -> Option<Result<WireResponse>> {
        match self {
            Conn::Shared(c) => c.next().await,
            Conn::Own(s) => s.next().await,
        }
    }
}

/// A liveness probe in flight.
struct Probe {
    /// Whether the member has a leader (asked again while it says no, until the
    /// deadline); `None` once it said yes.
    check: Option<Pin<Box<dyn Future<Output = Result<()>> + Send>>>,
    /// When the probe was sent: a message after it proves the stream alive.
    sent: Instant,
    /// The ping sent on a shared stream's own connection, whose pong proves it alive
    /// (0: nothing to wait for).
    ping: u64,
    /// When the probe has failed unless answered.
    deadline: Instant,
}

/// How soon a member that answered "no leader" (or failed to answer) is asked again
/// within one probe: an election takes about one election timeout, after which it
/// answers yes and the watches stay.
const RECHECK: Duration = Duration::from_millis(200);

/// How often a probe whose member answered looks for its connection's pong.
const PONG_POLL: Duration = Duration::from_millis(20);

struct Driver {
    backend: Backend,
    liveness: Liveness,
    /// The client's counters (reconnects).
    counters: Arc<Counters>,
    shared: bool,
    commands: mpsc::UnboundedReceiver<Command>,
    /// For resume notices from waiter tasks; weak, so that it keeps nothing alive.
    resume: mpsc::WeakUnboundedSender<Command>,
    subs: HashMap<u64, Box<Sub>>,
    /// Server-side watch ID → sub.
    by_server_id: HashMap<i64, u64>,
    next_server_id: i64,
    conn: Option<Conn>,
    /// Consecutive failed or useless connections: the backoff grows with it; only an
    /// event or a progress notification resets it (a `created` does not).
    failures: u32,
    /// When the backoff before the next connection ends: fixed once, so that commands
    /// served meanwhile (progress requests every few milliseconds) do not restart it.
    reconnect_at: Option<Instant>,
    last_message: Instant,
    probe: Option<Probe>,
    commands_open: bool,
    /// The token was renewed for a stream refused "permission denied" since a watch was
    /// last created: a second refusal is for real.
    stream_auth_retried: bool,
    /// Whether the server orders its answers to progress requests with the stream's events
    /// (etcd 3.4.25+, 3.5.8+), learnt on the first connection: only then may they move a
    /// watch's resume point.
    ordered_progress: Option<bool>,
}

/// What to do after handling a message.
enum Next {
    Continue,
    /// Drop the connection, move to another endpoint, resume every watch.
    Reconnect,
}

impl Driver {
    fn new(
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
        }
    }

    async fn run(mut self) {
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

    /// Learns, once, whether the server orders its answers to progress requests with the
    /// stream's events (from its version; not ordered when it cannot be learnt).
    async fn learn_progress_order(&mut self) {
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
    fn stream_alive(&self, probe: &Probe) -> bool {
        self.last_message > probe.sent
            || match &self.conn {
                Some(Conn::Shared(c)) => c.ponged(probe.ping),
                _ => true,
            }
    }

    /// The stream has been silent for `idle`: probe it, or close it when it carries nothing.
    async fn idle(&mut self) {
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

    async fn command(&mut self, command: Command) {
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
            Command::Resume { id } => {
                let Some(sub) = self.subs.get_mut(&id) else {
                    return;
                };
                if !sub.paused {
                    return;
                }
                if !flush_stash(sub) {
                    // Still more than fits: wait for room again.
                    self.arm_resume(id);
                    return;
                }
                sub.paused = false;
                // Per-call: the loop reopens the watch's own stream.
                if self.shared && self.conn.is_some() {
                    if let Some(mut sub) = self.subs.remove(&id) {
                        let sent = self.send_create(&mut sub).await;
                        self.subs.insert(id, sub);
                        if sent.is_err() {
                            self.reconnect().await;
                        }
                    }
                }
            }
        }
    }

    /// Sends a sub's create request on the shared stream under a fresh server-side ID.
    async fn send_create(&mut self, sub: &mut Sub) -> Result<()> {
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
    fn incarnate(&mut self, sub: &mut Sub) -> WatchRequest {
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

    async fn cancel_on_server(&mut self, server_id: i64) {
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

    /// Opens a connection (after a backoff when the last ones failed) and creates every
    /// watch on it from its next revision.
    async fn connect(&mut self) {
        // The first attempt after a failure goes at once (to the next endpoint: the failed
        // one was demoted); later ones back off, until a fixed instant (commands served
        // meanwhile do not restart the wait).
        if self.failures > 1 {
            let failures = self.failures - 1;
            let at = *self
                .reconnect_at
                .get_or_insert_with(|| Instant::now() + backoff(failures));
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
                // As for a stream refused the same way: renew, and try again after a backoff.
                self.failures += 1;
                if let Err(renewal) = self.backend.renew_token().await {
                    if !renewal.is_transient() {
                        self.end_all(renewal);
                    }
                }
            }
            Err(e) if e.is_auth() && self.backend.uses_auth() && !self.stream_auth_retried => {
                // A stale token (expired, or a restarted member's): renew it, try again.
                self.stream_auth_retried = true;
                let renewed = self.backend.renew_token().await;
                tracing::debug!(error = %e, ok = renewed.is_ok(), "watch stream refused; token renewed");
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
    async fn reconnect(&mut self) {
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
    fn drop_stream(&mut self) {
        self.conn = None;
        self.by_server_id.clear();
        for sub in self.subs.values_mut() {
            sub.server_id = 0;
            sub.active = false;
        }
    }

    /// Ends every watch with `error` (a permanent one).
    fn end_all(&mut self, error: Error) {
        for (_, sub) in self.subs.drain() {
            finish(sub, error.clone());
        }
        self.by_server_id.clear();
        self.conn = None;
    }

    async fn message(&mut self, message: Option<Result<WireResponse>>) -> Next {
        let message = match message {
            Some(Ok(m)) => m,
            Some(Err(e)) if e.is_transient() => {
                tracing::debug!(error = %e, "watch stream error; resuming");
                return Next::Reconnect;
            }
            Some(Err(e)) if self.backend.uses_auth() && is_invalid_token(&e) => {
                // A token this member does not know (expired, issued before it restarted, or
                // not applied there yet): renew it and reconnect, as often as it happens (with
                // the backoff of any failure); only a renewal refused for good ends the watches.
                return match self.backend.renew_token().await {
                    Err(renewal) if !renewal.is_transient() => {
                        self.end_all(renewal);
                        Next::Continue
                    }
                    _ => Next::Reconnect,
                };
            }
            Some(Err(e))
                if e.is_auth() && self.backend.uses_auth() && !self.stream_auth_retried =>
            {
                // etcd refuses a watch stream whose token expired (or that a restarted
                // member never issued) as "permission denied" (etcd issue #12385), the
                // gateway as a stream error: renew the token and reopen the stream, once
                // until a watch is created on it again.
                self.stream_auth_retried = true;
                let renewed = self.backend.renew_token().await;
                tracing::debug!(error = %e, ok = renewed.is_ok(), "watch stream refused; token renewed, reconnecting");
                self.drop_stream();
                return Next::Continue;
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "watch stream ended by a permanent error");
                self.end_all(e);
                return Next::Continue;
            }
            None => return Next::Reconnect,
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
                sub.next_revision = sub.next_revision.max(message.header.revision + 1);
                if sub.create.progress_notify || sub.wants_progress {
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

    /// The server-side ID of the oldest create request not yet answered.
    fn oldest_pending(&self) -> Option<i64> {
        self.by_server_id
            .iter()
            .filter(|(_, id)| self.subs.get(id).is_some_and(|s| !s.active))
            .map(|(server_id, _)| *server_id)
            .min()
    }

    /// A progress notification of the stream: every active watch is up to `revision`.
    fn progress_all(&mut self, revision: i64) {
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
            if sub.wants_progress && notified > 0 {
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

    /// Hands a watch its responses, pausing it on the server if its consumer is full.
    async fn deliver(&mut self, id: u64, batches: Vec<WatchResponse>) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        let mut batches = batches.into_iter();
        while let Some(batch) = batches.next() {
            if !batch.events.is_empty() && batch.revision < sub.next_revision {
                // Delivered before a reconnect.
                continue;
            }
            let revision = batch.revision;
            let is_events = !batch.events.is_empty();
            match sub.events.try_send(Ok(batch)) {
                Ok(()) => {
                    if is_events {
                        sub.next_revision = revision + 1;
                    }
                }
                Err(TrySendError::Full(Ok(batch))) => {
                    sub.stash.push_back(batch);
                    sub.stash.extend(batches);
                    self.pause(id).await;
                    return;
                }
                Err(_) => {
                    // The consumer is gone; its cancel is on the way.
                    return;
                }
            }
        }
    }

    /// Cancels a watch on the server until its consumer has room again.
    async fn pause(&mut self, id: u64) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        sub.paused = true;
        sub.active = false;
        let server_id = std::mem::take(&mut sub.server_id);
        if let Some(last) = sub.stash.back() {
            // What is stashed counts as delivered: resume after it.
            if !last.events.is_empty() {
                sub.next_revision = sub.next_revision.max(last.revision + 1);
            }
        }
        self.arm_resume(id);
        tracing::debug!(watch = id, "watch consumer is behind: paused");
        if self.shared {
            self.cancel_on_server(server_id).await;
        } else {
            // Per-call: the connection is the watch's own; resume reopens it.
            self.conn = None;
            self.by_server_id.clear();
        }
    }

    /// Asks to be told (a [`Command::Resume`]) once a paused watch's consumer has room.
    fn arm_resume(&self, id: u64) {
        let Some(sub) = self.subs.get(&id) else {
            return;
        };
        let events = sub.events.clone();
        let resume = self.resume.clone();
        tokio::spawn(async move {
            if let Ok(permit) = events.reserve_owned().await {
                drop(permit);
                if let Some(resume) = resume.upgrade() {
                    let _ = resume.send(Command::Resume { id });
                }
            }
        });
    }

    /// etcd cancelled a watch: compaction, permission, leader loss...
    async fn canceled(&mut self, id: u64, message: WireResponse) -> Next {
        let Some(mut sub) = self.subs.remove(&id) else {
            return Next::Continue;
        };
        self.by_server_id.remove(&sub.server_id);
        sub.server_id = 0;
        sub.active = false;
        let endpoint = self.conn.as_ref().map(Conn::endpoint).unwrap_or_default();
        let reason = message.cancel_reason;
        let error = if message.compact_revision > 0 {
            Error::Compacted {
                compact_revision: message.compact_revision,
            }
        } else {
            let (code, number) = if reason.contains("permission denied") {
                (Code::PermissionDenied, 7)
            } else if reason.contains("no leader") {
                (Code::Unavailable, 14)
            } else if reason.contains("invalid auth token") {
                (Code::Unauthenticated, 16)
            } else {
                (Code::Unknown, 2)
            };
            if code == Code::Unavailable {
                // Not the watch's fault: move the whole stream.
                self.subs.insert(id, sub);
                return Next::Reconnect;
            }
            if code == Code::Unauthenticated && self.backend.uses_auth() {
                // A token this member does not know: renew and reconnect (with the backoff
                // of any failure) as often as it happens; a renewal refused for good ends it.
                match self.backend.renew_token().await {
                    Err(renewal) if !renewal.is_transient() => {
                        finish(sub, renewal);
                        return Next::Continue;
                    }
                    _ => {
                        self.subs.insert(id, sub);
                        return Next::Reconnect;
                    }
                }
            }
            if code == Code::PermissionDenied && self.backend.uses_auth() && !sub.auth_retried {
                // etcd reports a watch created with an expired token as "permission
                // denied": renew the token and try once more.
                sub.auth_retried = true;
                let renewed = self.backend.renew_token().await;
                tracing::debug!(
                    ok = renewed.is_ok(),
                    "watch refused; token renewed, retrying once"
                );
                self.subs.insert(id, sub);
                // The stream carries the token it was opened with (gRPC metadata, or the
                // per-call POST's header): reopen it at once with the new one, no backoff
                // for this one retry. Every watch on it resumes from its next revision.
                self.drop_stream();
                return Next::Continue;
            }
            Error::server(&endpoint, Status::new(number, reason))
        };
        finish(sub, error);
        if !self.shared {
            self.conn = None;
        }
        Next::Continue
    }
}

impl Sub {
    /// The create request of an incarnation: from the first revision it has not
    /// delivered. (Not from the one before, whose events it would drop: etcd 3.5.13+ takes
    /// such a watch for unsynced until its next sync, up to 100 ms, and a progress request
    /// meanwhile is deferred to the stream's next event, with every later one ignored; a
    /// watch from just after the store's revision is synced at once, and only waits for
    /// the next write anywhere.)
    fn create_request(&self, server_id: i64) -> WatchCreateRequest {
        WatchCreateRequest {
            start_revision: self.next_revision,
            watch_id: server_id,
            ..self.create.clone()
        }
    }
}

/// Ends a watch with a terminal error: its creator learns it, or its consumer gets what was
/// stashed for it and then the error (from a task of its own: the consumer may be slow).
fn finish(mut sub: Box<Sub>, error: Error) {
    if let Some(created) = sub.created.take() {
        let _ = created.send(Err(error));
        return;
    }
    tokio::spawn(async move {
        for batch in std::mem::take(&mut sub.stash) {
            if sub.events.send(Ok(batch)).await.is_err() {
                return;
            }
        }
        let _ = sub.events.send(Err(error)).await;
    });
}

/// Puts stashed responses into a paused watch's channel; true when all went.
fn flush_stash(sub: &mut Sub) -> bool {
    while let Some(batch) = sub.stash.pop_front() {
        match sub.events.try_send(Ok(batch)) {
            Ok(()) => {}
            Err(TrySendError::Full(Ok(batch))) => {
                sub.stash.push_front(batch);
                return false;
            }
            Err(_) => return false,
        }
    }
    true
}

async fn next_message(conn: &mut Option<Conn>) -> Option<Result<WireResponse>> {
    match conn {
        Some(conn) => conn.next().await,
        None => std::future::pending().await,
    }
}

/// True for "invalid auth token": the member does not know the token (it expired, the member
/// restarted since it was issued, or has not applied it yet); a fresh one will do.
fn is_invalid_token(e: &Error) -> bool {
    e.status().is_some_and(|s| {
        s.grpc_code() == Code::Unauthenticated || s.message.contains("invalid auth token")
    })
}

/// True for a member's "no leader" answer.
fn is_no_leader(e: &Error) -> bool {
    matches!(e, Error::Unavailable(_))
        && e.status().is_some_and(|s| s.message.contains("no leader"))
}

/// Whether any endpoint but `endpoint` has a leader, asking them all at once within `within`.
async fn another_has_leader(backend: &Backend, endpoint: &str, within: Duration) -> bool {
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
async fn poll_check(probe: &mut Option<Probe>) -> Result<()> {
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

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
