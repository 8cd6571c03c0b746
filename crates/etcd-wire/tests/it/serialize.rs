//! Request bodies as we send them: int64s as strings, enums by name, base64 bytes, default
//! fields left out. And answers re-encoded exactly as the gateway wrote them.

use crate::fixtures::*;
use bytes::Bytes;
use etcd_wire::stream::StreamMessage;
use etcd_wire::*;
use serde_json::{json, Value};

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

#[test]
fn defaults_are_omitted() {
    assert_eq!(to_json(&RangeRequest::default()), "{}");
    assert_eq!(to_json(&PutRequest::default()), "{}");
    assert_eq!(to_json(&TxnRequest::default()), "{}");
    assert_eq!(to_json(&WatchCreateRequest::default()), "{}");
    assert_eq!(to_json(&LeaseGrantRequest::default()), "{}");
    assert_eq!(to_json(&AlarmRequest::default()), "{}");
    assert_eq!(to_json(&StatusRequest {}), "{}");
    assert_eq!(to_json(&RangeResponse::default()), "{}");
    assert_eq!(to_json(&WatchResponse::default()), "{}");
    assert_eq!(to_json(&Event::default()), r#"{"kv":{}}"#);
}

#[test]
fn range_request() {
    let req = RangeRequest {
        key: b("a"),
        range_end: Bytes::from_static(&[0]),
        limit: 10,
        revision: 5,
        sort_order: SortOrder::Descend,
        sort_target: SortTarget::Mod,
        serializable: true,
        keys_only: true,
        count_only: true,
        min_mod_revision: 1,
        max_mod_revision: 2,
        min_create_revision: 3,
        max_create_revision: i64::MAX,
    };
    assert_eq!(
        to_json(&req),
        r#"{"key":"YQ==","range_end":"AA==","limit":"10","revision":"5","sort_order":"DESCEND","sort_target":"MOD","serializable":true,"keys_only":true,"count_only":true,"min_mod_revision":"1","max_mod_revision":"2","min_create_revision":"3","max_create_revision":"9223372036854775807"}"#
    );
    // Default enum values (NONE, KEY) are left out like any default.
    let req = RangeRequest {
        key: b("foo"),
        sort_order: SortOrder::None,
        sort_target: SortTarget::Key,
        ..Default::default()
    };
    assert_eq!(to_json(&req), r#"{"key":"Zm9v"}"#);
}

#[test]
fn put_and_delete() {
    let req = PutRequest {
        key: Bytes::from_static(&[0xff, 0xfe, 0x00]),
        value: b(""),
        lease: 7587869151256374026,
        prev_kv: true,
        ..Default::default()
    };
    assert_eq!(
        to_json(&req),
        r#"{"key":"//4A","lease":"7587869151256374026","prev_kv":true}"#
    );
    let req = DeleteRangeRequest {
        key: b("dir/"),
        range_end: b("dir0"),
        prev_kv: false,
    };
    assert_eq!(
        to_json(&req),
        r#"{"key":"ZGlyLw==","range_end":"ZGlyMA=="}"#
    );
    let req = CompactionRequest {
        revision: 22,
        physical: true,
    };
    assert_eq!(to_json(&req), r#"{"revision":"22","physical":true}"#);
}

#[test]
fn txn_request_shapes() {
    let req = TxnRequest {
        compare: vec![
            // A set oneof member is sent even when it is 0 or empty.
            Compare::new("k", CompareResult::Equal, TargetUnion::Version(0)),
            Compare::new(
                "k",
                CompareResult::NotEqual,
                TargetUnion::Value(Bytes::new()),
            ),
            Compare {
                range_end: b("l"),
                ..Compare::new("k", CompareResult::Less, TargetUnion::ModRevision(-1))
            },
            Compare::new("k", CompareResult::Greater, TargetUnion::CreateRevision(3)),
            Compare::new("k", CompareResult::Equal, TargetUnion::Lease(9)),
            Compare {
                key: b("k"),
                ..Default::default()
            },
        ],
        success: vec![
            PutRequest {
                key: b("k"),
                value: b("v"),
                ..Default::default()
            }
            .into(),
            RangeRequest::default().into(),
            TxnRequest {
                failure: vec![DeleteRangeRequest {
                    key: b("k"),
                    ..Default::default()
                }
                .into()],
                ..Default::default()
            }
            .into(),
        ],
        failure: vec![],
    };
    let expected = json!({
        "compare": [
            {"key": "aw==", "version": "0"},
            {"result": "NOT_EQUAL", "target": "VALUE", "key": "aw==", "value": ""},
            {"result": "LESS", "target": "MOD", "key": "aw==", "mod_revision": "-1", "range_end": "bA=="},
            {"result": "GREATER", "target": "CREATE", "key": "aw==", "create_revision": "3"},
            {"target": "LEASE", "key": "aw==", "lease": "9"},
            {"key": "aw=="},
        ],
        "success": [
            {"request_put": {"key": "aw==", "value": "dg=="}},
            {"request_range": {}},
            {"request_txn": {"failure": [{"request_delete_range": {"key": "aw=="}}]}},
        ],
    });
    assert_eq!(serde_json::to_value(&req).unwrap(), expected);
    let back: TxnRequest = serde_json::from_value(expected).unwrap();
    assert_eq!(back, req);
    assert_eq!(back.compare[5].target_union, None);
}

#[test]
fn compare_with_two_targets_is_an_error() {
    let r = serde_json::from_value::<Compare>(
        json!({"key": "aw==", "version": "1", "mod_revision": "2"}),
    );
    assert!(r.unwrap_err().to_string().contains("more than one"));
}

#[test]
fn watch_requests() {
    let req = WatchRequest {
        create_request: Some(WatchCreateRequest {
            key: b("w/"),
            range_end: b("w0"),
            start_revision: 12,
            prev_kv: true,
            filters: vec![FilterType::NoPut, FilterType::NoDelete],
            watch_id: 3,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        to_json(&req),
        r#"{"create_request":{"key":"dy8=","range_end":"dzA=","start_revision":"12","filters":["NOPUT","NODELETE"],"prev_kv":true,"watch_id":"3"}}"#
    );
    let req = WatchRequest {
        progress_request: Some(WatchProgressRequest {}),
        ..Default::default()
    };
    assert_eq!(to_json(&req), r#"{"progress_request":{}}"#);
    let req = WatchRequest {
        cancel_request: Some(WatchCancelRequest { watch_id: 0 }),
        ..Default::default()
    };
    assert_eq!(to_json(&req), r#"{"cancel_request":{}}"#);
}

#[test]
fn uppercase_and_camel_case_names() {
    assert_eq!(
        to_json(&LeaseGrantRequest { ttl: 5, id: 0 }),
        r#"{"TTL":"5"}"#
    );
    assert_eq!(to_json(&LeaseKeepAliveRequest { id: -2 }), r#"{"ID":"-2"}"#);
    assert_eq!(
        to_json(&LeaseTimeToLiveRequest { id: 1, keys: true }),
        r#"{"ID":"1","keys":true}"#
    );
    assert_eq!(
        to_json(&MemberAddRequest {
            peer_urls: vec!["http://a:1".into()],
            is_learner: true
        }),
        r#"{"peerURLs":["http://a:1"],"isLearner":true}"#
    );
    assert_eq!(
        to_json(&MemberRemoveRequest { id: u64::MAX }),
        r#"{"ID":"18446744073709551615"}"#
    );
    assert_eq!(
        to_json(&AlarmRequest {
            action: AlarmAction::Activate,
            member_id: 1,
            alarm: AlarmType::NoSpace
        }),
        r#"{"action":"ACTIVATE","memberID":"1","alarm":"NOSPACE"}"#
    );
    assert_eq!(
        to_json(&MoveLeaderRequest { target_id: 2 }),
        r#"{"targetID":"2"}"#
    );
    assert_eq!(
        to_json(&AuthRoleGrantPermissionRequest {
            name: "r".into(),
            perm: Permission {
                perm_type: PermissionType::ReadWrite,
                key: b("a"),
                range_end: b("b")
            },
        }),
        r#"{"name":"r","perm":{"permType":"READWRITE","key":"YQ==","range_end":"Yg=="}}"#
    );
    // A required sub-message is always sent.
    assert_eq!(
        to_json(&AuthRoleGrantPermissionRequest::default()),
        r#"{"perm":{}}"#
    );
    assert_eq!(to_json(&ResignRequest::default()), r#"{"leader":{}}"#);
    assert_eq!(
        to_json(&AuthUserAddRequest {
            name: "u".into(),
            options: Some(UserAddOptions { no_password: true }),
            ..Default::default()
        }),
        r#"{"name":"u","options":{"no_password":true}}"#
    );
}

#[test]
fn lock_and_election_requests() {
    assert_eq!(
        to_json(&LockRequest {
            name: b("l"),
            lease: 4096
        }),
        r#"{"name":"bA==","lease":"4096"}"#
    );
    let leader = LeaderKey {
        name: b("e"),
        key: b("e/1"),
        rev: 20,
        lease: 1,
    };
    assert_eq!(
        to_json(&ProclaimRequest {
            leader,
            value: b("v")
        }),
        r#"{"leader":{"name":"ZQ==","key":"ZS8x","rev":"20","lease":"1"},"value":"dg=="}"#
    );
    assert_eq!(
        to_json(&CampaignRequest {
            name: b("e"),
            lease: 1,
            value: b("v")
        }),
        r#"{"name":"ZQ==","lease":"1","value":"dg=="}"#
    );
}

#[test]
fn paths() {
    assert_eq!(RangeRequest::PATH, "/kv/range");
    assert_eq!(TxnRequest::PATH, "/kv/txn");
    assert_eq!(LeaseTimeToLiveRequest::PATH, "/lease/timetolive");
    assert_eq!(MoveLeaderRequest::PATH, "/maintenance/transfer-leadership");
    assert_eq!(AuthUserChangePasswordRequest::PATH, "/auth/user/changepw");
    assert_eq!(etcd_wire::rpc::WATCH, "/watch");
    assert_eq!(etcd_wire::rpc::ELECTION_OBSERVE, "/election/observe");
}

/// Removes empty objects: Go sends `"header":{}` for a set but empty sub-message, which we
/// cannot tell from an absent one.
fn strip_empty_objects(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.values_mut().for_each(strip_empty_objects);
            map.retain(|_, v| !matches!(v, Value::Object(m) if m.is_empty()));
        }
        Value::Array(items) => items.iter_mut().for_each(strip_empty_objects),
        _ => {}
    }
}

fn same_as_gateway<T: serde::Serialize + serde::de::DeserializeOwned>(
    v: &str,
    name: &str,
    raw: &[u8],
) {
    let decoded: T = serde_json::from_slice(raw).unwrap_or_else(|e| panic!("{v}/{name}: {e}"));
    let mut original: Value = serde_json::from_slice(raw).unwrap();
    strip_empty_objects(&mut original);
    let mut ours = serde_json::to_value(&decoded).unwrap();
    strip_empty_objects(&mut ours);
    assert_eq!(ours, original, "{v}/{name}");
}

/// Every successful answer, decoded and encoded again, is what the gateway sent: same field
/// names, same string/number choices, same omitted defaults.
#[test]
fn answers_reencode_exactly() {
    for_each_version(|v| {
        let mut n = 0;
        for name in names(v) {
            let (path, status) = manifest(v, &name);
            if status != 200 || name.ends_with("_stream") {
                continue;
            }
            let raw = body(v, &name);
            let p = path.trim_start_matches("/v3");
            macro_rules! by_path {
                (
                    unary { $($req:ty => $resp:ty { $($_u:tt)* })* }
                    streaming { $($sreq:ty => $sresp:ty { $($_s:tt)* })* }
                ) => {
                    $(if p == <$req as Rpc>::PATH {
                        same_as_gateway::<<$req as Rpc>::Response>(v, &name, &raw);
                        n += 1;
                        continue;
                    })*
                };
            }
            if path == "/version" {
                same_as_gateway::<VersionResponse>(v, &name, &raw);
                continue;
            }
            etcd_wire::for_each_rpc!(by_path);
            panic!("{v}/{name}: no type for {path}");
        }
        assert!(n > 60, "{v}: {n}");

        // Streamed results too.
        fn results<T: serde::Serialize + serde::de::DeserializeOwned>(v: &str, name: &str) {
            for m in stream_messages(&stream_body(v, name)) {
                let mut env: Value = serde_json::from_slice(&m).unwrap();
                if let Some(result) = env.get_mut("result") {
                    let raw = serde_json::to_vec(result).unwrap();
                    same_as_gateway::<T>(v, name, &raw);
                }
            }
        }
        for name in [
            "watch_stream",
            "watch_multi_stream",
            "watch_compacted_stream",
            "auth_watch_invalid_token_stream",
        ] {
            results::<WatchResponse>(v, name);
        }
        results::<LeaseKeepAliveResponse>(v, "lease_keepalive_stream");
        results::<LeaderResponse>(v, "election_observe_stream");
        results::<SnapshotResponse>(v, "maintenance_snapshot_stream");
        let msgs = stream::<WatchResponse>(v, "watch_server_stopped_stream");
        if gateway_v2(v) {
            // v2 sends no error when the server goes away: the stream just stops.
            assert!(matches!(msgs.last(), Some(StreamMessage::Result(r)) if r.created));
        } else {
            assert!(matches!(msgs.last(), Some(StreamMessage::Error(_))));
        }
    });
}
