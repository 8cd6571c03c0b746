//! Snapshots and subscriptions: the cache's content at one revision, and the stream of
//! every revision applied after it.

use super::store::Shared;
use super::Cache;
use crate::error::{Error, Result};
use crate::types::KeyValue;
use crate::watch::WatchResponse;
use futures_core::Stream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::broadcast;

impl Cache {
    /// The stream of every revision the cache applies from now on (see
    /// [`CacheSubscription`]).
    pub fn subscribe(&self) -> Result<CacheSubscription> {
        let state = self.shared.read();
        state.check()?;
        let Some(updates) = &state.updates else {
            return Err(Error::stopped(super::store::TASK));
        };
        Ok(CacheSubscription::new(
            self.shared.clone(),
            updates.subscribe(),
            state.revision,
        ))
    }

    /// The content now and the stream of every revision applied after it, taken together
    /// so that nothing falls between them.
    pub fn snapshot_and_subscribe(&self) -> Result<(CacheSnapshot, CacheSubscription)> {
        let state = self.shared.read();
        state.check()?;
        let Some(updates) = &state.updates else {
            return Err(Error::stopped(super::store::TASK));
        };
        let subscription =
            CacheSubscription::new(self.shared.clone(), updates.subscribe(), state.revision);
        Ok((state.snapshot(), subscription))
    }
}

/// The cache's content at one revision, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSnapshot {
    pub(super) revision: i64,
    pub(super) kvs: Vec<KeyValue>,
}

impl CacheSnapshot {
    /// The revision whose keyspace this is.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The key-values, in key order.
    pub fn kvs(&self) -> &[KeyValue] {
        &self.kvs
    }

    /// Takes the key-values.
    pub fn into_kvs(self) -> Vec<KeyValue> {
        self.kvs
    }
}

/// What a subscriber of a [`Cache`] receives.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CacheUpdate {
    /// The events of one applied revision, in etcd's order; each event carries the
    /// key-value it replaced or deleted ([`WatchEvent::prev_kv`](crate::WatchEvent::prev_kv)) when there was one.
    Revision(WatchResponse),
    /// The content was replaced whole: the cache listed the prefix again (a compaction
    /// overtook its watch), or this subscriber fell more than 4,096 revisions behind.
    /// The snapshot is the new content; updates go on from its revision.
    Reset(Arc<CacheSnapshot>),
}

impl CacheUpdate {
    /// The revision the content is at after this update.
    pub fn revision(&self) -> i64 {
        match self {
            CacheUpdate::Revision(r) => r.revision(),
            CacheUpdate::Reset(s) => s.revision(),
        }
    }
}

/// A [`Stream`] of the [`CacheUpdate`]s applied after a revision (see
/// [`Cache::subscribe`]), in revision order and with no gap: a subscriber that falls
/// behind gets a [`CacheUpdate::Reset`] with the current content instead of a gap. Ends
/// after the cache's stop error, or when the cache is dropped. Dropping it unsubscribes.
#[must_use = "streams do nothing unless polled"]
pub struct CacheSubscription {
    start: i64,
    inner: Pin<Box<dyn Stream<Item = Result<CacheUpdate>> + Send>>,
}

impl std::fmt::Debug for CacheSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheSubscription")
            .field("start", &self.start)
            .finish()
    }
}

struct SubState {
    shared: Arc<Shared>,
    rx: broadcast::Receiver<CacheUpdate>,
    /// Updates up to this revision are already reflected (after a reset for lag).
    skip_until: i64,
    done: bool,
}

impl CacheSubscription {
    pub(super) fn new(
        shared: Arc<Shared>,
        rx: broadcast::Receiver<CacheUpdate>,
        start: i64,
    ) -> Self {
        let state = SubState {
            shared,
            rx,
            skip_until: start,
            done: false,
        };
        let inner = futures_util::stream::unfold(state, |mut s| async move {
            if s.done {
                return None;
            }
            loop {
                match s.rx.recv().await {
                    Ok(update) => {
                        if update.revision() <= s.skip_until {
                            continue;
                        }
                        s.skip_until = update.revision();
                        return Some((Ok(update), s));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let snapshot = {
                            let state = s.shared.read();
                            match &state.error {
                                Some(e) => Err(e.clone()),
                                None => Ok(state.snapshot()),
                            }
                        };
                        return match snapshot {
                            Ok(snapshot) => {
                                s.skip_until = snapshot.revision;
                                Some((Ok(CacheUpdate::Reset(Arc::new(snapshot))), s))
                            }
                            Err(e) => {
                                s.done = true;
                                Some((Err(e), s))
                            }
                        };
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        s.done = true;
                        let error = s.shared.read().error.clone();
                        return error.map(|e| (Err(e), s));
                    }
                }
            }
        });
        CacheSubscription {
            start,
            inner: Box::pin(inner),
        }
    }

    /// The revision after which updates start (that of the snapshot taken with it).
    pub fn start_revision(&self) -> i64 {
        self.start
    }
}

impl Stream for CacheSubscription {
    type Item = Result<CacheUpdate>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
