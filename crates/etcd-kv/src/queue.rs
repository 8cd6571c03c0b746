//! A multi-producer, multi-consumer queue with priorities, each item delivered once.
//!
//! Items are keys `<name>/<65535 - priority, 5 digits>/<push time in ns, 20 digits>-<random>`:
//! the first key is the most urgent item, and the oldest of its priority. Reading the first
//! keys costs the same however long the queue is (no server-side sort).
//!
//! A consumer reads the first few keys, then sends one transaction that deletes the first
//! of them still there, provided no key sorts before it (nested transactions, etcd 3.3+).
//! The delete that succeeds is the delivery, so each item goes to exactly one consumer, and
//! consumers racing for the head each take a different item in one round trip. The keys
//! read are remembered: the next pops try them without reading again, until none is left.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::key::IntoBytes;
use crate::txn::{Compare, Txn, TxnOp, TxnResponse};
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The priority of [`Queue::push`]: the least urgent.
pub const DEFAULT_PRIORITY: u16 = 0;

/// How many head items one pop tries to take in its transaction.
const CANDIDATES: i64 = 8;

/// A FIFO queue under a key prefix, shared by any number of producers and consumers.
///
/// ```no_run
/// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
/// let jobs = etcd_kv::Queue::new(&client, "queues/jobs");
/// jobs.push("resize image 17").await?;
/// jobs.push_with_priority("page the on-call", 10).await?;   // served first
/// assert_eq!(jobs.pop().await?, "page the on-call");
/// assert_eq!(jobs.pop().await?, "resize image 17");
/// # Ok(()) }
/// ```
///
/// Items are keys `<name>/<65535 - priority, 5 digits>/<push time in ns>-<random>`: the
/// first key is the next item. A pop reads the first few keys, then sends one transaction
/// that deletes the first of them still there with no key before it (nested transactions,
/// etcd 3.3+); consumers racing for the head each take a different item in one round trip.
/// Every key under `<name>/` counts as an item: keep other keys out of it.
///
/// # Order
///
/// Higher priorities first; within a priority, by push time as read from the pushing
/// process's clock (strictly increasing within a process, so each producer's items keep
/// their order; producers on machines whose clocks differ are ordered by their clocks).
/// Each pop takes the item that sorts first at that moment.
///
/// # Delivery
///
/// An item is delivered by the transaction that deletes it, so no two consumers get the
/// same item. A pop whose transaction has been sent may have taken an item even if the
/// caller never sees it: when the pop future is dropped at that moment, or when the answer
/// is lost ([`Error::is_outcome_unknown`]). Waiting, by contrast, is cancel safe, and
/// [`Queue::pop_timeout`] and [`Queue::pop_batch`] only give up while waiting.
///
/// # Resources
///
/// Clones share one state. Once a pop has had to wait, the queue keeps one watch open
/// (a background task and its connection) for the next waits, until the queue and all its
/// clones are dropped.
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    /// `<name>/`.
    prefix: Bytes,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// The first keys as last read, minus those known gone since: `(key, create revision)`.
    head: Mutex<Vec<(Bytes, i64)>>,
    /// Counts the puts under the prefix, once a pop has waited.
    puts: Mutex<Option<PutWatcher>>,
}

