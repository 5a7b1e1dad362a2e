//! What a consumer's application and its driver share about commits:
//! processed positions (handed to the driver each turn), the partitions
//! read (only those may be committed), the record taken last (auto-commit)
//! and the `commit_sync` tickets the stores acknowledged.

use dafka_proto::{NodeId, Position, Record};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};

/// Offsets `first..=last` of one partition, taken and not yet processed.
#[derive(Debug)]
pub(crate) struct Taken {
    topic: Arc<str>,
    partition: NodeId,
    first: u64,
    last: u64,
}

/// What the application and the driver share about commits.
#[derive(Default)]
pub(crate) struct Commits {
    /// Processed positions not yet handed to the driver (highest each),
    /// by topic then partition (looked up by `&str`: no allocation per
    /// record).
    pub(crate) processed: Mutex<HashMap<String, HashMap<NodeId, u64>>>,
    pub(crate) dirty: AtomicBool,
    /// Partitions this consumer delivered records of (only commits for
    /// those are accepted), by topic.
    pub(crate) read: Mutex<HashMap<String, BTreeSet<NodeId>>>,
    /// With auto-commit: what was taken last (one record, or a batch's
    /// records of each partition). Every record before those is processed;
    /// they are, once the next are taken.
    pub(crate) last_taken: Mutex<Vec<Taken>>,
    /// `commit_sync` tickets the stores acknowledged.
    pub(crate) done: Mutex<BTreeSet<u64>>,
    pub(crate) changed: Condvar,
    pub(crate) next_ticket: AtomicU64,
}

impl Commits {
    /// Records that a record of this partition was delivered (the driver
    /// calls it only when the partition changes from the last record's).
    pub(crate) fn delivered(&self, topic: &str, partition: NodeId) {
        if let Ok(mut read) = self.read.lock() {
            if let Some(parts) = read.get_mut(topic) {
                parts.insert(partition);
            } else {
                read.insert(topic.to_string(), BTreeSet::from([partition]));
            }
        }
    }

    pub(crate) fn was_read(&self, topic: &str, partition: NodeId) -> bool {
        self.read
            .lock()
            .is_ok_and(|r| r.get(topic).is_some_and(|ps| ps.contains(&partition)))
    }

    pub(crate) fn note(&self, topic: &str, partition: NodeId, position: u64) {
        if let Ok(mut m) = self.processed.lock() {
            if !m.contains_key(topic) {
                m.insert(topic.to_string(), HashMap::new());
            }
            if let Some(parts) = m.get_mut(topic) {
                let e = parts.entry(partition).or_insert(position);
                *e = (*e).max(position);
            }
            self.dirty.store(true, SeqCst);
        }
    }

    /// Auto-commit: `next` is taken, so what was taken before it is
    /// processed. Costs a lock and a compare per record: the previous
    /// record's position is written out only when the partition changes
    /// (within one, the record taken last says it all).
    pub(crate) fn taken(&self, next: &Record) {
        let Ok(mut last) = self.last_taken.lock() else {
            return;
        };
        match last.as_mut_slice() {
            [t] if t.partition == next.partition && t.topic == next.topic => {
                t.first = next.offset;
                t.last = next.offset;
            }
            _ => {
                self.processed_all(&mut last);
                last.push(Taken::of(next));
            }
        }
        self.dirty.store(true, SeqCst);
    }

    /// Auto-commit: a batch is taken, so everything taken before it is
    /// processed, and what precedes the batch in each of its partitions.
    pub(crate) fn taken_batch(&self, batch: &[Record]) {
        let Ok(mut last) = self.last_taken.lock() else {
            return;
        };
        self.processed_all(&mut last);
        for r in batch {
            match last.last_mut() {
                Some(t) if t.partition == r.partition && t.topic == r.topic => t.last = r.offset,
                // Batches interleave partitions: a partition met again keeps
                // its first offset.
                _ => match last
                    .iter_mut()
                    .find(|t| t.partition == r.partition && t.topic == r.topic)
                {
                    Some(t) => t.last = r.offset,
                    None => last.push(Taken::of(r)),
                },
            }
        }
        self.dirty.store(true, SeqCst);
    }

    /// What was taken is processed.
    fn processed_all(&self, last: &mut Vec<Taken>) {
        for t in last.drain(..) {
            self.note(&t.topic, t.partition, t.last + 1);
        }
    }

    /// On close: what was taken last is processed too.
    pub(crate) fn finish_taken(&self) {
        let taken = self.last_taken.lock().map(|mut l| std::mem::take(&mut *l));
        if let Ok(mut taken) = taken {
            self.processed_all(&mut taken);
        }
    }

    pub(crate) fn take(&self) -> Option<Vec<Position>> {
        if !self.dirty.swap(false, SeqCst) {
            return None;
        }
        let m = std::mem::take(&mut *self.processed.lock().ok()?);
        let mut out = Vec::new();
        // Everything before what was taken last is processed.
        out.extend(self.last_taken.lock().ok()?.iter().map(|t| Position {
            topic: t.topic.to_string(),
            partition: t.partition,
            offset: t.first,
        }));
        for (topic, parts) in m {
            out.extend(parts.into_iter().map(|(partition, offset)| Position {
                topic: topic.clone(),
                partition,
                offset,
            }));
        }
        Some(out)
    }
}

impl Taken {
    fn of(r: &Record) -> Taken {
        Taken {
            topic: r.topic.clone(),
            partition: r.partition,
            first: r.offset,
            last: r.offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(partition: u8, offset: u64) -> Record {
        Record {
            topic: "t".into(),
            partition: NodeId([partition; 16]),
            offset,
            ..Default::default()
        }
    }

    /// The positions handed to the driver now, the highest of each
    /// partition (by its first byte).
    fn positions(c: &Commits) -> Vec<(u8, u64)> {
        let mut p: Vec<(u8, u64)> = (c.take().unwrap_or_default().iter())
            .map(|p| (p.partition.0[0], p.offset))
            .collect();
        p.sort_by_key(|&(part, offset)| (part, std::cmp::Reverse(offset)));
        p.dedup_by_key(|(part, _)| *part);
        p
    }

    #[test]
    fn a_batch_taken_is_processed_once_the_next_is_taken() {
        let c = Commits::default();
        c.taken_batch(&[rec(1, 0), rec(2, 5), rec(1, 1), rec(1, 2), rec(2, 6)]);
        // Taken, not processed: only what came before them.
        assert_eq!(positions(&c), [(1, 0), (2, 5)]);
        c.taken_batch(&[rec(1, 3)]);
        let mut all = c.take().expect("dirty");
        all.sort_by_key(|p| (p.partition.0[0], std::cmp::Reverse(p.offset)));
        let got: Vec<(u8, u64)> = all.iter().map(|p| (p.partition.0[0], p.offset)).collect();
        // Partition 1: the batch before up to 2 is processed (3), and 3 is
        // taken; partition 2: 5 and 6 are processed.
        assert_eq!(got, [(1, 3), (1, 3), (2, 7)]);
    }

    #[test]
    fn a_record_after_a_batch_counts_the_whole_batch_processed() {
        let c = Commits::default();
        c.taken_batch(&[rec(1, 0), rec(1, 1), rec(2, 0)]);
        c.taken(&rec(1, 2));
        assert_eq!(positions(&c), [(1, 2), (2, 1)]);
        c.finish_taken();
        assert_eq!(positions(&c), [(1, 3)]);
    }
}
