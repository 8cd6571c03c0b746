//! Paginated scans: pages, order, ranges, snapshot consistency. The 100,000-key scan with a
//! memory bound is the separate test binary `scan_memory`.

use crate::{key, keys, setup, setup_ns};
use bytes::Bytes;
use etcd_kv::{Client, Error, DEFAULT_PAGE_SIZE};
use futures_util::{StreamExt, TryStreamExt};

async fn write_numbered(client: &Client, p: &str, n: usize) -> Vec<Bytes> {
    let keys: Vec<Bytes> = (0..n).map(|i| key(p, format!("{i:04}"))).collect();
    futures_util::stream::iter(keys.clone())
        .map(|k| async move { client.put(&k, k.clone()).await.map(|_| ()) })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await
        .unwrap();
    keys
}

#[tokio::test]
async fn pages_of_a_prefix_in_key_order() {
    let (_etcd, client, p) = setup!("scan_pages");
    let expected = write_numbered(&client, &p, 50).await;
    client.put(&p[..p.len() - 1], "outside").await.unwrap();

    let mut pages = client.scan(&p).prefix().page_size(7).pages();
    assert_eq!(pages.revision(), None, "pinned by the first page");
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    while let Some(page) = pages.try_next().await.unwrap() {
        assert!(pages.revision().is_some());
        sizes.push(page.len());
        seen.extend(keys(&page));
    }
    assert_eq!(sizes, [7, 7, 7, 7, 7, 7, 7, 1]);
    assert_eq!(seen, expected);
    assert!(pages.try_next().await.unwrap().is_none(), "stays done");

    // Exactly a multiple of the page size: no empty trailing page.
    let sizes: Vec<usize> = client
        .scan(&p)
        .prefix()
        .page_size(10)
        .pages()
        .map_ok(|page| page.len())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(sizes, [10, 10, 10, 10, 10]);

    // One by one, values included.
    let kvs: Vec<_> = client
        .scan(&p)
        .prefix()
        .page_size(3)
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(keys(&kvs), expected);
    assert!(kvs.iter().all(|kv| kv.value() == kv.key()));

    // The default page size covers it in one page.
    assert_eq!(DEFAULT_PAGE_SIZE, 1000);
    let pages: Vec<_> = client
        .scan(&p)
        .prefix()
        .pages()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 1);
}

#[tokio::test]
async fn scans_of_ranges_single_keys_and_nothing() {
    let (_etcd, client, p) = setup!("scan_ranges");
    let all = write_numbered(&client, &p, 20).await;
    let got: Vec<_> = client
        .scan(key(&p, "0005"))
        .end(key(&p, "0015"))
        .page_size(4)
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(keys(&got), all[5..15]);

    let got: Vec<_> = client
        .scan(key(&p, "0003"))
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(keys(&got), all[3..4], "no range: one key");

    let got: Vec<_> = client
        .scan(key(&p, "nothing/"))
        .prefix()
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert!(got.is_empty());

    let got: Vec<_> = client
        .scan(&p)
        .prefix()
        .keys_only()
        .serializable()
        .page_size(6)
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(keys(&got), all);
    assert!(got.iter().all(|kv| kv.value().is_empty()));
}

#[tokio::test]
async fn scan_from_key_and_everything_in_a_namespace() {
    let (_etcd, client) = setup_ns!("scan_ns");
    for i in 0..12 {
        client.put(format!("k{i:02}"), "v").await.unwrap();
    }
    client.put(b"\xff\xff", "last").await.unwrap();
    let got: Vec<_> = client
        .scan("")
        .prefix()
        .page_size(5)
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.len(), 13);
    assert_eq!(got[0].key(), b"k00", "keys come back without the namespace");
    assert_eq!(got[12].key(), b"\xff\xff");
    let got: Vec<_> = client
        .scan("k10")
        .from_key()
        .page_size(1)
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        keys(&got),
        [
            Bytes::from("k10"),
            Bytes::from("k11"),
            Bytes::from_static(b"\xff\xff")
        ]
    );
}

