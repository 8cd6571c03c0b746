//! Distributed locks, fair and compatible with Go's `concurrency.Mutex` and `etcdctl lock`.
//!
//! A waiter puts `<name>/<lease id in hex>` with its session's lease; the lock belongs to
//! the key with the smallest create revision. Each waiter watches only the key created just
//! before its own, so waiters are served first come, first served, and a release wakes one
//! waiter, not all of them.
//!
//! Every key under `<name>/` counts as a contender: keep other keys out of that prefix.
//!
//! Two kinds of hold, never to be mistaken for one another:
//!
//! - **kept alive** (the default, Go's `concurrency.Mutex`): the lock's lease is refreshed
//!   while the holder lives, so the lock is held as long as the holder wants it;
//!   [`Lock::ttl`] only says how soon etcd frees it after the holder *dies*.
//! - **at most for a time** ([`Lock::max_hold`], etcetra's `with_lock(name, ttl=N)`): the
//!   lease is not refreshed once the lock is taken, so etcd frees the lock that long after
//!   it was taken, even if the holder hangs.

use crate::claim::Claim;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::fence::Fenced;
use crate::key::IntoBytes;
use crate::lease::LeaseLost;
use crate::request::into_future;
use crate::session::{Session, DEFAULT_SESSION_TTL};
use crate::txn::Compare;
use bytes::Bytes;
use std::future::Future;
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
///     .ttl(10)                           // held while we live; freed 10 s after we die
///     .timeout(Duration::from_secs(5))   // or give up waiting: Error::LockTimeout
///     .await?;
/// // ... exclusive work ...
/// guard.release().await?;
///
/// // At most 5 s, even if this process hangs (etcetra's `with_lock(name, ttl=5)`).
/// let guard = client
///     .lock("locks/report")
///     .max_hold(Duration::from_secs(5))
///     .await?;
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
    max_hold: Option<Duration>,
}

impl<'a> Lock<'a> {
    /// The keep-alive TTL in seconds of the session made for this lock (default 60). The
    /// lock stays held as long as this process lives and reaches etcd; if it dies, etcd
    /// frees the lock this long after the last refresh. **Not** a limit on how long the
    /// lock is held: that is [`Lock::max_hold`]. Ignored with [`Lock::session`], whose TTL
    /// applies.
    pub fn ttl(mut self, seconds: i64) -> Self {
        self.ttl = seconds;
        self
    }

