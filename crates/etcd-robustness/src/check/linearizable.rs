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
//!   never. What the history tells of them is used first: with the store's history, an
//!   unknown put or compare-and-set whose value the store has becomes "applied at that
//!   revision" (still open-ended), one whose value it lacks never applied and is left out,
//!   and the key's deletes that no acknowledged delete claims become deletes at their
//!   revisions (made by an unknown delete or a lease); without it, an unknown put whose
//!   value a read returned applied at the mod revision the read saw, and one whose value
//!   nothing ever observed only leaves versions, create revisions and compare verdicts
//!   open after its call. The rest (unknown deletes, puts named by a comparison, without
//!   the store) are searched as optional;
//! * the deletes of lease keys by their lease.
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
use crate::history::{EventKind, Expect, History, KeyValue, Op, Outcome, Request, Time};

mod model;
mod search;

use model::{Action, Cmp, Context, Gap, ReadKv, SOp};
use search::{search, Deepest, Verdict};

/// Bounds of the check.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The most states the search of one key may visit before it gives up (and reports
    /// [`AnomalyKind::CheckIncomplete`]).
    pub max_states: usize,
    /// The time allowed to shrink failures to small conflicting sets, for the whole check.
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

impl Options {
    /// Sets [`Options::max_states`].
    #[must_use]
    pub fn with_max_states(mut self, max_states: usize) -> Options {
        self.max_states = max_states;
        self
    }

    /// Sets [`Options::shrink_time`].
    #[must_use]
    pub fn with_shrink_time(mut self, shrink_time: Duration) -> Options {
        self.shrink_time = shrink_time;
        self
    }

