//! The sockets of one node, and the discovery that connects them.
//!
//! Every node has four ZeroMQ sockets, all owned by its driver thread:
//!
//! * `data_in`, a SUB bound on the node's own (ephemeral) endpoint, the
//!   one its beacon announces: every peer's `data_out` connects to it.
//!   The receiving side binds so that, with security on, it is the CURVE
//!   server of each connection and every message it reads carries the
//!   sender's authenticated key (see [`crate::security`]).
//! * `data_out`, an XPUB connected to every wanted peer's `data_in`: every
//!   message the node sends. XPUB rather than PUB so the node sees its
//!   peers' subscriptions arrive: that is how a store knows a consumer
//!   joined (STORE-HELLO) and a producer knows a store is listening (HEAD
//!   at once). In manual mode: a subscription is applied only if the
//!   protocol uses its shape and the [`SubscriptionTable`] has room, so a
//!   peer cannot grow the node's memory with subscriptions.
//! * `beacon_pub`, an XPUB connected to every tower's input. A tower's
//!   subscription arriving means the tower is reachable: the node beacons at
//!   once instead of losing its first beacon to ZeroMQ's slow joiner.
//! * `beacon_sub`, a SUB connected to every tower's output: beacons and the
//!   tower's peer lists.

use crate::driver::{poll_ms, Transport};
use crate::monitor::{Monitor, Side};
use crate::security::Curve;
use crate::zap::Zap;
use dafka_proto::{
    decode_all, decode_all_shared, encode, routing, Beacon, Frames, FromMessage, Message,
    MessageId, NodeId, Role,
};
use dafka_protocol::discovery::{Discovery, PeerChange};
use dafka_protocol::senders::claim;
use dafka_protocol::subscriptions::{SubAction, SubscriptionTable};
use dafka_protocol::tuning::{
    BEACON_HWM, LINGER_MS, MAX_FRAMES, READ_BATCH, READ_BATCH_BYTES, TOWER_LIST_HWM, TOWER_SILENCE,
    TRIM_AFTER_UNSUBSCRIPTIONS, TRIM_DELAY, WARN_PERIOD,
};
use dafka_protocol::{Input, MeshConfig, NodeStats, RateLimit, RunBuilder};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a node's sockets could not be set up or stopped working.
#[derive(Debug, Error)]
pub enum MeshError {
    /// A socket operation failed.
    #[error("{what} {endpoint}: {}", explain(what, error))]
    Socket {
        /// What was being done ("bind", "connect", "poll").
        what: &'static str,
        /// The endpoint concerned, if any.
        endpoint: String,
        /// ZeroMQ's error (shown in the message, so not also a `source`).
        error: zmq::Error,
    },
    /// A key file of the `[security]` section cannot be used.
    #[error("security: {0}")]
    Key(#[from] crate::keys::KeyError),
    /// The operating system would not start the ZAP handler's thread.
    #[error("cannot start the ZAP handler's thread: {0}")]
    Thread(std::io::Error),
    /// A key that is not a CURVE public key.
    #[error("'{0}' is not a CURVE public key")]
    BadKey(String),
}

/// ZeroMQ's error, in words where its own mislead: binding a host name
/// that is no address of this machine reports "No such device".
fn explain(what: &str, error: &zmq::Error) -> String {
    match (what, error) {
        ("bind", zmq::Error::ENODEV) => {
            "no address of this machine has that name (bind to * or to one of its own addresses)"
                .into()
        }
        _ => error.to_string(),
    }
}

/// Wraps a ZeroMQ error with what was being done and where.
pub fn zerr<'a>(
    what: &'static str,
    endpoint: &'a str,
) -> impl FnOnce(zmq::Error) -> MeshError + 'a {
    move |error| MeshError::Socket {
        what,
        endpoint: endpoint.to_string(),
        error,
    }
}

