//! The endpoint list of a transport: each endpoint with the connections held to it
//! ([`Target`]), the list at one moment and where calls start in it ([`Endpoints`]), and
//! the rules of a new list ([`Endpoints::replaced`]).
//!
//! Everything a transport keeps per endpoint lives in its `Target`, so that the list can
//! change at run time: a call takes the list once and works on it to the end; a kept
//! endpoint keeps its connections and API prefix; a dropped one closes its connections
//! when the last call using it ends.

use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::pool::IdleConns;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// An endpoint and the connections held to it.
pub(crate) struct Target {
    endpoint: Endpoint,
    /// Idle HTTP/1.1 connections (the gateway's pool).
    pub(crate) idle: IdleConns,
    /// The HTTP/2 connection (native gRPC).
    #[cfg(feature = "grpc")]
    pub(crate) grpc: crate::grpc::Slot,
}

impl std::ops::Deref for Target {
    type Target = Endpoint;

    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

/// The endpoint list at one moment, and where calls start in it.
pub(crate) struct Endpoints {
    list: Vec<Arc<Target>>,
    /// The index of the endpoint that answered last (modulo the length).
    preferred: AtomicUsize,
    /// The index of the member that led when last asked ([`NO_LEADER`]: not known), where
    /// writes start.
    leader: AtomicUsize,
}

/// No leader known.
const NO_LEADER: usize = usize::MAX;

/// How a list is made: what its URLs are parsed with and what they may be.
pub(crate) struct ListRules {
    /// The configured API prefix, if any.
    pub(crate) api_prefix: Option<String>,
    /// Whether `https://` endpoints can be verified (the connector's roots are chosen
    /// when the transport is built).
    pub(crate) tls_ready: bool,
    /// Whether a list starts at its first endpoint rather than at a spread start.
    pub(crate) prefer_first: bool,
}

impl Endpoints {
    /// The list of `urls` a transport is built with.
    pub(crate) fn new(urls: &[String], rules: &ListRules) -> Result<Endpoints, Error> {
        let list = parse(urls, rules.api_prefix.as_deref())?;
        let start = if rules.prefer_first {
            0
        } else {
            spread_start() % list.len()
        };
        Ok(Endpoints {
            list,
            preferred: AtomicUsize::new(start),
            leader: AtomicUsize::new(NO_LEADER),
        })
    }

    /// The list that replaces this one for `urls`, or `None` when it would be the same. An
    /// endpoint in both is kept (its connections and prefix with it); the preferred one
    /// stays preferred while it is in the new list. An invalid URL, an empty list, or an
    /// `https://` URL the transport cannot verify is an [`Error::Config`].
    pub(crate) fn replaced(
        &self,
        urls: &[String],
        rules: &ListRules,
    ) -> Result<Option<Endpoints>, Error> {
        if urls.is_empty() {
            return Err(Error::Config(
                "set_endpoints: no endpoint given: a transport needs at least one".into(),
            ));
        }
        let parsed = parse(urls, rules.api_prefix.as_deref())?;
        if !rules.tls_ready {
            if let Some(e) = parsed.iter().find(|e| e.is_https()) {
                return Err(Error::Config(format!(
                    "set_endpoints: {} is an https:// endpoint, but this transport was built \
                     with http:// endpoints only and no TLS settings: build it with .tls(..)",
                    e.base
                )));
            }
        }
        let mut list: Vec<Arc<Target>> = Vec::with_capacity(parsed.len());
        for target in parsed {
            if list.iter().any(|e| e.base == target.base) {
                continue;
            }
            list.push(match self.index_of(&target.base) {
                Some(i) => self.list[i].clone(),
                None => target,
            });
        }
        let same =
            list.len() == self.len() && list.iter().zip(&self.list).all(|(a, b)| Arc::ptr_eq(a, b));
        if same {
            return Ok(None);
        }
        let current = &self.list[self.preferred()].base;
        let preferred = match list.iter().position(|e| &e.base == current) {
            Some(i) => i,
            None if rules.prefer_first => 0,
            None => spread_start() % list.len(),
        };
        Ok(Some(Endpoints {
            list,
            preferred: AtomicUsize::new(preferred),
            leader: AtomicUsize::new(NO_LEADER),
        }))
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether some endpoint is an `https://` one.
    pub(crate) fn any_https(&self) -> bool {
        self.list.iter().any(|e| e.is_https())
    }

    /// The endpoint URLs, in order.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.list.iter().map(|e| e.base.clone()).collect()
    }

    /// Where calls start.
    pub(crate) fn preferred(&self) -> usize {
        self.preferred.load(Ordering::Relaxed) % self.list.len()
    }

