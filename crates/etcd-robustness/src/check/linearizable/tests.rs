use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::check::testkit::{seeds, simulate, Kit, SimConfig};
use crate::history::{Expect, LeaseRecord, ReadKind};

/// The check with a shrinking budget that a loaded machine cannot exhaust, so that the
/// conflicts found do not depend on the load.
fn check(history: &History) -> Vec<Anomaly> {
    check_with(
        history,
        &Options::default().with_shrink_time(Duration::from_secs(120)),
    )
}

fn kinds(anomalies: &[Anomaly]) -> Vec<AnomalyKind> {
    anomalies.iter().map(|a| a.kind).collect()
}

/// Checks `history` with and without its store history (the latter only settles unknown
/// writes less precisely).
fn assert_ok(history: &History) {
    let anomalies = check(history);
    assert!(anomalies.is_empty(), "with the store: {anomalies:#?}");
    let all = crate::check::check(history);
    assert!(all.is_empty(), "every checker: {all:#?}");
    let mut without = history.clone();
    without.store = None;
    let anomalies = check(&without);
    assert!(anomalies.is_empty(), "without the store: {anomalies:#?}");
}

fn assert_not_linearizable(history: &History, involved: &[u64]) -> Anomaly {
    let anomalies = check(history);
    assert_eq!(
        kinds(&anomalies),
        [AnomalyKind::NotLinearizable],
        "{anomalies:#?}"
    );
    let anomaly = anomalies.into_iter().next().unwrap();
    for id in involved {
        assert!(anomaly.ops.contains(id), "#{id} missing from {anomaly}");
    }
    anomaly
}

#[test]
fn sequential_history_passes() {
    let mut kit = Kit::new();
    kit.put(0, "k", 0, 10);
    kit.get(1, "k", 20, 30);
    kit.cas(0, "k", Expect::Absent, 40, 50);
    let current = kit.current("k").unwrap().value;
    kit.cas(0, "k", Expect::Value(current), 60, 70);
    kit.delete(1, "k", 80, 90);
    kit.delete(1, "k", 100, 110);
    kit.get(0, "k", 120, 130);
    kit.put(0, "k", 140, 150);
    let rev = kit.current("k").unwrap().mod_revision;
    kit.cas(1, "k", Expect::ModRevision(rev), 160, 170);
    kit.read(0, "k", ReadKind::CacheConsistent, 180, 190);
    assert_ok(&kit.finish());
}

#[test]
fn concurrent_history_passes() {
    let mut kit = Kit::new();
    // Three clients overlap; the kit applies in the order of the calls below, each at a
    // point inside its interval.
    kit.put(0, "k", 0, 100);
    kit.get(1, "k", 10, 20);
    kit.put(2, "k", 5, 50);
    kit.get(1, "k", 30, 200);
    kit.delete(0, "k", 110, 300);
    kit.get(2, "k", 60, 250);
    assert_ok(&kit.finish());
}

#[test]
fn read_before_its_write_was_invoked_is_caught() {
    let mut kit = Kit::new();
    kit.put(0, "k", 0, 10);
    let w = kit.put(0, "k", 100, 110);
    let r = kit.get(1, "k", 120, 130);
    assert_ok(&kit.snapshot());
    // The read returns before the write that it saw was invoked.
    let op = kit.op_mut(r);
    op.call = 50;
    op.ret = Some(60);
    let anomaly = assert_not_linearizable(&kit.finish(), &[r, w]);
    assert_eq!(anomaly.key.as_deref(), Some("k"));
    assert!(anomaly.ops.len() <= 3, "{anomaly}");
}

#[test]
fn new_then_old_value_is_caught() {
    let mut kit = Kit::new();
    kit.put(0, "k", 0, 10);
    let rev1 = kit.revision();
    kit.put(0, "k", 20, 30);
    let r1 = kit.get(1, "k", 40, 50);
    let r2 = kit.get(2, "k", 60, 70);
    assert_ok(&kit.snapshot());
    // The later read sees the old value (with its old header revision).
    let old = kit.state_at("k", rev1);
    kit.op_mut(r2).outcome = Outcome::Get {
        revision: rev1,
        kv: old.clone(),
    };
    assert_not_linearizable(&kit.snapshot(), &[r1, r2]);
    // ... or with the current header revision: still not linearizable.
    kit.op_mut(r2).outcome = Outcome::Get {
        revision: rev1 + 1,
        kv: old,
    };
    assert_not_linearizable(&kit.finish(), &[r2]);
}

