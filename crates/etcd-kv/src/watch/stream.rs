//! [`WatchStream`], a watch as a [`Stream`]: the receiving end of one watch on the hub.

use super::event::WatchResponse;
use super::hub::SubHandle;
use crate::client::Client;
use crate::error::Result;
use etcd_wire::watch::WatchCreateRequest;
use futures_core::Stream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// A live watch: a [`Stream`] of [`WatchResponse`]s, one per revision, in revision order.
///
/// It survives connection loss, a frozen member and a member that lost its leader: the
/// watch moves to another endpoint and resumes after the last revision it delivered whole,
/// so no event is lost or repeated. It ends after yielding a terminal error:
/// [`Error::Compacted`](crate::Error::Compacted) when the revision to resume from was compacted
/// (unless built with [`resync_on_compaction`](crate::Watch::resync_on_compaction)), [`Error::Auth`](crate::Error::Auth)
/// when etcd refuses it permission, or the server's reason when etcd cancels it.
///
/// All watches of a client share one connection per endpoint where the server allows it
/// (see [`StreamMode`](crate::StreamMode)). Dropping the stream cancels the watch on the
/// server (a cancel request on the shared connection, or closing its own connection).
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct WatchStream {
    pub(super) events: mpsc::Receiver<Result<WatchResponse>>,
    handle: Handle,
}

/// The watch on the hub a stream reads: its own, or (behind a resyncing watch's task) the
/// one the task reads now, replaced at each resync.
#[derive(Debug)]
pub(super) enum Handle {
    Own(SubHandle),
    Current(Arc<Mutex<SubHandle>>),
}

impl Handle {
    fn with<T>(&self, f: impl FnOnce(&SubHandle) -> T) -> T {
        match self {
            Handle::Own(handle) => f(handle),
            Handle::Current(current) => f(&current.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }
}

impl WatchStream {
    /// Asks etcd for a progress notification on this watch: a [`WatchResponse`] without
    /// events whose revision says that every change up to it has been delivered. Useful to
    /// learn that a quiet watch is up to date (e.g. before a consistent read from a cache).
    ///
    /// A notification is never ahead of an event still to come. Where etcd orders its
    /// answer with the events (3.4.25+, 3.5.8+) it carries the store's revision then;
    /// older servers may send their answer ahead of queued events (etcd issue #15220), so
    /// there the notification carries what this watch has delivered itself (the revision
    /// before its next one), which may be behind the store. etcd 3.5.13+ answers only once
    /// every watch on the stream has caught up, so the notification may come late (at the
    /// latest after the stream's next event).
    ///
    /// Needs the shared (WebSocket) stream: in [`StreamMode::PerCall`](crate::StreamMode)
    /// it fails with [`Error::Unsupported`](crate::Error::Unsupported).
    ///
    /// On a watch that [resyncs](crate::Watch::resync_on_compaction), a request made
    /// while it lists the range after a compaction is not answered.
    pub fn request_progress(&self) -> Result<()> {
        self.handle.with(SubHandle::request_progress)
    }

    /// The endpoint the watch is on now.
    pub fn endpoint(&self) -> String {
        self.handle.with(SubHandle::endpoint)
    }

    /// A stream of `events` whose watch on the hub is `handle`.
    pub(super) fn new(events: mpsc::Receiver<Result<WatchResponse>>, handle: Handle) -> Self {
        WatchStream { events, handle }
    }

    /// The channel of events and the watch on the hub (which is cancelled when dropped).
    pub(super) fn into_parts(self) -> (mpsc::Receiver<Result<WatchResponse>>, Handle) {
        (self.events, self.handle)
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchResponse>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(cx)
    }
}

impl Client {
    /// Creates a watch (keys of `create` in wire form) on the client's hub and waits
    /// until etcd has confirmed it.
    pub(crate) async fn open_watch(&self, create: WatchCreateRequest) -> Result<WatchStream> {
        let (events, handle) = self
            .inner
            .watch_hub
            .create(self.namespace.clone(), create)
            .await?;
        Ok(WatchStream::new(events, Handle::Own(handle)))
    }
}
