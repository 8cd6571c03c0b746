//! `etcd-export`: dump etcd keys to a file. See `etcd-export --help` and docs/tools.md.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    etcd_tools::cli::export_main()
}
