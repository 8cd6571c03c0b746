//! The stream decoder yields the same messages however a recorded body is cut into chunks.

use crate::fixtures::*;
use bytes::Bytes;
use etcd_wire::stream::{parse_message, StreamDecoder, StreamMessage};
use etcd_wire::{DecodeError, WatchResponse};
use proptest::prelude::*;

/// Every streamed fixture with an answer: (version, name, body). (grpc-gateway v2 answers
/// some streams with nothing at all: `watch::stream_errors`.)
fn streamed() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    for_each_version(|v| {
        for name in names(v) {
            if name.ends_with("_stream") {
                let body = stream_body(v, &name);
                if body.is_empty() {
                    assert!(gateway_v2(v), "{v}/{name}: no answer recorded");
                    continue;
                }
                out.push((v, name, body));
            }
        }
    });
    assert!(out.len() >= 20);
    out
}

/// Feeds `chunks` to a decoder and collects every message, including the one `finish` gives.
fn decode_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    limit: usize,
) -> Result<Vec<Bytes>, DecodeError> {
    let mut d = StreamDecoder::new(limit);
    let mut out = Vec::new();
    for chunk in chunks {
        d.push(chunk)?;
        while let Some(m) = d.next_message()? {
            out.push(m);
        }
    }
    if let Some(m) = d.finish()? {
        out.push(m);
    }
    assert_eq!(d.buffered(), 0);
    Ok(out)
}

fn reference(body: &[u8]) -> Vec<Bytes> {
    decode_chunks([body], usize::MAX).unwrap()
}

#[test]
fn reference_messages_are_whole_json_lines() {
    for (v, name, body) in streamed() {
        let msgs = reference(&body);
        assert!(!msgs.is_empty(), "{v}/{name}");
        let lines: Vec<&[u8]> = body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(msgs.len(), lines.len(), "{v}/{name}");
        for (m, l) in msgs.iter().zip(lines) {
            assert_eq!(&m[..], l);
            serde_json::from_slice::<serde_json::Value>(m).unwrap();
        }
    }
}

#[test]
fn every_split_into_two_chunks() {
    for (v, name, body) in streamed() {
        if body.len() > 4096 {
            continue; // the snapshot: covered byte by byte and by random splits
        }
        let expected = reference(&body);
        for i in 0..=body.len() {
            let got = decode_chunks([&body[..i], &body[i..]], 1 << 20).unwrap();
            assert_eq!(got, expected, "{v}/{name} split at {i}");
        }
    }
}

#[test]
fn byte_by_byte() {
    for (v, name, body) in streamed() {
        let expected = reference(&body);
        let got = decode_chunks(body.chunks(1), 1 << 20).unwrap();
        assert_eq!(got, expected, "{v}/{name}");
    }
}

#[test]
fn split_watch_stream_decodes_to_the_same_responses() {
    for_each_version(|v| {
        let body = stream_body(v, "watch_stream");
        let whole: Vec<StreamMessage<WatchResponse>> = reference(&body)
            .iter()
            .map(|m| parse_message(m).unwrap())
            .collect();
        assert_eq!(whole.len(), 5);
        for size in [1, 2, 3, 7, 64, 500] {
            let got: Vec<StreamMessage<WatchResponse>> = decode_chunks(body.chunks(size), 1 << 20)
                .unwrap()
                .iter()
                .map(|m| parse_message(m).unwrap())
                .collect();
            assert_eq!(got, whole, "{v} chunks of {size}");
        }
    });
}

#[test]
fn message_over_the_limit_errors() {
    for (v, name, body) in streamed() {
        let msgs = reference(&body);
        let longest = msgs.iter().map(|m| m.len()).max().unwrap();
        // At the limit: fine, whatever the chunking.
        assert_eq!(
            decode_chunks([&body[..]], longest).unwrap(),
            msgs,
            "{v}/{name}"
        );
        assert_eq!(
            decode_chunks(body.chunks(1), longest).unwrap(),
            msgs,
            "{v}/{name}"
        );
        // One byte under: an error, never a truncated or skipped message.
        let limit = longest - 1;
        for chunking in [body.len(), 1, 5, 100] {
            let r = decode_chunks(body.chunks(chunking), limit);
            assert!(
                matches!(r, Err(DecodeError::MessageTooLarge { limit: l }) if l == limit),
                "{v}/{name} chunks of {chunking}: {r:?}"
            );
        }
    }
}

#[test]
fn unterminated_last_message_is_returned_by_finish() {
    for_each_version(|v| {
        let body = stream_body(v, "watch_stream");
        let trimmed = body.strip_suffix(b"\n").unwrap_or(&body);
        assert_eq!(decode_chunks([trimmed], 1 << 20).unwrap(), reference(&body));
    });
}

#[test]
fn crlf_and_blank_lines_are_tolerated() {
    for_each_version(|v| {
        let body = stream_body(v, "watch_multi_stream");
        let mut crlf = b"\r\n".to_vec();
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            crlf.extend_from_slice(line);
            crlf.extend_from_slice(b"\r\n\r\n");
        }
        assert_eq!(
            decode_chunks(crlf.chunks(3), 1 << 20).unwrap(),
            reference(&body)
        );
    });
}

fn split_at_points(body: &[u8], mut points: Vec<usize>) -> Vec<&[u8]> {
    for p in &mut points {
        *p %= body.len() + 1;
    }
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for p in points {
        chunks.push(&body[start..p]);
        start = p;
    }
    chunks.push(&body[start..]);
    chunks
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_multi_splits(points in proptest::collection::vec(any::<usize>(), 0..40)) {
        for (v, name, body) in streamed() {
            let chunks = split_at_points(&body, points.clone());
            let got = decode_chunks(chunks, 1 << 20).unwrap();
            prop_assert_eq!(got, reference(&body), "{}/{}", v, name);
        }
    }

    #[test]
    fn garbage_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut d = StreamDecoder::new(100);
        for c in &chunks {
            if d.push(c).is_err() {
                break;
            }
            while let Ok(Some(m)) = d.next_message() {
                let _ = parse_message::<WatchResponse>(&m);
            }
        }
    }
}
