//! The prefix cache: exact under concurrent writers, linearizable consistent reads, read
//! your own writes, subscribers, the memory limit, and faults (killed and frozen member,
//! compaction while disconnected).

use etcd_kv::{Cache, CacheUpdate, Client, EventKind, KeyValue, TxnOp};
use futures_util::StreamExt;
use rand::Rng;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn per_call() -> bool {
    xtask::testing::per_call_streams()
}

/// Everything a key-value is, as comparable data.
fn row(kv: &KeyValue) -> (Vec<u8>, Vec<u8>, i64, i64, i64, i64) {
    (
        kv.key().to_vec(),
        kv.value().to_vec(),
        kv.create_revision(),
        kv.mod_revision(),
        kv.version(),
        kv.lease(),
    )
}

fn digest(kvs: &[KeyValue]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for kv in kvs {
        row(kv).hash(&mut h);
    }
    kvs.len().hash(&mut h);
    h.finish()
}

/// The prefix read from etcd at `revision`, page by page.
async fn etcd_content(client: &Client, prefix: &str, revision: i64) -> Vec<KeyValue> {
    let mut pages = client
        .scan(prefix)
        .prefix()
        .revision(revision)
        .page_size(5000)
        .pages();
    let mut kvs = Vec::new();
    while let Some(page) = pages.next().await {
        kvs.extend(page.expect("scan at the cache's revision"));
    }
    kvs
}

/// Asserts the cache equals etcd's range of the prefix at the cache's revision.
async fn assert_exact(cache: &Cache, client: &Client, prefix: &str) {
    let snapshot = cache.snapshot().expect("cache running");
    let expected = etcd_content(client, prefix, snapshot.revision()).await;
    assert_eq!(
        snapshot.kvs().len(),
        expected.len(),
        "key count at revision {}",
        snapshot.revision()
    );
    for (a, b) in snapshot.kvs().iter().zip(&expected) {
        assert_eq!(row(a), row(b), "at revision {}", snapshot.revision());
    }
}

