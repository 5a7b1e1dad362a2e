//! A running tower: its config, its thread, and the handle that stops it.

use crate::machine::{TowerCommand, TowerMachine};
use dafka_protocol::config::check_endpoints;
use dafka_protocol::{ConfigError, Machine, NodeStats, SecurityConfig};
use dafka_transport::tower::TowerSockets;
use dafka_transport::{MeshError, Port, Running, StartError};
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// The `[tower]` section of a Dafka config.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TowerConfig {
    /// Where nodes publish beacons (bound XSUB).
    pub sub_address: String,
    /// Where nodes hear beacons (bound XPUB).
    pub pub_address: String,
    /// Milliseconds after which a silent node leaves the tower's list.
    pub timeout: u64,
    /// CURVE and the key allowlist (the `[security]` section).
    #[serde(skip)]
    pub security: SecurityConfig,
}

impl Default for TowerConfig {
    fn default() -> Self {
        TowerConfig {
            sub_address: "tcp://*:5556".into(),
            pub_address: "tcp://*:5557".into(),
            timeout: 4000,
            security: SecurityConfig::default(),
        }
    }
}

impl TowerConfig {
    /// Checks every value once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_endpoints("tower.sub_address", &self.sub_address)?;
        check_endpoints("tower.pub_address", &self.pub_address)?;
        if self.timeout == 0 {
            return Err(ConfigError::new("tower.timeout", "must be at least 1 ms"));
        }
        self.security.validate(None)
    }
}

/// Why a tower could not start.
#[derive(Debug, Error)]
pub enum TowerError {
    /// The config does not validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A socket could not be set up (most often: the port is taken).
    #[error(transparent)]
    Socket(#[from] MeshError),
    /// The tower's thread could not start.
    #[error(transparent)]
    Start(#[from] StartError),
}

/// A running tower. Stops when [`Tower::stop`] is called or it is dropped.
pub struct Tower {
    running: Running,
    stop: Arc<AtomicBool>,
    known: Arc<AtomicUsize>,
    endpoints: (String, String),
}

impl Tower {
    /// Binds the tower's sockets and starts its thread.
    pub fn start(cfg: &TowerConfig) -> Result<Tower, TowerError> {
        cfg.validate()?;
        let ctx = zmq::Context::new();
        let (socks, endpoints) =
            TowerSockets::bind(&ctx, &cfg.sub_address, &cfg.pub_address, &cfg.security)?;
        let machine = TowerMachine::new(
            dafka_protocol::new_node_id(),
            Duration::from_millis(cfg.timeout),
            Instant::now(),
        );
        let port = TowerPort::default();
        let (stop, known) = (port.stop.clone(), port.known.clone());
        tracing::debug!(input = %endpoints.0, output = %endpoints.1, "tower up");
        let running = dafka_transport::start("dafka-tower", ctx, socks, machine, port)?;
        Ok(Tower {
            running,
            stop,
            known,
            endpoints,
        })
    }

    /// The bound beacon input and output, with real ports when `*` was asked.
    pub fn endpoints(&self) -> (&str, &str) {
        (&self.endpoints.0, &self.endpoints.1)
    }

    /// Traffic counters (malformed beacons dropped, beacons forwarded).
    pub fn stats(&self) -> Arc<NodeStats> {
        self.running.stats()
    }

    /// How many live nodes the tower knows.
    pub fn peers(&self) -> usize {
        self.known.load(Ordering::Relaxed)
    }

    /// Stops the tower and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.running.wake();
        self.running.join();
    }
}

impl Drop for Tower {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The application's side of a tower: a stop flag and the live count.
#[derive(Default)]
struct TowerPort {
    stop: Arc<AtomicBool>,
    known: Arc<AtomicUsize>,
}

impl Port<TowerMachine> for TowerPort {
    fn command(&mut self, _accepts: bool) -> Option<TowerCommand> {
        // Taken once: the machine is done after it.
        self.stop
            .swap(false, Ordering::SeqCst)
            .then_some(TowerCommand::Stop)
    }

    fn deliver(&mut self, live: usize) {
        self.known.store(live, Ordering::Relaxed);
    }

    fn persist(&mut self, work: <TowerMachine as Machine>::Work) -> Option<Infallible> {
        match work {}
    }
}
