//! Anomaly rules: the TOML file format, its validation, the built-in defaults and the
//! per-host/GPU overrides.
//!
//! The format is documented in `docs/anomaly-rules.md`; the defaults are
//! `stream-processor/rules.default.toml`, compiled into the binary.

use std::time::Duration;

use gpustream::{Metric, Severity};
use serde::Deserialize;

use crate::error::{Error, Result};

/// The default rules file, shipped next to the crate and compiled in.
pub const DEFAULT_RULES_TOML: &str = include_str!("../rules.default.toml");

/// What a rule reads from a sample: a catalogue metric or a derived quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A metric of the catalogue, by its column name.
    Metric(Metric),
    /// `memory_used_mb / memory_total_mb * 100`: needs both readings.
    MemoryUsedPct,
}

impl Signal {
    /// Name in rules files and anomaly events.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Metric(m) => m.column(),
            Signal::MemoryUsedPct => "memory_used_pct",
        }
    }

    /// Unit for messages.
    pub fn unit(self) -> &'static str {
        match self {
            Signal::Metric(m) => m.unit(),
            Signal::MemoryUsedPct => "%",
        }
    }

    /// The value in a sample, `None` when absent or marked unsupported.
    pub fn read(self, s: &gpustream::Sample) -> Option<f64> {
        match self {
            // The common case first: nothing marked unsupported, a plain array read.
            Signal::Metric(m) if s.unsupported.is_empty() => s.metrics.get(m),
            Signal::Metric(m) => s.reading(m),
            Signal::MemoryUsedPct => {
                let used = s.reading(Metric::MemoryUsed)?;
                let total = s.reading(Metric::MemoryTotal)?;
                (total > 0.0).then(|| used / total * 100.0)
            }
        }
    }

    fn parse(name: &str) -> std::result::Result<Signal, String> {
        if name == "memory_used_pct" {
            return Ok(Signal::MemoryUsedPct);
        }
        Metric::from_column(name)
            .map(Signal::Metric)
            .ok_or_else(|| {
                format!(
                    "unknown metric `{name}` (see gpustream/src/metric.rs or use `memory_used_pct`)"
                )
            })
    }
}

/// Which side of the level a threshold rule fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Fires while the reading is strictly above the level.
    Above,
    /// Fires while the reading is strictly below the level.
    Below,
}

/// What a rule detects, with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// A reading beyond a level; resolves once it is back past `clear` (hysteresis).
    Threshold {
        /// Watched quantity.
        signal: Signal,
        /// Above or below.
        direction: Direction,
        /// Level it fires beyond.
        level: f64,
        /// Level it must come back to (inclusive) to resolve.
        clear: f64,
        /// Other readings that must also hold (strictly) for the rule to fire; when one
        /// stops holding, the episode resolves.
        guards: Vec<(Signal, Direction, f64)>,
    },
    /// A rise of at least `rise` within `within`, inside one session.
    RateSpike {
        /// Watched quantity.
        signal: Signal,
        /// Rise that fires.
        rise: f64,
        /// Time span of the rise.
        within: Duration,
        /// Resolves when the rise over `within` is below this.
        clear_rise: f64,
    },
    /// EWMA z-score: the reading is more than `z` standard deviations from its moving mean.
    Deviation {
        /// Watched quantity.
        signal: Signal,
        /// EWMA weight of a new reading.
        alpha: f64,
        /// Fires beyond this many standard deviations.
        z: f64,
        /// Resolves below this many standard deviations.
        clear_z: f64,
        /// Lower bound of the standard deviation, so a flat signal does not make noise huge.
        min_std: f64,
        /// Readings needed (in one session) before the rule may fire.
        warmup: u32,
    },
    /// Throttling flags, or clocks falling while the temperature is at its limit.
    Throttle {
        /// GPU-Z PerfCap bits that count (1 power, 2 thermal, ...).
        perf_cap_bits: u32,
        /// NVML throttle-reason bits that count.
        throttle_reason_bits: u32,
        /// Temperature at which falling clocks count as throttling (`None`: flags only).
        temp_limit: Option<f64>,
        /// Drop of the core clock below its recent maximum, in percent.
        clock_drop_pct: f64,
        /// Span of "recent" for the clock maximum.
        clock_window: Duration,
    },
    /// A reading frozen at one value for `flat_for` while a peer moved by its range.
    Stuck {
        /// Watched quantity.
        signal: Signal,
        /// How long the value must stay exactly the same.
        flat_for: Duration,
        /// Peers and the range (max − min) each must move through meanwhile (any one suffices).
        peers: Vec<(Signal, f64)>,
    },
    /// A counter grew by at least `increase` within `within`.
    Counter {
        /// Watched counter.
        signal: Signal,
        /// Growth that fires.
        increase: f64,
        /// Span of the growth.
        within: Duration,
        /// Resolves after this long without growth.
        clear_after: Duration,
    },
    /// A non-zero event code (XID) in a sample.
    Code {
        /// Watched code.
        signal: Signal,
        /// Codes that are not reported.
        ignore: Vec<i64>,
        /// Codes reported as critical whatever the rule's severity.
        critical: Vec<i64>,
        /// Resolves after this long without a code.
        clear_after: Duration,
    },
}

