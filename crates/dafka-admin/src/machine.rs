//! An admin question as a [`Machine`]: fed beacons, TOWER-HELLOs and the
//! stores' answers with the time, it says what to ask next and hands back
//! one [`Report`].
//!
//! It runs in phases. First the towers: every configured tower greets a
//! new subscriber with the peers it knows (TOWER-HELLO); once all have, or
//! [`TOWER_GRACE`] after the first did (a tower may be down), the peer
//! list is settled. Then the stores in that list are asked GET-PARTITIONS,
//! and for a named consumer GET-POSITIONS over the topics they hold. A
//! question is repeated every [`ASK_AGAIN`] to the stores that have not
//! answered: a store connects to this node only after the tower forwards
//! our beacon, and what is published before that is lost on the way (pub
//! sub drops messages nobody subscribed to yet).

use crate::report::{Peer, Question, Report, StoreReport};
use dafka_proto::{routing, Beacon, Message, MessageId, NodeId, PartitionState, Position, Role};
use dafka_protocol::{Input, Machine, Output};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::time::{Duration, Instant};

/// How long to wait for the other towers once one has answered.
pub const TOWER_GRACE: Duration = Duration::from_secs(1);
/// How often a question goes out again to stores that have not answered.
pub const ASK_AGAIN: Duration = Duration::from_millis(250);
/// Topics per GET-POSITIONS: each answer repeats them, so a long list is
/// asked in parts that keep every answer small.
const TOPICS_PER_ASK: usize = 256;

/// What the application asks of the machine: one question, answered
/// within `timeout`.
#[derive(Debug)]
pub struct AdminCommand {
    /// The question.
    pub question: Question,
    /// How long to wait for answers.
    pub timeout: Duration,
}

#[derive(Debug)]
struct Seen {
    beacon: Beacon,
    /// When a tower last heard it, by our clock.
    heard: Instant,
}

#[derive(Debug, Default)]
struct StoreAnswers {
    /// DIRECT-PARTITIONS received so far of an answer that has `more`.
    building: Vec<PartitionState>,
    partitions: Option<Vec<PartitionState>>,
    /// Positions of every part of the topic list answered so far.
    positions: Vec<Position>,
    /// Positions of the part being answered.
    positions_building: Vec<Position>,
    /// How many parts of the topic list this store has answered.
    parts_done: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Towers,
    Partitions,
    /// Asking the named consumer's positions, one part of the topic list
    /// at a time.
    Positions {
        parts: Vec<Vec<String>>,
        current: usize,
    },
    Done,
}

/// One admin question in progress.
pub struct AdminMachine {
    id: NodeId,
    towers_expected: usize,
    question: Question,
    phase: Phase,
    deadline: Option<Instant>,
    towers: HashSet<NodeId>,
    first_hello: Option<Instant>,
    peers: HashMap<NodeId, Seen>,
    stores: BTreeMap<NodeId, StoreAnswers>,
    next_ask: Instant,
    outbox: Vec<Output<Report, Infallible>>,
}

impl AdminMachine {
    /// A machine for node `id`, which expects answers from `towers`
    /// configured towers.
    pub fn new(id: NodeId, towers: usize, now: Instant) -> Self {
        let outbox = [MessageId::DirectPartitions, MessageId::DirectPositions]
            .map(|m| Output::Subscribe(routing::node_key(m, &id)))
            .into();
        AdminMachine {
            id,
            towers_expected: towers,
            question: Question::Peers,
            phase: Phase::Idle,
            deadline: None,
            towers: HashSet::new(),
            first_hello: None,
            peers: HashMap::new(),
            stores: BTreeMap::new(),
            next_ask: now,
            outbox,
        }
    }

