//! The fleet simulator: its labels line up with the faults it injects, it is
//! deterministic for a seed, and a healthy fleet stays inside healthy limits.

// Test helpers unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use gpustream::throttle;
use gpustream::{Metric, Sample, Source};
use gpustream_sim::fleet::model::{MEMORY_TOTAL_MB, POWER_LIMIT_W};
use gpustream_sim::fleet::{FaultKind, FaultLabel, Fleet, FleetConfig};

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap()
}

fn run(cfg: FleetConfig, ticks: u64) -> (Vec<Sample>, Vec<FaultLabel>, Fleet) {
    let mut fleet = Fleet::new(cfg);
    let mut samples = Vec::new();
    for _ in 0..ticks {
        samples.extend(fleet.next_tick());
    }
    let labels = fleet.labels();
    (samples, labels, fleet)
}

fn get(s: &Sample, m: Metric) -> f64 {
    s.metrics.get(m).unwrap_or_else(|| {
        panic!(
            "{} missing in {}/{} seq {}",
            m.column(),
            s.host,
            s.gpu,
            s.seq
        )
    })
}

/// One GPU's samples by tick, and its labels.
struct GpuTrace {
    by_tick: BTreeMap<u64, Sample>,
    labels: Vec<FaultLabel>,
}

impl GpuTrace {
    fn label_at(&self, t: DateTime<Utc>) -> Option<&FaultLabel> {
        self.labels.iter().find(|l| l.contains(t))
    }
    fn kind_at(&self, t: DateTime<Utc>) -> Option<FaultKind> {
        self.label_at(t).map(|l| l.kind)
    }
    fn inside<'a>(&'a self, l: &'a FaultLabel) -> impl Iterator<Item = &'a Sample> + 'a {
        self.by_tick
            .values()
            .filter(move |s| l.contains(s.event_time))
    }
}

fn traces(samples: &[Sample], labels: &[FaultLabel]) -> BTreeMap<(String, String), GpuTrace> {
    let mut out: BTreeMap<(String, String), GpuTrace> = BTreeMap::new();
    for s in samples {
        out.entry((s.host.clone(), s.gpu.clone()))
            .or_insert_with(|| GpuTrace {
                by_tick: BTreeMap::new(),
                labels: Vec::new(),
            })
            .by_tick
            .insert(s.seq, s.clone());
    }
    for l in labels {
        if let Some(t) = out.get_mut(&(l.host.clone(), l.gpu.clone())) {
            t.labels.push(l.clone());
        }
    }
    out
}

const INTERVAL: Duration = Duration::from_secs(2);
const TICKS: u64 = 10 * 3600 / 2; // ten hours

fn faulty_fleet(seed: u64) -> (Vec<Sample>, Vec<FaultLabel>, Fleet) {
    run(
        FleetConfig {
            hosts: 4,
            gpus_per_host: 2,
            seed,
            interval: INTERVAL,
            start: start(),
            faults: true,
        },
        TICKS,
    )
}

#[test]
fn labels_line_up_with_injected_faults() {
    for seed in [42, 5, 2026] {
        check_labels(seed);
    }
}

