//! The Grafana dashboards of `grafana/dashboards/`: every InfluxQL query they send, and the
//! variable substitution Grafana performs before sending one.
//!
//! - [`dashboard`]: [`load_dashboards`] reads the JSON files; [`Dashboard::queries`] walks
//!   panels (rows' nested `panels` included), template variables and annotations and
//!   returns each query with where it comes from.
//! - [`variables`]: [`substitute`] turns a query into what InfluxDB receives for a time
//!   range, an interval and variable values, the way Grafana's InfluxDB datasource does
//!   (table below).
//! - [`influxql`]: the one tokenizer of InfluxQL literals that substitution and every
//!   check read; [`query_problems`] holds the rules every dashboard query must follow
//!   (time range only from Grafana, aggregation buckets only from `$__interval`), and
//!   [`unknown_identifiers`] finds names that consumer-influx does not write
//!   ([`consumer_influx::schema`]).
//!
//! | in the dashboard | sent to InfluxDB |
//! |---|---|
//! | `$timeFilter` | `time >= {from}ms and time <= {to}ms` |
//! | `$__interval`, `$interval` | the interval, e.g. `10s`, `1m`, `500ms` |
//! | `$__interval_ms` | the interval in milliseconds |
//! | `$__from`, `$__to` | the range's ends, epoch milliseconds |
//! | `$__range`, `$__range_s`, `$__range_ms` | the range's length |
//! | `$host`, `${host}`, `[[host]]` | the variable's value(s) |
//!
//! Inside a regex literal (`host =~ /^$host$/`) values are regex-escaped and several
//! values become `(a|b)`; a variable's custom "All" value (`.*`) goes in verbatim.

pub mod dashboard;
pub mod influxql;
pub mod variables;

use std::path::PathBuf;

pub use dashboard::{Dashboard, DashboardQuery, QueryKind, Variable, load_dashboards};
pub use influxql::{
    AGGREGATES, aliases, known_columns, query_problems, quoted_identifiers, unknown_identifiers,
};
pub use variables::{
    VarValue, Vars, format_interval, parse_interval, referenced_variables, regex_escape, substitute,
};

/// uid of the provisioned InfluxDB datasource every panel refers to.
pub const DATASOURCE_UID: &str = "gpustream-influxdb";

/// `grafana/` of this checkout.
pub fn grafana_dir() -> PathBuf {
    gpustream_test_kit::data::workspace_root().join("grafana")
}

/// `grafana/dashboards/` of this checkout.
pub fn dashboards_dir() -> PathBuf {
    grafana_dir().join("dashboards")
}

/// The real dashboards of this checkout, checked with everything above.
#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::dashboard::{datasource_uid, str_field};
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

    #[test]
    fn the_four_dashboards_exist_with_unique_uids_and_titles() {
        let d = dashboards();
        let files: Vec<&str> = d.iter().map(|d| d.file.as_str()).collect();
        for f in [
            "anomalies.json",
            "fleet-overview.json",
            "gpu-detail.json",
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
            let want_from = if db.file == "trends.json" {
                "now-7d"
            } else {
                "now-6h"
            };
            assert_eq!(j["time"]["from"], want_from, "{}", db.file);
            assert_eq!(j["time"]["to"], "now", "{}", db.file);
            assert_eq!(j["refresh"], "10s", "{}", db.file);
            assert!(
                db.uid.len() <= 40,
                "{}: uid longer than Grafana allows",
                db.file
            );
        }
    }

    #[test]
    fn panels_are_laid_out_and_use_the_datasource() {
        for db in dashboards() {
            let mut ids = BTreeSet::new();
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
                assert_eq!(
                    datasource_uid(p.get("datasource")).as_deref(),
                    Some(DATASOURCE_UID),
                    "{} / {title}: panel datasource",
                    db.file
                );
                let targets = p["targets"].as_array().expect("targets");
                assert!(!targets.is_empty(), "{} / {title}: no targets", db.file);
                let refs: BTreeSet<&str> =
                    targets.iter().filter_map(|t| t["refId"].as_str()).collect();
                assert_eq!(refs.len(), targets.len(), "{} / {title}: refIds", db.file);
            }
        }
    }

    #[test]
    fn every_query_is_raw_influxql_on_the_provisioned_datasource() {
        let mut n = 0;
        for db in dashboards() {
            for q in db.queries() {
                n += 1;
                assert!(q.raw_query, "{q}: rawQuery must be true");
                assert!(!q.query.trim().is_empty(), "{q}: empty query");
                assert_eq!(
                    q.datasource_uid.as_deref(),
                    Some(DATASOURCE_UID),
                    "{q}: datasource"
                );
            }
        }
        assert!(n > 40, "only {n} queries found");
    }

    #[test]
    fn no_query_hard_codes_a_time_range() {
        for db in dashboards() {
            for q in db.queries() {
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
    fn every_identifier_exists_in_the_schema() {
        for db in dashboards() {
            for q in db.queries().iter().filter(|q| !q.is_show()) {
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
                // Variables are only ever matched as anchored regexes.
                for name in referenced_variables(&q.query) {
                    let anchored = format!("/^${name}$/");
                    let count = q.query.matches(&format!("${name}")).count();
                    assert_eq!(
                        q.query.matches(&anchored).count(),
                        count,
                        "{q}: ${name} must be used as =~ /^${name}$/"
                    );
                }
            }
        }
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
    fn trends_read_the_rollups_and_the_rest_the_raw_measurements() {
        for db in dashboards() {
            for q in db.queries().iter().filter(|q| !q.is_show()) {
                let rollups = q.query.contains("\"gpu_rollups_1m\"");
                assert_eq!(rollups, db.file == "trends.json", "{q}");
            }
        }
    }

    #[test]
    fn provisioning_names_the_datasource_and_the_dashboards_folder() {
        let ds =
            std::fs::read_to_string(grafana_dir().join("provisioning/datasources/influxdb.yaml"))
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
}
