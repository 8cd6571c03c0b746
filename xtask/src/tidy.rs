//! Repository rules, checked by `cargo xtask tidy` and by a `#[test]` so that plain
//! `cargo test` enforces them.
//!
//! * Dependency direction: the crates under `crates/` form a stack, [`CRATE_ORDER`]; a crate's
//!   `[dependencies]` name only crates below it, and never `xtask` (but for the private
//!   test-support crates of [`PRIVATE`], which drive etcd through its launcher).
//! * [`TEST_SUPPORT`], the code test binaries share, is `publish = false`, depends on no crate
//!   of the stack and is never a normal dependency of one (a dev-dependency only).
//! * Every crate root has `#![forbid(unsafe_code)]` ([`TEST_SUPPORT`]'s: `deny`, for its
//!   counting allocator); the library crates in [`DOCUMENTED`] also
//!   have `#![deny(missing_docs)]` and a crate doc comment with a code example.
//! * `docs/ARCHITECTURE.md` and `README.md` exist; the README's first 40 lines mention
//!   `cargo xtask demo` and `cargo xtask ci`.
//! * No leftover debugging or stub macros in `crates/`, `xtask/` and `examples/`.
//! * Rooms of one job: no hand-written library file (`crates/*/src/**/*.rs`, generated code
//!   of [`GENERATED`] excepted) over [`MAX_FILE_LINES`] lines, but for those of
//!   [`TOO_LONG_ALLOWED`], which are to be split (an allowed file that fits must leave the
//!   list).
//! * etcd-kv never names a hyper or http type: no `hyper::` or `http::` in `crates/etcd-kv/src`
//!   outside [`HTTP_ALLOWED`], its one transport-facing module.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// The crates under `crates/`, lowest layer first.
pub const CRATE_ORDER: [&str; 6] = [
    "etcd-wire",
    "etcd-transport",
    "etcd-kv",
    "etcd-pmap",
    "etcd-tools",
    "etcd-robustness",
];

/// Private crates (`publish = false`, never a dependency of a library) that may depend on
/// `xtask` to start and break etcd clusters.
pub const PRIVATE: [&str; 1] = ["etcd-robustness"];

/// The crate under `crates/` that is no layer of the stack: code shared by test binaries.
pub const TEST_SUPPORT: &str = "etcd-test-support";

/// Library crates whose root must deny missing docs and show an example.
pub const DOCUMENTED: [&str; 4] = ["etcd-wire", "etcd-transport", "etcd-kv", "etcd-pmap"];

/// The most lines a hand-written library file may have: beyond it, split it by job.
pub const MAX_FILE_LINES: usize = 800;

/// Directories of generated code, exempt from [`MAX_FILE_LINES`].
pub const GENERATED: [&str; 1] = ["crates/etcd-wire/src/grpc/pb"];

/// Library files allowed over [`MAX_FILE_LINES`] until they are split: an entry must leave
/// once its file fits (tidy says when). Empty since #20 split the last ones: keep it so.
pub const TOO_LONG_ALLOWED: [&str; 0] = [];

/// The etcd-kv module that faces the transport, the only one that may name `hyper::` or
/// `http::` (today it names neither: keep it so).
pub const HTTP_ALLOWED: [&str; 1] = ["crates/etcd-kv/src/backend.rs"];

/// Spelled in pieces so that this file does not trip its own check.
const FORBIDDEN_MACROS: [&str; 3] = [
    concat!("todo", "!("),
    concat!("unimplemented", "!("),
    concat!("dbg", "!("),
];

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// File concerned, relative to the workspace root.
    pub path: PathBuf,
    /// 1-based line, when it applies to one line.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

struct Report<'a> {
    root: &'a Path,
    violations: Vec<Violation>,
}

impl Report<'_> {
    fn add(&mut self, path: &Path, line: Option<usize>, message: impl Into<String>) {
        let path = path.strip_prefix(self.root).unwrap_or(path).to_path_buf();
        self.violations.push(Violation {
            path,
            line,
            message: message.into(),
        });
    }
}

/// Checks every rule on the workspace at `root`; an empty list means all is well.
pub fn check(root: &Path) -> Vec<Violation> {
    let mut report = Report {
        root,
        violations: Vec::new(),
    };
    check_crates(&mut report);
    check_docs(&mut report);
    for dir in ["crates", "xtask", "examples"] {
        check_macros(&mut report, &root.join(dir));
    }
    check_file_lengths(&mut report, &TOO_LONG_ALLOWED);
    check_http_names(&mut report);
    report.violations
}

