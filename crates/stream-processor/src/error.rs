//! Stream-processor errors, by what a user can do about them.

/// Errors of the stream processor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kafka client failed (brokers unreachable, authentication, a refused commit).
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Kafka topics or client settings (from the shared runtime).
    #[error(transparent)]
    Runtime(#[from] gpustream_runtime::Error),
    /// The lake refused or failed a read or write (permissions, space, network).
    #[error("lake: {0}")]
    Lake(#[from] gpustream_lake::Error),
    /// The rules file is invalid (names the file, the line and the field).
    #[error("rules file {origin}: {reason}")]
    Rules {
        /// The file (or `built-in defaults`).
        origin: String,
        /// What is wrong, with line and field.
        reason: String,
    },
    /// Assembling Arrow columns failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// An event could not be encoded for its topic.
    #[error("encode: {0}")]
    Encode(#[from] serde_json::Error),
    /// A setting is out of range or contradicts another.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Alert routing could not be set up (bad URL, HTTP client).
    #[error("alerting: {0}")]
    Alerting(String),
    /// Metrics could not be registered.
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
