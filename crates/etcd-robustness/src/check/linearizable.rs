//! Linearizability of the single-key operations ([`History::ops`]), key by key
//! (P-compositionality: every operation is about one key, so the history is linearizable iff
//! each key's is).
//!
//! Each key is searched Porcupine-style (Wing–Gong–Lowe with a cache of (placed set, state))
//! against a model of one etcd key that knows its revisions: a write answered with revision
//! `r` comes after every change of the key with a smaller revision and every read whose
//! header is below `r`; a read at header `h` reflects the last change at or below `h`, with
//! its value, create and mod revisions and version. The revisions order and prune the
//! search; real time is always checked.
//!
//! What takes part:
//! * linearizable reads (`Linearizable`, `CacheConsistent`); serializable and cache reads
//!   are [`super::reads`]' business;
//! * every write with an answer, failed compare-and-sets and deletes that found nothing
//!   (they read the key; a failed lock write may have failed on its fencing compare, which
//!   is about another key, so only its revision counts);
//! * writes of unknown outcome, open-ended: they may apply at any time after their call, or
//!   never. With the store's history, an unknown put or compare-and-set whose value the
//!   store has becomes "applied at that revision" (still open-ended), one whose value it
//!   lacks never applied and is left out; unknown deletes stay open;
//! * the deletes of lease keys by their lease (from the store's history, or possible at any
//!   time after the grant without it).
//!
//! Left out: definitely failed operations (they changed nothing) and reads of unknown
//! outcome (they constrain nothing).
//!
//! A failure is reported with a small conflicting set of operations: the search's furthest
//! point gives the place, then the set is shrunk (delta debugging, within a time budget).
//! A set is only kept if it cannot be linearized *whatever the key's other writes did* (they
//! may have happened at their revisions, or not), so the reported operations alone prove
//! the violation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use super::store::{Acknowledged, StoreIndex};
use super::{describe_op, revision_lower_bounds, Anomaly, AnomalyKind};
use crate::history::{Expect, History, KeyValue, Op, Outcome, Request};

mod model;
mod search;

use model::{Action, Cmp, Gap, ReadKv, SOp};
use search::{search, Deepest, Verdict};

/// Bounds of the check.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The most states the search of one key may visit before it gives up (and reports
    /// [`AnomalyKind::CheckIncomplete`]).
    pub max_states: usize,
    /// The time allowed to shrink one failure to a small conflicting set.
    pub shrink_time: Duration,
    /// The most states one shrinking step may visit.
    pub shrink_states: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_states: 2_000_000,
            shrink_time: Duration::from_secs(2),
            shrink_states: 20_000,
        }
    }
}

/// Checks that every key's operations are linearizable, with the default [`Options`].
pub fn check(history: &History) -> Vec<Anomaly> {
    check_with(history, &Options::default())
}

/// Checks that every key's operations are linearizable.
pub fn check_with(history: &History, options: &Options) -> Vec<Anomaly> {
    let index = history.store.as_ref().map(StoreIndex::new);
    let acknowledged = Acknowledged::new(&history.ops);
    let rev_lbs = revision_lower_bounds(&history.ops);
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in &history.ops {
        by_key.entry(op.key()).or_default().push(op);
    }
    let mut anomalies = Vec::new();
    for (key, ops) in by_key {
        let prepared = prepare(key, &ops, index.as_ref(), &acknowledged, history, &rev_lbs);
        anomalies.extend(prepared.malformed.iter().cloned());
        anomalies.extend(check_key(key, &prepared, &ops, options));
    }
    anomalies
}

/// One key's operations, ready for the search.
struct Prepared {
    /// Sorted by priority.
    sops: Vec<SOp>,
    /// The history op of each (`None` for a lease's delete).
    ids: Vec<Option<u64>>,
    malformed: Vec<Anomaly>,
}

/// Values of one key, numbered.
#[derive(Default)]
struct Interner(HashMap<String, u32>);

impl Interner {
    fn id(&mut self, value: &str) -> u32 {
        let n = self.0.len() as u32;
        *self.0.entry(value.to_string()).or_insert(n)
    }

    fn read(&mut self, kv: &Option<KeyValue>) -> Option<ReadKv> {
        kv.as_ref().map(|kv| ReadKv {
            value: self.id(&kv.value),
            create: kv.create_revision,
            modr: kv.mod_revision,
            version: kv.version,
        })
    }

