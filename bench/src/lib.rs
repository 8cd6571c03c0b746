//! The benchmark harness of `cargo xtask bench`: the workloads of `shared/bench-spec.md`,
//! written once against the [`BenchClient`] trait, with timing, CPU accounting and the JSON
//! output line.
//!
//! Three clients implement the trait: ours (etcd-kv) and the raw-gateway ceiling in the
//! `etcd-bench` binary, and the crates.io gRPC client `etcd-client` in the separate project
//! `bench/grpc`, which includes these very files with `#[path]` so the workloads are identical.
//!
//! ```no_run
//! use etcd_bench::{Options, Workload};
//! let opts = Options::parse(["--workload", "put-seq", "--n", "100"].map(String::from))?;
//! assert_eq!(opts.workloads, [Workload::PutSeq]);
//! # Ok::<(), String>(())
//! ```
//!
//! Files here refer to each other with `super::`, never `crate::`: they are also a module
//! of the gRPC benchmark binary.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cpu;
mod options;
mod report;
mod workloads;

pub use cpu::{process_cpu, server_cpu};
pub use etcd_test_support::procfs::{
    endpoint_port, raise_open_files_limit, rss_bytes, tcp_connections_to,
};
pub use options::{Options, RuntimeKind, Workload, USAGE};
pub use report::{Extra, Line};
pub use workloads::{
    key, main_with, run_all, run_workload, value, BenchCache, BenchClient, BoxError, NoCache, Res,
    Watcher, PREFIX,
};
