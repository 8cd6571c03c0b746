//! Serde types of etcd v3's gRPC-JSON gateway messages, and a decoder for its streamed
//! responses. This crate does no I/O.
//!
//! The gateway speaks JSON over HTTP/1.1: `bytes` fields are base64, 64-bit integers are
//! strings, enums are names, and default values are omitted. Every type here decodes with
//! defaults for absent fields and ignores unknown ones, and serializes the same way (default
//! fields left out), so request bodies stay small.
//!
//! Field names are the proto's: snake_case (`create_revision`) except where the proto itself
//! is camelCase or uppercase (`ID`, `TTL`, `grantedTTL`, `peerURLs`, `isLearner`, `dbSize`,
//! `memberID`, `permType`...); the Rust fields are snake_case with a `rename`.
//!
//! ```
//! use etcd_wire::{PutRequest, RangeResponse, Rpc};
//!
//! let put = PutRequest { key: "foo".into(), value: "bar".into(), ..Default::default() };
//! assert_eq!(serde_json::to_string(&put).unwrap(), r#"{"key":"Zm9v","value":"YmFy"}"#);
//! assert_eq!(PutRequest::PATH, "/kv/put");
//!
//! let body = br#"{"header":{"revision":"6"},"kvs":[{"key":"Zm9v","mod_revision":"3","version":"2","value":"YmF6"}],"count":"1"}"#;
//! let range: RangeResponse = etcd_wire::from_slice(body).unwrap();
//! assert_eq!(range.header.revision, 6);
//! assert_eq!(&range.kvs[0].value[..], b"baz");
//! assert_eq!(range.kvs[0].create_revision, 0); // absent: default
//! ```
//!
//! Streamed answers (watch, keep-alive, observe, snapshot) go through [`stream`]:
//!
//! ```
//! use etcd_wire::stream::{parse_message, StreamDecoder, StreamMessage};
//!
//! let mut decoder = StreamDecoder::new(1 << 20);
//! decoder.push(b"{\"result\":{\"created\":true}}\n").unwrap();
//! let line = decoder.next_message().unwrap().unwrap();
//! match parse_message::<serde_json::Value>(&line).unwrap() {
//!     StreamMessage::Result(v) => assert_eq!(v["created"], true),
//!     StreamMessage::Error(status) => panic!("server error: {status}"),
//! }
//! ```
//!
//! # Feature `grpc`
//!
//! With the `grpc` feature, `grpc::pb` holds the protobuf messages of etcd's native gRPC
//! API (prost types generated from etcd's own `.proto` files, committed: building needs no
//! `protoc`), and every type here converts to and from its protobuf counterpart
//! (module `grpc`). [`Rpc`] and [`StreamRpc`] gain `Proto`, `ProtoResponse`, `to_proto` and
//! `from_proto`, so a gRPC transport can send any request; their `GRPC_METHOD`
//! (`"/etcdserverpb.KV/Range"`) is there with or without the feature. Answers decoded from
//! protobuf are checked as the JSON decoder checks them. Without the feature, nothing of this
//! is compiled and prost is not a dependency.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

/// An empty message: `{}` on the wire.
macro_rules! empty_message {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(default)]
        pub struct $name {}
    };
}
pub(crate) use empty_message;

/// A response holding only a header.
macro_rules! header_response {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(default)]
        pub struct $name {
            /// Response header.
            #[serde(skip_serializing_if = "crate::codec::is_default")]
            pub header: crate::header::ResponseHeader,
        }
    };
}
pub(crate) use header_response;

pub mod codec;
mod fast;
#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub mod grpc;
pub mod status;
pub mod stream;

pub mod auth;
pub mod cluster;
pub mod election;
pub mod header;
pub mod kv;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub mod rpc;
pub mod txn;
pub mod version;
pub mod watch;

pub use auth::*;
pub use cluster::*;
pub use election::*;
pub use header::{Event, EventType, KeyValue, ResponseHeader};
pub use kv::*;
pub use lease::*;
pub use lock::*;
pub use maintenance::*;
pub use rpc::{Idempotency, ObserveRequest, Rpc, StreamRpc};
pub use status::{Code, Status};
pub use txn::*;
pub use version::VersionResponse;
pub use watch::*;

/// A gateway message could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The JSON is malformed or does not match the message type.
    #[error("invalid gateway JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A streamed message is larger than the decoder's limit.
    #[error("streamed message larger than the limit of {limit} bytes")]
    MessageTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// A streamed message has neither `result` nor `error`.
    #[error("streamed message has neither \"result\" nor \"error\"")]
    NotAMessage,
    /// A protobuf message breaks a rule that the JSON decoder enforces too: a key-value with
    /// an empty key, an event without its key-value.
    #[error("invalid protobuf {message}: {field} {problem}")]
    Invalid {
        /// The message type, e.g. `mvccpb.KeyValue`.
        message: &'static str,
        /// The field, e.g. `key`.
        field: &'static str,
        /// What is wrong with it, e.g. `is empty`.
        problem: &'static str,
    },
    /// A protobuf enum field holds a number this crate does not know; the JSON decoder
    /// rejects an unknown enum name or number the same way.
    #[error("unknown {enum_name} {value} in protobuf {message}.{field}")]
    UnknownEnum {
        /// The enum type, e.g. `SortOrder`.
        enum_name: &'static str,
        /// The number received.
        value: i32,
        /// The message type holding it.
        message: &'static str,
        /// The field holding it.
        field: &'static str,
    },
}

/// Decodes a unary response body.
///
/// Every `bytes` field of the message (keys, values...) is decoded into one shared
/// allocation: a range of 20,000 keys makes one allocation, not 40,000. The allocation is
/// freed when the last of those fields is dropped, so keeping one value of a large answer
/// keeps the whole answer's bytes: copy it (`Bytes::copy_from_slice`) to keep it alone.
pub fn from_slice<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    codec::with_arena(body.len(), || serde_json::from_slice(body)).map_err(DecodeError::Json)
}
