//! Publishing samples to Kafka.
//!
//! Delivery is asynchronous (librdkafka batches and retries, idempotent, acks=all); every
//! delivery report is counted so that a failed delivery is reported, never dropped silently.
//! A sink may report to the shared metrics and readiness ([`SinkObserver`]): samples in,
//! samples delivered, delivery failures, and whether Kafka takes what is sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use gpustream::Sample;
use gpustream_runtime::kafka::KafkaSettings;
use gpustream_runtime::service::{CommonMetrics, Health};
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use crate::error::{Error, Result};

/// Where samples go. Kafka in production; tests may collect them.
pub trait SampleSink {
    /// Queues one sample for delivery.
    fn send(&mut self, sample: &Sample) -> Result<()>;
    /// Waits until everything queued was delivered or failed; returns the totals.
    fn flush(&mut self, timeout: Duration) -> Result<DeliveryTotals>;
}

/// Delivery counts so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryTotals {
    /// Messages acknowledged by the broker.
    pub delivered: u64,
    /// Messages that failed for good.
    pub failed: u64,
}

/// The readiness part a sink reports on.
pub const HEALTH_PART: &str = "kafka";

/// Reports a sink's traffic to the shared metrics (`gpustream_records_in_total` per
/// sample sent, labelled with the source; `gpustream_records_out_total` per delivery;
/// `gpustream_write_errors_total` per failed delivery) and its state to readiness
/// (part `kafka`: failing from a failed delivery, or librdkafka finding every broker
/// down, until the next delivery succeeds).
#[derive(Clone)]
pub struct SinkObserver {
    metrics: CommonMetrics,
    health: Health,
    source: String,
    failing: Arc<AtomicBool>,
}

impl SinkObserver {
    /// An observer reporting to `metrics` and `health`; `source` labels the records read
    /// (`gpuz`, `nvml`, `sim`).
    pub fn new(metrics: CommonMetrics, health: Health, source: &str) -> SinkObserver {
        SinkObserver {
            metrics,
            health,
            source: source.to_string(),
            failing: Arc::new(AtomicBool::new(false)),
        }
    }

    fn sent(&self) {
        self.metrics.record_in(&self.source);
    }

    fn delivered(&self) {
        self.metrics.records_out.inc();
        // Only a change of state takes the health lock, not every delivery.
        if self.failing.swap(false, Ordering::Relaxed) {
            self.health.ok(HEALTH_PART);
            tracing::info!("deliveries to Kafka succeed again");
        }
    }

    fn failed(&self, why: String) {
        self.metrics.write_errors.inc();
        self.fail(why);
    }

    fn fail(&self, why: String) {
        self.failing.store(true, Ordering::Relaxed);
        self.health.fail(HEALTH_PART, why);
    }
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
    observer: Option<SinkObserver>,
}

struct DeliveryContext(Arc<Counters>);

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka client error");
        // Every broker unreachable: nothing will be delivered until one is back, which
        // delivery reports would only say after `message.timeout.ms`.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown)
            && let Some(o) = &self.0.observer
        {
            o.fail(format!("all brokers down: {reason}"));
        }
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
                if let Some(o) = &self.0.observer {
                    o.delivered();
                }
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut g) = self.0.first_error.lock() {
                    g.get_or_insert_with(|| e.to_string());
                }
                if let Some(o) = &self.0.observer {
                    o.failed(format!("delivery failed: {e}"));
                }
            }
        }
    }
}

/// A Kafka sink keyed by host/GPU so each GPU's samples stay in order.
pub struct KafkaSink {
    producer: ThreadedProducer<DeliveryContext>,
    topic: String,
    counters: Arc<Counters>,
    buf: Vec<u8>,
}

/// What librdkafka may hold queued, in KiB, unless the Kafka settings say otherwise.
/// A replay at `--speed 0` produces faster than a broker takes it: past this bound
/// [`SampleSink::send`] waits, so the producer's memory stays flat whatever the broker's
/// pace (16 MiB is ~25,000 samples: a 2 GB replay into a local broker ran as fast as with
/// librdkafka's 1 GiB).
pub const QUEUE_KBYTES: u32 = 16 * 1024;

/// Compression codecs librdkafka is built with here.
pub const COMPRESSIONS: [&str; 5] = ["lz4", "zstd", "gzip", "snappy", "none"];

/// Producer settings beyond the shared defaults of [`gpustream_runtime::kafka::producer_config`].
#[derive(Debug, Clone, PartialEq)]
pub struct SinkOptions {
    /// One of [`COMPRESSIONS`].
    pub compression: String,
    /// How long librdkafka keeps retrying a message before reporting it failed.
    pub message_timeout: Duration,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            compression: "lz4".into(),
            message_timeout: Duration::from_secs(60),
        }
    }
}

/// Checks a compression codec name against [`COMPRESSIONS`].
pub fn check_compression(name: &str) -> Result<()> {
    if COMPRESSIONS.contains(&name) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "unknown compression `{name}` (use one of: {})",
            COMPRESSIONS.join(", ")
        )))
    }
}

