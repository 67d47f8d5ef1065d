//! The Grafana dashboards of `grafana/dashboards/`: every InfluxQL query they send, and the
//! variable substitution Grafana performs before sending one.
//!
//! [`load_dashboards`] reads the JSON files; [`Dashboard::queries`] walks panels (rows'
//! nested `panels` included), template variables and annotations and returns each query
//! with where it comes from. [`substitute`] turns a query into what InfluxDB receives for a
//! time range, an interval and variable values, the way Grafana's InfluxDB datasource does:
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
//! [`query_problems`] holds the rules every dashboard query must follow (time range only
//! from Grafana, aggregation buckets only from `$__interval`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// uid of the provisioned InfluxDB datasource every panel refers to.
pub const DATASOURCE_UID: &str = "gpustream-influxdb";

/// Measurements the dashboards may query.
pub const MEASUREMENTS: &[&str] = &["gpu_samples", "gpu_anomalies", "gpu_rollups_1m"];

/// `grafana/` of this checkout.
pub fn grafana_dir() -> PathBuf {
    gpustream_test_kit::data::workspace_root().join("grafana")
}

/// `grafana/dashboards/` of this checkout.
pub fn dashboards_dir() -> PathBuf {
    grafana_dir().join("dashboards")
}

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

/// Loads every `*.json` of `dir`, sorted by file name.
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

/// One InfluxQL query of a dashboard.
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
    /// The InfluxQL text, variables not substituted.
    pub query: String,
    /// Whether the target is in raw (text) mode; variables and annotations always are.
    pub raw_query: bool,
    /// Effective datasource uid (the target's, else the panel's).
    pub datasource_uid: Option<String>,
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
    /// Its InfluxQL query.
    pub query: String,
    /// Several values may be selected.
    pub multi: bool,
    /// Has an "All" option.
    pub include_all: bool,
    /// Custom value of "All" (sent verbatim), if any.
    pub all_value: Option<String>,
}

/// The datasource uid of a `datasource` reference (object with `uid`, or a legacy name).
fn datasource_uid(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Object(o) => o.get("uid").and_then(Value::as_str).map(str::to_string),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn str_field(v: &Value, k: &str) -> String {
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

    /// Template variables of type `query`, in dashboard order.
    pub fn variables(&self) -> Vec<Variable> {
        self.json
            .pointer("/templating/list")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| v.get("type").and_then(Value::as_str) == Some("query"))
            .filter_map(|v| {
                Some(Variable {
                    name: str_field(v, "name"),
                    query: variable_query(v)?,
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
        let base = |kind, panel: String, panel_type: String| DashboardQuery {
            dashboard: self.title.clone(),
            file: self.file.clone(),
            kind,
            panel,
            panel_type,
            ref_id: String::new(),
            query: String::new(),
            raw_query: true,
            datasource_uid: None,
            min_interval: None,
        };
        for p in self.panels() {
            let title = str_field(p, "title");
            let panel_type = str_field(p, "type");
            let panel_ds = datasource_uid(p.get("datasource"));
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
                let mut q = base(QueryKind::Panel, title.clone(), panel_type.clone());
                q.ref_id = str_field(t, "refId");
                q.query = str_field(t, "query");
                q.raw_query = t.get("rawQuery").and_then(Value::as_bool).unwrap_or(false);
                q.datasource_uid = datasource_uid(t.get("datasource")).or(panel_ds.clone());
                q.min_interval = min_interval;
                out.push(q);
            }
        }
        for v in self
            .json
            .pointer("/templating/list")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| v.get("type").and_then(Value::as_str) == Some("query"))
        {
            let mut q = base(QueryKind::Variable, str_field(v, "name"), "variable".into());
            q.query = variable_query(v).unwrap_or_default();
            q.datasource_uid = datasource_uid(v.get("datasource"));
            out.push(q);
        }
        for a in self
            .json
            .pointer("/annotations/list")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ds = datasource_uid(a.get("datasource"));
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
            );
            q.query = query.unwrap_or_default().to_string();
            q.datasource_uid = ds;
            out.push(q);
        }
        out
    }
}

