//! The `grpc` feature: every message survives gateway type → protobuf → bytes → protobuf →
//! gateway type with every field set; field numbers match hand-computed encodings; decoding
//! rejects what the JSON decoder rejects.

use bytes::Bytes;
use etcd_wire::grpc::pb::{etcdserverpb as es, mvccpb};
use etcd_wire::grpc::ProtoMessage;
use etcd_wire::*;
use proptest::prelude::*;
use prost::Message;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::OnceLock;

/// Field numbers of every message of the vendored `.proto` files, by lower-cased full name
/// (`etcdserverpb.hashkvrequest`): (all fields, fields outside a oneof).
type Descriptors = HashMap<String, (BTreeSet<i32>, BTreeSet<i32>)>;

/// The [`Descriptors`] of the vendored files, compiled once.
fn descriptors() -> &'static Descriptors {
    static DESCRIPTORS: OnceLock<Descriptors> = OnceLock::new();
    DESCRIPTORS.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
        let fds = protox::compile(["rpc.proto", "v3lock.proto", "v3election.proto"], [dir])
            .expect("the vendored .proto files compile");
        let mut map = HashMap::new();
        for file in fds.file {
            for message in &file.message_type {
                let fields = message.field.iter().map(|f| f.number()).collect();
                let plain = message
                    .field
                    .iter()
                    .filter(|f| f.oneof_index.is_none())
                    .map(|f| f.number())
                    .collect();
                let name = format!("{}.{}", file.package(), message.name()).to_lowercase();
                map.insert(name, (fields, plain));
            }
        }
        map
    })
}

/// Field numbers at the top level of an encoded message.
fn top_level_fields(mut bytes: &[u8]) -> BTreeSet<i32> {
    let mut fields = BTreeSet::new();
    while !bytes.is_empty() {
        let key = prost::encoding::decode_varint(&mut bytes).unwrap();
        fields.insert((key >> 3) as i32);
        let skip = match key & 7 {
            0 => {
                prost::encoding::decode_varint(&mut bytes).unwrap();
                0
            }
            1 => 8,
            2 => prost::encoding::decode_varint(&mut bytes).unwrap() as usize,
            5 => 4,
            other => panic!("wire type {other}"),
        };
        bytes = &bytes[skip..];
    }
    fields
}

/// The protobuf message name of `P` (`etcdserverpb.hashkvrequest`), from its Rust path.
fn proto_name<P>() -> String {
    let mut segments = std::any::type_name::<P>().rsplit("::");
    let (message, package) = (segments.next().unwrap(), segments.next().unwrap());
    format!("{package}.{message}").to_lowercase()
}

