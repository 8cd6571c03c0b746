//! The file to import: where it comes from, its validation (one pass, nothing kept), and
//! its records read again for the diff.

use super::ImportOptions;
use crate::diff::Source;
use crate::error::{Error, Result};
use crate::format;
use crate::mismatch::Evidence;
use crate::progress::Progress;
use crate::record::{display_key, Record};
use bytes::Bytes;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;

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
    /// With `-v json`: every value of the file is a JSON string, so [`import`](super::import()) checks,
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

/// Reads the (validated, key-ordered) file again on a blocking thread.
pub(super) fn stream_records(input: &Input, options: &ImportOptions) -> Source {
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
pub(super) fn sorted_records(input: &Input, options: &ImportOptions) -> Result<Source> {
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
