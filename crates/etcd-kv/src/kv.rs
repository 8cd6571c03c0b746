//! Key-value requests: range, put, delete, compact, as `#[must_use]` builders that can be
//! awaited directly or with `.send()`.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::key::{key_range_setters, IntoBytes, KeyRange, Namespace};
use crate::request::{check_key, into_future, lease_error};
use crate::types::{plural, show_list, Header, KeyValue};
use bytes::Bytes;
use etcd_wire::kv as wire;
pub use etcd_wire::kv::{SortOrder, SortTarget};

// ---------------------------------------------------------------------------------------
// Range

/// What to read, independent of a client: a key range and read options.
#[derive(Debug, Clone, Default)]
pub(crate) struct RangeSpec {
    pub(crate) key: Bytes,
    pub(crate) range: KeyRange,
    pub(crate) options: wire::RangeRequest,
}

impl RangeSpec {
    pub(crate) fn to_wire(&self, ns: &Namespace) -> Result<wire::RangeRequest> {
        check_key(&self.key, &self.range)?;
        let (key, range_end) = ns.range(&self.key, &self.range);
        Ok(wire::RangeRequest {
            key,
            range_end,
            ..self.options.clone()
        })
    }
}

/// A range request: `client.range(key)`, then options, then `.await`.
///
/// ```no_run
/// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
/// use etcd_kv::{SortOrder, SortTarget};
/// let page = client.range("users/").prefix().limit(10).sort(SortTarget::Key, SortOrder::Descend).await?;
/// for kv in page.kvs() {
///     println!("{:?} = {:?}", kv.key_str(), kv.value_str());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until awaited"]
pub struct Range<'a> {
    pub(crate) client: &'a Client,
    pub(crate) spec: RangeSpec,
}

impl<'a> Range<'a> {
    pub(crate) fn new(client: &'a Client, key: Bytes) -> Self {
        Range {
            client,
            spec: RangeSpec {
                key,
                ..RangeSpec::default()
            },
        }
    }

    key_range_setters!("Reads", spec.range);

    /// Returns at most `n` keys (0: no limit); [`RangeResponse::more`] says if more exist.
    pub fn limit(mut self, n: i64) -> Self {
        self.spec.options.limit = n;
        self
    }

    /// Reads the keys as they were at this revision (0: the current one).
    pub fn revision(mut self, revision: i64) -> Self {
        self.spec.options.revision = revision;
        self
    }

    /// Serves the read from the local member without consensus: faster, may be stale.
    pub fn serializable(mut self) -> Self {
        self.spec.options.serializable = true;
        self
    }

    /// Returns keys without values.
    pub fn keys_only(mut self) -> Self {
        self.spec.options.keys_only = true;
        self
    }

    /// Returns only the number of keys.
    pub fn count_only(mut self) -> Self {
        self.spec.options.count_only = true;
        self
    }

    /// Sorts the result.
    pub fn sort(mut self, target: SortTarget, order: SortOrder) -> Self {
        self.spec.options.sort_target = target;
        self.spec.options.sort_order = order;
        self
    }

    /// Keeps keys whose last modification is at or after this revision.
    pub fn min_mod_revision(mut self, revision: i64) -> Self {
        self.spec.options.min_mod_revision = revision;
        self
    }

    /// Keeps keys whose last modification is at or before this revision.
    pub fn max_mod_revision(mut self, revision: i64) -> Self {
        self.spec.options.max_mod_revision = revision;
        self
    }

    /// Keeps keys created at or after this revision.
    pub fn min_create_revision(mut self, revision: i64) -> Self {
        self.spec.options.min_create_revision = revision;
        self
    }

    /// Keeps keys created at or before this revision.
    pub fn max_create_revision(mut self, revision: i64) -> Self {
        self.spec.options.max_create_revision = revision;
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<RangeResponse> {
        let request = self.spec.to_wire(&self.client.namespace)?;
        let answer = match self.client.call_range(&request).await {
            Err(Error::Compacted { .. }) => {
                return Err(self
                    .client
                    .compacted_error(&request.key, request.revision)
                    .await)
            }
            other => other?,
        };
        Ok(RangeResponse::from_wire(answer, &self.client.namespace))
    }
}

into_future!(Range, RangeResponse);

/// The answer to a range request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeResponse {
    pub(crate) header: Header,
    pub(crate) kvs: Vec<KeyValue>,
    pub(crate) more: bool,
    pub(crate) count: i64,
}

