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

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

const SCRIPT: &str = r#"dir=$1; log=$2; base=$3; shift 3
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
exec "$@" </dev/null
"#;

/// What the watchdog removes once the owner is gone.
pub(crate) struct Cleanup<'a> {
    pub(crate) data_dir: &'a Path,
    pub(crate) log: &'a Path,
    pub(crate) base: &'a Path,
}

/// A process started under a watchdog.
#[derive(Debug)]
pub(crate) struct Guarded {
    pub(crate) child: Child,
    pipe: Option<ChildStdin>,
}

impl Guarded {
    /// Starts `program args...` (its stdout and stderr appended to `log`) under a watchdog.
    pub(crate) fn spawn(
        program: &Path,
        args: &[OsString],
        envs: &[(&str, &str)],
        cleanup: &Cleanup<'_>,
        log: &File,
    ) -> io::Result<Self> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(SCRIPT)
            .arg("xtask-etcd-watchdog")
            .arg(cleanup.data_dir)
            .arg(cleanup.log)
            .arg(cleanup.base)
            .arg(program)
            .args(args)
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
