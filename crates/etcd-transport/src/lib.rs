//! The transport to etcd, in two protocols behind one API: etcd's gRPC-JSON gateway
//! (HTTP/1.1 and JSON, the default) and, with the cargo feature `grpc`, native gRPC (HTTP/2
//! and protobuf), chosen with [`TransportBuilder::protocol`] ([`Protocol`]).
//!
//! A [`Transport`] holds its connections to a set of endpoints (a keep-alive HTTP/1.1 pool
//! for the gateway, whose API prefix it detects per endpoint; one HTTP/2 connection per
//! endpoint for gRPC), fails over between endpoints with jittered backoff (one failover
//! loop for both protocols, which differ only in how one attempt travels), renews auth
//! tokens, and turns error answers into a typed [`Error`] that keeps the gRPC code and
//! message. [`Transport::call`] takes any [`etcd_wire::Rpc`]: the request type says where
//! it goes, whether a retry is safe and whether it needs a leader. Streams:
//! [`Transport::call_stream`] returns a [`MessageStream`] (one POST over the gateway, one
//! HTTP/2 stream over gRPC); [`Transport::open_bidi`] a [`BidiStream`] (the gateway's
//! WebSocket, or a bidirectional gRPC stream), carrying any number of watches or
//! keep-alives.
//!
//! ```no_run
//! use etcd_transport::Transport;
//! use etcd_wire::RangeRequest;
//!
//! # async fn demo() -> Result<(), etcd_transport::Error> {
//! let transport = Transport::new("http://127.0.0.1:2379")?;
//! let answer = transport
//!     .call(&RangeRequest {
//!         key: "config/mode".into(),
//!         ..RangeRequest::default()
//!     })
//!     .await?;
//! println!("revision {}, {} keys", answer.header.revision, answer.kvs.len());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod backoff;
mod bidi;
mod config;
mod endpoint;
mod endpoints;
mod error;
mod gateway;
#[cfg(feature = "grpc")]
mod grpc;
mod pool;
mod route;
#[cfg(feature = "srv")]
mod srv;
mod stream;
mod tls;
mod transport;
mod wire;

pub use backoff::Backoff;
pub use bidi::BidiStream;
pub use config::{
    Protocol, RetryConfig, TlsConfig, TransportBuilder, DEFAULT_DEADLINE, DEFAULT_MAX_RESPONSE_LEN,
    DEFAULT_TCP_KEEPALIVE,
};
pub use endpoint::redact_endpoint;
pub use error::{BoxError, Error};
pub use etcd_wire::Idempotency;
#[cfg(feature = "srv")]
#[cfg_attr(docsrs, doc(cfg(feature = "srv")))]
pub use srv::SrvDiscovery;
pub use stream::MessageStream;
pub use transport::Transport;
