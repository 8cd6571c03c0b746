//! Following the cluster's membership: [`Client::set_endpoints`], [`Client::sync_endpoints`]
//! and the task [`ClientBuilder::auto_sync`](crate::ClientBuilder::auto_sync) starts.
//!
//! A sync asks `member_list` and keeps the client URLs of the voting members that have
//! started (a learner serves no linearizable read and takes no write; a member added but
//! not started has no client URL yet), in the schemes the client already uses (a client
//! given `https://` endpoints never moves to plain `http://` ones a member also
//! advertises). The transport swaps its list whole: a kept endpoint keeps its connections,
//! calls in flight finish where they started, and watches and keep-alives move when their
//! stream ends (a removed member stops serving, which ends them).

use crate::backend::Backend;
use crate::client::{Client, Inner};
use crate::cluster::Member;
use crate::error::{Error, Result};
use crate::key::Namespace;
use std::sync::{Arc, Weak};
use std::time::Duration;

impl Client {
    /// Replaces the endpoint list at run time (shared by this client's clones). Calls in
    /// flight finish on the endpoints they started with; watches and keep-alives stay on
    /// their member until their stream ends, then reconnect within the new list. An
    /// endpoint kept from the old list keeps its connections; the client stays on its
    /// current endpoint while it is in the new list.
    ///
    /// URLs are checked as [`ClientBuilder::endpoint`](crate::ClientBuilder::endpoint)
    /// checks them. An invalid URL, an empty list, or an `https://` URL for a client built
    /// with neither `https://` endpoints nor [`tls`](crate::ClientBuilder::tls) is
    /// [`Error::InvalidInput`], and changes nothing.
    pub fn set_endpoints<I, S>(&self, urls: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.backend.set_endpoints(urls)
    }

    /// Sets the endpoint list to the cluster's members as `member_list` reports them now:
    /// the client URLs of the voting members that have started (a learner serves no
    /// linearizable read and takes no write; a member added but not started has no client
    /// URL yet), in the schemes this client already uses (a client given `https://`
    /// endpoints never moves to plain `http://` ones a member also advertises). Returns
    /// the list in use afterwards. A member list without such a URL changes nothing (the
    /// client keeps a list that worked rather than none).
    pub async fn sync_endpoints(&self) -> Result<Vec<String>> {
        let members = self.member_list().await?;
        let current = self.endpoints();
        let urls = usable_urls(&members, &current);
        if urls.is_empty() {
            tracing::warn!(
                members = members.len(),
                "member list without a usable client URL: the endpoints stay as they are"
            );
            return Ok(current);
        }
        self.set_endpoints(&urls)?;
        Ok(self.endpoints())
    }
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
    for member in members.iter().filter(|m| !m.is_learner()) {
        for url in member.client_urls() {
            let s = scheme(url);
            if s != "other" && schemes.contains(&s) && !urls.contains(url) {
                urls.push(url.clone());
            }
        }
    }
    urls
}

/// Starts the task that syncs the endpoints of the client `inner` every `interval`,
/// first `interval` after now, until the client is dropped (the task holds it weakly).
/// Needs a tokio runtime: a client built outside one gets [`Error::InvalidInput`].
pub(crate) fn start_auto_sync(inner: &Arc<Inner>, interval: Duration) -> Result<()> {
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
    let weak: Weak<Inner> = Arc::downgrade(inner);
    runtime.spawn(async move {
        let start = tokio::time::Instant::now() + interval;
        let mut tick = tokio::time::interval_at(start, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let client = Client {
                inner,
                namespace: Namespace::default(),
                deadline: None,
            };
            match client.sync_endpoints().await {
                Ok(list) => tracing::trace!(endpoints = ?list, "endpoints synced"),
                Err(e) => {
                    tracing::debug!(error = %e, "endpoint sync failed; next at the next interval")
                }
            }
        }
    });
    Ok(())
}

impl Backend {
    /// Replaces the endpoint list.
    pub(crate) fn set_endpoints<I, S>(&self, urls: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        match self {
            Backend::Transport(t) => t.set_endpoints(urls).map_err(Error::from_transport),
            #[cfg(test)]
            Backend::Script(_) => Err(Error::Unsupported(
                "the scripted backend has a fixed endpoint list".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcd_wire::cluster as wc;

    fn member(id: u64, urls: &[&str], learner: bool) -> Member {
        Member::from(wc::Member {
            id,
            name: format!("m{id}"),
            peer_urls: vec![format!("http://127.0.0.1:{}", 3000 + id)],
            client_urls: urls.iter().map(|u| u.to_string()).collect(),
            is_learner: learner,
        })
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
