//! `Error::from_transport` as a table: every kind of transport error (and every server
//! status it tells apart) → the client's error kind and its predicates.

use crate::error::Error;
use etcd_transport::Error as TransportError;
use etcd_wire::{Code, DecodeError, Status};
use std::time::Duration;

const ENDPOINT: &str = "http://127.0.0.1:2379";

/// The client error's variant, by name.
fn kind(e: &Error) -> &'static str {
    match e {
        Error::Compacted { .. } => "Compacted",
        Error::FutureRevision(_) => "FutureRevision",
        Error::NotFound(_) => "NotFound",
        Error::Unavailable(_) => "Unavailable",
        Error::Timeout(_) => "Timeout",
        Error::Auth(_) => "Auth",
        Error::InvalidInput { .. } => "InvalidInput",
        Error::Server(_) => "Server",
        Error::Tls(_) => "Tls",
        Error::Transport(_) => "Transport",
        Error::NotEtcd(_) => "NotEtcd",
        other => panic!("from_transport made {other:?}"),
    }
}

/// A predicate of [`Error`].
type Predicate = fn(&Error) -> bool;

/// The predicates checked, by name.
const PREDICATES: [(&str, Predicate); 7] = [
    ("timeout", Error::is_timeout),
    ("connect", Error::is_connect),
    ("unknown", Error::is_outcome_unknown),
    ("tls", Error::is_tls),
    ("not_etcd", Error::is_not_etcd),
    ("auth", Error::is_auth),
    ("too_large", Error::is_response_too_large),
];

fn server(code: Code, message: &str) -> TransportError {
    let number = (0..=16)
        .find(|n| Code::from_i32(*n) == code)
        .expect("a code of 0..=16");
    TransportError::Server {
        endpoint: ENDPOINT.into(),
        status: Status::new(number, message),
    }
}

fn http(status: u16) -> TransportError {
    TransportError::Http {
        endpoint: ENDPOINT.into(),
        status,
        body: "<html><title>Bad Gateway</title></html>".into(),
    }
}

fn connect() -> TransportError {
    TransportError::Connect {
        endpoint: ENDPOINT.into(),
        source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
    }
}

fn handshake() -> TransportError {
    TransportError::TlsHandshake {
        endpoint: ENDPOINT.into(),
        source: "invalid peer certificate: UnknownIssuer".into(),
    }
}

fn timeout(outcome_unknown: bool) -> TransportError {
    TransportError::Timeout {
        endpoint: ENDPOINT.into(),
        after: Duration::from_secs(1),
        outcome_unknown,
    }
}

fn io(outcome_unknown: bool) -> TransportError {
    TransportError::Io {
        endpoint: ENDPOINT.into(),
        outcome_unknown,
        source: std::io::Error::from(std::io::ErrorKind::ConnectionReset).into(),
    }
}

fn too_large() -> TransportError {
    TransportError::ResponseTooLarge {
        endpoint: ENDPOINT.into(),
        limit: 1 << 20,
    }
}

fn not_etcd() -> TransportError {
    TransportError::NotEtcd {
        endpoint: ENDPOINT.into(),
        reason: "GET /version answered HTTP 404".into(),
    }
}

/// Every endpoint failed, the last like this.
fn exhausted(last: TransportError) -> TransportError {
    TransportError::Unavailable {
        attempts: 3,
        last: Box::new(last),
    }
}

