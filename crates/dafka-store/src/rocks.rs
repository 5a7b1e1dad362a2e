//! [`Storage`] on RocksDB.
//!
//! Keys are built so that byte order is offset order, and one partition's
//! records are one contiguous key range:
//!
//! ```text
//! records: 'r' [topic length: u8][topic][partition: 16 bytes][offset: u64 BE]
//! head:    'h' [topic length: u8][topic][partition: 16 bytes]  -> offset: u64 BE
//! ```
//!
//! A record key holds a run of consecutive records starting at its offset
//! (`dafka_proto::stored`): 100-byte records cost RocksDB one key per run,
//! not one per record. A read seeks to the last key at or before the offset
//! wanted and skips what comes before it. (Older stores wrote one record per
//! key; those read the same way.)
//!
//! Named consumers' positions live in a third family (`positions`, see
//! [`positions`]), the time index in a fourth (`times`, see [`times`]). Heads live in their own column family (`heads`): they are rewritten by
//! every batch, and in the record family they would make every flushed file
//! overlap every other, so RocksDB would rewrite all records in compactions.
//! Alone, each partition's record keys only grow, and files move down the
//! levels without being rewritten. (Stores written before this kept heads in
//! the default family; those are still read.)
//!
//! The store's id lives in the database (key `id` of the default family),
//! made once when the database is created: a restarted store is the same
//! store to the producers counting distinct ACKs, never a new one.
//!
//! Opening refuses a directory that holds files but no database (no
//! `CURRENT`): RocksDB would create a new, empty database there and delete
//! the old table files. Recovery of the write-ahead log follows
//! [`WalRecovery`]; whatever it drops is logged at error level.
//!
//! A batch of records and the new heads go in one `WriteBatch`, so a crash
//! never leaves a head pointing past what is stored. With `fsync = always`
//! the write-ahead log is synced before `write` returns, so an ACKed record
//! survives power loss (a write of a megabyte or more of records goes as
//! synced table files instead, written once rather than twice: see
//! [`ingest`]); with `interval`, a write syncs the log only when the
//! last sync is older than the interval; with `never`, an ACKed record
//! survives a process crash only.

