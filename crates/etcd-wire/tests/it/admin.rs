//! Auth, cluster, maintenance and version answers recorded from real servers.

use crate::fixtures::*;
use etcd_wire::stream::StreamMessage;
use etcd_wire::*;

#[test]
fn version() {
    for (dir, server) in VERSIONS {
        let r: VersionResponse = ok(dir, "version");
        assert_eq!(r.etcdserver, server);
        assert_eq!(r.etcdcluster, if dir == "v3.4" { "3.4.0" } else { "3.5.0" });
        assert_eq!(r.storage, "");
        assert_eq!(r.api_prefix(), Some("/v3"));
    }
    let old = |s: &str| {
        VersionResponse {
            etcdserver: s.into(),
            ..Default::default()
        }
        .api_prefix()
    };
    assert_eq!(old("3.2.32"), Some("/v3alpha"));
    assert_eq!(old("3.3.27"), Some("/v3beta"));
    assert_eq!(old("3.6.0"), Some("/v3"));
    assert_eq!(old("garbage"), None);
}

#[test]
fn auth() {
    for_each_version(|v| {
        let http = assert_err(
            v,
            "auth_enable_no_root",
            9,
            "etcdserver: root user does not exist",
        );
        assert_eq!(http, if v == "v3.4" { 412 } else { 400 });
        for name in [
            "auth_role_add_root",
            "auth_user_add_root",
            "auth_user_grant_root",
            "auth_user_add",
            "auth_user_add_no_password",
            "auth_role_add",
            "auth_role_grant",
            "auth_user_grant",
            "auth_user_changepw",
            "auth_enable",
            "auth_user_revoke",
            "auth_role_revoke",
            "auth_role_delete",
            "auth_user_delete",
            "auth_disable",
        ] {
            // Header-only answers; auth calls do not touch the key-value revision.
            let r: AuthUserAddResponse = ok(v, name);
            assert_header(v, &r.header, 22);
        }
        assert_err(
            v,
            "auth_user_add_exists",
            9,
            "etcdserver: user name already exists",
        );

        let r: AuthRoleGetResponse = ok(v, "auth_role_get");
        assert_eq!(
            r.perm,
            vec![
                Permission {
                    perm_type: PermissionType::ReadWrite,
                    key: b("dir/"),
                    range_end: b("dir0")
                },
                // READ is the default: no permType on the wire.
                Permission {
                    perm_type: PermissionType::Read,
                    key: b("foo"),
                    range_end: b("fop")
                },
                Permission {
                    perm_type: PermissionType::Write,
                    key: b("w/x"),
                    range_end: b("")
                },
            ]
        );
        assert_err(
            v,
            "auth_role_get_unknown",
            9,
            "etcdserver: role name not found",
        );

        let r: AuthUserGetResponse = ok(v, "auth_user_get");
        assert_eq!(r.roles, vec!["reader"]);
        assert_err(
            v,
            "auth_user_get_unknown",
            9,
            "etcdserver: user name not found",
        );
        let r: AuthUserListResponse = ok(v, "auth_user_list");
        assert_eq!(r.users, vec!["alice", "bob", "root"]);
        let r: AuthRoleListResponse = ok(v, "auth_role_list");
        assert_eq!(r.roles, vec!["reader", "root"]);

        let r: AuthenticateResponse = ok(v, "auth_authenticate");
        assert!(!r.token.is_empty());
        assert_header(v, &r.header, 22);
        assert_err(
            v,
            "auth_authenticate_bad_password",
            3,
            "etcdserver: authentication failed, invalid user ID or password",
        );
        assert_eq!(
            assert_err(
                v,
                "auth_range_no_token",
                3,
                "etcdserver: user name is empty"
            ),
            400
        );
        assert_eq!(
            assert_err(
                v,
                "auth_range_invalid_token",
                16,
                "etcdserver: invalid auth token"
            ),
            401
        );
        let (s, _) = err(v, "auth_range_invalid_token");
        assert_eq!(s.grpc_code(), Code::Unauthenticated);
        assert_eq!(
            assert_err(
                v,
                "auth_put_alice_denied",
                7,
                "etcdserver: permission denied"
            ),
            403
        );
        let r: RangeResponse = ok(v, "auth_range_alice");
        assert_eq!(r.kvs[0].value, b("baz"));
        assert_err(
            v,
            "auth_role_revoke_missing",
            9,
            "etcdserver: permission is not granted to the role",
        );

        // Requests the server accepted.
        let r: AuthUserAddRequest =
            serde_json::from_slice(&request(v, "auth_user_add_no_password")).unwrap();
        assert_eq!(r.options, Some(UserAddOptions { no_password: true }));
        let r: AuthRoleGrantPermissionRequest =
            serde_json::from_slice(&request(v, "auth_role_grant")).unwrap();
        assert_eq!(r.perm.key, b("foo"));
        let r: AuthRoleRevokePermissionRequest =
            serde_json::from_slice(&request(v, "auth_role_revoke")).unwrap();
        assert_eq!((r.key, r.range_end), (b("foo"), b("fop")));
    });
}

