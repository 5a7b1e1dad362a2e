//! The tower's sockets and thread.

use crate::core::TowerCore;
use dafka_node::mesh::read_frames;
use dafka_node::subscriptions::{SubAction, SubscriptionTable};
use dafka_node::{config::check_endpoints, wake_pair, ConfigError, MeshError, NodeStats, Waker};
use dafka_proto::{decode, encode, Message, NodeId};
use serde::Deserialize;
use std::sync::Arc;
use std::thread::JoinHandle;
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
}

impl Default for TowerConfig {
    fn default() -> Self {
        TowerConfig {
            sub_address: "tcp://*:5556".into(),
            pub_address: "tcp://*:5557".into(),
            timeout: 4000,
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
        Ok(())
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
}

/// A running tower. Stops when [`Tower::stop`] is called or it is dropped.
pub struct Tower {
    waker: Arc<Waker>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<NodeStats>,
    known: Arc<std::sync::atomic::AtomicUsize>,
    endpoints: (String, String),
}

struct Sockets {
    xsub: zmq::Socket,
    xpub: zmq::Socket,
    wake: zmq::Socket,
}

fn zerr<'a>(what: &'static str, endpoint: &'a str) -> impl FnOnce(zmq::Error) -> MeshError + 'a {
    move |error| MeshError {
        what,
        endpoint: endpoint.to_string(),
        error,
    }
}

impl Tower {
    /// Binds the tower's sockets and starts its thread.
    pub fn start(cfg: &TowerConfig) -> Result<Tower, TowerError> {
        cfg.validate()?;
        let ctx = zmq::Context::new();
        let xsub = ctx.socket(zmq::XSUB).map_err(zerr("create", "xsub"))?;
        xsub.bind(&cfg.sub_address)
            .map_err(zerr("bind", &cfg.sub_address))?;
        // XSUB subscribes by sending 0x01 + prefix upstream; empty = all.
        xsub.send(&[1u8][..], 0)
            .map_err(zerr("subscribe", "xsub"))?;
        let mut xpub = ctx.socket(zmq::XPUB).map_err(zerr("create", "xpub"))?;
        // Manual: nodes subscribe to beacons and tower hellos, and a peer
        // subscribing to anything else must not grow the tower's memory.
        dafka_sockopt::set_xpub_manual(&mut xpub, true).map_err(zerr("set", "xpub_manual"))?;
        xpub.bind(&cfg.pub_address)
            .map_err(zerr("bind", &cfg.pub_address))?;
        let endpoints = (last_endpoint(&xsub), last_endpoint(&xpub));
        let (waker, wake) = wake_pair(&ctx)?;
        let stats = Arc::new(NodeStats::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let known = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut run = Runner {
            known: known.clone(),
            core: TowerCore::new(Duration::from_millis(cfg.timeout)),
            id: dafka_node::new_node_id(),
            socks: Sockets { xsub, xpub, wake },
            stats: stats.clone(),
            stop: stop.clone(),
            frames: (0..4).map(|_| zmq::Message::new()).collect(),
            subs: SubscriptionTable::beacons(),
            joins: dafka_node::stats::RateLimit::burst(Duration::from_secs(1), 20),
        };
        tracing::debug!(input = %endpoints.0, output = %endpoints.1, "tower up");
        let thread = std::thread::Builder::new()
            .name("dafka-tower".into())
            .spawn(move || {
                let _ctx = ctx; // the context outlives the sockets
                run.run();
            })
            .map_err(|_| zerr("spawn", "tower thread")(zmq::Error::EFAULT))?;
        Ok(Tower {
            waker: Arc::new(waker),
            stop,
            thread: Some(thread),
            stats,
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
        self.stats.clone()
    }

    /// How many live nodes the tower knows.
    pub fn peers(&self) -> usize {
        self.known.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the tower and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Tower {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn last_endpoint(s: &zmq::Socket) -> String {
    s.get_last_endpoint()
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
}

struct Runner {
    known: Arc<std::sync::atomic::AtomicUsize>,
    core: TowerCore,
    id: NodeId,
    socks: Sockets,
    stats: Arc<NodeStats>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    frames: Vec<zmq::Message>,
    subs: SubscriptionTable,
    joins: dafka_node::stats::RateLimit,
}

impl Runner {
    fn run(&mut self) {
        while !self.stop.load(std::sync::atomic::Ordering::SeqCst) {
            let mut items = [
                self.socks.xsub.as_poll_item(zmq::POLLIN),
                self.socks.xpub.as_poll_item(zmq::POLLIN),
                self.socks.wake.as_poll_item(zmq::POLLIN),
            ];
            if zmq::poll(&mut items, 1000).is_err() {
                continue;
            }
            let ready: Vec<bool> = items.iter().map(|i| i.is_readable()).collect();
            let now = Instant::now();
            if ready[0] {
                self.forward_beacons(now);
            }
            if ready[1] {
                self.greet_joiners();
            }
            while self.socks.wake.recv_bytes(zmq::DONTWAIT).is_ok() {}
            for b in self.core.expire(now) {
                if let Some(suppressed) = self.joins.allow(now) {
                    tracing::info!(node = %b.node, role = ?b.role, endpoint = %b.endpoint, suppressed, "node went silent");
                }
            }
            self.known
                .store(self.core.len(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn forward_beacons(&mut self, now: Instant) {
        while let Some(n) = read_frames(&self.socks.xsub, &mut self.frames) {
            let host = self.frames[0].gets("Peer-Address").map(str::to_string);
            let parts: Vec<&[u8]> = self.frames[..n.min(4)].iter().map(|m| &m[..]).collect();
            match decode(&parts) {
                Ok(Message::Beacon(b)) if n <= 4 => {
                    let new = !b.leaving && !self.core.knows(&b.node);
                    if let Some(b) = self.core.on_beacon(b, host.as_deref(), now) {
                        self.log_change(&b, new, now);
                        self.publish(&Message::Beacon(b));
                    }
                }
                // Anything else is not for a tower: records never pass here.
                _ => NodeStats::bump(&self.stats.malformed),
            }
        }
    }

    /// Joins and departures at info level: what an operator watching a
    /// tower wants to see, in bunches of at most 20 a second.
    fn log_change(&mut self, b: &dafka_proto::Beacon, new: bool, now: Instant) {
        if !(new || b.leaving) {
            return;
        }
        if let Some(suppressed) = self.joins.allow(now) {
            let what = if new { "node joined" } else { "node left" };
            tracing::info!(node = %b.node, role = ?b.role, endpoint = %b.endpoint, suppressed, "{what}");
        }
    }

    fn greet_joiners(&mut self) {
        let mut joined = false;
        while let Ok(m) = self.socks.xpub.recv_bytes(zmq::DONTWAIT) {
            let applied = match self.subs.on_message(&m) {
                SubAction::Subscribe(p) => {
                    joined = true;
                    self.socks.xpub.set_subscribe(p)
                }
                SubAction::Unsubscribe(p) => self.socks.xpub.set_unsubscribe(p),
                SubAction::Ignore => Ok(()),
                SubAction::Refuse => {
                    NodeStats::bump(&self.stats.subscriptions_refused);
                    Ok(())
                }
            };
            if let Err(e) = applied {
                tracing::warn!(error = %e, "cannot apply a subscription");
            }
        }
        if joined {
            let hello = Message::TowerHello {
                tower: self.id,
                peers: self.core.snapshot(),
            };
            self.publish(&hello);
        }
    }

    fn publish(&self, msg: &Message) {
        let f = encode(msg);
        let sent = self
            .socks
            .xpub
            .send(f.key, zmq::SNDMORE | zmq::DONTWAIT)
            .and_then(|_| self.socks.xpub.send(f.header, zmq::DONTWAIT));
        if sent.is_ok() {
            NodeStats::bump(&self.stats.sent);
        }
    }
}