/// The sockets and peer table of one node.
pub struct Mesh {
    data_in: zmq::Socket,
    data_out: zmq::Socket,
    beacon_pub: zmq::Socket,
    beacon_sub: zmq::Socket,
    discovery: Discovery,
    beacon: Beacon,
    interval: Duration,
    next_beacon: Instant,
    stats: Arc<NodeStats>,
    warn: RateLimit,
    twin_warn: RateLimit,
    subs: SubscriptionTable,
    subs_warn: RateLimit,
    /// Unsubscriptions since memory was last handed back (see
    /// `dafka_sockopt::release_free_memory`), and when to do it: once a
    /// burst of them is over, so what libzmq freed is free by then.
    unsubs: usize,
    trim_at: Option<Instant>,
    /// Until a tower answers: when to say that none has, and where we
    /// looked (a node with no tower waits in silence otherwise).
    tower_silence: Option<(Instant, String)>,
    frames: Vec<zmq::Message>,
    /// The beacon or tower message decoded from the last one read.
    decoded: Vec<Message>,
    /// Hand beacons and TOWER-HELLOs to the machine too (an admin tool
    /// reports who is out there; other roles need only the connections).
    show_discovery: bool,
    /// With security on: the keys, and the allowlist as last read.
    curve: Option<Secure>,
    /// Failed handshakes, said in words (tower out, tower in, data out,
    /// data in).
    monitors: [Monitor; 4],
    impostor_warn: RateLimit,
}

/// A secure node's keys, its ZAP handler, and the allowlist it applies.
struct Secure {
    curve: Curve,
    /// Stops with the mesh (declared after nothing that needs it).
    _zap: Zap,
    generation: u64,
    allowed: Arc<HashSet<String>>,
}

impl Mesh {
    /// Binds the node's publisher and connects to the towers. `wants` says
    /// which roles this node connects to.
    pub fn new(
        ctx: &zmq::Context,
        id: NodeId,
        role: Role,
        cfg: &MeshConfig,
        wants: fn(Role) -> bool,
    ) -> Result<Self, MeshError> {
        let stats = Arc::new(NodeStats::default());
        let secure = match Curve::load(&cfg.security)? {
            Some(curve) => {
                let zap = Zap::start(ctx, curve.allow.clone(), stats.clone())?;
                let (generation, allowed) = curve.allow.snapshot();
                Some(Secure {
                    curve,
                    _zap: zap,
                    generation,
                    allowed,
                })
            }
            None => None,
        };
        let curve = secure.as_ref().map(|s| &s.curve);
        let data_in = socket(ctx, zmq::SUB, cfg.high_watermark)?;
        if let Some(c) = curve {
            c.serve(&data_in)?;
        }
        crate::rcvbuf::apply(&data_in, cfg.receive_buffer)?;
        data_in.bind(&cfg.bind).map_err(zerr("bind", &cfg.bind))?;
        let bound = last_endpoint(&data_in)?;
        let mut data_out = socket(ctx, zmq::XPUB, cfg.high_watermark)?;
        dafka_sockopt::set_xpub_manual(&mut data_out, true).map_err(zerr("set", "xpub_manual"))?;
        // Queue only for peers that are connected: a peer that went away
        // must not collect messages until discovery drops it.
        data_out
            .set_immediate(true)
            .map_err(zerr("set", "immediate"))?;
        let beacon_pub = socket(ctx, zmq::XPUB, BEACON_HWM)?;
        beacon_pub
            .set_xpub_verbose(true)
            .map_err(zerr("set", "xpub_verbose"))?;
        let beacon_sub = socket(ctx, zmq::SUB, TOWER_LIST_HWM)?;
        for key in [MessageId::Beacon, MessageId::TowerHello] {
            beacon_sub
                .set_subscribe(&routing::any_key(key))
                .map_err(zerr("subscribe", "beacon"))?;
        }
        let secured = curve.is_some();
        let monitors = [
            Monitor::attach(ctx, &beacon_pub, Side::Tower, secured)?,
            Monitor::attach(ctx, &beacon_sub, Side::Tower, secured)?,
            Monitor::attach(ctx, &data_out, Side::Peer, secured)?,
            Monitor::attach(ctx, &data_in, Side::Server, secured)?,
        ];
        if let Some(c) = curve {
            for s in [&data_out, &beacon_pub, &beacon_sub] {
                c.client(s)?;
            }
        }
        for s in [&beacon_pub, &beacon_sub] {
            keep_alive(s, cfg)?;
        }
        // A connect that gets no answer (a host cut off) is retried after
        // a beacon interval, not after TCP's own SYN back-off (minutes).
        data_out
            .set_connect_timeout(ms(cfg.interval))
            .map_err(zerr("set", "connect timeout"))?;
        connect_towers(&beacon_pub, &cfg.tower_inputs(), curve)?;
        connect_towers(&beacon_sub, &cfg.tower_outputs(), curve)?;
        let (endpoint, port) = advertised(&bound, &cfg.advertise_host);
        tracing::debug!(node = %id, ?role, %bound, %endpoint, secure = secured, "mesh up");
        let now = Instant::now();
        Ok(Mesh {
            data_in,
            data_out,
            beacon_pub,
            beacon_sub,
            discovery: Discovery::new(id, wants, cfg.timeout()),
            beacon: Beacon {
                node: id,
                endpoint,
                port,
                role,
                interval_ms: cfg.interval as u32,
                leaving: false,
                age_ms: 0,
                group: String::new(),
                topics: 0,
                key: curve.map(|c| c.pair.public.clone()).unwrap_or_default(),
            },
            interval: cfg.interval(),
            next_beacon: now,
            stats,
            warn: RateLimit::new(WARN_PERIOD),
            twin_warn: RateLimit::new(WARN_PERIOD),
            subs: SubscriptionTable::data(cfg.max_subscriptions),
            subs_warn: RateLimit::new(WARN_PERIOD),
            unsubs: 0,
            trim_at: None,
            tower_silence: Some((
                now + TOWER_SILENCE,
                format!("{} / {}", cfg.sub_address, cfg.pub_address),
            )),
            frames: (0..MAX_FRAMES).map(|_| zmq::Message::new()).collect(),
            decoded: Vec::new(),
            show_discovery: false,
            curve: secure,
            monitors,
            impostor_warn: RateLimit::new(WARN_PERIOD),
        })
    }

