//! A randomized simulation of many concurrent clients of a correct cluster: histories that
//! every checker must pass.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Kit, BASE_REVISION};
use crate::history::{
    Event, Expect, History, KeyValue, LeaseRecord, LockRecord, Outcome, ReadKind, Request, Time,
    WatchDelivery,
};

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
            stale: false,
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
