//! Distributed locks, fair and compatible with Go's `concurrency.Mutex` and `etcdctl lock`.
//!
//! A waiter puts `<name>/<lease id in hex>` with its session's lease; the lock belongs to
//! the key with the smallest create revision. Each waiter watches only the key created just
//! before its own, so waiters are served first come, first served, and a release wakes one
//! waiter, not all of them.
//!
//! Every key under `<name>/` counts as a contender: keep other keys out of that prefix.

use crate::claim::Claim;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::key::IntoBytes;
use crate::kv::BoxFuture;
use crate::lease::LeaseLost;
use crate::session::{Session, DEFAULT_SESSION_TTL};
use crate::txn::Compare;
use bytes::Bytes;
use std::future::{Future, IntoFuture};
use std::time::Duration;

/// A lock request: `client.lock(name)`, options, then `.await` for a [`LockGuard`].
///
/// The lock is Go's `concurrency.Mutex`, so `etcdctl lock <name>` and Go programs contend
/// for the same lock: a waiter puts `<name>/<lease id in hex>` with its session's lease;
/// the holder is the key with the smallest create revision. Each waiter watches only the
/// key just before its own, so waiters are served in arrival order and a release wakes one
/// waiter. Every key under `<name>/` counts as a contender: keep other keys out of it.
///
/// ```no_run
/// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
/// use std::time::Duration;
/// let guard = client
///     .lock("locks/report")
///     .ttl(10)                           // released by etcd 10 s after we die
///     .timeout(Duration::from_secs(5))   // or give up waiting: Error::LockTimeout
///     .await?;
/// // ... exclusive work ...
/// guard.release().await?;
/// # Ok(()) }
/// ```
///
/// # Cancellation
///
/// Dropping the request while it waits removes its waiting key from a spawned task (the
/// lease's expiry removes it if no Tokio runtime is left). On [`Lock::timeout`], the key is
/// removed before the error is returned.
#[derive(Debug, Clone)]
#[must_use = "a lock is taken when awaited"]
pub struct Lock<'a> {
    client: &'a Client,
    name: Bytes,
    ttl: i64,
    timeout: Option<Duration>,
    session: Option<Session>,
}

impl<'a> Lock<'a> {
    /// The TTL in seconds of the session made for this lock (default 60): if the holder
    /// dies, etcd releases the lock this long after its last refresh. Ignored with
    /// [`Lock::session`], whose TTL applies.
    pub fn ttl(mut self, seconds: i64) -> Self {
        self.ttl = seconds;
        self
    }

    /// Gives up after this long (waiting included) with [`Error::LockTimeout`], having
    /// removed the waiting key.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Holds the lock through this session instead of one made for the lock: cheaper when
    /// taking locks often, and the session's loss tells about every lock at once.
    ///
    /// Tasks sharing a session that lock the same name are served one after the other (a
    /// session has one key per name).
    pub fn session(mut self, session: &Session) -> Self {
        self.session = Some(session.clone());
        self
    }

    /// Waits for the lock.
    ///
    /// Fails with [`Error::LockTimeout`] after the [`Lock::timeout`], and with
    /// [`Error::SessionLost`] if the session's lease is lost while waiting.
    pub async fn send(self) -> Result<LockGuard> {
        let deadline = self.timeout.map(|t| tokio::time::Instant::now() + t);
        let timed_out = || Error::LockTimeout {
            name: String::from_utf8_lossy(&self.name).into_owned(),
        };
        let (session, owns_session) = match &self.session {
            Some(session) => (session.clone(), false),
            None => {
                let make = Session::builder(self.client).ttl(self.ttl).send();
                let session = match deadline {
                    Some(deadline) => tokio::time::timeout_at(deadline, make)
                        .await
                        .map_err(|_| timed_out())??,
                    None => make.await?,
                };
                (session, true)
            }
        };
        let mut claim = Claim::new(self.client, session, owns_session, &self.name);
        let acquired = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, claim.acquire(&Bytes::new()))
                .await
                .map_err(|_| timed_out()),
            None => Ok(claim.acquire(&Bytes::new()).await),
        };
        match acquired {
            Ok(Ok(_)) => Ok(LockGuard { claim }),
            Ok(Err(e)) | Err(e) => {
                claim.abandon().await;
                Err(e)
            }
        }
    }

    /// Takes the lock, runs `work`, and releases the lock.
    ///
    /// If the session is lost while `work` runs, `work` is dropped (cancelled) and the call
    /// fails with [`Error::SessionLost`]: the lock is no longer held, so the work must not go
    /// on. If releasing fails, the lock is released in the background (or by its TTL) and
    /// the output is still returned.
    pub async fn run<F: Future>(self, work: F) -> Result<F::Output> {
        let guard = self.send().await?;
        let lost = guard.lost();
        tokio::select! {
            output = work => {
                if let Err(e) = guard.release().await {
                    tracing::debug!(error = %e, "releasing a lock failed; it is released in the background");
                }
                Ok(output)
            }
            reason = lost => Err(Error::SessionLost(reason)),
        }
    }
}

