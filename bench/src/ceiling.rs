//! The raw-gateway ceiling: the same requests as the other clients, pre-encoded, sent by a
//! minimal hyper HTTP/1.1 loop that reads response bodies and discards them.
//!
//! One connection per in-flight request (a connection is taken from a stack for each
//! request and put back after its body has been read, so `concurrency` requests in flight
//! use `concurrency` connections). What must be known of an answer to send the next request
//! is found by a byte search, not by decoding: the header revision of a transaction (the
//! key's new mod revision), a lease's ID; a watch counts `"kv":` occurrences.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use etcd_bench::{key, value, BenchClient, Options, Res, Watcher, PREFIX};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;

/// The ceiling client.
#[derive(Clone)]
pub struct Ceiling {
    inner: Arc<Inner>,
}

struct Inner {
    addr: String,
    host: HeaderValue,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    put: Vec<Bytes>,
    get: Vec<Bytes>,
    range_all: Bytes,
    /// A transaction body is `txn_head + revision + txn_tail`.
    txn_head: Vec<Vec<u8>>,
    txn_tail: Vec<u8>,
    watch: Bytes,
}

const PUT: &str = "/v3/kv/put";
const RANGE: &str = "/v3/kv/range";
const DELETE: &str = "/v3/kv/deleterange";
const TXN: &str = "/v3/kv/txn";
const WATCH: &str = "/v3/watch";
const GRANT: &str = "/v3/lease/grant";
const KEEPALIVE: &str = "/v3/lease/keepalive";

fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

