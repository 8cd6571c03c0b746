//! The workloads: concurrent clients doing random operations while the nemesis works,
//! each recording what it asked, when, and what it got.
//!
//! - KV registers: put, linearizable get, serializable get, compare-and-set and delete on a
//!   few keys, with unique values.
//! - Watches of the whole data prefix, recording every delivery (and asking for progress).
//! - Leases: keys attached to leases kept alive by a [`LeaseKeeper`](etcd_kv::LeaseKeeper).
//! - Locks: holders increment a shared counter under the lock, each write fenced by the
//!   holder's ownership (through the lock's `Fenced` view: a compare-and-set on the
//!   counter's mod revision nested in the ownership condition).
//! - A cache of the KV keys: memory reads at the revision they report, and consistent reads.

use crate::history::{
    Event, EventKind, Expect, LeaseRecord, LockRecord, Op, Outcome, ReadKind, Request,
    WatchDelivery, WatchRecord,
};
use crate::recorder::{key_value, Recorder};
use etcd_kv::{Client, Compare, TxnOp};
use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Everything a worker needs: its client, the recorder, the stop flag, its random source.
pub struct Worker {
    /// The worker's number (its `client` in the history).
    pub id: u32,
    /// Its own client (connections of its own).
    pub client: Client,
    /// Where it records.
    pub recorder: Arc<Recorder>,
    /// Set when the workload must end.
    pub stop: Arc<AtomicBool>,
    /// Seeded from the scenario's seed.
    pub rng: StdRng,
    /// The scenario's data prefix (every key the checkers look at is under it).
    pub prefix: String,
    /// A pause between operations, so that histories stay a size the checker handles fast.
    pub pace: Duration,
}

impl Worker {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn endpoint(&self) -> Option<String> {
        Some(self.client.current_endpoint())
    }

    async fn pace(&mut self) {
        if !self.pace.is_zero() {
            let jitter = self.rng.gen_range(0.5..1.5);
            tokio::time::sleep(self.pace.mul_f64(jitter)).await;
        }
    }
}

/// The keys of the KV registers.
pub fn kv_keys(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|k| format!("{prefix}kv/{k}")).collect()
}

/// One KV register client: random operations on `keys` until stopped.
pub async fn kv_worker(mut w: Worker, keys: Vec<String>) {
    let mut seq = 0u64;
    // The last value this worker saw of each key: what its compare-and-sets expect.
    let mut seen: Vec<Option<(String, i64)>> = vec![None; keys.len()];
    while !w.stopped() {
        let k = w.rng.gen_range(0..keys.len());
        let key = keys[k].clone();
        let roll = w.rng.gen_range(0..100);
        let op = if roll < 30 {
            get(&w, &key, ReadKind::Linearizable).await
        } else if roll < 40 {
            get(&w, &key, ReadKind::Serializable).await
        } else if roll < 65 {
            seq += 1;
            put(&w, &key, format!("{}.{seq}", w.id)).await
        } else if roll < 90 {
            seq += 1;
            let value = format!("{}.{seq}", w.id);
            let expect = match &seen[k] {
                None => Expect::Absent,
                Some((v, m)) => {
                    if w.rng.gen_bool(0.5) {
                        Expect::Value(v.clone())
                    } else {
                        Expect::ModRevision(*m)
                    }
                }
            };
            cas(&w, &key, expect, value).await
        } else {
            delete(&w, &key).await
        };
        if let Outcome::Get { kv, .. } = &op.outcome {
            seen[k] = kv.as_ref().map(|kv| (kv.value.clone(), kv.mod_revision));
        }
        w.pace().await;
    }
}

async fn get(w: &Worker, key: &str, read: ReadKind) -> Op {
    let request = Request::Get {
        key: key.to_string(),
        read,
    };
    let client = &w.client;
    w.recorder
        .op(w.id, w.endpoint(), request, async {
            let range = client.range(key);
            let answer = if read == ReadKind::Serializable {
                range.serializable().await?
            } else {
                range.await?
            };
            Ok(Outcome::Get {
                revision: answer.revision(),
                kv: answer.kvs().first().map(key_value),
            })
        })
        .await
        .with_endpoint(client)
}

