//! What a scenario records: every operation with its invocation and completion times, what
//! it asked and what it got; the watches' deliveries; lock and lease sessions; and, after
//! the run, the store's own history read back from etcd. The checkers ([`crate::check`])
//! read nothing else.
//!
//! # Conventions
//!
//! * Times are nanoseconds since the scenario started, from one monotonic clock: `call` is
//!   taken before the request is handed to the client, `ret` after its answer came back.
//! * Every value written by the workloads is unique within a history (`"<client>.<seq>"`),
//!   so a value names the write that produced it.
//! * An operation whose outcome is unknown (`Outcome::Unknown`: a timeout, or a connection
//!   that broke after the request may have reached etcd) has `ret: None`: it is open-ended
//!   and may take effect at any moment after `call`, or never.
//! * An operation that definitely failed (`Outcome::Failed`: refused before it could be
//!   applied) changed nothing.
//! * Revisions are etcd's: a successful write's `revision` is the revision it created (the
//!   header revision of its answer); a read's `revision` is the header revision of its
//!   answer: the store revision it reflects.

use serde::{Deserialize, Serialize};

/// Nanoseconds since the scenario started.
pub type Time = u64;

/// A whole recorded scenario: what the checkers are given.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    /// The key prefix every key of the scenario lives under.
    pub prefix: String,
    /// Single-key operations of every client: the KV registers, the cache's reads, the
    /// lock workload's counter writes.
    pub ops: Vec<Op>,
    /// Every watch and what it delivered.
    pub watches: Vec<WatchRecord>,
    /// Lock holders of the lock workload.
    pub locks: Vec<LockRecord>,
    /// Leases of the lease workload.
    pub leases: Vec<LeaseRecord>,
    /// The store's history of the prefix, read back after the run.
    pub store: Option<StoreHistory>,
    /// The faults the nemesis injected, for the record: no checker reads them, reports
    /// show them beside the operations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultSpan>,
}

/// One fault, from injection to healing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSpan {
    /// What (`kill-leader`, `isolate-follower`...).
    pub kind: String,
    /// The member it hit (for a bridge: the bridging member).
    pub member: usize,
    /// When it was injected.
    pub start: Time,
    /// When it was healed.
    pub healed: Time,
}

/// One single-key operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Unique within the history.
    pub id: u64,
    /// The client (worker) that made it; one client makes one call at a time.
    pub client: u32,
    /// When it was invoked.
    pub call: Time,
    /// When its answer arrived; `None` when its outcome is unknown (open-ended).
    pub ret: Option<Time>,
    /// The member that answered, when known (`http://127.0.0.1:PORT`).
    pub endpoint: Option<String>,
    /// What was asked.
    pub request: Request,
    /// What came back.
    pub outcome: Outcome,
}

impl Op {
    /// The key the operation is about.
    pub fn key(&self) -> &str {
        self.request.key()
    }

    /// True for requests that may change the store.
    pub fn is_write(&self) -> bool {
        self.request.is_write()
    }
}

/// What an operation asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// `put key value`.
    Put {
        /// The key.
        key: String,
        /// The (unique) value.
        value: String,
    },
    /// A range of one key. `serializable` reads may come from any member and are not part
    /// of the linearizability check (see [`crate::check::reads`]); `cache` reads come from a
    /// local cache (`consistent` ones are linearizable, others are at the cache's revision).
    Get {
        /// The key.
        key: String,
        /// How the read was made.
        read: ReadKind,
    },
    /// `delete key` (one key, no range).
    Delete {
        /// The key.
        key: String,
    },
    /// A compare-and-set transaction: if `expect` holds for `key`, put `value` (else do
    /// nothing).
    Cas {
        /// The key.
        key: String,
        /// The comparison.
        expect: Expect,
        /// The (unique) value put when it holds.
        value: String,
    },
}

impl Request {
    /// The key the request is about.
    pub fn key(&self) -> &str {
        match self {
            Request::Put { key, .. }
            | Request::Get { key, .. }
            | Request::Delete { key }
            | Request::Cas { key, .. } => key,
        }
    }

