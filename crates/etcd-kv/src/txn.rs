//! Transactions: compares, then the success or the failure branch, applied atomically.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::key::{IntoBytes, KeyRange, Namespace};
use crate::kv::{
    Delete, DeleteResponse, DeleteSpec, Put, PutResponse, PutSpec, Range, RangeResponse, RangeSpec,
};
use crate::request::{check_key, into_future, lease_error};
use crate::types::{Header, KeyValue};
use bytes::Bytes;
use etcd_wire::txn::{self as wire, CompareResult, TargetUnion};

/// A condition of a transaction, on one key or a range of keys.
///
/// ```
/// use etcd_kv::Compare;
/// let conditions = [
///     Compare::value("config/mode").eq("active"),
///     Compare::version("config/lock").eq(0),          // the key does not exist
///     Compare::mod_revision("config/epoch").lt(42),
/// ];
/// # let _ = conditions;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Compare {
    key: Bytes,
    range: KeyRange,
    result: CompareResult,
    value: TargetUnion,
}

/// The first half of a [`Compare`]: what is compared, waiting for the operator.
#[derive(Debug, Clone)]
#[must_use = "finish the comparison with eq, ne, lt or gt"]
pub struct CompareBuilder<T> {
    key: Bytes,
    range: KeyRange,
    target: fn(T) -> TargetUnion,
}

impl Compare {
    /// Compares the value of `key`.
    pub fn value(key: impl IntoBytes) -> CompareBuilder<Bytes> {
        CompareBuilder::new(key, TargetUnion::Value)
    }

    /// Compares the version of `key` (0: the key does not exist).
    pub fn version(key: impl IntoBytes) -> CompareBuilder<i64> {
        CompareBuilder::new(key, TargetUnion::Version)
    }

    /// Compares the create revision of `key` (0: the key does not exist).
    pub fn create_revision(key: impl IntoBytes) -> CompareBuilder<i64> {
        CompareBuilder::new(key, TargetUnion::CreateRevision)
    }

    /// Compares the revision of the last change to `key`.
    pub fn mod_revision(key: impl IntoBytes) -> CompareBuilder<i64> {
        CompareBuilder::new(key, TargetUnion::ModRevision)
    }

    /// Compares the lease attached to `key` (0: none).
    pub fn lease(key: impl IntoBytes) -> CompareBuilder<i64> {
        CompareBuilder::new(key, TargetUnion::Lease)
    }

    /// The bytes of keys and values this compare carries in `ns`, as the client's
    /// `max_request_bytes` check counts them.
    pub(crate) fn payload_len(&self, ns: &Namespace) -> Result<usize> {
        use etcd_wire::Rpc;
        let request = wire::TxnRequest {
            compare: vec![self.to_wire(ns)?],
            ..wire::TxnRequest::default()
        };
        Ok(request.payload_len())
    }

    pub(crate) fn to_wire(&self, ns: &Namespace) -> Result<wire::Compare> {
        check_key(&self.key, &self.range)?;
        let (key, range_end) = ns.range(&self.key, &self.range);
        Ok(wire::Compare {
            result: self.result,
            target: self.value.target(),
            key,
            range_end,
            target_union: Some(self.value.clone()),
        })
    }
}

impl<T> CompareBuilder<T> {
    fn new(key: impl IntoBytes, target: fn(T) -> TargetUnion) -> Self {
        CompareBuilder {
            key: key.into_bytes(),
            range: KeyRange::Single,
            target,
        }
    }

    /// Applies the comparison to every key starting with the key (etcd 3.3+): it holds
    /// when it holds for each of them.
    pub fn prefix(mut self) -> Self {
        self.range = KeyRange::Prefix;
        self
    }

    /// Applies the comparison to every key in `[key, end)` (etcd 3.3+).
    pub fn end(mut self, end: impl IntoBytes) -> Self {
        self.range = KeyRange::End(end.into_bytes());
        self
    }

    fn finish(self, result: CompareResult, value: T) -> Compare {
        Compare {
            key: self.key,
            range: self.range,
            result,
            value: (self.target)(value),
        }
    }
}

