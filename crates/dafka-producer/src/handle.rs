//! The application's side of a producer, and the driver thread behind it.

use crate::config::ProducerConfig;
use crate::core::{ClaimOutcome, ProducerCommand, ProducerCore, ProducerReport};
use crate::record::{ProducerRecord, RecordTooLarge};
use crate::spool::{Recovered, Spool, SpoolError, SpoolSync};
use crate::Content;
use crossbeam_channel::{bounded, Receiver, Sender};
use dafka_proto::{validate_topic, DecodeError, NodeId, Role};
use dafka_protocol::tuning::{DELIVERY_REPORTS, PUBLISH_QUEUE};
use dafka_protocol::{ConfigError, MeshConfig, NodeStats};
use dafka_transport::{NodeSpec, Port, Running, StartError};
use std::convert::Infallible;
use std::sync::atomic::{fence, AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
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
    #[error(transparent)]
    TooLarge(#[from] RecordTooLarge),
    /// The node could not start (a socket, or its thread).
    #[error(transparent)]
    Start(#[from] StartError),
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

fn acked(shared: &Shared) -> u64 {
    shared.progress.lock().map(|p| p.acked).unwrap_or(0)
}

fn published(next: &Mutex<Writer>) -> u64 {
    next.lock().map(|w| w.next).unwrap_or(0)
}

/// Where a producer stands, readable from any thread while the producer
/// works ([`Producer::probe`]).
#[derive(Clone)]
pub struct ProducerProbe {
    topic: String,
    partition: NodeId,
    next: Arc<Mutex<Writer>>,
    shared: Arc<Shared>,
}

impl ProducerProbe {
    /// The producer's topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Its partition.
    pub fn partition(&self) -> NodeId {
        self.partition
    }

    /// The next offset it will give a record: records published so far.
    pub fn published(&self) -> u64 {
        published(&self.next)
    }

    /// Every offset below this is ACKed by `min_acks` stores.
    pub fn acked(&self) -> u64 {
        acked(&self.shared)
    }
}

/// A producer of one partition of one topic.
///
/// ```no_run
/// use dafka_producer::{Producer, ProducerConfig};
/// use dafka_protocol::MeshConfig;
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
    tx: Sender<ProducerCommand>,
    next: Arc<Mutex<Writer>>,
    deliveries: Receiver<u64>,
    min_acks: usize,
    claim_timeout: Duration,
    close_timeout: Duration,
    shared: Arc<Shared>,
    running: Running,
    closed: bool,
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
        // Checked once, before anything is opened.
        validate_topic(topic).map_err(ProducerError::Topic)?;
        cfg.validate()?;
        if cfg.partitions != 1 {
            let why = "a Producer writes one partition: use TopicProducer for several";
            return Err(ConfigError::new("producer.partitions", why).into());
        }
        mesh.validate()?;
        if cfg.state_dir.is_empty() {
            let rec = Recovered {
                new_partition: true,
                ..Recovered::default()
            };
            return Self::start(dafka_protocol::new_node_id(), topic, cfg, mesh, None, rec);
        }
        let (spool, id, rec) = Spool::open(
            cfg.state_dir.as_ref(),
            topic,
            cfg.partition_id()?,
            dafka_protocol::new_node_id,
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
        let next = rec.next_offset;
        let (tx, rx) = bounded(PUBLISH_QUEUE);
        let (delivered, deliveries) = bounded(DELIVERY_REPORTS);
        let shared = Arc::new(Shared::default());
        let acked = rec.next_offset - rec.records.len() as u64;
        if let Ok(mut p) = shared.progress.lock() {
            p.acked = acked;
        }
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
        let port = ProducerPort {
            rx,
            delivered,
            reported: acked,
            shared: shared.clone(),
            writer: writer.clone(),
            spool_tick,
            next_spool_sync: Instant::now(),
        };
        let spec = NodeSpec {
            name: "dafka-producer",
            id,
            role: Role::Producer,
            wants: |r| matches!(r, Role::Store | Role::Consumer),
            mesh,
            show_discovery: false,
        };
        let running = dafka_transport::spawn(spec, core, port)?;
        Ok(Producer {
            id,
            topic: topic.to_string(),
            tx,
            next: writer,
            deliveries,
            min_acks: cfg.min_acks,
            claim_timeout: Duration::from_millis(cfg.claim_timeout),
            close_timeout: Duration::from_millis(cfg.close_timeout),
            shared,
            running,
            closed: false,
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
        self.running.stats()
    }

    /// Waits up to `timeout` until this node is connected to at least `n`
    /// peers (stores and consumers); says whether it is. Publishing or reading works
    /// without it: this is for applications that want to know the mesh is
    /// there before they start, or to say that it is not.
    pub fn wait_for_peers(&self, n: usize, timeout: Duration) -> bool {
        self.running.stats().wait_for_peers(n as u64, timeout)
    }

    /// Publishes one record with `content` (and no key or headers; stamped
    /// with the wall clock) and returns its offset. Blocks while the
    /// producer holds `max_unacked_bytes` of unacknowledged records.
    /// Takes owned content (`Bytes`, `Vec<u8>`, `String`) as is and copies
    /// borrowed content (`&[u8]`, `&str`); see [`Content`].
    pub fn publish(&self, content: impl Content) -> Result<u64, ProducerError> {
        self.send(ProducerRecord::new(content))
    }

    /// Publishes a record with its key, headers and timestamp (the wall
    /// clock if it has none) and returns its offset; blocks like
    /// [`Producer::publish`]. Consumers and stores get every field as given.
    pub fn send(&self, record: ProducerRecord) -> Result<u64, ProducerError> {
        record.check()?;
        let record = record.stamped();
        // Offsets are handed out in channel order, so take both together.
        let mut w = self.next.lock().map_err(|_| ProducerError::Stopped)?;
        if !w.numbered {
            self.await_claim(&mut w)?;
        }
        let offset = w.next;
        if let Some(spool) = w.spool.as_mut() {
            spool.append(offset, &record, self.acked())?;
        }
        self.tx
            .send(ProducerCommand::Publish { offset, record })
            .map_err(|_| ProducerError::Stopped)?;
        // Pairs with the fence in `before_wait`: either the driver sees the
        // record in the channel, or we see it parked and wake it.
        fence(SeqCst);
        if self.shared.parked.swap(false, SeqCst) {
            self.running.wake();
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
        acked(&self.shared)
    }

    /// A handle any thread may keep to read this producer's progress (for
    /// metrics), without holding the producer itself.
    pub fn probe(&self) -> ProducerProbe {
        ProducerProbe {
            topic: self.topic.clone(),
            partition: self.id,
            next: self.next.clone(),
            shared: self.shared.clone(),
        }
    }

    /// Delivery reports: each value says every offset below it is now
    /// ACKed by `min_acks` stores (a Kafka delivery report, for a whole
    /// prefix at once). Values only grow; a reader that falls behind gets
    /// fewer, larger steps, never a gap. Use with `select!` or `recv`.
    pub fn deliveries(&self) -> &Receiver<u64> {
        &self.deliveries
    }

    fn published(&self) -> u64 {
        published(&self.next)
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
        self.closed = true;
        let published = self.published();
        self.shared.closing.store(true, SeqCst);
        let timeout = self.close_timeout;
        let _ = self.tx.send(ProducerCommand::Close { timeout });
        self.running.wake();
        self.running.join();
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
        if !self.closed {
            self.shutdown();
        }
    }
}

/// The producer's side of the driver: the publish channel, progress for
/// waiting callers, delivery reports, and the spool's sync timer.
struct ProducerPort {
    rx: Receiver<ProducerCommand>,
    delivered: Sender<u64>,
    /// The last watermark put on `delivered`.
    reported: u64,
    shared: Arc<Shared>,
    /// The publishing side, for the spool's sync timer.
    writer: Arc<Mutex<Writer>>,
    /// How often the spool syncs under `spool_fsync = "interval"`.
    spool_tick: Option<Duration>,
    next_spool_sync: Instant,
}

impl ProducerPort {
    fn progress(&mut self, acked: u64, unacked: u64) {
        if let Ok(mut p) = self.shared.progress.lock() {
            p.acked = acked;
            p.unacked = unacked;
        }
        self.shared.changed.notify_all();
        // A full channel (nobody reading) just means a later, larger step.
        if acked > self.reported && self.delivered.try_send(acked).is_ok() {
            self.reported = acked;
        }
    }
}

impl Port<ProducerCore> for ProducerPort {
    /// Over its memory bound the producer takes no publish, except while
    /// closing: everything queued before the close goes out first.
    fn command(&mut self, accepts: bool) -> Option<ProducerCommand> {
        if !accepts && !self.shared.closing.load(SeqCst) {
            return None;
        }
        self.rx.try_recv().ok()
    }

    fn deliver(&mut self, report: ProducerReport) {
        match report {
            ProducerReport::Progress { acked, unacked } => self.progress(acked, unacked),
            ProducerReport::Claim(outcome) => {
                if let Ok(mut p) = self.shared.progress.lock() {
                    p.claim = Some(outcome);
                }
                self.shared.changed.notify_all();
            }
        }
    }

    fn persist(&mut self, nothing: Infallible) -> Option<Infallible> {
        match nothing {}
    }

    fn next_timeout(&self) -> Option<Instant> {
        self.spool_tick.map(|_| self.next_spool_sync)
    }

    /// Syncs records appended since the last sync when the interval is up
    /// and no append came to do it. Skipped while a publisher holds the
    /// lock: its append syncs if due.
    fn on_timeout(&mut self, now: Instant) {
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

    fn before_wait(&mut self, accepts: bool) -> bool {
        self.shared.parked.store(true, SeqCst);
        fence(SeqCst);
        let room = accepts || self.shared.closing.load(SeqCst);
        let work = room && !self.rx.is_empty();
        if work {
            self.shared.parked.store(false, SeqCst);
        }
        work
    }

    fn finish(&mut self) {
        if let Ok(mut p) = self.shared.progress.lock() {
            p.finished = true;
        }
        self.shared.changed.notify_all();
    }
}
