//! The import's safety nets: files written with other -k/-v flags, Ctrl-C, and what
//! became of each transaction in flight when one fails.

use crate::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use xtask::testing::{shared_etcd, unique_prefix};

fn put_text(etcd: &Etcd, prefix: &str, kvs: &[(&str, &str)]) {
    let kvs: Vec<Kv> = kvs
        .iter()
        .map(|(k, v)| (under(prefix, k.as_bytes()), v.as_bytes().to_vec()))
        .collect();
    etcdctl_put_all(etcd, &kvs);
}

/// `etcd-export --prefix PREFIX args... -o DIR/NAME`, asserting success.
fn export_to(
    etcd: &Etcd,
    prefix: &str,
    args: &[&str],
    dir: &tempfile::TempDir,
    name: &str,
) -> PathBuf {
    let file = dir.path().join(name);
    let mut all: Vec<OsString> = vec!["--prefix".into(), prefix.into(), "-o".into(), p(&file)];
    all.extend(args.iter().map(OsString::from));
    export(etcd, &all).ok();
    file
}

fn import_file(etcd: &Etcd, file: &Path, args: &[&str]) -> Ran {
    let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
    all.push(p(file));
    import(etcd, &all)
}

#[test]
fn a_utf8_export_of_json_documents_read_as_json_is_refused() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("mismatch_json_docs");
    put_text(
        etcd,
        &prefix,
        &[("db", r#"{"host":"db1","port":5432}"#), ("mode", "active")],
    );
    let before = keyspace_with_revisions(etcd, prefix.as_bytes());
    let dir = temp_dir();
    for format in ["json", "jsonl"] {
        let file = export_to(
            etcd,
            &prefix,
            &["-v", "utf8", "-f", format],
            &dir,
            "utf8.dump",
        );
        // The defaults (-v json): refused before connecting, naming the flag meant.
        let out = import_file(etcd, &file, &["-f", format]).fails(1, "etcd-import: ");
        assert!(
            out.stderr
                .contains("every value is a JSON string, and some hold JSON documents")
                && out
                    .stderr
                    .contains("this looks like a file written with -v utf8; give that flag")
                && out.stderr.contains("--force")
                && out.stderr.contains("nothing was written"),
            "{}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        // A dry run too.
        import_file(etcd, &file, &["-f", format, "-d"]).fails(1, "-v utf8");
        // The flag meant: nothing to change.
        let out = import_file(etcd, &file, &["-f", format, "-v", "utf8"]).ok();
        assert!(
            out.stdout_str()
                .contains("0 added, 0 changed, 0 deleted, 2 unchanged"),
            "{}",
            out.stdout_str()
        );
    }
    assert_eq!(keyspace_with_revisions(etcd, prefix.as_bytes()), before);
}

#[test]
fn a_utf8_export_of_text_read_as_json_is_refused_by_what_etcd_holds() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("mismatch_text");
    // Text values only: the file alone cannot tell -v utf8 from JSON strings, etcd can.
    let kvs: Vec<(String, String)> = (0..300)
        .map(|i| (format!("k{i:03}"), format!("value {i}")))
        .collect();
    let refs: Vec<(&str, &str)> = kvs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    put_text(etcd, &prefix, &refs);
    let before = keyspace_with_revisions(etcd, prefix.as_bytes());
    let dir = temp_dir();
    let file = export_to(etcd, &prefix, &["-v", "utf8"], &dir, "text.json");
    let out = import_file(etcd, &file, &["--max-txn-ops", "2"]).fails(1, "etcd-import: ");
    assert!(
        out.stderr.contains(&format!(
            "etcd holds key \"{prefix}k000\" as \"value 0\", its text without the quotes"
        )) && out.stderr.contains("written with -v utf8; give -v utf8")
            && out.stderr.contains("nothing was written"),
        "{}",
        out.stderr
    );
    import_file(etcd, &file, &["-d"]).fails(1, "give -v utf8");
    assert_eq!(keyspace_with_revisions(etcd, prefix.as_bytes()), before);
    // --force imports as told: JSON strings, quotes included.
    let out = import_file(etcd, &file, &["--force"]).ok();
    assert!(
        out.stdout_str().contains("0 added, 300 changed"),
        "{}",
        out.stdout_str()
    );
    let now = keyspace(etcd, prefix.as_bytes());
    assert_eq!(now[0].1, b"\"value 0\"");
    // Now that etcd holds JSON strings, the same file under -v json is plainly right.
    let out = import_file(etcd, &file, &[]).ok();
    assert!(
        out.stdout_str().contains("300 unchanged"),
        "{}",
        out.stdout_str()
    );
}

#[test]
fn a_binary_export_read_with_the_defaults_is_refused() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("mismatch_binary");
    put_text(
        etcd,
        &prefix,
        &[("a", "1"), ("b", r#"{"x":[1,2]}"#), ("c", "\"text\"")],
    );
    let dir = temp_dir();
    // -k binary: keys of base64 text under -k utf8.
    let file = export_to(
        etcd,
        &prefix,
        &["-k", "binary", "-f", "jsonl"],
        &dir,
        "keys.jsonl",
    );
    let out = import_file(etcd, &file, &["-f", "jsonl"]).fails(1, "etcd-import: ");
    let first = B64.encode(format!("{prefix}a"));
    assert!(
        out.stderr.contains(&format!(
            "every key is base64 (line 1: \"{first}\" decodes to \"{prefix}a\")"
        )) && out
            .stderr
            .contains("written with -k binary; give that flag")
            && out.stderr.contains("each key created as its base64 text"),
        "{}",
        out.stderr
    );
    // --force goes ahead (here a dry run: 3 keys of base64 text would be added).
    let out = import_file(etcd, &file, &["-f", "jsonl", "-d", "--force"]).ok();
    assert!(
        out.stdout_str().contains(": 3 added, 0 changed"),
        "{}",
        out.stdout_str()
    );
    import_file(etcd, &file, &["-f", "jsonl", "-k", "binary"]).ok();

    // -k binary -v binary read with the defaults: both flags named.
    let file = export_to(
        etcd,
        &prefix,
        &["-k", "binary", "-v", "binary"],
        &dir,
        "both.json",
    );
    let out = import_file(etcd, &file, &[]).fails(1, "etcd-import: ");
    assert!(
        out.stderr
            .contains("written with -k binary -v binary; give those flags"),
        "{}",
        out.stderr
    );
    // -v binary alone (padded base64 strings).
    let file = export_to(
        etcd,
        &prefix,
        &["-v", "binary", "-f", "csv"],
        &dir,
        "values.csv",
    );
    let out = import_file(etcd, &file, &["-f", "csv"]).fails(1, "etcd-import: ");
    assert!(
        out.stderr
            .contains("written with -v binary; give that flag"),
        "{}",
        out.stderr
    );
    let out = import_file(etcd, &file, &["-f", "csv", "-v", "binary"]).ok();
    assert!(
        out.stdout_str().contains("3 unchanged"),
        "{}",
        out.stdout_str()
    );
}

/// The number before `word` in `text` (`"12 transactions"` → 12).
fn number_before(text: &str, word: &str) -> u64 {
    let at = text
        .find(word)
        .unwrap_or_else(|| panic!("no {word:?} in {text:?}"));
    text[..at]
        .trim_end()
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before {word:?} in {text:?}"))
}

fn count(etcd: &Etcd, prefix: &str) -> u64 {
    let args = [
        os(b"get"),
        os(prefix.as_bytes()),
        "--prefix".into(),
        // The count is of the whole range, whatever the limit (etcdctl 3.4 has no
        // --count-only).
        "--keys-only".into(),
        "--limit=1".into(),
        "-w".into(),
        "fields".into(),
    ];
    let out = String::from_utf8(etcdctl(etcd, &args)).unwrap();
    let line = out
        .lines()
        .find(|l| l.starts_with("\"Count\""))
        .unwrap_or_else(|| panic!("no count in {out}"));
    number_before(&format!("{line} end"), "end")
}

/// Runs `etcd-import args`, interrupts it (SIGINT, as a terminal's Ctrl-C) once it has
/// written under `prefix`, checks that it exits 130, and returns its stderr.
fn interrupted_import(etcd: &Etcd, prefix: &str, args: &[OsString]) -> String {
    let child = command(IMPORT)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(etcd, prefix) == 0 {
        assert!(
            Instant::now() < deadline,
            "the import wrote nothing in 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    stderr
}

#[test]
fn ctrl_c_finishes_the_transactions_in_flight_and_exits_130() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("ctrl_c");
    let dir = temp_dir();
    const KEYS: usize = 40_000;
    const OPS: u64 = 5;
    let text: String = (0..KEYS)
        .map(|i| format!("{{\"key\":\"{prefix}k{i:06}\",\"value\":{i}}}\n"))
        .collect();
    let file = dir.path().join("big.jsonl");
    std::fs::write(&file, text).unwrap();
    let args: Vec<OsString> = with_address(
        etcd,
        &[
            OsString::from("-f"),
            "jsonl".into(),
            "--max-txn-ops".into(),
            OPS.to_string().into(),
            p(&file),
        ],
    );
    let stderr = interrupted_import(etcd, &prefix, &args);
    assert!(
        stderr.contains("etcd-import: interrupted: sending nothing more")
            && stderr.contains("each whole; the transaction being gathered was not sent")
            && stderr.contains(
                "to finish, run the same command again (it writes only what still differs)"
            ),
        "{stderr}"
    );
    // Exactly the transactions it reports, whole: the first N × OPS keys of the file.
    let transactions = number_before(&stderr, "transactions were applied");
    let added = number_before(&stderr, "added,");
    assert!(transactions > 0 && (added as usize) < KEYS, "{stderr}");
    assert_eq!(added, transactions * OPS, "{stderr}");
    let stored = keyspace(etcd, prefix.as_bytes());
    assert_eq!(stored.len() as u64, added, "{stderr}");
    for (i, (key, value)) in stored.iter().enumerate() {
        assert_eq!(key, format!("{prefix}k{i:06}").as_bytes());
        assert_eq!(value, i.to_string().as_bytes());
    }
    // Each transaction in flight is named with its outcome (all applied here).
    for line in stderr.lines().filter(|l| l.starts_with("  transaction ")) {
        assert!(line.contains(": applied at revision "), "{stderr}");
    }
    // Running the same command again finishes the import.
    let out = run(IMPORT, &args, None).ok();
    assert!(
        out.stdout_str().contains(&format!(
            "{} added, 0 changed, 0 deleted, {added} unchanged",
            KEYS as u64 - added
        )),
        "{}",
        out.stdout_str()
    );
    assert_eq!(count(etcd, &prefix), KEYS as u64);
}

#[test]
fn a_failure_names_every_transaction_in_flight() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("in_flight");
    let dir = temp_dir();
    // One key per transaction, four in flight; the sixth is over etcd's 1.5 MiB request
    // limit. Transactions settle in order: when the sixth fails, the seventh to ninth are
    // in flight, and the tenth is not sent.
    let big = "x".repeat(3 << 20);
    let text: String = (0..20)
        .map(|i| {
            let value = if i == 5 { big.as_str() } else { "small" };
            format!("{{\"key\":\"{prefix}k{i:02}\",\"value\":\"{value}\"}}\n")
        })
        .collect();
    let file = dir.path().join("in.jsonl");
    std::fs::write(&file, text).unwrap();
    let out = import_file(
        etcd,
        &file,
        &[
            "-f",
            "jsonl",
            "-v",
            "utf8",
            "--max-txn-ops",
            "1",
            "--concurrency",
            "4",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "etcd-import: transaction 6 (1 operation, key \"{prefix}k05\") failed"
        )) && lines[0].contains("8 transactions were applied (8 added, 0 changed, 0 deleted)")
            && lines[0].contains("running the import again finishes it")
            && lines[0].ends_with("; the 4 transactions in flight:"),
        "{}",
        out.stderr
    );
    assert_eq!(lines.len(), 5, "{}", out.stderr);
    assert!(
        lines[1].starts_with(&format!(
            "  transaction 6 (1 operation, key \"{prefix}k05\"): not applied: "
        )),
        "{}",
        out.stderr
    );
    for (line, n) in lines[2..].iter().zip(7..) {
        assert!(
            line.starts_with(&format!(
                "  transaction {n} (1 operation, key \"{prefix}k{:02}\"): applied at revision ",
                n - 1
            )),
            "{}",
            out.stderr
        );
    }
    let keys: Vec<Vec<u8>> = keyspace(etcd, prefix.as_bytes())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let expected: Vec<Vec<u8>> = [0, 1, 2, 3, 4, 6, 7, 8]
        .iter()
        .map(|i| format!("{prefix}k{i:02}").into_bytes())
        .collect();
    assert_eq!(keys, expected);
}

#[test]
fn ctrl_c_under_unchanged_since_names_the_revision_to_finish_with() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("ctrl_c_guarded");
    let dir = temp_dir();
    const KEYS: usize = 5_000;
    let text: String = (0..KEYS)
        .map(|i| format!("{{\"key\":\"{prefix}k{i:05}\",\"value\":{i}}}\n"))
        .collect();
    let file = dir.path().join("guarded.jsonl");
    std::fs::write(&file, text).unwrap();
    let (start, _) = get_json(etcd, b"", &[]);
    let args = |since: i64| {
        with_address(
            etcd,
            &[
                OsString::from("-f"),
                "jsonl".into(),
                "--max-txn-ops".into(),
                "3".into(),
                "--unchanged-since".into(),
                since.to_string().into(),
                // The guard covers the prefix only: other tests write elsewhere meanwhile.
                "--prefix".into(),
                prefix.clone().into(),
                p(&file),
            ],
        )
    };
    let stderr = interrupted_import(etcd, &prefix, &args(start));
    // The first --unchanged-since would now see the import's own writes: the message
    // names the revision to use instead, and a rerun with it finishes the import.
    let since = number_before(
        &stderr,
        "(the revision after this import's last transaction",
    );
    let added = number_before(&stderr, "added,");
    assert_eq!(count(etcd, &prefix), added);
    run(IMPORT, args(start), None).fails(1, "after --unchanged-since");
    let out = run(IMPORT, args(since as i64), None).ok();
    assert!(
        out.stdout_str()
            .contains(&format!("{} added", KEYS as u64 - added)),
        "{}",
        out.stdout_str()
    );
    assert_eq!(count(etcd, &prefix), KEYS as u64);
}

