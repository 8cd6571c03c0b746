//! The batcher: changes grouped into transactions within etcd's limits, some in flight at
//! once, settled and reported in order.

use super::ImportOptions;
use crate::diff::{Change, ChangeKind, DiffCounts, Report};
use crate::error::{Error, Result};
use crate::error::{TxnOutcome, TxnState};
use crate::record::display_key;
use bytes::Bytes;
use etcd_kv::{Client, Compare, TxnOp};
use std::collections::VecDeque;

/// Groups changes into transactions within etcd's limits, with up to `concurrency` of
/// them in flight (settled, and reported, in order).
pub(super) struct Batcher {
    client: Client,
    max_ops: usize,
    max_bytes: usize,
    concurrency: usize,
    /// The prefix of the `--unchanged-since` guard, when given.
    guard: Option<Bytes>,
    ops: Vec<TxnOp>,
    compares: Vec<Compare>,
    pending: Vec<(ChangeKind, Bytes)>,
    bytes: usize,
    in_flight: VecDeque<InFlight>,
    /// Transactions sent so far (the last one's number).
    sent: u64,
    /// The revision after the last transaction (the snapshot's before the first).
    pub(super) revision: i64,
    pub(super) transactions: u64,
    applied: DiffCounts,
}

/// A transaction sent, and what it changes.
struct InFlight {
    /// Its number in the import, from 1.
    number: u64,
    changes: Vec<(ChangeKind, Bytes)>,
    task: tokio::task::JoinHandle<etcd_kv::Result<etcd_kv::TxnResponse>>,
}

impl InFlight {
    fn outcome(&self, state: TxnState) -> TxnOutcome {
        let key = |c: Option<&(ChangeKind, Bytes)>| c.map(|c| display_key(&c.1));
        TxnOutcome {
            number: self.number,
            operations: self.changes.len(),
            first_key: key(self.changes.first()).unwrap_or_default(),
            last_key: key(self.changes.last()).unwrap_or_default(),
            state,
        }
    }
}

/// Bytes counted per operation besides its key and value (protobuf framing).
const OP_OVERHEAD: usize = 32;

/// What a settled transaction's answer means.
enum Settled {
    Applied(i64),
    /// Its compares failed (`--unchanged-since`): nothing applied.
    CompareFailed,
    Failed(etcd_kv::Error),
}

impl Batcher {
    pub(super) fn new(client: &Client, options: &ImportOptions, snapshot_revision: i64) -> Self {
        let guarded = options.unchanged_since.is_some();
        Batcher {
            client: client.clone(),
            // A guarded transaction also compares the whole prefix: one compare more.
            max_ops: if guarded {
                options.max_txn_ops.saturating_sub(1).max(1)
            } else {
                options.max_txn_ops.max(1)
            },
            max_bytes: options.max_txn_bytes,
            // The guard chains each transaction to the revision of the one before.
            concurrency: if guarded {
                1
            } else {
                options.concurrency.max(1)
            },
            guard: guarded.then(|| options.prefix.clone()),
            ops: Vec::new(),
            compares: Vec::new(),
            pending: Vec::new(),
            bytes: 0,
            in_flight: VecDeque::new(),
            sent: 0,
            revision: snapshot_revision,
            transactions: 0,
            applied: DiffCounts::default(),
        }
    }

    pub(super) async fn push<W: std::io::Write>(
        &mut self,
        change: Change,
        report: &mut Report<W>,
    ) -> Result<()> {
        let guarded = self.guard.is_some();
        let mut cost = change.key.len() + change.value.len() + OP_OVERHEAD;
        if guarded && change.kind != ChangeKind::Added {
            cost += change.key.len() + OP_OVERHEAD;
        }
        if !self.ops.is_empty()
            && (self.ops.len() >= self.max_ops || self.bytes + cost > self.max_bytes)
        {
            self.send(report).await?;
        }
        if guarded && change.kind != ChangeKind::Added {
            // Catches a deletion of this key since the snapshot, which the prefix
            // compare cannot see.
            self.compares
                .push(Compare::mod_revision(change.key.clone()).eq(change.mod_revision));
        }
        self.ops.push(match change.kind {
            ChangeKind::Added | ChangeKind::Changed => TxnOp::put(change.key.clone(), change.value),
            ChangeKind::Deleted => TxnOp::delete(change.key.clone()),
        });
        self.pending.push((change.kind, change.key));
        self.bytes += cost;
        Ok(())
    }

