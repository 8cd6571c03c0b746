//! Test support: a tiny correct etcd that records histories ([`Kit`]), and a randomized
//! simulation of many concurrent clients ([`simulate`], in `sim.rs`).

use std::collections::BTreeMap;

mod sim;

pub(crate) use sim::{simulate, SimConfig};

use super::store::in_range;
use crate::history::{
    Event, EventKind, Expect, History, KeyValue, Op, Outcome, ReadKind, Request, StoreHistory,
    Time, WatchDelivery, WatchRecord,
};

/// The revision the scenario's store starts after.
pub(crate) const BASE_REVISION: i64 = 100;

/// A correct single-member etcd: every call applies at once, in call order, and is recorded
/// with the times given.
pub(crate) struct Kit {
    pub history: History,
    rev: i64,
    state: BTreeMap<String, KeyValue>,
    events: Vec<Event>,
    next_id: u64,
    seq: u64,
}

impl Kit {
    pub(crate) fn new() -> Kit {
        Kit {
            history: History {
                prefix: "/t/".into(),
                ..History::default()
            },
            rev: BASE_REVISION,
            state: BTreeMap::new(),
            events: Vec::new(),
            next_id: 1,
            seq: 0,
        }
    }

    pub(crate) fn revision(&self) -> i64 {
        self.rev
    }

    pub(crate) fn fresh_value(&mut self, client: u32) -> String {
        self.seq += 1;
        format!("c{client}.{}", self.seq)
    }

    fn record(
        &mut self,
        client: u32,
        call: Time,
        ret: Option<Time>,
        request: Request,
        outcome: Outcome,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.history.ops.push(Op {
            id,
            client,
            call,
            ret,
            endpoint: Some("http://127.0.0.1:2379".into()),
            request,
            outcome,
        });
        id
    }

    pub(crate) fn op_mut(&mut self, id: u64) -> &mut Op {
        self.history
            .ops
            .iter_mut()
            .find(|op| op.id == id)
            .expect("op exists")
    }

    pub(crate) fn op(&self, id: u64) -> &Op {
        self.history
            .ops
            .iter()
            .find(|op| op.id == id)
            .expect("op exists")
    }

    /// Changes `key` in the store without an operation (a lease expiry, a lock key).
    pub(crate) fn apply_put(&mut self, key: &str, value: &str, lease: i64) -> i64 {
        self.rev += 1;
        let kv = match self.state.get(key) {
            Some(old) => KeyValue {
                value: value.into(),
                create_revision: old.create_revision,
                mod_revision: self.rev,
                version: old.version + 1,
                lease,
            },
            None => KeyValue {
                value: value.into(),
                create_revision: self.rev,
                mod_revision: self.rev,
                version: 1,
                lease,
            },
        };
        self.state.insert(key.into(), kv.clone());
        self.events.push(Event {
            key: key.into(),
            kind: EventKind::Put,
            revision: self.rev,
            kv: Some(kv),
        });
        self.rev
    }

    /// Deletes `key` in the store without an operation; `None` when it did not exist.
    pub(crate) fn apply_delete(&mut self, key: &str) -> Option<i64> {
        self.state.remove(key)?;
        self.rev += 1;
        self.events.push(Event {
            key: key.into(),
            kind: EventKind::Delete,
            revision: self.rev,
            kv: None,
        });
        Some(self.rev)
    }

    pub(crate) fn current(&self, key: &str) -> Option<KeyValue> {
        self.state.get(key).cloned()
    }

    pub(crate) fn state_at(&self, key: &str, rev: i64) -> Option<KeyValue> {
        let mut kv = None;
        for e in self
            .events
            .iter()
            .filter(|e| e.key == key && e.revision <= rev)
        {
            kv = e.kv.clone();
        }
        kv
    }

    pub(crate) fn put(&mut self, client: u32, key: &str, call: Time, ret: Time) -> u64 {
        let value = self.fresh_value(client);
        self.put_value(client, key, &value, call, ret)
    }

    pub(crate) fn put_value(
        &mut self,
        client: u32,
        key: &str,
        value: &str,
        call: Time,
        ret: Time,
    ) -> u64 {
        let revision = self.apply_put(key, value, 0);
        self.record(
            client,
            call,
            Some(ret),
            Request::Put {
                key: key.into(),
                value: value.into(),
            },
            Outcome::Put { revision },
        )
    }

    pub(crate) fn get(&mut self, client: u32, key: &str, call: Time, ret: Time) -> u64 {
        self.read(client, key, ReadKind::Linearizable, call, ret)
    }

    pub(crate) fn read(
        &mut self,
        client: u32,
        key: &str,
        read: ReadKind,
        call: Time,
        ret: Time,
    ) -> u64 {
        let rev = self.rev;
        self.read_at(client, key, read, rev, call, ret)
    }

    pub(crate) fn read_at(
        &mut self,
        client: u32,
        key: &str,
        read: ReadKind,
        revision: i64,
        call: Time,
        ret: Time,
    ) -> u64 {
        let kv = self.state_at(key, revision);
        self.record(
            client,
            call,
            Some(ret),
            Request::Get {
                key: key.into(),
                read,
            },
            Outcome::Get { revision, kv },
        )
    }

