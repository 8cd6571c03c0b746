//! Leases: grant, revoke, time-to-live, and keepers that keep them alive.
//!
//! Every [`LeaseKeeper`] of a client is served by one driver task (see [`hub`]) that
//! refreshes each lease every TTL/3 over one shared keep-alive stream, or with one POST per
//! refresh where the server allows no shared stream.

pub(crate) mod hub;
pub(crate) mod once;

use crate::client::Client;
pub use crate::error::LeaseLost;
use crate::error::{Error, Result};
use crate::request::{into_future, lease_error};
use crate::types::Header;
use bytes::Bytes;
use etcd_wire::lease as wire;
use tokio::sync::{mpsc, watch};

/// A granted lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    id: i64,
    ttl: i64,
}

impl Lease {
    /// The lease ID, to attach keys with `put(..).lease(id)`.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The TTL in seconds the server granted (it may exceed the one asked for).
    pub fn ttl(&self) -> i64 {
        self.ttl
    }
}

/// Shows `lease 7587862072954386189 (ttl 10s)`.
impl std::fmt::Display for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lease {} (ttl {}s)", self.id, self.ttl)
    }
}

/// Shows `lease 7587862072954386189: 7s left of 10s`, and the keys when they were asked
/// for: `..., keys: services/api/1, services/api/2` (as text, or escaped bytes).
impl std::fmt::Display for LeaseTimeToLive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lease {}: {}s left of {}s",
            self.id, self.ttl, self.granted_ttl
        )?;
        if !self.keys.is_empty() {
            f.write_str(", keys: ")?;
            for (i, key) in self.keys.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                crate::types::show_bytes(f, key)?;
            }
        }
        Ok(())
    }
}

/// A lease grant: `client.lease_grant(ttl)`, optionally `.id(chosen)`, then `.await`.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until awaited"]
pub struct LeaseGrant<'a> {
    client: &'a Client,
    request: wire::LeaseGrantRequest,
}

impl LeaseGrant<'_> {
    /// Asks for this lease ID instead of one chosen by the server.
    pub fn id(mut self, id: i64) -> Self {
        self.request.id = id;
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<Lease> {
        if self.request.ttl <= 0 {
            return Err(Error::invalid("a lease TTL must be at least 1 second"));
        }
        // Granting a server-chosen ID twice would leave a stray lease, but one that expires
        // by itself; a chosen ID is refused the second time. Neither is retried blindly.
        let answer: wire::LeaseGrantResponse = self.client.call(&self.request).await?;
        if !answer.error.is_empty() {
            return Err(Error::Protocol(format!(
                "lease grant failed: {}",
                answer.error
            )));
        }
        Ok(Lease {
            id: answer.id,
            ttl: answer.ttl,
        })
    }
}

into_future!(LeaseGrant, Lease);

/// A lease and the client to act on it: txaioetcd's and aetcd's lease object. Get one
/// with [`Client::grant_lease`] (grants a lease) or [`Client::lease`] (a lease granted
/// before, by its ID). Cheap to clone; holds no task and nothing on the server: dropping it
/// changes nothing (the lease expires after its TTL unless refreshed or kept alive).
///
/// ```no_run
/// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
/// let lease = client.grant_lease(5).await?;
/// client.put("services/api/1", "10.0.0.7:8080").lease(lease.id()).await?;
/// let ttl = lease.keep_alive_once().await?; // txaioetcd's `lease.refresh()`
/// println!("{}", lease.time_to_live().await?); // lease 7587...: 5s left of 5s
/// println!("{:?}", lease.keys().await?); // [b"services/api/1"]
/// lease.revoke().await?; // the key is gone
/// assert!(lease.keep_alive_once().await.is_err()); // Error::LeaseNotFound
/// # let _ = ttl; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LeaseHandle {
    client: Client,
    id: i64,
    granted_ttl: Option<i64>,
}

impl LeaseHandle {
    /// The lease ID, to attach keys with `put(..).lease(id)`.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The TTL in seconds the server granted, when this handle granted the lease
    /// ([`Client::grant_lease`]); `None` for a handle made from an ID
    /// ([`Client::lease`]): ask [`LeaseHandle::time_to_live`].
    pub fn granted_ttl(&self) -> Option<i64> {
        self.granted_ttl
    }