/// Gateway type → protobuf → bytes → protobuf → gateway type gives the value back, and
/// the encoding holds every field of the message (a oneof: one member), so every field of
/// `value` is set and carried.
fn roundtrip<T>(value: T)
where
    T: ProtoMessage + TryFrom<T::Proto, Error = DecodeError> + PartialEq + Debug,
    for<'a> T::Proto: From<&'a T>,
{
    let bytes = T::Proto::from(&value).encode_to_vec();
    let name = proto_name::<T::Proto>();
    let (all, plain) = descriptors()
        .get(&name)
        .unwrap_or_else(|| panic!("no message {name}"));
    let present = top_level_fields(&bytes);
    let missing: Vec<_> = plain.difference(&present).collect();
    assert!(
        missing.is_empty(),
        "{name}: fields {missing:?} not set in {value:?}"
    );
    assert!(
        present.is_subset(all),
        "{name}: unknown fields in {present:?}"
    );
    if all.len() > plain.len() {
        assert!(present.len() > plain.len(), "{name}: no oneof member set");
    }
    let decoded = T::Proto::decode(&bytes[..]).unwrap();
    assert_eq!(T::try_from(decoded).unwrap(), value, "{name}");
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn header() -> ResponseHeader {
    ResponseHeader {
        cluster_id: u64::MAX,
        member_id: 2,
        revision: 3,
        raft_term: 4,
    }
}

fn kv(key: &str) -> KeyValue {
    KeyValue {
        key: b(key),
        create_revision: 1,
        mod_revision: 2,
        version: 3,
        value: b("value"),
        lease: -4,
    }
}

fn range_request() -> RangeRequest {
    RangeRequest {
        key: b("a"),
        range_end: b("b"),
        limit: 1,
        revision: 2,
        sort_order: SortOrder::Descend,
        sort_target: SortTarget::Value,
        serializable: true,
        keys_only: true,
        count_only: true,
        min_mod_revision: 3,
        max_mod_revision: 4,
        min_create_revision: 5,
        max_create_revision: 6,
    }
}

fn range_response() -> RangeResponse {
    RangeResponse {
        header: header(),
        kvs: vec![kv("a"), kv("b")],
        more: true,
        count: 7,
    }
}

fn put_request() -> PutRequest {
    PutRequest {
        key: b("k"),
        value: b("v"),
        lease: 5,
        prev_kv: true,
        ignore_value: true,
        ignore_lease: true,
    }
}

fn put_response() -> PutResponse {
    PutResponse {
        header: header(),
        prev_kv: Some(kv("k")),
    }
}

fn delete_request() -> DeleteRangeRequest {
    DeleteRangeRequest {
        key: b("a"),
        range_end: b("\0"),
        prev_kv: true,
    }
}

fn delete_response() -> DeleteRangeResponse {
    DeleteRangeResponse {
        header: header(),
        deleted: 2,
        prev_kvs: vec![kv("a"), kv("b")],
    }
}

fn compare(target_union: TargetUnion) -> Compare {
    Compare {
        range_end: b("z"),
        ..Compare::new("k", CompareResult::NotEqual, target_union)
    }
}

fn txn_request() -> TxnRequest {
    TxnRequest {
        compare: vec![
            compare(TargetUnion::Version(0)),
            compare(TargetUnion::CreateRevision(1)),
            compare(TargetUnion::ModRevision(2)),
            compare(TargetUnion::Value(Bytes::new())),
            compare(TargetUnion::Lease(3)),
        ],
        success: vec![range_request().into(), put_request().into()],
        failure: vec![
            delete_request().into(),
            TxnRequest {
                compare: vec![Compare::default()],
                success: vec![RequestOp::default()],
                failure: vec![put_request().into()],
            }
            .into(),
        ],
    }
}

fn txn_response() -> TxnResponse {
    TxnResponse {
        header: header(),
        succeeded: true,
        responses: vec![
            ResponseOp {
                response_range: Some(range_response()),
                ..ResponseOp::default()
            },
            ResponseOp {
                response_put: Some(put_response()),
                ..ResponseOp::default()
            },
            ResponseOp {
                response_delete_range: Some(delete_response()),
                ..ResponseOp::default()
            },
            ResponseOp {
                response_txn: Some(TxnResponse {
                    responses: vec![ResponseOp::default()],
                    ..TxnResponse::default()
                }),
                ..ResponseOp::default()
            },
        ],
    }
}

fn watch_create() -> WatchCreateRequest {
    WatchCreateRequest {
        key: b("a"),
        range_end: b("b"),
        start_revision: 1,
        progress_notify: true,
        filters: vec![FilterType::NoDelete, FilterType::NoPut],
        prev_kv: true,
        watch_id: 2,
        fragment: true,
    }
}

fn event(r#type: EventType) -> Event {
    Event {
        r#type,
        kv: kv("a"),
        prev_kv: Some(kv("a")),
    }
}

fn watch_response() -> WatchResponse {
    WatchResponse {
        header: header(),
        watch_id: -1,
        created: true,
        canceled: true,
        compact_revision: 3,
        cancel_reason: "reason".into(),
        fragment: true,
        events: vec![event(EventType::Put), event(EventType::Delete)],
    }
}

fn leader_key() -> LeaderKey {
    LeaderKey {
        name: b("e"),
        key: b("e/1"),
        rev: 1,
        lease: 2,
    }
}

fn member(id: u64) -> Member {
    Member {
        id,
        name: "m".into(),
        peer_urls: vec!["http://a:2380".into(), "http://b:2380".into()],
        client_urls: vec!["http://a:2379".into()],
        is_learner: true,
    }
}

fn permission() -> Permission {
    Permission {
        perm_type: PermissionType::ReadWrite,
        key: b("a"),
        range_end: b("b"),
    }
}

/// Round trips of the given values.
macro_rules! roundtrips {
    ($($value:expr),+ $(,)?) => {$( roundtrip($value); )+};
}

#[test]
fn kv_and_txn_messages_roundtrip() {
    roundtrips!(
        header(),
        kv("k"),
        event(EventType::Delete),
        range_request(),
        range_response(),
        put_request(),
        put_response(),
        delete_request(),
        delete_response(),
        CompactionRequest {
            revision: 1,
            physical: true,
        },
        CompactionResponse { header: header() },
        txn_request(),
        txn_response(),
        RequestOp::from(range_request()),
        RequestOp::from(put_request()),
        RequestOp::from(delete_request()),
        RequestOp::from(txn_request()),
    );
    for union in [
        TargetUnion::Version(1),
        TargetUnion::CreateRevision(2),
        TargetUnion::ModRevision(3),
        TargetUnion::Value(b("v")),
        TargetUnion::Lease(4),
    ] {
        // The conversion does not check that target and value agree; `Mod` (not the
        // default) lets every field show.
        roundtrip(Compare {
            result: CompareResult::Greater,
            target: CompareTarget::Mod,
            ..compare(union)
        });
    }
    for response in txn_response().responses {
        roundtrip(response);
    }
}

#[test]
fn watch_messages_roundtrip() {
    roundtrips!(
        WatchRequest {
            create_request: Some(watch_create()),
            ..WatchRequest::default()
        },
        WatchRequest {
            cancel_request: Some(WatchCancelRequest { watch_id: 3 }),
            ..WatchRequest::default()
        },
        WatchRequest {
            progress_request: Some(WatchProgressRequest {}),
            ..WatchRequest::default()
        },
        watch_create(),
        WatchCancelRequest { watch_id: 3 },
        WatchProgressRequest {},
        watch_response(),
    );
}

#[test]
fn lease_lock_and_election_messages_roundtrip() {
    roundtrips!(
        LeaseGrantRequest { ttl: 60, id: 7 },
        LeaseGrantResponse {
            header: header(),
            id: 7,
            ttl: 60,
            error: "e".into(),
        },
        LeaseRevokeRequest { id: 7 },
        LeaseRevokeResponse { header: header() },
        LeaseKeepAliveRequest { id: 7 },
        LeaseKeepAliveResponse {
            header: header(),
            id: 7,
            ttl: 60,
        },
        LeaseTimeToLiveRequest { id: 7, keys: true },
        LeaseTimeToLiveResponse {
            header: header(),
            id: 7,
            ttl: -1,
            granted_ttl: 60,
            keys: vec![b("a"), b("b")],
        },
        LeaseLeasesRequest {},
        LeaseStatus { id: 7 },
        LeaseLeasesResponse {
            header: header(),
            leases: vec![LeaseStatus { id: 7 }, LeaseStatus { id: 8 }],
        },
        LockRequest {
            name: b("l"),
            lease: 7,
        },
        LockResponse {
            header: header(),
            key: b("l/7"),
        },
        UnlockRequest { key: b("l/7") },
        UnlockResponse { header: header() },
        CampaignRequest {
            name: b("e"),
            lease: 7,
            value: b("v"),
        },
        CampaignResponse {
            header: header(),
            leader: leader_key(),
        },
        leader_key(),
        LeaderRequest { name: b("e") },
        ObserveRequest(LeaderRequest { name: b("e") }),
        LeaderResponse {
            header: header(),
            kv: Some(kv("e/1")),
        },
        ResignRequest {
            leader: leader_key(),
        },
        ResignResponse { header: header() },
        ProclaimRequest {
            leader: leader_key(),
            value: b("v"),
        },
        ProclaimResponse { header: header() },
    );
}

#[test]
fn auth_messages_roundtrip() {
    roundtrips!(
        AuthEnableRequest {},
        AuthEnableResponse { header: header() },
        AuthDisableRequest {},
        AuthDisableResponse { header: header() },
        AuthStatusRequest {},
        AuthStatusResponse {
            header: header(),
            enabled: true,
            auth_revision: 9,
        },
        AuthenticateRequest {
            name: "root".into(),
            password: "pw".into(),
        },
        AuthenticateResponse {
            header: header(),
            token: "t".into(),
        },
        UserAddOptions { no_password: true },
        AuthUserAddRequest {
            name: "u".into(),
            password: "pw".into(),
            options: Some(UserAddOptions { no_password: true }),
            hashed_password: "$2a$".into(),
        },
        AuthUserAddResponse { header: header() },
        AuthUserGetRequest { name: "u".into() },
        AuthUserGetResponse {
            header: header(),
            roles: vec!["r".into(), "s".into()],
        },
        AuthUserListRequest {},
        AuthUserListResponse {
            header: header(),
            users: vec!["u".into()],
        },
        AuthUserDeleteRequest { name: "u".into() },
        AuthUserDeleteResponse { header: header() },
        AuthUserChangePasswordRequest {
            name: "u".into(),
            password: "pw".into(),
            hashed_password: "$2a$".into(),
        },
        AuthUserChangePasswordResponse { header: header() },
        AuthUserGrantRoleRequest {
            user: "u".into(),
            role: "r".into(),
        },
        AuthUserGrantRoleResponse { header: header() },
        AuthUserRevokeRoleRequest {
            name: "u".into(),
            role: "r".into(),
        },
        AuthUserRevokeRoleResponse { header: header() },
        AuthRoleAddRequest { name: "r".into() },
        AuthRoleAddResponse { header: header() },
        AuthRoleGetRequest { role: "r".into() },
        AuthRoleGetResponse {
            header: header(),
            perm: vec![permission(), Permission::default()],
        },
        AuthRoleListRequest {},
        AuthRoleListResponse {
            header: header(),
            roles: vec!["r".into()],
        },
        AuthRoleDeleteRequest { role: "r".into() },
        AuthRoleDeleteResponse { header: header() },
        permission(),
        AuthRoleGrantPermissionRequest {
            name: "r".into(),
            perm: permission(),
        },
        AuthRoleGrantPermissionResponse { header: header() },
        AuthRoleRevokePermissionRequest {
            role: "r".into(),
            key: b("a"),
            range_end: b("b"),
        },
        AuthRoleRevokePermissionResponse { header: header() },
    );
}

#[test]
fn cluster_and_maintenance_messages_roundtrip() {
    roundtrips!(
        member(1),
        MemberAddRequest {
            peer_urls: vec!["http://c:2380".into()],
            is_learner: true,
        },
        MemberAddResponse {
            header: header(),
            member: member(3),
            members: vec![member(1), member(3)],
        },
        MemberRemoveRequest { id: 3 },
        MemberRemoveResponse {
            header: header(),
            members: vec![member(1)],
        },
        MemberUpdateRequest {
            id: 1,
            peer_urls: vec!["http://d:2380".into()],
        },
        MemberUpdateResponse {
            header: header(),
            members: vec![member(1)],
        },
        MemberListRequest { linearizable: true },
        MemberListResponse {
            header: header(),
            members: vec![member(1), member(2)],
        },
        MemberPromoteRequest { id: 2 },
        MemberPromoteResponse {
            header: header(),
            members: vec![member(2)],
        },
        StatusRequest {},
        StatusResponse {
            header: header(),
            version: "3.6.0".into(),
            db_size: 1,
            leader: 2,
            raft_index: 3,
            raft_term: 4,
            raft_applied_index: 5,
            errors: vec!["alarm".into()],
            db_size_in_use: 6,
            is_learner: true,
            storage_version: "3.6.0".into(),
            db_size_quota: 7,
            downgrade_info: Some(DowngradeInfo {
                enabled: true,
                target_version: "3.5.0".into(),
            }),
        },
        DowngradeInfo {
            enabled: true,
            target_version: "3.5.0".into(),
        },
        AlarmRequest {
            action: AlarmAction::Deactivate,
            member_id: 1,
            alarm: AlarmType::Corrupt,
        },
        AlarmMember {
            member_id: 1,
            alarm: AlarmType::NoSpace,
        },
        AlarmResponse {
            header: header(),
            alarms: vec![AlarmMember {
                member_id: 1,
                alarm: AlarmType::NoSpace,
            }],
        },
        DefragmentRequest {},
        DefragmentResponse { header: header() },
        HashRequest {},
        HashResponse {
            header: header(),
            hash: u32::MAX,
        },
        HashKvRequest { revision: 5 },
        HashKvResponse {
            header: header(),
            hash: 1,
            compact_revision: 2,
            hash_revision: 3,
        },
        SnapshotRequest {},
        SnapshotResponse {
            header: header(),
            remaining_bytes: 10,
            blob: b("blob"),
            version: "3.6.0".into(),
        },
        MoveLeaderRequest { target_id: 2 },
        MoveLeaderResponse { header: header() },
        DowngradeRequest {
            action: DowngradeAction::Cancel,
            version: "3.5".into(),
        },
        DowngradeResponse {
            header: header(),
            version: "3.6".into(),
        },
    );
}

/// The transport's view: `Rpc::to_proto` / `Rpc::from_proto`.
#[test]
fn rpc_and_stream_rpc_convert() {
    let put = put_request();
    let message: es::PutRequest = put.to_proto();
    assert_eq!(message.key, put.key);
    let answer =
        es::PutResponse::decode(&es::PutResponse::from(&put_response()).encode_to_vec()[..]);
    assert_eq!(
        PutRequest::from_proto(answer.unwrap()).unwrap(),
        put_response()
    );
    let observe = ObserveRequest(LeaderRequest { name: b("e") });
    assert_eq!(StreamRpc::to_proto(&observe).name, b("e"));
    let watch = es::WatchResponse::from(&watch_response());
    assert_eq!(
        <WatchRequest as StreamRpc>::from_proto(watch).unwrap(),
        watch_response()
    );
}

/// Hand-computed protobuf encodings: a wrong field number in the vendored files, or a
/// field converted to the wrong protobuf field, fails here.
#[test]
fn field_numbers_match_hand_encodings() {
    // PutRequest: key = 1, value = 2, lease = 3, prev_kv = 4, ignore_value = 5,
    // ignore_lease = 6.
    let bytes: &[u8] = b"\x0a\x03foo\x12\x03bar\x18\x05\x20\x01\x28\x01\x30\x01";
    let put = PutRequest {
        key: b("foo"),
        value: b("bar"),
        lease: 5,
        prev_kv: true,
        ignore_value: true,
        ignore_lease: true,
    };
    assert_eq!(put.to_proto().encode_to_vec(), bytes);
    let decoded = PutRequest::try_from(es::PutRequest::decode(bytes).unwrap()).unwrap();
    assert_eq!(decoded, put);

    // LeaseGrantRequest: TTL = 1, ID = 2.
    let grant = LeaseGrantRequest { ttl: 60, id: 7 };
    assert_eq!(grant.to_proto().encode_to_vec(), b"\x08\x3c\x10\x07");

    // Compare: result = 1, target = 2, key = 3, mod_revision = 6, range_end = 64 (key
    // 64 << 3 | 2 = 514, varint 0x82 0x04).
    let compare = Compare {
        result: CompareResult::Greater,
        target: CompareTarget::Mod,
        key: b("k"),
        range_end: b("z"),
        target_union: Some(TargetUnion::ModRevision(5)),
    };
    let bytes: &[u8] = b"\x08\x01\x10\x02\x1a\x01k\x30\x05\x82\x04\x01z";
    assert_eq!(es::Compare::from(&compare).encode_to_vec(), bytes);
    assert_eq!(
        Compare::try_from(es::Compare::decode(bytes).unwrap()).unwrap(),
        compare
    );

    // WatchResponse: header = 1 (revision = 3), watch_id = 2, events = 11; Event: type = 1,
    // kv = 2; KeyValue: key = 1.
    let bytes: &[u8] = b"\x0a\x02\x18\x09\x10\x01\x5a\x07\x08\x01\x12\x03\x0a\x01a";
    let watch = WatchResponse::try_from(es::WatchResponse::decode(bytes).unwrap()).unwrap();
    let expected = WatchResponse {
        header: ResponseHeader {
            revision: 9,
            ..ResponseHeader::default()
        },
        watch_id: 1,
        events: vec![Event {
            r#type: EventType::Delete,
            kv: KeyValue {
                key: b("a"),
                ..KeyValue::default()
            },
            prev_kv: None,
        }],
        ..WatchResponse::default()
    };
    assert_eq!(watch, expected);
}

#[test]
fn a_key_value_needs_a_key() {
    let answer = es::RangeResponse {
        kvs: vec![mvccpb::KeyValue {
            value: b("v"),
            ..mvccpb::KeyValue::default()
        }],
        ..es::RangeResponse::default()
    };
    let err = RangeRequest::from_proto(answer).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Invalid {
                message: "mvccpb.KeyValue",
                field: "key",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "invalid protobuf mvccpb.KeyValue: key is empty"
    );
    // The same in the other places a key-value can be.
    let answer = es::PutResponse {
        prev_kv: Some(mvccpb::KeyValue::default()),
        ..es::PutResponse::default()
    };
    assert!(PutRequest::from_proto(answer).is_err());
}

#[test]
fn an_event_needs_its_key_value() {
    let answer = es::WatchResponse {
        events: vec![mvccpb::Event::default()],
        ..es::WatchResponse::default()
    };
    let err = WatchRequest::from_proto(answer).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Invalid {
                message: "mvccpb.Event",
                field: "kv",
                ..
            }
        ),
        "{err}"
    );
    // A key-value without a key is refused inside an event too.
    let answer = es::WatchResponse {
        events: vec![mvccpb::Event {
            kv: Some(mvccpb::KeyValue::default()),
            ..mvccpb::Event::default()
        }],
        ..es::WatchResponse::default()
    };
    assert!(WatchRequest::from_proto(answer).is_err());
}

