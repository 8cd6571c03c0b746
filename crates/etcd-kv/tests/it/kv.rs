//! Put, get and delete with their options; byte-like keys and values; sharing a client.

use crate::{grant_lease, key, keys, revoke_lease, setup, setup_ns};
use bytes::Bytes;
use etcd_kv::Error;

#[tokio::test]
async fn put_then_get() {
    let (_etcd, client, p) = setup!("put_then_get");
    let k = format!("{p}greeting");
    let put = client.put(&k, "hello").await.unwrap();
    assert!(put.revision() > 0);
    assert!(put.prev_kv().is_none(), "prev_kv only when asked for");

    let kv = client.get(&k).await.unwrap().expect("the key exists");
    assert_eq!(kv.key(), k.as_bytes());
    assert_eq!(kv.key_str().unwrap(), k);
    assert_eq!(kv.value(), b"hello");
    assert_eq!(kv.value_str().unwrap(), "hello");
    assert_eq!(kv.version(), 1);
    assert_eq!(kv.create_revision(), put.revision());
    assert_eq!(kv.mod_revision(), put.revision());
    assert_eq!(kv.lease(), 0);

    let again = client.put(&k, "world").await.unwrap();
    assert!(again.revision() > put.revision());
    let kv = client.get(&k).await.unwrap().unwrap();
    assert_eq!(kv.value(), b"world");
    assert_eq!(kv.version(), 2);
    assert_eq!(kv.create_revision(), put.revision());
    assert_eq!(kv.mod_revision(), again.revision());

    assert_eq!(client.get(format!("{p}missing")).await.unwrap(), None);
}

#[tokio::test]
async fn keys_and_values_accept_anything_byte_like() {
    let (_etcd, client, p) = setup!("byte_like");
    let s: &str = "v-str";
    client.put(format!("{p}str"), s).await.unwrap();
    client
        .put(format!("{p}string").as_str(), String::from("v-string"))
        .await
        .unwrap();
    let slice: &[u8] = b"v-slice";
    client.put(key(&p, "slice").as_ref(), slice).await.unwrap();
    client
        .put(key(&p, "vec").to_vec(), b"v-vec".to_vec())
        .await
        .unwrap();
    client
        .put(key(&p, "bytes"), Bytes::from_static(b"v-bytes"))
        .await
        .unwrap();
    // Borrowed Bytes, String and Vec<u8> work too, and stay usable afterwards.
    let (ref_key, shared) = (key(&p, "refbytes"), Bytes::from_static(b"v-ref-bytes"));
    client.put(&ref_key, &shared).await.unwrap();
    let (array_key, vec_key) = (format!("{p}array"), key(&p, "owned-array").to_vec());
    client.put(&array_key, b"v-array").await.unwrap();
    client.put(&vec_key, [1u8, 2, 3]).await.unwrap();
    assert_eq!(
        client.get(&ref_key).await.unwrap().unwrap().value(),
        &shared[..]
    );
    assert!(client.get(&array_key).await.unwrap().is_some());
    assert!(client.get(&vec_key).await.unwrap().is_some());

    for (suffix, value) in [
        ("str", &b"v-str"[..]),
        ("string", b"v-string"),
        ("slice", b"v-slice"),
        ("vec", b"v-vec"),
        ("bytes", b"v-bytes"),
        ("refbytes", b"v-ref-bytes"),
        ("array", b"v-array"),
        ("owned-array", &[1, 2, 3]),
    ] {
        let kv = client.get(key(&p, suffix)).await.unwrap().expect(suffix);
        assert_eq!(kv.value(), value, "{suffix}");
        assert_eq!(kv.value_bytes(), Bytes::copy_from_slice(value));
        let (k, v) = kv.into_key_value();
        assert_eq!(k, key(&p, suffix));
        assert_eq!(v, value);
    }
}

#[tokio::test]
async fn binary_keys_and_values_round_trip_byte_exact() {
    let (_etcd, client, p) = setup!("binary");
    // Not UTF-8, NUL bytes, 0xFF bytes, every byte value.
    let all: Vec<u8> = (0..=255u8).collect();
    let cases: Vec<(Bytes, Bytes)> = vec![
        (
            key(&p, [0xff, 0xfe, 0x00, 0x80]),
            Bytes::from_static(&[0, 1, 2, 0xff]),
        ),
        (key(&p, [0x00]), Bytes::from_static(b"\0")),
        (key(&p, [0xc3, 0x28]), Bytes::from_static(&[0xc3, 0x28])), // invalid UTF-8
        (key(&p, &all), Bytes::from(all.clone())),
        (key(&p, "unicode-\u{1F600}"), Bytes::from("\u{e9}t\u{e9}")),
    ];
    for (k, v) in &cases {
        client.put(k, v).await.unwrap();
    }
    for (k, v) in &cases {
        let kv = client.get(k).await.unwrap().expect("written");
        assert_eq!(kv.key(), k.as_ref());
        assert_eq!(kv.value(), v.as_ref());
    }
    assert!(client
        .get(key(&p, [0xc3, 0x28]))
        .await
        .unwrap()
        .unwrap()
        .key_str()
        .is_err());
    // The whole set read back by a prefix range, in byte order.
    let page = client.range(&p).prefix().await.unwrap();
    let mut expected: Vec<Bytes> = cases.iter().map(|(k, _)| k.clone()).collect();
    expected.sort();
    assert_eq!(keys(page.kvs()), expected);
}