    /// Refreshes the lease once and returns its new TTL in seconds
    /// ([`Client::lease_keep_alive_once`]); an expired or revoked lease is
    /// [`Error::LeaseNotFound`].
    #[doc(alias = "refresh")]
    pub async fn keep_alive_once(&self) -> Result<i64> {
        self.client.lease_keep_alive_once(self.id).await
    }

    /// Revokes the lease: every key attached to it is deleted now. A lease already gone
    /// is [`Error::LeaseNotFound`].
    pub async fn revoke(&self) -> Result<()> {
        self.client.lease_revoke(self.id).await
    }

    /// How long the lease has left, its granted TTL and its keys (`{}` prints
    /// `lease 42: 7s left of 10s, keys: a, b`); an expired or revoked lease is
    /// [`Error::LeaseNotFound`].
    #[doc(alias = "remaining")]
    pub async fn time_to_live(&self) -> Result<LeaseTimeToLive> {
        self.client.lease_time_to_live(self.id).keys().await
    }

    /// The keys attached to the lease (without the client's namespace).
    pub async fn keys(&self) -> Result<Vec<Bytes>> {
        Ok(self.time_to_live().await?.keys)
    }

    /// Keeps the lease alive in the background until the returned keeper is dropped or
    /// revoked ([`Client::keep_alive`]). For a handle made from an ID, asks etcd for the
    /// lease's granted TTL first (the keeper refreshes at a third of it).
    pub async fn keep_alive(&self) -> Result<LeaseKeeper> {
        let ttl = match self.granted_ttl {
            Some(ttl) => ttl,
            None => self.client.lease_time_to_live(self.id).await?.granted_ttl,
        };
        Ok(self.client.keep_alive(Lease { id: self.id, ttl }))
    }
}

/// Shows `lease 7587862072954386189`, and its granted TTL when known: `(ttl 10s)`.
impl std::fmt::Display for LeaseHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lease {}", self.id)?;
        if let Some(ttl) = self.granted_ttl {
            write!(f, " (ttl {ttl}s)")?;
        }
        Ok(())
    }
}

/// What `time_to_live` reports about a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseTimeToLive {
    header: Header,
    id: i64,
    ttl: i64,
    granted_ttl: i64,
    keys: Vec<Bytes>,
}

impl LeaseTimeToLive {
    /// The lease ID.
    pub fn id(&self) -> i64 {
        self.id
    }
    /// Seconds left before the lease expires.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }
    /// The TTL the lease was granted with.
    pub fn granted_ttl(&self) -> i64 {
        self.granted_ttl
    }
    /// The keys attached (when asked for with `.keys()`), without the client's namespace,
    /// in key order.
    pub fn keys(&self) -> &[Bytes] {
        &self.keys
    }
    /// The response header.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

/// A time-to-live query: `client.lease_time_to_live(id)`, optionally `.keys()`, `.await`.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until awaited"]
pub struct LeaseTimeToLiveRequest<'a> {
    client: &'a Client,
    request: wire::LeaseTimeToLiveRequest,
}

impl LeaseTimeToLiveRequest<'_> {
    /// Also lists the keys attached to the lease.
    pub fn keys(mut self) -> Self {
        self.request.keys = true;
        self
    }

    /// Sends the request; an expired or unknown lease is [`Error::LeaseNotFound`].
    pub async fn send(self) -> Result<LeaseTimeToLive> {
        let id = self.request.id;
        let answer: wire::LeaseTimeToLiveResponse = self
            .client
            .call(&self.request)
            .await
            .map_err(|e| lease_error(e, id))?;
        if answer.ttl < 0 {
            return Err(Error::LeaseNotFound { lease_id: id });
        }
        let ns = &self.client.namespace;
        let mut keys: Vec<Bytes> = answer
            .keys
            .into_iter()
            .filter(|k| k.starts_with(ns.0.as_ref()))
            .map(|k| ns.strip(k))
            .collect();
        // etcd lists them in no particular order (from a map).
        keys.sort_unstable();
        Ok(LeaseTimeToLive {
            header: answer.header.into(),
            id: answer.id,
            ttl: answer.ttl,
            granted_ttl: answer.granted_ttl,
            keys,
        })
    }
}

