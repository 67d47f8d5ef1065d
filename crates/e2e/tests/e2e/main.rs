//! The end-to-end suite: one test binary, so that the test harness runs these tests two
//! at a time (`RUST_TEST_THREADS=2` in CI) across what used to be fifteen binaries run one
//! after another, and the workspace links one executable instead of fifteen. Most of the
//! time here is spent waiting on services and child processes, not computing.
//!
//! Run one group with a filter: `cargo test -p e2e-tests --test e2e broker_restart`.

mod support;

mod anomaly_alerts;
mod broker_restart;
mod compose_consistency;
mod consumer_group;
mod crash_recovery;
mod dashboards;
mod fleet_pipeline;
mod full_disk;
mod influx_credentials;
mod influx_outage;
mod layers;
mod processor_ops;
mod real_logs_pipeline;
mod s3_denied;
mod secure_kafka;
