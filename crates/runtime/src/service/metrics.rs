//! One metric vocabulary for every service: the same name in every binary, told apart
//! by the `component` label (`producer`, `stream-processor`, `consumer-influx`,
//! `batch-analytics`), plus `gpustream_build_info` and process metrics.
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `gpustream_build_info` | gauge (1) | component, version | what is running |
//! | `gpustream_records_in_total` | counter | component, topic | records consumed (or read from a source) |
//! | `gpustream_records_out_total` | counter | component | records made durable (lake rows, points, messages) |
//! | `gpustream_dead_lettered_total` | counter | component | records sent to a dead-letter topic |
//! | `gpustream_consumer_lag` | gauge | component, topic, partition | messages between the committed offset and the end of the partition |
//! | `gpustream_assigned_partitions` | gauge | component | partitions this instance owns |
//! | `gpustream_commits_total` / `gpustream_commit_errors_total` | counter | component | offset commits |
//! | `gpustream_paused` | gauge | component | 1 while consumption is paused by back-pressure |
//! | `gpustream_write_seconds` | histogram | component | time to make one batch durable |
//! | `gpustream_write_errors_total` | counter | component | failed writes (retried) |
//! | `process_*` | | | resident memory, CPU seconds, open file descriptors, start time |

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::error::Result;

/// Registers `gpustream_build_info{component, version} 1`.
pub fn build_info(registry: &Registry, component: &str, version: &str) -> Result<()> {
    let g = IntGaugeVec::new(
        Opts::new(
            "gpustream_build_info",
            "What is running: 1 per component and version",
        ),
        &["component", "version"],
    )?;
    g.with_label_values(&[component, version]).set(1);
    registry.register(Box::new(g))?;
    Ok(())
}

/// The shared metrics of one component (see the module table).
#[derive(Clone)]
pub struct CommonMetrics {
    component: String,
    records_in: IntCounterVec,
    /// Records made durable.
    pub records_out: IntCounter,
    /// Records sent to a dead-letter topic.
    pub dead_lettered: IntCounter,
    lag: IntGaugeVec,
    /// Partitions owned.
    pub assigned_partitions: IntGauge,
    /// Offset commits.
    pub commits: IntCounter,
    /// Failed offset commits.
    pub commit_errors: IntCounter,
    /// 1 while paused by back-pressure.
    pub paused: IntGauge,
    /// Time to make one batch durable.
    pub write_seconds: Histogram,
    /// Failed (retried) writes.
    pub write_errors: IntCounter,
}

impl CommonMetrics {
    /// Registers the shared metrics of `component` in `registry`.
    pub fn new(registry: &Registry, component: &str) -> Result<CommonMetrics> {
        let c = component;
        let labelled = |name: &str, help: &str| Opts::new(name, help).const_label("component", c);
        let m = CommonMetrics {
            component: c.to_string(),
            records_in: IntCounterVec::new(
                labelled(
                    "gpustream_records_in_total",
                    "Records consumed or read from a source",
                ),
                &["topic"],
            )?,
            records_out: IntCounter::with_opts(labelled(
                "gpustream_records_out_total",
                "Records made durable (lake rows, InfluxDB points, Kafka messages)",
            ))?,
            dead_lettered: IntCounter::with_opts(labelled(
                "gpustream_dead_lettered_total",
                "Records sent to a dead-letter topic",
            ))?,
            lag: IntGaugeVec::new(
                labelled(
                    "gpustream_consumer_lag",
                    "Messages between the committed offset and the end of the partition (librdkafka statistics)",
                ),
                &["topic", "partition"],
            )?,
            assigned_partitions: IntGauge::with_opts(labelled(
                "gpustream_assigned_partitions",
                "Kafka partitions this instance owns",
            ))?,
            commits: IntCounter::with_opts(labelled("gpustream_commits_total", "Offset commits"))?,
            commit_errors: IntCounter::with_opts(labelled(
                "gpustream_commit_errors_total",
                "Failed offset commits",
            ))?,
            paused: IntGauge::with_opts(labelled(
                "gpustream_paused",
                "1 while consumption is paused by back-pressure",
            ))?,
            write_seconds: Histogram::with_opts(
                HistogramOpts::new("gpustream_write_seconds", "Time to make one batch durable")
                    .const_label("component", c)
                    .buckets(vec![
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    ]),
            )?,
            write_errors: IntCounter::with_opts(labelled(
                "gpustream_write_errors_total",
                "Failed writes (retried)",
            ))?,
        };
        registry.register(Box::new(m.records_in.clone()))?;
        registry.register(Box::new(m.records_out.clone()))?;
        registry.register(Box::new(m.dead_lettered.clone()))?;
        registry.register(Box::new(m.lag.clone()))?;
        registry.register(Box::new(m.assigned_partitions.clone()))?;
        registry.register(Box::new(m.commits.clone()))?;
        registry.register(Box::new(m.commit_errors.clone()))?;
        registry.register(Box::new(m.paused.clone()))?;
        registry.register(Box::new(m.write_seconds.clone()))?;
        registry.register(Box::new(m.write_errors.clone()))?;
        Ok(m)
    }

