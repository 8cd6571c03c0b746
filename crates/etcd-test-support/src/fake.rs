//! A fake etcd gateway on loopback for what a real etcd can't be made to do: garbage,
//! hangs, truncation, endless or huge answers. Tests only.
//!
//! `GET /version` is answered as etcd 3.5 would (or with garbage), a WebSocket upgrade is
//! refused (so streams fall back to one POST each), and every POST gets the [`Fake`]
//! behaviour.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the fake answers a POST.
#[derive(Debug, Clone, Copy)]
pub enum Fake {
    /// A whole 200 answer with this body.
    Answer(&'static [u8]),
    /// A chunked 200 answer: these bytes, then a hang (or, with `close`, the connection
    /// closes without ending the body).
    Partial {
        /// The bytes sent as the body's one chunk (none if empty).
        body: &'static [u8],
        /// Close the connection after them instead of hanging.
        close: bool,
    },
    /// A 200 announcing this many bytes, then one byte every 100 ms.
    HugeAndSlow(u64),
    /// A chunked 200 answer that never ends: the same chunk again and again.
    Endless,
}

/// Starts a fake gateway; its base URL. `version_ok: false` answers `/version` with garbage.
pub async fn fake_gateway(version_ok: bool, post: Fake) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, version_ok, post));
        }
    });
    format!("http://{addr}")
}

async fn serve(mut socket: tokio::net::TcpStream, version_ok: bool, post: Fake) {
    let mut buf = [0u8; 4096];
    loop {
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head).to_string();
        if head.starts_with("GET /version") {
            let body: &[u8] = if version_ok {
                br#"{"etcdserver":"3.5.1","etcdcluster":"3.5.0"}"#
            } else {
                b"\x00\xffnot a version"
            };
            answer(&mut socket, body).await;
            continue;
        }
        if head.starts_with("GET ") {
            let _ = socket
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            return;
        }
        // A POST: its body (Content-Length) is not needed to misbehave.
        match post {
            Fake::Answer(body) => {
                answer(&mut socket, body).await;
                continue;
            }
            Fake::Partial { body, close } => {
                let _ = socket.write_all(CHUNKED).await;
                if !body.is_empty() {
                    let _ = socket
                        .write_all(format!("{:x}\r\n", body.len()).as_bytes())
                        .await;
                    let _ = socket.write_all(body).await;
                    let _ = socket.write_all(b"\r\n").await;
                }
                if !close {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                return;
            }
            Fake::HugeAndSlow(len) => {
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                for _ in 0..600 {
                    if socket.write_all(b" ").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                return;
            }
            Fake::Endless => {
                let _ = socket.write_all(CHUNKED).await;
                let chunk = vec![b'x'; 64 * 1024];
                let frame = format!("{:x}\r\n", chunk.len());
                loop {
                    if socket.write_all(frame.as_bytes()).await.is_err()
                        || socket.write_all(&chunk).await.is_err()
                        || socket.write_all(b"\r\n").await.is_err()
                    {
                        return;
                    }
                }
            }
        }
    }
}

/// A whole 200 answer with `body`.
async fn answer(socket: &mut tokio::net::TcpStream, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(body).await;
}

const CHUNKED: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