    /// From now on, the machine also sees every beacon and TOWER-HELLO
    /// that reaches this node, as [`Input::Message`].
    pub fn show_discovery(&mut self) {
        self.show_discovery = true;
    }

    /// Peers currently connected.
    pub fn peers(&self) -> usize {
        self.discovery.len()
    }

    fn send_frames(&self, f: Frames) -> Result<(), MeshError> {
        let more = zmq::SNDMORE | zmq::DONTWAIT;
        let last = if f.content.is_some() {
            more
        } else {
            zmq::DONTWAIT
        };
        // Small frames are copied: ZeroMQ keeps up to 33 bytes inside the
        // message itself, and a copy of a header costs one allocation where
        // handing over the Vec costs two (ours and ZeroMQ's bookkeeping).
        let res = self
            .data_out
            .send(&f.key[..], more)
            .and_then(|_| self.data_out.send(&f.header[..], last))
            .and_then(|_| match f.content {
                Some(c) => self.data_out.send(content_message(c), zmq::DONTWAIT),
                None => Ok(()),
            });
        match res {
            Ok(()) => {
                NodeStats::bump(&self.stats.sent);
                if let Some(id) = f.key.first().and_then(|b| MessageId::from_byte(*b)) {
                    NodeStats::bump(&self.stats.sent_by_kind[id.index()]);
                }
                Ok(())
            }
            // XPUB reports EAGAIN only with XPUB_NODROP; treat it as a drop.
            Err(zmq::Error::EAGAIN) => Ok(()),
            Err(e) => Err(zerr("send", "")(e)),
        }
    }

    /// Sends raw frames, valid or not: for tests that feed peers garbage.
    pub fn send_raw(&self, frames: &[&[u8]]) -> Result<(), MeshError> {
        self.data_out
            .send_multipart(frames.iter().copied(), zmq::DONTWAIT)
            .map_err(zerr("send", ""))
    }

    fn read_data<C, D>(&mut self, events: &mut Vec<Input<C, D>>, now: Instant) {
        let mut bytes = 0;
        let mut records = RecordCount::default();
        for _ in 0..READ_BATCH {
            if bytes >= READ_BATCH_BYTES {
                break;
            }
            let n = match read_frames(&self.data_in, &mut self.frames) {
                Some(n) => n,
                None => break,
            };
            bytes += self.frames.iter().take(n).map(|f| f.len()).sum::<usize>();
            // Straight into the events: on an error nothing is appended.
            let start = events.len();
            match decode_read(&mut self.frames, n, events) {
                Ok(()) => {
                    let fresh = events[start..].iter().filter_map(FromMessage::message);
                    let first = fresh.clone().next();
                    if !self.believed(first, now) {
                        events.truncate(start);
                        continue;
                    }
                    NodeStats::bump(&self.stats.received);
                    if let Some(m) = first {
                        NodeStats::bump(&self.stats.received_by_kind[m.id().index()]);
                    }
                    records.count(fresh);
                }
                Err(e) => self.malformed(&e, now),
            }
        }
        // Added once per read, not per record: the counters are shared
        // with the threads that scrape them.
        records.add_to(&self.stats);
    }

