//! The first stage of the processor, on the consumer loop: decode each message, run the
//! detectors and the rollup windows, and buffer rows, transitions and windows by Kafka
//! partition until the runtime seals a batch.

use std::collections::BTreeMap;

use gpustream::rollup::Rollup;
use gpustream_lake::Lake;
use gpustream_lake::delta::{SAMPLES, TableWriter, app_id};
use gpustream_runtime::consumer::{Record, Sink, Take};

use crate::buffer::{PartitionBuffer, SealedBatch};
use crate::detect::Detector;
use crate::error::{Error, Result};
use crate::metrics::ProcessorMetrics;
use crate::rollups::Windower;

/// Decodes, detects, windows and buffers.
pub struct ProcessorSink {
    lake: Lake,
    /// The `samples` table, read for how far each partition already is in the lake
    /// (opened on first use).
    progress: Option<TableWriter>,
    detector: Detector,
    windower: Windower,
    closed: Vec<(i32, Rollup)>,
    buffers: BTreeMap<i32, PartitionBuffer>,
    /// Rows each partition had in the last sealed batch: what its next buffer is sized for.
    last_rows: BTreeMap<i32, usize>,
    bytes: usize,
    rows: usize,
    metrics: ProcessorMetrics,
    /// Samples that arrived after their window closed.
    pub late: u64,
    /// The sample each message is decoded into: its strings are reused, so decoding
    /// allocates nothing once they have grown.
    scratch: gpustream::Sample,
}

impl ProcessorSink {
    /// A sink over `lake`.
    pub fn new(
        lake: &Lake,
        detector: Detector,
        windower: Windower,
        metrics: ProcessorMetrics,
    ) -> ProcessorSink {
        ProcessorSink {
            lake: lake.clone(),
            progress: None,
            detector,
            windower,
            closed: Vec::new(),
            buffers: BTreeMap::new(),
            last_rows: BTreeMap::new(),
            bytes: 0,
            rows: 0,
            metrics,
            late: 0,
            scratch: gpustream::wire::empty_sample(),
        }
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

    /// Moves rollups closed outside a message (idle GPUs, shutdown) into their
    /// partition's buffer; returns whether there were any.
    fn take_closing_rollups(&mut self) -> bool {
        let any = !self.closed.is_empty();
        for (partition, rollup) in self.closed.drain(..) {
            buffer(&mut self.buffers, &self.last_rows, partition)
                .closing_rollups
                .push(rollup);
        }
        any
    }
}

/// The open buffer of `partition`, sized from what it held in the last batch when new.
fn buffer<'a>(
    buffers: &'a mut BTreeMap<i32, PartitionBuffer>,
    last_rows: &BTreeMap<i32, usize>,
    partition: i32,
) -> &'a mut PartitionBuffer {
    buffers.entry(partition).or_insert_with(|| {
        PartitionBuffer::with_capacity(last_rows.get(&partition).copied().unwrap_or(0))
    })
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
        let Some(Ok(sample)) = record.payload.map(gpustream::wire::decode_sample) else {
            return;
        };
        let mut scratch = Vec::new();
        self.detector.observe(&sample, &mut scratch);
        let mut rollups = Vec::new();
        self.windower
            .observe(&sample, record.partition, &mut rollups);
    }

    fn take(&mut self, record: &Record<'_>) -> Take {
        let (partition, offset) = (record.partition, record.offset);
        let size = record.payload.map_or(0, <[u8]>::len);
        self.bytes += size;
        let buf = buffer(&mut self.buffers, &self.last_rows, partition);
        buf.bytes += size;
        buf.last = Some(offset);
        let Some(payload) = record.payload else {
            return Take::DeadLetter("empty message".to_string());
        };
        if let Err(e) = gpustream::wire::decode_sample_into(payload, &mut self.scratch) {
            return Take::DeadLetter(e.to_string());
        }
        let sample = &self.scratch;
        let mut events = Vec::new();
        self.detector.observe(sample, &mut events);
        for a in &events {
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
        for (p, rollup) in self.closed.drain(..) {
            buffer(&mut self.buffers, &self.last_rows, p)
                .rollups
                .push((offset, rollup));
        }
        let buf = buffer(&mut self.buffers, &self.last_rows, partition);
        buf.anomalies
            .extend(events.into_iter().map(|a| (offset, a)));
        buf.push(offset, sample);
        self.rows += 1;
        self.metrics.buffered.set(self.rows as i64);
        Take::Buffered
    }

    fn pending_bytes(&self) -> usize {
        self.bytes
    }

    fn idle(&mut self) -> bool {
        self.windower.close_idle(&mut self.closed);
        self.take_closing_rollups()
    }

    fn closing(&mut self) -> bool {
        self.windower.close_all(&mut self.closed);
        self.take_closing_rollups()
    }

    fn seal(&mut self) -> SealedBatch {
        self.bytes = 0;
        self.rows = 0;
        self.metrics.buffered.set(0);
        self.last_rows = self.buffers.iter().map(|(p, b)| (*p, b.rows())).collect();
        SealedBatch {
            partitions: std::mem::take(&mut self.buffers),
        }
    }

    fn drop_unsealed(&mut self) {
        self.buffers.clear();
        self.bytes = 0;
        self.rows = 0;
        self.metrics.buffered.set(0);
    }
}
