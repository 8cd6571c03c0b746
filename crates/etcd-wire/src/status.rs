//! Error bodies of the gateway: unary error answers and in-stream error messages.

use serde::{Deserialize, Serialize};
use std::fmt;

/// gRPC status codes, as the gateway reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// 0: not an error.
    Ok,
    /// 1: the operation was cancelled.
    Cancelled,
    /// 2: unknown error.
    Unknown,
    /// 3: the request is invalid (too many txn ops, bad base64, request too large...).
    InvalidArgument,
    /// 4: the deadline expired.
    DeadlineExceeded,
    /// 5: not found (e.g. "requested lease not found").
    NotFound,
    /// 6: already exists.
    AlreadyExists,
    /// 7: permission denied.
    PermissionDenied,
    /// 8: resource exhausted (e.g. "database space exceeded").
    ResourceExhausted,
    /// 9: failed precondition.
    FailedPrecondition,
    /// 10: aborted.
    Aborted,
    /// 11: out of range (compacted or future revision).
    OutOfRange,
    /// 12: not implemented.
    Unimplemented,
    /// 13: internal error.
    Internal,
    /// 14: unavailable (e.g. "no leader").
    Unavailable,
    /// 15: data loss.
    DataLoss,
    /// 16: unauthenticated (e.g. "invalid auth token").
    Unauthenticated,
    /// A code outside 0..=16.
    Other(i32),
}

impl Code {
    /// The code for a gRPC status number.
    pub fn from_i32(n: i32) -> Code {
        match n {
            0 => Code::Ok,
            1 => Code::Cancelled,
            2 => Code::Unknown,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            10 => Code::Aborted,
            11 => Code::OutOfRange,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            15 => Code::DataLoss,
            16 => Code::Unauthenticated,
            other => Code::Other(other),
        }
    }