#[test]
fn auth_status() {
    // 3.4 has no auth/status: HTTP 404 with a plain-text body, not a gateway error.
    for name in [
        "auth_status_disabled",
        "auth_status_enabled",
        "auth_status_after_disable",
    ] {
        assert_eq!(manifest("v3.4", name).1, 404);
        assert_eq!(body("v3.4", name), b"Not Found\n");
        assert!(etcd_wire::from_slice::<Status>(&body("v3.4", name)).is_err());
    }
    let r: AuthStatusResponse = ok("v3.5", "auth_status_disabled");
    assert!(!r.enabled);
    assert_eq!(r.auth_revision, 1);
    let r: AuthStatusResponse = ok("v3.5", "auth_status_enabled");
    assert!(r.enabled);
    assert_eq!(r.auth_revision, 12);
    let r: AuthStatusResponse = ok("v3.5", "auth_status_after_disable");
    assert!(!r.enabled);
    assert_eq!(r.auth_revision, 17);
}

#[test]
fn cluster() {
    for_each_version(|v| {
        let me = member_id(v);
        for name in ["cluster_member_list", "cluster_member_list_linearizable"] {
            let r: MemberListResponse = ok(v, name);
            // Cluster answers have no revision in their header.
            assert_header(v, &r.header, 0);
            assert_eq!(r.members.len(), 1);
            let m = &r.members[0];
            assert_eq!(m.id, me);
            assert_eq!(m.name, "rec");
            assert_eq!(m.peer_urls.len(), 1);
            assert!(m.peer_urls[0].starts_with("http://127.0.0.1:"));
            assert_eq!(m.client_urls.len(), 1);
            assert!(!m.is_learner);
        }

        let r: MemberAddResponse = ok(v, "cluster_member_add_learner");
        let learner = r.member.clone();
        assert_ne!(learner.id, 0);
        assert_eq!(learner.name, "");
        assert_eq!(learner.peer_urls, vec!["http://127.0.0.1:1"]);
        assert!(learner.client_urls.is_empty());
        assert!(learner.is_learner);
        assert_eq!(r.members.len(), 2);
        assert_eq!(
            r.members.iter().find(|m| m.id == learner.id),
            Some(&learner)
        );

        // The update answer lists the learner without isLearner (seen on 3.4 and 3.5).
        let r: MemberUpdateResponse = ok(v, "cluster_member_update");
        let updated = r.members.iter().find(|m| m.id == learner.id).unwrap();
        assert_eq!(updated.peer_urls, vec!["http://127.0.0.1:2"]);
        assert!(!updated.is_learner);

        let req: MemberUpdateRequest =
            serde_json::from_slice(&request(v, "cluster_member_update")).unwrap();
        assert_eq!(req.id, learner.id);

        assert_err(
            v,
            "cluster_member_promote_not_ready",
            9,
            "etcdserver: can only promote a learner member which is in sync with leader",
        );
        let r: MemberRemoveResponse = ok(v, "cluster_member_remove");
        assert_eq!(r.members.iter().map(|m| m.id).collect::<Vec<_>>(), vec![me]);
        assert_eq!(
            assert_err(
                v,
                "cluster_member_remove_unknown",
                5,
                "etcdserver: member not found"
            ),
            404
        );
    });
}

