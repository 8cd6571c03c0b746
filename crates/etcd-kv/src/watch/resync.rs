//! A watch that heals after a compaction ([`Watch::resync_on_compaction`]): a task between
//! the hub's watch and the consumer remembers the mod revision of each key the consumer
//! holds ([`Known`]); when the watch's resume revision has been compacted, it lists the
//! range, yields the difference as synthetic events, and watches again after the listing.

use super::event::{EventKind, WatchEvent, WatchResponse};
use super::hub::SubHandle;
use super::stream::{Handle, WatchStream};
use super::Watch;
use crate::client::Client;
use crate::config::RECONNECT_BACKOFF;
use crate::error::{Error, Result};
use crate::scan::Scan;
use crate::types::KeyValue;
use bytes::Bytes;
use etcd_wire::watch::{FilterType, WatchCreateRequest};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Responses queued between the task and the consumer (the hub's channel holds more, and
/// pauses the watch on the server when it is full).
const QUEUE: usize = 16;

type Events = mpsc::Receiver<Result<WatchResponse>>;

/// Opens a resyncing watch: reads the keys the consumer starts from, opens the watch on the
/// hub after them, and starts the task between the two.
pub(super) async fn open(watch: Watch<'_>) -> Result<WatchStream> {
    let mut create = watch.wire_request()?;
    let filters = Filters::take(&mut create.filters);
    let client = watch.client.clone();
    let scan = client.scan(watch.key.clone()).over(watch.range.clone());
    let mut known = Known::default();
    let start = match create.start_revision {
        1 => 1,
        given => {
            // The range as the consumer holds it: at the revision before the first one
            // watched, or now.
            let mut pages = scan
                .clone()
                .keys_only()
                .revision((given - 1).max(0))
                .pages();
            while let Some(page) = pages.next().await {
                for kv in page? {
                    known.insert(&kv);
                }
            }
            match (given, pages.revision()) {
                (0, Some(now)) => now + 1,
                (0, None) => return Err(Error::Protocol("a listing without a revision".into())),
                _ => given,
            }
        }
    };
    create.start_revision = start;
    let (events, handle) = client.open_watch(create.clone()).await?.into_parts();
    let Handle::Own(handle) = handle else {
        return Err(Error::Protocol("a watch of a resyncing watch".into()));
    };
    let current = Arc::new(Mutex::new(handle));
    let (out, consumer) = mpsc::channel(QUEUE);
    let task = Resyncing {
        client,
        scan,
        create,
        filters,
        known,
        current: current.clone(),
        out,
    };
    tokio::spawn(task.run(events));
    Ok(WatchStream::new(consumer, Handle::Current(current)))
}

/// `no_put()` and `no_delete()`, applied by the client: etcd must send every event for the
/// task to know the keys.
#[derive(Debug, Clone, Copy, Default)]
struct Filters {
    no_put: bool,
    no_delete: bool,
}

impl Filters {
    /// The filters of a create request, which then asks for every event.
    fn take(filters: &mut Vec<FilterType>) -> Filters {
        let taken = Filters {
            no_put: filters.contains(&FilterType::NoPut),
            no_delete: filters.contains(&FilterType::NoDelete),
        };
        filters.clear();
        taken
    }

    fn keep(self, event: &WatchEvent) -> bool {
        match event.kind() {
            EventKind::Put => !self.no_put,
            _ => !self.no_delete,
        }
    }
}

/// The keys the consumer holds, each with its mod revision, in key order (as etcd lists
/// them). Keys are copied out of the answers: a key must not keep a whole message alive.
#[derive(Debug, Default)]
struct Known {
    keys: BTreeMap<Bytes, i64>,
}

impl Known {
    fn insert(&mut self, kv: &KeyValue) {
        self.keys
            .insert(Bytes::copy_from_slice(kv.key()), kv.mod_revision());
    }

    /// Follows the events the consumer is given.
    fn apply(&mut self, response: &WatchResponse) {
        for event in response.events() {
            match event.kind() {
                EventKind::Put => self.insert(event.kv()),
                _ => {
                    self.keys.remove(event.key());
                }
            }
        }
    }

    /// The events that turn the known keys in `(after, upto)` into `page` (key-values of
    /// that span in key order, listed at `revision`), in key order; the known keys follow.
    fn diff(
        &mut self,
        after: &Bound<Bytes>,
        upto: &Bound<Bytes>,
        page: Vec<KeyValue>,
        revision: i64,
    ) -> Vec<WatchEvent> {
        let inverted = match (after, upto) {
            (Bound::Excluded(a) | Bound::Included(a), Bound::Excluded(b) | Bound::Included(b)) => {
                a > b
                    || (a == b
                        && (matches!(after, Bound::Excluded(_))
                            || matches!(upto, Bound::Excluded(_))))
            }
            _ => false,
        };
        let gone: Vec<Bytes> = if inverted {
            Vec::new()
        } else {
            self.keys
                .range::<Bytes, _>((after.clone(), upto.clone()))
                .filter(|(key, _)| {
                    page.binary_search_by(|kv| kv.key().cmp(key.as_ref()))
                        .is_err()
                })
                .map(|(key, _)| key.clone())
                .collect()
        };
        let mut events = Vec::new();
        for key in gone {
            self.keys.remove(&key);
            events.push(WatchEvent {
                kind: EventKind::Delete,
                kv: KeyValue::deleted(key, revision),
                prev_kv: None,
            });
        }
        for kv in page {
            if self.keys.get(kv.key()) != Some(&kv.mod_revision()) {
                self.insert(&kv);
                events.push(WatchEvent {
                    kind: EventKind::Put,
                    kv,
                    prev_kv: None,
                });
            }
        }
        events.sort_by(|a, b| a.key().cmp(b.key()));
        events
    }
}

/// The task of a resyncing watch.
struct Resyncing {
    client: Client,
    /// The range, read page by page.
    scan: Scan,
    /// The watch's create request (wire keys, no filters).
    create: WatchCreateRequest,
    filters: Filters,
    known: Known,
    /// The hub's watch read now, shared with the consumer's [`WatchStream`].
    current: Arc<Mutex<SubHandle>>,
    out: mpsc::Sender<Result<WatchResponse>>,
}

impl Resyncing {
    async fn run(mut self, mut events: Events) {
        loop {
            let item = tokio::select! {
                () = self.out.closed() => return,
                item = events.recv() => item,
            };
            match item {
                None => return,
                Some(Ok(response)) => {
                    self.known.apply(&response);
                    if !self.deliver(response).await {
                        return;
                    }
                }
                Some(Err(Error::Compacted { compact_revision })) => {
                    tracing::info!(
                        compact_revision,
                        "watch resumes past a compaction: resyncing"
                    );
                    match self.heal().await {
                        Some(next) => events = next,
                        None => return,
                    }
                }
                Some(Err(e)) => {
                    let _ = self.out.send(Err(e)).await;
                    return;
                }
            }
        }
    }

    /// Gives the consumer a response with the events it asked for; false once it is gone.
    async fn deliver(&self, mut response: WatchResponse) -> bool {
        let progress = response.events().is_empty();
        let filters = self.filters;
        response.retain(|e| filters.keep(e));
        if !progress && response.events().is_empty() {
            return true;
        }
        self.out.send(Ok(response)).await.is_ok()
    }

    /// Lists the range, yields the difference, and watches again after the listing:
    /// the new watch's events, or `None` once the watch has ended (an error yielded, or
    /// the consumer gone).
    async fn heal(&mut self) -> Option<Events> {
        let mut failures = 0;
        loop {
            let result = match self.resync().await {
                Ok(revision) => self.reopen(revision).await,
                Err(e) => Err(e),
            };
            if self.out.is_closed() {
                return None;
            }
            match result {
                Ok(events) => return Some(events),
                // Compacted again (past the listing): list again.
                Err(Error::Compacted { .. }) => {}
                Err(e) if e.is_transient() => {
                    failures += 1;
                    tracing::debug!(error = %e, failures, "watch resync failed: retrying");
                    tokio::select! {
                        () = self.out.closed() => return None,
                        () = tokio::time::sleep(RECONNECT_BACKOFF.delay(failures)) => {}
                    }
                }
                Err(e) => {
                    let _ = self.out.send(Err(e)).await;
                    return None;
                }
            }
        }
    }

    /// Lists the range at the current revision page by page and yields, per page, the
    /// events that make the consumer's keys the listed ones: the listing's revision.
    async fn resync(&mut self) -> Result<i64> {
        let mut pages = self.scan.clone().pages();
        let mut after = Bound::Unbounded;
        while let Some(page) = pages.next().await {
            let page = page?;
            let (Some(revision), Some(last)) = (pages.revision(), page.last()) else {
                continue;
            };
            let upto = Bound::Included(last.key_bytes());
            let events = self.known.diff(&after, &upto, page, revision);
            after = match upto {
                Bound::Included(last) => Bound::Excluded(last),
                other => other,
            };
            self.yield_resync(revision, events).await;
        }
        let revision = pages
            .revision()
            .ok_or_else(|| Error::Protocol("a listing without a revision".into()))?;
        let events = self
            .known
            .diff(&after, &Bound::Unbounded, Vec::new(), revision);
        self.yield_resync(revision, events).await;
        Ok(revision)
    }

    async fn yield_resync(&self, revision: i64, events: Vec<WatchEvent>) {
        if !events.is_empty() {
            self.deliver(WatchResponse::resync(revision, events)).await;
        }
    }

    /// Opens the watch after `revision` and makes it the one the consumer's handle names.
    async fn reopen(&self, revision: i64) -> Result<Events> {
        let create = WatchCreateRequest {
            start_revision: revision + 1,
            ..self.create.clone()
        };
        let (events, handle) = self.client.open_watch(create).await?.into_parts();
        if let Handle::Own(handle) = handle {
            *self.current.lock().unwrap_or_else(|e| e.into_inner()) = handle;
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, revision: i64) -> KeyValue {
        KeyValue {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::from_static(b"v"),
            mod_revision: revision,
            ..KeyValue::default()
        }
    }

    fn known(keys: &[(&str, i64)]) -> Known {
        let mut known = Known::default();
        for (key, revision) in keys {
            known.insert(&kv(key, *revision));
        }
        known
    }

    fn shown(events: &[WatchEvent]) -> Vec<String> {
        events.iter().map(|e| format!("{e:#}")).collect()
    }

    #[test]
    fn a_page_yields_changed_and_new_keys_as_puts_and_missing_ones_as_deletes() {
        let mut known = known(&[("a", 2), ("b", 3), ("c", 4), ("e", 5)]);
        let page = vec![kv("a", 2), kv("c", 9), kv("d", 8)];
        let events = known.diff(
            &Bound::Unbounded,
            &Bound::Included(Bytes::from_static(b"d")),
            page,
            10,
        );
        assert_eq!(
            shown(&events),
            [
                "DELETE b (rev 10)",
                "PUT c = v (rev 9)",
                "PUT d = v (rev 8)"
            ]
        );
        // "e" is past the page: the next page (or the end) decides.
        let rest = known.diff(
            &Bound::Excluded(Bytes::from_static(b"d")),
            &Bound::Unbounded,
            Vec::new(),
            10,
        );
        assert_eq!(shown(&rest), ["DELETE e (rev 10)"]);
        let left: Vec<_> = known.keys.into_iter().collect();
        assert_eq!(
            left,
            [
                (Bytes::from_static(b"a"), 2),
                (Bytes::from_static(b"c"), 9),
                (Bytes::from_static(b"d"), 8)
            ]
        );
    }

    #[test]
    fn an_unchanged_range_yields_nothing() {
        let mut known = known(&[("a", 2), ("b", 3)]);
        let events = known.diff(
            &Bound::Unbounded,
            &Bound::Unbounded,
            vec![kv("a", 2), kv("b", 3)],
            7,
        );
        assert!(events.is_empty());
    }

    #[test]
    fn pages_out_of_order_change_nothing_they_do_not_list_and_do_not_panic() {
        let mut known = known(&[("a", 2), ("m", 3)]);
        let events = known.diff(
            &Bound::Excluded(Bytes::from_static(b"x")),
            &Bound::Included(Bytes::from_static(b"b")),
            vec![kv("b", 4)],
            7,
        );
        assert_eq!(shown(&events), ["PUT b = v (rev 4)"]);
        assert_eq!(known.keys.len(), 3);
    }

    #[test]
    fn live_events_keep_the_known_keys() {
        let mut known = known(&[("a", 2)]);
        let put = WatchEvent {
            kind: EventKind::Put,
            kv: kv("b", 5),
            prev_kv: None,
        };
        let delete = WatchEvent {
            kind: EventKind::Delete,
            kv: KeyValue::deleted(Bytes::from_static(b"a"), 5),
            prev_kv: None,
        };
        known.apply(&WatchResponse::from_events(5, vec![put, delete]));
        let left: Vec<_> = known.keys.into_iter().collect();
        assert_eq!(left, [(Bytes::from_static(b"b"), 5)]);
    }

    #[test]
    fn filters_are_taken_from_the_request() {
        let mut filters = vec![FilterType::NoDelete];
        let taken = Filters::take(&mut filters);
        assert!(filters.is_empty());
        let delete = WatchEvent {
            kind: EventKind::Delete,
            kv: KeyValue::deleted(Bytes::from_static(b"a"), 5),
            prev_kv: None,
        };
        assert!(!taken.keep(&delete));
        let put = WatchEvent {
            kind: EventKind::Put,
            kv: kv("a", 5),
            prev_kv: None,
        };
        assert!(taken.keep(&put));
    }
}
