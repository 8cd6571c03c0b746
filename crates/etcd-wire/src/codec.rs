//! Serde helpers for the gateway's encoding rules.
//!
//! - `bytes` fields are standard base64 (padding optional on input);
//! - 64-bit integers are JSON strings on output and strings or numbers on input;
//! - enums are names on output and names or numbers on input (see [`wire_enum!`](crate::wire_enum)).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use bytes::Bytes;
use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;
use std::fmt;

/// Lenient decoder: standard alphabet, padding optional (Go's jsonpb accepts both).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encodes bytes as standard padded base64, as the gateway expects.
pub fn encode_base64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Decodes standard base64, with or without padding.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    LENIENT.decode(text)
}

/// `bytes` fields: base64 strings. `null` decodes to empty.
pub mod b64 {
    use super::*;

    /// Serializes bytes as a standard padded base64 string.
    pub fn serialize<S: Serializer>(value: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode_base64(value))
    }

    /// Deserializes a base64 string (or `null`) into bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
                decode_base64(v)
                    .map(Bytes::from)
                    .map_err(|e| E::custom(format_args!("invalid base64: {e}")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Bytes, E> {
                Ok(Bytes::new())
            }
            fn visit_none<E: de::Error>(self) -> Result<Bytes, E> {
                Ok(Bytes::new())
            }
        }
        d.deserialize_any(V)
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
                while let Some(s) = seq.next_element::<std::borrow::Cow<'de, str>>()? {
                    out.push(Bytes::from(decode_base64(&s).map_err(|e| {
                        de::Error::custom(format_args!("invalid base64: {e}"))
                    })?));
                }
                Ok(out)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Vec<Bytes>, E> {
                Ok(Vec::new())
            }
        }
        d.deserialize_any(V)
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
                        f.write_str(concat!("an integer (", stringify!($ty), ") as string or number"))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        if v.is_empty() {
                            return Ok(0);
                        }
                        v.parse::<$ty>()
                            .map_err(|e| E::custom(format_args!("invalid integer {v:?}: {e}")))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                        <$ty>::try_from(v).map_err(|_| E::custom(format_args!("integer {v} out of range")))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                        <$ty>::try_from(v).map_err(|_| E::custom(format_args!("integer {v} out of range")))
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$ty, E> {
                        if v.fract() == 0.0 && v >= <$ty>::MIN as f64 && v <= <$ty>::MAX as f64 {
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

int_module!(i64_str, i64, "`int64` fields: strings out, strings or numbers in.");
int_module!(u64_str, u64, "`uint64` fields: strings out, strings or numbers in.");

/// `bool` fields that a server may send as `null`.
pub mod lenient_bool {
    use super::*;
    use serde::Deserialize;

    /// Deserializes a bool; `null` is false.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
    }
}

/// Defines a protobuf enum: serialized by name, deserialized from its name or number.
///
/// An unknown name or number is a decoding error, never a panic.
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
