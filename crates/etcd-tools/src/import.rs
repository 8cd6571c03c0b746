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

use crate::diff::{Change, ChangeKind, DiffCounts, Merger, Report, Source, Verbosity};
use crate::error::{Error, Result};
use crate::error::{TxnOutcome, TxnState};
use crate::format::Format;
use crate::format::{self, Encoding};
use crate::mismatch::{requoted_error, Evidence};
use crate::pages::{key_after, prefix_range, Pager};
use crate::progress::Progress;
use crate::record::{display_key, Record, ValueType};
use bytes::Bytes;
use etcd_kv::{Client, Compare, TxnOp};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;

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

/// The file to import: a path, or standard input copied to a temporary file (it is read
/// twice).
#[derive(Debug)]
pub struct Input {
    name: String,
    source: InputSource,
}

#[derive(Debug)]
enum InputSource {
    Path(PathBuf),
    Spooled(File),
}

impl Input {
    /// A file on disk.
    pub fn path(path: impl Into<PathBuf>) -> Input {
        let path = path.into();
        Input {
            name: path.display().to_string(),
            source: InputSource::Path(path),
        }
    }

    /// Standard input, copied to an anonymous temporary file first.
    pub fn stdin() -> Result<Input> {
        let mut spool =
            tempfile::tempfile().map_err(|e| Error::io("cannot create a temporary file", e))?;
        std::io::copy(&mut std::io::stdin().lock(), &mut spool)
            .map_err(|e| Error::io("cannot read standard input", e))?;
        Ok(Input {
            name: "<stdin>".into(),
            source: InputSource::Spooled(spool),
        })
    }

    /// The name used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn open(&self) -> Result<(BufReader<File>, u64)> {
        let fail = |e| Error::io(format!("cannot open {}", self.name), e);
        let file = match &self.source {
            InputSource::Path(p) => File::open(p).map_err(fail)?,
            InputSource::Spooled(f) => {
                let mut f = f.try_clone().map_err(fail)?;
                f.seek(SeekFrom::Start(0)).map_err(fail)?;
                f
            }
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok((BufReader::with_capacity(64 * 1024, file), len))
    }
}

/// What [`validate`] learnt about a valid file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Validated {
    /// Records under the prefix.
    pub records: u64,
    /// Records outside the prefix (ignored).
    pub skipped: u64,
    /// Whether those records are in strictly increasing key order.
    pub sorted: bool,
    /// The smallest key under the prefix.
    pub min_key: Option<Bytes>,
    /// The largest key under the prefix.
    pub max_key: Option<Bytes>,
    /// With `-v json`: every value of the file is a JSON string, so [`import`] checks,
    /// before writing, that the file was not written with `-v utf8` or `-v binary` (unless
    /// `force`).
    pub values_all_strings: bool,
}

/// Reads and decodes the whole file, failing on the first invalid record (or the first
/// duplicate key of a file in key order) with its file, line and reason.
///
/// Then, unless `options.force`, fails with [`Error::Mismatch`] when the file is plainly
/// written with other `-k`/`-v` flags than `options.encoding`: every key base64 with some
/// decoding to text (a `-k binary` file read with `-k utf8`), or, with `-v json`, every
/// value a JSON string with some holding JSON objects or arrays (`-v utf8`) or padded
/// base64 (`-v binary`). docs/tools.md has the rules.
pub fn validate(input: &Input, options: &ImportOptions) -> Result<Validated> {
    let (reader, len) = input.open()?;
    let progress = Progress::bytes(options.progress, "checking", len);
    let reader = Counted {
        inner: reader,
        progress: &progress,
    };
    let mut v = Validated {
        sorted: true,
        ..Validated::default()
    };
    let mut last: Option<(Bytes, u64)> = None;
    let name = input.name();
    let mut evidence = Evidence::new(options.encoding);
    format::read(
        options.encoding,
        BufReader::new(reader),
        name,
        &mut |record, line| {
            evidence.record(&record, line);
            if !record.key.starts_with(&options.prefix) {
                v.skipped += 1;
                return Ok(());
            }
            v.records += 1;
            if v.sorted {
                if let Some((prev, prev_line)) = &last {
                    match record.key.cmp(prev) {
                        std::cmp::Ordering::Less => v.sorted = false,
                        std::cmp::Ordering::Equal => {
                            return Err(duplicate(name, &record.key, line, *prev_line))
                        }
                        std::cmp::Ordering::Greater => {}
                    }
                }
                last = Some((record.key.clone(), line));
            }
            if v.min_key.as_ref().is_none_or(|k| record.key < *k) {
                v.min_key = Some(record.key.clone());
            }
            if v.max_key.as_ref().is_none_or(|k| record.key > *k) {
                v.max_key = Some(record.key.clone());
            }
            Ok(())
        },
    )?;
    progress.finish();
    if !options.force {
        evidence.verdict(name)?;
    }
    v.values_all_strings = evidence.values_all_strings();
    Ok(v)
}

