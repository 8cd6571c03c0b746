//! The JSON format: one object mapping each key to its value.
//!
//! Written one entry per line, in the order records come (etcd's key order on export):
//!
//! ```text
//! {
//!   "config/a": {"port":80},
//!   "config/b": "text"
//! }
//! ```
//!
//! An empty dump is `{}`. Reading streams the object entry by entry (serde's map visitor),
//! so a large file is never held in memory as text.

use super::{json_error, write_error, Encoding, RecordWriter};
use crate::error::{Error, Result};
use crate::record::{display_key, Encoded, Record};
use serde::de::{DeserializeSeed, Error as _, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::cell::Cell;
use std::io::{BufRead, Read, Write};
use std::rc::Rc;

/// Writes the JSON object format.
#[derive(Debug)]
pub struct JsonWriter<W> {
    out: W,
    encoding: Encoding,
    entries: u64,
}

impl<W: Write> JsonWriter<W> {
    /// A writer over `out`.
    pub fn new(out: W, encoding: Encoding) -> Self {
        JsonWriter {
            out,
            encoding,
            entries: 0,
        }
    }
}

/// Writes a JSON value: a raw JSON text as is, a string quoted and escaped.
pub(crate) fn write_value<W: Write>(out: &mut W, value: &Encoded<'_>) -> std::io::Result<()> {
    match value {
        Encoded::Json(raw) => out.write_all(raw.as_bytes()),
        Encoded::Text(text) => serde_json::to_writer(&mut *out, text.as_ref()).map_err(Into::into),
    }
}

impl<W: Write> RecordWriter for JsonWriter<W> {
    fn write(&mut self, record: &Record) -> Result<()> {
        let (key, value) = self.encoding.encode(record)?;
        let out = &mut self.out;
        let lead: &[u8] = if self.entries == 0 {
            b"{\n  "
        } else {
            b",\n  "
        };
        (|| {
            out.write_all(lead)?;
            serde_json::to_writer(&mut *out, key.as_ref())?;
            out.write_all(b": ")?;
            write_value(out, &value)
        })()
        .map_err(write_error)?;
        self.entries += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        let end: &[u8] = if self.entries == 0 { b"{}\n" } else { b"\n}\n" };
        self.out.write_all(end).map_err(write_error)?;
        self.out.flush().map_err(write_error)
    }
}

/// Counts the lines that serde_json has consumed (it reads byte by byte).
struct LineCount<R> {
    inner: R,
    newlines: Rc<Cell<u64>>,
    last: Rc<Cell<u8>>,
}

impl<R: Read> Read for LineCount<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let lines = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        self.newlines.set(self.newlines.get() + lines);
        if let Some(&b) = buf[..n].last() {
            self.last.set(b);
        }
        Ok(n)
    }
}

type EntrySink<'s> = dyn FnMut(String, &RawValue) -> Result<()> + 's;

struct Entries<'s, 'f> {
    sink: &'s mut EntrySink<'f>,
    failed: &'s mut Option<Error>,
    /// The member being read: its key and the line the key is on.
    current: &'s mut Option<(String, u64)>,
    /// The last member read: its key, and the lines of its key and of its value's end.
    last: &'s mut Option<(String, u64, u64)>,
    newlines: Rc<Cell<u64>>,
}

