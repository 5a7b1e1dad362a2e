//! The Dafka store: keeps every partition it hears of, durably.
//!
//! A store subscribes to every RECORD and HEAD, writes records in order in
//! batches (fetching its own gaps from the producer or other stores), ACKs
//! each partition's highest stored offset after the batch is written, and
//! answers FETCH with DIRECT-RECORDs and GET-HEADS / CONSUMER-HELLO with
//! DIRECT-HEADs. After a restart on the same directory it serves everything
//! it stored before.
//!
//! [`StoreCore`] is the logic with no socket; [`Store`] runs it on a thread.

mod config;
mod core;
mod handle;
mod rocks;
mod storage;

pub use crate::config::{Fsync, StoreConfig, WalRecoveryMode};
pub use crate::core::{StoreCore, StoreCounters, MAX_PENDING_PARTITIONS, PENDING_TTL};
pub use handle::{Store, StoreError};
pub use rocks::{RocksStorage, SyncPolicy, WalRecovery};
pub use storage::{MemStorage, ReadLimit, Storage, StorageError, StoredHead};