impl KafkaSink {
    /// Connects a producer to a plaintext broker (see
    /// [`gpustream_runtime::kafka::producer_config`]).
    pub fn new(brokers: &str, topic: &str) -> Result<Self> {
        Self::with_options(brokers, topic, &SinkOptions::default())
    }

    /// Connects a producer to a plaintext broker with the given compression and delivery
    /// timeout.
    pub fn with_options(brokers: &str, topic: &str, opts: &SinkOptions) -> Result<Self> {
        Self::connect(&KafkaSettings::plaintext(brokers), topic, opts, None)
    }

    /// Connects a producer with `kafka`'s brokers and client properties (TLS, SASL and
    /// secrets included), reporting to `observer` when given.
    ///
    /// `opts` set the compression and the delivery timeout unless the Kafka settings set
    /// `compression.type` or `message.timeout.ms` themselves (`-X` and `[kafka]` win); the
    /// send queue is bounded to [`QUEUE_KBYTES`] unless they set
    /// `queue.buffering.max.kbytes`.
    pub fn connect(
        kafka: &KafkaSettings,
        topic: &str,
        opts: &SinkOptions,
        observer: Option<SinkObserver>,
    ) -> Result<Self> {
        check_compression(&opts.compression)?;
        let counters = Arc::new(Counters {
            observer,
            ..Counters::default()
        });
        let mut config = kafka.producer_config();
        let given = |k: &str| kafka.properties.contains_key(k);
        if !given("compression.type") && !given("compression.codec") {
            config.set("compression.type", &opts.compression);
        }
        if !given("message.timeout.ms") && !given("delivery.timeout.ms") {
            config.set(
                "message.timeout.ms",
                opts.message_timeout.as_millis().max(1).to_string(),
            );
        }
        if !given("queue.buffering.max.kbytes") {
            config.set("queue.buffering.max.kbytes", QUEUE_KBYTES.to_string());
        }
        let producer = config
            .create_with_context(DeliveryContext(counters.clone()))
            .map_err(|e| {
                Error::Kafka(format!("cannot create producer for {}: {e}", kafka.brokers))
            })?;
        Ok(KafkaSink {
            producer,
            topic: topic.to_string(),
            counters,
            buf: Vec::with_capacity(2048),
        })
    }

    /// Checks that the broker answers and the topic exists, with a clear error otherwise.
    pub fn check_topic(&self, timeout: Duration) -> Result<u32> {
        // All topics, not this one by name: some brokers (Tansu) create a topic that a
        // metadata request names, whatever the client asks for.
        let md = self
            .producer
            .client()
            .fetch_metadata(None, timeout)
            .map_err(|e| Error::Kafka(format!("broker unreachable: {e}")))?;
        match md.topics().iter().find(|t| t.name() == self.topic) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                Ok(t.partitions().len() as u32)
            }
            _ => Err(Error::Kafka(format!(
                "topic `{}` does not exist (create it, or pass --create-topic)",
                self.topic
            ))),
        }
    }

    /// Queues one pre-encoded message (labels, events) on this sink's topic.
    pub fn send_bytes(&mut self, key: &str, payload: &[u8]) -> Result<()> {
        loop {
            let record = BaseRecord::to(&self.topic).key(key).payload(payload);
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => return Err(Error::Kafka(format!("produce to {}: {e}", self.topic))),
            }
        }
    }

    /// Totals so far.
    pub fn totals(&self) -> DeliveryTotals {
        DeliveryTotals {
            delivered: self.counters.delivered.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
        }
    }

    /// First delivery error seen, if any.
    pub fn first_error(&self) -> Option<String> {
        self.counters
            .first_error
            .lock()
            .ok()
            .and_then(|g| g.clone())
    }
}

impl SampleSink for KafkaSink {
    fn send(&mut self, sample: &Sample) -> Result<()> {
        // The wire encoder writes serde_json's bytes straight into the reused buffer.
        self.buf.clear();
        gpustream::wire::encode_into(sample, &mut self.buf);
        let key = sample.key();
        if let Some(o) = &self.counters.observer {
            o.sent();
        }
        loop {
            let record = BaseRecord::to(&self.topic).key(&key).payload(&self.buf);
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                // Local queue full: the broker is slower than we are. Wait, never drop.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => return Err(Error::Kafka(format!("produce to {}: {e}", self.topic))),
            }
        }
    }

    fn flush(&mut self, timeout: Duration) -> Result<DeliveryTotals> {
        self.producer
            .flush(timeout)
            .map_err(|e| Error::Kafka(format!("flush: {e}")))?;
        Ok(self.totals())
    }
}

/// Collects samples in memory (tests, dry runs).
#[derive(Default)]
pub struct VecSink(pub Vec<Sample>);

impl SampleSink for VecSink {
    fn send(&mut self, sample: &Sample) -> Result<()> {
        self.0.push(sample.clone());
        Ok(())
    }
    fn flush(&mut self, _: Duration) -> Result<DeliveryTotals> {
        Ok(DeliveryTotals {
            delivered: self.0.len() as u64,
            failed: 0,
        })
    }
}
