//! The time index, in the `times` column family, so that "where does this
//! time fall?" costs a seek and one run's read, not a scan of the partition:
//!
//! ```text
//! 't' [topic length: u8][topic][partition: 16 bytes][time: u64 BE] -> offset: u64 BE
//! ```
//!
//! A stored run that raises its partition's highest timestamp adds one
//! entry: the new highest time, and the run's first offset. Times and
//! offsets both grow along a partition's entries, so the first entry at or
//! after a time names the run where the partition first reaches it; the
//! answer is the first record of that run at or after the time (every
//! record before the run is older: the previous entry's time is the
//! highest before it). Entries are written in the same batch as their
//! records, so a crash never leaves one without the other.
//!
//! Records stored before this index existed have no entry; their
//! partitions are found from their first indexed run on (records without
//! a timestamp, the only kind written before, are older than any time).

use super::{io, prefix, RocksStorage, TIMES_CF};
use crate::storage::{index_time, ReadLimit, Storage, StorageError};
use dafka_proto::{NodeId, Record};
use rocksdb::{Direction, IteratorMode, WriteBatch};
use std::collections::HashMap;

const TIME: u8 = b't';

/// Records read at a time while looking inside a run for the first one at
/// or after a time (runs are at most a few thousand small records).
const READ_STEP: ReadLimit = ReadLimit {
    records: 4096,
    bytes: 4 << 20,
};

fn time_key(topic: &str, partition: &NodeId, time: u64) -> Vec<u8> {
    let mut k = prefix(TIME, topic, partition);
    k.extend_from_slice(&time.to_be_bytes());
    k
}

