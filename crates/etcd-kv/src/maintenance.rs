//! Snapshots and consistency hashes: `snapshot_to`, `hash`, `hash_kv`.
//!
//! A snapshot is etcd's backend database streamed by one member, followed by 32 bytes: the
//! SHA-256 of everything before them. [`Client::snapshot_to`] writes both (the file is what
//! `etcdctl snapshot save` writes, and what `etcdutl snapshot restore` checks) and verifies
//! the checksum on the way, holding one message at a time.

use crate::client::Client;
pub use crate::error::SnapshotError;
use crate::error::{Error, Result};
use crate::types::Header;
use etcd_transport::Error as TransportError;
use etcd_wire::maintenance as wire;
use etcd_wire::Code;
use ring::digest;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Length of the checksum etcd appends to a snapshot (a SHA-256).
pub const SNAPSHOT_CHECKSUM_LEN: usize = 32;

/// True when the server has no such call: the gateway has no route for it (HTTP 404 `Not
/// Found`, as text or as v2's status), or over gRPC the method is `Unimplemented`. The
/// server is older than the call.
pub(crate) fn is_missing_route(e: &Error) -> bool {
    // v2's 404 is a `NotFound`, gRPC's `Unimplemented` a `Server`, v1's a `Transport`.
    let Some(cause) = e.cause() else {
        return false;
    };
    let mut current = Some(cause.transport());
    while let Some(t) = current {
        match t {
            // grpc-gateway v1 (etcd 3.4, 3.5 as released): a plain-text 404.
            TransportError::Http { status: 404, .. } => return true,
            // grpc-gateway v2 (etcd 3.6, Debian's 3.5.30): 404 `{"code":5,"message":"Not
            // Found"}`; over native gRPC: a method the server does not have (`Unimplemented`).
            TransportError::Server { status, .. } => {
                return status.is_unknown_route() || status.grpc_code() == Code::Unimplemented
            }
            TransportError::Unavailable { last, .. } => current = Some(last),
            _ => return false,
        }
    }
    false
}

/// A write error of the snapshot's writer.
fn write_error(e: std::io::Error) -> Error {
    Error::Snapshot(SnapshotError::Write(std::sync::Arc::new(e)))
}

/// What [`Client::snapshot_to`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    size: u64,
    revision: i64,
    revision_after: i64,
    member_id: u64,
    version: String,
}

impl SnapshotInfo {
    /// Bytes written: the database and its 32-byte checksum.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes of the database alone (without the checksum).
    pub fn db_size(&self) -> u64 {
        self.size.saturating_sub(SNAPSHOT_CHECKSUM_LEN as u64)
    }

    /// The store's revision the snapshot holds at least: the member's revision just before
    /// the snapshot began (or the snapshot's own header, from servers that send one). It is
    /// exact when [`revision_after`](Self::revision_after) is equal; when writes happened
    /// meanwhile the snapshot holds every revision up to some point between the two.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The member's revision once the snapshot was whole: the snapshot holds no revision
    /// after it.
    pub fn revision_after(&self) -> i64 {
        self.revision_after
    }

    /// True when the revision is known exactly (no write happened while it was taken).
    pub fn is_revision_exact(&self) -> bool {
        self.revision == self.revision_after
    }

    /// The member that made the snapshot.
    pub fn member_id(&self) -> u64 {
        self.member_id
    }

    /// The server version that made it (etcd 3.6+ says; empty before).
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// Checks a snapshot's trailing checksum as its bytes go by, holding back only the last 32.
pub(crate) struct SnapshotVerifier {
    hasher: digest::Context,
    tail: [u8; SNAPSHOT_CHECKSUM_LEN],
    tail_len: usize,
    size: u64,
}

impl SnapshotVerifier {
    pub(crate) fn new() -> Self {
        SnapshotVerifier {
            hasher: digest::Context::new(&digest::SHA256),
            tail: [0; SNAPSHOT_CHECKSUM_LEN],
            tail_len: 0,
            size: 0,
        }
    }

