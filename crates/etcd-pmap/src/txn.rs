//! Transactions: a snapshot for reads, a buffer for writes, and one etcd txn to commit.
//!
//! # What a commit checks
//!
//! A transaction reads at one revision, pinned by its first read. Each read is remembered,
//! and the commit is a single etcd txn whose compares must all hold for the writes to apply:
//!
//! * a key read and found: `mod_revision(key) == the revision it had in the snapshot`:
//!   catches any later update or delete of it (a delete then re-create too);
//! * a key read and found absent: `create_revision(key) == 0`: catches its creation;
//! * a range scanned (as far as the scan was consumed): `mod_revision < snapshot + 1` over the
//!   range: catches any key created or updated in it later, plus, through the per-key compares
//!   of every row the scan returned, any row deleted.
//!
//! So a committed transaction saw exactly the data it would see if it ran alone at its commit
//! revision (serializable, optimistic). Not checked: keys the transaction wrote without
//! reading (blind writes: last writer wins, which is serializable), and rows past where a
//! scan stopped (they were not read). Writes a transaction made before a scan are merged
//! into it; writes made while a scan is being read are not.
//!
//! Each compare counts against etcd's `--max-txn-ops` (default 128), like each write: a write
//! transaction that scans many rows is refused as [`Error::TooLarge`]; scan big ranges in a
//! [`ReadTxn`], which has no compares.

use crate::error::{Error, Result};
use bytes::Bytes;
use etcd_kv::{Client, Compare, RangeResponse, SortOrder, SortTarget, TxnOp};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The limits a commit is checked against before sending (the database's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_txn_ops: usize,
    pub(crate) max_request_bytes: usize,
}

/// Read-only or read-write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Read,
    Write,
}

/// What a transaction remembers. Never locked across an await.
#[derive(Debug, Default)]
struct State {
    /// The snapshot revision, once the first read pinned it.
    pinned: Option<i64>,
    /// Keys read from the snapshot: their mod revision, 0 when absent.
    reads: HashMap<Bytes, i64>,
    /// Ranges scanned, as far as consumed: `[start, end)`; empty while nothing is covered.
    ranges: Vec<(Bytes, Bytes)>,
    /// Buffered writes: a value to put, or `None` to delete.
    writes: BTreeMap<Bytes, Option<Bytes>>,
    /// Committed or aborted.
    finished: bool,
}

/// The shared core of [`ReadTxn`] and [`WriteTxn`]. Keys are relative to the database
/// prefix (the client's namespace): slot, then encoded key.
pub struct TxnCore {
    /// The database's client, in its namespace.
    client: Client,
    limits: Limits,
    mode: Mode,
    /// Owned by [`Database::transact`](crate::Database::transact), which commits or aborts
    /// it; dropped unfinished only when the `transact` future itself is dropped, where
    /// discarding the writes is what its cancel-safety contract says.
    managed: bool,
    state: Mutex<State>,
}

/// One read against the snapshot.
#[derive(Debug, Clone, Default)]
pub(crate) struct RangeReq {
    pub(crate) key: Bytes,
    /// `None` for one key.
    pub(crate) end: Option<Bytes>,
    pub(crate) limit: i64,
    pub(crate) reverse: bool,
    pub(crate) keys_only: bool,
    pub(crate) count_only: bool,
}

