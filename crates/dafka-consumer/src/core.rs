//! The consumer's protocol logic, with no socket.
//!
//! Per partition it delivers records in offset order, once, with no gap:
//! records past a gap are held (within a bound), the gap is FETCHed from
//! stores and the producer, and a FETCH is repeated only if its answer does
//! not come. HEADs reveal gaps at the end of a partition; with `earliest`,
//! GET-HEADS and the STORE-HELLO / CONSUMER-HELLO handshake reveal
//! partitions whose producer is long gone.

use crate::config::{ConsumerConfig, OffsetReset};
use dafka_proto::{routing, Head, HeadState, Message, MessageId, NodeId, Position, Record};
use dafka_protocol::tuning::{INFO_BURST, INFO_PERIOD, RETRY_SCAN, SILENT_PRODUCER, WARN_PERIOD};
use dafka_protocol::{
    gaps, partition_entry, AheadLimit, FastMap, Input, Machine, Output, Partitions, RateLimit,
    Tracked,
};
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::{Duration, Instant};

/// What the application asks of a consumer.
#[derive(Debug)]
pub enum ConsumerCommand {
    /// Start reading a topic (a valid name: see
    /// `dafka_proto::validate_topic`).
    Subscribe(String),
    /// Stop reading a topic and forget its partitions.
    Unsubscribe(String),
    /// Read only `partition` of `topic` (subscribing to the topic), from
    /// `offset` (or where the reset rule or a committed position says).
    Assign {
        /// The topic.
        topic: String,
        /// The one partition to read.
        partition: NodeId,
        /// Where to start; `None`: as any partition would.
        offset: Option<u64>,
    },
    /// Say what is known to be missing ([`ConsumerDelivery::Gaps`]).
    Gaps,
    /// The application processed every record below these positions (a
    /// named consumer commits them; others ignore it).
    Processed(Vec<Position>),
    /// Commit what was processed now; answer [`ConsumerDelivery::Committed`]
    /// with this ticket once the stores acknowledged it.
    CommitNow(u64),
    /// Say where every partition stands ([`ConsumerDelivery::Positions`]).
    Positions,
    /// Say whether everything known to exist is delivered
    /// ([`ConsumerDelivery::AtEnd`]).
    AtEnd,
    /// Stop.
    Close,
}

/// What a consumer hands its application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerDelivery {
    /// The next records, each partition's in order, each once: all that
    /// became ready in one turn, handed over together so that a record
    /// is not moved through the driver's output queue one at a time.
    Records(Vec<Record>),
    /// The answer to [`ConsumerCommand::Gaps`].
    Gaps(Vec<Gap>),
    /// Every commit up to a [`ConsumerCommand::CommitNow`] is acknowledged.
    Committed(u64),
    /// The answer to [`ConsumerCommand::Positions`].
    Positions(Vec<PartitionPosition>),
    /// The answer to [`ConsumerCommand::AtEnd`].
    AtEnd(bool),
    /// The group's assignment changed.
    Group(GroupEvent),
}

/// A change of the partitions a group member reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// These partitions are this member's now: it reads them from the
    /// group's committed positions.
    Assigned(Vec<(String, NodeId)>),
    /// These partitions went to other members: records of them already
    /// delivered may still be processed and committed (positions only move
    /// forward), but no more come.
    Revoked(Vec<(String, NodeId)>),
}

/// A consumer's outputs.
pub type ConsumerOutput = Output<ConsumerDelivery, Infallible>;

/// Records a consumer knows exist but has not delivered: the first missing
/// range of a partition, and why, if a store said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: NodeId,
    /// The first offset not delivered.
    pub from: u64,
    /// One past the last offset known to be missing.
    pub to: u64,
    /// A store that holds the range but cannot read it, and its reason.
    pub unreadable: Option<(Option<NodeId>, String)>,
}

/// A store's word that it cannot read a partition from an offset.
#[derive(Clone, Debug)]
struct Unreadable {
    from: u64,
    store: Option<NodeId>,
    reason: String,
}

