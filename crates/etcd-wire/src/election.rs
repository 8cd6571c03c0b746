//! The Election service (`v3electionpb`): `election/campaign`, `election/proclaim`,
//! `election/leader`, `election/observe` (a stream of [`LeaderResponse`]) and
//! `election/resign`.
//!
//! Errors of this service come with code 2 Unknown (seen: "election: no leader",
//! "election: not leader").

use crate::codec;
use crate::header::{KeyValue, ResponseHeader};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Waits to become leader of an election (`election/campaign`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct CampaignRequest {
    /// Name of the election.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub name: Bytes,
    /// Lease attached to the leadership: when it ends, leadership passes on.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub lease: i64,
    /// Value proclaimed on winning.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub value: Bytes,
}

/// Answer to a [`CampaignRequest`]: this caller is now leader.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct CampaignResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// The leadership held.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub leader: LeaderKey,
}

/// A held leadership.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaderKey {
    /// Name of the election.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub name: Bytes,
    /// Key owning the leadership (`<name>/<lease in hex>`); if it is deleted, leadership is
    /// lost.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub key: Bytes,
    /// Creation revision of `key`: compare it in transactions to act only while leader.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub rev: i64,
    /// Lease of the leader.
    #[serde(with = "codec::i64_str", skip_serializing_if = "codec::is_default")]
    pub lease: i64,
}

/// Asks for the current leader (`election/leader`) or follows it (`election/observe`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaderRequest {
    /// Name of the election.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub name: Bytes,
}

/// The current leader's proclamation. Without a leader, `election/leader` fails with code 2
/// "election: no leader" and `election/observe` waits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaderResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// The leader's key and its proclaimed value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv: Option<KeyValue>,
}

/// Gives up leadership (`election/resign`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ResignRequest {
    /// The leadership to give up.
    pub leader: LeaderKey,
}

crate::header_response! {
    /// Answer to a [`ResignRequest`].
    ResignResponse
}

/// Updates the leader's proclaimed value (`election/proclaim`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ProclaimRequest {
    /// The leadership held; fails with code 2 "election: not leader" if it is not.
    pub leader: LeaderKey,
    /// The new value.
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    pub value: Bytes,
}

crate::header_response! {
    /// Answer to a [`ProclaimRequest`].
    ProclaimResponse
}