    fn on_message(&mut self, msg: Message, now: Instant) {
        match msg {
            Message::TowerHello { tower, peers } => {
                self.towers.insert(tower);
                self.first_hello.get_or_insert(now);
                for b in peers {
                    let age = Duration::from_millis(u64::from(b.age_ms));
                    self.on_beacon(b, now.checked_sub(age).unwrap_or(now));
                }
            }
            Message::Beacon(b) => self.on_beacon(b, now),
            Message::DirectPartitions {
                to,
                store,
                partitions,
                more,
            } if to == self.id => self.on_partitions(store, partitions, more),
            Message::DirectPositions {
                to,
                store,
                name,
                topics,
                positions,
                more,
                from_time_ms: None,
            } if to == self.id => self.on_positions(store, &name, &topics, positions, more),
            _ => {}
        }
    }

    fn on_beacon(&mut self, beacon: Beacon, heard: Instant) {
        if beacon.node == self.id {
            return;
        }
        if beacon.leaving {
            self.peers.remove(&beacon.node);
            // Gone on purpose: nothing to wait for, unless it answered.
            if self
                .stores
                .get(&beacon.node)
                .is_some_and(|a| a.partitions.is_none())
            {
                self.stores.remove(&beacon.node);
            }
            return;
        }
        if beacon.role == Role::Store {
            self.stores.entry(beacon.node).or_default();
        }
        match self.peers.get_mut(&beacon.node) {
            // A TOWER-HELLO may carry an older sighting than a beacon had.
            Some(seen) if seen.heard >= heard => {}
            _ => {
                let node = beacon.node;
                self.peers.insert(node, Seen { beacon, heard });
            }
        }
    }

    fn on_partitions(&mut self, store: NodeId, partitions: Vec<PartitionState>, more: bool) {
        let a = self.stores.entry(store).or_default();
        if a.partitions.is_some() {
            return; // An answer to a repeated question.
        }
        a.building.extend(partitions);
        if !more {
            a.partitions = Some(std::mem::take(&mut a.building));
        }
    }

    fn on_positions(
        &mut self,
        store: NodeId,
        name: &str,
        topics: &[String],
        positions: Vec<Position>,
        more: bool,
    ) {
        let Phase::Positions { parts, current } = &self.phase else {
            return;
        };
        let asked = matches!(&self.question, Question::Positions { name: n } if n == name);
        if !asked || parts[*current] != topics {
            return;
        }
        let current = *current;
        let a = self.stores.entry(store).or_default();
        if a.parts_done > current {
            return;
        }
        a.positions_building.extend(positions);
        if !more {
            let part = std::mem::take(&mut a.positions_building);
            a.positions.extend(part);
            a.parts_done = current + 1;
        }
    }

    /// Moves through the phases as answers allow, and asks again what is
    /// still unanswered.
    fn step(&mut self, now: Instant) {
        if self.phase == Phase::Idle || self.phase == Phase::Done {
            return;
        }
        if self.deadline.is_some_and(|d| now >= d) {
            return self.finish(now, true);
        }
        if self.phase == Phase::Towers {
            let all = self.towers.len() >= self.towers_expected;
            let grace_over = self.first_hello.is_some_and(|t| now >= t + TOWER_GRACE);
            if !(all || grace_over) {
                return;
            }
            if self.question == Question::Peers {
                return self.finish(now, false);
            }
            self.phase = Phase::Partitions;
            self.next_ask = now;
        }
        if self.phase == Phase::Partitions {
            if self.stores.values().any(|a| a.partitions.is_none()) {
                return self.ask_partitions(now);
            }
            let Question::Positions { .. } = self.question else {
                return self.finish(now, false);
            };
            let parts = self.topic_parts();
            if parts.is_empty() {
                return self.finish(now, false);
            }
            self.phase = Phase::Positions { parts, current: 0 };
            self.next_ask = now;
        }
        self.step_positions(now);
    }

    fn step_positions(&mut self, now: Instant) {
        let Phase::Positions { parts, current } = &mut self.phase else {
            return;
        };
        if self.stores.values().all(|a| a.parts_done > *current) {
            *current += 1;
            self.next_ask = now;
            if *current == parts.len() {
                return self.finish(now, false);
            }
        }
        if now < self.next_ask {
            return;
        }
        self.next_ask = now + ASK_AGAIN;
        let (Phase::Positions { parts, current }, Question::Positions { name }) =
            (&self.phase, &self.question)
        else {
            return;
        };
        let ask = Message::GetPositions {
            name: name.clone(),
            sender: self.id,
            topics: parts[*current].clone(),
            from_time_ms: None,
        };
        self.outbox.push(Output::Send(ask));
    }

