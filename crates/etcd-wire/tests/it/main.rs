//! etcd-wire's integration tests: answers recorded from real etcd 3.4 and 3.5 servers
//! (`tests/fixtures/`, re-recorded by `tests/fixtures/record.sh`), property tests of the
//! encoding rules, and the stream decoder under every chunking.

mod admin;
mod fast;
mod fixtures;
mod fuzz;
mod kv;
mod lease;
mod perf;
mod props;
mod serialize;
mod stream_split;
mod watch;
