//! What a run reports: one JSON line per scenario ([`ScenarioReport`]), a closing line
//! ([`summary_line`]), and, for a scenario with anomalies, failure files a person can read
//! ([`write_failure`]): each anomaly's small sub-history as JSON ([`FailureRecord`], which
//! the checkers can be run on again) and one self-contained HTML page with a timeline per
//! anomaly.
#![deny(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::check::{Anomaly, AnomalyKind};
use crate::history::{Event, History, Op, Outcome, StoreHistory, Time, WatchRecord};

mod html;

pub use html::escape;
use html::html_page;

/// How many operations of a history had an answer, definitely failed, or have an unknown
/// outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OpCounts {
    /// Every operation.
    pub ops: usize,
    /// Operations with an answer (a compare-and-set that did not swap is answered too).
    pub ok: usize,
    /// Operations that definitely failed.
    pub failed: usize,
    /// Operations whose outcome is unknown.
    pub unknown: usize,
}

impl OpCounts {
    /// Counts the operations of `history`.
    pub fn of(history: &History) -> OpCounts {
        let mut counts = OpCounts {
            ops: history.ops.len(),
            ..OpCounts::default()
        };
        for op in &history.ops {
            match op.outcome {
                Outcome::Failed { .. } => counts.failed += 1,
                Outcome::Unknown { .. } => counts.unknown += 1,
                _ => counts.ok += 1,
            }
        }
        counts
    }
}

/// One scenario's result, printed as one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScenarioReport {
    /// The scenario's name.
    pub scenario: String,
    /// How the clients talked to etcd (`grpc`, `http`...).
    pub protocol: String,
    /// etcd's version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The seed of the scenario's random choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// How long the scenario ran, in milliseconds.
    #[serde(default)]
    pub duration_ms: u64,
    /// Operations recorded.
    pub ops: usize,
    /// Operations answered.
    pub ok: usize,
    /// Operations that definitely failed.
    pub failed: usize,
    /// Operations of unknown outcome.
    pub unknown: usize,
    /// Events the watches delivered.
    #[serde(default)]
    pub watch_events: usize,
    /// Faults the nemesis injected.
    pub faults: usize,
    /// How many faults of each kind (`kill-leader`...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fault_kinds: BTreeMap<String, usize>,
    /// Anomalies found (0: the scenario passed).
    pub anomalies: usize,
    /// How many anomalies of each kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kinds: BTreeMap<AnomalyKind, usize>,
    /// How long the checkers took, in milliseconds.
    pub check_ms: u64,
    /// The failure files written for it ([`write_failure`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failure_files: Vec<String>,
}

impl ScenarioReport {
    /// The report of `scenario`, run over `protocol`, from its history, the anomalies the
    /// checkers found in `check_ms` milliseconds, and the number of faults injected.
    pub fn new(
        scenario: impl Into<String>,
        protocol: impl Into<String>,
        history: &History,
        anomalies: &[Anomaly],
        faults: usize,
        check_ms: u64,
    ) -> ScenarioReport {
        let counts = OpCounts::of(history);
        let mut kinds = BTreeMap::new();
        for anomaly in anomalies {
            *kinds.entry(anomaly.kind).or_insert(0) += 1;
        }
        ScenarioReport {
            scenario: scenario.into(),
            protocol: protocol.into(),
            version: None,
            seed: None,
            duration_ms: 0,
            ops: counts.ops,
            ok: counts.ok,
            failed: counts.failed,
            unknown: counts.unknown,
            watch_events: history
                .watches
                .iter()
                .flat_map(|w| &w.responses)
                .map(|d| d.events.len())
                .sum(),
            faults,
            fault_kinds: BTreeMap::new(),
            anomalies: anomalies.len(),
            kinds,
            check_ms,
            failure_files: Vec::new(),
        }
    }

