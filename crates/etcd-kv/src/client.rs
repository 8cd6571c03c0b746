//! The client: a cheap-to-clone handle shared by many tasks.

use crate::error::{Error, Result};
use crate::key::{IntoBytes, Namespace};
use etcd_transport::{Idempotency, RetryConfig, TlsConfig, Transport, TransportBuilder};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// An etcd client. Clone it freely: clones share connections. Every method takes `&self`.
///
/// ```no_run
/// # async fn demo() -> etcd_kv::Result<()> {
/// let client = etcd_kv::Client::connect("http://127.0.0.1:2379").await?;
/// client.put("greeting", "hello").await?;
/// let kv = client.get("greeting").await?.expect("just written");
/// assert_eq!(kv.value(), b"hello");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    pub(crate) namespace: Namespace,
}

pub(crate) struct Inner {
    pub(crate) transport: Transport,
    pub(crate) max_txn_ops: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.inner.transport.endpoints())
            .field("namespace", &self.namespace.0)
            .finish()
    }
}

impl Client {
    /// Connects to one endpoint with default settings and checks that it answers.
    pub async fn connect(endpoint: impl Into<String>) -> Result<Client> {
        Client::builder().endpoint(endpoint).connect().await
    }

    /// A builder for a client with several endpoints, timeouts, TLS, auth or a namespace.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A view of this client in which every key is prefixed with `prefix` on the way out and
    /// stripped on the way back, like Go's `clientv3/namespace`. Views nest.
    pub fn with_namespace(&self, prefix: impl IntoBytes) -> Client {
        let prefix = prefix.into_bytes();
        let combined = if self.namespace.is_empty() {
            prefix
        } else {
            let mut p = self.namespace.0.to_vec();
            p.extend_from_slice(&prefix);
            p.into()
        };
        Client {
            inner: self.inner.clone(),
            namespace: Namespace(combined),
        }
    }

    /// The namespace prefix of this view (empty for none).
    pub fn namespace(&self) -> &[u8] {
        &self.namespace.0
    }

    /// The transport underneath, for gateway calls this crate does not wrap.
    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// The version of the server behind the current endpoint, such as `"3.5.1"`.
    pub async fn server_version(&self) -> Result<String> {
        Ok(self.inner.transport.server_version().await?)
    }

    pub(crate) async fn call<Req, Resp>(
        &self,
        method: &str,
        request: &Req,
        idempotency: Idempotency,
    ) -> Result<Resp>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        Ok(self
            .inner
            .transport
            .unary(method, request, idempotency)
            .await?)
    }

    /// [`call`](Self::call) with a decoder of the answer body of its own.
    pub(crate) async fn call_with<Req, Resp>(
        &self,
        method: &str,
        request: &Req,
        idempotency: Idempotency,
        decode: fn(&[u8]) -> std::result::Result<Resp, etcd_wire::DecodeError>,
    ) -> Result<Resp>
    where
        Req: Serialize + ?Sized,
    {
        Ok(self
            .inner
            .transport
            .unary_with(method, request, idempotency, decode)
            .await?)
    }
}

/// Builds a [`Client`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    transport: TransportBuilder,
    namespace: Option<bytes::Bytes>,
    max_txn_ops: usize,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            transport: Transport::builder(),
            namespace: None,
            max_txn_ops: 128,
        }
    }
}

impl ClientBuilder {
    /// Adds an endpoint URL (`http://host:port` or `https://host:port`).
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.transport = self.transport.endpoint(url);
        self
    }

    /// Adds several endpoint URLs; requests fail over between them.
    pub fn endpoints<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.transport = self.transport.endpoints(urls);
        self
    }

    /// How long to wait for a connection. Default 3 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.transport = self.transport.connect_timeout(timeout);
        self
    }

    /// How long one attempt of a request may take. Default 10 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.transport = self.transport.request_timeout(timeout);
        self
    }

    /// The retry policy for requests that are safe to repeat.
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.transport = self.transport.retry(retry);
        self
    }

    /// TLS settings for `https://` endpoints.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.transport = self.transport.tls(tls);
        self
    }

    /// Authenticates as this user; tokens are renewed automatically.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.transport = self.transport.credentials(user, password);
        self
    }

    /// Prefixes every key with `prefix` (see [`Client::with_namespace`]).
    pub fn namespace(mut self, prefix: impl IntoBytes) -> Self {
        self.namespace = Some(prefix.into_bytes());
        self
    }

    /// The server's `--max-txn-ops` (default 128): larger transactions are refused before
    /// sending.
    pub fn max_txn_ops(mut self, n: usize) -> Self {
        self.max_txn_ops = n;
        self
    }

    /// Changes any other transport setting.
    pub fn transport(mut self, f: impl FnOnce(TransportBuilder) -> TransportBuilder) -> Self {
        self.transport = f(self.transport);
        self
    }

    /// Builds the client without contacting the server.
    pub fn build(self) -> Result<Client> {
        let transport = self.transport.build().map_err(Error::from)?;
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                max_txn_ops: self.max_txn_ops,
            }),
            namespace: Namespace(self.namespace.unwrap_or_default()),
        })
    }

    /// Builds the client and checks that an endpoint answers (each is tried in turn;
    /// requests then start at the one that answered).
    pub async fn connect(self) -> Result<Client> {
        let client = self.build()?;
        client.server_version().await?;
        Ok(client)
    }
}
