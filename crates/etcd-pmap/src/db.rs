//! The database: a client, an optional key prefix, limits, and transactions.

use crate::error::{Error, Result};
use crate::txn::{Limits, ReadTxn, WriteTxn};
use bytes::Bytes;
use etcd_kv::{Backoff, Client, IntoBytes, ServerStatus};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A database of typed tables over etcd: tables live under `prefix + slot`, and
/// transactions read a snapshot and commit atomically with conflict checks.
///
/// Cheap to clone (an `Arc` inside); clones share everything.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    /// The client, in the database's namespace (the prefix).
    client: Client,
    prefix: Bytes,
    limits: Limits,
    retry: ConflictRetry,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("prefix", &self.inner.prefix)
            .field("limits", &self.inner.limits)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// A database at the root of the keyspace, with the client's limits (see
    /// [`etcd_kv::Limits`]).
    pub fn new(client: Client) -> Database {
        Database::builder(client).build()
    }

    /// A builder for a database under a key prefix, or with other limits.
    pub fn builder(client: Client) -> DatabaseBuilder {
        let limits = client.limits();
        DatabaseBuilder {
            client,
            prefix: Bytes::new(),
            limits: Limits {
                max_txn_ops: limits.max_txn_ops,
                max_request_bytes: limits.max_request_bytes,
            },
            retry: ConflictRetry::default(),
        }
    }

    /// The client in the database's namespace: raw keys are `slot (u16, big-endian) + key`.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The database's key prefix (empty for none).
    pub fn prefix(&self) -> &[u8] {
        &self.inner.prefix
    }

    pub(crate) fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The server's status (version, revision, database size, leader).
    pub async fn status(&self) -> Result<ServerStatus> {
        Ok(self.inner.client.status().await?)
    }

    /// Starts a read-only transaction. Nothing is sent until its first read.
    #[must_use = "a read transaction reads nothing until a table read is given it"]
    pub fn begin_read(&self) -> ReadTxn {
        ReadTxn::new(self.client().clone(), self.limits())
    }

    /// Starts a read-write transaction that you commit yourself: nothing is sent until its
    /// first read or its commit, and **nothing is written without
    /// [`commit`](WriteTxn::commit)**: a transaction dropped with writes discards them, and
    /// panics in debug builds (a `tracing` warning in release builds) so that a forgotten
    /// commit cannot go unnoticed; [`abort`](WriteTxn::abort) discards on purpose.
    /// [`Database::transact`] commits for you.
    #[must_use = "a write transaction applies nothing until `.commit().await`"]
    pub fn begin_write(&self) -> WriteTxn {
        WriteTxn::new(self.client().clone(), self.limits())
    }

    /// Runs `body` in a write transaction and commits it when `body` returns `Ok`: the way
    /// to write (txaioetcd's `async with db.begin(write=True)`). On [`Error::Conflict`] (or a
    /// snapshot compacted away while the body read, `etcd_kv::Error::Compacted`), waits a
    /// jittered, growing delay and runs it again on a fresh snapshot, at most
    /// [`ConflictRetry::max_attempts`] times in all (then returns the last error).
    /// Any other error, from the body or the commit, is returned at once, nothing applied
    /// (or, for a commit whose outcome is unknown, see [`etcd_kv::Error::is_outcome_unknown`]).
    ///
    /// The body gets its own handle on the transaction and may run several times: keep
    /// side effects out of it. End it early with `Err(Error::abort(your_error))`.
    ///
    /// Cancel safety: dropped before the commit is sent, nothing is applied; dropped while
    /// the commit is in flight, the outcome is unknown.
    ///
    /// ```no_run
    /// # async fn demo(db: etcd_pmap::Database) -> etcd_pmap::Result<()> {
    /// use etcd_pmap::{MapStringOid, Table};
    /// let counters: MapStringOid = Table::new(1, "counters");
    /// let key = "visits".to_string();
    /// let counters = &counters;
    /// let key = &key;
    /// let now = db
    ///     .transact(|txn| async move {
    ///         let n = counters.get(&txn, key).await?.unwrap_or(0) + 1;
    ///         counters.put(&txn, key, &n).await?;
    ///         Ok(n)
    ///     })
    ///     .await?;
    /// println!("visit number {now}");
    /// # Ok(()) }
    /// ```
    ///
    /// `?` works in the body on this crate's errors, on etcd-kv's, and on decoding errors
    /// ([`std::str::Utf8Error`] from `value_str()`, a failed `parse()` of a number, a
    /// `serde_json` error): these end the body with [`Error::Aborted`], as
    /// [`Error::abort`] does with an error of your own. The body returns this crate's
    /// [`Result`] (not a type parameter of yours) so that `Ok(..)` needs no annotation and
    /// [`Error::Conflict`] stays visible to the retry loop; get your error back with
    /// [`Error::downcast_aborted_ref`].
    ///
    /// ```no_run
    /// # async fn demo(db: etcd_pmap::Database) -> etcd_pmap::Result<()> {
    /// use etcd_pmap::{Error, MapStringBinary, Table};
    /// let notes: MapStringBinary = Table::new(2, "notes");
    /// let (notes, key) = (&notes, &"todo".to_string());
    /// let outcome = db
    ///     .transact(|txn| async move {
    ///         let raw = notes.get(&txn, key).await?.unwrap_or_default();
    ///         let text = std::str::from_utf8(&raw)?; // Utf8Error -> Error::Aborted
    ///         if text.len() > 100 {
    ///             return Err(Error::abort(std::io::Error::other("note full"))); // yours
    ///         }
    ///         notes.put(&txn, key, &format!("{text}!").into_bytes().into()).await?;
    ///         Ok(text.len() + 1)
    ///     })
    ///     .await;
    /// match outcome {
    ///     Ok(len) => println!("{len} bytes"),
    ///     Err(e) if e.downcast_aborted_ref::<std::io::Error>().is_some() => println!("{e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn transact<F, Fut, T>(&self, mut body: F) -> Result<T>
    where
        F: FnMut(WriteTxn) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let retry = self.inner.retry;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let txn = WriteTxn::managed(self.client().clone(), self.limits());
            let outcome = match body(txn.clone()).await {
                Ok(value) => txn.commit().await.map(|_| value),
                Err(e) => {
                    txn.abort();
                    Err(e)
                }
            };
            match outcome {
                Err(e) if retriable(&e) && attempt < retry.max_attempts => {
                    tokio::time::sleep(retry.delay(attempt)).await;
                }
                other => return other,
            }
        }
    }
}

