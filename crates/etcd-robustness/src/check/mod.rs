//! The checkers: each reads a [`History`] and reports [`Anomaly`]s; [`check`] runs them all.
//!
//! | checker | reads | proves |
//! |---|---|---|
//! | [`linearizable`] | `ops` (+ `store` to settle unknown writes) | single-key operations are linearizable |
//! | [`durability`] | `ops`, `store` | acknowledged writes are in the store, refused ones are not, nothing is invented |
//! | [`reads`] | `ops`, `store` | every read equals the store at its revision, none is stale, serializable ones do not go back |
//! | [`watch`] | `watches`, `store` | watches deliver every change once, in order, atomically, and progress honestly |
//! | [`locks`] | `locks`, `ops`, `store` | the lock excludes: increments are neither lost nor doubled nor interleaved |
//! | [`leases`] | `leases`, `ops`, `store` | a lease's key does not vanish while its keeper keeps it |
//!
//! Every checker but [`linearizable`] needs the store's history; without one they report a
//! single [`AnomalyKind::CheckIncomplete`].
#![deny(missing_docs)]

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::history::{History, Op, Outcome, Request, Time};

pub mod durability;
pub mod leases;
pub mod linearizable;
pub mod locks;
pub mod reads;
pub(crate) mod store;
#[cfg(test)]
pub(crate) mod testkit;
pub mod watch;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AnomalyKind {
    /// The operations of one key cannot be ordered consistently with real time and etcd's
    /// semantics ([`linearizable`]).
    NotLinearizable,
    /// A checker could not finish (search bound reached, store history missing): the history
    /// is neither proven good nor bad.
    CheckIncomplete,
    /// The history itself is inconsistent (unknown op id, answer of the wrong type...).
    MalformedHistory,
    /// The store's history is out of revision order or outside its declared range.
    InvalidStoreHistory,
    /// An acknowledged write is not in the store at its revision ([`durability`]).
    LostWrite,
    /// A write that definitely failed is in the store.
    FailedWriteApplied,
    /// A compare-and-set answered "not swapped" is in the store.
    CasFailedButApplied,
    /// One write's value appears twice in the store: a request applied twice.
    DuplicateWrite,
    /// A change in the store that no operation, lease or lock explains.
    InventedWrite,
    /// A read differs from the store's state of its key at its header revision ([`reads`]).
    ReadMismatch,
    /// A compare-and-set or delete answer contradicts the store's state at its revision.
    CompareMismatch,
    /// A linearizable read older than a write acknowledged before it was invoked.
    StaleRead,
    /// A serializable read older than what the client already saw (from any member).
    ReadWentBackwards,
    /// A watch delivered revisions out of order ([`watch`]).
    WatchUnordered,
    /// A watch delivered one (revision, key) twice.
    WatchDuplicate,
    /// A watch split one revision's events over two responses.
    WatchSplitRevision,
    /// A watch delivered an event that is not the store's (or outside what it watches).
    WatchInventedEvent,
    /// A watch skipped an event of its range.
    WatchMissedEvent,
    /// A progress notification came before events at or below its revision.
    WatchProgressAhead,
    /// A watch ended with an error before the run was over (no fault of a scenario, and no
    /// compaction, may end a watch).
    WatchEnded,
    /// Two lock holders' counter writes interleave ([`locks`]).
    TwoLockHolders,
    /// The lock counter skipped a value, or an acknowledged increment is missing.
    LostIncrement,
    /// The lock counter took one value twice.
    DoubledIncrement,
    /// The lock counter's final value or contents disagree with the increments made.
    LockCounterMismatch,
    /// A lease's key was deleted while its keeper kept the lease alive ([`leases`]).
    LeaseKeyVanished,
}

