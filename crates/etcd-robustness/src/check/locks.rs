//! The lock workload: holders of one lock increment a shared counter with compare-and-sets
//! fenced by their ownership and guarded by the counter's mod revision; the counter's
//! values are `"<n>/<lock record id>"`, from 1.
//!
//! Checks, for each counter, against the store's history of its key:
//!
//! * the values go 1, 2, 3... with no gap ([`AnomalyKind::LostIncrement`]) and no repeat
//!   ([`AnomalyKind::DoubledIncrement`]), and the counter is never deleted;
//! * each acknowledged increment is there, at its revision ([`AnomalyKind::LostIncrement`]);
//! * mutual exclusion ([`AnomalyKind::TwoLockHolders`]): the lock is FIFO by ownership key
//!   creation, so a holder queued later (larger `owner_revision`) only gets the lock once
//!   the earlier one's ownership key is gone, after which the earlier one's fenced writes
//!   cannot apply. Hence, among holders of one lock: each holder's applied writes are
//!   contiguous in the counter's history; holders' blocks come in queue order; and no
//!   holder has a write that succeeded although it was invoked after a holder queued later
//!   had acquired the lock;
//! * the final value equals the number of increments that applied (acknowledged ones plus
//!   unknown ones the store has) ([`AnomalyKind::LockCounterMismatch`]).
//!
//! What it cannot see: when exactly a holder lost its lock (two holders' *acquired
//! intervals* may overlap in real time when a lease expires; only their writes are
//! checked), and writes that were never recorded.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::store::{Acknowledged, StoreIndex};
use super::{describe_op, missing_store, Anomaly, AnomalyKind};
use crate::history::{EventKind, History, LockRecord, Op, Outcome, Request};

/// Checks the lock workload's counters.
pub fn check(history: &History) -> Vec<Anomaly> {
    let Some(store) = &history.store else {
        return vec![missing_store("the lock check")];
    };
    let index = StoreIndex::new(store);
    let ops: HashMap<u64, &Op> = history.ops.iter().map(|op| (op.id, op)).collect();
    let acknowledged = Acknowledged::new(&history.ops);
    let mut counters: BTreeMap<&str, Vec<&LockRecord>> = BTreeMap::new();
    for record in &history.locks {
        counters
            .entry(&record.counter_key)
            .or_default()
            .push(record);
    }
    let mut anomalies = Vec::new();
    for (counter, records) in counters {
        anomalies.extend(check_counter(
            counter,
            &records,
            &ops,
            &index,
            &acknowledged,
        ));
    }
    anomalies
}

/// One increment in the counter's history.
struct Increment {
    n: u64,
    holder: u32,
    revision: i64,
}

/// Parses `"<n>/<lock record id>"` (anything after a further `/` is ignored, so that a
/// workload may make its values unique with a suffix).
fn parse(value: &str) -> Option<(u64, u32)> {
    let mut parts = value.split('/');
    let n = parts.next()?.parse().ok()?;
    let holder = parts.next()?.parse().ok()?;
    Some((n, holder))
}