fn duplicate(file: &str, key: &[u8], line: u64, first: u64) -> Error {
    Error::input(
        file,
        line,
        format!("duplicate key {} (first on line {first})", display_key(key)),
    )
}

/// Advances a progress bar by the bytes read.
struct Counted<'p, R> {
    inner: R,
    progress: &'p Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

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

/// Reads the (validated, key-ordered) file again on a blocking thread.
fn stream_records(input: &Input, options: &ImportOptions) -> Source {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Record>>(1024);
    let opened = input.open();
    let name = input.name().to_string();
    let encoding = options.encoding;
    let prefix = options.prefix.clone();
    tokio::task::spawn_blocking(move || {
        let result = opened.and_then(|(reader, _)| {
            let mut last: Option<Bytes> = None;
            format::read(encoding, reader, &name, &mut |record, line| {
                if !record.key.starts_with(&prefix) {
                    return Ok(());
                }
                if last.as_ref().is_some_and(|prev| record.key <= *prev) {
                    return Err(Error::input(
                        &name,
                        line,
                        "the file changed since it was checked",
                    ));
                }
                last = Some(record.key.clone());
                tx.blocking_send(Ok(record))
                    .map_err(|_| Error::Conflict("stopped".into()))
            })
        });
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    Source::Channel(rx)
}

/// Loads the file's records under the prefix and sorts them; fails on a duplicate key.
fn sorted_records(input: &Input, options: &ImportOptions) -> Result<Source> {
    let (reader, _) = input.open()?;
    let mut records: Vec<(Record, u64)> = Vec::new();
    format::read(
        options.encoding,
        reader,
        input.name(),
        &mut |record, line| {
            if record.key.starts_with(&options.prefix) {
                records.push((record, line));
            }
            Ok(())
        },
    )?;
    records.sort_by(|a, b| a.0.key.cmp(&b.0.key).then(a.1.cmp(&b.1)));
    if let Some(pair) = records.windows(2).find(|w| w[0].0.key == w[1].0.key) {
        return Err(duplicate(
            input.name(),
            &pair[1].0.key,
            pair[1].1,
            pair[0].1,
        ));
    }
    let records: Vec<Record> = records.into_iter().map(|(r, _)| r).collect();
    Ok(Source::Sorted(records.into_iter()))
}

/// Groups changes into transactions within etcd's limits, with up to `concurrency` of
/// them in flight (settled, and reported, in order).
struct Batcher {
    client: Client,
    max_ops: usize,
    max_bytes: usize,
    concurrency: usize,
    /// The prefix of the `--unchanged-since` guard, when given.
    guard: Option<Bytes>,
    ops: Vec<TxnOp>,
    compares: Vec<Compare>,
    pending: Vec<(ChangeKind, Bytes)>,
    bytes: usize,
    in_flight: VecDeque<InFlight>,
    /// Transactions sent so far (the last one's number).
    sent: u64,
    /// The revision after the last transaction (the snapshot's before the first).
    revision: i64,
    transactions: u64,
    applied: DiffCounts,
}

/// A transaction sent, and what it changes.
struct InFlight {
    /// Its number in the import, from 1.
    number: u64,
    changes: Vec<(ChangeKind, Bytes)>,
    task: tokio::task::JoinHandle<etcd_kv::Result<etcd_kv::TxnResponse>>,
}

impl InFlight {
    fn outcome(&self, state: TxnState) -> TxnOutcome {
        let key = |c: Option<&(ChangeKind, Bytes)>| c.map(|c| display_key(&c.1));
        TxnOutcome {
            number: self.number,
            operations: self.changes.len(),
            first_key: key(self.changes.first()).unwrap_or_default(),
            last_key: key(self.changes.last()).unwrap_or_default(),
            state,
        }
    }
}

/// Bytes counted per operation besides its key and value (protobuf framing).
const OP_OVERHEAD: usize = 32;

/// What a settled transaction's answer means.
enum Settled {
    Applied(i64),
    /// Its compares failed (`--unchanged-since`): nothing applied.
    CompareFailed,
    Failed(etcd_kv::Error),
}

impl Batcher {
    fn new(client: &Client, options: &ImportOptions, snapshot_revision: i64) -> Self {
        let guarded = options.unchanged_since.is_some();
        Batcher {
            client: client.clone(),
            // A guarded transaction also compares the whole prefix: one compare more.
            max_ops: if guarded {
                options.max_txn_ops.saturating_sub(1).max(1)
            } else {
                options.max_txn_ops.max(1)
            },
            max_bytes: options.max_txn_bytes,
            // The guard chains each transaction to the revision of the one before.
            concurrency: if guarded {
                1
            } else {
                options.concurrency.max(1)
            },
            guard: guarded.then(|| options.prefix.clone()),
            ops: Vec::new(),
            compares: Vec::new(),
            pending: Vec::new(),
            bytes: 0,
            in_flight: VecDeque::new(),
            sent: 0,
            revision: snapshot_revision,
            transactions: 0,
            applied: DiffCounts::default(),
        }
    }

    async fn push<W: std::io::Write>(
        &mut self,
        change: Change,
        report: &mut Report<W>,
    ) -> Result<()> {
        let guarded = self.guard.is_some();
        let mut cost = change.key.len() + change.value.len() + OP_OVERHEAD;
        if guarded && change.kind != ChangeKind::Added {
            cost += change.key.len() + OP_OVERHEAD;
        }
        if !self.ops.is_empty()
            && (self.ops.len() >= self.max_ops || self.bytes + cost > self.max_bytes)
        {
            self.send(report).await?;
        }
        if guarded && change.kind != ChangeKind::Added {
            // Catches a deletion of this key since the snapshot, which the prefix
            // compare cannot see.
            self.compares
                .push(Compare::mod_revision(change.key.clone()).eq(change.mod_revision));
        }
        self.ops.push(match change.kind {
            ChangeKind::Added | ChangeKind::Changed => TxnOp::put(change.key.clone(), change.value),
            ChangeKind::Deleted => TxnOp::delete(change.key.clone()),
        });
        self.pending.push((change.kind, change.key));
        self.bytes += cost;
        Ok(())
    }

    /// Sends the pending operations as one transaction, waiting for earlier ones while
    /// too many are in flight.
    async fn send<W: std::io::Write>(&mut self, report: &mut Report<W>) -> Result<()> {
        if self.ops.is_empty() {
            return Ok(());
        }
        while self.in_flight.len() >= self.concurrency {
            self.settle(report).await?;
        }
        let mut compares = std::mem::take(&mut self.compares);
        if let Some(prefix) = &self.guard {
            // Nothing under the prefix changed since our last write (or the snapshot).
            compares.push(
                Compare::mod_revision(prefix.clone())
                    .prefix()
                    .lt(self.revision + 1),
            );
        }
        let ops = std::mem::take(&mut self.ops);
        let client = self.client.clone();
        let task = tokio::spawn(async move { client.txn().when(compares).and_then(ops).await });
        self.sent += 1;
        self.in_flight.push_back(InFlight {
            number: self.sent,
            changes: std::mem::take(&mut self.pending),
            task,
        });
        self.bytes = 0;
        Ok(())
    }

    /// Sends what is pending and waits for every transaction.
    async fn finish<W: std::io::Write>(&mut self, report: &mut Report<W>) -> Result<()> {
        self.send(report).await?;
        while !self.in_flight.is_empty() {
            self.settle(report).await?;
        }
        Ok(())
    }

    /// Waits for `txn` and counts it when applied.
    async fn wait<W: std::io::Write>(
        &mut self,
        txn: &mut InFlight,
        report: &mut Report<W>,
    ) -> Result<Settled> {
        Ok(match join(&mut txn.task).await {
            Ok(response) if response.succeeded() => {
                self.applied_ok(&txn.changes, response.revision(), report)?;
                Settled::Applied(response.revision())
            }
            Ok(_) => Settled::CompareFailed,
            Err(e) => Settled::Failed(e),
        })
    }

    /// Waits for every transaction still in flight, and says what became of each.
    async fn wait_all<W: std::io::Write>(
        &mut self,
        report: &mut Report<W>,
    ) -> Result<Vec<TxnOutcome>> {
        let mut outcomes = Vec::new();
        while let Some(mut txn) = self.in_flight.pop_front() {
            let state = match self.wait(&mut txn, report).await? {
                Settled::Applied(revision) => TxnState::Applied { revision },
                Settled::CompareFailed => TxnState::NotApplied {
                    reason: "the keyspace under the prefix changed (--unchanged-since)".into(),
                },
                Settled::Failed(e) => failed_state(&e),
            };
            outcomes.push(txn.outcome(state));
        }
        Ok(outcomes)
    }

    /// Waits for the oldest transaction in flight. On failure, waits for the others too,
    /// so that the error says exactly what was applied, and what became of each
    /// transaction that was in flight.
    async fn settle<W: std::io::Write>(&mut self, report: &mut Report<W>) -> Result<()> {
        let Some(mut next) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let others_in_flight = self.in_flight.len();
        match self.wait(&mut next, report).await? {
            Settled::Applied(_) => Ok(()),
            Settled::CompareFailed => {
                let text = format!(
                    "the keyspace under the prefix changed after revision {} \
                     (--unchanged-since)",
                    self.revision
                );
                self.wait_all(report).await?;
                Err(Error::Conflict(format!("{text}; {}", self.applied_text())))
            }
            Settled::Failed(e) => {
                let mut outcomes = vec![next.outcome(failed_state(&e))];
                outcomes.extend(self.wait_all(report).await?);
                let named = next.outcome(TxnState::Applied { revision: 0 });
                let keys = if named.first_key == named.last_key {
                    format!("key {}", named.first_key)
                } else {
                    format!("keys {} to {}", named.first_key, named.last_key)
                };
                let s = if named.operations == 1 { "" } else { "s" };
                let mut summary = format!(
                    "transaction {} ({} operation{s}, {keys}) failed",
                    named.number, named.operations
                );
                if e.is_outcome_unknown() {
                    summary.push_str(" and may have been applied");
                }
                if matches!(e, etcd_kv::Error::InvalidInput { .. }) {
                    summary.push_str(
                        " (check --max-txn-ops and --max-txn-bytes against the server's limits)",
                    );
                }
                summary.push_str(&format!(
                    ": {}; {}; running the import again finishes it",
                    crate::error::chain_line(&e),
                    self.applied_text()
                ));
                if others_in_flight > 0 {
                    summary.push_str(&format!("; the {} transactions in flight:", outcomes.len()));
                } else {
                    outcomes.clear();
                }
                Err(Error::Write {
                    summary,
                    in_flight: outcomes,
                    source: Box::new(e),
                })
            }
        }
    }

    fn applied_text(&self) -> String {
        match self.transactions {
            0 => "nothing was written".to_string(),
            n => format!(
                "{n} transaction{} applied ({} added, {} changed, {} deleted)",
                if n == 1 { " was" } else { "s were" },
                self.applied.added,
                self.applied.changed,
                self.applied.deleted
            ),
        }
    }

    /// After `error` elsewhere: sends nothing more, waits for the transactions in flight
    /// and adds to the error what was written.
    async fn abandon<W: std::io::Write>(&mut self, error: Error, report: &mut Report<W>) -> Error {
        if self.wait_all(report).await.is_err() {
            return error;
        }
        if self.transactions == 0 {
            return error;
        }
        let applied = self.applied_text();
        match error {
            Error::Etcd { context, source } => Error::Etcd {
                context: format!("{context} ({applied})"),
                source,
            },
            Error::Io { context, source } => Error::Io {
                context: format!("{context} ({applied})"),
                source,
            },
            Error::Input { file, line, reason } => Error::Input {
                file,
                line,
                reason: format!("{reason} ({applied})"),
            },
            other => other,
        }
    }

    /// After an [`Interrupt`]: sends nothing more (the operations gathered for the next
    /// transaction are dropped), waits for the transactions in flight, and says what was
    /// applied and how to finish.
    async fn interrupted<W: std::io::Write>(
        &mut self,
        options: &ImportOptions,
        report: &mut Report<W>,
    ) -> Error {
        let in_flight = self.wait_all(report).await.unwrap_or_default();
        let _ = report.flush();
        if options.dry_run {
            return Error::Interrupted {
                summary: "interrupted: nothing was written (a dry run writes nothing)".into(),
                in_flight,
            };
        }
        let any_unknown = in_flight
            .iter()
            .any(|t| matches!(t.state, TxnState::Unknown { .. }));
        let rerun = match options.unchanged_since {
            Some(_) => format!(
                "to finish, run the same command with --unchanged-since {} (the revision \
                 after this import's last transaction; the first --unchanged-since would now \
                 see this import's own writes)",
                self.revision
            ),
            None => "to finish, run the same command again (it writes only what still \
                     differs)"
                .to_string(),
        };
        let mut summary = if self.transactions == 0 && !any_unknown {
            format!(
                "interrupted before the first transaction was applied: nothing was written; \
                 {rerun}"
            )
        } else {
            format!(
                "interrupted: {}, each whole; the transaction being gathered was not sent; \
                 {rerun}",
                self.applied_text()
            )
        };
        let unknown = in_flight
            .iter()
            .filter(|t| matches!(t.state, TxnState::Unknown { .. }))
            .count();
        if unknown > 0 {
            summary.push_str(&format!(
                "; {unknown} of the transactions in flight may or may not have been applied \
                 (each whole or not at all): the rerun writes whatever still differs"
            ));
        }
        if !in_flight.is_empty() {
            summary.push_str(&format!(
                "; the {} transaction{} in flight, waited for:",
                in_flight.len(),
                if in_flight.len() == 1 { "" } else { "s" }
            ));
        }
        Error::Interrupted { summary, in_flight }
    }

    fn applied_ok<W: std::io::Write>(
        &mut self,
        changes: &[(ChangeKind, Bytes)],
        revision: i64,
        report: &mut Report<W>,
    ) -> Result<()> {
        self.revision = self.revision.max(revision);
        self.transactions += 1;
        for (kind, key) in changes {
            self.applied.count(*kind);
            report.change(*kind, key)?;
        }
        Ok(())
    }
}

/// A failed transaction's state: not applied, or unknown when the request may have
/// reached the server.
fn failed_state(e: &etcd_kv::Error) -> TxnState {
    let reason = crate::error::chain_line(e);
    if e.is_outcome_unknown() {
        TxnState::Unknown { reason }
    } else {
        TxnState::NotApplied { reason }
    }
}

async fn join(
    task: &mut tokio::task::JoinHandle<etcd_kv::Result<etcd_kv::TxnResponse>>,
) -> etcd_kv::Result<etcd_kv::TxnResponse> {
    match task.await {
        Ok(result) => result,
        Err(e) => Err(etcd_kv::Error::Protocol(format!(
            "the write task failed: {e}"
        ))),
    }
}
