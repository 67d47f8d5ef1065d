//! A synthetic fleet day in the stream processor's lake, for benchmarks and demos: the
//! `samples` Delta table gets one commit per hour holding one file per Kafka partition
//! (each GPU in one partition, as its message key would put it, rows in offset order),
//! with the partitions' offsets as the commit's progress, as the processor writes it.
//!
//! Each GPU alternates idle and busy phases of random length; temperature follows
//! power with a lag, occasional load bursts make fast temperature rises, every GPU
//! logs two sessions with a 10-minute gap at noon, and NVML-style energy counters
//! and throttle codes are filled in. Readings are rounded to the resolution GPU-Z
//! logs (0.1 °C, 0.1 W, whole percent, whole MHz), so they repeat like real sensors.

use chrono::{NaiveDate, NaiveTime};
use gpustream::{Metric, Metrics, Sample, Source, event_id};
use gpustream_lake::Lake;
use gpustream_lake::columnar::SampleBatchBuilder;
use gpustream_lake::delta::{SAMPLES, TableWriter, app_id};

use crate::rng::Rng;
use gpustream_lake::Result;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// The UTC day.
    pub date: NaiveDate,
    /// Number of GPUs (8 per host).
    pub gpus: usize,
    /// Sampling interval, milliseconds.
    pub interval_ms: u64,
    /// Kafka partitions the GPUs are spread over.
    pub partitions: usize,
    /// PRNG seed.
    pub seed: u64,
}

struct GpuSim {
    host: String,
    gpu: String,
    index: u32,
    partition: usize,
    seq: u64,
    load_target: f64,
    phase_left_s: f64,
    load: f64,
    temp: f64,
    energy_mj: f64,
    rng: Rng,
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

impl GpuSim {
    fn step(&mut self, dt_s: f64) -> Metrics {
        self.phase_left_s -= dt_s;
        if self.phase_left_s <= 0.0 {
            let busy = self.rng.unit() < 0.45;
            self.load_target = if busy {
                75.0 + self.rng.unit() * 25.0
            } else {
                self.rng.unit() * 8.0
            };
            self.phase_left_s = 60.0 + self.rng.unit() * 1800.0;
        }
        // Short bursts: the load jumps for a moment, the temperature jumps after it.
        let burst = self.rng.unit() < 0.0005 * dt_s;
        let target = if burst { 100.0 } else { self.load_target };
        let k = (dt_s / 20.0).min(1.0);
        self.load += (target - self.load) * if burst { 1.0 } else { k * 4.0 }.min(1.0);
        let load = (self.load + self.rng.noise(3.0)).clamp(0.0, 100.0).round();
        let power = round1(28.0 + 2.3 * load + self.rng.noise(4.0));
        let temp_target = 33.0 + 0.2 * power;
        self.temp += (temp_target - self.temp) * (dt_s / 40.0).min(1.0);
        if burst {
            self.temp += 12.0;
        }
        let temp = round1(self.temp + self.rng.noise(0.4));
        self.energy_mj += power * dt_s * 1000.0;
        let mut m = Metrics::default();
        m.set(Metric::GpuTemp, temp);
        m.set(Metric::HotSpotTemp, round1(temp + 9.0 + 0.05 * load));
        m.set(Metric::MemoryTemp, round1(temp + 4.0));
        m.set(
            Metric::CpuTemp,
            round1(45.0 + 0.1 * load + self.rng.noise(2.0)),
        );
        m.set(Metric::GpuLoad, load);
        m.set(Metric::BoardPower, power);
        m.set(Metric::MemoryUsed, (800.0 + 60.0 * load).round());
        m.set(
            Metric::CoreClock,
            if load > 10.0 {
                (1900.0 - 1.5 * (temp - 60.0).max(0.0)).round()
            } else {
                300.0
            },
        );
        m.set(
            Metric::MemoryClock,
            if load > 10.0 { 9501.0 } else { 405.0 },
        );
        m.set(Metric::Energy, self.energy_mj.round());
        let mut reasons = 0u32;
        if power > 250.0 {
            reasons |= 0x4;
        }
        if temp > 83.0 {
            reasons |= 0x20;
        }
        if load < 5.0 {
            reasons |= 0x1;
        }
        m.set(Metric::ThrottleReasons, f64::from(reasons));
        m
    }
}

/// Writes the synthetic day into `lake`; returns the number of samples written.
pub async fn write_synthetic_day(lake: &Lake, opts: &SynthOptions) -> Result<u64> {
    if opts.gpus == 0 || opts.interval_ms == 0 || opts.partitions == 0 {
        return Err(gpustream_lake::Error::Invalid(
            "--gpus, --interval-ms and --partitions must be positive".into(),
        ));
    }
    let day_start = opts.date.and_time(NaiveTime::MIN).and_utc();
    let mut sims: Vec<GpuSim> = (0..opts.gpus)
        .map(|i| GpuSim {
            host: format!("node{:03}", i / 8),
            gpu: format!("gpu{}", i % 8),
            index: (i % 8) as u32,
            partition: i % opts.partitions,
            seq: 0,
            load_target: 0.0,
            phase_left_s: 0.0,
            load: 0.0,
            temp: 35.0,
            energy_mj: 1e9,
            rng: Rng::new(opts.seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)),
        })
        .collect();
    let step_us = opts.interval_ms as i64 * 1000;
    let dt_s = opts.interval_ms as f64 / 1000.0;
    // The noon gap between each GPU's two sessions.
    let (gap_from, gap_to) = (12 * 3600 * 1_000_000i64, (12 * 3600 + 600) * 1_000_000i64);
    let mut offsets = vec![0i64; opts.partitions];
    let mut total = 0u64;
    let mut table = TableWriter::open(lake, SAMPLES).await?;
    for hour in 0..24i64 {
        let mut builders: Vec<SampleBatchBuilder> = (0..opts.partitions)
            .map(|_| SampleBatchBuilder::with_capacity(1024))
            .collect();
        let (from, to) = (hour * 3600 * 1_000_000, (hour + 1) * 3600 * 1_000_000);
        let mut t = from.div_euclid(step_us) * step_us;
        if t < from {
            t += step_us;
        }
        while t < to {
            if !(gap_from..gap_to).contains(&t) {
                let event_time = day_start + chrono::Duration::microseconds(t);
                let session = if t < gap_from { "s-am" } else { "s-pm" };
                for sim in &mut sims {
                    let metrics = sim.step(dt_s);
                    sim.seq += 1;
                    let s = Sample {
                        event_id: event_id(Source::Sim, &sim.host, &sim.gpu, session, sim.seq),
                        event_time,
                        host: sim.host.clone(),
                        gpu: sim.gpu.clone(),
                        gpu_index: sim.index,
                        gpu_name: Some("Synthetic RTX".into()),
                        source: Source::Sim,
                        session: format!("{}-{session}", opts.date),
                        seq: sim.seq,
                        metrics,
                        unsupported: Vec::new(),
                        extra: Default::default(),
                    };
                    builders[sim.partition].push(&s);
                }
            }
            t += step_us;
        }
        let hour_start = day_start + chrono::Duration::hours(hour);
        let mut batches = Vec::new();
        let mut progress = Vec::new();
        for (p, b) in builders.iter_mut().enumerate() {
            let rows = b.len() as i64;
            if rows == 0 {
                continue;
            }
            let batch = b.finish()?;
            batches.push(table.with_partition(&batch, hour_start)?);
            offsets[p] += rows;
            progress.push((app_id("gpu-samples", p as i32), offsets[p] - 1));
            total += rows as u64;
        }
        table.append(&batches, &progress).await?;
    }
    Ok(total)
}