/// One rule as the detector runs it (after overrides).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique name, e.g. `gpu_temp_high`; the anomaly's `rule` field.
    pub name: String,
    /// Severity of its anomalies.
    pub severity: Severity,
    /// How long the condition must hold before the rule fires.
    pub for_: Duration,
    /// Disabled rules never fire.
    pub enabled: bool,
    /// What it detects.
    pub kind: RuleKind,
}

/// Missing samples and lost GPUs: judged against the fleet's event-time watermark.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingRules {
    /// Whether either rule runs.
    pub enabled: bool,
    /// Name of the "samples missing" rule.
    pub missing_name: String,
    /// Severity of missing samples.
    pub missing_severity: Severity,
    /// Intervals without a sample before "samples missing" fires.
    pub missing_after_intervals: f64,
    /// Name of the "GPU lost" rule.
    pub lost_name: String,
    /// Severity of a lost GPU.
    pub lost_severity: Severity,
    /// Intervals without a sample before "GPU lost" fires.
    pub lost_after_intervals: f64,
    /// Interval assumed until a GPU's own has been measured.
    pub default_interval: Duration,
}

/// A change to rules for some hosts/GPUs.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Host pattern (exact, or a prefix ending in `*`); `None` = every host.
    pub host: Option<String>,
    /// GPU pattern, like `host`.
    pub gpu: Option<String>,
    /// Rule name, or `*` for every rule.
    pub rule: String,
    /// Enables or disables the rule.
    pub enabled: Option<bool>,
    /// New severity.
    pub severity: Option<Severity>,
    /// New `for` duration.
    pub for_: Option<Duration>,
    /// New level of a threshold rule.
    pub level: Option<f64>,
    /// New clear level of a threshold rule.
    pub clear: Option<f64>,
}

fn pattern_matches(pattern: Option<&str>, value: &str) -> bool {
    match pattern {
        None => true,
        Some(p) => match p.strip_suffix('*') {
            Some(prefix) => value.starts_with(prefix),
            None => p == value,
        },
    }
}

impl Override {
    fn applies(&self, host: &str, gpu: &str, rule: &str) -> bool {
        pattern_matches(self.host.as_deref(), host)
            && pattern_matches(self.gpu.as_deref(), gpu)
            && (self.rule == "*" || self.rule == rule)
    }
}

/// A validated set of rules.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    /// Per-sample rules, in file order.
    pub rules: Vec<Rule>,
    /// Missing samples / GPU lost.
    pub missing: MissingRules,
    /// Overrides, applied in file order (later wins).
    pub overrides: Vec<Override>,
}

impl RuleSet {
    /// The built-in defaults (`rules.default.toml`).
    pub fn defaults() -> RuleSet {
        RuleSet::from_toml(DEFAULT_RULES_TOML, "rules.default.toml (built in)")
            .expect("the built-in rules file is valid: checked by a unit test")
    }