/// A task that watches puts under the queue's prefix and bumps a counter for each batch.
#[derive(Debug)]
struct PutWatcher {
    puts: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PutWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How many items a pop takes.
#[derive(Debug, Clone, Copy)]
enum Batch {
    One,
    UpTo(usize),
}

/// What one attempt to take items found.
enum Take {
    /// Items taken, in queue order (at least one).
    Items(Vec<Bytes>),
    /// The queue was empty.
    Empty,
    /// Others took the items seen, or items sorting before them appeared: look again.
    Raced,
}

impl Queue {
    /// The queue stored under `<name>/`; nothing is sent until used.
    pub fn new(client: &Client, name: impl IntoBytes) -> Queue {
        let mut prefix = name.into_bytes().to_vec();
        prefix.push(b'/');
        Queue {
            client: client.clone(),
            prefix: Bytes::from(prefix),
            shared: Arc::default(),
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &[u8] {
        &self.prefix[..self.prefix.len() - 1]
    }

    /// An empty name is refused before anything is sent.
    fn check_name(&self) -> Result<()> {
        crate::claim::check_name("queue", "Queue::new(&client, \"jobs\")", self.name())
    }

    /// Appends an item with [`DEFAULT_PRIORITY`].
    pub async fn push(&self, value: impl IntoBytes) -> Result<()> {
        self.push_with_priority(value, DEFAULT_PRIORITY).await
    }

    /// Appends an item; items of higher priority pop first.
    ///
    /// Not retried on an unknown outcome ([`Error::is_outcome_unknown`]): the item may or
    /// may not be queued.
    pub async fn push_with_priority(&self, value: impl IntoBytes, priority: u16) -> Result<()> {
        self.check_name()?;
        let value = value.into_bytes();
        let bucket = bucket(&self.prefix, priority);
        loop {
            let mut key = bucket.to_vec();
            let suffix = format!("{:020}-{:016x}", push_time(), rand::random::<u64>());
            key.extend_from_slice(suffix.as_bytes());
            let key = Bytes::from(key);
            let created = self
                .client
                .txn()
                .when([Compare::create_revision(&key).eq(0)])
                .and_then([TxnOp::put(&key, &value)])
                .await?
                .succeeded();
            if created {
                return Ok(());
            }
        }
    }

    /// Appends several items with [`DEFAULT_PRIORITY`] in one transaction: all or none are
    /// queued, in this order. At most the server's `--max-txn-ops` items (default 128).
    pub async fn push_all<I, V>(&self, values: I) -> Result<()>
    where
        I: IntoIterator<Item = V>,
        V: IntoBytes,
    {
        self.check_name()?;
        let values: Vec<Bytes> = values.into_iter().map(IntoBytes::into_bytes).collect();
        let bucket = bucket(&self.prefix, DEFAULT_PRIORITY);
        loop {
            let random = rand::random::<u64>();
            let mut compares = Vec::new();
            let mut puts = Vec::new();
            for value in &values {
                let mut key = bucket.to_vec();
                key.extend_from_slice(format!("{:020}-{random:016x}", push_time()).as_bytes());
                compares.push(Compare::create_revision(&key).eq(0));
                puts.push(TxnOp::put(key, value));
            }
            if puts.is_empty() {
                return Ok(());
            }
            let created = self
                .client
                .txn()
                .when(compares)
                .and_then(puts)
                .await?
                .succeeded();
            if created {
                return Ok(());
            }
        }
    }

    /// Takes the first item if there is one, without waiting.
    pub async fn try_pop(&self) -> Result<Option<Bytes>> {
        Ok(self
            .pop_until(Batch::One, Some(Instant::now()))
            .await?
            .pop())
    }

    /// Takes the first item, waiting (with a watch) for one when the queue is empty.
    pub async fn pop(&self) -> Result<Bytes> {
        loop {
            if let Some(value) = self.pop_until(Batch::One, None).await?.pop() {
                return Ok(value);
            }
        }
    }

    /// Takes the first item, waiting at most `timeout` for one; `None` when none came.
    pub async fn pop_timeout(&self, timeout: Duration) -> Result<Option<Bytes>> {
        let deadline = Instant::now().checked_add(timeout);
        Ok(self.pop_until(Batch::One, deadline).await?.pop())
    }

    /// Takes the first `max` items, or as many as there are, in one transaction, waiting at
    /// most `timeout` for the first one: one round trip for many items. Empty when none came.
    pub async fn pop_batch(&self, max: usize, timeout: Duration) -> Result<Vec<Bytes>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now().checked_add(timeout);
        self.pop_until(Batch::UpTo(max), deadline).await
    }

    /// How many items are queued.
    pub async fn count(&self) -> Result<i64> {
        self.check_name()?;
        Ok(self
            .client
            .range(&self.prefix)
            .prefix()
            .count_only()
            .await?
            .count())
    }

    /// Takes items, waiting for some until `deadline` (`None`: no deadline).
    ///
    /// After an empty read, it subscribes to the queue's put watcher (a watch from "now")
    /// and reads again before waiting: a watch from a past revision would be served by
    /// etcd's catch-up loop, which runs every 100 ms.
    async fn pop_until(&self, batch: Batch, deadline: Option<Instant>) -> Result<Vec<Bytes>> {
        self.check_name()?;
        let mut puts: Option<watch::Receiver<u64>> = None;
        loop {
            let taken = match batch {
                Batch::One => self.take().await?,
                Batch::UpTo(max) => self.take_batch(max).await?,
            };
            match taken {
                Take::Items(items) => return Ok(items),
                Take::Raced => continue,
                Take::Empty => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(Vec::new());
            }
            let Some(signal) = &mut puts else {
                let mut signal = self.put_signal().await?;
                signal.borrow_and_update();
                puts = Some(signal);
                continue;
            };
            let changed = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, signal.changed()).await {
                    Ok(changed) => changed,
                    Err(_) => return Ok(Vec::new()),
                },
                None => signal.changed().await,
            };
            if changed.is_err() {
                // The watcher ended (its watch failed): start another one.
                puts = None;
            }
        }
    }