fn check_crates(report: &mut Report<'_>) {
    let crates_dir = report.root.join("crates");
    let mut dirs: Vec<PathBuf> = match fs::read_dir(&crates_dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("Cargo.toml").is_file())
            .collect(),
        Err(e) => {
            report.add(&crates_dir, None, format!("cannot read: {e}"));
            return;
        }
    };
    dirs.sort();
    for name in CRATE_ORDER {
        if !dirs
            .iter()
            .any(|d| d.file_name().is_some_and(|n| n == name))
        {
            report.add(&crates_dir.join(name), None, "crate is missing");
        }
    }
    for dir in dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == TEST_SUPPORT {
            check_test_support(report, &dir);
            continue;
        }
        let Some(rank) = CRATE_ORDER.iter().position(|c| *c == name) else {
            report.add(
                &dir,
                None,
                format!("crate `{name}` is not in tidy's CRATE_ORDER: add it where it belongs"),
            );
            continue;
        };
        check_manifest(report, &dir.join("Cargo.toml"), rank);
        check_roots(report, &dir, DOCUMENTED.contains(&name.as_str()));
    }
}

fn check_manifest(report: &mut Report<'_>, manifest: &Path, rank: usize) {
    let text = match fs::read_to_string(manifest) {
        Ok(text) => text,
        Err(e) => {
            report.add(manifest, None, format!("cannot read: {e}"));
            return;
        }
    };
    let me = CRATE_ORDER[rank];
    if PRIVATE.contains(&me) && !text.lines().any(|l| l.replace(' ', "") == "publish=false") {
        report.add(
            manifest,
            None,
            format!("`{me}` is private (it may use xtask): it needs `publish = false`"),
        );
    }
    for (line, dep) in normal_dependencies(&text) {
        if dep == TEST_SUPPORT {
            report.add(
                manifest,
                Some(line),
                format!("`{TEST_SUPPORT}` may only be a dev-dependency"),
            );
        } else if dep == "xtask" && !PRIVATE.contains(&me) {
            report.add(
                manifest,
                Some(line),
                "`xtask` may only be a dev-dependency".to_string(),
            );
        } else if let Some(dep_rank) = CRATE_ORDER.iter().position(|c| *c == dep) {
            if dep_rank >= rank {
                report.add(
                    manifest,
                    Some(line),
                    format!(
                        "`{me}` depends on `{dep}`, which is not below it in {}",
                        CRATE_ORDER.join(" < ")
                    ),
                );
            }
        }
    }
}

/// [`TEST_SUPPORT`]: private, below every layer (no crate of the stack, no xtask), and its
/// root denies unsafe code (its counting allocator alone allows it).
fn check_test_support(report: &mut Report<'_>, dir: &Path) {
    let manifest = dir.join("Cargo.toml");
    let text = match fs::read_to_string(&manifest) {
        Ok(text) => text,
        Err(e) => {
            report.add(&manifest, None, format!("cannot read: {e}"));
            return;
        }
    };
    if !text.lines().any(|l| l.replace(' ', "") == "publish=false") {
        report.add(
            &manifest,
            None,
            format!("`{TEST_SUPPORT}` needs `publish = false`"),
        );
    }
    for (line, dep) in normal_dependencies(&text) {
        if dep == "xtask" || CRATE_ORDER.contains(&dep.as_str()) {
            report.add(
                &manifest,
                Some(line),
                format!("`{TEST_SUPPORT}` depends on `{dep}`: it must stay below every layer"),
            );
        }
    }
    let lib = dir.join("src").join("lib.rs");
    match fs::read_to_string(&lib) {
        Ok(root)
            if has_inner_attribute(&root, "deny", "unsafe_code")
                || has_inner_attribute(&root, "forbid", "unsafe_code") => {}
        Ok(_) => report.add(&lib, None, "missing `#![deny(unsafe_code)]`"),
        Err(e) => report.add(&lib, None, format!("cannot read: {e}")),
    }
}

