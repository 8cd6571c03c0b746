//! A hand-written decoder for the one answer whose size grows with the data: the
//! `RangeResponse` of a large range.
//!
//! It accepts the JSON the gateway writes (Go's jsonpb: known fields in any order, strings
//! without escapes, int64 as strings) and returns `None` at the first thing it does not
//! expect (an unknown or repeated field, an escape, a float, `null`, bad base64...), so the
//! caller can decode the same body with serde instead, which then accepts it or reports the
//! error. Whatever it accepts, serde decodes to the same value (a property test checks it).
//!
//! It exists because serde_json's general machinery (a visitor call and a UTF-8 check per
//! field name and per integer string, a `Deserialize` call per field) cost about 0.3 µs per
//! key-value, more than the rest of a large range's client cost together.

use crate::codec::{decode_field, with_arena};
use crate::header::{KeyValue, ResponseHeader};
use crate::kv::RangeResponse;
use bytes::Bytes;

impl RangeResponse {
    /// Decodes a `kv/range` answer body: the same result as [`from_slice`](crate::from_slice),
    /// several times faster on the gateway's own output (a hand-written decoder handles
    /// that form; anything else goes through serde). What a large range costs the client
    /// is mostly this.
    pub fn from_slice(body: &[u8]) -> Result<RangeResponse, crate::DecodeError> {
        match range_response(body) {
            Some(r) => Ok(r),
            None => crate::from_slice(body),
        }
    }
}

/// Decodes a `kv/range` answer, or `None` if it is not in the gateway's usual form.
pub(crate) fn range_response(body: &[u8]) -> Option<RangeResponse> {
    with_arena(body.len(), || {
        let mut p = Parser { s: body, i: 0 };
        let r = p.range_response()?;
        p.ws();
        (p.i == body.len()).then_some(r)
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// The raw content of a string without escapes (`None` for one with an escape: serde
    /// decides).
    ///
    /// Control characters, invalid in JSON strings, need no check of their own: every
    /// string here is a field name (compared with known names), an integer (digits only) or
    /// base64 (whose decoder refuses anything outside its alphabet).
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.s[self.i..];
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[end] != b'"' {
            return None;
        }
        self.i += end + 1;
        Some(&rest[..end])
    }

    /// `{` then, for each member, its name to `member`, which must consume the value.
    /// An empty object is fine; a trailing comma is not.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let name = self.string()?;
            self.eat(b':')?;
            self.ws();
            member(self, name)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Digits with an optional `-`, as a string (`"12"`) or a number (`12`).
    fn integer(&mut self) -> Option<(bool, u64)> {
        let quoted = self.peek()? == b'"';
        let text = if quoted {
            self.string()?
        } else {
            let start = self.i;
            while matches!(self.peek(), Some(b'0'..=b'9' | b'-')) {
                self.i += 1;
            }
            // A fraction or exponent: serde decides.
            if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
                return None;
            }
            &self.s[start..self.i]
        };
        let (negative, digits) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, text),
        };
        // JSON numbers have no leading zeros (serde refuses them); strings may.
        if !quoted && digits.len() > 1 && digits[0] == b'0' {
            return None;
        }
        // Empty, not digits, or more than a u64 holds: serde decides.
        if digits.is_empty() || digits.len() > 20 {
            return None;
        }
        let mut n = 0u64;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        Some((negative, n))
    }

    fn i64(&mut self) -> Option<i64> {
        match self.integer()? {
            (false, n) => i64::try_from(n).ok(),
            (true, n) if n <= i64::MAX as u64 + 1 => Some((n as i64).wrapping_neg()),
            (true, _) => None,
        }
    }

    fn u64(&mut self) -> Option<u64> {
        match self.integer()? {
            (false, n) => Some(n),
            // Even "-0": serde refuses a sign on an unsigned field, and so must we.
            (true, _) => None,
        }
    }

    fn bool(&mut self) -> Option<bool> {
        let rest = &self.s[self.i..];
        if rest.starts_with(b"true") {
            self.i += 4;
            Some(true)
        } else if rest.starts_with(b"false") {
            self.i += 5;
            Some(false)
        } else {
            None
        }
    }

    fn bytes(&mut self) -> Option<Bytes> {
        decode_field(self.string()?)
    }

    fn header(&mut self) -> Option<ResponseHeader> {
        let mut h = ResponseHeader::default();
        let mut seen = 0u8;
        self.object(|p, name| {
            let bit = match name {
                b"cluster_id" => {
                    h.cluster_id = p.u64()?;
                    1
                }
                b"member_id" => {
                    h.member_id = p.u64()?;
                    2
                }
                b"revision" => {
                    h.revision = p.i64()?;
                    4
                }
                b"raft_term" => {
                    h.raft_term = p.u64()?;
                    8
                }
                _ => return None,
            };
            once(&mut seen, bit)
        })?;
        Some(h)
    }

    fn key_value(&mut self) -> Option<KeyValue> {
        let mut kv = KeyValue::default();
        let mut seen = 0u8;
        self.object(|p, name| {
            let bit = match name {
                b"key" => {
                    kv.key = p.bytes()?;
                    1
                }
                b"create_revision" => {
                    kv.create_revision = p.i64()?;
                    2
                }
                b"mod_revision" => {
                    kv.mod_revision = p.i64()?;
                    4
                }
                b"version" => {
                    kv.version = p.i64()?;
                    8
                }
                b"value" => {
                    kv.value = p.bytes()?;
                    16
                }
                b"lease" => {
                    kv.lease = p.i64()?;
                    32
                }
                _ => return None,
            };
            once(&mut seen, bit)
        })?;
        // No key (or an empty one): serde decides, and refuses it.
        if kv.key.is_empty() {
            return None;
        }
        Some(kv)
    }

    fn key_values(&mut self) -> Option<Vec<KeyValue>> {
        self.eat(b'[')?;
        let mut kvs = Vec::new();
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(kvs);
        }
        loop {
            let start = self.i;
            kvs.push(self.key_value()?);
            if kvs.len() == 1 {
                // Key-values of one range tend to be alike: room for as many more as the
                // first one's size fits in the rest of the body.
                let first = (self.i - start).max(16);
                kvs.reserve((self.s.len() - self.i) / first + 1);
            }
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(kvs);
                }
                _ => return None,
            }
        }
    }

    fn range_response(&mut self) -> Option<RangeResponse> {
        let mut r = RangeResponse::default();
        let mut seen = 0u8;
        self.object(|p, name| {
            let bit = match name {
                b"header" => {
                    r.header = p.header()?;
                    1
                }
                b"kvs" => {
                    r.kvs = p.key_values()?;
                    2
                }
                b"more" => {
                    r.more = p.bool()?;
                    4
                }
                b"count" => {
                    r.count = p.i64()?;
                    8
                }
                _ => return None,
            };
            once(&mut seen, bit)
        })?;
        Some(r)
    }
}

