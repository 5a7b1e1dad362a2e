//! Retention on RocksDB: what each partition holds, the sizes index, and
//! deleting what the rules expire.
//!
//! A partition's head value (in `heads`) is four numbers, so that the log
//! start and the bytes held survive a restart:
//!
//! ```text
//! head: u64 BE | log start: u64 BE | bytes ever stored: u64 BE | bytes stored below the log start: u64 BE
//! ```
//!
//! (Stores written before retention kept the head alone, 8 bytes: those
//! partitions start at 0 and count their bytes from the upgrade on.)
//!
//! The `sizes` family has one entry per stored run, the bytes stored
//! before it, so a size limit finds its cut without reading records:
//!
//! ```text
//! 's' [topic length: u8][topic][partition: 16 bytes][run's first offset: u64 BE] -> bytes before it: u64 BE
//! ```
//!
//! Cuts fall on run boundaries (a run is one key) and never take the last
//! run, so a partition always keeps its head record. The records, index
//! entries and the new log start go in one batch; the space is given back
//! by a compaction of the deleted range on a thread of its own, so the
//! store keeps writing meanwhile.

use super::{io, prefix, record_key, RocksStorage, SIZES_CF};
use crate::storage::{Retention, StorageError, StoredHead};
use dafka_proto::NodeId;
use rocksdb::{Direction, IteratorMode, WriteBatch, DB};
use std::sync::Arc;
use std::thread::JoinHandle;

const SIZE: u8 = b's';

/// What the store knows of one partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct PartMeta {
    pub head: u64,
    pub log_start: u64,
    /// Bytes of every run ever stored.
    pub total: u64,
    /// Bytes of the runs below the log start (deleted).
    pub start_bytes: u64,
}

impl PartMeta {
    pub fn encode(&self) -> [u8; 32] {
        let mut v = [0u8; 32];
        for (i, n) in [self.head, self.log_start, self.total, self.start_bytes]
            .iter()
            .enumerate()
        {
            v[i * 8..i * 8 + 8].copy_from_slice(&n.to_be_bytes());
        }
        v
    }