fn check_labels(seed: u64) {
    let (samples, labels, fleet) = faulty_fleet(seed);
    eprintln!(
        "seed {seed}: {} samples, {} labels",
        samples.len(),
        labels.len()
    );
    let kinds: HashSet<FaultKind> = labels.iter().map(|l| l.kind).collect();
    for k in FaultKind::ALL {
        assert!(kinds.contains(&k), "no {k} fault in ten hours of 8 GPUs");
    }
    let traces = traces(&samples, &labels);
    assert_eq!(traces.len(), 8, "every GPU reported");
    let mut checked: BTreeMap<FaultKind, usize> = BTreeMap::new();
    for ((host, gpu), tr) in &traces {
        // One fault at a time, healthy stretches of at least five minutes between them.
        for w in tr.labels.windows(2) {
            assert!(
                w[1].start - w[0].end >= chrono::Duration::minutes(5),
                "{host}/{gpu}: {w:?} too close"
            );
        }
        // A tick without a sample is exactly a tick inside a dropout or GPU-lost label.
        for t in 0..TICKS {
            let time = fleet.tick_time(t);
            let silent = matches!(
                tr.kind_at(time),
                Some(FaultKind::Dropout | FaultKind::GpuLost)
            );
            assert_eq!(
                tr.by_tick.contains_key(&t),
                !silent,
                "{host}/{gpu} tick {t} ({time}): label {:?}",
                tr.label_at(time)
            );
        }
        let mut prev: Option<&Sample> = None;
        let mut same_temp_run = 0;
        let mut idle_alloc_run = 0;
        for s in tr.by_tick.values() {
            let kind = tr.kind_at(s.event_time);
            let temp = get(s, Metric::GpuTemp);
            let power = get(s, Metric::BoardPower);
            let bits = get(s, Metric::ThrottleReasons) as u64;
            let ctx = format!("{host}/{gpu} at {} ({kind:?})", s.event_time);
            if kind != Some(FaultKind::Overheating) {
                assert!(temp < 85.0, "{ctx}: {temp} °C outside an overheating label");
                assert_eq!(bits & throttle::THERMAL, 0, "{ctx}: thermal bits");
            }
            if temp >= 85.0 {
                assert_ne!(
                    bits & throttle::SW_THERMAL_SLOWDOWN,
                    0,
                    "{ctx}: hot, not throttled"
                );
                assert!(
                    get(s, Metric::CoreClock) < 1700.0,
                    "{ctx}: hot at full clock"
                );
            }
            if kind == Some(FaultKind::PowerSpike) {
                assert!(power > 1.2 * POWER_LIMIT_W, "{ctx}: spike only {power} W");
            } else {
                assert!(power < POWER_LIMIT_W, "{ctx}: {power} W outside a spike");
            }
            let fan = get(s, Metric::FanPct);
            if kind == Some(FaultKind::FanFailure) {
                assert_eq!(fan, 0.0, "{ctx}");
                assert_eq!(get(s, Metric::FanRpm), 0.0, "{ctx}");
            } else {
                assert!(fan >= 30.0, "{ctx}: fan {fan}");
            }
            assert_eq!(
                s.metrics.get(Metric::Xid).is_some(),
                kind == Some(FaultKind::Xid),
                "{ctx}: xid {:?}",
                s.metrics.get(Metric::Xid)
            );
            if let Some(p) = prev {
                let moved = [
                    Metric::EccCorrected,
                    Metric::EccUncorrected,
                    Metric::RemappedRows,
                ]
                .iter()
                .any(|m| get(s, *m) != get(p, *m));
                if moved {
                    assert_eq!(kind, Some(FaultKind::EccBurst), "{ctx}: ECC counters moved");
                }
                if kind != Some(FaultKind::StuckSensor) && temp == get(p, Metric::GpuTemp) {
                    same_temp_run += 1;
                } else {
                    same_temp_run = 0;
                }
                assert!(
                    same_temp_run < 20,
                    "{ctx}: temperature frozen outside a label"
                );
            }
            let idle_with_memory =
                get(s, Metric::GpuLoad) < 5.0 && get(s, Metric::MemoryUsed) > 0.5 * MEMORY_TOTAL_MB;
            if idle_with_memory && kind != Some(FaultKind::IdleAllocated) {
                idle_alloc_run += 1;
                assert!(
                    idle_alloc_run < 150,
                    "{ctx}: idle with memory held for 5 minutes, unlabelled"
                );
            } else {
                idle_alloc_run = 0;
            }
            prev = Some(s);
        }

        for l in &tr.labels {
            if l.end > fleet.tick_time(TICKS) {
                continue; // still running at the end of the run
            }
            *checked.entry(l.kind).or_default() += 1;
            let inside: Vec<&Sample> = tr.inside(l).collect();
            let temps: Vec<f64> = inside.iter().map(|s| get(s, Metric::GpuTemp)).collect();
            let ctx = format!("{host}/{gpu} {l:?}");
            match l.kind {
                FaultKind::Overheating => {
                    let max = temps.iter().cloned().fold(f64::MIN, f64::max);
                    assert!(max >= 88.0, "{ctx}: peak {max}");
                    assert!(temps[0] < 85.0, "{ctx}: starts at {}", temps[0]);
                    assert!(
                        *temps.last().unwrap() < 80.0,
                        "{ctx}: not cooled down inside the label"
                    );
                    let hot = temps.iter().filter(|t| **t >= 85.0).count();
                    assert!(
                        hot * 2 >= temps.len(),
                        "{ctx}: only {hot}/{} hot",
                        temps.len()
                    );
                }
                FaultKind::FanFailure => {
                    assert!(temps.last() > temps.first(), "{ctx}: no drift up {temps:?}");
                }
                FaultKind::StuckSensor => {
                    assert!(temps.windows(2).all(|w| w[0] == w[1]), "{ctx}: not frozen");
                    let p: Vec<f64> = inside.iter().map(|s| get(s, Metric::BoardPower)).collect();
                    let range = p.iter().cloned().fold(f64::MIN, f64::max)
                        - p.iter().cloned().fold(f64::MAX, f64::min);
                    assert!(range > 50.0, "{ctx}: power did not move ({range} W)");
                }
                FaultKind::Dropout => {
                    let n = inside.len();
                    let span = (l.end - l.start).num_milliseconds() / INTERVAL.as_millis() as i64;
                    assert_eq!(n, 0, "{ctx}");
                    assert!((3..=30).contains(&span), "{ctx}: {span} intervals");
                }
                FaultKind::GpuLost => {
                    assert!(inside.is_empty(), "{ctx}");
                    assert!(l.end - l.start >= chrono::Duration::minutes(10), "{ctx}");
                }
                FaultKind::IdleAllocated => {
                    assert!(l.end - l.start >= chrono::Duration::minutes(30), "{ctx}");
                    for s in &inside {
                        assert!(get(s, Metric::GpuLoad) < 5.0, "{ctx}");
                        assert!(get(s, Metric::MemoryUsed) > 0.5 * MEMORY_TOTAL_MB, "{ctx}");
                    }
                }
                FaultKind::EccBurst => {
                    let before = tr
                        .by_tick
                        .values()
                        .rev()
                        .find(|s| s.event_time < l.start)
                        .expect("a sample before the burst");
                    let last = inside.last().expect("samples in the burst");
                    for m in [Metric::EccCorrected, Metric::EccUncorrected] {
                        assert!(get(last, m) > get(before, m), "{ctx}: {} flat", m.column());
                    }
                }
                FaultKind::Xid => {
                    assert_eq!(inside.len(), 1, "{ctx}");
                    let code = get(inside[0], Metric::Xid) as u32;
                    assert!(
                        [79, 48, 31, 13, 43, 94].contains(&code),
                        "{ctx}: xid {code}"
                    );
                }
                FaultKind::PowerSpike => assert!(!inside.is_empty(), "{ctx}"),
            }
        }
    }
    for k in FaultKind::ALL {
        assert!(
            checked.get(&k).copied().unwrap_or(0) > 0,
            "no finished {k} label checked"
        );
    }
}

