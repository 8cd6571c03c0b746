//! Release readiness (docs/releasing.md): `cargo xtask deny`, `cargo xtask package`,
//! `cargo xtask semver`, each also a step of `cargo xtask ci`.
//!
//! The cargo plugins they need (`cargo-deny`, `cargo-semver-checks`) are used from `PATH`
//! when there, else installed once, pinned and `--locked`, into `target/tools/` (crates.io
//! only; a fresh CI machine pays the build once).

use std::path::PathBuf;
use std::process::Command;

use xtask::workspace_root;

use crate::cargo_cmd;

/// The crates published to crates.io, in dependency order.
pub const PUBLISHED: [&str; 5] = [
    "etcd-wire",
    "etcd-transport",
    "etcd-kv",
    "etcd-pmap",
    "etcd-tools",
];

/// The commit the public API is compared with until a version is tagged: 0.1.0 as it stood
/// when the semver check was set up. Replace it with the last release's tag (`v0.1.0`...)
/// at each release.
pub const SEMVER_BASELINE: &str = "479cf13";

/// A cargo plugin: its crate, the version we pin, and its binary.
struct Tool {
    krate: &'static str,
    version: &'static str,
    binary: &'static str,
}

const DENY: Tool = Tool {
    krate: "cargo-deny",
    version: "0.20.2",
    binary: "cargo-deny",
};

const SEMVER_CHECKS: Tool = Tool {
    krate: "cargo-semver-checks",
    version: "0.51.0",
    binary: "cargo-semver-checks",
};

impl Tool {
    /// The binary: `target/tools/bin/<binary>` when installed there, else one on `PATH`
    /// that runs, else installed into `target/tools/` now.
    fn find_or_install(&self) -> Result<PathBuf, String> {
        let root = workspace_root().join("target").join("tools");
        let local = root.join("bin").join(self.binary);
        if local.is_file() {
            return Ok(local);
        }
        if Command::new(self.binary)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Ok(PathBuf::from(self.binary));
        }
        eprintln!(
            "xtask: {} not found: cargo install --locked {} --version {} --root {}",
            self.binary,
            self.krate,
            self.version,
            root.display()
        );
        let root_arg = root.to_string_lossy().into_owned();
        let status = cargo_cmd(&[
            "install",
            "--locked",
            "--quiet",
            self.krate,
            "--version",
            self.version,
            "--root",
            &root_arg,
        ])
        // Both plugins build their releases with LTO and one codegen unit: minutes more
        // on 2 cores for a tool run once per CI. Config (here the environment) overrides
        // the manifest's profile.
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
        .status()
        .map_err(|e| format!("running cargo install {}: {e}", self.krate))?;
        if !status.success() || !local.is_file() {
            return Err(format!(
                "could not install {} {} ({status}); install it yourself: cargo install --locked {}",
                self.krate, self.version, self.krate
            ));
        }
        Ok(local)
    }
}

/// Runs `program args...` as a cargo subcommand would run (`cargo-deny deny check ...`),
/// from the workspace root.
fn run_plugin(binary: &PathBuf, subcommand: &str, args: &[&str]) -> Result<(), String> {
    let status = Command::new(binary)
        .arg(subcommand)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("running {}: {e}", binary.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo {subcommand} {} failed ({status})",
            args.join(" ")
        ))
    }
}

/// `cargo xtask deny [--advisories]`: licences, bans and sources against `deny.toml`;
/// advisories (which fetch the RustSec database from GitHub) only when asked.
pub fn deny(advisories: bool) -> Result<(), String> {
    let binary = DENY.find_or_install()?;
    run_plugin(&binary, "deny", &["check", "licenses", "bans", "sources"])?;
    if advisories {
        run_plugin(&binary, "deny", &["check", "advisories"])?;
    } else {
        eprintln!(
            "xtask: NOTICE: advisories not checked (they need the RustSec database from \
             the network): cargo xtask deny --advisories"
        );
    }
    Ok(())
}

/// `cargo xtask package`: `cargo package` of the published crates, each built from its
/// own tarball as crates.io users will build it; prints each package's size.
pub fn package() -> Result<(), String> {
    forget_unpacked_packages()?;
    let mut args = vec!["package", "--allow-dirty"];
    for krate in PUBLISHED {
        args.extend(["-p", krate]);
    }
    let status = cargo_cmd(&args)
        .status()
        .map_err(|e| format!("running cargo package: {e}"))?;
    if !status.success() {
        return Err(format!("cargo package failed ({status})"));
    }
    let dir = workspace_root().join("target").join("package");
    let version = env!("CARGO_PKG_VERSION");
    for krate in PUBLISHED {
        let file = dir.join(format!("{krate}-{version}.crate"));
        let size = std::fs::metadata(&file)
            .map_err(|e| format!("{}: {e}", file.display()))?
            .len();
        eprintln!(
            "package: {krate} {version}: {:.1} KiB",
            size as f64 / 1024.0
        );
    }
    Ok(())
}

/// Removes cargo's unpacked copies of our own packages from the local registries that
/// `cargo package` verifies against (`$CARGO_HOME/registry/src/-<hash>/<crate>-<version>`).
/// Cargo unpacks a package there once and reuses the copy while the version is unchanged, so
/// after a change to etcd-transport, etcd-kv was verified against the old etcd-transport and
/// failed to build (seen in CI). Only directories of a local registry (named `-<hash>`, no
/// host) are touched, and in them only our packages at this version.
fn forget_unpacked_packages() -> Result<(), String> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(src) = cargo_home.map(|h| h.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return Ok(());
    };
    let version = env!("CARGO_PKG_VERSION");
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for krate in PUBLISHED {
            let unpacked = registry.path().join(format!("{krate}-{version}"));
            if unpacked.exists() {
                std::fs::remove_dir_all(&unpacked)
                    .map_err(|e| format!("removing {}: {e}", unpacked.display()))?;
            }
        }
    }
    Ok(())
}

/// `cargo xtask semver`: `cargo semver-checks` of the published crates against
/// [`SEMVER_BASELINE`].
pub fn semver() -> Result<(), String> {
    // A shallow clone (CI checkouts often are) lacks the baseline commit: say so and skip,
    // rather than fail on what the checkout left out.
    let have_baseline = Command::new("git")
        .args(["cat-file", "-e", &format!("{SEMVER_BASELINE}^{{commit}}")])
        .current_dir(workspace_root())
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_baseline {
        eprintln!(
            "xtask: NOTICE: semver check skipped: the baseline commit {SEMVER_BASELINE} is not \
             in this clone (a shallow checkout?); `git fetch --unshallow` and run it again"
        );
        return Ok(());
    }
    let binary = SEMVER_CHECKS.find_or_install()?;
    let mut args = vec!["--baseline-rev", SEMVER_BASELINE];
    for krate in PUBLISHED {
        args.extend(["-p", krate]);
    }
    // Every feature: the gRPC API is public API too.
    args.push("--all-features");
    run_plugin(&binary, "semver-checks", &args)
}
