//! Export from one server, import into a fresh one: the keyspaces must be byte-identical.

use crate::*;
use std::sync::OnceLock;

/// Binary keys, non-UTF-8 values, empty values, awkward text, and 10,000 plain keys.
pub fn seed_data() -> Vec<Kv> {
    let mut kvs: Vec<Kv> = vec![
        (b"\xff\xfe\xfd".to_vec(), b"binary key".to_vec()),
        (b"bin/\x00\x01\x02".to_vec(), b"\x00\x00".to_vec()),
        (b"bin/\x80".to_vec(), b"\xc3\x28 not utf-8".to_vec()),
        (b"\x01start".to_vec(), b"\xff".to_vec()),
        (b"empty/1".to_vec(), Vec::new()),
        (b"empty/2".to_vec(), Vec::new()),
        (b"text/line\nbreak".to_vec(), b"a,b \"q\"\r\n".to_vec()),
        ("text/unicode/é".into(), "ünïcødé ✓".into()),
        (b"json/obj".to_vec(), br#"{"a": [1, 2.50, null]}"#.to_vec()),
    ];
    for i in 0..10_000u32 {
        let key = format!("data/{i:05}").into_bytes();
        let value = match i % 3 {
            0 => vec![b'v', (i % 256) as u8, 0xff, 0x00, (i / 256) as u8],
            1 => format!("value {i}, \"quoted\"").into_bytes(),
            _ => format!("{{\"n\": {i}}}").into_bytes(),
        };
        kvs.push((key, value));
    }
    kvs
}

/// A server holding only [`seed_data`], written with etcdctl, shared by this binary's tests.
pub fn seeded() -> Option<&'static Etcd> {
    static SEEDED: OnceLock<Option<Etcd>> = OnceLock::new();
    SEEDED
        .get_or_init(|| {
            let etcd = fresh_etcd()?;
            etcdctl_put_all(&etcd, &seed_data());
            Some(etcd)
        })
        .as_ref()
}

fn round_trip(format: &str) {
    let Some(a) = seeded() else { return };
    let Some(b) = fresh_etcd() else { return };
    let dir = temp_dir();
    let file = dir.path().join(format!("dump.{format}"));
    let types = ["-k", "binary", "-v", "binary", "-f", format];
    let mut args: Vec<OsString> = types.iter().map(OsString::from).collect();
    args.extend(["-o".into(), p(&file)]);
    let out = export(a, &args).ok();
    assert!(
        out.stderr.contains("exported 10009 keys at revision "),
        "{}",
        out.stderr
    );
    let mut args: Vec<OsString> = types.iter().map(OsString::from).collect();
    args.push(p(&file));
    let out = import(&b, &args).ok();
    assert!(
        out.stdout_str()
            .contains(": 10009 added, 0 changed, 0 deleted, 0 unchanged"),
        "{}",
        out.stdout_str()
    );
    let expected = keyspace(a, b"");
    assert_eq!(expected.len(), 10009);
    assert_eq!(
        keyspace(&b, b""),
        expected,
        "keyspaces differ after {format}"
    );

    // Importing again changes nothing.
    let out = import(&b, &args).ok();
    assert!(
        out.stdout_str()
            .contains("in 0 transactions: 0 added, 0 changed, 0 deleted, 10009 unchanged"),
        "{}",
        out.stdout_str()
    );
}

#[test]
fn json_round_trip_is_byte_identical() {
    round_trip("json");
}

#[test]
fn csv_round_trip_is_byte_identical() {
    round_trip("csv");
}

#[test]
fn jsonl_round_trip_is_byte_identical() {
    round_trip("jsonl");
}

#[test]
fn a_pipe_from_export_to_import_is_lossless() {
    let Some(a) = seeded() else { return };
    let Some(b) = fresh_etcd() else { return };
    let dump = export(a, &["-k", "binary", "-v", "binary", "-f", "jsonl", "-q"]).ok();
    assert!(dump.stderr.is_empty(), "{}", dump.stderr);
    let args = with_address(&b, &["-k", "binary", "-v", "binary", "-f", "jsonl", "-"]);
    run(IMPORT, args, Some(&dump.stdout)).ok();
    assert_eq!(keyspace(&b, b""), keyspace(a, b""));
}
