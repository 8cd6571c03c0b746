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
//! [`Client::cache`] lists the prefix page by page at one revision `R` (the [`Pager`]), then
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
//! | [`Cache::get`], [`Cache::range`], [`Cache::prefix`], [`Cache::list`], [`Cache::len`], [`Cache::read`] | the prefix's keyspace at exactly one revision, returned with the answer; behind the cluster by the watch's delivery time (about a millisecond on a LAN), more while the watch is moving to another member | a read lock and a `BTreeMap` lookup (about 100 ns), no I/O, no await |
//! | [`Cache::get_at_least`], [`Cache::read_at_least`] | like the above, at a revision ≥ `N`: read your own writes (`N` = your put's revision) | none once the cache is there (the usual case after a millisecond); else it waits, asking etcd as below when the prefix is quiet |
//! | [`Cache::consistent_get`], [`Cache::consistent_read`] | linearizable: sees every write acknowledged (to anyone) before the call began, as a quorum read would | one round trip and a wait for the watch: a count-only range (index only, no values) for the cluster's revision and a progress request where progress is reliable (\*); else one range of the prefix sorted by mod revision, limit 1, keys only (etcd reads the whole prefix to answer it: cost grows with the prefix) |
//!
//! (\*) Progress requests need the shared (WebSocket) watch stream and a server that
//! orders their answers with the events of the stream: etcd 3.4.25+, 3.5.8+, 3.6+.
//! Older servers (etcd issue #15220) may answer a progress request ahead of events still
//! queued, which would let a read believe the cache is current when it is not, and
//! **the per-call stream mode** (the gateway refused the WebSocket, e.g. with auth on) has
//! no progress requests at all. In both cases the cache never asks for progress: a read at a
//! revision the cache has not reached asks etcd for the prefix's key count and newest mod
//! revision in one range. When no key of the prefix changed after the cache's revision `c`
//! and the count is the cache's, the content at the cluster's revision *is* the cache's, and
//! the read is served from it, labelled with the cluster's revision; otherwise the changes
//! are on their way through the watch and the read waits for them (asking again only when
//! no revision arrives for 50 ms). A read that waits longer than
//! [`CacheBuilder::read_timeout`] fails with a timeout.
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
//! dropped; its subscriptions then end.

use crate::client::{Client, StreamMode};
use crate::error::{Error, Result};
use crate::key::{prefix_end, IntoBytes};
use crate::kv::{BoxFuture, SortOrder, SortTarget};
use crate::pager::{ClientPages, Pager};
use crate::types::KeyValue;
use crate::watch::{backoff, EventKind, WatchEvent, WatchResponse, WatchStream};
use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::ops::{Bound, Deref};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{broadcast, watch, Notify};

/// Bytes counted per cached key on top of its key and value: the map's slot (key handle
/// and entry, 96 bytes) with the B-tree's spare room, the allocation holding key and
/// value, and the shared-buffer header of its handles.
pub const ENTRY_OVERHEAD: usize = 160;

/// Revisions buffered per subscriber before it is resynchronised with a
/// [`CacheUpdate::Reset`].
const SUBSCRIBER_BUFFER: usize = 4096;

/// How often a waiting consistent read asks again for a progress notification (etcd
/// drops a progress request while some of its watchers are catching up).
const PROGRESS_RETRY: Duration = Duration::from_millis(50);

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

/// One cached key: its value and metadata (the key is the map's).
#[derive(Debug, Clone)]
struct Entry {
    value: Bytes,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    lease: i64,
}

impl Entry {
    fn kv(&self, key: &Bytes) -> KeyValue {
        KeyValue {
            key: key.clone(),
            value: self.value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            lease: self.lease,
        }
    }
}

fn entry_size(key: &[u8], value: &[u8]) -> usize {
    key.len() + value.len() + ENTRY_OVERHEAD
}

