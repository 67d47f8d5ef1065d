//! Producer errors.

/// Errors of the producer library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kafka operation failed.
    #[error("kafka: {0}")]
    Kafka(String),
    /// A sample could not be encoded.
    #[error("encode: {0}")]
    Encode(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A GPU-Z log could not be read (its content's problems are reported as issues,
    /// not errors).
    #[error(transparent)]
    Log(#[from] gpuz::Error),
    /// Invalid options.
    #[error("{0}")]
    Invalid(String),
    /// NVML (the NVIDIA driver's management library) cannot be used on this machine.
    #[error("NVML unavailable: {0}")]
    NoDriver(String),
    /// Configuration, Kafka connection or ops endpoint (the runtime's errors: a bad
    /// configuration file names its line; a Kafka failure names the setting to check).
    #[error(transparent)]
    Runtime(#[from] gpustream_runtime::Error),
    /// The thread doing the work ended without an answer (it panicked).
    #[error("worker thread: {0}")]
    Worker(String),
    /// Messages could not be delivered.
    #[error("{failed} of {total} messages were not delivered (first error: {first_error})")]
    Undelivered {
        /// Failed deliveries.
        failed: u64,
        /// Messages sent.
        total: u64,
        /// The first delivery error.
        first_error: String,
    },
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
