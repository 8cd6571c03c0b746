//! `etcd-import`: validate the whole file, diff it against the keyspace, write the
//! difference in atomic batches.
//!
//! 1. [`validate`] reads the file once, decoding every record, and fails on the first
//!    invalid one before anything is sent to etcd. It keeps no records, only whether they
//!    come in key order (as `etcd-export` writes them) and the smallest and largest key.
//! 2. [`import`] reads the file again and merges it with a scan of the keyspace at one
//!    revision. A file in key order is streamed; a file out of order is loaded into memory
//!    and sorted (duplicates are found then, still before any write).
//! 3. Changes are written in transactions of at most `max_txn_ops` operations and
//!    `max_txn_bytes` bytes of keys and values, up to `concurrency` at a time (each
//!    transaction holds different keys). Each transaction is atomic; the import as a whole
//!    is not, unless it fits in one. Keys whose value already matches are not written.

use crate::diff::{Change, ChangeKind, DiffCounts, Merger, Report, Verbosity};
use crate::error::{Error, Result};
use crate::format::Encoding;
use crate::format::Format;
use crate::mismatch::requoted_error;
use crate::pages::{key_after, prefix_range, Pager};
use crate::progress::Progress;
use crate::record::{display_key, ValueType};
use bytes::Bytes;
use etcd_kv::Client;

mod batch;
mod input;

pub use input::{validate, Input, Validated};

use batch::Batcher;
use input::{sorted_records, stream_records};

/// What to import and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Format, key type and value type of the file.
    pub encoding: Encoding,
    /// Import only the file's keys starting with this (others are skipped); with
    /// `replace`, delete only under it.
    pub prefix: Bytes,
    /// Also delete keys under the prefix that are not in the file.
    pub replace: bool,
    /// Compute and report the changes, write nothing.
    pub dry_run: bool,
    /// Abort unless the keyspace under the prefix is unchanged since this revision.
    pub unchanged_since: Option<i64>,
    /// The most operations in one transaction (etcd's `--max-txn-ops`, default 128).
    pub max_txn_ops: usize,
    /// The most bytes of keys and values in one transaction (etcd refuses requests over
    /// `--max-request-bytes`, default 1.5 MiB).
    pub max_txn_bytes: usize,
    /// How many transactions may be in flight at once (1 with `unchanged_since`).
    pub concurrency: usize,
    /// What the report shows.
    pub verbosity: Verbosity,
    /// Show a progress bar when stderr is a terminal.
    pub progress: bool,
    /// Import even when the file looks written with other key or value types than
    /// `encoding` says (`--force`; see [`validate`]).
    pub force: bool,
    /// Stops the import between two transactions when triggered (Ctrl-C): see
    /// [`Interrupt`].
    pub interrupt: Interrupt,
}

/// A flag that stops an [`import`] cleanly: once triggered, no further transaction is
/// sent, the ones in flight are waited for (each is atomic: applied whole or not at all),
/// and the import fails with [`Error::Interrupted`] saying what was applied and how to
/// finish. Clones share the flag. `etcd-import` triggers it on Ctrl-C (SIGINT).
#[derive(Debug, Clone, Default)]
pub struct Interrupt(std::sync::Arc<InterruptInner>);

