//! The detector's scenarios: every `tests/scenarios/*.scenario` file is a rules file, a
//! series of samples and the anomaly transitions they must cause. One test runs them all
//! and reports each mismatch as `file:line`.
//!
//! # The format
//!
//! One directive per line; `#` starts a comment. Samples are fed to one detector in file
//! order; an `expect` block judges the transitions caused by the `at` lines just before
//! it (several blocks in a row judge the same ones).
//!
//! ```text
//! rules default                      the built-in rules (rules.default.toml)
//! rules                              or the TOML that follows, up to a line `end`
//! [[threshold]]
//! name = "t"
//! ...
//! end
//! reset                              a fresh detector with the same rules
//!
//! at 0..5 7: gpu_temp_c = 50 + i * 2, gpu_load_pct = 90
//! ```
//!
//! `at POINTS: FIELDS` feeds one sample per point: `N` or `A..B` (B excluded), several
//! separated by spaces; the sample at point `i` has event time `i` seconds after the
//! test kit's `t0` and sequence number `i`, host `h`, GPU `g`, session `s` and event id
//! `e{i}`, until a field says otherwise. Fields, separated by commas:
//!
//! - `METRIC = EXPR`: a catalogue column (`gpu_temp_c`, `perf_cap`, ...) set to an
//!   arithmetic expression of `i` (`+ - * / %`, parentheses, numbers such as `1e6`), or
//!   to `[v0 v1 ...]`, the values of the line's points in order;
//! - `session = NAME`, `gpu = NAME`; `gpus = A B C`: one sample per GPU per point, in
//!   that order;
//! - `id = TEMPLATE`: the event id, with `{i}` and `{gpu}` replaced;
//! - `unsupported = METRIC ...`: sensors marked unsupported.
//!
//! ```text
//! expect [some|first] [only RULE]    then one transition per line, indented
//!   firing   t  e1  episode=1
//!   resolved t  e4  episode=1 severity=warning
//! expect nothing                     no transition at all
//! replay                             a fresh detector given every sample since `rules`
//!                                    or `reset` gives exactly the same events
//! ```
//!
//! `expect` alone: exactly these transitions, in this order. `some`: each line matches at
//! least one of them. `first`: each line matches the first transition of its rule. `only
//! RULE` first keeps the transitions of that rule alone. A line is the state, the rule, the
//! sample that caused it (its event id) if given, then any of `severity=`, `gpu=`,
//! `time=` (event time, seconds after `t0`), `started=` (likewise, when the episode fired)
//! and `episode=LABEL`: lines of one label share one anomaly id (with distinct event ids),
//! lines of different labels have different ones.
//!
//! Every detector kind must have a rule named in some expected transition, so a new kind
//! comes with its scenario.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gpustream::{AnomalyEvent, AnomalyState, Metric, Sample};
use gpustream_test_kit::SampleBuilder;
use gpustream_test_kit::samples::t0;
use stream_processor::detect::Detector;
use stream_processor::rules::{RuleKind, RuleSet};

