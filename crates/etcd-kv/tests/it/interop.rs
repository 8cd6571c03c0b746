//! Native gRPC and the gateway side by side, on the same server, whatever
//! `ETCD_TEST_TRANSPORT` says: what one writes the other reads identically, and locks,
//! elections and leases taken over one hold against the other.

use etcd_kv::{Client, Election, Protocol};
use std::time::Duration;

/// A gRPC client and a gateway client on the shared server, and a unique prefix.
async fn pair(name: &str) -> Option<(Client, Client, String)> {
    let etcd = xtask::testing::shared_etcd()?;
    let grpc = Client::builder()
        .endpoint(etcd.endpoint(0))
        .protocol(Protocol::Grpc)
        .connect()
        .await
        .expect("gRPC client");
    let gateway = Client::builder()
        .endpoint(etcd.endpoint(0))
        .connect()
        .await
        .expect("gateway client");
    Some((grpc, gateway, xtask::testing::unique_prefix(name)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_keys_values_and_metadata_read_the_same() {
    let Some((grpc, gateway, p)) = pair("interop_kv").await else {
        return;
    };
    let odd: Vec<u8> = (0u8..=255).collect();
    let keys: Vec<Vec<u8>> = vec![
        format!("{p}plain").into_bytes(),
        [p.as_bytes(), b"\0nul\0"].concat(),
        [p.as_bytes(), &[0xff, 0xfe, 0x80]].concat(),
    ];
    // Half written over gRPC, half over the gateway; one of each empty.
    for (i, key) in keys.iter().enumerate() {
        let value = if i == 0 { Vec::new() } else { odd.clone() };
        let writer = if i % 2 == 0 { &grpc } else { &gateway };
        writer.put(key.clone(), value).await.unwrap();
    }
    let lease = grpc.lease_grant(60).await.unwrap();
    grpc.put(format!("{p}leased"), "v")
        .lease(lease.id())
        .await
        .unwrap();

    let a = grpc.range(p.clone()).prefix().await.unwrap();
    let b = gateway.range(p.clone()).prefix().await.unwrap();
    assert_eq!(a.kvs().len(), 4);
    assert_eq!(
        a.kvs(),
        b.kvs(),
        "every field of every key-value is the same"
    );
    assert_eq!(a.count(), b.count());
    let leased = a
        .kvs()
        .iter()
        .find(|kv| kv.key().ends_with(b"leased"))
        .unwrap();
    assert_eq!(leased.lease(), lease.id());

    // Lease metadata written over one, read over the other.
    let ttl = gateway.lease_time_to_live(lease.id()).keys().await.unwrap();
    assert_eq!(ttl.granted_ttl(), 60);
    assert_eq!(ttl.keys().len(), 1);
    gateway.lease_revoke(lease.id()).await.unwrap();
    assert!(grpc.get(format!("{p}leased")).await.unwrap().is_none());

    // A transaction over gRPC, compared against a gateway write.
    let rev = b.header().revision();
    let kv = &b.kvs()[0];
    let txn = grpc
        .txn()
        .when([etcd_kv::Compare::mod_revision(kv.key()).eq(kv.mod_revision())])
        .and_then([etcd_kv::TxnOp::put(kv.key(), "changed")])
        .await
        .unwrap();
    assert!(txn.succeeded());
    assert!(txn.header().revision() > rev);
    let seen = gateway.get(kv.key()).await.unwrap().unwrap();
    assert_eq!(seen.value(), b"changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_over_grpc_excludes_a_gateway_client() {
    let Some((grpc, gateway, p)) = pair("interop_lock").await else {
        return;
    };
    let name = format!("{p}mutex");
    let held = grpc.lock(&name).await.unwrap();
    let refused = gateway
        .lock(&name)
        .timeout(Duration::from_millis(500))
        .await;
    assert!(
        refused.is_err(),
        "the gateway client waits while gRPC holds it"
    );
    let waiting = tokio::spawn({
        let gateway = gateway.clone();
        let name = name.clone();
        async move {
            gateway
                .lock(&name)
                .timeout(Duration::from_secs(10))
                .await
                .map(|g| g.create_revision())
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    let released_at = held.create_revision();
    held.release().await.unwrap();
    let theirs = waiting.await.unwrap().unwrap();
    assert!(theirs > released_at);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_election_won_over_grpc_is_seen_over_the_gateway() {
    let Some((grpc, gateway, p)) = pair("interop_election").await else {
        return;
    };
    let name = format!("{p}election");
    let leader = Election::new(&grpc, name.as_str())
        .campaign("grpc-leader")
        .await
        .unwrap();
    let seen = Election::new(&gateway, name.as_str())
        .leader()
        .await
        .unwrap()
        .expect("a leader");
    assert_eq!(seen.value(), b"grpc-leader");
    assert_eq!(seen.key(), leader.key());
    leader.proclaim("proclaimed").await.unwrap();
    let seen = Election::new(&gateway, name.as_str())
        .leader()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.value(), b"proclaimed");
    leader.resign().await.unwrap();
    assert!(Election::new(&grpc, name.as_str())
        .leader()
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_watch_sees_gateway_writes_once_and_in_order() {
    let Some((grpc, gateway, p)) = pair("interop_watch").await else {
        return;
    };
    let mut watch = grpc.watch(p.clone()).prefix().await.unwrap();
    for i in 0..20 {
        gateway
            .put(format!("{p}{i:02}"), i.to_string())
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let batch = tokio::time::timeout(
            Duration::from_secs(5),
            futures_util::StreamExt::next(&mut watch),
        )
        .await
        .expect("events in time")
        .expect("the watch goes on")
        .unwrap();
        for event in batch.events() {
            seen.push(event.kv().value_str().unwrap().to_string());
        }
    }
    let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_eq!(seen, expected);
}
