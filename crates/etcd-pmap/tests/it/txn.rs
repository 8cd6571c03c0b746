//! Transactions: snapshots, read-your-writes, conflicts (keys, absent keys, ranges), retries
//! with `transact`, and transactions too large for one etcd txn.

use crate::setup;
use etcd_pmap::{ConflictRetry, Database, Error, MapOidOid, MapStringString, Table};
use futures_util::TryStreamExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

fn s(v: &str) -> String {
    v.to_string()
}

async fn put_now(db: &Database, table: &MapStringString, key: &str, value: &str) {
    let txn = db.begin_write();
    table.put(&txn, &s(key), &s(value)).await.unwrap();
    txn.commit().await.unwrap();
}

async fn all(db: &Database, table: &MapStringString) -> Vec<(String, String)> {
    table.iter(&db.begin_read()).try_collect().await.unwrap()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| (s(k), s(v))).collect()
}

#[tokio::test]
async fn reads_see_the_snapshot_pinned_by_the_first_read() {
    let db = setup!("snapshot");
    let t: MapStringString = Table::new(1, "t");
    put_now(&db, &t, "a", "1").await;
    put_now(&db, &t, "b", "1").await;

    let read = db.begin_read();
    assert_eq!(read.revision(), None);
    assert_eq!(t.get(&read, &s("a")).await.unwrap(), Some(s("1")));
    let pinned = read.revision().unwrap();

    put_now(&db, &t, "a", "2").await;
    put_now(&db, &t, "c", "2").await;
    let txn = db.begin_write();
    t.remove(&txn, &s("b")).await.unwrap();
    txn.commit().await.unwrap();

    assert_eq!(t.get(&read, &s("a")).await.unwrap(), Some(s("1")));
    assert!(t.contains(&read, &s("b")).await.unwrap());
    assert!(!t.contains(&read, &s("c")).await.unwrap());
    assert_eq!(t.count(&read).await.unwrap(), 2);
    let rows: Vec<(String, String)> = t.iter(&read).try_collect().await.unwrap();
    assert_eq!(rows, pairs(&[("a", "1"), ("b", "1")]));
    assert_eq!(read.revision(), Some(pinned));

    // A fresh transaction sees the new state.
    assert_eq!(all(&db, &t).await, pairs(&[("a", "2"), ("c", "2")]));
}

#[tokio::test]
async fn a_write_transaction_reads_its_own_writes() {
    let db = setup!("read_your_writes");
    let t: MapStringString = Table::new(1, "t");
    for k in ["a", "c", "e"] {
        put_now(&db, &t, k, "old").await;
    }
    let txn = db.begin_write();
    t.put(&txn, &s("b"), &s("new")).await.unwrap();
    t.put(&txn, &s("c"), &s("new")).await.unwrap();
    assert_eq!(t.remove(&txn, &s("e")).await.unwrap(), Some(s("old")));
    t.put(&txn, &s("f"), &s("new")).await.unwrap();
    assert_eq!(t.get(&txn, &s("c")).await.unwrap(), Some(s("new")));
    assert_eq!(t.get(&txn, &s("e")).await.unwrap(), None);
    let expected = pairs(&[("a", "old"), ("b", "new"), ("c", "new"), ("f", "new")]);
    let rows: Vec<(String, String)> = t.iter(&txn).page_size(1).try_collect().await.unwrap();
    assert_eq!(rows, expected);
    let mut reversed: Vec<(String, String)> = t
        .iter(&txn)
        .reverse()
        .page_size(1)
        .try_collect()
        .await
        .unwrap();
    reversed.reverse();
    assert_eq!(reversed, expected);
    assert_eq!(t.count(&txn).await.unwrap(), 4);
    let limited: Vec<(String, String)> = t.iter(&txn).limit(2).try_collect().await.unwrap();
    assert_eq!(limited, expected[..2].to_vec());

    // Nothing is visible before the commit.
    assert_eq!(
        all(&db, &t).await,
        pairs(&[("a", "old"), ("c", "old"), ("e", "old")])
    );
    let committed = txn.commit().await.unwrap();
    assert_eq!(committed.ops(), 4);
    assert_eq!(all(&db, &t).await, expected);
}

