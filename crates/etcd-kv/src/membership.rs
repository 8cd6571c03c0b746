//! Following the cluster's membership: the sync behind [`Client::sync_endpoints`] and the
//! task [`ClientBuilder::auto_sync`] starts. A leaf over the backend: the client holds the
//! task, the API methods (in `cluster.rs`) call [`sync`].
//!
//! A sync asks `member_list` and keeps the client URLs of the voting members that have
//! started (a learner serves no linearizable read and takes no write; a member added but
//! not started has no client URL yet), in the schemes the client already uses (a client
//! given `https://` endpoints never moves to plain `http://` ones a member also
//! advertises). The transport swaps its list whole: a kept endpoint keeps its connections,
//! calls in flight finish where they started, and watches and keep-alives move when their
//! stream ends (a removed member stops serving, which ends them).
//!
//! [`Client::sync_endpoints`]: crate::Client::sync_endpoints
//! [`ClientBuilder::auto_sync`]: crate::ClientBuilder::auto_sync

use crate::backend::Backend;
use crate::error::{Error, Result};
use etcd_wire::cluster::{Member, MemberListRequest};
use std::time::Duration;

/// Sets `backend`'s endpoints to the cluster's members as `member_list` reports them now,
/// within `deadline` (`None`: the client's); returns the list in use afterwards. A member
/// list without a usable URL changes nothing.
pub(crate) async fn sync(backend: &Backend, deadline: Option<Duration>) -> Result<Vec<String>> {
    let members = backend
        .call(&MemberListRequest::default(), deadline)
        .await?
        .members;
    let current = backend.endpoints();
    let urls = usable_urls(&members, &current);
    if urls.is_empty() {
        tracing::warn!(
            members = members.len(),
            "member list without a usable client URL: the endpoints stay as they are"
        );
        return Ok(current);
    }
    backend.set_endpoints(urls)?;
    Ok(backend.endpoints())
}

/// The client URLs of `members` a client whose endpoints are `current` should use: those
/// of started voting members, in the schemes of `current`, each once, in member order.
pub(crate) fn usable_urls(members: &[Member], current: &[String]) -> Vec<String> {
    let scheme = |url: &str| -> &'static str {
        if url.starts_with("https://") {
            "https"
        } else if url.starts_with("http://") || !url.contains("://") {
            // A bare host:port means http://.
            "http"
        } else {
            "other"
        }
    };
    let schemes: Vec<&str> = current.iter().map(|u| scheme(u)).collect();
    let mut urls: Vec<String> = Vec::new();
    for member in members.iter().filter(|m| !m.is_learner) {
        for url in &member.client_urls {
            let s = scheme(url);
            if s != "other" && schemes.contains(&s) && !urls.contains(url) {
                urls.push(url.clone());
            }
        }
    }
    urls
}

/// The task that syncs a client's endpoints every interval; it ends when this is dropped
/// (with the client).
pub(crate) struct AutoSync(tokio::task::JoinHandle<()>);

impl AutoSync {
    /// Starts syncing `backend` every `interval`, first `interval` after now. Needs a
    /// tokio runtime: outside one, [`Error::InvalidInput`].
    pub(crate) fn start(backend: Backend, interval: Duration) -> Result<AutoSync> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(Error::invalid(
                "auto_sync starts a task: build the client inside a tokio runtime",
            ));
        };
        if interval.is_zero() {
            return Err(Error::invalid(
                "auto_sync: the interval must be longer than zero",
            ));
        }
        Ok(AutoSync(runtime.spawn(async move {
            let start = tokio::time::Instant::now() + interval;
            let mut tick = tokio::time::interval_at(start, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match sync(&backend, None).await {
                    Ok(list) => tracing::trace!(endpoints = ?list, "endpoints synced"),
                    Err(e) => {
                        tracing::debug!(error = %e, "endpoint sync failed; next at the next interval")
                    }
                }
            }
        })))
    }
}

impl Drop for AutoSync {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, urls: &[&str], learner: bool) -> Member {
        Member {
            id,
            name: format!("m{id}"),
            peer_urls: vec![format!("http://127.0.0.1:{}", 3000 + id)],
            client_urls: urls.iter().map(|u| u.to_string()).collect(),
            is_learner: learner,
        }
    }

    #[test]
    fn a_sync_keeps_started_voters_in_the_schemes_in_use() {
        let members = [
            member(1, &["http://127.0.0.1:1", "https://127.0.0.1:11"], false),
            member(2, &["http://127.0.0.1:2"], true),
            member(3, &[], false),
            member(4, &["unix://etcd.sock", "http://127.0.0.1:4"], false),
            member(5, &["http://127.0.0.1:1"], false),
        ];
        let http = vec!["http://127.0.0.1:1".to_string()];
        assert_eq!(
            usable_urls(&members, &http),
            ["http://127.0.0.1:1", "http://127.0.0.1:4"]
        );
        let bare = vec!["127.0.0.1:1".to_string()];
        assert_eq!(usable_urls(&members, &bare), usable_urls(&members, &http));
        let https = vec!["https://127.0.0.1:11".to_string()];
        assert_eq!(usable_urls(&members, &https), ["https://127.0.0.1:11"]);
        assert!(usable_urls(&members[1..3], &http).is_empty());
    }
}