    /// Sends the pending operations as one transaction, waiting for earlier ones while
    /// too many are in flight.
    async fn send<W: std::io::Write>(&mut self, report: &mut Report<W>) -> Result<()> {
        if self.ops.is_empty() {
            return Ok(());
        }
        while self.in_flight.len() >= self.concurrency {
            self.settle(report).await?;
        }
        let mut compares = std::mem::take(&mut self.compares);
        if let Some(prefix) = &self.guard {
            // Nothing under the prefix changed since our last write (or the snapshot).
            compares.push(
                Compare::mod_revision(prefix.clone())
                    .prefix()
                    .lt(self.revision + 1),
            );
        }
        let ops = std::mem::take(&mut self.ops);
        let client = self.client.clone();
        let task = tokio::spawn(async move { client.txn().when(compares).and_then(ops).await });
        self.sent += 1;
        self.in_flight.push_back(InFlight {
            number: self.sent,
            changes: std::mem::take(&mut self.pending),
            task,
        });
        self.bytes = 0;
        Ok(())
    }

    /// Sends what is pending and waits for every transaction.
    pub(super) async fn finish<W: std::io::Write>(&mut self, report: &mut Report<W>) -> Result<()> {
        self.send(report).await?;
        while !self.in_flight.is_empty() {
            self.settle(report).await?;
        }
        Ok(())
    }

    /// Waits for `txn` and counts it when applied.
    async fn wait<W: std::io::Write>(
        &mut self,
        txn: &mut InFlight,
        report: &mut Report<W>,
    ) -> Result<Settled> {
        Ok(match join(&mut txn.task).await {
            Ok(response) if response.succeeded() => {
                self.applied_ok(&txn.changes, response.revision(), report)?;
                Settled::Applied(response.revision())
            }
            Ok(_) => Settled::CompareFailed,
            Err(e) => Settled::Failed(e),
        })
    }

    /// Waits for every transaction still in flight, and says what became of each.
    async fn wait_all<W: std::io::Write>(
        &mut self,
        report: &mut Report<W>,
    ) -> Result<Vec<TxnOutcome>> {
        let mut outcomes = Vec::new();
        while let Some(mut txn) = self.in_flight.pop_front() {
            let state = match self.wait(&mut txn, report).await? {
                Settled::Applied(revision) => TxnState::Applied { revision },
                Settled::CompareFailed => TxnState::NotApplied {
                    reason: "the keyspace under the prefix changed (--unchanged-since)".into(),
                },
                Settled::Failed(e) => failed_state(&e),
            };
            outcomes.push(txn.outcome(state));
        }
        Ok(outcomes)
    }

    /// Waits for the oldest transaction in flight. On failure, waits for the others too,
    /// so that the error says exactly what was applied, and what became of each
    /// transaction that was in flight.
    async fn settle<W: std::io::Write>(&mut self, report: &mut Report<W>) -> Result<()> {
        let Some(mut next) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let others_in_flight = self.in_flight.len();
        match self.wait(&mut next, report).await? {
            Settled::Applied(_) => Ok(()),
            Settled::CompareFailed => {
                let text = format!(
                    "the keyspace under the prefix changed after revision {} \
                     (--unchanged-since)",
                    self.revision
                );
                self.wait_all(report).await?;
                Err(Error::Conflict(format!("{text}; {}", self.applied_text())))
            }
            Settled::Failed(e) => {
                let mut outcomes = vec![next.outcome(failed_state(&e))];
                outcomes.extend(self.wait_all(report).await?);
                let named = next.outcome(TxnState::Applied { revision: 0 });
                let keys = if named.first_key == named.last_key {
                    format!("key {}", named.first_key)
                } else {
                    format!("keys {} to {}", named.first_key, named.last_key)
                };
                let s = if named.operations == 1 { "" } else { "s" };
                let mut summary = format!(
                    "transaction {} ({} operation{s}, {keys}) failed",
                    named.number, named.operations
                );
                if e.is_outcome_unknown() {
                    summary.push_str(" and may have been applied");
                }
                if matches!(e, etcd_kv::Error::InvalidInput { .. }) {
                    summary.push_str(
                        " (check --max-txn-ops and --max-txn-bytes against the server's limits)",
                    );
                }
                summary.push_str(&format!(
                    ": {}; {}; running the import again finishes it",
                    crate::error::chain_line(&e),
                    self.applied_text()
                ));
                if others_in_flight > 0 {
                    summary.push_str(&format!("; the {} transactions in flight:", outcomes.len()));
                } else {
                    outcomes.clear();
                }
                Err(Error::Write {
                    summary,
                    in_flight: outcomes,
                    source: Box::new(e),
                })
            }
        }
    }

