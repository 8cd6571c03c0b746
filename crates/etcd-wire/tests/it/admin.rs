//! Auth, cluster, maintenance and version answers recorded from real servers.

use crate::fixtures::*;
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

        // HashKV is not reachable through the 3.4/3.5 gateway.
        assert_eq!(manifest(v, "maintenance_hashkv").1, 404);

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
            if name.ends_with("_stream") || path == "/version" {
                continue;
            }
            let done = by_path::<RangeRequest>(v, &name, &path)
                || by_path::<PutRequest>(v, &name, &path)
                || by_path::<DeleteRangeRequest>(v, &name, &path)
                || by_path::<TxnRequest>(v, &name, &path)
                || by_path::<CompactionRequest>(v, &name, &path)
                || by_path::<LeaseGrantRequest>(v, &name, &path)
                || by_path::<LeaseRevokeRequest>(v, &name, &path)
                || by_path::<LeaseTimeToLiveRequest>(v, &name, &path)
                || by_path::<LeaseLeasesRequest>(v, &name, &path)
                || by_path::<LockRequest>(v, &name, &path)
                || by_path::<UnlockRequest>(v, &name, &path)
                || by_path::<CampaignRequest>(v, &name, &path)
                || by_path::<ProclaimRequest>(v, &name, &path)
                || by_path::<LeaderRequest>(v, &name, &path)
                || by_path::<ResignRequest>(v, &name, &path)
                || by_path::<AuthEnableRequest>(v, &name, &path)
                || by_path::<AuthDisableRequest>(v, &name, &path)
                || by_path::<AuthStatusRequest>(v, &name, &path)
                || by_path::<AuthenticateRequest>(v, &name, &path)
                || by_path::<AuthUserAddRequest>(v, &name, &path)
                || by_path::<AuthUserGetRequest>(v, &name, &path)
                || by_path::<AuthUserListRequest>(v, &name, &path)
                || by_path::<AuthUserDeleteRequest>(v, &name, &path)
                || by_path::<AuthUserChangePasswordRequest>(v, &name, &path)
                || by_path::<AuthUserGrantRoleRequest>(v, &name, &path)
                || by_path::<AuthUserRevokeRoleRequest>(v, &name, &path)
                || by_path::<AuthRoleAddRequest>(v, &name, &path)
                || by_path::<AuthRoleGetRequest>(v, &name, &path)
                || by_path::<AuthRoleListRequest>(v, &name, &path)
                || by_path::<AuthRoleDeleteRequest>(v, &name, &path)
                || by_path::<AuthRoleGrantPermissionRequest>(v, &name, &path)
                || by_path::<AuthRoleRevokePermissionRequest>(v, &name, &path)
                || by_path::<MemberAddRequest>(v, &name, &path)
                || by_path::<MemberRemoveRequest>(v, &name, &path)
                || by_path::<MemberUpdateRequest>(v, &name, &path)
                || by_path::<MemberListRequest>(v, &name, &path)
                || by_path::<MemberPromoteRequest>(v, &name, &path)
                || by_path::<StatusRequest>(v, &name, &path)
                || by_path::<AlarmRequest>(v, &name, &path)
                || by_path::<DefragmentRequest>(v, &name, &path)
                || by_path::<HashRequest>(v, &name, &path)
                || by_path::<HashKvRequest>(v, &name, &path)
                || by_path::<MoveLeaderRequest>(v, &name, &path)
                || by_path::<DowngradeRequest>(v, &name, &path);
            assert!(done, "{v}/{name}: no request type for {path}");
            checked += 1;
        }
        assert!(checked > 80, "{v}: only {checked} unary fixtures");
    });
}
