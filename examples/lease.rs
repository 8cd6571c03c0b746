//! Leases: keys that disappear when their owner stops refreshing them.
//!
//! Run against a throwaway etcd: `ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run -p etcd-examples --example lease`

use etcd_kv::Client;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .endpoints(etcd_examples::endpoints())
        .connect()
        .await?;
    let client = client.with_namespace(format!("examples/lease/{}/", std::process::id()));

    // 1. A plain lease: granted for 5 seconds, with a key attached. The handle refreshes,
    //    queries and revokes it without passing its ID around.
    let lease = client.grant_lease(5).await?;
    client.put("temp", "gone soon").lease(lease.id()).await?;
    println!("{}", lease.time_to_live().await?); // lease 7587...: 4s left of 5s, keys: temp
    println!("refreshed: {} s", lease.keep_alive_once().await?);
    lease.revoke().await?; // revoking deletes the key now
    assert!(client.get("temp").await?.is_none());

    // 2. A kept lease: a background task refreshes it every TTL/3, so the key lives as long as
    //    this process does. This is how services register themselves.
    let keeper = client.lease_keeper(2).await?;
    client
        .put("services/api", "10.0.0.7:8080")
        .lease(keeper.id())
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "after 3 s the registration is still there: {:?}",
        client.get("services/api").await?.is_some()
    );

    // 3. If the lease is lost (revoked by someone else, expired while etcd was unreachable),
    //    the keeper says so; here we revoke it from "another" client to see it happen.
    let lost = keeper.lost();
    client.clone().lease_revoke(keeper.id()).await?;
    println!("keeper reports: {}", lost.await);

    // 4. Dropping a keeper stops the refreshes (the lease then expires); `revoke()` ends it now.
    let keeper = client.lease_keeper(10).await?;
    keeper.revoke().await?;
    Ok(())
}
