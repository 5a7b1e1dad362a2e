//! A store over memory, its storage work done at once: what the driver does
//! over RocksDB, for unit tests of the store's logic.

use crate::config::StoreConfig;
use crate::core::{StoreCommand, StoreCore, StoreOutput};
use crate::storage::{MemStorage, Storage, StorageError};
use crate::work::{execute, StoreDone};
use dafka_proto::NodeId;
use dafka_protocol::{Input, Machine, Output};
use std::time::Instant;

/// A [`StoreCore`] and its [`MemStorage`].
pub struct MemStore {
    core: StoreCore,
    storage: MemStorage,
    out: Vec<StoreOutput>,
}

impl MemStore {
    /// A store with id `id` over `storage`, resuming what it holds.
    pub fn new(
        id: NodeId,
        storage: MemStorage,
        cfg: StoreConfig,
        now: Instant,
    ) -> Result<Self, StorageError> {
        let core = StoreCore::new(id, storage.heads()?, cfg, now);
        let mut s = MemStore {
            core,
            storage,
            out: Vec::new(),
        };
        s.work(now);
        Ok(s)
    }

    /// Feeds one input, and does the storage work it asks for.
    pub fn handle(&mut self, input: Input<StoreCommand, StoreDone>, now: Instant) {
        self.core.handle(input, now);
        self.work(now);
    }

    /// Ends a turn: the batch gathered is written (and ACKed).
    pub fn end_of_turn(&mut self, now: Instant) {
        self.core.end_of_turn(now);
        self.work(now);
    }

    /// Runs the store's timers.
    pub fn on_timeout(&mut self, now: Instant) {
        self.core.on_timeout(now);
        self.work(now);
    }

    /// Moves what the store sent or subscribed to into `out`.
    pub fn drain(&mut self, out: &mut Vec<StoreOutput>) {
        out.append(&mut self.out);
    }

    /// The store's logic.
    pub fn core(&self) -> &StoreCore {
        &self.core
    }

    /// The storage, to inspect or to make fail.
    pub fn storage_mut(&mut self) -> &mut MemStorage {
        &mut self.storage
    }

    /// Does the storage work asked for, feeding each answer back, until
    /// the store asks for no more.
    fn work(&mut self, now: Instant) {
        loop {
            let mut out = Vec::new();
            self.core.drain(&mut out);
            if out.is_empty() {
                return;
            }
            for o in out {
                match o {
                    Output::Persist(w) => {
                        let done = execute(&mut self.storage, w);
                        self.core.handle(Input::Done(done), now);
                    }
                    other => self.out.push(other),
                }
            }
        }
    }
}
