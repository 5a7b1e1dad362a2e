//! The application's side of a producer, and the driver thread behind it.

use crate::config::ProducerConfig;
use crate::core::{ClaimOutcome, ProducerCore};
use crate::spool::{Recovered, Spool, SpoolError, SpoolSync};
use crate::Content;
use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, Sender};
use dafka_node::{
    run, wake_pair, ConfigError, Event, Mesh, MeshConfig, MeshError, Node, NodeStats, Output, Waker,
};
use dafka_proto::{limits::MAX_CONTENT_LEN, validate_topic, DecodeError, NodeId, Role};
use std::sync::atomic::{fence, AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a producer call failed.
#[derive(Debug, Error)]
pub enum ProducerError {
    /// The config does not validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The topic name is not valid.
    #[error("invalid topic: {0}")]
    Topic(DecodeError),
    /// The record is larger than the protocol allows.
    #[error("record of {0} bytes exceeds the limit of {MAX_CONTENT_LEN}")]
    TooLarge(usize),
    /// A socket could not be set up.
    #[error(transparent)]
    Mesh(#[from] MeshError),
    /// The state directory cannot be used.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The partition's history is not in the state directory and too few
    /// stores said where it stands.
    #[error("partition {partition}: its history is not in this state directory, and {heard} of the {min_acks} store(s) needed said where it stands within {timeout_ms} ms; refusing to publish at offsets the stores may already hold (start the stores, or use the state directory that holds the partition)")]
    Claim {
        /// The partition.
        partition: NodeId,
        /// Stores that answered.
        heard: usize,
        /// Stores needed (`min_acks`).
        min_acks: usize,
        /// How long it waited.
        timeout_ms: u64,
    },
    /// The producer's thread has stopped.
    #[error("the producer has stopped")]
    Stopped,
}

/// What `close` achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReport {
    /// Records published.
    pub published: u64,
    /// Records still not ACKed by `min_acks` stores when the close timeout
    /// ran out (0 means every record was delivered).
    pub unacked: u64,
}

/// The publishing side's state: offsets are handed out, spooled and queued
/// for the driver under one lock, so all three agree on the order.
struct Writer {
    next: u64,
    spool: Option<Spool>,
    /// Whether the first offset is known. Not yet while the driver learns
    /// a taken-over partition's head from the stores.
    numbered: bool,
}

enum Command {
    Publish(Bytes),
    Close,
}

/// Delivery progress, shared between the driver and the handle.
#[derive(Default)]
struct Progress {
    /// Every offset below this is ACKed by a quorum.
    acked: u64,
    unacked: u64,
    finished: bool,
    /// How the claim of a taken-over partition ended.
    claim: Option<ClaimOutcome>,
}

#[derive(Default)]
struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
    closing: AtomicBool,
    /// The driver may be blocked in `poll`: the next publish must wake it.
    /// Waking it on every record costs a ZeroMQ message per record.
    parked: AtomicBool,
}

/// A producer of one partition of one topic.
///
/// ```no_run
/// use dafka_producer::{Producer, ProducerConfig};
/// use dafka_node::MeshConfig;
/// let p = Producer::new("hello", &ProducerConfig::default(), &MeshConfig::default())?;
/// p.publish("HELLO WORLD")?;
/// let report = p.close();
/// assert_eq!(report.unacked, 0);
/// # Ok::<(), dafka_producer::ProducerError>(())
/// ```
///
/// Dropping a producer closes it as [`Producer::close`] does: it waits up
/// to `producer.close_timeout` (30 s by default) for outstanding ACKs.
/// Call `close` to learn what was left, or [`Producer::flush`] with a
/// timeout of your own first.
pub struct Producer {
    id: NodeId,
    topic: String,
    tx: Sender<Command>,
    waker: Waker,
    next: Arc<Mutex<Writer>>,
    deliveries: Receiver<u64>,
    min_acks: usize,
    claim_timeout: Duration,
    shared: Arc<Shared>,
    stats: Arc<NodeStats>,
    thread: Option<JoinHandle<Result<(), MeshError>>>,
}

