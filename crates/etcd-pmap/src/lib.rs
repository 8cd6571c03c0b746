//! Typed persistent maps over etcd, with real transactions.
//!
//! A [`Table`] ("slot") is a typed map stored under a slot prefix: the slot index as a `u16`
//! big-endian, then the key encoded by its [`KeyCodec`] so that etcd's byte order is the
//! keys' order; values are encoded by a [`ValueCodec`] (JSON, CBOR, MessagePack,
//! FlatBuffers, your own functions). Slot 0 is the [catalog](Database::tables). A
//! [`Database`] may put everything under a key prefix.
//!
//! Write with [`Database::transact`], which commits (and retries conflicts) for you.
//! Transactions read one snapshot (pinned by their first read) and buffer their writes;
//! [`WriteTxn::commit`] sends everything as **one** etcd txn guarded by compares on all it
//! read, so a concurrent change makes it fail with [`Error::Conflict`] with nothing applied,
//! and [`Database::transact`] retries such conflicts. A transaction that cannot fit in one
//! etcd txn fails with [`Error::TooLarge`] before anything is sent.
//!
//! ```no_run
//! use etcd_pmap::{Database, MapUuidCbor, Table};
//! use futures_util::TryStreamExt;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! struct User {
//!     name: String,
//!     oid: uuid::Uuid,
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = etcd_kv::Client::connect("http://127.0.0.1:2379").await?;
//! let db = Database::builder(client).prefix("myapp/").build();
//! let users: MapUuidCbor<User> = Table::new(1, "users");
//! db.attach_table(&users).await?;
//! let users = &users;
//!
//! // Write in `db.transact`: it commits when the body returns Ok (and retries conflicts),
//! // like txaioetcd's `async with db.begin(write=True)`.
//! let user = User { name: "homer".into(), oid: uuid::Uuid::new_v4() };
//! let homer = &user;
//! db.transact(|txn| async move { users.put(&txn, &homer.oid, homer).await }).await?;
//!
//! // Read-modify-write, retried on conflict.
//! db.transact(|txn| async move {
//!     let rows: Vec<(uuid::Uuid, User)> = users.iter(&txn).try_collect().await?;
//!     for (oid, mut user) in rows {
//!         user.name = user.name.to_uppercase();
//!         users.put(&txn, &oid, &user).await?;
//!     }
//!     Ok(())
//! })
//! .await?;
//!
//! let txn = db.begin_read();
//! let all: Vec<(uuid::Uuid, User)> = users.iter(&txn).try_collect().await?;
//! println!("{} users", all.len());
//!
//! // By hand: nothing is written without `commit()`; a WriteTxn dropped with writes
//! // discards them, and panics in debug builds so that the lost writes are noticed.
//! let txn = db.begin_write();
//! users.remove(&txn, &user.oid).await?;
//! txn.commit().await?;
//! # Ok(()) }
//! ```
//!
//! # Borrowing in `transact` bodies
//!
//! The body of [`Database::transact`] is a closure that may run several times (once per
//! conflict retry), and each run returns an `async move` future. A table or a `String`
//! captured *by value* would be moved out of the closure on its first run, which rustc
//! refuses (E0507, "cannot move out of ..., a captured variable in an `FnMut` closure");
//! its hint to add `move` to the closure does not help. Bind references to names before
//! the call instead: `async move` then copies the references into each run, and the body
//! clones only what it must own:
//!
//! ```no_run
//! use etcd_pmap::{Database, MapStringString, Table};
//!
//! # async fn demo(db: Database) -> etcd_pmap::Result<()> {
//! let settings: MapStringString = Table::new(2, "settings");
//! let name = String::from("theme");
//! let defaults = vec!["light".to_string(), "dark".to_string()];
//! // References are `Copy`: every run of the body gets its own copy of them.
//! let (settings, name, defaults) = (&settings, &name, &defaults);
//! let previous = db
//!     .transact(|txn| async move {
//!         let old = settings.get(&txn, name).await?;
//!         // Clone what the body keeps or returns: the captured data stays borrowed.
//!         let new = old.clone().unwrap_or_else(|| defaults[0].clone());
//!         settings.put(&txn, name, &new).await?;
//!         Ok(old)
//!     })
//!     .await?;
//! println!("theme was {previous:?}");
//! # Ok(()) }
//! ```
//!
//! # A cached table
//!
//! [`Table::cache`] keeps a typed local copy of a table ([`TableCache`]): rows read at memory
//! speed at one revision, your own commits read back with
//! [`TableCache::get_at_least`], linearizable reads with [`TableCache::consistent_get`], and
//! typed updates from a snapshot ([`TableCache::snapshot_and_subscribe`]). Its guarantees are
//! etcd-kv's `Cache`'s (docs/cache.md has the table).
//!
//! # Conflicts
//!
//! What a commit checks, exactly:
//!
//! * every key read (by `get`, `contains`, `insert`, `remove`, index lookups, and the old
//!   rows and unique-index entries read to maintain indexes): if found, that its
//!   `mod_revision` is unchanged (catches updates and deletions); if absent, that its
//!   `create_revision` is still 0 (catches creations);
//! * every range scanned, as far as the stream was read (all of it once it ended): that no
//!   key in it has `mod_revision` above the snapshot (catches rows created or updated in
//!   it); deleted rows are caught by the per-key compare of each row the scan returned.
//!
//! Not checked: keys only written, never read (blind writes, last writer wins), and rows
//! beyond where a scan stopped. Each compare and each write counts against etcd's
//! `--max-txn-ops` (default 128): scans in a write transaction should stay short.
//!
//! # Layout
//!
//! `prefix + slot (2 bytes, big-endian) + key`. Key encodings: [`StringKey`] and
//! [`BinaryKey`] as the bytes, [`OidKey`] 8 bytes big-endian, [`UuidKey`] 16 bytes; in a
//! composite key (a tuple) every part but the last is self-delimiting (strings escape `0x00`
//! as `0x00 0xFF` and end with `0x00 0x00`), so tuples sort part by part.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod cache;
mod catalog;
mod codec;
mod db;
mod error;
mod index;
mod rows;
mod slot;
mod table;
mod txn;
mod types;
mod watch;

pub use cache::{CachedRows, TableCache, TableUpdate, TableUpdates};
pub use codec::key::{BinaryKey, KeyCodec, OidKey, StringKey, UuidKey};
pub use codec::value::{
    BinaryValue, Cbor, Custom, FlatBuffers, Json, MsgPack, OidValue, StringValue, UuidValue,
    ValueCodec,
};
pub use db::{ConflictRetry, Database, DatabaseBuilder};
pub use error::{
    BoxError, CodecError, Error, Result, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_TXN_OPS,
};
pub use index::Index;
pub use rows::DEFAULT_PAGE_SIZE;
pub use slot::{SlotInfo, SlotKind};
pub use table::{Rows, Table};
pub use txn::{Committed, ReadTxn, Transaction, WriteTxn};
pub use types::*;
pub use watch::{Change, TableWatch};
