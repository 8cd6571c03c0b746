//! The difference between a file and the keyspace: a merge of two key-ordered streams,
//! and the report of it (`--verbosity`).

use crate::error::{Error, Result};
use crate::pages::Pager;
use crate::progress::Progress;
use crate::record::{display_key, same_json, KeyType, Record};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use etcd_kv::KeyValue;
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::io::Write;

/// What an import does to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The key is in the file, not in etcd: it is written.
    Added,
    /// The key is in both with different values: it is overwritten.
    Changed,
    /// The key is in etcd under the prefix, not in the file, and `--replace` is given:
    /// it is deleted.
    Deleted,
}

impl ChangeKind {
    fn sign(self) -> char {
        match self {
            ChangeKind::Added => '+',
            ChangeKind::Changed => '~',
            ChangeKind::Deleted => '-',
        }
    }
}

/// One change to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// What happens to the key.
    pub kind: ChangeKind,
    /// The key.
    pub key: Bytes,
    /// The new value (empty for a deletion).
    pub value: Bytes,
    /// The key's mod revision in the snapshot the diff was made against (0 when absent).
    pub mod_revision: i64,
}

/// How many keys fall in each class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DiffCounts {
    /// Keys written that did not exist.
    pub added: u64,
    /// Keys overwritten with a different value.
    pub changed: u64,
    /// Keys deleted (`--replace`).
    pub deleted: u64,
    /// Keys of the file whose value already matched: not written.
    pub unchanged: u64,
    /// Keys of the file outside `--prefix`: ignored.
    pub skipped: u64,
    /// Keys in etcd under the prefix that the file lacks, left alone (without `--replace`;
    /// with it they are `deleted`). txaioetcd's import would delete them.
    pub not_in_file: u64,
}

impl DiffCounts {
    /// Counts one change.
    pub fn count(&mut self, kind: ChangeKind) {
        match kind {
            ChangeKind::Added => self.added += 1,
            ChangeKind::Changed => self.changed += 1,
            ChangeKind::Deleted => self.deleted += 1,
        }
    }
}

/// How much an import prints (`--verbosity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Verbosity {
    /// Nothing.
    Silent,
    /// One summary line.
    #[default]
    Compact,
    /// One line per added, changed or deleted key, then the summary line.
    Verbose,
}

/// Writes the report of an import or a dry run.
#[derive(Debug)]
pub struct Report<W> {
    out: W,
    verbosity: Verbosity,
    key_type: KeyType,
    /// The counts so far.
    pub counts: DiffCounts,
}

impl<W: Write> Report<W> {
    /// A report to `out`; keys are shown as in the file (`-k`).
    pub fn new(out: W, verbosity: Verbosity, key_type: KeyType) -> Self {
        Report {
            out,
            verbosity,
            key_type,
            counts: DiffCounts::default(),
        }
    }

    /// Counts a change (applied, or to apply in a dry run) and, when verbose, prints
    /// `+ key`, `~ key` or `- key`.
    pub fn change(&mut self, kind: ChangeKind, key: &[u8]) -> Result<()> {
        self.counts.count(kind);
        if self.verbosity == Verbosity::Verbose {
            let shown = match self.key_type {
                KeyType::Binary => B64.encode(key),
                KeyType::Utf8 => display_key(key),
            };
            writeln!(self.out, "{} {shown}", kind.sign()).map_err(report_error)?;
        }
        Ok(())
    }

    /// Flushes what was written so far.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(report_error)
    }

    /// Prints the summary line (unless silent) and flushes.
    ///
    /// `dry run at revision R: A added, C changed, D deleted, U unchanged` or
    /// `imported at revision R in T transactions: ...`, then `, S skipped (outside
    /// --prefix)` when some were, and `, K kept that the file lacks (--replace deletes
    /// them)` when etcd has keys under the prefix that the file lacks.
    pub fn summary(&mut self, dry_run: bool, revision: i64, transactions: u64) -> Result<()> {
        if self.verbosity != Verbosity::Silent {
            let c = self.counts;
            let head = if dry_run {
                format!("dry run at revision {revision}")
            } else {
                let s = if transactions == 1 { "" } else { "s" };
                format!("imported at revision {revision} in {transactions} transaction{s}")
            };
            write!(
                self.out,
                "{head}: {} added, {} changed, {} deleted, {} unchanged",
                c.added, c.changed, c.deleted, c.unchanged
            )
            .map_err(report_error)?;
            if c.skipped > 0 {
                write!(self.out, ", {} skipped (outside --prefix)", c.skipped)
                    .map_err(report_error)?;
            }
            if c.not_in_file > 0 {
                write!(
                    self.out,
                    ", {} kept that the file lacks (--replace deletes them)",
                    c.not_in_file
                )
                .map_err(report_error)?;
            }
            writeln!(self.out).map_err(report_error)?;
        }
        self.out.flush().map_err(report_error)
    }
}

