//! The scripted backend (tests only): the seam's second arm, standing in for etcd.
//!
//! A test drives the stream hubs through it with no server: every stream the hub opens
//! (a bidirectional one, or a one-request server stream of the per-call mode) shows up as
//! a [`Peer`], the server's end, through which the test reads what the hub sent and
//! writes what "etcd" answers: messages (encoded as the gateway's JSON and decoded by the
//! same decoder as real answers), raw bytes, stream errors, the end of the stream, or
//! nothing at all. Unary calls and one-answer stream calls wait for the test as a
//! [`Call`]. The member's answers to `check_leader`, `server_version` and `renew_token`,
//! whether pings are answered and which streams may open are set on the [`Script`].
//! Time is tokio's: with a paused clock, a silent peer times out at once.

use crate::error::{Error, Result};
use etcd_transport::Error as TransportError;
use etcd_wire::{Code, Status};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What a member answers to the liveness probe's leader check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leader {
    /// It has a leader (the default).
    Yes,
    /// "etcdserver: no leader", at once.
    No,
    /// Nothing: the check times out.
    Silent,
}

/// How the next stream opening goes (the default, with nothing queued: it opens).
#[derive(Debug)]
pub(crate) enum Open {
    /// The server takes no bidirectional stream (the gateway's refused upgrade).
    Refuse,
    /// The opening fails with this error.
    Fail(Error),
}

/// The scripted backend; clones share the script.
#[derive(Clone)]
pub(crate) struct Script(Arc<State>);

