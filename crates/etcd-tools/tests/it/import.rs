//! Import semantics: upsert, --replace, --prefix, dry run, validation before writing,
//! batches, and the --unchanged-since guard.

use crate::*;
use std::path::PathBuf;
use xtask::testing::{shared_etcd, unique_prefix};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn jsonl(records: &[(&str, &str)]) -> String {
    records
        .iter()
        .map(|(k, v)| {
            format!(
                "{{\"key\":{},\"value\":{}}}\n",
                serde_json::json!(k),
                serde_json::json!(v)
            )
        })
        .collect()
}

fn utf8_kvs(etcd: &Etcd, prefix: &str) -> Vec<(String, String)> {
    keyspace(etcd, prefix.as_bytes())
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8(k[prefix.len()..].to_vec()).unwrap(),
                String::from_utf8(v).unwrap(),
            )
        })
        .collect()
}

fn put(etcd: &Etcd, prefix: &str, kvs: &[(&str, &str)]) {
    let kvs: Vec<Kv> = kvs
        .iter()
        .map(|(k, v)| (under(prefix, k.as_bytes()), v.as_bytes().to_vec()))
        .collect();
    etcdctl_put_all(etcd, &kvs);
}

fn owned(kvs: &[(&str, &str)]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn upsert_by_default_and_replace_deletes_what_the_file_lacks() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("replace");
    put(
        etcd,
        &prefix,
        &[("a", "old"), ("b", "same"), ("extra", "x")],
    );
    let dir = temp_dir();
    let k = |s: &str| format!("{prefix}{s}");
    let file = write(
        &dir,
        "in.jsonl",
        &jsonl(&[(&k("a"), "new"), (&k("b"), "same"), (&k("c"), "added")]),
    );
    let out = import(
        etcd,
        &[
            os(b"-v"),
            "utf8".into(),
            "-f".into(),
            "jsonl".into(),
            p(&file),
        ],
    )
    .ok();
    assert!(
        out.stdout_str()
            .contains("in 1 transaction: 1 added, 1 changed, 0 deleted, 1 unchanged"),
        "{}",
        out.stdout_str()
    );
    assert_eq!(
        utf8_kvs(etcd, &prefix),
        owned(&[("a", "new"), ("b", "same"), ("c", "added"), ("extra", "x")])
    );

    // What txaioetcd's import would have deleted is kept, and counted.
    let out = import(
        etcd,
        &[
            os(b"-v"),
            "utf8".into(),
            "-f".into(),
            "jsonl".into(),
            "--prefix".into(),
            prefix.clone().into(),
            p(&file),
        ],
    )
    .ok();
    assert!(
        out.stdout_str().ends_with(
            "in 0 transactions: 0 added, 0 changed, 0 deleted, 3 unchanged, 1 kept that the \
             file lacks (--replace deletes them)\n"
        ),
        "{}",
        out.stdout_str()
    );

    let out = import(
        etcd,
        &[
            os(b"-v"),
            "utf8".into(),
            "-f".into(),
            "jsonl".into(),
            "--replace".into(),
            "--prefix".into(),
            prefix.clone().into(),
            "--verbosity".into(),
            "verbose".into(),
            p(&file),
        ],
    )
    .ok();
    assert_eq!(
        out.stdout_str(),
        format!(
            "- \"{prefix}extra\"\nimported at revision {} in 1 transaction: 0 added, 0 changed, \
             1 deleted, 3 unchanged\n",
            revision_in(&out.stdout_str())
        )
    );
    assert_eq!(
        utf8_kvs(etcd, &prefix),
        owned(&[("a", "new"), ("b", "same"), ("c", "added")])
    );
}

#[test]
fn prefix_imports_part_of_a_file() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("part");
    put(etcd, &prefix, &[("in/stale", "x"), ("out/keep", "y")]);
    let dir = temp_dir();
    let k = |s: &str| format!("{prefix}{s}");
    let file = write(
        &dir,
        "in.jsonl",
        &jsonl(&[
            (&k("in/1"), "1"),
            (&k("out/1"), "1"),
            (&k("out/keep"), "changed"),
        ]),
    );
    let out = import(
        etcd,
        &[
            os(b"-v"),
            "utf8".into(),
            "-f".into(),
            "jsonl".into(),
            "--replace".into(),
            "--prefix".into(),
            k("in/").into(),
            p(&file),
        ],
    )
    .ok();
    assert!(
        out.stdout_str()
            .contains(": 1 added, 0 changed, 1 deleted, 0 unchanged, 2 skipped (outside --prefix)"),
        "{}",
        out.stdout_str()
    );
    assert_eq!(
        utf8_kvs(etcd, &prefix),
        owned(&[("in/1", "1"), ("out/keep", "y")])
    );
}