fn report_error(e: std::io::Error) -> Error {
    Error::io("cannot write the report", e)
}

/// The file's records in key order.
#[derive(Debug)]
pub(crate) enum Source {
    /// Records from a reader thread (the file is in key order).
    Channel(tokio::sync::mpsc::Receiver<Result<Record>>),
    /// Records sorted in memory (the file was not in key order).
    Sorted(std::vec::IntoIter<Record>),
}

impl Source {
    async fn next(&mut self) -> Result<Option<Record>> {
        match self {
            Source::Channel(rx) => rx.recv().await.transpose(),
            Source::Sorted(it) => Ok(it.next()),
        }
    }
}

/// Merges the file's records with the keyspace's, both in key order, into changes.
#[derive(Debug)]
pub(crate) struct Merger {
    source: Source,
    pager: Option<Pager>,
    replace: bool,
    /// Values are JSON documents (`-v json`): compare them by meaning.
    json_values: bool,
    /// Moved to the count of records read as they are read.
    progress: Progress,
    file: Option<Record>,
    file_done: bool,
    etcd: VecDeque<KeyValue>,
    /// Records of the file read so far.
    pub(crate) records: u64,
    /// Records whose value already matched.
    pub(crate) unchanged: u64,
    /// `Some(csv)`: look for a file's JSON string whose text etcd holds as the value (see
    /// [`crate::mismatch::requoted`]).
    requote_check: Option<bool>,
    /// The first such key: the key, etcd's value, and the value type probably meant.
    pub(crate) requoted: Option<(Bytes, Bytes, crate::record::ValueType)>,
}

impl Merger {
    /// `pager` reads the keys to compare with (`None`: there are none); with `replace`,
    /// keys it reads that are not in the file become deletions.
    pub(crate) fn new(source: Source, pager: Option<Pager>, replace: bool) -> Merger {
        Merger {
            source,
            pager,
            replace,
            json_values: false,
            progress: Progress::hidden(),
            file: None,
            file_done: false,
            etcd: VecDeque::new(),
            records: 0,
            unchanged: 0,
            requote_check: None,
            requoted: None,
        }
    }

    /// Records the first changed key whose file value is a JSON string of etcd's value
    /// (its text, or with `csv` only its base64) in [`Merger::requoted`].
    pub(crate) fn check_requoted(mut self, csv: bool) -> Merger {
        self.requote_check = Some(csv);
        self
    }

    /// Compares values as JSON documents (`-v json`): a value with the same meaning as the
    /// file's, whatever its spacing, member order or escapes, is unchanged.
    pub(crate) fn json_values(mut self, json: bool) -> Merger {
        self.json_values = json;
        self
    }

    /// Shows the count of records read on `progress`, record by record (unchanged records
    /// included, so that an import with nothing to write still moves).
    pub(crate) fn progress(mut self, progress: Progress) -> Merger {
        self.progress = progress;
        self
    }

