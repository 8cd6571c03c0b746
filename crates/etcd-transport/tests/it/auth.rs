use crate::support::*;
use etcd_transport::{Idempotency, Transport};
use etcd_wire::Code;
use serde_json::{json, Value};

#[tokio::test]
async fn credentials_authenticate_and_renew_after_restart() {
    // Auth changes the whole server: use a server of this test's own.
    let Some(mut etcd) = xtask::testing::start(xtask::testing::builder()) else {
        return;
    };
    let admin = Transport::new(etcd.endpoint(0)).unwrap();
    let call = |t: &Transport, m: &'static str, body: Value| {
        let t = t.clone();
        async move {
            t.unary::<_, Value>(m, &body, Idempotency::NotIdempotent)
                .await
        }
    };
    call(
        &admin,
        "auth/user/add",
        json!({"name": "root", "password": "rootpw"}),
    )
    .await
    .unwrap();
    call(
        &admin,
        "auth/user/grant",
        json!({"user": "root", "role": "root"}),
    )
    .await
    .unwrap();
    call(&admin, "auth/enable", json!({})).await.unwrap();

    let anonymous = call(
        &admin,
        "kv/put",
        json!({"key": b64("k"), "value": b64("v")}),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            anonymous.code(),
            Some(Code::InvalidArgument)
                | Some(Code::PermissionDenied)
                | Some(Code::Unauthenticated)
        ),
        "{anonymous:?}"
    );

    let user = Transport::builder()
        .endpoint(etcd.endpoint(0))
        .credentials("root", "rootpw")
        .build()
        .unwrap();
    call(
        &user,
        "kv/put",
        json!({"key": b64("k"), "value": b64("v1")}),
    )
    .await
    .unwrap();

    // Simple tokens die with the server: the transport must authenticate again by itself.
    // The restart also kills the pooled connection: a read is retried on a fresh one.
    etcd.restart_node(0).unwrap();
    let answer: Value = user
        .unary(
            "kv/range",
            &json!({"key": b64("k")}),
            Idempotency::Idempotent,
        )
        .await
        .unwrap();
    assert_eq!(answer["kvs"][0]["value"], b64("v1"));

    let wrong = Transport::builder()
        .endpoint(etcd.endpoint(0))
        .credentials("root", "nope")
        .build()
        .unwrap();
    let err = call(&wrong, "kv/range", json!({"key": b64("k")}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err:?}");
    assert!(err.to_string().contains("authentication failed"), "{err}");
}