#[derive(Debug, Default)]
struct InterruptInner {
    flag: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl Interrupt {
    /// A flag not triggered yet.
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Asks the import to stop at its next transaction boundary.
    pub fn trigger(&self) {
        self.0.flag.store(true, std::sync::atomic::Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Whether [`trigger`](Self::trigger) was called.
    pub fn is_triggered(&self) -> bool {
        self.0.flag.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Completes once triggered.
    async fn triggered(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
}

impl ImportOptions {
    /// Upsert every key of the file, 128 operations and 1 MiB per transaction.
    pub fn new(encoding: Encoding) -> ImportOptions {
        ImportOptions {
            encoding,
            prefix: Bytes::new(),
            replace: false,
            dry_run: false,
            unchanged_since: None,
            max_txn_ops: 128,
            max_txn_bytes: DEFAULT_MAX_TXN_BYTES,
            concurrency: 4,
            verbosity: Verbosity::Compact,
            progress: false,
            force: false,
            interrupt: Interrupt::new(),
        }
    }
}

/// The default byte budget of one transaction: 1 MiB, under etcd's 1.5 MiB request limit.
pub const DEFAULT_MAX_TXN_BYTES: usize = 1024 * 1024;

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportSummary {
    /// Keys per class.
    pub counts: DiffCounts,
    /// The revision the diff was computed at.
    pub snapshot_revision: i64,
    /// The store's revision after the last transaction (the snapshot's in a dry run or
    /// when nothing changed).
    pub revision: i64,
    /// How many transactions were written.
    pub transactions: u64,
}

/// Diffs a [validated](validate) file against the keyspace and writes the difference
/// (unless `dry_run`), then writes the report to `report`.
///
/// On error, the transactions already written stay written; the error says how many.
/// Running the same import again finishes it: keys already right are not written twice.
pub async fn import<W: std::io::Write>(
    client: &Client,
    input: &Input,
    validated: &Validated,
    options: &ImportOptions,
    report: W,
) -> Result<ImportSummary> {
    match import_diff(client, input, validated, options, report).await {
        // Interrupted while waiting for a transaction that then failed (a frozen server
        // timing out): still an interruption, with what became of each in flight.
        Err(Error::Write {
            summary, in_flight, ..
        }) if options.interrupt.is_triggered() => Err(Error::Interrupted {
            summary: format!(
                "interrupted; while the transactions in flight were waited for, {summary}"
            ),
            in_flight,
        }),
        other => other,
    }
}

async fn import_diff<W: std::io::Write>(
    client: &Client,
    input: &Input,
    validated: &Validated,
    options: &ImportOptions,
    report: W,
) -> Result<ImportSummary> {
    let mut report = Report::new(report, options.verbosity, options.encoding.key_type);
    report.counts.skipped = validated.skipped;

    // The range to compare with: the whole prefix to find deletions, else only the span
    // of the file's keys.
    let (prefix_start, prefix_end) = prefix_range(&options.prefix);
    let scan = if options.replace {
        Some((prefix_start.clone(), prefix_end.clone()))
    } else {
        validated
            .min_key
            .clone()
            .zip(validated.max_key.as_deref().map(key_after))
    };
    let snapshot = client
        .range(prefix_start.clone())
        .end(prefix_end.clone())
        .count_only()
        .await
        .map_err(|e| Error::etcd("cannot read the keyspace", e))?;
    let snapshot_revision = snapshot.revision();
    if let Some(since) = options.unchanged_since {
        check_unchanged(
            client,
            &options.prefix,
            since,
            snapshot_revision,
            snapshot.count(),
        )
        .await?;
    }

    let source = if validated.sorted {
        stream_records(input, options)
    } else {
        sorted_records(input, options)?
    };
    let pager = scan.map(|(start, end)| {
        Pager::new(
            client,
            start,
            end,
            snapshot_revision,
            etcd_kv::DEFAULT_PAGE_SIZE,
        )
    });
    let progress = Progress::new(
        options.progress && options.verbosity != Verbosity::Silent,
        if options.dry_run {
            "comparing"
        } else {
            "importing"
        },
        Some(validated.records),
    );
    // With every value a JSON string under -v json, the file may be a -v utf8 or -v binary
    // export: changes are held back (nothing sent) until the first key etcd holds tells.
    let check_requoted = validated.values_all_strings
        && options.encoding.value_type == ValueType::Json
        && !options.force;
    let mut merger = Merger::new(source, pager, options.replace)
        .json_values(options.encoding.value_type == ValueType::Json)
        .progress(progress.clone());
    if check_requoted {
        merger = merger.check_requoted(options.encoding.format == Format::Csv);
    }
    let mut batcher = Batcher::new(client, options, snapshot_revision);
    let mut held: Option<Held> = check_requoted.then(Held::default);
    loop {
        if options.interrupt.is_triggered() {
            return Err(batcher.interrupted(options, &mut report).await);
        }
        // A long run of unchanged keys yields no change: Ctrl-C is heard meanwhile too.
        let next = tokio::select! {
            biased;
            next = merger.next() => next,
            () = options.interrupt.triggered() => {
                return Err(batcher.interrupted(options, &mut report).await);
            }
        };
        let change = match next {
            Ok(Some(change)) => change,
            Ok(None) => break,
            // Reading the file or the keyspace failed: say what was written before.
            Err(e) => return Err(batcher.abandon(e, &mut report).await),
        };
        if let Some(h) = &mut held {
            if let Some((key, current, meant)) = merger.requoted.take() {
                return Err(requoted_error(
                    input.name(),
                    &key,
                    &current,
                    meant,
                    options.encoding,
                ));
            }
            // A key already holding the file's JSON string, or changed from something
            // else than the string's text, proves -v json right.
            let settled = merger.unchanged > 0 || change.kind == ChangeKind::Changed;
            h.push(change);
            if !settled && !h.full() {
                continue;
            }
            for change in held.take().map(|h| h.changes).unwrap_or_default() {
                apply(change, options, &mut batcher, &mut report).await?;
            }
            continue;
        }
        apply(change, options, &mut batcher, &mut report).await?;
    }
    for change in held.take().map(|h| h.changes).unwrap_or_default() {
        apply(change, options, &mut batcher, &mut report).await?;
    }
    if options.interrupt.is_triggered() {
        return Err(batcher.interrupted(options, &mut report).await);
    }
    batcher.finish(&mut report).await?;
    progress.finish();
    report.counts.unchanged = merger.unchanged;
    if !options.replace {
        // Keys under the prefix at the snapshot that the file does not name: each key of
        // the file found in etcd is either changed or unchanged.
        let found = report.counts.changed + report.counts.unchanged;
        report.counts.not_in_file = u64::try_from(snapshot.count())
            .unwrap_or(0)
            .saturating_sub(found);
    }
    report.summary(options.dry_run, batcher.revision, batcher.transactions)?;
    Ok(ImportSummary {
        counts: report.counts,
        snapshot_revision,
        revision: batcher.revision,
        transactions: batcher.transactions,
    })
}

/// Reports a change (dry run) or hands it to the batcher.
async fn apply<W: std::io::Write>(
    change: Change,
    options: &ImportOptions,
    batcher: &mut Batcher,
    report: &mut Report<W>,
) -> Result<()> {
    if options.dry_run {
        report.change(change.kind, &change.key)
    } else {
        batcher.push(change, report).await
    }
}

/// Changes held back while the file's value type is in doubt: at most this many, or
/// this many bytes, then they go (the doubt is only about the first keys etcd holds).
const HOLD_CHANGES: usize = 1000;
const HOLD_BYTES: usize = 8 << 20;

#[derive(Default)]
struct Held {
    changes: Vec<Change>,
    bytes: usize,
}

impl Held {
    fn push(&mut self, change: Change) {
        self.bytes += change.key.len() + change.value.len();
        self.changes.push(change);
    }

    fn full(&self) -> bool {
        self.changes.len() >= HOLD_CHANGES || self.bytes >= HOLD_BYTES
    }
}

/// `--unchanged-since`: no key under the prefix was created, changed or deleted after
/// `since`, as of `now`, when there are `count_now` keys.
async fn check_unchanged(
    client: &Client,
    prefix: &[u8],
    since: i64,
    now: i64,
    count_now: i64,
) -> Result<()> {
    if since > now {
        return Err(Error::Usage(format!(
            "--unchanged-since {since} is after the current revision {now}"
        )));
    }
    let (start, end) = prefix_range(prefix);
    let changed = client
        .range(start.clone())
        .end(end.clone())
        .revision(now)
        .min_mod_revision(since + 1)
        .keys_only()
        .limit(1)
        .await
        .map_err(|e| Error::etcd("cannot check --unchanged-since", e))?;
    if let Some(kv) = changed.kvs().first() {
        return Err(Error::Conflict(format!(
            "key {} changed at revision {}, after --unchanged-since {since}; nothing written",
            display_key(kv.key()),
            kv.mod_revision()
        )));
    }
    let then = client
        .range(start)
        .end(end)
        .revision(since)
        .count_only()
        .await
        .map_err(|e| Error::etcd(format!("cannot check --unchanged-since {since}"), e))?;
    if then.count() != count_now {
        return Err(Error::Conflict(format!(
            "{} keys were deleted after --unchanged-since {since}; nothing written",
            then.count() - count_now
        )));
    }
    Ok(())
}