    fn ask_partitions(&mut self, now: Instant) {
        if now < self.next_ask {
            return;
        }
        self.next_ask = now + ASK_AGAIN;
        let topic = match &self.question {
            Question::Partitions { topic } => topic.clone(),
            _ => None,
        };
        let ask = Message::GetPartitions {
            sender: self.id,
            topic,
        };
        self.outbox.push(Output::Send(ask));
    }

    /// Every topic some store holds, in parts of [`TOPICS_PER_ASK`].
    fn topic_parts(&self) -> Vec<Vec<String>> {
        let topics: std::collections::BTreeSet<&String> = self
            .stores
            .values()
            .flat_map(|a| a.partitions.iter().flatten())
            .map(|p| &p.topic)
            .collect();
        let topics: Vec<String> = topics.into_iter().cloned().collect();
        topics
            .chunks(TOPICS_PER_ASK)
            .map(<[String]>::to_vec)
            .collect()
    }

    fn finish(&mut self, now: Instant, timed_out: bool) {
        self.phase = Phase::Done;
        let asked_positions = matches!(self.question, Question::Positions { .. });
        let mut peers: Vec<Peer> = self
            .peers
            .values()
            .map(|s| Peer {
                id: s.beacon.node,
                role: s.beacon.role,
                endpoint: s.beacon.endpoint.clone(),
                age_ms: now.saturating_duration_since(s.heard).as_millis() as u64,
                group: s.beacon.group.clone(),
            })
            .collect();
        peers.sort_by_key(|p| (role_rank(p.role), p.id));
        let stores = std::mem::take(&mut self.stores)
            .into_iter()
            .map(|(id, a)| StoreReport {
                id,
                positions: (asked_positions && a.partitions.is_some() && a.parts_done > 0)
                    .then_some(a.positions),
                partitions: a.partitions,
            })
            .collect();
        let mut towers: Vec<NodeId> = self.towers.iter().copied().collect();
        towers.sort();
        let report = Report {
            question: self.question.clone(),
            towers_expected: self.towers_expected,
            towers,
            peers,
            stores,
            timed_out,
        };
        self.outbox.push(Output::Deliver(report));
    }
}

/// Towers first, then stores, producers, consumers: the order of a table.
fn role_rank(r: Role) -> u8 {
    match r {
        Role::Tower => 0,
        Role::Store => 1,
        Role::Producer => 2,
        Role::Consumer => 3,
        Role::Admin => 4,
        Role::Unspecified => 5,
    }
}

impl Machine for AdminMachine {
    type Command = AdminCommand;
    type Delivery = Report;
    type Work = Infallible;
    type Done = Infallible;

    fn handle(&mut self, input: Input<AdminCommand, Infallible>, now: Instant) {
        match input {
            Input::Command(c) => {
                self.question = c.question;
                self.deadline = Some(now + c.timeout);
                self.phase = Phase::Towers;
            }
            Input::Message(m) => self.on_message(m, now),
            Input::Done(never) => match never {},
            Input::Subscribed(_) | Input::Beacon(..) => {}
        }
        self.step(now);
    }

    fn on_timeout(&mut self, now: Instant) {
        self.step(now);
    }

    fn next_timeout(&self) -> Option<Instant> {
        let grace = self
            .first_hello
            .filter(|_| self.phase == Phase::Towers)
            .map(|t| t + TOWER_GRACE);
        let ask = matches!(self.phase, Phase::Partitions | Phase::Positions { .. })
            .then_some(self.next_ask);
        [self.deadline, grace, ask].into_iter().flatten().min()
    }

    fn drain(&mut self, out: &mut Vec<Output<Report, Infallible>>) {
        out.append(&mut self.outbox);
    }

    fn is_done(&self) -> bool {
        self.phase == Phase::Done && self.outbox.is_empty()
    }
}

#[cfg(test)]
mod tests;
