//! Watches that heal after a compaction (`resync_on_compaction`): the consumer's copy of
//! the range, rebuilt from a listing and the watch's events, equals a fresh range after the
//! watch's resume revision was compacted away.

use bytes::Bytes;
use etcd_kv::{Client, Error, WatchResponse, WatchStream};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Map = BTreeMap<Bytes, Bytes>;

/// The range under `prefix` as a map, and its revision.
async fn listing(client: &Client, prefix: &str) -> (Map, i64) {
    let listed = client.range(prefix).prefix().await.unwrap();
    let copy = listed
        .kvs()
        .iter()
        .map(|kv| (kv.key_bytes(), kv.value_bytes()))
        .collect();
    (copy, listed.revision())
}

/// Applies a response to the copy; checks that live revisions only grow.
fn apply(copy: &mut Map, response: &WatchResponse, last: &mut i64) {
    if !response.is_resync() {
        assert!(
            response.revision() > *last || response.is_progress_notify(),
            "live revision {} after {last}",
            response.revision()
        );
    }
    *last = (*last).max(response.revision());
    for event in response.events() {
        if event.is_put() {
            copy.insert(event.kv().key_bytes(), event.kv().value_bytes());
        } else {
            assert!(event.prev_kv().is_none() || !response.is_resync());
            copy.remove(event.key());
        }
    }
}

/// A resyncing watch of `prefix` from the revision after `start`.
async fn resyncing(client: &Client, prefix: &str, start: i64) -> WatchStream {
    client
        .watch(prefix)
        .prefix()
        .start_revision(start + 1)
        .resync_on_compaction()
        .await
        .unwrap()
}

/// Writes `n` changes under `prefix`: puts to new and existing keys, deletes.
async fn churn(client: &Client, prefix: &str, n: usize) {
    for i in 0..n {
        let key = format!("{prefix}k{:03}", (i * 7) % 400);
        if i % 5 == 4 {
            client.delete(key).await.unwrap();
        } else {
            client.put(key, format!("v{i}")).await.unwrap();
        }
    }
}

async fn seed(client: &Client, prefix: &str) {
    for i in 0..200 {
        client
            .put(format!("{prefix}k{i:03}"), "seed")
            .await
            .unwrap();
    }
}

/// Reads the watch into the copy until it equals `expected`; the number of resync
/// responses seen.
async fn read_until_equal(
    watch: &mut WatchStream,
    copy: &mut Map,
    last: &mut i64,
    expected: &Map,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut resyncs = 0;
    while copy != expected {
        let left = deadline.saturating_duration_since(Instant::now());
        let response = tokio::time::timeout(left, watch.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the copy never matched: {} keys against {} expected",
                    copy.len(),
                    expected.len()
                )
            })
            .expect("the watch goes on")
            .expect("no error: the watch heals");
        resyncs += usize::from(response.is_resync());
        apply(copy, &response, last);
    }
    resyncs
}

/// A consumer that stops reading while 3,000 changes and a compaction happen: the hub
/// pauses its watch, which can then not resume; it resyncs instead of failing, and the
/// rebuilt copy equals the range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_behind_a_compaction_gets_a_resync_and_an_exact_copy() {
    let Some((_etcd, client)) = crate::own_etcd().await else {
        return;
    };
    let prefix = "resync-slow/";
    seed(&client, prefix).await;
    // Over a page of keys, so that the resync lists several pages.
    futures_util::stream::iter(0..1500)
        .map(|i| {
            client
                .put(format!("{prefix}bulk/{i:04}"), "bulk")
                .into_future()
        })
        .buffer_unordered(32)
        .for_each(|r| async move {
            r.unwrap();
        })
        .await;
    let (mut copy, start) = listing(&client, prefix).await;
    let mut watch = resyncing(&client, prefix, start).await;
    // More changes than the watch buffers: the hub pauses it.
    churn(&client, prefix, 3000).await;
    // Deleted across the first page's end.
    client
        .delete(format!("{prefix}bulk/0990"))
        .end(format!("{prefix}bulk/1011"))
        .await
        .unwrap();
    let head = client.put("other", "x").await.unwrap().revision();
    client.compact(head).await.unwrap();
    let (expected, _) = listing(&client, prefix).await;

    let mut last = start;
    let resyncs = read_until_equal(&mut watch, &mut copy, &mut last, &expected).await;
    assert!(resyncs >= 2, "the watch resynced, a response per page");
    eprintln!(
        "copy of {} keys exact after {resyncs} resync responses",
        copy.len()
    );

    // It goes on watching after the resync.
    client.put(format!("{prefix}after"), "live").await.unwrap();
    let (expected, _) = listing(&client, prefix).await;
    read_until_equal(&mut watch, &mut copy, &mut last, &expected).await;

    // A start revision compacted already: the watch cannot know what the consumer holds.
    let err = client
        .watch(prefix)
        .prefix()
        .start_revision(2)
        .resync_on_compaction()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Compacted { .. }), "{err:?}");
}

