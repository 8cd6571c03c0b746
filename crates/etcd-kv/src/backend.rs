//! The seam between the client API and whatever answers it: each backend is one arm here.
//!
//! The API modules (kv, txn, lease, watch...) name request types ([`Rpc`], [`StreamRpc`])
//! and call these methods; which bytes go where is the arm's business. Two arms:
//! - etcd-transport's [`Transport`], the only one in a build: it speaks the gateway
//!   (HTTP/1.1 + JSON, WebSocket) or, with the `grpc` feature, native gRPC (HTTP/2 +
//!   protobuf) behind the same methods, so that failover, deadlines and auth are one
//!   implementation for both (the protocol fork lives inside it, not here);
//! - in unit tests only, `script::Script` (`backend/script.rs`): streams and calls
//!   answered by the test itself, which is how the watch and keep-alive hubs are tested
//!   without an etcd. The arm does not exist outside `cfg(test)`, so production matches
//!   stay single-armed.

use crate::error::{Error, Result};
use etcd_transport::{BidiStream, MessageStream, Transport};
use etcd_wire::{Rpc, StreamRpc};
use futures_util::StreamExt;
use std::time::Duration;

#[cfg(test)]
pub(crate) mod script;

/// How a client reaches etcd.
#[derive(Clone)]
pub(crate) enum Backend {
    /// etcd-transport: the gateway, or native gRPC.
    Transport(Transport),
    /// Scripted by a unit test (see [`script`]).
    #[cfg(test)]
    Script(script::Script),
}

/// The answers of a streaming call with one request (observe, snapshot; watches and
/// keep-alives in the fallback mode).
pub(crate) enum ServerStream<T> {
    Transport(MessageStream<T>),
    #[cfg(test)]
    Script(script::Stream<T>),
}

/// A bidirectional streaming call (watch, keep-alive) carrying many requests.
pub(crate) enum BidiConn<R: StreamRpc> {
    Transport(BidiStream<R>),
    #[cfg(test)]
    Script(script::Stream<R::Response>),
}

impl Backend {
    /// Sends a request and decodes its answer, within `deadline` (`None`: the default).
    pub(crate) async fn call<R: Rpc>(
        &self,
        request: &R,
        deadline: Option<Duration>,
    ) -> Result<R::Response> {
        match self {
            Backend::Transport(t) => match deadline {
                None => t.call(request).await,
                Some(d) => t.call_within(request, Some(d)).await,
            }
            .map_err(Error::from_transport),
            #[cfg(test)]
            Backend::Script(s) => {
                let bytes = s.call_once(R::PATH, request, deadline).await?;
                R::decode(&bytes).map_err(|source| {
                    Error::from_transport(etcd_transport::Error::Decode {
                        endpoint: s.current_endpoint(),
                        source,
                    })
                })
            }
        }
    }

    /// The one answer of a streaming method that answers once per request (a keep-alive),
    /// within `deadline` (`None`: the default).
    pub(crate) async fn call_stream_once<R: StreamRpc>(
        &self,
        request: &R,
        deadline: Option<Duration>,
    ) -> Result<R::Response> {
        match self {
            Backend::Transport(t) => match deadline {
                None => t.call_stream_once(request).await,
                Some(d) => t.call_stream_once_within(request, Some(d)).await,
            }
            .map_err(Error::from_transport),
            #[cfg(test)]
            Backend::Script(s) => {
                let bytes = s.call_once(R::PATH, request, deadline).await?;
                script::decode(&s.current_endpoint(), &bytes)
            }
        }
    }

    /// Opens a streaming call with one request.
    pub(crate) async fn call_stream<R: StreamRpc>(
        &self,
        request: &R,
    ) -> Result<ServerStream<R::Response>> {
        match self {
            Backend::Transport(t) => t
                .call_stream(request)
                .await
                .map(ServerStream::Transport)
                .map_err(Error::from_transport),
            #[cfg(test)]
            Backend::Script(s) => match s.open(R::PATH, Some(request))? {
                Some(stream) => Ok(ServerStream::Script(stream)),
                None => Err(Error::Unsupported(
                    "the script refused a one-request stream; queue Open::Refuse only before a bidirectional one".into(),
                )),
            },
        }
    }

