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
}

impl Error {
    /// The process exit code for this error: 2 for usage errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }

    /// The error and its causes, joined by `": "` (causes that repeat the text before them
    /// are left out).
    pub fn one_line(&self) -> String {
        let mut line = self.to_string();
        let mut source = self.source();
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

/// The tools' result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

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
