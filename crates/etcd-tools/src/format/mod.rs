//! The file formats: a JSON object, CSV, and JSON lines; writers and streaming readers.
//!
//! Every reader hands records to a sink one at a time, so reading never holds the file;
//! every writer writes each record as it comes.

pub mod csv;
pub mod json;
pub mod jsonl;

use crate::error::{Error, Result};
use crate::record::{display_key, KeyType, Record, ValueType};
use std::io::{BufRead, Write};

/// A dump file's format (`-f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// One JSON object mapping each key to its value, in key order.
    #[default]
    Json,
    /// RFC 4180 CSV, one `key,value` record per key (a header only with `--csv-header`).
    Csv,
    /// JSON lines: one object `{"key":...,"value":...}` per line.
    Jsonl,
}

impl Format {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

/// Writes records to a file in one format.
pub trait RecordWriter {
    /// Encodes and writes one record. Fails, naming the key, when the key or the value
    /// cannot be written losslessly with the chosen types.
    fn write(&mut self, record: &Record) -> Result<()>;

    /// Ends the file (closing brace, ...) and flushes.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// How records are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Encoding {
    /// The file's format.
    pub format: Format,
    /// How keys are written.
    pub key_type: KeyType,
    /// How values are written.
    pub value_type: ValueType,
    /// CSV only: the file starts with the header record `key,value` (txaioetcd's files
    /// have none).
    pub csv_header: bool,
}

impl Encoding {
    /// An encoding from its three parts.
    pub fn new(format: Format, key_type: KeyType, value_type: ValueType) -> Encoding {
        Encoding {
            format,
            key_type,
            value_type,
            csv_header: false,
        }
    }

    /// The same encoding, with (for CSV) or without the header record `key,value`.
    pub fn with_csv_header(mut self, header: bool) -> Encoding {
        self.csv_header = header;
        self
    }

    /// Encodes a record's key and value.
    pub(crate) fn encode<'r>(
        &self,
        record: &'r Record,
    ) -> Result<(std::borrow::Cow<'r, str>, crate::record::Encoded<'r>)> {
        let fail = |reason| Error::Encode {
            key: display_key(&record.key),
            reason,
        };
        let key = self.key_type.encode(&record.key).map_err(fail)?;
        let value = self.value_type.encode(&record.value).map_err(fail)?;
        Ok((key, value))
    }
}

/// A writer of `encoding.format` over `out`. Only `jsonl` writes metadata, and only with
/// `with_metadata`.
pub fn writer<'a, W: Write + 'a>(
    encoding: Encoding,
    out: W,
    with_metadata: bool,
) -> Box<dyn RecordWriter + 'a> {
    match encoding.format {
        Format::Json => Box::new(json::JsonWriter::new(out, encoding)),
        Format::Csv => Box::new(csv::CsvWriter::new(out, encoding)),
        Format::Jsonl => Box::new(jsonl::JsonlWriter::new(out, encoding, with_metadata)),
    }
}

/// Reads every record of `input`, in file order, handing each to `sink` with its line.
///
/// Stops at the first invalid record with an [`Error::Input`] naming `file`, the line and
/// the reason, or at the first error of `sink`. Records come decoded: keys and values are
/// the bytes to store.
pub fn read<R: BufRead>(
    encoding: Encoding,
    input: R,
    file: &str,
    sink: &mut dyn FnMut(Record, u64) -> Result<()>,
) -> Result<()> {
    match encoding.format {
        Format::Json => json::read(encoding, input, file, sink),
        Format::Csv => csv::read(encoding, input, file, sink),
        Format::Jsonl => jsonl::read(encoding, input, file, sink),
    }
}

/// Turns a serde_json error into an input error at its line, column in the reason.
pub(crate) fn json_error(file: &str, line_offset: u64, e: &serde_json::Error) -> Error {
    let text = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let reason = text.strip_suffix(&position).unwrap_or(&text);
    // Column 0 is the newline that ends the line before (a string running past its line).
    let line = e.line().max(1) - usize::from(e.column() == 0 && e.line() > 1);
    let line = line_offset + line as u64;
    if e.column() > 0 {
        Error::input(file, line, format!("{reason} (column {})", e.column()))
    } else {
        Error::input(file, line, reason.to_string())
    }
}

