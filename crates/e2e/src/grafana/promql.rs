//! PromQL as the pipeline dashboard writes it, with Grafana's variable references in it:
//! substitution the way Grafana's Prometheus datasource does it ([`substitute_promql`]),
//! the metric selectors of an expression ([`metric_selectors`]), the rules every
//! dashboard expression follows ([`promql_problems`]) and the `label_values(...)` form of
//! variable queries ([`LabelValues`]).
//!
//! | in the dashboard | sent to Prometheus |
//! |---|---|
//! | `$__rate_interval` | the rate window, e.g. `1m` |
//! | `$__interval`, `$__interval_ms` | the step |
//! | `$__range`, `$__range_s`, `$__range_ms` | the range's length |
//! | `$__from`, `$__to` | the range's ends, epoch milliseconds |
//! | `"$job"` (multi-value) | `"(a|b)"`, each value regex-escaped for a PromQL string |
//!
//! The scanner knows PromQL's string literals (`"..."`, `'...'`, `` `...` ``), label
//! matcher blocks (`{...}`), range brackets (`[...]`) and the label lists after `by`,
//! `without`, `on`, `ignoring`, `group_left` and `group_right`, which is all the
//! dashboards' expressions need; it is not a full parser.

use std::time::Duration;

use super::influxql::var_ref;
use super::variables::{VarValue, Vars, format_interval};

/// Time settings of one evaluation: what Grafana fills in for its built-in variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromTime {
    /// Start of the dashboard's range, epoch milliseconds.
    pub from_ms: i64,
    /// End of the dashboard's range, epoch milliseconds.
    pub to_ms: i64,
    /// The step (`$__interval`).
    pub interval: Duration,
    /// The rate window (`$__rate_interval`).
    pub rate_interval: Duration,
}

/// Escapes a value for a regex inside a PromQL string literal, as Grafana's Prometheus
/// datasource does for multi-value variables: every regex metacharacter gets a backslash,
/// and every backslash is doubled for the string literal (`a.b` → `a\\.b`).
pub fn promql_regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\\\\\"),
            '^' | '$' | '.' | '|' | '?' | '*' | '+' | '(' | ')' | '[' | ']' | '{' | '}' => {
                out.push_str("\\\\");
                out.push(c);
            }
            '"' => out.push_str("\\\""),
            _ => out.push(c),
        }
    }
    out
}

/// Replaces Grafana's variables in a PromQL expression (see the module table); user
/// variables take their values from `vars` (regex-escaped and joined as `(a|b)`; "All"
/// with a custom all value goes in verbatim). Unknown variables are left as they are.
pub fn substitute_promql(expr: &str, vars: &Vars, t: PromTime) -> String {
    let chars: Vec<char> = expr.chars().collect();
    let range_ms = t.to_ms.saturating_sub(t.from_ms).max(0);
    let mut out = String::with_capacity(expr.len() + 64);
    let mut i = 0;
    while i < chars.len() {
        let Some((r, len)) = var_ref(&chars[i..]) else {
            out.push(chars[i]);
            i += 1;
            continue;
        };
        let text = match r.name.as_str() {
            "__rate_interval" => Some(format_interval(t.rate_interval)),
            "__interval" | "interval" => Some(format_interval(t.interval)),
            "__interval_ms" => Some(t.interval.as_millis().to_string()),
            "__range" => Some(format_interval(Duration::from_millis(range_ms as u64))),
            "__range_s" => Some((range_ms / 1000).to_string()),
            "__range_ms" => Some(range_ms.to_string()),
            "__from" => Some(t.from_ms.to_string()),
            "__to" => Some(t.to_ms.to_string()),
            name => vars.get(name).map(|v| match v {
                VarValue::All(all) => all.clone(),
                VarValue::Values(vs) => {
                    let escaped: Vec<String> = vs.iter().map(|v| promql_regex_escape(v)).collect();
                    match escaped.len() {
                        1 => escaped.into_iter().next().unwrap_or_default(),
                        _ => format!("({})", escaped.join("|")),
                    }
                }
            }),
        };
        match text {
            Some(text) => out.push_str(&text),
            None => out.extend(&chars[i..i + len]),
        }
        i += len;
    }
    out
}

