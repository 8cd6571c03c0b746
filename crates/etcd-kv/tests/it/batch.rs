//! Batches: independent writes grouped into transactions within the server's limits, with a
//! result per operation.

use etcd_kv::{Error, TxnOp};

#[tokio::test]
async fn writes_go_in_transactions_within_max_txn_ops_in_order() {
    let (_etcd, client, prefix) = crate::setup!("batch-order");
    let mut batch = client.batch();
    for i in 0..1000 {
        let n = batch
            .push(TxnOp::put(
                format!("{prefix}{:04}", i % 700),
                format!("{i}"),
            ))
            .await
            .unwrap();
        assert_eq!(n, i as u64);
    }
    batch
        .push(TxnOp::delete(format!("{prefix}0001")))
        .await
        .unwrap();
    let results = batch.finish().await;
    let mut next = 0;
    let mut revision = 0;
    for result in &results {
        assert_eq!(result.ops().start, next, "contiguous");
        assert!(result.ops().end - result.ops().start <= 128);
        let applied = result.revision().expect("applied");
        assert!(applied > revision, "in order");
        revision = applied;
        next = result.ops().end;
    }
    assert_eq!(next, 1001);
    assert_eq!(results.len(), 8, "1,001 operations in transactions of 128");
    let listed = client.range(&prefix).prefix().await.unwrap();
    assert_eq!(listed.count(), 699);
    let value = client.range(format!("{prefix}0000")).await.unwrap();
    assert_eq!(
        value.kvs()[0].value_str().unwrap(),
        "700",
        "the later write wins"
    );

    // Two writes of one key never share a transaction (etcd would refuse it).
    let mut batch = client.batch();
    for value in ["1", "2", "3"] {
        batch
            .push(TxnOp::put(format!("{prefix}twice"), value))
            .await
            .unwrap();
    }
    let results = batch.finish().await;
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r.revision().is_some()));
    let value = client.range(format!("{prefix}twice")).await.unwrap();
    assert_eq!(value.kvs()[0].value_str().unwrap(), "3");

    // Guarded: each transaction applies only if nothing under the prefix changed since the
    // batch's last one; a write from elsewhere stops the rest.
    let start = client.range(&prefix).prefix().await.unwrap().revision();
    let guarded_prefix = prefix.clone();
    let mut batch = client.batch().max_ops(3).guard(start, move |revision| {
        etcd_kv::Compare::mod_revision(guarded_prefix.clone())
            .prefix()
            .lt(revision + 1)
    });
    for i in 0..3 {
        batch
            .push(TxnOp::put(format!("{prefix}g{i}"), "1"))
            .await
            .unwrap();
    }
    batch.flush().await;
    let first: Vec<_> = batch.finish().await;
    assert!(first[0].revision().is_some());
    client.put(format!("{prefix}elsewhere"), "x").await.unwrap();
    batch
        .push_if(
            TxnOp::put(format!("{prefix}g9"), "1"),
            [etcd_kv::Compare::version(format!("{prefix}g0")).gt(0)],
        )
        .await
        .unwrap();
    let second = batch.finish().await;
    assert!(second[0].compares_failed(), "{second:?}");
    assert!(client
        .range(format!("{prefix}g9"))
        .await
        .unwrap()
        .kvs()
        .is_empty());
}

#[tokio::test]
async fn transactions_stay_within_max_request_bytes_and_run_concurrently() {
    let (etcd, _client, prefix) = crate::setup!("batch-bytes");
    let client = crate::builder()
        .endpoint(etcd.endpoint(0))
        .max_request_bytes(20_000)
        .connect()
        .await
        .unwrap();
    let mut batch = client.batch().concurrency(4);
    let value = "x".repeat(1000);
    for i in 0..200 {
        batch
            .push(TxnOp::put(format!("{prefix}{i:03}"), value.clone()))
            .await
            .unwrap();
    }
    let mut results: Vec<_> = batch.results().collect();
    results.extend(batch.finish().await);
    assert_eq!(results.iter().map(|r| r.ops().count()).sum::<usize>(), 200);
    for result in &results {
        assert!(result.revision().is_some(), "{:?}", result.error());
        assert!(
            result.ops().count() <= 19,
            "{:?} over 20,000 bytes",
            result.ops()
        );
    }
    let listed = client.range(&prefix).prefix().count_only().await.unwrap();
    assert_eq!(listed.count(), 200);
}

#[tokio::test]
async fn reads_are_refused_and_failed_transactions_are_reported_with_their_operations() {
    let (etcd, _client, prefix) = crate::setup!("batch-bad");
    let client = crate::builder()
        .endpoint(etcd.endpoint(0))
        .max_request_bytes(10_000)
        .connect()
        .await
        .unwrap();
    let mut batch = client.batch().max_ops(2);
    assert_eq!(
        batch
            .push(TxnOp::put(format!("{prefix}a"), "1"))
            .await
            .unwrap(),
        0
    );
    let read = batch
        .push(TxnOp::get(format!("{prefix}a")))
        .await
        .unwrap_err();
    assert!(matches!(read, Error::InvalidInput { .. }), "{read:?}");
    assert_eq!(
        batch
            .push(TxnOp::put(format!("{prefix}b"), "2"))
            .await
            .unwrap(),
        1
    );
    // Over the request limit alone: a transaction of its own, refused by the client.
    let big = TxnOp::put(format!("{prefix}big"), "x".repeat(10_000));
    assert_eq!(batch.push(big).await.unwrap(), 2);
    // A lease that does not exist fails its transaction (ops 3 and 4) only.
    batch
        .push(TxnOp::put_with_lease(
            format!("{prefix}c"),
            "3",
            0x7fff_0000_0001,
        ))
        .await
        .unwrap();
    batch
        .push(TxnOp::put(format!("{prefix}d"), "4"))
        .await
        .unwrap();
    // A range delete goes alone.
    batch
        .push(TxnOp::delete_prefix(format!("{prefix}a")))
        .await
        .unwrap();
    batch
        .push(TxnOp::put(format!("{prefix}e"), "5"))
        .await
        .unwrap();
    let results = batch.finish().await;
    let shown: Vec<_> = results
        .iter()
        .map(|r| (r.ops(), r.revision().is_some()))
        .collect();
    assert_eq!(
        shown,
        [
            (0..2, true),
            (2..3, false),
            (3..5, false),
            (5..6, true),
            (6..7, true)
        ]
    );
    assert!(matches!(
        results[1].error(),
        Some(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        results[2].error(),
        Some(Error::LeaseNotFound { .. })
    ));
    let keys = crate::suffixes(client.range(&prefix).prefix().await.unwrap().kvs(), &prefix);
    assert_eq!(keys, ["b", "e"]);
}
