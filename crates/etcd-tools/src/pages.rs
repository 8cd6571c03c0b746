//! Reading a key range page by page at one pinned revision, with memory bounded by a page:
//! etcd-kv's one paginator, with the tools' error context.

use crate::error::{Error, Result};
use bytes::Bytes;
use etcd_kv::{Client, ClientPages, KeyValue};

/// The range `[start, end)` of every key starting with `prefix` (all keys for an empty
/// prefix), as etcd wants it.
pub fn prefix_range(prefix: &[u8]) -> (Bytes, Bytes) {
    if prefix.is_empty() {
        (Bytes::from_static(b"\0"), Bytes::from_static(b"\0"))
    } else {
        (Bytes::copy_from_slice(prefix), etcd_kv::prefix_end(prefix))
    }
}

pub(crate) use etcd_kv::key_after;

/// Pages of `[start, end)` in key order at one revision: etcd-kv's [`etcd_kv::Pager`] (which
/// spares the server the counting of open-ended page requests and halves a page whose
/// answer is too large), with the tools' error context.
#[derive(Debug)]
pub struct Pager {
    pager: etcd_kv::Pager<ClientPages>,
}

impl Pager {
    /// Pages of `[start, end)` (`end` `"\0"`: to the last key) of `page_size` keys, at
    /// `revision` (0: the first page pins the current one).
    pub fn new(client: &Client, start: Bytes, end: Bytes, revision: i64, page_size: i64) -> Self {
        let pager = etcd_kv::Pager::new(ClientPages::new(client), start, end)
            .page_size(page_size)
            .revision(revision);
        Pager { pager }
    }

    /// The revision read at, once pinned.
    pub fn revision(&self) -> Option<i64> {
        self.pager.pinned_revision()
    }

    /// The next page (never empty but for an empty range), `None` after the last one.
    pub async fn next_page(&mut self) -> Result<Option<Vec<KeyValue>>> {
        self.pager.next_page().await.map_err(|e| {
            let context = match self.pager.pinned_revision() {
                Some(revision) => format!("cannot read the keyspace at revision {revision}"),
                None => "cannot read the keyspace".to_string(),
            };
            Error::etcd(context, e)
        })
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
