//! Sessions: one kept-alive lease shared by locks and elections.
//!
//! A [`Session`] is Go's `concurrency.Session`: a lease refreshed by a [`LeaseKeeper`]. Lock
//! and election keys are attached to it, so if the process dies (or loses etcd for longer
//! than the TTL) etcd deletes them and others can go on. When the lease is lost, everything
//! held through the session is lost with it, and [`Session::lost`] says so.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::lease::{LeaseKeeper, LeaseLost};
use crate::request::into_future;
use bytes::Bytes;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::watch;

/// The TTL of a session made without [`SessionBuilder::ttl`], in seconds (Go's default).
pub const DEFAULT_SESSION_TTL: i64 = 60;

/// A lease kept alive in the background, through which locks and leaderships are held.
///
/// Clones share the lease. Many tasks may use one session at once; tasks of one session
/// that lock the same name (or campaign in the same election) queue up locally first, since
/// a session has one key per name (`<name>/<lease id in hex>`, as in Go's `clientv3/concurrency`).
///
/// When the last clone is dropped (and no lock guard or leadership still holds it), the
/// refreshes stop without revoking: the lease, and every key attached to it, expires after
/// its TTL. [`Session::close`] revokes it at once.
///
/// ```no_run
/// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
/// use etcd_kv::Session;
/// let session = Session::builder(&client).ttl(10).await?;
/// let guard = client.lock("jobs/cleanup").session(&session).await?;
/// tokio::select! {
///     _ = async { /* ... work under the lock ... */ } => guard.release().await?,
///     reason = session.lost() => eprintln!("lock lost: {reason}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    lease_id: i64,
    ttl: i64,
    /// `None` once closed or orphaned.
    keeper: Mutex<Option<LeaseKeeper>>,
    /// Why the session ended, once it has.
    state: watch::Sender<Option<LeaseLost>>,
    /// One local queue per wire key prefix (lock name or election), so that tasks sharing
    /// the session never use its one key per name at the same time.
    local: Mutex<HashMap<Bytes, Weak<tokio::sync::Mutex<()>>>>,
    /// The task passing the keeper's verdict on to `state`.
    forward: tokio::task::AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.forward.abort();
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("lease_id", &format_args!("{:x}", self.inner.lease_id))
            .field("ttl", &self.inner.ttl)
            .field("lost", &*self.inner.state.borrow())
            .finish()
    }
}

/// Creates a [`Session`]: `Session::builder(&client)`, optionally `.ttl(secs)`, then `.await`.
#[derive(Debug, Clone)]
#[must_use = "a session is created when awaited"]
pub struct SessionBuilder<'a> {
    client: &'a Client,
    ttl: i64,
}

impl SessionBuilder<'_> {
    /// The lease TTL in seconds (default [`DEFAULT_SESSION_TTL`]): how long after this
    /// process dies, or loses etcd, its locks stay held. etcd raises very short TTLs to its
    /// minimum (about 2 s with default election settings).
    pub fn ttl(mut self, seconds: i64) -> Self {
        self.ttl = seconds;
        self
    }

    /// Grants the lease and starts keeping it alive.
    pub async fn send(self) -> Result<Session> {
        let keeper = self.client.lease_keeper(self.ttl).await?;
        Ok(Session::from_keeper(self.client, keeper))
    }
}

into_future!(SessionBuilder, Session);

