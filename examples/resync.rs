//! A watch that heals after a compaction: keep an exact copy of a prefix even when the
//! history the watch needs to resume has been compacted away.
//!
//! It compacts the store's history: run it against a throwaway etcd,
//! `ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run -p etcd-examples --example resync`

use etcd_kv::Client;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .endpoints(etcd_examples::endpoints())
        .connect()
        .await?;
    let client = client.with_namespace(format!("examples/resync/{}/", std::process::id()));

    // 1. Start the copy from a listing, and watch from the revision after it. With
    //    `resync_on_compaction()` the watch remembers each key's mod revision (not values).
    for i in 0..100 {
        client.put(format!("jobs/{i:03}"), "queued").await?;
    }
    let listing = client.range("jobs/").prefix().await?;
    let mut copy: Map = listing
        .kvs()
        .iter()
        .map(|kv| (kv.key().to_vec(), kv.value().to_vec()))
        .collect();
    let mut watch = client
        .watch("jobs/")
        .prefix()
        .start_revision(listing.revision() + 1)
        .resync_on_compaction()
        .await?;

    // 2. Fall far behind: 2,000 changes while nobody reads the watch (the client pauses
    //    a watch whose consumer does not keep up), then a compaction of all history.
    for i in 0..2000 {
        let key = format!("jobs/{:03}", (i * 7) % 150);
        if i % 4 == 3 {
            client.delete(key).await?;
        } else {
            client.put(key, format!("done, change {i}")).await?;
        }
    }
    let head = client.put("marker", "x").await?.revision();
    client.compact(head).await?;
    println!("2,000 changes made and history compacted at revision {head}");

    // 3. Read on. A plain watch would now end with `Error::Compacted`; this one lists the
    //    range and yields the difference as resync events, then goes on live.
    let expected = client.range("jobs/").prefix().await?;
    let (mut live, mut resync_puts, mut resync_deletes) = (0, 0, 0);
    while copy.len() != expected.kvs().len()
        || expected
            .kvs()
            .iter()
            .any(|kv| copy.get(kv.key()).map(Vec::as_slice) != Some(kv.value()))
    {
        let response = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await?
            .ok_or("the watch ended")??;
        for event in response.events() {
            match (response.is_resync(), event.is_put()) {
                (true, true) => resync_puts += 1,
                (true, false) => resync_deletes += 1,
                (false, _) => live += 1,
            }
            if event.is_put() {
                copy.insert(event.key().to_vec(), event.kv().value().to_vec());
            } else {
                copy.remove(event.key());
            }
        }
    }
    println!(
        "copy exact: {} keys after {live} live events and a resync of {resync_puts} puts \
         and {resync_deletes} deletes",
        copy.len()
    );
    assert!(resync_puts + resync_deletes > 0, "the watch resynced");

    // 4. The watch is live again.
    client.put("jobs/new", "queued").await?;
    let response = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await?
        .ok_or("the watch ended")??;
    println!(
        "live again: {} at revision {}",
        response.events()[0],
        response.revision()
    );
    Ok(())
}
