//! A consistent local cache of a key prefix: reads at memory speed, never stale beyond a
//! revision you choose.
//!
//! ```no_run
//! # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
//! // Lists "config/" page by page at one revision, then follows its watch.
//! let cache = client.cache("config/").await?;
//!
//! // Memory speed: the cache's content at its current revision.
//! let mode = cache.get("config/mode")?;
//! println!("at revision {}: {:?}", mode.revision(), mode.as_ref().map(|kv| kv.value()));
//!
//! // Read your own write: wait until the cache has applied the put's revision.
//! let put = client.put("config/mode", "draining").await?;
//! let mode = cache.get_at_least("config/mode", put.revision()).await?;
//! assert_eq!(mode.as_ref().map(|kv| kv.value()), Some(&b"draining"[..]));
//!
//! // Linearizable: sees every write acknowledged before the call.
//! let keys = cache.consistent_read(|view| view.len()).await?;
//! println!("{} keys at revision {}", *keys, keys.revision());
//! # Ok(()) }
//! ```
//!
//! # How it works
//!
//! [`Client::cache`] lists the prefix page by page at one revision `R` (the [`Pager`](crate::Pager)), then
//! watches it from `R + 1` and applies each revision's events whole, under a write lock:
//! a reader holds the read lock and sees the keyspace at exactly one revision, never a mix
//! of two. Reconnects, frozen members and lost leaders are the watch's business (it
//! resumes from the first revision the cache has not applied). When that revision has been
//! compacted meanwhile, the cache lists the prefix again at a new revision into a fresh map
//! and swaps it in whole; subscribers get a [`CacheUpdate::Reset`].
//!
//! # Consistency
//!
//! | Read | Guarantee | Cost |
//! |---|---|---|
//! | [`Cache::get`], [`Cache::range`], [`Cache::prefix`], [`Cache::list`], [`Cache::len`], [`Cache::read`] | the prefix's keyspace at exactly one revision, returned with the answer; behind the cluster by the watch's delivery time (about a millisecond on a LAN), more while the watch is moving to another member | a read lock and a hash lookup (about 120 ns), no I/O, no await |
//! | [`Cache::get_at_least`], [`Cache::read_at_least`] | like the above, at a revision ≥ `N`: read your own writes (`N` = your put's revision) | none once the cache is there (the usual case after a millisecond); else it waits, asking etcd as below when the prefix is quiet |
//! | [`Cache::consistent_get`], [`Cache::consistent_read`] | linearizable: sees every write acknowledged (to anyone) before the call began, as a quorum read would | a count-only read of one key (one round trip, no values) for the cluster's revision; nothing more when the cache is there; else a wait for the watch, with a progress request where progress is reliable (\*), or else one range of the prefix sorted by mod revision, limit 1, keys only (etcd reads the whole prefix to answer it: its cost grows with the prefix) |
//!
//! (\*) Progress requests need the shared (WebSocket) watch stream and a server that
//! orders their answers with the events of the stream: etcd 3.4.25+, 3.5.8+, 3.6+.
//! Older servers (etcd issue #15220) may answer a progress request ahead of events still
//! queued, which would let a read believe the cache is current when it is not, and
//! **the per-call stream mode** (the gateway refused the WebSocket, e.g. with auth on) has
//! no progress requests at all. In both cases the cache never asks for progress: a read at a
//! revision the cache has not reached (at once for a prefix of up to 1,000 keys, after 10 ms
//! for a larger one: the watch usually brings a write within a millisecond of its
//! acknowledgement, and etcd reads the whole prefix to answer) asks etcd for the prefix's key count and newest mod
//! revision in one range. When no key of the prefix changed after the cache's revision `c`
//! and the count is the cache's, the content at the cluster's revision *is* the cache's, and
//! the read is served from it, labelled with the cluster's revision; otherwise the changes
//! are on their way through the watch and the read waits for them (asking again only when
//! no revision arrives for 50 ms). A probe's finding is remembered while the cache stays at
//! its revision, so reads after writes elsewhere in the keyspace probe once. A read that waits longer than
//! [`CacheBuilder::read_timeout`] fails with a timeout.
//!
//! etcd 3.5.13+ answers a progress request only when every watch on the stream is synced
//! and none waits for a future revision; otherwise it drops the request, never to answer
//! it (another watch of the same client catching up, or created from a revision still to
//! come). A read whose progress requests go unanswered for 200 ms probes as above, and
//! later reads probe at once (still asking for progress) until a progress notification
//! arrives again; [`Cache::probes`] counts the probes.
//!
//! # Memory
//!
//! Keys and values are copied out of the answers' shared buffers into one allocation per
//! key, so that a cached key never keeps a page or a watch message alive.
//! [`Cache::size_bytes`] reports the cache's size (keys, values and per-entry overhead);
//! [`CacheBuilder::max_bytes`] refuses to grow past a limit: the revision that would cross
//! it is not applied, and the cache stops with [`Error::CacheFull`], which every read then
//! returns. Nothing is ever evicted silently.
//!
//! # Drop
//!
//! The cache's task (its list and its watch) stops when the last clone of the [`Cache`] is
//! dropped; its subscriptions then end. The read futures are cancel-safe: dropping one
//! changes nothing but the progress request it may have sent.

