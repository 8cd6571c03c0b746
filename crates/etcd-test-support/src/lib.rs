//! Code that test binaries (and the benchmarks) of several crates share, in one private
//! crate instead of files included with `#[path]`:
//!
//! - [`counting_alloc`]: a counting global allocator, installed only by the test binaries that
//!   measure their heap (`install_counting_allocator!()`);
//! - [`fake`]: a misbehaving fake etcd gateway on loopback (garbage, hangs, truncation);
//! - [`capping`]: a proxy in front of a real gateway that refuses large range answers as
//!   gateways before etcd 3.4 did;
//! - [`procfs`]: what `/proc` says about this process (its TCP connections, resident memory,
//!   open-file limit), also used by `etcd-bench`.
//!
//! `publish = false`: a dev-dependency of the library crates, never a normal one (tidy
//! checks), and it depends on none of them, so it makes no cycle.
//!
//! ```
//! use etcd_test_support::counting_alloc::{peak_growth, reset_peak};
//!
//! etcd_test_support::install_counting_allocator!();
//!
//! fn main() {
//!     let baseline = reset_peak();
//!     let v = vec![0u8; 1 << 20];
//!     assert!(peak_growth(baseline) >= v.len());
//! }
//! ```
// The one exception, `counting_alloc`'s `GlobalAlloc` impl, allows it for itself.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod capping;
pub mod counting_alloc;
pub mod fake;
pub mod procfs;
