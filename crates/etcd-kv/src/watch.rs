//! Watches, resumed across reconnects.
//!
//! The watches of a client share one stream (see [`hub`]): when its connection breaks, its
//! member freezes or loses its leader, the stream reconnects (same or next endpoint, with
//! backoff) and each watch resumes from the revision after the last one it delivered
//! whole, so no event is lost or repeated. When that revision has been compacted, the
//! watch yields [`Error::Compacted`] and ends.

mod hub;
mod set;

pub(crate) use hub::WatchHub;
pub use set::{WatchHandle, WatchRangeId};

use crate::client::Client;
use crate::error::Result;
use crate::key::{key_range_setters, IntoBytes, KeyRange, Namespace};
use crate::request::{check_key, into_future};
use crate::types::KeyValue;
use bytes::Bytes;
use etcd_wire::header::EventType;
use etcd_wire::watch::{FilterType, WatchCreateRequest};
use futures_core::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// The key was written.
    Put,
    /// The key was deleted (or its lease expired).
    Delete,
}

/// Shows `PUT` or `DELETE`, as etcdctl does.
impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EventKind::Put => "PUT",
            EventKind::Delete => "DELETE",
        })
    }
}

/// Shows `PUT config/mode = active` or `DELETE config/mode` (key and value as text, or
/// escaped bytes); `{:#}` adds the revision: `PUT config/mode = active (rev 12)`.
impl std::fmt::Display for WatchEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ", self.kind)?;
        match self.kind {
            EventKind::Put => {
                crate::types::show_bytes(f, self.kv.key())?;
                f.write_str(" = ")?;
                crate::types::show_bytes(f, self.kv.value())?;
            }
            EventKind::Delete => crate::types::show_bytes(f, self.kv.key())?,
        }
        if f.alternate() {
            write!(f, " (rev {})", self.revision())?;
        }
        Ok(())
    }
}

/// One change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub(crate) kind: EventKind,
    pub(crate) kv: KeyValue,
    pub(crate) prev_kv: Option<KeyValue>,
}

impl WatchEvent {
    /// Put or delete.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// True for a put.
    pub fn is_put(&self) -> bool {
        self.kind == EventKind::Put
    }

    /// True for a delete.
    pub fn is_delete(&self) -> bool {
        self.kind == EventKind::Delete
    }

    /// The key-value after the change (for a delete: the key, with the deletion revision as
    /// its mod revision and an empty value).
    pub fn kv(&self) -> &KeyValue {
        &self.kv
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        self.kv.key()
    }

    /// The key-value before the change, when the watch asked for `prev_kv()` and it existed.
    pub fn prev_kv(&self) -> Option<&KeyValue> {
        self.prev_kv.as_ref()
    }

    /// The revision of the change.
    pub fn revision(&self) -> i64 {
        self.kv.mod_revision()
    }
}

/// The events of one revision (one transaction), or a progress notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchResponse {
    revision: i64,
    events: Vec<WatchEvent>,
}

impl WatchResponse {
    /// The revision of the events; for a progress notification, the store revision up to
    /// which every event has been delivered.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The events of this revision, in the order etcd applied them.
    pub fn events(&self) -> &[WatchEvent] {
        &self.events
    }

    /// Takes the events.
    pub fn into_events(self) -> Vec<WatchEvent> {
        self.events
    }

    /// True for a progress notification (no events).
    pub fn is_progress_notify(&self) -> bool {
        self.events.is_empty()
    }
}

/// A watch builder: `client.watch(key)`, options, then `.await` for a [`WatchStream`].
#[derive(Debug, Clone)]
#[must_use = "a watch does nothing until awaited"]
pub struct Watch<'a> {
    client: &'a Client,
    key: Bytes,
    range: KeyRange,
    create: WatchCreateRequest,
}

impl<'a> Watch<'a> {
    key_range_setters!("Watches", range);

    /// Delivers events from this revision on, including past ones still in the history
    /// (default: only changes after the watch is created).
    pub fn start_revision(mut self, revision: i64) -> Self {
        self.create.start_revision = revision;
        self
    }

    /// Includes the previous key-value in each event.
    pub fn prev_kv(mut self) -> Self {
        self.create.prev_kv = true;
        self
    }

    /// Leaves out put events.
    pub fn no_put(mut self) -> Self {
        self.create.filters.push(FilterType::NoPut);
        self
    }

    /// Leaves out delete events.
    pub fn no_delete(mut self) -> Self {
        self.create.filters.push(FilterType::NoDelete);
        self
    }

    /// Asks etcd for periodic progress notifications (about every 10 minutes on an idle
    /// watch), yielded as responses without events.
    pub fn progress_notify(mut self) -> Self {
        self.create.progress_notify = true;
        self
    }

