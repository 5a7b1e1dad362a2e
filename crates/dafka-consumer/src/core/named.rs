//! A named consumer's positions (`consumer.name`): loaded from the stores
//! before any partition of a topic starts, committed to them as the
//! application processes records.
//!
//! Loading: GET-POSITIONS goes to every store, again every `fetch_retry`
//! until the topic is loaded, that is until `commit_acks` stores answered
//! and either every store that greeted this consumer answered or one more
//! retry interval passed. Per partition the highest position any store
//! reports wins (a store that missed commits only makes records come twice,
//! never skipped). Until then the topic's records and heads are ignored;
//! they come again (HEADs every second, FETCHes from the stores).
//!
//! Starting at a time (`consumer.from_time`) loads the same way: the
//! question carries the time, and each store answers per partition with
//! the first offset at or after it (from its time index). A store that
//! lacks the newest records answers lower, never higher, so the highest
//! answer wins here too. Without a name nothing is committed.
//!
//! Committing: positions the application reports are sent in a COMMIT every
//! `commit_interval` (at once on request) and count as committed once
//! `commit_acks` distinct stores acknowledged them; unacknowledged commits
//! are sent again every `fetch_retry`.

use super::{ConsumerCore, ConsumerDelivery};
use dafka_proto::{routing, Message, MessageId, NodeId, Position};
use dafka_protocol::{FastMap, Output};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Positions per COMMIT: far below the decoder's limit and, with the
/// longest topics, well inside a header frame.
const POSITIONS_PER_COMMIT: usize = 1000;

/// Where one partition stands for the application, as
/// `Consumer::positions` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionPosition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: NodeId,
    /// The next offset the consumer will deliver.
    pub position: u64,
    /// The position committed for the consumer's name (`None`: nothing
    /// yet, or no name).
    pub committed: Option<u64>,
    /// The last offset known to exist (HEAD, DIRECT-HEAD or a record).
    pub head: Option<u64>,
}

impl PartitionPosition {
    /// Records known to exist and not yet delivered.
    pub fn lag(&self) -> u64 {
        self.head
            .map_or(0, |h| h.saturating_add(1).saturating_sub(self.position))
    }
}

/// A store's DIRECT-POSITIONS, less the addressing.
#[derive(Debug)]
pub(super) struct PositionsAnswer {
    pub name: String,
    pub topics: Vec<String>,
    pub positions: Vec<Position>,
    pub more: bool,
    pub from_time_ms: Option<u64>,
}

/// A topic whose positions are still being asked for.
#[derive(Debug)]
struct Loading {
    /// Stores that gave their whole answer.
    answered: BTreeSet<NodeId>,
    /// The highest position heard per partition.
    heard: FastMap<NodeId, u64>,
    /// When to ask again (and, once enough stores answered, stop waiting
    /// for the others).
    next_ask: Instant,
    /// When to say that the answers are slow to come (once).
    warn_at: Option<Instant>,
}

/// How long a topic may wait for positions before the consumer says so.
const SLOW_POSITIONS: Duration = Duration::from_secs(3);

/// A COMMIT waiting for its acknowledgements.
#[derive(Debug)]
struct InFlight {
    positions: Vec<Position>,
    acks: BTreeSet<NodeId>,
    resend_at: Instant,
}

/// A named consumer's position bookkeeping (or, for a consumer starting
/// at a time, where each partition starts).
#[derive(Debug)]
pub(super) struct Named {
    /// Empty for a consumer without a name that starts at a time.
    name: String,
    /// The time to start at, asked instead of the committed positions.
    from_time: Option<u64>,
    loading: BTreeMap<String, Loading>,
    /// Where each partition starts: the committed position when loaded.
    committed: FastMap<(String, NodeId), u64>,
    /// Stores that greeted this consumer (STORE-HELLO).
    greeted: BTreeSet<NodeId>,
    /// Positions reported by the application and not yet sent.
    unsent: FastMap<(String, NodeId), u64>,
    next_commit: Instant,
    seq: u64,
    in_flight: BTreeMap<u64, InFlight>,
    /// Tickets of `commit_sync` callers, each waiting for every commit up
    /// to a sequence number.
    waiting: Vec<(u64, u64)>,
}

impl Named {
    pub(super) fn new(name: String, from_time: Option<u64>, now: Instant) -> Self {
        Named {
            name,
            from_time,
            loading: BTreeMap::new(),
            committed: FastMap::default(),
            greeted: BTreeSet::new(),
            unsent: FastMap::default(),
            next_commit: now,
            seq: 0,
            in_flight: BTreeMap::new(),
            waiting: Vec::new(),
        }
    }

    /// Whether `topic`'s positions are still being asked for.
    pub(super) fn is_loading(&self, topic: &str) -> bool {
        self.loading.contains_key(topic)
    }

