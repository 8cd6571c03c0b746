//! HTTP/1.1 transport to etcd's gRPC-JSON gateway.
//!
//! A [`Transport`] holds a keep-alive connection pool to a set of endpoints, detects each
//! endpoint's API prefix, fails over between endpoints with jittered backoff, renews auth
//! tokens, and turns the gateway's error bodies into a typed [`Error`] that keeps the gRPC
//! code and message. [`Transport::call`] takes any [`etcd_wire::Rpc`]: the request type
//! says where it goes, whether a retry is safe and whether it needs a leader. Streams:
//! [`Transport::call_stream`] returns a [`MessageStream`] over one POST;
//! [`Transport::open_bidi`] a [`BidiStream`] over the gateway's WebSocket, carrying any
//! number of watches or keep-alives.
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

mod bidi;
mod client;
mod config;
mod endpoint;
mod error;
#[cfg(feature = "grpc")]
mod grpc;
mod pool;
mod stream;
mod tls;

pub use bidi::BidiStream;
pub use client::Transport;
pub use config::{
    Protocol, RetryConfig, TlsConfig, TransportBuilder, DEFAULT_DEADLINE, DEFAULT_MAX_RESPONSE_LEN,
};
pub use endpoint::redact_endpoint;
pub use error::{BoxError, Error};
pub use etcd_wire::Idempotency;
pub use stream::MessageStream;