#[test]
fn maintenance() {
    for (v, server) in VERSIONS {
        let me = member_id(v);
        let r: StatusResponse = ok(v, "maintenance_status");
        assert_header(v, &r.header, 22);
        assert_eq!(r.version, server);
        assert!(r.db_size > 0 && r.db_size_in_use > 0 && r.db_size_in_use <= r.db_size);
        assert_eq!(r.leader, me);
        assert!(r.raft_index > 0);
        assert_eq!(r.raft_applied_index, r.raft_index);
        assert_eq!(r.raft_term, r.header.raft_term);
        assert!(!r.is_learner);
        assert!(r.errors.is_empty());

        // Alarm answers have no header on 3.4.
        let r: AlarmResponse = ok(v, "maintenance_alarm_get");
        assert!(r.alarms.is_empty());
        if v == "v3.4" {
            assert_eq!(r.header, ResponseHeader::default());
        } else {
            assert_header(v, &r.header, 22);
        }
        let nospace = vec![AlarmMember {
            member_id: me,
            alarm: AlarmType::NoSpace,
        }];
        for name in [
            "maintenance_alarm_activate",
            "maintenance_alarm_get_active",
            "maintenance_alarm_deactivate",
        ] {
            let r: AlarmResponse = ok(v, name);
            assert_eq!(r.alarms, nospace, "{v}/{name}");
        }
        let req: AlarmRequest =
            serde_json::from_slice(&request(v, "maintenance_alarm_deactivate")).unwrap();
        assert_eq!(
            req,
            AlarmRequest {
                action: AlarmAction::Deactivate,
                member_id: me,
                alarm: AlarmType::NoSpace
            }
        );

        // Defragment and transfer-leadership answer {} on both.
        assert_eq!(body(v, "maintenance_defragment"), b"{}");
        let _: DefragmentResponse = ok(v, "maintenance_defragment");
        let _: MoveLeaderResponse = ok(v, "maintenance_move_leader_self");
        assert_err(
            v,
            "maintenance_move_leader_unknown",
            9,
            "etcdserver: bad leader transferee",
        );

        let r: HashResponse = ok(v, "maintenance_hash");
        assert_ne!(r.hash, 0);
        assert_header(v, &r.header, 22);

        // HashKV is not reachable through the gateway before 3.5.10.
        if v == "v3.5.30" {
            let r: HashKvResponse = ok(v, "maintenance_hashkv");
            assert_ne!(r.hash, 0);
            assert_header(v, &r.header, 22);
            // hash_revision is etcd 3.6's: absent (0) on 3.5.
            assert_eq!((r.compact_revision, r.hash_revision), (22, 0));
        } else {
            assert_eq!(manifest(v, "maintenance_hashkv").1, 404);
        }

        // Snapshot: a bbolt file in one chunk, then its SHA-256.
        let msgs: Vec<SnapshotResponse> = stream_ok(v, "maintenance_snapshot_stream");
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            &msgs[0].blob[16..20],
            &[0xed, 0xda, 0x0c, 0xed],
            "bbolt magic"
        );
        assert_eq!(msgs[0].blob.len() % 4096, 0);
        assert_eq!(msgs[1].blob.len(), 32);
        assert!(msgs.iter().all(|m| m.remaining_bytes == 0));
    }
    assert_eq!(manifest("v3.4", "maintenance_downgrade_validate").1, 404);
    let r: DowngradeResponse = ok("v3.5", "maintenance_downgrade_validate");
    assert_eq!(r.version, "3.5.0");
}

/// Every recorded request body decodes into its request type and re-encodes to an equal one;
/// every recorded 200 answer decodes into its response type.
#[test]
fn every_fixture_decodes() {
    fn check<Req, Resp>(v: &str, name: &str)
    where
        Req: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
        Resp: serde::de::DeserializeOwned,
    {
        if name.ends_with("_bad_base64") || name.ends_with("_bad_json") {
            // Bodies the server could not decode either.
            assert!(
                serde_json::from_slice::<Req>(&request(v, name)).is_err(),
                "{v}/{name}"
            );
            return;
        }
        let req: Req =
            serde_json::from_slice(&request(v, name)).unwrap_or_else(|e| panic!("{v}/{name}: {e}"));
        let again: Req = serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        assert_eq!(again, req, "{v}/{name}");
        let (_, status) = manifest(v, name);
        if status == 200 {
            let _: Resp =
                etcd_wire::from_slice(&body(v, name)).unwrap_or_else(|e| panic!("{v}/{name}: {e}"));
        } else if body(v, name) != b"Not Found\n" {
            let _: Status =
                etcd_wire::from_slice(&body(v, name)).unwrap_or_else(|e| panic!("{v}/{name}: {e}"));
        }
    }
    fn by_path<R: Rpc + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
        v: &str,
        name: &str,
        path: &str,
    ) -> bool {
        if path == format!("/v3{}", R::PATH) {
            check::<R, R::Response>(v, name);
            true
        } else {
            false
        }
    }
    for_each_version(|v| {
        let mut checked = 0;
        for name in names(v) {
            let (path, _) = manifest(v, &name);
            if name.ends_with("_stream") || path == "/version" || name.starts_with("route_") {
                // Streams, and routing errors (no request type: `routing_errors`).
                continue;
            }
            macro_rules! any_by_path {
                (
                    unary { $($req:ty => $resp:ty { $($_u:tt)* })* }
                    streaming { $($sreq:ty => $sresp:ty { $($_s:tt)* })* }
                ) => {
                    false $(|| by_path::<$req>(v, &name, &path))*
                };
            }
            let done = etcd_wire::for_each_rpc!(any_by_path);
            assert!(done, "{v}/{name}: no request type for {path}");
            checked += 1;
        }
        assert!(checked > 80, "{v}: only {checked} unary fixtures");
    });
}