    /// Holds the lock at most this long (whole seconds, rounded up): once the lock is
    /// taken, its lease gets one last refresh and is no longer kept alive, so etcd frees
    /// the lock this long after it was taken, **even if the holder hangs**, like etcetra's
    /// `with_lock(name, ttl=N)`. While waiting, the lease is kept alive (waiting does not
    /// eat into the hold time). etcd raises very short TTLs to its minimum (about 2 s).
    ///
    /// The guard's [`LockGuard::lost`] resolves at the deadline (a local timer started
    /// before the lease's last refresh was sent, so it fires no later than etcd frees the
    /// lock), and [`Lock::run`], [`Lock::try_run`] then cancel the work and fail with
    /// [`Error::MaxHoldExceeded`]. Uses a session of its own: with [`Lock::session`] too,
    /// awaiting fails with [`Error::InvalidInput`].
    ///
    /// # Why the work is cancelled, not left to finish
    ///
    /// etcetra lets the work run on past the deadline, the lock simply no longer
    /// exclusive. That is not offered here: once etcd has freed the lock another holder
    /// may take it, and two holders would then write at the same time; no client-side
    /// timer can prevent it, because nothing stops a write already on its way. Work that
    /// must finish whatever happens can take the guard with `.await` and guard each of its
    /// writes with [`LockGuard::is_owner_compare`] (fencing): after the deadline those
    /// writes are refused by etcd instead of clobbering the next holder's.
    pub fn max_hold(mut self, hold: Duration) -> Self {
        self.max_hold = Some(hold);
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
        crate::claim::check_name("lock", "client.lock(\"jobs/nightly\")", &self.name)?;
        self.client.inner.limits.check(self.name.len())?;
        if self.max_hold == Some(Duration::ZERO) {
            return Err(Error::invalid(
                "a lock's max_hold must be more than zero: give the longest time it may be \
                 held, e.g. .max_hold(Duration::from_secs(5))",
            ));
        }
        if self.max_hold.is_some() && self.session.is_some() {
            return Err(Error::InvalidInput {
                reason: "a lock with max_hold makes its own session: do not give one".into(),
                source: None,
            });
        }
        let ttl = match self.max_hold {
            Some(hold) => i64::try_from(hold.as_secs() + u64::from(hold.subsec_nanos() > 0))
                .unwrap_or(i64::MAX)
                .max(1),
            None => self.ttl,
        };
        let deadline = self.timeout.map(|t| tokio::time::Instant::now() + t);
        let timed_out = || Error::LockTimeout {
            name: String::from_utf8_lossy(&self.name).into_owned(),
        };
        let (session, owns_session) = match &self.session {
            Some(session) => (session.clone(), false),
            None => {
                let make = Session::builder(self.client).ttl(ttl).send();
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
        let acquired = match acquired {
            Ok(Ok(())) if self.max_hold.is_some() => claim.session.expire_in_full_ttl().await,
            Ok(result) => result,
            Err(e) => Err(e),
        };
        match acquired {
            Ok(()) => Ok(LockGuard { claim }),
            Err(e) => {
                claim.abandon().await;
                Err(e)
            }
        }
    }

    /// Takes the lock, runs `work`, and releases the lock; for work that returns a
    /// [`Result`] of this crate, [`Lock::try_run`] gives one `Result` instead of two.
    ///
    /// If the session is lost while `work` runs, `work` is dropped (cancelled) and the call
    /// fails with [`Error::SessionLost`]: the lock is no longer held, so the work must not
    /// go on. If the [`Lock::max_hold`] time is up first, `work` is cancelled the same way
    /// and the call fails with [`Error::MaxHoldExceeded`] (`lock "x" was held past its
    /// max_hold of 5s: the work was cancelled and the lock released`). If releasing fails,
    /// the lock is released in the background (or by its TTL) and the output is still
    /// returned.
    pub async fn run<F: Future>(self, work: F) -> Result<F::Output> {
        let name = self.name.clone();
        let max_hold = self.max_hold;
        let guard = self.send().await?;
        let lost = guard.lost();
        tokio::select! {
            output = work => {
                if let Err(e) = guard.release().await {
                    tracing::debug!(error = %e, "releasing a lock failed; it is released in the background");
                }
                Ok(output)
            }
            reason = lost => Err(match (max_hold, reason) {
                // With max_hold the lease is no longer refreshed: only its deadline ends it.
                (Some(max_hold), LeaseLost::Expired) => Error::MaxHoldExceeded {
                    name: String::from_utf8_lossy(&name).into_owned(),
                    max_hold,
                },
                (_, reason) => Error::SessionLost(reason),
            }),
        }
    }
}

impl Lock<'_> {
    /// [`Lock::run`] for work that returns this crate's [`Result`]: `?` works inside on
    /// etcd calls, on decoding errors (a value that is not UTF-8 or not a number:
    /// [`Error::Other`]) and, through [`Error::other`], on errors of your own; the error
    /// of the work and of the lock come out as one. Match a wrapped error of your own with
    /// [`Error::downcast_other_ref`].
    ///
    /// The work is cancelled when the lock is lost ([`Error::SessionLost`]) or held past
    /// its [`Lock::max_hold`] ([`Error::MaxHoldExceeded`]).
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// use etcd_kv::Error;
    /// use std::time::Duration;
    ///
    /// #[derive(Debug)]
    /// struct Overdrawn(i64);
    /// impl std::fmt::Display for Overdrawn {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         write!(f, "balance would go to {}", self.0)
    ///     }
    /// }
    /// impl std::error::Error for Overdrawn {}
    ///
    /// let result = client
    ///     .lock("locks/balance")
    ///     .max_hold(Duration::from_secs(5))
    ///     .try_run(async {
    ///         let kv = client.get("balance").await?;
    ///         let text = kv.as_ref().map_or(Ok("0"), |kv| kv.value_str())?; // Utf8Error
    ///         let balance: i64 = text.parse()?; // ParseIntError
    ///         if balance < 10 {
    ///             return Err(Error::other(Overdrawn(balance - 10))); // your own error
    ///         }
    ///         client.put("balance", (balance - 10).to_string()).await?;
    ///         Ok(balance - 10)
    ///     })
    ///     .await;
    /// match result {
    ///     Ok(left) => println!("{left} left"),
    ///     Err(e) if e.downcast_other_ref::<Overdrawn>().is_some() => println!("refused: {e}"),
    ///     Err(e) if e.is_max_hold_exceeded() => println!("too slow: {e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// Work with an error type of its own goes through [`Lock::run`], which hands back
    /// the work's output as it is: `lock.run(work).await?` is then your `Result`.
    pub async fn try_run<T, F: Future<Output = Result<T>>>(self, work: F) -> Result<T> {
        self.run(work).await?
    }
}

into_future!(Lock, LockGuard);

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

