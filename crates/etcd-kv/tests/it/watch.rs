//! Watches: ordering under concurrent writers, resume after the endpoint dies, compaction.

use etcd_kv::{Client, Error, EventKind};
use futures_util::StreamExt;
use std::collections::HashSet;
use std::time::Duration;

async fn shared_client() -> Option<Client> {
    let etcd = xtask::testing::shared_etcd()?;
    Some(
        crate::builder()
            .endpoint(etcd.endpoint(0))
            .connect()
            .await
            .expect("connect"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_watch_sees_10000_puts_from_16_writers_in_order() {
    let Some(client) = shared_client().await else {
        return;
    };
    let client = client.with_namespace(xtask::testing::unique_prefix("watch-10k"));
    let mut watch = client.watch("").prefix().await.unwrap();
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..625 {
                    client
                        .put(format!("w{w:02}/{i:04}"), format!("{i}"))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut last_revision = 0;
    let mut per_writer_last = [-1i64; 16];
    while seen.len() < 10_000 {
        let response = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .expect("events keep coming")
            .expect("stream open")
            .expect("no error");
        assert!(
            response.revision() > last_revision,
            "revisions strictly increase"
        );
        last_revision = response.revision();
        for event in response.events() {
            assert_eq!(event.kind(), EventKind::Put);
            let key = event.kv().key_str().unwrap().to_string();
            let writer: usize = key[1..3].parse().unwrap();
            let i: i64 = key[4..].parse().unwrap();
            assert!(
                i > per_writer_last[writer],
                "a writer's puts arrive in its order"
            );
            per_writer_last[writer] = i;
            assert!(seen.insert(key), "no event twice");
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(seen.len(), 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_through_a_survivor_when_its_endpoint_is_killed() {
    let Some(mut cluster) = xtask::testing::cluster3() else {
        return;
    };
    let endpoints = cluster.endpoints();
    // The watcher prefers node 0; the writer writes through node 1 (then 2).
    let watcher = crate::builder()
        .endpoints(endpoints.clone())
        .prefer_first(true)
        .build()
        .unwrap();
    let writer = crate::builder()
        .endpoints([endpoints[1].clone(), endpoints[2].clone()])
        .prefer_first(true)
        .build()
        .unwrap();
    let mut watch = watcher.watch("resume/").prefix().await.unwrap();
    assert_eq!(watcher.current_endpoint(), endpoints[0]);

    let total = 600;
    let write = tokio::spawn(async move {
        for i in 0..total {
            // A write whose outcome is unknown is retried only if it did not land.
            loop {
                match writer.put(format!("resume/{i:05}"), "v").await {
                    Ok(_) => break,
                    Err(e) => {
                        eprintln!("write {i} failed, retrying: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if writer
                            .get(format!("resume/{i:05}"))
                            .await
                            .ok()
                            .flatten()
                            .is_some()
                        {
                            break;
                        }
                    }
                }
            }
            if i % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });

    let mut seen = Vec::new();
    let mut killed = false;
    while seen.len() < total {
        let response = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .expect("the watch keeps delivering after the kill")
            .expect("stream open")
            .expect("no error");
        for event in response.events() {
            seen.push(event.kv().key_str().unwrap().to_string());
        }
        if !killed && seen.len() >= 100 {
            cluster.kill_node(0).unwrap();
            killed = true;
        }
    }
    write.await.unwrap();
    assert!(killed);
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no event delivered twice");
    let expected: Vec<String> = (0..total).map(|i| format!("resume/{i:05}")).collect();
    assert_eq!(seen, expected, "every event exactly once, in order");
    assert_ne!(watcher.current_endpoint(), endpoints[0]);
}

#[tokio::test]
async fn watch_from_a_compacted_revision_yields_compacted() {
    // Compaction is global: use a server of this test's own.
    let Some((_etcd, client)) = crate::own_etcd().await else {
        return;
    };
    let first = client.put("c/k", "1").await.unwrap().revision();
    client.put("c/k", "2").await.unwrap();
    let last = client.put("c/k", "3").await.unwrap().revision();
    client.compact(last).await.unwrap();

    let mut watch = client.watch("c/k").start_revision(first).await.unwrap();
    let item = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap();
    match item {
        Err(Error::Compacted { compact_revision }) => assert_eq!(compact_revision, last),
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(
        watch.next().await.is_none(),
        "the stream ends after Compacted"
    );

    // Reads at a compacted revision name the compact revision too.
    match client.range("c/k").revision(first).await {
        Err(Error::Compacted { compact_revision }) => assert_eq!(compact_revision, last),
        other => panic!("expected Compacted, got {other:?}"),
    }

    // From the compact revision on, history is still there.
    let mut watch = client.watch("c/k").start_revision(last).await.unwrap();
    let response = watch.next().await.unwrap().unwrap();
    assert_eq!(response.revision(), last);
    assert_eq!(response.events()[0].kv().value(), b"3");
}

#[tokio::test]
async fn watch_options_filters_prev_kv_and_grouping() {
    let Some(client) = shared_client().await else {
        return;
    };
    let client = client.with_namespace(xtask::testing::unique_prefix("watch-opts"));
    let mut deletes = client.watch("k").no_put().prev_kv().await.unwrap();
    let mut all = client.watch("b").end("d").await.unwrap();
    client.put("k", "v1").await.unwrap();
    client.delete("k").await.unwrap();
    let d = deletes.next().await.unwrap().unwrap();
    assert_eq!(d.events().len(), 1);
    let event = &d.events()[0];
    assert!(event.is_delete());
    assert_eq!(event.key(), b"k");
    assert_eq!(event.prev_kv().unwrap().value(), b"v1");

    // A txn writes several keys at one revision: one response with all its events.
    let txn = client
        .txn()
        .and_then([
            etcd_kv::TxnOp::put("b", "1"),
            etcd_kv::TxnOp::put("c", "2"),
            etcd_kv::TxnOp::put("d", "out"),
        ])
        .await
        .unwrap();
    let grouped = all.next().await.unwrap().unwrap();
    assert_eq!(grouped.revision(), txn.revision());
    let keys: Vec<_> = grouped.events().iter().map(|e| e.key().to_vec()).collect();
    assert_eq!(keys, vec![b"b".to_vec(), b"c".to_vec()]);
}

/// etcd's count of open watchers, from its Prometheus metrics on the client port.
fn watcher_total(endpoint: &str) -> i64 {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(endpoint.trim_start_matches("http://")).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix("etcd_debugging_mvcc_watcher_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as i64)
        .expect("etcd reports etcd_debugging_mvcc_watcher_total")
}

#[tokio::test]
async fn dropping_watches_cancels_them_on_the_server() {
    // Counting watchers needs a server no other test uses.
    let Some(etcd) = xtask::testing::start(xtask::testing::builder()) else {
        return;
    };
    let endpoint = etcd.endpoint(0);
    let client = crate::builder()
        .endpoint(&endpoint)
        .connect()
        .await
        .unwrap();
    let before = watcher_total(&endpoint);
    let mut watches = Vec::new();
    for i in 0..50 {
        watches.push(client.watch(format!("k{i}")).await.unwrap());
    }
    assert_eq!(watcher_total(&endpoint), before + 50);
    for i in 0..50 {
        client.put(format!("k{i}"), "v").await.unwrap();
    }
    for (i, w) in watches.iter_mut().enumerate() {
        let r = w.next().await.unwrap().unwrap();
        assert_eq!(r.events()[0].key(), format!("k{i}").as_bytes());
    }
    drop(watches);
    let mut now = watcher_total(&endpoint);
    for _ in 0..100 {
        if now == before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        now = watcher_total(&endpoint);
    }
    assert_eq!(now, before, "dropped watches are canceled on the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_reconnects_while_progress_is_requested_every_few_milliseconds() {
    // A server of its own: it is restarted under the watch.
    let Some(mut etcd) = xtask::testing::start(xtask::testing::builder()) else {
        return;
    };
    let client = crate::builder()
        .endpoint(etcd.endpoint(0))
        .request_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let mut watch = client.watch("flood/").prefix().await.unwrap();
    // Progress requests need the shared stream; per call, the test still checks the resume.
    let flood = watch.request_progress().is_ok();
    // While the member restarts, and after, a progress request reaches the watch's driver
    // every 20 ms (as from a cache waiting for a consistent read): it must still reconnect
    // once its backoff is over, and deliver the put made after the restart.
    let mut restart = Some(tokio::task::spawn_blocking(move || {
        etcd.restart_node(0).unwrap();
        etcd
    }));
    let mut etcd = None;
    let mut put = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut progress_requests = 0;
    loop {
        tokio::select! {
            item = watch.next() => {
                let response = item.expect("the watch goes on").expect("no error");
                if response.events().is_empty() {
                    continue;
                }
                assert!(put.is_some(), "an event before the put: {response:?}");
                assert_eq!(response.events()[0].key(), b"flood/after");
                break;
            }
            restarted = async { restart.as_mut().unwrap().await }, if restart.is_some() => {
                restart = None;
                etcd = Some(restarted.unwrap());
                let client = client.clone();
                put = Some(tokio::spawn(async move { client.put("flood/after", "v").await }));
            }
            _ = tick.tick(), if flood => {
                let _ = watch.request_progress();
                progress_requests += 1;
            }
            _ = tokio::time::sleep_until(deadline) => {
                panic!("the watch did not resume within 20 s ({progress_requests} progress requests)")
            }
        }
    }
    put.unwrap().await.unwrap().unwrap();
    eprintln!("resumed; {progress_requests} progress requests meanwhile");
    drop(etcd);
}

/// etcd #20221: a watch from a future revision sees nothing older than its start, neither
/// an event nor a progress notification, though etcd before 3.4.38 and 3.5.22 answers a
/// progress request with its own, older revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_future_revision_sees_nothing_older_than_its_start() {
    // A server of its own: its revision moves only with this test's writes.
    let Some((_etcd, client)) = crate::own_etcd().await else {
        return;
    };
    let p = xtask::testing::unique_prefix("future_watch");
    let now = client.put(format!("{p}x"), "0").await.unwrap().revision();
    let start = now + 30;
    let mut watch = client
        .watch(&p)
        .prefix()
        .start_revision(start)
        .progress_notify()
        .await
        .unwrap();
    let mut revisions = Vec::new();
    let mut requests = 0;
    for i in 0..50 {
        if i % 5 == 0 && watch.request_progress().is_ok() {
            requests += 1;
        }
        let revision = client
            .put(format!("{p}{i:02}"), "v")
            .await
            .unwrap()
            .revision();
        revisions.push(revision);
    }
    let last = *revisions.last().unwrap();
    let expected: Vec<i64> = revisions.into_iter().filter(|&r| r >= start).collect();
    let mut events = Vec::new();
    let mut notifications = Vec::new();
    while events.last() != Some(&last) {
        let response = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("the last event arrives")
            .expect("open")
            .expect("no error");
        if response.is_progress_notify() {
            notifications.push(response.revision());
        }
        events.extend(response.events().iter().map(|e| e.kv().mod_revision()));
    }
    eprintln!(
        "future watch from {start}: {} events, {requests} progress requests, notified at {notifications:?}",
        events.len()
    );
    assert_eq!(
        events, expected,
        "every event from the start on, none older"
    );
    assert!(
        notifications.iter().all(|&r| r >= start - 1),
        "a progress notification older than the start: {notifications:?} (start {start})"
    );
}
