//! The consume → batch → write → commit loop.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{DeliveryFuture, FutureProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::ConsumerConfig;
use super::contract::{
    DeadLetterSource, Record, Sink, Take, WriteContext, Writer, acknowledged, queue_dead_letter,
    skipped,
};
use super::lag::LagFromStats;
use super::offsets::{OffsetTracker, TopicPartition};
use crate::error::Error;
use crate::kafka::context::Context;
use crate::service::{CommonMetrics, Health};

/// What a run leaves behind: the sink and writer (with whatever they counted) and the
/// runtime's totals.
pub struct Finished<S, W> {
    /// The sink.
    pub sink: S,
    /// The writer.
    pub writer: W,
    /// Records consumed.
    pub consumed: u64,
    /// Batches written and committed.
    pub batches: u64,
    /// Records dead-lettered at take time.
    pub dead_lettered: u64,
}

type Done<E> = (u64, Result<(), E>);

/// Runs `sink` and `writer` on `config` until `shutdown` resolves, then writes what is
/// held (within the grace period), commits and leaves the group.
///
/// Returns an error when the brokers cannot be used at start (one clear line naming
/// the setting), when the writer gives up, or when what was held at shutdown could not
/// be written in time (those records stay uncommitted and are read again next start).
pub async fn run<S, W>(
    config: ConsumerConfig,
    mut sink: S,
    writer: W,
    metrics: CommonMetrics,
    health: Health,
    shutdown: impl Future<Output = ()>,
) -> Result<Finished<S, W>, S::Error>
where
    S: Sink,
    W: Writer<Batch = S::Batch, Error = S::Error>,
{
    config.validate()?;
    crate::kafka::preflight(&config.kafka, config.connect_timeout).await?;
    let context = Context::with_stats(Arc::new(
        LagFromStats::new(metrics.clone()).with_health(health.clone()),
    ));
    let mut client = config.kafka.consumer_config(&config.group);
    client
        .set("client.id", &config.client_id)
        .set("statistics.interval.ms", "5000")
        .set(
            "queued.max.messages.kbytes",
            config.prefetch_kbytes.to_string(),
        );
    let consumer: StreamConsumer<Context> =
        client
            .create_with_context(context.clone())
            .map_err(|source| Error::Kafka {
                context: "consumer".into(),
                source,
            })?;
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|source| Error::Kafka {
        context: format!("subscribe to {}", config.topics.join(", ")),
        source,
    })?;
    let dlq = match &config.dlq_topic {
        Some(topic) => {
            config.kafka.ensure_topics(&[(topic.as_str(), 1)]).await?;
            let producer: FutureProducer = config
                .kafka
                .producer_config()
                // A broker outage must not lose a dead letter: wait for it longer than
                // librdkafka's default minute before the batch fails.
                .set("message.timeout.ms", "300000")
                .create()
                .map_err(|source| Error::Kafka {
                    context: "dead-letter producer".into(),
                    source,
                })?;
            Some((producer, topic.clone()))
        }
        None => None,
    };
    tracing::info!(
        brokers = %config.kafka.brokers,
        security = %config.kafka.security_protocol(),
        group = %config.group,
        topics = ?config.topics,
        "consuming"
    );

    let cancel = CancellationToken::new();
    let ctx = WriteContext {
        dlq: dlq.clone(),
        cancel: cancel.clone(),
        metrics: metrics.clone(),
    };
    let (batch_tx, batch_rx) = tokio::sync::mpsc::channel::<(u64, S::Batch)>(config.max_in_flight);
    let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel::<Done<S::Error>>();
    let writer_task = tokio::spawn(write_loop(writer, batch_rx, done_tx, ctx));

    let mut state = Loop {
        config: &config,
        consumer: &consumer,
        context: &context,
        metrics: &metrics,
        health: &health,
        dlq: dlq.as_ref(),
        tracker: OffsetTracker::default(),
        committed: HashMap::new(),
        known: HashMap::new(),
        open_id: 1,
        open_records: 0,
        open_since: None,
        in_flight: VecDeque::new(),
        dlq_pending: BTreeMap::new(),
        paused: false,
        full_since: None,
        consumed: 0,
        batches: 0,
        dead_lettered: 0,
        batch_tx,
        done_rx,
    };
    let result = state.consume(&mut sink, shutdown).await;
    let result = match result {
        Ok(()) => state.drain(&mut sink, &cancel).await,
        Err(e) => Err(e),
    };
    let (consumed, batches, dead_lettered) = (state.consumed, state.batches, state.dead_lettered);
    drop(state);
    cancel.cancel();
    let writer = writer_task.await.map_err(|e| Error::Setting {
        name: "writer".into(),
        message: format!("the writer task failed: {e}"),
    })?;
    close_consumer(consumer).await;
    result.map(|()| Finished {
        sink,
        writer,
        consumed,
        batches,
        dead_lettered,
    })
}