use crate::client::Client;
use crate::config::StreamMode;
use crate::error::{Error, Result};
use crate::key::{prefix_end, IntoBytes};
use crate::kv::{SortOrder, SortTarget};
use crate::request::into_future;
use crate::types::KeyValue;
use bytes::Bytes;
use std::ops::{Bound, Deref};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use store::{lock, Entry, Shared, State, Store};
use tokio::sync::{broadcast, watch, Notify};
use tokio::time::Instant;

mod store;
mod subscribe;
mod task;

pub use subscribe::{CacheSnapshot, CacheSubscription, CacheUpdate};

/// Bytes counted per cached key on top of its key and value: its hash-map slot (inline
/// key and entry, 96 bytes) with the table's spare room, its key in the ordered index,
/// the allocation holding key and value, and the shared-buffer header of its handles.
pub const ENTRY_OVERHEAD: usize = 192;

/// Revisions buffered per subscriber before it is resynchronised with a
/// [`CacheUpdate::Reset`].
const SUBSCRIBER_BUFFER: usize = 4096;

/// How often a waiting consistent read asks again for a progress notification (etcd
/// drops a progress request while some of its watchers are catching up).
const PROGRESS_RETRY: Duration = Duration::from_millis(50);

/// How long a read waits for the answer to its progress requests before probing etcd
/// instead: etcd 3.5.13+ drops a progress request, never to answer it, while a watch on the
/// stream is catching up or waits for a future revision. (A served request is answered
/// within about a millisecond, after the events queued before it.)
const PROGRESS_PATIENCE: Duration = Duration::from_millis(200);

/// How long a read waits for the watch before probing etcd (where progress is not asked
/// for) when the prefix is large: events usually arrive within a millisecond of their
/// write's acknowledgement, and etcd reads the whole prefix to answer a probe.
const PROBE_GRACE: Duration = Duration::from_millis(10);

/// Up to this many keys a probe is cheap for etcd: a read probes at once.
const PROBE_AT_ONCE_KEYS: usize = 1000;

/// A value read from a [`Cache`], with the revision of the keyspace it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtRevision<T> {
    value: T,
    revision: i64,
}

impl<T> AtRevision<T> {
    /// `value`, read at `revision` (for layers above that decode what a cache holds).
    pub fn new(value: T, revision: i64) -> Self {
        AtRevision { value, revision }
    }

    /// Transforms the answer, keeping its revision.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> AtRevision<U> {
        AtRevision {
            value: f(self.value),
            revision: self.revision,
        }
    }

    /// The store revision whose keyspace the answer reflects.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The answer.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for AtRevision<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// A consistent local cache of a key prefix: see the [module docs](crate::cache) for how
/// it stays exact, which read gives which guarantee, and its memory.
///
/// `Clone`: clones share one cache. Dropping the last clone stops its watch.
#[derive(Clone)]
pub struct Cache {
    shared: Arc<Shared>,
    _task: Arc<TaskGuard>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.read();
        f.debug_struct("Cache")
            .field("prefix", &self.shared.prefix)
            .field("revision", &state.revision)
            .field("len", &state.map.len())
            .field("bytes", &state.bytes)
            .field("error", &state.error)
            .finish()
    }
}