use crate::storage::{
    ReadLimit, Retention, Storage, StorageError, StoredHead, SyncPolicy, WalRecovery,
};
use dafka_proto::stored::{records_from_bytes, run_to_bytes};
use dafka_proto::{NodeId, Position, Record};
use dafka_protocol::run::{extends, size};
use retention::{Compactor, PartMeta};
use rocksdb::{DBRecoveryMode, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const RECORD: u8 = b'r';
const HEAD: u8 = b'h';
const HEADS_CF: &str = "heads";
const POSITIONS_CF: &str = "positions";
const TIMES_CF: &str = "times";
const SIZES_CF: &str = "sizes";

mod ingest;
mod positions;
mod retention;
mod times;
/// Records are written once and read in order: a larger write buffer means
/// fewer, bigger flushes; 32 MiB (two of them) keeps the store's memory well
/// under 300 MB with 64 KiB records.
pub const DEFAULT_WRITE_BUFFER: usize = 32 << 20;

/// Table files held open at once; the others are opened when read.
const MAX_OPEN_FILES: i32 = 1000;

/// The key of the store's id (sorts after every head key of old stores).
const ID_KEY: &[u8] = b"id";

/// A RocksDB database holding every partition a store keeps.
pub struct RocksStorage {
    db: Arc<DB>,
    /// What recovery dropped when the database was opened (RocksDB's own
    /// words), empty when nothing was.
    dropped: Vec<String>,
    sync: SyncPolicy,
    last_sync: Instant,
    /// Whether a write has not been synced yet.
    dirty: bool,
    /// Partitions' highest timestamps, for the time index.
    highest: times::Highest,
    /// What each partition holds (its head value), loaded at open.
    meta: HashMap<(String, NodeId), PartMeta>,
    /// Gives back the space of what retention deleted.
    compactor: Compactor,
    /// Writes large synced batches' records as table files.
    ingest: ingest::Ingest,
}

/// Writes every column family's memtable to a table file, so that no
/// write-ahead log file is needed any more.
pub(crate) fn flush_all(db: &DB) -> Result<(), StorageError> {
    db.flush().map_err(io("flush"))?;
    for cf in [HEADS_CF, POSITIONS_CF, TIMES_CF, SIZES_CF] {
        if let Some(cf) = db.cf_handle(cf) {
            db.flush_cf(cf).map_err(io("flush"))?;
        }
    }
    Ok(())
}

/// Reads a partition's records from offset `from`, within `limit`: what
/// [`Storage::read`] does, for the reader's thread too.
pub(crate) fn read_records(
    db: &DB,
    topic: &str,
    partition: &NodeId,
    from: u64,
    limit: ReadLimit,
) -> Result<Vec<Record>, StorageError> {
    let start = record_key(topic, partition, from);
    let range = prefix(RECORD, topic, partition);
    let in_range = |it: &rocksdb::DBRawIterator| it.key().is_some_and(|k| k.starts_with(&range));
    let mut it = db.raw_iterator();
    // The run holding `from` starts at or before it.
    it.seek_for_prev(&start);
    if !in_range(&it) {
        it.seek(&start);
    }
    // A read that fails part-way returns what came before the damage:
    // the asker fetches on from there, and that read reports the error.
    let partial = |out: Vec<Record>, e: StorageError| if out.is_empty() { Err(e) } else { Ok(out) };
    let (mut out, mut run, mut bytes, mut want) = (Vec::new(), Vec::new(), 0, from);
    while limit.more(out.len(), bytes) && in_range(&it) {
        run.clear();
        if let Err(e) = records_from_bytes(it.value().unwrap_or_default(), &mut run) {
            return partial(out, StorageError::Corrupt(e.to_string()));
        }
        for r in run.drain(..) {
            // Skip what precedes `from` (or, were runs ever to overlap,
            // what was already taken).
            if r.offset < want || !limit.more(out.len(), bytes) {
                continue;
            }
            want = r.offset.saturating_add(1);
            bytes += size(&r);
            out.push(r);
        }
        it.next();
    }
    match it.status() {
        Ok(()) => Ok(out),
        Err(e) => partial(out, io("read")(e)),
    }
}

impl RocksStorage {
    /// The database, for threads that read beside the writer.
    pub(crate) fn db(&self) -> Arc<DB> {
        self.db.clone()
    }

    /// Opens the database in `dir`, creating it only if `dir` is missing or
    /// empty, syncing writes as `sync` says and recovering as `recovery`
    /// says.
    pub fn open(dir: &Path, sync: SyncPolicy, recovery: WalRecovery) -> Result<Self, StorageError> {
        Self::open_with(dir, sync, recovery, DEFAULT_WRITE_BUFFER)
    }

    /// [`RocksStorage::open`] with memtables of `write_buffer` bytes
    /// (`store.write_buffer`).
    pub fn open_with(
        dir: &Path,
        sync: SyncPolicy,
        recovery: WalRecovery,
        write_buffer: usize,
    ) -> Result<Self, StorageError> {
        let open_err = |reason: String| StorageError::Open {
            path: dir.display().to_string(),
            reason,
        };
        let exists = check_dir(dir).map_err(open_err)?;
        let mut opts = Options::default();
        opts.create_if_missing(!exists);
        opts.set_wal_recovery_mode(match recovery {
            WalRecovery::PointInTime => DBRecoveryMode::PointInTime,
            WalRecovery::Refuse => DBRecoveryMode::AbsoluteConsistency,
        });
        opts.set_write_buffer_size(write_buffer);
        // Small families (heads, indexes, positions) rarely fill a
        // memtable, and a write-ahead log file lives until every family
        // with data in it is flushed: without a bound the log would grow
        // to four times all memtables together. Past this size the oldest
        // log's families are flushed.
        opts.set_max_total_wal_size(2 * write_buffer as u64);
        opts.increase_parallelism(2);
        opts.create_missing_column_families(true);
        // RocksDB keeps every table file open by default; a long-lived
        // store collects thousands (large writes land as files of their
        // own, see `ingest`), more than a process's descriptor limit.
        opts.set_max_open_files(MAX_OPEN_FILES);
        let db = DB::open_cf(&opts, dir, ["default", HEADS_CF, POSITIONS_CF, TIMES_CF, SIZES_CF]).map_err(|e| {
            let hint = match recovery {
                WalRecovery::Refuse => " (store.wal_recovery = \"refuse\": the write-ahead log is damaged or incomplete; restore the database, or open it once with wal_recovery = \"point-in-time\" to keep what precedes the damage)",
                WalRecovery::PointInTime => "",
            };
            open_err(format!("{}{hint}", rocks_error(e.as_ref())))
        })?;
        let ingest = ingest::Ingest::new(dir, &opts);
        let dropped = recovery_drops(dir);
        for line in &dropped {
            tracing::error!(db = %dir.display(), rocksdb = %line, "recovery dropped part of the write-ahead log: records written there are gone (under fsync = always, ACKed ones only if the log was damaged)");
        }
        let db = Arc::new(db);
        let mut s = RocksStorage {
            compactor: Compactor::start(db.clone()),
            db,
            dropped,
            sync,
            last_sync: Instant::now(),
            dirty: false,
            highest: times::Highest::default(),
            meta: HashMap::new(),
            ingest,
        };
        s.meta = s.load_meta()?;
        Ok(s)
    }

    /// What write-ahead log recovery dropped when the database was opened.
    pub fn recovery_dropped(&self) -> &[String] {
        &self.dropped
    }

    /// Writes what the memtables hold to table files: a store stopping
    /// cleanly leaves nothing for the next start to replay from its
    /// write-ahead log (a faster restart).
    pub fn flush(&self) -> Result<(), StorageError> {
        flush_all(&self.db)
    }

    /// The store's id, made by `new` and kept in the database the first
    /// time, so that a restarted store keeps it. With `reset`, a new id
    /// replaces the kept one (a deliberately copied database).
    pub fn store_id(
        &self,
        new: impl FnOnce() -> NodeId,
        reset: bool,
    ) -> Result<NodeId, StorageError> {
        if !reset {
            let kept = self.db.get(ID_KEY).map_err(io("read"))?;
            if let Some(v) = kept {
                return NodeId::from_slice(&v)
                    .ok_or_else(|| StorageError::Corrupt("bad store id".into()));
            }
        }
        let id = new();
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db
            .put_opt(ID_KEY, id.as_bytes(), &wo)
            .map_err(io("write"))?;
        Ok(id)
    }
}

/// Whether `dir` holds a database. A directory with files but no `CURRENT`
/// is refused: RocksDB would start a new database over them and delete the
/// table files of the old one.
fn check_dir(dir: &Path) -> Result<bool, String> {
    let mut entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(dir_error(&e)),
    };
    if dir.join("CURRENT").exists() {
        return Ok(true);
    }
    if entries.next().is_none() {
        return Ok(false);
    }
    Err("the directory holds files but no RocksDB database (no CURRENT file); refusing to create a new database over them: restore the database, or give --db an empty or new directory".into())
}