/// How much of a file's start [`format_hint`] looks at.
pub(crate) const HEAD: usize = 4096;

/// A hint for a file whose start (`head`) suggests another format than `format`: the
/// way out, appended to the reason of an error on its first records.
pub(crate) fn format_hint(format: Format, file: &str, head: &[u8]) -> Option<&'static str> {
    let start = head
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(head)
        .trim_ascii_start();
    let first_line = start.split(|&b| b == b'\n').next().unwrap_or_default();
    let csv_named = file.to_ascii_lowercase().ends_with(".csv");
    match format {
        Format::Json | Format::Jsonl if !start.starts_with(b"{") => {
            (csv_named || first_line.contains(&b',')).then_some("this looks like CSV: use -f csv")
        }
        Format::Json => {
            let two_objects = start.starts_with(b"{\"key\"")
                && first_line.trim_ascii_end().ends_with(b"}")
                && start[first_line.len()..]
                    .trim_ascii_start()
                    .starts_with(b"{");
            two_objects.then_some("this looks like JSON lines: use -f jsonl")
        }
        Format::Jsonl => (first_line.trim_ascii_end() == b"{")
            .then_some("this looks like one JSON object: use -f json"),
        Format::Csv => start
            .starts_with(b"{")
            .then_some("this looks like JSON: use -f json or -f jsonl"),
    }
}

/// `error` with `hint` added to its reason, when it is an input error and there is one.
pub(crate) fn with_hint(error: Error, hint: Option<&str>) -> Error {
    match (error, hint) {
        (Error::Input { file, line, reason }, Some(hint)) => Error::Input {
            file,
            line,
            reason: format!("{reason}; {hint}"),
        },
        (error, _) => error,
    }
}

/// The first [`HEAD`] bytes of `input` (fewer at its end), without consuming them.
pub(crate) fn head<R: BufRead>(input: &mut R, file: &str) -> Result<Vec<u8>> {
    let buf = input
        .fill_buf()
        .map_err(|e| Error::io(format!("cannot read {file}"), e))?;
    Ok(buf[..buf.len().min(HEAD)].to_vec())
}

