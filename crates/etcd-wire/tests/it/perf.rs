//! A large range answer (20,000 key-values) decodes completely and exactly. Its decoding
//! speed is measured by the benchmarks, not here.

use bytes::Bytes;
use etcd_wire::codec::encode_base64;
use etcd_wire::RangeResponse;

const N: usize = 20_000;

fn body() -> (Vec<u8>, Vec<(String, String)>) {
    let mut out = String::with_capacity(N * 300);
    let mut encoded = Vec::with_capacity(N);
    out.push_str(r#"{"header":{"cluster_id":"13455796455940752355","member_id":"443629905751424238","revision":"123456","raft_term":"7"},"kvs":["#);
    for i in 0..N {
        let key = format!("/registry/pods/namespace-{}/pod-{i:08}", i % 97);
        let value: Vec<u8> = (0..120).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        let (k, v) = (encode_base64(key.as_bytes()), encode_base64(&value));
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"key":"{k}","create_revision":"{}","mod_revision":"{}","version":"{}","value":"{v}","lease":"7587869151256374026"}}"#,
            1000 + i,
            100_000 + i,
            1 + i % 5
        ));
        encoded.push((k, v));
    }
    out.push_str(r#"],"count":"20000"}"#);
    (out.into_bytes(), encoded)
}

#[test]
fn range_of_20000_keys() {
    let (body, encoded) = body();
    let r: RangeResponse = etcd_wire::from_slice(&body).unwrap();
    assert_eq!(r.kvs.len(), N);
    assert_eq!(r.count, N as i64);
    assert_eq!(
        r.kvs[N - 1].key,
        Bytes::from(format!(
            "/registry/pods/namespace-{}/pod-{:08}",
            (N - 1) % 97,
            N - 1
        ))
    );
    assert_eq!(r.kvs[7].value.len(), 120);
    assert_eq!(r.kvs[7].lease, 7587869151256374026);
    for (kv, (k, v)) in r.kvs.iter().zip(&encoded) {
        assert_eq!(encode_base64(&kv.key), *k);
        assert_eq!(encode_base64(&kv.value), *v);
    }
}
