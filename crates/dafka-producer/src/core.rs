//! The producer's protocol logic as a [`Machine`], with no I/O.
//!
//! It keeps every record until `min_acks` distinct stores have ACKed it,
//! answers FETCHes from what it still keeps, sends HEAD on a timer once it
//! has published, and reports delivery progress to the application.

use crate::config::ProducerConfig;
use crate::record::ProducerRecord;
use dafka_proto::{
    encode_run_of, routing, Ack, Fetch, Head, HeadState, Message, MessageId, NodeId, RunRecord,
};
use dafka_protocol::run::chunks;
use dafka_protocol::tuning::RECORD_OVERHEAD;
use dafka_protocol::{Input, Machine, Output};
use held::Held;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::{Duration, Instant};

mod claim;
mod held;
pub use claim::{Claim, ClaimOutcome};

/// Most records the unacknowledged queue has room for from the start.
const HELD_ROOM_MAX: usize = 1 << 18;

/// Room for as many records as the budget can hold (each costs at least
/// [`RECORD_OVERHEAD`]), up to [`HELD_ROOM_MAX`]. Reserved, not touched:
/// pages are mapped as records fill them, and the ring buffer reuses them
/// afterwards. Grown by doubling instead, the queue was copied into fresh
/// pages at each step, a quarter of a producer's page faults in a short
/// burst of small records.
fn held_room(cfg: &ProducerConfig) -> usize {
    (cfg.max_unacked_bytes / RECORD_OVERHEAD).min(HELD_ROOM_MAX)
}

/// Where the records a producer sends belong: its topic and partition.
#[derive(Clone, Copy)]
struct Place<'a> {
    topic: &'a str,
    partition: NodeId,
}

/// Encodes records `from..to` of `held` as runs of RECORDs (`to` is
/// `None`) or DIRECT-RECORDs, in order. A run never spans the two halves of
/// the ring buffer: one extra message per wrap-around, no copies.
fn send_runs(
    outbox: &mut Vec<ProducerOutput>,
    at: Place,
    to: Option<NodeId>,
    held: &VecDeque<Held>,
    from: usize,
    until: usize,
) {
    let (front, back) = held.as_slices();
    let split = front.len();
    let halves = [
        front.get(from.min(split)..until.min(split)),
        back.get(from.saturating_sub(split)..until.saturating_sub(split)),
    ];
    for run in halves.into_iter().flatten().flat_map(chunks) {
        outbox.push(Output::SendRun {
            frames: encode_run_of(to, at.topic, at.partition, run),
            records: run.len() as u64,
        });
    }
}

/// What the application asks of a producer.
#[derive(Debug)]
pub enum ProducerCommand {
    /// Publish `record` at `offset`: the handle numbers records (it spools
    /// them and tells the caller), the machine follows.
    Publish {
        /// The offset the handle gave it.
        offset: u64,
        /// The record, timestamp set.
        record: ProducerRecord,
    },
    /// Close: wait up to `timeout` for outstanding ACKs, then finish.
    Close {
        /// How long to wait.
        timeout: Duration,
    },
}

/// What a producer tells its application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProducerReport {
    /// Delivery progress: every offset below `acked` is ACKed by a quorum,
    /// `unacked` records await ACKs.
    Progress {
        /// Every offset below this is ACKed by `min_acks` stores.
        acked: u64,
        /// Records still awaiting a quorum.
        unacked: u64,
    },
    /// How taking over the partition ended.
    Claim(ClaimOutcome),
}

/// A producer's outputs.
pub type ProducerOutput = Output<ProducerReport, Infallible>;

/// One producer's partition.
#[derive(Debug)]
pub struct ProducerCore {
    id: NodeId,
    topic: String,
    cfg: ProducerConfig,
    next_offset: u64,
    /// Records not yet ACKed by a quorum, oldest first, contiguous.
    unacked: VecDeque<Held>,
    /// How many records at the back of `unacked` are not sent yet. They
    /// leave as runs encoded straight from `unacked` (no copy of each
    /// record on its way out) before any other message, so a HEAD never
    /// overtakes them, and at the latest when the outputs are drained.
    unsent: usize,
    unacked_bytes: usize,
    /// Highest offset each store has ACKed.
    acks: HashMap<NodeId, u64>,
    next_head: Option<Instant>,
    close_by: Option<Instant>,
    done: bool,
    outbox: Vec<ProducerOutput>,
    /// The progress last reported.
    reported: Option<(u64, u64)>,
    /// Whether how the claim ended was reported.
    claim_reported: bool,
    /// Set while the partition's starting offset is being learnt from the
    /// stores; no record is numbered until it is resolved.
    claim: Option<Claim>,
    claimed: Option<ClaimOutcome>,
    /// Whether a store's ACK past our own head was already reported.
    warned_foreign: bool,
}

