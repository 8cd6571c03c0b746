//! Network partitions between the members of a real 3-member cluster ([`xtask::Partition`]).
//!
//! They need root (or `sudo -n`), `nft` and cgroup2: without them they skip with a notice,
//! unless `CI` is set. Each test prints how long etcd took to react (`--nocapture` shows it).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use xtask::testing::{self, partitionable_cluster3, unique_prefix};
use xtask::{Etcd, LaunchError, NodeStatus};

use super::alive;

/// Waits until `done` returns `Some`, up to `timeout`; returns it and how long it took.
fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> Option<T>,
) -> (T, Duration) {
    let start = Instant::now();
    loop {
        if let Some(value) = done() {
            return (value, start.elapsed());
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn timing(test: &str, what: &str, took: Duration) {
    // Straight to stderr, so that `--nocapture` runs show it between the harness's lines.
    let _ = writeln!(
        std::io::stderr(),
        "partition timing [{test}]: {what}: {} ms",
        took.as_millis()
    );
}

fn statuses(etcd: &Etcd, nodes: &[usize]) -> Option<Vec<NodeStatus>> {
    nodes.iter().map(|&i| etcd.status(i).ok()).collect()
}

/// The member id every node of `nodes` follows, if they all follow the same one.
fn agreed_leader(etcd: &Etcd, nodes: &[usize]) -> Option<u64> {
    let all = statuses(etcd, nodes)?;
    let leader = all.first()?.leader?;
    all.iter()
        .all(|s| s.leader == Some(leader))
        .then_some(leader)
}

fn member_ids(etcd: &Etcd) -> Vec<u64> {
    (0..3).map(|i| etcd.status(i).unwrap().member_id).collect()
}

/// Waits until all three members follow one leader; returns its index.
fn settled_leader(etcd: &Etcd) -> usize {
    let ids = member_ids(etcd);
    let (id, _) = wait_for("one leader", Duration::from_secs(10), || {
        agreed_leader(etcd, &[0, 1, 2])
    });
    ids.iter().position(|&m| m == id).unwrap()
}

/// `etcdctl put` through node `i` only, giving up after `timeout`.
fn put_via(etcd: &Etcd, i: usize, key: &str, value: &str, timeout: &str) -> Result<(), String> {
    let endpoint = format!("--endpoints={}", etcd.endpoint(i));
    let deadline = format!("--command-timeout={timeout}");
    let out = etcd
        .etcdctl([endpoint.as_str(), deadline.as_str(), "put", key, value])
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn get_via(etcd: &Etcd, i: usize, key: &str) -> String {
    let endpoint = format!("--endpoints={}", etcd.endpoint(i));
    let out = etcd
        .etcdctl([endpoint.as_str(), "get", key, "--print-value-only"])
        .unwrap();
    assert!(
        out.status.success(),
        "get {key} via node {i}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every member answers the test process (client traffic is never dropped): the gateway's
/// status, and etcdctl's `endpoint status` (gRPC) one endpoint at a time.
fn assert_clients_reach_every_member(etcd: &Etcd) {
    for i in 0..3 {
        etcd.status(i)
            .unwrap_or_else(|e| panic!("status of node {i}: {e}"));
        let endpoint = format!("--endpoints={}", etcd.endpoint(i));
        let out = etcd
            .etcdctl([endpoint.as_str(), "endpoint", "status", "--write-out=json"])
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        // JSON leaves zero values out: no `leader` field when there is none.
        assert!(
            out.status.success() && stdout.contains("\"raftTerm\""),
            "etcdctl endpoint status via node {i}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `nft args...`, through `sudo -n` when not root.
fn nft(args: &[&str]) -> String {
    let direct = Command::new("nft").args(args).output();
    let out = match direct {
        Ok(out) if out.status.success() => out,
        _ => Command::new("sudo")
            .arg("-n")
            .arg("nft")
            .args(args)
            .output()
            .unwrap(),
    };
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn has_table(name: &str) -> bool {
    nft(&["list", "tables"])
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some(name))
}

/// The cgroup (v2) path of `pid`, relative to the cgroup2 root.
fn cgroup_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .unwrap()
}

#[test]
fn isolating_the_leader_elects_another_and_heal_reunites() {
    let test = "isolate leader";
    let Some(etcd) = partitionable_cluster3() else {
        return;
    };
    let net = etcd.partition().unwrap();
    let ids = member_ids(&etcd);
    let old = settled_leader(&etcd);
    assert_eq!(etcd.leader(), Some(old));
    let old_term = etcd.status(old).unwrap().raft_term;
    let others: Vec<usize> = (0..3).filter(|&i| i != old).collect();

    let isolated = Instant::now();
    net.isolate(old).unwrap();
    assert_eq!(net.blocked().len(), 4);
    let (new_id, took) = wait_for(
        "the two others to elect a new leader",
        Duration::from_secs(10),
        || agreed_leader(&etcd, &others).filter(|&id| id != ids[old]),
    );
    timing(test, "new leader among the two others", took);
    let new = ids.iter().position(|&m| m == new_id).unwrap();
    assert!(others.contains(&new));
    assert!(etcd.status(new).unwrap().raft_term > old_term);
    wait_for(
        "the isolated old leader to step down",
        Duration::from_secs(10),
        || etcd.status(old).unwrap().leader.is_none().then_some(()),
    );
    timing(
        test,
        "isolated old leader has no leader (since the isolation)",
        isolated.elapsed(),
    );
    assert_eq!(etcd.leader(), Some(new));
    assert_clients_reach_every_member(&etcd);

    let key = format!("{}k", unique_prefix("partition_isolate"));
    put_via(&etcd, others[0], &key, "during", "5s").unwrap();
    put_via(&etcd, old, &key, "lost", "1s").expect_err("a write through the isolated member");
    // Still no leader there after a second of trying.
    assert_eq!(etcd.status(old).unwrap().leader, None);

    net.heal().unwrap();
    assert!(net.blocked().is_empty());
    let (_, took) = wait_for(
        "all three to follow one leader",
        Duration::from_secs(20),
        || agreed_leader(&etcd, &[0, 1, 2]),
    );
    timing(test, "heal: all three follow one leader", took);
    let (_, took) = wait_for(
        "a write through the formerly isolated member",
        Duration::from_secs(20),
        || put_via(&etcd, old, &key, "after", "2s").ok(),
    );
    timing(
        test,
        "heal: first write through the formerly isolated member",
        took,
    );
    for i in 0..3 {
        assert_eq!(get_via(&etcd, i, &key), "after", "node {i}");
    }
}

#[test]
fn blocking_the_leader_to_a_follower_starves_that_follower() {
    let test = "one way";
    let Some(etcd) = partitionable_cluster3() else {
        return;
    };
    let net = etcd.partition().unwrap();
    let ids = member_ids(&etcd);
    let leader = settled_leader(&etcd);
    let term = etcd.status(leader).unwrap().raft_term;
    let starved = (leader + 1) % 3;
    let other = (leader + 2) % 3;

    net.block(leader, starved).unwrap();
    assert_eq!(net.blocked(), vec![(leader, starved)]);
    assert!(!net.can_send(leader, starved) && net.can_send(starved, leader));
    let (_, took) = wait_for(
        "the follower to lose its leader",
        Duration::from_secs(10),
        || etcd.status(starved).unwrap().leader.is_none().then_some(()),
    );
    timing(
        test,
        "follower cut off from the leader's messages has no leader",
        took,
    );
    // The follower's campaigns (3.4) or pre-votes (3.5) do not unseat a leader that the
    // other follower still hears: for a while, neither the leader nor the term change.
    let key = format!("{}k", unique_prefix("partition_one_way"));
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert_eq!(agreed_leader(&etcd, &[leader, other]), Some(ids[leader]));
        assert_eq!(etcd.status(other).unwrap().raft_term, term);
        assert_eq!(etcd.status(starved).unwrap().leader, None);
        thread::sleep(Duration::from_millis(100));
    }
    if let Err(e) = put_via(&etcd, leader, &key, "v", "5s") {
        panic!(
            "put via the leader: {e}\n{}",
            nft(&["list", "table", "inet", net.table()])
        );
    }
    assert_eq!(get_via(&etcd, other, &key), "v");
    assert_clients_reach_every_member(&etcd);

    net.heal().unwrap();
    let (_, took) = wait_for(
        "all three to follow one leader",
        Duration::from_secs(20),
        || agreed_leader(&etcd, &[0, 1, 2]),
    );
    timing(test, "heal: all three follow one leader", took);
    wait_for(
        "the starved follower to catch up",
        Duration::from_secs(10),
        || (get_via(&etcd, starved, &key) == "v").then_some(()),
    );
}

#[test]
fn a_bridge_keeps_a_leader_and_writes_succeed() {
    let test = "bridge";
    let Some(etcd) = partitionable_cluster3() else {
        return;
    };
    let net = etcd.partition().unwrap();
    let ids = member_ids(&etcd);
    let leader = settled_leader(&etcd);
    let key = format!("{}k", unique_prefix("partition_bridge"));

    // The bridge is the leader: followers need not talk to each other.
    net.bridge(leader).unwrap();
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    assert_eq!(
        net.blocked(),
        vec![(followers[0], followers[1]), (followers[1], followers[0])]
    );
    let term = etcd.status(leader).unwrap().raft_term;
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert_eq!(agreed_leader(&etcd, &[0, 1, 2]), Some(ids[leader]));
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(etcd.status(leader).unwrap().raft_term, term);
    for i in 0..3 {
        put_via(&etcd, i, &key, &format!("via {i}"), "5s").unwrap();
    }

    // The bridge is a follower: the leader and the other follower are cut apart.
    let bridge = followers[0];
    let far = followers[1];
    net.set(&[]).unwrap();
    net.bridge(bridge).unwrap();
    assert!(!net.can_send(leader, far) && !net.can_send(far, leader));
    assert!(net.can_send(leader, bridge) && net.can_send(bridge, far));
    let (_, took) = wait_for(
        "the far follower to lose its leader",
        Duration::from_secs(10),
        || etcd.status(far).unwrap().leader.is_none().then_some(()),
    );
    timing(
        test,
        "follower cut from the leader (bridge elsewhere) has no leader",
        took,
    );
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert_eq!(agreed_leader(&etcd, &[leader, bridge]), Some(ids[leader]));
        thread::sleep(Duration::from_millis(100));
    }
    put_via(&etcd, leader, &key, "leader", "5s").unwrap();
    put_via(&etcd, bridge, &key, "bridge", "5s").unwrap();
    assert_clients_reach_every_member(&etcd);

    net.heal().unwrap();
    let (_, took) = wait_for(
        "all three to follow one leader",
        Duration::from_secs(20),
        || agreed_leader(&etcd, &[0, 1, 2]),
    );
    timing(test, "heal: all three follow one leader", took);
    wait_for(
        "the far follower to catch up",
        Duration::from_secs(10),
        || (get_via(&etcd, far, &key) == "bridge").then_some(()),
    );
}

#[test]
fn a_restarted_member_goes_back_into_its_cgroup() {
    let Some(mut etcd) = partitionable_cluster3() else {
        return;
    };
    let net = etcd.partition().unwrap();
    let name = net.table().to_string();
    for i in 0..3 {
        let cgroup = cgroup_of(etcd.pid(i).unwrap());
        assert!(cgroup.ends_with(&format!("/{name}/node{i}")), "{cgroup}");
    }
    assert!(net.cgroup_dir().join("node0").is_dir());

    net.isolate(0).unwrap();
    etcd.kill_node(0).unwrap();
    etcd.start_node(0).unwrap();
    let pid = etcd.pid(0).unwrap();
    // The wrapper joins the cgroup, then becomes etcd.
    wait_for("the wrapper to exec etcd", Duration::from_secs(5), || {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "etcd").then_some(())
    });
    let cgroup = cgroup_of(pid);
    assert!(cgroup.ends_with(&format!("/{name}/node0")), "{cgroup}");
    // Isolated from its first packet: etcd serves clients only once it has published itself
    // through raft, which needs the others.
    thread::sleep(Duration::from_millis(1500));
    assert!(etcd.status(0).is_err(), "the isolated member got ready");
    assert!(agreed_leader(&etcd, &[1, 2]).is_some());

    net.heal().unwrap();
    let start = Instant::now();
    etcd.wait_healthy(0).unwrap();
    timing(
        "restart",
        "heal: the restarted member is healthy",
        start.elapsed(),
    );
    wait_for(
        "all three to follow one leader",
        Duration::from_secs(20),
        || agreed_leader(&etcd, &[0, 1, 2]),
    );
}

#[test]
fn the_partition_api_and_dropping_the_cluster() {
    let Some(etcd) = partitionable_cluster3() else {
        return;
    };
    let net = etcd.partition().unwrap();
    let name = net.table().to_string();
    let dir = net.cgroup_dir().to_path_buf();
    assert!(
        name.contains("xtask") && name.contains("partition"),
        "{name}"
    );
    assert!(has_table(&name));
    assert!(dir.is_dir());

    net.block(0, 1).unwrap();
    assert_eq!(net.blocked(), vec![(0, 1)]);
    assert!(!net.can_send(0, 1) && net.can_send(1, 0) && net.can_send(0, 0));
    let faults = nft(&["list", "chain", "inet", &name, "faults"]);
    assert_eq!(faults.matches("drop").count(), 2, "{faults}");
    net.cut(1, 2).unwrap();
    assert_eq!(net.blocked(), vec![(0, 1), (1, 2), (2, 1)]);
    net.unblock(0, 1).unwrap();
    assert_eq!(net.blocked(), vec![(1, 2), (2, 1)]);
    // A clone is the same partition.
    let clone = net.clone();
    clone.set(&[(2, 0)]).unwrap();
    assert_eq!(net.blocked(), vec![(2, 0)]);
    net.split(&[&[0], &[1, 2]]).unwrap();
    assert_eq!(net.blocked(), vec![(0, 1), (0, 2), (1, 0), (2, 0)]);
    let faults = nft(&["list", "chain", "inet", &name, "faults"]);
    assert_eq!(faults.matches("drop").count(), 8, "{faults}");

    for bad in [
        net.block(0, 0),
        net.block(0, 3),
        net.isolate(3),
        net.split(&[&[0], &[0, 1]]),
        net.set(&[(1, 1)]),
    ] {
        assert!(matches!(bad, Err(LaunchError::InvalidConfig(_))), "{bad:?}");
    }
    assert_eq!(net.blocked().len(), 4, "a refused change changes nothing");
    net.heal().unwrap();
    assert!(net.blocked().is_empty());
    let faults = nft(&["list", "chain", "inet", &name, "faults"]);
    assert!(!faults.contains("drop"), "{faults}");

    net.isolate(2).unwrap();
    drop(etcd);
    assert!(!has_table(&name), "{name} survived the drop");
    assert!(!dir.exists(), "{} survived the drop", dir.display());
    assert!(matches!(net.heal(), Err(LaunchError::InvalidConfig(_))));

    // A cluster that was not asked to be partitionable has no partition.
    let Some(plain) = testing::start(testing::builder()) else {
        return;
    };
    assert!(plain.partition().is_none());
}

// ---- the watchdog removes the table and cgroups when the owner dies ----

const CHILD_ENV: &str = "XTASK_PARTITION_CHILD";

/// Not a test on its own: the body of the child process of the tests below.
#[test]
fn partition_child() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut out = std::io::stdout();
    if mode == "support" {
        // Only look: the first call removes what dead owners left.
        xtask::partition_support().unwrap();
        writeln!(out, "CHILD done").unwrap();
        out.flush().unwrap();
        return;
    }
    let etcd = testing::builder().nodes(2).partitionable().start().unwrap();
    let net = etcd.partition().unwrap();
    net.cut(0, 1).unwrap();
    let pids: Vec<String> = (0..2).map(|i| etcd.pid(i).unwrap().to_string()).collect();
    // Straight to stdout: the harness would capture println!.
    writeln!(
        out,
        "CHILD {} {} {}",
        net.table(),
        net.cgroup_dir().display(),
        pids.join(" ")
    )
    .unwrap();
    out.flush().unwrap();
    if mode == "exit" {
        // Once the parent has looked: like a test binary ending with a live `static`, no
        // destructor runs.
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        std::process::exit(0);
    }
    // Wait to be killed with SIGKILL (and give up after a minute, should the parent fail).
    thread::sleep(Duration::from_secs(60));
    std::process::exit(1)
}

/// Runs `partition_child` in `mode`; returns it and the words of its `CHILD` line.
fn run_child(mode: &str) -> (std::process::Child, Vec<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "partition::partition_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split_once("CHILD ").map(|(_, rest)| rest.to_string()));
    let Some(line) = line else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the child printed no CHILD line");
    };
    (child, line.split_whitespace().map(str::to_string).collect())
}

#[test]
fn the_watchdog_removes_table_and_cgroups_when_the_owner_is_killed() {
    owner_dies("sigkill");
}

#[test]
fn the_watchdog_removes_table_and_cgroups_when_the_owner_exits_without_drop() {
    owner_dies("exit");
}

/// Starts a child owning a partitioned 2-member cluster, lets it die (`sigkill`: killed by
/// the test; `exit`: exits without destructors), and checks the watchdogs clean up.
fn owner_dies(mode: &str) {
    if xtask::find_etcd(&testing::test_version()).is_err() || !testing::partitions_available() {
        return;
    }
    let (mut child, words) = run_child(mode);
    let [table, dir, pids @ ..] = words.as_slice() else {
        panic!("bad CHILD line: {words:?}");
    };
    let dir = PathBuf::from(dir);
    let pids: Vec<u32> = pids.iter().map(|p| p.parse().unwrap()).collect();
    assert!(has_table(table));
    assert!(dir.is_dir());
    assert_eq!(pids.len(), 2);
    if mode == "sigkill" {
        child.kill().unwrap();
    } else {
        writeln!(child.stdin.as_mut().unwrap(), "exit").unwrap();
    }
    child.wait().unwrap();
    let (_, took) = wait_for("the table to go", Duration::from_secs(5), || {
        (!has_table(table)).then_some(())
    });
    timing(mode, "table deleted after the owner died", took);
    for pid in pids {
        wait_for("etcd to die", Duration::from_secs(5), || {
            (!alive(pid)).then_some(())
        });
    }
    let (_, took) = wait_for("the cgroups to go", Duration::from_secs(5), || {
        (!dir.exists()).then_some(())
    });
    timing(mode, "then the cgroups removed", took);
}

#[test]
fn leftovers_of_dead_owners_are_removed() {
    if !testing::partitions_available() {
        return;
    }
    // A name whose owner cannot exist: above the largest pid Linux hands out.
    let name = format!("xtask_partition_4194304_1_{}", std::process::id());
    nft(&["add", "table", "inet", &name]);
    let dir = cgroup2_root().join(&name);
    make_dir(&dir);
    make_dir(&dir.join("node0"));
    let (mut child, words) = run_child("support");
    assert_eq!(words, ["done"]);
    child.wait().unwrap();
    assert!(!has_table(&name), "stale table {name} survived");
    assert!(!dir.exists(), "stale cgroup {} survived", dir.display());
}

fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let mut found: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .collect();
    found.sort_by_key(|p| !p.starts_with("/sys/fs/cgroup"));
    found.into_iter().next().unwrap()
}

/// mkdir, through `sudo -n` when not root.
fn make_dir(dir: &Path) {
    if std::fs::create_dir(dir).is_err() {
        let status = Command::new("sudo")
            .arg("-n")
            .arg("mkdir")
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mkdir {}", dir.display());
    }
}
