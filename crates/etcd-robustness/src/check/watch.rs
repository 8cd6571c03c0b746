//! Watches against the store's history: the guarantees etcd's robustness suite checks
//! (`tests/robustness/validate/watch.go`: ordered, unique, atomic, reliable, resumable,
//! bookmarkable) and ours.
//!
//! For each [`WatchRecord`], with `from` its first revision (`start_revision`, or
//! `created_revision + 1` when that is 0) and `to` the revision it must have reached
//! (`caught_up_to`, or the last revision it delivered or a progress notification
//! announced, whichever is larger):
//!
//! * ordered: event revisions never go down ([`AnomalyKind::WatchUnordered`]), and the
//!   events of one revision come in the store's order;
//! * unique: no (revision, key) twice ([`AnomalyKind::WatchDuplicate`]);
//! * atomic: the events of one revision come in one response, never split over two
//!   ([`AnomalyKind::WatchSplitRevision`]);
//! * nothing invented: every event is the store's event at its (revision, key) — kind,
//!   value, create and mod revisions, version — inside the watched range and not before
//!   `from` ([`AnomalyKind::WatchInventedEvent`]);
//! * reliable and resumable: every store event of the range in `from..=to` is delivered
//!   ([`AnomalyKind::WatchMissedEvent`]);
//! * bookmarkable: no event at or below `p` comes after a progress notification at `p`
//!   ([`AnomalyKind::WatchProgressAhead`]); one that never comes is a missed event, since a
//!   notification extends `to`.
//!
//! * lasting: a watch survives every fault; one that ended with an error before the run was
//!   over is reported ([`AnomalyKind::WatchEnded`]), and checked up to where it got.
//!
//! Each watch reports each kind once, with how many times it happened.
//!
//! What it cannot see: events after `to` that were never delivered (the watch may just
//! not have got there), and the revision of event responses (only progress notifications'
//! revisions are checked).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::store::{in_range, same_kv};
use super::{missing_store, Anomaly, AnomalyKind};
use crate::history::{Event, EventKind, History, StoreHistory, WatchRecord};

/// Checks every watch of `history` against the store's history.
pub fn check(history: &History) -> Vec<Anomaly> {
    let Some(store) = &history.store else {
        return vec![missing_store("the watch check")];
    };
    let by_change: HashMap<(i64, &str), &Event> = store
        .events
        .iter()
        .map(|e| ((e.revision, e.key.as_str()), e))
        .collect();
    history
        .watches
        .iter()
        .flat_map(|w| check_watch(w, store, &by_change))
        .collect()
}

/// The first anomaly of each kind of one watch, and how many there were.
struct Findings {
    watch: u32,
    found: BTreeMap<AnomalyKind, (Anomaly, usize)>,
}

impl Findings {
    fn add(&mut self, kind: AnomalyKind, e: &Event, message: String) {
        let entry = self.found.entry(kind).or_insert_with(|| {
            (
                Anomaly::new(kind, message)
                    .with_key(&e.key)
                    .with_watch(self.watch)
                    .with_revision(e.revision),
                0,
            )
        });
        entry.1 += 1;
    }

    fn into_anomalies(self) -> Vec<Anomaly> {
        self.found
            .into_values()
            .map(|(mut anomaly, n)| {
                if n > 1 {
                    anomaly
                        .message
                        .push_str(&format!(" (and {} more like it in this watch)", n - 1));
                }
                anomaly
            })
            .collect()
    }
}

fn show(e: &Event) -> String {
    match (&e.kind, &e.kv) {
        (EventKind::Put, Some(kv)) => format!(
            "put {:?}={:?} at r{} (create {}, version {})",
            e.key, kv.value, e.revision, kv.create_revision, kv.version
        ),
        (EventKind::Put, None) => format!("put {:?} at r{} without a value", e.key, e.revision),
        (EventKind::Delete, _) => format!("delete {:?} at r{}", e.key, e.revision),
    }
}

/// True when a delivered event is the store's.
fn same_event(delivered: &Event, stored: &Event) -> bool {
    delivered.kind == stored.kind
        && match (delivered.kind, &delivered.kv, &stored.kv) {
            (EventKind::Delete, _, _) => true,
            (EventKind::Put, Some(a), Some(b)) => same_kv(a, b),
            (EventKind::Put, _, _) => false,
        }
}