impl ProducerCore {
    /// A producer owning partition `id` of `topic`.
    pub fn new(id: NodeId, topic: String, cfg: ProducerConfig) -> Self {
        let outbox = vec![
            Output::Subscribe(routing::node_key(MessageId::Ack, &id)),
            Output::Subscribe(routing::node_key(MessageId::Fetch, &id)),
        ];
        let room = held_room(&cfg);
        ProducerCore {
            id,
            topic,
            cfg,
            next_offset: 0,
            unacked: VecDeque::with_capacity(room),
            unsent: 0,
            unacked_bytes: 0,
            acks: HashMap::new(),
            next_head: None,
            close_by: None,
            done: false,
            outbox,
            reported: None,
            claim_reported: false,
            claim: None,
            claimed: None,
            warned_foreign: false,
        }
    }

    /// A producer taking over partition `id`, whose history (if any) only
    /// the stores know: it asks them where the partition stands and
    /// numbers nothing until they have answered (see [`Claim`]).
    pub fn claim(id: NodeId, topic: String, cfg: ProducerConfig, now: Instant) -> Self {
        let timeout = Duration::from_millis(cfg.claim_timeout);
        let mut core = ProducerCore::new(id, topic, cfg);
        core.outbox.push(Output::Subscribe(routing::node_key(
            MessageId::DirectHead,
            &id,
        )));
        core.claim = Some(Claim::new(now, timeout));
        core
    }

    /// How a claim ended (`None` while pending, and for a producer that
    /// did not need one).
    pub fn claim_outcome(&self) -> Option<&ClaimOutcome> {
        self.claimed.as_ref()
    }

    fn ask_heads(&mut self) {
        let ask = Message::GetHeads {
            topic: self.topic.clone(),
            sender: self.id,
            partition: Some(self.id),
        };
        self.send(ask);
    }

    fn on_claim_answer(&mut self, head: &Head, store: Option<NodeId>, state: &HeadState) {
        let (Some(claim), Some(store)) = (self.claim.as_mut(), store) else {
            return;
        };
        if head.partition != self.id {
            return;
        }
        let held = match state {
            HeadState::Empty => None,
            HeadState::Holds | HeadState::Unreadable { .. } => Some(head.offset),
        };
        claim.answer(store, held);
    }

    /// Ends the claim once the answers allow it (or time is up).
    fn settle_claim(&mut self, now: Instant) {
        let Some(claim) = self.claim.as_mut() else {
            return;
        };
        if claim.ask_due(now) {
            self.ask_heads();
        }
        let Some(claim) = self.claim.as_ref() else {
            return;
        };
        match claim.outcome(self.cfg.min_acks, now) {
            ClaimOutcome::Pending => return,
            ClaimOutcome::Start(next) => {
                if next > 0 {
                    tracing::info!(partition = %self.id, next, "continuing the partition after the stores' head");
                }
                self.next_offset = next;
                self.claimed = Some(ClaimOutcome::Start(next));
            }
            failed => self.claimed = Some(failed),
        }
        self.claim = None;
    }

    /// A producer resuming partition `id` after a restart: `records` are
    /// those not known to be ACKed (contiguous, in order) and `next_offset`
    /// the next to hand out. They are not sent again at once: the HEAD that
    /// every new subscriber gets makes stores re-ACK what they hold and
    /// FETCH what they miss.
    pub fn resume(
        id: NodeId,
        topic: String,
        cfg: ProducerConfig,
        records: Vec<(u64, ProducerRecord)>,
        next_offset: u64,
    ) -> Self {
        let mut core = ProducerCore::new(id, topic, cfg);
        core.next_offset = next_offset;
        for (offset, record) in records {
            core.hold(Held::new(offset, record));
        }
        core
    }

