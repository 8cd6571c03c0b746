//! The watch hub driven through the scripted backend: no etcd, a paused clock.
//!
//! Each test plays the server's side of the streams the hub opens ([`Peer`]): it reads the
//! create, cancel and progress requests the hub sends and answers what etcd would (or
//! would not), then checks what the watches receive and where the stream went.

use super::BUFFER;
use crate::backend::script::{broken, Leader, Open, Peer, Script};
use crate::config::{Liveness, StreamMode};
use crate::watch::{WatchResponse, WatchStream};
use crate::{Client, Error};
use etcd_wire::header::{Event, EventType, KeyValue, ResponseHeader};
use etcd_wire::watch::{WatchCreateRequest, WatchRequest, WatchResponse as Wire};
use etcd_wire::{Code, Status};
use futures_util::StreamExt;
use std::future::IntoFuture;
use std::time::Duration;
use tokio::time::Instant;

mod auth;

const A: &str = "http://127.0.0.1:23790";
const B: &str = "http://127.0.0.1:23791";
const C: &str = "http://127.0.0.1:23792";

/// Long enough for anything the hub does on its own; a hang fails instead of spinning.
const PATIENCE: Duration = Duration::from_secs(120);

fn setup() -> (Script, Client) {
    let script = Script::new(&[A, B, C]);
    let client = Client::scripted(&script, StreamMode::Auto, Liveness::default());
    (script, client)
}

fn header(revision: i64) -> ResponseHeader {
    ResponseHeader {
        revision,
        ..ResponseHeader::default()
    }
}

fn created(watch_id: i64, revision: i64) -> Wire {
    Wire {
        header: header(revision),
        watch_id,
        created: true,
        ..Wire::default()
    }
}

/// One put of `key` per revision, in one message.
fn puts(watch_id: i64, key: &str, revisions: impl IntoIterator<Item = i64>) -> Wire {
    let events: Vec<Event> = revisions
        .into_iter()
        .map(|revision| Event {
            r#type: EventType::Put,
            kv: KeyValue {
                key: key.as_bytes().to_vec().into(),
                value: format!("v{revision}").into_bytes().into(),
                create_revision: revision,
                mod_revision: revision,
                version: 1,
                lease: 0,
            },
            prev_kv: None,
        })
        .collect();
    let last = events.last().map_or(0, |e| e.kv.mod_revision);
    Wire {
        header: header(last),
        watch_id,
        events,
        ..Wire::default()
    }
}

/// A progress notification (`watch_id` -1: the whole stream's).
fn progress(watch_id: i64, revision: i64) -> Wire {
    Wire {
        header: header(revision),
        watch_id,
        ..Wire::default()
    }
}

async fn next_request(peer: &mut Peer) -> WatchRequest {
    match tokio::time::timeout(PATIENCE, peer.request::<WatchRequest>()).await {
        Ok(Some(request)) => request,
        Ok(None) => panic!("the hub closed the stream at {}", peer.endpoint()),
        Err(_) => panic!("the hub sent nothing"),
    }
}

async fn next_create(peer: &mut Peer) -> WatchCreateRequest {
    let request = next_request(peer).await;
    match request.create_request {
        Some(create) => create,
        None => panic!("expected a create request, got {request:?}"),
    }
}

async fn opened(script: &Script) -> Peer {
    match tokio::time::timeout(PATIENCE, script.opened()).await {
        Ok(peer) => peer,
        Err(_) => panic!("the hub opened no stream"),
    }
}

async fn recv(watch: &mut WatchStream) -> WatchResponse {
    match tokio::time::timeout(PATIENCE, watch.next()).await {
        Ok(Some(Ok(response))) => response,
        Ok(Some(Err(e))) => panic!("the watch ended with {e}"),
        Ok(None) => panic!("the watch ended"),
        Err(_) => panic!("the watch received nothing"),
    }
}

/// What the watch yields next: an error (then it must end).
async fn recv_error(watch: &mut WatchStream) -> Error {
    let error = match tokio::time::timeout(PATIENCE, watch.next()).await {
        Ok(Some(Err(e))) => e,
        Ok(Some(Ok(response))) => panic!("expected an error, got {response:?}"),
        Ok(None) => panic!("the watch ended without an error"),
        Err(_) => panic!("the watch received nothing"),
    };
    assert!(
        tokio::time::timeout(PATIENCE, watch.next())
            .await
            .expect("the watch ends after its error")
            .is_none(),
        "nothing follows a terminal error"
    );
    error
}

