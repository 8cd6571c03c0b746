//! Integration tests of etcd-pmap against a real etcd (`ETCD_TEST_VERSION=3.4`, `3.5.1`,
//! `3.5.30`...).
//!
//! Every test shares one server per test binary ([`xtask::testing::shared_etcd`]) and works
//! in a database under a key prefix of its own, so tests run in parallel. Without etcd (and
//! without `CI` set) the tests return early after a notice.

mod cache;
mod catalog;
mod codecs;
mod decode;
mod fb;
mod index;
#[cfg(feature = "grpc")]
mod interop;
mod order;
mod roundtrip;
mod txn;
mod watch;

use etcd_kv::Client;
use etcd_pmap::Database;

/// A connected client on the shared server, or `None` to skip.
pub async fn client() -> Option<Client> {
    let etcd = xtask::testing::shared_etcd()?;
    let mut builder = Client::builder().endpoint(etcd.endpoint(0));
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
    let client = builder.connect().await.expect("connect to the shared etcd");
    Some(client)
}

/// A database under a fresh prefix on the shared server, or `None` to skip.
pub async fn database(name: &str) -> Option<Database> {
    let client = client().await?;
    Some(
        Database::builder(client)
            .prefix(xtask::testing::unique_prefix(name))
            .build(),
    )
}

/// `let db = setup!("name");`: a database under a unique prefix; returns from the test when
/// etcd is unavailable.
#[macro_export]
macro_rules! setup {
    ($name:expr) => {{
        let Some(db) = $crate::database($name).await else {
            return;
        };
        db
    }};
}