    /// True for requests that may change the store.
    pub fn is_write(&self) -> bool {
        !matches!(self, Request::Get { .. })
    }

    /// The value this request writes, if any.
    pub fn written_value(&self) -> Option<&str> {
        match self {
            Request::Put { value, .. } | Request::Cas { value, .. } => Some(value),
            _ => None,
        }
    }
}

/// How a read was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadKind {
    /// A linearizable range (etcd's default).
    Linearizable,
    /// A serializable range: the answering member's local state, possibly stale.
    Serializable,
    /// `Cache::consistent_get`: linearizable.
    CacheConsistent,
    /// `Cache::get`: the cache's state at the revision it reports.
    Cache,
}

impl ReadKind {
    /// True for the reads that join the linearizability check.
    pub fn is_linearizable(self) -> bool {
        matches!(self, ReadKind::Linearizable | ReadKind::CacheConsistent)
    }
}

/// The comparison of a [`Request::Cas`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Expect {
    /// The key exists and holds this value (`Compare::value(key).eq(v)`; false for a key
    /// that does not exist).
    Value(String),
    /// The key does not exist (`Compare::version(key).eq(0)`).
    Absent,
    /// The key's mod revision is this (`Compare::mod_revision(key).eq(r)`; 0: absent).
    ModRevision(i64),
}

/// What an operation got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outcome {
    /// A put was applied at `revision`.
    Put {
        /// The revision it created.
        revision: i64,
    },
    /// A read of the store at `revision`.
    Get {
        /// The header revision: the store revision the answer reflects.
        revision: i64,
        /// The key's value then, if it existed.
        kv: Option<KeyValue>,
    },
    /// A delete: `deleted` is 1 when the key existed, and then `revision` is the revision
    /// it created; with 0 it created none and `revision` is the store's revision then.
    Delete {
        /// The header revision.
        revision: i64,
        /// How many keys were deleted (0 or 1).
        deleted: i64,
    },
    /// A compare-and-set: when `succeeded`, `revision` is the revision its put created;
    /// otherwise nothing changed and `revision` is the store's revision then.
    Cas {
        /// The header revision.
        revision: i64,
        /// Whether the comparison held (and the put was applied).
        succeeded: bool,
    },
    /// The request definitely failed: it was refused before it could be applied.
    Failed {
        /// The client's error.
        error: String,
    },
    /// The outcome is unknown: a write may or may not have been applied (`ret` is `None`).
    Unknown {
        /// The client's error.
        error: String,
    },
}

impl Outcome {
    /// The answer's header revision, when there was an answer.
    pub fn revision(&self) -> Option<i64> {
        match self {
            Outcome::Put { revision }
            | Outcome::Get { revision, .. }
            | Outcome::Delete { revision, .. }
            | Outcome::Cas { revision, .. } => Some(*revision),
            Outcome::Failed { .. } | Outcome::Unknown { .. } => None,
        }
    }

    /// True when the outcome is unknown.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Outcome::Unknown { .. })
    }

    /// True when the request definitely failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, Outcome::Failed { .. })
    }
}

/// A key's value as etcd reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The value.
    pub value: String,
    /// The revision of its creation (since it last did not exist).
    pub create_revision: i64,
    /// The revision of its last change.
    pub mod_revision: i64,
    /// The number of changes since its creation (1 after the first put).
    pub version: i64,
    /// The lease it is attached to (0: none).
    #[serde(default)]
    pub lease: i64,
}

/// A change of one key, as a watch delivers it and as the store's history records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The key.
    pub key: String,
    /// Put or delete.
    pub kind: EventKind,
    /// The revision of the change (for a put, its `mod_revision`).
    pub revision: i64,
    /// The key's value after a put; `None` for a delete.
    pub kv: Option<KeyValue>,
}

/// Put or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The key was written.
    Put,
    /// The key was deleted (by a request, or by its lease's expiry).
    Delete,
}