impl Session {
    /// A builder for a new session over `client`; await it.
    pub fn builder(client: &Client) -> SessionBuilder<'_> {
        SessionBuilder {
            client,
            ttl: DEFAULT_SESSION_TTL,
        }
    }

    /// A session over a lease already kept alive by `keeper` (for instance one that also
    /// holds a service registration). Must be called within a Tokio runtime.
    pub fn from_keeper(client: &Client, keeper: LeaseKeeper) -> Session {
        let (state, _) = watch::channel(keeper.lost_reason());
        // Forward the keeper's verdict; the task ends when the keeper does.
        let lost = keeper.lost();
        let verdict = state.clone();
        let forward = tokio::spawn(async move {
            let reason = lost.await;
            verdict.send_if_modified(|s| set_once(s, reason));
        })
        .abort_handle();
        Session {
            inner: Arc::new(Inner {
                client: client.clone(),
                lease_id: keeper.id(),
                ttl: keeper.ttl(),
                keeper: Mutex::new(Some(keeper)),
                state,
                local: Mutex::new(HashMap::new()),
                forward,
            }),
        }
    }

    /// The lease ID: keys put with `.lease(session.lease_id())` live as long as the session.
    pub fn lease_id(&self) -> i64 {
        self.inner.lease_id
    }

    /// The lease TTL in seconds, as granted.
    pub fn ttl(&self) -> i64 {
        self.inner.ttl
    }

    /// The client the session was made with.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Resolves when the session is lost: the lease expired, was revoked, could not be
    /// refreshed in time, or the session was closed or orphaned. Everything held through the
    /// session is then gone. Cancel safe; call it as often as needed.
    pub fn lost(&self) -> impl Future<Output = LeaseLost> + Send + 'static {
        let mut state = self.inner.state.subscribe();
        async move {
            match state.wait_for(Option::is_some).await {
                Ok(reason) => reason.clone().unwrap_or(LeaseLost::Expired),
                // The session and its keeper are gone without a verdict (a runtime
                // shutting down): lost all the same.
                Err(_) => LeaseLost::Expired,
            }
        }
    }

    /// Why the session was lost, if it was.
    pub fn lost_reason(&self) -> Option<LeaseLost> {
        self.inner.state.borrow().clone()
    }

    /// True once the session is lost (see [`Session::lost`]).
    pub fn is_lost(&self) -> bool {
        self.inner.state.borrow().is_some()
    }

    /// Ends the session now: revokes the lease, so every lock and leadership held through
    /// it (in every clone) is released at once. Later uses of the session fail with
    /// [`Error::SessionLost`]. If revoking fails, the refreshes have stopped all the same:
    /// the lease expires after its TTL.
    pub async fn close(&self) -> Result<()> {
        let was_lost = self.is_lost();
        let keeper = self.take_keeper(LeaseLost::Expired);
        match keeper {
            Some(keeper) => keeper.revoke().await,
            // No longer refreshed but not yet expired (see `expire_in_full_ttl`).
            None if !was_lost => match self.inner.client.lease_revoke(self.inner.lease_id).await {
                Err(Error::LeaseNotFound { .. }) | Ok(()) => Ok(()),
                Err(e) => Err(e),
            },
            None => Ok(()),
        }
    }

    /// Refreshes the lease one last time and stops refreshing it: the lease, and all the
    /// session holds, ends one full TTL from now whatever the holder does (a maximum hold
    /// time). The session counts as lost from that deadline on; [`Session::close`] still
    /// revokes the lease at once before it.
    pub(crate) async fn expire_in_full_ttl(&self) -> Result<()> {
        self.check()?;
        let sent = tokio::time::Instant::now();
        let ttl = match self
            .inner
            .client
            .lease_keep_alive_once(self.inner.lease_id)
            .await
        {
            Ok(ttl) => ttl,
            Err(Error::LeaseNotFound { .. }) => {
                drop(self.take_keeper(LeaseLost::Expired));
                return Err(Error::SessionLost(LeaseLost::Expired));
            }
            Err(e) => return Err(e),
        };
        // Counted from before the refresh was sent: the lease ends no earlier than this.
        let deadline = sent + std::time::Duration::from_secs(ttl.max(0) as u64);
        // The keeper's end is not the session's: the lease lives on until the deadline.
        self.inner.forward.abort();
        drop(
            self.inner
                .keeper
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        let state = self.inner.state.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            // A no-op if the session was closed or orphaned before.
            state.send_if_modified(|s| set_once(s, LeaseLost::Expired));
        });
        Ok(())
    }

    /// Stops refreshing the lease without revoking it, like Go's `Session.Orphan`: what
    /// the session holds stays held until the TTL runs out, then etcd releases it. The
    /// session counts as lost from now on.
    pub fn orphan(&self) {
        drop(self.take_keeper(LeaseLost::Unreachable {
            last_error: "the session was orphaned".into(),
        }));
    }

    fn take_keeper(&self, reason: LeaseLost) -> Option<LeaseKeeper> {
        self.inner.state.send_if_modified(|s| set_once(s, reason));
        self.inner
            .keeper
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// [`Error::SessionLost`] if the session is lost.
    pub(crate) fn check(&self) -> Result<()> {
        match self.lost_reason() {
            Some(reason) => Err(Error::SessionLost(reason)),
            None => Ok(()),
        }
    }

    /// Waits for this session's turn at `wire_prefix` among the tasks sharing it.
    pub(crate) async fn local_turn(&self, wire_prefix: &Bytes) -> tokio::sync::OwnedMutexGuard<()> {
        let queue = {
            let mut local = self
                .inner
                .local
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match local.get(wire_prefix).and_then(Weak::upgrade) {
                Some(queue) => queue,
                None => {
                    local.retain(|_, q| q.strong_count() > 0);
                    let queue = Arc::new(tokio::sync::Mutex::new(()));
                    local.insert(wire_prefix.clone(), Arc::downgrade(&queue));
                    queue
                }
            }
        };
        queue.lock_owned().await
    }
}

fn set_once(state: &mut Option<LeaseLost>, reason: LeaseLost) -> bool {
    if state.is_some() {
        return false;
    }
    *state = Some(reason);
    true
}
