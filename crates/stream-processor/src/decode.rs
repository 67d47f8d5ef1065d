//! Decoding off the consumer loop: messages are copied into chunks as they are taken,
//! decoded on worker threads, and handed back in the order they were taken.
//!
//! Only decoding moves. Detection, rollup windows and Arrow rows stay on the loop,
//! in offset order, because the missing-sample and lost-GPU rules judge every GPU
//! against the whole fleet's event time: sharding that state by partition would change
//! what they fire. Decoding is pure, so where it runs changes nothing but the time.
//!
//! ```
//! use gpustream_runtime::consumer::Record;
//! use stream_processor::decode::DecodePool;
//!
//! let mut pool = DecodePool::new(1).unwrap();
//! let record = Record { topic: "t", partition: 0, offset: 7, key: None, payload: Some(b"{") };
//! pool.push(&record, false);
//! pool.submit();
//! let chunk = pool.next(true).expect("the chunk comes back");
//! let item = chunk.iter(pool.topics()).next().expect("one message");
//! assert_eq!((item.partition, item.offset), (0, 7));
//! assert!(item.sample.is_err(), "not a sample");
//! pool.recycle(chunk);
//! ```

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::JoinHandle;

use gpustream::Sample;
use gpustream_runtime::consumer::Record;

/// Messages a chunk holds before it is handed to a worker: large enough that a
/// hand-over (two channel operations) is noise beside decoding it, small enough that
/// the loop's wait at a seal is short.
pub const CHUNK_RECORDS: usize = 256;

/// Chunks each worker may hold (queued or being decoded) before the loop waits for the
/// oldest: bounds the payload copies in flight.
const PER_WORKER_IN_FLIGHT: usize = 4;

/// One message in a chunk.
struct Entry {
    topic: usize,
    partition: i32,
    offset: i64,
    replay: bool,
    key: Option<Range<usize>>,
    payload: Option<Range<usize>>,
}

/// Messages copied off the client and, once decoded, their samples.
#[derive(Default)]
pub struct Chunk {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    /// Decoded samples, one per entry; reused from chunk to chunk so that decoding
    /// allocates nothing once their strings have grown.
    samples: Vec<Sample>,
    /// Why an entry did not decode, by entry index.
    errors: Vec<(usize, String)>,
}

/// One message of a decoded chunk.
pub struct Decoded<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Whether the destination already holds it (state is rebuilt from it, nothing
    /// written).
    pub replay: bool,
    /// Its key.
    pub key: Option<&'a [u8]>,
    /// Its payload.
    pub payload: Option<&'a [u8]>,
    /// The sample, or why the payload is not one.
    pub sample: Result<&'a Sample, &'a str>,
}

impl Decoded<'_> {
    /// Payload bytes.
    pub fn size(&self) -> usize {
        self.payload.map_or(0, <[u8]>::len)
    }
}

impl Chunk {
    fn push(&mut self, topic: usize, record: &Record<'_>, replay: bool) {
        let mut copy = |bytes: Option<&[u8]>| {
            bytes.map(|b| {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(b);
                start..self.bytes.len()
            })
        };
        let key = copy(record.key);
        let payload = copy(record.payload);
        self.entries.push(Entry {
            topic,
            partition: record.partition,
            offset: record.offset,
            replay,
            key,
            payload,
        });
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no message.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn decode(&mut self) {
        self.errors.clear();
        while self.samples.len() < self.entries.len() {
            self.samples.push(gpustream::wire::empty_sample());
        }
        for (i, (entry, sample)) in self.entries.iter().zip(&mut self.samples).enumerate() {
            let Some(range) = &entry.payload else {
                self.errors.push((i, "empty message".to_string()));
                continue;
            };
            let payload = self.bytes.get(range.clone()).unwrap_or_default();
            if let Err(e) = gpustream::wire::decode_sample_into(payload, sample) {
                self.errors.push((i, e.to_string()));
            }
        }
    }

    /// The messages in the order they were taken, with what each decoded to; `topics`
    /// are the names the pool's topic numbers stand for ([`DecodePool::topics`]).
    pub fn iter<'a>(&'a self, topics: &'a [String]) -> impl Iterator<Item = Decoded<'a>> {
        let mut errors = self.errors.iter().peekable();
        self.entries
            .iter()
            .zip(&self.samples)
            .enumerate()
            .map(move |(i, (e, sample))| {
                let error = errors.next_if(|(at, _)| *at == i).map(|(_, m)| m.as_str());
                let bytes = |r: &Option<Range<usize>>| {
                    r.as_ref()
                        .map(|r| self.bytes.get(r.clone()).unwrap_or_default())
                };
                Decoded {
                    topic: topics.get(e.topic).map_or("", String::as_str),
                    partition: e.partition,
                    offset: e.offset,
                    replay: e.replay,
                    key: bytes(&e.key),
                    payload: bytes(&e.payload),
                    sample: error.map_or(Ok(sample), Err),
                }
            })
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
        self.errors.clear();
    }
}

struct Worker {
    work: SyncSender<Chunk>,
    done: Receiver<Chunk>,
    thread: Option<JoinHandle<()>>,
}

/// Decodes chunks of messages on worker threads (or on the caller's thread when it has
/// none) and returns them in submission order.
pub struct DecodePool {
    workers: Vec<Worker>,
    open: Chunk,
    /// Decoded chunks waiting to be taken back (without workers).
    ready: VecDeque<Chunk>,
    spare: Vec<Chunk>,
    topics: Vec<String>,
    submitted: u64,
    returned: u64,
}

impl DecodePool {
    /// A pool of `threads` decoding threads; 0 decodes on the caller's thread.
    pub fn new(threads: usize) -> std::io::Result<DecodePool> {
        let mut workers = Vec::with_capacity(threads);
        for n in 0..threads {
            let (work, inbox) = sync_channel::<Chunk>(PER_WORKER_IN_FLIGHT);
            let (outbox, done) = channel::<Chunk>();
            let thread = std::thread::Builder::new()
                .name(format!("decode-{n}"))
                .spawn(move || {
                    while let Ok(mut chunk) = inbox.recv() {
                        chunk.decode();
                        if outbox.send(chunk).is_err() {
                            return;
                        }
                    }
                })?;
            workers.push(Worker {
                work,
                done,
                thread: Some(thread),
            });
        }
        Ok(DecodePool {
            workers,
            open: Chunk::default(),
            ready: VecDeque::new(),
            spare: Vec::new(),
            topics: Vec::new(),
            submitted: 0,
            returned: 0,
        })
    }

