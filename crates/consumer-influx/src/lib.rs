//! InfluxDB sink of the GPU telemetry pipeline.
//!
//! Consumes wire-format samples ([`gpustream::wire`]) and anomaly events
//! ([`gpustream::AnomalyEvent`]) from Kafka, encodes them as line protocol
//! ([`line_protocol`]; the measurements, tags and fields it writes are listed in
//! [`schema`]) and writes them in gzip-compressed batches to InfluxDB's v1 `/write` or v2
//! `/api/v2/write` API ([`influx`]). It runs on the shared consumer
//! runtime (`gpustream_runtime::consumer`): offsets are committed only after their batch
//! was written, and points are idempotent, so delivery is effectively exactly once
//! ([`sink`]).
//!
//! ```no_run
//! # async fn demo() -> consumer_influx::Result<()> {
//! use consumer_influx::{InfluxConfig, SinkConfig, SinkMetrics};
//! use tokio_util::sync::CancellationToken;
//!
//! let influx = InfluxConfig::new("http://127.0.0.1:8086", "gpu");
//! let config = SinkConfig::new("127.0.0.1:9092", "consumer-influx", influx);
//! let shutdown = CancellationToken::new();
//! let summary = consumer_influx::run(
//!     config,
//!     SinkMetrics::unregistered()?,
//!     gpustream_runtime::service::Health::default(),
//!     shutdown.clone(),
//! )
//! .await?;
//! println!("{summary:?}");
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod batch;
pub mod cli;
pub mod error;
pub mod influx;
pub mod line_protocol;
pub mod schema;
pub mod sink;
pub mod stats;

pub use cli::Cli;
pub use error::{Error, Result};
pub use influx::{
    Credentials, InfluxConfig, InfluxWriter, RetryPolicy, Token, WriteApi, WriteOutcome,
};
pub use sink::{INFLUX_DLQ_TOPIC, RunSummary, SinkConfig, run};
pub use stats::SinkMetrics;
