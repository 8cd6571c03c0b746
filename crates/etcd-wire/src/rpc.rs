//! The seam between what a call means and how it travels: each request type names its
//! path, its answer, whether repeating it is safe, whether it needs a leader, and how its
//! answer is decoded.
//!
//! Paths are relative to the API prefix (see
//! [`VersionResponse::api_prefix`](crate::version::VersionResponse::api_prefix)):
//! `format!("{prefix}{}", RangeRequest::PATH)` is `/v3/kv/range`. Streaming calls are
//! [`StreamRpc`]s: watch and lease keep-alive are bidirectional, election observe and
//! snapshot stream answers only. A transport implements calls for any `Rpc` or `StreamRpc`
//! once; the client names request types, never paths.

use crate::election::*;
use crate::kv::*;
use crate::lease::*;
use crate::maintenance::*;
use crate::txn::*;
use crate::watch::WatchRequest;
use crate::DecodeError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Whether a request may be sent again when its outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Idempotency {
    /// Repeating it is harmless (reads, watch creation, keep-alives): retried after timeouts
    /// and broken connections, on the next endpoint.
    Idempotent,
    /// Repeating it may apply it twice (writes): retried only when it provably never reached
    /// a server; otherwise the error says the outcome is unknown.
    NotIdempotent,
}

/// A unary call: POST the request as JSON to `prefix + PATH`, get one `Response`.
pub trait Rpc: Serialize {
    /// Path after the API prefix, starting with `/`.
    const PATH: &'static str;
    /// The gRPC method path, e.g. `"/etcdserverpb.KV/Range"` (always present).
    const GRPC_METHOD: &'static str;
    /// Whether every request of this type may be repeated (see [`Rpc::idempotency`]).
    const IDEMPOTENCY: Idempotency;
    /// Whether a member without a leader must refuse it at once ("no leader", not applied)
    /// rather than wait: true for everything but maintenance calls, which must answer from
    /// any member (status of a leaderless member, alarms, defragmentation...).
    const REQUIRE_LEADER: bool = true;
    /// The answer's message type.
    type Response: DeserializeOwned;
    /// The protobuf request message.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    type Proto: prost::Message + Default + Send + Sync + 'static;
    /// The protobuf answer message.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    type ProtoResponse: prost::Message + Default + Send + Sync + 'static;

    /// Whether this request may be repeated; a transaction with only reads may.
    fn idempotency(&self) -> Idempotency {
        Self::IDEMPOTENCY
    }

    /// The bytes of keys, names and values this request carries: a lower bound of its
    /// encoded size (as protobuf, which etcd's `--max-request-bytes` limits), so that a
    /// client can refuse a request etcd would refuse before sending it. 0 for requests
    /// without keys or values.
    fn payload_len(&self) -> usize {
        0
    }

    /// Decodes the answer body (the gateway's JSON).
    fn decode(body: &[u8]) -> Result<Self::Response, DecodeError> {
        crate::from_slice(body)
    }

    /// This request as protobuf.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    fn to_proto(&self) -> Self::Proto;

    /// The answer from protobuf, checked like the JSON decoder checks it (see
    /// [`grpc`](crate::grpc)).
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    fn from_proto(answer: Self::ProtoResponse) -> Result<Self::Response, DecodeError>;
}

/// A streaming call: requests go out as a stream of messages (bidirectional calls) or as
/// one message, and answers come back as a stream of `Response`s.
pub trait StreamRpc: Serialize {
    /// Path after the API prefix, starting with `/`.
    const PATH: &'static str;
    /// The gRPC method path, e.g. `"/etcdserverpb.Watch/Watch"` (always present).
    const GRPC_METHOD: &'static str;
    /// Whether the call takes further requests after the first (watch, keep-alive).
    const BIDIRECTIONAL: bool;
    /// Whether a member without a leader must refuse (or end) it: see
    /// [`Rpc::REQUIRE_LEADER`]. False for snapshots.
    const REQUIRE_LEADER: bool = true;
    /// The message type of the answer stream.
    type Response: DeserializeOwned;
    /// The protobuf request message (for observe, the election's `LeaderRequest`).
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    type Proto: prost::Message + Default + Send + Sync + 'static;
    /// The protobuf message of the answer stream.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    type ProtoResponse: prost::Message + Default + Send + Sync + 'static;

