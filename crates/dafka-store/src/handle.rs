//! A running store: its thread, and the handle that stops it.

use crate::config::StoreConfig;
use crate::core::{StoreCommand, StoreCore};
use crate::rocks::RocksStorage;
use crate::storage::{Storage, StorageError};
use crate::work::{StoreDone, StoreWork};
use crate::writer::Writer;
use crossbeam_channel::{Receiver, Sender};
use dafka_proto::{NodeId, Role};
use dafka_protocol::stats::LatencyBuckets;
use dafka_protocol::{ConfigError, MeshConfig, NodeStats};
use dafka_transport::{NodeSpec, Port, Running, StartError, Waker};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
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
    /// The node could not start (a socket, or its thread).
    #[error(transparent)]
    Start(#[from] StartError),
}

/// A running store.
pub struct Store {
    id: NodeId,
    stop: Arc<AtomicBool>,
    running: Running,
    seen: Arc<Observed>,
}

/// What a running store lets others see, for metrics and health checks:
/// updated by the store's thread, read from any other.
#[derive(Debug, Default)]
pub struct Observed {
    /// Every partition held, as of the last refresh (about once a second).
    partitions: Mutex<Vec<crate::StoredHead>>,
    /// Why writes fail, while they do.
    failing: Mutex<Option<String>>,
    /// How long each batch write took, fsync included.
    pub write_latency: LatencyBuckets,
    /// The database directory.
    pub db: PathBuf,
}

impl Observed {
    /// Every partition held (head, log start, bytes), as of the last
    /// refresh.
    pub fn partitions(&self) -> Vec<crate::StoredHead> {
        self.partitions
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    pub(crate) fn set_failing(&self, why: Option<String>) {
        if let Ok(mut f) = self.failing.lock() {
            *f = why;
        }
    }

    pub(crate) fn set_partitions(&self, heads: Vec<crate::StoredHead>) {
        if let Ok(mut p) = self.partitions.lock() {
            *p = heads;
        }
    }

    /// `Err(why)` while the store's writes fail (a full disk, a read-only
    /// file system): it ACKs nothing then.
    pub fn health(&self) -> Result<(), String> {
        match self.failing.lock().ok().and_then(|f| f.clone()) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }
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
        let seen = Arc::new(Observed {
            partitions: Mutex::new(storage.heads()?),
            db: cfg.db.clone(),
            ..Observed::default()
        });
        let writer = Writer::new(storage, cfg.clone(), seen.clone());
        let port = StorePort::new(writer, stop.clone())?;
        let spec = NodeSpec {
            name: "dafka-store",
            id,
            role: Role::Store,
            wants: |r| {
                matches!(
                    r,
                    Role::Producer | Role::Consumer | Role::Store | Role::Admin
                )
            },
            mesh,
            show_discovery: false,
        };
        let running = dafka_transport::spawn(spec, core, port)?;
        tracing::debug!(store = %id, db = %cfg.db.display(), "store up");
        Ok(Store {
            id,
            stop,
            running,
            seen,
        })
    }

    /// The store's node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Traffic counters.
    pub fn stats(&self) -> Arc<NodeStats> {
        self.running.stats()
    }

    /// Partitions, write latency and health, for metrics.
    pub fn observed(&self) -> Arc<Observed> {
        self.seen.clone()
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

/// The store's side of the driver: a stop flag, and the channels to the
/// [`Writer`]'s thread.
struct StorePort {
    stop: Arc<AtomicBool>,
    /// Dropped when the driver finishes: the writer then flushes and ends.
    work: Option<Sender<StoreWork>>,
    done: Receiver<StoreDone>,
    /// Set once the driver is about to start; the writer wakes it.
    waker: Arc<OnceLock<Waker>>,
    writer: Option<JoinHandle<()>>,
}

impl StorePort {
    /// Starts the writer's thread.
    fn new(writer: Writer, stop: Arc<AtomicBool>) -> Result<StorePort, StartError> {
        let (work_tx, work_rx) = crossbeam_channel::unbounded();
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let waker: Arc<OnceLock<Waker>> = Arc::default();
        let wakes = waker.clone();
        let name = "dafka-store-writer";
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || writer.serve(work_rx, done_tx, wakes))
            .map_err(|source| StartError::Spawn { name, source })?;
        Ok(StorePort {
            stop,
            work: Some(work_tx),
            done: done_rx,
            waker,
            writer: Some(thread),
        })
    }
}

impl Port<StoreCore> for StorePort {
    fn command(&mut self, _accepts: bool) -> Option<StoreCommand> {
        // Taken once: the store stops after it.
        self.stop.swap(false, SeqCst).then_some(StoreCommand::Stop)
    }

    fn deliver(&mut self, nothing: Infallible) {
        match nothing {}
    }

    /// Hands the work to the writer; the answer comes through `completed`.
    fn persist(&mut self, work: StoreWork) -> Option<StoreDone> {
        if let Some(tx) = &self.work {
            // A writer that is gone is noticed by `is_closed`.
            let _ = tx.send(work);
        }
        None
    }

    fn completed(&mut self) -> Option<StoreDone> {
        self.done.try_recv().ok()
    }

    fn attach(&mut self, waker: &Waker) {
        let _ = self.waker.set(waker.clone());
    }

    /// An answer already waiting must not wait for the poll's timeout.
    fn before_wait(&mut self, _accepts_commands: bool) -> bool {
        !self.done.is_empty()
    }

    /// The writer's thread ended early (it panicked): stop, as a store
    /// that cannot write must not pretend to run.
    fn is_closed(&self) -> bool {
        self.writer.as_ref().is_some_and(|t| t.is_finished()) && self.done.is_empty()
    }

    fn finish(&mut self) {
        self.stop_writer();
    }
}

impl StorePort {
    /// Lets the writer finish the work it holds, flush and end; waits for
    /// it, so that the database is closed (unlocked) on return.
    fn stop_writer(&mut self) {
        self.work = None;
        if let Some(t) = self.writer.take() {
            if t.join().is_err() {
                tracing::error!("the store's writer thread panicked");
            }
        }
    }
}

/// Also when the node never started (its sockets failed).
impl Drop for StorePort {
    fn drop(&mut self) {
        self.stop_writer();
    }
}
