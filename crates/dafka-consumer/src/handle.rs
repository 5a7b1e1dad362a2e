//! The application's side of a consumer, and the driver thread behind it.

use crate::config::ConsumerConfig;
use crate::core::{ConsumerCore, Gap};
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use dafka_node::{
    run, running_average, wake_pair, ConfigError, Event, Mesh, MeshConfig, MeshError, Node,
    NodeStats, Output, Waker,
};
use dafka_proto::{validate_topic, DecodeError, NodeId, Record, Role};
use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a consumer call failed.
#[derive(Debug, Error)]
pub enum ConsumerError {
    /// The config does not validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The topic name is not valid.
    #[error("invalid topic: {0}")]
    Topic(DecodeError),
    /// A socket could not be set up.
    #[error(transparent)]
    Mesh(#[from] MeshError),
    /// The consumer's thread has stopped.
    #[error("the consumer has stopped")]
    Stopped,
}

enum Command {
    Subscribe(String),
    Unsubscribe(String),
    Gaps(Sender<Vec<Gap>>),
    Close,
}

/// A consumer of one or more topics.
///
/// ```no_run
/// use dafka_consumer::{Consumer, ConsumerConfig, OffsetReset};
/// use dafka_node::MeshConfig;
/// let cfg = ConsumerConfig { offset_reset: OffsetReset::Earliest, ..Default::default() };
/// let c = Consumer::new(&cfg, &MeshConfig::default())?;
/// c.subscribe("hello")?;
/// while let Ok(r) = c.recv_timeout(std::time::Duration::from_secs(1)) {
///     println!("{}", String::from_utf8_lossy(&r.content));
/// }
/// # Ok::<(), dafka_consumer::ConsumerError>(())
/// ```
pub struct Consumer {
    id: NodeId,
    tx: Sender<Command>,
    waker: Waker,
    records: Receiver<Record>,
    stats: Arc<NodeStats>,
    thread: Option<JoinHandle<Result<(), MeshError>>>,
}

impl Consumer {
    /// Starts a consumer with no subscriptions.
    pub fn new(cfg: &ConsumerConfig, mesh: &MeshConfig) -> Result<Consumer, ConsumerError> {
        cfg.validate()?;
        mesh.validate()?;
        let id = dafka_node::new_node_id();
        let ctx = zmq::Context::new();
        let mut net = Mesh::new(&ctx, id, Role::Consumer, mesh, |r| {
            matches!(r, Role::Producer | Role::Store)
        })?;
        let (waker, wake) = wake_pair(&ctx)?;
        let (tx, rx) = unbounded();
        let (rec_tx, records) = bounded(cfg.queue);
        let stats = net.stats();
        let mut driver = Driver {
            core: ConsumerCore::new(id, cfg.clone(), Instant::now()),
            rx,
            out: rec_tx,
            pending: VecDeque::new(),
            pending_bytes: 0,
            avg_size: 0,
            queue: cfg.queue,
            done: false,
        };
        let thread = std::thread::Builder::new()
            .name("dafka-consumer".into())
            .spawn(move || {
                let _ctx = ctx;
                run(&mut net, &wake, &mut driver)
            })
            .map_err(|_| ConsumerError::Stopped)?;
        Ok(Consumer {
            id,
            tx,
            waker,
            records,
            stats,
            thread: Some(thread),
        })
    }

    /// The consumer's node id (its address on the mesh).
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Traffic counters.
    pub fn stats(&self) -> Arc<NodeStats> {
        self.stats.clone()
    }

    /// Waits up to `timeout` until this node is connected to at least `n`
    /// peers (producers and stores); says whether it is. Publishing or reading works
    /// without it: this is for applications that want to know the mesh is
    /// there before they start, or to say that it is not.
    pub fn wait_for_peers(&self, n: usize, timeout: Duration) -> bool {
        self.stats.wait_for_peers(n as u64, timeout)
    }

    /// Subscribes to a topic.
    pub fn subscribe(&self, topic: &str) -> Result<(), ConsumerError> {
        validate_topic(topic).map_err(ConsumerError::Topic)?;
        self.command(Command::Subscribe(topic.to_string()))
    }

    /// Unsubscribes from a topic.
    pub fn unsubscribe(&self, topic: &str) -> Result<(), ConsumerError> {
        self.command(Command::Unsubscribe(topic.to_string()))
    }

    fn command(&self, c: Command) -> Result<(), ConsumerError> {
        self.tx.send(c).map_err(|_| ConsumerError::Stopped)?;
        self.waker.wake();
        Ok(())
    }