macro_rules! operators {
    ($t:ty, $arg:ty, $conv:expr) => {
        impl CompareBuilder<$t> {
            /// Holds when the target equals `value`.
            pub fn eq(self, value: $arg) -> Compare {
                self.finish(CompareResult::Equal, $conv(value))
            }
            /// Holds when the target differs from `value`.
            pub fn ne(self, value: $arg) -> Compare {
                self.finish(CompareResult::NotEqual, $conv(value))
            }
            /// Holds when the target is less than `value`.
            pub fn lt(self, value: $arg) -> Compare {
                self.finish(CompareResult::Less, $conv(value))
            }
            /// Holds when the target is greater than `value`.
            pub fn gt(self, value: $arg) -> Compare {
                self.finish(CompareResult::Greater, $conv(value))
            }
        }
    };
}

operators!(i64, i64, |v| v);
operators!(Bytes, impl IntoBytes, IntoBytes::into_bytes);

/// One operation of a transaction branch.
///
/// Build simple ones with [`TxnOp::get`], [`TxnOp::put`], [`TxnOp::delete`]; any request
/// builder with its options converts too: `client.range("a/").prefix().limit(5).into()`.
/// Keys get the namespace of the client that runs the transaction.
#[derive(Debug, Clone)]
pub struct TxnOp(Op);

#[derive(Debug, Clone)]
enum Op {
    Range(RangeSpec),
    Put(PutSpec),
    Delete(DeleteSpec),
    Txn(Box<TxnSpec>),
}

impl TxnOp {
    /// Reads one key.
    pub fn get(key: impl IntoBytes) -> TxnOp {
        TxnOp(Op::Range(RangeSpec {
            key: key.into_bytes(),
            ..RangeSpec::default()
        }))
    }

    /// Reads every key starting with `prefix`.
    pub fn get_prefix(prefix: impl IntoBytes) -> TxnOp {
        TxnOp(Op::Range(RangeSpec {
            key: prefix.into_bytes(),
            range: KeyRange::Prefix,
            ..RangeSpec::default()
        }))
    }

    /// Writes one key.
    pub fn put(key: impl IntoBytes, value: impl IntoBytes) -> TxnOp {
        let mut spec = PutSpec::default();
        spec.request.key = key.into_bytes();
        spec.request.value = value.into_bytes();
        TxnOp(Op::Put(spec))
    }

    /// Writes one key attached to a lease.
    pub fn put_with_lease(key: impl IntoBytes, value: impl IntoBytes, lease_id: i64) -> TxnOp {
        let mut spec = PutSpec::default();
        spec.request.key = key.into_bytes();
        spec.request.value = value.into_bytes();
        spec.request.lease = lease_id;
        TxnOp(Op::Put(spec))
    }

    /// Deletes one key.
    pub fn delete(key: impl IntoBytes) -> TxnOp {
        TxnOp(Op::Delete(DeleteSpec {
            key: key.into_bytes(),
            ..DeleteSpec::default()
        }))
    }

    /// Deletes every key starting with `prefix`.
    pub fn delete_prefix(prefix: impl IntoBytes) -> TxnOp {
        TxnOp(Op::Delete(DeleteSpec {
            key: prefix.into_bytes(),
            range: KeyRange::Prefix,
            ..DeleteSpec::default()
        }))
    }

    /// A nested transaction (etcd 3.3+).
    pub fn txn(txn: Txn<'_>) -> TxnOp {
        TxnOp(Op::Txn(Box::new(txn.spec)))
    }

