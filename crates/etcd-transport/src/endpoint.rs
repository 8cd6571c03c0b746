//! One etcd endpoint: its base URL and its API prefix, detected once.

use crate::error::Error;
use http::{HeaderValue, Uri};
use std::sync::RwLock;

/// A parsed endpoint URL.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// `scheme://authority[/path]` without a trailing slash.
    pub(crate) base: String,
    /// `scheme://authority`: what the connector connects to.
    pub(crate) origin: Uri,
    /// The `Host` header of every request.
    pub(crate) host: HeaderValue,
    /// The path of the base URL without a trailing slash (usually empty), put before the
    /// API prefix in request paths.
    pub(crate) path: String,
    /// The API prefix (`/v3`...), detected on first use unless configured.
    pub(crate) prefix: tokio::sync::OnceCell<String>,
    /// Request paths already built, by method: formatting and parsing a URI for every
    /// request is a visible part of its cost.
    uris: RwLock<Vec<(Box<str>, Uri)>>,
}

/// More methods than any client calls; past it, paths are built per request.
const MAX_CACHED_URIS: usize = 64;

impl Endpoint {
    /// Parses `url`: `http://host:port[/path]`, `https://...`, or `host:port` alone, which
    /// means `http://host:port` (as etcdctl takes it).
    pub(crate) fn parse(url: &str, prefix: Option<&str>) -> Result<Endpoint, Error> {
        let trimmed = url.trim().trim_end_matches('/');
        let with_scheme;
        let trimmed = if url.contains("://") || trimmed.is_empty() {
            trimmed
        } else {
            with_scheme = format!("http://{trimmed}");
            with_scheme.as_str()
        };
        let uri: Uri = trimmed
            .parse()
            .map_err(|e| Error::Config(format!("invalid endpoint URL {url:?}: {e}")))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(Error::Config(format!(
                    "endpoint {url:?} must start with http:// or https://"
                )))
            }
        }
        let Some(authority) = uri.authority() else {
            return Err(Error::Config(format!("endpoint {url:?} has no host")));
        };
        if uri.query().is_some() {
            return Err(Error::Config(format!(
                "endpoint {url:?} must not have a query"
            )));
        }
        let cell = tokio::sync::OnceCell::new();
        if let Some(p) = prefix {
            // Setting a fresh cell cannot fail.
            let _ = cell.set(normalize_prefix(p));
        }
        let origin = Uri::builder()
            .scheme(uri.scheme_str().unwrap_or("http"))
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| Error::Config(format!("invalid endpoint URL {url:?}: {e}")))?;
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|e| Error::Config(format!("invalid endpoint host in {url:?}: {e}")))?;
        Ok(Endpoint {
            base: trimmed.to_string(),
            origin,
            host,
            path: uri.path().trim_end_matches('/').to_string(),
            prefix: cell,
            uris: RwLock::new(Vec::new()),
        })
    }

    /// Whether the API prefix is known (configured, or detected).
    pub(crate) fn prefix_known(&self) -> bool {
        self.prefix.initialized()
    }

    pub(crate) fn is_https(&self) -> bool {
        self.base.starts_with("https://")
    }

    /// The origin-form URI of `method` (such as `"kv/put"`) under API prefix `prefix`.
    pub(crate) fn method_uri(&self, prefix: &str, method: &str) -> Result<Uri, Error> {
        let read = match self.uris.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((_, uri)) = read.iter().find(|(m, _)| &**m == method) {
            return Ok(uri.clone());
        }
        drop(read);
        let path = format!("{}{}/{}", self.path, prefix, method.trim_start_matches('/'));
        let uri = Uri::try_from(path)
            .map_err(|e| Error::Config(format!("invalid method {method:?}: {e}")))?;
        let mut write = match self.uris.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if write.len() < MAX_CACHED_URIS && !write.iter().any(|(m, _)| &**m == method) {
            write.push((method.into(), uri.clone()));
        }
        Ok(uri)
    }
}

fn normalize_prefix(p: &str) -> String {
    let p = p.trim_end_matches('/');
    if p.starts_with('/') || p.is_empty() {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let e = Endpoint::parse("http://127.0.0.1:2379/", None).unwrap();
        assert_eq!(e.base, "http://127.0.0.1:2379");
        assert!(!e.is_https());
        assert_eq!(e.path, "");
        assert_eq!(e.host, "127.0.0.1:2379");
        let e = Endpoint::parse("https://etcd.example/proxy", Some("v3")).unwrap();
        assert_eq!(e.base, "https://etcd.example/proxy");
        assert_eq!(e.path, "/proxy");
        assert_eq!(e.host, "etcd.example");
        assert_eq!(e.origin.to_string(), "https://etcd.example/");
        assert_eq!(e.prefix.get().map(String::as_str), Some("/v3"));
        assert_eq!(
            e.method_uri("/v3", "kv/put").unwrap().to_string(),
            "/proxy/v3/kv/put"
        );
        assert_eq!(
            e.method_uri("/v3", "/kv/put").unwrap().to_string(),
            "/proxy/v3/kv/put"
        );
        let e = Endpoint::parse("127.0.0.1:2379", None).unwrap();
        assert_eq!(e.base, "http://127.0.0.1:2379");
        assert_eq!(e.origin.to_string(), "http://127.0.0.1:2379/");
        let e = Endpoint::parse(" localhost:2379/ ", None).unwrap();
        assert_eq!(e.base, "http://localhost:2379");
        assert_eq!(e.host, "localhost:2379");
        let e = Endpoint::parse("[::1]:2379/gw", None).unwrap();
        assert_eq!(
            (e.base.as_str(), e.path.as_str()),
            ("http://[::1]:2379/gw", "/gw")
        );
        assert!(Endpoint::parse("", None).is_err());
        assert!(Endpoint::parse("127.0.0.1:2379?x=1", None).is_err());
        assert!(Endpoint::parse("ftp://x", None).is_err());
        assert!(Endpoint::parse("http://", None).is_err());
    }
}
