//! Anomaly rules: the TOML file format, its validation, the built-in defaults and the
//! per-host/GPU overrides.
//!
//! The format is documented in `docs/anomaly-rules.md`; the defaults are
//! `stream-processor/rules.default.toml`, compiled into the binary. This module reads the
//! parts every rule shares (name, severity, `for`, `enabled`), `[missing]` and
//! `[[override]]`; each detector kind reads and checks its own table
//! ([`crate::detect::DetectorKind`]).

use std::fmt;
use std::time::Duration;

use gpustream::{Metric, Severity};
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};

use crate::detect::registry::RawRule;
use crate::error::{Error, Result};

pub use crate::detect::RuleKind;
pub use crate::detect::threshold::Direction;

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
    /// New level, for kinds with levels ([`crate::detect::DetectorKind::levels`]).
    pub level: Option<f64>,
    /// New clear level, likewise.
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
    /// Per-sample rules: by kind, in the order of `detect/registry.rs`, then in file order.
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
                if let Some((mut level, mut clear)) = r.kind.levels() {
                    if let Some(l) = o.level {
                        level = l;
                        // A new level without a clear level keeps the same hysteresis gap.
                        if o.clear.is_none() {
                            clear = l;
                        }
                    }
                    if let Some(c) = o.clear {
                        clear = c;
                    }
                    r.kind.set_levels(level, clear);
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

/// Reads a duration field (`"10s"`); for `deserialize_with` in rule tables.
pub(crate) fn de_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    gpustream_runtime::config::parse_duration(&s).map_err(serde::de::Error::custom)
}

/// Reads an optional duration field; for `deserialize_with` in rule tables.
pub(crate) fn de_opt_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Duration>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| gpustream_runtime::config::parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}

pub(crate) fn default_true() -> bool {
    true
}

pub(crate) fn default_severity() -> Severity {
    Severity::Warning
}

/// The fields every rule table has, as written in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonFields {
    /// `name`.
    pub name: String,
    /// `severity` (default warning).
    pub severity: Severity,
    /// `for` (default none: fires at once).
    pub for_: Option<Duration>,
    /// `enabled` (default true).
    pub enabled: bool,
}

impl CommonFields {
    /// The rule these fields and a kind make.
    pub(crate) fn into_rule(self, kind: RuleKind) -> Rule {
        Rule {
            name: self.name,
            severity: self.severity,
            for_: self.for_.unwrap_or_default(),
            enabled: self.enabled,
            kind,
        }
    }
}

/// A rule table of the file: deserialisable, with the common fields. Implemented by the
/// tables that `rule_table!` declares.
pub trait RuleTable: DeserializeOwned {
    /// The fields every rule has.
    fn common(&self) -> CommonFields;
}

/// Declares a rule table of the file: the fields every rule has (`name`, `severity`,
/// `for`, `enabled`), then the kind's own; unknown keys are errors.
///
/// ```ignore
/// rule_table!(
///     /// The `[[rate_spike]]` table.
///     pub RateSpikeToml {
///         metric: String,
///         rise: f64,
///     }
/// );
/// ```
macro_rules! rule_table {
    ($(#[$meta:meta])* $vis:vis $name:ident { $($field:tt)* }) => {
        $(#[$meta])*
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            name: String,
            #[serde(default = "crate::rules::default_severity")]
            severity: gpustream::Severity,
            #[serde(
                default,
                rename = "for",
                deserialize_with = "crate::rules::de_opt_duration"
            )]
            for_: Option<std::time::Duration>,
            #[serde(default = "crate::rules::default_true")]
            enabled: bool,
            $($field)*
        }

        impl crate::rules::RuleTable for $name {
            fn common(&self) -> crate::rules::CommonFields {
                crate::rules::CommonFields {
                    name: self.name.clone(),
                    severity: self.severity,
                    for_: self.for_,
                    enabled: self.enabled,
                }
            }
        }
    };
}
pub(crate) use rule_table;

/// `v`, if finite; else an error naming the rule and the field.
pub(crate) fn finite(rule: &str, field: &str, v: f64) -> std::result::Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("rule `{rule}`: `{field}` must be a finite number"))
    }
}

/// `v`, if finite and above zero; else an error naming the rule and the field.
pub(crate) fn positive(rule: &str, field: &str, v: f64) -> std::result::Result<f64, String> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!(
            "rule `{rule}`: `{field}` must be a positive number"
        ))
    }
}

