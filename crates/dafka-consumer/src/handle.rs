//! The application's side of a consumer, and the driver thread behind it.

use crate::config::ConsumerConfig;
use crate::core::{ConsumerCommand, ConsumerCore, ConsumerDelivery, Gap};
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use dafka_proto::{validate_topic, DecodeError, NodeId, Record, Role};
use dafka_protocol::tuning::{BEHIND_RETRY, CONSUMER_QUEUE_BYTES, RECORD_OVERHEAD};
use dafka_protocol::{running_average, ConfigError, MeshConfig, NodeStats};
use dafka_transport::{NodeSpec, Port, Running, StartError};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
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
    /// The node could not start (a socket, or its thread).
    #[error(transparent)]
    Start(#[from] StartError),
    /// The consumer's thread has stopped.
    #[error("the consumer has stopped")]
    Stopped,
}

/// A command, with where to answer it when it has an answer.
enum Command {
    Plain(ConsumerCommand),
    Gaps(Sender<Vec<Gap>>),
}

/// A consumer of one or more topics.
///
/// ```no_run
/// use dafka_consumer::{Consumer, ConsumerConfig, OffsetReset};
/// use dafka_protocol::MeshConfig;
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
    records: Receiver<Record>,
    running: Running,
}

impl Consumer {
    /// Starts a consumer with no subscriptions.
    pub fn new(cfg: &ConsumerConfig, mesh: &MeshConfig) -> Result<Consumer, ConsumerError> {
        cfg.validate()?;
        mesh.validate()?;
        let id = dafka_protocol::new_node_id();
        let (tx, rx) = unbounded();
        // The one buffer between the driver and the application. Unbounded
        // as a channel; the port keeps it near `queue` records and
        // CONSUMER_QUEUE_BYTES by not reading the mesh while it is full.
        let (rec_tx, records) = unbounded();
        let port = ConsumerPort {
            rx,
            out: rec_tx,
            replies: VecDeque::new(),
            avg_size: 0,
            queue: cfg.queue,
            closed: false,
        };
        let core = ConsumerCore::new(id, cfg.clone(), Instant::now());
        let spec = NodeSpec {
            name: "dafka-consumer",
            id,
            role: Role::Consumer,
            wants: |r| matches!(r, Role::Producer | Role::Store),
            mesh,
        };
        let running = dafka_transport::spawn(spec, core, port)?;
        Ok(Consumer {
            id,
            tx,
            records,
            running,
        })
    }

    /// The consumer's node id (its address on the mesh).
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Traffic counters.
    pub fn stats(&self) -> Arc<NodeStats> {
        self.running.stats()
    }

    /// Waits up to `timeout` until this node is connected to at least `n`
    /// peers (producers and stores); says whether it is. Publishing or reading works
    /// without it: this is for applications that want to know the mesh is
    /// there before they start, or to say that it is not.
    pub fn wait_for_peers(&self, n: usize, timeout: Duration) -> bool {
        self.running.stats().wait_for_peers(n as u64, timeout)
    }

    /// Subscribes to a topic.
    pub fn subscribe(&self, topic: &str) -> Result<(), ConsumerError> {
        validate_topic(topic).map_err(ConsumerError::Topic)?;
        self.command(Command::Plain(ConsumerCommand::Subscribe(
            topic.to_string(),
        )))
    }

    /// Unsubscribes from a topic.
    pub fn unsubscribe(&self, topic: &str) -> Result<(), ConsumerError> {
        self.command(Command::Plain(ConsumerCommand::Unsubscribe(
            topic.to_string(),
        )))
    }

    fn command(&self, c: Command) -> Result<(), ConsumerError> {
        self.tx.send(c).map_err(|_| ConsumerError::Stopped)?;
        self.running.wake();
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
        let _ = self.tx.send(Command::Plain(ConsumerCommand::Close));
        self.running.wake();
        self.running.join();
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The consumer's side of the driver: commands in, records out, with the
/// records channel as the only buffer between the two.
struct ConsumerPort {
    rx: Receiver<Command>,
    out: Sender<Record>,
    /// Callers waiting for a gap report, in the order they asked.
    replies: VecDeque<Sender<Vec<Gap>>>,
    /// Running average of a record's cost (content plus overhead).
    avg_size: usize,
    queue: usize,
    /// The application dropped its receiver: nobody is reading.
    closed: bool,
}

impl Port<ConsumerCore> for ConsumerPort {
    fn command(&mut self, _accepts: bool) -> Option<ConsumerCommand> {
        match self.rx.try_recv().ok()? {
            Command::Plain(c) => Some(c),
            Command::Gaps(reply) => {
                self.replies.push_back(reply);
                Some(ConsumerCommand::Gaps)
            }
        }
    }

    fn deliver(&mut self, d: ConsumerDelivery) {
        match d {
            ConsumerDelivery::Record(r) => {
                self.avg_size = running_average(self.avg_size, r.content.len() + RECORD_OVERHEAD);
                self.closed |= self.out.send(r).is_err();
            }
            ConsumerDelivery::Gaps(g) => {
                if let Some(reply) = self.replies.pop_front() {
                    let _ = reply.send(g);
                }
            }
        }
    }

    fn persist(&mut self, nothing: Infallible) -> Infallible {
        match nothing {}
    }

    /// Room while the channel holds fewer than `queue` records and about
    /// CONSUMER_QUEUE_BYTES (one turn may add up to what one turn reads).
    fn has_room(&self) -> bool {
        let held = self.out.len();
        held < self.queue && held.saturating_mul(self.avg_size) < CONSUMER_QUEUE_BYTES
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    /// While the application is behind, look again soon for room: it
    /// takes records without telling the driver.
    fn next_timeout(&self) -> Option<Instant> {
        (!self.has_room()).then(|| Instant::now() + BEHIND_RETRY)
    }
}