fn check_counter(
    counter: &str,
    records: &[&LockRecord],
    ops: &HashMap<u64, &Op>,
    index: &StoreIndex<'_>,
    acknowledged: &Acknowledged<'_>,
) -> Vec<Anomaly> {
    let mut anomalies = Vec::new();
    let base = |kind, message: String| Anomaly::new(kind, message).with_key(counter);
    // The counter's history.
    let mut increments: Vec<Increment> = Vec::new();
    let mut sequence_broken = false;
    for e in index.events_of(counter) {
        let value = match (e.kind, &e.kv) {
            (EventKind::Put, Some(kv)) => &kv.value,
            _ => {
                sequence_broken = true;
                anomalies.push(
                    base(
                        AnomalyKind::LockCounterMismatch,
                        format!("the counter was deleted at revision {}", e.revision),
                    )
                    .with_revision(e.revision),
                );
                continue;
            }
        };
        let Some((n, holder)) = parse(value) else {
            sequence_broken = true;
            anomalies.push(
                base(
                    AnomalyKind::LockCounterMismatch,
                    format!(
                        "the counter took the value {value:?} at revision {}, not \"<n>/<holder>\"",
                        e.revision
                    ),
                )
                .with_revision(e.revision),
            );
            continue;
        };
        let previous = increments.last().map_or(0, |i| i.n);
        if n != previous + 1 {
            sequence_broken = true;
            let (kind, what) = if n <= previous {
                (
                    AnomalyKind::DoubledIncrement,
                    format!("went back from {previous} to {n}"),
                )
            } else {
                (
                    AnomalyKind::LostIncrement,
                    format!(
                        "jumped from {previous} to {n}, skipping {}",
                        n - previous - 1
                    ),
                )
            };
            let mut holders = vec![holder];
            holders.extend(increments.last().map(|i| i.holder));
            anomalies.push(
                base(
                    kind,
                    format!(
                        "the counter {what} at revision {} (by holder {holder})",
                        e.revision
                    ),
                )
                .with_locks(holders)
                .with_revision(e.revision),
            );
        }
        increments.push(Increment {
            n,
            holder,
            revision: e.revision,
        });
    }
    anomalies.extend(interleavings(counter, records, &increments));
    // Each record's writes: acknowledged ones are there; none succeeded after a later
    // holder acquired the lock.
    let mut queue: Vec<&LockRecord> = records.to_vec();
    queue.sort_by_key(|r| r.owner_revision);
    let mut applied = 0u64;
    let mut unknown_values: HashSet<&str> = HashSet::new();
    for (position, record) in queue.iter().enumerate() {
        // The later holder of the same lock that acquired it first.
        let later = queue[position + 1..]
            .iter()
            .filter(|r| r.name == record.name)
            .min_by_key(|r| r.acquired);
        for id in &record.writes {
            let Some(op) = ops.get(id) else {
                anomalies.push(
                    base(
                        AnomalyKind::MalformedHistory,
                        format!(
                            "lock holder {} lists write #{id}, which is not in the history",
                            record.id
                        ),
                    )
                    .with_locks([record.id]),
                );
                continue;
            };
            let Request::Cas { value, .. } = &op.request else {
                anomalies.push(
                    base(
                        AnomalyKind::MalformedHistory,
                        format!(
                            "lock holder {} lists #{id}, which is not a compare-and-set",
                            record.id
                        ),
                    )
                    .with_locks([record.id])
                    .with_ops([*id]),
                );
                continue;
            };
            match &op.outcome {
                Outcome::Cas {
                    revision,
                    succeeded: true,
                } => {
                    applied += 1;
                    let there = index
                        .puts_of_value(value)
                        .any(|e| e.key == counter && e.revision == *revision);
                    if !there {
                        anomalies.push(
                            base(
                                AnomalyKind::LostIncrement,
                                format!(
                                    "{} (holder {}) was acknowledged at revision {revision}, but the counter's history {}",
                                    describe_op(op),
                                    record.id,
                                    match index.puts_of_value(value).find(|e| e.key == counter) {
                                        Some(e) => format!("has it at revision {}", e.revision),
                                        None => "does not have it".into(),
                                    }
                                ),
                            )
                            .with_locks([record.id])
                            .with_ops([*id])
                            .with_revision(*revision),
                        );
                    }
                    if let Some(later) = later.filter(|l| l.acquired < op.call) {
                        anomalies.push(
                            base(
                                AnomalyKind::TwoLockHolders,
                                format!(
                                    "{} by holder {} (queued at revision {}) was invoked after holder {} (queued at revision {}) \
                                     acquired the lock, and still succeeded",
                                    describe_op(op),
                                    record.id,
                                    record.owner_revision,
                                    later.id,
                                    later.owner_revision
                                ),
                            )
                            .with_locks([record.id, later.id])
                            .with_ops([*id])
                            .with_revision(*revision),
                        );
                    }
                }
                Outcome::Unknown { .. } => {
                    unknown_values.insert(value.as_str());
                }
                _ => {}
            }
        }
    }
    // Unknown increments that applied: the counter's values they wrote that no acknowledged
    // write claims (a holder may write a value again after an unknown outcome).
    applied += index
        .events_of(counter)
        .filter_map(|e| Some((e.revision, &e.kv.as_ref()?.value)))
        .filter(|(r, v)| {
            unknown_values.contains(v.as_str()) && !acknowledged.claims(counter, v, *r)
        })
        .count() as u64;
    if !sequence_broken {
        let last = increments.last().map_or(0, |i| i.n);
        if last != applied {
            anomalies.push(base(
                AnomalyKind::LockCounterMismatch,
                format!("the counter ends at {last}, but {applied} recorded increments applied"),
            ));
        }
    }
    anomalies
}