    /// Opens a bidirectional call; `Ok(None)` where this backend cannot here (the gateway
    /// refused the WebSocket upgrade, or auth is on and the server takes no token over it):
    /// the caller falls back to one [`call_stream`](Self::call_stream) per stream.
    pub(crate) async fn open_bidi<R: StreamRpc>(&self) -> Result<Option<BidiConn<R>>> {
        match self {
            Backend::Transport(t) => {
                if t.uses_auth() && t.protocol() == etcd_transport::Protocol::Gateway {
                    // etcd 3.4 and 3.5 refuse the token the WebSocket proxy forwards
                    // ("Bearer <token>"): a watch would be cancelled, permission denied.
                    tracing::info!(
                        method = R::PATH,
                        "auth is on: each stream uses its own POST (etcd takes no token over the gateway's WebSocket)"
                    );
                    return Ok(None);
                }
                match t.open_bidi::<R>().await {
                    Ok(stream) => Ok(Some(BidiConn::Transport(stream))),
                    Err(e @ etcd_transport::Error::UpgradeRefused { .. }) => {
                        tracing::info!(method = R::PATH, error = %e, "no WebSocket: each stream uses its own POST");
                        Ok(None)
                    }
                    Err(e) => Err(Error::from_transport(e)),
                }
            }
            #[cfg(test)]
            Backend::Script(s) => Ok(s.open(R::PATH, None::<&R>)?.map(BidiConn::Script)),
        }
    }

    /// The endpoint URLs, in configured order.
    pub(crate) fn endpoints(&self) -> Vec<String> {
        match self {
            Backend::Transport(t) => t.endpoints(),
            #[cfg(test)]
            Backend::Script(s) => s.endpoints(),
        }
    }

    /// The endpoint the next request goes to first.
    pub(crate) fn current_endpoint(&self) -> String {
        match self {
            Backend::Transport(t) => t.current_endpoint(),
            #[cfg(test)]
            Backend::Script(s) => s.current_endpoint(),
        }
    }

    /// The endpoint writes start at, when a leader is known (see
    /// [`Transport::leader_hint`]).
    pub(crate) fn leader_hint(&self) -> Option<String> {
        match self {
            Backend::Transport(t) => t.leader_hint(),
            #[cfg(test)]
            Backend::Script(_) => None,
        }
    }

    /// Replaces the endpoint list (see [`Transport::set_endpoints`]).
    pub(crate) fn set_endpoints(&self, urls: Vec<String>) -> Result<()> {
        match self {
            Backend::Transport(t) => t.set_endpoints(urls).map_err(Error::from_transport),
            #[cfg(test)]
            Backend::Script(_) => Err(Error::Unsupported(
                "the scripted backend has a fixed endpoint list".into(),
            )),
        }
    }

    /// Makes the next requests start after `endpoint` (a stream from it failed).
    pub(crate) fn demote(&self, endpoint: &str) {
        match self {
            Backend::Transport(t) => t.demote(endpoint),
            #[cfg(test)]
            Backend::Script(s) => s.demote(endpoint),
        }
    }

    /// The server version of the first endpoint that answers.
    pub(crate) async fn server_version(&self) -> Result<String> {
        match self {
            Backend::Transport(t) => t.server_version().await.map_err(Error::from_transport),
            #[cfg(test)]
            Backend::Script(s) => s.server_version(),
        }
    }

    /// Whether `endpoint` alone answers within `timeout` and has a leader.
    pub(crate) async fn check_leader(&self, endpoint: &str, timeout: Duration) -> Result<()> {
        match self {
            Backend::Transport(t) => t
                .check_leader(endpoint, timeout)
                .await
                .map_err(Error::from_transport),
            #[cfg(test)]
            Backend::Script(s) => s.check_leader(endpoint, timeout).await,
        }
    }