#[test]
fn detect_scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "scenario"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenarios in {}", dir.display());
    let mut failures = Vec::new();
    let mut checks = 0;
    let mut kinds = std::collections::BTreeSet::new();
    for f in &files {
        let shown = format!(
            "crates/stream-processor/tests/scenarios/{}",
            f.file_name().unwrap().to_string_lossy()
        );
        let text = std::fs::read_to_string(f).unwrap();
        match run_file(&shown, &text, &mut kinds) {
            Ok(n) => checks += n,
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenario files failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
    // Each file must check something: a scenario without expectations cannot fail.
    assert!(
        checks >= files.len(),
        "{checks} checks in {} files",
        files.len()
    );
    let untested: Vec<&str> = RuleKind::TABLES
        .iter()
        .copied()
        .filter(|t| !kinds.contains(t))
        .collect();
    assert!(
        untested.is_empty(),
        "detector kinds no scenario expects a transition of: {untested:?}"
    );
}

/// A detector being fed, with what it was fed since its rules were set.
struct Run {
    rules: RuleSet,
    detector: Detector,
    samples: Vec<Sample>,
    events: Vec<AnomalyEvent>,
    /// Transitions of the current batch of `at` lines.
    batch: Vec<AnomalyEvent>,
    /// Whether the last directive was an expectation (the next `at` starts a new batch).
    judged: bool,
}

impl Run {
    fn new(rules: RuleSet) -> Run {
        Run {
            detector: Detector::new(rules.clone()),
            rules,
            samples: Vec::new(),
            events: Vec::new(),
            batch: Vec::new(),
            judged: false,
        }
    }
}

/// Runs one file; the number of checks it made, or every failure as `file:line: ...`.
/// `kinds` collects the kinds of the rules its expectations name.
fn run_file(
    path: &str,
    text: &str,
    kinds: &mut std::collections::BTreeSet<&'static str>,
) -> Result<usize, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut run: Option<Run> = None;
    let mut checks = 0;
    let mut failures: Vec<String> = Vec::new();
    let mut n = 0;
    while n < lines.len() {
        let at = format!("{path}:{}", n + 1);
        let line = strip_comment(lines[n]).trim();
        n += 1;
        if line.is_empty() {
            continue;
        }
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        match word {
            "rules" if rest == "default" => run = Some(Run::new(RuleSet::defaults())),
            "rules" if rest.is_empty() => {
                let mut toml = String::new();
                while n < lines.len() && lines[n].trim() != "end" {
                    toml.push_str(lines[n]);
                    toml.push('\n');
                    n += 1;
                }
                if n == lines.len() {
                    return Err(format!("{at}: `rules` without `end`"));
                }
                n += 1;
                let rules = RuleSet::from_toml(&toml, &at).map_err(|e| format!("{at}: {e}"))?;
                run = Some(Run::new(rules));
            }
            "reset" => {
                let r = run
                    .as_ref()
                    .ok_or(format!("{at}: `reset` before `rules`"))?;
                run = Some(Run::new(r.rules.clone()));
            }
            "at" => {
                let r = run
                    .as_mut()
                    .ok_or(format!("{at}: samples before `rules`"))?;
                let samples = parse_samples(rest).map_err(|e| format!("{at}: {e}"))?;
                if std::mem::take(&mut r.judged) {
                    r.batch.clear();
                }
                let mut out = Vec::new();
                for s in samples {
                    r.detector.observe(&s, &mut out);
                    r.samples.push(s);
                }
                r.events.extend(out.iter().cloned());
                r.batch.extend(out);
            }
            "expect" => {
                let r = run
                    .as_mut()
                    .ok_or(format!("{at}: `expect` before `rules`"))?;
                r.judged = true;
                let mut expected = Vec::new();
                while n < lines.len() {
                    let l = strip_comment(lines[n]);
                    let t = l.trim();
                    if !(t.starts_with("firing") || t.starts_with("resolved")) {
                        break;
                    }
                    expected.push((format!("{path}:{}", n + 1), parse_transition(t)));
                    n += 1;
                }
                checks += 1;
                kinds.extend(expected.iter().filter_map(|(_, x)| {
                    let rule = r.rules.rules.iter().find(|rule| rule.name == x.rule)?;
                    Some(rule.kind.table())
                }));
                if let Err(e) = judge(&at, rest, &expected, &r.batch) {
                    failures.push(format!("{e}\n  transitions:\n{}", listing(&r.batch)));
                }
            }
            "replay" => {
                let r = run
                    .as_mut()
                    .ok_or(format!("{at}: `replay` before `rules`"))?;
                r.judged = true;
                checks += 1;
                let mut again = Detector::new(r.rules.clone());
                let mut out = Vec::new();
                for s in &r.samples {
                    again.observe(s, &mut out);
                }
                if out != r.events {
                    failures.push(format!(
                        "{at}: a replay gave other events\n  first run:\n{}\n  replay:\n{}",
                        listing(&r.events),
                        listing(&out)
                    ));
                }
            }
            _ => return Err(format!("{at}: unknown directive `{word}`")),
        }
    }
    if failures.is_empty() {
        Ok(checks)
    } else {
        Err(failures.join("\n\n"))
    }
}

fn strip_comment(line: &str) -> &str {
    line.split_once('#').map_or(line, |(a, _)| a)
}

// ------------------------------------------------------------------ samples

