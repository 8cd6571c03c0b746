//! Reading a key range page by page at one pinned revision, with memory bounded by a page.
//!
//! Like [`etcd_kv::PageStream`], plus one thing a dump needs: a page whose answer is over
//! the transport's response limit (large values) is asked again with half as many keys,
//! and the page size grows back afterwards.

use crate::error::{Error, Result};
use bytes::Bytes;
use etcd_kv::{Client, KeyValue};
use std::collections::VecDeque;

/// The range `[start, end)` of every key starting with `prefix` (all keys for an empty
/// prefix), as etcd wants it.
pub fn prefix_range(prefix: &[u8]) -> (Bytes, Bytes) {
    if prefix.is_empty() {
        (Bytes::from_static(b"\0"), Bytes::from_static(b"\0"))
    } else {
        (Bytes::copy_from_slice(prefix), etcd_kv::prefix_end(prefix))
    }
}

/// The smallest key after `key`.
pub(crate) fn key_after(key: &[u8]) -> Bytes {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next.into()
}

/// Pages of `[start, end)` in key order at one revision.
///
/// etcd counts every key from a request's start to its range end, whatever the limit, so
/// paging through N keys with open-ended requests costs O(N²) on the server (a 1,000,000-key
/// scan spends minutes counting). Once more than [`PROBE_PAGES`] pages remain, the pager
/// reads the keys (only) of the next [`PROBE_PAGES`] pages in one request and uses every
/// page-th key as the end of a page request: at a pinned revision each such request holds
/// exactly one page, and counts only it.
#[derive(Debug)]
pub struct Pager {
    client: Client,
    next: Bytes,
    end: Bytes,
    revision: i64,
    page_size: i64,
    limit: i64,
    /// Ends of the next page requests, from a probe.
    bounds: VecDeque<Bytes>,
    /// Keys known to remain after `next`, from the last open-ended answer.
    remaining: i64,
    done: bool,
}

/// How many pages one probe of keys covers.
pub const PROBE_PAGES: i64 = 16;

impl Pager {
    /// Pages of `[start, end)` (`end` `"\0"`: to the last key) of `page_size` keys, at
    /// `revision` (0: the first page pins the current one).
    pub fn new(client: &Client, start: Bytes, end: Bytes, revision: i64, page_size: i64) -> Self {
        let page_size = page_size.max(1);
        Pager {
            client: client.clone(),
            next: start,
            end,
            revision,
            page_size,
            limit: page_size,
            bounds: VecDeque::new(),
            remaining: 0,
            done: false,
        }
    }

    /// The revision read at, once pinned.
    pub fn revision(&self) -> Option<i64> {
        (self.revision > 0).then_some(self.revision)
    }

    fn read_error(&mut self, e: etcd_kv::Error) -> Error {
        self.done = true;
        let context = if self.revision > 0 {
            format!("cannot read the keyspace at revision {}", self.revision)
        } else {
            "cannot read the keyspace".to_string()
        };
        Error::etcd(context, e)
    }

    /// The next page (never empty but for an empty range), `None` after the last one.
    pub async fn next_page(&mut self) -> Result<Option<Vec<KeyValue>>> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.bounds.is_empty() && self.remaining > PROBE_PAGES * self.page_size {
                self.probe().await?;
            }
            let bounded = !self.bounds.is_empty();
            let end = self.bounds.front().unwrap_or(&self.end).clone();
            let response = loop {
                let request = self
                    .client
                    .range(self.next.clone())
                    .end(end.clone())
                    .limit(self.limit)
                    .revision(self.revision);
                match request.await {
                    Ok(r) => break r,
                    Err(e) if e.is_response_too_large() && self.limit > 1 => self.limit /= 2,
                    Err(e) => return Err(self.read_error(e)),
                }
            };
            if self.revision == 0 {
                self.revision = response.revision();
            }
            let more = response.more();
            let count = response.count();
            let kvs = response.into_kvs();
            match kvs.last() {
                Some(last) if more => self.next = key_after(last.key()),
                _ if bounded => {
                    self.next = end;
                    self.bounds.pop_front();
                }
                _ => self.done = true,
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

    /// Reads the keys of the next pages and keeps every page-th as a page end.
    async fn probe(&mut self) -> Result<()> {
        let mut limit = PROBE_PAGES * self.page_size;
        let response = loop {
            let request = self
                .client
                .range(self.next.clone())
                .end(self.end.clone())
                .keys_only()
                .limit(limit)
                .revision(self.revision);
            match request.await {
                Ok(r) => break r,
                Err(e) if e.is_response_too_large() && limit > self.page_size => limit /= 2,
                Err(e) => return Err(self.read_error(e)),
            }
        };
        let kvs = response.kvs();
        let step = self.page_size.max(1) as usize;
        self.bounds
            .extend(kvs.iter().skip(step).step_by(step).map(|kv| kv.key_bytes()));
        if response.more() {
            if let Some(last) = kvs.last() {
                self.bounds.push_back(key_after(last.key()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            prefix_range(b""),
            (Bytes::from_static(b"\0"), Bytes::from_static(b"\0"))
        );
        assert_eq!(
            prefix_range(b"a/"),
            (Bytes::from_static(b"a/"), Bytes::from_static(b"a0"))
        );
        assert_eq!(key_after(b"a"), Bytes::from_static(b"a\0"));
    }
}