into_future!(LeaseTimeToLiveRequest, LeaseTimeToLive);

/// Keeps a lease alive until dropped or revoked.
///
/// The client's keep-alive task refreshes the lease every TTL/3, retrying across endpoints;
/// all keepers of a client share it and its one connection. If the lease is
/// revoked elsewhere, expires, or cannot be refreshed before its deadline, the keeper stops
/// and [`LeaseKeeper::lost`] resolves with the reason.
///
/// Dropping the keeper stops the refreshes without revoking: the lease expires after its
/// TTL. Call [`LeaseKeeper::revoke`] to end it at once.
#[derive(Debug)]
pub struct LeaseKeeper {
    client: Client,
    lease: Lease,
    state: watch::Receiver<Option<LeaseLost>>,
    hub: mpsc::UnboundedSender<hub::Command>,
}

impl LeaseKeeper {
    /// The lease ID.
    pub fn id(&self) -> i64 {
        self.lease.id
    }

    /// The granted TTL in seconds.
    pub fn ttl(&self) -> i64 {
        self.lease.ttl
    }

    /// The reason the lease was lost, if it was.
    pub fn lost_reason(&self) -> Option<LeaseLost> {
        self.state.borrow().clone()
    }

    /// Resolves when the lease is lost. Cancel safe; may be awaited from several places
    /// through clones of the future's receiver.
    pub fn lost(&self) -> impl std::future::Future<Output = LeaseLost> + Send + 'static {
        let mut state = self.state.clone();
        async move {
            match state.wait_for(Option::is_some).await {
                Ok(reason) => reason.clone().unwrap_or(LeaseLost::Expired),
                // The task is gone without a verdict: it was aborted, the lease is not kept.
                Err(_) => LeaseLost::Unreachable {
                    last_error: "the keeper stopped".into(),
                },
            }
        }
    }

    /// Stops refreshing and revokes the lease: keys attached to it are deleted now.
    pub async fn revoke(self) -> Result<()> {
        let _ = self.hub.send(hub::Command::Remove { id: self.lease.id });
        match self.client.lease_revoke(self.lease.id).await {
            Err(Error::LeaseNotFound { .. }) | Ok(()) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        let _ = self.hub.send(hub::Command::Remove { id: self.lease.id });
    }
}