    /// The gRPC status number.
    pub fn as_i32(self) -> i32 {
        match self {
            Code::Ok => 0,
            Code::Cancelled => 1,
            Code::Unknown => 2,
            Code::InvalidArgument => 3,
            Code::DeadlineExceeded => 4,
            Code::NotFound => 5,
            Code::AlreadyExists => 6,
            Code::PermissionDenied => 7,
            Code::ResourceExhausted => 8,
            Code::FailedPrecondition => 9,
            Code::Aborted => 10,
            Code::OutOfRange => 11,
            Code::Unimplemented => 12,
            Code::Internal => 13,
            Code::Unavailable => 14,
            Code::DataLoss => 15,
            Code::Unauthenticated => 16,
            Code::Other(n) => n,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::Other(n) => write!(f, "code {n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// An error reported by the gateway, decoded from any server version's format.
///
/// The gateway's format follows its grpc-gateway version, not etcd's: v1 (etcd up to 3.5 as
/// etcd releases it) or v2 (etcd 3.6, and Debian's etcd 3.5.15+, e.g. 3.5.30).
///
/// - unary, grpc-gateway v1 (etcd 3.4/3.5): `{"error":"msg","message":"msg","code":N,"details":[...]}`
/// - unary, etcd 3.2/3.3: `{"error":"msg","code":N}`
/// - unary, grpc-gateway v2 (etcd 3.6, 3.5.30): `{"code":N,"message":"msg","details":[...]}`,
///   also for routing errors (404 `{"code":5,"message":"Not Found"}`, 501
///   `{"code":12,"message":"Method Not Allowed"}`, see [`Status::is_unknown_route`])
/// - a stream's error before its first message, grpc-gateway v2: the HTTP status of the
///   error and the in-stream form as the whole body, `{"error":{"code":N,"message":"msg"}}`
/// - in a stream, v1: `{"grpc_code":N,"http_code":N,"message":"msg","http_status":"..."}`
/// - in a stream, v2: `{"code":N,"message":"msg"}`
///
/// Bodies are parsed, never compared as bytes: v2 puts random whitespace between fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Status {
    /// The gRPC status code.
    pub code: i32,
    /// The server's message, e.g. `"etcdserver: requested lease not found"`.
    pub message: String,
    /// The HTTP status code, when the server sent one in the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_code: Option<u16>,
    /// Error details (google.protobuf.Any values), kept as JSON.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<serde_json::Value>,
}

impl Status {
    /// A status with this code and message.
    pub fn new(code: i32, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
            http_code: None,
            details: Vec::new(),
        }
    }

    /// The typed gRPC code.
    pub fn grpc_code(&self) -> Code {
        Code::from_i32(self.code)
    }

    /// Whether this is grpc-gateway v2's answer to a request it has no route for: a path it
    /// does not know (HTTP 404, `{"code":5,"message":"Not Found"}`) or a method the path
    /// does not take (HTTP 501, `{"code":12,"message":"Method Not Allowed"}`). etcd's own
    /// "not found" errors say what is missing (`"etcdserver: requested lease not found"`).
    /// (grpc-gateway v1 answers these with plain-text bodies, which are not a `Status`.)
    pub fn is_unknown_route(&self) -> bool {
        match self.grpc_code() {
            Code::NotFound => self.message == "Not Found",
            Code::Unimplemented => self.message == "Method Not Allowed",
            _ => false,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.grpc_code(), self.code, self.message)
    }
}

#[derive(Deserialize)]
struct RawStatus {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    grpc_code: Option<i64>,
    #[serde(default)]
    http_code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    details: Option<Vec<serde_json::Value>>,
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
        let mut raw = RawStatus::deserialize(d)?;
        if raw.code.is_none() && raw.grpc_code.is_none() && raw.message.is_none() {
            // `{"error":{"code":N,"message":"..."}}`: a stream's in-stream error form sent as
            // the whole answer (grpc-gateway v2, for a stream that fails before its first
            // message, with the error's HTTP status).
            if let Some(inner @ serde_json::Value::Object(_)) = &raw.error {
                raw = RawStatus::deserialize(inner).map_err(serde::de::Error::custom)?;
            }
        }
        let code = raw.grpc_code.or(raw.code).unwrap_or(2);
        let code = i32::try_from(code).unwrap_or(2);
        let message = match (raw.message, raw.error) {
            (Some(m), _) if !m.is_empty() => m,
            (_, Some(serde_json::Value::String(e))) => e,
            (Some(m), _) => m,
            _ => String::new(),
        };
        Ok(Status {
            code,
            message,
            http_code: raw.http_code.and_then(|c| u16::try_from(c).ok()),
            details: raw.details.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unary_formats() {
        let v34: Status = serde_json::from_str(
            r#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5,"details":[]}"#,
        )
        .unwrap();
        assert_eq!(v34.grpc_code(), Code::NotFound);
        assert_eq!(v34.message, "etcdserver: requested lease not found");

        let v33: Status = serde_json::from_str(r#"{"error":"no leader","code":14}"#).unwrap();
        assert_eq!(v33.grpc_code(), Code::Unavailable);
        assert_eq!(v33.message, "no leader");

        let v36: Status = serde_json::from_str(
            r#"{"code":11,"message":"mvcc: required revision has been compacted","details":[]}"#,
        )
        .unwrap();
        assert_eq!(v36.grpc_code(), Code::OutOfRange);
    }

    #[test]
    fn stream_formats() {
        let v35: Status = serde_json::from_str(
            r#"{"grpc_code":16,"http_code":401,"message":"etcdserver: invalid auth token","http_status":"Unauthorized"}"#,
        )
        .unwrap();
        assert_eq!(v35.grpc_code(), Code::Unauthenticated);
        assert_eq!(v35.http_code, Some(401));
        let v36: Status = serde_json::from_str(r#"{"code":14,"message":"no leader"}"#).unwrap();
        assert_eq!(v36.grpc_code(), Code::Unavailable);
    }

    /// etcd 3.5.1's answer (HTTP 503) to a watch POST with require-leader on a member
    /// without a leader: a stream error object as the whole body.
    #[test]
    fn a_stream_error_as_a_whole_answer() {
        let v35: Status = serde_json::from_str(
            r#"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}"#,
        )
        .unwrap();
        assert_eq!(v35.grpc_code(), Code::Unavailable);
        assert_eq!(v35.message, "etcdserver: no leader");
        let v36: Status =
            serde_json::from_str(r#"{"error":{"code":14,"message":"etcdserver: no leader"}}"#)
                .unwrap();
        assert_eq!(v36.grpc_code(), Code::Unavailable);
        assert_eq!(v36.message, "etcdserver: no leader");
    }

    #[test]
    fn grpc_gateway_v2_forms() {
        // Whitespace between fields, as grpc-gateway v2 writes them (etcd 3.5.30).
        let put_timed_out: Status =
            serde_json::from_str(r#"{"code":4, "message":"context deadline exceeded"}"#).unwrap();
        assert_eq!(put_timed_out.grpc_code(), Code::DeadlineExceeded);
        assert_eq!(put_timed_out.message, "context deadline exceeded");
        assert!(!put_timed_out.is_unknown_route());

        // A stream refused before its first message: the in-stream form as the whole body.
        let keep_alive: Status = serde_json::from_str(
            r#"{"error":{"code":3,"message":"etcdserver: user name is empty"}}"#,
        )
        .unwrap();
        assert_eq!(keep_alive.grpc_code(), Code::InvalidArgument);
        assert_eq!(keep_alive.message, "etcdserver: user name is empty");

        let unknown: Status = serde_json::from_str(r#"{"code":5, "message":"Not Found"}"#).unwrap();
        assert!(unknown.is_unknown_route());
        let wrong_method: Status =
            serde_json::from_str(r#"{"code":12, "message":"Method Not Allowed"}"#).unwrap();
        assert!(wrong_method.is_unknown_route());
        let lease: Status = serde_json::from_str(
            r#"{"code":5, "message":"etcdserver: requested lease not found"}"#,
        )
        .unwrap();
        assert!(!lease.is_unknown_route());
        let unimplemented: Status =
            serde_json::from_str(r#"{"code":12,"message":"unknown method Foo"}"#).unwrap();
        assert!(!unimplemented.is_unknown_route());
    }

    #[test]
    fn unknown_code_is_kept() {
        let s: Status = serde_json::from_str(r#"{"code":99,"message":"x"}"#).unwrap();
        assert_eq!(s.grpc_code(), Code::Other(99));
        assert_eq!(s.grpc_code().as_i32(), 99);
    }
}
