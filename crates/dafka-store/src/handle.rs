//! A running store: its thread, and the handle that stops it.

use crate::config::StoreConfig;
use crate::core::StoreCore;
use crate::rocks::RocksStorage;
use crate::storage::StorageError;
use dafka_node::{
    run, wake_pair, ConfigError, Event, Mesh, MeshConfig, MeshError, Node, NodeStats, Output,
};
use dafka_proto::{NodeId, Role};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;
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
    /// A socket could not be set up.
    #[error(transparent)]
    Mesh(#[from] MeshError),
}

/// A running store.
pub struct Store {
    id: NodeId,
    stop: Arc<AtomicBool>,
    waker: dafka_node::Waker,
    stats: Arc<NodeStats>,
    thread: Option<JoinHandle<Result<(), MeshError>>>,
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
        let storage = RocksStorage::open(&cfg.db, cfg.sync_policy(), cfg.wal_recovery())?;
        let id = storage.store_id(dafka_node::new_node_id, new_id)?;
        let core = StoreCore::new(id, storage, cfg.clone(), Instant::now())?;
        let ctx = zmq::Context::new();
        let mut net = Mesh::new(&ctx, id, Role::Store, mesh, |r| {
            matches!(r, Role::Producer | Role::Consumer | Role::Store)
        })?;
        let (waker, wake) = wake_pair(&ctx)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = net.stats();
        let mut driver = Driver {
            core,
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("dafka-store".into())
            .spawn(move || {
                let _ctx = ctx;
                run(&mut net, &wake, &mut driver)
            })
            .map_err(|e| StorageError::Io {
                op: "spawn",
                reason: e.to_string(),
            })?;
        tracing::debug!(store = %id, db = %cfg.db.display(), "store up");
        Ok(Store {
            id,
            stop,
            waker,
            stats,
            thread: Some(thread),
        })
    }

    /// The store's node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Traffic counters.
    pub fn stats(&self) -> Arc<NodeStats> {
        self.stats.clone()
    }

    /// Stops the store after the batch in hand is written.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, SeqCst);
        self.waker.wake();
        if let Some(t) = self.thread.take() {
            if let Ok(Err(e)) = t.join() {
                tracing::error!(error = %e, "store stopped on a socket error");
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Driver {
    core: StoreCore<RocksStorage>,
    stop: Arc<AtomicBool>,
}

impl Node for Driver {
    fn on_wake(&mut self, _now: Instant) {}

    fn on_event(&mut self, event: Event, now: Instant) {
        self.core.on_event(event, now);
    }

    fn on_batch_end(&mut self, now: Instant) {
        self.core.flush(now);
    }

    fn on_tick(&mut self, now: Instant) {
        self.core.on_tick(now);
    }

    fn next_deadline(&self) -> Option<Instant> {
        Some(self.core.next_deadline())
    }

    fn drain(&mut self, out: &mut Vec<Output>) {
        self.core.drain(out);
    }

    fn is_done(&self) -> bool {
        self.stop.load(SeqCst)
    }
}
