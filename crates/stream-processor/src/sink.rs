//! The first stage of the processor, on the consumer loop: copy each message into a
//! chunk that a decoding thread turns into samples ([`crate::decode`]), then, in the
//! order taken, run the detectors and the rollup windows and buffer rows, transitions
//! and windows by Kafka partition until the runtime seals a batch.

use std::collections::BTreeMap;

use gpustream::rollup::Rollup;
use gpustream_lake::Lake;
use gpustream_lake::delta::{SAMPLES, TableWriter, app_id};
use gpustream_runtime::consumer::{Record, Sink, Take};

use crate::buffer::{DeadLetter, PartitionBuffer, SealedBatch};
use crate::decode::{Chunk, DecodePool};
use crate::detect::Detector;
use crate::error::{Error, Result};
use crate::metrics::ProcessorMetrics;
use crate::rollups::Windower;

/// Decodes (on its decoding threads), detects, windows and buffers.
pub struct ProcessorSink {
    lake: Lake,
    /// The `samples` table, read for how far each partition already is in the lake
    /// (opened on first use).
    progress: Option<TableWriter>,
    pool: DecodePool,
    open: OpenBatch,
    /// Payload bytes taken into the open batch (decoded or not yet).
    bytes: usize,
}

/// Detector and window state, and the open batch they fill, one decoded message at a
/// time in the order the messages were taken.
struct OpenBatch {
    detector: Detector,
    windower: Windower,
    closed: Vec<(i32, Rollup)>,
    buffers: BTreeMap<i32, PartitionBuffer>,
    dead_letters: Vec<DeadLetter>,
    /// Rows each partition had in the last sealed batch: what its next buffer is sized for.
    last_rows: BTreeMap<i32, usize>,
    rows: usize,
    events: Vec<gpustream::AnomalyEvent>,
    metrics: ProcessorMetrics,
    late: u64,
}

impl ProcessorSink {
    /// A sink over `lake` that decodes on `decode_threads` threads of its own (0: on the
    /// consumer loop).
    pub fn new(
        lake: &Lake,
        detector: Detector,
        windower: Windower,
        metrics: ProcessorMetrics,
        decode_threads: usize,
    ) -> Result<ProcessorSink> {
        let pool = DecodePool::new(decode_threads).map_err(|e| {
            Error::Config(format!(
                "cannot start {decode_threads} decoding threads: {e}"
            ))
        })?;
        Ok(ProcessorSink {
            lake: lake.clone(),
            progress: None,
            pool,
            open: OpenBatch {
                detector,
                windower,
                closed: Vec::new(),
                buffers: BTreeMap::new(),
                dead_letters: Vec::new(),
                last_rows: BTreeMap::new(),
                rows: 0,
                events: Vec::new(),
                metrics,
                late: 0,
            },
            bytes: 0,
        })
    }

    /// Samples that arrived after their window closed.
    pub fn late(&self) -> u64 {
        self.open.late
    }

    async fn committed(&mut self, topic: &str, partition: i32) -> Result<Option<i64>> {
        let table = match &mut self.progress {
            Some(t) => t,
            None => self
                .progress
                .insert(TableWriter::open(&self.lake, SAMPLES).await?),
        };
        Ok(table.committed(&app_id(topic, partition)).await?)
    }

    /// Takes back the chunks already decoded, waiting only while the decoding threads
    /// hold as many as they may.
    fn take_decoded(&mut self) {
        while self.pool.saturated() {
            self.take_next(true);
        }
        while self.take_next(false) {}
    }

    /// Hands over what is copied and waits until every message taken is in the batch.
    fn settle(&mut self) {
        self.pool.submit();
        while self.take_next(true) {}
    }

    fn take_next(&mut self, wait: bool) -> bool {
        let Some(chunk) = self.pool.next(wait) else {
            return false;
        };
        self.open.add(&chunk, self.pool.topics());
        self.pool.recycle(chunk);
        true
    }
}

impl OpenBatch {
    /// The open buffer of `partition`, sized from what it held in the last batch when new.
    fn buffer(&mut self, partition: i32) -> &mut PartitionBuffer {
        let last_rows = &self.last_rows;
        self.buffers.entry(partition).or_insert_with(|| {
            PartitionBuffer::with_capacity(last_rows.get(&partition).copied().unwrap_or(0))
        })
    }

