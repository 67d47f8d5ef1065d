//! The dashboard JSON model: loading `grafana/dashboards/*.json` and finding every query in
//! it (panel targets, rows' nested panels included, template variables and annotations),
//! each with where it comes from and the datasource it goes to.
//!
//! Datasource references may name a `datasource` template variable (`"uid": "${datasource}"`)
//! instead of a fixed uid, so a user can point a dashboard at another InfluxDB or
//! Prometheus; [`Dashboard::queries`] resolves such a reference to the variable's default
//! (`current.value`, the provisioned uid) and to its plugin type (the variable's `query`),
//! which also tells the query language ([`QueryLanguage`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::variables::parse_interval;

/// One dashboard file.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// File name, e.g. `gpu-detail.json`.
    pub file: String,
    /// Dashboard uid.
    pub uid: String,
    /// Dashboard title.
    pub title: String,
    /// The whole JSON model.
    pub json: Value,
}

/// Loads every `*.json` of `dir`, sorted by file name; a file that cannot be read or
/// parsed, or lacks `uid` or `title`, is an error naming it.
pub fn load_dashboards(dir: &Path) -> Result<Vec<Dashboard>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::with_capacity(files.len());
    for path in files {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let field = |k: &str| {
            json.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("{file}: no `{k}`"))
        };
        out.push(Dashboard {
            uid: field("uid")?,
            title: field("title")?,
            file,
            json,
        });
    }
    Ok(out)
}

/// Where a query comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QueryKind {
    /// A panel's target.
    Panel,
    /// A template variable's query.
    Variable,
    /// An annotation query.
    Annotation,
}

impl std::fmt::Display for QueryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QueryKind::Panel => "panel",
            QueryKind::Variable => "variable",
            QueryKind::Annotation => "annotation",
        })
    }
}

/// The language a query is written in, from its datasource's plugin type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QueryLanguage {
    /// InfluxQL (`influxdb` datasources); the text is the target's `query`.
    InfluxQl,
    /// PromQL (`prometheus` datasources); the text is the target's `expr`.
    PromQl,
    /// Any other plugin, or none known.
    Other,
}

impl QueryLanguage {
    /// The language of a datasource plugin type.
    pub fn of_plugin(plugin: Option<&str>) -> Self {
        match plugin {
            Some("influxdb") => QueryLanguage::InfluxQl,
            Some("prometheus") => QueryLanguage::PromQl,
            _ => QueryLanguage::Other,
        }
    }
}

/// A `datasource` template variable: the user picks any datasource of one plugin type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasourceVariable {
    /// Name, as used in `${name}`.
    pub name: String,
    /// The plugin type it offers (its `query`), e.g. `influxdb`, `prometheus`.
    pub plugin: String,
    /// The default selection (`current.value`): a datasource uid.
    pub default_uid: Option<String>,
    /// Several values may be selected (never sensible for a datasource).
    pub multi: bool,
    /// Has an "All" option (never sensible for a datasource).
    pub include_all: bool,
}

/// A datasource reference as written and as resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasourceRef {
    /// The uid as written: a fixed uid, or a variable reference such as `${datasource}`.
    pub written: Option<String>,
    /// The uid it resolves to (a variable's default); the written uid when it is fixed.
    pub uid: Option<String>,
    /// The plugin type: the reference's `type`, else the variable's plugin.
    pub plugin: Option<String>,
}

/// One query of a dashboard.
#[derive(Debug, Clone)]
pub struct DashboardQuery {
    /// Title of the dashboard.
    pub dashboard: String,
    /// File of the dashboard.
    pub file: String,
    /// Panel target, variable or annotation.
    pub kind: QueryKind,
    /// Panel title, variable name or annotation name.
    pub panel: String,
    /// Panel type (`timeseries`, `stat`, ...), `variable` or `annotation`.
    pub panel_type: String,
    /// The target's refId (empty for variables and annotations).
    pub ref_id: String,
    /// The query text (InfluxQL `query` or PromQL `expr`), variables not substituted.
    pub query: String,
    /// Whether the target is in raw (text) mode; variables, annotations and PromQL
    /// targets always are.
    pub raw_query: bool,
    /// Effective datasource uid (the target's, else the panel's), a `datasource`
    /// variable resolved to its default.
    pub datasource_uid: Option<String>,
    /// The effective datasource reference, as written and resolved.
    pub datasource: DatasourceRef,
    /// What the query is written in.
    pub language: QueryLanguage,
    /// The panel's minimum interval (`interval`, e.g. `1m`), if set.
    pub min_interval: Option<Duration>,
}

