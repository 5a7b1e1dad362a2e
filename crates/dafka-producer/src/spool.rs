//! A producer's local spool: every record it accepted, on disk, until stores
//! have ACKed it, so a producer that crashes and restarts with the same state
//! directory continues its own partition and loses nothing it accepted.
//!
//! The state directory holds:
//!
//! ```text
//! partition          "<uuid> <topic>\n": which partition this directory owns
//! acked              u64 LE: every offset below it was ACKed (may lag)
//! spool-<offset>     segments of records, named by their first offset:
//!                    [offset: u64 LE][length: u32 LE][payload] ...
//! ```
//!
//! A payload is the content alone (what spools written before records had
//! keys, headers and timestamps hold), or, when the length's top bit is set,
//! `[meta length: u32 LE][NextRecord protobuf: key, headers, timestamp]
//! [content]` in the other 31 bits' worth of bytes.
//!
//! A record is appended before `publish` returns (one `write`: a killed
//! process loses nothing). Whether it also survives a power cut is
//! [`SpoolSync`]'s: by default nothing is synced. Segments roll at
//! [`SEGMENT_BYTES`]; a segment is deleted once every record in it is ACKed.
//! A torn record at the end of the last segment (a crash mid-write) was never
//! accepted and is cut off on the next start.
//!
//! The spool never goes backwards: the next offset is the highest of the
//! records found + 1, the first offset of the newest segment (a roll creates
//! the new, empty segment before deleting the old ones) and the `acked` mark.
//! A producer that resumed at a lower offset would send new records under
//! offsets the stores already hold.

use crate::record::ProducerRecord;
use bytes::Bytes;
use dafka_proto::{pb, NodeId};
use prost::Message as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;

/// When spooled records reach the disk, and so whether a record accepted by
/// `publish` survives a power cut (it always survives a crash).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpoolSync {
    /// Never wait for the disk.
    Never,
    /// Every record is synced before `publish` returns.
    Always,
    /// Records are synced at most this long after `publish` returns.
    Every(Duration),
}

/// Segment size at which the spool starts a new file.
pub const SEGMENT_BYTES: u64 = 16 << 20;
const RECORD_HEADER: usize = 12;
/// The length's top bit: the payload carries a key, headers or timestamp.
/// Payloads stay far below it (64 MiB of content, 512 KiB of the rest).
const WITH_META: u32 = 1 << 31;

/// Why the state directory cannot be used.
#[derive(Debug, Error)]
pub enum SpoolError {
    /// A file operation failed.
    #[error("producer state directory {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// The directory belongs to another producer.
    #[error("producer state directory {path} belongs to {found}, not {wanted}")]
    Mismatch {
        /// The directory.
        path: String,
        /// What it holds.
        found: String,
        /// What was asked for.
        wanted: String,
    },
    /// Another process has the directory open.
    #[error("producer state directory {0} is in use by another producer")]
    Locked(String),
}

/// What a restarted producer picks up.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The next offset to hand out.
    pub next_offset: u64,
    /// Records not known to be ACKed, in offset order.
    pub records: Vec<(u64, ProducerRecord)>,
    /// Whether the directory holds the partition's history (it has numbered
    /// records before). If not, and the partition is not new, the producer
    /// must learn where the partition stands from the stores.
    pub owns_history: bool,
    /// Whether the partition id was made up just now (a new partition).
    pub new_partition: bool,
}

/// An open spool.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Held open for its lock: one producer per directory.
    _lock: File,
    /// First offsets of the segments on disk, oldest first.
    segments: Vec<u64>,
    current: File,
    current_len: u64,
    buf: Vec<u8>,
    sync: SpoolSync,
    last_sync: Instant,
    /// Whether appends wait for a sync.
    dirty: bool,
}

