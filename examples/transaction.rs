//! Transactions: compare, then a success or a failure branch, applied atomically.
//!
//! Run against a throwaway etcd: `ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run -p etcd-examples --example transaction`

use etcd_kv::{Client, Compare, TxnOp};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .endpoints(etcd_examples::endpoints())
        .connect()
        .await?;
    // Work in a namespace of our own so the example can run again and again.
    let client = client.with_namespace(format!("examples/transaction/{}/", std::process::id()));

    // 1. Create a key only if it does not exist yet: version 0 means "absent".
    let created = client
        .txn()
        .when([Compare::version("account/alice").eq(0)])
        .and_then([TxnOp::put("account/alice", "100")])
        .await?;
    println!("created alice's account: {}", created.succeeded());

    // 2. Compare-and-swap: transfer 30 from alice to bob only if alice still has 100.
    //    Both puts are applied together at one revision, or neither is.
    let transfer = client
        .txn()
        .when([Compare::value("account/alice").eq("100")])
        .and_then([
            TxnOp::put("account/alice", "70"),
            TxnOp::put("account/bob", "30"),
        ])
        .or_else([TxnOp::get("account/alice")])
        .await?;
    println!(
        "transfer applied: {} at revision {}",
        transfer.succeeded(),
        transfer.revision()
    );

    // 3. Retry it: alice no longer has 100, so the failure branch runs instead and its
    //    answers say why: the current balance, read in the same atomic step.
    let again = client
        .txn()
        .when([Compare::value("account/alice").eq("100")])
        .and_then([
            TxnOp::put("account/alice", "70"),
            TxnOp::put("account/bob", "30"),
        ])
        .or_else([TxnOp::get("account/alice")])
        .await?;
    if !again.succeeded() {
        let current = again.responses()[0].as_range().ok_or("expected a read")?;
        println!(
            "second transfer refused: alice has {}",
            current.kvs()[0].value_str()?
        );
    } else {
        return Err("the second transfer should have been refused".into());
    }

    // 4. Optimistic concurrency: read, compute, and write back only if nobody changed the
    //    key meanwhile (its mod revision is unchanged); on conflict, retry from the fresh
    //    value the failure branch returned.
    let mut seen = client
        .get("account/bob")
        .await?
        .ok_or("bob has no account")?;
    loop {
        let balance: i64 = seen.value_str()?.parse()?;
        let result = client
            .txn()
            .when([Compare::mod_revision("account/bob").eq(seen.mod_revision())])
            .and_then([TxnOp::put("account/bob", (balance + 5).to_string())])
            .or_else([TxnOp::get("account/bob")])
            .await?;
        if result.succeeded() {
            println!("bob now has {}", balance + 5);
            break;
        }
        seen = result.responses()[0]
            .as_range()
            .ok_or("expected a read")?
            .kvs()[0]
            .clone();
    }

    // 5. Every answer is typed: here a read and a delete, in the order they were given.
    let result = client
        .txn()
        .and_then([
            TxnOp::get_prefix("account/"),
            client.delete("account/").prefix().prev_kv().into(),
        ])
        .await?;
    let accounts = result.responses()[0].as_range().ok_or("expected a read")?;
    let deleted = result.responses()[1]
        .as_delete()
        .ok_or("expected a delete")?;
    println!(
        "closed {} of {} accounts in one transaction",
        deleted.deleted(),
        accounts.count()
    );
    Ok(())
}
