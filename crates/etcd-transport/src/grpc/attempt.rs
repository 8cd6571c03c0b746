//! One attempt to one endpoint over gRPC, of each kind the failover loop asks for: a
//! unary call, a stream's opening, a stream's one answer, the server's version.

use super::codec::{frame, not_http2, Call, Failure};
use super::conn::{Grpc, Metadata};
use super::stream::GrpcStream;
use crate::endpoints::Target;
use crate::error::Error;
use crate::route::{Answered, Attempt};
use crate::stream::MessageStream;
use bytes::BytesMut;
use etcd_wire::{Code, Rpc, StatusRequest, StreamRpc, VersionResponse};
use futures_util::StreamExt;
use std::time::Duration;

impl Grpc {
    /// One unary call to `endpoint`.
    async fn unary<M, A>(
        &self,
        endpoint: &Target,
        method: &'static str,
        message: M,
        metadata: &Metadata,
    ) -> Result<A, Error>
    where
        M: prost::Message,
        A: prost::Message + Default,
    {
        let (conn, response, mut body) = self
            .start(&endpoint.grpc, endpoint, method, metadata)
            .await?;
        let call = Call {
            endpoint: &endpoint.base,
            limit: self.max_message,
        };
        if let Err(e) = body.send_data(frame(&message), true) {
            Self::forget(&endpoint.grpc, conn.generation);
            return Err(call.broken(e, &conn).await);
        }
        let result = async {
            let mut recv = call.open(response.await?)?;
            let mut buffer = BytesMut::new();
            let answer = call.message(&mut recv, &mut buffer).await?;
            // The status trailers follow the one message.
            call.trailers(&mut recv).await?;
            answer.ok_or_else(|| {
                Failure::Status(etcd_wire::Status::new(
                    Code::Internal.as_i32(),
                    "the answer had no message",
                ))
            })
        };
        match result.await {
            Ok(answer) => A::decode(answer).map_err(|e| call.invalid(e)),
            Err(Failure::H2(e)) => {
                if e.is_io() || e.is_go_away() {
                    Self::forget(&endpoint.grpc, conn.generation);
                }
                Err(call.broken(e, &conn).await)
            }
            Err(failure) => Err(call.failed(failure)),
        }
    }

    /// Opens a streaming call on `endpoint` that first sends `first`; the request
    /// side stays open for [`GrpcStream::send`] until [`GrpcStream::finish_requests`].
    /// Returns once the call is on its way: answers (and the call's own errors) come from
    /// [`GrpcStream::next`], since etcd sends no headers before its first answer.
    async fn open<M, A>(
        &self,
        endpoint: &Target,
        method: &'static str,
        first: Option<M>,
        metadata: &Metadata,
        send_timeout: Duration,
    ) -> Result<GrpcStream<M, A>, Error>
    where
        M: prost::Message,
        A: prost::Message + Default,
    {
        let (conn, response, mut body) = self
            .start(&endpoint.grpc, endpoint, method, metadata)
            .await?;
        if let Some(first) = first {
            if let Err(e) = body.send_data(frame(&first), false) {
                return Err(Call {
                    endpoint: &endpoint.base,
                    limit: self.max_message,
                }
                .broken(e, &conn)
                .await);
            }
        }
        Ok(GrpcStream::new(
            conn,
            response,
            body,
            endpoint.base.clone(),
            send_timeout,
            self.max_message,
        ))
    }

    /// One attempt of a unary call, within the attempt's time limit. A timeout forgets
    /// the connection: a frozen server is not asked again on it.
    pub(crate) async fn attempt<R: Rpc>(
        &self,
        at: Attempt<'_>,
        request: &R,
    ) -> Result<Answered<R::Response>, Error> {
        let endpoint = &*at.endpoint;
        let metadata = Metadata::of(&at);
        let call = self.unary::<R::Proto, R::ProtoResponse>(
            endpoint,
            R::GRPC_METHOD,
            request.to_proto(),
            &metadata,
        );
        let answer = at.limit.run(&endpoint.base, true, call).await;
        if matches!(answer, Err(Error::Timeout { .. })) {
            Self::forget_current(&at.endpoint.grpc);
        }
        R::from_proto(answer?)
            .map(Ok)
            .map_err(|source| Error::Decode {
                endpoint: endpoint.base.clone(),
                source,
            })
    }

