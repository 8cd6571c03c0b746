//! Tables: typed maps stored under a slot, and their ordered scans.

use crate::codec::key::KeyCodec;
use crate::codec::value::ValueCodec;
use crate::error::{Error, Result};
use crate::index::{Index, IndexHook};
use crate::rows::{successor, RawRows};
use crate::txn::sealed::Sealed;
use crate::txn::{Transaction, WriteTxn};
use bytes::Bytes;
use etcd_kv::prefix_end;
use futures_core::Stream;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// A typed persistent map ("slot"): keys encoded by `K`, values by `V`, stored in etcd under
/// `database prefix + slot (u16, big-endian) + encoded key`.
///
/// A table is a description, not a connection: operations take the transaction to run in.
/// Clone it freely (`Arc`s inside). The named aliases ([`MapUuidCbor`](crate::MapUuidCbor),
/// [`MapOidJson`](crate::MapOidJson)...) are this type with given codecs.
///
/// ```no_run
/// # async fn demo(db: etcd_pmap::Database) -> etcd_pmap::Result<()> {
/// use etcd_pmap::{MapOidString, Table};
/// let names: MapOidString = Table::new(3, "names");
///
/// let txn = db.begin_write();
/// names.put(&txn, &7, &"seven".to_string()).await?;
/// names.put(&txn, &8, &"eight".to_string()).await?;
/// txn.commit().await?;
///
/// let txn = db.begin_read();
/// assert_eq!(names.get(&txn, &7).await?.as_deref(), Some("seven"));
/// assert_eq!(names.count(&txn).await?, 2);
/// # Ok(()) }
/// ```
pub struct Table<K: KeyCodec, V: ValueCodec> {
    slot: u16,
    name: Arc<str>,
    description: Arc<str>,
    codec: Arc<V>,
    indexes: Vec<Arc<dyn IndexHook<V::Value>>>,
    _key: PhantomData<fn() -> K>,
}

impl<K: KeyCodec, V: ValueCodec> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        Table {
            slot: self.slot,
            name: self.name.clone(),
            description: self.description.clone(),
            codec: self.codec.clone(),
            indexes: self.indexes.clone(),
            _key: PhantomData,
        }
    }
}

