//! Leader election, compatible with Go's `concurrency.Election` and `etcdctl elect`.
//!
//! A candidate puts `<name>/<lease id in hex>` = its value with its session's lease; the
//! leader is the candidate whose key has the smallest create revision, and its value is
//! the election's current value. Candidates wait in line like lock waiters.

use crate::claim::Claim;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::fence::Fenced;
use crate::key::IntoBytes;
use crate::kv::{SortOrder, SortTarget};
use crate::lease::LeaseLost;
use crate::request::into_future;
use crate::session::{Session, DEFAULT_SESSION_TTL};
use crate::txn::Compare;
use crate::types::KeyValue;
use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// An election under a name: `Election::new(&client, "service/leader")`.
///
/// It is Go's `concurrency.Election`, so `etcdctl elect <name>` and Go programs take part in
/// the same election: a candidate puts `<name>/<lease id in hex>` = its value with its
/// session's lease, and the leader is the candidate whose key has the smallest create
/// revision. Candidates wait in line like lock waiters, each watching only the candidate
/// just before it. Every key under `<name>/` counts as a candidate: keep other keys out of
/// it.
///
/// ```no_run
/// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
/// use etcd_kv::Election;
/// let election = Election::new(&client, "elections/scheduler");
/// // Waits until we lead. Our key lives as long as our session (TTL 5 s here).
/// let leadership = election.campaign("node-a:8080").ttl(5).await?;
/// leadership.proclaim("node-a:8081").await?;          // change the advertised value
/// assert_eq!(election.leader().await?.unwrap().value(), b"node-a:8081");
/// leadership.resign().await?;                           // the next candidate takes over
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Election {
    client: Client,
    name: Bytes,
    /// `<name>/`.
    prefix: Bytes,
}

impl Election {
    /// The election `name` (keys under `<name>/`); nothing is sent until used.
    pub fn new(client: &Client, name: impl IntoBytes) -> Election {
        let name = name.into_bytes();
        let mut prefix = name.to_vec();
        prefix.push(b'/');
        Election {
            client: client.clone(),
            name,
            prefix: Bytes::from(prefix),
        }
    }

    /// The election's name.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// An empty name is refused before anything is sent.
    fn check_name(&self) -> Result<()> {
        crate::claim::check_name(
            "election",
            "Election::new(&client, \"service/leader\")",
            &self.name,
        )
    }

    /// Runs for leader with `value`; awaiting the returned [`Campaign`] waits until elected.
    pub fn campaign(&self, value: impl IntoBytes) -> Campaign<'_> {
        Campaign {
            election: self,
            value: value.into_bytes(),
            ttl: DEFAULT_SESSION_TTL,
            session: None,
        }
    }

    /// The current leader, or `None` when nobody campaigns.
    pub async fn leader(&self) -> Result<Option<LeaderInfo>> {
        self.check_name()?;
        Ok(leader_at(&self.client, &self.prefix, 0).await?.1)
    }

    /// A stream of the leader and its value: the current one first (if any), then each
    /// change of leader or of the leader's value, like Go's `Election.Observe`.
    ///
    /// Periods without a leader are not reported (see [`Election::leader_changes`], which
    /// reports them), and a leader that lasts less than a round trip may be skipped. The
    /// stream survives reconnects and compactions; it ends after yielding an error it
    /// cannot recover from. Dropping it stops its background task and closes its watch.
    /// Must be called within a Tokio runtime.
    pub fn observe(&self) -> LeaderStream {
        let (rx, task) = self.start_observing(false);
        LeaderStream { rx, task }
    }

    /// A stream of the election's state: `Some(leader)` or `None` when nobody leads,
    /// the current state first, then each change: a new leader, the leader's new value,
    /// and the leader going away (resigned, its key deleted, or its session's lease
    /// expired) with nobody in line, as `None`. Unlike [`Election::observe`], a consumer
    /// never keeps believing in a leader that is gone.
    ///
    /// Otherwise as [`Election::observe`]: a state that lasts less than a round trip may
    /// be skipped; the stream survives reconnects and compactions, ends after an error it
    /// cannot recover from, and dropping it stops its task and closes its watch.
    pub fn leader_changes(&self) -> LeaderChanges {
        let (rx, task) = self.start_observing(true);
        LeaderChanges { rx, task }
    }

    /// The task of [`observe`](Self::observe) (`vacancies`: also `None` when nobody leads)
    /// and its channel; a bad name is the stream's one item.
    fn start_observing(&self, vacancies: bool) -> (Observed, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(16);
        if let Err(e) = self.check_name() {
            // The stream yields the error, then ends.
            let _ = tx.try_send(Err(e));
            drop(tx);
            return (rx, tokio::spawn(async {}));
        }
        let task = tokio::spawn(observe(
            self.client.clone(),
            self.prefix.clone(),
            tx,
            vacancies,
        ));
        (rx, task)
    }
}

/// What the observing task sends: the leader, or `None` when nobody leads.
type Observed = mpsc::Receiver<Result<Option<LeaderInfo>>>;

