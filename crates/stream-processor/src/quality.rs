//! Detection quality against the fleet simulator's labelled faults: recall, precision
//! and detection delay per fault kind. Shared by `tests/detection_quality.rs` (which
//! holds the rules to minimums) and `benches/detection_quality.rs` (the report in
//! BENCHMARKS.md).
//!
//! The fleet runs in process (no Kafka), every sample goes through a [`Detector`], and
//! each firing transition is matched against the labels of its GPU: an alarm of a rule
//! meant for a fault kind ([`rules_for`]) counts for a label of that kind when it fires
//! between the label's start and [`GRACE_S`] after its end.

use std::collections::BTreeMap;

use crate::detect::Detector;
use crate::rules::RuleSet;
use chrono::{DateTime, Duration, Utc};
use gpustream::{AnomalyEvent, AnomalyState};
use gpustream_sim::fleet::{FaultKind, FaultLabel, Fleet, FleetConfig};

/// The rules that are meant to catch each fault kind (by default rule name).
pub fn rules_for(kind: FaultKind) -> &'static [&'static str] {
    match kind {
        FaultKind::Overheating => &["gpu_temp_high", "gpu_temp_critical", "thermal_throttling"],
        FaultKind::FanFailure => &["fan_stopped"],
        FaultKind::PowerSpike => &["board_power_high", "power_brake"],
        FaultKind::StuckSensor => &["gpu_temp_stuck", "board_power_stuck"],
        FaultKind::Dropout => &["samples_missing"],
        FaultKind::GpuLost => &["gpu_lost"],
        FaultKind::IdleAllocated => &["gpu_idle"],
        FaultKind::EccBurst => &["ecc_uncorrected", "ecc_corrected_burst"],
        FaultKind::Xid => &["xid_error"],
    }
}

/// Fault kinds an alarm of `rule` is right about (a missing-samples alarm is right for a
/// lost GPU too).
pub fn kinds_for(rule: &str) -> Vec<FaultKind> {
    FaultKind::ALL
        .iter()
        .copied()
        .filter(|k| {
            rules_for(*k).contains(&rule) || (rule == "samples_missing" && *k == FaultKind::GpuLost)
        })
        .collect()
}

/// An alarm counts for a label when it fires between the label's start and this long
/// after its end (resolution, counters and "no sample since" need the end to be seen).
pub const GRACE_S: i64 = 60;

/// Scores of one fault kind.
#[derive(Debug, Default, Clone)]
pub struct KindScore {
    /// Labels whose end (plus grace) lies inside the run.
    pub labels: usize,
    /// Labels with a matching alarm.
    pub detected: usize,
    /// Firing alarms of the kind's rules.
    pub alarms: usize,
    /// Those that fall inside a label they are right about.
    pub true_alarms: usize,
    /// Seconds from label start to the first matching alarm, per detected label.
    pub delays: Vec<f64>,
}

impl KindScore {
    /// Detected labels / labels.
    pub fn recall(&self) -> f64 {
        ratio(self.detected, self.labels)
    }
    /// True alarms / alarms.
    pub fn precision(&self) -> f64 {
        ratio(self.true_alarms, self.alarms)
    }
    /// Median detection delay in seconds.
    pub fn delay_p50(&self) -> f64 {
        quantile(&self.delays, 0.5)
    }
    /// 95th percentile detection delay in seconds.
    pub fn delay_p95(&self) -> f64 {
        quantile(&self.delays, 0.95)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * q).round() as usize]
}

/// Everything one run measured.
#[derive(Debug, Default)]
pub struct Report {
    /// Samples fed to the detector.
    pub samples: u64,
    /// GPU-hours simulated.
    pub gpu_hours: f64,
    /// Per fault kind.
    pub kinds: BTreeMap<FaultKind, KindScore>,
    /// Firing alarms per rule, and how many fell inside any label (±grace).
    pub by_rule: BTreeMap<String, (usize, usize)>,
    /// Seconds spent in the detector.
    pub detect_seconds: f64,
}

impl Report {
    /// Firing alarms of rules meant for no fault kind, outside every label.
    pub fn unexplained(&self) -> usize {
        self.by_rule
            .iter()
            .filter(|(r, _)| kinds_for(r).is_empty())
            .map(|(_, (n, inside))| n - inside)
            .sum()
    }
}

fn inside(l: &FaultLabel, t: DateTime<Utc>) -> bool {
    l.start <= t && t <= l.end + Duration::seconds(GRACE_S)
}