#[test]
fn same_seed_same_fleet_other_seed_other_fleet() {
    let cfg = FleetConfig {
        hosts: 2,
        gpus_per_host: 2,
        seed: 7,
        interval: Duration::from_secs(5),
        start: start(),
        faults: true,
    };
    let (a, la, _) = run(cfg.clone(), 3000);
    let (b, lb, _) = run(cfg.clone(), 3000);
    assert!(!la.is_empty());
    assert_eq!(a, b);
    assert_eq!(la, lb);
    let (c, lc, _) = run(
        FleetConfig {
            seed: 8,
            ..cfg.clone()
        },
        3000,
    );
    assert_ne!(a, c);
    assert_ne!(la, lc);
    // A GPU's streams depend on its position only: a bigger fleet keeps the first GPUs.
    let (d, ld, _) = run(FleetConfig { hosts: 3, ..cfg }, 3000);
    let first: Vec<&Sample> = d.iter().filter(|s| s.host != "sim-host-02").collect();
    assert_eq!(first, a.iter().collect::<Vec<_>>());
    assert_eq!(
        ld.iter()
            .filter(|l| l.host != "sim-host-02")
            .cloned()
            .collect::<Vec<_>>(),
        la
    );
}

#[test]
fn identity_ids_and_label_visibility() {
    let cfg = FleetConfig {
        hosts: 3,
        gpus_per_host: 2,
        seed: 3,
        interval: Duration::from_millis(500),
        start: start(),
        faults: true,
    };
    let mut fleet = Fleet::new(cfg);
    let first = fleet.next_tick();
    assert_eq!(first.len(), 6, "no fault starts at tick 0");
    let names: Vec<(String, String, u32)> = first
        .iter()
        .map(|s| (s.host.clone(), s.gpu.clone(), s.gpu_index))
        .collect();
    assert_eq!(names[0], ("sim-host-00".into(), "gpu0".into(), 0));
    assert_eq!(names[5], ("sim-host-02".into(), "gpu1".into(), 1));
    assert!(
        first
            .iter()
            .all(|s| s.source == Source::Sim && s.event_time == start())
    );
    let mut ids = HashSet::new();
    for s in &first {
        ids.insert(s.event_id.clone());
    }
    for t in 1..20_000u64 {
        let now = fleet.tick_time(t);
        for s in fleet.next_tick() {
            assert_eq!(s.event_time, now);
            assert_eq!(s.seq, t);
            assert!(ids.insert(s.event_id.clone()), "duplicate id");
        }
        // Labels appear when their fault starts, never before.
        assert!(fleet.labels().iter().all(|l| l.start <= now));
    }
    assert!(!fleet.labels().is_empty());
}

