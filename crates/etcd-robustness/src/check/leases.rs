//! Leases kept alive to the end: for each [`LeaseRecord`] whose keeper was still keeping it
//! when the run ended (`kept_to_end`, never revoked, no loss reported), the key attached to
//! it must not have been deleted after its put, and must exist at the store's last
//! revision ([`AnomalyKind::LeaseKeyVanished`]). A lease reported lost or revoked may have
//! lost its key or not.
//!
//! What it cannot see: a lease that expired and was never reported lost by its keeper but
//! whose key was never deleted (the store's history shows no expiry without a delete), and
//! the lease's own TTL.

use std::collections::HashMap;

use super::store::{show_kv, Acknowledged, StoreIndex};
use super::{describe_op, missing_store, Anomaly, AnomalyKind};
use crate::history::{EventKind, History, LeaseRecord, Op, Outcome, Request};

/// Checks that the keys of leases kept to the end are still there.
pub fn check(history: &History) -> Vec<Anomaly> {
    let Some(store) = &history.store else {
        return vec![missing_store("the lease check")];
    };
    let index = StoreIndex::new(store);
    let ops: HashMap<u64, &Op> = history.ops.iter().map(|op| (op.id, op)).collect();
    let acknowledged = Acknowledged::new(&history.ops);
    history
        .leases
        .iter()
        .filter(|l| l.kept_to_end && l.revoked.is_none() && l.lost.is_none())
        .filter_map(|l| check_lease(l, &ops, &index, &acknowledged))
        .collect()
}

fn check_lease(
    lease: &LeaseRecord,
    ops: &HashMap<u64, &Op>,
    index: &StoreIndex<'_>,
    acknowledged: &Acknowledged<'_>,
) -> Option<Anomaly> {
    let id = lease.put?;
    let base = |kind, message: String| {
        Anomaly::new(kind, message)
            .with_key(&lease.key)
            .with_lease(lease.lease)
    };
    let Some(put) = ops.get(&id) else {
        return Some(base(
            AnomalyKind::MalformedHistory,
            format!(
                "lease {:x} names put #{id}, which is not in the history",
                lease.lease
            ),
        ));
    };
    let Request::Put { value, .. } = &put.request else {
        return Some(
            base(
                AnomalyKind::MalformedHistory,
                format!("lease {:x} names #{id}, which is not a put", lease.lease),
            )
            .with_ops([id]),
        );
    };
    // When the key was put: the answer's revision, or where the store has an unknown put.
    let revision = match &put.outcome {
        Outcome::Put { revision } => *revision,
        Outcome::Unknown { .. } => index.unknown_write_revision(&lease.key, value, acknowledged)?,
        _ => return None,
    };
    if let Some(e) = index
        .events_of(&lease.key)
        .find(|e| e.kind == EventKind::Delete && e.revision > revision)
    {
        return Some(
            base(
                AnomalyKind::LeaseKeyVanished,
                format!(
                    "lease {:x} was kept alive to the end, yet its key {:?}, put by {}, was deleted at revision {}",
                    lease.lease,
                    lease.key,
                    describe_op(put),
                    e.revision
                ),
            )
            .with_ops([id])
            .with_revision(e.revision),
        );
    }
    let last = index.store.last_revision;
    match index.state_at(&lease.key, last) {
        Some(_) => None,
        None => Some(
            base(
                AnomalyKind::LeaseKeyVanished,
                format!(
                    "lease {:x} was kept alive to the end, yet its key {:?} (put by {}) is {} at the last revision {last}",
                    lease.lease,
                    lease.key,
                    describe_op(put),
                    show_kv(None)
                ),
            )
            .with_ops([id])
            .with_revision(last),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Kit;

    fn record(put: u64, kept: bool) -> LeaseRecord {
        LeaseRecord {
            client: 0,
            lease: 0xabc,
            ttl: 5,
            key: "lease/a".into(),
            put: Some(put),
            granted: 0,
            lost: None,
            revoked: None,
            kept_to_end: kept,
        }
    }

    fn kinds(history: &History) -> Vec<AnomalyKind> {
        check(history).iter().map(|a| a.kind).collect()
    }

    #[test]
    fn kept_lease_keeps_its_key() {
        let mut kit = Kit::new();
        let put = kit.put(0, "lease/a", 10, 20);
        kit.put(1, "other", 30, 40);
        kit.history.leases.push(record(put, true));
        let history = kit.finish();
        assert_eq!(kinds(&history), []);
        assert!(crate::check::check(&history).is_empty());
    }

    #[test]
    fn key_vanished_under_a_live_keeper() {
        let mut kit = Kit::new();
        let put = kit.put(0, "lease/a", 10, 20);
        kit.apply_delete("lease/a");
        kit.history.leases.push(record(put, true));
        let anomalies = check(&kit.finish());
        assert_eq!(anomalies.len(), 1);
        assert_eq!(anomalies[0].kind, AnomalyKind::LeaseKeyVanished);
        assert_eq!(anomalies[0].lease, Some(0xabc));
    }

    #[test]
    fn lost_or_revoked_leases_may_lose_their_key() {
        let mut kit = Kit::new();
        let put = kit.put(0, "lease/a", 10, 20);
        kit.apply_delete("lease/a");
        let mut lost = record(put, false);
        lost.lost = Some((30, "keep-alive failed".into()));
        kit.history.leases.push(lost);
        let mut revoked = record(put, true);
        revoked.revoked = Some(30);
        kit.history.leases.push(revoked);
        let history = kit.finish();
        assert_eq!(kinds(&history), []);
        assert!(
            crate::check::check(&history).is_empty(),
            "{:#?}",
            crate::check::check(&history)
        );
    }

    #[test]
    fn acknowledged_put_never_in_the_store() {
        let mut kit = Kit::new();
        let put = kit.put(0, "lease/a", 10, 20);
        kit.history.leases.push(record(put, true));
        let mut history = kit.finish();
        history.store.as_mut().unwrap().events.clear();
        assert_eq!(kinds(&history), [AnomalyKind::LeaseKeyVanished]);
    }

    #[test]
    fn unknown_put_that_never_applied_is_fine() {
        let mut kit = Kit::new();
        let put = kit.unknown_put(0, "lease/a", 10, false);
        kit.history.leases.push(record(put, true));
        assert_eq!(kinds(&kit.finish()), []);
    }
}
