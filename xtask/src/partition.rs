//! Network partitions between the members of a local cluster: [`Partition`].
//!
//! Every member listens on 127.0.0.1, and connections between members leave from 127.0.0.1
//! and ephemeral ports, so addresses and ports alone cannot tell members apart. The process
//! can: each member of a [partitionable](crate::EtcdBuilder::partitionable) cluster runs in a
//! cgroup (v2) of its own, and the cluster's nftables table marks every new connection with the
//! member whose socket opened it (`ct state new socket cgroupv2 level 2 "<path>" ct mark set
//! <mark>`), in the `output` hook, which every loopback packet passes, both directions of every
//! connection. Faults then drop packets by connection mark, direction and ports:
//!
//! * packets member `i` sends to member `j` on connections `i` opened: original direction,
//!   mark of `i`, destination port one of `j`'s (client, peer, TLS);
//! * packets member `i` sends to member `j` on connections `j` opened: reply direction, mark of
//!   `j`, source port one of `i`'s.
//!
//! Connections opened by any other process (the tests, `etcdctl`) carry no mark and are never
//! dropped; neither is a member's connection to itself (its gateway). Dropping packets affects
//! established connections at once: TCP retransmits into the void until etcd's peer streams
//! time out, then reconnects fail until the fault is healed.
//!
//! One table per cluster, `inet xtask_partition_<pid>_<starttime>_<n>` (owner's pid and start
//! time, a counter), holds a base chain `output` (the marks, then a jump) and a regular chain
//! `faults`, which every change flushes and refills in one `nft -f` transaction. The cgroups
//! are `<cgroup2 mount>/<table name>/node<i>`.
//!
//! # Cleanup
//!
//! Dropping the [`Etcd`](crate::Etcd) kills the members, deletes the table and removes the
//! cgroups. If the owner dies without destructors, a watchdog (see `watchdog.rs`) does it;
//! should even the watchdog be killed, the first partitionable cluster of a later process
//! removes tables and cgroups whose owner (pid and start time) is gone.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::Duration;

use crate::error::LaunchError;
use crate::watchdog::NetworkWatchdog;

/// Prefix of every table and cgroup directory the launcher makes.
const PREFIX: &str = "xtask_partition_";
/// Where nft resolves `socket cgroupv2` paths from.
const NFT_CGROUP_BASE: &str = "/sys/fs/cgroup";
/// Member `i`'s connections are marked `MARK_BASE + i + 1` ("xt").
const MARK_BASE: u32 = 0x7874_0000;

/// How the launcher gets the privileges nftables and cgroups need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Privilege {
    /// The process is root.
    Root,
    /// `sudo -n` works: nft and cgroup writes go through it.
    Sudo,
}

/// What partitions need, found once per process by [`support`].
#[derive(Debug)]
struct Support {
    privilege: Privilege,
    /// The `nft` binary.
    nft: PathBuf,
    /// Where cgroup2 is mounted, e.g. `/sys/fs/cgroup` or `/sys/fs/cgroup/unified` (hybrid).
    cgroup_root: PathBuf,
    /// `cgroup_root` relative to [`NFT_CGROUP_BASE`], with a trailing `/` unless empty.
    nft_prefix: String,
}

impl Support {
    fn sudo(&self) -> bool {
        self.privilege == Privilege::Sudo
    }

    /// `program`, through `sudo -n` when needed.
    fn command(&self, program: impl AsRef<OsStr>) -> Command {
        match self.privilege {
            Privilege::Root => Command::new(program),
            Privilege::Sudo => {
                let mut cmd = Command::new("sudo");
                cmd.arg("-n").arg(program);
                cmd
            }
        }
    }

    /// Runs `nft -f -` with `script` on its stdin.
    fn nft_script(&self, script: &str) -> Result<(), String> {
        let mut child = self
            .command(&self.nft)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("running {}: {e}", self.nft.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .map_err(|e| format!("writing to nft: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for nft: {e}"))?;
        check_output("nft -f -", &out).map(drop)
    }

    /// Runs `nft args...` and returns its stdout.
    fn nft(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .command(&self.nft)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running {}: {e}", self.nft.display()))?;
        check_output(&format!("nft {}", args.join(" ")), &out)
    }

    fn mkdir(&self, dir: &Path) -> Result<(), String> {
        match self.privilege {
            Privilege::Root => {
                fs::create_dir(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))
            }
            Privilege::Sudo => self.run("mkdir", dir),
        }
    }