impl Producer {
    /// Starts a producer of `topic`: of a new partition, or, with
    /// `producer.state_dir`, of the partition that directory holds, resumed
    /// from its spool.
    pub fn new(
        topic: &str,
        cfg: &ProducerConfig,
        mesh: &MeshConfig,
    ) -> Result<Producer, ProducerError> {
        validate_topic(topic).map_err(ProducerError::Topic)?;
        cfg.validate()?;
        if cfg.state_dir.is_empty() {
            let rec = Recovered {
                new_partition: true,
                ..Recovered::default()
            };
            return Self::start(dafka_node::new_node_id(), topic, cfg, mesh, None, rec);
        }
        let (spool, id, rec) = Spool::open(
            cfg.state_dir.as_ref(),
            topic,
            cfg.partition_id()?,
            dafka_node::new_node_id,
            cfg.spool_sync(),
        )?;
        if !rec.records.is_empty() {
            tracing::info!(partition = %id, records = rec.records.len(), next = rec.next_offset, "resuming from the spool");
        }
        Self::start(id, topic, cfg, mesh, Some(spool), rec)
    }

    fn start(
        id: NodeId,
        topic: &str,
        cfg: &ProducerConfig,
        mesh: &MeshConfig,
        spool: Option<Spool>,
        rec: Recovered,
    ) -> Result<Producer, ProducerError> {
        validate_topic(topic).map_err(ProducerError::Topic)?;
        cfg.validate()?;
        mesh.validate()?;
        let next = rec.next_offset;
        let ctx = zmq::Context::new();
        let mut net = Mesh::new(&ctx, id, Role::Producer, mesh, |r| {
            matches!(r, Role::Store | Role::Consumer)
        })?;
        let (waker, wake) = wake_pair(&ctx)?;
        let (tx, rx) = bounded(16_384);
        let (delivered, deliveries) = bounded(1024);
        let shared = Arc::new(Shared::default());
        let acked = rec.next_offset - rec.records.len() as u64;
        if let Ok(mut p) = shared.progress.lock() {
            p.acked = acked;
        }
        let stats = net.stats();
        // A partition whose history is neither new nor in the spool: only
        // the stores know where it stands.
        let numbered = rec.new_partition || rec.owns_history;
        let core = if numbered {
            ProducerCore::resume(id, topic.to_string(), cfg.clone(), rec.records, next)
        } else {
            tracing::info!(partition = %id, "asking the stores where the partition stands");
            ProducerCore::claim(id, topic.to_string(), cfg.clone(), Instant::now())
        };
        let writer = Arc::new(Mutex::new(Writer {
            next,
            spool,
            numbered,
        }));
        let spool_tick = match cfg.spool_sync() {
            SpoolSync::Every(d) => Some(d),
            _ => None,
        };
        let mut driver = Driver {
            core,
            rx,
            delivered,
            reported: acked,
            shared: shared.clone(),
            close_timeout: Duration::from_millis(cfg.close_timeout),
            closing: false,
            writer: writer.clone(),
            spool_tick,
            next_spool_sync: Instant::now(),
            claim_reported: false,
        };
        let thread = std::thread::Builder::new()
            .name("dafka-producer".into())
            .spawn(move || {
                let _ctx = ctx;
                let res = run(&mut net, &wake, &mut driver);
                driver.finish();
                res
            })
            .map_err(|_| ProducerError::Stopped)?;
        Ok(Producer {
            id,
            topic: topic.to_string(),
            tx,
            waker,
            next: writer,
            deliveries,
            min_acks: cfg.min_acks,
            claim_timeout: Duration::from_millis(cfg.claim_timeout),
            shared,
            stats,
            thread: Some(thread),
        })
    }

