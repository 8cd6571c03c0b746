//! An async etcd v3 client over etcd's gRPC-JSON gateway (HTTP/1.1, the default) or, with
//! the cargo feature `grpc`, native gRPC (HTTP/2, [`ClientBuilder::protocol`] with
//! [`Protocol::Grpc`](Protocol)): one API, the same types and errors over both.
//!
//! [`Client`] is cheap to clone and every method takes `&self`. Simple calls are one await;
//! options go on `#[must_use]` builders that are awaited directly.
//!
//! ```no_run
//! use etcd_kv::{Client, Compare, TxnOp};
//!
//! # async fn demo() -> etcd_kv::Result<()> {
//! let client = Client::connect("http://127.0.0.1:2379").await?;
//!
//! client.put("config/mode", "active").await?;
//! if let Some(kv) = client.get("config/mode").await? {
//!     println!("mode = {}", kv.value_str().unwrap_or("<binary>"));
//! }
//!
//! // All keys under a prefix, at most 100, keys only.
//! let page = client.range("config/").prefix().limit(100).keys_only().await?;
//! println!("{} keys", page.count());
//!
//! // Compare-and-swap.
//! let swapped = client
//!     .txn()
//!     .when([Compare::value("config/mode").eq("active")])
//!     .and_then([TxnOp::put("config/mode", "draining")])
//!     .await?
//!     .succeeded();
//! assert!(swapped);
//! # Ok(()) }
//! ```
//!
//! A consistent local cache of a prefix ([`Client::cache`], [`Cache`]; the [`cache`] module
//! explains which read gives which guarantee) serves reads at memory speed.
//!
//! Answers print as text (`println!("{answer}")` on a [`TxnResponse`], a [`KeyValue`], a
//! [`WatchEvent`]...; values that are not UTF-8 as escaped bytes), and `?` works in lock
//! bodies ([`Client::with_lock`], [`Lock::try_run`]) on decoding errors and, through
//! [`Error::other`], on errors of your own.
//!
//! Beyond keys: transactions ([`Client::txn`]), paginated scans ([`Client::scan`]), watches
//! ([`Client::watch`] as a stream, or a callback with [`Watch::on_event`] and
//! [`Client::watch_ranges`], whose [`WatchHandle`] takes and drops key ranges while it runs;
//! a stream that heals after a compaction with [`Watch::resync_on_compaction`]),
//! bulk writes within the server's limits ([`Client::batch`]), atomic commits larger than
//! one transaction ([`Client::generations`]),
//! leases ([`Client::grant_lease`] and its [`LeaseHandle`], [`LeaseKeeper`]), locks, elections
//! (with [`Fenced`] writes, which a lost lock or leadership cannot make), sessions, sequences
//! and queues; cluster and maintenance calls ([`Client::status`],
//! [`Client::member_list`], [`Client::alarms`], [`Client::defragment`], [`Client::hash`],
//! [`Client::hash_kv`], [`Client::snapshot_to`] with its checksum verified); and auth
//! administration: [`Client::auth_enable`], [`Client::auth_disable`], [`Client::auth_status`],
//! users ([`Client::user_add`], [`Client::user_get`], [`Client::user_list`],
//! [`Client::user_delete`], [`Client::user_change_password`], [`Client::user_grant_role`],
//! [`Client::user_revoke_role`]) and roles ([`Client::role_add`], [`Client::role_get`],
//! [`Client::role_list`], [`Client::role_delete`], [`Client::role_grant_permission`],
//! [`Client::role_revoke_permission`]).
//!
//! # Members: how a client picks, keeps and leaves one
//!
//! - **Picks.** A client given several endpoints starts at a place of its own in the list
//!   (a process's clients in turn from a random place), so a fleet built with one list
//!   spreads over the members. [`ClientBuilder::prefer_first`] pins every client to the
//!   first endpoint that answers instead.
//! - **Keeps.** Every read, watch and keep-alive goes to that member while it answers: no
//!   per-request hopping, no extra connections.
//! - **Writes to the leader.** A write (put, delete, a txn that writes, a lease grant...)
//!   starts at the member found leading, which saves the hop a follower makes to hand it
//!   on (17 % of a put's latency on a 3-member etcd 3.5.30); the leader is found in the
//!   background, and until then, or after it fails, writes start where reads do. Only the
//!   start changes: a write whose fate is unknown is never retried. Off with
//!   [`ClientBuilder::leader_writes`]`(false)`, and by default with `prefer_first(true)`.
//! - **Leaves.** A call that cannot reach it, times out, or is refused for want of a leader
//!   moves on to the next endpoint in list order, within the call's deadline
//!   ([`ClientBuilder::deadline`], [`ClientBuilder::request_timeout`]); a write is moved
//!   only while it provably was not applied, otherwise it fails with
//!   [`Error::is_outcome_unknown`]. A watch or keep-alive stream moves when its member goes
//!   silent or loses its leader ([`ClientBuilder::watch_liveness`]) and resumes after the
//!   last revision it delivered.
//! - **Never backwards.** Every client keeps the newest revision it has seen in a
//!   key-value answer; a serializable read from a member behind it (one the client just
//!   moved to, lagging or cut off) is asked again, then of the next member, or fails with
//!   [`Error::Behind`]. Linearizable reads (the default) are never behind.
//! - **Follows the cluster.** [`ClientBuilder::auto_sync`] (off by default, as in Go)
//!   replaces the endpoint list every interval with the client URLs of the voting members
//!   (learners and members not yet started are skipped; the client keeps its URL scheme);
//!   [`Client::sync_endpoints`] does it once, [`Client::set_endpoints`] sets a list by
//!   hand. Calls in flight finish where they started, a kept endpoint keeps its
//!   connections, and streams move when their member stops.
//! - **Finds the cluster.** With the `srv` feature, `ClientBuilder::discovery` takes the
//!   endpoints from DNS SRV records (`_etcd-client-ssl._tcp.<domain>`,
//!   `_etcd-client._tcp.<domain>`) when connecting, as `etcdctl --discovery-srv` does.
//!
//! The knobs, on [`ClientBuilder`], and what each protects against:
//!
//! | knob | default | protects against |
//! |---|---|---|
//! | [`connect_timeout`](ClientBuilder::connect_timeout) | 3 s | a member that does not accept connections (a host gone, packets dropped) |
//! | [`request_timeout`](ClientBuilder::request_timeout) | 10 s | one attempt stuck on a member (frozen, partitioned) |
//! | [`deadline`](ClientBuilder::deadline) | 30 s | a call failing over for ever: retries included |
//! | [`retry`](ClientBuilder::retry) | [`RetryConfig::default`] | how often and how fast what is safe to repeat is repeated |
//! | [`watch_liveness`](ClientBuilder::watch_liveness) | 1 s idle, 1.5 s probe | a watch or keep-alive stream on a frozen, partitioned or leaderless member |
//! | [`tcp_keepalive`](ClientBuilder::tcp_keepalive) | 30 s | idle connections to a peer that vanished without closing them |
//! | [`http2_keep_alive`](ClientBuilder::http2_keep_alive) | off | (gRPC) a member that stops answering under open calls and streams, caught below the transport in interval + timeout |
//! | [`prefer_first`](ClientBuilder::prefer_first) | off | (off: a fleet loading the first member) |
//! | [`leader_writes`](ClientBuilder::leader_writes) | on (off with `prefer_first`) | a forwarding hop per write |
//! | [`auto_sync`](ClientBuilder::auto_sync) | off | an endpoint list that no longer matches the members |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

