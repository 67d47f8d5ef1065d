//! Client callbacks shared by every Kafka client of the workspace: librdkafka's logs
//! and errors go to `tracing`, the most recent error is kept so a failure can be
//! explained, and (for consumers) rebalances are signalled to the consuming loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;

/// Receives librdkafka's statistics (every `statistics.interval.ms`).
pub trait StatsObserver: Send + Sync {
    /// One statistics report.
    fn observe(&self, stats: &Statistics);
}

/// The context of every client: logs, errors, rebalances, statistics.
#[derive(Clone, Default)]
pub struct Context {
    last_error: Arc<Mutex<Option<(KafkaError, String)>>>,
    /// The most recent warning or error librdkafka logged (TLS failures are reported
    /// there, not always through the error callback).
    last_log: Arc<Mutex<Option<String>>>,
    rebalanced: Arc<AtomicBool>,
    stats: Option<Arc<dyn StatsObserver>>,
    /// Client logs and errors at debug level only (a probe whose caller reports the
    /// outcome itself, in one line).
    quiet: bool,
}

impl Context {
    /// A context that also hands statistics to `observer`.
    pub fn with_stats(observer: Arc<dyn StatsObserver>) -> Context {
        Context {
            stats: Some(observer),
            ..Default::default()
        }
    }

    /// A context that logs at debug level only.
    pub fn quiet() -> Context {
        Context {
            quiet: true,
            ..Default::default()
        }
    }

    /// The most recent client error with librdkafka's explanation, if any.
    pub fn last_error(&self) -> Option<(KafkaError, String)> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }

    /// The most recent warning or error librdkafka logged, if any.
    pub fn last_log(&self) -> Option<String> {
        self.last_log.lock().ok().and_then(|g| g.clone())
    }

    /// Whether a rebalance happened since the last call (and clears the flag).
    ///
    /// Rebalance callbacks run inside the consumer's poll; a loop that checks this after
    /// every poll never acts on partitions it lost.
    pub fn take_rebalanced(&self) -> bool {
        self.rebalanced.swap(false, Ordering::SeqCst)
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        let serious = matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        );
        if serious && let Ok(mut g) = self.last_log.lock() {
            *g = Some(log_message.to_string());
        }
        if self.quiet {
            tracing::debug!(facility = fac, "librdkafka: {log_message}");
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(facility = fac, "librdkafka: {log_message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(facility = fac, "librdkafka: {log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(facility = fac, "librdkafka: {log_message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(facility = fac, "librdkafka: {log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if self.quiet {
            tracing::debug!(error = %error, reason, "kafka client error");
        } else {
            tracing::warn!(error = %error, reason, "kafka client error");
        }
        if let Ok(mut g) = self.last_error.lock() {
            *g = Some((error, reason.to_string()));
        }
    }

    fn stats(&self, statistics: Statistics) {
        if let Some(o) = &self.stats {
            o.observe(&statistics);
        }
    }
}

impl ConsumerContext for Context {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let parts: Vec<String> = tpl
                    .elements()
                    .iter()
                    .map(|e| format!("{}[{}]", e.topic(), e.partition()))
                    .collect();
                tracing::info!(partitions = %parts.join(", "), "partitions assigned");
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = tpl.count(), "partitions revoked");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
        self.rebalanced.store(true, Ordering::SeqCst);
    }
}
