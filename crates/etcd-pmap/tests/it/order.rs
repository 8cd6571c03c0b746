//! Keys scan in their typed order: oids numerically, composite keys part by part; bounds,
//! reverse scans, limits and page boundaries.

use crate::setup;
use etcd_pmap::{MapOidString, OidKey, StringKey, StringValue, Table, UuidKey};
use futures_util::TryStreamExt;
use uuid::Uuid;

const OIDS: [u64; 10] = [
    256,
    1,
    u64::MAX,
    0,
    255,
    65_536,
    2,
    1 << 32,
    10,
    u64::MAX - 1,
];

async fn keys_of<K, V>(rows: etcd_pmap::Rows<'_, K, V>) -> Vec<K::Value>
where
    K: etcd_pmap::KeyCodec,
    V: etcd_pmap::ValueCodec,
{
    let rows: Vec<(K::Value, V::Value)> = rows.try_collect().await.unwrap();
    rows.into_iter().map(|(k, _)| k).collect()
}

#[tokio::test]
async fn oid_keys_scan_in_numeric_order() {
    let db = setup!("oid_order");
    let table: MapOidString = Table::new(2, "oids");
    let txn = db.begin_write();
    for oid in OIDS {
        table.put(&txn, &oid, &oid.to_string()).await.unwrap();
    }
    txn.commit().await.unwrap();

    let mut sorted = OIDS.to_vec();
    sorted.sort_unstable();
    let txn = db.begin_read();
    assert_eq!(keys_of(table.iter(&txn)).await, sorted);
    // Small pages: the same, across page boundaries.
    assert_eq!(keys_of(table.iter(&txn).page_size(3)).await, sorted);
    let mut reversed = sorted.clone();
    reversed.reverse();
    assert_eq!(
        keys_of(table.iter(&txn).reverse().page_size(3)).await,
        reversed
    );

    // Bounds on typed keys.
    assert_eq!(keys_of(table.range(&txn, 2..256)).await, vec![2, 10, 255]);
    assert_eq!(
        keys_of(table.range(&txn, 2..=256)).await,
        vec![2, 10, 255, 256]
    );
    assert_eq!(
        keys_of(table.range(
            &txn,
            (std::ops::Bound::Excluded(2), std::ops::Bound::Included(255))
        ))
        .await,
        vec![10, 255]
    );
    assert_eq!(
        keys_of(table.range(&txn, (1u64 << 32)..)).await,
        vec![1 << 32, u64::MAX - 1, u64::MAX]
    );
    assert_eq!(keys_of(table.range(&txn, ..2)).await, vec![0, 1]);
    assert_eq!(
        keys_of(table.range(&txn, 300..300)).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        keys_of(table.range(&txn, 10..).reverse().limit(3)).await,
        vec![u64::MAX, u64::MAX - 1, 1 << 32]
    );
    assert_eq!(
        keys_of(table.iter(&txn).limit(4).page_size(3)).await,
        vec![0, 1, 2, 10]
    );
    assert_eq!(table.range(&txn, 2..=256).count().await.unwrap(), 4);
    assert_eq!(table.count(&txn).await.unwrap(), OIDS.len() as u64);
}

#[tokio::test]
async fn composite_keys_scan_part_by_part() {
    let db = setup!("composite_order");
    type K = (StringKey, OidKey);
    let table: Table<K, StringValue> = Table::new(3, "pairs");
    let keys: Vec<(String, u64)> = vec![
        ("b".into(), 1),
        ("a".into(), 300),
        ("ab".into(), 0),
        ("a".into(), 2),
        ("a\0".into(), 7),
        ("".into(), u64::MAX),
        ("a".into(), 10),
        ("\u{e9}".into(), 0),
    ];
    let txn = db.begin_write();
    for k in &keys {
        table.put(&txn, k, &format!("{k:?}")).await.unwrap();
    }
    txn.commit().await.unwrap();

    let mut sorted = keys.clone();
    sorted.sort();
    let txn = db.begin_read();
    assert_eq!(keys_of(table.iter(&txn).page_size(2)).await, sorted);
    // Everything under "a": from ("a", 0) to before ("a\0", 0).
    assert_eq!(
        keys_of(table.range(&txn, ("a".to_string(), 0)..("a\0".to_string(), 0))).await,
        vec![("a".into(), 2), ("a".into(), 10), ("a".into(), 300)]
    );

    // Three parts, with a UUID in the middle.
    type K3 = (OidKey, UuidKey, StringKey);
    let t3: Table<K3, StringValue> = Table::new(4, "triples");
    let u = |n: u128| Uuid::from_u128(n);
    let keys3: Vec<(u64, Uuid, String)> = vec![
        (2, u(1), "z".into()),
        (1, u(2), "a".into()),
        (1, u(1), "b".into()),
        (256, u(0), "".into()),
        (1, u(1), "a".into()),
    ];
    let txn = db.begin_write();
    for k in &keys3 {
        t3.put(&txn, k, &String::new()).await.unwrap();
    }
    txn.commit().await.unwrap();
    let mut sorted3 = keys3.clone();
    sorted3.sort();
    let txn = db.begin_read();
    assert_eq!(keys_of(t3.iter(&txn)).await, sorted3);
}

#[tokio::test]
async fn tables_do_not_see_each_other() {
    let db = setup!("slots");
    let a: MapOidString = Table::new(1, "a");
    let b: MapOidString = Table::new(2, "b");
    let last: MapOidString = Table::new(u16::MAX, "last");
    let txn = db.begin_write();
    a.put(&txn, &u64::MAX, &"a".into()).await.unwrap();
    b.put(&txn, &0, &"b".into()).await.unwrap();
    last.put(&txn, &5, &"last".into()).await.unwrap();
    txn.commit().await.unwrap();
    let txn = db.begin_read();
    assert_eq!(keys_of(a.iter(&txn)).await, vec![u64::MAX]);
    assert_eq!(keys_of(b.iter(&txn)).await, vec![0]);
    assert_eq!(keys_of(last.iter(&txn)).await, vec![5]);
    assert_eq!(keys_of(last.iter(&txn).reverse()).await, vec![5]);
    assert_eq!(last.count(&txn).await.unwrap(), 1);

    // Slot 0 is the catalog.
    let catalog: MapOidString = Table::new(0, "sneaky");
    let txn = db.begin_write();
    let err = catalog.put(&txn, &1, &"x".into()).await.unwrap_err();
    assert!(
        matches!(err, etcd_pmap::Error::ReservedSlot { .. }),
        "{err:?}"
    );
    let err = catalog
        .iter(&txn)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        matches!(err, etcd_pmap::Error::ReservedSlot { .. }),
        "{err:?}"
    );
}