/// The value a variable takes for one substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarValue {
    /// Selected values (one for a single-value variable).
    Values(Vec<String>),
    /// "All" with a custom all value (e.g. `.*`), inserted as it is.
    All(String),
}

impl VarValue {
    /// One selected value.
    pub fn one(v: impl Into<String>) -> Self {
        VarValue::Values(vec![v.into()])
    }
}

/// Variable values by name.
pub type Vars = BTreeMap<String, VarValue>;

/// Escapes every regex metacharacter of `s`, and `/` (it would end InfluxQL's regex literal).
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '^'
                | '$'
                | '.'
                | '|'
                | '?'
                | '*'
                | '+'
                | '('
                | ')'
                | '['
                | ']'
                | '{'
                | '}'
                | '/'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Formats an interval the way Grafana writes `$__interval`: the largest unit that divides
/// it exactly (`1d`, `2h`, `1m`, `90s`, `500ms`).
pub fn format_interval(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, len) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= len && ms.is_multiple_of(len) {
            return format!("{}{unit}", ms / len);
        }
    }
    format!("{ms}ms")
}

/// Parses a Grafana/InfluxQL duration such as `10s`, `1m`, `500ms`, `2h`, `1d`, `1w`.
pub fn parse_interval(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => return None,
    };
    Some(Duration::from_millis(n.checked_mul(ms)?))
}

/// Lexical context of a position in an InfluxQL query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Code,
    /// Inside `'...'`.
    Str,
    /// Inside `"..."`.
    Ident,
    /// Inside a regex literal `/.../` (after `=~` or `!~`).
    Regex,
}

/// A variable reference at the start of `s`: `$name`, `${name}`, `${name:fmt}`,
/// `[[name]]` or `[[name:fmt]]`. Returns (name, format, length in chars).
fn parse_ref(s: &[char]) -> Option<(String, Option<String>, usize)> {
    let is_name = |c: &char| c.is_ascii_alphanumeric() || *c == '_';
    let braced = |open: &[char], close: &[char]| -> Option<(String, Option<String>, usize)> {
        if !s.starts_with(open) {
            return None;
        }
        let rest = &s[open.len()..];
        let end = rest.windows(close.len()).position(|w| w == close)?;
        let inner: String = rest[..end].iter().collect();
        let (name, fmt) = match inner.split_once(':') {
            Some((n, f)) => (n.to_string(), Some(f.to_string())),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| is_name(&c)) {
            return None;
        }
        Some((name, fmt, open.len() + end + close.len()))
    };
    match s.first()? {
        '$' if s.get(1) == Some(&'{') => braced(&['$', '{'], &['}']),
        '$' => {
            let n = s[1..].iter().take_while(|c| is_name(c)).count();
            (n > 0).then(|| (s[1..=n].iter().collect(), None, n + 1))
        }
        '[' => braced(&['[', '['], &[']', ']']),
        _ => None,
    }
}

/// Replaces Grafana's variables in `query` as Grafana's InfluxDB datasource does before
/// sending it (see the module docs): `$timeFilter` becomes
/// `time >= {from_ms}ms and time <= {to_ms}ms`, `$__interval` the formatted `interval`,
/// user variables their values from `vars` (regex-escaped inside `/.../`). Unknown
/// variables are left as they are.
pub fn substitute(
    query: &str,
    vars: &Vars,
    from_ms: i64,
    to_ms: i64,
    interval: Duration,
) -> String {
    let chars: Vec<char> = query.chars().collect();
    let mut out = String::with_capacity(query.len() + 64);
    let mut lex = Lex::Code;
    // The last two non-blank characters seen in code: `=~` / `!~` open a regex literal.
    let mut prev: [char; 2] = [' ', ' '];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if (c == '$' || c == '[')
            && let Some((name, fmt, len)) = parse_ref(&chars[i..])
            && let Some(text) = resolve(&name, fmt.as_deref(), lex, vars, from_ms, to_ms, interval)
        {
            out.push_str(&text);
            i += len;
            if lex == Lex::Code {
                prev = ['$', '$'];
            }
            continue;
        }
        match lex {
            Lex::Code => match c {
                '\'' => lex = Lex::Str,
                '"' => lex = Lex::Ident,
                '/' if prev[1] == '~' && matches!(prev[0], '=' | '!') => lex = Lex::Regex,
                _ => {}
            },
            Lex::Str | Lex::Ident | Lex::Regex => {
                let close = match lex {
                    Lex::Str => '\'',
                    Lex::Ident => '"',
                    _ => '/',
                };
                if c == '\\' && i + 1 < chars.len() {
                    out.push(c);
                    out.push(chars[i + 1]);
                    i += 2;
                    continue;
                }
                if c == close {
                    lex = Lex::Code;
                    out.push(c);
                    prev = [' ', c];
                    i += 1;
                    continue;
                }
            }
        }
        if lex == Lex::Code && !c.is_whitespace() {
            prev = [prev[1], c];
        }
        out.push(c);
        i += 1;
    }
    out
}

