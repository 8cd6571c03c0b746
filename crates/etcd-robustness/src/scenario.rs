//! One scenario: a fresh 3-member cluster behind loopback proxies, the workloads on it over
//! one protocol, the nemesis breaking it, then the faults healed, the store's history read
//! back and everything checked.

use crate::check::{self, Anomaly};
use crate::history::{FaultSpan, History, Op, Outcome, Request};
use crate::nemesis::{FaultKind, FaultRecord, Nemesis};
use crate::proxy::Proxy;
use crate::recorder::Recorder;
use crate::workload::{self, Worker};
use etcd_kv::{Client, Protocol, StreamMode};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The protocols a scenario can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// The gRPC-JSON gateway (HTTP/1.1, JSON; WebSocket streams, or POST per stream).
    Gateway,
    /// Native gRPC.
    Grpc,
}

impl Wire {
    /// `gateway` or `grpc`.
    pub fn name(self) -> &'static str {
        match self {
            Wire::Gateway => "gateway",
            Wire::Grpc => "grpc",
        }
    }
}

/// What a scenario does.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Its name in reports (`processes-gateway`...).
    pub name: String,
    /// The protocol of every client.
    pub wire: Wire,
    /// How watches and keep-alives travel (gateway only).
    pub stream_mode: StreamMode,
    /// The faults the nemesis draws from.
    pub faults: Vec<FaultKind>,
    /// Auth on, with tokens that expire after 2 s unused.
    pub auth: bool,
    /// How long the workloads run under the nemesis.
    pub duration: Duration,
}

impl Spec {
    /// The protocol and stream mode, as reports show it (`gateway`, `gateway-per-call`,
    /// `grpc`).
    pub fn protocol(&self) -> String {
        match (self.wire, self.stream_mode) {
            (Wire::Gateway, StreamMode::PerCall) => "gateway-per-call".into(),
            (wire, _) => wire.name().into(),
        }
    }
}

/// Settings of a whole run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The etcd version (`3.4`, `3.5.1`, `3.5.30`, `any`).
    pub version: String,
    /// Whether partitions are available (root, nftables).
    pub partitions: bool,
}

/// What a scenario produced.
pub struct Run {
    /// The scenario.
    pub spec: Spec,
    /// The etcd version it ran on.
    pub version: String,
    /// Its seed.
    pub seed: u64,
    /// What was recorded.
    pub history: History,
    /// The faults injected.
    pub faults: Vec<FaultRecord>,
    /// What the checkers found.
    pub anomalies: Vec<Anomaly>,
    /// How long checking took.
    pub check_ms: u64,
    /// How long the scenario took, start to end.
    pub elapsed: Duration,
}

const ROOT_PASSWORD: &str = "robustness";
const KV_WORKERS: u32 = 8;
const KV_KEYS: usize = 5;
const WATCHERS: u32 = 3;
const LEASE_WORKERS: u32 = 2;
const LOCK_WORKERS: u32 = 3;
/// The closing write's client number.
const CLOSING_CLIENT: u32 = 9_999;

