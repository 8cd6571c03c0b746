//! Fetching etcd 3.5.30 from Debian sid (packages `etcd-server` and `etcd-client`) without
//! installing anything: the `.deb` files are downloaded and unpacked into a scratch directory,
//! and their static binaries copied into `target/etcd/3.5.30/`. The system's etcd (Debian
//! bookworm's 3.4 in `/usr/bin`) stays as it is.
//!
//! When apt does not know sid yet, a low-priority sid source is added (as root, directly or
//! through `sudo -n`): `/etc/apt/sources.list.d/xtask-etcd-sid.sources` and a pin of
//! priority 50 in `/etc/apt/preferences.d/xtask-etcd-sid`, so that nothing is ever installed
//! or upgraded from sid by accident (below 100, apt takes a sid version only for a package
//! that is not installed at all, and only when asked for it).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use crate::error::LaunchError;
use crate::locate::{etcd_cache_dir, fetch_via, EtcdBinary};

/// The etcd version that [`fetch_etcd_sid`] downloads (Debian sid's `etcd-server` and
/// `etcd-client`, 3.5.30-2 when this was written; any Debian revision of 3.5.30 will do).
pub const SID_VERSION: &str = "3.5.30";

/// The apt source this module adds when apt knows no sid.
const SOURCE_FILE: &str = "/etc/apt/sources.list.d/xtask-etcd-sid.sources";
const SOURCE: &str = "\
# Added by `cargo xtask fetch-etcd --version 3.5.30`: Debian sid, for the packages of
# etcd 3.5.30, which are downloaded and unpacked, never installed. Pinned low in
# /etc/apt/preferences.d/xtask-etcd-sid.
Types: deb
URIs: http://deb.debian.org/debian
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";
/// Its pin: below 100, so that apt installs or upgrades nothing from sid by itself.
const PIN_FILE: &str = "/etc/apt/preferences.d/xtask-etcd-sid";
const PIN: &str = "\
# Added by `cargo xtask fetch-etcd --version 3.5.30`: nothing comes from sid unless asked for.
Package: *
Pin: release n=sid
Pin-Priority: 50
";
/// The key the sid source is signed with (package `debian-archive-keyring`; on Ubuntu too).
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Makes sure etcd 3.5.30 is in `target/etcd/3.5.30/` (`etcd`, `etcdctl`, `etcdutl`),
/// downloading Debian sid's `etcd-server` and `etcd-client` with `apt-get download` when it
/// is not there yet (see the module docs). Adding the sid source, when apt has none, needs
/// root or passwordless `sudo`; the download itself does not.
pub fn fetch_etcd_sid() -> Result<EtcdBinary, LaunchError> {
    static FETCH_LOCK: Mutex<()> = Mutex::new(());
    let _guard = FETCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());

    let cache = etcd_cache_dir();
    let dest = cache.join(SID_VERSION);
    if let Ok(bin) = EtcdBinary::probe(dest.join("etcd")) {
        return Ok(bin);
    }
    if run(
        Command::new("apt-get").arg("--version"),
        "apt-get --version",
    )
    .is_err()
    {
        return Err(fetch_error(
            "apt-get is not available: etcd 3.5.30 comes from Debian sid's etcd-server and \
             etcd-client packages. Elsewhere, put an etcd 3.5.30 binary (with etcdctl) in \
             target/etcd/3.5.30/, or point ETCD_BIN at one",
        ));
    }
    fetch_via(&dest, SID_VERSION, "the package's", unpack_packages)
}

/// Downloads sid's packages into `download` and unpacks them into `unpacked`; the directory
/// that holds their binaries.
fn unpack_packages(download: &Path, unpacked: &Path) -> Result<PathBuf, LaunchError> {
    ensure_sid_known()?;
    eprintln!(
        "xtask: fetching etcd {SID_VERSION} from Debian sid \
         (apt-get download etcd-server/sid etcd-client/sid)..."
    );
    run(
        Command::new("apt-get")
            .args(["download", "-q", "etcd-server/sid", "etcd-client/sid"])
            .current_dir(download),
        "apt-get download etcd-server/sid etcd-client/sid",
    )?;
    for package in ["etcd-server", "etcd-client"] {
        let deb = find_deb(download, package)?;
        let out = run(
            Command::new("dpkg-deb")
                .args(["-f"])
                .arg(&deb)
                .arg("Version"),
            "dpkg-deb -f ... Version",
        )?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if upstream_version(&version) != SID_VERSION {
            return Err(fetch_error(format!(
                "Debian sid's {package} is {version} now, not {SID_VERSION}: test that version \
                 instead (xtask/src/debian.rs, SID_VERSION, and the CI steps), or get etcd \
                 {SID_VERSION} elsewhere into target/etcd/{SID_VERSION}/"
            )));
        }
        eprintln!("xtask: unpacking {}", deb.display());
        run(
            Command::new("dpkg").arg("-x").arg(&deb).arg(unpacked),
            "dpkg -x",
        )?;
    }
    Ok(unpacked.join("usr/bin"))
}

