//! KV and txn answers recorded from real servers.

use crate::fixtures::*;
use etcd_wire::*;

fn kv(key: &str, create: i64, modr: i64, version: i64, value: &str) -> KeyValue {
    KeyValue {
        key: b(key),
        create_revision: create,
        mod_revision: modr,
        version,
        value: b(value),
        lease: 0,
    }
}

#[test]
fn put() {
    for_each_version(|v| {
        let r: PutResponse = ok(v, "kv_put");
        assert_header(v, &r.header, 2);
        assert_eq!(r.prev_kv, None);

        let r: PutResponse = ok(v, "kv_put_prev_kv");
        assert_header(v, &r.header, 3);
        assert_eq!(r.prev_kv, Some(kv("foo", 2, 2, 1, "bar")));

        let r: PutResponse = ok(v, "kv_put_lease");
        assert_header(v, &r.header, 9);

        assert_eq!(
            assert_err(
                v,
                "kv_put_ignore_value_missing",
                3,
                "etcdserver: key not found"
            ),
            400
        );
        assert_eq!(
            assert_err(
                v,
                "kv_put_unknown_lease",
                5,
                "etcdserver: requested lease not found"
            ),
            404
        );
        assert_eq!(
            assert_err(
                v,
                "kv_put_nospace",
                8,
                "etcdserver: mvcc: database space exceeded"
            ),
            429
        );
    });
}

#[test]
fn range() {
    for_each_version(|v| {
        let r: RangeResponse = ok(v, "kv_range");
        assert_header(v, &r.header, 6);
        assert_eq!(r.kvs, vec![kv("foo", 2, 3, 2, "baz")]);
        assert_eq!(r.count, 1);
        assert!(!r.more);

        // limit 2, sorted by key descending: dir/c (empty value, so no "value" field), dir/b.
        let r: RangeResponse = ok(v, "kv_range_prefix");
        assert_eq!(
            r.kvs,
            vec![kv("dir/c", 6, 6, 1, ""), kv("dir/b", 5, 5, 1, "22")]
        );
        assert!(r.more);
        assert_eq!(r.count, 3);

        let r: RangeResponse = ok(v, "kv_range_count_only");
        assert!(r.kvs.is_empty());
        assert_eq!(r.count, 3);
        assert_header(v, &r.header, 6);

        let r: RangeResponse = ok(v, "kv_range_keys_only");
        let keys: Vec<_> = r.kvs.iter().map(|kv| kv.key.clone()).collect();
        assert_eq!(keys, vec![b("dir/a"), b("dir/b"), b("dir/c")]);
        assert!(r
            .kvs
            .iter()
            .all(|kv| kv.value.is_empty() && kv.version == 1));
        assert_eq!(r.count, 3);

        // No match: neither kvs nor count on the wire.
        let r: RangeResponse = ok(v, "kv_range_empty");
        assert_eq!(
            r,
            RangeResponse {
                header: r.header.clone(),
                ..Default::default()
            }
        );
        assert_header(v, &r.header, 6);

        let r: RangeResponse = ok(v, "kv_range_revision");
        assert_eq!(r.kvs, vec![kv("foo", 2, 2, 1, "bar")]);
        assert_header(v, &r.header, 6);

        // min_mod_revision 5, max_create_revision 6, sorted by mod revision descending;
        // count ignores the filters.
        let r: RangeResponse = ok(v, "kv_range_filters");
        assert_eq!(
            r.kvs,
            vec![kv("dir/c", 6, 6, 1, ""), kv("dir/b", 5, 5, 1, "22")]
        );
        assert_eq!(r.count, 3);

        let r: RangeResponse = ok(v, "auth_range_root");
        assert_eq!(r.kvs, vec![kv("foo", 2, 3, 2, "baz")]);
    });
}

