//! The Lease service: `lease/grant`, `lease/revoke`, `lease/keepalive` (streamed),
//! `lease/timetolive` and `lease/leases`.
//!
//! Lease fields keep the proto's uppercase names on the wire: `{"ID":"7587...","TTL":"60"}`.

use crate::codec;
use crate::header::ResponseHeader;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Creates a lease (`lease/grant`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseGrantRequest {
    /// Advisory time-to-live in seconds.
    #[serde(
        rename = "TTL",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub ttl: i64,
    /// Requested lease ID; 0 lets the server choose.
    #[serde(
        rename = "ID",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub id: i64,
}

/// Answer to a [`LeaseGrantRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseGrantResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// ID of the granted lease.
    #[serde(
        rename = "ID",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub id: i64,
    /// Time-to-live chosen by the server, in seconds.
    #[serde(
        rename = "TTL",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub ttl: i64,
    /// Error text (unused by current servers, which answer errors with a status).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// Revokes a lease and deletes its keys (`lease/revoke`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseRevokeRequest {
    /// ID of the lease to revoke.
    #[serde(
        rename = "ID",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub id: i64,
}

crate::header_response! {
    /// Answer to a [`LeaseRevokeRequest`]. An unknown lease fails with code 5 NotFound
    /// "etcdserver: requested lease not found".
    LeaseRevokeResponse
}

/// Keeps a lease alive (`lease/keepalive`, streamed). Through the gateway one POST gets one
/// answer and the stream ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseKeepAliveRequest {
    /// ID of the lease to keep alive.
    #[serde(
        rename = "ID",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub id: i64,
}

/// Answer to a [`LeaseKeepAliveRequest`]. For an unknown or expired lease, `TTL` is absent (0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseKeepAliveResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// ID of the lease.
    #[serde(
        rename = "ID",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub id: i64,
    /// New time-to-live in seconds; 0 when the lease is gone.
    #[serde(
        rename = "TTL",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub ttl: i64,
}

/// Asks for a lease's remaining time (`lease/timetolive`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseTimeToLiveRequest {
    /// ID of the lease.
    #[serde(
        rename = "ID",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub id: i64,
    /// Also list the keys attached to the lease.
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub keys: bool,
}

/// Answer to a [`LeaseTimeToLiveRequest`]. An unknown lease answers `"TTL":"-1"`, not an
/// error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseTimeToLiveResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// ID of the lease.
    #[serde(
        rename = "ID",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub id: i64,
    /// Remaining time-to-live in seconds (the lease expires in under `TTL + 1` s); -1 when
    /// the lease does not exist.
    #[serde(
        rename = "TTL",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub ttl: i64,
    /// Time-to-live granted at creation or last renewal, in seconds.
    #[serde(
        rename = "grantedTTL",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub granted_ttl: i64,
    /// Keys attached to the lease, if asked for.
    #[serde(with = "codec::b64_vec", skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<Bytes>,
}

crate::empty_message! {
    /// Lists all leases (`lease/leases`, etcd 3.3+).
    LeaseLeasesRequest
}

/// One lease in a [`LeaseLeasesResponse`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseStatus {
    /// ID of the lease.
    #[serde(
        rename = "ID",
        with = "codec::i64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub id: i64,
}

/// Answer to a [`LeaseLeasesRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseLeasesResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// All leases.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leases: Vec<LeaseStatus>,
}