/// Stops the cache's task when the last [`Cache`] clone goes.
struct TaskGuard {
    task: tokio::task::AbortHandle,
    shared: Arc<Shared>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.task.abort();
        let mut state = self.shared.write();
        state.updates = None;
    }
}

/// A cache builder: `client.cache(prefix)`, options, then `.await` for a loaded [`Cache`].
#[derive(Debug, Clone)]
#[must_use = "a cache does nothing until awaited"]
pub struct CacheBuilder<'a> {
    client: &'a Client,
    prefix: Bytes,
    max_bytes: Option<usize>,
    page_size: i64,
    read_timeout: Duration,
}

impl<'a> CacheBuilder<'a> {
    /// The most bytes the cache may hold ([`Cache::size_bytes`]); a revision that would
    /// take it past this is not applied and the cache stops with [`Error::CacheFull`].
    /// Default: no limit.
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = Some(n);
        self
    }

    /// Keys per page when listing the prefix (default 1,000).
    pub fn page_size(mut self, n: i64) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// How long a consistent read or a read at a revision waits for the cache before
    /// failing with a timeout (default 10 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Lists the prefix and starts following it; returns once the first list is in.
    pub async fn send(self) -> Result<Cache> {
        let end = prefix_end(&self.prefix);
        let ordered_progress = match self.client.server_version().await {
            Ok(version) => crate::watch::progress_is_ordered(&version),
            Err(e) => {
                tracing::debug!(error = %e, "server version unknown: the cache will not rely on progress notifications");
                false
            }
        };
        let (applied, mut applied_rx) = watch::channel(0);
        let (updates, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        let shared = Arc::new(Shared {
            state: RwLock::new(State {
                map: Store::default(),
                revision: 0,
                bytes: 0,
                error: None,
                lists: 0,
                updates: Some(updates),
            }),
            applied,
            progress_wanted: Notify::new(),
            progress_unanswered: AtomicBool::new(false),
            probes_made: AtomicU64::new(0),
            verified: std::sync::Mutex::new((0, 0)),
            per_call: AtomicBool::new(self.client.inner.stream_mode == StreamMode::PerCall),
            ordered_progress,
            client: self.client.clone(),
            prefix: self.prefix,
            end,
            max_bytes: self.max_bytes,
            page_size: self.page_size,
            read_timeout: self.read_timeout,
        });
        let task = tokio::spawn(task::run(Arc::downgrade(&shared)));
        let cache = Cache {
            _task: Arc::new(TaskGuard {
                task: task.abort_handle(),
                shared: shared.clone(),
            }),
            shared,
        };
        loop {
            {
                let state = cache.shared.read();
                if let Some(e) = &state.error {
                    return Err(e.clone());
                }
                if state.revision > 0 {
                    break;
                }
            }
            if applied_rx.changed().await.is_err() {
                return Err(Error::stopped(store::TASK));
            }
        }
        Ok(cache)
    }
}

into_future!(CacheBuilder, Cache);

impl Client {
    /// A consistent local cache of every key under `prefix` (see [`Cache`]); awaiting it
    /// lists the prefix. An empty prefix caches the whole keyspace (of the client's
    /// namespace).
    pub fn cache(&self, prefix: impl IntoBytes) -> CacheBuilder<'_> {
        CacheBuilder {
            client: self,
            prefix: prefix.into_bytes(),
            max_bytes: None,
            page_size: 1000,
            read_timeout: Duration::from_secs(10),
        }
    }
}

/// The cache's content at one revision, borrowed under its read lock (see
/// [`Cache::read`]). Hold it briefly: the cache applies no revision while it is held.
pub struct CacheView<'a> {
    state: &'a State,
    revision: i64,
}

impl<'a> CacheView<'a> {
    /// The revision whose keyspace this is.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The key-value of `key`, if it exists. A view has no error to return: a key outside
    /// the cache's prefix is simply absent here ([`Cache::get`] refuses it).
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<KeyValue> {
        self.state.map.get(key.as_ref()).map(Entry::kv)
    }

