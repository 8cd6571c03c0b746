//! Test support: a tiny correct etcd that records histories ([`Kit`]), and a randomized
//! simulation of many concurrent clients ([`simulate`]).

use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::store::in_range;
use crate::history::{
    Event, EventKind, Expect, History, KeyValue, LeaseRecord, LockRecord, Op, Outcome, ReadKind,
    Request, StoreHistory, Time, WatchDelivery, WatchRecord,
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

/// What [`simulate`] makes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SimConfig {
    pub keys: usize,
    pub clients: u32,
    pub ops: usize,
    /// Probability (per mille) that an operation's outcome is unknown.
    pub unknown_per_mille: u32,
    /// Probability (per mille) that an operation definitely fails.
    pub failed_per_mille: u32,
    /// Adds watches, a lease and a lock workload.
    pub extras: bool,
    /// How late an unknown request may take effect, in multiples of its duration.
    pub unknown_delay: u64,
}

/// One pending request of the simulation.
struct Pending {
    client: u32,
    call: Time,
    ret: Time,
    lin: Time,
    request: Request,
    fate: Fate,
}

#[derive(Clone, Copy, PartialEq)]
enum Fate {
    Answered,
    Failed,
    /// Unknown; applied (at `lin`) or not.
    Unknown(bool),
}