impl<K: KeyCodec, V: ValueCodec> fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("slot", &self.slot)
            .field("name", &self.name)
            .field("key", &K::name())
            .field("value", &self.codec.name())
            .field(
                "indexes",
                &self.indexes.iter().map(|i| i.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<K: KeyCodec, V: ValueCodec + Default> Table<K, V> {
    /// The table at `slot` (1 to 65535; slot 0 is the catalog), with the value codec's
    /// default (serde for [`Json`](crate::Json), [`Cbor`](crate::Cbor),
    /// [`MsgPack`](crate::MsgPack)).
    pub fn new(slot: u16, name: impl Into<String>) -> Self {
        Table::with_codec(slot, name, V::default())
    }
}

impl<K: KeyCodec, V: ValueCodec> Table<K, V> {
    /// The table at `slot` with a given value codec (marshal functions, FlatBuffers...).
    ///
    /// The codec says the value type, but nothing in the call says the key type: name the
    /// table's type, by the binding's annotation or by calling through an alias
    /// (`Table::with_codec(..)` alone fails with E0283, "type annotations needed"):
    ///
    /// ```
    /// use etcd_pmap::{Cbor, MapUuidCbor, Table, UuidKey};
    /// use std::collections::BTreeMap;
    ///
    /// /// A type without serde of its own, stored through a map.
    /// #[derive(Debug, Clone, PartialEq)]
    /// struct User {
    ///     name: String,
    /// }
    /// let codec = || {
    ///     Cbor::with_marshal(
    ///         |u: &User| BTreeMap::from([("name".to_string(), u.name.clone())]),
    ///         |m: BTreeMap<String, String>| {
    ///             m.get("name")
    ///                 .map(|name| User { name: name.clone() })
    ///                 .ok_or("no name")
    ///         },
    ///     )
    /// };
    ///
    /// // Through an alias: the key type is the alias's.
    /// let users = MapUuidCbor::with_codec(1, "users", codec());
    /// // Or annotate the binding.
    /// let same: MapUuidCbor<User> = Table::with_codec(1, "users", codec());
    /// // Or name the key codec and let the value codec be inferred.
    /// let also = Table::<UuidKey, _>::with_codec(1, "users", codec());
    /// # let _ = (users, same, also);
    /// ```
    pub fn with_codec(slot: u16, name: impl Into<String>, codec: V) -> Self {
        Table {
            slot,
            name: name.into().into(),
            description: "".into(),
            codec: Arc::new(codec),
            indexes: Vec::new(),
            _key: PhantomData,
        }
    }

    /// A description, kept in the catalog by [`Database::attach_table`](crate::Database::attach_table).
    pub fn with_description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into().into();
        self
    }

    /// Maintains `index` in every commit that writes this table: `key_of` gives a row's
    /// index key, or `None` to leave the row out of the index.
    pub fn with_index<IK, F>(mut self, index: &Index<IK, K>, key_of: F) -> Self
    where
        IK: KeyCodec,
        F: Fn(&V::Value) -> Option<IK::Value> + Send + Sync + 'static,
    {
        self.indexes.push(index.hook(key_of));
        self
    }

    /// The slot.
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The value codec.
    pub fn codec(&self) -> &V {
        &self.codec
    }

    pub(crate) fn index_hooks(&self) -> &[Arc<dyn IndexHook<V::Value>>] {
        &self.indexes
    }

    /// The etcd key of a row, relative to the database prefix: slot, then encoded key.
    pub fn raw_key(&self, key: &K::Value) -> Bytes {
        let mut out = self.slot.to_be_bytes().to_vec();
        K::encode(key, &mut out);
        out.into()
    }

    /// The prefix of every row's etcd key, relative to the database prefix: the slot.
    pub fn raw_prefix(&self) -> Bytes {
        Bytes::copy_from_slice(&self.slot.to_be_bytes())
    }

    fn check_slot(&self) -> Result<()> {
        if self.slot == 0 {
            Err(Error::ReservedSlot {
                name: self.name.to_string(),
            })
        } else {
            Ok(())
        }
    }

    fn checked_key(&self, key: &K::Value) -> Result<Bytes> {
        self.check_slot()?;
        if let Some(index) = self.indexes.iter().find(|i| i.slot() == 0) {
            return Err(Error::ReservedSlot {
                name: index.name().to_string(),
            });
        }
        Ok(self.raw_key(key))
    }

    /// Decodes a raw key (slot included).
    pub(crate) fn decode_key(&self, raw: &[u8]) -> Result<K::Value> {
        let encoded = raw.get(2..).unwrap_or_default();
        K::decode(encoded).map_err(|source| Error::Decode {
            table: self.name.to_string(),
            key: format!("{:?}", Bytes::copy_from_slice(encoded)),
            source,
        })
    }

    pub(crate) fn decode_value(&self, key: &K::Value, bytes: &[u8]) -> Result<V::Value> {
        self.codec.decode(bytes).map_err(|source| Error::Decode {
            table: self.name.to_string(),
            key: format!("{key:?}"),
            source,
        })
    }

    fn encode_value(&self, key: &K::Value, value: &V::Value) -> Result<Bytes> {
        self.codec
            .encode(value)
            .map(Bytes::from)
            .map_err(|source| Error::Encode {
                table: self.name.to_string(),
                key: format!("{key:?}"),
                source,
            })
    }

    /// The value at `key`, as of the transaction's snapshot (and its own writes).
    pub async fn get(&self, txn: &impl Transaction, key: &K::Value) -> Result<Option<V::Value>> {
        let raw = self.checked_key(key)?;
        match txn.core().get(&raw, false).await? {
            Some(bytes) => self.decode_value(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Whether `key` has a value (read without fetching the value).
    pub async fn contains(&self, txn: &impl Transaction, key: &K::Value) -> Result<bool> {
        let raw = self.checked_key(key)?;
        Ok(txn.core().get(&raw, true).await?.is_some())
    }

    /// The number of rows. In a [`ReadTxn`](crate::ReadTxn) this is one count request; in a
    /// [`WriteTxn`] it reads every key, each a compare at commit (see
    /// [Conflicts](crate#conflicts)).
    pub async fn count(&self, txn: &impl Transaction) -> Result<u64> {
        self.range(txn, ..).count().await
    }

    /// The rows with keys in `bounds`, in key order: `table.range(&txn, ..)` for all,
    /// `table.range(&txn, &a..&b)`-style bounds over typed keys otherwise. Options
    /// ([`Rows::reverse`], [`Rows::limit`]) go on the returned stream before reading it.
    pub fn range<'t, T, R>(&self, txn: &'t T, bounds: R) -> Rows<'t, K, V>
    where
        T: Transaction,
        R: RangeBounds<K::Value>,
    {
        let prefix = self.raw_prefix();
        let start = match bounds.start_bound() {
            Bound::Included(k) => self.raw_key(k),
            Bound::Excluded(k) => successor(self.raw_key(k)),
            Bound::Unbounded => prefix.clone(),
        };
        let end = match bounds.end_bound() {
            Bound::Included(k) => successor(self.raw_key(k)),
            Bound::Excluded(k) => self.raw_key(k),
            Bound::Unbounded => prefix_end(&prefix),
        };
        Rows {
            raw: RawRows::new(txn.core(), start, end, self.check_slot().err()),
            table: self.clone(),
        }
    }

    /// Every row, in key order (`range(txn, ..)`).
    pub fn iter<'t, T: Transaction>(&self, txn: &'t T) -> Rows<'t, K, V> {
        self.range(txn, ..)
    }

    /// Writes `value` at `key` (buffered until commit). On a table with indexes this reads
    /// the old row first, to update its index entries, and fails with
    /// [`Error::UniqueViolation`] (changing nothing) if a unique index already has the new
    /// index key for another row.
    pub async fn put(&self, txn: &WriteTxn, key: &K::Value, value: &V::Value) -> Result<()> {
        self.write(txn, key, value, false).await.map(drop)
    }

    /// Like [`put`](Table::put), returning the previous value (which is read, so a
    /// concurrent change of it is a conflict).
    pub async fn insert(
        &self,
        txn: &WriteTxn,
        key: &K::Value,
        value: &V::Value,
    ) -> Result<Option<V::Value>> {
        self.write(txn, key, value, true).await
    }

    async fn write(
        &self,
        txn: &WriteTxn,
        key: &K::Value,
        value: &V::Value,
        want_old: bool,
    ) -> Result<Option<V::Value>> {
        let core = txn.core();
        let raw = self.checked_key(key)?;
        let bytes = self.encode_value(key, value)?;
        let old = if want_old || !self.indexes.is_empty() {
            match core.get(&raw, false).await? {
                Some(old) => Some(self.decode_value(key, &old)?),
                None => None,
            }
        } else {
            None
        };
        let pk = Bytes::from(K::to_bytes(key));
        // Check every index before buffering anything: a violation changes nothing.
        let mut entries = Vec::new();
        for index in &self.indexes {
            let stale = old.as_ref().and_then(|o| index.entry(o, &pk));
            let fresh = index.entry(value, &pk);
            if stale.as_ref().map(|e| &e.0) == fresh.as_ref().map(|e| &e.0) {
                continue;
            }
            if let Some((entry, printable)) = &fresh {
                if index.is_unique() {
                    if let Some(owner) = core.get(entry, false).await? {
                        if owner != pk {
                            return Err(Error::UniqueViolation {
                                index: index.name().to_string(),
                                key: printable.clone(),
                            });
                        }
                    }
                }
            }
            entries.push((stale.map(|e| e.0), fresh.map(|e| e.0)));
        }
        for (stale, fresh) in entries {
            if let Some(stale) = stale {
                core.delete(stale)?;
            }
            if let Some(fresh) = fresh {
                core.put(fresh, pk.clone())?;
            }
        }
        core.put(raw, bytes)?;
        Ok(old)
    }

    /// Removes the row at `key` (buffered until commit) and its index entries; returns the
    /// value it had (which is read, so a concurrent change of it is a conflict).
    pub async fn remove(&self, txn: &WriteTxn, key: &K::Value) -> Result<Option<V::Value>> {
        let core = txn.core();
        let raw = self.checked_key(key)?;
        let Some(bytes) = core.get(&raw, false).await? else {
            return Ok(None);
        };
        let old = self.decode_value(key, &bytes)?;
        let pk = K::to_bytes(key);
        for index in &self.indexes {
            if let Some((entry, _)) = index.entry(&old, &pk) {
                core.delete(entry)?;
            }
        }
        core.delete(raw)?;
        Ok(Some(old))
    }
}

/// An ordered stream of a table's rows, `(key, value)`, read at the transaction's snapshot
/// merged with the transaction's own writes (those made before the first read of the stream).
///
/// Rows are fetched a page at a time. In a [`WriteTxn`] every row returned, and the range
/// up to the last row returned (the whole range once the stream ends), become part of what
/// the commit checks. Dropping the stream abandons the page request in flight, if any.
#[must_use = "streams do nothing unless polled"]
pub struct Rows<'t, K: KeyCodec, V: ValueCodec> {
    raw: RawRows<'t>,
    table: Table<K, V>,
}

