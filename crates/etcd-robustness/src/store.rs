//! Reading the store's own history back after a run, with etcd's own `etcdctl watch`
//! (`-w json`), so that the record the checkers trust does not come through the client
//! under test.

use crate::history::{Event, EventKind, KeyValue, StoreHistory};
use base64::Engine as _;
use serde::Deserialize;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// How long the read-back may take.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct Response {
    #[serde(rename = "Events", default)]
    events: Option<Vec<RawEvent>>,
    #[serde(rename = "CompactRevision", default)]
    compact_revision: i64,
    #[serde(rename = "Canceled", default)]
    canceled: bool,
}

#[derive(Deserialize)]
struct RawEvent {
    /// 0: put, 1: delete.
    #[serde(rename = "type", default)]
    kind: i32,
    kv: RawKv,
}

#[derive(Deserialize)]
struct RawKv {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    create_revision: i64,
    #[serde(default)]
    mod_revision: i64,
    #[serde(default)]
    version: i64,
    #[serde(default)]
    lease: i64,
}

/// Every change under `prefix` from `first` up to and including `last`, read with
/// `etcdctl --endpoints=... watch --prefix <prefix> --rev=<first> -w json` (a change at
/// revision `last` under the prefix must exist: the run's closing write). A watch that
/// etcd cancels (seen once with auth on) is read again from the start, up to 3 times.
pub async fn read_back(
    etcdctl: &Path,
    endpoints: &[String],
    user: Option<(&str, &str)>,
    prefix: &str,
    first: i64,
    last: i64,
) -> Result<StoreHistory, String> {
    let mut attempt = 1;
    loop {
        match read_once(etcdctl, endpoints, user, prefix, first, last).await {
            Err(e) if attempt < 3 && e.contains("cancelled") => {
                eprintln!("robustness: NOTICE: {e}; reading the store's history again");
                attempt += 1;
            }
            result => return result,
        }
    }
}

async fn read_once(
    etcdctl: &Path,
    endpoints: &[String],
    user: Option<(&str, &str)>,
    prefix: &str,
    first: i64,
    last: i64,
) -> Result<StoreHistory, String> {
    let mut command = tokio::process::Command::new(etcdctl);
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("ETCDCTL_")) {
            command.env_remove(key);
        }
    }
    command
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", endpoints.join(",")))
        .args([
            "watch",
            "--prefix",
            prefix,
            &format!("--rev={first}"),
            "-w",
            "json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some((name, password)) = user {
        command.arg(format!("--user={name}:{password}"));
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("running {}: {e}", etcdctl.display()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| "etcdctl has no stdout".to_string())?;
    let mut lines = BufReader::new(stdout).lines();
    let mut events = Vec::new();
    let read = async {
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| format!("reading etcdctl's output: {e}"))?
        {
            let line = line.trim();
            if !line.starts_with('{') {
                continue;
            }
            let response: Response =
                serde_json::from_str(line).map_err(|e| format!("etcdctl printed {line:?}: {e}"))?;
            if response.canceled || response.compact_revision > 0 {
                return Err(format!("the read-back watch was cancelled: {line}"));
            }
            for raw in response.events.unwrap_or_default() {
                let event = event(raw)?;
                let done = event.revision >= last;
                events.push(event);
                if done {
                    return Ok(());
                }
            }
        }
        Err("etcdctl's watch ended before the closing write".to_string())
    };
    let result = tokio::time::timeout(READ_TIMEOUT, read).await;
    let _ = child.kill().await;
    match result {
        Ok(Ok(())) => Ok(StoreHistory {
            first_revision: first,
            last_revision: last,
            events,
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "etcdctl's watch did not reach revision {last} within {READ_TIMEOUT:?}"
        )),
    }
}

fn event(raw: RawEvent) -> Result<Event, String> {
    let text = |b64: &str| -> Result<String, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("etcdctl printed bad base64 {b64:?}: {e}"))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let key = text(&raw.kv.key)?;
    let revision = raw.kv.mod_revision;
    Ok(if raw.kind == 1 {
        Event {
            key,
            kind: EventKind::Delete,
            revision,
            kv: None,
        }
    } else {
        Event {
            key,
            kind: EventKind::Put,
            revision,
            kv: Some(KeyValue {
                value: text(&raw.kv.value)?,
                create_revision: raw.kv.create_revision,
                mod_revision: revision,
                version: raw.kv.version,
                lease: raw.kv.lease,
            }),
        }
    })
}