/// One `at` line's samples.
fn parse_samples(rest: &str) -> Result<Vec<Sample>, String> {
    let (points, fields) = rest
        .split_once(':')
        .ok_or("`at POINTS: FIELDS` needs a `:`")?;
    let mut is = Vec::new();
    for p in points.split_whitespace() {
        match p.split_once("..") {
            Some((a, b)) => {
                let (a, b): (i64, i64) = (int(a)?, int(b)?);
                is.extend(a..b);
            }
            None => is.push(int(p)?),
        }
    }
    let mut gpus = vec!["g".to_string()];
    let mut session = "s".to_string();
    let mut id = "e{i}".to_string();
    let mut unsupported = Vec::new();
    let mut metrics: Vec<(Metric, Value)> = Vec::new();
    for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (key, value) = field
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or(format!("`{field}`: expected `key = value`"))?;
        match key {
            "session" => session = value.to_string(),
            "gpu" => gpus = vec![value.to_string()],
            "gpus" => gpus = value.split_whitespace().map(str::to_string).collect(),
            "id" => id = value.to_string(),
            "unsupported" => {
                for m in value.split_whitespace() {
                    unsupported.push(metric(m)?);
                }
            }
            m => {
                let value = match value.strip_prefix('[') {
                    Some(list) => {
                        let list = list.strip_suffix(']').ok_or(format!("`{value}`: no `]`"))?;
                        let values = list
                            .split_whitespace()
                            .map(|v| v.parse::<f64>().map_err(|e| format!("`{v}`: {e}")))
                            .collect::<Result<Vec<_>, _>>()?;
                        if values.len() != is.len() {
                            return Err(format!(
                                "`{m}`: {} values for {} points",
                                values.len(),
                                is.len()
                            ));
                        }
                        Value::List(values)
                    }
                    None => {
                        // Checked once here, so a bad expression is reported even for no points.
                        eval(value, 0.0)?;
                        Value::Expr(value.to_string())
                    }
                };
                metrics.push((metric(m)?, value));
            }
        }
    }
    let mut out = Vec::new();
    for (k, i) in is.iter().enumerate() {
        for gpu in &gpus {
            let mut b = SampleBuilder::new("h", gpu)
                .at_secs(*i)
                .seq(*i as u64)
                .session(&session);
            for (m, v) in &metrics {
                let x = match v {
                    Value::List(values) => values[k],
                    Value::Expr(e) => eval(e, *i as f64)?,
                };
                b = b.metric(*m, x);
            }
            for m in &unsupported {
                b = b.unsupported(*m);
            }
            let mut s = b.build();
            s.event_id = id.replace("{i}", &i.to_string()).replace("{gpu}", gpu);
            out.push(s);
        }
    }
    Ok(out)
}

enum Value {
    Expr(String),
    List(Vec<f64>),
}

fn int(s: &str) -> Result<i64, String> {
    s.trim().parse().map_err(|e| format!("`{s}`: {e}"))
}

fn metric(name: &str) -> Result<Metric, String> {
    Metric::from_column(name).ok_or(format!("unknown metric `{name}`"))
}

/// Evaluates an arithmetic expression of `i`.
fn eval(expr: &str, i: f64) -> Result<f64, String> {
    let tokens = tokenize(expr)?;
    let mut p = Parser {
        tokens: &tokens,
        pos: 0,
        i,
    };
    let v = p.sum()?;
    if p.pos != tokens.len() {
        return Err(format!("`{expr}`: unexpected `{:?}`", tokens[p.pos]));
    }
    Ok(v)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Num(f64),
    I,
    Op(char),
}

fn tokenize(expr: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut k = 0;
    while k < chars.len() {
        let c = chars[k];
        if c.is_whitespace() {
            k += 1;
        } else if c == 'i' {
            out.push(Token::I);
            k += 1;
        } else if "+-*/%()".contains(c) {
            out.push(Token::Op(c));
            k += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = k;
            while k < chars.len()
                && (chars[k].is_ascii_digit()
                    || chars[k] == '.'
                    || chars[k] == 'e'
                    || (matches!(chars[k], '+' | '-') && chars[k - 1] == 'e'))
            {
                k += 1;
            }
            let s: String = chars[start..k].iter().collect();
            out.push(Token::Num(s.parse().map_err(|e| format!("`{s}`: {e}"))?));
        } else {
            return Err(format!("`{expr}`: unexpected `{c}`"));
        }
    }
    Ok(out)
}

/// Recursive descent: sum := product (('+'|'-') product)*, product := unary (('*'|'/'|'%')
/// unary)*, unary := '-' unary | atom, atom := number | 'i' | '(' sum ')'.
struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    i: f64,
}