#[test]
fn healthy_fleet_stays_healthy() {
    let (samples, labels, _) = run(
        FleetConfig {
            hosts: 2,
            gpus_per_host: 4,
            seed: 11,
            interval: Duration::from_secs(1),
            start: start(),
            faults: false,
        },
        7200,
    );
    assert!(labels.is_empty());
    assert_eq!(samples.len(), 8 * 7200);
    let mut busy = 0;
    for s in &samples {
        let temp = get(s, Metric::GpuTemp);
        assert!((20.0..80.0).contains(&temp), "{temp}");
        assert!(get(s, Metric::BoardPower) < POWER_LIMIT_W);
        assert!(s.metrics.get(Metric::Xid).is_none());
        if get(s, Metric::GpuLoad) > 80.0 {
            busy += 1;
            // Load drives power and clocks.
            assert!(get(s, Metric::BoardPower) > 200.0);
            assert!(get(s, Metric::CoreClock) > 2000.0);
        }
    }
    // Idle and busy phases both happen.
    assert!(
        busy > samples.len() / 5 && busy < samples.len() * 4 / 5,
        "{busy}"
    );
}

#[test]
fn labels_serialise_as_snake_case_json_lines() {
    let l = FaultLabel {
        host: "sim-host-00".into(),
        gpu: "gpu1".into(),
        kind: FaultKind::IdleAllocated,
        start: start(),
        end: start() + chrono::Duration::minutes(31),
    };
    let line = serde_json::to_string(&l).unwrap();
    assert!(line.contains("\"kind\":\"idle_allocated\""), "{line}");
    let back: FaultLabel = serde_json::from_str(&line).unwrap();
    assert_eq!(back, l);
}
