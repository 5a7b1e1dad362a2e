//! The Dafka store: keeps every partition it hears of, durably.
//!
//! A store subscribes to every RECORD and HEAD, writes records in order in
//! batches (fetching its own gaps from the producer or other stores), ACKs
//! each partition's highest stored offset after the batch is written, and
//! answers FETCH with DIRECT-RECORDs and GET-HEADS / CONSUMER-HELLO with
//! DIRECT-HEADs. After a restart on the same directory it serves everything
//! it stored before.
//!
//! [`StoreCore`] is the logic, a `dafka_protocol::Machine` that never
//! touches the database: it asks for [`StoreWork`] (writes, syncs, reads)
//! and is told how it went. [`Store`] runs it on a thread over RocksDB
//! ([`RocksStorage`]); [`MemStore`] runs it over memory for tests and the
//! simulator.

mod config;
mod core;
mod handle;
mod mem;
mod reader;
mod rocks;
mod storage;
mod work;
mod writer;

pub use crate::config::{Fsync, StoreConfig, WalRecoveryMode};
pub use crate::core::{StoreCommand, StoreCore, StoreCounters, StoreOutput};
pub use dafka_protocol::tuning::{MAX_PENDING_PARTITIONS, PENDING_TTL};
pub use handle::{Observed, Store, StoreError};
pub use mem::MemStore;
pub use rocks::RocksStorage;
pub use storage::{
    MemStorage, ReadLimit, Storage, StorageError, StoredHead, SyncPolicy, WalRecovery,
};
pub use work::{execute, Compared, StoreDone, StoreWork};
