//! The compact revision of the store, which a unary error does not carry: learned by
//! opening a watch at the compacted revision (etcd cancels it at once and names it). Used
//! by reads (`kv.rs`); a leaf beside the API modules, so that none reaches into another.

use crate::client::Client;
use crate::error::Error;
use bytes::Bytes;
use etcd_wire::watch::{WatchCreateRequest, WatchRequest};
use std::time::Duration;

/// The compact revision of the store, learned by opening a watch at `revision` on `key`
/// (a wire key): etcd cancels such a watch at once and names the compact revision.
pub(crate) async fn probe_compact_revision(
    client: &Client,
    key: Bytes,
    revision: i64,
) -> Option<i64> {
    let request = WatchRequest {
        create_request: Some(WatchCreateRequest {
            key,
            start_revision: revision.max(1),
            ..WatchCreateRequest::default()
        }),
        ..WatchRequest::default()
    };
    let probe = async {
        let mut stream = client.inner.backend.call_stream(&request).await.ok()?;
        while let Some(Ok(message)) = stream.next().await {
            if message.compact_revision > 0 {
                return Some(message.compact_revision);
            }
            if message.canceled || !message.events.is_empty() {
                return None;
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(5), probe)
        .await
        .ok()
        .flatten()
}

impl Client {
    /// The error for a read at a compacted revision, with the compact revision found out
    /// from a watch at that revision (the gateway's unary error does not carry it).
    pub(crate) async fn compacted_error(&self, key: &Bytes, revision: i64) -> Error {
        // Boxed: this rare path's future (a whole watch) would otherwise enlarge the future
        // of every read.
        match Box::pin(probe_compact_revision(self, key.clone(), revision)).await {
            Some(compact_revision) => Error::Compacted { compact_revision },
            None => Error::Compacted {
                compact_revision: 0,
            },
        }
    }
}
