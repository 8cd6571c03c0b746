//! Bidirectional streams: over the gateway's WebSocket, or (feature `grpc`) one HTTP/2
//! stream. Opening one is [`Transport::open_bidi`](crate::Transport::open_bidi)'s.
//!
//! etcd wraps its gateway in a WebSocket proxy: `GET <prefix>/watch` with an upgrade opens
//! the bidirectional Watch stream, on which every client text message is one request and
//! every server message one `{"result": ...}` or `{"error": ...}`. One connection then
//! carries any number of watches (or keep-alives), created and cancelled at any time.

use crate::error::Error;
use crate::tls::Io;
use etcd_wire::stream::{parse_message, StreamMessage};
use etcd_wire::StreamRpc;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use std::marker::PhantomData;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// One bidirectional streaming call on its own WebSocket connection.
///
/// [`send`](Self::send) writes a request; [`next`](Self::next) reads the next answer. The
/// connection is closed when the stream is dropped, which ends the call on the server (and
/// with it every watch or keep-alive it carried).
///
/// Over native gRPC (feature `grpc`) the call is one HTTP/2 stream on the endpoint's shared
/// connection instead; dropping it resets that stream.
pub struct BidiStream<R: StreamRpc> {
    kind: Kind<R>,
}

enum Kind<R: StreamRpc> {
    WebSocket(Box<WsStream<R>>),
    #[cfg(feature = "grpc")]
    Grpc {
        stream: crate::grpc::GrpcStream<R::Proto, R::ProtoResponse>,
        endpoint: String,
    },
}

/// A bidirectional call over the gateway's WebSocket.
struct WsStream<R: StreamRpc> {
    ws: WebSocketStream<TokioIo<Io>>,
    endpoint: String,
    /// The message size limit.
    limit: usize,
    /// How long a send may wait for the server to take it (a frozen server stops reading).
    send_timeout: Duration,
    /// The number of the last ping sent, and of the last pong received.
    pings: u64,
    pongs: u64,
    done: bool,
    _rpc: PhantomData<fn(R) -> R::Response>,
}

impl<R: StreamRpc> std::fmt::Debug for BidiStream<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BidiStream")
            .field("method", &R::PATH)
            .field("endpoint", &self.endpoint())
            .finish_non_exhaustive()
    }
}

impl<R: StreamRpc> BidiStream<R> {
    /// The endpoint this stream is connected to.
    pub fn endpoint(&self) -> &str {
        match &self.kind {
            Kind::WebSocket(ws) => &ws.endpoint,
            #[cfg(feature = "grpc")]
            Kind::Grpc { endpoint, .. } => endpoint,
        }
    }

    /// Sends one request on the stream; fails with [`Error::Timeout`] when the server has
    /// not taken it within the request timeout (it stopped reading).
    pub async fn send(&mut self, request: &R) -> Result<(), Error> {
        match &mut self.kind {
            Kind::WebSocket(ws) => ws.send(request).await,
            #[cfg(feature = "grpc")]
            Kind::Grpc { stream, .. } => stream.send(request.to_proto()).await,
        }
    }

    /// The next answer: `None` once the server closed the stream. An in-stream error is
    /// yielded as [`Error::Server`], a broken connection as [`Error::Io`], an undecodable
    /// message as [`Error::Decode`]; the stream ends after any of them.
    ///
    /// Cancel safe: a message is never lost by dropping the future before it resolves.
    pub async fn next(&mut self) -> Option<Result<R::Response, Error>> {
        match &mut self.kind {
            Kind::WebSocket(ws) => ws.next().await,
            #[cfg(feature = "grpc")]
            Kind::Grpc { stream, endpoint } => Some(stream.next().await?.and_then(|answer| {
                R::from_proto(answer).map_err(|source| Error::Decode {
                    endpoint: endpoint.clone(),
                    source,
                })
            })),
        }
    }

    /// Asks the other end of the connection for a sign of life: a WebSocket ping frame
    /// (the gateway's proxy answers it with a pong from its reading loop, whatever the
    /// stream carries). Returns the ping's number for [`ponged`](Self::ponged). Over gRPC
    /// nothing is sent (number 0): the connection is shared with the unary calls, so any
    /// call to the endpoint proves it alive.
    ///
    /// Fails like [`send`](Self::send) when the frame cannot be written in time.
    pub async fn ping(&mut self) -> Result<u64, Error> {
        match &mut self.kind {
            Kind::WebSocket(ws) => ws.ping().await,
            #[cfg(feature = "grpc")]
            Kind::Grpc { .. } => Ok(0),
        }
    }