    /// Reads and validates a rules file.
    pub fn load(path: &str) -> Result<RuleSet> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Rules {
            origin: path.to_string(),
            reason: e.to_string(),
        })?;
        RuleSet::from_toml(&text, path)
    }

    /// Parses and validates rules from TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<RuleSet> {
        let file: RulesFile = toml::from_str(text).map_err(|e| Error::Rules {
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
        file.compile().map_err(|reason| Error::Rules {
            origin: origin.to_string(),
            reason,
        })
    }

    /// The rules as they apply to one GPU, overrides included.
    pub fn for_gpu(&self, host: &str, gpu: &str) -> Vec<Rule> {
        let mut rules = self.rules.clone();
        for o in &self.overrides {
            for r in rules.iter_mut().filter(|r| o.applies(host, gpu, &r.name)) {
                if let Some(e) = o.enabled {
                    r.enabled = e;
                }
                if let Some(s) = o.severity {
                    r.severity = s;
                }
                if let Some(f) = o.for_ {
                    r.for_ = f;
                }
                if let RuleKind::Threshold { level, clear, .. } = &mut r.kind {
                    if let Some(l) = o.level {
                        *level = l;
                        // A new level without a clear level keeps the same hysteresis gap.
                        if o.clear.is_none() {
                            *clear = l;
                        }
                    }
                    if let Some(c) = o.clear {
                        *clear = c;
                    }
                }
            }
        }
        rules
    }

    /// Whether any override touches this GPU (so the shared default rules can be used).
    pub fn has_override_for(&self, host: &str, gpu: &str) -> bool {
        self.overrides.iter().any(|o| {
            pattern_matches(o.host.as_deref(), host) && pattern_matches(o.gpu.as_deref(), gpu)
        })
    }

    /// Whether the missing / lost rule is enabled for this GPU.
    pub fn missing_enabled_for(&self, host: &str, gpu: &str, rule: &str) -> bool {
        let mut on = self.missing.enabled;
        for o in &self.overrides {
            if o.applies(host, gpu, rule)
                && let Some(e) = o.enabled
            {
                on = e;
            }
        }
        on
    }

    /// Names of every rule, missing/lost included.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.rules.iter().map(|r| r.name.as_str()).collect();
        v.push(&self.missing.missing_name);
        v.push(&self.missing.lost_name);
        v
    }
}

// ------------------------------------------------------------------ file format

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    gpustream_runtime::config::parse_duration(&s).map_err(serde::de::Error::custom)
}

fn de_opt_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Duration>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| gpustream_runtime::config::parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}

fn default_true() -> bool {
    true
}
fn default_severity() -> Severity {
    Severity::Warning
}

struct Common {
    name: String,
    severity: Severity,
    for_: Option<Duration>,
    enabled: bool,
}

/// Declares a rule table of the file: the fields every rule has, then its own.
macro_rules! rule_table {
    ($name:ident { $($field:tt)* }) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            name: String,
            #[serde(default = "default_severity")]
            severity: Severity,
            #[serde(default, rename = "for", deserialize_with = "de_opt_duration")]
            for_: Option<Duration>,
            #[serde(default = "default_true")]
            enabled: bool,
            $($field)*
        }

        impl $name {
            fn common(&self) -> Common {
                Common {
                    name: self.name.clone(),
                    severity: self.severity,
                    for_: self.for_,
                    enabled: self.enabled,
                }
            }
        }
    };
}

rule_table!(ThresholdToml {
    metric: String,
    above: Option<f64>,
    below: Option<f64>,
    clear: Option<f64>,
    #[serde(default)]
    when_above: std::collections::BTreeMap<String, f64>,
    #[serde(default)]
    when_below: std::collections::BTreeMap<String, f64>,
});

rule_table!(RateSpikeToml {
    metric: String,
    rise: f64,
    #[serde(deserialize_with = "de_duration")]
    within: Duration,
    clear_rise: Option<f64>,
});

rule_table!(DeviationToml {
    metric: String,
    alpha: f64,
    z: f64,
    clear_z: Option<f64>,
    min_std: f64,
    warmup: u32,
});

rule_table!(ThrottleToml {
    #[serde(default)]
    perf_cap_bits: u32,
    #[serde(default)]
    throttle_reason_bits: u32,
    temp_limit: Option<f64>,
    clock_drop_pct: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    clock_window: Option<Duration>,
});

rule_table!(StuckToml {
    metric: String,
    #[serde(deserialize_with = "de_duration")]
    flat_for: Duration,
    peers: std::collections::BTreeMap<String, f64>,
});

rule_table!(CounterToml {
    metric: String,
    increase: f64,
    #[serde(deserialize_with = "de_duration")]
    within: Duration,
    #[serde(deserialize_with = "de_duration")]
    clear_after: Duration,
});