/// Marks a field as seen; `None` if it was already (serde refuses duplicate fields).
fn once(seen: &mut u8, bit: u8) -> Option<()> {
    if *seen & bit != 0 {
        return None;
    }
    *seen |= bit;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(body: &str) -> (Option<RangeResponse>, Option<RangeResponse>) {
        (
            range_response(body.as_bytes()),
            serde_json::from_str(body).ok(),
        )
    }

    #[test]
    fn the_gateway_form() {
        let body = r#"{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"7","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"7","version":"3","value":"YmFy"},{"key":"Zm9w","create_revision":"5","mod_revision":"5","version":"1","lease":"7587869151256374026"}],"more":true,"count":"2"}"#;
        let (fast, serde) = both(body);
        let fast = fast.expect("the gateway's form decodes on the fast path");
        assert_eq!(Some(&fast), serde.as_ref());
        assert_eq!(&fast.kvs[0].value[..], b"bar");
        assert_eq!(fast.kvs[1].lease, 7587869151256374026);
        assert_eq!(fast.header.cluster_id, 14841639068965178418);
    }

    #[test]
    fn grpc_gateway_v2s_form() {
        // etcd 3.5.30 (grpc-gateway v2, protojson): a space after each comma.
        for name in [
            "kv_range",
            "kv_range_prefix",
            "kv_range_filters",
            "kv_range_keys_only",
        ] {
            let path = format!(
                "{}/tests/fixtures/v3.5.30/{name}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let body = std::fs::read(&path).unwrap();
            assert!(body.windows(2).any(|w| w == b", "), "{name}: the v2 form");
            let fast = range_response(&body);
            assert!(fast.is_some(), "{name}: decodes on the fast path");
            assert_eq!(fast, serde_json::from_slice(&body).ok(), "{name}");
        }
    }

    #[test]
    fn accepted_variants_agree_with_serde() {
        for body in [
            "{}",
            r#"{"header":{}}"#,
            r#"{"header":{"revision":"6"}}"#,
            r#"{ "kvs" : [ ] , "count" : 0 }"#,
            r#"{"count":-5}"#,
            r#"{"count":"-9223372036854775808"}"#,
            r#"{"header":{"member_id":"18446744073709551615"}}"#,
            r#"{"kvs":[{"key":"Zm9v"}]}"#,
            r#"{"kvs":[{"key":"Zm9v","value":"YmE"}]}"#,
            "{\n \"count\": \"3\"\n}\n",
        ] {
            let (fast, serde) = both(body);
            assert!(fast.is_some(), "{body}");
            assert_eq!(fast, serde, "{body}");
        }
    }

    #[test]
    fn anything_else_is_left_to_serde() {
        for body in [
            "",
            "{",
            "[]",
            r#"{"unknown":1}"#,
            r#"{"count":"1","count":"2"}"#,
            r#"{"count":1.0}"#,
            r#"{"count":null}"#,
            r#"{"count":"99999999999999999999"}"#,
            r#"{"header":{"member_id":"18446744073709551616"}}"#,
            r#"{"count":"9223372036854775808"}"#,
            r#"{"header":{"member_id":"-1"}}"#,
            r#"{"header":{"member_id":"-0"}}"#,
            r#"{"kvs":[{}],"more":false}"#,
            r#"{"kvs":[{"key":""}]}"#,
            r#"{"header":{"raft_term":-0}}"#,
            r#"{"kvs":[{"key":"Zm\u0039v"}]}"#,
            r#"{"kvs":[{"key":"!!!!"}]}"#,
            r#"{"kvs":[{"key":"Zm9v"},]}"#,
            r#"{"more":null}"#,
            r#"{"count":012}"#,
            r#"{"count":"1"} x"#,
            r#"{"count":"1",}"#,
        ] {
            assert_eq!(range_response(body.as_bytes()), None, "{body}");
            // And the whole decoder (fast path, then serde) agrees with serde.
            let whole = RangeResponse::from_slice(body.as_bytes()).ok();
            assert_eq!(whole, serde_json::from_str(body).ok(), "{body}");
        }
    }
}