/// Builds a [`Database`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DatabaseBuilder {
    client: Client,
    prefix: Bytes,
    limits: Limits,
    retry: ConflictRetry,
}

impl DatabaseBuilder {
    /// Puts every key of the database under this prefix, so that several databases (or
    /// test runs) share one etcd.
    pub fn prefix(mut self, prefix: impl IntoBytes) -> Self {
        self.prefix = prefix.into_bytes();
        self
    }

    /// The server's `--max-txn-ops` (default 128): a commit with more compares or more
    /// writes is refused before sending. The client's own `max_txn_ops` must allow it too.
    pub fn max_txn_ops(mut self, n: usize) -> Self {
        self.limits.max_txn_ops = n;
        self
    }

    /// The server's `--max-request-bytes` (default 1.5 MiB): a commit estimated larger is
    /// refused before sending.
    pub fn max_request_bytes(mut self, n: usize) -> Self {
        self.limits.max_request_bytes = n;
        self
    }

    /// How [`Database::transact`] retries conflicts.
    pub fn conflict_retry(mut self, retry: ConflictRetry) -> Self {
        self.retry = retry;
        self
    }

    /// Builds the database (nothing is sent).
    pub fn build(self) -> Database {
        let client = if self.prefix.is_empty() {
            self.client
        } else {
            self.client.with_namespace(self.prefix.clone())
        };
        Database {
            inner: Arc::new(Inner {
                client,
                prefix: self.prefix,
                limits: self.limits,
                retry: self.retry,
            }),
        }
    }
}

/// How [`Database::transact`] retries a transaction that hit a conflict: up to
/// `max_attempts` runs in all, sleeping between them a random delay of up to
/// `initial_backoff × 2^(attempt−1)`, capped at `max_backoff` ("full jitter").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConflictRetry {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for ConflictRetry {
    /// 16 attempts, 10 ms doubling up to 1 s.
    fn default() -> Self {
        ConflictRetry {
            max_attempts: 16,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl ConflictRetry {
    /// How many times the body may run in all (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The first backoff's upper bound.
    pub fn initial_backoff(mut self, d: Duration) -> Self {
        self.initial_backoff = d;
        self
    }

    /// The cap on any backoff.
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// Runs once, never retries.
    pub fn none() -> Self {
        ConflictRetry::default().max_attempts(1)
    }

    /// The backoff after a conflict: uniform between 0 and `initial_backoff × 2^(n−1)`
    /// capped at `max_backoff`, i.e. etcd-kv's [`Backoff`] at half those values with full
    /// (±100 %) jitter.
    fn backoff(&self) -> Backoff {
        let initial = self.initial_backoff.min(self.max_backoff);
        Backoff::new(initial / 2, self.max_backoff / 2).with_jitter(1.0)
    }

    fn delay(&self, attempt: u32) -> Duration {
        self.backoff().delay(attempt.saturating_sub(1))
    }
}

/// What [`Database::transact`] runs again: nothing was applied and a fresh snapshot may
/// succeed.
fn retriable(e: &Error) -> bool {
    matches!(
        e,
        Error::Conflict { .. } | Error::Kv(etcd_kv::Error::Compacted { .. })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_and_capped() {
        let retry = ConflictRetry::default()
            .initial_backoff(Duration::from_millis(10))
            .max_backoff(Duration::from_millis(100));
        for attempt in 1..40 {
            let cap = Duration::from_millis(10 * (1u64 << (attempt - 1).min(20)))
                .min(Duration::from_millis(100));
            assert!(retry.delay(attempt) <= cap, "attempt {attempt}");
        }
        assert_eq!(ConflictRetry::none().max_attempts, 1);
        assert_eq!(ConflictRetry::default().max_attempts(0).max_attempts, 1);
    }

    #[test]
    fn only_conflicts_and_compacted_snapshots_are_retried() {
        assert!(retriable(&Error::Conflict { read_revision: 3 }));
        assert!(retriable(&Error::Kv(etcd_kv::Error::Compacted {
            compact_revision: 2
        })));
        assert!(!retriable(&Error::Finished));
        assert!(!retriable(&Error::UniqueViolation {
            index: "i".into(),
            key: "k".into()
        }));
    }
}
