//! Batch analytics over the GPU telemetry Parquet lake, with DataFusion.
//!
//! - [`tables`]: registers the lake's tables (`samples`, `anomalies`, `rollups_1m`,
//!   `analytics/<name>`) as Hive-partitioned listing tables with a `date` column;
//! - [`nightly`]: the nightly job: reads a day, computes every analytics table
//!   (`daily_gpu`, `daily_fleet`, `hourly`, `spikes`, `correlations`,
//!   `anomaly_summary`, `gpu_comparison`), replaces the day's outputs atomically;
//! - [`analyze`]: the streaming accumulators behind those tables;
//! - [`report`]: the self-contained HTML report of a run;
//! - [`daily`]: `daily_gpu` and the `run_daily` entry point;
//! - [`sql`]: ad-hoc read-only queries;
//! - [`cli`]: the command line of the `batch-analytics` binary.
//!
//! ```text
//! batch-analytics daily --lake s3://bucket/lake --date 2024-01-02
//! batch-analytics sql --lake ./lake "SELECT host, count(*) FROM samples GROUP BY host"
//! ```

#![warn(missing_docs)]

pub mod analyze;
pub mod cli;
pub mod daily;
pub mod error;
pub mod nightly;
pub mod report;
pub mod sql;
pub mod tables;

pub use daily::{DailyOutput, run_daily};
pub use error::{Error, Result};
pub use nightly::{NightlyOptions, NightlyOutput, run_nightly, run_range};
pub use sql::{QueryOutput, run_sql};
pub use tables::{LakeSession, PartitionDiscovery, RegisterOptions, RegisteredTable};
