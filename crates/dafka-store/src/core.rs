//! The store's protocol logic as a [`Machine`]: fed messages and the time,
//! it says what to send and asks for storage work ([`StoreWork`]); it ACKs
//! a record only once told that its write is durable.

use crate::config::StoreConfig;
use crate::storage::{ReadLimit, StorageError, StoredHead};
use crate::work::{StoreDone, StoreWork};
use dafka_proto::{routing, Ack, Fetch, Head, HeadState, Message, MessageId, NodeId, Record};
use dafka_protocol::run::size;
use dafka_protocol::tuning::{
    COMMIT_BYTES, COMMIT_RECORDS, DUP_CHECK_EVERY, INFO_BURST, INFO_PERIOD, MAX_PENDING_PARTITIONS,
    PENDING_TTL, RECORD_OVERHEAD, RETRY_SCAN, WARN_PERIOD, WRITE_BYTES,
};
use dafka_protocol::{
    gaps, partition_entry, AheadLimit, Input, Machine, Output, Partitions, RateLimit, Sequencer,
    Tracked,
};
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

/// Records a new batch vector has room for in advance (about 10 MB of
/// `Record`s, reserved, not touched until records fill it); a longer
/// batch grows it, and it stays grown as it is handed back and reused.
const BATCH_ROOM: usize = 65_536;

/// What the application asks of a store.
#[derive(Debug)]
pub enum StoreCommand {
    /// Stop, once the write in hand is durable.
    Stop,
}

/// A store's outputs: it hands nothing to an application.
pub type StoreOutput = Output<Infallible, StoreWork>;

struct Part {
    /// Orders incoming records; `next` runs ahead of `stored` by the batch
    /// being written.
    track: Tracked,
    /// The highest offset durably stored.
    stored: Option<u64>,
    /// Known only from HEADs so far: no record arrived yet.
    pending: bool,
    /// When a HEAD or a record of it last arrived.
    seen: Instant,
    /// When the next duplicate may be compared with what is stored.
    next_dup_check: Instant,
    /// The offset at which a record different from the stored one arrived:
    /// two writers of one partition. Nothing more is stored or ACKed.
    conflict: Option<u64>,
    /// The lowest offset held: retention deleted what is below.
    log_start: u64,
}

impl Part {
    fn new(retry: Duration, now: Instant) -> Self {
        Part {
            track: Tracked::new(0, AheadLimit::default(), retry),
            stored: None,
            pending: false,
            seen: now,
            next_dup_check: now,
            conflict: None,
            log_start: 0,
        }
    }
}

/// What went wrong on a store's way, counted for tests and operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounters {
    /// Batch writes that failed.
    pub write_errors: u64,
    /// Records that arrived at an offset the store holds with other content.
    pub conflicts: u64,
    /// FETCHes answered "unreadable" because the database failed to read.
    pub unreadable: u64,
    /// HEADs of unknown partitions ignored because too many were pending.
    pub pending_refused: u64,
    /// Partitions known only from HEADs dropped after [`PENDING_TTL`].
    pub pending_expired: u64,
}

/// One store's partitions and what it owes its peers.
pub struct StoreCore {
    id: NodeId,
    cfg: StoreConfig,
    parts: Partitions<Part>,
    /// Records in order, waiting for the next write.
    batch: Vec<Record>,
    /// The batch's size in run bytes ([`size`]), counted as records join
    /// it: under load the batch holds tens of thousands of records, and a
    /// pass to count them reads megabytes long out of cache.
    batch_bytes: usize,
    /// The last durable write's vector, emptied, for the next batch: two
    /// vectors take turns, so a batch under load fills pages already
    /// mapped instead of fresh ones.
    spare: Vec<Record>,
    /// The write in flight, by each partition's highest offset in it: at
    /// most one at a time, so writes land (and ACKs go) in order.
    writing: Option<Vec<(String, NodeId, u64)>>,
    /// When the batch must be written at the latest (group commit): set
    /// when its first record arrives.
    commit_by: Option<Instant>,
    stopping: bool,
    outbox: Vec<StoreOutput>,
    next_scan: Instant,
    next_expiry: Instant,
    pending: usize,
    counters: StoreCounters,
    warn: RateLimit,
    /// Info lines (partitions opened, gaps repaired): bunches of 20 a second.
    info: RateLimit,
    /// When retention is next enforced (none: no limits set).
    next_retention: Option<Instant>,
}

