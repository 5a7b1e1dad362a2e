//! FETCH reads on a thread of their own, beside the writes.
//!
//! On the writer's thread a FETCH waited for the synced write ahead of it
//! (25-65 ms while a producer sent a million records a second) and the
//! next write, and so the next ACKs, waited for the read. A consumer that
//! joined mid-burst then repaired the start of it more slowly than new
//! records arrived. RocksDB serves reads and writes at once, so reads go
//! to this thread and are answered as soon as they are read.

use crate::rocks::read_records;
use crate::storage::ReadLimit;
use crate::work::{failed, StoreDone, StoreWork};
use crate::writer::REOPENING;
use crossbeam_channel::{Receiver, Sender};
use dafka_proto::Fetch;
use dafka_transport::Waker;
use rocksdb::DB;
use std::sync::{Arc, OnceLock, RwLock};
use std::thread::JoinHandle;

/// The database the reader reads, or none while the writer reopens it.
type Slot = Arc<RwLock<Option<Arc<DB>>>>;

/// A thread that answers FETCH reads.
pub(crate) struct Reader {
    tx: Option<Sender<(Fetch, ReadLimit)>>,
    thread: Option<JoinHandle<()>>,
    db: Slot,
}

impl Reader {
    /// Starts the thread; `None` if it cannot be started (reads then stay
    /// on the writer's thread).
    pub(crate) fn start(
        db: Arc<DB>,
        done: Sender<StoreDone>,
        waker: Arc<OnceLock<Waker>>,
    ) -> Option<Reader> {
        let slot: Slot = Arc::new(RwLock::new(Some(db)));
        let (tx, rx) = crossbeam_channel::unbounded();
        let reads = slot.clone();
        let thread = std::thread::Builder::new()
            .name("dafka-store-reader".into())
            .spawn(move || serve(&reads, &rx, &done, &waker))
            .ok()?;
        Some(Reader {
            tx: Some(tx),
            thread: Some(thread),
            db: slot,
        })
    }

    /// Hands a read to the thread; gives it back if the thread is gone.
    pub(crate) fn read(&self, fetch: Fetch, limit: ReadLimit) -> Result<(), (Fetch, ReadLimit)> {
        match &self.tx {
            Some(tx) => tx.send((fetch, limit)).map_err(|e| e.0),
            None => Err((fetch, limit)),
        }
    }

    /// Lets go of the database, once the read in progress is done: the
    /// writer closes it to reopen it, and RocksDB locks its directory.
    /// Reads meanwhile fail (the consumer asks again).
    pub(crate) fn release(&self) {
        if let Ok(mut db) = self.db.write() {
            *db = None;
        }
    }

    /// Reads from `db` from now on (the database reopened).
    pub(crate) fn attach(&self, db: Arc<DB>) {
        if let Ok(mut slot) = self.db.write() {
            *slot = Some(db);
        }
    }
}

impl Drop for Reader {
    /// Answers the reads handed over, then ends the thread.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    slot: &Slot,
    rx: &Receiver<(Fetch, ReadLimit)>,
    done: &Sender<StoreDone>,
    waker: &OnceLock<Waker>,
) {
    for (fetch, limit) in rx.iter() {
        let answer = match slot.read().as_deref() {
            Ok(Some(db)) => StoreDone::Read {
                records: read_records(db, &fetch.topic, &fetch.partition, fetch.offset, limit),
                fetch,
            },
            _ => failed(StoreWork::Read { fetch, limit }, REOPENING),
        };
        if done.send(answer).is_err() {
            break;
        }
        if let Some(w) = waker.get() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rocks::RocksStorage;
    use crate::storage::{Storage, SyncPolicy, WalRecovery};
    use dafka_proto::{NodeId, Record};
    use std::time::Duration;

    fn fetch(offset: u64) -> Fetch {
        Fetch {
            topic: "t".into(),
            partition: NodeId([1; 16]),
            offset,
            count: 10,
            sender: NodeId([2; 16]),
        }
    }

    fn offsets(done: &Receiver<StoreDone>) -> Result<Vec<u64>, String> {
        match done.recv_timeout(Duration::from_secs(10)) {
            Ok(StoreDone::Read { records, .. }) => records
                .map(|rs| rs.iter().map(|r| r.offset).collect())
                .map_err(|e| e.to_string()),
            other => panic!("expected a read, got {other:?}"),
        }
    }

    #[test]
    fn reads_are_answered_beside_the_writer_and_wait_out_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = RocksStorage::open(dir.path(), SyncPolicy::Always, WalRecovery::PointInTime)
            .expect("open");
        let recs: Vec<Record> = (0..5)
            .map(|o| Record {
                topic: "t".into(),
                partition: NodeId([1; 16]),
                offset: o,
                content: bytes::Bytes::from(vec![o as u8; 10]),
                ..Default::default()
            })
            .collect();
        s.write(&recs).expect("write");
        let (done_tx, done) = crossbeam_channel::unbounded();
        let reader = Reader::start(s.db(), done_tx, Arc::default()).expect("thread");
        reader
            .read(fetch(2), ReadLimit::records(10))
            .expect("handed over");
        assert_eq!(offsets(&done), Ok(vec![2, 3, 4]));

        // Released for a reopen: reads fail, and the database closes.
        reader.release();
        drop(s);
        reader
            .read(fetch(0), ReadLimit::records(10))
            .expect("handed over");
        let err = offsets(&done).expect_err("no database");
        assert!(err.contains("reopened"), "{err}");
        let s = RocksStorage::open(dir.path(), SyncPolicy::Always, WalRecovery::PointInTime)
            .expect("reopen: the reader let go of the lock");
        reader.attach(s.db());
        reader
            .read(fetch(0), ReadLimit::records(2))
            .expect("handed over");
        assert_eq!(offsets(&done), Ok(vec![0, 1]));
    }
}
