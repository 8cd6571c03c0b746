//! The gRPC layer on an HTTP/2 stream: the 5-byte message prefix, the `grpc-status` and
//! `grpc-message` trailers (or headers), the message size limit, and the errors a call
//! ends with.

use super::conn::{ended_by_tls, ended_without_pong, Conn};
use crate::error::{tls_cause, Error};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use etcd_wire::Code;
use h2::RecvStream;
use http::header::HeaderName;
use http::HeaderMap;

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");

/// A message as gRPC frames it: uncompressed flag, big-endian length, protobuf bytes.
pub(super) fn frame(message: &impl prost::Message) -> Bytes {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(len as u32);
    // A BytesMut grows as needed: encoding cannot fail.
    let _ = message.encode(&mut buf);
    buf.freeze()
}

/// How one call's answers are read, and its failures named.
#[derive(Clone, Copy)]
pub(super) struct Call<'a> {
    pub(super) endpoint: &'a str,
    pub(super) limit: usize,
}

/// What ended a call early: an HTTP/2 error, or the server's gRPC status.
pub(super) enum Failure {
    H2(h2::Error),
    Status(etcd_wire::Status),
    Http(u16),
    TooLarge,
    Compressed,
}

impl From<h2::Error> for Failure {
    fn from(e: h2::Error) -> Failure {
        Failure::H2(e)
    }
}

impl<'a> Call<'a> {
    /// The body of an answer, once its headers say the call goes on: an HTTP error, or a
    /// gRPC status in the headers (an answer without messages), is the call's failure.
    pub(super) fn open(&self, response: http::Response<RecvStream>) -> Result<RecvStream, Failure> {
        let status = response.status();
        if let Some(s) = grpc_status(response.headers()) {
            if s.grpc_code() != Code::Ok {
                return Err(Failure::Status(s));
            }
        }
        if status != http::StatusCode::OK {
            return Err(Failure::Http(status.as_u16()));
        }
        if response
            .headers()
            .get(GRPC_ENCODING)
            .is_some_and(|e| e != "identity")
        {
            return Err(Failure::Compressed);
        }
        Ok(response.into_body())
    }

    /// The next message of `recv`, read into `buffer`; `None` at the end of the body.
    pub(super) async fn message(
        &self,
        recv: &mut RecvStream,
        buffer: &mut BytesMut,
    ) -> Result<Option<Bytes>, Failure> {
        loop {
            if buffer.len() >= 5 {
                if buffer[0] != 0 {
                    return Err(Failure::Compressed);
                }
                let len = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
                if len > self.limit {
                    return Err(Failure::TooLarge);
                }
                if buffer.len() >= 5 + len {
                    buffer.advance(5);
                    return Ok(Some(buffer.split_to(len).freeze()));
                }
                buffer.reserve(5 + len - buffer.len());
            }
            match recv.data().await {
                Some(Ok(chunk)) => {
                    let _ = recv.flow_control().release_capacity(chunk.len());
                    if buffer.is_empty() && chunk.len() >= 5 {
                        // The common case: the chunk holds whole messages; no copy.
                        *buffer = BytesMut::from(chunk);
                    } else {
                        buffer.extend_from_slice(&chunk);
                    }
                }
                Some(Err(e)) => return Err(e.into()),
                None if buffer.is_empty() => return Ok(None),
                None => return Err(h2::Error::from(h2::Reason::PROTOCOL_ERROR).into()),
            }
        }
    }

    /// The status trailers: `Ok` for status 0.
    pub(super) async fn trailers(&self, recv: &mut RecvStream) -> Result<(), Failure> {
        // Anything after the last message is not ours to read.
        while let Some(chunk) = recv.data().await {
            let chunk = chunk?;
            let _ = recv.flow_control().release_capacity(chunk.len());
        }
        let trailers = recv.trailers().await?;
        match trailers.as_ref().and_then(grpc_status) {
            Some(s) if s.grpc_code() == Code::Ok => Ok(()),
            Some(s) => Err(Failure::Status(s)),
            None => Err(Failure::Status(etcd_wire::Status::new(
                Code::Unknown.as_i32(),
                "the answer ended without a gRPC status",
            ))),
        }
    }

    pub(super) fn invalid(&self, e: prost::DecodeError) -> Error {
        Error::Server {
            endpoint: self.endpoint.to_string(),
            status: etcd_wire::Status::new(
                Code::Internal.as_i32(),
                format!("undecodable protobuf answer: {e}"),
            ),
        }
    }

