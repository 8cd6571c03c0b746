//! The keep-alive hub driven through the scripted backend: no etcd, a paused clock.
//!
//! A lease of 3 s is due every second (TTL/3); a keep-alive unanswered for its retry
//! interval (300 ms) on a stream means the member is gone; past its deadline (3 s after
//! the last refresh was sent) the lease is reported lost.

use crate::backend::script::{broken, Open, Peer, Script};
use crate::config::{Liveness, StreamMode};
use crate::lease::{Lease, LeaseKeeper, LeaseLost};
use crate::{Client, Error};
use etcd_wire::lease::{LeaseKeepAliveRequest, LeaseKeepAliveResponse};
use etcd_wire::{Code, Status};
use std::time::Duration;
use tokio::time::Instant;

const A: &str = "http://127.0.0.1:23790";
const B: &str = "http://127.0.0.1:23791";
const C: &str = "http://127.0.0.1:23792";

const PATIENCE: Duration = Duration::from_secs(120);

fn setup(mode: StreamMode) -> (Script, Client) {
    let script = Script::new(&[A, B, C]);
    let client = Client::scripted(&script, mode, Liveness::default());
    (script, client)
}

fn keep(client: &Client, id: i64, ttl: i64) -> LeaseKeeper {
    client.keep_alive(Lease { id, ttl })
}

fn alive(id: i64, ttl: i64) -> LeaseKeepAliveResponse {
    LeaseKeepAliveResponse {
        id,
        ttl,
        ..LeaseKeepAliveResponse::default()
    }
}

async fn opened(script: &Script) -> Peer {
    match tokio::time::timeout(PATIENCE, script.opened()).await {
        Ok(peer) => peer,
        Err(_) => panic!("the hub opened no stream"),
    }
}

/// The lease ID of the next keep-alive on `peer`.
async fn next_keep_alive(peer: &mut Peer) -> i64 {
    match tokio::time::timeout(PATIENCE, peer.request::<LeaseKeepAliveRequest>()).await {
        Ok(Some(request)) => request.id,
        Ok(None) => panic!("the hub closed the stream at {}", peer.endpoint()),
        Err(_) => panic!("the hub sent nothing"),
    }
}

async fn lost(keeper: &LeaseKeeper) -> LeaseLost {
    match tokio::time::timeout(PATIENCE, keeper.lost()).await {
        Ok(reason) => reason,
        Err(_) => panic!("the lease was not reported lost"),
    }
}

