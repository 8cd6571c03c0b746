//! The workloads, written once for every client.

use super::cpu::{process_cpu, server_cpu};
use super::options::{Options, Workload};
use super::report::{Extra, Line};
use bytes::Bytes;
use etcd_test_support::procfs;
use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

/// The TTL of lease-many's leases, in seconds.
const LEASE_MANY_TTL: i64 = 10;

const MIB: f64 = 1024.0 * 1024.0;

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
    /// An open watch: on the `bench/` prefix, or on one key.
    type Watcher: Watcher;

    /// Leases kept alive (lease-many); dropping the value stops the keep-alives.
    type Leases: Send + Sync + 'static;

    /// A cache of the `bench/` prefix (the cache workloads); [`NoCache`] for a client
    /// without one.
    type Cache: BenchCache;

    /// Another client of the same kind, with connections of its own (watch-many's putter).
    fn another(&self) -> impl Future<Output = Res<Self>> + Send;

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

    /// Opens a watch on key `i` alone; returns once etcd confirmed it.
    fn watch_key(&self, i: usize) -> impl Future<Output = Res<Self::Watcher>> + Send;

    /// Grants `n` leases of `ttl` seconds and keeps each alive the way the client's users
    /// do (its keeper API, or a refresh every TTL/3), until the value is dropped.
    fn keep_leases(&self, n: usize, ttl: i64) -> impl Future<Output = Res<Self::Leases>> + Send;

    /// Stops keeping `leases` alive and revokes them; returns how many were lost before:
    /// reported lost by their keeper, or unknown to etcd (time-to-live).
    fn end_leases(&self, leases: Self::Leases) -> impl Future<Output = Res<usize>> + Send;

    /// A cache of the `bench/` prefix, loaded; `None` for a client without one (the cache
    /// workloads are then skipped: no line).
    fn cache(&self) -> impl Future<Output = Res<Option<Self::Cache>>> + Send;

    /// How often the client's watch and keep-alive streams were dropped and reopened so far,
    /// for clients that count it: on a healthy server, every one is a needless move.
    fn stream_reconnects(&self) -> Option<usize> {
        None
    }
}

/// A client's cache of the `bench/` prefix.
pub trait BenchCache: Send + Sync + 'static {
    /// What [`BenchCache::updates`] returns: each applied revision as a message.
    type Updates: Watcher;

    /// Gets key `i` from memory; true when found.
    fn get(&self, i: usize) -> bool;

    /// A consistent (linearizable) read of key `i` through the cache; true when found.
    fn consistent_get(&self, i: usize) -> impl Future<Output = Res<bool>> + Send;

    /// The revisions the cache applies from now on, one message each.
    fn updates(&self) -> Res<Self::Updates>;

    /// The cache's size in bytes, as it reports it.
    fn size_bytes(&self) -> usize;
}

/// The cache of a client that has none.
pub enum NoCache {}

impl Watcher for NoCache {
    async fn next_events(&mut self) -> Res<usize> {
        match *self {}
    }
}

