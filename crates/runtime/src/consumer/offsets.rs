//! Which offsets may be committed: only up to the first record that is not yet durable.
//!
//! Every consumed record belongs to one batch. A batch completes when its writer made it
//! durable (and its dead letters were acknowledged). A partition's commit position
//! moves to the end of a completed batch only when every earlier batch holding records
//! of that partition completed too, so a commit never passes an undelivered record,
//! however batches complete.

use std::collections::{BTreeMap, VecDeque};

/// A topic partition.
pub type TopicPartition = (String, i32);

#[derive(Debug)]
struct Span {
    batch: u64,
    /// Offset after the batch's last record of the partition (what to commit).
    next: i64,
    done: bool,
}

/// Per partition, the batches holding its records, oldest first.
///
/// ```
/// use gpustream_runtime::consumer::OffsetTracker;
/// let mut t = OffsetTracker::default();
/// t.track(1, "t", 0, 10);
/// t.track(2, "t", 0, 11);
/// assert!(t.complete(2).is_empty()); // batch 1 still open: nothing to commit
/// assert_eq!(t.complete(1), vec![(("t".to_string(), 0), 12)]);
/// ```
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: BTreeMap<TopicPartition, VecDeque<Span>>,
}

impl OffsetTracker {
    /// Records that `batch` holds the record at `offset` of `topic`/`partition`.
    /// Batches are numbered in the order they are opened; a partition's records arrive
    /// in offset order.
    pub fn track(&mut self, batch: u64, topic: &str, partition: i32, offset: i64) {
        let spans = match self.partitions.get_mut(&(topic.to_string(), partition)) {
            Some(s) => s,
            None => self
                .partitions
                .entry((topic.to_string(), partition))
                .or_default(),
        };
        let next = offset.saturating_add(1);
        match spans.back_mut() {
            Some(last) if last.batch == batch => last.next = last.next.max(next),
            _ => spans.push_back(Span {
                batch,
                next,
                done: false,
            }),
        }
    }

    /// Marks `batch` durable; returns the partitions whose commit position moved, with
    /// the offset to commit (the next one to read).
    pub fn complete(&mut self, batch: u64) -> Vec<(TopicPartition, i64)> {
        let mut out = Vec::new();
        for (tp, spans) in &mut self.partitions {
            for s in spans.iter_mut() {
                if s.batch == batch {
                    s.done = true;
                }
            }
            let mut commit = None;
            while spans.front().is_some_and(|s| s.done) {
                commit = spans.pop_front().map(|s| s.next);
            }
            if let Some(next) = commit {
                out.push((tp.clone(), next));
            }
        }
        self.partitions.retain(|_, s| !s.is_empty());
        out
    }

    /// Forgets the records of `partitions` (no longer owned, or to be read again): their
    /// batches may still complete, but never commit them.
    pub fn forget(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.partitions.remove(tp);
        }
    }

    /// Forgets the records of `batch` (dropped before it was sealed: they are read again).
    pub fn forget_batch(&mut self, batch: u64) {
        for spans in self.partitions.values_mut() {
            spans.retain(|s| s.batch != batch);
        }
        self.partitions.retain(|_, s| !s.is_empty());
    }

    /// Forgets everything not yet committed.
    pub fn clear(&mut self) {
        self.partitions.clear();
    }

    /// Partitions with records not yet committed.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        ("t".to_string(), p)
    }

    #[test]
    fn never_commits_past_an_open_batch() {
        let mut t = OffsetTracker::default();
        for o in 0..5 {
            t.track(1, "t", 0, o);
        }
        t.track(1, "t", 1, 100);
        for o in 5..8 {
            t.track(2, "t", 0, o);
        }
        t.track(3, "t", 1, 101);
        // Batch 3 completes first: partition 1 still waits for batch 1.
        assert!(t.complete(3).is_empty());
        assert!(t.complete(2).is_empty());
        let mut got = t.complete(1);
        got.sort();
        assert_eq!(got, vec![(tp(0), 8), (tp(1), 102)]);
        assert!(t.partitions().is_empty());
    }

    #[test]
    fn forgotten_partitions_are_never_committed() {
        let mut t = OffsetTracker::default();
        t.track(1, "t", 0, 1);
        t.track(1, "t", 1, 1);
        t.forget(&[tp(0)]);
        assert_eq!(t.complete(1), vec![(tp(1), 2)]);
    }

    #[test]
    fn a_random_completion_order_commits_only_contiguous_prefixes() {
        // Deterministic shuffles of 8 batches over 3 partitions: after every completion
        // the committed position is the end of the longest completed prefix.
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..200 {
            let mut t = OffsetTracker::default();
            let mut ends: BTreeMap<(i32, u64), i64> = BTreeMap::new();
            let mut offset = [0i64; 3];
            for batch in 1..=8u64 {
                for p in 0..3 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    for _ in 0..(seed % 3) {
                        t.track(batch, "t", p, offset[p as usize]);
                        offset[p as usize] += 1;
                        ends.insert((p, batch), offset[p as usize]);
                    }
                }
            }
            let mut order: Vec<u64> = (1..=8).collect();
            for i in (1..order.len()).rev() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                order.swap(i, (seed % (i as u64 + 1)) as usize);
            }
            let mut done = std::collections::BTreeSet::new();
            let mut committed = [0i64; 3];
            for b in order {
                done.insert(b);
                for ((_, p), next) in t.complete(b) {
                    committed[p as usize] = next;
                }
                // Per partition, exactly the end of the longest completed prefix of the
                // batches holding its records: never past a record of an incomplete batch,
                // never behind a durable one.
                for p in 0..3 {
                    let mut limit = 0;
                    for b in (1..=8u64).filter(|b| ends.contains_key(&(p, *b))) {
                        if !done.contains(&b) {
                            break;
                        }
                        limit = ends[&(p, b)];
                    }
                    assert_eq!(committed[p as usize], limit, "partition {p}");
                }
            }
            assert_eq!(committed, offset);
        }
    }
}
