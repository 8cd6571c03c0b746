//! DNS SRV discovery of a cluster's client endpoints (feature `srv`), as etcd and its Go
//! client do it: `_etcd-client-ssl._tcp.<domain>` gives `https://` endpoints and
//! `_etcd-client._tcp.<domain>` `http://` ones.

use crate::error::Error;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, Resolver};
use std::net::SocketAddr;

/// Where to find a cluster's endpoints in DNS: the SRV records
/// `_etcd-client-ssl._tcp.<domain>` (served over TLS: `https://target:port`) and
/// `_etcd-client._tcp.<domain>` (`http://target:port`), as `etcdctl --discovery-srv` and
/// Go's clientv3 read them. With a [`service_name`](Self::service_name), the records are
/// `_etcd-client-ssl-<name>._tcp` and `_etcd-client-<name>._tcp`.
///
/// ```no_run
/// # async fn demo() -> Result<(), etcd_transport::Error> {
/// let endpoints = etcd_transport::SrvDiscovery::new("example.com").endpoints().await?;
/// // e.g. ["https://infra0.example.com:2379", "https://infra1.example.com:2379", ...]
/// # let _ = endpoints; Ok(()) }
/// ```
///
/// The records are looked up once (etcd-kv's `auto_sync` then follows membership). Both
/// names are asked; the lookup fails only when neither has records. Endpoints come in the
/// records' priority order (lowest first), then by weight (highest first). A target name
/// is kept as it is (without its final dot): it is resolved when connecting, like any
/// endpoint's host.
#[derive(Debug, Clone)]
pub struct SrvDiscovery {
    domain: String,
    service_name: Option<String>,
    name_server: Option<SocketAddr>,
}

impl SrvDiscovery {
    /// Discovery under `domain` (e.g. `example.com`), through the system's resolver.
    pub fn new(domain: impl Into<String>) -> SrvDiscovery {
        SrvDiscovery {
            domain: domain.into(),
            service_name: None,
            name_server: None,
        }
    }

    /// Asks for `_etcd-client-<name>._tcp` records (etcd's `--discovery-srv-name`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Asks this DNS server (over UDP, then TCP for a truncated answer) instead of the
    /// system's resolvers.
    pub fn name_server(mut self, address: SocketAddr) -> Self {
        self.name_server = Some(address);
        self
    }

    /// The record names asked, with the scheme of each.
    fn names(&self) -> [(String, &'static str); 2] {
        let suffix = self
            .service_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .map(|n| format!("-{n}"))
            .unwrap_or_default();
        let domain = self.domain.trim_end_matches('.');
        [
            (format!("_etcd-client-ssl{suffix}._tcp.{domain}."), "https"),
            (format!("_etcd-client{suffix}._tcp.{domain}."), "http"),
        ]
    }

    /// Looks the records up: the endpoints, `https://` ones first.
    pub async fn endpoints(&self) -> Result<Vec<String>, Error> {
        if self.domain.trim_end_matches('.').is_empty()
            || self
                .domain
                .contains(|c: char| c.is_whitespace() || c == '/')
        {
            return Err(Error::Config(format!(
                "invalid SRV discovery domain {:?}",
                self.domain
            )));
        }
        let resolver = match self.name_server {
            Some(address) => {
                let mut config = ResolverConfig::new();
                config.add_name_server(NameServerConfig::new(address, Protocol::Udp));
                config.add_name_server(NameServerConfig::new(address, Protocol::Tcp));
                Resolver::builder_with_config(config, TokioConnectionProvider::default()).build()
            }
            None => Resolver::builder_tokio()
                .map_err(|e| self.failed(Box::new(e)))?
                .build(),
        };
        let mut endpoints = Vec::new();
        let mut errors: Vec<ResolveError> = Vec::new();
        for (name, scheme) in self.names() {
            match resolver.srv_lookup(name.as_str()).await {
                Ok(lookup) => {
                    let mut records: Vec<_> = lookup.iter().cloned().collect();
                    records.sort_by_key(|r| (r.priority(), std::cmp::Reverse(r.weight())));
                    for record in records {
                        let target = record.target().to_ascii();
                        let host = target.trim_end_matches('.');
                        let host = if host.contains(':') {
                            format!("[{host}]")
                        } else {
                            host.to_string()
                        };
                        endpoints.push(format!("{scheme}://{host}:{}", record.port()));
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        if endpoints.is_empty() {
            let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(self.failed(format!("no SRV records found: {}", reasons.join("; ")).into()));
        }
        endpoints.dedup();
        Ok(endpoints)
    }

    fn failed(&self, source: crate::error::BoxError) -> Error {
        Error::Discovery {
            domain: self.domain.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_follow_etcd() {
        let plain = SrvDiscovery::new("example.com");
        assert_eq!(
            plain.names(),
            [
                ("_etcd-client-ssl._tcp.example.com.".to_string(), "https"),
                ("_etcd-client._tcp.example.com.".to_string(), "http"),
            ]
        );
        let named = SrvDiscovery::new("example.com.").service_name("prod");
        assert_eq!(
            named.names()[0].0,
            "_etcd-client-ssl-prod._tcp.example.com."
        );
        assert_eq!(named.names()[1].0, "_etcd-client-prod._tcp.example.com.");
    }
}
