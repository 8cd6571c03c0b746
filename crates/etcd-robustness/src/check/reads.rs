//! Reads against the store's history, whatever their kind:
//!
//! * every answered read equals the state of its key in the store at its header revision
//!   (value, create and mod revisions, version) ([`AnomalyKind::ReadMismatch`]); likewise a
//!   delete that found nothing found an absent key, a delete that deleted found one, and a
//!   compare-and-set's verdict is the comparison's truth in the store just before it
//!   ([`AnomalyKind::CompareMismatch`]); for a lock write, the comparison includes the
//!   fencing compare: the holder's ownership key exists with its create revision (etcd's
//!   `Mutex::IsOwner`);
//! * a linearizable read (`Linearizable`, `CacheConsistent`) is at least as new as every
//!   answer that came back before it was invoked: a write's revision, another linearizable
//!   read's header, of any key, since revisions are global ([`AnomalyKind::StaleRead`]);
//! * a serializable read is never older than what its client already got, from any member
//!   ([`AnomalyKind::ReadWentBackwards`]): the client keeps a revision floor and refuses an
//!   answer below it (etcd-kv's `floor`; a member's applied revision only grows, but the
//!   member a client moves to may lag). Cache reads come from the client's cache and do
//!   not count.
//!
//! What it cannot see: whether a serializable or cache read's revision is recent enough
//! (they may lag by design), and reads whose header is older than the store's first
//! revision (keys did not exist then, so they must be absent).

use std::collections::HashMap;

use super::store::{holds, same_kv, show_kv, StoreIndex};
use super::{describe_op, missing_store, Anomaly, AnomalyKind};
use crate::history::{History, LockRecord, Op, Outcome, ReadKind, Request, Time};

/// Checks every read against the store's history, for staleness and for monotonicity.
pub fn check(history: &History) -> Vec<Anomaly> {
    let Some(store) = &history.store else {
        return vec![missing_store("the reads check")];
    };
    let index = StoreIndex::new(store);
    let fences: HashMap<u64, &LockRecord> = history
        .locks
        .iter()
        .flat_map(|l| l.writes.iter().map(move |&id| (id, l)))
        .collect();
    let mut anomalies: Vec<Anomaly> = history
        .ops
        .iter()
        .filter_map(|op| against_store(op, &index, &fences, store.last_revision))
        .collect();
    anomalies.extend(stale(history));
    anomalies.extend(backwards(history));
    anomalies
}

/// One answer against the store's state at its revision. A lock write (in `fences`) also
/// compares its holder's ownership key: it must exist with the holder's create revision.
fn against_store(
    op: &Op,
    index: &StoreIndex<'_>,
    fences: &HashMap<u64, &LockRecord>,
    last_revision: i64,
) -> Option<Anomaly> {
    let key = op.key();
    let anomaly = |kind, revision: i64, message: String| {
        Some(
            Anomaly::new(kind, message)
                .with_key(key)
                .with_ops([op.id])
                .with_revision(revision),
        )
    };
    match (&op.request, &op.outcome) {
        (Request::Get { .. }, Outcome::Get { revision, kv }) => {
            if *revision > last_revision {
                return anomaly(
                    AnomalyKind::ReadMismatch,
                    *revision,
                    format!(
                        "{} answered at revision {revision}, beyond the store's last revision {last_revision}",
                        describe_op(op)
                    ),
                );
            }
            let expected = index.state_at(key, *revision);
            let same = match (kv, expected) {
                (None, None) => true,
                (Some(a), Some(b)) => same_kv(a, b),
                _ => false,
            };
            if same {
                return None;
            }
            let origin = match kv {
                Some(kv) if index.puts_of_value(&kv.value).next().is_none() => {
                    " (a value the store never held)"
                }
                _ => "",
            };
            anomaly(
                AnomalyKind::ReadMismatch,
                *revision,
                format!(
                    "{} read {}{origin}, but at revision {revision} the store had {}",
                    describe_op(op),
                    show_kv(kv.as_ref()),
                    show_kv(expected)
                ),
            )
        }
        (Request::Delete { .. }, Outcome::Delete { revision, deleted }) => {
            // A delete that deleted created `revision`; one that did not answered at it.
            let at = if *deleted > 0 {
                revision - 1
            } else {
                *revision
            };
            let before = index.state_at(key, at);
            if (*deleted > 0) == before.is_some() {
                return None;
            }
            anomaly(
                AnomalyKind::CompareMismatch,
                *revision,
                format!(
                    "{} deleted {deleted}, but at revision {at} the store had {}",
                    describe_op(op),
                    show_kv(before)
                ),
            )
        }
        (
            Request::Cas { expect, .. },
            Outcome::Cas {
                revision,
                succeeded,
            },
        ) => {
            let at = if *succeeded { revision - 1 } else { *revision };
            let before = index.state_at(key, at);
            let fence = fences.get(&op.id).map(|lock| {
                let owner = index.state_at(&lock.owner_key, at);
                let owns = owner.is_some_and(|kv| kv.create_revision == lock.owner_revision);
                (lock, owner, owns)
            });
            let owns = fence.is_none_or(|(_, _, owns)| owns);
            if (holds(before, expect) && owns) == *succeeded {
                return None;
            }
            let fence = fence.map_or_else(String::new, |(lock, owner, _)| {
                format!(
                    " and its ownership key {:?} (holder {}, created at {}) was {}",
                    lock.owner_key,
                    lock.id,
                    lock.owner_revision,
                    show_kv(owner)
                )
            });
            anomaly(
                AnomalyKind::CompareMismatch,
                *revision,
                format!(
                    "{} answered swapped={succeeded}, but at revision {at} the store had {}{fence}",
                    describe_op(op),
                    show_kv(before)
                ),
            )
        }
        _ => None,
    }
}

