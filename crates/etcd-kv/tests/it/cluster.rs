//! Cluster and maintenance: status, members, alarms, defragmentation; client configuration.

use crate::{key, setup};
use etcd_kv::{AlarmType, RetryConfig};
use std::time::Duration;

#[tokio::test]
async fn status_of_the_member() {
    let (etcd, client, p) = setup!("status");
    let written = client.put(key(&p, "k"), "v").await.unwrap().revision();
    let status = client.status().await.unwrap();
    assert_eq!(status.version(), etcd.version());
    assert!(status.db_size() > 0);
    assert!(status.db_size_in_use() > 0 && status.db_size_in_use() <= status.db_size());
    assert_ne!(status.leader(), 0);
    assert!(status.is_leader(), "a single member leads");
    assert_eq!(status.member_id(), status.leader());
    assert_eq!(status.header().member_id(), status.member_id());
    assert!(status.raft_index() > 0);
    assert!(status.raft_term() >= 1);
    assert!(status.raft_applied_index() > 0);
    assert!(!status.is_learner());
    assert!(status.errors().is_empty(), "{:?}", status.errors());
    assert!(status.revision() >= written);
    assert_eq!(client.server_version().await.unwrap(), etcd.version());
}

#[tokio::test]
async fn status_displays_as_one_line() {
    let (etcd, client, _p) = setup!("status_display");
    let status = client.status().await.unwrap();
    let line = status.to_string();
    let expected = format!(
        "member {:x} (leader): etcd {}, raft term {}, ",
        status.member_id(),
        etcd.version(),
        status.raft_term()
    );
    assert!(line.starts_with(&expected), "{line}");
    assert!(
        line.contains(&format!("db {} bytes", status.db_size())),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);
}

#[tokio::test]
async fn leader_endpoint_in_one_call() {
    let (etcd, client, _p) = setup!("leader_endpoint");
    assert_eq!(
        client.leader_endpoint().await.unwrap(),
        Some(etcd.endpoint(0))
    );
}

#[tokio::test]
async fn leader_endpoint_from_any_member_of_three() {
    let Some(etcd) = xtask::testing::cluster3() else {
        return;
    };
    let mut seen = Vec::new();
    for i in 0..3 {
        let client = crate::builder()
            .endpoint(etcd.endpoint(i))
            .connect()
            .await
            .unwrap();
        seen.push(client.leader_endpoint().await.unwrap().expect("a leader"));
    }
    assert!(seen.iter().all(|url| *url == seen[0]), "{seen:?}");
    assert!(etcd.endpoints().contains(&seen[0]), "{seen:?}");
    let leader = crate::builder()
        .endpoint(seen[0].clone())
        .connect()
        .await
        .unwrap();
    assert!(leader.status().await.unwrap().is_leader());
}

#[tokio::test]
async fn member_list() {
    let (etcd, client, _p) = setup!("member_list");
    let members = client.member_list().await.unwrap();
    assert_eq!(members.len(), 1);
    let m = &members[0];
    assert_eq!(m.id(), client.status().await.unwrap().member_id());
    assert_eq!(m.name(), "node0");
    assert_eq!(m.client_urls(), [etcd.endpoint(0)]);
    assert_eq!(m.peer_urls(), [etcd.peer_url(0)]);
    assert!(!m.is_learner());
}

#[tokio::test]
async fn alarms_and_defragment() {
    let (_etcd, client, _p) = setup!("alarms");
    assert_eq!(client.alarms().await.unwrap(), []);
    assert_eq!(client.alarm_disarm(0, AlarmType::None).await.unwrap(), []);
    client.defragment().await.unwrap();
    // The member still serves afterwards.
    client.status().await.unwrap();
}

#[tokio::test]
async fn builder_options_and_failover() {
    let (etcd, _client, p) = setup!("builder");
    let dead = crate::unreachable_client();
    let dead_url = dead.endpoints()[0].clone();
    // A dead endpoint first: requests fail over to the live one.
    let client = crate::builder()
        .endpoints([dead_url.clone(), etcd.endpoint(0)])
        .prefer_first(true)
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(5))
        .retry(
            RetryConfig::default()
                .max_retries(3)
                .backoff(Duration::from_millis(10), Duration::from_millis(100)),
        )
        .connect()
        .await
        .unwrap();
    assert_eq!(client.endpoints().len(), 2);
    client.put(key(&p, "k"), "v").await.unwrap();
    assert!(client.get(key(&p, "k")).await.unwrap().is_some());
    assert!(format!("{client:?}").contains(&dead_url));

    // Only a dead endpoint: connect fails, as a connection problem.
    let err = crate::builder()
        .endpoint(dead_url.clone())
        .retry(RetryConfig::none())
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, etcd_kv::Error::Unavailable(_)), "{err:?}");
    assert!(!err.is_outcome_unknown());
    let err = crate::builder()
        .endpoint(dead_url)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, etcd_kv::Error::Unavailable(_)), "{err:?}");

    // A bad URL is invalid input from build().
    let err = crate::builder().endpoint("not a url").build().unwrap_err();
    assert!(
        matches!(err, etcd_kv::Error::InvalidInput { .. }),
        "{err:?}"
    );
}