/// Holders' writes must form contiguous blocks, in queue order.
fn interleavings(counter: &str, records: &[&LockRecord], increments: &[Increment]) -> Vec<Anomaly> {
    let by_id: HashMap<u32, &LockRecord> = records.iter().map(|r| (r.id, *r)).collect();
    let mut anomalies = Vec::new();
    let mut done: HashSet<u32> = HashSet::new();
    let mut reported: HashSet<(u32, u32)> = HashSet::new();
    let mut current: Option<(u32, i64)> = None;
    for inc in increments {
        match current {
            Some((holder, _)) if holder == inc.holder => continue,
            Some((holder, _)) => {
                done.insert(holder);
            }
            None => {}
        }
        let before = current.map(|(h, _)| h);
        current = Some((inc.holder, inc.revision));
        let Some(previous) = before else { continue };
        if done.contains(&inc.holder) && reported.insert((inc.holder, previous)) {
            anomalies.push(
                Anomaly::new(
                    AnomalyKind::TwoLockHolders,
                    format!(
                        "holder {} wrote the counter again at revision {} after holder {previous} had written it: their writes interleave",
                        inc.holder, inc.revision
                    ),
                )
                .with_key(counter)
                .with_locks([inc.holder, previous])
                .with_revision(inc.revision),
            );
            continue;
        }
        // Blocks in queue order, for holders of one lock.
        if let (Some(a), Some(b)) = (by_id.get(&previous), by_id.get(&inc.holder)) {
            if a.name == b.name
                && b.owner_revision < a.owner_revision
                && reported.insert((inc.holder, previous))
            {
                anomalies.push(
                    Anomaly::new(
                        AnomalyKind::TwoLockHolders,
                        format!(
                            "holder {} (queued at revision {}) wrote the counter at revision {} after holder {previous} \
                             (queued later, at revision {}): the earlier holder still wrote after the later one held the lock",
                            b.id, b.owner_revision, inc.revision, a.owner_revision
                        ),
                    )
                    .with_key(counter)
                    .with_locks([b.id, a.id])
                    .with_revision(inc.revision),
                );
            }
        }
    }
    anomalies
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Kit;
    use crate::history::{Expect, Time};

    /// Holders 1, 2, 3 one after another, each making `n` increments; holder 2's second
    /// increment has an unknown outcome and applied.
    fn valid() -> Kit {
        let mut kit = Kit::new();
        let mut t: Time = 0;
        let mut n = 0;
        for holder in 1..=3u32 {
            let owner_key = format!("lock/{holder}");
            let owner_revision = kit.apply_put(&owner_key, "", 0);
            let acquired = t;
            let mut writes = Vec::new();
            for i in 0..3 {
                let m = kit.current("counter").map_or(0, |kv| kv.mod_revision);
                n += 1;
                let value = format!("{n}/{holder}");
                if holder == 2 && i == 1 {
                    let id = kit.unknown_put_value(holder, "counter", &value, t);
                    kit.op_mut(id).request = Request::Cas {
                        key: "counter".into(),
                        expect: Expect::ModRevision(m),
                        value: value.clone(),
                    };
                    kit.apply_put("counter", &value, 0);
                    writes.push(id);
                } else {
                    writes.push(kit.cas_value(
                        holder,
                        "counter",
                        Expect::ModRevision(m),
                        &value,
                        t,
                        t + 5,
                    ));
                }
                t += 10;
            }
            kit.apply_delete(&owner_key);
            kit.history.locks.push(LockRecord {
                id: holder,
                client: holder,
                name: "lock/".into(),
                owner_key,
                owner_revision,
                counter_key: "counter".into(),
                acquired,
                released: Some(t),
                writes,
                stale: false,
            });
            t += 10;
        }
        kit
    }

    fn kinds(history: &History) -> Vec<AnomalyKind> {
        let mut kinds: Vec<AnomalyKind> = check(history).iter().map(|a| a.kind).collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    #[test]
    fn valid_history_passes() {
        let history = valid().finish();
        assert_eq!(check(&history), []);
        assert!(
            crate::check::check(&history).is_empty(),
            "{:#?}",
            crate::check::check(&history)
        );
    }

    #[test]
    fn two_holders_interleaving() {
        let mut kit = valid();
        // Holder 1 writes again after holder 3 (its lock long lost, the fence failed to hold).
        let m = kit.current("counter").unwrap().mod_revision;
        let id = kit.cas_value(1, "counter", Expect::ModRevision(m), "10/1", 1_000, 1_010);
        kit.history.locks[0].writes.push(id);
        assert_eq!(kinds(&kit.finish()), [AnomalyKind::TwoLockHolders]);
    }

    #[test]
    fn earlier_holder_writing_last() {
        let mut history = valid().finish();
        // Holders 1 and 3 swap their queue places: holder 1's block now comes after a holder
        // queued after it.
        let (r1, r3) = (
            history.locks[0].owner_revision,
            history.locks[2].owner_revision,
        );
        history.locks[0].owner_revision = r3;
        history.locks[2].owner_revision = r1;
        assert_eq!(kinds(&history), [AnomalyKind::TwoLockHolders]);
    }

    #[test]
    fn lost_increment() {
        let mut history = valid().finish();
        // The store's 4th value is gone: 3 is followed by 5, and holder 2's acknowledged
        // increment is missing.
        let store = history.store.as_mut().unwrap();
        let i = store
            .events
            .iter()
            .position(|e| e.kv.as_ref().is_some_and(|kv| kv.value == "4/2"))
            .unwrap();
        store.events.remove(i);
        assert_eq!(kinds(&history), [AnomalyKind::LostIncrement]);
    }

    #[test]
    fn doubled_increment() {
        let mut kit = valid();
        let m = kit.current("counter").unwrap().mod_revision;
        // Holder 3 writes 9 again (say, a retry that read a stale counter).
        let id = kit.cas_value(3, "counter", Expect::ModRevision(m), "9/3", 100, 105);
        kit.history.locks[2].writes.push(id);
        assert_eq!(kinds(&kit.finish()), [AnomalyKind::DoubledIncrement]);
    }

    #[test]
    fn acknowledged_increment_overwritten() {
        let mut kit = valid();
        // An acknowledged increment the store does not have, with the sequence intact.
        let id = kit.cas_value(3, "counter", Expect::ModRevision(1), "10/3", 100, 105);
        kit.op_mut(id).outcome = Outcome::Cas {
            revision: kit.revision() + 1,
            succeeded: true,
        };
        kit.history.locks[2].writes.push(id);
        assert_eq!(
            kinds(&kit.finish()),
            [AnomalyKind::LostIncrement, AnomalyKind::LockCounterMismatch]
        );
    }

    #[test]
    fn write_after_a_later_holder_acquired() {
        let mut kit = valid();
        // Holder 1's last write was invoked after holder 2 acquired the lock.
        let late = kit.history.locks[0].writes[2];
        let acquired = kit.history.locks[1].acquired;
        kit.op_mut(late).call = acquired + 1;
        kit.op_mut(late).ret = Some(acquired + 2);
        assert_eq!(kinds(&kit.finish()), [AnomalyKind::TwoLockHolders]);
    }

    /// Holder 4 acquires, loses its ownership key (its session expired), then tries an
    /// increment whose counter comparison holds: the fencing compare makes it fail.
    fn lost_lock(kit: &mut Kit) -> u64 {
        let owner_revision = kit.apply_put("lock/4", "", 0);
        kit.apply_delete("lock/4");
        let m = kit.current("counter").unwrap().mod_revision;
        let id = kit.cas_value(
            4,
            "counter",
            Expect::Value("nope".into()),
            "10/4",
            1_000,
            1_010,
        );
        kit.op_mut(id).request = Request::Cas {
            key: "counter".into(),
            expect: Expect::ModRevision(m),
            value: "10/4".into(),
        };
        kit.history.locks.push(LockRecord {
            id: 4,
            client: 4,
            name: "lock/".into(),
            owner_key: "lock/4".into(),
            owner_revision,
            counter_key: "counter".into(),
            acquired: 990,
            released: Some(1_020),
            writes: vec![id],
            stale: false,
        });
        id
    }

    #[test]
    fn fenced_write_of_a_lost_lock_fails_quietly() {
        let mut kit = valid();
        lost_lock(&mut kit);
        let history = kit.finish();
        let all = crate::check::check(&history);
        assert!(all.is_empty(), "{all:#?}");
    }

    #[test]
    fn fenced_write_succeeding_without_ownership() {
        let mut kit = valid();
        let id = lost_lock(&mut kit);
        let revision = kit.apply_put("counter", "10/4", 0);
        kit.op_mut(id).outcome = Outcome::Cas {
            revision,
            succeeded: true,
        };
        let history = kit.finish();
        let all: Vec<AnomalyKind> = crate::check::check(&history)
            .iter()
            .map(|a| a.kind)
            .collect();
        assert_eq!(all, [AnomalyKind::CompareMismatch], "{all:?}");
    }

    #[test]
    fn unknown_write_listed_but_missing_op() {
        let mut history = valid().finish();
        history.locks[0].writes.push(9_999);
        assert_eq!(kinds(&history), [AnomalyKind::MalformedHistory]);
    }
}
