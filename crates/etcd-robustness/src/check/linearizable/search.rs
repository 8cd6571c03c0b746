//! The Wing–Gong–Lowe search (as in Porcupine): place operations one at a time in an order
//! that respects real time and the model, backtrack on a dead end, and never explore twice
//! the same (set of placed operations, state).
//!
//! Real time: an operation may be placed next only if it was invoked before every unplaced
//! required operation returned. Candidates are tried in [`super::model::Action::priority`] order (the
//! operation whose revision comes next first), so that a correct history is usually placed
//! without backtracking.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use super::model::{step, Context, SOp, State};
use crate::history::Time;

/// The furthest the search got.
#[derive(Debug, Clone, Default)]
pub(super) struct Deepest {
    /// The operations placed, in order.
    pub order: Vec<usize>,
    /// The unplaced required operation that returned first: the one that could not be
    /// placed in time.
    pub blocking: Option<usize>,
    /// The candidates that were tried there.
    pub tried: Vec<usize>,
}

/// How a search ended.
#[derive(Debug, Clone)]
pub(super) enum Verdict {
    /// Every required operation was placed.
    Linearizable,
    /// No order works.
    NotLinearizable(Deepest),
    /// The bound on states was reached.
    GaveUp { states: usize, deepest: Deepest },
}

/// A cache entry: the placed set (as "every index below `prefix`" plus the others) and the
/// state. Operations are indexed in priority order, so in a correct history the placed set
/// is almost always a prefix and `others` is short.
#[derive(PartialEq, Eq, Hash)]
struct Visited {
    prefix: u32,
    others: Box<[u32]>,
    state: State,
}

/// The FxHash function (rustc's): fast, good enough for a cache of search states.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        for &b in chunks.remainder() {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One placed operation, with what to restore when it is taken back.
struct Frame {
    op: usize,
    state: State,
    lb: Time,
    fp: usize,
    prefix: usize,
    candidates: Vec<usize>,
    next: usize,
}

/// The search over `ops`, which must be sorted by priority (their index is their rank).
struct Search<'a> {
    ops: &'a [SOp],
    ctx: &'a Context,
    /// Indices of operations with a return, by call time.
    finite: Vec<usize>,
    /// Indices of open-ended operations, by call time.
    open: Vec<usize>,
    placed: Vec<u64>,
    /// Every index below is placed.
    prefix: usize,
    /// The latest call among placed operations: nothing can be placed before it.
    lb: Time,
    /// Every operation of `finite` before this one is placed or can no longer be.
    fp: usize,
    required_left: usize,
}

