//! `etcd-robustness`: the scenario runner behind `cargo xtask robustness`.
//!
//! Runs the scenarios (fault family × protocol) one after another, each on a fresh 3-member
//! cluster, prints one JSON line per scenario on stdout and a closing line
//! `robustness: N scenarios, M ops, K faults, A anomalies`; on an anomaly, writes the
//! smallest failing sub-history under `--out` (JSON and an HTML timeline) and exits 1.
#![forbid(unsafe_code)]

use clap::Parser;
use std::io::Write as _;

/// A line on stderr in one write (scenarios run concurrently, stdout shares the terminal).
macro_rules! note {
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        let _ = std::io::stderr().write_all(line.as_bytes());
    }};
}
use etcd_kv::StreamMode;
use etcd_robustness::nemesis::FaultKind;
use etcd_robustness::report::{self, ScenarioReport};
use etcd_robustness::scenario::{self, Settings, Spec, Wire};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// History-checked robustness scenarios against a real 3-member etcd cluster.
#[derive(Parser, Debug)]
#[command(name = "etcd-robustness")]
struct Args {
    /// Seconds of load under faults for the whole run, split evenly between the scenarios.
    #[arg(long, default_value_t = 120)]
    duration: u64,
    /// The run's seed (random when not given; printed, to replay a run).
    #[arg(long)]
    seed: Option<u64>,
    /// gateway, grpc or all.
    #[arg(long, default_value = "all")]
    protocol: String,
    /// Comma-separated fault kinds or families (processes, partitions, clients, all).
    #[arg(long, default_value = "all")]
    faults: String,
    /// Only the scenarios with these names (repeatable).
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// The etcd version: 3.4, 3.5.1, 3.5.30, any...
    #[arg(long, default_value = "any")]
    version: String,
    /// Where failing sub-histories go.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write every scenario's whole history (`<out>/<scenario>.history.json`).
    #[arg(long)]
    dump: bool,
    /// How many scenarios run at once (each on its own cluster).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Print the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Check a history written by `--dump` again (no etcd needed): print its anomalies and
    /// write the failure files, as a run would.
    #[arg(long, value_name = "HISTORY_JSON")]
    check: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    // The client's own diagnostics, on stderr, when `RUST_LOG` asks for them (e.g.
    // `RUST_LOG=etcd_kv::watch=debug`): what the watch and keep-alive hubs decided and why.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            note!("robustness: cannot start tokio: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(run(args)) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            note!("robustness: error: {e}");
            1
        }
    };
    // Not dropping the runtime: a scenario still running on another thread (after an
    // error) would panic on a runtime shutting down. Its cluster's watchdogs clean up.
    std::process::exit(code)
}

/// Every scenario the runner knows, for `protocols`, with faults in `kinds`.
fn catalog(protocols: &[Wire], kinds: &[FaultKind]) -> Vec<Spec> {
    let mut specs = Vec::new();
    for &wire in protocols {
        let families: [(&str, Vec<FaultKind>, bool, StreamMode); 4] = [
            (
                "processes",
                FaultKind::PROCESSES.to_vec(),
                false,
                StreamMode::Auto,
            ),
            (
                "partitions",
                FaultKind::PARTITIONS.to_vec(),
                false,
                StreamMode::Auto,
            ),
            // Over the gateway, the other stream mode: one POST per watch and keep-alive.
            (
                "clients",
                FaultKind::CLIENTS.to_vec(),
                false,
                StreamMode::PerCall,
            ),
            // Tokens expire after 2 s unused on a member, and with every restart: the
            // clients renew them as they move between members.
            (
                "auth",
                vec![
                    FaultKind::KillClientMember,
                    FaultKind::RestartLeader,
                    FaultKind::FreezeFollower,
                    FaultKind::ProxyCut,
                ],
                true,
                StreamMode::Auto,
            ),
        ];
        for (family, faults, auth, stream_mode) in families {
            let faults: Vec<FaultKind> = faults.into_iter().filter(|k| kinds.contains(k)).collect();
            if faults.is_empty() {
                continue;
            }
            specs.push(Spec {
                name: format!("{family}-{}", wire.name()),
                wire,
                stream_mode: if wire == Wire::Gateway {
                    stream_mode
                } else {
                    StreamMode::Auto
                },
                faults,
                auth,
                duration: Duration::ZERO,
            });
        }
    }
    specs
}