#[tokio::test]
async fn two_writers_of_a_key_they_both_read_one_conflicts() {
    let db = setup!("conflict");
    let t: MapStringString = Table::new(1, "t");
    put_now(&db, &t, "k", "0").await;

    let first = db.begin_write();
    let second = db.begin_write();
    assert_eq!(t.get(&first, &s("k")).await.unwrap(), Some(s("0")));
    assert_eq!(t.get(&second, &s("k")).await.unwrap(), Some(s("0")));
    t.put(&first, &s("k"), &s("first")).await.unwrap();
    t.put(&second, &s("k"), &s("second")).await.unwrap();
    t.put(&second, &s("other"), &s("second")).await.unwrap();

    first.commit().await.unwrap();
    let err = second.commit().await.unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert!(matches!(err, Error::Conflict { read_revision } if read_revision > 0));
    // Nothing of the second was applied.
    assert_eq!(all(&db, &t).await, pairs(&[("k", "first")]));
}

#[tokio::test]
async fn a_key_read_as_absent_then_created_is_a_conflict() {
    let db = setup!("conflict_absent");
    let t: MapStringString = Table::new(1, "t");
    let txn = db.begin_write();
    assert!(!t.contains(&txn, &s("k")).await.unwrap());
    put_now(&db, &t, "k", "theirs").await;
    t.put(&txn, &s("k"), &s("mine")).await.unwrap();
    assert!(txn.commit().await.unwrap_err().is_conflict());
    assert_eq!(all(&db, &t).await, pairs(&[("k", "theirs")]));

    // Removing a key someone else removed meanwhile: a conflict too.
    let txn = db.begin_write();
    assert_eq!(t.get(&txn, &s("k")).await.unwrap(), Some(s("theirs")));
    let other = db.begin_write();
    t.remove(&other, &s("k")).await.unwrap();
    other.commit().await.unwrap();
    t.remove(&txn, &s("k")).await.unwrap();
    t.put(&txn, &s("log"), &s("removed k")).await.unwrap();
    assert!(txn.commit().await.unwrap_err().is_conflict());
    assert_eq!(all(&db, &t).await, vec![]);
}

#[tokio::test]
async fn scanned_ranges_catch_inserts_updates_and_deletes() {
    let db = setup!("conflict_range");
    let t: MapStringString = Table::new(1, "t");
    let log: MapStringString = Table::new(2, "log");
    for k in ["b", "d", "f"] {
        put_now(&db, &t, k, "0").await;
    }

    // Each case: scan the table in a write transaction, let someone else change it, then
    // write elsewhere and commit.
    type Change = fn(&Database, &MapStringString) -> futures_util::future::BoxFuture<'static, ()>;
    let cases: [(&str, Change, bool); 5] = [
        (
            "insert between rows",
            |db, t| {
                let (db, t) = (db.clone(), t.clone());
                Box::pin(async move { put_now(&db, &t, "c", "new").await })
            },
            true,
        ),
        (
            "update a row",
            |db, t| {
                let (db, t) = (db.clone(), t.clone());
                Box::pin(async move { put_now(&db, &t, "d", "1").await })
            },
            true,
        ),
        (
            "delete a row",
            |db, t| {
                let (db, t) = (db.clone(), t.clone());
                Box::pin(async move {
                    let txn = db.begin_write();
                    t.remove(&txn, &s("d")).await.unwrap();
                    txn.commit().await.unwrap();
                })
            },
            true,
        ),
        (
            "insert after the rows",
            |db, t| {
                let (db, t) = (db.clone(), t.clone());
                Box::pin(async move { put_now(&db, &t, "z", "new").await })
            },
            true,
        ),
        (
            "write another table",
            |db, _| {
                let db = db.clone();
                Box::pin(async move {
                    let other: MapStringString = Table::new(3, "other");
                    put_now(&db, &other, "c", "new").await;
                })
            },
            false,
        ),
    ];
    for (what, change, conflicts) in cases {
        let txn = db.begin_write();
        let seen: Vec<(String, String)> = t.iter(&txn).try_collect().await.unwrap();
        assert!(!seen.is_empty());
        change(&db, &t).await;
        log.put(&txn, &s(what), &format!("saw {}", seen.len()))
            .await
            .unwrap();
        let result = txn.commit().await;
        assert_eq!(
            result.as_ref().err().is_some_and(Error::is_conflict),
            conflicts,
            "{what}: {result:?}"
        );
        let logged = log.contains(&db.begin_read(), &s(what)).await.unwrap();
        assert_eq!(logged, !conflicts, "{what}");
    }

    // A scan stopped early covers only what it returned: an insert past it is no conflict.
    let txn = db.begin_write();
    let first: Vec<(String, String)> = t.iter(&txn).limit(1).try_collect().await.unwrap();
    assert_eq!(first[0].0, "b");
    put_now(&db, &t, "y", "new").await;
    log.put(&txn, &s("limited"), &s("ok")).await.unwrap();
    txn.commit().await.unwrap();
    // ...but an insert inside it is.
    let txn = db.begin_write();
    let _: Vec<(String, String)> = t.range(&txn, s("a")..s("c")).try_collect().await.unwrap();
    put_now(&db, &t, "a1", "new").await;
    log.put(&txn, &s("ranged"), &s("no")).await.unwrap();
    assert!(txn.commit().await.unwrap_err().is_conflict());
}