#[test]
fn an_unknown_enum_number_is_an_error() {
    let answer = es::AlarmResponse {
        alarms: vec![es::AlarmMember {
            member_id: 1,
            alarm: 99,
        }],
        ..es::AlarmResponse::default()
    };
    let err = AlarmRequest::from_proto(answer).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::UnknownEnum {
                enum_name: "AlarmType",
                value: 99,
                ..
            }
        ),
        "{err}"
    );
    let event = mvccpb::Event {
        r#type: 2,
        kv: Some(mvccpb::KeyValue::from(&kv("a"))),
        prev_kv: None,
    };
    assert!(Event::try_from(event).is_err());
}

/// With several members of a oneof set, the first (in the proto's order) is sent.
#[test]
fn several_oneof_members_send_the_first() {
    let op = RequestOp {
        request_put: Some(put_request()),
        request_txn: Some(TxnRequest::default()),
        ..RequestOp::default()
    };
    let back = RequestOp::try_from(es::RequestOp::from(&op)).unwrap();
    assert_eq!(back, RequestOp::from(put_request()));
    let none = es::RequestOp::from(&RequestOp::default());
    assert!(none.request.is_none());
    let watch = WatchRequest {
        cancel_request: Some(WatchCancelRequest { watch_id: 1 }),
        progress_request: Some(WatchProgressRequest {}),
        ..WatchRequest::default()
    };
    assert!(matches!(
        es::WatchRequest::from(&watch).request_union,
        Some(es::watch_request::RequestUnion::CancelRequest(_))
    ));
}