    fn cmp(&mut self, expect: &Expect) -> Cmp {
        match expect {
            Expect::Value(v) => Cmp::Value(self.id(v)),
            Expect::Absent => Cmp::Absent,
            Expect::ModRevision(m) => Cmp::ModRevision(*m),
        }
    }
}

/// Turns one key's operations into search operations.
fn prepare(
    key: &str,
    ops: &[&Op],
    index: Option<&StoreIndex<'_>>,
    acknowledged: &Acknowledged<'_>,
    history: &History,
    rev_lbs: &HashMap<u64, i64>,
) -> Prepared {
    let mut values = Interner::default();
    let fenced: HashSet<u64> = history
        .locks
        .iter()
        .flat_map(|l| l.writes.iter().copied())
        .collect();
    let mut out: Vec<(SOp, Option<u64>)> = Vec::new();
    let mut malformed = Vec::new();
    let mut acknowledged_deletes = Vec::new();
    for op in ops {
        if op.ret.is_some_and(|ret| ret < op.call) {
            malformed.push(
                Anomaly::new(
                    AnomalyKind::MalformedHistory,
                    format!("op #{} returned before it was invoked; left out of the linearizability check", op.id),
                )
                .with_key(key)
                .with_ops([op.id]),
            );
            continue;
        }
        let rev_lb = rev_lbs.get(&op.id).copied().unwrap_or(0);
        // (action, required, open-ended)
        let action = match (&op.request, &op.outcome) {
            (_, Outcome::Failed { .. }) => continue,
            (Request::Get { .. }, Outcome::Unknown { .. }) => continue,
            (Request::Get { read, .. }, Outcome::Get { revision, kv }) => {
                if !read.is_linearizable() {
                    continue;
                }
                Some((
                    Action::Read {
                        h: *revision,
                        kv: values.read(kv),
                    },
                    true,
                    false,
                ))
            }
            (Request::Put { value, .. }, Outcome::Put { revision }) => Some((
                Action::Put {
                    value: values.id(value),
                    rev: Some(*revision),
                },
                true,
                false,
            )),
            (Request::Put { value, .. }, Outcome::Unknown { .. }) => match index {
                Some(index) => index
                    .unknown_write_revision(key, value, acknowledged)
                    .map(|r| {
                        (
                            Action::Put {
                                value: values.id(value),
                                rev: Some(r),
                            },
                            true,
                            true,
                        )
                    }),
                None => Some((
                    Action::Put {
                        value: values.id(value),
                        rev: None,
                    },
                    false,
                    true,
                )),
            },
            (
                Request::Delete { .. },
                Outcome::Delete {
                    revision,
                    deleted: 1,
                },
            ) => {
                acknowledged_deletes.push(*revision);
                Some((
                    Action::Delete {
                        rev: Some(*revision),
                    },
                    true,
                    false,
                ))
            }
            (
                Request::Delete { .. },
                Outcome::Delete {
                    revision,
                    deleted: 0,
                },
            ) => Some((Action::DeleteNone { h: *revision }, true, false)),
            (Request::Delete { .. }, Outcome::Unknown { .. }) => {
                Some((Action::Delete { rev: None }, false, true))
            }
            (
                Request::Cas { expect, value, .. },
                Outcome::Cas {
                    revision,
                    succeeded,
                },
            ) => {
                let cmp = values.cmp(expect);
                if *succeeded {
                    Some((
                        Action::Cas {
                            cmp,
                            value: values.id(value),
                            rev: Some(*revision),
                        },
                        true,
                        false,
                    ))
                } else {
                    // A lock write also compares its ownership key: it may have failed on
                    // that one.
                    let cmp = if fenced.contains(&op.id) {
                        Cmp::Fenced
                    } else {
                        cmp
                    };
                    Some((Action::CasFailed { cmp, h: *revision }, true, false))
                }
            }
            (Request::Cas { expect, value, .. }, Outcome::Unknown { .. }) => {
                let cmp = values.cmp(expect);
                match index {
                    Some(index) => {
                        index
                            .unknown_write_revision(key, value, acknowledged)
                            .map(|r| {
                                (
                                    Action::Cas {
                                        cmp,
                                        value: values.id(value),
                                        rev: Some(r),
                                    },
                                    true,
                                    true,
                                )
                            })
                    }
                    None => Some((
                        Action::Cas {
                            cmp,
                            value: values.id(value),
                            rev: None,
                        },
                        false,
                        true,
                    )),
                }
            }
            _ => {
                malformed.push(
                    Anomaly::new(
                        AnomalyKind::MalformedHistory,
                        format!(
                            "op #{}: the answer does not fit the request ({}); left out of the linearizability check",
                            op.id,
                            describe_op(op)
                        ),
                    )
                    .with_key(key)
                    .with_ops([op.id]),
                );
                continue;
            }
        };
        let Some((action, required, open)) = action else {
            continue;
        };
        out.push((
            SOp {
                call: op.call,
                ret: if open || op.outcome.is_unknown() {
                    None
                } else {
                    op.ret
                },
                required,
                action,
                rev_lb,
            },
            Some(op.id),
        ));
    }
    // A lease's key goes when the lease is revoked or expires: with the store's history,
    // at the revisions of its delete events no acknowledged delete claims; without it, at
    // any time after the grant, or never.
    for lease in history.leases.iter().filter(|l| l.key == key) {
        match index {
            Some(index) => {
                let deletes: Vec<i64> = index
                    .events_of(key)
                    .filter(|e| e.kind == crate::history::EventKind::Delete)
                    .map(|e| e.revision)
                    .filter(|r| !acknowledged_deletes.contains(r))
                    .collect();
                for r in deletes {
                    acknowledged_deletes.push(r);
                    out.push((
                        SOp {
                            call: lease.granted,
                            ret: None,
                            required: true,
                            action: Action::Delete { rev: Some(r) },
                            rev_lb: 0,
                        },
                        None,
                    ));
                }
            }
            None => out.push((
                SOp {
                    call: lease.granted,
                    ret: None,
                    required: false,
                    action: Action::Delete { rev: None },
                    rev_lb: 0,
                },
                None,
            )),
        }
    }
    out.sort_by_key(|(op, id)| (op.action.priority(), op.call, *id));
    let (sops, ids) = out.into_iter().unzip();
    Prepared {
        sops,
        ids,
        malformed,
    }
}

