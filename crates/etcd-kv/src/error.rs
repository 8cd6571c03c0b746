//! The client's error type: typed kinds for what callers act on, the gateway's code and
//! message kept, and a message that names the cause and the endpoint.

use etcd_transport::Error as TransportError;
use etcd_wire::{Code, Status};

/// What went wrong underneath a client error: the server's answer (gRPC code and message) or
/// the connection's trouble, with the endpoint it came from. Its `Display` is the whole
/// story in one line, e.g. `cannot connect to http://127.0.0.1:1: tcp connect error:
/// Connection refused (os error 111)`.
#[derive(Clone)]
pub struct Cause(std::sync::Arc<TransportError>);

impl Cause {
    /// The endpoint the cause came from, when one is known.
    pub fn endpoint(&self) -> Option<&str> {
        self.0.endpoint()
    }

    /// The server's status (gRPC code and message), when the server answered with an error.
    pub fn status(&self) -> Option<&Status> {
        self.0.status()
    }

    /// True when no connection could be made.
    pub fn is_connect(&self) -> bool {
        self.0.is_connect()
    }

    /// True for a timeout.
    pub fn is_timeout(&self) -> bool {
        self.0.is_timeout()
    }

    /// True when a write may or may not have been applied.
    pub fn is_outcome_unknown(&self) -> bool {
        self.0.is_outcome_unknown()
    }

