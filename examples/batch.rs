//! Bulk writes: many independent puts and deletes as few transactions, within the
//! server's limits, with a result for every operation.
//!
//! Run against a throwaway etcd: `ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run -p etcd-examples --example batch`

use etcd_kv::{Client, TxnOp};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .endpoints(etcd_examples::endpoints())
        .connect()
        .await?;
    let client = client.with_namespace(format!("examples/batch/{}/", std::process::id()));

    // 1. Push operations; the batch fills a transaction up to the server's --max-txn-ops
    //    (128 by default) and --max-request-bytes, then sends it. Writes of distinct keys
    //    may use several transactions in flight at once.
    let mut batch = client.batch().concurrency(4);
    for i in 0..5_000 {
        batch
            .push(TxnOp::put(format!("users/{i:05}"), format!("user {i}")))
            .await?;
    }
    // An operation that could never be sent is refused at once and queues nothing.
    let refused = batch.push(TxnOp::get("users/00001")).await.unwrap_err();
    println!("refused: {refused}");

    // 2. A result per transaction, naming its operations (numbered from 0 as pushed).
    let results = batch.finish().await;
    let applied: u64 = results
        .iter()
        .filter(|r| r.revision().is_some())
        .map(|r| r.ops().end - r.ops().start)
        .sum();
    println!(
        "{applied} of 5000 puts applied in {} transactions (the first: operations {:?} at revision {:?})",
        results.len(),
        results[0].ops(),
        results[0].revision()
    );
    for failed in results.iter().filter(|r| r.error().is_some()) {
        eprintln!(
            "operations {:?} failed: {}",
            failed.ops(),
            failed.error().unwrap()
        );
    }
    assert_eq!(applied, 5000);

    // 3. Deletes batch the same way; a range delete goes alone in its transaction.
    let mut batch = client.batch();
    batch.push(TxnOp::delete("users/00000")).await?;
    batch.push(TxnOp::delete_prefix("users/")).await?;
    let results = batch.finish().await;
    println!(
        "deleted in {} transactions; {} users left",
        results.len(),
        client.range("users/").prefix().count_only().await?.count()
    );
    Ok(())
}