/// True when the watch yields nothing within `within`.
async fn quiet(watch: &mut WatchStream, within: Duration) -> bool {
    tokio::time::timeout(within, watch.next()).await.is_err()
}

/// The first watch of the client: opens the shared stream, which the server creates at
/// `revision`. Returns the watch, the server's end and the watch's server-side ID.
async fn first_watch(
    script: &Script,
    client: &Client,
    key: &str,
    revision: i64,
) -> (WatchStream, Peer, i64) {
    let (watch, (peer, id)) = tokio::join!(client.watch(key).into_future(), async {
        let mut peer = opened(script).await;
        let create = next_create(&mut peer).await;
        assert_eq!(&create.key[..], key.as_bytes());
        peer.answer(&created(create.watch_id, revision));
        (peer, create.watch_id)
    });
    (watch.expect("the watch is created"), peer, id)
}

/// Another watch on the shared stream of `peer`.
async fn another_watch(
    client: &Client,
    peer: &mut Peer,
    key: &str,
    revision: i64,
) -> (WatchStream, i64) {
    let (watch, id) = tokio::join!(client.watch(key).into_future(), async {
        let create = next_create(peer).await;
        assert_eq!(&create.key[..], key.as_bytes());
        peer.answer(&created(create.watch_id, revision));
        create.watch_id
    });
    (watch.expect("the watch is created"), id)
}