#[tokio::test]
async fn transactions_with_disjoint_reads_both_commit() {
    let db = setup!("no_false_conflicts");
    let t: MapStringString = Table::new(1, "t");
    put_now(&db, &t, "a", "0").await;
    put_now(&db, &t, "b", "0").await;
    let first = db.begin_write();
    let second = db.begin_write();
    t.get(&first, &s("a")).await.unwrap();
    t.get(&second, &s("b")).await.unwrap();
    t.put(&first, &s("a"), &s("1")).await.unwrap();
    t.put(&second, &s("b"), &s("1")).await.unwrap();
    // Blind writes to one key: last writer wins, no conflict.
    t.put(&first, &s("blind"), &s("first")).await.unwrap();
    t.put(&second, &s("blind"), &s("second")).await.unwrap();
    first.commit().await.unwrap();
    second.commit().await.unwrap();
    assert_eq!(
        all(&db, &t).await,
        pairs(&[("a", "1"), ("b", "1"), ("blind", "second")])
    );
}

#[tokio::test]
async fn eight_concurrent_incrementers_lose_no_update() {
    let db = setup!("incrementers");
    let db = Database::builder(db.client().clone())
        .conflict_retry(ConflictRetry::default().max_attempts(100))
        .build();
    let counters: MapOidOid = Table::new(1, "counters");
    let attempts = Arc::new(AtomicU32::new(0));
    let most = Arc::new(AtomicU32::new(0));
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (db, counters, attempts, most) =
                (db.clone(), counters.clone(), attempts.clone(), most.clone());
            tokio::spawn(async move {
                for _ in 0..25 {
                    let runs = AtomicU32::new(0);
                    let (counters, attempts, runs_ref) = (&counters, &attempts, &runs);
                    db.transact(|txn| async move {
                        attempts.fetch_add(1, Ordering::Relaxed);
                        runs_ref.fetch_add(1, Ordering::Relaxed);
                        let n = counters.get(&txn, &7).await?.unwrap_or(0);
                        counters.put(&txn, &7, &(n + 1)).await?;
                        Ok(n + 1)
                    })
                    .await
                    .unwrap();
                    most.fetch_max(runs.load(Ordering::Relaxed), Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let total = counters.get(&db.begin_read(), &7).await.unwrap();
    assert_eq!(total, Some(200));
    let attempts = attempts.load(Ordering::Relaxed);
    assert!(attempts > 200, "8 writers of one key must have conflicted");
    eprintln!(
        "8 x 25 increments: {attempts} attempts for 200 commits in {:?}, at most {} for one",
        started.elapsed(),
        most.load(Ordering::Relaxed)
    );
}

#[tokio::test]
async fn transact_retries_conflicts_only_and_a_bounded_number_of_times() {
    let db = setup!("transact");
    let t: MapStringString = Table::new(1, "t");
    let db = Database::builder(db.client().clone())
        .conflict_retry(ConflictRetry::default().max_attempts(3))
        .build();

    // A body that always conflicts: it changes what it read behind its own back.
    let runs = AtomicU32::new(0);
    let (t_ref, db_ref, runs_ref) = (&t, &db, &runs);
    let err = db
        .transact(|txn| async move {
            runs_ref.fetch_add(1, Ordering::Relaxed);
            t_ref.get(&txn, &s("k")).await?;
            put_now(db_ref, t_ref, "k", "meddled").await;
            t_ref.put(&txn, &s("mine"), &s("x")).await?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(err.is_conflict());
    assert_eq!(runs.load(Ordering::Relaxed), 3);
    assert!(!t.contains(&db.begin_read(), &s("mine")).await.unwrap());

    // An error of the body's own ends at once, nothing applied.
    runs.store(0, Ordering::Relaxed);
    let err = db
        .transact(|txn| async move {
            runs_ref.fetch_add(1, Ordering::Relaxed);
            t_ref.put(&txn, &s("mine"), &s("x")).await?;
            Err::<(), _>(Error::abort("changed my mind"))
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Aborted(_)), "{err:?}");
    assert_eq!(runs.load(Ordering::Relaxed), 1);
    assert!(!t.contains(&db.begin_read(), &s("mine")).await.unwrap());

    // Decoding errors leave the body through `?` as Aborted too: not UTF-8, not a number,
    // not JSON. None is retried, nothing is applied.
    put_now(&db, &t, "n", "12x").await;
    runs.store(0, Ordering::Relaxed);
    let err = db
        .transact(|txn| async move {
            runs_ref.fetch_add(1, Ordering::Relaxed);
            t_ref.put(&txn, &s("mine"), &s("x")).await?;
            let raw = t_ref.get(&txn, &s("n")).await?.unwrap().into_bytes();
            let n: i64 = String::from_utf8(raw)?.parse()?; // FromUtf8Error, ParseIntError
            Ok(n)
        })
        .await
        .unwrap_err();
    assert!(
        err.downcast_aborted_ref::<std::num::ParseIntError>()
            .is_some(),
        "{err:?}"
    );
    assert_eq!(runs.load(Ordering::Relaxed), 1);
    assert!(!t.contains(&db.begin_read(), &s("mine")).await.unwrap());
    let err = db
        .transact(|txn| async move {
            let mut raw = t_ref.get(&txn, &s("n")).await?.unwrap().into_bytes();
            raw.push(0xff);
            Ok(std::str::from_utf8(&raw)?.len()) // Utf8Error
        })
        .await
        .unwrap_err();
    assert!(
        err.downcast_aborted_ref::<std::str::Utf8Error>().is_some(),
        "{err:?}"
    );
    let err = db
        .transact(|txn| async move {
            let text = t_ref.get(&txn, &s("n")).await?.unwrap();
            Ok(serde_json::from_str::<i64>(&text)?)
        })
        .await
        .unwrap_err();
    assert!(
        err.downcast_aborted_ref::<serde_json::Error>().is_some(),
        "{err:?}"
    );
    assert_eq!(
        std::error::Error::source(&err).map(ToString::to_string),
        Some("trailing characters at line 1 column 3".to_string())
    );

    // A handle kept past the commit is finished.
    let kept = std::sync::Mutex::new(None);
    let kept_ref = &kept;
    let value = db
        .transact(|txn| async move {
            *kept_ref.lock().unwrap() = Some(txn.clone());
            t_ref.put(&txn, &s("done"), &s("1")).await?;
            Ok(42)
        })
        .await
        .unwrap();
    assert_eq!(value, 42);
    let stale = kept.lock().unwrap().take().unwrap();
    let err = t.put(&stale, &s("late"), &s("1")).await.unwrap_err();
    assert!(matches!(err, Error::Finished), "{err:?}");
    assert!(matches!(stale.commit().await, Err(Error::Finished)));

    // Dropping or aborting a transaction sends nothing.
    let txn = db.begin_write();
    t.put(&txn, &s("aborted"), &s("1")).await.unwrap();
    txn.abort();
    assert!(!t.contains(&db.begin_read(), &s("aborted")).await.unwrap());
}

#[tokio::test]
async fn too_large_transactions_fail_before_sending() {
    let db = setup!("too_large");
    let t: MapOidOid = Table::new(1, "t");

    // 200 writes: over etcd's default --max-txn-ops of 128.
    let txn = db.begin_write();
    for i in 0..200 {
        t.put(&txn, &i, &i).await.unwrap();
    }
    let err = txn.commit().await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                ops: 200,
                compares: 0,
                max_ops: 128,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        message.contains("--max-txn-ops") && message.contains("1.5 MiB"),
        "{message}"
    );
    assert_eq!(t.count(&db.begin_read()).await.unwrap(), 0);

    // 130 keys read, then one write: too many compares.
    let txn = db.begin_write();
    for i in 0..130 {
        t.get(&txn, &i).await.unwrap();
    }
    t.put(&txn, &1, &1).await.unwrap();
    let err = txn.commit().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                ops: 1,
                compares: 130,
                ..
            }
        ),
        "{err:?}"
    );

    // Over 1.5 MiB of values.
    let blobs: etcd_pmap::MapOidBinary = Table::new(2, "blobs");
    let txn = db.begin_write();
    for i in 0..2 {
        blobs
            .put(&txn, &i, &bytes::Bytes::from(vec![7u8; 1 << 20]))
            .await
            .unwrap();
    }
    let err = txn.commit().await.unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { ops: 2, request_bytes, max_request_bytes: 1_572_864, .. } if request_bytes > 2 << 20),
        "{err:?}"
    );
    assert_eq!(blobs.count(&db.begin_read()).await.unwrap(), 0);

    // The limit follows the server's: here a database told --max-txn-ops is 5.
    let small = Database::builder(db.client().clone())
        .max_txn_ops(5)
        .build();
    let txn = small.begin_write();
    for i in 0..6 {
        t.put(&txn, &i, &i).await.unwrap();
    }
    assert!(matches!(
        txn.commit().await,
        Err(Error::TooLarge {
            ops: 6,
            max_ops: 5,
            ..
        })
    ));
    // At the limit it goes through.
    let txn = db.begin_write();
    for i in 0..128 {
        t.put(&txn, &i, &i).await.unwrap();
    }
    assert_eq!(txn.commit().await.unwrap().ops(), 128);
    assert_eq!(t.count(&db.begin_read()).await.unwrap(), 128);
}