    /// With security on: whether the messages just decoded came over the
    /// key of the node they claim to come from, and that key is still
    /// authorized. (One ZeroMQ message: one claim, a run's records share
    /// their partition.) Without security every message is believed.
    fn believed(&mut self, first: Option<&Message>, now: Instant) -> bool {
        let Some(secure) = &self.curve else {
            return true;
        };
        let Some(first) = first else {
            return true;
        };
        let claimed = claim(first);
        let key = self.frames[0].gets("User-Id").unwrap_or_default();
        if secure.allowed.contains(key) && self.discovery.vouches(key, &claimed) {
            return true;
        }
        NodeStats::bump(&self.stats.impostors);
        if let Some(suppressed) = self.impostor_warn.allow(now) {
            tracing::warn!(kind = first.id().name(), %key, claimed = ?claimed, suppressed,
                "dropped a message not sent with the key of the node it claims to come from");
        }
        false
    }

    fn malformed(&mut self, e: &dafka_proto::DecodeError, now: Instant) {
        NodeStats::bump(&self.stats.malformed);
        NodeStats::bump(&self.stats.malformed_by_kind[e.kind_index()]);
        if let Some(suppressed) = self.warn.allow(now) {
            tracing::warn!(error = %e, suppressed, "dropped a malformed message");
        }
    }

    /// Applies the subscriptions peers sent that the table accepts. In
    /// manual mode ZeroMQ applies a `set_subscribe` to the peer whose
    /// message was read last, so each is decided before the next is read.
    fn read_subscriptions<C, D>(&mut self, events: &mut Vec<Input<C, D>>, now: Instant) {
        let mut unsubs = 0;
        while let Ok(m) = self.data_out.recv_bytes(zmq::DONTWAIT) {
            unsubs += usize::from(m.first() == Some(&0));
            let applied = match self.subs.on_message(&m) {
                SubAction::Subscribe(p) => {
                    events.push(Input::Subscribed(p.to_vec()));
                    self.data_out.set_subscribe(p)
                }
                SubAction::Unsubscribe(p) => self.data_out.set_unsubscribe(p),
                SubAction::Ignore => Ok(()),
                SubAction::Refuse => {
                    NodeStats::bump(&self.stats.subscriptions_refused);
                    if let Some(suppressed) = self.subs_warn.allow(now) {
                        let prefix = String::from_utf8_lossy(&m[1.min(m.len())..]);
                        tracing::warn!(%prefix, held = self.subs.len(), suppressed, "refused a subscription the protocol does not use, or past beacon.max_subscriptions");
                    }
                    Ok(())
                }
            };
            if let Err(e) = applied {
                tracing::warn!(error = %e, "cannot apply a subscription");
            }
        }
        // Many unsubscriptions: a peer with many subscriptions left, and
        // libzmq frees what they held. Give it back to the system once the
        // burst is over (each batch pushes the moment back).
        self.unsubs += unsubs;
        if unsubs > 0 && self.unsubs >= TRIM_AFTER_UNSUBSCRIPTIONS {
            self.trim_at = Some(now + TRIM_DELAY);
        }
    }

    fn trim_if_due(&mut self, now: Instant) {
        if self.trim_at.is_some_and(|t| now >= t) {
            self.trim_at = None;
            self.unsubs = 0;
            dafka_sockopt::release_free_memory();
        }
    }

    fn read_tower_subscriptions(&mut self) -> bool {
        let mut any = false;
        while let Ok(m) = self.beacon_pub.recv_bytes(zmq::DONTWAIT) {
            any |= m.first() == Some(&1);
        }
        any
    }

    /// Says once that no tower has answered since the node started.
    fn warn_if_no_tower(&mut self, now: Instant) {
        if let Some((at, towers)) = &self.tower_silence {
            if now >= *at {
                tracing::warn!(towers = %towers, "no tower has answered in {} s; is one running there? still trying", TOWER_SILENCE.as_secs());
                self.tower_silence = None;
            }
        }
    }

    fn read_beacons<C, D>(
        &mut self,
        events: &mut Vec<Input<C, D>>,
        now: Instant,
    ) -> Result<(), MeshError> {
        loop {
            let n = match read_frames(&self.beacon_sub, &mut self.frames) {
                Some(n) => n,
                None => return Ok(()),
            };
            // Anything from a tower's output means one is there.
            self.tower_silence = None;
            self.decoded.clear();
            let peers = match decode_read(&mut self.frames, n, &mut self.decoded) {
                Ok(()) => match self.decoded.pop().inspect(|m| {
                    if self.show_discovery {
                        events.push(Input::Message(m.clone()));
                    }
                }) {
                    Some(Message::Beacon(b)) => vec![b],
                    Some(Message::TowerHello { peers, .. }) => peers,
                    _ => Vec::new(),
                },
                Err(e) => {
                    self.malformed(&e, now);
                    Vec::new()
                }
            };
            for b in peers {
                if b.node == self.beacon.node && !self.is_me(&b) {
                    self.twin(&b, now);
                    continue;
                }
                if !self.may_connect(&b) {
                    continue;
                }
                let changes = self.discovery.on_beacon(&b, now);
                self.apply(changes)?;
            }
        }
    }

