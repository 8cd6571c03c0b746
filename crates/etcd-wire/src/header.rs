//! Types shared by many messages: the response header (`etcdserverpb.ResponseHeader`), and
//! `mvccpb`'s `KeyValue` and `Event`.

use crate::codec;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Header of every response: which cluster and member answered, at which revision and term.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ResponseHeader {
    /// ID of the cluster which sent the response.
    #[serde(with = "codec::u64_str", skip_serializing_if = "codec::is_default")]
    pub cluster_id: u64,
    /// ID of the member which sent the response.
    #[serde(with = "codec::u64_str", skip_serializing_if = "codec::is_default")]
    pub member_id: u64,
    /// Key-value store revision when the request was applied; 0 (absent) for calls that do
    /// not touch the key-value store. For watch progress responses, all future events on the
    /// stream have a higher revision.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub revision: i64,
    /// Raft term when the request was applied.
    #[serde(with = "codec::u64_str", skip_serializing_if = "codec::is_default")]
    pub raft_term: u64,
}

/// A key with its value and metadata (`mvccpb.KeyValue`).
///
/// Decoding requires a non-empty key: etcd never stores an empty one, and a key-value
/// without a key (`{}`) would let a small hostile answer cost far more memory decoded than
/// its size (each entry a whole struct).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyValue {
    /// The key. An empty key is not allowed.
    #[serde(
        serialize_with = "codec::b64::serialize",
        deserialize_with = "nonempty_key",
        skip_serializing_if = "Bytes::is_empty"
    )]
    pub key: Bytes,
    /// Revision of the last creation of this key.
    #[serde(
        default,
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub create_revision: i64,
    /// Revision of the last modification of this key.
    #[serde(
        default,
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub mod_revision: i64,
    /// Version of the key: a deletion resets it to zero, any modification increases it.
    #[serde(
        default,
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub version: i64,
    /// The value.
    #[serde(default, with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub value: Bytes,
    /// ID of the lease attached to the key; 0 for none.
    #[serde(
        default,
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub lease: i64,
}

/// A key that must be there and not be empty.
fn nonempty_key<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
    let key = codec::b64::deserialize(d)?;
    if key.is_empty() {
        return Err(serde::de::Error::custom("a key-value with an empty key"));
    }
    Ok(key)
}

crate::wire_enum! {
    /// Kind of a watch event (`mvccpb.Event.EventType`).
    pub enum EventType {
        /// New data was stored to the key. Absent on the wire: it is the default.
        Put = 0 => "PUT",
        /// The key was deleted (or expired).
        Delete = 1 => "DELETE",
    }
}

/// A change to one key (`mvccpb.Event`). Decoding requires its key-value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Event {
    /// PUT or DELETE.
    #[serde(default, skip_serializing_if = "codec::is_default")]
    pub r#type: EventType,
    /// The key-value after a PUT (`version` 1 means the key was created); for a DELETE, the
    /// key with `mod_revision` set to the revision of the deletion.
    pub kv: KeyValue,
    /// The key-value before the event, when the watch asked for it (`prev_kv`) and it was not
    /// compacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_kv: Option<KeyValue>,
}
