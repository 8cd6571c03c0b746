//! Key codecs: typed keys to bytes whose byte order is the keys' order.
//!
//! etcd sorts keys as byte strings, so a key codec must be *order preserving*:
//! `a < b` exactly when `encode(a) < encode(b)`. Inside a composite key every part but the
//! last is also *self-delimiting*, so that where one part ends never depends on the next:
//!
//! | codec | whole key | part of a composite key |
//! |---|---|---|
//! | [`StringKey`], [`BinaryKey`] | the bytes as they are | `0x00` escaped as `0x00 0xFF`, then `0x00 0x00` |
//! | [`OidKey`] | 8 bytes, big-endian | the same |
//! | [`UuidKey`] | the 16 bytes | the same |
//!
//! The escape keeps order: the terminator `00 00` sorts before any escaped `00 FF` and any
//! other byte, so a shorter string sorts before its extensions, as in Rust.

use crate::error::CodecError;
use bytes::Bytes;
use std::fmt::Debug;

/// Encodes typed keys into etcd keys, preserving order, and decodes them back.
///
/// Implemented by the marker types [`StringKey`], [`BinaryKey`], [`OidKey`], [`UuidKey`] and
/// by tuples of two or three key codecs, for composite keys ordered part by part.
pub trait KeyCodec: Send + Sync + 'static {
    /// The typed key.
    type Value: Clone + Debug + Send + Sync + 'static;

    /// A short name for the catalog, such as `"oid"` or `"(string,oid)"`.
    fn name() -> String;

    /// Appends the encoding of a whole key.
    fn encode(value: &Self::Value, out: &mut Vec<u8>);

    /// Decodes a whole key.
    fn decode(bytes: &[u8]) -> Result<Self::Value, CodecError>;

    /// Appends the self-delimiting encoding used for a part of a composite key.
    fn encode_part(value: &Self::Value, out: &mut Vec<u8>);

    /// Decodes a part of a composite key from the front of `input`, advancing it.
    fn decode_part(input: &mut &[u8]) -> Result<Self::Value, CodecError>;

    /// The encoding of a whole key, as bytes.
    fn to_bytes(value: &Self::Value) -> Vec<u8> {
        let mut out = Vec::new();
        Self::encode(value, &mut out);
        out
    }
}

/// UTF-8 string keys (`String`), in byte order (the order of Rust's `str`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StringKey;

/// Binary keys (`Bytes`), in byte order.
#[derive(Debug, Clone, Copy, Default)]
pub struct BinaryKey;

/// Object IDs (`u64`), big-endian so that etcd's byte order is numeric order.
#[derive(Debug, Clone, Copy, Default)]
pub struct OidKey;

/// UUIDs ([`uuid::Uuid`]), as their 16 bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidKey;

/// Appends `bytes` escaped and terminated: `00` → `00 FF`, then `00 00`.
fn escape_into(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() + 2);
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Reads an escaped, terminated byte string from the front of `input`.
fn unescape_from(codec: &str, input: &mut &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    let mut i = 0;
    let bytes = *input;
    while i < bytes.len() {
        let b = bytes[i];
        if b != 0 {
            out.push(b);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(0xff) => {
                out.push(0);
                i += 2;
            }
            Some(0) => {
                *input = &bytes[i + 2..];
                return Ok(out);
            }
            _ => {
                return Err(CodecError::malformed(
                    codec,
                    "bad escape in a composite key part",
                ))
            }
        }
    }
    Err(CodecError::malformed(
        codec,
        "composite key part has no terminator",
    ))
}

fn utf8(codec: &str, bytes: Vec<u8>) -> Result<String, CodecError> {
    String::from_utf8(bytes).map_err(|e| CodecError::new(codec, e))
}

impl KeyCodec for StringKey {
    type Value = String;

    fn name() -> String {
        "string".into()
    }

    fn encode(value: &String, out: &mut Vec<u8>) {
        out.extend_from_slice(value.as_bytes());
    }

    fn decode(bytes: &[u8]) -> Result<String, CodecError> {
        utf8("string key", bytes.to_vec())
    }

    fn encode_part(value: &String, out: &mut Vec<u8>) {
        escape_into(value.as_bytes(), out);
    }

    fn decode_part(input: &mut &[u8]) -> Result<String, CodecError> {
        utf8("string key", unescape_from("string key", input)?)
    }
}

impl KeyCodec for BinaryKey {
    type Value = Bytes;

    fn name() -> String {
        "binary".into()
    }