    /// With security on, only peers whose key this node authorizes are
    /// connected to (a tower may authorize more than this node does).
    fn may_connect(&self, b: &Beacon) -> bool {
        self.curve
            .as_ref()
            .is_none_or(|s| s.allowed.contains(&b.key))
    }

    /// The allowlist was read again: drop peers whose key it no longer
    /// holds (their messages are refused from now on, too).
    fn follow_allowlist(&mut self) -> Result<(), MeshError> {
        let Some(secure) = &mut self.curve else {
            return Ok(());
        };
        if secure.curve.allow.generation() == secure.generation {
            return Ok(());
        }
        (secure.generation, secure.allowed) = secure.curve.allow.snapshot();
        let allowed = secure.allowed.clone();
        let gone = self.discovery.retain_keys(|k| allowed.contains(k));
        self.apply(gone)
    }

    /// Whether a beacon carrying our id is our own, come back through a
    /// tower (which fills in the host when we bound a wildcard address).
    fn is_me(&self, b: &Beacon) -> bool {
        let mine = &self.beacon;
        b.port == mine.port && (mine.endpoint.is_empty() || b.endpoint == mine.endpoint)
    }

    /// Another node announces our id: a store started on a copy of another
    /// store's database. Its ACKs and ours count as one store.
    fn twin(&mut self, b: &Beacon, now: Instant) {
        NodeStats::bump(&self.stats.twins);
        if let Some(suppressed) = self.twin_warn.allow(now) {
            tracing::error!(id = %b.node, endpoint = %b.endpoint, port = b.port, suppressed,
                "another node announces this node's id: a copy of this store's database? \
                 start one of them with --new-id");
        }
    }

    fn apply(&mut self, changes: Vec<PeerChange>) -> Result<(), MeshError> {
        for change in changes {
            match change {
                PeerChange::Connect(id, ep, key) => {
                    tracing::debug!(peer = %id, endpoint = %ep, "peer joined");
                    NodeStats::bump(&self.stats.peers_joined);
                    if self.curve.is_some() {
                        Curve::expect(&self.data_out, &key)?;
                    }
                    // A beacon can carry any endpoint: one ZeroMQ cannot
                    // use is that peer's problem, never a reason to stop.
                    if let Err(e) = self.data_out.connect(&ep) {
                        NodeStats::bump(&self.stats.malformed);
                        tracing::warn!(peer = %id, endpoint = %ep, error = %e, "cannot connect to a peer");
                    }
                }
                PeerChange::Disconnect(id, ep) => {
                    tracing::debug!(peer = %id, endpoint = %ep, "peer left");
                    NodeStats::bump(&self.stats.peers_left);
                    // Already gone is fine: the peer may never have answered.
                    let _ = self.data_out.disconnect(&ep);
                }
                PeerChange::Conflict(id, key) => {
                    NodeStats::bump(&self.stats.impostors);
                    if let Some(suppressed) = self.impostor_warn.allow(Instant::now()) {
                        tracing::warn!(peer = %id, %key, suppressed,
                            "ignored a beacon announcing a live node's id with another key");
                    }
                }
            }
        }
        Ok(())
    }

    fn send_beacon(&mut self, now: Instant, leaving: bool) {
        let mut b = self.beacon.clone();
        b.leaving = leaving;
        let f = encode(&Message::Beacon(b));
        let _ = self
            .beacon_pub
            .send(f.key, zmq::SNDMORE | zmq::DONTWAIT)
            .and_then(|_| self.beacon_pub.send(f.header, zmq::DONTWAIT));
        self.next_beacon = now + self.interval;
    }
}

/// Content of at least this many bytes is handed to ZeroMQ, not copied.
const HAND_OVER_BYTES: usize = 4096;

