//! `From<&Wire> for pb::X` and `TryFrom<pb::X> for Wire` for every message.
//!
//! `bytes` fields are [`Bytes`](bytes::Bytes) on both sides: they move (or are cloned by
//! reference count), never copied. Decoding checks what the JSON decoder checks: a
//! key-value needs a non-empty key, an event needs its key-value, an enum needs a known
//! number.

use super::pb::{authpb, etcdserverpb as es, mvccpb, v3electionpb as el, v3lockpb as lk};
use super::ProtoMessage;
use crate::*;

/// A wire enum with protobuf numbers (see [`wire_enum!`](crate::wire_enum)).
trait WireEnum: Sized + Copy {
    const NAME: &'static str;
    fn number(self) -> i32;
    fn from_number(n: i32) -> Option<Self>;
}

macro_rules! wire_enums {
    ($($name:ident),+ $(,)?) => {$(
        impl WireEnum for $name {
            const NAME: &'static str = stringify!($name);
            fn number(self) -> i32 {
                self.as_i32()
            }
            fn from_number(n: i32) -> Option<Self> {
                $name::from_i32(i64::from(n))
            }
        }
    )+};
}

wire_enums!(
    SortOrder,
    SortTarget,
    CompareResult,
    CompareTarget,
    FilterType,
    EventType,
    PermissionType,
    AlarmType,
    AlarmAction,
    DowngradeAction,
);

/// An enum field of an answer: unknown numbers are an error, as in the JSON decoder.
fn decode_enum<E: WireEnum>(
    value: i32,
    message: &'static str,
    field: &'static str,
) -> Result<E, DecodeError> {
    E::from_number(value).ok_or(DecodeError::UnknownEnum {
        enum_name: E::NAME,
        value,
        message,
        field,
    })
}

/// Decodes a list of messages.
fn decode_vec<P, W: TryFrom<P, Error = DecodeError>>(list: Vec<P>) -> Result<Vec<W>, DecodeError> {
    list.into_iter().map(W::try_from).collect()
}

/// Encodes one field, by kind: `v` a value (number, bool, string, bytes, list of those), `e`
/// an enum, `m` a message field the gateway type always has (sent as present), `o` an
/// optional message, `r` a list of messages, `re` a list of enums.
macro_rules! to_pb {
    (v, $e:expr) => {
        ::core::clone::Clone::clone($e)
    };
    (e, $e:expr) => {
        WireEnum::number(*$e)
    };
    (m, $e:expr) => {
        Some(From::from($e))
    };
    (o, $e:expr) => {
        $e.as_ref().map(From::from)
    };
    (r, $e:expr) => {
        $e.iter().map(From::from).collect()
    };
    (re, $e:expr) => {
        $e.iter().map(|e| WireEnum::number(*e)).collect()
    };
}

/// Decodes one field, by kind (see [`to_pb!`]). An absent `m` field is its default.
macro_rules! from_pb {
    (v, $e:expr, $msg:expr, $field:expr) => {
        $e
    };
    (e, $e:expr, $msg:expr, $field:expr) => {
        decode_enum($e, $msg, $field)?
    };
    (m, $e:expr, $msg:expr, $field:expr) => {
        $e.map(TryFrom::try_from).transpose()?.unwrap_or_default()
    };
    (o, $e:expr, $msg:expr, $field:expr) => {
        $e.map(TryFrom::try_from).transpose()?
    };
    (r, $e:expr, $msg:expr, $field:expr) => {
        decode_vec($e)?
    };
    (re, $e:expr, $msg:expr, $field:expr) => {
        $e.into_iter()
            .map(|e| decode_enum(e, $msg, $field))
            .collect::<Result<_, DecodeError>>()?
    };
}

/// Both conversions of messages whose fields have the same names on both sides, and their
/// [`ProtoMessage`] impls. `$name` is the protobuf name used in errors.
macro_rules! messages {
    ($( $wire:ident <=> $pb:path, $name:literal { $($kind:ident $field:ident),* $(,)? } )+) => {$(
        impl ProtoMessage for $wire {
            type Proto = $pb;
        }

        impl From<&$wire> for $pb {
            #[allow(unused_variables)]
            fn from(w: &$wire) -> Self {
                Self { $( $field: to_pb!($kind, &w.$field), )* }
            }
        }

        impl TryFrom<$pb> for $wire {
            type Error = DecodeError;

            #[allow(unused_variables)]
            fn try_from(p: $pb) -> Result<Self, DecodeError> {
                Ok(Self { $( $field: from_pb!($kind, p.$field, $name, stringify!($field)), )* })
            }
        }
    )+};
}