fn err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Spool {
    /// Opens (or creates) the state directory of the producer of `topic`
    /// named `id`, or, with no `id`, whichever partition the directory
    /// already owns (a new one if it owns none). Returns the partition id and
    /// what to resume.
    pub fn open(
        dir: &Path,
        topic: &str,
        id: Option<NodeId>,
        new_id: impl FnOnce() -> NodeId,
        sync: SpoolSync,
    ) -> Result<(Spool, NodeId, Recovered), SpoolError> {
        fs::create_dir_all(dir).map_err(err(dir))?;
        let lock_path = dir.join("lock");
        let lock = File::create(&lock_path).map_err(err(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(SpoolError::Locked(dir.display().to_string()));
        }
        let (id, new_partition) = claim(dir, topic, id, new_id)?;
        let segments = list_segments(dir)?;
        let acked = read_acked(dir);
        let mut rec = Recovered {
            new_partition,
            ..Recovered::default()
        };
        for &first in &segments {
            read_segment(&segment_path(dir, first), acked.unwrap_or(0), &mut rec)?;
        }
        // Never below what the directory has numbered before, even when the
        // records that prove it are gone (ACKed and deleted, or a crash
        // right after a roll left only an empty newest segment).
        let newest = segments.last().copied().unwrap_or(0);
        rec.next_offset = rec.next_offset.max(newest).max(acked.unwrap_or(0));
        rec.owns_history = rec.next_offset > 0 || acked.is_some();
        let start = segments.last().copied().unwrap_or(rec.next_offset);
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            _lock: lock,
            segments,
            current: open_segment(dir, start)?,
            current_len: 0,
            buf: Vec::new(),
            sync,
            last_sync: Instant::now(),
            dirty: false,
        };
        if spool.segments.is_empty() {
            spool.segments.push(start);
        }
        spool.current_len = spool
            .current
            .metadata()
            .map_err(err(&segment_path(dir, start)))?
            .len();
        Ok((spool, id, rec))
    }

    /// Appends one record. `acked` (every offset below it is ACKed) lets a
    /// roll delete the segments nobody needs any more.
    pub fn append(
        &mut self,
        offset: u64,
        record: &ProducerRecord,
        acked: u64,
    ) -> Result<(), SpoolError> {
        if self.current_len >= SEGMENT_BYTES {
            self.roll(offset, acked)?;
        }
        self.buf.clear();
        encode_record(offset, record, &mut self.buf);
        let path = self.current_path();
        self.current.write_all(&self.buf).map_err(err(&path))?;
        self.current_len += self.buf.len() as u64;
        self.dirty = true;
        match self.sync {
            SpoolSync::Never => Ok(()),
            SpoolSync::Always => self.sync_now(),
            SpoolSync::Every(d) if self.last_sync.elapsed() >= d => self.sync_now(),
            SpoolSync::Every(_) => Ok(()),
        }
    }

    /// Syncs appended records if the `interval` policy has a sync due (a
    /// timer calls this when no append came to do it).
    pub fn sync_due(&mut self) -> Result<(), SpoolError> {
        match self.sync {
            SpoolSync::Every(d) if self.dirty && self.last_sync.elapsed() >= d => self.sync_now(),
            _ => Ok(()),
        }
    }

    fn sync_now(&mut self) -> Result<(), SpoolError> {
        let path = self.current_path();
        self.current.sync_data().map_err(err(&path))?;
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Whether the policy asks for anything to be synced at all.
    fn syncs(&self) -> bool {
        self.sync != SpoolSync::Never
    }

    fn current_path(&self) -> PathBuf {
        segment_path(&self.dir, self.segments.last().copied().unwrap_or(0))
    }

    /// Starts a new segment at `first`. The new file exists (and, under a
    /// sync policy, its name is on disk) before any old segment is deleted,
    /// so a crash in between never leaves a spool that restarts lower.
    fn roll(&mut self, first: u64, acked: u64) -> Result<(), SpoolError> {
        if self.syncs() {
            self.sync_now()?;
        }
        self.current = open_segment(&self.dir, first)?;
        self.current_len = 0;
        self.segments.push(first);
        if self.syncs() {
            sync_dir(&self.dir)?;
        }
        self.forget(acked)
    }

    /// Numbers the next record `next`: the partition's history is elsewhere
    /// (the stores told a producer taking it over where it stands). Recorded
    /// as an empty segment named `next`, so a restart continues from there.
    pub fn begin_at(&mut self, next: u64) -> Result<(), SpoolError> {
        let newest = self.segments.last().copied().unwrap_or(0);
        if next <= newest || self.current_len > 0 {
            return Ok(());
        }
        self.roll(next, next)
    }

    /// Records that every offset below `acked` is ACKed, and deletes the
    /// segments that hold nothing else.
    pub fn forget(&mut self, acked: u64) -> Result<(), SpoolError> {
        write_acked(&self.dir, acked, self.syncs())?;
        // Segment i is done when the next one starts at or below `acked`.
        while self.segments.len() > 1 && self.segments[1] <= acked {
            let old = self.segments.remove(0);
            let path = segment_path(&self.dir, old);
            fs::remove_file(&path).map_err(err(&path))?;
        }
        Ok(())
    }
}

/// The partition this directory is for, and whether it was made up now.
fn claim(
    dir: &Path,
    topic: &str,
    id: Option<NodeId>,
    new_id: impl FnOnce() -> NodeId,
) -> Result<(NodeId, bool), SpoolError> {
    let path = dir.join("partition");
    let found = match fs::read_to_string(&path) {
        Ok(s) => Some(s.trim().to_string()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(err(&path)(e)),
    };
    let known = match (&found, id) {
        (_, Some(id)) => Some(id),
        (Some(f), None) => parse_claim(f).map(|(id, _)| id),
        (None, None) => None,
    };
    let fresh = known.is_none();
    let wanted_id = known.unwrap_or_else(new_id);
    let wanted = format!("{wanted_id} {topic}");
    match found {
        Some(f) if f != wanted => Err(SpoolError::Mismatch {
            path: dir.display().to_string(),
            found: f,
            wanted,
        }),
        Some(_) => Ok((wanted_id, fresh)),
        None => {
            fs::write(&path, format!("{wanted}\n")).map_err(err(&path))?;
            Ok((wanted_id, fresh))
        }
    }
}

fn parse_claim(s: &str) -> Option<(NodeId, &str)> {
    let (id, topic) = s.split_once(' ')?;
    let uuid = uuid::Uuid::parse_str(id).ok()?;
    Some((NodeId(*uuid.as_bytes()), topic))
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("spool-{first:020}"))
}

fn open_segment(dir: &Path, first: u64) -> Result<File, SpoolError> {
    let path = segment_path(dir, first);
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(err(&path))
}

fn list_segments(dir: &Path) -> Result<Vec<u64>, SpoolError> {
    let mut out: Vec<u64> = fs::read_dir(dir)
        .map_err(err(dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            name.to_str()?.strip_prefix("spool-")?.parse().ok()
        })
        .collect();
    out.sort_unstable();
    Ok(out)
}

fn read_acked(dir: &Path) -> Option<u64> {
    // A missing or torn file only means more records are offered again.
    fs::read(dir.join("acked"))
        .ok()
        .and_then(|b| b.get(..8).and_then(|b| b.try_into().ok()))
        .map(u64::from_le_bytes)
}

/// Replaces the `acked` mark whole (a new file renamed over the old), so a
/// crash leaves the old mark or the new one, never a torn one.
fn write_acked(dir: &Path, acked: u64, sync: bool) -> Result<(), SpoolError> {
    let (tmp, path) = (dir.join("acked.new"), dir.join("acked"));
    let mut f = File::create(&tmp).map_err(err(&tmp))?;
    f.write_all(&acked.to_le_bytes()).map_err(err(&tmp))?;
    if sync {
        f.sync_data().map_err(err(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(err(&path))?;
    if sync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes the directory's entries (new, renamed and deleted files) durable.
fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(err(dir))
}

/// Reads one segment into `rec`, cutting off a torn record at its end.
fn read_segment(path: &Path, acked: u64, rec: &mut Recovered) -> Result<(), SpoolError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(err(path))?;
    let mut at = 0;
    while let Some((offset, payload, next)) = parse_record(&data, at) {
        if offset >= acked {
            rec.records.push((offset, payload));
        }
        rec.next_offset = rec.next_offset.max(offset + 1);
        at = next;
    }
    if at < data.len() {
        tracing::warn!(path = %path.display(), bytes = data.len() - at, "cutting off a torn record");
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(err(path))?;
        f.set_len(at as u64).map_err(err(path))?;
    }
    Ok(())
}

/// Appends one spooled record to `out`.
fn encode_record(offset: u64, r: &ProducerRecord, out: &mut Vec<u8>) {
    let meta = pb::NextRecord {
        length: r.content.len() as u32,
        key: r.key.clone(),
        headers: r
            .headers
            .iter()
            .map(|(name, value)| pb::Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        timestamp_ms: r.timestamp_ms,
        timestamp_delta_ms: None,
    };
    let meta_len = meta.encoded_len();
    // Checked by `ProducerRecord::check`: 64 MiB of content and 512 KiB of
    // key and headers leave the top bit free.
    let len = (4 + meta_len + r.content.len()) as u32;
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&(len | WITH_META).to_le_bytes());
    out.extend_from_slice(&(meta_len as u32).to_le_bytes());
    // Cannot fail: a Vec grows.
    let _ = meta.encode(out);
    out.extend_from_slice(&r.content);
}

/// The record at `at`, and where the next starts; `None` at the end or at a
/// torn (or unreadable) record.
fn parse_record(data: &[u8], at: usize) -> Option<(u64, ProducerRecord, usize)> {
    let head = data.get(at..at + RECORD_HEADER)?;
    let offset = u64::from_le_bytes(head[..8].try_into().ok()?);
    let len = u32::from_le_bytes(head[8..].try_into().ok()?);
    let start = at + RECORD_HEADER;
    let end = start + (len & !WITH_META) as usize;
    let payload = data.get(start..end)?;
    let record = if len & WITH_META == 0 {
        ProducerRecord::new(payload)
    } else {
        parse_payload(payload)?
    };
    Some((offset, record, end))
}

/// `[meta length][NextRecord][content]`.
fn parse_payload(payload: &[u8]) -> Option<ProducerRecord> {
    let meta_len = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?) as usize;
    let meta = pb::NextRecord::decode(payload.get(4..4 + meta_len)?).ok()?;
    let content = payload.get(4 + meta_len..)?;
    Some(ProducerRecord {
        key: meta.key,
        headers: meta
            .headers
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect(),
        timestamp_ms: meta.timestamp_ms,
        content: Bytes::copy_from_slice(content),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_SYNC: SpoolSync = SpoolSync::Never;

    fn id(n: u8) -> NodeId {
        NodeId([n; 16])
    }

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("dafka-spool-{}", uuid::Uuid::new_v4()));
        d
    }

    /// Keys, headers and timestamps survive a restart, and a spool written
    /// before records had them (content alone) still reads.
    #[test]
    fn records_come_back_whole_and_old_spools_still_read() {
        let d = dir();
        let (s, _, _) = Spool::open(&d, "t", None, || id(1), NO_SYNC).expect("open");
        drop(s);
        // Offset 0 as older producers wrote it: [offset][length][content].
        let mut old = Vec::new();
        old.extend_from_slice(&0u64.to_le_bytes());
        old.extend_from_slice(&3u32.to_le_bytes());
        old.extend_from_slice(b"old");
        fs::write(segment_path(&d, 0), &old).expect("write");
        let (mut s, _, rec) = Spool::open(&d, "t", None, || id(2), NO_SYNC).expect("reopen");
        assert_eq!(rec.records, vec![(0, ProducerRecord::new("old"))]);
        let full = ProducerRecord::new(vec![0u8, 0xFF])
            .key(vec![0xC3u8])
            .header("a", "1")
            .header("a", vec![0u8])
            .timestamp_ms(-5);
        s.append(1, &full, 0).expect("append");
        s.append(2, &ProducerRecord::new(""), 0).expect("append");
        drop(s);
        let (_s, _, rec) = Spool::open(&d, "t", None, || id(2), NO_SYNC).expect("reopen");
        let want = vec![
            (0, ProducerRecord::new("old")),
            (1, full),
            (2, ProducerRecord::new("")),
        ];
        assert_eq!(rec.records, want);
        assert_eq!(rec.next_offset, 3);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_reopened_spool_resumes_after_the_last_record() {
        let d = dir();
        let (mut s, pid, rec) = Spool::open(&d, "t", None, || id(1), NO_SYNC).expect("open");
        assert_eq!((pid, rec.next_offset, rec.records.len()), (id(1), 0, 0));
        for o in 0..5 {
            s.append(o, &ProducerRecord::new(format!("r{o}").as_bytes()), 0)
                .expect("append");
        }
        s.forget(3).expect("forget");
        drop(s);
        let (_s, pid, rec) = Spool::open(&d, "t", None, || id(2), NO_SYNC).expect("reopen");
        assert_eq!(pid, id(1), "the directory keeps its partition");
        assert_eq!(rec.next_offset, 5);
        let offs: Vec<u64> = rec.records.iter().map(|r| r.0).collect();
        assert_eq!(offs, [3, 4], "ACKed records are not offered again");
        assert_eq!(&rec.records[0].1.content[..], b"r3");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_tail_is_cut_off() {
        let d = dir();
        let (mut s, _, _) = Spool::open(&d, "t", None, || id(1), NO_SYNC).expect("open");
        s.append(0, &ProducerRecord::new(b"whole"), 0)
            .expect("append");
        drop(s);
        let seg = segment_path(&d, 0);
        let mut f = OpenOptions::new().append(true).open(&seg).expect("seg");
        f.write_all(&[1, 0, 0, 0, 0, 0, 0, 0, 9, 0]).expect("torn");
        drop(f);
        let (mut s, _, rec) = Spool::open(&d, "t", None, || id(1), NO_SYNC).expect("reopen");
        assert_eq!(rec.next_offset, 1);
        s.append(1, &ProducerRecord::new(b"next"), 0)
            .expect("append");
        drop(s);
        let (_s, _, rec) = Spool::open(&d, "t", None, || id(1), NO_SYNC).expect("reopen");
        let offs: Vec<u64> = rec.records.iter().map(|r| r.0).collect();
        assert_eq!(offs, [0, 1]);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn acked_segments_are_deleted_on_roll() {
        let d = dir();
        let (mut s, _, _) = Spool::open(&d, "t", None, || id(1), NO_SYNC).expect("open");
        let big = vec![7u8; (SEGMENT_BYTES / 2) as usize];
        for o in 0..5 {
            s.append(o, &ProducerRecord::new(&big), o).expect("append");
        }
        assert!(list_segments(&d).expect("list").len() <= 2);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_directory_of_another_topic_or_id_is_refused() {
        let d = dir();
        drop(Spool::open(&d, "t", Some(id(1)), || id(1), NO_SYNC).expect("open"));
        let e = Spool::open(&d, "u", None, || id(1), NO_SYNC).expect_err("topic");
        assert!(e.to_string().contains("belongs to"), "{e}");
        let e = Spool::open(&d, "t", Some(id(2)), || id(2), NO_SYNC).expect_err("id");
        assert!(e.to_string().contains("belongs to"), "{e}");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn two_producers_cannot_share_a_directory() {
        let d = dir();
        let _a = Spool::open(&d, "t", None, || id(1), NO_SYNC).expect("open");
        let e = Spool::open(&d, "t", None, || id(1), NO_SYNC).expect_err("locked");
        assert!(matches!(e, SpoolError::Locked(_)), "{e}");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_crash_right_after_a_roll_does_not_restart_the_partition_at_zero() {
        // What a SIGKILL just after a roll leaves: the old segments deleted
        // (every record ACKed), the `acked` mark, and an empty new segment.
        let d = dir();
        let (mut s, _, _) = Spool::open(&d, "t", None, || id(1), NO_SYNC).expect("open");
        for o in 0..3 {
            s.append(o, &ProducerRecord::new(b"r"), 0).expect("append");
        }
        s.roll(3, 3).expect("roll");
        drop(s);
        assert_eq!(
            list_segments(&d).expect("list"),
            [3],
            "only the new segment is left"
        );
        let (_s, _, rec) = Spool::open(&d, "t", None, || id(1), NO_SYNC).expect("reopen");
        assert_eq!(rec.next_offset, 3, "continues after what it numbered");
        assert!(rec.records.is_empty());
        assert!(rec.owns_history);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn the_acked_mark_alone_keeps_the_next_offset() {
        let d = dir();
        drop(Spool::open(&d, "t", None, || id(1), NO_SYNC).expect("open"));
        for f in list_segments(&d).expect("list") {
            fs::remove_file(segment_path(&d, f)).expect("rm");
        }
        write_acked(&d, 7, false).expect("acked");
        let (_s, _, rec) = Spool::open(&d, "t", None, || id(1), NO_SYNC).expect("reopen");
        assert_eq!(rec.next_offset, 7);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_partition_taken_over_begins_where_the_stores_are_and_restarts_there() {
        let d = dir();
        let (mut s, pid, rec) = Spool::open(&d, "t", Some(id(4)), || id(9), NO_SYNC).expect("open");
        assert_eq!(pid, id(4));
        assert!(
            !rec.owns_history && !rec.new_partition,
            "must ask the stores"
        );
        s.begin_at(100).expect("begin");
        drop(s);
        let (mut s, _, rec) = Spool::open(&d, "t", None, || id(9), NO_SYNC).expect("reopen");
        assert_eq!(rec.next_offset, 100, "a restart needs no stores");
        assert!(rec.owns_history);
        s.append(100, &ProducerRecord::new(b"x"), 100)
            .expect("append");
        drop(s);
        let (_s, _, rec) = Spool::open(&d, "t", None, || id(9), NO_SYNC).expect("reopen");
        assert_eq!((rec.next_offset, rec.records.len()), (101, 1));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_new_partition_needs_nobody_and_syncing_policies_append() {
        for sync in [SpoolSync::Always, SpoolSync::Every(Duration::ZERO)] {
            let d = dir();
            let (mut s, _, rec) = Spool::open(&d, "t", None, || id(1), sync).expect("open");
            assert!(rec.new_partition && !rec.owns_history);
            s.append(0, &ProducerRecord::new(b"a"), 0).expect("append");
            assert!(!s.dirty, "{sync:?}: synced before append returns");
            s.roll(1, 1).expect("roll");
            drop(s);
            let (_s, _, rec) = Spool::open(&d, "t", None, || id(2), sync).expect("reopen");
            assert_eq!(rec.next_offset, 1);
            let _ = fs::remove_dir_all(&d);
        }
    }
}
