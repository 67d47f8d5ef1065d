//! Batch analytics over the GPU telemetry Parquet lake, with DataFusion.
//!
//! - [`tables`]: registers the lake's tables (`samples`, `anomalies`, `rollups_1m`,
//!   `analytics/<name>`) as Hive-partitioned listing tables with a `date` column;
//! - [`daily`]: the nightly job computing the `daily_gpu` table;
//! - [`sql`]: ad-hoc read-only queries;
//! - [`cli`]: the command line of the `batch-analytics` binary.
//!
//! ```text
//! batch-analytics daily --lake s3://bucket/lake --date 2024-01-02
//! batch-analytics sql --lake ./lake "SELECT host, count(*) FROM samples GROUP BY host"
//! ```

#![warn(missing_docs)]

pub mod cli;
pub mod daily;
pub mod error;
pub mod sql;
pub mod tables;

pub use daily::{DailyOutput, run_daily};
pub use error::{Error, Result};
pub use sql::{QueryOutput, run_sql};
pub use tables::{LakeSession, PartitionDiscovery, RegisterOptions, RegisteredTable};