impl DashboardQuery {
    /// Whether this is a metadata query (`SHOW TAG VALUES ...`).
    pub fn is_show(&self) -> bool {
        self.query
            .trim_start()
            .get(..4)
            .is_some_and(|s| s.eq_ignore_ascii_case("show"))
    }
}

impl std::fmt::Display for DashboardQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dashboard \"{}\" ({}), {} \"{}\"",
            self.dashboard, self.file, self.kind, self.panel
        )?;
        if !self.ref_id.is_empty() {
            write!(f, " [{}]", self.ref_id)?;
        }
        write!(f, ": {}", self.query)
    }
}

/// A query template variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Name, as used in `$name`.
    pub name: String,
    /// Its query (InfluxQL `SHOW ...`, or PromQL `label_values(...)`).
    pub query: String,
    /// What the query is written in (from the variable's datasource).
    pub language: QueryLanguage,
    /// Several values may be selected.
    pub multi: bool,
    /// Has an "All" option.
    pub include_all: bool,
    /// Custom value of "All" (sent verbatim), if any.
    pub all_value: Option<String>,
}

/// The datasource uid of a `datasource` reference (object with `uid`, or a legacy name),
/// as written.
pub(super) fn datasource_uid(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Object(o) => o.get("uid").and_then(Value::as_str).map(str::to_string),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The plugin type of a `datasource` reference object, if it names one.
fn datasource_type(v: Option<&Value>) -> Option<String> {
    v?.get("type").and_then(Value::as_str).map(str::to_string)
}

/// The variable a whole string refers to: `$name`, `${name}` or `[[name]]` (Grafana
/// accepts each form in a datasource uid), else `None`.
pub fn variable_name(s: &str) -> Option<&str> {
    let name = s
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| s.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")))
        .or_else(|| s.strip_prefix('$'))?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(name)
}

/// The string `k` of an object, empty when absent.
pub(super) fn str_field(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A variable's query: a string, or (newer Grafana) an object with `query`.
fn variable_query(v: &Value) -> Option<String> {
    match v.get("query")? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("query").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

impl Dashboard {
    /// Every panel, depth first, rows' nested `panels` included (rows themselves too).
    pub fn panels(&self) -> Vec<&Value> {
        fn walk<'a>(panels: Option<&'a Value>, out: &mut Vec<&'a Value>) {
            for p in panels.and_then(Value::as_array).into_iter().flatten() {
                out.push(p);
                walk(p.get("panels"), out);
            }
        }
        let mut out = Vec::new();
        walk(self.json.get("panels"), &mut out);
        out
    }

    /// The JSON of the template variables of `kind` (`query`, `datasource`, ...).
    fn variables_of(&self, kind: &'static str) -> impl Iterator<Item = &Value> {
        self.json
            .pointer("/templating/list")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(move |v| v.get("type").and_then(Value::as_str) == Some(kind))
    }

    /// The JSON of the template variables of type `query` (the only ones with a query).
    fn query_variables(&self) -> impl Iterator<Item = &Value> {
        self.variables_of("query")
    }

    /// Template variables of type `datasource`, in dashboard order.
    pub fn datasource_variables(&self) -> Vec<DatasourceVariable> {
        self.variables_of("datasource")
            .map(|v| DatasourceVariable {
                name: str_field(v, "name"),
                plugin: variable_query(v).unwrap_or_default(),
                default_uid: v
                    .pointer("/current/value")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                multi: v.get("multi").and_then(Value::as_bool).unwrap_or(false),
                include_all: v
                    .get("includeAll")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            })
            .collect()
    }

    /// Resolves a `datasource` reference: a variable reference becomes the variable's
    /// default uid and plugin type (the reference's own `type` wins when it has one); a
    /// reference to a variable that does not exist resolves to no uid.
    pub fn resolve_datasource(&self, v: Option<&Value>) -> DatasourceRef {
        let written = datasource_uid(v);
        let mut plugin = datasource_type(v);
        let uid = match written.as_deref().and_then(variable_name) {
            Some(name) => {
                let var = self
                    .datasource_variables()
                    .into_iter()
                    .find(|d| d.name == name);
                if plugin.is_none() {
                    plugin = var.as_ref().map(|d| d.plugin.clone());
                }
                var.and_then(|d| d.default_uid)
            }
            None => written.clone(),
        };
        DatasourceRef {
            written,
            uid,
            plugin,
        }
    }

    /// Template variables of type `query`, in dashboard order.
    pub fn variables(&self) -> Vec<Variable> {
        self.query_variables()
            .filter_map(|v| {
                Some(Variable {
                    name: str_field(v, "name"),
                    query: variable_query(v)?,
                    language: QueryLanguage::of_plugin(
                        self.resolve_datasource(v.get("datasource"))
                            .plugin
                            .as_deref(),
                    ),
                    multi: v.get("multi").and_then(Value::as_bool).unwrap_or(false),
                    include_all: v
                        .get("includeAll")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    all_value: v
                        .get("allValue")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                })
            })
            .collect()
    }

    /// Every query: panel targets, variable queries and annotation queries (Grafana's
    /// built-in annotation, which has no query, is left out).
    pub fn queries(&self) -> Vec<DashboardQuery> {
        let mut out = Vec::new();
        let base =
            |kind, panel: String, panel_type: String, datasource: DatasourceRef| DashboardQuery {
                dashboard: self.title.clone(),
                file: self.file.clone(),
                kind,
                panel,
                panel_type,
                ref_id: String::new(),
                query: String::new(),
                raw_query: true,
                datasource_uid: datasource.uid.clone(),
                language: QueryLanguage::of_plugin(datasource.plugin.as_deref()),
                datasource,
                min_interval: None,
            };
        for p in self.panels() {
            let title = str_field(p, "title");
            let panel_type = str_field(p, "type");
            let panel_ds = p.get("datasource");
            let min_interval = p
                .get("interval")
                .and_then(Value::as_str)
                .and_then(parse_interval);
            for t in p
                .get("targets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let ds = match t.get("datasource") {
                    Some(own) if datasource_uid(Some(own)).is_some() => Some(own),
                    _ => panel_ds,
                };
                let mut q = base(
                    QueryKind::Panel,
                    title.clone(),
                    panel_type.clone(),
                    self.resolve_datasource(ds),
                );
                q.ref_id = str_field(t, "refId");
                if q.language == QueryLanguage::PromQl {
                    // PromQL is always text: there is no query builder model to fall back on.
                    q.query = str_field(t, "expr");
                } else {
                    q.query = str_field(t, "query");
                    q.raw_query = t.get("rawQuery").and_then(Value::as_bool).unwrap_or(false);
                }
                q.min_interval = min_interval;
                out.push(q);
            }
        }
        for v in self.query_variables() {
            let mut q = base(
                QueryKind::Variable,
                str_field(v, "name"),
                "variable".into(),
                self.resolve_datasource(v.get("datasource")),
            );
            q.query = variable_query(v).unwrap_or_default();
            out.push(q);
        }
        for a in self
            .json
            .pointer("/annotations/list")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let builtin = a.get("builtIn").and_then(Value::as_u64) == Some(1)
                || a.pointer("/datasource/type").and_then(Value::as_str) == Some("grafana");
            if builtin {
                continue;
            }
            let query = a
                .get("query")
                .and_then(Value::as_str)
                .or_else(|| a.pointer("/target/query").and_then(Value::as_str));
            let mut q = base(
                QueryKind::Annotation,
                str_field(a, "name"),
                "annotation".into(),
                self.resolve_datasource(a.get("datasource")),
            );
            q.query = query.unwrap_or_default().to_string();
            out.push(q);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn dashboard(json: Value) -> Dashboard {
        Dashboard {
            file: "test.json".into(),
            uid: "test".into(),
            title: "Test".into(),
            json,
        }
    }

    #[test]
    fn queries_come_from_nested_panels_variables_and_annotations() {
        let d = dashboard(json!({
            "panels": [
                {"type": "row", "title": "Row", "panels": [{
                    "type": "stat", "title": "Nested", "interval": "1m",
                    "datasource": {"uid": "panel-ds"},
                    "targets": [
                        {"refId": "A", "query": "SELECT 1", "rawQuery": true},
                        {"refId": "B", "query": "SELECT 2", "datasource": {"uid": "own"}}
                    ]
                }]},
                {"type": "timeseries", "title": "Top", "datasource": "legacy",
                 "targets": [{"refId": "A", "query": "SELECT 3", "rawQuery": true}]}
            ],
            "templating": {"list": [
                {"type": "query", "name": "host", "query": {"query": "SHOW TAG VALUES"},
                 "multi": true, "includeAll": true, "allValue": ".*"},
                {"type": "custom", "name": "ignored", "query": "a,b"}
            ]},
            "annotations": {"list": [
                {"builtIn": 1, "name": "Annotations & Alerts",
                 "datasource": {"type": "grafana", "uid": "-- Grafana --"}},
                {"name": "Anomalies", "datasource": {"uid": "ds"},
                 "target": {"query": "SELECT 4"}}
            ]}
        }));
        assert_eq!(d.panels().len(), 3);
        let got: Vec<String> = d
            .queries()
            .iter()
            .map(|q| {
                format!(
                    "{} {} `{}` raw={} ds={:?}",
                    q.kind, q.panel, q.query, q.raw_query, q.datasource_uid
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                "panel Nested `SELECT 1` raw=true ds=Some(\"panel-ds\")",
                "panel Nested `SELECT 2` raw=false ds=Some(\"own\")",
                "panel Top `SELECT 3` raw=true ds=Some(\"legacy\")",
                "variable host `SHOW TAG VALUES` raw=true ds=None",
                "annotation Anomalies `SELECT 4` raw=true ds=Some(\"ds\")",
            ]
        );
        let queries = d.queries();
        let nested = &queries[0];
        assert_eq!(nested.min_interval, Some(Duration::from_secs(60)));
        assert_eq!(
            nested.to_string(),
            "dashboard \"Test\" (test.json), panel \"Nested\" [A]: SELECT 1"
        );
        assert_eq!(
            d.variables(),
            [Variable {
                name: "host".into(),
                query: "SHOW TAG VALUES".into(),
                language: QueryLanguage::Other,
                multi: true,
                include_all: true,
                all_value: Some(".*".into()),
            }]
        );
        assert!(queries[3].is_show());
        assert!(!nested.is_show());
    }

    #[test]
    fn datasource_variables_resolve_to_their_default_and_plugin() {
        let d = dashboard(json!({
            "panels": [
                {"type": "timeseries", "title": "Influx",
                 "datasource": {"type": "influxdb", "uid": "${ds}"},
                 "targets": [
                     {"refId": "A", "query": "SELECT 1", "rawQuery": true},
                     {"refId": "B", "query": "SELECT 2", "rawQuery": true,
                      "datasource": {"uid": "[[ds]]"}}
                 ]},
                {"type": "stat", "title": "Prom", "datasource": {"uid": "$prom"},
                 "targets": [{"refId": "A", "expr": "up{job=~\"$job\"}", "query": "ignored"}]},
                {"type": "stat", "title": "Dangling", "datasource": {"uid": "${nope}"},
                 "targets": [{"refId": "A", "query": "SELECT 3"}]}
            ],
            "templating": {"list": [
                {"type": "datasource", "name": "ds", "query": "influxdb",
                 "current": {"text": "Influx", "value": "influx-uid"}},
                {"type": "datasource", "name": "prom", "query": "prometheus",
                 "current": {"text": "Prom", "value": "prom-uid"}},
                {"type": "query", "name": "job", "datasource": {"uid": "${prom}"},
                 "query": {"query": "label_values(up, job)", "refId": "V"}}
            ]}
        }));
        assert_eq!(
            d.datasource_variables(),
            [
                DatasourceVariable {
                    name: "ds".into(),
                    plugin: "influxdb".into(),
                    default_uid: Some("influx-uid".into()),
                    multi: false,
                    include_all: false,
                },
                DatasourceVariable {
                    name: "prom".into(),
                    plugin: "prometheus".into(),
                    default_uid: Some("prom-uid".into()),
                    multi: false,
                    include_all: false,
                },
            ]
        );
        let got: Vec<String> = d
            .queries()
            .iter()
            .map(|q| {
                format!(
                    "{} {} `{}` {:?} {:?} written={:?} plugin={:?}",
                    q.kind,
                    q.panel,
                    q.query,
                    q.language,
                    q.datasource_uid,
                    q.datasource.written,
                    q.datasource.plugin
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                "panel Influx `SELECT 1` InfluxQl Some(\"influx-uid\") written=Some(\"${ds}\") plugin=Some(\"influxdb\")",
                "panel Influx `SELECT 2` InfluxQl Some(\"influx-uid\") written=Some(\"[[ds]]\") plugin=Some(\"influxdb\")",
                "panel Prom `up{job=~\"$job\"}` PromQl Some(\"prom-uid\") written=Some(\"$prom\") plugin=Some(\"prometheus\")",
                "panel Dangling `SELECT 3` Other None written=Some(\"${nope}\") plugin=None",
                "variable job `label_values(up, job)` PromQl Some(\"prom-uid\") written=Some(\"${prom}\") plugin=Some(\"prometheus\")",
            ]
        );
        assert!(d.queries()[2].raw_query, "PromQL is always text");
        assert_eq!(d.variables()[0].language, QueryLanguage::PromQl);
        assert_eq!(variable_name("${a_1}"), Some("a_1"));
        assert_eq!(variable_name("[[a]]"), Some("a"));
        assert_eq!(variable_name("$a"), Some("a"));
        assert_eq!(variable_name("gpustream-influxdb"), None);
        assert_eq!(variable_name("${a-b}"), None);
        assert_eq!(variable_name("$"), None);
    }
}
