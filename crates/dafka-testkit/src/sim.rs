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
//!
//! Every node is its role's `dafka_protocol::Machine`, driven as the
//! production driver drives it: inputs, the end of each turn, timers, and
//! outputs. A store's storage work completes after a seeded delay of up to
//! [`Faults::max_write_delay`] ticks, so records arrive while a write is in
//! flight and the next batch forms behind it, as under load in production;
//! a store restarted with a write in flight loses that write (never ACKed).

use dafka_consumer::{ConsumerConfig, ConsumerCore, ConsumerDelivery, OffsetReset};
use dafka_producer::{ProducerCommand, ProducerConfig, ProducerCore, ProducerRecord};
use dafka_proto::{decode_all, Message, NodeId, Record};
use dafka_protocol::{Input, Machine, Output};
use dafka_store::{
    execute, MemStorage, ReadLimit, Storage, StoreConfig, StoreCore, StoreDone, StoreWork,
};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::convert::Infallible;
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
    /// Longest a store's write takes, in ticks.
    pub max_write_delay: u64,
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
            max_write_delay: [0, 1, 4][rng.below(3) as usize],
        }
    }
}

/// A message or a subscription on its way to a node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Delivery {
    Message(usize),
    Subscribed(Vec<u8>),
}

/// What the network carries out of a node's outputs.
enum NetOut {
    Send(Message),
    Subscribe(Vec<u8>),
    Unsubscribe(Vec<u8>),
}

/// The application's and the storage's side of a machine in the
/// simulator: what the production driver's `Port` is over real sockets.
trait SimPort<M: Machine> {
    /// Takes a delivery to the application.
    fn deliver(&mut self, d: M::Delivery);
    /// Takes storage work at `tick`.
    fn persist(&mut self, w: M::Work, tick: u64);
    /// Storage work that has finished by `tick` (none, for roles that ask
    /// for none).
    fn done(&mut self, _tick: u64) -> Vec<M::Done> {
        Vec::new()
    }
}

/// A machine and its port: one simulated node.
struct Host<M: Machine, P: SimPort<M>> {
    machine: M,
    port: P,
}

/// A node as the network sees it, whatever its role.
trait Node {
    fn feed(&mut self, d: Input<(), ()>, now: Instant);
    fn end_of_turn(&mut self, now: Instant);
    fn timers(&mut self, now: Instant, tick: u64);
    fn collect(&mut self, tick: u64, out: &mut Vec<NetOut>);
}

impl<M: Machine, P: SimPort<M>> Node for Host<M, P> {
    fn feed(&mut self, d: Input<(), ()>, now: Instant) {
        let input = match d {
            Input::Message(m) => Input::Message(m),
            Input::Subscribed(p) => Input::Subscribed(p),
            _ => return,
        };
        self.machine.handle(input, now);
    }

    fn end_of_turn(&mut self, now: Instant) {
        self.machine.end_of_turn(now);
    }

    fn timers(&mut self, now: Instant, tick: u64) {
        for done in self.port.done(tick) {
            self.machine.handle(Input::Done(done), now);
        }
        self.machine.on_timeout(now);
    }

    fn collect(&mut self, tick: u64, out: &mut Vec<NetOut>) {
        let mut outs = Vec::new();
        self.machine.drain(&mut outs);
        for o in outs {
            match o {
                Output::Send(m) => out.push(NetOut::Send(m)),
                // The simulated network carries messages one by one, so a
                // run is taken apart as the receiving node would.
                Output::SendRun { frames, .. } => {
                    let mut msgs = Vec::new();
                    let decoded = decode_all(&frames.to_vec(), &mut msgs);
                    assert!(
                        decoded.is_ok(),
                        "a machine encoded a run that does not decode: {decoded:?}"
                    );
                    out.extend(msgs.into_iter().map(NetOut::Send));
                }
                Output::Subscribe(p) => out.push(NetOut::Subscribe(p)),
                Output::Unsubscribe(p) => out.push(NetOut::Unsubscribe(p)),
                Output::Deliver(d) => self.port.deliver(d),
                Output::Persist(w) => self.port.persist(w, tick),
                // The simulated network has no beacons.
                Output::Announce { .. } => {}
            }
        }
    }
}

/// The producer's application: it only watches the machine.
struct ProducerSide;

