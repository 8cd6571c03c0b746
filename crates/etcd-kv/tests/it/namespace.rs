//! Namespaces: every key sent is prefixed, every key received is stripped.

use crate::{key, keys, setup};
use bytes::Bytes;
use etcd_kv::{Compare, TxnOp};
use futures_util::TryStreamExt;

#[tokio::test]
async fn keys_are_prefixed_on_the_way_out_and_stripped_on_the_way_back() {
    let (_etcd, root, p) = setup!("ns_basic");
    let ns = root.with_namespace(&p);
    assert_eq!(ns.namespace(), p.as_bytes());
    assert!(root.namespace().is_empty());

    ns.put("a", "1").await.unwrap();
    // Seen from outside, the key carries the namespace.
    let outside = root.get(key(&p, "a")).await.unwrap().expect("prefixed key");
    assert_eq!(outside.value(), b"1");
    assert_eq!(
        root.get("a").await.unwrap().map(|kv| kv.key_bytes()),
        None::<Bytes>
    );
    // Seen from inside, it does not.
    let inside = ns.get("a").await.unwrap().unwrap();
    assert_eq!(inside.key(), b"a");
    assert_eq!(inside.mod_revision(), outside.mod_revision());

    // prev_kv of put and delete are stripped too.
    let put = ns.put("a", "2").prev_kv().await.unwrap();
    assert_eq!(put.prev_kv().unwrap().key(), b"a");
    let del = ns.delete("a").prev_kv().await.unwrap();
    assert_eq!(keys(del.prev_kvs()), [Bytes::from("a")]);
    assert_eq!(
        root.range(&p).prefix().count_only().await.unwrap().count(),
        0
    );
}

#[tokio::test]
async fn a_namespace_cannot_see_or_touch_keys_outside_it() {
    let (_etcd, root, p) = setup!("ns_isolation");
    let a = root.with_namespace(key(&p, "a/"));
    let b = root.with_namespace(key(&p, "b/"));
    a.put("k", "in a").await.unwrap();
    b.put("k", "in b").await.unwrap();
    root.put(key(&p, "a"), "just outside a").await.unwrap();
    root.put(key(&p, "a0"), "just past a").await.unwrap();

    assert_eq!(a.get("k").await.unwrap().unwrap().value(), b"in a");
    assert_eq!(b.get("k").await.unwrap().unwrap().value(), b"in b");
    assert_eq!(
        keys(a.range("").prefix().await.unwrap().kvs()),
        [Bytes::from("k")]
    );
    assert_eq!(a.range("").from_key().await.unwrap().count(), 1);
    assert_eq!(
        a.range("").from_key().count_only().await.unwrap().count(),
        1
    );
    assert_eq!(a.delete("").from_key().await.unwrap().deleted(), 1);
    assert_eq!(b.get("k").await.unwrap().unwrap().value(), b"in b");
    assert_eq!(
        root.range(&p).prefix().count_only().await.unwrap().count(),
        3
    );
}

#[tokio::test]
async fn namespaces_nest_and_come_from_the_builder() {
    let (etcd, root, p) = setup!("ns_nest");
    let outer = root.with_namespace(&p);
    let inner = outer.with_namespace("inner/");
    assert_eq!(inner.namespace(), format!("{p}inner/").as_bytes());
    inner.put("k", "v").await.unwrap();
    assert_eq!(
        outer.get("inner/k").await.unwrap().unwrap().key(),
        b"inner/k"
    );
    assert!(root.get(format!("{p}inner/k")).await.unwrap().is_some());

    let built = crate::builder()
        .endpoint(etcd.endpoint(0))
        .namespace(format!("{p}inner/"))
        .connect()
        .await
        .unwrap();
    assert_eq!(built.get("k").await.unwrap().unwrap().key(), b"k");
    let nested_again = built.with_namespace("deeper/");
    nested_again.put("x", "y").await.unwrap();
    assert!(inner.get("deeper/x").await.unwrap().is_some());
}

#[tokio::test]
async fn transactions_in_a_namespace() {
    let (_etcd, root, p) = setup!("ns_txn");
    let ns = root.with_namespace(&p);
    ns.put("k", "v").await.unwrap();
    ns.put("k2", "v").await.unwrap();
    ns.put("list/1", "1").await.unwrap();
    let nested = ns.txn().and_then([TxnOp::get_prefix("list/")]);
    let r = ns
        .txn()
        .when([
            Compare::value("k").eq("v"),
            Compare::version("list/").prefix().gt(0),
        ])
        .and_then([
            TxnOp::put("k", "w"),
            ns.put("k2", "x").prev_kv().into(),
            TxnOp::get("k"),
            TxnOp::txn(nested),
            ns.delete("list/").prefix().prev_kv().into(),
        ])
        .await
        .unwrap();
    assert!(r.succeeded(), "compares use namespaced keys");
    let resp = r.responses();
    assert_eq!(resp[1].as_put().unwrap().prev_kv().unwrap().key(), b"k2");
    assert_eq!(resp[2].as_range().unwrap().kvs()[0].key(), b"k");
    let inner = resp[3].as_txn().unwrap().responses()[0].as_range().unwrap();
    assert_eq!(keys(inner.kvs()), [Bytes::from("list/1")]);
    assert_eq!(
        keys(resp[4].as_delete().unwrap().prev_kvs()),
        [Bytes::from("list/1")]
    );
    assert_eq!(root.get(key(&p, "k")).await.unwrap().unwrap().value(), b"w");
    assert_eq!(
        root.get(key(&p, "k2")).await.unwrap().unwrap().value(),
        b"x"
    );
    assert!(root.get("k").await.unwrap().is_none());
}

#[tokio::test]
async fn scans_in_a_namespace_strip_keys() {
    let (_etcd, root, p) = setup!("ns_scan");
    let ns = root.with_namespace(&p);
    for i in 0..9 {
        ns.put(format!("{i}"), "v").await.unwrap();
    }
    let got: Vec<_> = ns
        .scan("")
        .prefix()
        .page_size(2)
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    let expected: Vec<Bytes> = (0..9).map(|i| Bytes::from(i.to_string())).collect();
    assert_eq!(keys(&got), expected);
}

#[tokio::test]
async fn binary_namespaces() {
    let (_etcd, root, p) = setup!("ns_binary");
    let ns = root.with_namespace(key(&p, [0x00, 0xff, 0x80]));
    ns.put([0xffu8, 0x00], [0x01u8]).await.unwrap();
    let kv = ns.get([0xffu8, 0x00]).await.unwrap().unwrap();
    assert_eq!(kv.key(), [0xff, 0x00]);
    let raw = root
        .get(key(&p, [0x00, 0xff, 0x80, 0xff, 0x00]))
        .await
        .unwrap();
    assert_eq!(raw.unwrap().value(), [0x01]);
}