#[tokio::test(start_paused = true)]
async fn a_broken_stream_resumes_every_watch_at_its_next_revision_on_the_next_endpoint() {
    let (script, client) = setup();
    let (mut a, mut peer, a_id) = first_watch(&script, &client, "a", 10).await;
    let (mut b, b_id) = another_watch(&client, &mut peer, "b", 10).await;
    assert_eq!(peer.endpoint(), A);
    assert_eq!(peer.method(), "/watch");
    peer.answer(&puts(a_id, "a", [11, 12]));
    peer.answer(&puts(b_id, "b", [13]));
    assert_eq!(recv(&mut a).await.revision(), 11);
    assert_eq!(recv(&mut a).await.revision(), 12);
    assert_eq!(recv(&mut b).await.revision(), 13);

    peer.fail(broken(A));
    let mut second = opened(&script).await;
    assert_eq!(second.endpoint(), B, "the failed endpoint is demoted");
    assert!(peer.is_closed());
    assert_eq!(script.demoted(), [A]);
    let mut creates = vec![
        next_create(&mut second).await,
        next_create(&mut second).await,
    ];
    creates.sort_by(|x, y| x.key.cmp(&y.key));
    // Each from its own first undelivered revision, under a fresh server-side ID.
    assert_eq!(
        (&creates[0].key[..], creates[0].start_revision),
        (&b"a"[..], 13)
    );
    assert_eq!(
        (&creates[1].key[..], creates[1].start_revision),
        (&b"b"[..], 14)
    );
    assert!(creates
        .iter()
        .all(|c| c.watch_id != a_id && c.watch_id != b_id));
    for create in &creates {
        second.answer(&created(create.watch_id, 14));
    }
    second.answer(&puts(creates[0].watch_id, "a", [13, 14]));
    assert_eq!(recv(&mut a).await.revision(), 13);
    assert_eq!(recv(&mut a).await.revision(), 14);
    assert_eq!(a.endpoint(), B);
    assert_eq!(client.stream_stats().watch_reconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn answers_for_an_older_incarnation_are_dropped() {
    let (script, client) = setup();
    let (mut watch, peer, old_id) = first_watch(&script, &client, "k", 10).await;
    peer.fail(broken(A));
    let mut second = opened(&script).await;
    let create = next_create(&mut second).await;
    assert_eq!(create.start_revision, 11);
    // The new stream still carries an answer under the old ID (etcd numbers its watches
    // per stream: the same ID may name another watch there): not this incarnation's.
    second.answer(&puts(old_id, "k", [50]));
    second.answer(&created(create.watch_id, 10));
    second.answer(&puts(create.watch_id, "k", [11]));
    let response = recv(&mut watch).await;
    assert_eq!(response.revision(), 11);
    assert_eq!(response.events()[0].kv().value(), b"v11");
    assert!(quiet(&mut watch, Duration::from_secs(5)).await);
}

#[tokio::test(start_paused = true)]
async fn etcd_3_4_refusing_a_create_with_id_minus_one_fails_the_oldest_pending_create() {
    let (script, client) = setup();
    script.set_version("3.4.20");
    let (mut first, mut peer, first_id) = first_watch(&script, &client, "a", 10).await;
    let c = client.clone();
    let refused = tokio::spawn(async move { c.watch("secret").await });
    let refused_create = next_create(&mut peer).await;
    let c = client.clone();
    let allowed = tokio::spawn(async move { c.watch("b").await });
    let allowed_create = next_create(&mut peer).await;
    assert!(refused_create.watch_id < allowed_create.watch_id);
    // etcd 3.4 answers a create it refuses under ID -1, not the ID asked for.
    peer.answer(&Wire {
        header: header(10),
        watch_id: -1,
        created: true,
        canceled: true,
        cancel_reason: "etcdserver: permission denied".into(),
        ..Wire::default()
    });
    peer.answer(&created(allowed_create.watch_id, 10));
    let error = refused.await.expect("task").expect_err("refused");
    assert_eq!(error.code(), Some(Code::PermissionDenied), "{error}");
    assert!(error.is_auth());
    let mut allowed = allowed.await.expect("task").expect("created");
    peer.answer(&puts(allowed_create.watch_id, "b", [11]));
    peer.answer(&puts(first_id, "a", [12]));
    assert_eq!(recv(&mut allowed).await.revision(), 11);
    assert_eq!(recv(&mut first).await.revision(), 12);
    // A -1 message without created/canceled/events is the stream's progress, not a refusal.
    first.request_progress().expect("shared stream");
    assert!(next_request(&mut peer).await.progress_request.is_some());
    peer.answer(&progress(-1, 12));
    let notified = recv(&mut first).await;
    assert!(notified.is_progress_notify());
    assert_eq!(notified.revision(), 12);
    assert_eq!(client.stream_stats().watch_reconnects, 0);
}

#[tokio::test(start_paused = true)]
async fn a_slow_consumer_is_paused_on_the_server_and_resumed_from_its_next_revision() {
    let (script, client) = setup();
    let (mut watch, mut peer, id) = first_watch(&script, &client, "k", 10).await;
    let n = BUFFER as i64 + 100;
    let last = 10 + n;
    // More revisions than the watch's buffer holds, while its consumer reads nothing.
    peer.answer(&puts(id, "k", 11..=last));
    let cancel = next_request(&mut peer).await;
    assert_eq!(
        cancel.cancel_request.map(|c| c.watch_id),
        Some(id),
        "the full watch is cancelled on the server"
    );
    // Events of the cancelled incarnation still on their way are dropped.
    peer.answer(&puts(id, "k", [last + 1]));
    for revision in 11..=last {
        assert_eq!(recv(&mut watch).await.revision(), revision);
    }
    // With room again: created anew from its next revision, under a new ID.
    let create = next_create(&mut peer).await;
    assert_eq!(create.start_revision, last + 1);
    assert_ne!(create.watch_id, id);
    peer.answer(&created(create.watch_id, last));
    peer.answer(&puts(create.watch_id, "k", [last + 1]));
    assert_eq!(recv(&mut watch).await.revision(), last + 1);
    assert!(quiet(&mut watch, Duration::from_secs(5)).await, "no repeat");
    assert_eq!(
        client.stream_stats().watch_reconnects,
        0,
        "paused, not reconnected"
    );
    assert!(script.try_opened().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_permanent_stream_error_ends_every_watch_on_the_stream() {
    let (script, client) = setup();
    let (mut a, mut peer, _) = first_watch(&script, &client, "a", 10).await;
    let (mut b, _) = another_watch(&client, &mut peer, "b", 10).await;
    peer.answer_raw(&b"{\"result\": not json"[..]);
    for watch in [&mut a, &mut b] {
        let error = recv_error(watch).await;
        assert!(matches!(error, Error::Transport(_)), "{error:?}");
        assert!(error.to_string().contains("bad answer"), "{error}");
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        script.try_opened().is_none(),
        "no reconnect after a permanent error"
    );
    assert!(script.demoted().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_compaction_ends_only_its_watch_with_the_compact_revision() {
    let (script, client) = setup();
    let (mut old, mut peer, old_id) = first_watch(&script, &client, "old", 10).await;
    let (mut other, other_id) = another_watch(&client, &mut peer, "other", 10).await;
    peer.answer(&Wire {
        header: header(60),
        watch_id: old_id,
        canceled: true,
        compact_revision: 50,
        cancel_reason: "mvcc: required revision has been compacted".into(),
        ..Wire::default()
    });
    let error = recv_error(&mut old).await;
    assert!(
        matches!(
            error,
            Error::Compacted {
                compact_revision: 50
            }
        ),
        "{error:?}"
    );
    peer.answer(&puts(other_id, "other", [61]));
    assert_eq!(recv(&mut other).await.revision(), 61);
    assert_eq!(client.stream_stats().watch_reconnects, 0);
}

#[tokio::test(start_paused = true)]
async fn a_silent_member_fails_the_liveness_probe_and_the_stream_moves() {
    let (script, client) = setup();
    let (mut watch, peer, id) = first_watch(&script, &client, "k", 10).await;
    peer.answer(&puts(id, "k", [11]));
    assert_eq!(recv(&mut watch).await.revision(), 11);
    let silent_since = Instant::now();
    // Frozen: no message, no pong, no answer to the leader check.
    peer.answer_pings(false);
    script.set_leader(A, Leader::Silent);
    let mut second = opened(&script).await;
    let moved_after = silent_since.elapsed();
    // `idle` (1 s) of silence, then a probe that may take `timeout` (1.5 s).
    assert!(
        moved_after >= Duration::from_millis(2500) && moved_after < Duration::from_millis(2600),
        "{moved_after:?}"
    );
    assert_eq!(second.endpoint(), B);
    assert!(peer.is_closed());
    assert!(script.leader_checks().iter().all(|e| e == A));
    let create = next_create(&mut second).await;
    assert_eq!(create.start_revision, 12);
    second.answer(&created(create.watch_id, 11));
    second.answer(&puts(create.watch_id, "k", [12]));
    assert_eq!(recv(&mut watch).await.revision(), 12);
    assert_eq!(client.stream_stats().watch_reconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn a_member_without_a_leader_while_another_has_one_is_left_at_once() {
    let (script, client) = setup();
    let (_watch, peer, _) = first_watch(&script, &client, "k", 10).await;
    let silent_since = Instant::now();
    script.set_leader(A, Leader::No);
    let second = opened(&script).await;
    let moved_after = silent_since.elapsed();
    // At the first probe, not at its timeout: the others have a leader, A is cut off.
    assert!(
        moved_after >= Duration::from_secs(1) && moved_after < Duration::from_millis(1100),
        "{moved_after:?}"
    );
    assert_eq!(second.endpoint(), B);
    assert!(peer.is_closed());
    let checks = script.leader_checks();
    assert_eq!(checks[0], A);
    assert!(checks[1..].iter().all(|e| e == B || e == C), "{checks:?}");
}

#[tokio::test(start_paused = true)]
async fn an_election_moves_nothing() {
    let (script, client) = setup();
    let (mut watch, peer, id) = first_watch(&script, &client, "k", 10).await;
    for endpoint in [A, B, C] {
        script.set_leader(endpoint, Leader::No);
    }
    // A leader again 1.7 s in: 0.7 s into the first probe, within its 1.5 s.
    let s = script.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1700)).await;
        for endpoint in [A, B, C] {
            s.set_leader(endpoint, Leader::Yes);
        }
    });
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(script.try_opened().is_none(), "the stream stayed");
    assert!(!peer.is_closed());
    let asked_a = script.leader_checks().iter().filter(|e| *e == A).count();
    assert!(
        asked_a >= 4,
        "asked again while there is no leader: {asked_a}"
    );
    peer.answer(&puts(id, "k", [11]));
    assert_eq!(recv(&mut watch).await.revision(), 11);
    assert_eq!(client.stream_stats().watch_reconnects, 0);
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_progress_request_does_not_make_a_stream_dead() {
    let (script, client) = setup();
    let (mut watch, mut peer, id) = first_watch(&script, &client, "k", 10).await;
    watch.request_progress().expect("shared stream");
    assert!(next_request(&mut peer).await.progress_request.is_some());
    // etcd 3.5.13+ may never answer it; the stream is otherwise silent, but its
    // connection answers pings and its member has a leader.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(script.try_opened().is_none(), "the stream stayed");
    assert!(!peer.is_closed());
    assert!(
        peer.try_request::<WatchRequest>().is_none(),
        "the liveness probe sends no progress request"
    );
    assert!(script.leader_checks().len() >= 10, "probed while silent");
    peer.answer(&puts(id, "k", [11]));
    assert_eq!(recv(&mut watch).await.revision(), 11);
    assert_eq!(client.stream_stats().watch_reconnects, 0);
}

#[tokio::test(start_paused = true)]
async fn progress_from_a_server_that_may_send_it_ahead_of_events_is_clamped() {
    let (script, client) = setup();
    script.set_version("3.5.1");
    let (mut watch, mut peer, id) = first_watch(&script, &client, "k", 10).await;
    peer.answer(&puts(id, "k", [11, 12]));
    assert_eq!(recv(&mut watch).await.revision(), 11);
    assert_eq!(recv(&mut watch).await.revision(), 12);
    watch.request_progress().expect("shared stream");
    assert!(next_request(&mut peer).await.progress_request.is_some());
    // etcd before 3.5.8 may answer at 20 while the events of 15 are still queued.
    peer.answer(&progress(-1, 20));
    let notified = recv(&mut watch).await;
    assert!(notified.is_progress_notify());
    assert_eq!(
        notified.revision(),
        12,
        "only what the watch delivered itself"
    );
    peer.answer(&puts(id, "k", [15]));
    assert_eq!(recv(&mut watch).await.revision(), 15);
    // Its resume point did not move past 15 either.
    peer.fail(broken(A));
    let mut second = opened(&script).await;
    assert_eq!(next_create(&mut second).await.start_revision, 16);
}

/// etcd #20221: a watch from a future revision, on a server that answers progress with its
/// own older revision, and a member behind what the watch delivered, after a move: neither
/// notification is delivered (it would go back), the resume point never goes below the
/// start, and no event older than the start reaches the consumer.
#[tokio::test(start_paused = true)]
async fn progress_older_than_the_watch_is_not_delivered_and_never_lowers_its_resume_point() {
    let (script, client) = setup();
    script.set_version("3.5.1");
    let (watch, (mut peer, id)) = tokio::join!(
        client
            .watch("k")
            .start_revision(50)
            .progress_notify()
            .into_future(),
        async {
            let mut peer = opened(&script).await;
            let create = next_create(&mut peer).await;
            assert_eq!(create.start_revision, 50);
            peer.answer(&created(create.watch_id, 10));
            (peer, create.watch_id)
        }
    );
    let mut watch = watch.expect("created");
    // The watch's own periodic notification and the answer to a progress request, both at
    // the server's revision 10: older than the watch's start.
    peer.answer(&progress(id, 10));
    watch.request_progress().expect("shared stream");
    assert!(next_request(&mut peer).await.progress_request.is_some());
    peer.answer(&progress(-1, 10));
    assert!(
        quiet(&mut watch, Duration::from_secs(5)).await,
        "nothing older than the start"
    );
    // A server that ignores the start (etcd #20221) sends an older event: dropped.
    peer.answer(&puts(id, "k", [30]));
    peer.answer(&puts(id, "k", [50, 52]));
    assert_eq!(recv(&mut watch).await.revision(), 50);
    assert_eq!(recv(&mut watch).await.revision(), 52);
    peer.answer(&progress(id, 60));
    assert_eq!(recv(&mut watch).await.revision(), 60);

    // Moved to a member behind it: its notification at 55 is not delivered, and the
    // next stream still resumes after 60.
    peer.fail(broken(A));
    let mut second = opened(&script).await;
    let create = next_create(&mut second).await;
    assert_eq!(create.start_revision, 61);
    second.answer(&created(create.watch_id, 55));
    second.answer(&progress(create.watch_id, 55));
    assert!(
        quiet(&mut watch, Duration::from_secs(5)).await,
        "no progress going back"
    );
    second.answer(&progress(create.watch_id, 70));
    assert_eq!(recv(&mut watch).await.revision(), 70);
}

#[tokio::test(start_paused = true)]
async fn progress_from_a_server_that_orders_it_moves_the_resume_point() {
    let (script, client) = setup();
    let (mut watch, mut peer, id) = first_watch(&script, &client, "k", 10).await;
    peer.answer(&puts(id, "k", [11]));
    assert_eq!(recv(&mut watch).await.revision(), 11);
    watch.request_progress().expect("shared stream");
    assert!(next_request(&mut peer).await.progress_request.is_some());
    peer.answer(&progress(-1, 20));
    let notified = recv(&mut watch).await;
    assert!(notified.is_progress_notify());
    assert_eq!(notified.revision(), 20);
    peer.fail(broken(A));
    let mut second = opened(&script).await;
    assert_eq!(next_create(&mut second).await.start_revision, 21);
}

#[tokio::test(start_paused = true)]
async fn without_a_shared_stream_each_watch_has_its_own_and_resumes_it() {
    let (script, client) = setup();
    script.next_open(Open::Refuse);
    let (watch, (mut peer, id)) = tokio::join!(client.watch("k").into_future(), async {
        let mut peer = opened(&script).await;
        // The per-call stream's one request is the create.
        let create = next_create(&mut peer).await;
        assert_eq!(create.start_revision, 0);
        peer.answer(&created(create.watch_id, 10));
        (peer, create.watch_id)
    });
    let mut watch = watch.expect("created");
    let error = watch.request_progress().expect_err("per-call");
    assert!(matches!(error, Error::Unsupported(_)), "{error:?}");
    peer.answer(&puts(id, "k", [11]));
    assert_eq!(recv(&mut watch).await.revision(), 11);
    peer.end();
    let mut second = opened(&script).await;
    assert_eq!(second.endpoint(), B);
    let create = next_create(&mut second).await;
    assert_eq!(create.start_revision, 12);
    second.answer(&created(create.watch_id, 11));
    second.answer(&puts(create.watch_id, "k", [12]));
    assert_eq!(recv(&mut watch).await.revision(), 12);
    assert_eq!(client.stream_stats().watch_reconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn only_a_delivered_event_resets_the_reconnect_backoff() {
    let (script, client) = setup();
    let (mut watch, peer, _) = first_watch(&script, &client, "k", 10).await;
    // Three streams in a row break right after the watch is created again on them.
    let mut peer = peer;
    let mut gaps = Vec::new();
    for _ in 0..3 {
        let broke = Instant::now();
        peer.fail(broken(peer.endpoint()));
        let mut next = opened(&script).await;
        gaps.push(broke.elapsed());
        let create = next_create(&mut next).await;
        next.answer(&created(create.watch_id, 10));
        peer = next;
    }
    // The first reconnect after a failure goes at once; later ones back off (at least
    // half of 100 ms doubled), since a `created` is no proof of a working stream.
    assert_eq!(gaps[0], Duration::ZERO, "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(100), "{gaps:?}");
    assert!(gaps[2] >= Duration::from_millis(200), "{gaps:?}");
    // An event resets it: the next break reconnects at once again.
    let create_id = {
        peer.fail(broken(peer.endpoint()));
        let mut next = opened(&script).await;
        let create = next_create(&mut next).await;
        next.answer(&created(create.watch_id, 10));
        next.answer(&puts(create.watch_id, "k", [11]));
        assert_eq!(recv(&mut watch).await.revision(), 11);
        peer = next;
        create.watch_id
    };
    assert!(create_id > 0);
    let broke = Instant::now();
    peer.fail(broken(peer.endpoint()));
    let _ = opened(&script).await;
    assert_eq!(broke.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn the_last_watch_gone_closes_the_idle_stream_and_the_next_opens_another() {
    let (script, client) = setup();
    let (watch, mut peer, id) = first_watch(&script, &client, "k", 10).await;
    drop(watch);
    let cancel = next_request(&mut peer).await;
    assert_eq!(cancel.cancel_request.map(|c| c.watch_id), Some(id));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(peer.is_closed(), "closed after `idle` with nothing on it");
    assert!(script.leader_checks().is_empty(), "nothing to probe");
    let (mut again, mut second) = tokio::join!(client.watch("k2").into_future(), async {
        let mut second = opened(&script).await;
        let create = next_create(&mut second).await;
        second.answer(&created(create.watch_id, 12));
        second.answer(&puts(create.watch_id, "k2", [13]));
        second
    });
    let again = again.as_mut().expect("created");
    assert_eq!(recv(again).await.revision(), 13);
    assert_eq!(second.endpoint(), A, "a closed idle stream is no failure");
    assert!(second.try_request::<WatchRequest>().is_none());
    assert_eq!(client.stream_stats().watch_reconnects, 0);
}

#[tokio::test(start_paused = true)]
async fn a_watch_s_own_progress_notification_is_delivered_and_moves_its_resume_point() {
    let (script, client) = setup();
    script.set_version("3.5.1");
    let (watch, (peer, id)) =
        tokio::join!(client.watch("k").progress_notify().into_future(), async {
            let mut peer = opened(&script).await;
            let create = next_create(&mut peer).await;
            assert!(create.progress_notify);
            peer.answer(&created(create.watch_id, 10));
            (peer, create.watch_id)
        });
    let mut watch = watch.expect("created");
    peer.answer(&puts(id, "k", [11]));
    assert_eq!(recv(&mut watch).await.revision(), 11);
    // The watch's own (periodic) notification: sent by etcd only once it is synced.
    peer.answer(&progress(id, 30));
    let notified = recv(&mut watch).await;
    assert!(notified.is_progress_notify());
    assert_eq!(notified.revision(), 30);
    peer.fail(broken(A));
    let mut second = opened(&script).await;
    let create = next_create(&mut second).await;
    assert_eq!(create.start_revision, 31);
    assert!(create.progress_notify, "the options survive a reconnect");
}

#[tokio::test(start_paused = true)]
async fn a_watch_cancelled_for_no_leader_moves_the_whole_stream() {
    let (script, client) = setup();
    let (mut a, mut peer, a_id) = first_watch(&script, &client, "a", 10).await;
    let (mut b, _) = another_watch(&client, &mut peer, "b", 10).await;
    peer.answer(&Wire {
        header: header(10),
        watch_id: a_id,
        canceled: true,
        cancel_reason: "etcdserver: no leader".into(),
        ..Wire::default()
    });
    let mut second = opened(&script).await;
    assert_eq!(second.endpoint(), B);
    assert!(peer.is_closed());
    let mut creates = vec![
        next_create(&mut second).await,
        next_create(&mut second).await,
    ];
    creates.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(creates[0].start_revision, 11);
    assert_eq!(creates[1].start_revision, 11);
    for create in &creates {
        second.answer(&created(create.watch_id, 10));
    }
    second.answer(&puts(creates[0].watch_id, "a", [11]));
    second.answer(&puts(creates[1].watch_id, "b", [12]));
    assert_eq!(recv(&mut a).await.revision(), 11, "not ended: moved");
    assert_eq!(recv(&mut b).await.revision(), 12);
    assert_eq!(client.stream_stats().watch_reconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn a_callback_watch_whose_callback_panicked_says_its_task_stopped() {
    let (script, client) = setup();
    let watching = client
        .watch("k")
        .start_revision(5)
        .on_event(|_| panic!("the callback fails (expected by the test)"));
    let (handle, (peer, id)) = tokio::join!(watching, async {
        let mut peer = opened(&script).await;
        let create = next_create(&mut peer).await;
        assert_eq!(create.start_revision, 5);
        peer.answer(&created(create.watch_id, 5));
        (peer, create.watch_id)
    });
    let handle = handle.expect("the watch is created");
    peer.answer(&puts(id, "k", [5]));
    let error = tokio::time::timeout(PATIENCE, handle.ended())
        .await
        .expect("the handle learns that its task is gone");
    assert!(matches!(error, Error::Stopped { .. }), "{error:?}");
    assert!(error.is_stopped());
    assert_eq!(error.to_string(), "the watch's callback task has stopped");
    assert!(!error.is_outcome_unknown() && !error.is_timeout() && !error.is_connect());
    assert!(error.status().is_none() && error.code().is_none());
    // What the handle is asked afterwards fails the same way.
    let added = handle.add(client.watch("other")).await;
    assert!(added.is_err_and(|e| e.is_stopped()));
}