/// A `tracing` subscriber that keeps the messages of warning events.
#[derive(Default)]
struct Warnings(std::sync::Mutex<Vec<String>>);

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message<'a>(&'a mut String);
        impl tracing::field::Visit for Message<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    *self.0 = format!("{value:?}");
                }
            }
        }
        if *event.metadata().level() == tracing::Level::WARN {
            let mut text = String::new();
            event.record(&mut Message(&mut text));
            self.0.lock().unwrap().push(text);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn a_write_transaction_dropped_with_writes_panics_in_debug_and_writes_nothing() {
    let db = setup!("dropped_write");
    let t: MapStringString = Table::new(1, "t");
    let warnings = Arc::new(Warnings::default());
    let dispatch = tracing::Dispatch::from(warnings.clone());

    let txn = db.begin_write();
    t.put(&txn, &s("a"), &s("1")).await.unwrap();
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tracing::dispatcher::with_default(&dispatch, || drop(txn))
    }));
    // Debug builds panic (a forgotten commit cannot go unnoticed); release builds warn.
    if cfg!(debug_assertions) {
        let panic = dropped.unwrap_err();
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            message.contains("a WriteTxn with 1 pending writes was dropped without commit()")
                && message.contains("abort()"),
            "{message}"
        );
    } else {
        assert!(dropped.is_ok());
    }
    assert_eq!(t.get(&db.begin_read(), &s("a")).await.unwrap(), None);
    {
        let seen = warnings.0.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(
            seen[0].contains("a WriteTxn with 1 pending writes was dropped without commit()"),
            "{seen:?}"
        );
    }

    // A transaction dropped while a panic unwinds does not panic again (no abort).
    let txn = db.begin_write();
    t.put(&txn, &s("c"), &s("1")).await.unwrap();
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _txn = txn;
        panic!("the application's own panic");
    }));
    let panic = unwound.unwrap_err();
    assert_eq!(
        panic.downcast_ref::<&str>(),
        Some(&"the application's own panic")
    );

    // A cancelled `transact` (its future dropped mid-body) discards its writes quietly,
    // as is a commit future dropped before it is polled.
    let (started, wait) = tokio::sync::oneshot::channel::<()>();
    let started = std::sync::Mutex::new(Some(started));
    let cancelled = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        db.transact(|txn| {
            let (t, started) = (&t, &started);
            async move {
                t.put(&txn, &s("d"), &s("1")).await?;
                if let Some(tx) = started.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                std::future::pending::<()>().await;
                Ok(())
            }
        }),
    )
    .await;
    assert!(cancelled.is_err());
    wait.await.unwrap();
    let txn = db.begin_write();
    t.put(&txn, &s("e"), &s("1")).await.unwrap();
    drop(txn.commit());
    assert_eq!(t.get(&db.begin_read(), &s("d")).await.unwrap(), None);
    assert_eq!(t.get(&db.begin_read(), &s("e")).await.unwrap(), None);

    // Committed, aborted, or without writes: no warning.
    tracing::dispatcher::with_default(&dispatch, || {
        drop(db.begin_write());
        let txn = db.begin_write();
        txn.abort();
    });
    let txn = db.begin_write();
    t.put(&txn, &s("a"), &s("2")).await.unwrap();
    let committed = txn.commit();
    let _guard = tracing::dispatcher::set_default(&dispatch);
    committed.await.unwrap();
    db.transact(|txn| {
        let t = &t;
        async move { t.put(&txn, &s("b"), &s("3")).await }
    })
    .await
    .unwrap();
    assert_eq!(warnings.0.lock().unwrap().len(), 1);
    assert_eq!(all(&db, &t).await, pairs(&[("a", "2"), ("b", "3")]));
}
