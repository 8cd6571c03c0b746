//! The keep-alive stream of [`Client::lease_keep_alive_once`](crate::Client::lease_keep_alive_once):
//! held by the client, taken by one call at a time (no driver task in between).

use crate::backend::{Backend, BidiConn};
use crate::config::StreamMode;
use etcd_wire::lease::LeaseKeepAliveRequest;
use std::sync::atomic::{AtomicBool, Ordering};

/// The stream, opened by the first call that finds it free.
#[derive(Default)]
pub(crate) struct OnceStream {
    stream: tokio::sync::Mutex<Option<BidiConn<LeaseKeepAliveRequest>>>,
    /// The server takes no bidirectional stream (gateway refusal, auth on): do not ask again.
    refused: AtomicBool,
}

impl OnceStream {
    /// One keep-alive of lease `id` over the stream, within the request timeout; `None`
    /// when it is busy, cannot be opened, or failed (then it is dropped, and the next call
    /// opens a fresh one).
    pub(crate) async fn keep_alive(
        &self,
        backend: &Backend,
        mode: StreamMode,
        id: i64,
    ) -> Option<i64> {
        if mode == StreamMode::PerCall || self.refused.load(Ordering::Relaxed) {
            return None;
        }
        let mut slot = self.stream.try_lock().ok()?;
        if slot.is_none() {
            match backend.open_bidi::<LeaseKeepAliveRequest>().await {
                Ok(Some(stream)) => *slot = Some(stream),
                Ok(None) => {
                    self.refused.store(true, Ordering::Relaxed);
                    return None;
                }
                Err(_) => return None,
            }
        }
        let stream = slot.as_mut()?;
        let exchange = async {
            stream.send(&LeaseKeepAliveRequest { id }).await.ok()?;
            // An answer for another lease (a call cancelled while waiting) is skipped.
            loop {
                match stream.next().await {
                    Some(Ok(answer)) if answer.id == id => return Some(answer.ttl),
                    Some(Ok(_)) => continue,
                    _ => return None,
                }
            }
        };
        let ttl = tokio::time::timeout(backend.request_timeout(), exchange)
            .await
            .ok()
            .flatten();
        if ttl.is_none() {
            *slot = None;
        }
        ttl
    }
}