    fn encode(value: &Bytes, out: &mut Vec<u8>) {
        out.extend_from_slice(value);
    }

    fn decode(bytes: &[u8]) -> Result<Bytes, CodecError> {
        Ok(Bytes::copy_from_slice(bytes))
    }

    fn encode_part(value: &Bytes, out: &mut Vec<u8>) {
        escape_into(value, out);
    }

    fn decode_part(input: &mut &[u8]) -> Result<Bytes, CodecError> {
        unescape_from("binary key", input).map(Bytes::from)
    }
}

/// Takes `N` bytes from the front of `input`.
fn take<const N: usize>(codec: &'static str, input: &mut &[u8]) -> Result<[u8; N], CodecError> {
    let Some((head, rest)) = input.split_first_chunk::<N>() else {
        return Err(CodecError::malformed(codec, "key is too short"));
    };
    *input = rest;
    Ok(*head)
}

/// Takes exactly `N` bytes.
fn exact<const N: usize>(codec: &'static str, bytes: &[u8]) -> Result<[u8; N], CodecError> {
    <[u8; N]>::try_from(bytes).map_err(|_| CodecError::malformed(codec, "key has the wrong length"))
}

impl KeyCodec for OidKey {
    type Value = u64;

    fn name() -> String {
        "oid".into()
    }

    fn encode(value: &u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&value.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> Result<u64, CodecError> {
        exact::<8>("oid key", bytes).map(u64::from_be_bytes)
    }

    fn encode_part(value: &u64, out: &mut Vec<u8>) {
        Self::encode(value, out);
    }

    fn decode_part(input: &mut &[u8]) -> Result<u64, CodecError> {
        take::<8>("oid key", input).map(u64::from_be_bytes)
    }
}

impl KeyCodec for UuidKey {
    type Value = uuid::Uuid;

    fn name() -> String {
        "uuid".into()
    }

    fn encode(value: &uuid::Uuid, out: &mut Vec<u8>) {
        out.extend_from_slice(value.as_bytes());
    }

    fn decode(bytes: &[u8]) -> Result<uuid::Uuid, CodecError> {
        exact::<16>("uuid key", bytes).map(uuid::Uuid::from_bytes)
    }

    fn encode_part(value: &uuid::Uuid, out: &mut Vec<u8>) {
        Self::encode(value, out);
    }

    fn decode_part(input: &mut &[u8]) -> Result<uuid::Uuid, CodecError> {
        take::<16>("uuid key", input).map(uuid::Uuid::from_bytes)
    }
}

impl<A: KeyCodec, B: KeyCodec> KeyCodec for (A, B) {
    type Value = (A::Value, B::Value);

    fn name() -> String {
        format!("({},{})", A::name(), B::name())
    }

    fn encode(value: &Self::Value, out: &mut Vec<u8>) {
        A::encode_part(&value.0, out);
        B::encode(&value.1, out);
    }

    fn decode(bytes: &[u8]) -> Result<Self::Value, CodecError> {
        let mut input = bytes;
        let a = A::decode_part(&mut input)?;
        let b = B::decode(input)?;
        Ok((a, b))
    }

    fn encode_part(value: &Self::Value, out: &mut Vec<u8>) {
        A::encode_part(&value.0, out);
        B::encode_part(&value.1, out);
    }

    fn decode_part(input: &mut &[u8]) -> Result<Self::Value, CodecError> {
        Ok((A::decode_part(input)?, B::decode_part(input)?))
    }
}

impl<A: KeyCodec, B: KeyCodec, C: KeyCodec> KeyCodec for (A, B, C) {
    type Value = (A::Value, B::Value, C::Value);

    fn name() -> String {
        format!("({},{},{})", A::name(), B::name(), C::name())
    }

    fn encode(value: &Self::Value, out: &mut Vec<u8>) {
        A::encode_part(&value.0, out);
        B::encode_part(&value.1, out);
        C::encode(&value.2, out);
    }

    fn decode(bytes: &[u8]) -> Result<Self::Value, CodecError> {
        let mut input = bytes;
        let a = A::decode_part(&mut input)?;
        let b = B::decode_part(&mut input)?;
        let c = C::decode(input)?;
        Ok((a, b, c))
    }

    fn encode_part(value: &Self::Value, out: &mut Vec<u8>) {
        A::encode_part(&value.0, out);
        B::encode_part(&value.1, out);
        C::encode_part(&value.2, out);
    }