    pub(crate) fn transport(&self) -> &TransportError {
        &self.0
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// Its `Display` already tells the whole chain: no further source.
impl std::error::Error for Cause {}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

/// Errors of the etcd client.
///
/// `Clone`: one watch stream's permanent error can end every watch it carried.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The requested revision was compacted away.
    #[error("revision has been compacted (compact revision {compact_revision})")]
    Compacted {
        /// The oldest revision still available; 0 when the server did not say.
        compact_revision: i64,
    },
    /// The requested revision is newer than the store's current one.
    #[error("requested revision is in the future: {0}")]
    FutureRevision(Cause),
    /// The lease does not exist (expired or revoked).
    #[error("lease {lease_id} not found")]
    LeaseNotFound {
        /// The lease that was asked for.
        lease_id: i64,
    },
    /// Something the request names does not exist (member, user, role...).
    #[error("not found: {0}")]
    NotFound(Cause),
    /// No endpoint could serve the request (all down, no leader...).
    #[error("etcd unavailable: {0}")]
    Unavailable(Cause),
    /// The request timed out; [`Error::is_outcome_unknown`] says whether a write may have
    /// been applied.
    #[error("etcd request timed out: {0}")]
    Timeout(Cause),
    /// Authentication or authorization failed (bad credentials, invalid token, permission
    /// denied, auth not enabled...).
    #[error("etcd auth error: {0}")]
    Auth(Cause),
    /// The request is invalid; rejected before anything was sent, or by the server.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong.
        reason: String,
        /// The server's error, when the server rejected it.
        #[source]
        source: Option<Cause>,
    },
    /// Another error answered by the server; its gRPC code and message are in the source.
    #[error("etcd server error: {0}")]
    Server(Cause),
    /// A snapshot failed its checksum, ended early, or could not be written (see
    /// [`Client::snapshot_to`](crate::Client::snapshot_to)).
    #[error("snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
    /// TLS failed with every endpoint tried: a server certificate this client does not
    /// trust (unknown CA, expired, another host name) or a client certificate the server
    /// refused. Not retried; nothing was applied.
    #[error("TLS error: {0}")]
    Tls(Cause),
    /// A connection or decoding problem.
    #[error("{0}")]
    Transport(Cause),
    /// An endpoint answered, but not as etcd does (an HTML page, a 404, garbage, a server
    /// that does not speak HTTP/2 over gRPC): a wrong host, port or path, most likely. The
    /// message names the endpoint and what it answered.
    /// [`ClientBuilder::connect`](crate::ClientBuilder::connect) checks this before
    /// returning a client.
    #[error("{0}")]
    NotEtcd(Cause),
    /// The server's answer is not what the protocol allows.
    #[error("unexpected answer from etcd: {0}")]
    Protocol(String),
    /// A task of this client that the operation relies on has stopped: the driver of a
    /// watch stream, the dispatcher of a callback watch (its callback panicked), a cache's
    /// task. Not an answer of etcd: nothing was sent for the operation, and the same
    /// watch or cache will not recover (create a new one). Its `Display` names what
    /// stopped: `the cache's task has stopped`.
    #[error("{what} has stopped")]
    Stopped {
        /// What stopped, such as `"the cache's task"`.
        what: &'static str,
    },
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
    /// The operation needs something this client's connection does not offer (e.g. a
    /// progress request on a watch without the shared stream).
    #[error("not supported here: {0}")]
    Unsupported(String),
    /// A [`Cache`](crate::Cache) would grow past its
    /// [`max_bytes`](crate::CacheBuilder::max_bytes): it stopped rather than evict, and
    /// every read of it returns this.
    #[error("the cache would hold {needed} bytes, over its limit of {limit}")]
    CacheFull {
        /// The cache's limit.
        limit: usize,
        /// What it would have held.
        needed: usize,
    },
    /// A serializable read found no member as recent as what this client has already seen,
    /// within one request timeout of the first answer behind (or the call's deadline, if
    /// sooner): every member it asked had applied less (lagging, or cut off from the
    /// leader). Reading backwards is refused rather than returned; a linearizable read, or
    /// a later retry, gets a current answer.
    #[error(
        "serializable read behind: {endpoint} answered at revision {revision}, older than \
         revision {floor} this client has already seen, and no member caught up in time"
    )]
    Behind {
        /// The member of the last answer.
        endpoint: String,
        /// The revision it answered at.
        revision: i64,
        /// The client's floor: the newest revision it had seen.
        floor: i64,
    },
    /// This candidate is not, or no longer, the leader of the election.
    #[error("not the leader of election {name:?}")]
    NotLeader {
        /// The election's name.
        name: String,
    },
    /// A lock taken with [`Lock::max_hold`](crate::Lock::max_hold) was held past that
    /// time: the work under it was cancelled, and etcd released the lock when its lease
    /// ran out (someone else may hold it now). Not a failure of etcd or of the
    /// connection: the work took longer than the hold allowed.
    #[error(
        "lock {name:?} was held past its max_hold of {}: the work was cancelled and the lock \
         released",
        DisplaySecs(*max_hold)
    )]
    MaxHoldExceeded {
        /// The lock's name.
        name: String,
        /// The hold time the lock was taken with (as given, before rounding up to whole
        /// seconds).
        max_hold: std::time::Duration,
    },
    /// A fenced write ([`LockGuard::fenced`](crate::LockGuard::fenced),
    /// [`Leadership::fenced`](crate::Leadership::fenced)) found the lock or leadership it
    /// depends on no longer held: its key is gone (released, resigned, its lease expired
    /// or revoked) or belongs to a later holder. Nothing was written.
    #[error(
        "not the owner: {key:?} is no longer held with fencing token {token}; nothing was \
         written"
    )]
    NotOwner {
        /// The lock or leader key (in the client's namespace).
        key: String,
        /// The create revision the key was held with (the fencing token).
        token: i64,
    },
    /// A [`Generations::commit`](crate::Generations::commit) found that another commit
    /// made its generation current first; the staged generation was removed and the
    /// current one is unchanged by this commit.
    #[error(
        "commit conflict under {prefix:?}: another commit made generation {} current \
         first; nothing of this commit is visible",
        .current.as_deref().unwrap_or("(none)")
    )]
    CommitConflict {
        /// The prefix of the generations (in the client's namespace).
        prefix: String,
        /// The generation that is current now (`None`: none is).
        current: Option<String>,
    },
    /// An error of your own (or a decoding error: a value that is not UTF-8, not a
    /// number...) raised inside a body that returns this crate's [`Result`], such as
    /// [`Client::with_lock`](crate::Client::with_lock) and
    /// [`Lock::try_run`](crate::Lock::try_run). `?` converts [`std::str::Utf8Error`],
    /// [`std::string::FromUtf8Error`], [`std::num::ParseIntError`] and
    /// [`std::num::ParseFloatError`] into it; wrap any other error with [`Error::other`].
    /// Its `Display` and `source()` are the wrapped error's; get it back with
    /// [`Error::downcast_other_ref`].
    #[error(transparent)]
    Other(std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>),
}

/// A duration as seconds, the way a person writes it: `5s`, `1.5s`.
struct DisplaySecs(std::time::Duration);

impl std::fmt::Display for DisplaySecs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.subsec_nanos() == 0 {
            write!(f, "{}s", self.0.as_secs())
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

macro_rules! other_from {
    ($($t:ty),*) => {$(
        /// Wraps the error as [`Error::Other`], so that `?` works on it in a body that
        /// returns this crate's [`Result`].
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::other(e)
            }
        }
    )*};
}

other_from!(
    std::str::Utf8Error,
    std::string::FromUtf8Error,
    std::num::ParseIntError,
    std::num::ParseFloatError
);