fn u64_at_end(bytes: &[u8]) -> Option<u64> {
    let tail = bytes.get(bytes.len().checked_sub(8)?..)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

/// Each partition's highest timestamp, as far as this store has looked.
pub(super) type Highest = HashMap<(String, NodeId), u64>;

impl RocksStorage {
    fn times_cf(&self) -> Result<&rocksdb::ColumnFamily, StorageError> {
        self.db
            .cf_handle(TIMES_CF)
            .ok_or_else(|| StorageError::Corrupt("no times column family".into()))
    }

    /// A partition's highest indexed timestamp (0 without any), from what
    /// this batch raised it to (`pending`), what is known, or its last
    /// index entry.
    pub(super) fn highest(
        &self,
        topic: &str,
        partition: &NodeId,
        pending: &Highest,
    ) -> Result<u64, StorageError> {
        let key = (topic.to_string(), *partition);
        if let Some(t) = pending.get(&key).or_else(|| self.highest.get(&key)) {
            return Ok(*t);
        }
        let start = prefix(TIME, topic, partition);
        let end = time_key(topic, partition, u64::MAX);
        let mode = IteratorMode::From(&end, Direction::Reverse);
        match self.db.iterator_cf(self.times_cf()?, mode).next() {
            Some(Ok((k, _))) if k.starts_with(&start) => {
                u64_at_end(&k).ok_or_else(|| StorageError::Corrupt("bad time index key".into()))
            }
            Some(Err(e)) => Err(io("read")(e)),
            _ => Ok(0),
        }
    }

    /// Adds `run`'s index entry to `batch` if the run raises its
    /// partition's highest timestamp, noting the new one in `pending`
    /// (kept once the batch is written).
    pub(super) fn index_run(
        &self,
        run: &[Record],
        batch: &mut WriteBatch,
        pending: &mut Highest,
    ) -> Result<(), StorageError> {
        let Some(first) = run.first() else {
            return Ok(());
        };
        let top = run.iter().map(index_time).max().unwrap_or(0);
        let before = self.highest(&first.topic, &first.partition, pending)?;
        if top > before {
            let k = time_key(&first.topic, &first.partition, top);
            batch.put_cf(self.times_cf()?, k, first.offset.to_be_bytes());
            pending.insert((first.topic.to_string(), first.partition), top);
        }
        Ok(())
    }

    /// Where `time` falls in one partition whose head is `head` (see
    /// [`Storage::offsets_at`]).
    pub(super) fn offset_at(
        &self,
        topic: &str,
        partition: &NodeId,
        head: u64,
        time: u64,
    ) -> Result<u64, StorageError> {
        let end = head.saturating_add(1);
        let from = if time == 0 {
            0 // Every record is at or after 0: the first one held.
        } else {
            match self.time_run(topic, partition, time)? {
                Some(run) => run,
                None => return Ok(end),
            }
        };
        // Below the log start nothing is left: the read starts there.
        self.first_at_or_after(topic, partition, from, end, time)
    }

    /// The first offset of the run where the partition's highest timestamp
    /// first reaches `time`, if it does.
    pub(super) fn time_run(
        &self,
        topic: &str,
        partition: &NodeId,
        time: u64,
    ) -> Result<Option<u64>, StorageError> {
        let start = prefix(TIME, topic, partition);
        let key = time_key(topic, partition, time);
        let mode = IteratorMode::From(&key, Direction::Forward);
        match self.db.iterator_cf(self.times_cf()?, mode).next() {
            Some(Ok((k, v))) if k.starts_with(&start) => u64_at_end(&v)
                .map(Some)
                .ok_or_else(|| StorageError::Corrupt("bad time index entry".into())),
            Some(Err(e)) => Err(io("read")(e)),
            _ => Ok(None),
        }
    }

    /// Adds to `batch` the deletion of the index entries of runs below
    /// `cut`, but the last of them: it still covers the records from `cut`
    /// on (their highest timestamp so far is its time).
    pub(super) fn drop_time_entries_below(
        &self,
        topic: &str,
        partition: &NodeId,
        cut: u64,
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        let cf = self.times_cf()?;
        let start = prefix(TIME, topic, partition);
        let mode = IteratorMode::From(&start, Direction::Forward);
        let mut last_below: Option<Box<[u8]>> = None;
        for item in self.db.iterator_cf(cf, mode) {
            let (k, v) = item.map_err(io("read"))?;
            let run = u64_at_end(&v);
            if !k.starts_with(&start) || run.is_none_or(|r| r > cut) {
                break;
            }
            last_below = Some(k);
        }
        if let Some(k) = last_below {
            batch.delete_range_cf(cf, time_key(topic, partition, 0), k.to_vec());
        }
        Ok(())
    }

    /// The offset of the first record from `from` on whose timestamp is at
    /// or after `time` (`end` if none is).
    fn first_at_or_after(
        &self,
        topic: &str,
        partition: &NodeId,
        mut from: u64,
        end: u64,
        time: u64,
    ) -> Result<u64, StorageError> {
        while from < end {
            let records = self.read(topic, partition, from, READ_STEP)?;
            let Some(last) = records.last() else {
                break;
            };
            if let Some(r) = records.iter().find(|r| index_time(r) >= time) {
                return Ok(r.offset);
            }
            from = last.offset.saturating_add(1);
        }
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::{MemStorage, Storage, SyncPolicy, WalRecovery};
    use crate::RocksStorage;
    use bytes::Bytes;
    use dafka_proto::{NodeId, Position, Record};

    fn rec(p: u8, offset: u64, ts: Option<i64>) -> Record {
        Record {
            topic: "t".into(),
            partition: NodeId([p; 16]),
            offset,
            timestamp_ms: ts,
            content: Bytes::from_static(b"x"),
            ..Default::default()
        }
    }

    fn at(s: &dyn Storage, time: u64) -> Vec<(u8, u64)> {
        let mut v: Vec<(u8, u64)> = s
            .offsets_at("t", time)
            .expect("offsets_at")
            .into_iter()
            .map(
                |Position {
                     partition, offset, ..
                 }| (partition.0[0], offset),
            )
            .collect();
        v.sort();
        v
    }

    /// Partition 1: times step back (a producer's clock) and repeat across
    /// batches; partition 2: no timestamps (older than any time); a
    /// record in partition 3 only. Every time asked gives the scan's
    /// answer, before and after a reopen.
    #[test]
    fn the_index_answers_as_a_scan_would_across_batches_and_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = || {
            RocksStorage::open(dir.path(), SyncPolicy::Always, WalRecovery::PointInTime)
                .expect("open")
        };
        let batches: Vec<Vec<Record>> = vec![
            vec![
                rec(1, 0, Some(100)),
                rec(1, 1, Some(90)),
                rec(1, 2, Some(150)),
            ],
            vec![rec(2, 0, None), rec(2, 1, None), rec(3, 0, Some(500))],
            vec![rec(1, 3, Some(120)), rec(1, 4, Some(150))],
            vec![
                rec(1, 5, Some(160)),
                rec(1, 6, Some(-5)),
                rec(1, 7, Some(400)),
            ],
        ];
        let mut mem = MemStorage::default();
        let times = [0, 1, 90, 100, 101, 150, 151, 160, 161, 400, 401, 500, 501];
        {
            let mut s = open();
            for (i, b) in batches.iter().enumerate() {
                s.write(b).expect("write");
                mem.write(b).expect("write");
                for t in times {
                    assert_eq!(at(&s, t), at(&mem, t), "after batch {i}, time {t}");
                }
                if i == 1 {
                    drop(s);
                    s = open(); // the highest times are read back
                }
            }
        }
        let s = open();
        for t in times {
            assert_eq!(at(&s, t), at(&mem, t), "after reopen, time {t}");
        }
        assert_eq!(at(&s, 151), vec![(1, 5), (2, 2), (3, 0)]);
        assert_eq!(at(&s, 0), vec![(1, 0), (2, 0), (3, 0)]);
    }
}
