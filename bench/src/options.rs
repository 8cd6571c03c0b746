//! Command-line options shared by every benchmark binary.

use std::fmt;

/// One workload of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Sequential puts.
    PutSeq,
    /// Puts, `concurrency` in flight.
    PutConc,
    /// Sequential linearizable gets of existing keys.
    GetSeq,
    /// Gets of existing keys, `concurrency` in flight.
    GetConc,
    /// One prefix range returning all n keys, repeated 20 times (ops = ranges).
    RangeAll,
    /// Sequential compare-and-swap transactions on one key.
    TxnSeq,
    /// n puts at `concurrency` in flight under a prefix watch; ops = events received.
    Watch,
    /// n sequential keep-alive round trips of one lease.
    LeaseKeepalive,
    /// n watches on distinct keys from one client, then one put per key from another;
    /// ops = events received.
    WatchMany,
    /// n leases kept alive by one client for `--lease-seconds`; ops = lease-seconds.
    LeaseMany,
    /// n random gets of existing keys from a cache of a 20,000-key prefix (memory reads).
    CacheGet,
    /// n consistent (linearizable) reads through the cache, in a loop.
    CacheConsistentGet,
    /// n sequential puts by a second client; per put, the time from its acknowledgement
    /// to its visibility in the cache.
    CacheLag,
}

impl Workload {
    /// Every workload, in the spec's order.
    pub const ALL: [Workload; 13] = [
        Workload::PutSeq,
        Workload::PutConc,
        Workload::GetSeq,
        Workload::GetConc,
        Workload::RangeAll,
        Workload::TxnSeq,
        Workload::Watch,
        Workload::LeaseKeepalive,
        Workload::WatchMany,
        Workload::LeaseMany,
        Workload::CacheGet,
        Workload::CacheConsistentGet,
        Workload::CacheLag,
    ];

    /// The spec's name, as in the output line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::PutSeq => "put-seq",
            Workload::PutConc => "put-conc",
            Workload::GetSeq => "get-seq",
            Workload::GetConc => "get-conc",
            Workload::RangeAll => "range-all",
            Workload::TxnSeq => "txn-seq",
            Workload::Watch => "watch",
            Workload::LeaseKeepalive => "lease-keepalive",
            Workload::WatchMany => "watch-many",
            Workload::LeaseMany => "lease-many",
            Workload::CacheGet => "cache-get",
            Workload::CacheConsistentGet => "cache-consistent-get",
            Workload::CacheLag => "cache-lag",
        }
    }

    /// The workload called `name`.
    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// The spec's default n.
    pub fn default_n(self) -> usize {
        match self {
            Workload::PutSeq | Workload::GetSeq | Workload::TxnSeq => 5000,
            Workload::PutConc | Workload::GetConc | Workload::RangeAll | Workload::Watch => 20000,
            Workload::LeaseKeepalive => 2000,
            Workload::WatchMany => 10000,
            Workload::LeaseMany => 1000,
            Workload::CacheGet => 200_000,
            Workload::CacheConsistentGet | Workload::CacheLag => 2000,
        }
    }

    /// The spec's default concurrency.
    pub fn default_concurrency(self) -> usize {
        match self {
            Workload::PutConc | Workload::GetConc | Workload::Watch | Workload::WatchMany => 64,
            _ => 1,
        }
    }

    /// True when `--concurrency` applies (the others are sequential by definition).
    pub fn is_concurrent(self) -> bool {
        self.default_concurrency() > 1
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which tokio runtime runs the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// The multi-thread runtime (what `#[tokio::main]` gives).
    Multi,
    /// The current-thread runtime.
    Current,
}

impl RuntimeKind {
    /// Builds the runtime.
    pub fn build(self) -> std::io::Result<tokio::runtime::Runtime> {
        match self {
            RuntimeKind::Multi => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build(),
            RuntimeKind::Current => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
        }
    }

    /// `multi` or `current`.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Multi => "multi",
            RuntimeKind::Current => "current",
        }
    }
}

/// Parsed command line of a benchmark binary.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--client`: which client the binary runs (each binary knows its own names).
    pub client: Option<String>,
    /// `--endpoint URL` (default `http://127.0.0.1:2379`).
    pub endpoint: String,
    /// `--workload NAME` (repeatable; default: all, in the spec's order).
    pub workloads: Vec<Workload>,
    /// `--n`: overrides each workload's default.
    pub n: Option<usize>,
    /// `--concurrency`: overrides the default of the concurrent workloads.
    pub concurrency: Option<usize>,
    /// `--value-size` bytes (default 256).
    pub value_size: usize,
    /// `--runtime multi|current` (default multi).
    pub runtime: RuntimeKind,
    /// `--server-pid PID`: also report the server's CPU.
    pub server_pid: Option<u32>,
    /// `--lease-seconds S`: how long lease-many keeps its leases alive (default 30).
    pub lease_seconds: u64,
}

