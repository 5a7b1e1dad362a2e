//! Where a store keeps its partitions: a small trait, RocksDB behind it,
//! and an in-memory twin for unit tests of the store's logic.
//!
//! What a storage error does to the store: a failed write is not ACKed, and
//! the partitions in it are rewound to their last stored offset so the
//! records are fetched again; a failed read answers the FETCH with nothing
//! (the asker retries). A store never ACKs what `write` did not confirm.

use dafka_proto::{NodeId, Position, Record};
use std::collections::BTreeMap;
use std::time::Duration;
use thiserror::Error;

/// A storage operation that failed.
#[derive(Debug, Error)]
pub enum StorageError {
    /// The database could not be opened (missing permissions, a file where
    /// a directory should be, a corrupt or locked database).
    #[error("cannot open store database at {path}: {reason}")]
    Open {
        /// The directory.
        path: String,
        /// The database's explanation.
        reason: String,
    },
    /// A read or write failed.
    #[error("store database {op} failed: {source}")]
    Io {
        /// "write", "read" or "sync".
        op: &'static str,
        /// The database's error, kept whole (a `rocksdb::Error` from
        /// [`crate::RocksStorage`]).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored value does not decode: the database is damaged.
    #[error("corrupt stored record: {0}")]
    Corrupt(String),
}

/// The offsets one partition holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredHead {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: NodeId,
    /// Its highest stored offset.
    pub offset: u64,
    /// Its lowest offset still held: retention deleted what is below.
    pub log_start: u64,
    /// Bytes held (records from the log start on, as stored).
    pub bytes: u64,
}

/// How long records are kept: by age (their timestamps) and by size (per
/// partition), with limits per topic. 0 means no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Milliseconds a record is kept after its timestamp (the highest
    /// timestamp so far in its partition, as the time index counts it).
    pub ms: u64,
    /// Bytes a partition keeps; the oldest runs go beyond that.
    pub bytes: u64,
    /// Topics with their own limits: (topic, ms, bytes).
    pub topics: Vec<(String, u64, u64)>,
}

impl Retention {
    /// The (ms, bytes) limits of `topic`.
    pub fn for_topic(&self, topic: &str) -> (u64, u64) {
        self.topics
            .iter()
            .find(|(t, _, _)| t == topic)
            .map_or((self.ms, self.bytes), |&(_, ms, bytes)| (ms, bytes))
    }

    /// Whether any limit is set.
    pub fn is_set(&self) -> bool {
        self.ms > 0 || self.bytes > 0 || self.topics.iter().any(|t| t.1 > 0 || t.2 > 0)
    }
}

/// What opening does with a write-ahead log that ends in a damaged or
/// incomplete record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WalRecovery {
    /// Keep everything up to the damage, drop the rest, and log at error
    /// level what was dropped. A crash mid-write leaves such a tail; those
    /// records were never ACKed under `fsync = always`.
    #[default]
    PointInTime,
    /// Refuse to open: an operator decides (restore, or start with
    /// point-in-time recovery knowingly).
    Refuse,
}
/// When writes wait for the write-ahead log to reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every write.
    Always,
    /// A write when the last sync is older than this.
    Every(Duration),
    /// Never (the operating system writes back when it likes).
    Never,
}