#[tokio::test]
async fn empty_values_are_values() {
    let (_etcd, client, p) = setup!("empty_value");
    let k = key(&p, "empty");
    client.put(&k, "").await.unwrap();
    let kv = client
        .get(&k)
        .await
        .unwrap()
        .expect("an empty value still makes a key");
    assert_eq!(kv.value(), b"");
    assert_eq!(kv.version(), 1);
    client.put(&k, Vec::new()).await.unwrap();
    let prev = client.put(&k, "x").prev_kv().await.unwrap();
    assert_eq!(prev.prev_kv().unwrap().value(), b"");
    assert_eq!(prev.prev_kv().unwrap().version(), 2);
}

#[tokio::test]
async fn put_prev_kv() {
    let (_etcd, client, p) = setup!("put_prev_kv");
    let k = key(&p, "k");
    let first = client.put(&k, "one").prev_kv().await.unwrap();
    assert!(first.prev_kv().is_none(), "no previous key");
    let second = client.put(&k, "two").prev_kv().send().await.unwrap();
    let prev = second.prev_kv().expect("previous key-value");
    assert_eq!(prev.key(), k.as_ref());
    assert_eq!(prev.value(), b"one");
    assert_eq!(prev.mod_revision(), first.revision());
    assert_eq!(second.header().revision(), second.revision());
    assert!(second.header().cluster_id() != 0);
    assert!(second.header().member_id() != 0);
    assert!(second.header().raft_term() >= 1);
}

#[tokio::test]
async fn put_with_lease_ignore_value_ignore_lease() {
    let (_etcd, client, p) = setup!("put_lease");
    let k = key(&p, "leased");
    let lease = grant_lease(&client, 60).await;
    let other = grant_lease(&client, 60).await;

    client.put(&k, "v1").lease(lease).await.unwrap();
    let kv = client.get(&k).await.unwrap().unwrap();
    assert_eq!(kv.lease(), lease);

    // ignore_lease: a new value, the lease stays.
    client.put(&k, "v2").ignore_lease().await.unwrap();
    let kv = client.get(&k).await.unwrap().unwrap();
    assert_eq!((kv.value(), kv.lease()), (&b"v2"[..], lease));

    // ignore_value: a new lease, the value stays.
    let r = client
        .put(&k, "")
        .ignore_value()
        .lease(other)
        .prev_kv()
        .await
        .unwrap();
    assert_eq!(r.prev_kv().unwrap().lease(), lease);
    let kv = client.get(&k).await.unwrap().unwrap();
    assert_eq!((kv.value(), kv.lease()), (&b"v2"[..], other));

    // A plain put detaches the lease.
    client.put(&k, "v3").await.unwrap();
    assert_eq!(client.get(&k).await.unwrap().unwrap().lease(), 0);

    // Revoking a lease deletes its keys.
    let k2 = key(&p, "short-lived");
    client.put(&k2, "x").lease(lease).await.unwrap();
    revoke_lease(&client, lease).await;
    assert_eq!(client.get(&k2).await.unwrap(), None);
    revoke_lease(&client, other).await;
}