/// Searches one key and explains a failure.
fn check_key(key: &str, prepared: &Prepared, ops: &[&Op], options: &Options) -> Vec<Anomaly> {
    let sops = &prepared.sops;
    match search(sops, None, options.max_states) {
        Verdict::Linearizable => Vec::new(),
        Verdict::GaveUp { states, deepest } => {
            let placed = deepest.order.len();
            vec![Anomaly::new(
                AnomalyKind::CheckIncomplete,
                format!(
                    "key {key:?}: the linearizability search gave up after {states} states (limit {}): \
                     the key's {} operations are neither proven linearizable nor not; the furthest \
                     linearization found places {placed} of them",
                    options.max_states,
                    sops.len(),
                ),
            )
            .with_key(key)
            .with_ops(first_ids(prepared, deepest.blocking.into_iter()))]
        }
        Verdict::NotLinearizable(deepest) => {
            let deadline = Instant::now() + options.shrink_time;
            let conflict = shrink(sops, &deepest, options.shrink_states, deadline);
            vec![explain(key, prepared, ops, &deepest, conflict)]
        }
    }
}

fn first_ids(prepared: &Prepared, indices: impl Iterator<Item = usize>) -> Vec<u64> {
    indices.filter_map(|i| prepared.ids[i]).collect()
}

/// The anomaly of a key that is not linearizable.
fn explain(
    key: &str,
    prepared: &Prepared,
    ops: &[&Op],
    deepest: &Deepest,
    conflict: Option<Vec<usize>>,
) -> Anomaly {
    let by_id: HashMap<u64, &Op> = ops.iter().map(|op| (op.id, *op)).collect();
    let describe = |i: usize| match prepared.ids[i] {
        Some(id) => by_id
            .get(&id)
            .map_or_else(|| format!("#{id}"), |op| describe_op(op)),
        None => match prepared.sops[i].action.known_revision() {
            Some(r) => format!("lease expiry delete r{r}"),
            None => "lease expiry delete".to_string(),
        },
    };
    let total = prepared.sops.len();
    let placed = deepest.order.len();
    let stuck = deepest
        .blocking
        .map(|i| format!("; the furthest linearization places {placed} of {total} operations, then cannot place {}", describe(i)))
        .unwrap_or_default();
    let (mut indices, what) = match conflict {
        Some(set) => (
            set,
            "these operations cannot be linearized, whatever the key's other writes did",
        ),
        None => {
            // No small set found in time: the blocking operation and the last ones placed.
            let mut set: Vec<usize> = deepest.order.iter().rev().take(4).copied().collect();
            set.extend(deepest.blocking);
            set.extend(deepest.tried.iter().take(4));
            set.sort_unstable();
            set.dedup();
            (set, "no linearization: it breaks around these operations")
        }
    };
    indices.sort_by_key(|&i| (prepared.sops[i].call, i));
    const SHOWN: usize = 8;
    let mut shown: Vec<String> = indices.iter().take(SHOWN).map(|&i| describe(i)).collect();
    if indices.len() > SHOWN {
        shown.push(format!("… {} more", indices.len() - SHOWN));
    }
    let mut anomaly = Anomaly::new(
        AnomalyKind::NotLinearizable,
        format!("key {key:?}: {what}: {}{stuck}", shown.join("; ")),
    )
    .with_key(key)
    .with_ops(first_ids(prepared, indices.iter().copied()));
    if let Some(r) = deepest
        .blocking
        .and_then(|i| prepared.sops[i].action.known_revision())
    {
        anomaly = anomaly.with_revision(r);
    }
    anomaly
}

