//! The committed protobuf code (`src/grpc/pb/*.rs`) is what `proto/*.proto` generates.
//!
//! The code is generated without `protoc`: protox (a protobuf compiler in Rust) parses the
//! vendored files into a descriptor set and prost-build turns that into Rust. Regenerate with
//!
//! ```text
//! ETCD_WIRE_PROTO_WRITE=1 cargo test -p etcd-wire --features grpc --test proto_fresh
//! ```

use std::path::{Path, PathBuf};

/// The packages generated, one file each in `src/grpc/pb/`.
const PACKAGES: [&str; 5] = [
    "authpb",
    "etcdserverpb",
    "mvccpb",
    "v3electionpb",
    "v3lockpb",
];

/// Generates every package's code: (package, code), sorted by package.
fn generate(crate_dir: &Path) -> Vec<(String, String)> {
    let proto = crate_dir.join("proto");
    let fds = protox::compile(["rpc.proto", "v3lock.proto", "v3election.proto"], [&proto])
        .expect("the vendored .proto files compile");
    let out = tempfile::tempdir().unwrap();
    prost_build::Config::new()
        // Every `bytes` field is a `bytes::Bytes`: moved, never copied, to and from the
        // gateway types.
        .bytes(["."])
        .out_dir(out.path())
        .compile_fds(fds)
        .expect("prost-build generates code");
    PACKAGES
        .iter()
        .map(|package| {
            let file = out.path().join(format!("{package}.rs"));
            let code = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{} not generated: {e}", file.display()));
            (package.to_string(), code)
        })
        .collect()
}

#[test]
fn generated_code_is_fresh() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let pb = crate_dir.join("src/grpc/pb");
    let write = std::env::var_os("ETCD_WIRE_PROTO_WRITE").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (package, code) in generate(&crate_dir) {
        let path = pb.join(format!("{package}.rs"));
        if write {
            std::fs::write(&path, &code).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != code {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "generated protobuf code is stale: {stale:?}; regenerate with \
         ETCD_WIRE_PROTO_WRITE=1 cargo test -p etcd-wire --features grpc --test proto_fresh"
    );
}

#[test]
fn generation_is_deterministic() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(generate(&crate_dir), generate(&crate_dir));
}
