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
    /// The socket of a `unix://` endpoint (its requests name the host `localhost`).
    pub(crate) unix: Option<std::path::PathBuf>,
}

/// More methods than any client calls; past it, paths are built per request.
const MAX_CACHED_URIS: usize = 64;

impl Endpoint {
    /// Parses `url`: `http://host:port[/path]`, `https://host:port[/path]`, or `host:port`
    /// alone, which means `http://host:port` (as etcdctl takes it).
    ///
    /// Everything that would make the client dial something else than what was meant is
    /// refused here, before anything is resolved or sent, with a message that says what to
    /// write instead: a missing or invalid port (never a silent port 80), a misspelt or
    /// unsupported scheme, a path that is etcd's API prefix (the client adds it itself),
    /// credentials in the URL (never echoed back), a query, white space.
    pub(crate) fn parse(url: &str, prefix: Option<&str>) -> Result<Endpoint, Error> {
        let cell = tokio::sync::OnceCell::new();
        if let Some(p) = prefix {
            // Setting a fresh cell cannot fail.
            let _ = cell.set(normalize_prefix(p));
        }
        if let Some(path) = url.strip_prefix("unix://") {
            return Endpoint::unix(url, path, cell);
        }
        let parsed = parse_url(url).map_err(Error::Config)?;
        let authority = format!("{}:{}", parsed.host, parsed.port);
        let base = format!("{}://{authority}{}", parsed.scheme, parsed.path);
        let invalid = |e: &dyn std::fmt::Display| {
            Error::Config(format!(
                "invalid endpoint {:?}: {e}; write one such as http://127.0.0.1:2379",
                redact_endpoint(url)
            ))
        };
        let origin = Uri::builder()
            .scheme(parsed.scheme)
            .authority(authority.as_str())
            .path_and_query("/")
            .build()
            .map_err(|e| invalid(&e))?;
        if !parsed.path.is_empty() {
            // The path goes into every request's URI: it must be one.
            parsed
                .path
                .parse::<http::uri::PathAndQuery>()
                .map_err(|e| invalid(&e))?;
        }
        let host = HeaderValue::from_str(&authority).map_err(|e| invalid(&e))?;
        Ok(Endpoint {
            base,
            origin,
            host,
            path: parsed.path,
            prefix: cell,
            uris: RwLock::new(Vec::new()),
            unix: None,
        })
    }