/// [`ProtoMessage`] impls of the messages converted by hand below.
macro_rules! proto_messages {
    ($($wire:ident <=> $pb:path),+ $(,)?) => {$(
        impl ProtoMessage for $wire {
            type Proto = $pb;
        }
    )+};
}

proto_messages!(
    KeyValue <=> mvccpb::KeyValue,
    Event <=> mvccpb::Event,
    Compare <=> es::Compare,
    RequestOp <=> es::RequestOp,
    ResponseOp <=> es::ResponseOp,
    WatchRequest <=> es::WatchRequest,
    Member <=> es::Member,
    MemberAddRequest <=> es::MemberAddRequest,
    MemberUpdateRequest <=> es::MemberUpdateRequest,
    ObserveRequest <=> el::LeaderRequest,
);

messages! {
    // Shared.
    ResponseHeader <=> es::ResponseHeader, "etcdserverpb.ResponseHeader" {
        v cluster_id, v member_id, v revision, v raft_term
    }

    // KV.
    RangeRequest <=> es::RangeRequest, "etcdserverpb.RangeRequest" {
        v key, v range_end, v limit, v revision, e sort_order, e sort_target, v serializable,
        v keys_only, v count_only, v min_mod_revision, v max_mod_revision,
        v min_create_revision, v max_create_revision,
    }
    RangeResponse <=> es::RangeResponse, "etcdserverpb.RangeResponse" {
        m header, r kvs, v more, v count
    }
    PutRequest <=> es::PutRequest, "etcdserverpb.PutRequest" {
        v key, v value, v lease, v prev_kv, v ignore_value, v ignore_lease
    }
    PutResponse <=> es::PutResponse, "etcdserverpb.PutResponse" { m header, o prev_kv }
    DeleteRangeRequest <=> es::DeleteRangeRequest, "etcdserverpb.DeleteRangeRequest" {
        v key, v range_end, v prev_kv
    }
    DeleteRangeResponse <=> es::DeleteRangeResponse, "etcdserverpb.DeleteRangeResponse" {
        m header, v deleted, r prev_kvs
    }
    CompactionRequest <=> es::CompactionRequest, "etcdserverpb.CompactionRequest" {
        v revision, v physical
    }
    CompactionResponse <=> es::CompactionResponse, "etcdserverpb.CompactionResponse" { m header }
    TxnRequest <=> es::TxnRequest, "etcdserverpb.TxnRequest" { r compare, r success, r failure }
    TxnResponse <=> es::TxnResponse, "etcdserverpb.TxnResponse" {
        m header, v succeeded, r responses
    }

    // Watch.
    WatchCreateRequest <=> es::WatchCreateRequest, "etcdserverpb.WatchCreateRequest" {
        v key, v range_end, v start_revision, v progress_notify, re filters, v prev_kv,
        v watch_id, v fragment,
    }
    WatchCancelRequest <=> es::WatchCancelRequest, "etcdserverpb.WatchCancelRequest" { v watch_id }
    WatchProgressRequest <=> es::WatchProgressRequest, "etcdserverpb.WatchProgressRequest" {}
    WatchResponse <=> es::WatchResponse, "etcdserverpb.WatchResponse" {
        m header, v watch_id, v created, v canceled, v compact_revision, v cancel_reason,
        v fragment, r events,
    }

    // Lease.
    LeaseGrantRequest <=> es::LeaseGrantRequest, "etcdserverpb.LeaseGrantRequest" { v ttl, v id }
    LeaseGrantResponse <=> es::LeaseGrantResponse, "etcdserverpb.LeaseGrantResponse" {
        m header, v id, v ttl, v error
    }
    LeaseRevokeRequest <=> es::LeaseRevokeRequest, "etcdserverpb.LeaseRevokeRequest" { v id }
    LeaseRevokeResponse <=> es::LeaseRevokeResponse, "etcdserverpb.LeaseRevokeResponse" {
        m header
    }
    LeaseKeepAliveRequest <=> es::LeaseKeepAliveRequest, "etcdserverpb.LeaseKeepAliveRequest" {
        v id
    }
    LeaseKeepAliveResponse <=> es::LeaseKeepAliveResponse, "etcdserverpb.LeaseKeepAliveResponse" {
        m header, v id, v ttl
    }
    LeaseTimeToLiveRequest <=> es::LeaseTimeToLiveRequest, "etcdserverpb.LeaseTimeToLiveRequest" {
        v id, v keys
    }
    LeaseTimeToLiveResponse <=> es::LeaseTimeToLiveResponse,
        "etcdserverpb.LeaseTimeToLiveResponse" { m header, v id, v ttl, v granted_ttl, v keys }
    LeaseLeasesRequest <=> es::LeaseLeasesRequest, "etcdserverpb.LeaseLeasesRequest" {}
    LeaseStatus <=> es::LeaseStatus, "etcdserverpb.LeaseStatus" { v id }
    LeaseLeasesResponse <=> es::LeaseLeasesResponse, "etcdserverpb.LeaseLeasesResponse" {
        m header, r leases
    }

    // Lock.
    LockRequest <=> lk::LockRequest, "v3lockpb.LockRequest" { v name, v lease }
    LockResponse <=> lk::LockResponse, "v3lockpb.LockResponse" { m header, v key }
    UnlockRequest <=> lk::UnlockRequest, "v3lockpb.UnlockRequest" { v key }
    UnlockResponse <=> lk::UnlockResponse, "v3lockpb.UnlockResponse" { m header }

    // Election.
    CampaignRequest <=> el::CampaignRequest, "v3electionpb.CampaignRequest" {
        v name, v lease, v value
    }
    CampaignResponse <=> el::CampaignResponse, "v3electionpb.CampaignResponse" {
        m header, m leader
    }
    LeaderKey <=> el::LeaderKey, "v3electionpb.LeaderKey" { v name, v key, v rev, v lease }
    LeaderRequest <=> el::LeaderRequest, "v3electionpb.LeaderRequest" { v name }
    LeaderResponse <=> el::LeaderResponse, "v3electionpb.LeaderResponse" { m header, o kv }
    ResignRequest <=> el::ResignRequest, "v3electionpb.ResignRequest" { m leader }
    ResignResponse <=> el::ResignResponse, "v3electionpb.ResignResponse" { m header }
    ProclaimRequest <=> el::ProclaimRequest, "v3electionpb.ProclaimRequest" {
        m leader, v value
    }
    ProclaimResponse <=> el::ProclaimResponse, "v3electionpb.ProclaimResponse" { m header }

    // Auth.
    AuthEnableRequest <=> es::AuthEnableRequest, "etcdserverpb.AuthEnableRequest" {}
    AuthEnableResponse <=> es::AuthEnableResponse, "etcdserverpb.AuthEnableResponse" { m header }
    AuthDisableRequest <=> es::AuthDisableRequest, "etcdserverpb.AuthDisableRequest" {}
    AuthDisableResponse <=> es::AuthDisableResponse, "etcdserverpb.AuthDisableResponse" {
        m header
    }
    AuthStatusRequest <=> es::AuthStatusRequest, "etcdserverpb.AuthStatusRequest" {}
    AuthStatusResponse <=> es::AuthStatusResponse, "etcdserverpb.AuthStatusResponse" {
        m header, v enabled, v auth_revision
    }
    AuthenticateRequest <=> es::AuthenticateRequest, "etcdserverpb.AuthenticateRequest" {
        v name, v password
    }
    AuthenticateResponse <=> es::AuthenticateResponse, "etcdserverpb.AuthenticateResponse" {
        m header, v token
    }
    UserAddOptions <=> authpb::UserAddOptions, "authpb.UserAddOptions" { v no_password }
    AuthUserAddRequest <=> es::AuthUserAddRequest, "etcdserverpb.AuthUserAddRequest" {
        v name, v password, o options, v hashed_password
    }
    AuthUserAddResponse <=> es::AuthUserAddResponse, "etcdserverpb.AuthUserAddResponse" {
        m header
    }
    AuthUserGetRequest <=> es::AuthUserGetRequest, "etcdserverpb.AuthUserGetRequest" { v name }
    AuthUserGetResponse <=> es::AuthUserGetResponse, "etcdserverpb.AuthUserGetResponse" {
        m header, v roles
    }
    AuthUserListRequest <=> es::AuthUserListRequest, "etcdserverpb.AuthUserListRequest" {}
    AuthUserListResponse <=> es::AuthUserListResponse, "etcdserverpb.AuthUserListResponse" {
        m header, v users
    }
    AuthUserDeleteRequest <=> es::AuthUserDeleteRequest, "etcdserverpb.AuthUserDeleteRequest" {
        v name
    }
    AuthUserDeleteResponse <=> es::AuthUserDeleteResponse, "etcdserverpb.AuthUserDeleteResponse" {
        m header
    }
    AuthUserChangePasswordRequest <=> es::AuthUserChangePasswordRequest,
        "etcdserverpb.AuthUserChangePasswordRequest" { v name, v password, v hashed_password }
    AuthUserChangePasswordResponse <=> es::AuthUserChangePasswordResponse,
        "etcdserverpb.AuthUserChangePasswordResponse" { m header }
    AuthUserGrantRoleRequest <=> es::AuthUserGrantRoleRequest,
        "etcdserverpb.AuthUserGrantRoleRequest" { v user, v role }
    AuthUserGrantRoleResponse <=> es::AuthUserGrantRoleResponse,
        "etcdserverpb.AuthUserGrantRoleResponse" { m header }
    AuthUserRevokeRoleRequest <=> es::AuthUserRevokeRoleRequest,
        "etcdserverpb.AuthUserRevokeRoleRequest" { v name, v role }
    AuthUserRevokeRoleResponse <=> es::AuthUserRevokeRoleResponse,
        "etcdserverpb.AuthUserRevokeRoleResponse" { m header }
    AuthRoleAddRequest <=> es::AuthRoleAddRequest, "etcdserverpb.AuthRoleAddRequest" { v name }
    AuthRoleAddResponse <=> es::AuthRoleAddResponse, "etcdserverpb.AuthRoleAddResponse" {
        m header
    }
    AuthRoleGetRequest <=> es::AuthRoleGetRequest, "etcdserverpb.AuthRoleGetRequest" { v role }
    AuthRoleGetResponse <=> es::AuthRoleGetResponse, "etcdserverpb.AuthRoleGetResponse" {
        m header, r perm
    }
    AuthRoleListRequest <=> es::AuthRoleListRequest, "etcdserverpb.AuthRoleListRequest" {}
    AuthRoleListResponse <=> es::AuthRoleListResponse, "etcdserverpb.AuthRoleListResponse" {
        m header, v roles
    }
    AuthRoleDeleteRequest <=> es::AuthRoleDeleteRequest, "etcdserverpb.AuthRoleDeleteRequest" {
        v role
    }
    AuthRoleDeleteResponse <=> es::AuthRoleDeleteResponse, "etcdserverpb.AuthRoleDeleteResponse" {
        m header
    }
    Permission <=> authpb::Permission, "authpb.Permission" { e perm_type, v key, v range_end }
    AuthRoleGrantPermissionRequest <=> es::AuthRoleGrantPermissionRequest,
        "etcdserverpb.AuthRoleGrantPermissionRequest" { v name, m perm }
    AuthRoleGrantPermissionResponse <=> es::AuthRoleGrantPermissionResponse,
        "etcdserverpb.AuthRoleGrantPermissionResponse" { m header }
    AuthRoleRevokePermissionRequest <=> es::AuthRoleRevokePermissionRequest,
        "etcdserverpb.AuthRoleRevokePermissionRequest" { v role, v key, v range_end }
    AuthRoleRevokePermissionResponse <=> es::AuthRoleRevokePermissionResponse,
        "etcdserverpb.AuthRoleRevokePermissionResponse" { m header }

    // Cluster (Member, MemberAddRequest and MemberUpdateRequest below: `peerURLs`).
    MemberAddResponse <=> es::MemberAddResponse, "etcdserverpb.MemberAddResponse" {
        m header, m member, r members
    }
    MemberRemoveRequest <=> es::MemberRemoveRequest, "etcdserverpb.MemberRemoveRequest" { v id }
    MemberRemoveResponse <=> es::MemberRemoveResponse, "etcdserverpb.MemberRemoveResponse" {
        m header, r members
    }
    MemberUpdateResponse <=> es::MemberUpdateResponse, "etcdserverpb.MemberUpdateResponse" {
        m header, r members
    }
    MemberListRequest <=> es::MemberListRequest, "etcdserverpb.MemberListRequest" {
        v linearizable
    }
    MemberListResponse <=> es::MemberListResponse, "etcdserverpb.MemberListResponse" {
        m header, r members
    }
    MemberPromoteRequest <=> es::MemberPromoteRequest, "etcdserverpb.MemberPromoteRequest" {
        v id
    }
    MemberPromoteResponse <=> es::MemberPromoteResponse, "etcdserverpb.MemberPromoteResponse" {
        m header, r members
    }

    // Maintenance.
    StatusRequest <=> es::StatusRequest, "etcdserverpb.StatusRequest" {}
    StatusResponse <=> es::StatusResponse, "etcdserverpb.StatusResponse" {
        m header, v version, v db_size, v leader, v raft_index, v raft_term,
        v raft_applied_index, v errors, v db_size_in_use, v is_learner, v storage_version,
        v db_size_quota, o downgrade_info,
    }
    DowngradeInfo <=> es::DowngradeInfo, "etcdserverpb.DowngradeInfo" {
        v enabled, v target_version
    }
    AlarmRequest <=> es::AlarmRequest, "etcdserverpb.AlarmRequest" {
        e action, v member_id, e alarm
    }
    AlarmMember <=> es::AlarmMember, "etcdserverpb.AlarmMember" { v member_id, e alarm }
    AlarmResponse <=> es::AlarmResponse, "etcdserverpb.AlarmResponse" { m header, r alarms }
    DefragmentRequest <=> es::DefragmentRequest, "etcdserverpb.DefragmentRequest" {}
    DefragmentResponse <=> es::DefragmentResponse, "etcdserverpb.DefragmentResponse" {
        m header
    }
    HashRequest <=> es::HashRequest, "etcdserverpb.HashRequest" {}
    HashResponse <=> es::HashResponse, "etcdserverpb.HashResponse" { m header, v hash }
    HashKvRequest <=> es::HashKvRequest, "etcdserverpb.HashKVRequest" { v revision }
    HashKvResponse <=> es::HashKvResponse, "etcdserverpb.HashKVResponse" {
        m header, v hash, v compact_revision, v hash_revision
    }
    SnapshotRequest <=> es::SnapshotRequest, "etcdserverpb.SnapshotRequest" {}
    SnapshotResponse <=> es::SnapshotResponse, "etcdserverpb.SnapshotResponse" {
        m header, v remaining_bytes, v blob, v version
    }
    MoveLeaderRequest <=> es::MoveLeaderRequest, "etcdserverpb.MoveLeaderRequest" { v target_id }
    MoveLeaderResponse <=> es::MoveLeaderResponse, "etcdserverpb.MoveLeaderResponse" { m header }
    DowngradeRequest <=> es::DowngradeRequest, "etcdserverpb.DowngradeRequest" {
        e action, v version
    }
    DowngradeResponse <=> es::DowngradeResponse, "etcdserverpb.DowngradeResponse" {
        m header, v version
    }
}

