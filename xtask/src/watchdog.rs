//! Starting etcd so that it cannot outlive the process that started it.
//!
//! `sh -c WATCHDOG dir log base etcd args...` forks a watchdog subshell, then `exec`s etcd: the
//! child's pid is etcd's own pid. The watchdog reads the child's stdin, a pipe whose only write
//! end is held by the owner (std creates pipes close-on-exec, so no other child inherits it).
//!
//! * Owner gone (exit without destructors, panic=abort, SIGKILL, Ctrl-C): end of file, so the
//!   watchdog kills etcd with SIGKILL and removes the node's data dir and log, then the cluster's
//!   base directory once it is empty.
//! * Owner stops a node on purpose: it first writes a line, the watchdog exits and does nothing.
//!
//! Before killing, the watchdog checks that the pid still has the start time it had, so a
//! recycled pid is never killed. It ignores SIGINT, SIGTERM and SIGHUP so that a Ctrl-C to the
//! whole process group does not prevent the cleanup.
//!
//! For a cluster that can be partitioned, the wrapper moves itself into the member's cgroup
//! (after forking the watchdog, which stays where it was) before `exec`ing etcd, and a second
//! kind of watchdog, [`NetworkWatchdog`], guards the cluster's nftables table and cgroups: on end
//! of file it deletes the table at once, then removes the cgroups as soon as the members in
//! them are dead (their own watchdogs kill them meanwhile).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

const SCRIPT: &str = r#"dir=$1; log=$2; base=$3; procs=$4; sudo=$5; shift 5
self=$$
starttime() { cut -d' ' -f22 "/proc/$1/stat" 2>/dev/null; }
start=$(starttime "$self")
exec 3<&0
(
  trap '' INT TERM HUP
  if read -r _ <&3; then exit 0; fi
  if [ "$(starttime "$self")" = "$start" ]; then kill -9 "$self" 2>/dev/null; fi
  sleep 0.3
  rm -rf "$dir" "$log" 2>/dev/null || { sleep 0.5; rm -rf "$dir" "$log"; }
  rmdir "$base" 2>/dev/null
  exit 0
) </dev/null >/dev/null 2>&1 &
exec 3<&-
if [ -n "$procs" ]; then
  if [ "$sudo" = 1 ]; then
    sudo -n sh -c 'echo "$1" > "$2"' xtask-cgroup-join "$self" "$procs"
  else
    echo "$self" > "$procs"
  fi || { echo "xtask: could not move etcd into the cgroup of $procs" >&2; exit 125; }
fi
exec "$@" </dev/null
"#;

/// What the watchdog removes once the owner is gone.
pub(crate) struct Cleanup<'a> {
    pub(crate) data_dir: &'a Path,
    pub(crate) log: &'a Path,
    pub(crate) base: &'a Path,
}

/// A cgroup (v2) the process joins before `exec`.
pub(crate) struct Join<'a> {
    /// The cgroup's `cgroup.procs` file.
    pub(crate) procs: &'a Path,
    /// Whether writing it needs `sudo -n`.
    pub(crate) sudo: bool,
}

/// A process started under a watchdog.
#[derive(Debug)]
pub(crate) struct Guarded {
    pub(crate) child: Child,
    pipe: Option<ChildStdin>,
}

impl Guarded {
    /// Starts `program args...` (its stdout and stderr appended to `log`) under a watchdog,
    /// in the cgroup `join` if given.
    pub(crate) fn spawn(
        program: &Path,
        args: &[OsString],
        envs: &[(&str, &str)],
        cleanup: &Cleanup<'_>,
        join: Option<&Join<'_>>,
        log: &File,
    ) -> io::Result<Self> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(SCRIPT)
            .arg("xtask-etcd-watchdog")
            .arg(cleanup.data_dir)
            .arg(cleanup.log)
            .arg(cleanup.base)
            .arg(join.map_or(Path::new(""), |j| j.procs))
            .arg(if join.is_some_and(|j| j.sudo) {
                "1"
            } else {
                "0"
            })
            .arg(program)
            .args(args)
            // Where etcd makes the sockets of `unix://` listeners.
            .current_dir(cleanup.base)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log.try_clone()?));
        // etcd reads ETCD_* variables as flags: do not let the caller's environment leak in.
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("ETCD_")) {
                cmd.env_remove(key);
            }
        }
        cmd.envs(envs.iter().copied());
        let mut child = cmd.spawn()?;
        let pipe = child.stdin.take();
        Ok(Self { child, pipe })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Tells the watchdog to exit without touching anything.
    pub(crate) fn dismiss(&mut self) {
        if let Some(mut pipe) = self.pipe.take() {
            let _ = pipe.write_all(b"dismiss\n");
            let _ = pipe.flush();
        }
    }

    /// Dismisses the watchdog, then kills the process with SIGKILL and reaps it.
    pub(crate) fn kill(mut self) -> io::Result<()> {
        self.dismiss();
        match self.child.try_wait()? {
            Some(_) => Ok(()),
            None => {
                self.child.kill()?;
                self.child.wait().map(drop)
            }
        }
    }
}

/// Deletes a cluster's nftables table and removes its cgroups when the owner is gone:
/// `sh -c NETWORK_SCRIPT name nft table sudo dirs...`, `dirs` children first. Tries for
/// 60 s to remove the cgroups, which stay busy until the members' own watchdogs killed them.
const NETWORK_SCRIPT: &str = r#"nft=$1; table=$2; sudo=$3; shift 3
trap '' INT TERM HUP
if read -r _; then exit 0; fi
run() { if [ "$sudo" = 1 ]; then sudo -n "$@"; else "$@"; fi; }
run "$nft" delete table inet "$table"
tries=0
while :; do
  left=0
  for d in "$@"; do
    if [ -d "$d" ]; then run rmdir "$d" || left=1; fi
  done
  [ "$left" = 0 ] && exit 0
  tries=$((tries + 1))
  [ "$tries" -ge 300 ] && exit 1
  sleep 0.2
done
"#;

/// The watchdog of a partitionable cluster's nftables table and cgroups.
#[derive(Debug)]
pub(crate) struct NetworkWatchdog {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl NetworkWatchdog {
    /// Starts a watchdog that, once the owner is gone, deletes the nftables table `inet table`
    /// (with the `nft` binary at `nft`) and removes the cgroup directories `dirs` (children
    /// before parents), through `sudo -n` if `sudo`.
    pub(crate) fn spawn(nft: &Path, table: &str, sudo: bool, dirs: &[PathBuf]) -> io::Result<Self> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(NETWORK_SCRIPT)
            .arg("xtask-partition-watchdog")
            .arg(nft)
            .arg(table)
            .arg(if sudo { "1" } else { "0" })
            .args(dirs)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let pipe = child.stdin.take();
        Ok(Self { child, pipe })
    }

    /// Tells the watchdog to exit without touching anything, and reaps it.
    pub(crate) fn dismiss(mut self) {
        if let Some(mut pipe) = self.pipe.take() {
            let _ = pipe.write_all(b"dismiss\n");
            let _ = pipe.flush();
        }
        let _ = self.child.wait();
    }

    /// Closes the pipe: the watchdog cleans up as if the owner were gone. Does not wait for
    /// it (a thread reaps it once it is done).
    pub(crate) fn trigger(mut self) {
        drop(self.pipe.take());
        let mut child = self.child;
        std::thread::spawn(move || child.wait());
    }
}