impl SimPort<ProducerCore> for ProducerSide {
    fn deliver(&mut self, _report: dafka_producer::ProducerReport) {}
    fn persist(&mut self, w: Infallible, _tick: u64) {
        match w {}
    }
}

/// A consumer's application: it keeps what it was given.
#[derive(Default)]
struct ConsumerSide {
    delivered: Vec<Record>,
}

impl SimPort<ConsumerCore> for ConsumerSide {
    fn deliver(&mut self, d: ConsumerDelivery) {
        if let ConsumerDelivery::Records(r) = d {
            self.delivered.extend(r);
        }
    }
    fn persist(&mut self, w: Infallible, _tick: u64) {
        match w {}
    }
}

/// A store's storage: work is done when it is taken, and its answer
/// arrives `delay` ticks later (drawn per write), so the store batches
/// behind a slow write. Reads and syncs answer on the next tick.
struct StoreSide {
    storage: MemStorage,
    rng: Rng,
    max_delay: u64,
    /// Answers not yet given: (due tick, answer), in order.
    pending: Vec<(u64, StoreDone)>,
    /// Writes asked for, and the records in them (batching at work).
    writes: u64,
    written: u64,
}

impl SimPort<StoreCore> for StoreSide {
    fn deliver(&mut self, nothing: Infallible) {
        match nothing {}
    }

    fn persist(&mut self, w: StoreWork, tick: u64) {
        let delay = match &w {
            StoreWork::Write(b) => {
                self.writes += 1;
                self.written += b.len() as u64;
                self.rng.below(self.max_delay + 1)
            }
            _ => 0,
        };
        // A write is applied at once but confirmed later: a crash between
        // the two is a write the store never learns of, never ACKed. (The
        // restart drops `pending`; what was applied is kept, as RocksDB
        // may keep an unsynced write.)
        let done = execute(&mut self.storage, w);
        let due = self.pending.last().map_or(0, |p| p.0).max(tick + delay);
        self.pending.push((due, done));
    }

    fn done(&mut self, tick: u64) -> Vec<StoreDone> {
        let n = self
            .pending
            .iter()
            .take_while(|(due, _)| *due <= tick)
            .count();
        self.pending.drain(..n).map(|(_, d)| d).collect()
    }
}

type ProducerNode = Host<ProducerCore, ProducerSide>;
type StoreNode = Host<StoreCore, StoreSide>;
type ConsumerNode = Host<ConsumerCore, ConsumerSide>;

/// A delivery in flight: (due tick, sequence) orders the heap.
type Flight = Reverse<(u64, u64, usize, Delivery)>;

/// One simulated mesh. Node 0 is the producer, then the stores, then the
/// consumers.
pub struct Sim {
    seed: u64,
    rng: Rng,
    faults: Faults,
    faulty: bool,
    base: Instant,
    tick: u64,
    producer: ProducerNode,
    stores: Vec<StoreNode>,
    consumers: Vec<ConsumerNode>,
    ids: Vec<NodeId>,
    subs: Vec<Vec<Vec<u8>>>,
    /// Nodes that took input this tick and end their turn after it.
    fed: Vec<bool>,
    messages: Vec<Message>,
    flights: BinaryHeap<Flight>,
    seq: u64,
    published: u64,
    log: Vec<String>,
}

fn id(n: u8) -> NodeId {
    NodeId([n; 16])
}

/// What the producer publishes at `offset`: every field used, in a mix
/// (no key, a key; no headers, two with the same name; timestamps that
/// step forwards and back), so every path must carry them bit for bit.
fn record(offset: u64) -> ProducerRecord {
    let mut r = ProducerRecord::new(format!("record-{offset}"))
        .timestamp_ms(1_790_000_000_000 + (offset as i64 % 7) * 1000 - offset as i64);
    if !offset.is_multiple_of(3) {
        r = r.key(format!("key-{}", offset % 5));
    }
    if offset % 4 == 1 {
        r = r.header("h", vec![offset as u8, 0xFF]).header("h", "again");
    }
    r
}

