//! A typed, cached view of a table: [`TableCache`], over an [`etcd_kv::Cache`] of the
//! table's slot.

use crate::codec::key::KeyCodec;
use crate::codec::value::ValueCodec;
use crate::db::Database;
use crate::error::Result;
use crate::table::Table;
use crate::watch::Change;
use etcd_kv::{AtRevision, Cache, CacheSubscription, CacheUpdate, KeyValue};
use futures_core::Stream;
use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// Decoded rows of a [`TableCache`], in key order, with the revision they were read at.
pub type CachedRows<K, V> = AtRevision<Vec<(<K as KeyCodec>::Value, <V as ValueCodec>::Value)>>;

/// A typed, local, consistent copy of a [`Table`]: rows read at memory speed, decoded on
/// each read, with the guarantees of [`etcd_kv::Cache`] (its module docs have the table of
/// which read gives which guarantee, at what cost): plain reads see the table at one
/// revision, [`get_at_least`](Self::get_at_least) reads your own writes (pass a
/// [`Committed::revision`](crate::Committed::revision)), and
/// [`consistent_get`](Self::consistent_get) is linearizable.
///
/// A row that fails to decode is an [`Error::Decode`](crate::Error::Decode) on the read
/// that meets it. `Clone`: clones share the cache; it stops when the last one is dropped.
pub struct TableCache<K: KeyCodec, V: ValueCodec> {
    cache: Cache,
    table: Table<K, V>,
}

impl<K: KeyCodec, V: ValueCodec> Clone for TableCache<K, V> {
    fn clone(&self) -> Self {
        TableCache {
            cache: self.cache.clone(),
            table: self.table.clone(),
        }
    }
}

impl<K: KeyCodec, V: ValueCodec> fmt::Debug for TableCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableCache")
            .field("table", &self.table.name())
            .field("cache", &self.cache)
            .finish()
    }
}

impl<K: KeyCodec, V: ValueCodec> Table<K, V> {
    /// A cached copy of the table (see [`TableCache`]); returns once the table is listed.
    pub async fn cache(&self, db: &Database) -> Result<TableCache<K, V>> {
        let cache = db.client().cache(self.raw_prefix()).await?;
        Ok(TableCache {
            cache,
            table: self.clone(),
        })
    }

    /// A cached copy of the table that stops with
    /// [`etcd_kv::Error::CacheFull`] (inside [`Error::Kv`](crate::Error::Kv)) rather than grow
    /// past `max_bytes` (see [`etcd_kv::CacheBuilder::max_bytes`]).
    pub async fn cache_with_limit(
        &self,
        db: &Database,
        max_bytes: usize,
    ) -> Result<TableCache<K, V>> {
        let cache = db
            .client()
            .cache(self.raw_prefix())
            .max_bytes(max_bytes)
            .await?;
        Ok(TableCache {
            cache,
            table: self.clone(),
        })
    }
}

impl<K: KeyCodec, V: ValueCodec> TableCache<K, V> {
    fn row(&self, kv: &KeyValue) -> Result<(K::Value, V::Value)> {
        let key = self.table.decode_key(kv.key())?;
        let value = self.table.decode_value(&key, kv.value())?;
        Ok((key, value))
    }

    fn value(&self, key: &K::Value, kv: Option<KeyValue>) -> Result<Option<V::Value>> {
        kv.map(|kv| self.table.decode_value(key, kv.value()))
            .transpose()
    }

    fn decoded(
        &self,
        key: &K::Value,
        read: AtRevision<Option<KeyValue>>,
    ) -> Result<AtRevision<Option<V::Value>>> {
        let revision = read.revision();
        Ok(AtRevision::new(
            self.value(key, read.into_inner())?,
            revision,
        ))
    }

    fn rows(&self, read: AtRevision<Vec<KeyValue>>) -> Result<CachedRows<K, V>> {
        let revision = read.revision();
        let rows = read
            .iter()
            .map(|kv| self.row(kv))
            .collect::<Result<Vec<_>>>()?;
        Ok(AtRevision::new(rows, revision))
    }

    /// The row of `key` at the cache's current revision.
    pub fn get(&self, key: &K::Value) -> Result<AtRevision<Option<V::Value>>> {
        let read = self.cache.get(self.table.raw_key(key))?;
        self.decoded(key, read)
    }

    /// The row of `key` at a revision ≥ `revision` (read your own commit).
    pub async fn get_at_least(
        &self,
        key: &K::Value,
        revision: i64,
    ) -> Result<AtRevision<Option<V::Value>>> {
        let read = self
            .cache
            .get_at_least(self.table.raw_key(key), revision)
            .await?;
        self.decoded(key, read)
    }

    /// Linearizable: the row of `key` after every commit acknowledged before this call.
    pub async fn consistent_get(&self, key: &K::Value) -> Result<AtRevision<Option<V::Value>>> {
        let read = self.cache.consistent_get(self.table.raw_key(key)).await?;
        self.decoded(key, read)
    }

    /// True when `key` has a row, at the cache's current revision.
    pub fn contains(&self, key: &K::Value) -> Result<bool> {
        let raw = self.table.raw_key(key);
        Ok(self.cache.read(|view| view.contains(&raw))?)
    }