    /// Creates the watch and waits until etcd has confirmed it: changes made after this
    /// returns are seen. Fails with a timeout when etcd has not confirmed it within the
    /// request timeout (a member that hangs, or answers garbage).
    pub async fn send(self) -> Result<WatchStream> {
        let create = self.wire_request()?;
        hub::create(self.client, create).await
    }

    /// The create request, keys in wire (namespaced) form.
    fn wire_request(&self) -> Result<WatchCreateRequest> {
        check_key(&self.key, &self.range)?;
        let (key, range_end) = self.client.namespace.range(&self.key, &self.range);
        Ok(WatchCreateRequest {
            key,
            range_end,
            ..self.create.clone()
        })
    }

    /// Calls `callback` with each event of this watch on a task of its own, and returns
    /// once etcd has created the watch (changes made after that are seen). The returned
    /// [`WatchHandle`] stops the watch when dropped or [cancelled](WatchHandle::cancel),
    /// and takes more key ranges while it runs ([`WatchHandle::add`]). txaioetcd's
    /// `etcd.watch([KeySet(..)], on_change)`:
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// let watching = client.watch("mykey").prefix().on_event(|e| println!("{e}")).await?;
    /// tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    /// watching.cancel();
    /// # Ok(()) }
    /// ```
    ///
    /// Events start after the store's current revision, or at
    /// [`Watch::start_revision`]. The handle ends with an error (see
    /// [`WatchHandle::ended`]) when the watch does (a compaction, a permission refused);
    /// connection losses are survived as by a [`WatchStream`].
    #[doc(alias = "for_each")]
    pub async fn on_event<F>(self, callback: F) -> Result<WatchHandle>
    where
        F: FnMut(WatchEvent) + Send + 'static,
    {
        let client = self.client;
        client.watch_ranges([self], callback).await
    }
}

into_future!(Watch, WatchStream);

/// A live watch: a [`Stream`] of [`WatchResponse`]s, one per revision, in revision order.
///
/// It survives connection loss, a frozen member and a member that lost its leader: the
/// watch moves to another endpoint and resumes after the last revision it delivered whole,
/// so no event is lost or repeated. It ends after yielding a terminal error:
/// [`Error::Compacted`](crate::Error::Compacted) when the revision to resume from was compacted, [`Error::Auth`](crate::Error::Auth)
/// when etcd refuses it permission, or the server's reason when etcd cancels it.
///
/// All watches of a client share one connection per endpoint where the server allows it
/// (see [`StreamMode`](crate::StreamMode)). Dropping the stream cancels the watch on the
/// server (a cancel request on the shared connection, or closing its own connection).
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct WatchStream {
    events: mpsc::Receiver<Result<WatchResponse>>,
    handle: hub::SubHandle,
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
    pub fn request_progress(&self) -> Result<()> {
        self.handle.request_progress()
    }

    /// The endpoint the watch is on now.
    pub fn endpoint(&self) -> String {
        self.handle.endpoint()
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchResponse>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(cx)
    }
}

/// Splits a message's events into one response per revision, keeping etcd's order.
pub(crate) fn group_by_revision(
    events: Vec<etcd_wire::header::Event>,
    ns: &Namespace,
) -> Vec<WatchResponse> {
    let mut out: Vec<WatchResponse> = Vec::new();
    for e in events {
        let event = WatchEvent {
            kind: match e.r#type {
                EventType::Put => EventKind::Put,
                EventType::Delete => EventKind::Delete,
                // `EventType` is `#[non_exhaustive]`, but etcd-wire decodes no value it does
                // not name: only a variant added there without a mapping here reaches this.
                other => {
                    tracing::warn!(?other, "watch event of an unknown type skipped");
                    continue;
                }
            },
            kv: KeyValue::from_wire(e.kv, |k| ns.strip(k)),
            prev_kv: e.prev_kv.map(|kv| KeyValue::from_wire(kv, |k| ns.strip(k))),
        };
        let revision = event.revision();
        match out.last_mut() {
            Some(last) if last.revision == revision => last.events.push(event),
            _ => out.push(WatchResponse {
                revision,
                events: vec![event],
            }),
        }
    }
    out
}

impl WatchResponse {
    /// The events of one revision.
    pub(crate) fn from_events(revision: i64, events: Vec<WatchEvent>) -> WatchResponse {
        WatchResponse { revision, events }
    }

    /// A progress notification at `revision`.
    pub(crate) fn progress(revision: i64) -> WatchResponse {
        WatchResponse {
            revision,
            events: Vec::new(),
        }
    }
}

impl Client {
    /// A watch on `key`; `.prefix()`, `.end()`, `.from_key()` widen it.
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// use futures_util::StreamExt;
    /// let mut watch = client.watch("jobs/").prefix().prev_kv().await?;
    /// while let Some(response) = watch.next().await {
    ///     for event in response?.events() {
    ///         println!("{:?} {:?}", event.kind(), event.kv().key_str());
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn watch(&self, key: impl IntoBytes) -> Watch<'_> {
        Watch {
            client: self,
            key: key.into_bytes(),
            range: KeyRange::Single,
            create: WatchCreateRequest::default(),
        }
    }
}

