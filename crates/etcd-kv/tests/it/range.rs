//! Range requests: key ranges and every read option.

use crate::{key, keys, setup, setup_ns, suffixes};
use bytes::Bytes;
use etcd_kv::{Client, SortOrder, SortTarget};

/// Writes `a`..`e` under `p` with values `5`..`1` (so value order is the reverse of key
/// order), then writes `b` and `d` again; returns each key's put revision.
async fn five_keys(client: &Client, p: &str) -> Vec<i64> {
    let mut revisions = Vec::new();
    for (s, v) in [("a", "5"), ("b", "4"), ("c", "3"), ("d", "2"), ("e", "1")] {
        revisions.push(client.put(key(p, s), v).await.unwrap().revision());
    }
    revisions.push(client.put(key(p, "b"), "4").await.unwrap().revision());
    revisions.push(client.put(key(p, "d"), "2").await.unwrap().revision());
    revisions
}

#[tokio::test]
async fn key_ranges() {
    let (_etcd, client, p) = setup!("key_ranges");
    five_keys(&client, &p).await;
    client.put(format!("{p}b/child"), "x").await.unwrap();

    // A single key.
    let r = client.range(key(&p, "b")).await.unwrap();
    assert_eq!(suffixes(r.kvs(), &p), ["b"]);
    assert_eq!(r.count(), 1);
    assert!(!r.more());

    // [b, d)
    let r = client.range(key(&p, "b")).end(key(&p, "d")).await.unwrap();
    assert_eq!(suffixes(r.kvs(), &p), ["b", "b/child", "c"]);

    // A prefix.
    let r = client.range(format!("{p}b")).prefix().await.unwrap();
    assert_eq!(suffixes(r.kvs(), &p), ["b", "b/child"]);
    let r = client.range(&p).prefix().await.unwrap();
    assert_eq!(suffixes(r.kvs(), &p), ["a", "b", "b/child", "c", "d", "e"]);
    assert_eq!(r.count(), 6);

    // From a key on: reaches past the prefix, so bound it with a limit.
    let r = client
        .range(key(&p, "d"))
        .from_key()
        .limit(2)
        .await
        .unwrap();
    assert_eq!(suffixes(r.kvs(), &p), ["d", "e"]);

    // A range with no match has neither kvs nor count on the wire.
    let r = client.range(format!("{p}zz")).prefix().await.unwrap();
    assert!(r.kvs().is_empty());
    assert_eq!(r.count(), 0);
    assert!(r.revision() > 0);
}

#[tokio::test]
async fn all_keys() {
    let (_etcd, root, p) = setup!("all_keys");
    root.put(key(&p, "x"), "1").await.unwrap();
    // Every key of the server: at least ours.
    let r = root.range("").prefix().count_only().await.unwrap();
    assert!(r.count() >= 1);
    let r2 = root.range("").from_key().keys_only().await.unwrap();
    assert!(r2.kvs().iter().any(|kv| kv.key() == key(&p, "x").as_ref()));

    // Every key of a namespace: exactly its own.
    let ns = root.with_namespace(&p);
    ns.put("y", "2").await.unwrap();
    let r = ns.range("").prefix().await.unwrap();
    assert_eq!(keys(r.kvs()), [Bytes::from("x"), Bytes::from("y")]);
    let r = ns.range("").from_key().await.unwrap();
    assert_eq!(r.count(), 2);
    let r = ns.range("x").from_key().await.unwrap();
    assert_eq!(keys(r.kvs()), [Bytes::from("x"), Bytes::from("y")]);
    let r = ns.range("y").from_key().await.unwrap();
    assert_eq!(keys(r.kvs()), [Bytes::from("y")]);
}

#[tokio::test]
async fn limit_more_and_count() {
    let (_etcd, client, p) = setup!("limit");
    five_keys(&client, &p).await;
    let r = client.range(&p).prefix().limit(2).await.unwrap();
    assert_eq!(suffixes(r.kvs(), &p), ["a", "b"]);
    assert!(r.more());
    assert_eq!(r.count(), 5, "count ignores the limit");

    let r = client.range(&p).prefix().limit(5).await.unwrap();
    assert_eq!(r.kvs().len(), 5);
    assert!(!r.more());

    let r = client.range(&p).prefix().limit(0).await.unwrap();
    assert_eq!(r.kvs().len(), 5, "0 is no limit");
    assert_eq!(r.clone().into_kvs().len(), 5);
}

