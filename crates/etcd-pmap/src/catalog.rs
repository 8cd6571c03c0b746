//! The catalog: slot 0 describes the other slots (name, description, kind, codecs), as
//! JSON, one key per slot: `prefix + 0x0000 + slot (u16, big-endian)`.

use crate::codec::key::KeyCodec;
use crate::codec::value::ValueCodec;
use crate::db::Database;
use crate::error::{CodecError, Error, Result};
use crate::slot::{SlotInfo, SlotKind};
use crate::table::Table;
use etcd_kv::{Compare, TxnOp};
use futures_util::TryStreamExt;

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
        if info.slot() == 0 {
            return Err(Error::ReservedSlot {
                name: info.name().to_string(),
            });
        }
        let key = catalog_key(info.slot());
        let json = serde_json::to_vec(&info).map_err(|e| Error::Encode {
            table: "catalog".into(),
            key: info.slot().to_string(),
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
