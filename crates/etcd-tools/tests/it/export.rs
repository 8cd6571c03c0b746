//! Export: snapshots at one revision, past revisions, prefixes, metadata, output files.

use crate::*;
use xtask::testing::{shared_etcd, unique_prefix};

#[test]
fn an_export_is_one_snapshot_even_while_keys_change() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("snapshot");
    let kvs: Vec<Kv> = (0..3000)
        .map(|i| {
            (
                under(&prefix, format!("{i:04}").as_bytes()),
                b"original".to_vec(),
            )
        })
        .collect();
    etcdctl_put_all(etcd, &kvs);

    let endpoint = etcd.endpoint(0);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let prefix = prefix.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let client = etcd_kv::Client::connect(endpoint).await.unwrap();
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    client
                        .put(format!("{prefix}{:04}", (i * 7) % 3000), "changed")
                        .await
                        .unwrap();
                    client.put(format!("{prefix}new/{i}"), "new").await.unwrap();
                    i += 1;
                }
                i
            })
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    let out = export(
        etcd,
        &[
            os(b"--prefix"),
            prefix.clone().into(),
            "-f".into(),
            "jsonl".into(),
            "-v".into(),
            "utf8".into(),
            "--with-metadata".into(),
            "--page-size".into(),
            "50".into(),
        ],
    )
    .ok();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 0);
    let revision = revision_in(&out.stderr);

    // Exactly the keyspace etcdctl sees at that revision, and nothing newer.
    let (_, at) = get_json(etcd, prefix.as_bytes(), &["--rev", &revision.to_string()]);
    let lines: Vec<serde_json::Value> = out
        .stdout_str()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), at.len());
    for (line, kv) in lines.iter().zip(&at) {
        let key = B64.decode(kv["key"].as_str().unwrap()).unwrap();
        let value = B64.decode(kv["value"].as_str().unwrap_or("")).unwrap();
        assert_eq!(line["key"].as_str().unwrap().as_bytes(), key);
        assert_eq!(line["value"].as_str().unwrap().as_bytes(), value);
        assert_eq!(line["mod_revision"], kv["mod_revision"]);
        assert!(line["mod_revision"].as_i64().unwrap() <= revision);
    }
}

#[test]
fn past_revisions_and_compaction() {
    let Some(etcd) = fresh_etcd() else { return };
    etcdctl(&etcd, &["put", "k", "v1"]);
    let (r1, _) = get_json(&etcd, b"k", &[]);
    etcdctl(&etcd, &["put", "k", "v2"]);
    etcdctl(&etcd, &["put", "k2", "later"]);

    let args = |rev: i64| {
        vec![
            os(b"-v"),
            "utf8".into(),
            "-f".into(),
            "csv".into(),
            "--revision".into(),
            rev.to_string().into(),
        ]
    };
    let out = export(&etcd, &args(r1)).ok();
    assert_eq!(out.stdout_str(), "k,v1\r\n");
    assert_eq!(
        out.stderr,
        format!("etcd-export: exported 1 key at revision {r1}\n")
    );

    let (now, _) = get_json(&etcd, b"k", &[]);
    export(&etcd, &args(now + 100)).fails(1, "in the future");
    etcdctl(&etcd, &["compact", &now.to_string()]);
    export(&etcd, &args(r1)).fails(
        1,
        &format!(
            "etcd-export: cannot read the keyspace at revision {r1}: revision has been compacted"
        ),
    );
    let out = export(&etcd, &args(now)).ok();
    assert_eq!(out.stdout_str(), "k,v2\r\nk2,later\r\n");
}