    /// Sets how many faults of each kind were injected.
    pub fn with_fault_kinds<'a>(
        mut self,
        kinds: impl IntoIterator<Item = &'a str>,
    ) -> ScenarioReport {
        for kind in kinds {
            *self.fault_kinds.entry(kind.to_string()).or_insert(0) += 1;
        }
        self
    }

    /// Sets etcd's version.
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> ScenarioReport {
        self.version = Some(version.into());
        self
    }

    /// Sets the scenario's seed.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> ScenarioReport {
        self.seed = Some(seed);
        self
    }

    /// Sets how long the scenario ran.
    #[must_use]
    pub fn with_duration_ms(mut self, duration_ms: u64) -> ScenarioReport {
        self.duration_ms = duration_ms;
        self
    }

    /// Names the failure files written for it.
    #[must_use]
    pub fn with_failure_files(mut self, files: &[PathBuf]) -> ScenarioReport {
        self.failure_files = files.iter().map(|p| p.display().to_string()).collect();
        self
    }

    /// True when no anomaly was found.
    pub fn passed(&self) -> bool {
        self.anomalies == 0
    }

    /// The report as one line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
    }
}

/// The closing line of a run: `robustness: N scenarios, M ops, K faults, A anomalies`.
pub fn summary_line(reports: &[ScenarioReport]) -> String {
    let ops: usize = reports.iter().map(|r| r.ops).sum();
    let faults: usize = reports.iter().map(|r| r.faults).sum();
    let anomalies: usize = reports.iter().map(|r| r.anomalies).sum();
    format!(
        "robustness: {} scenarios, {ops} ops, {faults} faults, {anomalies} anomalies",
        reports.len()
    )
}

/// One anomaly with the part of the history that shows it, as written by
/// [`write_failure`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailureRecord {
    /// The scenario's name.
    pub scenario: String,
    /// The anomaly.
    pub anomaly: Anomaly,
    /// The operations and records involved, the operations of the same keys overlapping
    /// them in time, and the store events of those keys around the revisions involved.
    pub history: History,
}

/// At most this many anomalies of a scenario get a sub-history and a timeline (all are
/// listed).
pub const MAX_DETAILED: usize = 20;

/// At most this many context operations are added to a sub-history.
const MAX_CONTEXT: usize = 200;

/// The part of `history` that shows `anomaly`: the operations, watch, lock and lease
/// records it names; for context, the operations of the same keys whose intervals overlap
/// the involved ones' (the nearest 200); and the store events of those keys in
/// the revision range the operations refer to, with the change before it.
pub fn sub_history(history: &History, anomaly: &Anomaly) -> History {
    let mut ids: BTreeSet<u64> = anomaly.ops.iter().copied().collect();
    let locks: Vec<_> = history
        .locks
        .iter()
        .filter(|l| anomaly.locks.contains(&l.id))
        .cloned()
        .collect();
    for lock in &locks {
        ids.extend(&lock.writes);
    }
    let leases: Vec<_> = history
        .leases
        .iter()
        .filter(|l| Some(l.lease) == anomaly.lease)
        .cloned()
        .collect();
    ids.extend(leases.iter().filter_map(|l| l.put));
    let involved: Vec<&Op> = history
        .ops
        .iter()
        .filter(|op| ids.contains(&op.id))
        .collect();
    let mut keys: BTreeSet<&str> = involved.iter().map(|op| op.key()).collect();
    keys.extend(anomaly.key.as_deref());
    keys.extend(leases.iter().map(|l| l.key.as_str()));
    // Context: operations of those keys overlapping the involved ones in time.
    let window = involved.iter().fold(None, |w: Option<(Time, Time)>, op| {
        let end = op.ret.unwrap_or(op.call);
        Some(w.map_or((op.call, end), |(a, b)| (a.min(op.call), b.max(end))))
    });
    let mut ops: Vec<Op> = involved.iter().map(|op| (*op).clone()).collect();
    if let Some((t0, t1)) = window {
        let mut context: Vec<&Op> = history
            .ops
            .iter()
            .filter(|op| !ids.contains(&op.id) && keys.contains(op.key()))
            .filter(|op| op.call <= t1 && op.ret.is_none_or(|ret| ret >= t0))
            .collect();
        let middle = t0 / 2 + t1 / 2;
        context.sort_by_key(|op| op.call.abs_diff(middle));
        ops.extend(context.into_iter().take(MAX_CONTEXT).cloned());
    }
    ops.sort_by_key(|op| (op.call, op.id));
    let watches: Vec<WatchRecord> = history
        .watches
        .iter()
        .filter(|w| Some(w.id) == anomaly.watch)
        .map(|w| trim_watch(w, anomaly.revision))
        .collect();
    let store = history
        .store
        .as_ref()
        .map(|store| store_context(store, &ops, &keys, &watches, anomaly.revision));
    History {
        prefix: history.prefix.clone(),
        ops,
        watches,
        locks,
        leases,
        store,
        faults: history.faults.clone(),
    }
}

