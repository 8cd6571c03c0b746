//! The client's error type: typed kinds for what callers act on, the gateway's code and
//! message kept in the source.

use crate::lease::LeaseLost;
use etcd_transport::Error as TransportError;
use etcd_wire::{Code, Status};

/// Errors of the etcd client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The requested revision was compacted away.
    #[error("revision has been compacted (compact revision {compact_revision})")]
    Compacted {
        /// The oldest revision still available; 0 when the server did not say.
        compact_revision: i64,
    },
    /// The requested revision is newer than the store's current one.
    #[error("requested revision is in the future")]
    FutureRevision(#[source] TransportError),
    /// The lease does not exist (expired or revoked).
    #[error("lease {lease_id} not found")]
    LeaseNotFound {
        /// The lease that was asked for.
        lease_id: i64,
    },
    /// Something the request names does not exist (member, user, role...).
    #[error("not found")]
    NotFound(#[source] TransportError),
    /// No endpoint could serve the request (all down, no leader...).
    #[error("etcd unavailable")]
    Unavailable(#[source] TransportError),
    /// The request timed out; [`Error::is_outcome_unknown`] says whether a write may have
    /// been applied.
    #[error("etcd request timed out")]
    Timeout(#[source] TransportError),
    /// Authentication or authorization failed (bad credentials, invalid token, permission
    /// denied, auth not enabled...).
    #[error("etcd auth error")]
    Auth(#[source] TransportError),
    /// The request is invalid; rejected before anything was sent, or by the server.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong.
        reason: String,
        /// The server's error, when the server rejected it.
        #[source]
        source: Option<TransportError>,
    },
    /// Another error answered by the server; its gRPC code and message are in the source.
    #[error("etcd server error")]
    Server(#[source] TransportError),
    /// A connection, decoding or configuration problem of the transport.
    #[error("etcd transport error")]
    Transport(#[source] TransportError),
    /// The server's answer is not what the protocol allows.
    #[error("unexpected answer from etcd: {0}")]
    Protocol(String),
    /// Waiting for a lock took longer than its timeout; the waiting key was removed.
    #[error("timed out waiting for lock {name:?}")]
    LockTimeout {
        /// The lock's name.
        name: String,
    },
    /// The session (lease) through which a lock or a leadership was held, or waited for,
    /// is lost, and with it what it held.
    #[error("session lost: {0}")]
    SessionLost(LeaseLost),
    /// This candidate is not, or no longer, the leader of the election.
    #[error("not the leader of election {name:?}")]
    NotLeader {
        /// The election's name.
        name: String,
    },
}

impl Error {
    /// An [`Error::InvalidInput`] raised by the client before sending.
    pub(crate) fn invalid(reason: impl Into<String>) -> Error {
        Error::InvalidInput {
            reason: reason.into(),
            source: None,
        }
    }

    /// The transport error underneath, if any.
    pub fn transport_error(&self) -> Option<&TransportError> {
        match self {
            Error::FutureRevision(e)
            | Error::NotFound(e)
            | Error::Unavailable(e)
            | Error::Timeout(e)
            | Error::Auth(e)
            | Error::Server(e)
            | Error::Transport(e) => Some(e),
            Error::InvalidInput { source, .. } => source.as_ref(),
            _ => None,
        }
    }

    /// The gateway's status (gRPC code and message), when the server answered with an error.
    pub fn status(&self) -> Option<&Status> {
        self.transport_error().and_then(TransportError::status)
    }

    /// The gateway's gRPC code, when the server answered with an error.
    pub fn code(&self) -> Option<Code> {
        self.status().map(Status::grpc_code)
    }

    /// True for a timeout (of a request, or of waiting for a lock).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_) | Error::LockTimeout { .. })
    }

    /// True when a write may or may not have been applied: check before retrying it.
    pub fn is_outcome_unknown(&self) -> bool {
        self.transport_error()
            .is_some_and(TransportError::is_outcome_unknown)
    }
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Error {
        if e.is_timeout() {
            return Error::Timeout(e);
        }
        let Some(status) = e.status() else {
            return match e {
                TransportError::Unavailable { .. } | TransportError::Connect { .. } => {
                    Error::Unavailable(e)
                }
                other => Error::Transport(other),
            };
        };
        let message = status.message.as_str();
        match status.grpc_code() {
            Code::OutOfRange if message.contains("compacted") => Error::Compacted {
                compact_revision: 0,
            },
            Code::OutOfRange if message.contains("future revision") => Error::FutureRevision(e),
            Code::NotFound => Error::NotFound(e),
            Code::Unavailable => Error::Unavailable(e),
            Code::DeadlineExceeded => Error::Timeout(e),
            Code::Unauthenticated | Code::PermissionDenied => Error::Auth(e),
            Code::FailedPrecondition if message.contains("auth") => Error::Auth(e),
            Code::InvalidArgument if message.contains("authentication failed") => Error::Auth(e),
            Code::InvalidArgument => Error::InvalidInput {
                reason: status.message.clone(),
                source: Some(e),
            },
            // A request over the server's gRPC message limit (--max-request-bytes plus
            // 512 KiB) is refused before etcd itself sees it.
            Code::ResourceExhausted if message.contains("larger than max") => Error::InvalidInput {
                reason: format!("the request is too large for the server ({message})"),
                source: Some(e),
            },
            _ => Error::Server(e),
        }
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