/// Runs one scenario with `seed`.
pub async fn run(spec: Spec, settings: &Settings, seed: u64) -> Result<Run, String> {
    let started = Instant::now();
    let mut builder = xtask::EtcdBuilder::new()
        .nodes(3)
        .version(settings.version.clone());
    let wants_partitions = spec.faults.iter().any(|k| k.needs_partitions());
    if wants_partitions && settings.partitions {
        builder = builder.partitionable();
    }
    if spec.auth {
        builder = builder.arg("--auth-token-ttl=2");
    }
    let etcd = tokio::task::spawn_blocking(move || builder.start())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("starting etcd: {e}"))?;
    let partition = etcd.partition();
    let mut proxies = Vec::new();
    for endpoint in etcd.endpoints() {
        proxies.push(
            Proxy::start(&endpoint)
                .await
                .map_err(|e| format!("starting a proxy: {e}"))?,
        );
    }
    let proxied: Vec<String> = proxies.iter().map(Proxy::url).collect();
    let direct = etcd.endpoints();
    let user = spec.auth.then_some(("root", ROOT_PASSWORD));

    let admin = client(&spec, &direct, 0, None).await?;
    if spec.auth {
        enable_auth(&admin).await?;
    }
    let admin = client(&spec, &direct, 0, user).await?;
    // Everything of the scenario is under `base` (what the store's history covers): the
    // data the watches see under `prefix`, the lock's ownership keys beside it.
    let base = format!("rb/{}/{seed:016x}/", spec.name);
    let prefix = format!("{base}d/");
    let first_revision = admin
        .range(&prefix)
        .count_only()
        .await
        .map_err(|e| format!("reading the start revision: {e}"))?
        .revision()
        + 1;

    let recorder = Arc::new(Recorder::new());
    let stop = Arc::new(AtomicBool::new(false));
    let mut next_client = 0u32;
    let mut worker = |client: Client, pace: Duration| {
        let id = next_client;
        next_client += 1;
        Worker {
            id,
            client,
            recorder: recorder.clone(),
            stop: stop.clone(),
            rng: workload::rng_for(seed, id),
            prefix: prefix.clone(),
            pace,
        }
    };

    // Watches first, so that they see everything.
    let (target_tx, _) = tokio::sync::watch::channel(None);
    let target = Arc::new(target_tx);
    let mut watchers = Vec::new();
    let mut ready = Vec::new();
    for i in 0..WATCHERS {
        let c = client(&spec, &proxied, i as usize, user).await?;
        let w = worker(c, Duration::ZERO);
        let start = if i == WATCHERS - 1 { 0 } else { first_revision };
        let (created, created_rx) = tokio::sync::oneshot::channel();
        ready.push(created_rx);
        watchers.push(tokio::spawn(workload::watch_worker(
            w,
            i,
            start,
            target.clone(),
            created,
        )));
    }
    // Nothing is written before every watch exists: the one from "now" knows where it
    // starts.
    for created in ready {
        let _ = created.await;
    }
    let keys = workload::kv_keys(&prefix, KV_KEYS);
    let mut tasks = Vec::new();
    let mut kv_clients = Vec::new();
    for i in 0..KV_WORKERS {
        let c = client(&spec, &proxied, i as usize, user).await?;
        kv_clients.push(c.clone());
        let w = worker(c, Duration::from_millis(4));
        tasks.push(tokio::spawn(workload::kv_worker(w, keys.clone())));
    }
    {
        let c = client(&spec, &proxied, 1, user).await?;
        let w = worker(c, Duration::from_millis(10));
        tasks.push(tokio::spawn(workload::cache_worker(w, keys.clone())));
    }
    let mut leases = Vec::new();
    for i in 0..LEASE_WORKERS {
        let c = client(&spec, &proxied, i as usize + 1, user).await?;
        let w = worker(c, Duration::from_millis(100));
        leases.push(tokio::spawn(workload::lease_worker(w, 6)));
    }
    let mut locks = Vec::new();
    let lock_records = Arc::new(AtomicU32::new(1));
    let lock_name = format!("{base}lock");
    let counter = format!("{prefix}counter");
    for i in 0..LOCK_WORKERS {
        let c = client(&spec, &proxied, i as usize + 2, user).await?;
        let w = worker(c, Duration::from_millis(50));
        locks.push(tokio::spawn(workload::lock_worker(
            w,
            lock_name.clone(),
            counter.clone(),
            lock_records.clone(),
        )));
    }

    // The nemesis, on a thread of its own (the launcher blocks).
    let kinds: Vec<FaultKind> = spec
        .faults
        .iter()
        .copied()
        .filter(|k| settings.partitions || !k.needs_partitions())
        .collect();
    let member_of = {
        let first = kv_clients[0].clone();
        let proxied = proxied.clone();
        Arc::new(move || {
            let current = first.current_endpoint();
            proxied.iter().position(|p| *p == current)
        })
    };
    let clock = {
        let recorder = recorder.clone();
        Arc::new(move || recorder.now())
    };
    let leader = {
        let mut members = Vec::new();
        for endpoint in &direct {
            members.push(client(&spec, std::slice::from_ref(endpoint), 0, user).await?);
        }
        let runtime = tokio::runtime::Handle::current();
        Arc::new(move || leader_of(&runtime, &members))
    };
    let nemesis = Nemesis {
        etcd,
        partition,
        proxies: proxies.iter().map(Proxy::control).collect(),
        kinds,
        rng: workload::rng_for(seed, u32::MAX),
        client_member: member_of,
        leader,
        clock,
    };
    let until = Instant::now() + spec.duration;
    let nemesis_stop = Arc::new(AtomicBool::new(false));
    let nemesis_flag = nemesis_stop.clone();
    let (etcd, faults, healed) =
        tokio::task::spawn_blocking(move || nemesis.run(until, &nemesis_flag))
            .await
            .map_err(|e| e.to_string())?;
    healed?;

    // Every fault is healed: stop the workloads. A client that does not come back within
    // its deadlines is a finding in itself.
    stop.store(true, Ordering::Relaxed);
    let bound = Duration::from_secs(30);
    for task in tasks {
        tokio::time::timeout(bound, task)
            .await
            .map_err(|_| "a KV or cache worker hung past its deadlines".to_string())?
            .map_err(|e| e.to_string())?;
    }
    let mut lock_history = Vec::new();
    for task in locks {
        let records = tokio::time::timeout(bound, task)
            .await
            .map_err(|_| "a lock worker hung past its deadlines".to_string())?
            .map_err(|e| e.to_string())?;
        lock_history.extend(records);
    }
    let mut lease_history = Vec::new();
    let mut keepers = Vec::new();
    for task in leases {
        let (records, kept) = tokio::time::timeout(bound, task)
            .await
            .map_err(|_| "a lease worker hung past its deadlines".to_string())?
            .map_err(|e| e.to_string())?;
        lease_history.extend(records);
        keepers.extend(kept);
    }

    // The closing write: every watch must reach it, and the read-back ends at it.
    let closing = closing_write(&admin, &recorder, &prefix).await?;
    let _ = target.send(Some((closing, tokio::time::Instant::now() + bound)));
    let mut watches = Vec::new();
    for task in watchers {
        let record = tokio::time::timeout(bound + Duration::from_secs(5), task)
            .await
            .map_err(|_| "a watch did not stop".to_string())?
            .map_err(|e| e.to_string())?;
        watches.push(record);
    }
    let store = crate::store::read_back(
        etcd.etcdctl_path(),
        &direct,
        user,
        &base,
        first_revision,
        closing,
    )
    .await?;
    // Leases whose keepers still keep them (and were never reported lost) must still have
    // their keys: checked against the store read above, which ends after every fault.
    for record in &mut lease_history {
        if record.lost.is_none() && record.revoked.is_none() {
            record.kept_to_end = keepers
                .iter()
                .any(|k| k.id() == record.lease && k.lost_reason().is_none());
        }
    }
    drop(keepers);

    let history = History {
        prefix: base.clone(),
        ops: recorder.take_ops(),
        watches,
        locks: lock_history,
        leases: lease_history,
        store: Some(store),
        faults: faults
            .iter()
            .map(|f| FaultSpan {
                kind: f.kind.name(),
                member: f.member,
                start: f.start,
                healed: f.healed,
            })
            .collect(),
    };
    let checking = Instant::now();
    let (history, anomalies) = tokio::task::spawn_blocking(move || {
        let anomalies = check::check(&history);
        (history, anomalies)
    })
    .await
    .map_err(|e| e.to_string())?;
    let check_ms = checking.elapsed().as_millis() as u64;
    let version = etcd.version().to_string();
    drop(proxies);
    tokio::task::spawn_blocking(move || drop(etcd))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Run {
        spec,
        version,
        seed,
        history,
        faults,
        anomalies,
        check_ms,
        elapsed: started.elapsed(),
    })
}