/// A delivered or stored record as the producer's record, to compare.
fn as_published(r: &Record) -> (u64, ProducerRecord) {
    (r.offset, ProducerRecord::from(r))
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

fn store_node(sid: NodeId, storage: MemStorage, side: (Rng, u64), now: Instant) -> StoreNode {
    let heads = storage.heads().unwrap_or_else(|e| panic!("store: {e}"));
    Host {
        machine: StoreCore::new(sid, heads, store_cfg(), now),
        port: StoreSide {
            storage,
            rng: side.0,
            max_delay: side.1,
            pending: Vec::new(),
            writes: 0,
            written: 0,
        },
    }
}

impl Sim {
    /// A mesh of one producer (`min_acks` of `stores`), `stores` stores and
    /// `consumers` consumers reading from the beginning.
    pub fn new(seed: u64, stores: u8, consumers: u8, min_acks: usize) -> Self {
        let mut rng = Rng::new(seed);
        let faults = Faults::from_rng(&mut rng);
        let base = Instant::now();
        let producer = Host {
            machine: ProducerCore::new(id(1), TOPIC.into(), producer_cfg(min_acks)),
            port: ProducerSide,
        };
        let mut ids = vec![id(1)];
        let mut store_nodes = Vec::new();
        for s in 0..stores {
            let sid = id(10 + s);
            ids.push(sid);
            let side = (Rng::new(rng.next_u64()), faults.max_write_delay);
            store_nodes.push(store_node(sid, MemStorage::default(), side, base));
        }
        let mut consumer_nodes = Vec::new();
        for c in 0..consumers {
            let cid = id(100 + c);
            ids.push(cid);
            let cfg = ConsumerConfig {
                offset_reset: OffsetReset::Earliest,
                fetch_retry: 50,
                heads_refresh: 200,
                max_fetch: 64,
                ..ConsumerConfig::default()
            };
            let mut core = ConsumerCore::new(cid, cfg, base);
            core.subscribe(TOPIC, base);
            consumer_nodes.push(Host {
                machine: core,
                port: ConsumerSide::default(),
            });
        }
        let n = ids.len();
        let mut sim = Sim {
            seed,
            rng,
            faults,
            faulty: true,
            base,
            tick: 0,
            producer,
            stores: store_nodes,
            consumers: consumer_nodes,
            ids,
            subs: vec![Vec::new(); n],
            fed: vec![false; n],
            messages: Vec::new(),
            flights: BinaryHeap::new(),
            seq: 0,
            published: 0,
            log: vec![format!("seed {seed}: {faults:?}")],
        };
        for i in 0..n {
            sim.collect(i);
        }
        sim
    }

    fn now(&self) -> Instant {
        self.base + TICK * (self.tick as u32)
    }

    /// Node `n`, whatever its role.
    fn node(&mut self, n: usize) -> &mut dyn Node {
        let s = self.stores.len();
        match n {
            0 => &mut self.producer,
            n if n <= s => &mut self.stores[n - 1],
            n => &mut self.consumers[n - 1 - s],
        }
    }

    /// Runs the simulation: `records` published one per tick under faults,
    /// then up to `settle` ticks without faults. Returns the run's log.
    pub fn run(&mut self, records: u64, settle: u64) {
        while self.published < records {
            self.maybe_restart();
            if self.producer.machine.accepts_commands() {
                let now = self.now();
                let publish = ProducerCommand::Publish {
                    offset: self.published,
                    record: record(self.published),
                };
                self.producer.machine.handle(Input::Command(publish), now);
                self.published += 1;
                self.fed[0] = true;
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

    fn maybe_restart(&mut self) {
        if self.rng.chance(self.faults.producer_restart) {
            self.restart(0);
        }
        for n in 1..=self.stores.len() {
            if self.rng.chance(self.faults.store_restart) {
                self.restart(n);
            }
        }
    }

    /// Restarts node `n` (the producer or a store): the same id, fresh
    /// state from what it kept on disk; the rest of the mesh sees its
    /// subscriptions again and it sees theirs, as after a ZeroMQ reconnect.
    fn restart(&mut self, n: usize) {
        let now = self.now();
        let node_id = self.ids[n];
        if n == 0 {
            let p = &self.producer.machine;
            let kept: Vec<(u64, ProducerRecord)> = p.unacked_records().collect();
            let core = ProducerCore::resume(
                node_id,
                TOPIC.into(),
                producer_cfg(p.min_acks()),
                kept,
                p.published(),
            );
            self.producer.machine = core;
        } else {
            let old = &mut self.stores[n - 1].port;
            let storage = std::mem::take(&mut old.storage);
            let side = (old.rng.clone(), old.max_delay);
            let counts = (old.writes, old.written);
            let mut new = store_node(node_id, storage, side, now);
            (new.port.writes, new.port.written) = counts;
            self.stores[n - 1] = new;
        }
        self.log
            .push(format!("tick {}: restart node {n}", self.tick));
        self.subs[n].clear();
        for other in 0..self.ids.len() {
            if other == n {
                continue;
            }
            for p in self.subs[other].clone() {
                self.schedule(n, Delivery::Subscribed(p), false);
            }
        }
        self.collect(n);
    }

    fn settled(&mut self) -> bool {
        self.flights.is_empty() && self.verdict().is_ok()
    }

    /// Advances one tick: deliveries due now, the end of each fed node's
    /// turn, then storage answers and timers.
    fn step(&mut self) {
        while let Some(Reverse((due, _, to, d))) = self.flights.peek().cloned() {
            if due > self.tick {
                break;
            }
            self.flights.pop();
            self.deliver(to, d);
        }
        let (now, tick) = (self.now(), self.tick);
        for n in 0..self.ids.len() {
            if std::mem::take(&mut self.fed[n]) {
                self.node(n).end_of_turn(now);
            }
            self.node(n).timers(now, tick);
            self.collect(n);
        }
        self.tick += 1;
    }

    fn deliver(&mut self, to: usize, d: Delivery) {
        let now = self.now();
        let input = match d {
            Delivery::Message(m) => Input::Message(self.messages[m].clone()),
            Delivery::Subscribed(p) => Input::Subscribed(p),
        };
        self.node(to).feed(input, now);
        self.fed[to] = true;
        self.collect(to);
    }

    /// Takes node `n`'s outputs and puts them on the network.
    fn collect(&mut self, n: usize) {
        let mut out = Vec::new();
        let tick = self.tick;
        self.node(n).collect(tick, &mut out);
        for o in out {
            match o {
                NetOut::Send(m) => self.publish(n, m),
                NetOut::Subscribe(p) => {
                    self.subs[n].push(p.clone());
                    for other in 0..self.ids.len() {
                        if other != n {
                            self.schedule(other, Delivery::Subscribed(p.clone()), false);
                        }
                    }
                }
                NetOut::Unsubscribe(p) => self.subs[n].retain(|s| *s != p),
            }
        }
    }

    fn publish(&mut self, from: usize, m: Message) {
        let key = m.routing_key();
        let to: Vec<usize> = (0..self.ids.len())
            .filter(|&o| o != from && self.subs[o].iter().any(|s| key.starts_with(s)))
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
        let want: Vec<(u64, ProducerRecord)> =
            (0..self.published).map(|o| (o, record(o))).collect();
        let published = self.published;
        let unacked = self.producer.machine.unacked();
        if unacked > 0 {
            return Err(format!(
                "seed {}: {unacked} records never ACKed by a quorum",
                self.seed
            ));
        }
        let all = ReadLimit::records(published as usize + 1);
        let mut held = Vec::new();
        for (i, s) in self.stores.iter().enumerate() {
            let got: Vec<(u64, ProducerRecord)> = s
                .port
                .storage
                .read(TOPIC, &id(1), 0, all)
                .map_err(|e| e.to_string())?
                .iter()
                .map(as_published)
                .collect();
            held.push((self.ids[1 + i], got));
        }
        for (i, c) in self.consumers.iter().enumerate() {
            let got = c.port.delivered.iter().map(as_published).collect();
            held.push((self.ids[1 + self.stores.len() + i], got));
        }
        for (node, got) in held {
            if got != want {
                let offs: Vec<u64> = got.iter().map(|g| g.0).take(20).collect();
                return Err(format!(
                    "seed {}: node {} holds {} records, want {published}; first offsets {offs:?}",
                    self.seed,
                    node,
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
        let writes: u64 = self.stores.iter().map(|s| s.port.writes).sum();
        let written: u64 = self.stores.iter().map(|s| s.port.written).sum();
        BTreeMap::from([
            ("store writes", writes),
            ("records written", written),
            ("published", self.published),
            ("messages", self.messages.len() as u64),
            ("restarts", restarts as u64),
            ("ticks", self.tick),
        ])
    }
}
