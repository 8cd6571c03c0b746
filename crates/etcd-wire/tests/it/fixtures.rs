//! Access to the answers recorded from real servers by `tests/fixtures/record.sh`.

use etcd_wire::stream::{parse_message, StreamDecoder, StreamMessage};
use etcd_wire::Status;
use serde::de::DeserializeOwned;
use std::path::PathBuf;

/// The recorded server versions: directory name and `etcdserver` version.
pub const VERSIONS: [(&str, &str); 3] =
    [("v3.4", "3.4.23"), ("v3.5", "3.5.1"), ("v3.5.30", "3.5.30")];

/// Whether a recorded server's gateway is grpc-gateway v2 (Debian's etcd 3.5.30, built
/// with etcd 3.6's gateway): other error bodies, stream errors and routing errors than v1's
/// (etcd 3.4.23 and 3.5.1 as etcd releases them).
pub fn gateway_v2(version: &str) -> bool {
    version == "v3.5.30"
}

/// Runs `f` for each recorded server version (directory name, e.g. "v3.4").
pub fn for_each_version(mut f: impl FnMut(&'static str)) {
    for (dir, _) in VERSIONS {
        f(dir);
    }
}

fn path(version: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(version)
        .join(file)
}

fn read(version: &str, file: &str) -> Vec<u8> {
    let p = path(version, file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// The manifest line of a call: (path, HTTP status).
pub fn manifest(version: &str, name: &str) -> (String, u16) {
    let text = String::from_utf8(read(version, "manifest.tsv")).unwrap();
    for line in text.lines() {
        let mut cols = line.split('\t');
        if cols.next() == Some(name) {
            let p = cols.next().unwrap().to_string();
            let status = cols.next().unwrap().parse().unwrap();
            return (p, status);
        }
    }
    panic!("{name} not in {version}/manifest.tsv")
}

/// Every call name in a version's manifest.
pub fn names(version: &str) -> Vec<String> {
    let text = String::from_utf8(read(version, "manifest.tsv")).unwrap();
    text.lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

/// The raw body of a unary answer.
pub fn body(version: &str, name: &str) -> Vec<u8> {
    read(version, &format!("{name}.json"))
}

/// The raw body of a streamed answer.
pub fn stream_body(version: &str, name: &str) -> Vec<u8> {
    read(version, &format!("{name}.txt"))
}

/// The request body that was sent.
pub fn request(version: &str, name: &str) -> Vec<u8> {
    read(version, &format!("{name}.req.json"))
}

/// A successful unary answer, decoded.
#[track_caller]
pub fn ok<T: DeserializeOwned>(version: &str, name: &str) -> T {
    let (_, status) = manifest(version, name);
    assert_eq!(status, 200, "{version}/{name}: HTTP status");
    etcd_wire::from_slice(&body(version, name)).unwrap_or_else(|e| panic!("{version}/{name}: {e}"))
}

/// A failed unary answer, decoded, with its HTTP status.
#[track_caller]
pub fn err(version: &str, name: &str) -> (Status, u16) {
    let (_, status) = manifest(version, name);
    assert_ne!(status, 200, "{version}/{name}: expected an error status");
    let s = etcd_wire::from_slice(&body(version, name))
        .unwrap_or_else(|e| panic!("{version}/{name}: {e}"));
    (s, status)
}

/// Asserts a failed unary answer's gRPC code and message.
#[track_caller]
pub fn assert_err(version: &str, name: &str, code: i32, message: &str) -> u16 {
    let (s, http) = err(version, name);
    assert_eq!(s.code, code, "{version}/{name}: {s}");
    assert_eq!(s.message, message, "{version}/{name}");
    http
}

/// Splits a streamed body into messages (whole body pushed at once).
pub fn stream_messages(body: &[u8]) -> Vec<bytes::Bytes> {
    let mut d = StreamDecoder::new(1 << 20);
    d.push(body).unwrap();
    let mut out = Vec::new();
    while let Some(m) = d.next_message().unwrap() {
        out.push(m);
    }
    if let Some(m) = d.finish().unwrap() {
        out.push(m);
    }
    out
}

/// A streamed answer, decoded.
#[track_caller]
pub fn stream<T: DeserializeOwned>(version: &str, name: &str) -> Vec<StreamMessage<T>> {
    stream_messages(&stream_body(version, name))
        .iter()
        .map(|m| parse_message(m).unwrap_or_else(|e| panic!("{version}/{name}: {e}")))
        .collect()
}

/// A streamed answer that holds only results, decoded.
#[track_caller]
pub fn stream_ok<T: DeserializeOwned + std::fmt::Debug>(version: &str, name: &str) -> Vec<T> {
    stream::<T>(version, name)
        .into_iter()
        .map(|m| match m {
            StreamMessage::Result(r) => r,
            StreamMessage::Error(s) => panic!("{version}/{name}: stream error {s}"),
        })
        .collect()
}

/// The recorded server's member ID (from `maintenance/status`).
pub fn member_id(version: &str) -> u64 {
    let s: etcd_wire::StatusResponse = ok(version, "maintenance_status");
    s.header.member_id
}

/// The recorded server's cluster ID.
pub fn cluster_id(version: &str) -> u64 {
    let s: etcd_wire::StatusResponse = ok(version, "maintenance_status");
    s.header.cluster_id
}

/// Asserts a header came from the recorded member, at `revision`.
#[track_caller]
pub fn assert_header(version: &str, h: &etcd_wire::ResponseHeader, revision: i64) {
    assert_eq!(h.member_id, member_id(version), "{version}: member_id");
    assert_eq!(h.cluster_id, cluster_id(version), "{version}: cluster_id");
    assert_ne!(h.member_id, 0);
    assert!(h.raft_term >= 2, "{version}: raft_term {}", h.raft_term);
    assert_eq!(h.revision, revision, "{version}: header revision");
}

/// `Bytes` from a string, for comparisons.
pub fn b(s: &str) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(s.as_bytes())
}