fn check_watch(
    w: &WatchRecord,
    store: &StoreHistory,
    by_change: &HashMap<(i64, &str), &Event>,
) -> Vec<Anomaly> {
    let from = if w.start_revision > 0 {
        w.start_revision
    } else {
        w.created_revision + 1
    };
    let last_delivered = w
        .responses
        .iter()
        .map(|d| {
            d.events
                .iter()
                .map(|e| e.revision)
                .max()
                .unwrap_or(d.revision)
        })
        .max()
        .unwrap_or(0);
    // Events delivered (or promised by a progress notification) past `caught_up_to` count
    // too: a hole before them is a missed event.
    let to = w.caught_up_to.max(last_delivered);
    // Every store event the watch must deliver, in store order, from `from` on.
    let expected: Vec<&Event> = store
        .events
        .iter()
        .filter(|e| e.revision >= from && in_range(&e.key, &w.key, &w.range_end))
        .collect();
    let mut findings = Findings {
        watch: w.id,
        found: BTreeMap::new(),
    };
    if let Some(reason) = &w.ended {
        let message = format!(
            "watch {} of {:?} ended after {} deliveries: {reason}",
            w.id,
            w.key,
            w.responses.len()
        );
        // Its last deliveries are the ones to show.
        let mut anomaly = Anomaly::new(AnomalyKind::WatchEnded, message)
            .with_key(&w.key)
            .with_watch(w.id);
        if last_delivered > 0 {
            anomaly = anomaly.with_revision(last_delivered);
        }
        findings.found.insert(AnomalyKind::WatchEnded, (anomaly, 1));
    }
    let mut delivered: HashSet<(i64, &str)> = HashSet::new();
    let mut last_revision = 0;
    let mut last_response = usize::MAX;
    let mut progress = 0;
    // The keys of each revision, in the order delivered.
    let mut order: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for (n, d) in w.responses.iter().enumerate() {
        if d.progress {
            progress = progress.max(d.revision);
            continue;
        }
        for e in &d.events {
            let change = (e.revision, e.key.as_str());
            if e.revision <= progress {
                findings.add(
                    AnomalyKind::WatchProgressAhead,
                    e,
                    format!(
                        "watch {} delivered the {} after a progress notification at revision {progress}",
                        w.id,
                        show(e)
                    ),
                );
            }
            if !delivered.insert(change) {
                findings.add(
                    AnomalyKind::WatchDuplicate,
                    e,
                    format!("watch {} delivered the {} twice", w.id, show(e)),
                );
                continue;
            }
            if !in_range(&e.key, &w.key, &w.range_end) {
                findings.add(
                    AnomalyKind::WatchInventedEvent,
                    e,
                    format!(
                        "watch {} of {:?}..{:?} delivered the {}, outside its range",
                        w.id,
                        w.key,
                        w.range_end,
                        show(e)
                    ),
                );
                continue;
            }
            if e.revision < from {
                findings.add(
                    AnomalyKind::WatchInventedEvent,
                    e,
                    format!(
                        "watch {} from revision {from} delivered the earlier {}",
                        w.id,
                        show(e)
                    ),
                );
                continue;
            }
            match by_change.get(&change) {
                None => findings.add(
                    AnomalyKind::WatchInventedEvent,
                    e,
                    format!(
                        "watch {} delivered the {}, a change the store never made",
                        w.id,
                        show(e)
                    ),
                ),
                Some(stored) if !same_event(e, stored) => findings.add(
                    AnomalyKind::WatchInventedEvent,
                    e,
                    format!(
                        "watch {} delivered the {}, but the store's change is the {}",
                        w.id,
                        show(e),
                        show(stored)
                    ),
                ),
                Some(_) => {}
            }
            if e.revision < last_revision {
                findings.add(
                    AnomalyKind::WatchUnordered,
                    e,
                    format!(
                        "watch {} delivered the {} after revision {last_revision}",
                        w.id,
                        show(e)
                    ),
                );
            } else if e.revision == last_revision && n != last_response {
                findings.add(
                    AnomalyKind::WatchSplitRevision,
                    e,
                    format!(
                        "watch {} delivered the events of revision {} in two responses",
                        w.id, e.revision
                    ),
                );
            }
            if e.revision >= last_revision {
                last_revision = e.revision;
                last_response = n;
            }
            order.entry(e.revision).or_default().push(&e.key);
        }
    }
    // Reliable: everything up to `to`, in store order within a revision.
    let mut missed = expected
        .iter()
        .filter(|e| e.revision <= to && !delivered.contains(&(e.revision, e.key.as_str())));
    if let Some(first) = missed.next() {
        let more = missed.count();
        let more = if more > 0 {
            format!(" (and {more} more events up to revision {to})")
        } else {
            String::new()
        };
        findings.add(
            AnomalyKind::WatchMissedEvent,
            first,
            format!("watch {} never delivered the {}{more}", w.id, show(first)),
        );
    }
    let mut store_order: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for e in &expected {
        if order.contains_key(&e.revision) {
            store_order.entry(e.revision).or_default().push(&e.key);
        }
    }
    for (revision, keys) in &order {
        let Some(stored) = store_order.get(revision) else {
            continue;
        };
        let stored: Vec<&str> = stored
            .iter()
            .filter(|k| keys.contains(k))
            .copied()
            .collect();
        let delivered: Vec<&str> = keys
            .iter()
            .filter(|k| stored.contains(k))
            .copied()
            .collect();
        if stored != delivered {
            if let Some(e) = expected.iter().find(|e| e.revision == *revision) {
                findings.add(
                    AnomalyKind::WatchUnordered,
                    e,
                    format!(
                        "watch {} delivered the events of revision {revision} as {delivered:?}, the store made them as {stored:?}",
                        w.id
                    ),
                );
            }
        }
    }
    findings.into_anomalies()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::{Kit, BASE_REVISION};
    use crate::history::{WatchDelivery, WatchRecord};

    /// A store with three keys, a two-key transaction, a delete, and a watch of everything
    /// caught up, a watch of one key from a start revision, and a watch from "now".
    fn valid() -> History {
        let mut kit = Kit::new();
        kit.put(0, "a", 0, 10);
        kit.put(0, "b", 20, 30);
        kit.put(0, "a", 40, 50);
        kit.delete(0, "b", 60, 70);
        let mut history = kit.snapshot();
        // A transaction: two changes at one revision.
        let store = history.store.as_mut().unwrap();
        let rev = store.last_revision + 1;
        for (key, value) in [("a", "t1"), ("c", "t2")] {
            let kv = crate::history::KeyValue {
                value: value.into(),
                create_revision: if key == "a" { BASE_REVISION + 1 } else { rev },
                mod_revision: rev,
                version: if key == "a" { 3 } else { 1 },
                lease: 0,
            };
            store.events.push(Event {
                key: key.into(),
                kind: EventKind::Put,
                revision: rev,
                kv: Some(kv),
            });
        }
        store.last_revision = rev;
        // The transaction's writes, as the workload would record them.
        for (n, (key, value)) in [("a", "t1"), ("c", "t2")].into_iter().enumerate() {
            history.ops.push(crate::history::Op {
                id: 100 + n as u64,
                client: 5,
                call: 80,
                ret: Some(90),
                endpoint: None,
                request: crate::history::Request::Put {
                    key: key.into(),
                    value: value.into(),
                },
                outcome: crate::history::Outcome::Put { revision: rev },
            });
        }
        let all = watch_of(&history, 1, "", "\0", 0);
        let one = watch_of(&history, 2, "a", "", BASE_REVISION + 3);
        let mut now = watch_of(&history, 3, "a", "b", 0);
        now.created_revision = BASE_REVISION + 2;
        now.responses.retain(|d| d.revision > BASE_REVISION + 2);
        history.watches = vec![all, one, now];
        history
    }

    /// A watch delivering the store's events of its range, one response per revision, with
    /// a progress notification after each.
    fn watch_of(history: &History, id: u32, key: &str, range_end: &str, start: i64) -> WatchRecord {
        let store = history.store.as_ref().unwrap();
        let mut responses: Vec<WatchDelivery> = Vec::new();
        for e in &store.events {
            if e.revision < start || !in_range(&e.key, key, range_end) {
                continue;
            }
            match responses.last_mut() {
                Some(d) if d.revision == e.revision => d.events.push(e.clone()),
                _ => {
                    responses.push(WatchDelivery {
                        time: e.revision as u64,
                        revision: e.revision,
                        progress: false,
                        events: vec![e.clone()],
                        endpoint: None,
                    });
                }
            }
        }
        let mut with_progress = Vec::new();
        for d in responses {
            let revision = d.revision;
            with_progress.push(d);
            with_progress.push(WatchDelivery {
                time: revision as u64,
                revision,
                progress: true,
                events: Vec::new(),
                endpoint: None,
            });
        }
        WatchRecord {
            id,
            client: 0,
            key: key.into(),
            range_end: range_end.into(),
            start_revision: start,
            created: 0,
            created_revision: BASE_REVISION,
            responses: with_progress,
            ended: None,
            caught_up_to: store.last_revision,
        }
    }

    fn kinds(history: &History) -> Vec<AnomalyKind> {
        check(history).iter().map(|a| a.kind).collect()
    }

    /// The first watch's event responses.
    fn events_of(history: &mut History) -> Vec<usize> {
        let w = &history.watches[0];
        (0..w.responses.len())
            .filter(|&i| !w.responses[i].progress)
            .collect()
    }

    #[test]
    fn valid_watches_pass() {
        let history = valid();
        assert_eq!(kinds(&history), []);
        let all = crate::check::check(&history);
        assert!(all.is_empty(), "{all:#?}");
        assert!(history.watches.iter().all(|w| !w.responses.is_empty()));
    }

    #[test]
    fn duplicated_event() {
        let mut history = valid();
        let i = events_of(&mut history)[1];
        let w = &mut history.watches[0];
        let again = w.responses[i].clone();
        w.responses.insert(i + 1, again);
        assert_eq!(kinds(&history), [AnomalyKind::WatchDuplicate]);
        assert_eq!(check(&history)[0].watch, Some(1));
    }

    #[test]
    fn reordered_events() {
        let mut history = valid();
        let e = events_of(&mut history);
        let w = &mut history.watches[0];
        w.responses.retain(|d| !d.progress);
        w.responses.swap(e[0] / 2, e[1] / 2);
        assert_eq!(kinds(&history), [AnomalyKind::WatchUnordered]);
    }

    #[test]
    fn reordered_within_a_revision() {
        let mut history = valid();
        let last = *events_of(&mut history).last().unwrap();
        history.watches[0].responses[last].events.reverse();
        assert_eq!(kinds(&history), [AnomalyKind::WatchUnordered]);
    }

    #[test]
    fn missing_event() {
        let mut history = valid();
        // The event and the progress notification after it.
        let i = events_of(&mut history)[2];
        history.watches[0].responses.drain(i..i + 2);
        assert_eq!(kinds(&history), [AnomalyKind::WatchMissedEvent]);
    }

    #[test]
    fn missing_first_event_of_a_resumed_watch() {
        let mut history = valid();
        history.watches[1].responses.drain(0..2);
        assert_eq!(kinds(&history), [AnomalyKind::WatchMissedEvent]);
    }

    #[test]
    fn invented_event() {
        let mut history = valid();
        let i = events_of(&mut history)[0];
        if let Some(kv) = &mut history.watches[0].responses[i].events[0].kv {
            kv.value = "made up".into();
        }
        assert_eq!(kinds(&history), [AnomalyKind::WatchInventedEvent]);
        // Outside the watched range.
        let mut history = valid();
        let mut extra = history.watches[0].responses[0].clone();
        extra.events[0].key = "b".into();
        history.watches[1].responses.insert(0, extra);
        assert!(kinds(&history).contains(&AnomalyKind::WatchInventedEvent));
    }

    #[test]
    fn split_revision() {
        let mut history = valid();
        let last = *events_of(&mut history).last().unwrap();
        let w = &mut history.watches[0];
        let second = w.responses[last].events.pop().unwrap();
        let mut response = w.responses[last].clone();
        response.events = vec![second];
        w.responses.insert(last + 1, response);
        assert_eq!(kinds(&history), [AnomalyKind::WatchSplitRevision]);
    }

    #[test]
    fn a_watch_that_ended_early() {
        let mut history = valid();
        history.watches[0].ended = Some("etcd auth error: permission denied".into());
        assert_eq!(kinds(&history), [AnomalyKind::WatchEnded]);
    }

    #[test]
    fn progress_ahead_of_events() {
        let mut history = valid();
        let e = events_of(&mut history);
        let w = &mut history.watches[0];
        // The notification after the first event claims the second one's revision.
        let next = w.responses[e[1]].revision;
        w.responses[e[0] + 1].revision = next;
        assert_eq!(kinds(&history), [AnomalyKind::WatchProgressAhead]);
    }

    #[test]
    fn ended_watch_is_checked_up_to_what_it_delivered() {
        let mut history = valid();
        let w = &mut history.watches[0];
        w.caught_up_to = 0;
        w.ended = Some("compacted".into());
        w.responses.truncate(4);
        assert_eq!(kinds(&history), [AnomalyKind::WatchEnded]);
        // A hole before its last delivery still counts.
        history.watches[0].responses.drain(0..2);
        assert_eq!(
            kinds(&history),
            [AnomalyKind::WatchMissedEvent, AnomalyKind::WatchEnded]
        );
    }
}