async fn put(w: &Worker, key: &str, value: String) -> Op {
    let request = Request::Put {
        key: key.to_string(),
        value: value.clone(),
    };
    let client = &w.client;
    w.recorder
        .op(w.id, w.endpoint(), request, async {
            let answer = client.put(key, value).await?;
            Ok(Outcome::Put {
                revision: answer.revision(),
            })
        })
        .await
        .with_endpoint(client)
}

async fn delete(w: &Worker, key: &str) -> Op {
    let request = Request::Delete {
        key: key.to_string(),
    };
    let client = &w.client;
    w.recorder
        .op(w.id, w.endpoint(), request, async {
            let answer = client.delete(key).await?;
            Ok(Outcome::Delete {
                revision: answer.revision(),
                deleted: answer.deleted(),
            })
        })
        .await
        .with_endpoint(client)
}

async fn cas(w: &Worker, key: &str, expect: Expect, value: String) -> Op {
    let compare = match &expect {
        Expect::Value(v) => Compare::value(key).eq(v.clone()),
        Expect::Absent => Compare::version(key).eq(0),
        Expect::ModRevision(m) => Compare::mod_revision(key).eq(*m),
    };
    let request = Request::Cas {
        key: key.to_string(),
        expect,
        value: value.clone(),
    };
    let client = &w.client;
    w.recorder
        .op(w.id, w.endpoint(), request, async {
            let answer = client
                .txn()
                .when([compare])
                .and_then([TxnOp::put(key, value)])
                .await?;
            Ok(Outcome::Cas {
                revision: answer.revision(),
                succeeded: answer.succeeded(),
            })
        })
        .await
        .with_endpoint(client)
}

trait WithEndpoint {
    fn with_endpoint(self, client: &Client) -> Self;
}

impl WithEndpoint for Op {
    /// The member that answered: the client's current endpoint after the call (one call at
    /// a time per client).
    fn with_endpoint(mut self, client: &Client) -> Op {
        self.endpoint = Some(client.current_endpoint());
        self
    }
}

/// A watch of the whole data prefix from `start_revision` (0: from now), recording every
/// delivery, asking for progress now and then where the stream allows it, until stopped.
/// Returns what it recorded; `caught_up_to` is left for the caller.
pub async fn watch_worker(
    mut w: Worker,
    watch_id: u32,
    start_revision: i64,
    target: Arc<WatchTarget>,
    ready: tokio::sync::oneshot::Sender<()>,
) -> WatchRecord {
    let mut record = WatchRecord {
        id: watch_id,
        client: w.id,
        key: w.prefix.clone(),
        range_end: String::from_utf8_lossy(&etcd_kv::prefix_end(w.prefix.as_bytes())).into_owned(),
        start_revision,
        ..WatchRecord::default()
    };
    let mut builder = w.client.watch(w.prefix.clone()).prefix();
    if start_revision > 0 {
        builder = builder.start_revision(start_revision);
    }
    let mut stream = match builder.await {
        Ok(stream) => stream,
        Err(e) => {
            record.ended = Some(format!("could not create the watch: {e}"));
            return record;
        }
    };
    record.created = w.recorder.now();
    if start_revision == 0 {
        // The revision it was created at: a linearizable read right after creation, before
        // any workload writes (the scenario waits for `ready`), reads the same one.
        loop {
            match w.client.range(&w.prefix).count_only().await {
                Ok(answer) => {
                    record.created_revision = answer.revision();
                    break;
                }
                Err(_) if !w.stopped() => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => {
                    record.ended = Some(format!("could not learn the creation revision: {e}"));
                    return record;
                }
            }
        }
    }
    let _ = ready.send(());
    let mut target = target.subscribe();
    let mut last = 0i64;
    let mut next_progress = tokio::time::Instant::now() + Duration::from_millis(700);
    loop {
        // Stop once caught up to the target revision, or at its deadline: a watch that
        // has not caught up by then has gaps, which the checker reports.
        let goal = *target.borrow_and_update();
        if let Some((goal, deadline)) = goal {
            if last >= goal || tokio::time::Instant::now() >= deadline {
                record.caught_up_to = goal;
                break;
            }
        }
        let give_up = goal.map(|(_, deadline)| deadline);
        tokio::select! {
            _ = sleep_until(give_up) => {}
            next = stream.next() => match next {
                Some(Ok(response)) => {
                    last = last.max(response.revision());
                    record.responses.push(delivery(&w, &stream, response));
                }
                Some(Err(e)) => {
                    record.ended = Some(e.to_string());
                    break;
                }
                None => {
                    record.ended = Some("the watch stream ended".into());
                    break;
                }
            },
            changed = target.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = tokio::time::sleep_until(next_progress) => {
                // Bookmarks: a notification must never run ahead of an event to come.
                let _ = stream.request_progress();
                next_progress = tokio::time::Instant::now()
                    + Duration::from_millis(w.rng.gen_range(300..1500));
            }
        }
    }
    record
}