/// One consumer's subscriptions and partitions.
pub struct ConsumerCore {
    id: NodeId,
    cfg: ConsumerConfig,
    topics: BTreeSet<String>,
    parts: Partitions<Tracked>,
    ready: Vec<Record>,
    /// The last delivered buffer, handed back emptied: the next turn's
    /// records go into it (see [`Machine::reuse`]).
    spare: Vec<Record>,
    outbox: Vec<ConsumerOutput>,
    closed: bool,
    next_scan: Instant,
    next_refresh: Instant,
    /// What stores said they cannot read, by partition.
    unreadable: FastMap<(String, NodeId), Unreadable>,
    warn: RateLimit,
    /// Info lines (gaps repaired): bunches of 20 a second.
    info: RateLimit,
    /// Positions, for a consumer with a name.
    named: Option<Named>,
    /// Topics read for one partition only, and where it starts.
    assigned: FastMap<String, (NodeId, Option<u64>)>,
    /// Topics a store has told every partition it holds of (its answer's
    /// end arrived after the partitions were known).
    heads_heard: BTreeSet<String>,
    /// Stores are asked for heads because the application wants to know
    /// when it has reached the end.
    heads_wanted: bool,
    /// The consumer's group, if it is in one.
    group: Option<Group>,
}

impl ConsumerCore {
    /// A consumer with id `id` and no subscriptions.
    pub fn new(id: NodeId, cfg: ConsumerConfig, now: Instant) -> Self {
        let mine = [
            MessageId::DirectRecord,
            MessageId::DirectHead,
            MessageId::StoreHello,
        ];
        let mut outbox: Vec<ConsumerOutput> = mine
            .iter()
            .map(|k| Output::Subscribe(routing::node_key(*k, &id)))
            .collect();
        let from_time = (cfg.from_time > 0).then_some(cfg.from_time);
        let named = (!cfg.name.is_empty() || from_time.is_some())
            .then(|| Named::new(cfg.name.clone(), from_time, now));
        if named.is_some() {
            let subs = Self::named_subscriptions(id);
            outbox.extend(subs.into_iter().map(Output::Subscribe));
        }
        ConsumerCore {
            id,
            topics: BTreeSet::new(),
            parts: Partitions::default(),
            ready: Vec::new(),
            spare: Vec::new(),
            outbox,
            closed: false,
            next_scan: now,
            next_refresh: now + Duration::from_millis(cfg.heads_refresh),
            unreadable: FastMap::default(),
            warn: RateLimit::new(WARN_PERIOD),
            info: RateLimit::burst(INFO_PERIOD, INFO_BURST),
            named,
            assigned: FastMap::default(),
            heads_heard: BTreeSet::new(),
            heads_wanted: false,
            group: None,
            cfg,
        }
    }

    /// Joins `consumer.group` (if set): members are dropped after
    /// `timeout` of silence, and none is owned until the towers' list of
    /// peers arrives or `settle` has passed.
    /// A partition won from a member still alive starts `handover` later.
    pub fn join_group(
        &mut self,
        timeout: Duration,
        settle: Duration,
        handover: Duration,
        now: Instant,
    ) {
        if self.cfg.group.is_empty() {
            return;
        }
        let (name, me) = (self.cfg.group.clone(), self.id);
        let mut g = Group::new(name, me, timeout, settle, handover, now);
        let topics = g.set_topics(self.topics.iter().map(String::as_str));
        let group = g.name().to_string();
        self.group = Some(g);
        self.outbox.push(Output::Announce { group, topics });
    }

    /// The topic set changed: a member's beacon says so.
    fn announce_topics(&mut self) {
        let Some(g) = self.group.as_mut() else {
            return;
        };
        let topics = g.set_topics(self.topics.iter().map(String::as_str));
        let group = g.name().to_string();
        self.outbox.push(Output::Announce { group, topics });
    }

    /// Whether this member reads `partition` (always, outside a group).
    /// A partition seen for the first time may change the assignment.
    fn group_admits(&mut self, topic: &str, partition: NodeId, now: Instant) -> bool {
        let Some(g) = self.group.as_mut() else {
            return true;
        };
        if g.note(topic, partition) {
            self.rebalance(now);
        }
        self.group
            .as_ref()
            .is_some_and(|g| g.owns(topic, partition))
    }

