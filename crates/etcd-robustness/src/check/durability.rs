//! Durability, against the store's history read back after the run:
//!
//! * every acknowledged write is in the store at its revision: a put or a swapped
//!   compare-and-set is a Put event of its key with its value at exactly its revision, a
//!   delete that deleted the key is a Delete event of it at its revision
//!   ([`AnomalyKind::LostWrite`]);
//! * a definitely failed write is not there: its unique value never appears
//!   ([`AnomalyKind::FailedWriteApplied`]), nor does a compare-and-set answered "not swapped"
//!   ([`AnomalyKind::CasFailedButApplied`]);
//! * no value is put twice ([`AnomalyKind::DuplicateWrite`]: one request applied twice);
//! * nothing is invented ([`AnomalyKind::InventedWrite`]): every Put event carries the value
//!   of an operation on its key, every Delete event is an acknowledged delete at that
//!   revision, a delete of unknown outcome invoked before it (each explains one), or the
//!   end of a lease whose key it is. The lock workload's ownership keys (under a lock's
//!   name, written by the lock itself, not by operations) are exempt;
//! * the store's history itself is sane ([`AnomalyKind::InvalidStoreHistory`]): events in
//!   nondecreasing revision order, inside `first_revision..=last_revision`, Put events with
//!   the key-value their revision implies (create revision, version).
//!
//! What it cannot see: a write of unknown outcome may or may not be there; a delete of
//! unknown outcome cannot be told apart from another one of the same key.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::store::StoreIndex;
use super::{describe_op, missing_store, revision_lower_bounds, Anomaly, AnomalyKind};
use crate::history::{Event, EventKind, History, KeyValue, Op, Outcome, Request};

/// Checks the durability of writes against the store's history.
pub fn check(history: &History) -> Vec<Anomaly> {
    let Some(store) = &history.store else {
        return vec![missing_store("the durability check")];
    };
    let index = StoreIndex::new(store);
    let mut anomalies = validate_store(history);
    let writers = writers(history);
    for op in &history.ops {
        anomalies.extend(check_op(op, &index, &writers, store.last_revision));
    }
    anomalies.extend(duplicates(&index, &writers));
    anomalies.extend(invented(history, &index));
    anomalies
}

/// The store's history must be ordered, inside its range, and each Put event's key-value
/// must follow from the key's previous event.
fn validate_store(history: &History) -> Vec<Anomaly> {
    let Some(store) = &history.store else {
        return Vec::new();
    };
    let mut anomalies = Vec::new();
    let mut previous: Option<&Event> = None;
    let mut keys: HashMap<&str, Option<&KeyValue>> = HashMap::new();
    for e in &store.events {
        if let Some(p) = previous {
            if e.revision < p.revision {
                anomalies.push(
                    Anomaly::new(
                        AnomalyKind::InvalidStoreHistory,
                        format!(
                            "the store's history goes back from revision {} to {} ({:?})",
                            p.revision, e.revision, e.key
                        ),
                    )
                    .with_key(&e.key)
                    .with_revision(e.revision),
                );
            }
        }
        previous = Some(e);
        if e.revision < store.first_revision || e.revision > store.last_revision {
            anomalies.push(
                Anomaly::new(
                    AnomalyKind::InvalidStoreHistory,
                    format!(
                        "a store event at revision {} is outside {}..={}",
                        e.revision, store.first_revision, store.last_revision
                    ),
                )
                .with_key(&e.key)
                .with_revision(e.revision),
            );
        }
        let before = keys.get(e.key.as_str()).copied().flatten();
        match (e.kind, &e.kv) {
            (EventKind::Put, Some(kv)) => {
                let (create, version) = match before {
                    Some(b) => (b.create_revision, b.version + 1),
                    None => (e.revision, 1),
                };
                if kv.mod_revision != e.revision
                    || kv.create_revision != create
                    || kv.version != version
                {
                    anomalies.push(
                        Anomaly::new(
                            AnomalyKind::InvalidStoreHistory,
                            format!(
                                "the store's Put of {:?} at revision {} has create {}, mod {}, version {}; \
                                 its previous state implies create {create}, mod {}, version {version}",
                                e.key, e.revision, kv.create_revision, kv.mod_revision, kv.version, e.revision
                            ),
                        )
                        .with_key(&e.key)
                        .with_revision(e.revision),
                    );
                }
                keys.insert(&e.key, Some(kv));
            }
            (EventKind::Put, None) => anomalies.push(
                Anomaly::new(
                    AnomalyKind::InvalidStoreHistory,
                    format!(
                        "the store's Put of {:?} at revision {} has no value",
                        e.key, e.revision
                    ),
                )
                .with_key(&e.key)
                .with_revision(e.revision),
            ),
            (EventKind::Delete, _) => {
                keys.insert(&e.key, None);
            }
        }
    }
    anomalies
}

