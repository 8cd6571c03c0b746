//! Property tests of the encoding rules.

use bytes::Bytes;
use etcd_wire::*;
use proptest::prelude::*;
use serde_json::json;

fn roundtrip<T: serde::Serialize + serde::de::DeserializeOwned>(v: &T) -> T {
    serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
}

/// Enums: every (number, name) pair decodes both ways; anything else is an error.
macro_rules! enum_props {
    ($name:ident: $ty:ty, [$($num:literal => $text:literal),+ $(,)?]) => {
        proptest! {
            #[test]
            fn $name(n in any::<i64>(), s in "[A-Za-z_]{0,12}") {
                let known: &[(i64, &str)] = &[$(($num, $text)),+];
                for &(num, text) in known {
                    let by_name: $ty = serde_json::from_value(json!(text)).unwrap();
                    let by_num: $ty = serde_json::from_value(json!(num)).unwrap();
                    prop_assert_eq!(by_name, by_num);
                    prop_assert_eq!(by_name.as_str(), text);
                    prop_assert_eq!(i64::from(by_name.as_i32()), num);
                    prop_assert_eq!(serde_json::to_value(by_name).unwrap(), json!(text));
                }
                let r = serde_json::from_value::<$ty>(json!(n));
                prop_assert_eq!(r.is_ok(), known.iter().any(|&(num, _)| num == n));
                let r = serde_json::from_value::<$ty>(json!(s.clone()));
                prop_assert_eq!(r.is_ok(), known.iter().any(|&(_, text)| text == s));
                // Inside a message too: an unknown value fails the message, without panicking.
                let r = serde_json::from_value::<$ty>(json!(u64::MAX));
                prop_assert!(r.is_err());
            }
        }
    };
}

enum_props!(event_type: EventType, [0 => "PUT", 1 => "DELETE"]);
enum_props!(sort_order: SortOrder, [0 => "NONE", 1 => "ASCEND", 2 => "DESCEND"]);
enum_props!(sort_target: SortTarget, [0 => "KEY", 1 => "VERSION", 2 => "CREATE", 3 => "MOD", 4 => "VALUE"]);
enum_props!(compare_result: CompareResult, [0 => "EQUAL", 1 => "GREATER", 2 => "LESS", 3 => "NOT_EQUAL"]);
enum_props!(compare_target: CompareTarget, [0 => "VERSION", 1 => "CREATE", 2 => "MOD", 3 => "VALUE", 4 => "LEASE"]);
enum_props!(filter_type: FilterType, [0 => "NOPUT", 1 => "NODELETE"]);
enum_props!(permission_type: PermissionType, [0 => "READ", 1 => "WRITE", 2 => "READWRITE"]);
enum_props!(alarm_type: AlarmType, [0 => "NONE", 1 => "NOSPACE", 2 => "CORRUPT"]);
enum_props!(alarm_action: AlarmAction, [0 => "GET", 1 => "ACTIVATE", 2 => "DEACTIVATE"]);
enum_props!(downgrade_action: DowngradeAction, [0 => "VALIDATE", 1 => "ENABLE", 2 => "CANCEL"]);