    /// A `unix://<path>` endpoint: etcd listening on a unix socket (`--listen-client-urls
    /// unix://localhost:2379` makes the socket `localhost:2379` in etcd's working
    /// directory). The path is the socket's, relative to this process's working directory
    /// unless it starts with `/`.
    fn unix(
        url: &str,
        path: &str,
        prefix: tokio::sync::OnceCell<String>,
    ) -> Result<Endpoint, Error> {
        let refuse = |why: &str| {
            Err(Error::Config(format!(
                "invalid endpoint {:?}: {why}; write unix://<socket path>, such as \
                 unix:///run/etcd.sock or unix://localhost:2379",
                redact_endpoint(url)
            )))
        };
        if path.is_empty() || path.ends_with('/') {
            return refuse("no socket path");
        }
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return refuse("white space or a control character in the socket path");
        }
        if cfg!(not(unix)) {
            return refuse("unix sockets exist on unix systems only");
        }
        Ok(Endpoint {
            base: format!("unix://{path}"),
            origin: Uri::from_static("http://localhost/"),
            host: HeaderValue::from_static("localhost"),
            path: String::new(),
            prefix,
            uris: RwLock::new(Vec::new()),
            unix: Some(path.into()),
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

/// The parts of a checked endpoint URL.
#[derive(Debug, PartialEq)]
struct Parsed {
    scheme: &'static str,
    /// A host name, an IPv4 address, or an IPv6 address in brackets.
    host: String,
    port: u16,
    /// Empty, or `/...` without a trailing slash.
    path: String,
}

/// etcd's client port, suggested where a port is missing.
const ETCD_PORT: u16 = 2379;

/// The API prefixes etcd's gateway serves under; the client adds them itself.
const API_PREFIXES: [&str; 3] = ["v3", "v3beta", "v3alpha"];

/// An endpoint URL as it may be shown (in an error, a log, a tool's message): credentials
/// (anything before an `@`) replaced by `***`, so that a password never appears.
///
/// ```
/// assert_eq!(etcd_transport::redact_endpoint("http://u:pw@h:1"), "http://***@h:1");
/// assert_eq!(etcd_transport::redact_endpoint("u:pw@h:1"), "***@h:1");
/// ```
pub fn redact_endpoint(url: &str) -> String {
    let url = url.trim();
    let Some(at) = url.rfind('@') else {
        return url.to_string();
    };
    let start = url.find("://").map_or(0, |i| i + 3);
    if start > at {
        return "***".to_string();
    }
    format!("{}***{}", &url[..start], &url[at..])
}

/// Checks an endpoint URL (see [`Endpoint::parse`]); the error is the message to show.
fn parse_url(url: &str) -> Result<Parsed, String> {
    let text = url.trim();
    let show = redact_endpoint(url);
    let write = |what: String| format!("endpoint {show:?} {what}");
    if text.is_empty() {
        return Err("an endpoint is empty: write one such as http://127.0.0.1:2379".into());
    }
    if text.contains('@') {
        // Refused before anything else looks at the text: no part of it is echoed.
        return Err(format!(
            "endpoint {show:?} has credentials in it: credentials in the URL are not used; \
             write the endpoint without them and give them with .credentials(user, password)"
        ));
    }
    if text.contains(char::is_whitespace) {
        return Err(write(
            "contains white space: write one URL per endpoint, such as http://127.0.0.1:2379"
                .into(),
        ));
    }
    if text.contains(',') {
        return Err(write(
            "holds several endpoints: give each one separately, e.g. \
             .endpoints([\"http://127.0.0.1:2379\", \"http://127.0.0.1:22379\"])"
                .into(),
        ));
    }
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => {
            let scheme = match scheme.to_ascii_lowercase().as_str() {
                "http" => "http",
                "https" => "https",
                "unix" => {
                    return Err(write(format!(
                        "is a Unix socket with the scheme {scheme:?}: write unix://<socket path> \
                         in lower case"
                    )))
                }
                "unixs" => {
                    return Err(write(
                        "is TLS over a Unix socket, which is not supported: write \
                         unix://<socket path> or an https:// endpoint"
                            .into(),
                    ))
                }
                other => {
                    return Err(write(format!(
                        "has the scheme {other:?}: write http:// or https://, e.g. \
                         http://127.0.0.1:2379"
                    )))
                }
            };
            (scheme, rest)
        }
        None => {
            // `host:port[/path]`, unless it is a misspelt URL: `http:/x`, `http//x`, `htp:/x`.
            let head = text.split('/').next().unwrap_or("");
            if let Some(i) = text.find(":/").filter(|&i| i < head.len() + 1) {
                let rest = text[i..].trim_start_matches([':', '/']);
                return Err(write(format!(
                    "has a misspelt scheme ({:?}): write http://{rest} (or https://)",
                    &text[..i + 2]
                )));
            }
            if let Some((word, rest)) = text.split_once("//") {
                if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(write(format!(
                        "has a misspelt scheme ({:?}): write http://{rest} (or https://)",
                        format!("{word}//")
                    )));
                }
            }
            ("http", text)
        }
    };
    if rest.contains(['?', '#']) {
        return Err(write(
            "has a query or fragment: write the endpoint without it, e.g. http://127.0.0.1:2379"
                .into(),
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let path = path.trim_end_matches('/');
    if path.contains("//") {
        return Err(write(format!(
            "has an empty segment in its path ({path:?}): write the path with single slashes"
        )));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(write(
                "has an IPv6 address without its closing ']': write it as http://[::1]:2379".into(),
            ));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(write(format!(
                "has {addr:?} in brackets, which is not an IPv6 address"
            )));
        }
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => {
                return Err(write(format!(
                    "has {after:?} after its IPv6 address: write http://[{addr}]:{ETCD_PORT}"
                )))
            }
        };
        (format!("[{addr}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(write(format!(
                    "has an IPv6 address without brackets: write it as {scheme}://[{host}]:{ETCD_PORT} \
                     (or whichever port it listens on)"
                )))
            }
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(write(format!(
            "has no host: write one such as {scheme}://127.0.0.1:{ETCD_PORT}"
        )));
    }
    if !host.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(write(format!(
            "has {host:?} as its host, which is not a host name or an IP address: \
             write one such as {scheme}://127.0.0.1:{ETCD_PORT}"
        )));
    }
    let with_port = |port: &str| format!("{scheme}://{host}:{port}{path}");
    let port = match port {
        None => {
            return Err(write(format!(
                "has no port: write {} (etcd's client port; a missing port is never taken \
                 to mean {})",
                with_port(&ETCD_PORT.to_string()),
                if scheme == "https" { 443 } else { 80 },
            )))
        }
        Some("") => {
            return Err(write(format!(
                "has an empty port: write {}",
                with_port(&ETCD_PORT.to_string())
            )))
        }
        Some(port)
            if !port.trim_start_matches('-').is_empty()
                && port
                    .trim_start_matches('-')
                    .chars()
                    .all(|c| c.is_ascii_digit()) =>
        {
            match port.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(write(format!(
                        "has the port {port}, outside 1-65535: write a port etcd listens on, \
                         such as {}",
                        with_port(&ETCD_PORT.to_string())
                    )))
                }
            }
        }
        Some(port) => {
            return Err(write(format!(
                "has the port {port:?}, which is not a number: write {}",
                with_port(&ETCD_PORT.to_string())
            )))
        }
    };
    if let Some(last) = path.rsplit('/').next() {
        if API_PREFIXES.contains(&last.to_ascii_lowercase().as_str()) {
            let base = &path[..path.len() - last.len() - 1];
            return Err(write(format!(
                "ends with etcd's API prefix {:?}, which the client adds itself: write \
                 {scheme}://{host}:{port}{base} (to force a prefix, use .api_prefix(\"/{last}\") \
                 on the builder)",
                format!("/{last}")
            )));
        }
    }
    Ok(Parsed {
        scheme,
        host,
        port,
        path: path.to_string(),
    })
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
        let e = Endpoint::parse("https://etcd.example:443/proxy", Some("v3")).unwrap();
        assert_eq!(e.base, "https://etcd.example:443/proxy");
        assert!(e.is_https());
        assert_eq!(e.path, "/proxy");
        assert_eq!(e.host, "etcd.example:443");
        assert_eq!(e.origin.to_string(), "https://etcd.example:443/");
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
        let e = Endpoint::parse("HTTPS://[::1]:2379", None).unwrap();
        assert_eq!(e.base, "https://[::1]:2379");
    }

    /// Endpoints that are taken, and what they become.
    #[test]
    fn good_endpoints() {
        for (url, base) in [
            ("http://127.0.0.1:2379", "http://127.0.0.1:2379"),
            ("https://127.0.0.1:2379/", "https://127.0.0.1:2379"),
            ("127.0.0.1:1", "http://127.0.0.1:1"),
            ("localhost:65535", "http://localhost:65535"),
            (
                "\tetcd-0.etcd_svc.local:2379\n",
                "http://etcd-0.etcd_svc.local:2379",
            ),
            ("http://[::1]:2379", "http://[::1]:2379"),
            // Paths other than an API prefix: a reverse proxy's.
            ("http://127.0.0.1:8080/etcd", "http://127.0.0.1:8080/etcd"),
            ("http://127.0.0.1:8080/etcd/", "http://127.0.0.1:8080/etcd"),
            (
                "http://127.0.0.1:8080/v3/etcd",
                "http://127.0.0.1:8080/v3/etcd",
            ),
            ("http://127.0.0.1:8080/v30", "http://127.0.0.1:8080/v30"),
        ] {
            let e = Endpoint::parse(url, None).unwrap_or_else(|e| panic!("{url:?}: {e}"));
            assert_eq!(e.base, base, "{url:?}");
        }
    }

    /// Every bad endpoint: refused with a message holding what to write instead.
    #[test]
    fn bad_endpoints_say_what_to_write() {
        for (url, expected) in [
            ("", "an endpoint is empty: write one such as http://127.0.0.1:2379"),
            ("   ", "an endpoint is empty"),
            ("http://127.0.0.1:99999", "port 99999, outside 1-65535"),
            ("http://127.0.0.1:-1", "port -1, outside 1-65535"),
            ("http://127.0.0.1:0", "port 0, outside 1-65535"),
            ("127.0.0.1:0", "write a port etcd listens on, such as http://127.0.0.1:2379"),
            ("127.0.0.1:port", "port \"port\", which is not a number: write http://127.0.0.1:2379"),
            ("htp:/x", "misspelt scheme (\"htp:/\"): write http://x"),
            ("http:/127.0.0.1:2379", "write http://127.0.0.1:2379"),
            ("http//127.0.0.1:2379", "misspelt scheme (\"http//\"): write http://127.0.0.1:2379"),
            ("ftp://x:1", "scheme \"ftp\": write http:// or https://"),
            ("htp://127.0.0.1:2379", "scheme \"htp\": write http:// or https://"),
            ("unixs://localhost:2379", "TLS over a Unix socket, which is not supported"),
            ("UNIX:///run/etcd.sock", "write unix://<socket path> in lower case"),
            ("unix://", "no socket path; write unix://<socket path>"),
            ("127.0.0.1", "has no port: write http://127.0.0.1:2379"),
            ("http://127.0.0.1", "has no port: write http://127.0.0.1:2379"),
            ("https://etcd.example/proxy", "write https://etcd.example:2379/proxy"),
            ("http://127.0.0.1:", "empty port: write http://127.0.0.1:2379"),
            ("http://", "has no host"),
            ("http://:2379", "has no host"),
            ("http://127.0.0.1:2379/v3", "API prefix \"/v3\", which the client adds itself: write http://127.0.0.1:2379 (to force a prefix, use .api_prefix(\"/v3\")"),
            ("http://127.0.0.1:2379/v3/", "write http://127.0.0.1:2379 "),
            ("http://127.0.0.1:2379/v3beta", ".api_prefix(\"/v3beta\")"),
            ("http://127.0.0.1:2379/v3alpha/", ".api_prefix(\"/v3alpha\")"),
            ("http://127.0.0.1:8080/etcd/v3", "write http://127.0.0.1:8080/etcd "),
            ("127.0.0.1:2379?x=1", "query or fragment"),
            ("http://127.0.0.1:2379#x", "query or fragment"),
            ("http://127.0.0.1:2379/a//b", "empty segment"),
            ("http://127.0.0.1 :2379", "white space"),
            ("127.0.0.1:2379,127.0.0.1:22379", "give each one separately"),
            ("::1:2379", "IPv6 address without brackets: write it as http://[::1]:2379"),
            ("http://[::1", "closing ']'"),
            ("http://[::g]:2379", "not an IPv6 address"),
            ("http://[::1]", "has no port: write http://[::1]:2379"),
            ("http://[::1]x:2379", "after its IPv6 address"),
            ("http://exa mple:2379", "white space"),
            ("http://ex%61mple:2379", "not a host name or an IP address"),
            (
                "http://user:secret@127.0.0.1:2379",
                "credentials in the URL are not used; write the endpoint without them and give them with .credentials(user, password)",
            ),
        ] {
            let err = match Endpoint::parse(url, None) {
                Ok(e) => panic!("{url:?} was taken as {}", e.base),
                Err(Error::Config(message)) => message,
                Err(other) => panic!("{url:?}: not a configuration error: {other:?}"),
            };
            assert!(err.contains(expected), "{url:?}: {err}");
        }
    }

    /// A password in an endpoint never appears in the error, whatever else is wrong.
    #[test]
    fn credentials_are_never_echoed() {
        for url in [
            "http://user:secret@127.0.0.1:2379",
            "https://user:secret@127.0.0.1",
            "user:secret@127.0.0.1:2379",
            "http://user:se/cret@127.0.0.1:2379",
            "ftp://user:secret@x",
            "http://user:secret@127.0.0.1:2379/v3",
            "  http://:secret@127.0.0.1:99999  ",
        ] {
            let Err(err) = Endpoint::parse(url, None) else {
                panic!("{url:?} was taken");
            };
            let text = format!("{err} {err:?}");
            assert!(
                !text.contains("secret") && !text.contains("cret"),
                "{url:?}: {text}"
            );
            assert!(
                text.contains(".credentials(user, password)"),
                "{url:?}: {text}"
            );
        }
        assert_eq!(
            redact_endpoint("http://user:secret@127.0.0.1:2379"),
            "http://***@127.0.0.1:2379"
        );
        assert_eq!(redact_endpoint("user:secret@h:1"), "***@h:1");
        assert_eq!(
            redact_endpoint("http://127.0.0.1:2379"),
            "http://127.0.0.1:2379"
        );
    }
}
