//! The one paginator: a key range read page by page at one revision, for scans, pmap's
//! transactional rows and the tools' dumps alike.
//!
//! etcd counts every key from a request's start to its range end, whatever the limit, so
//! paging through N keys with open-ended requests costs O(N²) on the server (a
//! 1,000,000-key scan spends minutes counting). Once more than [`PROBE_PAGES`] pages remain,
//! the pager reads the keys (only) of the next pages in one request (up to [`PROBE_PAGES`]
//! pages and 4,096 keys, so that memory stays about a page's) and uses every page-th key as
//! a bound of a page request: at a pinned revision each such request holds exactly one
//! page, and counts only it. A page whose answer is over the response
//! limit (large values) is asked again with half as many keys; the page size grows back
//! afterwards.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::kv::{RangeResponse, SortOrder, SortTarget};
use crate::request::BoxFuture;
use crate::types::KeyValue;
use bytes::Bytes;
use std::collections::VecDeque;

/// The default number of keys fetched per page.
pub const DEFAULT_PAGE_SIZE: i64 = 1000;

/// How many pages one probe of keys covers at most.
pub const PROBE_PAGES: i64 = 16;

/// The most keys one probe reads, so that a probe costs about what a page does.
const MAX_PROBE_KEYS: i64 = 4096;

/// One page request of a [`Pager`]: the keys `[key, end)` (`end` `"\0"`: to the last key),
/// at most `limit`, in descending key order when `descending`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageRequest {
    /// The first key of the range.
    pub key: Bytes,
    /// The end of the range (exclusive); `"\0"` for "to the last key".
    pub end: Bytes,
    /// The most key-values to return.
    pub limit: i64,
    /// The revision to read at; 0 for the current one (the first page pins it).
    pub revision: i64,
    /// Largest key first.
    pub descending: bool,
    /// Keys without values.
    pub keys_only: bool,
}

/// Where a [`Pager`]'s pages come from: a client's range requests, or anything that reads
/// like them (etcd-pmap reads through its transaction, which records what it read).
pub trait PageSource {
    /// The error of a read.
    type Error;

    /// Reads one page.
    fn fetch(&self, request: PageRequest) -> BoxFuture<'_, Result<RangeResponse, Self::Error>>;

    /// Whether `error` says the answer was over the response limit (ask for fewer keys).
    fn is_too_large(error: &Self::Error) -> bool;
}

/// A client's range requests, as a [`PageSource`].
#[derive(Debug, Clone)]
pub struct ClientPages {
    client: Client,
    serializable: bool,
}

impl ClientPages {
    /// Pages read with `client`'s range requests (in its namespace).
    pub fn new(client: &Client) -> Self {
        ClientPages {
            client: client.clone(),
            serializable: false,
        }
    }

    /// Reads from the local member without consensus.
    pub fn serializable(mut self) -> Self {
        self.serializable = true;
        self
    }
}

impl PageSource for ClientPages {
    type Error = Error;

    fn fetch(&self, request: PageRequest) -> BoxFuture<'_, Result<RangeResponse>> {
        let mut range = self
            .client
            .range(request.key)
            .end(request.end)
            .limit(request.limit)
            .revision(request.revision);
        if request.descending {
            range = range.sort(SortTarget::Key, SortOrder::Descend);
        }
        if request.keys_only {
            range = range.keys_only();
        }
        if self.serializable {
            range = range.serializable();
        }
        Box::pin(range.send())
    }

    fn is_too_large(error: &Error) -> bool {
        error.is_response_too_large() || is_over_a_gateway_limit(error)
    }
}

/// True for a gateway's code 8 "received message larger than max": a gateway's own gRPC
/// client takes answers up to a limit (4 MiB in old gateways). A range request is small, so
/// on a range this is about the answer, and a smaller page gets through.
fn is_over_a_gateway_limit(error: &Error) -> bool {
    error.status().is_some_and(|s| {
        s.grpc_code() == crate::Code::ResourceExhausted
            && s.message.contains("received message larger than max")
    })
}