#[tokio::test]
async fn ignore_value_and_ignore_lease_need_an_existing_key() {
    let (_etcd, client, p) = setup!("ignore_missing");
    for put in [
        client.put(key(&p, "a"), "").ignore_value(),
        client.put(key(&p, "b"), "v").ignore_lease(),
    ] {
        match put.await {
            Err(Error::InvalidInput { reason, source }) => {
                assert!(reason.contains("key not found"), "{reason}");
                assert!(source.is_some(), "rejected by the server");
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }
    assert_eq!(
        client
            .range(&p)
            .prefix()
            .count_only()
            .await
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn delete_single_range_prefix_with_prev_kv() {
    let (_etcd, client, p) = setup!("delete");
    for s in ["a", "b", "c", "d", "e", "f", "g"] {
        client.put(key(&p, s), format!("v{s}")).await.unwrap();
    }
    // One key, with its previous value.
    let r = client.delete(key(&p, "a")).prev_kv().await.unwrap();
    assert_eq!(r.deleted(), 1);
    assert_eq!(r.prev_kvs().len(), 1);
    assert_eq!(r.prev_kvs()[0].key(), key(&p, "a").as_ref());
    assert_eq!(r.prev_kvs()[0].value(), b"va");
    assert!(r.revision() > 0);
    assert_eq!(r.header().revision(), r.revision());
    assert_eq!(client.get(key(&p, "a")).await.unwrap(), None);

    // A missing key: nothing deleted (the gateway omits `deleted: 0`).
    let r = client.delete(key(&p, "a")).prev_kv().send().await.unwrap();
    assert_eq!(r.deleted(), 0);
    assert!(r.prev_kvs().is_empty());

    // [b, d): b and c; without prev_kv none are returned.
    let r = client.delete(key(&p, "b")).end(key(&p, "d")).await.unwrap();
    assert_eq!(r.deleted(), 2);
    assert!(r.prev_kvs().is_empty());

    // From a key to the end, inside a namespace so it cannot reach other tests' keys.
    let ns = client.with_namespace(&p);
    let r = ns.delete("f").from_key().prev_kv().await.unwrap();
    assert_eq!(r.deleted(), 2);
    assert_eq!(keys(r.prev_kvs()), vec![Bytes::from("f"), Bytes::from("g")]);

    // Everything left under the prefix: d and e.
    let r = client.delete(&p).prefix().prev_kv().await.unwrap();
    assert_eq!(r.deleted(), 2);
    assert_eq!(keys(r.prev_kvs()), vec![key(&p, "d"), key(&p, "e")]);
    assert_eq!(
        client
            .range(&p)
            .prefix()
            .count_only()
            .await
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn delete_everything_in_a_namespace() {
    let (_etcd, client) = setup_ns!("delete_all");
    for i in 0..5 {
        client.put(format!("k{i}"), "v").await.unwrap();
    }
    // An empty key with prefix(): every key (of the namespace).
    let r = client.delete("").prefix().await.unwrap();
    assert_eq!(r.deleted(), 5);
    assert_eq!(client.range("").prefix().await.unwrap().count(), 0);
}

#[tokio::test]
async fn a_client_is_shared_by_many_tasks() {
    let (_etcd, client, p) = setup!("many_tasks");
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let client = client.clone();
            let p = p.clone();
            tokio::spawn(async move {
                let k = format!("{p}{i:02}");
                for n in 0..5 {
                    client.put(&k, n.to_string()).await?;
                }
                let kv = client.get(&k).await?.expect("written");
                assert_eq!(kv.value(), b"4");
                assert_eq!(kv.version(), 5);
                Ok::<_, Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let page = client.range(&p).prefix().await.unwrap();
    assert_eq!(page.count(), 32);
    // Clones share one connection pool and see the same namespace.
    let clone = client.clone();
    assert_eq!(clone.namespace(), client.namespace());
    assert!(format!("{clone:?}").contains("Client"));
}

#[tokio::test]
async fn ignore_value_with_a_value_and_ignore_lease_with_a_lease_are_refused() {
    let (_etcd, client, p) = setup!("ignore_conflicts");
    let k = key(&p, "k");
    client.put(&k, "v").await.unwrap();
    let lease = grant_lease(&client, 60).await;
    for (put, expected) in [
        (client.put(&k, "new").ignore_value(), "value is provided"),
        (
            client.put(&k, "new").ignore_lease().lease(lease),
            "lease is provided",
        ),
    ] {
        match put.await {
            Err(Error::InvalidInput { reason, .. }) => {
                assert!(reason.contains(expected), "{reason}")
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }
    let kv = client.get(&k).await.unwrap().unwrap();
    assert_eq!((kv.value(), kv.lease(), kv.version()), (&b"v"[..], 0, 1));
    revoke_lease(&client, lease).await;
}

#[tokio::test]
async fn connect_takes_host_and_port_without_a_scheme() {
    let Some(etcd) = xtask::testing::shared_etcd() else {
        return;
    };
    let p = xtask::testing::unique_prefix("no_scheme");
    let endpoint = etcd.endpoint(0);
    let bare = endpoint
        .strip_prefix("http://")
        .expect("test servers listen on http");
    let client = etcd_kv::Client::connect(bare)
        .await
        .expect("host:port means http://host:port");
    client.put(format!("{p}k"), "v").await.unwrap();
    let kv = client.get(format!("{p}k")).await.unwrap().expect("the key");
    assert_eq!(kv.value(), b"v");
}

#[tokio::test]
async fn get_prefix_returns_every_key_under_it_across_pages() {
    let (_etcd, client, p) = setup!("get_prefix");
    // More than one page (DEFAULT_PAGE_SIZE), and a neighbour outside the prefix.
    let n = etcd_kv::DEFAULT_PAGE_SIZE as usize + 5;
    let ops: Vec<etcd_kv::TxnOp> = (0..n)
        .map(|i| etcd_kv::TxnOp::put(format!("{p}in/{i:05}"), i.to_string()))
        .collect();
    for chunk in ops.chunks(100) {
        client.txn().and_then(chunk.to_vec()).await.unwrap();
    }
    client.put(format!("{p}io"), "outside").await.unwrap();
    let kvs = client.get_prefix(format!("{p}in/")).await.unwrap();
    assert_eq!(kvs.len(), n);
    for (i, kv) in kvs.iter().enumerate() {
        assert_eq!(kv.key_str().unwrap(), format!("{p}in/{i:05}"));
        assert_eq!(kv.value_str().unwrap(), i.to_string());
    }
    assert_eq!(kvs[0].to_string(), format!("{p}in/00000 = 0"));
    assert!(client
        .get_prefix(format!("{p}none/"))
        .await
        .unwrap()
        .is_empty());
}
