//! What the driver knows of each watch (its state, from creation to its terminal error)
//! and the commands its handles send.

use crate::error::{Error, Result};
use crate::key::Namespace;
use crate::watch::event::WatchResponse;
use etcd_wire::watch::WatchCreateRequest;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug)]
pub(super) enum Command {
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
pub(super) struct Sub {
    pub(super) id: u64,
    /// The create request, keys in wire (namespaced) form; `start_revision` as asked.
    pub(super) create: WatchCreateRequest,
    pub(super) ns: Namespace,
    /// The first revision not yet delivered whole; 0 until known (a watch from "now").
    pub(super) next_revision: i64,
    pub(super) events: mpsc::Sender<Result<WatchResponse>>,
    /// Told once etcd has created the watch (or why it could not).
    pub(super) created: Option<oneshot::Sender<Result<()>>>,
    /// The server-side ID of its current incarnation (0: not created on this connection).
    pub(super) server_id: i64,
    /// Created on the server (answered `created`).
    pub(super) active: bool,
    /// Cancelled on the server because the consumer fell behind: `stash` holds what did
    /// not fit.
    pub(super) paused: bool,
    pub(super) stash: VecDeque<WatchResponse>,
    /// A progress notification was asked for on this watch.
    pub(super) wants_progress: bool,
    /// Whether the token was renewed for it since it was last created.
    pub(super) auth_retried: bool,
    pub(super) endpoint: Arc<Mutex<String>>,
}

impl Sub {
    /// Whether a progress notification at `revision` may be delivered: not older than
    /// what the watch already is (the revision before its next one). An older one (a
    /// member behind it after a move, or a watch from a future revision on etcd before
    /// 3.4.38 and 3.5.22, etcd #20221) tells nothing and would make progress go back.
    pub(super) fn is_current(&self, revision: i64) -> bool {
        revision >= self.next_revision - 1
    }

    /// The create request of an incarnation: from the first revision it has not
    /// delivered. (Not from the one before, whose events it would drop: etcd 3.5.13+ takes
    /// such a watch for unsynced until its next sync, up to 100 ms, and a progress request
    /// meanwhile is deferred to the stream's next event, with every later one ignored; a
    /// watch from just after the store's revision is synced at once, and only waits for
    /// the next write anywhere.)
    pub(super) fn create_request(&self, server_id: i64) -> WatchCreateRequest {
        WatchCreateRequest {
            start_revision: self.next_revision,
            watch_id: server_id,
            ..self.create.clone()
        }
    }
}

/// Ends a watch with a terminal error: its creator learns it, or its consumer gets what was
/// stashed for it and then the error (from a task of its own: the consumer may be slow).
pub(super) fn finish(mut sub: Box<Sub>, error: Error) {
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

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
