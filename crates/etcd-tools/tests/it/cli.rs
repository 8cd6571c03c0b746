//! Exit codes, messages, endpoints, auth and TLS.

use crate::*;
use std::path::PathBuf;
use std::process::Child;
use xtask::testing::{shared_etcd, unique_prefix};

#[test]
fn usage_errors_exit_with_2() {
    let cases: [(&str, &[&str]); 8] = [
        (EXPORT, &["--bogus"]),
        (EXPORT, &["-k", "text"]),
        (EXPORT, &["-f", "xml"]),
        (EXPORT, &["--with-metadata"]),
        (EXPORT, &["--cert", "c.pem"]),
        (EXPORT, &["--revision", "0"]),
        (IMPORT, &[]),
        (
            IMPORT,
            &["--unchanged-since", "5", "--max-txn-ops", "1", "f"],
        ),
    ];
    for (bin, args) in cases {
        let out = run(bin, args, None);
        assert_eq!(out.code, 2, "{bin} {args:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    }
    // Our own usage check: a user without a password (before any connection).
    let out = run(EXPORT, ["-a", "http://127.0.0.1:1", "--user", "root"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "etcd-export: no password for user \"root\": give --user root:PASSWORD, --password or \
         ETCD_PASSWORD\n"
    );
}

#[test]
fn help_lists_the_seed_flags() {
    let out = run(EXPORT, ["--help"], None).ok();
    for flag in [
        "--address",
        "--key-type",
        "--value-type",
        "--output-format",
        "--output-file",
    ] {
        assert!(out.stdout_str().contains(flag), "{flag}");
    }
    let out = run(IMPORT, ["--help"], None).ok();
    for flag in [
        "--dry-run",
        "--dry-output",
        "--verbosity",
        "--replace",
        "--csv-header",
        "<INPUT_FILE>",
    ] {
        assert!(out.stdout_str().contains(flag), "{flag}");
    }
    // A txaioetcd user learns that its import deleted what ours keeps.
    let help = out
        .stdout_str()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help.contains("txaioetcd's etcd-import always does this"),
        "{help}"
    );
}

#[test]
fn bad_numbers_say_what_is_wrong() {
    let out = run(EXPORT, ["--page-size", "-5"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("invalid value '-5' for '--page-size <N>': -5 is not in 1..=100000"),
        "{}",
        out.stderr
    );
    let out = run(IMPORT, ["--concurrency", "-1", "f"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("-1 is not in 1..=64"), "{}", out.stderr);
}

/// A loopback web server that answers every request with 404 and an HTML page, for the
/// rest of the test process; returns its `host:port`.
fn html_server() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let page = "<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n\
                    </head>\n<body>\n<h1>Welcome</h1>\n<p>a long page</p>\n</body>\n</html>\n";
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 8192];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    address
}

#[test]
fn a_web_server_that_is_not_etcd_is_named_in_one_line() {
    let address = html_server();
    let out = run(EXPORT, ["-a", &address], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("http://{address} is not an etcd server: ")),
        "{}",
        out.stderr
    );
    if crate::grpc() {
        // An HTTP/1.1 server breaks the HTTP/2 connection: no page to show.
        assert!(
            out.stderr.contains("does not speak HTTP/2"),
            "{}",
            out.stderr
        );
        return;
    }
    assert!(
        out.stderr
            .contains("GET /version answered HTTP 404 with an HTML page (\"Welcome to nginx!\")"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("<body>"), "{}", out.stderr);
}

#[test]
fn a_csv_file_read_as_json_gets_a_hint() {
    let Some(etcd) = shared_etcd() else { return };
    let dir = temp_dir();
    let file = dir.path().join("dump.csv");
    std::fs::write(&file, "a,1\r\nb,2\r\n").unwrap();
    let out = import(etcd, &[p(&file)]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .trim_end()
            .ends_with("; this looks like CSV: use -f csv"),
        "{}",
        out.stderr
    );
}

#[test]
fn runtime_errors_exit_with_1_and_one_line() {
    let out = run(EXPORT, ["-a", "http://127.0.0.1:1"], None).fails(
        1,
        "etcd-export: cannot connect to etcd at http://127.0.0.1:1: ",
    );
    assert_eq!(out.stderr.lines().count(), 1);
    let out = run(
        IMPORT,
        ["-a", "http://127.0.0.1:1", "/nonexistent/dump.json"],
        None,
    )
    .fails(1, "etcd-import: cannot open /nonexistent/dump.json: ");
    assert_eq!(out.stderr.lines().count(), 1);
    run(
        EXPORT,
        ["-a", "127.0.0.1:1", "--cacert", "/nonexistent/ca.pem"],
        None,
    )
    .fails(1, "cannot read /nonexistent/ca.pem");
}

#[test]
fn bad_addresses_say_what_to_write_and_never_echo_a_password() {
    let out = run(EXPORT, ["-a", "http://user:secret@127.0.0.1:1"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!out.stderr.contains("secret"), "{}", out.stderr);
    assert!(
        out.stderr.contains("\"http://***@127.0.0.1:1\"")
            && out.stderr.contains("give them with --user NAME[:PASSWORD]"),
        "{}",
        out.stderr
    );
    for (address, says) in [
        ("127.0.0.1:99999", "port 99999, outside 1-65535"),
        ("htp:/127.0.0.1:1", "write http://127.0.0.1:1"),
        ("http//127.0.0.1:1", "write http://127.0.0.1:1"),
        ("127.0.0.1", "write http://127.0.0.1:2379"),
        ("http://127.0.0.1:1/v3", ".api_prefix(\"/v3\")"),
    ] {
        let out = run(EXPORT, ["-a", address], None);
        assert_eq!(out.code, 1, "{address}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{address}: {}", out.stderr);
        assert!(
            out.stderr.contains("invalid input"),
            "{address}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
}

#[test]
fn any_answering_endpoint_serves() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("endpoints");
    etcdctl_put_all(etcd, &[(under(&prefix, b"k"), b"1".to_vec())]);
    let address = format!(
        "http://127.0.0.1:1,{}",
        etcd.endpoint(0).trim_start_matches("http://")
    );
    let out = run(EXPORT, ["-a", &address, "--prefix", &prefix], None).ok();
    assert_eq!(out.stdout_str(), format!("{{\n  \"{prefix}k\": 1\n}}\n"));
}

#[test]
fn auth_with_user_and_password() {
    let Some(etcd) = fresh_etcd() else { return };
    etcdctl(&etcd, &["user", "add", "root:rootpw"]);
    etcdctl(&etcd, &["auth", "enable"]);
    etcdctl(&etcd, &["--user", "root:rootpw", "put", "secret", "\"s\""]);
    let a = etcd.endpoint(0);

    run(EXPORT, ["-a", &a], None).fails(1, "etcd-export: ");
    run(EXPORT, ["-a", &a, "--user", "root:wrong"], None).fails(1, "auth");
    let out = run(EXPORT, ["-a", &a, "--user", "root:rootpw"], None).ok();
    assert_eq!(out.stdout_str(), "{\n  \"secret\": \"s\"\n}\n");
    let out = run(
        EXPORT,
        ["-a", &a, "--user", "root", "--password", "rootpw"],
        None,
    )
    .ok();
    assert_eq!(out.stdout_str(), "{\n  \"secret\": \"s\"\n}\n");

    let mut cmd = Command::new(IMPORT);
    cmd.args(["-a", &a, "--user", "root", "-f", "jsonl", "-"])
        .env("ETCD_PASSWORD", "rootpw")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"key\":\"new\",\"value\":[1]}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = etcdctl(
        &etcd,
        &["--user", "root:rootpw", "get", "new", "--print-value-only"],
    );
    assert_eq!(got, b"[1]\n");
}

/// A TLS etcd with client certificate auth, started by hand (the launcher speaks plain
/// HTTP). A shell wrapper kills it when our end of its stdin closes, even if this process
/// dies.
struct TlsEtcd {
    child: Child,
    endpoint: String,
    certs: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl TlsEtcd {
    fn path(&self, name: &str) -> PathBuf {
        self.certs.path().join(name)
    }
}

impl Drop for TlsEtcd {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn openssl(dir: &std::path::Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn make_certs(dir: &std::path::Path) -> bool {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    let ca = [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=etcd-tools test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ];
    let leaf = |name: &'static str, cn: &'static str| {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let pem = format!("{name}.pem");
        let ext = format!("{name}.ext");
        let subj = format!("/CN={cn}");
        openssl(
            dir,
            &[
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj",
                &subj,
            ],
        ) && openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        )
    };
    openssl(dir, &ca) && leaf("server", "127.0.0.1") && leaf("client", "root")
}

fn tls_etcd() -> Option<TlsEtcd> {
    let found = match xtask::ensure_etcd(&xtask::testing::test_version()) {
        Ok(found) => found,
        Err(e) if !xtask::testing::is_ci() => {
            eprintln!("skipping the TLS test: {e}");
            return None;
        }
        Err(e) => panic!("no etcd for the TLS test: {e}"),
    };
    let binary = found.path().to_path_buf();
    let etcdctl = found.etcdctl();
    let certs = temp_dir();
    if !make_certs(certs.path()) {
        eprintln!("skipping the TLS test: openssl could not make certificates");
        return None;
    }
    let ports: Vec<u16> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect::<Vec<_>>()
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let client = format!("https://127.0.0.1:{}", ports[0]);
    let peer = format!("http://127.0.0.1:{}", ports[1]);
    let data = temp_dir();
    let cert_dir = certs.path().to_path_buf();
    let c = |name: &str| cert_dir.join(name).display().to_string();
    let args = [
        "--name=tls".to_string(),
        format!("--data-dir={}", data.path().join("d").display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=tls={peer}"),
        format!("--cert-file={}", c("server.pem")),
        format!("--key-file={}", c("server.key")),
        format!("--trusted-ca-file={}", c("ca.pem")),
        "--client-cert-auth".to_string(),
    ];
    let log = std::fs::File::create(data.path().join("etcd.log")).unwrap();
    let child = Command::new("sh")
        .arg("-c")
        .arg("\"$0\" \"$@\" & pid=$!; read _; kill -9 $pid; wait $pid")
        .arg(&binary)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let server = TlsEtcd {
        child,
        endpoint: client,
        certs,
        _data: data,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let health = Command::new(&etcdctl)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", server.endpoint))
            .arg(format!("--cacert={}", c("ca.pem")))
            .arg(format!("--cert={}", c("client.pem")))
            .arg(format!("--key={}", c("client.key")))
            .args(["put", "tls/k", "\"over tls\""])
            .output()
            .unwrap();
        if health.status.success() {
            return Some(server);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the TLS etcd did not start: {}",
            std::fs::read_to_string(server._data.path().join("etcd.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn tls_with_a_ca_and_a_client_certificate() {
    let Some(etcd) = tls_etcd() else { return };
    let ca = etcd.path("ca.pem");
    let cert = etcd.path("client.pem");
    let key = etcd.path("client.key");
    // host:port becomes https:// when TLS options are given.
    let address = etcd.endpoint.trim_start_matches("https://").to_string();
    let full = |extra: &[&str]| {
        let mut a: Vec<OsString> = vec![
            "-a".into(),
            address.clone().into(),
            "--cacert".into(),
            p(&ca),
            "--cert".into(),
            p(&cert),
            "--key".into(),
            p(&key),
        ];
        a.extend(extra.iter().map(OsString::from));
        a
    };
    let out = run(EXPORT, full(&["--prefix", "tls/"]), None).ok();
    assert_eq!(out.stdout_str(), "{\n  \"tls/k\": \"over tls\"\n}\n");
    // Without the client certificate the server refuses; without the CA we refuse it.
    run(
        EXPORT,
        [os(b"-a"), address.clone().into(), "--cacert".into(), p(&ca)],
        None,
    )
    .fails(1, "etcd-export: ");
    run(
        EXPORT,
        ["-a".to_string(), format!("https://{address}")],
        None,
    )
    .fails(1, "etcd-export: ");

    let dir = temp_dir();
    let file = dir.path().join("in.jsonl");
    std::fs::write(&file, "{\"key\":\"tls/new\",\"value\":2}\n").unwrap();
    let mut args = full(&["-f", "jsonl"]);
    args.push(p(&file));
    run(IMPORT, args, None).ok();
    let out = run(EXPORT, full(&["--prefix", "tls/", "-f", "jsonl"]), None).ok();
    assert_eq!(
        out.stdout_str(),
        "{\"key\":\"tls/k\",\"value\":\"over tls\"}\n{\"key\":\"tls/new\",\"value\":2}\n"
    );
}

/// Without the `grpc` feature, `--grpc` (or `ETCD_TOOLS_GRPC`) still parses and is refused
/// as a usage error saying how to rebuild, not clap's "unexpected argument". (The gRPC
/// runs of this suite, built with the feature, use the flag against etcd.)
#[cfg(not(feature = "grpc"))]
#[test]
fn grpc_without_the_feature_says_how_to_rebuild() {
    let dir = temp_dir();
    let file = dir.path().join("dump.json");
    std::fs::write(&file, "{}\n").unwrap();
    let wanted = "built without gRPC: rebuild with `--features grpc`";
    let file = p(&file);
    let runs: [(&str, Vec<OsString>); 2] = [
        (
            EXPORT,
            vec!["--grpc".into(), "-a".into(), "http://127.0.0.1:1".into()],
        ),
        (
            IMPORT,
            vec![
                "--grpc".into(),
                "-a".into(),
                "http://127.0.0.1:1".into(),
                file.clone(),
            ],
        ),
    ];
    for (bin, args) in runs {
        let out = run(bin, &args, None).fails(2, wanted);
        assert!(
            !out.stderr.contains("unexpected argument"),
            "{}",
            out.stderr
        );
    }
    // The environment variable asks for gRPC too.
    let out = Command::new(IMPORT)
        .args(["-a", "http://127.0.0.1:1"])
        .arg(&file)
        .env("ETCD_TOOLS_GRPC", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(wanted));
    // The help says so.
    let help = run(IMPORT, ["--help"], None).ok().stdout_str();
    assert!(
        help.contains("--grpc") && help.contains("--features grpc"),
        "{help}"
    );
}
