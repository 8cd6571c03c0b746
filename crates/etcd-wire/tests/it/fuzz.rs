//! A fuzz run of every public decoder: answers recorded from real servers, mutated (bytes
//! flipped, inserted, deleted, duplicated, truncated, numbers signed, two answers spliced),
//! fed to the decoder of every unary answer type, the stream decoder and every streamed
//! message type. 0 panics; the fast range decoder agrees with serde on every case.
//!
//! It runs for `ETCD_WIRE_FUZZ_SECONDS` (default 5; `cargo xtask ci` runs 60) and prints how
//! many cases it tried.

use crate::fixtures::{for_each_version, names};
use etcd_wire::stream::{parse_message, StreamDecoder};
use etcd_wire::*;
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift64*), so that a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Every recorded body, unary and streamed.
fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for_each_version(|version| {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(version);
        for name in names(version) {
            for ext in ["json", "txt"] {
                if let Ok(bytes) = std::fs::read(dir.join(format!("{name}.{ext}"))) {
                    out.push(bytes);
                }
            }
        }
    });
    out
}

const INTERESTING: &[&[u8]] = &[
    b"-0",
    b"-1",
    b"\"-0\"",
    b"null",
    b"{}",
    b"[]",
    b"\"\"",
    b"18446744073709551616",
    b"9223372036854775808",
    b"1e3",
    b"\\u0000",
    b"\"AA=\"",
    b"{\"kvs\":[{}]}",
    b",",
    b":",
];

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..=rng.below(3) {
        let len = b.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(len + 1);
                b.insert(i, rng.next() as u8);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below((len - i).min(16)) + 1;
                b.drain(i..i + n);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below((len - i).min(64)) + 1;
                let copy = b[i..i + n].to_vec();
                let at = rng.below(len + 1);
                b.splice(at..at, copy);
            }
            4 => b.truncate(rng.below(len + 1)),
            5 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                let i = rng.below(len + 1);
                b.splice(i..i, piece.iter().copied());
            }
            6 if len > 0 => {
                // A digit becomes a sign, or a quote goes missing.
                let i = rng.below(len);
                if b[i].is_ascii_digit() {
                    b[i] = b'-';
                } else if b[i] == b'"' {
                    b.remove(i);
                }
            }
            _ if !other.is_empty() => {
                let cut = rng.below(b.len() + 1);
                let from = rng.below(other.len());
                b.truncate(cut);
                b.extend_from_slice(&other[from..]);
            }
            _ => {}
        }
    }
    b
}

/// Parses `message` as every streamed message type.
fn parse_streamed(message: &[u8]) {
    macro_rules! parse_all {
        (
            unary { $($req:ty => $resp:ty { $($_u:tt)* })* }
            streaming { $($sreq:ty => $sresp:ty { $($_s:tt)* })* }
        ) => {
            $( let _ = parse_message::<$sresp>(message); )*
        };
    }
    etcd_wire::for_each_rpc!(parse_all);
}

/// Runs every decoder on `bytes`; panics on a disagreement (and, of course, on a panic).
fn decode_everything(bytes: &[u8]) {
    // The decoder of every unary request type.
    macro_rules! decode_all {
        (
            unary { $($req:ty => $resp:ty { $($_u:tt)* })* }
            streaming { $($sreq:ty => $sresp:ty { $($_s:tt)* })* }
        ) => {
            $( let _ = <$req as Rpc>::decode(bytes); )*
        };
    }
    etcd_wire::for_each_rpc!(decode_all);
    let _ = from_slice::<VersionResponse>(bytes);
    let _ = from_slice::<Status>(bytes);
    // The two range decoders agree.
    let fast = RangeResponse::from_slice(bytes).ok();
    let serde = serde_json::from_slice::<RangeResponse>(bytes).ok();
    assert_eq!(
        fast,
        serde,
        "fast and serde range decoders disagree on {:?}",
        String::from_utf8_lossy(bytes)
    );
    // As a stream: split into messages (with a small limit too), each parsed as every
    // streamed message type.
    for limit in [1 << 20, 64] {
        let mut decoder = StreamDecoder::new(limit);
        if decoder.push(bytes).is_err() {
            continue;
        }
        while let Ok(Some(message)) = decoder.next_message() {
            parse_streamed(&message);
        }
        if let Ok(Some(message)) = decoder.finish() {
            parse_streamed(&message);
        }
    }
}

#[test]
fn every_decoder_survives_mutated_real_answers() {
    let seconds: u64 = std::env::var("ETCD_WIRE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let seeds = seeds();
    assert!(seeds.len() > 100, "{} recorded answers", seeds.len());
    for seed in &seeds {
        decode_everything(seed);
    }
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut cases = 0u64;
    while Instant::now() < until {
        for _ in 0..256 {
            let seed = &seeds[rng.below(seeds.len())];
            let other = &seeds[rng.below(seeds.len())];
            let case = mutate(&mut rng, seed, other);
            decode_everything(&case);
            cases += 1;
        }
    }
    eprintln!(
        "fuzz: {cases} mutated answers from {} recorded ones in {:?}: 0 panics, 0 disagreements",
        seeds.len(),
        started.elapsed()
    );
}
