//! Records and the key and value types: how raw etcd bytes become text in a file and back.
//!
//! | type | export writes | import reads |
//! |------|---------------|--------------|
//! | `-k utf8` | the key as a string (must be UTF-8) | a string |
//! | `-k binary` | standard padded base64 of the key | base64, strictly decoded |
//! | `-v json` | the value's JSON text without insignificant whitespace (must be JSON) | any JSON value, stored without insignificant whitespace |
//! | `-v utf8` | the value as a string (must be UTF-8) | a string |
//! | `-v binary` | standard padded base64 of the value | base64, strictly decoded |

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use std::borrow::Cow;

/// One key-value of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// The key's bytes.
    pub key: Bytes,
    /// The value's bytes.
    pub value: Bytes,
    /// etcd's metadata, when exported with `--with-metadata` (ignored by import).
    pub metadata: Option<Metadata>,
}

impl Record {
    /// A record without metadata.
    pub fn new(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Record {
        Record {
            key: key.into(),
            value: value.into(),
            metadata: None,
        }
    }

    /// Adds etcd's metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Record {
        self.metadata = Some(metadata);
        self
    }
}

/// etcd's metadata of a key, as `etcdctl get -w json` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Metadata {
    /// The revision that created the key.
    pub create_revision: i64,
    /// The revision of the key's last change.
    pub mod_revision: i64,
    /// How many times the key was written since its creation.
    pub version: i64,
    /// The lease attached to the key, 0 for none.
    pub lease: i64,
}

impl Metadata {
    /// Metadata from its four numbers.
    pub fn new(create_revision: i64, mod_revision: i64, version: i64, lease: i64) -> Metadata {
        Metadata {
            create_revision,
            mod_revision,
            version,
            lease,
        }
    }
}

/// How keys are written in a file (`-k`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KeyType {
    /// Keys as text; exporting a key that is not UTF-8 is an error.
    #[default]
    Utf8,
    /// Keys in standard padded base64: any bytes.
    Binary,
}

/// How values are written in a file (`-v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ValueType {
    /// Values are JSON texts, embedded as JSON; exporting a value that is not JSON is an
    /// error.
    #[default]
    Json,
    /// Values in standard padded base64: any bytes.
    Binary,
    /// Values as text; exporting a value that is not UTF-8 is an error.
    Utf8,
}

/// An encoded value: how a writer embeds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoded<'a> {
    /// A compact JSON text, embedded as is (a CSV cell holds the text).
    Json(Cow<'a, str>),
    /// A string (a JSON string in JSON formats, the cell's text in CSV).
    Text(Cow<'a, str>),
}

/// Shows a key in messages: a JSON string when it is UTF-8, else `base64:...`.
pub fn display_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(text) => serde_json::to_string(text).unwrap_or_else(|_| text.to_string()),
        Err(_) => format!("base64:{}", B64.encode(key)),
    }
}

fn is_json_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl KeyType {
    /// The key as text, or why it cannot be written with this type.
    pub fn encode(self, key: &[u8]) -> Result<Cow<'_, str>, String> {
        match self {
            KeyType::Utf8 => std::str::from_utf8(key).map(Cow::Borrowed).map_err(|e| {
                format!(
                    "the key is not valid UTF-8 (byte {}); use -k binary",
                    e.valid_up_to()
                )
            }),
            KeyType::Binary => Ok(Cow::Owned(B64.encode(key))),
        }
    }

    /// The key's bytes from its text, or why the text is invalid.
    pub fn decode(self, text: &str) -> Result<Bytes, String> {
        let key = match self {
            KeyType::Utf8 => Bytes::copy_from_slice(text.as_bytes()),
            KeyType::Binary => B64.decode(text).map(Bytes::from).map_err(|e| {
                format!("the key is not valid base64 ({e}); if the file was written with -k utf8, use -k utf8")
            })?,
        };
        if key.is_empty() {
            return Err("the key is empty (etcd keys cannot be empty)".into());
        }
        Ok(key)
    }
}

