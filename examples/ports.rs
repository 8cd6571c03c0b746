//! The README snippets of two Python etcd clients, ported: etcetra's README.md (lablup/etcetra)
//! and txaioetcd's README.rst (crossbario/txaio-etcd, with its `examples/lease.py` for the
//! lease row, whose README section is empty). Each port runs against etcd, and this program
//! checks that none is longer than its Python original (docs/porting.md has the table).
//!
//! A port sits between `// port: <name>` and `// end port`; its lines are the non-blank lines
//! that are not comments, as rustfmt writes them, counted the same way as the Python's.
//! Durations are shortened where the Python sleeps for seconds, so that CI runs it quickly.
//!
//! Run against a throwaway etcd: `ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run -p etcd-examples --example ports`

use etcd_kv::{Client, Compare, TxnOp};
use std::time::Duration;

/// Each snippet, its source, and its length in Python (non-blank lines that are not
/// comments).
const PYTHON_LINES: [(&str, usize); 24] = [
    ("etcetra/basic-usage", 2),
    ("etcetra/connect-put-get", 4),
    ("etcetra/get-prefix", 7),
    ("etcetra/with-lock", 12),
    ("etcetra/with-lock-timeout", 13),
    ("etcetra/watch", 13),
    ("etcetra/watch-prefix", 12),
    ("etcetra/compares", 5),
    ("etcetra/txn-compare-success", 8),
    ("etcetra/txn-compare-failure", 10),
    ("etcetra/txn", 6),
    ("txaioetcd/example-client", 12),
    ("txaioetcd/set-keys", 2),
    ("txaioetcd/get-key", 6),
    ("txaioetcd/get-range", 3),
    ("txaioetcd/get-prefix", 3),
    ("txaioetcd/delete-key", 1),
    ("txaioetcd/delete-range", 1),
    ("txaioetcd/delete-prefix-previous", 2),
    ("txaioetcd/watch", 6),
    ("txaioetcd/transaction", 23),
    ("txaioetcd/lease", 10),
    ("txaioetcd/lock", 2),
    ("txaioetcd/lock-timeout", 6),
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = example_client().await?;
    // Each run in a namespace of its own, so that it can run again and again.
    let etcd = root.with_namespace(format!("examples/ports/{}/", std::process::id()));

    println!("-- etcetra");
    let etcd = basic_usage(&etcd)?;
    connect_put_get(&etcd).await?;
    get_prefix(&etcd).await?;
    with_lock(&etcd).await?;
    with_lock_timeout(&etcd).await?;
    watch(&etcd).await?;
    watch_prefix(&etcd).await?;
    let compares = compares();
    txn_compare_success(&etcd, compares).await?;
    txn_compare_failure(&etcd).await?;
    txn(&etcd).await?;

    println!("-- txaioetcd");
    set_keys(&etcd).await?;
    get_key(&etcd).await?;
    get_range(&etcd).await?;
    get_prefix_txaioetcd(&etcd).await?;
    delete_key(&etcd).await?;
    delete_range(&etcd).await?;
    delete_prefix_previous(&etcd).await?;
    watch_txaioetcd(&etcd).await?;
    transaction(&etcd).await?;
    lease(&etcd).await?;
    lock(&etcd).await?;
    lock_timeout(&etcd).await?;

    etcd.delete("").prefix().await?;
    check_lengths()?;
    Ok(())
}