    /// One attempt at opening a streaming call with `first` queued, within the attempt's
    /// time limit.
    pub(crate) async fn open_on<R: StreamRpc>(
        &self,
        at: &Attempt<'_>,
        first: Option<&R>,
    ) -> Result<GrpcStream<R::Proto, R::ProtoResponse>, Error> {
        let metadata = Metadata::of(at);
        let open = self.open::<R::Proto, R::ProtoResponse>(
            &at.endpoint,
            R::GRPC_METHOD,
            first.map(R::to_proto),
            &metadata,
            self.step_timeout,
        );
        at.limit.run(&at.endpoint.base, false, open).await
    }

    /// One attempt at a streaming call that starts with `request`, its answers decoded
    /// as they come.
    pub(crate) async fn open_stream<R: StreamRpc>(
        &self,
        at: Attempt<'_>,
        request: &R,
    ) -> Result<MessageStream<R::Response>, Error> {
        let mut stream = self.open_on(&at, Some(request)).await?;
        if !R::BIDIRECTIONAL {
            stream.finish_requests();
        }
        let endpoint = stream.endpoint().to_string();
        let decode_endpoint = endpoint.clone();
        let messages = futures_util::stream::unfold(stream, |mut stream| async move {
            let next = stream.next().await?;
            Some((next, stream))
        })
        .map(move |answer| {
            answer.and_then(|a| {
                R::from_proto(a).map_err(|source| Error::Decode {
                    endpoint: decode_endpoint.clone(),
                    source,
                })
            })
        });
        Ok(MessageStream::grpc(Box::pin(messages), endpoint))
    }

    /// One attempt at the first answer of a stream opened with `request`, within the
    /// attempt's time limit.
    pub(crate) async fn stream_once<R: StreamRpc>(
        &self,
        at: Attempt<'_>,
        request: &R,
    ) -> Result<Answered<R::Response>, Error> {
        let mut stream = self.open_on(&at, Some(request)).await?;
        stream.finish_requests();
        let endpoint = &at.endpoint.base;
        let answer = async {
            stream.next().await.unwrap_or_else(|| {
                Err(Error::Io {
                    endpoint: endpoint.clone(),
                    outcome_unknown: false,
                    source: "the stream ended without an answer".into(),
                })
            })
        };
        let answer = at.limit.run(endpoint, true, answer).await?;
        Ok(R::from_proto(answer).map_err(|source| Error::Decode {
            endpoint: endpoint.clone(),
            source,
        }))
    }

    /// The version of `endpoint` from its Maintenance/Status (gRPC has no `/version`).
    pub(crate) async fn version(&self, endpoint: &Target) -> Result<VersionResponse, Error> {
        let request = StatusRequest::default();
        let metadata = Metadata::default();
        let call = self
            .unary::<<StatusRequest as Rpc>::Proto, <StatusRequest as Rpc>::ProtoResponse>(
                endpoint,
                <StatusRequest as Rpc>::GRPC_METHOD,
                request.to_proto(),
                &metadata,
            );
        let after = self.step_timeout;
        let not_etcd = |reason: String| Error::NotEtcd {
            endpoint: endpoint.base.clone(),
            reason,
        };
        let answer = match tokio::time::timeout(after, call).await {
            Err(_) => {
                Self::forget_current(&endpoint.grpc);
                return Err(Error::Timeout {
                    endpoint: endpoint.base.clone(),
                    after,
                    outcome_unknown: false,
                });
            }
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) if not_http2(&e) => {
                Self::forget_current(&endpoint.grpc);
                return Err(not_etcd(format!(
                    "it does not speak HTTP/2 ({}), as etcd's gRPC does; check the host and \
                     port (etcd's client port is usually 2379)",
                    std::error::Error::source(&e)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                )));
            }
            Ok(Err(Error::Http { status, .. })) => {
                return Err(not_etcd(format!(
                    "Maintenance/Status answered HTTP {status}, not gRPC; check the host and \
                     port (etcd's client port is usually 2379)"
                )))
            }
            Ok(Err(Error::Server { status, .. })) if status.grpc_code() == Code::Unimplemented => {
                return Err(not_etcd(format!(
                    "a gRPC server without etcd's Maintenance service ({}); check the host \
                     and port (etcd's client port is usually 2379)",
                    status.message
                )))
            }
            Ok(Err(e)) => return Err(e),
        };
        let status =
            <StatusRequest as Rpc>::from_proto(answer).map_err(|source| Error::Decode {
                endpoint: endpoint.base.clone(),
                source,
            })?;
        let version = VersionResponse {
            etcdserver: status.version,
            ..VersionResponse::default()
        };
        if version.server_version().is_none() {
            return Err(not_etcd(format!(
                "Maintenance/Status answered without a server version ({:?}); check the host \
                 and port (etcd's client port is usually 2379)",
                version.etcdserver
            )));
        }
        Ok(version)
    }
}
