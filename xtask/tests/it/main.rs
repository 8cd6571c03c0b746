//! Tests of the etcd launcher against real etcd servers (skipped without etcd unless `CI` is set).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use xtask::testing::{self, builder, cluster3, shared_etcd, unique_prefix};
use xtask::{find_etcd, Etcd, EtcdBuilder, LaunchError};

mod partition;

/// Whether `pid` is a live process (a zombie counts as dead).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Runs etcdctl, asserts success, returns its stdout.
fn ctl(etcd: &Etcd, args: &[&str]) -> String {
    let output = etcd.etcdctl(args).unwrap();
    assert!(
        output.status.success(),
        "etcdctl {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn single_node_put_get() {
    let Some(etcd) = testing::start(builder()) else {
        return;
    };
    assert_eq!(etcd.node_count(), 1);
    assert_eq!(etcd.endpoints(), vec![etcd.endpoint(0)]);
    assert!(etcd.endpoint(0).starts_with("http://127.0.0.1:"));
    assert!(etcd.pid(0).is_some_and(alive));
    assert!(etcd.is_healthy(0));
    assert!(etcd.data_dir(0).join("member").is_dir());
    assert!(etcd.etcdctl_path().is_file());
    let key = format!("{}k", unique_prefix("single_node_put_get"));
    ctl(&etcd, &["put", &key, "v1"]);
    let got = ctl(&etcd, &["get", &key, "--print-value-only"]);
    assert_eq!(got.trim(), "v1");
}

#[test]
fn three_node_cluster_is_healthy() {
    let Some(etcd) = cluster3() else {
        return;
    };
    assert_eq!(etcd.endpoints().len(), 3);
    for i in 0..3 {
        assert!(etcd.is_healthy(i), "node {i} unhealthy");
    }
    let members = ctl(&etcd, &["member", "list"]);
    assert_eq!(members.lines().count(), 3, "{members}");
    let health = etcd.etcdctl(["endpoint", "health"]).unwrap();
    let text = String::from_utf8_lossy(&health.stdout).to_string()
        + &String::from_utf8_lossy(&health.stderr);
    assert!(health.status.success(), "{text}");
    assert_eq!(text.matches("is healthy").count(), 3, "{text}");
}

#[test]
fn kill_and_restart_a_node() {
    let Some(mut etcd) = cluster3() else {
        return;
    };
    let key = format!("{}k", unique_prefix("kill_and_restart"));
    ctl(&etcd, &["put", &key, "before"]);

    let old_pid = etcd.pid(0).unwrap();
    etcd.kill_node(0).unwrap();
    assert_eq!(etcd.pid(0), None);
    assert!(!alive(old_pid));
    assert!(!etcd.is_healthy(0));
    assert!(etcd.data_dir(0).is_dir(), "kill must keep the data dir");
    // Two of three nodes keep quorum, once they noticed (election timeout 500 ms) and elected
    // a new leader: a request forwarded to the dead leader would hang until it times out.
    thread::sleep(Duration::from_millis(1000));
    etcd.wait_healthy(1).unwrap();
    etcd.wait_healthy(2).unwrap();
    ctl(&etcd, &["put", &key, "during"]);

    etcd.restart_node(0).unwrap();
    let new_pid = etcd.pid(0).unwrap();
    assert_ne!(new_pid, old_pid);
    assert!(etcd.is_healthy(0));
    // The restarted node alone (an --endpoints of ours replaces the launcher's) has caught up.
    let only0 = format!("--endpoints={}", etcd.endpoint(0));
    let got = ctl(&etcd, &[only0.as_str(), "get", &key, "--print-value-only"]);
    assert_eq!(got.trim(), "during");

    // A graceful stop, then a restart of a running node.
    etcd.stop_node(1).unwrap();
    assert_eq!(etcd.pid(1), None);
    etcd.start_node(1).unwrap();
    etcd.wait_healthy(1).unwrap();
    etcd.restart_node(2).unwrap();
    for i in 0..3 {
        assert!(etcd.is_healthy(i), "node {i} unhealthy");
    }
    let log = etcd.log_tail(0, 1000);
    assert_eq!(log.matches("=== xtask: starting etcd").count(), 2, "{log}");
}

#[test]
fn single_node_keeps_data_across_restart() {
    let Some(mut etcd) = testing::start(builder()) else {
        return;
    };
    let key = format!("{}k", unique_prefix("restart_single"));
    ctl(&etcd, &["put", &key, "kept"]);
    etcd.kill_node(0).unwrap();
    etcd.restart_node(0).unwrap();
    let got = ctl(&etcd, &["get", &key, "--print-value-only"]);
    assert_eq!(got.trim(), "kept");
}

#[test]
fn drop_leaves_no_process_and_no_data() {
    let Some(etcd) = testing::start(builder().nodes(3)) else {
        return;
    };
    let pids: Vec<u32> = (0..3).map(|i| etcd.pid(i).unwrap()).collect();
    let base = etcd.base_dir().to_path_buf();
    assert!(base.is_dir());
    drop(etcd);
    for pid in pids {
        assert!(!alive(pid), "etcd {pid} survived drop");
    }
    assert!(!base.exists(), "{} survived drop", base.display());
}

#[test]
fn extra_args_reach_etcd_and_failures_show_the_log() {
    let Some(etcd) = testing::start(builder().arg("--max-txn-ops=7")) else {
        return;
    };
    drop(etcd);
    let err = builder()
        .arg("--no-such-flag-for-xtask")
        .startup_timeout(Duration::from_secs(10))
        .start()
        .unwrap_err();
    match &err {
        LaunchError::Startup { node, log_tail, .. } => {
            assert_eq!(*node, 0);
            assert!(log_tail.contains("no-such-flag-for-xtask"), "{log_tail}");
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains("no-such-flag-for-xtask"));
}

#[test]
fn shared_etcd_is_started_once() {
    let Some(a) = shared_etcd() else {
        return;
    };
    let b = shared_etcd().unwrap();
    assert!(std::ptr::eq(a, b));
    let key = format!("{}k", unique_prefix("shared"));
    ctl(a, &["put", &key, "x"]);
}

#[test]
fn every_installed_version_starts() {
    for wanted in ["3.4", "3.5"] {
        let Ok(bin) = find_etcd(wanted) else {
            eprintln!("etcd {wanted} not installed, not tested");
            continue;
        };
        let etcd = EtcdBuilder::new()
            .binary(bin.path())
            .version(wanted)
            .start()
            .unwrap();
        assert!(etcd.version().starts_with(wanted));
        let key = format!("{}k", unique_prefix("versions"));
        ctl(&etcd, &["put", &key, wanted]);
    }
}

#[test]
fn a_wrong_binary_version_is_refused() {
    let Ok(bin) = find_etcd("any") else {
        return;
    };
    let err = EtcdBuilder::new()
        .binary(bin.path())
        .version("2.0")
        .start()
        .unwrap_err();
    assert!(matches!(err, LaunchError::InvalidConfig(_)), "{err}");
    let err = EtcdBuilder::new().nodes(0).start().unwrap_err();
    assert!(matches!(err, LaunchError::InvalidConfig(_)), "{err}");
}

// ---- the watchdog: no etcd outlives the process that started it ----

const CHILD_ENV: &str = "XTASK_WATCHDOG_CHILD";

/// Not a test on its own: the body of the child process of the two tests below.
#[test]
fn watchdog_child() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let etcd = builder().nodes(2).start().unwrap();
    let pids: Vec<String> = (0..2).map(|i| etcd.pid(i).unwrap().to_string()).collect();
    // Straight to stdout: the harness would capture println!.
    use std::io::Write;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "CHILD {} {}",
        etcd.base_dir().display(),
        pids.join(" ")
    )
    .unwrap();
    out.flush().unwrap();
    match mode.as_str() {
        // Like a test binary ending with a live `static`: no destructor runs.
        "exit" => std::process::exit(0),
        // Wait to be killed with SIGKILL (and give up after a minute, should the parent fail).
        _ => {
            thread::sleep(Duration::from_secs(60));
            std::process::exit(1)
        }
    }
}

