//! Integration tests of etcd-kv against a real etcd (`ETCD_TEST_VERSION=3.4`, `3.5.1`,
//! `3.5.30`...).
//!
//! Every test shares one server per test binary ([`xtask::testing::shared_etcd`]) and works
//! under a key prefix of its own, or in a client namespace, so tests run in parallel. Tests
//! that change something global to a server (compaction, auth, snapshots under load) start a server of their own.
//! Without etcd (and without `CI` set) the tests return early after a notice.

mod auth;
mod batch;
mod cache;
mod child;
mod cluster;
mod election;
mod errors;
mod etcdctl;
mod fence;
mod generation;
#[cfg(feature = "grpc")]
mod interop;
mod kv;
mod lease;
mod lock;
mod maintenance;
mod membership;
mod namespace;
mod ping;
mod queue;
mod range;
mod resync;
mod scan;
mod sequence;
mod session;
#[cfg(feature = "srv")]
mod srv;
mod streams;
mod strict;
mod tls;
mod txn;
mod unix;
mod watch;
mod watch_handle;

use bytes::Bytes;
use etcd_kv::{Client, KeyValue};
use xtask::Etcd;

/// A client builder in the protocol and stream mode the run asks for:
/// `ETCD_TEST_TRANSPORT=grpc` runs the suite over native gRPC, `ETCD_TEST_STREAMS=per-call`
/// with one stream per watch and one call per keep-alive.
pub fn builder() -> etcd_kv::ClientBuilder {
    let mut builder = Client::builder();
    if xtask::testing::grpc_transport() {
        #[cfg(feature = "grpc")]
        {
            builder = builder.protocol(etcd_kv::Protocol::Grpc);
        }
        #[cfg(not(feature = "grpc"))]
        panic!("ETCD_TEST_TRANSPORT=grpc needs the suite built with --features grpc");
    }
    if xtask::testing::per_call_streams() {
        builder = builder.stream_mode(etcd_kv::StreamMode::PerCall);
    }
    builder
}

/// The shared server and a connected client, or `None` to skip.
pub async fn connect() -> Option<(&'static Etcd, Client)> {
    let etcd = xtask::testing::shared_etcd()?;
    let client = crate::builder()
        .endpoint(etcd.endpoint(0))
        .connect()
        .await
        .expect("connect to the shared etcd");
    Some((etcd, client))
}

/// A fresh single-node server of this test's own (for what is global to a server:
/// compaction, its revision...) and a client of it, or `None` to skip.
pub async fn own_etcd() -> Option<(Etcd, Client)> {
    let etcd = xtask::testing::start(xtask::testing::builder())?;
    let client = crate::builder()
        .endpoint(etcd.endpoint(0))
        .connect()
        .await
        .expect("connect to a fresh etcd");
    Some((etcd, client))
}

/// A client on the shared server confined to a fresh namespace of its own, or `None` to skip.
pub async fn namespaced(name: &str) -> Option<(&'static Etcd, Client)> {
    let (etcd, client) = connect().await?;
    let client = client.with_namespace(xtask::testing::unique_prefix(name));
    Some((etcd, client))
}

/// `let (etcd, client, prefix) = setup!("name");`: the shared server, a client and a unique
/// key prefix; returns from the test when etcd is unavailable.
#[macro_export]
macro_rules! setup {
    ($name:expr) => {{
        let Some((etcd, client)) = $crate::connect().await else {
            return;
        };
        (etcd, client, xtask::testing::unique_prefix($name))
    }};
}

/// `let (etcd, client) = setup_ns!("name");`: like [`setup!`] with a namespaced client.
#[macro_export]
macro_rules! setup_ns {
    ($name:expr) => {{
        let Some(pair) = $crate::namespaced($name).await else {
            return;
        };
        pair
    }};
}

/// `prefix` followed by `suffix`, as bytes (suffix may be any bytes).
pub fn key(prefix: &str, suffix: impl AsRef<[u8]>) -> Bytes {
    let mut k = prefix.as_bytes().to_vec();
    k.extend_from_slice(suffix.as_ref());
    Bytes::from(k)
}

/// The keys of some key-values.
pub fn keys(kvs: &[KeyValue]) -> Vec<Bytes> {
    kvs.iter().map(KeyValue::key_bytes).collect()
}

/// The keys of some key-values, each with `prefix` removed (panics if one lacks it).
pub fn suffixes(kvs: &[KeyValue], prefix: &str) -> Vec<String> {
    kvs.iter()
        .map(|kv| {
            let k = kv.key_str().expect("utf-8 key");
            k.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{k:?} lacks prefix {prefix:?}"))
                .to_string()
        })
        .collect()
}

/// Waits up to `within` for `done` (asked every 50 ms); panics with `what` otherwise.
pub async fn eventually<F, Fut>(within: std::time::Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = std::time::Instant::now() + within;
    while !done().await {
        assert!(
            std::time::Instant::now() < end,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A client whose only endpoint refuses connections: any request that reaches the network
/// fails with a connection error, so an `InvalidInput` from it proves nothing was sent.
pub fn unreachable_client() -> Client {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    crate::builder()
        .endpoint(format!("http://127.0.0.1:{port}"))
        .retry(etcd_kv::RetryConfig::none())
        .build()
        .expect("build a client")
}

/// Grants a lease with this TTL (leases themselves are tested in `lease`).
pub async fn grant_lease(client: &Client, ttl: i64) -> i64 {
    let lease = client.lease_grant(ttl).await.expect("grant a lease");
    assert!(lease.id() != 0);
    lease.id()
}

/// Revokes a lease.
pub async fn revoke_lease(client: &Client, id: i64) {
    client.lease_revoke(id).await.expect("revoke a lease");
}

/// Runs `etcdctl args...` against `etcd`, asserts success and returns stdout.
pub fn etcdctl<I, S>(etcd: &Etcd, args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().into()).collect();
    let out = etcd.etcdctl(&args).expect("run etcdctl");
    assert!(
        out.status.success(),
        "etcdctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
