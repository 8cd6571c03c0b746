//! Serde helpers for the gateway's encoding rules.
//!
//! - `bytes` fields are standard base64 (padding optional on input);
//! - 64-bit integers are JSON strings on output and strings or numbers on input;
//! - enums are names on output and names or numbers on input (see [`wire_enum!`](crate::wire_enum)).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;
use std::fmt;

/// Lenient decoder: standard alphabet, padding optional (Go's jsonpb accepts both).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encodes bytes as standard padded base64, as the gateway expects.
///
/// SIMD-accelerated where the CPU allows (base64-simd picks AVX2, SSE4.1, NEON... at run
/// time): keys and values are base64 in every request and answer.
pub fn encode_base64(data: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(data)
}

/// Decodes standard base64, with or without padding.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    decode_base64_bytes(text).map(Vec::from)
}

/// Decodes standard base64 (padding optional) into `Bytes` with one allocation of exactly the
/// decoded size.
///
/// The fast path is SIMD-accelerated (base64-simd); input it refuses goes through the
/// `base64` crate's lenient decoder, which accepts the same inputs as before and produces
/// the error for invalid ones.
pub fn decode_base64_bytes(text: impl AsRef<[u8]>) -> Result<Bytes, base64::DecodeError> {
    let input = text.as_ref();
    if input.is_empty() {
        return Ok(Bytes::new());
    }
    let engine = if input.len() % 4 == 0 {
        &base64_simd::STANDARD
    } else {
        &base64_simd::STANDARD_NO_PAD
    };
    match engine.decode_type::<Box<[u8]>>(input) {
        Ok(decoded) => Ok(Bytes::from(decoded)),
        Err(_) => LENIENT.decode(input).map(Bytes::from),
    }
}

/// Decodes one base64 string for the `b64` helpers: into the arena of the message being
/// decoded when there is one (see [`with_arena`]), else into an allocation of its own.
fn visit_base64<E: de::Error>(v: &[u8]) -> Result<Bytes, E> {
    let decoded = ARENA.with(|arena| match arena.borrow_mut().as_mut() {
        Some(arena) => arena.decode(v),
        None => None,
    });
    match decoded {
        Some(bytes) => Ok(bytes),
        None => decode_base64_bytes(v).map_err(|e| E::custom(format_args!("invalid base64: {e}"))),
    }
}

/// Decodes one base64 field for the hand-written decoders: into the current arena if any;
/// `None` if it is not valid base64.
pub(crate) fn decode_field(text: &[u8]) -> Option<Bytes> {
    let decoded = ARENA.with(|arena| match arena.borrow_mut().as_mut() {
        Some(arena) => arena.decode(text),
        None => None,
    });
    decoded.or_else(|| decode_base64_bytes(text).ok())
}

/// One buffer that every `bytes` field of one message is decoded into: one allocation per
/// message instead of one per key and value, and one free when the message's last field is
/// dropped.
struct Arena {
    buf: BytesMut,
    /// Capacity to allocate at the first use: an upper bound of what the message's base64
    /// decodes to (3/4 of its length).
    capacity: usize,
}

impl Arena {
    /// `None` when `text` is not base64 the fast decoder accepts (the caller falls back).
    fn decode(&mut self, text: &[u8]) -> Option<Bytes> {
        if text.is_empty() {
            return Some(Bytes::new());
        }
        let engine = if text.len() % 4 == 0 {
            &base64_simd::STANDARD
        } else {
            &base64_simd::STANDARD_NO_PAD
        };
        let n = engine.decoded_length(text).ok()?;
        if self.buf.capacity() < n {
            // First use, or an estimate that fell short: a fresh buffer (earlier fields keep
            // theirs alive).
            self.buf = BytesMut::with_capacity(self.capacity.max(n));
            self.capacity = 0;
        }
        self.buf.resize(n, 0);
        match engine.decode(text, base64_simd::Out::from_slice(&mut self.buf[..])) {
            Ok(decoded) if decoded.len() == n => Some(self.buf.split_to(n).freeze()),
            _ => {
                self.buf.clear();
                None
            }
        }
    }
}

thread_local! {
    static ARENA: std::cell::RefCell<Option<Arena>> = const { std::cell::RefCell::new(None) };
}

/// Runs `decode` (a synchronous decode of one `len`-byte message) with an arena: the
/// message's `bytes` fields share one allocation, freed when the last of them is dropped.
/// Nested calls each get their own arena.
pub(crate) fn with_arena<R>(len: usize, decode: impl FnOnce() -> R) -> R {
    let arena = Arena {
        buf: BytesMut::new(),
        capacity: len / 4 * 3 + 3,
    };
    let outer = ARENA.with(|a| a.replace(Some(arena)));
    // Restores the outer arena even if `decode` panics.
    struct Restore(Option<Arena>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            ARENA.with(|a| *a.borrow_mut() = outer);
        }
    }
    let _restore = Restore(outer);
    decode()
}

/// `bytes` fields: base64 strings. `null` decodes to empty.
pub mod b64 {
    use super::*;

