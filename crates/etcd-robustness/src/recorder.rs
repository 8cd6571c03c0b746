//! Recording what clients do: one clock, unique op ids, every operation with its times.

use crate::history::{KeyValue, Op, Outcome, Request, Time};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::time::Instant;

/// The scenario's clock and the operations recorded so far; shared by every worker.
pub struct Recorder {
    start: Instant,
    next_id: AtomicU64,
    ops: Mutex<Vec<Op>>,
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            next_id: AtomicU64::new(1),
            ops: Mutex::new(Vec::new()),
        }
    }

    /// Nanoseconds since the recorder was made.
    pub fn now(&self) -> Time {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A fresh op id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `call` as operation `request` of `client`, records it with its times and
    /// returns its id and outcome. `call` turns its answer into an [`Outcome`] itself; an
    /// error becomes `Unknown` (open-ended) when the client says a write's outcome is
    /// unknown, else `Failed`.
    pub async fn op<F>(
        &self,
        client: u32,
        endpoint: Option<String>,
        request: Request,
        call: F,
    ) -> Op
    where
        F: std::future::Future<Output = etcd_kv::Result<Outcome>>,
    {
        let id = self.next_id();
        let started = self.now();
        let result = call.await;
        let finished = self.now();
        let (ret, outcome) = match result {
            Ok(outcome) => (Some(finished), outcome),
            Err(e) if request.is_write() && e.is_outcome_unknown() => (
                None,
                Outcome::Unknown {
                    error: e.to_string(),
                },
            ),
            Err(e) => (
                Some(finished),
                Outcome::Failed {
                    error: e.to_string(),
                },
            ),
        };
        let op = Op {
            id,
            client,
            call: started,
            ret,
            endpoint,
            request,
            outcome,
        };
        self.push(op.clone());
        op
    }

    /// Records an operation made elsewhere.
    pub fn push(&self, op: Op) {
        match self.ops.lock() {
            Ok(mut ops) => ops.push(op),
            Err(poisoned) => poisoned.into_inner().push(op),
        }
    }

    /// Everything recorded, in id order.
    pub fn take_ops(&self) -> Vec<Op> {
        let mut ops = match self.ops.lock() {
            Ok(mut ops) => std::mem::take(&mut *ops),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        ops.sort_by_key(|op| op.id);
        ops
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// A key-value of the client, in the history's terms (values are UTF-8 here: the
/// workloads write text; anything else is shown lossily).
pub fn key_value(kv: &etcd_kv::KeyValue) -> KeyValue {
    KeyValue {
        value: String::from_utf8_lossy(kv.value()).into_owned(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: kv.lease(),
    }
}
