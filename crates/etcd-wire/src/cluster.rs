//! The Cluster service: `cluster/member/{list,add,remove,update,promote}`.
//!
//! Member fields keep the proto's camelCase names on the wire: `ID`, `name`, `peerURLs`,
//! `clientURLs`, `isLearner`. Headers of these answers have no `revision`.

use crate::codec;
use crate::header::ResponseHeader;
use serde::{Deserialize, Serialize};

/// A member of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Member {
    /// Member ID.
    #[serde(
        rename = "ID",
        with = "codec::u64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub id: u64,
    /// Human-readable name; empty (absent) while the member has not started.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// URLs the member uses to talk to the cluster.
    #[serde(rename = "peerURLs", skip_serializing_if = "Vec::is_empty")]
    pub peer_urls: Vec<String>,
    /// URLs the member serves clients on; empty while the member has not started.
    #[serde(rename = "clientURLs", skip_serializing_if = "Vec::is_empty")]
    pub client_urls: Vec<String>,
    /// The member is a raft learner, not voting (etcd 3.4+).
    #[serde(
        rename = "isLearner",
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub is_learner: bool,
}

/// Adds a member (`cluster/member/add`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberAddRequest {
    /// Peer URLs of the new member.
    #[serde(rename = "peerURLs", skip_serializing_if = "Vec::is_empty")]
    pub peer_urls: Vec<String>,
    /// Add it as a learner (etcd 3.4+).
    #[serde(
        rename = "isLearner",
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub is_learner: bool,
}

/// Answer to a [`MemberAddRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberAddResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// The added member.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub member: Member,
    /// All members after the addition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}

/// Removes a member (`cluster/member/remove`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberRemoveRequest {
    /// ID of the member to remove; unknown fails with code 5 "etcdserver: member not found".
    #[serde(
        rename = "ID",
        with = "codec::u64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub id: u64,
}

/// Answer to a [`MemberRemoveRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberRemoveResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// All members after the removal.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}

/// Changes a member's peer URLs (`cluster/member/update`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberUpdateRequest {
    /// ID of the member.
    #[serde(
        rename = "ID",
        with = "codec::u64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub id: u64,
    /// The new peer URLs.
    #[serde(rename = "peerURLs", skip_serializing_if = "Vec::is_empty")]
    pub peer_urls: Vec<String>,
}

/// Answer to a [`MemberUpdateRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberUpdateResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// All members after the update.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}

/// Lists the members (`cluster/member/list`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberListRequest {
    /// Read the list through consensus (etcd 3.5+; older servers ignore it).
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub linearizable: bool,
}

/// Answer to a [`MemberListRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberListResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// All members.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}

/// Promotes a learner to a voting member (`cluster/member/promote`, etcd 3.4+). A learner
/// not yet in sync fails with code 9 "etcdserver: can only promote a learner member which is
/// in sync with leader".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberPromoteRequest {
    /// ID of the learner.
    #[serde(
        rename = "ID",
        with = "codec::u64_str",
        skip_serializing_if = "codec::is_default"
    )]
    pub id: u64,
}

/// Answer to a [`MemberPromoteRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberPromoteResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// All members after the promotion.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}
