//! The floor driven through the scripted backend: no etcd, a paused clock.

use crate::backend::script::Script;
use crate::config::{Liveness, StreamMode};
use crate::{Client, Error};
use etcd_wire as wire;
use std::time::Duration;

fn range_answer(revision: i64) -> wire::RangeResponse {
    wire::RangeResponse {
        header: wire::ResponseHeader {
            revision,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn put_answer(revision: i64) -> wire::PutResponse {
    wire::PutResponse {
        header: wire::ResponseHeader {
            revision,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_serializable_read_behind_the_floor_is_asked_again_then_of_the_next_member() {
    let script = Script::new(&["http://a", "http://b", "http://c"]);
    let client = Client::scripted(&script, StreamMode::default(), Liveness::default());
    let put = tokio::spawn({
        let client = client.clone();
        async move { client.put("k", "v").await }
    });
    script.call().await.answer(&put_answer(10));
    put.await.unwrap().unwrap();

    // The client moved to b, which lags: asked 3 times, then c.
    client.inner.backend.demote("http://a");
    let read = tokio::spawn({
        let client = client.clone();
        async move { client.range("k").serializable().await }
    });
    for _ in 0..3 {
        let call = script.call().await;
        assert_eq!(call.endpoint(), "http://b");
        call.answer(&range_answer(7));
    }
    let call = script.call().await;
    assert_eq!(call.endpoint(), "http://c");
    call.answer(&range_answer(10));
    let answer = read.await.unwrap().unwrap();
    assert_eq!(answer.revision(), 10);
    assert_eq!(script.demoted(), ["http://a", "http://b"]);

    // A linearizable read is taken as it comes, and a newer answer raises the floor.
    let read = tokio::spawn({
        let client = client.clone();
        async move { client.range("k").await }
    });
    script.call().await.answer(&range_answer(12));
    assert_eq!(read.await.unwrap().unwrap().revision(), 12);
    let read = tokio::spawn({
        let client = client.clone();
        async move { client.range("k").serializable().await }
    });
    let call = script.call().await;
    assert_eq!(call.endpoint(), "http://c");
    call.answer(&range_answer(11));
    script.call().await.answer(&range_answer(12));
    assert_eq!(read.await.unwrap().unwrap().revision(), 12);
}

#[tokio::test(start_paused = true)]
async fn a_read_no_member_answers_recently_enough_fails_behind_at_the_deadline() {
    let script = Script::new(&["http://a", "http://b"]);
    let client = Client::scripted(&script, StreamMode::default(), Liveness::default())
        .with_deadline(Duration::from_secs(1));
    let put = tokio::spawn({
        let client = client.clone();
        async move { client.put("k", "v").await }
    });
    script.call().await.answer(&put_answer(10));
    put.await.unwrap().unwrap();

    let started = tokio::time::Instant::now();
    let read = tokio::spawn({
        let client = client.clone();
        async move { client.range("k").serializable().await }
    });
    let answering = tokio::spawn({
        let script = script.clone();
        async move {
            let mut asked = Vec::new();
            loop {
                let call = script.call().await;
                asked.push(call.endpoint().to_string());
                call.answer(&range_answer(9));
                if asked.len() > 1000 {
                    return asked;
                }
            }
        }
    });
    let err = read.await.unwrap().unwrap_err();
    answering.abort();
    assert!(
        matches!(
            err,
            Error::Behind {
                revision: 9,
                floor: 10,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("revision 9"), "{err}");
    assert!(started.elapsed() <= Duration::from_secs(1));
    assert!(script.demoted().contains(&"http://a".to_string()));
    assert!(script.demoted().contains(&"http://b".to_string()));
}