impl AnomalyKind {
    /// The kind's snake_case name, as serialized.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::NotLinearizable => "not_linearizable",
            AnomalyKind::CheckIncomplete => "check_incomplete",
            AnomalyKind::MalformedHistory => "malformed_history",
            AnomalyKind::InvalidStoreHistory => "invalid_store_history",
            AnomalyKind::LostWrite => "lost_write",
            AnomalyKind::FailedWriteApplied => "failed_write_applied",
            AnomalyKind::CasFailedButApplied => "cas_failed_but_applied",
            AnomalyKind::DuplicateWrite => "duplicate_write",
            AnomalyKind::InventedWrite => "invented_write",
            AnomalyKind::ReadMismatch => "read_mismatch",
            AnomalyKind::CompareMismatch => "compare_mismatch",
            AnomalyKind::StaleRead => "stale_read",
            AnomalyKind::ReadWentBackwards => "read_went_backwards",
            AnomalyKind::WatchUnordered => "watch_unordered",
            AnomalyKind::WatchDuplicate => "watch_duplicate",
            AnomalyKind::WatchSplitRevision => "watch_split_revision",
            AnomalyKind::WatchInventedEvent => "watch_invented_event",
            AnomalyKind::WatchMissedEvent => "watch_missed_event",
            AnomalyKind::WatchProgressAhead => "watch_progress_ahead",
            AnomalyKind::WatchEnded => "watch_ended",
            AnomalyKind::TwoLockHolders => "two_lock_holders",
            AnomalyKind::LostIncrement => "lost_increment",
            AnomalyKind::DoubledIncrement => "doubled_increment",
            AnomalyKind::LockCounterMismatch => "lock_counter_mismatch",
            AnomalyKind::LeaseKeyVanished => "lease_key_vanished",
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Something a history shows that etcd or the client promised would not happen (or, for
/// [`AnomalyKind::CheckIncomplete`], that a checker could not decide).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Anomaly {
    /// What kind.
    pub kind: AnomalyKind,
    /// A human explanation, one line.
    pub message: String,
    /// The key involved, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The operations involved ([`Op::id`]), the most telling first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ops: Vec<u64>,
    /// The watch involved ([`crate::history::WatchRecord::id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<u32>,
    /// The lock holders involved ([`crate::history::LockRecord::id`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locks: Vec<u32>,
    /// The lease involved ([`crate::history::LeaseRecord::lease`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<i64>,
    /// The store revision the anomaly is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
}

impl Anomaly {
    /// An anomaly of `kind` explained by `message` (kept on one line).
    pub fn new(kind: AnomalyKind, message: impl Into<String>) -> Anomaly {
        let message: String = message.into();
        let message = if message.contains('\n') {
            message.replace('\n', " ")
        } else {
            message
        };
        Anomaly {
            kind,
            message,
            key: None,
            ops: Vec::new(),
            watch: None,
            locks: Vec::new(),
            lease: None,
            revision: None,
        }
    }

    /// Names the key involved.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<String>) -> Anomaly {
        self.key = Some(key.into());
        self
    }

    /// Names the operations involved.
    #[must_use]
    pub fn with_ops(mut self, ops: impl IntoIterator<Item = u64>) -> Anomaly {
        for op in ops {
            if !self.ops.contains(&op) {
                self.ops.push(op);
            }
        }
        self
    }

    /// Names the watch involved.
    #[must_use]
    pub fn with_watch(mut self, watch: u32) -> Anomaly {
        self.watch = Some(watch);
        self
    }

    /// Names the lock holders involved.
    #[must_use]
    pub fn with_locks(mut self, locks: impl IntoIterator<Item = u32>) -> Anomaly {
        for lock in locks {
            if !self.locks.contains(&lock) {
                self.locks.push(lock);
            }
        }
        self
    }

    /// Names the lease involved.
    #[must_use]
    pub fn with_lease(mut self, lease: i64) -> Anomaly {
        self.lease = Some(lease);
        self
    }

    /// Names the store revision involved.
    #[must_use]
    pub fn with_revision(mut self, revision: i64) -> Anomaly {
        self.revision = Some(revision);
        self
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        let mut parts = Vec::new();
        if let Some(key) = &self.key {
            parts.push(format!("key {key:?}"));
        }
        if !self.ops.is_empty() {
            let ops: Vec<String> = self.ops.iter().map(|id| format!("#{id}")).collect();
            parts.push(format!("ops {}", ops.join(" ")));
        }
        if let Some(watch) = self.watch {
            parts.push(format!("watch {watch}"));
        }
        if !self.locks.is_empty() {
            let locks: Vec<String> = self.locks.iter().map(u32::to_string).collect();
            parts.push(format!("locks {}", locks.join(" ")));
        }
        if let Some(lease) = self.lease {
            parts.push(format!("lease {lease:x}"));
        }
        if let Some(revision) = self.revision {
            parts.push(format!("revision {revision}"));
        }
        if !parts.is_empty() {
            write!(f, " [{}]", parts.join(", "))?;
        }
        Ok(())
    }
}

/// Runs every checker on `history`: linearizability always, the others when the store's
/// history is there (else one [`AnomalyKind::CheckIncomplete`] says they were skipped).
pub fn check(history: &History) -> Vec<Anomaly> {
    let mut anomalies = linearizable::check(history);
    if history.store.is_none() {
        anomalies.push(missing_store(
            "durability, reads, watch, lock and lease checks",
        ));
        return anomalies;
    }
    anomalies.extend(durability::check(history));
    anomalies.extend(reads::check(history));
    anomalies.extend(watch::check(history));
    anomalies.extend(locks::check(history));
    anomalies.extend(leases::check(history));
    anomalies
}

/// The anomaly of a checker that needs the store's history and got none.
fn missing_store(what: &str) -> Anomaly {
    Anomaly::new(
        AnomalyKind::CheckIncomplete,
        format!("no store history was recorded: {what} skipped"),
    )
}

