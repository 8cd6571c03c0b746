//! Where a request goes, how long one attempt may take, and what the failover loop hands a
//! protocol for one attempt: the types both protocols and the loop share, with no I/O.

use crate::endpoints::Target;
use crate::error::Error;
use etcd_wire::{Idempotency, Rpc, StreamRpc};
use http::HeaderValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Where a request goes and how it may be retried.
#[derive(Clone, Copy)]
pub(crate) struct Route<'a> {
    /// The method path after the API prefix.
    pub(crate) method: &'a str,
    pub(crate) idempotency: Idempotency,
    /// Whether to send the require-leader header (when the transport is configured to).
    pub(crate) require_leader: bool,
    /// The whole call's deadline, retries included (`None`: none).
    pub(crate) deadline: Option<Duration>,
}

impl Route<'static> {
    /// The route of a unary request: its path, its idempotency and its need of a leader.
    pub(crate) fn rpc<R: Rpc>(request: &R, deadline: Option<Duration>) -> Self {
        Route {
            method: R::PATH,
            idempotency: request.idempotency(),
            require_leader: R::REQUIRE_LEADER,
            deadline,
        }
    }

    /// The route of a streaming call: opening it is safe to repeat.
    pub(crate) fn stream<R: StreamRpc>(deadline: Option<Duration>) -> Self {
        Route {
            method: R::PATH,
            idempotency: Idempotency::Idempotent,
            require_leader: R::REQUIRE_LEADER,
            deadline,
        }
    }
}

impl<'a> Route<'a> {
    /// The route of an untyped gateway call to `method`, which asks for a leader.
    pub(crate) fn untyped(
        method: &'a str,
        idempotency: Idempotency,
        deadline: Option<Duration>,
    ) -> Self {
        Route {
            method,
            idempotency,
            require_leader: true,
            deadline,
        }
    }

    /// This route answered by any member, with a leader or not.
    pub(crate) fn any_member(self) -> Self {
        Route {
            require_leader: false,
            ..self
        }
    }
}

/// The time limit of one attempt: the request timeout, or what is left of the call's
/// deadline when that is sooner.
#[derive(Clone, Copy)]
pub(crate) struct AttemptLimit {
    timeout: Option<Duration>,
    /// What an expiry reports: the call's deadline when that is what ended it.
    reported: Option<Duration>,
}

impl AttemptLimit {
    /// The limit of an attempt of `route` starting now, with the transport's
    /// `request_timeout` and the call's end `until`.
    pub(crate) fn new(
        request_timeout: Option<Duration>,
        route: Route<'_>,
        until: Option<Instant>,
    ) -> AttemptLimit {
        let left = until.map(|u| u.saturating_duration_since(Instant::now()));
        let timeout = match (request_timeout, left) {
            (Some(t), Some(l)) => Some(t.min(l)),
            (t, l) => t.or(l),
        };
        // When the call's deadline is what ends the attempt, the error names the deadline.
        let reported = match (timeout, left, route.deadline) {
            (Some(t), Some(l), Some(d)) if l <= t => Some(d),
            (t, ..) => t,
        };
        AttemptLimit { timeout, reported }
    }

    /// Runs `work` within the limit; on expiry, a timeout of `endpoint` whose outcome is
    /// unknown when `sent` (the request may have reached the server).
    pub(crate) async fn run<T>(
        self,
        endpoint: &str,
        sent: bool,
        work: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match self.timeout {
            Some(after) => tokio::time::timeout(after, work)
                .await
                .map_err(|_| Error::Timeout {
                    endpoint: endpoint.to_string(),
                    after: self.reported.unwrap_or(after),
                    outcome_unknown: sent,
                })?,
            None => work.await,
        }
    }
}

/// One attempt as the failover loop hands it to a protocol: the endpoint (already probed:
/// its API prefix is known), the token, and the time limit.
pub(crate) struct Attempt<'a> {
    /// The endpoint, held for the attempt: the transport's list may change meanwhile.
    pub(crate) endpoint: Arc<Target>,
    pub(crate) route: Route<'a>,
    /// The auth token to send, if any.
    pub(crate) token: Option<HeaderValue>,
    /// Whether a member without a leader must refuse at once: the route asks for it and
    /// the transport is configured to.
    pub(crate) require_leader: bool,
    pub(crate) limit: AttemptLimit,
}

impl Attempt<'_> {
    /// The endpoint's API prefix (gateway paths start with it): known before an attempt
    /// starts (`/v3` otherwise, as for an answer without a version).
    pub(crate) fn prefix(&self) -> &str {
        self.endpoint.prefix.get().map_or("/v3", String::as_str)
    }
}

/// What an endpoint that answered said: final, never retried on another endpoint (an
/// undecodable answer, an in-stream error of a call the gateway answered at once).
pub(crate) type Answered<T> = Result<T, Error>;
