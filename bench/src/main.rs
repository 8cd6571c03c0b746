//! `etcd-bench`: the workloads of `shared/bench-spec.md` with our client over the gateway
//! (`--client ours`, the default) or native gRPC (`--client ours-grpc`), or the raw-gateway
//! ceiling (`--client ceiling`). Run through
//! `cargo xtask bench`, which starts a throwaway etcd and prints the side-by-side table.
#![forbid(unsafe_code)]

mod ceiling;
mod ours;

use etcd_bench::{main_with, run_all, USAGE};
use std::process::ExitCode;

fn main() -> ExitCode {
    main_with("ours", |name, opts| async move {
        match name.as_str() {
            "ours" => {
                let client = ours::Ours::connect(&opts, etcd_kv::Protocol::Gateway).await?;
                run_all(client, &name, &opts).await
            }
            "ours-grpc" => {
                let client = ours::Ours::connect(&opts, etcd_kv::Protocol::Grpc).await?;
                run_all(client, &name, &opts).await
            }
            "ceiling" => run_all(ceiling::Ceiling::connect(&opts).await?, &name, &opts).await,
            other => Err(format!(
                "unknown client `{other}`: this binary runs `ours`, `ours-grpc` and `ceiling` \
                 (etcd-client is bench/grpc)\n\n{USAGE}"
            )
            .into()),
        }
    })
}