/// A campaign: `election.campaign(value)`, options, then `.await` for a [`Leadership`].
///
/// # Cancellation
///
/// Dropping the campaign while it waits withdraws the candidate: its key is deleted from a
/// spawned task (or expires with its lease if no Tokio runtime is left). Wrap it in
/// `tokio::time::timeout` to give up after a while.
#[derive(Debug, Clone)]
#[must_use = "a campaign starts when awaited"]
pub struct Campaign<'a> {
    election: &'a Election,
    value: Bytes,
    ttl: i64,
    session: Option<Session>,
}

impl<'a> Campaign<'a> {
    /// The TTL in seconds of the session made for this campaign (default 60): if the
    /// leader dies, the next candidate takes over this long after its last refresh.
    /// Ignored with [`Campaign::session`].
    pub fn ttl(mut self, seconds: i64) -> Self {
        self.ttl = seconds;
        self
    }

    /// Campaigns through this session instead of one made for the campaign. Tasks sharing
    /// a session that campaign in the same election take turns (one key per session).
    pub fn session(mut self, session: &Session) -> Self {
        self.session = Some(session.clone());
        self
    }

    /// Waits until elected. Fails with [`Error::SessionLost`] if the session is lost first.
    pub async fn send(self) -> Result<Leadership> {
        self.election.check_name()?;
        let client = &self.election.client;
        // Refused before the session is made: its key and value go in one put.
        client
            .inner
            .limits
            .check(self.election.prefix.len() + self.value.len())?;
        let (session, owns_session) = match &self.session {
            Some(session) => (session.clone(), false),
            None => (Session::builder(client).ttl(self.ttl).await?, true),
        };
        let mut claim = Claim::new(client, session, owns_session, &self.election.name);
        match claim.acquire(&self.value).await {
            Ok(()) => Ok(Leadership { claim }),
            Err(e) => {
                claim.abandon().await;
                Err(e)
            }
        }
    }
}

into_future!(Campaign, Leadership);

/// Being the leader of an election.
///
/// # Drop
///
/// Dropping it resigns **in the background**: a spawned task deletes the leader key (or
/// revokes the campaign's own session), so the next candidate takes over a moment later.
/// Without a Tokio runtime, leadership ends when the session's lease expires. Call
/// [`Leadership::resign`] to resign now and see errors.
///
/// Leadership ends by itself if the session's lease is lost ([`Leadership::lost`]); guard
/// writes with [`Leadership::is_leader_compare`] so a former leader cannot make them.
pub struct Leadership {
    claim: Claim,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("key", &String::from_utf8_lossy(&self.claim.key))
            .field("create_revision", &self.claim.create_revision)
            .finish()
    }
}

impl Leadership {
    /// The election's name.
    pub fn election_name(&self) -> &[u8] {
        self.claim.name()
    }

    /// The leader key, `<name>/<lease id in hex>` (in the client's namespace).
    pub fn key(&self) -> &[u8] {
        &self.claim.key
    }

    /// The create revision of the leader key: it grows with every new leader (a fencing
    /// token, or a term number).
    pub fn create_revision(&self) -> i64 {
        self.claim.create_revision
    }

    /// The session the leadership is held through.
    pub fn session(&self) -> &Session {
        &self.claim.session
    }

    /// A transaction condition that holds only while this is still the leader. Use it with
    /// the client (or namespace) the campaign was made with.
    pub fn is_leader_compare(&self) -> Compare {
        self.claim.held_compare()
    }

    /// A view of the client whose every write carries this leadership's ownership condition:
    /// once the leadership is lost, its writes fail with
    /// [`Error::NotOwner`](crate::Error::NotOwner) and write nothing (see [`Fenced`]).
    pub fn fenced(&self) -> Fenced {
        Fenced::of(&self.claim)
    }

    /// Asks etcd whether this is still the leader.
    pub async fn is_leader(&self) -> Result<bool> {
        self.claim.is_held().await
    }

    /// Resolves when the session is lost, and with it the leadership. Cancel safe.
    pub fn lost(&self) -> impl Future<Output = LeaseLost> + Send + 'static {
        self.claim.session.lost()
    }

    /// Sets the election's value, if still the leader: [`Error::NotLeader`] otherwise
    /// ([`Error::SessionLost`] if that is because the session was lost).
    pub async fn proclaim(&self, value: impl IntoBytes) -> Result<()> {
        if self.claim.set_value(&value.into_bytes()).await? {
            return Ok(());
        }
        self.claim.session.check()?;
        Err(Error::NotLeader {
            name: String::from_utf8_lossy(self.claim.name()).into_owned(),
        })
    }

    /// Gives up leadership now: the next candidate takes over. If this fails, it is
    /// retried in the background.
    pub async fn resign(self) -> Result<()> {
        self.claim.release().await
    }
}

/// The leader of an election, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    kv: KeyValue,
}

impl LeaderInfo {
    /// The leader key, `<name>/<lease id in hex>`.
    pub fn key(&self) -> &[u8] {
        self.kv.key()
    }

    /// The value the leader proclaims.
    pub fn value(&self) -> &[u8] {
        self.kv.value()
    }

