//! `cargo xtask bench`: the workloads of `shared/bench-spec.md` against a throwaway etcd,
//! with our client, the raw-gateway ceiling and (on request) the gRPC client `etcd-client`.
//!
//! stdout carries only the benchmark binaries' JSON lines; progress and the side-by-side
//! table go to stderr.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use xtask::{workspace_root, EtcdBuilder};

use crate::{cargo_cmd, last_option};

pub const OPTIONS: [&str; 12] = [
    "--client",
    "--baseline",
    "--version",
    "--endpoint",
    "--workload",
    "--n",
    "--concurrency",
    "--value-size",
    "--runtime",
    "--repeat",
    "--server-pid",
    "--lease-seconds",
];

/// What `--baseline` appends to the names of the clients it runs again.
const BASE_SUFFIX: &str = "@base";

/// Workloads in the spec's order.
const WORKLOADS: [&str; 13] = [
    "put-seq",
    "put-conc",
    "get-seq",
    "get-conc",
    "range-all",
    "txn-seq",
    "watch",
    "lease-keepalive",
    "watch-many",
    "lease-many",
    "cache-get",
    "cache-consistent-get",
    "cache-lag",
];

/// Workloads with a table of their own (their useful figures are the extra fields), after
/// the main one.
const MANY: [&str; 2] = ["watch-many", "lease-many"];

const CLIENTS: [&str; 4] = ["ours", "ours-grpc", "ceiling", "etcd-client"];

/// Options forwarded to the benchmark binaries as they are.
const FORWARDED: [&str; 6] = [
    "--n",
    "--lease-seconds",
    "--concurrency",
    "--value-size",
    "--runtime",
    "--workload",
];

