//! The store's protocol logic, with no socket: fed messages and the time,
//! it writes through its [`Storage`] and says what to send.

use crate::config::StoreConfig;
use crate::storage::{ReadLimit, Storage};
use dafka_node::{
    gaps, partition_entry, AheadLimit, Event, Output, Partitions, Sequencer, Tracked,
};
use dafka_proto::{routing, Ack, Fetch, Head, Message, MessageId, NodeId, Record};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often partitions are scanned for gaps whose FETCH needs repeating.
const RETRY_SCAN: Duration = Duration::from_millis(100);

struct Part {
    /// Orders incoming records; `next` runs ahead of `stored` by the batch
    /// being written.
    track: Tracked,
    /// The highest offset durably stored.
    stored: Option<u64>,
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
    write_errors: u64,
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
            write_errors: 0,
        };
        for h in core.storage.heads()? {
            let part = core.part(&h.topic, h.partition);
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

    fn part(&mut self, topic: &str, partition: NodeId) -> &mut Part {
        let retry = self.cfg.fetch_retry();
        partition_entry(&mut self.parts, topic, partition, || Part {
            track: Tracked::new(0, AheadLimit::default(), retry),
            stored: None,
        })
    }

    /// Handles one message or subscription.
    pub fn on_event(&mut self, ev: Event, now: Instant) {
        match ev {
            Event::Message(m) => self.on_message(m, now),
            Event::Subscribed(p) => self.on_subscribed(&p),
        }
    }

    fn on_message(&mut self, msg: Message, now: Instant) {
        match msg {
            Message::Record(r) => self.on_record(r, now),
            Message::DirectRecord { to, record } if to == self.id => self.on_record(record, now),
            Message::Head(h) => self.on_head(h, now),
            Message::Fetch(f) if f.sender != self.id => self.on_fetch(&f),
            Message::GetHeads { topic, sender } => self.send_heads(&topic, sender),
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
        let mut batch = std::mem::take(&mut self.batch);
        let seq = &mut self.part(&rec.topic, partition).track.seq;
        // Skip the topic copy and the FETCH check on the in-order path.
        let topic = seq.may_leave_gap(rec.offset).then(|| rec.topic.clone());
        seq.offer(rec, &mut batch);
        self.batch = batch;
        if let Some(topic) = topic {
            self.fetch_gap(&topic, partition, now);
        }
    }

    fn on_head(&mut self, h: Head, now: Instant) {
        let part = self.part(&h.topic, h.partition);
        part.track.seq.note_head(h.offset);
        // A producer still sending HEADs for what we hold may have missed our
        // ACK (it connected late, or restarted): repeat it.
        if part.stored == Some(h.offset) {
            self.ack(&h.topic, h.partition, h.offset);
        }
        self.fetch_gap(&h.topic, h.partition, now);
    }

    fn fetch_gap(&mut self, topic: &str, partition: NodeId, now: Instant) {
        let (max, id) = (self.cfg.max_fetch, self.id);
        let part = self.part(topic, partition);
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
        let records = match self.storage.read(&f.topic, &f.partition, f.offset, limit) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot answer FETCH");
                return;
            }
        };
        for record in records {
            self.outbox.push(Output::Send(Message::DirectRecord {
                to: f.sender,
                record,
            }));
        }
    }

    fn send_heads(&mut self, topic: &str, to: NodeId) {
        let Some(parts) = self.parts.get(topic) else {
            return;
        };
        for (partition, part) in parts {
            if let Some(offset) = part.stored {
                let head = Head {
                    topic: topic.to_string(),
                    partition: *partition,
                    offset,
                };
                self.outbox
                    .push(Output::Send(Message::DirectHead { to, head }));
            }
        }
    }

    fn on_subscribed(&mut self, prefix: &[u8]) {
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

    fn ack(&mut self, topic: &str, partition: NodeId, offset: u64) {
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
    pub fn flush(&mut self) {
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
                    self.part(&topic, partition).stored = Some(offset);
                    self.ack(&topic, partition, offset);
                }
            }
            Err(e) => {
                self.write_errors += 1;
                tracing::error!(error = %e, records = batch.len(), "write failed; the records will be fetched again");
                let retry = self.cfg.fetch_retry();
                for (topic, partition, _) in tops {
                    let part = self.part(&topic, partition);
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
        if let Err(e) = self.storage.sync_due() {
            tracing::error!(error = %e, "periodic sync failed");
        }
        for (topic, partition) in gaps(&self.parts, |p| p.track.seq.missing().is_some()) {
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

    /// Failed batch writes so far.
    pub fn write_errors(&self) -> u64 {
        self.write_errors
    }

    /// The storage, for inspection in tests.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }
}

#[cfg(test)]
mod tests;