/// `--check FILE`: the checkers on a saved history.
fn check_file(path: &std::path::Path, out: &std::path::Path) -> Result<bool, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let history: etcd_robustness::history::History =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let started = std::time::Instant::now();
    let anomalies = etcd_robustness::check::check(&history);
    let name = path
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .trim_end_matches(".history.json")
                .to_string()
        })
        .unwrap_or_else(|| "history".into());
    note!(
        "robustness: {name}: {} ops checked in {:?}: {} anomalies",
        history.ops.len(),
        started.elapsed(),
        anomalies.len()
    );
    if anomalies.is_empty() {
        return Ok(true);
    }
    for anomaly in &anomalies {
        note!("robustness: {name}: ANOMALY: {anomaly}");
    }
    let files = report::write_failure(out, &name, &history, &anomalies)
        .map_err(|e| format!("writing under {}: {e}", out.display()))?;
    for file in &files {
        note!("robustness: {name}: wrote {}", file.display());
    }
    Ok(false)
}

async fn run(args: Args) -> Result<bool, String> {
    if let Some(path) = &args.check {
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| xtask::workspace_root().join("target").join("robustness"));
        return check_file(path, &out);
    }
    let protocols = match args.protocol.as_str() {
        "gateway" => vec![Wire::Gateway],
        "grpc" => vec![Wire::Grpc],
        "all" => vec![Wire::Gateway, Wire::Grpc],
        other => return Err(format!("--protocol {other}: expected gateway, grpc or all")),
    };
    let mut kinds = Vec::new();
    for word in args
        .faults
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
    {
        let named = FaultKind::parse(word).ok_or_else(|| {
            format!(
                "--faults: unknown `{word}` (kinds: {}; families: processes, partitions, clients, all)",
                FaultKind::ALL.map(FaultKind::name).join(", ")
            )
        })?;
        kinds.extend(named);
    }
    let mut specs = catalog(&protocols, &kinds);
    if !args.scenarios.is_empty() {
        specs.retain(|s| args.scenarios.contains(&s.name));
    }
    if args.list {
        for spec in &specs {
            let faults: Vec<String> = spec.faults.iter().map(|k| k.name()).collect();
            println!("{}\t{}\t{}", spec.name, spec.protocol(), faults.join(","));
        }
        return Ok(true);
    }
    if specs.is_empty() {
        return Err("no scenario matches these options (try --list)".into());
    }
    let partitions = match xtask::partition_support() {
        Ok(()) => true,
        Err(e) if xtask::testing::is_ci() => {
            return Err(format!("network partitions are needed in CI: {e}"));
        }
        Err(e) => {
            if specs
                .iter()
                .any(|s| s.faults.iter().any(|k| k.needs_partitions()))
            {
                note!("NOTICE: partitions skipped (set CI=1 to make this an error): {e}");
            }
            false
        }
    };
    let seed = args.seed.unwrap_or_else(rand::random);
    let per_scenario = Duration::from_secs(args.duration.max(1)) / specs.len() as u32;
    for spec in &mut specs {
        spec.duration = per_scenario.max(Duration::from_secs(3));
    }
    let out = args
        .out
        .unwrap_or_else(|| xtask::workspace_root().join("target").join("robustness"));
    let settings = Settings {
        version: args.version.clone(),
        partitions,
    };
    note!(
        "robustness: {} scenarios, {:?} each, etcd {}, seed {seed} (replay: --seed {seed})",
        specs.len(),
        per_scenario,
        args.version
    );
    let mut reports = Vec::new();
    let mut clean = true;
    let jobs = Arc::new(tokio::sync::Semaphore::new(args.jobs.max(1)));
    let mut running = tokio::task::JoinSet::new();
    for spec in specs {
        let scenario_seed = scenario_seed(seed, &spec.name);
        let settings = settings.clone();
        let jobs = jobs.clone();
        running.spawn(async move {
            let _slot = jobs.acquire_owned().await;
            note!(
                "robustness: {} ({}, faults: {}) ...",
                spec.name,
                spec.protocol(),
                spec.faults
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let name = spec.name.clone();
            scenario::run(spec, &settings, scenario_seed)
                .await
                .map_err(|e| format!("scenario {name} (seed {seed}): {e}"))
        });
    }
    while let Some(joined) = running.join_next().await {
        let run = joined.map_err(|e| e.to_string())??;
        let name = run.spec.name.clone();
        let kinds: Vec<String> = run.faults.iter().map(|f| f.kind.name()).collect();
        let mut line = ScenarioReport::new(
            &name,
            run.spec.protocol(),
            &run.history,
            &run.anomalies,
            run.faults.len(),
            run.check_ms,
        )
        .with_version(&run.version)
        .with_seed(run.seed)
        .with_duration_ms(run.elapsed.as_millis() as u64)
        .with_fault_kinds(kinds.iter().map(String::as_str));
        if args.dump {
            let path = out.join(format!("{name}.history.json"));
            std::fs::create_dir_all(&out)
                .and_then(|()| {
                    let text =
                        serde_json::to_string(&run.history).map_err(std::io::Error::other)?;
                    std::fs::write(&path, text)
                })
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            note!("robustness: {name}: wrote {}", path.display());
        }
        for (error, count) in error_summary(&run.history) {
            note!("robustness: {name}: {count} x {error}");
        }
        if let Some(line) = lock_summary(&run.history) {
            note!("robustness: {name}: {line}");
        }
        for watch in &run.history.watches {
            if let Some(ended) = &watch.ended {
                note!("robustness: {name}: watch {} ended: {ended}", watch.id);
            }
        }
        if !run.anomalies.is_empty() {
            clean = false;
            for anomaly in &run.anomalies {
                note!("robustness: {name}: ANOMALY: {anomaly}");
            }
            let files = report::write_failure(&out, &name, &run.history, &run.anomalies)
                .map_err(|e| format!("writing the failing history under {}: {e}", out.display()))?;
            for file in &files {
                note!("robustness: {name}: wrote {}", file.display());
            }
            note!(
                "robustness: replay with --seed {seed} --scenario {name} --version {}",
                args.version
            );
            line = line.with_failure_files(&files);
        }
        println!("{}", line.to_json_line());
        reports.push(line);
    }
    println!("{}", report::summary_line(&reports));
    Ok(clean)
}

