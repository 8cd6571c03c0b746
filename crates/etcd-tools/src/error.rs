//! The tools' error type: what went wrong, where, and which exit code it means.

use std::error::Error as StdError;

/// Errors of `etcd-export` and `etcd-import`.
///
/// [`Error::exit_code`] maps them to the tools' exit codes (2 for usage errors, 1 for the
/// rest) and [`Error::one_line`] renders the whole cause chain on one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command line makes no sense (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The input file is invalid; nothing was written.
    #[error("{file}:{line}: {reason}")]
    Input {
        /// The file, as named on the command line (`<stdin>` for `-`).
        file: String,
        /// The 1-based line of the record (for a JSON object entry: the line where its
        /// value ends).
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A key or value cannot be written losslessly with the chosen key or value type.
    #[error("key {key}: {reason}")]
    Encode {
        /// The key, as shown by [`crate::record::display_key`].
        key: String,
        /// What is wrong, with a hint.
        reason: String,
    },
    /// An etcd request failed.
    #[error("{context}")]
    Etcd {
        /// What the tool was doing.
        context: String,
        /// The client's error.
        #[source]
        source: Box<etcd_kv::Error>,
    },
    /// Reading or writing a file failed.
    #[error("{context}")]
    Io {
        /// What the tool was doing.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The keyspace changed under an import guarded by `--unchanged-since`.
    #[error("{0}")]
    Conflict(String),
    /// The file looks written with other `-k`/`-v` flags than the import was given (a
    /// `-v utf8` export read with `-v json`, a `-k binary` one read with `-k utf8`...);
    /// nothing was written. The message names the flag probably meant; `--force` imports
    /// anyway.
    #[error("{0}")]
    Mismatch(String),
    /// A transaction failed while others were in flight: the first line says what failed
    /// and what was applied, then one line per transaction that was in flight says what
    /// became of it.
    #[error("{summary}{}", outcome_lines(in_flight))]
    Write {
        /// What failed, what was applied in all, and how to finish.
        summary: String,
        /// Every transaction that was in flight, in the order they were sent.
        in_flight: Vec<TxnOutcome>,
        /// The error of the transaction that failed.
        #[source]
        source: Box<etcd_kv::Error>,
    },
    /// The import was interrupted (Ctrl-C, exit code 130): what was applied, what became
    /// of the transactions in flight (each was waited for), and how to finish.
    #[error("{summary}{}", outcome_lines(in_flight))]
    Interrupted {
        /// What was applied in all, and how to finish.
        summary: String,
        /// The transactions that were in flight when the interruption came.
        in_flight: Vec<TxnOutcome>,
    },
}

/// What became of one transaction of an import that was in flight when the import
/// stopped (see [`Error::Write`] and [`Error::Interrupted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TxnOutcome {
    /// The transaction's number in the import, from 1, in the order they were sent.
    pub number: u64,
    /// How many operations (puts and deletes) it held.
    pub operations: usize,
    /// Its first key, as [`crate::record::display_key`] shows it.
    pub first_key: String,
    /// Its last key, likewise.
    pub last_key: String,
    /// What became of it.
    pub state: TxnState,
}

/// Whether a transaction was applied (each is atomic: wholly or not at all).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnState {
    /// Applied whole: the store's revision after it.
    Applied {
        /// The revision it created.
        revision: i64,
    },
    /// Not applied (refused by the server or the client, or its compares failed).
    NotApplied {
        /// Why, on one line.
        reason: String,
    },
    /// The request may have reached the server, whose answer was lost: applied whole or
    /// not at all, unknown which ([`etcd_kv::Error::is_outcome_unknown`]).
    Unknown {
        /// Why, on one line.
        reason: String,
    },
}

impl std::fmt::Display for TxnOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.operations == 1 { "" } else { "s" };
        write!(
            f,
            "transaction {} ({} operation{s}, ",
            self.number, self.operations
        )?;
        if self.first_key == self.last_key {
            write!(f, "key {}): ", self.first_key)?;
        } else {
            write!(f, "keys {} to {}): ", self.first_key, self.last_key)?;
        }
        match &self.state {
            TxnState::Applied { revision } => write!(f, "applied at revision {revision}"),
            TxnState::NotApplied { reason } => write!(f, "not applied: {reason}"),
            TxnState::Unknown { reason } => {
                write!(f, "outcome unknown (applied whole or not at all): {reason}")
            }
        }
    }
}

fn outcome_lines(in_flight: &[TxnOutcome]) -> String {
    in_flight.iter().map(|t| format!("\n  {t}")).collect()
}

impl Error {
    /// The process exit code for this error: 2 for usage errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Interrupted { .. } => 130,
            _ => 1,
        }
    }

    /// The error and its causes, joined by `": "` (causes that repeat the text before them
    /// are left out). [`Error::Write`] and [`Error::Interrupted`] are the exceptions: their
    /// first line already holds the cause, and one more line follows per transaction that
    /// was in flight.
    pub fn one_line(&self) -> String {
        if matches!(self, Error::Write { .. } | Error::Interrupted { .. }) {
            return self.to_string();
        }
        chain_line(self)
    }

    pub(crate) fn etcd(context: impl Into<String>, source: etcd_kv::Error) -> Error {
        Error::Etcd {
            context: context.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn input(file: &str, line: u64, reason: impl Into<String>) -> Error {
        Error::Input {
            file: file.to_string(),
            line,
            reason: reason.into(),
        }
    }
}

/// `error` and its causes, joined by `": "` (causes that repeat the text before them are
/// left out).
pub(crate) fn chain_line(error: &dyn StdError) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// The tools' result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_transactions_get_a_line_each() {
        let txn = |number, state| TxnOutcome {
            number,
            operations: 2,
            first_key: "\"a\"".into(),
            last_key: "\"b\"".into(),
            state,
        };
        let e = Error::Write {
            summary: "transaction 3 failed: boom; 2 transactions were applied".into(),
            in_flight: vec![
                txn(
                    3,
                    TxnState::NotApplied {
                        reason: "boom".into(),
                    },
                ),
                txn(4, TxnState::Applied { revision: 9 }),
                txn(
                    5,
                    TxnState::Unknown {
                        reason: "timed out".into(),
                    },
                ),
            ],
            source: Box::new(etcd_kv::Error::Protocol("boom".into())),
        };
        assert_eq!(
            e.one_line(),
            "transaction 3 failed: boom; 2 transactions were applied\n  \
             transaction 3 (2 operations, keys \"a\" to \"b\"): not applied: boom\n  \
             transaction 4 (2 operations, keys \"a\" to \"b\"): applied at revision 9\n  \
             transaction 5 (2 operations, keys \"a\" to \"b\"): outcome unknown (applied \
             whole or not at all): timed out"
        );
        assert!(e.source().is_some());
        let e = Error::Interrupted {
            summary: "interrupted".into(),
            in_flight: vec![],
        };
        assert_eq!((e.exit_code(), e.one_line().as_str()), (130, "interrupted"));
    }

    #[test]
    fn one_line_joins_causes() {
        let e = Error::io(
            "cannot open dump.json",
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        );
        assert_eq!(e.one_line(), "cannot open dump.json: no such file");
        assert_eq!(e.exit_code(), 1);
        assert_eq!(Error::Usage("bad".into()).exit_code(), 2);
        let e = Error::input("a.csv", 3, "expected 2 fields");
        assert_eq!(e.one_line(), "a.csv:3: expected 2 fields");
    }
}
