//! The second stage of the processor, on a task of its own: makes a sealed batch
//! durable in the lake's Delta tables, then publishes its anomaly transitions and
//! rollups to their topics and alert routes.
//!
//! One commit per table per batch, each carrying, per Kafka partition, a `txn` action
//! with the last offset it covers. Before writing, the writer drops what a table
//! already holds for each partition (offsets at or before its `txn` version), so a
//! batch read again after a crash, a rebalance or a lost commit acknowledgement never
//! adds a row twice. `samples` is committed last: its versions are where a restart
//! resumes, so the other tables are never behind it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use gpustream::AnomalyEvent;
use gpustream::rollup::Rollup;
use gpustream_lake::Lake;
use gpustream_lake::columnar::{anomalies_to_batch, rollups_to_batch};
use gpustream_lake::delta::{ANOMALIES, CommitReport, ROLLUPS, SAMPLES, TableWriter, app_id};
use gpustream_runtime::consumer::{DeadLetterSource, WriteContext, Writer};
use gpustream_runtime::service::Health;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::buffer::{HourBatch, SealedBatch};
use crate::error::{Error, Result};
use crate::metrics::ProcessorMetrics;

/// What the writer did over a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteStats {
    /// Sample rows committed.
    pub rows: u64,
    /// Anomaly transitions committed.
    pub anomalies: u64,
    /// Rollup windows committed.
    pub rollups: u64,
    /// Batches made durable.
    pub flushes: u64,
    /// Rows skipped because the table already held them.
    pub already_present: u64,
    /// Messages sent to the dead-letter topic (or logged and skipped without one).
    pub dead_lettered: u64,
}

/// Writes sealed batches to the lake and the output topics.
pub struct LakeWriter {
    topic: String,
    lake: Lake,
    /// The three tables, opened (created when absent) on first use, so a lake that is
    /// down at start is retried like one that fails later.
    tables: Option<Tables>,
    producer: FutureProducer,
    anomalies_topic: String,
    rollups_topic: String,
    /// Alert routing (Alertmanager, webhook), when configured.
    pub alerter: Option<crate::alerting::Alerter>,
    metrics: ProcessorMetrics,
    health: Health,
    /// Totals.
    pub stats: WriteStats,
}

struct Tables {
    samples: TableWriter,
    anomalies: TableWriter,
    rollups: TableWriter,
}

/// A sealed batch with its sample rows finished once, so every retry commits the same
/// rows.
struct Prepared {
    hours: BTreeMap<i32, Vec<HourBatch>>,
    batch: SealedBatch,
}

impl LakeWriter {
    /// A writer of the three stream tables of `lake` (opened at the first write).
    pub fn new(
        lake: &Lake,
        topic: &str,
        producer: FutureProducer,
        anomalies_topic: &str,
        rollups_topic: &str,
        metrics: ProcessorMetrics,
        health: Health,
    ) -> LakeWriter {
        LakeWriter {
            topic: topic.to_string(),
            lake: lake.clone(),
            tables: None,
            producer,
            anomalies_topic: anomalies_topic.to_string(),
            rollups_topic: rollups_topic.to_string(),
            alerter: None,
            metrics,
            health,
            stats: WriteStats::default(),
        }
    }

    fn prepare(&self, mut batch: SealedBatch) -> Result<Prepared> {
        let mut hours = BTreeMap::new();
        for (p, buf) in &mut batch.partitions {
            hours.insert(*p, buf.finish_rows()?);
        }
        Ok(Prepared { hours, batch })
    }

