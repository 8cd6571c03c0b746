//! Callback watches over one or several key ranges, changed while they run.
//!
//! A [`WatchHandle`] owns one task (the dispatcher) that calls the callback, and one
//! [`WatchStream`] per key range on the client's shared watch stream (each forwarded by a
//! small task into the dispatcher's queue). Adding a range registers it in the dispatcher
//! first, with its start revision (the revision after the last one the handle delivered),
//! and only then creates its watch: from that moment every event delivered for a key the
//! new range covers, at or after its start, is known to be owed by it too.
//!
//! Exactly once: each range's watch delivers each of its events once, in revision order,
//! across reconnects (the hub's guarantee). Where ranges overlap, the first copy of an
//! event `(revision, key)` is delivered and the ranges that will also carry it are noted;
//! their copies are dropped as they come, and the note is forgotten once every one of
//! them has come (or its range was removed). Only events of keys that two ranges cover
//! are noted, and only until the slower range catches up: memory stays bounded by the
//! lag between overlapping ranges.

use super::event::{EventKind, WatchEvent, WatchResponse};
use super::stream::WatchStream;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::key::Namespace;
use bytes::Bytes;
use etcd_wire::watch::{FilterType, WatchCreateRequest};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Where a range's watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartAt {
    /// At the revision the caller gave.
    Given,
    /// At etcd's current revision when it creates the watch (the handle's start, a
    /// revision read just before, is a lower bound of it).
    Now,
    /// Added to a running handle: at the revision after the last one it delivered; if
    /// that was compacted away, at the oldest revision kept, rather than end the handle.
    Added,
}

/// Responses queued from the ranges' watches to the dispatcher.
const QUEUE: usize = 1024;

/// Which range of a [`WatchHandle`]: returned by [`WatchHandle::add`] and
/// [`WatchHandle::ranges`], given to [`WatchHandle::remove`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchRangeId(u64);

/// A running callback watch over one or more key ranges: from
/// [`Watch::on_event`](crate::Watch::on_event) (one range) or [`Client::watch_ranges`]
/// (several, txaioetcd's list of `KeySet`s). Ranges can be added and removed while it
/// runs ("dynamic watches"): no event is lost or delivered twice across a change, and an
/// event of a key that several ranges cover is delivered once.
///
/// Each range keeps its builder's options (`prev_kv`, `no_put`, `no_delete`); where ranges
/// overlap, the copy of an event that comes first is the one delivered (with the previous
/// key-value if its range asked for it).
///
/// The callback runs on the handle's own task, one event at a time, in each range's
/// revision order (events of different ranges may interleave: a range catching up after
/// a reconnect delivers its older events later). Keep it short; spawn long work.
///
/// # Cancellation and drop
///
/// [`WatchHandle::cancel`] or dropping the handle stops the watch: no callback starts
/// after it returns (one running on another thread at that moment finishes), and the
/// ranges' watches are cancelled on the server in the background.
///
/// # Errors
///
/// A range whose watch ends with an error ([`Error::Compacted`], [`Error::Auth`]...) ends
/// the whole handle: [`WatchHandle::ended`] resolves with that error. A `start_revision`
/// the caller gave that was compacted away is [`Error::Compacted`]; a range added later
/// whose start (after the handle's last delivered revision) was compacted away while the
/// handle was quiet is not an error: it starts at the oldest revision etcd kept.
#[derive(Debug)]
#[must_use = "dropping the handle cancels the watch"]
pub struct WatchHandle {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    ended: watch::Receiver<Option<Error>>,
    task: JoinHandle<()>,
}

/// What the handle and its dispatcher both see.
#[derive(Debug, Default)]
struct Shared {
    cancelled: AtomicBool,
    /// The highest revision delivered (or the one before the start).
    delivered: AtomicI64,
    ranges: Mutex<Vec<WatchRangeId>>,
}

#[derive(Debug)]
enum Command {
    Add {
        client: Client,
        create: WatchCreateRequest,
        reply: oneshot::Sender<Result<WatchRangeId>>,
    },
    Remove {
        id: WatchRangeId,
        reply: oneshot::Sender<bool>,
    },
}

