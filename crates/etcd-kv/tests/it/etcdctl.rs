//! Interoperability with etcdctl (the gRPC client): what one writes, the other reads
//! byte-exact.

use crate::{etcdctl, key, setup};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// The `(key, value, version)` of each key-value in `etcdctl get ... -w json` output.
fn json_kvs(out: &[u8]) -> Vec<(Vec<u8>, Vec<u8>, i64)> {
    let doc: serde_json::Value = serde_json::from_slice(out).expect("etcdctl JSON");
    let Some(kvs) = doc.get("kvs").and_then(|k| k.as_array()) else {
        return Vec::new();
    };
    kvs.iter()
        .map(|kv| {
            let b64 = |field: &str| {
                kv.get(field)
                    .and_then(|v| v.as_str())
                    .map(|s| B64.decode(s).expect("base64"))
                    .unwrap_or_default()
            };
            let version = kv.get("version").and_then(|v| v.as_i64()).unwrap_or(0);
            (b64("key"), b64("value"), version)
        })
        .collect()
}

fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

#[tokio::test]
async fn written_by_etcdctl_read_by_the_client() {
    let (etcd, client, p) = setup!("etcdctl_to_client");
    let k = format!("{p}text");
    etcdctl(etcd, ["put", &k, "héllo wörld\twith\nnewline"]);
    let kv = client.get(&k).await.unwrap().expect("written by etcdctl");
    assert_eq!(kv.value(), "héllo wörld\twith\nnewline".as_bytes());
    assert_eq!(kv.version(), 1);

    // Non-UTF-8 key and value, passed to etcdctl as raw argument bytes.
    // (An argument cannot hold a NUL byte.)
    let bin_key = key(&p, [0xff, 0xfe, 0x01, 0x80]);
    let bin_value = [0xc3u8, 0x28, 0x01, 0xff, 0x7f];
    let out = etcd
        .etcdctl([os(b"put"), os(&bin_key), os(&bin_value)])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kv = client
        .get(&bin_key)
        .await
        .unwrap()
        .expect("binary key written by etcdctl");
    assert_eq!(kv.key(), bin_key.as_ref());
    assert_eq!(kv.value(), bin_value);

    // An empty value.
    let empty = format!("{p}empty");
    etcdctl(etcd, ["put", &empty, ""]);
    assert_eq!(client.get(&empty).await.unwrap().unwrap().value(), b"");

    // Deleted by etcdctl: gone for the client.
    etcdctl(etcd, ["del", &k]);
    assert_eq!(client.get(&k).await.unwrap(), None);
    let all = client.range(&p).prefix().await.unwrap();
    assert_eq!(all.count(), 2);
}

#[tokio::test]
async fn written_by_the_client_read_by_etcdctl() {
    let (etcd, client, p) = setup!("client_to_etcdctl");
    let k = format!("{p}text");
    client.put(&k, "plain text").await.unwrap();
    assert_eq!(
        etcdctl(etcd, ["get", &k, "--print-value-only"]),
        b"plain text\n"
    );

    // Binary: etcdctl's JSON output carries base64, checked byte for byte.
    let all: Vec<u8> = (0..=255u8).rev().collect();
    let cases: Vec<(Bytes, Bytes)> = vec![
        (key(&p, [0xff, 0x01, 0xfe]), Bytes::from(all.clone())),
        (key(&p, [0xff, 0x00, 0x00]), Bytes::from_static(b"\0")),
        (key(&p, [0x80]), Bytes::new()),
        (key(&p, "z-utf8-\u{1F980}"), Bytes::from("crab \u{1F980}")),
    ];
    for (k, v) in &cases {
        client.put(k, v).await.unwrap();
    }
    let out = etcdctl(etcd, ["get", "--prefix", &p, "-w", "json"]);
    let mut expected: Vec<(Vec<u8>, Vec<u8>, i64)> = cases
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec(), 1))
        .collect();
    expected.push((k.clone().into_bytes(), b"plain text".to_vec(), 1));
    expected.sort();
    assert_eq!(json_kvs(&out), expected);

    // One binary key by name (an argument cannot hold a NUL byte).
    let out = etcd
        .etcdctl([os(b"get"), os(&cases[0].0), os(b"-w"), os(b"json")])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_kvs(&out.stdout), [(cases[0].0.to_vec(), all, 1)]);

    // Deleted by the client: gone for etcdctl.
    let deleted = client.delete(&p).prefix().await.unwrap().deleted();
    assert_eq!(deleted, 5);
    let out = etcdctl(etcd, ["get", "--prefix", &p, "-w", "json"]);
    assert!(json_kvs(&out).is_empty());
}

#[tokio::test]
async fn etcdctl_sees_namespaced_keys_with_their_prefix() {
    let (etcd, client, p) = setup!("etcdctl_ns");
    let ns = client.with_namespace(&p);
    ns.put("k", "v").await.unwrap();
    let out = etcdctl(etcd, ["get", "--prefix", &p]);
    assert_eq!(out, format!("{p}k\nv\n").into_bytes());
}
