//! The same client over native gRPC (cargo feature `grpc` of etcd-kv): one HTTP/2
//! connection per endpoint carries every call, watch and keep-alive.
//!
//! Run against a throwaway etcd: `ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run -p etcd-examples --example grpc`

use etcd_kv::{Client, Protocol};
use futures_util::StreamExt;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let namespace = format!("examples/grpc/{}/", std::process::id());
    // 1. Pick the protocol on the builder; everything else is as over the gateway.
    let client = Client::builder()
        .endpoints(etcd_examples::endpoints())
        .protocol(Protocol::Grpc)
        .namespace(namespace.as_str())
        .connect()
        .await?;
    println!("etcd {} over gRPC", client.server_version().await?);

    // 2. Calls: the same types and errors as over the gateway.
    client.put("config/mode", "fast").await?;
    let mode = client.get("config/mode").await?.expect("just written");
    println!(
        "config/mode = {} (revision {})",
        mode.value_str()?,
        mode.mod_revision()
    );

    // 3. A watch and a lease share the client's one HTTP/2 connection.
    let mut watch = client.watch("config/").prefix().await?;
    let keeper = client.lease_keeper(10).await?;
    client
        .put("config/owner", "example")
        .lease(keeper.id())
        .await?;
    let response = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await?
        .expect("the watch goes on")?;
    for event in response.events() {
        println!(
            "watched {:?} {} = {}",
            event.kind(),
            event.kv().key_str()?,
            event.kv().value_str()?
        );
    }

    // 4. The gateway and gRPC see the same data: a gateway client reads what gRPC wrote.
    let gateway = Client::builder()
        .endpoints(etcd_examples::endpoints())
        .namespace(namespace.as_str())
        .connect()
        .await?;
    let owner = gateway
        .get("config/owner")
        .await?
        .expect("written over gRPC");
    assert_eq!(owner.lease(), keeper.id());
    println!("the gateway reads config/owner, lease {:x}", owner.lease());

    let id = keeper.id();
    drop(keeper);
    client.lease_revoke(id).await?;
    client.delete("").prefix().await?;
    Ok(())
}