    pub(crate) fn delete(&mut self, client: u32, key: &str, call: Time, ret: Time) -> u64 {
        let (revision, deleted) = match self.apply_delete(key) {
            Some(rev) => (rev, 1),
            None => (self.rev, 0),
        };
        self.record(
            client,
            call,
            Some(ret),
            Request::Delete { key: key.into() },
            Outcome::Delete { revision, deleted },
        )
    }

    pub(crate) fn holds(&self, key: &str, expect: &Expect) -> bool {
        let cur = self.state.get(key);
        match expect {
            Expect::Value(v) => cur.is_some_and(|kv| &kv.value == v),
            Expect::Absent => cur.is_none(),
            Expect::ModRevision(m) => cur.map_or(0, |kv| kv.mod_revision) == *m,
        }
    }

    pub(crate) fn cas(
        &mut self,
        client: u32,
        key: &str,
        expect: Expect,
        call: Time,
        ret: Time,
    ) -> u64 {
        let value = self.fresh_value(client);
        self.cas_value(client, key, expect, &value, call, ret)
    }

    pub(crate) fn cas_value(
        &mut self,
        client: u32,
        key: &str,
        expect: Expect,
        value: &str,
        call: Time,
        ret: Time,
    ) -> u64 {
        let outcome = if self.holds(key, &expect) {
            Outcome::Cas {
                revision: self.apply_put(key, value, 0),
                succeeded: true,
            }
        } else {
            Outcome::Cas {
                revision: self.rev,
                succeeded: false,
            }
        };
        self.record(
            client,
            call,
            Some(ret),
            Request::Cas {
                key: key.into(),
                expect,
                value: value.into(),
            },
            outcome,
        )
    }

    /// A put whose outcome is unknown; it is applied now when `applied`.
    pub(crate) fn unknown_put(&mut self, client: u32, key: &str, call: Time, applied: bool) -> u64 {
        let value = self.fresh_value(client);
        if applied {
            self.apply_put(key, &value, 0);
        }
        self.record(
            client,
            call,
            None,
            Request::Put {
                key: key.into(),
                value,
            },
            Outcome::Unknown {
                error: "timeout".into(),
            },
        )
    }

    /// A put whose outcome is unknown, applied later with [`Kit::apply_put`] by the test.
    pub(crate) fn unknown_put_value(
        &mut self,
        client: u32,
        key: &str,
        value: &str,
        call: Time,
    ) -> u64 {
        self.record(
            client,
            call,
            None,
            Request::Put {
                key: key.into(),
                value: value.into(),
            },
            Outcome::Unknown {
                error: "timeout".into(),
            },
        )
    }

    /// A delete whose outcome is unknown; it is applied now when `applied`.
    pub(crate) fn unknown_delete(
        &mut self,
        client: u32,
        key: &str,
        call: Time,
        applied: bool,
    ) -> u64 {
        if applied {
            self.apply_delete(key);
        }
        self.record(
            client,
            call,
            None,
            Request::Delete { key: key.into() },
            Outcome::Unknown {
                error: "connection reset".into(),
            },
        )
    }

    /// A put refused before it could apply.
    pub(crate) fn failed_put(&mut self, client: u32, key: &str, call: Time, ret: Time) -> u64 {
        let value = self.fresh_value(client);
        self.record(
            client,
            call,
            Some(ret),
            Request::Put {
                key: key.into(),
                value,
            },
            Outcome::Failed {
                error: "no leader".into(),
            },
        )
    }

    pub(crate) fn store(&self) -> StoreHistory {
        StoreHistory {
            first_revision: BASE_REVISION + 1,
            last_revision: self.rev,
            events: self.events.clone(),
        }
    }

    /// The history so far, with the store's history.
    pub(crate) fn snapshot(&self) -> History {
        let mut history = self.history.clone();
        history.store = Some(self.store());
        history
    }

    pub(crate) fn finish(self) -> History {
        self.snapshot()
    }

    /// A watch of `key` (`range_end` as etcd's) created at `created` (time) from revision
    /// `start` (0: now), delivering every store event so far, one revision per response,
    /// caught up to the store's revision.
    pub(crate) fn watch_all(&self, id: u32, key: &str, range_end: &str, start: i64) -> WatchRecord {
        let created_revision = if start == 0 { BASE_REVISION } else { start - 1 };
        let from = if start == 0 {
            created_revision + 1
        } else {
            start
        };
        let mut responses: Vec<WatchDelivery> = Vec::new();
        for e in &self.events {
            if e.revision < from || !in_range(&e.key, key, range_end) {
                continue;
            }
            match responses.last_mut() {
                Some(last) if last.revision == e.revision && !last.progress => {
                    last.events.push(e.clone())
                }
                _ => responses.push(WatchDelivery {
                    time: 1000 + e.revision as Time,
                    revision: e.revision,
                    progress: false,
                    events: vec![e.clone()],
                    endpoint: None,
                }),
            }
        }
        WatchRecord {
            id,
            client: 0,
            key: key.into(),
            range_end: range_end.into(),
            start_revision: start,
            created: 0,
            created_revision,
            responses,
            ended: None,
            caught_up_to: self.rev,
        }
    }
}

/// How many seeds randomized tests try: `default`, or `ROBUSTNESS_SEEDS` when set.
pub(crate) fn seeds(default: u64) -> u64 {
    std::env::var("ROBUSTNESS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