impl BenchCache for NoCache {
    type Updates = NoCache;
    fn get(&self, _: usize) -> bool {
        match *self {}
    }
    async fn consistent_get(&self, _: usize) -> Res<bool> {
        match *self {}
    }
    fn updates(&self) -> Res<NoCache> {
        match *self {}
    }
    fn size_bytes(&self) -> usize {
        match *self {}
    }
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
) -> Res<Option<Line>> {
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
) -> Res<Option<Line>> {
    let n = opts.n(workload);
    let concurrency = opts.concurrency(workload);
    client.delete_all().await?;
    let mut ops = n;
    let meter;
    // Set by a workload that stops measuring before its own epilogue.
    let mut measured = None;
    let mut extra = Vec::new();
    let reconnects_before = client.stream_reconnects();
    // What must outlive the measured part (watch-many's watches).
    let mut held = Vec::new();
    let mut latencies_ns = false;
    let mut latencies = match workload {
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
            let puts = {
                let client = client.clone();
                tokio::spawn(async move {
                    run_concurrent(
                        &client,
                        n,
                        concurrency,
                        |c: C, i| async move { c.put(i).await },
                    )
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
        Workload::WatchMany => {
            let port = etcd_port(opts)?;
            let limit = procfs::raise_open_files_limit();
            if limit.is_some_and(|l| l < n as u64 + 256) {
                eprintln!(
                    "etcd-bench: watch-many: {n} watches with an open-file limit of {} \
                         may fail on a client with one connection per watch",
                    limit.unwrap_or(0)
                );
            }
            // Times are µs since `base`: put starts, and each watch's first event.
            let base = Instant::now();
            let rss_before = procfs::rss_bytes();
            let create = Meter::start(None);
            let waiters = open_watches(client, n, concurrency, base).await?;
            let (create_wall, create_cpu, _) = create.stop();
            let rss_after = procfs::rss_bytes();
            // Before the putter exists: only the watching client's connections.
            let conns = procfs::tcp_connections_to(port)?;
            let putter = client.another().await?;
            let starts: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
            meter = Meter::start(opts.server_pid);
            let recorded = starts.clone();
            run_concurrent(&putter, n, concurrency, move |c: C, i| {
                recorded[i].store(base.elapsed().as_micros() as u64, Ordering::Relaxed);
                async move { c.put(i).await }
            })
            .await?;
            // Per event: from the start of its key's put to its arrival.
            let mut latencies = Vec::with_capacity(n);
            for (i, waiter) in waiters.into_iter().enumerate() {
                let (arrived, watcher) = waiter.await??;
                latencies.push(arrived.saturating_sub(starts[i].load(Ordering::Relaxed)));
                held.push(watcher);
            }
            let stopped = meter.stop();
            measured = Some(stopped);
            drop(putter);
            extra = vec![
                Extra::measure(
                    "watches_per_s",
                    n as f64 / create_wall.as_secs_f64().max(1e-9),
                    1,
                ),
                Extra::measure(
                    "watch_cpu_us",
                    create_cpu.as_secs_f64() * 1e6 / n.max(1) as f64,
                    2,
                ),
                Extra::count("client_conns", conns),
                Extra::measure(
                    "client_rss_mb",
                    match (rss_before, rss_after) {
                        (Some(before), Some(after)) => after.saturating_sub(before) as f64 / MIB,
                        _ => f64::NAN,
                    },
                    1,
                ),
            ];
            latencies
        }
        Workload::CacheGet | Workload::CacheConsistentGet | Workload::CacheLag => {
            const CACHED_KEYS: usize = 20_000;
            let keys = match workload {
                Workload::CacheLag => 0,
                _ => CACHED_KEYS,
            };
            // Clients without a cache stop here, before the keys (whose requests they may
            // not have prepared) are put.
            if client.cache().await?.is_none() {
                return Ok(None);
            }
            put_keys(client, keys).await?;
            let rss_before = procfs::rss_bytes();
            let Some(cache) = client.cache().await? else {
                return Ok(None);
            };
            let rss_after = procfs::rss_bytes();
            if keys > 0 {
                let bytes = cache.size_bytes() as f64 / keys as f64;
                let rss = match (rss_before, rss_after) {
                    (Some(b), Some(a)) => a.saturating_sub(b) as f64 / keys as f64,
                    _ => f64::NAN,
                };
                extra.push(Extra::measure("cache_bytes_per_key", bytes, 0));
                extra.push(Extra::measure("rss_bytes_per_key", rss, 0));
                extra.push(Extra::count(
                    "key_value_bytes",
                    key(0).len() + opts.value_size,
                ));
            }
            match workload {
                Workload::CacheGet => {
                    // A clock read costs about what a get does: time batches of gets, and
                    // take each batch's mean as its gets' latency.
                    const BATCH: usize = 64;
                    let mut latencies = Vec::with_capacity(n);
                    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
                    meter = Meter::start(opts.server_pid);
                    let mut done = 0;
                    while done < n {
                        let batch = BATCH.min(n - done);
                        let start = Instant::now();
                        for _ in 0..batch {
                            // xorshift: a random existing key, cheaply.
                            state ^= state << 13;
                            state ^= state >> 7;
                            state ^= state << 17;
                            let i = (state % keys as u64) as usize;
                            if !cache.get(i) {
                                return Err(format!("key {} not in the cache", key(i)).into());
                            }
                        }
                        let each = start.elapsed().as_nanos() as u64 / batch as u64;
                        latencies.extend(std::iter::repeat_n(each, batch));
                        done += batch;
                    }
                    // Sub-microsecond: latencies in ns here, reported in µs below.
                    latencies_ns = true;
                    latencies
                }
                Workload::CacheConsistentGet => {
                    let mut latencies = Vec::with_capacity(n);
                    meter = Meter::start(opts.server_pid);
                    for j in 0..n {
                        let start = Instant::now();
                        if !cache.consistent_get(j % keys).await? {
                            return Err(format!("key {} not in the cache", key(j % keys)).into());
                        }
                        latencies.push(start.elapsed().as_micros() as u64);
                    }
                    latencies
                }
                _ => {
                    // Per put: ack → the cache's update, and ack → a plain watch's event.
                    let mut updates = cache.updates()?;
                    let mut watch = client.watch_all().await?;
                    let putter = client.another().await?;
                    let base = Instant::now();
                    let seen = tokio::spawn(async move {
                        let mut at = Vec::with_capacity(n);
                        while at.len() < n {
                            let events = updates.next_events().await?;
                            let now = base.elapsed().as_micros() as u64;
                            at.extend(std::iter::repeat_n(now, events));
                        }
                        Ok::<_, BoxError>(at)
                    });
                    let watched = tokio::spawn(async move {
                        let mut at = Vec::with_capacity(n);
                        while at.len() < n {
                            let events = watch.next_events().await?;
                            let now = base.elapsed().as_micros() as u64;
                            at.extend(std::iter::repeat_n(now, events));
                        }
                        Ok::<_, BoxError>(at)
                    });
                    let mut acks = Vec::with_capacity(n);
                    meter = Meter::start(opts.server_pid);
                    for i in 0..n {
                        putter.put(i).await?;
                        acks.push(base.elapsed().as_micros() as u64);
                    }
                    let seen = seen.await??;
                    let watched = watched.await??;
                    measured = Some(meter.stop());
                    let lag = |at: &[u64]| -> Vec<u64> {
                        let mut lag: Vec<u64> = acks
                            .iter()
                            .zip(at)
                            .map(|(ack, at)| at.saturating_sub(*ack))
                            .collect();
                        lag.sort_unstable();
                        lag
                    };
                    let watch_lag = lag(&watched);
                    extra.push(Extra::count(
                        "watch_p50_us",
                        percentile(&watch_lag, 0.50) as usize,
                    ));
                    extra.push(Extra::count(
                        "watch_p99_us",
                        percentile(&watch_lag, 0.99) as usize,
                    ));
                    lag(&seen)
                }
            }
        }
        Workload::LeaseMany => {
            let port = etcd_port(opts)?;
            let leases = client.keep_leases(n, LEASE_MANY_TTL).await?;
            // Lease-seconds kept alive: cpu_us_per_op is CPU / n / seconds.
            ops = n * opts.lease_seconds as usize;
            meter = Meter::start(opts.server_pid);
            tokio::time::sleep(Duration::from_secs(opts.lease_seconds)).await;
            measured = Some(meter.stop());
            let conns = procfs::tcp_connections_to(port)?;
            let lost = client.end_leases(leases).await?;
            if lost > 0 {
                eprintln!("etcd-bench: {name} lease-many: {lost} of {n} leases were lost");
            }
            extra = vec![
                Extra::count("client_conns", conns),
                Extra::count("leases_lost", lost),
            ];
            Vec::new()
        }
    };
    let (wall, client_cpu, server_cpu) = measured.unwrap_or_else(|| meter.stop());
    drop(held);
    let streams = matches!(
        workload,
        Workload::Watch
            | Workload::WatchMany
            | Workload::LeaseMany
            | Workload::CacheGet
            | Workload::CacheConsistentGet
            | Workload::CacheLag
    );
    if let (true, Some(before), Some(after)) =
        (streams, reconnects_before, client.stream_reconnects())
    {
        extra.push(Extra::count("stream_reconnects", after - before));
    }
    latencies.sort_unstable();
    if latencies_ns {
        extra.push(Extra::count(
            "p50_ns",
            percentile(&latencies, 0.50) as usize,
        ));
        extra.push(Extra::count(
            "p99_ns",
            percentile(&latencies, 0.99) as usize,
        ));
        for l in &mut latencies {
            *l /= 1000;
        }
    }
    Ok(Some(Line {
        client: name.to_string(),
        workload: workload.name(),
        n,
        concurrency,
        ops,
        wall,
        latencies_us: latencies,
        client_cpu,
        server_cpu,
        extra,
    }))
}

/// The `q` quantile of sorted values (as in [`Line::percentile_us`]).
fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The port of `--endpoint`, whose connections watch-many and lease-many count.
fn etcd_port(opts: &Options) -> Res<u16> {
    Ok(procfs::endpoint_port(&opts.endpoint)
        .ok_or_else(|| format!("no port in the endpoint `{}`", opts.endpoint))?)
}

/// A task holding the watch of one key until its first event; it returns the event's
/// arrival (µs since `base`) and the watch, so that the watch stays open until the caller
/// drops it.
type Waiter<W> = tokio::task::JoinHandle<Res<(u64, W)>>;

/// Opens a watch on each key `0..n` from `client`, `concurrency` creations in flight, and
/// hands each to a [`Waiter`] as soon as it is created. Returns the waiters by key, once
/// every watch has been created.
async fn open_watches<C: BenchClient>(
    client: &C,
    n: usize,
    concurrency: usize,
    base: Instant,
) -> Res<Vec<Waiter<C::Watcher>>> {
    let next = Arc::new(AtomicUsize::new(0));
    let openers: Vec<_> = (0..concurrency.clamp(1, n.max(1)))
        .map(|_| {
            let (client, next) = (client.clone(), next.clone());
            tokio::spawn(async move {
                let mut waiters = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, BoxError>(waiters);
                    }
                    let mut watcher = client.watch_key(i).await?;
                    let waiter = tokio::spawn(async move {
                        while watcher.next_events().await? == 0 {}
                        Ok((base.elapsed().as_micros() as u64, watcher))
                    });
                    waiters.push((i, waiter));
                }
            })
        })
        .collect();
    let mut by_key: Vec<Option<Waiter<C::Watcher>>> = (0..n).map(|_| None).collect();
    for opener in openers {
        for (i, waiter) in opener.await?? {
            by_key[i] = Some(waiter);
        }
    }
    Ok(by_key.into_iter().flatten().collect())
}

/// Runs every workload of `opts` with `client` and prints one JSON line each on stdout
/// (notes go to stderr). Stops at the first failure.
pub async fn run_all<C: BenchClient>(client: C, name: &str, opts: &Options) -> Res<()> {
    for &workload in &opts.workloads {
        let Some(line) = run_workload(&client, name, opts, workload)
            .await
            .map_err(|e| format!("{name} {workload}: {e}"))?
        else {
            eprintln!("etcd-bench: {name} has no cache: {workload} skipped");
            continue;
        };
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
