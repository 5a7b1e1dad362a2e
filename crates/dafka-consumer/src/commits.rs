//! What a consumer's application and its driver share about commits:
//! processed positions (handed to the driver each turn), the partitions
//! read (only those may be committed), the record taken last (auto-commit)
//! and the `commit_sync` tickets the stores acknowledged.

use dafka_proto::{NodeId, Position, Record};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Condvar, Mutex};

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
    /// With auto-commit: the record taken last. Every record before it in
    /// its partition is processed; it is, once the next is taken.
    pub(crate) last_taken: Mutex<Option<(std::sync::Arc<str>, NodeId, u64)>>,
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
        match last.as_mut() {
            Some((topic, partition, offset))
                if *partition == next.partition && *topic == next.topic =>
            {
                *offset = next.offset;
            }
            _ => {
                if let Some((topic, partition, offset)) = last.take() {
                    self.note(&topic, partition, offset + 1);
                }
                *last = Some((next.topic.clone(), next.partition, next.offset));
            }
        }
        self.dirty.store(true, SeqCst);
    }

    /// On close: the record taken last is processed too.
    pub(crate) fn finish_taken(&self) {
        let last = self.last_taken.lock().ok().and_then(|mut l| l.take());
        if let Some((topic, partition, offset)) = last {
            self.note(&topic, partition, offset + 1);
        }
    }

    pub(crate) fn take(&self) -> Option<Vec<Position>> {
        if !self.dirty.swap(false, SeqCst) {
            return None;
        }
        let m = std::mem::take(&mut *self.processed.lock().ok()?);
        let mut out = Vec::new();
        // Everything before the record taken last is processed.
        if let Some((topic, partition, offset)) = self.last_taken.lock().ok()?.as_ref() {
            out.push(Position {
                topic: topic.to_string(),
                partition: *partition,
                offset: *offset,
            });
        }
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