#[test]
fn serializable_and_cache_reads_are_not_part_of_it() {
    let mut kit = Kit::new();
    kit.put(0, "k", 0, 10);
    let rev1 = kit.revision();
    kit.put(0, "k", 20, 30);
    // Old but honest answers from a lagging member or cache: fine here.
    kit.read_at(1, "k", ReadKind::Serializable, rev1, 40, 50);
    kit.read_at(1, "k", ReadKind::Cache, rev1, 60, 70);
    assert_ok(&kit.finish());
}

#[test]
fn lost_update_with_cas_is_caught() {
    let mut kit = Kit::new();
    kit.put(0, "k", 0, 10);
    let rev = kit.revision();
    let a = kit.cas(1, "k", Expect::ModRevision(rev), 20, 30);
    assert_ok(&kit.snapshot());
    // A second swap from the same expected revision also "succeeds".
    let value = kit.fresh_value(2);
    let r = kit.apply_put("k", &value, 0);
    let b = kit.cas_value(2, "k", Expect::ModRevision(rev), &value, 40, 50);
    kit.op_mut(b).outcome = Outcome::Cas {
        revision: r,
        succeeded: true,
    };
    assert_not_linearizable(&kit.finish(), &[a, b]);
}

#[test]
fn failed_compare_must_have_failed() {
    let mut kit = Kit::new();
    kit.put(0, "k", 0, 10);
    let current = kit.current("k").unwrap().value;
    let c = kit.cas(1, "k", Expect::Value("other".into()), 20, 30);
    assert_ok(&kit.snapshot());
    // The comparison held, yet the answer says it did not.
    if let Request::Cas { expect, .. } = &mut kit.op_mut(c).request {
        *expect = Expect::Value(current);
    }
    assert_not_linearizable(&kit.finish(), &[c]);
}

#[test]
fn unknown_put_later_read_passes() {
    let mut kit = Kit::new();
    kit.put(0, "k", 0, 10);
    kit.unknown_put(1, "k", 20, true);
    kit.get(2, "k", 1_000, 1_010);
    assert_ok(&kit.finish());
}

#[test]
fn unknown_put_applied_long_after_passes() {
    let mut kit = Kit::new();
    kit.unknown_put_value(1, "k", "late", 0);
    kit.put(0, "k", 10, 20);
    kit.get(2, "k", 30, 40);
    kit.apply_put("k", "late", 0);
    kit.get(2, "k", 5_000, 5_010);
    kit.put(0, "k", 6_000, 6_010);
    kit.get(2, "k", 7_000, 7_010);
    assert_ok(&kit.finish());
}

#[test]
fn unknown_put_never_seen_passes() {
    let mut kit = Kit::new();
    kit.put(0, "k", 0, 10);
    kit.unknown_put(1, "k", 20, false);
    kit.get(2, "k", 1_000, 1_010);
    kit.put(0, "k", 1_100, 1_110);
    kit.get(2, "k", 1_200, 1_210);
    assert_ok(&kit.finish());
}

#[test]
fn unknown_delete_passes_either_way() {
    for applied in [true, false] {
        let mut kit = Kit::new();
        kit.put(0, "k", 0, 10);
        kit.unknown_delete(1, "k", 20, applied);
        kit.get(2, "k", 1_000, 1_010);
        kit.put(0, "k", 1_100, 1_110);
        kit.get(2, "k", 1_200, 1_210);
        assert_ok(&kit.finish());
    }
}

#[test]
fn unknown_put_seen_before_its_call_is_caught() {
    let mut kit = Kit::new();
    kit.apply_put("k", "x", 0);
    let r = kit.get(1, "k", 10, 20);
    // The put whose value the read saw was only invoked after the read returned.
    let w = kit.unknown_put_value(0, "k", "x", 50);
    assert_not_linearizable(&kit.snapshot(), &[r, w]);
    let mut without = kit.finish();
    without.store = None;
    let anomalies = check(&without);
    assert_eq!(kinds(&anomalies), [AnomalyKind::NotLinearizable]);
}

#[test]
fn failed_writes_are_left_out() {
    let mut kit = Kit::new();
    kit.put(0, "k", 0, 10);
    let f = kit.failed_put(1, "k", 20, 30);
    let r = kit.get(2, "k", 40, 50);
    assert_ok(&kit.snapshot());
    // A read sees the failed write's value.
    let value = kit.op(f).request.written_value().unwrap().to_string();
    if let Outcome::Get { kv: Some(kv), .. } = &mut kit.op_mut(r).outcome {
        kv.value = value;
    }
    assert_not_linearizable(&kit.finish(), &[r]);
}