/// Puts `n` keys `{prefix}{i:06}` in transactions of 128 puts, 8 in flight.
async fn load(client: &Client, prefix: &str, n: usize, value: &[u8]) {
    let batches: Vec<Vec<usize>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(128)
        .map(<[usize]>::to_vec)
        .collect();
    let batches = Arc::new(std::sync::Mutex::new(batches));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, batches, prefix, value) = (
            client.clone(),
            batches.clone(),
            prefix.to_string(),
            value.to_vec(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(batch) = batches.lock().unwrap().pop() else {
                    return;
                };
                let ops: Vec<TxnOp> = batch
                    .iter()
                    .map(|i| TxnOp::put(format!("{prefix}{i:06}"), value.clone()))
                    .collect();
                client.txn().and_then(ops).await.expect("load txn");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_ranges_subscribers_and_read_your_writes() {
    let (_etcd, client, prefix) = crate::setup!("cache-basic");
    for i in 0..50 {
        client
            .put(format!("{prefix}k{i:02}"), format!("v{i}"))
            .await
            .unwrap();
    }
    client.put(format!("{prefix}z"), "outside?").await.unwrap();
    client
        .put(
            format!("{}-sibling", prefix.trim_end_matches('/')),
            "not cached",
        )
        .await
        .unwrap();
    let cache = client
        .cache(prefix.clone())
        .page_size(7)
        .await
        .expect("cache");
    assert_eq!(cache.lists(), 1);
    assert_eq!(*cache.len().unwrap(), 51);
    let kv = cache.get(format!("{prefix}k07")).unwrap();
    assert_eq!(kv.as_ref().unwrap().value(), b"v7");
    assert!(kv.revision() >= kv.as_ref().unwrap().mod_revision());
    assert!(cache.get(format!("{prefix}nope")).unwrap().is_none());
    let range = cache
        .range(format!("{prefix}k10"), format!("{prefix}k13"))
        .unwrap();
    let keys: Vec<String> = range
        .iter()
        .map(|kv| kv.key_str().unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        [10, 11, 12].map(|i| format!("{prefix}k{i:02}")).to_vec()
    );
    assert!(cache
        .range(format!("{prefix}k13"), format!("{prefix}k10"))
        .unwrap()
        .is_empty());
    assert_eq!(cache.prefix(format!("{prefix}k4")).unwrap().len(), 10);
    assert_eq!(cache.range(format!("{prefix}k45"), "").unwrap().len(), 6);
    assert!(cache.size_bytes() > 51 * etcd_kv::cache::ENTRY_OVERHEAD);
    assert_exact(&cache, &client, &prefix).await;

    // A subscriber from the snapshot: replaying its updates on the snapshot gives the cache.
    let (snapshot, mut updates) = cache.snapshot_and_subscribe().unwrap();
    assert_eq!(updates.start_revision(), snapshot.revision());
    let mut mirror: BTreeMap<Vec<u8>, KeyValue> = snapshot
        .kvs()
        .iter()
        .map(|kv| (kv.key().to_vec(), kv.clone()))
        .collect();

    // Read your own writes, from another client.
    let writer = crate::builder()
        .endpoint(_etcd.endpoint(0))
        .connect()
        .await
        .unwrap();
    let put = writer.put(format!("{prefix}k07"), "seven").await.unwrap();
    let kv = cache
        .get_at_least(format!("{prefix}k07"), put.revision())
        .await
        .unwrap();
    assert!(kv.revision() >= put.revision());
    assert_eq!(kv.as_ref().unwrap().value(), b"seven");
    let deleted = writer.delete(format!("{prefix}k1")).prefix().await.unwrap();
    assert_eq!(deleted.deleted(), 10);
    let kv = cache
        .get_at_least(format!("{prefix}k15"), deleted.revision())
        .await
        .unwrap();
    assert!(kv.is_none());
    let last = writer
        .txn()
        .and_then([
            TxnOp::put(format!("{prefix}t1"), "a"),
            TxnOp::put(format!("{prefix}t2"), "b"),
            TxnOp::delete(format!("{prefix}k20")),
        ])
        .await
        .unwrap();
    // A write outside the prefix: the cache must still answer a read at its revision.
    let outside = writer
        .put(format!("{}-sibling", prefix.trim_end_matches('/')), "x")
        .await
        .unwrap();
    let len = cache
        .read_at_least(outside.revision(), |view| view.len())
        .await
        .expect("a read at a revision of a write outside the prefix");
    assert!(len.revision() >= outside.revision());
    assert_eq!(*len, 51 - 10 + 2 - 1);
    let consistent = cache
        .consistent_get(format!("{prefix}t2"))
        .await
        .expect("consistent read");
    assert_eq!(consistent.as_ref().unwrap().value(), b"b");
    assert!(consistent.revision() >= outside.revision());

    // Every update up to the last write to the prefix (other tests write meanwhile).
    let mut at = snapshot.revision();
    while at < last.revision() {
        let update = tokio::time::timeout(Duration::from_secs(10), updates.next())
            .await
            .expect("an update in time")
            .expect("stream open")
            .expect("no error");
        let CacheUpdate::Revision(response) = update else {
            panic!("unexpected reset");
        };
        assert!(response.revision() > at, "updates in revision order");
        at = response.revision();
        for event in response.events() {
            match event.kind() {
                EventKind::Put => {
                    let old = mirror.insert(event.key().to_vec(), event.kv().clone());
                    assert_eq!(old.as_ref(), event.prev_kv());
                }
                EventKind::Delete => {
                    let old = mirror.remove(event.key());
                    assert_eq!(old.as_ref(), event.prev_kv());
                }
                other => panic!("unknown event kind {other:?}"),
            }
        }
    }
    let now: Vec<KeyValue> = cache.list().unwrap().into_inner();
    assert_eq!(mirror.into_values().collect::<Vec<_>>(), now);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stays_exact_under_eight_writers() {
    let (etcd, client, prefix) = crate::setup!("cache-100k");
    // The 10 s phase runs once per etcd version: in full with the shared streams, smaller
    // in the per-call run.
    let (n, phase) = if per_call() {
        (10_000, Duration::from_secs(3))
    } else {
        (100_000, Duration::from_secs(10))
    };
    let started = Instant::now();
    load(&client, &prefix, n, &[b'v'; 32]).await;
    let loaded = started.elapsed();
    let started = Instant::now();
    let cache = client.cache(prefix.clone()).await.expect("cache");
    let listed = started.elapsed();
    assert_eq!(*cache.len().unwrap(), n);
    let bytes_per_key = cache.size_bytes() as f64 / n as f64;
    eprintln!("{n} keys loaded in {loaded:?}, listed by the cache in {listed:?}; {bytes_per_key:.0} bytes per key (key + value = {} bytes)", prefix.len() + 6 + 32);

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8u64 {
        let client = crate::builder()
            .endpoint(etcd.endpoint(0))
            .connect()
            .await
            .unwrap();
        let (stop, prefix) = (stop.clone(), prefix.clone());
        writers.push(tokio::spawn(async move {
            let mut ops = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (i, r) = {
                    let mut rng = rand::thread_rng();
                    (rng.gen_range(0..n + n / 10), rng.gen_range(0..10))
                };
                let key = format!("{prefix}{i:06}");
                if r < 3 {
                    client.delete(key).await.expect("delete");
                } else if r < 4 {
                    client
                        .txn()
                        .and_then([
                            TxnOp::put(key, format!("w{w}-{ops}")),
                            TxnOp::delete(format!("{prefix}{:06}", (i + 1) % n)),
                        ])
                        .await
                        .expect("txn");
                } else {
                    client.put(key, format!("w{w}-{ops}")).await.expect("put");
                }
                ops += 1;
            }
            ops
        }));
    }
    // 50 moments, at random within the phase: the cache's content and revision, digested.
    let mut moments = Vec::new();
    let phase_end = Instant::now() + phase;
    for k in 0..50u32 {
        let slot = phase_end - Instant::now();
        let left = 50 - k;
        let pause = slot.mul_f64(rand::thread_rng().gen_range(0.0..2.0) / f64::from(left));
        tokio::time::sleep(pause.min(slot)).await;
        let snapshot = cache.snapshot().expect("cache running");
        moments.push((
            snapshot.revision(),
            snapshot.kvs().len(),
            digest(snapshot.kvs()),
        ));
    }
    stop.store(true, Ordering::Relaxed);
    let mut writes = 0;
    for w in writers {
        writes += w.await.unwrap();
    }
    let distinct: std::collections::HashSet<i64> = moments.iter().map(|m| m.0).collect();
    eprintln!(
        "{writes} writes in {phase:?}; {} moments at {} distinct revisions",
        moments.len(),
        distinct.len()
    );
    assert!(distinct.len() > 10, "the cache moved during the phase");
    let started = Instant::now();
    for (revision, len, hash) in &moments {
        let expected = client
            .range(prefix.clone())
            .prefix()
            .revision(*revision)
            .await
            .expect("the prefix at a moment's revision")
            .into_kvs();
        if expected.len() != *len {
            let count = client
                .range(prefix.clone())
                .prefix()
                .revision(*revision)
                .count_only()
                .await
                .unwrap()
                .count();
            panic!(
                "at revision {revision}: the cache had {len} keys, a scan finds {}, a count {count}",
                expected.len()
            );
        }
        assert_eq!(digest(&expected), *hash, "content at revision {revision}");
    }
    eprintln!("50 moments checked against etcd in {:?}", started.elapsed());
    cache.consistent_read(|_| ()).await.unwrap();
    assert_exact(&cache, &client, &prefix).await;
    assert_eq!(cache.lists(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consistent_read_sees_the_put_just_acknowledged_to_another_client() {
    let (etcd, client, prefix) = crate::setup!("cache-consistent");
    let cache = client.cache(prefix.clone()).await.expect("cache");
    let writer = crate::builder()
        .endpoint(etcd.endpoint(0))
        .connect()
        .await
        .unwrap();
    let sibling = format!("{}-other", prefix.trim_end_matches('/'));
    let started = Instant::now();
    let mut stale = 0;
    for i in 0..1000 {
        let key = format!("{prefix}{}", i % 10);
        writer.put(&key, format!("{i}")).await.unwrap();
        if i % 4 == 0 {
            // A write outside the prefix: the cluster moves on, the prefix does not.
            writer.put(&sibling, format!("{i}")).await.unwrap();
        }
        let read = cache.consistent_get(&key).await.expect("consistent read");
        if read.as_ref().map(KeyValue::value) != Some(format!("{i}").as_bytes()) {
            stale += 1;
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "1000 put + consistent read pairs in {elapsed:?} ({:?} per pair), {stale} stale",
        elapsed / 1000
    );
    assert_eq!(stale, 0, "stale consistent reads");
    // Consistent reads with nothing new: the cost of the read itself.
    let started = Instant::now();
    for _ in 0..200 {
        cache.consistent_get(format!("{prefix}1")).await.unwrap();
    }
    eprintln!("quiet consistent read: {:?}", started.elapsed() / 200);
}

/// `(minor, patch)` of the etcd 3 version `version`, e.g. `(5, 30)` for `3.5.30`.
fn minor_patch(version: &str) -> (u64, u64) {
    let mut parts = version.split('.').skip(1).map(|p| {
        p.split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    });
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_reads_use_progress_and_probe_when_etcd_drops_the_request() {
    let (etcd, client, prefix) = crate::setup!("cache-progress");
    // Progress requests need the shared stream and a server that orders their answers
    // with events (3.4.25+, 3.5.8+); from 3.5.13 etcd drops them, never to answer, while a
    // watch on the stream waits for a future revision (or catches up).
    let (minor, patch) = minor_patch(etcd.version());
    let ordered = match minor {
        4 => patch >= 25,
        5 => patch >= 8,
        other => other > 5,
    };
    let progress = ordered && !per_call();
    let drops = progress && (minor > 5 || (minor == 5 && patch >= 13));
    client.put(format!("{prefix}k"), "v").await.unwrap();
    let cache = client.cache(prefix.clone()).await.expect("cache");
    let writer = crate::builder()
        .endpoint(etcd.endpoint(0))
        .connect()
        .await
        .unwrap();
    let outside = format!("{}-outside", prefix.trim_end_matches('/'));

    // A consistent read after a write outside the prefix: where progress is used, its
    // answer brings the cache to the cluster's revision, without a probe.
    let read_after_a_write = |what: &'static str| {
        let (cache, writer, outside) = (cache.clone(), writer.clone(), outside.clone());
        async move {
            let put = writer.put(&outside, what).await.unwrap();
            let probes = cache.probes();
            let started = Instant::now();
            let read = cache
                .consistent_read(|view| view.len())
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let took = started.elapsed();
            assert!(read.revision() >= put.revision(), "{what}: {read:?}");
            assert_eq!(*read, 1, "{what}");
            (cache.probes() - probes, took)
        }
    };
    for _ in 0..5 {
        let (probed, took) = read_after_a_write("progress").await;
        if progress {
            assert_eq!(probed, 0, "answered by a progress notification ({took:?})");
        } else {
            assert!(probed > 0, "no progress requests here: a probe");
        }
    }

    // A watch on the same stream waiting for a future revision: etcd 3.5.13+ drops the
    // cache's progress requests. A read waits for the answer a moment, then probes; the
    // next ones probe at once.
    let now = writer.put(&outside, "now").await.unwrap().revision();
    let future = client
        .watch(format!("{prefix}future/"))
        .prefix()
        .start_revision(now + 1_000_000)
        .await
        .unwrap();
    for i in 0..3 {
        let (probed, took) = read_after_a_write("dropped").await;
        eprintln!("read {i} with a watch waiting for a future revision: {took:?}, {probed} probes");
        assert!(took < Duration::from_secs(2), "no hang: {took:?}");
        if drops {
            assert!(
                probed > 0,
                "a dropped progress request falls back to a probe"
            );
        } else if progress {
            assert_eq!(probed, 0, "progress is answered on {}", etcd.version());
        }
    }

    // The watch gone, progress requests are answered again: reads stop probing.
    drop(future);
    if progress {
        let mut answered = false;
        for _ in 0..20 {
            if read_after_a_write("answered again").await.0 == 0 {
                answered = true;
                break;
            }
        }
        assert!(answered, "progress requests are answered again");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_limit_stops_the_cache_with_a_typed_error() {
    let (_etcd, client, prefix) = crate::setup!("cache-limit");
    for i in 0..10 {
        client
            .put(format!("{prefix}{i}"), vec![b'x'; 1000])
            .await
            .unwrap();
    }
    // What the ten keys take, as the cache counts it.
    let limit = client.cache(prefix.clone()).await.unwrap().size_bytes();
    assert!(limit >= 10 * (1000 + prefix.len() + 1 + etcd_kv::cache::ENTRY_OVERHEAD));
    let too_small = client.cache(prefix.clone()).max_bytes(limit - 1).await;
    assert!(
        too_small.as_ref().is_err_and(etcd_kv::Error::is_cache_full),
        "{too_small:?}"
    );
    let cache = client
        .cache(prefix.clone())
        .max_bytes(limit + 1500)
        .await
        .unwrap();
    assert!(cache.size_bytes() <= limit);
    let mut updates = cache.subscribe().unwrap();
    let put = client
        .put(format!("{prefix}big"), vec![b'y'; 2000])
        .await
        .unwrap();
    let error = cache
        .get_at_least(format!("{prefix}big"), put.revision())
        .await
        .expect_err("over the limit");
    assert!(error.is_cache_full(), "{error}");
    assert!(cache.get(format!("{prefix}0")).unwrap_err().is_cache_full());
    assert!(
        cache.size_bytes() <= limit + 1500,
        "nothing applied past the limit"
    );
    let last = tokio::time::timeout(Duration::from_secs(5), updates.next())
        .await
        .unwrap();
    assert!(matches!(last, Some(Err(e)) if e.is_cache_full()));
}

/// The index of a member that is not the leader.
pub(crate) async fn follower(etcd: &xtask::Etcd) -> usize {
    for i in 0..3 {
        let c = Client::connect(etcd.endpoint(i)).await.unwrap();
        if c.status().await.unwrap().is_leader() {
            return (i + 1) % 3;
        }
    }
    panic!("no leader");
}

/// Writers that keep `{prefix}a` and `{prefix}b` equal (one txn each), plus other keys.
fn pair_writer(
    client: Client,
    prefix: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let v = format!("{i}");
            let txn = client
                .txn()
                .and_then([
                    TxnOp::put(format!("{prefix}a"), v.clone()),
                    TxnOp::put(format!("{prefix}b"), v.clone()),
                    TxnOp::put(format!("{prefix}k{:03}", i % 200), v),
                ])
                .await;
            match txn {
                Ok(_) => i += 1,
                // During the faults: applied whole or not at all, a and b stay equal.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        i
    })
}

/// A put through the live members shows in the cache (whose watch must have moved).
async fn follows(cache: &Cache, live: &[String], prefix: &str, what: &str) {
    let client = crate::builder()
        .endpoints(live.to_vec())
        .connect()
        .await
        .unwrap();
    let started = Instant::now();
    let put = loop {
        match client.put(format!("{prefix}probe"), what).await {
            Ok(put) => break put,
            Err(e) if started.elapsed() < Duration::from_secs(20) => {
                eprintln!("probe put: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("probe put: {e}"),
        }
    };
    let seen = cache
        .get_at_least(format!("{prefix}probe"), put.revision())
        .await
        .unwrap_or_else(|e| panic!("the cache follows with its member {what}: {e}"));
    assert_eq!(seen.as_ref().unwrap().value(), what.as_bytes());
    eprintln!(
        "member {what}: a put showed in the cache after {:?}",
        started.elapsed()
    );
}

/// Readers that check `a == b` in every read: never a mix of two revisions.
fn pair_reader(
    cache: Cache,
    prefix: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let (a, b) = (format!("{prefix}a"), format!("{prefix}b"));
        let mut reads = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let (a, b) = cache
                .read(|v| (v.get(&a), v.get(&b)))
                .expect("cache running");
            assert_eq!(
                a.as_ref().map(KeyValue::value),
                b.as_ref().map(KeyValue::value),
                "a and b at one revision"
            );
            reads += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        reads
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_stays_exact_when_its_member_is_killed_then_frozen() {
    let Some(mut etcd) = xtask::testing::cluster3() else {
        return;
    };
    let prefix = xtask::testing::unique_prefix("cache-faults");
    let first = follower(&etcd).await;
    let mut endpoints = vec![etcd.endpoint(first)];
    endpoints.extend((0..3).filter(|&i| i != first).map(|i| etcd.endpoint(i)));
    let client = crate::builder()
        .endpoints(endpoints)
        .prefer_first(true)
        .request_timeout(Duration::from_secs(2))
        .watch_liveness(Duration::from_secs(1), Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let cache = client.cache(prefix.clone()).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer_client = crate::builder()
        .endpoints(etcd.endpoints())
        .request_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    let writer = pair_writer(writer_client.clone(), prefix.clone(), stop.clone());
    let reader = pair_reader(cache.clone(), prefix.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Kill the cache's member; the watch moves on.
    etcd.kill_node(first).unwrap();
    let live: Vec<String> = (0..3)
        .filter(|&i| i != first)
        .map(|i| etcd.endpoint(i))
        .collect();
    follows(&cache, &live, &prefix, "killed").await;
    etcd.start_node(first).unwrap();
    etcd.wait_healthy(first).unwrap();

    // Freeze the member the cache's watch is on now (the first of the others).
    let frozen = (0..3).find(|&i| i != first).unwrap();
    etcd.pause_node(frozen).unwrap();
    let live: Vec<String> = (0..3)
        .filter(|&i| i != frozen)
        .map(|i| etcd.endpoint(i))
        .collect();
    follows(&cache, &live, &prefix, "frozen").await;
    etcd.resume_node(frozen).unwrap();

    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    let reads = reader.await.unwrap();
    eprintln!("{writes} writes, {reads} reads checked during the faults");
    cache
        .consistent_read(|_| ())
        .await
        .expect("consistent read after the faults");
    assert_exact(&cache, &writer_client, &prefix).await;
    assert_eq!(cache.lists(), 1, "no re-list needed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_while_disconnected_relists_and_readers_never_see_a_mix() {
    let Some(mut etcd) = xtask::testing::cluster3() else {
        return;
    };
    let prefix = xtask::testing::unique_prefix("cache-compacted");
    let member = follower(&etcd).await;
    // The cache's client knows only its member: frozen, it is disconnected.
    let client = crate::builder()
        .endpoint(etcd.endpoint(member))
        .request_timeout(Duration::from_secs(1))
        .watch_liveness(Duration::from_millis(500), Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    let others: Vec<String> = (0..3)
        .filter(|&i| i != member)
        .map(|i| etcd.endpoint(i))
        .collect();
    let writer_client = crate::builder().endpoints(others).connect().await.unwrap();
    for i in 0..100 {
        writer_client
            .put(format!("{prefix}k{i:03}"), "start")
            .await
            .unwrap();
    }
    let cache = client.cache(prefix.clone()).await.unwrap();
    let (_, mut updates) = cache.snapshot_and_subscribe().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = pair_writer(writer_client.clone(), prefix.clone(), stop.clone());
    let reader = pair_reader(cache.clone(), prefix.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Killed, not frozen: restarted, a member serves clients only once it has applied what
    // was committed before (the compaction included), so the watch must find it compacted.
    etcd.kill_node(member).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..50 {
        writer_client
            .delete(format!("{prefix}k{i:03}"))
            .await
            .unwrap();
    }
    let head = writer_client
        .put(format!("{prefix}last"), "x")
        .await
        .unwrap();
    writer_client
        .compact(head.revision())
        .await
        .expect("compact");
    etcd.start_node(member).unwrap();
    etcd.wait_healthy(member).unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    while cache.lists() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cache.lists(), 2, "re-listed after the compaction");
    let mut reset = false;
    while let Ok(Some(update)) = tokio::time::timeout(Duration::from_secs(5), updates.next()).await
    {
        if let CacheUpdate::Reset(snapshot) = update.expect("no error") {
            assert!(snapshot.revision() >= head.revision());
            reset = true;
            break;
        }
    }
    assert!(reset, "subscribers get a reset");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let reads = reader.await.unwrap();
    eprintln!("{reads} reads checked across the re-list");
    cache.consistent_read(|_| ()).await.unwrap();
    // Compared with the member the cache follows, not through the others: etcd 3.5.0 to
    // 3.5.2 may re-apply entries on a member killed under load, which then holds other
    // values than its peers at the same revisions (etcd #13766, fixed in 3.5.3; seen here
    // on 3.5.1: one key one write apart). The cache can only be exact to its source.
    assert_exact(&cache, &client, &prefix).await;
}