#[tokio::test]
async fn revision_reads_the_past() {
    let (_etcd, client, p) = setup!("revision");
    let k = key(&p, "k");
    let r1 = client.put(&k, "one").await.unwrap().revision();
    let r2 = client.put(&k, "two").await.unwrap().revision();
    let r3 = client.delete(&k).await.unwrap().revision();

    assert_eq!(client.get(&k).await.unwrap(), None);
    let at = |rev| client.range(&k).revision(rev);
    assert_eq!(at(r1).await.unwrap().kvs()[0].value(), b"one");
    assert_eq!(at(r2).await.unwrap().kvs()[0].value(), b"two");
    assert_eq!(at(r2).await.unwrap().kvs()[0].version(), 2);
    assert!(at(r3).await.unwrap().kvs().is_empty());
    assert!(at(r1 - 1).await.unwrap().kvs().is_empty());
    // The header names the current revision, not the one read at.
    assert!(at(r1).await.unwrap().revision() >= r3);
    assert!(
        at(0).await.unwrap().kvs().is_empty(),
        "0 is the current revision"
    );
}

#[tokio::test]
async fn serializable_keys_only_count_only() {
    let (_etcd, client, p) = setup!("read_options");
    five_keys(&client, &p).await;

    let r = client.range(&p).prefix().serializable().await.unwrap();
    assert_eq!(r.kvs().len(), 5);
    assert_eq!(r.kvs()[0].value(), b"5");

    let r = client.range(&p).prefix().keys_only().await.unwrap();
    assert_eq!(suffixes(r.kvs(), &p), ["a", "b", "c", "d", "e"]);
    assert!(r.kvs().iter().all(|kv| kv.value().is_empty()));
    assert!(
        r.kvs().iter().all(|kv| kv.mod_revision() > 0),
        "metadata stays"
    );

    let r = client.range(&p).prefix().count_only().await.unwrap();
    assert!(r.kvs().is_empty());
    assert_eq!(r.count(), 5);

    let r = client
        .range(&p)
        .prefix()
        .keys_only()
        .serializable()
        .limit(1)
        .await
        .unwrap();
    assert_eq!(suffixes(r.kvs(), &p), ["a"]);
    assert!(r.more());
}

