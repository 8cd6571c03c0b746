//! `GET /version` (outside the API prefix): the server and cluster versions, from which the
//! gateway prefix follows.

use serde::{Deserialize, Serialize};

/// Answer to `GET /version`, e.g. `{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct VersionResponse {
    /// Version of the answering server, e.g. `"3.5.1"`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub etcdserver: String,
    /// Version of the cluster, e.g. `"3.5.0"`; `"not_decided"` early in a cluster's life.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub etcdcluster: String,
    /// Storage version (etcd 3.6+).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub storage: String,
}

impl VersionResponse {
    /// The server's `(major, minor)` version, if `etcdserver` parses.
    pub fn server_version(&self) -> Option<(u32, u32)> {
        let mut parts = self.etcdserver.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }

    /// The gateway's path prefix for this server: `/v3alpha` for 3.2 and older, `/v3beta` for
    /// 3.3, `/v3` from 3.4 on. `None` if the version does not parse or is not 3.x.
    pub fn api_prefix(&self) -> Option<&'static str> {
        match self.server_version()? {
            (3, 0..=2) => Some("/v3alpha"),
            (3, 3) => Some("/v3beta"),
            (3, _) => Some("/v3"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(v: &str) -> Option<&'static str> {
        VersionResponse {
            etcdserver: v.into(),
            ..VersionResponse::default()
        }
        .api_prefix()
    }

    #[test]
    fn prefixes_by_version() {
        assert_eq!(prefix("3.2.26"), Some("/v3alpha"));
        assert_eq!(prefix("3.3.27"), Some("/v3beta"));
        assert_eq!(prefix("3.4.23"), Some("/v3"));
        assert_eq!(prefix("3.5.1"), Some("/v3"));
        assert_eq!(prefix("3.6.0"), Some("/v3"));
        assert_eq!(prefix("garbage"), None);
        assert_eq!(prefix(""), None);
    }
}