// mvccpb: the checks of the JSON decoder (see `header.rs`).

impl From<&KeyValue> for mvccpb::KeyValue {
    fn from(w: &KeyValue) -> Self {
        Self {
            key: w.key.clone(),
            create_revision: w.create_revision,
            mod_revision: w.mod_revision,
            version: w.version,
            value: w.value.clone(),
            lease: w.lease,
        }
    }
}

/// Rejects an empty key, as the JSON decoder does.
impl TryFrom<mvccpb::KeyValue> for KeyValue {
    type Error = DecodeError;

    fn try_from(p: mvccpb::KeyValue) -> Result<Self, DecodeError> {
        if p.key.is_empty() {
            return Err(DecodeError::Invalid {
                message: "mvccpb.KeyValue",
                field: "key",
                problem: "is empty",
            });
        }
        Ok(Self {
            key: p.key,
            create_revision: p.create_revision,
            mod_revision: p.mod_revision,
            version: p.version,
            value: p.value,
            lease: p.lease,
        })
    }
}

impl From<&Event> for mvccpb::Event {
    fn from(w: &Event) -> Self {
        Self {
            r#type: w.r#type.number(),
            kv: Some((&w.kv).into()),
            prev_kv: w.prev_kv.as_ref().map(Into::into),
        }
    }
}

