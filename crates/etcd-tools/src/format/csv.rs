//! The CSV format: RFC 4180, header `key,value`, one record per key-value.
//!
//! Fields are quoted (with `"` doubled inside) only when they contain a comma, a quote,
//! CR or LF; lines end with CRLF. Reading accepts CRLF or LF line ends and quoted or bare
//! fields, and requires the header and exactly two fields per record.

use super::{write_error, Encoding, RecordWriter};
use crate::error::{Error, Result};
use crate::record::{display_key, Encoded, Record};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead, Read, Write};
use std::rc::Rc;

/// Writes the CSV format.
#[derive(Debug)]
pub struct CsvWriter<W: Write> {
    out: csv::Writer<W>,
    encoding: Encoding,
    header_written: bool,
}

impl<W: Write> CsvWriter<W> {
    /// A writer over `out`.
    pub fn new(out: W, encoding: Encoding) -> Self {
        let out = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .quote_style(csv::QuoteStyle::Necessary)
            .from_writer(out);
        CsvWriter {
            out,
            encoding,
            header_written: false,
        }
    }

    fn header(&mut self) -> Result<()> {
        if !self.header_written {
            self.out
                .write_record(["key", "value"])
                .map_err(csv_write_error)?;
            self.header_written = true;
        }
        Ok(())
    }
}

fn csv_write_error(e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => write_error(e),
        other => write_error(std::io::Error::other(format!("{other:?}"))),
    }
}

impl<W: Write> RecordWriter for CsvWriter<W> {
    fn write(&mut self, record: &Record) -> Result<()> {
        self.header()?;
        let (key, value) = self.encoding.encode(record)?;
        let value = match &value {
            Encoded::Json(raw) => *raw,
            Encoded::Text(text) => text.as_ref(),
        };
        self.out
            .write_record([key.as_bytes(), value.as_bytes()])
            .map_err(csv_write_error)
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.header()?;
        self.out.flush().map_err(write_error)
    }
}

/// Positions of the newlines read but not yet passed by a record start.
#[derive(Default)]
struct Newlines {
    /// Bytes read so far.
    read: u64,
    /// Whether the last byte read is a CR.
    after_cr: bool,
    /// Newlines before the last record start asked about.
    passed: u64,
    /// Positions of the newlines after it, and whether a CR precedes each.
    ahead: VecDeque<(u64, bool)>,
}

impl Newlines {
    /// The 1-based line of the record the csv crate places at byte offset `byte`: the
    /// first line at or after it that is not blank (the csv crate skips blank lines and
    /// places the record at the first of them). Offsets must not decrease.
    fn line_at(&mut self, byte: u64) -> u64 {
        while self.ahead.front().is_some_and(|&(p, _)| p < byte) {
            self.ahead.pop_front();
            self.passed += 1;
        }
        let mut start = byte;
        while let Some(&(p, cr)) = self.ahead.front() {
            if p == start || (cr && p == start + 1) {
                self.ahead.pop_front();
                self.passed += 1;
                start = p + 1;
            } else {
                break;
            }
        }
        self.passed + 1
    }
}

struct Tracked<R> {
    inner: R,
    newlines: Rc<RefCell<Newlines>>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut nl = self.newlines.borrow_mut();
        for &b in &buf[..n] {
            if b == b'\n' {
                let entry = (nl.read, nl.after_cr);
                nl.ahead.push_back(entry);
            }
            nl.after_cr = b == b'\r';
            nl.read += 1;
        }
        Ok(n)
    }
}

