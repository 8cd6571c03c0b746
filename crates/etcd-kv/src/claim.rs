//! The queue behind locks and elections, as in Go's `clientv3/concurrency`.
//!
//! Each contender puts `<prefix><lease id in hex>` with its session's lease; the owner is the
//! key with the smallest create revision under `<prefix>`. A waiter watches for the deletion
//! of the one key created just before its own (not all of them: no thundering herd), then
//! checks again, until none is left before it.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::kv::{SortOrder, SortTarget};
use crate::session::Session;
use crate::txn::{Compare, TxnOp};
use crate::types::KeyValue;
use bytes::Bytes;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;

/// Refuses an empty name of a lock, election, queue or sequence (`what`): its keys would
/// be everything under `/` (or, for a sequence, the namespace itself). `example` is how
/// to name one, e.g. `client.lock("jobs/nightly")`.
pub(crate) fn check_name(what: &str, example: &str, name: &[u8]) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(format!(
            "the {what} name is empty, which would take in every key under \"/\" (or the \
             namespace's own key): give it a name, e.g. {example}"
        )));
    }
    Ok(())
}

/// A session's key under a prefix: waiting in line, or owning.
///
/// Dropped while armed (waiting cancelled, or a guard dropped), it deletes its key from a
/// spawned task; without a Tokio runtime, the lease's expiry removes it.
pub(crate) struct Claim {
    pub(crate) client: Client,
    pub(crate) session: Session,
    /// The session was made for this claim alone: releasing revokes it.
    owns_session: bool,
    /// `<name>/`, in the client's namespace.
    pub(crate) prefix: Bytes,
    /// `<name>/<lease hex>`, in the client's namespace.
    pub(crate) key: Bytes,
    /// The key's create revision, 0 until known.
    pub(crate) create_revision: i64,
    /// This task's turn among the tasks of the session.
    local: Option<OwnedMutexGuard<()>>,
    /// Whether dropping must remove the key.
    armed: bool,
}

impl Claim {
    /// A claim on `<name>/` through `session`; nothing is sent yet.
    pub(crate) fn new(client: &Client, session: Session, owns_session: bool, name: &[u8]) -> Claim {
        let mut prefix = name.to_vec();
        prefix.push(b'/');
        let mut key = prefix.clone();
        key.extend_from_slice(format!("{:x}", session.lease_id()).as_bytes());
        Claim {
            client: client.clone(),
            session,
            owns_session,
            prefix: Bytes::from(prefix),
            key: Bytes::from(key),
            create_revision: 0,
            local: None,
            armed: true,
        }
    }

    /// The name this claim is for (its prefix without the trailing `/`).
    pub(crate) fn name(&self) -> &[u8] {
        &self.prefix[..self.prefix.len() - 1]
    }

    /// Puts the key (or finds it) and waits until it is the oldest under the prefix.
    ///
    /// A key the session left behind is reused, with its value set to `value`. Cancel safe
    /// in the sense that the claim stays armed: dropping it cleans up.
    pub(crate) async fn acquire(&mut self, value: &Bytes) -> Result<()> {
        self.session.check()?;
        if self.local.is_none() {
            let wire_prefix = self.client.namespace.key(&self.prefix);
            let turn = tokio::select! {
                turn = self.session.local_turn(&wire_prefix) => turn,
                reason = self.session.lost() => return Err(Error::SessionLost(reason)),
            };
            self.local = Some(turn);
        }
        // The newest key under the prefix, read in the same transaction just before our
        // put: our predecessor in line, if any.
        let last = self
            .client
            .range(&self.prefix)
            .prefix()
            .sort(SortTarget::Create, SortOrder::Descend)
            .limit(1)
            .keys_only();
        let answer = self
            .client
            .txn()
            .when([Compare::create_revision(&self.key).eq(0)])
            .and_then([
                last.into(),
                TxnOp::put_with_lease(&self.key, value, self.session.lease_id()),
            ])
            .or_else([TxnOp::get(&self.key)])
            .await
            .map_err(|e| match e {
                Error::LeaseNotFound { .. } => Error::SessionLost(
                    self.session
                        .lost_reason()
                        .unwrap_or(crate::lease::LeaseLost::Expired),
                ),
                e => e,
            })?;
        if answer.succeeded() {
            self.create_revision = answer.revision();
            let before = first_kv(&answer, 0).map(KeyValue::key_bytes);
            if before.is_none() {
                return Ok(());
            }
            return self.wait_turn(before).await;
        }
        // The session's key is there already (left by an earlier holder of the session).
        let kv = first_kv(&answer, 0).ok_or_else(|| {
            Error::Protocol("a key whose create revision is not 0 is missing".into())
        })?;
        self.create_revision = kv.create_revision();
        if kv.value() != value {
            self.set_value(value).await?;
        }
        self.wait_turn(None).await
    }

    /// Writes `value` to our key, keeping its lease; false if the key is not ours any more.
    pub(crate) async fn set_value(&self, value: &Bytes) -> Result<bool> {
        Ok(self
            .client
            .txn()
            .when([self.held_compare()])
            .and_then([self.client.put(&self.key, value).ignore_lease().into()])
            .await?
            .succeeded())
    }