/// Rejects an event without its key-value, as the JSON decoder does.
impl TryFrom<mvccpb::Event> for Event {
    type Error = DecodeError;

    fn try_from(p: mvccpb::Event) -> Result<Self, DecodeError> {
        let kv = p.kv.ok_or(DecodeError::Invalid {
            message: "mvccpb.Event",
            field: "kv",
            problem: "is missing",
        })?;
        Ok(Self {
            r#type: decode_enum(p.r#type, "mvccpb.Event", "type")?,
            kv: kv.try_into()?,
            prev_kv: p.prev_kv.map(TryInto::try_into).transpose()?,
        })
    }
}

// oneofs.

impl From<&Compare> for es::Compare {
    fn from(w: &Compare) -> Self {
        use es::compare::TargetUnion as P;
        Self {
            result: w.result.number(),
            target: w.target.number(),
            key: w.key.clone(),
            range_end: w.range_end.clone(),
            target_union: w.target_union.as_ref().map(|t| match t {
                TargetUnion::Version(v) => P::Version(*v),
                TargetUnion::CreateRevision(v) => P::CreateRevision(*v),
                TargetUnion::ModRevision(v) => P::ModRevision(*v),
                TargetUnion::Value(v) => P::Value(v.clone()),
                TargetUnion::Lease(v) => P::Lease(*v),
            }),
        }
    }
}