/// A correct cluster under many concurrent clients: every request takes effect at a random
/// point between its call and its return (unknown ones at a random point after their call,
/// or never), serializable and cache reads answer a monotonic per-member past state, and a
/// serializable read is never older than what its client already got.
pub(crate) fn simulate(seed: u64, config: SimConfig) -> History {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kit = Kit::new();
    let keys: Vec<String> = (0..config.keys).map(|k| format!("/t/k{k}")).collect();
    let endpoints = [
        "http://127.0.0.1:2379",
        "http://127.0.0.1:22379",
        "http://127.0.0.1:32379",
    ];
    let mut pending: Vec<Pending> = Vec::new();
    let mut free: Vec<Time> = (0..config.clients)
        .map(|_| rng.gen_range(0..1_000))
        .collect();
    let mut remaining = config.ops;
    let mut seq = 0u64;
    while remaining > 0 {
        let client = rng.gen_range(0..config.clients);
        let call = free[client as usize] + rng.gen_range(1..2_000);
        let duration = rng.gen_range(100..20_000);
        let ret = call + duration;
        let key = keys[rng.gen_range(0..keys.len())].clone();
        seq += 1;
        let value = format!("c{client}.{seq}");
        let request = match rng.gen_range(0..100) {
            0..=29 => Request::Put { key, value },
            30..=39 => Request::Delete { key },
            40..=54 => Request::Cas {
                key,
                expect: match rng.gen_range(0..3) {
                    0 => Expect::Absent,
                    1 => Expect::Value(format!("nobody.{seq}")),
                    _ => Expect::ModRevision(0),
                },
                value,
            },
            55..=84 => Request::Get {
                key,
                read: ReadKind::Linearizable,
            },
            85..=91 => Request::Get {
                key,
                read: ReadKind::Serializable,
            },
            92..=95 => Request::Get {
                key,
                read: ReadKind::CacheConsistent,
            },
            _ => Request::Get {
                key,
                read: ReadKind::Cache,
            },
        };
        let roll = rng.gen_range(0..1000);
        let fate = if roll < config.unknown_per_mille {
            Fate::Unknown(rng.gen_bool(0.5))
        } else if roll < config.unknown_per_mille + config.failed_per_mille {
            Fate::Failed
        } else {
            Fate::Answered
        };
        let lin = match fate {
            // An unknown request may take effect long after the client gave up on it.
            Fate::Unknown(_) => call + rng.gen_range(0..duration * config.unknown_delay.max(1)),
            _ => call + rng.gen_range(0..=duration),
        };
        pending.push(Pending {
            client,
            call,
            ret,
            lin,
            request,
            fate,
        });
        free[client as usize] = ret;
        remaining -= 1;
    }
    pending.sort_by_key(|p| p.lin);
    let mut applied_rev: [i64; 3] = [BASE_REVISION; 3];
    let mut cache_rev = BASE_REVISION;
    // Each client's floor: the newest revision of its answers (cache reads aside).
    let mut floors: HashMap<u32, i64> = HashMap::new();
    let mut last_read: HashMap<(u32, String), Option<KeyValue>> = HashMap::new();
    for mut p in pending {
        let endpoint = rng.gen_range(0..3);
        let key = p.request.key().to_string();
        // Most comparisons name what the client last read of the key, so that some
        // succeed.
        if let Request::Cas { expect, .. } = &mut p.request {
            if let Some(last) = last_read
                .get(&(p.client, key.clone()))
                .filter(|_| rng.gen_bool(0.8))
            {
                *expect = match (&*expect, last) {
                    (Expect::Value(_), Some(kv)) => Expect::Value(kv.value.clone()),
                    (Expect::ModRevision(_), last) => {
                        Expect::ModRevision(last.as_ref().map_or(0, |kv| kv.mod_revision))
                    }
                    (other, _) => other.clone(),
                };
            }
        }
        let (ret, mut outcome) = match p.fate {
            Fate::Failed => (
                Some(p.ret),
                Outcome::Failed {
                    error: "refused".into(),
                },
            ),
            Fate::Unknown(applied) => {
                if applied {
                    apply(&mut kit, &p.request);
                }
                (
                    None,
                    Outcome::Unknown {
                        error: "timeout".into(),
                    },
                )
            }
            Fate::Answered => (Some(p.ret), apply(&mut kit, &p.request)),
        };
        if let (Request::Get { read, .. }, Outcome::Get { .. }) = (&p.request, &outcome) {
            match read {
                ReadKind::Serializable => {
                    // A member behind the client's floor is skipped: the answer comes from
                    // one that caught up.
                    let floor = floors.get(&p.client).copied().unwrap_or(BASE_REVISION);
                    let member = &mut applied_rev[endpoint];
                    *member = rng.gen_range((*member).max(floor)..=kit.revision());
                    outcome = Outcome::Get {
                        revision: *member,
                        kv: kit.state_at(&key, *member),
                    };
                }
                ReadKind::Cache => {
                    cache_rev = rng.gen_range(cache_rev..=kit.revision());
                    outcome = Outcome::Get {
                        revision: cache_rev,
                        kv: kit.state_at(&key, cache_rev),
                    };
                }
                _ => {}
            }
        }
        if let Some(rev) = outcome.revision() {
            applied_rev[endpoint] = applied_rev[endpoint].max(rev);
            let cached = matches!(
                p.request,
                Request::Get {
                    read: ReadKind::Cache | ReadKind::CacheConsistent,
                    ..
                }
            );
            if ret.is_some() && !cached {
                let floor = floors.entry(p.client).or_insert(BASE_REVISION);
                *floor = (*floor).max(rev);
            }
        }
        if let Outcome::Get { kv, .. } = &outcome {
            last_read.insert((p.client, key.clone()), kv.clone());
        }
        let id = kit.record(p.client, p.call, ret, p.request, outcome);
        kit.op_mut(id).endpoint = Some(endpoints[endpoint].to_string());
    }
    // Ops are recorded in linearization order; a history lists them as the recorder does.
    kit.history.ops.sort_by_key(|op| (op.call, op.id));
    if config.extras {
        add_extras(&mut kit, &mut rng, config);
    }
    kit.finish()
}

/// Applies `request` to the kit's store now and returns its answer.
fn apply(kit: &mut Kit, request: &Request) -> Outcome {
    match request {
        Request::Put { key, value } => Outcome::Put {
            revision: kit.apply_put(key, value, 0),
        },
        Request::Get { key, .. } => Outcome::Get {
            revision: kit.revision(),
            kv: kit.current(key),
        },
        Request::Delete { key } => match kit.apply_delete(key) {
            Some(revision) => Outcome::Delete {
                revision,
                deleted: 1,
            },
            None => Outcome::Delete {
                revision: kit.revision(),
                deleted: 0,
            },
        },
        Request::Cas { key, expect, value } => {
            if kit.holds(key, expect) {
                Outcome::Cas {
                    revision: kit.apply_put(key, value, 0),
                    succeeded: true,
                }
            } else {
                Outcome::Cas {
                    revision: kit.revision(),
                    succeeded: false,
                }
            }
        }
    }
}

