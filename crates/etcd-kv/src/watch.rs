//! Watches over the gateway's streaming `watch` call.

use crate::client::Client;
use bytes::Bytes;
use etcd_wire::watch::{WatchCreateRequest, WatchRequest, WatchResponse};
use futures_util::StreamExt;
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
        let mut stream = client
            .inner
            .transport
            .stream::<_, WatchResponse>("watch", &request)
            .await
            .ok()?;
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
