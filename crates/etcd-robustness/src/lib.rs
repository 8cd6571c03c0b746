//! History-checked robustness scenarios: many clients work on a real 3-member etcd cluster
//! while a nemesis kills, freezes and partitions its members and breaks client connections;
//! everything the clients saw is recorded as a [`history::History`], the store's own history
//! is read back, and the checkers ([`check`]) decide whether the client and etcd kept their
//! promises: linearizable single-key operations, durable acknowledged writes, watches that
//! deliver every change exactly once in order, locks that exclude, leases that do not vanish
//! under a live keeper.
//!
//! ```no_run
//! use etcd_robustness::{check, history::History};
//!
//! let history: History = serde_json::from_str(&std::fs::read_to_string("history.json")?)?;
//! for anomaly in check::check(&history) {
//!     println!("{anomaly}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod check;
pub mod history;
pub mod nemesis;
pub mod proxy;
pub mod recorder;
pub mod report;
pub mod scenario;
pub mod store;
pub mod workload;