/// Copies a key-value out of its answer's shared buffer into one allocation of its own.
fn compact(kv: &KeyValue) -> (Bytes, Entry) {
    let mut buf = Vec::with_capacity(kv.key.len() + kv.value.len());
    buf.extend_from_slice(&kv.key);
    buf.extend_from_slice(&kv.value);
    let buf = Bytes::from(buf);
    let key = buf.slice(..kv.key.len());
    let value = buf.slice(kv.key.len()..);
    let entry = Entry {
        value,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    };
    (key, entry)
}

/// What readers see, under one lock: the content at exactly one revision.
struct State {
    map: BTreeMap<Bytes, Entry>,
    /// The revision whose keyspace `map` is (0 before the first list).
    revision: i64,
    bytes: usize,
    /// Why the cache stopped; every read returns it.
    error: Option<Error>,
    /// How many times the prefix was listed (1 after the first list).
    lists: u64,
    /// Updates for subscribers; `None` once the cache is gone.
    updates: Option<broadcast::Sender<CacheUpdate>>,
}

impl State {
    fn check(&self) -> Result<()> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None if self.revision == 0 => Err(Error::Protocol("the cache is not loaded".into())),
            None => Ok(()),
        }
    }

    fn snapshot(&self) -> CacheSnapshot {
        CacheSnapshot {
            revision: self.revision,
            kvs: self.map.iter().map(|(k, e)| e.kv(k)).collect(),
        }
    }
}

struct Shared {
    state: RwLock<State>,
    /// The applied revision, announced after each revision (and on a stop).
    applied: watch::Sender<i64>,
    /// Readers waiting for the cache ask its task for a progress notification.
    progress_wanted: Notify,
    /// The watch offers no progress requests (per-call stream mode).
    per_call: AtomicBool,
    /// The server sends progress notifications in order with events (etcd ≥ 3.4.25,
    /// ≥ 3.5.8): they may advance the cache's revision.
    ordered_progress: bool,
    client: Client,
    prefix: Bytes,
    end: Bytes,
    max_bytes: Option<usize>,
    page_size: i64,
    read_timeout: Duration,
}

/// Whether a server of `version` orders progress notifications with events (etcd
/// issue #15220, fixed in 3.4.25 and 3.5.8).
fn progress_is_ordered(version: &str) -> bool {
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

impl Shared {
    /// Reads that wait for a revision probe etcd instead of asking for progress.
    fn probes(&self) -> bool {
        self.per_call.load(Ordering::Relaxed) || !self.ordered_progress
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the cache with `error`: readers and waiters see it.
    fn stop(&self, error: Error) {
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
            Ok(version) => progress_is_ordered(&version),
            Err(e) => {
                tracing::debug!(error = %e, "server version unknown: the cache will not rely on progress notifications");
                false
            }
        };
        let (applied, mut applied_rx) = watch::channel(0);
        let (updates, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        let shared = Arc::new(Shared {
            state: RwLock::new(State {
                map: BTreeMap::new(),
                revision: 0,
                bytes: 0,
                error: None,
                lists: 0,
                updates: Some(updates),
            }),
            applied,
            progress_wanted: Notify::new(),
            per_call: AtomicBool::new(self.client.inner.stream_mode == StreamMode::PerCall),
            ordered_progress,
            client: self.client.clone(),
            prefix: self.prefix,
            end,
            max_bytes: self.max_bytes,
            page_size: self.page_size,
            read_timeout: self.read_timeout,
        });
        let task = tokio::spawn(run(Arc::downgrade(&shared)));
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
                return Err(Error::Protocol("the cache's task ended".into()));
            }
        }
        Ok(cache)
    }
}

impl<'a> IntoFuture for CacheBuilder<'a> {
    type Output = Result<Cache>;
    type IntoFuture = BoxFuture<'a, Result<Cache>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

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

    /// The key-value of `key`, if it exists.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<KeyValue> {
        let (k, e) = self.state.map.get_key_value(key.as_ref())?;
        Some(e.kv(k))
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
        self.state.map.iter().map(|(k, e)| e.kv(k))
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
                .range::<[u8], _>((Bound::Included(start), end))
                .map(|(k, e)| e.kv(k))
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