    /// True when `key` exists.
    pub fn contains(&self, key: impl AsRef<[u8]>) -> bool {
        self.state.map.contains_key(key.as_ref())
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.state.map.len()
    }

    /// True when the prefix has no key.
    pub fn is_empty(&self) -> bool {
        self.state.map.is_empty()
    }

    /// Every key-value, in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = KeyValue> + 'a {
        self.state.map.values().map(Entry::kv)
    }

    /// The key-values in `[start, end)`, in key order; an empty `end` means to the last
    /// key.
    pub fn range(
        &self,
        start: impl AsRef<[u8]>,
        end: impl AsRef<[u8]>,
    ) -> impl DoubleEndedIterator<Item = KeyValue> + 'a {
        self.range_of(start.as_ref(), end.as_ref())
    }

    fn range_of(&self, start: &[u8], end: &[u8]) -> impl DoubleEndedIterator<Item = KeyValue> + 'a {
        let end = match end {
            [] => Bound::Unbounded,
            end => Bound::Excluded(end),
        };
        // An empty or inverted range (BTreeMap::range would panic on the latter).
        let empty = matches!(end, Bound::Excluded(e) if start >= e);
        let iter = (!empty).then(|| {
            self.state
                .map
                .range((Bound::Included(start), end))
                .map(Entry::kv)
        });
        iter.into_iter().flatten()
    }

    /// The key-values whose key starts with `prefix`, in key order.
    pub fn prefix(
        &self,
        prefix: impl AsRef<[u8]>,
    ) -> impl DoubleEndedIterator<Item = KeyValue> + 'a {
        let prefix = prefix.as_ref();
        let end = prefix_end(prefix);
        let end: &[u8] = if end.as_ref() == b"\0" { b"" } else { &end };
        self.range_of(prefix, end)
    }
}

impl Cache {
    /// Runs `f` on the content at the cache's current revision, under its read lock (no
    /// I/O, no await). Fails with the error that stopped the cache, if it stopped.
    pub fn read<R>(&self, f: impl FnOnce(&CacheView<'_>) -> R) -> Result<R> {
        let state = self.shared.read();
        state.check()?;
        let view = CacheView {
            state: &state,
            revision: state.revision,
        };
        Ok(f(&view))
    }

    fn read_now<R>(&self, f: impl FnOnce(&CacheView<'_>) -> R) -> Result<AtRevision<R>> {
        self.read(|view| AtRevision {
            revision: view.revision(),
            value: f(view),
        })
    }

    /// Refuses a key outside the cache's prefix: the cache cannot say whether it exists.
    fn check_key(&self, key: &[u8]) -> Result<()> {
        let prefix = &self.shared.prefix;
        if key.starts_with(prefix) {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "key {:?} is outside this cache's prefix {:?}: the cache holds only the keys under \
             it; read it with client.get",
            String::from_utf8_lossy(key),
            String::from_utf8_lossy(prefix)
        )))
    }