#[test]
fn lease_expiry_deletes_are_allowed() {
    let mut kit = Kit::new();
    let put = kit.put(0, "lk", 0, 10);
    kit.apply_delete("lk");
    kit.get(1, "lk", 20, 30);
    kit.history.leases.push(LeaseRecord {
        client: 0,
        lease: 7,
        ttl: 1,
        key: "lk".into(),
        put: Some(put),
        granted: 0,
        lost: Some((15, "expired".into())),
        revoked: None,
        kept_to_end: false,
    });
    let history = kit.finish();
    assert_ok(&history);
    // Without the lease, the key vanished for no reason.
    let mut no_lease = history.clone();
    no_lease.leases.clear();
    assert_eq!(kinds(&check(&no_lease)), [AnomalyKind::NotLinearizable]);
}

#[test]
fn malformed_answers_are_reported() {
    let mut kit = Kit::new();
    let p = kit.put(0, "k", 0, 10);
    kit.op_mut(p).outcome = Outcome::Delete {
        revision: 3,
        deleted: 1,
    };
    assert_eq!(
        kinds(&check(&kit.finish())),
        [AnomalyKind::MalformedHistory]
    );
}

#[test]
fn search_bound_reports_incomplete() {
    let mut kit = Kit::new();
    kit.put(0, "k", 0, 10);
    for c in 0..20 {
        kit.get(c, "k", 20 + u64::from(c), 1_000);
    }
    let r = kit.get(30, "k", 20, 1_000);
    kit.op_mut(r).outcome = Outcome::Get {
        revision: kit.revision(),
        kv: None,
    };
    let options = Options::default().with_max_states(1_000);
    let anomalies = check_with(&kit.finish(), &options);
    assert_eq!(kinds(&anomalies), [AnomalyKind::CheckIncomplete]);
    assert!(anomalies[0].message.contains("gave up"), "{}", anomalies[0]);
}

fn small_config() -> SimConfig {
    SimConfig {
        keys: 3,
        clients: 6,
        ops: 300,
        unknown_per_mille: 30,
        failed_per_mille: 20,
        extras: false,
        unknown_delay: 4,
    }
}

#[test]
fn random_correct_histories_pass() {
    for seed in 0..seeds(150) {
        let history = simulate(seed, small_config());
        let anomalies = check(&history);
        assert!(anomalies.is_empty(), "seed {seed}: {anomalies:#?}");
        let mut without = history;
        without.store = None;
        let anomalies = check(&without);
        assert!(
            anomalies.is_empty(),
            "seed {seed}, no store: {anomalies:#?}"
        );
    }
}

/// A random linearizable read with a value, from a random history.
fn pick_read(history: &History, rng: &mut StdRng) -> Option<usize> {
    let reads: Vec<usize> = (0..history.ops.len())
        .filter(|&i| {
            let op = &history.ops[i];
            matches!(&op.request, Request::Get { read, .. } if read.is_linearizable())
                && matches!(&op.outcome, Outcome::Get { kv: Some(_), .. })
        })
        .collect();
    (!reads.is_empty()).then(|| reads[rng.gen_range(0..reads.len())])
}

#[test]
fn random_histories_with_one_bad_read_fail() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut tried = 0;
    for seed in 0..seeds(150) {
        let mut history = simulate(seed, small_config());
        let Some(i) = pick_read(&history, &mut rng) else {
            continue;
        };
        tried += 1;
        let id = history.ops[i].id;
        if let Outcome::Get { kv: Some(kv), .. } = &mut history.ops[i].outcome {
            kv.value = "never written".into();
        }
        let anomalies = check(&history);
        assert_eq!(
            kinds(&anomalies),
            [AnomalyKind::NotLinearizable],
            "seed {seed}"
        );
        assert!(
            anomalies[0].ops.contains(&id),
            "seed {seed}: {}",
            anomalies[0]
        );
        history.store = None;
        let anomalies = check(&history);
        assert_eq!(
            kinds(&anomalies),
            [AnomalyKind::NotLinearizable],
            "seed {seed}, no store"
        );
    }
    assert!(tried * 3 > seeds(150) * 2);
}

