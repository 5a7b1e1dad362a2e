//! The store's database, on a thread of its own.
//!
//! A write with `fsync = "always"` waits for the disk. Were that wait on the
//! driver thread, nothing would be read from the sockets meanwhile: the
//! next batch would queue in ZeroMQ (and past its high-water mark, drop)
//! instead of gathering in the store. Here the driver reads on while the
//! writer writes and syncs, and the writer answers each piece of work, in
//! order, through a channel and a wake-up. FETCH reads it hands to a
//! [`Reader`] thread, which answers them beside the writes.

use crate::config::StoreConfig;
use crate::handle::Observed;
use crate::reader::Reader;
use crate::rocks::RocksStorage;
use crate::storage::{Storage, StorageError};
use crate::work::{execute, failed, StoreDone, StoreWork};
use crossbeam_channel::{Receiver, Sender};
use dafka_transport::Waker;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How often a database whose writes failed is reopened: RocksDB refuses
/// every write after one failed (a full disk, a read-only file system)
/// until it is reopened, and the store must resume by itself once the
/// cause is gone.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// Why work fails while the database is closed to be reopened.
pub(crate) const REOPENING: &str = "the database is closed to be reopened after write errors";

/// How often the partitions seen from outside are refreshed.
const OBSERVE_EVERY: Duration = Duration::from_secs(1);

/// The database and what keeps it usable: reopening after write errors,
/// and what others may see of it.
pub(crate) struct Writer {
    /// None while the database is closed to be reopened.
    storage: Option<RocksStorage>,
    cfg: StoreConfig,
    /// When the database is next reopened, while writes fail with an I/O
    /// error.
    broken: Option<Instant>,
    seen: Arc<Observed>,
    next_observe: Instant,
    /// Answers FETCH reads beside the writes (none: reads are answered
    /// here, in turn).
    reader: Option<Reader>,
}

impl Writer {
    pub(crate) fn new(storage: RocksStorage, cfg: StoreConfig, seen: Arc<Observed>) -> Self {
        Writer {
            storage: Some(storage),
            cfg,
            broken: None,
            seen,
            next_observe: Instant::now() + OBSERVE_EVERY,
            reader: None,
        }
    }

    /// Carries out one piece of work.
    fn execute(&mut self, work: StoreWork) -> StoreDone {
        self.reopen_if_due();
        let t0 = Instant::now();
        let done = match self.storage.as_mut() {
            Some(storage) => execute(storage, work),
            None => failed(work, REOPENING),
        };
        if let StoreDone::Written(Err(StorageError::Io { .. })) = &done {
            self.broken
                .get_or_insert_with(|| Instant::now() + REOPEN_EVERY);
        }
        self.observe(t0.elapsed(), &done);
        done
    }

    /// Answers work from `work` until the driver drops its end, then
    /// flushes. Each answer wakes the driver (whose waker is set before
    /// it starts, so before any work comes).
    pub(crate) fn serve(
        mut self,
        work: Receiver<StoreWork>,
        done: Sender<StoreDone>,
        waker: Arc<OnceLock<Waker>>,
    ) {
        self.reader = (self.storage.as_ref())
            .and_then(|s| Reader::start(s.db(), done.clone(), waker.clone()));
        for w in work.iter() {
            let w = match (w, &self.reader) {
                (StoreWork::Read { fetch, limit }, Some(reader)) => match reader.read(fetch, limit)
                {
                    Ok(()) => continue,
                    Err((fetch, limit)) => StoreWork::Read { fetch, limit },
                },
                (w, _) => w,
            };
            if done.send(self.execute(w)).is_err() {
                break;
            }
            if let Some(waker) = waker.get() {
                waker.wake();
            }
        }
        // The reads handed over are answered first.
        self.reader = None;
        self.flush();
    }

    /// Flushes the memtable so that the next start need not replay the
    /// write-ahead log.
    fn flush(&self) {
        let Some(storage) = self.storage.as_ref() else {
            return;
        };
        if let Err(e) = storage.flush() {
            tracing::warn!(error = %e, "could not flush the memtable on the way out; the next start replays the write-ahead log");
        }
    }

    /// Closes and reopens a database whose writes failed, once a second:
    /// what the failed writes held was never ACKed, and recovery keeps
    /// what reached the log whole.
    fn reopen_if_due(&mut self) {
        let Some(at) = self.broken else {
            return;
        };
        let now = Instant::now();
        if now < at {
            return;
        }
        self.broken = Some(now + REOPEN_EVERY);
        // The old handle (and its compaction thread, and the reader's
        // hold on it) must be gone first: RocksDB locks the directory.
        if let Some(r) = &self.reader {
            r.release();
        }
        self.storage = None;
        let cfg = &self.cfg;
        match RocksStorage::open_with(
            &cfg.db,
            cfg.sync_policy(),
            cfg.wal_recovery(),
            cfg.write_buffer_bytes(),
        ) {
            Ok(s) => {
                tracing::info!(db = %cfg.db.display(), "database reopened after write errors; trying writes again");
                if let Some(r) = &self.reader {
                    r.attach(s.db());
                }
                self.storage = Some(s);
                self.broken = None;
            }
            Err(e) => {
                tracing::warn!(db = %cfg.db.display(), error = %e, "cannot reopen the database yet; trying again in a second");
            }
        }
    }

    /// Notes how a write went and, now and then, what is held.
    fn observe(&mut self, took: Duration, done: &StoreDone) {
        if let StoreDone::Written(result) = done {
            self.seen.write_latency.observe(took);
            let failing = result.as_ref().err().map(|e| e.to_string());
            self.seen.set_failing(failing);
        }
        let now = Instant::now();
        if now >= self.next_observe {
            self.next_observe = now + OBSERVE_EVERY;
            if let Some(Ok(heads)) = self.storage.as_ref().map(Storage::heads) {
                self.seen.set_partitions(heads);
            }
        }
    }
}

#[cfg(test)]
mod tests;