    /// The committed position of a partition (or the one found for the
    /// start time): where it starts when first seen.
    pub(super) fn committed(&self, topic: &str, partition: NodeId) -> Option<u64> {
        self.committed.get(&(topic.to_string(), partition)).copied()
    }

    /// Whether positions are committed under a name.
    fn commits(&self) -> bool {
        !self.name.is_empty()
    }

    pub(super) fn next_timeout(&self) -> Option<Instant> {
        let ask = self.loading.values().map(|l| l.next_ask).min();
        let resend = self.in_flight.values().map(|f| f.resend_at).min();
        let commit = (!self.unsent.is_empty()).then_some(self.next_commit);
        [ask, resend, commit].into_iter().flatten().min()
    }
}

impl ConsumerCore {
    /// The subscriptions a named consumer adds: its COMMIT-ACKs and
    /// DIRECT-POSITIONS.
    pub(super) fn named_subscriptions(id: NodeId) -> [Vec<u8>; 2] {
        [
            routing::node_key(MessageId::CommitAck, &id),
            routing::node_key(MessageId::DirectPositions, &id),
        ]
    }

    /// Starts loading `topic`'s positions.
    pub(super) fn load_positions(&mut self, topic: &str, now: Instant) {
        let retry = self.cfg.fetch_retry();
        let Some(named) = self.named.as_mut() else {
            return;
        };
        let loading = Loading {
            answered: BTreeSet::new(),
            heard: FastMap::default(),
            next_ask: now + retry,
            warn_at: Some(now + SLOW_POSITIONS),
        };
        named.loading.insert(topic.to_string(), loading);
        self.ask_positions(vec![topic.to_string()]);
    }

    fn ask_positions(&mut self, topics: Vec<String>) {
        let Some(named) = self.named.as_ref() else {
            return;
        };
        if topics.is_empty() {
            return;
        }
        let ask = Message::GetPositions {
            name: named.name.clone(),
            sender: self.id,
            topics,
            from_time_ms: named.from_time,
        };
        self.outbox.push(Output::Send(ask));
    }

    /// A store greeted us: it may have missed our questions.
    pub(super) fn named_greeted(&mut self, store: NodeId) {
        let Some(named) = self.named.as_mut() else {
            return;
        };
        named.greeted.insert(store);
        let topics = named.loading.keys().cloned().collect();
        self.ask_positions(topics);
    }

    /// A store's (part of an) answer to GET-POSITIONS.
    pub(super) fn on_direct_positions(&mut self, store: NodeId, answer: PositionsAnswer) {
        let PositionsAnswer {
            name,
            topics,
            positions,
            more,
            from_time_ms,
        } = answer;
        let Some(named) = self.named.as_mut() else {
            return;
        };
        if name != named.name || from_time_ms != named.from_time {
            return; // An answer to another question.
        }
        for p in positions {
            if let Some(l) = named.loading.get_mut(&p.topic) {
                let h = l.heard.entry(p.partition).or_insert(p.offset);
                *h = (*h).max(p.offset);
            }
        }
        if !more {
            for t in &topics {
                if let Some(l) = named.loading.get_mut(t) {
                    l.answered.insert(store);
                }
            }
        }
        self.settle_loading(false);
    }

    /// Ends the loading of every topic that has its answers: enough stores
    /// and every store that greeted us, or enough stores and `waited` (the
    /// retry interval passed).
    fn settle_loading(&mut self, waited: bool) {
        let need = self.cfg.commit_acks;
        let Some(named) = self.named.as_mut() else {
            return;
        };
        let done: Vec<String> = named
            .loading
            .iter()
            .filter(|(_, l)| {
                l.answered.len() >= need && (waited || named.greeted.is_subset(&l.answered))
            })
            .map(|(t, _)| t.clone())
            .collect();
        for topic in &done {
            let Some(l) = named.loading.remove(topic) else {
                continue;
            };
            tracing::debug!(name = %named.name, %topic, partitions = l.heard.len(), stores = l.answered.len(), "positions loaded");
            for (partition, offset) in l.heard {
                let kept = named
                    .committed
                    .entry((topic.clone(), partition))
                    .or_insert(offset);
                *kept = (*kept).max(offset);
            }
        }
        // Now learn every partition the stores hold (those committed among
        // them start at their position).
        for topic in done {
            self.get_heads(topic);
        }
    }

    /// Positions the application has processed (highest per partition).
    pub(super) fn note_processed(&mut self, positions: Vec<Position>) {
        let Some(named) = self.named.as_mut().filter(|n| n.commits()) else {
            return;
        };
        for p in positions {
            // Nothing new: position 0, or not past what is committed.
            let key = (p.topic, p.partition);
            if p.offset <= named.committed.get(&key).copied().unwrap_or(0) {
                continue;
            }
            let e = named.unsent.entry(key).or_insert(p.offset);
            *e = (*e).max(p.offset);
        }
    }