#[test]
fn dry_run_reports_the_diff_and_writes_nothing() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("dry");
    put(etcd, &prefix, &[("a", "1"), ("b", "2"), ("d", "4")]);
    let before = keyspace_with_revisions(etcd, prefix.as_bytes());
    let dir = temp_dir();
    let k = |s: &str| format!("{prefix}{s}");
    let file = write(
        &dir,
        "in.csv",
        &format!("{},1\r\n{},changed\r\n{},new\r\n", k("a"), k("b"), k("c")),
    );
    let common = |extra: &[&str]| {
        let mut a: Vec<OsString> = ["-v", "utf8", "-f", "csv", "--replace", "--prefix"]
            .iter()
            .map(OsString::from)
            .collect();
        a.push(prefix.clone().into());
        a.extend(extra.iter().map(OsString::from));
        a.push(p(&file));
        a
    };
    let out = import(etcd, &common(&["-d", "--verbosity", "verbose"])).ok();
    let revision = revision_in(&out.stdout_str());
    assert_eq!(
        out.stdout_str(),
        format!(
            "~ \"{p}b\"\n+ \"{p}c\"\n- \"{p}d\"\ndry run at revision {revision}: 1 added, \
             1 changed, 1 deleted, 1 unchanged\n",
            p = prefix
        )
    );
    let out = import(etcd, &common(&["--dry-run"])).ok();
    assert!(out
        .stdout_str()
        .ends_with(": 1 added, 1 changed, 1 deleted, 1 unchanged\n"));
    let report = dir.path().join("report.txt");
    let mut a = common(&["-d", "--verbosity", "verbose", "-o"]);
    a.insert(a.len() - 1, p(&report));
    let out = import(etcd, &a).ok();
    assert!(out.stdout.is_empty());
    assert!(std::fs::read_to_string(&report)
        .unwrap()
        .starts_with(&format!("~ \"{prefix}b\"\n")));
    let out = import(etcd, &common(&["-d", "--verbosity", "silent"])).ok();
    assert!(out.stdout.is_empty() && out.stderr.is_empty());

    assert_eq!(keyspace_with_revisions(etcd, prefix.as_bytes()), before);
}

/// Imports `text` as `name` with `types`, expecting exit 1 with `file:line: reason`, and
/// checks that nothing was written.
fn rejected(etcd: &Etcd, prefix: &str, name: &str, text: &str, types: &[&str], needle: &str) {
    let dir = temp_dir();
    let file = write(&dir, name, text);
    let mut a: Vec<OsString> = types.iter().map(OsString::from).collect();
    a.extend(["--prefix".into(), prefix.into(), p(&file)]);
    let out = import(etcd, &a).fails(1, needle);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with(&format!("etcd-import: {}:", file.display())),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    assert!(
        keyspace(etcd, prefix.as_bytes()).is_empty(),
        "{name}: something was written"
    );
}