impl TryFrom<es::Compare> for Compare {
    type Error = DecodeError;

    fn try_from(p: es::Compare) -> Result<Self, DecodeError> {
        use es::compare::TargetUnion as P;
        Ok(Self {
            result: decode_enum(p.result, "etcdserverpb.Compare", "result")?,
            target: decode_enum(p.target, "etcdserverpb.Compare", "target")?,
            key: p.key,
            range_end: p.range_end,
            target_union: p.target_union.map(|t| match t {
                P::Version(v) => TargetUnion::Version(v),
                P::CreateRevision(v) => TargetUnion::CreateRevision(v),
                P::ModRevision(v) => TargetUnion::ModRevision(v),
                P::Value(v) => TargetUnion::Value(v),
                P::Lease(v) => TargetUnion::Lease(v),
            }),
        })
    }
}

/// The first member set (range, put, delete range, txn, in this order) becomes the oneof:
/// a `RequestOp` should have exactly one; with none, the oneof is absent.
impl From<&RequestOp> for es::RequestOp {
    fn from(w: &RequestOp) -> Self {
        use es::request_op::Request as P;
        let request = if let Some(r) = &w.request_range {
            Some(P::RequestRange(r.into()))
        } else if let Some(r) = &w.request_put {
            Some(P::RequestPut(r.into()))
        } else if let Some(r) = &w.request_delete_range {
            Some(P::RequestDeleteRange(r.into()))
        } else {
            w.request_txn.as_ref().map(|r| P::RequestTxn(r.into()))
        };
        Self { request }
    }
}

