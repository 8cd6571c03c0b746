//! `etcd-export`: a consistent snapshot of a key range, written page by page.

use crate::error::Result;
use crate::format::{self, Encoding};
use crate::pages::{prefix_range, Pager};
use crate::progress::Progress;
use crate::record::{Metadata, Record};
use bytes::Bytes;
use etcd_kv::Client;
use std::io::Write;

/// What to export and how.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Format, key type and value type of the file.
    pub encoding: Encoding,
    /// Export only keys starting with this (empty: every key).
    pub prefix: Bytes,
    /// Export the keyspace as it was at this revision (`None`: the current one).
    pub revision: Option<i64>,
    /// Write etcd's metadata (`jsonl` only).
    pub with_metadata: bool,
    /// Keys per page (default 1000); memory use is bounded by a page.
    pub page_size: i64,
    /// Show a progress bar when stderr is a terminal.
    pub progress: bool,
}

impl ExportOptions {
    /// Options for every key, in this encoding, 1000 keys per page.
    pub fn new(encoding: Encoding) -> ExportOptions {
        ExportOptions {
            encoding,
            page_size: etcd_kv::DEFAULT_PAGE_SIZE,
            ..ExportOptions::default()
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportSummary {
    /// How many keys were written.
    pub keys: u64,
    /// The revision of the snapshot: every key was read at it.
    pub revision: i64,
}

/// Writes every key under the prefix, in key order, as of one revision, to `out`.
///
/// Pages are read at the revision the first page pins (or the one asked for) and written
/// as they arrive, so memory use is bounded by a page whatever the size of the keyspace.
/// On error the output is incomplete.
pub async fn export<W: Write>(
    client: &Client,
    options: &ExportOptions,
    out: W,
) -> Result<ExportSummary> {
    let (start, end) = prefix_range(&options.prefix);
    let mut pager = Pager::new(
        client,
        start,
        end,
        options.revision.unwrap_or(0),
        options.page_size,
    );
    let mut writer = format::writer(options.encoding, out, options.with_metadata);
    let progress = Progress::new(options.progress, "exporting", None);
    let mut keys = 0u64;
    let mut first = true;
    while let Some(page) = pager.next_page().await? {
        if first && progress.is_visible() {
            first = false;
            if let Some(total) = count(client, &options.prefix, pager.revision()).await {
                progress.set_length(total);
            }
        }
        for kv in &page {
            let mut record = Record::new(kv.key_bytes(), kv.value_bytes());
            if options.with_metadata {
                record = record.with_metadata(Metadata::new(
                    kv.create_revision(),
                    kv.mod_revision(),
                    kv.version(),
                    kv.lease(),
                ));
            }
            writer.write(&record)?;
        }
        keys += page.len() as u64;
        progress.inc(page.len() as u64);
    }
    writer.finish()?;
    progress.finish();
    Ok(ExportSummary {
        keys,
        revision: pager.revision().unwrap_or(0),
    })
}

/// The number of keys under the prefix at `revision`, for the progress bar.
async fn count(client: &Client, prefix: &[u8], revision: Option<i64>) -> Option<u64> {
    let (start, end) = prefix_range(prefix);
    client
        .range(start)
        .end(end)
        .revision(revision.unwrap_or(0))
        .count_only()
        .await
        .ok()
        .map(|r| r.count().max(0) as u64)
}