    /// Refuses a range reaching outside the cache's prefix (an empty `end`: to the last
    /// cached key).
    fn check_range(&self, start: &[u8], end: &[u8]) -> Result<()> {
        let prefix = &self.shared.prefix;
        if prefix.is_empty() {
            return Ok(());
        }
        let limit = prefix_end(prefix);
        let beyond = !end.is_empty() && (limit.as_ref() != b"\0" && end > limit.as_ref());
        if start >= prefix.as_ref() && !beyond {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "range [{:?}, {:?}) reaches outside this cache's prefix {:?}: the cache holds only \
             the keys under it; read the range with client.range",
            String::from_utf8_lossy(start),
            String::from_utf8_lossy(end),
            String::from_utf8_lossy(prefix)
        )))
    }

    /// The key-value of `key` at the cache's current revision. A key outside the cache's
    /// prefix is refused ([`Error::InvalidInput`]): read it with [`Client::get`].
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<AtRevision<Option<KeyValue>>> {
        self.check_key(key.as_ref())?;
        self.read_now(|view| view.get(key))
    }

    /// The key-values in `[start, end)` in key order (an empty `end`: to the last key). A
    /// range reaching outside the cache's prefix is refused ([`Error::InvalidInput`]).
    pub fn range(
        &self,
        start: impl AsRef<[u8]>,
        end: impl AsRef<[u8]>,
    ) -> Result<AtRevision<Vec<KeyValue>>> {
        self.check_range(start.as_ref(), end.as_ref())?;
        self.read_now(|view| view.range(start, end).collect())
    }

    /// The key-values under `prefix`, in key order. `prefix` must be within the cache's
    /// own prefix (start with it), else [`Error::InvalidInput`].
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Result<AtRevision<Vec<KeyValue>>> {
        self.check_key(prefix.as_ref())?;
        self.read_now(|view| view.prefix(prefix).collect())
    }

    /// Every cached key-value, in key order.
    pub fn list(&self) -> Result<AtRevision<Vec<KeyValue>>> {
        self.read_now(|view| view.iter().collect())
    }

    /// How many keys the prefix holds.
    pub fn len(&self) -> Result<AtRevision<usize>> {
        self.read_now(|view| view.len())
    }

    /// True when the prefix holds no key.
    pub fn is_empty(&self) -> Result<bool> {
        self.read(|view| view.is_empty())
    }

    /// The revision whose keyspace the cache holds now.
    pub fn revision(&self) -> i64 {
        self.shared.read().revision
    }

    /// The cached prefix (in the client's namespace).
    pub fn key_prefix(&self) -> &[u8] {
        &self.shared.prefix
    }

    /// The cache's size: its keys and values plus [`ENTRY_OVERHEAD`] per key.
    pub fn size_bytes(&self) -> usize {
        self.shared.read().bytes
    }

    /// How many times the prefix was listed: 1, plus one per re-list after a compaction
    /// overtook the cache's watch.
    pub fn lists(&self) -> u64 {
        self.shared.read().lists
    }

    /// How many times a read asked etcd whether the prefix changed since the cache's
    /// revision (one range of the prefix, keys only, limit 1; its cost grows with the
    /// prefix): where progress notifications are not used, and where etcd left a read's
    /// progress requests unanswered (see the module docs).
    pub fn probes(&self) -> u64 {
        self.shared.probes_made.load(Ordering::Relaxed)
    }

    /// The error that stopped the cache, if it stopped.
    pub fn error(&self) -> Option<Error> {
        self.shared.read().error.clone()
    }

    /// The content at the current revision as an owned snapshot.
    pub fn snapshot(&self) -> Result<CacheSnapshot> {
        let state = self.shared.read();
        state.check()?;
        Ok(state.snapshot())
    }

    /// The key-value of `key` at a revision ≥ `revision`: read your own writes (pass the
    /// revision of your put). Waits for the cache to get there (see the module docs).
    pub async fn get_at_least(
        &self,
        key: impl AsRef<[u8]>,
        revision: i64,
    ) -> Result<AtRevision<Option<KeyValue>>> {
        self.check_key(key.as_ref())?;
        self.read_at_least(revision, |view| view.get(key)).await
    }

    /// Runs `f` on the content at a revision ≥ `revision`, once the cache has reached it.
    pub async fn read_at_least<R>(
        &self,
        revision: i64,
        f: impl FnOnce(&CacheView<'_>) -> R,
    ) -> Result<AtRevision<R>> {
        self.read_at(revision, f).await
    }

    /// Linearizable: the key-value of `key` as of after every write acknowledged before
    /// this call (see the module docs for the cost).
    pub async fn consistent_get(
        &self,
        key: impl AsRef<[u8]>,
    ) -> Result<AtRevision<Option<KeyValue>>> {
        self.check_key(key.as_ref())?;
        self.consistent_read(|view| view.get(key)).await
    }

    /// Linearizable: runs `f` on the content at (at least) the cluster's revision when
    /// the call began. Takes that revision with a count-only read of one key, then
    /// waits for the cache to reach it (asking the watch for a progress notification).
    pub async fn consistent_read<R>(
        &self,
        f: impl FnOnce(&CacheView<'_>) -> R,
    ) -> Result<AtRevision<R>> {
        let shared = &self.shared;
        // The cluster's revision, from the cheapest linearizable read: a count of one key
        // (counting the whole prefix would cost etcd a walk of its index).
        let key = if shared.prefix.is_empty() {
            Bytes::from_static(b"\0")
        } else {
            shared.prefix.clone()
        };
        let target = shared.client.range(key).count_only().await?.revision();
        self.read_at(target, f).await
    }

    async fn read_at<R>(
        &self,
        target: i64,
        f: impl FnOnce(&CacheView<'_>) -> R,
    ) -> Result<AtRevision<R>> {
        let shared = &self.shared;
        let deadline = Instant::now() + shared.read_timeout;
        let mut applied = shared.applied.subscribe();
        let mut f = Some(f);
        // Where progress is not asked for: probe etcd once the watch has had a moment to
        // bring what is on its way.
        let mut probe_at = if shared.read().map.len() <= PROBE_AT_ONCE_KEYS {
            Instant::now()
        } else {
            Instant::now() + PROBE_GRACE
        };
        // Where progress is asked for: until when this read waits for its answer.
        let mut progress_until = None;
        loop {
            {
                let state = shared.read();
                state.check()?;
                let revision = shared.known_revision(&state);
                if revision >= target {
                    let view = CacheView {
                        state: &state,
                        revision,
                    };
                    let f = f.take().expect("called once");
                    return Ok(AtRevision {
                        value: f(&view),
                        revision,
                    });
                }
            }
            let now = Instant::now();
            let mut wake_at = now + PROGRESS_RETRY;
            let asks_progress = !shared.probes();
            if asks_progress {
                shared.progress_wanted.notify_one();
            }
            // Wait for the progress notification, unless its requests go unanswered.
            let waits_for_progress = asks_progress
                && !shared.progress_unanswered.load(Ordering::Relaxed)
                && match *progress_until.get_or_insert(now + PROGRESS_PATIENCE) {
                    until if now < until => {
                        wake_at = wake_at.min(until);
                        true
                    }
                    _ => {
                        tracing::debug!(
                            target_revision = target,
                            "no answer to the cache's progress requests (etcd drops them while a watch on the stream catches up or waits for a future revision): probing"
                        );
                        shared.progress_unanswered.store(true, Ordering::Relaxed);
                        false
                    }
                };
            if waits_for_progress {
                // The answer (or the events) will wake the read.
            } else if now >= probe_at {
                // Has the prefix changed since the cache's revision? One range: its key
                // count and its newest mod revision, at the cluster's current revision.
                shared.probes_made.fetch_add(1, Ordering::Relaxed);
                let probe = shared
                    .client
                    .range(shared.prefix.clone())
                    .end(shared.end.clone())
                    .sort(SortTarget::Mod, SortOrder::Descend)
                    .limit(1)
                    .keys_only()
                    .await?;
                let newest = probe.kvs().first().map_or(0, KeyValue::mod_revision);
                let state = shared.read();
                state.check()?;
                let unchanged = newest <= state.revision
                    && usize::try_from(probe.count()).ok() == Some(state.map.len());
                if unchanged && probe.revision() > state.revision {
                    // The content at the probe's revision is the cache's.
                    *lock(&shared.verified) = (state.revision, probe.revision());
                }
                drop(state);
                // Changes are on their way through the watch: wait for them, and probe
                // again only when none arrives for a while.
                probe_at = Instant::now() + PROGRESS_RETRY;
                wake_at = probe_at;
            } else {
                wake_at = wake_at.min(probe_at);
            }
            if shared.known_revision(&shared.read()) >= target {
                continue;
            }
            let wait = tokio::time::timeout_at(deadline.min(wake_at), applied.changed()).await;
            if let Ok(Err(_)) = wait {
                return Err(Error::stopped(store::TASK));
            }
            if Instant::now() >= deadline {
                return Err(Error::timeout(
                    "cache",
                    shared.read_timeout,
                    "the cache did not reach the revision in time",
                ));
            }
        }
    }
}
