//! Unary calls against a hostile server (a fake gateway on loopback): every call ends with
//! a typed error within its deadline, and the client's heap stays bounded (a test binary of
//! its own: it counts the heap of the whole process).

use etcd_kv::Client;
use etcd_test_support::counting_alloc::{peak_growth, reset_peak};
use etcd_test_support::fake::{fake_gateway, Fake};
use std::time::{Duration, Instant};

etcd_test_support::install_counting_allocator!();

/// Every answer is limited to this: the heap a call may grow by is a small multiple of it.
const MAX_RESPONSE: usize = 1 << 20;
/// The bound on the heap growth of one hostile call.
const HEAP_BOUND: usize = 8 * MAX_RESPONSE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_to_a_hostile_server_ends_typed_within_its_deadline_and_bounded() {
    let request_timeout = Duration::from_millis(400);
    let deadline = Duration::from_millis(1500);
    let scenarios: [(&str, bool, Fake); 6] = [
        (
            "answers garbage",
            true,
            Fake::Answer(b"<html>not json</html>"),
        ),
        (
            "hangs after the headers",
            true,
            Fake::Partial {
                body: b"",
                close: false,
            },
        ),
        ("streams forever", true, Fake::Endless),
        (
            "announces a huge body and sends slowly",
            true,
            Fake::HugeAndSlow(10 << 30),
        ),
        (
            "closes mid-body",
            true,
            Fake::Partial {
                body: br#"{"header":{"revision":"1"#,
                close: true,
            },
        ),
        ("answers /version with garbage", false, Fake::Answer(b"{}")),
    ];
    for (name, version_ok, behaviour) in scenarios {
        let endpoint = fake_gateway(version_ok, behaviour).await;
        let client = Client::builder()
            .endpoint(&endpoint)
            .request_timeout(request_timeout)
            .deadline(deadline)
            .max_response_len(MAX_RESPONSE)
            .build()
            .unwrap();
        for op in ["get", "put"] {
            let baseline = reset_peak();
            let started = Instant::now();
            let err = match op {
                "get" => client.get("k").await.map(drop).unwrap_err(),
                _ => client.put("k", "v").await.map(drop).unwrap_err(),
            };
            let took = started.elapsed();
            let grown = peak_growth(baseline);
            eprintln!("{name}: {op}: {took:?}, heap +{grown} B: {err}");
            assert!(
                took < deadline + Duration::from_millis(300),
                "{name}: {op} took {took:?}"
            );
            assert!(
                grown < HEAP_BOUND,
                "{name}: {op}: heap grew by {grown} bytes"
            );
            assert!(err.endpoint().is_some(), "{name}: {op}: {err:?}");
            // A write that timed out after it was sent says its outcome is unknown.
            if op == "put" && err.is_timeout() {
                assert!(err.is_outcome_unknown(), "{name}: {err}");
            }
        }
    }
}
