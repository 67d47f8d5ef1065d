//! The checker against the shipped dashboards and hand-made broken ones.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use super::dashboard::str_field;
use super::*;

fn dashboards() -> Vec<Dashboard> {
    let d = load_dashboards(&dashboards_dir()).expect("dashboards load");
    assert!(
        !d.is_empty(),
        "no dashboards in {}",
        dashboards_dir().display()
    );
    d
}

/// The language every query of a dashboard is written in.
fn language_of(db: &Dashboard) -> QueryLanguage {
    if db.file == "pipeline.json" {
        QueryLanguage::PromQl
    } else {
        QueryLanguage::InfluxQl
    }
}

#[test]
fn the_five_dashboards_exist_with_unique_uids_and_titles() {
    let d = dashboards();
    let files: Vec<&str> = d.iter().map(|d| d.file.as_str()).collect();
    for f in [
        "anomalies.json",
        "fleet-overview.json",
        "gpu-detail.json",
        "pipeline.json",
        "trends.json",
    ] {
        assert!(files.contains(&f), "{f} missing: {files:?}");
    }
    let uids: BTreeSet<&str> = d.iter().map(|d| d.uid.as_str()).collect();
    let titles: BTreeSet<&str> = d.iter().map(|d| d.title.as_str()).collect();
    assert_eq!(uids.len(), d.len(), "uids must be unique");
    assert_eq!(titles.len(), d.len(), "titles must be unique");
    for db in &d {
        let j = &db.json;
        assert!(
            j["schemaVersion"]
                .as_u64()
                .is_some_and(|v| (36..=41).contains(&v)),
            "{}: schemaVersion",
            db.file
        );
        // The 1-minute rollups are for weeks; a refresh re-reads the whole range, so
        // the long range refreshes rarely. The pipeline's metrics are scraped every
        // 10-15 s.
        let (from, refresh) = match db.file.as_str() {
            "trends.json" => ("now-7d", "15m"),
            "pipeline.json" => ("now-1h", "30s"),
            _ => ("now-6h", "10s"),
        };
        assert_eq!(j["time"]["from"], from, "{}", db.file);
        assert_eq!(j["time"]["to"], "now", "{}", db.file);
        assert_eq!(j["refresh"], refresh, "{}", db.file);
        let range = parse_interval(from.trim_start_matches("now-")).expect("range");
        let every = parse_interval(refresh).expect("refresh");
        assert!(
            range < Duration::from_secs(86_400) || every >= Duration::from_secs(300),
            "{}: a {from} range refreshed every {refresh} re-reads days of data for minutes of news",
            db.file
        );
        for offered in j["timepicker"]["refresh_intervals"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let offered = parse_interval(offered).expect("refresh interval");
            assert!(
                range < Duration::from_secs(86_400) || offered >= Duration::from_secs(300),
                "{}: offers a {offered:?} refresh over {from}",
                db.file
            );
        }
        assert!(
            db.uid.len() <= 40,
            "{}: uid longer than Grafana allows",
            db.file
        );
    }
}

#[test]
fn every_dashboard_picks_its_datasource_with_a_variable() {
    for db in dashboards() {
        let vars = db.datasource_variables();
        assert_eq!(vars.len(), 1, "{}: one datasource variable", db.file);
        let v = &vars[0];
        let plugin = match language_of(&db) {
            QueryLanguage::PromQl => "prometheus",
            _ => "influxdb",
        };
        assert_eq!(v.name, "datasource", "{}", db.file);
        assert_eq!(v.plugin, plugin, "{}", db.file);
        assert_eq!(
            v.default_uid.as_deref(),
            provisioned_uid(language_of(&db)),
            "{}: the default is the provisioned datasource",
            db.file
        );
        assert!(!v.multi && !v.include_all, "{}: one datasource", db.file);
        // First, so every other variable's query can use it.
        assert_eq!(
            db.json.pointer("/templating/list/0/type"),
            Some(&Value::from("datasource")),
            "{}",
            db.file
        );
        // The provisioned uid appears only as that default.
        let text = serde_json::to_string(&db.json).expect("json");
        let uid = provisioned_uid(language_of(&db)).unwrap_or_default();
        assert_eq!(
            text.matches(&format!("\"{uid}\"")).count(),
            1,
            "{}: `{uid}` hard-coded outside the datasource variable",
            db.file
        );
    }
}

