//! [`Batch`]: many independent puts and deletes written as few transactions, each within
//! the server's `--max-txn-ops` and `--max-request-bytes`, with a result per operation.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::txn::{Compare, TxnOp, TxnResponse, WriteTarget};
use bytes::Bytes;
use std::collections::{HashSet, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Bytes counted per operation besides its keys and values (protobuf framing), so that a
/// transaction's encoded size stays within `--max-request-bytes`.
const OP_OVERHEAD: usize = 32;

/// Writes many independent puts and deletes as few transactions: each holds as many
/// operations as the server's `--max-txn-ops` allows and as many bytes as its
/// `--max-request-bytes` does (the client's [`max_txn_ops`](crate::ClientBuilder::max_txn_ops)
/// and [`max_request_bytes`](crate::ClientBuilder::max_request_bytes)), and each operation
/// gets the result of its transaction. For loaders, migrations and imports.
///
/// ```no_run
/// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
/// use etcd_kv::TxnOp;
/// let mut batch = client.batch();
/// for i in 0..10_000 {
///     batch.push(TxnOp::put(format!("items/{i:05}"), "new")).await?;
/// }
/// batch.push(TxnOp::delete("items/old")).await?;
/// for result in batch.finish().await {
///     match result.revision() {
///         Some(revision) => println!("operations {:?} applied at {revision}", result.ops()),
///         None => eprintln!("operations {:?}: {}", result.ops(), result.error().unwrap()),
///     }
/// }
/// # Ok(()) }
/// ```
///
/// What it guarantees: each transaction applies whole or not at all, and a batch is not
/// atomic beyond one (see [`Generations`](crate::Generations) for that). Operations are
/// numbered from 0 in the order pushed; a [`BatchResult`] names the operations of one
/// transaction. A transaction whose fate is unknown
/// ([`is_outcome_unknown`](Error::is_outcome_unknown)) is reported so, never sent again.
/// Two writes of one key go to different transactions (etcd refuses a transaction that
/// writes a key twice), and a delete of a key range goes alone.
///
/// Order: with the default [`concurrency`](Self::concurrency) of 1, transactions are sent
/// one after the other, in the order of the operations. With more, up to that many are in
/// flight at once and may apply in any order: only for writes of distinct keys.
///
/// Memory: the operations of the transactions in flight and of the one being filled, and
/// the results not yet taken ([`results`](Self::results) takes them as they settle).
/// Dropping a batch does not stop the transactions it has sent.
#[derive(Debug)]
#[must_use = "a batch sends its last transaction when finished"]
pub struct Batch {
    client: Client,
    max_ops: usize,
    max_bytes: usize,
    concurrency: usize,
    ops: Vec<TxnOp>,
    /// The compares of `ops` (see [`Batch::push_if`]).
    compares: Vec<Compare>,
    /// The compare each transaction gets from the revision of the last one applied.
    guard: Option<Guard>,
    /// Send nothing more once a transaction did not apply ([`Batch::stop_at_failure`]).
    stop_at_failure: bool,
    /// A settled transaction did not apply.
    failed: bool,
    /// The keys written by `ops`, and whether `ops` is a range delete (alone).
    keys: HashSet<Bytes>,
    range: bool,
    bytes: usize,
    /// The number of the next operation pushed; the first pending one is `next - ops.len()`.
    next: u64,
    in_flight: VecDeque<(Range<u64>, JoinHandle<Result<TxnResponse>>)>,
    settled: VecDeque<BatchResult>,
}

/// The compare a guarded batch adds to each transaction, and the revision it is made of.
struct Guard {
    make: Arc<dyn Fn(i64) -> Compare + Send + Sync>,
    revision: i64,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

/// The result of one transaction of a [`Batch`], for each of its operations.
#[derive(Debug)]
pub struct BatchResult {
    ops: Range<u64>,
    /// The revision when applied; `None` when its compares failed.
    result: Result<Option<i64>>,
}

impl BatchResult {
    /// The operations of the transaction, numbered in the order they were pushed from 0.
    pub fn ops(&self) -> Range<u64> {
        self.ops.clone()
    }

    /// The revision the transaction applied at; `None` when it failed or its compares
    /// did not hold.
    pub fn revision(&self) -> Option<i64> {
        self.result.as_ref().ok().copied().flatten()
    }

    /// True when the transaction's compares ([`Batch::push_if`], [`Batch::guard`]) did
    /// not hold: nothing of it applied.
    pub fn compares_failed(&self) -> bool {
        matches!(self.result, Ok(None))
    }

    /// Why the transaction failed (nothing applied, or, when
    /// [`is_outcome_unknown`](Error::is_outcome_unknown), perhaps applied).
    pub fn error(&self) -> Option<&Error> {
        self.result.as_ref().err()
    }

    /// The revision (`None`: the compares did not hold), or the error.
    pub fn into_result(self) -> Result<Option<i64>> {
        self.result
    }
}

impl Client {
    /// A [`Batch`] of independent puts and deletes, written as few transactions within
    /// the client's `max_txn_ops` and `max_request_bytes`.
    pub fn batch(&self) -> Batch {
        Batch {
            client: self.clone(),
            max_ops: self.inner.limits.max_txn_ops.max(1),
            max_bytes: self.inner.limits.max_request_bytes,
            concurrency: 1,
            ops: Vec::new(),
            compares: Vec::new(),
            guard: None,
            stop_at_failure: false,
            failed: false,
            keys: HashSet::new(),
            range: false,
            bytes: 0,
            next: 0,
            in_flight: VecDeque::new(),
            settled: VecDeque::new(),
        }
    }
}

impl Batch {
    /// Transactions in flight at once (default 1: sent in order). More are faster, and
    /// may apply in any order: only for writes of distinct keys.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The most operations (and the most compares) in one transaction (default: the
    /// client's `max_txn_ops`). Over the client's, transactions fail with
    /// [`Error::InvalidInput`] before they are sent.
    pub fn max_ops(mut self, n: usize) -> Self {
        self.max_ops = n.max(1);
        self
    }

    /// The most bytes of keys, values and compares in one transaction, counting 32 bytes
    /// of framing per operation (default: the client's `max_request_bytes`). Over the
    /// client's, transactions fail with [`Error::InvalidInput`] before they are sent.
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    /// Sends nothing more once a transaction did not apply (it failed, or its compares
    /// did not hold): the operations pushed after it stay queued, without a result, until
    /// [`abandon`](Self::abandon). For imports that stop at the first failure, so that
    /// what was applied is a known prefix of the transactions sent.
    pub fn stop_at_failure(mut self) -> Self {
        self.stop_at_failure = true;
        self
    }

    /// Optimistic concurrency over the whole batch: each transaction also compares
    /// `guard(revision)`, where `revision` is the store revision after the last
    /// transaction of the batch applied (`since` before the first), and applies only if it
    /// holds. Transactions then go one at a time (concurrency 1), each once the one before
    /// has applied. etcd-import's `--unchanged-since` is
    /// `guard(r, |r| Compare::mod_revision(prefix).prefix().lt(r + 1))`: nothing under the
    /// prefix changed but by the batch itself.
    pub fn guard(
        mut self,
        since: i64,
        guard: impl Fn(i64) -> Compare + Send + Sync + 'static,
    ) -> Self {
        self.guard = Some(Guard {
            make: Arc::new(guard),
            revision: since,
        });
        self.concurrency = 1;
        self
    }

    /// Queues `op` (a put, or a delete) and returns its number. It waits while
    /// `concurrency` transactions are in flight and this one must be sent. An operation
    /// that is not a put or a delete, or invalid (an empty key...), is refused with
    /// [`Error::InvalidInput`] and queues nothing. One larger alone than the byte limit
    /// goes in a transaction of its own, whose result says the client refused it.
    pub async fn push(&mut self, op: TxnOp) -> Result<u64> {
        self.push_if(op, []).await
    }

    /// Queues `op` to apply only if `compares` hold (with the rest of its transaction:
    /// when one compare fails, none of the transaction's operations applies, and its
    /// [`BatchResult::compares_failed`]). For writes guarded by what was read, such as
    /// etcd-import's check that a key's mod revision is unchanged.
    pub async fn push_if(
        &mut self,
        op: TxnOp,
        compares: impl IntoIterator<Item = Compare>,
    ) -> Result<u64> {
        let ns = &self.client.namespace;
        let compares: Vec<Compare> = compares.into_iter().collect();
        let mut cost = op.payload_len(ns)? + OP_OVERHEAD;
        for compare in &compares {
            cost += compare.payload_len(ns)? + OP_OVERHEAD;
        }
        let key = match op.write_target() {
            WriteTarget::Key(key) => Some(key.clone()),
            WriteTarget::Range => None,
            WriteTarget::Other => {
                return Err(Error::invalid(
                    "a batch writes: give it puts and deletes (TxnOp::put, TxnOp::delete, \
                     TxnOp::delete_prefix)",
                ))
            }
        };
        let guarded = usize::from(self.guard.is_some());
        let fits = !self.range
            && self.ops.len() < self.max_ops
            && self.compares.len() + compares.len() + guarded <= self.max_ops
            && self.bytes + cost <= self.max_bytes
            && key.as_ref().is_some_and(|k| !self.keys.contains(k));
        let stopped = self.stop_at_failure && self.failed;
        if !self.ops.is_empty() && !fits && !stopped {
            self.send().await;
        }
        match key {
            Some(key) => {
                self.keys.insert(key);
            }
            None => self.range = true,
        }
        self.ops.push(op);
        self.compares.extend(compares);
        self.bytes += cost;
        self.next += 1;
        Ok(self.next - 1)
    }

    /// Sends the operations queued so far as a transaction (without waiting for it).
    pub async fn flush(&mut self) {
        if !self.ops.is_empty() {
            self.send().await;
        }
    }

    /// The results of the transactions settled so far, in order (each once).
    pub fn results(&mut self) -> impl Iterator<Item = BatchResult> + '_ {
        self.settled.drain(..)
    }

    /// Sends what is queued, waits for every transaction, and returns the results not
    /// taken yet, in order.
    pub async fn finish(&mut self) -> Vec<BatchResult> {
        self.flush().await;
        self.wait_all().await
    }

    /// Drops what is queued (never sent: its operations get no result), waits for the
    /// transactions in flight, and returns the results not taken yet, in order.
    pub async fn abandon(&mut self) -> Vec<BatchResult> {
        self.next -= self.ops.len() as u64;
        self.ops.clear();
        self.compares.clear();
        self.keys.clear();
        self.range = false;
        self.bytes = 0;
        self.wait_all().await
    }

    /// How many transactions are in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    async fn wait_all(&mut self) -> Vec<BatchResult> {
        while !self.in_flight.is_empty() {
            self.settle_one().await;
        }
        self.settled.drain(..).collect()
    }

    async fn send(&mut self) {
        while self.in_flight.len() >= self.concurrency {
            self.settle_one().await;
        }
        if self.stop_at_failure && self.failed {
            return;
        }
        let ops = std::mem::take(&mut self.ops);
        let mut compares = std::mem::take(&mut self.compares);
        if let Some(guard) = &self.guard {
            compares.push((guard.make)(guard.revision));
        }
        let numbers = self.next - ops.len() as u64..self.next;
        self.keys.clear();
        self.range = false;
        self.bytes = 0;
        let client = self.client.clone();
        let task = tokio::spawn(async move { client.txn().when(compares).and_then(ops).await });
        self.in_flight.push_back((numbers, task));
    }

    async fn settle_one(&mut self) {
        let Some((ops, task)) = self.in_flight.pop_front() else {
            return;
        };
        let result = match task.await {
            Ok(answer) => answer.map(|r| r.succeeded().then(|| r.revision())),
            // The task stopped (a panic, the runtime shutting down) perhaps after
            // sending: the transaction may or may not have applied.
            Err(e) => Err(Error::from_transport(etcd_transport::Error::Io {
                endpoint: self.client.inner.backend.current_endpoint(),
                outcome_unknown: true,
                source: Box::new(e),
            })),
        };
        if let (Some(guard), Ok(Some(revision))) = (&mut self.guard, &result) {
            guard.revision = guard.revision.max(*revision);
        }
        self.failed |= !matches!(result, Ok(Some(_)));
        self.settled.push_back(BatchResult { ops, result });
    }
}
