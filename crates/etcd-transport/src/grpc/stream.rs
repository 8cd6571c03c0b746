//! A streaming gRPC call on the endpoint's shared connection.

use super::codec::{frame, Call, Failure};
use super::conn::Conn;
use crate::error::Error;
use bytes::{Bytes, BytesMut};
use h2::client::ResponseFuture;
use h2::{RecvStream, SendStream};
use std::future::poll_fn;
use std::time::Duration;

enum State {
    Opening(ResponseFuture),
    Open(RecvStream),
    Done,
}

/// One streaming gRPC call: requests out through [`send`](Self::send), answers in through
/// [`next`](Self::next). Dropping it cancels the call (an HTTP/2 reset), not the connection.
pub(crate) struct GrpcStream<M, A> {
    body: Option<SendStream<Bytes>>,
    state: State,
    /// Answer bytes read but not yet decoded.
    buffer: BytesMut,
    endpoint: String,
    send_timeout: Duration,
    /// The message size limit.
    limit: usize,
    /// The connection the call is on.
    conn: Conn,
    _messages: std::marker::PhantomData<fn(M) -> A>,
}

impl<M: prost::Message, A: prost::Message + Default> GrpcStream<M, A> {
    /// A call on `conn` whose headers went out: its answer is `response`, its requests
    /// go to `body`.
    pub(super) fn new(
        conn: Conn,
        response: ResponseFuture,
        body: SendStream<Bytes>,
        endpoint: String,
        send_timeout: Duration,
        limit: usize,
    ) -> Self {
        GrpcStream {
            body: Some(body),
            state: State::Opening(response),
            buffer: BytesMut::new(),
            endpoint,
            send_timeout,
            limit,
            conn,
            _messages: std::marker::PhantomData,
        }
    }

    /// The endpoint the call is on.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn call(&self) -> Call<'_> {
        Call {
            endpoint: &self.endpoint,
            limit: self.limit,
        }
    }

    /// Ends the requests: the server sees the end of the request stream once it has
    /// read those sent.
    pub(crate) fn finish_requests(&mut self) {
        if let Some(mut body) = self.body.take() {
            let _ = body.send_data(Bytes::new(), true);
        }
    }

    /// Sends one request; fails with [`Error::Timeout`] when the server has not made room
    /// for it within the send timeout (it stopped reading).
    pub(crate) async fn send(&mut self, message: M) -> Result<(), Error> {
        let frame = frame(&message);
        let Some(body) = &mut self.body else {
            return Err(Error::Config(
                "this stream takes no further requests".into(),
            ));
        };
        // Room in the server's window first, so that a server that stopped reading is
        // noticed here, not by memory growing.
        body.reserve_capacity(frame.len());
        let room = async {
            while body.capacity() < frame.len() {
                match poll_fn(|cx| body.poll_capacity(cx)).await {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Err(h2::Error::from(h2::Reason::STREAM_CLOSED)),
                }
            }
            Ok(())
        };
        let sent = match tokio::time::timeout(self.send_timeout, room).await {
            Ok(Ok(())) => body.send_data(frame, false),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                return Err(Error::Timeout {
                    endpoint: self.endpoint.clone(),
                    after: self.send_timeout,
                    outcome_unknown: true,
                })
            }
        };
        match sent {
            Ok(()) => Ok(()),
            Err(e) => Err(self.call().broken(e, &self.conn).await),
        }
    }

    /// The next answer: `None` once the server ended the call with status OK; an error
    /// ends the stream. Cancel safe.
    pub(crate) async fn next(&mut self) -> Option<Result<A, Error>> {
        loop {
            match &mut self.state {
                State::Opening(response) => match response.await {
                    Ok(response) => match self.call().open(response) {
                        Ok(recv) => self.state = State::Open(recv),
                        Err(failure) => {
                            self.state = State::Done;
                            return Some(Err(self.call().failed(failure)));
                        }
                    },
                    Err(e) => {
                        self.state = State::Done;
                        return Some(Err(self.call().broken(e, &self.conn).await));
                    }
                },
                State::Open(recv) => {
                    let call = Call {
                        endpoint: &self.endpoint,
                        limit: self.limit,
                    };
                    let next = match call.message(recv, &mut self.buffer).await {
                        Ok(Some(message)) => {
                            return Some(A::decode(message).map_err(|e| call.invalid(e)))
                        }
                        Ok(None) => call.trailers(recv).await,
                        Err(failure) => Err(failure),
                    };
                    self.state = State::Done;
                    return match next {
                        Ok(()) => None,
                        Err(failure @ Failure::H2(_)) => {
                            Some(Err(self.call().broken(failure, &self.conn).await))
                        }
                        Err(failure) => Some(Err(self.call().failed(failure))),
                    };
                }
                State::Done => return None,
            }
        }
    }
}