#[tokio::test(start_paused = true)]
async fn leases_are_refreshed_at_a_third_of_their_ttl_on_one_stream() {
    let (script, client) = setup(StreamMode::Auto);
    let start = Instant::now();
    let _seven = keep(&client, 7, 3);
    let _eight = keep(&client, 8, 30);
    let mut peer = opened(&script).await;
    assert_eq!(peer.method(), "/lease/keepalive");
    assert_eq!(next_keep_alive(&mut peer).await, 7);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    peer.answer(&alive(7, 3));
    for second in 2..=4 {
        assert_eq!(next_keep_alive(&mut peer).await, 7);
        assert_eq!(start.elapsed(), Duration::from_secs(second));
        peer.answer(&alive(7, 3));
    }
    // Every lease on the same stream: the one of 30 s first at 10 s, beside 7's.
    let mut sevens = 0;
    loop {
        let id = next_keep_alive(&mut peer).await;
        if id == 8 {
            assert_eq!(start.elapsed(), Duration::from_secs(10));
            peer.answer(&alive(8, 30));
            break;
        }
        sevens += 1;
        peer.answer(&alive(7, 3));
    }
    assert_eq!(sevens, 6, "at 5, 6, 7, 8, 9 and 10 s");
    assert!(script.try_opened().is_none());
    assert_eq!(client.stream_stats().keep_alive_reconnects, 0);
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_keep_alive_moves_the_stream_at_its_retry_interval() {
    let (script, client) = setup(StreamMode::Auto);
    let start = Instant::now();
    let keeper = keep(&client, 7, 3);
    let mut frozen = opened(&script).await;
    assert_eq!(next_keep_alive(&mut frozen).await, 7);
    // No answer: 300 ms later (a tenth of the TTL) the stream moves, and the keep-alive
    // goes again on the next endpoint at once.
    let mut next = opened(&script).await;
    assert_eq!(start.elapsed(), Duration::from_millis(1300));
    assert_eq!(next.endpoint(), B);
    assert!(frozen.is_closed());
    assert_eq!(script.demoted(), [A]);
    assert_eq!(next_keep_alive(&mut next).await, 7);
    next.answer(&alive(7, 3));
    // Refreshed: next due a third of the TTL after that keep-alive was sent.
    assert_eq!(next_keep_alive(&mut next).await, 7);
    assert_eq!(start.elapsed(), Duration::from_millis(2300));
    assert!(keeper.lost_reason().is_none());
    assert_eq!(client.stream_stats().keep_alive_reconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn a_lease_nobody_answers_for_is_lost_at_its_deadline() {
    let (script, client) = setup(StreamMode::Auto);
    let start = Instant::now();
    let keeper = keep(&client, 7, 3);
    // Every stream opens and stays silent (the peers wait unread in the script).
    let reason = lost(&keeper).await;
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(3),
        "lost at the deadline, not later"
    );
    match &reason {
        LeaseLost::Unreachable { last_error } => {
            assert!(
                last_error.contains("no answer to a keep-alive"),
                "{last_error}"
            )
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(keeper.lost_reason(), Some(reason));
    // Moved every retry interval meanwhile: 1.3, 1.6, ... 2.8 s.
    let moves = client.stream_stats().keep_alive_reconnects;
    assert!((5..=7).contains(&moves), "{moves}");
    let demoted = script.demoted();
    assert_eq!(&demoted[..3], [A, B, C]);
}

#[tokio::test(start_paused = true)]
async fn a_ttl_of_zero_means_the_lease_is_gone() {
    let (script, client) = setup(StreamMode::Auto);
    let keeper = keep(&client, 7, 3);
    let other = keep(&client, 8, 3);
    let mut peer = opened(&script).await;
    let mut first = [
        next_keep_alive(&mut peer).await,
        next_keep_alive(&mut peer).await,
    ];
    first.sort();
    assert_eq!(first, [7, 8]);
    peer.answer(&alive(7, 0));
    peer.answer(&alive(8, 3));
    assert_eq!(lost(&keeper).await, LeaseLost::Expired);
    // Never refreshed again; the other lease goes on.
    for _ in 0..5 {
        assert_eq!(next_keep_alive(&mut peer).await, 8);
        peer.answer(&alive(8, 3));
    }
    assert!(other.lost_reason().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_broken_stream_resends_the_keep_alive_in_flight_at_once_elsewhere() {
    let (script, client) = setup(StreamMode::Auto);
    let start = Instant::now();
    let keeper = keep(&client, 7, 3);
    let mut peer = opened(&script).await;
    assert_eq!(next_keep_alive(&mut peer).await, 7);
    peer.fail(broken(A));
    let mut next = opened(&script).await;
    assert_eq!(next.endpoint(), B);
    assert_eq!(next_keep_alive(&mut next).await, 7);
    assert_eq!(start.elapsed(), Duration::from_secs(1), "no wait");
    next.answer(&alive(7, 3));
    assert_eq!(next_keep_alive(&mut next).await, 7);
    assert!(keeper.lost_reason().is_none());
    assert_eq!(client.stream_stats().keep_alive_reconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_stream_opening_backs_off_and_the_lease_survives_on_the_retry() {
    let (script, client) = setup(StreamMode::Auto);
    let start = Instant::now();
    let keeper = keep(&client, 7, 3);
    script.next_open(Open::Fail(Error::server(
        A,
        Status::new(Code::Unavailable.as_i32(), "etcdserver: no leader"),
    )));
    // The first opening (at 1 s) fails; the retry comes with the next due keep-alive
    // after the backoff (100 ms doubled, ±50 %), and well before the deadline.
    let mut peer = opened(&script).await;
    let reopened_at = start.elapsed();
    assert!(
        reopened_at >= Duration::from_millis(1300) && reopened_at < Duration::from_millis(2000),
        "{reopened_at:?}"
    );
    assert_eq!(next_keep_alive(&mut peer).await, 7);
    peer.answer(&alive(7, 3));
    assert_eq!(next_keep_alive(&mut peer).await, 7);
    assert!(keeper.lost_reason().is_none());
}

#[tokio::test(start_paused = true)]
async fn per_call_keep_alives_time_out_demote_the_member_and_retry_elsewhere() {
    let (script, client) = setup(StreamMode::PerCall);
    let start = Instant::now();
    let keeper = keep(&client, 7, 3);
    let first = script.call().await;
    assert_eq!(first.method(), "/lease/keepalive");
    assert_eq!(first.request::<LeaseKeepAliveRequest>().id, 7);
    assert_eq!(first.endpoint(), A);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    // Unanswered: resent at the retry interval, while the first waits for its deadline
    // (twice the interval), after which its member is demoted.
    let second = script.call().await;
    assert_eq!(start.elapsed(), Duration::from_millis(1300));
    assert_eq!(second.endpoint(), A);
    let third = script.call().await;
    assert_eq!(start.elapsed(), Duration::from_millis(1600));
    assert_eq!(script.demoted(), [A], "the first POST timed out at 1.6 s");
    assert_eq!(third.endpoint(), B);
    third.answer(&alive(7, 3));
    // Answered: next due a third of the TTL after it was sent.
    let fourth = script.call().await;
    assert_eq!(start.elapsed(), Duration::from_millis(2600));
    assert_eq!(fourth.endpoint(), B);
    fourth.answer(&alive(7, 3));
    assert!(keeper.lost_reason().is_none());
    drop((first, second));
    assert!(
        script.try_opened().is_none(),
        "no stream in the per-call mode"
    );
}

#[tokio::test(start_paused = true)]
async fn per_call_lease_not_found_means_the_lease_expired() {
    let (script, client) = setup(StreamMode::PerCall);
    let keeper = keep(&client, 7, 3);
    let call = script.call().await;
    call.fail(Error::server(
        A,
        Status::new(
            Code::NotFound.as_i32(),
            "etcdserver: requested lease not found",
        ),
    ));
    assert_eq!(lost(&keeper).await, LeaseLost::Expired);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_keeper_is_refreshed_no_more() {
    let (script, client) = setup(StreamMode::Auto);
    let dropped = keep(&client, 7, 3);
    let _kept = keep(&client, 8, 3);
    let mut peer = opened(&script).await;
    let mut first = [
        next_keep_alive(&mut peer).await,
        next_keep_alive(&mut peer).await,
    ];
    first.sort();
    assert_eq!(first, [7, 8]);
    peer.answer(&alive(7, 3));
    peer.answer(&alive(8, 3));
    drop(dropped);
    for _ in 0..5 {
        assert_eq!(next_keep_alive(&mut peer).await, 8);
        peer.answer(&alive(8, 3));
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_stream_sends_the_due_keep_alives_as_posts_at_once() {
    let (script, client) = setup(StreamMode::Auto);
    let start = Instant::now();
    // The gateway refuses the WebSocket (or auth is on over the gateway).
    script.next_open(Open::Refuse);
    let keeper = keep(&client, 7, 3);
    let call = script.call().await;
    assert_eq!(call.request::<LeaseKeepAliveRequest>().id, 7);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "due at TTL/3, not later"
    );
    call.answer(&alive(7, 3));
    let call = script.call().await;
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    call.answer(&alive(7, 3));
    assert!(keeper.lost_reason().is_none());
    assert!(script.try_opened().is_none(), "asked for a stream once");
}