    /// Waits until no key under the prefix is older than ours, starting with `before` (a
    /// key older than ours) when known.
    ///
    /// Each wait watches that one key from "now", then reads the line again before waiting
    /// (a watch from a past revision would be served by etcd's catch-up loop, which runs
    /// every 100 ms). A deletion thus wakes one waiter, which reads once.
    async fn wait_turn(&self, mut before: Option<Bytes>) -> Result<()> {
        let mut watching: Option<(Bytes, crate::watch::WatchStream)> = None;
        loop {
            if let Some(key) = before.take() {
                match &mut watching {
                    Some((watched, watch)) if *watched == key => {
                        tokio::select! {
                            // A delete, an error or the end: look again in every case.
                            _ = watch.next() => {}
                            reason = self.session.lost() => return Err(Error::SessionLost(reason)),
                        }
                        watching = None;
                    }
                    _ => {
                        let watch = self.client.watch(key.clone()).no_put().await?;
                        watching = Some((key, watch));
                    }
                }
            }
            let answer = self
                .client
                .txn()
                .and_then([
                    self.client
                        .range(&self.prefix)
                        .prefix()
                        .max_create_revision(self.create_revision - 1)
                        .sort(SortTarget::Create, SortOrder::Descend)
                        .limit(1)
                        .keys_only()
                        .into(),
                    TxnOp::get(&self.key),
                ])
                .await?;
            let ours = first_kv(&answer, 1);
            if ours.is_none_or(|kv| kv.create_revision() != self.create_revision) {
                // Our key is gone: the lease expired (or someone deleted the key).
                return Err(Error::SessionLost(
                    self.session
                        .lost_reason()
                        .unwrap_or(crate::lease::LeaseLost::Expired),
                ));
            }
            match first_kv(&answer, 0) {
                None => return Ok(()),
                Some(kv) => before = Some(kv.key_bytes()),
            }
        }
    }

    /// True while our key exists with our create revision.
    pub(crate) async fn is_held(&self) -> Result<bool> {
        Ok(self
            .client
            .get(&self.key)
            .await?
            .is_some_and(|kv| kv.create_revision() == self.create_revision))
    }

    /// The compare that holds while our key is the one we created.
    pub(crate) fn held_compare(&self) -> Compare {
        Compare::create_revision(&self.key).eq(self.create_revision)
    }

    /// Removes the key now. On failure the claim stays armed, so dropping it tries again
    /// in the background.
    pub(crate) async fn release(mut self) -> Result<()> {
        remove(
            &self.client,
            &self.session,
            self.owns_session,
            &self.key,
            self.create_revision,
        )
        .await?;
        self.armed = false;
        Ok(())
    }

    /// Removes the key if it was created, keeping the claim (and the local turn) so the
    /// caller can report an error after the cleanup. Failures are left to the drop.
    pub(crate) async fn abandon(&mut self) {
        if !self.may_have_key() {
            self.armed = false;
            return;
        }
        match remove(
            &self.client,
            &self.session,
            self.owns_session,
            &self.key,
            self.create_revision,
        )
        .await
        {
            Ok(()) => self.armed = false,
            Err(e) => {
                tracing::debug!(error = %e, "removing a lock key failed; retrying in the background")
            }
        }
    }
}

impl Claim {
    /// Whether a key of ours may exist: not before our local turn came, since until then
    /// the session's key under this prefix, if any, belongs to another task.
    fn may_have_key(&self) -> bool {
        self.owns_session || self.local.is_some()
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.armed || !self.may_have_key() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime: the session's lease expiry will remove the key.
            return;
        };
        let client = self.client.clone();
        let session = self.session.clone();
        let owns_session = self.owns_session;
        let key = self.key.clone();
        let create_revision = self.create_revision;
        // The local turn passes on only after the key is gone.
        let local = self.local.take();
        runtime.spawn(async move {
            for attempt in 0..5u32 {
                match remove(&client, &session, owns_session, &key, create_revision).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, attempt, "deferred removal of a lock key failed");
                        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                    }
                }
            }
            drop(local);
        });
    }
}

/// Deletes our key (only the one we created, when known), or revokes a session of our own.
async fn remove(
    client: &Client,
    session: &Session,
    owns_session: bool,
    key: &Bytes,
    create_revision: i64,
) -> Result<()> {
    if owns_session {
        return session.close().await;
    }
    if session.is_lost() {
        return Ok(());
    }
    if create_revision == 0 {
        // Cancelled around the creating request: the key is ours if it exists at all.
        client.delete(key).await?;
    } else {
        client
            .txn()
            .when([Compare::create_revision(key).eq(create_revision)])
            .and_then([TxnOp::delete(key)])
            .await?;
    }
    Ok(())
}

/// The first key-value of the range answer at `index` of a transaction.
fn first_kv(answer: &crate::txn::TxnResponse, index: usize) -> Option<&KeyValue> {
    answer
        .responses()
        .get(index)
        .and_then(|r| r.as_range())
        .and_then(|r| r.kvs().first())
}