    /// The error of a call the server answered (a status, an HTTP error...).
    pub(super) fn failed(&self, failure: Failure) -> Error {
        let endpoint = self.endpoint.to_string();
        match failure {
            Failure::Status(status) => Error::Server { endpoint, status },
            Failure::Http(status) => Error::Http {
                endpoint,
                status,
                body: "not a gRPC answer".into(),
            },
            Failure::TooLarge => Error::ResponseTooLarge {
                endpoint,
                limit: self.limit,
            },
            Failure::Compressed => Error::Server {
                endpoint,
                status: etcd_wire::Status::new(
                    Code::Unimplemented.as_i32(),
                    "a compressed answer (none was asked for)",
                ),
            },
            Failure::H2(e) => Error::Io {
                endpoint,
                outcome_unknown: true,
                source: Box::new(e),
            },
        }
    }

    /// The error of a call whose connection or stream broke: TLS when that is what ended
    /// the connection; otherwise a write may have been applied unless the server refused
    /// the stream before processing it.
    pub(super) async fn broken(&self, e: impl Into<Failure>, conn: &Conn) -> Error {
        let e = match e.into() {
            Failure::H2(e) => e,
            other => return self.failed(other),
        };
        if tls_cause(&e).is_some() || e.get_io().is_some_and(|io| tls_cause(io).is_some()) {
            return Error::TlsHandshake {
                endpoint: self.endpoint.to_string(),
                source: Box::new(e),
            };
        }
        // A reset of this stream alone says nothing of the connection; anything else may
        // be the connection ending, whose cause its task records.
        if !e.is_reset() {
            if let Some(tls) = ended_by_tls(self.endpoint, conn).await {
                return tls;
            }
        }
        let outcome_unknown = e.reason() != Some(h2::Reason::REFUSED_STREAM);
        let source: crate::error::BoxError = match ended_without_pong(conn) {
            Some(ended) => Box::new(ended),
            None => Box::new(e),
        };
        Error::Io {
            endpoint: self.endpoint.to_string(),
            outcome_unknown,
            source,
        }
    }
}

/// True for an error that says the server does not speak HTTP/2 at all: the HTTP/2
/// library gave up on the connection (a frame size or protocol error of its own) before
/// any answer, as it does when an HTTP/1.1 server answers the connection preface.
pub(super) fn not_http2(e: &Error) -> bool {
    let source = match e {
        Error::Io { source, .. } | Error::Connect { source, .. } => source.as_ref(),
        _ => return false,
    };
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(source);
    while let Some(err) = current {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.is_go_away()
                && h2.is_library()
                && matches!(
                    h2.reason(),
                    Some(h2::Reason::FRAME_SIZE_ERROR | h2::Reason::PROTOCOL_ERROR)
                );
        }
        current = err.source();
    }
    false
}

/// The gRPC status of headers or trailers, if they hold one.
fn grpc_status(headers: &HeaderMap) -> Option<etcd_wire::Status> {
    let code = headers
        .get(GRPC_STATUS)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let message = headers
        .get(GRPC_MESSAGE)
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    Some(etcd_wire::Status::new(code, message))
}

/// `grpc-message` is percent-encoded UTF-8.
fn percent_decode(bytes: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn messages_are_framed_with_flag_and_length() {
        let message = etcd_wire::grpc::pb::etcdserverpb::RangeRequest {
            key: Bytes::from_static(b"k"),
            ..Default::default()
        };
        let framed = frame(&message);
        assert_eq!(&framed[..5], &[0, 0, 0, 0, 3]);
        assert_eq!(&framed[5..], &[0x0a, 0x01, b'k']);
    }

    #[test]
    fn statuses_come_from_headers_with_their_message_decoded() {
        let mut headers = HeaderMap::new();
        assert!(grpc_status(&headers).is_none());
        headers.insert(GRPC_STATUS, HeaderValue::from_static("5"));
        headers.insert(
            GRPC_MESSAGE,
            HeaderValue::from_static("etcdserver%3A requested lease not found %E2%9C%93"),
        );
        let status = grpc_status(&headers).unwrap();
        assert_eq!(status.grpc_code(), Code::NotFound);
        assert_eq!(
            status.message,
            "etcdserver: requested lease not found \u{2713}"
        );
        // Malformed escapes stay as they are; a bad code is no status.
        assert_eq!(percent_decode(b"100%% %4"), "100%% %4");
        headers.insert(GRPC_STATUS, HeaderValue::from_static("x"));
        assert!(grpc_status(&headers).is_none());
    }
}
