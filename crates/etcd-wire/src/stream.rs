//! Incremental decoding of the gateway's streamed responses (watch, keep-alive, observe, snapshot).
//!
//! A streamed body is a sequence of JSON objects, each `{"result":{...}}` or `{"error":{...}}`
//! followed by `\n`. Messages do not line up with HTTP chunks: [`StreamDecoder`] buffers body
//! chunks of any size and hands out whole messages.

use crate::status::Status;
use crate::DecodeError;
use bytes::{Buf, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Default limit on one streamed message: etcd's own request limit is 1.5 MiB and a watch
/// response may carry many events, so leave ample room.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 64 * 1024 * 1024;

/// Splits a streamed body into messages, with bounded memory.
///
/// ```
/// use etcd_wire::stream::StreamDecoder;
/// let mut d = StreamDecoder::new(1024);
/// d.push(b"{\"result\":{}}\n{\"res").unwrap();
/// assert_eq!(&d.next_message().unwrap().unwrap()[..], b"{\"result\":{}}");
/// assert!(d.next_message().unwrap().is_none());
/// d.push(b"ult\":{}}\n").unwrap();
/// assert_eq!(&d.next_message().unwrap().unwrap()[..], b"{\"result\":{}}");
/// ```
#[derive(Debug)]
pub struct StreamDecoder {
    buf: BytesMut,
    /// Bytes of `buf` already searched for a newline.
    scanned: usize,
    /// Length of the unfinished message at the end of `buf` (the bytes after its last newline).
    pending: usize,
    max_message_len: usize,
}

impl StreamDecoder {
    /// A decoder that rejects any message longer than `max_message_len` bytes.
    pub fn new(max_message_len: usize) -> StreamDecoder {
        StreamDecoder {
            buf: BytesMut::new(),
            scanned: 0,
            pending: 0,
            max_message_len,
        }
    }

    /// Appends a body chunk.
    ///
    /// Fails when the message being received is already longer than the limit; the decoder
    /// must then be dropped.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        // Only the part after the last newline can be an unfinished message; whole lines are
        // checked as they are taken. Only the new chunk is searched, so feeding a large
        // message in small chunks stays linear.
        let pending = match chunk.iter().rposition(|&b| b == b'\n') {
            Some(i) => chunk.len() - i - 1,
            None => self.pending + chunk.len(),
        };
        if pending > self.max_message_len {
            return Err(DecodeError::MessageTooLarge {
                limit: self.max_message_len,
            });
        }
        self.pending = pending;
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    /// The next whole message, if one has arrived. Blank lines are skipped.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, DecodeError> {
        loop {
            let Some(pos) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') else {
                self.scanned = self.buf.len();
                return Ok(None);
            };
            let end = self.scanned + pos;
            let mut line = self.buf.split_to(end + 1);
            self.scanned = 0;
            line.truncate(end);
            let line = trim(line.freeze());
            if line.is_empty() {
                continue;
            }
            if line.len() > self.max_message_len {
                return Err(DecodeError::MessageTooLarge {
                    limit: self.max_message_len,
                });
            }
            return Ok(Some(line));
        }
    }

    /// Call at the end of the body: the last message if it was not followed by a newline.
    pub fn finish(&mut self) -> Result<Option<Bytes>, DecodeError> {
        if let Some(m) = self.next_message()? {
            return Ok(Some(m));
        }
        let rest = trim(self.buf.split().freeze());
        self.scanned = 0;
        self.pending = 0;
        if rest.is_empty() {
            Ok(None)
        } else if rest.len() > self.max_message_len {
            Err(DecodeError::MessageTooLarge {
                limit: self.max_message_len,
            })
        } else {
            Ok(Some(rest))
        }
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

fn trim(mut b: Bytes) -> Bytes {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    b.advance(start);
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    b.truncate(end);
    b
}

/// One message of a streamed response. Deliberately exhaustive (not `#[non_exhaustive]`):
/// like a `Result`, a message is an answer or an error, nothing else.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamMessage<T> {
    /// `{"result": ...}`
    Result(T),
    /// `{"error": ...}`: the server ended the stream with an error.
    Error(Status),
}

#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Envelope<T> {
    #[serde(default = "Option::default")]
    result: Option<T>,
    /// Only present on the error path, so the cost of a `Value` does not matter.
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Decodes one message returned by [`StreamDecoder::next_message`]. Like
/// [`from_slice`](crate::from_slice), the message's `bytes` fields share one allocation.
///
/// Besides `{"result":...}` and `{"error":{...}}`, this accepts the unary error body
/// `{"error":"msg","code":N,"message":"msg"}` that the gateway sends instead of a stream when
/// it fails before the stream starts (seen on etcd 3.4 and 3.5: an undecodable request body
/// answers HTTP 500 with code 2; a server that goes away before the first message answers
/// HTTP 503 with code 14).
pub fn parse_message<T: DeserializeOwned>(message: &[u8]) -> Result<StreamMessage<T>, DecodeError> {
    let env: Envelope<T> =
        crate::codec::with_arena(message.len(), || serde_json::from_slice(message))
            .map_err(DecodeError::Json)?;
    match (env.error, env.result) {
        (Some(serde_json::Value::String(_)), _) => serde_json::from_slice::<Status>(message)
            .map(StreamMessage::Error)
            .map_err(DecodeError::Json),
        (Some(error), _) => serde_json::from_value::<Status>(error)
            .map(StreamMessage::Error)
            .map_err(DecodeError::Json),
        (None, Some(result)) => Ok(StreamMessage::Result(result)),
        (None, None) => Err(DecodeError::NotAMessage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_blank_lines() {
        let mut d = StreamDecoder::new(100);
        d.push(b"\n\n{\"a\":1}\n  \n{\"b\"").unwrap();
        assert_eq!(&d.next_message().unwrap().unwrap()[..], b"{\"a\":1}");
        assert_eq!(d.next_message().unwrap(), None);
        d.push(b":2}").unwrap();
        assert_eq!(d.next_message().unwrap(), None);
        assert_eq!(&d.finish().unwrap().unwrap()[..], b"{\"b\":2}");
        assert_eq!(d.finish().unwrap(), None);
    }

    #[test]
    fn too_large_pending() {
        let mut d = StreamDecoder::new(8);
        d.push(b"{\"a\":1}\n").unwrap();
        assert!(matches!(
            d.push(b"0123456789"),
            Err(DecodeError::MessageTooLarge { limit: 8 })
        ));
    }

    #[test]
    fn too_large_whole_line() {
        let mut d = StreamDecoder::new(4);
        // The chunk holds a complete over-long line followed by a short pending part.
        d.push(b"0123456789\n{}").unwrap();
        assert!(matches!(
            d.next_message(),
            Err(DecodeError::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn envelope() {
        let m: StreamMessage<serde_json::Value> = parse_message(br#"{"result":{"x":1}}"#).unwrap();
        assert!(matches!(m, StreamMessage::Result(_)));
        let m: StreamMessage<serde_json::Value> = parse_message(
            br#"{"error":{"grpc_code":14,"http_code":503,"message":"no leader","http_status":"Service Unavailable"}}"#,
        )
        .unwrap();
        match m {
            StreamMessage::Error(s) => assert_eq!(s.grpc_code(), crate::Code::Unavailable),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_message::<serde_json::Value>(b"{}"),
            Err(DecodeError::NotAMessage)
        ));
        assert!(matches!(
            parse_message::<serde_json::Value>(b"{"),
            Err(DecodeError::Json(_))
        ));
    }
}