/// Where every watch must get to before it stops, and until when it may take: set once
/// the faults are healed and the closing write is done.
pub type WatchTarget = tokio::sync::watch::Sender<Option<(i64, tokio::time::Instant)>>;

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn delivery(
    w: &Worker,
    stream: &etcd_kv::WatchStream,
    response: etcd_kv::WatchResponse,
) -> WatchDelivery {
    let progress = response.is_progress_notify();
    let revision = response.revision();
    let events = response
        .events()
        .iter()
        .map(|e| {
            let key = String::from_utf8_lossy(e.key()).into_owned();
            if e.is_delete() {
                Event {
                    key,
                    kind: EventKind::Delete,
                    revision: e.revision(),
                    kv: None,
                }
            } else {
                Event {
                    key,
                    kind: EventKind::Put,
                    revision: e.revision(),
                    kv: Some(key_value(e.kv())),
                }
            }
        })
        .collect();
    WatchDelivery {
        time: w.recorder.now(),
        revision,
        progress,
        events,
        endpoint: Some(stream.endpoint()),
    }
}

/// Lease workload: grant a lease, attach a key, keep it alive a while, revoke it; again.
/// The last lease of each worker is kept to the end of the run (still kept when it stops).
pub async fn lease_worker(
    mut w: Worker,
    ttl: i64,
) -> (Vec<LeaseRecord>, Vec<etcd_kv::LeaseKeeper>) {
    let mut records = Vec::new();
    let mut seq = 0u64;
    let mut kept = Vec::new();
    while !w.stopped() {
        seq += 1;
        let granted = w.recorder.now();
        let lease = match w.client.lease_grant(ttl).await {
            Ok(lease) => lease,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let keeper = w.client.keep_alive(lease);
        let key = format!("{}lease/{}/{seq}", w.prefix, w.id);
        let value = format!("{}.lease{seq}", w.id);
        let request = Request::Put {
            key: key.clone(),
            value: value.clone(),
        };
        let client = &w.client;
        let lease_id = keeper.id();
        let op = w
            .recorder
            .op(w.id, w.endpoint(), request, async {
                let answer = client.put(&key, value).lease(lease_id).await?;
                Ok(Outcome::Put {
                    revision: answer.revision(),
                })
            })
            .await;
        let mut record = LeaseRecord {
            client: w.id,
            lease: lease_id,
            ttl,
            key,
            put: Some(op.id),
            granted,
            ..LeaseRecord::default()
        };
        // Keep it a while, watching for a loss.
        let hold = Duration::from_millis(w.rng.gen_range(2_000..8_000));
        let until = tokio::time::Instant::now() + hold;
        let lost = keeper.lost();
        tokio::pin!(lost);
        let mut lost_reason = None;
        while tokio::time::Instant::now() < until && !w.stopped() {
            tokio::select! {
                reason = &mut lost => {
                    lost_reason = Some(reason);
                    break;
                }
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        if let Some(reason) = lost_reason {
            record.lost = Some((w.recorder.now(), format!("{reason:?}")));
            records.push(record);
            continue;
        }
        if w.stopped() {
            // Kept to the end: the caller checks it once the faults are healed.
            records.push(record);
            kept.push(keeper);
            break;
        }
        let revoking = w.recorder.now();
        match keeper.revoke().await {
            Ok(()) => record.revoked = Some(revoking),
            // Revoke may have been applied: the key may be gone either way.
            Err(_) => record.revoked = Some(revoking),
        }
        records.push(record);
        w.pace().await;
    }
    (records, kept)
}

/// Lock workload: take the lock, increment the shared counter `increments` times under
/// it with fenced compare-and-sets, release; again. One holder in four first loses its
/// lease (revoked from its own client) and writes anyway, stale. Returns the holders it
/// recorded.
pub async fn lock_worker(
    mut w: Worker,
    lock_name: String,
    counter_key: String,
    next_record: Arc<std::sync::atomic::AtomicU32>,
) -> Vec<LockRecord> {
    let mut records = Vec::new();
    while !w.stopped() {
        let guard = match w
            .client
            .lock(lock_name.clone())
            .ttl(5)
            .timeout(Duration::from_secs(10))
            .await
        {
            Ok(guard) => guard,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let id = next_record.fetch_add(1, Ordering::Relaxed);
        let mut record = LockRecord {
            id,
            client: w.id,
            name: lock_name.clone(),
            owner_key: String::from_utf8_lossy(guard.key()).into_owned(),
            owner_revision: guard.create_revision(),
            counter_key: counter_key.clone(),
            acquired: w.recorder.now(),
            ..LockRecord::default()
        };
        if w.rng.gen_ratio(1, 4) {
            // A stale holder: its lease is lost (revoked, as if it had expired during a
            // pause) and the next waiter may take the lock; its fenced writes must all be
            // refused, which the lock check verifies against the store.
            let _ = w.client.lease_revoke(guard.session().lease_id()).await;
            record.stale = true;
        }
        for _ in 0..2 {
            // Read the counter, then write the next value, fenced.
            let read = get(&w, &counter_key, ReadKind::Linearizable).await;
            let Outcome::Get { kv, .. } = &read.outcome else {
                break;
            };
            let (n, expect) = match kv {
                None => (1, Expect::ModRevision(0)),
                Some(kv) => {
                    let n: u64 = kv
                        .value
                        .split('/')
                        .next()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    (n + 1, Expect::ModRevision(kv.mod_revision))
                }
            };
            let value = format!("{n}/{id}");
            let Expect::ModRevision(m) = expect else {
                break;
            };
            let request = Request::Cas {
                key: counter_key.clone(),
                expect: expect.clone(),
                value: value.clone(),
            };
            let client = &w.client;
            let fenced = guard.fenced();
            let key = counter_key.clone();
            let op = w
                .recorder
                .op(w.id, w.endpoint(), request, async {
                    // A holder that lost the lock gets NotOwner (recorded as failed:
                    // nothing applied).
                    let cas = client
                        .txn()
                        .when([Compare::mod_revision(key.clone()).eq(m)])
                        .and_then([TxnOp::put(key, value)]);
                    let answer = fenced.txn(cas).await?;
                    Ok(Outcome::Cas {
                        revision: answer.revision(),
                        succeeded: answer.succeeded(),
                    })
                })
                .await;
            record.writes.push(op.id);
            if !matches!(
                op.outcome,
                Outcome::Cas {
                    succeeded: true,
                    ..
                }
            ) {
                break;
            }
        }
        let _ = guard.release().await;
        record.released = Some(w.recorder.now());
        records.push(record);
        w.pace().await;
    }
    records
}

/// Cache workload: reads of the KV keys from a cache of their prefix, memory reads (at the
/// revision the cache reports) and consistent reads, until stopped.
pub async fn cache_worker(mut w: Worker, keys: Vec<String>) {
    let prefix = format!("{}kv/", w.prefix);
    let cache = loop {
        match w.client.cache(prefix.clone()).await {
            Ok(cache) => break cache,
            Err(_) if !w.stopped() => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(_) => return,
        }
    };
    while !w.stopped() {
        let key = keys[w.rng.gen_range(0..keys.len())].clone();
        if w.rng.gen_bool(0.5) {
            let request = Request::Get {
                key: key.clone(),
                read: ReadKind::Cache,
            };
            let cache = &cache;
            w.recorder
                .op(w.id, None, request, async {
                    let read = cache.get(&key)?;
                    Ok(Outcome::Get {
                        revision: read.revision(),
                        kv: read.as_ref().map(key_value),
                    })
                })
                .await;
        } else {
            let request = Request::Get {
                key: key.clone(),
                read: ReadKind::CacheConsistent,
            };
            let cache = &cache;
            w.recorder
                .op(w.id, None, request, async {
                    let read = cache.consistent_get(&key).await?;
                    Ok(Outcome::Get {
                        revision: read.revision(),
                        kv: read.as_ref().map(key_value),
                    })
                })
                .await;
        }
        w.pace().await;
    }
}

/// A seeded random source for worker `id` of a scenario seeded with `seed`.
pub fn rng_for(seed: u64, id: u32) -> StdRng {
    StdRng::seed_from_u64(seed ^ (u64::from(id) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}
