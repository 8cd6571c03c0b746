//! Shared bits of the example programs.
#![forbid(unsafe_code)]

/// The etcd endpoints the examples talk to: `ETCD_ENDPOINTS` (comma-separated) or
/// `http://127.0.0.1:2379`.
pub fn endpoints() -> Vec<String> {
    std::env::var("ETCD_ENDPOINTS")
        .ok()
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec!["http://127.0.0.1:2379".to_string()])
}
