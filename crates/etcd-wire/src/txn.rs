//! Transactions (`kv/txn`): compares, then the `success` or the `failure` operations.
//!
//! The proto's `oneof`s are shaped like this:
//! - [`Compare::target_union`] is an `Option<`[`TargetUnion`]`>`: on the wire exactly one of
//!   `version`, `create_revision`, `mod_revision`, `value`, `lease` (sent even when 0 or
//!   empty, as protobuf does for a set oneof member);
//! - [`RequestOp`] and [`ResponseOp`] are structs with one `Option` per member; set exactly
//!   one (`From` conversions build them).

use crate::codec;
use crate::header::ResponseHeader;
use crate::kv::{
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

crate::wire_enum! {
    /// Comparison operator of a [`Compare`] (`Compare.CompareResult`).
    pub enum CompareResult {
        /// The target equals the given value (the default).
        Equal = 0 => "EQUAL",
        /// The target is greater than the given value.
        Greater = 1 => "GREATER",
        /// The target is less than the given value.
        Less = 2 => "LESS",
        /// The target differs from the given value.
        NotEqual = 3 => "NOT_EQUAL",
    }
}

crate::wire_enum! {
    /// Field of the key a [`Compare`] inspects (`Compare.CompareTarget`).
    pub enum CompareTarget {
        /// The key's version (the default); 0 means the key does not exist.
        Version = 0 => "VERSION",
        /// The key's create revision.
        Create = 1 => "CREATE",
        /// The key's mod revision.
        Mod = 2 => "MOD",
        /// The key's value.
        Value = 3 => "VALUE",
        /// The key's lease ID.
        Lease = 4 => "LEASE",
    }
}

/// The value a [`Compare`] compares the target with (the proto's `target_union` oneof).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TargetUnion {
    /// `version`: the version of the key.
    Version(i64),
    /// `create_revision`: the creation revision of the key.
    CreateRevision(i64),
    /// `mod_revision`: the last modification revision of the key.
    ModRevision(i64),
    /// `value`: the value of the key.
    Value(Bytes),
    /// `lease`: the lease ID of the key.
    Lease(i64),
}

impl TargetUnion {
    /// The [`CompareTarget`] that goes with this value.
    pub fn target(&self) -> CompareTarget {
        match self {
            TargetUnion::Version(_) => CompareTarget::Version,
            TargetUnion::CreateRevision(_) => CompareTarget::Create,
            TargetUnion::ModRevision(_) => CompareTarget::Mod,
            TargetUnion::Value(_) => CompareTarget::Value,
            TargetUnion::Lease(_) => CompareTarget::Lease,
        }
    }
}

/// One predicate of a transaction's guard.
///
/// On the wire: `{"result":"EQUAL","target":"MOD","key":"...","mod_revision":"5"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "CompareRepr", try_from = "CompareRepr")]
pub struct Compare {
    /// The comparison operator.
    pub result: CompareResult,
    /// The field of the key to inspect; must match the kind of [`Compare::target_union`].
    pub target: CompareTarget,
    /// The key to compare.
    pub key: Bytes,
    /// Compare all keys in `[key, range_end)` (see [`RangeRequest::range_end`]).
    pub range_end: Bytes,
    /// The value to compare with; `None` compares with the zero value.
    pub target_union: Option<TargetUnion>,
}

impl Compare {
    /// A compare of `key`'s field named by `value` (its [`TargetUnion::target`]) with `value`.
    pub fn new(key: impl Into<Bytes>, result: CompareResult, value: TargetUnion) -> Compare {
        Compare {
            result,
            target: value.target(),
            key: key.into(),
            range_end: Bytes::new(),
            target_union: Some(value),
        }
    }
}

/// Wire form of [`Compare`]: one field per oneof member.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct CompareRepr {
    #[serde(skip_serializing_if = "codec::is_default")]
    result: CompareResult,
    #[serde(skip_serializing_if = "codec::is_default")]
    target: CompareTarget,
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    key: Bytes,
    #[serde(with = "opt_i64", skip_serializing_if = "Option::is_none")]
    version: Option<i64>,
    #[serde(with = "opt_i64", skip_serializing_if = "Option::is_none")]
    create_revision: Option<i64>,
    #[serde(with = "opt_i64", skip_serializing_if = "Option::is_none")]
    mod_revision: Option<i64>,
    #[serde(with = "opt_b64", skip_serializing_if = "Option::is_none")]
    value: Option<Bytes>,
    #[serde(with = "opt_i64", skip_serializing_if = "Option::is_none")]
    lease: Option<i64>,
    #[serde(with = "codec::b64", skip_serializing_if = "Bytes::is_empty")]
    range_end: Bytes,
}