/// The consumer reads through a resync with filters applied by the client, and handles
/// refuse the option.
#[tokio::test]
async fn filters_apply_to_resync_events_and_handles_refuse_the_option() {
    let Some((_etcd, client)) = crate::own_etcd().await else {
        return;
    };
    let prefix = "resync-filter/";
    seed(&client, prefix).await;
    let (_, start) = listing(&client, prefix).await;
    let mut watch = client
        .watch(prefix)
        .prefix()
        .start_revision(start + 1)
        .no_delete()
        .resync_on_compaction()
        .await
        .unwrap();
    churn(&client, prefix, 3000).await;
    let head = client.put(format!("{prefix}zz-last"), "x").await.unwrap();
    client.compact(head.revision()).await.unwrap();
    let mut resynced = false;
    loop {
        let response = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .expect("the watch reaches the last put")
            .expect("the watch goes on")
            .expect("no error");
        assert!(
            response.events().iter().all(|e| e.is_put()),
            "no deletes: {response:?}"
        );
        resynced |= response.is_resync();
        if response
            .events()
            .iter()
            .any(|e| e.key().ends_with(b"zz-last"))
        {
            break;
        }
    }
    assert!(resynced, "the watch resynced");

    let err = client
        .watch(prefix)
        .prefix()
        .resync_on_compaction()
        .on_event(|_| ())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
}

/// The case: a watch whose only member is down while 1,000 changes and a
/// compaction happen on the others. (Killed, not frozen: a restarted member serves clients
/// once it has applied what was committed, the compaction included, so the watch must find
/// its revision compacted; a frozen one may serve the watch before it applies the
/// compaction, and the watch then simply catches up.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_whose_member_was_down_through_a_compaction_resyncs_to_the_range() {
    let Some(mut etcd) = xtask::testing::cluster3() else {
        return;
    };
    let prefix = "resync-down/";
    let member = crate::cache::follower(&etcd).await;
    let watcher = crate::builder()
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
    let writer = crate::builder().endpoints(others).connect().await.unwrap();
    seed(&writer, prefix).await;
    let (copy, start) = listing(&writer, prefix).await;
    let mut watch = resyncing(&watcher, prefix, start).await;
    let copy = Arc::new(Mutex::new((copy, 0usize)));
    let consumer = {
        let copy = copy.clone();
        tokio::spawn(async move {
            let mut last = start;
            while let Some(response) = watch.next().await {
                let response = response.expect("no error: the watch heals");
                let mut guard = copy.lock().unwrap();
                guard.1 += usize::from(response.is_resync());
                apply(&mut guard.0, &response, &mut last);
            }
        })
    };
    churn(&writer, prefix, 100).await;

    etcd.kill_node(member).unwrap();
    churn(&writer, prefix, 1000).await;
    let head = writer.put("other", "x").await.unwrap();
    writer.compact(head.revision()).await.unwrap();
    let (expected, _) = listing(&writer, prefix).await;
    etcd.start_node(member).unwrap();
    etcd.wait_healthy(member).unwrap();

    crate::eventually(Duration::from_secs(60), "the copy equals the range", || {
        let copy = copy.clone();
        let expected = expected.clone();
        async move { copy.lock().unwrap().0 == expected }
    })
    .await;
    let resyncs = copy.lock().unwrap().1;
    assert!(resyncs > 0, "the watch resynced");
    eprintln!(
        "{} keys exact after {resyncs} resync responses",
        expected.len()
    );
    assert!(!consumer.is_finished(), "the watch goes on");
    consumer.abort();
}
