//! An old gateway in front of a real one: a loopback proxy that relays each HTTP request to a
//! real etcd gateway, and answers a range whose answer is larger than a cap as gateways
//! before etcd 3.4 did (their own gRPC client took answers up to 4 MiB): HTTP 429 with code 8
//! "grpc: received message larger than max (N vs. cap)". No etcd of the versions tested
//! caps answers, so this is how a test meets one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A running capping proxy.
#[derive(Debug, Clone)]
pub struct CappingProxy {
    /// Its base URL (`http://127.0.0.1:port`).
    pub endpoint: String,
    capped: Arc<AtomicUsize>,
}

impl CappingProxy {
    /// How many range answers it refused as too large so far.
    pub fn capped(&self) -> usize {
        self.capped.load(Ordering::Relaxed)
    }
}

/// Starts a proxy to the gateway at `upstream` (`http://127.0.0.1:port`) that refuses range
/// answers longer than `cap` bytes.
pub async fn capping_proxy(upstream: &str, cap: usize) -> CappingProxy {
    let upstream = upstream
        .strip_prefix("http://")
        .expect("a plain-HTTP loopback gateway")
        .trim_end_matches('/')
        .to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let capped = Arc::new(AtomicUsize::new(0));
    let counter = capped.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(relay(socket, upstream.clone(), cap, counter.clone()));
        }
    });
    CappingProxy { endpoint, capped }
}

/// Relays the requests of one client connection, one at a time, each over a connection of
/// its own to the gateway (HTTP/1.0, so that the answer ends with the connection).
async fn relay(mut client: TcpStream, upstream: String, cap: usize, capped: Arc<AtomicUsize>) {
    let mut pending = Vec::new();
    loop {
        let Some((head, body)) = read_request(&mut client, &mut pending).await else {
            return;
        };
        let Some((status, headers, answer)) = exchange(&upstream, &head, &body).await else {
            return;
        };
        let is_range = head.lines().next().is_some_and(|l| l.contains("/kv/range"));
        let reply = if is_range && answer.len() > cap {
            capped.fetch_add(1, Ordering::Relaxed);
            let message = format!(
                "grpc: received message larger than max ({} vs. {cap})",
                answer.len()
            );
            let body = format!(r#"{{"error":"{message}","code":8,"message":"{message}"}}"#);
            format!(
                "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        } else {
            let mut reply = format!("HTTP/1.1 {status}\r\n");
            for line in headers.lines().filter(|l| {
                let name = l.split(':').next().unwrap_or("").to_ascii_lowercase();
                !matches!(
                    name.as_str(),
                    "content-length" | "connection" | "transfer-encoding"
                )
            }) {
                reply.push_str(line);
                reply.push_str("\r\n");
            }
            reply.push_str(&format!("Content-Length: {}\r\n\r\n", answer.len()));
            let mut reply = reply.into_bytes();
            reply.extend_from_slice(&answer);
            reply
        };
        if client.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// The next request's head (request line and headers) and body; `None` when the client is
/// gone.
async fn read_request(client: &mut TcpStream, pending: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let mut buf = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while pending.len() < head_end + length {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
    let body = pending[head_end..head_end + length].to_vec();
    pending.drain(..head_end + length);
    Some((head, body))
}

/// Sends one request to the gateway as HTTP/1.0; its status (`200 OK`), headers and body.
async fn exchange(upstream: &str, head: &str, body: &[u8]) -> Option<(String, String, Vec<u8>)> {
    let mut lines = head.lines();
    let request_line = lines.next()?.replace("HTTP/1.1", "HTTP/1.0");
    let mut request = format!("{request_line}\r\n");
    for line in
        lines.filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
    {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("Connection: close\r\n\r\n");
    let mut gateway = TcpStream::connect(upstream).await.ok()?;
    gateway.write_all(request.as_bytes()).await.ok()?;
    gateway.write_all(body).await.ok()?;
    let mut answer = Vec::new();
    gateway.read_to_end(&mut answer).await.ok()?;
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&answer[..head_end]).to_string();
    let mut lines = head.lines();
    let status = lines.next()?.split_once(' ')?.1.to_string();
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    Some((status, headers.join("\r\n"), answer[head_end..].to_vec()))
}
