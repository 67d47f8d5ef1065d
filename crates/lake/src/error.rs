//! Errors of the lake.

/// What can go wrong reading, encoding or publishing lake files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An Arrow operation failed (building or converting columns).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A Parquet file could not be encoded or decoded.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Data that cannot become a lake row (e.g. nothing to encode).
    #[error("invalid data: {0}")]
    Invalid(String),
    /// The object store refused or failed an operation (S3, HDFS, local files).
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// A lake URL was not understood.
    #[error("invalid lake URL `{url}`: {reason}")]
    LakeUrl {
        /// The URL as given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A local file operation failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A Delta Lake operation on a table failed (reading its log, writing, committing).
    #[error("delta table `{table}`: {source}")]
    Delta {
        /// The table.
        table: String,
        /// What delta-rs reported.
        #[source]
        source: Box<deltalake_core::DeltaTableError>,
    },
    /// Another writer committed progress of the same Kafka partition since this writer
    /// read it: read the progress again and drop what is already in.
    #[error("delta table `{table}`: another writer committed the same Kafka partition")]
    ConcurrentProgress {
        /// The table.
        table: String,
    },
}

impl Error {
    /// Wraps a delta-rs error with the table it concerns.
    pub fn delta(table: &str, source: deltalake_core::DeltaTableError) -> Error {
        Error::Delta {
            table: table.to_string(),
            source: Box::new(source),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
