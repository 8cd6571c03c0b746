//! Which path each request goes to, and which message answers it.
//!
//! Paths are relative to the API prefix (see
//! [`VersionResponse::api_prefix`](crate::version::VersionResponse::api_prefix)):
//! `format!("{prefix}{}", RangeRequest::PATH)` is `/v3/kv/range`. Streamed calls are not
//! [`Rpc`]s; their paths are the constants [`WATCH`], [`LEASE_KEEPALIVE`],
//! [`ELECTION_OBSERVE`] and [`SNAPSHOT`].

use crate::auth::*;
use crate::cluster::*;
use crate::election::*;
use crate::kv::*;
use crate::lease::*;
use crate::lock::*;
use crate::maintenance::*;
use crate::txn::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A unary call: POST the request as JSON to `prefix + PATH`, get one `Response`.
pub trait Rpc: Serialize {
    /// Path after the API prefix, starting with `/`.
    const PATH: &'static str;
    /// The answer's message type.
    type Response: DeserializeOwned;
}

/// `GET` path of [`VersionResponse`](crate::version::VersionResponse); outside the prefix.
pub const VERSION: &str = "/version";
/// Streamed [`WatchRequest`](crate::watch::WatchRequest)s →
/// [`WatchResponse`](crate::watch::WatchResponse)s.
pub const WATCH: &str = "/watch";
/// [`LeaseKeepAliveRequest`] → a stream of (through the gateway: one)
/// [`LeaseKeepAliveResponse`].
pub const LEASE_KEEPALIVE: &str = "/lease/keepalive";
/// [`LeaderRequest`] → a stream of [`LeaderResponse`]s, one per proclamation.
pub const ELECTION_OBSERVE: &str = "/election/observe";
/// [`SnapshotRequest`] → a stream of [`SnapshotResponse`]s.
pub const SNAPSHOT: &str = "/maintenance/snapshot";

macro_rules! rpcs {
    ($($req:ty => $resp:ty, $path:literal;)+) => {
        $(
            impl Rpc for $req {
                const PATH: &'static str = $path;
                type Response = $resp;
            }
        )+
    };
}

rpcs! {
    RangeRequest => RangeResponse, "/kv/range";
    PutRequest => PutResponse, "/kv/put";
    DeleteRangeRequest => DeleteRangeResponse, "/kv/deleterange";
    TxnRequest => TxnResponse, "/kv/txn";
    CompactionRequest => CompactionResponse, "/kv/compaction";

    LeaseGrantRequest => LeaseGrantResponse, "/lease/grant";
    LeaseRevokeRequest => LeaseRevokeResponse, "/lease/revoke";
    LeaseTimeToLiveRequest => LeaseTimeToLiveResponse, "/lease/timetolive";
    LeaseLeasesRequest => LeaseLeasesResponse, "/lease/leases";

    LockRequest => LockResponse, "/lock/lock";
    UnlockRequest => UnlockResponse, "/lock/unlock";

    CampaignRequest => CampaignResponse, "/election/campaign";
    ProclaimRequest => ProclaimResponse, "/election/proclaim";
    LeaderRequest => LeaderResponse, "/election/leader";
    ResignRequest => ResignResponse, "/election/resign";

    AuthEnableRequest => AuthEnableResponse, "/auth/enable";
    AuthDisableRequest => AuthDisableResponse, "/auth/disable";
    AuthStatusRequest => AuthStatusResponse, "/auth/status";
    AuthenticateRequest => AuthenticateResponse, "/auth/authenticate";
    AuthUserAddRequest => AuthUserAddResponse, "/auth/user/add";
    AuthUserGetRequest => AuthUserGetResponse, "/auth/user/get";
    AuthUserListRequest => AuthUserListResponse, "/auth/user/list";
    AuthUserDeleteRequest => AuthUserDeleteResponse, "/auth/user/delete";
    AuthUserChangePasswordRequest => AuthUserChangePasswordResponse, "/auth/user/changepw";
    AuthUserGrantRoleRequest => AuthUserGrantRoleResponse, "/auth/user/grant";
    AuthUserRevokeRoleRequest => AuthUserRevokeRoleResponse, "/auth/user/revoke";
    AuthRoleAddRequest => AuthRoleAddResponse, "/auth/role/add";
    AuthRoleGetRequest => AuthRoleGetResponse, "/auth/role/get";
    AuthRoleListRequest => AuthRoleListResponse, "/auth/role/list";
    AuthRoleDeleteRequest => AuthRoleDeleteResponse, "/auth/role/delete";
    AuthRoleGrantPermissionRequest => AuthRoleGrantPermissionResponse, "/auth/role/grant";
    AuthRoleRevokePermissionRequest => AuthRoleRevokePermissionResponse, "/auth/role/revoke";

    MemberAddRequest => MemberAddResponse, "/cluster/member/add";
    MemberRemoveRequest => MemberRemoveResponse, "/cluster/member/remove";
    MemberUpdateRequest => MemberUpdateResponse, "/cluster/member/update";
    MemberListRequest => MemberListResponse, "/cluster/member/list";
    MemberPromoteRequest => MemberPromoteResponse, "/cluster/member/promote";

    StatusRequest => StatusResponse, "/maintenance/status";
    AlarmRequest => AlarmResponse, "/maintenance/alarm";
    DefragmentRequest => DefragmentResponse, "/maintenance/defragment";
    HashRequest => HashResponse, "/maintenance/hash";
    HashKvRequest => HashKvResponse, "/maintenance/hashkv";
    MoveLeaderRequest => MoveLeaderResponse, "/maintenance/transfer-leadership";
    DowngradeRequest => DowngradeResponse, "/maintenance/downgrade";
}