    /// Records known to exist (from HEADs, DIRECT-HEADs or later records)
    /// and not delivered yet, per partition, with the reason a store gave if
    /// it cannot read them. Empty when the consumer is caught up with
    /// everything it has heard of. `None` if the consumer has stopped or did
    /// not answer within `timeout`.
    pub fn gaps(&self, timeout: Duration) -> Option<Vec<Gap>> {
        let (tx, rx) = bounded(1);
        self.command(Command::Gaps(tx)).ok()?;
        rx.recv_timeout(timeout).ok()
    }

    /// Waits for the next record; `None` once the consumer has stopped.
    pub fn recv(&self) -> Option<Record> {
        self.records.recv().ok()
    }

    /// Waits up to `timeout` for the next record. The error says whether
    /// none came in time (`Timeout`) or the consumer has stopped
    /// (`Disconnected`).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Record, RecvTimeoutError> {
        self.records.recv_timeout(timeout)
    }

    /// The channel records arrive on, for `crossbeam_channel::select!`.
    pub fn records(&self) -> &Receiver<Record> {
        &self.records
    }

    /// Stops the consumer.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.tx.send(Command::Close);
        self.waker.wake();
        if let Some(t) = self.thread.take() {
            if let Ok(Err(e)) = t.join() {
                tracing::error!(error = %e, "consumer stopped on a socket error");
            }
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Content bytes (plus [`RECORD_OVERHEAD`] each) held for a slow application
/// in the channel and, again, in the driver's own queue, about: `queue`
/// bounds records, this bounds memory when records are large.
const QUEUE_BYTES: usize = 32 << 20;
/// What a held record costs besides its content.
const RECORD_OVERHEAD: usize = 256;

struct Driver {
    core: ConsumerCore,
    rx: Receiver<Command>,
    out: Sender<Record>,
    /// Records ready but not yet taken by the application.
    pending: VecDeque<Record>,
    /// Content bytes in `pending`.
    pending_bytes: usize,
    /// Running average record size, to bound the channel in bytes.
    avg_size: usize,
    queue: usize,
    done: bool,
}

impl Driver {
    fn hand_over(&mut self) {
        for r in self.core.take_ready() {
            let len = r.content.len() + RECORD_OVERHEAD;
            self.avg_size = running_average(self.avg_size, len);
            self.pending_bytes += len;
            self.pending.push_back(r);
        }
        while let Some(r) = self.pending.pop_front() {
            // The channel is bounded in records; keep it near a byte budget
            // too, so large records waiting for the application stay
            // within QUEUE_BYTES (one record always fits).
            let queued = self.out.len();
            if queued > 0 && (queued + 1) * self.avg_size > QUEUE_BYTES {
                self.pending.push_front(r);
                break;
            }
            let len = r.content.len() + RECORD_OVERHEAD;
            match self.out.try_send(r) {
                Ok(()) => self.pending_bytes -= len,
                Err(TrySendError::Full(r)) => {
                    self.pending.push_front(r);
                    break;
                }
                // The application dropped the receiver: nobody is reading.
                Err(TrySendError::Disconnected(_)) => {
                    self.pending.clear();
                    self.pending_bytes = 0;
                    self.done = true;
                }
            }
        }
    }
}

impl Node for Driver {
    fn on_wake(&mut self, _now: Instant) {
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Command::Subscribe(t) => self.core.subscribe(&t),
                Command::Unsubscribe(t) => self.core.unsubscribe(&t),
                Command::Gaps(reply) => {
                    let _ = reply.send(self.core.gaps());
                }
                Command::Close => self.done = true,
            }
        }
    }

    fn on_event(&mut self, event: Event, now: Instant) {
        self.core.on_event(event, now);
    }

    fn on_batch_end(&mut self, _now: Instant) {
        self.hand_over();
    }

    fn on_tick(&mut self, now: Instant) {
        self.core.on_tick(now);
        self.hand_over();
    }

    fn next_deadline(&self) -> Option<Instant> {
        // While the application is behind, look again soon.
        let soon = (!self.pending.is_empty()).then(|| Instant::now() + Duration::from_millis(2));
        Some(soon.map_or(self.core.next_deadline(), |s| {
            s.min(self.core.next_deadline())
        }))
    }

    fn drain(&mut self, out: &mut Vec<Output>) {
        self.core.drain(out);
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn wants_input(&self) -> bool {
        self.pending.len() < self.queue && self.pending_bytes < QUEUE_BYTES
    }
}
