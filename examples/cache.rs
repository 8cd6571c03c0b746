//! Cache a prefix: reads at memory speed, never stale beyond a revision you choose.
//!
//! Run against a throwaway etcd: `ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run -p etcd-examples --example cache`

use etcd_kv::{CacheUpdate, Client};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .endpoints(etcd_examples::endpoints())
        .connect()
        .await?;
    // Work in a namespace of our own so the example can run again and again.
    let client = client.with_namespace(format!("examples/cache/{}/", std::process::id()));
    client.put("config/mode", "active").await?;
    client.put("config/replicas", "3").await?;

    // 1. List "config/" at one revision, then follow its watch. Awaiting returns once the
    //    list is in; the cache then applies each revision whole.
    let cache = client.cache("config/").await?;
    println!(
        "cached {} keys at revision {}",
        *cache.len()?,
        cache.revision()
    );

    // 2. Plain reads: memory speed, the keyspace at the cache's revision (returned too).
    let mode = cache.get("config/mode")?;
    println!(
        "mode = {:?} (revision {})",
        mode.as_ref().map(|kv| kv.value_str()),
        mode.revision()
    );

    // 3. Subscribe from a snapshot: nothing falls between the two.
    let (snapshot, mut updates) = cache.snapshot_and_subscribe()?;
    println!("snapshot of {} keys", snapshot.kvs().len());

    // 4. Read your own write: wait until the cache has applied the put's revision.
    let put = client.put("config/mode", "draining").await?;
    let mode = cache.get_at_least("config/mode", put.revision()).await?;
    assert_eq!(mode.as_ref().map(|kv| kv.value()), Some(&b"draining"[..]));
    println!(
        "after my put: mode = draining at revision {}",
        mode.revision()
    );

    // 5. Linearizable: sees every write acknowledged before the call, from any client.
    let other = client.clone();
    other.delete("config/replicas").await?;
    let replicas = cache.consistent_get("config/replicas").await?;
    assert!(replicas.is_none());
    println!(
        "consistent read: replicas gone at revision {}",
        replicas.revision()
    );

    // 6. The updates of each applied revision, with the values they replaced.
    for _ in 0..2 {
        if let Some(update) = updates.next().await {
            match update? {
                CacheUpdate::Revision(revision) => {
                    for event in revision.events() {
                        println!(
                            "rev {}: {:?} {} (was {:?})",
                            revision.revision(),
                            event.kind(),
                            event.kv().key_str()?,
                            event.prev_kv().map(|kv| kv.value_str())
                        );
                    }
                }
                CacheUpdate::Reset(snapshot) => {
                    println!("re-listed at revision {}", snapshot.revision())
                }
                _ => {}
            }
        }
    }
    println!("cache size: {} bytes", cache.size_bytes());
    Ok(())
}
