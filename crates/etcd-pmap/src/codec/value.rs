//! Value codecs: typed values to stored bytes and back.
//!
//! The serde codecs ([`Json`], [`Cbor`], [`MsgPack`]) work two ways, like the seed's
//! `marshal=` / `unmarshal=` parameters:
//!
//! * over serde: `Cbor::<User>::new()` (or `Default`) for a `T: Serialize + DeserializeOwned`;
//! * over your own functions: `Cbor::with_marshal(marshal, unmarshal)` turns a `T` into a
//!   serde-able representation `R` (a map, a tuple, a DTO...) and back, so `T` itself needs
//!   no serde at all.
//!
//! [`FlatBuffers`] takes a build closure (over a [`flatbuffers::FlatBufferBuilder`]) and a parse
//! closure; [`Custom`] takes any two functions between `T` and bytes.

use crate::error::{BoxError, CodecError};
use bytes::Bytes;
use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// Encodes typed values into stored bytes and decodes them back.
///
/// A codec is a value (it may hold functions); tables keep it in an `Arc`.
pub trait ValueCodec: Send + Sync + 'static {
    /// The typed value.
    type Value: Send + 'static;

    /// A short name for the catalog and for errors, such as `"cbor"`.
    fn name(&self) -> &str;

    /// Encodes a value.
    fn encode(&self, value: &Self::Value) -> Result<Vec<u8>, CodecError>;

    /// Decodes stored bytes.
    fn decode(&self, bytes: &[u8]) -> Result<Self::Value, CodecError>;
}

/// UTF-8 text values (`String`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StringValue;

/// Binary values (`Bytes`), stored as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct BinaryValue;

/// Object ID values (`u64`), stored as 8 big-endian bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct OidValue;

/// UUID values ([`uuid::Uuid`]), stored as their 16 bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidValue;

impl ValueCodec for StringValue {
    type Value = String;

    fn name(&self) -> &str {
        "string"
    }

    fn encode(&self, value: &String) -> Result<Vec<u8>, CodecError> {
        Ok(value.as_bytes().to_vec())
    }

    fn decode(&self, bytes: &[u8]) -> Result<String, CodecError> {
        String::from_utf8(bytes.to_vec()).map_err(|e| CodecError::new("string", e))
    }
}

impl ValueCodec for BinaryValue {
    type Value = Bytes;

    fn name(&self) -> &str {
        "binary"
    }

    fn encode(&self, value: &Bytes) -> Result<Vec<u8>, CodecError> {
        Ok(value.to_vec())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Bytes, CodecError> {
        Ok(Bytes::copy_from_slice(bytes))
    }
}

impl ValueCodec for OidValue {
    type Value = u64;

    fn name(&self) -> &str {
        "oid"
    }

    fn encode(&self, value: &u64) -> Result<Vec<u8>, CodecError> {
        Ok(value.to_be_bytes().to_vec())
    }

    fn decode(&self, bytes: &[u8]) -> Result<u64, CodecError> {
        <[u8; 8]>::try_from(bytes)
            .map(u64::from_be_bytes)
            .map_err(|_| CodecError::malformed("oid", "an oid value must be 8 bytes"))
    }
}

impl ValueCodec for UuidValue {
    type Value = uuid::Uuid;

    fn name(&self) -> &str {
        "uuid"
    }

    fn encode(&self, value: &uuid::Uuid) -> Result<Vec<u8>, CodecError> {
        Ok(value.as_bytes().to_vec())
    }

