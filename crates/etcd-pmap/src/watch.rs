//! Watching a table: a stream of typed changes.

use crate::codec::key::KeyCodec;
use crate::codec::value::ValueCodec;
use crate::db::Database;
use crate::error::Result;
use crate::table::Table;
use etcd_kv::{WatchEvent, WatchStream};
use futures_core::Stream;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// One change to one row of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change<K, V> {
    /// The row's key.
    pub key: K,
    /// The value before the change; `None` for an insert (or when etcd no longer had it).
    pub old: Option<V>,
    /// The value after the change; `None` for a removal.
    pub new: Option<V>,
    /// The revision of the commit that made the change.
    pub revision: i64,
}

/// A live watch on a table: a [`Stream`] of its [`Change`]s in commit order, the changes of
/// one commit together.
///
/// Built on `etcd_kv::WatchStream`: it resumes after connection loss without losing or
/// repeating changes, and ends after an `etcd_kv::Error::Compacted` (inside
/// [`Error::Kv`](crate::Error::Kv)). A row that fails to decode is an
/// [`Error::Decode`](crate::Error::Decode) item; the stream goes on.
///
/// Dropping the stream cancels the watch (its task stops, its connection closes).
#[must_use = "streams do nothing unless polled"]
pub struct TableWatch<K: KeyCodec, V: ValueCodec> {
    events: WatchStream,
    pending: VecDeque<WatchEvent>,
    table: Table<K, V>,
}

impl<K: KeyCodec, V: ValueCodec> fmt::Debug for TableWatch<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableWatch")
            .field("table", &self.table.name())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl<K: KeyCodec, V: ValueCodec> Table<K, V> {
    /// Watches the table's changes from now on: changes committed after this returns are
    /// seen.
    pub async fn watch(&self, db: &Database) -> Result<TableWatch<K, V>> {
        self.watch_from(db, 0).await
    }

    /// Watches the table's changes from `revision` on, including past ones still in etcd's
    /// history (0: from now). Pass a [`Committed::revision`](crate::Committed::revision) + 1 to
    /// see everything after a commit.
    pub async fn watch_from(&self, db: &Database, revision: i64) -> Result<TableWatch<K, V>> {
        let mut watch = db.client().watch(self.raw_prefix()).prefix().prev_kv();
        if revision > 0 {
            watch = watch.start_revision(revision);
        }
        Ok(TableWatch {
            events: watch.await?,
            pending: VecDeque::new(),
            table: self.clone(),
        })
    }
}

impl<K: KeyCodec, V: ValueCodec> TableWatch<K, V> {
    fn decode(&self, event: &WatchEvent) -> Result<Change<K::Value, V::Value>> {
        let key = self.table.decode_key(event.key())?;
        let new = if event.is_put() {
            Some(self.table.decode_value(&key, event.kv().value())?)
        } else {
            None
        };
        let old = match event.prev_kv() {
            Some(prev) => Some(self.table.decode_value(&key, prev.value())?),
            None => None,
        };
        Ok(Change {
            key,
            old,
            new,
            revision: event.revision(),
        })
    }
}

impl<K: KeyCodec, V: ValueCodec> Stream for TableWatch<K, V> {
    type Item = Result<Change<K::Value, V::Value>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(this.decode(&event)));
            }
            match ready!(Pin::new(&mut this.events).poll_next(cx)) {
                Some(Ok(response)) => this.pending.extend(response.into_events()),
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                None => return Poll::Ready(None),
            }
        }
    }
}
