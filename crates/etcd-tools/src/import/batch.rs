//! The import's writes: changes handed to the client's [`Batch`] (transactions within
//! etcd's limits, some in flight at once, `--unchanged-since` as its guard), whose results
//! are reported in order, each change once its transaction applied.

use super::ImportOptions;
use crate::diff::{Change, ChangeKind, DiffCounts, Report};
use crate::error::{Error, Result};
use crate::error::{TxnOutcome, TxnState};
use crate::record::display_key;
use bytes::Bytes;
use etcd_kv::{Batch, BatchResult, Client, Compare, TxnOp};
use std::collections::VecDeque;

/// The import's batch, and the changes it holds until their transactions settle.
pub(super) struct Batcher {
    batch: Batch,
    guarded: bool,
    /// The changes pushed and not yet settled, in the order of the batch's operations.
    changes: VecDeque<(ChangeKind, Bytes)>,
    /// Transactions settled so far (the next one's number is this plus one).
    settled: u64,
    /// The revision after the last transaction (the snapshot's before the first).
    pub(super) revision: i64,
    pub(super) transactions: u64,
    applied: DiffCounts,
}

/// A settled transaction and what it changed.
struct Settled {
    number: u64,
    changes: Vec<(ChangeKind, Bytes)>,
    result: BatchResult,
}

impl Settled {
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

    fn state(&self) -> TxnState {
        if let Some(revision) = self.result.revision() {
            return TxnState::Applied { revision };
        }
        match self.result.error() {
            Some(e) => failed_state(e),
            None => TxnState::NotApplied {
                reason: "the keyspace under the prefix changed (--unchanged-since)".into(),
            },
        }
    }
}

impl Batcher {
    pub(super) fn new(client: &Client, options: &ImportOptions, snapshot_revision: i64) -> Self {
        let guarded = options.unchanged_since.is_some();
        let mut batch = client
            .batch()
            // A guarded transaction also compares the whole prefix: one compare more.
            .max_ops(if guarded {
                options.max_txn_ops.saturating_sub(1).max(1)
            } else {
                options.max_txn_ops.max(1)
            })
            .max_bytes(options.max_txn_bytes)
            .concurrency(options.concurrency.max(1))
            // What was applied stays a known prefix of what was sent.
            .stop_at_failure();
        if guarded {
            // Nothing under the prefix changed since our last write (or the snapshot);
            // the guard chains each transaction to the one before (one at a time).
            let prefix = options.prefix.clone();
            batch = batch.guard(snapshot_revision, move |revision| {
                Compare::mod_revision(prefix.clone())
                    .prefix()
                    .lt(revision + 1)
            });
        }
        Batcher {
            batch,
            guarded,
            changes: VecDeque::new(),
            settled: 0,
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
        let mut compares = Vec::new();
        if self.guarded && change.kind != ChangeKind::Added {
            // Catches a deletion of this key since the snapshot, which the prefix
            // compare cannot see.
            compares.push(Compare::mod_revision(change.key.clone()).eq(change.mod_revision));
        }
        let op = match change.kind {
            ChangeKind::Added | ChangeKind::Changed => TxnOp::put(change.key.clone(), change.value),
            ChangeKind::Deleted => TxnOp::delete(change.key.clone()),
        };
        self.changes.push_back((change.kind, change.key.clone()));
        if let Err(e) = self.batch.push_if(op, compares).await {
            self.changes.pop_back();
            let error = Error::Etcd {
                context: format!("writing key {}", display_key(&change.key)),
                source: Box::new(e),
            };
            return Err(self.abandon(error, report).await);
        }
        let settled: Vec<BatchResult> = self.batch.results().collect();
        self.take(settled, report).await
    }

    /// Sends what is pending and waits for every transaction.
    pub(super) async fn finish<W: std::io::Write>(&mut self, report: &mut Report<W>) -> Result<()> {
        let settled = self.batch.finish().await;
        self.take(settled, report).await
    }

    /// The next settled transaction, with its changes.
    fn settle(&mut self, result: BatchResult) -> Settled {
        let n = result.ops().count().min(self.changes.len());
        self.settled += 1;
        Settled {
            number: self.settled,
            changes: self.changes.drain(..n).collect(),
            result,
        }
    }

    /// Counts and reports settled transactions in order. On the first that did not
    /// apply, waits for the others in flight (nothing more is sent), so that the error
    /// says exactly what was applied and what became of each transaction in flight.
    async fn take<W: std::io::Write>(
        &mut self,
        settled: Vec<BatchResult>,
        report: &mut Report<W>,
    ) -> Result<()> {
        let mut settled = settled.into_iter();
        while let Some(result) = settled.next() {
            let next = self.settle(result);
            if let Some(revision) = next.result.revision() {
                self.applied_ok(&next.changes, revision, report)?;
                continue;
            }
            let mut rest: Vec<BatchResult> = settled.collect();
            let others_in_flight = rest.len() + self.batch.in_flight();
            rest.extend(self.batch.abandon().await);
            let others = self.outcomes(rest, report)?;
            // The changes queued after: never sent.
            self.changes.clear();
            return Err(self.failure(next, others, others_in_flight));
        }
        Ok(())
    }

    /// What became of each of `results` (counting and reporting the applied ones).
    fn outcomes<W: std::io::Write>(
        &mut self,
        results: Vec<BatchResult>,
        report: &mut Report<W>,
    ) -> Result<Vec<TxnOutcome>> {
        let mut outcomes = Vec::new();
        for result in results {
            let txn = self.settle(result);
            if let Some(revision) = txn.result.revision() {
                self.applied_ok(&txn.changes, revision, report)?;
            }
            outcomes.push(txn.outcome(txn.state()));
        }
        Ok(outcomes)
    }

    /// The error for a transaction that did not apply, given what became of the others.
    fn failure(&self, next: Settled, others: Vec<TxnOutcome>, others_in_flight: usize) -> Error {
        let Some(e) = next.result.error() else {
            let text = format!(
                "the keyspace under the prefix changed after revision {} (--unchanged-since)",
                self.revision
            );
            return Error::Conflict(format!("{text}; {}", self.applied_text()));
        };
        let mut outcomes = vec![next.outcome(failed_state(e))];
        outcomes.extend(others);
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
            summary
                .push_str(" (check --max-txn-ops and --max-txn-bytes against the server's limits)");
        }
        summary.push_str(&format!(
            ": {}; {}; running the import again finishes it",
            crate::error::chain_line(e),
            self.applied_text()
        ));
        if others_in_flight > 0 {
            summary.push_str(&format!("; the {} transactions in flight:", outcomes.len()));
        } else {
            outcomes.clear();
        }
        let source = match next.result.into_result() {
            Err(e) => e,
            Ok(_) => etcd_kv::Error::Protocol("a failed transaction without its error".into()),
        };
        Error::Write {
            summary,
            in_flight: outcomes,
            source: Box::new(source),
        }
    }

    /// Sends nothing more, waits for every transaction still in flight, and says what
    /// became of each.
    async fn wait_all<W: std::io::Write>(
        &mut self,
        report: &mut Report<W>,
    ) -> Result<Vec<TxnOutcome>> {
        let mut results: Vec<BatchResult> = self.batch.results().collect();
        results.extend(self.batch.abandon().await);
        let outcomes = self.outcomes(results, report);
        self.changes.clear();
        outcomes
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
