//! A seeded simulation of a whole mesh: producer, store and consumer state
//! machines joined by a simulated pub/sub network that drops, duplicates,
//! delays and reorders messages, and restarts nodes, all decided by one
//! seed. No sockets, no threads, no clock: a run is a pure function of its
//! seed, so a failing seed replays exactly.
//!
//! The network mirrors ZeroMQ pub/sub: a message reaches every other node
//! with a subscription that prefixes its routing key, and a node learns of
//! each subscription of every other node (XPUB). Faults are on only for the
//! first phase of a run; a second, fault-free phase lets repair finish.
//! [`Sim::check`] then states the promise: every store holds every record,
//! the producer was ACKed for all of them, and every consumer delivered each
//! partition from offset 0, in order, once, with the content published.

use bytes::Bytes;
use dafka_consumer::{ConsumerConfig, ConsumerCore, OffsetReset};
use dafka_node::{Event, Output};
use dafka_producer::{ProducerConfig, ProducerCore};
use dafka_proto::{Message, NodeId, Record};
use dafka_store::{MemStorage, ReadLimit, Storage, StoreConfig, StoreCore};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::{Duration, Instant};

const TOPIC: &str = "sim";
/// Granularity of simulated time.
const TICK: Duration = Duration::from_millis(5);

/// A small, fast, deterministic generator (SplitMix64): the same seed gives
/// the same run on every machine and every version of every crate.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// How hostile the network is while faults are on.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Chance a delivery is lost.
    pub drop: f64,
    /// Chance a delivery arrives twice.
    pub duplicate: f64,
    /// Longest extra delay, in ticks (deliveries overtake each other).
    pub max_delay: u64,
    /// Chance per tick that a store restarts (keeping its storage).
    pub store_restart: f64,
    /// Chance per tick that the producer restarts (resuming from what it
    /// had not seen ACKed, as its spool would give it).
    pub producer_restart: f64,
}

impl Faults {
    /// Faults drawn from the seed, so runs vary in kind as well as detail.
    pub fn from_rng(rng: &mut Rng) -> Self {
        Faults {
            drop: [0.0, 0.01, 0.05, 0.2][rng.below(4) as usize],
            duplicate: [0.0, 0.02, 0.1][rng.below(3) as usize],
            max_delay: [0, 2, 10][rng.below(3) as usize],
            store_restart: [0.0, 0.002, 0.01][rng.below(3) as usize],
            producer_restart: [0.0, 0.002, 0.01][rng.below(3) as usize],
        }
    }
}

enum Role {
    Producer(Box<ProducerCore>),
    Store(Box<StoreCore<MemStorage>>),
    Consumer {
        core: Box<ConsumerCore>,
        delivered: Vec<Record>,
    },
}

struct SimNode {
    id: NodeId,
    role: Role,
    subs: Vec<Vec<u8>>,
}

/// A delivery in flight: (due tick, sequence) orders the heap.
type Flight = Reverse<(u64, u64, usize, Delivery)>;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Delivery {
    Message(usize),
    Subscribed(Vec<u8>),
}

/// One simulated mesh.
pub struct Sim {
    seed: u64,
    rng: Rng,
    faults: Faults,
    faulty: bool,
    base: Instant,
    tick: u64,
    nodes: Vec<SimNode>,
    messages: Vec<Message>,
    flights: BinaryHeap<Flight>,
    seq: u64,
    published: u64,
    log: Vec<String>,
}

fn id(n: u8) -> NodeId {
    NodeId([n; 16])
}

fn content(offset: u64) -> Bytes {
    Bytes::from(format!("record-{offset}"))
}

fn store_cfg() -> StoreConfig {
    StoreConfig {
        fetch_retry: 50,
        max_fetch: 64,
        max_fetch_reply: 64,
        ..StoreConfig::default()
    }
}

fn producer_cfg(min_acks: usize) -> ProducerConfig {
    ProducerConfig {
        head_interval: 20,
        min_acks,
        max_fetch_reply: 64,
        ..ProducerConfig::default()
    }
}

