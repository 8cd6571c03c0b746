//! Paginated scans: a `Stream` over any range at one fixed revision, memory bounded by the
//! page size, read by the one [`Pager`].

use crate::client::Client;
use crate::error::{Error, Result};
use crate::key::{key_range_setters, prefix_end, IntoBytes, KeyRange};
use crate::pager::{key_after, ClientPages, Pager};
use crate::request::{check_key, BoxFuture};
use crate::types::KeyValue;
use bytes::Bytes;
use futures_core::Stream;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use crate::pager::DEFAULT_PAGE_SIZE;

/// A scan builder: `client.scan(prefix).prefix().page_size(500).into_stream()`.
#[derive(Debug, Clone)]
#[must_use = "call into_stream() or pages() to read"]
pub struct Scan {
    client: Client,
    key: Bytes,
    range: KeyRange,
    page_size: i64,
    revision: i64,
    keys_only: bool,
    serializable: bool,
}

impl Scan {
    key_range_setters!("Scans", range);

    /// Scans `range` from the key (what a watch or read of the same builder covers).
    pub(crate) fn over(mut self, range: KeyRange) -> Self {
        self.range = range;
        self
    }

    /// Keys per page (default [`DEFAULT_PAGE_SIZE`]); memory use is bounded by one page.
    pub fn page_size(mut self, n: i64) -> Self {
        self.page_size = n;
        self
    }

    /// Scans the keyspace as it was at this revision. By default the first page pins the
    /// current revision and later pages read at it: the scan is a consistent snapshot.
    pub fn revision(mut self, revision: i64) -> Self {
        self.revision = revision;
        self
    }

    /// Fetches keys without values.
    pub fn keys_only(mut self) -> Self {
        self.keys_only = true;
        self
    }

    /// Reads from the local member without consensus.
    pub fn serializable(mut self) -> Self {
        self.serializable = true;
        self
    }

    /// The key-values one by one.
    pub fn into_stream(self) -> ScanStream {
        ScanStream {
            pages: self.pages(),
            buffer: VecDeque::new(),
        }
    }

    /// The key-values page by page.
    pub fn pages(self) -> PageStream {
        let checked = if self.page_size <= 0 {
            Err(Error::invalid("the page size must be positive"))
        } else {
            check_key(&self.key, &self.range)
        };
        let end = match &self.range {
            KeyRange::Single => key_after(&self.key),
            KeyRange::End(end) => end.clone(),
            KeyRange::Prefix if self.key.is_empty() => Bytes::from_static(b"\0"),
            KeyRange::Prefix => prefix_end(&self.key),
            KeyRange::FromKey => Bytes::from_static(b"\0"),
        };
        let mut source = ClientPages::new(&self.client);
        if self.serializable {
            source = source.serializable();
        }
        let mut pager = Pager::new(source, self.key, end)
            .page_size(self.page_size)
            .revision(self.revision);
        if self.keys_only {
            pager = pager.keys_only();
        }
        PageStream {
            revision: pager.pinned_revision(),
            pager: checked.is_ok().then_some(pager),
            pending: None,
            error: checked.err(),
        }
    }
}

type NextPage = (Pager<ClientPages>, Result<Option<Vec<KeyValue>>>);

/// Pages of a scan, each a `Vec<KeyValue>` in key order. See [`Scan::pages`]; the pages come
/// from a [`Pager`], which spares the server the counting of open-ended page requests.
///
/// Dropping the stream abandons the request in flight, if any.
#[must_use = "streams do nothing unless polled"]
pub struct PageStream {
    pager: Option<Pager<ClientPages>>,
    pending: Option<BoxFuture<'static, NextPage>>,
    revision: Option<i64>,
    error: Option<Error>,
}

impl std::fmt::Debug for PageStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageStream")
            .field("revision", &self.revision)
            .field("in_flight", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl PageStream {
    /// The revision the scan reads at, once the first page has pinned it (or as given).
    pub fn revision(&self) -> Option<i64> {
        self.revision
    }
}

impl Stream for PageStream {
    type Item = Result<Vec<KeyValue>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(e) = this.error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        let pending = match &mut this.pending {
            Some(p) => p,
            None => {
                let Some(mut pager) = this.pager.take() else {
                    return Poll::Ready(None);
                };
                this.pending.insert(Box::pin(async move {
                    let page = pager.next_page().await;
                    (pager, page)
                }))
            }
        };
        let (pager, page) = ready!(pending.as_mut().poll(cx));
        this.pending = None;
        this.revision = pager.pinned_revision();
        if !pager.is_done() {
            this.pager = Some(pager);
        }
        Poll::Ready(page.transpose())
    }
}

/// The key-values of a scan one by one, in key order. See [`Scan::into_stream`].
#[must_use = "streams do nothing unless polled"]
#[derive(Debug)]
pub struct ScanStream {
    pages: PageStream,
    buffer: VecDeque<KeyValue>,
}

impl ScanStream {
    /// The revision the scan reads at, once known.
    pub fn revision(&self) -> Option<i64> {
        self.pages.revision()
    }
}

impl Stream for ScanStream {
    type Item = Result<KeyValue>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(kv) = self.buffer.pop_front() {
                return Poll::Ready(Some(Ok(kv)));
            }
            match ready!(Pin::new(&mut self.pages).poll_next(cx)) {
                Some(Ok(page)) => self.buffer = page.into(),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => return Poll::Ready(None),
            }
        }
    }
}

impl Client {
    /// A paginated scan starting at `key`; see [`Scan`].
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// use futures_util::TryStreamExt;
    /// let mut keys = client.scan("logs/").prefix().page_size(500).into_stream();
    /// while let Some(kv) = keys.try_next().await? {
    ///     println!("{:?}", kv.key_str());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn scan(&self, key: impl IntoBytes) -> Scan {
        Scan {
            client: self.clone(),
            key: key.into_bytes(),
            range: KeyRange::Single,
            page_size: DEFAULT_PAGE_SIZE,
            revision: 0,
            keys_only: false,
            serializable: false,
        }
    }
}
