//! The GPU dashboards (InfluxQL) against InfluxDB: every query of every dashboard, as
//! Grafana would send it in each scenario, and the panels that show the injected faults.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use e2e_tests::grafana::{
    DATASOURCE_UID, Dashboard, DashboardQuery, QueryKind, VarValue, Vars, format_interval,
    substitute,
};
use serde_json::Value;

use super::influx::{check_answer, first_result_rows, query, tag_values};
use super::ingest::Ingested;
use super::simulated::XID_CODE;
use super::{GPU, HOST, clip};

fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("valid time")
        .timestamp_millis()
}

/// One way a user looks at the data: a time range, Grafana's interval for it, and
/// whether variables with an "All" option are set to All or to the ingested GPU.
pub(super) struct Scenario {
    name: &'static str,
    from_ms: i64,
    to_ms: i64,
    interval: Duration,
    use_all: bool,
}

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "2 h around the log, 10s buckets, the ingested host/GPU selected",
            from_ms: ms(2026, 8, 6, 18, 0, 0),
            to_ms: ms(2026, 8, 6, 20, 0, 0),
            interval: Duration::from_secs(10),
            use_all: false,
        },
        Scenario {
            name: "exactly the log's 20 minutes, 1s buckets, All where offered",
            from_ms: ms(2026, 8, 6, 18, 54, 53),
            to_ms: ms(2026, 8, 6, 19, 14, 37),
            interval: Duration::from_secs(1),
            use_all: true,
        },
        Scenario {
            name: "6 h ending after the log (the default range), 30s buckets",
            from_ms: ms(2026, 8, 6, 14, 0, 0),
            to_ms: ms(2026, 8, 6, 20, 0, 0),
            interval: Duration::from_secs(30),
            use_all: false,
        },
    ]
}

/// Runs the dashboard's variable queries in order and picks values as a user would: the
/// ingested host and GPU, or All where offered and `use_all` is set; other variables
/// (rule, severity) get All, or every value their query returns.
async fn resolve_variables(
    client: &reqwest::Client,
    url: &str,
    db: &str,
    dashboard: &Dashboard,
    s: &Scenario,
    failures: &mut Vec<String>,
) -> Vars {
    let mut vars = Vars::new();
    for v in dashboard.variables() {
        let q = substitute(&v.query, &vars, s.from_ms, s.to_ms, s.interval);
        let (status, body) = query(client, url, db, &q).await;
        let values = tag_values(&body);
        if let Err(e) = check_answer(status, &body) {
            failures.push(format!(
                "[{}] dashboard \"{}\", variable \"{}\": {q}\n    {e}",
                s.name, dashboard.title, v.name
            ));
        }
        let ours = match v.name.as_str() {
            "host" => Some(HOST),
            "gpu" => Some(GPU),
            _ => None,
        };
        if let Some(ours) = ours
            && !values.iter().any(|x| x == ours)
        {
            failures.push(format!(
                "[{}] dashboard \"{}\", variable \"{}\" does not offer {ours:?}: {values:?}\n    {q}",
                s.name, dashboard.title, v.name
            ));
        }
        let value = match (ours, v.include_all && s.use_all, &v.all_value) {
            (_, true, Some(all)) => VarValue::All(all.clone()),
            (Some(ours), _, _) => VarValue::one(ours),
            (None, _, _) => VarValue::Values(values),
        };
        vars.insert(v.name.clone(), value);
    }
    vars
}

/// Runs every InfluxQL query of the GPU dashboards for every scenario; returns the
/// executions per dashboard and kind, and the number of distinct queries.
pub(super) async fn check_influx_dashboards(
    client: &reqwest::Client,
    influx: &str,
    db: &str,
    dashboards: &[&Dashboard],
    failures: &mut Vec<String>,
) -> (BTreeMap<(String, QueryKind), usize>, usize) {
    let mut checked: BTreeMap<(String, QueryKind), usize> = BTreeMap::new();
    let mut distinct = 0;
    for s in scenarios() {
        for d in dashboards {
            let vars = resolve_variables(client, influx, db, d, &s, failures).await;
            let queries: Vec<DashboardQuery> = d.queries();
            if s.use_all {
                distinct += queries.len();
            }
            for q in queries {
                // The checker resolved `${datasource}` to the variable's default: the
                // provisioned InfluxDB, which this test plays.
                assert_eq!(q.datasource_uid.as_deref(), Some(DATASOURCE_UID), "{q}");
                // Variables were run (and checked) while resolving them.
                if q.kind != QueryKind::Variable {
                    let interval = q.min_interval.map_or(s.interval, |m| m.max(s.interval));
                    let sent = substitute(&q.query, &vars, s.from_ms, s.to_ms, interval);
                    let (status, body) = query(client, influx, db, &sent).await;
                    if let Err(e) = check_answer(status, &body) {
                        failures.push(format!(
                            "[{}] {q}\n    sent ({}): {sent}\n    {}",
                            s.name,
                            format_interval(interval),
                            clip(&e)
                        ));
                    }
                }
                *checked.entry((d.file.clone(), q.kind)).or_default() += 1;
            }
        }
    }
    (checked, distinct)
}

/// (time in epoch ms, first column) of the rows of a `/query` answer (`epoch=ms`).
fn xid_rows(body: &str) -> Vec<(i64, i64)> {
    first_result_rows(body)
        .iter()
        .filter_map(|row| Some((row.get(0)?.as_i64()?, row.get(1)?.as_i64()?)))
        .collect()
}

/// The panels that exist for the NVML health metrics show the injected faults: the XID
/// table lists the XID at the labelled tick, and the ECC panel counts new errors inside
/// the labelled burst.
pub(super) async fn check_injected_faults(
    client: &reqwest::Client,
    influx: &str,
    db: &str,
    detail: &Dashboard,
    ingested: &Ingested,
) {
    let vars: Vars = [
        ("host".to_string(), VarValue::one(HOST)),
        ("gpu".to_string(), VarValue::one(GPU)),
    ]
    .into_iter()
    .collect();
    let s = &scenarios()[0];
    // The panel's query, run with the ingested host and GPU over the first scenario.
    let run_panel = async |title: &str| {
        let panel = detail
            .queries()
            .into_iter()
            .find(|q| q.panel == title)
            .unwrap_or_else(|| panic!("gpu-detail has no panel \"{title}\""));
        let sent = substitute(&panel.query, &vars, s.from_ms, s.to_ms, s.interval);
        query(client, influx, db, &sent).await
    };
    let (status, body) = run_panel("XID events").await;
    assert_eq!(status, 200, "{body}");
    let at = ingested.xid.start.timestamp_millis();
    assert!(
        xid_rows(&body).contains(&(at, i64::from(XID_CODE))),
        "XID events does not list XID {XID_CODE} injected at {}: {body}",
        ingested.xid.start
    );
    let (_, body) = run_panel("ECC errors per interval").await;
    let in_burst = |t: i64| {
        let t: DateTime<Utc> = Utc.timestamp_millis_opt(t).single().unwrap_or_default();
        // A 10 s bucket holding any tick of the burst.
        t + chrono::Duration::seconds(10) > ingested.ecc.start && t < ingested.ecc.end
    };
    let new_errors: f64 = first_result_rows(&body)
        .iter()
        .filter(|row| row.get(0).and_then(Value::as_i64).is_some_and(in_burst))
        .filter_map(|row| row.get(1).and_then(Value::as_f64))
        .sum();
    assert!(
        new_errors > 0.0,
        "ECC errors per interval shows no corrected errors in the burst {:?}: {body}",
        ingested.ecc
    );
}