    /// What a [`Batch`](crate::Batch) needs to know of this operation: the key of a
    /// one-key write, a write of a key range, or neither.
    pub(crate) fn write_target(&self) -> WriteTarget<'_> {
        match &self.0 {
            Op::Put(p) => WriteTarget::Key(&p.request.key),
            Op::Delete(d) if d.range == KeyRange::Single => WriteTarget::Key(&d.key),
            Op::Delete(_) => WriteTarget::Range,
            Op::Range(_) | Op::Txn(_) => WriteTarget::Other,
        }
    }

    /// The bytes of keys and values this operation carries in `ns`, as the client's
    /// `max_request_bytes` check counts them; its wire form's error, if the op is invalid.
    pub(crate) fn payload_len(&self, ns: &Namespace) -> Result<usize> {
        use etcd_wire::Rpc;
        let request = wire::TxnRequest {
            success: vec![self.to_wire(ns)?],
            ..wire::TxnRequest::default()
        };
        Ok(request.payload_len())
    }

    fn to_wire(&self, ns: &Namespace) -> Result<wire::RequestOp> {
        Ok(match &self.0 {
            Op::Range(s) => s.to_wire(ns)?.into(),
            Op::Put(s) => s.to_wire(ns)?.into(),
            Op::Delete(s) => s.to_wire(ns)?.into(),
            Op::Txn(s) => s.to_wire(ns)?.into(),
        })
    }
}

impl From<Range<'_>> for TxnOp {
    fn from(r: Range<'_>) -> TxnOp {
        TxnOp(Op::Range(r.spec))
    }
}

impl From<Put<'_>> for TxnOp {
    fn from(p: Put<'_>) -> TxnOp {
        TxnOp(Op::Put(p.spec))
    }
}

impl From<Delete<'_>> for TxnOp {
    fn from(d: Delete<'_>) -> TxnOp {
        TxnOp(Op::Delete(d.spec))
    }
}

impl From<Txn<'_>> for TxnOp {
    fn from(t: Txn<'_>) -> TxnOp {
        TxnOp::txn(t)
    }
}

/// See [`TxnOp::write_target`].
pub(crate) enum WriteTarget<'a> {
    /// A put or delete of this one key.
    Key(&'a Bytes),
    /// A delete of a key range.
    Range,
    /// A read or a nested transaction.
    Other,
}

#[derive(Debug, Clone, Default)]
struct TxnSpec {
    compare: Vec<Compare>,
    success: Vec<TxnOp>,
    failure: Vec<TxnOp>,
}

impl TxnSpec {
    fn to_wire(&self, ns: &Namespace) -> Result<wire::TxnRequest> {
        Ok(wire::TxnRequest {
            compare: self
                .compare
                .iter()
                .map(|c| c.to_wire(ns))
                .collect::<Result<_>>()?,
            success: self
                .success
                .iter()
                .map(|op| op.to_wire(ns))
                .collect::<Result<_>>()?,
            failure: self
                .failure
                .iter()
                .map(|op| op.to_wire(ns))
                .collect::<Result<_>>()?,
        })
    }

    /// etcd limits each list of a txn (and of each nested txn) to `--max-txn-ops`.
    fn check_limits(&self, max_ops: usize) -> Result<()> {
        for (what, n) in [
            ("compares", self.compare.len()),
            ("success operations", self.success.len()),
            ("failure operations", self.failure.len()),
        ] {
            if n > max_ops {
                return Err(Error::invalid(format!(
                    "transaction has {n} {what}; etcd allows at most {max_ops} (--max-txn-ops); \
                     split it or raise the server's limit and the client's max_txn_ops"
                )));
            }
        }
        for op in self.success.iter().chain(&self.failure) {
            if let Op::Txn(inner) = &op.0 {
                inner.check_limits(max_ops)?;
            }
        }
        Ok(())
    }
}

/// A transaction: `client.txn().when(compares).and_then(ops).or_else(ops).await`.
///
/// etcd applies it atomically: the compares are evaluated, then every operation of one
/// branch is applied at one new revision, or nothing is.
///
/// ```no_run
/// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
/// use etcd_kv::{Compare, TxnOp};
/// let result = client
///     .txn()
///     .when([Compare::value("balance").eq("100")])
///     .and_then([TxnOp::put("balance", "50"), TxnOp::put("log/1", "withdrew 50")])
///     .or_else([TxnOp::get("balance")])
///     .await?;
/// if !result.succeeded() {
///     let current = result.responses()[0].as_range().unwrap();
///     println!("balance changed meanwhile: {:?}", current.kvs()[0].value_str());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a transaction does nothing until awaited"]
pub struct Txn<'a> {
    client: &'a Client,
    spec: TxnSpec,
}

