//! The watch hub: one driver task per stream, carrying any number of watches.
//!
//! In the shared mode, one driver per client owns one bidirectional stream (the gateway's
//! WebSocket): creating a watch is a message, dropping a [`WatchStream`](crate::WatchStream)
//! sends its cancel, and a progress request is a message. Where the server allows no
//! shared stream, each watch gets a driver of its own over one POST stream (the per-call
//! mode); the same code then handles exactly one watch.
//!
//! Each watch ("sub") keeps the first revision it has not delivered whole; after any
//! reconnect it is created again from there (see `Sub::create_request`) under a fresh
//! server-side ID, so answers meant for an older incarnation are recognised and dropped.
//! Liveness ([`Liveness`]): after `idle` without a message the driver pings the stream's
//! connection and asks the member whether it has a leader (again while it says no); no
//! proof of both within `timeout` and the stream moves on. A consumer that falls behind
//! pauses its watch on the server (cancel) and resumes it from its next revision once it
//! has room again: memory stays bounded and no event is lost.
//!
//! Here: the hub and the handle a watch holds. The files below, each importing only
//! those listed before it: `state.rs` (a watch's state, the commands), `stream.rs` (the
//! connection and the liveness probe's checks), `driver.rs` (the task: its loop, commands
//! and messages), `connect.rs` (connecting, dropping the stream, probing it), `subs.rs`
//! (incarnations, cancels, etcd's answers per watch, 3.4's watch ID -1) and `pause.rs`
//! (slow consumers); the tests, on the scripted backend, in `tests.rs`.

mod connect;
mod driver;
mod pause;
mod state;
mod stream;
mod subs;
#[cfg(test)]
mod tests;

use crate::backend::{Backend, BidiConn};
use crate::config::{Counters, Liveness, StreamMode};
use crate::error::{Error, Result};
use crate::key::Namespace;
use crate::watch::event::{progress_is_ordered, WatchResponse};
use driver::Driver;
use etcd_wire::watch::{WatchCreateRequest, WatchRequest};
use state::{lock, Command, Sub};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Responses buffered per watch before the watch is paused on the server.
const BUFFER: usize = 1024;

/// The receiving end of a watch: its responses, then at most one terminal error.
pub(crate) type Events = mpsc::Receiver<Result<WatchResponse>>;

/// A client's watches: its shared stream (started by the first watch), or the knowledge
/// that there is none, and what a driver needs.
pub(crate) struct WatchHub {
    backend: Backend,
    mode: StreamMode,
    liveness: Liveness,
    /// The client's counters (reconnects).
    counters: Arc<Counters>,
    /// The shared stream's commands once started; `None` inside: the server allows no
    /// shared stream, each watch uses its own.
    shared: tokio::sync::OnceCell<Option<mpsc::UnboundedSender<Command>>>,
}

impl WatchHub {
    /// A hub for the client of `backend`; nothing starts before the first watch.
    pub(crate) fn new(
        backend: Backend,
        mode: StreamMode,
        liveness: Liveness,
        counters: Arc<Counters>,
    ) -> WatchHub {
        WatchHub {
            backend,
            mode,
            liveness,
            counters,
            shared: tokio::sync::OnceCell::new(),
        }
    }

    /// Creates a watch (keys of `create` in wire form, stripped of `ns` on the way back):
    /// on the client's shared stream where there is one, else on its own. Returns once
    /// etcd has confirmed it.
    pub(crate) async fn create(
        &self,
        ns: Namespace,
        create: WatchCreateRequest,
    ) -> Result<(Events, SubHandle)> {
        let shared = match self.mode {
            StreamMode::PerCall => None,
            // One driver per client: the first watch starts it, concurrent ones wait for it.
            StreamMode::Auto => self
                .shared
                .get_or_try_init(|| self.start_shared())
                .await?
                .clone(),
        };
        let (events_tx, events_rx) = mpsc::channel(BUFFER);
        let (created_tx, created_rx) = oneshot::channel();
        let endpoint = Arc::new(Mutex::new(String::new()));
        let is_shared = shared.is_some();
        let (commands, id) = match shared {
            Some(commands) => (commands, next_sub_id()),
            None => {
                let (tx, rx) = mpsc::unbounded_channel();
                let driver = self.driver(None, rx, &tx);
                tokio::spawn(driver.run());
                (tx, 1)
            }
        };
        let sub = Box::new(Sub {
            id,
            next_revision: create.start_revision,
            create,
            ns,
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
        let handle = SubHandle {
            id,
            commands: commands.clone(),
            shared: is_shared,
            endpoint,
        };
        if commands.send(Command::Create(sub)).is_err() {
            return Err(Error::stopped(DRIVER));
        }
        // Etcd must confirm within the request timeout (plus the time to connect).
        let deadline = self.backend.request_timeout() * 2;
        match tokio::time::timeout(deadline, created_rx).await {
            Ok(Ok(Ok(()))) => Ok((events_rx, handle)),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(Error::stopped(DRIVER)),
            Err(_) => Err(Error::timeout(
                &handle.endpoint(),
                deadline,
                "etcd did not confirm the watch in time",
            )),
        }
    }

    /// Opens the shared stream and starts its driver; `None` where the server allows none.
    async fn start_shared(&self) -> Result<Option<mpsc::UnboundedSender<Command>>> {
        let Some(conn) = self.backend.open_bidi::<WatchRequest>().await? else {
            return Ok(None);
        };
        tracing::debug!(
            endpoint = conn.endpoint(),
            "watches share one WebSocket stream"
        );
        // Whether progress answers are ordered with events: from the version, now (a
        // failure leaves it for the next connection).
        let ordered = self
            .backend
            .server_version()
            .await
            .ok()
            .map(|version| progress_is_ordered(&version));
        let (tx, rx) = mpsc::unbounded_channel();
        // The driver holds a weak sender only for resumes: it ends once every handle (the
        // client's and the watches') is gone.
        let mut driver = self.driver(Some(conn), rx, &tx);
        driver.ordered_progress = ordered;
        tokio::spawn(driver.run());
        Ok(Some(tx))
    }

    fn driver(
        &self,
        conn: Option<BidiConn<WatchRequest>>,
        commands: mpsc::UnboundedReceiver<Command>,
        resume: &mpsc::UnboundedSender<Command>,
    ) -> Driver {
        Driver::new(
            self.backend.clone(),
            self.liveness,
            self.counters.clone(),
            conn,
            commands,
            resume,
        )
    }
}

/// What stopped when a watch's driver is gone ([`Error::Stopped`]).
const DRIVER: &str = "the watch stream's task";

/// What a [`WatchStream`](crate::WatchStream) holds of its driver.
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

fn next_sub_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