/// What the ranges' tasks tell the dispatcher.
#[derive(Debug)]
enum Incoming {
    Created {
        id: u64,
        result: Result<()>,
        reply: oneshot::Sender<Result<WatchRangeId>>,
    },
    Response {
        id: u64,
        response: Option<Result<WatchResponse>>,
    },
    /// An added range's start was compacted: it starts at `start` instead.
    Restarted { id: u64, start: i64 },
}

/// One range, as the dispatcher sees it.
struct Range {
    /// Wire key and range end (namespaced).
    key: Bytes,
    end: Bytes,
    ns: Namespace,
    /// The first revision this range delivers.
    start: i64,
    /// Its filters: events of a kind it leaves out are not owed by it.
    no_put: bool,
    no_delete: bool,
    task: JoinHandle<()>,
}

impl Drop for Range {
    fn drop(&mut self) {
        // Dropping the task's WatchStream cancels the watch on the server.
        self.task.abort();
    }
}

impl Range {
    /// Whether this range's watch delivers `event` (at `wire_key`) too.
    fn carries(&self, event: &WatchEvent, wire_key: &[u8]) -> bool {
        let kept = match event.kind {
            EventKind::Put => !self.no_put,
            EventKind::Delete => !self.no_delete,
        };
        kept && self.start <= event.revision() && self.covers(wire_key)
    }

    fn covers(&self, wire_key: &[u8]) -> bool {
        let (key, end) = (self.key.as_ref(), self.end.as_ref());
        if end.is_empty() {
            wire_key == key
        } else if end == b"\0" {
            wire_key >= key
        } else {
            wire_key >= key && wire_key < end
        }
    }
}

struct Dispatcher<F> {
    callback: F,
    shared: Arc<Shared>,
    ranges: HashMap<u64, Range>,
    next_id: u64,
    /// `(revision, wire key)` of delivered events that other ranges will deliver too,
    /// with those ranges.
    owed: HashMap<(i64, Bytes), HashSet<u64>>,
    incoming_tx: mpsc::Sender<Incoming>,
    ended: watch::Sender<Option<Error>>,
}