pub fn run(opts: &[(String, String)]) -> Result<(), String> {
    let clients = clients(opts)?;
    let workloads: Vec<String> = {
        let chosen: Vec<String> = opts
            .iter()
            .filter(|(n, _)| n == "--workload")
            .map(|(_, v)| v.clone())
            .collect();
        for w in &chosen {
            if !WORKLOADS.contains(&w.as_str()) {
                return Err(format!(
                    "unknown workload `{w}` (one of {})",
                    WORKLOADS.join(", ")
                ));
            }
        }
        if chosen.is_empty() {
            WORKLOADS.iter().map(|w| w.to_string()).collect()
        } else {
            chosen
        }
    };
    let repeat: usize = match last_option(opts, "--repeat") {
        Some(r) => r
            .parse()
            .ok()
            .filter(|r| *r > 0)
            .ok_or_else(|| format!("--repeat wants a positive number, not `{r}`"))?,
        None => 1,
    };
    let runtime = last_option(opts, "--runtime").unwrap_or("multi");
    if !["multi", "current"].contains(&runtime) {
        return Err(format!("--runtime: multi or current, not `{runtime}`"));
    }
    let forwarded: Vec<String> = opts
        .iter()
        .filter(|(n, _)| FORWARDED.contains(&n.as_str()) && n != "--workload")
        .flat_map(|(n, v)| [n.clone(), v.clone()])
        .collect();

    let root = workspace_root();
    let mut binaries: BTreeMap<String, PathBuf> = build(&root, &clients)?
        .into_iter()
        .map(|(c, b)| (c.to_string(), b))
        .collect();
    // `--baseline BIN`: an etcd-bench binary built from another commit runs ours and
    // ours-grpc again as `ours@base` and `ours-grpc@base`, in the same run, so that a change
    // is compared with its base on the same server state and machine load.
    let mut clients = clients;
    if let Some(base) = last_option(opts, "--baseline") {
        let base = PathBuf::from(base);
        if !base.is_file() {
            return Err(format!(
                "--baseline {}: no such binary (build etcd-bench from the base commit: \
                 cargo build --release -p etcd-bench)",
                base.display()
            ));
        }
        // Each base right after its current build, so that both meet the same server state.
        clients = clients
            .into_iter()
            .flat_map(|c| {
                let again = ["ours", "ours-grpc"]
                    .contains(&c.as_str())
                    .then(|| format!("{c}{BASE_SUFFIX}"));
                std::iter::once(c).chain(again)
            })
            .collect();
        for c in clients.iter().filter(|c| c.ends_with(BASE_SUFFIX)) {
            binaries.insert(c.clone(), base.clone());
        }
    }

    // The server: the given endpoint, or a throwaway one.
    let (etcd, endpoint, server_pid, version) = match last_option(opts, "--endpoint") {
        Some(endpoint) => (
            None,
            endpoint.to_string(),
            last_option(opts, "--server-pid").map(str::to_string),
            "external".to_string(),
        ),
        None => {
            // By default the server of docs/benchmarks.md's figures (`any` would now take
            // the newest 3.5 found, 3.5.30 where it was fetched).
            let version = last_option(opts, "--version").unwrap_or(xtask::FETCHED_3_5_VERSION);
            let etcd = EtcdBuilder::new()
                .version(version)
                .start()
                .map_err(|e| e.to_string())?;
            let endpoint = etcd.endpoint(0);
            let pid = etcd.pid(0).map(|p| p.to_string());
            let version = etcd.version().to_string();
            (Some(etcd), endpoint, pid, version)
        }
    };
    eprintln!(
        "bench: etcd {version} at {endpoint}; clients {}; runtime {runtime}; {repeat} run(s)",
        clients.join(", ")
    );

    // Workload by workload, each client in turn, so that every client meets the server in
    // the same state (its database grows over the run).
    let mut results: BTreeMap<(String, String), Vec<Row>> = BTreeMap::new();
    for round in 0..repeat {
        // A base and its current build swap places every other round: the second to run a
        // workload meets a warmer server (measured: +15 % ops on gRPC get-seq), and
        // alternating cancels that out of the medians.
        let order = round_order(&clients, round);
        for workload in &workloads {
            for client in &order {
                let binary = &binaries[client.as_str()];
                let mut cmd = Command::new(binary);
                cmd.args([
                    "--client",
                    client.strip_suffix(BASE_SUFFIX).unwrap_or(client),
                    "--endpoint",
                    &endpoint,
                    "--workload",
                    workload,
                ])
                .args(&forwarded)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
                if let Some(pid) = &server_pid {
                    cmd.args(["--server-pid", pid]);
                }
                eprintln!("bench: [{}/{repeat}] {client} {workload}", round + 1);
                let rows = run_binary(cmd, binary)?;
                for mut row in rows {
                    // The baseline binary names itself `ours`: keep its rows apart.
                    row.client.clone_from(client);
                    results
                        .entry((row.workload.clone(), row.client.clone()))
                        .or_default()
                        .push(row);
                }
            }
        }
    }
    drop(etcd);
    eprintln!();
    eprint!(
        "{}",
        table(&version, runtime, repeat, &workloads, &clients, &results)
    );
    Ok(())
}

/// The clients in the order of round `round`: as given in even rounds; in odd ones each
/// `--baseline` client runs before its current build instead of after it.
fn round_order(clients: &[String], round: usize) -> Vec<String> {
    let mut order = clients.to_vec();
    if round % 2 == 1 {
        for i in 1..order.len() {
            if order[i].ends_with(BASE_SUFFIX) {
                order.swap(i - 1, i);
            }
        }
    }
    order
}

/// The clients named by `--client` (repeatable, comma-separated; `all` for the four).
/// Default: ours and the ceiling (etcd-client is slow to build and needs protoc).
fn clients(opts: &[(String, String)]) -> Result<Vec<String>, String> {
    let mut clients: Vec<String> = Vec::new();
    for (_, value) in opts.iter().filter(|(n, _)| n == "--client") {
        for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let names: Vec<&str> = if name == "all" {
                CLIENTS.to_vec()
            } else if CLIENTS.contains(&name) {
                vec![name]
            } else {
                return Err(format!(
                    "unknown client `{name}` (ours, ours-grpc, ceiling, etcd-client or all)"
                ));
            };
            for n in names {
                if !clients.iter().any(|c| c == n) {
                    clients.push(n.to_string());
                }
            }
        }
    }
    if clients.is_empty() {
        clients = vec!["ours".into(), "ceiling".into()];
    }
    Ok(clients)
}

