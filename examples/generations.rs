//! An atomic commit larger than one transaction: replace a whole data set of 20,000 keys
//! at once, while readers see the old one or the new one, never a mix.
//!
//! Run against a throwaway etcd: `ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run -p etcd-examples --example generations`

use etcd_kv::Client;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .endpoints(etcd_examples::endpoints())
        .connect()
        .await?;
    let client = client.with_namespace(format!("examples/generations/{}/", std::process::id()));
    let routes = client.generations("routes/");

    // 1. The first commit: 20,000 keys staged under a fresh generation, then made current
    //    in one transaction (etcd allows 128 operations in one).
    let started = Instant::now();
    let v1 = routes
        .commit((0..20_000).map(|i| (format!("r{i:05}"), format!("v1 backend-{}", i % 5))))
        .await?;
    println!(
        "generation {} ({} keys) current at revision {} after {:?}",
        v1.generation(),
        v1.keys(),
        v1.revision(),
        started.elapsed()
    );

    // 2. A reader takes a view: the pointer and the keys at one revision.
    let before = routes.current().await?.ok_or("no generation")?;

    // 3. Replace everything: until the final transaction, readers see v1 whole.
    let v2 = routes
        .commit((0..20_000).map(|i| (format!("r{i:05}"), format!("v2 backend-{}", i % 3))))
        .await?;
    let after = routes.current().await?.ok_or("no generation")?;
    let old = before.get("r00042").await?.ok_or("missing")?;
    let new = after.get("r00042").await?.ok_or("missing")?;
    println!(
        "r00042 in the view at {}: {:?}; in the view at {}: {:?}",
        before.revision(),
        old.value_str()?,
        after.revision(),
        new.value_str()?
    );
    assert!(old.value_str()?.starts_with("v1") && new.value_str()?.starts_with("v2"));
    println!(
        "{} keys in generation {}",
        after.count("").await?,
        v2.generation()
    );

    // 4. A commit that loses the race to another fails typed and leaves nothing behind.
    let (a, b) = tokio::join!(
        routes.commit((0..2_000).map(|i| (format!("r{i:05}"), "a"))),
        routes.commit((0..2_000).map(|i| (format!("r{i:05}"), "b"))),
    );
    for result in [a, b] {
        match result {
            Ok(c) => println!("commit {} won", c.generation()),
            Err(e) if e.is_commit_conflict() => println!("lost the race: {e}"),
            Err(e) => return Err(e.into()),
        }
    }
    println!(
        "{} generations listed",
        client
            .range("routes/gens/")
            .prefix()
            .count_only()
            .await?
            .count()
    );
    Ok(())
}