impl<K: KeyCodec, V: ValueCodec> fmt::Debug for Rows<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rows")
            .field("table", &self.table.name)
            .field("raw", &self.raw)
            .finish()
    }
}

impl<'t, K: KeyCodec, V: ValueCodec> Rows<'t, K, V> {
    /// Returns rows in descending key order. Call before reading.
    pub fn reverse(mut self) -> Self {
        self.raw.reverse = true;
        self
    }

    /// Returns at most `n` rows. Call before reading.
    pub fn limit(mut self, n: u64) -> Self {
        self.raw.limit = Some(n);
        self
    }

    /// Fetches `n` rows per request (default [`DEFAULT_PAGE_SIZE`](crate::DEFAULT_PAGE_SIZE)). Call before reading.
    pub fn page_size(mut self, n: i64) -> Self {
        self.raw.page_size = n.max(1);
        self
    }

    /// Counts the rows instead of reading them (only keys are fetched; in a read-only
    /// transaction without writes, only the count).
    pub async fn count(mut self) -> Result<u64> {
        self.raw.count().await
    }
}

impl<K: KeyCodec, V: ValueCodec> Stream for Rows<'_, K, V> {
    type Item = Result<(K::Value, V::Value)>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let row = match ready!(Pin::new(&mut this.raw).poll_next(cx)) {
            None => return Poll::Ready(None),
            Some(Err(e)) => return Poll::Ready(Some(Err(e))),
            Some(Ok(row)) => row,
        };
        let decoded = this.table.decode_key(&row.key).and_then(|key| {
            let value = this.table.decode_value(&key, &row.value)?;
            Ok((key, value))
        });
        Poll::Ready(Some(decoded))
    }
}
