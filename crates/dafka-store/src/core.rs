//! The store's protocol logic, with no socket: fed messages and the time,
//! it writes through its [`Storage`] and says what to send.

use crate::config::StoreConfig;
use crate::storage::{ReadLimit, Storage};
use dafka_node::stats::RateLimit;
use dafka_node::{
    gaps, partition_entry, AheadLimit, Event, Output, Partitions, Sequencer, Tracked,
};
use dafka_proto::{routing, Ack, Fetch, Head, HeadState, Message, MessageId, NodeId, Record};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often partitions are scanned for gaps whose FETCH needs repeating.
const RETRY_SCAN: Duration = Duration::from_millis(100);
/// Most partitions known only from HEADs (no record yet) held at once: a
/// peer inventing partitions cannot grow the store without bound.
pub const MAX_PENDING_PARTITIONS: usize = 10_000;
/// How long a partition known only from HEADs is kept after its last HEAD.
/// A live producer sends one every `producer.head_interval` (1 s).
pub const PENDING_TTL: Duration = Duration::from_secs(60);
/// Duplicates are compared with the stored record at most this often per
/// partition: a conflicting writer sends nothing but conflicts, so the first
/// check finds it, and a burst of true duplicates costs few reads.
const DUP_CHECK_EVERY: Duration = Duration::from_millis(20);

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
pub struct StoreCore<S: Storage> {
    id: NodeId,
    storage: S,
    cfg: StoreConfig,
    parts: Partitions<Part>,
    batch: Vec<Record>,
    outbox: Vec<Output>,
    next_scan: Instant,
    next_expiry: Instant,
    pending: usize,
    counters: StoreCounters,
    warn: RateLimit,
    /// Info lines (partitions opened, gaps repaired): bunches of 20 a second.
    info: RateLimit,
}

impl<S: Storage> StoreCore<S> {
    /// A store with id `id` over `storage`, resuming every partition it holds.
    pub fn new(
        id: NodeId,
        storage: S,
        cfg: StoreConfig,
        now: Instant,
    ) -> Result<Self, crate::StorageError> {
        let mut core = StoreCore {
            id,
            storage,
            cfg,
            parts: Partitions::default(),
            batch: Vec::new(),
            outbox: Vec::new(),
            next_scan: now,
            next_expiry: now + PENDING_TTL,
            pending: 0,
            counters: StoreCounters::default(),
            warn: RateLimit::new(Duration::from_secs(5)),
            info: RateLimit::burst(Duration::from_secs(1), 20),
        };
        for h in core.storage.heads()? {
            let part = core.part(&h.topic, h.partition, now);
            part.track.seq = Sequencer::new(h.offset + 1, AheadLimit::default());
            part.stored = Some(h.offset);
        }
        let subs = [
            MessageId::Record,
            MessageId::Head,
            MessageId::Fetch,
            MessageId::GetHeads,
        ]
        .map(routing::any_key);
        core.outbox.extend(subs.into_iter().map(Output::Subscribe));
        for id_key in [MessageId::DirectRecord, MessageId::ConsumerHello] {
            core.outbox
                .push(Output::Subscribe(routing::node_key(id_key, &id)));
        }
        Ok(core)
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

    /// Handles one message or subscription.
    pub fn on_event(&mut self, ev: Event, now: Instant) {
        match ev {
            Event::Message(m) => self.on_message(m, now),
            Event::Subscribed(p) => self.on_subscribed(&p, now),
        }
    }

    fn on_message(&mut self, msg: Message, now: Instant) {
        match msg {
            Message::Record(r) => self.on_record(r, now),
            Message::DirectRecord { to, record } if to == self.id => self.on_record(record, now),
            Message::Head(h) => self.on_head(h, now),
            Message::Fetch(f) if f.sender != self.id => self.on_fetch(&f, now),
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
        seq.offer(rec, &mut self.batch);
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
        let held = match self.storage.read(
            &rec.topic,
            &rec.partition,
            rec.offset,
            ReadLimit::records(1),
        ) {
            Ok(mut v) => v.pop().filter(|r| r.offset == rec.offset),
            Err(_) => None, // A read failure is not evidence of a conflict.
        };
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

    fn on_fetch(&mut self, f: &Fetch, now: Instant) {
        // Capped in records and bytes: the asker fetches the rest when this
        // part arrives.
        let limit = ReadLimit {
            records: f.count.min(self.cfg.max_fetch_reply) as usize,
            bytes: self.cfg.max_fetch_reply_bytes,
        };
        let records = match self.storage.read(&f.topic, &f.partition, f.offset, limit) {
            Ok(r) => r,
            Err(e) => return self.unreadable(f, &e, now),
        };
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
        }));
    }

    fn send_heads(&mut self, topic: &str, to: NodeId) {
        let Some(parts) = self.parts.get(topic) else {
            return;
        };
        let heads: Vec<(NodeId, u64)> = parts
            .iter()
            .filter_map(|(p, part)| part.stored.map(|o| (*p, o)))
            .collect();
        for (partition, offset) in heads {
            self.direct_head(to, topic, partition, offset, HeadState::Holds);
        }
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

    /// Writes the records gathered since the last call, then ACKs each
    /// partition's highest stored offset. Nothing is ACKed before the write
    /// returns.
    pub fn flush(&mut self, now: Instant) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let mut tops: HashMap<(&str, NodeId), u64> = HashMap::new();
        for r in &batch {
            tops.insert((r.topic.as_str(), r.partition), r.offset);
        }
        let tops: Vec<(String, NodeId, u64)> = tops
            .into_iter()
            .map(|((t, p), o)| (t.to_string(), p, o))
            .collect();
        match self.storage.write(&batch) {
            Ok(()) => {
                for (topic, partition, offset) in tops {
                    self.part(&topic, partition, now).stored = Some(offset);
                    self.ack(&topic, partition, offset);
                }
            }
            Err(e) => {
                self.counters.write_errors += 1;
                tracing::error!(error = %e, records = batch.len(), "write failed; the records will be fetched again");
                let retry = self.cfg.fetch_retry();
                for (topic, partition, _) in tops {
                    let part = self.part(&topic, partition, now);
                    let next = part.stored.map_or(0, |s| s + 1);
                    part.track = Tracked::new(next, AheadLimit::default(), retry);
                }
            }
        }
    }

    /// Repeats FETCHes for gaps whose answer did not come.
    pub fn on_tick(&mut self, now: Instant) {
        if now < self.next_scan {
            return;
        }
        self.next_scan = now + RETRY_SCAN;
        if now >= self.next_expiry {
            self.next_expiry = now + PENDING_TTL / 4;
            self.expire_pending(now);
        }
        if let Err(e) = self.storage.sync_due() {
            tracing::error!(error = %e, "periodic sync failed");
        }
        let gap = |p: &Part| p.conflict.is_none() && p.track.seq.missing().is_some();
        for (topic, partition) in gaps(&self.parts, gap) {
            self.fetch_gap(&topic, partition, now);
        }
    }

    /// When the next retry scan is due.
    pub fn next_deadline(&self) -> Instant {
        self.next_scan
    }

    /// Moves pending outputs into `out`.
    pub fn drain(&mut self, out: &mut Vec<Output>) {
        out.append(&mut self.outbox);
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

    /// The storage, for inspection in tests.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }
}

#[cfg(test)]
mod tests;
