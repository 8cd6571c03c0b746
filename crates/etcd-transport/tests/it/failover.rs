use crate::support::*;
use etcd_transport::{Error, Idempotency, RetryConfig, Transport};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test]
async fn fails_over_from_dead_first_endpoint() {
    let Some(endpoint) = etcd_endpoint() else {
        return;
    };
    let dead = dead_endpoint();
    let transport = Transport::builder()
        .endpoints([dead.clone(), endpoint.clone()])
        .prefer_first(true)
        .build()
        .unwrap();
    let key = b64(&xtask::testing::unique_prefix("failover"));
    // A write that never reached the dead endpoint is safe to send to the next one.
    let _: Value = transport
        .unary(
            "kv/put",
            &json!({"key": key, "value": b64("v")}),
            Idempotency::NotIdempotent,
        )
        .await
        .unwrap();
    assert_eq!(transport.current_endpoint(), endpoint);
    let answer: Value = transport
        .unary("kv/range", &json!({"key": key}), Idempotency::Idempotent)
        .await
        .unwrap();
    assert_eq!(answer["kvs"][0]["value"], b64("v"));
}

#[tokio::test]
async fn all_endpoints_dead_is_unavailable_connect_error() {
    let transport = Transport::builder()
        .endpoints([dead_endpoint(), dead_endpoint()])
        .prefer_first(true)
        .retry(
            RetryConfig::default()
                .max_retries(3)
                .backoff(Duration::from_millis(5), Duration::from_millis(20)),
        )
        .build()
        .unwrap();
    let err = transport
        .unary::<_, Value>("kv/range", &json!({"key": "YQ=="}), Idempotency::Idempotent)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unavailable { attempts: 4, .. }),
        "{err:?}"
    );
    assert!(err.is_connect());
    assert!(!err.is_outcome_unknown());
}

#[tokio::test]
async fn times_out_against_a_listener_that_never_answers() {
    let (silent, _task) = silent_listener().await;
    let transport = Transport::builder()
        .endpoint(&silent)
        .api_prefix("/v3")
        .request_timeout(Duration::from_millis(300))
        .retry(RetryConfig::none())
        .build()
        .unwrap();
    let started = Instant::now();
    let err = transport
        .unary::<_, Value>(
            "kv/put",
            &json!({"key": "YQ==", "value": "Yg=="}),
            Idempotency::NotIdempotent,
        )
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(err.is_timeout(), "{err:?}");
    assert!(
        err.is_outcome_unknown(),
        "a write that timed out may have been applied"
    );
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn timed_out_read_moves_to_next_endpoint_but_write_does_not() {
    let Some(endpoint) = etcd_endpoint() else {
        return;
    };
    let (silent, _task) = silent_listener().await;
    let transport = Transport::builder()
        .endpoints([silent.clone(), endpoint.clone()])
        .prefer_first(true)
        .api_prefix("/v3")
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let key = b64(&xtask::testing::unique_prefix("timeout-write"));
    let err = transport
        .unary::<_, Value>(
            "kv/put",
            &json!({"key": key, "value": "Yg=="}),
            Idempotency::NotIdempotent,
        )
        .await
        .unwrap_err();
    assert!(err.is_timeout() && err.is_outcome_unknown(), "{err:?}");
    let _: Value = transport
        .unary("kv/range", &json!({"key": key}), Idempotency::Idempotent)
        .await
        .unwrap();
    assert_eq!(transport.current_endpoint(), endpoint);
}

/// What etcd 3.5.1's gateway answered a put when its own connection to its member broke
/// (the member stopping with SIGTERM): the put may have been proposed. A history check saw
/// the client take this for a refusal, send the put to the next member, and etcd apply it
/// twice. It must end the call with an unknown outcome and go nowhere else.
#[tokio::test]
async fn a_gateway_eof_leaves_a_write_unknown_and_unrepeated() {
    let Some(endpoint) = etcd_endpoint() else {
        return;
    };
    let (eof, calls) = canned_gateway(
        503,
        r#"{"error":"error reading from server: EOF","code":14,"message":"error reading from server: EOF"}"#,
    )
    .await;
    let transport = Transport::builder()
        .endpoints([eof, endpoint.clone()])
        .prefer_first(true)
        .build()
        .unwrap();
    let key = xtask::testing::unique_prefix("gateway-eof");
    let put = etcd_wire::PutRequest {
        key: key.clone().into(),
        value: "v".into(),
        ..Default::default()
    };
    let err = transport.call(&put).await.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert!(!err.is_refusal(), "{err:?}");
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "sent once"
    );
    let read = etcd_wire::RangeRequest {
        key: key.clone().into(),
        ..Default::default()
    };
    let answer = transport.call(&read).await.unwrap();
    assert_eq!(answer.count, 0, "the put was not sent to the next member");
    assert_eq!(transport.current_endpoint(), endpoint);
}

/// "no leader" is a refusal before anything was proposed: the write moves on and is
/// applied once, by the next member.
#[tokio::test]
async fn a_no_leader_refusal_moves_a_write_to_the_next_member() {
    let Some(endpoint) = etcd_endpoint() else {
        return;
    };
    let (refusing, calls) = canned_gateway(
        503,
        r#"{"error":"etcdserver: no leader","code":14,"message":"etcdserver: no leader"}"#,
    )
    .await;
    let transport = Transport::builder()
        .endpoints([refusing, endpoint.clone()])
        .prefer_first(true)
        .retry(RetryConfig::default().backoff(Duration::from_millis(1), Duration::from_millis(5)))
        .build()
        .unwrap();
    let key = xtask::testing::unique_prefix("no-leader-moves");
    let put = etcd_wire::PutRequest {
        key: key.clone().into(),
        value: "v".into(),
        ..Default::default()
    };
    transport.call(&put).await.unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    let read = etcd_wire::RangeRequest {
        key: key.into(),
        ..Default::default()
    };
    assert_eq!(transport.call(&read).await.unwrap().count, 1);
}