    /// Recomputes the assignment and acts on the change: a lost partition
    /// is dropped and what was processed of it committed at once; a gained
    /// topic's positions are loaded again (the previous owner committed
    /// since), and the partitions start there.
    fn rebalance(&mut self, now: Instant) {
        let Some(g) = self.group.as_mut() else {
            return;
        };
        let change = g.reassign(now);
        let (members, owned) = (g.members().len(), g.owned_count());
        // Said when the partitions or the members counted change (an
        // operator, and the tests, follow the group by these lines).
        if g.counted(members) {
            tracing::info!(group = %self.cfg.group, members, owned, gained = change.gained.len(), lost = change.lost.len(), "group assignment changed");
        }
        if change.lost.is_empty() && change.gained.is_empty() {
            return;
        }
        for (topic, partition) in &change.lost {
            if let Some(ps) = self.parts.get_mut(topic) {
                ps.remove(partition);
            }
        }
        if !change.lost.is_empty() {
            self.send_commits(now);
            let lost = GroupEvent::Revoked(change.lost);
            self.outbox
                .push(Output::Deliver(ConsumerDelivery::Group(lost)));
        }
        if !change.gained.is_empty() {
            let topics: BTreeSet<String> = change.gained.iter().map(|(t, _)| t.clone()).collect();
            for t in topics {
                self.load_positions(&t, now);
            }
            let gained = GroupEvent::Assigned(change.gained);
            self.outbox
                .push(Output::Deliver(ConsumerDelivery::Group(gained)));
        }
    }

    /// A beacon or the towers' list: the group's members.
    fn on_discovery(&mut self, msg: &Message, now: Instant) {
        let Some(g) = self.group.as_mut() else {
            return;
        };
        let changed = match msg {
            Message::Beacon(b) => g.on_beacon(b, now),
            Message::TowerHello { peers, .. } => {
                g.settled(now);
                let mut changed = true;
                for b in peers {
                    let age = Duration::from_millis(u64::from(b.age_ms));
                    changed |= g.on_beacon(b, now.checked_sub(age).unwrap_or(now));
                }
                changed
            }
            _ => false,
        };
        if changed {
            self.rebalance(now);
        }
    }

    /// Reads only `partition` of `topic`, from `offset` if given. The
    /// stores are asked for the topic's heads, so the partition is found
    /// even when its producer is gone.
    pub fn assign(&mut self, topic: &str, partition: NodeId, offset: Option<u64>, now: Instant) {
        self.assigned.insert(topic.to_string(), (partition, offset));
        self.parts.remove(topic);
        let known = self.topics.contains(topic);
        self.subscribe(topic, now);
        if known || self.named.is_none() {
            self.get_heads(topic.to_string());
        }
    }

    /// Whether stores are asked for every partition of a topic: with
    /// `earliest`, with a name (committed partitions may have no live
    /// producer), or when reading an assigned partition (likewise).
    fn asks_stores(&self) -> bool {
        self.cfg.offset_reset == OffsetReset::Earliest
            || self.named.is_some()
            || !self.assigned.is_empty()
            || self.heads_wanted
    }

    /// Whether every record known to exist is delivered: a store has told
    /// every partition it holds of each topic, and each partition is
    /// delivered up to its head with no gap. The first question makes a
    /// consumer that does not ask stores start asking.
    pub fn at_end(&mut self) -> bool {
        if !self.asks_stores() {
            self.heads_wanted = true;
            let topics: Vec<String> = self.topics.iter().cloned().collect();
            topics.into_iter().for_each(|t| self.get_heads(t));
        }
        let heard = self.topics.iter().all(|t| self.heads_heard.contains(t));
        let caught_up =
            self.parts.values().flat_map(|ps| ps.values()).all(|p| {
                p.seq.missing().is_none() && p.seq.head().is_none_or(|h| p.seq.next() > h)
            });
        heard && caught_up
    }

    /// A store's answer about a whole topic ended: what it holds is known
    /// (unless the topic's positions are still loading: its heads were
    /// ignored).
    fn heads_end(&mut self, topic: &str) {
        let loading = self.named.as_ref().is_some_and(|n| n.is_loading(topic));
        if self.topics.contains(topic) && !loading {
            self.heads_heard.insert(topic.to_string());
        }
    }

