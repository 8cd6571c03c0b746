//! `RangeResponse::from_slice`, the hand-written decoder of large ranges, agrees with serde
//! on everything: the recorded answers, generated ones, and corrupted ones.

use crate::fixtures::{body, for_each_version, names};
use bytes::Bytes;
use etcd_wire::{KeyValue, RangeResponse, ResponseHeader};
use proptest::prelude::*;

/// Same value for a body serde accepts, an error for one it refuses.
fn agrees(body: &[u8]) -> Result<(), TestCaseError> {
    let serde = serde_json::from_slice::<RangeResponse>(body).ok();
    let fast = RangeResponse::from_slice(body).ok();
    prop_assert_eq!(fast, serde, "{}", String::from_utf8_lossy(body));
    Ok(())
}

#[test]
fn recorded_range_answers() {
    for_each_version(|version| {
        let mut seen = 0;
        for name in names(version) {
            // Every successful kv answer of the recordings; errors and other messages too,
            // which must fail or decode the same way.
            let unary = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/fixtures/{version}/{name}.json"));
            if !unary.is_file() {
                continue; // a streamed answer
            }
            let raw = body(version, &name);
            agrees(&raw).unwrap();
            if name.starts_with("kv_range") {
                seen += 1;
            }
        }
        assert!(seen >= 5, "{version}: only {seen} range answers recorded");
    });
}

fn key_value() -> impl Strategy<Value = KeyValue> {
    (
        // etcd keys are never empty (and an empty one does not decode).
        proptest::collection::vec(any::<u8>(), 1..24),
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
    )
        .prop_map(|(key, value, create, modified, version, lease)| KeyValue {
            key: Bytes::from(key),
            create_revision: create,
            mod_revision: modified,
            version,
            value: Bytes::from(value),
            lease,
        })
}

fn range_response() -> impl Strategy<Value = RangeResponse> {
    (
        proptest::collection::vec(key_value(), 0..20),
        any::<(u64, u64, i64, u64)>(),
        any::<bool>(),
        any::<i64>(),
    )
        .prop_map(
            |(kvs, (cluster_id, member_id, revision, raft_term), more, count)| RangeResponse {
                header: ResponseHeader {
                    cluster_id,
                    member_id,
                    revision,
                    raft_term,
                },
                kvs,
                more,
                count,
            },
        )
}

proptest! {
    #[test]
    fn generated_answers_decode_exactly(r in range_response()) {
        let body = serde_json::to_vec(&r).unwrap();
        prop_assert_eq!(RangeResponse::from_slice(&body).unwrap(), r);
    }

    #[test]
    fn corrupted_answers_agree_with_serde(
        r in range_response(),
        at in any::<proptest::sample::Index>(),
        byte in prop_oneof![
            Just(b'"'), Just(b'\\'), Just(b','), Just(b':'), Just(b'{'), Just(b'}'),
            Just(b'['), Just(b']'), Just(b' '), Just(b'-'), Just(b'0'), Just(b'9'),
            Just(b'.'), Just(b'='), Just(b'A'), Just(0u8), Just(0xffu8), any::<u8>()
        ],
        delete in any::<bool>(),
    ) {
        let mut body = serde_json::to_vec(&r).unwrap();
        let i = at.index(body.len());
        if delete {
            body.remove(i);
        } else {
            body[i] = byte;
        }
        agrees(&body)?;
    }
}