/// True for answers whose revision the store had reached when they were made: everything
/// but serializable and cache reads.
fn linearizable_answer(op: &Op) -> bool {
    match &op.request {
        Request::Get { read, .. } => read.is_linearizable(),
        _ => true,
    }
}

/// Linearizable reads older than an answer that came back before they were invoked.
fn stale(history: &History) -> Vec<Anomaly> {
    let mut answered: Vec<(Time, i64, u64)> = history
        .ops
        .iter()
        .filter(|op| linearizable_answer(op))
        .filter_map(|op| Some((op.ret?, op.outcome.revision()?, op.id)))
        .collect();
    answered.sort_unstable();
    let mut reads: Vec<&Op> = history
        .ops
        .iter()
        .filter(|op| matches!(&op.request, Request::Get { read, .. } if read.is_linearizable()))
        .filter(|op| op.outcome.revision().is_some())
        .collect();
    reads.sort_by_key(|op| (op.call, op.id));
    let by_id: HashMap<u64, &Op> = history.ops.iter().map(|op| (op.id, op)).collect();
    let mut anomalies = Vec::new();
    let (mut i, mut newest) = (0, None::<(i64, u64)>);
    for read in reads {
        while i < answered.len() && answered[i].0 < read.call {
            let (_, rev, id) = answered[i];
            if newest.is_none_or(|(r, _)| rev > r) {
                newest = Some((rev, id));
            }
            i += 1;
        }
        let Some(h) = read.outcome.revision() else {
            continue;
        };
        let Some((rev, id)) = newest else { continue };
        if h >= rev {
            continue;
        }
        let before = by_id
            .get(&id)
            .map_or_else(|| format!("#{id}"), |op| describe_op(op));
        anomalies.push(
            Anomaly::new(
                AnomalyKind::StaleRead,
                format!(
                    "{} is at revision {h}, older than {before}, which came back at revision {rev} before the read was invoked",
                    describe_op(read)
                ),
            )
            .with_key(read.key())
            .with_ops([read.id, id])
            .with_revision(h),
        );
    }
    anomalies
}