    /// Serializes bytes as a standard padded base64 string.
    pub fn serialize<S: Serializer>(value: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode_base64(value))
    }

    /// Deserializes a base64 string (or `null`) into bytes.
    ///
    /// Asks for the string's raw bytes: with serde_json that skips the UTF-8 check of the
    /// (ASCII) base64 text, a measurable part of decoding large ranges.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        d.deserialize_option(OrNull)
    }

    /// `null` or a base64 string.
    struct OrNull;

    impl<'de> Visitor<'de> for OrNull {
        type Value = Bytes;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a base64 string")
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Bytes, D::Error> {
            d.deserialize_bytes(Text)
        }
        fn visit_none<E: de::Error>(self) -> Result<Bytes, E> {
            Ok(Bytes::new())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Bytes, E> {
            Ok(Bytes::new())
        }
        // Deserializers that do not distinguish options hand the value over directly.
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
            visit_base64(v.as_bytes())
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
            visit_base64(v)
        }
    }

    /// The base64 text, as a string or as raw bytes.
    struct Text;

    impl<'de> Visitor<'de> for Text {
        type Value = Bytes;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a base64 string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
            visit_base64(v.as_bytes())
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
            visit_base64(v)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Bytes, E> {
            Ok(Bytes::new())
        }
    }
}

/// Repeated `bytes` fields: arrays of base64 strings.
pub mod b64_vec {
    use super::*;
    use serde::de::SeqAccess;
    use serde::ser::SerializeSeq;

    /// Serializes a list of byte strings as base64 strings.
    pub fn serialize<S: Serializer>(value: &[Bytes], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(value.len()))?;
        for item in value {
            seq.serialize_element(&encode_base64(item))?;
        }
        seq.end()
    }

    /// Deserializes a list of base64 strings (or `null`).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Bytes>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<Bytes>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of base64 strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Bytes>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(B64(b)) = seq.next_element::<B64>()? {
                    out.push(b);
                }
                Ok(out)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Vec<Bytes>, E> {
                Ok(Vec::new())
            }
        }
        d.deserialize_any(V)
    }

    /// One element: decoded straight from the borrowed string, without a `String` in between.
    struct B64(Bytes);

    impl<'de> serde::Deserialize<'de> for B64 {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<B64, D::Error> {
            super::b64::deserialize(d).map(B64)
        }
    }
}

macro_rules! int_module {
    ($name:ident, $ty:ty, $doc:literal) => {
        #[doc = $doc]
        pub mod $name {
            use super::*;

            /// Serializes the integer as a JSON string.
            pub fn serialize<S: Serializer>(value: &$ty, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(value)
            }

            /// Deserializes a JSON string or number (or `null`, as 0).
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str(concat!(
                            "an integer (",
                            stringify!($ty),
                            ") as string or number"
                        ))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        if v.is_empty() {
                            return Ok(0);
                        }
                        // Fast path: up to 18 plain digits cannot overflow either type.
                        let digits = v.as_bytes();
                        if digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit) {
                            let n = digits
                                .iter()
                                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
                            return Ok(n as $ty);
                        }
                        v.parse::<$ty>()
                            .map_err(|e| E::custom(format_args!("invalid integer {v:?}: {e}")))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                        <$ty>::try_from(v)
                            .map_err(|_| E::custom(format_args!("integer {v} out of range")))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                        <$ty>::try_from(v)
                            .map_err(|_| E::custom(format_args!("integer {v} out of range")))
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$ty, E> {
                        // `MAX as f64` rounds up to 2^63 (2^64 for u64), which is out of range: `<`.
                        if v.fract() == 0.0 && v >= <$ty>::MIN as f64 && v < <$ty>::MAX as f64 {
                            Ok(v as $ty)
                        } else {
                            Err(E::custom(format_args!("{v} is not an integer")))
                        }
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<$ty, E> {
                        Ok(0)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

int_module!(
    i64_str,
    i64,
    "`int64` fields: strings out, strings or numbers in."
);
int_module!(
    u64_str,
    u64,
    "`uint64` fields: strings out, strings or numbers in."
);

/// `bool` fields that a server may send as `null`.
pub mod lenient_bool {
    use super::*;
    use serde::Deserialize;

    /// Serializes a bool as-is.
    pub fn serialize<S: Serializer>(value: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(*value)
    }

    /// Deserializes a bool; `null` is false.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
    }
}

/// Defines a protobuf enum: serialized by name, deserialized from its name or number.
///
/// An unknown name or number is a decoding error, never a panic. The enum is
/// `#[non_exhaustive]`: a later etcd may add values.
#[macro_export]
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $num:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[non_exhaustive]
        pub enum $name {
            #[default]
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// The protobuf name of this value.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $text, )+ }
            }
            /// The protobuf number of this value.
            pub fn as_i32(self) -> i32 {
                match self { $( $name::$variant => $num, )+ }
            }
            /// The value with this protobuf number, if any.
            pub fn from_i32(n: i64) -> Option<Self> {
                match n { $( $num => Some($name::$variant), )+ _ => None }
            }
            /// The value with this protobuf name, if any.
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $( $text => Some($name::$variant), )+ _ => None }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> ::serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter) -> ::std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " name or number"))
                    }
                    fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::from_name(v).ok_or_else(|| E::custom(format_args!(
                            concat!("unknown ", stringify!($name), " {:?}"), v)))
                    }
                    fn visit_i64<E: ::serde::de::Error>(self, v: i64) -> Result<$name, E> {
                        $name::from_i32(v).ok_or_else(|| E::custom(format_args!(
                            concat!("unknown ", stringify!($name), " {}"), v)))
                    }
                    fn visit_u64<E: ::serde::de::Error>(self, v: u64) -> Result<$name, E> {
                        let n = i64::try_from(v).map_err(|_| E::custom("enum number out of range"))?;
                        self.visit_i64(n)
                    }
                    fn visit_unit<E: ::serde::de::Error>(self) -> Result<$name, E> {
                        Ok($name::default())
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

/// True when the value equals its type's default; used to omit default fields on output.
pub fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
