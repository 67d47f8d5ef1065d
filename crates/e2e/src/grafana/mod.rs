//! The Grafana dashboards of `grafana/dashboards/`: every query they send, and the variable
//! substitution Grafana performs before sending one.
//!
//! - [`dashboard`]: [`load_dashboards`] reads the JSON files; [`Dashboard::queries`] walks
//!   panels (rows' nested `panels` included), template variables and annotations and
//!   returns each query with where it comes from and its datasource, a `datasource`
//!   variable (`${datasource}`) resolved to its default uid and plugin type.
//! - [`variables`]: [`substitute`] turns an InfluxQL query into what InfluxDB receives for
//!   a time range, an interval and variable values, the way Grafana's InfluxDB datasource
//!   does (table below).
//! - [`influxql`]: the one tokenizer of InfluxQL literals that substitution and every
//!   check read; [`query_problems`] holds the rules every dashboard query must follow
//!   (time range only from Grafana, aggregation buckets only from `$__interval`), and
//!   [`unknown_identifiers`] finds names that consumer-influx does not write
//!   ([`consumer_influx::schema`]).
//! - [`promql`]: the same for the pipeline dashboard's PromQL: [`substitute_promql`],
//!   [`promql_problems`] (every selector scoped by the `job`/`instance`/`component`
//!   variables, windows only from Grafana) and `label_values(...)` variable queries.
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
pub mod promql;
pub mod variables;

use std::path::PathBuf;

pub use dashboard::{
    Dashboard, DashboardQuery, DatasourceRef, DatasourceVariable, QueryKind, QueryLanguage,
    Variable, load_dashboards, variable_name,
};
pub use influxql::{
    AGGREGATES, aliases, known_columns, query_problems, quoted_identifiers, unknown_identifiers,
};
pub use promql::{
    LabelValues, PromTime, Selector, metric_selectors, promql_problems, promql_regex_escape,
    substitute_promql,
};
pub use variables::{
    VarValue, Vars, format_interval, parse_interval, referenced_variables, regex_escape, substitute,
};

/// uid of the provisioned InfluxDB datasource: the default of every GPU dashboard's
/// `datasource` variable.
pub const DATASOURCE_UID: &str = "gpustream-influxdb";

/// uid of the provisioned Prometheus datasource (the services' own metrics): the default
/// of the pipeline dashboard's `datasource` variable.
pub const PROMETHEUS_DATASOURCE_UID: &str = "gpustream-prometheus";

/// How every panel, variable and annotation names its datasource: the `datasource`
/// template variable, so a user can point a dashboard at another server.
pub const DATASOURCE_VARIABLE_REF: &str = "${datasource}";

/// The provisioned datasource uid queries in `language` go to.
pub fn provisioned_uid(language: QueryLanguage) -> Option<&'static str> {
    match language {
        QueryLanguage::InfluxQl => Some(DATASOURCE_UID),
        QueryLanguage::PromQl => Some(PROMETHEUS_DATASOURCE_UID),
        QueryLanguage::Other => None,
    }
}

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
mod tests;