/// A key range read page by page at one revision, with memory bounded by a page. etcd
/// counts a request's whole range whatever its limit: once more than [`PROBE_PAGES`] pages
/// remain, the pager reads the next pages' keys in one request and bounds each page request
/// by them, so that it counts only its page. A page whose answer is too large (over the
/// client's response limit, or refused by a gateway that caps answers with code 8
/// "received message larger than max") is asked again with half as many keys.
#[derive(Debug)]
pub struct Pager<S> {
    source: S,
    /// The range's first key (inclusive).
    start: Bytes,
    /// The range's end (exclusive; `"\0"`: to the last key).
    end: Bytes,
    /// Ascending: where the next page starts. Descending: where it ends (exclusive).
    cursor: Bytes,
    revision: i64,
    page_size: i64,
    /// The page size of the next request (halved after a too-large answer).
    limit: i64,
    descending: bool,
    keys_only: bool,
    /// Bounds of the next page requests, from a probe: ends when ascending, starts when
    /// descending.
    bounds: VecDeque<Bytes>,
    /// Keys known to remain past the cursor, from the last open-ended answer.
    remaining: i64,
    done: bool,
}

impl<S: PageSource> Pager<S> {
    /// Pages of `[start, end)` (`end` `"\0"`: to the last key) from `source`, in ascending
    /// key order, of [`DEFAULT_PAGE_SIZE`](crate::DEFAULT_PAGE_SIZE) keys, at the current
    /// revision (pinned by the first page).
    pub fn new(source: S, start: Bytes, end: Bytes) -> Self {
        let page_size = DEFAULT_PAGE_SIZE;
        let done = end.as_ref() != b"\0" && !end.is_empty() && start >= end;
        Pager {
            source,
            cursor: start.clone(),
            start,
            end,
            revision: 0,
            page_size,
            limit: page_size,
            descending: false,
            keys_only: false,
            bounds: VecDeque::new(),
            remaining: 0,
            done,
        }
    }

    /// Reads at this revision (0: the first page pins the current one).
    pub fn revision(mut self, revision: i64) -> Self {
        self.revision = revision;
        self
    }

    /// Keys per page (at least 1).
    pub fn page_size(mut self, n: i64) -> Self {
        self.set_page_size(n);
        self
    }

    /// Changes the keys per page from the next page on (e.g. to fetch no more than a
    /// caller's limit still needs).
    pub fn set_page_size(&mut self, n: i64) {
        self.page_size = n.max(1);
        self.limit = self.page_size;
    }

    /// Largest key first.
    pub fn descending(mut self) -> Self {
        self.descending = true;
        self.cursor = self.end.clone();
        self
    }

    /// Keys without values.
    pub fn keys_only(mut self) -> Self {
        self.keys_only = true;
        self
    }

    /// The revision read at, once pinned (or as given).
    pub fn pinned_revision(&self) -> Option<i64> {
        (self.revision > 0).then_some(self.revision)
    }

    /// True once the last page has been returned.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The request for `[from, to)` of the pager's range.
    fn request(&self, from: Bytes, to: Bytes, limit: i64, keys_only: bool) -> PageRequest {
        PageRequest {
            key: from,
            end: to,
            limit,
            revision: self.revision,
            descending: self.descending,
            keys_only,
        }
    }

    /// The next page (never empty but for an empty range), `None` after the last one.
    /// On an error the pager is done.
    pub async fn next_page(&mut self) -> Result<Option<Vec<KeyValue>>, S::Error> {
        let result = self.next_page_inner().await;
        if result.is_err() {
            self.done = true;
        }
        result
    }

