//! What a store asks of its storage, and the answers: the store's logic
//! never touches the database itself. The driver carries the work out on
//! RocksDB; the simulator on [`crate::MemStorage`], answering when it likes.

use crate::storage::{ReadLimit, Retention, Storage, StorageError, StoredHead};
use dafka_proto::{Fetch, NodeId, Position, Record};

/// One piece of storage work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreWork {
    /// Append these records atomically (each partition's in offset order,
    /// contiguous with what is stored), as durably as the fsync policy
    /// promises.
    Write(Vec<Record>),
    /// Sync earlier writes if the fsync policy has one due.
    Sync,
    /// Read what a FETCH asks for, within `limit`.
    Read {
        /// The FETCH being answered.
        fetch: Fetch,
        /// How much to read at most.
        limit: ReadLimit,
    },
    /// Read the record stored at `record.offset`, to compare it with this
    /// copy that arrived again.
    Compare(Record),
    /// Delete what these retention rules expire now.
    Retain(Retention),
    /// Describe the partitions held, of one topic or all (a
    /// GET-PARTITIONS from `sender`).
    Partitions {
        /// The node asking.
        sender: NodeId,
        /// Only this topic; every topic when `None`.
        topic: Option<String>,
    },
    /// Keep a named consumer's positions (a COMMIT from `sender`).
    Commit {
        /// The consumer's name.
        name: String,
        /// The consumer node, for the COMMIT-ACK.
        sender: NodeId,
        /// The commit's number.
        seq: u64,
        /// The positions.
        positions: Vec<Position>,
    },
    /// Read a named consumer's positions in some topics, or where a time
    /// falls in their partitions (a GET-POSITIONS).
    Positions {
        /// The consumer's name.
        name: String,
        /// The node asking.
        sender: NodeId,
        /// The topics.
        topics: Vec<String>,
        /// The time asked about, if the question is about one.
        from_time_ms: Option<u64>,
    },
}

/// How a [`StoreWork`] went.
#[derive(Debug)]
pub enum StoreDone {
    /// The write is durable, or failed (and nothing of it may be ACKed).
    /// A durable write hands back its vector, emptied: the next batch
    /// gathers in it. A fresh vector for every batch (megabytes of
    /// records under load) faulted in and zeroed new pages every time,
    /// about a fifth of a store's CPU in a short burst of small records.
    Written(Result<Vec<Record>, StorageError>),
    /// A sync happened if one was due, or failed.
    Synced(Result<(), StorageError>),
    /// Records read for a FETCH.
    Read {
        /// The FETCH being answered.
        fetch: Fetch,
        /// The records, or why they cannot be read.
        records: Result<Vec<Record>, StorageError>,
    },
    /// A commit is kept, or failed (and is not acknowledged).
    Committed {
        /// The consumer node.
        sender: NodeId,
        /// The commit's number.
        seq: u64,
        /// How the write went.
        result: Result<(), StorageError>,
    },
    /// Positions read for a GET-POSITIONS.
    Positions {
        /// The consumer's name.
        name: String,
        /// The node asking.
        sender: NodeId,
        /// The topics asked about.
        topics: Vec<String>,
        /// The time asked about, if the question is about one.
        from_time_ms: Option<u64>,
        /// What is kept for them (or found for the time), or why it cannot
        /// be read.
        positions: Result<Vec<Position>, StorageError>,
    },
    /// The partitions held, for a GET-PARTITIONS.
    Partitions {
        /// The node asking.
        sender: NodeId,
        /// What is held, or why it cannot be read.
        heads: Result<Vec<StoredHead>, StorageError>,
    },
    /// Partitions whose log start retention moved, or why it failed.
    Retained(Result<Vec<StoredHead>, StorageError>),
    /// The stored record a duplicate is compared with. Boxed: two records
    /// would make this rare answer the largest `StoreDone`, and every
    /// record a store receives is moved as an `Input` as large as it
    /// (304 bytes instead of 176, a tenth of the driver's samples at 100 B).
    Compared(Box<Compared>),
}

/// A record that arrived again, and the stored one at its offset.
#[derive(Debug)]
pub struct Compared {
    /// The copy that arrived.
    pub record: Record,
    /// What the storage holds at its offset (none if it cannot tell).
    pub held: Option<Record>,
}

/// Carries out `work` on `storage`.
pub fn execute<S: Storage + ?Sized>(storage: &mut S, work: StoreWork) -> StoreDone {
    match work {
        StoreWork::Write(mut records) => StoreDone::Written(storage.write(&records).map(|()| {
            records.clear();
            records
        })),
        StoreWork::Sync => StoreDone::Synced(storage.sync_due()),
        StoreWork::Read { fetch, limit } => {
            let records = storage.read(&fetch.topic, &fetch.partition, fetch.offset, limit);
            StoreDone::Read { fetch, records }
        }
        StoreWork::Commit {
            name,
            sender,
            seq,
            positions,
        } => StoreDone::Committed {
            sender,
            seq,
            result: storage.commit(&name, &positions),
        },
        StoreWork::Positions {
            name,
            sender,
            topics,
            from_time_ms,
        } => {
            let mut all = Vec::new();
            let read = topics.iter().try_for_each(|t| {
                let found = match from_time_ms {
                    Some(time) => storage.offsets_at(t, time),
                    None => storage.positions(&name, t),
                };
                found.map(|ps| all.extend(ps))
            });
            StoreDone::Positions {
                name,
                sender,
                topics,
                from_time_ms,
                positions: read.map(|()| all),
            }
        }
        StoreWork::Partitions { sender, topic } => {
            let heads = storage.heads().map(|mut hs| {
                hs.retain(|h| topic.as_ref().is_none_or(|t| *t == h.topic));
                hs
            });
            StoreDone::Partitions { sender, heads }
        }
        StoreWork::Retain(rules) => {
            // The wall clock: retention counts from records' timestamps.
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            StoreDone::Retained(storage.retain(&rules, now_ms))
        }
        StoreWork::Compare(record) => {
            let one = ReadLimit::records(1);
            let held = match storage.read(&record.topic, &record.partition, record.offset, one) {
                Ok(mut v) => v.pop().filter(|r| r.offset == record.offset),
                // A read failure is not evidence of a conflict.
                Err(_) => None,
            };
            StoreDone::Compared(Box::new(Compared { record, held }))
        }
    }
}

/// What `work` comes to when there is no storage to do it on: every write
/// fails (nothing is ACKed), every read finds nothing.
pub fn failed(work: StoreWork, why: &str) -> StoreDone {
    let err = || StorageError::Io {
        op: "write",
        source: why.to_string().into(),
    };
    match work {
        StoreWork::Write(_) => StoreDone::Written(Err(err())),
        StoreWork::Sync => StoreDone::Synced(Ok(())),
        StoreWork::Read { fetch, .. } => StoreDone::Read {
            fetch,
            records: Err(err()),
        },
        StoreWork::Compare(record) => {
            StoreDone::Compared(Box::new(Compared { record, held: None }))
        }
        StoreWork::Retain(_) => StoreDone::Retained(Ok(Vec::new())),
        StoreWork::Partitions { sender, .. } => StoreDone::Partitions {
            sender,
            heads: Err(err()),
        },
        StoreWork::Commit { sender, seq, .. } => StoreDone::Committed {
            sender,
            seq,
            result: Err(err()),
        },
        StoreWork::Positions {
            name,
            sender,
            topics,
            from_time_ms,
        } => StoreDone::Positions {
            name,
            sender,
            topics,
            from_time_ms,
            positions: Err(err()),
        },
    }
}
