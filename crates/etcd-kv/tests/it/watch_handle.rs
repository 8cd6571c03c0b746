//! Callback watches: `on_event`, ranges added and removed while running, exactly once.

use etcd_kv::{Client, WatchEvent};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

async fn client(name: &str) -> Option<Client> {
    crate::namespaced(name).await.map(|(_, client)| client)
}

/// What a callback saw: `(revision, key)` of each event, in delivery order.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(i64, String)>>>);

impl Seen {
    fn callback(&self) -> impl FnMut(WatchEvent) + Send + 'static {
        let seen = self.0.clone();
        move |event| {
            let key = event.kv().key_str().unwrap().to_string();
            seen.lock().unwrap().push((event.revision(), key));
        }
    }

    fn keys(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, k)| k.clone())
            .collect()
    }

    fn count(&self, key: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, k)| k == key)
            .count()
    }

    /// Waits until `key` was delivered (at most 10 s).
    async fn wait_for(&self, key: &str) {
        let start = Instant::now();
        while self.count(key) == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{key} not delivered; seen {:?}",
                self.keys()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// No `(revision, key)` twice, and each key's events in revision order.
    fn assert_once_and_ordered(&self) {
        let seen = self.0.lock().unwrap();
        let mut last: HashMap<&str, i64> = HashMap::new();
        for (rev, key) in seen.iter() {
            let prev = last.insert(key, *rev).unwrap_or(0);
            assert!(
                *rev > prev,
                "{key} at {rev} after {prev}: repeated or out of order"
            );
        }
    }
}

