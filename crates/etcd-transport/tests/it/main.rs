//! Integration tests of the transport against a real etcd (see `xtask::testing`).

mod support;

mod auth;
mod errors;
mod failover;
#[cfg(feature = "grpc")]
mod grpc_fake;
mod pool;
mod streams;
mod strict;
