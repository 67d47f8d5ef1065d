//! The Grafana dashboards against real data.
//!
//! **GPU dashboards (InfluxQL).** A real GPU-Z log (the hot benchmark, which crosses 85 °C
//! so `gpu_temp_high` fires and resolves) goes producer → Kafka → stream-processor
//! (anomalies and 1-minute rollups) → consumer-influx → InfluxDB, all in this process.
//! GPU-Z logs have no ECC, XID, PCIe, P-state or energy readings (only NVML has them), so
//! the panels that show those would have nothing to return: the same Kafka topic also
//! carries NVML-style samples from the fleet simulator's GPU model
//! (`gpustream_sim::fleet::model`: ECC counters, XID codes, PCIe throughput, P-state, the
//! energy counter, NVML throttle bits) for the same host and GPU and the same 20 minutes,
//! with two of its labelled faults, an ECC burst and an XID, scripted inside that window;
//! they go through the same stream-processor and consumer-influx. Then every query of every
//! dashboard — panel targets, template variables, annotations, the datasource resolved
//! through the `datasource` variable — is substituted the way Grafana does it (variables
//! set to the ingested host and GPU, a time range around the data, an interval) and sent
//! to InfluxDB's `/query`. Each must answer 200, without an error, with at least one
//! non-empty value; the XID and ECC panels must show the injected faults.
//!
//! **Pipeline dashboard (PromQL).** While they run, the two services' real `/metrics`
//! endpoints (the ops server the binaries start, on their registries) are scraped every
//! two seconds and pushed to VictoriaMetrics (`/api/v1/import/prometheus`) with a job
//! label unique to this run, as Prometheus would scrape them. Then the dashboard's
//! `label_values` variables are resolved against VictoriaMetrics and every PromQL target
//! is evaluated (`/api/v1/query`, PromQL-compatible) at the last scrape: each must return
//! at least one series with a finite value, and only series of this run's jobs.
//!
//! `ingest` runs the pipeline (with the `simulated` samples, `scrape` playing
//! Prometheus); `gpu_dashboards` checks the InfluxQL dashboards through `influx`, and
//! `promql` the pipeline dashboard.

mod gpu_dashboards;
mod influx;
mod ingest;
mod promql;
mod scrape;
mod simulated;

use std::collections::BTreeSet;

use e2e_tests::grafana::{Dashboard, QueryLanguage, dashboards_dir, load_dashboards};
use gpustream_test_kit::{services, unique};

use gpu_dashboards::{check_influx_dashboards, check_injected_faults, scenarios};
use influx::manage;
use ingest::ingest;
use promql::check_pipeline_dashboard;

/// The hot benchmark log: 2026-08-06 18:54:53 – 19:14:36 (UTC wall clock), peaks at 91.5 °C.
const LOG: &str = "nvidia-1377mhz-2x8pin_T2xic-GPU-Z-grapher_bm1.txt";
/// Host and GPU ids with regex metacharacters and a blank: the dashboards' `=~ /^$host$/`
/// filters only match them when the values are escaped as Grafana escapes them.
const HOST: &str = "rig-01.lab";
const GPU: &str = "RTX 2080 (bm1)";

/// The log's first sample and its length: the simulated NVML samples cover the same span.
const LOG_START: (i32, u32, u32, u32, u32, u32) = (2026, 8, 6, 18, 54, 53);
const LOG_SECONDS: u64 = 1183;

/// The two services whose `/metrics` the pipeline dashboard shows, one scrape job each.
const COMPONENTS: [&str; 2] = ["stream-processor", "consumer-influx"];

/// A failure's detail, cut to a readable length (answers can hold whole series).
fn clip(detail: &str) -> String {
    detail.chars().take(600).collect()
}

#[test]
fn every_dashboard_query_returns_data_from_the_real_pipeline() {
    let Some(svc) = services("every_dashboard_query_returns_data_from_the_real_pipeline") else {
        return;
    };
    let influx = svc.influx_url().to_string();
    let vm = svc.vm_url().to_string();
    let dashboards = load_dashboards(&dashboards_dir()).expect("dashboards");
    assert_eq!(dashboards.len(), 5, "five dashboards in grafana/dashboards");
    let by_language = |l: QueryLanguage| -> Vec<&Dashboard> {
        dashboards
            .iter()
            .filter(|d| d.queries().iter().all(|q| q.language == l))
            .collect()
    };
    let influx_dashboards = by_language(QueryLanguage::InfluxQl);
    let prom_dashboards = by_language(QueryLanguage::PromQl);
    assert_eq!(
        influx_dashboards.len() + prom_dashboards.len(),
        dashboards.len(),
        "every dashboard queries InfluxDB or Prometheus only"
    );
    assert_eq!(prom_dashboards.len(), 1, "the pipeline dashboard");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let db = unique("dashboards").replace('-', "_");
        let created = manage(&client, &influx, &format!("CREATE DATABASE {db}"))
            .await
            .expect("create database");
        assert!(
            created.status().is_success(),
            "CREATE DATABASE: {created:?}"
        );
        // A regex metacharacter in the job names: the dashboard's `job=~"$job"` matches
        // them only when the values are escaped as Grafana escapes them.
        let job_prefix = unique("dash.pipeline");
        let ingested = ingest(&svc.brokers, &influx, &db, &vm, &job_prefix).await;
        eprintln!(
            "ingested {} samples ({} simulated NVML), {} anomaly transitions, {} rollups into {db}; \
             {} scrapes pushed to VictoriaMetrics over {} ms",
            ingested.rows,
            ingested.simulated,
            ingested.stats.anomalies,
            ingested.stats.rollups,
            ingested.scrapes.pushes,
            ingested.scrapes.last_ms - ingested.scrapes.first_ms
        );

        let mut failures = Vec::new();
        let (checked, distinct) =
            check_influx_dashboards(&client, &influx, &db, &influx_dashboards, &mut failures)
                .await;
        let detail = dashboards
            .iter()
            .find(|d| d.file == "gpu-detail.json")
            .expect("gpu-detail.json");
        check_injected_faults(&client, &influx, &db, detail, &ingested).await;

        let jobs: BTreeSet<String> = COMPONENTS
            .iter()
            .map(|c| format!("{job_prefix}-{c}"))
            .collect();
        let mut prom_executions = 0;
        for d in &prom_dashboards {
            prom_executions +=
                check_pipeline_dashboard(&client, &vm, d, &jobs, &ingested.scrapes, &mut failures)
                    .await;
        }

        let total: usize = checked.values().sum();
        for ((file, kind), n) in &checked {
            eprintln!("{file}: {n} {kind} queries checked");
        }
        eprintln!(
            "{distinct} InfluxQL dashboard queries, {total} executions over {} scenarios; \
             {prom_executions} PromQL executions",
            scenarios().len()
        );
        assert!(
            failures.is_empty(),
            "{} dashboard queries failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
        // Kept for inspection when something failed; dropped otherwise.
        let _ = manage(&client, &influx, &format!("DROP DATABASE {db}")).await;
    });
}
