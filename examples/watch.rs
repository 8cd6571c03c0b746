//! Watch a prefix: see every change, in order, as it happens.
//!
//! Run against a throwaway etcd: `ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run -p etcd-examples --example watch`

use etcd_kv::{Client, EventKind};
use futures_util::StreamExt;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .endpoints(etcd_examples::endpoints())
        .connect()
        .await?;
    // Work in a namespace of our own so the example can run again and again.
    let client = client.with_namespace(format!("examples/watch/{}/", std::process::id()));

    // 1. Open a watch on every key under "jobs/", asking for the previous value of each key.
    //    Awaiting it returns once etcd has confirmed the watch: nothing after this is missed.
    let mut watch = client.watch("jobs/").prefix().prev_kv().await?;

    // 2. Make some changes from another task. A transaction's writes share one revision.
    let writer = client.clone();
    tokio::spawn(async move {
        writer.put("jobs/1", "queued").await?;
        writer.put("jobs/1", "running").await?;
        writer
            .txn()
            .and_then([
                etcd_kv::TxnOp::put("jobs/2", "queued"),
                etcd_kv::TxnOp::delete("jobs/1"),
            ])
            .await?;
        Ok::<_, etcd_kv::Error>(())
    });

    // 3. Each item is one revision with its events. The watch survives lost connections:
    //    it resumes after the last revision it delivered, so nothing is missed or repeated.
    let mut events = 0;
    while let Some(response) = watch.next().await {
        let response = response?;
        for event in response.events() {
            let key = event.kv().key_str()?;
            match event.kind() {
                EventKind::Put => println!(
                    "rev {}: put {key} = {}",
                    response.revision(),
                    event.kv().value_str()?
                ),
                EventKind::Delete => println!(
                    "rev {}: deleted {key} (was {:?})",
                    response.revision(),
                    event.prev_kv().map(|kv| kv.value_str()).transpose()?
                ),
                _ => println!("rev {}: other event on {key}", response.revision()),
            }
            events += 1;
        }
        if events == 4 {
            break; // Dropping the stream cancels the watch on the server.
        }
    }

    // 4. The callback form: no stream to poll, a handle that stops the watch when dropped,
    //    and key ranges added or removed while it runs (each event delivered once, even
    //    where ranges overlap).
    let watching = client
        .watch("jobs/")
        .prefix()
        .on_event(|event| println!("callback: {event}"))
        .await?;
    let alerts = watching.add(client.watch("alerts/").prefix()).await?;
    client.put("alerts/disk", "full").await?;
    client.put("jobs/3", "queued").await?;
    watching.remove(alerts).await; // alerts/ no longer delivered
    client.put("alerts/disk", "ok").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    watching.cancel();

    client.delete("").prefix().await?;
    Ok(())
}