/// Durable partitions.
pub trait Storage {
    /// Every partition held, with its head. Called once, at start-up.
    fn heads(&self) -> Result<Vec<StoredHead>, StorageError>;
    /// Appends records atomically: all or none. Callers pass each
    /// partition's records in offset order, contiguous with what is stored.
    /// Returns only once the records are as durable as the store's fsync
    /// policy promises.
    fn write(&mut self, records: &[Record]) -> Result<(), StorageError>;
    /// Makes earlier writes durable if the fsync policy has one due (the
    /// `interval` policy when no write came to do it). Called on a timer.
    fn sync_due(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    /// Records of a partition from offset `from`, in order, within `limit`.
    fn read(
        &self,
        topic: &str,
        partition: &NodeId,
        from: u64,
        limit: ReadLimit,
    ) -> Result<Vec<Record>, StorageError>;
    /// Keeps consumer `name`'s positions: per partition the highest ever
    /// committed (a lower one changes nothing). As durable as records when
    /// it returns.
    fn commit(&mut self, name: &str, positions: &[Position]) -> Result<(), StorageError>;
    /// Every position kept for consumer `name` in `topic`.
    fn positions(&self, name: &str, topic: &str) -> Result<Vec<Position>, StorageError>;
    /// Where `time_ms` falls in each partition of `topic`: the first offset
    /// whose timestamp, or that of any record before it, is at or after
    /// `time_ms` (timestamps are the producers' clocks and may step back;
    /// Kafka's rule); the head + 1 where no record is that late. Records
    /// without a timestamp count as older than any time but 0.
    fn offsets_at(&self, topic: &str, time_ms: u64) -> Result<Vec<Position>, StorageError>;
    /// Deletes what `rules` expire at `now_ms` (ms since the Unix epoch),
    /// in whole runs from each partition's start, never its last record,
    /// and gives the space back. Returns the partitions whose log start
    /// moved.
    fn retain(&mut self, rules: &Retention, now_ms: u64) -> Result<Vec<StoredHead>, StorageError>;
}

/// A record's timestamp as the time index counts it: none and negative
/// ones are 0.
pub fn index_time(r: &Record) -> u64 {
    r.timestamp_ms.map_or(0, |t| u64::try_from(t).unwrap_or(0))
}

/// How much one read may return: at most `records` records, and more only
/// while fewer than `bytes` content bytes are taken (always at least one),
/// so a FETCH of many large records never loads them all at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimit {
    /// Most records.
    pub records: usize,
    /// Content bytes after which no further record is taken.
    pub bytes: usize,
}

impl ReadLimit {
    /// At most `records` records, whatever their size.
    pub fn records(records: usize) -> Self {
        ReadLimit {
            records,
            bytes: usize::MAX,
        }
    }

    /// Whether a read that has taken `n` records of `bytes` content bytes
    /// may take another.
    pub fn more(&self, n: usize, bytes: usize) -> bool {
        n < self.records && (n == 0 || bytes < self.bytes)
    }

    /// Takes records from `records`, in order, while the limit allows; no
    /// record past the limit is read.
    pub fn collect(
        &self,
        mut records: impl Iterator<Item = Result<Record, StorageError>>,
    ) -> Result<Vec<Record>, StorageError> {
        let mut out: Vec<Record> = Vec::new();
        let mut bytes = 0;
        while self.more(out.len(), bytes) {
            let Some(r) = records.next() else { break };
            let r = r?;
            bytes += r.content.len();
            out.push(r);
        }
        Ok(out)
    }
}

impl MemStorage {
    fn log_start(&self, topic: &str, partition: NodeId) -> u64 {
        self.starts
            .get(&(topic.to_string(), partition))
            .copied()
            .unwrap_or(0)
    }
}

/// Storage in a `BTreeMap`: for tests of the store's logic only.
#[derive(Debug, Default)]
pub struct MemStorage {
    records: BTreeMap<(String, NodeId, u64), Record>,
    positions: BTreeMap<(String, String, NodeId), u64>,
    /// Log starts moved by retention.
    starts: BTreeMap<(String, NodeId), u64>,
    /// When set, the next write fails (to test the store's reaction).
    pub fail_next_write: bool,
    /// When set, reads fail (a damaged database).
    pub fail_reads: bool,
}

impl Storage for MemStorage {
    fn heads(&self) -> Result<Vec<StoredHead>, StorageError> {
        let mut heads: BTreeMap<(String, NodeId), (u64, u64)> = BTreeMap::new();
        for ((t, p, o), r) in &self.records {
            let h = heads.entry((t.clone(), *p)).or_default();
            *h = (*o, h.1 + r.content.len() as u64);
        }
        Ok(heads
            .into_iter()
            .map(|((topic, partition), (offset, bytes))| StoredHead {
                log_start: self
                    .starts
                    .get(&(topic.clone(), partition))
                    .copied()
                    .unwrap_or(0),
                topic,
                partition,
                offset,
                bytes,
            })
            .collect())
    }