    /// The partition this producer owns (its node id).
    pub fn partition(&self) -> NodeId {
        self.id
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Traffic counters.
    pub fn stats(&self) -> Arc<NodeStats> {
        self.stats.clone()
    }

    /// Waits up to `timeout` until this node is connected to at least `n`
    /// peers (stores and consumers); says whether it is. Publishing or reading works
    /// without it: this is for applications that want to know the mesh is
    /// there before they start, or to say that it is not.
    pub fn wait_for_peers(&self, n: usize, timeout: Duration) -> bool {
        self.stats.wait_for_peers(n as u64, timeout)
    }

    /// Publishes one record and returns its offset. Blocks while the
    /// producer holds `max_unacked_bytes` of unacknowledged records.
    /// Takes owned content (`Bytes`, `Vec<u8>`, `String`) as is and copies
    /// borrowed content (`&[u8]`, `&str`); see [`Content`].
    pub fn publish(&self, content: impl Content) -> Result<u64, ProducerError> {
        let content = content.into_bytes();
        if content.len() > MAX_CONTENT_LEN {
            return Err(ProducerError::TooLarge(content.len()));
        }
        // Offsets are handed out in channel order, so take both together.
        let mut w = self.next.lock().map_err(|_| ProducerError::Stopped)?;
        if !w.numbered {
            self.await_claim(&mut w)?;
        }
        let offset = w.next;
        if let Some(spool) = w.spool.as_mut() {
            spool.append(offset, &content, self.acked())?;
        }
        self.tx
            .send(Command::Publish(content))
            .map_err(|_| ProducerError::Stopped)?;
        // Pairs with the fence in `before_wait`: either the driver sees the
        // record in the channel, or we see it parked and wake it.
        fence(SeqCst);
        if self.shared.parked.swap(false, SeqCst) {
            self.waker.wake();
        }
        w.next += 1;
        Ok(offset)
    }

    /// Waits until the driver has learnt from the stores where a taken-over
    /// partition stands, and numbers from there.
    fn await_claim(&self, w: &mut Writer) -> Result<(), ProducerError> {
        // The driver settles the claim by its own deadline; the margin only
        // guards against a driver that stopped.
        let limit = self.claim_timeout + Duration::from_secs(5);
        let done = |p: &Progress| p.claim.is_some() || p.finished;
        let outcome = self.wait(limit, done).and_then(|p| p.claim);
        match outcome {
            Some(ClaimOutcome::Start(next)) => {
                if let Some(spool) = w.spool.as_mut() {
                    spool.begin_at(next)?;
                }
                w.next = next;
                w.numbered = true;
                Ok(())
            }
            Some(ClaimOutcome::Failed(heard)) => Err(ProducerError::Claim {
                partition: self.id,
                heard,
                min_acks: self.min_acks,
                timeout_ms: self.claim_timeout.as_millis() as u64,
            }),
            _ => Err(ProducerError::Stopped),
        }
    }

    /// Every offset below this is ACKed by `min_acks` stores.
    pub fn acked(&self) -> u64 {
        self.shared.progress.lock().map(|p| p.acked).unwrap_or(0)
    }

    /// Delivery reports: each value says every offset below it is now
    /// ACKed by `min_acks` stores (a Kafka delivery report, for a whole
    /// prefix at once). Values only grow; a reader that falls behind gets
    /// fewer, larger steps, never a gap. Use with `select!` or `recv`.
    pub fn deliveries(&self) -> &Receiver<u64> {
        &self.deliveries
    }

    fn published(&self) -> u64 {
        self.next.lock().map(|w| w.next).unwrap_or(0)
    }

    /// Waits until every record published so far is ACKed by `min_acks`
    /// stores. Returns whether that happened within `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        let target = self.published();
        self.wait(timeout, |p| p.acked >= target || p.finished)
            .is_some_and(|p| p.acked >= target)
    }

    /// Waits until at most `n` records await a quorum of ACKs (flow control
    /// for applications that bound their in-flight records). Returns whether
    /// that happened within `timeout`.
    pub fn wait_unacked_at_most(&self, n: u64, timeout: Duration) -> bool {
        // Count from what this handle published, so records still on their
        // way to the driver count as unacknowledged too.
        let published = self.published();
        let ok = |p: &Progress| published.saturating_sub(p.acked) <= n;
        self.wait(timeout, |p| ok(p) || p.finished)
            .is_some_and(|p| ok(&p))
    }

    /// Records published but not yet ACKed by a quorum.
    pub fn unacked(&self) -> u64 {
        // Count from what this handle published, like wait_unacked_at_most:
        // the driver's report can lag records still on their way to it.
        self.published().saturating_sub(self.acked())
    }

    fn wait(&self, timeout: Duration, done: impl Fn(&Progress) -> bool) -> Option<Progress> {
        let guard = self.shared.progress.lock().ok()?;
        let (p, _) = self
            .shared
            .changed
            .wait_timeout_while(guard, timeout, |p| !done(p))
            .ok()?;
        Some(Progress {
            acked: p.acked,
            unacked: p.unacked,
            finished: p.finished,
            claim: p.claim.clone(),
        })
    }

    /// Closes the producer: waits up to `producer.close_timeout` for
    /// outstanding ACKs, then stops. Says how many records were left.
    pub fn close(mut self) -> CloseReport {
        self.shutdown()
    }

