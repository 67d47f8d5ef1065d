//! Grafana's template-variable substitution: what its InfluxDB datasource sends for a
//! query template, a time range, an interval and the variables' values (the table in
//! the [module docs](super)), and the interval notation it uses (`10s`, `1m`, `500ms`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::influxql::{Context, Lexed, TokenKind, VarRef};

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

/// Replaces Grafana's variables in `query` as Grafana's InfluxDB datasource does before
/// sending it (see the module docs): `$timeFilter` becomes
/// `time >= {from_ms}ms and time <= {to_ms}ms`, `$__interval` the formatted `interval`,
/// user variables their values from `vars` (regex-escaped inside `/.../`, quote-escaped
/// inside `'...'` and `"..."`). Unknown variables are left as they are.
pub fn substitute(
    query: &str,
    vars: &Vars,
    from_ms: i64,
    to_ms: i64,
    interval: Duration,
) -> String {
    let lexed = Lexed::new(query);
    let mut out = String::with_capacity(query.len() + 64);
    for t in &lexed.tokens {
        if let TokenKind::Var(r) = &t.kind
            && let Some(text) = resolve(r, t.context, vars, from_ms, to_ms, interval)
        {
            out.push_str(&text);
        } else {
            out.extend(lexed.text(t));
        }
    }
    out
}

/// The text that replaces one reference found in `context`, or `None` for an unknown
/// variable.
fn resolve(
    r: &VarRef,
    context: Context,
    vars: &Vars,
    from_ms: i64,
    to_ms: i64,
    interval: Duration,
) -> Option<String> {
    let range_ms = to_ms.saturating_sub(from_ms).max(0);
    let fmt = r.fmt.as_deref();
    Some(match r.name.as_str() {
        "timeFilter" | "__timeFilter" => format!("time >= {from_ms}ms and time <= {to_ms}ms"),
        "__interval" | "interval" => format_interval(interval),
        "__interval_ms" => interval.as_millis().to_string(),
        "__from" => from_ms.to_string(),
        "__to" => to_ms.to_string(),
        "__range" => format_interval(Duration::from_millis(range_ms as u64)),
        "__range_s" => (range_ms / 1000).to_string(),
        "__range_ms" => range_ms.to_string(),
        _ => {
            let value = vars.get(&r.name)?;
            let regex = context == Context::Regex || fmt == Some("regex");
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
                    let quote = match context {
                        Context::Str => Some('\''),
                        Context::Ident => Some('"'),
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
    Lexed::new(query)
        .var_refs()
        .map(|r| &r.name)
        .filter(|n| !n.starts_with("__") && *n != "timeFilter" && *n != "interval")
        .cloned()
        .collect()
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
}