    /// How many rows, at the cache's current revision.
    pub fn len(&self) -> Result<AtRevision<usize>> {
        Ok(self.cache.len()?)
    }

    /// True when the table has no row.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.cache.is_empty()?)
    }

    /// Every row in key order, at the cache's current revision.
    pub fn rows_now(&self) -> Result<CachedRows<K, V>> {
        self.rows(self.cache.list()?)
    }

    /// The rows with keys in `[from, to)`, in key order, at the cache's current revision.
    pub fn range(&self, from: &K::Value, to: &K::Value) -> Result<CachedRows<K, V>> {
        self.rows(
            self.cache
                .range(self.table.raw_key(from), self.table.raw_key(to))?,
        )
    }

    /// Linearizable: every row after every commit acknowledged before this call.
    pub async fn consistent_rows(&self) -> Result<CachedRows<K, V>> {
        let read = self
            .cache
            .consistent_read(|view| view.iter().collect::<Vec<_>>())
            .await?;
        self.rows(read)
    }

    /// The revision whose table the cache holds now.
    pub fn revision(&self) -> i64 {
        self.cache.revision()
    }

    /// The underlying untyped cache (its size, its error, its raw reads).
    pub fn raw(&self) -> &Cache {
        &self.cache
    }

    /// The rows now, and the typed updates of every commit applied after them, taken
    /// together so that nothing falls between.
    pub fn snapshot_and_subscribe(&self) -> Result<(CachedRows<K, V>, TableUpdates<K, V>)> {
        let (snapshot, updates) = self.cache.snapshot_and_subscribe()?;
        let revision = snapshot.revision();
        let rows = self.rows(AtRevision::new(snapshot.into_kvs(), revision))?;
        Ok((
            rows,
            TableUpdates {
                updates,
                table: self.table.clone(),
            },
        ))
    }

    /// The typed updates of every commit applied from now on.
    pub fn subscribe(&self) -> Result<TableUpdates<K, V>> {
        Ok(TableUpdates {
            updates: self.cache.subscribe()?,
            table: self.table.clone(),
        })
    }
}

/// What a subscriber of a [`TableCache`] receives.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TableUpdate<K, V> {
    /// The changes of one commit (one revision), with old and new values.
    Commit {
        /// The commit's revision.
        revision: i64,
        /// Its changes to this table, in etcd's order.
        changes: Vec<Change<K, V>>,
    },
    /// The content was replaced whole (the cache listed the table again after a
    /// compaction, or the subscriber fell behind): these are all the rows now.
    Reset {
        /// The revision of the rows.
        revision: i64,
        /// Every row, in key order.
        rows: Vec<(K, V)>,
    },
}

/// A [`Stream`] of a [`TableCache`]'s [`TableUpdate`]s, in commit order, without gaps
/// (see [`etcd_kv::CacheSubscription`]). A row that fails to decode makes its update an
/// [`Error::Decode`](crate::Error::Decode) item; the stream goes on.
#[must_use = "streams do nothing unless polled"]
pub struct TableUpdates<K: KeyCodec, V: ValueCodec> {
    updates: CacheSubscription,
    table: Table<K, V>,
}

impl<K: KeyCodec, V: ValueCodec> fmt::Debug for TableUpdates<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableUpdates")
            .field("table", &self.table.name())
            .finish_non_exhaustive()
    }
}

impl<K: KeyCodec, V: ValueCodec> TableUpdates<K, V> {
    fn decode(&self, update: CacheUpdate) -> Result<TableUpdate<K::Value, V::Value>> {
        match update {
            CacheUpdate::Revision(response) => {
                let revision = response.revision();
                let changes = response
                    .events()
                    .iter()
                    .map(|event| {
                        let key = self.table.decode_key(event.key())?;
                        let new = if event.is_put() {
                            Some(self.table.decode_value(&key, event.kv().value())?)
                        } else {
                            None
                        };
                        let old = event
                            .prev_kv()
                            .map(|prev| self.table.decode_value(&key, prev.value()))
                            .transpose()?;
                        Ok(Change {
                            key,
                            old,
                            new,
                            revision,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(TableUpdate::Commit { revision, changes })
            }
            CacheUpdate::Reset(snapshot) => {
                let rows = snapshot
                    .kvs()
                    .iter()
                    .map(|kv| {
                        let key = self.table.decode_key(kv.key())?;
                        let value = self.table.decode_value(&key, kv.value())?;
                        Ok((key, value))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(TableUpdate::Reset {
                    revision: snapshot.revision(),
                    rows,
                })
            }
            other => Err(crate::Error::Kv(etcd_kv::Error::Protocol(format!(
                "unknown cache update at revision {}",
                other.revision()
            )))),
        }
    }
}

impl<K: KeyCodec, V: ValueCodec> Stream for TableUpdates<K, V> {
    type Item = Result<TableUpdate<K::Value, V::Value>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match ready!(Pin::new(&mut this.updates).poll_next(cx)) {
            Some(Ok(update)) => Poll::Ready(Some(this.decode(update))),
            Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            None => Poll::Ready(None),
        }
    }
}
