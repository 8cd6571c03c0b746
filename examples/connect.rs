//! Connect to etcd and check what you are talking to.
//!
//! Run against a throwaway etcd: `ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run -p etcd-examples --example connect`

use etcd_kv::{Client, RetryConfig};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoints = etcd_examples::endpoints();

    // 1. The quick way: one endpoint, default settings. `connect` fails unless it answers.
    let client = Client::connect(endpoints[0].clone()).await?;
    println!(
        "etcd {} at {}",
        client.server_version().await?,
        endpoints[0]
    );

    // 2. The configurable way: every endpoint of the cluster (requests fail over between
    //    them), timeouts, a retry policy for requests that are safe to repeat, and a
    //    namespace that is prefixed to every key this client sends.
    let client = Client::builder()
        .endpoints(endpoints)
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(5))
        .retry(RetryConfig::default().max_retries(3))
        .namespace(format!("examples/connect/{}/", std::process::id()))
        .connect()
        .await?;

    // 3. Ask the member about itself and the cluster.
    let status = client.status().await?;
    println!(
        "member {:x}: version {}, leader {:x}, raft index {}, revision {}, db {} bytes",
        status.member_id(),
        status.version(),
        status.leader(),
        status.raft_index(),
        status.revision(),
        status.db_size()
    );
    for member in client.member_list().await? {
        println!(
            "  member {:x} {:?} serves {:?}",
            member.id(),
            member.name(),
            member.client_urls()
        );
    }

    // 4. A `Client` is cheap to clone and every method takes `&self`: share it between tasks.
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.put(format!("task/{i}"), "done").await })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let written = client.range("task/").prefix().count_only().await?.count();
    println!("{written} tasks wrote through one shared client");

    // 5. Follow the cluster's membership: given one member, the client learns the client
    //    URLs of the voting members from `member_list`, now (`sync_endpoints`) and every
    //    30 s (`auto_sync`), so that members added later are used and removed ones are no
    //    longer tried. `set_endpoints` replaces the list by hand.
    let following = Client::builder()
        .endpoint(etcd_examples::endpoints()[0].clone())
        .auto_sync(Duration::from_secs(30))
        .build()?;
    let members = following.sync_endpoints().await?;
    println!("the cluster's members serve clients at {members:?}");
    assert!(!members.is_empty());

    // Clean up: everything of this run is under the namespace.
    client.delete("").prefix().await?;
    Ok(())
}
