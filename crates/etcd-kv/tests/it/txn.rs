//! Transactions: every compare target and operator, both branches, every kind of operation,
//! conflicts, and etcd's limits (nothing partial is ever applied).

use crate::{grant_lease, key, keys, revoke_lease, setup, suffixes, unreachable_client};
use bytes::Bytes;
use etcd_kv::{Client, Code, Compare, Error, TxnOp, TxnOpResponse};

async fn holds(client: &Client, compare: Compare) -> bool {
    client.txn().when([compare]).await.unwrap().succeeded()
}

#[tokio::test]
async fn compares_on_every_target_with_every_operator() {
    let (_etcd, client, p) = setup!("txn_compares");
    let k = key(&p, "k");
    let lease = grant_lease(&client, 60).await;
    let created = client.put(&k, "l").await.unwrap().revision();
    let modified = client.put(&k, "m").lease(lease).await.unwrap().revision();
    let kv = client.get(&k).await.unwrap().unwrap();
    assert_eq!(
        (kv.version(), kv.create_revision(), kv.mod_revision()),
        (2, created, modified)
    );

    let v = || Compare::value(&k);
    let cases = [
        (v().eq("m"), true),
        (v().eq("x"), false),
        (v().ne("x"), true),
        (v().ne("m"), false),
        (v().lt("n"), true),
        (v().lt("m"), false),
        (v().gt("l"), true),
        (v().gt("m"), false),
        (v().gt(Bytes::new()), true),
        (Compare::version(&k).eq(2), true),
        (Compare::version(&k).eq(1), false),
        (Compare::version(&k).ne(1), true),
        (Compare::version(&k).ne(2), false),
        (Compare::version(&k).lt(3), true),
        (Compare::version(&k).lt(2), false),
        (Compare::version(&k).gt(1), true),
        (Compare::version(&k).gt(2), false),
        (Compare::create_revision(&k).eq(created), true),
        (Compare::create_revision(&k).eq(modified), false),
        (Compare::create_revision(&k).ne(modified), true),
        (Compare::create_revision(&k).ne(created), false),
        (Compare::create_revision(&k).lt(modified), true),
        (Compare::create_revision(&k).lt(created), false),
        (Compare::create_revision(&k).gt(created - 1), true),
        (Compare::create_revision(&k).gt(created), false),
        (Compare::mod_revision(&k).eq(modified), true),
        (Compare::mod_revision(&k).eq(created), false),
        (Compare::mod_revision(&k).ne(created), true),
        (Compare::mod_revision(&k).ne(modified), false),
        (Compare::mod_revision(&k).lt(modified + 1), true),
        (Compare::mod_revision(&k).lt(modified), false),
        (Compare::mod_revision(&k).gt(created), true),
        (Compare::mod_revision(&k).gt(modified), false),
        (Compare::lease(&k).eq(lease), true),
        (Compare::lease(&k).eq(0), false),
        (Compare::lease(&k).ne(0), true),
        (Compare::lease(&k).ne(lease), false),
        (Compare::lease(&k).lt(lease + 1), true),
        (Compare::lease(&k).lt(lease), false),
        (Compare::lease(&k).gt(0), true),
        (Compare::lease(&k).gt(lease), false),
    ];
    for (compare, expected) in cases {
        let described = format!("{compare:?}");
        assert_eq!(holds(&client, compare).await, expected, "{described}");
    }

    // A missing key has version, revisions and lease 0, and no value at all: a compare on
    // its value never holds, not even with the empty value.
    let missing = key(&p, "missing");
    assert!(holds(&client, Compare::version(&missing).eq(0)).await);
    assert!(holds(&client, Compare::create_revision(&missing).eq(0)).await);
    assert!(holds(&client, Compare::mod_revision(&missing).eq(0)).await);
    assert!(holds(&client, Compare::lease(&missing).eq(0)).await);
    assert!(!holds(&client, Compare::value(&missing).eq("")).await);
    assert!(!holds(&client, Compare::value(&missing).ne("x")).await);

    // Several compares: all must hold.
    let both = client
        .txn()
        .when([Compare::value(&k).eq("m"), Compare::version(&k).eq(2)])
        .await
        .unwrap();
    assert!(both.succeeded());
    let one = client
        .txn()
        .when([Compare::value(&k).eq("m"), Compare::version(&k).eq(3)])
        .await
        .unwrap();
    assert!(!one.succeeded());
    revoke_lease(&client, lease).await;
}

