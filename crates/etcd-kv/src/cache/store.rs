//! The cache's storage: compact keys and entries in a B-tree, the state readers see under
//! one lock, and what the API and the task share.

use super::{CacheSnapshot, CacheUpdate, ENTRY_OVERHEAD};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::types::KeyValue;
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use tokio::sync::{broadcast, watch, Notify};

/// Keys up to this long are kept inside the B-tree's nodes.
const INLINE_KEY: usize = 22;

/// A key of the map: short keys inline, so that a lookup compares keys inside the tree's
/// nodes instead of chasing a pointer per comparison (a cache miss each, in a large map).
#[derive(Clone)]
pub(super) enum MapKey {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

impl MapKey {
    pub(super) fn new(key: &[u8]) -> MapKey {
        if key.len() <= INLINE_KEY {
            let mut bytes = [0; INLINE_KEY];
            bytes[..key.len()].copy_from_slice(key);
            MapKey::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            MapKey::Heap(key.into())
        }
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        match self {
            MapKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            MapKey::Heap(b) => b,
        }
    }
}

impl std::borrow::Borrow<[u8]> for MapKey {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for MapKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for MapKey {}

impl std::hash::Hash for MapKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl PartialOrd for MapKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MapKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

/// One cached key-value: key and value in one allocation, and the metadata.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    buf: Bytes,
    key_len: u32,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    lease: i64,
}

impl Entry {
    pub(super) fn key(&self) -> &[u8] {
        &self.buf[..self.key_len as usize]
    }

    pub(super) fn value(&self) -> &[u8] {
        &self.buf[self.key_len as usize..]
    }

    pub(super) fn kv(&self) -> KeyValue {
        let k = self.key_len as usize;
        KeyValue {
            key: self.buf.slice(..k),
            value: self.buf.slice(k..),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            lease: self.lease,
        }
    }

    pub(super) fn size(&self) -> usize {
        entry_size(self.key(), self.value())
    }
}

pub(super) fn entry_size(key: &[u8], value: &[u8]) -> usize {
    let heap_key = if key.len() > INLINE_KEY { key.len() } else { 0 };
    key.len() + value.len() + heap_key + ENTRY_OVERHEAD
}

/// Copies a key-value out of its answer's shared buffer into one allocation of its own.
pub(super) fn compact(kv: &KeyValue) -> (MapKey, Entry) {
    let mut buf = Vec::with_capacity(kv.key.len() + kv.value.len());
    buf.extend_from_slice(&kv.key);
    buf.extend_from_slice(&kv.value);
    let entry = Entry {
        buf: Bytes::from(buf),
        key_len: kv.key.len() as u32,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    };
    (MapKey::new(&kv.key), entry)
}

/// The cached key-values: a hash map for lookups (a B-tree lookup compares a dozen keys
/// or more), and the keys in order for ranges and iteration.
#[derive(Default)]
pub(super) struct Store {
    entries: HashMap<MapKey, Entry>,
    order: BTreeSet<MapKey>,
}

impl Store {
    /// From entries sorted by key (a list's pages): the B-tree's nodes come out full.
    pub(super) fn from_sorted(sorted: Vec<(MapKey, Entry)>) -> Store {
        let mut entries = HashMap::with_capacity(sorted.len());
        let order = sorted
            .into_iter()
            .map(|(k, e)| {
                entries.insert(k.clone(), e);
                k
            })
            .collect();
        Store { entries, order }
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub(super) fn contains_key(&self, key: &[u8]) -> bool {
        self.entries.contains_key(key)
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn insert(&mut self, key: MapKey, entry: Entry) -> Option<Entry> {
        match self.entries.get_mut(key.as_slice()) {
            Some(slot) => Some(std::mem::replace(slot, entry)),
            None => {
                self.order.insert(key.clone());
                self.entries.insert(key, entry);
                None
            }
        }
    }

    pub(super) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let old = self.entries.remove(key)?;
        self.order.remove(key);
        Some(old)
    }

    /// The entries in key order.
    pub(super) fn values(&self) -> impl DoubleEndedIterator<Item = &Entry> + '_ {
        self.order.iter().filter_map(|k| self.entries.get(k))
    }

