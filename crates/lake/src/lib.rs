//! The GPU telemetry lake: where it lives, how its tables are laid out, the Arrow
//! schemas of those tables, and how files are published.
//!
//! - [`store`]: lake locations (local, `file://`, `s3://`, `hdfs://`) and atomic publishing;
//! - [`layout`]: table names and `date=`/`hour=` partitions;
//! - [`columnar`]: the Arrow schemas of the lake tables and builders from the model;
//! - [`parquet`]: how every lake file is encoded;
//! - [`delta`]: the tables as Delta Lake tables: exactly-once appends from Kafka,
//!   compaction, checkpoints, vacuum, reading through DataFusion, conversion of the
//!   previous layout.
//!
//! Depends only on the model (`gpustream`); it must not know about Kafka, the services
//! or any binary.

pub mod columnar;
pub mod delta;
pub mod error;
pub mod layout;
pub mod parquet;
pub mod store;

pub use error::{Error, Result};
pub use layout::{
    ANALYTICS_PREFIX, ANOMALIES_TABLE, ROLLUPS_TABLE, SAMPLES_TABLE, date_partition,
    event_partition,
};
pub use parquet::{
    encode_parquet, encode_parquet_with, stream_writer_properties, writer_properties,
};
pub use store::{Lake, Published};
