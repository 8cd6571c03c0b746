//! [`Generations`]: an atomic commit larger than one transaction. The writes are staged
//! under a fresh generation's prefix (a [`Batch`](crate::Batch)), then one transaction
//! makes that generation current; readers read the pointer and the generation at one
//! revision, so they see the old generation or the new one, never a mix.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::key::{prefix_end, IntoBytes};
use crate::scan::Scan;
use crate::txn::{Compare, TxnOp};
use crate::types::KeyValue;
use bytes::Bytes;

/// The lease of a committer's staging marker, in seconds: a committer gone for longer
/// leaves a generation that the next commit removes.
pub const DEFAULT_STAGING_TTL: i64 = 30;

/// Whole data sets replaced atomically, however large: each
/// [`commit`](Generations::commit) writes a complete new generation of key-values and
/// makes it current in one transaction; [`current`](Generations::current) gives a
/// [`GenerationView`] that reads one generation at one revision.
///
/// ```no_run
/// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
/// let routes = client.generations("routes/");
/// let entries = (0..100_000).map(|i| (format!("r{i:06}"), format!("backend-{}", i % 7)));
/// let committed = routes.commit(entries).await?;
/// println!("generation {} of {} keys current at {}", committed.generation(),
///     committed.keys(), committed.revision());
///
/// let view = routes.current().await?.expect("a generation is current");
/// let route = view.get("r000042").await?; // from that generation, at its revision
/// # let _ = route; Ok(()) }
/// ```
///
/// # Layout
///
/// Under the prefix `P`: `P current` holds the current generation's name; `P gen/<name>/`
/// holds its key-values; `P gens/<name>` lists each generation that may have keys (for
/// clean-up); `P staging/<name>` is attached to the committer's lease while it stages.
///
/// # What it guarantees
///
/// - A reader that uses [`current`](Self::current) (or reads `P current` and then
///   `P gen/<name>/` at that read's revision) sees the old generation or the new one
///   whole: the new one becomes visible in the one transaction that changes `P current`.
/// - Commits are serialised by that transaction: it applies only if `P current` is
///   unchanged since the commit began; otherwise the commit fails with
///   [`Error::CommitConflict`] and removes what it staged.
/// - A commit that fails while staging removes what it staged. One whose committer
///   stops (a crash, the future dropped) leaves its staging marker to expire with its
///   lease ([`staging_ttl`](Self::staging_ttl)); the next commit (or
///   [`collect_garbage`](Self::collect_garbage)) removes that generation. The old
///   generation is deleted once the new one is current.
/// - When the transaction that makes the generation current has an unknown outcome, the
///   commit reads `P current` to learn it, and reports it as applied or not.
///
/// # The read side it needs
///
/// Readers must go through the pointer, at one revision: a [`GenerationView`], or a
/// [`Cache`](crate::Cache) of `P` read in one snapshot (pointer and keys at the same
/// revision). A view's reads use its revision; once the store is compacted past it, they
/// fail with [`Error::Compacted`]: take a new view. Writing under `P gen/` by other means
/// breaks the guarantee.
///
/// # What it costs
///
/// Each commit writes every key again (`keys / max_txn_ops` transactions, sent
/// [`concurrency`](Self::concurrency) at a time), holds a lease while staging, and deletes
/// the old generation with one range delete; etcd keeps both generations until the next
/// compaction. Memory: one transaction's operations per transaction in flight.
#[derive(Debug, Clone)]
pub struct Generations {
    client: Client,
    prefix: Bytes,
    staging_ttl: i64,
    concurrency: usize,
}

/// What a successful [`Generations::commit`] made current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    generation: String,
    revision: i64,
    keys: u64,
}

impl Committed {
    /// The new generation's name.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    /// The revision at which it became current.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// How many keys it holds.
    pub fn keys(&self) -> u64 {
        self.keys
    }
}

/// One generation, read at one revision: the revision at which it was found current.
#[derive(Debug, Clone)]
pub struct GenerationView {
    /// A client whose namespace is the generation's prefix.
    client: Client,
    generation: String,
    revision: i64,
}

impl Client {
    /// Atomically replaced data sets under `prefix`; see [`Generations`].
    pub fn generations(&self, prefix: impl IntoBytes) -> Generations {
        Generations {
            client: self.clone(),
            prefix: prefix.into_bytes(),
            staging_ttl: DEFAULT_STAGING_TTL,
            concurrency: 4,
        }
    }
}

impl Generations {
    /// The TTL of a committer's staging lease, in seconds (default
    /// [`DEFAULT_STAGING_TTL`]); it is kept alive while the commit runs.
    pub fn staging_ttl(mut self, seconds: i64) -> Self {
        self.staging_ttl = seconds;
        self
    }

