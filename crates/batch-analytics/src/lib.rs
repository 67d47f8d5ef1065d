//! Batch analytics over the GPU telemetry lake (Delta Lake tables), with DataFusion.
//!
//! This crate owns the nightly analyses of the lake (statistics, energy, time shares,
//! hourly patterns, spikes, correlations, anomaly summary, GPU comparison, and the
//! fleet tables: waste, energy by owner, throttling, health, cohorts), the tables and
//! the HTML report they produce, and ad-hoc SQL over the lake. It reads what the
//! stream processor wrote (and an optional allocation labels file) and writes only
//! under `analytics/`.
//!
//! - [`model`]: what an analysed day is ([`model::DayResult`]): finished figures keyed
//!   by [`model::AnalysisMetric`], no storage, no accumulator state;
//! - [`analyze`]: the streaming accumulators that produce the model;
//! - [`nightly`]: the nightly job: reads a day (`scan`), computes the model
//!   (`compute`), builds every analytics table (`daily_gpu`, `daily_fleet`, `hourly`,
//!   `spikes`, `correlations`, `anomaly_summary`, `gpu_comparison`, `waste`,
//!   `energy_by_owner`, `throttling`, `health`, `cohorts`) and replaces the day in
//!   each Delta table `analytics/<name>` with one commit (`publish`);
//! - [`allocations`]: the allocation labels file (who held which GPU when);
//! - [`report`]: the self-contained HTML report, rendered only when asked for;
//! - [`tables`]: registers the lake's Delta tables (`samples`, `anomalies`,
//!   `rollups_1m`, `analytics/<name>`) with DataFusion, partition columns from their
//!   metadata;
//! - [`maintain`]: upkeep of the tables (compaction of closed days, checkpoints,
//!   vacuum);
//! - [`daily`]: `daily_gpu` and the `run_daily` entry point;
//! - [`sql`]: ad-hoc read-only queries;
//! - [`cli`]: the command line and configuration of the `batch-analytics` binary.
//!
//! Dependencies point one way: `model` depends on no other module of the crate;
//! `analyze` and `report` depend on `model` only (never on `nightly` or on storage);
//! lake I/O of the nightly job stays in `nightly::scan` and `nightly::publish`; upkeep
//! and conversion use the lake crate's Delta operations. The
//! crate depends on the shared crates below it (`gpustream`, `gpustream-lake`, ...),
//! never on another service (stream processor, consumers).
//!
//! ```text
//! batch-analytics daily --lake s3://bucket/lake --date 2024-01-02
//! batch-analytics sql --lake ./lake "SELECT host, count(*) FROM samples GROUP BY host"
//! batch-analytics maintain --lake s3://bucket/lake
//! batch-analytics convert --lake ./old-lake
//! ```

#![warn(missing_docs)]

pub mod allocations;
pub mod analyze;
pub mod cli;
pub mod daily;
pub mod error;
pub mod maintain;
pub mod model;
pub mod nightly;
pub mod report;
pub mod sql;
pub mod tables;

pub use daily::{DailyOutput, run_daily};
pub use error::{Error, Result};
pub use nightly::{NightlyOptions, NightlyOutput, run_nightly, run_range};
pub use sql::{QueryOutput, run_sql};
pub use tables::{LakeSession, RegisteredTable};