#[test]
fn shrinks_to_the_conflict() {
    let config = SimConfig {
        keys: 1,
        clients: 8,
        ops: 3_000,
        unknown_per_mille: 5,
        failed_per_mille: 5,
        extras: false,
        unknown_delay: 4,
    };
    let mut history = simulate(11, config);
    // A read in the middle sees an older value of the key than its header says.
    let mut rng = StdRng::seed_from_u64(3);
    let i = loop {
        let i = pick_read(&history, &mut rng).unwrap();
        if i > 1_000 && i < 2_000 {
            break i;
        }
    };
    let id = history.ops[i].id;
    if let Outcome::Get { kv: Some(kv), .. } = &mut history.ops[i].outcome {
        kv.value = "never written".into();
    }
    let anomalies = check(&history);
    assert_eq!(kinds(&anomalies), [AnomalyKind::NotLinearizable]);
    let anomaly = &anomalies[0];
    assert!(anomaly.ops.contains(&id), "{anomaly}");
    assert!(anomaly.ops.len() <= 3, "not shrunk: {anomaly}");
    assert!(
        anomaly
            .message
            .contains("whatever the key's other writes did"),
        "{anomaly}"
    );
}

/// Times the check of a 20,000-op history on 5 keys from 10 clients, with and without the
/// store's history; returns (unknown ops, with the store, without it, every checker).
fn time_20k(seed: u64, unknown_per_mille: u32, unknown_delay: u64) -> (usize, f64, f64, f64) {
    let config = SimConfig {
        keys: 5,
        clients: 10,
        ops: 20_000,
        unknown_per_mille,
        failed_per_mille: 5,
        extras: false,
        unknown_delay,
    };
    let history = simulate(seed, config);
    let unknown = history
        .ops
        .iter()
        .filter(|op| op.outcome.is_unknown())
        .count();
    let start = Instant::now();
    let anomalies = check(&history);
    let with_store = start.elapsed().as_secs_f64();
    assert!(anomalies.is_empty(), "{anomalies:#?}");
    let mut without = history.clone();
    without.store = None;
    let start = Instant::now();
    let anomalies = check(&without);
    let without_store = start.elapsed().as_secs_f64();
    assert!(anomalies.is_empty(), "{anomalies:#?}");
    let start = Instant::now();
    let all = crate::check::check(&history);
    let every_checker = start.elapsed().as_secs_f64();
    assert!(all.is_empty(), "{all:#?}");
    (unknown, with_store, without_store, every_checker)
}

/// 20,000 operations on 5 keys from 10 clients with about 50 of unknown outcome: under two
/// seconds with optimizations (`cargo test -p etcd-robustness --release -- --ignored perf`).
#[test]
#[ignore = "timing; run with optimizations"]
fn perf_20k_ops() {
    for (what, per_mille, delay) in [
        ("unknown writes apply within 4 op durations", 3, 4),
        (
            "unknown writes apply up to 1000 op durations late",
            3,
            1_000,
        ),
        (
            "10x more unknown writes, up to 100 op durations late",
            25,
            100,
        ),
    ] {
        let (unknown, with_store, without_store, every) = time_20k(42, per_mille, delay);
        eprintln!(
            "perf ({what}): 20000 ops, {unknown} unknown: linearizable {with_store:.3}s with the store, \
             {without_store:.3}s without; every checker {every:.3}s"
        );
        assert!(with_store < 2.0 && every < 2.0);
    }
}

/// The same 20,000 operations with one bad read in the middle: found, and shrunk, quickly
/// (`cargo test -p etcd-robustness --release -- --ignored perf`).
#[test]
#[ignore = "timing; run with optimizations"]
fn perf_20k_ops_one_bad_read() {
    let config = SimConfig {
        keys: 5,
        clients: 10,
        ops: 20_000,
        unknown_per_mille: 3,
        failed_per_mille: 5,
        extras: false,
        unknown_delay: 4,
    };
    let mut history = simulate(42, config);
    let mut rng = StdRng::seed_from_u64(1);
    let i = loop {
        let i = pick_read(&history, &mut rng).unwrap();
        if (9_000..11_000).contains(&i) {
            break i;
        }
    };
    let id = history.ops[i].id;
    if let Outcome::Get { kv: Some(kv), .. } = &mut history.ops[i].outcome {
        kv.version += 1;
    }
    for store in [true, false] {
        let mut h = history.clone();
        if !store {
            h.store = None;
        }
        let start = Instant::now();
        let unshrunk = check_with(&h, &Options::default().with_shrink_time(Duration::ZERO));
        let search = start.elapsed().as_secs_f64();
        assert_eq!(kinds(&unshrunk), [AnomalyKind::NotLinearizable]);
        let start = Instant::now();
        let anomalies = check(&h);
        let took = start.elapsed().as_secs_f64();
        assert_eq!(kinds(&anomalies), [AnomalyKind::NotLinearizable]);
        assert!(anomalies[0].ops.contains(&id));
        eprintln!(
            "perf (one read with a wrong version, store: {store}): found in {search:.3}s; \
             found and shrunk to {} ops in {took:.3}s",
            anomalies[0].ops.len()
        );
        assert!(took < 4.0);
    }
}
