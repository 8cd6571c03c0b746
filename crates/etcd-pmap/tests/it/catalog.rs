//! The catalog in slot 0: attaching tables and listing them.

use crate::setup;
use etcd_pmap::{Error, Index, MapUuidCbor, MapUuidJson, OidKey, SlotKind, StringKey, Table};

#[tokio::test]
async fn attached_tables_are_listed_and_checked() {
    let db = setup!("catalog");
    assert!(db.tables().await.unwrap().is_empty());
    let by_name: Index<StringKey, OidKey> = Index::unique(3, "users_by_name");
    let users: etcd_pmap::MapOidJson<String> = Table::new(2, "users")
        .with_description("people")
        .with_index(&by_name, |name: &String| Some(name.clone()));
    let docs: MapUuidCbor<Vec<u8>> = Table::new(1, "docs");
    db.attach_table(&users).await.unwrap();
    db.attach_table(&docs).await.unwrap();
    // Attaching again is fine; a different description is kept as registered.
    db.attach_table(&docs.clone().with_description("changed"))
        .await
        .unwrap();

    let tables = db.tables().await.unwrap();
    let summary: Vec<(u16, &str, SlotKind, &str, &str)> = tables
        .iter()
        .map(|t| (t.slot(), t.name(), t.kind(), t.key_codec(), t.value_codec()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "docs", SlotKind::Table, "uuid", "cbor"),
            (2, "users", SlotKind::Table, "oid", "json"),
            (
                3,
                "users_by_name",
                SlotKind::Index {
                    table: 2,
                    unique: true
                },
                "string",
                "oid"
            ),
        ]
    );
    assert_eq!(tables[1].description(), "people");
    assert_eq!(tables[0].description(), "");

    // Slot 1 under another name, or with other codecs: refused.
    let impostor: MapUuidCbor<Vec<u8>> = Table::new(1, "not docs");
    let err = db.attach_table(&impostor).await.unwrap_err();
    assert!(
        matches!(&err, Error::SlotMismatch { registered, .. } if registered.name() == "docs"),
        "{err:?}"
    );
    assert!(err.to_string().contains("docs"), "{err}");
    let recoded: MapUuidJson<Vec<u8>> = Table::new(1, "docs");
    assert!(matches!(
        db.attach_table(&recoded).await,
        Err(Error::SlotMismatch { .. })
    ));
    let reserved: MapUuidJson<Vec<u8>> = Table::new(0, "zero");
    assert!(matches!(
        db.attach_table(&reserved).await,
        Err(Error::ReservedSlot { .. })
    ));

    // The catalog is ordinary JSON under slot 0.
    let raw = db.client().get([0u8, 0, 0, 1]).await.unwrap().unwrap();
    let json: serde_json::Value = serde_json::from_slice(raw.value()).unwrap();
    assert_eq!(json["name"], "docs");

    let status = db.status().await.unwrap();
    assert!(status.revision() > 0 && !status.version().is_empty());
}
