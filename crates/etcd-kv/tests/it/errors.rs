//! Typed errors: invalid input refused before sending, unknown leases, compacted and future
//! revisions (on a server of their own: compaction is global), server codes kept.

use crate::{key, setup, unreachable_client};
use etcd_kv::{Code, Compare, Error, TxnOp};
use futures_util::TryStreamExt;

fn assert_invalid_unsent<T: std::fmt::Debug>(result: etcd_kv::Result<T>) {
    match result {
        Err(Error::InvalidInput {
            source: None,
            reason,
        }) => {
            assert!(!reason.is_empty());
        }
        other => panic!("expected InvalidInput raised by the client, got {other:?}"),
    }
}

#[tokio::test]
async fn empty_keys_are_refused_before_sending() {
    // A client that cannot reach any server: InvalidInput proves nothing was sent.
    let c = unreachable_client();
    assert_invalid_unsent(c.get("").await);
    assert_invalid_unsent(c.range("").await);
    assert_invalid_unsent(c.range(Vec::new()).limit(1).await);
    assert_invalid_unsent(c.put("", "v").await);
    assert_invalid_unsent(c.delete("").await);
    assert_invalid_unsent(c.txn().when([Compare::version("").eq(0)]).await);
    assert_invalid_unsent(c.txn().and_then([TxnOp::put("", "v")]).await);
    assert_invalid_unsent(c.txn().or_else([TxnOp::get("")]).await);
    assert_invalid_unsent(c.txn().and_then([TxnOp::delete("")]).await);
    let nested = c.txn().and_then([TxnOp::put("", "v")]);
    assert_invalid_unsent(c.txn().and_then([TxnOp::txn(nested)]).await);
    assert_invalid_unsent(c.scan("").into_stream().try_next().await);

    // The same client does try the network for a valid request.
    let err = c.get("k").await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("unavailable"));
    // The message names the cause and the endpoint; the predicates say what happened.
    let text = err.to_string();
    let endpoint = c.endpoints()[0].clone();
    assert!(
        text.contains(&format!("cannot connect to {endpoint}")),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(err.is_connect() && !err.is_outcome_unknown() && !err.is_timeout());
    assert_eq!(err.endpoint(), Some(endpoint.as_str()));

    // And a connected client refuses the same way.
    let (_etcd, client, _p) = setup!("empty_key");
    assert_invalid_unsent(client.put("", "v").await);
    assert_invalid_unsent(client.get("").await);
}

#[tokio::test]
async fn unknown_lease_is_lease_not_found() {
    let (_etcd, client, p) = setup!("unknown_lease");
    let err = client
        .put(key(&p, "k"), "v")
        .lease(0x1234_5678)
        .await
        .unwrap_err();
    match err {
        Error::LeaseNotFound { lease_id } => assert_eq!(lease_id, 0x1234_5678),
        other => panic!("expected LeaseNotFound, got {other:?}"),
    }
    assert!(client.get(key(&p, "k")).await.unwrap().is_none());

    // In a transaction too, nested or not, and nothing of it is applied.
    let nested = client
        .txn()
        .and_then([TxnOp::put_with_lease(key(&p, "n"), "v", 0x777)]);
    let err = client
        .txn()
        .and_then([TxnOp::put(key(&p, "other"), "v"), TxnOp::txn(nested)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::LeaseNotFound { lease_id: 0x777 }),
        "{err:?}"
    );
    let err = client
        .txn()
        .when([Compare::version(key(&p, "k")).eq(1)])
        .or_else([client.put(key(&p, "k"), "v").lease(0x888).into()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::LeaseNotFound { lease_id: 0x888 }),
        "{err:?}"
    );
    assert_eq!(client.range(&p).prefix().await.unwrap().count(), 0);
}

#[tokio::test]
async fn a_put_over_the_request_size_limit_is_invalid_input() {
    let (_etcd, client, p) = setup!("put_too_large");
    for size in [1600 * 1024, 3 * 1024 * 1024] {
        let err = client
            .put(key(&p, "big"), vec![0u8; size])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
        assert!(err.to_string().contains("too large"), "{err}");
    }
    assert!(client.get(key(&p, "big")).await.unwrap().is_none());
}

#[tokio::test]
async fn server_errors_keep_code_and_message() {
    let (_etcd, client, p) = setup!("server_errors");
    let err = client
        .put(key(&p, "k"), "")
        .ignore_value()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    let status = err.status().expect("a server status");
    assert!(status.message.contains("key not found"), "{status:?}");
    assert!(err.cause().is_some());
    assert!(!err.is_timeout());
    assert!(std::error::Error::source(&err).is_some(), "source kept");

    // A future revision.
    let now = client.put(key(&p, "k"), "v").await.unwrap().revision();
    let err = client
        .range(key(&p, "k"))
        .revision(now + 1000)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::FutureRevision(_)), "{err:?}");
    assert_eq!(err.code(), Some(Code::OutOfRange));
}