impl Ceiling {
    /// Pre-encodes every request body the workloads of `opts` will send.
    pub async fn connect(opts: &Options) -> Res<Ceiling> {
        let addr = opts
            .endpoint
            .strip_prefix("http://")
            .ok_or("the ceiling client speaks plain http:// only")?
            .to_string();
        let keys = opts
            .workloads
            .iter()
            .map(|w| opts.n(*w))
            .max()
            .unwrap_or(0)
            .max(1);
        let v = b64(&value(opts.value_size));
        let k: Vec<String> = (0..keys).map(|i| b64(key(i).as_bytes())).collect();
        let range = format!(
            r#"{{"key":"{}","range_end":"{}"}}"#,
            b64(PREFIX.as_bytes()),
            b64(b"bench0")
        );
        let ceiling = Ceiling {
            inner: Arc::new(Inner {
                host: HeaderValue::from_str(&addr)?,
                addr,
                idle: Mutex::new(Vec::new()),
                put: k
                    .iter()
                    .map(|k| format!(r#"{{"key":"{k}","value":"{v}"}}"#).into())
                    .collect(),
                get: k.iter().map(|k| format!(r#"{{"key":"{k}"}}"#).into()).collect(),
                range_all: range.clone().into(),
                txn_head: k
                    .iter()
                    .map(|k| {
                        format!(
                            r#"{{"compare":[{{"result":"EQUAL","target":"MOD","key":"{k}","mod_revision":""#
                        )
                        .into_bytes()
                    })
                    .collect(),
                txn_tail: format!(
                    r#""}}],"success":[{{"request_put":{{"key":"{}","value":"{v}"}}}}]}}"#,
                    k[0]
                )
                .into_bytes(),
                watch: format!(r#"{{"create_request":{range}}}"#).into(),
            }),
        };
        // Fail early when the endpoint is not there.
        ceiling
            .post(DELETE, ceiling.inner.range_all.clone())
            .await?;
        Ok(ceiling)
    }

    async fn connection(&self) -> Res<SendRequest<Full<Bytes>>> {
        let idle = self.inner.idle.lock().map_err(|_| "poisoned")?.pop();
        if let Some(mut conn) = idle {
            if conn.ready().await.is_ok() {
                return Ok(conn);
            }
        }
        let stream = TcpStream::connect(&self.inner.addr).await?;
        stream.set_nodelay(true)?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(send)
    }

    async fn send(
        &self,
        conn: &mut SendRequest<Full<Bytes>>,
        path: &'static str,
        body: Bytes,
    ) -> Res<Incoming> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(HOST, self.inner.host.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        let response = conn.send_request(request).await?;
        if !response.status().is_success() {
            return Err(format!("{path} answered {}", response.status()).into());
        }
        Ok(response.into_body())
    }

    /// Sends a request and reads the answer, discarding it (or keeping it when `keep`).
    async fn exchange(&self, path: &'static str, body: Bytes, keep: bool) -> Res<Vec<u8>> {
        let mut conn = self.connection().await?;
        let mut incoming = self.send(&mut conn, path, body).await?;
        let mut kept = Vec::new();
        while let Some(frame) = incoming.frame().await {
            if let Ok(data) = frame?.into_data() {
                if keep {
                    kept.extend_from_slice(&data);
                }
            }
        }
        if let Ok(mut idle) = self.inner.idle.lock() {
            idle.push(conn);
        }
        Ok(kept)
    }

    async fn post(&self, path: &'static str, body: Bytes) -> Res<()> {
        self.exchange(path, body, false).await.map(drop)
    }
}

/// The integer in the first `"<field>":"<digits>"` of `body`.
fn find_int(body: &[u8], field: &str) -> Option<i64> {
    let needle = format!("\"{field}\":\"");
    let start = body
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())?
        + needle.len();
    let digits = &body[start..];
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// A raw watch stream: counts `"kv":`, the start of each event (keys and values are base64,
/// and `prev_kv` is not asked for, so nothing else matches).
pub struct CeilingWatch {
    body: Incoming,
    /// The last bytes of the previous frame, in case the pattern straddles two frames.
    tail: Vec<u8>,
    /// Keeps the connection's task alive for the stream's lifetime.
    _conn: SendRequest<Full<Bytes>>,
}

const EVENT: &[u8] = b"\"kv\":";

impl CeilingWatch {
    /// Reads one frame; the number of events that start in it, and whether it says
    /// `"created":true`.
    async fn frame(&mut self) -> Res<(usize, bool)> {
        loop {
            let frame = self.body.frame().await.ok_or("the watch ended")??;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let mut window = std::mem::take(&mut self.tail);
            window.extend_from_slice(&data);
            let events = window.windows(EVENT.len()).filter(|w| *w == EVENT).count();
            let created = window.windows(14).any(|w| w == b"\"created\":true");
            let keep = window.len().min(EVENT.len() - 1);
            self.tail = window[window.len() - keep..].to_vec();
            return Ok((events, created));
        }
    }
}

impl Watcher for CeilingWatch {
    async fn next_events(&mut self) -> Res<usize> {
        Ok(self.frame().await?.0)
    }
}

impl BenchClient for Ceiling {
    type Watcher = CeilingWatch;

    async fn put(&self, i: usize) -> Res<()> {
        self.post(PUT, self.inner.put[i].clone()).await
    }

    async fn get(&self, i: usize) -> Res<bool> {
        self.post(RANGE, self.inner.get[i].clone()).await?;
        Ok(true)
    }

    async fn range_all(&self) -> Res<Option<usize>> {
        self.post(RANGE, self.inner.range_all.clone()).await?;
        Ok(None)
    }

    async fn delete_all(&self) -> Res<()> {
        self.post(DELETE, self.inner.range_all.clone()).await
    }

    async fn mod_revision(&self, i: usize) -> Res<i64> {
        let answer = self
            .exchange(RANGE, self.inner.get[i].clone(), true)
            .await?;
        Ok(find_int(&answer, "mod_revision").ok_or("no mod_revision in the answer")?)
    }

    async fn cas(&self, i: usize, expected: i64) -> Res<Option<i64>> {
        let head = &self.inner.txn_head[i];
        let mut body = Vec::with_capacity(head.len() + 20 + self.inner.txn_tail.len());
        body.extend_from_slice(head);
        body.extend_from_slice(expected.to_string().as_bytes());
        body.extend_from_slice(&self.inner.txn_tail);
        let answer = self.exchange(TXN, body.into(), true).await?;
        let succeeded = answer.windows(16).any(|w| w == b"\"succeeded\":true");
        // After a successful put the key's mod revision is the header's revision.
        Ok(if succeeded {
            find_int(&answer, "revision")
        } else {
            None
        })
    }

    async fn watch_all(&self) -> Res<CeilingWatch> {
        // A stream owns its connection: a fresh one, never returned to the stack.
        let stream = TcpStream::connect(&self.inner.addr).await?;
        stream.set_nodelay(true)?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let body = self
            .send(&mut send, WATCH, self.inner.watch.clone())
            .await?;
        let mut watch = CeilingWatch {
            body,
            tail: Vec::new(),
            _conn: send,
        };
        while !watch.frame().await?.1 {}
        Ok(watch)
    }

    async fn lease_grant(&self, ttl: i64) -> Res<i64> {
        let body = format!(r#"{{"TTL":"{ttl}"}}"#);
        let answer = self.exchange(GRANT, body.into(), true).await?;
        Ok(find_int(&answer, "ID").ok_or("no lease ID in the answer")?)
    }

    async fn lease_keep_alive(&self, id: i64) -> Res<()> {
        self.post(KEEPALIVE, format!(r#"{{"ID":"{id}"}}"#).into())
            .await
    }
}
