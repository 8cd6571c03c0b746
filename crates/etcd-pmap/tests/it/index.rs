//! Secondary indexes: maintained in the table's commit, unique ones reject duplicates, stale
//! entries go away on update and removal.

use crate::setup;
use etcd_pmap::{Database, Error, Index, MapOidJson, OidKey, StringKey, Table};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    email: String,
    city: Option<String>,
}

fn user(email: &str, city: Option<&str>) -> User {
    User {
        email: email.into(),
        city: city.map(Into::into),
    }
}

struct Schema {
    users: MapOidJson<User>,
    by_email: Index<StringKey, OidKey>,
    by_city: Index<StringKey, OidKey>,
}

fn schema() -> Schema {
    let by_email = Index::unique(11, "users_by_email");
    let by_city = Index::new(12, "users_by_city");
    let users = Table::new(10, "users")
        .with_index(&by_email, |u: &User| Some(u.email.clone()))
        .with_index(&by_city, |u: &User| u.city.clone());
    Schema {
        users,
        by_email,
        by_city,
    }
}

async fn index_slot(db: &Database, slot: u16) -> Vec<Vec<u8>> {
    let kvs = db
        .client()
        .range(slot.to_be_bytes())
        .prefix()
        .await
        .unwrap();
    kvs.kvs().iter().map(|kv| kv.key().to_vec()).collect()
}

#[tokio::test]
async fn a_unique_index_rejects_a_duplicate() {
    let db = setup!("unique_index");
    let s = schema();
    let txn = db.begin_write();
    s.users.put(&txn, &1, &user("ann@x", None)).await.unwrap();
    txn.commit().await.unwrap();

    let txn = db.begin_write();
    s.users.put(&txn, &2, &user("bob@x", None)).await.unwrap();
    let err = s
        .users
        .put(&txn, &3, &user("ann@x", None))
        .await
        .unwrap_err();
    match &err {
        Error::UniqueViolation { index, key } => {
            assert_eq!(index, "users_by_email");
            assert_eq!(key, "\"ann@x\"");
        }
        other => panic!("expected a unique violation, got {other:?}"),
    }
    assert!(err.to_string().contains("users_by_email"));
    // The refused put changed nothing; the rest of the transaction still commits.
    assert!(!s.users.contains(&txn, &3).await.unwrap());
    txn.commit().await.unwrap();

    let read = db.begin_read();
    assert_eq!(
        s.by_email.get(&read, &"ann@x".into()).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        s.by_email.get(&read, &"bob@x".into()).await.unwrap(),
        Some(2)
    );
    assert_eq!(s.users.count(&read).await.unwrap(), 2);
    // Rewriting a row with its own key is no duplicate.
    let txn = db.begin_write();
    s.users
        .put(&txn, &1, &user("ann@x", Some("Oslo")))
        .await
        .unwrap();
    txn.commit().await.unwrap();
}

#[tokio::test]
async fn concurrent_inserts_of_one_unique_key_conflict_then_violate() {
    let db = setup!("unique_race");
    let s = schema();
    let first = db.begin_write();
    let second = db.begin_write();
    s.users
        .put(&first, &1, &user("same@x", None))
        .await
        .unwrap();
    s.users
        .put(&second, &2, &user("same@x", None))
        .await
        .unwrap();
    first.commit().await.unwrap();
    assert!(second.commit().await.unwrap_err().is_conflict());

    // Retried by transact, the second now sees the duplicate: not retried again.
    let users = &s.users;
    let err = db
        .transact(|txn| async move { users.put(&txn, &2, &user("same@x", None)).await })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UniqueViolation { .. }), "{err:?}");
    assert_eq!(s.users.count(&db.begin_read()).await.unwrap(), 1);
}

#[tokio::test]
async fn updates_and_removals_drop_stale_index_entries() {
    let db = setup!("stale_index");
    let s = schema();
    let txn = db.begin_write();
    s.users
        .put(&txn, &1, &user("a@x", Some("Oslo")))
        .await
        .unwrap();
    s.users
        .put(&txn, &2, &user("b@x", Some("Oslo")))
        .await
        .unwrap();
    s.users
        .put(&txn, &3, &user("c@x", Some("Rome")))
        .await
        .unwrap();
    s.users.put(&txn, &4, &user("d@x", None)).await.unwrap();
    txn.commit().await.unwrap();

    let read = db.begin_read();
    assert_eq!(
        s.by_city.get_all(&read, &"Oslo".into()).await.unwrap(),
        vec![1, 2]
    );
    assert_eq!(
        s.by_city.get_all(&read, &"Rome".into()).await.unwrap(),
        vec![3]
    );
    assert_eq!(s.by_city.get(&read, &"Oslo".into()).await.unwrap(), Some(1));
    // A city that is a prefix of another is its own key.
    assert_eq!(
        s.by_city.get_all(&read, &"Osl".into()).await.unwrap(),
        Vec::<u64>::new()
    );
    assert_eq!(index_slot(&db, 11).await.len(), 4);
    assert_eq!(index_slot(&db, 12).await.len(), 3, "row 4 has no city");

    // Change 1's email and city; remove 2.
    let txn = db.begin_write();
    let old = s
        .users
        .insert(&txn, &1, &user("a2@x", Some("Rome")))
        .await
        .unwrap();
    assert_eq!(old, Some(user("a@x", Some("Oslo"))));
    s.users.remove(&txn, &2).await.unwrap();
    // Read-your-writes through the index.
    assert_eq!(s.by_email.get(&txn, &"a2@x".into()).await.unwrap(), Some(1));
    assert_eq!(s.by_email.get(&txn, &"a@x".into()).await.unwrap(), None);
    txn.commit().await.unwrap();

    let read = db.begin_read();
    assert_eq!(s.by_email.get(&read, &"a@x".into()).await.unwrap(), None);
    assert_eq!(s.by_email.get(&read, &"b@x".into()).await.unwrap(), None);
    assert_eq!(
        s.by_email.get(&read, &"a2@x".into()).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        s.by_city.get_all(&read, &"Oslo".into()).await.unwrap(),
        Vec::<u64>::new()
    );
    assert_eq!(
        s.by_city.get_all(&read, &"Rome".into()).await.unwrap(),
        vec![1, 3]
    );
    assert_eq!(index_slot(&db, 11).await.len(), 3);
    assert_eq!(index_slot(&db, 12).await.len(), 2);

    // The freed email can be taken by another row.
    let txn = db.begin_write();
    s.users.put(&txn, &5, &user("a@x", None)).await.unwrap();
    txn.commit().await.unwrap();
    let rows: Vec<(u64, User)> = s.users.iter(&db.begin_read()).try_collect().await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 3, 4, 5]
    );
}