impl TryFrom<es::RequestOp> for RequestOp {
    type Error = DecodeError;

    fn try_from(p: es::RequestOp) -> Result<Self, DecodeError> {
        use es::request_op::Request as P;
        Ok(match p.request {
            None => RequestOp::default(),
            Some(P::RequestRange(r)) => RangeRequest::try_from(r)?.into(),
            Some(P::RequestPut(r)) => PutRequest::try_from(r)?.into(),
            Some(P::RequestDeleteRange(r)) => DeleteRangeRequest::try_from(r)?.into(),
            Some(P::RequestTxn(r)) => TxnRequest::try_from(r)?.into(),
        })
    }
}

/// The first member set (range, put, delete range, txn) becomes the oneof, as for
/// [`RequestOp`].
impl From<&ResponseOp> for es::ResponseOp {
    fn from(w: &ResponseOp) -> Self {
        use es::response_op::Response as P;
        let response = if let Some(r) = &w.response_range {
            Some(P::ResponseRange(r.into()))
        } else if let Some(r) = &w.response_put {
            Some(P::ResponsePut(r.into()))
        } else if let Some(r) = &w.response_delete_range {
            Some(P::ResponseDeleteRange(r.into()))
        } else {
            w.response_txn.as_ref().map(|r| P::ResponseTxn(r.into()))
        };
        Self { response }
    }
}

