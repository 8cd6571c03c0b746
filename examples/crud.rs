//! Create, read, update and delete keys: single keys, ranges and prefixes.
//!
//! Run against a throwaway etcd: `ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run -p etcd-examples --example crud`

use etcd_kv::{Client, SortOrder, SortTarget};
use futures_util::TryStreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .endpoints(etcd_examples::endpoints())
        .connect()
        .await?;
    // Work in a namespace of our own so the example can run again and again: keys below
    // are written as "examples/crud/<pid>/..." and read back without that prefix.
    let client = client.with_namespace(format!("examples/crud/{}/", std::process::id()));

    // 1. Set and get. Keys and values are bytes: &str, String, &[u8], Vec<u8>, Bytes...
    let put = client.put("fruit/apple", "red").await?;
    println!("put fruit/apple at revision {}", put.revision());
    let apple = client
        .get("fruit/apple")
        .await?
        .ok_or("fruit/apple is missing")?;
    println!(
        "get {} = {} (version {})",
        apple.key_str()?,
        apple.value_str()?,
        apple.version()
    );
    client.put("fruit/banana", "yellow").await?;
    client.put("fruit/cherry", "dark red").await?;
    client
        .put(b"bytes/\xff\x00".as_slice(), vec![1u8, 2, 3])
        .await?;

    // 2. Update, returning the previous value.
    let update = client.put("fruit/apple", "green").prev_kv().await?;
    if let Some(prev) = update.prev_kv() {
        println!("fruit/apple was {}, now green", prev.value_str()?);
    }

    // 3. Read a prefix: every key starting with "fruit/", newest change first.
    let fruit = client
        .range("fruit/")
        .prefix()
        .sort(SortTarget::Mod, SortOrder::Descend)
        .await?;
    for kv in fruit.kvs() {
        println!("  {} = {}", kv.key_str()?, kv.value_str()?);
    }

    // 4. Read a range [start, end), at most 1 key: `more` says the limit cut it short.
    let page = client.range("fruit/a").end("fruit/c").limit(1).await?;
    println!(
        "[fruit/a, fruit/c): {} of {} keys, more: {}",
        page.kvs().len(),
        page.count(),
        page.more()
    );

    // 5. Read the past: the value as of the first put.
    let then = client.range("fruit/apple").revision(put.revision()).await?;
    println!(
        "at revision {}: fruit/apple = {}",
        put.revision(),
        then.kvs()[0].value_str()?
    );

    // 6. Scan any number of keys page by page, at one consistent revision.
    let mut keys = client
        .scan("")
        .prefix()
        .page_size(2)
        .keys_only()
        .into_stream();
    while let Some(kv) = keys.try_next().await? {
        println!("  scanned {}", kv.key().escape_ascii());
    }

    // 7. Delete one key, returning what it held; then a whole prefix.
    let deleted = client.delete("fruit/cherry").prev_kv().await?;
    for kv in deleted.prev_kvs() {
        println!("deleted {} (was {})", kv.key_str()?, kv.value_str()?);
    }
    let deleted = client.delete("fruit/").prefix().await?;
    println!("deleted {} more fruit", deleted.deleted());
    if client.get("fruit/apple").await?.is_some() {
        return Err("fruit/apple should be gone".into());
    }

    // Clean up: everything of this run is under the namespace.
    client.delete("").prefix().await?;
    Ok(())
}