async fn write_loop<W: Writer>(
    mut writer: W,
    mut batches: tokio::sync::mpsc::Receiver<(u64, W::Batch)>,
    done: tokio::sync::mpsc::UnboundedSender<Done<W::Error>>,
    ctx: WriteContext,
) -> W {
    while let Some((id, batch)) = batches.recv().await {
        let started = std::time::Instant::now();
        let result = writer.write(batch, &ctx).await;
        ctx.metrics
            .write_seconds
            .observe(started.elapsed().as_secs_f64());
        if done.send((id, result)).is_err() {
            break;
        }
    }
    writer
}

struct Loop<'a, B, E> {
    config: &'a ConsumerConfig,
    consumer: &'a StreamConsumer<Context>,
    context: &'a Context,
    metrics: &'a CommonMetrics,
    health: &'a Health,
    dlq: Option<&'a (FutureProducer, String)>,
    tracker: OffsetTracker,
    /// Last committed position per partition: a re-read batch never moves it back.
    committed: HashMap<TopicPartition, i64>,
    /// Per partition since the last rebalance: what the destination already holds.
    known: HashMap<TopicPartition, Option<i64>>,
    open_id: u64,
    open_records: usize,
    open_since: Option<Instant>,
    in_flight: VecDeque<u64>,
    dlq_pending: BTreeMap<u64, Vec<(DeliveryFuture, String)>>,
    paused: bool,
    full_since: Option<Instant>,
    consumed: u64,
    batches: u64,
    dead_lettered: u64,
    batch_tx: tokio::sync::mpsc::Sender<(u64, B)>,
    done_rx: tokio::sync::mpsc::UnboundedReceiver<Done<E>>,
}

