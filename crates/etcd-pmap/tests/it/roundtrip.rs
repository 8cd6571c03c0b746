//! One round-trip test per key codec × value codec, through the named table types: write,
//! read back, scan, count, remove, and check the bytes stored in etcd.

use crate::fb::{self, FbRec};
use bytes::Bytes;
use etcd_pmap::*;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rec {
    pub name: String,
    pub n: u64,
    pub tags: Vec<String>,
    pub ratio: Option<f64>,
}

impl Rec {
    pub fn sample() -> Rec {
        Rec {
            name: "r\u{e9}c".into(),
            n: u64::MAX,
            tags: vec!["a".into(), String::new()],
            ratio: Some(0.5),
        }
    }
}

/// The checks run for every codec pair: `k1 < k2`.
pub async fn check<K, V>(
    db: &Database,
    table: &Table<K, V>,
    k1: K::Value,
    k2: K::Value,
    v: V::Value,
) where
    K: KeyCodec,
    K::Value: PartialEq,
    V: ValueCodec,
    V::Value: Clone + PartialEq + Debug,
{
    let txn = db.begin_write();
    table.put(&txn, &k2, &v).await.unwrap();
    assert_eq!(table.insert(&txn, &k1, &v).await.unwrap(), None);
    // Read-your-writes before the commit.
    assert_eq!(table.get(&txn, &k1).await.unwrap().as_ref(), Some(&v));
    txn.commit().await.unwrap();

    let txn = db.begin_read();
    assert_eq!(table.get(&txn, &k1).await.unwrap().as_ref(), Some(&v));
    assert!(table.contains(&txn, &k2).await.unwrap());
    assert_eq!(table.count(&txn).await.unwrap(), 2);
    let rows: Vec<(K::Value, V::Value)> = table.iter(&txn).try_collect().await.unwrap();
    assert_eq!(rows, vec![(k1.clone(), v.clone()), (k2.clone(), v.clone())]);
    let reversed: Vec<(K::Value, V::Value)> =
        table.iter(&txn).reverse().try_collect().await.unwrap();
    assert_eq!(
        reversed,
        vec![(k2.clone(), v.clone()), (k1.clone(), v.clone())]
    );

    // Stored where the layout says, encoded by the codec.
    let raw = db.client().get(table.raw_key(&k1)).await.unwrap().unwrap();
    assert_eq!(&raw.key()[..2], &table.slot().to_be_bytes());
    assert_eq!(raw.value(), table.codec().encode(&v).unwrap());

    let txn = db.begin_write();
    assert_eq!(table.remove(&txn, &k1).await.unwrap(), Some(v.clone()));
    assert_eq!(table.get(&txn, &k1).await.unwrap(), None);
    assert_eq!(table.remove(&txn, &k1).await.unwrap(), None);
    txn.commit().await.unwrap();

    let txn = db.begin_read();
    assert!(!table.contains(&txn, &k1).await.unwrap());
    let rows: Vec<(K::Value, V::Value)> = table.iter(&txn).try_collect().await.unwrap();
    assert_eq!(rows, vec![(k2, v)]);
}

/// Calls `$m!(args; [aliases]; tests...)` with one test per value codec. The aliases, in the
/// same order as the tests, are given by the caller, one per key codec.
macro_rules! with_every_value_codec {
    ($m:ident!($k1:expr, $k2:expr; [$($alias:ty),* $(,)?])) => {
        $m!($k1, $k2; [$($alias),*];
            string = StringValue => "h\u{e9}llo\0w\u{f6}rld".to_string();
            binary = BinaryValue => Bytes::from_static(b"\x00\xffbin");
            oid = OidValue => u64::MAX - 1;
            uuid = UuidValue => Uuid::new_v4();
            json = Json::new() => Rec::sample();
            cbor = Cbor::new() => Rec::sample();
            msgpack = MsgPack::new() => Rec::sample();
            flatbuffers = fb::codec() => FbRec::sample();
        );
    };
}

macro_rules! round_trip_tests {
    ($k1:expr, $k2:expr; [$($alias:ty),*]; $($v:ident = $codec:expr => $value:expr;)*) => {$(
        #[tokio::test]
        async fn $v() {
            let db = $crate::setup!(concat!(module_path!(), "::", stringify!($v)));
            let table: $alias = Table::with_codec(7, stringify!($v), $codec);
            $crate::roundtrip::check(&db, &table, $k1, $k2, $value).await;
        }
    )*};
}

mod string_key {
    use super::*;
    with_every_value_codec!(
        round_trip_tests!("alpha".to_string(), "alpha\0".to_string(); [
            MapStringString, MapStringBinary, MapStringOid, MapStringUuid,
            MapStringJson<Rec>, MapStringCbor<Rec>, MapStringMsgPack<Rec>, MapStringFlatbuffers<FbRec>,
        ])
    );
}

mod binary_key {
    use super::*;
    with_every_value_codec!(
        round_trip_tests!(Bytes::from_static(b"\x00\x01"), Bytes::from_static(b"\xff"); [
            MapBinaryString, MapBinaryBinary, MapBinaryOid, MapBinaryUuid,
            MapBinaryJson<Rec>, MapBinaryCbor<Rec>, MapBinaryMsgPack<Rec>, MapBinaryFlatbuffers<FbRec>,
        ])
    );
}

mod oid_key {
    use super::*;
    with_every_value_codec!(round_trip_tests!(255u64, 256u64; [
        MapOidString, MapOidBinary, MapOidOid, MapOidUuid,
        MapOidJson<Rec>, MapOidCbor<Rec>, MapOidMsgPack<Rec>, MapOidFlatbuffers<FbRec>,
    ]));
}

mod uuid_key {
    use super::*;
    with_every_value_codec!(
        round_trip_tests!(Uuid::from_u128(1), Uuid::from_u128(1 << 64); [
            MapUuidString, MapUuidBinary, MapUuidOid, MapUuidUuid,
            MapUuidJson<Rec>, MapUuidCbor<Rec>, MapUuidMsgPack<Rec>, MapUuidFlatbuffers<FbRec>,
        ])
    );
}

mod composite_key {
    use super::*;
    with_every_value_codec!(
        round_trip_tests!(("a".to_string(), 9u64), ("a\0".to_string(), 0u64); [
            Table<(StringKey, OidKey), StringValue>,
            Table<(StringKey, OidKey), BinaryValue>,
            Table<(StringKey, OidKey), OidValue>,
            Table<(StringKey, OidKey), UuidValue>,
            Table<(StringKey, OidKey), Json<Rec>>,
            Table<(StringKey, OidKey), Cbor<Rec>>,
            Table<(StringKey, OidKey), MsgPack<Rec>>,
            Table<(StringKey, OidKey), FlatBuffers<FbRec>>,
        ])
    );
}