/// Runs `ticks` intervals of the fleet through a detector with `rules` and scores it.
pub fn evaluate(cfg: FleetConfig, ticks: u64, rules: RuleSet) -> Report {
    let mut fleet = Fleet::new(cfg);
    let mut detector = Detector::new(rules);
    let mut firing: Vec<AnomalyEvent> = Vec::new();
    let mut out = Vec::new();
    let mut report = Report::default();
    let mut busy = std::time::Duration::ZERO;
    let mut last = fleet.tick_time(0);
    for _ in 0..ticks {
        let samples = fleet.next_tick();
        let t0 = std::time::Instant::now();
        for s in &samples {
            detector.observe(s, &mut out);
        }
        busy += t0.elapsed();
        report.samples += samples.len() as u64;
        firing.extend(out.drain(..).filter(|e| e.state == AnomalyState::Firing));
        if let Some(s) = samples.first() {
            last = s.event_time;
        }
    }
    report.detect_seconds = busy.as_secs_f64();
    let cfg = fleet.config().clone();
    report.gpu_hours =
        (cfg.hosts * cfg.gpus_per_host) as f64 * ticks as f64 * cfg.interval.as_secs_f64() / 3600.0;
    let all_labels = fleet.labels();
    // Recall counts only labels the run saw to their end (plus grace); precision judges
    // alarms against every label, finished or not.
    let labels: Vec<&FaultLabel> = all_labels
        .iter()
        .filter(|l| l.end + Duration::seconds(GRACE_S) <= last)
        .collect();
    let mut by_gpu: BTreeMap<(&str, &str), Vec<&FaultLabel>> = BTreeMap::new();
    for l in &all_labels {
        by_gpu
            .entry((l.host.as_str(), l.gpu.as_str()))
            .or_default()
            .push(l);
    }
    let mut alarms_by_gpu: BTreeMap<(&str, &str), Vec<&AnomalyEvent>> = BTreeMap::new();
    for a in &firing {
        alarms_by_gpu
            .entry((a.host.as_str(), a.gpu.as_str()))
            .or_default()
            .push(a);
    }
    for kind in FaultKind::ALL {
        let score = report.kinds.entry(kind).or_default();
        for l in labels.iter().filter(|l| l.kind == kind) {
            score.labels += 1;
            let first = alarms_by_gpu
                .get(&(l.host.as_str(), l.gpu.as_str()))
                .into_iter()
                .flatten()
                .filter(|a| rules_for(kind).contains(&a.rule.as_str()) && inside(l, a.event_time))
                .map(|a| a.event_time)
                .min();
            if let Some(t) = first {
                score.detected += 1;
                score
                    .delays
                    .push((t - l.start).num_milliseconds() as f64 / 1000.0);
            }
        }
    }
    let no_labels = Vec::new();
    for a in &firing {
        let gpu_labels = by_gpu
            .get(&(a.host.as_str(), a.gpu.as_str()))
            .unwrap_or(&no_labels);
        let in_any = gpu_labels.iter().any(|l| inside(l, a.event_time));
        let e = report.by_rule.entry(a.rule.clone()).or_default();
        e.0 += 1;
        e.1 += usize::from(in_any);
        let kinds = kinds_for(&a.rule);
        let right = gpu_labels
            .iter()
            .any(|l| kinds.contains(&l.kind) && inside(l, a.event_time));
        for k in kinds
            .iter()
            .filter(|k| rules_for(**k).contains(&a.rule.as_str()))
        {
            let s = report.kinds.entry(*k).or_default();
            s.alarms += 1;
            s.true_alarms += usize::from(right);
        }
    }
    report
}

/// The four classic thresholds as they were before the rules engine: no `for`, no
/// hysteresis. The baseline of the report.
pub const CLASSIC_RULES: &str = r#"
[[threshold]]
name = "gpu_temp_high"
metric = "gpu_temp_c"
above = 85.0
[[threshold]]
name = "cpu_temp_high"
metric = "cpu_temp_c"
above = 80.0
[[threshold]]
name = "board_power_high"
metric = "board_power_w"
above = 300.0
[[threshold]]
name = "gpu_load_high"
metric = "gpu_load_pct"
above = 95.0
severity = "info"
"#;

fn pct(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{:.0} %", x * 100.0)
    }
}

fn secs(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{x:.0} s")
    }
}

/// The per-kind table, Markdown.
pub fn kinds_table(r: &Report) -> String {
    let mut s = String::from(
        "| fault kind | rules | labels | detected | recall | alarms | precision | delay p50 | delay p95 |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (k, v) in &r.kinds {
        s += &format!(
            "| {k} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            rules_for(*k).join(", "),
            v.labels,
            v.detected,
            pct(v.recall()),
            v.alarms,
            pct(v.precision()),
            secs(v.delay_p50()),
            secs(v.delay_p95()),
        );
    }
    s
}

/// Alarms per rule, Markdown.
pub fn rules_table(r: &Report) -> String {
    let mut s = String::from(
        "| rule | firing alarms | inside a fault (±60 s) | meant for |\n|---|---:|---:|---|\n",
    );
    for (rule, (n, inside)) in &r.by_rule {
        let kinds: Vec<String> = kinds_for(rule).iter().map(|k| k.to_string()).collect();
        s += &format!(
            "| {rule} | {n} | {inside} | {} |\n",
            if kinds.is_empty() {
                "— (informational)".to_string()
            } else {
                kinds.join(", ")
            }
        );
    }
    s
}
