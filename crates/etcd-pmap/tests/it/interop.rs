//! Tables written over native gRPC read back identically over the gateway, and the other
//! way round, whatever `ETCD_TEST_TRANSPORT` says.

use crate::roundtrip::Rec;
use bytes::Bytes;
use etcd_kv::{Client, Protocol};
use etcd_pmap::*;
use futures_util::TryStreamExt;

async fn client(protocol: Protocol) -> Option<Client> {
    let etcd = xtask::testing::shared_etcd()?;
    let client = Client::builder()
        .endpoint(etcd.endpoint(0))
        .protocol(protocol)
        .connect()
        .await
        .expect("connect");
    Some(client)
}

#[tokio::test]
async fn tables_written_over_one_protocol_read_the_same_over_the_other() {
    let (Some(grpc), Some(gateway)) = (
        client(Protocol::Grpc).await,
        client(Protocol::Gateway).await,
    ) else {
        return;
    };
    let prefix = xtask::testing::unique_prefix("pmap_interop");
    let over_grpc = Database::builder(grpc).prefix(prefix.as_str()).build();
    let over_gateway = Database::builder(gateway).prefix(prefix.as_str()).build();
    let records: MapStringCbor<Rec> = Table::new(1, "records");
    let blobs: MapBinaryBinary = Table::new(2, "blobs");

    // Written over gRPC, in one transaction.
    let txn = over_grpc.begin_write();
    for i in 0..50u64 {
        let rec = Rec {
            n: i,
            ..Rec::sample()
        };
        records.put(&txn, &format!("r{i:03}"), &rec).await.unwrap();
        let key = Bytes::from(vec![0, 0xff, i as u8]);
        blobs
            .put(&txn, &key, &Bytes::from(vec![i as u8; i as usize]))
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();

    // Read over both: the same rows, in the same order.
    let read = |db: &Database| {
        let db = db.clone();
        let records = records.clone();
        let blobs = blobs.clone();
        async move {
            let txn = db.begin_read();
            let r: Vec<(String, Rec)> = records.iter(&txn).try_collect().await.unwrap();
            let b: Vec<(Bytes, Bytes)> = blobs.iter(&txn).try_collect().await.unwrap();
            (r, b)
        }
    };
    let (r1, b1) = read(&over_grpc).await;
    let (r2, b2) = read(&over_gateway).await;
    assert_eq!(r1.len(), 50);
    assert_eq!(b1.len(), 50);
    assert_eq!(r1, r2);
    assert_eq!(b1, b2);

    // A conflict-checked transaction over the gateway on what gRPC wrote, read back over
    // gRPC.
    let txn = over_gateway.begin_write();
    let mut rec = records
        .get(&txn, &"r007".to_string())
        .await
        .unwrap()
        .unwrap();
    rec.name = "changed over the gateway".into();
    records.put(&txn, &"r007".to_string(), &rec).await.unwrap();
    records.remove(&txn, &"r008".to_string()).await.unwrap();
    txn.commit().await.unwrap();
    let txn = over_grpc.begin_read();
    assert_eq!(
        records.get(&txn, &"r007".to_string()).await.unwrap(),
        Some(rec)
    );
    assert_eq!(records.get(&txn, &"r008".to_string()).await.unwrap(), None);
    assert_eq!(records.count(&txn).await.unwrap(), 49);
}
