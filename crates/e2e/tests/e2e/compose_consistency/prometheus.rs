//! `docker/prometheus.yml` scrapes every ops endpoint where its service listens.

use std::collections::BTreeMap;

use serde_norway::Value;

use super::PROMETHEUS_CONFIG;
use super::compose::{environment, is_project_service, scalar, services};

/// The port of a service's ops endpoint (`/metrics`, `/health`), from the
/// GPUSTREAM_METRICS_ADDR its environment sets.
fn metrics_port(svc: &Value) -> Option<String> {
    environment(svc)
        .get("GPUSTREAM_METRICS_ADDR")
        .cloned()
        .flatten()
        .and_then(|addr| addr.rsplit_once(':').map(|(_, port)| port.to_string()))
}

/// `host:port` of every static target in a Prometheus configuration.
fn scrape_targets(prometheus: &Value) -> Vec<String> {
    let sequence = |v: Option<&Value>| v.and_then(Value::as_sequence).cloned().unwrap_or_default();
    sequence(prometheus.get("scrape_configs"))
        .iter()
        .flat_map(|job| sequence(job.get("static_configs")))
        .flat_map(|config| sequence(config.get("targets")))
        .filter_map(|target| scalar(&target))
        .collect()
}

/// Prometheus scrapes every service that serves `/metrics` (GPUSTREAM_METRICS_ADDR) on the
/// port it listens on, and every target it scrapes is a service of the file.
pub(super) fn prometheus_problems(compose: &Value, prometheus: &Value) -> Vec<String> {
    let targets = scrape_targets(prometheus);
    let all: BTreeMap<String, &Value> = services(compose).into_iter().collect();
    let mut problems = Vec::new();
    for (name, svc) in &all {
        let Some(port) = metrics_port(svc) else {
            continue;
        };
        let want = format!("{name}:{port}");
        if !targets.contains(&want) {
            problems.push(format!(
                "service `{name}`: serves /metrics on port {port} (GPUSTREAM_METRICS_ADDR) \
                 but {PROMETHEUS_CONFIG} does not scrape `{want}`"
            ));
        }
    }
    for target in &targets {
        let Some((host, port)) = target.rsplit_once(':') else {
            problems.push(format!(
                "{PROMETHEUS_CONFIG}: target `{target}` has no port"
            ));
            continue;
        };
        if host == "localhost" {
            continue;
        }
        match all.get(host) {
            None => problems.push(format!(
                "{PROMETHEUS_CONFIG}: target `{target}` is not a service of docker-compose.yml"
            )),
            Some(svc) if is_project_service(svc) => match metrics_port(svc) {
                Some(listens) if listens == port => {}
                listens => problems.push(format!(
                    "{PROMETHEUS_CONFIG}: target `{target}`, but service `{host}` serves \
                     /metrics on port {}",
                    listens.unwrap_or_else(|| "none (GPUSTREAM_METRICS_ADDR unset)".into())
                )),
            },
            Some(_) => {}
        }
    }
    problems
}