    /// This request as protobuf.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    fn to_proto(&self) -> Self::Proto;

    /// One answer of the stream from protobuf, checked like the JSON decoder checks it (see
    /// [`grpc`](crate::grpc)).
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    fn from_proto(answer: Self::ProtoResponse) -> Result<Self::Response, DecodeError>;
}

/// `GET` path of [`VersionResponse`](crate::version::VersionResponse); outside the prefix.
pub const VERSION: &str = "/version";
/// Streamed [`WatchRequest`]s → [`WatchResponse`]s.
pub const WATCH: &str = <WatchRequest as StreamRpc>::PATH;
/// [`LeaseKeepAliveRequest`]s → [`LeaseKeepAliveResponse`]s, one per request.
pub const LEASE_KEEPALIVE: &str = <LeaseKeepAliveRequest as StreamRpc>::PATH;
/// [`ObserveRequest`] → a stream of [`LeaderResponse`]s, one per proclamation.
pub const ELECTION_OBSERVE: &str = <ObserveRequest as StreamRpc>::PATH;
/// [`SnapshotRequest`] → a stream of [`SnapshotResponse`]s.
pub const SNAPSHOT: &str = <SnapshotRequest as StreamRpc>::PATH;

/// The request of `election/observe`: the same message as [`LeaderRequest`] (the election's
/// name), sent to the streaming method.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ObserveRequest(pub LeaderRequest);