/// Builds the binaries the clients need (release); client name → binary path.
fn build(root: &Path, clients: &[String]) -> Result<BTreeMap<&'static str, PathBuf>, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let mut binaries = BTreeMap::new();
    if clients
        .iter()
        .any(|c| c == "ours" || c == "ours-grpc" || c == "ceiling")
    {
        eprintln!("bench: cargo build --release -p etcd-bench");
        let status = cargo_cmd(&["build", "--release", "-q", "-p", "etcd-bench"])
            .status()
            .map_err(|e| format!("running cargo: {e}"))?;
        if !status.success() {
            return Err(format!("building etcd-bench failed ({status})"));
        }
        let bin = target.join("release").join("etcd-bench");
        binaries.insert("ours", bin.clone());
        binaries.insert("ours-grpc", bin.clone());
        binaries.insert("ceiling", bin);
    }
    if clients.iter().any(|c| c == "etcd-client") {
        check_protoc()?;
        let manifest = root.join("bench").join("grpc").join("Cargo.toml");
        eprintln!(
            "bench: cargo build --release --manifest-path {} (the gRPC reference; slow the first time)",
            manifest.display()
        );
        let target_arg = target.to_string_lossy().into_owned();
        let manifest_arg = manifest.to_string_lossy().into_owned();
        let status = cargo_cmd(&[
            "build",
            "--release",
            "-q",
            "--manifest-path",
            &manifest_arg,
            "--target-dir",
            &target_arg,
        ])
        .status()
        .map_err(|e| format!("running cargo: {e}"))?;
        if !status.success() {
            return Err(format!("building bench/grpc failed ({status})"));
        }
        binaries.insert(
            "etcd-client",
            target.join("release").join("etcd-bench-grpc"),
        );
    }
    Ok(binaries)
}

/// etcd-client's build generates its gRPC code with `protoc`: say so plainly when it is
/// missing rather than failing deep inside a build script.
fn check_protoc() -> Result<(), String> {
    let protoc = std::env::var_os("PROTOC").unwrap_or_else(|| "protoc".into());
    match Command::new(&protoc)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        _ => Err(format!(
            "--client etcd-client needs the protobuf compiler `protoc` to build the gRPC \
             client, and `{}` was not found or failed: install it \
             (Debian/Ubuntu: apt-get install -y protobuf-compiler) or set PROTOC to its path",
            protoc.to_string_lossy()
        )),
    }
}

/// Runs one benchmark binary, forwarding its JSON lines to stdout.
fn run_binary(mut cmd: Command, binary: &Path) -> Result<Vec<Row>, String> {
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", binary.display()))?;
    let mut rows = Vec::new();
    if let Some(out) = child.stdout.take() {
        let stdout = std::io::stdout();
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| format!("reading {}: {e}", binary.display()))?;
            {
                let mut lock = stdout.lock();
                let _ = writeln!(lock, "{line}");
                let _ = lock.flush();
            }
            if let Some(row) = Row::parse(&line) {
                rows.push(row);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {}: {e}", binary.display()))?;
    if !status.success() {
        return Err(format!("{} failed ({status})", binary.display()));
    }
    Ok(rows)
}

/// The fields of one JSON line the table shows.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    client: String,
    workload: String,
    n: f64,
    ops_per_s: f64,
    p50_us: f64,
    cpu_us_per_op: f64,
    server_cpu_us_per_op: Option<f64>,
    /// watch-many and lease-many's extra fields, when present.
    watches_per_s: Option<f64>,
    client_conns: Option<f64>,
    client_rss_mb: Option<f64>,
    leases_lost: Option<f64>,
}

impl Row {
    fn parse(line: &str) -> Option<Row> {
        Some(Row {
            client: json_str(line, "client")?,
            workload: json_str(line, "workload")?,
            n: json_num(line, "n")?,
            ops_per_s: json_num(line, "ops_per_s")?,
            p50_us: json_num(line, "p50_us")?,
            cpu_us_per_op: json_num(line, "cpu_us_per_op")?,
            server_cpu_us_per_op: json_num(line, "server_cpu_us_per_op"),
            watches_per_s: json_num(line, "watches_per_s"),
            client_conns: json_num(line, "client_conns"),
            client_rss_mb: json_num(line, "client_rss_mb"),
            leases_lost: json_num(line, "leases_lost"),
        })
    }
}

/// The raw text after `"field":` in a flat JSON object.
fn json_raw<'a>(line: &'a str, field: &str) -> Option<&'a str> {
    let needle = format!("\"{field}\":");
    let start = line.find(&needle)? + needle.len();
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

