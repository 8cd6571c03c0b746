//! Watch streams recorded from real servers.

use crate::fixtures::*;
use etcd_wire::stream::StreamMessage;
use etcd_wire::*;

fn put_event(key: &str, create: i64, modr: i64, version: i64, value: &str) -> Event {
    Event {
        r#type: EventType::Put,
        kv: KeyValue {
            key: b(key),
            create_revision: create,
            mod_revision: modr,
            version,
            value: b(value),
            lease: 0,
        },
        prev_kv: None,
    }
}

fn delete_event(key: &str, modr: i64) -> Event {
    Event {
        r#type: EventType::Delete,
        kv: KeyValue {
            key: b(key),
            mod_revision: modr,
            ..Default::default()
        },
        prev_kv: None,
    }
}

#[test]
fn watch_with_prev_kv() {
    for_each_version(|v| {
        let msgs: Vec<WatchResponse> = stream_ok(v, "watch_stream");
        assert_eq!(msgs.len(), 5, "{v}: {msgs:#?}");

        // The first watcher of a stream has ID 0: absent on the wire.
        assert!(msgs[0].created);
        assert!(!msgs[0].canceled);
        assert_eq!(msgs[0].watch_id, 0);
        assert!(msgs[0].events.is_empty());
        assert_header(v, &msgs[0].header, 11);

        assert_header(v, &msgs[1].header, 12);
        assert_eq!(msgs[1].events, vec![put_event("w/1", 12, 12, 1, "a")]);
        assert!(!msgs[1].created);

        assert_header(v, &msgs[2].header, 13);
        let mut e = put_event("w/1", 12, 13, 2, "b");
        e.prev_kv = Some(put_event("w/1", 12, 12, 1, "a").kv);
        assert_eq!(msgs[2].events, vec![e]);

        // A DELETE event's kv has only the key and the deletion revision.
        assert_header(v, &msgs[3].header, 14);
        let mut e = delete_event("w/1", 14);
        e.prev_kv = Some(put_event("w/1", 12, 13, 2, "b").kv);
        assert_eq!(msgs[3].events, vec![e]);

        // Two events in one revision (one txn) come in one message.
        assert_header(v, &msgs[4].header, 15);
        assert_eq!(
            msgs[4].events,
            vec![
                put_event("w/2", 15, 15, 1, "c"),
                put_event("w/3", 15, 15, 1, "d")
            ]
        );
        assert!(msgs
            .iter()
            .all(|m| m.watch_id == 0 && m.compact_revision == 0 && !m.fragment));
    });
}

#[test]
fn two_watchers_progress_and_cancel() {
    for_each_version(|v| {
        let msgs: Vec<WatchResponse> = stream_ok(v, "watch_multi_stream");
        assert_eq!(msgs.len(), 5, "{v}: {msgs:#?}");
        assert_eq!((msgs[0].watch_id, msgs[0].created), (7, true));
        assert_eq!((msgs[1].watch_id, msgs[1].created), (8, true));
        // Progress notification: watch_id -1, the revision in the header, nothing else.
        assert_eq!(msgs[2].watch_id, -1);
        assert!(!msgs[2].created && !msgs[2].canceled && msgs[2].events.is_empty());
        assert_header(v, &msgs[2].header, 15);
        // Cancel answer: no reason given for a requested cancel.
        assert_eq!((msgs[3].watch_id, msgs[3].canceled), (7, true));
        assert_eq!(msgs[3].cancel_reason, "");
        // Watcher 8 filters PUTs out: only the three deletes of revision 17.
        assert_eq!(msgs[4].watch_id, 8);
        assert_header(v, &msgs[4].header, 17);
        assert_eq!(
            msgs[4].events,
            vec![
                delete_event("w/2", 17),
                delete_event("w/3", 17),
                delete_event("w/4", 17)
            ]
        );

        // The request stream decodes too: four WatchRequests in one body.
        let reqs: Vec<WatchRequest> = stream_messages(&request(v, "watch_multi_stream"))
            .iter()
            .map(|m| serde_json::from_slice(m).unwrap())
            .collect();
        assert_eq!(reqs.len(), 4);
        let second = reqs[1].create_request.as_ref().unwrap();
        assert_eq!(second.watch_id, 8);
        assert_eq!(second.filters, vec![FilterType::NoPut]);
        assert!(second.progress_notify && second.fragment);
        assert_eq!(reqs[2].progress_request, Some(WatchProgressRequest {}));
        assert_eq!(
            reqs[3].cancel_request,
            Some(WatchCancelRequest { watch_id: 7 })
        );
    });
}