/// Frame 2 as a ZeroMQ message. A run's contents were encoded into a
/// buffer of their own: a large one is handed over (ZeroMQ frees it when
/// sent), sparing a copy and, at 64 KiB a run, the fresh pages the copy
/// lands in; a small one is copied, cheaper than ZeroMQ's bookkeeping
/// for a buffer it does not own.
fn content_message(c: bytes::Bytes) -> zmq::Message {
    if c.len() < HAND_OVER_BYTES {
        zmq::Message::from(&c[..])
    } else {
        // Free of copies when `c` is the run's own buffer (it is).
        zmq::Message::from(Vec::from(c))
    }
}

impl Transport for Mesh {
    /// When the mesh next needs a turn (its beacon timer, handing freed
    /// memory back, or saying that no tower has answered).
    fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.next_beacon;
        for t in [self.trim_at, self.tower_silence.as_ref().map(|(t, _)| *t)]
            .into_iter()
            .flatten()
        {
            next = next.min(t);
        }
        Some(next)
    }

    /// Waits up to `timeout` for traffic or a wake-up, handles discovery, and
    /// appends what the node must see to `events`; consumes the wake-up
    /// signals. With `read_data` false, data messages stay queued in ZeroMQ.
    fn poll<C, D>(
        &mut self,
        wake: &zmq::Socket,
        timeout: Duration,
        read_data: bool,
        events: &mut Vec<Input<C, D>>,
    ) -> Result<(), MeshError> {
        let ms = poll_ms(timeout);
        let data_events = if read_data {
            zmq::POLLIN
        } else {
            zmq::PollEvents::empty()
        };
        let [m0, m1, m2, m3] = &self.monitors;
        let mut items = [
            wake.as_poll_item(zmq::POLLIN),
            self.data_in.as_poll_item(data_events),
            self.data_out.as_poll_item(zmq::POLLIN),
            self.beacon_sub.as_poll_item(zmq::POLLIN),
            self.beacon_pub.as_poll_item(zmq::POLLIN),
            m0.poll_item(),
            m1.poll_item(),
            m2.poll_item(),
            m3.poll_item(),
        ];
        match zmq::poll(&mut items, ms) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => return Err(zerr("poll", "")(e)),
        }
        let ready: Vec<bool> = items.iter().map(|i| i.is_readable()).collect();
        let now = Instant::now();
        // Before reading: a batch that arrived after a key was removed is
        // judged by the new list.
        self.follow_allowlist()?;
        if ready[1] && read_data {
            self.read_data(events, now);
        }
        if ready[2] {
            self.read_subscriptions(events, now);
        }
        if ready[3] {
            self.read_beacons(events, now)?;
        }
        if ready[4] && self.read_tower_subscriptions() {
            self.send_beacon(now, false);
        }
        for (m, ready) in self.monitors.iter_mut().zip(&ready[5..]) {
            if *ready {
                m.read(now);
            }
        }
        self.trim_if_due(now);
        self.warn_if_no_tower(now);
        if now >= self.next_beacon {
            self.send_beacon(now, false);
            let gone = self.discovery.expire(now);
            self.apply(gone)?;
        }
        if ready[0] {
            while wake.recv_bytes(zmq::DONTWAIT).is_ok() {}
        }
        Ok(())
    }

    /// Says goodbye so peers drop this node at once rather than after the
    /// beacon timeout.
    fn leave(&mut self) {
        self.send_beacon(Instant::now(), true);
    }

    /// Publishes a message. Never blocks: past the high-water mark ZeroMQ
    /// drops it for that peer, and the protocol repairs the gap.
    fn send(&self, msg: &Message) -> Result<(), MeshError> {
        self.send_frames(encode(msg))?;
        if matches!(msg, Message::Fetch(_)) {
            NodeStats::bump(&self.stats.fetches);
        }
        Ok(())
    }

    /// Publishes the records waiting in `run` as one message, if any.
    fn send_run(&self, run: &mut RunBuilder) -> Result<(), MeshError> {
        let n = run.len() as u64;
        match run.take() {
            Some(f) => self.send_encoded(f, n),
            None => Ok(()),
        }
    }

    fn send_encoded(&self, f: Frames, records: u64) -> Result<(), MeshError> {
        let bytes = f.content.as_ref().map_or(0, |c| c.len() as u64);
        self.send_frames(f)?;
        NodeStats::add(&self.stats.records_out, records);
        NodeStats::add(&self.stats.record_bytes_out, bytes);
        Ok(())
    }

    /// Says the group and topic hash in every beacon from now on, and
    /// beacons at once so group members learn of it without waiting.
    fn announce(&mut self, group: String, topics: u64) {
        self.beacon.group = group;
        self.beacon.topics = topics;
        self.send_beacon(Instant::now(), false);
    }

    /// Starts receiving messages whose routing frame starts with `prefix`.
    fn subscribe(&self, prefix: &[u8]) -> Result<(), MeshError> {
        self.data_in
            .set_subscribe(prefix)
            .map_err(zerr("subscribe", ""))
    }

    /// Stops receiving messages under `prefix`.
    fn unsubscribe(&self, prefix: &[u8]) -> Result<(), MeshError> {
        self.data_in
            .set_unsubscribe(prefix)
            .map_err(zerr("unsubscribe", ""))
    }

    fn stats(&self) -> Arc<NodeStats> {
        self.stats.clone()
    }
}

