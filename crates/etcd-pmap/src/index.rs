//! Secondary indexes: a slot mapping an index key to primary keys, written in the same
//! commit as the table.
//!
//! Layout (relative to the database prefix):
//!
//! * unique index: `slot + encode(index key)` → `encode(primary key)`;
//! * non-unique index: `slot + encode_part(index key) + encode(primary key)` →
//!   `encode(primary key)`: one entry per row, all rows of one index key under one prefix.

use crate::codec::key::KeyCodec;
use crate::error::{Error, Result};
use crate::rows::RawRows;
use crate::slot::{SlotInfo, SlotKind};
use crate::txn::Transaction;
use bytes::Bytes;
use etcd_kv::prefix_end;
use futures_util::StreamExt;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// A secondary index of a table with primary keys `K`, by index keys `IK`.
///
/// Define it, attach it to its table with [`Table::with_index`](crate::Table::with_index)
/// (which says how to compute a row's index key), then look rows up with [`Index::get`] or
/// [`Index::get_all`]. Each put or remove on the table updates the index in the same commit:
/// the row's old entry is removed and its new one added. A unique index refuses a second row
/// with the same index key ([`Error::UniqueViolation`]); two concurrent transactions adding
/// the same key conflict, and on retry the second sees the violation.
///
/// ```no_run
/// # async fn demo(db: etcd_pmap::Database) -> etcd_pmap::Result<()> {
/// use etcd_pmap::{Index, MapOidJson, StringKey, OidKey, Table};
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct User { email: String }
///
/// let by_email: Index<StringKey, OidKey> = Index::unique(11, "users_by_email");
/// let users: MapOidJson<User> = Table::new(10, "users")
///     .with_index(&by_email, |u: &User| Some(u.email.clone()));
///
/// let txn = db.begin_write();
/// users.put(&txn, &1, &User { email: "ann@example.com".into() }).await?;
/// txn.commit().await?;
///
/// let txn = db.begin_read();
/// assert_eq!(by_email.get(&txn, &"ann@example.com".into()).await?, Some(1));
/// # Ok(()) }
/// ```
pub struct Index<IK: KeyCodec, K: KeyCodec> {
    slot: u16,
    name: Arc<str>,
    unique: bool,
    _keys: PhantomData<fn() -> (IK, K)>,
}

impl<IK: KeyCodec, K: KeyCodec> Clone for Index<IK, K> {
    fn clone(&self) -> Self {
        Index {
            slot: self.slot,
            name: self.name.clone(),
            unique: self.unique,
            _keys: PhantomData,
        }
    }
}

impl<IK: KeyCodec, K: KeyCodec> fmt::Debug for Index<IK, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index")
            .field("slot", &self.slot)
            .field("name", &self.name)
            .field("unique", &self.unique)
            .field("key", &IK::name())
            .finish()
    }
}

impl<IK: KeyCodec, K: KeyCodec> Index<IK, K> {
    /// A unique index at `slot`: each index key maps to at most one row.
    pub fn unique(slot: u16, name: impl Into<String>) -> Self {
        Index {
            slot,
            name: name.into().into(),
            unique: true,
            _keys: PhantomData,
        }
    }

    /// A non-unique index at `slot`: an index key may map to many rows.
    pub fn new(slot: u16, name: impl Into<String>) -> Self {
        Index {
            slot,
            name: name.into().into(),
            unique: false,
            _keys: PhantomData,
        }
    }

    /// The slot.
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the index is unique.
    pub fn is_unique(&self) -> bool {
        self.unique
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

    pub(crate) fn hook<V, F>(&self, key_of: F) -> Arc<dyn IndexHook<V>>
    where
        V: 'static,
        F: Fn(&V) -> Option<IK::Value> + Send + Sync + 'static,
    {
        Arc::new(Hook::<IK, K, F> {
            index: self.clone(),
            key_of,
        })
    }

    fn decode_pk(&self, raw: &[u8]) -> Result<K::Value> {
        K::decode(raw).map_err(|source| Error::Decode {
            table: self.name.to_string(),
            key: format!("{:?}", Bytes::copy_from_slice(raw)),
            source,
        })
    }

    /// The primary key of the row with this index key (for a non-unique index: the first,
    /// in primary key order).
    pub async fn get(&self, txn: &impl Transaction, key: &IK::Value) -> Result<Option<K::Value>> {
        self.check_slot()?;
        if !self.unique {
            return Ok(self.lookup(txn, key, Some(1)).await?.into_iter().next());
        }
        let mut raw = self.slot.to_be_bytes().to_vec();
        IK::encode(key, &mut raw);
        match txn.core().get(&raw.into(), false).await? {
            Some(pk) => self.decode_pk(&pk).map(Some),
            None => Ok(None),
        }
    }

    /// The primary keys of every row with this index key, in primary key order.
    pub async fn get_all(&self, txn: &impl Transaction, key: &IK::Value) -> Result<Vec<K::Value>> {
        self.check_slot()?;
        if self.unique {
            return Ok(self.get(txn, key).await?.into_iter().collect());
        }
        self.lookup(txn, key, None).await
    }

    async fn lookup(
        &self,
        txn: &impl Transaction,
        key: &IK::Value,
        limit: Option<u64>,
    ) -> Result<Vec<K::Value>> {
        let mut prefix = self.slot.to_be_bytes().to_vec();
        IK::encode_part(key, &mut prefix);
        let end = prefix_end(&prefix);
        let mut rows = RawRows::new(txn.core(), prefix.into(), end, None);
        rows.limit = limit;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await {
            out.push(self.decode_pk(&row?.value)?);
        }
        Ok(out)
    }

    pub(crate) fn info(&self, table: u16) -> SlotInfo {
        SlotInfo::new(
            self.slot,
            &self.name,
            "",
            SlotKind::Index {
                table,
                unique: self.unique,
            },
            IK::name(),
            K::name(),
        )
    }
}

/// An index as its table sees it: from a row to its entry.
pub(crate) trait IndexHook<V>: Send + Sync {
    fn name(&self) -> &str;
    fn slot(&self) -> u16;
    fn is_unique(&self) -> bool;
    /// The entry's key for the row `pk` (encoded primary key) with value `value`, and the
    /// index key for messages; `None` when the row is not indexed.
    fn entry(&self, value: &V, pk: &[u8]) -> Option<(Bytes, String)>;
    /// The catalog entry, for a table at slot `table`.
    fn info(&self, table: u16) -> SlotInfo;
}

struct Hook<IK: KeyCodec, K: KeyCodec, F> {
    index: Index<IK, K>,
    key_of: F,
}

impl<IK, K, V, F> IndexHook<V> for Hook<IK, K, F>
where
    IK: KeyCodec,
    K: KeyCodec,
    F: Fn(&V) -> Option<IK::Value> + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.index.name
    }

    fn slot(&self) -> u16 {
        self.index.slot
    }

    fn is_unique(&self) -> bool {
        self.index.unique
    }

    fn entry(&self, value: &V, pk: &[u8]) -> Option<(Bytes, String)> {
        let ik = (self.key_of)(value)?;
        let mut raw = self.index.slot.to_be_bytes().to_vec();
        if self.index.unique {
            IK::encode(&ik, &mut raw);
        } else {
            IK::encode_part(&ik, &mut raw);
            raw.extend_from_slice(pk);
        }
        Some((raw.into(), format!("{ik:?}")))
    }

    fn info(&self, table: u16) -> SlotInfo {
        self.index.info(table)
    }
}
