//! The application's side of a consumer, and the driver thread behind it.

use crate::commits::Commits;
use crate::config::ConsumerConfig;
use crate::core::{ConsumerCommand, ConsumerCore, Gap, GroupEvent, PartitionPosition};
use crate::port::{Channels, Command, ConsumerPort};
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender, TryRecvError};
use dafka_proto::{validate_topic, DecodeError, NodeId, Record, Role};
use dafka_protocol::{ConfigError, MeshConfig, NodeStats};
use dafka_transport::{NodeSpec, Running, StartError};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// How long closing a named consumer waits for its last commit.
const CLOSE_COMMIT_WAIT: Duration = Duration::from_secs(5);

/// Emptied batches on their way back to the driver at most.
const SPARE_BATCHES: usize = 2;

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
/// One thread reads it, as with Kafka's consumer: it is `Send`, not
/// `Sync` (the batch being handed out is its own). Other threads ask
/// where it stands through a [`ConsumerProbe`].
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
    /// Each turn's records, as the driver made them ready.
    batches: Receiver<Vec<Record>>,
    /// The rest of the batch `recv` took its last record from.
    current: RefCell<VecDeque<Record>>,
    /// Emptied batches, back to the driver to fill again.
    spares: Sender<Vec<Record>>,
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
        let (out, batches) = unbounded();
        // A few buffers circulate: one filling, one waiting, one read.
        let (spares, spares_rx) = bounded(SPARE_BATCHES);
        let commits = Arc::new(Commits::default());
        let channels = Channels {
            rx,
            out,
            spares: spares_rx,
            events: events_tx,
        };
        let port = ConsumerPort::new(channels, commits.clone(), !cfg.name.is_empty(), cfg.queue);
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
            batches,
            current: RefCell::new(VecDeque::new()),
            spares,
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
    /// [`Consumer::batches`].
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
        self.next_record(None).ok()
    }

    /// Waits up to `timeout` for the next record. The error says whether
    /// none came in time (`Timeout`) or the consumer has stopped
    /// (`Disconnected`). Auto-commit as [`Consumer::recv`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Record, RecvTimeoutError> {
        self.next_record(Some(timeout))
    }

    /// Waits up to `timeout` for records and returns all that are ready
    /// (what [`Consumer::recv`] has not returned yet of the batch it took
    /// from, or the next batch): in offset order within each partition,
    /// never empty. With a name and `auto_commit`, taking a batch counts
    /// everything taken before it as processed.
    pub fn poll(&self, timeout: Duration) -> Result<Vec<Record>, RecvTimeoutError> {
        let rest: Vec<Record> = self.current.borrow_mut().drain(..).collect();
        let batch = if rest.is_empty() {
            self.next_batch(Some(timeout))?
        } else {
            rest
        };
        if self.auto {
            self.commits.taken_batch(&batch);
        }
        Ok(batch)
    }

    /// The next record: from the batch taken last, or from the next one.
    fn next_record(&self, timeout: Option<Duration>) -> Result<Record, RecvTimeoutError> {
        let mut current = self.current.borrow_mut();
        let r = match current.pop_front() {
            Some(r) => r,
            None => {
                let batch = VecDeque::from(self.next_batch(timeout)?);
                // The emptied buffer goes back to be filled again (or is
                // dropped when enough are on their way back).
                let emptied = Vec::from(std::mem::replace(&mut *current, batch));
                if emptied.capacity() > 0 {
                    let _ = self.spares.try_send(emptied);
                }
                current.pop_front().ok_or(RecvTimeoutError::Disconnected)?
            }
        };
        if self.auto {
            self.commits.taken(&r);
        }
        Ok(r)
    }

    /// The next non-empty batch from the driver.
    fn next_batch(&self, timeout: Option<Duration>) -> Result<Vec<Record>, RecvTimeoutError> {
        loop {
            // A batch already queued needs no deadline: computing one
            // reads the clock.
            let batch = match (self.batches.try_recv(), timeout) {
                (Ok(b), _) => b,
                (Err(TryRecvError::Disconnected), _) => return Err(RecvTimeoutError::Disconnected),
                (Err(TryRecvError::Empty), Some(t)) => self.batches.recv_timeout(t)?,
                (Err(TryRecvError::Empty), None) => self
                    .batches
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected)?,
            };
            if !batch.is_empty() {
                return Ok(batch);
            }
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
    /// waiting in [`Consumer::batches`]): at least one store has told every
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

    /// The channel records arrive on, a batch at a time (never empty,
    /// in offset order within each partition), for
    /// `crossbeam_channel::select!`. Read a consumer either here or with
    /// [`Consumer::recv`] and [`Consumer::poll`]: a batch `recv` has
    /// started is not in the channel any more. Auto-commit does not see
    /// batches taken here: commit them with [`Consumer::commit`].
    pub fn batches(&self) -> &Receiver<Vec<Record>> {
        &self.batches
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