/// Names (and 1-based lines) of the dependencies in `[dependencies]` and
/// `[target.'...'.dependencies]`, including `[dependencies.name]` tables and renames through
/// `package = "..."`. Dev- and build-dependencies are left out.
pub fn normal_dependencies(manifest: &str) -> Vec<(usize, String)> {
    let mut deps = Vec::new();
    let mut in_deps = false;
    let mut depth = 0i32;
    for (index, raw) in manifest.lines().enumerate() {
        let line_no = index + 1;
        let line = strip_comment(raw).trim();
        if depth > 0 {
            // Inside a multi-line inline table or array of the previous key.
            depth += bracket_balance(line);
            if in_deps {
                if let Some(pkg) = package_rename(line) {
                    if let Some(last) = deps.last_mut() {
                        *last = (line_no, pkg);
                    }
                }
            }
            continue;
        }
        if line.starts_with('[') {
            let header = line.trim_start_matches('[').trim_end_matches(']').trim();
            let parts = split_dotted(header);
            in_deps = false;
            if let Some(pos) = parts.iter().position(|p| p == "dependencies") {
                let is_normal = pos == 0 || (parts[0] == "target" && pos == 2);
                if is_normal {
                    match parts.get(pos + 1) {
                        None => in_deps = true,
                        Some(name) => deps.push((line_no, name.clone())),
                    }
                }
            }
            continue;
        }
        if !in_deps || line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = split_dotted(key.trim())
            .into_iter()
            .next()
            .unwrap_or_default();
        let name = package_rename(value).unwrap_or(key);
        if !name.is_empty() {
            deps.push((line_no, name));
        }
        depth += bracket_balance(value);
    }
    deps
}

/// Removes a `#` comment that is not inside a string.
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' | '\'' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Opened minus closed brackets and braces outside strings.
fn bracket_balance(s: &str) -> i32 {
    let mut in_string = false;
    let mut balance = 0;
    for c in s.chars() {
        match c {
            '"' | '\'' => in_string = !in_string,
            '{' | '[' if !in_string => balance += 1,
            '}' | ']' if !in_string => balance -= 1,
            _ => {}
        }
    }
    balance
}

/// Splits `target.'cfg(unix)'.dependencies` on dots outside quotes, unquoting the parts.
fn split_dotted(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            ('.', None) => parts.push(std::mem::take(&mut current).trim().to_string()),
            _ => current.push(c),
        }
    }
    parts.push(current.trim().to_string());
    parts
}

/// `package = "real-name"` inside an inline table, if any.
fn package_rename(s: &str) -> Option<String> {
    let at = s.find("package")?;
    let rest = s[at + "package".len()..].trim_start().strip_prefix('=')?;
    let rest = rest.trim_start().strip_prefix('"')?;
    rest.split('"').next().map(str::to_string)
}

/// Every crate root: `src/lib.rs`, `src/main.rs`, `src/bin/*.rs`, `src/bin/*/main.rs`.
fn crate_roots(dir: &Path) -> Vec<PathBuf> {
    let src = dir.join("src");
    let mut roots: Vec<PathBuf> = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .filter(|p| p.is_file())
        .collect();
    if let Ok(entries) = fs::read_dir(src.join("bin")) {
        let mut bins: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter_map(|p| {
                if p.extension().is_some_and(|e| e == "rs") {
                    Some(p)
                } else if p.join("main.rs").is_file() {
                    Some(p.join("main.rs"))
                } else {
                    None
                }
            })
            .collect();
        bins.sort();
        roots.extend(bins);
    }
    roots
}

fn has_inner_attribute(text: &str, attr: &str, lint: &str) -> bool {
    text.lines().any(|l| {
        let l: String = l.chars().filter(|c| !c.is_whitespace()).collect();
        l.strip_prefix("#![")
            .and_then(|rest| rest.strip_prefix(attr))
            .and_then(|rest| rest.strip_prefix('('))
            .is_some_and(|rest| rest.split([',', ')']).any(|x| x == lint))
    })
}

fn check_roots(report: &mut Report<'_>, dir: &Path, documented: bool) {
    let roots = crate_roots(dir);
    if roots.is_empty() {
        report.add(dir, None, "no src/lib.rs or src/main.rs");
    }
    for root in &roots {
        let text = match fs::read_to_string(root) {
            Ok(text) => text,
            Err(e) => {
                report.add(root, None, format!("cannot read: {e}"));
                continue;
            }
        };
        if !has_inner_attribute(&text, "forbid", "unsafe_code") {
            report.add(root, None, "missing `#![forbid(unsafe_code)]`");
        }
    }
    if !documented {
        return;
    }
    let lib = dir.join("src").join("lib.rs");
    let Ok(text) = fs::read_to_string(&lib) else {
        report.add(
            &lib,
            None,
            "missing: this crate must be a documented library",
        );
        return;
    };
    if !has_inner_attribute(&text, "deny", "missing_docs")
        && !has_inner_attribute(&text, "forbid", "missing_docs")
    {
        report.add(&lib, None, "missing `#![deny(missing_docs)]`");
    }
    let crate_doc: String = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let included_doc = text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("#![doc")?.trim_start().strip_prefix('=')?;
            let rest = rest.trim_start().strip_prefix("include_str!(\"")?;
            rest.split('"').next().map(str::to_string)
        })
        .filter_map(|rel| lib.parent().map(|p| p.join(rel)))
        .filter_map(|p| fs::read_to_string(p).ok())
        .collect::<Vec<_>>()
        .join("\n");
    if crate_doc.trim().is_empty() && included_doc.trim().is_empty() {
        report.add(&lib, None, "missing a crate doc comment (`//!`)");
    } else if !crate_doc.contains("```") && !included_doc.contains("```") {
        report.add(
            &lib,
            None,
            "the crate doc comment has no code example (```)",
        );
    }
}

