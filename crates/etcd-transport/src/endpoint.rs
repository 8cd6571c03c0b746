//! One etcd endpoint: its base URL and its API prefix, detected once.

use crate::error::Error;
use http::Uri;

/// A parsed endpoint URL.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// `scheme://authority[/path]` without a trailing slash.
    pub(crate) base: String,
    /// The API prefix (`/v3`...), detected on first use unless configured.
    pub(crate) prefix: tokio::sync::OnceCell<String>,
}

impl Endpoint {
    pub(crate) fn parse(url: &str, prefix: Option<&str>) -> Result<Endpoint, Error> {
        let trimmed = url.trim().trim_end_matches('/');
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
        if uri.authority().is_none() {
            return Err(Error::Config(format!("endpoint {url:?} has no host")));
        }
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
        Ok(Endpoint {
            base: trimmed.to_string(),
            prefix: cell,
        })
    }

    pub(crate) fn is_https(&self) -> bool {
        self.base.starts_with("https://")
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
        let e = Endpoint::parse("https://etcd.example/proxy", Some("v3")).unwrap();
        assert_eq!(e.base, "https://etcd.example/proxy");
        assert_eq!(e.prefix.get().map(String::as_str), Some("/v3"));
        assert!(Endpoint::parse("127.0.0.1:2379", None).is_err());
        assert!(Endpoint::parse("ftp://x", None).is_err());
        assert!(Endpoint::parse("http://", None).is_err());
    }
}