impl ValueType {
    /// The value as a file carries it, or why it cannot be carried losslessly (with `-v json`:
    /// up to insignificant whitespace).
    pub fn encode(self, value: &[u8]) -> Result<Encoded<'_>, String> {
        match self {
            ValueType::Binary => Ok(Encoded::Text(Cow::Owned(B64.encode(value)))),
            ValueType::Utf8 => std::str::from_utf8(value)
                .map(|s| Encoded::Text(Cow::Borrowed(s)))
                .map_err(|e| {
                    format!(
                        "the value is not valid UTF-8 (byte {}); use -v binary",
                        e.valid_up_to()
                    )
                }),
            ValueType::Json => {
                let text = std::str::from_utf8(value).map_err(|e| {
                    format!(
                        "the value is not JSON (not even UTF-8, byte {}); use -v binary",
                        e.valid_up_to()
                    )
                })?;
                if text.is_empty() {
                    return Err(
                        "the value is empty, which is not JSON; use -v utf8 or -v binary".into(),
                    );
                }
                check_json(text).map_err(|e| {
                    format!("the value is not JSON ({e}); use -v utf8 or -v binary")
                })?;
                Ok(Encoded::Json(compact_json(text)))
            }
        }
    }

    /// The value's bytes from a JSON value of a JSON file: with `-v json` its text
    /// without insignificant whitespace, else the contents of a JSON string.
    pub fn decode_json(self, raw: &str) -> Result<Bytes, String> {
        match self {
            ValueType::Json => Ok(Bytes::from(compact_json(raw).into_owned())),
            ValueType::Utf8 | ValueType::Binary => {
                let text: Cow<'_, str> = serde_json::from_str(raw).map_err(|_| {
                    format!(
                        "the value must be a JSON string with -v {}, found {}; if the file was \
                         written with -v json, use -v json",
                        self.name(),
                        json_kind(raw)
                    )
                })?;
                self.decode_text(&text)
            }
        }
    }

    /// The value's bytes from a CSV cell: with `-v utf8` the cell's text; with `-v json` a
    /// JSON text, stored without insignificant whitespace; with `-v binary` a JSON string
    /// holding base64 (as txaioetcd writes it), or bare base64.
    pub fn decode_cell(self, cell: &str) -> Result<Bytes, String> {
        match self {
            ValueType::Binary if cell.starts_with('"') => {
                let text: String = serde_json::from_str(cell).map_err(|e| {
                    format!("the value must be a JSON string of base64 with -v binary ({e})")
                })?;
                self.decode_text(&text)
            }
            ValueType::Json => {
                check_json(cell).map_err(|e| {
                    format!(
                        "the value is not JSON ({e}), as -v json requires; if the file was \
                         written with -v utf8 (text values), use -v utf8"
                    )
                })?;
                Ok(Bytes::from(compact_json(cell).into_owned()))
            }
            _ => self.decode_text(cell),
        }
    }

    /// The value's bytes from text: the contents of a JSON string, or a CSV cell.
    pub fn decode_text(self, text: &str) -> Result<Bytes, String> {
        match self {
            ValueType::Json => self.decode_cell(text),
            ValueType::Utf8 => Ok(Bytes::copy_from_slice(text.as_bytes())),
            ValueType::Binary => B64
                .decode(text)
                .map(Bytes::from)
                .map_err(|e| format!("the value is not valid base64 ({e})")),
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Json => "json",
            ValueType::Binary => "binary",
            ValueType::Utf8 => "utf8",
        }
    }
}