/// For each operation of unknown outcome, the largest revision answered before it was
/// invoked (every answer's revision is at most the store's revision when it came back, so
/// a write made later has a larger one).
pub(crate) fn revision_lower_bounds(ops: &[Op]) -> HashMap<u64, i64> {
    let mut answered: Vec<(Time, i64)> = ops
        .iter()
        .filter_map(|op| Some((op.ret?, op.outcome.revision()?)))
        .collect();
    answered.sort_unstable();
    let mut unknown: Vec<&Op> = ops.iter().filter(|op| op.outcome.is_unknown()).collect();
    unknown.sort_by_key(|op| op.call);
    let mut bounds = HashMap::new();
    let (mut i, mut max) = (0, 0);
    for op in unknown {
        while i < answered.len() && answered[i].0 < op.call {
            max = max.max(answered[i].1);
            i += 1;
        }
        bounds.insert(op.id, max);
    }
    bounds
}

/// A short human description of an operation: `#12 c3 put k=v → r40`.
pub fn describe_op(op: &Op) -> String {
    let request = match &op.request {
        Request::Put { key, value } => format!("put {key}={value}"),
        Request::Get { key, read } => format!("get {key} ({read:?})"),
        Request::Delete { key } => format!("delete {key}"),
        Request::Cas { key, expect, value } => format!("cas {key} if {expect:?} then ={value}"),
    };
    let outcome = match &op.outcome {
        Outcome::Put { revision } => format!("r{revision}"),
        Outcome::Get { revision, kv } => match kv {
            Some(kv) => format!(
                "{} (create {}, mod {}, version {}) @h{revision}",
                kv.value, kv.create_revision, kv.mod_revision, kv.version
            ),
            None => format!("absent @h{revision}"),
        },
        Outcome::Delete { revision, deleted } => format!("deleted {deleted} @r{revision}"),
        Outcome::Cas {
            revision,
            succeeded,
        } => {
            if *succeeded {
                format!("swapped r{revision}")
            } else {
                format!("not swapped @h{revision}")
            }
        }
        Outcome::Failed { error } => format!("failed ({error})"),
        Outcome::Unknown { error } => format!("unknown ({error})"),
    };
    format!("#{} c{} {request} → {outcome}", op.id, op.client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_with_context() {
        let a = Anomaly::new(AnomalyKind::StaleRead, "read\nwas old")
            .with_key("k")
            .with_ops([3, 4, 3])
            .with_watch(2)
            .with_locks([1])
            .with_revision(9);
        let line = a.to_string();
        assert_eq!(
            line,
            "stale_read: read was old [key \"k\", ops #3 #4, watch 2, locks 1, revision 9]"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn kinds_serialize_snake_case() {
        let json = serde_json::to_string(&AnomalyKind::WatchSplitRevision).unwrap();
        assert_eq!(json, "\"watch_split_revision\"");
        assert_eq!(
            AnomalyKind::WatchSplitRevision.name(),
            "watch_split_revision"
        );
        let a = Anomaly::new(AnomalyKind::LostWrite, "gone").with_ops([1]);
        let back: Anomaly = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn without_store_only_linearizability_runs() {
        let mut kit = testkit::Kit::new();
        kit.put(0, "k", 0, 10);
        kit.get(1, "k", 20, 30);
        let mut history = kit.finish();
        assert!(check(&history).is_empty());
        history.store = None;
        let anomalies = check(&history);
        assert_eq!(anomalies.len(), 1);
        assert_eq!(anomalies[0].kind, AnomalyKind::CheckIncomplete);
    }

    #[test]
    fn random_correct_histories_pass_every_checker() {
        let config = testkit::SimConfig {
            keys: 3,
            clients: 6,
            ops: 400,
            unknown_per_mille: 30,
            failed_per_mille: 20,
            extras: true,
            unknown_delay: 4,
        };
        for seed in 0..testkit::seeds(100) {
            let history = testkit::simulate(seed, config);
            assert!(!history.watches.is_empty() && !history.locks.is_empty());
            let anomalies = check(&history);
            assert!(anomalies.is_empty(), "seed {seed}: {anomalies:#?}");
            // Every mutation of one read's value is caught.
            let mut bad = history.clone();
            let Some(read) = bad
                .ops
                .iter_mut()
                .find(|op| matches!(&op.outcome, Outcome::Get { kv: Some(_), .. }))
            else {
                continue;
            };
            if let Outcome::Get { kv: Some(kv), .. } = &mut read.outcome {
                kv.value.push('!');
            }
            let kinds: Vec<AnomalyKind> = check(&bad).iter().map(|a| a.kind).collect();
            assert!(
                kinds.contains(&AnomalyKind::ReadMismatch),
                "seed {seed}: {kinds:?}"
            );
        }
    }
}