#[test]
fn watch_from_compacted_revision() {
    for_each_version(|v| {
        let msgs: Vec<WatchResponse> = stream_ok(v, "watch_compacted_stream");
        assert_eq!(msgs.len(), 2, "{v}: {msgs:#?}");
        assert!(msgs[0].created);
        assert_header(v, &msgs[0].header, 22);
        // Then the cancel, whose header has no revision.
        assert!(msgs[1].canceled);
        assert!(!msgs[1].created);
        assert_eq!(msgs[1].compact_revision, 22);
        assert_eq!(msgs[1].header.revision, 0);
        assert_eq!(msgs[1].header.member_id, member_id(v));
    });
}

#[test]
fn watch_with_invalid_token_is_a_cancel_not_an_error() {
    // 3.4, and 3.5 again from 3.5.6: watch ID -1, Unauthenticated.
    for v in ["v3.4", "v3.5.30"] {
        let msgs: Vec<WatchResponse> = stream_ok(v, "auth_watch_invalid_token_stream");
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].watch_id, -1);
        assert!(msgs[0].created && msgs[0].canceled);
        assert_eq!(
            msgs[0].cancel_reason,
            "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"
        );
    }

    let msgs: Vec<WatchResponse> = stream_ok("v3.5", "auth_watch_invalid_token_stream");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].watch_id, 0);
    assert!(msgs[0].created && msgs[0].canceled);
    assert_eq!(
        msgs[0].cancel_reason,
        "rpc error: code = PermissionDenied desc = etcdserver: permission denied"
    );
}

#[test]
fn stream_errors() {
    for_each_version(|v| {
        if gateway_v2(v) {
            // An undecodable first message gets no answer at all (curl gave up: HTTP
            // status 000); the server going away under an open watch or before an
            // observe's first message, no error either: the stream just stops.
            for name in [
                "watch_bad_base64_stream",
                "election_observe_server_stopped_stream",
            ] {
                assert_eq!(manifest(v, name).1, 0, "{v}/{name}");
                assert!(stream_body(v, name).is_empty(), "{v}/{name}");
            }
            assert_eq!(manifest(v, "watch_server_stopped_stream").1, 200);
            let msgs: Vec<WatchResponse> = stream_ok(v, "watch_server_stopped_stream");
            assert_eq!(msgs.len(), 1);
            assert!(msgs[0].created);
            return;
        }
        // An undecodable request: a unary error body instead of a stream, HTTP 500.
        assert_eq!(manifest(v, "watch_bad_base64_stream").1, 500);
        let msgs = stream::<WatchResponse>(v, "watch_bad_base64_stream");
        assert_eq!(msgs.len(), 1);
        match &msgs[0] {
            StreamMessage::Error(s) => {
                assert_eq!(s.grpc_code(), Code::Unknown);
                assert_eq!(s.message, "illegal base64 data at input byte 0");
                assert_eq!(s.http_code, None);
            }
            other => panic!("{v}: {other:?}"),
        }

        // The server went away under an open watch: an in-stream error, HTTP 200.
        assert_eq!(manifest(v, "watch_server_stopped_stream").1, 200);
        let msgs = stream::<WatchResponse>(v, "watch_server_stopped_stream");
        assert_eq!(msgs.len(), 2);
        assert!(matches!(&msgs[0], StreamMessage::Result(r) if r.created));
        let expected = if v == "v3.4" {
            "transport is closing"
        } else {
            "error reading from server: EOF"
        };
        match &msgs[1] {
            StreamMessage::Error(s) => {
                assert_eq!(s.grpc_code(), Code::Unavailable);
                assert_eq!(s.http_code, Some(503));
                assert_eq!(s.message, expected);
            }
            other => panic!("{v}: {other:?}"),
        }

        // ... and before the first message of an observe: a unary error body, HTTP 503.
        assert_eq!(manifest(v, "election_observe_server_stopped_stream").1, 503);
        let msgs = stream::<LeaderResponse>(v, "election_observe_server_stopped_stream");
        let expected = if v == "v3.4" {
            "transport is closing"
        } else {
            "connection error: desc = \"error reading from server: EOF\""
        };
        match &msgs[..] {
            [StreamMessage::Error(s)] => {
                assert_eq!(s.grpc_code(), Code::Unavailable);
                assert_eq!(s.message, expected);
            }
            other => panic!("{v}: {other:?}"),
        }
    });
}