/// Bytes move from the protobuf message into the gateway type without a copy.
#[test]
fn bytes_are_not_copied() {
    let value = Bytes::from(vec![7u8; 1024]);
    let answer = es::RangeResponse {
        kvs: vec![mvccpb::KeyValue {
            key: b("k"),
            value: value.clone(),
            ..mvccpb::KeyValue::default()
        }],
        ..es::RangeResponse::default()
    };
    let range = RangeRequest::from_proto(answer).unwrap();
    assert_eq!(range.kvs[0].value.as_ptr(), value.as_ptr());
    let put = PutRequest {
        value: value.clone(),
        ..put_request()
    };
    assert_eq!(put.to_proto().value.as_ptr(), value.as_ptr());
}

fn any_bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..16).prop_map(Bytes::from)
}

fn any_key_value() -> impl Strategy<Value = KeyValue> {
    (
        proptest::collection::vec(any::<u8>(), 1..16),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any_bytes(),
        any::<i64>(),
    )
        .prop_map(|(key, c, m, v, value, lease)| KeyValue {
            key: key.into(),
            create_revision: c,
            mod_revision: m,
            version: v,
            value,
            lease,
        })
}

fn any_header() -> impl Strategy<Value = ResponseHeader> {
    (any::<u64>(), any::<u64>(), any::<i64>(), any::<u64>()).prop_map(|(c, m, r, t)| {
        ResponseHeader {
            cluster_id: c,
            member_id: m,
            revision: r,
            raft_term: t,
        }
    })
}