    /// Staging transactions in flight at once (default 4).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    fn key(&self, parts: &[&[u8]]) -> Bytes {
        let mut key = self.prefix.to_vec();
        for part in parts {
            key.extend_from_slice(part);
        }
        key.into()
    }

    fn pointer(&self) -> Bytes {
        self.key(&[b"current"])
    }

    fn data(&self, generation: &str) -> Bytes {
        self.key(&[b"gen/", generation.as_bytes(), b"/"])
    }

    fn listed(&self, generation: &str) -> Bytes {
        self.key(&[b"gens/", generation.as_bytes()])
    }

    fn staging(&self, generation: &str) -> Bytes {
        self.key(&[b"staging/", generation.as_bytes()])
    }

    /// The current generation, read linearizably, or `None` before the first commit.
    pub async fn current(&self) -> Result<Option<GenerationView>> {
        Ok(self.read_pointer().await?.0.map(|(generation, revision)| {
            let client = self.client.with_namespace(self.data(&generation));
            GenerationView {
                client,
                generation,
                revision,
            }
        }))
    }

    /// The current generation and the revision read at; the pointer's mod revision (0: none).
    async fn read_pointer(&self) -> Result<(Option<(String, i64)>, i64)> {
        let answer = self.client.range(self.pointer()).await?;
        let revision = answer.revision();
        Ok(match answer.kvs().first() {
            Some(kv) => (Some((name(kv.value())?, revision)), kv.mod_revision()),
            None => (None, 0),
        })
    }

    /// Writes `entries` as a new generation and makes it current, replacing the whole
    /// current generation at once. Each key once (with repeats, which value stays is not
    /// defined). Fails with [`Error::CommitConflict`] when another commit made its
    /// generation current first; on any failure, what it staged is removed.
    pub async fn commit<K, V>(&self, entries: impl IntoIterator<Item = (K, V)>) -> Result<Committed>
    where
        K: IntoBytes,
        V: IntoBytes,
    {
        let (current, pointer_revision) = self.read_pointer().await?;
        let current = current.map(|(generation, _)| generation);
        self.collect(current.as_deref()).await?;
        let generation = fresh_name();
        let keeper = self
            .client
            .grant_lease(self.staging_ttl)
            .await?
            .keep_alive()
            .await?;
        let staged = async {
            self.client
                .txn()
                .and_then([
                    TxnOp::put(self.listed(&generation), ""),
                    TxnOp::put_with_lease(self.staging(&generation), "", keeper.id()),
                ])
                .await?;
            self.stage(&generation, entries).await
        }
        .await;
        // The error, and whether it is the flip's (whose outcome decides what to remove).
        let result = match staged {
            Ok(keys) => match self
                .flip(&generation, pointer_revision, current.as_deref())
                .await
            {
                Ok(revision) => Ok(Committed {
                    generation: generation.clone(),
                    revision,
                    keys,
                }),
                Err(e) => Err((e, true)),
            },
            Err(e) => Err((e, false)),
        };
        let _ = keeper.revoke().await;
        match result {
            Ok(committed) => {
                if let Some(old) = current {
                    // Best effort: a generation left here is removed by the next commit.
                    let _ = self.remove(&old).await;
                }
                Ok(committed)
            }
            // Perhaps current: left as it is (a later commit removes it if it is not).
            Err((e, true)) if e.is_outcome_unknown() => Err(e),
            Err((e, _)) => {
                let _ = self.remove(&generation).await;
                Err(e)
            }
        }
    }

    /// Writes the entries under the generation's prefix; how many.
    async fn stage<K, V>(
        &self,
        generation: &str,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<u64>
    where
        K: IntoBytes,
        V: IntoBytes,
    {
        let staging = self.client.with_namespace(self.data(generation));
        let mut batch = staging.batch().concurrency(self.concurrency);
        let mut failed = None;
        let mut keys = 0;
        for (key, value) in entries {
            if let Err(e) = batch.push(TxnOp::put(key, value)).await {
                failed = Some(e);
                break;
            }
            keys += 1;
            if failed.is_none() {
                failed = batch.results().find_map(|r| r.into_result().err());
            }
            if failed.is_some() {
                break;
            }
        }
        // Waits for every transaction sent, so that none applies after a clean-up.
        for result in batch.finish().await {
            if failed.is_none() {
                failed = result.into_result().err();
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(keys),
        }
    }

    /// The transaction that makes `generation` current if the pointer is as read when the
    /// commit began and the staging marker still exists; its revision.
    async fn flip(
        &self,
        generation: &str,
        pointer_revision: i64,
        current: Option<&str>,
    ) -> Result<i64> {
        let txn = self
            .client
            .txn()
            .when([
                Compare::mod_revision(self.pointer()).eq(pointer_revision),
                Compare::version(self.staging(generation)).gt(0),
            ])
            .and_then([
                TxnOp::put(self.pointer(), generation),
                TxnOp::delete(self.staging(generation)),
            ]);
        match txn.await {
            Ok(answer) if answer.succeeded() => Ok(answer.revision()),
            Ok(_) => Err(self.conflict(current).await),
            Err(e) if e.is_outcome_unknown() => {
                // Learn the outcome from the pointer itself.
                match self.read_pointer().await {
                    Ok((Some((now, revision)), _)) if now == generation => Ok(revision),
                    Ok(_) => Err(self.conflict(current).await),
                    Err(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn conflict(&self, fallback: Option<&str>) -> Error {
        let current = match self.read_pointer().await {
            Ok((now, _)) => now.map(|(generation, _)| generation),
            Err(_) => fallback.map(str::to_string),
        };
        Error::CommitConflict {
            prefix: String::from_utf8_lossy(&self.prefix).into_owned(),
            current,
        }
    }

    /// Deletes a generation's key-values and its entry in the list.
    async fn remove(&self, generation: &str) -> Result<()> {
        let data = self.data(generation);
        self.client
            .txn()
            .and_then([
                TxnOp::from(self.client.delete(data.clone()).end(prefix_end(&data))),
                TxnOp::delete(self.listed(generation)),
                TxnOp::delete(self.staging(generation)),
            ])
            .await?;
        Ok(())
    }

    /// Removes the generations that are neither current nor being staged (their
    /// committer's lease is gone): left by a committer that stopped, or an old generation
    /// whose removal failed. Returns how many.
    pub async fn collect_garbage(&self) -> Result<usize> {
        let current = self
            .read_pointer()
            .await?
            .0
            .map(|(generation, _)| generation);
        self.collect(current.as_deref()).await
    }

    async fn collect(&self, current: Option<&str>) -> Result<usize> {
        let listed = self.key(&[b"gens/"]);
        let staging = self.key(&[b"staging/"]);
        let names = |kvs: &[KeyValue], prefix: &Bytes| -> Vec<Bytes> {
            kvs.iter()
                .filter_map(|kv| kv.key().strip_prefix(prefix.as_ref()))
                .map(Bytes::copy_from_slice)
                .collect()
        };
        let all = self
            .client
            .range(listed.clone())
            .prefix()
            .keys_only()
            .await?;
        let busy = self
            .client
            .range(staging.clone())
            .prefix()
            .keys_only()
            .await?;
        let busy = names(busy.kvs(), &staging);
        let mut removed = 0;
        for generation in names(all.kvs(), &listed) {
            let Ok(generation) = std::str::from_utf8(&generation) else {
                continue;
            };
            if Some(generation) == current || busy.iter().any(|b| b == generation.as_bytes()) {
                continue;
            }
            self.remove(generation).await?;
            removed += 1;
        }
        Ok(removed)
    }
}

impl GenerationView {
    /// The generation's name.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    /// The revision the view reads at.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// A key of the generation, as it was at the view's revision.
    pub async fn get(&self, key: impl IntoBytes) -> Result<Option<KeyValue>> {
        let answer = self.client.range(key).revision(self.revision).await?;
        Ok(answer.kvs().first().cloned())
    }

    /// The key-values of the generation starting with `prefix` (an empty prefix: all),
    /// read page by page at the view's revision.
    pub fn scan(&self, prefix: impl IntoBytes) -> Scan {
        self.client.scan(prefix).prefix().revision(self.revision)
    }

    /// How many keys of the generation start with `prefix` (an empty prefix: all).
    pub async fn count(&self, prefix: impl IntoBytes) -> Result<i64> {
        let answer = self
            .client
            .range(prefix)
            .prefix()
            .revision(self.revision)
            .count_only()
            .await?;
        Ok(answer.count())
    }
}

/// A generation's name from the pointer's value.
fn name(value: &[u8]) -> Result<String> {
    match std::str::from_utf8(value) {
        Ok(name) if !name.is_empty() && !name.contains('/') => Ok(name.to_string()),
        _ => Err(Error::Protocol(format!(
            "the generation pointer holds {:?}, not a generation name",
            String::from_utf8_lossy(value)
        ))),
    }
}

/// A name no other commit picks: the time in milliseconds and 32 random bits, in hex.
fn fresh_name() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{millis:x}-{:08x}", rand::random::<u32>())
}