fn json_str(line: &str, field: &str) -> Option<String> {
    let raw = json_raw(line, field)?;
    Some(raw.strip_prefix('"')?.strip_suffix('"')?.to_string())
}

fn json_num(line: &str, field: &str) -> Option<f64> {
    json_raw(line, field)?.parse().ok()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Medians over the runs of one (workload, client).
#[derive(Debug, Clone, Copy)]
struct Cell {
    n: f64,
    ops: f64,
    p50: f64,
    cpu: f64,
    server_cpu: Option<f64>,
    watches_per_s: Option<f64>,
    conns: Option<f64>,
    rss_mb: Option<f64>,
    /// The largest over the runs: one run losing a lease is what matters.
    leases_lost: Option<f64>,
}

fn cell(rows: &[Row]) -> Cell {
    let med = |field: fn(&Row) -> Option<f64>| {
        let values: Vec<f64> = rows.iter().filter_map(field).collect();
        (!values.is_empty()).then(|| median(values))
    };
    Cell {
        n: rows.first().map_or(0.0, |r| r.n),
        ops: median(rows.iter().map(|r| r.ops_per_s).collect()),
        p50: median(rows.iter().map(|r| r.p50_us).collect()),
        cpu: median(rows.iter().map(|r| r.cpu_us_per_op).collect()),
        server_cpu: med(|r| r.server_cpu_us_per_op),
        watches_per_s: med(|r| r.watches_per_s),
        conns: med(|r| r.client_conns),
        rss_mb: med(|r| r.client_rss_mb),
        leases_lost: rows.iter().filter_map(|r| r.leases_lost).reduce(f64::max),
    }
}

/// A number for a table cell, `-` when unknown.
fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".to_string(), |v| format!("{v:.decimals$}"))
}

