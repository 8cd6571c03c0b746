//! The sequential specification of one etcd key, with revision bookkeeping.
//!
//! A state is the key's value with its three revisions, plus `changed` (the revision of the
//! key's last change, or a lower bound of it when that change's revision is unknown) and
//! `seen` (the largest header revision observed by operations placed since). A write
//! answered with revision `r` must come after both; a read with header `h` must come after
//! the last change (`h >= changed`). Revisions only prune the search: the search still
//! checks real time.
//!
//! Values are interned to `u32` per key. A revision or version of 0 in [`Kv::Present`] is
//! unknown (the write that made it had an unknown revision); a read of the key then tells
//! it. [`Kv::Unknown`] is only used when checking a part of a history
//! (see [`Gap`]): the key may hold anything because a write left out may have happened.
//! [`Context`] holds what the search knows of writes it does not place.

use crate::history::Time;

/// What the key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kv {
    /// The key does not exist.
    Absent,
    /// The key exists; 0 in a revision or the version means "not known yet".
    Present {
        value: u32,
        create: i64,
        modr: i64,
        version: i64,
    },
    /// Anything (a left-out write may have changed the key).
    Unknown,
}

/// The model's state of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct State {
    pub kv: Kv,
    /// The revision of the last change (a lower bound when it is unknown); 0 initially.
    pub changed: i64,
    /// The largest header revision observed since (0: none).
    pub seen: i64,
}

impl State {
    /// The key before the scenario: absent.
    pub(super) fn initial() -> State {
        State {
            kv: Kv::Absent,
            changed: 0,
            seen: 0,
        }
    }

    /// A new change must have a revision above this.
    fn floor(&self) -> i64 {
        self.changed.max(self.seen)
    }
}

/// A read's answer, interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReadKv {
    pub value: u32,
    pub create: i64,
    pub modr: i64,
    pub version: i64,
}

/// A compare-and-set's comparison, interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmp {
    Value(u32),
    Absent,
    ModRevision(i64),
    /// The comparison also involves another key (a lock's fencing compare): a failed
    /// compare-and-set may have failed on it, so its verdict tells nothing of this key.
    Fenced,
}

/// What an operation does, with what it answered (`rev: None`: a write whose outcome, and so
/// revision, is unknown; it may apply or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// A linearizable read answered at header `h`.
    Read { h: i64, kv: Option<ReadKv> },
    /// A put.
    Put { value: u32, rev: Option<i64> },
    /// A delete that deleted the key (`rev: Some`), or one whose outcome is unknown.
    Delete { rev: Option<i64> },
    /// A delete that found nothing, at header `h`.
    DeleteNone { h: i64 },
    /// A compare-and-set that swapped (`rev: Some`), or one whose outcome is unknown.
    Cas {
        cmp: Cmp,
        value: u32,
        rev: Option<i64>,
    },
    /// A compare-and-set that did not swap, at header `h`.
    CasFailed { cmp: Cmp, h: i64 },
}

impl Action {
    /// True for actions that change the key.
    pub(super) fn is_write(&self) -> bool {
        matches!(
            self,
            Action::Put { .. } | Action::Delete { .. } | Action::Cas { .. }
        )
    }

    /// The order in which the search tries operations: writes at their revision, then the
    /// reads that saw that revision; writes of unknown revision last.
    pub(super) fn priority(&self) -> (i64, u8) {
        match *self {
            Action::Put { rev: Some(r), .. }
            | Action::Delete { rev: Some(r) }
            | Action::Cas { rev: Some(r), .. } => (r, 0),
            Action::Read { h, .. } | Action::DeleteNone { h } | Action::CasFailed { h, .. } => {
                (h, 1)
            }
            Action::Put { rev: None, .. }
            | Action::Delete { rev: None }
            | Action::Cas { rev: None, .. } => (i64::MAX, 2),
        }
    }

    /// The revision this action is pinned to, when known: an answered write's revision, an
    /// answered read's header.
    pub(super) fn known_revision(&self) -> Option<i64> {
        match *self {
            Action::Put { rev, .. } | Action::Delete { rev } | Action::Cas { rev, .. } => rev,
            Action::Read { h, .. } | Action::DeleteNone { h } | Action::CasFailed { h, .. } => {
                Some(h)
            }
        }
    }
}