/// One label matcher of a selector, e.g. `job=~"$job"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    /// Label name.
    pub label: String,
    /// `=`, `!=`, `=~` or `!~`.
    pub op: String,
    /// The string's content, as written (escapes kept).
    pub value: String,
}

/// A metric selector of an expression: `name{matchers}`, or `name` alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The metric name (empty for a bare `{...}`).
    pub name: String,
    /// Its label matchers, in order.
    pub matchers: Vec<Matcher>,
    /// The name of the function the selector is (directly) an argument of, if any.
    pub function: Option<String>,
    /// Whether a range `[...]` follows the selector.
    pub range: Option<String>,
}

impl Selector {
    /// Whether it has exactly the matcher `label op "value"`.
    pub fn has(&self, label: &str, op: &str, value: &str) -> bool {
        self.matchers
            .iter()
            .any(|m| m.label == label && m.op == op && m.value == value)
    }
}

/// Keywords followed by a parenthesised label list.
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Aggregation operators: a `by`/`without` clause may stand between one and its `(`.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Keywords and operators that look like names.
const WORD_OPERATORS: &[&str] = &["bool", "and", "or", "unless", "offset", "atan2"];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Index after the string literal that starts at `i` (its quote), or the end.
fn skip_string(chars: &[char], i: usize) -> usize {
    let quote = chars[i];
    let mut j = i + 1;
    while j < chars.len() {
        match chars[j] {
            '\\' if quote != '`' => j += 2,
            c if c == quote => return j + 1,
            _ => j += 1,
        }
    }
    chars.len()
}