    fn shutdown(&mut self) -> CloseReport {
        let published = self.published();
        self.shared.closing.store(true, SeqCst);
        let _ = self.tx.send(Command::Close);
        self.waker.wake();
        if let Some(t) = self.thread.take() {
            if let Ok(Err(e)) = t.join() {
                tracing::error!(error = %e, "producer stopped on a socket error");
            }
        }
        let unacked = self
            .shared
            .progress
            .lock()
            .map(|p| p.unacked)
            .unwrap_or(published);
        let acked = self.acked();
        // A spool whose first offset was never settled (a taken-over
        // partition that published nothing) must stay unnumbered: an
        // `acked` mark of 0 would make the next start own the partition
        // from offset 0.
        let spool = self
            .next
            .lock()
            .ok()
            .and_then(|mut w| w.numbered.then(|| w.spool.take()).flatten());
        if let Some(mut spool) = spool {
            if let Err(e) = spool.forget(acked) {
                tracing::warn!(error = %e, "could not trim the spool");
            }
        }
        CloseReport { published, unacked }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown();
        }
    }
}

struct Driver {
    core: ProducerCore,
    rx: Receiver<Command>,
    delivered: Sender<u64>,
    /// The last watermark put on `delivered`.
    reported: u64,
    shared: Arc<Shared>,
    close_timeout: Duration,
    closing: bool,
    /// The publishing side, for the spool's sync timer.
    writer: Arc<Mutex<Writer>>,
    /// How often the spool syncs under `spool_fsync = "interval"`.
    spool_tick: Option<Duration>,
    next_spool_sync: Instant,
    claim_reported: bool,
}

impl Driver {
    /// Syncs records appended since the last sync when the interval is up
    /// and no append came to do it. Skipped while a publisher holds the
    /// lock: its append syncs if due.
    fn sync_spool(&mut self, now: Instant) {
        let Some(every) = self.spool_tick else {
            return;
        };
        if now < self.next_spool_sync {
            return;
        }
        self.next_spool_sync = now + every;
        if let Ok(mut w) = self.writer.try_lock() {
            if let Some(Err(e)) = w.spool.as_mut().map(Spool::sync_due) {
                tracing::error!(error = %e, "cannot sync the spool");
            }
        }
    }

    /// Takes queued commands while there is room (or when closing, when
    /// everything queued must be published before the close).
    fn take_commands(&mut self, now: Instant) {
        while self.core.has_room() || self.shared.closing.load(SeqCst) {
            match self.rx.try_recv() {
                Ok(Command::Publish(c)) => {
                    self.core.publish(c, now);
                }
                Ok(Command::Close) if !self.closing => {
                    self.closing = true;
                    self.core.close(now, self.close_timeout);
                }
                Ok(Command::Close) => {}
                Err(_) => break,
            }
        }
    }

    fn report(&mut self) {
        let unacked = self.core.unacked() as u64;
        let acked = self.core.published() - unacked;
        if let Ok(mut p) = self.shared.progress.lock() {
            p.acked = acked;
            p.unacked = unacked;
            if p.claim.is_none() {
                p.claim = self.core.claim_outcome().cloned();
            }
        }
        self.shared.changed.notify_all();
        // A full channel (nobody reading) just means a later, larger step.
        if acked > self.reported && self.delivered.try_send(acked).is_ok() {
            self.reported = acked;
        }
    }

    fn finish(&mut self) {
        if let Ok(mut p) = self.shared.progress.lock() {
            p.finished = true;
        }
        self.report();
    }
}

impl Node for Driver {
    fn on_wake(&mut self, now: Instant) {
        self.take_commands(now);
    }

    fn on_event(&mut self, event: Event, now: Instant) {
        self.core.on_event(event, now);
    }

    fn on_batch_end(&mut self, now: Instant) {
        self.take_commands(now);
        self.report();
    }

    fn on_tick(&mut self, now: Instant) {
        self.core.on_tick(now);
        self.sync_spool(now);
        // A claim can end on a timer too: tell a waiting publisher now.
        if !self.claim_reported && self.core.claim_outcome().is_some() {
            self.claim_reported = true;
            self.report();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let spool = self.spool_tick.map(|_| self.next_spool_sync);
        [self.core.next_deadline(), spool]
            .into_iter()
            .flatten()
            .min()
    }

    fn drain(&mut self, out: &mut Vec<Output>) {
        self.core.drain(out);
    }

    fn is_done(&self) -> bool {
        self.core.is_done()
    }

    fn before_wait(&mut self) -> bool {
        self.shared.parked.store(true, SeqCst);
        fence(SeqCst);
        let room = self.core.has_room() || self.shared.closing.load(SeqCst);
        let work = room && !self.rx.is_empty();
        if work {
            self.shared.parked.store(false, SeqCst);
        }
        work
    }
}