    /// Keeps `h` until a quorum has ACKed it.
    fn hold(&mut self, h: Held) {
        self.unacked_bytes += h.cost();
        self.unacked.push_back(h);
    }

    /// Publishes a record (content alone converts into one); returns its
    /// offset.
    pub fn publish(&mut self, record: impl Into<ProducerRecord>, now: Instant) -> u64 {
        let offset = self.next_offset;
        self.next_offset += 1;
        self.hold(Held::new(offset, record.into()));
        self.unsent += 1;
        self.next_head.get_or_insert(now + self.cfg.head_interval());
        offset
    }

    /// Handles a message or subscription from the mesh.
    fn on_mesh(&mut self, ev: Input<ProducerCommand, Infallible>, now: Instant) {
        match ev {
            Input::Message(Message::Ack(a)) => self.on_ack(&a),
            Input::Message(Message::Fetch(f)) => self.on_fetch(&f),
            Input::Message(Message::DirectHead {
                to,
                head,
                store,
                state,
                ..
            }) if to == self.id => {
                self.on_claim_answer(&head, store, &state);
                self.settle_claim(now);
            }
            // A store can now hear a GET-HEADS: ask it where we stand.
            Input::Subscribed(p)
                if self.claim.is_some() && p.first() == Some(&(MessageId::GetHeads as u8)) =>
            {
                if let Some(c) = self.claim.as_mut() {
                    c.store_subscribed();
                }
                self.ask_heads();
            }
            // Someone (a store, or a consumer of our topic) started
            // listening to records: tell them our head now rather than at
            // the next interval, so they fetch what they missed at once.
            Input::Subscribed(p) if p.first() == Some(&(MessageId::Record as u8)) => {
                self.send_head(now)
            }
            _ => {}
        }
    }

    fn on_ack(&mut self, a: &Ack) {
        if a.partition != self.id {
            return;
        }
        if a.offset >= self.next_offset {
            // An offset we never published: another writer of this
            // partition, or a history our state directory does not hold.
            if !self.warned_foreign && self.claim.is_none() {
                self.warned_foreign = true;
                tracing::warn!(partition = %self.id, offset = a.offset, next = self.next_offset, "a store holds offsets this producer never published");
            }
            return;
        }
        let e = self.acks.entry(a.store).or_insert(a.offset);
        *e = (*e).max(a.offset);
        self.release();
    }

    /// Drops every record that `min_acks` distinct stores have ACKed.
    fn release(&mut self) {
        let Some(quorum) = self.quorum_offset() else {
            return;
        };
        while self.unacked.front().is_some_and(|r| r.offset() <= quorum) {
            if let Some(r) = self.unacked.pop_front() {
                self.unacked_bytes -= r.cost();
            }
        }
    }

    /// The highest offset ACKed by at least `min_acks` stores.
    fn quorum_offset(&self) -> Option<u64> {
        let mut offs: Vec<u64> = self.acks.values().copied().collect();
        if offs.len() < self.cfg.min_acks {
            return None;
        }
        offs.sort_unstable_by(|a, b| b.cmp(a));
        offs.get(self.cfg.min_acks - 1).copied()
    }

    fn on_fetch(&mut self, f: &Fetch) {
        if f.partition != self.id {
            return;
        }
        let Some(first) = self.unacked.front().map(Held::offset) else {
            return;
        };
        let start = f.offset.max(first);
        let count = u64::from(f.count.min(self.cfg.max_fetch_reply));
        let end = f.offset.saturating_add(count).min(self.next_offset);
        if start >= end {
            return;
        }
        self.send_unsent();
        let from = (start - first) as usize;
        let until = ((end - first) as usize).min(self.unacked.len());
        let at = Place {
            topic: &self.topic,
            partition: self.id,
        };
        send_runs(
            &mut self.outbox,
            at,
            Some(f.sender),
            &self.unacked,
            from,
            until,
        );
    }

    /// Sends `msg` after the records not sent yet.
    fn send(&mut self, msg: Message) {
        self.send_unsent();
        self.outbox.push(Output::Send(msg));
    }

    /// Sends the records published since the last call, as runs.
    fn send_unsent(&mut self) {
        if self.unsent == 0 {
            return;
        }
        let held = self.unacked.len();
        let from = held - self.unsent.min(held);
        self.unsent = 0;
        let at = Place {
            topic: &self.topic,
            partition: self.id,
        };
        send_runs(&mut self.outbox, at, None, &self.unacked, from, held);
    }