/// Counts each port's lines in this file and checks it against the Python's.
fn check_lengths() -> Result<(), String> {
    let source = include_str!("ports.rs");
    let mut rust: Vec<(String, usize)> = Vec::new();
    let mut current: Option<(String, usize)> = None;
    for line in source.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("// port: ") {
            current = Some((name.to_string(), 0));
        } else if line == "// end port" {
            rust.extend(current.take());
        } else if let Some((_, n)) = current.as_mut() {
            if !line.is_empty() && !line.starts_with("//") {
                *n += 1;
            }
        }
    }
    println!("\n{:<34} {:>6} {:>5}", "snippet", "Python", "Rust");
    let (mut python_total, mut rust_total) = (0, 0);
    let mut longer = Vec::new();
    for (name, python) in PYTHON_LINES {
        let Some((_, lines)) = rust.iter().find(|(n, _)| n == name) else {
            return Err(format!("no port of {name} in examples/ports.rs"));
        };
        println!("{name:<34} {python:>6} {lines:>5}");
        if *lines > python {
            longer.push(format!("{name}: {lines} lines of Rust, {python} of Python"));
        }
        python_total += python;
        rust_total += lines;
    }
    println!("{:<34} {python_total:>6} {rust_total:>5}", "total");
    if !longer.is_empty() {
        return Err(longer.join("; "));
    }
    if rust.len() != PYTHON_LINES.len() {
        return Err(format!(
            "{} ports, {} snippets",
            rust.len(),
            PYTHON_LINES.len()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// etcetra

fn basic_usage(client: &Client) -> etcd_kv::Result<Client> {
    // `Client::connect(url)` connects (and checks the server) at once; the
    // namespaced client stands for it here.
    // port: etcetra/basic-usage
    let etcd = client.clone(); // Client::connect("127.0.0.1:2379").await?

    // end port
    Ok(etcd)
}

async fn connect_put_get(etcd: &Client) -> etcd_kv::Result<()> {
    // port: etcetra/connect-put-get
    etcd.put("testkey", "testvalue").await?;
    let value = etcd.get("testkey").await?.unwrap();
    println!("{}", value.value_str()?); // testvalue

    // end port
    Ok(())
}

async fn get_prefix(etcd: &Client) -> etcd_kv::Result<()> {
    // port: etcetra/get-prefix
    etcd.put("/testdir", "root").await?;
    etcd.put("/testdir/1", "1").await?;
    etcd.put("/testdir/2", "2").await?;
    etcd.put("/testdir/2/3", "3").await?;
    let test_dir = etcd.range("/testdir").prefix().await?;
    println!("{test_dir}"); // /testdir = root, /testdir/1 = 1, /testdir/2 = 2, /testdir/2/3 = 3

    // end port
    assert_eq!(test_dir.kvs().len(), 4);
    Ok(())
}

async fn with_lock(etcd: &Client) -> etcd_kv::Result<()> {
    // port: etcetra/with-lock
    let first = etcd.with_lock("foolock", async {
        let value = etcd.get("testkey").await?;
        print!("first: {} | ", value.unwrap().value_str()?);
        Ok(())
    });
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        etcd.with_lock("foolock", etcd.get("testkey")).await
    };
    etcd.put("testkey", "testvalue").await?;
    let (_, value) = tokio::try_join!(first, second)?;
    println!("second: {}", value.unwrap().value_str()?); // first: testvalue | second: testvalue

    // end port
    Ok(())
}

async fn with_lock_timeout(etcd: &Client) -> etcd_kv::Result<()> {
    // port: etcetra/with-lock-timeout
    let first = etcd.with_lock("foolock", async {
        let value = etcd.get("testkey").await?.unwrap();
        println!("first: {}", value.value_str()?);
        tokio::time::sleep(Duration::from_secs(2)).await; // 10 s in the Python
        Ok(())
    });
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let lock = etcd.lock("foolock").timeout(Duration::from_secs(1)); // 5 s
        lock.try_run(etcd.get("testkey")).await
    };
    etcd.put("testkey", "testvalue").await?;
    // Err(LockTimeout) from the second, while the first holds the lock for 2 s:
    println!("{}", tokio::join!(first, second).1.unwrap_err()); // timed out waiting for lock "foolock"

    // end port
    Ok(())
}

async fn watch(etcd: &Client) -> etcd_kv::Result<()> {
    // port: etcetra/watch
    let watching = etcd
        .watch("testkey")
        .on_event(|event| println!("{} {}", event.kind(), event.kv().value_lossy()))
        .await?;
    for value in ["1", "2", "3", "4", "5"] {
        etcd.put("testkey", value).await?;
    }
    // PUT 1 / PUT 2 / PUT 3 / PUT 4 / PUT 5
    // end port
    delivered(&watching, etcd).await
}

async fn watch_prefix(etcd: &Client) -> etcd_kv::Result<()> {
    // port: etcetra/watch-prefix
    let watching = etcd
        .watch("/testdir")
        .prefix()
        .on_event(|event| println!("{event}"))
        .await?;
    etcd.put("/testdir", "1").await?;
    etcd.put("/testdir/foo", "2").await?;
    etcd.put("/testdir/bar", "3").await?;
    etcd.put("/testdir/foo/baz", "4").await?;
    // PUT /testdir = 1 / PUT /testdir/foo = 2 / PUT /testdir/bar = 3 / PUT /testdir/foo/baz = 4
    // end port
    delivered(&watching, etcd).await
}

/// Waits until a callback watch has delivered everything written so far.
async fn delivered(watching: &etcd_kv::WatchHandle, etcd: &Client) -> etcd_kv::Result<()> {
    let revision = etcd.range("testkey").count_only().await?.revision();
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while watching.revision() < revision {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    waited.await.map_err(etcd_kv::Error::other)
}

fn compares() -> [Compare; 2] {
    // port: etcetra/compares
    let compares = [
        Compare::value("cmpkey1").eq("foo"),
        Compare::value("cmpkey2").gt("bar"),
    ];
    // end port
    compares
}

async fn txn_compare_success(etcd: &Client, compares: [Compare; 2]) -> etcd_kv::Result<()> {
    // port: etcetra/txn-compare-success
    etcd.put("cmpkey1", "foo").await?;
    etcd.put("cmpkey2", "baz").await?;
    etcd.put("successkey", "asdf").await?;
    let success = [TxnOp::get("successkey")];
    let values = etcd.txn().when(compares).and_then(success).await?;
    println!("{:?}", values.values_str()?); // [Some("asdf")]

    // end port
    assert_eq!(values.values_str()?, [Some("asdf")]);
    Ok(())
}

async fn txn_compare_failure(etcd: &Client) -> etcd_kv::Result<()> {
    // port: etcetra/txn-compare-failure
    let compares = [
        Compare::value("cmpkey1").eq("foo"),
        Compare::value("cmpkey2").lt("bar"),
    ];
    etcd.put("failurekey", "asdf").await?;
    let failure = [TxnOp::get("failurekey")];
    let values = etcd.txn().when(compares).or_else(failure).await?;
    println!("{:?}", values.values_str()?); // [Some("asdf")]

    // end port
    assert_eq!(values.values_str()?, [Some("asdf")]);
    Ok(())
}

async fn txn(etcd: &Client) -> etcd_kv::Result<()> {
    // port: etcetra/txn
    let action = [TxnOp::get("cmpkey1"), TxnOp::get("cmpkey2")];
    let values = etcd.txn().and_then(action).await?;
    println!("{:?}", values.values_str()?); // [Some("foo"), Some("baz")]

    // end port
    assert_eq!(values.values_str()?, [Some("foo"), Some("baz")]);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// txaioetcd

// port: txaioetcd/example-client
async fn example_client() -> etcd_kv::Result<Client> {
    let endpoint = etcd_examples::endpoints().remove(0); // http://localhost:2379
    let etcd = Client::connect(endpoint).await?;
    let status = etcd.status().await?;
    println!("{status}");
    Ok(etcd) // and the snippets below, where `etcd` is this client
}
// end port

async fn set_keys(etcd: &Client) -> etcd_kv::Result<()> {
    // port: txaioetcd/set-keys
    let puts = (0..10).map(|i| TxnOp::put(format!("mykey{i}"), "foobar"));
    etcd.txn().and_then(puts).await?; // in one transaction

    // end port
    Ok(())
}

async fn get_key(etcd: &Client) -> etcd_kv::Result<()> {
    // port: txaioetcd/get-key
    match etcd.get("mykey").await? {
        Some(kv) => println!("{kv}"),
        None => println!("key not found"),
    }
    // end port
    Ok(())
}

async fn get_range(etcd: &Client) -> etcd_kv::Result<()> {
    // port: txaioetcd/get-range
    for kv in etcd.range("mykey1").end("mykey5").await?.kvs() {
        println!("{kv}");
    }
    // end port
    Ok(())
}

async fn get_prefix_txaioetcd(etcd: &Client) -> etcd_kv::Result<()> {
    // port: txaioetcd/get-prefix
    for kv in etcd.range("mykey").prefix().await?.kvs() {
        println!("{kv}");
    }
    // end port
    Ok(())
}

async fn delete_key(etcd: &Client) -> etcd_kv::Result<()> {
    // port: txaioetcd/delete-key
    etcd.delete("mykey3").await?;
    // end port
    Ok(())
}

async fn delete_range(etcd: &Client) -> etcd_kv::Result<()> {
    // port: txaioetcd/delete-range
    etcd.delete("mykey3").end("mykey7").await?;
    // end port
    Ok(())
}

async fn delete_prefix_previous(etcd: &Client) -> etcd_kv::Result<()> {
    // port: txaioetcd/delete-prefix-previous
    let deleted = etcd.delete("mykey").prefix().prev_kv().await?;
    println!("deleted key-value pairs: {deleted}");
    // end port
    assert!(deleted.deleted() > 0);
    Ok(())
}

async fn watch_txaioetcd(etcd: &Client) -> etcd_kv::Result<()> {
    let writer = etcd.clone();
    let writes = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer.put("mykey1", "changed").await
    });
    // port: txaioetcd/watch
    let on_change = |kv| println!("on_change: {kv}");
    let d = etcd.watch("mykey").prefix().on_event(on_change).await?;
    println!("watching ..");
    tokio::time::sleep(Duration::from_secs(1)).await; // 60 s in the Python
    d.cancel();
    // end port
    writes.await.map_err(etcd_kv::Error::other)??;
    Ok(())
}

async fn transaction(etcd: &Client) -> etcd_kv::Result<()> {
    // port: txaioetcd/transaction
    let result = etcd
        .txn()
        .when([Compare::value("mykey1").eq("val1")])
        .and_then([
            TxnOp::put("mykey1", "val2"),
            TxnOp::put("mykey2", "success"),
        ])
        .or_else([TxnOp::put("mykey2", "failure"), TxnOp::get("mykey1")])
        .await?;
    let outcome = if result.succeeded() {
        "SUCCESS"
    } else {
        "FAILED"
    };
    println!("transaction {outcome}:");
    for response in result.responses() {
        println!("{response}");
    }
    // end port
    Ok(())
}

async fn lease(etcd: &Client) -> etcd_kv::Result<()> {
    // port: txaioetcd/lease
    let lease = etcd.grant_lease(5).await?;
    println!("{lease}");
    println!("{}", lease.keep_alive_once().await?);
    lease.revoke().await?;
    match lease.keep_alive_once().await {
        Err(etcd_kv::Error::LeaseNotFound { .. }) => println!("lease expired (expected)"),
        other => println!("unexpected: {other:?}"),
    }
    // end port
    Ok(())
}

async fn lock(etcd: &Client) -> etcd_kv::Result<()> {
    // port: txaioetcd/lock
    let lock = etcd.lock("mylock").await?;
    lock.release().await?;
    // end port
    Ok(())
}

async fn lock_timeout(etcd: &Client) -> etcd_kv::Result<()> {
    // port: txaioetcd/lock-timeout
    match etcd.lock("mylock").timeout(Duration::from_secs(10)).await {
        Err(e) if e.is_timeout() => println!("could not acquire lock: timeout"),
        lock => lock?.release().await?,
    }
    // end port
    Ok(())
}