/// Index of the character that closes the bracket opened at `i` (strings skipped), or the
/// end.
fn matching(chars: &[char], i: usize) -> usize {
    let (open, close) = match chars[i] {
        '(' => ('(', ')'),
        '[' => ('[', ']'),
        _ => ('{', '}'),
    };
    let mut depth = 0usize;
    let mut j = i;
    while j < chars.len() {
        match chars[j] {
            '"' | '\'' | '`' => {
                j = skip_string(chars, j);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
        j += 1;
    }
    chars.len()
}

fn skip_blanks(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

/// Parses the inside of `{...}`.
fn parse_matchers(inner: &[char]) -> Vec<Matcher> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < inner.len() {
        i = skip_blanks(inner, i);
        let start = i;
        while i < inner.len() && is_ident(inner[i]) {
            i += 1;
        }
        let label: String = inner[start..i].iter().collect();
        i = skip_blanks(inner, i);
        let op_start = i;
        while i < inner.len() && matches!(inner[i], '=' | '!' | '~') {
            i += 1;
        }
        let op: String = inner[op_start..i].iter().collect();
        i = skip_blanks(inner, i);
        let value = if i < inner.len() && matches!(inner[i], '"' | '\'' | '`') {
            let end = skip_string(inner, i);
            let v: String = inner[i + 1..end.saturating_sub(1).max(i + 1)]
                .iter()
                .collect();
            i = end;
            v
        } else {
            String::new()
        };
        if !label.is_empty() || !op.is_empty() {
            out.push(Matcher { label, op, value });
        }
        i = skip_blanks(inner, i);
        if i < inner.len() {
            // `,` or something unexpected: move on either way.
            i += 1;
        }
    }
    out
}

/// The metric selectors of an expression, in order.
pub fn metric_selectors(expr: &str) -> Vec<Selector> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    // Function names of the open parentheses, innermost last (`None`: plain grouping).
    let mut calls: Vec<Option<String>> = Vec::new();
    let mut pending_function: Option<String> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some((_, len)) = var_ref(&chars[i..]) {
            i += len;
            continue;
        }
        match c {
            '"' | '\'' | '`' => {
                i = skip_string(&chars, i);
                continue;
            }
            '[' => {
                i = matching(&chars, i) + 1;
                continue;
            }
            '(' => {
                calls.push(pending_function.take());
                i += 1;
                continue;
            }
            ')' => {
                calls.pop();
                i += 1;
                continue;
            }
            '{' => {
                let end = matching(&chars, i);
                out.push(selector_at(&chars, String::new(), i, end, &calls));
                i = end + 1;
                continue;
            }
            _ => {}
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // A number (0.99, 1e3): never a name.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        if !is_ident_start(c) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let next = skip_blanks(&chars, i);
        let next_char = chars.get(next).copied();
        if LABEL_LIST_KEYWORDS.contains(&word.as_str()) {
            if next_char == Some('(') {
                i = matching(&chars, next) + 1;
            }
            continue;
        }
        if WORD_OPERATORS.contains(&word.as_str()) {
            continue;
        }
        if next_char == Some('(') || AGGREGATIONS.contains(&word.as_str()) {
            pending_function = Some(word);
            continue;
        }
        if next_char == Some('{') {
            let end = matching(&chars, next);
            out.push(selector_at(&chars, word, next, end, &calls));
            i = end + 1;
        } else {
            out.push(Selector {
                name: word,
                matchers: Vec::new(),
                function: calls.last().cloned().flatten(),
                range: range_after(&chars, i),
            });
        }
    }
    out
}

fn selector_at(
    chars: &[char],
    name: String,
    open: usize,
    close: usize,
    calls: &[Option<String>],
) -> Selector {
    let inner = &chars[(open + 1).min(chars.len())..close.min(chars.len())];
    Selector {
        name,
        matchers: parse_matchers(inner),
        function: calls.last().cloned().flatten(),
        range: range_after(chars, close + 1),
    }
}

/// The content of a `[...]` right after `i` (blanks allowed), if any.
fn range_after(chars: &[char], i: usize) -> Option<String> {
    let j = skip_blanks(chars, i);
    if chars.get(j) != Some(&'[') {
        return None;
    }
    let end = matching(chars, j);
    Some(chars[j + 1..end.min(chars.len())].iter().collect())
}

/// Prefixes of the metric names gpustream's services export.
pub const GPUSTREAM_PREFIXES: &[&str] = &[
    "gpustream_",
    "stream_processor_",
    "consumer_influx_",
    "process_",
];

/// Functions whose argument must be a counter (a `_total`, or a histogram's `_bucket`,
/// `_count`, `_sum` series).
const COUNTER_FUNCTIONS: &[&str] = &["rate", "irate", "increase"];

/// Everything wrong with one dashboard PromQL expression (empty when it follows the rules):
///
/// - every selector names a metric of gpustream's vocabulary ([`GPUSTREAM_PREFIXES`]) and
///   is scoped by the dashboard's variables: `job=~"$job"` and `instance=~"$instance"`,
///   and for the shared `gpustream_*` vocabulary also `component=~"$component"`;
/// - a range is `[$__rate_interval]` (or `[$__range]` for totals over the range): the
///   window comes only from Grafana;
/// - `rate`, `irate` and `increase` read counters only;
/// - no `offset` or `@`: no hard-coded time.
pub fn promql_problems(expr: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let selectors = metric_selectors(expr);
    if selectors.is_empty() {
        problems.push("no metric selector".to_string());
    }
    for s in &selectors {
        if !GPUSTREAM_PREFIXES.iter().any(|p| s.name.starts_with(p)) {
            problems.push(format!(
                "`{}` is not a gpustream metric (prefixes {GPUSTREAM_PREFIXES:?})",
                s.name
            ));
        }
        let mut scope = vec!["job", "instance"];
        if s.name.starts_with("gpustream_") {
            scope.push("component");
        }
        for label in scope {
            if !s.has(label, "=~", &format!("${label}")) {
                problems.push(format!("`{}` lacks {label}=~\"${label}\"", s.name));
            }
        }
        if let Some(range) = &s.range
            && range != "$__rate_interval"
            && range != "$__range"
        {
            problems.push(format!(
                "`{}[{range}]`: use [$__rate_interval] or [$__range]",
                s.name
            ));
        }
        if let Some(f) = &s.function
            && COUNTER_FUNCTIONS.contains(&f.as_str())
            && !["_total", "_bucket", "_count", "_sum"]
                .iter()
                .any(|suffix| s.name.ends_with(suffix))
        {
            problems.push(format!("{f}() of `{}`, which is not a counter", s.name));
        }
    }
    let masked = mask_strings(expr);
    if masked.contains('@') {
        problems.push("uses @: the time comes from Grafana".to_string());
    }
    let words: Vec<&str> = masked
        .split(|c: char| !is_ident(c))
        .filter(|w| !w.is_empty())
        .collect();
    if words.contains(&"offset") {
        problems.push("uses offset: the time comes from Grafana".to_string());
    }
    problems
}

/// The expression with the content of its string literals blanked out.
fn mask_strings(expr: &str) -> String {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = chars.clone();
    let mut i = 0;
    while i < chars.len() {
        if matches!(chars[i], '"' | '\'' | '`') {
            let end = skip_string(&chars, i);
            for c in out.iter_mut().take(end.saturating_sub(1)).skip(i + 1) {
                *c = ' ';
            }
            i = end;
        } else {
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// A `label_values([selector, ]label)` variable query: what Grafana's Prometheus
/// datasource answers from `/api/v1/label/<label>/values?match[]=<selector>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelValues {
    /// The series selector, if any.
    pub selector: Option<String>,
    /// The label whose values are offered.
    pub label: String,
}

impl LabelValues {
    /// Parses `label_values(...)`; `None` for any other query.
    pub fn parse(query: &str) -> Option<LabelValues> {
        let inner = query
            .trim()
            .strip_prefix("label_values")?
            .trim_start()
            .strip_prefix('(')?
            .strip_suffix(')')?;
        // The label follows the last comma outside braces and strings.
        let chars: Vec<char> = inner.chars().collect();
        let mut split = None;
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '"' | '\'' | '`' => {
                    i = skip_string(&chars, i);
                    continue;
                }
                '{' | '(' | '[' => {
                    i = matching(&chars, i) + 1;
                    continue;
                }
                ',' => split = Some(i),
                _ => {}
            }
            i += 1;
        }
        let (selector, label) = match split {
            Some(at) => (
                Some(chars[..at].iter().collect::<String>().trim().to_string()),
                chars[at + 1..].iter().collect::<String>(),
            ),
            None => (None, inner.to_string()),
        };
        let label = label.trim().to_string();
        (!label.is_empty() && label.chars().all(is_ident))
            .then_some(LabelValues { selector, label })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: PromTime = PromTime {
        from_ms: 1_786_042_400_000,
        to_ms: 1_786_046_000_000,
        interval: Duration::from_secs(15),
        rate_interval: Duration::from_secs(60),
    };

    fn vars(pairs: &[(&str, VarValue)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn substitution_fills_builtins_and_escapes_values_for_a_promql_regex() {
        let v = vars(&[
            ("job", VarValue::Values(vec!["a.b".into(), "c|d".into()])),
            ("instance", VarValue::All(".*".into())),
            ("component", VarValue::one("stream-processor")),
            ("odd", VarValue::one("x\\y\"z")),
        ]);
        assert_eq!(
            substitute_promql(
                "sum(rate(m_total{job=~\"$job\", instance=~\"${instance}\", component=~\"[[component]]\"}[$__rate_interval]))",
                &v,
                T
            ),
            "sum(rate(m_total{job=~\"(a\\\\.b|c\\\\|d)\", instance=~\".*\", component=~\"stream-processor\"}[1m]))"
        );
        assert_eq!(
            substitute_promql(
                "$__interval $__interval_ms $__range $__range_s $__range_ms $__from $__to",
                &v,
                T
            ),
            "15s 15000 1h 3600 3600000 1786042400000 1786046000000"
        );
        // A backslash becomes four (regex escape, then string escape); a quote is escaped.
        assert_eq!(substitute_promql("\"$odd\"", &v, T), "\"x\\\\\\\\y\\\"z\"");
        // Unknown and longer names stay.
        assert_eq!(
            substitute_promql("$jobs $nope $job", &v, T),
            "$jobs $nope (a\\\\.b|c\\\\|d)"
        );
    }

    #[test]
    fn selectors_are_found_with_their_matchers_function_and_range() {
        let e = "histogram_quantile(0.99, sum by (component, le) (rate(gpustream_write_seconds_bucket{job=~\"$job\", instance=~\"$instance\", component=~\"a,b}\"}[$__rate_interval]))) \
                 / on (job) group_left (component) process_open_fds offset 5m and {__name__=\"x\"}";
        let s = metric_selectors(e);
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["gpustream_write_seconds_bucket", "process_open_fds", ""]
        );
        assert_eq!(s[0].function.as_deref(), Some("rate"));
        assert_eq!(s[0].range.as_deref(), Some("$__rate_interval"));
        assert_eq!(
            s[0].matchers,
            [
                Matcher {
                    label: "job".into(),
                    op: "=~".into(),
                    value: "$job".into()
                },
                Matcher {
                    label: "instance".into(),
                    op: "=~".into(),
                    value: "$instance".into()
                },
                Matcher {
                    label: "component".into(),
                    op: "=~".into(),
                    value: "a,b}".into()
                },
            ]
        );
        assert_eq!(s[1].function, None);
        assert!(s[1].matchers.is_empty());
        assert_eq!(s[2].matchers[0].value, "x");
    }

    #[test]
    fn rules_accept_the_dashboard_style() {
        for e in [
            "sum by (component) (rate(gpustream_records_in_total{job=~\"$job\", instance=~\"$instance\", component=~\"$component\"}[$__rate_interval]))",
            "sum(increase(gpustream_dead_lettered_total{job=~\"$job\", instance=~\"$instance\", component=~\"$component\"}[$__range]))",
            "process_resident_memory_bytes{job=~\"$job\", instance=~\"$instance\"} * on (job, instance) group_left (component) \
             gpustream_build_info{job=~\"$job\", instance=~\"$instance\", component=~\"$component\"}",
            "sum by (table) (rate(stream_processor_delta_commits_total{job=~\"$job\", instance=~\"$instance\"}[$__rate_interval]))",
        ] {
            assert_eq!(promql_problems(e), Vec::<String>::new(), "{e}");
        }
    }

    #[test]
    fn rules_reject_unscoped_fixed_windows_gauges_in_rate_and_time_shifts() {
        let scoped = "{job=~\"$job\", instance=~\"$instance\", component=~\"$component\"}";
        let cases = [
            (
                "rate(gpustream_records_in_total[5m])".to_string(),
                "lacks job",
            ),
            (
                "gpustream_paused{job=~\"$job\", instance=~\"$instance\"}".to_string(),
                "lacks component",
            ),
            (
                format!("rate(gpustream_records_in_total{scoped}[5m])"),
                "[5m]",
            ),
            (
                format!("rate(gpustream_paused{scoped}[$__rate_interval])"),
                "not a counter",
            ),
            (format!("gpustream_paused{scoped} offset 1h"), "offset"),
            (format!("gpustream_paused{scoped} @ 1786042400"), "@"),
            (
                "up{job=~\"$job\", instance=~\"$instance\"}".to_string(),
                "not a gpustream metric",
            ),
            ("1 + 1".to_string(), "no metric selector"),
        ];
        for (e, want) in cases {
            let problems = promql_problems(&e);
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "{e}: expected a problem mentioning {want}, got {problems:?}"
            );
        }
        // Words inside strings are not operators.
        assert!(
            promql_problems(
                "gpustream_paused{job=~\"$job\", instance=~\"$instance\", component=~\"offset @\"}"
            )
            .iter()
            .all(|p| !p.contains("uses")),
        );
    }

    #[test]
    fn label_values_queries_parse() {
        assert_eq!(
            LabelValues::parse(
                "label_values(gpustream_build_info{job=~\"$job\", x=\"a,b\"}, instance)"
            ),
            Some(LabelValues {
                selector: Some("gpustream_build_info{job=~\"$job\", x=\"a,b\"}".into()),
                label: "instance".into(),
            })
        );
        assert_eq!(
            LabelValues::parse(" label_values( job ) "),
            Some(LabelValues {
                selector: None,
                label: "job".into()
            })
        );
        assert_eq!(LabelValues::parse("query_result(up)"), None);
        assert_eq!(LabelValues::parse("label_values(up, )"), None);
    }
}