impl Client {
    /// Calls `callback` with each event of several key ranges, one watch for all
    /// (txaioetcd's `etcd.watch([KeySet(a), KeySet(b, prefix=True)], on_change)`), and
    /// returns once etcd has created every range's watch. Ranges are added and removed
    /// while it runs with [`WatchHandle::add`] and [`WatchHandle::remove`]; an event of a
    /// key that several ranges cover is delivered once. Every range starts at the same
    /// revision: the one after the store's current revision, or the
    /// [`Watch::start_revision`] they all give (different ones are refused with
    /// [`Error::InvalidInput`](crate::Error::InvalidInput)).
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// let watching = client
    ///     .watch_ranges([client.watch("config"), client.watch("jobs/").prefix()], |e| {
    ///         println!("{e}") // PUT jobs/7 = queued
    ///     })
    ///     .await?;
    /// let alerts = watching.add(client.watch("alerts/").prefix()).await?;
    /// // ...
    /// watching.remove(alerts).await;
    /// # Ok(()) }
    /// ```
    pub async fn watch_ranges<'a, F>(
        &self,
        ranges: impl IntoIterator<Item = Watch<'a>>,
        callback: F,
    ) -> Result<WatchHandle>
    where
        F: FnMut(WatchEvent) + Send + 'static,
    {
        let ranges: Vec<Watch<'a>> = ranges.into_iter().collect();
        let mut start = 0;
        let mut requests = Vec::with_capacity(ranges.len());
        for range in &ranges {
            let given = range.create.start_revision;
            if given != 0 && start != 0 && given != start {
                return Err(crate::Error::invalid(
                    "the ranges of one watch start at one revision: give them all the same \
                     start_revision, or none",
                ));
            }
            start = start.max(given);
            requests.push((range.client.clone(), range.wire_request()?));
        }
        if requests.iter().any(|(_, r)| r.start_revision != start) {
            return Err(crate::Error::invalid(
                "the ranges of one watch start at one revision: give them all the same \
                 start_revision, or none",
            ));
        }
        let from = if start == 0 {
            set::StartAt::Now
        } else {
            set::StartAt::Given
        };
        if start == 0 {
            // "Now": the revision after the store's current one, read linearizably
            // through the first range's key (one the caller may read).
            let key = match ranges.first() {
                Some(range) if !range.key.is_empty() => range.key.clone(),
                _ => Bytes::from_static(b"\0"),
            };
            let client = ranges.first().map_or(self, |r| r.client);
            start = client.range(key).count_only().await?.revision() + 1;
        }
        set::start(requests, start, from, callback).await
    }
}

/// Whether a server of `version` orders progress notifications with events (etcd
/// issue #15220, fixed in 3.4.25 and 3.5.8).
pub(crate) fn progress_is_ordered(version: &str) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    match (major, minor) {
        (3, 4) => patch >= 25,
        (3, 5) => patch >= 8,
        (3, m) => m >= 6,
        (m, _) => m > 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcd_wire::header::{Event, KeyValue as WireKv};

    fn ev(key: &str, rev: i64) -> Event {
        Event {
            r#type: EventType::Put,
            kv: WireKv {
                key: Bytes::copy_from_slice(key.as_bytes()),
                mod_revision: rev,
                ..WireKv::default()
            },
            prev_kv: None,
        }
    }

    #[test]
    fn events_print_as_etcdctl_names_them() {
        let put = WatchEvent {
            kind: EventKind::Put,
            kv: KeyValue::from_wire(ev("k", 7).kv, |k| k),
            prev_kv: None,
        };
        assert_eq!(put.to_string(), "PUT k = ");
        assert_eq!(format!("{put:#}"), "PUT k =  (rev 7)");
        let mut wire = ev("\u{e9}", 8).kv;
        wire.key = Bytes::from_static(b"\xff");
        let delete = WatchEvent {
            kind: EventKind::Delete,
            kv: KeyValue::from_wire(wire, |k| k),
            prev_kv: None,
        };
        assert_eq!(delete.to_string(), "DELETE b\"\\xff\"");
    }

    #[test]
    fn groups_events_of_one_revision() {
        let ns = Namespace(Bytes::from_static(b"ns/"));
        let groups = group_by_revision(vec![ev("ns/a", 5), ev("ns/b", 5), ev("ns/c", 6)], &ns);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].revision(), 5);
        assert_eq!(groups[0].events().len(), 2);
        assert_eq!(groups[0].events()[1].key(), b"b");
        assert_eq!(groups[1].revision(), 6);
    }
}
