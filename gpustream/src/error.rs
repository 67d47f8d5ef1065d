//! Errors of the shared crate.

/// Errors raised by the shared model, wire format and lake helpers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A message could not be decoded into a sample or event.
    #[error("decode error: {0}")]
    Decode(String),
    /// A value could not be encoded.
    #[error("encode error: {0}")]
    Encode(String),
    /// An Arrow/Parquet operation failed.
    #[error("arrow/parquet error: {0}")]
    Columnar(String),
    /// An object-store operation failed.
    #[error("object store error: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// A lake URL was not understood.
    #[error("invalid lake URL `{url}`: {reason}")]
    LakeUrl {
        /// The URL as given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A configuration file was unreadable or invalid.
    #[error("config file {path}: {reason}")]
    Config {
        /// File path.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A Kafka client operation failed.
    #[error("kafka error: {0}")]
    Kafka(String),
    /// I/O failure.
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Columnar(e.to_string())
    }
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::Columnar(e.to_string())
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
