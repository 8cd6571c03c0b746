//! The gateway's side of an attempt: one request to one endpoint over HTTP/1.1 with JSON
//! bodies (pooled connections, the answer read whole or as a stream), `GET /version`, and
//! the opening of a WebSocket for bidirectional calls. Endpoint choice, retries and tokens
//! are the failover loop's ([`Transport`](crate::Transport)).

use crate::bidi::BidiStream;
use crate::endpoint::Endpoint;
use crate::endpoints::Target;
use crate::error::Error;
use crate::pool::{Conn, Pool, SendError};
use crate::route::{Answered, Attempt};
use crate::stream::MessageStream;
use bytes::Bytes;
use etcd_wire::stream::{parse_message, StreamDecoder, StreamMessage};
use etcd_wire::{DecodeError, Rpc, StreamRpc, VersionResponse};
use http::header::{HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST};
use http::{Method, Request, StatusCode};
use http_body::Body as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Mutex;
use std::time::Duration;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Keep a joined-answer buffer for reuse up to this capacity.
const MAX_SPARE: usize = 16 << 20;

/// The gateway header that makes a member without a leader refuse a call at once with
/// "no leader" (etcd's require-leader metadata, `hasleader`).
const REQUIRE_LEADER: http::HeaderName = http::HeaderName::from_static("grpc-metadata-hasleader");

/// The gateway side of a transport: the HTTP/1.1 pool and what reading answers needs.
pub(crate) struct Gateway {
    pool: Pool,
    /// The buffer the last large multi-frame answer was joined in, kept for the next one:
    /// a fresh buffer of megabytes costs a page fault per 4 KiB written.
    spare: Mutex<Vec<u8>>,
    max_response_len: usize,
    /// How long a step with no deadline of its own may take (`GET /version`, a WebSocket
    /// send): the request timeout, 10 s when unlimited.
    step_timeout: Duration,
}

/// A whole answer body: the one frame it came in, or its frames joined in a buffer that
/// goes back to the gateway once decoded ([`Gateway::recycle`]).
enum Body {
    Frame(Bytes),
    Joined(Vec<u8>),
}

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Body::Frame(b) => b,
            Body::Joined(v) => v,
        }
    }
}

/// What one attempt asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Unary,
    Stream,
}

/// What one attempt got.
enum Answer {
    Body(Body),
    /// A streamed answer, with the connection it holds.
    Stream(Incoming, Conn),
}

impl Gateway {
    pub(crate) fn new(pool: Pool, max_response_len: usize, step_timeout: Duration) -> Gateway {
        Gateway {
            pool,
            spare: Mutex::new(Vec::new()),
            max_response_len,
            step_timeout,
        }
    }

    /// One attempt of a typed unary request: its JSON posted, its answer decoded.
    pub(crate) async fn unary<R: Rpc>(
        &self,
        at: Attempt<'_>,
        request: &R,
    ) -> Result<Answered<R::Response>, Error> {
        let endpoint = at.endpoint.clone();
        let body = self.body(at, encode(request)?).await?;
        Ok(self.decode(&endpoint, body, R::decode))
    }

    /// One attempt of an untyped unary request whose JSON is `body`.
    pub(crate) async fn unary_json<T: DeserializeOwned>(
        &self,
        at: Attempt<'_>,
        body: Bytes,
    ) -> Result<Answered<T>, Error> {
        let endpoint = at.endpoint.clone();
        let body = self.body(at, body).await?;
        Ok(self.decode(&endpoint, body, etcd_wire::from_slice))
    }

    /// One attempt of a streaming request whose stream answers exactly once (such as
    /// `lease/keepalive` over a plain POST, on a pooled connection), and that answer.
    pub(crate) async fn stream_once<R: StreamRpc>(
        &self,
        at: Attempt<'_>,
        request: &R,
    ) -> Result<Answered<R::Response>, Error> {
        let endpoint = at.endpoint.clone();
        let endpoint = &endpoint.base;
        let body = self.body(at, encode(request)?).await?;
        let decode_error = |source| Error::Decode {
            endpoint: endpoint.clone(),
            source,
        };
        let mut decoder = StreamDecoder::new(self.max_response_len);
        let pushed = decoder.push(&body);
        self.recycle(body);
        let answer = pushed.and_then(|()| decoder.finish()).and_then(|line| {
            let line = line.ok_or(DecodeError::NotAMessage)?;
            parse_message::<R::Response>(&line)
        });
        Ok(match answer.map_err(decode_error) {
            Ok(StreamMessage::Result(message)) => Ok(message),
            Ok(StreamMessage::Error(status)) => Err(Error::Server {
                endpoint: endpoint.clone(),
                status,
            }),
            Err(e) => Err(e),
        })
    }

    /// One attempt at opening a streaming call over its own POST whose JSON is `body`.
    pub(crate) async fn open_stream<T>(
        &self,
        at: Attempt<'_>,
        body: Bytes,
    ) -> Result<MessageStream<T>, Error> {
        let endpoint = at.endpoint.clone();
        match self.send(at, body, Call::Stream).await? {
            Answer::Stream(incoming, conn) => Ok(MessageStream::new(
                incoming,
                conn,
                endpoint.base.clone(),
                self.max_response_len,
            )),
            Answer::Body(_) => Err(Error::Config(
                "internal: unary answer to a stream call".into(),
            )),
        }
    }

