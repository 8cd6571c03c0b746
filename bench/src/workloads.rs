//! The workloads, written once for every client.

use super::cpu::{process_cpu, server_cpu};
use super::options::{Options, Workload};
use super::report::Line;
use bytes::Bytes;
use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Any error of a benchmark client.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Results of benchmark calls.
pub type Res<T> = Result<T, BoxError>;

/// The prefix every benchmark key has.
pub const PREFIX: &str = "bench/";

/// How long one workload may take before the run is abandoned (a lost watch event...).
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Key number `i`: `bench/{i:08}`.
pub fn key(i: usize) -> String {
    format!("{PREFIX}{i:08}")
}

/// A value of `size` bytes, not all zeros (printable, so it also reads well in etcdctl).
pub fn value(size: usize) -> Bytes {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// What a client under test must do. Keys are named by number ([`key`]); the value is the
/// client's own, of `--value-size` bytes. Every method is one request (one round trip).
pub trait BenchClient: Clone + Send + Sync + 'static {
    /// A prefix watch on `bench/`.
    type Watcher: Watcher;

    /// Puts the value at key `i`.
    fn put(&self, i: usize) -> impl Future<Output = Res<()>> + Send;

    /// Gets key `i` (linearizable); true when found (a client that decodes nothing says true).
    fn get(&self, i: usize) -> impl Future<Output = Res<bool>> + Send;

    /// Ranges over the whole `bench/` prefix; the number of key-values decoded, or `None`
    /// for a client that decodes nothing.
    fn range_all(&self) -> impl Future<Output = Res<Option<usize>>> + Send;

    /// Deletes every key under `bench/`.
    fn delete_all(&self) -> impl Future<Output = Res<()>> + Send;

    /// The mod revision of key `i` (which exists).
    fn mod_revision(&self, i: usize) -> impl Future<Output = Res<i64>> + Send;

    /// A compare-and-swap transaction: if key `i`'s mod revision is `expected`, put the
    /// value. Returns the key's new mod revision when it succeeded.
    fn cas(&self, i: usize, expected: i64) -> impl Future<Output = Res<Option<i64>>> + Send;

    /// Opens a watch on the `bench/` prefix; returns once etcd confirmed it.
    fn watch_all(&self) -> impl Future<Output = Res<Self::Watcher>> + Send;

    /// Grants a lease of `ttl` seconds; returns its ID.
    fn lease_grant(&self, ttl: i64) -> impl Future<Output = Res<i64>> + Send;

    /// One keep-alive round trip of lease `id`.
    fn lease_keep_alive(&self, id: i64) -> impl Future<Output = Res<()>> + Send;
}

/// An open watch.
pub trait Watcher: Send + 'static {
    /// Waits for the next message; returns how many events it carried.
    fn next_events(&mut self) -> impl Future<Output = Res<usize>> + Send;
}