/// Records received in one read of the data socket, counted locally.
#[derive(Default)]
struct RecordCount {
    records: u64,
    bytes: u64,
    repaired: u64,
}

impl RecordCount {
    fn count<'a>(&mut self, decoded: impl Iterator<Item = &'a Message>) {
        for m in decoded {
            let (r, direct) = match m {
                Message::Record(r) => (r, false),
                Message::DirectRecord { record, .. } => (record, true),
                _ => return,
            };
            self.records += 1;
            self.bytes += r.content.len() as u64;
            self.repaired += u64::from(direct);
        }
    }

    fn add_to(&self, stats: &NodeStats) {
        NodeStats::add(&stats.records_in, self.records);
        NodeStats::add(&stats.record_bytes_in, self.bytes);
        NodeStats::add(&stats.records_repaired, self.repaired);
    }
}

/// Reads one multi-part message into `frames`; `None` when nothing is
/// waiting. Frames past the buffer are read and discarded, so a message with
/// too many frames is reported (by its count) rather than desynchronising
/// the socket.
pub fn read_frames(sock: &zmq::Socket, frames: &mut [zmq::Message]) -> Option<usize> {
    let mut n = 0;
    let mut spare = zmq::Message::new();
    loop {
        let slot = frames.get_mut(n).unwrap_or(&mut spare);
        match sock.recv(slot, zmq::DONTWAIT) {
            Ok(()) => n += 1,
            Err(_) if n == 0 => return None,
            Err(_) => break,
        }
        if !sock.get_rcvmore().unwrap_or(false) {
            break;
        }
    }
    Some(n)
}

/// Decodes what [`read_frames`] read into `out` (several messages for a
/// run of records); `n` may exceed the buffer. A content frame of at
/// least [`SHARE_CONTENT_MIN`] bytes is taken from the buffer and shared
/// by the records it carries instead of copied.
fn decode_read<T: FromMessage>(
    frames: &mut [zmq::Message],
    n: usize,
    out: &mut Vec<T>,
) -> Result<(), dafka_proto::DecodeError> {
    if n > frames.len() {
        return Err(dafka_proto::DecodeError::FrameCount {
            kind: "message",
            expected: 3,
            got: n,
        });
    }
    if n == 3 && frames[2].len() >= SHARE_CONTENT_MIN {
        let content = std::mem::replace(&mut frames[2], zmq::Message::new());
        let parts = [&frames[0][..], &frames[1][..]];
        return decode_all_shared(&parts, bytes::Bytes::from_owner(Frame(content)), out).map(drop);
    }
    let parts: Vec<&[u8]> = frames[..n].iter().map(|m| &m[..]).collect();
    decode_all(&parts, out).map(drop)
}

/// Content frames this large are shared, not copied. Smaller ones are
/// copied: libzmq may hand a small frame out as a slice of its 8 KiB
/// receive buffer, and a record kept (in a batch, or in a consumer's
/// queue) would keep that whole buffer alive with it.
const SHARE_CONTENT_MIN: usize = 16 * 1024;

/// A received ZeroMQ frame as the owner of a [`bytes::Bytes`].
struct Frame(zmq::Message);

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A tower connection that stays silent for a beacon timeout is dropped
/// and made again (ZeroMQ heartbeats), and a connect that gets no answer is
/// retried after a beacon interval. Without this, a node whose link came
/// back after a cut waits for TCP's retransmission back-off (seconds,
/// growing with the cut) before it hears of its peers again. Data
/// connections get no heartbeat: a consumer that stops reading for a while
/// would be dropped by its publishers when their PINGs queue behind data.
fn keep_alive(s: &zmq::Socket, cfg: &MeshConfig) -> Result<(), MeshError> {
    let (interval, timeout) = (ms(cfg.interval), ms(cfg.timeout));
    s.set_heartbeat_ivl(interval)
        .and_then(|()| s.set_heartbeat_timeout(timeout))
        .and_then(|()| s.set_connect_timeout(interval))
        .map_err(zerr("set", "heartbeat"))
}