/// The operations that write each (key, value).
type Writers<'a> = HashMap<(&'a str, &'a str), Vec<&'a Op>>;

fn writers(history: &History) -> Writers<'_> {
    let mut writers: Writers<'_> = HashMap::new();
    for op in &history.ops {
        if let Some(value) = op.request.written_value() {
            writers.entry((op.key(), value)).or_default().push(op);
        }
    }
    writers
}

/// A Put event of `value` that the write `op` (which did not apply) would have made and
/// that no other operation explains: one acknowledged at that revision, or one of unknown
/// outcome (a workload may write a value again after an unknown outcome).
fn unexplained<'a>(
    op: &Op,
    value: &str,
    index: &StoreIndex<'a>,
    writers: &Writers<'_>,
) -> Option<&'a Event> {
    index.puts_of_value(value).find(|e| {
        let others = writers
            .get(&(e.key.as_str(), value))
            .map_or(&[][..], Vec::as_slice);
        !others.iter().any(|o| {
            o.id != op.id
                && match &o.outcome {
                    Outcome::Unknown { .. } => true,
                    Outcome::Put { revision }
                    | Outcome::Cas {
                        revision,
                        succeeded: true,
                    } => *revision == e.revision,
                    _ => false,
                }
        })
    })
}

/// One operation against the store.
fn check_op(
    op: &Op,
    index: &StoreIndex<'_>,
    writers: &Writers<'_>,
    last_revision: i64,
) -> Option<Anomaly> {
    let key = op.key();
    let anomaly =
        |kind, message: String| Some(Anomaly::new(kind, message).with_key(key).with_ops([op.id]));
    match (&op.request, &op.outcome) {
        (Request::Put { value, .. }, Outcome::Put { revision })
        | (
            Request::Cas { value, .. },
            Outcome::Cas {
                revision,
                succeeded: true,
            },
        ) => {
            let found: Vec<&Event> = index.puts_of_value(value).collect();
            if found
                .iter()
                .any(|e| e.key == key && e.revision == *revision)
            {
                return None;
            }
            let where_ = if found.is_empty() {
                if *revision > last_revision {
                    format!("not in the store, whose last revision is {last_revision}")
                } else {
                    "never in the store".to_string()
                }
            } else {
                let places: Vec<String> = found
                    .iter()
                    .map(|e| format!("{:?} at r{}", e.key, e.revision))
                    .collect();
                format!("in the store as {}", places.join(", "))
            };
            anomaly(
                AnomalyKind::LostWrite,
                format!(
                    "{} was acknowledged at revision {revision}, but is {where_}",
                    describe_op(op)
                ),
            )
            .map(|a| a.with_revision(*revision))
        }
        (
            Request::Delete { .. },
            Outcome::Delete {
                revision,
                deleted: 1,
            },
        ) => {
            let found = index
                .events_of(key)
                .any(|e| e.kind == EventKind::Delete && e.revision == *revision);
            if found {
                return None;
            }
            anomaly(
                AnomalyKind::LostWrite,
                format!(
                    "{} deleted the key at revision {revision}, but the store has no delete of it then",
                    describe_op(op)
                ),
            )
            .map(|a| a.with_revision(*revision))
        }
        (Request::Put { value, .. } | Request::Cas { value, .. }, Outcome::Failed { .. }) => {
            let e = unexplained(op, value, index, writers)?;
            anomaly(
                AnomalyKind::FailedWriteApplied,
                format!(
                    "{} definitely failed, yet the store has its value in {:?} at revision {}",
                    describe_op(op),
                    e.key,
                    e.revision
                ),
            )
            .map(|a| a.with_revision(e.revision))
        }
        (
            Request::Cas { value, .. },
            Outcome::Cas {
                succeeded: false, ..
            },
        ) => {
            let e = unexplained(op, value, index, writers)?;
            anomaly(
                AnomalyKind::CasFailedButApplied,
                format!(
                    "{} did not swap, yet the store has its value in {:?} at revision {}",
                    describe_op(op),
                    e.key,
                    e.revision
                ),
            )
            .map(|a| a.with_revision(e.revision))
        }
        _ => None,
    }
}