#[tokio::test]
async fn compares_over_a_range_of_keys() {
    let (_etcd, client, p) = setup!("txn_range_compares");
    for s in ["a", "b", "c"] {
        client.put(key(&p, s), "same").await.unwrap();
    }
    client.put(key(&p, "d"), "other").await.unwrap();
    // Holds when it holds for every key of the range.
    assert!(holds(&client, Compare::version(&p).prefix().gt(0)).await);
    assert!(!holds(&client, Compare::value(&p).prefix().eq("same")).await);
    assert!(
        holds(
            &client,
            Compare::value(key(&p, "a")).end(key(&p, "d")).eq("same")
        )
        .await
    );
    assert!(
        !holds(
            &client,
            Compare::value(key(&p, "a")).end(key(&p, "e")).eq("same")
        )
        .await
    );
    // A range with no key compares like one missing key.
    assert!(holds(&client, Compare::version(key(&p, "x/")).prefix().eq(0)).await);
}

#[tokio::test]
async fn success_branch_runs_every_kind_of_operation() {
    let (_etcd, client, p) = setup!("txn_success");
    client.put(key(&p, "old"), "gone soon").await.unwrap();
    client.put(key(&p, "prev"), "before").await.unwrap();
    client.put(key(&p, "r/1"), "1").await.unwrap();
    client.put(key(&p, "r/2"), "2").await.unwrap();

    // etcd evaluates every compare, nested ones included, before applying anything: this
    // one sees "new" still absent although the outer branch writes it first.
    let nested = client
        .txn()
        .when([Compare::version(key(&p, "new")).eq(0)])
        .and_then([
            TxnOp::put(key(&p, "nested"), "yes"),
            TxnOp::get(key(&p, "new")),
        ])
        .or_else([TxnOp::put(key(&p, "nested"), "no")]);
    let result = client
        .txn()
        .when([Compare::version(key(&p, "new")).eq(0)])
        .and_then([
            TxnOp::put(key(&p, "new"), "v"),
            TxnOp::get(key(&p, "new")),
            TxnOp::get_prefix(key(&p, "r/")),
            TxnOp::delete(key(&p, "old")),
            TxnOp::delete(key(&p, "never-was")),
            TxnOp::txn(nested),
            client.put(key(&p, "prev"), "after").prev_kv().into(),
            client
                .range(key(&p, "r/"))
                .prefix()
                .limit(1)
                .keys_only()
                .into(),
            client.delete(key(&p, "r/")).prefix().prev_kv().into(),
        ])
        .or_else([TxnOp::get(key(&p, "new"))])
        .await
        .unwrap();
    assert!(result.succeeded());
    assert!(result.revision() > 0);
    assert_eq!(result.header().revision(), result.revision());
    let r = result.responses();
    assert_eq!(r.len(), 9);

    // put
    let put = r[0].as_put().expect("a put answer");
    assert!(put.prev_kv().is_none());
    // get sees the put before it: the branch is applied in order.
    let get = r[1].as_range().expect("a range answer");
    assert_eq!(get.kvs().len(), 1);
    assert_eq!(get.kvs()[0].value(), b"v");
    assert_eq!(get.kvs()[0].mod_revision(), result.revision());
    // get_prefix
    assert_eq!(suffixes(r[2].as_range().unwrap().kvs(), &p), ["r/1", "r/2"]);
    // delete of an existing key and of a missing one
    assert_eq!(r[3].as_delete().unwrap().deleted(), 1);
    assert_eq!(r[4].as_delete().unwrap().deleted(), 0);
    // nested txn: its compare saw the state before the transaction; its get runs in order
    let inner = r[5].as_txn().expect("a nested txn answer");
    assert!(inner.succeeded());
    assert_eq!(inner.responses().len(), 2);
    assert!(inner.responses()[0].as_put().is_some());
    assert_eq!(
        inner.responses()[1].as_range().unwrap().kvs()[0].value(),
        b"v"
    );
    // put with prev_kv, converted from a request builder
    assert_eq!(r[6].as_put().unwrap().prev_kv().unwrap().value(), b"before");
    // range with options, converted from a request builder
    let limited = r[7].as_range().unwrap();
    assert_eq!(suffixes(limited.kvs(), &p), ["r/1"]);
    assert!(limited.more());
    assert!(limited.kvs()[0].value().is_empty());
    // delete with prev_kv
    let deleted = r[8].as_delete().unwrap();
    assert_eq!(deleted.deleted(), 2);
    assert_eq!(suffixes(deleted.prev_kvs(), &p), ["r/1", "r/2"]);
    assert!(matches!(&r[8], TxnOpResponse::Delete(_)));

    // Everything was applied at one revision.
    let new = client.get(key(&p, "new")).await.unwrap().unwrap();
    assert_eq!(
        (new.value(), new.mod_revision()),
        (&b"v"[..], result.revision())
    );
    assert_eq!(new.version(), 1);
    let prev = client.get(key(&p, "prev")).await.unwrap().unwrap();
    assert_eq!(
        (prev.value(), prev.mod_revision()),
        (&b"after"[..], result.revision())
    );
    let nested = client.get(key(&p, "nested")).await.unwrap().unwrap();
    assert_eq!(
        (nested.value(), nested.mod_revision()),
        (&b"yes"[..], result.revision())
    );
    assert_eq!(client.get(key(&p, "old")).await.unwrap(), None);
    assert_eq!(
        client.range(key(&p, "r/")).prefix().await.unwrap().count(),
        0
    );
    assert_eq!(result.clone().into_responses().len(), 9);
}

