//! Sessions: the lease behind locks and elections, its loss, close and orphan.

use crate::setup;
use etcd_kv::{Election, Error, LeaseLost, Session};
use std::time::{Duration, Instant};

#[tokio::test]
async fn close_revokes_and_everything_held_is_reported_lost() {
    let (_etcd, client, p) = setup!("session_close");
    let session = Session::builder(&client).ttl(10).await.unwrap();
    assert_eq!(session.ttl(), 10);
    assert!(!session.is_lost() && session.lost_reason().is_none());
    client
        .put(format!("{p}registered"), "me")
        .lease(session.lease_id())
        .await
        .unwrap();
    let guard = client
        .lock(format!("{p}lock"))
        .session(&session)
        .await
        .unwrap();
    let leadership = Election::new(&client, format!("{p}election"))
        .campaign("me")
        .session(&session)
        .await
        .unwrap();
    let (guard_lost, leader_lost) = (guard.lost(), leadership.lost());

    // A clone shares the lease: closing it ends the session everywhere.
    session.clone().close().await.unwrap();
    assert_eq!(session.lost_reason(), Some(LeaseLost::Expired));
    assert_eq!(guard_lost.await, LeaseLost::Expired);
    assert_eq!(leader_lost.await, LeaseLost::Expired);
    assert!(client
        .get(format!("{p}registered"))
        .await
        .unwrap()
        .is_none());
    assert!(!guard.is_owner().await.unwrap());
    assert!(!leadership.is_leader().await.unwrap());
    let err = leadership.proclaim("still me?").await.unwrap_err();
    assert!(matches!(err, Error::SessionLost(_)), "{err:?}");
    let err = client
        .lock(format!("{p}lock"))
        .session(&session)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SessionLost(_)), "{err:?}");
    // Releasing what a lost session held is a no-op.
    guard.release().await.unwrap();
    leadership.resign().await.unwrap();
    session.close().await.unwrap();
}

#[tokio::test]
async fn loss_is_reported_when_the_lease_is_revoked_elsewhere() {
    let (_etcd, client, _p) = setup!("session_revoked");
    let session = Session::builder(&client).ttl(3).await.unwrap();
    let lost = session.lost();
    client.lease_revoke(session.lease_id()).await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(3), lost)
        .await
        .expect("reported within the TTL");
    assert_eq!(reason, LeaseLost::Expired);
    assert!(session.is_lost());
}

#[tokio::test]
async fn orphan_stops_refreshing_and_the_lease_expires() {
    let (_etcd, client, p) = setup!("session_orphan");
    let session = Session::builder(&client).ttl(2).await.unwrap();
    let guard = client
        .lock(format!("{p}lock"))
        .session(&session)
        .await
        .unwrap();
    session.orphan();
    assert!(session.is_lost());
    // Still held until the TTL runs out, as after a crash.
    assert!(guard.is_owner().await.unwrap());
    let start = Instant::now();
    while guard.is_owner().await.unwrap() {
        assert!(start.elapsed() < Duration::from_secs(4), "lease expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn tasks_sharing_a_session_take_turns_on_one_name() {
    let (_etcd, client, p) = setup!("session_shared");
    let name = format!("{p}lock");
    let session = Session::builder(&client).ttl(10).await.unwrap();
    let first = client.lock(&name).session(&session).await.unwrap();
    // Same session, same name: same key, so the second task waits for the first locally.
    let second = {
        let (client, name, session) = (client.clone(), name.clone(), session.clone());
        tokio::spawn(async move { client.lock(&name).session(&session).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished());
    let first_key = first.key().to_vec();
    let first_revision = first.create_revision();
    first.release().await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(2), second)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.key(), &first_key[..]);
    assert!(second.create_revision() > first_revision, "a fresh key");
    // A timeout while waiting locally is a timeout like any other.
    let err = client
        .lock(&name)
        .session(&session)
        .timeout(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LockTimeout { .. }), "{err:?}");
    assert!(
        second.is_owner().await.unwrap(),
        "the timeout left the holder alone"
    );
    second.release().await.unwrap();
    session.close().await.unwrap();
}