    fn decode(&self, bytes: &[u8]) -> Result<uuid::Uuid, CodecError> {
        uuid::Uuid::from_slice(bytes).map_err(|e| CodecError::new("uuid", e))
    }
}

type EncodeFn<T> = Arc<dyn Fn(&T) -> Result<Vec<u8>, CodecError> + Send + Sync>;
type DecodeFn<T> = Arc<dyn Fn(&[u8]) -> Result<T, CodecError> + Send + Sync>;

/// Generates a serde codec: the format's two functions are chosen when the codec is built,
/// so the `ValueCodec` impl itself needs no serde bound and `with_marshal` works for any `T`.
macro_rules! serde_codec {
    ($(#[$doc:meta])* $codec:ident, $name:literal, $to:ident, $from:ident) => {
        $(#[$doc])*
        pub struct $codec<T> {
            encode: EncodeFn<T>,
            decode: DecodeFn<T>,
            _value: PhantomData<fn() -> T>,
        }

        impl<T: Serialize + DeserializeOwned + 'static> $codec<T> {
            /// The codec over `T`'s serde implementations.
            pub fn new() -> Self {
                $codec {
                    encode: Arc::new(|v: &T| $to(v).map_err(|e| CodecError::new($name, e))),
                    decode: Arc::new(|bytes: &[u8]| {
                        $from::<T>(bytes).map_err(|e| CodecError::new($name, e))
                    }),
                    _value: PhantomData,
                }
            }
        }

        impl<T: 'static> $codec<T> {
            /// The codec over your own functions: `marshal` turns a value into a serde-able
            /// representation, `unmarshal` builds the value back from it (and may refuse).
            pub fn with_marshal<R, M, U, E>(marshal: M, unmarshal: U) -> Self
            where
                R: Serialize + DeserializeOwned,
                M: Fn(&T) -> R + Send + Sync + 'static,
                U: Fn(R) -> Result<T, E> + Send + Sync + 'static,
                E: Into<BoxError>,
            {
                $codec {
                    encode: Arc::new(move |v: &T| $to(&marshal(v)).map_err(|e| CodecError::new($name, e))),
                    decode: Arc::new(move |bytes: &[u8]| {
                        let r = $from::<R>(bytes).map_err(|e| CodecError::new($name, e))?;
                        unmarshal(r).map_err(|e| CodecError::new($name, e))
                    }),
                    _value: PhantomData,
                }
            }
        }

        impl<T: Serialize + DeserializeOwned + 'static> Default for $codec<T> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<T> Clone for $codec<T> {
            fn clone(&self) -> Self {
                $codec {
                    encode: self.encode.clone(),
                    decode: self.decode.clone(),
                    _value: PhantomData,
                }
            }
        }

        impl<T> fmt::Debug for $codec<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}<{}>", stringify!($codec), std::any::type_name::<T>())
            }
        }

        impl<T: Send + 'static> ValueCodec for $codec<T> {
            type Value = T;

            fn name(&self) -> &str {
                $name
            }

            fn encode(&self, value: &T) -> Result<Vec<u8>, CodecError> {
                (self.encode)(value)
            }

            fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
                (self.decode)(bytes)
            }
        }
    };
}

fn json_to<R: Serialize>(r: &R) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(r)
}

fn json_from<R: DeserializeOwned>(bytes: &[u8]) -> Result<R, serde_json::Error> {
    serde_json::from_slice(bytes)
}

fn cbor_to<R: Serialize>(r: &R) -> Result<Vec<u8>, ciborium::ser::Error<std::io::Error>> {
    let mut out = Vec::new();
    ciborium::into_writer(r, &mut out)?;
    Ok(out)
}

fn cbor_from<R: DeserializeOwned>(bytes: &[u8]) -> Result<R, ciborium::de::Error<std::io::Error>> {
    ciborium::from_reader(bytes)
}

fn msgpack_to<R: Serialize>(r: &R) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    rmp_serde::to_vec_named(r)
}

fn msgpack_from<R: DeserializeOwned>(bytes: &[u8]) -> Result<R, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}

serde_codec!(
    /// JSON values (serde_json).
    Json,
    "json",
    json_to,
    json_from
);

serde_codec!(
    /// CBOR values (ciborium).
    Cbor,
    "cbor",
    cbor_to,
    cbor_from
);

serde_codec!(
    /// MessagePack values (rmp-serde, structs as maps with field names): our counterpart of
    /// the seed's pickle.
    MsgPack,
    "msgpack",
    msgpack_to,
    msgpack_from
);

/// Values stored as FlatBuffers, through your build and parse functions (typically over
/// `flatc`-generated code).
///
/// ```
/// use etcd_pmap::FlatBuffers;
/// use flatbuffers::{FlatBufferBuilder, WIPOffset};
///
/// // A FlatBuffers table `Point { x: uint64 }`, built by hand; a parse function would
/// // normally call `flatbuffers::root::<generated::Point>(bytes)`.
/// let codec = FlatBuffers::new(
///     |fbb: &mut FlatBufferBuilder, x: &u64| {
///         let start = fbb.start_table();
///         fbb.push_slot_always::<u64>(4, *x);
///         fbb.end_table(start).as_union_value()
///     },
///     |bytes: &[u8]| -> Result<u64, std::io::Error> { Ok(bytes.len() as u64) },
/// );
/// # let _ = codec;
/// ```
pub struct FlatBuffers<T> {
    build: BuildFn<T>,
    decode: DecodeFn<T>,
    file_identifier: Option<String>,
}

type BuildFn<T> =
    Arc<dyn for<'b> Fn(&mut FlatBufferBuilder<'b>, &T) -> WIPOffset<UnionWIPOffset> + Send + Sync>;

impl<T: 'static> FlatBuffers<T> {
    /// A codec from a `build` function, which writes a value into the builder and returns
    /// its root table (`end_table(..).as_union_value()`), and a `parse` function over the
    /// finished bytes.
    pub fn new<B, P, E>(build: B, parse: P) -> Self
    where
        B: for<'b> Fn(&mut FlatBufferBuilder<'b>, &T) -> WIPOffset<UnionWIPOffset>
            + Send
            + Sync
            + 'static,
        P: Fn(&[u8]) -> Result<T, E> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        FlatBuffers {
            build: Arc::new(build),
            decode: Arc::new(move |bytes: &[u8]| {
                parse(bytes).map_err(|e| CodecError::new("flatbuffers", e))
            }),
            file_identifier: None,
        }
    }

    /// Writes this 4-character file identifier into every buffer (`file_identifier` in the
    /// schema).
    pub fn file_identifier(mut self, id: impl Into<String>) -> Self {
        self.file_identifier = Some(id.into());
        self
    }
}

