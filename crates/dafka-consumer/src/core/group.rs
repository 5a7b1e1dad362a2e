//! Consumer groups without a coordinator.
//!
//! Every member learns the group's members from the beacons the towers
//! forward (a member's beacon names its group), and every member computes
//! the same assignment from the same member list and the same partitions:
//! nothing is negotiated, so nothing waits for a leader. Lists agree once
//! every member has heard every other's beacon (within a beacon interval
//! of a change); until then two members may both own a partition, or
//! neither, for that long (RFC 1, 7.2).
//!
//! The assignment is rendezvous hashing with bounded loads: per topic,
//! each partition in turn (by id) goes to the member that ranks it highest
//! among those holding fewer than their share (⌈partitions / members⌉).
//! A join or a leave moves few partitions, and shares stay within one
//! partition of even.

use dafka_proto::{Beacon, NodeId, Role};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A partition of a topic.
pub type TopicPartition = (String, NodeId);

/// What a consumer knows of its group.
#[derive(Debug)]
pub(super) struct Group {
    name: String,
    me: NodeId,
    /// My topic set, hashed (what my beacon says).
    topics: u64,
    /// Other members: when last heard, and their topic hash.
    members: BTreeMap<NodeId, (Instant, u64)>,
    timeout: Duration,
    /// Every partition seen of the topics read, owned or not, by topic
    /// (looked up per record without making a key).
    known: ByTopic,
    /// The partitions this member owns now.
    owned: ByTopic,
    /// Until the member list is first known (a TOWER-HELLO, or this time
    /// passed), it owns nothing: owning everything for an instant would
    /// read what others own.
    settle_by: Option<Instant>,
    /// Members already warned about (their topic sets differ from mine).
    warned: BTreeSet<NodeId>,
    /// The whole assignment as last computed.
    owners: BTreeMap<TopicPartition, NodeId>,
    /// Partitions won from a member that is still here, and when to start
    /// them: by then it has heard of the change, stopped and committed, so
    /// this member starts where it stopped rather than where it last
    /// committed before.
    waiting: BTreeMap<TopicPartition, Instant>,
    handover: Duration,
    /// Until then this member is new to the group: a partition it has not
    /// assigned before may be one the others are reading (it learns the
    /// partitions from HEADs after it joins).
    fresh_until: Option<Instant>,
    /// The members counted when the assignment was last reported.
    reported: Option<(usize, ByTopic)>,
}

/// How an assignment changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Change {
    pub gained: Vec<TopicPartition>,
    pub lost: Vec<TopicPartition>,
}