#[test]
fn unknown_enum_in_a_message_is_an_error() {
    let r = from_slice::<WatchResponse>(br#"{"events":[{"type":"EXPIRE","kv":{"key":"YQ=="}}]}"#);
    assert!(matches!(r, Err(DecodeError::Json(_))), "{r:?}");
    let r = from_slice::<WatchResponse>(br#"{"events":[{"type":7}]}"#);
    assert!(r.is_err());
    let r = from_slice::<AlarmResponse>(br#"{"alarms":[{"alarm":"NOSPACE"},{"alarm":-1}]}"#);
    assert!(r.is_err());
}

proptest! {
    #[test]
    fn put_request_bytes_roundtrip(key in any::<Vec<u8>>(), value in any::<Vec<u8>>(), lease in any::<i64>()) {
        let req = PutRequest { key: Bytes::from(key), value: Bytes::from(value), lease, prev_kv: true, ..Default::default() };
        let json = serde_json::to_value(&req).unwrap();
        // Keys are standard padded base64 strings; empty ones are left out.
        match json.get("key") {
            Some(k) => prop_assert_eq!(k.as_str().unwrap(), base64_std(&req.key)),
            None => prop_assert!(req.key.is_empty()),
        }
        prop_assert_eq!(roundtrip(&req), req);
    }

    #[test]
    fn key_value_roundtrip(
        key in proptest::collection::vec(any::<u8>(), 1..64),
        value in any::<Vec<u8>>(),
        revs in any::<(i64, i64, i64, i64)>(),
    ) {
        let kv = KeyValue {
            key: Bytes::from(key),
            create_revision: revs.0,
            mod_revision: revs.1,
            version: revs.2,
            value: Bytes::from(value),
            lease: revs.3,
        };
        prop_assert_eq!(roundtrip(&kv), kv.clone());
        // Also through an event and a range response.
        let ev = Event { r#type: EventType::Delete, kv: kv.clone(), prev_kv: Some(kv.clone()) };
        prop_assert_eq!(roundtrip(&ev), ev);
        let rr = RangeResponse { kvs: vec![kv.clone(), kv], count: 2, ..Default::default() };
        prop_assert_eq!(roundtrip(&rr), rr);
    }

    #[test]
    fn base64_without_padding_is_accepted(data in proptest::collection::vec(any::<u8>(), 1..64)) {
        let unpadded = base64_std(&data).trim_end_matches('=').to_string();
        let kv: KeyValue = serde_json::from_value(json!({"key": unpadded, "value": base64_std(&data)})).unwrap();
        prop_assert_eq!(&kv.key[..], &data[..]);
        prop_assert_eq!(&kv.value[..], &data[..]);
        let ttl: LeaseTimeToLiveResponse = serde_json::from_value(json!({"keys": [unpadded, base64_std(&data)]})).unwrap();
        prop_assert_eq!(ttl.keys, vec![Bytes::from(data.clone()), Bytes::from(data)]);
    }

    #[test]
    fn invalid_base64_is_an_error(s in "[A-Za-z0-9+/=]{0,9}[^A-Za-z0-9+/=]") {
        let r = serde_json::from_value::<KeyValue>(json!({"key": s}));
        prop_assert!(r.is_err());
    }

    #[test]
    fn int64_as_string_or_number(n in any::<i64>()) {
        let from_str: ResponseHeader = serde_json::from_value(json!({"revision": n.to_string()})).unwrap();
        let from_num: ResponseHeader = serde_json::from_value(json!({"revision": n})).unwrap();
        prop_assert_eq!(from_str.revision, n);
        prop_assert_eq!(from_num.revision, n);
        // Out: always a string (or absent when 0).
        let out = serde_json::to_value(&from_num).unwrap();
        if n == 0 {
            prop_assert_eq!(out, json!({}));
        } else {
            prop_assert_eq!(out, json!({"revision": n.to_string()}));
        }
    }

    #[test]
    fn uint64_as_string_or_number(n in any::<u64>()) {
        let from_str: ResponseHeader = serde_json::from_value(json!({"cluster_id": n.to_string()})).unwrap();
        let from_num: ResponseHeader = serde_json::from_value(json!({"cluster_id": n})).unwrap();
        prop_assert_eq!(from_str.cluster_id, n);
        prop_assert_eq!(from_num.cluster_id, n);
        let m: Member = serde_json::from_value(json!({"ID": n.to_string()})).unwrap();
        prop_assert_eq!(m.id, n);
    }

    #[test]
    fn bad_integers_are_errors(s in "[0-9]{0,5}[a-z.-][0-9a-z]{0,4}") {
        // Digits then junk: never silently 0.
        prop_assume!(s.parse::<i64>().is_err() && !s.is_empty());
        let r = serde_json::from_value::<ResponseHeader>(json!({"revision": s}));
        prop_assert!(r.is_err());
    }

    #[test]
    fn arbitrary_json_never_panics(text in ".{0,200}") {
        let _ = from_slice::<RangeResponse>(text.as_bytes());
        let _ = from_slice::<WatchResponse>(text.as_bytes());
        let _ = from_slice::<TxnResponse>(text.as_bytes());
        let _ = from_slice::<Status>(text.as_bytes());
    }
}

fn base64_std(data: &[u8]) -> String {
    etcd_wire::codec::encode_base64(data)
}

#[test]
fn integer_edge_cases() {
    let h =
        |v: serde_json::Value| serde_json::from_value::<ResponseHeader>(json!({ "revision": v }));
    assert_eq!(h(json!("9223372036854775807")).unwrap().revision, i64::MAX);
    assert_eq!(h(json!("-9223372036854775808")).unwrap().revision, i64::MIN);
    assert!(h(json!("9223372036854775808")).is_err());
    assert!(h(json!(u64::MAX)).is_err());
    assert_eq!(h(json!(1e3)).unwrap().revision, 1000);
    assert_eq!(h(json!(-(2f64.powi(63)))).unwrap().revision, i64::MIN);
    // 2^63 as a float must not saturate to i64::MAX.
    assert!(h(json!(2f64.powi(63))).is_err());
    assert!(h(json!(1.5)).is_err());
    assert_eq!(h(json!(null)).unwrap().revision, 0);
    assert_eq!(h(json!("")).unwrap().revision, 0);
    let u =
        |v: serde_json::Value| serde_json::from_value::<ResponseHeader>(json!({ "raft_term": v }));
    assert_eq!(
        u(json!("18446744073709551615")).unwrap().raft_term,
        u64::MAX
    );
    assert!(u(json!(2f64.powi(64))).is_err());
    assert!(u(json!(-1)).is_err());
    assert!(u(json!("-1")).is_err());
}

#[test]
fn null_fields_decode_to_defaults() {
    let r: RangeResponse = serde_json::from_value(json!({
        "header": {"revision": null}, "kvs": [{"key": "YQ==", "value": null}], "more": null, "count": null
    }))
    .unwrap();
    assert_eq!(r.kvs[0].value, Bytes::new());
    assert!(!r.more);
    let t: LeaseTimeToLiveResponse = serde_json::from_value(json!({ "keys": null })).unwrap();
    assert!(t.keys.is_empty());
}

#[test]
fn a_key_value_needs_a_key() {
    // etcd never sends one without: refusing it bounds what a hostile answer costs decoded.
    for body in [
        r#"{"kvs":[{}]}"#,
        r#"{"kvs":[{"key":""}]}"#,
        r#"{"kvs":[{"key":null}]}"#,
    ] {
        assert!(
            from_slice::<RangeResponse>(body.as_bytes()).is_err(),
            "{body}"
        );
        assert!(
            RangeResponse::from_slice(body.as_bytes()).is_err(),
            "{body}"
        );
    }
    for body in [r#"{"events":[{}]}"#, r#"{"events":[{"kv":{}}]}"#] {
        assert!(
            from_slice::<WatchResponse>(body.as_bytes()).is_err(),
            "{body}"
        );
    }
}

#[test]
fn unknown_fields_are_ignored() {
    let r: RangeResponse = from_slice(
        br#"{"header":{"revision":"3","future":1},"kvs":[{"key":"YQ==","x":{"y":[1,2]}}],"new_field":"z"}"#,
    )
    .unwrap();
    assert_eq!(r.header.revision, 3);
    assert_eq!(&r.kvs[0].key[..], b"a");
}