/// Makes sure apt's lists have sid's `etcd-server` at [`SID_VERSION`]: adds the sid source
/// (with its pin) when apt knows no sid version of it, and updates the lists when the
/// version is another.
fn ensure_sid_known() -> Result<(), LaunchError> {
    let before = sid_candidate()?;
    if before
        .as_deref()
        .is_some_and(|v| upstream_version(v) == SID_VERSION)
    {
        return Ok(());
    }
    let Some(root) = Root::find() else {
        return Err(fetch_error(format!(
            "apt knows no etcd-server {SID_VERSION} from Debian sid (it has: {}), and \
             adding the sid source or updating apt's lists needs root: run this once as root \
             or with passwordless sudo, or do it by hand, as root: write (without the indentation) \
             {SOURCE_FILE}:\n\
             {}and {PIN_FILE}:\n{}then run apt-get update",
            before.as_deref().unwrap_or("no sid version"),
            indent(SOURCE),
            indent(PIN),
        )));
    };
    if before.is_none() {
        if !Path::new(KEYRING).is_file() {
            return Err(fetch_error(format!(
                "{KEYRING} is missing: the Debian archive's key is needed to trust sid \
                 (as root: apt-get install -y debian-archive-keyring)"
            )));
        }
        eprintln!(
            "xtask: adding Debian sid as an apt source, pinned at priority 50 \
             ({SOURCE_FILE}, {PIN_FILE})"
        );
        root.write(PIN_FILE, PIN)?;
        root.write(SOURCE_FILE, SOURCE)?;
    }
    eprintln!("xtask: apt-get update");
    run(
        &mut root.command("apt-get", &["update", "-q"]),
        "apt-get update",
    )?;
    match sid_candidate()? {
        Some(v) if upstream_version(&v) == SID_VERSION => Ok(()),
        Some(v) => Err(fetch_error(format!(
            "Debian sid's etcd-server is {v} now, not {SID_VERSION}: test that version instead \
             (xtask/src/debian.rs, SID_VERSION, and the CI steps), or get etcd {SID_VERSION} \
             elsewhere into target/etcd/{SID_VERSION}/"
        ))),
        None => Err(fetch_error(
            "after apt-get update, apt still knows no etcd-server from Debian sid \
             (is deb.debian.org reachable? see apt-cache policy etcd-server)",
        )),
    }
}

/// `text` with every line indented by four spaces.
fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// The version of `etcd-server` that apt's lists have from sid (`unstable`), if any.
fn sid_candidate() -> Result<Option<String>, LaunchError> {
    let out = run(
        Command::new("apt-cache").args(["madison", "etcd-server"]),
        "apt-cache madison etcd-server",
    )?;
    Ok(parse_madison(&String::from_utf8_lossy(&out.stdout)))
}

/// The sid version in `apt-cache madison` output (`pkg | version | url suite/component arch
/// Packages` per line).
fn parse_madison(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut cols = line.split('|').map(str::trim);
        let (_, version, origin) = (cols.next()?, cols.next()?, cols.next()?);
        let suite = origin.split_whitespace().nth(1)?.split('/').next()?;
        matches!(suite, "sid" | "unstable").then(|| version.to_string())
    })
}

/// `3.5.30` from the Debian version `3.5.30-2` (or `1:3.5.30-2+b1`).
fn upstream_version(debian: &str) -> &str {
    let without_epoch = debian.split_once(':').map_or(debian, |(_, v)| v);
    without_epoch
        .rsplit_once('-')
        .map_or(without_epoch, |(v, _)| v)
}