fn table(
    version: &str,
    runtime: &str,
    repeat: usize,
    workloads: &[String],
    clients: &[String],
    results: &BTreeMap<(String, String), Vec<Row>>,
) -> String {
    let mut out = String::new();
    let runs = if repeat == 1 {
        "1 run".to_string()
    } else {
        format!("medians of {repeat} runs")
    };
    // watch-many and lease-many have tables of their own, below.
    let main: Vec<&String> = workloads
        .iter()
        .filter(|w| !MANY.contains(&w.as_str()))
        .collect();
    out += &format!("bench: etcd {version}, runtime {runtime}, {runs}.");
    if !main.is_empty() {
        out += " Per client: ops/s | p50 µs | client CPU µs/op | server CPU µs/op";
    }
    out.push('\n');
    let mut header = format!("{:<16}", "workload");
    for c in clients {
        header += &format!(" | {:^34}", c);
    }
    let compare_ceiling =
        clients.iter().any(|c| c == "ours") && clients.iter().any(|c| c == "ceiling");
    let compare_grpc =
        clients.iter().any(|c| c == "ours") && clients.iter().any(|c| c == "etcd-client");
    let compare_native =
        clients.iter().any(|c| c == "ours-grpc") && clients.iter().any(|c| c == "etcd-client");
    if compare_ceiling {
        header += " | ours/ceiling";
    }
    if compare_grpc {
        header += " | ours vs etcd-client: cpu, p50";
    }
    if compare_native {
        header += " | ours-grpc vs etcd-client: ops, cpu, p50";
    }
    // With `--baseline`: each of ours against its base, ops and client CPU.
    let against_base: Vec<&String> = clients
        .iter()
        .filter(|c| clients.contains(&format!("{c}{BASE_SUFFIX}")))
        .collect();
    for c in &against_base {
        header += &format!(" | {c} vs base: ops, cpu");
    }
    if !main.is_empty() {
        out += &header;
        out.push('\n');
        out += &"-".repeat(header.chars().count());
        out.push('\n');
    }
    let mut range_notes = Vec::new();
    for w in main {
        let cells: Vec<Option<Cell>> = clients
            .iter()
            .map(|c| results.get(&(w.clone(), c.clone())).map(|rows| cell(rows)))
            .collect();
        let mut line = format!("{w:<16}");
        for cell in &cells {
            line += &match cell {
                Some(c) => format!(
                    " | {:>8.0} {:>7.0} {:>7.1} {:>8}",
                    c.ops,
                    c.p50,
                    c.cpu,
                    c.server_cpu.map_or("-".to_string(), |s| format!("{s:.0}"))
                ),
                None => format!(" | {:^34}", "-"),
            };
        }
        let get = |name: &str| {
            clients
                .iter()
                .position(|c| c == name)
                .and_then(|i| cells[i])
        };
        if compare_ceiling {
            line += &match (get("ours"), get("ceiling")) {
                (Some(o), Some(c)) if w != "watch" || c.ops > 0.0 => {
                    format!(" | {:>11.0}%", 100.0 * o.ops / c.ops)
                }
                _ => format!(" | {:>12}", "-"),
            };
        }
        if compare_grpc {
            line += &match (get("ours"), get("etcd-client")) {
                (Some(o), Some(g)) => {
                    format!(" | {:>5.2}x, {:>5.2}x", o.cpu / g.cpu, o.p50 / g.p50)
                }
                _ => " | -".to_string(),
            };
        }
        if compare_native {
            line += &match (get("ours-grpc"), get("etcd-client")) {
                (Some(o), Some(g)) => format!(
                    " | {:>5.2}x, {:>5.2}x, {:>5.2}x",
                    o.ops / g.ops,
                    o.cpu / g.cpu,
                    o.p50 / g.p50
                ),
                _ => " | -".to_string(),
            };
        }
        for c in &against_base {
            line += &match (get(c), get(&format!("{c}{BASE_SUFFIX}"))) {
                (Some(o), Some(b)) => {
                    format!(" | {:>5.2}x, {:>5.2}x", o.ops / b.ops, o.cpu / b.cpu)
                }
                _ => " | -".to_string(),
            };
        }
        out += &line;
        out.push('\n');
        if w == "range-all" {
            for (c, cell) in clients.iter().zip(&cells) {
                if let Some(cell) = cell {
                    range_notes.push(format!("{c} {:.3}", cell.cpu / cell.n.max(1.0)));
                }
            }
        }
    }
    if !range_notes.is_empty() {
        out += &format!(
            "range-all client CPU per key-value (µs): {}\n",
            range_notes.join(", ")
        );
    }
    let cells = |w: &str| -> Vec<(&String, Option<Cell>)> {
        clients
            .iter()
            .map(|c| {
                (
                    c,
                    results
                        .get(&(w.to_string(), c.clone()))
                        .map(|rows| cell(rows)),
                )
            })
            .collect()
    };
    if workloads.iter().any(|w| w == "watch-many") {
        out += &many_table(
            "watch-many",
            "watches/s | events/s | p50 µs (put start to event) | client CPU µs/event | server CPU µs/event | conns | RSS MiB",
            &cells("watch-many"),
            |c| {
                [
                    opt(c.watches_per_s, 0),
                    format!("{:.0}", c.ops),
                    format!("{:.0}", c.p50),
                    format!("{:.1}", c.cpu),
                    opt(c.server_cpu, 1),
                    opt(c.conns, 0),
                    opt(c.rss_mb, 1),
                ]
                .to_vec()
            },
        );
    }
    if workloads.iter().any(|w| w == "lease-many") {
        out += &many_table(
            "lease-many",
            "client CPU µs per lease-second | server CPU µs per lease-second | conns | leases lost",
            &cells("lease-many"),
            |c| {
                [
                    format!("{:.2}", c.cpu),
                    opt(c.server_cpu, 2),
                    opt(c.conns, 0),
                    opt(c.leases_lost, 0),
                ]
                .to_vec()
            },
        );
    }
    out
}