impl RangeResponse {
    pub(crate) fn from_wire(r: wire::RangeResponse, ns: &Namespace) -> Self {
        RangeResponse {
            header: r.header.into(),
            kvs: r
                .kvs
                .into_iter()
                .map(|kv| KeyValue::from_wire(kv, |k| ns.strip(k)))
                .collect(),
            more: r.more,
            count: r.count,
        }
    }

    /// The key-values found.
    pub fn kvs(&self) -> &[KeyValue] {
        &self.kvs
    }

    /// Takes the key-values.
    pub fn into_kvs(self) -> Vec<KeyValue> {
        self.kvs
    }

    /// True when a limit cut the result short.
    pub fn more(&self) -> bool {
        self.more
    }

    /// How many keys are in the range (whatever the limit).
    pub fn count(&self) -> i64 {
        self.count
    }

    /// The response header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The store revision the read was served at.
    pub fn revision(&self) -> i64 {
        self.header.revision
    }
}

// ---------------------------------------------------------------------------------------
// Put

#[derive(Debug, Clone, Default)]
pub(crate) struct PutSpec {
    pub(crate) request: wire::PutRequest,
}

impl PutSpec {
    pub(crate) fn to_wire(&self, ns: &Namespace) -> Result<wire::PutRequest> {
        check_key(&self.request.key, &KeyRange::Single)?;
        Ok(wire::PutRequest {
            key: ns.key(&self.request.key),
            ..self.request.clone()
        })
    }
}

/// A put request: `client.put(key, value)`, then options, then `.await`.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until awaited"]
pub struct Put<'a> {
    pub(crate) client: &'a Client,
    pub(crate) spec: PutSpec,
}

impl<'a> Put<'a> {
    pub(crate) fn new(client: &'a Client, key: Bytes, value: Bytes) -> Self {
        Put {
            client,
            spec: PutSpec {
                request: wire::PutRequest {
                    key,
                    value,
                    ..Default::default()
                },
            },
        }
    }

    /// Attaches the key to a lease: it is deleted when the lease expires.
    pub fn lease(mut self, lease_id: i64) -> Self {
        self.spec.request.lease = lease_id;
        self
    }

    /// Returns the previous key-value in [`PutResponse::prev_kv`].
    pub fn prev_kv(mut self) -> Self {
        self.spec.request.prev_kv = true;
        self
    }

    /// Keeps the current value, changing only the lease (the key must exist).
    pub fn ignore_value(mut self) -> Self {
        self.spec.request.ignore_value = true;
        self
    }

    /// Keeps the current lease, changing only the value (the key must exist).
    pub fn ignore_lease(mut self) -> Self {
        self.spec.request.ignore_lease = true;
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<PutResponse> {
        let request = self.spec.to_wire(&self.client.namespace)?;
        let answer: wire::PutResponse = self
            .client
            .call(&request)
            .await
            .map_err(|e| lease_error(e, request.lease))?;
        self.client.saw_revision(answer.header.revision);
        Ok(PutResponse::from_wire(answer, &self.client.namespace))
    }
}

into_future!(Put, PutResponse);

/// The answer to a put.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PutResponse {
    header: Header,
    prev_kv: Option<KeyValue>,
}

impl PutResponse {
    pub(crate) fn from_wire(r: wire::PutResponse, ns: &Namespace) -> Self {
        PutResponse {
            header: r.header.into(),
            prev_kv: r.prev_kv.map(|kv| KeyValue::from_wire(kv, |k| ns.strip(k))),
        }
    }

    /// The key-value before the put, when asked for with `prev_kv()` and the key existed.
    pub fn prev_kv(&self) -> Option<&KeyValue> {
        self.prev_kv.as_ref()
    }

    /// The response header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The revision of the put.
    pub fn revision(&self) -> i64 {
        self.header.revision
    }
}