/// Values put more than once.
fn duplicates(index: &StoreIndex<'_>, writers: &Writers<'_>) -> Vec<Anomaly> {
    let mut counts: BTreeMap<(i64, &str), Vec<&Event>> = BTreeMap::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for e in &index.store.events {
        let Some(kv) = &e.kv else { continue };
        if e.kind != EventKind::Put || kv.value.is_empty() || !seen.insert(&kv.value) {
            continue;
        }
        let all: Vec<&Event> = index.puts_of_value(&kv.value).collect();
        if all.len() > 1 {
            counts.insert((e.revision, kv.value.as_str()), all);
        }
    }
    counts
        .into_iter()
        .map(|((_, value), events)| {
            let places: Vec<String> = events
                .iter()
                .map(|e| format!("{:?} at r{}", e.key, e.revision))
                .collect();
            Anomaly::new(
                AnomalyKind::DuplicateWrite,
                format!(
                    "the value {value:?} was put {} times: {}",
                    events.len(),
                    places.join(", ")
                ),
            )
            .with_key(&events[0].key)
            .with_revision(events[1].revision)
            .with_ops(
                events
                    .iter()
                    .filter_map(|e| writers.get(&(e.key.as_str(), value)))
                    .flatten()
                    .map(|op| op.id),
            )
        })
        .collect()
}

/// True for the keys the lock workload's lock writes itself: an ownership key, or a key
/// under a lock's name that no operation touches.
fn lock_key(history: &History, op_keys: &HashSet<&str>, key: &str) -> bool {
    history.locks.iter().any(|l| {
        l.owner_key == key
            || (!l.name.is_empty() && key.starts_with(&l.name) && !op_keys.contains(key))
    })
}