    /// One attempt: the three commits (samples last), then the topics.
    async fn try_write(&mut self, prepared: &Prepared) -> Result<()> {
        let topic = self.topic.clone();
        if self.tables.is_none() {
            self.tables = Some(Tables {
                samples: TableWriter::open(&self.lake, SAMPLES).await?,
                anomalies: TableWriter::open(&self.lake, ANOMALIES).await?,
                rollups: TableWriter::open(&self.lake, ROLLUPS).await?,
            });
        }
        let Some(tables) = self.tables.as_mut() else {
            return Ok(());
        };
        // Anomalies.
        let started = Instant::now();
        let mut progress = Vec::new();
        let mut events: Vec<&AnomalyEvent> = Vec::new();
        for (p, buf) in &prepared.batch.partitions {
            let id = app_id(&topic, *p);
            let through = tables.anomalies.version_of(&id).await?;
            events.extend(
                buf.anomalies
                    .iter()
                    .filter(|(o, _)| through.is_none_or(|t| *o > t))
                    .map(|(_, a)| a),
            );
            push_progress(&mut progress, id, buf.last, through);
        }
        let by_date = partitioned(
            &tables.anomalies,
            events.iter().copied(),
            |a| a.event_time,
            |e| anomalies_to_batch(e.iter().copied()),
        )?;
        let committed_anomalies: Vec<AnomalyEvent> = events.iter().map(|a| (*a).clone()).collect();
        if !events.is_empty() {
            let r = tables.anomalies.append(&by_date, &progress).await?;
            counted(&self.metrics, ANOMALIES.name, &r);
        }
        let started = stage(&self.metrics, "anomalies", started);
        // Rollups: closed by a sample (deduplicated by offset) or by silence (not).
        let mut progress = Vec::new();
        let mut windows: Vec<&Rollup> = Vec::new();
        for (p, buf) in &prepared.batch.partitions {
            let id = app_id(&topic, *p);
            let through = tables.rollups.version_of(&id).await?;
            windows.extend(
                buf.rollups
                    .iter()
                    .filter(|(o, _)| through.is_none_or(|t| *o > t))
                    .map(|(_, r)| r),
            );
            windows.extend(buf.closing_rollups.iter());
            push_progress(&mut progress, id, buf.last, through);
        }
        let by_date = partitioned(
            &tables.rollups,
            windows.iter().copied(),
            |r| r.window_start,
            |w| rollups_to_batch(w.iter().copied()),
        )?;
        let committed_rollups: Vec<Rollup> = windows.iter().map(|r| (*r).clone()).collect();
        if !windows.is_empty() {
            let r = tables.rollups.append(&by_date, &progress).await?;
            counted(&self.metrics, ROLLUPS.name, &r);
        }
        let started = stage(&self.metrics, "rollups", started);
        // Samples, last.
        let mut progress = Vec::new();
        let mut batches: Vec<RecordBatch> = Vec::new();
        let mut skipped = 0u64;
        for (p, buf) in &prepared.batch.partitions {
            let id = app_id(&topic, *p);
            let through = tables.samples.version_of(&id).await?;
            for h in prepared.hours.get(p).into_iter().flatten() {
                let rows = h.after(through)?;
                skipped += (h.batch.num_rows() - rows.num_rows()) as u64;
                if rows.num_rows() > 0 {
                    batches.push(tables.samples.with_partition(&rows, h.start)?);
                }
            }
            push_progress(&mut progress, id, buf.last, through);
        }
        let r = tables.samples.append(&batches, &progress).await?;
        counted(&self.metrics, SAMPLES.name, &r);
        let started = stage(&self.metrics, "samples", started);
        self.metrics.files.inc_by(r.files);
        self.metrics.bytes.inc_by(r.bytes);
        self.metrics.common.records_out.inc_by(r.rows);
        self.stats.rows += r.rows;
        self.stats.already_present += skipped;
        if skipped > 0 {
            tracing::info!(
                rows = skipped,
                "rows already in the lake were not written again"
            );
        }
        // Topics and alerts (at least once: a retry after this point sends again).
        send_json(
            &self.producer,
            &self.anomalies_topic,
            committed_anomalies.iter().map(|a| (a.key(), a)),
        )
        .await?;
        send_json(
            &self.producer,
            &self.rollups_topic,
            committed_rollups.iter().map(|r| (r.key(), r)),
        )
        .await?;
        if let Some(a) = &self.alerter {
            a.dispatch(&committed_anomalies);
        }
        stage(&self.metrics, "publish", started);
        self.stats.anomalies += committed_anomalies.len() as u64;
        self.stats.rollups += committed_rollups.len() as u64;
        self.stats.flushes += 1;
        Ok(())
    }
}

/// Records the time since `started` as `stage` of a flush; returns now, when the next
/// stage begins.
fn stage(metrics: &ProcessorMetrics, stage: &str, started: Instant) -> Instant {
    let now = Instant::now();
    metrics
        .write_stage_seconds
        .with_label_values(&[stage])
        .observe((now - started).as_secs_f64());
    now
}

