use crate::support::*;
use etcd_transport::{Error, Idempotency, Transport};
use etcd_wire::Code;
use serde_json::{json, Value};

#[tokio::test]
async fn gateway_errors_keep_code_and_message() {
    let Some(endpoint) = etcd_endpoint() else {
        return;
    };
    let transport = Transport::new(&endpoint).unwrap();
    let err = transport
        .unary::<_, Value>(
            "lease/revoke",
            &json!({"ID": "7587"}),
            Idempotency::NotIdempotent,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::NotFound), "{err:?}");
    assert!(
        err.status()
            .unwrap()
            .message
            .contains("requested lease not found"),
        "{err}"
    );

    let err = transport
        .unary::<_, Value>(
            "kv/put",
            &json!({"key": "!!notbase64", "value": ""}),
            Idempotency::NotIdempotent,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err:?}");
    assert!(!err.is_outcome_unknown());

    let ops: Vec<Value> = (0..129)
        .map(|i| json!({"request_put": {"key": b64(&format!("too-many/{i}")), "value": ""}}))
        .collect();
    let err = transport
        .unary::<_, Value>(
            "kv/txn",
            &json!({"success": ops}),
            Idempotency::NotIdempotent,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err:?}");
    assert!(
        err.status()
            .unwrap()
            .message
            .contains("too many operations"),
        "{err}"
    );
}

#[tokio::test]
async fn response_limit_is_enforced() {
    let Some(endpoint) = etcd_endpoint() else {
        return;
    };
    let transport = Transport::builder()
        .endpoint(&endpoint)
        .max_response_len(1024)
        .build()
        .unwrap();
    let prefix = xtask::testing::unique_prefix("limit");
    let big = b64(&"x".repeat(4096));
    let _: Value = transport
        .unary(
            "kv/put",
            &json!({"key": b64(&prefix), "value": big}),
            Idempotency::NotIdempotent,
        )
        .await
        .unwrap();
    let err = transport
        .unary::<_, Value>(
            "kv/range",
            &json!({"key": b64(&prefix)}),
            Idempotency::Idempotent,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ResponseTooLarge { limit: 1024, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn bad_endpoint_urls_are_config_errors() {
    for bad in ["ftp://x:1", "http://", "", "127.0.0.1:2379?q=1"] {
        let err = Transport::new(bad).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{bad}: {err:?}");
    }
    // A bare host:port is not an error: it means http://host:port.
    assert!(Transport::new("127.0.0.1:2379").is_ok());
    assert!(matches!(
        Transport::builder().build(),
        Err(Error::Config(_))
    ));
}