/// What cannot be read as a directory, in words with what to do.
fn dir_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        // ENOTDIR: a path component (the --db itself) is a file.
        Some(20) => {
            "it is a file, not a directory: give --db a directory (new or empty for a new store)"
                .into()
        }
        _ if e.kind() == std::io::ErrorKind::PermissionDenied => {
            "permission denied: the store needs to read and write it".into()
        }
        _ => e.to_string(),
    }
}

/// RocksDB's open errors, said for an operator. Its lock error means the
/// database is in use: by another store, most likely.
fn rocks_error(text: &str) -> String {
    if text.contains("lock") && text.contains("LOCK") {
        return "another store is using it (its LOCK file is held): stop that store, or give --db another directory".into();
    }
    text.strip_prefix("IO error: ").unwrap_or(text).to_string()
}

/// RocksDB's own lines about log bytes dropped by the recovery that just
/// ran: its info log (`LOG`) is started afresh at every open.
fn recovery_drops(dir: &Path) -> Vec<String> {
    let Ok(log) = std::fs::read_to_string(dir.join("LOG")) else {
        return Vec::new();
    };
    log.lines()
        .filter(|l| l.contains("dropping") && l.contains("bytes"))
        .map(|l| {
            // Keep what follows the source location: "file: dropping N bytes; why".
            let text = l.rsplit_once("] ").map_or(l, |(_, t)| t);
            text.trim().to_string()
        })
        .collect()
}

fn prefix(kind: u8, topic: &str, partition: &NodeId) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + topic.len() + 16 + 8);
    k.push(kind);
    // Topics are at most 249 bytes (dafka_proto::limits), so a u8 fits.
    k.push(topic.len() as u8);
    k.extend_from_slice(topic.as_bytes());
    k.extend_from_slice(partition.as_bytes());
    k
}

