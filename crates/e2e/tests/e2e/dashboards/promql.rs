//! The pipeline dashboard (PromQL) against VictoriaMetrics: its `label_values` variables
//! resolved, every target evaluated at the last scrape.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use e2e_tests::grafana::{
    Dashboard, LabelValues, PROMETHEUS_DATASOURCE_UID, PromTime, QueryKind, VarValue, Vars,
    substitute_promql,
};
use serde_json::Value;

use super::scrape::ScrapeLog;
use super::{COMPONENTS, clip};

/// GET a Prometheus-API endpoint of VictoriaMetrics; the `data` of a `success` answer.
async fn vm_get(
    client: &reqwest::Client,
    vm: &str,
    path: &str,
    params: &[(&str, String)],
) -> Result<Value, String> {
    let r = client
        .get(format!("{vm}{path}"))
        .query(params)
        .send()
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    let v: Value = serde_json::from_str(&body)
        .map_err(|e| format!("HTTP {status}, not JSON ({e}): {body}"))?;
    if v["status"] != "success" {
        return Err(format!("HTTP {status}: {body}"));
    }
    Ok(v["data"].clone())
}

/// Checks an instant query's `data`: at least one series with a finite value, each from one
/// of `jobs` when it carries a job label. Returns the number of series.
fn check_promql_answer(data: &Value, jobs: &BTreeSet<String>) -> Result<usize, String> {
    let finite = |v: &Value| {
        v.get(1)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    };
    let series: Vec<&Value> = match data["resultType"].as_str() {
        Some("vector") => data["result"].as_array().into_iter().flatten().collect(),
        Some("scalar") => vec![data],
        other => return Err(format!("result type {other:?}: {data}")),
    };
    let mut n = 0;
    for s in series {
        if let Some(job) = s.pointer("/metric/job").and_then(Value::as_str)
            && !jobs.contains(job)
        {
            return Err(format!("a series of another job ({job}): {s}"));
        }
        let value = if data["resultType"] == "scalar" {
            &s["result"]
        } else {
            &s["value"]
        };
        if finite(value) {
            n += 1;
        }
    }
    if n == 0 {
        return Err(format!("no series with a finite value: {data}"));
    }
    Ok(n)
}

/// Resolves the pipeline dashboard's `label_values` variables against VictoriaMetrics:
/// `job` must offer this run's jobs and is set to them; the others must offer what the
/// services expose and get All (`use_all`) or every offered value.
async fn resolve_prometheus_variables(
    client: &reqwest::Client,
    vm: &str,
    dashboard: &Dashboard,
    t: PromTime,
    jobs: &BTreeSet<String>,
    use_all: bool,
) -> Result<Vars, String> {
    let mut vars = Vars::new();
    let range = [
        ("start", (t.from_ms / 1000).to_string()),
        ("end", (t.to_ms / 1000 + 1).to_string()),
    ];
    for v in dashboard.variables() {
        let lv = LabelValues::parse(&v.query)
            .ok_or_else(|| format!("variable {}: not label_values(): {}", v.name, v.query))?;
        let mut params = range.to_vec();
        if let Some(sel) = &lv.selector {
            params.push(("match[]", substitute_promql(sel, &vars, t)));
        }
        let data = vm_get(
            client,
            vm,
            &format!("/api/v1/label/{}/values", lv.label),
            &params,
        )
        .await
        .map_err(|e| format!("variable {}: {e}", v.name))?;
        let offered: BTreeSet<String> = data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        let want: BTreeSet<String> = match v.name.as_str() {
            "job" => jobs.clone(),
            "component" => COMPONENTS.into_iter().map(str::to_string).collect(),
            _ => BTreeSet::new(),
        };
        if !want.is_subset(&offered) || offered.is_empty() {
            return Err(format!(
                "variable {} offers {offered:?}, expected at least {want:?} ({params:?})",
                v.name
            ));
        }
        let value = match (v.name.as_str(), use_all, &v.all_value) {
            ("job", _, _) => VarValue::Values(jobs.iter().cloned().collect()),
            (_, true, Some(all)) => VarValue::All(all.clone()),
            _ => VarValue::Values(offered.into_iter().collect()),
        };
        vars.insert(v.name.clone(), value);
    }
    Ok(vars)
}

/// Runs every PromQL target of the pipeline dashboard against VictoriaMetrics at the last
/// scrape, with All and with explicit values; retries for a while, since pushed samples
/// become searchable within seconds, not at once. Returns the executions.
pub(super) async fn check_pipeline_dashboard(
    client: &reqwest::Client,
    vm: &str,
    dashboard: &Dashboard,
    jobs: &BTreeSet<String>,
    scrapes: &ScrapeLog,
    failures: &mut Vec<String>,
) -> usize {
    // The rate window covers every scrape (as $__rate_interval covers at least four
    // scrape intervals); the range starts just before the first.
    let span = Duration::from_millis((scrapes.last_ms - scrapes.first_ms).max(0) as u64);
    let t = PromTime {
        from_ms: scrapes.first_ms - 10_000,
        to_ms: scrapes.last_ms,
        interval: Duration::from_secs(15),
        rate_interval: Duration::from_secs((span.as_secs() + 10).max(60)),
    };
    let time = format!("{:.3}", scrapes.last_ms as f64 / 1000.0);
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let mut round = Vec::new();
        let mut executed = 0;
        for use_all in [true, false] {
            let vars =
                match resolve_prometheus_variables(client, vm, dashboard, t, jobs, use_all).await {
                    Ok(v) => v,
                    Err(e) => {
                        round.push(format!("[use_all={use_all}] {e}"));
                        continue;
                    }
                };
            for q in dashboard.queries() {
                assert_eq!(
                    q.datasource_uid.as_deref(),
                    Some(PROMETHEUS_DATASOURCE_UID),
                    "{q}"
                );
                if q.kind == QueryKind::Variable {
                    continue;
                }
                executed += 1;
                let sent = substitute_promql(&q.query, &vars, t);
                let answer = vm_get(
                    client,
                    vm,
                    "/api/v1/query",
                    &[
                        ("query", sent.clone()),
                        ("time", time.clone()),
                        ("nocache", "1".to_string()),
                    ],
                )
                .await
                .and_then(|data| check_promql_answer(&data, jobs));
                if let Err(e) = answer {
                    round.push(format!(
                        "[use_all={use_all}] {q}\n    sent: {sent}\n    {}",
                        clip(&e)
                    ));
                }
            }
        }
        if round.is_empty() || Instant::now() > deadline {
            failures.extend(round);
            return executed;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
