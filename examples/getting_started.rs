//! Typed persistent maps: the seed's User example. A `User` with a name and a UUID `oid`
//! is stored in a `MapUuidCbor` at slot 1, written with `db.transact` (which commits) and
//! read back in a read transaction.
//!
//! Run against a throwaway etcd: `cargo xtask demo`, or
//! `ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run -p etcd-examples --example getting_started`

use etcd_kv::Client;
use etcd_pmap::{Database, MapUuidCbor, Table};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// What we store: CBOR-encoded through serde.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    oid: Uuid,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .endpoints(etcd_examples::endpoints())
        .connect()
        .await?;
    // A database under a prefix of its own, so the example can run again and again.
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let db = Database::builder(client)
        .prefix(format!("examples/getting_started/{run}/"))
        .build();
    let status = db.status().await?;
    println!(
        "connected to etcd {} (revision {})",
        status.version(),
        status.revision()
    );

    // The schema: slot 1 holds users, keyed by their oid. Registering it in the catalog
    // (slot 0) is optional; it lets other programs see what the slots hold.
    let users: MapUuidCbor<User> = Table::new(1, "users").with_description("the app's users");
    db.attach_table(&users).await?;

    // Write with `db.transact`: the body's writes are buffered and sent as one etcd txn
    // when it returns Ok. (A `db.begin_write()` transaction is committed by hand, with
    // `txn.commit().await`: dropped without it, its writes are discarded, and debug builds
    // panic so that the forgotten commit is noticed.)
    let homer = User {
        name: "Homer".into(),
        oid: Uuid::new_v4(),
    };
    let users_ref = &users;
    let new = &homer;
    db.transact(|txn| async move { users_ref.put(&txn, &new.oid, new).await })
        .await?;
    println!("stored user {} ({})", homer.name, homer.oid);

    // Read back in a read transaction: one consistent snapshot.
    let txn = db.begin_read();
    let stored = users
        .get(&txn, &homer.oid)
        .await?
        .ok_or("the user was not found")?;
    if stored != homer {
        return Err(format!("read back {stored:?}, expected {homer:?}").into());
    }
    println!(
        "read back {:?} at revision {}",
        stored,
        txn.revision().unwrap_or(0)
    );

    // Read-modify-write, retried automatically if another writer gets in between.
    let oid = homer.oid;
    let renamed = db
        .transact(|txn| async move {
            let mut user = users_ref
                .get(&txn, &oid)
                .await?
                .ok_or_else(|| etcd_pmap::Error::abort("the user vanished"))?;
            user.name = format!("{} J. Simpson", user.name);
            users_ref.put(&txn, &oid, &user).await?;
            Ok(user.name)
        })
        .await?;
    println!("renamed to {renamed}");

    for slot in db.tables().await? {
        println!("catalog: slot {} is the {slot}", slot.slot());
    }
    Ok(())
}