    fn send_head(&mut self, now: Instant) {
        if self.next_offset == 0 {
            return; // HEAD starts with the first record.
        }
        let head = Head {
            topic: self.topic.clone(),
            partition: self.id,
            offset: self.next_offset - 1,
        };
        self.send(Message::Head(head));
        self.next_head = Some(now + self.cfg.head_interval());
    }

    /// Starts closing: waits for outstanding ACKs until the close timeout.
    pub fn close(&mut self, now: Instant, timeout: Duration) {
        if self.close_by.is_some() {
            return;
        }
        self.send_head(now);
        self.close_by = Some(now + timeout);
        self.on_timeout(now);
    }

    /// Tells the application how far delivery got, when that changed, and
    /// how a claim ended.
    fn report(&mut self) {
        if !self.claim_reported {
            if let Some(c) = self.claimed.clone() {
                self.claim_reported = true;
                self.outbox.push(Output::Deliver(ProducerReport::Claim(c)));
            }
        }
        let unacked = self.unacked.len() as u64;
        let now = (self.next_offset - unacked, unacked);
        if self.reported != Some(now) {
            self.reported = Some(now);
            let (acked, unacked) = now;
            let p = ProducerReport::Progress { acked, unacked };
            self.outbox.push(Output::Deliver(p));
        }
    }

    /// Records published so far.
    pub fn published(&self) -> u64 {
        self.next_offset
    }

    /// Records still awaiting a quorum of ACKs.
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// The records awaiting ACKs, oldest first: what a spool would give a
    /// restarted producer.
    pub fn unacked_records(&self) -> impl Iterator<Item = (u64, ProducerRecord)> + '_ {
        self.unacked.iter().map(|h| (h.offset(), h.to_record()))
    }

    /// Distinct stores that must ACK a record.
    pub fn min_acks(&self) -> usize {
        self.cfg.min_acks
    }

    /// Bytes awaiting ACKs (content plus a per-record overhead).
    pub fn unacked_bytes(&self) -> usize {
        self.unacked_bytes
    }

    /// Whether `publish` may take more now (under the memory bound).
    pub fn has_room(&self) -> bool {
        self.unacked_bytes < self.cfg.max_unacked_bytes
    }
}

impl Machine for ProducerCore {
    type Command = ProducerCommand;
    type Delivery = ProducerReport;
    type Work = Infallible;
    type Done = Infallible;

    fn handle(&mut self, input: Input<ProducerCommand, Infallible>, now: Instant) {
        match input {
            Input::Command(ProducerCommand::Publish { offset, record }) => {
                if offset != self.next_offset {
                    // The handle numbers records; follow it (what it gave the
                    // application and its spool is the truth).
                    tracing::error!(partition = %self.id, offset, expected = self.next_offset, "publish out of step with the producer's handle");
                    self.next_offset = offset;
                }
                self.publish(record, now);
            }
            Input::Command(ProducerCommand::Close { timeout }) => self.close(now, timeout),
            Input::Done(never) => match never {},
            other => self.on_mesh(other, now),
        }
    }

    fn end_of_turn(&mut self, _now: Instant) {
        self.report();
    }

    /// Timers: HEAD, claim retries, and the end of a close.
    fn on_timeout(&mut self, now: Instant) {
        self.settle_claim(now);
        if self.next_head.is_some_and(|t| now >= t) {
            self.send_head(now);
        }
        if let Some(by) = self.close_by {
            self.done |= self.unacked.is_empty() || now >= by;
        }
        self.report();
    }

    fn next_timeout(&self) -> Option<Instant> {
        let claim = self.claim.as_ref().map(Claim::next_deadline);
        [self.next_head, self.close_by, claim]
            .into_iter()
            .flatten()
            .min()
    }

    fn drain(&mut self, out: &mut Vec<ProducerOutput>) {
        self.send_unsent();
        out.append(&mut self.outbox);
    }

    fn is_done(&self) -> bool {
        self.done
    }

    /// Over `max_unacked_bytes`, publishing waits for ACKs.
    fn accepts_commands(&self) -> bool {
        self.has_room()
    }
}

#[cfg(test)]
mod tests;