    fn rmdir(&self, dir: &Path) -> Result<(), String> {
        match self.privilege {
            Privilege::Root => {
                fs::remove_dir(dir).map_err(|e| format!("rmdir {}: {e}", dir.display()))
            }
            Privilege::Sudo => self.run("rmdir", dir),
        }
    }

    fn run(&self, program: &str, dir: &Path) -> Result<(), String> {
        let out = self
            .command(program)
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running sudo -n {program}: {e}"))?;
        check_output(&format!("sudo -n {program} {}", dir.display()), &out).map(drop)
    }

    /// The path nft wants for a cgroup directory `name` under the cgroup2 root.
    fn nft_path(&self, name: &str) -> String {
        format!("{}{name}", self.nft_prefix)
    }
}

fn check_output(what: &str, out: &Output) -> Result<String, String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Checks, once per process, that network partitions can be made here: root or `sudo -n`,
/// the `nft` binary, a writable cgroup2 mount under `/sys/fs/cgroup` and nf_tables accepting a
/// `socket cgroupv2` rule (a probe table and cgroup, removed at once). The first call also
/// removes tables and cgroups that processes now gone left behind.
///
/// Errors are [`LaunchError::PartitionUnavailable`]; tests skip on them unless `CI` is set
/// (see [`crate::testing`]).
pub fn partition_support() -> Result<(), LaunchError> {
    support().map(drop)
}

fn support() -> Result<&'static Support, LaunchError> {
    static SUPPORT: OnceLock<Result<Support, String>> = OnceLock::new();
    SUPPORT
        .get_or_init(find_support)
        .as_ref()
        .map_err(|reason| LaunchError::PartitionUnavailable {
            reason: reason.clone(),
        })
}

fn find_support() -> Result<Support, String> {
    let privilege = if effective_uid() == Some(0) {
        Privilege::Root
    } else if Command::new("sudo")
        .args(["-n", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        Privilege::Sudo
    } else {
        return Err("not root, and `sudo -n true` does not work".into());
    };
    let nft = find_program("nft")
        .ok_or("no `nft` binary (Debian/Ubuntu: apt-get install -y nftables)")?;
    let cgroup_root = cgroup2_mount()?;
    let nft_prefix = match cgroup_root.strip_prefix(NFT_CGROUP_BASE) {
        Ok(rel) if rel.as_os_str().is_empty() => String::new(),
        Ok(rel) => format!("{}/", rel.display()),
        Err(_) => {
            return Err(format!(
                "cgroup2 is mounted at {}, outside {NFT_CGROUP_BASE} where nft looks for cgroups",
                cgroup_root.display()
            ))
        }
    };
    let support = Support {
        privilege,
        nft,
        cgroup_root,
        nft_prefix,
    };
    support
        .nft(&["list", "tables"])
        .map_err(|e| format!("nftables does not work: {e}"))?;
    remove_stale(&support);
    probe(&support)?;
    Ok(support)
}

/// Loads (then deletes) a table with a `socket cgroupv2` rule on a fresh cgroup.
fn probe(support: &Support) -> Result<(), String> {
    let name = format!("{PREFIX}{}_{}_probe", std::process::id(), own_start_time());
    let dir = support.cgroup_root.join(&name);
    support
        .mkdir(&dir)
        .map_err(|e| format!("cannot create a cgroup: {e}"))?;
    let script = format!(
        "add table inet {name}\n\
         add chain inet {name} output {{ type filter hook output priority 0; policy accept; }}\n\
         add rule inet {name} output ct state new socket cgroupv2 level 1 \"{}\" ct mark set 0x{MARK_BASE:08x}\n",
        support.nft_path(&name)
    );
    let loaded = support.nft_script(&script);
    let deleted = match loaded {
        Ok(()) => support.nft(&["delete", "table", "inet", &name]).map(drop),
        Err(_) => Ok(()),
    };
    let removed = support.rmdir(&dir);
    loaded.map_err(|e| format!("nftables refuses a `socket cgroupv2` rule: {e}"))?;
    deleted?;
    removed
}

/// The effective uid, from `/proc/self/status`.
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// `name` on `PATH`, or in the sbin directories that a non-root `PATH` often lacks.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The cgroup2 mount point: `/sys/fs/cgroup` (unified) or `/sys/fs/cgroup/unified` (hybrid)
/// preferred.
fn cgroup2_mount() -> Result<PathBuf, String> {
    let mounts =
        fs::read_to_string("/proc/mounts").map_err(|e| format!("reading /proc/mounts: {e}"))?;
    let mut found: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            let (_, at, fstype) = (fields.next()?, fields.next()?, fields.next()?);
            (fstype == "cgroup2").then(|| PathBuf::from(at))
        })
        .collect();
    found.sort_by_key(|p| !p.starts_with(NFT_CGROUP_BASE));
    found
        .into_iter()
        .next()
        .ok_or_else(|| "no cgroup2 file system is mounted".to_string())
}