#[test]
fn panels_are_laid_out_and_use_the_datasource_variable() {
    for db in dashboards() {
        let mut ids = BTreeSet::new();
        let want = provisioned_uid(language_of(&db));
        for p in db.panels() {
            let title = str_field(p, "title");
            let id = p["id"].as_u64().expect("panel id");
            assert!(ids.insert(id), "{}: duplicate panel id {id}", db.file);
            let g = &p["gridPos"];
            let (x, w, h) = (
                g["x"].as_u64().unwrap_or(99),
                g["w"].as_u64().unwrap_or(0),
                g["h"].as_u64().unwrap_or(0),
            );
            assert!(
                x + w <= 24 && w > 0 && h > 0,
                "{} / {title}: gridPos {g}",
                db.file
            );
            if p["type"] == "row" {
                continue;
            }
            let ds = db.resolve_datasource(p.get("datasource"));
            assert_eq!(
                ds.written.as_deref(),
                Some(DATASOURCE_VARIABLE_REF),
                "{} / {title}: panel datasource",
                db.file
            );
            assert_eq!(ds.uid.as_deref(), want, "{} / {title}", db.file);
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{} / {title}: no targets", db.file);
            let refs: BTreeSet<&str> = targets.iter().filter_map(|t| t["refId"].as_str()).collect();
            assert_eq!(refs.len(), targets.len(), "{} / {title}: refIds", db.file);
        }
    }
}

#[test]
fn panels_do_not_overlap() {
    for db in dashboards() {
        // Collapsed rows hold their panels until opened; lay those out on their own.
        let mut cells: BTreeSet<(u64, u64)> = BTreeSet::new();
        for p in db.panels() {
            let g = &p["gridPos"];
            let n = |k: &str| g[k].as_u64().unwrap_or(0);
            for y in n("y")..n("y") + n("h") {
                for x in n("x")..n("x") + n("w") {
                    assert!(
                        cells.insert((x, y)),
                        "{} / {}: overlaps another panel at ({x}, {y})",
                        db.file,
                        str_field(p, "title")
                    );
                }
            }
        }
    }
}

#[test]
fn every_query_goes_to_the_datasource_variable_in_its_language() {
    let mut n = 0;
    for db in dashboards() {
        for q in db.queries() {
            n += 1;
            assert_eq!(q.language, language_of(&db), "{q}: language");
            assert!(q.raw_query, "{q}: rawQuery must be true");
            assert!(!q.query.trim().is_empty(), "{q}: empty query");
            assert_eq!(
                q.datasource.written.as_deref(),
                Some(DATASOURCE_VARIABLE_REF),
                "{q}: datasource"
            );
            assert_eq!(
                q.datasource_uid.as_deref(),
                provisioned_uid(q.language),
                "{q}: resolved datasource"
            );
        }
    }
    assert!(n > 80, "only {n} queries found");
}

#[test]
fn no_query_hard_codes_a_time_range() {
    for db in dashboards() {
        for q in db.queries() {
            if q.language == QueryLanguage::PromQl {
                continue;
            }
            let lower = q.query.to_ascii_lowercase();
            assert!(!lower.contains("now()"), "{q}: uses now()");
            if !q.is_show() {
                assert!(q.query.contains("$timeFilter"), "{q}: no $timeFilter");
            }
            let problems = query_problems(&q.query);
            assert!(problems.is_empty(), "{q}:\n  {}", problems.join("\n  "));
        }
    }
}

#[test]
fn promql_follows_the_rules() {
    for db in dashboards() {
        for q in db.queries() {
            if q.language != QueryLanguage::PromQl {
                continue;
            }
            if q.kind == QueryKind::Variable {
                assert!(
                    LabelValues::parse(&q.query).is_some(),
                    "{q}: variables use label_values(selector, label)"
                );
                continue;
            }
            let problems = promql_problems(&q.query);
            assert!(problems.is_empty(), "{q}:\n  {}", problems.join("\n  "));
        }
    }
}