    /// Makes calls start at `idx`.
    pub(crate) fn prefer(&self, idx: usize) {
        self.preferred.store(idx, Ordering::Relaxed);
    }

    /// Makes calls start after `idx` unless they already moved on from it.
    pub(crate) fn demote(&self, idx: usize) {
        let _ = self.preferred.compare_exchange(
            idx,
            (idx + 1) % self.len(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// The index of the member that led when last asked, if known.
    pub(crate) fn leader(&self) -> Option<usize> {
        let idx = self.leader.load(Ordering::Relaxed);
        (idx < self.list.len()).then_some(idx)
    }

    /// Notes that the member at `idx` leads (`None`: no member is known to).
    pub(crate) fn set_leader(&self, idx: Option<usize>) {
        self.leader
            .store(idx.unwrap_or(NO_LEADER), Ordering::Relaxed);
    }

    /// Forgets that the member at `idx` leads, unless another one was found since.
    pub(crate) fn forget_leader(&self, idx: usize) {
        let _ = self
            .leader
            .compare_exchange(idx, NO_LEADER, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The index of the endpoint whose URL is `base`.
    pub(crate) fn index_of(&self, base: &str) -> Option<usize> {
        self.list.iter().position(|e| e.base == base)
    }
}

impl std::ops::Index<usize> for Endpoints {
    type Output = Arc<Target>;

    fn index(&self, idx: usize) -> &Arc<Target> {
        &self.list[idx]
    }
}

/// Parses endpoint URLs (see [`Endpoint::parse`]).
fn parse(urls: &[String], api_prefix: Option<&str>) -> Result<Vec<Arc<Target>>, Error> {
    urls.iter()
        .map(|url| {
            Endpoint::parse(url, api_prefix).map(|endpoint| {
                Arc::new(Target {
                    endpoint,
                    idle: IdleConns::default(),
                    #[cfg(feature = "grpc")]
                    grpc: crate::grpc::Slot::default(),
                })
            })
        })
        .collect()
}

/// Where a new list starts (modulo its length): the clients of a process one after the
/// other from a random place, so that clients built with the same list spread evenly over
/// the members, and processes too.
fn spread_start() -> usize {
    static NEXT: std::sync::OnceLock<AtomicUsize> = std::sync::OnceLock::new();
    NEXT.get_or_init(|| AtomicUsize::new(usize::from(rand::random::<u16>())))
        .fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: ListRules = ListRules {
        api_prefix: None,
        tls_ready: false,
        prefer_first: true,
    };

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn a_new_list_keeps_what_it_shares_with_the_old_one() {
        let old =
            Endpoints::new(&urls(&["http://127.0.0.1:1", "http://127.0.0.1:2"]), &RULES).unwrap();
        old.prefer(1);
        let new = old
            .replaced(
                &urls(&["127.0.0.1:3", "http://127.0.0.1:2", "http://127.0.0.1:2"]),
                &RULES,
            )
            .unwrap()
            .expect("a new list");
        assert_eq!(new.urls(), ["http://127.0.0.1:3", "http://127.0.0.1:2"]);
        // The kept endpoint is the same one (its connections and prefix with it), and
        // still the preferred one.
        assert!(Arc::ptr_eq(&new[1], &old[1]));
        assert_eq!(new.preferred(), 1);
        // The same list again is no new list.
        let same = urls(&["http://127.0.0.1:3", "http://127.0.0.1:2"]);
        assert!(new.replaced(&same, &RULES).unwrap().is_none());
        // Without the preferred endpoint, a list that prefers the first starts there.
        let other = new
            .replaced(&urls(&["http://127.0.0.1:4", "http://127.0.0.1:3"]), &RULES)
            .unwrap()
            .expect("a new list");
        assert_eq!(other.preferred(), 0);
        assert!(Arc::ptr_eq(&other[1], &new[0]));
    }

    #[test]
    fn a_bad_list_is_refused() {
        let old = Endpoints::new(&urls(&["http://127.0.0.1:1"]), &RULES).unwrap();
        for bad in [
            vec![],
            vec!["http://127.0.0.1"],
            vec!["http://127.0.0.1:2", "ftp://127.0.0.1:3"],
            vec!["https://127.0.0.1:2"],
        ] {
            let e = old.replaced(&urls(&bad), &RULES).err().expect("refused");
            assert!(matches!(e, Error::Config(_)), "{bad:?}: {e}");
        }
        // A transport that can verify certificates may move to https:// endpoints.
        let tls = ListRules {
            tls_ready: true,
            ..RULES
        };
        let new = old.replaced(&urls(&["https://127.0.0.1:2"]), &tls).unwrap();
        assert_eq!(new.expect("a new list").urls(), ["https://127.0.0.1:2"]);
    }
}