    /// The entries in `range`, in key order.
    pub(super) fn range<'s>(
        &'s self,
        range: (Bound<&[u8]>, Bound<&[u8]>),
    ) -> impl DoubleEndedIterator<Item = &'s Entry> + 's {
        self.order
            .range::<[u8], _>(range)
            .filter_map(|k| self.entries.get(k))
    }
}

/// What readers see, under one lock: the content at exactly one revision.
pub(super) struct State {
    pub(super) map: Store,
    /// The revision whose keyspace `map` is (0 before the first list).
    pub(super) revision: i64,
    pub(super) bytes: usize,
    /// Why the cache stopped; every read returns it.
    pub(super) error: Option<Error>,
    /// How many times the prefix was listed (1 after the first list).
    pub(super) lists: u64,
    /// Updates for subscribers; `None` once the cache is gone.
    pub(super) updates: Option<broadcast::Sender<CacheUpdate>>,
}

impl State {
    pub(super) fn check(&self) -> Result<()> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None if self.revision == 0 => Err(Error::Protocol("the cache is not loaded".into())),
            None => Ok(()),
        }
    }

    pub(super) fn snapshot(&self) -> CacheSnapshot {
        CacheSnapshot {
            revision: self.revision,
            kvs: self.map.values().map(Entry::kv).collect(),
        }
    }
}

pub(super) struct Shared {
    pub(super) state: RwLock<State>,
    /// The applied revision, announced after each revision (and on a stop).
    pub(super) applied: watch::Sender<i64>,
    /// `(c, r)`: a probe found the content at revision `r` to be the cache's at `c`; valid
    /// while the cache is still at `c`.
    pub(super) verified: std::sync::Mutex<(i64, i64)>,
    /// Readers waiting for the cache ask its task for a progress notification.
    pub(super) progress_wanted: Notify,
    /// A read waited `PROGRESS_PATIENCE` in vain for a progress notification (etcd dropped
    /// its requests): reads probe at once (still asking for progress) until one arrives.
    pub(super) progress_unanswered: AtomicBool,
    /// How many probes reads made (see [`Cache::probes`]).
    pub(super) probes_made: AtomicU64,
    /// The watch offers no progress requests (per-call stream mode).
    pub(super) per_call: AtomicBool,
    /// The server sends progress notifications in order with events (etcd ≥ 3.4.25,
    /// ≥ 3.5.8): they may advance the cache's revision.
    pub(super) ordered_progress: bool,
    pub(super) client: Client,
    pub(super) prefix: Bytes,
    pub(super) end: Bytes,
    pub(super) max_bytes: Option<usize>,
    pub(super) page_size: i64,
    pub(super) read_timeout: Duration,
}

/// What stopped when the cache's task is gone ([`Error::Stopped`]).
pub(super) const TASK: &str = "the cache's task";

pub(super) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// The newest revision whose content the cache is known to hold: its own, or a later
    /// one a probe found unchanged since.
    pub(super) fn known_revision(&self, state: &State) -> i64 {
        let (at, upto) = *lock(&self.verified);
        if at == state.revision {
            upto.max(state.revision)
        } else {
            state.revision
        }
    }

    /// Reads that wait for a revision probe etcd instead of asking for progress.
    pub(super) fn probes(&self) -> bool {
        self.per_call.load(Ordering::Relaxed) || !self.ordered_progress
    }

    pub(super) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the cache with `error`: readers and waiters see it.
    pub(super) fn stop(&self, error: Error) {
        tracing::debug!(error = %error, "cache stopped");
        let mut state = self.write();
        if state.error.is_none() {
            state.error = Some(error);
        }
        state.updates = None;
        drop(state);
        self.applied.send_modify(|_| {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn map_keys_order_as_their_bytes_inline_or_not() {
        let keys: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            b"a\0".to_vec(),
            vec![b'a'; 22],
            vec![b'a'; 23],
            vec![b'a'; 40],
            b"b".to_vec(),
            vec![0xff; 22],
            vec![0xff; 23],
        ];
        for a in &keys {
            for b in &keys {
                let (ka, kb) = (MapKey::new(a), MapKey::new(b));
                assert_eq!(ka.cmp(&kb), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(ka.as_slice(), &a[..]);
            }
        }
        assert!(std::mem::size_of::<MapKey>() <= 24);
    }
}