    /// Subscribes to a topic (the name must be valid: see
    /// `dafka_proto::validate_topic`).
    pub fn subscribe(&mut self, topic: &str, now: Instant) {
        if !self.topics.insert(topic.to_string()) {
            return;
        }
        self.announce_topics();
        for k in [MessageId::Record, MessageId::Head] {
            self.outbox
                .push(Output::Subscribe(routing::topic_key(k, topic)));
        }
        if self.named.is_some() {
            // Heads are asked for once the positions are known.
            self.load_positions(topic, now);
        } else if self.cfg.offset_reset == OffsetReset::Earliest {
            self.get_heads(topic.to_string());
        }
    }

    fn get_heads(&mut self, topic: String) {
        let ask = Message::GetHeads {
            topic,
            sender: self.id,
            partition: None,
        };
        self.outbox.push(Output::Send(ask));
    }

    /// Unsubscribes from a topic and forgets its partitions.
    pub fn unsubscribe(&mut self, topic: &str) {
        if self.topics.remove(topic) {
            for k in [MessageId::Record, MessageId::Head] {
                self.outbox
                    .push(Output::Unsubscribe(routing::topic_key(k, topic)));
            }
            self.parts.remove(topic);
            if let Some(g) = self.group.as_mut() {
                g.forget_topic(topic);
            }
            self.announce_topics();
        }
    }