    /// The key-value of `key` at the cache's current revision.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<AtRevision<Option<KeyValue>>> {
        self.read_now(|view| view.get(key))
    }

    /// The key-values in `[start, end)` in key order (an empty `end`: to the last key).
    pub fn range(
        &self,
        start: impl AsRef<[u8]>,
        end: impl AsRef<[u8]>,
    ) -> Result<AtRevision<Vec<KeyValue>>> {
        self.read_now(|view| view.range(start, end).collect())
    }

    /// The key-values under `prefix` (within the cache's own prefix), in key order.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Result<AtRevision<Vec<KeyValue>>> {
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
        self.consistent_read(|view| view.get(key)).await
    }

    /// Linearizable: runs `f` on the content at (at least) the cluster's revision when
    /// the call began. Takes that revision with a count-only range of the prefix, then
    /// waits for the cache to reach it (asking the watch for a progress notification).
    pub async fn consistent_read<R>(
        &self,
        f: impl FnOnce(&CacheView<'_>) -> R,
    ) -> Result<AtRevision<R>> {
        let shared = &self.shared;
        let target = if shared.probes() {
            // The probe below takes the revision itself.
            i64::MAX
        } else {
            let response = shared
                .client
                .range(shared.prefix.clone())
                .end(shared.end.clone())
                .count_only()
                .await?;
            response.revision()
        };
        self.read_at(target, f).await
    }

    async fn read_at<R>(
        &self,
        target: i64,
        f: impl FnOnce(&CacheView<'_>) -> R,
    ) -> Result<AtRevision<R>> {
        let shared = &self.shared;
        let deadline = tokio::time::Instant::now() + shared.read_timeout;
        let mut applied = shared.applied.subscribe();
        let mut f = Some(f);
        let mut target = target;
        let mut probe_now = true;
        loop {
            {
                let state = shared.read();
                state.check()?;
                if state.revision >= target {
                    let view = CacheView {
                        state: &state,
                        revision: state.revision,
                    };
                    let f = f.take().expect("called once");
                    return Ok(AtRevision {
                        value: f(&view),
                        revision: view.revision,
                    });
                }
            }
            if shared.probes() && probe_now {
                // No (reliable) progress notifications: check whether the prefix changed since the cache's
                // revision, and serve from it labelled with the cluster's revision if not.
                let probe = shared
                    .client
                    .range(shared.prefix.clone())
                    .end(shared.end.clone())
                    .sort(SortTarget::Mod, SortOrder::Descend)
                    .limit(1)
                    .keys_only()
                    .await?;
                let newest = probe.kvs().first().map_or(0, KeyValue::mod_revision);
                if target == i64::MAX {
                    target = probe.revision();
                }
                let state = shared.read();
                state.check()?;
                let unchanged = newest <= state.revision
                    && usize::try_from(probe.count()).ok() == Some(state.map.len());
                let revision = if state.revision >= target {
                    Some(state.revision)
                } else if unchanged && probe.revision() >= target {
                    // The content at the cluster's revision is the cache's.
                    Some(probe.revision())
                } else {
                    None
                };
                if let Some(revision) = revision {
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
                drop(state);
            } else if !shared.probes() {
                shared.progress_wanted.notify_one();
            }
            let wait = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + PROGRESS_RETRY),
                applied.changed(),
            )
            .await;
            match wait {
                Ok(Err(_)) => return Err(Error::Protocol("the cache's task ended".into())),
                // Events are arriving: wait for them rather than probe again.
                Ok(Ok(())) => probe_now = false,
                Err(_) => probe_now = true,
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::timeout(
                    "cache",
                    shared.read_timeout,
                    "the cache did not reach the revision in time",
                ));
            }
        }
    }

    /// The stream of every revision the cache applies from now on (see
    /// [`CacheSubscription`]).
    pub fn subscribe(&self) -> Result<CacheSubscription> {
        let state = self.shared.read();
        state.check()?;
        let Some(updates) = &state.updates else {
            return Err(Error::Protocol("the cache has stopped".into()));
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
            return Err(Error::Protocol("the cache has stopped".into()));
        };
        let subscription =
            CacheSubscription::new(self.shared.clone(), updates.subscribe(), state.revision);
        Ok((state.snapshot(), subscription))
    }
}

