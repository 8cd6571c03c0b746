//! Queues: priorities, FIFO, waiting pops, and exactly-once delivery under contention.

use crate::setup;
use bytes::Bytes;
use etcd_kv::{Error, Queue};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn priorities_then_fifo_batches_try_pop_and_count() {
    let (_etcd, client, p) = setup!("queue_basic");
    let queue = Queue::new(&client, format!("{p}jobs"));
    assert_eq!(queue.name(), format!("{p}jobs").as_bytes());
    assert_eq!(queue.try_pop().await.unwrap(), None);
    for item in ["a", "b", "c"] {
        queue.push(item).await.unwrap();
    }
    queue.push_with_priority("urgent", 10).await.unwrap();
    queue.push_with_priority("soon", 5).await.unwrap();
    queue.push("d").await.unwrap();
    queue.push_with_priority("urgent 2", 10).await.unwrap();
    assert_eq!(queue.count().await.unwrap(), 7);
    let mut popped = Vec::new();
    while let Some(item) = queue.try_pop().await.unwrap() {
        popped.push(String::from_utf8(item.to_vec()).unwrap());
    }
    assert_eq!(popped, ["urgent", "urgent 2", "soon", "a", "b", "c", "d"]);
    assert_eq!(queue.count().await.unwrap(), 0);

    // Batches, in order.
    queue.push_all(["x", "y", "z"]).await.unwrap();
    let batch = queue.pop_batch(2, Duration::ZERO).await.unwrap();
    assert_eq!(batch, ["x", "y"]);
    let batch = queue.pop_batch(10, Duration::ZERO).await.unwrap();
    assert_eq!(batch, ["z"]);
    assert!(queue
        .pop_batch(10, Duration::ZERO)
        .await
        .unwrap()
        .is_empty());
    queue.push_all(Vec::<String>::new()).await.unwrap();

    // Items are keys `<name>/<65535 - priority>/<suffix>`.
    queue.push_with_priority("x", 1).await.unwrap();
    let kvs = client.range(format!("{p}jobs/")).prefix().await.unwrap();
    assert!(kvs.kvs()[0]
        .key_str()
        .unwrap()
        .starts_with(&format!("{p}jobs/65534/")));
}

#[tokio::test]
async fn pop_waits_for_a_push_and_pop_timeout_gives_up_in_time() {
    let (_etcd, client, p) = setup!("queue_wait");
    let queue = Queue::new(&client, format!("{p}jobs"));
    let start = Instant::now();
    assert_eq!(
        queue.pop_timeout(Duration::from_millis(300)).await.unwrap(),
        None
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1500),
        "{took:?}"
    );

    let waiting = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.pop().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());
    let pushed = Instant::now();
    Queue::new(&client, format!("{p}jobs"))
        .push("wake up")
        .await
        .unwrap();
    let item = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("the push wakes the pop")
        .unwrap()
        .unwrap();
    assert_eq!(item, "wake up");
    assert!(pushed.elapsed() < Duration::from_secs(1));

    // A pop_timeout that an item reaches in time returns it.
    let waiting = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.pop_timeout(Duration::from_secs(5)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    queue.push("in time").await.unwrap();
    assert_eq!(
        waiting.await.unwrap().unwrap().as_deref(),
        Some(&b"in time"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_producers_and_four_consumers_pass_10000_items_each_delivered_once() {
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 4;
    // Producers 0 and 2 push one item per transaction, 1 and 3 fifty.
    const ITEMS: [usize; PRODUCERS] = [1000, 4000, 1000, 4000];
    const TOTAL: usize = 10_000;
    let (etcd, client, p) = setup!("queue_mpmc");
    let name = format!("{p}jobs");
    let start = Instant::now();
    let mut producers = Vec::new();
    for (id, count) in ITEMS.into_iter().enumerate() {
        let client = crate::builder()
            .endpoint(etcd.endpoint(0))
            .connect()
            .await
            .unwrap();
        let queue = Queue::new(&client, &name);
        producers.push(tokio::spawn(async move {
            let items: Vec<String> = (0..count).map(|n| format!("{id}:{n}")).collect();
            if id % 2 == 0 {
                for item in items {
                    queue.push(item).await?;
                }
            } else {
                for chunk in items.chunks(50) {
                    queue.push_all(chunk).await?;
                }
            }
            Ok::<_, Error>(())
        }));
    }
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut consumers = Vec::new();
    for id in 0..CONSUMERS {
        let client = crate::builder()
            .endpoint(etcd.endpoint(0))
            .connect()
            .await
            .unwrap();
        let queue = Queue::new(&client, &name);
        let delivered = delivered.clone();
        consumers.push(tokio::spawn(async move {
            let mut got: Vec<Bytes> = Vec::new();
            let wait = Duration::from_millis(200);
            while delivered.load(Ordering::SeqCst) < TOTAL {
                // Half the consumers take one item at a time, half take batches.
                let items = if id % 2 == 0 {
                    queue.pop_timeout(wait).await?.into_iter().collect()
                } else {
                    queue.pop_batch(50, wait).await?
                };
                delivered.fetch_add(items.len(), Ordering::SeqCst);
                got.extend(items);
            }
            Ok::<_, Error>(got)
        }));
    }
    for producer in producers {
        producer.await.unwrap().unwrap();
    }
    let produced = start.elapsed();
    let mut seen: HashMap<(usize, usize), usize> = HashMap::new();
    let mut per_consumer = Vec::new();
    for consumer in consumers {
        let got = consumer.await.unwrap().unwrap();
        per_consumer.push(got.len());
        let mut last_of_producer = [None::<usize>; PRODUCERS];
        for item in got {
            let text = std::str::from_utf8(&item).unwrap();
            let (id, n) = text.split_once(':').unwrap();
            let (id, n): (usize, usize) = (id.parse().unwrap(), n.parse().unwrap());
            *seen.entry((id, n)).or_default() += 1;
            // FIFO: each consumer gets each producer's items in push order.
            assert!(
                last_of_producer[id].is_none_or(|last| last < n),
                "{text} after {last_of_producer:?}"
            );
            last_of_producer[id] = Some(n);
        }
    }
    assert_eq!(ITEMS.iter().sum::<usize>(), TOTAL);
    assert_eq!(seen.len(), TOTAL, "every item delivered");
    assert!(seen.values().all(|&times| times == 1), "each item once");
    assert_eq!(Queue::new(&client, &name).count().await.unwrap(), 0);
    eprintln!(
        "10000 queue items: pushed in {produced:?}, all delivered in {:?}, per consumer {per_consumer:?}",
        start.elapsed()
    );
}
