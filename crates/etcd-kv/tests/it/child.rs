//! Child processes for crash tests: this test binary, re-executed to run only
//! [`entry`], takes a lock or campaigns, says so on stdout, then sleeps until killed.

use etcd_kv::Election;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const MODE: &str = "ETCD_KV_TEST_CHILD";
const ENDPOINT: &str = "ETCD_KV_TEST_CHILD_ENDPOINT";
const NAME: &str = "ETCD_KV_TEST_CHILD_NAME";
const VALUE: &str = "ETCD_KV_TEST_CHILD_VALUE";

/// The TTL of the child's session, in seconds.
pub const CHILD_TTL: u64 = 2;

/// The child's body; in a normal test run (no `ETCD_KV_TEST_CHILD`) it does nothing.
#[tokio::test]
async fn entry() {
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} unset"));
    let client = crate::builder()
        .endpoint(var(ENDPOINT))
        .connect()
        .await
        .expect("child connects");
    let name = var(NAME);
    let ttl = CHILD_TTL as i64;
    // Held until the parent kills us; a parent that died first leaves us 30 s at most.
    let held: Box<dyn std::any::Any + Send> = match mode.as_str() {
        "lock" => {
            let guard = client.lock(&name).ttl(ttl).await.expect("child locks");
            println!("HOLDING {}", String::from_utf8_lossy(guard.key()));
            Box::new(guard)
        }
        "elect" => {
            let leadership = Election::new(&client, &name)
                .campaign(var(VALUE))
                .ttl(ttl)
                .await
                .expect("child campaigns");
            println!("LEADING {}", String::from_utf8_lossy(leadership.key()));
            Box::new(leadership)
        }
        other => panic!("unknown child mode {other}"),
    };
    tokio::time::sleep(Duration::from_secs(30)).await;
    drop(held);
}

/// A child process holding a lock or leading an election.
pub struct Child {
    process: tokio::process::Child,
    /// The key it holds.
    pub key: String,
}

impl Child {
    /// Kills the child with SIGKILL (no cleanup of any kind) and reaps it.
    pub async fn kill(mut self) {
        self.process.kill().await.expect("kill the child");
    }
}

/// Starts a child that takes lock `name` (`mode` "lock") or campaigns in election `name`
/// with `value` (`mode` "elect"), each with a session of [`CHILD_TTL`], and returns once it
/// holds the lock or leads.
pub async fn spawn(mode: &str, endpoint: &str, name: &str, value: &str) -> Child {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut process = tokio::process::Command::new(exe)
        .args(["child::entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(MODE, mode)
        .env(ENDPOINT, endpoint)
        .env(NAME, name)
        .env(VALUE, value)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the child");
    let stdout = process.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = async {
        while let Some(line) = lines.next_line().await.expect("read the child") {
            // The harness may print "test child::entry ... " before our line.
            for tag in ["HOLDING ", "LEADING "] {
                if let Some(at) = line.find(tag) {
                    return line[at + tag.len()..].to_string();
                }
            }
        }
        panic!("the child ended before holding {name}");
    };
    let key = tokio::time::timeout(Duration::from_secs(20), ready)
        .await
        .expect("the child holds within 20 s");
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Child { process, key }
}