    async fn next_page_inner(&mut self) -> Result<Option<Vec<KeyValue>>, S::Error> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.bounds.is_empty()
                && self.probe_pages() > 1
                && self.remaining > PROBE_PAGES * self.page_size
            {
                self.probe().await?;
            }
            let bound = self.bounds.front().cloned();
            let bounded = bound.is_some();
            let (from, to) = match (&bound, self.descending) {
                (Some(b), false) => (self.cursor.clone(), b.clone()),
                (Some(b), true) => (b.clone(), self.cursor.clone()),
                (None, false) => (self.cursor.clone(), self.end.clone()),
                (None, true) => (self.start.clone(), self.cursor.clone()),
            };
            let response = loop {
                let request = self.request(from.clone(), to.clone(), self.limit, self.keys_only);
                match self.source.fetch(request).await {
                    Ok(r) => break r,
                    Err(e) if S::is_too_large(&e) && self.limit > 1 => self.limit /= 2,
                    Err(e) => return Err(e),
                }
            };
            if self.revision == 0 {
                self.revision = response.revision();
            }
            let more = response.more();
            let count = response.count();
            let kvs = response.into_kvs();
            match kvs.last() {
                Some(last) if more => {
                    self.cursor = if self.descending {
                        last.key_bytes()
                    } else {
                        key_after(last.key())
                    }
                }
                _ => match bound {
                    Some(b) => {
                        self.cursor = b;
                        self.bounds.pop_front();
                    }
                    None => self.done = true,
                },
            }
            if bounded {
                self.remaining -= kvs.len() as i64;
            } else {
                self.remaining = count - kvs.len() as i64;
            }
            self.limit = (self.limit * 2).min(self.page_size);
            if !kvs.is_empty() || self.done {
                return Ok(Some(kvs));
            }
        }
    }

    /// How many pages a probe covers: up to [`PROBE_PAGES`], within [`MAX_PROBE_KEYS`].
    fn probe_pages(&self) -> i64 {
        (MAX_PROBE_KEYS / self.page_size).clamp(1, PROBE_PAGES)
    }

    /// Reads the keys of the next pages and keeps every page-th as a page bound.
    async fn probe(&mut self) -> Result<(), S::Error> {
        // Whole pages only, so that every bounded page is a full one.
        let mut limit = self.probe_pages() * self.page_size;
        let (from, to) = if self.descending {
            (self.start.clone(), self.cursor.clone())
        } else {
            (self.cursor.clone(), self.end.clone())
        };
        let response = loop {
            let request = self.request(from.clone(), to.clone(), limit, true);
            match self.source.fetch(request).await {
                Ok(r) => break r,
                Err(e) if S::is_too_large(&e) && limit > self.page_size => {
                    limit = (limit / 2 / self.page_size).max(1) * self.page_size
                }
                Err(e) => return Err(e),
            }
        };
        let kvs = response.kvs();
        let step = self.page_size.max(1) as usize;
        if self.descending {
            // Each bound is the smallest key of its page: the request [bound, cursor).
            self.bounds.extend(
                kvs.iter()
                    .skip(step - 1)
                    .step_by(step)
                    .map(KeyValue::key_bytes),
            );
        } else {
            // Each bound is the first key after its page: the request [cursor, bound).
            self.bounds
                .extend(kvs.iter().skip(step).step_by(step).map(KeyValue::key_bytes));
            if response.more() {
                if let Some(last) = kvs.last() {
                    self.bounds.push_back(key_after(last.key()));
                }
            }
        }
        Ok(())
    }
}