    /// Sets [`Options::shrink_states`].
    #[must_use]
    pub fn with_shrink_states(mut self, shrink_states: usize) -> Options {
        self.shrink_states = shrink_states;
        self
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
    let deadline = Instant::now() + options.shrink_time;
    for (key, ops) in by_key {
        let prepared = prepare(key, &ops, index.as_ref(), &acknowledged, history, &rev_lbs);
        anomalies.extend(prepared.malformed.iter().cloned());
        anomalies.extend(check_key(key, &prepared, &ops, options, deadline));
    }
    anomalies
}

/// One key's operations, ready for the search.
struct Prepared {
    /// Sorted by priority.
    sops: Vec<SOp>,
    /// The history op of each (`None` for a lease's delete).
    ids: Vec<Option<u64>>,
    /// What the search must know of the unknown puts it does not place.
    unseen_after: Option<i64>,
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

/// Where the key's writes of unknown outcome applied, as far as the history tells: with
/// the store's history, the revisions of the Put events with their values that no
/// acknowledged write claims (none: they never applied); without it, the mod revisions
/// with which reads returned their values. Unknown writes of one value (a workload may
/// write a value again after an unknown outcome) take those revisions in call order.
fn settle_unknown_writes(
    key: &str,
    ops: &[&Op],
    index: Option<&StoreIndex<'_>>,
    acknowledged: &Acknowledged<'_>,
) -> HashMap<u64, i64> {
    let mut unknown: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        if let (Some(value), Outcome::Unknown { .. }) = (op.request.written_value(), &op.outcome) {
            unknown.entry(value).or_default().push(op);
        }
    }
    let mut seen: HashMap<&str, Vec<i64>> = HashMap::new();
    if index.is_none() {
        for op in ops {
            if let Outcome::Get { kv: Some(kv), .. } = &op.outcome {
                seen.entry(kv.value.as_str())
                    .or_default()
                    .push(kv.mod_revision);
            }
        }
    }
    let mut settled = HashMap::new();
    for (value, mut writes) in unknown {
        let mut revisions: Vec<i64> = match index {
            Some(index) => index
                .puts_of_value(value)
                .filter(|e| e.key == key)
                .map(|e| e.revision)
                .collect(),
            None => seen.remove(value).unwrap_or_default(),
        };
        revisions.retain(|&r| !acknowledged.claims(key, value, r));
        revisions.sort_unstable();
        revisions.dedup();
        writes.sort_by_key(|op| (op.call, op.id));
        for (op, r) in writes.iter().zip(revisions) {
            settled.insert(op.id, r);
        }
    }
    settled
}

/// Turns one key's operations into search operations.
///
/// Unknown writes become required open-ended writes at the revision where they applied
/// when the history tells it ([`settle_unknown_writes`]); with the store's history, an
/// unknown put or compare-and-set it does not have is left out, and the deletes of the key
/// that no acknowledged delete claims become required open-ended deletes at their
/// revisions, invoked with the earliest unknown delete or lease that can explain them
/// (unknown deletes that explain none deleted nothing). Otherwise unknown writes are
/// optional, and a lease may delete its key at any time after its grant.
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
    let settled = settle_unknown_writes(key, ops, index, acknowledged);
    let unseen = match index {
        Some(_) => HashSet::new(),
        None => unseen_writes(ops, &settled, rev_lbs),
    };
    let mut out: Vec<(SOp, Option<u64>)> = Vec::new();
    let mut malformed = Vec::new();
    let mut acknowledged_deletes = HashSet::new();
    // Unknown deletes: (call, revision lower bound, id).
    let mut unknown_deletes: Vec<(Time, i64, u64)> = Vec::new();
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
        let answered = |action: Action| Some((action, true, op.ret));
        // An unknown write: required where it applied, else optional, or left out when the
        // store says it never applied.
        if unseen.contains(&op.id) {
            continue;
        }
        let unknown = |action: Action| match (settled.get(&op.id), index) {
            (Some(_), _) => Some((action, true, None)),
            (None, Some(_)) => None,
            (None, None) => Some((action, false, None)),
        };
        let action = match (&op.request, &op.outcome) {
            (_, Outcome::Failed { .. }) => continue,
            (Request::Get { .. }, Outcome::Unknown { .. }) => continue,
            (Request::Get { read, .. }, Outcome::Get { revision, kv }) => {
                if !read.is_linearizable() {
                    continue;
                }
                answered(Action::Read {
                    h: *revision,
                    kv: values.read(kv),
                })
            }
            (Request::Put { value, .. }, Outcome::Put { revision }) => answered(Action::Put {
                value: values.id(value),
                rev: Some(*revision),
            }),
            (Request::Put { value, .. }, Outcome::Unknown { .. }) => unknown(Action::Put {
                value: values.id(value),
                rev: settled.get(&op.id).copied(),
            }),
            (
                Request::Delete { .. },
                Outcome::Delete {
                    revision,
                    deleted: 1,
                },
            ) => {
                acknowledged_deletes.insert(*revision);
                answered(Action::Delete {
                    rev: Some(*revision),
                })
            }
            (
                Request::Delete { .. },
                Outcome::Delete {
                    revision,
                    deleted: 0,
                },
            ) => answered(Action::DeleteNone { h: *revision }),
            (Request::Delete { .. }, Outcome::Unknown { .. }) => {
                if index.is_some() {
                    unknown_deletes.push((op.call, rev_lb, op.id));
                    continue;
                }
                Some((Action::Delete { rev: None }, false, None))
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
                    answered(Action::Cas {
                        cmp,
                        value: values.id(value),
                        rev: Some(*revision),
                    })
                } else {
                    // A lock write also compares its ownership key: it may have failed on
                    // that one.
                    let cmp = if fenced.contains(&op.id) {
                        Cmp::Fenced
                    } else {
                        cmp
                    };
                    answered(Action::CasFailed { cmp, h: *revision })
                }
            }
            (Request::Cas { expect, value, .. }, Outcome::Unknown { .. }) => unknown(Action::Cas {
                cmp: values.cmp(expect),
                value: values.id(value),
                rev: settled.get(&op.id).copied(),
            }),
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
        let Some((action, required, ret)) = action else {
            continue;
        };
        out.push((
            SOp {
                call: op.call,
                ret: if op.outcome.is_unknown() { None } else { ret },
                required,
                action,
                rev_lb,
            },
            Some(op.id),
        ));
    }
    let leases: Vec<Time> = history
        .leases
        .iter()
        .filter(|l| l.key == key)
        .map(|l| l.granted)
        .collect();
    match index {
        Some(index) => {
            // Deletes no acknowledged delete claims: an unknown delete's, or a lease's.
            for e in index.events_of(key) {
                if e.kind != EventKind::Delete || acknowledged_deletes.contains(&e.revision) {
                    continue;
                }
                let by_op = unknown_deletes
                    .iter()
                    .filter(|(_, lb, _)| *lb < e.revision)
                    .min_by_key(|(call, _, id)| (*call, *id));
                let by_lease = leases.iter().min();
                let call = match (by_op, by_lease) {
                    (Some((call, _, _)), Some(granted)) => (*call).min(*granted),
                    (Some((call, _, _)), None) => *call,
                    (None, Some(granted)) => *granted,
                    // Nothing explains it: the durability check reports it, and the search
                    // will not find a linearization.
                    (None, None) => continue,
                };
                out.push((
                    SOp {
                        call,
                        ret: None,
                        required: true,
                        action: Action::Delete {
                            rev: Some(e.revision),
                        },
                        rev_lb: 0,
                    },
                    by_op.map(|(_, _, id)| *id),
                ));
            }
        }
        None => {
            for granted in leases {
                out.push((
                    SOp {
                        call: granted,
                        ret: None,
                        required: false,
                        action: Action::Delete { rev: None },
                        rev_lb: 0,
                    },
                    None,
                ));
            }
        }
    }
    out.sort_by_key(|(op, id)| (op.action.priority(), op.call, *id));
    let (sops, ids) = out.into_iter().unzip();
    let unseen_after = ops
        .iter()
        .filter(|op| unseen.contains(&op.id))
        .map(|op| rev_lbs.get(&op.id).copied().unwrap_or(0))
        .min();
    Prepared {
        sops,
        ids,
        unseen_after,
        malformed,
    }
}