fn any_compare() -> impl Strategy<Value = Compare> {
    let union = prop_oneof![
        any::<i64>().prop_map(TargetUnion::Version),
        any::<i64>().prop_map(TargetUnion::CreateRevision),
        any::<i64>().prop_map(TargetUnion::ModRevision),
        any_bytes().prop_map(TargetUnion::Value),
        any::<i64>().prop_map(TargetUnion::Lease),
    ];
    (
        0..4i64,
        0..5i64,
        any_bytes(),
        any_bytes(),
        proptest::option::of(union),
    )
        .prop_map(|(result, target, key, range_end, target_union)| Compare {
            result: CompareResult::from_i32(result).unwrap(),
            target: CompareTarget::from_i32(target).unwrap(),
            key,
            range_end,
            target_union,
        })
}

/// Transactions nested up to three deep, each operation one oneof member.
fn any_txn() -> impl Strategy<Value = TxnRequest> {
    let leaf = prop_oneof![
        (any_bytes(), any_bytes(), any::<i64>(), any::<bool>()).prop_map(|(key, end, limit, s)| {
            RequestOp::from(RangeRequest {
                key,
                range_end: end,
                limit,
                serializable: s,
                ..RangeRequest::default()
            })
        }),
        (any_bytes(), any_bytes(), any::<i64>()).prop_map(|(key, value, lease)| {
            RequestOp::from(PutRequest {
                key,
                value,
                lease,
                ..PutRequest::default()
            })
        }),
        (any_bytes(), any::<bool>()).prop_map(|(key, prev_kv)| {
            RequestOp::from(DeleteRangeRequest {
                key,
                prev_kv,
                ..DeleteRangeRequest::default()
            })
        }),
        Just(RequestOp::default()),
    ];
    let ops = leaf.prop_recursive(3, 24, 4, |inner| {
        (
            proptest::collection::vec(any_compare(), 0..3),
            proptest::collection::vec(inner.clone(), 0..3),
            proptest::collection::vec(inner, 0..3),
        )
            .prop_map(|(compare, success, failure)| {
                RequestOp::from(TxnRequest {
                    compare,
                    success,
                    failure,
                })
            })
    });
    (
        proptest::collection::vec(any_compare(), 0..4),
        proptest::collection::vec(ops.clone(), 0..4),
        proptest::collection::vec(ops, 0..4),
    )
        .prop_map(|(compare, success, failure)| TxnRequest {
            compare,
            success,
            failure,
        })
}