    /// A receiver of the put counter, starting the put watcher if needed.
    async fn put_signal(&self) -> Result<watch::Receiver<u64>> {
        if let Some(watcher) = &*self.lock_puts() {
            if !watcher.task.is_finished() {
                return Ok(watcher.puts.clone());
            }
        }
        let mut stream = self.client.watch(&self.prefix).prefix().no_delete().await?;
        let (tx, rx) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            while let Some(Ok(_)) = stream.next().await {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        });
        let mut puts = self.lock_puts();
        match &*puts {
            // Another task started one meanwhile: use it (ours stops when dropped).
            Some(watcher) if !watcher.task.is_finished() => Ok(watcher.puts.clone()),
            _ => {
                *puts = Some(PutWatcher {
                    puts: rx.clone(),
                    task,
                });
                Ok(rx)
            }
        }
    }

    fn lock_puts(&self) -> std::sync::MutexGuard<'_, Option<PutWatcher>> {
        self.shared
            .puts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One attempt to take up to `max` items: read the first keys, then delete them all if
    /// no key sorting before the last one appeared since (whatever others took meanwhile).
    async fn take_batch(&self, max: usize) -> Result<Take> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let read = self
            .client
            .range(&self.prefix)
            .prefix()
            .limit(limit)
            .keys_only()
            .await?;
        let Some(last) = read.kvs().last() else {
            return Ok(Take::Empty);
        };
        let mut end = last.key().to_vec();
        end.push(0);
        let answer = self
            .client
            .txn()
            .when([Compare::create_revision(&self.prefix)
                .end(&end)
                .lt(read.revision() + 1)])
            .and_then([self.client.delete(&self.prefix).end(&end).prev_kv().into()])
            .await?;
        let items: Vec<Bytes> = answer
            .responses()
            .first()
            .and_then(|r| r.as_delete())
            .map(|d| d.prev_kvs().iter().map(|kv| kv.value_bytes()).collect())
            .unwrap_or_default();
        Ok(if items.is_empty() {
            Take::Raced
        } else {
            Take::Items(items)
        })
    }

    /// One attempt: take from the remembered head, or read the head and take from it.
    async fn take(&self) -> Result<Take> {
        let remembered = self.lock_head().clone();
        if !remembered.is_empty() {
            if let Some(value) = self.take_first_of(&remembered).await? {
                return Ok(Take::Items(vec![value]));
            }
        }
        let read = self
            .client
            .range(&self.prefix)
            .prefix()
            .limit(CANDIDATES)
            .keys_only()
            .await?;
        if read.kvs().is_empty() {
            return Ok(Take::Empty);
        }
        let head: Vec<(Bytes, i64)> = read
            .kvs()
            .iter()
            .map(|kv| (kv.key_bytes(), kv.create_revision()))
            .collect();
        *self.lock_head() = head.clone();
        Ok(match self.take_first_of(&head).await? {
            Some(value) => Take::Items(vec![value]),
            None => Take::Raced,
        })
    }

    /// Deletes the first of `head`'s keys that is still there with no key before it:
    /// `if [prefix, k0) is empty && k0 exists { delete k0 } else if [prefix, k1) is empty &&
    /// k1 exists { delete k1 } else ...`. Updates the remembered head; returns the value.
    async fn take_first_of(&self, head: &[(Bytes, i64)]) -> Result<Option<Bytes>> {
        let mut txn: Option<Txn<'_>> = None;
        for (key, create_revision) in head.iter().rev() {
            let mut step = self
                .client
                .txn()
                .when([
                    Compare::version(&self.prefix).end(key).eq(0),
                    Compare::create_revision(key).eq(*create_revision),
                ])
                .and_then([self.client.delete(key).prev_kv().into()]);
            if let Some(inner) = txn.take() {
                step = step.or_else([TxnOp::txn(inner)]);
            }
            txn = Some(step);
        }
        let Some(txn) = txn else {
            return Ok(None);
        };
        let taken = taken(&txn.await?)?;
        let mut remembered = self.lock_head();
        match &taken {
            // The key taken and every key before it are gone.
            Some((depth, _)) => {
                let last_gone = &head[*depth].0;
                remembered.retain(|(key, _)| key > last_gone);
            }
            // All gone, or a key sorting before them appeared: read again next time.
            None => remembered.clear(),
        }
        Ok(taken.map(|(_, value)| value))
    }

    fn lock_head(&self) -> std::sync::MutexGuard<'_, Vec<(Bytes, i64)>> {
        self.shared
            .head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The push time in nanoseconds, strictly increasing within this process so that one
/// producer's items keep their order.
fn push_time() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// How deep in the nested take transaction a delete ran, and the value it deleted.
fn taken(answer: &TxnResponse) -> Result<Option<(usize, Bytes)>> {
    let mut level = answer;
    let mut depth = 0;
    loop {
        let first = level.responses().first();
        if level.succeeded() {
            return first
                .and_then(|r| r.as_delete())
                .and_then(|d| d.prev_kvs().first())
                .map(|kv| Some((depth, kv.value_bytes())))
                .ok_or_else(|| Error::Protocol("a queue take deleted no key".into()));
        }
        match first.and_then(|r| r.as_txn()) {
            Some(inner) => level = inner,
            None => return Ok(None),
        }
        depth += 1;
    }
}

/// `<prefix><65535 - priority, 5 digits>/`.
fn bucket(prefix: &[u8], priority: u16) -> Bytes {
    let mut b = prefix.to_vec();
    b.extend_from_slice(format!("{:05}/", u16::MAX - priority).as_bytes());
    Bytes::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_sort_by_urgency() {
        let high = bucket(b"q/", 10);
        let default = bucket(b"q/", DEFAULT_PRIORITY);
        assert_eq!(&default[..], b"q/65535/");
        assert_eq!(&high[..], b"q/65525/");
        assert!(high < default);
        let (a, b) = (push_time(), push_time());
        assert!(a < b && format!("{a:020}").len() == 20);
    }
}