impl Search<'_> {
    fn is_placed(&self, i: usize) -> bool {
        self.placed[i / 64] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: usize) {
        self.placed[i / 64] |= 1 << (i % 64);
        while self.prefix < self.ops.len() && self.is_placed(self.prefix) {
            self.prefix += 1;
        }
    }

    fn clear(&mut self, i: usize) {
        self.placed[i / 64] &= !(1 << (i % 64));
    }

    /// An optional finite operation that returned before the latest placed call can no
    /// longer be placed.
    fn is_dead(&self, i: usize) -> bool {
        let op = &self.ops[i];
        !op.required && op.ret.is_some_and(|ret| ret < self.lb)
    }

    fn advance_fp(&mut self) {
        while self.fp < self.finite.len() {
            let i = self.finite[self.fp];
            if self.is_placed(i) || self.is_dead(i) {
                self.fp += 1;
            } else {
                break;
            }
        }
    }

    /// The operations that may be placed next, in priority order, and the unplaced
    /// required operation that returns first.
    fn candidates(&self) -> (Vec<usize>, Option<usize>) {
        let mut horizon = Time::MAX;
        let mut blocking = None;
        for &i in &self.finite[self.fp..] {
            let op = &self.ops[i];
            if op.call > horizon {
                break;
            }
            if self.is_placed(i) || !op.required {
                continue;
            }
            if let Some(ret) = op.ret {
                if ret < horizon {
                    horizon = ret;
                    blocking = Some(i);
                }
            }
        }
        let mut candidates = Vec::new();
        for &i in &self.finite[self.fp..] {
            let op = &self.ops[i];
            if op.call > horizon {
                break;
            }
            if !self.is_placed(i) && !self.is_dead(i) {
                candidates.push(i);
            }
        }
        for &i in &self.open {
            let op = &self.ops[i];
            if op.call > horizon {
                break;
            }
            if !self.is_placed(i) {
                candidates.push(i);
            }
        }
        candidates.sort_unstable();
        if blocking.is_none() {
            blocking = (0..self.ops.len()).find(|&i| self.ops[i].required && !self.is_placed(i));
        }
        (candidates, blocking)
    }

    fn visited(&self, state: State) -> Visited {
        let mut others = Vec::new();
        let start = self.prefix / 64;
        for (w, &word) in self.placed.iter().enumerate().skip(start) {
            let mut word = word;
            while word != 0 {
                let bit = word.trailing_zeros() as usize;
                word &= word - 1;
                let i = w * 64 + bit;
                if i > self.prefix {
                    others.push(i as u32);
                }
            }
        }
        Visited {
            prefix: self.prefix as u32,
            others: others.into_boxed_slice(),
            state,
        }
    }
}