/// The usage text of the shared options.
pub const USAGE: &str = "\
options:
  --client NAME          the client to run (see the binary's help)
  --endpoint URL         etcd to benchmark (default http://127.0.0.1:2379)
  --workload NAME        one of put-seq put-conc get-seq get-conc range-all txn-seq
                         watch lease-keepalive watch-many lease-many cache-get
                         cache-consistent-get cache-lag (repeatable;
                         default all)
  --n N                  operations (range-all: keys; watch-many: watches; lease-many:
                         leases) instead of the workload's default
  --concurrency C        requests in flight for put-conc, get-conc, watch, watch-many
                         (default 64)
  --value-size BYTES     value size (default 256)
  --runtime multi|current  tokio runtime (default multi)
  --server-pid PID       also report the etcd process's CPU
  --lease-seconds S      how long lease-many keeps its leases alive (default 30)";

impl Options {
    /// Parses the arguments (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut opts = Options {
            client: None,
            endpoint: "http://127.0.0.1:2379".into(),
            workloads: Vec::new(),
            n: None,
            concurrency: None,
            value_size: 256,
            runtime: RuntimeKind::Multi,
            server_pid: None,
            lease_seconds: 30,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            if name == "--help" || name == "-h" {
                return Err(USAGE.to_string());
            }
            let value = match inline {
                Some(v) => v,
                None => args
                    .next()
                    .ok_or_else(|| format!("`{name}` needs a value"))?,
            };
            let number = |v: &str| {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("`{name}` wants a positive number, not `{v}`"))
            };
            match name.as_str() {
                "--client" => opts.client = Some(value),
                "--endpoint" => opts.endpoint = value.trim_end_matches('/').to_string(),
                "--workload" => opts.workloads.push(
                    Workload::from_name(&value)
                        .ok_or_else(|| format!("unknown workload `{value}`"))?,
                ),
                "--n" => opts.n = Some(number(&value)?),
                "--concurrency" => opts.concurrency = Some(number(&value)?),
                "--value-size" => opts.value_size = number(&value)?,
                "--lease-seconds" => opts.lease_seconds = number(&value)? as u64,
                "--runtime" => {
                    opts.runtime = match value.as_str() {
                        "multi" => RuntimeKind::Multi,
                        "current" => RuntimeKind::Current,
                        other => return Err(format!("--runtime: multi or current, not `{other}`")),
                    }
                }
                "--server-pid" => {
                    opts.server_pid = Some(
                        value
                            .parse()
                            .map_err(|_| format!("--server-pid wants a pid, not `{value}`"))?,
                    )
                }
                _ => return Err(format!("unexpected argument `{arg}`\n\n{USAGE}")),
            }
        }
        if opts.workloads.is_empty() {
            opts.workloads = Workload::ALL.to_vec();
        }
        Ok(opts)
    }

    /// n for `workload`.
    pub fn n(&self, workload: Workload) -> usize {
        self.n.unwrap_or(workload.default_n())
    }

    /// Concurrency for `workload`: 1 for the sequential ones.
    pub fn concurrency(&self, workload: Workload) -> usize {
        if workload.is_concurrent() {
            self.concurrency.unwrap_or(workload.default_concurrency())
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let o = Options::parse(
            [
                "--workload=get-conc",
                "--concurrency",
                "8",
                "--runtime",
                "current",
            ]
            .map(String::from),
        )
        .unwrap();
        assert_eq!(o.workloads, [Workload::GetConc]);
        assert_eq!(o.concurrency(Workload::GetConc), 8);
        assert_eq!(o.concurrency(Workload::PutSeq), 1);
        assert_eq!(o.n(Workload::GetConc), 20000);
        assert_eq!(o.runtime, RuntimeKind::Current);
        assert!(Options::parse(["--n", "0"].map(String::from)).is_err());
        assert!(Options::parse(["--workload", "nope"].map(String::from)).is_err());
        assert_eq!(Options::parse([]).unwrap().workloads.len(), 13);
        assert_eq!(Workload::from_name("cache-lag"), Some(Workload::CacheLag));
        assert_eq!(Workload::CacheGet.default_n(), 200_000);
        let o =
            Options::parse(["--workload", "lease-many", "--lease-seconds", "5"].map(String::from))
                .unwrap();
        assert_eq!(o.lease_seconds, 5);
        assert_eq!(o.n(Workload::LeaseMany), 1000);
        assert_eq!(o.concurrency(Workload::WatchMany), 64);
    }
}