impl<'a> Txn<'a> {
    /// Adds conditions; all must hold for the success branch to run.
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.spec.compare.extend(compares);
        self
    }

    /// Adds operations run when every condition holds.
    pub fn and_then(mut self, ops: impl IntoIterator<Item = TxnOp>) -> Self {
        self.spec.success.extend(ops);
        self
    }

    /// Adds operations run when a condition fails.
    pub fn or_else(mut self, ops: impl IntoIterator<Item = TxnOp>) -> Self {
        self.spec.failure.extend(ops);
        self
    }

    /// Sends the transaction. A transaction with only reads is retried like a read;
    /// one with writes is never sent twice.
    pub async fn send(self) -> Result<TxnResponse> {
        self.spec
            .check_limits(self.client.inner.limits.max_txn_ops)?;
        let ns = &self.client.namespace;
        let request = self.spec.to_wire(ns)?;
        let answer: wire::TxnResponse = self
            .client
            .call(&request)
            .await
            .map_err(|e| lease_error(e, self.spec.first_lease()))?;
        self.client.saw_revision(answer.header.revision);
        TxnResponse::from_wire(answer, ns)
    }
}

impl TxnSpec {
    /// The first lease a put of the transaction names (0: none); the server's "lease not
    /// found" does not say which one it means.
    fn first_lease(&self) -> i64 {
        self.success
            .iter()
            .chain(&self.failure)
            .map(|op| match &op.0 {
                Op::Put(p) => p.request.lease,
                Op::Txn(t) => t.first_lease(),
                Op::Range(_) | Op::Delete(_) => 0,
            })
            .find(|&lease| lease != 0)
            .unwrap_or(0)
    }
}

into_future!(Txn, TxnResponse);

/// The answer to a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnResponse {
    header: Header,
    succeeded: bool,
    responses: Vec<TxnOpResponse>,
}

/// The answer to one operation of the branch that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnOpResponse {
    /// A read's answer.
    Range(RangeResponse),
    /// A put's answer.
    Put(PutResponse),
    /// A delete's answer.
    Delete(DeleteResponse),
    /// A nested transaction's answer.
    Txn(TxnResponse),
}

impl TxnOpResponse {
    /// The read's answer, if this was a read.
    pub fn as_range(&self) -> Option<&RangeResponse> {
        match self {
            TxnOpResponse::Range(r) => Some(r),
            _ => None,
        }
    }

    /// The put's answer, if this was a put.
    pub fn as_put(&self) -> Option<&PutResponse> {
        match self {
            TxnOpResponse::Put(r) => Some(r),
            _ => None,
        }
    }

    /// The delete's answer, if this was a delete.
    pub fn as_delete(&self) -> Option<&DeleteResponse> {
        match self {
            TxnOpResponse::Delete(r) => Some(r),
            _ => None,
        }
    }

    /// The nested transaction's answer, if this was one.
    pub fn as_txn(&self) -> Option<&TxnResponse> {
        match self {
            TxnOpResponse::Txn(r) => Some(r),
            _ => None,
        }
    }
}

impl TxnResponse {
    fn from_wire(r: wire::TxnResponse, ns: &Namespace) -> Result<Self> {
        let responses = r
            .responses
            .into_iter()
            .map(|op| {
                Ok(match op {
                    wire::ResponseOp {
                        response_range: Some(r),
                        ..
                    } => TxnOpResponse::Range(RangeResponse::from_wire(r, ns)),
                    wire::ResponseOp {
                        response_put: Some(r),
                        ..
                    } => TxnOpResponse::Put(PutResponse::from_wire(r, ns)),
                    wire::ResponseOp {
                        response_delete_range: Some(r),
                        ..
                    } => TxnOpResponse::Delete(DeleteResponse::from_wire(r, ns)),
                    wire::ResponseOp {
                        response_txn: Some(r),
                        ..
                    } => TxnOpResponse::Txn(TxnResponse::from_wire(r, ns)?),
                    // The gateway omits empty messages: an empty delete or put answer
                    // carries no field at all and cannot be told apart.
                    _ => {
                        return Err(Error::Protocol(
                            "transaction answer has an operation response of no known kind".into(),
                        ))
                    }
                })
            })
            .collect::<Result<_>>()?;
        Ok(TxnResponse {
            header: r.header.into(),
            succeeded: r.succeeded,
            responses,
        })
    }