impl<T> Clone for FlatBuffers<T> {
    fn clone(&self) -> Self {
        FlatBuffers {
            build: self.build.clone(),
            decode: self.decode.clone(),
            file_identifier: self.file_identifier.clone(),
        }
    }
}

impl<T> fmt::Debug for FlatBuffers<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlatBuffers")
            .field("type", &std::any::type_name::<T>())
            .field("file_identifier", &self.file_identifier)
            .finish()
    }
}

impl<T: Send + 'static> ValueCodec for FlatBuffers<T> {
    type Value = T;

    fn name(&self) -> &str {
        "flatbuffers"
    }

    fn encode(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        let mut fbb = FlatBufferBuilder::new();
        let root = (self.build)(&mut fbb, value);
        fbb.finish(root, self.file_identifier.as_deref());
        Ok(fbb.finished_data().to_vec())
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        (self.decode)(bytes)
    }
}

/// A value codec from any two functions between `T` and bytes (`FnCodec`).
///
/// ```
/// use etcd_pmap::Custom;
/// let codec = Custom::new(
///     |v: &i32| Ok::<_, std::convert::Infallible>(v.to_string().into_bytes()),
///     |b: &[u8]| -> Result<i32, etcd_pmap::BoxError> { Ok(std::str::from_utf8(b)?.parse()?) },
/// )
/// .named("decimal");
/// # let _: Custom<i32> = codec;
/// ```
pub struct Custom<T> {
    name: String,
    encode: EncodeFn<T>,
    decode: DecodeFn<T>,
}

impl<T: 'static> Custom<T> {
    /// A codec from `marshal` (value to bytes) and `unmarshal` (bytes to value).
    pub fn new<M, U, E1, E2>(marshal: M, unmarshal: U) -> Self
    where
        M: Fn(&T) -> Result<Vec<u8>, E1> + Send + Sync + 'static,
        U: Fn(&[u8]) -> Result<T, E2> + Send + Sync + 'static,
        E1: Into<BoxError>,
        E2: Into<BoxError>,
    {
        Custom {
            name: "custom".into(),
            encode: Arc::new(move |v: &T| marshal(v).map_err(|e| CodecError::new("custom", e))),
            decode: Arc::new(move |b: &[u8]| {
                unmarshal(b).map_err(|e| CodecError::new("custom", e))
            }),
        }
    }

    /// Names the codec (in the catalog; errors still say `custom`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl<T> Clone for Custom<T> {
    fn clone(&self) -> Self {
        Custom {
            name: self.name.clone(),
            encode: self.encode.clone(),
            decode: self.decode.clone(),
        }
    }
}

impl<T> fmt::Debug for Custom<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Custom")
            .field("name", &self.name)
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

impl<T: Send + 'static> ValueCodec for Custom<T> {
    type Value = T;

    fn name(&self) -> &str {
        &self.name
    }

    fn encode(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        (self.encode)(value)
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        (self.decode)(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Rec {
        name: String,
        n: u64,
    }

    fn round_trip<C: ValueCodec>(codec: &C, value: C::Value) -> C::Value {
        let bytes = codec.encode(&value).unwrap();
        codec.decode(&bytes).unwrap()
    }

    #[test]
    fn serde_codecs_round_trip() {
        let rec = Rec {
            name: "x".into(),
            n: 7,
        };
        assert_eq!(round_trip(&Json::new(), rec.clone()), rec);
        assert_eq!(round_trip(&Cbor::new(), rec.clone()), rec);
        assert_eq!(round_trip(&MsgPack::new(), rec.clone()), rec);
        assert_eq!(
            Json::<Rec>::new().encode(&rec).unwrap(),
            br#"{"name":"x","n":7}"#
        );
    }

    /// Not serde-able itself: stored through a marshalled tuple.
    #[derive(Debug, PartialEq)]
    struct Opaque(u32, String);

    #[test]
    fn marshal_functions() {
        let codec = Cbor::with_marshal(
            |o: &Opaque| (o.0, o.1.clone()),
            |(a, b): (u32, String)| {
                if a == 0 {
                    Err("zero is not allowed")
                } else {
                    Ok(Opaque(a, b))
                }
            },
        );
        assert_eq!(
            round_trip(&codec, Opaque(3, "c".into())),
            Opaque(3, "c".into())
        );
        let zero = codec.encode(&Opaque(0, String::new())).unwrap();
        let err = codec.decode(&zero).unwrap_err();
        assert_eq!(err.to_string(), "cbor codec: zero is not allowed");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Cbor::<Rec>::new().decode(b"\xff\x00garbage").is_err());
        assert!(Json::<Rec>::new().decode(b"{").is_err());
        assert!(MsgPack::<Rec>::new().decode(b"\xc1").is_err());
        assert!(OidValue.decode(b"123").is_err());
        assert!(UuidValue.decode(b"123").is_err());
        assert!(StringValue.decode(b"\xff").is_err());
    }
}