/// One operation as the search sees it.
#[derive(Debug, Clone)]
pub(super) struct SOp {
    pub call: Time,
    /// `None`: open-ended (it may take effect at any time after `call`).
    pub ret: Option<Time>,
    /// A required operation must be placed; an optional one (a write of unknown outcome)
    /// may be placed or not.
    pub required: bool,
    pub action: Action,
    /// A lower bound of the revision of a write with unknown revision: every revision
    /// answered before it was invoked.
    pub rev_lb: i64,
}

/// The writes of the key left out of a partial history: at which revisions they may have
/// changed the key.
#[derive(Debug, Clone, Default)]
pub(super) struct Gap {
    /// Revisions of left-out writes whose revision is known, sorted.
    known: Vec<i64>,
    /// The smallest revision lower bound of a left-out write of unknown revision.
    unknown_lb: Option<i64>,
}

impl Gap {
    /// The gap of the writes among `ops` for which `left_out` is true.
    pub(super) fn of(ops: &[SOp], left_out: impl Fn(usize) -> bool) -> Gap {
        let mut gap = Gap::default();
        for (i, op) in ops.iter().enumerate() {
            if !left_out(i) || !op.action.is_write() {
                continue;
            }
            match op.action.known_revision() {
                Some(r) => gap.known.push(r),
                None => {
                    gap.unknown_lb = Some(gap.unknown_lb.map_or(op.rev_lb, |lb| lb.min(op.rev_lb)))
                }
            }
        }
        gap.known.sort_unstable();
        gap
    }

    /// True when a left-out write may have changed the key at a revision in `(after, before)`.
    fn any(&self, after: i64, before: i64) -> bool {
        let i = self.known.partition_point(|&r| r <= after);
        if self.known.get(i).is_some_and(|&r| r < before) {
            return true;
        }
        self.unknown_lb
            .is_some_and(|lb| after.max(lb).saturating_add(1) < before)
    }
}

/// Whether a comparison holds: `Some(true)`, `Some(false)`, or `None` when the state does
/// not tell.
fn holds(kv: &Kv, cmp: Cmp) -> Option<bool> {
    match (kv, cmp) {
        (Kv::Unknown, _) | (_, Cmp::Fenced) => None,
        (Kv::Absent, Cmp::Value(_)) => Some(false),
        (Kv::Absent, Cmp::Absent) => Some(true),
        (Kv::Absent, Cmp::ModRevision(m)) => Some(m == 0),
        (Kv::Present { value, .. }, Cmp::Value(v)) => Some(*value == v),
        (Kv::Present { .. }, Cmp::Absent) => Some(false),
        (Kv::Present { modr, .. }, Cmp::ModRevision(m)) => {
            if m == 0 {
                Some(false)
            } else if *modr == 0 {
                None
            } else {
                Some(*modr == m)
            }
        }
    }
}

/// The key after putting `value` over `kv` at revision `rev` (0: unknown); with `unseen`,
/// an unseen put may have come just before (version, and create revision if the key was
/// absent, unknown).
fn put_over(kv: Kv, value: u32, rev: i64, unseen: bool) -> Kv {
    let after = match kv {
        Kv::Absent => Kv::Present {
            value,
            create: rev,
            modr: rev,
            version: 1,
        },
        Kv::Present {
            create, version, ..
        } => Kv::Present {
            value,
            create,
            modr: rev,
            version: if version > 0 { version + 1 } else { 0 },
        },
        Kv::Unknown => Kv::Present {
            value,
            create: 0,
            modr: rev,
            version: 0,
        },
    };
    match after {
        Kv::Present {
            value,
            create,
            modr,
            ..
        } if unseen => Kv::Present {
            value,
            create: if kv == Kv::Absent { 0 } else { create },
            modr,
            version: 0,
        },
        after => after,
    }
}

/// What the search knows of the key's writes that it does not place itself.
#[derive(Debug, Clone, Default)]
pub(super) struct Context {
    /// When checking part of a history: the writes left out, which may have changed the key
    /// at their revisions.
    pub gap: Option<Gap>,
    /// Without the store's history: the smallest revision lower bound of the unknown puts
    /// whose values nothing observed. Such a put may have applied at any later revision
    /// and been overwritten before anyone looked, so after it versions and create revisions
    /// are not known, a failed comparison may have failed on it, and a delete may have
    /// found the key it created.
    pub unseen_after: Option<i64>,
}