impl StoreCore {
    /// A store with id `id` resuming the partitions whose stored `heads`
    /// its storage reports.
    pub fn new(id: NodeId, heads: Vec<StoredHead>, cfg: StoreConfig, now: Instant) -> Self {
        let mut core = StoreCore {
            id,
            cfg,
            parts: Partitions::default(),
            batch: Vec::with_capacity(BATCH_ROOM),
            batch_bytes: 0,
            spare: Vec::new(),
            writing: None,
            commit_by: None,
            stopping: false,
            outbox: Vec::new(),
            next_scan: now,
            next_expiry: now + PENDING_TTL,
            pending: 0,
            counters: StoreCounters::default(),
            warn: RateLimit::new(WARN_PERIOD),
            info: RateLimit::burst(INFO_PERIOD, INFO_BURST),
            next_retention: None,
        };
        if core.cfg.retention().is_set() {
            core.next_retention = Some(now + core.cfg.retention_check());
        }
        for h in heads {
            let part = core.part(&h.topic, h.partition, now);
            part.track.seq = Sequencer::new(h.offset + 1, AheadLimit::default());
            part.stored = Some(h.offset);
            part.log_start = h.log_start;
        }
        let subs = [
            MessageId::Record,
            MessageId::Head,
            MessageId::Fetch,
            MessageId::GetHeads,
            MessageId::Commit,
            MessageId::GetPositions,
            MessageId::GetPartitions,
        ]
        .map(routing::any_key);
        core.outbox.extend(subs.into_iter().map(Output::Subscribe));
        for id_key in [MessageId::DirectRecord, MessageId::ConsumerHello] {
            core.outbox
                .push(Output::Subscribe(routing::node_key(id_key, &id)));
        }
        core
    }

    fn part(&mut self, topic: &str, partition: NodeId, now: Instant) -> &mut Part {
        let retry = self.cfg.fetch_retry();
        partition_entry(&mut self.parts, topic, partition, || Part::new(retry, now))
    }

    fn known(&self, topic: &str, partition: &NodeId) -> bool {
        self.parts
            .get(topic)
            .is_some_and(|ps| ps.contains_key(partition))
    }

    fn on_message(&mut self, msg: Message, now: Instant) {
        match msg {
            Message::Record(r) => self.on_record(r, now),
            Message::DirectRecord { to, record } if to == self.id => self.on_record(record, now),
            Message::Head(h) => self.on_head(h, now),
            Message::Fetch(f) if f.sender != self.id => self.on_fetch(&f),
            Message::GetHeads {
                topic,
                sender,
                partition: None,
            } => self.send_heads(&topic, sender),
            Message::GetHeads {
                topic,
                sender,
                partition: Some(p),
            } => self.send_head_of(&topic, p, sender),
            Message::ConsumerHello {
                to,
                consumer,
                topics,
            } if to == self.id => {
                for t in &topics {
                    self.send_heads(t, consumer);
                }
            }
            Message::Commit {
                name,
                sender,
                seq,
                positions,
            } => self.on_commit(name, sender, seq, positions),
            Message::GetPositions {
                name,
                sender,
                topics,
                from_time_ms,
            } => self.on_get_positions(name, sender, topics, from_time_ms),
            Message::GetPartitions { sender, topic } => {
                let work = StoreWork::Partitions { sender, topic };
                self.outbox.push(Output::Persist(work));
            }
            _ => {}
        }
    }