/// A client of the scenario's protocol, its endpoints rotated so that clients spread over
/// the members.
async fn client(
    spec: &Spec,
    endpoints: &[String],
    rotate: usize,
    user: Option<(&str, &str)>,
) -> Result<Client, String> {
    let mut endpoints = endpoints.to_vec();
    let n = endpoints.len();
    endpoints.rotate_left(rotate % n);
    let mut builder = Client::builder()
        .endpoints(endpoints)
        .request_timeout(Duration::from_secs(2))
        .deadline(Duration::from_secs(5));
    builder = match spec.wire {
        Wire::Gateway => builder.stream_mode(spec.stream_mode),
        Wire::Grpc => builder.protocol(Protocol::Grpc),
    };
    if let Some((name, password)) = user {
        builder = builder.credentials(name, password);
    }
    builder
        .build()
        .map_err(|e| format!("building a client: {e}"))
}

/// The member that leads, asking each (one client per member) for its status; of several
/// that believe they lead, the one with the highest term. Called from the nemesis's thread.
fn leader_of(runtime: &tokio::runtime::Handle, members: &[Client]) -> Option<usize> {
    runtime.block_on(async {
        let mut best: Option<(u64, usize)> = None;
        for (i, member) in members.iter().enumerate() {
            let status = tokio::time::timeout(Duration::from_secs(2), member.status()).await;
            if let Ok(Ok(status)) = status {
                if status.is_leader() && best.is_none_or(|(term, _)| status.raft_term() > term) {
                    best = Some((status.raft_term(), i));
                }
            }
        }
        best.map(|(_, i)| i)
    })
}

/// Adds `root` and turns auth on.
async fn enable_auth(admin: &Client) -> Result<(), String> {
    let step = |what: &'static str| move |e: etcd_kv::Error| format!("{what}: {e}");
    admin
        .role_add("root")
        .await
        .map_err(step("role add root"))?;
    admin
        .user_add("root")
        .password(ROOT_PASSWORD)
        .await
        .map_err(step("user add root"))?;
    admin
        .user_grant_role("root", "root")
        .await
        .map_err(step("grant root"))?;
    admin.auth_enable().await.map_err(step("auth enable"))
}

/// A last put under the prefix, after every fault was healed; its revision.
async fn closing_write(admin: &Client, recorder: &Recorder, prefix: &str) -> Result<i64, String> {
    let key = format!("{prefix}~closing");
    let mut last_error = String::new();
    for attempt in 0..10 {
        // A value of its own per attempt: one whose outcome is unknown may still apply.
        let value = format!("{CLOSING_CLIENT}.{attempt}");
        let request = Request::Put {
            key: key.clone(),
            value: value.clone(),
        };
        let op: Op = recorder
            .op(CLOSING_CLIENT, None, request, async {
                let answer = admin.put(&key, value).await?;
                Ok(Outcome::Put {
                    revision: answer.revision(),
                })
            })
            .await;
        match op.outcome {
            Outcome::Put { revision } => return Ok(revision),
            Outcome::Unknown { error } | Outcome::Failed { error } => last_error = error,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("the closing write failed: {last_error}"))
}