    /// One attempt, answered with a whole body.
    async fn body(&self, at: Attempt<'_>, body: Bytes) -> Result<Body, Error> {
        match self.send(at, body, Call::Unary).await? {
            Answer::Body(body) => Ok(body),
            Answer::Stream(..) => Err(Error::Config(
                "internal: stream answer to a unary call".into(),
            )),
        }
    }

    /// Decodes a whole answer with `decode`, then keeps its buffer for the next one.
    fn decode<T>(
        &self,
        endpoint: &Endpoint,
        body: Body,
        decode: impl FnOnce(&[u8]) -> Result<T, DecodeError>,
    ) -> Answered<T> {
        let decoded = decode(&body).map_err(|source| Error::Decode {
            endpoint: endpoint.base.clone(),
            source,
        });
        self.recycle(body);
        decoded
    }

    /// One request to one endpoint, within the attempt's time limit.
    async fn send(&self, at: Attempt<'_>, body: Bytes, call: Call) -> Result<Answer, Error> {
        let uri = at.endpoint.method_uri(at.prefix(), at.route.method)?;
        let Attempt {
            endpoint,
            route: _,
            token,
            require_leader,
            limit,
        } = at;
        let endpoint = &*endpoint;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(HOST, endpoint.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, token);
        }
        if require_leader {
            request = request.header(REQUIRE_LEADER, HeaderValue::from_static("true"));
        }
        if call == Call::Stream {
            // A stream owns its connection: never hand it back to the pool.
            request = request.header(CONNECTION, "close");
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| Error::Config(format!("invalid request: {e}")))?;
        let exchange = async {
            let (status, body, conn) = self.send_on(endpoint, request).await?;
            if status.is_success() && call == Call::Stream {
                return Ok(Answer::Stream(body, conn));
            }
            let bytes = self.read_body(endpoint, body).await?;
            if call == Call::Unary {
                self.pool.give_back(&endpoint.idle, conn);
            }
            if status.is_success() {
                Ok(Answer::Body(bytes))
            } else {
                Err(server_error(&endpoint.base, status, &bytes))
            }
        };
        let answer = limit
            .run(&endpoint.base, true, std::pin::pin!(exchange))
            .await;
        answer
    }

    /// Sends `request` to `endpoint`: the answer's status and body, and the connection it
    /// arrived on.
    async fn send_on(
        &self,
        endpoint: &Target,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Incoming, Conn), Error> {
        let (response, conn) = self
            .pool
            .send(&endpoint.idle, endpoint, request)
            .await
            .map_err(|e| send_error(&endpoint.base, e))?;
        Ok((response.status(), response.into_body(), conn))
    }

    /// The version from `GET /version` (HTTP/1.1, no token needed): an answer that is not
    /// etcd's (a 4xx, an HTML page, JSON without a version) is [`Error::NotEtcd`].
    pub(crate) async fn version(&self, endpoint: &Target) -> Result<VersionResponse, Error> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(format!("{}/version", endpoint.path))
            .header(HOST, endpoint.host.clone())
            .body(Full::new(Bytes::new()))
            .map_err(|e| Error::Config(format!("invalid endpoint: {e}")))?;
        let exchange = async {
            let (status, body, conn) = self.send_on(endpoint, request).await?;
            let bytes = self.read_body(endpoint, body).await?;
            self.pool.give_back(&endpoint.idle, conn);
            if status.is_server_error() {
                // Something in between (or a starting member) failing: not a verdict.
                return Err(server_error(&endpoint.base, status, &bytes));
            }
            let not_etcd = |reason: String| Error::NotEtcd {
                endpoint: endpoint.base.clone(),
                reason,
            };
            if !status.is_success() {
                return Err(not_etcd(crate::error::not_etcd_answer(
                    status.as_u16(),
                    &bytes,
                )));
            }
            match etcd_wire::from_slice::<VersionResponse>(&bytes) {
                Ok(v) if v.server_version().is_some() => Ok(v),
                _ => Err(not_etcd(crate::error::not_etcd_answer(
                    status.as_u16(),
                    &bytes,
                ))),
            }
        };
        let after = self.step_timeout;
        tokio::time::timeout(after, exchange)
            .await
            .map_err(|_| Error::Timeout {
                endpoint: endpoint.base.clone(),
                after,
                outcome_unknown: false,
            })?
    }

    /// Opens a bidirectional call over a WebSocket of its own (no token: etcd 3.4 and 3.5
    /// take none over the WebSocket); a refused upgrade is [`Error::UpgradeRefused`].
    pub(crate) async fn open_websocket<R: StreamRpc>(
        &self,
        at: Attempt<'_>,
    ) -> Result<BidiStream<R>, Error> {
        let endpoint = &*at.endpoint;
        let io = self
            .pool
            .connect_io(endpoint)
            .await
            .map_err(|source| crate::error::connect_error(&endpoint.base, source))?;
        let scheme = if endpoint.is_https() { "wss" } else { "ws" };
        let host = endpoint.host.to_str().unwrap_or_default();
        let url = format!(
            "{scheme}://{host}{}{}{}",
            endpoint.path,
            at.prefix(),
            R::PATH
        );
        let request = (&url)
            .into_client_request()
            .map_err(|e| Error::Config(format!("invalid WebSocket URL {url:?}: {e}")))?;
        let limit = self.max_response_len;
        let config = WebSocketConfig::default()
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit));
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(request, TokioIo::new(io), Some(config))
                .await
                .map_err(|e| match e {
                    tungstenite::Error::Http(response) => Error::UpgradeRefused {
                        endpoint: endpoint.base.clone(),
                        status: response.status().as_u16(),
                    },
                    other => Error::Io {
                        endpoint: endpoint.base.clone(),
                        outcome_unknown: false,
                        source: Box::new(other),
                    },
                })?;
        Ok(BidiStream::websocket(
            ws,
            endpoint.base.clone(),
            limit,
            self.step_timeout,
        ))
    }

    /// Reads a whole body, within the response limit.
    ///
    /// A body that arrives in one frame is returned as it is (no copy). Otherwise frames are
    /// copied into one buffer as they arrive and dropped at once, so that hyper can reuse its
    /// read buffer instead of allocating (and page-faulting in) a new one for every frame of a
    /// large answer.
    async fn read_body(&self, endpoint: &Endpoint, mut body: Incoming) -> Result<Body, Error> {
        let limit = self.max_response_len;
        let too_large = || Error::ResponseTooLarge {
            endpoint: endpoint.base.clone(),
            limit,
        };
        if body.size_hint().lower() > limit as u64 {
            return Err(too_large());
        }
        let mut first: Option<Bytes> = None;
        let mut joined: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Io {
                endpoint: endpoint.base.clone(),
                outcome_unknown: true,
                source: Box::new(e),
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let received = first.as_ref().map_or(0, Bytes::len) + joined.len();
            if received + data.len() > limit {
                return Err(too_large());
            }
            match first.take() {
                None if joined.is_empty() => first = Some(data),
                previous => {
                    if let Some(previous) = previous {
                        joined = self.take_spare();
                        let hint = usize::try_from(body.size_hint().lower()).unwrap_or(0);
                        joined.reserve((previous.len() + data.len()).saturating_add(hint));
                        joined.extend_from_slice(&previous);
                    }
                    joined.extend_from_slice(&data);
                }
            }
        }
        Ok(match first {
            Some(frame) => Body::Frame(frame),
            None => Body::Joined(joined),
        })
    }

    /// An empty buffer to join a large answer in: the one kept from the last, if any.
    fn take_spare(&self) -> Vec<u8> {
        let mut spare = match self.spare.lock() {
            Ok(mut guard) => std::mem::take(&mut *guard),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        spare.clear();
        spare
    }

    /// Keeps a decoded answer's joined buffer for the next large answer (the larger of the
    /// two, up to [`MAX_SPARE`]).
    fn recycle(&self, body: Body) {
        let Body::Joined(buffer) = body else {
            return;
        };
        if buffer.capacity() > MAX_SPARE {
            return;
        }
        let mut spare = match self.spare.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buffer.capacity() > spare.capacity() {
            *spare = buffer;
        }
    }
}