    fn on_record(&mut self, rec: Record, now: Instant) {
        let partition = rec.partition;
        let retry = self.cfg.fetch_retry();
        let mut opened = false;
        let part = partition_entry(&mut self.parts, &rec.topic, partition, || {
            opened = true;
            Part::new(retry, now)
        });
        if part.conflict.is_some() {
            return;
        }
        // Known only from HEADs until now: its first record opens it too.
        if std::mem::take(&mut part.pending) {
            self.pending -= 1;
            opened = true;
        }
        if opened {
            if let Some(suppressed) = self.info.allow(now) {
                tracing::info!(topic = %rec.topic, %partition, offset = rec.offset, suppressed, "partition opened");
            }
        }
        part.seen = now;
        if rec.offset < part.track.seq.next() {
            return self.check_duplicate(rec, now);
        }
        let seq = &mut part.track.seq;
        // Skip the topic copy and the FETCH check on the in-order path.
        let topic = seq.may_leave_gap(rec.offset).then(|| rec.topic.clone());
        let had_gap = topic.is_some() && seq.missing().is_some();
        let before = self.batch.len();
        seq.offer(rec, &mut self.batch);
        self.batch_bytes += self.batch[before..].iter().map(size).sum::<usize>();
        if let Some(topic) = topic {
            let next = seq.next();
            if had_gap && seq.missing().is_none() {
                if let Some(suppressed) = self.info.allow(now) {
                    tracing::info!(%topic, %partition, next, suppressed, "gap repaired");
                }
            }
            self.fetch_gap(&topic, partition, now);
        }
    }

    /// A record at an offset already taken must be the same record: if the
    /// stored one differs, two writers are using one partition (or a
    /// producer restarted below its head without its state directory), and
    /// ACKing on would tell the new writer its records are stored when the
    /// old ones are. The partition is quarantined: nothing more of it is
    /// stored or ACKed until the store restarts.
    fn check_duplicate(&mut self, rec: Record, now: Instant) {
        let part = self.part(&rec.topic, rec.partition, now);
        let durable = part.stored.is_some_and(|s| rec.offset <= s);
        if !durable || now < part.next_dup_check {
            return;
        }
        part.next_dup_check = now + DUP_CHECK_EVERY;
        self.outbox.push(Output::Persist(StoreWork::Compare(rec)));
    }

    /// The stored copy of a record that arrived again: the same, or proof
    /// of a second writer.
    fn on_compared(&mut self, rec: Record, held: Option<Record>, now: Instant) {
        if held.is_none_or(|h| h == rec) {
            return;
        }
        self.counters.conflicts += 1;
        self.part(&rec.topic, rec.partition, now).conflict = Some(rec.offset);
        tracing::error!(
            topic = %rec.topic,
            partition = %rec.partition,
            offset = rec.offset,
            "a record differs from the one stored at its offset: two writers of one partition, \
             or a producer restarted without its state directory; no longer storing or \
             acknowledging this partition (restart the store to lift this)"
        );
    }

    fn on_head(&mut self, h: Head, now: Instant) {
        if !self.known(&h.topic, &h.partition) {
            if self.pending >= MAX_PENDING_PARTITIONS {
                self.counters.pending_refused += 1;
                if let Some(suppressed) = self.warn.allow(now) {
                    tracing::warn!(
                        suppressed,
                        "too many partitions known only from HEADs; ignoring a HEAD"
                    );
                }
                return;
            }
            self.pending += 1;
            self.part(&h.topic, h.partition, now).pending = true;
        }
        let part = self.part(&h.topic, h.partition, now);
        if part.conflict.is_some() {
            return;
        }
        part.seen = now;
        part.track.seq.note_head(h.offset);
        // A producer still sending HEADs for what we hold may have missed our
        // ACK (it connected late, or restarted): repeat it.
        if part.stored == Some(h.offset) {
            self.ack(&h.topic, h.partition, h.offset);
        }
        self.fetch_gap(&h.topic, h.partition, now);
    }