    /// Bytes seen so far.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Takes the next bytes of the snapshot.
    pub(crate) fn update(&mut self, chunk: &[u8]) {
        self.size += chunk.len() as u64;
        if chunk.len() >= SNAPSHOT_CHECKSUM_LEN {
            let (body, tail) = chunk.split_at(chunk.len() - SNAPSHOT_CHECKSUM_LEN);
            self.hasher.update(&self.tail[..self.tail_len]);
            self.hasher.update(body);
            self.tail.copy_from_slice(tail);
            self.tail_len = SNAPSHOT_CHECKSUM_LEN;
            return;
        }
        // The held-back bytes that no longer are among the last 32 go into the hash.
        let overflow = (self.tail_len + chunk.len()).saturating_sub(SNAPSHOT_CHECKSUM_LEN);
        self.hasher.update(&self.tail[..overflow]);
        self.tail.copy_within(overflow..self.tail_len, 0);
        self.tail_len -= overflow;
        self.tail[self.tail_len..self.tail_len + chunk.len()].copy_from_slice(chunk);
        self.tail_len += chunk.len();
    }

    /// Checks the last 32 bytes against the SHA-256 of the others; returns the size.
    pub(crate) fn finish(self) -> Result<u64, SnapshotError> {
        if self.tail_len < SNAPSHOT_CHECKSUM_LEN {
            return Err(SnapshotError::Truncated {
                received: self.size,
                expected: None,
            });
        }
        let mut actual = [0; SNAPSHOT_CHECKSUM_LEN];
        actual.copy_from_slice(self.hasher.finish().as_ref());
        if actual != self.tail {
            return Err(SnapshotError::Checksum {
                size: self.size,
                expected: self.tail,
                actual,
            });
        }
        Ok(self.size)
    }
}

/// Checks that `snapshot` (a whole snapshot as `etcdctl snapshot save` or
/// [`Client::snapshot_to`] writes it) ends with the SHA-256 of the rest.
pub fn verify_snapshot(snapshot: &[u8]) -> Result<(), SnapshotError> {
    let mut verifier = SnapshotVerifier::new();
    verifier.update(snapshot);
    verifier.finish().map(drop)
}

/// A hash of one member's whole backend, from [`Client::hash`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreHash {
    header: Header,
    hash: u32,
}

impl StoreHash {
    /// The hash (CRC-32 of the member's backend; it differs between members even when their
    /// keys agree).
    pub fn hash(&self) -> u32 {
        self.hash
    }
    /// The member that answered.
    pub fn member_id(&self) -> u64 {
        self.header.member_id
    }
    /// The store's revision when it answered.
    pub fn revision(&self) -> i64 {
        self.header.revision
    }
    /// The response header.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

/// A hash of the MVCC keys up to a revision, from [`Client::hash_kv`]: members whose
/// keys agree answer the same hash for the same revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvHash {
    header: Header,
    hash: u32,
    compact_revision: i64,
    hash_revision: i64,
}

impl KvHash {
    /// The hash (CRC-32 of the keys and values between the compacted revision and the
    /// hashed one).
    pub fn hash(&self) -> u32 {
        self.hash
    }
    /// The store's compacted revision when the hash began.
    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }
    /// The revision the hash goes up to (etcd 3.6+ says; 0 before).
    pub fn hash_revision(&self) -> i64 {
        self.hash_revision
    }
    /// The member that answered.
    pub fn member_id(&self) -> u64 {
        self.header.member_id
    }
    /// The store's revision when it answered.
    pub fn revision(&self) -> i64 {
        self.header.revision
    }
    /// The response header.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

