//! `etcd-robustness`: the scenario runner behind `cargo xtask robustness`.
#![forbid(unsafe_code)]

fn main() {}