impl From<Compare> for CompareRepr {
    fn from(c: Compare) -> CompareRepr {
        let mut repr = CompareRepr {
            result: c.result,
            target: c.target,
            key: c.key,
            range_end: c.range_end,
            ..CompareRepr::default()
        };
        match c.target_union {
            None => {}
            Some(TargetUnion::Version(v)) => repr.version = Some(v),
            Some(TargetUnion::CreateRevision(v)) => repr.create_revision = Some(v),
            Some(TargetUnion::ModRevision(v)) => repr.mod_revision = Some(v),
            Some(TargetUnion::Value(v)) => repr.value = Some(v),
            Some(TargetUnion::Lease(v)) => repr.lease = Some(v),
        }
        repr
    }
}

impl TryFrom<CompareRepr> for Compare {
    type Error = &'static str;

    fn try_from(r: CompareRepr) -> Result<Compare, &'static str> {
        let members = [
            r.version.map(TargetUnion::Version),
            r.create_revision.map(TargetUnion::CreateRevision),
            r.mod_revision.map(TargetUnion::ModRevision),
            r.value.map(TargetUnion::Value),
            r.lease.map(TargetUnion::Lease),
        ];
        let mut target_union = None;
        for member in members.into_iter().flatten() {
            if target_union.is_some() {
                return Err("Compare has more than one of version, create_revision, mod_revision, value, lease");
            }
            target_union = Some(member);
        }
        Ok(Compare {
            result: r.result,
            target: r.target,
            key: r.key,
            range_end: r.range_end,
            target_union,
        })
    }
}

/// A oneof `int64` member: present (even when 0) or absent.
mod opt_i64 {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => crate::codec::i64_str::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        crate::codec::i64_str::deserialize(d).map(Some)
    }
}

/// A oneof `bytes` member: present (even when empty) or absent.
mod opt_b64 {
    use bytes::Bytes;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => crate::codec::b64::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Bytes>, D::Error> {
        crate::codec::b64::deserialize(d).map(Some)
    }
}

/// One operation of a transaction: set exactly one field.
///
/// On the wire: `{"request_put":{"key":"...","value":"..."}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestOp {
    /// A range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_range: Option<RangeRequest>,
    /// A put.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_put: Option<PutRequest>,
    /// A delete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_delete_range: Option<DeleteRangeRequest>,
    /// A nested transaction (etcd 3.3+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_txn: Option<TxnRequest>,
}

impl From<RangeRequest> for RequestOp {
    fn from(r: RangeRequest) -> RequestOp {
        RequestOp {
            request_range: Some(r),
            ..RequestOp::default()
        }
    }
}

impl From<PutRequest> for RequestOp {
    fn from(r: PutRequest) -> RequestOp {
        RequestOp {
            request_put: Some(r),
            ..RequestOp::default()
        }
    }
}

impl From<DeleteRangeRequest> for RequestOp {
    fn from(r: DeleteRangeRequest) -> RequestOp {
        RequestOp {
            request_delete_range: Some(r),
            ..RequestOp::default()
        }
    }
}

impl From<TxnRequest> for RequestOp {
    fn from(r: TxnRequest) -> RequestOp {
        RequestOp {
            request_txn: Some(r),
            ..RequestOp::default()
        }
    }
}

/// The answer to one [`RequestOp`]: the field matching the request is set.
///
/// Headers inside are partial: the server fills only `revision` (and a nested
/// transaction's header is empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ResponseOp {
    /// Answer to a range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_range: Option<RangeResponse>,
    /// Answer to a put.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_put: Option<PutResponse>,
    /// Answer to a delete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_delete_range: Option<DeleteRangeResponse>,
    /// Answer to a nested transaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_txn: Option<TxnResponse>,
}

/// An atomic if/then/else (`kv/txn`): when every compare holds, apply `success`, else
/// `failure`. A key may be written only once per transaction; at most 128 operations by
/// default (`--max-txn-ops`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct TxnRequest {
    /// Predicates, all of which must hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compare: Vec<Compare>,
    /// Operations applied when all compares hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub success: Vec<RequestOp>,
    /// Operations applied otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failure: Vec<RequestOp>,
}

/// Answer to a [`TxnRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct TxnResponse {
    /// Response header.
    #[serde(skip_serializing_if = "codec::is_default")]
    pub header: ResponseHeader,
    /// The compares held (absent when false).
    #[serde(
        with = "codec::lenient_bool",
        skip_serializing_if = "codec::is_default"
    )]
    pub succeeded: bool,
    /// Answers to the operations applied, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<ResponseOp>,
}