#[tokio::test]
async fn failure_branch_runs_when_a_compare_fails() {
    let (_etcd, client, p) = setup!("txn_failure");
    client.put(key(&p, "k"), "current").await.unwrap();
    let nested = client
        .txn()
        .when([Compare::value(key(&p, "k")).eq("current")])
        .and_then([TxnOp::delete(key(&p, "k"))]);
    let result = client
        .txn()
        .when([Compare::value(key(&p, "k")).eq("expected")])
        .and_then([TxnOp::put(key(&p, "success"), "ran")])
        .or_else([
            TxnOp::get(key(&p, "k")),
            TxnOp::put(key(&p, "failure"), "ran"),
            TxnOp::txn(nested),
            TxnOp::put_with_lease(key(&p, "failure-2"), "ran", 0),
            TxnOp::delete_prefix(key(&p, "nothing/")),
        ])
        .await
        .unwrap();
    assert!(!result.succeeded());
    let r = result.responses();
    assert_eq!(r.len(), 5);
    assert_eq!(r[0].as_range().unwrap().kvs()[0].value(), b"current");
    assert!(r[1].as_put().is_some());
    let inner = r[2].as_txn().unwrap();
    assert!(inner.succeeded());
    assert_eq!(inner.responses()[0].as_delete().unwrap().deleted(), 1);
    assert!(r[3].as_put().is_some());
    assert_eq!(r[4].as_delete().unwrap().deleted(), 0);
    assert_eq!(client.get(key(&p, "success")).await.unwrap(), None);
    assert_eq!(client.get(key(&p, "k")).await.unwrap(), None);
    assert!(client.get(key(&p, "failure")).await.unwrap().is_some());
    assert!(client.get(key(&p, "failure-2")).await.unwrap().is_some());
}

#[tokio::test]
async fn empty_and_read_only_transactions() {
    let (_etcd, client, p) = setup!("txn_empty");
    let empty = client.txn().await.unwrap();
    assert!(empty.succeeded(), "no compares: the success branch");
    assert!(empty.responses().is_empty());
    client.put(key(&p, "a"), "1").await.unwrap();
    let read = client
        .txn()
        .and_then([TxnOp::get(key(&p, "a")), TxnOp::get(key(&p, "b"))])
        .send()
        .await
        .unwrap();
    assert_eq!(read.responses()[0].as_range().unwrap().kvs().len(), 1);
    assert!(read.responses()[1].as_range().unwrap().kvs().is_empty());
}

/// Sets `k` to `new` if it is unchanged since `seen`; otherwise reads it.
async fn cas(
    client: &Client,
    k: &Bytes,
    seen: &etcd_kv::KeyValue,
    new: &str,
) -> etcd_kv::Result<etcd_kv::TxnResponse> {
    client
        .txn()
        .when([Compare::mod_revision(k).eq(seen.mod_revision())])
        .and_then([TxnOp::put(k, new)])
        .or_else([TxnOp::get(k)])
        .await
}

#[tokio::test]
async fn conflicting_cas_takes_the_failure_branch() {
    let (_etcd, client, p) = setup!("txn_cas");
    let k = key(&p, "balance");
    client.put(&k, "100").await.unwrap();

    // Two writers read the same state...
    let seen_a = client.get(&k).await.unwrap().unwrap();
    let other = client.clone();
    let seen_b = other.get(&k).await.unwrap().unwrap();
    assert_eq!(seen_a, seen_b);

    // ...the first to commit wins, the second sees the winner's value instead.
    let a = cas(&client, &k, &seen_a, "50").await.unwrap();
    assert!(a.succeeded());
    let b = cas(&other, &k, &seen_b, "70").await.unwrap();
    assert!(!b.succeeded());
    let current = b.responses()[0].as_range().unwrap();
    assert_eq!(current.kvs()[0].value(), b"50");
    assert_eq!(current.kvs()[0].mod_revision(), a.revision());
    assert_eq!(client.get(&k).await.unwrap().unwrap().value(), b"50");
}