impl<F: FnMut(WatchEvent) + Send + 'static> Dispatcher<F> {
    /// Registers a range starting at `start` and creates its watch in the background.
    fn add(
        &mut self,
        client: Client,
        create: WatchCreateRequest,
        start: i64,
        from: StartAt,
        reply: oneshot::Sender<Result<WatchRangeId>>,
    ) {
        let added = from == StartAt::Added;
        self.next_id += 1;
        let id = self.next_id;
        let ns = client.namespace.clone();
        let (key, end) = (create.key.clone(), create.range_end.clone());
        let no_put = create.filters.contains(&FilterType::NoPut);
        let no_delete = create.filters.contains(&FilterType::NoDelete);
        let create = WatchCreateRequest {
            // "Now" is etcd's: a watch it creates at its current revision is never
            // compacted away before it starts, as one from a revision read earlier can be.
            start_revision: if from == StartAt::Now { 0 } else { start },
            ..create
        };
        let tx = self.incoming_tx.clone();
        let create_again = create.clone();
        let task = tokio::spawn(async move {
            let mut stream: WatchStream = match client.open_watch(create).await {
                Ok(stream) => {
                    let created = Incoming::Created {
                        id,
                        result: Ok(()),
                        reply,
                    };
                    if tx.send(created).await.is_err() {
                        return;
                    }
                    stream
                }
                Err(e) => {
                    let _ = tx
                        .send(Incoming::Created {
                            id,
                            result: Err(e),
                            reply,
                        })
                        .await;
                    return;
                }
            };
            let mut first = true;
            loop {
                let mut response = stream.events.recv().await;
                if let (true, true, Some(Err(Error::Compacted { compact_revision }))) =
                    (added, first, &response)
                {
                    // The handle was quiet while the store was compacted past the
                    // revision it last delivered: this range starts at the oldest
                    // revision kept. What it misses was written before it was added, and
                    // the ranges already there deliver their own keys' events.
                    let from = (*compact_revision).max(start + 1);
                    let again = WatchCreateRequest {
                        start_revision: from,
                        ..create_again.clone()
                    };
                    match client.open_watch(again).await {
                        Ok(restarted) => {
                            stream = restarted;
                            let moved = Incoming::Restarted { id, start: from };
                            if tx.send(moved).await.is_err() {
                                return;
                            }
                            response = stream.events.recv().await;
                        }
                        Err(e) => response = Some(Err(e)),
                    }
                }
                first = false;
                let end = response.is_none();
                if tx.send(Incoming::Response { id, response }).await.is_err() || end {
                    return;
                }
            }
        });
        self.ranges.insert(
            id,
            Range {
                key,
                end,
                ns,
                start,
                no_put,
                no_delete,
                task,
            },
        );
    }

    fn remove(&mut self, id: u64) -> bool {
        let removed = self.ranges.remove(&id).is_some();
        if removed {
            self.owed.retain(|_, owers| {
                owers.remove(&id);
                !owers.is_empty()
            });
            lock(&self.shared.ranges).retain(|r| r.0 != id);
        }
        removed
    }

    /// Delivers the events of one range's response that no other range delivered first.
    fn deliver(&mut self, id: u64, response: WatchResponse) {
        let Some(range) = self.ranges.get(&id) else {
            return; // removed: what it had queued is dropped
        };
        let ns = range.ns.clone();
        for event in response.into_events() {
            let revision = event.revision();
            let wire_key = ns.key(&event.kv.key);
            let entry = (revision, wire_key);
            if let Some(owers) = self.owed.get_mut(&entry) {
                // Another range delivered it first.
                owers.remove(&id);
                if owers.is_empty() {
                    self.owed.remove(&entry);
                }
                continue;
            }
            let owers: HashSet<u64> = self
                .ranges
                .iter()
                .filter(|(other, r)| **other != id && r.carries(&event, &entry.1))
                .map(|(other, _)| *other)
                .collect();
            if !owers.is_empty() {
                self.owed.insert(entry, owers);
            }
            self.shared.delivered.fetch_max(revision, Ordering::SeqCst);
            if self.shared.cancelled.load(Ordering::SeqCst) {
                return;
            }
            (self.callback)(event);
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut incoming: mpsc::Receiver<Incoming>,
    ) {
        loop {
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(Command::Add { client, create, reply }) => {
                        let start = self.shared.delivered.load(Ordering::SeqCst) + 1;
                        self.add(client, create, start, StartAt::Added, reply);
                    }
                    Some(Command::Remove { id, reply }) => {
                        let _ = reply.send(self.remove(id.0));
                    }
                    None => return,
                },
                message = incoming.recv() => match message {
                    Some(Incoming::Created { id, result, reply }) => {
                        let result = match result {
                            Ok(()) if self.ranges.contains_key(&id) => {
                                lock(&self.shared.ranges).push(WatchRangeId(id));
                                Ok(WatchRangeId(id))
                            }
                            Ok(()) => Err(Error::Protocol("the range was removed".into())),
                            Err(e) => {
                                self.remove(id);
                                Err(e)
                            }
                        };
                        let _ = reply.send(result);
                    }
                    Some(Incoming::Restarted { id, start }) => {
                        if let Some(range) = self.ranges.get_mut(&id) {
                            range.start = start;
                        }
                    }
                    Some(Incoming::Response { id, response: Some(Ok(response)) }) => {
                        self.deliver(id, response);
                    }
                    Some(Incoming::Response { id, response }) => {
                        if !self.ranges.contains_key(&id) {
                            continue;
                        }
                        let error = match response {
                            Some(Err(e)) => e,
                            _ => Error::stopped("a range's watch"),
                        };
                        self.ranges.clear();
                        lock(&self.shared.ranges).clear();
                        self.ended.send_replace(Some(error));
                        return;
                    }
                    None => return,
                },
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts a handle over `ranges` (wire create requests with their clients), all from
/// `start` (a revision, > 0; see [`StartAt`]), and waits until etcd has created every range's
/// watch.
pub(crate) async fn start<F>(
    ranges: Vec<(Client, WatchCreateRequest)>,
    start: i64,
    from: StartAt,
    callback: F,
) -> Result<WatchHandle>
where
    F: FnMut(WatchEvent) + Send + 'static,
{
    let shared = Arc::new(Shared::default());
    shared.delivered.store(start - 1, Ordering::SeqCst);
    let (incoming_tx, incoming_rx) = mpsc::channel(QUEUE);
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let (ended_tx, ended_rx) = watch::channel(None);
    let mut dispatcher = Dispatcher {
        callback,
        shared: shared.clone(),
        ranges: HashMap::new(),
        next_id: 0,
        owed: HashMap::new(),
        incoming_tx,
        ended: ended_tx,
    };
    // Every initial range is registered before any event can be delivered.
    let mut replies = Vec::with_capacity(ranges.len());
    for (client, create) in ranges {
        let (reply, answer) = oneshot::channel();
        dispatcher.add(client, create, start, from, reply);
        replies.push(answer);
    }
    let task = tokio::spawn(dispatcher.run(commands_rx, incoming_rx));
    let handle = WatchHandle {
        commands: commands_tx,
        shared,
        ended: ended_rx,
        task,
    };
    for answer in replies {
        handle.answer(answer).await?;
    }
    Ok(handle)
}

impl WatchHandle {
    async fn answer<T>(&self, answer: oneshot::Receiver<Result<T>>) -> Result<T> {
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(self.gone()),
        }
    }

    /// Adds a key range while the watch runs and waits until etcd has created its
    /// watch: `handle.add(client.watch("jobs/").prefix()).await?`. Its events are
    /// delivered from the revision after the highest one this handle has delivered
    /// ([`WatchHandle::revision`]; events etcd holds from there on included, so nothing
    /// between is lost), each event once even where it overlaps the ranges already there.
    /// Options of the builder (prev_kv, filters) apply to this range; a `start_revision`
    /// is refused with [`Error::InvalidInput`].
    ///
    /// To replace a range by another that covers its keys, add the new one, then remove
    /// the old: nothing is lost or repeated. (Removed first, or while it is behind the
    /// handle's highest revision, a range's events not yet delivered are dropped with
    /// it: the new range starts after that revision.) If the store was compacted past
    /// that revision while the handle was quiet, the new range starts at the oldest
    /// revision etcd kept (what it misses was written before it was added), rather than
    /// end the handle.
    pub async fn add(&self, range: super::Watch<'_>) -> Result<WatchRangeId> {
        if range.create.start_revision != 0 {
            return Err(Error::invalid(
                "a range added to a running watch starts after the revision the watch last \
                 delivered: leave start_revision out",
            ));
        }
        let client = range.client.clone();
        let create = range.wire_request()?;
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::Add {
                client,
                create,
                reply,
            })
            .is_err()
        {
            return Err(self.gone());
        }
        self.answer(answer).await
    }

    /// Removes a key range: once this returns, no event is delivered through it (events
    /// of keys that other ranges also cover still are, through those). False when the
    /// range is not (or no longer) part of the watch.
    pub async fn remove(&self, id: WatchRangeId) -> bool {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Remove { id, reply }).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    /// The ranges watched now, oldest first.
    pub fn ranges(&self) -> Vec<WatchRangeId> {
        lock(&self.shared.ranges).clone()
    }

    /// The highest revision delivered so far (before the first event: the revision
    /// before the watch's start).
    pub fn revision(&self) -> i64 {
        self.shared.delivered.load(Ordering::SeqCst)
    }

    /// The error that ended the watch, if one did.
    pub fn error(&self) -> Option<Error> {
        self.ended.borrow().clone()
    }

    /// Resolves when the watch ends by itself, with the error that ended it (a range's
    /// watch ended: compaction, permission...). Cancel safe.
    pub async fn ended(&self) -> Error {
        let mut ended = self.ended.clone();
        let error = match ended.wait_for(Option::is_some).await {
            Ok(error) => error.clone(),
            Err(_) => None,
        };
        error.unwrap_or_else(|| self.gone())
    }

    /// Why the dispatcher is gone: the watch's error, else its callback panicked.
    fn gone(&self) -> Error {
        self.error()
            .unwrap_or_else(|| Error::stopped("the watch's callback task"))
    }

    /// Stops the watch: no callback starts after this returns, and every range's watch
    /// is cancelled on the server in the background. The same as dropping the handle.
    pub fn cancel(self) {}
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.shared.cancelled.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}
