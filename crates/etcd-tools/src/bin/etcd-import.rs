//! `etcd-import`: load a dump into etcd. See `etcd-import --help` and docs/tools.md.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    etcd_tools::cli::import_main()
}
