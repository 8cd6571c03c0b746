//! Signs that a file was written with other `-k`/`-v` flags than an import was given.
//!
//! Two mistakes store wrong data without failing: a `-v utf8` (or `-v binary`) export
//! imported with the default `-v json`, where every value is a JSON string and would be
//! stored as one, quotes included; and a `-k binary` export imported with the default
//! `-k utf8`, where every key would be created as its base64 text. The rules:
//!
//! * **keys** (`-k utf8`): every key of the file is strict, padded base64 (as `-k binary`
//!   writes it) **and** at least one of them decodes to text (`YXBwL2E=` is `app/a`) or
//!   ends in `=` padding. Keys people write by hand are rarely base64 at all (`app/a` has a
//!   length of 5; `-`, `_`, `.`, `:` and spaces are not in the alphabet), and the few that
//!   are (`k001`, `test`) decode to bytes that are not text.
//! * **values** (`-v json`): every value is a JSON string **and** at least one holds a whole
//!   JSON object or array (`"{\"a\":1}"`: a `-v utf8` export of a JSON keyspace; JSON and
//!   JSON lines files only, since a CSV cell of `-v utf8` is the text itself), or every
//!   string is base64 and at least one ends in `=` padding (a `-v binary` export).
//! * **values, against the target** (`-v json`, every value a JSON string, nothing above
//!   decided): the import's diff looks at the first key of the file that etcd holds with
//!   another value; if etcd's value is the string's text (or the bytes of its base64), the
//!   file was written with `-v utf8` (or `-v binary`). A key whose value is already the
//!   same JSON string proves the flags right. Nothing is written before this is decided.
//!
//! A file of JSON strings that are plain words, imported into a keyspace that has none of
//! its keys, cannot be told from a `-v json` export of such strings: it is imported.

use crate::error::{Error, Result};
use crate::format::{Encoding, Format};
use crate::record::{display_key, KeyType, Record, ValueType};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;

/// What the records read so far say about the file's key and value types.
#[derive(Debug)]
pub(crate) struct Evidence {
    encoding: Encoding,
    records: u64,
    /// `-k utf8`: every key so far is strict base64.
    keys_base64: bool,
    /// The first key that decodes to text or has padding: its line, and a description.
    key_sign: Option<(u64, String)>,
    /// `-v json`: every value so far is a JSON string.
    values_strings: bool,
    /// The first string holding a JSON object or array: line and key.
    json_in_string: Option<(u64, String)>,
    /// Every string so far is base64.
    values_base64: bool,
    /// The first base64 string with padding: line and key.
    base64_sign: Option<(u64, String)>,
    /// Reused for decoding base64.
    scratch: Vec<u8>,
}

impl Evidence {
    pub(crate) fn new(encoding: Encoding) -> Evidence {
        Evidence {
            encoding,
            records: 0,
            keys_base64: encoding.key_type == KeyType::Utf8,
            key_sign: None,
            values_strings: encoding.value_type == ValueType::Json,
            json_in_string: None,
            values_base64: encoding.value_type == ValueType::Json,
            base64_sign: None,
            scratch: Vec::new(),
        }
    }

    /// Looks at one record (with its line).
    pub(crate) fn record(&mut self, record: &Record, line: u64) {
        self.records += 1;
        if self.keys_base64 {
            self.key(&record.key, line);
        }
        if self.values_strings {
            self.value(record, line);
        }
    }

    fn key(&mut self, key: &[u8], line: u64) {
        let Ok(decoded) = B64.decode(key) else {
            self.keys_base64 = false;
            return;
        };
        if self
            .key_sign
            .as_ref()
            .is_some_and(|(_, s)| s.contains("decodes"))
        {
            return;
        }
        let text = String::from_utf8_lossy(key);
        match std::str::from_utf8(&decoded) {
            Ok(t) if !t.is_empty() && !t.chars().any(char::is_control) => {
                self.key_sign = Some((
                    line,
                    format!("{text:?} decodes to {}", display_key(t.as_bytes())),
                ));
            }
            _ if self.key_sign.is_none() && key.ends_with(b"=") => {
                self.key_sign = Some((line, format!("{text:?} ends in base64 padding")));
            }
            _ => {}
        }
    }

