//! Named table types for every key codec × value codec pair, as in the seed
//! (`MapUuidCbor`, `MapOidJson`, `MapStringString`...).

use crate::codec::key::{BinaryKey, OidKey, StringKey, UuidKey};
use crate::codec::value::{
    BinaryValue, Cbor, FlatBuffers, Json, MsgPack, OidValue, StringValue, UuidValue,
};
use crate::table::Table;

/// Declares `Map<Key><Value>` aliases for one key codec and every value codec.
macro_rules! maps {
    ($($key:ident => $kname:literal: [$string:ident, $binary:ident, $oid:ident, $uuid:ident,
        $json:ident, $cbor:ident, $msgpack:ident, $flatbuffers:ident]),* $(,)?) => {$(
        #[doc = concat!("A table of ", $kname, " keys and UTF-8 string values.")]
        pub type $string = Table<$key, StringValue>;
        #[doc = concat!("A table of ", $kname, " keys and binary values.")]
        pub type $binary = Table<$key, BinaryValue>;
        #[doc = concat!("A table of ", $kname, " keys and oid (`u64`) values.")]
        pub type $oid = Table<$key, OidValue>;
        #[doc = concat!("A table of ", $kname, " keys and UUID values.")]
        pub type $uuid = Table<$key, UuidValue>;
        #[doc = concat!("A table of ", $kname, " keys and JSON values.")]
        pub type $json<T> = Table<$key, Json<T>>;
        #[doc = concat!("A table of ", $kname, " keys and CBOR values.")]
        pub type $cbor<T> = Table<$key, Cbor<T>>;
        #[doc = concat!("A table of ", $kname, " keys and MessagePack values.")]
        pub type $msgpack<T> = Table<$key, MsgPack<T>>;
        #[doc = concat!("A table of ", $kname, " keys and FlatBuffers values.")]
        pub type $flatbuffers<T> = Table<$key, FlatBuffers<T>>;
    )*};
}

maps! {
    StringKey => "string": [MapStringString, MapStringBinary, MapStringOid, MapStringUuid,
        MapStringJson, MapStringCbor, MapStringMsgPack, MapStringFlatbuffers],
    BinaryKey => "binary": [MapBinaryString, MapBinaryBinary, MapBinaryOid, MapBinaryUuid,
        MapBinaryJson, MapBinaryCbor, MapBinaryMsgPack, MapBinaryFlatbuffers],
    OidKey => "oid (`u64`)": [MapOidString, MapOidBinary, MapOidOid, MapOidUuid,
        MapOidJson, MapOidCbor, MapOidMsgPack, MapOidFlatbuffers],
    UuidKey => "UUID": [MapUuidString, MapUuidBinary, MapUuidOid, MapUuidUuid,
        MapUuidJson, MapUuidCbor, MapUuidMsgPack, MapUuidFlatbuffers],
}