    /// The value as UTF-8 text, if it is.
    pub fn value_str(&self) -> Result<&str, std::str::Utf8Error> {
        self.kv.value_str()
    }

    /// The create revision of the leader key (grows with every new leader).
    pub fn create_revision(&self) -> i64 {
        self.kv.create_revision()
    }

    /// The revision at which the value was last proclaimed.
    pub fn mod_revision(&self) -> i64 {
        self.kv.mod_revision()
    }

    /// The leader's lease (its session).
    pub fn lease(&self) -> i64 {
        self.kv.lease()
    }
}

/// Changes of an election's leader, from [`Election::observe`].
///
/// Dropping the stream stops its background task and closes its watch.
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct LeaderStream {
    rx: Observed,
    task: tokio::task::JoinHandle<()>,
}

impl Stream for LeaderStream {
    type Item = Result<LeaderInfo>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return Poll::Ready(match std::task::ready!(self.rx.poll_recv(cx)) {
                Some(Ok(Some(leader))) => Some(Ok(leader)),
                // Its task sends no vacancies; skipped all the same.
                Some(Ok(None)) => continue,
                Some(Err(e)) => Some(Err(e)),
                None => None,
            });
        }
    }
}

impl Drop for LeaderStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The leader of an election or its absence, at each change, from
/// [`Election::leader_changes`]: `Some(leader)`, or `None` when nobody leads.
///
/// Dropping the stream stops its background task and closes its watch.
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct LeaderChanges {
    rx: Observed,
    task: tokio::task::JoinHandle<()>,
}

impl Stream for LeaderChanges {
    type Item = Result<Option<LeaderInfo>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for LeaderChanges {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `(revision of the read, leader)` at `revision` (0: now).
async fn leader_at(
    client: &Client,
    prefix: &Bytes,
    revision: i64,
) -> Result<(i64, Option<LeaderInfo>)> {
    let answer = client
        .range(prefix)
        .prefix()
        .sort(SortTarget::Create, SortOrder::Ascend)
        .limit(1)
        .revision(revision)
        .await?;
    let read_at = if revision > 0 {
        revision
    } else {
        answer.revision()
    };
    let leader = answer
        .into_kvs()
        .into_iter()
        .next()
        .map(|kv| LeaderInfo { kv });
    Ok((read_at, leader))
}

/// The task behind a [`LeaderStream`] and a [`LeaderChanges`] (`vacancies`: also `None`
/// when nobody leads).
async fn observe(
    client: Client,
    prefix: Bytes,
    tx: mpsc::Sender<Result<Option<LeaderInfo>>>,
    vacancies: bool,
) {
    // What was sent last (None: nothing yet), to send only changes.
    let mut last: Option<Option<LeaderInfo>> = None;
    // The key of the leader now (None: no leader).
    let mut current: Option<Bytes> = None;
    loop {
        let (revision, leader) = match leader_at(&client, &prefix, 0).await {
            Ok(read) => read,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        if !send_change(&tx, &mut last, &mut current, leader, vacancies).await {
            return;
        }
        let mut watch = match client
            .watch(&prefix)
            .prefix()
            .start_revision(revision + 1)
            .await
        {
            Ok(watch) => watch,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        loop {
            let response = tokio::select! {
                r = watch.next() => r,
                _ = tx.closed() => return,
            };
            let response = match response {
                Some(Ok(response)) => response,
                // Compacted away or ended: read the leader afresh and watch again.
                Some(Err(Error::Compacted { .. })) | None => break,
                Some(Err(e)) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let relevant = response.events().iter().any(|e| match &current {
                Some(key) => e.key() == key.as_ref(),
                None => e.is_put(),
            });
            if !relevant {
                continue;
            }
            let leader = match leader_at(&client, &prefix, response.revision()).await {
                Ok((_, leader)) => leader,
                Err(Error::Compacted { .. }) => break,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            if !send_change(&tx, &mut last, &mut current, leader, vacancies).await {
                return;
            }
        }
    }
}

/// Records the leader and sends it if it changed (a vacancy, `None`, only with
/// `vacancies`); false when the stream is gone.
async fn send_change(
    tx: &mpsc::Sender<Result<Option<LeaderInfo>>>,
    last: &mut Option<Option<LeaderInfo>>,
    current: &mut Option<Bytes>,
    leader: Option<LeaderInfo>,
    vacancies: bool,
) -> bool {
    *current = leader.as_ref().map(|l| l.kv.key_bytes());
    if leader.is_none() && !vacancies {
        return true;
    }
    let same = |a: &LeaderInfo, b: &LeaderInfo| {
        a.key() == b.key()
            && a.create_revision() == b.create_revision()
            && a.mod_revision() == b.mod_revision()
    };
    let unchanged = match (&*last, &leader) {
        (Some(Some(before)), Some(now)) => same(before, now),
        (Some(None), None) => true,
        _ => false,
    };
    if unchanged {
        return true;
    }
    *last = Some(leader.clone());
    tx.send(Ok(leader)).await.is_ok()
}