/// Checks that `text` is one JSON value (whitespace around it allowed).
fn check_json(text: &str) -> Result<(), String> {
    if text
        .trim_matches(|c: char| c.is_ascii() && is_json_space(c as u8))
        .is_empty()
    {
        return Err("empty".into());
    }
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `text` (one JSON value) without the whitespace outside its strings: numbers, escapes
/// and member order stay as written.
pub fn compact_json(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut in_string = false;
    let mut escaped = false;
    let mut first_space = None;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if is_json_space(b) {
            first_space = Some(i);
            break;
        }
    }
    let Some(start) = first_space else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    for c in text[start..].chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !(c.is_ascii() && is_json_space(c as u8)) {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether two values are the same JSON document: equal bytes, or both JSON texts with
/// equal meaning (member order, whitespace, escapes and number spelling aside: `1.0`
/// equals `1`, as in JavaScript and Python).
pub fn same_json(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (
        serde_json::from_slice::<serde_json::Value>(a),
        serde_json::from_slice::<serde_json::Value>(b),
    ) {
        (Ok(a), Ok(b)) => same_value(&a, &b),
        _ => false,
    }
}

fn same_value(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(x), Some(y), _, _) => x == y,
                (_, _, Some(x), Some(y)) => x == y,
                _ => x.as_f64().zip(y.as_f64()).is_some_and(|(x, y)| x == y),
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

fn json_kind(raw: &str) -> &'static str {
    match raw.trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(KeyType::Utf8.encode(b"a/b").unwrap(), "a/b");
        assert!(KeyType::Utf8
            .encode(b"\xff")
            .unwrap_err()
            .contains("-k binary"));
        assert_eq!(KeyType::Binary.encode(b"\xff\0").unwrap(), "/wA=");
        assert_eq!(KeyType::Binary.decode("/wA=").unwrap(), &b"\xff\0"[..]);
        assert!(KeyType::Binary
            .decode("/wA")
            .unwrap_err()
            .contains("base64"));
        assert!(KeyType::Binary.decode("/w A=").is_err());
        assert!(KeyType::Utf8.decode("").unwrap_err().contains("empty"));
        assert!(KeyType::Binary.decode("").unwrap_err().contains("empty"));
    }

    #[test]
    fn json_values_are_written_compact() {
        assert_eq!(
            ValueType::Json.encode(br#"{"a": [1, 2.50]}"#).unwrap(),
            Encoded::Json(r#"{"a":[1,2.50]}"#.into())
        );
        assert_eq!(
            ValueType::Json
                .encode(b" {\n  \"s p\\\"\": \"x \\u00e9\" }\n")
                .unwrap(),
            Encoded::Json(r#"{"s p\"":"x \u00e9"}"#.into())
        );
        let err = ValueType::Json.encode(b"not json").unwrap_err();
        assert!(err.contains("not JSON") && err.contains("-v utf8"), "{err}");
        assert!(ValueType::Json.encode(b"").unwrap_err().contains("empty"));
        assert!(ValueType::Json
            .encode(b"\xff")
            .unwrap_err()
            .contains("-v binary"));
        assert!(ValueType::Json.encode(b"[1] [2]").is_err());
    }

    #[test]
    fn compacting_keeps_strings_and_numbers() {
        assert!(matches!(compact_json("[1,2]"), Cow::Borrowed("[1,2]")));
        assert_eq!(compact_json(" [ 1.0e2 ,\t\"a b\" ]\r\n"), "[1.0e2,\"a b\"]");
        assert_eq!(compact_json(r#"["\\", " "]"#), r#"["\\"," "]"#);
        assert_eq!(compact_json("\"é ✓\" "), "\"é ✓\"");
    }

    #[test]
    fn json_values_compare_by_meaning() {
        assert!(same_json(
            br#"{"a": 1, "b": [true]}"#,
            br#"{"b":[true],"a":1}"#
        ));
        assert!(same_json(br#""\u00e9""#, "\"é\"".as_bytes()));
        assert!(same_json(b"100", b"1.0e2"));
        assert!(same_json(b"1", b"1.0"));
        assert!(!same_json(b"1", b"2"));
        assert!(!same_json(br#"{"a": 1}"#, br#"{"a": 1, "b": 2}"#));
        assert!(!same_json(b"[1, 2]", b"[2, 1]"));
        assert!(!same_json(b"not json", b"\"not json\""));
        assert!(same_json(b"not json", b"not json"));
    }

    #[test]
    fn text_and_binary_values() {
        assert_eq!(
            ValueType::Utf8.encode(b"").unwrap(),
            Encoded::Text("".into())
        );
        assert!(ValueType::Utf8
            .encode(b"a\xffb")
            .unwrap_err()
            .contains("byte 1"));
        assert_eq!(
            ValueType::Binary.encode(b"\x00\x01").unwrap(),
            Encoded::Text("AAE=".into())
        );
    }

    #[test]
    fn decoding_values() {
        assert_eq!(ValueType::Json.decode_json(" 1").unwrap(), &b"1"[..]);
        assert_eq!(
            ValueType::Json
                .decode_json("{\n    \"a\": [\n        1\n    ]\n}")
                .unwrap(),
            &br#"{"a":[1]}"#[..]
        );
        assert_eq!(
            ValueType::Utf8.decode_json(r#""h\u00e9""#).unwrap(),
            "hé".as_bytes()
        );
        let err = ValueType::Utf8.decode_json("12").unwrap_err();
        assert!(err.contains("a number") && err.contains("-v utf8"), "{err}");
        assert!(err.ends_with("use -v json"), "{err}");
        let err = ValueType::Json.decode_cell("plain text").unwrap_err();
        assert!(err.ends_with("use -v utf8"), "{err}");
        let err = KeyType::Binary.decode("app/a").unwrap_err();
        assert!(err.ends_with("use -k utf8"), "{err}");
        assert_eq!(
            ValueType::Binary.decode_json(r#""AAE=""#).unwrap(),
            &b"\0\x01"[..]
        );
        assert!(ValueType::Binary.decode_json(r#""AAE""#).is_err());
        assert!(ValueType::Json.decode_cell("{").is_err());
        assert!(ValueType::Json.decode_cell("").is_err());
        assert_eq!(
            ValueType::Json.decode_cell(" [1, 2] ").unwrap(),
            &b"[1,2]"[..]
        );
        assert_eq!(ValueType::Utf8.decode_cell(" [1] ").unwrap(), &b" [1] "[..]);
        // A binary cell: a JSON string of base64 (txaioetcd), or bare base64.
        assert_eq!(
            ValueType::Binary.decode_cell(r#""AAE=""#).unwrap(),
            &b"\0\x01"[..]
        );
        assert_eq!(
            ValueType::Binary.decode_cell("AAE=").unwrap(),
            &b"\0\x01"[..]
        );
        assert!(ValueType::Binary.decode_cell(r#""AAE=" x"#).is_err());
        assert!(ValueType::Binary.decode_cell(r#""AAE""#).is_err());
    }

    #[test]
    fn key_display() {
        assert_eq!(display_key(b"a\"b"), r#""a\"b""#);
        assert_eq!(display_key(b"\xff"), "base64:/w==");
    }
}
