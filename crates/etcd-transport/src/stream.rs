//! A streamed response as a `Stream` of decoded messages.

use crate::error::Error;
use crate::pool::Conn;
use etcd_wire::stream::{parse_message, StreamDecoder, StreamMessage};
use futures_core::Stream;
use http_body::Body as _;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// The messages of one streaming call, decoded as they arrive.
///
/// Yields `Ok(message)` for each `{"result": ...}`; an in-stream `{"error": ...}` is yielded as
/// [`Error::Server`] and ends the stream; a broken connection is yielded as [`Error::Io`] and
/// ends it. The stream ends (`None`) when the server closes the response.
///
/// Dropping the stream closes its connection, which cancels the call on the server (over
/// gRPC: resets its HTTP/2 stream; the connection stays).
pub struct MessageStream<T> {
    kind: Kind<T>,
}

enum Kind<T> {
    Json(JsonStream<T>),
    #[cfg(feature = "grpc")]
    Grpc {
        messages: Pin<Box<dyn Stream<Item = Result<T, Error>> + Send>>,
        endpoint: String,
    },
}

/// A streamed gateway answer: JSON messages, one per line.
struct JsonStream<T> {
    body: Incoming,
    /// The connection the stream arrived on, closed when the stream is dropped.
    _conn: Conn,
    decoder: StreamDecoder,
    endpoint: String,
    done: bool,
    _message: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for MessageStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageStream")
            .field("endpoint", &self.endpoint())
            .finish_non_exhaustive()
    }
}

impl<T> MessageStream<T> {
    pub(crate) fn new(
        body: Incoming,
        conn: Conn,
        endpoint: String,
        max_message_len: usize,
    ) -> Self {
        MessageStream {
            kind: Kind::Json(JsonStream {
                body,
                _conn: conn,
                decoder: StreamDecoder::new(max_message_len),
                endpoint,
                done: false,
                _message: PhantomData,
            }),
        }
    }

    /// The answers of a gRPC streaming call, decoded.
    #[cfg(feature = "grpc")]
    pub(crate) fn grpc(
        messages: Pin<Box<dyn Stream<Item = Result<T, Error>> + Send>>,
        endpoint: String,
    ) -> Self {
        MessageStream {
            kind: Kind::Grpc { messages, endpoint },
        }
    }

    /// The endpoint this stream is connected to.
    pub fn endpoint(&self) -> &str {
        match &self.kind {
            Kind::Json(s) => &s.endpoint,
            #[cfg(feature = "grpc")]
            Kind::Grpc { endpoint, .. } => endpoint,
        }
    }
}

impl<T: DeserializeOwned> Stream for MessageStream<T> {
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.get_mut().kind {
            Kind::Json(s) => s.poll_next(cx),
            #[cfg(feature = "grpc")]
            Kind::Grpc { messages, .. } => messages.as_mut().poll_next(cx),
        }
    }
}

impl<T: DeserializeOwned> JsonStream<T> {
    fn decode(&mut self, line: &[u8]) -> Result<T, Error> {
        match parse_message::<T>(line) {
            Ok(StreamMessage::Result(m)) => Ok(m),
            Ok(StreamMessage::Error(status)) => {
                self.done = true;
                Err(Error::Server {
                    endpoint: self.endpoint.clone(),
                    status,
                })
            }
            Err(source) => {
                self.done = true;
                Err(Error::Decode {
                    endpoint: self.endpoint.clone(),
                    source,
                })
            }
        }
    }

    fn fail_decode(&mut self, source: etcd_wire::DecodeError) -> Error {
        self.done = true;
        Error::Decode {
            endpoint: self.endpoint.clone(),
            source,
        }
    }
}

impl<T: DeserializeOwned> JsonStream<T> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Error>>> {
        let this = self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match this.decoder.next_message() {
                Ok(Some(line)) => return Poll::Ready(Some(this.decode(&line))),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Some(Err(this.fail_decode(e)))),
            }
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if let Err(e) = this.decoder.push(&data) {
                            return Poll::Ready(Some(Err(this.fail_decode(e))));
                        }
                    }
                }
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(Error::Io {
                        endpoint: this.endpoint.clone(),
                        outcome_unknown: false,
                        source: Box::new(e),
                    })));
                }
                None => {
                    this.done = true;
                    return match this.decoder.finish() {
                        Ok(Some(line)) => Poll::Ready(Some(this.decode(&line))),
                        Ok(None) => Poll::Ready(None),
                        Err(e) => Poll::Ready(Some(Err(this.fail_decode(e)))),
                    };
                }
            }
        }
    }
}
