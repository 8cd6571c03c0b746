//! The nemesis: faults injected into a running 3-member cluster and healed again, at random
//! moments chosen from a seed, while the workloads run.

use crate::proxy::{self, Control};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use xtask::{Etcd, Partition};

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// `kill -9` the leader, restart it after the hold.
    KillLeader,
    /// `kill -9` a follower, restart it after the hold.
    KillFollower,
    /// `kill -9` the member the first KV client is using, restart it after the hold.
    KillClientMember,
    /// Stop the leader gracefully (SIGTERM: it closes its gateway's connections), restart it.
    RestartLeader,
    /// SIGSTOP the leader, SIGCONT after the hold.
    FreezeLeader,
    /// SIGSTOP a follower, SIGCONT after the hold.
    FreezeFollower,
    /// Cut the leader off from both other members.
    IsolateLeader,
    /// Cut a follower off from both other members.
    IsolateFollower,
    /// Drop what the leader sends to one follower (one way).
    OneWay,
    /// Cut two members apart; the third still talks to both (a majority "bridge").
    Bridge,
    /// Clients' connections to one member are cut right after a request went through.
    ProxyCut,
    /// Clients' connections to one member are delayed (300 ms each way).
    ProxyDelay,
    /// Clients' connections to one member go silent (nothing forwarded, nothing closed).
    ProxyBlackHole,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 13] = [
        FaultKind::KillLeader,
        FaultKind::KillFollower,
        FaultKind::KillClientMember,
        FaultKind::RestartLeader,
        FaultKind::FreezeLeader,
        FaultKind::FreezeFollower,
        FaultKind::IsolateLeader,
        FaultKind::IsolateFollower,
        FaultKind::OneWay,
        FaultKind::Bridge,
        FaultKind::ProxyCut,
        FaultKind::ProxyDelay,
        FaultKind::ProxyBlackHole,
    ];

    /// Faults of processes: kills, graceful restarts, freezes.
    pub const PROCESSES: [FaultKind; 6] = [
        FaultKind::KillLeader,
        FaultKind::KillFollower,
        FaultKind::KillClientMember,
        FaultKind::RestartLeader,
        FaultKind::FreezeLeader,
        FaultKind::FreezeFollower,
    ];

    /// Network partitions between members.
    pub const PARTITIONS: [FaultKind; 4] = [
        FaultKind::IsolateLeader,
        FaultKind::IsolateFollower,
        FaultKind::OneWay,
        FaultKind::Bridge,
    ];

    /// Faults between clients and members.
    pub const CLIENTS: [FaultKind; 3] = [
        FaultKind::ProxyCut,
        FaultKind::ProxyDelay,
        FaultKind::ProxyBlackHole,
    ];

    /// The kebab-case name (`kill-leader`).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The kinds a `--faults` word names: a kind (`kill-leader`), a family (`processes`,
    /// `partitions`, `clients`) or `all`.
    pub fn parse(word: &str) -> Option<Vec<FaultKind>> {
        match word {
            "all" => Some(Self::ALL.to_vec()),
            "processes" => Some(Self::PROCESSES.to_vec()),
            "partitions" => Some(Self::PARTITIONS.to_vec()),
            "clients" => Some(Self::CLIENTS.to_vec()),
            other => Self::ALL
                .iter()
                .find(|k| k.name() == other)
                .map(|k| vec![*k]),
        }
    }

    /// True for the kinds that need network partitions (root, nftables).
    pub fn needs_partitions(self) -> bool {
        Self::PARTITIONS.contains(&self)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One fault as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    /// What.
    pub kind: FaultKind,
    /// The member it hit.
    pub member: usize,
    /// When it started and was healed, nanoseconds on the scenario's clock.
    pub start: u64,
    /// When it was healed.
    pub healed: u64,
}

/// What the nemesis needs from the scenario.
pub struct Nemesis {
    /// The cluster (taken for the run, given back at the end).
    pub etcd: Etcd,
    /// Its partition handle, when partitions are possible.
    pub partition: Option<Partition>,
    /// The proxies in front of the members, in member order.
    pub proxies: Vec<Control>,
    /// The kinds to draw from.
    pub kinds: Vec<FaultKind>,
    /// Seeded from the scenario's seed.
    pub rng: StdRng,
    /// Which member the first KV client uses now (for [`FaultKind::KillClientMember`]).
    pub client_member: Arc<dyn Fn() -> Option<usize> + Send + Sync>,
    /// Which member leads now, if any one does (asked with the scenario's credentials).
    pub leader: Arc<dyn Fn() -> Option<usize> + Send + Sync>,
    /// The scenario's clock, in nanoseconds.
    pub clock: Arc<dyn Fn() -> u64 + Send + Sync>,
}

/// How long the nemesis waits for the cluster to be healthy after healing a fault.
const RECOVERY: Duration = Duration::from_secs(20);

