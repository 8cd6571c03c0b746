//! Shared streams: many watches and keep-alives on one connection, liveness (frozen member),
//! require-leader, permission errors in streams, creation deadlines against a bad server.

use etcd_kv::{Client, Error, TxnOp};
use etcd_test_support::fake::{fake_gateway, Fake};
use etcd_test_support::procfs::tcp_connections_to;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xtask::Etcd;

fn per_call() -> bool {
    xtask::testing::per_call_streams()
}

fn port(etcd: &Etcd, i: usize) -> u16 {
    etcd.client_port(i)
}

/// `etcd_debugging_mvcc_watcher_total` from the member's /metrics.
async fn watcher_total(etcd: &Etcd) -> i64 {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port(etcd, 0)))
        .await
        .expect("connect for /metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("ask /metrics");
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .await
        .expect("read /metrics");
    text.lines()
        .find_map(|l| l.strip_prefix("etcd_debugging_mvcc_watcher_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as i64)
        .expect("etcd_debugging_mvcc_watcher_total in /metrics")
}

async fn wait_watchers(etcd: &Etcd, expected: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = watcher_total(etcd).await;
        if now == expected || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_watches_share_one_connection_and_cancel_cleanly() {
    // A server of its own: the watcher count is global.
    let Some(etcd) = xtask::testing::start(xtask::testing::builder()) else {
        return;
    };
    let n = if per_call() { 300 } else { 10_000 };
    let watcher = crate::builder()
        .endpoint(etcd.endpoint(0))
        .pool_idle_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let baseline = watcher_total(&etcd).await;
    let conns_before = tcp_connections_to(port(&etcd, 0)).unwrap();
    let mut watches = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let created = futures_util::future::join_all(
            chunk
                .iter()
                .map(|i| watcher.watch(format!("many/{i:05}")).send()),
        )
        .await;
        for w in created {
            watches.push(w.expect("watch created"));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let conns = tcp_connections_to(port(&etcd, 0)).unwrap() - conns_before;
    if per_call() {
        // One of them may reuse the pooled connection the client connected with.
        assert!(
            conns + 1 >= n,
            "{conns} connections for {n} per-call watches"
        );
    } else if xtask::testing::grpc_transport() {
        // Over gRPC the watches share the one HTTP/2 connection the client connected on.
        assert_eq!(conns, 0, "{n} watches must share the client's connection");
    } else {
        assert_eq!(conns, 1, "{n} watches must share one connection");
    }
    eprintln!("{n} watches: {conns} more connection(s) to etcd");
    assert_eq!(watcher_total(&etcd).await, baseline + n as i64);

    let writer = Client::connect(etcd.endpoint(0)).await.unwrap();
    let puts = futures_util::stream::iter(0..n)
        .map(|i| {
            let writer = writer.clone();
            async move { writer.put(format!("many/{i:05}"), "v").await }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    assert!(puts.iter().all(Result::is_ok));
    for (i, w) in watches.iter_mut().enumerate() {
        let response = tokio::time::timeout(Duration::from_secs(20), w.next())
            .await
            .unwrap_or_else(|_| panic!("watch {i} got no event"))
            .expect("stream open")
            .expect("event");
        assert_eq!(response.events().len(), 1);
        assert_eq!(
            response.events()[0].key(),
            format!("many/{i:05}").as_bytes()
        );
    }
    drop(watches);
    assert_eq!(wait_watchers(&etcd, baseline).await, baseline);

    // 1,000 create/drop cycles leave the server's watcher count where it started.
    for i in 0..1000 {
        let w = watcher.watch(format!("cycle/{i}")).await.unwrap();
        drop(w);
    }
    assert_eq!(wait_watchers(&etcd, baseline).await, baseline);
}

/// The endpoints with member `first` first (a client of them starts there), and the others'.
fn member_first(etcd: &Etcd, first: usize) -> (Vec<String>, Vec<String>) {
    let others: Vec<String> = (0..etcd.node_count())
        .filter(|&i| i != first)
        .map(|i| etcd.endpoint(i))
        .collect();
    let mut endpoints = vec![etcd.endpoint(first)];
    endpoints.extend(others.clone());
    (endpoints, others)
}

/// The index of a member that is not the leader, and the leader's.
async fn follower_and_leader(etcd: &Etcd) -> (usize, usize) {
    let mut leader = None;
    for i in 0..3 {
        let c = Client::connect(etcd.endpoint(i)).await.unwrap();
        if c.status().await.unwrap().is_leader() {
            leader = Some(i);
        }
    }
    let leader = leader.expect("a leader");
    ((leader + 1) % 3, leader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_member_moves_the_watch_and_no_event_is_lost_or_repeated() {
    let Some(mut etcd) = xtask::testing::cluster3() else {
        return;
    };
    let (frozen, _) = follower_and_leader(&etcd).await;
    let (endpoints, others) = member_first(&etcd, frozen);
    let (idle, timeout) = (Duration::from_secs(1), Duration::from_secs(1));
    let watcher = crate::builder()
        .endpoints(endpoints.clone())
        .prefer_first(true)
        .request_timeout(Duration::from_secs(2))
        .watch_liveness(idle, timeout)
        .connect()
        .await
        .unwrap();
    let mut watch = watcher.watch("frozen/").prefix().await.unwrap();
    assert_eq!(watch.endpoint(), endpoints[0]);

    let (writers, per_writer) = (4, 150);
    let writer = crate::builder().endpoints(others).connect().await.unwrap();
    let write = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for w in 0..writers {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                for j in 0..per_writer {
                    writer
                        .put(format!("frozen/{w}/{j:04}"), "v")
                        .await
                        .expect("put on the live members");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    etcd.pause_node(frozen).unwrap();
    let frozen_at = Instant::now();
    let mut seen: HashMap<(usize, usize), usize> = HashMap::new();
    let mut last: Vec<Option<usize>> = vec![None; writers];
    let mut moved_after = None;
    let total = writers * per_writer;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < total && Instant::now() < deadline {
        if moved_after.is_none() && watch.endpoint() != endpoints[0] {
            moved_after = Some(frozen_at.elapsed());
            eprintln!(
                "moved to {} after {:?} with {} events",
                watch.endpoint(),
                frozen_at.elapsed(),
                seen.len()
            );
        }
        let Ok(next) = tokio::time::timeout(Duration::from_millis(200), watch.next()).await else {
            continue;
        };
        let response = next.expect("stream open").expect("no error");
        for event in response.events() {
            let key = event.kv().key_str().unwrap().to_string();
            let mut parts = key.trim_start_matches("frozen/").split('/');
            let w: usize = parts.next().unwrap().parse().unwrap();
            let j: usize = parts.next().unwrap().parse().unwrap();
            *seen.entry((w, j)).or_default() += 1;
            assert!(
                last[w].is_none_or(|l| j > l),
                "writer {w}: {j} after {:?}",
                last[w]
            );
            last[w] = Some(j);
        }
    }
    etcd.resume_node(frozen).unwrap();
    write.await.unwrap();
    assert_eq!(seen.len(), total, "every event delivered");
    assert!(seen.values().all(|&c| c == 1), "no event repeated");
    let moved_after = moved_after.expect("the watch left the frozen member");
    assert!(
        moved_after < 2 * (idle + timeout) + Duration::from_secs(1),
        "moved after {moved_after:?}"
    );
    eprintln!("watch moved off the frozen member after {moved_after:?}");
}

/// With default settings, a watch whose member (a follower) freezes for 10 s while the
/// others take 100 puts delivers them during the freeze: it moves within 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_defaults_a_frozen_followers_watch_delivers_during_the_freeze() {
    let Some(mut etcd) = xtask::testing::cluster3() else {
        return;
    };
    let (frozen, _) = follower_and_leader(&etcd).await;
    let (endpoints, others) = member_first(&etcd, frozen);
    let watcher = crate::builder()
        .endpoints(endpoints.clone())
        .prefer_first(true)
        .connect()
        .await
        .unwrap();
    let mut watch = watcher.watch("freeze/").prefix().await.unwrap();
    assert_eq!(watch.endpoint(), endpoints[0]);
    let writer = crate::builder().endpoints(others).connect().await.unwrap();
    // Quiet for a while first (probed twice, and staying: a healthy member keeps its
    // watches): the member freezes under a silent stream.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(watch.endpoint(), endpoints[0], "no needless move");
    assert_eq!(watcher.stream_stats().watch_reconnects, 0);
    etcd.pause_node(frozen).unwrap();
    let frozen_at = Instant::now();
    let freeze = Duration::from_secs(10);
    let write = tokio::spawn(async move {
        for j in 0..100 {
            writer.put(format!("freeze/{j:03}"), "v").await.unwrap();
            tokio::time::sleep(Duration::from_millis(95)).await;
        }
    });
    let mut delivered = Vec::new();
    let mut moved_after = None;
    while frozen_at.elapsed() < freeze {
        let left = freeze.saturating_sub(frozen_at.elapsed());
        let Ok(next) =
            tokio::time::timeout(left.min(Duration::from_millis(100)), watch.next()).await
        else {
            continue;
        };
        if moved_after.is_none() && watch.endpoint() != endpoints[0] {
            moved_after = Some(frozen_at.elapsed());
        }
        for event in next.expect("open").expect("no error").events() {
            delivered.push(event.kv().key_str().unwrap().to_string());
        }
    }
    etcd.resume_node(frozen).unwrap();
    write.await.unwrap();
    eprintln!(
        "default liveness: moved after {moved_after:?}; {} of 100 events during the 10 s freeze",
        delivered.len()
    );
    let moved_after = moved_after.expect("moved off the frozen member");
    assert!(moved_after < Duration::from_secs(3), "{moved_after:?}");
    assert!(delivered.len() >= 90, "{} events", delivered.len());
    let mut sorted = delivered.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, delivered, "in order, none repeated");
}

/// With default settings, a watch whose member is cut off from the others (a network
/// partition: it answers, but has no leader and gets no new revision) moves within 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_defaults_a_partitioned_members_watch_moves_within_3s() {
    let Some(etcd) = xtask::testing::partitionable_cluster3() else {
        return;
    };
    let partition = etcd.partition().expect("partitionable");
    let (isolated, _) = follower_and_leader(&etcd).await;
    let (endpoints, others) = member_first(&etcd, isolated);
    let watcher = crate::builder()
        .endpoints(endpoints.clone())
        .prefer_first(true)
        .connect()
        .await
        .unwrap();
    let mut watch = watcher.watch("cut/").prefix().await.unwrap();
    assert_eq!(watch.endpoint(), endpoints[0]);
    let writer = crate::builder().endpoints(others).connect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    partition.isolate(isolated).unwrap();
    let cut_at = Instant::now();
    let write = tokio::spawn(async move {
        for j in 0..50 {
            // Retried: the two others may hold an election first (when the isolated
            // member's absence takes a moment to matter, nothing is refused).
            while writer.put(format!("cut/{j:03}"), "v").await.is_err() {}
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut seen = Vec::new();
    let mut moved_after = None;
    while seen.len() < 50 && cut_at.elapsed() < Duration::from_secs(30) {
        let Ok(next) = tokio::time::timeout(Duration::from_millis(100), watch.next()).await else {
            continue;
        };
        if moved_after.is_none() && watch.endpoint() != endpoints[0] {
            moved_after = Some(cut_at.elapsed());
        }
        for event in next.expect("open").expect("no error").events() {
            seen.push(event.kv().key_str().unwrap().to_string());
        }
    }
    partition.heal().unwrap();
    write.await.unwrap();
    eprintln!(
        "partitioned member: watch moved after {moved_after:?}, {} events, {:?}",
        seen.len(),
        watcher.stream_stats()
    );
    let expected: Vec<String> = (0..50).map(|j| format!("cut/{j:03}")).collect();
    assert_eq!(seen, expected, "every event once, in order");
    let moved_after = moved_after.expect("moved off the isolated member");
    assert!(moved_after < Duration::from_secs(3), "{moved_after:?}");
}

/// With default settings, leases kept alive through a member that freezes are refreshed
/// through another within a few seconds of their next refresh: none lapses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_defaults_keep_alives_move_off_a_frozen_member() {
    let Some(mut etcd) = xtask::testing::cluster3() else {
        return;
    };
    let (frozen, _) = follower_and_leader(&etcd).await;
    let (endpoints, others) = member_first(&etcd, frozen);
    let keeper_client = crate::builder()
        .endpoints(endpoints)
        .prefer_first(true)
        .connect()
        .await
        .unwrap();
    let ttl = 5;
    let keeper = keeper_client.lease_keeper(ttl).await.unwrap();
    let checker = crate::builder().endpoints(others).connect().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    etcd.pause_node(frozen).unwrap();
    let frozen_at = Instant::now();
    // The lease's time to live, seen from the live members through the freeze: it never
    // reaches 0, and a refresh through another member shows as a rise.
    let mut lowest = ttl;
    let mut refreshed_after = None;
    let mut last = ttl;
    while frozen_at.elapsed() < Duration::from_secs(8) {
        let left = checker.lease_time_to_live(keeper.id()).await.unwrap().ttl();
        if left > last
            && refreshed_after.is_none()
            && frozen_at.elapsed() > Duration::from_millis(200)
        {
            refreshed_after = Some(frozen_at.elapsed());
        }
        last = left;
        lowest = lowest.min(left);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    etcd.resume_node(frozen).unwrap();
    let stats = keeper_client.stream_stats();
    eprintln!(
        "keep-alives during a freeze: lowest TTL {lowest} s of {ttl}, first refresh elsewhere after {refreshed_after:?}, {stats:?}"
    );
    assert!(keeper.lost_reason().is_none(), "{:?}", keeper.lost_reason());
    assert!(lowest >= 1, "the lease nearly lapsed: {lowest} s left");
    let refreshed_after = refreshed_after.expect("refreshed through another member");
    // Due within TTL/3 of the freeze at the latest, then stalled for at most 1 s.
    assert!(
        refreshed_after < Duration::from_secs(4),
        "{refreshed_after:?}"
    );
    assert!(stats.keep_alive_reconnects >= 1 || per_call(), "{stats:?}");
}

/// A member busy serving large ranges is not a dead member: an idle watch on it is probed
/// (a tiny read and a ping, answered beside the ranges) and stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_busy_with_large_ranges_keeps_its_watches() {
    let Some((etcd, client)) = crate::connect().await else {
        return;
    };
    let p = xtask::testing::unique_prefix("busy-member");
    // 2,000 keys of 4 KiB: 8 MiB per range.
    let value = "x".repeat(4096);
    for batch in 0..20 {
        let ops: Vec<_> = (0..100)
            .map(|i| TxnOp::put(format!("{p}big/{:05}", batch * 100 + i), value.clone()))
            .collect();
        client.txn().and_then(ops).await.unwrap();
    }
    let watcher = crate::builder()
        .endpoint(etcd.endpoint(0))
        .connect()
        .await
        .unwrap();
    let mut watch = watcher.watch(format!("{p}w/")).prefix().await.unwrap();
    let busy_until = Instant::now() + Duration::from_secs(6);
    let mut readers = Vec::new();
    for _ in 0..2 {
        let reader = crate::builder()
            .endpoint(etcd.endpoint(0))
            .max_response_len(64 << 20)
            .build()
            .unwrap();
        let prefix = format!("{p}big/");
        readers.push(tokio::spawn(async move {
            let mut ranges = 0;
            while Instant::now() < busy_until {
                let page = reader.range(&prefix).prefix().await.unwrap();
                assert_eq!(page.kvs().len(), 2000);
                ranges += 1;
            }
            ranges
        }));
    }
    let mut ranges = 0;
    for reader in readers {
        ranges += reader.await.unwrap();
    }
    let stats = watcher.stream_stats();
    eprintln!("{ranges} ranges of 8 MiB in 6 s beside an idle watch: {stats:?}");
    assert_eq!(stats.watch_reconnects, 0, "no needless move");
    client.put(format!("{p}w/k"), "v").await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the event")
        .unwrap()
        .unwrap();
    assert_eq!(event.events()[0].kv().value(), b"v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_a_leader_refuses_a_put_at_once_and_applies_nothing() {
    let Some(mut etcd) = xtask::testing::cluster3() else {
        return;
    };
    etcd.pause_node(1).unwrap();
    etcd.pause_node(2).unwrap();
    let client = crate::builder()
        .endpoint(etcd.endpoint(0))
        .retry(etcd_kv::RetryConfig::none())
        .connect()
        .await
        .unwrap();
    // Wait until the member has noticed (election timeout 500 ms).
    crate::eventually(
        Duration::from_secs(10),
        "the member has no leader",
        || async { client.status().await.unwrap().leader() == 0 },
    )
    .await;
    let started = Instant::now();
    let err = client.put("leaderless/k", "v").await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(!err.is_outcome_unknown(), "{err}");
    assert!(err.to_string().contains("no leader"), "{err}");
    eprintln!("leaderless put refused after {took:?}: {err}");
    if !xtask::testing::grpc_transport() && !xtask::testing::per_call_streams() {
        // Without the require-leader header the put waits for etcd's own timeout, and the
        // gateway's answer says so in its own form: grpc-gateway v1 (3.4, 3.5.1) HTTP 500,
        // code 2 Unknown; v2 (Debian's 3.5.30) HTTP 504, code 4 DeadlineExceeded, a typed
        // timeout. Either way the error keeps the server's code and message, and the put
        // may still be applied (it was proposed): its outcome is unknown.
        let patient = crate::builder()
            .endpoint(etcd.endpoint(0))
            .require_leader(false)
            .retry(etcd_kv::RetryConfig::none())
            .build()
            .unwrap();
        let started = Instant::now();
        let err = patient.put("leaderless/patient", "v").await.unwrap_err();
        let took = started.elapsed();
        eprintln!("leaderless put without require-leader failed after {took:?}: {err}");
        assert!(took > Duration::from_secs(1), "etcd's timeout: {took:?}");
        let status = err.status().expect("the server's status is kept");
        assert!(status.message.contains("deadline exceeded"), "{err}");
        assert!(err.is_outcome_unknown(), "{err:?}");
        match status.grpc_code() {
            etcd_kv::Code::DeadlineExceeded => assert!(err.is_timeout(), "{err:?}"),
            etcd_kv::Code::Unknown => {}
            other => panic!("{other:?}: {err}"),
        }
    }
    // With a member that has a leader next in line (here: another cluster's, the only
    // way to have one on loopback while this cluster has none), the put moves there at once.
    let Some((other, _)) = crate::connect().await else {
        return;
    };
    let failover = crate::builder()
        .endpoints([etcd.endpoint(0), other.endpoint(0)])
        .prefer_first(true)
        .build()
        .unwrap();
    let key = format!("{}k", xtask::testing::unique_prefix("leaderless"));
    let started = Instant::now();
    failover.put(&key, "v").await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(failover.current_endpoint(), other.endpoint(0));
    eprintln!("put moved past the leaderless member in {took:?}");
    // A watch that asks the leaderless member first moves on as the put did, where the
    // member can refuse it (gRPC, and the gateway's POST streams, carry require-leader; the
    // gateway's WebSocket does not, and its probe moves it later).
    let watcher = crate::builder()
        .endpoints([etcd.endpoint(0), other.endpoint(0)])
        .prefer_first(true)
        .stream_mode(etcd_kv::StreamMode::PerCall)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut watch = watcher.watch(&key).await.unwrap();
    eprintln!(
        "watch created on {} after {:?}",
        watch.endpoint(),
        started.elapsed()
    );
    assert_eq!(watch.endpoint(), other.endpoint(0));
    failover.put(&key, "w").await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the event")
        .unwrap()
        .unwrap();
    assert_eq!(event.events()[0].kv().value(), b"w");
    etcd.resume_node(1).unwrap();
    etcd.resume_node(2).unwrap();
    let all = crate::builder()
        .endpoints(etcd.endpoints())
        .connect()
        .await
        .unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(None) = all.get("leaderless/k").await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_leases_are_kept_alive_over_one_connection() {
    // (A lease the keeper still believes alive must exist on the server: each is checked.)
    // A server of its own: connections are counted.
    let Some(etcd) = xtask::testing::start(xtask::testing::builder()) else {
        return;
    };
    let etcd = &etcd;
    let client = crate::builder()
        .endpoint(etcd.endpoint(0))
        .pool_idle_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let ttl = 2;
    // Per-call, each refresh is a request of its own: fewer leases, the same TTL.
    let n = if per_call() { 200 } else { 1000 };
    let conns_before = tcp_connections_to(port(etcd, 0)).unwrap();
    let mut keepers = Vec::new();
    for _ in 0..n {
        keepers.push(client.lease_keeper(ttl).await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(3 * ttl as u64)).await;
    assert!(keepers.iter().all(|k| k.lost_reason().is_none()));
    let conns = tcp_connections_to(port(etcd, 0)).unwrap() - conns_before;
    let checker = Client::connect(etcd.endpoint(0)).await.unwrap();
    for k in &keepers {
        let left = checker.lease_time_to_live(k.id()).await.unwrap();
        assert!(left.ttl() > 0, "lease {} lost", k.id());
    }
    if !per_call() {
        // The keep-alive stream, and the pooled connection the grants went over.
        assert!(conns <= 2, "{conns} connections");
    }
    eprintln!(
        "{n} leases kept for {}s over {conns} new connection(s)",
        3 * ttl
    );
    for k in keepers {
        k.revoke().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_refused_permission_ends_with_a_typed_auth_error() {
    let Some(etcd) = xtask::testing::start(xtask::testing::builder()) else {
        return;
    };
    for args in [
        &["user", "add", "root:rootpw"][..],
        &["role", "add", "reader"],
        &[
            "role",
            "grant-permission",
            "reader",
            "read",
            "allowed/",
            "--prefix=true",
        ],
        &["user", "add", "alice:alicepw"],
        &["user", "grant-role", "alice", "reader"],
        &["auth", "enable"],
    ] {
        let out = etcd.etcdctl(args).unwrap();
        assert!(out.status.success(), "etcdctl {args:?}: {out:?}");
    }
    let alice = crate::builder()
        .endpoint(etcd.endpoint(0))
        .credentials("alice", "alicepw")
        .connect()
        .await
        .unwrap();
    let started = Instant::now();
    let err = alice.watch("secret/").prefix().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(err.is_auth(), "{err:?}");
    assert!(err.to_string().contains("permission denied"), "{err}");

    // Where she may read, her watch works (over its own POST stream: auth is on).
    let mut watch = alice.watch("allowed/").prefix().await.unwrap();
    let root = crate::builder()
        .endpoint(etcd.endpoint(0))
        .credentials("root", "rootpw")
        .connect()
        .await
        .unwrap();
    root.put("allowed/x", "1").await.unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(response.events()[0].key(), b"allowed/x");
    if xtask::testing::grpc_transport() {
        // Over gRPC the token travels with the shared stream: progress requests work.
        watch.request_progress().unwrap();
    } else {
        // The gateway takes no token over its WebSocket: per-call streams, no progress.
        assert!(matches!(
            watch.request_progress(),
            Err(Error::Unsupported(_))
        ));
    }
}

#[tokio::test]
async fn creating_a_watch_on_a_bad_server_fails_typed_within_its_deadline() {
    let request_timeout = Duration::from_millis(500);
    // The deadline of a watch's creation: twice the request timeout.
    let bound = 2 * request_timeout + Duration::from_millis(500);
    for (name, body, hang) in [
        ("hangs after the headers", &b""[..], true),
        ("answers garbage", &b"<html>not json</html>\n"[..], true),
        ("closes mid-body", &b"{\"result\":{\"header\""[..], false),
    ] {
        let endpoint = fake_gateway(true, Fake::Partial { body, close: !hang }).await;
        let client = Client::builder()
            .endpoint(&endpoint)
            .request_timeout(request_timeout)
            .build()
            .unwrap();
        let started = Instant::now();
        let err = client.watch("k").await.unwrap_err();
        let took = started.elapsed();
        assert!(took < bound, "{name}: took {took:?}: {err}");
        assert!(
            err.endpoint().is_some() || err.is_timeout(),
            "{name}: {err:?}"
        );
        eprintln!("{name}: {took:?}: {err}");
    }
    // An endless line: refused at the message size limit, not buffered forever.
    let endless: &'static [u8] = Box::leak(vec![b'x'; 1 << 20].into_boxed_slice());
    let endpoint = fake_gateway(
        true,
        Fake::Partial {
            body: endless,
            close: false,
        },
    )
    .await;
    let client = Client::builder()
        .endpoint(&endpoint)
        .request_timeout(request_timeout)
        .max_response_len(64 * 1024)
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.watch("k").await.unwrap_err();
    assert!(started.elapsed() < bound, "{err}");
    assert!(!err.is_timeout(), "a size error, not a timeout: {err}");
}

/// Reads `n` events from `watch`; returns their keys.
async fn collect_keys(watch: &mut etcd_kv::WatchStream, n: usize, within: Duration) -> Vec<String> {
    let mut keys = Vec::new();
    let deadline = Instant::now() + within;
    while keys.len() < n && Instant::now() < deadline {
        let Ok(next) = tokio::time::timeout(Duration::from_millis(200), watch.next()).await else {
            continue;
        };
        let response = next.expect("stream open").expect("no error");
        keys.extend(
            response
                .events()
                .iter()
                .map(|e| e.kv().key_str().unwrap().to_string()),
        );
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_renews_an_expired_token_after_a_restart_and_loses_nothing() {
    let builder = xtask::testing::builder().arg("--auth-token-ttl=2");
    let Some(mut etcd) = xtask::testing::start(builder) else {
        return;
    };
    for args in [&["user", "add", "root:rootpw"][..], &["auth", "enable"]] {
        let out = etcd.etcdctl(args).unwrap();
        assert!(out.status.success(), "etcdctl {args:?}: {out:?}");
    }
    let endpoint = etcd.endpoint(0);
    let connect = || {
        crate::builder()
            .endpoint(endpoint.clone())
            .credentials("root", "rootpw")
            .connect()
    };
    let watcher = connect().await.unwrap();
    let mut watch = watcher.watch("expiry/").prefix().await.unwrap();
    let writer = connect().await.unwrap();
    writer.put("expiry/1", "a").await.unwrap();
    assert_eq!(
        collect_keys(&mut watch, 1, Duration::from_secs(5)).await,
        ["expiry/1"]
    );
    // The token expires (2 s), and a restart forgets every token: the watch reconnects
    // with a stale one, which etcd answers with "permission denied".
    tokio::time::sleep(Duration::from_secs(3)).await;
    etcd.restart_node(0).unwrap();
    let writer = connect().await.unwrap();
    writer.put("expiry/2", "b").await.unwrap();
    writer.put("expiry/3", "c").await.unwrap();
    assert_eq!(
        collect_keys(&mut watch, 2, Duration::from_secs(20)).await,
        ["expiry/2", "expiry/3"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_watch_whose_token_expired_stays_on_its_member() {
    // The liveness probe of a silent stream carries the client's token; once it has
    // expired, etcd refuses the probe's read ("invalid auth token") after checking the
    // leader: the member is alive and the stream must stay (it once moved every probe).
    let builder = xtask::testing::builder().arg("--auth-token-ttl=2");
    let Some(etcd) = xtask::testing::start(builder) else {
        return;
    };
    for args in [&["user", "add", "root:rootpw"][..], &["auth", "enable"]] {
        let out = etcd.etcdctl(args).unwrap();
        assert!(out.status.success(), "etcdctl {args:?}: {out:?}");
    }
    let watcher = crate::builder()
        .endpoint(etcd.endpoint(0))
        .credentials("root", "rootpw")
        .watch_liveness(Duration::from_millis(3500), Duration::from_millis(1500))
        .connect()
        .await
        .unwrap();
    let mut watch = watcher.watch("idle-expiry/").prefix().await.unwrap();
    // The probe, 3.5 s after the watch was created, carries a token unused for longer than
    // its 2 s life (each use extends it; etcd drops expired ones every second).
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        watcher.stream_stats().watch_reconnects,
        0,
        "the watch stream moved although its member answered every probe"
    );
    let writer = crate::builder()
        .endpoint(etcd.endpoint(0))
        .credentials("root", "rootpw")
        .connect()
        .await
        .unwrap();
    writer.put("idle-expiry/1", "a").await.unwrap();
    assert_eq!(
        collect_keys(&mut watch, 1, Duration::from_secs(5)).await,
        ["idle-expiry/1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_on_a_member_that_lost_its_leader_resumes_without_loss() {
    let Some(mut etcd) = xtask::testing::cluster3() else {
        return;
    };
    let (member, _) = follower_and_leader(&etcd).await;
    let peers: Vec<usize> = (0..3).filter(|&i| i != member).collect();
    // Start on the follower.
    let mut endpoints = vec![etcd.endpoint(member)];
    endpoints.extend(peers.iter().map(|&i| etcd.endpoint(i)));
    let watcher = crate::builder()
        .endpoints(endpoints)
        .prefer_first(true)
        .request_timeout(Duration::from_secs(1))
        .watch_liveness(Duration::from_millis(500), Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    let mut watch = watcher.watch("leaderless/").prefix().await.unwrap();
    let writer = crate::builder()
        .endpoints(etcd.endpoints())
        .connect()
        .await
        .unwrap();
    for j in 0..20 {
        writer.put(format!("leaderless/{j:03}"), "v").await.unwrap();
    }
    let mut keys = collect_keys(&mut watch, 20, Duration::from_secs(10)).await;
    for &p in &peers {
        etcd.pause_node(p).unwrap();
    }
    // Long enough for the member to lose its leader and the watch to notice (500 ms idle
    // + 500 ms probe) and go round the endpoints.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for &p in &peers {
        etcd.resume_node(p).unwrap();
    }
    for j in 20..40 {
        let key = format!("leaderless/{j:03}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match writer.put(&key, "v").await {
                Ok(_) => break,
                // Not applied ("no leader" while the cluster recovers): try again.
                Err(e) if !e.is_outcome_unknown() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("put {key}: {e}"),
            }
        }
    }
    keys.extend(collect_keys(&mut watch, 20, Duration::from_secs(30)).await);
    let expected: Vec<String> = (0..40).map(|j| format!("leaderless/{j:03}")).collect();
    assert_eq!(keys, expected, "every event once, in order");
}
