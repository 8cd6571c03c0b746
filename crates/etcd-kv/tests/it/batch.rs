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
async fn bad_operations_are_refused_and_queue_nothing_and_a_failed_transaction_is_reported() {
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
    let big = batch
        .push(TxnOp::put(format!("{prefix}big"), "x".repeat(10_000)))
        .await
        .unwrap_err();
    assert!(matches!(big, Error::InvalidInput { .. }), "{big:?}");
    assert_eq!(
        batch
            .push(TxnOp::put(format!("{prefix}b"), "2"))
            .await
            .unwrap(),
        1
    );
    // A lease that does not exist fails its transaction (ops 2 and 3) only.
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
        [(0..2, true), (2..4, false), (4..5, true), (5..6, true)]
    );
    assert!(matches!(
        results[1].error(),
        Some(Error::LeaseNotFound { .. })
    ));
    let keys = crate::suffixes(client.range(&prefix).prefix().await.unwrap().kvs(), &prefix);
    assert_eq!(keys, ["b", "e"]);
}