/// A watch's responses around `revision` (all of them when there are few).
fn trim_watch(w: &WatchRecord, revision: Option<i64>) -> WatchRecord {
    const AROUND: usize = 15;
    let mut w = w.clone();
    if w.responses.len() > 2 * AROUND {
        let rev = revision.unwrap_or(0);
        let at = w
            .responses
            .iter()
            .position(|d| {
                d.events
                    .iter()
                    .map(|e| e.revision)
                    .max()
                    .unwrap_or(d.revision)
                    >= rev
            })
            .unwrap_or(w.responses.len());
        let start = at.saturating_sub(AROUND);
        let end = (at + AROUND).min(w.responses.len());
        w.responses = w.responses[start..end].to_vec();
    }
    w
}

/// The store events of `keys` (and of the watches' ranges) in the revision range the
/// operations and the anomaly refer to, with each key's change before it.
fn store_context(
    store: &StoreHistory,
    ops: &[Op],
    keys: &BTreeSet<&str>,
    watches: &[WatchRecord],
    revision: Option<i64>,
) -> StoreHistory {
    let mut revisions: Vec<i64> = revision.into_iter().collect();
    for op in ops {
        revisions.extend(op.outcome.revision());
        if let Outcome::Get { kv: Some(kv), .. } = &op.outcome {
            revisions.push(kv.mod_revision);
            revisions.push(kv.create_revision);
        }
    }
    for w in watches {
        for d in &w.responses {
            revisions.push(d.revision);
            revisions.extend(d.events.iter().map(|e| e.revision));
        }
    }
    let lo = revisions
        .iter()
        .copied()
        .min()
        .unwrap_or(store.first_revision);
    let hi = revisions
        .iter()
        .copied()
        .max()
        .unwrap_or(store.last_revision);
    let relevant = |e: &Event| {
        keys.contains(e.key.as_str())
            || watches
                .iter()
                .any(|w| crate::check::store::in_range(&e.key, &w.key, &w.range_end))
    };
    let mut before: BTreeMap<&str, &Event> = BTreeMap::new();
    let mut events = Vec::new();
    for e in store.events.iter().filter(|e| relevant(e)) {
        if e.revision < lo {
            before.insert(&e.key, e);
        } else if e.revision <= hi {
            events.push(e.clone());
        }
    }
    let mut all: Vec<Event> = before.into_values().cloned().collect();
    all.extend(events);
    all.sort_by_key(|e| e.revision);
    StoreHistory {
        first_revision: store.first_revision,
        last_revision: store.last_revision,
        events: all,
    }
}