impl Sim {
    /// A mesh of one producer (`min_acks` of `stores`), `stores` stores and
    /// `consumers` consumers reading from the beginning.
    pub fn new(seed: u64, stores: u8, consumers: u8, min_acks: usize) -> Self {
        let mut rng = Rng::new(seed);
        let faults = Faults::from_rng(&mut rng);
        let base = Instant::now();
        let mut sim = Sim {
            seed,
            rng,
            faults,
            faulty: true,
            base,
            tick: 0,
            nodes: Vec::new(),
            messages: Vec::new(),
            flights: BinaryHeap::new(),
            seq: 0,
            published: 0,
            log: vec![format!("seed {seed}: {faults:?}")],
        };
        let producer = ProducerCore::new(id(1), TOPIC.into(), producer_cfg(min_acks));
        sim.add(id(1), Role::Producer(Box::new(producer)));
        for s in 0..stores {
            let sid = id(10 + s);
            let core = StoreCore::new(sid, MemStorage::default(), store_cfg(), base);
            let core = core.unwrap_or_else(|e| panic!("store: {e}"));
            sim.add(sid, Role::Store(Box::new(core)));
        }
        for c in 0..consumers {
            let cid = id(100 + c);
            let cfg = ConsumerConfig {
                offset_reset: OffsetReset::Earliest,
                fetch_retry: 50,
                heads_refresh: 200,
                max_fetch: 64,
                ..ConsumerConfig::default()
            };
            let mut core = ConsumerCore::new(cid, cfg, base);
            core.subscribe(TOPIC);
            let role = Role::Consumer {
                core: Box::new(core),
                delivered: Vec::new(),
            };
            sim.add(cid, role);
        }
        sim
    }

    fn now(&self) -> Instant {
        self.base + TICK * (self.tick as u32)
    }

    fn add(&mut self, id: NodeId, role: Role) {
        self.nodes.push(SimNode {
            id,
            role,
            subs: Vec::new(),
        });
        let n = self.nodes.len() - 1;
        self.collect(n);
    }

    /// Runs the simulation: `records` published one per tick under faults,
    /// then up to `settle` ticks without faults. Returns the run's log.
    pub fn run(&mut self, records: u64, settle: u64) {
        while self.published < records {
            self.maybe_restart();
            if self.producer().has_room() {
                let now = self.now();
                let c = content(self.published);
                let off = self.producer().publish(c, now);
                debug_assert_eq!(off, self.published);
                self.published += 1;
                self.collect(0);
            }
            self.step();
        }
        self.faulty = false;
        self.log.push(format!("tick {}: faults off", self.tick));
        for _ in 0..settle {
            self.step();
            if self.settled() {
                break;
            }
        }
        self.log.push(format!("tick {}: stopped", self.tick));
    }

    fn producer(&mut self) -> &mut ProducerCore {
        match &mut self.nodes[0].role {
            Role::Producer(p) => p,
            _ => unreachable!("node 0 is the producer"),
        }
    }

    fn maybe_restart(&mut self) {
        for n in 0..self.nodes.len() {
            let p = match self.nodes[n].role {
                Role::Producer(_) => self.faults.producer_restart,
                Role::Store(_) => self.faults.store_restart,
                Role::Consumer { .. } => 0.0,
            };
            if self.rng.chance(p) {
                self.restart(n);
            }
        }
    }

    /// Restarts node `n`: the same id, fresh state from what it kept on
    /// disk; the rest of the mesh sees its subscriptions again and it sees
    /// theirs, as after a ZeroMQ reconnect.
    fn restart(&mut self, n: usize) {
        let now = self.now();
        let node_id = self.nodes[n].id;
        let role = match &mut self.nodes[n].role {
            Role::Producer(p) => {
                let kept: Vec<(u64, Bytes)> = p.unacked_records().collect();
                let next = p.published();
                Role::Producer(Box::new(ProducerCore::resume(
                    node_id,
                    TOPIC.into(),
                    producer_cfg(p.min_acks()),
                    kept,
                    next,
                )))
            }
            Role::Store(s) => {
                let storage = std::mem::take(s.storage_mut());
                let core = StoreCore::new(node_id, storage, store_cfg(), now);
                Role::Store(Box::new(core.unwrap_or_else(|e| panic!("store: {e}"))))
            }
            Role::Consumer { .. } => return,
        };
        self.log
            .push(format!("tick {}: restart node {n}", self.tick));
        self.nodes[n].role = role;
        self.nodes[n].subs.clear();
        for other in 0..self.nodes.len() {
            if other == n {
                continue;
            }
            for p in self.nodes[other].subs.clone() {
                self.schedule(n, Delivery::Subscribed(p), false);
            }
        }
        self.collect(n);
    }

    fn settled(&mut self) -> bool {
        self.flights.is_empty() && self.verdict().is_ok()
    }

    /// Advances one tick: deliveries due now, then timers.
    fn step(&mut self) {
        while let Some(Reverse((due, _, to, d))) = self.flights.peek().cloned() {
            if due > self.tick {
                break;
            }
            self.flights.pop();
            self.deliver(to, d);
        }
        let now = self.now();
        for n in 0..self.nodes.len() {
            match &mut self.nodes[n].role {
                Role::Producer(p) => p.on_tick(now),
                Role::Store(s) => s.on_tick(now),
                Role::Consumer { core, .. } => core.on_tick(now),
            }
            self.collect(n);
        }
        self.tick += 1;
    }

