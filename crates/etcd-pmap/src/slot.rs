//! What a slot is: a table or an index, its name and codecs, as the catalog (slot 0) records
//! it. A leaf: the errors name it and the catalog stores it.

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
    pub(crate) fn same_shape(&self, other: &SlotInfo) -> bool {
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
