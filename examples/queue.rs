//! A work queue: many producers, many consumers, every item delivered to exactly one
//! consumer, urgent items first.
//!
//! Run against a throwaway etcd: `ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run -p etcd-examples --example queue`

use etcd_kv::{Client, Queue};
use std::collections::HashSet;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .endpoints(etcd_examples::endpoints())
        .connect()
        .await?;
    let client = client.with_namespace(format!("examples/queue/{}/", std::process::id()));
    let jobs = Queue::new(&client, "jobs");

    // 1. Items pop by priority (higher first), then in push order.
    jobs.push("resize photo 1").await?;
    jobs.push("resize photo 2").await?;
    jobs.push_with_priority("send password reset", 10).await?;
    for _ in 0..3 {
        println!("popped: {}", String::from_utf8_lossy(&jobs.pop().await?));
    }

    // 2. An empty queue: pop waits (on a watch) for a push; pop_timeout gives up.
    let empty = jobs.pop_timeout(Duration::from_millis(200)).await?;
    println!("nothing after 200 ms: {:?}", empty);

    // 3. Two producers and three consumers. Each item is taken by the transaction that
    //    deletes it, so no two consumers ever get the same one.
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let jobs = jobs.clone();
            tokio::spawn(async move {
                // push_all: many items in one transaction, in order.
                let batch: Vec<String> = (0..50).map(|n| format!("job {p}-{n}")).collect();
                jobs.push_all(batch).await
            })
        })
        .collect();
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let jobs = Queue::new(&client, "jobs");
            tokio::spawn(async move {
                let mut done = Vec::new();
                // Stop once the queue stays empty for half a second.
                while let Some(job) = jobs.pop_timeout(Duration::from_millis(500)).await? {
                    done.push(job);
                }
                Ok::<_, etcd_kv::Error>(done)
            })
        })
        .collect();
    for producer in producers {
        producer.await??;
    }
    let mut all = HashSet::new();
    for (i, consumer) in consumers.into_iter().enumerate() {
        let done = consumer.await??;
        println!("consumer {i} did {} jobs", done.len());
        for job in done {
            if !all.insert(job) {
                return Err("a job was delivered twice".into());
            }
        }
    }
    println!("{} distinct jobs done", all.len());
    if all.len() != 100 {
        return Err("a job was lost".into());
    }
    Ok(())
}