    /// True when every compare held and the success branch ran.
    pub fn succeeded(&self) -> bool {
        self.succeeded
    }

    /// The answers of the branch that ran, in order.
    pub fn responses(&self) -> &[TxnOpResponse] {
        &self.responses
    }

    /// The value each operation of the branch that ran read, in order, in one call (as
    /// etcetra's `txn` returns them): for a read, the value of its first key (`None`
    /// when it matched nothing); `None` for a put, a delete or a nested transaction.
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// use etcd_kv::TxnOp;
    /// let answer = client
    ///     .txn()
    ///     .and_then([TxnOp::put("a", "1"), TxnOp::get("a"), TxnOp::get("missing")])
    ///     .await?;
    /// assert_eq!(answer.values(), [None, Some(&b"1"[..]), None]);
    /// # Ok(()) }
    /// ```
    pub fn values(&self) -> Vec<Option<&[u8]>> {
        self.responses
            .iter()
            .map(|r| {
                r.as_range()
                    .and_then(|r| r.kvs().first())
                    .map(KeyValue::value)
            })
            .collect()
    }

    /// [`TxnResponse::values`] as text: for each operation of the branch that ran, the
    /// value its read found, as UTF-8 (`None` for a read that matched nothing, a put, a
    /// delete, a nested transaction); an error if a value is not UTF-8 (`?` works on it in
    /// this crate's lock bodies). Prints as etcetra's `txn` answer reads.
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// use etcd_kv::TxnOp;
    /// let answer = client.txn().and_then([TxnOp::get("a"), TxnOp::get("missing")]).await?;
    /// println!("{:?}", answer.values_str()?); // [Some("1"), None]
    /// println!("{answer}"); // succeeded at revision 7: [a = 1; (none)]
    /// # Ok(()) }
    /// ```
    pub fn values_str(&self) -> Result<Vec<Option<&str>>, std::str::Utf8Error> {
        self.values()
            .into_iter()
            .map(|v| v.map(std::str::from_utf8).transpose())
            .collect()
    }

    /// Every key-value the reads of the branch that ran returned, in order (all the keys
    /// of a prefix read included).
    pub fn kvs(&self) -> impl Iterator<Item = &KeyValue> {
        self.responses
            .iter()
            .filter_map(TxnOpResponse::as_range)
            .flat_map(RangeResponse::kvs)
    }

    /// Takes the answers.
    pub fn into_responses(self) -> Vec<TxnOpResponse> {
        self.responses
    }

    /// The response header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The store revision after the transaction.
    pub fn revision(&self) -> i64 {
        self.header.revision
    }

    /// This answer of a nested transaction with the header of the one it ran in, when
    /// etcd left its own empty.
    pub(crate) fn nested_in(mut self, outer: &Header) -> TxnResponse {
        if self.header.revision == 0 {
            self.header = *outer;
        }
        self
    }
}

/// Shows the answer as [`RangeResponse`], [`PutResponse`], [`DeleteResponse`] or
/// [`TxnResponse`] shows it.
impl std::fmt::Display for TxnOpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxnOpResponse::Range(r) => r.fmt(f),
            TxnOpResponse::Put(r) => r.fmt(f),
            TxnOpResponse::Delete(r) => r.fmt(f),
            TxnOpResponse::Txn(r) => r.fmt(f),
        }
    }
}

/// Shows which branch ran, the revision and each operation's answer in order:
/// `succeeded at revision 9: [put at revision 9; config/mode = draining; (none)]` (a read
/// shows its key-values, values as text or escaped bytes), `failed at revision 9: []`.
impl std::fmt::Display for TxnResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let branch = if self.succeeded {
            "succeeded"
        } else {
            "failed"
        };
        write!(f, "{branch} at revision {}: [", self.revision())?;
        for (i, r) in self.responses.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            r.fmt(f)?;
        }
        f.write_str("]")
    }
}

