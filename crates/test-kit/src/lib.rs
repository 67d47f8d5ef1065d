//! Test support, defined once for every crate's tests.
//!
//! - [`bins`]: the workspace's binaries as `cargo test --workspace` built them;
//! - [`gate`]: integration tests run against real services only when `GPUSTREAM_IT=1`
//!   (set by `scripts/services.sh start` in `.tools/run/services.env`), and say so when
//!   skipped;
//! - [`names`]: unique topic, group, database and bucket names; free ports;
//! - [`kafka`]: topic creation, reading a topic from the beginning, committed offsets, a
//!   sender that waits for every acknowledgement;
//! - [`samples`]: a builder of [`gpustream::Sample`]s with producer-style event ids;
//! - [`http`]: a blocking `GET` and Prometheus text-exposition readers;
//! - [`influxd`], [`tansu`] and [`alertmanager`]: private servers a test may stop and
//!   start (the broker keeps its data in S3 across restarts);
//! - [`process`]: starting a private server with its log, waiting for it, stopping it;
//! - [`influxdb`]: InfluxQL queries against the test InfluxDB;
//! - [`lake`]: reading a lake's Delta tables back;
//! - [`other_engines`]: the same tables read by delta-rs' Python bindings and polars;
//! - [`s3`]: buckets on the test S3 server;
//! - [`data`]: where the workspace and the shared real GPU-Z logs are.
//!
//! A dev-dependency only: no library or binary of the workspace may depend on it.

#![allow(clippy::unwrap_used)]

pub mod alertmanager;
pub mod bins;
pub mod data;
pub mod gate;
pub mod http;
pub mod influxd;
pub mod influxdb;
pub mod kafka;
pub mod lake;
pub mod names;
pub mod other_engines;
pub mod process;
pub mod s3;
pub mod samples;
pub mod tansu;

pub use gate::{Services, services};
pub use names::{free_port, unique, unique_ident};
pub use samples::SampleBuilder;
