//! Sequences: unique, strictly increasing numbers across clients.

use crate::setup;
use etcd_kv::{Error, Sequence};
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_is_unique_and_strictly_increasing_across_clients() {
    let (etcd, client, p) = setup!("sequence_contended");
    let key = format!("{p}ids");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        // One client and one `Sequence` per "process", shared by its tasks.
        let other = crate::builder()
            .endpoint(etcd.endpoint(0))
            .connect()
            .await
            .unwrap();
        let sequence = std::sync::Arc::new(Sequence::new(&other, &key));
        for _ in 0..4 {
            let sequence = sequence.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..25 {
                    got.push(sequence.next().await?);
                }
                Ok::<_, Error>(got)
            }));
        }
    }
    let mut all = Vec::new();
    for task in tasks {
        let got = task.await.unwrap().unwrap();
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "increasing for each caller: {got:?}"
        );
        all.extend(got);
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=400).collect::<Vec<u64>>(),
        "each number once, no gap"
    );
    let sequence = Sequence::new(&client, &key);
    assert_eq!(sequence.current().await.unwrap(), 400);
    assert_eq!(
        client
            .get(&key)
            .await
            .unwrap()
            .unwrap()
            .value_str()
            .unwrap(),
        "400"
    );
    assert_eq!(sequence.next().await.unwrap(), 401);
    eprintln!("400 contended sequence numbers in {:?}", start.elapsed());
}

#[tokio::test]
async fn starts_at_one_and_rejects_a_value_that_is_not_a_counter() {
    let (_etcd, client, p) = setup!("sequence_basic");
    let sequence = Sequence::new(&client, format!("{p}n"));
    assert_eq!(sequence.key(), format!("{p}n").as_bytes());
    assert_eq!(sequence.current().await.unwrap(), 0);
    assert_eq!(sequence.next().await.unwrap(), 1);
    // Someone else moves it on: the cached guess fails over to the stored value.
    client.put(format!("{p}n"), "41").await.unwrap();
    assert_eq!(sequence.next().await.unwrap(), 42);
    assert_eq!(sequence.clone().next().await.unwrap(), 43);

    client.put(format!("{p}n"), "forty-four").await.unwrap();
    let err = sequence.next().await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    client
        .put(format!("{p}max"), u64::MAX.to_string())
        .await
        .unwrap();
    let err = Sequence::new(&client, format!("{p}max"))
        .next()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
}
