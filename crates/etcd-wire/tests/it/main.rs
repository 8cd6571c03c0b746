//! etcd-wire's integration tests: answers recorded from real etcd 3.4 and 3.5 servers
//! (`tests/fixtures/`, re-recorded by `tests/fixtures/record.sh`), property tests of the
//! encoding rules, the stream decoder under every chunking, and (feature `grpc`) the
//! protobuf conversions.

mod admin;
mod fast;
mod fixtures;
mod fuzz;
#[cfg(feature = "grpc")]
mod grpc;
mod kv;
mod lease;
mod perf;
mod props;
mod serialize;
mod stream_split;
mod watch;
