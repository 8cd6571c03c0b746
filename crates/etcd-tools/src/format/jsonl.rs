//! The JSON lines format: one object per line, `{"key":...,"value":...}`, optionally
//! with etcd's metadata; streamable both ways.
//!
//! ```text
//! {"key":"config/a","value":{"port":80}}
//! {"key":"config/b","value":"text","create_revision":4,"mod_revision":9,"version":2,"lease":0}
//! ```

use super::{json_error, write_error, Encoding, RecordWriter};
use crate::error::{Error, Result};
use crate::record::{display_key, Record};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::{BufRead, Write};

/// Writes the JSON lines format.
#[derive(Debug)]
pub struct JsonlWriter<W> {
    out: W,
    encoding: Encoding,
    with_metadata: bool,
}

impl<W: Write> JsonlWriter<W> {
    /// A writer over `out`; with `with_metadata`, each line also has `create_revision`,
    /// `mod_revision`, `version` and `lease` (records without metadata get zeros).
    pub fn new(out: W, encoding: Encoding, with_metadata: bool) -> Self {
        JsonlWriter {
            out,
            encoding,
            with_metadata,
        }
    }
}

impl<W: Write> RecordWriter for JsonlWriter<W> {
    fn write(&mut self, record: &Record) -> Result<()> {
        let (key, value) = self.encoding.encode(record)?;
        let out = &mut self.out;
        let meta = self
            .with_metadata
            .then(|| record.metadata.unwrap_or_default());
        (|| {
            out.write_all(b"{\"key\":")?;
            serde_json::to_writer(&mut *out, key.as_ref())?;
            out.write_all(b",\"value\":")?;
            super::json::write_value(out, &value)?;
            if let Some(m) = meta {
                write!(
                    out,
                    ",\"create_revision\":{},\"mod_revision\":{},\"version\":{},\"lease\":{}",
                    m.create_revision, m.mod_revision, m.version, m.lease
                )?;
            }
            out.write_all(b"}\n")
        })()
        .map_err(write_error)
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.out.flush().map_err(write_error)
    }
}

/// One line; the metadata fields are accepted and ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow)]
    value: &'a RawValue,
    #[serde(default, rename = "create_revision")]
    _create_revision: Option<IgnoredAny>,
    #[serde(default, rename = "mod_revision")]
    _mod_revision: Option<IgnoredAny>,
    #[serde(default, rename = "version")]
    _version: Option<IgnoredAny>,
    #[serde(default, rename = "lease")]
    _lease: Option<IgnoredAny>,
}

/// Reads the JSON lines format line by line; blank lines are skipped.
pub(crate) fn read<R: BufRead>(
    encoding: Encoding,
    mut input: R,
    file: &str,
    sink: &mut dyn FnMut(Record, u64) -> Result<()>,
) -> Result<()> {
    let head = super::head(&mut input, file)?;
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(format!("cannot read {file}"), e))?;
        if n == 0 {
            return Ok(());
        }
        line += 1;
        let mut text = &buf[..];
        if let Some(rest) = text.strip_suffix(b"\n") {
            text = rest.strip_suffix(b"\r").unwrap_or(rest);
        }
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed: Line<'_> = serde_json::from_slice(text).map_err(|e| {
            let hint = super::format_hint(encoding.format, file, &head);
            super::with_hint(json_error(file, line - 1, &e), hint)
        })?;
        let key = encoding.key_type.decode(&parsed.key).map_err(|reason| {
            Error::input(
                file,
                line,
                format!("key {}: {reason}", display_key(parsed.key.as_bytes())),
            )
        })?;
        let value = encoding
            .value_type
            .decode_json(parsed.value.get())
            .map_err(|reason| {
                Error::input(
                    file,
                    line,
                    format!("key {}: {reason}", display_key(parsed.key.as_bytes())),
                )
            })?;
        sink(Record::new(key, value), line)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;
    use crate::record::{KeyType, ValueType};

    fn read_str(v: ValueType, text: &str) -> Result<Vec<(Record, u64)>> {
        let mut got = Vec::new();
        read(
            Encoding::new(Format::Jsonl, KeyType::Utf8, v),
            text.as_bytes(),
            "d.jsonl",
            &mut |r, l| {
                got.push((r, l));
                Ok(())
            },
        )?;
        Ok(got)
    }

    #[test]
    fn reads_lines_skipping_blank_ones() {
        let got = read_str(
            ValueType::Json,
            "{\"key\":\"a\",\"value\":[1, 2]}\r\n\n{\"value\":null,\"key\":\"b\",\"lease\":\"5\"}",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                (Record::new("a", "[1,2]"), 1),
                (Record::new("b", "null"), 3)
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = read_str(
            ValueType::Json,
            "{\"key\":\"a\",\"value\":1}\n{\"key\":\"b\"}\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.jsonl:2: missing field `value` (column 11)"
        );
        let e = read_str(ValueType::Json, "{\"key\":\"a\",\"value\":1,\"x\":2}").unwrap_err();
        assert!(
            e.to_string().starts_with("d.jsonl:1: unknown field `x`"),
            "{e}"
        );
        let e = read_str(ValueType::Binary, "\n\n{\"key\":\"a\",\"value\":\"***\"}").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("d.jsonl:3: key \"a\": the value is not valid base64"),
            "{e}"
        );
        let e = read_str(ValueType::Json, "{\"key\":1,\"value\":1}").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("d.jsonl:1: invalid type: integer"),
            "{e}"
        );
        let e = read_str(ValueType::Json, "{\"key\":\"a\",\"value\":1} x").unwrap_err();
        assert!(e.to_string().contains("trailing characters"), "{e}");
    }
}