#[test]
fn range_errors() {
    for_each_version(|v| {
        let http = assert_err(
            v,
            "kv_range_future",
            11,
            "etcdserver: mvcc: required revision is a future revision",
        );
        assert_eq!(http, 400);
        let http = assert_err(
            v,
            "kv_range_compacted",
            11,
            "etcdserver: mvcc: required revision has been compacted",
        );
        assert_eq!(http, 400);
        let (s, _) = err(v, "kv_range_compacted");
        assert_eq!(s.grpc_code(), Code::OutOfRange);
        assert!(s.details.is_empty());

        if gateway_v2(v) {
            // grpc-gateway v2 decodes with protojson, whose messages vary on purpose (a
            // space or a no-break space after "proto:"): never compare them whole.
            let (s, http) = err(v, "kv_range_bad_base64");
            assert_eq!((s.grpc_code(), http), (Code::InvalidArgument, 400));
            assert!(
                s.message
                    .contains(r#"invalid value for bytes field key: "!!notbase64""#),
                "{v}: {s}"
            );
            let (s, http) = err(v, "kv_range_bad_json");
            assert_eq!((s.grpc_code(), http), (Code::InvalidArgument, 400));
            assert!(s.message.contains("unexpected EOF"), "{v}: {s}");
        } else {
            assert_eq!(
                assert_err(
                    v,
                    "kv_range_bad_base64",
                    3,
                    "illegal base64 data at input byte 0"
                ),
                400
            );
            assert_eq!(assert_err(v, "kv_range_bad_json", 3, "unexpected EOF"), 400);
        }
    });
}

#[test]
fn delete_range() {
    for_each_version(|v| {
        let r: DeleteRangeResponse = ok(v, "kv_deleterange");
        assert_header(v, &r.header, 7);
        assert_eq!(r.deleted, 1);
        assert_eq!(r.prev_kvs, vec![kv("dir/c", 6, 6, 1, "")]);

        let r: DeleteRangeResponse = ok(v, "kv_deleterange_none");
        assert_header(v, &r.header, 7);
        assert_eq!(r.deleted, 0);
        assert!(r.prev_kvs.is_empty());
    });
}

#[test]
fn compaction() {
    for_each_version(|v| {
        let r: CompactionResponse = ok(v, "kv_compaction");
        assert_header(v, &r.header, 22);
        assert_err(
            v,
            "kv_compaction_again",
            11,
            "etcdserver: mvcc: required revision has been compacted",
        );
    });
}

#[test]
fn txn_success_with_every_op_kind() {
    for_each_version(|v| {
        let r: TxnResponse = ok(v, "kv_txn");
        assert_header(v, &r.header, 8);
        assert!(r.succeeded);
        assert_eq!(r.responses.len(), 4);

        // Headers inside a txn carry only the revision; the range ran before the put.
        let range = r.responses[0].response_range.as_ref().unwrap();
        assert_eq!(
            range.header,
            ResponseHeader {
                revision: 7,
                ..Default::default()
            }
        );
        assert_eq!(range.kvs, vec![kv("foo", 2, 3, 2, "baz")]);
        assert_eq!(range.count, 1);
        assert!(r.responses[0].response_put.is_none());

        let put = r.responses[1].response_put.as_ref().unwrap();
        assert_eq!(put.header.revision, 8);
        assert_eq!(put.prev_kv, None);

        let del = r.responses[2].response_delete_range.as_ref().unwrap();
        assert_eq!(del.header.revision, 8);
        assert_eq!(del.deleted, 1);
        assert_eq!(del.prev_kvs, vec![kv("dir/a", 4, 4, 1, "1")]);

        // The nested txn's own header is empty ({}).
        let nested = r.responses[3].response_txn.as_ref().unwrap();
        assert_eq!(nested.header, ResponseHeader::default());
        assert!(nested.succeeded);
        assert_eq!(nested.responses.len(), 1);
        assert_eq!(
            nested.responses[0]
                .response_put
                .as_ref()
                .unwrap()
                .header
                .revision,
            8
        );
    });
}

#[test]
fn txn_failure_branch() {
    for_each_version(|v| {
        let r: TxnResponse = ok(v, "kv_txn_failed");
        assert_header(v, &r.header, 8);
        assert!(!r.succeeded, "succeeded: false is omitted on the wire");
        assert_eq!(r.responses.len(), 2);
        let first = r.responses[0].response_range.as_ref().unwrap();
        assert_eq!(first.kvs, vec![kv("foo", 2, 3, 2, "baz")]);
        // An empty range is still a present response_range.
        let second = r.responses[1].response_range.as_ref().unwrap();
        assert!(second.kvs.is_empty());
        assert_eq!(second.count, 0);
    });
}

#[test]
fn txn_errors() {
    for_each_version(|v| {
        assert_eq!(
            assert_err(
                v,
                "kv_txn_too_many_ops",
                3,
                "etcdserver: too many operations in txn request"
            ),
            400
        );
        assert_err(
            v,
            "kv_txn_duplicate_key",
            3,
            "etcdserver: duplicate key given in txn request",
        );
    });
}

/// The txn request the server accepted decodes into our types with every compare shape.
#[test]
fn txn_request_fixture_decodes() {
    for_each_version(|v| {
        let req: TxnRequest = serde_json::from_slice(&request(v, "kv_txn")).unwrap();
        assert_eq!(
            req.compare,
            vec![
                Compare::new("foo", CompareResult::Equal, TargetUnion::Value(b("baz"))),
                Compare::new("foo", CompareResult::Greater, TargetUnion::ModRevision(1)),
                Compare {
                    range_end: b("dir0"),
                    ..Compare::new("dir/", CompareResult::NotEqual, TargetUnion::Version(0))
                },
                Compare::new("foo", CompareResult::Less, TargetUnion::CreateRevision(100)),
                Compare::new("foo", CompareResult::Equal, TargetUnion::Lease(0)),
            ]
        );
        assert_eq!(req.success.len(), 4);
        assert_eq!(
            req.success[0],
            RequestOp::from(RangeRequest {
                key: b("foo"),
                ..Default::default()
            })
        );
        assert_eq!(
            req.success[1],
            RequestOp::from(PutRequest {
                key: b("txn/1"),
                value: b("one"),
                ..Default::default()
            })
        );
        assert_eq!(
            req.success[2],
            RequestOp::from(DeleteRangeRequest {
                key: b("dir/a"),
                prev_kv: true,
                ..Default::default()
            })
        );
        let nested = req.success[3].request_txn.as_ref().unwrap();
        assert_eq!(
            nested.compare,
            vec![Compare::new(
                "txn/2",
                CompareResult::Equal,
                TargetUnion::Version(0)
            )]
        );
        assert_eq!(nested.failure.len(), 1);
        assert_eq!(req.failure.len(), 1);

        // And re-encodes to the same request.
        let again: TxnRequest =
            serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        assert_eq!(again, req);

        let many: TxnRequest = serde_json::from_slice(&request(v, "kv_txn_too_many_ops")).unwrap();
        assert_eq!(many.success.len(), 129);
    });
}

#[test]
fn range_request_fixtures_decode() {
    for_each_version(|v| {
        let r: RangeRequest = serde_json::from_slice(&request(v, "kv_range_prefix")).unwrap();
        assert_eq!(r.key, b("dir/"));
        assert_eq!(r.range_end, b("dir0"));
        assert_eq!(r.limit, 2);
        assert_eq!(r.sort_order, SortOrder::Descend);
        assert_eq!(r.sort_target, SortTarget::Key);
        // Numbers for int64s and enums, as the server also accepts.
        let r: RangeRequest = serde_json::from_slice(&request(v, "kv_range_filters")).unwrap();
        assert_eq!(r.min_mod_revision, 5);
        assert_eq!(r.max_create_revision, 6);
        assert_eq!(r.sort_order, SortOrder::Descend);
        assert_eq!(r.sort_target, SortTarget::Mod);
    });
}
