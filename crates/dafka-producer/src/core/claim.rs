//! Taking over a partition whose history is not in the producer's state
//! directory (a new `state_dir` with the `id` of an existing partition).
//!
//! Numbering from 0 would send new records under offsets the stores already
//! hold: they would drop them as duplicates and ACK them, and the producer
//! would report success for records nobody kept. So before its first record
//! the producer asks the stores (GET-HEADS naming the partition) and starts
//! after the highest head any of them reports. It waits for an answer from
//! every store it has seen subscribe and at least `min_acks` of them: every
//! ACKed record is on at least `min_acks` stores, so it cannot be missed by
//! all of those. If too few answer in time, it refuses to publish.

use dafka_proto::NodeId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often GET-HEADS is repeated while answers are missing: a store may
/// have heard the first one before it could route its answer back to us.
use dafka_protocol::tuning::CLAIM_ASK_EVERY as ASK_EVERY;

/// Where a claim stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Still waiting for answers.
    Pending,
    /// Number the first record this.
    Start(u64),
    /// Not enough stores answered in time: this many did.
    Failed(usize),
}

/// The answers gathered so far.
#[derive(Debug)]
pub struct Claim {
    /// Each store's head of the partition (`None`: it holds none of it).
    answers: HashMap<NodeId, Option<u64>>,
    /// Stores seen subscribing to GET-HEADS: those that can answer.
    stores_seen: usize,
    next_ask: Instant,
    deadline: Instant,
}

impl Claim {
    /// A claim that gives up at `now + timeout`.
    pub fn new(now: Instant, timeout: Duration) -> Self {
        Claim {
            answers: HashMap::new(),
            stores_seen: 0,
            next_ask: now,
            deadline: now + timeout,
        }
    }

    /// Another store can now hear our GET-HEADS.
    pub fn store_subscribed(&mut self) {
        self.stores_seen += 1;
    }

    /// A store's answer.
    pub fn answer(&mut self, store: NodeId, head: Option<u64>) {
        self.answers.insert(store, head);
    }

    /// Whether to (re)send GET-HEADS now.
    pub fn ask_due(&mut self, now: Instant) -> bool {
        if now < self.next_ask {
            return false;
        }
        self.next_ask = now + ASK_EVERY;
        true
    }

    /// When the claim next needs a tick.
    pub fn next_deadline(&self) -> Instant {
        self.next_ask.min(self.deadline)
    }

    /// Whether enough is known to start, or the time is up.
    pub fn outcome(&self, min_acks: usize, now: Instant) -> ClaimOutcome {
        let heard = self.answers.len();
        let enough = heard >= min_acks;
        if enough && (heard >= self.stores_seen || now >= self.deadline) {
            let next = self.answers.values().flatten().max().map_or(0, |h| h + 1);
            return ClaimOutcome::Start(next);
        }
        if now >= self.deadline {
            return ClaimOutcome::Failed(heard);
        }
        ClaimOutcome::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId([1; 16]);
    const B: NodeId = NodeId([2; 16]);

    /// A claim started now, giving up in 10 s, with `stores` stores seen.
    fn claim(stores: usize) -> (Instant, Claim) {
        let t = Instant::now();
        let mut c = Claim::new(t, Duration::from_secs(10));
        (0..stores).for_each(|_| c.store_subscribed());
        (t, c)
    }

    #[test]
    fn starts_after_the_highest_head_once_every_store_seen_answered() {
        let (t, mut c) = claim(2);
        c.answer(A, Some(99));
        assert_eq!(c.outcome(1, t), ClaimOutcome::Pending, "B has not answered");
        c.answer(B, None);
        assert_eq!(c.outcome(1, t), ClaimOutcome::Start(100));
    }

    #[test]
    fn a_partition_no_store_holds_starts_at_zero() {
        let (t, mut c) = claim(1);
        c.answer(A, None);
        assert_eq!(c.outcome(1, t), ClaimOutcome::Start(0));
    }

    #[test]
    fn waits_for_min_acks_answers_and_fails_without_them() {
        let (t, mut c) = claim(1);
        c.answer(A, Some(5));
        assert_eq!(c.outcome(2, t), ClaimOutcome::Pending);
        let late = t + Duration::from_secs(10);
        assert_eq!(c.outcome(2, late), ClaimOutcome::Failed(1));
        assert_eq!(c.outcome(1, late), ClaimOutcome::Start(6));
    }

    #[test]
    fn a_silent_store_is_waited_for_until_the_deadline() {
        let (t, mut c) = claim(2);
        c.answer(A, Some(1));
        assert_eq!(c.outcome(1, t), ClaimOutcome::Pending);
        assert_eq!(
            c.outcome(1, t + Duration::from_secs(11)),
            ClaimOutcome::Start(2)
        );
    }

    #[test]
    fn asks_again_until_answered() {
        let (t, mut c) = claim(0);
        assert!(c.ask_due(t));
        assert!(!c.ask_due(t + Duration::from_millis(10)));
        assert!(c.ask_due(t + ASK_EVERY));
    }
}
