//! The consumer's side of the driver: commands in, batches of records out.
//!
//! Records cross to the application a batch at a time (what one turn made
//! ready): one channel operation and no copy per record. Sent one by one,
//! the hand-over was a third of a busy consumer's time: each 144-byte
//! record was moved into the channel's slot and out again, and the channel
//! synchronised once per record.

use crate::commits::Commits;
use crate::core::{
    ConsumerCommand, ConsumerCore, ConsumerDelivery, Gap, GroupEvent, PartitionPosition,
};
use crossbeam_channel::{Receiver, Sender};
use dafka_proto::{NodeId, Record};
use dafka_protocol::running_average;
use dafka_protocol::tuning::{BEHIND_RETRY, CONSUMER_QUEUE_BYTES, RECORD_OVERHEAD};
use dafka_transport::Port;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

/// A command, with where to answer it when it has an answer.
pub(crate) enum Command {
    Plain(ConsumerCommand),
    Gaps(Sender<Vec<Gap>>),
    Positions(Sender<Vec<PartitionPosition>>),
    AtEnd(Sender<bool>),
}

/// The channels between a consumer's application side and its driver.
pub(crate) struct Channels {
    pub(crate) rx: Receiver<Command>,
    pub(crate) out: Sender<Vec<Record>>,
    /// Buffers the application emptied, back for the next turns.
    pub(crate) spares: Receiver<Vec<Record>>,
    pub(crate) events: Sender<GroupEvent>,
}

/// The consumer's side of the driver, with the batches channel as the only
/// buffer between it and the application.
pub(crate) struct ConsumerPort {
    ch: Channels,
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
    /// Records sent so far, counted after each batch still in the channel
    /// or taken since the last look (oldest first): the channel counts
    /// batches, the queue limit counts records.
    sent_after: VecDeque<u64>,
    /// Records sent before the oldest batch in `sent_after`.
    sent_before: u64,
}

impl ConsumerPort {
    pub(crate) fn new(ch: Channels, commits: Arc<Commits>, named: bool, queue: usize) -> Self {
        ConsumerPort {
            ch,
            commits,
            replies: VecDeque::new(),
            position_replies: VecDeque::new(),
            end_replies: VecDeque::new(),
            named,
            last_partition: None,
            avg_size: 0,
            queue,
            closed: false,
            sent_after: VecDeque::new(),
            sent_before: 0,
        }
    }

    /// Puts one turn's records in the application's channel.
    fn hand_over(&mut self, records: Vec<Record>) {
        for r in &records {
            self.avg_size = running_average(self.avg_size, r.content.len() + RECORD_OVERHEAD);
            // Named consumers accept commits only for partitions read:
            // noted when the partition differs from the last record's.
            if self.named && self.last_partition != Some(r.partition) {
                self.last_partition = Some(r.partition);
                self.commits.delivered(&r.topic, r.partition);
            }
        }
        self.forget_taken();
        let total = self.sent_after.back().copied().unwrap_or(self.sent_before);
        self.sent_after.push_back(total + records.len() as u64);
        self.closed |= self.ch.out.send(records).is_err();
    }

    /// Drops the counts of batches the application has taken.
    fn forget_taken(&mut self) {
        let taken = self.sent_after.len().saturating_sub(self.ch.out.len());
        for _ in 0..taken {
            if let Some(n) = self.sent_after.pop_front() {
                self.sent_before = n;
            }
        }
    }

    /// Records in batches the application has not taken yet.
    fn held(&self) -> usize {
        let waiting = self.ch.out.len();
        let taken = self.sent_after.len().saturating_sub(waiting);
        let total = self.sent_after.back().copied().unwrap_or(self.sent_before);
        let before = match taken {
            0 => self.sent_before,
            t => self.sent_after[t - 1],
        };
        usize::try_from(total - before).unwrap_or(usize::MAX)
    }
}

impl Port<ConsumerCore> for ConsumerPort {
    fn command(&mut self, _accepts: bool) -> Option<ConsumerCommand> {
        // Processed positions first: a commit asked for after them covers
        // them.
        if let Some(p) = self.commits.take() {
            return Some(ConsumerCommand::Processed(p));
        }
        match self.ch.rx.try_recv().ok()? {
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
            ConsumerDelivery::Records(records) => self.hand_over(records),
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
                let _ = self.ch.events.send(e);
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

    /// A buffer the application emptied, for the machine's next turn.
    fn emptied(&mut self) -> Option<ConsumerDelivery> {
        self.ch
            .spares
            .try_recv()
            .ok()
            .map(ConsumerDelivery::Records)
    }

    fn persist(&mut self, nothing: Infallible) -> Option<Infallible> {
        match nothing {}
    }

    /// Room while the channel holds fewer than `queue` records and about
    /// CONSUMER_QUEUE_BYTES (one turn may add up to what one turn reads;
    /// the application holds at most one batch besides).
    fn has_room(&self) -> bool {
        let held = self.held();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::{bounded, unbounded};

    fn port(queue: usize) -> (ConsumerPort, Receiver<Vec<Record>>, Sender<Vec<Record>>) {
        let (_tx, rx) = unbounded();
        let (out, batches) = unbounded();
        let (spares_tx, spares) = bounded(2);
        let (events, _) = unbounded();
        let ch = Channels {
            rx,
            out,
            spares,
            events,
        };
        let p = ConsumerPort::new(ch, Arc::new(Commits::default()), false, queue);
        (p, batches, spares_tx)
    }

    fn batch(n: usize) -> ConsumerDelivery {
        ConsumerDelivery::Records(vec![Record::default(); n])
    }

    #[test]
    fn the_queue_limit_counts_records_not_batches() {
        let (mut p, batches, _) = port(10);
        p.deliver(batch(4));
        p.deliver(batch(4));
        assert_eq!(p.held(), 8);
        assert!(p.has_room());
        p.deliver(batch(3));
        assert!(!p.has_room(), "11 records waiting in 3 batches");
        assert_eq!(batches.recv().map(|b| b.len()), Ok(4));
        assert_eq!(p.held(), 7);
        assert!(p.has_room());
        assert_eq!(batches.recv().map(|b| b.len()), Ok(4));
        p.deliver(batch(2));
        assert_eq!(p.held(), 5, "the last batch of 3 and the new one of 2");
        assert_eq!(p.sent_after.len(), 2, "counts of taken batches are dropped");
        while batches.try_recv().is_ok() {}
        assert_eq!(p.held(), 0);
    }

    #[test]
    fn an_emptied_batch_goes_back_to_the_machine() {
        let (mut p, _batches, spares) = port(10);
        assert!(p.emptied().is_none());
        spares.send(Vec::with_capacity(64)).expect("room");
        match p.emptied() {
            Some(ConsumerDelivery::Records(v)) => assert!(v.capacity() >= 64),
            other => panic!("expected a buffer, got {other:?}"),
        }
    }

    #[test]
    fn a_dropped_application_side_closes_the_port() {
        let (mut p, batches, _) = port(10);
        drop(batches);
        assert!(!p.is_closed());
        p.deliver(batch(1));
        assert!(p.is_closed());
    }
}