impl TryFrom<es::ResponseOp> for ResponseOp {
    type Error = DecodeError;

    fn try_from(p: es::ResponseOp) -> Result<Self, DecodeError> {
        use es::response_op::Response as P;
        let mut op = ResponseOp::default();
        match p.response {
            None => {}
            Some(P::ResponseRange(r)) => op.response_range = Some(r.try_into()?),
            Some(P::ResponsePut(r)) => op.response_put = Some(r.try_into()?),
            Some(P::ResponseDeleteRange(r)) => op.response_delete_range = Some(r.try_into()?),
            Some(P::ResponseTxn(r)) => op.response_txn = Some(r.try_into()?),
        }
        Ok(op)
    }
}

/// The first member set (create, cancel, progress) becomes the oneof; with none, the oneof
/// is absent.
impl From<&WatchRequest> for es::WatchRequest {
    fn from(w: &WatchRequest) -> Self {
        use es::watch_request::RequestUnion as P;
        let request_union = if let Some(r) = &w.create_request {
            Some(P::CreateRequest(r.into()))
        } else if let Some(r) = &w.cancel_request {
            Some(P::CancelRequest(r.into()))
        } else {
            w.progress_request
                .as_ref()
                .map(|r| P::ProgressRequest(r.into()))
        };
        Self { request_union }
    }
}

impl TryFrom<es::WatchRequest> for WatchRequest {
    type Error = DecodeError;

    fn try_from(p: es::WatchRequest) -> Result<Self, DecodeError> {
        use es::watch_request::RequestUnion as P;
        let mut req = WatchRequest::default();
        match p.request_union {
            None => {}
            Some(P::CreateRequest(r)) => req.create_request = Some(r.try_into()?),
            Some(P::CancelRequest(r)) => req.cancel_request = Some(r.try_into()?),
            Some(P::ProgressRequest(r)) => req.progress_request = Some(r.try_into()?),
        }
        Ok(req)
    }
}

// Cluster: prost names `peerURLs` `peer_ur_ls`.

impl From<&Member> for es::Member {
    fn from(w: &Member) -> Self {
        Self {
            id: w.id,
            name: w.name.clone(),
            peer_ur_ls: w.peer_urls.clone(),
            client_ur_ls: w.client_urls.clone(),
            is_learner: w.is_learner,
        }
    }
}

impl TryFrom<es::Member> for Member {
    type Error = DecodeError;

    fn try_from(p: es::Member) -> Result<Self, DecodeError> {
        Ok(Self {
            id: p.id,
            name: p.name,
            peer_urls: p.peer_ur_ls,
            client_urls: p.client_ur_ls,
            is_learner: p.is_learner,
        })
    }
}

impl From<&MemberAddRequest> for es::MemberAddRequest {
    fn from(w: &MemberAddRequest) -> Self {
        Self {
            peer_ur_ls: w.peer_urls.clone(),
            is_learner: w.is_learner,
        }
    }
}

impl TryFrom<es::MemberAddRequest> for MemberAddRequest {
    type Error = DecodeError;

    fn try_from(p: es::MemberAddRequest) -> Result<Self, DecodeError> {
        Ok(Self {
            peer_urls: p.peer_ur_ls,
            is_learner: p.is_learner,
        })
    }
}

impl From<&MemberUpdateRequest> for es::MemberUpdateRequest {
    fn from(w: &MemberUpdateRequest) -> Self {
        Self {
            id: w.id,
            peer_ur_ls: w.peer_urls.clone(),
        }
    }
}

impl TryFrom<es::MemberUpdateRequest> for MemberUpdateRequest {
    type Error = DecodeError;

    fn try_from(p: es::MemberUpdateRequest) -> Result<Self, DecodeError> {
        Ok(Self {
            id: p.id,
            peer_urls: p.peer_ur_ls,
        })
    }
}

// Election observe: the request is a `LeaderRequest`.

impl From<&ObserveRequest> for el::LeaderRequest {
    fn from(w: &ObserveRequest) -> Self {
        (&w.0).into()
    }
}

impl TryFrom<el::LeaderRequest> for ObserveRequest {
    type Error = DecodeError;

    fn try_from(p: el::LeaderRequest) -> Result<Self, DecodeError> {
        p.try_into().map(ObserveRequest)
    }
}
