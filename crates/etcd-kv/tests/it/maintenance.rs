//! Snapshots (taken under write load, restored with etcd's own tool into a fresh server)
//! and hashes.

use crate::key;
use etcd_kv::{Client, Error};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WRITERS: usize = 4;

#[tokio::test]
async fn a_snapshot_under_write_load_restores_to_the_keyspace_at_its_revision() {
    let Some(source) = xtask::testing::start(xtask::testing::builder()) else {
        return;
    };
    let client = Client::connect(source.endpoint(0)).await.expect("connect");
    let p = xtask::testing::unique_prefix("snapshot");
    for i in 0..100 {
        client
            .put(key(&p, format!("seed/{i:03}")), "seed")
            .await
            .unwrap();
    }

    // Four writers, a few seconds at most, until the snapshot is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (client, p) = (client.clone(), p.clone());
            let (stop, written) = (stop.clone(), written.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(8) {
                    let k = key(&p, format!("w{w}/{:03}", n % 500));
                    client
                        .put(k, format!("{w}-{n}"))
                        .await
                        .expect("a writer's put");
                    n += 1;
                    written.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = written.load(Ordering::Relaxed);
    let started = Instant::now();

    let path = source.base_dir().join("snapshot.db");
    let mut file = tokio::fs::File::create(&path)
        .await
        .expect("create the file");
    let info = client.snapshot_to(&mut file).await.expect("a snapshot");
    file.sync_all().await.expect("sync");
    drop(file);
    let took = started.elapsed();
    let during = written.load(Ordering::Relaxed) - before;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("a writer");
    }
    let after = written.load(Ordering::Relaxed);
    assert!(
        before > 0 && after > before,
        "writes went on: {before} then {after}"
    );
    eprintln!(
        "snapshot: {} bytes in {took:?}, revisions {}..={}, {before} puts before it, {during} during it",
        info.size(),
        info.revision(),
        info.revision_after()
    );

    let on_disk = std::fs::metadata(&path).expect("the file").len();
    assert_eq!(info.size(), on_disk);
    assert_eq!(info.db_size() + 32, on_disk);
    assert_eq!(info.db_size() % 4096, 0, "whole bbolt pages");
    assert!(info.db_size() > 64 * 1024, "several messages of 32 KiB");
    assert!(
        0 < info.revision() && info.revision() <= info.revision_after(),
        "{info:?}"
    );
    let bytes = std::fs::read(&path).expect("read the snapshot");
    etcd_kv::verify_snapshot(&bytes).expect("the file verifies");
    let mut corrupt = bytes.clone();
    corrupt[bytes.len() / 2] ^= 0x40;
    let err = etcd_kv::verify_snapshot(&corrupt).unwrap_err();
    assert!(err.is_checksum(), "a flipped byte: {err:?}");

    // etcd's own tool checks the checksum and restores the data into a fresh server.
    let builder = xtask::testing::builder().restore_snapshot(&path);
    let restored = xtask::testing::start(builder).expect("a server on the restored data");
    let copy = Client::connect(restored.endpoint(0))
        .await
        .expect("connect");
    let got = copy.range(p.as_str()).prefix().await.unwrap();
    // The restored store ends at the snapshot's revision: somewhere between the two the
    // snapshot reports (exactly its revision when no write happened meanwhile).
    let r = got.revision();
    assert!(
        info.revision() <= r && r <= info.revision_after(),
        "restored at {r}, snapshot said {info:?}"
    );
    let want = client.range(p.as_str()).prefix().revision(r).await.unwrap();
    assert!(
        want.count() > 100,
        "the writers' keys are in it: {}",
        want.count()
    );
    assert_eq!(got.count(), want.count());
    assert!(
        got.kvs() == want.kvs(),
        "the restored keyspace differs from the source's at revision {r}"
    );
    // And the source has moved on since.
    let now = client.range(p.as_str()).prefix().await.unwrap();
    assert!(now.revision() > r);
}

#[tokio::test]
async fn hashes() {
    let Some((etcd, client)) = crate::connect().await else {
        return;
    };
    let h = client.hash().await.expect("hash");
    assert!(h.revision() > 0 && h.member_id() != 0, "{h:?}");
    // The gateway has a route for HashKV from etcd 3.5.10 on; gRPC has the method.
    let gateway_lacks_it = !xtask::testing::grpc_transport() && !etcd.version_at_least(&[3, 5, 10]);
    match client.hash_kv(0).await {
        Ok(kv) => {
            assert!(!gateway_lacks_it);
            assert!(kv.revision() > 0, "{kv:?}");
        }
        Err(Error::Unsupported(why)) => {
            assert!(gateway_lacks_it, "{why}");
            assert!(why.contains("hashkv"), "{why}");
        }
        Err(e) => panic!("hash_kv: {e:?}"),
    }
}