struct State {
    endpoints: Vec<String>,
    current: Mutex<usize>,
    demoted: Mutex<Vec<String>>,
    version: Mutex<std::result::Result<String, Error>>,
    auth: AtomicBool,
    /// The endpoint each renewal asked first, and when.
    renewals: Mutex<Vec<(String, tokio::time::Instant)>>,
    renew_failures: Mutex<VecDeque<Error>>,
    leaders: Mutex<HashMap<String, Leader>>,
    leader_checks: Mutex<Vec<String>>,
    opens: Mutex<VecDeque<Open>>,
    opened: mpsc::UnboundedSender<Peer>,
    opened_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Peer>>,
    calls: mpsc::UnboundedSender<Call>,
    calls_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Call>>,
    request_timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Script {
    /// A script for a cluster of these endpoints (the first is current), version 3.5.30,
    /// no auth, every member with a leader, a request timeout of 5 s.
    pub(crate) fn new(endpoints: &[&str]) -> Script {
        let (opened, opened_rx) = mpsc::unbounded_channel();
        let (calls, calls_rx) = mpsc::unbounded_channel();
        Script(Arc::new(State {
            endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
            current: Mutex::new(0),
            demoted: Mutex::new(Vec::new()),
            version: Mutex::new(Ok("3.5.30".into())),
            auth: AtomicBool::new(false),
            renewals: Mutex::new(Vec::new()),
            renew_failures: Mutex::new(VecDeque::new()),
            leaders: Mutex::new(HashMap::new()),
            leader_checks: Mutex::new(Vec::new()),
            opens: Mutex::new(VecDeque::new()),
            opened,
            opened_rx: tokio::sync::Mutex::new(opened_rx),
            calls,
            calls_rx: tokio::sync::Mutex::new(calls_rx),
            request_timeout: Duration::from_secs(5),
        }))
    }

    /// The version `server_version` answers.
    pub(crate) fn set_version(&self, version: &str) {
        *lock(&self.0.version) = Ok(version.to_string());
    }

    /// Whether the client authenticates.
    pub(crate) fn set_auth(&self, on: bool) {
        self.0.auth.store(on, Ordering::Relaxed);
    }

    /// The next token renewal fails with `error` (later ones succeed unless queued too).
    pub(crate) fn fail_next_renewal(&self, error: Error) {
        lock(&self.0.renew_failures).push_back(error);
    }

    /// How many times the token was renewed (or a renewal tried).
    pub(crate) fn renewals(&self) -> u64 {
        lock(&self.0.renewals).len() as u64
    }

    /// The endpoint each renewal asked first, in order.
    pub(crate) fn renewed_at(&self) -> Vec<String> {
        lock(&self.0.renewals)
            .iter()
            .map(|(endpoint, _)| endpoint.clone())
            .collect()
    }

    /// When the last renewal was asked for.
    pub(crate) fn last_renewal(&self) -> Option<tokio::time::Instant> {
        lock(&self.0.renewals).last().map(|(_, at)| *at)
    }

    /// What `endpoint` answers to a leader check from now on.
    pub(crate) fn set_leader(&self, endpoint: &str, leader: Leader) {
        lock(&self.0.leaders).insert(endpoint.to_string(), leader);
    }

    /// The endpoints asked for their leader so far, in order.
    pub(crate) fn leader_checks(&self) -> Vec<String> {
        lock(&self.0.leader_checks).clone()
    }

    /// Queues how the next stream opening goes.
    pub(crate) fn next_open(&self, open: Open) {
        lock(&self.0.opens).push_back(open);
    }

    /// The endpoints demoted so far, in order.
    pub(crate) fn demoted(&self) -> Vec<String> {
        lock(&self.0.demoted).clone()
    }

    /// The server's end of the next stream the client opens (waits for it).
    pub(crate) async fn opened(&self) -> Peer {
        match self.0.opened_rx.lock().await.recv().await {
            Some(peer) => peer,
            // The script holds a sender itself: the channel never closes.
            None => unreachable!("the script's own sender is alive"),
        }
    }

    /// The server's end of a stream opened and not yet taken, if any (does not wait).
    pub(crate) fn try_opened(&self) -> Option<Peer> {
        self.0.opened_rx.try_lock().ok()?.try_recv().ok()
    }

    /// The next unary or one-answer call the client makes (waits for it).
    pub(crate) async fn call(&self) -> Call {
        match self.0.calls_rx.lock().await.recv().await {
            Some(call) => call,
            None => unreachable!("the script's own sender is alive"),
        }
    }

    pub(super) fn endpoints(&self) -> Vec<String> {
        self.0.endpoints.clone()
    }

    pub(super) fn current_endpoint(&self) -> String {
        let current = *lock(&self.0.current);
        self.0.endpoints.get(current).cloned().unwrap_or_default()
    }

    pub(super) fn demote(&self, endpoint: &str) {
        lock(&self.0.demoted).push(endpoint.to_string());
        let mut current = lock(&self.0.current);
        if self
            .0
            .endpoints
            .get(*current)
            .is_some_and(|e| e == endpoint)
        {
            *current = (*current + 1) % self.0.endpoints.len().max(1);
        }
    }

    pub(super) fn server_version(&self) -> Result<String> {
        lock(&self.0.version).clone()
    }

    pub(super) async fn check_leader(&self, endpoint: &str, timeout: Duration) -> Result<()> {
        lock(&self.0.leader_checks).push(endpoint.to_string());
        let leader = lock(&self.0.leaders)
            .get(endpoint)
            .copied()
            .unwrap_or(Leader::Yes);
        match leader {
            Leader::Yes => Ok(()),
            Leader::No => Err(Error::server(
                endpoint,
                Status::new(Code::Unavailable.as_i32(), "etcdserver: no leader"),
            )),
            Leader::Silent => {
                tokio::time::sleep(timeout).await;
                Err(timeout_error(endpoint, timeout))
            }
        }
    }

    pub(super) fn renew_token(&self, endpoint: &str) -> Result<()> {
        lock(&self.0.renewals).push((endpoint.to_string(), tokio::time::Instant::now()));
        match lock(&self.0.renew_failures).pop_front() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub(super) fn uses_auth(&self) -> bool {
        self.0.auth.load(Ordering::Relaxed)
    }

    pub(super) fn request_timeout(&self) -> Duration {
        self.0.request_timeout
    }

    /// Opens a stream of `method` at the current endpoint; `first`, the request of a
    /// one-request stream, is what the peer reads first.
    pub(super) fn open<T, Q: Serialize>(
        &self,
        method: &'static str,
        first: Option<&Q>,
    ) -> Result<Option<Stream<T>>> {
        match lock(&self.0.opens).pop_front() {
            Some(Open::Refuse) => return Ok(None),
            Some(Open::Fail(e)) => return Err(e),
            None => {}
        }
        let endpoint = self.current_endpoint();
        let (requests_tx, requests) = mpsc::unbounded_channel();
        let (answers, answers_rx) = mpsc::unbounded_channel();
        let pongs = Arc::new(AtomicBool::new(true));
        let stream = Stream {
            endpoint: endpoint.clone(),
            requests: requests_tx,
            answers: answers_rx,
            pongs: pongs.clone(),
            pings: 0,
            ponged: 0,
            answer: PhantomData,
        };
        if let Some(first) = first {
            let bytes = encode(&endpoint, first)?;
            let _ = stream.requests.send(bytes);
        }
        let _ = self.0.opened.send(Peer {
            endpoint,
            method,
            requests,
            answers: Some(answers),
            pongs,
        });
        Ok(Some(stream))
    }

    /// A call answered once: waits for the test's [`Call::answer`] within `deadline`.
    pub(super) async fn call_once<Q: Serialize>(
        &self,
        method: &'static str,
        request: &Q,
        deadline: Option<Duration>,
    ) -> Result<Vec<u8>> {
        let endpoint = self.current_endpoint();
        let (reply, answer) = oneshot::channel();
        let call = Call {
            endpoint: endpoint.clone(),
            method,
            request: encode(&endpoint, request)?,
            reply,
        };
        if self.0.calls.send(call).is_err() {
            return Err(gone(&endpoint));
        }
        let deadline = deadline.unwrap_or(self.0.request_timeout);
        match tokio::time::timeout(deadline, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(gone(&endpoint)),
            Err(_) => Err(timeout_error(&endpoint, deadline)),
        }
    }
}

/// The client's end of a scripted stream whose answers are `T`s.
pub(crate) struct Stream<T> {
    endpoint: String,
    requests: mpsc::UnboundedSender<Vec<u8>>,
    answers: mpsc::UnboundedReceiver<Result<Vec<u8>>>,
    pongs: Arc<AtomicBool>,
    pings: u64,
    ponged: u64,
    answer: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Stream<T> {
    pub(super) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub(super) fn send<Q: Serialize>(&mut self, request: &Q) -> Result<()> {
        let bytes = encode(&self.endpoint, request)?;
        self.requests.send(bytes).map_err(|_| gone(&self.endpoint))
    }

    /// The next answer, decoded as the transport decodes the gateway's. Cancel safe.
    pub(super) async fn next(&mut self) -> Option<Result<T>> {
        let answer = self.answers.recv().await?;
        Some(answer.and_then(|bytes| decode(&self.endpoint, &bytes)))
    }

    pub(super) fn ping(&mut self) -> Result<u64> {
        if self.requests.is_closed() {
            return Err(gone(&self.endpoint));
        }
        self.pings += 1;
        if self.pongs.load(Ordering::Relaxed) {
            self.ponged = self.pings;
        }
        Ok(self.pings)
    }

    pub(super) fn ponged(&self, ping: u64) -> bool {
        ping <= self.ponged
    }
}

/// The server's end of one stream the client opened.
pub(crate) struct Peer {
    endpoint: String,
    method: &'static str,
    requests: mpsc::UnboundedReceiver<Vec<u8>>,
    answers: Option<mpsc::UnboundedSender<Result<Vec<u8>>>>,
    pongs: Arc<AtomicBool>,
}

impl Peer {
    /// The endpoint the stream went to.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The stream's method path (`/watch`, `/lease/keepalive`).
    pub(crate) fn method(&self) -> &'static str {
        self.method
    }

    /// The next request the client sent; `None` once the client dropped the stream and
    /// everything it sent was read.
    pub(crate) async fn request<Q: DeserializeOwned>(&mut self) -> Option<Q> {
        let bytes = self.requests.recv().await?;
        Some(parse(&bytes))
    }

    /// A request already sent and not yet read, if any (does not wait).
    pub(crate) fn try_request<Q: DeserializeOwned>(&mut self) -> Option<Q> {
        let bytes = self.requests.try_recv().ok()?;
        Some(parse(&bytes))
    }

    /// Whether the client has dropped its end of the stream.
    pub(crate) fn is_closed(&self) -> bool {
        self.answers.as_ref().is_none_or(|a| a.is_closed())
    }

    /// Sends an answer, as etcd's gateway would encode it.
    pub(crate) fn answer<A: Serialize>(&self, answer: &A) {
        match serde_json::to_vec(answer) {
            Ok(bytes) => self.answer_raw(bytes),
            Err(e) => panic!("a scripted answer must encode: {e}"),
        }
    }

    /// Sends bytes as they are, decodable or not.
    pub(crate) fn answer_raw(&self, bytes: impl Into<Vec<u8>>) {
        if let Some(answers) = &self.answers {
            let _ = answers.send(Ok(bytes.into()));
        }
    }

    /// Ends the stream with an error.
    pub(crate) fn fail(&self, error: Error) {
        if let Some(answers) = &self.answers {
            let _ = answers.send(Err(error));
        }
    }

    /// Ends the stream without an error (the client reads its end).
    pub(crate) fn end(&mut self) {
        self.answers = None;
    }

    /// Whether the stream's connection answers pings from now on (default yes).
    pub(crate) fn answer_pings(&self, on: bool) {
        self.pongs.store(on, Ordering::Relaxed);
    }
}

/// A unary or one-answer call waiting for the test's answer.
pub(crate) struct Call {
    endpoint: String,
    method: &'static str,
    request: Vec<u8>,
    reply: oneshot::Sender<Result<Vec<u8>>>,
}

impl Call {
    /// The endpoint the call went to.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The method path.
    pub(crate) fn method(&self) -> &'static str {
        self.method
    }

    /// The request.
    pub(crate) fn request<Q: DeserializeOwned>(&self) -> Q {
        parse(&self.request)
    }

    /// Answers it, as etcd's gateway would encode it.
    pub(crate) fn answer<A: Serialize>(self, answer: &A) {
        match serde_json::to_vec(answer) {
            Ok(bytes) => {
                let _ = self.reply.send(Ok(bytes));
            }
            Err(e) => panic!("a scripted answer must encode: {e}"),
        }
    }

    /// Fails it with `error`.
    pub(crate) fn fail(self, error: Error) {
        let _ = self.reply.send(Err(error));
    }
}

fn parse<Q: DeserializeOwned>(bytes: &[u8]) -> Q {
    match etcd_wire::from_slice(bytes) {
        Ok(q) => q,
        Err(e) => panic!(
            "the client sent an undecodable request {}: {e}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

fn encode<Q: Serialize>(endpoint: &str, request: &Q) -> Result<Vec<u8>> {
    serde_json::to_vec(request).map_err(|e| {
        Error::from_transport(TransportError::Decode {
            endpoint: endpoint.to_string(),
            source: etcd_wire::DecodeError::Json(e),
        })
    })
}

/// Decodes an answer as the transport does; an undecodable one is its decode error.
pub(super) fn decode<T: DeserializeOwned>(endpoint: &str, bytes: &[u8]) -> Result<T> {
    etcd_wire::from_slice(bytes).map_err(|source| {
        Error::from_transport(TransportError::Decode {
            endpoint: endpoint.to_string(),
            source,
        })
    })
}

/// The error of a stream or call whose peer went away: a broken connection.
fn gone(endpoint: &str) -> Error {
    Error::from_transport(TransportError::Io {
        endpoint: endpoint.to_string(),
        outcome_unknown: true,
        source: "the scripted peer closed the stream".into(),
    })
}

/// What a request that got no answer within `after` fails with.
pub(crate) fn timeout_error(endpoint: &str, after: Duration) -> Error {
    Error::from_transport(TransportError::Timeout {
        endpoint: endpoint.to_string(),
        after,
        outcome_unknown: false,
    })
}

/// A broken connection, as a stream error: transient, the hub reconnects.
pub(crate) fn broken(endpoint: &str) -> Error {
    Error::from_transport(TransportError::Io {
        endpoint: endpoint.to_string(),
        outcome_unknown: true,
        source: "connection reset by the script".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Liveness, StreamMode};
    use crate::Client;
    use etcd_wire::header::{KeyValue, ResponseHeader};
    use etcd_wire::kv::{RangeRequest, RangeResponse};

    #[tokio::test(start_paused = true)]
    async fn unary_calls_reach_the_test_and_its_answers_are_decoded_as_the_gateway_s() {
        let script = Script::new(&["http://127.0.0.1:23790"]);
        let client = Client::scripted(&script, StreamMode::Auto, Liveness::default());
        let (got, ()) = tokio::join!(client.get("k"), async {
            let call = script.call().await;
            assert_eq!(call.method(), "/kv/range");
            assert_eq!(call.endpoint(), "http://127.0.0.1:23790");
            assert_eq!(&call.request::<RangeRequest>().key[..], b"k");
            call.answer(&RangeResponse {
                header: ResponseHeader {
                    revision: 5,
                    ..ResponseHeader::default()
                },
                kvs: vec![KeyValue {
                    key: "k".into(),
                    value: "v".into(),
                    create_revision: 4,
                    mod_revision: 5,
                    version: 2,
                    lease: 0,
                }],
                count: 1,
                ..RangeResponse::default()
            });
        });
        let kv = got.expect("answered").expect("found");
        assert_eq!((kv.value(), kv.mod_revision()), (&b"v"[..], 5));
        // Unanswered: the request times out as a real one would.
        let started = tokio::time::Instant::now();
        let (got, call) = tokio::join!(client.get("k"), script.call());
        let error = got.expect_err("no answer");
        assert!(error.is_timeout(), "{error:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        drop(call);
    }
}