/// Watches over the finished store, a lease kept to the end, and a lock workload.
fn add_extras(kit: &mut Kit, rng: &mut StdRng, config: SimConfig) {
    let t_end = kit
        .history
        .ops
        .iter()
        .map(|op| op.ret.unwrap_or(op.call))
        .max()
        .unwrap_or(0)
        + 1_000;
    // A lease, its key put and kept to the end.
    let value = kit.fresh_value(99);
    let put = kit.put_value(99, "/t/lease/a", &value, t_end, t_end + 10);
    let lease = 0x1234;
    if let Some(Event { kv: Some(kv), .. }) = kit.events.last_mut() {
        kv.lease = lease;
    }
    if let Some(kv) = kit.state.get_mut("/t/lease/a") {
        kv.lease = lease;
    }
    kit.history.leases.push(LeaseRecord {
        client: 99,
        lease,
        ttl: 5,
        key: "/t/lease/a".into(),
        put: Some(put),
        granted: t_end - 5,
        lost: None,
        revoked: None,
        kept_to_end: true,
    });
    // A revoked lease: its key goes.
    let value = kit.fresh_value(98);
    let put = kit.put_value(98, "/t/lease/b", &value, t_end + 20, t_end + 30);
    kit.apply_delete("/t/lease/b");
    kit.history.leases.push(LeaseRecord {
        client: 98,
        lease: 0x5678,
        ttl: 5,
        key: "/t/lease/b".into(),
        put: Some(put),
        granted: t_end + 15,
        lost: None,
        revoked: Some(t_end + 40),
        kept_to_end: false,
    });
    // The lock workload: holders one after another, each making a few fenced increments.
    let mut t = t_end + 100;
    let mut n = 0i64;
    for holder in 0..4u32 {
        let owner_key = format!("/t/lock/{holder:x}");
        let owner_revision = kit.apply_put(&owner_key, "", 0);
        let acquired = t;
        let mut writes = Vec::new();
        for _ in 0..rng.gen_range(1..4) {
            let mod_rev = kit.current("/t/counter").map_or(0, |kv| kv.mod_revision);
            let value = format!("{}/{holder}", n + 1);
            if rng.gen_range(0..1000) < config.unknown_per_mille.max(100) {
                let applied = rng.gen_bool(0.5);
                let id = kit.unknown_put_value(holder + 50, "/t/counter", &value, t);
                let op = kit.op_mut(id);
                op.request = Request::Cas {
                    key: "/t/counter".into(),
                    expect: Expect::ModRevision(mod_rev),
                    value: value.clone(),
                };
                if applied {
                    kit.apply_put("/t/counter", &value, 0);
                    n += 1;
                }
                writes.push(id);
            } else {
                let id = kit.cas_value(
                    holder + 50,
                    "/t/counter",
                    Expect::ModRevision(mod_rev),
                    &value,
                    t,
                    t + 10,
                );
                n += 1;
                writes.push(id);
            }
            t += 20;
        }
        kit.apply_delete(&owner_key);
        kit.history.locks.push(LockRecord {
            id: holder,
            client: holder + 50,
            name: "/t/lock/".into(),
            owner_key,
            owner_revision,
            counter_key: "/t/counter".into(),
            acquired,
            released: Some(t),
            writes,
        });
        t += 50;
    }
    // Watches: everything, one key from a start revision, with progress notifications.
    let mut all = kit.watch_all(1, "/t/", "\0", 0);
    let mut one = kit.watch_all(2, "/t/k0", "", BASE_REVISION + 5);
    for w in [&mut all, &mut one] {
        let mut with_progress = Vec::new();
        for d in w.responses.drain(..) {
            let rev = d.revision;
            with_progress.push(d);
            if rng.gen_bool(0.1) {
                with_progress.push(WatchDelivery {
                    time: 0,
                    revision: (rev + rng.gen_range(0..2)).min(kit.revision()),
                    progress: true,
                    events: Vec::new(),
                    endpoint: None,
                });
            }
        }
        // A progress notification may not run ahead of a revision still to come.
        for i in 0..with_progress.len() {
            if with_progress[i].progress {
                let next = with_progress[i + 1..]
                    .iter()
                    .find(|d| !d.progress)
                    .map(|d| d.revision);
                if let Some(next) = next {
                    if with_progress[i].revision >= next {
                        with_progress[i].revision = next - 1;
                    }
                }
            }
        }
        w.responses = with_progress;
    }
    kit.history.watches.push(all);
    kit.history.watches.push(one);
}
