//! The untyped scan of a key range in a transaction, under a table's typed [`Rows`] and
//! an index's lookups: the snapshot's pages (etcd-kv's `Pager` over the transaction's
//! reads) merged with the transaction's buffered writes, each row read recorded for the
//! commit's checks.
//!
//! [`Rows`]: crate::Rows

use crate::error::{Error, Result};
use crate::txn::{RangeReq, TxnCore};
use bytes::Bytes;
use etcd_kv::{BoxFuture, KeyValue, PageRequest, PageSource, Pager, RangeResponse};
use futures_core::Stream;
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// Rows fetched per request by a scan, unless [`Rows::page_size`](crate::Rows::page_size) says otherwise.
pub const DEFAULT_PAGE_SIZE: i64 = 500;

/// The smallest key after `key`.
pub(crate) fn successor(key: Bytes) -> Bytes {
    let mut next = key.to_vec();
    next.push(0);
    next.into()
}

/// One raw row of a scan.
#[derive(Debug)]
pub(crate) struct RawRow {
    pub(crate) key: Bytes,
    pub(crate) value: Bytes,
}

/// The untyped scan under [`Rows`] (also used by index lookups): pages from the snapshot,
/// merged with buffered writes, reads recorded.
pub(crate) struct RawRows<'t> {
    core: &'t TxnCore,
    start: Bytes,
    /// Exclusive; `"\0"` means no end.
    end: Bytes,
    pub(crate) reverse: bool,
    pub(crate) keys_only: bool,
    pub(crate) limit: Option<u64>,
    pub(crate) page_size: i64,
    error: Option<Error>,
    started: bool,
    done: bool,
    /// The snapshot's pages: etcd-kv's one paginator over the transaction's reads; `None`
    /// once it has returned its last page (or while a page is in flight).
    pager: Option<Pager<TxnPages<'t>>>,
    page: VecDeque<KeyValue>,
    buffered: VecDeque<(Bytes, Option<Bytes>)>,
    pending: Option<BoxFuture<'t, NextPage<'t>>>,
    yielded: u64,
    range_id: Option<usize>,
}

impl fmt::Debug for RawRows<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRows")
            .field("start", &self.start)
            .field("end", &self.end)
            .field("reverse", &self.reverse)
            .field("yielded", &self.yielded)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// A page of the snapshot, with the pager it came from.
type NextPage<'t> = (Pager<TxnPages<'t>>, Result<Option<Vec<KeyValue>>>);

/// A transaction's reads as pages: each read pins (or reads at) the transaction's revision.
#[derive(Debug)]
pub(crate) struct TxnPages<'t>(&'t TxnCore);

impl PageSource for TxnPages<'_> {
    type Error = Error;

    fn fetch(&self, request: PageRequest) -> BoxFuture<'_, Result<RangeResponse>> {
        let req = RangeReq {
            key: request.key,
            end: Some(request.end),
            limit: request.limit,
            reverse: request.descending,
            keys_only: request.keys_only,
            count_only: false,
        };
        let core = self.0;
        Box::pin(async move { core.read(&req).await })
    }

    fn is_too_large(error: &Error) -> bool {
        matches!(error, Error::Kv(e) if e.is_response_too_large())
    }
}

/// Orders two keys in scan direction.
fn scan_order(a: &[u8], b: &[u8], reverse: bool) -> Ordering {
    if reverse {
        b.cmp(a)
    } else {
        a.cmp(b)
    }
}

impl<'t> RawRows<'t> {
    pub(crate) fn new(core: &'t TxnCore, start: Bytes, end: Bytes, error: Option<Error>) -> Self {
        RawRows {
            core,
            pager: None,
            start,
            end,
            reverse: false,
            keys_only: false,
            limit: None,
            page_size: DEFAULT_PAGE_SIZE,
            error,
            started: false,
            done: false,
            page: VecDeque::new(),
            buffered: VecDeque::new(),
            pending: None,
            yielded: 0,
            range_id: None,
        }
    }

    /// An empty range (start at or past end) has nothing, not even a request to make.
    fn is_empty_range(&self) -> bool {
        self.end.as_ref() != b"\0" && self.start >= self.end
    }