    /// Whether the pong of ping number `ping` (or of a later one) has been received, as
    /// seen by [`next`](Self::next), which must be polled for pongs to be read. Always true
    /// for ping 0.
    pub fn ponged(&self, ping: u64) -> bool {
        match &self.kind {
            Kind::WebSocket(ws) => ws.pongs >= ping,
            #[cfg(feature = "grpc")]
            Kind::Grpc { .. } => true,
        }
    }

    /// Closes the stream politely (a WebSocket close, within a short time; over gRPC, the
    /// end of the requests).
    pub async fn close(self) {
        match self.kind {
            Kind::WebSocket(ws) => ws.close().await,
            #[cfg(feature = "grpc")]
            Kind::Grpc { .. } => {}
        }
    }

    /// A bidirectional call over the gateway's WebSocket `ws`, opened on `endpoint`.
    pub(crate) fn websocket(
        ws: WebSocketStream<TokioIo<Io>>,
        endpoint: String,
        limit: usize,
        send_timeout: Duration,
    ) -> Self {
        BidiStream {
            kind: Kind::WebSocket(Box::new(WsStream {
                ws,
                endpoint,
                limit,
                send_timeout,
                pings: 0,
                pongs: 0,
                done: false,
                _rpc: PhantomData,
            })),
        }
    }

    /// A bidirectional gRPC call.
    #[cfg(feature = "grpc")]
    pub(crate) fn grpc(stream: crate::grpc::GrpcStream<R::Proto, R::ProtoResponse>) -> Self {
        let endpoint = stream.endpoint().to_string();
        BidiStream {
            kind: Kind::Grpc { stream, endpoint },
        }
    }
}

impl<R: StreamRpc> WsStream<R> {
    async fn send(&mut self, request: &R) -> Result<(), Error> {
        let text = serde_json::to_string(request).map_err(Error::Encode)?;
        let endpoint = &self.endpoint;
        let limit = self.limit;
        match tokio::time::timeout(self.send_timeout, self.ws.send(Message::text(text))).await {
            Ok(sent) => sent.map_err(|e| stream_error(endpoint, limit, e)),
            Err(_) => {
                self.done = true;
                Err(Error::Timeout {
                    endpoint: endpoint.clone(),
                    after: self.send_timeout,
                    outcome_unknown: true,
                })
            }
        }
    }

    async fn ping(&mut self) -> Result<u64, Error> {
        let number = self.pings + 1;
        let endpoint = &self.endpoint;
        let limit = self.limit;
        let frame = Message::Ping(number.to_be_bytes().to_vec().into());
        match tokio::time::timeout(self.send_timeout, self.ws.send(frame)).await {
            Ok(sent) => sent.map_err(|e| stream_error(endpoint, limit, e))?,
            Err(_) => {
                self.done = true;
                return Err(Error::Timeout {
                    endpoint: endpoint.clone(),
                    after: self.send_timeout,
                    outcome_unknown: false,
                });
            }
        }
        self.pings = number;
        Ok(number)
    }

    async fn next(&mut self) -> Option<Result<R::Response, Error>> {
        while !self.done {
            let message = match self.ws.next().await {
                None => {
                    self.done = true;
                    return None;
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(stream_error(&self.endpoint, self.limit, e)));
                }
                Some(Ok(message)) => message,
            };
            let bytes = match &message {
                Message::Text(text) => text.as_bytes(),
                Message::Binary(bytes) => bytes,
                Message::Close(_) => {
                    self.done = true;
                    return None;
                }
                Message::Pong(payload) => {
                    // The answer to one of our pings (its number echoed); a pong we did
                    // not ask for proves nothing.
                    if let Ok(number) = <[u8; 8]>::try_from(&payload[..]) {
                        let number = u64::from_be_bytes(number);
                        if number <= self.pings {
                            self.pongs = self.pongs.max(number);
                        }
                    }
                    continue;
                }
                // Pings are answered by the WebSocket layer itself.
                _ => continue,
            };
            let decoded = match parse_message::<R::Response>(bytes) {
                Ok(StreamMessage::Result(m)) => Ok(m),
                Ok(StreamMessage::Error(status)) => Err(Error::Server {
                    endpoint: self.endpoint.clone(),
                    status,
                }),
                Err(source) => Err(Error::Decode {
                    endpoint: self.endpoint.clone(),
                    source,
                }),
            };
            self.done = decoded.is_err();
            return Some(decoded);
        }
        None
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.close(None)).await;
    }
}

fn stream_error(endpoint: &str, limit: usize, e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Capacity(_) => Error::ResponseTooLarge {
            endpoint: endpoint.to_string(),
            limit,
        },
        other => Error::Io {
            endpoint: endpoint.to_string(),
            outcome_unknown: false,
            source: Box::new(other),
        },
    }
}
