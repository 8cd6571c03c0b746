//! Auth administration on a server of its own (enabling auth is global): a read-only role on
//! a prefix, users and roles round-trips, password change, role revocation.

use crate::key;
use etcd_kv::{Client, Code, Error, PermissionType};
use std::time::Duration;

const ROOT_PASSWORD: &str = "root-secret";

async fn login(endpoint: &str, user: &str, password: &str) -> etcd_kv::Result<Client> {
    crate::builder()
        .endpoint(endpoint)
        .credentials(user, password)
        .connect()
        .await
}

/// Adds the `root` role and user (password [`ROOT_PASSWORD`]), as etcd needs before auth
/// goes on.
async fn add_root(admin: &Client) {
    admin.role_add("root").await.unwrap();
    admin
        .user_add("root")
        .password(ROOT_PASSWORD)
        .await
        .unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
}

fn assert_auth<T: std::fmt::Debug>(what: &str, result: etcd_kv::Result<T>) {
    match result {
        Err(e) => assert!(e.is_auth(), "{what}: expected an auth error, got {e:?}"),
        Ok(v) => panic!("{what}: expected an auth error, got {v:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(what: &str, result: etcd_kv::Result<T>) {
    match result {
        Err(Error::NotFound(_)) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn a_read_only_role_on_a_prefix_reads_there_and_nothing_else() {
    let Some(etcd) = xtask::testing::start(xtask::testing::builder()) else {
        return;
    };
    let endpoint = etcd.endpoint(0);
    let p = xtask::testing::unique_prefix("auth");
    let app = format!("{p}app/");
    let admin = Client::connect(&endpoint).await.expect("connect");
    let v35 = etcd.version().starts_with("3.5");

    // Data first, while auth is off.
    admin.put(key(&app, "a"), "1").await.unwrap();
    admin.put(key(&app, "b"), "2").await.unwrap();
    admin.put(key(&p, "other"), "3").await.unwrap();

    match admin.auth_status().await {
        Ok(status) => assert!(v35 && !status.enabled(), "{status:?}"),
        Err(e) => assert!(
            !v35 && matches!(e, Error::Unsupported(_)),
            "auth status on {}: {e:?}",
            etcd.version()
        ),
    }

    add_root(&admin).await;
    admin.role_add("reader").await.unwrap();
    admin
        .role_grant_permission("reader")
        .prefix(app.as_str())
        .read()
        .await
        .unwrap();
    admin.user_add("alice").password("pw1").await.unwrap();
    admin.user_grant_role("alice", "reader").await.unwrap();
    admin.auth_enable().await.unwrap();

    // The old client has no token now: etcd says the user name is empty, a typed auth error.
    let err = admin.put(key(&p, "x"), "v").await.unwrap_err();
    assert!(err.is_auth(), "a put without credentials: {err:?}");
    let root = login(&endpoint, "root", ROOT_PASSWORD).await.unwrap();
    if v35 {
        let status = root.auth_status().await.unwrap();
        assert!(status.enabled() && status.auth_revision() > 0, "{status:?}");
    }

    // Listing and getting round-trip.
    assert_eq!(root.user_list().await.unwrap(), ["alice", "root"]);
    assert_eq!(root.role_list().await.unwrap(), ["reader", "root"]);
    let alice_user = root.user_get("alice").await.unwrap();
    assert_eq!(
        (alice_user.name(), alice_user.roles()),
        ("alice", &["reader".to_string()][..])
    );
    assert!(alice_user.has_role("reader") && !alice_user.has_role("root"));
    let reader = root.role_get("reader").await.unwrap();
    assert_eq!(reader.name(), "reader");
    let [perm] = reader.permissions() else {
        panic!("one permission expected: {reader:?}");
    };
    assert_eq!(perm.key(), app.as_bytes());
    assert_eq!(
        perm.range_end(),
        etcd_kv::prefix_end(app.as_bytes()).as_ref()
    );
    assert_eq!(perm.perm_type(), PermissionType::Read);
    assert!(perm.can_read() && !perm.can_write() && perm.is_range());
    assert_not_found("an unknown user", root.user_get("nobody").await);
    assert_not_found("an unknown role", root.role_get("nobody").await);

    // Alice reads under the prefix...
    let alice = login(&endpoint, "alice", "pw1").await.unwrap();
    let a = alice.get(key(&app, "a")).await.unwrap().expect("app/a");
    assert_eq!(a.value(), b"1");
    let page = alice.range(app.as_str()).prefix().await.unwrap();
    assert_eq!(page.count(), 2);
    let watch = alice.watch(key(&app, "a")).await;
    drop(watch.expect("a watch where alice may read"));

    // ...and nowhere else; writes are refused everywhere.
    assert_auth("a get outside", alice.get(key(&p, "other")).await);
    assert_auth("a wider range", alice.range(p.as_str()).prefix().await);
    assert_auth("a put inside", alice.put(key(&app, "a"), "x").await);
    assert_auth("a put outside", alice.put(key(&p, "other"), "x").await);
    assert_auth("a delete inside", alice.delete(key(&app, "a")).await);
    assert_auth(
        "a watch outside",
        alice.watch(key(&p, "other")).await.map(drop),
    );
    assert_auth("user listing", alice.user_list().await);
    assert_auth(
        "granting herself more",
        alice
            .role_grant_permission("reader")
            .prefix(p.as_str())
            .read_write()
            .await,
    );
    assert_eq!(
        root.get(key(&app, "a")).await.unwrap().unwrap().value(),
        b"1",
        "nothing written"
    );

    // Through a namespace, permission keys are the namespace's.
    let ns = root.with_namespace(p.as_str());
    ns.role_grant_permission("reader")
        .key("one")
        .write()
        .await
        .unwrap();
    let perms = ns.role_get("reader").await.unwrap().permissions().to_vec();
    assert!(
        perms.iter().any(|q| q.key() == b"one"
            && q.range_end().is_empty()
            && q.perm_type() == PermissionType::Write),
        "{perms:?}"
    );
    alice
        .put(key(&p, "one"), "w")
        .await
        .expect("a write alice may now do");
    ns.role_revoke_permission("reader")
        .key("one")
        .await
        .unwrap();
    assert_auth(
        "a put after the revoke",
        alice.put(key(&p, "one"), "w").await,
    );
    assert_not_found(
        "revoking it again",
        ns.role_revoke_permission("reader").key("one").await,
    );
    assert_eq!(
        root.role_get("reader").await.unwrap().permissions().len(),
        1
    );

    // A new password: the old one no longer logs in, the new one does.
    root.user_change_password("alice", "pw2").await.unwrap();
    let old = match login(&endpoint, "alice", "pw1").await {
        Ok(client) => client.get(key(&app, "a")).await.map(drop),
        Err(e) => Err(e),
    };
    assert_auth("the old password", old);
    let alice = login(&endpoint, "alice", "pw2").await.unwrap();
    assert!(alice.get(key(&app, "a")).await.unwrap().is_some());

    // Revoking the role takes the access away.
    root.user_revoke_role("alice", "reader").await.unwrap();
    assert!(root.user_get("alice").await.unwrap().roles().is_empty());
    assert_auth("a read after the revoke", alice.get(key(&app, "a")).await);
    assert_auth(
        "a watch after the revoke",
        alice.watch(key(&app, "a")).await.map(drop),
    );
    finish(&root, v35).await;
}

/// Deletes the user and role, disables auth, checks the status.
async fn finish(root: &Client, v35: bool) {
    assert_not_found(
        "revoking a role not held",
        root.user_revoke_role("alice", "reader").await,
    );
    root.user_delete("alice").await.unwrap();
    root.role_delete("reader").await.unwrap();
    assert_eq!(root.user_list().await.unwrap(), ["root"]);
    assert_eq!(root.role_list().await.unwrap(), ["root"]);
    assert_not_found("deleting it again", root.user_delete("alice").await);
    root.auth_disable().await.unwrap();
    // The client with credentials goes on without a token; one without works again.
    root.put("after-auth", "root").await.unwrap();
    // Enabled again: it authenticates again by itself.
    root.auth_enable().await.unwrap();
    root.put("after-auth", "root again").await.unwrap();
    root.auth_disable().await.unwrap();
    let plain = Client::connect(root.current_endpoint()).await.unwrap();
    plain.put("after-auth", "v").await.unwrap();
    if v35 {
        assert!(!plain.auth_status().await.unwrap().enabled());
    }
}

#[tokio::test]
async fn permission_builders_refuse_a_missing_key_before_sending() {
    let c = crate::unreachable_client();
    for result in [
        c.role_grant_permission("r").read().await,
        c.role_revoke_permission("r").await,
        c.role_grant_permission("r").key("").await,
        c.user_add("").password("p").await,
        c.role_add("").await,
    ] {
        match result {
            Err(Error::InvalidInput { source: None, .. }) => {}
            other => panic!("expected InvalidInput raised by the client, got {other:?}"),
        }
    }
}

/// `(minor, patch)` of an etcd 3 version such as `3.5.30`.
fn minor_patch(etcd: &xtask::Etcd) -> (u64, u64) {
    let mut parts = etcd.version().split('.').skip(1).map(|p| {
        p.split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    });
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// With auth on, etcd 3.4.42+, 3.5.28+ and 3.6.9+ (CVE-2026-33413) serve lease
/// time-to-live, leases and keep-alive, alarm and member list only to an authenticated
/// user; status only to an admin on 3.5.28 to 3.5.31 and 3.6.9 to 3.6.11 (and 3.4.42+).
/// Keep-alives then go through plain POSTs carrying the token (over the gateway; over gRPC
/// the token is metadata of the keep-alive stream), and a refusal is a typed auth error
/// that keeps the server's code and message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_status_alarms_and_members_with_auth_on() {
    let Some(etcd) = xtask::testing::start(xtask::testing::builder()) else {
        return;
    };
    let (minor, patch) = minor_patch(&etcd);
    let needs_user = match minor {
        4 => patch >= 42,
        5 => patch >= 28,
        6 => patch >= 9,
        other => other > 6,
    };
    let status_needs_admin = match minor {
        4 => patch >= 42,
        5 => (28..32).contains(&patch),
        6 => (9..12).contains(&patch),
        _ => false,
    };
    let endpoint = etcd.endpoint(0);
    let admin = Client::connect(&endpoint).await.expect("connect");
    add_root(&admin).await;
    admin.role_add("nothing").await.unwrap();
    admin.user_add("alice").password("pw").await.unwrap();
    admin.user_grant_role("alice", "nothing").await.unwrap();
    admin.auth_enable().await.unwrap();
    let root = login(&endpoint, "root", ROOT_PASSWORD).await.unwrap();
    let alice = login(&endpoint, "alice", "pw").await.unwrap();

    // Any user keeps a lease alive, for longer than its TTL, and asks about it.
    for (who, client) in [("root", &root), ("alice", &alice)] {
        let keeper = client.lease_keeper(2).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(keeper.lost_reason(), None, "{who}'s lease is kept");
        let ttl = client.lease_time_to_live(keeper.id()).await.unwrap();
        assert!(ttl.ttl() > 0, "{who}: {ttl:?}");
        assert!(
            client.leases().await.unwrap().contains(&keeper.id()),
            "{who}"
        );
        assert_eq!(
            client.lease_keep_alive_once(keeper.id()).await.unwrap(),
            2,
            "{who}"
        );
        assert!(!client.member_list().await.unwrap().is_empty(), "{who}");
        assert!(client.alarms().await.unwrap().is_empty(), "{who}");
        keeper.revoke().await.unwrap();
    }

    // Status: root always; alice, who is no admin, where status needs one.
    let status = root.status().await.unwrap();
    assert_eq!(status.version(), etcd.version());
    match alice.status().await {
        Ok(status) => assert!(!status_needs_admin, "{status}"),
        Err(e) => {
            assert!(status_needs_admin, "{e:?}");
            assert!(e.is_auth(), "a typed auth error: {e:?}");
            assert_eq!(e.code(), Some(Code::PermissionDenied), "{e}");
            assert!(e.to_string().contains("permission denied"), "{e}");
        }
    }

    // Without a token: refused where a user is needed, with the server's code and message.
    let lease = root.lease_grant(60).await.unwrap();
    let anonymous = crate::builder().endpoint(&endpoint).build().unwrap();
    let refused = |what: &str, result: Result<(), Error>| match result {
        Ok(()) => assert!(!needs_user, "{what} without a token on {}", etcd.version()),
        Err(e) => {
            assert!(needs_user, "{what}: {e:?}");
            assert!(e.is_auth(), "{what}: a typed auth error: {e:?}");
            assert_eq!(e.code(), Some(Code::InvalidArgument), "{what}: {e}");
            assert!(e.to_string().contains("user name is empty"), "{what}: {e}");
        }
    };
    refused(
        "time-to-live",
        anonymous.lease_time_to_live(lease.id()).await.map(drop),
    );
    refused("leases", anonymous.leases().await.map(drop));
    refused(
        "keep-alive",
        anonymous.lease_keep_alive_once(lease.id()).await.map(drop),
    );
    refused("member list", anonymous.member_list().await.map(drop));
    refused("alarms", anonymous.alarms().await.map(drop));
    if status_needs_admin {
        refused("status", anonymous.status().await.map(drop));
    }
    root.lease_revoke(lease.id()).await.unwrap();
    root.auth_disable().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_older_than_the_auth_store_is_renewed_once_and_the_write_goes_through() {
    // etcd refuses a write whose token predates the last change to users or roles
    // ("revision of auth store is old", before applying anything); Go's client renews
    // its token and retries, and so must this one (etcd #13300, jetcd #1201). JWT tokens
    // carry the revision they were issued at (simple tokens take the current one, and
    // meet it only in a race with an auth change).
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let jwt = format!(
        "--auth-token=jwt,pub-key={fixtures}/jwt-test-only.pub,priv-key={fixtures}/jwt-test-only.key,sign-method=RS256,ttl=10m"
    );
    let Some(etcd) = xtask::testing::start(xtask::testing::builder().arg(&jwt)) else {
        return;
    };
    let endpoint = etcd.endpoint(0);
    let p = xtask::testing::unique_prefix("auth-revision");
    let admin = Client::connect(&endpoint).await.expect("connect");
    add_root(&admin).await;
    admin.auth_enable().await.unwrap();
    let writer = login(&endpoint, "root", ROOT_PASSWORD).await.unwrap();
    let root = login(&endpoint, "root", ROOT_PASSWORD).await.unwrap();
    writer.put(key(&p, "before"), "1").await.unwrap();
    for round in 0..3 {
        // Any change to users or roles moves the auth store's revision past the token's.
        root.user_add(format!("{p}user{round}"))
            .password("pw")
            .await
            .unwrap();
        let put = writer.put(key(&p, format!("after{round}")), "2").await;
        assert!(put.is_ok(), "round {round}: {put:?}");
        let txn = writer
            .txn()
            .and_then([etcd_kv::TxnOp::put(key(&p, format!("txn{round}")), "3")])
            .await;
        assert!(txn.is_ok(), "round {round}: {txn:?}");
    }
    let all = root.range(&p).prefix().await.unwrap();
    assert_eq!(all.kvs().len(), 7, "{all:?}");
    root.auth_disable().await.unwrap();
}