impl Error {
    /// Wraps an error of your own as [`Error::Other`], to return it from a body that
    /// returns this crate's [`Result`] (`Err(Error::other(e))?`, or
    /// `.map_err(Error::other)?`). An [`Error`] given here is returned as it is, not
    /// wrapped.
    ///
    /// ```
    /// #[derive(Debug)]
    /// struct OutOfStock;
    /// impl std::fmt::Display for OutOfStock {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("out of stock")
    ///     }
    /// }
    /// impl std::error::Error for OutOfStock {}
    ///
    /// let e = etcd_kv::Error::other(OutOfStock);
    /// assert_eq!(e.to_string(), "out of stock");
    /// assert!(e.downcast_other_ref::<OutOfStock>().is_some());
    /// ```
    pub fn other<E>(error: E) -> Error
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let boxed: Box<dyn std::error::Error + Send + Sync + 'static> = Box::new(error);
        match boxed.downcast::<Error>() {
            Ok(e) => *e,
            Err(boxed) => Error::Other(std::sync::Arc::from(boxed)),
        }
    }

    /// The error wrapped by [`Error::other`] (or a `?` conversion), if it is an `E`.
    pub fn downcast_other_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Error::Other(e) => e.downcast_ref::<E>(),
            _ => None,
        }
    }

    /// True for [`Error::MaxHoldExceeded`]: the work under a lock ran past the lock's
    /// [`max_hold`](crate::Lock::max_hold) and was cancelled.
    pub fn is_max_hold_exceeded(&self) -> bool {
        matches!(self, Error::MaxHoldExceeded { .. })
    }

    /// True for [`Error::NotOwner`]: a fenced write was refused because its lock or
    /// leadership is no longer held; nothing was written.
    pub fn is_not_owner(&self) -> bool {
        matches!(self, Error::NotOwner { .. })
    }

    /// True for [`Error::CommitConflict`]: another commit of the same generations won.
    pub fn is_commit_conflict(&self) -> bool {
        matches!(self, Error::CommitConflict { .. })
    }

    /// An [`Error::Stopped`]: `what` (a task of this client) has stopped.
    pub(crate) fn stopped(what: &'static str) -> Error {
        Error::Stopped { what }
    }

    /// An [`Error::InvalidInput`] raised by the client before sending.
    pub(crate) fn invalid(reason: impl Into<String>) -> Error {
        Error::InvalidInput {
            reason: reason.into(),
            source: None,
        }
    }

    /// What went wrong underneath, if the error came from the server or the connection.
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            Error::FutureRevision(e)
            | Error::Tls(e)
            | Error::NotFound(e)
            | Error::Unavailable(e)
            | Error::Timeout(e)
            | Error::Auth(e)
            | Error::Server(e)
            | Error::NotEtcd(e)
            | Error::Transport(e) => Some(e),
            Error::InvalidInput { source, .. } => source.as_ref(),
            _ => None,
        }
    }

    /// The gateway's status (gRPC code and message), when the server answered with an error.
    pub fn status(&self) -> Option<&Status> {
        self.cause().and_then(Cause::status)
    }

    /// The endpoint the error came from, when one is known.
    pub fn endpoint(&self) -> Option<&str> {
        self.cause().and_then(Cause::endpoint)
    }

    /// The gateway's gRPC code, when the server answered with an error.
    pub fn code(&self) -> Option<Code> {
        self.status().map(Status::grpc_code)
    }

    /// True for a timeout (of a request, or of waiting for a lock).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_) | Error::LockTimeout { .. })
            || self.cause().is_some_and(Cause::is_timeout)
    }

    /// True when no connection to any endpoint could be made: the request never left.
    pub fn is_connect(&self) -> bool {
        self.cause().is_some_and(Cause::is_connect)
    }

    /// True when a write may or may not have been applied: check before retrying it.
    pub fn is_outcome_unknown(&self) -> bool {
        self.cause().is_some_and(Cause::is_outcome_unknown)
    }

    /// True when an answer was larger than the client's response limit: ask for less
    /// (a smaller page).
    pub fn is_response_too_large(&self) -> bool {
        let mut cause = self.cause().map(Cause::transport);
        while let Some(e) = cause {
            match e {
                TransportError::ResponseTooLarge { .. } => return true,
                TransportError::Unavailable { last, .. } => cause = Some(last),
                _ => return false,
            }
        }
        false
    }

    /// True when an endpoint answered, but not as etcd does (see [`Error::NotEtcd`]).
    pub fn is_not_etcd(&self) -> bool {
        matches!(self, Error::NotEtcd(_))
    }

    /// True for a certificate problem (see [`Error::Tls`]).
    pub fn is_tls(&self) -> bool {
        matches!(self, Error::Tls(_))
    }

    /// True when a cache stopped at its memory limit (see [`Error::CacheFull`]).
    pub fn is_cache_full(&self) -> bool {
        matches!(self, Error::CacheFull { .. })
    }

    /// True when a task of this client that the operation relies on has stopped (see
    /// [`Error::Stopped`]): neither a timeout, nor a connection error, nor an unknown
    /// outcome, and not worth retrying on the same watch or cache.
    pub fn is_stopped(&self) -> bool {
        matches!(self, Error::Stopped { .. })
    }

    /// True for a permission or authentication error (the same for unary calls and watches).
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::Auth(_))
    }
}