/// The cache's content at one revision, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSnapshot {
    revision: i64,
    kvs: Vec<KeyValue>,
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
    /// key-value it replaced or deleted ([`WatchEvent::prev_kv`]) when there was one.
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
    fn new(shared: Arc<Shared>, rx: broadcast::Receiver<CacheUpdate>, start: i64) -> Self {
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

// ---------------------------------------------------------------------------------------
// The task: list, watch, apply; list again after a compaction.

async fn run(shared: std::sync::Weak<Shared>) {
    let mut failures = 0u32;
    'list: loop {
        let Some(s) = shared.upgrade() else { return };
        let listed = list(&s).await;
        let revision = match listed {
            Ok(revision) => revision,
            Err(e) if e.is_transient() && s.read().revision > 0 => {
                failures += 1;
                drop(s);
                tokio::time::sleep(backoff(failures)).await;
                continue 'list;
            }
            Err(e) => {
                s.stop(e);
                return;
            }
        };
        failures = 0;
        let mut watch = loop {
            match s
                .client
                .watch(s.prefix.clone())
                .end(s.end.clone())
                .start_revision(revision + 1)
                .await
            {
                Ok(w) => break w,
                Err(Error::Compacted { .. }) => continue 'list,
                Err(e) if e.is_transient() => {
                    failures += 1;
                    tokio::time::sleep(backoff(failures)).await;
                }
                Err(e) => {
                    s.stop(e);
                    return;
                }
            }
        };
        if s.ordered_progress {
            // Learns whether the watch has the shared stream. (Not on older servers: they
            // may answer a progress request ahead of events still queued, see the docs.)
            s.per_call
                .store(watch.request_progress().is_err(), Ordering::Relaxed);
        }
        drop(s);
        match follow(&shared, &mut watch).await {
            Followed::Compacted => continue 'list,
            Followed::Stopped => return,
        }
    }
}

enum Followed {
    Compacted,
    Stopped,
}

