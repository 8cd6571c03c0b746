//! Locks: one holder at a time across processes, released by etcd if the holder dies.
//!
//! Run against a throwaway etcd: `ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run -p etcd-examples --example lock`
//!
//! The keys are those of Go's `concurrency.Mutex`, so `etcdctl lock` contends for the same
//! locks.

use etcd_kv::{Client, Error, Session, TxnOp};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .endpoints(etcd_examples::endpoints())
        .connect()
        .await?;
    let client = client.with_namespace(format!("examples/lock/{}/", std::process::id()));

    // 1. Take a lock. It lives as long as its session's lease: if this process died now,
    //    etcd would release it 5 s later. The guard's key is `<name>/<lease id in hex>`.
    let guard = client.lock("report").ttl(5).await?;
    println!("holding {}", String::from_utf8_lossy(guard.key()));

    // 2. Another contender gives up after 300 ms: a typed timeout, and its waiting key
    //    is removed before the error comes back.
    match client
        .lock("report")
        .timeout(Duration::from_millis(300))
        .await
    {
        Err(Error::LockTimeout { name }) => println!("{name}: busy, gave up waiting"),
        other => return Err(format!("expected a timeout, got {other:?}").into()),
    }

    // 3. Fencing: write only while still holding the lock. Every write of the fenced view
    //    carries the lock's ownership condition: if our lease had expired (a long pause,
    //    a partition), it fails with NotOwner and nothing is written.
    let fenced = guard.fenced();
    fenced
        .put("report-status", "written under the lock")
        .await?;
    println!("fenced write applied (fencing token {})", fenced.token());
    // The same condition by hand, in a transaction of one's own:
    let written = client
        .txn()
        .when([guard.is_owner_compare()])
        .and_then([TxnOp::put("report-status", "written under the lock")])
        .await?
        .succeeded();
    println!("fenced transaction applied: {written}");
    guard.release().await?; // or drop it: the release then happens in the background
    match fenced.put("report-status", "too late").await {
        Err(e) if e.is_not_owner() => println!("after the release: {e}"),
        other => return Err(format!("expected NotOwner, got {other:?}").into()),
    }

    // 4. Eight tasks increment a counter with a plain read and write: the lock alone keeps
    //    them from losing updates. They share one session (one lease); tasks of a session
    //    take turns locally, then in etcd's first-come first-served line.
    let session = Session::builder(&client).ttl(10).await?;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, session) = (client.clone(), session.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                client
                    .lock("counter")
                    .session(&session)
                    .try_run(async {
                        let n: u64 = match client.get("count").await? {
                            Some(kv) => kv.value_str().unwrap_or("0").parse().unwrap_or(0),
                            None => 0,
                        };
                        client.put("count", (n + 1).to_string()).await?;
                        Ok(())
                    })
                    .await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let count = client.get("count").await?.ok_or("no counter")?;
    println!("counter = {} (8 tasks x 5 increments)", count.value_str()?);
    if count.value() != b"40" {
        return Err("lost an update".into());
    }

    // 5. with_lock: the short form for "run this under the lock" (kept alive while the
    //    work runs); `?` works inside.
    let answer = client
        .with_lock("report", async {
            client.put("report-status", "42").await?;
            Ok(42)
        })
        .await?;
    println!("with_lock returned {answer}");

    // 6. A lock held at most 3 s, even if this process hangs (etcetra's
    //    `with_lock(name, ttl=3)`): its lease is no longer refreshed once taken.
    let guard = client
        .lock("report")
        .max_hold(Duration::from_secs(3))
        .await?;
    println!(
        "{} held for at most 3 s",
        String::from_utf8_lossy(guard.key())
    );
    guard.release().await?;

    // 7. Work that outlives the max hold is cancelled, and the error says so (the lock is
    //    no longer exclusive past the deadline: the work must not go on).
    let late = client
        .lock("report")
        .max_hold(Duration::from_secs(2))
        .run(tokio::time::sleep(Duration::from_secs(10)))
        .await;
    match late {
        Err(e) if e.is_max_hold_exceeded() => println!("{e}"), // lock "report" was held past...
        other => println!("unexpected: {other:?}"),
    }

    session.close().await?; // revokes the lease: anything still held is released
    client.delete("").prefix().await?;
    Ok(())
}
