//! The Maintenance service: `maintenance/status`, `maintenance/alarm`,
//! `maintenance/defragment`, `maintenance/hash`, `maintenance/hashkv` (3.5.10+: on 3.4 and
//! 3.5.0 to 3.5.9 the gateway routes HashKV to `maintenance/hash`, which answers Hash, so
//! HashKV is not reachable there), `maintenance/snapshot` (streamed), `maintenance/transfer-leadership`
//! and `maintenance/downgrade` (3.5+).
//!
//! Field names here are the proto's camelCase ones: `dbSize`, `raftIndex`, `memberID`,
//! `targetID`... Answers of alarm, defragment and transfer-leadership come without a header
//! on 3.4 (alarm has one on 3.5).

use crate::codec;
use crate::header::ResponseHeader;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

crate::empty_message! {
    /// Asks for the status of the member answering (`maintenance/status`).
    StatusRequest
}

/// Answer to a [`StatusRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// Server version of the member, e.g. `"3.5.1"`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Size of the backend database physically allocated, in bytes.
    #[serde(
        rename = "dbSize",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub db_size: i64,
    /// ID of the member this member believes is leader.
    #[serde(with = "codec::u64_str", skip_serializing_if = "codec::is_default")]
    pub leader: u64,
    /// Current raft committed index.
    #[serde(
        rename = "raftIndex",
        with = "codec::u64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub raft_index: u64,
    /// Current raft term.
    #[serde(
        rename = "raftTerm",
        with = "codec::u64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub raft_term: u64,
    /// Current raft applied index (etcd 3.4+).
    #[serde(
        rename = "raftAppliedIndex",
        with = "codec::u64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub raft_applied_index: u64,
    /// Alarm and health messages (etcd 3.4+).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Size of the backend database logically in use, in bytes (etcd 3.4+).
    #[serde(
        rename = "dbSizeInUse",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub db_size_in_use: i64,
    /// The member is a raft learner (etcd 3.4+).
    #[serde(
        rename = "isLearner",
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub is_learner: bool,
    /// Version of the database file (etcd 3.6+).
    #[serde(rename = "storageVersion", skip_serializing_if = "String::is_empty")]
    pub storage_version: String,
    /// Configured storage quota in bytes (etcd 3.6+).
    #[serde(
        rename = "dbSizeQuota",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub db_size_quota: i64,
    /// Downgrade in progress, if any (etcd 3.6+).
    #[serde(rename = "downgradeInfo", skip_serializing_if = "Option::is_none")]
    pub downgrade_info: Option<DowngradeInfo>,
}

/// A downgrade in progress (etcd 3.6+).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct DowngradeInfo {
    /// The cluster may downgrade.
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub enabled: bool,
    /// Target version of the downgrade.
    #[serde(rename = "targetVersion", skip_serializing_if = "String::is_empty")]
    pub target_version: String,
}

crate::wire_enum! {
    /// Kind of alarm (`etcdserverpb.AlarmType`).
    pub enum AlarmType {
        /// No alarm (the default): with GET, all alarms.
        None = 0 => "NONE",
        /// The space quota is exhausted: writes fail with code 8 "etcdserver: mvcc: database
        /// space exceeded".
        NoSpace = 1 => "NOSPACE",
        /// Key-value store corruption was detected (etcd 3.3+).
        Corrupt = 2 => "CORRUPT",
    }
}

crate::wire_enum! {
    /// What an [`AlarmRequest`] does (`AlarmRequest.AlarmAction`).
    pub enum AlarmAction {
        /// List alarms (the default).
        Get = 0 => "GET",
        /// Raise an alarm.
        Activate = 1 => "ACTIVATE",
        /// Clear an alarm.
        Deactivate = 2 => "DEACTIVATE",
    }
}

/// Lists, raises or clears alarms (`maintenance/alarm`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AlarmRequest {
    /// What to do.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub action: AlarmAction,
    /// Member the alarm is about; 0 for all members.
    #[serde(
        rename = "memberID",
        with = "codec::u64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub member_id: u64,
    /// Kind of alarm.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub alarm: AlarmType,
}

/// A raised alarm.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AlarmMember {
    /// Member the alarm is about.
    #[serde(
        rename = "memberID",
        with = "codec::u64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub member_id: u64,
    /// Kind of alarm.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub alarm: AlarmType,
}

/// Answer to an [`AlarmRequest`]: the alarms concerned (for DEACTIVATE, the ones cleared).
/// Without a header on etcd 3.4.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AlarmResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// The alarms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<AlarmMember>,
}

crate::empty_message! {
    /// Defragments the answering member's database (`maintenance/defragment`).
    DefragmentRequest
}

crate::header_response! {
    /// Answer to a [`DefragmentRequest`] (`{}` on 3.4 and 3.5: no header).
    DefragmentResponse
}

crate::empty_message! {
    /// Hashes the whole backend (`maintenance/hash`); for testing only.
    HashRequest
}

/// Answer to a [`HashRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct HashResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// The hash (a `uint32`: a JSON number, not a string).
    #[serde(skip_serializing_if = "codec::is_default")]
    pub hash: u32,
}

/// Hashes the MVCC keys up to a revision (`HashKVRequest`; `maintenance/hashkv`, etcd 3.5.10+ through the gateway).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct HashKvRequest {
    /// Revision to hash up to; 0 for the newest.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub revision: i64,
}

/// Answer to a [`HashKvRequest`] (`HashKVResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct HashKvResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// The hash (a JSON number).
    #[serde(skip_serializing_if = "codec::is_default")]
    pub hash: u32,
    /// Compacted revision of the store when the hash began.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub compact_revision: i64,
    /// Revision up to which the hash was computed (etcd 3.6+).
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub hash_revision: i64,
}

crate::empty_message! {
    /// Streams a snapshot of the backend (`maintenance/snapshot`, streamed).
    SnapshotRequest
}

/// One message of a snapshot stream. The last message's blob is the SHA-256 of the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotResponse {
    /// Response header (seen absent on 3.4 and 3.5).
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// Bytes still to come after this message.
    #[serde(with = "codec::u64_str", skip_serializing_if = "codec::is_default")]
    pub remaining_bytes: u64,
    /// The next chunk of the snapshot.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub blob: Bytes,
    /// Server version that made the snapshot (etcd 3.6+).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// Asks the leader to hand leadership to another member
/// (`maintenance/transfer-leadership`). An unknown target fails with code 9
/// "etcdserver: bad leader transferee".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct MoveLeaderRequest {
    /// ID of the new leader.
    #[serde(
        rename = "targetID",
        with = "codec::u64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub target_id: u64,
}

crate::header_response! {
    /// Answer to a [`MoveLeaderRequest`] (`{}` on 3.4 and 3.5: no header).
    MoveLeaderResponse
}

crate::wire_enum! {
    /// What a [`DowngradeRequest`] does (`DowngradeRequest.DowngradeAction`).
    pub enum DowngradeAction {
        /// Check that the target version is a valid downgrade (the default).
        Validate = 0 => "VALIDATE",
        /// Start the downgrade.
        Enable = 1 => "ENABLE",
        /// Cancel a downgrade.
        Cancel = 2 => "CANCEL",
    }
}

/// Validates, starts or cancels a cluster downgrade (`maintenance/downgrade`, etcd 3.5+).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct DowngradeRequest {
    /// What to do.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub action: DowngradeAction,
    /// Target version, e.g. `"3.4"`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// Answer to a [`DowngradeRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct DowngradeResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// Current cluster version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}