/// Runs `op(client, i)` for every `i` in `0..n`, `concurrency` at a time, each in-flight
/// slot a task of its own; returns the latency of each call in microseconds (unsorted).
async fn run_concurrent<C, F, Fut>(client: &C, n: usize, concurrency: usize, op: F) -> Res<Vec<u64>>
where
    C: BenchClient,
    F: Fn(C, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Res<()>> + Send,
{
    if concurrency <= 1 {
        let mut latencies = Vec::with_capacity(n);
        for i in 0..n {
            let start = Instant::now();
            op(client.clone(), i).await?;
            latencies.push(start.elapsed().as_micros() as u64);
        }
        return Ok(latencies);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..concurrency.min(n))
        .map(|_| {
            let (client, next, op) = (client.clone(), next.clone(), op.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(n / concurrency + 1);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, BoxError>(latencies);
                    }
                    let start = Instant::now();
                    op(client.clone(), i).await?;
                    latencies.push(start.elapsed().as_micros() as u64);
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

/// Puts keys `0..n`, 64 in flight (preparation).
async fn put_keys<C: BenchClient>(client: &C, n: usize) -> Res<()> {
    run_concurrent(client, n, 64, |c: C, i| async move { c.put(i).await }).await?;
    Ok(())
}

/// The measured part's start: wall clock and CPU counters.
struct Meter {
    wall: Instant,
    cpu: Duration,
    server_pid: Option<u32>,
    server: Option<Duration>,
}

impl Meter {
    fn start(server_pid: Option<u32>) -> Meter {
        Meter {
            server: server_pid.and_then(server_cpu),
            server_pid,
            cpu: process_cpu(),
            wall: Instant::now(),
        }
    }

    /// (wall, client CPU, server CPU) since the start.
    fn stop(&self) -> (Duration, Duration, Option<Duration>) {
        let wall = self.wall.elapsed();
        let cpu = process_cpu().saturating_sub(self.cpu);
        let server = match (self.server_pid.and_then(server_cpu), self.server) {
            (Some(end), Some(start)) => Some(end.saturating_sub(start)),
            _ => None,
        };
        (wall, cpu, server)
    }
}

/// Runs one workload: preparation (not measured), then the measured part.
pub async fn run_workload<C: BenchClient>(
    client: &C,
    name: &str,
    opts: &Options,
    workload: Workload,
) -> Res<Line> {
    match tokio::time::timeout(WORKLOAD_TIMEOUT, measure(client, name, opts, workload)).await {
        Ok(result) => result,
        Err(_) => Err(format!("{workload} did not finish within {WORKLOAD_TIMEOUT:?}").into()),
    }
}

async fn measure<C: BenchClient>(
    client: &C,
    name: &str,
    opts: &Options,
    workload: Workload,
) -> Res<Line> {
    let n = opts.n(workload);
    let concurrency = opts.concurrency(workload);
    client.delete_all().await?;
    let mut ops = n;
    let meter;
    let mut latencies =
        match workload {
            Workload::PutSeq | Workload::PutConc => {
                meter = Meter::start(opts.server_pid);
                run_concurrent(
                    client,
                    n,
                    concurrency,
                    |c: C, i| async move { c.put(i).await },
                )
                .await?
            }
            Workload::GetSeq | Workload::GetConc => {
                put_keys(client, n).await?;
                meter = Meter::start(opts.server_pid);
                run_concurrent(client, n, concurrency, |c: C, i| async move {
                    if c.get(i).await? {
                        Ok(())
                    } else {
                        Err(format!("key {} not found", key(i)).into())
                    }
                })
                .await?
            }
            Workload::RangeAll => {
                const RANGES: usize = 20;
                put_keys(client, n).await?;
                ops = RANGES;
                meter = Meter::start(opts.server_pid);
                run_concurrent(client, RANGES, 1, move |c: C, _| async move {
                    match c.range_all().await? {
                        Some(found) if found != n => {
                            Err(format!("the range returned {found} keys, not {n}").into())
                        }
                        _ => Ok(()),
                    }
                })
                .await?
            }
            Workload::TxnSeq => {
                client.put(0).await?;
                let mut revision = client.mod_revision(0).await?;
                let mut latencies = Vec::with_capacity(n);
                meter = Meter::start(opts.server_pid);
                for _ in 0..n {
                    let start = Instant::now();
                    revision = client
                        .cas(0, revision)
                        .await?
                        .ok_or("a compare-and-swap failed: its compare did not hold")?;
                    latencies.push(start.elapsed().as_micros() as u64);
                }
                latencies
            }
            Workload::Watch => {
                let mut watcher = client.watch_all().await?;
                meter = Meter::start(opts.server_pid);
                let puts =
                    {
                        let client = client.clone();
                        tokio::spawn(async move {
                            run_concurrent(&client, n, concurrency, |c: C, i| async move {
                                c.put(i).await
                            })
                            .await
                        })
                    };
                let mut events = 0;
                while events < n {
                    events += watcher.next_events().await?;
                }
                puts.await??
            }
            Workload::LeaseKeepalive => {
                let id = client.lease_grant(60).await?;
                meter = Meter::start(opts.server_pid);
                run_concurrent(client, n, 1, move |c: C, _| async move {
                    c.lease_keep_alive(id).await
                })
                .await?
            }
        };
    let (wall, client_cpu, server_cpu) = meter.stop();
    latencies.sort_unstable();
    Ok(Line {
        client: name.to_string(),
        workload: workload.name(),
        n,
        concurrency,
        ops,
        wall,
        latencies_us: latencies,
        client_cpu,
        server_cpu,
    })
}

/// Runs every workload of `opts` with `client` and prints one JSON line each on stdout
/// (notes go to stderr). Stops at the first failure.
pub async fn run_all<C: BenchClient>(client: C, name: &str, opts: &Options) -> Res<()> {
    for &workload in &opts.workloads {
        let line = run_workload(&client, name, opts, workload)
            .await
            .map_err(|e| format!("{name} {workload}: {e}"))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", line.to_json())?;
        out.flush()?;
        if workload == Workload::RangeAll {
            eprintln!(
                "etcd-bench: {name} range-all: {:.3} µs of client CPU per key-value",
                line.cpu_us_per_op() / line.n.max(1) as f64
            );
        }
    }
    client.delete_all().await?;
    Ok(())
}

/// The `main` of a benchmark binary: parses the options, builds the runtime and runs
/// `run(client name, options)` on it, which makes the client named by `--client` and hands
/// it to [`run_all`]. Returns the process exit code.
pub fn main_with<F, Fut>(default_client: &str, run: F) -> std::process::ExitCode
where
    F: FnOnce(String, Options) -> Fut,
    Fut: Future<Output = Res<()>>,
{
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let name = opts
        .client
        .clone()
        .unwrap_or_else(|| default_client.to_string());
    let runtime = match opts.runtime.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("etcd-bench: cannot build the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(name, opts)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("etcd-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