#[tokio::test]
async fn concurrent_cas_increments_lose_no_update() {
    let (_etcd, client, p) = setup!("txn_counter");
    let k = key(&p, "counter");
    client.put(&k, "0").await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            let k = k.clone();
            tokio::spawn(async move {
                let mut conflicts = 0;
                for _ in 0..5 {
                    let mut seen = client.get(&k).await?.expect("counter");
                    loop {
                        let n: u64 = seen.value_str().unwrap().parse().unwrap();
                        let r = client
                            .txn()
                            .when([Compare::mod_revision(&k).eq(seen.mod_revision())])
                            .and_then([TxnOp::put(&k, (n + 1).to_string())])
                            .or_else([TxnOp::get(&k)])
                            .await?;
                        if r.succeeded() {
                            break;
                        }
                        conflicts += 1;
                        seen = r.responses()[0].as_range().unwrap().kvs()[0].clone();
                    }
                }
                Ok::<_, Error>(conflicts)
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let kv = client.get(&k).await.unwrap().unwrap();
    assert_eq!(kv.value(), b"40");
    assert_eq!(kv.version(), 41);
}

fn puts(p: &str, tag: &str, n: usize) -> Vec<TxnOp> {
    (0..n)
        .map(|i| TxnOp::put(key(p, format!("{tag}/{i:03}")), "v"))
        .collect()
}

async fn count(client: &Client, prefix: &Bytes) -> i64 {
    client
        .range(prefix)
        .prefix()
        .count_only()
        .await
        .unwrap()
        .count()
}

fn assert_too_many(result: etcd_kv::Result<etcd_kv::TxnResponse>, sent: bool) {
    match result {
        Err(Error::InvalidInput { reason, source }) => {
            assert_eq!(source.is_some(), sent, "{reason}");
            if sent {
                assert!(reason.contains("too many operations"), "{reason}");
            } else {
                assert!(reason.contains("at most 128"), "{reason}");
            }
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[tokio::test]
async fn a_txn_at_the_op_limit_applies_entirely() {
    let (_etcd, client, p) = setup!("txn_128");
    let r = client
        .txn()
        .when((0..128).map(|i| Compare::version(key(&p, format!("c{i}"))).eq(0)))
        .and_then(puts(&p, "ok", 128))
        .or_else(puts(&p, "no", 128))
        .await
        .unwrap();
    assert!(r.succeeded());
    assert_eq!(r.responses().len(), 128);
    assert_eq!(count(&client, &key(&p, "ok/")).await, 128);
    assert_eq!(count(&client, &key(&p, "no/")).await, 0);
    let kvs = client
        .range(key(&p, "ok/"))
        .prefix()
        .await
        .unwrap()
        .into_kvs();
    assert!(kvs.iter().all(|kv| kv.mod_revision() == r.revision()));
}

#[tokio::test]
async fn a_txn_over_the_op_limit_is_refused_before_sending_and_changes_nothing() {
    let (_etcd, client, p) = setup!("txn_129");
    // Refused by the client: proven unsent by a client that cannot reach any server.
    let nowhere = unreachable_client();
    assert_too_many(nowhere.txn().and_then(puts(&p, "a", 129)).await, false);
    assert_too_many(nowhere.txn().or_else(puts(&p, "a", 129)).await, false);
    assert_too_many(
        nowhere
            .txn()
            .when((0..129).map(|i| Compare::version(key(&p, format!("{i}"))).eq(0)))
            .await,
        false,
    );
    let nested = nowhere.txn().and_then(puts(&p, "n", 129));
    assert_too_many(
        nowhere
            .txn()
            .and_then([TxnOp::put(key(&p, "outer"), "v"), TxnOp::txn(nested)])
            .await,
        false,
    );

    // And by the real client, with nothing written.
    assert_too_many(client.txn().and_then(puts(&p, "a", 129)).await, false);
    let nested = client.txn().and_then(puts(&p, "n", 129));
    assert_too_many(
        client
            .txn()
            .and_then([TxnOp::put(key(&p, "outer"), "v")])
            .and_then([TxnOp::txn(nested)])
            .await,
        false,
    );
    assert_eq!(count(&client, &Bytes::from(p.clone())).await, 0);
}

#[tokio::test]
async fn a_txn_over_the_servers_op_limit_fails_typed_and_changes_nothing() {
    let (etcd, _client, p) = setup!("txn_129_server");
    // A client told the server allows more sends it; the server refuses it whole.
    let client = crate::builder()
        .endpoint(etcd.endpoint(0))
        .max_txn_ops(1000)
        .build()
        .unwrap();
    let result = client
        .txn()
        .and_then(puts(&p, "a", 129))
        .or_else([TxnOp::put(key(&p, "failure"), "v")])
        .await;
    let err = result.expect_err("etcd refuses 129 operations");
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err:?}");
    assert!(!err.is_outcome_unknown());
    assert_too_many(Err(err), true);
    // Nested: the server checks each nested list too.
    let nested = client.txn().and_then(puts(&p, "n", 129));
    let err = client
        .txn()
        .and_then([TxnOp::put(key(&p, "outer"), "v"), TxnOp::txn(nested)])
        .await
        .expect_err("etcd refuses a nested txn of 129 operations");
    assert_too_many(Err(err), true);
    assert_eq!(count(&client, &Bytes::from(p.clone())).await, 0);
}

#[tokio::test]
async fn a_txn_over_the_request_size_limit_fails_typed_and_changes_nothing() {
    let (_etcd, client, p) = setup!("txn_too_large");
    let too_large = |result: etcd_kv::Result<etcd_kv::TxnResponse>, by_server: bool| match result {
        Err(e @ Error::InvalidInput { .. }) => {
            assert!(e.to_string().contains("too large"), "{e}");
            assert_eq!(e.status().is_some(), by_server, "{e:?}");
            assert!(!e.is_outcome_unknown(), "{e:?}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    // 3 × 600 KiB is over etcd's default 1.5 MiB request limit (--max-request-bytes):
    // the client refuses it before sending...
    let big = Bytes::from(vec![b'x'; 600 * 1024]);
    let puts = |value: &Bytes| {
        (0..3)
            .map(|i| TxnOp::put(key(&p, format!("big/{i}")), value))
            .collect::<Vec<_>>()
    };
    too_large(client.txn().and_then(puts(&big)).await, false);
    // ...and so does the server, to a client told it allows more; 3 × 1 MiB is over its
    // gRPC message limit (2 MiB), a different refusal.
    let lax = crate::builder()
        .endpoint(client.current_endpoint())
        .max_request_bytes(8 << 20)
        .build()
        .unwrap();
    too_large(lax.txn().and_then(puts(&big)).await, true);
    let bigger = Bytes::from(vec![b'x'; 1024 * 1024]);
    too_large(lax.txn().and_then(puts(&bigger)).await, true);
    assert_eq!(count(&client, &key(&p, "big/")).await, 0);

    // Just under the limit: 2 × 700 KiB applies.
    let big = Bytes::from(vec![b'y'; 700 * 1024]);
    let r = client
        .txn()
        .and_then((0..2).map(|i| TxnOp::put(key(&p, format!("ok/{i}")), &big)))
        .await
        .unwrap();
    assert!(r.succeeded());
    let kvs = client
        .range(key(&p, "ok/"))
        .prefix()
        .await
        .unwrap()
        .into_kvs();
    assert_eq!(kvs.len(), 2);
    assert!(kvs.iter().all(|kv| kv.value() == big.as_ref()));
    assert_eq!(keys(&kvs), [key(&p, "ok/0"), key(&p, "ok/1")]);
}

#[tokio::test]
async fn the_values_a_txn_read_in_one_call() {
    let (_etcd, client, p) = setup!("txn_values");
    client.put(key(&p, "a"), "1").await.unwrap();
    client.put(key(&p, "r/1"), "x").await.unwrap();
    client.put(key(&p, "r/2"), "y").await.unwrap();
    let answer = client
        .txn()
        .and_then([
            TxnOp::get(key(&p, "a")),
            TxnOp::put(key(&p, "b"), "2"),
            TxnOp::get(key(&p, "missing")),
            TxnOp::get_prefix(key(&p, "r/")),
            TxnOp::delete(key(&p, "a")),
        ])
        .await
        .unwrap();
    assert_eq!(
        answer.values(),
        [Some(&b"1"[..]), None, None, Some(&b"x"[..]), None]
    );
    let read: Vec<&[u8]> = answer.kvs().map(|kv| kv.value()).collect();
    assert_eq!(read, [&b"1"[..], b"x", b"y"]);
}