    pub fn decode(v: &[u8]) -> Option<Self> {
        let n = |i: usize| -> Option<u64> {
            Some(u64::from_be_bytes(
                v.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        match v.len() {
            8 => Some(PartMeta {
                head: n(0)?,
                ..PartMeta::default()
            }),
            32 => Some(PartMeta {
                head: n(0)?,
                log_start: n(1)?,
                total: n(2)?,
                start_bytes: n(3)?,
            }),
            _ => None,
        }
    }

    /// Bytes held (from the log start on).
    pub fn bytes(&self) -> u64 {
        self.total.saturating_sub(self.start_bytes)
    }

    pub fn stored_head(&self, topic: &str, partition: NodeId) -> StoredHead {
        StoredHead {
            topic: topic.to_string(),
            partition,
            offset: self.head,
            log_start: self.log_start,
            bytes: self.bytes(),
        }
    }
}

pub(super) fn size_key(topic: &str, partition: &NodeId, offset: u64) -> Vec<u8> {
    let mut k = prefix(SIZE, topic, partition);
    k.extend_from_slice(&offset.to_be_bytes());
    k
}

fn u64_at_end(bytes: &[u8]) -> Option<u64> {
    let tail = bytes.get(bytes.len().checked_sub(8)?..)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

fn bad_size_entry() -> StorageError {
    StorageError::Corrupt("bad size index entry".into())
}

/// Gives deleted ranges' space back: compacts each range on its own thread
/// (a compaction of a large range takes seconds; the store's thread must
/// not wait for it).
pub(super) struct Compactor {
    tx: Option<std::sync::mpsc::Sender<(Vec<u8>, Vec<u8>)>>,
    thread: Option<JoinHandle<()>>,
}

impl Compactor {
    pub fn start(db: Arc<DB>) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<(Vec<u8>, Vec<u8>)>();
        let thread = std::thread::Builder::new()
            .name("dafka-compact".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let ranges: Vec<_> = std::iter::once(first).chain(rx.try_iter()).collect();
                    // Deleted records may still sit in memtables, and the
                    // write-ahead log files holding them stay until every
                    // column family (the small ones too) has flushed them:
                    // without writes coming, nothing else would.
                    if let Err(e) = super::flush_all(&db) {
                        tracing::warn!(error = %e, "could not flush after retention; the space comes back with the next flush");
                    }
                    for (from, to) in ranges {
                        // Whole files inside the range go at once; the
                        // rest is rewritten without the deleted keys.
                        if let Err(e) = db.delete_file_in_range(&from, &to) {
                            tracing::warn!(error = %e, "could not delete files of a range retention deleted; compaction will");
                        }
                        db.compact_range(Some(&from), Some(&to));
                    }
                }
            })
            .ok();
        if thread.is_none() {
            tracing::warn!("no thread for compactions: deleted records' space comes back with RocksDB's own compactions");
        }
        Compactor {
            tx: thread.as_ref().map(|_| tx),
            thread,
        }
    }

    fn compact(&self, from: Vec<u8>, to: Vec<u8>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send((from, to));
        }
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl RocksStorage {
    fn sizes_cf(&self) -> Result<&rocksdb::ColumnFamily, StorageError> {
        self.db
            .cf_handle(SIZES_CF)
            .ok_or_else(|| StorageError::Corrupt("no sizes column family".into()))
    }

    /// Adds a run's size entry to `batch` and counts its bytes in `meta`.
    pub(super) fn size_run(
        &self,
        topic: &str,
        partition: &NodeId,
        first: u64,
        len: usize,
        meta: &mut PartMeta,
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        let k = size_key(topic, partition, first);
        batch.put_cf(self.sizes_cf()?, k, meta.total.to_be_bytes());
        meta.total = meta.total.saturating_add(len as u64);
        Ok(())
    }

    /// Deletes, in every partition, what `rules` expire at `now_ms` (ms
    /// since the Unix epoch). Returns the partitions whose log start moved.
    pub(super) fn enforce(
        &mut self,
        rules: &Retention,
        now_ms: u64,
    ) -> Result<Vec<StoredHead>, StorageError> {
        let mut moved = Vec::new();
        let parts: Vec<((String, NodeId), PartMeta)> =
            self.meta.iter().map(|(k, m)| (k.clone(), *m)).collect();
        for ((topic, partition), meta) in parts {
            let (ms, bytes) = rules.for_topic(&topic);
            let mut cut = meta.log_start;
            if ms > 0 {
                let cutoff = now_ms.saturating_sub(ms);
                if let Some(c) = self.age_cut(&topic, &partition, cutoff, meta.head)? {
                    cut = cut.max(c);
                }
            }
            if bytes > 0 && meta.bytes() > bytes {
                let keep_from = meta.total - bytes;
                cut = cut.max(self.size_cut(&topic, &partition, meta.log_start, keep_from)?);
            }
            // The last run stays: a partition always keeps its head.
            cut = cut.min(self.run_start(&topic, &partition, meta.head)?);
            if cut > meta.log_start {
                let m = self.delete_below(&topic, &partition, meta, cut)?;
                moved.push(m.stored_head(&topic, partition));
            }
        }
        Ok(moved)
    }

    /// Where age retention cuts: the run where the partition's records
    /// first reach `cutoff`, or its last run when none does. `None` when
    /// no record has a timestamp (its age is unknown: nothing goes).
    fn age_cut(
        &self,
        topic: &str,
        partition: &NodeId,
        cutoff: u64,
        head: u64,
    ) -> Result<Option<u64>, StorageError> {
        if self.highest(topic, partition, &Default::default())? == 0 {
            return Ok(None);
        }
        match self.time_run(topic, partition, cutoff)? {
            Some(run) => Ok(Some(run)),
            None => self.run_start(topic, partition, head).map(Some),
        }
    }

    /// Where size retention cuts: the highest run start with at most
    /// `keep_from` bytes stored before it, so what stays is at least the
    /// limit and less than the limit plus one run.
    fn size_cut(
        &self,
        topic: &str,
        partition: &NodeId,
        log_start: u64,
        keep_from: u64,
    ) -> Result<u64, StorageError> {
        let start = prefix(SIZE, topic, partition);
        let from = size_key(topic, partition, log_start);
        let mode = IteratorMode::From(&from, Direction::Forward);
        let mut cut = log_start;
        for item in self.db.iterator_cf(self.sizes_cf()?, mode) {
            let (k, v) = item.map_err(io("read"))?;
            if !k.starts_with(&start) {
                break;
            }
            let before = u64_at_end(&v).ok_or_else(bad_size_entry)?;
            if before > keep_from {
                break;
            }
            cut = u64_at_end(&k).ok_or_else(bad_size_entry)?;
        }
        Ok(cut)
    }

    /// The first offset of the run holding `offset`.
    fn run_start(&self, topic: &str, partition: &NodeId, offset: u64) -> Result<u64, StorageError> {
        let range = prefix(super::RECORD, topic, partition);
        let mut it = self.db.raw_iterator();
        it.seek_for_prev(record_key(topic, partition, offset));
        let start = it
            .key()
            .filter(|k| k.starts_with(&range))
            .and_then(u64_at_end);
        it.status().map_err(io("read"))?;
        Ok(start.unwrap_or(0))
    }

    /// Deletes every record below `cut` and the index entries that only
    /// they need, in one batch, and has the space given back.
    fn delete_below(
        &mut self,
        topic: &str,
        partition: &NodeId,
        meta: PartMeta,
        cut: u64,
    ) -> Result<PartMeta, StorageError> {
        let mut batch = WriteBatch::default();
        let (from, to) = (
            record_key(topic, partition, 0),
            record_key(topic, partition, cut),
        );
        batch.delete_range(&from, &to);
        let sizes = self.sizes_cf()?;
        let start_bytes = match self.db.get_cf(sizes, size_key(topic, partition, cut)) {
            Ok(Some(v)) => u64_at_end(&v).ok_or_else(bad_size_entry)?,
            Ok(None) => meta.start_bytes, // a run stored before the index
            Err(e) => return Err(io("read")(e)),
        };
        batch.delete_range_cf(
            sizes,
            size_key(topic, partition, 0),
            size_key(topic, partition, cut),
        );
        self.drop_time_entries_below(topic, partition, cut, &mut batch)?;
        let m = PartMeta {
            log_start: cut,
            start_bytes: start_bytes.max(meta.start_bytes),
            ..meta
        };
        let heads = self.heads_cf()?;
        batch.put_cf(heads, prefix(super::HEAD, topic, partition), m.encode());
        self.write_batch(batch)?;
        self.meta.insert((topic.to_string(), *partition), m);
        tracing::info!(%topic, %partition, from = meta.log_start, to = cut - 1, bytes = m.start_bytes - meta.start_bytes, "retention deleted records");
        self.compactor.compact(from, to);
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::{ReadLimit, Retention, Storage, SyncPolicy, WalRecovery};
    use crate::RocksStorage;
    use bytes::Bytes;
    use dafka_proto::{NodeId, Record};

    const P: NodeId = NodeId([1; 16]);

    fn rec(offset: u64, ts: i64) -> Record {
        Record {
            topic: "t".into(),
            partition: P,
            offset,
            timestamp_ms: Some(ts),
            content: Bytes::from(vec![b'x'; 1000]),
            ..Default::default()
        }
    }

    fn open(dir: &std::path::Path) -> RocksStorage {
        RocksStorage::open(dir, SyncPolicy::Always, WalRecovery::PointInTime).expect("open")
    }

    fn first_held(s: &RocksStorage) -> u64 {
        s.read("t", &P, 0, ReadLimit::records(1)).expect("read")[0].offset
    }

    /// Ten batches of ten 1000-byte records (each batch one run), record
    /// `o` stamped `o` seconds.
    fn filled(dir: &std::path::Path) -> RocksStorage {
        let mut s = open(dir);
        for b in 0..10 {
            let batch: Vec<Record> = (b * 10..b * 10 + 10)
                .map(|o| rec(o, o as i64 * 1000))
                .collect();
            s.write(&batch).expect("write");
        }
        s
    }

    #[test]
    fn a_size_limit_cuts_whole_runs_from_the_start_and_the_cut_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = filled(dir.path());
        let before = s.heads().expect("heads")[0].bytes;
        assert!(before > 100_000, "{before}");
        let rules = Retention {
            bytes: 35_000,
            ..Retention::default()
        };
        let moved = s.retain(&rules, 0).expect("retain");
        // Keeping at least 35,000 bytes of 10-record runs of ~10 KB each
        // means the last four runs: offsets 60 on.
        assert_eq!(moved.len(), 1);
        assert_eq!((moved[0].log_start, moved[0].offset), (60, 99));
        assert!(
            (35_000..46_000).contains(&moved[0].bytes),
            "{}",
            moved[0].bytes
        );
        assert_eq!(first_held(&s), 60);
        // Nothing more to do until more is written.
        assert!(s.retain(&rules, 0).expect("retain").is_empty());
        drop(s);
        let s = open(dir.path());
        let h = &s.heads().expect("heads")[0];
        assert_eq!((h.log_start, h.offset), (60, 99));
        assert_eq!(first_held(&s), 60);
        // A time before the log start is found at the log start.
        assert_eq!(s.offsets_at("t", 1).expect("at")[0].offset, 60);
        assert_eq!(s.offsets_at("t", 75_000).expect("at")[0].offset, 75);
    }

    #[test]
    fn an_age_limit_cuts_at_the_run_reaching_the_cutoff_and_keeps_the_last_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = filled(dir.path());
        let rules = Retention {
            ms: 10_000,
            ..Retention::default()
        };
        // At 55 s the cutoff is 45 s: record 45's run starts at 40.
        let moved = s.retain(&rules, 55_000).expect("retain");
        assert_eq!(moved[0].log_start, 40);
        assert_eq!(first_held(&s), 40);
        // Much later everything is old, but the last run stays.
        let moved = s.retain(&rules, 10_000_000).expect("retain");
        assert_eq!(moved[0].log_start, 90);
        assert_eq!(first_held(&s), 90);
        // Writing goes on from the head.
        s.write(&[rec(100, 100_000)]).expect("write");
        assert_eq!(s.heads().expect("heads")[0].offset, 100);
    }

    #[test]
    fn a_topic_without_limits_keeps_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = filled(dir.path());
        let rules = Retention {
            bytes: 1,
            topics: vec![("t".into(), 0, 0)],
            ..Retention::default()
        };
        assert!(s.retain(&rules, u64::MAX).expect("retain").is_empty());
        assert_eq!(first_held(&s), 0);
    }
}
