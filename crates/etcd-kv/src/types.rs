//! Values the client hands back: key-values and response headers.

use bytes::Bytes;
use etcd_wire::header as wire;

/// A key with its value and metadata, as stored by etcd.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct KeyValue {
    pub(crate) key: Bytes,
    pub(crate) value: Bytes,
    pub(crate) create_revision: i64,
    pub(crate) mod_revision: i64,
    pub(crate) version: i64,
    pub(crate) lease: i64,
}

/// Writes bytes as text when they are UTF-8, else as escaped bytes (`b"\xff\0"`).
pub(crate) fn show_bytes(f: &mut std::fmt::Formatter<'_>, bytes: &[u8]) -> std::fmt::Result {
    match std::str::from_utf8(bytes) {
        Ok(text) => f.write_str(text),
        Err(_) => write!(f, "{:?}", Bytes::copy_from_slice(bytes)),
    }
}

/// Writes the items separated by `, `, or `empty` when there are none.
pub(crate) fn show_list<T: std::fmt::Display>(
    f: &mut std::fmt::Formatter<'_>,
    items: &[T],
    empty: &str,
) -> std::fmt::Result {
    if items.is_empty() {
        return f.write_str(empty);
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        std::fmt::Display::fmt(item, f)?;
    }
    Ok(())
}

/// Shows `key = value`: each as text when it is UTF-8, else as escaped bytes
/// (`b"\xff\x00"`). `{:#}` adds the metadata: `(rev 12, created 3, version 4, lease 0)`.
impl std::fmt::Display for KeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        show_bytes(f, &self.key)?;
        f.write_str(" = ")?;
        show_bytes(f, &self.value)?;
        if f.alternate() {
            write!(
                f,
                " (rev {}, created {}, version {}, lease {})",
                self.mod_revision, self.create_revision, self.version, self.lease
            )?;
        }
        Ok(())
    }
}

impl KeyValue {
    pub(crate) fn from_wire(kv: wire::KeyValue, strip: impl Fn(Bytes) -> Bytes) -> KeyValue {
        KeyValue {
            key: strip(kv.key),
            value: kv.value,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }

    /// A deleted key as a watch reports it: the key, the deletion's revision, no value.
    pub(crate) fn deleted(key: Bytes, revision: i64) -> KeyValue {
        KeyValue {
            key,
            mod_revision: revision,
            ..KeyValue::default()
        }
    }

    /// The key (without the client's namespace).
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The key as UTF-8 text, if it is.
    pub fn key_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.key)
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The value as UTF-8 text, if it is. In a body that returns this crate's
    /// [`Result`](crate::Result) (`with_lock`, `try_run`), `?` on its error works
    /// ([`Error::Other`](crate::Error::Other)).
    pub fn value_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.value)
    }

    /// The value as text to show a person: itself when it is UTF-8 (no copy), else with
    /// each invalid sequence replaced by `U+FFFD`. [`KeyValue::value_str`] tells the two
    /// apart; `{}` on the key-value shows invalid bytes escaped instead.
    pub fn value_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.value)
    }

    /// The key, as shared bytes (no copy).
    pub fn key_bytes(&self) -> Bytes {
        self.key.clone()
    }

    /// The value, as shared bytes (no copy).
    pub fn value_bytes(&self) -> Bytes {
        self.value.clone()
    }

    /// Splits into key and value.
    pub fn into_key_value(self) -> (Bytes, Bytes) {
        (self.key, self.value)
    }

    /// The revision that created this key (since its last deletion).
    pub fn create_revision(&self) -> i64 {
        self.create_revision
    }

    /// The revision of the last change to this key.
    pub fn mod_revision(&self) -> i64 {
        self.mod_revision
    }

    /// How many times the key was written since its creation (1 after creation).
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The lease attached to the key, 0 for none.
    pub fn lease(&self) -> i64 {
        self.lease
    }
}

/// Metadata of every answer: which member answered, at which revision and raft term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Header {
    pub(crate) cluster_id: u64,
    pub(crate) member_id: u64,
    pub(crate) revision: i64,
    pub(crate) raft_term: u64,
}

impl From<wire::ResponseHeader> for Header {
    fn from(h: wire::ResponseHeader) -> Header {
        Header {
            cluster_id: h.cluster_id,
            member_id: h.member_id,
            revision: h.revision,
            raft_term: h.raft_term,
        }
    }
}

impl Header {
    /// The ID of the cluster.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// The ID of the member that answered.
    pub fn member_id(&self) -> u64 {
        self.member_id
    }

    /// The store's revision when the request was served.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The raft term when the request was served.
    pub fn raft_term(&self) -> u64 {
        self.raft_term
    }
}

/// Shows `revision 12 (member 8e9e05c52164694d, raft term 2)`.
impl std::fmt::Display for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "revision {} (member {:x}, raft term {})",
            self.revision, self.member_id, self.raft_term
        )
    }
}

/// `one` for 1, else `many`.
pub(crate) fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_display_as_text_or_escaped_bytes() {
        let kv = KeyValue {
            key: Bytes::from_static(b"config/mode"),
            value: Bytes::from_static(b"active"),
            create_revision: 3,
            mod_revision: 12,
            version: 4,
            lease: 0,
        };
        assert_eq!(kv.to_string(), "config/mode = active");
        assert_eq!(
            format!("{kv:#}"),
            "config/mode = active (rev 12, created 3, version 4, lease 0)"
        );
        let kv = KeyValue {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"\xff\x00"),
            ..KeyValue::default()
        };
        assert_eq!(kv.to_string(), "k = b\"\\xff\\0\"");
        assert_eq!(kv.value_lossy(), "\u{FFFD}\0");
        assert!(kv.value_str().is_err());
        // Any bytes at all: no panic, every byte shown.
        let all: Vec<u8> = (0..=255).collect();
        let kv = KeyValue {
            key: Bytes::from(all.clone()),
            value: Bytes::from(all),
            ..KeyValue::default()
        };
        let shown = kv.to_string();
        assert!(
            shown.starts_with("b\"\\0\\x01") && shown.contains(" = b\""),
            "{shown}"
        );
    }
}
