//! Fenced writes: a lock's or leadership's writes hold while it is held, and write nothing
//! once it is lost.

use crate::setup;
use etcd_kv::{Compare, Election, Error, TxnOp};

#[tokio::test]
async fn fenced_writes_hold_while_the_lock_is_held_and_write_nothing_after() {
    let (etcd, client, p) = setup!("fence_lock");
    let name = format!("{p}mutex");
    let data = format!("{p}data");
    let guard = client.lock(&name).ttl(5).await.unwrap();
    let fenced = guard.fenced();
    assert_eq!(fenced.token(), guard.create_revision());

    let put = fenced.put(&data, "a").await.unwrap();
    assert!(put.revision() > guard.create_revision());
    assert_eq!(client.get(&data).await.unwrap().unwrap().value(), b"a");
    // A transaction of the caller's nests in the fence: its own condition picks its branch.
    let inner = fenced
        .txn(
            client
                .txn()
                .when([Compare::value(data.as_str()).eq("a")])
                .and_then([TxnOp::put(data.as_str(), "b")])
                .or_else([TxnOp::put(data.as_str(), "c")]),
        )
        .await
        .unwrap();
    assert!(inner.succeeded());
    let now = client.get(&data).await.unwrap().unwrap();
    assert_eq!(now.value(), b"b");
    assert_eq!(inner.revision(), now.mod_revision());
    let all = fenced
        .all([
            TxnOp::put(format!("{p}x"), "1"),
            TxnOp::put(format!("{p}y"), "1"),
        ])
        .await
        .unwrap();
    assert_eq!(all.responses().len(), 2);
    let deleted = fenced.delete(format!("{p}x")).await.unwrap();
    assert_eq!(deleted.deleted(), 1);

    // Another client revokes the lock's lease: the lock is gone, and with it every fenced
    // write, whatever it is.
    let other = crate::builder()
        .endpoints(etcd.endpoints())
        .connect()
        .await
        .unwrap();
    other
        .lease_revoke(guard.session().lease_id())
        .await
        .unwrap();
    let before = client.get(&data).await.unwrap().unwrap().mod_revision();
    let err = fenced.put(&data, "stale").await.unwrap_err();
    assert!(err.is_not_owner(), "{err:?}");
    assert!(matches!(err, Error::NotOwner { token, .. } if token == guard.create_revision()));
    assert!(err.to_string().contains("not the owner"), "{err}");
    assert!(!err.is_outcome_unknown());
    let err = fenced
        .txn(client.txn().and_then([TxnOp::put(data.as_str(), "stale")]))
        .await
        .unwrap_err();
    assert!(err.is_not_owner(), "{err:?}");
    assert!(fenced.delete(&data).await.unwrap_err().is_not_owner());
    assert!(fenced
        .write(client.put(format!("{p}y"), "stale"))
        .await
        .unwrap_err()
        .is_not_owner());
    let now = client.get(&data).await.unwrap().unwrap();
    assert_eq!((now.value(), now.mod_revision()), (&b"b"[..], before));
    assert_eq!(
        client.get(format!("{p}y")).await.unwrap().unwrap().value(),
        b"1"
    );

    // A new holder: its writes pass, the old holder's still do not.
    let next = other.lock(&name).ttl(5).await.unwrap();
    assert!(next.create_revision() > guard.create_revision());
    next.fenced().put(&data, "next").await.unwrap();
    assert!(fenced.put(&data, "stale").await.unwrap_err().is_not_owner());
    assert_eq!(client.get(&data).await.unwrap().unwrap().value(), b"next");
    next.release().await.unwrap();
}

#[tokio::test]
async fn a_former_leader_writes_nothing() {
    let (_etcd, client, p) = setup!("fence_election");
    let election = Election::new(&client, format!("{p}election"));
    let leadership = election.campaign("me").ttl(5).await.unwrap();
    let fenced = leadership.fenced();
    fenced.put(format!("{p}config"), "v1").await.unwrap();
    leadership.resign().await.unwrap();
    let err = fenced.put(format!("{p}config"), "v2").await.unwrap_err();
    assert!(err.is_not_owner(), "{err:?}");
    let value = client.get(format!("{p}config")).await.unwrap().unwrap();
    assert_eq!(value.value(), b"v1");
}