#[test]
fn invalid_files_are_rejected_with_line_and_reason_before_any_write() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("corrupt");
    let k = |i: usize| format!("{prefix}{i:05}");

    // A long valid file with one bad record near the end: nothing of it is written.
    let mut text = String::new();
    for i in 0..5000 {
        let value = if i == 4000 { "not base64!" } else { "dmFsdWU=" };
        text.push_str(&format!("{{\"key\":\"{}\",\"value\":\"{value}\"}}\n", k(i)));
    }
    rejected(
        etcd,
        &prefix,
        "bad-base64.jsonl",
        &text,
        &["-f", "jsonl", "-v", "binary"],
        ".jsonl:4001: key ",
    );
    rejected(
        etcd,
        &prefix,
        "bad-key.jsonl",
        "{\"key\":\"@@@\",\"value\":1}\n",
        &["-f", "jsonl", "-k", "binary"],
        ":1: key \"@@@\": the key is not valid base64",
    );
    rejected(
        etcd,
        &prefix,
        "syntax.json",
        &format!("{{\n  \"{}\": 1,\n  \"{}\": [1, 2\n}}\n", k(1), k(2)),
        &["-f", "json"],
        "syntax.json:4: expected `,` or `]`",
    );
    rejected(
        etcd,
        &prefix,
        "not-a-string.json",
        &format!("{{\n  \"{}\": \"ok\",\n  \"{}\": 12\n}}\n", k(1), k(2)),
        &["-f", "json", "-v", "utf8"],
        ":3: key \"",
    );
    rejected(
        etcd,
        &prefix,
        "columns.csv",
        &format!("{},1\n{},2,3\n", k(1), k(2)),
        &["-f", "csv", "-v", "utf8"],
        "columns.csv:2: expected 2 fields (key,value), found 3",
    );
    rejected(
        etcd,
        &prefix,
        "header.csv",
        &format!("k,v\n{},1\n", k(1)),
        &["-f", "csv", "--csv-header"],
        "header.csv:1: the header must be `key,value` (--csv-header), found `k,v`",
    );
    rejected(
        etcd,
        &prefix,
        "json-cell.csv",
        &format!("{},1\n{},{{oops\n", k(1), k(2)),
        &["-f", "csv", "-v", "json"],
        "json-cell.csv:2: key",
    );
    rejected(
        etcd,
        &prefix,
        "duplicate.jsonl",
        &format!(
            "{{\"key\":\"{a}\",\"value\":1}}\n{{\"key\":\"{a}\",\"value\":2}}\n",
            a = k(1)
        ),
        &["-f", "jsonl"],
        ":2: duplicate key",
    );
    rejected(
        etcd,
        &prefix,
        "duplicate-unsorted.json",
        &format!(
            "{{\n  \"{b}\": 1,\n  \"{a}\": 1,\n  \"{b}\": 2\n}}\n",
            a = k(1),
            b = k(2)
        ),
        &["-f", "json"],
        ":4: duplicate key",
    );
    rejected(
        etcd,
        &prefix,
        "empty-key.jsonl",
        "{\"key\":\"\",\"value\":1}\n",
        &["-f", "jsonl"],
        ":1: key \"\": the key is empty",
    );
    rejected(
        etcd,
        &prefix,
        "wrong-format.json",
        &jsonl(&[(&k(1), "x"), (&k(2), "y")]),
        &["-f", "json", "-v", "utf8"],
        "wrong-format.json:2: trailing characters",
    );
}

#[test]
fn files_out_of_key_order_are_sorted() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("unsorted");
    put(etcd, &prefix, &[("m", "old"), ("zz", "gone")]);
    let dir = temp_dir();
    let k = |s: &str| format!("{prefix}{s}");
    let file = write(
        &dir,
        "in.csv",
        &format!("key,value\n{},3\n{},1\n{},new\n", k("z"), k("a"), k("m")),
    );
    let out = import(
        etcd,
        &[
            os(b"-f"),
            "csv".into(),
            "--csv-header".into(),
            "-v".into(),
            "utf8".into(),
            "--replace".into(),
            "--prefix".into(),
            prefix.clone().into(),
            "--verbosity".into(),
            "verbose".into(),
            p(&file),
        ],
    )
    .ok();
    let lines: Vec<String> = out.stdout_str().lines().map(String::from).collect();
    assert_eq!(
        lines[..4],
        [
            format!("+ \"{prefix}a\""),
            format!("~ \"{prefix}m\""),
            format!("+ \"{prefix}z\""),
            format!("- \"{prefix}zz\"")
        ]
    );
    assert_eq!(
        utf8_kvs(etcd, &prefix),
        owned(&[("a", "1"), ("m", "new"), ("z", "3")])
    );
}

#[test]
fn writes_go_in_atomic_batches_within_the_limits() {
    let Some(etcd) = fresh_etcd() else { return };
    let dir = temp_dir();
    // 1000 keys, 10 operations per transaction: 100 transactions, one revision each.
    let text: String = (0..1000)
        .map(|i| format!("{{\"key\":\"k/{i:04}\",\"value\":{i}}}\n"))
        .collect();
    let file = write(&dir, "many.jsonl", &text);
    let (before, _) = get_json(&etcd, b"", &[]);
    let out = import(
        &etcd,
        &[
            os(b"-f"),
            "jsonl".into(),
            "--max-txn-ops".into(),
            "10".into(),
            p(&file),
        ],
    )
    .ok();
    assert!(
        out.stdout_str().contains("in 100 transactions: 1000 added"),
        "{}",
        out.stdout_str()
    );
    let (after, kvs) = get_json(&etcd, b"k/", &[]);
    assert_eq!(after - before, 100);
    assert_eq!(kvs.len(), 1000);

    // 12 values of 200 kB: 2.4 MB, more than etcd takes in one request (1.5 MiB).
    let big = "x".repeat(200_000);
    let text: String = (0..12)
        .map(|i| format!("{{\"key\":\"big/{i:02}\",\"value\":\"{big}\"}}\n"))
        .collect();
    let file = write(&dir, "big.jsonl", &text);
    let args = |extra: &[&str]| {
        let mut a: Vec<OsString> = ["-f", "jsonl", "-v", "utf8"]
            .iter()
            .map(OsString::from)
            .collect();
        a.extend(extra.iter().map(OsString::from));
        a.push(p(&file));
        a
    };
    import(&etcd, &args(&["--max-txn-bytes", "100000000"])).fails(
        1,
        "check --max-txn-ops and --max-txn-bytes against the server's limits",
    );
    assert!(keyspace(&etcd, b"big/").is_empty());
    let out = import(&etcd, &args(&[])).ok();
    assert!(
        out.stdout_str().contains("in 3 transactions: 12 added"),
        "{}",
        out.stdout_str()
    );
    assert_eq!(keyspace(&etcd, b"big/").len(), 12);
}

