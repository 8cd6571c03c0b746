//! A global counter: strictly increasing numbers handed out across processes.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::key::IntoBytes;
use crate::txn::{Compare, TxnOp};
use crate::types::KeyValue;
use bytes::Bytes;
use std::sync::Mutex;

/// A counter stored under one key as decimal text (`etcdctl get` shows it).
///
/// [`Sequence::next`] increments it with a compare-and-swap transaction, retried until it
/// wins, so every caller anywhere gets a different number and each caller's numbers
/// strictly increase. The first number is 1.
///
/// ```no_run
/// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
/// let ids = etcd_kv::Sequence::new(&client, "ids/orders");
/// let a = ids.next().await?;
/// let b = ids.next().await?;
/// assert!(b > a);
/// # Ok(()) }
/// ```
///
/// Cancelling `next` after its transaction was sent may use up a number without returning
/// it, and so may an error that leaves the outcome unknown: numbers are unique and
/// increasing, not gapless. Deleting the key restarts the counter at 1.
#[derive(Debug)]
pub struct Sequence {
    client: Client,
    key: Bytes,
    /// The last `(value, mod revision)` seen, to try the swap without a read first.
    last: Mutex<Option<(u64, i64)>>,
}

impl Clone for Sequence {
    fn clone(&self) -> Self {
        Sequence {
            client: self.client.clone(),
            key: self.key.clone(),
            last: Mutex::new(*self.lock_last()),
        }
    }
}

impl Sequence {
    /// A counter at `key`; nothing is sent until used.
    pub fn new(client: &Client, key: impl IntoBytes) -> Sequence {
        Sequence {
            client: client.clone(),
            key: key.into_bytes(),
            last: Mutex::new(None),
        }
    }

    /// The counter's key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The last number handed out by anyone (0 before the first).
    pub async fn current(&self) -> Result<u64> {
        self.check_key()?;
        let kv = self.client.get(&self.key).await?;
        Ok(self.parse(kv.as_ref())?.0)
    }

    /// Increments the counter and returns the new value.
    pub async fn next(&self) -> Result<u64> {
        self.check_key()?;
        let mut seen = *self.lock_last();
        loop {
            let (n, revision) = match seen {
                Some(s) => s,
                None => self.parse(self.client.get(&self.key).await?.as_ref())?,
            };
            let next = n.checked_add(1).ok_or_else(|| {
                Error::invalid(format!("the sequence at {:?} is at u64::MAX", self.key))
            })?;
            let answer = self
                .client
                .txn()
                .when([Compare::mod_revision(&self.key).eq(revision)])
                .and_then([TxnOp::put(&self.key, next.to_string())])
                .or_else([TxnOp::get(&self.key)])
                .await?;
            if answer.succeeded() {
                *self.lock_last() = Some((next, answer.revision()));
                return Ok(next);
            }
            let current = answer
                .responses()
                .first()
                .and_then(|r| r.as_range())
                .and_then(|r| r.kvs().first());
            seen = Some(self.parse(current)?);
        }
    }

    /// An empty key is refused before anything is sent.
    fn check_key(&self) -> Result<()> {
        crate::claim::check_name(
            "sequence",
            "Sequence::new(&client, \"ids/orders\")",
            &self.key,
        )
    }

    /// `(value, mod revision)` of the counter's key-value; `(0, 0)` when absent.
    fn parse(&self, kv: Option<&KeyValue>) -> Result<(u64, i64)> {
        let Some(kv) = kv else {
            return Ok((0, 0));
        };
        let n = kv
            .value_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "the value at {:?} is not a decimal counter: {:?}",
                    String::from_utf8_lossy(&self.key),
                    String::from_utf8_lossy(kv.value())
                ))
            })?;
        Ok((n, kv.mod_revision()))
    }

    fn lock_last(&self) -> std::sync::MutexGuard<'_, Option<(u64, i64)>> {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