impl Error {
    /// A timeout of something other than one request (a watch not confirmed in time...).
    pub(crate) fn timeout(endpoint: &str, after: std::time::Duration, what: &str) -> Error {
        tracing::debug!(endpoint, ?after, what, "timed out");
        Error::from_transport(TransportError::Timeout {
            endpoint: endpoint.to_string(),
            after,
            outcome_unknown: false,
        })
    }

    /// The typed error for a status the server reported inside a stream.
    pub(crate) fn server(endpoint: &str, status: Status) -> Error {
        Error::from_transport(TransportError::Server {
            endpoint: endpoint.to_string(),
            status,
        })
    }

    /// True for an error a stream recovers from by reconnecting (a broken or timed out
    /// connection, no leader, an unavailable server); false for those that would happen
    /// again (permission denied, an undecodable or oversized message, a compaction...).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Error::Unavailable(_)
            | Error::Timeout(_)
            | Error::Unsupported(_)
            | Error::Behind { .. } => true,
            Error::Transport(cause) => matches!(
                cause.transport(),
                TransportError::Io { .. }
                    | TransportError::Connect { .. }
                    | TransportError::Timeout { .. }
                    | TransportError::Http { .. }
            ),
            Error::Server(cause) => matches!(
                cause.status().map(Status::grpc_code),
                Some(Code::Unknown | Code::Internal | Code::Aborted | Code::Cancelled)
            ),
            _ => false,
        }
    }

    /// The typed error for a transport error.
    pub(crate) fn from_transport(e: TransportError) -> Error {
        let e = Cause(std::sync::Arc::new(e));
        if e.is_timeout() {
            return Error::Timeout(e);
        }
        if e.transport().is_tls() {
            return Error::Tls(e);
        }
        if e.transport().is_not_etcd() {
            return Error::NotEtcd(e);
        }
        if let TransportError::Config(reason) = e.transport() {
            // A bad endpoint, token or request refused before anything was sent: the
            // message already says what to write instead.
            return Error::invalid(reason.clone());
        }
        let Some(status) = e.status() else {
            return match e.transport() {
                TransportError::Unavailable { .. } | TransportError::Connect { .. } => {
                    Error::Unavailable(e)
                }
                _ => Error::Transport(e),
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
            // No token where auth is on: etcd says the (token's) user name is empty.
            Code::InvalidArgument
                if message.contains("authentication failed")
                    || message.contains("user name is empty") =>
            {
                Error::Auth(e)
            }
            Code::InvalidArgument => Error::InvalidInput {
                reason: status.message.clone(),
                source: Some(e),
            },
            // A request over the server's gRPC message limit (--max-request-bytes plus
            // 512 KiB) is refused before etcd itself sees it. "received ..." may also be a
            // gateway whose own gRPC client caps answers (4 MiB before etcd 3.4): then it
            // is the answer to a read (the pager halves its page on it).
            Code::ResourceExhausted if message.contains("larger than max") => Error::InvalidInput {
                reason: if message.contains("received message") {
                    format!(
                        "the request (or, for a read through a gateway with a limit, its \
                         answer) is too large for the server ({message})"
                    )
                } else {
                    format!("the request is too large for the server ({message})")
                },
                source: Some(e),
            },
            _ => Error::Server(e),
        }
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a kept lease was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseLost {
    /// The server no longer knows the lease: it expired or was revoked.
    Expired,
    /// No refresh succeeded before the lease's deadline: it must be assumed expired.
    Unreachable {
        /// The last error seen.
        last_error: String,
    },
}

impl std::fmt::Display for LeaseLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseLost::Expired => f.write_str("the lease expired or was revoked"),
            LeaseLost::Unreachable { last_error } => {
                write!(
                    f,
                    "the lease could not be refreshed before its deadline: {last_error}"
                )
            }
        }
    }
}

