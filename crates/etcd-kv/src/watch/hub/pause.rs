//! Slow consumers: a watch whose consumer's channel is full is paused (cancelled on the
//! server, what did not fit stashed) and resumed from its next revision once the consumer
//! has room: memory stays bounded, no event is lost, other watches are not held up.

use super::driver::Driver;
use super::state::{Command, Sub};
use crate::watch::event::WatchResponse;
use tokio::sync::mpsc::error::TrySendError;

impl Driver {
    /// Hands a watch its responses, pausing it on the server if its consumer is full.
    pub(super) async fn deliver(&mut self, id: u64, batches: Vec<WatchResponse>) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        let mut batches = batches.into_iter();
        while let Some(batch) = batches.next() {
            if !batch.events().is_empty() && batch.revision() < sub.next_revision {
                // Delivered before a reconnect.
                continue;
            }
            let revision = batch.revision();
            let is_events = !batch.events().is_empty();
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
    pub(super) async fn pause(&mut self, id: u64) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        sub.paused = true;
        sub.active = false;
        let server_id = std::mem::take(&mut sub.server_id);
        if let Some(last) = sub.stash.back() {
            // What is stashed counts as delivered: resume after it.
            if !last.events().is_empty() {
                sub.next_revision = sub.next_revision.max(last.revision() + 1);
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
    pub(super) fn arm_resume(&self, id: u64) {
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

    /// The consumer of a paused watch has room again: hand it what was stashed, then
    /// create the watch again from its next revision (or wait for more room).
    pub(super) async fn resume(&mut self, id: u64) {
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

/// Puts stashed responses into a paused watch's channel; true when all went.
pub(super) fn flush_stash(sub: &mut Sub) -> bool {
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
