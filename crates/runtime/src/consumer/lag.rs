//! Consumer lag per topic and partition from librdkafka's statistics (every
//! `statistics.interval.ms`), rather than by asking the broker for watermarks.
//!
//! librdkafka reports `consumer_lag` = high watermark − committed offset for each
//! partition this consumer fetches. On Tansu the high watermark is the start of the
//! newest record batch (see `../shared/docs/local-services.md`), so there the lag reads
//! up to one batch low; on Kafka it is exact.

use std::collections::BTreeSet;
use std::sync::Mutex;

use rdkafka::statistics::Statistics;

use crate::kafka::context::StatsObserver;
use crate::service::{CommonMetrics, Health};

/// Sets `gpustream_consumer_lag{topic, partition}` from each statistics report and
/// removes the series of partitions that are no longer fetched; with [`Health`], also
/// marks the `kafka` part not ready while no broker connection is up.
pub struct LagFromStats {
    metrics: CommonMetrics,
    reported: Mutex<BTreeSet<(String, i32)>>,
    health: Option<Health>,
}

impl LagFromStats {
    /// Reports into `metrics`.
    pub fn new(metrics: CommonMetrics) -> LagFromStats {
        LagFromStats {
            metrics,
            reported: Mutex::new(BTreeSet::new()),
            health: None,
        }
    }

    /// Also reports broker reachability into `health`: a consumer whose brokers are all
    /// down receives nothing and says nothing through its message stream, so this is
    /// where an outage shows.
    pub fn with_health(mut self, health: Health) -> LagFromStats {
        self.health = Some(health);
        self
    }
}

/// `None` when at least one broker connection is up (or librdkafka knows no broker
/// yet), else why not: the brokers and their connection states.
fn brokers_down(stats: &Statistics) -> Option<String> {
    // Node ids below 0 are bootstrap and logical (coordinator) entries, not brokers.
    let known: Vec<_> = stats.brokers.values().filter(|b| b.nodeid >= 0).collect();
    if known.is_empty() || known.iter().any(|b| b.state == "UP") {
        return None;
    }
    let states: Vec<String> = known
        .iter()
        .map(|b| format!("{} {}", b.name, b.state))
        .collect();
    Some(format!(
        "no broker connection is up ({})",
        states.join(", ")
    ))
}

impl StatsObserver for LagFromStats {
    fn observe(&self, stats: &Statistics) {
        if let Some(health) = &self.health {
            match brokers_down(stats) {
                Some(reason) => {
                    tracing::warn!(%reason, "kafka unreachable");
                    health.fail("kafka", reason);
                }
                None => health.ok("kafka"),
            }
        }
        let mut now = BTreeSet::new();
        for (topic, t) in &stats.topics {
            for (partition, p) in &t.partitions {
                // -1 is librdkafka's unassigned/internal partition; a partition that is
                // not fetched has no meaningful lag.
                if *partition < 0 || p.fetch_state == "none" {
                    continue;
                }
                // Before the group's first commit librdkafka reports -1: everything
                // the partition holds is then still to be made durable.
                let lag = if p.consumer_lag >= 0 {
                    p.consumer_lag
                } else if p.hi_offset >= 0 {
                    (p.hi_offset - p.lo_offset.max(0)).max(0)
                } else {
                    continue;
                };
                self.metrics.set_lag(topic, *partition, lag);
                now.insert((topic.clone(), *partition));
            }
        }
        if let Ok(mut reported) = self.reported.lock() {
            for (topic, partition) in reported.difference(&now) {
                self.metrics.forget_lag(topic, *partition);
            }
            *reported = now;
        }
    }
}