fn check_docs(report: &mut Report<'_>) {
    let architecture = report.root.join("docs").join("ARCHITECTURE.md");
    if !architecture.is_file() {
        report.add(&architecture, None, "missing");
    }
    let readme = report.root.join("README.md");
    match fs::read_to_string(&readme) {
        Err(_) => report.add(&readme, None, "missing"),
        Ok(text) => {
            let head = text.lines().take(40).collect::<Vec<_>>().join("\n");
            for needle in ["cargo xtask demo", "cargo xtask ci"] {
                if !head.contains(needle) {
                    report.add(
                        &readme,
                        None,
                        format!("the first 40 lines must mention `{needle}`"),
                    );
                }
            }
        }
    }
}

fn check_macros(report: &mut Report<'_>, dir: &Path) {
    for path in rust_files(dir) {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            for needle in FORBIDDEN_MACROS {
                if line.contains(needle) {
                    report.add(&path, Some(i + 1), format!("leftover `{needle}`"));
                }
            }
        }
    }
}

/// Every `.rs` file under `dir`, sorted, skipping hidden entries and `target`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return files;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if name.ends_with(".rs") {
            files.push(path);
        }
    }
    files
}

/// `path` relative to the workspace root, with `/` separators.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The library sources of every crate under `crates/`: `crates/*/src/**/*.rs`.
fn library_files(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root.join("crates")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    dirs.sort();
    dirs.iter()
        .flat_map(|d| rust_files(&d.join("src")))
        .collect()
}

/// Files over [`MAX_FILE_LINES`] not in `allowed`, and entries of `allowed` that fit or
/// are gone.
fn check_file_lengths(report: &mut Report<'_>, allowed_long: &[&str]) {
    let root = report.root;
    let mut long = Vec::new();
    for path in library_files(root) {
        let rel = relative(root, &path);
        if GENERATED.iter().any(|g| rel.starts_with(&format!("{g}/"))) {
            continue;
        }
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        long.push((path, rel, text.lines().count()));
    }
    for (path, rel, lines) in &long {
        let allowed = allowed_long.contains(&rel.as_str());
        if *lines > MAX_FILE_LINES && !allowed {
            report.add(
                path,
                None,
                format!(
                    "{lines} lines, more than {MAX_FILE_LINES}: split it into modules of one \
                     job each (a `name/` directory with `mod.rs`)"
                ),
            );
        } else if *lines <= MAX_FILE_LINES && allowed {
            report.add(
                path,
                None,
                format!(
                    "{lines} lines now fit in {MAX_FILE_LINES}: remove it from tidy's \
                     TOO_LONG_ALLOWED"
                ),
            );
        }
    }
    for allowed in allowed_long {
        if !long.iter().any(|(_, rel, _)| rel == allowed) {
            report.add(
                &root.join(allowed),
                None,
                "listed in tidy's TOO_LONG_ALLOWED but missing: remove the entry",
            );
        }
    }
}