    fn applied_text(&self) -> String {
        match self.transactions {
            0 => "nothing was written".to_string(),
            n => format!(
                "{n} transaction{} applied ({} added, {} changed, {} deleted)",
                if n == 1 { " was" } else { "s were" },
                self.applied.added,
                self.applied.changed,
                self.applied.deleted
            ),
        }
    }

    /// After `error` elsewhere: sends nothing more, waits for the transactions in flight
    /// and adds to the error what was written.
    pub(super) async fn abandon<W: std::io::Write>(
        &mut self,
        error: Error,
        report: &mut Report<W>,
    ) -> Error {
        if self.wait_all(report).await.is_err() {
            return error;
        }
        if self.transactions == 0 {
            return error;
        }
        let applied = self.applied_text();
        match error {
            Error::Etcd { context, source } => Error::Etcd {
                context: format!("{context} ({applied})"),
                source,
            },
            Error::Io { context, source } => Error::Io {
                context: format!("{context} ({applied})"),
                source,
            },
            Error::Input { file, line, reason } => Error::Input {
                file,
                line,
                reason: format!("{reason} ({applied})"),
            },
            other => other,
        }
    }

    /// After an [`Interrupt`]: sends nothing more (the operations gathered for the next
    /// transaction are dropped), waits for the transactions in flight, and says what was
    /// applied and how to finish.
    pub(super) async fn interrupted<W: std::io::Write>(
        &mut self,
        options: &ImportOptions,
        report: &mut Report<W>,
    ) -> Error {
        let in_flight = self.wait_all(report).await.unwrap_or_default();
        let _ = report.flush();
        if options.dry_run {
            return Error::Interrupted {
                summary: "interrupted: nothing was written (a dry run writes nothing)".into(),
                in_flight,
            };
        }
        let any_unknown = in_flight
            .iter()
            .any(|t| matches!(t.state, TxnState::Unknown { .. }));
        let rerun = match options.unchanged_since {
            Some(_) => format!(
                "to finish, run the same command with --unchanged-since {} (the revision \
                 after this import's last transaction; the first --unchanged-since would now \
                 see this import's own writes)",
                self.revision
            ),
            None => "to finish, run the same command again (it writes only what still \
                     differs)"
                .to_string(),
        };
        let mut summary = if self.transactions == 0 && !any_unknown {
            format!(
                "interrupted before the first transaction was applied: nothing was written; \
                 {rerun}"
            )
        } else {
            format!(
                "interrupted: {}, each whole; the transaction being gathered was not sent; \
                 {rerun}",
                self.applied_text()
            )
        };
        let unknown = in_flight
            .iter()
            .filter(|t| matches!(t.state, TxnState::Unknown { .. }))
            .count();
        if unknown > 0 {
            summary.push_str(&format!(
                "; {unknown} of the transactions in flight may or may not have been applied \
                 (each whole or not at all): the rerun writes whatever still differs"
            ));
        }
        if !in_flight.is_empty() {
            summary.push_str(&format!(
                "; the {} transaction{} in flight, waited for:",
                in_flight.len(),
                if in_flight.len() == 1 { "" } else { "s" }
            ));
        }
        Error::Interrupted { summary, in_flight }
    }

    fn applied_ok<W: std::io::Write>(
        &mut self,
        changes: &[(ChangeKind, Bytes)],
        revision: i64,
        report: &mut Report<W>,
    ) -> Result<()> {
        self.revision = self.revision.max(revision);
        self.transactions += 1;
        for (kind, key) in changes {
            self.applied.count(*kind);
            report.change(*kind, key)?;
        }
        Ok(())
    }
}

/// A failed transaction's state: not applied, or unknown when the request may have
/// reached the server.
fn failed_state(e: &etcd_kv::Error) -> TxnState {
    let reason = crate::error::chain_line(e);
    if e.is_outcome_unknown() {
        TxnState::Unknown { reason }
    } else {
        TxnState::NotApplied { reason }
    }
}

async fn join(
    task: &mut tokio::task::JoinHandle<etcd_kv::Result<etcd_kv::TxnResponse>>,
) -> etcd_kv::Result<etcd_kv::TxnResponse> {
    match task.await {
        Ok(result) => result,
        Err(e) => Err(etcd_kv::Error::Protocol(format!(
            "the write task failed: {e}"
        ))),
    }
}
