//! Watches, resumed across reconnects.
//!
//! The watches of a client share one stream (see [`hub`]): when its connection breaks, its
//! member freezes or loses its leader, the stream reconnects (same or next endpoint, with
//! backoff) and each watch resumes from the revision after the last one it delivered
//! whole, so no event is lost or repeated. When that revision has been compacted, the
//! watch yields [`Error::Compacted`] and ends, or, built with
//! [`Watch::resync_on_compaction`], lists the range and yields the difference
//! ([`resync`]).

pub(crate) mod event;
pub(crate) mod hub;
mod resync;
mod set;
mod stream;

pub(crate) use event::progress_is_ordered;
pub use event::{EventKind, WatchEvent, WatchResponse};
pub use set::{WatchHandle, WatchRangeId};
pub use stream::WatchStream;

use crate::client::Client;
use crate::error::Result;
use crate::key::{key_range_setters, IntoBytes, KeyRange};
use crate::request::{check_key, into_future};
use bytes::Bytes;
use etcd_wire::watch::{FilterType, WatchCreateRequest};

/// A watch builder: `client.watch(key)`, options, then `.await` for a [`WatchStream`].
#[derive(Debug, Clone)]
#[must_use = "a watch does nothing until awaited"]
pub struct Watch<'a> {
    client: &'a Client,
    key: Bytes,
    range: KeyRange,
    create: WatchCreateRequest,
    resync: bool,
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

    /// Heals the watch after a compaction instead of ending it with
    /// [`Error::Compacted`](crate::Error::Compacted): when the revision it must resume
    /// from has been compacted away (a long disconnection, a consumer that fell behind),
    /// it lists the range at the current revision, compares the listing with what it has
    /// delivered, yields the differences as synthetic puts and deletes
    /// ([`WatchResponse::is_resync`]), and goes on watching after the listing's revision.
    /// A consumer that applies every event keeps an exact copy of the range.
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// use futures_util::StreamExt;
    /// use std::collections::BTreeMap;
    /// // The copy starts from a listing; the watch starts right after it.
    /// let listing = client.range("jobs/").prefix().await?;
    /// let mut jobs: BTreeMap<Vec<u8>, Vec<u8>> =
    ///     listing.kvs().iter().map(|kv| (kv.key().to_vec(), kv.value().to_vec())).collect();
    /// let mut watch = client
    ///     .watch("jobs/")
    ///     .prefix()
    ///     .start_revision(listing.revision() + 1)
    ///     .resync_on_compaction()
    ///     .await?;
    /// while let Some(response) = watch.next().await {
    ///     let response = response?;
    ///     if response.is_resync() {
    ///         println!("resynced at revision {}", response.revision());
    ///     }
    ///     for event in response.events() {
    ///         if event.is_put() {
    ///             jobs.insert(event.key().to_vec(), event.kv().value().to_vec());
    ///         } else {
    ///             jobs.remove(event.key());
    ///         }
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// What the copy starts from: the range at the revision before the watch's first one.
    /// The watch reads the keys (without values) there when it is created, so give it the
    /// revision after the listing the consumer started from (without a start revision, it
    /// lists the current keys and starts after them). A start revision that is compacted
    /// already fails the `await` with `Compacted`: the watch cannot know what the consumer
    /// holds.
    ///
    /// What it costs: memory for each key of the range (its bytes, its mod revision and
    /// about 40 bytes of map), bounded by the range, not by the number of events; a
    /// keys-only listing when created; after a compaction, a listing with values page by
    /// page ([`Client::scan`]), one resync response per page of differences. `no_put()` and
    /// `no_delete()` are applied by the client (etcd sends every event, which the watch
    /// needs to know the keys). Transient failures of the listing are retried with backoff;
    /// others end the watch with the error.
    ///
    /// Only for a [`WatchStream`]: [`on_event`](Self::on_event) and
    /// [`Client::watch_ranges`] refuse it.
    pub fn resync_on_compaction(mut self) -> Self {
        self.resync = true;
        self
    }

    /// Creates the watch and waits until etcd has confirmed it: changes made after this
    /// returns are seen. Fails with a timeout when etcd has not confirmed it within the
    /// request timeout (a member that hangs, or answers garbage).
    pub async fn send(self) -> Result<WatchStream> {
        if self.resync {
            return resync::open(self).await;
        }
        let create = self.wire_request()?;
        self.client.open_watch(create).await
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
            resync: false,
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
            if range.resync {
                return Err(crate::Error::invalid(
                    "resync_on_compaction() is for a watch read as a WatchStream (`.await`), \
                     not for on_event or watch_ranges",
                ));
            }
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
