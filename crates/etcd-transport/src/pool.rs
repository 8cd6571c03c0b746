//! The connection pool: idle HTTP/1.1 connections per endpoint, on hyper's low-level
//! client connection API.
//!
//! A request takes an idle connection of its endpoint (the most recently used first) or
//! opens one, and gives it back once the whole answer has been read; a streaming call keeps
//! its connection and never gives it back. Nothing is spawned per request: only one task per
//! connection, which drives it. (hyper-util's pooled client spawned a task per HTTP/1
//! request to wait for the connection to become idle again, a visible part of a request's
//! CPU cost on small machines.)

use crate::endpoint::Endpoint;
use crate::tls::{Dialer, Io};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a request could not be exchanged.
pub(crate) enum SendError {
    /// No connection could be opened: the request never left.
    Connect(crate::BoxError),
    /// The request was provably not sent (the connection closed before it was written).
    NotSent(hyper::Error),
    /// The connection failed after the request may have been written.
    Io(hyper::Error),
}

/// A connection taken from the pool, to be given back with [`Pool::give_back`] once its
/// answer has been read whole. Dropping it instead closes it once the exchange in flight
/// (if any) ends.
pub(crate) struct Conn {
    send: SendRequest<Full<Bytes>>,
}

/// The idle connections of one endpoint, the most recently used last (kept by the
/// endpoint, so that they go with it).
#[derive(Default)]
pub(crate) struct IdleConns(Mutex<Vec<Idle>>);

struct Idle {
    send: SendRequest<Full<Bytes>>,
    since: Instant,
}

pub(crate) struct Pool {
    dialer: Dialer,
    idle_timeout: Duration,
}

impl Pool {
    /// A pool that opens connections with `dialer` and closes those idle longer than
    /// `idle_timeout`. The idle connections themselves are kept by their endpoints.
    pub(crate) fn new(dialer: Dialer, idle_timeout: Duration) -> Pool {
        Pool {
            dialer,
            idle_timeout,
        }
    }

    /// Sends `request` to `target`, whose idle connections are `idle`, and returns the
    /// answer's head with the connection it arrived on.
    ///
    /// A reused connection that the server closed while it was idle is detected by hyper
    /// before the request is written; the request then goes out on a fresh connection.
    pub(crate) async fn send(
        &self,
        idle: &IdleConns,
        target: &Endpoint,
        mut request: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Conn), SendError> {
        loop {
            let (mut conn, reused) = match self.take_idle(idle).await {
                Some(conn) => (conn, true),
                // Boxed: connecting (TLS included) is rare and its future large.
                None => (Box::pin(self.connect(target)).await?, false),
            };
            match conn.send.try_send_request(request).await {
                Ok(response) => return Ok((response, conn)),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => request = unsent,
                    Some(_) => return Err(SendError::NotSent(e.into_error())),
                    None => return Err(SendError::Io(e.into_error())),
                },
            }
        }
    }

    /// Gives a connection back after its answer was read whole.
    pub(crate) fn give_back(&self, idle: &IdleConns, conn: Conn) {
        if conn.send.is_closed() {
            return;
        }
        let mut idle = match idle.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        idle.push(Idle {
            send: conn.send,
            since: Instant::now(),
        });
    }

    /// The most recently used connection of `idle` that is still open, once it is ready
    /// for a request.
    async fn take_idle(&self, idle: &IdleConns) -> Option<Conn> {
        loop {
            let candidate = {
                let mut idle = match idle.0.lock() {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                };
                // Connections idle for too long are dropped (closed), oldest first.
                let now = Instant::now();
                let expired = idle
                    .iter()
                    .take_while(|c| now.duration_since(c.since) > self.idle_timeout)
                    .count();
                idle.drain(..expired);
                idle.pop()
            }?;
            let mut send = candidate.send;
            if send.is_closed() {
                continue;
            }
            // Ready at once unless the connection's task has not yet seen the end of the
            // previous answer; an error means the connection closed meanwhile.
            if send.ready().await.is_ok() {
                return Some(Conn { send });
            }
        }
    }

    /// Opens a connection to `target` (TCP, and TLS for `https://`; or its unix socket),
    /// outside the pool: for a WebSocket.
    pub(crate) async fn connect_io(&self, target: &Endpoint) -> Result<Io, crate::BoxError> {
        self.dialer.dial(target).await
    }

    /// Opens a connection to `target` and spawns the task that drives it.
    async fn connect(&self, target: &Endpoint) -> Result<Conn, SendError> {
        let io = self.connect_io(target).await.map_err(SendError::Connect)?;
        let (send, connection) = http1::handshake(io)
            .await
            .map_err(|e| SendError::Connect(Box::new(e)))?;
        tokio::spawn(async move {
            // Errors end the connection; the request that was on it reports them.
            let _ = connection.await;
        });
        Ok(Conn { send })
    }
}
