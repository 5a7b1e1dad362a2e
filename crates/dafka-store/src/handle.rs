//! A running store: its thread, and the handle that stops it.

use crate::config::StoreConfig;
use crate::core::{StoreCommand, StoreCore};
use crate::rocks::RocksStorage;
use crate::storage::{Storage, StorageError};
use crate::work::{execute, StoreDone, StoreWork};
use dafka_proto::{NodeId, Role};
use dafka_protocol::stats::LatencyBuckets;
use dafka_protocol::{ConfigError, MeshConfig, NodeStats};
use dafka_transport::{NodeSpec, Port, Running, StartError};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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

    /// `Err(why)` while the store's writes fail (a full disk, a read-only
    /// file system): it ACKs nothing then.
    pub fn health(&self) -> Result<(), String> {
        match self.failing.lock().ok().and_then(|f| f.clone()) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }
}

/// How often a database whose writes failed is reopened: RocksDB refuses
/// every write after one failed (a full disk, a read-only file system)
/// until it is reopened, and the store must resume by itself once the
/// cause is gone.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// How often the partitions seen from outside are refreshed.
const OBSERVE_EVERY: Duration = Duration::from_secs(1);

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
        let port = StorePort {
            storage: Some(storage),
            cfg: cfg.clone(),
            broken: None,
            stop: stop.clone(),
            seen: seen.clone(),
            next_observe: Instant::now() + OBSERVE_EVERY,
        };
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

/// The store's side of the driver: its database, and a stop flag.
struct StorePort {
    /// None while the database is closed to be reopened.
    storage: Option<RocksStorage>,
    cfg: StoreConfig,
    /// Since when writes fail with an I/O error, and when the database is
    /// next reopened to try again.
    broken: Option<Instant>,
    stop: Arc<AtomicBool>,
    seen: Arc<Observed>,
    next_observe: Instant,
}

impl StorePort {
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
        // The old handle (and its compaction thread) must be gone first:
        // RocksDB locks the directory.
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
            if let Ok(mut f) = self.seen.failing.lock() {
                *f = failing;
            }
        }
        let now = Instant::now();
        if now >= self.next_observe {
            self.next_observe = now + OBSERVE_EVERY;
            let heads = self.storage.as_ref().map(Storage::heads);
            if let (Some(Ok(heads)), Ok(mut p)) = (heads, self.seen.partitions.lock()) {
                *p = heads;
            }
        }
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

    fn persist(&mut self, work: StoreWork) -> StoreDone {
        self.reopen_if_due();
        let t0 = Instant::now();
        let done = match self.storage.as_mut() {
            Some(storage) => execute(storage, work),
            None => crate::work::failed(
                work,
                "the database is closed to be reopened after write errors",
            ),
        };
        if let StoreDone::Written(Err(StorageError::Io { .. })) = &done {
            self.broken
                .get_or_insert_with(|| Instant::now() + REOPEN_EVERY);
        }
        self.observe(t0.elapsed(), &done);
        done
    }

    fn finish(&mut self) {
        let Some(storage) = self.storage.as_ref() else {
            return;
        };
        if let Err(e) = storage.flush() {
            tracing::warn!(error = %e, "could not flush the memtable on the way out; the next start replays the write-ahead log");
        }
    }
}
