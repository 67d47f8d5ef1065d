//! Errors of reading a log. Problems in a log's content are not errors but
//! [`crate::Issue`]s, reported with file, line and field while the rest is read.

/// What stopped a log from being read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the log failed.
    #[error("{file}: read failed after line {line}: {source}")]
    Read {
        /// The log, as named by the caller.
        file: String,
        /// The last line read before the failure (0: none).
        line: usize,
        /// What failed.
        source: std::io::Error,
    },
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