/// Searches for a linearization of `ops` (sorted by [`super::model::Action::priority`])
/// from the initial state, visiting at most `max_states` states, knowing `ctx` of the writes
/// it does not place.
pub(super) fn search(ops: &[SOp], ctx: &Context, max_states: usize) -> Verdict {
    let mut finite: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_some()).collect();
    finite.sort_by_key(|&i| ops[i].call);
    let mut open: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_none()).collect();
    open.sort_by_key(|&i| ops[i].call);
    let mut s = Search {
        ops,
        ctx,
        finite,
        open,
        placed: vec![0; ops.len().div_ceil(64)],
        prefix: 0,
        lb: 0,
        fp: 0,
        required_left: ops.iter().filter(|op| op.required).count(),
    };
    let mut cache: HashSet<Visited, BuildHasherDefault<FxHasher>> = HashSet::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut state = State::initial();
    let (mut candidates, mut blocking) = s.candidates();
    let mut next = 0;
    let mut deepest = Deepest::default();
    let mut deepest_len = None;
    loop {
        if s.required_left == 0 {
            return Verdict::Linearizable;
        }
        let mut advanced = false;
        while next < candidates.len() {
            let i = candidates[next];
            next += 1;
            let op = &s.ops[i];
            let Some(after) = step(&state, op, s.ctx) else {
                continue;
            };
            // An optional write that changes nothing is the same as leaving it out.
            if !op.required && after == state {
                continue;
            }
            let frame = Frame {
                op: i,
                state,
                lb: s.lb,
                fp: s.fp,
                prefix: s.prefix,
                candidates: std::mem::take(&mut candidates),
                next,
            };
            s.set(i);
            if !cache.insert(s.visited(after)) {
                s.clear(i);
                s.prefix = frame.prefix;
                candidates = frame.candidates;
                continue;
            }
            if cache.len() > max_states {
                stack.push(frame);
                if deepest_len.is_none() {
                    deepest.order = stack.iter().map(|f| f.op).collect();
                }
                return Verdict::GaveUp {
                    states: cache.len(),
                    deepest,
                };
            }
            s.lb = s.lb.max(op.call);
            if op.required {
                s.required_left -= 1;
            }
            s.advance_fp();
            stack.push(frame);
            state = after;
            (candidates, blocking) = s.candidates();
            next = 0;
            advanced = true;
            break;
        }
        if advanced {
            continue;
        }
        // A dead end: remember the deepest one, then take the last placement back.
        if deepest_len.is_none_or(|d| stack.len() > d) {
            deepest_len = Some(stack.len());
            deepest = Deepest {
                order: stack.iter().map(|f| f.op).collect(),
                blocking,
                tried: candidates.clone(),
            };
        }
        let Some(frame) = stack.pop() else {
            return Verdict::NotLinearizable(deepest);
        };
        s.clear(frame.op);
        if s.ops[frame.op].required {
            s.required_left += 1;
        }
        state = frame.state;
        s.lb = frame.lb;
        s.fp = frame.fp;
        s.prefix = frame.prefix;
        candidates = frame.candidates;
        next = frame.next;
        blocking = None;
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{Action, ReadKv};
    use super::*;

    fn op(call: Time, ret: Option<Time>, action: Action) -> SOp {
        SOp {
            call,
            ret,
            required: true,
            action,
            rev_lb: 0,
        }
    }

    fn sorted(mut ops: Vec<SOp>) -> Vec<SOp> {
        ops.sort_by_key(|op| (op.action.priority(), op.call));
        ops
    }

    fn read(h: i64, value: u32, modr: i64, version: i64, create: i64) -> Action {
        Action::Read {
            h,
            kv: Some(ReadKv {
                value,
                create,
                modr,
                version,
            }),
        }
    }

    #[test]
    fn concurrent_ops_find_their_order() {
        // Two overlapping puts, a read of the second one.
        let ops = sorted(vec![
            op(
                0,
                Some(100),
                Action::Put {
                    value: 1,
                    rev: Some(11),
                },
            ),
            op(
                10,
                Some(50),
                Action::Put {
                    value: 2,
                    rev: Some(10),
                },
            ),
            op(60, Some(70), read(11, 1, 11, 2, 10)),
        ]);
        assert!(matches!(
            search(&ops, &Context::default(), 1000),
            Verdict::Linearizable
        ));
    }

    #[test]
    fn real_time_is_enforced_even_when_revisions_agree() {
        // The read returned before the write was invoked, yet saw it.
        let ops = sorted(vec![
            op(0, Some(10), read(11, 1, 11, 1, 11)),
            op(
                20,
                Some(30),
                Action::Put {
                    value: 1,
                    rev: Some(11),
                },
            ),
        ]);
        let Verdict::NotLinearizable(deepest) = search(&ops, &Context::default(), 1000) else {
            panic!("not linearizable expected");
        };
        assert!(deepest.blocking.is_some());
    }

    #[test]
    fn optional_writes_may_be_left_out() {
        let mut unknown = op(
            0,
            None,
            Action::Put {
                value: 7,
                rev: None,
            },
        );
        unknown.required = false;
        let ops = sorted(vec![
            unknown.clone(),
            op(10, Some(20), Action::Read { h: 5, kv: None }),
        ]);
        assert!(matches!(
            search(&ops, &Context::default(), 1000),
            Verdict::Linearizable
        ));
        // ... or placed when a read needs them.
        let ops = sorted(vec![unknown, op(10, Some(20), read(12, 7, 12, 1, 12))]);
        assert!(matches!(
            search(&ops, &Context::default(), 1000),
            Verdict::Linearizable
        ));
    }

    #[test]
    fn gives_up_at_the_bound() {
        // Many concurrent reads of the same revision can be placed in any order, and the last
        // read is impossible: the search must try every subset before giving up.
        let mut ops = vec![op(
            0,
            Some(1),
            Action::Put {
                value: 1,
                rev: Some(10),
            },
        )];
        for t in 0..20 {
            ops.push(op(2 + t, Some(1000), read(10, 1, 10, 1, 10)));
        }
        ops.push(op(2, Some(1000), Action::Read { h: 10, kv: None }));
        let ops = sorted(ops);
        assert!(matches!(
            search(&ops, &Context::default(), 100),
            Verdict::GaveUp { .. }
        ));
    }
}
