//! Watching a table: typed changes with old and new values.

use crate::setup;
use etcd_pmap::{Change, Error, MapStringJson, MapStringString, Table};
use futures_util::StreamExt;
use std::time::Duration;

async fn next<S: futures_util::Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a change within 10 s")
        .expect("the watch goes on")
}

#[tokio::test]
async fn a_table_watch_yields_typed_changes() {
    let db = setup!("watch");
    let t: MapStringJson<Vec<u32>> = Table::new(1, "lists");
    let other: MapStringString = Table::new(2, "other");
    let mut changes = t.watch(&db).await.unwrap();

    let txn = db.begin_write();
    t.put(&txn, &"a".into(), &vec![1]).await.unwrap();
    t.put(&txn, &"b".into(), &vec![2]).await.unwrap();
    other
        .put(&txn, &"a".into(), &"not watched".into())
        .await
        .unwrap();
    let first = txn.commit().await.unwrap().revision();

    let txn = db.begin_write();
    t.put(&txn, &"a".into(), &vec![1, 1]).await.unwrap();
    t.remove(&txn, &"b".into()).await.unwrap();
    let second = txn.commit().await.unwrap().revision();

    let c = next(&mut changes).await.unwrap();
    assert_eq!(
        (c.key.as_str(), c.old, c.new, c.revision),
        ("a", None, Some(vec![1]), first)
    );
    let c = next(&mut changes).await.unwrap();
    assert_eq!(
        (c.key.as_str(), c.new, c.revision),
        ("b", Some(vec![2]), first)
    );
    let c = next(&mut changes).await.unwrap();
    assert_eq!(
        (c.key.as_str(), c.old, c.new, c.revision),
        ("a", Some(vec![1]), Some(vec![1, 1]), second)
    );
    let c: Change<String, Vec<u32>> = next(&mut changes).await.unwrap();
    assert_eq!(
        (c.key.as_str(), c.old, c.new, c.revision),
        ("b", Some(vec![2]), None, second)
    );

    // A corrupt value is an error item; the watch goes on.
    db.client()
        .put(t.raw_key(&"c".into()), "not json")
        .await
        .unwrap();
    let err = next(&mut changes).await.unwrap_err();
    assert!(matches!(&err, Error::Decode { table, key, .. } if table == "lists" && key == "\"c\""));
    let txn = db.begin_write();
    t.put(&txn, &"d".into(), &vec![]).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(next(&mut changes).await.unwrap().key, "d");

    // From a past revision: the history since then.
    let mut replay = t.watch_from(&db, second).await.unwrap();
    let c = next(&mut replay).await.unwrap();
    assert_eq!((c.key.as_str(), c.revision), ("a", second));
}