    /// Renews the auth token (when the client has credentials), asking `endpoint` first:
    /// the member whose answer showed the token stale (it answers; the preferred endpoint
    /// may not).
    pub(crate) async fn renew_token(&self, endpoint: &str) -> Result<()> {
        match self {
            Backend::Transport(t) => t
                .renew_token_at(endpoint)
                .await
                .map_err(Error::from_transport),
            #[cfg(test)]
            Backend::Script(s) => s.renew_token(endpoint),
        }
    }

    /// Whether the client authenticates.
    pub(crate) fn uses_auth(&self) -> bool {
        match self {
            Backend::Transport(t) => t.uses_auth(),
            #[cfg(test)]
            Backend::Script(s) => s.uses_auth(),
        }
    }

    /// The deadline of every call, retries included (`None`: none).
    pub(crate) fn deadline(&self) -> Option<Duration> {
        match self {
            Backend::Transport(t) => t.deadline(),
            #[cfg(test)]
            Backend::Script(_) => None,
        }
    }

    /// How long one attempt of a request may take.
    pub(crate) fn request_timeout(&self) -> Duration {
        match self {
            Backend::Transport(t) => t.request_timeout(),
            #[cfg(test)]
            Backend::Script(s) => s.request_timeout(),
        }
    }
}

impl<T: serde::de::DeserializeOwned> ServerStream<T> {
    /// The endpoint the stream is connected to.
    pub(crate) fn endpoint(&self) -> &str {
        match self {
            ServerStream::Transport(s) => s.endpoint(),
            #[cfg(test)]
            ServerStream::Script(s) => s.endpoint(),
        }
    }

    /// The next answer; `None` once the server ended the stream. Cancel safe.
    pub(crate) async fn next(&mut self) -> Option<Result<T>> {
        match self {
            ServerStream::Transport(s) => s.next().await.map(|r| r.map_err(Error::from_transport)),
            #[cfg(test)]
            ServerStream::Script(s) => s.next().await,
        }
    }
}

impl<R: StreamRpc> BidiConn<R> {
    /// The endpoint the stream is connected to.
    pub(crate) fn endpoint(&self) -> &str {
        match self {
            BidiConn::Transport(s) => s.endpoint(),
            #[cfg(test)]
            BidiConn::Script(s) => s.endpoint(),
        }
    }

    /// Sends one request.
    pub(crate) async fn send(&mut self, request: &R) -> Result<()> {
        match self {
            BidiConn::Transport(s) => s.send(request).await.map_err(Error::from_transport),
            #[cfg(test)]
            BidiConn::Script(s) => s.send(request),
        }
    }

    /// The next answer; `None` once the server ended the stream. Cancel safe.
    pub(crate) async fn next(&mut self) -> Option<Result<R::Response>> {
        match self {
            BidiConn::Transport(s) => s.next().await.map(|r| r.map_err(Error::from_transport)),
            #[cfg(test)]
            BidiConn::Script(s) => s.next().await,
        }
    }

    /// Sends a transport-level ping on the stream's connection (see
    /// `BidiStream::ping`); its number for [`ponged`](Self::ponged).
    pub(crate) async fn ping(&mut self) -> Result<u64> {
        match self {
            BidiConn::Transport(s) => s.ping().await.map_err(Error::from_transport),
            #[cfg(test)]
            BidiConn::Script(s) => s.ping(),
        }
    }

    /// Whether ping number `ping` has been answered (read by [`next`](Self::next)).
    pub(crate) fn ponged(&self, ping: u64) -> bool {
        match self {
            BidiConn::Transport(s) => s.ponged(ping),
            #[cfg(test)]
            BidiConn::Script(s) => s.ponged(ping),
        }
    }

    /// Closes the stream politely.
    pub(crate) async fn close(self) {
        match self {
            BidiConn::Transport(s) => s.close().await,
            #[cfg(test)]
            BidiConn::Script(s) => drop(s),
        }
    }
}
