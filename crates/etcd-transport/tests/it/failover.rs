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