/// One row: (case, transport error, client error kind, the predicates that hold).
type Row = (&'static str, TransportError, &'static str, &'static str);

fn table() -> Vec<Row> {
    use Code::*;
    vec![
        // Server answers, by code and message.
        (
            "compacted",
            server(
                OutOfRange,
                "etcdserver: mvcc: required revision has been compacted",
            ),
            "Compacted",
            "",
        ),
        (
            "future revision",
            server(
                OutOfRange,
                "etcdserver: mvcc: required revision is a future revision",
            ),
            "FutureRevision",
            "",
        ),
        (
            "other out of range",
            server(OutOfRange, "etcdserver: something else"),
            "Server",
            "",
        ),
        (
            "not found",
            server(NotFound, "etcdserver: requested lease not found"),
            "NotFound",
            "",
        ),
        (
            "no leader",
            server(Unavailable, "etcdserver: no leader"),
            "Unavailable",
            "",
        ),
        (
            "proposal timed out",
            server(Unavailable, "etcdserver: request timed out"),
            "Unavailable",
            "unknown",
        ),
        (
            "deadline exceeded",
            server(DeadlineExceeded, "context deadline exceeded"),
            "Timeout",
            "timeout unknown",
        ),
        (
            "invalid token",
            server(Unauthenticated, "etcdserver: invalid auth token"),
            "Auth",
            "auth",
        ),
        (
            "permission denied",
            server(PermissionDenied, "etcdserver: permission denied"),
            "Auth",
            "auth",
        ),
        (
            "auth precondition",
            server(
                FailedPrecondition,
                "etcdserver: authentication is not enabled",
            ),
            "Auth",
            "auth",
        ),
        (
            "other precondition",
            server(FailedPrecondition, "etcdserver: member not learner"),
            "Server",
            "",
        ),
        (
            "wrong password",
            server(
                InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password",
            ),
            "Auth",
            "auth",
        ),
        (
            "no token",
            server(InvalidArgument, "etcdserver: user name is empty"),
            "Auth",
            "auth",
        ),
        (
            "invalid argument",
            server(
                InvalidArgument,
                "etcdserver: too many operations in txn request",
            ),
            "InvalidInput",
            "",
        ),
        (
            "request over the gRPC limit",
            server(
                ResourceExhausted,
                "trying to send message larger than max (3145728 vs. 2097152)",
            ),
            "InvalidInput",
            "",
        ),
        (
            "space exceeded",
            server(
                ResourceExhausted,
                "etcdserver: mvcc: database space exceeded",
            ),
            "Server",
            "",
        ),
        (
            "internal",
            server(Internal, "etcdserver: corrupt cluster"),
            "Server",
            "unknown",
        ),
        // Answers that are not etcd's, and connections.
        ("HTTP 502", http(502), "Transport", "unknown"),
        ("HTTP 404", http(404), "Transport", ""),
        ("connect", connect(), "Unavailable", "connect"),
        ("TLS handshake", handshake(), "Tls", "tls"),
        ("timeout, unsent", timeout(false), "Timeout", "timeout"),
        ("timeout, sent", timeout(true), "Timeout", "timeout unknown"),
        ("broken, unsent", io(false), "Transport", ""),
        ("broken, sent", io(true), "Transport", "unknown"),
        (
            "undecodable",
            TransportError::Decode {
                endpoint: ENDPOINT.into(),
                source: DecodeError::MessageTooLarge { limit: 10 },
            },
            "Transport",
            "unknown",
        ),
        ("too large", too_large(), "Transport", "too_large unknown"),
        (
            "upgrade refused",
            TransportError::UpgradeRefused {
                endpoint: ENDPOINT.into(),
                status: 400,
            },
            "Transport",
            "",
        ),
        ("not etcd", not_etcd(), "NotEtcd", "not_etcd"),
        (
            "unencodable",
            TransportError::Encode(serde_json::from_str::<u8>("x").unwrap_err()),
            "Transport",
            "",
        ),
        (
            "bad configuration",
            TransportError::Config("no port in http://x".into()),
            "InvalidInput",
            "",
        ),
        (
            "bad TLS configuration",
            TransportError::Tls("no certificate in the file".into()),
            "Transport",
            "",
        ),
        // Every endpoint failed: judged by the last failure.
        (
            "all: connect",
            exhausted(connect()),
            "Unavailable",
            "connect",
        ),
        (
            "all: timeout, sent",
            exhausted(timeout(true)),
            "Timeout",
            "timeout unknown",
        ),
        ("all: TLS handshake", exhausted(handshake()), "Tls", "tls"),
        (
            "all: not etcd",
            exhausted(not_etcd()),
            "NotEtcd",
            "not_etcd",
        ),
        (
            "all: too large",
            exhausted(too_large()),
            "Unavailable",
            "too_large unknown",
        ),
        (
            "all: no leader",
            exhausted(server(Unavailable, "etcdserver: no leader")),
            "Unavailable",
            "",
        ),
        (
            "all: invalid token",
            exhausted(server(Unauthenticated, "etcdserver: invalid auth token")),
            "Auth",
            "auth",
        ),
    ]
}

#[test]
fn every_transport_error_has_its_kind_and_predicates() {
    for (case, transport, want_kind, want) in table() {
        let status = transport.status().cloned();
        let endpoint = transport.endpoint().map(str::to_string);
        let e = Error::from_transport(transport);
        assert_eq!(kind(&e), want_kind, "{case}: {e:?}");
        for (name, predicate) in PREDICATES {
            let expected = want.split_whitespace().any(|w| w == name);
            assert_eq!(predicate(&e), expected, "{case}: is_{name}() of {e:?}");
        }
        for word in want.split_whitespace() {
            assert!(
                PREDICATES.iter().any(|(name, _)| *name == word),
                "{case}: no predicate {word}"
            );
        }
        // The cause keeps the server's status and the endpoint, where the error has one.
        if let Some(cause) = e.cause() {
            assert_eq!(e.status(), status.as_ref(), "{case}");
            assert_eq!(cause.endpoint().map(str::to_string), endpoint, "{case}");
        } else {
            assert!(
                matches!(e, Error::Compacted { .. } | Error::InvalidInput { .. }),
                "{case}: {e:?} lost its cause"
            );
        }
    }
}