/// Writes the failure files of `scenario` into `dir` (created if needed): for each of the
/// first [`MAX_DETAILED`] anomalies, `<scenario>-anomaly-<n>.json` (a [`FailureRecord`]);
/// `<scenario>-anomalies.json`, the list of all anomalies; and `<scenario>.html`, the
/// anomalies' timelines. Returns the paths written.
pub fn write_failure(
    dir: &Path,
    scenario: &str,
    history: &History,
    anomalies: &[Anomaly],
) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let name = file_name(scenario);
    // A previous run's files of the same scenario would read as this one's.
    let stale = format!("{name}-anomaly-");
    for entry in std::fs::read_dir(dir)?.filter_map(Result::ok) {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if file.starts_with(&stale) && file.ends_with(".json") {
            std::fs::remove_file(entry.path())?;
        }
    }
    let mut written = Vec::new();
    let records: Vec<FailureRecord> = anomalies
        .iter()
        .take(MAX_DETAILED)
        .map(|anomaly| FailureRecord {
            scenario: scenario.to_string(),
            anomaly: anomaly.clone(),
            history: sub_history(history, anomaly),
        })
        .collect();
    for (n, record) in records.iter().enumerate() {
        let path = dir.join(format!("{name}-anomaly-{}.json", n + 1));
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(record).map_err(io::Error::other)?,
        )?;
        written.push(path);
    }
    let path = dir.join(format!("{name}-anomalies.json"));
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(anomalies).map_err(io::Error::other)?,
    )?;
    written.push(path);
    let path = dir.join(format!("{name}.html"));
    std::fs::write(&path, html_page(scenario, anomalies, &records))?;
    written.push(path);
    Ok(written)
}

