//! Serde types of etcd v3's gRPC-JSON gateway messages, and a decoder for its streamed
//! responses. This crate does no I/O.
//!
//! The gateway speaks JSON over HTTP/1.1: `bytes` fields are base64, 64-bit integers are
//! strings, enums are names, and default values are omitted. Every type here decodes with
//! defaults for absent fields and ignores unknown ones.
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
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
pub mod status;
pub mod stream;

pub use status::{Code, Status};

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
}

/// Decodes a unary response body.
pub fn from_slice<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(body).map_err(DecodeError::Json)
}