impl Client {
    /// Streams a snapshot of the backend of the member behind the current endpoint into
    /// `writer`, then its 32-byte checksum, which is verified; flushes the writer (it does
    /// not shut it down). Memory is one message (32 KiB of snapshot) at a time.
    ///
    /// Returns the size and the revision (see [`SnapshotInfo::revision`]); fails with
    /// [`Error::Snapshot`] holding [`SnapshotError::Checksum`] when the checksum does not
    /// match, [`SnapshotError::Truncated`] when the stream ended early, or
    /// [`SnapshotError::Write`] when the writer failed. A member that sends nothing for the
    /// request timeout fails it with a timeout.
    ///
    /// Cancel safety: dropping the future closes the stream; the writer keeps what was
    /// written, an incomplete snapshot.
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut file = tokio::fs::File::create("backup.db").await?;
    /// let info = client.snapshot_to(&mut file).await?;
    /// file.sync_all().await?;
    /// println!("{} bytes at revision {}", info.size(), info.revision());
    /// # Ok(()) }
    /// ```
    pub async fn snapshot_to<W>(&self, mut writer: W) -> Result<SnapshotInfo>
    where
        W: AsyncWrite + Unpin,
    {
        let before = self.status().await?;
        let backend = &self.inner.backend;
        let mut stream = backend
            .call_stream(&wire::SnapshotRequest::default())
            .await?;
        let idle = backend.request_timeout();
        let mut verifier = SnapshotVerifier::new();
        let mut expected = None;
        let mut header = None;
        let mut version = String::new();
        loop {
            let next = match tokio::time::timeout(idle, stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    let e = Error::timeout(stream.endpoint(), idle, "snapshot message");
                    return Err(e);
                }
            };
            let Some(message) = next else { break };
            let message = message?;
            if expected.is_none() {
                // The first message says how much follows: the database, then the checksum.
                let db = message.blob.len() as u64 + message.remaining_bytes;
                expected = Some(db + SNAPSHOT_CHECKSUM_LEN as u64);
                if message.header.revision != 0 {
                    header = Some(Header::from(message.header.clone()));
                }
                version = message.version.clone();
            }
            verifier.update(&message.blob);
            writer.write_all(&message.blob).await.map_err(write_error)?;
            // One message at a time: its blob is dropped here.
        }
        writer.flush().await.map_err(write_error)?;
        if verifier.size() < expected.unwrap_or(u64::MAX) {
            return Err(Error::Snapshot(SnapshotError::Truncated {
                received: verifier.size(),
                expected,
            }));
        }
        let size = verifier.finish()?;
        let after = self.status().await?;
        let (revision, member_id) = match &header {
            Some(h) => (h.revision, h.member_id),
            None => (before.revision(), before.member_id()),
        };
        Ok(SnapshotInfo {
            size,
            revision,
            revision_after: if header.is_some() {
                revision
            } else {
                after.revision()
            },
            member_id,
            version,
        })
    }

    /// The hash of the whole backend of the member behind the current endpoint (for
    /// debugging; compare members with [`hash_kv`](Self::hash_kv)).
    pub async fn hash(&self) -> Result<StoreHash> {
        let r: wire::HashResponse = self.call(&wire::HashRequest::default()).await?;
        Ok(StoreHash {
            header: r.header.into(),
            hash: r.hash,
        })
    }

    /// The hash of the MVCC keys up to `revision` (0: the current one) of the member behind
    /// the current endpoint. The gateway reaches HashKV from etcd 3.5.10 on; older ones
    /// (3.4, 3.5.0 to 3.5.9) have no `maintenance/hashkv` route: there it fails with
    /// [`Error::Unsupported`]. Over native gRPC ([`Protocol::Grpc`](crate::Protocol)) it
    /// works on every version.
    pub async fn hash_kv(&self, revision: i64) -> Result<KvHash> {
        match self.call(&wire::HashKvRequest { revision }).await {
            Ok(r) => Ok(KvHash {
                header: r.header.into(),
                hash: r.hash,
                compact_revision: r.compact_revision,
                hash_revision: r.hash_revision,
            }),
            Err(e) if is_missing_route(&e) => Err(Error::Unsupported(format!(
                "hash_kv needs etcd 3.5.10 or later, or native gRPC (the gateway has no maintenance/hashkv: {e})"
            ))),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot as etcd sends it: the database, then the SHA-256 of it.
    fn snapshot(db: &[u8]) -> Vec<u8> {
        let mut s = db.to_vec();
        s.extend_from_slice(digest::digest(&digest::SHA256, db).as_ref());
        s
    }

    fn verify_in_chunks(bytes: &[u8], chunk: usize) -> Result<u64, SnapshotError> {
        let mut v = SnapshotVerifier::new();
        for c in bytes.chunks(chunk) {
            v.update(c);
        }
        v.finish()
    }

    #[test]
    fn a_whole_snapshot_verifies_in_any_chunking() {
        let db: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let snap = snapshot(&db);
        for chunk in [1, 5, 31, 32, 33, 64, 4096, 32 * 1024, snap.len()] {
            assert_eq!(verify_in_chunks(&snap, chunk).ok(), Some(snap.len() as u64));
        }
        assert!(verify_snapshot(&snap).is_ok());
        assert!(verify_snapshot(&snapshot(b"")).is_ok());
    }

    #[test]
    fn a_flipped_byte_fails_the_checksum() {
        let db: Vec<u8> = (0..70_000u32).map(|i| (i % 13) as u8).collect();
        let snap = snapshot(&db);
        for at in [0, 1, 4096, db.len() - 1, db.len(), snap.len() - 1] {
            let mut bad = snap.clone();
            bad[at] ^= 0x01;
            for chunk in [7, 32 * 1024] {
                let err = verify_in_chunks(&bad, chunk).err();
                assert!(
                    err.as_ref().is_some_and(SnapshotError::is_checksum),
                    "byte {at}, chunks of {chunk}: {err:?}"
                );
            }
        }
    }

    #[test]
    fn a_short_snapshot_is_truncated_or_bad() {
        let snap = snapshot(b"some database bytes");
        assert!(verify_snapshot(&snap[..20])
            .err()
            .is_some_and(|e| e.is_truncated()));
        // Without its checksum message, the last 32 bytes of the database are no checksum.
        let db: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        assert!(verify_snapshot(&db).err().is_some_and(|e| e.is_checksum()));
    }

    fn from_body(http: u16, body: &str) -> Error {
        let endpoint = "http://127.0.0.1:2379".to_string();
        let error = match etcd_wire::from_slice::<etcd_wire::Status>(body.as_bytes()) {
            Ok(status) => TransportError::Server { endpoint, status },
            Err(_) => TransportError::Http {
                endpoint,
                status: http,
                body: body.into(),
            },
        };
        Error::from_transport(error)
    }

    #[test]
    fn missing_routes_of_both_gateway_versions() {
        // grpc-gateway v1 (etcd 3.4.23, 3.5.1): plain text.
        assert!(is_missing_route(&from_body(404, "Not Found\n")));
        // v2 (etcd 3.5.30): a status, typed NotFound like etcd's own "not found" errors.
        let v2 = from_body(404, r#"{"code":5, "message":"Not Found"}"#);
        assert!(matches!(v2, Error::NotFound(_)), "{v2:?}");
        assert!(is_missing_route(&v2));
        assert!(is_missing_route(&from_body(
            501,
            r#"{"code":12, "message":"Method Not Allowed"}"#
        )));
        // etcd's own errors are not missing routes.
        assert!(!is_missing_route(&from_body(
            404,
            r#"{"code":5, "message":"etcdserver: requested lease not found"}"#
        )));
        assert!(!is_missing_route(&from_body(
            403,
            r#"{"code":7, "message":"etcdserver: permission denied"}"#
        )));
    }
}
