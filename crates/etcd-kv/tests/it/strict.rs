//! Bad input refused with a typed error before anything is sent, resolved or written, and
//! `connect()` proving that the server is etcd (issue 21).

use crate::{key, setup, unreachable_client};
use etcd_kv::{Client, Election, Error, Queue, Sequence, TxnOp};
use futures_util::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback HTTP/1.1 server answering every request with 200 and `body`; its port and
/// the number of connections it accepted.
async fn plain_server(body: &'static str) -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (port, accepted)
}

/// An `InvalidInput` raised by the client itself, whose message holds `says`.
fn assert_refused<T: std::fmt::Debug>(result: etcd_kv::Result<T>, says: &str) {
    match result {
        Err(Error::InvalidInput {
            source: None,
            reason,
        }) => assert!(reason.contains(says), "{reason:?} lacks {says:?}"),
        other => panic!("expected InvalidInput raised by the client, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_endpoints_are_invalid_input_and_dial_nothing() {
    let (port, accepted) = plain_server("hello").await;
    let wrapped = u32::from(port) + 65536;
    for (url, says) in [
        (format!("http://127.0.0.1:{wrapped}"), "outside 1-65535"),
        ("http://127.0.0.1:-1".to_string(), "outside 1-65535"),
        ("http://127.0.0.1:0".to_string(), "outside 1-65535"),
        ("htp:/x".to_string(), "write http://x"),
        (format!("http//127.0.0.1:{port}"), "write http://127.0.0.1:"),
        ("127.0.0.1:port".to_string(), "not a number"),
        (
            "ftp://127.0.0.1:2379".to_string(),
            "write http:// or https://",
        ),
        ("unixs://localhost:2379".to_string(), "not supported"),
        ("127.0.0.1".to_string(), "write http://127.0.0.1:2379"),
        (
            "http://127.0.0.1".to_string(),
            "write http://127.0.0.1:2379",
        ),
        (
            format!("http://127.0.0.1:{port}/v3"),
            ".api_prefix(\"/v3\")",
        ),
        (
            format!("http://127.0.0.1:{port}/v3beta/"),
            ".api_prefix(\"/v3beta\")",
        ),
        (
            format!("http://127.0.0.1:{port}/v3alpha"),
            ".api_prefix(\"/v3alpha\")",
        ),
        (
            format!("http://user:secret@127.0.0.1:{port}"),
            "credentials in the URL are not used",
        ),
        (String::new(), "an endpoint is empty"),
        (" \t".to_string(), "an endpoint is empty"),
    ] {
        let err = crate::builder()
            .endpoint(url.as_str())
            .connect()
            .await
            .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("secret"), "{url}: {text}");
        assert_refused(Err::<(), _>(err), says);
        assert_refused(crate::builder().endpoint(url.as_str()).build(), says);
        assert_refused(Client::connect(url.as_str()).await, says);
    }
    assert_refused(crate::builder().connect().await, "no endpoint given");
    assert_refused(
        crate::builder().endpoints(Vec::<String>::new()).build(),
        "no endpoint given",
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "a refused endpoint was dialled"
    );
}

#[tokio::test]
async fn connect_to_a_server_that_is_not_etcd_fails_by_name() {
    let (port, accepted) = plain_server("<html><title>Welcome</title>hello</html>").await;
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let err = crate::builder()
        .endpoint(&url)
        .request_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::NotEtcd(_)) && err.is_not_etcd(),
        "{err:?}"
    );
    assert!(
        text.starts_with(&format!("{url} is not an etcd server")),
        "{text}"
    );
    assert_eq!(err.endpoint(), Some(url.as_str()));
    assert!(!err.is_outcome_unknown(), "{text}");
    assert!(started.elapsed() < Duration::from_secs(1), "{text}");
    assert!(accepted.load(Ordering::SeqCst) >= 1);
    eprintln!("{text}");
    // Where another endpoint is etcd, connect() succeeds on it.
    let Some(etcd) = xtask::testing::shared_etcd() else {
        return;
    };
    let client = crate::builder()
        .endpoints([url.clone(), etcd.endpoint(0)])
        .connect()
        .await
        .unwrap();
    assert_eq!(client.current_endpoint(), etcd.endpoint(0));
}

/// connect() to nothing keeps failing as it did: unavailable, a connection error.
#[tokio::test]
async fn connect_to_an_unreachable_endpoint_is_still_unavailable() {
    let client = unreachable_client();
    let endpoint = client.endpoints()[0].clone();
    let err = crate::builder()
        .endpoint(&endpoint)
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unavailable(_)) && err.is_connect(),
        "{err:?}"
    );
}

