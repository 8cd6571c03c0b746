//! Value codecs over user marshal / unmarshal functions, as in the seed's
//! `MapUuidCbor(1, marshal=..., unmarshal=...)`.

use crate::setup;
use etcd_pmap::{Cbor, Custom, Error, MapOidCbor, Table, UuidKey};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A type with no serde of its own, like the seed's `User` with `marshal()` and `parse()`.
#[derive(Debug, Clone, PartialEq)]
struct User {
    oid: Uuid,
    name: String,
}

impl User {
    fn marshal(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("oid".to_string(), self.oid.to_string()),
            ("name".to_string(), self.name.clone()),
        ])
    }

    fn parse(
        map: BTreeMap<String, String>,
    ) -> Result<User, Box<dyn std::error::Error + Send + Sync>> {
        Ok(User {
            oid: map.get("oid").ok_or("no oid")?.parse()?,
            name: map.get("name").ok_or("no name")?.clone(),
        })
    }
}

#[tokio::test]
async fn marshal_functions_round_trip_and_their_errors_are_decode_errors() {
    let db = setup!("marshal");
    let users: MapOidCbor<User> =
        Table::with_codec(1, "users", Cbor::with_marshal(User::marshal, User::parse));
    let ann = User {
        oid: Uuid::new_v4(),
        name: "ann".into(),
    };
    let txn = db.begin_write();
    users.put(&txn, &1, &ann).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(
        users.get(&db.begin_read(), &1).await.unwrap(),
        Some(ann.clone())
    );

    // Stored as a CBOR map, readable by a serde table too.
    let raw: MapOidCbor<BTreeMap<String, String>> = Table::new(1, "raw users");
    let map = raw.get(&db.begin_read(), &1).await.unwrap().unwrap();
    assert_eq!(map.get("name").map(String::as_str), Some("ann"));

    // A map the unmarshal function refuses.
    let txn = db.begin_write();
    raw.put(
        &txn,
        &2,
        &BTreeMap::from([("name".to_string(), "no oid".to_string())]),
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
    let err = users.get(&db.begin_read(), &2).await.unwrap_err();
    assert!(
        matches!(&err, Error::Decode { table, key, source } if table == "users" && key == "2" && source.to_string().contains("no oid")),
        "{err:?}"
    );
}

#[tokio::test]
async fn custom_byte_functions() {
    let db = setup!("custom_codec");
    let codec = Custom::new(
        |v: &i64| Ok::<_, std::convert::Infallible>(v.to_string().into_bytes()),
        |b: &[u8]| -> Result<i64, Box<dyn std::error::Error + Send + Sync>> {
            Ok(std::str::from_utf8(b)?.parse()?)
        },
    )
    .named("decimal");
    let table: Table<UuidKey, Custom<i64>> = Table::with_codec(2, "decimals", codec);
    let k = Uuid::new_v4();
    let txn = db.begin_write();
    table.put(&txn, &k, &-42).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(table.get(&db.begin_read(), &k).await.unwrap(), Some(-42));
    let raw = db.client().get(table.raw_key(&k)).await.unwrap().unwrap();
    assert_eq!(raw.value(), b"-42");
    db.attach_table(&table).await.unwrap();
    let info = db.tables().await.unwrap();
    assert_eq!(info[0].value_codec(), "decimal");
}