/// `scenario` as a file name: letters, digits, `.`, `-` and `_`.
fn file_name(scenario: &str) -> String {
    let name: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        format!("scenario{name}")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Kit;
    use crate::check::{check, AnomalyKind};
    use crate::history::FaultSpan;
    use crate::history::ReadKind;

    /// The key of [`failing`]: it must be escaped.
    const KEY: &str = "k<&>";

    /// A history with a stale read among other operations.
    fn failing() -> (History, u64) {
        let mut kit = Kit::new();
        for i in 0..10u32 {
            let t = u64::from(i) * 100;
            kit.put(i % 3, KEY, t, t + 50);
            kit.get((i + 1) % 3, KEY, t + 60, t + 90);
        }
        kit.unknown_put(5, KEY, 1_000, true);
        kit.failed_put(6, KEY, 1_010, 1_020);
        let old = kit.revision() - 3;
        let bad = kit.read_at(4, KEY, ReadKind::Linearizable, old, 1_100, 1_150);
        kit.put(1, "other", 1_200, 1_250);
        (kit.finish(), bad)
    }

    #[test]
    fn counts_and_lines() {
        let (history, _) = failing();
        let anomalies = check(&history);
        let report = ScenarioReport::new("kv/partition", "grpc", &history, &anomalies, 3, 12)
            .with_seed(7)
            .with_version("3.5.17");
        assert_eq!(
            (report.ops, report.ok, report.failed, report.unknown),
            (24, 22, 1, 1)
        );
        assert_eq!(report.anomalies, anomalies.len());
        assert!(!report.passed());
        let line = report.to_json_line();
        assert!(!line.contains('\n'));
        let back: ScenarioReport = serde_json::from_str(&line).unwrap();
        assert_eq!(back, report);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        for field in [
            "scenario",
            "protocol",
            "ops",
            "ok",
            "failed",
            "unknown",
            "faults",
            "anomalies",
            "check_ms",
        ] {
            assert!(value.get(field).is_some(), "{field} missing from {line}");
        }
        let clean = ScenarioReport::new("kv/none", "http", &History::default(), &[], 0, 1);
        assert_eq!(
            summary_line(&[report, clean]),
            format!(
                "robustness: 2 scenarios, 24 ops, 3 faults, {} anomalies",
                anomalies.len()
            )
        );
    }

    #[test]
    fn failure_files_show_the_anomaly() {
        let (mut history, bad) = failing();
        let anomalies = check(&history);
        // A fault under way during the operations shows as a band.
        let (t0, t1) = (history.ops[0].call, history.ops[history.ops.len() - 1].call);
        history.faults.push(FaultSpan {
            kind: "freeze-leader".into(),
            member: 2,
            start: t0,
            healed: t1,
        });
        assert!(anomalies.iter().any(|a| a.kind == AnomalyKind::StaleRead));
        let dir =
            std::env::temp_dir().join(format!("etcd-robustness-report-{}", std::process::id()));
        let files = write_failure(&dir, "kv/stale <read>", &history, &anomalies).unwrap();
        assert_eq!(files.len(), anomalies.len() + 2);
        // A second, smaller failure of the same scenario replaces the first's files.
        let again = write_failure(&dir, "kv/stale <read>", &history, &anomalies[..1]).unwrap();
        let left = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(left, again.len(), "no stale files");
        let files = write_failure(&dir, "kv/stale <read>", &history, &anomalies).unwrap();
        for path in &files {
            assert!(path.starts_with(&dir));
            assert!(!path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .contains(['/', '<', ' ']));
        }
        // Each JSON file parses back, names its anomaly, and its history shows the read.
        for (path, anomaly) in files.iter().zip(&anomalies) {
            let record: FailureRecord =
                serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            assert_eq!(&record.anomaly, anomaly);
            for id in &anomaly.ops {
                assert!(record.history.ops.iter().any(|op| op.id == *id));
            }
            assert!(
                record.history.ops.iter().all(|op| op.key() == KEY),
                "only the key's operations"
            );
        }
        let stale = anomalies
            .iter()
            .position(|a| a.kind == AnomalyKind::StaleRead)
            .unwrap();
        let record: FailureRecord =
            serde_json::from_slice(&std::fs::read(&files[stale]).unwrap()).unwrap();
        // The stale read is still found in its sub-history alone.
        let again = check(&record.history);
        assert!(
            again
                .iter()
                .any(|a| a.kind == AnomalyKind::StaleRead && a.ops.contains(&bad)),
            "{again:#?}"
        );
        let list: Vec<Anomaly> =
            serde_json::from_slice(&std::fs::read(&files[anomalies.len()]).unwrap()).unwrap();
        assert_eq!(list, anomalies);
        // The page marks the read and escapes what it shows.
        let html = std::fs::read_to_string(files.last().unwrap()).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(
            html.contains(&format!("<g class=\"op anomaly\" data-op=\"{bad}\">")),
            "read not marked"
        );
        assert!(html.contains("kv/stale &lt;read&gt;"));
        assert!(!html.contains("<read>"));
        assert!(html.contains("k&lt;&amp;&gt;") && !html.contains(KEY));
        assert!(html.contains("url(#fade-put)"), "the unknown put fades");
        assert!(
            html.contains("<g class=\"fault\"><title>freeze-leader on member 2"),
            "the fault shows"
        );
        assert_eq!(html.matches("<section").count(), anomalies.len());
        assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn watch_and_lock_anomalies_get_their_records() {
        let mut kit = Kit::new();
        for i in 0..40 {
            kit.put(0, "w", i * 10, i * 10 + 5);
        }
        let mut watch = kit.watch_all(3, "w", "", 0);
        watch.responses.remove(20);
        kit.history.watches.push(watch);
        let history = kit.finish();
        let anomalies = check(&history);
        assert_eq!(anomalies.len(), 1);
        assert_eq!(anomalies[0].kind, AnomalyKind::WatchMissedEvent);
        let sub = sub_history(&history, &anomalies[0]);
        assert_eq!(sub.watches.len(), 1);
        assert!(sub.watches[0].responses.len() < history.watches[0].responses.len());
        let missed = anomalies[0].revision.unwrap();
        assert!(sub
            .store
            .unwrap()
            .events
            .iter()
            .any(|e| e.revision == missed));
        let page = html_page(
            "w",
            &anomalies,
            &[FailureRecord {
                scenario: "w".into(),
                anomaly: anomalies[0].clone(),
                history: sub_history(&history, &anomalies[0]),
            }],
        );
        assert!(page.contains("Watch 3 of"));
    }

    #[test]
    fn escaping_and_file_names() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(file_name("kv/partition 1"), "kv_partition_1");
        assert_eq!(file_name(".."), "scenario..");
        assert_eq!(file_name(""), "scenario");
    }
}
