//! Integration tests: the built `etcd-export` and `etcd-import` binaries against real etcd
//! servers, with keys written and compared by `etcdctl`.

mod cli;
mod export;
mod import;
mod matrix;
mod memory;
mod roundtrip;
mod safety;
mod txaioetcd;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use xtask::Etcd;

pub const EXPORT: &str = env!("CARGO_BIN_EXE_etcd-export");
pub const IMPORT: &str = env!("CARGO_BIN_EXE_etcd-import");

/// A key-value as raw bytes.
pub type Kv = (Vec<u8>, Vec<u8>);

/// What a tool run produced.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Ran {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Asserts success and returns self.
    #[track_caller]
    pub fn ok(self) -> Ran {
        assert_eq!(self.code, 0, "failed: {}", self.stderr);
        self
    }

    /// Asserts exit code `code` with one line on stderr containing `needle`.
    #[track_caller]
    pub fn fails(self, code: i32, needle: &str) -> Ran {
        assert_eq!(self.code, code, "stderr: {}", self.stderr);
        assert!(
            self.stderr.contains(needle),
            "{needle:?} not in {:?}",
            self.stderr
        );
        self
    }
}

fn output(out: Output) -> Ran {
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Whether this run's tools speak native gRPC (`ETCD_TEST_TRANSPORT=grpc`).
pub fn grpc() -> bool {
    xtask::testing::grpc_transport()
}

/// A command running a tool over the protocol of the run.
pub fn command(bin: &str) -> Command {
    let mut cmd = Command::new(bin);
    if grpc() {
        // The tools speak the protocol of the run.
        #[cfg(not(feature = "grpc"))]
        panic!("ETCD_TEST_TRANSPORT=grpc needs the suite built with --features grpc");
        #[cfg(feature = "grpc")]
        cmd.env("ETCD_TOOLS_GRPC", "1");
    } else {
        cmd.env_remove("ETCD_TOOLS_GRPC");
    }
    cmd
}

/// Runs a tool with arguments and optional stdin.
pub fn run<I, S>(bin: &str, args: I, stdin: Option<&[u8]>) -> Ran
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = command(bin);
    cmd.args(args)
        .env_remove("ETCD_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().expect("spawn tool");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    output(child.wait_with_output().expect("wait tool"))
}

/// Runs `etcd-export -a <etcd> args...`.
pub fn export<S: AsRef<OsStr>>(etcd: &Etcd, args: &[S]) -> Ran {
    run(EXPORT, with_address(etcd, args), None)
}

/// Runs `etcd-import -a <etcd> args...`.
pub fn import<S: AsRef<OsStr>>(etcd: &Etcd, args: &[S]) -> Ran {
    run(IMPORT, with_address(etcd, args), None)
}

pub fn with_address<S: AsRef<OsStr>>(etcd: &Etcd, args: &[S]) -> Vec<OsString> {
    let mut all: Vec<OsString> = vec!["-a".into(), etcd.endpoints().join(",").into()];
    all.extend(args.iter().map(|a| a.as_ref().to_os_string()));
    all
}

/// An argument from raw bytes.
pub fn os(bytes: &[u8]) -> OsString {
    OsStr::from_bytes(bytes).to_os_string()
}

/// Go's `%q` syntax for etcdctl's txn input: any bytes.
fn go_quote(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

/// Writes key-values with `etcdctl txn`, 128 puts per transaction.
pub fn etcdctl_put_all(etcd: &Etcd, kvs: &[Kv]) {
    for chunk in kvs.chunks(128) {
        let mut script = String::from("\n");
        for (k, v) in chunk {
            assert!(
                !v.starts_with(b"-"),
                "etcdctl would take the value for a flag"
            );
            script.push_str(&format!("put {} {}\n", go_quote(k), go_quote(v)));
        }
        script.push_str("\n\n");
        let mut child = Command::new(etcd.etcdctl_path())
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", etcd.endpoints().join(",")))
            .arg("txn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("etcdctl txn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write txn");
        let out = child.wait_with_output().expect("etcdctl txn");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.starts_with("SUCCESS"),
            "etcdctl txn: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs etcdctl, asserting success; returns stdout.
pub fn etcdctl<S: AsRef<OsStr>>(etcd: &Etcd, args: &[S]) -> Vec<u8> {
    let out = etcd.etcdctl(args).expect("etcdctl");
    assert!(
        out.status.success(),
        "etcdctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `etcdctl get <prefix> --prefix -w json [extra...]`, decoded: the header revision and
/// each key-value's JSON object.
pub fn get_json(etcd: &Etcd, prefix: &[u8], extra: &[&str]) -> (i64, Vec<serde_json::Value>) {
    let mut args = vec![
        os(b"get"),
        os(prefix),
        "--prefix".into(),
        "-w".into(),
        "json".into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    let out = etcdctl(etcd, &args);
    let v: serde_json::Value = serde_json::from_slice(&out).expect("etcdctl json");
    let revision = v["header"]["revision"].as_i64().expect("revision");
    let kvs = v["kvs"].as_array().cloned().unwrap_or_default();
    (revision, kvs)
}

/// The keys and values under `prefix` (`b""`: all), as `etcdctl get -w json` reports them.
pub fn keyspace(etcd: &Etcd, prefix: &[u8]) -> Vec<Kv> {
    get_json(etcd, prefix, &[])
        .1
        .iter()
        .map(|kv| {
            let field = |name: &str| {
                B64.decode(kv[name].as_str().unwrap_or(""))
                    .expect("etcdctl base64")
            };
            (field("key"), field("value"))
        })
        .collect()
}

/// Key-values with their mod revisions, to prove nothing was written.
pub fn keyspace_with_revisions(etcd: &Etcd, prefix: &[u8]) -> Vec<(String, String, i64)> {
    get_json(etcd, prefix, &[])
        .1
        .iter()
        .map(|kv| {
            (
                kv["key"].as_str().unwrap_or("").to_string(),
                kv["value"].as_str().unwrap_or("").to_string(),
                kv["mod_revision"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// The revision in a line like `... at revision 42 ...`.
pub fn revision_in(text: &str) -> i64 {
    let rest = text
        .split("at revision ")
        .nth(1)
        .unwrap_or_else(|| panic!("no revision in {text:?}"));
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {text:?}"))
}

/// Prefixes `key` bytes with a test prefix.
pub fn under(prefix: &str, key: &[u8]) -> Vec<u8> {
    let mut k = prefix.as_bytes().to_vec();
    k.extend_from_slice(key);
    k
}

/// A temporary directory for dump files.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// A path argument.
pub fn p(path: &Path) -> OsString {
    path.as_os_str().to_os_string()
}

/// A fresh single-node server of the test version, or `None` (skip) without etcd.
pub fn fresh_etcd() -> Option<Etcd> {
    xtask::testing::start(xtask::testing::builder())
}
