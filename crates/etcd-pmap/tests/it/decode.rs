//! Stored bytes that do not decode are typed errors naming the table and the key.

use crate::setup;
use etcd_pmap::{Error, MapOidCbor, MapStringJson, Table};
use futures_util::TryStreamExt;
use std::error::Error as _;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Point {
    x: i64,
    y: i64,
}

#[tokio::test]
async fn a_corrupt_value_is_a_decode_error_naming_table_and_key() {
    let db = setup!("corrupt");
    let points: MapOidCbor<Point> = Table::new(5, "points");
    let txn = db.begin_write();
    points.put(&txn, &1, &Point { x: 1, y: 2 }).await.unwrap();
    points.put(&txn, &3, &Point { x: 3, y: 4 }).await.unwrap();
    txn.commit().await.unwrap();
    // Garbage under row 2's key, written with the raw client.
    db.client()
        .put(points.raw_key(&2), b"\xff\xfe not cbor".as_slice())
        .await
        .unwrap();

    let txn = db.begin_read();
    let err = points.get(&txn, &2).await.unwrap_err();
    match &err {
        Error::Decode { table, key, source } => {
            assert_eq!(table, "points");
            assert_eq!(key, "2");
            assert_eq!(source.codec(), "cbor");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert!(err.to_string().contains("points") && err.to_string().contains('2'));
    assert!(err.source().is_some());
    // Other rows still read; a scan yields the error in place and goes on.
    assert_eq!(
        points.get(&txn, &1).await.unwrap(),
        Some(Point { x: 1, y: 2 })
    );
    let items: Vec<_> = futures_util::StreamExt::collect::<Vec<_>>(points.iter(&txn)).await;
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[2].is_ok());
    assert!(matches!(&items[1], Err(Error::Decode { key, .. }) if key == "2"));
    assert!(points.iter(&txn).try_collect::<Vec<_>>().await.is_err());

    // A key that does not decode (wrong length for an oid) is reported with its bytes.
    let mut bad_key = points.raw_key(&0).to_vec();
    bad_key.truncate(5);
    db.client().put(bad_key, "x").await.unwrap();
    let txn = db.begin_read();
    let err = points.iter(&txn).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(
        matches!(&err, Error::Decode { table, key, .. } if table == "points" && key.starts_with("b\"")),
        "{err:?}"
    );

    // JSON, and a write transaction's read: the same error, nothing committed.
    let names: MapStringJson<Point> = Table::new(6, "named_points");
    db.client()
        .put(names.raw_key(&"p".into()), "{\"x\":")
        .await
        .unwrap();
    let txn = db.begin_write();
    let err = names.get(&txn, &"p".into()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Decode { table, key, source } if table == "named_points" && key == "\"p\"" && source.codec() == "json"),
        "{err:?}"
    );
}