/// The smallest key after `key`.
pub fn key_after(key: &[u8]) -> Bytes {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Header;
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    /// An in-memory keyspace answering like etcd: counts the whole requested range, `more`
    /// past the limit, "too large" above `max_keys` per answer.
    struct Fake {
        keys: BTreeSet<Vec<u8>>,
        max_keys: i64,
        requests: Mutex<Vec<PageRequest>>,
    }

    #[derive(Debug)]
    struct TooLarge;

    impl PageSource for Fake {
        type Error = TooLarge;

        fn fetch(&self, request: PageRequest) -> BoxFuture<'_, Result<RangeResponse, TooLarge>> {
            self.requests.lock().unwrap().push(request.clone());
            let in_range: Vec<&Vec<u8>> = self
                .keys
                .iter()
                .filter(|k| {
                    k.as_slice() >= request.key.as_ref()
                        && (request.end.as_ref() == b"\0" || k.as_slice() < request.end.as_ref())
                })
                .collect();
            let count = in_range.len() as i64;
            let mut ordered = in_range;
            if request.descending {
                ordered.reverse();
            }
            let limit = request.limit.max(0) as usize;
            let answer = if !request.keys_only && request.limit > self.max_keys {
                Err(TooLarge)
            } else {
                Ok(RangeResponse {
                    header: Header {
                        revision: 7,
                        ..Header::default()
                    },
                    kvs: ordered
                        .iter()
                        .take(limit)
                        .map(|k| KeyValue {
                            key: Bytes::copy_from_slice(k),
                            ..KeyValue::default()
                        })
                        .collect(),
                    more: ordered.len() > limit,
                    count,
                })
            };
            Box::pin(async move { answer })
        }

        fn is_too_large(_: &TooLarge) -> bool {
            true
        }
    }

    async fn read_all(pager: &mut Pager<&Fake>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(page) = pager.next_page().await.unwrap() {
            out.extend(page.iter().map(|kv| kv.key().to_vec()));
        }
        out
    }

    impl PageSource for &Fake {
        type Error = TooLarge;
        fn fetch(&self, request: PageRequest) -> BoxFuture<'_, Result<RangeResponse, TooLarge>> {
            (**self).fetch(request)
        }
        fn is_too_large(e: &TooLarge) -> bool {
            Fake::is_too_large(e)
        }
    }

    #[tokio::test]
    async fn pages_are_full_but_the_last() {
        for (n, page) in [(1000usize, 10i64), (20_000, 1000), (999, 7)] {
            let keys: BTreeSet<Vec<u8>> = (0..n).map(|i| format!("k{i:05}").into_bytes()).collect();
            let fake = Fake {
                keys,
                max_keys: i64::MAX,
                requests: Mutex::new(Vec::new()),
            };
            for descending in [false, true] {
                let mut pager =
                    Pager::new(&fake, Bytes::from_static(b"k"), Bytes::from_static(b"l"))
                        .page_size(page);
                if descending {
                    pager = pager.descending();
                }
                let mut sizes = Vec::new();
                while let Some(p) = pager.next_page().await.unwrap() {
                    sizes.push(p.len() as i64);
                }
                let last = sizes.pop().unwrap();
                assert!(
                    sizes.iter().all(|&s| s == page),
                    "n {n} page {page} {descending}: {sizes:?}"
                );
                assert_eq!(sizes.len() as i64 * page + last, n as i64);
            }
        }
    }

    #[tokio::test]
    async fn every_key_once_in_order_both_ways_with_probes_and_halving() {
        for n in [0usize, 1, 5, 37, 200, 1000] {
            for page in [1i64, 3, 7, 10] {
                let keys: BTreeSet<Vec<u8>> =
                    (0..n).map(|i| format!("k{i:05}").into_bytes()).collect();
                let fake = Fake {
                    keys: keys.clone(),
                    max_keys: if page > 3 { page / 2 } else { page },
                    requests: Mutex::new(Vec::new()),
                };
                let ascending: Vec<Vec<u8>> = keys.iter().cloned().collect();
                let mut pager =
                    Pager::new(&fake, Bytes::from_static(b"k"), Bytes::from_static(b"l"))
                        .page_size(page);
                assert_eq!(read_all(&mut pager).await, ascending, "n {n} page {page}");
                assert_eq!(pager.pinned_revision(), Some(7));
                let mut pager =
                    Pager::new(&fake, Bytes::from_static(b"k"), Bytes::from_static(b"\0"))
                        .page_size(page)
                        .descending();
                let mut descending = ascending.clone();
                descending.reverse();
                assert_eq!(
                    read_all(&mut pager).await,
                    descending,
                    "n {n} page {page} desc"
                );
                let requests = fake.requests.lock().unwrap();
                // Open-ended requests (those that count the whole rest) are few: one per
                // PROBE_PAGES pages, not one per page.
                let open = requests
                    .iter()
                    .filter(|r| r.end.as_ref() == b"l" || (r.descending && r.key.as_ref() == b"k"))
                    .count() as i64;
                if n == 1000 && page == 10 {
                    // 100 pages each way (and retries at half size): without the
                    // probes, every one of them would count the rest of the range.
                    assert!(
                        open <= 60,
                        "{open} open-ended of {} requests",
                        requests.len()
                    );
                }
            }
        }
    }
}
