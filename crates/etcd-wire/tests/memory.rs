//! What decoding a hostile answer costs: peak heap growth against the answer's size, for
//! the smallest entries etcd's answers may hold (a test binary of its own: it counts the
//! heap of the whole process).

use etcd_test_support::counting_alloc::{peak_growth, reset_peak};
use etcd_wire::stream::parse_message;
use etcd_wire::{RangeResponse, WatchResponse};

etcd_test_support::install_counting_allocator!();

/// `{"<field>":[<entry>,<entry>,...]}` of about `size` bytes.
fn answer(field: &str, entry: &str, size: usize) -> Vec<u8> {
    let mut body = format!("{{\"{field}\":[").into_bytes();
    while body.len() + entry.len() + 3 < size {
        body.extend_from_slice(entry.as_bytes());
        body.push(b',');
    }
    body.extend_from_slice(entry.as_bytes());
    body.extend_from_slice(b"]}");
    body
}

/// Peak heap growth of `decode(body)` as a multiple of the body's size.
fn factor(body: &[u8], decode: impl FnOnce(&[u8]) -> bool) -> (f64, bool) {
    let baseline = reset_peak();
    let ok = decode(body);
    (peak_growth(baseline) as f64 / body.len() as f64, ok)
}

/// The bound this crate promises: decoding costs at most this multiple of the input.
const BOUND: f64 = 16.0;

#[test]
fn decoding_costs_a_small_multiple_of_the_answer() {
    // Empty entries (what etcd never sends) are refused at the first one.
    let empty = answer("kvs", "{}", 32 << 20);
    let (f, ok) = factor(&empty, |b| RangeResponse::from_slice(b).is_ok());
    assert!(!ok && f < 0.1, "empty range entries: {f:.2}x");
    let (f, ok) = factor(&empty, |b| {
        etcd_wire::from_slice::<RangeResponse>(b).is_ok()
    });
    assert!(!ok && f < 0.1, "empty range entries (serde): {f:.2}x");

    // The smallest valid entries.
    let smallest = answer("kvs", r#"{"key":"AA=="}"#, 32 << 20);
    let (f, ok) = factor(&smallest, |b| RangeResponse::from_slice(b).is_ok());
    assert!(ok && f < BOUND, "smallest range entries: {f:.2}x");
    eprintln!("range of the smallest entries: {f:.2}x its size");
    let (f, ok) = factor(&smallest, |b| {
        etcd_wire::from_slice::<RangeResponse>(b).is_ok()
    });
    assert!(ok && f < BOUND, "smallest range entries (serde): {f:.2}x");
    eprintln!("the same through serde: {f:.2}x");

    // A 4 MiB watch message of empty events, then of the smallest valid ones.
    let events = |entry: &str| {
        let inner = answer("events", entry, 4 << 20);
        let mut message = b"{\"result\":".to_vec();
        message.extend_from_slice(&inner);
        message.push(b'}');
        message
    };
    let (f, ok) = factor(&events("{}"), |b| parse_message::<WatchResponse>(b).is_ok());
    assert!(!ok && f < 0.1, "empty events: {f:.2}x");
    let (f, ok) = factor(&events(r#"{"kv":{"key":"AA=="}}"#), |b| {
        parse_message::<WatchResponse>(b).is_ok()
    });
    assert!(ok && f < BOUND, "smallest events: {f:.2}x");
    eprintln!("watch message of the smallest events: {f:.2}x its size");
}