    /// Adds a decoded chunk, message by message.
    fn add(&mut self, chunk: &Chunk, topics: &[String]) {
        for m in chunk.iter(topics) {
            if m.replay {
                // Already durable: rebuild detector and window state, write nothing.
                if let Ok(sample) = m.sample {
                    self.detector.observe(sample, &mut self.events);
                    self.events.clear();
                    self.windower.observe(sample, m.partition, &mut self.closed);
                    self.closed.clear();
                }
                continue;
            }
            let (partition, offset) = (m.partition, m.offset);
            let buf = self.buffer(partition);
            buf.bytes += m.size();
            buf.last = Some(offset);
            let sample = match m.sample {
                Ok(s) => s,
                Err(reason) => {
                    self.dead_letters.push(DeadLetter {
                        topic: m.topic.to_string(),
                        partition,
                        offset,
                        key: m.key.map(<[u8]>::to_vec),
                        payload: m.payload.map(<[u8]>::to_vec).unwrap_or_default(),
                        reason: reason.to_string(),
                    });
                    continue;
                }
            };
            self.detector.observe(sample, &mut self.events);
            for a in &self.events {
                self.metrics
                    .anomalies
                    .with_label_values(&[&a.rule, a.state.as_str()])
                    .inc();
            }
            if !self.windower.observe(sample, partition, &mut self.closed) {
                self.late += 1;
                self.metrics.late.inc();
            }
            // A window closes on a sample of its own GPU, so normally of this partition.
            // (The vectors are taken out and put back to keep their capacity.)
            let mut closed = std::mem::take(&mut self.closed);
            for (p, rollup) in closed.drain(..) {
                self.buffer(p).rollups.push((offset, rollup));
            }
            self.closed = closed;
            let mut events = std::mem::take(&mut self.events);
            let buf = self.buffer(partition);
            buf.anomalies.extend(events.drain(..).map(|a| (offset, a)));
            buf.push(offset, sample);
            self.events = events;
            self.rows += 1;
        }
        self.metrics.buffered.set(self.rows as i64);
    }

    /// Moves rollups closed outside a message (idle GPUs, shutdown) into their
    /// partition's buffer; returns whether there were any.
    fn take_closing_rollups(&mut self) -> bool {
        let closed = std::mem::take(&mut self.closed);
        let any = !closed.is_empty();
        for (partition, rollup) in closed {
            self.buffer(partition).closing_rollups.push(rollup);
        }
        any
    }

    fn seal(&mut self) -> SealedBatch {
        self.rows = 0;
        self.metrics.buffered.set(0);
        self.last_rows = self.buffers.iter().map(|(p, b)| (*p, b.rows())).collect();
        SealedBatch {
            partitions: std::mem::take(&mut self.buffers),
            dead_letters: std::mem::take(&mut self.dead_letters),
        }
    }

    fn clear(&mut self) {
        self.buffers.clear();
        self.dead_letters.clear();
        self.rows = 0;
        self.metrics.buffered.set(0);
    }
}

impl Sink for ProcessorSink {
    type Batch = SealedBatch;
    type Error = Error;

    /// How far the `samples` table already is. When the lake cannot be read now, the
    /// answer is "unknown": records are then taken again, and the writer drops what the
    /// tables hold when it commits, so nothing is written twice either way.
    async fn durable_through(&mut self, topic: &str, partition: i32) -> Result<Option<i64>> {
        match self.committed(topic, partition).await {
            Ok(v) => Ok(v),
            Err(e) => {
                self.progress = None;
                tracing::warn!(topic, partition, error = %e, "cannot read the lake's progress; the writer will deduplicate");
                Ok(None)
            }
        }
    }

    fn replay(&mut self, record: &Record<'_>) {
        self.pool.push(record, true);
        self.take_decoded();
    }

    /// Copies the message for decoding; its row, transitions and windows are in the
    /// batch by the time it is sealed. A message that is not a sample goes to the
    /// dead-letter topic with the batch (the writer sends it before the batch counts
    /// as durable).
    fn take(&mut self, record: &Record<'_>) -> Take {
        self.bytes += record.payload.map_or(0, <[u8]>::len);
        self.pool.push(record, false);
        self.take_decoded();
        Take::Buffered
    }

    fn pending_bytes(&self) -> usize {
        self.bytes
    }

