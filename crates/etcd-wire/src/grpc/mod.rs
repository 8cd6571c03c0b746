//! etcd's native gRPC messages ([`pb`]) and conversions between them and the gateway types.
pub mod pb;
