//! HTTP/1.1 transport to etcd's gRPC-JSON gateway.
//!
//! A [`Transport`] holds a keep-alive connection pool to a set of endpoints, detects each
//! endpoint's API prefix, fails over between endpoints with jittered backoff, renews auth
//! tokens, and turns the gateway's error bodies into a typed [`Error`] that keeps the gRPC
//! code and message. Streaming calls (watch, keep-alive, observe) return a
//! [`MessageStream`] of decoded messages.
//!
//! ```no_run
//! use etcd_transport::{Idempotency, Transport};
//! use serde_json::{json, Value};
//!
//! # async fn demo() -> Result<(), etcd_transport::Error> {
//! let transport = Transport::new("http://127.0.0.1:2379")?;
//! // "a2V5" is base64 for "key".
//! let answer: Value = transport
//!     .unary("kv/range", &json!({"key": "a2V5"}), Idempotency::Idempotent)
//!     .await?;
//! println!("revision {}", answer["header"]["revision"]);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bidi;
mod client;
mod config;
mod endpoint;
mod error;
mod pool;
mod stream;
mod tls;

pub use bidi::BidiStream;
pub use client::Transport;
pub use config::{RetryConfig, TlsConfig, TransportBuilder, DEFAULT_MAX_RESPONSE_LEN};
pub use error::{BoxError, Error};
pub use etcd_wire::Idempotency;
pub use stream::MessageStream;