    fn idle(&mut self) -> bool {
        self.settle();
        self.open.windower.close_idle(&mut self.open.closed);
        self.open.take_closing_rollups()
    }

    fn closing(&mut self) -> bool {
        self.settle();
        self.open.windower.close_all(&mut self.open.closed);
        self.open.take_closing_rollups()
    }

    fn seal(&mut self) -> SealedBatch {
        self.settle();
        self.bytes = 0;
        self.open.seal()
    }

    fn drop_unsealed(&mut self) {
        // Detector and window state saw these messages before, as they did when the
        // loop decoded them itself; only the batch is dropped.
        self.settle();
        self.bytes = 0;
        self.open.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollups::RollupConfig;

    /// What a sealed batch holds, comparable across runs.
    type Summary = (
        Vec<(i32, usize, Vec<String>, usize, Option<i64>)>,
        Vec<(i32, i64, String)>,
    );

    fn summary(mut batch: SealedBatch) -> Summary {
        let partitions = batch
            .partitions
            .iter_mut()
            .map(|(p, b)| {
                let anomalies = b
                    .anomalies
                    .iter()
                    .map(|(o, a)| format!("{o} {} {} {}", a.gpu, a.rule, a.state.as_str()))
                    .collect();
                let rows = b.rows();
                (*p, rows, anomalies, b.rollups.len(), b.last)
            })
            .collect();
        let dead = batch
            .dead_letters
            .iter()
            .map(|d| (d.partition, d.offset, d.reason.clone()))
            .collect();
        (partitions, dead)
    }

    /// Three GPUs on three partitions, one overheating for a while, a message that is not
    /// a sample every 50, sealed every 500 messages.
    fn run(decode_threads: usize) -> Vec<Summary> {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = Lake::open(dir.path().to_str().expect("utf8")).expect("lake");
        let metrics = ProcessorMetrics::new(&prometheus::Registry::new()).expect("metrics");
        let mut sink = ProcessorSink::new(
            &lake,
            Detector::default(),
            Windower::new(RollupConfig::default()),
            metrics,
            decode_threads,
        )
        .expect("sink");
        let mut batches = Vec::new();
        let mut offsets = [0i64; 3];
        for secs in 0..600 {
            for (gpu, next) in offsets.iter_mut().enumerate() {
                let hot = gpu == 1 && (200..400).contains(&secs);
                let mut s = crate::test_support::temp_sample(secs, if hot { 99.0 } else { 55.0 });
                s.gpu = format!("g{gpu}");
                s.event_id = format!("e{gpu}-{secs}");
                let payload = if secs % 50 == 7 {
                    b"{\"not\": \"a sample\"}".to_vec()
                } else {
                    gpustream::wire::encode_sample(&s).expect("encode")
                };
                let offset = *next;
                *next += 1;
                let record = Record {
                    topic: "gpu-samples",
                    partition: gpu as i32,
                    offset,
                    key: Some(s.gpu.as_bytes()),
                    payload: Some(&payload),
                };
                if secs < 5 {
                    sink.replay(&record);
                } else {
                    assert_eq!(sink.take(&record), Take::Buffered);
                }
                if (secs * 3 + gpu as i64) % 500 == 499 {
                    batches.push(summary(sink.seal()));
                }
            }
        }
        sink.closing();
        batches.push(summary(sink.seal()));
        batches
    }

    /// Decoding threads change where decoding runs, not what a batch holds: rows,
    /// transitions (with the offset that caused each), windows and dead letters per batch
    /// are those of the loop decoding itself.
    #[test]
    fn decoding_threads_seal_the_same_batches() {
        let inline = run(0);
        let rows: usize = inline.iter().flat_map(|b| &b.0).map(|p| p.1).sum();
        let dead: usize = inline.iter().map(|b| b.1.len()).sum();
        let anomalies: usize = inline.iter().flat_map(|b| &b.0).map(|p| p.2.len()).sum();
        assert_eq!(dead, 3 * 12, "one bad message per GPU every 50 s");
        assert_eq!(rows, 3 * 595 - dead);
        assert!(anomalies >= 2, "the hot GPU fires and clears: {anomalies}");
        assert!(inline.len() >= 4);
        for threads in [1, 3] {
            assert!(run(threads) == inline, "{threads} decoding threads");
        }
    }
}