    fn value(&mut self, record: &Record, line: u64) {
        // With -v json a value is one compact JSON text: a string starts with a quote.
        let value = &record.value;
        if value.first() != Some(&b'"') {
            self.values_strings = false;
            return;
        }
        let inner = &value[1..value.len().saturating_sub(1)];
        let escaped = inner.contains(&b'\\');
        if self.json_in_string.is_none() && self.encoding.format != Format::Csv {
            // Only a string whose text starts with `{` or `[` (or has escapes) is parsed.
            let start = inner.iter().find(|b| !b" \t\r\n".contains(b));
            if escaped || matches!(start, Some(b'{' | b'[')) {
                let text = serde_json::from_slice::<String>(value).unwrap_or_default();
                if text.trim_start().starts_with(['{', '['])
                    && serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok()
                {
                    self.json_in_string = Some((line, display_key(&record.key)));
                }
            }
        }
        if self.values_base64 {
            // Base64 needs no escapes in a JSON string: its text is the bytes between the
            // quotes.
            self.scratch.clear();
            if escaped || B64.decode_vec(inner, &mut self.scratch).is_err() {
                self.values_base64 = false;
            } else if self.base64_sign.is_none() && inner.ends_with(b"=") {
                self.base64_sign = Some((line, display_key(&record.key)));
            }
        }
    }

    /// Whether every value is a JSON string under `-v json` (so the import's diff should
    /// look at the target, see [`requoted`]).
    pub(crate) fn values_all_strings(&self) -> bool {
        self.records > 0 && self.values_strings
    }

    /// A [`Error::Mismatch`] when the file is surely written with other flags.
    pub(crate) fn verdict(&self, file: &str) -> Result<()> {
        let mut signs = Vec::new();
        let mut flags = Vec::new();
        if self.records > 0 && self.keys_base64 {
            if let Some((line, sign)) = &self.key_sign {
                signs.push(format!("every key is base64 (line {line}: {sign})"));
                flags.push("-k binary");
            }
        }
        if self.values_all_strings() {
            if let Some((line, key)) = &self.json_in_string {
                signs.push(format!(
                    "every value is a JSON string, and some hold JSON documents (line {line}, \
                     key {key})"
                ));
                flags.push("-v utf8");
            } else if let (true, Some((line, key))) = (self.values_base64, &self.base64_sign) {
                signs.push(format!(
                    "every value is a JSON string of base64 (line {line}, key {key})"
                ));
                flags.push("-v binary");
            }
        }
        if flags.is_empty() {
            return Ok(());
        }
        Err(Error::Mismatch(format!(
            "{file}: {}: this looks like a file written with {}; give {} (or --force to \
             import it as {} reads it{}); nothing was written",
            signs.join(", and "),
            flags.join(" "),
            if flags.len() == 1 {
                "that flag"
            } else {
                "those flags"
            },
            self.given(),
            if flags.contains(&"-v utf8") || flags.contains(&"-v binary") {
                ": each value stored as a JSON string, quotes included"
            } else {
                ": each key created as its base64 text"
            }
        )))
    }

    fn given(&self) -> String {
        let key = match self.encoding.key_type {
            KeyType::Utf8 => "-k utf8",
            KeyType::Binary => "-k binary",
        };
        format!("{key} -v {}", self.encoding.value_type.name())
    }
}

/// The value type a file's JSON string `value` was probably written with, given that etcd
/// holds `current` for the same key: `-v utf8` when `current` is the string's text (not
/// for CSV, whose `-v utf8` cells are not JSON strings), `-v binary` when it is the bytes
/// of the string's base64.
pub(crate) fn requoted(value: &[u8], current: &[u8], csv: bool) -> Option<ValueType> {
    if value.first() != Some(&b'"') {
        return None;
    }
    let text = serde_json::from_slice::<String>(value).ok()?;
    if !csv && text.as_bytes() == current {
        return Some(ValueType::Utf8);
    }
    match B64.decode(&text) {
        Ok(bytes) if bytes == current => Some(ValueType::Binary),
        _ => None,
    }
}

