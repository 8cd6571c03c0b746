//! Bad input refused before anything is sent or resolved, and servers that are not etcd
//! found out by the version probe.

use etcd_transport::{Error, Transport};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A loopback listener that counts the connections it accepts and answers each request
/// with `status` (such as `"200 OK"`) and `body`; its port and the count.
async fn listener(status: &'static str, body: &'static str) -> (u16, Arc<AtomicUsize>) {
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (port, accepted)
}

#[tokio::test]
async fn a_refused_endpoint_makes_no_connection() {
    let (port, accepted) = listener("200 OK", "hello").await;
    let wrapped = u32::from(port) + 65536;
    let bad = [
        format!("http://user:secret@127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}/v3"),
        format!("http://127.0.0.1:{port}/v3beta/"),
        format!("http://127.0.0.1:{wrapped}"),
        format!("http//127.0.0.1:{port}"),
        format!("htp:/127.0.0.1:{port}"),
        format!("127.0.0.1:{port}?x=1"),
        format!("127.0.0.1:{port},127.0.0.1:{port}"),
        format!("unixs://127.0.0.1:{port}"),
    ];
    for url in &bad {
        let err = Transport::new(url.as_str()).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{url}: {err:?}");
        assert!(!err.to_string().contains("secret"), "{url}: {err}");
        // One bad endpoint among good ones refuses the whole list.
        let err = Transport::builder()
            .endpoints([format!("http://127.0.0.1:{port}"), url.clone()])
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{url}: {err:?}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "a refused endpoint was dialled"
    );
}

#[tokio::test]
async fn a_server_that_is_not_etcd_fails_the_version_probe_by_name() {
    for (status, body, shows) in [
        ("200 OK", "hello", "HTTP 200 with \"hello\""),
        (
            "404 Not Found",
            "<html><title>Not here</title><body></body></html>",
            "HTTP 404 with an HTML page (\"Not here\")",
        ),
        ("200 OK", "\x00\x01garbage", "HTTP 200"),
        ("200 OK", "{\"ok\":true}", "{\\\"ok\\\":true}"),
    ] {
        let (port, _) = listener(status, body).await;
        let url = format!("http://127.0.0.1:{port}");
        let transport = Transport::builder()
            .endpoint(&url)
            .request_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let err = transport.server_version().await.unwrap_err();
        let text = err.to_string();
        assert!(err.is_not_etcd(), "{text}");
        assert_eq!(err.endpoint(), Some(url.as_str()), "{err:?}");
        assert!(
            text.starts_with(&format!(
                "{url} is not an etcd server: GET /version answered"
            )),
            "{text}"
        );
        assert!(text.contains(shows), "{text}");
        assert!(!err.is_outcome_unknown(), "{text}");
        // A call finds it out the same way (the prefix probe), once, without retries.
        let started = std::time::Instant::now();
        let err = transport
            .call(&etcd_wire::PutRequest {
                key: "k".into(),
                value: "v".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(err.is_not_etcd(), "{err}");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }
}

/// Over gRPC, an HTTP/1.1 server (the "hello" one) is named as not speaking HTTP/2.
#[cfg(feature = "grpc")]
#[tokio::test]
async fn over_grpc_an_http1_server_is_not_etcd() {
    let (port, _) = listener("200 OK", "hello").await;
    let url = format!("http://127.0.0.1:{port}");
    let transport = Transport::builder()
        .endpoint(&url)
        .protocol(etcd_transport::Protocol::Grpc)
        .request_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = transport.server_version().await.unwrap_err();
    let text = err.to_string();
    assert!(err.is_not_etcd(), "{err:?}");
    assert!(
        text.starts_with(&format!(
            "{url} is not an etcd server: it does not speak HTTP/2"
        )),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(1), "{text}");
    let err = transport
        .call(&etcd_wire::RangeRequest {
            key: "k".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.is_not_etcd(), "{err:?}");
}
