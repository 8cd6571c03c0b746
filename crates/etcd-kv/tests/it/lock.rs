//! Locks: exclusion under contention, FIFO order, timeouts, crashes, fencing, etcdctl.

use crate::child::{self, CHILD_TTL};
use crate::setup;
use etcd_kv::{Client, Error, LeaseLost, Session, TxnOp};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many keys are under `<name>/`: the holder and the waiters.
async fn contenders(client: &Client, name: &str) -> i64 {
    client
        .range(format!("{name}/"))
        .prefix()
        .count_only()
        .await
        .unwrap()
        .count()
}

/// Waits until `<name>/` holds `n` keys, for at most `within`.
async fn wait_contenders(client: &Client, name: &str, n: i64, within: Duration) {
    let start = Instant::now();
    loop {
        let now = contenders(client, name).await;
        if now == n {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{name}: {now} contenders, expected {n} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn key_layout_fencing_release_drop_and_with_lock() {
    let (_etcd, client, p) = setup!("lock_basic");
    let name = format!("{p}mutex");
    let guard = client.lock(&name).ttl(5).await.unwrap();
    let lease = guard.session().lease_id();
    // Go's layout: `<name>/<lease id in lowercase hex>`, empty value, with the lease.
    let key = format!("{name}/{lease:x}");
    assert_eq!(guard.key(), key.as_bytes());
    assert_eq!(guard.name(), name.as_bytes());
    let kv = client.get(&key).await.unwrap().expect("the lock key");
    assert_eq!(kv.lease(), lease);
    assert_eq!(kv.create_revision(), guard.create_revision());
    assert!(kv.value().is_empty());
    assert!(guard.is_owner().await.unwrap());
    let fenced = client
        .txn()
        .when([guard.is_owner_compare()])
        .and_then([TxnOp::put(format!("{p}data"), "written under the lock")])
        .await
        .unwrap();
    assert!(fenced.succeeded());

    // Release deletes the key and revokes the lock's own session.
    guard.release().await.unwrap();
    assert!(client.get(&key).await.unwrap().is_none());
    assert!(matches!(
        client.lease_time_to_live(lease).await,
        Err(Error::LeaseNotFound { .. })
    ));

    // Drop releases in the background.
    let guard = client.lock(&name).await.unwrap();
    let revision = guard.create_revision();
    assert!(
        revision > kv.create_revision(),
        "a new holder, a larger token"
    );
    drop(guard);
    wait_contenders(&client, &name, 0, Duration::from_secs(2)).await;

    // with_lock runs the work under the lock and releases it; `?` works inside and the
    // outcome is one Result.
    let inside = client
        .with_lock(&name, async {
            client.put(format!("{p}under-lock"), "1").await?;
            Ok(contenders(&client, &name).await) // our own key, nothing else
        })
        .await
        .unwrap();
    assert_eq!(inside, 1);
    assert_eq!(contenders(&client, &name).await, 0);
    let failed = client
        .with_lock(&name, async {
            client.put("", "an empty key is refused").await?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(failed, Error::InvalidInput { .. }), "{failed:?}");
    wait_contenders(&client, &name, 0, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_max_hold_lock_is_freed_in_time_even_if_the_holder_hangs() {
    let (_etcd, client, p) = setup!("lock_max_hold");
    let name = format!("{p}mutex");
    let hold = Duration::from_secs(2);
    // Waiting is not counted: the holder waits 1.5 s for the lock first.
    let first = client.lock(&name).await.unwrap();
    let taking = tokio::spawn({
        let (client, name) = (client.clone(), name.clone());
        async move { client.lock(&name).max_hold(hold).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.release().await.unwrap();
    let guard = taking.await.unwrap().unwrap();
    let taken = Instant::now();
    let lost = guard.lost();
    // The holder hangs: it never releases, never drops its guard.
    std::mem::forget(guard);
    let next = client
        .lock(&name)
        .timeout(Duration::from_secs(10))
        .await
        .expect("freed by etcd");
    let waited = taken.elapsed();
    assert!(
        waited >= hold - Duration::from_millis(300) && waited < hold + Duration::from_secs(3),
        "freed after {waited:?}, for a max hold of {hold:?}"
    );
    let reason = tokio::time::timeout(Duration::from_secs(2), lost)
        .await
        .expect("the guard learns that the hold time is up");
    assert_eq!(reason, LeaseLost::Expired);
    next.release().await.unwrap();

    // run() cancels the work when the hold time is up, and says so; release() frees it
    // at once before.
    let started = Instant::now();
    let result = client
        .lock(&name)
        .max_hold(hold)
        .run(std::future::pending::<()>())
        .await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::MaxHoldExceeded { name: n, max_hold } if *n == name && *max_hold == hold),
        "{err:?}"
    );
    assert!(err.is_max_hold_exceeded());
    assert_eq!(
        err.to_string(),
        format!(
            "lock {name:?} was held past its max_hold of 2s: the work was cancelled and the \
             lock released"
        )
    );
    assert!(started.elapsed() >= hold - Duration::from_millis(300));
    // The work was cancelled no later than etcd freed the lock: it is free now, or soon.
    let next = client
        .lock(&name)
        .timeout(Duration::from_secs(3))
        .await
        .expect("freed by etcd at the deadline");
    next.release().await.unwrap();
    // try_run says the same.
    let err = client
        .lock(&name)
        .max_hold(hold)
        .try_run(std::future::pending::<etcd_kv::Result<()>>())
        .await
        .unwrap_err();
    assert!(err.is_max_hold_exceeded(), "{err:?}");
    let guard = client.lock(&name).max_hold(hold).await.unwrap();
    guard.release().await.unwrap();
    assert_eq!(contenders(&client, &name).await, 0);

    // A max hold and a session of one's own exclude each other.
    let session = Session::builder(&client).ttl(5).await.unwrap();
    let err = client
        .lock(&name)
        .session(&session)
        .max_hold(hold)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    session.close().await.unwrap();
}

#[derive(Debug)]
struct Overdrawn;

impl std::fmt::Display for Overdrawn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("overdrawn")
    }
}

impl std::error::Error for Overdrawn {}

#[tokio::test]
async fn decoding_and_application_errors_leave_lock_bodies_through_question_mark() {
    let (_etcd, client, p) = setup!("lock_body_errors");
    let name = format!("{p}mutex");
    client
        .put(format!("{p}binary"), &b"\xff\xfe"[..])
        .await
        .unwrap();
    client.put(format!("{p}count"), "12x").await.unwrap();
    client.put(format!("{p}ok"), "41").await.unwrap();

    // A value that is not UTF-8: Utf8Error through `?`.
    let err = client
        .with_lock(&name, async {
            let kv = client.get(format!("{p}binary")).await?.unwrap();
            Ok(kv.value_str()?.len())
        })
        .await
        .unwrap_err();
    assert!(
        err.downcast_other_ref::<std::str::Utf8Error>().is_some(),
        "{err:?}"
    );
    assert!(err.to_string().contains("invalid utf-8"), "{err}");
    // A number that does not parse: ParseIntError.
    let err = client
        .with_lock(&name, async {
            let kv = client.get(format!("{p}count")).await?.unwrap();
            Ok(kv.value_str()?.parse::<i64>()?)
        })
        .await
        .unwrap_err();
    assert!(
        err.downcast_other_ref::<std::num::ParseIntError>()
            .is_some(),
        "{err:?}"
    );
    // An error of the application's own, through Error::other; the lock is released.
    let err = client
        .lock(&name)
        .timeout(Duration::from_secs(5))
        .try_run(async {
            client.get(format!("{p}ok")).await?;
            Err::<(), _>(Error::other(Overdrawn))
        })
        .await
        .unwrap_err();
    assert!(err.downcast_other_ref::<Overdrawn>().is_some(), "{err:?}");
    assert_eq!(err.to_string(), "overdrawn");
    assert_eq!(contenders(&client, &name).await, 0);
    // Error::other on an etcd error returns it unwrapped.
    let e = Error::other(Error::LockTimeout { name: "x".into() });
    assert!(matches!(e, Error::LockTimeout { .. }), "{e:?}");
    // And the success path still reads as before.
    let n = client
        .with_lock(&name, async {
            let kv = client.get(format!("{p}ok")).await?.unwrap();
            Ok(kv.value_str()?.parse::<i64>()? + 1)
        })
        .await
        .unwrap();
    assert_eq!(n, 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_lock_outlives_its_ttl() {
    let (_etcd, client, p) = setup!("lock_kept_alive");
    let name = format!("{p}mutex");
    let guard = client.lock(&name).ttl(2).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        guard.is_owner().await.unwrap(),
        "still held after twice its TTL"
    );
    let err = client
        .lock(&name)
        .timeout(Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LockTimeout { .. }), "{err:?}");
    guard.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_tasks_on_four_clients_increment_under_the_lock() {
    let (etcd, check, p) = setup!("lock_counter");
    let name = format!("{p}mutex");
    let counter = format!("{p}counter");
    let inside = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let client = crate::builder()
            .endpoint(etcd.endpoint(0))
            .connect()
            .await
            .unwrap();
        // Half the tasks share their client's session (they take turns locally first),
        // half have sessions of their own.
        let shared = Session::builder(&client).ttl(10).await.unwrap();
        for t in 0..8 {
            let session = if t % 2 == 0 {
                shared.clone()
            } else {
                Session::builder(&client).ttl(10).await.unwrap()
            };
            let (client, name, counter, inside) = (
                client.clone(),
                name.clone(),
                counter.clone(),
                inside.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for _ in 0..50 {
                    let guard = client.lock(&name).session(&session).await?;
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    // Read-modify-write with no compare: only the lock prevents lost updates.
                    let n: u64 = match client.get(&counter).await? {
                        Some(kv) => kv.value_str().unwrap().parse().unwrap(),
                        None => 0,
                    };
                    tokio::task::yield_now().await;
                    client.put(&counter, (n + 1).to_string()).await?;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    guard.release().await?;
                }
                Ok::<_, Error>(())
            }));
        }
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let value = check.get(&counter).await.unwrap().unwrap();
    assert_eq!(value.value_str().unwrap(), "1600");
    assert_eq!(contenders(&check, &name).await, 0);
    eprintln!("1600 locked increments in {:?}", start.elapsed());
}

#[tokio::test]
async fn waiters_are_served_in_order_and_a_cancelled_waiter_leaves_the_line() {
    let (_etcd, client, p) = setup!("lock_fifo");
    let name = format!("{p}mutex");
    let holder = client.lock(&name).await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..5 {
        let (c, n, order) = (client.clone(), name.clone(), order.clone());
        waiters.push(tokio::spawn(async move {
            let guard = c.lock(&n).await?;
            order.lock().unwrap().push(i);
            tokio::time::sleep(Duration::from_millis(20)).await;
            guard.release().await
        }));
        // Line up one after the other.
        wait_contenders(&client, &name, i + 2, Duration::from_secs(5)).await;
    }
    // Waiter 2 gives up (its future is dropped): its key leaves the line, and waiter 3,
    // which watched it, goes back to waiting for waiter 1.
    waiters[2].abort();
    wait_contenders(&client, &name, 5, Duration::from_secs(2)).await;
    holder.release().await.unwrap();
    for (i, waiter) in waiters.into_iter().enumerate() {
        match waiter.await {
            Ok(result) => result.unwrap(),
            Err(e) => assert!(e.is_cancelled() && i == 2, "waiter {i}: {e}"),
        }
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 3, 4]);
    assert_eq!(contenders(&client, &name).await, 0);
}

#[tokio::test]
async fn a_waiter_with_a_timeout_fails_in_time_and_leaves_no_key() {
    let (_etcd, client, p) = setup!("lock_timeout");
    let name = format!("{p}mutex");
    let holder = client.lock(&name).await.unwrap();

    // A lock with its own session.
    let start = Instant::now();
    let err = client
        .lock(&name)
        .timeout(Duration::from_millis(300))
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(&err, Error::LockTimeout { name: n } if *n == name),
        "{err:?}"
    );
    assert!(err.is_timeout());
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert_eq!(contenders(&client, &name).await, 1, "only the holder's key");

    // Through a shared session, which stays usable.
    let session = Session::builder(&client).ttl(10).await.unwrap();
    let err = client
        .lock(&name)
        .session(&session)
        .timeout(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LockTimeout { .. }), "{err:?}");
    assert_eq!(contenders(&client, &name).await, 1);

    // Cancelled from outside: the key is removed in the background.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(200),
        client.lock(&name).session(&session),
    )
    .await;
    assert!(cancelled.is_err());
    wait_contenders(&client, &name, 1, Duration::from_secs(2)).await;

    holder.release().await.unwrap();
    let guard = client
        .lock(&name)
        .session(&session)
        .timeout(Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(guard.session().lease_id(), session.lease_id());
    guard.release().await.unwrap();
    session.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_process_frees_the_lock_within_its_ttl() {
    let (etcd, client, p) = setup!("lock_kill");
    let name = format!("{p}mutex");
    let holder = child::spawn("lock", &etcd.endpoint(0), &name, "").await;
    let holder_key = holder.key.clone();
    assert!(client.get(&holder_key).await.unwrap().is_some());

    let waiter = {
        let (client, name) = (client.clone(), name.clone());
        tokio::spawn(async move { client.lock(&name).ttl(5).await })
    };
    wait_contenders(&client, &name, 2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "the child holds the lock");

    holder.kill().await;
    let killed = Instant::now();
    let guard = tokio::time::timeout(Duration::from_secs(CHILD_TTL + 3), waiter)
        .await
        .expect("the lock is freed")
        .unwrap()
        .unwrap();
    let took = killed.elapsed();
    eprintln!("lock freed {took:?} after its holder was killed (TTL {CHILD_TTL} s)");
    assert!(
        took <= Duration::from_secs(CHILD_TTL + 1),
        "freed after {took:?}"
    );
    assert!(client.get(&holder_key).await.unwrap().is_none());
    guard.release().await.unwrap();
}

#[tokio::test]
async fn a_lost_session_is_reported_and_fences_writes() {
    let (_etcd, client, p) = setup!("lock_fence");
    let name = format!("{p}mutex");
    let session = Session::builder(&client).ttl(3).await.unwrap();
    let guard = client.lock(&name).session(&session).await.unwrap();
    let lost = guard.lost();
    // The lease is lost (as if it had expired during a long pause).
    client.lease_revoke(session.lease_id()).await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(3), lost)
        .await
        .expect("loss reported within the TTL");
    assert_eq!(reason, LeaseLost::Expired);
    assert!(session.is_lost());
    assert!(!guard.is_owner().await.unwrap());

    // Someone else takes the lock at once; the old holder's guarded write is refused.
    let other = client
        .lock(&name)
        .timeout(Duration::from_secs(2))
        .await
        .unwrap();
    assert!(other.create_revision() > guard.create_revision());
    let stale = client
        .txn()
        .when([guard.is_owner_compare()])
        .and_then([TxnOp::put(format!("{p}data"), "stale")])
        .await
        .unwrap();
    assert!(!stale.succeeded());
    assert!(client.get(format!("{p}data")).await.unwrap().is_none());

    // A lost session can't take locks.
    let err = client.lock(&name).session(&session).await.unwrap_err();
    assert!(matches!(err, Error::SessionLost(_)), "{err:?}");
    drop(guard);
    other.release().await.unwrap();

    // with_lock stops the work when the lock is lost.
    let session = Session::builder(&client).ttl(3).await.unwrap();
    let revoker = client.clone();
    let lease = session.lease_id();
    let result = client
        .lock(&name)
        .session(&session)
        .run(async move {
            revoker.lease_revoke(lease).await.unwrap();
            std::future::pending::<()>().await
        })
        .await;
    assert!(matches!(result, Err(Error::SessionLost(_))), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interoperates_with_etcdctl_lock() {
    let (etcd, client, p) = setup!("lock_etcdctl");
    let name = format!("{p}mutex");
    let etcdctl = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(etcd.etcdctl_path());
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", etcd.endpoint(0)))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    };

    // etcdctl holds the lock while its command runs; we wait for it.
    let mut held = etcdctl(&["lock", &name, "sleep", "1"]).spawn().unwrap();
    wait_contenders(&client, &name, 1, Duration::from_secs(5)).await;
    let theirs = client.range(format!("{name}/")).prefix().await.unwrap();
    let their_key = theirs.kvs()[0].key_str().unwrap().to_string();
    let hex = their_key.rsplit('/').next().unwrap();
    assert_eq!(
        i64::from_str_radix(hex, 16).unwrap(),
        theirs.kvs()[0].lease(),
        "etcdctl's key is <name>/<lease hex> too"
    );
    let guard = client
        .lock(&name)
        .timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        client.get(&their_key).await.unwrap().is_none(),
        "etcdctl released first"
    );
    assert!(held.wait().await.unwrap().success());

    // We hold the lock; etcdctl waits for it.
    let waiting = etcdctl(&["lock", &name, "echo", "got it"]).spawn().unwrap();
    wait_contenders(&client, &name, 2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    guard.release().await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(5), waiting.wait_with_output())
        .await
        .expect("etcdctl gets the lock once released")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "got it");
    assert_eq!(contenders(&client, &name).await, 0);
}
