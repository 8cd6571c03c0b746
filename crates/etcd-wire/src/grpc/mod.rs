//! etcd's native gRPC messages ([`pb`]) and conversions between them and the gateway types
//! (feature `grpc`).
//!
//! Every gateway type `T` converts both ways: `pb::X::from(&t)` and `T::try_from(x)`, where
//! decoding checks what the JSON decoder checks (a key-value needs a non-empty key, an
//! event needs its key-value, an enum needs a known number) and fails with a
//! [`DecodeError`](crate::DecodeError). `bytes` fields are [`Bytes`](bytes::Bytes) on both
//! sides and are never copied. [`ProtoMessage::Proto`] names the protobuf type of each.
//!
//! A gateway struct with one `Option` per oneof member ([`RequestOp`](crate::RequestOp),
//! [`ResponseOp`](crate::ResponseOp), [`WatchRequest`](crate::WatchRequest)) should have
//! exactly one set; if several are, the first one in the proto's order becomes the oneof and
//! the others are left out; if none is, the oneof is absent.
//!
//! A transport uses [`Rpc`](crate::Rpc)'s and [`StreamRpc`](crate::StreamRpc)'s
//! `GRPC_METHOD`, `to_proto` and `from_proto` rather than these directly.
//!
//! ```
//! use etcd_wire::grpc::pb::etcdserverpb;
//! use etcd_wire::{PutRequest, Rpc};
//! use prost::Message as _;
//!
//! let put = PutRequest { key: "foo".into(), value: "bar".into(), ..Default::default() };
//! let message: etcdserverpb::PutRequest = put.to_proto();
//! assert_eq!(message.encode_to_vec(), b"\x0a\x03foo\x12\x03bar");
//! assert_eq!(PutRequest::GRPC_METHOD, "/etcdserverpb.KV/Put");
//! ```

mod convert;
pub mod pb;

/// A gateway message type with a protobuf counterpart: `From<&Self> for Self::Proto` and
/// `TryFrom<Self::Proto> for Self` (with [`DecodeError`](crate::DecodeError)).
pub trait ProtoMessage: Sized {
    /// The protobuf message type.
    type Proto: prost::Message + Default + Send + Sync + 'static;
}