    /// The next change, in key order.
    pub(crate) async fn next(&mut self) -> Result<Option<Change>> {
        loop {
            if self.file.is_none() && !self.file_done {
                self.file = self.source.next().await?;
                match self.file {
                    Some(_) => {
                        self.records += 1;
                        self.progress.set_position(self.records);
                    }
                    None => self.file_done = true,
                }
            }
            if self.file_done && !self.replace {
                return Ok(None);
            }
            if self.etcd.is_empty() {
                if let Some(pager) = &mut self.pager {
                    match pager.next_page().await? {
                        Some(page) => {
                            self.etcd = page.into();
                            continue;
                        }
                        None => self.pager = None,
                    }
                }
            }
            let order = match (&self.file, self.etcd.front()) {
                (None, None) => return Ok(None),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(f), Some(e)) => f.key.as_ref().cmp(e.key()),
            };
            match order {
                Ordering::Less => {
                    if let Some(f) = self.file.take() {
                        return Ok(Some(Change {
                            kind: ChangeKind::Added,
                            key: f.key,
                            value: f.value,
                            mod_revision: 0,
                        }));
                    }
                }
                Ordering::Equal => {
                    if let (Some(f), Some(e)) = (self.file.take(), self.etcd.pop_front()) {
                        let same = if self.json_values {
                            same_json(&f.value, e.value())
                        } else {
                            f.value.as_ref() == e.value()
                        };
                        if same {
                            self.unchanged += 1;
                        } else {
                            if let (Some(csv), None) = (self.requote_check, &self.requoted) {
                                if let Some(meant) =
                                    crate::mismatch::requoted(&f.value, e.value(), csv)
                                {
                                    self.requoted = Some((f.key.clone(), e.value_bytes(), meant));
                                }
                            }
                            return Ok(Some(Change {
                                kind: ChangeKind::Changed,
                                key: f.key,
                                value: f.value,
                                mod_revision: e.mod_revision(),
                            }));
                        }
                    }
                }
                Ordering::Greater => {
                    if let Some(e) = self.etcd.pop_front() {
                        if self.replace {
                            return Ok(Some(Change {
                                kind: ChangeKind::Deleted,
                                key: e.key_bytes(),
                                value: Bytes::new(),
                                mod_revision: e.mod_revision(),
                            }));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports() {
        let mut out = Vec::new();
        let mut r = Report::new(&mut out, Verbosity::Verbose, KeyType::Utf8);
        r.change(ChangeKind::Added, b"a").unwrap();
        r.change(ChangeKind::Changed, b"b").unwrap();
        r.change(ChangeKind::Deleted, b"\xff").unwrap();
        r.counts.unchanged = 4;
        r.counts.skipped = 2;
        r.summary(true, 17, 0).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "+ \"a\"\n~ \"b\"\n- base64:/w==\n\
             dry run at revision 17: 1 added, 1 changed, 1 deleted, 4 unchanged, \
             2 skipped (outside --prefix)\n"
        );
        let mut out = Vec::new();
        let mut r = Report::new(&mut out, Verbosity::Compact, KeyType::Binary);
        r.change(ChangeKind::Added, b"a").unwrap();
        r.summary(false, 20, 1).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "imported at revision 20 in 1 transaction: 1 added, 0 changed, 0 deleted, 0 unchanged\n"
        );
        let mut out = Vec::new();
        let mut r = Report::new(&mut out, Verbosity::Silent, KeyType::Binary);
        r.change(ChangeKind::Added, b"a").unwrap();
        r.summary(false, 20, 1).unwrap();
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn merging_without_etcd_adds_everything() {
        let records = vec![Record::new("a", "1"), Record::new("b", "2")];
        let mut m = Merger::new(Source::Sorted(records.into_iter()), None, true);
        let mut kinds = Vec::new();
        while let Some(c) = m.next().await.unwrap() {
            kinds.push((c.kind, c.key));
        }
        assert_eq!(
            kinds,
            vec![
                (ChangeKind::Added, Bytes::from_static(b"a")),
                (ChangeKind::Added, Bytes::from_static(b"b"))
            ]
        );
        assert_eq!(m.records, 2);
    }

    #[tokio::test]
    async fn the_progress_moves_with_every_record_read() {
        let records = vec![Record::new("a", "1"), Record::new("b", "2")];
        let progress = Progress::hidden();
        let mut m = Merger::new(Source::Sorted(records.into_iter()), None, false)
            .progress(progress.clone());
        assert!(m.next().await.unwrap().is_some());
        assert_eq!(progress.position(), 1);
        while m.next().await.unwrap().is_some() {}
        assert_eq!(progress.position(), 2);
    }

    #[test]
    fn summary_counts_keys_the_file_lacks() {
        let mut out = Vec::new();
        let mut r = Report::new(&mut out, Verbosity::Compact, KeyType::Utf8);
        r.counts.unchanged = 2;
        r.counts.not_in_file = 3;
        r.summary(true, 9, 0).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "dry run at revision 9: 0 added, 0 changed, 0 deleted, 2 unchanged, \
             3 kept that the file lacks (--replace deletes them)\n"
        );
    }
}