/// A path the gateway has no route for, and a GET on a POST route: plain text from
/// grpc-gateway v1, a status from v2.
#[test]
fn routing_errors() {
    for_each_version(|v| {
        let (path, unknown) = manifest(v, "route_unknown");
        assert_eq!(path, "/v3/kv/nothing-here");
        assert_eq!(unknown, 404, "{v}");
        let (_, wrong_method) = manifest(v, "route_wrong_method");
        if gateway_v2(v) {
            assert_eq!(wrong_method, 501, "{v}");
            for (name, code, message) in [
                ("route_unknown", 5, "Not Found"),
                ("route_wrong_method", 12, "Method Not Allowed"),
            ] {
                let (s, _) = err(v, name);
                assert_eq!((s.code, s.message.as_str()), (code, message), "{v}/{name}");
                assert!(s.is_unknown_route(), "{v}/{name}");
            }
        } else {
            assert_eq!(wrong_method, 405, "{v}");
            assert_eq!(body(v, "route_unknown"), b"Not Found\n");
            assert_eq!(body(v, "route_wrong_method"), b"Method Not Allowed\n");
            for name in ["route_unknown", "route_wrong_method"] {
                assert!(etcd_wire::from_slice::<Status>(&body(v, name)).is_err());
            }
        }
        // etcd's own "not found" is no routing error, on either gateway.
        let (lease, _) = err(v, "lease_revoke_unknown");
        assert!(!lease.is_unknown_route(), "{v}: {lease}");
    });
}

/// With auth on, etcd 3.5.28+ (3.4.42+, 3.6.9+; CVE-2026-33413) wants an authenticated user
/// for lease time-to-live, leases and keep-alive, alarm and member list, and an admin for
/// status (until 3.5.32 and 3.6.12); before, anyone could.
#[test]
fn auth_on_leases_status_alarms_and_members() {
    for_each_version(|v| {
        let guarded = v == "v3.5.30";
        let r: LeaseGrantResponse = ok(v, "auth_lease_grant");
        assert_eq!((r.id, r.ttl), (20480, 60));
        let r: LeaseTimeToLiveResponse = ok(v, "auth_lease_timetolive");
        assert_eq!((r.id, r.granted_ttl), (20480, 60));
        let r: LeaseLeasesResponse = ok(v, "auth_lease_leases");
        assert!(r.leases.contains(&LeaseStatus { id: 20480 }), "{v}: {r:?}");
        let msgs: Vec<LeaseKeepAliveResponse> = stream_ok(v, "auth_lease_keepalive_stream");
        assert_eq!(msgs.len(), 1);
        assert_eq!((msgs[0].id, msgs[0].ttl), (20480, 60));
        let r: StatusResponse = ok(v, "auth_maintenance_status_root");
        assert_eq!(r.leader, member_id(v));
        let _: LeaseRevokeResponse = ok(v, "auth_lease_revoke");

        let no_token = [
            "auth_lease_timetolive_no_token",
            "auth_lease_leases_no_token",
            "auth_maintenance_status_no_token",
            "auth_maintenance_alarm_no_token",
            "auth_cluster_member_list_no_token",
        ];
        if !guarded {
            for name in no_token {
                assert_eq!(manifest(v, name).1, 200, "{v}/{name}");
            }
            let _: StatusResponse = ok(v, "auth_maintenance_status_alice");
            let msgs: Vec<LeaseKeepAliveResponse> =
                stream_ok(v, "auth_lease_keepalive_no_token_stream");
            assert_eq!((msgs[0].id, msgs[0].ttl), (20480, 60));
            return;
        }
        for name in no_token {
            let http = assert_err(v, name, 3, "etcdserver: user name is empty");
            assert_eq!(http, 400, "{v}/{name}");
        }
        // A user who is not root: permission denied, HTTP 403.
        let http = assert_err(
            v,
            "auth_maintenance_status_alice",
            7,
            "etcdserver: permission denied",
        );
        assert_eq!(http, 403);
        // The keep-alive stream is refused before its first message: the error's HTTP
        // status, and the in-stream form `{"error":{"code","message"}}` as the whole body,
        // which decodes as a unary error body too.
        let (_, http) = manifest(v, "auth_lease_keepalive_no_token_stream");
        assert_eq!(http, 400);
        let msgs = stream::<LeaseKeepAliveResponse>(v, "auth_lease_keepalive_no_token_stream");
        match &msgs[..] {
            [StreamMessage::Error(s)] => {
                assert_eq!(
                    (s.code, s.message.as_str()),
                    (3, "etcdserver: user name is empty")
                );
            }
            other => panic!("{v}: {other:?}"),
        }
        let s: Status =
            etcd_wire::from_slice(&stream_body(v, "auth_lease_keepalive_no_token_stream")).unwrap();
        assert_eq!(
            (s.code, s.message.as_str()),
            (3, "etcdserver: user name is empty")
        );
    });
}