rule_table!(CodeToml {
    metric: String,
    #[serde(default)]
    ignore: Vec<i64>,
    #[serde(default)]
    critical: Vec<i64>,
    #[serde(deserialize_with = "de_duration")]
    clear_after: Duration,
});

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MissingToml {
    #[serde(default = "default_true")]
    enabled: bool,
    missing_name: String,
    missing_severity: Severity,
    missing_after_intervals: f64,
    lost_name: String,
    lost_severity: Severity,
    lost_after_intervals: f64,
    #[serde(deserialize_with = "de_duration")]
    default_interval: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideToml {
    host: Option<String>,
    gpu: Option<String>,
    rule: String,
    enabled: Option<bool>,
    severity: Option<Severity>,
    #[serde(default, rename = "for", deserialize_with = "de_opt_duration")]
    for_: Option<Duration>,
    above: Option<f64>,
    below: Option<f64>,
    clear: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    threshold: Vec<ThresholdToml>,
    #[serde(default)]
    rate_spike: Vec<RateSpikeToml>,
    #[serde(default)]
    deviation: Vec<DeviationToml>,
    #[serde(default)]
    throttle: Vec<ThrottleToml>,
    #[serde(default)]
    stuck: Vec<StuckToml>,
    #[serde(default)]
    counter: Vec<CounterToml>,
    #[serde(default)]
    code: Vec<CodeToml>,
    missing: Option<MissingToml>,
    #[serde(default, rename = "override")]
    overrides: Vec<OverrideToml>,
}

fn finite(rule: &str, field: &str, v: f64) -> std::result::Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("rule `{rule}`: `{field}` must be a finite number"))
    }
}

fn positive(rule: &str, field: &str, v: f64) -> std::result::Result<f64, String> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!(
            "rule `{rule}`: `{field}` must be a positive number"
        ))
    }
}

fn rule(c: Common, kind: RuleKind) -> Rule {
    Rule {
        name: c.name,
        severity: c.severity,
        for_: c.for_.unwrap_or_default(),
        enabled: c.enabled,
        kind,
    }
}

