//! Stream-processor errors.

/// Errors of the stream processor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Kafka client failure.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Lake / model failure.
    #[error(transparent)]
    Lake(#[from] gpustream::Error),
    /// Invalid configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