/// A request's JSON body.
pub(crate) fn encode<T: Serialize + ?Sized>(request: &T) -> Result<Bytes, Error> {
    serde_json::to_vec(request)
        .map(Bytes::from)
        .map_err(Error::Encode)
}

fn send_error(endpoint: &str, e: SendError) -> Error {
    match e {
        SendError::Connect(source) => crate::error::connect_error(endpoint, source),
        // A certificate refused by the server shows (TLS 1.3) as its alert on the first
        // read, before it handled the request.
        SendError::NotSent(source) | SendError::Io(source)
            if crate::error::tls_cause(&source).is_some() =>
        {
            Error::TlsHandshake {
                endpoint: endpoint.to_string(),
                source: Box::new(source),
            }
        }
        SendError::NotSent(source) => Error::Io {
            endpoint: endpoint.to_string(),
            outcome_unknown: false,
            source: Box::new(source),
        },
        SendError::Io(source) => Error::Io {
            endpoint: endpoint.to_string(),
            outcome_unknown: true,
            source: Box::new(source),
        },
    }
}

fn server_error(endpoint: &str, status: StatusCode, body: &[u8]) -> Error {
    match etcd_wire::from_slice::<etcd_wire::Status>(body) {
        Ok(s) if !s.message.is_empty() || s.grpc_code() != etcd_wire::Code::Unknown => {
            Error::Server {
                endpoint: endpoint.to_string(),
                status: s,
            }
        }
        _ => {
            let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
            Error::Http {
                endpoint: endpoint.to_string(),
                status: status.as_u16(),
                body: text,
            }
        }
    }
}
