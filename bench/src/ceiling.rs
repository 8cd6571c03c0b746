//! The raw-gateway ceiling: the same requests as the other clients, pre-encoded, sent by a
//! minimal hyper HTTP/1.1 loop that reads response bodies and discards them.
//!
//! One connection per in-flight request (a connection is taken from a stack for each
//! request and put back after its body has been read, so `concurrency` requests in flight
//! use `concurrency` connections). What must be known of an answer to send the next request
//! is found by a byte search, not by decoding: the header revision of a transaction (the
//! key's new mod revision), a lease's ID; a watch counts `"kv":` occurrences.
//!
//! watch-many opens one streaming request (so one connection) per key; lease-many
//! refreshes each lease from a task of its own every TTL/3 with one keep-alive request.

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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;

/// The ceiling client.
#[derive(Clone)]
pub struct Ceiling {
    inner: Arc<Inner>,
    /// Connections not in use; a client made by `another` has its own.
    idle: Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>>,
}

struct Inner {
    addr: String,
    host: HeaderValue,
    put: Vec<Bytes>,
    get: Vec<Bytes>,
    range_all: Bytes,
    /// A transaction body is `txn_head + revision + txn_tail`.
    txn_head: Vec<Vec<u8>>,
    txn_tail: Vec<u8>,
    watch: Bytes,
    /// The watch of key `i` alone.
    watch_key: Vec<Bytes>,
}

const PUT: &str = "/v3/kv/put";
const RANGE: &str = "/v3/kv/range";
const DELETE: &str = "/v3/kv/deleterange";
const TXN: &str = "/v3/kv/txn";
const WATCH: &str = "/v3/watch";
const GRANT: &str = "/v3/lease/grant";
const KEEPALIVE: &str = "/v3/lease/keepalive";
const TIME_TO_LIVE: &str = "/v3/lease/timetolive";
const REVOKE: &str = "/v3/lease/revoke";

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
                watch_key: k
                    .iter()
                    .map(|k| format!(r#"{{"create_request":{{"key":"{k}"}}}}"#).into())
                    .collect(),
            }),
            idle: Arc::default(),
        };
        // Fail early when the endpoint is not there.
        ceiling
            .post(DELETE, ceiling.inner.range_all.clone())
            .await?;
        Ok(ceiling)
    }

    async fn connection(&self) -> Res<SendRequest<Full<Bytes>>> {
        let idle = self.idle.lock().map_err(|_| "poisoned")?.pop();
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
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        Ok(kept)
    }

    async fn post(&self, path: &'static str, body: Bytes) -> Res<()> {
        self.exchange(path, body, false).await.map(drop)
    }
}

impl Ceiling {
    /// Opens a watch stream with the create request `body`; returns once it is created.
    async fn open_watch(&self, body: Bytes) -> Res<CeilingWatch> {
        // A stream owns its connection: a fresh one, never returned to the stack.
        let stream = TcpStream::connect(&self.inner.addr).await?;
        stream.set_nodelay(true)?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let body = self.send(&mut send, WATCH, body).await?;
        let mut watch = CeilingWatch {
            body,
            tail: Vec::new(),
            _conn: send,
        };
        while !watch.frame().await?.1 {}
        Ok(watch)
    }

    /// One keep-alive of lease `id`; false when etcd no longer knows it (TTL -1, which
    /// has no digits to find).
    async fn refresh(&self, id: i64) -> Res<bool> {
        let answer = self
            .exchange(KEEPALIVE, format!(r#"{{"ID":"{id}"}}"#).into(), true)
            .await?;
        Ok(find_int(&answer, "TTL").is_some_and(|ttl| ttl > 0))
    }
}

/// Leases refreshed by tasks of their own; dropping this stops them.
pub struct CeilingLeases {
    ids: Vec<i64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Leases whose refresh found them gone, or failed.
    lost: Arc<AtomicUsize>,
}

impl Drop for CeilingLeases {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
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
    type Leases = CeilingLeases;
    type Cache = etcd_bench::NoCache;

    async fn cache(&self) -> Res<Option<etcd_bench::NoCache>> {
        Ok(None)
    }

    async fn another(&self) -> Res<Ceiling> {
        Ok(Ceiling {
            inner: self.inner.clone(),
            idle: Arc::default(),
        })
    }

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
        self.open_watch(self.inner.watch.clone()).await
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

    async fn watch_key(&self, i: usize) -> Res<CeilingWatch> {
        self.open_watch(self.inner.watch_key[i].clone()).await
    }

    async fn keep_leases(&self, n: usize, ttl: i64) -> Res<CeilingLeases> {
        let lost = Arc::new(AtomicUsize::new(0));
        let period = Duration::from_secs(ttl.max(1) as u64) / 3;
        let mut leases = CeilingLeases {
            ids: Vec::with_capacity(n),
            tasks: Vec::with_capacity(n),
            lost: lost.clone(),
        };
        for _ in 0..n {
            let id = self.lease_grant(ttl).await?;
            let (client, lost) = (self.clone(), lost.clone());
            leases.ids.push(id);
            leases.tasks.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(period).await;
                    if !matches!(client.refresh(id).await, Ok(true)) {
                        lost.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }));
        }
        Ok(leases)
    }

    async fn end_leases(&self, leases: CeilingLeases) -> Res<usize> {
        for task in &leases.tasks {
            task.abort();
        }
        let mut gone = 0;
        for &id in &leases.ids {
            let answer = self
                .exchange(TIME_TO_LIVE, format!(r#"{{"ID":"{id}"}}"#).into(), true)
                .await?;
            if find_int(&answer, "TTL").is_none_or(|ttl| ttl <= 0) {
                gone += 1;
            }
        }
        for &id in &leases.ids {
            self.post(REVOKE, format!(r#"{{"ID":"{id}"}}"#).into())
                .await?;
        }
        // A lease is lost once, whichever way it was noticed.
        Ok(gone.max(leases.lost.load(Ordering::Relaxed)))
    }
}
