//! What the processor holds between two commits, per Kafka partition: sample rows as
//! Arrow columns per UTC hour (with the offset of each row), the anomaly transitions
//! and closed rollup windows derived from them (with the offset that produced each).
//!
//! Offsets travel with every row so the writer can drop exactly what a table already
//! holds: after a crash, a rebalance or a lost commit acknowledgement, the same
//! offsets may be read again and cut into different batches.

use std::collections::BTreeMap;

use arrow::array::{BooleanArray, RecordBatch};
use gpustream::rollup::Rollup;
use gpustream::{AnomalyEvent, Sample};
use gpustream_lake::columnar::SampleBatchBuilder;

use crate::error::Result;

/// Rows of one UTC hour of one partition.
struct HourRows {
    rows: SampleBatchBuilder,
    offsets: Vec<i64>,
}

impl HourRows {
    fn with_capacity(rows: usize) -> HourRows {
        HourRows {
            rows: SampleBatchBuilder::with_capacity(rows),
            offsets: Vec::with_capacity(rows),
        }
    }
}

/// Rows a partition's first hour is sized for when nothing is known yet (the builders'
/// own default).
const MIN_CAPACITY: usize = 1024;
/// The most rows an hour is sized for up front: a partition that had a large batch
/// once does not keep reserving for it (~64 columns of 8 bytes a row).
const MAX_CAPACITY: usize = 64 * 1024;

/// The open state of one Kafka partition.
#[derive(Default)]
pub struct PartitionBuffer {
    /// Rows keyed by the hour number since the epoch (formatting a partition name per
    /// sample cost more than building its row).
    hours: BTreeMap<i64, HourRows>,
    /// Anomaly transitions, with the offset of the sample that produced each.
    pub anomalies: Vec<(i64, AnomalyEvent)>,
    /// Windows closed by a sample, with that sample's offset.
    pub rollups: Vec<(i64, Rollup)>,
    /// Windows closed without a sample (a GPU went silent, shutdown): no offset.
    pub closing_rollups: Vec<Rollup>,
    /// Last offset consumed (and not replayed) into this buffer.
    pub last: Option<i64>,
    /// Payload bytes of its messages.
    pub bytes: usize,
    rows: usize,
    /// Rows the first hour's columns are sized for: the rows this partition had in the
    /// batch before. Catching up, a partition's batch is tens of thousands of rows, and
    /// columns grown by doubling from 1,024 copied and freshly faulted each step (a fifth
    /// of the loop's page faults, BENCHMARKS.md).
    capacity: usize,
}

impl PartitionBuffer {
    /// An empty buffer whose first hour is sized for `rows` rows (clamped to
    /// 1,024..=65,536): pass what the partition held in its last batch.
    pub fn with_capacity(rows: usize) -> PartitionBuffer {
        PartitionBuffer {
            capacity: rows.clamp(MIN_CAPACITY, MAX_CAPACITY),
            ..PartitionBuffer::default()
        }
    }

    /// Appends a sample row read at `offset`.
    pub fn push(&mut self, offset: i64, s: &Sample) {
        // Only the first hour of a batch gets the reserved size; a batch that spans an
        // hour boundary grows the second from the default.
        let capacity = std::mem::take(&mut self.capacity).max(MIN_CAPACITY);
        let h = self
            .hours
            .entry(s.event_time.timestamp().div_euclid(3600))
            .or_insert_with(|| HourRows::with_capacity(capacity));
        h.rows.push(s);
        h.offsets.push(offset);
        self.rows += 1;
    }

    /// Sample rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Whether nothing at all is held.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
            && self.anomalies.is_empty()
            && self.rollups.is_empty()
            && self.closing_rollups.is_empty()
            && self.last.is_none()
    }

    /// Finishes the Arrow columns: one batch per hour with the offsets of its rows.
    pub fn finish_rows(&mut self) -> Result<Vec<HourBatch>> {
        let mut out = Vec::with_capacity(self.hours.len());
        for (hour, mut h) in std::mem::take(&mut self.hours) {
            out.push(HourBatch {
                start: chrono::DateTime::from_timestamp(hour * 3600, 0).unwrap_or_default(),
                batch: h.rows.finish()?,
                offsets: h.offsets,
            });
        }
        self.rows = 0;
        Ok(out)
    }
}

/// The rows of one UTC hour, finished, with the offset of each row.
pub struct HourBatch {
    /// Start of the hour (its `date`/`hour` partition).
    pub start: chrono::DateTime<chrono::Utc>,
    /// Rows (the `samples` data columns).
    pub batch: RecordBatch,
    /// Offset of each row.
    pub offsets: Vec<i64>,
}

impl HourBatch {
    /// The rows read after `through` (all of them when `None`).
    pub fn after(&self, through: Option<i64>) -> Result<RecordBatch> {
        let Some(t) = through else {
            return Ok(self.batch.clone());
        };
        let keep: BooleanArray = self.offsets.iter().map(|o| Some(*o > t)).collect();
        Ok(arrow::compute::filter_record_batch(&self.batch, &keep)?)
    }
}

/// A message that is not a sample, held for the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its payload (empty for an empty message).
    pub payload: Vec<u8>,
    /// Why it is not a sample.
    pub reason: String,
}

/// A sealed batch: what every partition held at the seal.
#[derive(Default)]
pub struct SealedBatch {
    /// By partition.
    pub partitions: BTreeMap<i32, PartitionBuffer>,
    /// Messages refused as samples, in the order taken: the writer sends them to the
    /// dead-letter topic before the batch counts as durable.
    pub dead_letters: Vec<DeadLetter>,
}
