//! Atomic commits larger than one transaction (`Generations`): readers see the old
//! generation or the new one whole; failed and abandoned commits leave nothing.

use etcd_kv::{Client, Error};
use rand::Rng;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const KEYS: usize = 100_000;

/// How many keys start with `prefix`.
async fn count(client: &Client, prefix: String) -> i64 {
    client
        .range(prefix)
        .prefix()
        .count_only()
        .await
        .unwrap()
        .count()
}

fn entries(tag: &'static str, n: usize) -> impl Iterator<Item = (String, String)> {
    (0..n).map(move |i| (format!("k{i:06}"), format!("{tag}-{i}")))
}

/// What one reader saw at one moment: the view's revision and the generation's tag.
async fn reader(
    client: Client,
    prefix: String,
    stop: Arc<AtomicBool>,
    moments: Arc<AtomicUsize>,
) -> Vec<(i64, String)> {
    let generations = client.generations(prefix);
    let mut seen = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let view = generations.current().await.unwrap().expect("a generation");
        let mut tags = Vec::new();
        for _ in 0..2 {
            let i = rand::thread_rng().gen_range(0..KEYS);
            let kv = view
                .get(format!("k{i:06}"))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("k{i:06} missing at {}", view.revision()));
            let value = kv.value_str().unwrap();
            let (tag, index) = value.split_once('-').unwrap();
            assert_eq!(index, i.to_string());
            tags.push(tag.to_string());
        }
        assert!(tags.iter().all(|t| *t == tags[0]), "a mix: {tags:?}");
        if seen.len() % 50 == 0 {
            assert_eq!(view.count("").await.unwrap(), KEYS as i64, "whole");
        }
        seen.push((view.revision(), tags.swap_remove(0)));
        moments.fetch_add(1, Ordering::Relaxed);
    }
    seen
}

/// A 100,000-key commit replaces another while readers check, at over 1,000 moments,
/// that what they read is one generation whole, the old one before the commit's revision
/// and the new one from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100000_key_commit_is_seen_old_or_new_whole_at_every_moment() {
    let Some((_etcd, client)) = crate::own_etcd().await else {
        return;
    };
    let prefix = "routes/";
    let generations = client.generations(prefix);
    let started = std::time::Instant::now();
    let first = generations.commit(entries("A", KEYS)).await.unwrap();
    eprintln!("first commit of {KEYS} keys: {:?}", started.elapsed());
    assert_eq!(first.keys(), KEYS as u64);

    let stop = Arc::new(AtomicBool::new(false));
    let counted = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let reading = reader(client.clone(), prefix.into(), stop.clone(), counted.clone());
            tokio::spawn(reading)
        })
        .collect();
    let started = std::time::Instant::now();
    let second = generations.commit(entries("B", KEYS)).await.unwrap();
    eprintln!("second commit: {:?}", started.elapsed());
    // Keep reading the new generation for a while, and up to 1,000 moments.
    tokio::time::sleep(Duration::from_millis(300)).await;
    crate::eventually(Duration::from_secs(60), "1,000 moments", || {
        let counted = counted.clone();
        async move { counted.load(Ordering::Relaxed) >= 1000 }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut moments = Vec::new();
    for reader in readers {
        moments.extend(reader.await.unwrap());
    }
    for (revision, tag) in &moments {
        let expected = if *revision < second.revision() {
            "A"
        } else {
            "B"
        };
        assert_eq!(tag, expected, "at revision {revision}");
    }
    let old = moments.iter().filter(|(_, t)| t == "A").count();
    eprintln!(
        "{} moments checked: {old} saw the old generation, {} the new",
        moments.len(),
        moments.len() - old
    );
    assert!(moments.len() >= 1000, "{} moments", moments.len());
    assert!(old > 0 && old < moments.len(), "both generations seen");

    // The old generation is gone; only the current one is listed.
    let old_keys = count(&client, format!("{prefix}gen/{}/", first.generation())).await;
    assert_eq!(old_keys, 0);
    let listed = client
        .range(format!("{prefix}gens/"))
        .prefix()
        .await
        .unwrap();
    assert_eq!(
        crate::suffixes(listed.kvs(), &format!("{prefix}gens/")),
        [second.generation()]
    );
}

/// A commit that loses the race to another fails with `CommitConflict` and removes what it
/// staged; a commit refused while staging (an entry over the request limit) leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_losing_or_failing_commit_leaves_nothing() {
    let (etcd, client, prefix) = crate::setup!("generations-conflict");
    let generations = client.generations(prefix.clone());
    let slow = {
        let generations = generations.clone().concurrency(1);
        tokio::spawn(async move { generations.commit(entries("slow", 20_000)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fast = generations.commit(entries("fast", 10)).await.unwrap();
    let err = slow.await.unwrap().unwrap_err();
    assert!(err.is_commit_conflict(), "{err:?}");
    match &err {
        Error::CommitConflict { current, .. } => {
            assert_eq!(current.as_deref(), Some(fast.generation()));
        }
        other => panic!("{other:?}"),
    }
    let all = count(&client, format!("{prefix}gen/")).await;
    assert_eq!(all, 10, "only the winner's keys");

    let small = crate::builder()
        .endpoint(etcd.endpoint(0))
        .max_request_bytes(10_000)
        .connect()
        .await
        .unwrap();
    let refused = small
        .generations(prefix.clone())
        .commit([("a", "1".to_string()), ("b", "x".repeat(20_000))])
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::InvalidInput { .. }), "{refused:?}");
    let view = generations.current().await.unwrap().unwrap();
    assert_eq!(view.generation(), fast.generation(), "unchanged");
    let all = count(&client, format!("{prefix}gen/")).await;
    assert_eq!(all, 10);
    let listed = client
        .range(format!("{prefix}gens/"))
        .prefix()
        .await
        .unwrap();
    assert_eq!(listed.count(), 1);
}

/// A committer that stops while staging leaves its generation until its lease expires;
/// then garbage collection removes it, and the current generation stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_commit_is_collected_after_its_lease() {
    let (_etcd, client, prefix) = crate::setup!("generations-abandoned");
    let generations = client.generations(prefix.clone()).staging_ttl(2);
    let kept = generations.commit(entries("kept", 10)).await.unwrap();
    let abandoned = {
        let generations = generations.clone().concurrency(1);
        tokio::spawn(async move { generations.commit(entries("gone", 50_000)).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    abandoned.abort();
    let _ = abandoned.await;
    assert_eq!(
        generations.collect_garbage().await.unwrap(),
        0,
        "staging while its lease lives"
    );
    crate::eventually(
        Duration::from_secs(15),
        "the abandoned generation is collected",
        || {
            let generations = generations.clone();
            async move { generations.collect_garbage().await.unwrap() == 1 }
        },
    )
    .await;
    let all = count(&client, format!("{prefix}gen/")).await;
    assert_eq!(all, 10, "only the current generation");
    let view = generations.current().await.unwrap().unwrap();
    assert_eq!(view.generation(), kept.generation());
    assert_eq!(view.count("").await.unwrap(), 10);
}