/// The store's own history of the scenario's prefix, read back after the run with a watch
/// from `first_revision`: every change, in revision order, events of one revision in the
/// order etcd applied them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoreHistory {
    /// The first revision covered (the scenario's keys did not exist before it).
    pub first_revision: i64,
    /// The store's revision when it was read back: every revision up to it is covered.
    pub last_revision: i64,
    /// The changes, ordered by revision.
    pub events: Vec<Event>,
}

/// One watch and everything it delivered.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WatchRecord {
    /// Unique among the history's watches.
    pub id: u32,
    /// The client that owned it.
    pub client: u32,
    /// The watched key, or the start of the watched range.
    pub key: String,
    /// The end of the watched range (etcd's `range_end`); empty: the one key.
    pub range_end: String,
    /// The revision asked for (0: from "now", i.e. the revision the watch was created at + 1).
    pub start_revision: i64,
    /// When the watch was created (its `created` answer).
    pub created: Time,
    /// The store revision at creation: with `start_revision` 0, it delivers every change
    /// after it.
    pub created_revision: i64,
    /// Its responses, in the order delivered.
    pub responses: Vec<WatchDelivery>,
    /// How it ended, if it did before the end of the run (its error).
    pub ended: Option<String>,
    /// Every revision up to this must have been delivered when the run ended (the watch was
    /// drained up to the store's last revision), 0 when it was not.
    pub caught_up_to: i64,
}

/// One response a watch delivered: the events of one revision (as this client delivers
/// them; a checker also accepts etcd's own batches of several revisions), or a progress
/// notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchDelivery {
    /// When it was delivered.
    pub time: Time,
    /// The response's revision (for a progress notification: every change up to it has been
    /// delivered before).
    pub revision: i64,
    /// True for a progress notification (no events).
    pub progress: bool,
    /// The events, in order.
    pub events: Vec<Event>,
    /// The member the watch was connected to.
    pub endpoint: Option<String>,
}

/// One holder of the lock workload's lock: it acquired the lock, then incremented the shared
/// counter `count` times, each with a transaction guarded by its ownership (the fencing
/// compare) and by the counter's mod revision it had read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LockRecord {
    /// Unique among the history's lock records.
    pub id: u32,
    /// The client.
    pub client: u32,
    /// The lock's name (a key prefix).
    pub name: String,
    /// The holder's ownership key.
    pub owner_key: String,
    /// The ownership key's create revision (its place in the queue).
    pub owner_revision: i64,
    /// The shared counter's key.
    pub counter_key: String,
    /// When `lock()` returned.
    pub acquired: Time,
    /// When the release finished (or was abandoned); `None` if never.
    pub released: Option<Time>,
    /// The counter writes it made: op ids in [`History::ops`] (`Cas` requests whose values
    /// are `"<n>/<lock record id>"`). Each transaction also compared the ownership key
    /// (etcd's `IsOwner`: `create_revision(owner_key) == owner_revision`), which the `Cas`
    /// request does not show: one that did not succeed says nothing about the counter.
    pub writes: Vec<u64>,
    /// Whether its lease was revoked right after it acquired the lock (a stale holder:
    /// every write of it must be refused).
    #[serde(default)]
    pub stale: bool,
}

/// One lease of the lease workload: granted, kept alive by a keeper, a key attached.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The client.
    pub client: u32,
    /// etcd's lease ID.
    pub lease: i64,
    /// The TTL granted, in seconds.
    pub ttl: i64,
    /// The key attached to it.
    pub key: String,
    /// The put of the key (an op id in [`History::ops`]).
    pub put: Option<u64>,
    /// When it was granted.
    pub granted: Time,
    /// When its keeper reported it lost, and why.
    pub lost: Option<(Time, String)>,
    /// When the workload revoked it on purpose (the key goes then).
    pub revoked: Option<Time>,
    /// The keeper was still keeping it, without a loss reported, when the run ended.
    pub kept_to_end: bool,
}