impl<B: Send + 'static, E: std::error::Error + From<Error> + Send + Sync + 'static> Loop<'_, B, E> {
    /// Whether the open batch holds as many records or bytes as a batch may.
    fn full(&self, pending_bytes: usize) -> bool {
        self.open_records >= self.config.batch_records || pending_bytes >= self.config.batch_bytes
    }

    /// Whether the open batch is to be sealed: full, or as old as a batch may get.
    fn due(&self, pending_bytes: usize) -> bool {
        self.full(pending_bytes)
            || self
                .open_since
                .is_some_and(|t| t.elapsed() >= self.config.batch_timeout)
    }

    async fn consume<S: Sink<Batch = B, Error = E>>(
        &mut self,
        sink: &mut S,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), E> {
        tokio::pin!(shutdown);
        loop {
            let due = self.due(sink.pending_bytes());
            let can_send = self.in_flight.len() < self.config.max_in_flight;
            if due && can_send {
                self.seal(sink).await?;
                continue;
            }
            // The open batch is full and the writer busy: stop reading; pause (and keep
            // polling, to stay in the group) if that lasts.
            let blocked = due && !can_send;
            if blocked {
                self.full_since.get_or_insert_with(Instant::now);
            } else {
                self.full_since = None;
            }
            let pause_at = self.full_since.map(|t| t + self.config.pause_after);
            let open_deadline = self.open_since.map(|t| t + self.config.batch_timeout);
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                done = self.done_rx.recv() => match done {
                    Some((id, result)) => self.completed(id, result).await?,
                    None => return Err(Error::Setting { name: "writer".into(), message: "the writer stopped".into() }.into()),
                },
                () = sleep_until(pause_at), if blocked && !self.paused => self.pause(),
                () = sleep_until(open_deadline), if !due => {}
                received = tokio::time::timeout(self.config.idle_tick, self.consumer.recv()), if !blocked || self.paused => {
                    if self.context.take_rebalanced() {
                        self.after_rebalance(sink);
                    }
                    match received {
                        Ok(Ok(msg)) => {
                            self.on_message(sink, &msg).await?;
                            drop(msg);
                            self.take_ready(sink).await?;
                        }
                        Ok(Err(e)) => self.consume_error(&e),
                        Err(_) => {
                            if sink.idle() {
                                self.open_since.get_or_insert_with(Instant::now);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Takes the records librdkafka already holds, up to [`READY_RUN`] of them or until
    /// the open batch is full, without going through the loop's `select!` for each: the
    /// timers it arms per pass (batch age, idle tick) cost a fifth of the loop's CPU
    /// while catching up (BENCHMARKS.md). The batch's age, the writer's completions and
    /// shutdown are looked at again after the run.
    async fn take_ready<S: Sink<Batch = B, Error = E>>(&mut self, sink: &mut S) -> Result<(), E> {
        if self.paused {
            return Ok(());
        }
        let consumer = self.consumer;
        for _ in 0..READY_RUN {
            if self.full(sink.pending_bytes()) {
                break;
            }
            let Some(received) = ready(consumer.recv()) else {
                break;
            };
            if self.context.take_rebalanced() {
                self.after_rebalance(sink);
            }
            match received {
                Ok(msg) => self.on_message(sink, &msg).await?,
                Err(e) => {
                    self.consume_error(&e);
                    break;
                }
            }
        }
        Ok(())
    }

    fn consume_error(&self, e: &KafkaError) {
        tracing::warn!(error = %e, "kafka consume error");
        self.health.fail("kafka", e.to_string());
    }

    async fn on_message<S: Sink<Batch = B, Error = E>>(
        &mut self,
        sink: &mut S,
        msg: &BorrowedMessage<'_>,
    ) -> Result<(), E> {
        self.health.ok("kafka");
        let record = Record {
            topic: msg.topic(),
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key(),
            payload: msg.payload(),
        };
        self.consumed += 1;
        self.metrics.record_in(record.topic);
        let tp = (record.topic.to_string(), record.partition);
        let durable = match self.known.get(&tp) {
            Some(d) => *d,
            None => {
                let d = sink.durable_through(record.topic, record.partition).await?;
                tracing::info!(topic = record.topic, partition = record.partition, durable_through = ?d, "partition opened");
                self.known.insert(tp, d);
                d
            }
        };
        self.tracker
            .track(self.open_id, record.topic, record.partition, record.offset);
        self.open_records += 1;
        self.open_since.get_or_insert_with(Instant::now);
        if durable.is_some_and(|d| record.offset <= d) {
            sink.replay(&record);
            return Ok(());
        }
        match sink.take(&record) {
            Take::Buffered | Take::Done => {}
            Take::DeadLetter(reason) => self.dead_letter(&record, &reason)?,
        }
        Ok(())
    }

    fn dead_letter(&mut self, record: &Record<'_>, reason: &str) -> Result<(), Error> {
        self.dead_lettered += 1;
        self.metrics.dead_lettered.inc();
        let source = DeadLetterSource::of(record);
        let Some((producer, topic)) = self.dlq else {
            skipped(reason, &source);
            return Ok(());
        };
        let payload = record.payload.unwrap_or_default();
        let delivery = queue_dead_letter(producer, topic, payload, reason, &source, &[])?;
        self.dlq_pending
            .entry(self.open_id)
            .or_default()
            .push((delivery, topic.clone()));
        Ok(())
    }

    async fn seal<S: Sink<Batch = B, Error = E>>(&mut self, sink: &mut S) -> Result<(), E> {
        let batch = sink.seal();
        let id = self.open_id;
        self.open_id += 1;
        self.open_records = 0;
        self.open_since = None;
        self.in_flight.push_back(id);
        self.batch_tx
            .send((id, batch))
            .await
            .map_err(|_| Error::Setting {
                name: "writer".into(),
                message: "the writer stopped".into(),
            })?;
        Ok(())
    }

    /// A batch is durable: wait for its dead letters, then commit what may be committed.
    async fn completed(&mut self, id: u64, result: Result<(), E>) -> Result<(), E> {
        self.in_flight.retain(|b| *b != id);
        if let Err(e) = result {
            self.metrics.write_errors.inc();
            return Err(e);
        }
        for (delivery, topic) in self.dlq_pending.remove(&id).unwrap_or_default() {
            acknowledged(delivery, &topic).await?;
        }
        self.batches += 1;
        let positions = self.tracker.complete(id);
        self.commit(positions, CommitMode::Async);
        if self.paused {
            self.resume();
        }
        Ok(())
    }

    fn commit(&mut self, positions: Vec<(TopicPartition, i64)>, mode: CommitMode) {
        let mut tpl = TopicPartitionList::new();
        for (tp, next) in positions {
            if self.committed.get(&tp).is_some_and(|c| *c >= next) {
                continue;
            }
            if tpl
                .add_partition_offset(&tp.0, tp.1, Offset::Offset(next))
                .is_ok()
            {
                self.committed.insert(tp, next);
            }
        }
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = self.consumer.store_offsets(&tpl) {
            self.metrics.commit_errors.inc();
            tracing::warn!(error = %e, "cannot store offsets (partition no longer assigned?)");
        }
        match self.consumer.commit_consumer_state(mode) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {
                self.metrics.commits.inc()
            }
            Err(e) => {
                self.metrics.commit_errors.inc();
                tracing::warn!(error = %e, "offset commit failed; the records will be read again after a restart");
            }
        }
    }

    fn pause(&mut self) {
        match self
            .consumer
            .assignment()
            .and_then(|a| self.consumer.pause(&a))
        {
            Ok(()) => {
                tracing::debug!("writer behind: consumption paused until a batch is written");
                self.paused = true;
                self.metrics.paused.set(1);
            }
            Err(e) => tracing::warn!(error = %e, "cannot pause consumption"),
        }
    }

    fn resume(&mut self) {
        match self
            .consumer
            .assignment()
            .and_then(|a| self.consumer.resume(&a))
        {
            Ok(()) => {
                self.paused = false;
                self.metrics.paused.set(0);
            }
            Err(e) => tracing::warn!(error = %e, "cannot resume consumption"),
        }
    }

    /// Partition positions restart from the committed offsets after a rebalance, so what
    /// was not sealed is dropped (it is read again) and partitions no longer owned are
    /// never committed by this instance.
    fn after_rebalance<S: Sink<Batch = B, Error = E>>(&mut self, sink: &mut S) {
        self.known.clear();
        let owned: std::collections::HashSet<TopicPartition> = match self.consumer.assignment() {
            Ok(tpl) => tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the assignment after a rebalance; committing nothing held");
                Default::default()
            }
        };
        self.metrics.assigned_partitions.set(owned.len() as i64);
        sink.drop_unsealed();
        // The open batch's records will be read again: its id is retired.
        let dropped: Vec<TopicPartition> = self.tracker.partitions();
        let open = self.open_id;
        self.open_id += 1;
        self.tracker.forget_batch(open);
        let lost: Vec<TopicPartition> = dropped
            .into_iter()
            .filter(|tp| !owned.contains(tp))
            .collect();
        self.tracker.forget(&lost);
        self.committed.retain(|tp, _| owned.contains(tp));
        // Dead letters already sent stay awaited before the next commit.
        if let Some(pending) = self.dlq_pending.remove(&open) {
            self.dlq_pending
                .entry(self.open_id)
                .or_default()
                .extend(pending);
        }
        self.open_records = 0;
        self.open_since = None;
        if self.paused {
            // A new assignment starts unpaused.
            self.paused = false;
            self.metrics.paused.set(0);
        }
    }

    /// Shutdown: seal what is held, wait for every batch (at most the grace period),
    /// commit synchronously.
    async fn drain<S: Sink<Batch = B, Error = E>>(
        &mut self,
        sink: &mut S,
        cancel: &CancellationToken,
    ) -> Result<(), E> {
        tracing::info!(
            in_flight = self.in_flight.len(),
            open = self.open_records,
            "shutting down: writing what is held"
        );
        let deadline = Instant::now() + self.config.shutdown_grace;
        let timer = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(deadline).await;
                cancel.cancel();
            })
        };
        let mut result = Ok(());
        // Whatever `closing` added is held too, even without a record.
        let closed_something = sink.closing();
        if self.open_records > 0 || sink.pending_bytes() > 0 || closed_something {
            while self.in_flight.len() >= self.config.max_in_flight {
                match self.done_rx.recv().await {
                    Some((id, r)) => {
                        if let Err(e) = self.completed(id, r).await {
                            result = Err(e);
                            break;
                        }
                    }
                    None => break,
                }
            }
            if result.is_ok() {
                result = self.seal(sink).await;
            }
        }
        while !self.in_flight.is_empty() {
            match self.done_rx.recv().await {
                Some((id, r)) => {
                    let r = self.completed(id, r).await;
                    if result.is_ok() {
                        result = r;
                    }
                }
                None => break,
            }
        }
        timer.abort();
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                self.metrics.commit_errors.inc();
                tracing::warn!(error = %e, "final offset commit failed; records will be read again after a restart");
            }
        }
        if let Err(e) = &result {
            tracing::error!(error = %e, "not everything held was written; it stays uncommitted and is read again at the next start");
        }
        result
    }
}

/// Records [`Loop::take_ready`] takes in one run at most.
const READY_RUN: usize = 512;

/// The output of `fut` if it is ready on the first poll.
fn ready<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Leaves the group and destroys the consumer on a thread of its own, waiting at most
/// 10 s: librdkafka's destroy occasionally hangs, and shutdown must not.
pub(crate) async fn close_consumer<C: rdkafka::consumer::ConsumerContext + 'static>(
    consumer: StreamConsumer<C>,
) {
    const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
    consumer.unsubscribe();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("kafka-close".into())
        .spawn(move || {
            drop(consumer);
            let _ = tx.send(());
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a thread to close the Kafka consumer");
        return;
    }
    if tokio::time::timeout(CLOSE_TIMEOUT, rx).await.is_err() {
        tracing::warn!("Kafka consumer did not close within 10 s; leaving it behind");
    }
}