impl Nemesis {
    /// Injects and heals faults until `until` or `stop`, then heals everything and waits for
    /// the cluster to be healthy. Blocking: run it on a thread of its own. Returns the
    /// cluster and what happened, or an error when the cluster could not be healed.
    pub fn run(
        mut self,
        until: Instant,
        stop: &AtomicBool,
    ) -> (Etcd, Vec<FaultRecord>, Result<(), String>) {
        let mut records = Vec::new();
        let mut deck: Vec<FaultKind> = Vec::new();
        let mut result = Ok(());
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            let gap = Duration::from_millis(self.rng.gen_range(300..1200));
            thread::sleep(gap);
            if Instant::now() >= until || stop.load(Ordering::Relaxed) {
                break;
            }
            // Every kind once (in random order) before any twice.
            if deck.is_empty() {
                deck = self.kinds.clone();
                deck.shuffle(&mut self.rng);
            }
            let Some(kind) = deck.pop() else {
                break;
            };
            let hold = Duration::from_millis(self.rng.gen_range(1000..3000));
            match self.fault(kind, hold) {
                Ok(record) => records.push(record),
                Err(e) => {
                    result = Err(format!("{kind}: {e}"));
                    break;
                }
            }
        }
        if let Err(e) = self.heal_all() {
            result = result.and(Err(e));
        }
        (self.etcd, records, result)
    }

    /// One fault: inject, hold, heal, wait for health.
    fn fault(&mut self, kind: FaultKind, hold: Duration) -> Result<FaultRecord, String> {
        let n = self.etcd.node_count();
        let leader = (self.leader)().ok_or_else(|| "no leader before the fault".to_string())?;
        let follower = (leader + self.rng.gen_range(1..n)) % n;
        let member = match kind {
            FaultKind::KillLeader
            | FaultKind::RestartLeader
            | FaultKind::FreezeLeader
            | FaultKind::IsolateLeader
            | FaultKind::OneWay => leader,
            FaultKind::KillClientMember => (self.client_member)().unwrap_or(leader),
            FaultKind::ProxyCut | FaultKind::ProxyDelay | FaultKind::ProxyBlackHole => {
                (self.client_member)().unwrap_or(follower)
            }
            _ => follower,
        };
        let start = (self.clock)();
        let err = |e: xtask::LaunchError| format!("member {member}: {e}");
        match kind {
            FaultKind::KillLeader | FaultKind::KillFollower | FaultKind::KillClientMember => {
                self.etcd.kill_node(member).map_err(err)?;
                thread::sleep(hold);
                self.etcd.start_node(member).map_err(err)?;
            }
            FaultKind::RestartLeader => {
                self.etcd.stop_node(member).map_err(err)?;
                thread::sleep(hold);
                self.etcd.start_node(member).map_err(err)?;
            }
            FaultKind::FreezeLeader | FaultKind::FreezeFollower => {
                self.etcd.pause_node(member).map_err(err)?;
                thread::sleep(hold);
                self.etcd.resume_node(member).map_err(err)?;
            }
            FaultKind::IsolateLeader
            | FaultKind::IsolateFollower
            | FaultKind::OneWay
            | FaultKind::Bridge => {
                let partition = self
                    .partition
                    .as_ref()
                    .ok_or_else(|| "partitions are not available".to_string())?;
                match kind {
                    FaultKind::OneWay => partition.block(leader, follower),
                    FaultKind::Bridge => {
                        // The two members other than `member` cannot talk; `member` bridges.
                        let others: Vec<usize> = (0..n).filter(|&i| i != member).collect();
                        partition.cut(others[0], others[1])
                    }
                    _ => partition.isolate(member),
                }
                .map_err(err)?;
                thread::sleep(hold);
                partition.heal().map_err(err)?;
            }
            FaultKind::ProxyCut | FaultKind::ProxyDelay | FaultKind::ProxyBlackHole => {
                let proxy = &self.proxies[member];
                proxy.set(match kind {
                    FaultKind::ProxyCut => proxy::Mode::Cut(0.3),
                    FaultKind::ProxyDelay => proxy::Mode::Delay(Duration::from_millis(300)),
                    _ => proxy::Mode::BlackHole,
                });
                thread::sleep(hold);
                proxy.set(proxy::Mode::Pass);
            }
        }
        let healed = (self.clock)();
        self.wait_healthy()?;
        Ok(FaultRecord {
            kind,
            member,
            start,
            healed,
        })
    }

    /// Restarts stopped members, resumes frozen ones, heals partitions and proxies, and
    /// waits for a healthy cluster.
    pub fn heal_all(&mut self) -> Result<(), String> {
        for proxy in &self.proxies {
            proxy.set(proxy::Mode::Pass);
        }
        if let Some(partition) = &self.partition {
            partition.heal().map_err(|e| e.to_string())?;
        }
        for i in 0..self.etcd.node_count() {
            if self.etcd.pid(i).is_none() {
                self.etcd.start_node(i).map_err(|e| e.to_string())?;
            } else {
                // SIGCONT to a running member is harmless.
                self.etcd.resume_node(i).map_err(|e| e.to_string())?;
            }
        }
        self.wait_healthy()
    }

    /// Waits until every member is healthy (it has a leader and answers) and there is one
    /// leader.
    fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + RECOVERY;
        loop {
            let all = (0..self.etcd.node_count()).all(|i| self.etcd.is_healthy(i));
            if all && (self.leader)().is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let tails: Vec<String> = (0..self.etcd.node_count())
                    .map(|i| format!("node {i}: {}", self.etcd.log_tail(i, 5)))
                    .collect();
                return Err(format!(
                    "the cluster was not healthy {RECOVERY:?} after a fault was healed\n{}",
                    tails.join("\n")
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}
