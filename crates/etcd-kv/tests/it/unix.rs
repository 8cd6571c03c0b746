//! A member on a unix socket: `unix://<path>` endpoints, over either protocol.

use etcd_kv::Error;
use futures_util::StreamExt;
use std::time::Duration;

#[tokio::test]
async fn a_member_on_a_unix_socket_serves_calls_watches_and_keep_alives() {
    let Some(etcd) = xtask::testing::start(xtask::testing::builder().unix_socket()) else {
        return;
    };
    let url = etcd.unix_endpoint(0).expect("a unix socket");
    let client = crate::builder()
        .endpoint(url.clone())
        .connect()
        .await
        .unwrap();
    assert_eq!(client.current_endpoint(), url);
    assert_eq!(client.status().await.unwrap().version(), etcd.version());

    let mut watch = client.watch("unix/").prefix().await.unwrap();
    let put = client.put("unix/k", "v").await.unwrap();
    assert_eq!(client.get("unix/k").await.unwrap().unwrap().value(), b"v");
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the watch sees the put")
        .unwrap()
        .unwrap();
    assert_eq!(event.events()[0].kv().mod_revision(), put.revision());

    let lease = client.grant_lease(2).await.unwrap();
    let keeper = lease.keep_alive().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(lease.time_to_live().await.unwrap().ttl() > 0, "kept alive");
    drop(keeper);

    // Refused before anything is sent, with what to write instead.
    for bad in ["unix://", "unix://dir/", "unix://a b"] {
        let e = crate::builder().endpoint(bad).build().unwrap_err();
        assert!(matches!(e, Error::InvalidInput { .. }), "{bad}: {e:?}");
        assert!(e.to_string().contains("unix://<socket path>"), "{bad}: {e}");
    }
    // A socket that is not there: a connection error, nothing sent.
    let gone = crate::builder()
        .endpoint(format!("{url}.gone"))
        .connect_timeout(Duration::from_secs(1))
        .retry(etcd_kv::RetryConfig::none())
        .build()
        .unwrap();
    let e = gone.put("unix/k", "x").await.unwrap_err();
    assert!(!e.is_outcome_unknown(), "{e}");
    assert!(e.to_string().contains(".gone"), "{e}");
}
