//! Every key type × value type × format: lossless data round-trips exactly (with `-v json`,
//! up to insignificant whitespace); data a combination cannot carry is refused, naming the
//! key and the way out.

use crate::*;
use xtask::testing::{shared_etcd, unique_prefix};

/// UTF-8 keys with awkward characters; values that are JSON without surrounding space.
fn text_data() -> Vec<Kv> {
    let pairs: [(&str, &str); 8] = [
        ("plain", r#"{"a": 1, "b": [true, null]}"#),
        ("with space", r#""a string""#),
        ("comma,key", "[1,2,3]"),
        ("quote\"key", "12.50"),
        ("new\nline", "true"),
        ("unicode/é✓", "null"),
        ("tab\tkey", r#""é \u00e9 \"esc\"""#),
        ("crlf\r\nkey", r#"{"nested": {"deep": "x,y"}}"#),
    ];
    pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

/// Writes `data` under a new prefix, exports with `types`, deletes, imports, and checks
/// that the keyspace (with `-v json`: compacted) and a second export are identical to the
/// first.
fn round_trip(etcd: &Etcd, name: &str, data: &[Kv], types: &[&str]) {
    let prefix = unique_prefix(name);
    let data: Vec<Kv> = data
        .iter()
        .map(|(k, v)| (under(&prefix, k), v.clone()))
        .collect();
    etcdctl_put_all(etcd, &data);
    let before = keyspace(etcd, prefix.as_bytes());
    assert_eq!(before.len(), data.len());
    let dir = temp_dir();
    let first = dir.path().join("first");
    let second = dir.path().join("second");

    let mut a = args(types);
    a.extend([
        "--prefix".into(),
        prefix.clone().into(),
        "-o".into(),
        p(&first),
    ]);
    export(etcd, &a).ok();
    etcdctl(etcd, &["del", &prefix, "--prefix"]);
    assert!(keyspace(etcd, prefix.as_bytes()).is_empty());

    let mut a = args(types);
    a.push(p(&first));
    let out = import(etcd, &a).ok();
    assert!(
        out.stdout_str()
            .contains(&format!(": {} added, ", data.len())),
        "{types:?}: {}",
        out.stdout_str()
    );
    let json_values = !types.windows(2).any(|w| w[0] == "-v" && w[1] != "json");
    let expected: Vec<Kv> = if json_values {
        before
            .iter()
            .map(|(k, v)| (k.clone(), compact(v)))
            .collect()
    } else {
        before
    };
    assert_eq!(keyspace(etcd, prefix.as_bytes()), expected, "{types:?}");

    let mut a = args(types);
    a.extend(["--prefix".into(), prefix.into(), "-o".into(), p(&second)]);
    export(etcd, &a).ok();
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap(),
        "{types:?}: the second export differs"
    );
}

/// A JSON text without insignificant whitespace, as `-v json` stores it.
fn compact(value: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(value).expect("JSON is UTF-8");
    etcd_tools::record::compact_json(text)
        .into_owned()
        .into_bytes()
}

fn every_type_combination(format: &str) {
    let Some(etcd) = shared_etcd() else { return };
    for key_type in ["utf8", "binary"] {
        for value_type in ["json", "utf8", "binary"] {
            round_trip(
                etcd,
                &format!("matrix-{format}-{key_type}-{value_type}"),
                &text_data(),
                &["-k", key_type, "-v", value_type, "-f", format],
            );
        }
    }
}

#[test]
fn every_type_combination_round_trips_in_json() {
    every_type_combination("json");
}

#[test]
fn every_type_combination_round_trips_in_csv() {
    every_type_combination("csv");
}

#[test]
fn every_type_combination_round_trips_in_jsonl() {
    every_type_combination("jsonl");
}

#[test]
fn binary_keys_and_values_always_round_trip() {
    let Some(etcd) = shared_etcd() else { return };
    let data: Vec<Kv> = vec![
        (b"\xff\x00\xfe".to_vec(), b"\x00\x01\xff".to_vec()),
        (b"e".to_vec(), Vec::new()),
        (b" 1 ".to_vec(), b" 1 ".to_vec()),
    ];
    for format in ["json", "csv", "jsonl"] {
        round_trip(
            etcd,
            &format!("binary-{format}"),
            &data,
            &["-k", "binary", "-v", "binary", "-f", format],
        );
    }
}

/// Exports one key-value under a new prefix with `types`, expecting failure with `needle`
/// and no output file.
fn refused(etcd: &Etcd, key: &[u8], value: &[u8], types: &[&str], needle: &str) {
    let prefix = unique_prefix("lossy");
    etcdctl_put_all(etcd, &[(under(&prefix, key), value.to_vec())]);
    let dir = temp_dir();
    let file = dir.path().join("dump");
    let mut a = args(types);
    a.extend(["--prefix".into(), prefix.into(), "-o".into(), p(&file)]);
    let out = export(etcd, &a).fails(1, needle);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("etcd-export: key "),
        "{}",
        out.stderr
    );
    assert!(!file.exists(), "{types:?}: a partial file was left");
}

#[test]
fn lossy_combinations_are_refused_naming_the_key() {
    let Some(etcd) = shared_etcd() else { return };
    for format in ["json", "csv", "jsonl"] {
        let f = ["-f", format];
        let t = |k: &'static str, v: &'static str| [f[0], f[1], "-k", k, "-v", v];
        refused(
            etcd,
            b"k\xff",
            b"1",
            &t("utf8", "json"),
            "not valid UTF-8 (byte",
        );
        refused(
            etcd,
            b"k\xff",
            b"1",
            &t("utf8", "binary"),
            "; use -k binary",
        );
        refused(
            etcd,
            b"k",
            b"\xfe\xff",
            &t("binary", "utf8"),
            "; use -v binary",
        );
        refused(
            etcd,
            b"k",
            b"\xfe\xff",
            &t("utf8", "json"),
            "; use -v binary",
        );
        refused(
            etcd,
            b"k",
            b"plain text",
            &t("utf8", "json"),
            "the value is not JSON",
        );
        refused(etcd, b"k", b"", &t("binary", "json"), "the value is empty");
    }
}

#[test]
fn json_values_are_carried_by_meaning() {
    let Some(etcd) = shared_etcd() else { return };
    // Spacing, line breaks and whitespace around the document: every format carries the
    // document, written and stored compact; numbers and escapes stay as spelled.
    let spaced: Vec<Kv> = vec![
        (b"a".to_vec(), br#"{ "b" :1.0e2,"a":"\u00e9" }"#.to_vec()),
        (b"b".to_vec(), b" [1,\n 2]\n".to_vec()),
        (
            b"c".to_vec(),
            b"{\n    \"x\": [\n        1\n    ]\n}".to_vec(),
        ),
    ];
    for format in ["json", "csv", "jsonl"] {
        round_trip(etcd, "spaced-json", &spaced, &["-f", format]);
    }
}

#[test]
fn reimporting_an_export_changes_nothing() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("reimport");
    let data: Vec<Kv> = vec![
        (
            under(&prefix, b"a"),
            br#"{"b": 1, "a": [true, null]}"#.to_vec(),
        ),
        (under(&prefix, b"b"), b"{\n  \"x\": \"\\u00e9\"\n}".to_vec()),
        (under(&prefix, b"c"), b"100".to_vec()),
    ];
    etcdctl_put_all(etcd, &data);
    let before = keyspace_with_revisions(etcd, prefix.as_bytes());
    let dir = temp_dir();
    for format in ["json", "csv", "jsonl"] {
        let file = dir.path().join(format!("dump.{format}"));
        let mut a = args(&["-f", format, "--prefix", &prefix, "-o"]);
        a.push(p(&file));
        export(etcd, &a).ok();
        let mut a = args(&["-f", format, "--prefix", &prefix]);
        a.push(p(&file));
        let out = import(etcd, &a).ok();
        assert!(
            out.stdout_str()
                .contains("in 0 transactions: 0 added, 0 changed, 0 deleted, 3 unchanged\n"),
            "{format}: {}",
            out.stdout_str()
        );
        // A file that means the same with other spacing, member order and escapes.
        let same = format!(
            "{{\"{p}a\": {{\"a\":[true,null],\"b\":1.0}}, \"{p}b\": {{\"x\":\"é\"}}, \"{p}c\": 1e2}}",
            p = prefix
        );
        let file = dir.path().join("same.json");
        std::fs::write(&file, same).unwrap();
        let out = import(etcd, &[os(b"--prefix"), prefix.clone().into(), p(&file)]).ok();
        assert!(
            out.stdout_str()
                .contains(": 0 added, 0 changed, 0 deleted, 3 unchanged\n"),
            "{}",
            out.stdout_str()
        );
    }
    assert_eq!(
        keyspace_with_revisions(etcd, prefix.as_bytes()),
        before,
        "nothing may be written"
    );
}