/// Gateway type → protobuf → bytes → protobuf → gateway type, for any value.
fn through_bytes<T>(value: &T) -> T
where
    T: ProtoMessage + TryFrom<T::Proto, Error = DecodeError>,
    for<'a> T::Proto: From<&'a T>,
{
    let bytes = T::Proto::from(value).encode_to_vec();
    T::try_from(T::Proto::decode(&bytes[..]).unwrap()).unwrap()
}

proptest! {
    #[test]
    fn key_values_roundtrip(kv in any_key_value()) {
        prop_assert_eq!(through_bytes(&kv), kv);
    }

    #[test]
    fn range_responses_roundtrip(
        header in any_header(),
        kvs in proptest::collection::vec(any_key_value(), 0..8),
        more in any::<bool>(),
        count in any::<i64>(),
    ) {
        let range = RangeResponse { header, kvs, more, count };
        prop_assert_eq!(through_bytes(&range), range);
    }

    #[test]
    fn txn_requests_roundtrip(txn in any_txn()) {
        prop_assert_eq!(through_bytes(&txn), txn);
    }

    #[test]
    fn watch_requests_roundtrip(
        which in 0..4u8,
        key in any_bytes(),
        start in any::<i64>(),
        filters in proptest::collection::vec(0..2i64, 0..3),
        id in any::<i64>(),
    ) {
        let mut watch = WatchRequest::default();
        match which {
            0 => watch.create_request = Some(WatchCreateRequest {
                key,
                start_revision: start,
                filters: filters.into_iter().map(|f| FilterType::from_i32(f).unwrap()).collect(),
                watch_id: id,
                ..WatchCreateRequest::default()
            }),
            1 => watch.cancel_request = Some(WatchCancelRequest { watch_id: id }),
            2 => watch.progress_request = Some(WatchProgressRequest {}),
            _ => {}
        }
        prop_assert_eq!(through_bytes(&watch), watch);
    }

    #[test]
    fn watch_responses_roundtrip(
        header in any_header(),
        id in any::<i64>(),
        flags in any::<(bool, bool, bool)>(),
        compact_revision in any::<i64>(),
        cancel_reason in ".{0,8}",
        events in proptest::collection::vec(
            (any::<bool>(), any_key_value(), proptest::option::of(any_key_value())),
            0..6,
        ),
    ) {
        let watch = WatchResponse {
            header,
            watch_id: id,
            created: flags.0,
            canceled: flags.1,
            fragment: flags.2,
            compact_revision,
            cancel_reason,
            events: events
                .into_iter()
                .map(|(delete, kv, prev_kv)| Event {
                    r#type: if delete { EventType::Delete } else { EventType::Put },
                    kv,
                    prev_kv,
                })
                .collect(),
        };
        prop_assert_eq!(through_bytes(&watch), watch);
    }
}