fn resolve(
    name: &str,
    fmt: Option<&str>,
    lex: Lex,
    vars: &Vars,
    from_ms: i64,
    to_ms: i64,
    interval: Duration,
) -> Option<String> {
    let range_ms = to_ms.saturating_sub(from_ms).max(0);
    Some(match name {
        "timeFilter" | "__timeFilter" => format!("time >= {from_ms}ms and time <= {to_ms}ms"),
        "__interval" | "interval" => format_interval(interval),
        "__interval_ms" => interval.as_millis().to_string(),
        "__from" => from_ms.to_string(),
        "__to" => to_ms.to_string(),
        "__range" => format_interval(Duration::from_millis(range_ms as u64)),
        "__range_s" => (range_ms / 1000).to_string(),
        "__range_ms" => range_ms.to_string(),
        _ => {
            let value = vars.get(name)?;
            let regex = lex == Lex::Regex || fmt == Some("regex");
            match value {
                VarValue::All(all) => all.clone(),
                VarValue::Values(vs) if fmt == Some("raw") => vs.join(","),
                VarValue::Values(vs) if regex => {
                    let escaped: Vec<String> = vs.iter().map(|v| regex_escape(v)).collect();
                    match escaped.len() {
                        1 => escaped.into_iter().next().unwrap_or_default(),
                        _ => format!("({})", escaped.join("|")),
                    }
                }
                VarValue::Values(vs) => {
                    let quote = match lex {
                        Lex::Str => Some('\''),
                        Lex::Ident => Some('"'),
                        _ => None,
                    };
                    let esc = |v: &String| match quote {
                        Some(q) => v.replace('\\', "\\\\").replace(q, &format!("\\{q}")),
                        None => v.clone(),
                    };
                    vs.iter().map(esc).collect::<Vec<_>>().join(",")
                }
            }
        }
    })
}

/// Names of the user variables (`$name`, `${name}`, `[[name]]`) a query refers to;
/// Grafana's built-ins (`$timeFilter`, `$__interval`, ...) left out.
pub fn referenced_variables(query: &str) -> BTreeSet<String> {
    let chars: Vec<char> = query.chars().collect();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        if let Some((name, _, len)) = parse_ref(&chars[i..]) {
            if !name.starts_with("__") && name != "timeFilter" && name != "interval" {
                out.insert(name);
            }
            i += len;
        } else {
            i += 1;
        }
    }
    out
}

/// `query` with the content of string literals, quoted identifiers and regex literals
/// blanked out (same length in chars), so keywords and parentheses can be found safely.
fn mask_literals(query: &str) -> Vec<char> {
    let chars: Vec<char> = query.chars().collect();
    let mut out = chars.clone();
    let mut lex = Lex::Code;
    let mut prev: [char; 2] = [' ', ' '];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match lex {
            Lex::Code => {
                match c {
                    '\'' => lex = Lex::Str,
                    '"' => lex = Lex::Ident,
                    '/' if prev[1] == '~' && matches!(prev[0], '=' | '!') => lex = Lex::Regex,
                    _ => {}
                }
                if !c.is_whitespace() {
                    prev = [prev[1], c];
                }
            }
            _ => {
                let close = match lex {
                    Lex::Str => '\'',
                    Lex::Ident => '"',
                    _ => '/',
                };
                if c == '\\' && i + 1 < chars.len() {
                    out[i] = ' ';
                    out[i + 1] = ' ';
                    i += 2;
                    continue;
                }
                if c == close {
                    lex = Lex::Code;
                    prev = [' ', c];
                } else {
                    out[i] = ' ';
                }
            }
        }
        i += 1;
    }
    out
}

