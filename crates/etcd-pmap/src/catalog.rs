//! The catalog: slot 0 describes the other slots (name, description, kind, codecs), as
//! JSON, one key per slot: `prefix + 0x0000 + slot (u16, big-endian)`.

use crate::codec::key::KeyCodec;
use crate::codec::value::ValueCodec;
use crate::db::Database;
use crate::error::{CodecError, Error, Result};
use crate::table::Table;
use etcd_kv::{Compare, TxnOp};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SlotKind {
    /// A table.
    Table,
    /// A secondary index of the table at slot `table`.
    Index {
        /// The indexed table's slot.
        table: u16,
        /// Whether the index is unique.
        unique: bool,
    },
}

/// A catalog entry: one slot's description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInfo {
    slot: u16,
    name: String,
    #[serde(default)]
    description: String,
    kind: SlotKind,
    key_codec: String,
    value_codec: String,
}

impl SlotInfo {
    pub(crate) fn new(
        slot: u16,
        name: &str,
        description: &str,
        kind: SlotKind,
        key_codec: String,
        value_codec: String,
    ) -> SlotInfo {
        SlotInfo {
            slot,
            name: name.to_string(),
            description: description.to_string(),
            kind,
            key_codec,
            value_codec,
        }
    }

    /// The slot.
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// The table's or index's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Table or index.
    pub fn kind(&self) -> SlotKind {
        self.kind
    }

    /// The key codec's name (`"uuid"`, `"(string,oid)"`...).
    pub fn key_codec(&self) -> &str {
        &self.key_codec
    }

    /// The value codec's name (`"cbor"`...; for an index, the primary key's codec).
    pub fn value_codec(&self) -> &str {
        &self.value_codec
    }

    /// Same slot, name, kind and codecs (descriptions may differ).
    fn same_shape(&self, other: &SlotInfo) -> bool {
        (
            self.slot,
            &self.name,
            self.kind,
            &self.key_codec,
            &self.value_codec,
        ) == (
            other.slot,
            &other.name,
            other.kind,
            &other.key_codec,
            &other.value_codec,
        )
    }
}

impl fmt::Display for SlotInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            SlotKind::Table => "table".to_string(),
            SlotKind::Index { table, unique } => format!(
                "{}index of slot {table}",
                if unique { "unique " } else { "" }
            ),
        };
        write!(
            f,
            "{kind} `{}` ({} -> {})",
            self.name, self.key_codec, self.value_codec
        )
    }
}

/// The catalog key of `slot`.
fn catalog_key(slot: u16) -> Vec<u8> {
    let mut key = vec![0, 0];
    key.extend_from_slice(&slot.to_be_bytes());
    key
}

fn decode_info(key: &[u8], bytes: &[u8]) -> Result<SlotInfo> {
    serde_json::from_slice(bytes).map_err(|e| Error::Decode {
        table: "catalog".into(),
        key: format!("{:?}", bytes::Bytes::copy_from_slice(key)),
        source: CodecError::new("json", e),
    })
}

impl Database {
    /// Registers a table and its indexes in the catalog (slot 0), or checks that the
    /// catalog already describes them the same way (name, kind, codecs; descriptions may
    /// differ). Fails with [`Error::SlotMismatch`] if a slot is registered as something
    /// else. Optional: tables work without it.
    pub async fn attach_table<K: KeyCodec, V: ValueCodec>(
        &self,
        table: &Table<K, V>,
    ) -> Result<()> {
        let info = SlotInfo::new(
            table.slot(),
            table.name(),
            table.description(),
            SlotKind::Table,
            K::name(),
            table.codec().name().to_string(),
        );
        self.attach_slot(info).await?;
        for index in table.index_hooks() {
            self.attach_slot(index.info(table.slot())).await?;
        }
        Ok(())
    }

    async fn attach_slot(&self, info: SlotInfo) -> Result<()> {
        if info.slot == 0 {
            return Err(Error::ReservedSlot { name: info.name });
        }
        let key = catalog_key(info.slot);
        let json = serde_json::to_vec(&info).map_err(|e| Error::Encode {
            table: "catalog".into(),
            key: info.slot.to_string(),
            source: CodecError::new("json", e),
        })?;
        let response = self
            .client()
            .txn()
            .when([Compare::create_revision(key.as_slice()).eq(0)])
            .and_then([TxnOp::put(key.as_slice(), json)])
            .or_else([TxnOp::get(key.as_slice())])
            .await?;
        if response.succeeded() {
            return Ok(());
        }
        let registered = response
            .responses()
            .first()
            .and_then(|r| r.as_range())
            .and_then(|r| r.kvs().first())
            .map(|kv| decode_info(kv.key(), kv.value()))
            .transpose()?;
        match registered {
            Some(registered) if registered.same_shape(&info) => Ok(()),
            Some(registered) => Err(Error::SlotMismatch {
                registered: Box::new(registered),
                wanted: Box::new(info),
            }),
            // Deleted in between: try again.
            None => Box::pin(self.attach_slot(info)).await,
        }
    }

    /// Every slot described in the catalog, in slot order.
    pub async fn tables(&self) -> Result<Vec<SlotInfo>> {
        let kvs: Vec<_> = self
            .client()
            .scan([0u8, 0])
            .prefix()
            .into_stream()
            .try_collect()
            .await?;
        kvs.iter()
            .map(|kv| decode_info(kv.key(), kv.value()))
            .collect()
    }
}