    fn deliver(&mut self, to: usize, d: Delivery) {
        let now = self.now();
        let ev = match d {
            Delivery::Message(m) => Event::Message(self.messages[m].clone()),
            Delivery::Subscribed(p) => Event::Subscribed(p),
        };
        match &mut self.nodes[to].role {
            Role::Producer(p) => p.on_event(ev, now),
            Role::Store(s) => {
                s.on_event(ev, now);
                s.flush(now);
            }
            Role::Consumer { core, .. } => core.on_event(ev, now),
        }
        self.collect(to);
    }

    /// Takes node `n`'s outputs (and a consumer's delivered records) and
    /// puts them on the network.
    fn collect(&mut self, n: usize) {
        let mut out = Vec::new();
        match &mut self.nodes[n].role {
            Role::Producer(p) => p.drain(&mut out),
            Role::Store(s) => s.drain(&mut out),
            Role::Consumer { core, delivered } => {
                core.drain(&mut out);
                delivered.extend(core.take_ready());
            }
        }
        for o in out {
            match o {
                Output::Send(m) => self.publish(n, m),
                Output::Subscribe(p) => {
                    self.nodes[n].subs.push(p.clone());
                    for other in 0..self.nodes.len() {
                        if other != n {
                            self.schedule(other, Delivery::Subscribed(p.clone()), false);
                        }
                    }
                }
                Output::Unsubscribe(p) => self.nodes[n].subs.retain(|s| *s != p),
            }
        }
    }

    fn publish(&mut self, from: usize, m: Message) {
        let key = m.routing_key();
        let to: Vec<usize> = (0..self.nodes.len())
            .filter(|&o| o != from && self.nodes[o].subs.iter().any(|s| key.starts_with(s)))
            .collect();
        if to.is_empty() {
            return; // No subscriber: ZeroMQ drops it too.
        }
        self.messages.push(m);
        let idx = self.messages.len() - 1;
        for o in to {
            self.schedule(o, Delivery::Message(idx), true);
        }
    }

    fn schedule(&mut self, to: usize, d: Delivery, lossy: bool) {
        let mut copies = 1;
        if self.faulty && lossy {
            if self.rng.chance(self.faults.drop) {
                return;
            }
            if self.rng.chance(self.faults.duplicate) {
                copies = 2;
            }
        }
        for _ in 0..copies {
            let delay = if self.faulty {
                self.rng.below(self.faults.max_delay + 1)
            } else {
                0
            };
            self.seq += 1;
            self.flights
                .push(Reverse((self.tick + 1 + delay, self.seq, to, d.clone())));
        }
    }

    /// Checks the promise; on failure says what broke, with the seed.
    pub fn check(&mut self) -> Result<(), String> {
        self.verdict().map_err(|e| {
            format!(
                "{e}\n{}\nreplay: DAFKA_SIM_SEED={} cargo test --workspace --all-targets --test sim",
                self.log.join("\n"),
                self.seed
            )
        })
    }

    fn verdict(&mut self) -> Result<(), String> {
        let want: Vec<(u64, Bytes)> = (0..self.published).map(|o| (o, content(o))).collect();
        let published = self.published;
        let unacked = self.producer().unacked();
        if unacked > 0 {
            return Err(format!(
                "seed {}: {unacked} records never ACKed by a quorum",
                self.seed
            ));
        }
        for node in &mut self.nodes {
            let got: Vec<(u64, Bytes)> = match &mut node.role {
                Role::Producer(_) => continue,
                Role::Store(s) => s
                    .storage_mut()
                    .read(TOPIC, &id(1), 0, ReadLimit::records(published as usize + 1))
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|r| (r.offset, r.content))
                    .collect(),
                Role::Consumer { delivered, .. } => delivered
                    .iter()
                    .map(|r| (r.offset, r.content.clone()))
                    .collect(),
            };
            if got != want {
                let offs: Vec<u64> = got.iter().map(|g| g.0).take(20).collect();
                return Err(format!(
                    "seed {}: node {} holds {} records, want {published}; first offsets {offs:?}",
                    self.seed,
                    node.id,
                    got.len()
                ));
            }
        }
        Ok(())
    }

    /// Counts of what happened, for the test's summary.
    pub fn summary(&self) -> BTreeMap<&'static str, u64> {
        let restarts = self
            .log
            .iter()
            .filter(|l| l.contains("restart node"))
            .count();
        BTreeMap::from([
            ("published", self.published),
            ("messages", self.messages.len() as u64),
            ("restarts", restarts as u64),
            ("ticks", self.tick),
        ])
    }
}