/// Field 22 of `/proc/<pid>/stat`: the process's start time, in clock ticks since boot.
fn start_time(pid: &str) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts with field 3 (state).
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn own_start_time() -> u64 {
    start_time("self").unwrap_or(0)
}

/// Whether a table or cgroup name of ours belongs to a process that is gone.
fn owner_gone(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    let mut fields = rest.split('_');
    let (Some(pid), Some(start)) = (fields.next(), fields.next()) else {
        return false;
    };
    if pid.parse::<u32>().is_err() {
        return false;
    }
    match start.parse::<u64>() {
        Ok(start) => start_time(pid) != Some(start),
        Err(_) => false,
    }
}

/// Deletes the tables, and removes the cgroups (if empty), of owners that are gone.
fn remove_stale(support: &Support) {
    if let Ok(tables) = support.nft(&["list", "tables"]) {
        for line in tables.lines() {
            let mut words = line.split_whitespace();
            if let (Some("table"), Some(family), Some(name)) =
                (words.next(), words.next(), words.next())
            {
                if owner_gone(name) {
                    eprintln!("xtask: deleting nftables table {family} {name} (its owner is gone)");
                    let _ = support.nft(&["delete", "table", family, name]);
                }
            }
        }
    }
    let Ok(entries) = fs::read_dir(&support.cgroup_root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !owner_gone(&name) || !entry.path().is_dir() {
            continue;
        }
        let dir = entry.path();
        if let Ok(children) = fs::read_dir(&dir) {
            for child in children.flatten() {
                if child.path().is_dir() {
                    let _ = support.rmdir(&child.path());
                }
            }
        }
        match support.rmdir(&dir) {
            Ok(()) => eprintln!(
                "xtask: removed cgroup {} (its owner is gone)",
                dir.display()
            ),
            Err(e) => eprintln!("xtask: could not remove stale cgroup: {e}"),
        }
    }
}

/// The nftables table and cgroups of one partitionable cluster.
#[derive(Debug)]
pub(crate) struct Network {
    support: &'static Support,
    table: String,
    /// The cluster's cgroup directory; member `i`'s is `node<i>` in it.
    dir: PathBuf,
    /// Every member's ports (client, peer, and TLS if any).
    ports: Vec<Vec<u16>>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Blocked directed links `(from, to)`.
    blocked: BTreeSet<(usize, usize)>,
    watchdog: Option<NetworkWatchdog>,
    table_loaded: bool,
    closed: bool,
}

impl Network {
    /// Makes the cgroups and the table (marks, no faults) for members with these ports, under
    /// a watchdog. Fails with [`LaunchError::PartitionUnavailable`] if partitions cannot be
    /// made here.
    pub(crate) fn create(ports: Vec<Vec<u16>>) -> Result<Self, LaunchError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let support = support()?;
        let table = format!(
            "{PREFIX}{}_{}_{}",
            std::process::id(),
            own_start_time(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = support.cgroup_root.join(&table);
        let network = Self {
            support,
            table,
            dir,
            ports,
            state: Mutex::new(State {
                blocked: BTreeSet::new(),
                watchdog: None,
                table_loaded: false,
                closed: false,
            }),
        };
        // On error, dropping `network` undoes what was done.
        network.setup()?;
        Ok(network)
    }

    fn setup(&self) -> Result<(), LaunchError> {
        let mut state = self.lock();
        let dirs = self.dirs();
        state.watchdog = Some(
            NetworkWatchdog::spawn(&self.support.nft, &self.table, self.support.sudo(), &dirs)
                .map_err(|e| LaunchError::io("starting the partition watchdog", e))?,
        );
        // Parent first.
        for dir in dirs.iter().rev() {
            self.support
                .mkdir(dir)
                .map_err(|e| LaunchError::io("creating a member cgroup", io::Error::other(e)))?;
        }
        let t = &self.table;
        let mut script = format!(
            "add table inet {t}\n\
             add chain inet {t} output {{ type filter hook output priority 0; policy accept; }}\n\
             add chain inet {t} faults\n"
        );
        for i in 0..self.ports.len() {
            let path = self.support.nft_path(&format!("{t}/node{i}"));
            let _ = writeln!(
                script,
                "add rule inet {t} output ct state new socket cgroupv2 level 2 \"{path}\" counter ct mark set 0x{:08x}",
                mark(i)
            );
        }
        let _ = writeln!(script, "add rule inet {t} output jump faults");
        self.support
            .nft_script(&script)
            .map_err(|e| LaunchError::io("loading the partition table", io::Error::other(e)))?;
        state.table_loaded = true;
        Ok(())
    }

    /// The cgroup directories, children before the parent.
    fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = (0..self.ports.len()).map(|i| self.node_dir(i)).collect();
        dirs.push(self.dir.clone());
        dirs
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{i}"))
    }