impl<'a> IntoFuture for Lock<'a> {
    type Output = Result<LockGuard>;
    type IntoFuture = BoxFuture<'a, Result<LockGuard>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// A held lock.
///
/// # Drop
///
/// Dropping the guard releases the lock **in the background**: a spawned task deletes the
/// lock key (or revokes the lock's own session), so the next waiter gets the lock a moment
/// later, not when `drop` returns. Without a Tokio runtime, the lock is released when its
/// session's lease expires. Call [`LockGuard::release`] to release it now and see errors.
///
/// # Fencing
///
/// Holding a guard does not guarantee still holding the lock: if the session's lease is
/// lost (a long pause, a partition), etcd releases the lock and someone else may take it.
/// Guard writes with [`LockGuard::is_owner_compare`], which holds only while the lock key
/// is the one this guard created:
///
/// ```no_run
/// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
/// use etcd_kv::TxnOp;
/// let guard = client.lock("locks/balance").await?;
/// let written = client
///     .txn()
///     .when([guard.is_owner_compare()])
///     .and_then([TxnOp::put("balance", "42")])
///     .await?
///     .succeeded();
/// assert!(written, "lost the lock before writing");
/// # Ok(()) }
/// ```
pub struct LockGuard {
    claim: Claim,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", &String::from_utf8_lossy(&self.claim.key))
            .field("create_revision", &self.claim.create_revision)
            .finish()
    }
}

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &[u8] {
        self.claim.name()
    }

    /// The lock key, `<name>/<lease id in hex>` (in the client's namespace).
    pub fn key(&self) -> &[u8] {
        &self.claim.key
    }

    /// The create revision of the lock key: a fencing token that grows with every new
    /// holder of the lock.
    pub fn create_revision(&self) -> i64 {
        self.claim.create_revision
    }

    /// The session the lock is held through.
    pub fn session(&self) -> &Session {
        &self.claim.session
    }

    /// A transaction condition that holds only while this guard still holds the lock. Use it
    /// with the client (or namespace) the lock was taken with.
    pub fn is_owner_compare(&self) -> Compare {
        self.claim.held_compare()
    }

    /// Asks etcd whether this guard still holds the lock.
    pub async fn is_owner(&self) -> Result<bool> {
        self.claim.is_held().await
    }

    /// Resolves when the lock's session is lost, and with it the lock. Cancel safe.
    pub fn lost(&self) -> impl Future<Output = LeaseLost> + Send + 'static {
        self.claim.session.lost()
    }

    /// Releases the lock now. If this fails, the release is retried in the background.
    pub async fn release(self) -> Result<()> {
        self.claim.release().await
    }
}

impl Client {
    /// A lock request on `name`; options on the returned builder, then `.await`.
    pub fn lock(&self, name: impl IntoBytes) -> Lock<'_> {
        Lock {
            client: self,
            name: name.into_bytes(),
            ttl: DEFAULT_SESSION_TTL,
            timeout: None,
            session: None,
        }
    }

    /// Runs `work` under the lock `name` (a session of its own, TTL 60 s; see
    /// [`Lock::run`] for other options and for what happens when the lock is lost).
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// let total = client
    ///     .with_lock("locks/report", async {
    ///         // ... exclusive work ...
    ///         42
    ///     })
    ///     .await?;
    /// # let _ = total; Ok(()) }
    /// ```
    pub async fn with_lock<F: Future>(&self, name: impl IntoBytes, work: F) -> Result<F::Output> {
        self.lock(name).run(work).await
    }
}