impl Client {
    /// A transaction builder.
    pub fn txn(&self) -> Txn<'_> {
        Txn {
            client: self,
            spec: TxnSpec::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcd_wire::header::{KeyValue as WireKv, ResponseHeader};
    use etcd_wire::kv as wkv;

    fn kv(key: &[u8], value: &[u8], rev: i64) -> WireKv {
        WireKv {
            key: Bytes::copy_from_slice(key),
            value: Bytes::copy_from_slice(value),
            mod_revision: rev,
            ..WireKv::default()
        }
    }

    fn header(revision: i64) -> ResponseHeader {
        ResponseHeader {
            revision,
            member_id: 0xab,
            raft_term: 2,
            ..ResponseHeader::default()
        }
    }

    fn range(kvs: Vec<WireKv>, count: i64, more: bool) -> wire::ResponseOp {
        wire::ResponseOp {
            response_range: Some(wkv::RangeResponse {
                header: header(9),
                kvs,
                more,
                count,
            }),
            ..wire::ResponseOp::default()
        }
    }

    fn answer(succeeded: bool, responses: Vec<wire::ResponseOp>) -> TxnResponse {
        let r = wire::TxnResponse {
            header: header(9),
            succeeded,
            responses,
        };
        TxnResponse::from_wire(r, &Namespace::default()).unwrap()
    }

    #[test]
    fn answers_print_as_text_and_binary_bytes_escaped() {
        let put = wire::ResponseOp {
            response_put: Some(wkv::PutResponse {
                header: header(9),
                prev_kv: Some(kv(b"mode", b"active", 4)),
            }),
            ..wire::ResponseOp::default()
        };
        let delete = wire::ResponseOp {
            response_delete_range: Some(wkv::DeleteRangeResponse {
                header: header(9),
                deleted: 1,
                prev_kvs: vec![kv(b"gone", b"\xff\x00", 3)],
            }),
            ..wire::ResponseOp::default()
        };
        let a = answer(
            true,
            vec![
                put,
                range(vec![kv(b"successkey", b"asdf", 5)], 1, false),
                range(vec![], 0, false),
                range(vec![kv(b"bin", b"\xff\xfe", 6)], 3, true),
                range(vec![], 2, false),
                delete,
            ],
        );
        assert_eq!(
            a.to_string(),
            "succeeded at revision 9: [put at revision 9, was mode = active; \
             successkey = asdf; (none); bin = b\"\\xff\\xfe\" (1 of 3 keys); (2 keys); \
             deleted 1 key at revision 9: gone = b\"\\xff\\0\"]"
        );
        // values() shows bytes; values_str() shows text, and refuses what is not UTF-8.
        assert_eq!(format!("{:?}", a.values()[1]), "Some([97, 115, 100, 102])");
        assert!(a.values_str().is_err());
        let a = answer(
            false,
            vec![range(vec![kv(b"failurekey", b"asdf", 5)], 1, false)],
        );
        assert_eq!(format!("{:?}", a.values_str().unwrap()), "[Some(\"asdf\")]");
        assert_eq!(a.to_string(), "failed at revision 9: [failurekey = asdf]");
        assert_eq!(
            a.header().to_string(),
            "revision 9 (member ab, raft term 2)"
        );
        assert_eq!(
            answer(true, vec![]).to_string(),
            "succeeded at revision 9: []"
        );
        // A nested transaction prints inside its parent.
        let nested = wire::ResponseOp {
            response_txn: Some(wire::TxnResponse {
                header: header(9),
                succeeded: false,
                responses: vec![range(vec![], 0, false)],
            }),
            ..wire::ResponseOp::default()
        };
        assert_eq!(
            answer(true, vec![nested]).to_string(),
            "succeeded at revision 9: [failed at revision 9: [(none)]]"
        );
    }
}
