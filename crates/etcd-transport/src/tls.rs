//! The HTTP(S) connector: TCP with nodelay and keep-alive (as configured), rustls for
//! `https://`.

use crate::config::TlsConfig;
use crate::error::Error;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::time::Duration;

pub(crate) type Connector = HttpsConnector<HttpConnector>;

/// A connection the connector opened: TCP, with TLS for `https://`.
pub(crate) type Io = hyper_rustls::MaybeHttpsStream<hyper_util::rt::TokioIo<tokio::net::TcpStream>>;

/// The connector of HTTP/1.1 connections (the gateway), or with `h2` of HTTP/2 ones
/// (native gRPC: ALPN `h2` over TLS, prior knowledge over plain TCP).
pub(crate) fn connector(
    connect_timeout: Duration,
    keepalive: Option<Duration>,
    tls: Option<&TlsConfig>,
    any_https: bool,
    h2: bool,
) -> Result<Connector, Error> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(keepalive);
    if keepalive.is_some() {
        http.set_keepalive_interval(keepalive);
        http.set_keepalive_retries(Some(3));
    }
    let config = client_config(tls, any_https)?;
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http();
    #[cfg(feature = "grpc")]
    if h2 {
        // ALPN h2 only: etcd's gRPC server takes nothing else over TLS.
        return Ok(builder.enable_http2().wrap_connector(http));
    }
    #[cfg(not(feature = "grpc"))]
    let _ = h2;
    Ok(builder.enable_http1().wrap_connector(http))
}

fn client_config(tls: Option<&TlsConfig>, any_https: bool) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(Box::new(e)))?;
    let mut roots = rustls::RootCertStore::empty();
    match tls.and_then(|t| t.ca_pem.as_deref()) {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| Error::Tls(Box::new(e)))?;
                roots.add(cert).map_err(|e| Error::Tls(Box::new(e)))?;
            }
            if roots.is_empty() {
                return Err(Error::Config("the CA file holds no certificate".into()));
            }
        }
        None if any_https => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                // A system certificate rustls cannot parse is skipped, as browsers do.
                let _ = roots.add(cert);
            }
        }
        None => {}
    }
    let builder = builder.with_root_certificates(roots);
    match tls.and_then(|t| t.identity_pem.as_ref()) {
        Some((cert_pem, key_pem)) => {
            let chain = CertificateDer::pem_slice_iter(cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Tls(Box::new(e)))?;
            if chain.is_empty() {
                return Err(Error::Config(
                    "the client certificate file holds no certificate".into(),
                ));
            }
            let key =
                PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| Error::Tls(Box::new(e)))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Tls(Box::new(e)))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}
