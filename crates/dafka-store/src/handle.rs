//! A running store: its thread, and the handle that stops it.

use crate::config::StoreConfig;
use crate::core::{StoreCommand, StoreCore};
use crate::rocks::RocksStorage;
use crate::storage::{Storage, StorageError};
use crate::work::{execute, StoreDone, StoreWork};
use dafka_proto::{NodeId, Role};
use dafka_protocol::{ConfigError, MeshConfig, NodeStats};
use dafka_transport::{NodeSpec, Port, Running, StartError};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Instant;
use thiserror::Error;

/// Why a store could not start or stopped.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The config does not validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened or read.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The node could not start (a socket, or its thread).
    #[error(transparent)]
    Start(#[from] StartError),
}

/// A running store.
pub struct Store {
    id: NodeId,
    stop: Arc<AtomicBool>,
    running: Running,
}

impl Store {
    /// Opens the database in `cfg.db` and joins the mesh under the id kept
    /// in the database (made when the database was created).
    pub fn start(cfg: &StoreConfig, mesh: &MeshConfig) -> Result<Store, StoreError> {
        Self::start_with(cfg, mesh, false)
    }

    /// Like [`Store::start`]; with `new_id`, the store first replaces the
    /// id kept in its database with a new one: for a copy of another
    /// store's database, which must not count as that store in ACK quorums.
    pub fn start_with(
        cfg: &StoreConfig,
        mesh: &MeshConfig,
        new_id: bool,
    ) -> Result<Store, StoreError> {
        cfg.validate()?;
        mesh.validate()?;
        let storage = RocksStorage::open_with(
            &cfg.db,
            cfg.sync_policy(),
            cfg.wal_recovery(),
            cfg.write_buffer_bytes(),
        )?;
        let id = storage.store_id(dafka_protocol::new_node_id, new_id)?;
        let core = StoreCore::new(id, storage.heads()?, cfg.clone(), Instant::now());
        let stop = Arc::new(AtomicBool::new(false));
        let port = StorePort {
            storage,
            stop: stop.clone(),
        };
        let spec = NodeSpec {
            name: "dafka-store",
            id,
            role: Role::Store,
            wants: |r| matches!(r, Role::Producer | Role::Consumer | Role::Store),
            mesh,
        };
        let running = dafka_transport::spawn(spec, core, port)?;
        tracing::debug!(store = %id, db = %cfg.db.display(), "store up");
        Ok(Store { id, stop, running })
    }

    /// The store's node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Traffic counters.
    pub fn stats(&self) -> Arc<NodeStats> {
        self.running.stats()
    }

    /// Stops the store after the batch in hand is written.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, SeqCst);
        self.running.wake();
        self.running.join();
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The store's side of the driver: its database, and a stop flag.
struct StorePort {
    storage: RocksStorage,
    stop: Arc<AtomicBool>,
}

impl Port<StoreCore> for StorePort {
    fn command(&mut self, _accepts: bool) -> Option<StoreCommand> {
        // Taken once: the store stops after it.
        self.stop.swap(false, SeqCst).then_some(StoreCommand::Stop)
    }

    fn deliver(&mut self, nothing: Infallible) {
        match nothing {}
    }

    fn persist(&mut self, work: StoreWork) -> StoreDone {
        execute(&mut self.storage, work)
    }

    fn finish(&mut self) {
        if let Err(e) = self.storage.flush() {
            tracing::warn!(error = %e, "could not flush the memtable on the way out; the next start replays the write-ahead log");
        }
    }
}
