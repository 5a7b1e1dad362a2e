//! An in-process cluster on loopback.

use dafka::{Config, Store, Tower};
use std::path::Path;

/// A tower on ephemeral loopback ports and a matching config.
pub struct TestCluster {
    /// The config every node of this cluster should use: the tower's real
    /// endpoints, publishers bound on 127.0.0.1, and timers 10x faster than
    /// the defaults so that timeouts in tests stay short.
    pub config: Config,
    tower: Option<Tower>,
}

impl TestCluster {
    /// Starts the tower.
    pub fn start() -> Result<TestCluster, dafka::TowerError> {
        Self::start_with(|_| {})
    }

    /// Starts the tower after `tune` has adjusted the test config (the
    /// tower's own settings included).
    pub fn start_with(tune: impl FnOnce(&mut Config)) -> Result<TestCluster, dafka::TowerError> {
        let mut config = Config::default();
        config.tower.sub_address = "tcp://127.0.0.1:*".into();
        config.tower.pub_address = "tcp://127.0.0.1:*".into();
        config.tower.timeout = 1000;
        config.beacon.bind = "tcp://127.0.0.1:*".into();
        config.beacon.interval = 100;
        config.beacon.timeout = 1000;
        config.producer.head_interval = 100;
        config.producer.close_timeout = 10_000;
        config.consumer.fetch_retry = 200;
        config.store.fetch_retry = 200;
        config.consumer.heads_refresh = 500;
        tune(&mut config);
        let tower = Tower::start(&config.tower)?;
        let (input, output) = tower.endpoints();
        config.beacon.sub_address = input.to_string();
        config.beacon.pub_address = output.to_string();
        Ok(TestCluster {
            config,
            tower: Some(tower),
        })
    }

    /// Starts a store on `dir`.
    pub fn store(&self, dir: &Path) -> Result<Store, dafka::StoreError> {
        let mut cfg = self.config.store.clone();
        cfg.db = dir.to_path_buf();
        Store::start(&cfg, &self.config.beacon)
    }

    /// The tower's counters.
    pub fn tower_stats(&self) -> Option<std::sync::Arc<dafka::NodeStats>> {
        self.tower.as_ref().map(Tower::stats)
    }

    /// How many live nodes the tower knows.
    pub fn tower_peers(&self) -> usize {
        self.tower.as_ref().map_or(0, Tower::peers)
    }

    /// Stops the tower (the nodes keep running and keep their peers).
    pub fn stop_tower(&mut self) {
        if let Some(t) = self.tower.take() {
            t.stop();
        }
    }
}