impl Parser<'_> {
    fn next_op(&self, ops: &str) -> Option<char> {
        match self.tokens.get(self.pos) {
            Some(Token::Op(c)) if ops.contains(*c) => Some(*c),
            _ => None,
        }
    }

    fn sum(&mut self) -> Result<f64, String> {
        let mut v = self.product()?;
        while let Some(op) = self.next_op("+-") {
            self.pos += 1;
            let r = self.product()?;
            v = if op == '+' { v + r } else { v - r };
        }
        Ok(v)
    }

    fn product(&mut self) -> Result<f64, String> {
        let mut v = self.unary()?;
        while let Some(op) = self.next_op("*/%") {
            self.pos += 1;
            let r = self.unary()?;
            v = match op {
                '*' => v * r,
                '/' => v / r,
                _ => v % r,
            };
        }
        Ok(v)
    }

    fn unary(&mut self) -> Result<f64, String> {
        if self.next_op("-").is_some() {
            self.pos += 1;
            return Ok(-self.unary()?);
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<f64, String> {
        let t = self.tokens.get(self.pos).copied();
        self.pos += 1;
        match t {
            Some(Token::Num(v)) => Ok(v),
            Some(Token::I) => Ok(self.i),
            Some(Token::Op('(')) => {
                let v = self.sum()?;
                if self.next_op(")").is_none() {
                    return Err("missing `)`".into());
                }
                self.pos += 1;
                Ok(v)
            }
            other => Err(format!("expected a number, `i` or `(`, found {other:?}")),
        }
    }
}

// ------------------------------------------------------------------ expectations

/// One expected transition; `None` fields are not checked.
#[derive(Debug, Default)]
struct Expected {
    state: Option<AnomalyState>,
    rule: String,
    sample: Option<String>,
    severity: Option<String>,
    gpu: Option<String>,
    time: Option<i64>,
    started: Option<i64>,
    episode: Option<String>,
    error: Option<String>,
}

fn parse_transition(line: &str) -> Expected {
    let mut e = Expected::default();
    let mut words = line.split_whitespace();
    e.state = match words.next() {
        Some("firing") => Some(AnomalyState::Firing),
        _ => Some(AnomalyState::Resolved),
    };
    e.rule = words.next().unwrap_or_default().to_string();
    for w in words {
        match w.split_once('=') {
            None if e.sample.is_none() => e.sample = Some(w.to_string()),
            None => e.error = Some(format!("`{w}`: expected `key=value`")),
            Some(("severity", v)) => e.severity = Some(v.to_string()),
            Some(("gpu", v)) => e.gpu = Some(v.to_string()),
            Some(("time", v)) => e.time = seconds(v, &mut e.error),
            Some(("started", v)) => e.started = seconds(v, &mut e.error),
            Some(("episode", v)) => e.episode = Some(v.to_string()),
            Some((k, _)) => e.error = Some(format!("unknown key `{k}`")),
        }
    }
    if e.rule.is_empty() {
        e.error = Some("a transition needs a state and a rule".into());
    }
    e
}

/// A whole number of seconds; a bad one is the line's error, not an unchecked field.
fn seconds(v: &str, error: &mut Option<String>) -> Option<i64> {
    let parsed = v.parse().ok();
    if parsed.is_none() {
        *error = Some(format!("`{v}`: not a whole number of seconds"));
    }
    parsed
}

fn secs_after_t0(t: chrono::DateTime<chrono::Utc>) -> i64 {
    (t - t0()).num_seconds()
}

/// Why `e` does not match `x`, if it does not.
fn mismatch(x: &Expected, e: &AnomalyEvent) -> Option<String> {
    let mut why = Vec::new();
    if x.state.is_some_and(|s| s != e.state) || x.rule != e.rule {
        why.push("state/rule");
    }
    if x.sample.as_ref().is_some_and(|s| *s != e.sample_event_id) {
        why.push("sample");
    }
    if x.severity
        .as_ref()
        .is_some_and(|s| s != e.severity.as_str())
    {
        why.push("severity");
    }
    if x.gpu.as_ref().is_some_and(|g| *g != e.gpu) {
        why.push("gpu");
    }
    if x.time.is_some_and(|t| t != secs_after_t0(e.event_time)) {
        why.push("time");
    }
    if x.started.is_some_and(|t| t != secs_after_t0(e.started_at)) {
        why.push("started");
    }
    (!why.is_empty()).then(|| format!("{} differ, got: {}", why.join(", "), show(e)))
}

fn judge(
    at: &str,
    mode: &str,
    expected: &[(String, Expected)],
    batch: &[AnomalyEvent],
) -> Result<(), String> {
    for (line, x) in expected {
        if let Some(e) = &x.error {
            return Err(format!("{line}: {e}"));
        }
    }
    let mut words = mode.split_whitespace().peekable();
    let how = match words.peek() {
        Some(&"some") | Some(&"first") | Some(&"nothing") => words.next().unwrap_or_default(),
        _ => "exact",
    };
    let only = match (words.next(), words.next()) {
        (None, _) => None,
        (Some("only"), Some(rule)) => Some(rule),
        _ => return Err(format!("{at}: `expect [some|first|nothing] [only RULE]`")),
    };
    let events: Vec<&AnomalyEvent> = batch
        .iter()
        .filter(|e| only.is_none_or(|r| e.rule == r))
        .collect();
    if how == "nothing" {
        if !expected.is_empty() {
            return Err(format!("{at}: `expect nothing` with transitions under it"));
        }
        return match events.is_empty() {
            true => Ok(()),
            false => Err(format!(
                "{at}: expected no transition, got {}",
                events.len()
            )),
        };
    }
    if expected.is_empty() {
        return Err(format!(
            "{at}: no transitions under `expect` (`expect nothing`?)"
        ));
    }
    // Which event each line matched, for the episode checks.
    let mut matched: Vec<(&str, &Expected, &AnomalyEvent)> = Vec::new();
    match how {
        "exact" => {
            for (k, (line, x)) in expected.iter().enumerate() {
                let Some(e) = events.get(k) else {
                    return Err(format!(
                        "{line}: expected this transition, got only {} (`{}`)",
                        events.len(),
                        only.unwrap_or("all rules")
                    ));
                };
                if let Some(why) = mismatch(x, e) {
                    return Err(format!("{line}: {why}"));
                }
                matched.push((line, x, e));
            }
            if events.len() > expected.len() {
                return Err(format!(
                    "{at}: {} transitions more than expected, the first: {}",
                    events.len() - expected.len(),
                    show(events[expected.len()])
                ));
            }
        }
        "some" => {
            for (line, x) in expected {
                match events.iter().find(|e| mismatch(x, e).is_none()) {
                    Some(e) => matched.push((line, x, e)),
                    None => return Err(format!("{line}: no such transition")),
                }
            }
        }
        _ => {
            for (line, x) in expected {
                let Some(e) = events.iter().find(|e| e.rule == x.rule) else {
                    return Err(format!("{line}: no transition of `{}`", x.rule));
                };
                if let Some(why) = mismatch(x, e) {
                    return Err(format!("{line}: the first transition of the rule: {why}"));
                }
                matched.push((line, x, e));
            }
        }
    }
    let mut episodes: BTreeMap<&str, Vec<(&str, &AnomalyEvent)>> = BTreeMap::new();
    for (line, x, e) in &matched {
        if let Some(label) = &x.episode {
            episodes.entry(label.as_str()).or_default().push((line, e));
        }
    }
    let mut ids: BTreeMap<&str, &str> = BTreeMap::new();
    for (label, members) in &episodes {
        let (_, first) = members[0];
        for (line, e) in &members[1..] {
            if e.anomaly_id != first.anomaly_id {
                return Err(format!("{line}: not the anomaly id of episode `{label}`"));
            }
            if e.event_id == first.event_id {
                return Err(format!("{line}: the same event id as another of `{label}`"));
            }
        }
        if let Some(other) = ids.insert(first.anomaly_id.as_str(), label) {
            return Err(format!(
                "{}: episodes `{other}` and `{label}` have one anomaly id",
                members[0].0
            ));
        }
    }
    Ok(())
}

fn show(e: &AnomalyEvent) -> String {
    format!(
        "{} {} {} severity={} gpu={} time={} started={} ({})",
        e.state.as_str(),
        e.rule,
        e.sample_event_id,
        e.severity.as_str(),
        e.gpu,
        secs_after_t0(e.event_time),
        secs_after_t0(e.started_at),
        e.message
    )
}

fn listing(events: &[AnomalyEvent]) -> String {
    if events.is_empty() {
        return "    (none)".into();
    }
    let mut s = String::new();
    for e in events {
        let _ = writeln!(s, "    {}", show(e));
    }
    s.trim_end().to_string()
}