impl TxnCore {
    fn new(client: Client, limits: Limits, mode: Mode) -> TxnCore {
        TxnCore {
            client,
            limits,
            mode,
            managed: false,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_write(&self) -> bool {
        self.mode == Mode::Write
    }

    fn check_open(&self) -> Result<()> {
        if self.lock().finished {
            Err(Error::Finished)
        } else {
            Ok(())
        }
    }

    pub(crate) fn pinned(&self) -> Option<i64> {
        self.lock().pinned
    }

    /// Pins `revision` unless a concurrent read pinned one first; returns the pinned one.
    fn pin(&self, revision: i64) -> i64 {
        *self.lock().pinned.get_or_insert(revision)
    }

    /// Reads at the snapshot, pinning it on the first read.
    pub(crate) async fn read(&self, req: &RangeReq) -> Result<RangeResponse> {
        self.check_open()?;
        let pinned = self.pinned();
        let response = self.send_range(req, pinned.unwrap_or(0)).await?;
        if pinned.is_some() {
            return Ok(response);
        }
        let revision = response.revision();
        let now = self.pin(revision);
        if now == revision {
            Ok(response)
        } else {
            // Another read of this transaction pinned an other revision meanwhile.
            self.send_range(req, now).await
        }
    }

    async fn send_range(&self, req: &RangeReq, revision: i64) -> Result<RangeResponse> {
        let client = &self.client;
        let mut range = client.range(req.key.clone()).revision(revision);
        if let Some(end) = &req.end {
            range = range.end(end.clone());
        }
        if req.limit > 0 {
            range = range.limit(req.limit);
        }
        if req.reverse {
            range = range.sort(SortTarget::Key, SortOrder::Descend);
        }
        if req.keys_only {
            range = range.keys_only();
        }
        if req.count_only {
            range = range.count_only();
        }
        Ok(range.await?)
    }

    /// The buffered write of `key`: `Some(Some(v))` put, `Some(None)` deleted, `None` none.
    pub(crate) fn buffered(&self, key: &[u8]) -> Result<Option<Option<Bytes>>> {
        let state = self.lock();
        if state.finished {
            return Err(Error::Finished);
        }
        Ok(state.writes.get(key).cloned())
    }

    /// The buffered writes in `[start, end)` (`end` of `"\0"`: no end), in scan order.
    pub(crate) fn buffered_range(
        &self,
        start: &[u8],
        end: &[u8],
        reverse: bool,
    ) -> Vec<(Bytes, Option<Bytes>)> {
        let state = self.lock();
        let mut out: Vec<(Bytes, Option<Bytes>)> = state
            .writes
            .range::<[u8], _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| end == b"\0" || k.as_ref() < end)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if reverse {
            out.reverse();
        }
        out
    }

    /// Reads one key, through the write buffer, recording the read.
    pub(crate) async fn get(&self, key: &Bytes, keys_only: bool) -> Result<Option<Bytes>> {
        if let Some(write) = self.buffered(key)? {
            return Ok(write);
        }
        let response = self
            .read(&RangeReq {
                key: key.clone(),
                keys_only,
                ..RangeReq::default()
            })
            .await?;
        let found = response.kvs().first();
        self.record(key, found.map_or(0, |kv| kv.mod_revision()));
        // A write of this transaction made while the read was in flight wins.
        if let Some(write) = self.buffered(key)? {
            return Ok(write);
        }
        Ok(found.map(|kv| kv.value_bytes()))
    }

    /// Remembers that `key` was read with this mod revision (0: absent).
    pub(crate) fn record(&self, key: &Bytes, mod_revision: i64) {
        if self.is_write() {
            self.lock().reads.entry(key.clone()).or_insert(mod_revision);
        }
    }

    /// Starts remembering a scanned range; `None` in a read-only transaction.
    pub(crate) fn begin_range(&self) -> Option<usize> {
        if !self.is_write() {
            return None;
        }
        let mut state = self.lock();
        state.ranges.push((Bytes::new(), Bytes::new()));
        Some(state.ranges.len() - 1)
    }

    /// Sets how much of a scanned range was consumed.
    pub(crate) fn cover(&self, id: usize, start: Bytes, end: Bytes) {
        if let Some(range) = self.lock().ranges.get_mut(id) {
            *range = (start, end);
        }
    }

    pub(crate) fn put(&self, key: Bytes, value: Bytes) -> Result<()> {
        self.write(key, Some(value))
    }

    pub(crate) fn delete(&self, key: Bytes) -> Result<()> {
        self.write(key, None)
    }

    fn write(&self, key: Bytes, value: Option<Bytes>) -> Result<()> {
        let mut state = self.lock();
        if state.finished {
            return Err(Error::Finished);
        }
        state.writes.insert(key, value);
        Ok(())
    }

    fn finish(&self) -> State {
        let mut state = self.lock();
        let taken = std::mem::take(&mut *state);
        state.finished = true;
        state.pinned = taken.pinned;
        taken
    }

    /// Commits `state`, taken by [`finish`](Self::finish) when the commit was asked for.
    async fn commit(&self, state: State) -> Result<Committed> {
        if state.finished {
            return Err(Error::Finished);
        }
        let read_revision = state.pinned.unwrap_or(0);
        if state.writes.is_empty() {
            return Ok(Committed {
                revision: read_revision,
                ops: 0,
                compares: 0,
            });
        }
        let limits = self.limits;
        let mut bytes = 64;
        let mut compares = Vec::with_capacity(state.reads.len() + state.ranges.len());
        for (key, mod_revision) in &state.reads {
            bytes += key.len() + 24;
            compares.push(if *mod_revision == 0 {
                Compare::create_revision(key).eq(0)
            } else {
                Compare::mod_revision(key).eq(*mod_revision)
            });
        }
        for (start, end) in state.ranges.iter().filter(|(s, e)| s != e) {
            bytes += start.len() + end.len() + 24;
            compares.push(Compare::mod_revision(start).end(end).lt(read_revision + 1));
        }
        let mut ops = Vec::with_capacity(state.writes.len());
        for (key, value) in &state.writes {
            bytes += key.len() + 16;
            ops.push(match value {
                Some(value) => {
                    bytes += value.len();
                    TxnOp::put(key, value)
                }
                None => TxnOp::delete(key),
            });
        }
        if ops.len() > limits.max_txn_ops
            || compares.len() > limits.max_txn_ops
            || bytes > limits.max_request_bytes
        {
            return Err(Error::TooLarge {
                ops: ops.len(),
                compares: compares.len(),
                max_ops: limits.max_txn_ops,
                request_bytes: bytes,
                max_request_bytes: limits.max_request_bytes,
            });
        }
        let (n_ops, n_compares) = (ops.len(), compares.len());
        let response = self.client.txn().when(compares).and_then(ops).await?;
        if !response.succeeded() {
            return Err(Error::Conflict { read_revision });
        }
        Ok(Committed {
            revision: response.revision(),
            ops: n_ops,
            compares: n_compares,
        })
    }
}

impl Drop for TxnCore {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if self.mode == Mode::Write && !state.finished && !state.writes.is_empty() {
            let writes = state.writes.len();
            tracing::warn!(
                writes,
                "a WriteTxn with {writes} pending writes was dropped without commit(): they are \
                 discarded (call `.commit().await`, use `Database::transact`, or `abort()` \
                 to discard on purpose)"
            );
            // Debug builds make the lost writes impossible to miss, but never turn a panic
            // that is already unwinding (and dropping the transaction) into an abort.
            #[cfg(debug_assertions)]
            if !self.managed && !std::thread::panicking() {
                panic!(
                    "a WriteTxn with {writes} pending writes was dropped without commit(): \
                     they are discarded. Call `.commit().await`, use `Database::transact`, or \
                     `abort()` to discard them on purpose (this check runs in debug builds \
                     only; release builds log a `tracing` warning)"
                );
            }
        }
    }
}