/// Whether the operations `subset` (indices into `sops`, sorted) cannot be linearized,
/// whatever the other writes did: `Some(true)` proven, `Some(false)` linearizable, `None`
/// undecided within `max_states`.
fn fails(sops: &[SOp], subset: &[usize], max_states: usize) -> Option<bool> {
    let mut inside = vec![false; sops.len()];
    for &i in subset {
        inside[i] = true;
    }
    let gap = Gap::of(sops, |i| !inside[i]);
    let part: Vec<SOp> = subset.iter().map(|&i| sops[i].clone()).collect();
    match search(&part, Some(&gap), max_states) {
        Verdict::NotLinearizable(_) => Some(true),
        Verdict::Linearizable => Some(false),
        Verdict::GaveUp { .. } => None,
    }
}

/// A small set of operations that cannot be linearized whatever the others did, found by
/// growing a window of operations around the blocking one (with the writes whose values its
/// reads saw), then delta debugging; `None` when none was found before `deadline`.
fn shrink(
    sops: &[SOp],
    deepest: &Deepest,
    max_states: usize,
    deadline: Instant,
) -> Option<Vec<usize>> {
    let mut by_call: Vec<usize> = (0..sops.len()).collect();
    by_call.sort_by_key(|&i| (sops[i].call, i));
    let center = deepest
        .blocking
        .and_then(|b| by_call.iter().position(|&i| i == b))
        .unwrap_or(by_call.len().saturating_sub(1));
    // The write of each known revision, to bring in the writes that reads saw.
    let writer: HashMap<i64, usize> = (0..sops.len())
        .filter(|&i| sops[i].action.is_write())
        .filter_map(|i| Some((sops[i].action.known_revision()?, i)))
        .collect();
    let mut size = 4;
    let mut set = loop {
        if Instant::now() > deadline {
            return None;
        }
        let lo = center.saturating_sub(size);
        let hi = (center + size + 1).min(by_call.len());
        let mut window: Vec<usize> = by_call[lo..hi].to_vec();
        let seen: Vec<usize> = window
            .iter()
            .filter_map(|&i| match sops[i].action {
                Action::Read { kv: Some(kv), .. } => writer.get(&kv.modr).copied(),
                _ => None,
            })
            .collect();
        window.extend(seen);
        window.sort_unstable();
        window.dedup();
        if fails(sops, &window, max_states) == Some(true) {
            break window;
        }
        if lo == 0 && hi == by_call.len() {
            return None;
        }
        size *= 2;
    };
    // Delta debugging: drop chunks while the rest still fails.
    let mut chunks = 2;
    while set.len() > 1 && Instant::now() < deadline {
        let len = set.len();
        let chunk = len.div_ceil(chunks);
        let mut removed = false;
        for start in (0..len).step_by(chunk) {
            if Instant::now() > deadline {
                break;
            }
            let rest: Vec<usize> = set[..start]
                .iter()
                .chain(&set[(start + chunk).min(len)..])
                .copied()
                .collect();
            if !rest.is_empty() && fails(sops, &rest, max_states) == Some(true) {
                set = rest;
                chunks = (chunks - 1).max(2);
                removed = true;
                break;
            }
        }
        if !removed {
            if chunks >= len {
                break;
            }
            chunks = (chunks * 2).min(len);
        }
    }
    Some(set)
}

#[cfg(test)]
mod tests;
