//! The application's side of a consumer, and the driver thread behind it.

use crate::commits::Commits;
use crate::config::ConsumerConfig;
use crate::core::{
    ConsumerCommand, ConsumerCore, ConsumerDelivery, Gap, GroupEvent, PartitionPosition,
};
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use dafka_proto::{validate_topic, DecodeError, NodeId, Record, Role};
use dafka_protocol::tuning::{BEHIND_RETRY, CONSUMER_QUEUE_BYTES, RECORD_OVERHEAD};
use dafka_protocol::{running_average, ConfigError, MeshConfig, NodeStats};
use dafka_transport::{NodeSpec, Port, Running, StartError};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// How long closing a named consumer waits for its last commit.
const CLOSE_COMMIT_WAIT: Duration = Duration::from_secs(5);

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
    /// A commit needs `consumer.name`.
    #[error("commit needs a consumer name (consumer.name)")]
    NoName,
    /// A commit for a partition this consumer never delivered a record of.
    #[error("commit for partition {partition} of {topic}, which this consumer never read")]
    NotRead {
        /// The topic.
        topic: String,
        /// The partition.
        partition: NodeId,
    },
    /// The stores did not acknowledge a commit in time.
    #[error("{commit_acks} store(s) did not acknowledge the commit within {timeout_ms} ms")]
    CommitTimeout {
        /// Stores needed (`consumer.commit_acks`).
        commit_acks: usize,
        /// How long it waited.
        timeout_ms: u64,
    },
}

/// A command, with where to answer it when it has an answer.
enum Command {
    Plain(ConsumerCommand),
    Gaps(Sender<Vec<Gap>>),
    Positions(Sender<Vec<PartitionPosition>>),
    AtEnd(Sender<bool>),
}

/// Asks a running consumer where its partitions stand, from any thread.
/// It does not wake the consumer: the answer comes on its next turn (at
/// the latest its next timer, a fraction of a second), which is soon
/// enough for metrics and keeps the consumer's wake-up socket its own.
#[derive(Clone, Debug)]
pub struct ConsumerProbe {
    tx: Sender<Command>,
}

impl ConsumerProbe {
    /// As [`Consumer::positions`]; `None` once the consumer stopped.
    pub fn positions(&self, timeout: Duration) -> Option<Vec<PartitionPosition>> {
        let (tx, rx) = bounded(1);
        self.tx.send(Command::Positions(tx)).ok()?;
        rx.recv_timeout(timeout).ok()
    }
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
    named: bool,
    commit_acks: usize,
    /// A record counts as processed when the next is taken.
    auto: bool,
    commits: Arc<Commits>,
    events: Receiver<GroupEvent>,
    closed: bool,
}

impl Consumer {
    /// Starts a consumer with no subscriptions.
    pub fn new(cfg: &ConsumerConfig, mesh: &MeshConfig) -> Result<Consumer, ConsumerError> {
        cfg.validate()?;
        mesh.validate()?;
        // A group commits under its own name.
        let cfg = &ConsumerConfig {
            name: cfg.position_name().to_string(),
            ..cfg.clone()
        };
        let (events_tx, events) = unbounded();
        let id = dafka_protocol::new_node_id();
        let (tx, rx) = unbounded();
        // The one buffer between the driver and the application. Unbounded
        // as a channel; the port keeps it near `queue` records and
        // CONSUMER_QUEUE_BYTES by not reading the mesh while it is full.
        let (rec_tx, records) = unbounded();
        let commits = Arc::new(Commits::default());
        let port = ConsumerPort {
            rx,
            out: rec_tx,
            commits: commits.clone(),
            replies: VecDeque::new(),
            position_replies: VecDeque::new(),
            end_replies: VecDeque::new(),
            named: !cfg.name.is_empty(),
            last_partition: None,
            avg_size: 0,
            queue: cfg.queue,
            closed: false,
            events: events_tx,
            emptied: None,
        };
        let now = Instant::now();
        let mut core = ConsumerCore::new(id, cfg.clone(), now);
        // Until the towers' list arrives, or two beacon intervals pass, a
        // member owns nothing.
        // A partition won from a live member starts a beacon interval
        // later: that member has heard of the change, stopped and
        // committed by then.
        core.join_group(mesh.timeout(), 2 * mesh.interval(), mesh.interval(), now);
        let spec = NodeSpec {
            name: "dafka-consumer",
            id,
            role: Role::Consumer,
            wants: |r| matches!(r, Role::Producer | Role::Store),
            mesh,
            show_discovery: !cfg.group.is_empty(),
        };
        let running = dafka_transport::spawn(spec, core, port)?;
        let named = !cfg.name.is_empty();
        Ok(Consumer {
            id,
            tx,
            records,
            running,
            named,
            commit_acks: cfg.commit_acks,
            auto: named && cfg.auto_commit,
            commits,
            events,
            closed: false,
        })
    }

