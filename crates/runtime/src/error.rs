//! Errors of the runtime, by what a user can do about them.

/// Configuration and Kafka client failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file is unreadable or has a bad key or value: `location` is
    /// `file:line` (or the file alone).
    #[error("{location}: {message}")]
    ConfigFile {
        /// `path:line`.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A setting from a flag or the environment is invalid.
    #[error("{name}: {message}")]
    Setting {
        /// The setting (flag, key or environment variable).
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The Kafka brokers cannot be used: unreachable, refused the credentials or the
    /// TLS handshake. The message names the setting to check.
    #[error("kafka: {0}")]
    Connect(String),
    /// A Kafka client operation failed.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What was being done.
        context: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The broker refused to create a topic.
    #[error("kafka: create topic {topic}: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        code: rdkafka::types::RDKafkaErrorCode,
    },
    /// The `/metrics` and `/health` endpoint could not be served.
    #[error("ops endpoint {addr}: {source}")]
    Ops {
        /// The address it was to listen on.
        addr: String,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// Metrics could not be registered.
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