    /// Forgets partitions known only from HEADs that stopped coming.
    fn expire_pending(&mut self, now: Instant) {
        let mut expired = 0;
        for ps in self.parts.values_mut() {
            ps.retain(|_, p| {
                let keep = !p.pending || now.saturating_duration_since(p.seen) < PENDING_TTL;
                expired += usize::from(!keep);
                keep
            });
        }
        self.parts.retain(|_, ps| !ps.is_empty());
        self.pending -= expired;
        self.counters.pending_expired += expired as u64;
    }

    fn fetch_gap(&mut self, topic: &str, partition: NodeId, now: Instant) {
        let (max, id) = (self.cfg.max_fetch, self.id);
        let part = self.part(topic, partition, now);
        if let Some(f) = part.track.fetch_due(topic, partition, id, max, now) {
            self.outbox.push(Output::Send(Message::Fetch(f)));
        }
    }

    fn on_fetch(&mut self, f: &Fetch) {
        // Capped in records and bytes: the asker fetches the rest when this
        // part arrives.
        let limit = ReadLimit {
            records: f.count.min(self.cfg.max_fetch_reply) as usize,
            bytes: self.cfg.max_fetch_reply_bytes,
        };
        let fetch = f.clone();
        self.outbox
            .push(Output::Persist(StoreWork::Read { fetch, limit }));
    }

    /// Answers a FETCH with what was read. A FETCH from below the log
    /// start is first told where it is (what is below is deleted), so the
    /// asker moves on instead of asking again.
    fn on_read(&mut self, f: &Fetch, records: Result<Vec<Record>, StorageError>, now: Instant) {
        let records = match records {
            Ok(r) => r,
            Err(e) => return self.unreadable(f, &e, now),
        };
        if let Some(stored) = self.stored(&f.topic, &f.partition) {
            if f.offset < self.log_start(&f.topic, &f.partition) {
                self.direct_head(f.sender, &f.topic, f.partition, stored, HeadState::Holds);
            }
        }
        for record in records {
            self.outbox.push(Output::Send(Message::DirectRecord {
                to: f.sender,
                record,
            }));
        }
    }

    /// Tells the asker that this store holds the partition but cannot read
    /// it from the offset asked (a damaged database), so it can turn to
    /// other stores and say why records are missing, instead of waiting.
    fn unreadable(&mut self, f: &Fetch, e: &crate::StorageError, now: Instant) {
        self.counters.unreadable += 1;
        if let Some(suppressed) = self.warn.allow(now) {
            tracing::error!(topic = %f.topic, partition = %f.partition, offset = f.offset, error = %e, suppressed, "cannot read records asked for");
        }
        let Some(stored) = self.stored(&f.topic, &f.partition) else {
            return;
        };
        let mut reason = e.to_string();
        reason.truncate(dafka_proto::limits::MAX_REASON_LEN);
        let state = HeadState::Unreadable {
            from: f.offset,
            reason,
        };
        self.direct_head(f.sender, &f.topic, f.partition, stored, state);
    }

    fn direct_head(
        &mut self,
        to: NodeId,
        topic: &str,
        partition: NodeId,
        offset: u64,
        state: HeadState,
    ) {
        let log_start = self.log_start(topic, &partition);
        let head = Head {
            topic: topic.to_string(),
            partition,
            offset,
        };
        self.outbox.push(Output::Send(Message::DirectHead {
            to,
            head,
            store: Some(self.id),
            state,
            log_start,
        }));
    }

    /// The lowest offset held of a partition (0 if unknown).
    pub fn log_start(&self, topic: &str, partition: &NodeId) -> u64 {
        self.parts
            .get(topic)
            .and_then(|ps| ps.get(partition))
            .map_or(0, |p| p.log_start)
    }