fn run_child(mode: &str) -> Option<(std::process::Child, PathBuf, Vec<u32>)> {
    if find_etcd(&testing::test_version()).is_err() {
        return None;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "watchdog_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
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
    let mut parts = line.split_whitespace();
    let base = PathBuf::from(parts.next().unwrap());
    let pids = parts.map(|p| p.parse().unwrap()).collect();
    Some((child, base, pids))
}

fn assert_cleaned_up(base: &Path, pids: &[u32]) {
    assert_eq!(pids.len(), 2);
    for &pid in pids {
        wait_until(
            &format!("etcd {pid} to die"),
            Duration::from_secs(5),
            || !alive(pid),
        );
    }
    wait_until(
        &format!("{} to be removed", base.display()),
        Duration::from_secs(5),
        || !base.exists(),
    );
}

#[test]
fn watchdog_kills_etcd_when_the_owner_exits_without_drop() {
    let Some((mut child, base, pids)) = run_child("exit") else {
        return;
    };
    assert!(child.wait().unwrap().success());
    assert_cleaned_up(&base, &pids);
}

#[test]
fn watchdog_kills_etcd_when_the_owner_is_killed() {
    let Some((mut child, base, pids)) = run_child("sleep") else {
        return;
    };
    assert!(pids.iter().all(|&p| alive(p)));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_cleaned_up(&base, &pids);
}