/// The repository's README, compiled as doctests (its example is a whole program).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}

mod auth;
mod backend;
mod batch;
pub mod cache;
mod claim;
mod client;
mod cluster;
mod compacted;
mod config;
mod election;
mod error;
#[cfg(test)]
mod error_tests;
mod fence;
mod floor;
mod generation;
mod key;
mod kv;
mod lease;
mod lock;
mod maintenance;
mod membership;
mod pager;
mod queue;
mod request;
mod scan;
mod sequence;
mod session;
mod txn;
mod types;
mod watch;

pub use auth::{
    AuthStatus, GrantPermission, Permission, PermissionType, RevokePermission, Role, User, UserAdd,
};
pub use batch::{Batch, BatchResult};
pub use cache::{
    AtRevision, Cache, CacheBuilder, CacheSnapshot, CacheSubscription, CacheUpdate, CacheView,
};
pub use client::{Client, ClientBuilder};
pub use cluster::{Alarm, AlarmType, Member, ServerStatus};
pub use config::{
    Limits, Liveness, StreamMode, StreamStats, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_TXN_OPS,
};
pub use election::{Campaign, Election, LeaderChanges, LeaderInfo, LeaderStream, Leadership};
pub use error::{Cause, Error, Result};
#[cfg(feature = "srv")]
#[cfg_attr(docsrs, doc(cfg(feature = "srv")))]
pub use etcd_transport::SrvDiscovery;
pub use etcd_transport::{redact_endpoint, Backoff, Protocol, RetryConfig, TlsConfig};
/// The gRPC code and status of a server's answer, as [`Error::status`] and [`Error::code`]
/// return them.
pub use etcd_wire::{Code, Status};
pub use fence::Fenced;
pub use generation::{Committed, GenerationView, Generations, DEFAULT_STAGING_TTL};
pub use key::{prefix_end, IntoBytes};
pub use kv::{
    Compact, Delete, DeleteResponse, Put, PutResponse, Range, RangeResponse, SortOrder, SortTarget,
};
pub use lease::{
    Lease, LeaseGrant, LeaseHandle, LeaseKeeper, LeaseLost, LeaseTimeToLive, LeaseTimeToLiveRequest,
};
pub use lock::{Lock, LockGuard};
pub use maintenance::{
    verify_snapshot, KvHash, SnapshotError, SnapshotInfo, StoreHash, SNAPSHOT_CHECKSUM_LEN,
};
pub use pager::{
    key_after, ClientPages, PageRequest, PageSource, Pager, DEFAULT_PAGE_SIZE, PROBE_PAGES,
};
pub use queue::{Queue, DEFAULT_PRIORITY};
pub use request::BoxFuture;
pub use scan::{PageStream, Scan, ScanStream};
pub use sequence::Sequence;
pub use session::{Session, SessionBuilder, DEFAULT_SESSION_TTL};
pub use txn::{Compare, CompareBuilder, Txn, TxnOp, TxnOpResponse, TxnResponse};
pub use types::{Header, KeyValue};
pub use watch::{
    EventKind, Watch, WatchEvent, WatchHandle, WatchRangeId, WatchResponse, WatchStream,
};
