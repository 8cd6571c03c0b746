//! The Lock service (`v3lockpb`): `lock/lock` and `lock/unlock`.
//!
//! Errors of this service come with code 2 Unknown even when the cause has a better code
//! (seen: an unknown lease is code 2 "etcdserver: requested lease not found").

use crate::codec;
use crate::header::ResponseHeader;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Acquires a named lock, waiting for it (`lock/lock`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct LockRequest {
    /// Name of the lock.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub name: Bytes,
    /// Lease attached to the ownership: when it ends, the lock is released. Locking twice
    /// with the same lease is a no-op. With 0 the server attaches a 60 s lease that nobody
    /// keeps alive.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub lease: i64,
}

/// Answer to a [`LockRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct LockResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// The ownership key (`<name>/<lease in hex>`): it exists as long as the lock is held.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub key: Bytes,
}

/// Releases a lock (`lock/unlock`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct UnlockRequest {
    /// The ownership key returned by [`LockResponse`].
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub key: Bytes,
}

crate::header_response! {
    /// Answer to an [`UnlockRequest`].
    UnlockResponse
}
