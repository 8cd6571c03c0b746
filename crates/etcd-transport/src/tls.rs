//! The HTTP(S) connector: TCP with nodelay and keep-alive (as configured), rustls for
//! `https://`.

use crate::config::TlsConfig;
use crate::endpoint::Endpoint;
use crate::error::Error;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower_service::Service;

type Connector = HttpsConnector<HttpConnector>;

/// A connection: TCP (with TLS for `https://`) from the connector, or a unix socket.
// The TCP side is the common one and was this size before sockets: not boxed, so that
// every read and write stays one indirection.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Io {
    Net(hyper_rustls::MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>),
    #[cfg(unix)]
    Unix(TokioIo<tokio::net::UnixStream>),
}

/// What opens connections: the TCP (and TLS) connector, and the connect timeout.
#[derive(Clone)]
pub(crate) struct Dialer {
    connector: Connector,
    timeout: Duration,
}

impl Dialer {
    /// Opens a connection to `endpoint`: its unix socket, or TCP (and TLS).
    pub(crate) async fn dial(&self, endpoint: &Endpoint) -> Result<Io, crate::BoxError> {
        #[cfg(unix)]
        if let Some(path) = &endpoint.unix {
            let timeout = self.timeout;
            let stream = tokio::time::timeout(timeout, tokio::net::UnixStream::connect(path))
                .await
                .map_err(|_| format!("connecting to the socket timed out after {timeout:?}"))??;
            return Ok(Io::Unix(TokioIo::new(stream)));
        }
        let mut connector = self.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx)).await?;
        Ok(Io::Net(connector.call(endpoint.origin.clone()).await?))
    }
}

/// Runs `$op` on whichever connection `$io` holds.
macro_rules! each {
    ($io:expr, $s:ident => $op:expr) => {
        match $io {
            Io::Net($s) => $op,
            #[cfg(unix)]
            Io::Unix($s) => $op,
        }
    };
}

impl hyper::rt::Read for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }

    fn is_write_vectored(&self) -> bool {
        each!(self, s => s.is_write_vectored())
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }
}

/// The connector of HTTP/1.1 connections (the gateway), or with `h2` of HTTP/2 ones
/// (native gRPC: ALPN `h2` over TLS, prior knowledge over plain TCP).
pub(crate) fn dialer(
    connect_timeout: Duration,
    keepalive: Option<Duration>,
    tls: Option<&TlsConfig>,
    any_https: bool,
    h2: bool,
) -> Result<Dialer, Error> {
    Ok(Dialer {
        connector: connector(connect_timeout, keepalive, tls, any_https, h2)?,
        timeout: connect_timeout,
    })
}

fn connector(
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