/// The error for a [`requoted`] key.
pub(crate) fn requoted_error(
    file: &str,
    key: &Bytes,
    current: &Bytes,
    meant: ValueType,
    given: Encoding,
) -> Error {
    let shown = match std::str::from_utf8(current) {
        Ok(text) => format!("{text:?}"),
        Err(_) => "bytes that are not text".to_string(),
    };
    let how = match meant {
        ValueType::Binary => "the bytes of its base64",
        _ => "its text without the quotes",
    };
    let key_flag = match given.key_type {
        KeyType::Utf8 => "-k utf8",
        KeyType::Binary => "-k binary",
    };
    Error::Mismatch(format!(
        "{file}: every value is a JSON string, and etcd holds key {} as {shown}, {how}: with \
         -v json the import would store the JSON string, quotes included; this looks like a \
         file written with -v {}; give -v {} (or --force to import it as {key_flag} -v json \
         reads it); nothing was written",
        display_key(key),
        meant.name(),
        meant.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(encoding: Encoding, records: &[(&[u8], &[u8])]) -> Result<bool> {
        let mut e = Evidence::new(encoding);
        for (i, (k, v)) in records.iter().enumerate() {
            e.record(&Record::new(k.to_vec(), v.to_vec()), i as u64 + 1);
        }
        e.verdict("f").map(|()| e.values_all_strings())
    }

    const JSON: Encoding = Encoding {
        format: Format::Json,
        key_type: KeyType::Utf8,
        value_type: ValueType::Json,
        csv_header: false,
    };

    #[test]
    fn base64_keys_that_decode_to_text_mean_k_binary() {
        let err = verdict(JSON, &[(b"YXBwL2E=", b"1"), (b"YXBwL2I=", b"2")])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("f: every key is base64 (line 1: \"YXBwL2E=\" decodes to \"app/a\")")
                && err.contains("written with -k binary; give that flag (or --force"),
            "{err}"
        );
        // Binary keys with padding.
        assert!(verdict(JSON, &[(b"/wA=", b"1")]).is_err());
        // Keys that happen to be base64 but decode to no text, without padding: fine.
        assert!(verdict(JSON, &[(b"k001", b"1"), (b"test", b"2")]).is_ok());
        // One key that is not base64 clears the file.
        assert!(verdict(JSON, &[(b"YXBwL2E=", b"1"), (b"app/b", b"2")]).is_ok());
        // With -k binary given there is nothing to say.
        let binary = Encoding::new(Format::Json, KeyType::Binary, ValueType::Json);
        assert!(verdict(binary, &[(b"app/a", b"1")]).is_ok());
    }

    #[test]
    fn strings_of_json_documents_mean_v_utf8() {
        let err = verdict(JSON, &[(b"a", br#""{\"x\":1}""#), (b"b", br#""text""#)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("every value is a JSON string, and some hold JSON documents (line 1")
                && err.contains("written with -v utf8; give that flag")
                && err.contains("quotes included"),
            "{err}"
        );
        // Strings of numbers are not enough (a JSON keyspace may hold "5432").
        assert!(verdict(JSON, &[(b"a", br#""5432""#)]).unwrap());
        // One value that is not a string clears the file.
        assert!(!verdict(JSON, &[(b"a", br#""[1]""#), (b"b", b"1")]).unwrap());
        // CSV cells of -v utf8 are the text itself: no rule on strings of JSON there.
        let csv = Encoding::new(Format::Csv, KeyType::Utf8, ValueType::Json);
        assert!(verdict(csv, &[(b"a", br#""[1]""#)]).unwrap());
    }

    #[test]
    fn padded_base64_strings_mean_v_binary_and_both_flags_are_named() {
        let err = verdict(JSON, &[(b"YQ==", br#""AAE=""#), (b"Yg==", br#""AAEC""#)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("written with -k binary -v binary; give those flags"),
            "{err}"
        );
    }

    #[test]
    fn requoted_values() {
        assert_eq!(requoted(br#""on""#, b"on", false), Some(ValueType::Utf8));
        assert_eq!(requoted(br#""on""#, b"on", true), None);
        assert_eq!(
            requoted(br#""AAE=""#, b"\0\x01", true),
            Some(ValueType::Binary)
        );
        assert_eq!(requoted(br#""on""#, br#""on""#, false), None);
        assert_eq!(requoted(b"1", b"1", false), None);
    }
}