    /// The topics subscribed to.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.topics.iter().map(String::as_str)
    }

    fn on_message(&mut self, msg: Message, now: Instant) {
        match msg {
            Message::Record(r) => self.on_record(r, true, now),
            Message::Beacon(_) | Message::TowerHello { .. } => self.on_discovery(&msg, now),
            Message::DirectRecord { to, record } if to == self.id => {
                self.on_record(record, false, now)
            }
            Message::Head(h) => {
                if let Some(part) = self
                    .parts
                    .get_mut(&h.topic)
                    .and_then(|ps| ps.get_mut(&h.partition))
                {
                    part.heard_live(now);
                }
                self.on_head(h, now)
            }
            Message::DirectHead {
                to,
                head,
                store,
                state,
                log_start,
            } if to == self.id => match state {
                HeadState::Holds => {
                    if log_start > 0 {
                        self.on_log_start(&head, store, log_start, now);
                    }
                    self.on_head(head, now)
                }
                HeadState::Empty if head.partition == NodeId::NONE => self.heads_end(&head.topic),
                HeadState::Empty => {}
                HeadState::Unreadable { from, reason } => {
                    self.on_unreadable(head, store, from, reason, now)
                }
            },
            Message::StoreHello { to, store } if to == self.id => {
                self.named_greeted(store);
                self.hello(store);
            }
            Message::CommitAck { to, store, seq } if to == self.id => {
                self.on_commit_ack(store, seq)
            }
            Message::DirectPositions {
                to,
                store,
                name,
                topics,
                positions,
                more,
                from_time_ms,
            } if to == self.id => {
                let answer = PositionsAnswer {
                    name,
                    topics,
                    positions,
                    more,
                    from_time_ms,
                };
                self.on_direct_positions(store, answer)
            }
            _ => {}
        }
    }

    /// A store connected to us and listens for our hello: send it, so it
    /// answers with the heads of our topics. This covers the store that
    /// joined after our GET-HEADS went out, whichever side connected first.
    ///
    /// A node that starts listening for our FETCHes (a producer for its
    /// partition, a store for all) may be the one that holds what a FETCH
    /// sent a moment earlier asked for: that FETCH went to nobody, and
    /// waiting for the retry interval cost a 300,000-record burst its whole
    /// length (the first records of a new producer, missed before our
    /// connection to it was up, repaired only after the rest had arrived).
    fn on_subscribed(&mut self, prefix: &[u8], now: Instant) {
        let Some((&kind, node)) = prefix.split_first() else {
            return;
        };
        if kind == MessageId::ConsumerHello as u8 {
            if let Some(store) = NodeId::from_slice(node) {
                self.hello(store);
            }
        } else if kind == MessageId::Fetch as u8 {
            self.fetch_again(NodeId::from_slice(node), now);
        }
    }

    /// Asks now for every gap (of `only` that partition), whatever is in
    /// flight.
    fn fetch_again(&mut self, only: Option<NodeId>, now: Instant) {
        let gapped = gaps(&self.parts, |p| p.seq.missing().is_some());
        for (topic, partition) in gapped {
            if only.is_some_and(|p| p != partition) {
                continue;
            }
            if let Some(part) = self
                .parts
                .get_mut(&topic)
                .and_then(|ps| ps.get_mut(&partition))
            {
                part.pacer.clear();
            }
            self.fetch_gap(&topic, partition, now);
        }
    }

    fn hello(&mut self, store: NodeId) {
        // With `latest` and no name there is nothing old to learn about.
        let topics = if self.asks_stores() {
            self.topics.iter().cloned().collect()
        } else {
            Vec::new()
        };
        let msg = Message::ConsumerHello {
            to: store,
            consumer: self.id,
            topics,
        };
        self.outbox.push(Output::Send(msg));
    }

    /// The partition's state, created on first sight at the offset the
    /// reset policy says (`start_latest` is where `latest` would begin).
    fn part(
        &mut self,
        topic: &str,
        partition: NodeId,
        start_latest: u64,
        now: Instant,
    ) -> Option<&mut Tracked> {
        if !self.topics.contains(topic) {
            return None; // Not (or no longer) subscribed.
        }
        if !self.group_admits(topic, partition, now) {
            return None; // Another member's.
        }
        let named = self.named.as_ref();
        if named.is_some_and(|n| n.is_loading(topic)) {
            return None; // Where to start is not known yet.
        }
        let assigned = match self.assigned.get(topic) {
            Some((p, _)) if *p != partition => return None, // not the one
            Some((_, offset)) => *offset,
            None => None,
        };
        let committed = named.and_then(|n| n.committed(topic, partition));
        let start = match (assigned.or(committed), self.cfg.offset_reset) {
            (Some(at), _) => at,
            (None, OffsetReset::Earliest) => 0,
            (None, OffsetReset::Latest) => start_latest,
        };
        let limit = AheadLimit {
            records: self.cfg.max_ahead,
            ..AheadLimit::default()
        };
        let retry = self.cfg.fetch_retry();
        Some(partition_entry(&mut self.parts, topic, partition, || {
            Tracked::new(start, limit, retry)
        }))
    }

    /// A record, `live` from its producer or fetched.
    fn on_record(&mut self, rec: Record, live: bool, now: Instant) {
        let partition = rec.partition;
        let mut ready = std::mem::take(&mut self.ready);
        let mut gap_topic = None;
        // `latest` starts at the first record seen.
        let mut repaired = None;
        if let Some(part) = self.part(&rec.topic, partition, rec.offset, now) {
            if live {
                part.heard_live(now);
            }
            // Skip the topic copy and the FETCH check on the in-order path.
            if part.seq.may_leave_gap(rec.offset) {
                gap_topic = Some(rec.topic.clone());
            }
            let had_gap = gap_topic.is_some() && part.seq.missing().is_some();
            part.seq.offer(rec, &mut ready);
            if had_gap && part.seq.missing().is_none() {
                repaired = Some(part.seq.next());
            }
        }
        self.ready = ready;
        if let Some(topic) = gap_topic {
            if let Some(next) = repaired {
                if let Some(suppressed) = self.info.allow(now) {
                    tracing::info!(%topic, %partition, next, suppressed, "gap repaired");
                }
            }
            self.fetch_gap(&topic, partition, now);
        }
    }

    fn on_head(&mut self, h: Head, now: Instant) {
        // `latest` starts after a head: only records published from now on.
        let Some(part) = self.part(&h.topic, h.partition, h.offset.saturating_add(1), now) else {
            return;
        };
        part.seq.note_head(h.offset);
        self.fetch_gap(&h.topic, h.partition, now);
    }

    /// A store deleted (retention) what lies below `log_start`: a
    /// partition still expecting offsets below it moves on as
    /// `offset_reset` says (to the log start, or past the head), and says
    /// once what it skipped.
    fn on_log_start(&mut self, head: &Head, store: Option<NodeId>, log_start: u64, now: Instant) {
        let reset = self.cfg.offset_reset;
        let resume = match reset {
            OffsetReset::Earliest => log_start,
            OffsetReset::Latest => head.offset.saturating_add(1),
        };
        let mut ready = std::mem::take(&mut self.ready);
        let skipped = self
            .part(
                &head.topic,
                head.partition,
                head.offset.saturating_add(1),
                now,
            )
            .filter(|p| p.seq.next() < log_start)
            .and_then(|p| {
                p.pacer.clear();
                p.seq.skip_to(resume, &mut ready)
            });
        self.ready = ready;
        if let Some((from, to)) = skipped {
            tracing::warn!(topic = %head.topic, partition = %head.partition, from, to = to - 1, log_start, ?store, offset_reset = ?reset, "records this consumer had not read were deleted by retention; skipping them");
            self.fetch_gap(&head.topic, head.partition, now);
        }
    }

    /// A store holds records it cannot read. Other stores (and the
    /// producer) got the same FETCH and may answer; if none does, the gap
    /// is reported with this reason rather than waited on in silence.
    fn on_unreadable(
        &mut self,
        head: Head,
        store: Option<NodeId>,
        from: u64,
        reason: String,
        now: Instant,
    ) {
        if let Some(suppressed) = self.warn.allow(now) {
            tracing::warn!(topic = %head.topic, partition = %head.partition, offset = from, store = ?store, %reason, suppressed, "a store cannot read records; asking the others");
        }
        let key = (head.topic.clone(), head.partition);
        self.unreadable.insert(
            key,
            Unreadable {
                from,
                store,
                reason,
            },
        );
        self.on_head(head, now);
    }

    /// Every partition with records known to exist and not yet delivered.
    pub fn gaps(&self) -> Vec<Gap> {
        let mut out = Vec::new();
        for (topic, ps) in &self.parts {
            for (partition, part) in ps {
                let Some((from, count)) = part.seq.missing() else {
                    continue;
                };
                let to = from.saturating_add(count);
                let unreadable = self
                    .unreadable
                    .get(&(topic.clone(), *partition))
                    .filter(|u| u.from >= from && u.from < to)
                    .map(|u| (u.store, u.reason.clone()));
                out.push(Gap {
                    topic: topic.clone(),
                    partition: *partition,
                    from,
                    to,
                    unreadable,
                });
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }

    fn fetch_gap(&mut self, topic: &str, partition: NodeId, now: Instant) {
        let (max, id) = (self.cfg.max_fetch, self.id);
        let Some(part) = self
            .parts
            .get_mut(topic)
            .and_then(|ps| ps.get_mut(&partition))
        else {
            return;
        };
        if let Some(f) = part.fetch_due(topic, partition, id, max, now) {
            tracing::debug!(%topic, %partition, offset = f.offset, count = f.count, "FETCH");
            self.outbox.push(Output::Send(Message::Fetch(f)));
        }
    }

    /// Repeats FETCHes for gaps whose answer did not come, and refreshes
    /// heads with `earliest`.
    fn timers(&mut self, now: Instant) {
        if let Some(g) = self.group.as_mut() {
            // A member gone silent, or the wait for the member list over.
            let gone = g.expire(now);
            // Anything else that moves partitions (a beacon, a new
            // partition) rebalances where it arrives.
            if gone || g.settle_due(now) || g.handover_due(now) {
                self.rebalance(now);
            }
        }
        if now >= self.next_refresh {
            self.next_refresh = now + Duration::from_millis(self.cfg.heads_refresh);
            if self.asks_stores() {
                let topics: Vec<String> = self.topics.iter().cloned().collect();
                topics.into_iter().for_each(|t| self.get_heads(t));
            }
        }
        self.named_timers(now);
        if now < self.next_scan {
            return;
        }
        self.next_scan = now + RETRY_SCAN;
        for (topic, partition) in gaps(&self.parts, |p| p.seq.missing().is_some()) {
            self.fetch_gap(&topic, partition, now);
        }
        self.ask_about_silent(now);
    }

    /// Asks the stores for the heads of topics with a partition whose
    /// producer fell silent (once per silence): records it sent after its
    /// last HEAD that reached us may have been dropped on the way.
    fn ask_about_silent(&mut self, now: Instant) {
        let mut topics = BTreeSet::new();
        for (topic, ps) in self.parts.iter_mut() {
            for part in ps.values_mut() {
                let silent = part
                    .live
                    .is_some_and(|t| now.saturating_duration_since(t) >= SILENT_PRODUCER);
                if silent && !part.asked_silent {
                    part.asked_silent = true;
                    topics.insert(topic.clone());
                }
            }
        }
        topics.into_iter().for_each(|t| self.get_heads(t));
    }

    /// Takes the records ready for the application, in order per partition
    /// (what [`Machine::drain`] would hand over as deliveries).
    pub fn take_ready(&mut self) -> std::vec::Drain<'_, Record> {
        self.ready.drain(..)
    }

    /// What it sent and subscribed to, leaving ready records in place.
    #[cfg(test)]
    fn take_outbox(&mut self) -> Vec<ConsumerOutput> {
        std::mem::take(&mut self.outbox)
    }

    /// The next offset to be delivered for a partition.
    pub fn position(&self, topic: &str, partition: &NodeId) -> Option<u64> {
        Some(self.parts.get(topic)?.get(partition)?.seq.next())
    }
}