/// Places `op` in state `st`: the state after it, or `None` when it cannot come now.
pub(super) fn step(st: &State, op: &SOp, ctx: &Context) -> Option<State> {
    let action = op.action;
    let mut st = *st;
    // The revision before which `op` took effect (or read the key).
    let before = match action {
        Action::Read { h, .. } | Action::DeleteNone { h } | Action::CasFailed { h, .. } => {
            h.saturating_add(1)
        }
        _ => action.known_revision().unwrap_or(i64::MAX),
    };
    if let Some(gap) = &ctx.gap {
        // A left-out write may have happened between the last change and this operation.
        if st.kv != Kv::Unknown && gap.any(st.changed, before) {
            st.kv = Kv::Unknown;
        }
    }
    let unseen = ctx
        .unseen_after
        .is_some_and(|lb| st.changed.max(lb).saturating_add(1) < before);
    // The revision an unknown-revision write gets: above everything placed and answered
    // before it was invoked.
    let unknown_rev = st.floor().max(op.rev_lb).saturating_add(1);
    match action {
        Action::Read { h, kv } => {
            if h < st.changed {
                return None;
            }
            st.kv = read(st.kv, st.changed, h, kv)?;
            if let Some(kv) = kv {
                st.changed = st.changed.max(kv.modr);
            }
            st.seen = st.seen.max(h);
        }
        Action::Put {
            value,
            rev: Some(r),
        } => {
            if r <= st.floor() {
                return None;
            }
            st = changed(put_over(st.kv, value, r, unseen), r);
        }
        Action::Put { value, rev: None } => {
            st = changed(put_over(st.kv, value, 0, unseen), unknown_rev);
        }
        Action::Delete { rev: Some(r) } => {
            if r <= st.floor() || (st.kv == Kv::Absent && !unseen) {
                return None;
            }
            st = changed(Kv::Absent, r);
        }
        Action::Delete { rev: None } => match st.kv {
            // Deleting nothing changes nothing: the search skips it.
            Kv::Absent => return None,
            // It may have deleted the key or found it absent: absent either way, and the
            // last change is no later known.
            Kv::Unknown => st.kv = Kv::Absent,
            Kv::Present { .. } => st = changed(Kv::Absent, unknown_rev),
        },
        Action::DeleteNone { h } => {
            if h < st.changed || matches!(st.kv, Kv::Present { .. }) {
                return None;
            }
            st.kv = Kv::Absent;
            st.seen = st.seen.max(h);
        }
        Action::Cas { cmp, value, rev } => {
            if holds(&st.kv, cmp) == Some(false) {
                return None;
            }
            match rev {
                Some(r) => {
                    if r <= st.floor() {
                        return None;
                    }
                    st = changed(put_over(st.kv, value, r, unseen), r);
                }
                None => st = changed(put_over(st.kv, value, 0, unseen), unknown_rev),
            }
        }
        Action::CasFailed { cmp, h } => {
            if h < st.changed || (holds(&st.kv, cmp) == Some(true) && !unseen) {
                return None;
            }
            st.seen = st.seen.max(h);
        }
    }
    Some(st)
}

/// The state after a change at revision `rev` (or its lower bound).
fn changed(kv: Kv, rev: i64) -> State {
    State {
        kv,
        changed: rev,
        seen: 0,
    }
}