impl fmt::Debug for TxnCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Txn")
            .field("mode", &self.mode)
            .field("revision", &state.pinned)
            .field("reads", &state.reads.len())
            .field("ranges", &state.ranges.len())
            .field("writes", &state.writes.len())
            .field("finished", &state.finished)
            .finish()
    }
}

pub(crate) mod sealed {
    /// Gives table operations the transaction's core.
    pub trait Sealed {
        fn core(&self) -> &super::TxnCore;
    }
}

/// Either kind of transaction: what table reads accept. Sealed: implemented by [`ReadTxn`]
/// and [`WriteTxn`] only.
pub trait Transaction: sealed::Sealed + Send + Sync {
    /// The snapshot revision, once the first read has pinned it.
    fn revision(&self) -> Option<i64>;
}

/// A read-only transaction: every read sees the snapshot pinned by the first one.
///
/// Nothing to commit: drop it when done. It costs nothing on the server; a snapshot older
/// than the server's compaction fails with `etcd_kv::Error::Compacted` inside [`Error::Kv`].
/// Clones share the snapshot.
#[derive(Clone)]
pub struct ReadTxn {
    core: Arc<TxnCore>,
}

/// A read-write transaction: reads see one snapshot plus this transaction's own writes;
/// writes are buffered until [`commit`](WriteTxn::commit) sends them as one etcd txn,
/// guarded by compares on everything read (see [Conflicts](crate#conflicts)).
///
/// Prefer [`Database::transact`](crate::Database::transact), which commits for you (and
/// retries conflicts), like txaioetcd's `async with db.begin(write=True)`. A `WriteTxn`
/// from [`Database::begin_write`](crate::Database::begin_write) must be committed by hand:
///
/// # Drop
///
/// Dropping the last handle without [`commit`](WriteTxn::commit) or
/// [`abort`](WriteTxn::abort) discards the buffered writes: nothing was sent, and reads
/// see none of them. When there were writes, that is almost always a forgotten commit, so
/// it is made impossible to miss: **debug builds panic** (unless the thread is already
/// panicking), and release builds log a `tracing` warning (target `etcd_pmap::txn`). Call
/// [`abort`](WriteTxn::abort) to discard writes on purpose, e.g. before an early return
/// or before dropping a future that holds the transaction. Transactions run by
/// [`Database::transact`](crate::Database::transact) are exempt: it commits or aborts them
/// itself, and a dropped `transact` future discards its writes as documented there.
///
/// Clones are handles on the same transaction (so a closure can own one); after a commit
/// or abort through any handle, the others fail with [`Error::Finished`].
#[derive(Clone)]
#[must_use = "a write transaction applies nothing until `.commit().await`"]
pub struct WriteTxn {
    core: Arc<TxnCore>,
}