/// Milliseconds as libzmq takes them (an int).
fn ms(v: u64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Connects `s` to every tower, each with its key when security is on.
fn connect_towers(
    s: &zmq::Socket,
    towers: &[String],
    curve: Option<&Curve>,
) -> Result<(), MeshError> {
    for (i, ep) in towers.iter().enumerate() {
        if let Some(key) = curve.and_then(|c| c.towers.get(i)) {
            Curve::expect(s, key)?;
        }
        s.connect(ep).map_err(zerr("connect", ep))?;
    }
    Ok(())
}

/// A socket with its high-water marks and a short linger.
pub fn socket(
    ctx: &zmq::Context,
    kind: zmq::SocketType,
    hwm: i32,
) -> Result<zmq::Socket, MeshError> {
    let s = new_socket(ctx, kind, "socket")?;
    s.set_sndhwm(hwm).map_err(zerr("set", "sndhwm"))?;
    s.set_rcvhwm(hwm).map_err(zerr("set", "rcvhwm"))?;
    Ok(s)
}

/// A socket whose pending messages get a short grace period on close, not
/// forever. Every socket of a node is made here: with ZeroMQ's default
/// (wait forever), one message queued for a connection that died while
/// the socket closed kept the context from terminating, and the node's
/// handle hung in drop (about 1 test run in 650).
pub fn new_socket(
    ctx: &zmq::Context,
    kind: zmq::SocketType,
    what: &str,
) -> Result<zmq::Socket, MeshError> {
    let s = ctx.socket(kind).map_err(zerr("create", what))?;
    s.set_linger(LINGER_MS)
        .map_err(zerr("set the linger of", what))?;
    Ok(s)
}

/// The endpoint a socket was last bound to (with the port a `*` chose).
pub fn last_endpoint(s: &zmq::Socket) -> Result<String, MeshError> {
    match s.get_last_endpoint() {
        Ok(Ok(ep)) => Ok(ep),
        Ok(Err(_)) => Ok(String::new()),
        Err(e) => Err(zerr("read", "last endpoint")(e)),
    }
}

/// What to put in the beacon for a socket bound at `bound`: the endpoint as
/// bound if it names a host, or an empty endpoint plus the port for the tower
/// to complete when it was bound on a wildcard address.
fn advertised(bound: &str, host: &str) -> (String, u32) {
    let port = bound
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    if !host.is_empty() {
        return (format!("tcp://{host}:{port}"), port);
    }
    let wildcard = bound.starts_with("tcp://0.0.0.0:") || bound.starts_with("tcp://[::]:");
    if wildcard {
        (String::new(), port)
    } else {
        (bound.to_string(), port)
    }
}

#[cfg(test)]
mod tests {
    use super::{advertised, Mesh};

    /// The libzmq linked (the system's, see .cargo/config.toml) has CURVE:
    /// the copy zmq-sys builds from source does not.
    #[test]
    fn the_linked_libzmq_has_curve() {
        assert_eq!(
            zmq::has("curve"),
            Some(true),
            "libzmq without CURVE: is the system's linked?"
        );
    }

    #[test]
    fn binding_a_foreign_host_says_what_is_wrong() {
        let cfg = dafka_protocol::MeshConfig {
            bind: "tcp://no-such-host.invalid:0".into(),
            ..Default::default()
        };
        let ctx = zmq::Context::new();
        let id = dafka_proto::NodeId([1; 16]);
        let e = Mesh::new(&ctx, id, dafka_proto::Role::Store, &cfg, |_| true)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("bind tcp://no-such-host.invalid:0: "), "{e}");
        assert!(!e.contains("No such device"), "{e}");
    }

    #[test]
    fn wildcard_binds_leave_the_host_to_the_tower() {
        assert_eq!(advertised("tcp://0.0.0.0:4000", ""), (String::new(), 4000));
        assert_eq!(
            advertised("tcp://127.0.0.1:4000", ""),
            ("tcp://127.0.0.1:4000".into(), 4000)
        );
        assert_eq!(
            advertised("tcp://0.0.0.0:4000", "h"),
            ("tcp://h:4000".into(), 4000)
        );
        assert_eq!(advertised("ipc:///tmp/x", ""), ("ipc:///tmp/x".into(), 0));
    }
}