#[tokio::test]
async fn sort_by_every_target_both_ways() {
    let (_etcd, client, p) = setup!("sort");
    // Created a..e in order; b and d modified last (d after b); values 5..1.
    five_keys(&client, &p).await;
    let (client, p) = (&client, p.as_str());
    let sorted = |target, order| async move {
        let r = client.range(p).prefix().sort(target, order).await.unwrap();
        suffixes(r.kvs(), p)
    };
    use SortOrder::{Ascend, Descend};
    assert_eq!(
        sorted(SortTarget::Key, Ascend).await,
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(
        sorted(SortTarget::Key, Descend).await,
        ["e", "d", "c", "b", "a"]
    );
    assert_eq!(
        sorted(SortTarget::Key, SortOrder::None).await,
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(
        sorted(SortTarget::Value, Ascend).await,
        ["e", "d", "c", "b", "a"]
    );
    assert_eq!(
        sorted(SortTarget::Value, Descend).await,
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(
        sorted(SortTarget::Create, Ascend).await,
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(
        sorted(SortTarget::Create, Descend).await,
        ["e", "d", "c", "b", "a"]
    );
    assert_eq!(
        sorted(SortTarget::Mod, Ascend).await,
        ["a", "c", "e", "b", "d"]
    );
    assert_eq!(
        sorted(SortTarget::Mod, Descend).await,
        ["d", "b", "e", "c", "a"]
    );
    // Versions: b and d are at 2, the rest at 1; ties keep key order.
    let by_version = sorted(SortTarget::Version, Descend).await;
    assert_eq!(&by_version[..2], ["b", "d"]);
    let by_version = sorted(SortTarget::Version, Ascend).await;
    assert_eq!(&by_version[3..], ["b", "d"]);

    // Sorting applies before the limit.
    let r = client
        .range(p)
        .prefix()
        .sort(SortTarget::Key, Descend)
        .limit(2)
        .await
        .unwrap();
    assert_eq!(suffixes(r.kvs(), p), ["e", "d"]);
    assert!(r.more());
}

#[tokio::test]
async fn mod_and_create_revision_filters() {
    let (_etcd, client, p) = setup!("revision_filters");
    // revisions: a, b, c, d, e created; then b and d modified.
    let revs = five_keys(&client, &p).await;
    let (c_rev, e_rev, b2_rev) = (revs[2], revs[4], revs[5]);
    let names = |r: etcd_kv::RangeResponse| suffixes(r.kvs(), &p);
    let range = || client.range(&p).prefix();

    assert_eq!(
        names(range().min_mod_revision(b2_rev).await.unwrap()),
        ["b", "d"]
    );
    assert_eq!(
        names(range().max_mod_revision(e_rev).await.unwrap()),
        ["a", "c", "e"]
    );
    assert_eq!(
        names(
            range()
                .min_mod_revision(c_rev)
                .max_mod_revision(b2_rev)
                .await
                .unwrap()
        ),
        ["b", "c", "e"]
    );
    assert_eq!(
        names(range().min_create_revision(c_rev).await.unwrap()),
        ["c", "d", "e"]
    );
    assert_eq!(
        names(range().max_create_revision(c_rev).await.unwrap()),
        ["a", "b", "c"]
    );
    assert_eq!(
        names(
            range()
                .min_create_revision(c_rev)
                .max_create_revision(c_rev)
                .await
                .unwrap()
        ),
        ["c"]
    );
}

#[tokio::test]
async fn prefixes_ending_in_0xff() {
    let (_etcd, client, p) = setup!("prefix_ff");
    let inside = [
        key(&p, b"m\xff"),
        key(&p, b"m\xff\x00"),
        key(&p, b"m\xff\x01z"),
        key(&p, b"m\xff\xff"),
        key(&p, b"m\xff\xff\xff\xff"),
    ];
    let outside = [
        key(&p, b"m\xfe\xff"),
        key(&p, b"n"),
        key(&p, b"n\x00"),
        key(&p, b"m"),
    ];
    for k in inside.iter().chain(&outside) {
        client.put(k, "v").await.unwrap();
    }
    // The prefix "m\xff" ends at "n".
    let r = client.range(key(&p, b"m\xff")).prefix().await.unwrap();
    assert_eq!(keys(r.kvs()), inside);
    // "m\xff\xff" ends at "n" too.
    let r = client.range(key(&p, b"m\xff\xff")).prefix().await.unwrap();
    assert_eq!(keys(r.kvs()), &inside[3..]);
    let r = client.delete(key(&p, b"m\xff")).prefix().await.unwrap();
    assert_eq!(r.deleted(), inside.len() as i64);
    let r = client.range(&p).prefix().await.unwrap();
    let mut left = outside.to_vec();
    left.sort();
    assert_eq!(keys(r.kvs()), left);
}

#[tokio::test]
async fn prefix_of_only_0xff_bytes_reaches_the_last_key() {
    // A prefix of only 0xFF bytes has no end key: its range runs to the end of the
    // keyspace ("\0"). Keys starting with 0xFF are written by this test only.
    let (_etcd, client, p) = setup!("prefix_all_ff");
    let tag = p.as_bytes();
    let inside = [
        key("", [b"\xff".as_ref(), tag].concat()),
        key("", [b"\xff\xff".as_ref(), tag].concat()),
        key("", [b"\xff\xff\xff".as_ref(), tag].concat()),
    ];
    for k in &inside {
        client.put(k, "v").await.unwrap();
    }
    let r = client.range(b"\xff").prefix().await.unwrap();
    for k in &inside {
        assert!(r.kvs().iter().any(|kv| kv.key() == k.as_ref()), "{k:?}");
    }
    assert!(r.kvs().iter().all(|kv| kv.key()[0] == 0xff));
    let r = client.range(b"\xff\xff").prefix().await.unwrap();
    assert!(r.kvs().iter().all(|kv| kv.key().starts_with(b"\xff\xff")));
    assert!(r.kvs().iter().any(|kv| kv.key() == inside[2].as_ref()));
    assert!(!r.kvs().iter().any(|kv| kv.key() == inside[0].as_ref()));
    for k in &inside {
        assert_eq!(client.delete(k).await.unwrap().deleted(), 1);
    }
}

#[tokio::test]
async fn namespace_ending_in_0xff() {
    let (_etcd, client, p) = setup!("namespace_ff");
    let ns = client.with_namespace(key(&p, b"\xff"));
    for k in [&b"a"[..], b"\xff", b"\xff\xff"] {
        ns.put(k, "v").await.unwrap();
    }
    // Next to the namespace, outside it.
    client.put(key(&p, b"\xfe"), "outside").await.unwrap();
    client.put(key(&p, b"\xfe\xff"), "outside").await.unwrap();

    let r = ns.range(b"\xff").prefix().await.unwrap();
    assert_eq!(
        keys(r.kvs()),
        [Bytes::from_static(b"\xff"), Bytes::from_static(b"\xff\xff")]
    );
    let all = [
        Bytes::from_static(b"a"),
        Bytes::from_static(b"\xff"),
        Bytes::from_static(b"\xff\xff"),
    ];
    assert_eq!(keys(ns.range("").prefix().await.unwrap().kvs()), all);
    assert_eq!(keys(ns.range("").from_key().await.unwrap().kvs()), all);
    assert_eq!(ns.delete("").prefix().await.unwrap().deleted(), 3);
    assert_eq!(
        client
            .range(&p)
            .prefix()
            .count_only()
            .await
            .unwrap()
            .count(),
        2
    );
}

#[tokio::test]
async fn range_in_a_namespace_strips_keys() {
    let (_etcd, client) = setup_ns!("range_ns");
    for s in ["a", "b", "c"] {
        client.put(s, s).await.unwrap();
    }
    let r = client.range("a").end("c").await.unwrap();
    assert_eq!(keys(r.kvs()), [Bytes::from("a"), Bytes::from("b")]);
}
