//! The checkers: each reads a [`History`] and reports [`Anomaly`]s.

use crate::history::History;

/// Something a history shows that etcd or the client promised would not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// What kind.
    pub message: String,
}

impl std::fmt::Display for Anomaly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Runs every checker on `history`.
pub fn check(history: &History) -> Vec<Anomaly> {
    let _ = history;
    Vec::new()
}