/// The one table of etcd's RPCs: every request type with its answer and what it says about
/// itself. It implements [`Rpc`] and [`StreamRpc`] here (`impl_rpcs!`), and tests run over
/// every request type with it, so a new RPC is one row.
///
/// `for_each_rpc!(callback)` calls `callback!` with the table:
///
/// ```text
/// unary { $( Request => Response { path, gRPC method, Idempotency $(, option)* } )* }
/// streaming { $( Request => Response { path, gRPC method, bidirectional $(, option)* } )* }
/// ```
///
/// Types are paths from the crate root (`$crate::PutRequest`). Options: `leader false`
/// (served without a leader), `payload <fn(&Self) -> usize>` ([`Rpc::payload_len`]),
/// `decode <fn(&[u8]) -> Result<Response, DecodeError>>` ([`Rpc::decode`]), `idempotency
/// <fn(&Self) -> Idempotency>` ([`Rpc::idempotency`]). A callback that lists types only
/// matches each row's braces with `{ $($_:tt)* }`.
#[doc(hidden)]
#[macro_export]
macro_rules! for_each_rpc {
    ($callback:ident) => {
        $callback! {
            unary {
                // The fast decoder of the gateway's own answers (serde for anything else).
                $crate::RangeRequest => $crate::RangeResponse { "/kv/range", "/etcdserverpb.KV/Range", Idempotent, payload range_payload, decode $crate::RangeResponse::from_slice }
                $crate::PutRequest => $crate::PutResponse { "/kv/put", "/etcdserverpb.KV/Put", NotIdempotent, payload put_payload }
                $crate::DeleteRangeRequest => $crate::DeleteRangeResponse { "/kv/deleterange", "/etcdserverpb.KV/DeleteRange", NotIdempotent, payload |r| r.key.len() + r.range_end.len() }
                // A transaction that only reads may be repeated; its payload counts the keys,
                // range ends and values of every compare and operation, nested ones included.
                $crate::TxnRequest => $crate::TxnResponse { "/kv/txn", "/etcdserverpb.KV/Txn", NotIdempotent, payload txn_payload, idempotency txn_idempotency }
                $crate::CompactionRequest => $crate::CompactionResponse { "/kv/compaction", "/etcdserverpb.KV/Compact", Idempotent }

                $crate::LeaseGrantRequest => $crate::LeaseGrantResponse { "/lease/grant", "/etcdserverpb.Lease/LeaseGrant", NotIdempotent }
                $crate::LeaseRevokeRequest => $crate::LeaseRevokeResponse { "/lease/revoke", "/etcdserverpb.Lease/LeaseRevoke", Idempotent }
                $crate::LeaseTimeToLiveRequest => $crate::LeaseTimeToLiveResponse { "/lease/timetolive", "/etcdserverpb.Lease/LeaseTimeToLive", Idempotent }
                $crate::LeaseLeasesRequest => $crate::LeaseLeasesResponse { "/lease/leases", "/etcdserverpb.Lease/LeaseLeases", Idempotent }

                $crate::LockRequest => $crate::LockResponse { "/lock/lock", "/v3lockpb.Lock/Lock", NotIdempotent, payload |r| r.name.len() }
                $crate::UnlockRequest => $crate::UnlockResponse { "/lock/unlock", "/v3lockpb.Lock/Unlock", Idempotent }

                $crate::CampaignRequest => $crate::CampaignResponse { "/election/campaign", "/v3electionpb.Election/Campaign", NotIdempotent, payload |r| r.name.len() + r.value.len() }
                $crate::ProclaimRequest => $crate::ProclaimResponse { "/election/proclaim", "/v3electionpb.Election/Proclaim", NotIdempotent, payload |r| r.leader.name.len() + r.leader.key.len() + r.value.len() }
                $crate::LeaderRequest => $crate::LeaderResponse { "/election/leader", "/v3electionpb.Election/Leader", Idempotent }
                $crate::ResignRequest => $crate::ResignResponse { "/election/resign", "/v3electionpb.Election/Resign", Idempotent }

                $crate::AuthEnableRequest => $crate::AuthEnableResponse { "/auth/enable", "/etcdserverpb.Auth/AuthEnable", Idempotent }
                $crate::AuthDisableRequest => $crate::AuthDisableResponse { "/auth/disable", "/etcdserverpb.Auth/AuthDisable", Idempotent }
                $crate::AuthStatusRequest => $crate::AuthStatusResponse { "/auth/status", "/etcdserverpb.Auth/AuthStatus", Idempotent }
                $crate::AuthenticateRequest => $crate::AuthenticateResponse { "/auth/authenticate", "/etcdserverpb.Auth/Authenticate", Idempotent }
                $crate::AuthUserAddRequest => $crate::AuthUserAddResponse { "/auth/user/add", "/etcdserverpb.Auth/UserAdd", NotIdempotent }
                $crate::AuthUserGetRequest => $crate::AuthUserGetResponse { "/auth/user/get", "/etcdserverpb.Auth/UserGet", Idempotent }
                $crate::AuthUserListRequest => $crate::AuthUserListResponse { "/auth/user/list", "/etcdserverpb.Auth/UserList", Idempotent }
                $crate::AuthUserDeleteRequest => $crate::AuthUserDeleteResponse { "/auth/user/delete", "/etcdserverpb.Auth/UserDelete", NotIdempotent }
                $crate::AuthUserChangePasswordRequest => $crate::AuthUserChangePasswordResponse { "/auth/user/changepw", "/etcdserverpb.Auth/UserChangePassword", Idempotent }
                $crate::AuthUserGrantRoleRequest => $crate::AuthUserGrantRoleResponse { "/auth/user/grant", "/etcdserverpb.Auth/UserGrantRole", Idempotent }
                $crate::AuthUserRevokeRoleRequest => $crate::AuthUserRevokeRoleResponse { "/auth/user/revoke", "/etcdserverpb.Auth/UserRevokeRole", NotIdempotent }
                $crate::AuthRoleAddRequest => $crate::AuthRoleAddResponse { "/auth/role/add", "/etcdserverpb.Auth/RoleAdd", NotIdempotent }
                $crate::AuthRoleGetRequest => $crate::AuthRoleGetResponse { "/auth/role/get", "/etcdserverpb.Auth/RoleGet", Idempotent }
                $crate::AuthRoleListRequest => $crate::AuthRoleListResponse { "/auth/role/list", "/etcdserverpb.Auth/RoleList", Idempotent }
                $crate::AuthRoleDeleteRequest => $crate::AuthRoleDeleteResponse { "/auth/role/delete", "/etcdserverpb.Auth/RoleDelete", NotIdempotent }
                $crate::AuthRoleGrantPermissionRequest => $crate::AuthRoleGrantPermissionResponse { "/auth/role/grant", "/etcdserverpb.Auth/RoleGrantPermission", Idempotent }
                $crate::AuthRoleRevokePermissionRequest => $crate::AuthRoleRevokePermissionResponse { "/auth/role/revoke", "/etcdserverpb.Auth/RoleRevokePermission", NotIdempotent }

                $crate::MemberAddRequest => $crate::MemberAddResponse { "/cluster/member/add", "/etcdserverpb.Cluster/MemberAdd", NotIdempotent }
                $crate::MemberRemoveRequest => $crate::MemberRemoveResponse { "/cluster/member/remove", "/etcdserverpb.Cluster/MemberRemove", NotIdempotent }
                $crate::MemberUpdateRequest => $crate::MemberUpdateResponse { "/cluster/member/update", "/etcdserverpb.Cluster/MemberUpdate", Idempotent }
                $crate::MemberListRequest => $crate::MemberListResponse { "/cluster/member/list", "/etcdserverpb.Cluster/MemberList", Idempotent }
                $crate::MemberPromoteRequest => $crate::MemberPromoteResponse { "/cluster/member/promote", "/etcdserverpb.Cluster/MemberPromote", NotIdempotent }

                $crate::StatusRequest => $crate::StatusResponse { "/maintenance/status", "/etcdserverpb.Maintenance/Status", Idempotent, leader false }
                $crate::AlarmRequest => $crate::AlarmResponse { "/maintenance/alarm", "/etcdserverpb.Maintenance/Alarm", Idempotent, leader false }
                $crate::DefragmentRequest => $crate::DefragmentResponse { "/maintenance/defragment", "/etcdserverpb.Maintenance/Defragment", Idempotent, leader false }
                $crate::HashRequest => $crate::HashResponse { "/maintenance/hash", "/etcdserverpb.Maintenance/Hash", Idempotent, leader false }
                $crate::HashKvRequest => $crate::HashKvResponse { "/maintenance/hashkv", "/etcdserverpb.Maintenance/HashKV", Idempotent, leader false }
                $crate::MoveLeaderRequest => $crate::MoveLeaderResponse { "/maintenance/transfer-leadership", "/etcdserverpb.Maintenance/MoveLeader", NotIdempotent, leader false }
                $crate::DowngradeRequest => $crate::DowngradeResponse { "/maintenance/downgrade", "/etcdserverpb.Maintenance/Downgrade", NotIdempotent, leader false }
            }
            streaming {
                $crate::WatchRequest => $crate::WatchResponse { "/watch", "/etcdserverpb.Watch/Watch", true }
                $crate::LeaseKeepAliveRequest => $crate::LeaseKeepAliveResponse { "/lease/keepalive", "/etcdserverpb.Lease/LeaseKeepAlive", true }
                $crate::ObserveRequest => $crate::LeaderResponse { "/election/observe", "/v3electionpb.Election/Observe", false }
                $crate::SnapshotRequest => $crate::SnapshotResponse { "/maintenance/snapshot", "/etcdserverpb.Maintenance/Snapshot", false, leader false }
            }
        }
    };
}