#[test]
fn unchanged_since_guards_against_concurrent_changes() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("guard");
    put(etcd, &prefix, &[("a", "1"), ("b", "2")]);
    let dir = temp_dir();
    let k = |s: &str| format!("{prefix}{s}");
    let file = write(
        &dir,
        "in.jsonl",
        &jsonl(&[(&k("a"), "10"), (&k("c"), "30")]),
    );
    let args = |extra: &[String]| {
        let mut a: Vec<OsString> = ["-f", "jsonl", "-v", "utf8", "--prefix"]
            .iter()
            .map(OsString::from)
            .collect();
        a.push(prefix.clone().into());
        a.extend(extra.iter().map(OsString::from));
        a.push(p(&file));
        a
    };
    let dry = import(etcd, &args(&["-d".into()])).ok();
    let seen = revision_in(&dry.stdout_str());

    // A key changed since the dry run: refused, nothing written.
    put(etcd, &prefix, &[("b", "changed")]);
    import(etcd, &args(&["--unchanged-since".into(), seen.to_string()]))
        .fails(1, &format!("key \"{}\" changed at revision ", k("b")));
    assert_eq!(
        utf8_kvs(etcd, &prefix),
        owned(&[("a", "1"), ("b", "changed")])
    );

    // A key deleted since: refused too.
    let dry = import(etcd, &args(&["-d".into()])).ok();
    let seen = revision_in(&dry.stdout_str());
    etcdctl(etcd, &["del", &k("b")]);
    import(etcd, &args(&["--unchanged-since".into(), seen.to_string()]))
        .fails(1, "1 keys were deleted after --unchanged-since");
    assert_eq!(utf8_kvs(etcd, &prefix), owned(&[("a", "1")]));

    // Unchanged: imported, in one transaction per key with --max-txn-ops 2.
    let dry = import(etcd, &args(&["-d".into()])).ok();
    let seen = revision_in(&dry.stdout_str());
    let out = import(
        etcd,
        &args(&[
            "--unchanged-since".into(),
            seen.to_string(),
            "--max-txn-ops".into(),
            "2".into(),
        ]),
    )
    .ok();
    assert!(
        out.stdout_str()
            .contains("in 2 transactions: 1 added, 1 changed"),
        "{}",
        out.stdout_str()
    );
    assert_eq!(utf8_kvs(etcd, &prefix), owned(&[("a", "10"), ("c", "30")]));
}

#[test]
fn unchanged_since_stops_an_import_when_someone_writes_meanwhile() {
    let Some(etcd) = fresh_etcd() else { return };
    let dir = temp_dir();
    let text: String = (0..3000)
        .map(|i| format!("{{\"key\":\"g/{i:04}\",\"value\":{i}}}\n"))
        .collect();
    let file = write(&dir, "in.jsonl", &text);
    let (start, _) = get_json(&etcd, b"", &[]);
    let endpoint = etcd.endpoint(0);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let client = etcd_kv::Client::connect(endpoint).await.unwrap();
                // Late enough for the import to pass its first check.
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    client
                        .put("g/0000", format!("other writer {i}"))
                        .await
                        .unwrap();
                    i += 1;
                }
            });
        })
    };
    let out = import(
        &etcd,
        &[
            os(b"-f"),
            "jsonl".into(),
            "--max-txn-ops".into(),
            "2".into(),
            "--unchanged-since".into(),
            start.to_string().into(),
            p(&file),
        ],
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    out.fails(1, "transactions were applied (");
}