/// A server that answers `GET /version` like etcd 3.5 and never answers anything else.
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) if buf[..n].starts_with(b"GET /version") => {
                            let body = r#"{"etcdserver":"3.5.1","etcdcluster":"3.5.0"}"#;
                            let answer = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                 content-length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if socket.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) => {} // Never answered.
                    }
                }
            });
        }
    });
    (url, task)
}

#[tokio::test]
async fn request_timeouts_are_typed_and_say_whether_a_write_may_have_applied() {
    let (url, server) = silent_server().await;
    // A fake gateway: the gateway protocol whatever the run's.
    let client = etcd_kv::Client::builder()
        .endpoint(url)
        .request_timeout(Duration::from_millis(200))
        .retry(RetryConfig::none())
        .connect()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = client.get("k").await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(matches!(err, etcd_kv::Error::Timeout(_)), "{err:?}");
    let err = client.put("k", "v").await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(
        err.is_outcome_unknown(),
        "a sent write may have applied: {err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.abort();
}

/// How many Range calls `endpoint`'s member has answered (etcd's own
/// `grpc_server_handled_total`, which counts the gateway's calls too).
fn ranges_served(endpoint: &str) -> u64 {
    use std::io::{Read, Write};
    let address = endpoint.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(address).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(conn, "GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("grpc_server_handled_total{") && l.contains("grpc_method=\"Range\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_built_with_the_same_list_spread_over_the_members() {
    let Some(etcd) = xtask::testing::cluster3() else {
        return;
    };
    let key = format!("{}k", xtask::testing::unique_prefix("spread"));
    let served = |before: &[u64]| -> Vec<u64> {
        (0..3)
            .map(|i| ranges_served(&etcd.endpoint(i)) - before[i])
            .collect()
    };
    let before = served(&[0, 0, 0]);
    let mut clients = Vec::new();
    for _ in 0..30 {
        clients.push(
            crate::builder()
                .endpoints(etcd.endpoints())
                .connect()
                .await
                .unwrap(),
        );
    }
    for client in &clients {
        let first = client.current_endpoint();
        for _ in 0..40 {
            client.get(&key).await.unwrap();
        }
        // Each client keeps to one member while it answers.
        assert_eq!(client.current_endpoint(), first);
    }
    let spread = served(&before);
    let total: u64 = spread.iter().sum();
    assert!(total >= 1200, "{spread:?}");
    for (member, &n) in spread.iter().enumerate() {
        assert!(
            n >= total / 5,
            "member {member} answered {n} of {total} ranges: {spread:?}"
        );
    }
    eprintln!("30 clients x 40 gets, per member: {spread:?}");

    // Pinned on purpose: every client starts at the first endpoint.
    let before = served(&[0, 0, 0]);
    for _ in 0..10 {
        let client = crate::builder()
            .endpoints(etcd.endpoints())
            .prefer_first(true)
            .connect()
            .await
            .unwrap();
        for _ in 0..10 {
            client.get(&key).await.unwrap();
        }
    }
    let pinned = served(&before);
    assert!(pinned[0] >= 90, "{pinned:?}");
}

/// A serializable read never goes below a revision the client has seen: after its member
/// stops, the client moves to a member cut off from the others (which still believes it has
/// a leader: a long election timeout) and behind; that answer is refused, and the read is
/// asked of the leader, whose answer has the client's own writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serializable_read_skips_a_member_behind_what_the_client_has_seen() {
    let Some(mut etcd) = xtask::testing::start(
        xtask::testing::builder()
            .nodes(3)
            .partitionable()
            .arg("--election-timeout=10000"),
    ) else {
        return;
    };
    let partition = etcd.partition().expect("partitionable");
    let mut leader = etcd.leader();
    for _ in 0..50 {
        if leader.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        leader = etcd.leader();
    }
    let leader = leader.expect("a leader");
    let (first, behind) = ((leader + 1) % 3, (leader + 2) % 3);
    let client = crate::builder()
        .endpoints([
            etcd.endpoint(first),
            etcd.endpoint(behind),
            etcd.endpoint(leader),
        ])
        .prefer_first(true)
        .request_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    let key = format!("{}k", xtask::testing::unique_prefix("floor"));
    client.put(&key, "before").await.unwrap();
    partition.isolate(behind).unwrap();
    let mut seen = 0;
    for i in 0..20 {
        seen = client.put(&key, format!("v{i}")).await.unwrap().revision();
    }
    assert_eq!(client.current_endpoint(), etcd.endpoint(first));
    etcd.stop_node(first).unwrap();

    let read = client.range(&key).serializable().await.unwrap();
    // What the cut-off member answers a client that has seen nothing.
    let stale = etcd_kv::Client::connect(etcd.endpoint(behind))
        .await
        .unwrap()
        .range(&key)
        .serializable()
        .await
        .unwrap()
        .revision();
    partition.heal().unwrap();
    eprintln!(
        "serializable read at {} (seen {seen}; the cut-off member at {stale}) from {}",
        read.revision(),
        client.current_endpoint()
    );
    assert!(stale < seen, "the cut-off member is behind");
    assert!(
        read.revision() >= seen,
        "read backwards: {}",
        read.revision()
    );
    assert_eq!(read.kvs()[0].value(), b"v19");
    assert_eq!(client.current_endpoint(), etcd.endpoint(leader));
}

/// Writes start at the leader once it is found (their answers come from it), reads keep to
/// the client's own member; when the leader dies, writes move on and the new one is found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_start_at_the_leader_and_reads_keep_to_their_member() {
    let Some(mut etcd) = xtask::testing::cluster3() else {
        return;
    };
    let p = xtask::testing::unique_prefix("leader-writes");
    let mut ids = Vec::new();
    for i in 0..3 {
        let status = crate::builder()
            .endpoint(etcd.endpoint(i))
            .connect()
            .await
            .unwrap()
            .status()
            .await
            .unwrap();
        ids.push((status.member_id(), status.is_leader()));
    }
    let leader = ids.iter().position(|&(_, leads)| leads).expect("a leader");
    let follower = (leader + 1) % 3;
    let mut endpoints = vec![etcd.endpoint(follower)];
    endpoints.extend((0..3).filter(|&i| i != follower).map(|i| etcd.endpoint(i)));
    // Pinned to a follower for reads, writes to the leader asked for.
    let client = crate::builder()
        .endpoints(endpoints.clone())
        .prefer_first(true)
        .leader_writes(true)
        .request_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    assert_eq!(client.leader_hint(), None, "not asked before a write");
    let first = client.put(key(&p, "k"), "0").await.unwrap();
    assert_eq!(
        first.header().member_id(),
        ids[follower].0,
        "the first write starts where reads do"
    );
    let leader_url = etcd.endpoint(leader);
    crate::eventually(Duration::from_secs(5), "the leader is found", || async {
        client.leader_hint().as_deref() == Some(leader_url.as_str())
    })
    .await;
    for i in 1..=20 {
        let put = client.put(key(&p, "k"), i.to_string()).await.unwrap();
        assert_eq!(put.header().member_id(), ids[leader].0, "write {i}");
        let got = client.range(key(&p, "k")).await.unwrap();
        assert_eq!(got.header().member_id(), ids[follower].0, "read {i}");
    }
    assert_eq!(client.current_endpoint(), etcd.endpoint(follower));

    // Pinned without asking: every call stays on the first endpoint.
    let pinned = crate::builder()
        .endpoints(endpoints)
        .prefer_first(true)
        .connect()
        .await
        .unwrap();
    for _ in 0..3 {
        let put = pinned.put(key(&p, "pinned"), "v").await.unwrap();
        assert_eq!(put.header().member_id(), ids[follower].0);
    }
    assert_eq!(pinned.leader_hint(), None);

    // The leader dies: writes go on through the others, and the new leader is found.
    // (A write in flight while the others elect a new one may time out, its fate unknown.)
    etcd.kill_node(leader).unwrap();
    crate::eventually(Duration::from_secs(20), "a new leader is found", || async {
        let _ = client.put(key(&p, "k"), "again").await;
        client
            .leader_hint()
            .is_some_and(|url| url != etcd.endpoint(leader))
    })
    .await;
    let new_leader = client.leader_hint().unwrap();
    let put = client.put(key(&p, "k"), "new").await.unwrap();
    let new_id = ids[etcd
        .endpoints()
        .iter()
        .position(|u| *u == new_leader)
        .unwrap()]
    .0;
    assert_eq!(put.header().member_id(), new_id);
    assert_eq!(client.current_endpoint(), etcd.endpoint(follower));
}

/// This process's established connections to `port` as `ss` shows them: for each, its
/// keep-alive timer in seconds (`Some(None)`: none; `None`: another timer shows, such as
/// retransmission with data in flight). `None` when `ss` is not installed. Some versions of
/// `ss` print seconds with an `ms` suffix (`6.996ms` for a timer 7 s from firing), so the
/// suffix is not trusted below a minute.
#[allow(clippy::type_complexity)]
fn keepalive_timers(port: u16) -> Option<Vec<Option<Option<Duration>>>> {
    let out = std::process::Command::new("ss")
        .args(["-tnoHp", "state", "established"])
        .arg(format!("( dport = :{port} )"))
        .output()
        .ok()?;
    let me = format!("pid={},", std::process::id());
    let text = String::from_utf8_lossy(&out.stdout);
    let timer = |line: &str| -> Option<Option<Duration>> {
        if !line.contains("timer:(") {
            return Some(None);
        }
        let timer = line.split("timer:(keepalive,").nth(1)?;
        let value = timer.split(',').next()?;
        let (number, unit) = value.split_at(value.find(|c: char| c.is_alphabetic())?);
        let number: f64 = number.parse().ok()?;
        Some(Some(Duration::from_secs_f64(match unit {
            "min" => number * 60.0,
            _ => number,
        })))
    };
    Some(
        text.lines()
            .filter(|l| l.contains(&me))
            .map(timer)
            .collect(),
    )
}

/// Waits (up to 5 s) until this process's connections to `port` satisfy `ok`, given their
/// keep-alive timers; panics with what `ss` showed last otherwise.
async fn until_connections(
    port: u16,
    what: &str,
    ok: impl Fn(&[Option<Option<Duration>>]) -> bool,
) {
    let mut last = Vec::new();
    for _ in 0..100 {
        last = keepalive_timers(port).unwrap();
        if ok(&last) {
            eprintln!("{what}: {last:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 5 s; the connections' timers: {last:?}");
}

/// Whether some connection's keep-alive timer is in `(low, high]` seconds.
fn some_timer_within(timers: &[Option<Option<Duration>>], low: u64, high: u64) -> bool {
    timers.iter().any(|t| {
        t.flatten()
            .is_some_and(|d| d > Duration::from_secs(low) && d <= Duration::from_secs(high))
    })
}

/// The TCP keep-alive setting reaches the kernel: 30 s by default, 7 s on a client set so,
/// none on a client that turned it off.
#[tokio::test]
async fn tcp_keepalive_reaches_the_connections() {
    let Some((etcd, default_client)) = crate::own_etcd().await else {
        return;
    };
    let port: u16 = etcd
        .endpoint(0)
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    if keepalive_timers(port).is_none() {
        assert!(!xtask::testing::is_ci(), "CI needs `ss` (iproute2)");
        eprintln!("skipped: no `ss` on this machine");
        return;
    }
    default_client.get("k").await.unwrap();
    until_connections(port, "keep-alive by default", |t| {
        some_timer_within(t, 20, 30)
    })
    .await;
    drop(default_client);
    until_connections(port, "closed", <[_]>::is_empty).await;

    let client = crate::builder()
        .endpoint(etcd.endpoint(0))
        .tcp_keepalive(Some(Duration::from_secs(7)))
        .connect()
        .await
        .unwrap();
    client.get("k").await.unwrap();
    until_connections(port, "keep-alive at 7 s", |t| {
        some_timer_within(t, 5, 7) && !some_timer_within(t, 7, 3600)
    })
    .await;
    drop(client);
    until_connections(port, "closed", <[_]>::is_empty).await;

    let off = crate::builder()
        .endpoint(etcd.endpoint(0))
        .tcp_keepalive(None)
        .connect()
        .await
        .unwrap();
    off.get("k").await.unwrap();
    until_connections(port, "keep-alive off", |t| {
        !t.is_empty() && t.iter().all(|t| *t == Some(None))
    })
    .await;
}
