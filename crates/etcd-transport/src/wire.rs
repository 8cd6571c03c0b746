//! The fork between the two protocols, in one place: [`Wire`], what one attempt to one
//! endpoint is made of. The failover loop ([`Transport`](crate::Transport)) calls it; the
//! protocols never see each other, nor the loop.

use crate::bidi::BidiStream;
use crate::config::{Protocol, TransportBuilder};
use crate::endpoints::Target;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::pool::Pool;
use crate::route::{Answered, Attempt};
use crate::stream::MessageStream;
use crate::tls;
use etcd_wire::{Rpc, StreamRpc, VersionResponse};
use http::HeaderValue;
use std::future::Future;
use std::time::Duration;

/// How a transport's attempts travel. One `match` per attempt; each arm is one protocol's
/// side of it.
pub(crate) enum Wire {
    /// etcd's gRPC-JSON gateway: HTTP/1.1 and JSON, WebSockets for bidirectional calls.
    Gateway(Gateway),
    /// Native gRPC: HTTP/2 and protobuf. The gateway's HTTP/1.1 side stays for
    /// `GET /version`, which a member with auth on answers to anyone.
    #[cfg(feature = "grpc")]
    Grpc(crate::grpc::Grpc, Gateway),
}

impl Wire {
    /// The wire of a transport (`any_https`: some endpoints over TLS).
    pub(crate) fn new(b: &TransportBuilder, any_https: bool) -> Result<Wire, Error> {
        let step_timeout = b.request_timeout.unwrap_or(Duration::from_secs(10));
        let connector = tls::dialer(
            b.connect_timeout,
            b.tcp_keepalive,
            b.tls.as_ref(),
            any_https,
            false,
        )?;
        let pool = Pool::new(connector, b.pool_idle_timeout);
        let gateway = Gateway::new(pool, b.max_response_len, step_timeout);
        Ok(match b.protocol {
            Protocol::Gateway => Wire::Gateway(gateway),
            #[cfg(feature = "grpc")]
            Protocol::Grpc => Wire::Grpc(
                crate::grpc::Grpc::new(
                    tls::dialer(
                        b.connect_timeout,
                        b.tcp_keepalive,
                        b.tls.as_ref(),
                        any_https,
                        true,
                    )?,
                    b.max_response_len,
                    step_timeout,
                    b.http2_keep_alive,
                ),
                gateway,
            ),
        })
    }

    /// The protocol this wire speaks.
    pub(crate) fn protocol(&self) -> Protocol {
        match self {
            Wire::Gateway(_) => Protocol::Gateway,
            #[cfg(feature = "grpc")]
            Wire::Grpc(..) => Protocol::Grpc,
        }
    }

    /// The gateway, for untyped calls: they name gateway paths and carry JSON, and have
    /// no gRPC form.
    pub(crate) fn json(&self, method: &str) -> Result<&Gateway, Error> {
        let _ = method;
        match self {
            Wire::Gateway(gateway) => Ok(gateway),
            #[cfg(feature = "grpc")]
            Wire::Grpc(..) => Err(Error::Config(format!(
                "{method}: untyped calls need the gateway protocol; over gRPC use a typed request (etcd_wire::Rpc)"
            ))),
        }
    }

    /// One attempt of a unary request.
    pub(crate) async fn unary<R: Rpc>(
        &self,
        at: Attempt<'_>,
        request: &R,
    ) -> Result<Answered<R::Response>, Error> {
        match self {
            Wire::Gateway(gateway) => gateway.unary(at, request).await,
            #[cfg(feature = "grpc")]
            Wire::Grpc(grpc, _) => grpc.attempt(at, request).await,
        }
    }

    /// One attempt of a streaming request that is answered once.
    pub(crate) async fn stream_once<R: StreamRpc>(
        &self,
        at: Attempt<'_>,
        request: &R,
    ) -> Result<Answered<R::Response>, Error> {
        match self {
            Wire::Gateway(gateway) => gateway.stream_once(at, request).await,
            #[cfg(feature = "grpc")]
            Wire::Grpc(grpc, _) => grpc.stream_once(at, request).await,
        }
    }

    /// One attempt at opening a streaming call that starts with `request`.
    pub(crate) async fn open_stream<R: StreamRpc>(
        &self,
        at: Attempt<'_>,
        request: &R,
    ) -> Result<MessageStream<R::Response>, Error> {
        match self {
            Wire::Gateway(gateway) => {
                let body = crate::gateway::encode(request)?;
                gateway.open_stream(at, body).await
            }
            #[cfg(feature = "grpc")]
            Wire::Grpc(grpc, _) => grpc.open_stream(at, request).await,
        }
    }

    /// One attempt at opening a bidirectional call. `token` is awaited only by a protocol
    /// that sends a token on a stream (gRPC; etcd 3.4 and 3.5 take none over the
    /// gateway's WebSocket).
    pub(crate) async fn open_bidi<R: StreamRpc>(
        &self,
        at: Attempt<'_>,
        token: impl Future<Output = Result<Option<HeaderValue>, Error>>,
    ) -> Result<BidiStream<R>, Error> {
        match self {
            Wire::Gateway(gateway) => {
                drop(token);
                gateway.open_websocket(at).await
            }
            #[cfg(feature = "grpc")]
            Wire::Grpc(grpc, _) => {
                let at = Attempt {
                    token: token.await?,
                    ..at
                };
                let stream = grpc.open_on::<R>(&at, None).await?;
                Ok(BidiStream::grpc(stream))
            }
        }
    }

    /// The server version of `endpoint`.
    pub(crate) async fn version(&self, endpoint: &Target) -> Result<VersionResponse, Error> {
        match self {
            Wire::Gateway(gateway) => gateway.version(endpoint).await,
            #[cfg(feature = "grpc")]
            Wire::Grpc(grpc, gateway) => match grpc.version(endpoint).await {
                // With auth on, etcd 3.4.42+, 3.5.28 to 3.5.31 and 3.6.9 to 3.6.11 answer
                // Maintenance/Status only to an admin (CVE-2026-33413): the member is there,
                // and `GET /version` on the same port (HTTP/1.1) tells its version to anyone.
                Err(e) if is_auth_refusal(&e) => {
                    tracing::debug!(endpoint = %endpoint.base, error = %e, "Maintenance/Status refused: the version from GET /version");
                    gateway.version(endpoint).await.map_err(|http| {
                        tracing::debug!(error = %http, "GET /version failed too");
                        e
                    })
                }
                other => other,
            },
        }
    }
}

/// The server refused a request for want of a token or of a permission: it is up.
#[cfg(feature = "grpc")]
fn is_auth_refusal(e: &Error) -> bool {
    e.is_missing_token()
        || e.is_invalid_token()
        || e.status()
            .is_some_and(|s| s.grpc_code() == etcd_wire::Code::PermissionDenied)
}