impl Machine for ConsumerCore {
    type Command = ConsumerCommand;
    type Delivery = ConsumerDelivery;
    type Work = Infallible;
    type Done = Infallible;

    fn handle(&mut self, input: Input<ConsumerCommand, Infallible>, now: Instant) {
        match input {
            Input::Message(m) => self.on_message(m, now),
            Input::Subscribed(p) => self.on_subscribed(&p, now),
            Input::Command(ConsumerCommand::Subscribe(t)) => self.subscribe(&t, now),
            Input::Command(ConsumerCommand::Assign {
                topic,
                partition,
                offset,
            }) => self.assign(&topic, partition, offset, now),
            Input::Command(ConsumerCommand::Processed(p)) => self.note_processed(p),
            Input::Command(ConsumerCommand::CommitNow(ticket)) => self.commit_now(ticket, now),
            Input::Command(ConsumerCommand::AtEnd) => {
                let at_end = self.at_end();
                self.outbox
                    .push(Output::Deliver(ConsumerDelivery::AtEnd(at_end)));
            }
            Input::Command(ConsumerCommand::Positions) => {
                let positions = self.positions();
                self.outbox
                    .push(Output::Deliver(ConsumerDelivery::Positions(positions)));
            }
            Input::Command(ConsumerCommand::Unsubscribe(t)) => self.unsubscribe(&t),
            Input::Command(ConsumerCommand::Gaps) => {
                let gaps = self.gaps();
                self.outbox
                    .push(Output::Deliver(ConsumerDelivery::Gaps(gaps)));
            }
            Input::Command(ConsumerCommand::Close) => self.closed = true,
            Input::Beacon(..) => {}
            Input::Done(never) => match never {},
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        self.timers(now);
    }

    fn next_timeout(&self) -> Option<Instant> {
        let named = self.named.as_ref().and_then(Named::next_timeout);
        let timers = self.next_scan.min(self.next_refresh);
        Some(named.map_or(timers, |n| n.min(timers)))
    }

    /// What to send, then the records ready, in order.
    fn drain(&mut self, out: &mut Vec<ConsumerOutput>) {
        out.append(&mut self.outbox);
        if !self.ready.is_empty() {
            // The next turn's records go into the buffer delivered before,
            // or one with room for half as many again as this turn's (turns
            // vary in size): grown from empty, it would be copied at each
            // doubling, and a buffer a little too small is replaced by a
            // fresh one that grows in its turn.
            let spare = std::mem::take(&mut self.spare);
            let len = self.ready.len();
            let next = if spare.capacity() >= len {
                spare
            } else {
                Vec::with_capacity(len + len / 2)
            };
            let ready = std::mem::replace(&mut self.ready, next);
            out.push(Output::Deliver(ConsumerDelivery::Records(ready)));
        }
    }

    fn reuse(&mut self, emptied: ConsumerDelivery) {
        if let ConsumerDelivery::Records(mut v) = emptied {
            v.clear();
            if v.capacity() > self.spare.capacity() {
                self.spare = v;
            }
        }
    }

    fn is_done(&self) -> bool {
        self.closed
    }
}

mod group;
mod named;
use group::Group;
pub use group::{assign, topics_hash, TopicPartition};
pub use named::PartitionPosition;
use named::{Named, PositionsAnswer};

#[cfg(test)]
mod named_tests;
#[cfg(test)]
mod tests;
