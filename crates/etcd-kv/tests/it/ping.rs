//! HTTP/2 keep-alive of the gRPC connections (`http2_keep_alive`): a frozen member is
//! caught under an open call in interval + timeout; a healthy one is pinged without being
//! made to close the connection (etcd refuses pings without streams, or too often).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// This process's established connections to `port`: their local addresses.
fn connections(port: u16) -> BTreeSet<String> {
    let out = std::process::Command::new("ss")
        .args(["-tnpH", "state", "established"])
        .arg(format!("( dport = :{port} )"))
        .output()
        .expect("ss (iproute2) runs");
    let me = format!("pid={},", std::process::id());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&me))
        .filter_map(|l| {
            l.split_whitespace()
                .find(|t| t.contains(':') && t.starts_with(|c: char| c.is_ascii_digit()))
                .map(str::to_string)
        })
        .collect()
}

fn port(endpoint: &str) -> u16 {
    endpoint.rsplit(':').next().unwrap().parse().unwrap()
}

fn grpc_only() -> bool {
    xtask::testing::grpc_transport()
}

/// A put sent to a member that then freezes fails within interval + timeout (not the
/// 30 s request timeout), says why, and says its outcome is unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_member_is_caught_by_an_unanswered_ping() {
    if !grpc_only() {
        return;
    }
    let Some(mut etcd) = xtask::testing::start(xtask::testing::builder()) else {
        return;
    };
    let client = crate::builder()
        .endpoint(etcd.endpoint(0))
        .request_timeout(Duration::from_secs(30))
        .http2_keep_alive(Duration::from_secs(5), Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    client.put("ping/warm", "1").await.unwrap();
    etcd.pause_node(0).unwrap();
    let started = Instant::now();
    let err = client.put("ping/frozen", "1").await.unwrap_err();
    let took = started.elapsed();
    etcd.resume_node(0).unwrap();
    let chain = format!("{err:?} / {err}");
    assert!(
        took < Duration::from_secs(9),
        "failed after {took:?}: {chain}"
    );
    assert!(err.is_outcome_unknown(), "{chain}");
    let mut source: Option<&dyn std::error::Error> = Some(&err);
    let mut named = false;
    while let Some(e) = source {
        named |= e
            .to_string()
            .contains("no answer to an HTTP/2 PING within 1s");
        source = e.source();
    }
    assert!(named, "the cause is named: {chain}");
    // The member answers again on a new connection.
    client.put("ping/after", "1").await.unwrap();
}

/// A watch stream open on a healthy member for 12 s with pings every 5 s keeps its
/// connection: etcd does not close it for pinging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_member_keeps_a_pinged_connection() {
    if !grpc_only() {
        return;
    }
    // A server of its own: the connections to its port are this test's only.
    let Some((etcd, _client)) = crate::own_etcd().await else {
        return;
    };
    let prefix = "ping-healthy/";
    let port = port(&etcd.endpoint(0));
    // Only the connections of the client under test.
    let others = connections(port);
    let client = crate::builder()
        .endpoint(etcd.endpoint(0))
        .http2_keep_alive(Duration::from_secs(5), Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    let mut watch = client.watch(prefix).prefix().await.unwrap();
    let before: BTreeSet<String> = connections(port).difference(&others).cloned().collect();
    assert!(!before.is_empty(), "the client's connections are seen");
    tokio::time::sleep(Duration::from_secs(12)).await;
    client.put(format!("{prefix}k"), "v").await.unwrap();
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        futures_util::StreamExt::next(&mut watch),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert_eq!(response.events().len(), 1);
    let after = connections(port);
    assert!(
        before.is_subset(&after),
        "a connection was closed: before {before:?}, after {after:?}"
    );
}

/// An idle connection is not pinged, even at an interval etcd would punish: etcd closes a
/// connection pinged without streams (`too_many_pings`, seen after about 5 pings at 1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_not_pinged() {
    if !grpc_only() {
        return;
    }
    // A server of its own: the connections to its port are this test's only.
    let Some((etcd, _client)) = crate::own_etcd().await else {
        return;
    };
    let prefix = "ping-idle/";
    let port = port(&etcd.endpoint(0));
    // Only the connections of the client under test.
    let others = connections(port);
    let client = crate::builder()
        .endpoint(etcd.endpoint(0))
        .http2_keep_alive(Duration::from_secs(1), Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    client.put(format!("{prefix}k"), "v").await.unwrap();
    let before: BTreeSet<String> = connections(port).difference(&others).cloned().collect();
    assert!(!before.is_empty(), "the client's connections are seen");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = connections(port);
    assert!(
        before.is_subset(&after),
        "a connection was closed: before {before:?}, after {after:?}"
    );
    client.range(format!("{prefix}k")).await.unwrap();
}