    /// A view of the client whose every write carries this lock's ownership condition:
    /// once the lock is lost, its writes fail with
    /// [`Error::NotOwner`](crate::Error::NotOwner) and write nothing (see [`Fenced`]).
    pub fn fenced(&self) -> Fenced {
        Fenced::of(&self.claim)
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
            max_hold: None,
        }
    }

    /// Runs `work` under the lock `name`, kept alive while the work runs (a session of its
    /// own, keep-alive TTL 60 s), and releases it. `work` returns this crate's [`Result`],
    /// so `?` works inside and the outcome is one `Result`.
    ///
    /// `?` works inside on etcd calls, on decoding errors ([`std::str::Utf8Error`] from
    /// [`KeyValue::value_str`](crate::KeyValue::value_str), a failed `parse()` of a number:
    /// [`Error::Other`]), and on errors of your own wrapped with [`Error::other`] (get them
    /// back with [`Error::downcast_other_ref`]). The bodies take this crate's error type
    /// rather than one of yours so that `Ok(..)` needs no type annotation; work with an
    /// error type of its own goes through [`Lock::run`].
    ///
    /// For a lock held at most for a time, or for other options: `client.lock(name)` with
    /// [`Lock::max_hold`], then [`Lock::run`] or [`Lock::try_run`]. Work that outlives a
    /// `max_hold` is cancelled and the call fails with [`Error::MaxHoldExceeded`]
    /// (`lock "x" was held past its max_hold of 5s: the work was cancelled and the lock
    /// released`); [`Lock::max_hold`] says why the work is not left to finish. If the
    /// session is lost while the work runs, the work is cancelled and the call fails with
    /// [`Error::SessionLost`].
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// let total = client
    ///     .with_lock("locks/report", async {
    ///         client.put("report/status", "running").await?;
    ///         // ... exclusive work ...
    ///         let runs = match client.get("report/runs").await? {
    ///             Some(kv) => kv.value_str()?.parse::<u64>()?, // Utf8Error, ParseIntError
    ///             None => 0,
    ///         };
    ///         if runs > 1000 {
    ///             let e = std::io::Error::other("too many runs"); // an error of your own
    ///             return Err(etcd_kv::Error::other(e));
    ///         }
    ///         client.put("report/runs", (runs + 1).to_string()).await?;
    ///         Ok(runs + 1)
    ///     })
    ///     .await?;
    /// # let _ = total; Ok(()) }
    /// ```
    pub async fn with_lock<T, F: Future<Output = Result<T>>>(
        &self,
        name: impl IntoBytes,
        work: F,
    ) -> Result<T> {
        self.lock(name).try_run(work).await
    }
}