    /// The component label.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// Counts one record in from `topic`.
    pub fn record_in(&self, topic: &str) {
        self.records_in.with_label_values(&[topic]).inc();
    }

    /// Records consumed so far, over every topic.
    pub fn records_in_total(&self) -> u64 {
        use prometheus::core::Collector as _;
        self.records_in
            .collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    /// Counts `n` records in from `topic`.
    pub fn records_in(&self, topic: &str, n: u64) {
        self.records_in.with_label_values(&[topic]).inc_by(n);
    }

    /// Sets the lag of one partition.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.lag
            .with_label_values(&[topic, &partition.to_string()])
            .set(lag);
    }

    /// Removes the lag series of a partition this instance no longer owns.
    pub fn forget_lag(&self, topic: &str, partition: i32) {
        let _ = self
            .lag
            .remove_label_values(&[topic, &partition.to_string()]);
    }
}

/// `process_resident_memory_bytes`, `process_cpu_seconds_total`, `process_open_fds`,
/// `process_start_time_seconds`, read from `/proc/self` at each scrape (Linux; nothing
/// elsewhere).
pub struct ProcessCollector {
    descs: Vec<Desc>,
}

impl ProcessCollector {
    /// A collector for this process.
    pub fn new() -> Result<ProcessCollector> {
        let d = |name: &str, help: &str| {
            Desc::new(
                name.to_string(),
                help.to_string(),
                vec![],
                Default::default(),
            )
        };
        Ok(ProcessCollector {
            descs: vec![
                d(
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes",
                )?,
                d(
                    "process_cpu_seconds_total",
                    "User and system CPU time in seconds",
                )?,
                d("process_open_fds", "Open file descriptors")?,
                d(
                    "process_start_time_seconds",
                    "Start time since the epoch in seconds",
                )?,
            ],
        })
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(p) = proc_self::read() else {
            return Vec::new();
        };
        let gauge = |name: &str, help: &str, v: f64| {
            let g = prometheus::Gauge::new(name, help).ok()?;
            g.set(v);
            Some(g.collect())
        };
        let counter = |name: &str, help: &str, v: f64| {
            let c = prometheus::Counter::new(name, help).ok()?;
            c.inc_by(v);
            Some(c.collect())
        };
        [
            gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                p.rss_bytes,
            ),
            counter(
                "process_cpu_seconds_total",
                "User and system CPU time in seconds",
                p.cpu_seconds,
            ),
            gauge("process_open_fds", "Open file descriptors", p.open_fds),
            gauge(
                "process_start_time_seconds",
                "Start time since the epoch in seconds",
                p.start_time,
            ),
        ]
        .into_iter()
        .flatten()
        .flatten()
        .collect()
    }
}

/// Readings of `/proc/self`.
mod proc_self {
    pub struct Reading {
        pub rss_bytes: f64,
        pub cpu_seconds: f64,
        pub open_fds: f64,
        pub start_time: f64,
    }

    #[cfg(target_os = "linux")]
    pub fn read() -> Option<Reading> {
        // Clock ticks and page size are 100 and 4096 on every Linux this runs on; reading
        // them through libc would be the only unsafe code here.
        const TICKS: f64 = 100.0;
        const PAGE: f64 = 4096.0;
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which may contain spaces: "pid (comm) state ...".
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[0] is field 3 (state): utime is field 14, stime 15, starttime 22, rss 24.
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        let (utime, stime, start, rss) = (num(11)?, num(12)?, num(19)?, num(21)?);
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| {
                l.strip_prefix("btime ")
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
        Some(Reading {
            rss_bytes: rss * PAGE,
            cpu_seconds: (utime + stime) / TICKS,
            open_fds,
            start_time: boot + start / TICKS,
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub fn read() -> Option<Reading> {
        None
    }
}