async fn follow(shared: &std::sync::Weak<Shared>, watch: &mut WatchStream) -> Followed {
    loop {
        let Some(s) = shared.upgrade() else {
            return Followed::Stopped;
        };
        tokio::select! {
            item = watch.next() => match item {
                Some(Ok(response)) => {
                    if let Err(e) = apply(&s, response) {
                        s.stop(e);
                        return Followed::Stopped;
                    }
                }
                Some(Err(Error::Compacted { compact_revision })) => {
                    tracing::info!(compact_revision, "the cache's watch was overtaken by a compaction: listing again");
                    return Followed::Compacted;
                }
                Some(Err(e)) => {
                    s.stop(e);
                    return Followed::Stopped;
                }
                None => {
                    s.stop(Error::Protocol("the cache's watch ended".into()));
                    return Followed::Stopped;
                }
            },
            _ = s.progress_wanted.notified(), if s.ordered_progress => {
                if watch.request_progress().is_err() {
                    s.per_call.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Lists the prefix at one revision into a fresh map and swaps it in whole.
async fn list(s: &Shared) -> Result<i64> {
    let mut pager = Pager::new(ClientPages::new(&s.client), s.prefix.clone(), s.end.clone())
        .page_size(s.page_size);
    let mut map = BTreeMap::new();
    let mut bytes = 0usize;
    while let Some(page) = pager.next_page().await? {
        for kv in &page {
            bytes += entry_size(&kv.key, &kv.value);
            if let Some(limit) = s.max_bytes {
                if bytes > limit {
                    return Err(Error::CacheFull {
                        limit,
                        needed: bytes,
                    });
                }
            }
            let (key, entry) = compact(kv);
            map.insert(key, entry);
        }
    }
    let revision = match pager.pinned_revision() {
        Some(r) => r,
        None => s
            .client
            .range(s.prefix.clone())
            .end(s.end.clone())
            .count_only()
            .await?
            .revision(),
    };
    let mut state = s.write();
    let relist = state.lists > 0;
    state.map = map;
    state.bytes = bytes;
    state.revision = revision;
    state.lists += 1;
    if relist {
        if let Some(updates) = &state.updates {
            if updates.receiver_count() > 0 {
                let _ = updates.send(CacheUpdate::Reset(Arc::new(state.snapshot())));
            }
        }
    }
    drop(state);
    tracing::debug!(revision, relist, "cache listed");
    s.applied.send_replace(revision);
    Ok(revision)
}

/// Applies one revision whole (or a progress notification), under the write lock.
fn apply(s: &Shared, response: WatchResponse) -> Result<()> {
    let revision = response.revision();
    let mut state = s.write();
    if response.is_progress_notify() {
        if s.ordered_progress && revision > state.revision {
            state.revision = revision;
            drop(state);
            s.applied.send_replace(revision);
        }
        return Ok(());
    }
    if revision <= state.revision {
        // Only a server that answered a progress request ahead of queued events (see the
        // module docs) sends this: apply it, the content becomes right again.
        tracing::warn!(
            revision,
            cache = state.revision,
            "event older than the cache's revision (etcd answered a progress request ahead of it)"
        );
    }
    if let Some(limit) = s.max_bytes {
        let mut bytes = state.bytes as i64;
        for e in response.events() {
            if let Some(old) = state.map.get(e.key()) {
                bytes -= entry_size(e.key(), &old.value) as i64;
            }
            if e.is_put() {
                bytes += entry_size(e.key(), e.kv().value()) as i64;
            }
        }
        let needed = usize::try_from(bytes).unwrap_or(0);
        if needed > limit {
            return Err(Error::CacheFull { limit, needed });
        }
    }
    let notify = state
        .updates
        .as_ref()
        .is_some_and(|u| u.receiver_count() > 0);
    let mut events = Vec::with_capacity(if notify { response.events().len() } else { 0 });
    for e in response.into_events() {
        match e.kind() {
            EventKind::Put => {
                let (key, entry) = compact(e.kv());
                let size = entry_size(&key, &entry.value);
                let new_kv = notify.then(|| entry.kv(&key));
                let old = state.map.insert(key.clone(), entry);
                state.bytes += size;
                if let Some(old) = &old {
                    state.bytes -= entry_size(&key, &old.value);
                }
                if let Some(kv) = new_kv {
                    events.push(WatchEvent {
                        kind: EventKind::Put,
                        kv,
                        prev_kv: old.map(|o| o.kv(&key)),
                    });
                }
            }
            EventKind::Delete => {
                let old = state.map.remove_entry(e.key());
                if let Some((key, old)) = &old {
                    state.bytes -= entry_size(key, &old.value);
                }
                if notify {
                    let key = old
                        .as_ref()
                        .map_or_else(|| Bytes::copy_from_slice(e.key()), |(k, _)| k.clone());
                    events.push(WatchEvent {
                        kind: EventKind::Delete,
                        kv: KeyValue {
                            key: key.clone(),
                            mod_revision: revision,
                            ..KeyValue::default()
                        },
                        prev_kv: old.map(|(k, o)| o.kv(&k)),
                    });
                }
            }
        }
    }
    state.revision = state.revision.max(revision);
    if notify {
        if let Some(updates) = &state.updates {
            let _ = updates.send(CacheUpdate::Revision(WatchResponse::from_events(
                revision, events,
            )));
        }
    }
    let applied = state.revision;
    drop(state);
    s.applied.send_replace(applied);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_ordered_from_3_4_25_and_3_5_8() {
        for (v, ordered) in [
            ("3.4.23", false),
            ("3.4.25", true),
            ("3.5.1", false),
            ("3.5.7", false),
            ("3.5.8", true),
            ("3.5.13", true),
            ("3.6.0", true),
            ("3.6.0-rc.1", true),
            ("4.0.0", true),
            ("garbage", false),
        ] {
            assert_eq!(progress_is_ordered(v), ordered, "{v}");
        }
    }
}
