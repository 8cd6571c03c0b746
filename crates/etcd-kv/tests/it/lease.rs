//! Leases: grant, time-to-live, keep-alive, keeper loss.

use etcd_kv::{Client, Error, LeaseLost};
use std::time::Duration;

async fn client(name: &str) -> Option<Client> {
    crate::namespaced(name).await.map(|(_, client)| client)
}

#[tokio::test]
async fn grant_ttl_keys_leases_keep_alive_once_revoke() {
    let Some(client) = client("lease-basic").await else {
        return;
    };
    let lease = client.lease_grant(30).await.unwrap();
    assert!(lease.id() > 0);
    assert_eq!(lease.ttl(), 30);
    client.put("a", "1").lease(lease.id()).await.unwrap();
    client.put("b", "2").lease(lease.id()).await.unwrap();
    let ttl = client.lease_time_to_live(lease.id()).keys().await.unwrap();
    assert_eq!(ttl.granted_ttl(), 30);
    assert!(ttl.ttl() > 0 && ttl.ttl() <= 30);
    let mut keys = ttl.keys().to_vec();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            bytes::Bytes::from_static(b"a"),
            bytes::Bytes::from_static(b"b")
        ]
    );
    assert!(client.leases().await.unwrap().contains(&lease.id()));
    assert_eq!(client.lease_keep_alive_once(lease.id()).await.unwrap(), 30);
    assert_eq!(client.get("a").await.unwrap().unwrap().lease(), lease.id());

    client.lease_revoke(lease.id()).await.unwrap();
    assert!(
        client.get("a").await.unwrap().is_none(),
        "revoking deletes attached keys"
    );
    assert!(matches!(
        client.lease_revoke(lease.id()).await,
        Err(Error::LeaseNotFound { .. })
    ));
    assert!(matches!(
        client.lease_keep_alive_once(lease.id()).await,
        Err(Error::LeaseNotFound { .. })
    ));
    assert!(matches!(
        client.lease_time_to_live(lease.id()).await,
        Err(Error::LeaseNotFound { .. })
    ));
    assert!(matches!(
        client.put("c", "3").lease(lease.id()).await,
        Err(Error::LeaseNotFound { .. })
    ));
    assert!(matches!(
        client.lease_grant(0).await,
        Err(Error::InvalidInput { .. })
    ));
}

#[tokio::test]
async fn grant_with_a_chosen_id() {
    let Some(client) = client("lease-id").await else {
        return;
    };
    let id = 0x1000_0000 + i64::from(std::process::id()) * 7 + (rand_id() % 1000);
    let lease = client.lease_grant(10).id(id).await.unwrap();
    assert_eq!(lease.id(), id);
    let again = client.lease_grant(10).id(id).await;
    assert!(again.is_err(), "the same ID twice is refused: {again:?}");
    client.lease_revoke(id).await.unwrap();
}

fn rand_id() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::from(d.subsec_micros()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeper_keeps_key_for_3_ttl_and_key_vanishes_after_drop() {
    let Some(client) = client("lease-keeper").await else {
        return;
    };
    let keeper = client.lease_keeper(2).await.unwrap();
    client.put("alive", "yes").lease(keeper.id()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        client.get("alive").await.unwrap().is_some(),
        "kept for 3 x TTL"
    );
    assert!(keeper.lost_reason().is_none());
    drop(keeper);
    let dropped = tokio::time::Instant::now();
    loop {
        if client.get("alive").await.unwrap().is_none() {
            break;
        }
        // etcd expires a lease within its TTL plus the leader's check interval.
        assert!(
            dropped.elapsed() < Duration::from_millis(3500),
            "the key must vanish within the TTL"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn keeper_reports_loss_when_revoked_elsewhere_and_revoke_ends_it() {
    let Some(client) = client("lease-lost").await else {
        return;
    };
    let keeper = client.lease_keeper(3).await.unwrap();
    let other = client.clone();
    other.lease_revoke(keeper.id()).await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(3), keeper.lost())
        .await
        .expect("loss reported within TTL");
    assert_eq!(reason, LeaseLost::Expired);
    assert_eq!(keeper.lost_reason(), Some(LeaseLost::Expired));

    let keeper = client.lease_keeper(30).await.unwrap();
    client.put("k", "v").lease(keeper.id()).await.unwrap();
    keeper.revoke().await.unwrap();
    assert!(client.get("k").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_handle_refreshes_lists_keeps_and_revokes() {
    let Some(client) = client("lease-handle").await else {
        return;
    };
    let lease = client.grant_lease(2).await.unwrap();
    assert_eq!(lease.granted_ttl(), Some(2));
    assert_eq!(lease.to_string(), format!("lease {} (ttl 2s)", lease.id()));
    client.put("svc/1", "a").lease(lease.id()).await.unwrap();
    client.put("svc/2", "b").lease(lease.id()).await.unwrap();
    assert_eq!(lease.keep_alive_once().await.unwrap(), 2);
    let mut keys = lease.keys().await.unwrap();
    keys.sort();
    assert_eq!(keys, [&b"svc/1"[..], &b"svc/2"[..]]);
    let left = lease.time_to_live().await.unwrap();
    assert_eq!(left.granted_ttl(), 2);
    assert!(
        left.to_string()
            .starts_with(&format!("lease {}: ", lease.id())),
        "{left}"
    );
    assert!(
        left.to_string().ends_with("left of 2s, keys: svc/1, svc/2"),
        "{left}"
    );

    // A handle from the ID alone: its keeper learns the TTL from etcd and keeps the keys
    // for three TTLs.
    let by_id = client.lease(lease.id());
    assert_eq!(by_id.granted_ttl(), None);
    let keeper = by_id.keep_alive().await.unwrap();
    assert_eq!(keeper.ttl(), 2);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(client.get("svc/1").await.unwrap().is_some(), "kept alive");
    drop(keeper);

    lease.revoke().await.unwrap();
    assert!(
        client.get("svc/1").await.unwrap().is_none(),
        "revoked with its lease"
    );
    assert!(matches!(
        lease.keep_alive_once().await,
        Err(Error::LeaseNotFound { .. })
    ));
    assert!(matches!(
        lease.keys().await,
        Err(Error::LeaseNotFound { .. })
    ));
    assert!(matches!(
        by_id.revoke().await,
        Err(Error::LeaseNotFound { .. })
    ));
    assert!(matches!(
        client.lease(i64::MAX).keep_alive().await,
        Err(Error::LeaseNotFound { .. })
    ));
    assert!(matches!(
        client.grant_lease(0).await,
        Err(Error::InvalidInput { .. })
    ));
}
