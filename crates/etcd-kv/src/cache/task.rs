//! The cache's task: list, watch, apply each revision whole; list again after a compaction.

use super::store::{compact, entry_size, Entry, Shared, Store};
use super::CacheUpdate;
use crate::config::RECONNECT_BACKOFF;
use crate::error::{Error, Result};
use crate::pager::{ClientPages, Pager};
use crate::types::KeyValue;
use crate::watch::{EventKind, WatchEvent, WatchResponse, WatchStream};
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(super) async fn run(shared: std::sync::Weak<Shared>) {
    let mut failures = 0u32;
    'list: loop {
        let Some(s) = shared.upgrade() else { return };
        let listed = list(&s).await;
        let revision = match listed {
            Ok(revision) => revision,
            Err(e) if e.is_transient() && s.read().revision > 0 => {
                failures += 1;
                drop(s);
                tokio::time::sleep(RECONNECT_BACKOFF.delay(failures)).await;
                continue 'list;
            }
            Err(e) => {
                s.stop(e);
                return;
            }
        };
        failures = 0;
        let mut watch = loop {
            match s
                .client
                .watch(s.prefix.clone())
                .end(s.end.clone())
                .start_revision(revision + 1)
                .await
            {
                Ok(w) => break w,
                Err(Error::Compacted { .. }) => continue 'list,
                Err(e) if e.is_transient() => {
                    failures += 1;
                    tokio::time::sleep(RECONNECT_BACKOFF.delay(failures)).await;
                }
                Err(e) => {
                    s.stop(e);
                    return;
                }
            }
        };
        if s.ordered_progress {
            // Learns whether the watch has the shared stream. (Not on older servers: they
            // may answer a progress request ahead of events still queued, see the docs.)
            s.per_call
                .store(watch.request_progress().is_err(), Ordering::Relaxed);
        }
        drop(s);
        match follow(&shared, &mut watch).await {
            Followed::Compacted => continue 'list,
            Followed::Stopped => return,
        }
    }
}

enum Followed {
    Compacted,
    Stopped,
}