    /// The `cgroup.procs` file member `i`'s process must join.
    pub(crate) fn procs(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("cgroup.procs")
    }

    /// Whether joining a cgroup needs `sudo -n`.
    pub(crate) fn sudo(&self) -> bool {
        self.support.sudo()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks that every member's connections got its mark (their counters are not zero):
    /// once the members of a cluster of two or more are healthy, each has dialled the others.
    /// If not, `socket cgroupv2` does not see the cgroups as nft named them (a cgroup
    /// namespace, for instance), and faults would drop nothing.
    pub(crate) fn verify_marks(&self) -> Result<(), LaunchError> {
        let listing = self
            .support
            .nft(&["list", "chain", "inet", &self.table, "output"])
            .map_err(|e| LaunchError::io("listing the partition table", io::Error::other(e)))?;
        for i in 0..self.ports.len() {
            let needle = format!("ct mark set 0x{:08x}", mark(i));
            let packets = listing
                .lines()
                .find(|l| l.contains(&needle))
                .and_then(|l| l.split_once("counter packets "))
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok());
            if packets.unwrap_or(0) == 0 {
                return Err(LaunchError::PartitionUnavailable {
                    reason: format!(
                        "no connection of member {i} was matched by its `socket cgroupv2` rule \
                         (is this process in a cgroup namespace?):\n{listing}"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Replaces the blocked links, in one transaction.
    fn apply(
        &self,
        state: &mut State,
        blocked: BTreeSet<(usize, usize)>,
    ) -> Result<(), LaunchError> {
        if state.closed {
            return Err(LaunchError::InvalidConfig(
                "the cluster of this partition was dropped".into(),
            ));
        }
        let script = render_faults(&self.table, &self.ports, &blocked);
        self.support
            .nft_script(&script)
            .map_err(|e| LaunchError::io("changing the partition table", io::Error::other(e)))?;
        state.blocked = blocked;
        Ok(())
    }

    /// Deletes the table and removes the cgroups (the members must be dead by now); if that
    /// fails, leaves it to the watchdog, which retries.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        state.closed = true;
        let mut clean = true;
        if state.table_loaded {
            if let Err(e) = self.support.nft(&["delete", "table", "inet", &self.table]) {
                eprintln!("xtask: {e}");
                clean = false;
            }
        }
        for dir in self.dirs() {
            if !dir.exists() {
                continue;
            }
            // A killed and reaped member has left its cgroup; give stragglers a moment.
            let mut tries = 0;
            while let Err(e) = self.support.rmdir(&dir) {
                tries += 1;
                if tries >= 25 {
                    eprintln!("xtask: {e}");
                    clean = false;
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(watchdog) = state.watchdog.take() {
            if clean {
                watchdog.dismiss();
            } else {
                eprintln!("xtask: leaving the rest of the cleanup to the partition watchdog");
                watchdog.trigger();
            }
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.close();
    }
}

fn mark(i: usize) -> u32 {
    MARK_BASE + u32::try_from(i).unwrap_or(0xfffe) + 1
}

/// The transaction that makes `blocked` the set of faults.
fn render_faults(table: &str, ports: &[Vec<u16>], blocked: &BTreeSet<(usize, usize)>) -> String {
    let set = |p: &[u16]| p.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
    let mut script = format!("flush chain inet {table} faults\n");
    for &(from, to) in blocked {
        // Sent by `from` on connections it opened to `to`...
        let _ = writeln!(
            script,
            "add rule inet {table} faults ct direction original ct mark 0x{:08x} tcp dport {{ {} }} counter drop",
            mark(from),
            set(&ports[to])
        );
        // ...and on connections `to` opened to it.
        let _ = writeln!(
            script,
            "add rule inet {table} faults ct direction reply ct mark 0x{:08x} tcp sport {{ {} }} counter drop",
            mark(to),
            set(&ports[from])
        );
    }
    script
}

/// Both directions between every two members of different groups.
fn split_links(groups: &[&[usize]]) -> Vec<(usize, usize)> {
    let mut links = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        for other in &groups[g + 1..] {
            for &a in group.iter() {
                for &b in other.iter() {
                    links.extend([(a, b), (b, a)]);
                }
            }
        }
    }
    links
}

/// The two sides of a bridge: the members but `bridge`, in index order, cut in halves (the
/// first one larger when they are odd).
fn bridge_sides(members: usize, bridge: usize) -> (Vec<usize>, Vec<usize>) {
    let mut left: Vec<usize> = (0..members).filter(|&i| i != bridge).collect();
    let right = left.split_off(left.len().div_ceil(2));
    (left, right)
}

/// Network faults between the members of a cluster built with
/// [`EtcdBuilder::partitionable`](crate::EtcdBuilder::partitionable), from
/// [`Etcd::partition`](crate::Etcd::partition).
///
/// A fault blocks directed links: *from → to* drops every packet member *from* sends to member
/// *to* (on connections either opened), so TCP between them stalls both ways in practice (no
/// acknowledgements come back), but messages of *to* still reach *from* until its unacknowledged
/// data fill the window. Client traffic (from any process that is not a member) is never
/// dropped. Changes apply at once, to existing connections too, and atomically: the whole set
/// of blocked links is replaced in one nftables transaction.
///
/// [`block`](Self::block), [`cut`](Self::cut), [`isolate`](Self::isolate),
/// [`bridge`](Self::bridge) and [`split`](Self::split) *add* to the blocked links;
/// [`set`](Self::set) replaces them, [`heal`](Self::heal) removes them all. Restarted members
/// go back into their cgroup, so faults apply to them too. Member indices are node indices;
/// one out of range is an [`LaunchError::InvalidConfig`] error.
///
/// The handle is cheap to clone and can move to another thread; once its [`Etcd`](crate::Etcd)
/// is dropped (which removes the rules), every change fails.
#[derive(Debug, Clone)]
pub struct Partition {
    network: Arc<Network>,
}

impl Partition {
    pub(crate) fn new(network: Arc<Network>) -> Self {
        Self { network }
    }

    fn members(&self) -> usize {
        self.network.ports.len()
    }

    fn check(&self, i: usize) -> Result<(), LaunchError> {
        if i < self.members() {
            Ok(())
        } else {
            Err(LaunchError::InvalidConfig(format!(
                "member {i} out of range: the cluster has {} member(s)",
                self.members()
            )))
        }
    }

    fn link(&self, from: usize, to: usize) -> Result<(usize, usize), LaunchError> {
        self.check(from)?;
        self.check(to)?;
        if from == to {
            return Err(LaunchError::InvalidConfig(format!(
                "member {from} cannot be cut off from itself"
            )));
        }
        Ok((from, to))
    }

    /// Adds `links` to the blocked ones.
    fn add(&self, links: Vec<(usize, usize)>) -> Result<(), LaunchError> {
        let mut state = self.network.lock();
        let mut blocked = state.blocked.clone();
        blocked.extend(links);
        self.network.apply(&mut state, blocked)
    }

    /// Drops what member `from` sends to member `to` (one direction).
    pub fn block(&self, from: usize, to: usize) -> Result<(), LaunchError> {
        let link = self.link(from, to)?;
        self.add(vec![link])
    }

    /// Lets what member `from` sends to member `to` through again.
    pub fn unblock(&self, from: usize, to: usize) -> Result<(), LaunchError> {
        let link = self.link(from, to)?;
        let mut state = self.network.lock();
        let mut blocked = state.blocked.clone();
        blocked.remove(&link);
        self.network.apply(&mut state, blocked)
    }

    /// Cuts members `a` and `b` apart, both ways.
    pub fn cut(&self, a: usize, b: usize) -> Result<(), LaunchError> {
        let link = self.link(a, b)?;
        self.add(vec![link, (b, a)])
    }

    /// Cuts member `i` off from every other member, both ways.
    pub fn isolate(&self, i: usize) -> Result<(), LaunchError> {
        self.check(i)?;
        let links = (0..self.members())
            .filter(|&j| j != i)
            .flat_map(|j| [(i, j), (j, i)])
            .collect();
        self.add(links)
    }

    /// Members in different `groups` cannot talk to each other, both ways; a member in no
    /// group still talks to everyone. `split(&[&[0], &[1, 2]])` isolates member 0.
    pub fn split(&self, groups: &[&[usize]]) -> Result<(), LaunchError> {
        let mut seen = BTreeSet::new();
        for &i in groups.iter().flat_map(|g| g.iter()) {
            self.check(i)?;
            if !seen.insert(i) {
                return Err(LaunchError::InvalidConfig(format!(
                    "member {i} is in more than one group"
                )));
            }
        }
        self.add(split_links(groups))
    }

    /// A bridge: the other members, in index order, are split into two halves that cannot
    /// talk to each other, while member `bridge` talks to everyone. With three members, the
    /// two others are cut apart: `bridge(1)` cuts 0 and 2.
    pub fn bridge(&self, bridge: usize) -> Result<(), LaunchError> {
        self.check(bridge)?;
        let (left, right) = bridge_sides(self.members(), bridge);
        self.split(&[&left, &right])
    }

    /// Makes `links` (pairs *from → to*) the blocked links, replacing all others at once.
    pub fn set(&self, links: &[(usize, usize)]) -> Result<(), LaunchError> {
        let blocked = links
            .iter()
            .map(|&(from, to)| self.link(from, to))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let mut state = self.network.lock();
        self.network.apply(&mut state, blocked)
    }

    /// Removes every fault.
    pub fn heal(&self) -> Result<(), LaunchError> {
        let mut state = self.network.lock();
        self.network.apply(&mut state, BTreeSet::new())
    }

    /// The blocked links, *(from, to)*, in order.
    pub fn blocked(&self) -> Vec<(usize, usize)> {
        self.network.lock().blocked.iter().copied().collect()
    }

    /// Whether what member `from` sends to member `to` gets through (true for `from == to`).
    pub fn can_send(&self, from: usize, to: usize) -> bool {
        !self.network.lock().blocked.contains(&(from, to))
    }

    /// The nftables table, `inet <name>` (for `nft list table inet <name>`).
    pub fn table(&self) -> &str {
        &self.network.table
    }

    /// The cluster's cgroup directory; member `i`'s is `node<i>` inside it.
    pub fn cgroup_dir(&self) -> &Path {
        &self.network.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_drop_both_directions_of_a_link() {
        let ports = vec![vec![1000, 1001], vec![2000, 2001], vec![3000, 3001]];
        let blocked = BTreeSet::from([(0, 2)]);
        let script = render_faults("t", &ports, &blocked);
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(
            lines,
            [
                "flush chain inet t faults",
                "add rule inet t faults ct direction original ct mark 0x78740001 tcp dport { 3000, 3001 } counter drop",
                "add rule inet t faults ct direction reply ct mark 0x78740003 tcp sport { 1000, 1001 } counter drop",
            ]
        );
        assert_eq!(
            render_faults("t", &ports, &BTreeSet::new()),
            "flush chain inet t faults\n"
        );
    }

    #[test]
    fn names_carry_their_owner() {
        let me = format!("{PREFIX}{}_{}_3", std::process::id(), own_start_time());
        assert!(!owner_gone(&me));
        // Same pid, another start time: a recycled pid.
        let recycled = format!("{PREFIX}{}_{}_3", std::process::id(), own_start_time() + 1);
        assert!(owner_gone(&recycled));
        // Above the largest pid Linux hands out.
        assert!(owner_gone(&format!("{PREFIX}4194304_1_0")));
        assert!(!owner_gone("xtask_other_1_2_3"));
        assert!(!owner_gone(&format!("{PREFIX}x_1_0")));
    }

    #[test]
    fn splits_and_bridges() {
        let mut links = split_links(&[&[0], &[1, 2]]);
        links.sort();
        assert_eq!(links, [(0, 1), (0, 2), (1, 0), (2, 0)]);
        assert!(split_links(&[&[0, 1, 2]]).is_empty());
        assert_eq!(bridge_sides(3, 1), (vec![0], vec![2]));
        assert_eq!(bridge_sides(3, 0), (vec![1], vec![2]));
        assert_eq!(bridge_sides(5, 2), (vec![0, 1], vec![3, 4]));
        assert_eq!(bridge_sides(4, 3), (vec![0, 1], vec![2]));
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Partition>();
    }

    #[test]
    fn uid_is_readable() {
        assert!(effective_uid().is_some());
    }
}