/// A scenario's own seed: the run's seed and its name, whatever else runs.
fn scenario_seed(seed: u64, name: &str) -> u64 {
    name.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The errors of failed and unknown operations, most frequent first (the first three),
/// with endpoints and numbers blurred so that alike errors group.
/// What the lock workload's fenced writes came to: `None` without lock holders. The
/// checker proves that no refused write applied; this says how many there were.
fn lock_summary(history: &etcd_robustness::history::History) -> Option<String> {
    use etcd_robustness::history::Outcome;
    if history.locks.is_empty() {
        return None;
    }
    let writes: std::collections::HashSet<u64> = history
        .locks
        .iter()
        .flat_map(|l| l.writes.iter().copied())
        .collect();
    let (mut applied, mut refused, mut unknown, mut other) = (0, 0, 0, 0);
    for op in history.ops.iter().filter(|op| writes.contains(&op.id)) {
        match &op.outcome {
            Outcome::Cas {
                succeeded: true, ..
            } => applied += 1,
            Outcome::Failed { error } if error.contains("not the owner") => refused += 1,
            Outcome::Unknown { .. } => unknown += 1,
            _ => other += 1,
        }
    }
    let stale = history.locks.iter().filter(|l| l.stale).count();
    Some(format!(
        "lock holders: {} holds ({stale} made stale), {} fenced writes: {applied} applied, \
         {refused} refused as not the owner, {unknown} of unknown outcome, {other} not \
         applied otherwise",
        history.locks.len(),
        writes.len()
    ))
}

fn error_summary(history: &etcd_robustness::history::History) -> Vec<(String, usize)> {
    use etcd_robustness::history::Outcome;
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for op in &history.ops {
        let (Outcome::Failed { error } | Outcome::Unknown { error }) = &op.outcome else {
            continue;
        };
        let kind = if op.outcome.is_unknown() {
            "unknown"
        } else {
            "failed"
        };
        let blurred: String = error
            .chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect();
        *counts.entry(format!("{kind}: {blurred}")).or_insert(0) += 1;
    }
    let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts.truncate(3);
    counts
}