/// Serializable reads older than what their client already got, from any member.
fn backwards(history: &History) -> Vec<Anomaly> {
    let mut by_client: HashMap<u32, Vec<&Op>> = HashMap::new();
    for op in &history.ops {
        // Cache reads answer from the client's cache, not from the member.
        if op.outcome.revision().is_none()
            || matches!(
                &op.request,
                Request::Get {
                    read: ReadKind::Cache | ReadKind::CacheConsistent,
                    ..
                }
            )
        {
            continue;
        }
        by_client.entry(op.client).or_default().push(op);
    }
    let mut anomalies = Vec::new();
    for mut ops in by_client.into_values() {
        ops.sort_by_key(|op| (op.call, op.id));
        let mut newest: Option<(i64, &Op)> = None;
        for op in ops {
            let Some(rev) = op.outcome.revision() else {
                continue;
            };
            let serializable = matches!(
                &op.request,
                Request::Get {
                    read: ReadKind::Serializable,
                    ..
                }
            );
            if let Some((seen, earlier)) = newest {
                // Only answers that came back before this call count.
                if serializable && rev < seen && earlier.ret.is_some_and(|ret| ret <= op.call) {
                    anomalies.push(
                        Anomaly::new(
                            AnomalyKind::ReadWentBackwards,
                            format!(
                                "{} from {} is at revision {rev}, older than {} from {} before",
                                describe_op(op),
                                op.endpoint.as_deref().unwrap_or("?"),
                                describe_op(earlier),
                                earlier.endpoint.as_deref().unwrap_or("?"),
                            ),
                        )
                        .with_key(op.key())
                        .with_ops([op.id, earlier.id])
                        .with_revision(rev),
                    );
                }
            }
            if newest.is_none_or(|(seen, _)| rev > seen) {
                newest = Some((rev, op));
            }
        }
    }
    anomalies.sort_by_key(|a| a.ops.first().copied());
    anomalies
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Kit;
    use crate::history::Expect;

    fn kinds(history: &History) -> Vec<AnomalyKind> {
        check(history).iter().map(|a| a.kind).collect()
    }

    fn valid() -> (Kit, i64) {
        let mut kit = Kit::new();
        kit.put(0, "k", 0, 10);
        let rev1 = kit.revision();
        kit.get(1, "k", 20, 30);
        kit.put(0, "k", 40, 50);
        kit.read_at(2, "k", ReadKind::Serializable, rev1, 60, 70);
        kit.read(2, "k", ReadKind::Serializable, 80, 90);
        kit.read(1, "k", ReadKind::CacheConsistent, 100, 110);
        kit.read_at(1, "k", ReadKind::Cache, rev1, 120, 130);
        kit.delete(0, "k", 140, 150);
        kit.delete(0, "k", 160, 170);
        kit.cas(0, "k", Expect::Absent, 180, 190);
        kit.cas(0, "k", Expect::Absent, 200, 210);
        kit.get(1, "other", 220, 230);
        (kit, rev1)
    }

    #[test]
    fn valid_history_passes() {
        let history = valid().0.finish();
        assert_eq!(kinds(&history), []);
        let all = crate::check::check(&history);
        assert!(all.is_empty(), "{all:#?}");
    }

    #[test]
    fn invented_read_value() {
        let (mut kit, _) = valid();
        let r = kit.get(1, "k", 300, 310);
        if let Outcome::Get { kv: Some(kv), .. } = &mut kit.op_mut(r).outcome {
            kv.value = "made up".into();
        }
        let anomalies = check(&kit.finish());
        assert_eq!(anomalies.len(), 1);
        assert_eq!(anomalies[0].kind, AnomalyKind::ReadMismatch);
        assert!(
            anomalies[0].message.contains("never held"),
            "{}",
            anomalies[0]
        );
    }

    #[test]
    fn cache_read_with_wrong_revision() {
        let (mut kit, rev1) = valid();
        let r = kit.read_at(1, "k", ReadKind::Cache, rev1, 300, 310);
        if let Outcome::Get { revision, .. } = &mut kit.op_mut(r).outcome {
            *revision += 1;
        }
        assert_eq!(kinds(&kit.finish()), [AnomalyKind::ReadMismatch]);
    }

    #[test]
    fn stale_read() {
        let (mut kit, rev1) = valid();
        // A linearizable read invoked after the second put came back, answering before it.
        kit.read_at(3, "k", ReadKind::Linearizable, rev1, 300, 310);
        let anomalies = check(&kit.finish());
        assert_eq!(anomalies.len(), 1, "{anomalies:#?}");
        assert_eq!(anomalies[0].kind, AnomalyKind::StaleRead);
        assert_eq!(anomalies[0].ops.len(), 2);
    }

    #[test]
    fn stale_read_across_keys() {
        let mut kit = Kit::new();
        kit.put(0, "a", 0, 10);
        let rev = kit.revision();
        kit.put(0, "b", 20, 30);
        kit.read_at(1, "a", ReadKind::Linearizable, rev, 40, 50);
        assert_eq!(kinds(&kit.finish()), [AnomalyKind::StaleRead]);
    }

    #[test]
    fn serializable_read_going_backwards() {
        let (mut kit, rev1) = valid();
        kit.read_at(2, "k", ReadKind::Serializable, rev1, 300, 310);
        assert_eq!(kinds(&kit.snapshot()), [AnomalyKind::ReadWentBackwards]);
        // From another member too: the client's floor is the client's.
        let last = kit.history.ops.len() - 1;
        kit.history.ops[last].endpoint = Some("http://127.0.0.1:22379".into());
        assert_eq!(kinds(&kit.snapshot()), [AnomalyKind::ReadWentBackwards]);
        // Another client may read older: it has seen nothing yet.
        kit.history.ops[last].client = 9;
        assert_eq!(kinds(&kit.finish()), []);
    }

    #[test]
    fn delete_and_cas_verdicts() {
        // A delete that found nothing while the key existed.
        let (mut kit, _) = valid();
        kit.put(0, "d", 300, 310);
        let d = kit.delete(0, "absent", 320, 330);
        kit.op_mut(d).request = Request::Delete { key: "d".into() };
        assert_eq!(kinds(&kit.finish()), [AnomalyKind::CompareMismatch]);
        // A compare-and-set that did not swap although its comparison held.
        let (mut kit, _) = valid();
        let current = kit.current("k").unwrap().value;
        let c = kit.cas(0, "k", Expect::Value("nope".into()), 300, 310);
        if let Request::Cas { expect, .. } = &mut kit.op_mut(c).request {
            *expect = Expect::Value(current);
        }
        assert_eq!(kinds(&kit.finish()), [AnomalyKind::CompareMismatch]);
    }
}