/// Reads the CSV format record by record.
pub(crate) fn read<R: BufRead>(
    encoding: Encoding,
    input: R,
    file: &str,
    sink: &mut dyn FnMut(Record, u64) -> Result<()>,
) -> Result<()> {
    // The csv crate does not count the blank lines it skips: count lines ourselves.
    let newlines = Rc::new(RefCell::new(Newlines::default()));
    let tracked = Tracked {
        inner: input,
        newlines: newlines.clone(),
    };
    let line_at = |byte: u64| newlines.borrow_mut().line_at(byte);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(tracked);
    let mut record = csv::ByteRecord::new();
    let mut header = true;
    loop {
        let more = reader.read_byte_record(&mut record).map_err(|e| {
            let line = e.position().map_or(0, |p| line_at(p.byte()));
            match e.into_kind() {
                csv::ErrorKind::Io(e) => Error::io(format!("cannot read {file}"), e),
                other => Error::input(file, line, format!("invalid CSV: {other:?}")),
            }
        })?;
        if !more {
            break;
        }
        let line = record.position().map_or(0, |p| line_at(p.byte()));
        if header {
            header = false;
            if record.len() != 2 || &record[0] != b"key" || &record[1] != b"value" {
                let found: Vec<_> = record.iter().map(String::from_utf8_lossy).collect();
                return Err(Error::input(
                    file,
                    line,
                    format!(
                        "the header must be `key,value`, found `{}`",
                        found.join(",")
                    ),
                ));
            }
            continue;
        }
        if record.len() != 2 {
            return Err(Error::input(
                file,
                line,
                format!("expected 2 fields (key,value), found {}", record.len()),
            ));
        }
        let text = |i: usize, what: &str| {
            std::str::from_utf8(&record[i]).map_err(|e| {
                Error::input(
                    file,
                    line,
                    format!(
                        "the {what} is not valid UTF-8 text (byte {})",
                        e.valid_up_to()
                    ),
                )
            })
        };
        let key_text = text(0, "key")?;
        let value_text = text(1, "value")?;
        let key = encoding.key_type.decode(key_text).map_err(|reason| {
            Error::input(
                file,
                line,
                format!("key {}: {reason}", display_key(key_text.as_bytes())),
            )
        })?;
        let value = encoding
            .value_type
            .decode_text(value_text)
            .map_err(|reason| {
                Error::input(
                    file,
                    line,
                    format!("key {}: {reason}", display_key(key_text.as_bytes())),
                )
            })?;
        sink(Record::new(key, value), line)?;
    }
    if header {
        return Err(Error::input(
            file,
            1,
            "the file is empty; a CSV dump starts with the header `key,value`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;
    use crate::record::{KeyType, ValueType};

    fn enc(v: ValueType) -> Encoding {
        Encoding::new(Format::Csv, KeyType::Utf8, v)
    }

    fn read_str(v: ValueType, text: &str) -> Result<Vec<(Record, u64)>> {
        let mut got = Vec::new();
        read(enc(v), text.as_bytes(), "d.csv", &mut |r, l| {
            got.push((r, l));
            Ok(())
        })?;
        Ok(got)
    }

    #[test]
    fn rfc4180_quoting() {
        let mut out = Vec::new();
        let mut w: Box<dyn RecordWriter> = Box::new(CsvWriter::new(&mut out, enc(ValueType::Utf8)));
        w.write(&Record::new("a", "plain")).unwrap();
        w.write(&Record::new("b,c", "say \"hi\"\nbye")).unwrap();
        w.write(&Record::new("d", "")).unwrap();
        w.finish().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "key,value\r\na,plain\r\n\"b,c\",\"say \"\"hi\"\"\nbye\"\r\nd,\r\n"
        );
        let mut out = Vec::new();
        Box::new(CsvWriter::new(&mut out, enc(ValueType::Utf8)))
            .finish()
            .unwrap();
        assert_eq!(out, b"key,value\r\n");
    }

    #[test]
    fn reads_records_with_lines() {
        let got = read_str(ValueType::Utf8, "key,value\na,1\n\"b\nc\",2\n\r\n\nd,\n").unwrap();
        assert_eq!(
            got,
            vec![
                (Record::new("a", "1"), 2),
                (Record::new("b\nc", "2"), 3),
                (Record::new("d", ""), 7)
            ]
        );
        assert!(read_str(ValueType::Utf8, "key,value\r\n")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn wrong_columns_are_rejected() {
        let e = read_str(ValueType::Utf8, "k,v\na,1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.csv:1: the header must be `key,value`, found `k,v`"
        );
        let e = read_str(ValueType::Utf8, "key,value\na,1\nb,2,3\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.csv:3: expected 2 fields (key,value), found 3"
        );
        let e = read_str(ValueType::Utf8, "key,value\n\n\nb,1\r\n\r\nc\r\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.csv:6: expected 2 fields (key,value), found 1"
        );
        let e = read_str(ValueType::Utf8, "key,value\nb\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.csv:2: expected 2 fields (key,value), found 1"
        );
        let e = read_str(ValueType::Json, "key,value\na,{\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("d.csv:2: key \"a\": the value is not JSON"),
            "{e}"
        );
        let e = read_str(ValueType::Utf8, "").unwrap_err();
        assert!(
            e.to_string().starts_with("d.csv:1: the file is empty"),
            "{e}"
        );
        let e = read_str(ValueType::Utf8, "key,value\n,1\n").unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }
}