#[tokio::test]
async fn compacted_revisions() {
    // Compaction is global: this test has a server of its own.
    let Some((_etcd, client)) = crate::own_etcd().await else {
        return;
    };
    let r1 = client.put("k", "one").await.unwrap().revision();
    let r2 = client.put("k", "two").await.unwrap().revision();
    let r3 = client.put("k", "three").await.unwrap().revision();
    client.put("other", "x").await.unwrap();

    // Before compaction, the past is readable.
    assert_eq!(
        client.range("k").revision(r1).await.unwrap().kvs()[0].value(),
        b"one"
    );

    client.compact(r2).await.unwrap();
    // Reads at a compacted revision fail with the actual compact revision.
    match client.range("k").revision(r1).await {
        Err(Error::Compacted { compact_revision }) => assert_eq!(compact_revision, r2),
        other => panic!("expected Compacted, got {other:?}"),
    }
    // The compact revision itself and later are still readable.
    assert_eq!(
        client.range("k").revision(r2).await.unwrap().kvs()[0].value(),
        b"two"
    );
    // A scan at a compacted revision too.
    let err = client
        .scan("k")
        .revision(r1)
        .into_stream()
        .try_next()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Compacted { compact_revision } if compact_revision == r2),
        "{err:?}"
    );

    // Compacting again, at or below, is refused naming the actual compact revision.
    for rev in [r1, r2] {
        match client.compact(rev).await {
            Err(Error::Compacted { compact_revision }) => assert_eq!(compact_revision, r2),
            other => panic!("expected Compacted, got {other:?}"),
        }
    }
    // Physical compaction waits until the backend is compacted.
    let header = client.compact(r3).physical().await.unwrap();
    assert!(header.revision() >= r3);
    match client.range("other").revision(r2).await {
        Err(Error::Compacted { compact_revision }) => assert_eq!(compact_revision, r3),
        other => panic!("expected Compacted, got {other:?}"),
    }
    // Inside a namespace the probe for the compact revision works as well.
    let ns = client.with_namespace("ns/");
    match ns.range("k").revision(r1).await {
        Err(Error::Compacted { compact_revision }) => assert_eq!(compact_revision, r3),
        other => panic!("expected Compacted, got {other:?}"),
    }
    // A compaction in the future is refused.
    let err = client.compact(r3 + 1000).await.unwrap_err();
    assert!(matches!(err, Error::FutureRevision(_)), "{err:?}");
    assert!(client.status().await.unwrap().revision() >= r3);
}

/// A loopback listener that accepts connections and never answers.
async fn hung_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn hung_endpoints_are_passed_by_within_one_attempt_and_all_hung_fails_at_the_deadline() {
    let Some((etcd, _, prefix)) = (async {
        let (etcd, client) = crate::connect().await?;
        Some((etcd, client, xtask::testing::unique_prefix("hung")))
    })
    .await
    else {
        return;
    };
    let request_timeout = std::time::Duration::from_secs(2);
    let endpoints = [
        hung_endpoint().await,
        hung_endpoint().await,
        etcd.endpoint(0),
    ];
    for op in ["get", "put"] {
        // A fresh client each time: nothing known about any endpoint yet.
        let client = crate::builder()
            .endpoints(endpoints.clone())
            .prefer_first(true)
            .request_timeout(request_timeout)
            .build()
            .unwrap();
        let started = std::time::Instant::now();
        match op {
            "get" => drop(client.get(format!("{prefix}k")).await.unwrap()),
            _ => drop(client.put(format!("{prefix}k"), "v").await.unwrap()),
        }
        let took = started.elapsed();
        assert!(
            took < request_timeout + std::time::Duration::from_millis(500),
            "{op} took {took:?}"
        );
        eprintln!("{op} past two hung endpoints in {took:?}");
    }

    let deadline = std::time::Duration::from_secs(3);
    let all_hung = crate::builder()
        .endpoints([hung_endpoint().await, hung_endpoint().await])
        .prefer_first(true)
        .request_timeout(std::time::Duration::from_secs(10))
        .deadline(deadline)
        .build()
        .unwrap();
    for op in ["get", "put"] {
        let started = std::time::Instant::now();
        let err = match op {
            "get" => all_hung.get("k").await.map(drop).unwrap_err(),
            _ => all_hung.put("k", "v").await.map(drop).unwrap_err(),
        };
        let took = started.elapsed();
        assert!(
            took >= deadline.mul_f64(0.9) && took <= deadline.mul_f64(1.1),
            "{op} failed after {took:?}: {err}"
        );
        assert!(err.is_timeout(), "{op}: {err:?}");
        eprintln!("all hung: {op} failed after {took:?}: {err}");
    }
    // A view with a shorter deadline of its own.
    let started = std::time::Instant::now();
    let err = all_hung
        .with_deadline(std::time::Duration::from_secs(1))
        .get("k")
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_millis(1300),
        "{took:?}: {err}"
    );
}