#[tokio::test]
async fn on_event_calls_back_until_cancelled() {
    let Some(client) = client("watch-on-event").await else {
        return;
    };
    let seen = Seen::default();
    let watching = client
        .watch("k/")
        .prefix()
        .on_event(seen.callback())
        .await
        .unwrap();
    client.put("k/1", "a").await.unwrap();
    client.put("other", "x").await.unwrap();
    client.put("k/2", "b").await.unwrap();
    seen.wait_for("k/2").await;
    assert_eq!(seen.keys(), ["k/1", "k/2"]);
    assert_eq!(watching.ranges().len(), 1);
    assert!(watching.revision() > 0);
    assert!(watching.error().is_none());
    watching.cancel();
    client.put("k/3", "c").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(seen.keys(), ["k/1", "k/2"], "no callback after cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_added_and_removed_while_running_deliver_each_event_once() {
    let Some(client) = client("watch-dynamic").await else {
        return;
    };
    let seen = Seen::default();
    let watching = client
        .watch_ranges([client.watch("a/").prefix()], seen.callback())
        .await
        .unwrap();
    let [a] = watching.ranges()[..] else {
        panic!("one range")
    };
    client.put("a/1", "").await.unwrap();
    client.put("b/1", "").await.unwrap(); // not watched yet: not delivered
    seen.wait_for("a/1").await;

    // Added while running: from the revision after the last delivered one, so b/1
    // (written after a/1) comes too: nothing between is lost.
    let b = watching.add(client.watch("b/").prefix()).await.unwrap();
    client.put("b/2", "").await.unwrap();
    client.put("a/2", "").await.unwrap();
    seen.wait_for("a/2").await;
    seen.wait_for("b/2").await;
    assert_eq!(seen.count("b/1"), 1);

    // An overlapping range, added while a writer runs: every write once.
    let writer = tokio::spawn({
        let client = client.clone();
        async move {
            for i in 0..200 {
                client.put(format!("a/x{i:03}"), "").await.unwrap();
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ax = watching.add(client.watch("a/x").prefix()).await.unwrap();
    let all = watching.add(client.watch("").from_key()).await.unwrap();
    writer.await.unwrap();
    client.put("a/x-end", "").await.unwrap();
    seen.wait_for("a/x-end").await;
    for i in 0..200 {
        assert_eq!(seen.count(&format!("a/x{i:03}")), 1, "a/x{i:03}");
    }
    assert!(watching.remove(all).await);
    assert!(!watching.remove(all).await, "already removed");

    // Removed: b/ no longer delivered; a/x still is, through its own range, once.
    assert!(watching.remove(b).await);
    client.put("b/3", "").await.unwrap();
    assert!(watching.remove(a).await);
    client.put("a/3", "").await.unwrap();
    client.put("a/x-last", "").await.unwrap();
    seen.wait_for("a/x-last").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(seen.count("b/3"), 0, "b/ was removed");
    assert_eq!(seen.count("a/3"), 0, "a/ was removed");
    assert_eq!(watching.ranges(), [ax]);
    seen.assert_once_and_ordered();

    // A start revision is refused on a range added later, and ranges must agree on one.
    let err = watching
        .add(client.watch("c").start_revision(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, etcd_kv::Error::InvalidInput { .. }),
        "{err:?}"
    );
    let err = client
        .watch_ranges(
            [
                client.watch("c").start_revision(2),
                client.watch("d").start_revision(3),
            ],
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, etcd_kv::Error::InvalidInput { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn several_ranges_from_one_start_revision_and_a_compaction_ends_the_handle() {
    let Some(client) = client("watch-ranges").await else {
        return;
    };
    let first = client.put("x", "1").await.unwrap().revision();
    client.put("y/1", "2").await.unwrap();
    client.put("x", "3").await.unwrap();
    let seen = Seen::default();
    let watching = client
        .watch_ranges(
            [
                client.watch("x").start_revision(first),
                client.watch("y/").prefix().start_revision(first),
                client.watch("y/1").start_revision(first), // overlaps y/
            ],
            seen.callback(),
        )
        .await
        .unwrap();
    seen.wait_for("y/1").await;
    seen.wait_for("x").await;
    // Written after the last revision delivered, before the range is added: delivered
    // all the same (a range added starts right after the last delivered revision).
    client.put("end", "").await.unwrap();
    let end = watching.add(client.watch("end")).await.unwrap();
    client.put("end", "").await.unwrap();
    let start = Instant::now();
    while seen.count("end") < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            seen.keys()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Each range in revision order; ranges may interleave.
    let mut by_revision = seen.0.lock().unwrap().clone();
    by_revision.sort();
    let keys: Vec<&str> = by_revision.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(keys, ["x", "y/1", "x", "end", "end"]);
    assert_eq!(seen.count("x"), 2);
    assert_eq!(seen.count("y/1"), 1);
    seen.assert_once_and_ordered();
    assert!(watching.remove(end).await);

    // A range whose revision was compacted away ends the handle with the error.
    let rev = client.put("z", "").await.unwrap().revision();
    client.compact(rev).await.unwrap();
    let watching = client
        .watch("z")
        .start_revision(first)
        .on_event(|_| panic!("no event"))
        .await
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), watching.ended())
        .await
        .expect("ended");
    assert!(matches!(err, etcd_kv::Error::Compacted { .. }), "{err:?}");
    assert!(matches!(
        watching.error(),
        Some(etcd_kv::Error::Compacted { .. })
    ));
    assert!(watching.ranges().is_empty());
}

#[tokio::test]
async fn overlapping_ranges_with_filters_deliver_each_event_once() {
    let Some(client) = client("watch-filters").await else {
        return;
    };
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let watching = client
        .watch_ranges(
            [
                client.watch("f/").prefix().no_put(),
                client.watch("f/1").no_delete(),
            ],
            {
                let kinds = kinds.clone();
                move |event: WatchEvent| {
                    let key = event.kv().key_str().unwrap().to_string();
                    kinds
                        .lock()
                        .unwrap()
                        .push(format!("{} {key}", event.kind()));
                }
            },
        )
        .await
        .unwrap();
    client.put("f/1", "a").await.unwrap(); // only f/1's range carries it
    client.put("f/2", "b").await.unwrap(); // no range carries it
    client.delete("f/1").await.unwrap(); // only f/'s range carries it
    client.delete("f/2").await.unwrap();
    client.put("f/1", "c").await.unwrap();
    let start = Instant::now();
    while kinds.lock().unwrap().len() < 4 {
        assert!(start.elapsed() < Duration::from_secs(10), "{kinds:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut seen = kinds.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["DELETE f/1", "DELETE f/2", "PUT f/1", "PUT f/1"]);
    drop(watching);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_covering_ranges_under_writers_loses_and_repeats_nothing() {
    let Some(client) = client("watch-swap").await else {
        return;
    };
    let seen = Seen::default();
    let watching = client
        .watch("s/")
        .prefix()
        .on_event(seen.callback())
        .await
        .unwrap();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..150 {
                    client.put(format!("s/{w}/{i:03}"), "").await.unwrap();
                }
            })
        })
        .collect();
    // While they write: replace the covering range again and again, each time by one of
    // another shape that covers the same keys, removing the old one once the new one runs.
    let shapes = [
        client.watch("s/").prefix(),
        client.watch("s/").end("s0"),
        client.watch("s").from_key(),
    ];
    let mut current = watching.ranges()[0];
    for round in 0..12 {
        let next = watching
            .add(shapes[round % shapes.len()].clone())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(watching.remove(current).await);
        current = next;
    }
    for w in writers {
        w.await.unwrap();
    }
    client.put("s/end", "").await.unwrap();
    seen.wait_for("s/end").await;
    for w in 0..4 {
        for i in 0..150 {
            assert_eq!(seen.count(&format!("s/{w}/{i:03}")), 1, "s/{w}/{i:03}");
        }
    }
    seen.assert_once_and_ordered();
    assert_eq!(watching.ranges(), [current]);
}

#[tokio::test]
async fn a_range_added_after_a_compaction_past_a_quiet_handle_starts_at_the_oldest_revision() {
    let Some(client) = client("watch-add-compacted").await else {
        return;
    };
    let seen = Seen::default();
    let watching = client
        .watch("q/")
        .prefix()
        .on_event(seen.callback())
        .await
        .unwrap();
    client.put("q/1", "").await.unwrap();
    seen.wait_for("q/1").await;
    // The handle stays quiet while the store moves on and is compacted past it.
    client.put("elsewhere", "").await.unwrap();
    let rev = client.put("elsewhere", "").await.unwrap().revision();
    client.compact(rev).await.unwrap();
    assert!(watching.revision() < rev);
    let added = watching.add(client.watch("r/").prefix()).await.unwrap();
    client.put("r/1", "").await.unwrap();
    client.put("q/2", "").await.unwrap();
    seen.wait_for("r/1").await;
    seen.wait_for("q/2").await;
    assert!(watching.error().is_none(), "{:?}", watching.error());
    assert_eq!(watching.ranges().len(), 2);
    // Each range in its order; ranges may interleave.
    let mut by_revision = seen.0.lock().unwrap().clone();
    by_revision.sort();
    let keys: Vec<&str> = by_revision.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(keys, ["q/1", "r/1", "q/2"]);
    seen.assert_once_and_ordered();
    assert!(watching.remove(added).await);
}