    fn retain(&mut self, rules: &Retention, now_ms: u64) -> Result<Vec<StoredHead>, StorageError> {
        // Record by record (no runs here): the reference for the logic
        // that uses it, not for the RocksDB cuts.
        let mut moved = Vec::new();
        for h in self.heads()? {
            let (ms, bytes) = rules.for_topic(&h.topic);
            let records: Vec<&Record> = self
                .records
                .range((h.topic.clone(), h.partition, 0)..=(h.topic.clone(), h.partition, h.offset))
                .map(|(_, r)| r)
                .collect();
            let (mut max, mut left) = (0, h.bytes);
            let mut cut = h.log_start;
            for r in &records[..records.len().saturating_sub(1)] {
                max = max.max(index_time(r));
                let old = ms > 0 && max < now_ms.saturating_sub(ms);
                let big = bytes > 0 && left > bytes;
                if !(old || big) {
                    break;
                }
                left -= r.content.len() as u64;
                cut = r.offset + 1;
            }
            if cut > h.log_start {
                self.records
                    .retain(|(t, p, o), _| !(*t == h.topic && *p == h.partition && *o < cut));
                self.starts.insert((h.topic.clone(), h.partition), cut);
                moved.push(StoredHead {
                    log_start: cut,
                    bytes: left,
                    ..h
                });
            }
        }
        Ok(moved)
    }

    fn write(&mut self, records: &[Record]) -> Result<(), StorageError> {
        if std::mem::take(&mut self.fail_next_write) {
            return Err(StorageError::Io {
                op: "write",
                source: "injected failure".into(),
            });
        }
        for r in records {
            self.records
                .insert((r.topic.to_string(), r.partition, r.offset), r.clone());
        }
        Ok(())
    }

    fn commit(&mut self, name: &str, positions: &[Position]) -> Result<(), StorageError> {
        if std::mem::take(&mut self.fail_next_write) {
            return Err(StorageError::Io {
                op: "write",
                source: "injected failure".into(),
            });
        }
        for p in positions {
            let key = (name.to_string(), p.topic.clone(), p.partition);
            let kept = self.positions.entry(key).or_insert(p.offset);
            *kept = (*kept).max(p.offset);
        }
        Ok(())
    }

    fn positions(&self, name: &str, topic: &str) -> Result<Vec<Position>, StorageError> {
        Ok(self
            .positions
            .iter()
            .filter(|((n, t, _), _)| n == name && t == topic)
            .map(|((_, t, partition), offset)| Position {
                topic: t.clone(),
                partition: *partition,
                offset: *offset,
            })
            .collect())
    }

    fn offsets_at(&self, topic: &str, time_ms: u64) -> Result<Vec<Position>, StorageError> {
        // A scan: the reference the RocksDB index is tested against.
        let mut found: BTreeMap<NodeId, (u64, Option<u64>)> = BTreeMap::new();
        for ((t, partition, offset), r) in &self.records {
            if t != topic {
                continue;
            }
            let (max, at) = found.entry(*partition).or_insert((0, None));
            *max = (*max).max(index_time(r));
            if at.is_none() && *max >= time_ms {
                *at = Some(*offset);
            }
        }
        let heads = self.heads()?;
        Ok(found
            .into_iter()
            .map(|(partition, (_, at))| {
                let head = heads
                    .iter()
                    .find(|h| h.topic == topic && h.partition == partition)
                    .map_or(0, |h| h.offset);
                let at = at.map(|o| o.max(self.log_start(topic, partition)));
                Position {
                    topic: topic.to_string(),
                    partition,
                    offset: at.unwrap_or(head + 1),
                }
            })
            .collect())
    }

    fn read(
        &self,
        topic: &str,
        partition: &NodeId,
        from: u64,
        limit: ReadLimit,
    ) -> Result<Vec<Record>, StorageError> {
        if self.fail_reads {
            return Err(StorageError::Corrupt("injected failure".into()));
        }
        let lo = (topic.to_string(), *partition, from);
        let hi = (topic.to_string(), *partition, u64::MAX);
        limit.collect(self.records.range(lo..=hi).map(|(_, r)| Ok(r.clone())))
    }
}