#[tokio::test]
async fn a_scan_is_a_snapshot_at_one_revision() {
    let (_etcd, client, p) = setup!("scan_snapshot");
    let before = write_numbered(&client, &p, 30).await;
    let mut stream = client.scan(&p).prefix().page_size(10).into_stream();
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(stream.try_next().await.unwrap().unwrap());
    }
    let pinned = stream.revision().expect("pinned");
    // Changes after the first page are invisible to the rest of the scan.
    client.delete(key(&p, "0025")).await.unwrap();
    client.put(key(&p, "0015"), "changed").await.unwrap();
    client.put(key(&p, "0015a"), "new").await.unwrap();
    while let Some(kv) = stream.try_next().await.unwrap() {
        seen.push(kv);
    }
    assert_eq!(keys(&seen), before);
    assert!(seen
        .iter()
        .all(|kv| kv.value() == kv.key() && kv.mod_revision() <= pinned));
    assert_eq!(stream.revision(), Some(pinned));

    // An explicit revision scans the past.
    let old: Vec<_> = client
        .scan(&p)
        .prefix()
        .revision(pinned)
        .page_size(8)
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(keys(&old), before);
    let now: Vec<_> = client
        .scan(&p)
        .prefix()
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(now.len(), 30);
    assert!(now.iter().any(|kv| kv.key() == key(&p, "0015a").as_ref()));
}

#[tokio::test]
async fn bad_scans_fail_with_invalid_input() {
    let (_etcd, client, p) = setup!("scan_invalid");
    let mut pages = client.scan(&p).prefix().page_size(0).pages();
    assert!(matches!(
        pages.try_next().await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(
        pages.try_next().await.unwrap().is_none(),
        "ends after the error"
    );
    let mut s = client.scan("").into_stream();
    assert!(matches!(
        s.try_next().await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(format!("{s:?}").contains("PageStream"));
}

/// A gateway that caps answers (gateways before etcd 3.4 took answers up to 4 MiB from
/// etcd) refuses a large page with code 8 "received message larger than max": the scan
/// halves its page until the answers fit, and reads every key.
#[tokio::test]
async fn a_scan_through_a_gateway_that_caps_answers_halves_its_pages() {
    let (etcd, _client, p) = setup!("scan_capped");
    if xtask::testing::grpc_transport() {
        // The cap is a gateway's: the gateway run of the suite covers it.
        return;
    }
    let proxy = etcd_test_support::capping::capping_proxy(&etcd.endpoint(0), 256 << 10).await;
    let client = Client::builder()
        .endpoint(&proxy.endpoint)
        .connect()
        .await
        .unwrap();
    // 120 values of 8 KiB: a page of 100 is about 1.1 MB of JSON, over the 256 KiB cap.
    let value = Bytes::from(vec![b'v'; 8 << 10]);
    let expected: Vec<Bytes> = (0..120).map(|i| key(&p, format!("{i:04}"))).collect();
    futures_util::stream::iter(expected.clone())
        .map(|k| {
            let (client, value) = (&client, value.clone());
            async move { client.put(&k, value).await.map(|_| ()) }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await
        .unwrap();

    // One answer with every key is refused, with the gateway's code and message.
    let err = client.range(&p).prefix().await.unwrap_err();
    assert_eq!(err.code(), Some(etcd_kv::Code::ResourceExhausted), "{err}");
    assert!(err.to_string().contains("larger than max"), "{err}");
    let refused = proxy.capped();

    let kvs: Vec<_> = client
        .scan(&p)
        .prefix()
        .page_size(100)
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(keys(&kvs), expected);
    assert!(kvs.iter().all(|kv| kv.value() == value.as_ref()));
    assert!(
        proxy.capped() > refused,
        "the scan's first pages were refused and halved"
    );
}