    /// Changes of the partitions this member of `consumer.group` reads
    /// (nothing outside a group): [`GroupEvent::Revoked`] comes once the
    /// partitions are lost, after what was processed of them was sent to
    /// be committed; [`GroupEvent::Assigned`] when new ones start, from the
    /// group's committed positions. Use with `select!` beside
    /// [`Consumer::records`].
    pub fn events(&self) -> &Receiver<GroupEvent> {
        &self.events
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

    /// Reads only `partition` of `topic`, from `offset` (`None`: where a
    /// committed position or `offset_reset` says). An offset past the end
    /// waits for the records to come; one the stores do not hold is
    /// fetched from the producer while it keeps it.
    pub fn assign(
        &self,
        topic: &str,
        partition: NodeId,
        offset: Option<u64>,
    ) -> Result<(), ConsumerError> {
        validate_topic(topic).map_err(ConsumerError::Topic)?;
        self.command(Command::Plain(ConsumerCommand::Assign {
            topic: topic.to_string(),
            partition,
            offset,
        }))
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
    /// With a name and `auto_commit`, taking a record counts the one taken
    /// before as processed.
    pub fn recv(&self) -> Option<Record> {
        let r = self.records.recv().ok()?;
        self.taken(&r);
        Some(r)
    }

    /// Waits up to `timeout` for the next record. The error says whether
    /// none came in time (`Timeout`) or the consumer has stopped
    /// (`Disconnected`). Auto-commit as [`Consumer::recv`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Record, RecvTimeoutError> {
        // A record already queued needs no deadline: computing one reads
        // the clock, which was a twentieth of a busy reader's time.
        let r = match self.records.try_recv() {
            Ok(r) => r,
            Err(_) => self.records.recv_timeout(timeout)?,
        };
        self.taken(&r);
        Ok(r)
    }

    /// Auto-commit: the record taken before `next` is processed.
    fn taken(&self, next: &Record) {
        if self.auto {
            self.commits.taken(next);
        }
    }

    /// Marks `record` (and everything before it in its partition) as
    /// processed: committed to the stores within `commit_interval`, or at
    /// once by [`Consumer::commit_sync`]. Needs a name.
    pub fn commit(&self, record: &Record) -> Result<(), ConsumerError> {
        if !self.named {
            return Err(ConsumerError::NoName);
        }
        if !self.commits.was_read(&record.topic, record.partition) {
            return Err(ConsumerError::NotRead {
                topic: record.topic.to_string(),
                partition: record.partition,
            });
        }
        self.commits
            .note(&record.topic, record.partition, record.offset + 1);
        Ok(())
    }

    /// Commits everything marked processed now and waits until
    /// `commit_acks` stores acknowledged it (and every commit before it).
    pub fn commit_sync(&self, timeout: Duration) -> Result<(), ConsumerError> {
        if !self.named {
            return Err(ConsumerError::NoName);
        }
        let ticket = self.commits.next_ticket.fetch_add(1, SeqCst);
        self.command(Command::Plain(ConsumerCommand::CommitNow(ticket)))?;
        let guard = self
            .commits
            .done
            .lock()
            .map_err(|_| ConsumerError::Stopped)?;
        let (mut done, _) = self
            .commits
            .changed
            .wait_timeout_while(guard, timeout, |d| !d.contains(&ticket))
            .map_err(|_| ConsumerError::Stopped)?;
        if done.remove(&ticket) {
            return Ok(());
        }
        Err(ConsumerError::CommitTimeout {
            commit_acks: self.commit_acks,
            timeout_ms: timeout.as_millis() as u64,
        })
    }

    /// Whether every record known to exist has been delivered (taken or
    /// waiting in [`Consumer::records`]): at least one store has told every
    /// partition of each topic it holds, and each partition is delivered up
    /// to its head. For scripts that stop at the end (`--exit-at-end`).
    /// `None` if the consumer stopped or did not answer within `timeout`.
    pub fn at_end(&self, timeout: Duration) -> Option<bool> {
        let (tx, rx) = bounded(1);
        self.command(Command::AtEnd(tx)).ok()?;
        rx.recv_timeout(timeout).ok()
    }

    /// Where every partition stands: the next offset to deliver, the
    /// committed position (with a name), the last offset known to exist,
    /// and so the lag. `None` if the consumer stopped or did not answer
    /// within `timeout`.
    pub fn positions(&self, timeout: Duration) -> Option<Vec<PartitionPosition>> {
        let (tx, rx) = bounded(1);
        self.command(Command::Positions(tx)).ok()?;
        rx.recv_timeout(timeout).ok()
    }

    /// A handle another thread (a metrics endpoint) may keep to ask where
    /// the partitions stand.
    pub fn probe(&self) -> ConsumerProbe {
        ConsumerProbe {
            tx: self.tx.clone(),
        }
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
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        if self.named {
            // The record taken last is done with by now: commit it with
            // the rest, and wait a little for the stores.
            self.commits.finish_taken();
            if let Err(e) = self.commit_sync(CLOSE_COMMIT_WAIT) {
                tracing::warn!(error = %e, "closing without every position committed; the next start may deliver some records again");
            }
        }
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
    commits: Arc<Commits>,
    /// Callers waiting for a gap report, in the order they asked.
    replies: VecDeque<Sender<Vec<Gap>>>,
    /// Callers waiting for positions, in the order they asked.
    position_replies: VecDeque<Sender<Vec<PartitionPosition>>>,
    /// Callers waiting to learn whether the consumer is at the end.
    end_replies: VecDeque<Sender<bool>>,
    named: bool,
    /// The partition of the last record delivered.
    last_partition: Option<NodeId>,
    /// Running average of a record's cost (content plus overhead).
    avg_size: usize,
    queue: usize,
    /// The application dropped its receiver: nobody is reading.
    closed: bool,
    /// Group assignment changes, for the application.
    events: Sender<GroupEvent>,
    /// The last buffer of records handed over, emptied, for the machine.
    emptied: Option<Vec<Record>>,
}

impl ConsumerPort {
    /// Puts one record in the application's channel.
    fn hand_over(&mut self, r: Record) {
        self.avg_size = running_average(self.avg_size, r.content.len() + RECORD_OVERHEAD);
        // Named consumers accept commits only for partitions read: noted
        // when the partition differs from the last record's.
        if self.named && self.last_partition != Some(r.partition) {
            self.last_partition = Some(r.partition);
            self.commits.delivered(&r.topic, r.partition);
        }
        self.closed |= self.out.send(r).is_err();
    }
}

impl Port<ConsumerCore> for ConsumerPort {
    fn command(&mut self, _accepts: bool) -> Option<ConsumerCommand> {
        // Processed positions first: a commit asked for after them covers
        // them.
        if let Some(p) = self.commits.take() {
            return Some(ConsumerCommand::Processed(p));
        }
        match self.rx.try_recv().ok()? {
            Command::Plain(c) => Some(c),
            Command::Gaps(reply) => {
                self.replies.push_back(reply);
                Some(ConsumerCommand::Gaps)
            }
            Command::Positions(reply) => {
                self.position_replies.push_back(reply);
                Some(ConsumerCommand::Positions)
            }
            Command::AtEnd(reply) => {
                self.end_replies.push_back(reply);
                Some(ConsumerCommand::AtEnd)
            }
        }
    }

    fn deliver(&mut self, d: ConsumerDelivery) {
        match d {
            ConsumerDelivery::Records(mut records) => {
                records.drain(..).for_each(|r| self.hand_over(r));
                self.emptied = Some(records);
            }
            ConsumerDelivery::Gaps(g) => {
                if let Some(reply) = self.replies.pop_front() {
                    let _ = reply.send(g);
                }
            }
            ConsumerDelivery::Positions(p) => {
                if let Some(reply) = self.position_replies.pop_front() {
                    let _ = reply.send(p);
                }
            }
            ConsumerDelivery::Group(e) => {
                let _ = self.events.send(e);
            }
            ConsumerDelivery::AtEnd(at_end) => {
                if let Some(reply) = self.end_replies.pop_front() {
                    let _ = reply.send(at_end);
                }
            }
            ConsumerDelivery::Committed(ticket) => {
                if let Ok(mut done) = self.commits.done.lock() {
                    done.insert(ticket);
                }
                self.commits.changed.notify_all();
            }
        }
    }

    fn emptied(&mut self) -> Option<ConsumerDelivery> {
        self.emptied.take().map(ConsumerDelivery::Records)
    }

    fn persist(&mut self, nothing: Infallible) -> Option<Infallible> {
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
