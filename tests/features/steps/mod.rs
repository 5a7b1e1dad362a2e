//! The steps every feature file shares, and the world they act on.
//!
//! A scenario drives one real component (consumer, producer, store or
//! tower) through scripted peers (`TestPeer`) that speak the wire protocol
//! over real ZeroMQ sockets. Every wait is for an event, under a timeout.
#![allow(dead_code)]

mod component;
mod discovery;
mod faults;
mod groups;
mod positions;
mod scripted;

use cucumber::World as _;
use dafka::{Config, Consumer, Producer, Store};
use dafka_proto::{NodeId, Role};
use dafka_testkit::{TestCluster, TestPeer, EVENT_TIMEOUT};
use std::collections::HashMap;

/// Runs one feature file; exits non-zero if any scenario fails or any step
/// is missing.
pub fn run(feature: &str) {
    let path = format!(
        "{}/../../features/{feature}.feature",
        env!("CARGO_MANIFEST_DIR")
    );
    futures::executor::block_on(
        Mesh::cucumber()
            .max_concurrent_scenarios(1)
            .fail_on_skipped()
            .run_and_exit(path),
    );
}

/// The world of one scenario.
#[derive(cucumber::World, Default)]
pub struct Mesh {
    beacon_interval: Option<u64>,
    cluster: Option<TestCluster>,
    dirs: Vec<tempfile::TempDir>,
    consumer: Option<Consumer>,
    topics: Vec<String>,
    producer: Option<Producer>,
    offsets: Vec<u64>,
    store: Option<Store>,
    store_dir: Option<std::path::PathBuf>,
    /// The scripted peer the component under test talks to.
    peer: Option<TestPeer>,
    /// A second scripted peer: the consumer in store scenarios.
    client: Option<TestPeer>,
    client_store: Option<NodeId>,
    /// Scripted nodes of the tower scenarios, by name.
    nodes: HashMap<String, TestPeer>,
    /// The partition the scripted producer writes.
    partition: NodeId,
    /// The last FETCH the scripted peer saw.
    fetch: Option<dafka_proto::Fetch>,
    /// What was first sent for each offset, to check duplicates were dropped.
    first_content: HashMap<u64, String>,
    /// The partition the scripted producer last asked the store about.
    asked: Option<NodeId>,
    raw: Option<(zmq::Context, zmq::Socket)>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Mesh {{ topics: {:?}, offsets: {:?} }}",
            self.topics, self.offsets
        )
    }
}

impl Mesh {
    /// The cluster, started on first use with the scenario's settings.
    fn cluster(&mut self) -> &TestCluster {
        let interval = self.beacon_interval;
        self.cluster.get_or_insert_with(|| {
            TestCluster::start_with(|c: &mut Config| {
                if let Some(ms) = interval {
                    c.beacon.interval = ms;
                    c.beacon.timeout = ms * 2;
                    c.tower.timeout = ms * 2;
                }
            })
            .expect("tower starts")
        })
    }

    fn config(&mut self) -> Config {
        self.cluster().config.clone()
    }

    fn join(&mut self, role: Role) -> TestPeer {
        let cfg = self.config().beacon;
        TestPeer::join(role, &cfg).expect("peer joins")
    }

    fn peer(&mut self) -> &mut TestPeer {
        self.peer
            .as_mut()
            .expect("a scripted peer in this scenario")
    }

    fn consumer(&self) -> &Consumer {
        self.consumer.as_ref().expect("a consumer in this scenario")
    }

    fn producer(&self) -> &Producer {
        self.producer.as_ref().expect("a producer in this scenario")
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("a store in this scenario")
    }
}

/// A stable id for a name used in a scenario ("s1", "second").
pub fn named_id(name: &str) -> NodeId {
    let mut id = [0u8; 16];
    for (i, b) in name.bytes().enumerate() {
        id[i % 16] ^= b.wrapping_add(i as u8);
    }
    id[15] ^= 0xA5;
    NodeId(id)
}

pub fn timeout() -> std::time::Duration {
    EVENT_TIMEOUT
}