fn counted(metrics: &ProcessorMetrics, table: &str, r: &CommitReport) {
    if r.version.is_some() {
        metrics.commits.with_label_values(&[table]).inc();
    }
}

/// Progress of a partition to commit: its last offset, when it moves the table on.
fn push_progress(
    out: &mut Vec<(String, i64)>,
    id: String,
    last: Option<i64>,
    through: Option<i64>,
) {
    if let Some(last) = last
        && through.is_none_or(|t| last > t)
    {
        out.push((id, last));
    }
}

/// `items` grouped by the partition of their event time in `table`, each group as one
/// batch with the partition columns appended.
fn partitioned<'a, T: 'a>(
    table: &TableWriter,
    items: impl Iterator<Item = &'a T>,
    time: impl Fn(&T) -> chrono::DateTime<chrono::Utc>,
    encode: impl Fn(&[&'a T]) -> gpustream_lake::Result<RecordBatch>,
) -> Result<Vec<RecordBatch>> {
    let mut groups: BTreeMap<Vec<String>, (chrono::DateTime<chrono::Utc>, Vec<&'a T>)> =
        BTreeMap::new();
    for item in items {
        let t = time(item);
        groups
            .entry(table.partition_values(t))
            .or_insert_with(|| (t, Vec::new()))
            .1
            .push(item);
    }
    let mut out = Vec::with_capacity(groups.len());
    for (_, (t, group)) in groups {
        out.push(table.with_partition(&encode(&group)?, t)?);
    }
    Ok(out)
}

impl Writer for LakeWriter {
    type Batch = SealedBatch;
    type Error = Error;

    async fn write(&mut self, batch: SealedBatch, ctx: &WriteContext) -> Result<()> {
        let started = Instant::now();
        // Once, before the tables (which may be retried): a batch counts as durable only
        // with its dead letters acknowledged, and a batch read again sends them again.
        ctx.dead_letters(batch.dead_letters.iter().map(|d| {
            let source = DeadLetterSource {
                topic: &d.topic,
                partition: d.partition,
                offset: d.offset,
                key: d.key.as_deref(),
            };
            (d.payload.as_slice(), d.reason.as_str(), source)
        }))
        .await?;
        self.stats.dead_lettered += batch.dead_letters.len() as u64;
        let prepared = self.prepare(batch)?;
        stage(&self.metrics, "prepare", started);
        let mut backoff = Duration::from_millis(200);
        let mut conflicts = 0;
        loop {
            match self.try_write(&prepared).await {
                Ok(()) => {
                    self.health.ok("lake");
                    return Ok(());
                }
                Err(e) => {
                    self.metrics.common.write_errors.inc();
                    if matches!(
                        &e,
                        Error::Lake(gpustream_lake::Error::ConcurrentProgress { .. })
                    ) && conflicts < 3
                    {
                        // Another writer committed the same partitions: read its
                        // progress and write only what it does not hold.
                        conflicts += 1;
                        tracing::warn!(error = %e, "retrying with the table's latest progress");
                        continue;
                    }
                    // A table may have been the cause: open them afresh next time.
                    self.tables = None;
                    self.health.fail("lake", format!("flush failed: {e}"));
                    tracing::error!(error = %e, retry_in = ?backoff, "lake write failed; nothing committed to Kafka, retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = ctx.cancelled() => return Err(e),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// Sends keyed JSON records to `topic` and waits for every acknowledgement (nothing when
/// the topic is disabled with an empty name).
///
/// All records are queued before the first acknowledgement is awaited: one round trip
/// per record would cap a flush at a few hundred records per second.
async fn send_json<T: serde::Serialize>(
    producer: &FutureProducer,
    topic: &str,
    records: impl Iterator<Item = (String, T)>,
) -> Result<()> {
    if topic.is_empty() {
        return Ok(());
    }
    let encoded = records
        .map(|(key, value)| serde_json::to_vec(&value).map(|payload| (key, payload)))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let deliveries = encoded.iter().map(|(key, payload)| {
        producer.send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(30),
        )
    });
    futures::future::try_join_all(deliveries)
        .await
        .map_err(|(e, _)| Error::Kafka(e))?;
    Ok(())
}