// ---------------------------------------------------------------------------------------
// Delete

#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteSpec {
    pub(crate) key: Bytes,
    pub(crate) range: KeyRange,
    pub(crate) prev_kv: bool,
}

impl DeleteSpec {
    pub(crate) fn to_wire(&self, ns: &Namespace) -> Result<wire::DeleteRangeRequest> {
        check_key(&self.key, &self.range)?;
        let (key, range_end) = ns.range(&self.key, &self.range);
        Ok(wire::DeleteRangeRequest {
            key,
            range_end,
            prev_kv: self.prev_kv,
        })
    }
}

/// A delete request: `client.delete(key)`, then options, then `.await`.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until awaited"]
pub struct Delete<'a> {
    pub(crate) client: &'a Client,
    pub(crate) spec: DeleteSpec,
}

impl<'a> Delete<'a> {
    pub(crate) fn new(client: &'a Client, key: Bytes) -> Self {
        Delete {
            client,
            spec: DeleteSpec {
                key,
                ..DeleteSpec::default()
            },
        }
    }

    key_range_setters!("Deletes", spec.range);

    /// Returns the deleted key-values in [`DeleteResponse::prev_kvs`].
    pub fn prev_kv(mut self) -> Self {
        self.spec.prev_kv = true;
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<DeleteResponse> {
        let request = self.spec.to_wire(&self.client.namespace)?;
        let answer: wire::DeleteRangeResponse = self.client.call(&request).await?;
        self.client.saw_revision(answer.header.revision);
        Ok(DeleteResponse::from_wire(answer, &self.client.namespace))
    }
}

into_future!(Delete, DeleteResponse);

/// The answer to a delete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteResponse {
    header: Header,
    deleted: i64,
    prev_kvs: Vec<KeyValue>,
}

impl DeleteResponse {
    pub(crate) fn from_wire(r: wire::DeleteRangeResponse, ns: &Namespace) -> Self {
        DeleteResponse {
            header: r.header.into(),
            deleted: r.deleted,
            prev_kvs: r
                .prev_kvs
                .into_iter()
                .map(|kv| KeyValue::from_wire(kv, |k| ns.strip(k)))
                .collect(),
        }
    }

    /// How many keys were deleted.
    pub fn deleted(&self) -> i64 {
        self.deleted
    }

    /// The deleted key-values, when asked for with `prev_kv()`.
    pub fn prev_kvs(&self) -> &[KeyValue] {
        &self.prev_kvs
    }

    /// The response header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The store revision after the delete.
    pub fn revision(&self) -> i64 {
        self.header.revision
    }
}

// ---------------------------------------------------------------------------------------
// Compact

/// A compaction: `client.compact(revision)`, optionally `.physical()`, then `.await`.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until awaited"]
pub struct Compact<'a> {
    client: &'a Client,
    request: wire::CompactionRequest,
}

impl<'a> Compact<'a> {
    pub(crate) fn new(client: &'a Client, revision: i64) -> Self {
        Compact {
            client,
            request: wire::CompactionRequest {
                revision,
                physical: false,
            },
        }
    }

    /// Waits until the compaction is physically applied to the backend.
    pub fn physical(mut self) -> Self {
        self.request.physical = true;
        self
    }

    /// Sends the request. Compacting is idempotent: a repeat of a done compaction, or one
    /// at or below the current compact revision, fails with [`Error::Compacted`] naming the
    /// store's actual compact revision.
    pub async fn send(self) -> Result<Header> {
        let answer: wire::CompactionResponse = match self.client.call(&self.request).await {
            // The store is compacted at `revision` or later: a watch from revision 1 is
            // cancelled naming where. (Compacted at 1 itself, such a watch would simply stay
            // open: for a compaction at 1 the requested revision is the answer, a lower bound.)
            Err(Error::Compacted { .. }) if self.request.revision > 1 => {
                let key = self.client.namespace.key(&Bytes::from_static(b"\0"));
                return Err(match self.client.compacted_error(&key, 1).await {
                    Error::Compacted {
                        compact_revision: 0,
                    } => Error::Compacted {
                        compact_revision: self.request.revision,
                    },
                    other => other,
                });
            }
            Err(Error::Compacted { .. }) => {
                return Err(Error::Compacted {
                    compact_revision: self.request.revision,
                })
            }
            other => other?,
        };
        Ok(answer.header.into())
    }
}