/// Store changes nothing explains.
fn invented(history: &History, index: &StoreIndex<'_>) -> Vec<Anomaly> {
    let op_keys: HashSet<&str> = history.ops.iter().map(Op::key).collect();
    let mut writers: HashSet<(&str, &str)> = HashSet::new();
    let mut acknowledged_deletes: HashSet<(&str, i64)> = HashSet::new();
    let mut unknown_deletes: HashMap<&str, Vec<(i64, u64)>> = HashMap::new();
    let bounds = revision_lower_bounds(&history.ops);
    for op in &history.ops {
        match (&op.request, &op.outcome) {
            (Request::Put { key, value } | Request::Cas { key, value, .. }, _) => {
                writers.insert((key, value));
            }
            (
                Request::Delete { key },
                Outcome::Delete {
                    revision,
                    deleted: 1,
                },
            ) => {
                acknowledged_deletes.insert((key, *revision));
            }
            (Request::Delete { key }, Outcome::Unknown { .. }) => {
                let lb = bounds.get(&op.id).copied().unwrap_or(0);
                unknown_deletes.entry(key).or_default().push((lb, op.id));
            }
            _ => {}
        }
    }
    // Largest lower bound first: the least flexible delete explains an event first.
    for deletes in unknown_deletes.values_mut() {
        deletes.sort_unstable_by(|a, b| b.cmp(a));
    }
    let mut lease_ends: HashMap<&str, usize> = HashMap::new();
    for lease in &history.leases {
        *lease_ends.entry(lease.key.as_str()).or_default() += 1;
    }
    let mut anomalies = Vec::new();
    for e in &index.store.events {
        if lock_key(history, &op_keys, &e.key) {
            continue;
        }
        match e.kind {
            EventKind::Put => {
                let Some(kv) = &e.kv else { continue };
                if writers.contains(&(e.key.as_str(), kv.value.as_str())) {
                    continue;
                }
                let elsewhere = if index.puts_of_value(&kv.value).count() > 0
                    && history
                        .ops
                        .iter()
                        .any(|op| op.request.written_value() == Some(kv.value.as_str()))
                {
                    " (an operation wrote it to another key)"
                } else {
                    ""
                };
                anomalies.push(
                    Anomaly::new(
                        AnomalyKind::InventedWrite,
                        format!(
                            "the store put {:?} into {:?} at revision {}, a value no operation wrote there{elsewhere}",
                            kv.value, e.key, e.revision
                        ),
                    )
                    .with_key(&e.key)
                    .with_revision(e.revision),
                );
            }
            EventKind::Delete => {
                if acknowledged_deletes.contains(&(e.key.as_str(), e.revision)) {
                    continue;
                }
                if let Some(deletes) = unknown_deletes.get_mut(e.key.as_str()) {
                    if let Some(pos) = deletes.iter().position(|&(lb, _)| lb < e.revision) {
                        deletes.remove(pos);
                        continue;
                    }
                }
                if let Some(n) = lease_ends.get_mut(e.key.as_str()) {
                    if *n > 0 {
                        *n -= 1;
                        continue;
                    }
                }
                anomalies.push(
                    Anomaly::new(
                        AnomalyKind::InventedWrite,
                        format!(
                            "the store deleted {:?} at revision {}, and no delete or lease explains it",
                            e.key, e.revision
                        ),
                    )
                    .with_key(&e.key)
                    .with_revision(e.revision),
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
    use crate::history::{Expect, LeaseRecord, LockRecord};

    fn kinds(history: &History) -> Vec<AnomalyKind> {
        check(history).iter().map(|a| a.kind).collect()
    }

    /// A valid history with every kind of write, unknown ones, a lease and a lock.
    fn valid() -> Kit {
        let mut kit = Kit::new();
        kit.put(0, "k", 0, 10);
        kit.cas(0, "k", Expect::Absent, 20, 30);
        kit.unknown_put(1, "k", 40, true);
        kit.unknown_put(1, "k", 50, false);
        kit.failed_put(2, "k", 60, 70);
        kit.delete(0, "k", 80, 90);
        kit.put(0, "k", 100, 110);
        kit.unknown_delete(1, "k", 120, true);
        let put = kit.put(3, "lease", 130, 140);
        kit.apply_delete("lease");
        kit.history.leases.push(LeaseRecord {
            client: 3,
            lease: 1,
            ttl: 1,
            key: "lease".into(),
            put: Some(put),
            granted: 125,
            lost: Some((150, "expired".into())),
            revoked: None,
            kept_to_end: false,
        });
        let owner_revision = kit.apply_put("lock/1", "", 0);
        let w = kit.cas_value(4, "counter", Expect::ModRevision(0), "1/1", 200, 210);
        kit.apply_delete("lock/1");
        kit.history.locks.push(LockRecord {
            id: 1,
            client: 4,
            name: "lock/".into(),
            owner_key: "lock/1".into(),
            owner_revision,
            counter_key: "counter".into(),
            acquired: 190,
            released: Some(220),
            writes: vec![w],
            stale: false,
        });
        kit
    }

    #[test]
    fn valid_history_passes() {
        let history = valid().finish();
        assert_eq!(kinds(&history), []);
        let all = crate::check::check(&history);
        assert!(all.is_empty(), "{all:#?}");
    }

    #[test]
    fn lost_acknowledged_write() {
        let mut history = valid().finish();
        let store = history.store.as_mut().unwrap();
        let i = store
            .events
            .iter()
            .position(|e| e.key == "k" && e.kind == EventKind::Put)
            .unwrap();
        store.events.remove(i);
        // The next put of the key no longer follows from its previous state either.
        let kinds = kinds(&history);
        assert!(kinds.contains(&AnomalyKind::LostWrite), "{kinds:?}");
    }

    #[test]
    fn acknowledged_at_another_revision() {
        let mut kit = valid();
        let p = kit.put(0, "k", 300, 310);
        if let Outcome::Put { revision } = &mut kit.op_mut(p).outcome {
            *revision -= 1;
        }
        let anomalies = check(&kit.finish());
        assert_eq!(anomalies.len(), 1, "{anomalies:#?}");
        assert_eq!(anomalies[0].kind, AnomalyKind::LostWrite);
        assert!(
            anomalies[0].message.contains("in the store as"),
            "{}",
            anomalies[0]
        );
    }

    #[test]
    fn lost_delete() {
        let mut kit = valid();
        kit.put(0, "k", 300, 310);
        let d = kit.delete(0, "k", 320, 330);
        if let Outcome::Delete { revision, .. } = &mut kit.op_mut(d).outcome {
            *revision += 5;
        }
        let mut history = kit.finish();
        history.store.as_mut().unwrap().last_revision += 5;
        // The delete event at the real revision is now unexplained too.
        let mut k = kinds(&history);
        k.sort();
        assert_eq!(k, [AnomalyKind::LostWrite, AnomalyKind::InventedWrite]);
    }

    #[test]
    fn failed_write_applied() {
        let mut kit = valid();
        let f = kit.failed_put(2, "k", 300, 310);
        let value = kit.op(f).request.written_value().unwrap().to_string();
        kit.apply_put("k", &value, 0);
        assert_eq!(kinds(&kit.finish()), [AnomalyKind::FailedWriteApplied]);
    }

    #[test]
    fn cas_not_swapped_applied() {
        let mut kit = valid();
        let c = kit.cas(2, "k", Expect::Value("nope".into()), 300, 310);
        assert!(matches!(
            kit.op(c).outcome,
            Outcome::Cas {
                succeeded: false,
                ..
            }
        ));
        let value = kit.op(c).request.written_value().unwrap().to_string();
        kit.apply_put("k", &value, 0);
        assert_eq!(kinds(&kit.finish()), [AnomalyKind::CasFailedButApplied]);
    }

    #[test]
    fn a_value_written_again_after_an_unknown_outcome() {
        let mut kit = valid();
        // An unknown write of "again" applies; a retry of it fails its comparison, another
        // fails outright: the store's "again" is the unknown one's.
        let m = kit.current("k").map_or(0, |kv| kv.mod_revision);
        let u = kit.unknown_put_value(7, "k", "again", 300);
        kit.op_mut(u).request = Request::Cas {
            key: "k".into(),
            expect: Expect::ModRevision(m),
            value: "again".into(),
        };
        kit.apply_put("k", "again", 0);
        kit.cas_value(7, "k", Expect::ModRevision(m), "again", 400, 410);
        let f = kit.failed_put(7, "k", 420, 430);
        kit.op_mut(f).request = Request::Put {
            key: "k".into(),
            value: "again".into(),
        };
        let history = kit.finish();
        let all = crate::check::check(&history);
        assert!(all.is_empty(), "{all:#?}");
        // Without the unknown write, the store's "again" is the refused ones'.
        let mut without = history.clone();
        without.ops.retain(|op| op.id != u);
        let mut kinds = kinds(&without);
        kinds.sort();
        assert_eq!(
            kinds,
            [
                AnomalyKind::FailedWriteApplied,
                AnomalyKind::CasFailedButApplied
            ]
        );
    }

    #[test]
    fn invented_put_and_delete() {
        let mut kit = valid();
        kit.apply_put("k", "from nowhere", 0);
        assert_eq!(kinds(&kit.snapshot()), [AnomalyKind::InventedWrite]);
        kit.apply_delete("k");
        assert_eq!(
            kinds(&kit.finish()),
            [AnomalyKind::InventedWrite, AnomalyKind::InventedWrite]
        );
    }

    #[test]
    fn one_unknown_delete_explains_one_delete() {
        let mut kit = Kit::new();
        kit.put(0, "k", 0, 10);
        kit.unknown_delete(1, "k", 20, true);
        kit.put(0, "k", 30, 40);
        assert_eq!(kinds(&kit.snapshot()), []);
        kit.apply_delete("k");
        assert_eq!(kinds(&kit.finish()), [AnomalyKind::InventedWrite]);
    }

    #[test]
    fn value_applied_twice() {
        let mut kit = valid();
        let p = kit.put(0, "k", 300, 310);
        let value = kit.op(p).request.written_value().unwrap().to_string();
        kit.apply_put("k", &value, 0);
        let anomalies = check(&kit.finish());
        assert_eq!(anomalies.len(), 1);
        assert_eq!(anomalies[0].kind, AnomalyKind::DuplicateWrite);
        assert_eq!(anomalies[0].ops, [p]);
    }

    #[test]
    fn store_out_of_order_or_range() {
        let mut history = valid().finish();
        let store = history.store.as_mut().unwrap();
        store.events.swap(0, 1);
        assert!(kinds(&history).contains(&AnomalyKind::InvalidStoreHistory));
        let mut history = valid().finish();
        history.store.as_mut().unwrap().first_revision += 1;
        assert_eq!(kinds(&history), [AnomalyKind::InvalidStoreHistory]);
    }

    #[test]
    fn without_store_incomplete() {
        let mut history = valid().finish();
        history.store = None;
        assert_eq!(kinds(&history), [AnomalyKind::CheckIncomplete]);
    }
}
