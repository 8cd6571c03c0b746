//! etcd-tools: placeholder crate, filled by a later issue.
#![forbid(unsafe_code)]