/// A read at header `h` answering `answer` from `kv` (last changed at `changed`, or later
/// when unknown): the key's refined state, or `None` when the answer is impossible.
fn read(kv: Kv, changed: i64, h: i64, answer: Option<ReadKv>) -> Option<Kv> {
    match (kv, answer) {
        (Kv::Absent, None) => Some(Kv::Absent),
        (Kv::Unknown, None) => Some(Kv::Absent),
        (Kv::Unknown, Some(a)) => {
            if a.modr < changed || a.modr > h {
                return None;
            }
            Some(Kv::Present {
                value: a.value,
                create: a.create,
                modr: a.modr,
                version: a.version,
            })
        }
        (
            Kv::Present {
                value,
                create,
                modr,
                version,
            },
            Some(a),
        ) => {
            let known_eq = |mine: i64, theirs: i64| mine == 0 || mine == theirs;
            if value != a.value
                || !known_eq(create, a.create)
                || !known_eq(modr, a.modr)
                || !known_eq(version, a.version)
                || a.modr > h
                || (modr == 0 && a.modr < changed)
            {
                return None;
            }
            Some(Kv::Present {
                value,
                create: a.create,
                modr: a.modr,
                version: a.version,
            })
        }
        (Kv::Absent, Some(_)) | (Kv::Present { .. }, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(action: Action) -> SOp {
        SOp {
            call: 0,
            ret: Some(1),
            required: true,
            action,
            rev_lb: 0,
        }
    }

    /// One step of the model from `state` with `action`, without context.
    fn apply(state: &State, action: Action) -> Option<State> {
        step(state, &op(action), &Context::default())
    }

    fn kv(value: u32, create: i64, modr: i64, version: i64) -> Option<ReadKv> {
        Some(ReadKv {
            value,
            create,
            modr,
            version,
        })
    }

    #[test]
    fn puts_create_then_update() {
        let s0 = State::initial();
        let s1 = apply(
            &s0,
            Action::Put {
                value: 1,
                rev: Some(10),
            },
        )
        .unwrap();
        let s2 = apply(
            &s1,
            Action::Put {
                value: 2,
                rev: Some(12),
            },
        )
        .unwrap();
        assert!(apply(
            &s2,
            Action::Read {
                h: 12,
                kv: kv(2, 10, 12, 2)
            }
        )
        .is_some());
        // Wrong version, wrong create revision, stale header, old value.
        assert!(apply(
            &s2,
            Action::Read {
                h: 12,
                kv: kv(2, 10, 12, 3)
            }
        )
        .is_none());
        assert!(apply(
            &s2,
            Action::Read {
                h: 12,
                kv: kv(2, 12, 12, 2)
            }
        )
        .is_none());
        assert!(apply(
            &s2,
            Action::Read {
                h: 11,
                kv: kv(2, 10, 12, 2)
            }
        )
        .is_none());
        assert!(apply(
            &s2,
            Action::Read {
                h: 13,
                kv: kv(1, 10, 10, 1)
            }
        )
        .is_none());
        // A write must have a revision above the last change.
        assert!(apply(
            &s2,
            Action::Put {
                value: 3,
                rev: Some(11)
            }
        )
        .is_none());
    }

    #[test]
    fn reads_push_later_writes_up() {
        let s1 = apply(
            &State::initial(),
            Action::Put {
                value: 1,
                rev: Some(10),
            },
        )
        .unwrap();
        let s2 = apply(
            &s1,
            Action::Read {
                h: 15,
                kv: kv(1, 10, 10, 1),
            },
        )
        .unwrap();
        assert!(apply(
            &s2,
            Action::Put {
                value: 2,
                rev: Some(14)
            }
        )
        .is_none());
        assert!(apply(
            &s2,
            Action::Put {
                value: 2,
                rev: Some(16)
            }
        )
        .is_some());
    }

    #[test]
    fn compare_and_set_and_delete() {
        let s1 = apply(
            &State::initial(),
            Action::Put {
                value: 1,
                rev: Some(10),
            },
        )
        .unwrap();
        let swap = |cmp| {
            op(Action::Cas {
                cmp,
                value: 2,
                rev: Some(11),
            })
        };
        assert!(step(&s1, &swap(Cmp::Value(1)), &Context::default()).is_some());
        assert!(step(&s1, &swap(Cmp::Value(3)), &Context::default()).is_none());
        assert!(step(&s1, &swap(Cmp::ModRevision(10)), &Context::default()).is_some());
        assert!(step(&s1, &swap(Cmp::ModRevision(0)), &Context::default()).is_none());
        assert!(step(&s1, &swap(Cmp::Absent), &Context::default()).is_none());
        assert!(apply(
            &s1,
            Action::CasFailed {
                cmp: Cmp::Absent,
                h: 10
            }
        )
        .is_some());
        assert!(apply(
            &s1,
            Action::CasFailed {
                cmp: Cmp::Value(1),
                h: 10
            }
        )
        .is_none());
        assert!(apply(&s1, Action::DeleteNone { h: 10 }).is_none());
        // A fenced compare may have failed on its other key.
        assert!(apply(
            &s1,
            Action::CasFailed {
                cmp: Cmp::Fenced,
                h: 10
            }
        )
        .is_some());
        let s2 = apply(&s1, Action::Delete { rev: Some(11) }).unwrap();
        assert_eq!(s2.kv, Kv::Absent);
        assert!(apply(&s2, Action::Delete { rev: Some(12) }).is_none());
        assert!(apply(&s2, Action::DeleteNone { h: 11 }).is_some());
        let s3 = apply(
            &s2,
            Action::Put {
                value: 3,
                rev: Some(13),
            },
        )
        .unwrap();
        assert_eq!(
            s3.kv,
            Kv::Present {
                value: 3,
                create: 13,
                modr: 13,
                version: 1
            }
        );
    }

    #[test]
    fn unknown_revisions_are_learned_from_reads() {
        let mut unknown = op(Action::Put {
            value: 1,
            rev: None,
        });
        unknown.rev_lb = 20;
        let s1 = step(&State::initial(), &unknown, &Context::default()).unwrap();
        assert_eq!(s1.changed, 21);
        // Its revision must be above what was answered before it was invoked.
        assert!(apply(
            &s1,
            Action::Read {
                h: 30,
                kv: kv(1, 19, 19, 1)
            }
        )
        .is_none());
        let s2 = apply(
            &s1,
            Action::Read {
                h: 30,
                kv: kv(1, 25, 25, 1),
            },
        )
        .unwrap();
        assert_eq!(s2.changed, 25);
        assert!(apply(
            &s2,
            Action::Read {
                h: 30,
                kv: kv(1, 25, 26, 1)
            }
        )
        .is_none());
        // An unknown delete of an absent key is a no-op the search skips.
        assert!(apply(&State::initial(), Action::Delete { rev: None }).is_none());
    }

    #[test]
    fn unseen_puts_blur_versions_and_verdicts() {
        let unseen = Context {
            gap: None,
            unseen_after: Some(10),
        };
        let s1 = apply(
            &State::initial(),
            Action::Put {
                value: 1,
                rev: Some(10),
            },
        )
        .unwrap();
        // An unseen put may have come between 10 and 12: the version is unknown...
        let s2 = step(
            &s1,
            &op(Action::Put {
                value: 2,
                rev: Some(12),
            }),
            &unseen,
        )
        .unwrap();
        assert!(step(
            &s2,
            &op(Action::Read {
                h: 12,
                kv: kv(2, 10, 12, 3)
            }),
            &unseen
        )
        .is_some());
        // ... but not the value, the mod revision, or the create revision of a key that existed.
        assert!(step(
            &s2,
            &op(Action::Read {
                h: 12,
                kv: kv(2, 11, 12, 3)
            }),
            &unseen
        )
        .is_none());
        // A failed comparison that held may have failed on the unseen value.
        let failed = op(Action::CasFailed {
            cmp: Cmp::Value(1),
            h: 12,
        });
        assert!(step(&s1, &failed, &Context::default()).is_none());
        assert!(step(&s1, &failed, &unseen).is_some());
        // Not before the unseen put could have applied.
        let early = op(Action::CasFailed {
            cmp: Cmp::Value(1),
            h: 10,
        });
        assert!(step(&s1, &early, &unseen).is_none());
    }

    #[test]
    fn left_out_writes_make_the_key_unknown() {
        let ops = vec![op(Action::Put {
            value: 9,
            rev: Some(11),
        })];
        let gap = Gap::of(&ops, |_| true);
        let with_gap = Context {
            gap: Some(gap),
            unseen_after: None,
        };
        let s1 = step(
            &State::initial(),
            &op(Action::Put {
                value: 1,
                rev: Some(10),
            }),
            &with_gap,
        )
        .unwrap();
        // Without the gap this read would be impossible; the left-out write at 11 explains it.
        let read = op(Action::Read {
            h: 12,
            kv: kv(9, 10, 11, 2),
        });
        assert!(step(&s1, &read, &Context::default()).is_none());
        assert!(step(&s1, &read, &with_gap).is_some());
        // But not a read at 10: nothing left out happened by then.
        let early = op(Action::Read {
            h: 10,
            kv: kv(9, 10, 11, 2),
        });
        assert!(step(&s1, &early, &with_gap).is_none());
    }
}