impl Client {
    /// Grants a lease of `ttl` seconds.
    pub fn lease_grant(&self, ttl: i64) -> LeaseGrant<'_> {
        LeaseGrant {
            client: self,
            request: wire::LeaseGrantRequest { ttl, id: 0 },
        }
    }

    /// Grants a lease of `ttl` seconds and returns a handle on it, to refresh, revoke and
    /// query it with no ID to pass around (see [`LeaseHandle`]). `client.lease_grant(ttl)`
    /// gives the plain [`Lease`] data instead, and takes a chosen ID.
    pub async fn grant_lease(&self, ttl: i64) -> Result<LeaseHandle> {
        let lease = self.lease_grant(ttl).await?;
        Ok(LeaseHandle {
            client: self.clone(),
            id: lease.id,
            granted_ttl: Some(lease.ttl),
        })
    }

    /// A handle on the lease `id` (granted before, by this or another client): nothing
    /// is sent until one of its methods is called.
    pub fn lease(&self, id: i64) -> LeaseHandle {
        LeaseHandle {
            client: self.clone(),
            id,
            granted_ttl: None,
        }
    }

    /// Revokes a lease: every key attached to it is deleted.
    pub async fn lease_revoke(&self, id: i64) -> Result<()> {
        let _: wire::LeaseRevokeResponse = self
            .call(&wire::LeaseRevokeRequest { id })
            .await
            .map_err(|e| lease_error(e, id))?;
        Ok(())
    }

    /// How long a lease has left; `.keys()` also lists its keys. With auth on, etcd
    /// 3.4.42+, 3.5.28+ and 3.6.9+ answer only an authenticated user, as for
    /// [`leases`](Self::leases) and keep-alives.
    pub fn lease_time_to_live(&self, id: i64) -> LeaseTimeToLiveRequest<'_> {
        LeaseTimeToLiveRequest {
            client: self,
            request: wire::LeaseTimeToLiveRequest { id, keys: false },
        }
    }

    /// The IDs of every lease (etcd 3.3+). With auth on, etcd 3.4.42+, 3.5.28+ and 3.6.9+
    /// answer only an authenticated user.
    pub async fn leases(&self) -> Result<Vec<i64>> {
        let answer: wire::LeaseLeasesResponse =
            self.call(&wire::LeaseLeasesRequest::default()).await?;
        Ok(answer.leases.into_iter().map(|l| l.id).collect())
    }

    /// Refreshes a lease once; returns its new TTL in seconds.
    ///
    /// The refresh goes over a keep-alive stream the client keeps for these calls (one
    /// round trip once it is open); a call made while another is on it, or where there is
    /// no such stream (per-call streams), makes a keep-alive call of its own. With auth on,
    /// keep-alives carry the token: over the gateway each is then a POST of its own with
    /// the `Authorization` header (the gateway's WebSocket takes no token on etcd before
    /// 3.5.32 and 3.6.13), over gRPC the token is metadata of the keep-alive stream; a
    /// client without credentials is refused on etcd 3.4.42+, 3.5.28+ and 3.6.9+ with
    /// [`Error::Auth`] (InvalidArgument "etcdserver: user name is empty").
    #[doc(alias = "refresh")]
    pub async fn lease_keep_alive_once(&self, id: i64) -> Result<i64> {
        let inner = &self.inner;
        let once = inner
            .once_stream
            .keep_alive(&inner.backend, inner.stream_mode, id);
        let ttl = match once.await {
            Some(ttl) => ttl,
            None => {
                let answer: wire::LeaseKeepAliveResponse = self
                    .inner
                    .backend
                    .call_stream_once(&wire::LeaseKeepAliveRequest { id }, None)
                    .await
                    .map_err(|e| lease_error(e, id))?;
                answer.ttl
            }
        };
        if ttl <= 0 {
            return Err(Error::LeaseNotFound { lease_id: id });
        }
        Ok(ttl)
    }

    /// Grants a lease of `ttl` seconds and keeps it alive until the keeper is dropped.
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// let keeper = client.lease_keeper(10).await?;
    /// client.put("services/api/1", "10.0.0.7:8080").lease(keeper.id()).await?;
    /// // ... serve; if the lease is lost, the registration is gone:
    /// let reason = keeper.lost().await;
    /// eprintln!("registration lost: {reason}");
    /// # Ok(()) }
    /// ```
    pub async fn lease_keeper(&self, ttl: i64) -> Result<LeaseKeeper> {
        let lease = self.lease_grant(ttl).await?;
        Ok(self.keep_alive(lease))
    }

    /// Keeps an existing lease alive until the keeper is dropped. Must be called within a
    /// Tokio runtime.
    pub fn keep_alive(&self, lease: Lease) -> LeaseKeeper {
        let (tx, rx) = watch::channel(None);
        let hub = self.inner.keep_alive_hub.commands();
        let _ = hub.send(hub::Command::Add {
            id: lease.id,
            ttl: lease.ttl,
            state: tx,
        });
        LeaseKeeper {
            client: self.clone(),
            lease,
            state: rx,
            hub,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_print_their_id_ttl_and_keys() {
        let lease = Lease { id: 42, ttl: 10 };
        assert_eq!(lease.to_string(), "lease 42 (ttl 10s)");
        let mut left = LeaseTimeToLive {
            header: Header::default(),
            id: 42,
            ttl: 7,
            granted_ttl: 10,
            keys: Vec::new(),
        };
        assert_eq!(left.to_string(), "lease 42: 7s left of 10s");
        left.keys = vec![Bytes::from_static(b"a/1"), Bytes::from_static(b"\xff")];
        assert_eq!(
            left.to_string(),
            "lease 42: 7s left of 10s, keys: a/1, b\"\\xff\""
        );
    }
}
