//! Native gRPC against a fake HTTP/2 server on loopback: what etcd cannot be made to do.

use bytes::{BufMut, Bytes, BytesMut};
use etcd_transport::{Error, Protocol, RetryConfig, Transport};
use etcd_wire::RangeRequest;
use std::time::{Duration, Instant};

/// How the fake answers every call.
#[derive(Clone, Copy)]
enum Answer {
    /// Headers only, with this status and message (a trailers-only answer).
    Status(u32, &'static str),
    /// One message of `len` bytes (unparsable) announced, and status 0.
    Message(usize),
    /// Never answers.
    Silent,
}

/// Serves `answer` over HTTP/2 on a loopback port; returns its URL.
async fn fake(answer: Answer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(socket).await else {
                    return;
                };
                while let Some(Ok((_request, mut respond))) = conn.accept().await {
                    let status = |code: u32, message: &str| {
                        http::Response::builder()
                            .status(200)
                            .header("content-type", "application/grpc")
                            .header("grpc-status", code.to_string())
                            .header("grpc-message", message)
                            .body(())
                            .unwrap()
                    };
                    match answer {
                        Answer::Status(code, message) => {
                            let _ = respond.send_response(status(code, message), true);
                        }
                        Answer::Message(len) => {
                            let head = http::Response::builder()
                                .status(200)
                                .header("content-type", "application/grpc")
                                .body(())
                                .unwrap();
                            let Ok(mut body) = respond.send_response(head, false) else {
                                continue;
                            };
                            let mut frame = BytesMut::new();
                            frame.put_u8(0);
                            frame.put_u32(len as u32);
                            frame.put_bytes(0xff, len.min(1 << 16));
                            let _ = body.send_data(frame.freeze(), false);
                            let mut trailers = http::HeaderMap::new();
                            trailers.insert("grpc-status", "0".parse().unwrap());
                            let _ = body.send_trailers(trailers);
                        }
                        Answer::Silent => std::mem::forget(respond),
                    }
                }
            });
        }
    });
    url
}

fn transport(url: &str) -> Transport {
    Transport::builder()
        .endpoint(url)
        .protocol(Protocol::Grpc)
        .api_prefix("/v3")
        .request_timeout(Duration::from_millis(500))
        .retry(RetryConfig::none())
        .build()
        .unwrap()
}

fn get() -> RangeRequest {
    RangeRequest {
        key: Bytes::from_static(b"k"),
        ..RangeRequest::default()
    }
}

#[tokio::test]
async fn a_status_without_a_body_keeps_its_code_and_decoded_message() {
    let url = fake(Answer::Status(5, "etcdserver%3A key not found")).await;
    let err = transport(&url).call(&get()).await.unwrap_err();
    match &err {
        Error::Server { status, endpoint } => {
            assert_eq!(status.grpc_code(), etcd_wire::Code::NotFound);
            assert_eq!(status.message, "etcdserver: key not found");
            assert_eq!(endpoint, &url);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn an_answer_over_the_size_limit_is_refused_before_it_is_read() {
    let url = fake(Answer::Message(64 << 20)).await;
    let t = Transport::builder()
        .endpoint(&url)
        .protocol(Protocol::Grpc)
        .max_response_len(1 << 20)
        .build()
        .unwrap();
    let err = t.call(&get()).await.unwrap_err();
    assert!(
        matches!(err, Error::ResponseTooLarge { limit, .. } if limit == 1 << 20),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_undecodable_answer_is_an_error_not_a_panic() {
    let url = fake(Answer::Message(16)).await;
    let err = transport(&url).call(&get()).await.unwrap_err();
    assert!(matches!(err, Error::Server { .. }), "{err:?}");
    assert!(err.to_string().contains("protobuf"), "{err}");
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_write_is_outcome_unknown() {
    let url = fake(Answer::Silent).await;
    let t = transport(&url);
    let started = Instant::now();
    let err = t.call(&get()).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let put = etcd_wire::PutRequest {
        key: Bytes::from_static(b"k"),
        ..Default::default()
    };
    let err = t.call(&put).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(
        err.is_outcome_unknown(),
        "a sent write may have applied: {err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_that_is_not_http2_fails_typed_and_fast() {
    // A loopback HTTP/1.1 server: it answers the HTTP/2 preface with an error page.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    let started = Instant::now();
    let err = transport(&url).call(&get()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "{err}");
    assert_eq!(err.endpoint(), Some(url.as_str()), "{err:?}");
}
