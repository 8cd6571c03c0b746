//! The crate's one error type.

use crate::slot::SlotInfo;

/// A boxed error from user code (a marshal function, a transaction body...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use etcd_kv::{DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_TXN_OPS};

/// Errors of persistent maps and their transactions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key the transaction read (or a range it scanned) changed after its snapshot, so
    /// etcd refused the commit: nothing of the transaction was applied. Safe to retry from the
    /// start; [`Database::transact`](crate::Database::transact) does so.
    #[error(
        "transaction conflict: something it read at revision {read_revision} changed before \
         the commit; nothing was applied"
    )]
    Conflict {
        /// The snapshot revision the transaction read at.
        read_revision: i64,
    },
    /// A stored key or value could not be decoded with the table's codecs.
    #[error("cannot decode the row of table `{table}` at key {key}")]
    Decode {
        /// The table (or index, or `catalog`) the row belongs to.
        table: String,
        /// The key: the typed key when it decoded, otherwise its raw bytes.
        key: String,
        /// What the codec said.
        #[source]
        source: CodecError,
    },
    /// A value could not be encoded with the table's codec.
    #[error("cannot encode a value for table `{table}` at key {key}")]
    Encode {
        /// The table.
        table: String,
        /// The typed key.
        key: String,
        /// What the codec said.
        #[source]
        source: CodecError,
    },
    /// A unique index already maps this index key to another row.
    #[error("unique index `{index}` already has key {key} for another row")]
    UniqueViolation {
        /// The index.
        index: String,
        /// The duplicate index key.
        key: String,
    },
    /// The transaction does not fit in one etcd txn; it was refused before anything was
    /// sent. etcd limits each txn to `--max-txn-ops` compares and as many operations
    /// (default 128) and each request to `--max-request-bytes` (default 1.5 MiB).
    #[error(
        "transaction too large for one etcd txn: {ops} operations and {compares} compares \
         (at most {max_ops} of each: etcd's --max-txn-ops, default 128), about {request_bytes} \
         bytes of keys, values and compares (at most {max_request_bytes}: etcd's \
         --max-request-bytes, default 1.5 MiB); nothing was sent"
    )]
    TooLarge {
        /// Buffered writes (puts and deletes, index entries included).
        ops: usize,
        /// Compares guarding what the transaction read.
        compares: usize,
        /// The limit on either count.
        max_ops: usize,
        /// The estimated size of the request as etcd sees it (protobuf, not JSON).
        request_bytes: usize,
        /// The limit on the request size.
        max_request_bytes: usize,
    },
    /// Slot 0 holds the catalog; tables and indexes use slots 1 to 65535.
    #[error("slot 0 is the catalog; `{name}` needs a slot from 1 to 65535")]
    ReservedSlot {
        /// The table or index given slot 0.
        name: String,
    },
    /// The catalog already describes this slot differently.
    #[error("slot {} is registered as {registered}, not {wanted}", registered.slot())]
    SlotMismatch {
        /// What the catalog holds.
        registered: Box<SlotInfo>,
        /// What was attached.
        wanted: Box<SlotInfo>,
    },
    /// The transaction was already committed or aborted (through another handle).
    #[error("the transaction is already committed or aborted")]
    Finished,
    /// The body of [`Database::transact`](crate::Database::transact) gave up with an error
    /// of its own ([`Error::abort`]) or a decoding error that `?` converted (a value that
    /// is not UTF-8, a number that does not parse, JSON that does not decode); nothing was
    /// committed, and the transaction is not retried. Get your error back with
    /// [`Error::downcast_aborted_ref`].
    #[error("the transaction was aborted")]
    Aborted(#[source] BoxError),
    /// An error of the etcd client (connection, server error, compacted snapshot...). When
    /// it comes from a commit, [`etcd_kv::Error::is_outcome_unknown`] says whether the
    /// commit may have been applied.
    #[error("etcd error")]
    Kv(#[from] etcd_kv::Error),
}

impl Error {
    /// An [`Error::Aborted`] carrying your own error, to end a transaction body.
    pub fn abort(error: impl Into<BoxError>) -> Error {
        Error::Aborted(error.into())
    }

    /// The error that ended the transaction body ([`Error::Aborted`]), if it is an `E`.
    pub fn downcast_aborted_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Error::Aborted(e) => e.downcast_ref::<E>(),
            _ => None,
        }
    }

    /// True for [`Error::Conflict`]: retrying the whole transaction may succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}

macro_rules! aborted_from {
    ($($t:ty),*) => {$(
        /// Ends a transaction body with [`Error::Aborted`], so that `?` works on it in a
        /// [`Database::transact`](crate::Database::transact) body.
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::Aborted(Box::new(e))
            }
        }
    )*};
}

aborted_from!(
    std::str::Utf8Error,
    std::string::FromUtf8Error,
    std::num::ParseIntError,
    std::num::ParseFloatError,
    serde_json::Error
);

/// A codec failed to encode or decode.
#[derive(Debug, thiserror::Error)]
#[error("{codec} codec: {source}")]
pub struct CodecError {
    codec: String,
    #[source]
    source: BoxError,
}

impl CodecError {
    /// An error of the codec named `codec` (such as `"cbor"`), caused by `source`.
    pub fn new(codec: impl Into<String>, source: impl Into<BoxError>) -> CodecError {
        CodecError {
            codec: codec.into(),
            source: source.into(),
        }
    }

    /// The codec's name.
    pub fn codec(&self) -> &str {
        &self.codec
    }

    /// Malformed input found by one of this crate's own codecs.
    pub(crate) fn malformed(codec: impl Into<String>, what: &'static str) -> CodecError {
        CodecError::new(codec, Malformed(what))
    }
}

/// Malformed bytes, as found by a built-in codec.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Malformed(&'static str);