#[tokio::test]
async fn requests_over_max_request_bytes_are_refused_at_once_and_write_nothing() {
    let (_etcd, client, p) = setup!("too_large");
    let big = vec![b'x'; 2 << 20];
    let half = vec![b'x'; 1 << 20];
    let lease = crate::grant_lease(&client, 30).await;
    let started = Instant::now();
    assert_refused(client.put(key(&p, "put"), big.clone()).await, "too large");
    assert_refused(
        client
            .put(key(&p, "leased"), big.clone())
            .lease(lease)
            .await,
        "too large",
    );
    // Two values of 1 MiB: each fits, the transaction does not.
    assert_refused(
        client
            .txn()
            .and_then([
                TxnOp::put(key(&p, "txn/a"), half.clone()),
                TxnOp::put(key(&p, "txn/b"), half.clone()),
            ])
            .await,
        "too large",
    );
    let election = Election::new(&client, key(&p, "election"));
    assert_refused(election.campaign(big.clone()).await, "too large");
    assert_refused(client.lock(big.clone()).await, "too large");
    assert_refused(
        Queue::new(&client, key(&p, "queue"))
            .push(big.clone())
            .await,
        "too large",
    );
    let took = started.elapsed();
    eprintln!("six requests over the limit refused in {took:?}");
    assert!(took < Duration::from_millis(50), "refusing took {took:?}");
    // Nothing was written.
    assert_eq!(
        client
            .range(&p)
            .prefix()
            .count_only()
            .await
            .unwrap()
            .count(),
        0
    );
    // Nothing was sent either: a client that cannot reach a server refuses the same way
    // (a campaign or lock would have asked for a session's lease first).
    let c = unreachable_client();
    assert_refused(c.put("k", big.clone()).await, "too large");
    assert_refused(
        Election::new(&c, "e").campaign(big.clone()).await,
        "too large",
    );
    assert_refused(c.lock(big.clone()).await, "too large");
    // The message says how to raise the limit, and raising it lets the put through to
    // the server, which refuses it in its own words.
    let raised = crate::builder()
        .endpoint(client.current_endpoint())
        .max_request_bytes(3 << 20)
        .connect()
        .await
        .unwrap();
    let err = raised.put(key(&p, "put"), big).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                source: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn empty_names_and_a_zero_max_hold_are_refused_before_anything_is_sent() {
    // A client that cannot reach any server: InvalidInput proves nothing was sent.
    let c = unreachable_client();
    assert_refused(c.lock("").await, "the lock name is empty");
    assert_refused(
        c.with_lock("", async { Ok::<_, Error>(()) }).await,
        "the lock name is empty",
    );
    assert_refused(
        c.lock("jobs").max_hold(Duration::ZERO).await,
        "max_hold must be more than zero",
    );
    let election = Election::new(&c, "");
    assert_refused(election.campaign("v").await, "the election name is empty");
    assert_refused(election.leader().await, "the election name is empty");
    let first = election.observe().next().await.expect("one item");
    assert_refused(first, "the election name is empty");
    let queue = Queue::new(&c, "");
    assert_refused(queue.push("v").await, "the queue name is empty");
    assert_refused(queue.push_all(["v"]).await, "the queue name is empty");
    assert_refused(queue.try_pop().await, "the queue name is empty");
    assert_refused(queue.pop().await, "the queue name is empty");
    assert_refused(queue.count().await, "the queue name is empty");
    let sequence = Sequence::new(&c, "");
    assert_refused(sequence.next().await, "the sequence name is empty");
    assert_refused(sequence.current().await, "the sequence name is empty");
    // ttl(0) is refused the same way, at the same point.
    assert_refused(c.lock("jobs").ttl(0).await, "TTL");
}

#[tokio::test]
async fn cache_reads_outside_its_prefix_are_refused() {
    let (_etcd, client, p) = setup!("cache_outside");
    let inside = format!("{p}app/a");
    let outside = format!("{p}other");
    client.put(&inside, "1").await.unwrap();
    client.put(&outside, "2").await.unwrap();
    let cache = client.cache(format!("{p}app/")).await.unwrap();
    assert_eq!(
        cache.get(&inside).unwrap().into_inner().unwrap().value(),
        b"1"
    );
    let says = "outside this cache's prefix";
    assert_refused(cache.get(&outside), says);
    assert_refused(cache.consistent_get(&outside).await, says);
    assert_refused(cache.get_at_least(&outside, 1).await, says);
    assert_refused(cache.prefix(&p), says);
    assert_refused(cache.range(&p, ""), says);
    assert_refused(cache.range(format!("{p}app/"), format!("{p}b")), says);
    // Reads within the prefix, and ranges to its end, are answered.
    assert_eq!(
        cache.prefix(format!("{p}app/")).unwrap().into_inner().len(),
        1
    );
    assert_eq!(
        cache
            .range(format!("{p}app/"), "")
            .unwrap()
            .into_inner()
            .len(),
        1
    );
    assert_eq!(
        cache
            .range(format!("{p}app/"), format!("{p}app0"))
            .unwrap()
            .into_inner()
            .len(),
        1
    );
    assert!(cache
        .consistent_get(format!("{p}app/b"))
        .await
        .unwrap()
        .into_inner()
        .is_none());
}
