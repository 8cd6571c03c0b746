//! Lease, lock and election answers recorded from real servers.

use crate::fixtures::*;
use etcd_wire::*;

#[test]
fn lease() {
    for_each_version(|v| {
        let r: LeaseGrantResponse = ok(v, "lease_grant");
        assert_header(v, &r.header, 8);
        assert_eq!((r.id, r.ttl), (4096, 60));
        assert_eq!(r.error, "");
        let http = assert_err(
            v,
            "lease_grant_duplicate",
            9,
            "etcdserver: lease already exists",
        );
        // FailedPrecondition: HTTP 412 from 3.4's gateway, 400 from 3.5's.
        assert_eq!(http, if v == "v3.4" { 412 } else { 400 });

        let r: LeaseTimeToLiveResponse = ok(v, "lease_timetolive");
        assert_header(v, &r.header, 10);
        assert_eq!(r.id, 4096);
        assert!((55..=60).contains(&r.ttl), "{v}: TTL {}", r.ttl);
        assert_eq!(r.granted_ttl, 60);
        // In no particular order (etcd lists them from a map).
        let mut keys = r.keys.clone();
        keys.sort();
        assert_eq!(keys, vec![b("leased/1"), b("leased/2")]);

        // An unknown lease: TTL -1, no error.
        let r: LeaseTimeToLiveResponse = ok(v, "lease_timetolive_unknown");
        assert_eq!((r.id, r.ttl, r.granted_ttl), (999, -1, 0));
        assert!(r.keys.is_empty());

        let r: LeaseLeasesResponse = ok(v, "lease_leases");
        assert_eq!(r.leases, vec![LeaseStatus { id: 4096 }]);

        let r: LeaseRevokeResponse = ok(v, "lease_revoke");
        assert_header(v, &r.header, 11);
        assert_eq!(
            assert_err(
                v,
                "lease_revoke_unknown",
                5,
                "etcdserver: requested lease not found"
            ),
            404
        );
    });
}

#[test]
fn keepalive_stream() {
    for_each_version(|v| {
        // One answer, then the stream ends.
        let msgs: Vec<LeaseKeepAliveResponse> = stream_ok(v, "lease_keepalive_stream");
        assert_eq!(msgs.len(), 1);
        assert_eq!((msgs[0].id, msgs[0].ttl), (4096, 60));
        assert_header(v, &msgs[0].header, 10);

        // Unknown lease: TTL omitted (0), not an error.
        let msgs: Vec<LeaseKeepAliveResponse> = stream_ok(v, "lease_keepalive_unknown_stream");
        assert_eq!(msgs.len(), 1);
        assert_eq!((msgs[0].id, msgs[0].ttl), (999, 0));
    });
}

#[test]
fn lock() {
    for_each_version(|v| {
        let r: LockResponse = ok(v, "lock_lock");
        assert_header(v, &r.header, 18);
        // <name>/<lease in hex>: 8192 = 0x2000.
        assert_eq!(r.key, b("mylock/2000"));
        let req: UnlockRequest = serde_json::from_slice(&request(v, "lock_unlock")).unwrap();
        assert_eq!(req.key, r.key);
        let r: UnlockResponse = ok(v, "lock_unlock");
        assert_header(v, &r.header, 19);
        // The lock service reports an unknown lease as code 2 Unknown, HTTP 500.
        assert_eq!(
            assert_err(
                v,
                "lock_lock_unknown_lease",
                2,
                "etcdserver: requested lease not found"
            ),
            500
        );
    });
}

#[test]
fn election() {
    for_each_version(|v| {
        assert_eq!(
            assert_err(v, "election_leader_none", 2, "election: no leader"),
            500
        );

        let r: CampaignResponse = ok(v, "election_campaign");
        assert_header(v, &r.header, 20);
        let leader = LeaderKey {
            name: b("myelection"),
            key: b("myelection/3000"),
            rev: 20,
            lease: 12288,
        };
        assert_eq!(r.leader, leader);

        let req: ProclaimRequest =
            serde_json::from_slice(&request(v, "election_proclaim")).unwrap();
        assert_eq!(req.leader, leader);
        assert_eq!(req.value, b("v2"));
        let r: ProclaimResponse = ok(v, "election_proclaim");
        assert_header(v, &r.header, 21);

        let observed: Vec<LeaderResponse> = stream_ok(v, "election_observe_stream");
        let values: Vec<_> = observed
            .iter()
            .map(|r| r.kv.as_ref().unwrap().value.clone())
            .collect();
        assert_eq!(values, vec![b("v1"), b("v2")]);
        let kv = observed[1].kv.as_ref().unwrap();
        assert_eq!(
            (kv.create_revision, kv.mod_revision, kv.version, kv.lease),
            (20, 21, 2, 12288)
        );
        assert_eq!(kv.key, leader.key);

        let r: LeaderResponse = ok(v, "election_leader");
        assert_eq!(r.kv.as_ref().unwrap().value, b("v2"));
        assert_header(v, &r.header, 21);

        let r: ResignResponse = ok(v, "election_resign");
        assert_header(v, &r.header, 22);
        assert_err(v, "election_proclaim_not_leader", 2, "election: not leader");
    });
}
