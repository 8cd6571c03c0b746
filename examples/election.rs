//! Leader election: one leader at a time, the next candidate takes over when it resigns or
//! dies, and anyone can observe who leads, and when nobody does.
//!
//! Run against a throwaway etcd: `ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run -p etcd-examples --example election`
//!
//! The keys are those of Go's `concurrency.Election`: `etcdctl elect -l <name>` shows the
//! same leader.

use etcd_kv::{Client, Election};
use futures_util::StreamExt;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .endpoints(etcd_examples::endpoints())
        .connect()
        .await?;
    let client = client.with_namespace(format!("examples/election/{}/", std::process::id()));
    let election = Election::new(&client, "scheduler");

    // 1. Observe: the current leader, then every change of leader or of its value.
    let mut observer = election.observe();
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(leader) = observer.next().await {
            let leader = leader?;
            println!(
                "observed leader: {}",
                leader.value_str().unwrap_or("<binary>")
            );
            seen.push(leader.value().to_vec());
            if seen.len() == 4 {
                break; // dropping the stream closes its watch
            }
        }
        Ok::<_, etcd_kv::Error>(seen)
    });

    // ... or with the periods without a leader: `None` when nobody leads.
    let mut changes = election.leader_changes();

    // 2. Three candidates campaign; awaiting a campaign returns once elected. Each runs on
    //    a session of its own with a 5 s TTL: if its process died, the next would take over
    //    within 5 s.
    let node_a = election.campaign("node-a").ttl(5).await?;
    println!("node-a leads (term {})", node_a.create_revision());
    let candidates: Vec<_> = ["node-b", "node-c"]
        .into_iter()
        .map(|name| {
            let election = election.clone();
            tokio::spawn(async move { election.campaign(name).ttl(5).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // 3. The leader changes its advertised value, then steps down.
    node_a.proclaim("node-a (draining)").await?;
    node_a.resign().await?;

    // 4. Exactly one of the others is elected. It checks it still leads before acting,
    //    and resigns in turn so that the last one takes over.
    let mut remaining = candidates;
    let first = loop {
        if let Some(i) = remaining.iter().position(|c| c.is_finished()) {
            break remaining.remove(i).await??;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let leader = election.leader().await?.ok_or("no leader")?;
    println!(
        "now leading: {} (is_leader: {})",
        leader.value_str()?,
        first.is_leader().await?
    );
    first.resign().await?;
    let last = remaining.remove(0).await??;
    last.resign().await?;

    let seen = watcher.await??;
    if seen.len() != 4 || seen[1] != b"node-a (draining)" {
        return Err(format!("unexpected leaders: {seen:?}").into());
    }

    // 5. The last one resigned with nobody in line: the changes end with `None`.
    let mut states = Vec::new();
    while let Some(state) = tokio::time::timeout(Duration::from_secs(5), changes.next()).await? {
        let state = state?;
        match &state {
            Some(leader) => println!("leader change: {}", leader.value_str()?),
            None => println!("leader change: nobody leads"),
        }
        let vacant_after_a_leader = state.is_none() && !states.is_empty();
        states.push(state);
        if vacant_after_a_leader {
            break;
        }
    }
    if !states.iter().any(Option::is_some) || states.last() != Some(&None) {
        return Err(format!("unexpected leader changes: {states:?}").into());
    }
    client.delete("").prefix().await?;
    Ok(())
}
