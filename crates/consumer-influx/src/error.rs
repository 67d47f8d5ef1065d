//! Errors of the InfluxDB sink.

/// Everything that can stop or disturb the sink.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable (bad URL, zero batch size, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A Kafka client operation failed.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Topic creation, secrets or config files (from the shared runtime).
    #[error(transparent)]
    Runtime(#[from] gpustream_runtime::Error),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    /// A batch could not be compressed.
    #[error("gzip: {0}")]
    Compress(#[source] std::io::Error),
    /// A record cannot be expressed in line protocol (e.g. its timestamp is outside the
    /// range of `i64` nanoseconds). Such records are skipped, never retried.
    #[error("cannot encode record: {0}")]
    Encode(String),
    /// A batch could not be written before the write was abandoned (shutdown while
    /// InfluxDB was unavailable). Its offsets were not committed, so the messages will be
    /// consumed again on the next start.
    #[error("batch of {points} points not written: {last_error}")]
    WriteAbandoned {
        /// Points in the abandoned batch.
        points: usize,
        /// The last failure seen from InfluxDB.
        last_error: String,
    },
    /// Prometheus metrics could not be registered.
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