/// Reads a child's stderr on a thread, line by line.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

#[test]
fn ctrl_c_with_a_frozen_server_names_unknown_outcomes_and_a_second_one_exits_at_once() {
    let Some(mut etcd) = fresh_etcd() else { return };
    let prefix = unique_prefix("ctrl_c_frozen");
    let dir = temp_dir();
    let text: String = (0..40_000)
        .map(|i| format!("{{\"key\":\"{prefix}k{i:06}\",\"value\":{i}}}\n"))
        .collect();
    let file = dir.path().join("big.jsonl");
    std::fs::write(&file, text).unwrap();
    let args = with_address(
        &etcd,
        &[
            OsString::from("-f"),
            "jsonl".into(),
            "--max-txn-ops".into(),
            "5".into(),
            p(&file),
        ],
    );
    let sigint = |child: &std::process::Child| {
        assert!(Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success());
    };
    let start_and_freeze = |etcd: &mut Etcd| {
        let child = command(IMPORT)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let before = count(etcd, &prefix);
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(etcd, &prefix) == before {
            assert!(
                Instant::now() < deadline,
                "the import wrote nothing in 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Frozen with transactions in flight: their answers will never come.
        etcd.pause_node(0).unwrap();
        child
    };

    // One Ctrl-C: the import waits for its transactions in flight, whose requests time out.
    let mut child = start_and_freeze(&mut etcd);
    sigint(&child);
    let lines = stderr_lines(&mut child);
    let status = child.wait().unwrap();
    etcd.resume_node(0).unwrap();
    let stderr: Vec<String> = lines.iter().collect();
    let stderr = stderr.join("\n");
    assert_eq!(status.code(), Some(130), "{stderr}");
    // Either the wait ended in the transactions' timeouts (unknown outcomes), or the
    // interruption came while one was awaited, which then failed the same way.
    assert!(
        stderr.contains("may or may not have been applied (each whole or not at all)")
            && stderr.contains("to finish, run the same command again")
            || stderr.contains("etcd-import: interrupted; while the transactions in flight were waited for, transaction ")
                && stderr.contains("failed and may have been applied")
                && stderr.contains("running the import again finishes it"),
        "{stderr}"
    );
    let unknown = stderr
        .lines()
        .filter(|l| l.contains("): outcome unknown (applied whole or not at all): "))
        .count();
    assert!(unknown > 0, "{stderr}");
    // Whole transactions only, whatever their outcome: a multiple of 5 keys.
    assert_eq!(count(&etcd, &prefix) % 5, 0);

    // A second Ctrl-C stops at once, without waiting for the frozen server.
    let mut child = start_and_freeze(&mut etcd);
    let lines = stderr_lines(&mut child);
    sigint(&child);
    let first = lines.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        first.starts_with("etcd-import: interrupted: sending nothing more"),
        "{first}"
    );
    let again = Instant::now();
    sigint(&child);
    let status = child.wait().unwrap();
    let waited = again.elapsed();
    etcd.resume_node(0).unwrap();
    let rest: Vec<String> = lines.iter().collect();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(
        rest.iter().any(|l| {
            l.starts_with(
            "etcd-import: interrupted again: stopped without waiting for the transactions in flight"
        )
        }),
        "{rest:?}"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // The rerun finishes the import.
    let out = run(IMPORT, &args, None).ok();
    assert!(
        out.stdout_str().contains("imported at revision"),
        "{}",
        out.stdout_str()
    );
    assert_eq!(count(&etcd, &prefix), 40_000);
}