/// The signal a rule names (a metric column or `memory_used_pct`); errors name the rule.
pub(crate) fn signal(rule: &str, metric: &str) -> std::result::Result<Signal, String> {
    Signal::parse(metric).map_err(|e| format!("rule `{rule}`: {e}"))
}

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

/// A whole rules file: the rule tables of every kind (read by the kinds' own tables),
/// `[missing]` and `[[override]]`.
struct RulesFile {
    rules: Vec<RawRule>,
    missing: Option<MissingToml>,
    overrides: Vec<OverrideToml>,
}

/// `[missing]` and `[[override]]`: the top-level keys besides the kinds' tables.
const MISSING: &str = "missing";
const OVERRIDE: &str = "override";

/// One top-level key of a rules file.
struct FileKey(&'static str);

/// Reads a [`FileKey`]: an unknown key is an error raised while reading the key (as
/// `#[serde(deny_unknown_fields)]` does), so the TOML parser points at it.
struct FileKeySeed;

impl<'de> de::DeserializeSeed<'de> for FileKeySeed {
    type Value = FileKey;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<FileKey, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = FileKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("field identifier")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<FileKey, E> {
                file_fields()
                    .iter()
                    .find(|k| **k == v)
                    .map(|k| FileKey(k))
                    .ok_or_else(|| E::unknown_field(v, file_fields()))
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// Every top-level key a rules file may have, in the order of the kinds' registry.
fn file_fields() -> &'static [&'static str] {
    static FIELDS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    FIELDS.get_or_init(|| {
        let mut v = RuleKind::TABLES.to_vec();
        v.extend([MISSING, OVERRIDE]);
        v
    })
}

impl<'de> Deserialize<'de> for RulesFile {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct FileVisitor;
        impl<'de> Visitor<'de> for FileVisitor {
            type Value = RulesFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("struct RulesFile")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<RulesFile, A::Error> {
                let mut file = RulesFile {
                    rules: Vec::new(),
                    missing: None,
                    overrides: Vec::new(),
                };
                let (mut seen_missing, mut seen_overrides) = (false, false);
                while let Some(FileKey(key)) = map.next_key_seed(FileKeySeed)? {
                    match key {
                        MISSING => {
                            if std::mem::replace(&mut seen_missing, true) {
                                return Err(de::Error::duplicate_field(MISSING));
                            }
                            file.missing = map.next_value()?;
                        }
                        OVERRIDE => {
                            if std::mem::replace(&mut seen_overrides, true) {
                                return Err(de::Error::duplicate_field(OVERRIDE));
                            }
                            file.overrides = map.next_value()?;
                        }
                        table => RawRule::read_tables(table, &mut map, &mut file.rules)?,
                    }
                }
                Ok(file)
            }
        }
        d.deserialize_struct("RulesFile", file_fields(), FileVisitor)
    }
}

impl RulesFile {
    fn compile(self) -> std::result::Result<RuleSet, String> {
        let mut raw = self.rules;
        // Kinds in registry order, each in file order (the sort is stable).
        raw.sort_by_key(RawRule::kind_index);
        let mut rules = Vec::with_capacity(raw.len());
        for r in raw {
            rules.push(r.compile()?);
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
                let has_levels = rules
                    .iter()
                    .any(|r| r.name == o.rule && r.kind.levels().is_some());
                if !has_levels {
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
                .and_then(|x| match &x.kind {
                    RuleKind::Threshold(t) => Some(t.level),
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
        assert!(matches!(&t.kind, RuleKind::Threshold(t) if t.level == 90.0 && t.clear == 88.0));
        assert!(matches!(&temp("lab-1", "gpu0").kind, RuleKind::Threshold(t) if t.level == 85.0));
        assert!(matches!(&temp("other", "gpu1").kind, RuleKind::Threshold(t) if t.level == 85.0));
        assert!(!temp("lab-2", "gpu0").enabled);
        assert!(!r.missing_enabled_for("lab-2", "gpu0", "gpu_lost"));
        assert!(r.missing_enabled_for("lab-1", "gpu0", "gpu_lost"));
        assert!(r.has_override_for("lab-1", "gpu1") && !r.has_override_for("x", "gpu1"));
    }
}