/// The metric names the services register, with a histogram's series: every labelled
/// family gets one child so that it shows in `gather()`.
fn exported_metric_names() -> BTreeSet<String> {
    let registry = prometheus::Registry::new();
    let processor = stream_processor::metrics::ProcessorMetrics::new(&registry).expect("processor");
    processor.common.record_in("t");
    processor.common.set_lag("t", 0, 0);
    processor
        .anomalies
        .with_label_values(&["r", "firing"])
        .inc();
    processor.commits.with_label_values(&["samples"]).inc();
    let sink_registry = prometheus::Registry::new();
    let sink = consumer_influx::SinkMetrics::register(&sink_registry).expect("sink");
    sink.common.record_in("t");
    sink.common.set_lag("t", 0, 0);
    let mut names = BTreeSet::new();
    for r in [&registry, &sink_registry] {
        gpustream_runtime::service::build_info(r, "c", "v").expect("build info");
        r.register(Box::new(
            gpustream_runtime::service::ProcessCollector::new().expect("process"),
        ))
        .expect("process collector");
        for family in r.gather() {
            let name = family.name().to_string();
            if family.get_field_type() == prometheus::proto::MetricType::HISTOGRAM {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            } else {
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn the_pipeline_dashboard_reads_what_the_services_export() {
    let exported = exported_metric_names();
    let d = dashboards();
    let pipeline = d
        .iter()
        .find(|d| d.file == "pipeline.json")
        .expect("pipeline.json");
    let mut used = BTreeSet::new();
    for q in pipeline.queries() {
        let expr = match q.kind {
            QueryKind::Variable => LabelValues::parse(&q.query)
                .and_then(|l| l.selector)
                .unwrap_or_default(),
            _ => q.query.clone(),
        };
        for s in metric_selectors(&expr) {
            assert!(
                exported.contains(&s.name),
                "{q}: `{}` is not exported (exported: {exported:?})",
                s.name
            );
            used.insert(s.name);
        }
    }
    // What an operator looks for first (README "Metrics and health").
    for want in [
        "gpustream_build_info",
        "gpustream_records_in_total",
        "gpustream_records_out_total",
        "gpustream_dead_lettered_total",
        "gpustream_consumer_lag",
        "gpustream_assigned_partitions",
        "gpustream_commits_total",
        "gpustream_commit_errors_total",
        "gpustream_paused",
        "gpustream_write_seconds_bucket",
        "gpustream_write_errors_total",
        "stream_processor_delta_commits_total",
        "stream_processor_buffered_samples",
        "consumer_influx_points_written_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        assert!(used.contains(want), "pipeline.json does not show {want}");
    }
}

#[test]
fn every_identifier_exists_in_the_schema() {
    for db in dashboards() {
        for q in db.queries().iter().filter(|q| !q.is_show()) {
            if q.language != QueryLanguage::InfluxQl {
                continue;
            }
            let unknown = unknown_identifiers(&q.query);
            assert!(unknown.is_empty(), "{q}: unknown identifiers {unknown:?}");
        }
    }
}

#[test]
fn variables_are_defined_and_matched_as_regexes() {
    for db in dashboards() {
        let defined: BTreeSet<String> = db.variables().into_iter().map(|v| v.name).collect();
        for q in db.queries() {
            for name in referenced_variables(&q.query) {
                assert!(defined.contains(&name), "{q}: ${name} is not a variable");
            }
            // Variables are only ever matched as anchored regexes: InfluxQL
            // `=~ /^$name$/`, PromQL `=~"$name"` (anchored by Prometheus itself).
            for name in referenced_variables(&q.query) {
                let matcher = match q.language {
                    QueryLanguage::PromQl => format!("=~\"${name}\""),
                    _ => format!("/^${name}$/"),
                };
                let count = q.query.matches(&format!("${name}")).count();
                assert_eq!(
                    q.query.matches(&matcher).count(),
                    count,
                    "{q}: ${name} must be used as {matcher}"
                );
            }
        }
    }
}

#[test]
fn every_influxql_panel_follows_the_dashboards_variables() {
    for db in dashboards() {
        if language_of(&db) != QueryLanguage::InfluxQl {
            continue;
        }
        let defined: BTreeSet<String> = db.variables().into_iter().map(|v| v.name).collect();
        for q in db.queries() {
            if q.kind == QueryKind::Variable {
                continue;
            }
            // A panel that ignored a selection would show other hosts' GPUs.
            let used = referenced_variables(&q.query);
            let missing: Vec<&String> = defined.difference(&used).collect();
            assert!(missing.is_empty(), "{q}: does not filter by {missing:?}");
        }
    }
}

/// Unit ids of Grafana's value formats (packages/grafana-data/src/valueFormats/
/// categories.ts) that suit these dashboards; a typo or an id Grafana does not know
/// shows the raw number without a unit.
const GRAFANA_UNITS: &[&str] = &[
    "none",
    "short",
    "percent",
    "percentunit",
    "celsius",
    "watt",
    "kwatth",
    "joule",
    "volt",
    "rotmhz",
    "rotrpm",
    "mbytes",
    "bytes",
    "KBs",
    "Bps",
    "s",
    "ms",
    "ops",
    "cps",
    "dateTimeAsIso",
];

/// The Grafana unit of a metric catalogue unit (`gpustream::Metric::unit`). GPU-Z and
/// NVML report memory in MiB (Grafana `mbytes`, not the SI `decmbytes`) and NVML's PCIe
/// throughput in KB/s. `mJ` has none: panels convert the energy counter first.
fn grafana_unit(catalogue: &str) -> Option<&'static str> {
    Some(match catalogue {
        "C" => "celsius",
        "%" | "% TDP" => "percent",
        "W" => "watt",
        "V" => "volt",
        "MB" => "mbytes",
        "MHz" => "rotmhz",
        "RPM" => "rotrpm",
        "KB/s" => "KBs",
        _ => return None,
    })
}

/// Every unit a panel sets: its default and those of its overrides.
fn units(p: &Value) -> Vec<String> {
    let mut out: Vec<String> = p
        .pointer("/fieldConfig/defaults/unit")
        .and_then(Value::as_str)
        .map(str::to_string)
        .into_iter()
        .collect();
    for o in p
        .pointer("/fieldConfig/overrides")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for prop in o["properties"].as_array().into_iter().flatten() {
            if prop["id"] == "unit"
                && let Some(u) = prop["value"].as_str()
            {
                out.push(u.to_string());
            }
        }
    }
    out
}

#[test]
fn units_are_grafana_units_and_match_the_metric_catalogue() {
    let mut checked = 0;
    for db in dashboards() {
        for p in db.panels() {
            let title = str_field(p, "title");
            let all = units(p);
            for u in &all {
                assert!(
                    GRAFANA_UNITS.contains(&u.as_str()),
                    "{} / {title}: unit `{u}` is not one of {GRAFANA_UNITS:?}",
                    db.file
                );
            }
            // A panel with one unit for all its fields, reading metrics of one
            // catalogue unit without arithmetic, shows that unit.
            let Some(unit) = p
                .pointer("/fieldConfig/defaults/unit")
                .and_then(Value::as_str)
            else {
                continue;
            };
            if all.len() != 1 || language_of(&db) != QueryLanguage::InfluxQl {
                continue;
            }
            let mut catalogue = BTreeSet::new();
            let mut arithmetic = false;
            for t in p["targets"].as_array().into_iter().flatten() {
                let q = str_field(t, "query");
                // Operators in code (a regex's slashes are its delimiters, not division).
                arithmetic |= influxql::Lexed::new(&q).tokens.iter().any(|t| {
                    t.context == influxql::Context::Code
                        && matches!(
                            t.kind,
                            influxql::TokenKind::Char('*' | '/' | '&' | '+' | '-')
                        )
                });
                for ident in quoted_identifiers(&q) {
                    let column = ["_min", "_mean", "_max", "_last"]
                        .iter()
                        .find_map(|s| ident.strip_suffix(s))
                        .unwrap_or(&ident);
                    if let Some(m) = gpustream::Metric::from_column(column) {
                        catalogue.insert(m.unit());
                    }
                }
            }
            if arithmetic || catalogue.len() != 1 {
                continue;
            }
            let from = catalogue.first().copied().unwrap_or_default();
            if let Some(want) = grafana_unit(from) {
                checked += 1;
                assert_eq!(
                    unit, want,
                    "{} / {title}: reads `{from}` values, so its unit is `{want}`",
                    db.file
                );
            }
        }
    }
    assert!(checked >= 30, "only {checked} panels checked");
}

#[test]
fn gpu_detail_has_the_host_and_gpu_variables_and_anomaly_annotations() {
    let d = dashboards();
    let detail = d
        .iter()
        .find(|d| d.file == "gpu-detail.json")
        .expect("gpu-detail.json");
    let vars = detail.variables();
    let get = |n: &str| vars.iter().find(|v| v.name == n).expect(n).query.clone();
    assert_eq!(
        get("host"),
        "SHOW TAG VALUES FROM \"gpu_samples\" WITH KEY = \"host\""
    );
    assert_eq!(
        get("gpu"),
        "SHOW TAG VALUES FROM \"gpu_samples\" WITH KEY = \"gpu\" WHERE \"host\" =~ /^$host$/"
    );
    let annotations: Vec<DashboardQuery> = detail
        .queries()
        .into_iter()
        .filter(|q| q.kind == QueryKind::Annotation)
        .collect();
    assert!(!annotations.is_empty());
    for a in annotations {
        assert!(a.query.contains("\"gpu_anomalies\""), "{a}");
        assert!(
            a.query.contains("/^$host$/") && a.query.contains("/^$gpu$/"),
            "{a}"
        );
    }
}

#[test]
fn gpu_detail_and_fleet_show_the_nvml_health_metrics() {
    let d = dashboards();
    for (file, fields) in [
        (
            "gpu-detail.json",
            &[
                "ecc_corrected",
                "ecc_uncorrected",
                "xid",
                "pcie_tx_kbps",
                "pcie_rx_kbps",
                "pstate",
                "energy_mj",
                "remapped_rows",
                "throttle_reasons",
            ][..],
        ),
        (
            "fleet-overview.json",
            &[
                "ecc_corrected",
                "ecc_uncorrected",
                "xid",
                "pcie_rx_kbps",
                "energy_mj",
                "remapped_rows",
                "pstate",
            ][..],
        ),
    ] {
        let db = d.iter().find(|d| d.file == file).expect(file);
        let read: BTreeSet<String> = db
            .queries()
            .iter()
            .flat_map(|q| quoted_identifiers(&q.query))
            .collect();
        for f in fields {
            assert!(read.contains(*f), "{file} does not show `{f}`");
        }
    }
}

#[test]
fn trends_read_the_rollups_and_the_rest_the_raw_measurements() {
    for db in dashboards() {
        for q in db.queries().iter().filter(|q| !q.is_show()) {
            if q.language != QueryLanguage::InfluxQl {
                continue;
            }
            let rollups = q.query.contains("\"gpu_rollups_1m\"");
            assert_eq!(rollups, db.file == "trends.json", "{q}");
        }
    }
}

#[test]
fn provisioning_names_the_datasources_and_the_dashboards_folder() {
    let ds = std::fs::read_to_string(grafana_dir().join("provisioning/datasources/influxdb.yaml"))
        .expect("datasource provisioning");
    for want in [
        "uid: gpustream-influxdb",
        "name: GPU telemetry (InfluxDB)",
        "type: influxdb",
        "url: $INFLUX_URL",
        "dbName: $INFLUX_DB",
        "user: $INFLUX_USER",
        "password: $INFLUX_PASSWORD",
        "version: InfluxQL",
    ] {
        assert!(ds.contains(want), "datasource provisioning lacks `{want}`");
    }
    let prometheus = grafana_dir().join("provisioning/datasources/prometheus.yaml");
    if let Ok(text) = std::fs::read_to_string(&prometheus) {
        for want in [
            &format!("uid: {PROMETHEUS_DATASOURCE_UID}")[..],
            "type: prometheus",
        ] {
            assert!(
                text.contains(want),
                "{} lacks `{want}`",
                prometheus.display()
            );
        }
    }
    let dash =
        std::fs::read_to_string(grafana_dir().join("provisioning/dashboards/gpustream.yaml"))
            .expect("dashboard provisioning");
    for want in [
        "type: file",
        "folder: GPU telemetry",
        "path: /var/lib/grafana/dashboards",
    ] {
        assert!(dash.contains(want), "dashboard provisioning lacks `{want}`");
    }
}
