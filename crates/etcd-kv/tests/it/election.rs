//! Elections: one leader at a time, hand-over on resignation and death, observe, etcdctl.

use crate::child::{self, CHILD_TTL};
use crate::setup;
use etcd_kv::{Client, Election, Error, LeaderInfo, LeaderStream, Leadership, Result};
use futures_util::StreamExt;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::task::JoinHandle;

/// The next leader the stream reports, within 5 s.
async fn next_leader(observer: &mut LeaderStream) -> LeaderInfo {
    tokio::time::timeout(Duration::from_secs(5), observer.next())
        .await
        .expect("a leader change within 5 s")
        .expect("the stream goes on")
        .expect("no error")
}

async fn count(client: &Client, prefix: &str) -> i64 {
    client
        .range(prefix)
        .prefix()
        .count_only()
        .await
        .unwrap()
        .count()
}

fn candidate(election: &Election, value: &str) -> JoinHandle<Result<Leadership>> {
    let (election, value) = (election.clone(), value.to_string());
    tokio::spawn(async move { election.campaign(value).ttl(CHILD_TTL as i64).await })
}

#[tokio::test]
async fn campaign_proclaim_observe_resign() {
    let (_etcd, client, p) = setup!("election_basic");
    let name = format!("{p}leader");
    let election = Election::new(&client, &name);
    assert!(election.leader().await.unwrap().is_none());
    let mut observer = election.observe();

    let a = election.campaign("a").ttl(5).await.unwrap();
    let lease = a.session().lease_id();
    assert_eq!(a.key(), format!("{name}/{lease:x}").as_bytes());
    assert!(a.is_leader().await.unwrap());
    let leader = election.leader().await.unwrap().unwrap();
    assert_eq!(
        (leader.key(), leader.value(), leader.lease()),
        (a.key(), &b"a"[..], lease)
    );
    assert_eq!(leader.create_revision(), a.create_revision());
    assert_eq!(next_leader(&mut observer).await.value(), b"a");

    // A new value, same leader, same term.
    a.proclaim("a2").await.unwrap();
    let seen = next_leader(&mut observer).await;
    assert_eq!(seen.value_str().unwrap(), "a2");
    assert_eq!(seen.create_revision(), a.create_revision());
    let fenced = client
        .txn()
        .when([a.is_leader_compare()])
        .and_then([etcd_kv::TxnOp::put(format!("{p}data"), "from the leader")])
        .await
        .unwrap();
    assert!(fenced.succeeded());

    // b waits while a leads, and takes over when a resigns.
    let b = candidate(&election, "b");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!b.is_finished());
    assert_eq!(count(&client, &format!("{name}/")).await, 2);
    a.resign().await.unwrap();
    let b = tokio::time::timeout(Duration::from_secs(2), b)
        .await
        .expect("b elected after a resigned")
        .unwrap()
        .unwrap();
    let seen = next_leader(&mut observer).await;
    assert_eq!(seen.value(), b"b");
    assert!(
        seen.create_revision() > leader.create_revision(),
        "a new term"
    );

    // Someone deletes b's key: b is no longer the leader.
    client.delete(b.key()).await.unwrap();
    let err = b.proclaim("b2").await.unwrap_err();
    assert!(
        matches!(&err, Error::NotLeader { name: n } if *n == name),
        "{err:?}"
    );
    assert!(!b.is_leader().await.unwrap());
    b.resign().await.unwrap();
    assert!(election.leader().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_candidates_one_leader_at_a_time_hand_over_on_death_and_resignation() {
    let (etcd, client, p) = setup!("election_three");
    let name = format!("{p}leader");
    let election = Election::new(&client, &name);
    let mut observer = election.observe();

    // Candidate 1, in a child process, leads first.
    let first = child::spawn("elect", &etcd.endpoint(0), &name, "child").await;
    assert_eq!(next_leader(&mut observer).await.value(), b"child");

    // Candidates 2 and 3 wait.
    let mut waiting = vec![
        ("two", candidate(&election, "two")),
        ("three", candidate(&election, "three")),
    ];
    let prefix = format!("{name}/");
    let start = Instant::now();
    while count(&client, &prefix).await < 3 {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(waiting.iter().all(|(_, c)| !c.is_finished()));
    assert_eq!(election.leader().await.unwrap().unwrap().value(), b"child");

    // The leader dies: one of the others takes over within the TTL.
    first.kill().await;
    let killed = Instant::now();
    let (winner_name, winner) = loop {
        if let Some(i) = waiting.iter().position(|(_, c)| c.is_finished()) {
            let (n, c) = waiting.remove(i);
            break (n, c.await.unwrap().unwrap());
        }
        assert!(
            killed.elapsed() < Duration::from_secs(CHILD_TTL + 1),
            "no new leader within TTL + 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!(
        "leader {winner_name} elected {:?} after the child leader was killed",
        killed.elapsed()
    );
    assert_eq!(
        next_leader(&mut observer).await.value(),
        winner_name.as_bytes()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (loser_name, loser) = waiting.pop().unwrap();
    assert!(!loser.is_finished(), "one leader at a time");
    assert!(winner.is_leader().await.unwrap());

    winner.proclaim(format!("{winner_name}!")).await.unwrap();
    assert_eq!(
        next_leader(&mut observer).await.value_str().unwrap(),
        format!("{winner_name}!")
    );

    // The leader resigns: the last candidate takes over at once.
    winner.resign().await.unwrap();
    let resigned = Instant::now();
    let last = tokio::time::timeout(Duration::from_secs(1), loser)
        .await
        .expect("hand-over on resignation")
        .unwrap()
        .unwrap();
    eprintln!("hand-over on resignation took {:?}", resigned.elapsed());
    assert_eq!(
        next_leader(&mut observer).await.value(),
        loser_name.as_bytes()
    );
    assert_eq!(
        election.leader().await.unwrap().unwrap().key(),
        last.key(),
        "the leader is the last candidate"
    );

    // The last leader hangs (stops refreshing its lease): leadership ends within the TTL.
    last.session().orphan();
    let start = Instant::now();
    while election.leader().await.unwrap().is_some() {
        assert!(start.elapsed() < Duration::from_secs(CHILD_TTL + 2));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(last);
    assert_eq!(count(&client, &prefix).await, 0);
}

#[tokio::test]
async fn a_cancelled_campaign_withdraws_its_candidate() {
    let (_etcd, client, p) = setup!("election_cancel");
    let name = format!("{p}leader");
    let election = Election::new(&client, &name);
    let leader = election.campaign("first").await.unwrap();
    let gave_up =
        tokio::time::timeout(Duration::from_millis(300), election.campaign("second")).await;
    assert!(gave_up.is_err());
    let prefix = format!("{name}/");
    let start = Instant::now();
    while count(&client, &prefix).await != 1 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "candidate withdrawn"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Dropping the leadership resigns in the background.
    drop(leader);
    let start = Instant::now();
    while count(&client, &prefix).await != 0 {
        assert!(start.elapsed() < Duration::from_secs(2), "resigned on drop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interoperates_with_etcdctl_elect() {
    let (etcd, client, p) = setup!("election_etcdctl");
    let name = format!("{p}leader");
    let etcdctl = |args: &[&str]| {
        tokio::process::Command::new(etcd.etcdctl_path())
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", etcd.endpoint(0)))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let election = Election::new(&client, &name);
    let mut observer = election.observe();

    // etcdctl campaigns and leads; we see it, and wait behind it.
    let theirs = etcdctl(&["elect", &name, "from-etcdctl"]);
    assert_eq!(next_leader(&mut observer).await.value(), b"from-etcdctl");
    let ours = {
        let election = election.clone();
        tokio::spawn(async move { election.campaign("from-rust").ttl(5).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!ours.is_finished());

    // On SIGINT etcdctl resigns; we lead.
    let pid = theirs.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let ours = tokio::time::timeout(Duration::from_secs(5), ours)
        .await
        .expect("elected once etcdctl resigned")
        .unwrap()
        .unwrap();
    assert_eq!(next_leader(&mut observer).await.value(), b"from-rust");

    // etcdctl's observer sees our key and value.
    let mut listener = etcdctl(&["elect", "-l", &name]);
    let mut lines = BufReader::new(listener.stdout.take().unwrap()).lines();
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        let key = lines.next_line().await.unwrap().unwrap();
        let value = lines.next_line().await.unwrap().unwrap();
        (key, value)
    })
    .await
    .expect("etcdctl elect -l prints the leader");
    assert_eq!(
        seen,
        (
            String::from_utf8_lossy(ours.key()).into_owned(),
            "from-rust".to_string()
        )
    );
    listener.kill().await.unwrap();
    ours.resign().await.unwrap();
}

/// `leader_changes` also reports the periods without a leader: after a resignation, a
/// deleted key and an expired session, as `None`, so that no observer keeps a leader that
/// is gone. A hand-over to a candidate in line is one change, with no vacancy between.
#[tokio::test]
async fn leader_changes_report_the_periods_without_a_leader() {
    let (_etcd, client, p) = setup!("election_vacancy");
    let election = Election::new(&client, format!("{p}leader"));
    let mut changes = election.leader_changes();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .expect("a change within 5 s")
            .expect("the stream goes on")
            .expect("no error")
            .map(|leader| leader.value_str().unwrap().to_string())
    };
    assert_eq!(next().await, None, "nobody leads at first");

    let a = election.campaign("a").ttl(5).await.unwrap();
    assert_eq!(next().await.as_deref(), Some("a"));
    let b = candidate(&election, "b");
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.resign().await.unwrap();
    let b = b.await.unwrap().unwrap();
    assert_eq!(
        next().await.as_deref(),
        Some("b"),
        "handed over, no vacancy"
    );

    b.resign().await.unwrap();
    assert_eq!(next().await, None, "resigned with nobody in line");

    let c = election.campaign("c").ttl(5).await.unwrap();
    assert_eq!(next().await.as_deref(), Some("c"));
    client.delete(c.key()).await.unwrap();
    assert_eq!(next().await, None, "its key deleted");

    // A leader whose session ends (its lease revoked, as when it expires).
    let d = election.campaign("d").ttl(5).await.unwrap();
    assert_eq!(next().await.as_deref(), Some("d"));
    client.lease_revoke(d.session().lease_id()).await.unwrap();
    assert_eq!(next().await, None, "its session's lease is gone");
    drop(d);
}
