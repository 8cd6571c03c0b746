//! Keys and values: what callers may pass, and the range encoding etcd uses.

use bytes::Bytes;

/// Anything usable as a key or value: `&str`, `String`, `&[u8]`, `Vec<u8>`, `Bytes`,
/// byte arrays. Keys are arbitrary bytes; they need not be UTF-8.
pub trait IntoBytes {
    /// Converts into bytes.
    fn into_bytes(self) -> Bytes;
}

impl IntoBytes for Bytes {
    fn into_bytes(self) -> Bytes {
        self
    }
}
impl IntoBytes for &Bytes {
    fn into_bytes(self) -> Bytes {
        self.clone()
    }
}
impl IntoBytes for Vec<u8> {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}
impl IntoBytes for &Vec<u8> {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}
impl IntoBytes for &[u8] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}
impl<const N: usize> IntoBytes for &[u8; N] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}
impl<const N: usize> IntoBytes for [u8; N] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(&self)
    }
}
impl IntoBytes for String {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}
impl IntoBytes for &String {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}
impl IntoBytes for &str {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

/// The smallest key greater than every key starting with `prefix`: the `range_end` of a
/// prefix range. Trailing `0xff` bytes are dropped and the last other byte incremented;
/// a prefix of only `0xff` bytes (or none) has no end: `"\0"`, meaning "to the last key".
pub fn prefix_end(prefix: &[u8]) -> Bytes {
    let mut end = prefix.to_vec();
    while let Some(&last) = end.last() {
        if last < 0xff {
            if let Some(b) = end.last_mut() {
                *b = last + 1;
            }
            return Bytes::from(end);
        }
        end.pop();
    }
    Bytes::from_static(b"\0")
}

/// Adds `prefix()`, `end()` and `from_key()` to a builder whose [`KeyRange`] is at the given
/// field path; `$what` is the verb of the docs ("Reads", "Deletes"...).
macro_rules! key_range_setters {
    ($what:literal, $($path:ident).+) => {
        #[doc = concat!($what, " every key starting with the key (an empty key: every key).")]
        pub fn prefix(mut self) -> Self {
            self.$($path).+ = $crate::key::KeyRange::Prefix;
            self
        }

        #[doc = concat!($what, " the keys in `[key, end)`.")]
        pub fn end(mut self, end: impl $crate::key::IntoBytes) -> Self {
            self.$($path).+ = $crate::key::KeyRange::End(end.into_bytes());
            self
        }

        #[doc = concat!($what, " every key greater than or equal to the key.")]
        pub fn from_key(mut self) -> Self {
            self.$($path).+ = $crate::key::KeyRange::FromKey;
            self
        }
    };
}
pub(crate) use key_range_setters;

/// Which keys a request covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum KeyRange {
    /// Exactly one key.
    #[default]
    Single,
    /// `[key, end)`.
    End(Bytes),
    /// Every key starting with the key.
    Prefix,
    /// Every key `>= key`.
    FromKey,
}

/// A namespace: every key sent is prefixed with it and stripped from every key received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Namespace(pub(crate) Bytes);

impl Namespace {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The wire key for a user key.
    pub(crate) fn key(&self, key: &Bytes) -> Bytes {
        if self.0.is_empty() {
            key.clone()
        } else {
            let mut k = Vec::with_capacity(self.0.len() + key.len());
            k.extend_from_slice(&self.0);
            k.extend_from_slice(key);
            Bytes::from(k)
        }
    }

    /// The wire `(key, range_end)` of a user range.
    pub(crate) fn range(&self, key: &Bytes, range: &KeyRange) -> (Bytes, Bytes) {
        let wire_key = self.key(key);
        let end = match range {
            KeyRange::Single => Bytes::new(),
            KeyRange::End(end) => {
                if end.as_ref() == b"\0" {
                    self.all_end()
                } else {
                    self.key(end)
                }
            }
            KeyRange::Prefix => {
                if key.is_empty() {
                    self.all_end()
                } else {
                    prefix_end(&wire_key)
                }
            }
            KeyRange::FromKey => self.all_end(),
        };
        // etcd refuses an empty key; "\0" is the smallest key and means the same here.
        let wire_key = if wire_key.is_empty() && !end.is_empty() {
            Bytes::from_static(b"\0")
        } else {
            wire_key
        };
        (wire_key, end)
    }

    /// The end of "every key from here on" inside the namespace.
    pub(crate) fn all_end(&self) -> Bytes {
        if self.0.is_empty() {
            Bytes::from_static(b"\0")
        } else {
            prefix_end(&self.0)
        }
    }

    /// The user key of a wire key (keys outside the namespace are returned whole).
    pub(crate) fn strip(&self, key: Bytes) -> Bytes {
        if !self.0.is_empty() && key.starts_with(&self.0) {
            key.slice(self.0.len()..)
        } else {
            key
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"abc"), Bytes::from_static(b"abd"));
        assert_eq!(prefix_end(b"a\xff"), Bytes::from_static(b"b"));
        assert_eq!(prefix_end(b"a\xfe\xff\xff"), Bytes::from_static(b"a\xff"));
        assert_eq!(prefix_end(b"\xff\xff"), Bytes::from_static(b"\0"));
        assert_eq!(prefix_end(b""), Bytes::from_static(b"\0"));
    }

    #[test]
    fn namespaced_ranges() {
        let ns = Namespace(Bytes::from_static(b"app/"));
        let k = Bytes::from_static(b"x");
        assert_eq!(
            ns.range(&k, &KeyRange::Single),
            (Bytes::from_static(b"app/x"), Bytes::new())
        );
        assert_eq!(
            ns.range(&k, &KeyRange::Prefix).1,
            Bytes::from_static(b"app/y")
        );
        assert_eq!(
            ns.range(&k, &KeyRange::FromKey).1,
            Bytes::from_static(b"app0")
        );
        assert_eq!(
            ns.range(&Bytes::new(), &KeyRange::Prefix),
            (Bytes::from_static(b"app/"), Bytes::from_static(b"app0"))
        );
        assert_eq!(
            ns.range(&k, &KeyRange::End(Bytes::from_static(b"z"))).1,
            Bytes::from_static(b"app/z")
        );
        assert_eq!(
            ns.strip(Bytes::from_static(b"app/x")),
            Bytes::from_static(b"x")
        );
        let none = Namespace::default();
        assert_eq!(
            none.range(&Bytes::new(), &KeyRange::Prefix),
            (Bytes::from_static(b"\0"), Bytes::from_static(b"\0"))
        );
        assert_eq!(
            none.range(&k, &KeyRange::FromKey).1,
            Bytes::from_static(b"\0")
        );
    }
}
