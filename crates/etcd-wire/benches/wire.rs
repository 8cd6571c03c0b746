//! Micro-benchmarks of the hot paths that are ours alone: JSON encode/decode of the messages
//! every request sends or receives, and base64. `cargo bench -p etcd-wire`.
//!
//! Bodies are built with the crate's own serializers, which write what the gateway writes
//! (int64 as strings, bytes as padded base64, defaults left out).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use etcd_wire::stream::{parse_message, StreamMessage};
use etcd_wire::{
    codec, Event, KeyValue, PutRequest, PutResponse, RangeResponse, ResponseHeader, WatchResponse,
};
use std::hint::black_box;

const VALUE_SIZE: usize = 256;

fn value() -> Bytes {
    (0..VALUE_SIZE).map(|i| b'a' + (i % 26) as u8).collect()
}

fn header(revision: i64) -> ResponseHeader {
    ResponseHeader {
        cluster_id: 14841639068965178418,
        member_id: 10276657743932975437,
        revision,
        raft_term: 2,
    }
}

fn kv(i: usize) -> KeyValue {
    KeyValue {
        key: format!("bench/{i:08}").into(),
        create_revision: 1000 + i as i64,
        mod_revision: 1000 + i as i64,
        version: 1,
        value: value(),
        lease: 0,
    }
}

fn put(c: &mut Criterion) {
    let request = PutRequest {
        key: Bytes::from_static(b"bench/00000042"),
        value: value(),
        ..PutRequest::default()
    };
    let response = serde_json::to_vec(&PutResponse {
        header: header(123456),
        prev_kv: None,
    })
    .unwrap();
    let mut g = c.benchmark_group("put");
    g.bench_function("encode request", |b| {
        b.iter(|| serde_json::to_vec(black_box(&request)).unwrap())
    });
    g.bench_function("decode response", |b| {
        b.iter(|| etcd_wire::from_slice::<PutResponse>(black_box(&response)).unwrap())
    });
    g.finish();
}

fn range(c: &mut Criterion) {
    const KEYS: usize = 1000;
    let body = serde_json::to_vec(&RangeResponse {
        header: header(123456),
        kvs: (0..KEYS).map(kv).collect(),
        more: false,
        count: KEYS as i64,
    })
    .unwrap();
    let mut g = c.benchmark_group("range");
    g.throughput(Throughput::Elements(KEYS as u64));
    g.bench_function("decode 1000 key-values, serde", |b| {
        b.iter(|| {
            let r: RangeResponse = etcd_wire::from_slice(black_box(&body)).unwrap();
            assert_eq!(r.kvs.len(), KEYS);
            r
        })
    });
    // The hand-written decoder etcd-kv uses for ranges.
    g.bench_function("decode 1000 key-values, RangeResponse::from_slice", |b| {
        b.iter(|| {
            let r = RangeResponse::from_slice(black_box(&body)).unwrap();
            assert_eq!(r.kvs.len(), KEYS);
            r
        })
    });
    // serde without the per-message arena: one allocation per key and value.
    g.bench_function("decode 1000 key-values, no arena", |b| {
        b.iter(|| {
            let r: RangeResponse = serde_json::from_slice(black_box(&body)).unwrap();
            assert_eq!(r.kvs.len(), KEYS);
            r
        })
    });
    // Dropping the decoded key-values is part of a real range's cost, measured apart.
    g.bench_function("drop 1000 key-values", |b| {
        b.iter_batched(
            || etcd_wire::from_slice::<RangeResponse>(&body).unwrap(),
            drop,
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn watch(c: &mut Criterion) {
    let message = |events: usize| {
        let response = WatchResponse {
            header: header(123456),
            events: (0..events)
                .map(|i| Event {
                    kv: kv(i),
                    ..Event::default()
                })
                .collect(),
            ..WatchResponse::default()
        };
        let mut line = b"{\"result\":".to_vec();
        line.extend(serde_json::to_vec(&response).unwrap());
        line.push(b'}');
        line
    };
    let mut g = c.benchmark_group("watch");
    for events in [1, 64] {
        let line = message(events);
        g.throughput(Throughput::Elements(events as u64));
        g.bench_function(format!("decode message of {events} event(s)"), |b| {
            b.iter(
                || match parse_message::<WatchResponse>(black_box(&line)).unwrap() {
                    StreamMessage::Result(r) => r,
                    StreamMessage::Error(e) => panic!("{e}"),
                },
            )
        });
    }
    g.finish();
}

fn base64(c: &mut Criterion) {
    let raw = value();
    let text = codec::encode_base64(&raw);
    let mut g = c.benchmark_group("base64");
    g.throughput(Throughput::Bytes(VALUE_SIZE as u64));
    g.bench_function("encode 256 B", |b| {
        b.iter(|| codec::encode_base64(black_box(&raw)))
    });
    g.bench_function("decode 256 B", |b| {
        b.iter(|| codec::decode_base64_bytes(black_box(&text)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, put, range, watch, base64);
criterion_main!(benches);