/// 1-based lines of `text` naming `hyper::` or `http::` as a path (not `my_http::`).
pub fn http_paths(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let found = ["hyper::", "http::"].iter().any(|needle| {
            line.match_indices(needle).any(|(at, _)| {
                !line[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        });
        if found {
            lines.push(i + 1);
        }
    }
    lines
}

fn check_http_names(report: &mut Report<'_>) {
    let root = report.root;
    for path in rust_files(&root.join("crates/etcd-kv/src")) {
        let rel = relative(root, &path);
        if HTTP_ALLOWED.contains(&rel.as_str()) {
            continue;
        }
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        for line in http_paths(&text) {
            report.add(
                &path,
                Some(line),
                "etcd-kv names `hyper::`/`http::` only in its transport-facing module \
                 (backend.rs): go through etcd-transport's API",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy() {
        let root = crate::workspace_root();
        let violations = check(&root);
        assert!(
            violations.is_empty(),
            "tidy found {} problem(s) in {}:\n{}",
            violations.len(),
            root.display(),
            violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    #[test]
    fn parses_dependencies() {
        let manifest = r#"
[package]
name = "etcd-kv"

[dependencies]
etcd-wire.workspace = true
serde = { version = "1", features = [
    "derive",
] } # comment with etcd-pmap = 1
wire2 = { package = "etcd-transport", path = "../x" }

[dev-dependencies]
xtask.workspace = true

[target.'cfg(unix)'.dependencies]
libc = "0.2"

[target.'cfg(unix)'.dev-dependencies]
proptest = "1"

[dependencies.etcd-pmap]
path = "../etcd-pmap"

[build-dependencies]
cc = "1"
"#;
        let names: Vec<String> = normal_dependencies(manifest)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(
            names,
            ["etcd-wire", "serde", "etcd-transport", "libc", "etcd-pmap"]
        );
    }

    #[test]
    fn finds_http_paths_but_not_lookalikes() {
        let text = "use hyper::body::Incoming;\n\
                    let url = \"http://127.0.0.1:1\";\n\
                    fn f(x: my_http::Thing, y: ::http::Method) {}\n\
                    // hyperx::not, nothttp::either\n";
        assert_eq!(http_paths(text), [1, 3]);
    }

    #[test]
    fn long_files_are_listed_and_allowances_must_shrink() {
        let dir = std::env::temp_dir().join(format!("tidy-lengths-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let long = "x\n".repeat(MAX_FILE_LINES + 1);
        let short = "x\n".repeat(10);
        let write = |rel: &str, text: &str| {
            let path = dir.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write("crates/etcd-kv/src/big.rs", &long);
        write("crates/etcd-kv/src/small.rs", &short);
        write("crates/etcd-wire/src/grpc/pb/generated.rs", &long);
        // Allowed and still long: fine; allowed but short now: must leave the list; allowed
        // but gone: likewise.
        let allowed_long = [
            "crates/etcd-kv/src/still_long.rs",
            "crates/etcd-kv/src/split_now.rs",
            "crates/etcd-kv/src/gone.rs",
        ];
        write(allowed_long[0], &long);
        write(allowed_long[1], &short);
        let mut report = Report {
            root: &dir,
            violations: Vec::new(),
        };
        check_file_lengths(&mut report, &allowed_long);
        let found: Vec<String> = report.violations.iter().map(ToString::to_string).collect();
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(
            found[0].starts_with("crates/etcd-kv/src/big.rs: 801 lines"),
            "{found:#?}"
        );
        assert!(
            found[1].contains("remove it from tidy's TOO_LONG_ALLOWED"),
            "{found:#?}"
        );
        assert!(found[1].starts_with(allowed_long[1]), "{found:#?}");
        assert!(found[2].starts_with(allowed_long[2]), "{found:#?}");
        assert!(found[2].contains("missing"), "{found:#?}");
    }

    #[test]
    fn test_support_stays_a_dev_dependency_below_every_layer() {
        let dir = std::env::temp_dir().join(format!("tidy-support-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let write = |rel: &str, text: &str| {
            let path = dir.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write(
            "crates/etcd-test-support/Cargo.toml",
            "[package]\nname = \"etcd-test-support\"\n\n[dependencies]\netcd-wire.workspace = true\n",
        );
        write(
            "crates/etcd-test-support/src/lib.rs",
            "//! No lint attributes.\n",
        );
        write(
            "crates/etcd-wire/Cargo.toml",
            "[dependencies]\netcd-test-support.workspace = true\n\n[dev-dependencies]\netcd-test-support.workspace = true\n",
        );
        let mut report = Report {
            root: &dir,
            violations: Vec::new(),
        };
        check_test_support(&mut report, &dir.join("crates/etcd-test-support"));
        check_manifest(&mut report, &dir.join("crates/etcd-wire/Cargo.toml"), 0);
        let found: Vec<String> = report.violations.iter().map(ToString::to_string).collect();
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found[0].contains("needs `publish = false`"), "{found:#?}");
        assert!(found[1].contains("depends on `etcd-wire`"), "{found:#?}");
        assert!(
            found[2].contains("missing `#![deny(unsafe_code)]`"),
            "{found:#?}"
        );
        assert!(
            found[3].starts_with("crates/etcd-wire/Cargo.toml:2: `etcd-test-support` may only"),
            "{found:#?}"
        );
    }

    #[test]
    fn finds_inner_attributes() {
        assert!(has_inner_attribute(
            "//! x\n#![forbid(unsafe_code)]\n",
            "forbid",
            "unsafe_code"
        ));
        assert!(has_inner_attribute(
            "#![ deny( missing_docs, rust_2018_idioms ) ]",
            "deny",
            "missing_docs"
        ));
        assert!(!has_inner_attribute(
            "#![deny(missing_debug_implementations)]",
            "deny",
            "missing_docs"
        ));
    }
}