pub(crate) fn write_error(e: std::io::Error) -> Error {
    Error::io("cannot write the output", e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Metadata;

    pub(crate) fn records() -> Vec<Record> {
        vec![
            Record::new("a", r#"{"x": 1}"#),
            Record::new("b,\"c\"\n", "[1,\n 2]"),
            Record::new("é", "\"text\""),
        ]
    }

    fn write_all(encoding: Encoding, records: &[Record], meta: bool) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut w = writer(encoding, &mut out, meta);
        for r in records {
            w.write(r)?;
        }
        w.finish()?;
        Ok(out)
    }

    fn read_all(encoding: Encoding, text: &[u8]) -> Result<Vec<(Record, u64)>> {
        let mut got = Vec::new();
        read(encoding, text, "f", &mut |r, line| {
            got.push((r, line));
            Ok(())
        })?;
        Ok(got)
    }

    #[test]
    fn every_lossless_combination_round_trips() {
        let binary = vec![
            Record::new(&b"\xff\x00k"[..], &b"\x00\xfe"[..]),
            Record::new("k2", ""),
        ];
        for format in [Format::Json, Format::Csv, Format::Jsonl] {
            for key_type in [KeyType::Utf8, KeyType::Binary] {
                for value_type in [ValueType::Json, ValueType::Utf8, ValueType::Binary] {
                    let encoding = Encoding::new(format, key_type, value_type);
                    let mut data = records();
                    if key_type == KeyType::Binary && value_type == ValueType::Binary {
                        data.extend(binary.clone());
                    }
                    let text = write_all(encoding, &data, false)
                        .unwrap_or_else(|e| panic!("{encoding:?}: {e}"));
                    let back: Vec<Record> = read_all(encoding, &text)
                        .unwrap_or_else(|e| panic!("{encoding:?}: {e}"))
                        .into_iter()
                        .map(|(r, _)| r)
                        .collect();
                    if value_type == ValueType::Json {
                        // JSON documents come back without insignificant whitespace.
                        for r in &mut data {
                            let text = std::str::from_utf8(&r.value).unwrap();
                            r.value = crate::record::compact_json(text).into_owned().into();
                        }
                    }
                    assert_eq!(back, data, "{encoding:?}");
                }
            }
        }
    }

    #[test]
    fn lossy_combinations_fail_naming_the_key() {
        for format in [Format::Json, Format::Csv, Format::Jsonl] {
            let e = Encoding::new(format, KeyType::Utf8, ValueType::Binary);
            let err = write_all(e, &[Record::new(&b"k\xff"[..], "v")], false).unwrap_err();
            assert_eq!(
                err.to_string(),
                "key base64:a/8=: the key is not valid UTF-8 (byte 1); use -k binary"
            );
            let e = Encoding::new(format, KeyType::Utf8, ValueType::Utf8);
            let err = write_all(e, &[Record::new("k", &b"\xff"[..])], false).unwrap_err();
            assert!(err
                .to_string()
                .starts_with("key \"k\": the value is not valid UTF-8"));
            let e = Encoding::new(format, KeyType::Utf8, ValueType::Json);
            let err = write_all(e, &[Record::new("k", "plain")], false).unwrap_err();
            assert!(err.to_string().contains("not JSON"), "{err}");
        }
    }

    #[test]
    fn files_of_another_format_get_a_hint() {
        let json = Encoding::new(Format::Json, KeyType::Utf8, ValueType::Json);
        let jsonl = Encoding::new(Format::Jsonl, KeyType::Utf8, ValueType::Json);
        let csv = Encoding::new(Format::Csv, KeyType::Utf8, ValueType::Json);
        let csv_text = b"a,1\r\nb,2\r\n";
        let e = read_all(json, csv_text).unwrap_err().to_string();
        assert!(
            e.starts_with("f:1: ") && e.ends_with("; this looks like CSV: use -f csv"),
            "{e}"
        );
        let e = read_all(jsonl, csv_text).unwrap_err().to_string();
        assert!(e.ends_with("; this looks like CSV: use -f csv"), "{e}");
        let lines = b"{\"key\":\"a\",\"value\":1}\n{\"key\":\"b\",\"value\":2}\n";
        let e = read_all(json, lines).unwrap_err().to_string();
        assert!(
            e.ends_with("; this looks like JSON lines: use -f jsonl"),
            "{e}"
        );
        let e = read_all(csv, lines).unwrap_err().to_string();
        assert!(
            e.ends_with("; this looks like JSON: use -f json or -f jsonl"),
            "{e}"
        );
        let e = read_all(jsonl, b"{\n  \"a\": 1\n}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("; this looks like one JSON object: use -f json"),
            "{e}"
        );
        // A JSON file with a mistake gets no hint.
        let e = read_all(json, b"{\n  \"a\": 1,\n  \"b\" 2\n}\n")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("looks like"), "{e}");
    }

    #[test]
    fn jsonl_metadata() {
        let e = Encoding::new(Format::Jsonl, KeyType::Utf8, ValueType::Utf8);
        let r = Record::new("k", "v").with_metadata(Metadata::new(2, 5, 3, 7587868989212471056));
        let text = write_all(e, &[r], true).unwrap();
        assert_eq!(
            String::from_utf8(text.clone()).unwrap(),
            "{\"key\":\"k\",\"value\":\"v\",\"create_revision\":2,\"mod_revision\":5,\
             \"version\":3,\"lease\":7587868989212471056}\n"
        );
        let back = read_all(e, &text).unwrap();
        assert_eq!(back, vec![(Record::new("k", "v"), 1)]);
    }
}
