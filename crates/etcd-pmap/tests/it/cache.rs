//! A typed table cache: decoded reads, read your own commit, consistent reads, typed
//! updates from a snapshot.

use crate::setup;
use etcd_pmap::{MapStringJson, Table, TableUpdate};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_cache_reads_typed_rows_and_streams_typed_updates() {
    let db = setup!("cache");
    let t: MapStringJson<Vec<u32>> = Table::new(1, "lists");
    let other: MapStringJson<Vec<u32>> = Table::new(2, "other");
    let txn = db.begin_write();
    for i in 0..20u32 {
        t.put(&txn, &format!("k{i:02}"), &vec![i]).await.unwrap();
    }
    other.put(&txn, &"x".into(), &vec![9]).await.unwrap();
    txn.commit().await.unwrap();

    let cache = t.cache(&db).await.unwrap();
    assert_eq!(*cache.len().unwrap(), 20);
    assert_eq!(
        cache.get(&"k03".into()).unwrap().into_inner(),
        Some(vec![3])
    );
    assert!(
        cache.get(&"x".into()).unwrap().is_none(),
        "another table's row"
    );
    let rows = cache.range(&"k10".into(), &"k12".into()).unwrap();
    assert_eq!(
        rows.into_inner(),
        vec![("k10".to_string(), vec![10]), ("k11".to_string(), vec![11])]
    );
    let (snapshot, mut updates) = cache.snapshot_and_subscribe().unwrap();
    let mut mirror: BTreeMap<String, Vec<u32>> = snapshot.into_inner().into_iter().collect();

    // Read your own commit.
    let txn = db.begin_write();
    t.put(&txn, &"k03".into(), &vec![3, 3]).await.unwrap();
    t.remove(&txn, &"k04".into()).await.unwrap();
    let committed = txn.commit().await.unwrap();
    let row = cache
        .get_at_least(&"k03".into(), committed.revision())
        .await
        .unwrap();
    assert!(row.revision() >= committed.revision());
    assert_eq!(row.into_inner(), Some(vec![3, 3]));
    assert_eq!(
        cache.get(&"k04".into()).unwrap().into_inner(),
        None,
        "removed in the same commit, seen together"
    );

    // Linearizable, after a write through another path.
    db.transact(|txn| {
        let t = t.clone();
        async move { t.put(&txn, &"new".into(), &vec![42]).await }
    })
    .await
    .unwrap();
    let row = cache.consistent_get(&"new".into()).await.unwrap();
    assert_eq!(row.into_inner(), Some(vec![42]));

    // Typed updates: replayed on the snapshot they give the cache's rows.
    while mirror.len() != 20 || !mirror.contains_key("new") {
        let update = tokio::time::timeout(Duration::from_secs(10), updates.next())
            .await
            .expect("an update")
            .expect("open")
            .expect("decoded");
        let TableUpdate::Commit { changes, revision } = update else {
            panic!("unexpected reset");
        };
        for change in changes {
            assert_eq!(change.revision, revision);
            match change.new {
                Some(new) => {
                    assert_eq!(mirror.insert(change.key, new), change.old);
                }
                None => assert_eq!(mirror.remove(&change.key), change.old),
            }
        }
    }
    assert_eq!(
        mirror.into_iter().collect::<Vec<_>>(),
        cache.rows_now().unwrap().into_inner()
    );
    assert_eq!(cache.consistent_rows().await.unwrap().len(), 20);

    // A row that does not decode is an error on the read that meets it.
    db.client()
        .put(t.raw_key(&"bad".into()), "not json")
        .await
        .unwrap();
    let bad = cache.consistent_get(&"bad".into()).await;
    assert!(
        matches!(bad, Err(etcd_pmap::Error::Decode { .. })),
        "{bad:?}"
    );
    assert!(cache.get(&"k03".into()).is_ok(), "other rows still read");
}
