//! The Watch service (`watch`, a streamed response of [`WatchResponse`]s).
//!
//! Through the gateway the request body is a sequence of [`WatchRequest`] objects sent at
//! once; the watch stays open after the body ends, and cancelling means closing the
//! connection.

use crate::codec;
use crate::header::{Event, ResponseHeader};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One message of the watch request stream: set exactly one field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchRequest {
    /// Create a watcher.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_request: Option<WatchCreateRequest>,
    /// Cancel a watcher.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_request: Option<WatchCancelRequest>,
    /// Ask for a progress notification (etcd 3.4+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_request: Option<WatchProgressRequest>,
}

crate::wire_enum! {
    /// Events a watcher filters out on the server (`WatchCreateRequest.FilterType`).
    pub enum FilterType {
        /// Filter out PUT events.
        NoPut = 0 => "NOPUT",
        /// Filter out DELETE events.
        NoDelete = 1 => "NODELETE",
    }
}

/// Creates a watcher on a key or range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchCreateRequest {
    /// The key to watch.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub key: Bytes,
    /// End of the range `[key, range_end)` to watch (see
    /// [`RangeRequest::range_end`](crate::kv::RangeRequest::range_end)).
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub range_end: Bytes,
    /// Revision to watch from (inclusive); 0 is "now".
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub start_revision: i64,
    /// Ask the server to send empty progress responses when there are no recent events.
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub progress_notify: bool,
    /// Events to filter out on the server.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FilterType>,
    /// Include the previous key-value in each event.
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub prev_kv: bool,
    /// ID to give the watcher, if non-zero (etcd 3.4+); an ID in use on the stream is an error.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub watch_id: i64,
    /// Allow the server to split a large revision over several responses (etcd 3.4+).
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub fragment: bool,
}

/// Cancels a watcher on the same stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchCancelRequest {
    /// ID of the watcher to cancel.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub watch_id: i64,
}

crate::empty_message! {
    /// Asks for a progress notification on the stream as soon as possible (etcd 3.4+); it
    /// arrives with `watch_id` -1 and the current revision in the header.
    WatchProgressRequest
}

/// One message of the watch response stream.
///
/// Seen from etcd 3.4 and 3.5: the first message of a watcher has `created: true`; a
/// watcher from a compacted revision then gets `canceled: true` with `compact_revision` (and
/// a header without `revision`), and the stream stays open; a progress notification has
/// `watch_id` -1; the first watcher of a stream has `watch_id` 0, so it is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchResponse {
    /// Response header; for a progress notification, its revision is the progress.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// ID of the watcher this message is for.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub watch_id: i64,
    /// Answer to a create request.
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub created: bool,
    /// The watcher was cancelled (on request, compaction, or error); no more events follow.
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub canceled: bool,
    /// Set when the watcher's start revision was compacted: the oldest revision available.
    /// Do not re-watch from the same start revision.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub compact_revision: i64,
    /// Why the watcher was cancelled (etcd 3.4+).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cancel_reason: String,
    /// More messages follow for the same revision (etcd 3.4+, `fragment` watches).
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub fragment: bool,
    /// The events, in revision order; several can share a revision.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}