/// Without the store's history: the unknown puts and compare-and-sets whose values nothing
/// observed (no read returned them, no comparison named them). Whether and when they
/// applied matters only to versions, create revisions and compare verdicts, which the
/// model then leaves open ([`model::Context::unseen_after`]) instead of searching over
/// them. Not those that may have made a mod revision that a compare-and-set names and
/// nothing else explains.
fn unseen_writes(
    ops: &[&Op],
    settled: &HashMap<u64, i64>,
    rev_lbs: &HashMap<u64, i64>,
) -> HashSet<u64> {
    let mut mentioned: HashSet<&str> = HashSet::new();
    let mut revisions: HashSet<i64> = settled.values().copied().collect();
    for op in ops {
        match (&op.request, &op.outcome) {
            (_, Outcome::Get { kv: Some(kv), .. }) => {
                mentioned.insert(&kv.value);
                revisions.insert(kv.mod_revision);
                revisions.insert(kv.create_revision);
            }
            (Request::Put { .. }, Outcome::Put { revision })
            | (Request::Delete { .. }, Outcome::Delete { revision, .. })
            | (Request::Cas { .. }, Outcome::Cas { revision, .. }) => {
                revisions.insert(*revision);
            }
            _ => {}
        }
        if let Request::Cas {
            expect: Expect::Value(v),
            ..
        } = &op.request
        {
            mentioned.insert(v);
        }
    }
    // A compare-and-set naming a mod revision nothing explains learned it from a write
    // the history does not show: any unknown put that may have made it stays searched.
    let unexplained: Vec<(i64, Time)> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Request::Cas {
                expect: Expect::ModRevision(m),
                ..
            } if *m != 0 && !revisions.contains(m) => Some((*m, op.call)),
            _ => None,
        })
        .collect();
    ops.iter()
        .filter(|op| op.outcome.is_unknown() && !settled.contains_key(&op.id))
        .filter(|op| {
            op.request
                .written_value()
                .is_some_and(|v| !mentioned.contains(v))
        })
        .filter(|op| {
            let lb = rev_lbs.get(&op.id).copied().unwrap_or(0);
            !unexplained
                .iter()
                .any(|&(m, call)| lb < m && op.call < call)
        })
        .map(|op| op.id)
        .collect()
}

/// Searches one key and explains a failure.
fn check_key(
    key: &str,
    prepared: &Prepared,
    ops: &[&Op],
    options: &Options,
    shrink_deadline: Instant,
) -> Vec<Anomaly> {
    let sops = &prepared.sops;
    let ctx = Context {
        gap: None,
        unseen_after: prepared.unseen_after,
    };
    match search(sops, &ctx, options.max_states) {
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
            let conflict = shrink(
                sops,
                prepared.unseen_after,
                &deepest,
                options.shrink_states,
                shrink_deadline,
            );
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
fn fails(
    sops: &[SOp],
    unseen_after: Option<i64>,
    subset: &[usize],
    max_states: usize,
) -> Option<bool> {
    let mut inside = vec![false; sops.len()];
    for &i in subset {
        inside[i] = true;
    }
    let ctx = Context {
        gap: Some(Gap::of(sops, |i| !inside[i])),
        unseen_after,
    };
    let part: Vec<SOp> = subset.iter().map(|&i| sops[i].clone()).collect();
    match search(&part, &ctx, max_states) {
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
    unseen_after: Option<i64>,
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
        if fails(sops, unseen_after, &window, max_states) == Some(true) {
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
            if !rest.is_empty() && fails(sops, unseen_after, &rest, max_states) == Some(true) {
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
