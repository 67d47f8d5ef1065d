//! Detection quality of the default rules against the fleet simulator's labelled faults:
//! precision, recall and detection delay per fault kind, with the four classic thresholds
//! (no `for`, no hysteresis) run on the same fleet as the baseline.
//!
//! ```sh
//! cargo test --workspace --bench detection_quality
//! # GPUSTREAM_BENCH_HOSTS, GPUSTREAM_BENCH_GPUS, GPUSTREAM_BENCH_HOURS, GPUSTREAM_BENCH_SEED resize it
//! ```
//!
//! Prints Markdown tables for BENCHMARKS.md.

use chrono::{TimeZone, Utc};
use gpustream_sim::fleet::{FaultKind, FleetConfig};
use stream_processor::quality;
use stream_processor::rules::RuleSet;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let hosts = env("GPUSTREAM_BENCH_HOSTS", 8) as usize;
    let gpus = env("GPUSTREAM_BENCH_GPUS", 4) as usize;
    let hours = env("GPUSTREAM_BENCH_HOURS", 12);
    let seed = env("GPUSTREAM_BENCH_SEED", 42);
    let cfg = |faults: bool| FleetConfig {
        hosts,
        gpus_per_host: gpus,
        seed,
        interval: std::time::Duration::from_secs(1),
        start: Utc
            .with_ymd_and_hms(2025, 3, 14, 0, 0, 0)
            .single()
            .unwrap_or_default(),
        faults,
    };
    let ticks = hours * 3600;
    let classic = RuleSet::from_toml(quality::CLASSIC_RULES, "classic").expect("classic rules");

    println!("fleet: {hosts} hosts x {gpus} GPUs, {hours} h at 1 s, seed {seed}\n");
    let engine = quality::evaluate(cfg(true), ticks, RuleSet::defaults());
    println!(
        "### Default rules ({} samples, {:.0} GPU-hours; detector {:.0} k samples/s in this build)\n",
        engine.samples,
        engine.gpu_hours,
        engine.samples as f64 / engine.detect_seconds / 1000.0
    );
    println!("{}", quality::kinds_table(&engine));
    println!("{}", quality::rules_table(&engine));

    let base = quality::evaluate(cfg(true), ticks, classic.clone());
    println!(
        "detector throughput, default rules vs the classic four thresholds: {:.0} k vs {:.0} k samples/s (x{:.2})\n",
        engine.samples as f64 / engine.detect_seconds / 1000.0,
        base.samples as f64 / base.detect_seconds / 1000.0,
        (engine.samples as f64 / engine.detect_seconds)
            / (base.samples as f64 / base.detect_seconds)
    );
    println!("### Baseline: the four classic thresholds, same fleet\n");
    println!("{}", quality::rules_table(&base));
    let (e_ov, b_ov) = (
        &engine.kinds[&FaultKind::Overheating],
        &base.kinds[&FaultKind::Overheating],
    );
    let (e_ps, b_ps) = (
        &engine.kinds[&FaultKind::PowerSpike],
        &base.kinds[&FaultKind::PowerSpike],
    );
    let firing = |r: &quality::Report, rule: &str| r.by_rule.get(rule).map_or(0, |x| x.0);
    println!(
        "overheating: recall {:.2} vs {:.2}, precision {:.2} vs {:.2}; power spike: recall {:.2} vs {:.2}; \
         gpu_temp_high alarms {} vs {} (x{:.2}); gpu_load_high alarms {} vs {} (x{:.3})\n",
        e_ov.recall(),
        b_ov.recall(),
        e_ov.precision(),
        b_ov.precision(),
        e_ps.recall(),
        b_ps.recall(),
        firing(&engine, "gpu_temp_high"),
        firing(&base, "gpu_temp_high"),
        firing(&engine, "gpu_temp_high") as f64 / firing(&base, "gpu_temp_high").max(1) as f64,
        firing(&engine, "gpu_load_high"),
        firing(&base, "gpu_load_high"),
        firing(&engine, "gpu_load_high") as f64 / firing(&base, "gpu_load_high").max(1) as f64,
    );

    let healthy = quality::evaluate(cfg(false), ticks, RuleSet::defaults());
    let healthy_base = quality::evaluate(cfg(false), ticks, classic);
    let total = |r: &quality::Report| r.by_rule.values().map(|x| x.0).sum::<usize>();
    println!("### Healthy fleet (faults off), same size and seed\n");
    println!("{}", quality::rules_table(&healthy));
    println!(
        "alarms per GPU-hour: default rules {:.3}, classic thresholds {:.3}",
        total(&healthy) as f64 / healthy.gpu_hours,
        total(&healthy_base) as f64 / healthy_base.gpu_hours
    );
}