/// The protobuf side of an [`Rpc`] or [`StreamRpc`] impl (the same for both: the
/// conversions of `grpc/convert.rs`).
macro_rules! proto_items {
    ($resp:ty) => {
        #[cfg(feature = "grpc")]
        #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
        type Proto = <Self as crate::grpc::ProtoMessage>::Proto;
        #[cfg(feature = "grpc")]
        #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
        type ProtoResponse = <$resp as crate::grpc::ProtoMessage>::Proto;

        #[cfg(feature = "grpc")]
        #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
        fn to_proto(&self) -> Self::Proto {
            self.into()
        }

        #[cfg(feature = "grpc")]
        #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
        fn from_proto(answer: Self::ProtoResponse) -> Result<$resp, DecodeError> {
            answer.try_into()
        }
    };
}

/// Implements [`Rpc`] and [`StreamRpc`] from [`for_each_rpc!`]'s table.
macro_rules! impl_rpcs {
    (
        unary { $($req:ty => $resp:ty { $($unary:tt)* })* }
        streaming { $($sreq:ty => $sresp:ty { $($stream:tt)* })* }
    ) => {
        $(impl_rpcs!(@unary $req => $resp; $($unary)*);)*
        $(impl_rpcs!(@stream $sreq => $sresp; $($stream)*);)*
    };
    (@unary $req:ty => $resp:ty; $path:literal, $grpc:literal, $idem:ident
        $(, leader $leader:literal)? $(, payload $payload:expr)?
        $(, decode $decode:expr)? $(, idempotency $idempotency:expr)?) => {
        impl Rpc for $req {
            const PATH: &'static str = $path;
            const GRPC_METHOD: &'static str = $grpc;
            const IDEMPOTENCY: Idempotency = Idempotency::$idem;
            $(const REQUIRE_LEADER: bool = $leader;)?
            type Response = $resp;
            proto_items!($resp);

            $(fn payload_len(&self) -> usize {
                let payload: fn(&Self) -> usize = $payload;
                payload(self)
            })?
            $(fn decode(body: &[u8]) -> Result<$resp, DecodeError> {
                let decode: fn(&[u8]) -> Result<$resp, DecodeError> = $decode;
                decode(body)
            })?
            $(fn idempotency(&self) -> Idempotency {
                let idempotency: fn(&Self) -> Idempotency = $idempotency;
                idempotency(self)
            })?
        }
    };
    (@stream $req:ty => $resp:ty; $path:literal, $grpc:literal, $bidi:literal
        $(, leader $leader:literal)?) => {
        impl StreamRpc for $req {
            const PATH: &'static str = $path;
            const GRPC_METHOD: &'static str = $grpc;
            const BIDIRECTIONAL: bool = $bidi;
            $(const REQUIRE_LEADER: bool = $leader;)?
            type Response = $resp;
            proto_items!($resp);
        }
    };
}