/// What is wrong with a snapshot ([`Error::Snapshot`] from
/// [`Client::snapshot_to`](crate::Client::snapshot_to), or from
/// [`verify_snapshot`](crate::verify_snapshot)). On any error the writer holds an incomplete or corrupt
/// snapshot: discard it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Writing to the writer failed.
    #[error("writing the snapshot failed: {0}")]
    Write(#[source] std::sync::Arc<std::io::Error>),
    /// The stream ended before the whole snapshot and its checksum arrived.
    #[error("the snapshot stream ended early: {received} bytes of {}", expected_text(*.expected))]
    Truncated {
        /// Bytes received (written), checksum included.
        received: u64,
        /// Bytes announced by the server (database and checksum), when it said.
        expected: Option<u64>,
    },
    /// The last 32 bytes are not the SHA-256 of the bytes before them.
    #[error("the snapshot's checksum does not match its content ({} bytes)", .size)]
    Checksum {
        /// Bytes received, checksum included.
        size: u64,
        /// The checksum the stream ended with.
        expected: [u8; 32],
        /// The SHA-256 of the bytes before it.
        actual: [u8; 32],
    },
}

fn expected_text(expected: Option<u64>) -> String {
    match expected {
        Some(n) => n.to_string(),
        None => "an unknown number".to_string(),
    }
}

impl SnapshotError {
    /// True for a snapshot whose content does not match its checksum.
    pub fn is_checksum(&self) -> bool {
        matches!(self, SnapshotError::Checksum { .. })
    }

    /// True for a stream that ended before the snapshot was whole.
    pub fn is_truncated(&self) -> bool {
        matches!(self, SnapshotError::Truncated { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("could not bill")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_stopped_task_is_named_and_is_neither_transient_nor_an_unknown_outcome() {
        let e = Error::stopped("the watch stream's task");
        assert_eq!(e.to_string(), "the watch stream's task has stopped");
        assert!(e.is_stopped());
        assert!(
            !e.is_transient(),
            "a stopped task does not come back by reconnecting"
        );
        assert!(!e.is_outcome_unknown() && !e.is_timeout() && !e.is_connect());
        assert!(!e.is_auth() && e.cause().is_none() && e.code().is_none());
        assert!(!Error::Protocol("garbage".into()).is_stopped());
    }

    #[test]
    fn other_errors_keep_their_message_source_and_type() {
        let e = Error::other(Outer(std::io::Error::other("card declined")));
        assert_eq!(e.to_string(), "could not bill");
        let source = std::error::Error::source(&e).expect("the wrapped error's source");
        assert_eq!(source.to_string(), "card declined");
        assert!(e.downcast_other_ref::<Outer>().is_some());
        assert!(e.downcast_other_ref::<std::io::Error>().is_none());
        assert!(!e.is_timeout() && !e.is_connect() && e.cause().is_none());
        let clone = e.clone();
        assert_eq!(clone.to_string(), e.to_string());

        fn utf8() -> Result<usize> {
            let bytes = vec![b'a', 0xff];
            Ok(std::str::from_utf8(&bytes)?.len())
        }
        fn number() -> Result<i64> {
            Ok("12x".parse::<i64>()?)
        }
        fn owned() -> Result<String> {
            Ok(String::from_utf8(vec![0xc3])?)
        }
        fn float() -> Result<f64> {
            Ok("x".parse::<f64>()?)
        }
        let e = utf8().unwrap_err();
        assert!(e.downcast_other_ref::<std::str::Utf8Error>().is_some());
        assert!(e.to_string().starts_with("invalid utf-8"), "{e}");
        assert!(number()
            .unwrap_err()
            .downcast_other_ref::<std::num::ParseIntError>()
            .is_some());
        assert!(owned()
            .unwrap_err()
            .downcast_other_ref::<std::string::FromUtf8Error>()
            .is_some());
        assert!(float()
            .unwrap_err()
            .downcast_other_ref::<std::num::ParseFloatError>()
            .is_some());
        // An etcd error given to other() stays itself.
        let e = Error::other(Error::NotLeader { name: "e".into() });
        assert!(matches!(e, Error::NotLeader { .. }), "{e:?}");
    }

    #[test]
    fn max_hold_exceeded_names_the_lock_and_its_hold() {
        let e = Error::MaxHoldExceeded {
            name: "x".into(),
            max_hold: Duration::from_secs(5),
        };
        assert_eq!(
            e.to_string(),
            "lock \"x\" was held past its max_hold of 5s: the work was cancelled and the lock \
             released"
        );
        assert!(e.is_max_hold_exceeded() && !e.is_timeout());
        let e = Error::MaxHoldExceeded {
            name: "y".into(),
            max_hold: Duration::from_millis(1500),
        };
        assert!(e.to_string().contains("max_hold of 1.5s"), "{e}");
    }
}