impl RulesFile {
    fn compile(self) -> std::result::Result<RuleSet, String> {
        let mut rules = Vec::new();
        let signal =
            |rule: &str, m: &str| Signal::parse(m).map_err(|e| format!("rule `{rule}`: {e}"));
        for t in self.threshold {
            let n = t.name.clone();
            let common = t.common();
            let sig = signal(&n, &t.metric)?;
            let (direction, level) = match (t.above, t.below) {
                (Some(a), None) => (Direction::Above, finite(&n, "above", a)?),
                (None, Some(b)) => (Direction::Below, finite(&n, "below", b)?),
                _ => {
                    return Err(format!(
                        "rule `{n}`: give exactly one of `above` and `below`"
                    ));
                }
            };
            let clear = finite(&n, "clear", t.clear.unwrap_or(level))?;
            let wrong_side = match direction {
                Direction::Above => clear > level,
                Direction::Below => clear < level,
            };
            if wrong_side {
                return Err(format!(
                    "rule `{n}`: `clear` ({clear}) must be on the quiet side of the level ({level})"
                ));
            }
            let mut guards = Vec::new();
            for (dir, map) in [
                (Direction::Above, &t.when_above),
                (Direction::Below, &t.when_below),
            ] {
                for (m, v) in map {
                    guards.push((signal(&n, m)?, dir, finite(&n, "when", *v)?));
                }
            }
            rules.push(rule(
                common,
                RuleKind::Threshold {
                    signal: sig,
                    direction,
                    level,
                    clear,
                    guards,
                },
            ));
        }
        for r in self.rate_spike {
            let n = r.name.clone();
            let common = r.common();
            let rise = positive(&n, "rise", r.rise)?;
            let clear_rise = finite(&n, "clear_rise", r.clear_rise.unwrap_or(rise / 2.0))?;
            if r.within.is_zero() {
                return Err(format!("rule `{n}`: `within` must be positive"));
            }
            rules.push(rule(
                common,
                RuleKind::RateSpike {
                    signal: signal(&n, &r.metric)?,
                    rise,
                    within: r.within,
                    clear_rise,
                },
            ));
        }
        for d in self.deviation {
            let n = d.name.clone();
            let common = d.common();
            if !(d.alpha > 0.0 && d.alpha < 1.0) {
                return Err(format!("rule `{n}`: `alpha` must be between 0 and 1"));
            }
            let z = positive(&n, "z", d.z)?;
            rules.push(rule(
                common,
                RuleKind::Deviation {
                    signal: signal(&n, &d.metric)?,
                    alpha: d.alpha,
                    z,
                    clear_z: finite(&n, "clear_z", d.clear_z.unwrap_or(z / 2.0))?,
                    min_std: positive(&n, "min_std", d.min_std)?,
                    warmup: d.warmup,
                },
            ));
        }
        for t in self.throttle {
            let n = t.name.clone();
            let common = t.common();
            if t.perf_cap_bits == 0 && t.throttle_reason_bits == 0 && t.temp_limit.is_none() {
                return Err(format!(
                    "rule `{n}`: give `perf_cap_bits`, `throttle_reason_bits` or `temp_limit`"
                ));
            }
            rules.push(rule(
                common,
                RuleKind::Throttle {
                    perf_cap_bits: t.perf_cap_bits,
                    throttle_reason_bits: t.throttle_reason_bits,
                    temp_limit: t
                        .temp_limit
                        .map(|v| finite(&n, "temp_limit", v))
                        .transpose()?,
                    clock_drop_pct: positive(
                        &n,
                        "clock_drop_pct",
                        t.clock_drop_pct.unwrap_or(10.0),
                    )?,
                    clock_window: t.clock_window.unwrap_or(Duration::from_secs(30)),
                },
            ));
        }
        for s in self.stuck {
            let n = s.name.clone();
            let common = s.common();
            if s.peers.is_empty() {
                return Err(format!("rule `{n}`: `peers` must name at least one metric"));
            }
            let mut peers = Vec::new();
            for (m, range) in &s.peers {
                peers.push((signal(&n, m)?, positive(&n, "peers", *range)?));
            }
            rules.push(rule(
                common,
                RuleKind::Stuck {
                    signal: signal(&n, &s.metric)?,
                    flat_for: s.flat_for,
                    peers,
                },
            ));
        }
        for c in self.counter {
            let n = c.name.clone();
            let common = c.common();
            rules.push(rule(
                common,
                RuleKind::Counter {
                    signal: signal(&n, &c.metric)?,
                    increase: positive(&n, "increase", c.increase)?,
                    within: c.within,
                    clear_after: c.clear_after,
                },
            ));
        }
        for c in self.code {
            let n = c.name.clone();
            let common = c.common();
            rules.push(rule(
                common,
                RuleKind::Code {
                    signal: signal(&n, &c.metric)?,
                    ignore: c.ignore,
                    critical: c.critical,
                    clear_after: c.clear_after,
                },
            ));
        }
        let missing = match self.missing {
            Some(m) => {
                let a = positive(
                    &m.missing_name,
                    "missing_after_intervals",
                    m.missing_after_intervals,
                )?;
                let b = positive(&m.lost_name, "lost_after_intervals", m.lost_after_intervals)?;
                if m.default_interval.is_zero() {
                    return Err("[missing]: `default_interval` must be positive".into());
                }
                MissingRules {
                    enabled: m.enabled,
                    missing_name: m.missing_name,
                    missing_severity: m.missing_severity,
                    missing_after_intervals: a,
                    lost_name: m.lost_name,
                    lost_severity: m.lost_severity,
                    lost_after_intervals: b,
                    default_interval: m.default_interval,
                }
            }
            None => MissingRules {
                enabled: false,
                missing_name: "samples_missing".into(),
                missing_severity: Severity::Warning,
                missing_after_intervals: 5.0,
                lost_name: "gpu_lost".into(),
                lost_severity: Severity::Critical,
                lost_after_intervals: 60.0,
                default_interval: Duration::from_secs(1),
            },
        };
        let mut seen = std::collections::HashSet::new();
        for r in &rules {
            if r.name.is_empty() || !seen.insert(r.name.as_str()) {
                return Err(format!("rule name `{}` is empty or used twice", r.name));
            }
        }
        for n in [&missing.missing_name, &missing.lost_name] {
            if !seen.insert(n.as_str()) {
                return Err(format!("rule name `{n}` is used twice"));
            }
        }
        let mut overrides = Vec::new();
        for (i, o) in self.overrides.into_iter().enumerate() {
            let at = format!("override #{} (rule `{}`)", i + 1, o.rule);
            if o.rule != "*" && !seen.contains(o.rule.as_str()) {
                return Err(format!("{at}: no rule of that name"));
            }
            let level = match (o.above, o.below) {
                (Some(_), Some(_)) => {
                    return Err(format!("{at}: give at most one of `above` and `below`"));
                }
                (a, b) => a.or(b),
            };
            if (level.is_some() || o.clear.is_some()) && o.rule != "*" {
                let is_threshold = rules
                    .iter()
                    .any(|r| r.name == o.rule && matches!(r.kind, RuleKind::Threshold { .. }));
                if !is_threshold {
                    return Err(format!(
                        "{at}: `above`/`below`/`clear` apply to threshold rules only"
                    ));
                }
            }
            overrides.push(Override {
                host: o.host,
                gpu: o.gpu,
                rule: o.rule,
                enabled: o.enabled,
                severity: o.severity,
                for_: o.for_,
                level,
                clear: o.clear,
            });
        }
        Ok(RuleSet {
            rules,
            missing,
            overrides,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_defaults_parse_and_keep_the_classic_thresholds() {
        let r = RuleSet::defaults();
        let level = |name: &str| {
            r.rules
                .iter()
                .find(|x| x.name == name)
                .and_then(|x| match x.kind {
                    RuleKind::Threshold { level, .. } => Some(level),
                    _ => None,
                })
        };
        assert_eq!(level("gpu_temp_high"), Some(85.0));
        assert_eq!(level("cpu_temp_high"), Some(80.0));
        assert_eq!(level("board_power_high"), Some(300.0));
        assert_eq!(level("gpu_load_high"), Some(95.0));
        assert_eq!(level("gpu_temp_critical"), Some(90.0));
        assert_eq!(level("memory_high"), Some(95.0));
        assert!(r.missing.enabled);
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_field() {
        let e = RuleSet::from_toml(
            "[[threshold]]\nname = \"x\"\nmetric = \"nope\"\nabove = 1\n",
            "r.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("r.toml") && e.contains("nope"), "{e}");
        let e = RuleSet::from_toml("[[threshold]]\nname = \"x\"\nmetric = \"gpu_temp_c\"\nabove = 1\nfor = \"5 parsecs\"\n", "r.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 5") && e.contains("parsecs"), "{e}");
        let e = RuleSet::from_toml(
            "[[threshold]]\nname = \"x\"\nmetric = \"gpu_temp_c\"\nabove = 1\nclear = 3\n",
            "r.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("clear"), "{e}");
        let e = RuleSet::from_toml(
            "[[override]]\nrule = \"ghost\"\nenabled = false\n",
            "r.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("ghost"), "{e}");
        let e = RuleSet::from_toml(
            "[[threshold]]\nname = \"x\"\nmetric = \"gpu_temp_c\"\nabove = 1\ntypo = 3\n",
            "r.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("typo"), "{e}");
    }

    #[test]
    fn overrides_apply_by_host_and_gpu_pattern() {
        let text = format!(
            "{DEFAULT_RULES_TOML}\n[[override]]\nhost = \"lab-*\"\ngpu = \"gpu1\"\nrule = \"gpu_temp_high\"\nabove = 90\nclear = 88\nseverity = \"critical\"\n\n[[override]]\nhost = \"lab-2\"\nrule = \"*\"\nenabled = false\n"
        );
        let r = RuleSet::from_toml(&text, "t").expect("valid");
        let temp = |host: &str, gpu: &str| {
            r.for_gpu(host, gpu)
                .into_iter()
                .find(|x| x.name == "gpu_temp_high")
                .expect("rule")
        };
        let t = temp("lab-1", "gpu1");
        assert_eq!(t.severity, Severity::Critical);
        assert!(
            matches!(t.kind, RuleKind::Threshold { level, clear, .. } if level == 90.0 && clear == 88.0)
        );
        assert!(
            matches!(temp("lab-1", "gpu0").kind, RuleKind::Threshold { level, .. } if level == 85.0)
        );
        assert!(
            matches!(temp("other", "gpu1").kind, RuleKind::Threshold { level, .. } if level == 85.0)
        );
        assert!(!temp("lab-2", "gpu0").enabled);
        assert!(!r.missing_enabled_for("lab-2", "gpu0", "gpu_lost"));
        assert!(r.missing_enabled_for("lab-1", "gpu0", "gpu_lost"));
        assert!(r.has_override_for("lab-1", "gpu1") && !r.has_override_for("x", "gpu1"));
    }
}