impl Group {
    /// A member `me` of group `name`: members silent for `timeout` are
    /// dropped; nothing is owned for `settle` unless the towers' list comes
    /// first; a partition won from a live member starts `handover` later.
    pub(super) fn new(
        name: String,
        me: NodeId,
        timeout: Duration,
        settle: Duration,
        handover: Duration,
        now: Instant,
    ) -> Self {
        Group {
            name,
            me,
            topics: 0,
            members: BTreeMap::new(),
            timeout,
            known: ByTopic::new(),
            owned: ByTopic::new(),
            settle_by: Some(now + settle),
            warned: BTreeSet::new(),
            owners: BTreeMap::new(),
            waiting: BTreeMap::new(),
            handover,
            fresh_until: None,
            reported: None,
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The topic set changed: its hash goes in the beacon.
    pub(super) fn set_topics<'a>(&mut self, topics: impl Iterator<Item = &'a str>) -> u64 {
        self.topics = topics_hash(topics);
        self.topics
    }

    /// Forgets the partitions of a topic no longer read.
    pub(super) fn forget_topic(&mut self, topic: &str) {
        self.known.remove(topic);
        self.owned.remove(topic);
    }

    /// A beacon (heard `age` ago): a member joining, staying or leaving.
    /// Returns whether the member list changed.
    pub(super) fn on_beacon(&mut self, b: &Beacon, heard: Instant) -> bool {
        if b.role != Role::Consumer || b.group != self.name || b.node == self.me {
            return false;
        }
        if b.leaving {
            return self.members.remove(&b.node).is_some();
        }
        if b.topics != self.topics && self.warned.insert(b.node) {
            tracing::warn!(group = %self.name, this = %self.me, other = %b.node,
                "a member of this group reads other topics than this one: partitions of a topic only some members read may go unread (give every member the same topics)");
        }
        let new = !self.members.contains_key(&b.node);
        let e = self.members.entry(b.node).or_insert((heard, b.topics));
        *e = (e.0.max(heard), b.topics);
        new
    }

    /// The towers' list arrived: the member list is known.
    pub(super) fn settled(&mut self, now: Instant) {
        if self.settle_by.take().is_some() {
            self.fresh_until = Some(now + 2 * self.handover);
        }
    }

    /// Whether the member list is known (or waiting for it is over).
    pub(super) fn is_settled(&mut self, now: Instant) -> bool {
        self.settle_due(now);
        self.settle_by.is_none()
    }

    /// Whether the wait for the member list ended just now (its time
    /// passed without a TOWER-HELLO): the moment to assign.
    pub(super) fn settle_due(&mut self, now: Instant) -> bool {
        let due = self.settle_by.is_some_and(|t| now >= t);
        if due {
            self.settled(now);
        }
        due
    }

    /// Drops members silent for the beacon timeout; says whether any went.
    pub(super) fn expire(&mut self, now: Instant) -> bool {
        let before = self.members.len();
        let timeout = self.timeout;
        self.members
            .retain(|_, (seen, _)| now.saturating_duration_since(*seen) <= timeout);
        self.members.len() != before
    }

    /// A partition seen; says whether it is new.
    pub(super) fn note(&mut self, topic: &str, partition: NodeId) -> bool {
        match self.known.get_mut(topic) {
            Some(ps) => ps.insert(partition),
            None => {
                self.known
                    .insert(topic.to_string(), BTreeSet::from([partition]));
                true
            }
        }
    }

    pub(super) fn owns(&self, topic: &str, partition: NodeId) -> bool {
        self.owned
            .get(topic)
            .is_some_and(|ps| ps.contains(&partition))
    }

    /// Every member, this one included, in id order.
    pub(super) fn members(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> = self.members.keys().copied().collect();
        all.push(self.me);
        all.sort();
        all
    }

    /// Recomputes what this member owns; returns what changed.
    pub(super) fn reassign(&mut self, now: Instant) -> Change {
        if !self.is_settled(now) {
            return Change::default();
        }
        let members = self.members();
        let known = flat(&self.known);
        let owned = flat(&self.owned);
        let owners = assign(&members, &known);
        // Who held each partition before: the last assignment, or, for a
        // member new to the group, the one the others made without it.
        let mut before = std::mem::take(&mut self.owners);
        if self.fresh_until.is_some_and(|t| now < t) {
            let others: Vec<NodeId> = self.members.keys().copied().collect();
            for (tp, m) in assign(&others, &known) {
                before.entry(tp).or_insert(m);
            }
        }
        let target: BTreeSet<TopicPartition> = owners
            .iter()
            .filter(|(_, m)| **m == self.me)
            .map(|(tp, _)| tp.clone())
            .collect();
        self.waiting.retain(|tp, _| target.contains(tp));
        for tp in target.difference(&owned) {
            let alive = before
                .get(tp)
                .is_some_and(|m| *m != self.me && self.members.contains_key(m));
            if alive && !self.waiting.contains_key(tp) {
                self.waiting.insert(tp.clone(), now + self.handover);
            }
        }
        let due: BTreeSet<TopicPartition> = target
            .iter()
            .filter(|tp| self.waiting.get(*tp).is_none_or(|t| now >= *t))
            .cloned()
            .collect();
        self.waiting.retain(|tp, _| !due.contains(tp));
        let change = Change {
            gained: due.difference(&owned).cloned().collect(),
            lost: owned.difference(&target).cloned().collect(),
        };
        self.owned = nest(due);
        self.owners = owners;
        change
    }

    /// Whether a partition won from a live member is due to start.
    pub(super) fn handover_due(&self, now: Instant) -> bool {
        self.waiting.values().any(|t| now >= *t)
    }

    /// Whether `members` or the partitions owned differ from what was last
    /// reported (and so should be said now); notes them as reported.
    pub(super) fn counted(&mut self, members: usize) -> bool {
        let now = Some((members, self.owned.clone()));
        if self.reported == now {
            return false;
        }
        self.reported = now;
        self.settle_by.is_none()
    }

    /// How many partitions are owned now.
    pub(super) fn owned_count(&self) -> usize {
        self.owned.values().map(BTreeSet::len).sum()
    }
}

/// Partitions by topic.
type ByTopic = BTreeMap<String, BTreeSet<NodeId>>;

fn flat(by_topic: &ByTopic) -> BTreeSet<TopicPartition> {
    by_topic
        .iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
        .collect()
}

fn nest(parts: BTreeSet<TopicPartition>) -> ByTopic {
    let mut out = ByTopic::new();
    for (t, p) in parts {
        out.entry(t).or_default().insert(p);
    }
    out
}

/// A topic set's hash (FNV-1a over the sorted names, each ended by 0x00).
pub fn topics_hash<'a>(topics: impl Iterator<Item = &'a str>) -> u64 {
    let mut sorted: Vec<&str> = topics.collect();
    sorted.sort_unstable();
    let mut h = Fnv::new();
    for t in sorted {
        h.write(t.as_bytes());
        h.write(&[0]);
    }
    h.0
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// How much `member` wants `partition` of `topic`: FNV-1a then a
/// finalizer (FNV alone leaves the last bytes' influence in the low bits).
fn score(topic: &str, partition: &NodeId, member: &NodeId) -> u64 {
    let mut h = Fnv::new();
    h.write(topic.as_bytes());
    h.write(&[0]);
    h.write(partition.as_bytes());
    h.write(member.as_bytes());
    let mut x = h.0;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The owner of every partition: per topic, each partition in id order
/// goes to its highest-scoring member among those below their share.
/// Every member computes this from the same inputs and gets the same map.
pub fn assign(
    members: &[NodeId],
    partitions: &BTreeSet<TopicPartition>,
) -> BTreeMap<TopicPartition, NodeId> {
    let mut out = BTreeMap::new();
    let mut members = members.to_vec();
    members.sort();
    members.dedup();
    if members.is_empty() {
        return out;
    }
    let mut by_topic: BTreeMap<&str, Vec<&NodeId>> = BTreeMap::new();
    for (t, p) in partitions {
        by_topic.entry(t.as_str()).or_default().push(p);
    }
    for (topic, parts) in by_topic {
        let share = parts.len().div_ceil(members.len());
        let mut load: BTreeMap<&NodeId, usize> = BTreeMap::new();
        for p in parts {
            let best = members
                .iter()
                .filter(|m| load.get(m).copied().unwrap_or(0) < share)
                .max_by_key(|m| (score(topic, p, m), **m));
            if let Some(m) = best {
                *load.entry(m).or_default() += 1;
                out.insert((topic.to_string(), *p), *m);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> NodeId {
        let mut b = [0u8; 16];
        b[0] = n;
        b[15] = n.wrapping_mul(37);
        NodeId(b)
    }

    fn partitions(n: u8) -> BTreeSet<TopicPartition> {
        (0..n).map(|i| ("jobs".to_string(), id(100 + i))).collect()
    }

    fn shares(owners: &BTreeMap<TopicPartition, NodeId>) -> BTreeMap<NodeId, usize> {
        let mut s = BTreeMap::new();
        for m in owners.values() {
            *s.entry(*m).or_default() += 1;
        }
        s
    }

    #[test]
    fn every_partition_has_one_owner_and_shares_are_even() {
        let parts = partitions(8);
        for n in 1..=5u8 {
            let members: Vec<NodeId> = (1..=n).map(id).collect();
            let owners = assign(&members, &parts);
            assert_eq!(owners.len(), 8);
            let share = 8usize.div_ceil(n as usize);
            assert!(shares(&owners).values().all(|s| *s <= share), "{n} members");
        }
    }

    #[test]
    fn a_leave_moves_only_the_leavers_partitions_and_a_few_more() {
        let parts = partitions(8);
        let four: Vec<NodeId> = (1..=4).map(id).collect();
        let before = assign(&four, &parts);
        let three = &four[..3];
        let after = assign(three, &parts);
        let moved = parts
            .iter()
            .filter(|p| before[*p] != after[*p] && before[*p] != four[3])
            .count();
        // 8 partitions over 4 then 3 members (shares 2, then 3): the
        // leaver's two move, and bounded loads may shift a couple more.
        assert!(moved <= 3, "{moved} partitions of staying members moved");
    }

    #[test]
    fn members_agree_whatever_order_they_learned_in() {
        let parts = partitions(8);
        let a = assign(&[id(1), id(2), id(3)], &parts);
        assert_eq!(a, assign(&[id(3), id(1), id(2)], &parts));
        assert_eq!(a, assign(&[id(2), id(3), id(1), id(3)], &parts));
    }

    fn beacon(n: u8, group: &str, topics: u64) -> Beacon {
        Beacon {
            node: id(n),
            role: Role::Consumer,
            group: group.into(),
            topics,
            ..Default::default()
        }
    }

    fn group(t: Instant) -> Group {
        let s = Duration::from_secs;
        Group::new("g".into(), id(1), s(4), s(2), s(1), t)
    }

    #[test]
    fn a_partition_won_from_a_live_member_starts_a_handover_later() {
        let t = Instant::now();
        let mut g = group(t);
        for (topic, p) in partitions(8) {
            g.note(&topic, p);
        }
        let topics = g.set_topics(["jobs"].into_iter());
        g.on_beacon(&beacon(2, "g", topics), t);
        g.settled(t);
        // Joining a group where member 2 read everything: what this member
        // wins is member 2's, which is alive: it waits.
        assert_eq!(g.reassign(t), Change::default());
        assert!(!g.handover_due(t + Duration::from_millis(999)));
        assert!(g.handover_due(t + Duration::from_secs(1)));
        let c = g.reassign(t + Duration::from_secs(1));
        assert_eq!(c.gained.len(), 4, "half of eight");
        // Member 2 dies: its partitions start at once.
        g.expire(t + Duration::from_secs(10));
        let c = g.reassign(t + Duration::from_secs(10));
        assert_eq!(c.gained.len(), 4);
    }

    #[test]
    fn members_come_from_beacons_of_the_group_and_go_when_silent() {
        let t = Instant::now();
        let mut g = group(t);
        let topics = g.set_topics(["jobs"].into_iter());
        assert!(g.on_beacon(&beacon(2, "g", topics), t));
        assert!(!g.on_beacon(&beacon(2, "g", topics), t), "known");
        assert!(
            !g.on_beacon(&beacon(3, "other", topics), t),
            "another group"
        );
        assert_eq!(g.members(), vec![id(1), id(2)]);
        assert!(!g.expire(t + Duration::from_secs(4)));
        assert!(g.expire(t + Duration::from_millis(4001)));
        let mut bye = beacon(2, "g", topics);
        g.on_beacon(&bye, t);
        bye.leaving = true;
        assert!(g.on_beacon(&bye, t));
        assert_eq!(g.members(), vec![id(1)]);
    }

    #[test]
    fn nothing_is_owned_until_the_member_list_is_known() {
        let t = Instant::now();
        let mut g = group(t);
        g.note("jobs", id(100));
        assert_eq!(g.reassign(t), Change::default());
        assert!(!g.owns("jobs", id(100)));
        g.settled(t);
        let c = g.reassign(t);
        assert_eq!(c.gained, vec![("jobs".to_string(), id(100))]);
        assert!(g.owns("jobs", id(100)));
        // Another member joins and wins the partition: it is lost here.
        let topics = g.set_topics(["jobs"].into_iter());
        let other = (2..=50u8)
            .find(|n| {
                assign(&[id(1), id(*n)], &flat(&g.known))[&("jobs".to_string(), id(100))] == id(*n)
            })
            .expect("some member outranks this one");
        g.on_beacon(&beacon(other, "g", topics), t);
        assert_eq!(g.reassign(t).lost, vec![("jobs".to_string(), id(100))]);
    }
}