#[test]
fn metadata_matches_etcdctl_and_import_ignores_it() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("meta");
    let lease = String::from_utf8(etcdctl(etcd, &["lease", "grant", "600"])).unwrap();
    let lease_hex = lease.split_whitespace().nth(1).unwrap().to_string();
    etcdctl(etcd, &[os(b"put"), format!("{prefix}a").into(), "1".into()]);
    etcdctl(etcd, &[os(b"put"), format!("{prefix}a").into(), "2".into()]);
    etcdctl(
        etcd,
        &[
            os(b"put"),
            format!("{prefix}leased").into(),
            "3".into(),
            format!("--lease={lease_hex}").into(),
        ],
    );
    let out = export(
        etcd,
        &[
            os(b"--prefix"),
            prefix.clone().into(),
            "-f".into(),
            "jsonl".into(),
            "--with-metadata".into(),
        ],
    )
    .ok();
    let (_, kvs) = get_json(etcd, prefix.as_bytes(), &[]);
    let lines: Vec<serde_json::Value> = out
        .stdout_str()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (line, kv) in lines.iter().zip(&kvs) {
        for field in ["create_revision", "mod_revision", "version"] {
            assert_eq!(line[field], kv[field], "{field}");
        }
        assert_eq!(
            line["lease"].as_i64().unwrap(),
            kv["lease"].as_i64().unwrap_or(0)
        );
    }
    assert_eq!(lines[0]["version"], 2);
    assert_eq!(
        lines[1]["lease"].as_i64().unwrap(),
        i64::from_str_radix(&lease_hex, 16).unwrap()
    );

    // Import accepts the metadata and ignores it: nothing to change.
    let dir = temp_dir();
    let file = dir.path().join("meta.jsonl");
    std::fs::write(&file, &out.stdout).unwrap();
    let out = import(etcd, &[os(b"-f"), "jsonl".into(), p(&file)]).ok();
    assert!(out
        .stdout_str()
        .contains(": 0 added, 0 changed, 0 deleted, 2 unchanged"));
}

#[test]
fn prefixes_select_keys_including_binary_ones() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("prefix");
    let kvs: Vec<Kv> = vec![
        (under(&prefix, b"a\xff/1"), b"x".to_vec()),
        (under(&prefix, b"a\xff/2"), b"y".to_vec()),
        (under(&prefix, b"a\xff"), b"self".to_vec()),
        (under(&prefix, b"a\xfe"), b"before".to_vec()),
        (under(&prefix, b"b"), b"after".to_vec()),
    ];
    etcdctl_put_all(etcd, &kvs);
    let out = export(
        etcd,
        &[
            os(b"--prefix"),
            os(&under(&prefix, b"a\xff")),
            "-k".into(),
            "binary".into(),
            "-v".into(),
            "utf8".into(),
            "-f".into(),
            "jsonl".into(),
        ],
    )
    .ok();
    let values: Vec<String> = out
        .stdout_str()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["value"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(values, ["self", "x", "y"]);
    assert!(out.stderr.contains("exported 3 keys"));
}

#[test]
fn empty_exports_are_valid_files() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("nothing");
    let run = |format: &str| {
        export(etcd, &["--prefix", &prefix, "-f", format])
            .ok()
            .stdout_str()
    };
    assert_eq!(run("json"), "{}\n");
    assert_eq!(run("csv"), "");
    assert_eq!(run("jsonl"), "");
}

#[test]
fn a_failed_export_leaves_an_existing_output_file_alone() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("keep-file");
    etcdctl_put_all(etcd, &[(under(&prefix, b"k"), b"not json".to_vec())]);
    let dir = temp_dir();
    let file = dir.path().join("dump.json");
    std::fs::write(&file, "previous dump").unwrap();
    export(
        etcd,
        &[
            os(b"--prefix"),
            prefix.clone().into(),
            "-o".into(),
            p(&file),
        ],
    )
    .fails(1, "the value is not JSON");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "previous dump");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "a temporary file was left"
    );
    export(
        etcd,
        &[
            os(b"--prefix"),
            prefix.into(),
            "-v".into(),
            "utf8".into(),
            "-o".into(),
            p(&file),
        ],
    )
    .ok();
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("\"not json\""));
}

#[test]
fn every_page_size_gives_the_same_file() {
    let Some(etcd) = shared_etcd() else { return };
    let prefix = unique_prefix("pages");
    // Enough keys for the pager to probe ahead with small pages (16 pages of 3 keys).
    let kvs: Vec<Kv> = (0..400u32)
        .map(|i| {
            let mut key = under(&prefix, &i.to_be_bytes());
            key.push(0xff);
            (key, i.to_string().into_bytes())
        })
        .collect();
    etcdctl_put_all(etcd, &kvs);
    let run = |page: &str| {
        export(
            etcd,
            &[
                "--prefix",
                &prefix,
                "-k",
                "binary",
                "-v",
                "utf8",
                "-f",
                "jsonl",
                "--page-size",
                page,
            ],
        )
        .ok()
        .stdout
    };
    let whole = run("1000");
    assert_eq!(whole.iter().filter(|&&b| b == b'\n').count(), 400);
    for page in ["1", "3", "7", "100", "399", "400"] {
        assert!(
            run(page) == whole,
            "--page-size {page} gives a different file"
        );
    }
}
