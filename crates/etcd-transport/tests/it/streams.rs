use crate::support::*;
use etcd_transport::{Idempotency, Transport};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn watch_stream_delivers_messages_and_drop_closes_its_connection() {
    let Some(endpoint) = etcd_endpoint() else {
        return;
    };
    let proxy = CountingProxy::start(&endpoint).await;
    let transport = Transport::new(&proxy.url).unwrap();
    let key = b64(&xtask::testing::unique_prefix("stream"));
    let mut watch = transport
        .stream::<_, Value>("watch", &json!({"create_request": {"key": key}}))
        .await
        .unwrap();
    let created = watch.next().await.unwrap().unwrap();
    assert_eq!(created["created"], true);
    for i in 0..3 {
        let _: Value = transport
            .unary(
                "kv/put",
                &json!({"key": key, "value": b64(&i.to_string())}),
                Idempotency::NotIdempotent,
            )
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let msg = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        for ev in msg["events"].as_array().cloned().unwrap_or_default() {
            seen.push(ev["kv"]["value"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, [b64("0"), b64("1"), b64("2")]);
    // The watch has a connection of its own besides the pooled one.
    assert_eq!(proxy.open(), 2);
    drop(watch);
    assert!(
        eventually(|| proxy.open() == 1).await,
        "dropping the stream must close its connection"
    );
    // The pooled connection is still used for unary calls.
    let _: Value = transport
        .unary("kv/range", &json!({"key": key}), Idempotency::Idempotent)
        .await
        .unwrap();
    assert_eq!(proxy.accepted(), 2);
}

#[tokio::test]
async fn stream_reports_broken_connection() {
    let Some(etcd) = xtask::testing::shared_etcd() else {
        return;
    };
    let proxy = CountingProxy::start(&etcd.endpoint(0)).await;
    let transport = Transport::new(&proxy.url).unwrap();
    let key = b64(&xtask::testing::unique_prefix("stream-break"));
    let mut watch = transport
        .stream::<_, Value>("watch", &json!({"create_request": {"key": key}}))
        .await
        .unwrap();
    assert_eq!(watch.next().await.unwrap().unwrap()["created"], true);
    assert!(watch.endpoint().starts_with("http://127.0.0.1:"));
    // A server that ends the body is the end of the stream; here the gateway keeps it open,
    // so a short wait times out instead of yielding anything.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), watch.next())
            .await
            .is_err()
    );
}