    /// The topic names a chunk's messages refer to by number.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// Decoding threads (0: the caller's).
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Copies `record` into the open chunk and submits the chunk once it is full.
    pub fn push(&mut self, record: &Record<'_>, replay: bool) {
        let topic = match self.topics.iter().position(|t| t == record.topic) {
            Some(i) => i,
            None => {
                self.topics.push(record.topic.to_string());
                self.topics.len() - 1
            }
        };
        self.open.push(topic, record, replay);
        if self.open.len() >= CHUNK_RECORDS {
            self.submit();
        }
    }

    /// Hands the open chunk over for decoding (nothing when it is empty).
    pub fn submit(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let fresh = self.spare.pop().unwrap_or_default();
        let mut chunk = std::mem::replace(&mut self.open, fresh);
        self.submitted += 1;
        if self.workers.is_empty() {
            chunk.decode();
            self.ready.push_back(chunk);
            return;
        }
        let n = self.workers.len();
        let worker = &self.workers[((self.submitted - 1) % n as u64) as usize];
        if worker.work.send(chunk).is_err() {
            worker_lost();
        }
    }

    /// Chunks submitted and not yet taken back.
    pub fn in_flight(&self) -> usize {
        (self.submitted - self.returned) as usize
    }

    /// Whether the loop should take a chunk back (waiting for it) before taking more
    /// messages: each worker holds at most a few.
    pub fn saturated(&self) -> bool {
        self.in_flight() >= PER_WORKER_IN_FLIGHT * self.workers.len().max(1)
    }

    /// The oldest submitted chunk once it is decoded: waits for it with `wait`, else
    /// returns `None` while it is still being decoded. `None` when nothing is in flight.
    pub fn next(&mut self, wait: bool) -> Option<Chunk> {
        if self.returned == self.submitted {
            return None;
        }
        let chunk = if self.workers.is_empty() {
            self.ready.pop_front()
        } else {
            let n = self.workers.len() as u64;
            let worker = &self.workers[(self.returned % n) as usize];
            if wait {
                match worker.done.recv() {
                    Ok(c) => Some(c),
                    Err(_) => worker_lost(),
                }
            } else {
                match worker.done.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => worker_lost(),
                }
            }
        };
        if chunk.is_some() {
            self.returned += 1;
        }
        chunk
    }

    /// Gives a chunk taken back for reuse.
    pub fn recycle(&mut self, mut chunk: Chunk) {
        chunk.clear();
        self.spare.push(chunk);
    }
}

impl Drop for DecodePool {
    fn drop(&mut self) {
        for mut w in self.workers.drain(..) {
            drop(w.work);
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// A decoding thread is gone (it can only panic on a bug: decoding is total). The
/// records it held are lost to this process, and their offsets would be committed
/// with the batch, so the process stops rather than go on: a restart reads them again.
fn worker_lost() -> ! {
    tracing::error!("a decoding thread stopped; aborting so that no record is skipped");
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, payload: &[u8]) -> Record<'_> {
        Record {
            topic: "gpu-samples",
            partition: (offset % 3) as i32,
            offset,
            key: Some(b"k"),
            payload: Some(payload),
        }
    }

    /// Every message comes back once, in the order taken, with what it decoded to,
    /// whatever the number of threads.
    #[test]
    fn chunks_come_back_in_order_with_their_errors() {
        let good = gpustream::wire::encode_sample(&crate::test_support::temp_sample(0, 50.0))
            .expect("encode");
        for threads in [0, 1, 3] {
            let mut pool = DecodePool::new(threads).expect("pool");
            let mut seen = Vec::new();
            let mut take = |pool: &mut DecodePool, wait: bool| {
                while let Some(chunk) = pool.next(wait) {
                    for d in chunk.iter(pool.topics()) {
                        seen.push((d.offset, d.sample.is_ok(), d.replay, d.key.is_some()));
                    }
                    pool.recycle(chunk);
                }
            };
            for offset in 0..2_000 {
                let payload: &[u8] = if offset % 97 == 0 {
                    b"{\"oops\""
                } else {
                    &good
                };
                pool.push(&record(offset, payload), offset < 10);
                while pool.saturated() {
                    take(&mut pool, true);
                }
                take(&mut pool, false);
            }
            pool.submit();
            take(&mut pool, true);
            assert_eq!(seen.len(), 2_000, "{threads} threads");
            for (i, (offset, ok, replay, key)) in seen.iter().enumerate() {
                assert_eq!(*offset, i as i64, "{threads} threads: in order");
                assert_eq!(*ok, i % 97 != 0, "{threads} threads: offset {i}");
                assert_eq!(*replay, i < 10);
                assert!(key);
            }
        }
    }
}