for_each_rpc!(impl_rpcs);

fn txn_idempotency(t: &TxnRequest) -> Idempotency {
    if t.is_read_only() {
        Idempotency::Idempotent
    } else {
        Idempotency::NotIdempotent
    }
}

fn put_payload(r: &PutRequest) -> usize {
    r.key.len() + r.value.len()
}

fn range_payload(r: &RangeRequest) -> usize {
    r.key.len() + r.range_end.len()
}

fn txn_payload(t: &TxnRequest) -> usize {
    let compares: usize = t
        .compare
        .iter()
        .map(|c| {
            let value = match &c.target_union {
                Some(TargetUnion::Value(v)) => v.len(),
                _ => 0,
            };
            c.key.len() + c.range_end.len() + value
        })
        .sum();
    let ops: usize = t
        .success
        .iter()
        .chain(&t.failure)
        .map(|op| {
            op.request_range.as_ref().map_or(0, range_payload)
                + op.request_put.as_ref().map_or(0, put_payload)
                + op.request_delete_range
                    .as_ref()
                    .map_or(0, |d| d.key.len() + d.range_end.len())
                + op.request_txn.as_ref().map_or(0, txn_payload)
        })
        .sum();
    compares + ops
}

impl TxnRequest {
    /// True when neither branch writes (nested transactions included).
    pub fn is_read_only(&self) -> bool {
        self.success.iter().chain(&self.failure).all(|op| match op {
            RequestOp {
                request_put: None,
                request_delete_range: None,
                request_txn,
                ..
            } => request_txn.as_ref().is_none_or(TxnRequest::is_read_only),
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    #[test]
    fn payloads_count_keys_and_values_of_writes() {
        let put = PutRequest {
            key: "key".into(),
            value: vec![0u8; 1000].into(),
            lease: 7,
            ..PutRequest::default()
        };
        assert_eq!(put.payload_len(), 1003);
        let txn = TxnRequest {
            compare: vec![Compare {
                key: "ck".into(),
                target_union: Some(TargetUnion::Value("cv".into())),
                ..Compare::default()
            }],
            success: vec![put.clone().into()],
            failure: vec![RequestOp {
                request_txn: Some(TxnRequest {
                    success: vec![put.clone().into()],
                    ..TxnRequest::default()
                }),
                ..RequestOp::default()
            }],
        };
        assert_eq!(txn.payload_len(), 4 + 2 * 1003);
        let proclaim = ProclaimRequest {
            leader: LeaderKey {
                name: "e".into(),
                key: "e/1".into(),
                ..LeaderKey::default()
            },
            value: "v".into(),
        };
        assert_eq!(proclaim.payload_len(), 5);
        assert_eq!(StatusRequest::default().payload_len(), 0);
    }

    #[test]
    fn read_only_txns_are_idempotent() {
        let read = TxnRequest {
            success: vec![RangeRequest::default().into()],
            ..TxnRequest::default()
        };
        assert_eq!(read.idempotency(), Idempotency::Idempotent);
        let nested_write = TxnRequest {
            failure: vec![RequestOp {
                request_txn: Some(TxnRequest {
                    success: vec![PutRequest::default().into()],
                    ..TxnRequest::default()
                }),
                ..RequestOp::default()
            }],
            ..read.clone()
        };
        assert_eq!(nested_write.idempotency(), Idempotency::NotIdempotent);
        const { assert!(!<StatusRequest as Rpc>::REQUIRE_LEADER) };
        const { assert!(<PutRequest as Rpc>::REQUIRE_LEADER) };
    }

    /// `package.Service/Method` → (request message, answer message, request stream, answer
    /// stream), from the vendored `.proto` files.
    fn proto_methods() -> std::collections::HashMap<String, (String, String, bool, bool)> {
        let files = [
            include_str!("../proto/rpc.proto"),
            include_str!("../proto/v3lock.proto"),
            include_str!("../proto/v3election.proto"),
        ];
        let mut methods = std::collections::HashMap::new();
        for file in files {
            let (mut package, mut service) = ("", "");
            for line in file.lines().map(str::trim) {
                if let Some(p) = line.strip_prefix("package ") {
                    package = p.trim_end_matches(';');
                } else if let Some(s) = line.strip_prefix("service ") {
                    service = s.trim_end_matches(" {");
                } else if let Some(rpc) = line.strip_prefix("rpc ") {
                    // rpc Name(stream Req) returns (stream Resp) {}
                    let (name, rest) = rpc.split_once('(').unwrap();
                    let (req, rest) = rest.split_once(')').unwrap();
                    let resp = rest.split_once('(').unwrap().1.split_once(')').unwrap().0;
                    let strip = |m: &str| match m.strip_prefix("stream ") {
                        Some(m) => (m.to_string(), true),
                        None => (m.to_string(), false),
                    };
                    let ((req, req_stream), (resp, resp_stream)) = (strip(req), strip(resp));
                    let method = format!("/{package}.{service}/{name}");
                    methods.insert(method, (req, resp, req_stream, resp_stream));
                }
            }
        }
        methods
    }

    /// The last segment of a type's path, lower-cased (`HashKvRequest` is `HashKVRequest`).
    fn short_name<T: ?Sized>() -> String {
        let name = std::any::type_name::<T>();
        name.rsplit("::").next().unwrap().to_lowercase()
    }

    /// Every GRPC_METHOD is a method of the vendored `.proto` files whose request and answer
    /// messages are this type's (and, with `grpc`, its `Proto` and `ProtoResponse`), unary or
    /// streaming as declared; every method of the files is covered exactly once.
    #[test]
    fn grpc_methods_match_the_proto_files() {
        let methods = proto_methods();
        let mut covered = std::collections::BTreeSet::new();
        let mut check = |method: &str, req: String, resp: String, streams: (bool, bool)| {
            let Some((proto_req, proto_resp, req_stream, resp_stream)) = methods.get(method) else {
                panic!("{method} is not in the .proto files");
            };
            // `ObserveRequest` is the election's `LeaderRequest`.
            let req = if req == "observerequest" {
                "leaderrequest".into()
            } else {
                req
            };
            assert_eq!(req, proto_req.to_lowercase(), "request of {method}");
            assert_eq!(resp, proto_resp.to_lowercase(), "answer of {method}");
            assert_eq!(
                streams,
                (*req_stream, *resp_stream),
                "streaming of {method}"
            );
            assert!(covered.insert(method.to_string()), "{method} used twice");
        };
        macro_rules! check_all {
            (
                unary { $($t:ty => $resp:ty { $($_u:tt)* })* }
                streaming { $($s:ty => $sresp:ty { $($_s:tt)* })* }
            ) => {
                $(
                    check(<$t as Rpc>::GRPC_METHOD, short_name::<$t>(),
                        short_name::<<$t as Rpc>::Response>(), (false, false));
                    #[cfg(feature = "grpc")]
                    {
                        assert_eq!(short_name::<$t>(), short_name::<<$t as Rpc>::Proto>());
                        assert_eq!(
                            short_name::<<$t as Rpc>::Response>(),
                            short_name::<<$t as Rpc>::ProtoResponse>()
                        );
                    }
                )*
                $(
                    let bidi = <$s as StreamRpc>::BIDIRECTIONAL;
                    check(<$s as StreamRpc>::GRPC_METHOD, short_name::<$s>(),
                        short_name::<<$s as StreamRpc>::Response>(), (bidi, true));
                    #[cfg(feature = "grpc")]
                    assert_eq!(
                        short_name::<<$s as StreamRpc>::Response>(),
                        short_name::<<$s as StreamRpc>::ProtoResponse>()
                    );
                )*
            };
        }
        for_each_rpc!(check_all);
        #[cfg(feature = "grpc")]
        assert_eq!(
            short_name::<<ObserveRequest as StreamRpc>::Proto>(),
            "leaderrequest"
        );
        let uncovered: Vec<_> = methods.keys().filter(|m| !covered.contains(*m)).collect();
        assert!(
            uncovered.is_empty(),
            "methods without a request type: {uncovered:?}"
        );
    }

    #[test]
    fn grpc_methods_by_name() {
        for (method, expected) in [
            (<RangeRequest as Rpc>::GRPC_METHOD, "/etcdserverpb.KV/Range"),
            (
                <CompactionRequest as Rpc>::GRPC_METHOD,
                "/etcdserverpb.KV/Compact",
            ),
            (
                <HashKvRequest as Rpc>::GRPC_METHOD,
                "/etcdserverpb.Maintenance/HashKV",
            ),
            (
                <MoveLeaderRequest as Rpc>::GRPC_METHOD,
                "/etcdserverpb.Maintenance/MoveLeader",
            ),
            (
                <AuthUserAddRequest as Rpc>::GRPC_METHOD,
                "/etcdserverpb.Auth/UserAdd",
            ),
            (
                <AuthEnableRequest as Rpc>::GRPC_METHOD,
                "/etcdserverpb.Auth/AuthEnable",
            ),
            (<LockRequest as Rpc>::GRPC_METHOD, "/v3lockpb.Lock/Lock"),
            (
                <CampaignRequest as Rpc>::GRPC_METHOD,
                "/v3electionpb.Election/Campaign",
            ),
            (
                <WatchRequest as StreamRpc>::GRPC_METHOD,
                "/etcdserverpb.Watch/Watch",
            ),
            (
                <LeaseKeepAliveRequest as StreamRpc>::GRPC_METHOD,
                "/etcdserverpb.Lease/LeaseKeepAlive",
            ),
            (
                <ObserveRequest as StreamRpc>::GRPC_METHOD,
                "/v3electionpb.Election/Observe",
            ),
            (
                <SnapshotRequest as StreamRpc>::GRPC_METHOD,
                "/etcdserverpb.Maintenance/Snapshot",
            ),
        ] {
            assert_eq!(method, expected);
        }
    }
}
