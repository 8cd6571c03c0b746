//! The KV service: `kv/range`, `kv/put`, `kv/deleterange` and `kv/compaction` (`kv/txn` is in
//! [`txn`](crate::txn)).

use crate::codec;
use crate::header::{KeyValue, ResponseHeader};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

crate::wire_enum! {
    /// Order of the results of a range (`RangeRequest.SortOrder`).
    pub enum SortOrder {
        /// No sorting (the default): keys come in ascending key order.
        None = 0 => "NONE",
        /// Lowest target value first.
        Ascend = 1 => "ASCEND",
        /// Highest target value first.
        Descend = 2 => "DESCEND",
    }
}

crate::wire_enum! {
    /// Field a range is sorted by (`RangeRequest.SortTarget`).
    pub enum SortTarget {
        /// The key (the default).
        Key = 0 => "KEY",
        /// The key's version.
        Version = 1 => "VERSION",
        /// The key's create revision.
        Create = 2 => "CREATE",
        /// The key's mod revision.
        Mod = 3 => "MOD",
        /// The value.
        Value = 4 => "VALUE",
    }
}

/// Gets the keys in a range (`kv/range`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct RangeRequest {
    /// First key of the range; alone (no `range_end`), the only key looked up.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub key: Bytes,
    /// End of the range `[key, range_end)`: `"\0"` means all keys `>= key`, key plus one
    /// (e.g. `"ab"` for `"aa"`) means all keys with the prefix `key`; `key` and `range_end`
    /// both `"\0"` means all keys.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub range_end: Bytes,
    /// Maximum number of keys returned; 0 is no limit.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub limit: i64,
    /// Point in time of the read; 0 or less is the newest revision. A compacted revision
    /// fails with code 11 OutOfRange.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub revision: i64,
    /// Order of the results.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub sort_order: SortOrder,
    /// Field the results are sorted by.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub sort_target: SortTarget,
    /// Serve from the member's local data without consensus (faster, may be stale).
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub serializable: bool,
    /// Return only the keys, not the values.
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub keys_only: bool,
    /// Return only the count of keys in the range.
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub count_only: bool,
    /// Lower bound for returned keys' mod revisions.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub min_mod_revision: i64,
    /// Upper bound for returned keys' mod revisions.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub max_mod_revision: i64,
    /// Lower bound for returned keys' create revisions.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub min_create_revision: i64,
    /// Upper bound for returned keys' create revisions.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub max_create_revision: i64,
}

/// Answer to a [`RangeRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct RangeResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// The matching key-values; empty when only the count was asked for (absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kvs: Vec<KeyValue>,
    /// More keys remain in the range (the limit was reached).
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub more: bool,
    /// Number of keys in the whole range, ignoring limit and revision filters (absent when 0).
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub count: i64,
}

// `RangeResponse::from_slice`, the fast decoder of large ranges, is in `fast.rs`.

/// Puts a key (`kv/put`); increments the store's revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct PutRequest {
    /// The key.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub key: Bytes,
    /// The value.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub value: Bytes,
    /// Lease to attach to the key; 0 for none.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub lease: i64,
    /// Return the previous key-value.
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub prev_kv: bool,
    /// Keep the current value (fails with "etcdserver: key not found" if the key is absent).
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub ignore_value: bool,
    /// Keep the current lease (fails if the key is absent).
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub ignore_lease: bool,
}

/// Answer to a [`PutRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct PutResponse {
    /// Response header; its revision is the revision of the put.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// The previous key-value, if `prev_kv` was asked for and the key existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_kv: Option<KeyValue>,
}

/// Deletes the keys in a range (`kv/deleterange`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct DeleteRangeRequest {
    /// First key to delete.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub key: Bytes,
    /// End of the range `[key, range_end)`, as in [`RangeRequest::range_end`].
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub range_end: Bytes,
    /// Return the deleted key-values.
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub prev_kv: bool,
}

/// Answer to a [`DeleteRangeRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct DeleteRangeResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// Number of keys deleted (absent when 0).
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub deleted: i64,
    /// The deleted key-values, if `prev_kv` was asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prev_kvs: Vec<KeyValue>,
}

/// Compacts the event history up to a revision (`kv/compaction`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct CompactionRequest {
    /// Revisions older than this one are removed.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub revision: i64,
    /// Wait until the compaction is physically applied to the local database.
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub physical: bool,
}

crate::header_response! {
    /// Answer to a [`CompactionRequest`].
    CompactionResponse
}