/// One workload's own table: a row per client, the columns `columns` (separated by ` | `).
fn many_table(
    workload: &str,
    columns: &str,
    cells: &[(&String, Option<Cell>)],
    values: impl Fn(&Cell) -> Vec<String>,
) -> String {
    let names: Vec<&str> = columns.split(" | ").collect();
    let mut out = format!("\n{workload}");
    if let Some(n) = cells.iter().find_map(|(_, c)| c.map(|c| c.n)) {
        out += &format!(" (n = {n:.0})");
    }
    out += ":\n";
    let mut rows = vec![std::iter::once("client".to_string())
        .chain(names.iter().map(|s| s.to_string()))
        .collect::<Vec<_>>()];
    for (client, cell) in cells {
        let mut row = vec![client.to_string()];
        match cell {
            Some(c) => row.extend(values(c)),
            None => row.extend(names.iter().map(|_| "-".to_string())),
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for (k, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (v, w))| {
                let pad = w - v.chars().count();
                if i == 0 || k == 0 {
                    format!("{v}{}", " ".repeat(pad))
                } else {
                    format!("{}{v}", " ".repeat(pad))
                }
            })
            .collect();
        out += line.join(" | ").trim_end();
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_prints_a_table() {
        let line = r#"{"client":"ours","workload":"put-seq","n":5000,"concurrency":1,"wall_s":1.23,"ops_per_s":4065.0,"p50_us":230,"p99_us":610,"client_cpu_s":0.41,"cpu_us_per_op":82.0}"#;
        let row = Row::parse(line).unwrap();
        assert_eq!(row.client, "ours");
        assert_eq!(row.workload, "put-seq");
        assert_eq!(row.ops_per_s, 4065.0);
        assert_eq!(row.server_cpu_us_per_op, None);
        let mut ceiling = row.clone();
        ceiling.client = "ceiling".into();
        ceiling.ops_per_s = 5000.0;
        let mut results = BTreeMap::new();
        results.insert(("put-seq".to_string(), "ours".to_string()), vec![row]);
        results.insert(
            ("put-seq".to_string(), "ceiling".to_string()),
            vec![ceiling],
        );
        let t = table(
            "3.5.1",
            "multi",
            1,
            &["put-seq".to_string()],
            &["ours".to_string(), "ceiling".to_string()],
            &results,
        );
        assert!(t.contains("81%"), "{t}");
        let many = r#"{"client":"ours","workload":"watch-many","n":100,"concurrency":64,"wall_s":0.1,"ops_per_s":1000.0,"p50_us":900,"p99_us":2000,"client_cpu_s":0.01,"cpu_us_per_op":100.00,"watches_per_s":2500.0,"watch_cpu_us":80.00,"client_conns":101,"client_rss_mb":3.5}"#;
        let row = Row::parse(many).unwrap();
        assert_eq!(row.client_conns, Some(101.0));
        let mut results = BTreeMap::new();
        results.insert(("watch-many".to_string(), "ours".to_string()), vec![row]);
        let t = table(
            "3.5.1",
            "multi",
            1,
            &["watch-many".to_string()],
            &["ours".to_string(), "ceiling".to_string()],
            &results,
        );
        assert!(t.contains("watch-many (n = 100)"), "{t}");
        assert!(t.contains("ours    |      2500 |"), "{t}");
        assert!(!t.contains("\nwatch-many       |"), "{t}");
        assert!(!t.contains("Per client"), "{t}");
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(
            clients(&[("--client".into(), "all".into())]).unwrap(),
            CLIENTS
        );
        assert_eq!(clients(&[]).unwrap(), ["ours", "ceiling"]);
        assert!(clients(&[("--client".into(), "nope".into())]).is_err());
    }

    #[test]
    fn compares_with_the_baseline() {
        let line = r#"{"client":"ours","workload":"put-seq","n":5000,"concurrency":1,"wall_s":1.0,"ops_per_s":4400.0,"p50_us":230,"p99_us":610,"client_cpu_s":0.4,"cpu_us_per_op":80.0}"#;
        let now = Row::parse(line).unwrap();
        let mut base = now.clone();
        base.client = format!("ours{BASE_SUFFIX}");
        base.ops_per_s = 4000.0;
        base.cpu_us_per_op = 100.0;
        let mut results = BTreeMap::new();
        results.insert(("put-seq".to_string(), "ours".to_string()), vec![now]);
        results.insert(("put-seq".to_string(), base.client.clone()), vec![base]);
        let t = table(
            "3.5.1",
            "multi",
            1,
            &["put-seq".to_string()],
            &["ours".to_string(), format!("ours{BASE_SUFFIX}")],
            &results,
        );
        assert!(t.contains("ours vs base: ops, cpu"), "{t}");
        assert!(t.contains(" 1.10x,  0.80x"), "{t}");
        let clients = ["ours", "ours@base", "ceiling"].map(String::from);
        assert_eq!(round_order(&clients, 0), clients);
        assert_eq!(round_order(&clients, 1), ["ours@base", "ours", "ceiling"]);
    }
}