impl ReadTxn {
    pub(crate) fn new(client: Client, limits: Limits) -> ReadTxn {
        ReadTxn {
            core: Arc::new(TxnCore::new(client, limits, Mode::Read)),
        }
    }

    /// The snapshot revision, once the first read has pinned it.
    pub fn revision(&self) -> Option<i64> {
        self.core.pinned()
    }
}

impl WriteTxn {
    pub(crate) fn new(client: Client, limits: Limits) -> WriteTxn {
        WriteTxn {
            core: Arc::new(TxnCore::new(client, limits, Mode::Write)),
        }
    }

    /// A transaction that [`Database::transact`](crate::Database::transact) commits or
    /// aborts itself: dropping it unfinished (a cancelled `transact`) does not panic.
    pub(crate) fn managed(client: Client, limits: Limits) -> WriteTxn {
        let mut core = TxnCore::new(client, limits, Mode::Write);
        core.managed = true;
        WriteTxn {
            core: Arc::new(core),
        }
    }

    /// The snapshot revision, once the first read has pinned it.
    pub fn revision(&self) -> Option<i64> {
        self.core.pinned()
    }

    /// Sends every buffered write as one etcd txn, guarded by compares on what was read.
    ///
    /// Fails with [`Error::Conflict`] when something read changed since the snapshot,
    /// and with [`Error::TooLarge`] (before sending) when it does not fit in one etcd txn;
    /// in both cases nothing is applied. A transaction without writes sends nothing.
    ///
    /// Cancel safety: dropping the future before the request is sent applies nothing; after,
    /// the outcome is unknown, as for any write (the transaction is finished either way:
    /// it is finished when `commit()` is called, so dropping the future never trips the
    /// [drop check](WriteTxn#drop)).
    pub fn commit(self) -> impl std::future::Future<Output = Result<Committed>> + Send {
        let state = self.core.finish();
        async move { self.core.commit(state).await }
    }

    /// Discards the buffered writes on purpose (dropping every handle without it discards
    /// them too, but panics in debug builds: see [Drop](WriteTxn#drop)).
    pub fn abort(self) {
        self.core.finish();
    }

    /// How many writes are buffered (index entries included).
    pub fn pending_writes(&self) -> usize {
        self.core.lock().writes.len()
    }

    /// How many compares the commit would send now: keys read plus ranges scanned.
    pub fn pending_compares(&self) -> usize {
        let state = self.core.lock();
        state.reads.len() + state.ranges.iter().filter(|(s, e)| s != e).count()
    }
}

impl sealed::Sealed for ReadTxn {
    fn core(&self) -> &TxnCore {
        &self.core
    }
}

impl sealed::Sealed for WriteTxn {
    fn core(&self) -> &TxnCore {
        &self.core
    }
}

impl Transaction for ReadTxn {
    fn revision(&self) -> Option<i64> {
        self.core.pinned()
    }
}

impl Transaction for WriteTxn {
    fn revision(&self) -> Option<i64> {
        self.core.pinned()
    }
}

impl fmt::Debug for ReadTxn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl fmt::Debug for WriteTxn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

/// What a successful commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    revision: i64,
    ops: usize,
    compares: usize,
}

impl Committed {
    /// The revision of the commit (for a transaction without writes: its snapshot
    /// revision, or 0 when it read nothing).
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// How many writes were applied (index entries included).
    pub fn ops(&self) -> usize {
        self.ops
    }

    /// How many compares guarded them.
    pub fn compares(&self) -> usize {
        self.compares
    }
}
