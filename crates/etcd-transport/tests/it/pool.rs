use crate::support::*;
use etcd_transport::{Idempotency, Transport};
use serde_json::{json, Value};

#[tokio::test]
async fn thousand_sequential_requests_use_one_connection() {
    let Some(endpoint) = etcd_endpoint() else {
        return;
    };
    let proxy = CountingProxy::start(&endpoint).await;
    let transport = Transport::new(&proxy.url).unwrap();
    let prefix = xtask::testing::unique_prefix("pool-seq");
    for i in 0..1000 {
        let key = b64(&format!("{prefix}{i}"));
        let _: Value = transport
            .unary(
                "kv/put",
                &json!({"key": key, "value": b64("v")}),
                Idempotency::NotIdempotent,
            )
            .await
            .unwrap();
    }
    let answer: Value = transport
        .unary(
            "kv/range",
            &json!({"key": b64(&prefix), "range_end": b64(&format!("{}0", prefix.trim_end_matches('/'))), "count_only": true}),
            Idempotency::Idempotent,
        )
        .await
        .unwrap();
    assert_eq!(answer["count"], "1000");
    assert_eq!(
        proxy.accepted(),
        1,
        "1,000 sequential requests and /version must share one TCP connection"
    );
}

#[tokio::test]
async fn concurrent_requests_reuse_pooled_connections() {
    let Some(endpoint) = etcd_endpoint() else {
        return;
    };
    let proxy = CountingProxy::start(&endpoint).await;
    let transport = Transport::new(&proxy.url).unwrap();
    let prefix = xtask::testing::unique_prefix("pool-conc");
    let round = |r: usize| {
        let transport = transport.clone();
        let prefix = prefix.clone();
        async move {
            let tasks: Vec<_> = (0..16)
                .map(|i| {
                    let t = transport.clone();
                    let key = b64(&format!("{prefix}{r}-{i}"));
                    tokio::spawn(async move {
                        let _: Value = t
                            .unary(
                                "kv/put",
                                &json!({"key": key, "value": "eA=="}),
                                Idempotency::NotIdempotent,
                            )
                            .await
                            .unwrap();
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        }
    };
    round(0).await;
    let after_first = proxy.accepted();
    assert!(
        (1..=17).contains(&after_first),
        "{after_first} connections for 16 concurrent requests"
    );
    for r in 1..5 {
        round(r).await;
    }
    assert_eq!(
        proxy.accepted(),
        after_first,
        "later rounds must reuse the pooled connections"
    );
}

#[tokio::test]
async fn dropped_request_future_leaves_transport_usable() {
    let Some(endpoint) = etcd_endpoint() else {
        return;
    };
    let transport = Transport::new(&endpoint).unwrap();
    let prefix = xtask::testing::unique_prefix("cancel");
    let request = json!({"key": b64(&prefix)});
    for _ in 0..20 {
        let fut = transport.unary::<_, Value>("kv/range", &request, Idempotency::Idempotent);
        // Poll once at most, then drop mid-flight.
        let _ = tokio::time::timeout(std::time::Duration::from_micros(50), fut).await;
    }
    let _: Value = transport
        .unary(
            "kv/put",
            &json!({"key": b64(&format!("{prefix}k")), "value": b64("v")}),
            Idempotency::NotIdempotent,
        )
        .await
        .unwrap();
    let answer: Value = transport
        .unary(
            "kv/range",
            &json!({"key": b64(&format!("{prefix}k"))}),
            Idempotency::Idempotent,
        )
        .await
        .unwrap();
    assert_eq!(answer["kvs"][0]["value"], b64("v"));
}

#[tokio::test]
async fn detects_server_version_and_accepts_prefix_override() {
    let Some(etcd) = xtask::testing::shared_etcd() else {
        return;
    };
    let transport = Transport::new(etcd.endpoint(0)).unwrap();
    let version = transport.server_version().await.unwrap();
    assert_eq!(
        version,
        etcd.version(),
        "GET /version reports the running server"
    );
    // /v3beta is still rewritten to /v3 by 3.4 and 3.5.
    let beta = Transport::builder()
        .endpoint(etcd.endpoint(0))
        .api_prefix("/v3beta")
        .build()
        .unwrap();
    let answer: Value = beta
        .unary("maintenance/status", &json!({}), Idempotency::Idempotent)
        .await
        .unwrap();
    assert_eq!(answer["version"], etcd.version());
}
