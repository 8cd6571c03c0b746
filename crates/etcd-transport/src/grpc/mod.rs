//! Native gRPC (feature `grpc`): HTTP/2 and protobuf to etcd's gRPC services.
//!
//! One HTTP/2 connection per endpoint carries every call and stream of the transport,
//! multiplexed. The connection is ours (TCP and rustls from [`tls`](crate::tls), ALPN `h2`),
//! driven by the `h2` crate (hyper's HTTP/2); the gRPC layer on it is the few rules etcd
//! needs: a message is a 5-byte prefix (uncompressed flag, big-endian length) and its
//! protobuf bytes; the status is the `grpc-status` and `grpc-message` trailers (or headers,
//! for an answer without a body). Endpoint choice, failover, deadlines and auth stay in
//! [`Transport`](crate::Transport), shared with the gateway: this module only carries one
//! attempt to one endpoint.
//!
//! - `conn.rs`: the connections and the headers of a call;
//! - `codec.rs`: framing, status, and the errors a call ends with;
//! - `stream.rs`: [`GrpcStream`], a streaming call;
//! - `attempt.rs`: one attempt of each kind (unary, stream, version), as the failover loop
//!   asks for it.
//!
//! Why not tonic's client core over hyper: measured on this 2-core machine (64 concurrent
//! gets against etcd 3.5), it cost 36 µs of client CPU per call against 19-20 µs for the
//! same calls written on `h2` directly, and gave 17k calls/s against 21-25k. Most of the
//! difference is a task hyper spawns per request to stream its body, where `h2` takes a
//! unary call's one message at once; docs/ARCHITECTURE.md has the details.

mod attempt;
mod codec;
mod conn;
mod stream;

pub(crate) use conn::{Grpc, Slot};
pub(crate) use stream::GrpcStream;