    /// Sends what is unsent now; `ticket` (a `commit_sync` caller) is told
    /// once every commit sent so far is acknowledged.
    pub(super) fn commit_now(&mut self, ticket: u64, now: Instant) {
        self.send_commits(now);
        let Some(named) = self.named.as_mut() else {
            self.outbox
                .push(Output::Deliver(ConsumerDelivery::Committed(ticket)));
            return;
        };
        named.waiting.push((ticket, named.seq));
        self.release_waiters();
    }

    pub(super) fn send_commits(&mut self, now: Instant) {
        let retry = self.cfg.fetch_retry();
        let interval = Duration::from_millis(self.cfg.commit_interval);
        let Some(named) = self.named.as_mut() else {
            return;
        };
        named.next_commit = now + interval;
        let mut all: Vec<Position> = named
            .unsent
            .drain()
            .map(|((topic, partition), offset)| Position {
                topic,
                partition,
                offset,
            })
            .collect();
        all.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        for chunk in all.chunks(POSITIONS_PER_COMMIT) {
            named.seq += 1;
            let msg = Message::Commit {
                name: named.name.clone(),
                sender: self.id,
                seq: named.seq,
                positions: chunk.to_vec(),
            };
            self.outbox.push(Output::Send(msg));
            let flight = InFlight {
                positions: chunk.to_vec(),
                acks: BTreeSet::new(),
                resend_at: now + retry,
            };
            named.in_flight.insert(named.seq, flight);
        }
    }

    /// A store acknowledged commit `seq`.
    pub(super) fn on_commit_ack(&mut self, store: NodeId, seq: u64) {
        let need = self.cfg.commit_acks;
        let Some(named) = self.named.as_mut() else {
            return;
        };
        let Some(f) = named.in_flight.get_mut(&seq) else {
            return;
        };
        f.acks.insert(store);
        if f.acks.len() < need {
            return;
        }
        if let Some(f) = named.in_flight.remove(&seq) {
            for p in f.positions {
                let kept = named
                    .committed
                    .entry((p.topic, p.partition))
                    .or_insert(p.offset);
                *kept = (*kept).max(p.offset);
            }
        }
        self.release_waiters();
    }

    /// Tells every `commit_sync` caller whose commits are all acknowledged.
    fn release_waiters(&mut self) {
        let Some(named) = self.named.as_mut() else {
            return;
        };
        let oldest = named.in_flight.keys().next().copied();
        let (done, still): (Vec<_>, Vec<_>) = named
            .waiting
            .drain(..)
            .partition(|&(_, upto)| oldest.is_none_or(|o| o > upto));
        named.waiting = still;
        for (ticket, _) in done {
            self.outbox
                .push(Output::Deliver(ConsumerDelivery::Committed(ticket)));
        }
    }

    /// Asks again for positions not loaded, sends commits due, repeats
    /// unacknowledged ones.
    pub(super) fn named_timers(&mut self, now: Instant) {
        let retry = self.cfg.fetch_retry();
        let Some(named) = self.named.as_mut() else {
            return;
        };
        let mut ask = Vec::new();
        let mut waited = false;
        let need = self.cfg.commit_acks;
        for (topic, l) in named.loading.iter_mut() {
            if l.warn_at.is_some_and(|w| now >= w) {
                l.warn_at = None;
                let question = match named.from_time {
                    Some(_) => "where the start time falls",
                    None => "where this name stands",
                };
                tracing::warn!(name = %named.name, from_time = ?named.from_time, %topic, answered = l.answered.len(), needed = need, "still waiting for stores to say {question}; the topic starts once they do");
            }
            if now >= l.next_ask {
                l.next_ask = now + retry;
                waited = true;
                ask.push(topic.clone());
            }
        }
        let mut resend = Vec::new();
        for (seq, f) in named.in_flight.iter_mut() {
            if now >= f.resend_at {
                f.resend_at = now + retry;
                resend.push(Message::Commit {
                    name: named.name.clone(),
                    sender: self.id,
                    seq: *seq,
                    positions: f.positions.clone(),
                });
            }
        }
        let commit_due = !named.unsent.is_empty() && now >= named.next_commit;
        if waited {
            self.settle_loading(true);
        }
        let still: Vec<String> = ask
            .into_iter()
            .filter(|t| self.named.as_ref().is_some_and(|n| n.is_loading(t)))
            .collect();
        self.ask_positions(still);
        self.outbox.extend(resend.into_iter().map(Output::Send));
        if commit_due {
            self.send_commits(now);
        }
    }

    /// Every partition's position, committed position and head.
    pub fn positions(&self) -> Vec<PartitionPosition> {
        let mut out = Vec::new();
        for (topic, ps) in &self.parts {
            for (partition, part) in ps {
                out.push(PartitionPosition {
                    topic: topic.clone(),
                    partition: *partition,
                    position: part.seq.next(),
                    committed: self
                        .named
                        .as_ref()
                        .filter(|n| n.commits())
                        .and_then(|n| n.committed(topic, *partition)),
                    head: part.seq.head(),
                });
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }
}