/// The downloaded `.deb` of `package` in `dir`.
fn find_deb(dir: &Path, package: &str) -> Result<PathBuf, LaunchError> {
    let prefix = format!("{package}_");
    fs::read_dir(dir)
        .map_err(|e| LaunchError::io(format!("reading {}", dir.display()), e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .ok_or_else(|| {
            fetch_error(format!(
                "apt-get download left no {package}_*.deb in {}",
                dir.display()
            ))
        })
}

/// How to run something as root here.
enum Root {
    /// We are root.
    Direct,
    /// Through `sudo -n` (a GitHub runner).
    Sudo,
}

impl Root {
    fn find() -> Option<Root> {
        let uid = Command::new("id").arg("-u").stdin(Stdio::null()).output();
        if uid.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0") {
            return Some(Root::Direct);
        }
        let sudo = Command::new("sudo")
            .args(["-n", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        sudo.is_ok_and(|s| s.success()).then_some(Root::Sudo)
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        match self {
            Root::Direct => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                cmd
            }
            Root::Sudo => {
                let mut cmd = Command::new("sudo");
                cmd.arg("-n").arg(program).args(args);
                cmd
            }
        }
    }

    /// Writes `content` to the root-owned file `path` (mode 644).
    fn write(&self, path: &str, content: &str) -> Result<(), LaunchError> {
        match self {
            Root::Direct => {
                fs::write(path, content).map_err(|e| LaunchError::io(format!("writing {path}"), e))
            }
            Root::Sudo => {
                let file =
                    std::env::temp_dir().join(format!("xtask-apt-{}", crate::unique_suffix()));
                fs::write(&file, content)
                    .map_err(|e| LaunchError::io(format!("writing {}", file.display()), e))?;
                let tmp = file.to_string_lossy().into_owned();
                let result = run(
                    &mut self.command("install", &["-m", "644", &tmp, path]),
                    &format!("sudo install {path}"),
                );
                let _ = fs::remove_file(&file);
                result.map(drop)
            }
        }
    }
}

/// Runs `cmd`, its output captured; an error with the end of its stderr when it fails.
fn run(cmd: &mut Command, what: &str) -> Result<Output, LaunchError> {
    let out = cmd
        .stdin(Stdio::null())
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| fetch_error(format!("{what}: could not run it ({e})")))?;
    if out.status.success() {
        return Ok(out);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(fetch_error(format!(
        "{what} failed ({}):\n{}",
        out.status,
        tail.join("\n")
    )))
}

fn fetch_error(detail: impl Into<String>) -> LaunchError {
    LaunchError::Fetch {
        what: format!("etcd {SID_VERSION} from Debian sid"),
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sid_in_madison_output() {
        let bookworm_and_sid = "\
etcd-server |   3.5.30-2 | http://deb.debian.org/debian sid/main amd64 Packages
etcd-server | 3.4.23-4+b4 | http://deb.debian.org/debian bookworm/main amd64 Packages
";
        assert_eq!(parse_madison(bookworm_and_sid).as_deref(), Some("3.5.30-2"));
        let unstable = "etcd-server | 3.5.31-1 | http://ftp.de.debian.org/debian unstable/main amd64 Packages\n";
        assert_eq!(parse_madison(unstable).as_deref(), Some("3.5.31-1"));
        let bookworm = "etcd-server | 3.4.23-4+b4 | http://deb.debian.org/debian bookworm/main amd64 Packages\n";
        assert_eq!(parse_madison(bookworm), None);
        assert_eq!(parse_madison(""), None);
    }

    #[test]
    fn upstream_versions() {
        assert_eq!(upstream_version("3.5.30-2"), "3.5.30");
        assert_eq!(upstream_version("1:3.5.30-2+b1"), "3.5.30");
        assert_eq!(upstream_version("3.5.30"), "3.5.30");
        assert_ne!(upstream_version("3.5.300-1"), "3.5.30");
    }

    #[test]
    fn the_pin_keeps_sid_below_100() {
        let priority: i32 = PIN
            .lines()
            .find_map(|l| l.strip_prefix("Pin-Priority:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(priority < 100, "{priority}");
        assert!(SOURCE.contains("Suites: sid") && PIN.contains("n=sid"));
    }
}
