//! Integration tests against a real Kafka broker (Tansu) and InfluxDB 1.x.
//!
//! Skipped unless `GPUSTREAM_IT=1`. Then they need `GPUSTREAM_TEST_BROKERS`,
//! `GPUSTREAM_TEST_INFLUX_URL` and (for the v2 write API) `GPUSTREAM_TEST_VM_URL`:
//!
//! ```sh
//! scripts/services.sh start kafka influxdb victoria-metrics
//! source .tools/run/services.env
//! cargo test --workspace --test influx_it
//! ```
//!
//! Every wait is bounded, so a hang fails the test instead of the CI job.
//!
//! One test binary; the scenarios are its modules, on the shared fixtures of `data`,
//! `kafka`, `influx` and `sink`.

mod data;
mod influx;
mod kafka;
mod sink;

mod dead_letter;
mod outage;
mod pipeline;
mod v2_write;

use std::future::Future;
use std::time::Duration;

use gpustream_test_kit::{unique, unique_ident};

use influx::{Influx, new_database};
use kafka::create_topics;

/// Where the services are.
struct Env {
    brokers: String,
    influx_url: String,
}

/// The services, or `None` (the test is skipped) unless `GPUSTREAM_IT=1`.
fn it_env() -> Option<Env> {
    gpustream_runtime::service::init_logging();
    let svc = gpustream_test_kit::services("influx_it")?;
    Some(Env {
        influx_url: svc.influx_url().to_string(),
        brokers: svc.brokers,
    })
}

/// Bounded wait for a future.
async fn bounded<T>(what: &str, secs: u64, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs} s: {what}"),
    }
}

/// What one test against InfluxDB 1.x owns besides its topics: a consumer group and a
/// database.
struct Case {
    group: String,
    db: String,
    influx: Influx,
}

/// Creates `topics` and a database of the test's own; the group and the database are
/// named after `name` (`it-down`: `it-down-group-…`, `it_down_db_…`).
async fn case(env: &Env, name: &str, topics: &[(&str, i32)]) -> Case {
    let group = unique(&format!("{name}-group"));
    let db = unique_ident(&format!("{}_db", name.replace('-', "_")));
    create_topics(env, topics).await;
    let influx = new_database(env, &db).await;
    Case { group, db, influx }
}