    /// Retention moved these partitions' log starts.
    fn on_retained(&mut self, moved: Result<Vec<StoredHead>, StorageError>) {
        match moved {
            Ok(moved) => {
                for h in moved {
                    if let Some(p) = self
                        .parts
                        .get_mut(&h.topic)
                        .and_then(|ps| ps.get_mut(&h.partition))
                    {
                        p.log_start = p.log_start.max(h.log_start);
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not enforce retention; trying again at the next check")
            }
        }
    }

    /// Every partition of `topic` this store holds, then the end of the
    /// answer (a DIRECT-HEAD of no partition, `empty`): the asker then
    /// knows it has heard all this store holds.
    fn send_heads(&mut self, topic: &str, to: NodeId) {
        let heads: Vec<(NodeId, u64)> = self.parts.get(topic).map_or_else(Vec::new, |parts| {
            parts
                .iter()
                .filter_map(|(p, part)| part.stored.map(|o| (*p, o)))
                .collect()
        });
        for (partition, offset) in heads {
            self.direct_head(to, topic, partition, offset, HeadState::Holds);
        }
        self.direct_head(to, topic, NodeId::NONE, 0, HeadState::Empty);
    }

    /// One partition's head, or "none of it here": what a producer taking
    /// over a partition needs before it numbers its first record.
    fn send_head_of(&mut self, topic: &str, partition: NodeId, to: NodeId) {
        match self.stored(topic, &partition) {
            Some(offset) => self.direct_head(to, topic, partition, offset, HeadState::Holds),
            None => self.direct_head(to, topic, partition, 0, HeadState::Empty),
        }
    }

    fn on_subscribed(&mut self, prefix: &[u8], now: Instant) {
        let Some(node) = NodeId::from_slice(prefix.get(1..).unwrap_or_default()) else {
            return;
        };
        match MessageId::from_byte(prefix[0]) {
            // A consumer subscribed to our hellos: greet it.
            Some(MessageId::StoreHello) => {
                let hello = Message::StoreHello {
                    to: node,
                    store: self.id,
                };
                self.outbox.push(Output::Send(hello));
            }
            // A producer is listening for ACKs of its partition: tell it
            // where we stand, in case it missed earlier ACKs.
            // A producer now hears our FETCHes: one sent before (when its
            // first HEAD arrived) was lost; ask again now, not at the retry.
            Some(MessageId::Fetch) => self.refetch(node, now),
            Some(MessageId::Ack) => {
                let stored: Vec<(String, u64)> = self
                    .parts
                    .iter()
                    .filter_map(|(t, ps)| {
                        ps.get(&node).and_then(|p| p.stored).map(|o| (t.clone(), o))
                    })
                    .collect();
                for (topic, offset) in stored {
                    self.ack(&topic, node, offset);
                }
            }
            _ => {}
        }
    }

    /// FETCHes `partition`'s gap in every topic at once, forgetting the
    /// FETCH in flight (it went where no one listened).
    fn refetch(&mut self, partition: NodeId, now: Instant) {
        let topics: Vec<String> = self
            .parts
            .iter()
            .filter(|(_, ps)| ps.get(&partition).is_some_and(|p| p.conflict.is_none()))
            .map(|(t, _)| t.clone())
            .collect();
        for topic in topics {
            self.part(&topic, partition, now).track.pacer.clear();
            self.fetch_gap(&topic, partition, now);
        }
    }

    fn ack(&mut self, topic: &str, partition: NodeId, offset: u64) {
        let conflicted = self
            .parts
            .get(topic)
            .and_then(|ps| ps.get(&partition))
            .is_some_and(|p| p.conflict.is_some());
        if conflicted {
            return;
        }
        let ack = Ack {
            topic: topic.to_string(),
            partition,
            offset,
            store: self.id,
        };
        self.outbox.push(Output::Send(Message::Ack(ack)));
    }

    /// Asks for the records gathered so far to be written once the batch
    /// is due: full, or its commit delay over, or the store stopping. Never
    /// while a write is in flight (its answer starts the next one).
    fn write_if_due(&mut self, now: Instant) {
        if self.batch.is_empty() || self.writing.is_some() {
            return;
        }
        let by = *self
            .commit_by
            .get_or_insert_with(|| now + self.cfg.commit_delay());
        if now < by && !self.stopping && !self.batch_is_full() {
            return;
        }
        self.commit_by = None;
        let batch = self.take_write();
        // Each partition's records are in offset order, in long runs: note
        // a partition's offset only where a run of it ends (one hash per
        // run, not per record).
        let mut tops: HashMap<(&str, NodeId), u64> = HashMap::new();
        let mut iter = batch.iter().peekable();
        while let Some(r) = iter.next() {
            let run_ends = iter
                .peek()
                .is_none_or(|n| n.partition != r.partition || n.topic != r.topic);
            if run_ends {
                tops.insert((&*r.topic, r.partition), r.offset);
            }
        }
        let tops = tops
            .into_iter()
            .map(|((t, p), o)| (t.to_string(), p, o))
            .collect();
        self.writing = Some(tops);
        self.outbox.push(Output::Persist(StoreWork::Write(batch)));
    }

    /// The batch's head, up to [`WRITE_BYTES`] counted as a producer counts
    /// its unACKed records ([`write_cost`]); the rest is the next write's.
    fn take_write(&mut self) -> Vec<Record> {
        // Bytes of the records before the cut. The first record is always
        // taken, however large: at least one record per write.
        let mut taken = 0;
        let mut cost = 0;
        let total = self.batch_bytes + self.batch.len() * RECORD_OVERHEAD;
        let cut = if total > WRITE_BYTES {
            self.batch.iter().position(|r| {
                let more = cost > 0 && cost + write_cost(r) > WRITE_BYTES;
                if !more {
                    taken += size(r);
                    cost += write_cost(r);
                }
                more
            })
        } else {
            None
        };
        let mut next = self.next_vector();
        match cut {
            // The rest's bytes follow from the count: no pass over it.
            Some(at) => {
                self.batch_bytes -= taken;
                next.extend(self.batch.drain(at..));
            }
            None => self.batch_bytes = 0,
        }
        std::mem::replace(&mut self.batch, next)
    }

    /// An empty vector for the next batch: the last write's if it came
    /// back, else a new one with room for [`BATCH_ROOM`] records. The next
    /// batch gathers while this one is written, and under load it is
    /// about as long: grown from empty by doubling, each step copied every
    /// record gathered so far into fresh pages (an eighth of the driver
    /// thread's samples at 100 B).
    fn next_vector(&mut self) -> Vec<Record> {
        let spare = std::mem::take(&mut self.spare);
        if spare.capacity() >= BATCH_ROOM {
            spare
        } else {
            Vec::with_capacity(BATCH_ROOM)
        }
    }

    /// Whether the batch is large enough to write without waiting.
    fn batch_is_full(&self) -> bool {
        self.batch.len() >= COMMIT_RECORDS || self.batch_bytes >= COMMIT_BYTES
    }

    /// A write ended: ACK each partition's highest stored offset, or, if it
    /// failed, rewind those partitions so their records are fetched again.
    /// Nothing is ACKed before the write is durable.
    fn on_written(&mut self, res: Result<Vec<Record>, StorageError>, now: Instant) {
        let Some(tops) = self.writing.take() else {
            return;
        };
        match res {
            Ok(emptied) => {
                self.spare = emptied;
                for (topic, partition, offset) in tops {
                    self.part(&topic, partition, now).stored = Some(offset);
                    self.ack(&topic, partition, offset);
                }
            }
            Err(e) => {
                self.counters.write_errors += 1;
                tracing::error!(error = %e, partitions = tops.len(), "write failed; the records will be fetched again");
                let retry = self.cfg.fetch_retry();
                for (topic, partition, _) in tops {
                    let part = self.part(&topic, partition, now);
                    let next = part.stored.map_or(0, |s| s + 1);
                    part.track = Tracked::new(next, AheadLimit::default(), retry);
                    // What arrived meanwhile continues the failed write:
                    // storing it would leave a hole. It is fetched again.
                    self.batch
                        .retain(|r| !(r.partition == partition && *r.topic == *topic));
                }
                self.batch_bytes = self.batch.iter().map(size).sum();
            }
        }
        self.write_if_due(now);
    }

    fn on_done(&mut self, done: StoreDone, now: Instant) {
        match done {
            StoreDone::Written(res) => self.on_written(res, now),
            StoreDone::Synced(Err(e)) => tracing::error!(error = %e, "periodic sync failed"),
            StoreDone::Synced(Ok(())) => {}
            StoreDone::Read { fetch, records } => self.on_read(&fetch, records, now),
            StoreDone::Compared(c) => self.on_compared(c.record, c.held, now),
            StoreDone::Committed {
                sender,
                seq,
                result,
            } => self.on_committed(sender, seq, result, now),
            StoreDone::Positions {
                name,
                sender,
                topics,
                from_time_ms,
                positions,
            } => self.on_positions(name, sender, topics, from_time_ms, positions, now),
            StoreDone::Retained(moved) => self.on_retained(moved),
            StoreDone::Partitions { sender, heads } => self.on_partitions(sender, heads, now),
        }
    }

    /// The highest stored offset of a partition.
    pub fn stored(&self, topic: &str, partition: &NodeId) -> Option<u64> {
        self.parts.get(topic)?.get(partition)?.stored
    }

    /// What went wrong so far.
    pub fn counters(&self) -> StoreCounters {
        self.counters
    }

    /// Partitions tracked, including those known only from HEADs.
    pub fn partitions(&self) -> usize {
        self.parts.values().map(|ps| ps.len()).sum()
    }

    /// Whether a write is in flight.
    pub fn is_writing(&self) -> bool {
        self.writing.is_some()
    }
}

impl Machine for StoreCore {
    type Command = StoreCommand;
    type Delivery = Infallible;
    type Work = StoreWork;
    type Done = StoreDone;

    fn handle(&mut self, input: Input<StoreCommand, StoreDone>, now: Instant) {
        match input {
            Input::Message(m) => self.on_message(m, now),
            Input::Subscribed(p) => self.on_subscribed(&p, now),
            Input::Done(d) => self.on_done(d, now),
            Input::Command(StoreCommand::Stop) => {
                self.stopping = true;
                self.write_if_due(now);
            }
            Input::Beacon(..) => {}
        }
    }

    /// Everything read in one turn is in the batch: write it when due.
    fn end_of_turn(&mut self, now: Instant) {
        self.write_if_due(now);
    }

    /// Repeats FETCHes for gaps whose answer did not come, forgets stale
    /// partitions, and lets an `interval` fsync policy catch up.
    fn on_timeout(&mut self, now: Instant) {
        self.write_if_due(now);
        if self.next_retention.is_some_and(|t| now >= t) {
            self.next_retention = Some(now + self.cfg.retention_check());
            let rules = self.cfg.retention();
            self.outbox.push(Output::Persist(StoreWork::Retain(rules)));
        }
        if now < self.next_scan {
            return;
        }
        self.next_scan = now + RETRY_SCAN;
        if now >= self.next_expiry {
            self.next_expiry = now + PENDING_TTL / 4;
            self.expire_pending(now);
        }
        self.outbox.push(Output::Persist(StoreWork::Sync));
        let gap = |p: &Part| p.conflict.is_none() && p.track.seq.missing().is_some();
        for (topic, partition) in gaps(&self.parts, gap) {
            self.fetch_gap(&topic, partition, now);
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        let commit = self.commit_by.filter(|_| self.writing.is_none());
        let next = commit.map_or(self.next_scan, |c| c.min(self.next_scan));
        Some(self.next_retention.map_or(next, |r| r.min(next)))
    }

    fn drain(&mut self, out: &mut Vec<StoreOutput>) {
        out.append(&mut self.outbox);
    }

    /// Stopped once asked to and the write in hand is durable and ACKed.
    fn is_done(&self) -> bool {
        self.stopping && self.writing.is_none()
    }
}

mod admin;
mod positions;
#[cfg(test)]
mod tests;

/// What a record counts for against [`WRITE_BYTES`]: what it counts for in
/// a producer's unACKed budget (its content and [`RECORD_OVERHEAD`]), so
/// that a write of small records leaves the producer as much room for the
/// next one as a write of large records does.
fn write_cost(r: &Record) -> usize {
    size(r) + RECORD_OVERHEAD
}