async fn follow(shared: &std::sync::Weak<Shared>, watch: &mut WatchStream) -> Followed {
    loop {
        let Some(s) = shared.upgrade() else {
            return Followed::Stopped;
        };
        tokio::select! {
            item = watch.next() => match item {
                Some(Ok(response)) => {
                    if let Err(e) = apply(&s, response) {
                        s.stop(e);
                        return Followed::Stopped;
                    }
                }
                Some(Err(Error::Compacted { compact_revision })) => {
                    tracing::info!(compact_revision, "the cache's watch was overtaken by a compaction: listing again");
                    return Followed::Compacted;
                }
                Some(Err(e)) => {
                    s.stop(e);
                    return Followed::Stopped;
                }
                None => {
                    s.stop(Error::stopped("the cache's watch"));
                    return Followed::Stopped;
                }
            },
            _ = s.progress_wanted.notified(), if s.ordered_progress => {
                if watch.request_progress().is_err() {
                    s.per_call.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Lists the prefix at one revision into a fresh map and swaps it in whole.
async fn list(s: &Shared) -> Result<i64> {
    let mut pager = Pager::new(ClientPages::new(&s.client), s.prefix.clone(), s.end.clone())
        .page_size(s.page_size);
    let mut entries = Vec::new();
    let mut bytes = 0usize;
    while let Some(page) = pager.next_page().await? {
        for kv in &page {
            bytes += entry_size(&kv.key, &kv.value);
            if let Some(limit) = s.max_bytes {
                if bytes > limit {
                    return Err(Error::CacheFull {
                        limit,
                        needed: bytes,
                    });
                }
            }
            entries.push(compact(kv));
        }
    }
    let revision = match pager.pinned_revision() {
        Some(r) => r,
        None => s
            .client
            .range(s.prefix.clone())
            .end(s.end.clone())
            .count_only()
            .await?
            .revision(),
    };
    // Built from sorted entries, the B-tree's nodes are full (inserted one by one in
    // order, they would be about half full).
    let map = Store::from_sorted(entries);
    let mut state = s.write();
    let relist = state.lists > 0;
    state.map = map;
    state.bytes = bytes;
    state.revision = revision;
    state.lists += 1;
    if relist {
        if let Some(updates) = &state.updates {
            if updates.receiver_count() > 0 {
                let _ = updates.send(CacheUpdate::Reset(Arc::new(state.snapshot())));
            }
        }
    }
    drop(state);
    tracing::debug!(revision, relist, "cache listed");
    s.applied.send_replace(revision);
    Ok(revision)
}

/// Applies one revision whole (or a progress notification), under the write lock.
fn apply(s: &Shared, response: WatchResponse) -> Result<()> {
    let revision = response.revision();
    let mut state = s.write();
    if response.is_progress_notify() {
        // Progress requests are answered again.
        s.progress_unanswered.store(false, Ordering::Relaxed);
        if s.ordered_progress && revision > state.revision {
            state.revision = revision;
            drop(state);
            s.applied.send_replace(revision);
        }
        return Ok(());
    }
    if revision <= state.revision {
        // Only a server that answered a progress request ahead of queued events (see the
        // module docs) sends this: apply it, the content becomes right again.
        tracing::warn!(
            revision,
            cache = state.revision,
            "event older than the cache's revision (etcd answered a progress request ahead of it)"
        );
    }
    if let Some(limit) = s.max_bytes {
        let mut bytes = state.bytes as i64;
        for e in response.events() {
            if let Some(old) = state.map.get(e.key()) {
                bytes -= old.size() as i64;
            }
            if e.is_put() {
                bytes += entry_size(e.key(), e.kv().value()) as i64;
            }
        }
        let needed = usize::try_from(bytes).unwrap_or(0);
        if needed > limit {
            return Err(Error::CacheFull { limit, needed });
        }
    }
    let notify = state
        .updates
        .as_ref()
        .is_some_and(|u| u.receiver_count() > 0);
    let mut events = Vec::with_capacity(if notify { response.events().len() } else { 0 });
    for e in response.into_events() {
        match e.kind() {
            EventKind::Put => {
                let (key, entry) = compact(e.kv());
                let size = entry.size();
                let new_kv = notify.then(|| entry.kv());
                let old = state.map.insert(key, entry);
                state.bytes += size;
                if let Some(old) = &old {
                    state.bytes -= old.size();
                }
                if let Some(kv) = new_kv {
                    events.push(WatchEvent {
                        kind: EventKind::Put,
                        kv,
                        prev_kv: old.as_ref().map(Entry::kv),
                    });
                }
            }
            EventKind::Delete => {
                let old = state.map.remove(e.key());
                if let Some(old) = &old {
                    state.bytes -= old.size();
                }
                if notify {
                    let prev_kv = old.as_ref().map(Entry::kv);
                    let key = prev_kv
                        .as_ref()
                        .map_or_else(|| Bytes::copy_from_slice(e.key()), KeyValue::key_bytes);
                    events.push(WatchEvent {
                        kind: EventKind::Delete,
                        kv: KeyValue {
                            key,
                            mod_revision: revision,
                            ..KeyValue::default()
                        },
                        prev_kv,
                    });
                }
            }
        }
    }
    state.revision = state.revision.max(revision);
    if notify {
        if let Some(updates) = &state.updates {
            let _ = updates.send(CacheUpdate::Revision(WatchResponse::from_events(
                revision, events,
            )));
        }
    }
    let applied = state.revision;
    drop(state);
    s.applied.send_replace(applied);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_is_ordered_from_3_4_25_and_3_5_8() {
        for (v, ordered) in [
            ("3.4.23", false),
            ("3.4.25", true),
            ("3.5.1", false),
            ("3.5.7", false),
            ("3.5.8", true),
            ("3.5.13", true),
            ("3.6.0", true),
            ("3.6.0-rc.1", true),
            ("4.0.0", true),
            ("garbage", false),
        ] {
            assert_eq!(crate::watch::progress_is_ordered(v), ordered, "{v}");
        }
    }
}