    fn start(&mut self) {
        self.started = true;
        if self.is_empty_range() {
            self.done = true;
            return;
        }
        let mut pager = Pager::new(TxnPages(self.core), self.start.clone(), self.end.clone())
            .page_size(self.page_size);
        if self.reverse {
            pager = pager.descending();
        }
        if self.keys_only {
            pager = pager.keys_only();
        }
        self.pager = Some(pager);
        self.buffered = self
            .core
            .buffered_range(&self.start, &self.end, self.reverse)
            .into();
        self.range_id = self.core.begin_range();
    }

    /// Records the range as consumed up to and including `key`.
    fn cover_to(&self, key: &Bytes) {
        if let Some(id) = self.range_id {
            if self.reverse {
                self.core.cover(id, key.clone(), self.end.clone());
            } else {
                self.core
                    .cover(id, self.start.clone(), successor(key.clone()));
            }
        }
    }

    fn cover_all(&self) {
        if let Some(id) = self.range_id {
            self.core.cover(id, self.start.clone(), self.end.clone());
        }
    }

    /// The next page of the snapshot, fetching no more than the limit still needs.
    fn page_request(&mut self, mut pager: Pager<TxnPages<'t>>) -> BoxFuture<'t, NextPage<'t>> {
        let remaining = self
            .limit
            .map(|l| l.saturating_sub(self.yielded) + self.buffered.len() as u64);
        let limit = match remaining {
            Some(r) => self
                .page_size
                .min(i64::try_from(r).unwrap_or(i64::MAX))
                .max(1),
            None => self.page_size,
        };
        pager.set_page_size(limit);
        Box::pin(async move {
            let page = pager.next_page().await;
            (pager, page)
        })
    }

    /// Counts what the stream would return.
    pub(crate) async fn count(&mut self) -> Result<u64> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let no_writes = self
            .core
            .buffered_range(&self.start, &self.end, false)
            .is_empty();
        if !self.core.is_write() && no_writes && self.limit.is_none() {
            if self.is_empty_range() {
                return Ok(0);
            }
            let response = self
                .core
                .read(&RangeReq {
                    key: self.start.clone(),
                    end: Some(self.end.clone()),
                    count_only: true,
                    ..RangeReq::default()
                })
                .await?;
            return Ok(u64::try_from(response.count()).unwrap_or(0));
        }
        self.keys_only = true;
        let mut n = 0;
        while let Some(row) = std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await {
            row?;
            n += 1;
        }
        Ok(n)
    }
}

impl Stream for RawRows<'_> {
    type Item = Result<RawRow>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(e) = this.error.take() {
            this.done = true;
            return Poll::Ready(Some(Err(e)));
        }
        if !this.started {
            this.start();
        }
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if this.limit.is_some_and(|l| this.yielded >= l) {
                this.done = true;
                return Poll::Ready(None);
            }
            if this.page.is_empty() && (this.pager.is_some() || this.pending.is_some()) {
                let pending = match &mut this.pending {
                    Some(p) => p,
                    None => {
                        let Some(pager) = this.pager.take() else {
                            continue;
                        };
                        let request = this.page_request(pager);
                        this.pending.insert(request)
                    }
                };
                let (pager, result) = ready!(pending.as_mut().poll(cx));
                this.pending = None;
                if !pager.is_done() {
                    this.pager = Some(pager);
                }
                match result {
                    Ok(Some(kvs)) => this.page = kvs.into(),
                    Ok(None) => {}
                    Err(e) => {
                        this.done = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                continue;
            }
            let from_snapshot = match (this.page.front(), this.buffered.front()) {
                (None, None) => {
                    this.cover_all();
                    this.done = true;
                    return Poll::Ready(None);
                }
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(kv), Some((key, _))) => {
                    match scan_order(kv.key(), key, this.reverse) {
                        Ordering::Less => true,
                        Ordering::Greater => false,
                        Ordering::Equal => {
                            // Our own write of this key replaces the snapshot's row.
                            this.page.pop_front();
                            false
                        }
                    }
                }
            };
            if from_snapshot {
                let Some(kv) = this.page.pop_front() else {
                    continue;
                };
                let (key, value) = (kv.key_bytes(), kv.value_bytes());
                this.core.record(&key, kv.mod_revision());
                this.cover_to(&key);
                this.yielded += 1;
                return Poll::Ready(Some(Ok(RawRow { key, value })));
            }
            let Some((key, write)) = this.buffered.pop_front() else {
                continue;
            };
            this.cover_to(&key);
            if let Some(value) = write {
                this.yielded += 1;
                return Poll::Ready(Some(Ok(RawRow { key, value })));
            }
        }
    }
}
