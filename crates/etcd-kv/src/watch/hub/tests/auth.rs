//! The hub with auth on: tokens refused on the stream, on a create, at the opening, and
//! renewals (where, when, and what a renewal refused for good does).

use super::*;

fn invalid_token(endpoint: &str) -> Error {
    Error::server(
        endpoint,
        Status::new(
            Code::Unauthenticated.as_i32(),
            "etcdserver: invalid auth token",
        ),
    )
}

#[tokio::test(start_paused = true)]
async fn an_invalid_token_renews_it_and_reopens_the_stream_every_time() {
    let (script, client) = setup();
    script.set_auth(true);
    let (mut watch, mut peer, mut id) = first_watch(&script, &client, "k", 10).await;
    let mut next = 11;
    for round in 1..=3 {
        peer.answer(&puts(id, "k", [next]));
        assert_eq!(recv(&mut watch).await.revision(), next);
        next += 1;
        let refused_by = peer.endpoint().to_string();
        peer.fail(invalid_token(&refused_by));
        let mut reopened = opened(&script).await;
        assert_eq!(script.renewals(), round);
        // Renewed at the member that refused the token (it answers), not wherever the
        // client's unary calls go.
        assert_eq!(script.renewed_at().last(), Some(&refused_by));
        assert!(peer.is_closed());
        let create = next_create(&mut reopened).await;
        assert_eq!(create.start_revision, next);
        reopened.answer(&created(create.watch_id, next - 1));
        (peer, id) = (reopened, create.watch_id);
    }
    peer.answer(&puts(id, "k", [next]));
    assert_eq!(recv(&mut watch).await.revision(), next);
}

#[tokio::test(start_paused = true)]
async fn a_refused_token_is_renewed_after_the_backoff_right_before_the_stream_reopens() {
    // etcd's simple tokens expire when unused for `--auth-token-ttl` seconds: renewed
    // before a backoff longer than that, a token reached the next stream expired, was
    // refused again, and the watch never came back (seen with a 2 s TTL on etcd 3.4).
    let (script, client) = setup();
    script.set_auth(true);
    let (mut watch, mut peer, _) = first_watch(&script, &client, "k", 10).await;
    let mut waited = Duration::ZERO;
    for round in 1..=6 {
        let refused = Instant::now();
        let endpoint = peer.endpoint().to_string();
        peer.fail(invalid_token(&endpoint));
        let reopened = opened(&script).await;
        waited = refused.elapsed();
        assert_eq!(script.renewals(), round);
        assert_eq!(
            script.last_renewal(),
            Some(Instant::now()),
            "round {round}: renewed {:?} before the stream reopened, {waited:?} after the refusal",
            Instant::now() - script.last_renewal().unwrap()
        );
        peer = reopened;
    }
    // The sixth delay's base is 3.2 s (100 ms doubled five times), jitter ±50 %: at least
    // 1.6 s, where the first was at most 150 ms.
    assert!(
        waited >= Duration::from_millis(1500),
        "the backoff grew: {waited:?}"
    );
    let create = next_create(&mut peer).await;
    peer.answer(&created(create.watch_id, 10));
    peer.answer(&puts(create.watch_id, "k", [11]));
    assert_eq!(recv(&mut watch).await.revision(), 11);
}

#[tokio::test(start_paused = true)]
async fn a_token_renewal_refused_for_good_ends_the_watches() {
    let (script, client) = setup();
    script.set_auth(true);
    let (mut watch, peer, _) = first_watch(&script, &client, "k", 10).await;
    script.fail_next_renewal(Error::server(
        A,
        Status::new(
            Code::InvalidArgument.as_i32(),
            "etcdserver: authentication failed, invalid user ID or password",
        ),
    ));
    peer.fail(invalid_token(A));
    let error = recv_error(&mut watch).await;
    assert!(error.is_auth(), "{error:?}");
    assert!(
        error.to_string().contains("authentication failed"),
        "{error}"
    );
    assert_eq!(script.renewals(), 1);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(script.try_opened().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_create_refused_permission_denied_with_auth_on_is_retried_once_with_a_new_token() {
    let (script, client) = setup();
    script.set_auth(true);
    let refused = |watch_id| Wire {
        header: header(10),
        watch_id,
        created: true,
        canceled: true,
        cancel_reason: "etcdserver: permission denied".into(),
        ..Wire::default()
    };
    let (watch, (first, second)) = tokio::join!(client.watch("k").into_future(), async {
        let mut first = opened(&script).await;
        let create = next_create(&mut first).await;
        // What etcd answers a create carrying an expired token: renew it, reopen the
        // stream (which carries the token) at once, on the same member, and ask again.
        first.answer(&refused(create.watch_id));
        let mut second = opened(&script).await;
        assert_eq!(script.renewals(), 1);
        let create = next_create(&mut second).await;
        assert_eq!(create.start_revision, 0);
        // Refused again with the fresh token: for real.
        second.answer(&refused(create.watch_id));
        (first, second)
    });
    let error = watch.expect_err("refused twice");
    assert_eq!(error.code(), Some(Code::PermissionDenied), "{error}");
    assert_eq!(script.renewals(), 1, "one renewal per created watch");
    assert!(first.is_closed());
    assert_eq!(second.endpoint(), A, "not a member's fault: no move");
    assert!(script.demoted().is_empty());
    assert_eq!(client.stream_stats().watch_reconnects, 0);
}

#[tokio::test(start_paused = true)]
async fn a_stream_opening_refused_for_an_invalid_token_renews_it_and_tries_again() {
    let (script, client) = setup();
    script.set_auth(true);
    let (mut watch, peer, _) = first_watch(&script, &client, "k", 10).await;
    script.next_open(Open::Fail(invalid_token(B)));
    peer.fail(broken(A));
    let mut second = opened(&script).await;
    assert_eq!(script.renewals(), 1, "renewed after the refused opening");
    let create = next_create(&mut second).await;
    assert_eq!(create.start_revision, 11);
    second.answer(&created(create.watch_id, 10));
    second.answer(&puts(create.watch_id, "k", [11]));
    assert_eq!(recv(&mut watch).await.revision(), 11);
}