fn record_key(topic: &str, partition: &NodeId, offset: u64) -> Vec<u8> {
    let mut k = prefix(RECORD, topic, partition);
    k.extend_from_slice(&offset.to_be_bytes());
    k
}

/// The part of a [`record_key`] its partition's keys share.
fn record_key_partition(key: &[u8]) -> &[u8] {
    &key[..key.len().saturating_sub(std::mem::size_of::<u64>())]
}

/// `records` cut into runs to store under one key each, by the same rule
/// as runs on the wire ([`dafka_protocol::run::extends`]).
fn runs(records: &[Record]) -> Vec<&[Record]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        if i > start && !extends(&records[start..i], bytes, r) {
            out.push(&records[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size(r);
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

/// About what a `WriteBatch` of `count` records takes: a little per record
/// for the run's header and index entries, and `content`, the bytes of the
/// records it carries (none when they go as a table file).
fn batch_estimate(count: usize, content: usize) -> usize {
    const PER_RECORD: usize = 48;
    const PER_BATCH: usize = 4096;
    content + count * PER_RECORD + PER_BATCH
}

/// Parses a head key back into (topic, partition).
fn parse_head_key(k: &[u8]) -> Option<(String, NodeId)> {
    let len = *k.get(1)? as usize;
    let topic = std::str::from_utf8(k.get(2..2 + len)?).ok()?.to_string();
    let partition = NodeId::from_slice(k.get(2 + len..)?)?;
    Some((topic, partition))
}

fn io(op: &'static str) -> impl Fn(rocksdb::Error) -> StorageError {
    move |e| StorageError::Io {
        op,
        source: Box::new(e),
    }
}

impl RocksStorage {
    /// Writes `batch`, syncing the write-ahead log as the policy says.
    fn write_batch(&mut self, batch: WriteBatch) -> Result<(), StorageError> {
        let sync = match self.sync {
            SyncPolicy::Always => true,
            SyncPolicy::Every(d) => self.last_sync.elapsed() >= d,
            SyncPolicy::Never => false,
        };
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(batch, &wo).map_err(io("write"))?;
        self.dirty = !sync;
        if sync {
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    fn heads_cf(&self) -> Result<&rocksdb::ColumnFamily, StorageError> {
        self.db
            .cf_handle(HEADS_CF)
            .ok_or_else(|| StorageError::Corrupt("no heads column family".into()))
    }

    /// Heads from one column family, merged into `out` (highest head
    /// wins).
    fn heads_in(
        &self,
        iter: impl Iterator<Item = Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>>,
        out: &mut HashMap<(String, NodeId), PartMeta>,
    ) -> Result<(), StorageError> {
        for item in iter {
            let (k, v) = item.map_err(io("read"))?;
            if k.first() != Some(&HEAD) {
                break;
            }
            let (topic, partition) =
                parse_head_key(&k).ok_or_else(|| StorageError::Corrupt("bad head key".into()))?;
            let meta = PartMeta::decode(&v)
                .ok_or_else(|| StorageError::Corrupt("bad head value".into()))?;
            let h = out.entry((topic, partition)).or_insert(meta);
            if meta.head > h.head {
                *h = meta;
            }
        }
        Ok(())
    }

    /// Every partition's head value, from the heads family and the default
    /// family of older stores.
    fn load_meta(&self) -> Result<HashMap<(String, NodeId), PartMeta>, StorageError> {
        let mut found = HashMap::new();
        let from = IteratorMode::From(&[HEAD], Direction::Forward);
        self.heads_in(self.db.iterator_cf(self.heads_cf()?, from), &mut found)?;
        let from = IteratorMode::From(&[HEAD], Direction::Forward);
        self.heads_in(self.db.iterator(from), &mut found)?;
        Ok(found)
    }
}

impl Storage for RocksStorage {
    fn heads(&self) -> Result<Vec<StoredHead>, StorageError> {
        Ok(self
            .meta
            .iter()
            .map(|((topic, partition), m)| m.stored_head(topic, *partition))
            .collect())
    }

    fn write(&mut self, records: &[Record]) -> Result<(), StorageError> {
        let content: usize = records.iter().map(size).sum();
        let as_file = self.sync == SyncPolicy::Always && content >= ingest::INGEST_MIN;
        // Reserved whole: grown by doubling, a batch of megabytes is
        // copied again at each step, into fresh pages each time.
        let mut batch = WriteBatch::with_capacity_bytes(batch_estimate(
            records.len(),
            if as_file { 0 } else { content },
        ));
        let mut metas: HashMap<(String, NodeId), PartMeta> = HashMap::new();
        let mut value = Vec::new();
        let mut highest = times::Highest::new();
        let mut keyed: Vec<(Vec<u8>, &[Record])> = runs(records)
            .into_iter()
            .filter_map(|run| {
                let first = run.first()?;
                Some((
                    record_key(&first.topic, &first.partition, first.offset),
                    run,
                ))
            })
            .collect();
        // A table file takes its keys in order; stable, so of two runs
        // under one key the later stays last, and wins as in a batch.
        if as_file {
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let mut files = self.ingest.files();
        for (i, (key, run)) in keyed.iter().enumerate() {
            let (Some(first), Some(last)) = (run.first(), run.last()) else {
                continue;
            };
            self.index_run(run, &mut batch, &mut highest)?;
            value.clear();
            run_to_bytes(run, &mut value);
            let part = (first.topic.to_string(), first.partition);
            let meta = match metas.entry(part) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let kept = self.meta.get(e.key()).copied().unwrap_or_default();
                    e.insert(kept)
                }
            };
            let (topic, partition) = (&first.topic, &first.partition);
            self.size_run(
                topic,
                partition,
                first.offset,
                value.len(),
                meta,
                &mut batch,
            )?;
            meta.head = meta.head.max(last.offset);
            if !as_file {
                batch.put(key, &value);
            } else if keyed.get(i + 1).is_none_or(|next| next.0 != *key) {
                files.put(key, &value)?;
            }
        }
        let cf = self.heads_cf()?;
        for ((topic, partition), meta) in &metas {
            batch.put_cf(cf, prefix(HEAD, topic, partition), meta.encode());
        }
        // Records before the heads that point at them (see `ingest`).
        files.adopt(&self.db)?;
        self.write_batch(batch)?;
        self.highest.extend(highest);
        self.meta.extend(metas);
        Ok(())
    }

    fn retain(&mut self, rules: &Retention, now_ms: u64) -> Result<Vec<StoredHead>, StorageError> {
        self.enforce(rules, now_ms)
    }

    fn offsets_at(&self, topic: &str, time_ms: u64) -> Result<Vec<Position>, StorageError> {
        let mut out = Vec::new();
        for h in self.heads()?.into_iter().filter(|h| h.topic == topic) {
            let offset = self.offset_at(topic, &h.partition, h.offset, time_ms)?;
            out.push(Position {
                topic: h.topic,
                partition: h.partition,
                offset,
            });
        }
        Ok(out)
    }

    fn commit(&mut self, name: &str, positions: &[Position]) -> Result<(), StorageError> {
        let batch = self.positions_batch(name, positions)?;
        self.write_batch(batch)
    }

    fn positions(&self, name: &str, topic: &str) -> Result<Vec<Position>, StorageError> {
        self.read_positions(name, topic)
    }

    fn sync_due(&mut self) -> Result<(), StorageError> {
        let SyncPolicy::Every(d) = self.sync else {
            return Ok(());
        };
        if self.dirty && self.last_sync.elapsed() >= d {
            self.db.flush_wal(true).map_err(io("sync"))?;
            self.dirty = false;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    fn read(
        &self,
        topic: &str,
        partition: &NodeId,
        from: u64,
        limit: ReadLimit,
    ) -> Result<Vec<Record>, StorageError> {
        read_records(&self.db, topic, partition, from, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    fn rec(topic: &str, p: u8, offset: u64) -> Record {
        Record {
            topic: topic.into(),
            partition: NodeId([p; 16]),
            offset,
            content: Bytes::from(format!("{topic}-{p}-{offset}")),
            ..Default::default()
        }
    }

    #[test]
    fn stores_reads_in_offset_order_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s =
                RocksStorage::open(dir.path(), SyncPolicy::Always, WalRecovery::PointInTime)
                    .expect("open");
            // 256 and 255 differ in byte order vs. little-endian: pin BE.
            let batch: Vec<Record> = (250..260).map(|o| rec("a", 1, o)).collect();
            s.write(&batch).expect("write");
            s.write(&[rec("ab", 1, 0), rec("a", 2, 0)]).expect("write");
        }
        let s = RocksStorage::open(dir.path(), SyncPolicy::Always, WalRecovery::PointInTime)
            .expect("reopen");
        let got = s
            .read("a", &NodeId([1; 16]), 254, ReadLimit::records(100))
            .expect("read");
        let offs: Vec<u64> = got.iter().map(|r| r.offset).collect();
        assert_eq!(
            offs,
            [254, 255, 256, 257, 258, 259],
            "stays inside the partition"
        );
        assert_eq!(got[0], rec("a", 1, 254));
        let mut heads = s.heads().expect("heads");
        heads.sort_by(|x, y| (&x.topic, x.partition).cmp(&(&y.topic, y.partition)));
        let h: Vec<(String, u64)> = heads.into_iter().map(|h| (h.topic, h.offset)).collect();
        assert_eq!(h, [("a".into(), 259), ("a".into(), 0), ("ab".into(), 0)]);
    }

    #[test]
    fn runs_take_one_key_each_and_read_from_any_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = RocksStorage::open(dir.path(), SyncPolicy::Always, WalRecovery::PointInTime)
            .expect("open");
        let p = NodeId([1; 16]);
        // Offsets 0..3 one per key, as stores before runs wrote them.
        for o in 0..3 {
            let v = dafka_proto::stored::record_to_bytes(&rec("a", 1, o));
            s.db.put(record_key("a", &p, o), v).expect("put");
        }
        let batch: Vec<Record> = (3..3000).map(|o| rec("a", 1, o)).collect();
        s.write(&batch).expect("write");
        let keys = s.db.iterator(IteratorMode::Start).count();
        assert_eq!(keys, 3 + 3, "3 old keys, then runs of at most 1024");
        for from in [0, 2, 3, 4, 1026, 1027, 2996, 2999] {
            let got = s.read("a", &p, from, ReadLimit::records(5)).expect("read");
            let offs: Vec<u64> = got.iter().map(|r| r.offset).collect();
            let want: Vec<u64> = (from..(from + 5).min(3000)).collect();
            assert_eq!(offs, want, "from {from}");
            assert_eq!(got[0], rec("a", 1, from));
        }
        assert!(s
            .read("a", &p, 3000, ReadLimit::records(5))
            .expect("read")
            .is_empty());
        let one_byte = ReadLimit {
            records: 100,
            bytes: 1,
        };
        assert_eq!(
            s.read("a", &p, 10, one_byte).expect("read").len(),
            1,
            "stops mid-run"
        );
    }

    #[test]
    fn a_large_synced_write_lands_as_bottom_level_files_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = |p: u8, o: u64| Record {
            content: Bytes::from(vec![p; 64 << 10]),
            ..rec("a", p, o)
        };
        let (p1, p2) = (NodeId([1; 16]), NodeId([2; 16]));
        {
            let mut s = open(dir.path(), WalRecovery::PointInTime).expect("open");
            s.write(&[rec("a", 1, 0), rec("a", 2, 0), rec("b", 1, 0)])
                .expect("small write, through the log");
            // Two partitions interleaved, 2.5 MiB: a table file each.
            let batch: Vec<Record> = (1..21).flat_map(|o| [big(1, o), big(2, o)]).collect();
            s.write(&batch).expect("large write");
            let levels: Vec<i32> =
                s.db.live_files()
                    .expect("files")
                    .iter()
                    .map(|f| f.level)
                    .collect();
            assert_eq!(
                levels,
                [6, 6],
                "adopted at the bottom, nothing flushed or compacted"
            );
            let left: Vec<String> = std::fs::read_dir(dir.path())
                .expect("dir")
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect();
            assert!(left.is_empty(), "build files moved in: {left:?}");
            s.write(&[rec("a", 1, 21)]).expect("small write after");
        }
        let s = open(dir.path(), WalRecovery::PointInTime).expect("reopen");
        let got = s.read("a", &p1, 0, ReadLimit::records(100)).expect("read");
        let offs: Vec<u64> = got.iter().map(|r| r.offset).collect();
        assert_eq!(offs, (0..22).collect::<Vec<u64>>());
        assert_eq!(got[5], big(1, 5));
        assert_eq!(got[21], rec("a", 1, 21));
        let got = s.read("a", &p2, 0, ReadLimit::records(100)).expect("read");
        assert_eq!(got.len(), 21);
        assert_eq!(got[20], big(2, 20));
        let mut heads: Vec<(String, NodeId, u64)> = s
            .heads()
            .expect("heads")
            .into_iter()
            .map(|h| (h.topic, h.partition, h.offset))
            .collect();
        heads.sort();
        assert_eq!(
            heads,
            [
                ("a".into(), p1, 21),
                ("a".into(), p2, 20),
                ("b".into(), p1, 0)
            ]
        );
    }

    /// A crash after a write's table file was adopted and before its heads
    /// were: the records are there, the head is not, so the producer sends
    /// them again. The second file overlaps the first; each record reads
    /// back once, the later copy winning, and the head is right.
    #[test]
    fn records_sent_again_over_an_adopted_file_read_back_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = NodeId([1; 16]);
        let big = |o: u64, fill: u8| Record {
            content: Bytes::from(vec![fill; 64 << 10]),
            ..rec("a", 1, o)
        };
        let first: Vec<Record> = (0..20).map(|o| big(o, 1)).collect();
        {
            let s = open(dir.path(), WalRecovery::PointInTime).expect("open");
            let mut files = s.ingest.files();
            for run in runs(&first) {
                let mut value = Vec::new();
                run_to_bytes(run, &mut value);
                files
                    .put(&record_key("a", &p, run[0].offset), &value)
                    .expect("put");
            }
            files.adopt(&s.db).expect("records only, as if then killed");
        }
        let mut s = open(dir.path(), WalRecovery::PointInTime).expect("reopen");
        assert!(
            s.heads().expect("heads").is_empty(),
            "no head past what was written"
        );
        let again: Vec<Record> = (0..20).map(|o| big(o, 2)).collect();
        s.write(&again).expect("sent again");
        let got = s.read("a", &p, 0, ReadLimit::records(100)).expect("read");
        assert_eq!(got, again);
        let heads = s.heads().expect("heads");
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].offset, 19);
    }

    #[test]
    fn a_run_ends_at_a_gap_another_partition_or_its_byte_limit() {
        let big = |o| Record {
            content: Bytes::from(vec![0; dafka_protocol::tuning::RUN_BYTES / 2 + 1]),
            ..rec("a", 1, o)
        };
        let records = [
            rec("a", 1, 0),
            rec("a", 1, 1),
            rec("a", 2, 2),
            rec("a", 2, 4),
            big(5),
            big(6),
        ];
        let lens: Vec<usize> = runs(&records).iter().map(|r| r.len()).collect();
        assert_eq!(lens, [2, 1, 1, 1, 1]);
    }

    #[test]
    fn interval_sync_waits_for_the_interval_then_catches_up_without_a_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hour = SyncPolicy::Every(Duration::from_secs(3600));
        let mut s = RocksStorage::open(dir.path(), hour, WalRecovery::PointInTime).expect("open");
        s.write(&[rec("a", 1, 0)]).expect("write");
        assert!(s.dirty, "inside the interval: the write is not synced");
        s.sync_due().expect("sync");
        assert!(s.dirty, "still inside the interval");
        s.sync = SyncPolicy::Every(Duration::ZERO);
        s.sync_due().expect("sync");
        assert!(!s.dirty, "once due, the timer syncs with no write");
        s.write(&[rec("a", 1, 1)]).expect("write");
        assert!(!s.dirty, "a write that finds the sync due syncs itself");
    }

    #[test]
    fn an_unusable_directory_is_a_clear_error() {
        let f = tempfile::NamedTempFile::new().expect("tempfile");
        let err = RocksStorage::open(f.path(), SyncPolicy::Always, WalRecovery::PointInTime)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("cannot open store database at"), "{err}");
        assert!(err.ends_with(": it is a file, not a directory: give --db a directory (new or empty for a new store)"), "{err}");
    }

    #[test]
    fn a_directory_in_use_names_the_other_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = open(dir.path(), WalRecovery::PointInTime).expect("open");
        let err = open_error(dir.path(), WalRecovery::PointInTime);
        assert!(err.ends_with(": another store is using it (its LOCK file is held): stop that store, or give --db another directory"), "{err}");
    }

    fn open(dir: &Path, recovery: WalRecovery) -> Result<RocksStorage, StorageError> {
        RocksStorage::open(dir, SyncPolicy::Always, recovery)
    }

    /// Why opening fails ("" if it does not).
    fn open_error(dir: &Path, recovery: WalRecovery) -> String {
        open(dir, recovery)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    /// The files in `dir` whose extension is `ext` (`sst`: table files,
    /// `log`: write-ahead logs).
    fn files(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .expect("ls")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect()
    }

    #[test]
    fn the_store_id_is_kept_across_restarts_and_reset_on_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = open(dir.path(), WalRecovery::PointInTime)
            .expect("open")
            .store_id(|| NodeId([1; 16]), false)
            .expect("id");
        let s = open(dir.path(), WalRecovery::PointInTime).expect("reopen");
        assert_eq!(s.store_id(|| NodeId([2; 16]), false).expect("id"), first);
        assert_eq!(
            s.store_id(|| NodeId([3; 16]), true).expect("id"),
            NodeId([3; 16])
        );
        assert!(s.heads().expect("heads").is_empty(), "the id is not a head");
    }

    #[test]
    fn a_directory_with_table_files_but_no_database_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s = open(dir.path(), WalRecovery::PointInTime).expect("open");
            s.write(&[rec("a", 1, 0)]).expect("write");
            s.db.flush().expect("flush");
        }
        std::fs::remove_file(dir.path().join("CURRENT")).expect("rm CURRENT");
        let before = std::fs::read_dir(dir.path()).expect("ls").count();
        let err = open_error(dir.path(), WalRecovery::PointInTime);
        assert!(err.contains("no CURRENT"), "{err}");
        let sst = files(dir.path(), "sst").len();
        assert_eq!(sst, 1, "the table file is still there");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), before);
        // An empty directory is fine.
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(open(empty.path(), WalRecovery::PointInTime).is_ok());
    }

    /// A database whose records are only in the write-ahead log, which is
    /// then cut short, as damage would.
    fn truncated_wal() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s = open(dir.path(), WalRecovery::PointInTime).expect("open");
            for o in 0..30 {
                s.write(&[rec("a", 1, o)]).expect("write");
            }
        }
        let wal = files(dir.path(), "log").pop().expect("a write-ahead log");
        let len = std::fs::metadata(&wal).expect("stat").len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&wal)
            .expect("wal");
        f.set_len(len / 2 + 3).expect("truncate");
        dir
    }

    #[test]
    fn a_truncated_write_ahead_log_is_reported_or_refused() {
        let dir = truncated_wal();
        let err = open_error(dir.path(), WalRecovery::Refuse);
        assert!(err.contains("wal_recovery"), "{err}");
        let s = open(dir.path(), WalRecovery::PointInTime).expect("point in time");
        let dropped = s.recovery_dropped();
        assert!(
            dropped.iter().any(|l| l.contains("dropping")),
            "{dropped:?}"
        );
        let held = s.heads().expect("heads")[0].offset;
        assert!(held < 29, "recovery kept offsets up to {held} only");
    }

    #[test]
    fn a_damaged_table_file_fails_the_read_after_what_precedes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = |o| Record {
            content: Bytes::from(vec![b'x'; 60_000]),
            ..rec("a", 1, o)
        };
        {
            let mut s = open(dir.path(), WalRecovery::PointInTime).expect("open");
            for o in 0..40 {
                s.write(&[big(o)]).expect("write");
            }
            s.db.flush().expect("flush");
        }
        let sst = files(dir.path(), "sst").pop().expect("a table file");
        let mut data = std::fs::read(&sst).expect("read sst");
        let at = data.len() / 2;
        data[at..at + 64].iter_mut().for_each(|b| *b ^= 0xff);
        std::fs::write(&sst, data).expect("write sst");
        let s = open(dir.path(), WalRecovery::PointInTime).expect("open");
        let p = NodeId([1; 16]);
        let first = s
            .read("a", &p, 0, ReadLimit::records(100))
            .expect("the records before the damage");
        let n = first.len() as u64;
        assert!(n > 0 && n < 40, "{n} records before the damage");
        let err = s.read("a", &p, n, ReadLimit::records(100));
        assert!(
            err.is_err(),
            "the damaged block is an error, not an empty answer"
        );
    }
}