/// The SELECT statements of a query, outermost first: each as (masked text with its
/// subqueries blanked out, original text of the same span).
fn statements(query: &str) -> Vec<(String, String)> {
    let masked = mask_literals(query);
    let original: Vec<char> = query.chars().collect();
    let upper: Vec<char> = masked.iter().map(|c| c.to_ascii_uppercase()).collect();
    // Spans of parenthesised subqueries: "(" followed (after blanks) by SELECT.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (i, c) in upper.iter().enumerate() {
        if *c != '(' {
            continue;
        }
        let j = i
            + 1
            + upper[i + 1..]
                .iter()
                .take_while(|c| c.is_whitespace())
                .count();
        let word: String = upper[j..].iter().take(6).collect();
        if word != "SELECT" {
            continue;
        }
        let mut depth = 0usize;
        for (k, c) in upper.iter().enumerate().skip(i) {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        spans.push((i, k));
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    let statement = |start: usize, end: usize| -> (String, String) {
        // Blank out the subqueries directly inside [start, end].
        let mut text: Vec<char> = masked[start..=end].to_vec();
        for &(s, e) in &spans {
            if s > start && e < end && !(s == start && e == end) {
                for c in &mut text[s - start..=e - start] {
                    *c = ' ';
                }
            }
        }
        (
            text.into_iter().collect(),
            original[start..=end].iter().collect(),
        )
    };
    let mut out = vec![statement(0, masked.len().saturating_sub(1))];
    for &(s, e) in &spans {
        out.push(statement(s + 1, e - 1));
    }
    out
}

/// Whether `word(` (case-insensitive, as a whole word) occurs in `text`.
fn calls(text: &str, word: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(word) {
        let at = from + pos;
        let before_ok = at == 0 || {
            let b = lower.as_bytes()[at - 1];
            !(b.is_ascii_alphanumeric() || b == b'_')
        };
        let after = lower[at + word.len()..].trim_start();
        if before_ok && after.starts_with('(') {
            return true;
        }
        from = at + word.len();
    }
    false
}

/// Whether `text` (lower case, literals masked) compares the word `time` with
/// `<`, `>`, `=` or `!=`.
fn compares_time(text: &str) -> bool {
    let b = text.as_bytes();
    text.match_indices("time").any(|(at, _)| {
        let before_ok =
            at == 0 || !(b[at - 1].is_ascii_alphanumeric() || matches!(b[at - 1], b'_' | b'$'));
        let after = text[at + 4..].trim_start();
        before_ok && (after.starts_with(['<', '>', '=']) || after.starts_with("!="))
    })
}

/// Aggregating functions: a query using one must bucket by `GROUP BY time($__interval)`.
/// `last()`/`first()` are left out: panels showing the current value of each GPU select the
/// last point in Grafana's range without time buckets.
pub const AGGREGATES: &[&str] = &[
    "count",
    "mean",
    "median",
    "mode",
    "spread",
    "stddev",
    "sum",
    "integral",
    "distinct",
    "percentile",
    "min",
    "max",
    "top",
    "bottom",
    "sample",
    "derivative",
    "non_negative_derivative",
    "difference",
    "moving_average",
    "cumulative_sum",
    "elapsed",
];

/// Everything wrong with one dashboard query (empty when it follows the rules):
///
/// - no `now()` anywhere: the time range comes only from Grafana;
/// - a `SHOW` query needs nothing else; every SELECT statement (each subquery too) has
///   `$timeFilter` in its WHERE and no other condition on `time`;
/// - `GROUP BY time(...)` only with `$__interval` (or `$interval`), and with
///   `fill(null)` or `fill(none)`;
/// - a statement using an aggregating function ([`AGGREGATES`]) groups by
///   `time($__interval)`.
pub fn query_problems(query: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let masked: String = mask_literals(query).into_iter().collect();
    let lower = masked.to_ascii_lowercase();
    if lower.contains("now(") || lower.contains("now ()") {
        problems.push("uses now(): the time range must come from $timeFilter".into());
    }
    let trimmed = lower.trim_start();
    if trimmed.starts_with("show") {
        return problems;
    }
    if !trimmed.starts_with("select") {
        problems.push("neither SELECT nor SHOW".into());
        return problems;
    }
    for (stmt, original) in statements(query) {
        let s = stmt.to_ascii_lowercase();
        let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let what = original.trim();
        if !s.contains("$timefilter") {
            problems.push(format!("no $timeFilter in `{what}`"));
        }
        // Any other comparison on time hard-codes a range.
        if compares_time(&s.replace("$timefilter", "")) {
            problems.push(format!("compares time itself in `{what}`"));
        }
        let by_time = compact.contains("groupbytime(");
        let by_interval = compact.contains("groupbytime($__interval)")
            || compact.contains("groupbytime($interval)")
            || compact.contains("groupbytime(${__interval})");
        if by_time && !by_interval {
            problems.push(format!(
                "GROUP BY time() with a fixed bucket in `{what}`: use $__interval"
            ));
        }
        if by_time && !(compact.contains("fill(null)") || compact.contains("fill(none)")) {
            problems.push(format!(
                "GROUP BY time() without fill(null) or fill(none) in `{what}`"
            ));
        }
        if let Some(f) = AGGREGATES.iter().find(|f| calls(&s, f))
            && !by_interval
        {
            problems.push(format!(
                "aggregates with {f}() without GROUP BY time($__interval) in `{what}`"
            ));
        }
    }
    problems
}

/// Quoted identifiers (`"name"`) of a query, unescaped, in order.
pub fn quoted_identifiers(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = query.chars().peekable();
    let mut lex = Lex::Code;
    let mut prev: [char; 2] = [' ', ' '];
    let mut current = String::new();
    while let Some(c) = chars.next() {
        match lex {
            Lex::Code => {
                match c {
                    '\'' => lex = Lex::Str,
                    '"' => {
                        lex = Lex::Ident;
                        current.clear();
                    }
                    '/' if prev[1] == '~' && matches!(prev[0], '=' | '!') => lex = Lex::Regex,
                    _ => {}
                }
                if !c.is_whitespace() {
                    prev = [prev[1], c];
                }
            }
            _ => {
                let close = match lex {
                    Lex::Str => '\'',
                    Lex::Ident => '"',
                    _ => '/',
                };
                if c == '\\' {
                    if let Some(n) = chars.next()
                        && lex == Lex::Ident
                    {
                        current.push(n);
                    }
                    continue;
                }
                if c == close {
                    if lex == Lex::Ident {
                        out.push(std::mem::take(&mut current));
                    }
                    lex = Lex::Code;
                    prev = [' ', c];
                } else if lex == Lex::Ident {
                    current.push(c);
                }
            }
        }
    }
    out
}

/// Names a query declares with `AS "name"` (aliases, usable by an outer query).
pub fn aliases(query: &str) -> BTreeSet<String> {
    let masked: String = mask_literals(query).into_iter().collect();
    let original: Vec<char> = query.chars().collect();
    let m: Vec<char> = masked.chars().collect();
    let mut out = BTreeSet::new();
    let upper: Vec<char> = m.iter().map(|c| c.to_ascii_uppercase()).collect();
    for i in 0..upper.len().saturating_sub(3) {
        let word_start = i == 0 || !(upper[i - 1].is_ascii_alphanumeric() || upper[i - 1] == '_');
        if word_start && upper[i] == 'A' && upper[i + 1] == 'S' && upper[i + 2].is_whitespace() {
            let j = i
                + 2
                + upper[i + 2..]
                    .iter()
                    .take_while(|c| c.is_whitespace())
                    .count();
            if original.get(j) == Some(&'"')
                && let Some(len) = original[j + 1..].iter().position(|c| *c == '"')
            {
                out.insert(original[j + 1..j + 1 + len].iter().collect());
            }
        }
    }
    out
}

/// Tags and fields of `measurement` as consumer-influx writes them (metric fields from
/// `gpustream`'s catalogue), or `None` for an unknown measurement.
pub fn known_columns(measurement: &str) -> Option<BTreeSet<String>> {
    let metrics = gpustream::Metric::ALL
        .iter()
        .map(|m| m.column().to_string());
    let names: BTreeSet<String> = match measurement {
        "gpu_samples" => [
            "host",
            "gpu",
            "source",
            "gpu_name",
            "seq",
            "gpu_index",
            "unsupported",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(metrics)
        .collect(),
        "gpu_anomalies" => [
            "host",
            "gpu",
            "source",
            "rule",
            "severity",
            "state",
            "anomaly_id",
            "value",
            "threshold",
            "message",
            "metric",
            "started_at_ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        "gpu_rollups_1m" => ["host", "gpu", "source", "count"]
            .iter()
            .map(|s| s.to_string())
            .chain(
                metrics
                    .flat_map(|m| ["min", "mean", "max", "last"].map(|stat| format!("{m}_{stat}"))),
            )
            .collect(),
        _ => return None,
    };
    Some(names)
}

/// Quoted identifiers of a SELECT query that are neither a measurement, a tag or field
/// of the measurement(s) it reads, nor an alias it declares: typos that would silently
/// return empty columns.
pub fn unknown_identifiers(query: &str) -> Vec<String> {
    let idents = quoted_identifiers(query);
    let measurements: Vec<&str> = MEASUREMENTS
        .iter()
        .copied()
        .filter(|m| idents.iter().any(|i| i == m))
        .collect();
    let mut known: BTreeSet<String> = aliases(query);
    known.extend(MEASUREMENTS.iter().map(|m| m.to_string()));
    for m in &measurements {
        known.extend(known_columns(m).unwrap_or_default());
    }
    let mut out: Vec<String> = idents.into_iter().filter(|i| !known.contains(i)).collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: i64 = 1_786_042_400_000;
    const TO: i64 = 1_786_046_000_000;

    fn vars(pairs: &[(&str, VarValue)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn sub(q: &str, v: &Vars) -> String {
        substitute(q, v, FROM, TO, Duration::from_secs(10))
    }

    #[test]
    fn time_filter_and_intervals() {
        let q = "SELECT mean(\"gpu_temp_c\") FROM \"gpu_samples\" WHERE $timeFilter \
                 GROUP BY time($__interval) fill(null)";
        assert_eq!(
            sub(q, &Vars::new()),
            "SELECT mean(\"gpu_temp_c\") FROM \"gpu_samples\" WHERE \
             time >= 1786042400000ms and time <= 1786046000000ms \
             GROUP BY time(10s) fill(null)"
        );
        let q = "$interval|$__interval_ms|${__interval}|$__from|${__to}|$__range|$__range_s|$__range_ms";
        assert_eq!(
            substitute(q, &Vars::new(), FROM, TO, Duration::from_millis(1500)),
            "1500ms|1500|1500ms|1786042400000|1786046000000|1h|3600|3600000"
        );
        assert_eq!(
            substitute(
                "[[__interval]]",
                &Vars::new(),
                FROM,
                TO,
                Duration::from_secs(60)
            ),
            "1m"
        );
    }

    #[test]
    fn formats_and_parses_intervals() {
        for (ms, s) in [
            (500, "500ms"),
            (1000, "1s"),
            (10_000, "10s"),
            (90_000, "90s"),
            (60_000, "1m"),
            (300_000, "5m"),
            (7_200_000, "2h"),
            (86_400_000, "1d"),
            (1_500, "1500ms"),
        ] {
            assert_eq!(format_interval(Duration::from_millis(ms)), s);
            assert_eq!(parse_interval(s), Some(Duration::from_millis(ms)), "{s}");
        }
        assert_eq!(parse_interval("1w"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_interval("m"), None);
        assert_eq!(parse_interval("10x"), None);
    }

    #[test]
    fn variables_in_regexes_are_escaped() {
        let v = vars(&[
            ("host", VarValue::one("rig-01.lab (a)")),
            ("gpu", VarValue::one("gpu/0")),
        ]);
        assert_eq!(
            sub("\"host\" =~ /^$host$/ AND \"gpu\" =~ /^$gpu$/", &v),
            "\"host\" =~ /^rig-01\\.lab \\(a\\)$/ AND \"gpu\" =~ /^gpu\\/0$/"
        );
        // No blanks around the operator, negated match, every reference form.
        assert_eq!(
            sub("host!~/^${host}$/", &v),
            "host!~/^rig-01\\.lab \\(a\\)$/"
        );
        assert_eq!(
            sub("host=~/^[[host]]$/", &v),
            "host=~/^rig-01\\.lab \\(a\\)$/"
        );
        // `:regex` escapes outside a regex literal too.
        assert_eq!(sub("${host:regex}", &v), "rig-01\\.lab \\(a\\)");
    }

    #[test]
    fn several_values_become_an_alternation() {
        let v = vars(&[(
            "gpu",
            VarValue::Values(vec!["gpu0".into(), "gpu.1".into(), "a|b".into()]),
        )]);
        assert_eq!(
            sub("\"gpu\" =~ /^$gpu$/", &v),
            "\"gpu\" =~ /^(gpu0|gpu\\.1|a\\|b)$/"
        );
    }

    #[test]
    fn all_value_goes_in_verbatim() {
        let v = vars(&[("host", VarValue::All(".*".into()))]);
        assert_eq!(sub("\"host\" =~ /^$host$/", &v), "\"host\" =~ /^.*$/");
    }

    #[test]
    fn values_outside_regexes_are_not_regex_escaped() {
        let v = vars(&[("host", VarValue::one("rig.1's"))]);
        assert_eq!(sub("\"host\" = '$host'", &v), "\"host\" = 'rig.1\\'s'");
        assert_eq!(sub("$host", &v), "rig.1's");
        assert_eq!(sub("${host:raw}", &v), "rig.1's");
    }

    #[test]
    fn unknown_and_longer_names_are_left_alone() {
        let v = vars(&[("host", VarValue::one("h1"))]);
        // `$hostname` is another variable, not `$host` + "name".
        assert_eq!(sub("$hostname $host", &v), "$hostname h1");
        assert_eq!(sub("$tag_host $col", &v), "$tag_host $col");
        // Regex anchors and a lone `$` stay.
        assert_eq!(sub("/^a$/ $ 5", &v), "/^a$/ $ 5");
        // A division after a regex is not a regex.
        assert_eq!(
            sub("x =~ /^$host$/ AND (\"perf_cap\" & 2) / 2", &v),
            "x =~ /^h1$/ AND (\"perf_cap\" & 2) / 2"
        );
    }

    #[test]
    fn slashes_inside_strings_do_not_open_regexes() {
        let v = vars(&[("host", VarValue::one("a.b"))]);
        assert_eq!(
            sub("\"x\" = 'a =~ /' AND \"host\" =~ /^$host$/", &v),
            "\"x\" = 'a =~ /' AND \"host\" =~ /^a\\.b$/"
        );
        // An escaped slash inside a regex does not end it.
        assert_eq!(
            sub("\"host\" =~ /\\/$host$/", &v),
            "\"host\" =~ /\\/a\\.b$/"
        );
    }

    #[test]
    fn referenced_variables_leave_out_builtins() {
        let q = "SELECT x FROM y WHERE $timeFilter AND h =~ /^$host$/ AND g =~ /^${gpu}$/ \
                 AND r =~ /^[[rule]]$/ GROUP BY time($__interval), time($interval)";
        let got: Vec<String> = referenced_variables(q).into_iter().collect();
        assert_eq!(got, ["gpu", "host", "rule"]);
    }

    #[test]
    fn rules_accept_good_queries() {
        for q in [
            "SELECT mean(\"a\") FROM \"gpu_samples\" WHERE $timeFilter GROUP BY time($__interval), \"host\" fill(null)",
            "SELECT last(\"a\") FROM \"gpu_samples\" WHERE $timeFilter GROUP BY \"host\", \"gpu\"",
            "SELECT \"a\", \"state\" FROM (SELECT last(\"a\") AS \"a\", \"state\" FROM \"gpu_anomalies\" \
             WHERE $timeFilter GROUP BY \"host\") WHERE $timeFilter",
            "SELECT sum(\"p\") FROM (SELECT mean(\"x\") AS \"p\" FROM \"gpu_samples\" WHERE $timeFilter \
             GROUP BY time($__interval), \"gpu\" fill(none)) WHERE $timeFilter GROUP BY time($__interval) fill(null)",
            "SHOW TAG VALUES FROM \"gpu_samples\" WITH KEY = \"host\"",
            "SELECT \"a\" FROM \"gpu_anomalies\" WHERE $timeFilter ORDER BY time DESC LIMIT 5",
            "SELECT \"message\" FROM \"gpu_anomalies\" WHERE $timeFilter AND \"message\" = 'max(x) now() time > 5'",
        ] {
            assert_eq!(query_problems(q), Vec::<String>::new(), "{q}");
        }
    }

    #[test]
    fn rules_reject_hard_coded_ranges_and_buckets() {
        let cases = [
            (
                "SELECT mean(\"a\") FROM \"m\" WHERE time > now() - 6h GROUP BY time($__interval) fill(null)",
                "now()",
            ),
            (
                "SELECT \"a\" FROM \"m\" WHERE time >= 1786042400000ms",
                "$timeFilter",
            ),
            (
                "SELECT \"a\" FROM \"m\" WHERE $timeFilter AND time < 1786042400000ms",
                "compares time",
            ),
            (
                "SELECT mean(\"a\") FROM \"m\" WHERE $timeFilter GROUP BY time(1m) fill(null)",
                "fixed bucket",
            ),
            (
                "SELECT mean(\"a\") FROM \"m\" WHERE $timeFilter GROUP BY time($__interval)",
                "fill",
            ),
            (
                "SELECT mean(\"a\") FROM \"m\" WHERE $timeFilter GROUP BY time($__interval) fill(0)",
                "fill",
            ),
            (
                "SELECT count(\"a\") FROM \"m\" WHERE $timeFilter GROUP BY \"host\"",
                "count()",
            ),
            (
                "SELECT last(\"a\") FROM (SELECT max(\"a\") AS \"a\" FROM \"m\") WHERE $timeFilter",
                "$timeFilter",
            ),
            (
                "SELECT last(\"a\") FROM (SELECT max(\"a\") AS \"a\" FROM \"m\" WHERE $timeFilter) WHERE $timeFilter",
                "max()",
            ),
            ("DROP MEASUREMENT \"m\"", "neither"),
        ];
        for (q, want) in cases {
            let problems = query_problems(q);
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "{q}: expected a problem mentioning {want}, got {problems:?}"
            );
        }
    }

    #[test]
    fn identifiers_are_checked_against_the_schema() {
        let q = "SELECT max(\"t\") AS \"Thermal\" FROM (SELECT (\"perf_cap\" & 2) / 2 AS \"t\" \
                 FROM \"gpu_samples\" WHERE $timeFilter AND \"host\" =~ /^$host$/) WHERE $timeFilter \
                 GROUP BY time($__interval), \"gpu\" fill(null)";
        assert_eq!(unknown_identifiers(q), Vec::<String>::new());
        let q = "SELECT mean(\"gpu_tmp_c\") FROM \"gpu_samples\" WHERE $timeFilter";
        assert_eq!(unknown_identifiers(q), ["gpu_tmp_c"]);
        let q = "SELECT max(\"gpu_temp_c_max\"), mean(\"gpu_temp_c\") FROM \"gpu_rollups_1m\"";
        assert_eq!(unknown_identifiers(q), ["gpu_temp_c"]);
        assert_eq!(
            quoted_identifiers("SELECT \"a\\\"b\" FROM \"m\" WHERE x = '\"no\"' AND y =~ /\"no\"/"),
            ["a\"b", "m"]
        );
    }

    // ------------------------------------------------------------ the real dashboards

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