impl<'de> Visitor<'de> for Entries<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object mapping keys to values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            *self.current = Some((key.clone(), self.newlines.get() + 1));
            let value: Box<RawValue> = map.next_value()?;
            if let Some((key, line)) = self.current.take() {
                *self.last = Some((key, line, self.newlines.get() + 1));
            }
            if let Err(e) = (self.sink)(key, &value) {
                *self.failed = Some(e);
                return Err(A::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Entries<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

/// Reads the JSON object format entry by entry.
pub(crate) fn read<R: BufRead>(
    encoding: Encoding,
    mut input: R,
    file: &str,
    sink: &mut dyn FnMut(Record, u64) -> Result<()>,
) -> Result<()> {
    let head = super::head(&mut input, file)?;
    let newlines = Rc::new(Cell::new(0));
    let last = Rc::new(Cell::new(0));
    let reader = LineCount {
        inner: input,
        newlines: newlines.clone(),
        last: last.clone(),
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut failed = None;
    let mut current = None;
    let mut last_member = None;
    let mut entry = |key: String, raw: &RawValue| -> Result<()> {
        // serde_json reads one byte past a number to find its end: a newline read that
        // way belongs to the next line.
        let peeked_newline =
            last.get() == b'\n' && raw.get().ends_with(|c: char| c.is_ascii_digit());
        let line = newlines.get() + 1 - u64::from(peeked_newline);
        let key_bytes = encoding.key_type.decode(&key).map_err(|reason| {
            Error::input(
                file,
                line,
                format!("key {}: {reason}", display_key(key.as_bytes())),
            )
        })?;
        let value = encoding
            .value_type
            .decode_json(raw.get())
            .map_err(|reason| {
                Error::input(
                    file,
                    line,
                    format!("key {}: {reason}", display_key(key.as_bytes())),
                )
            })?;
        sink(Record::new(key_bytes, value), line)
    };
    let result = Entries {
        sink: &mut entry,
        failed: &mut failed,
        current: &mut current,
        last: &mut last_member,
        newlines: newlines.clone(),
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    if let Some(e) = failed {
        return Err(e);
    }
    result.map_err(|e| {
        if let (true, None, Some((key, start, end))) = (e.is_eof(), &current, &last_member) {
            if start < end {
                // The object never closes: most likely the last value swallowed its `}`.
                return Error::input(
                    file,
                    *start,
                    format!(
                        "the file ends before the object's closing `}}`; the value of key {} \
                         runs from here to line {end}: is a `]` or `}}` missing in it?",
                        display_key(key.as_bytes())
                    ),
                );
            }
        }
        if let (true, Some((key, line))) = (e.is_eof(), current) {
            // The end of the file is not where the mistake is: the value that never ends
            // is.
            return Error::input(
                file,
                line,
                format!(
                    "the value of key {} starts here and is not closed before the end of \
                     the file (a missing `]`, `}}` or `\"`?)",
                    display_key(key.as_bytes())
                ),
            );
        }
        let hint = super::format_hint(encoding.format, file, &head);
        super::with_hint(json_error(file, 0, &e), hint)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;
    use crate::record::{KeyType, ValueType};

    fn enc(v: ValueType) -> Encoding {
        Encoding::new(Format::Json, KeyType::Utf8, v)
    }

    fn read_str(e: Encoding, text: &str) -> Result<Vec<(Record, u64)>> {
        let mut got = Vec::new();
        read(e, text.as_bytes(), "dump.json", &mut |r, l| {
            got.push((r, l));
            Ok(())
        })?;
        Ok(got)
    }

    #[test]
    fn writes_one_entry_per_line() {
        let mut out = Vec::new();
        let mut w: Box<dyn RecordWriter> =
            Box::new(JsonWriter::new(&mut out, enc(ValueType::Json)));
        w.write(&Record::new("a", "1")).unwrap();
        w.write(&Record::new("b\n", "{\"x\": [true]}")).unwrap();
        w.finish().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n  \"a\": 1,\n  \"b\\n\": {\"x\":[true]}\n}\n"
        );
        let mut out = Vec::new();
        Box::new(JsonWriter::new(&mut out, enc(ValueType::Json)))
            .finish()
            .unwrap();
        assert_eq!(out, b"{}\n");
    }

    #[test]
    fn reads_entries_with_lines() {
        let got = read_str(
            enc(ValueType::Json),
            "{\n  \"a\": 1,\n  \"b\": {\"x\" : 2}\n}\n",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                (Record::new("a", "1"), 2),
                (Record::new("b", "{\"x\":2}"), 3)
            ]
        );
        assert!(read_str(enc(ValueType::Json), "{}").unwrap().is_empty());
    }

    #[test]
    fn errors_name_file_line_and_reason() {
        let e = read_str(enc(ValueType::Json), "{\n  \"a\": 1,\n  \"b\": [1,\n}").unwrap_err();
        assert!(e.to_string().starts_with("dump.json:4: "), "{e}");
        let e = read_str(enc(ValueType::Utf8), "{\n  \"a\": \"x\",\n  \"b\": 2\n}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dump.json:3: key \"b\": the value must be a JSON string with -v utf8, found a \
             number; if the file was written with -v json, use -v json"
        );
        let e = read_str(
            Encoding::new(Format::Json, KeyType::Binary, ValueType::Json),
            "{\"%%\": 1}",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("key \"%%\": the key is not valid base64"),
            "{e}"
        );
        let e = read_str(enc(ValueType::Json), "[1]").unwrap_err();
        assert!(e.to_string().contains("expected a JSON object"), "{e}");
        let e = read_str(enc(ValueType::Json), "{} {}").unwrap_err();
        assert!(e.to_string().contains("trailing characters"), "{e}");
        let e = read_str(enc(ValueType::Json), "").unwrap_err();
        assert!(e.to_string().starts_with("dump.json:1: EOF"), "{e}");
    }

    #[test]
    fn errors_point_at_the_mistake_not_the_end() {
        // A value never closed: the line of its key, not of the end of the file.
        let text = "{\n  \"z\": 0,\n  \"a\": [1,\n  2,\n  3\n\n";
        let e = read_str(enc(ValueType::Json), text).unwrap_err();
        assert_eq!(
            e.to_string(),
            "dump.json:3: the value of key \"a\" starts here and is not closed before the end \
             of the file (a missing `]`, `}` or `\"`?)"
        );
        // A value that swallowed the object's `}`: the line where it starts.
        let text = "{\n  \"a\": {\"x\": 1,\n  \"b\": 2,\n  \"c\": 3\n}\n";
        let e = read_str(enc(ValueType::Json), text).unwrap_err();
        assert_eq!(
            e.to_string(),
            "dump.json:2: the file ends before the object's closing `}`; the value of key \"a\" \
             runs from here to line 5: is a `]` or `}` missing in it?"
        );
        // A string running past its line: the line it is on.
        let text = "{\n  \"a\": \"x\n  \"b\": 2\n}\n";
        let e = read_str(enc(ValueType::Json), text).unwrap_err();
        assert!(
            e.to_string().starts_with("dump.json:2: control character"),
            "{e}"
        );
        // A missing comma: the line of the next member.
        let text = "{\n  \"a\": 1\n  \"b\": 2,\n  \"c\": 3\n}\n";
        let e = read_str(enc(ValueType::Json), text).unwrap_err();
        assert_eq!(e.to_string(), "dump.json:3: expected `,` or `}` (column 3)");
    }
}
