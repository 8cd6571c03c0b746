//! The CSV format: RFC 4180, one record `key,value` per key-value, as txaioetcd writes it.
//!
//! No header record unless asked for (`--csv-header`: the first record is `key,value`).
//! The key cell holds the key per `-k`; the value cell holds, with `-v utf8`, the text
//! itself, and otherwise the value JSON-encoded compactly: the JSON document with `-v json`,
//! a JSON string of base64 with `-v binary` (a bare base64 cell is read too).
//!
//! Fields are quoted (with `"` doubled inside) only when they contain a comma, a quote,
//! CR or LF; lines end with CRLF. Reading accepts CRLF or LF line ends and quoted or bare
//! fields, and requires exactly two fields per record.

use super::{write_error, Encoding, RecordWriter};
use crate::error::{Error, Result};
use crate::record::{display_key, Encoded, Record, ValueType};
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
            header_written: !encoding.csv_header,
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
        let value = match value {
            Encoded::Json(raw) => raw,
            // base64 in a JSON string, as txaioetcd writes binary values.
            Encoded::Text(text) if self.encoding.value_type == ValueType::Binary => {
                std::borrow::Cow::Owned(format!("\"{text}\""))
            }
            Encoded::Text(text) => text,
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
    mut input: R,
    file: &str,
    sink: &mut dyn FnMut(Record, u64) -> Result<()>,
) -> Result<()> {
    let hint = super::format_hint(encoding.format, file, &super::head(&mut input, file)?);
    let with_hint = |e: Error| match &e {
        Error::Input { line: 1, .. } => super::with_hint(e, hint),
        _ => e,
    };
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
    let mut header = encoding.csv_header;
    let mut first = true;
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
        let looks_like_header =
            first && record.len() == 2 && &record[0] == b"key" && &record[1] == b"value";
        first = false;
        if header {
            header = false;
            if record.len() != 2 || &record[0] != b"key" || &record[1] != b"value" {
                let found: Vec<_> = record.iter().map(String::from_utf8_lossy).collect();
                return Err(Error::input(
                    file,
                    line,
                    format!(
                        "the header must be `key,value` (--csv-header), found `{}`",
                        found.join(",")
                    ),
                ));
            }
            continue;
        }
        if record.len() != 2 {
            return Err(with_hint(Error::input(
                file,
                line,
                format!("expected 2 fields (key,value), found {}", record.len()),
            )));
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
            with_hint(Error::input(
                file,
                line,
                format!("key {}: {reason}", display_key(key_text.as_bytes())),
            ))
        })?;
        let value = encoding
            .value_type
            .decode_cell(value_text)
            .map_err(|reason| {
                let hint = if looks_like_header {
                    "; this looks like a header record: pass --csv-header"
                } else {
                    ""
                };
                with_hint(Error::input(
                    file,
                    line,
                    format!("key {}: {reason}{hint}", display_key(key_text.as_bytes())),
                ))
            })?;
        sink(Record::new(key, value), line)?;
    }
    if header {
        return Err(Error::input(
            file,
            1,
            "the file is empty, but --csv-header expects the header `key,value`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;
    use crate::record::KeyType;

    fn enc(v: ValueType) -> Encoding {
        Encoding::new(Format::Csv, KeyType::Utf8, v)
    }

    fn read_enc(e: Encoding, text: &str) -> Result<Vec<(Record, u64)>> {
        let mut got = Vec::new();
        read(e, text.as_bytes(), "d.csv", &mut |r, l| {
            got.push((r, l));
            Ok(())
        })?;
        Ok(got)
    }

    fn read_str(v: ValueType, text: &str) -> Result<Vec<(Record, u64)>> {
        read_enc(enc(v), text)
    }

    fn write_str(e: Encoding, records: &[Record]) -> String {
        let mut out = Vec::new();
        let mut w: Box<dyn RecordWriter> = Box::new(CsvWriter::new(&mut out, e));
        for r in records {
            w.write(r).unwrap();
        }
        w.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc4180_quoting_without_header() {
        let records = [
            Record::new("a", "plain"),
            Record::new("b,c", "say \"hi\"\nbye"),
            Record::new("d", ""),
        ];
        assert_eq!(
            write_str(enc(ValueType::Utf8), &records),
            "a,plain\r\n\"b,c\",\"say \"\"hi\"\"\nbye\"\r\nd,\r\n"
        );
        assert_eq!(write_str(enc(ValueType::Utf8), &[]), "");
        assert_eq!(
            write_str(enc(ValueType::Utf8).with_csv_header(true), &records[..1]),
            "key,value\r\na,plain\r\n"
        );
        assert_eq!(
            write_str(enc(ValueType::Utf8).with_csv_header(true), &[]),
            "key,value\r\n"
        );
    }

    #[test]
    fn cells_are_compact_json_except_utf8() {
        // What txaioetcd writes: json.dumps(value, separators=(',', ':')).
        let records = [
            Record::new("j", "{\"a\": [1, \"x y\"]}"),
            Record::new("s", "\"text\""),
        ];
        assert_eq!(
            write_str(enc(ValueType::Json), &records),
            "j,\"{\"\"a\"\":[1,\"\"x y\"\"]}\"\r\ns,\"\"\"text\"\"\"\r\n"
        );
        let binary = [Record::new("b", &b"\x00\x01"[..])];
        assert_eq!(
            write_str(enc(ValueType::Binary), &binary),
            "b,\"\"\"AAE=\"\"\"\r\n"
        );
        let back = read_str(ValueType::Binary, "b,\"\"\"AAE=\"\"\"\r\n").unwrap();
        assert_eq!(back, vec![(binary[0].clone(), 1)]);
        // Bare base64, as this tool wrote it before.
        let back = read_str(ValueType::Binary, "b,AAE=\n").unwrap();
        assert_eq!(back, vec![(binary[0].clone(), 1)]);
        // JSON cells are stored compact.
        let back = read_str(ValueType::Json, "j,\"{ \"\"a\"\" : 1 }\"\n").unwrap();
        assert_eq!(back, vec![(Record::new("j", "{\"a\":1}"), 1)]);
    }

    #[test]
    fn reads_records_with_lines() {
        let got = read_str(ValueType::Utf8, "a,1\n\"b\nc\",2\n\r\n\nd,\n").unwrap();
        assert_eq!(
            got,
            vec![
                (Record::new("a", "1"), 1),
                (Record::new("b\nc", "2"), 2),
                (Record::new("d", ""), 6)
            ]
        );
        assert!(read_str(ValueType::Utf8, "").unwrap().is_empty());
        let with_header = enc(ValueType::Utf8).with_csv_header(true);
        let got = read_enc(with_header, "key,value\na,1\n").unwrap();
        assert_eq!(got, vec![(Record::new("a", "1"), 2)]);
        assert!(read_enc(with_header, "key,value\r\n").unwrap().is_empty());
        // Without --csv-header, a first record `key,value` is data for -v utf8.
        let got = read_str(ValueType::Utf8, "key,value\n").unwrap();
        assert_eq!(got, vec![(Record::new("key", "value"), 1)]);
    }

    #[test]
    fn wrong_columns_are_rejected() {
        let with_header = enc(ValueType::Utf8).with_csv_header(true);
        let e = read_enc(with_header, "k,v\na,1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.csv:1: the header must be `key,value` (--csv-header), found `k,v`"
        );
        let e = read_str(ValueType::Utf8, "a,1\nb,2,3\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.csv:2: expected 2 fields (key,value), found 3"
        );
        let e = read_str(ValueType::Utf8, "a,1\n\n\nb,1\r\n\r\nc\r\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.csv:6: expected 2 fields (key,value), found 1"
        );
        let e = read_str(ValueType::Json, "a,{\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("d.csv:1: key \"a\": the value is not JSON"),
            "{e}"
        );
        let e = read_enc(with_header, "").unwrap_err();
        assert!(
            e.to_string().starts_with("d.csv:1: the file is empty"),
            "{e}"
        );
        let e = read_str(ValueType::Utf8, ",1\n").unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        // A header given without --csv-header: the way out is named.
        for v in [ValueType::Json, ValueType::Binary] {
            let e = read_str(v, "key,value\na,1\n").unwrap_err();
            assert!(e.to_string().ends_with("pass --csv-header"), "{e}");
        }
    }
}