    fn decode_part(input: &mut &[u8]) -> Result<Self::Value, CodecError> {
        let value = (
            A::decode_part(input)?,
            B::decode_part(input)?,
            C::decode_part(input)?,
        );
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc<K: KeyCodec>(v: &K::Value) -> Vec<u8> {
        K::to_bytes(v)
    }

    /// Decodes a part and checks that nothing follows.
    fn decode_part_whole<K: KeyCodec>(bytes: &[u8]) -> Result<K::Value, CodecError> {
        let mut input = bytes;
        let v = K::decode_part(&mut input)?;
        assert!(input.is_empty(), "trailing bytes after the last part");
        Ok(v)
    }

    fn part<K: KeyCodec>(v: &K::Value) -> Vec<u8> {
        let mut out = Vec::new();
        K::encode_part(v, &mut out);
        out
    }

    #[test]
    fn escapes_nul_and_terminates() {
        assert_eq!(part::<StringKey>(&"a\0b".into()), b"a\0\xffb\0\0");
        assert_eq!(part::<StringKey>(&String::new()), b"\0\0");
        assert_eq!(enc::<OidKey>(&258), [0, 0, 0, 0, 0, 0, 1, 2]);
        let mut bad: &[u8] = b"a\0\x01";
        assert!(StringKey::decode_part(&mut bad).is_err());
        let mut unterminated: &[u8] = b"abc";
        assert!(StringKey::decode_part(&mut unterminated).is_err());
        assert!(OidKey::decode(b"1234567").is_err());
        assert!(UuidKey::decode(&[0; 15]).is_err());
        assert!(StringKey::decode(b"\xff").is_err());
    }

    #[test]
    fn shorter_strings_sort_first_inside_composites() {
        type K = (StringKey, OidKey);
        let keys: Vec<(String, u64)> = vec![
            ("".into(), 5),
            ("a".into(), 1),
            ("a".into(), 300),
            ("a\0".into(), 0),
            ("a\0\0".into(), 0),
            ("a\x01".into(), 0),
            ("ab".into(), 0),
            ("b".into(), 0),
        ];
        let encoded: Vec<Vec<u8>> = keys.iter().map(enc::<K>).collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(encoded, sorted);
    }

    proptest! {
        #[test]
        fn oid_order(a: u64, b: u64) {
            prop_assert_eq!(a.cmp(&b), enc::<OidKey>(&a).cmp(&enc::<OidKey>(&b)));
            prop_assert_eq!(OidKey::decode(&enc::<OidKey>(&a)).unwrap(), a);
        }

        #[test]
        fn string_order_and_round_trip(a in ".*", b in "[a\\x00\\xff]{0,6}") {
            prop_assert_eq!(a.cmp(&b), enc::<StringKey>(&a).cmp(&enc::<StringKey>(&b)));
            prop_assert_eq!(a.cmp(&b), part::<StringKey>(&a).cmp(&part::<StringKey>(&b)));
            prop_assert_eq!(decode_part_whole::<StringKey>(&part::<StringKey>(&a)).unwrap(), a);
        }

        #[test]
        fn composite_order(
            a in ("[ab\\x00]{0,4}", any::<u64>(), proptest::collection::vec(any::<u8>(), 0..4)),
            b in ("[ab\\x00]{0,4}", any::<u64>(), proptest::collection::vec(any::<u8>(), 0..4)),
        ) {
            type K = (StringKey, OidKey, BinaryKey);
            let a: (String, u64, Bytes) = (a.0, a.1 % 4, Bytes::from(a.2));
            let b: (String, u64, Bytes) = (b.0, b.1 % 4, Bytes::from(b.2));
            prop_assert_eq!(a.cmp(&b), enc::<K>(&a).cmp(&enc::<K>(&b)));
            prop_assert_eq!(a.cmp(&b), part::<K>(&a).cmp(&part::<K>(&b)));
            prop_assert_eq!(K::decode(&enc::<K>(&a)).unwrap(), a.clone());
            prop_assert_eq!(decode_part_whole::<K>(&part::<K>(&a)).unwrap(), a);
        }

        #[test]
        fn uuid_pairs(a: [u8; 16], b: u64, c: [u8; 16], d: u64) {
            type K = (UuidKey, OidKey);
            let x = (uuid::Uuid::from_bytes(a), b);
            let y = (uuid::Uuid::from_bytes(c), d);
            prop_assert_eq!(x.cmp(&y), enc::<K>(&x).cmp(&enc::<K>(&y)));
            prop_assert_eq!(K::decode(&enc::<K>(&x)).unwrap(), x);
        }
    }
}
