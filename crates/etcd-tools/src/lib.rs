//! Dump an etcd keyspace to a file and load it back: the library behind the
//! `etcd-export` and `etcd-import` command line tools.
//!
//! `docs/tools.md` defines the file formats and the flags. In short: a dump is a JSON
//! object, RFC 4180 CSV or JSON lines; keys are text or base64 (`-k`), values embedded
//! JSON, text or base64 (`-v`); an export is a snapshot at one revision read page by page;
//! an import checks the whole file first (refusing files that look written with other
//! `-k`/`-v` flags), then writes only what differs, in atomic batches, and stops cleanly
//! between two of them on Ctrl-C ([`import::Interrupt`]).
//!
//! With the cargo feature `grpc` the tools also speak native gRPC (`--grpc`); built
//! without it they refuse `--grpc` with a usage error that says how to rebuild.
//!
//! ```
//! use etcd_tools::format::{self, Encoding, Format};
//! use etcd_tools::record::{KeyType, Record, ValueType};
//!
//! # fn main() -> etcd_tools::Result<()> {
//! let encoding = Encoding::new(Format::Jsonl, KeyType::Utf8, ValueType::Json);
//!
//! let mut file = Vec::new();
//! let mut writer = format::writer(encoding, &mut file, false);
//! writer.write(&Record::new("config/port", "8080"))?;
//! writer.finish()?;
//! assert_eq!(file, b"{\"key\":\"config/port\",\"value\":8080}\n");
//!
//! let mut records = Vec::new();
//! format::read(encoding, &file[..], "dump.jsonl", &mut |record, _line| {
//!     records.push(record);
//!     Ok(())
//! })?;
//! assert_eq!(records, [Record::new("config/port", "8080")]);
//! # Ok(()) }
//! ```
//!
//! Against a server:
//!
//! ```no_run
//! use etcd_tools::export::{export, ExportOptions};
//! use etcd_tools::format::{Encoding, Format};
//! use etcd_tools::record::{KeyType, ValueType};
//!
//! # async fn demo() -> etcd_tools::Result<()> {
//! let client = etcd_kv::Client::connect("http://127.0.0.1:2379").await.expect("etcd");
//! let mut options =
//!     ExportOptions::new(Encoding::new(Format::Jsonl, KeyType::Binary, ValueType::Binary));
//! options.prefix = "config/".into();
//! let summary = export(&client, &options, std::io::stdout().lock()).await?;
//! eprintln!("{} keys at revision {}", summary.keys, summary.revision);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

pub mod cli;
pub mod diff;
mod error;
pub mod export;
pub mod format;
pub mod import;
mod mismatch;
pub mod pages;
pub mod progress;
pub mod record;

pub use error::{Error, Result, TxnOutcome, TxnState};