into_future!(Compact, Header);

// ---------------------------------------------------------------------------------------
// Client methods

impl Client {
    /// The key-value of `key`, if it exists.
    pub async fn get(&self, key: impl IntoBytes) -> Result<Option<KeyValue>> {
        Ok(self.range(key).send().await?.kvs.into_iter().next())
    }

    /// Every key-value under `prefix`, in key order, in one call (etcetra's `get_prefix`).
    ///
    /// Read as one consistent snapshot: the first page pins a revision and the next pages
    /// are read at it, [`DEFAULT_PAGE_SIZE`](crate::DEFAULT_PAGE_SIZE) keys per request. The
    /// whole result is held in memory: for large prefixes, stream with
    /// [`scan`](Client::scan) instead. An empty prefix means every key.
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// for kv in client.get_prefix("config/").await? {
    ///     println!("{kv}");
    /// }
    /// # Ok(()) }
    /// ```
    #[doc(alias = "get_all")]
    #[doc(alias = "list")]
    pub async fn get_prefix(&self, prefix: impl IntoBytes) -> Result<Vec<KeyValue>> {
        use futures_util::TryStreamExt;
        self.scan(prefix).prefix().into_stream().try_collect().await
    }

    /// A range request starting at `key`; options on the returned builder.
    pub fn range(&self, key: impl IntoBytes) -> Range<'_> {
        Range::new(self, key.into_bytes())
    }

    /// A put of `value` at `key`; options on the returned builder.
    #[doc(alias = "set")]
    pub fn put(&self, key: impl IntoBytes, value: impl IntoBytes) -> Put<'_> {
        Put::new(self, key.into_bytes(), value.into_bytes())
    }

    /// A delete of `key`; `.prefix()`, `.end()` and `.from_key()` widen it.
    pub fn delete(&self, key: impl IntoBytes) -> Delete<'_> {
        Delete::new(self, key.into_bytes())
    }

    /// Compacts the key-value history up to `revision`.
    pub fn compact(&self, revision: i64) -> Compact<'_> {
        Compact::new(self, revision)
    }
}

// ---------------------------------------------------------------------------------------
// How responses show (`Display`)

/// Shows the key-values found (`a = 1, b = 2`, each as [`KeyValue`] shows it), `(none)`
/// when there are none, and how many there are in all when a limit cut them short:
/// `a = 1 (1 of 3 keys)`. A count-only read shows `(3 keys)`.
impl std::fmt::Display for RangeResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kvs = self.kvs();
        let count = usize::try_from(self.count()).unwrap_or(0);
        if kvs.is_empty() && count > 0 {
            return write!(f, "({count} {})", plural(count, "key", "keys"));
        }
        show_list(f, kvs, "(none)")?;
        if self.more() || count > kvs.len() {
            write!(
                f,
                " ({} of {count} {})",
                kvs.len(),
                plural(count, "key", "keys")
            )?;
        }
        Ok(())
    }
}

/// Shows `put at revision 7`, and the previous key-value when it was asked for:
/// `put at revision 7, was config/mode = active`.
impl std::fmt::Display for PutResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "put at revision {}", self.revision())?;
        if let Some(prev) = self.prev_kv() {
            write!(f, ", was {prev}")?;
        }
        Ok(())
    }
}

/// Shows `deleted 2 keys at revision 8`, and the deleted key-values when they were asked
/// for: `deleted 1 key at revision 8: config/mode = active`.
impl std::fmt::Display for DeleteResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.deleted();
        let noun = plural(usize::try_from(n).unwrap_or(0), "key", "keys");
        write!(f, "deleted {n} {noun} at revision {}", self.revision())?;
        if !self.prev_kvs().is_empty() {
            f.write_str(": ")?;
            show_list(f, self.prev_kvs(), "")?;
        }
        Ok(())
    }
}
