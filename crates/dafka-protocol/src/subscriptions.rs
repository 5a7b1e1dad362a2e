//! Which subscriptions a node's publisher accepts from its peers.
//!
//! Every subscription a peer sends costs memory in the publisher's
//! subscription trie (about 0.85 KB for a 20-byte prefix) for as long as the
//! peer stays, and the protocol uses only a few shapes of prefix. The
//! publisher runs in `ZMQ_XPUB_MANUAL` mode and applies a subscription only
//! if this table accepts it: a known message id followed by nothing, a
//! 16-byte node id or a valid topic and its 0x00, and only while fewer than
//! `max` distinct prefixes are held. The table counts each prefix's
//! subscribers (ZeroMQ reports one unsubscription per subscriber, also when
//! a peer disconnects), so a departed peer's prefixes free their places.
//!
//! What this table cannot do: cap what one connection costs. libzmq keeps
//! every subscription a connected peer sent (refused or not, to cancel it
//! upstream later) and takes a whole burst in before the node reads the
//! first, so only refusing the connection itself would bound it.
//!
//! Pure: no socket, tested without one.

use dafka_proto::{validate_topic, MessageId};
use std::collections::HashMap;

/// What to do with one message read from an XPUB in manual mode.
#[derive(Debug, PartialEq, Eq)]
pub enum SubAction<'a> {
    /// Apply the subscription (and tell the node: a peer listens).
    Subscribe(&'a [u8]),
    /// Apply the unsubscription.
    Unsubscribe(&'a [u8]),
    /// Not a prefix the protocol uses, or the table is full: refused.
    Refuse,
    /// An unsubscription of something never applied: nothing to do.
    Ignore,
}

/// The prefixes applied on one publisher, with their subscriber counts.
#[derive(Debug)]
pub struct SubscriptionTable {
    counts: HashMap<Vec<u8>, u32>,
    max: usize,
    valid: fn(&[u8]) -> bool,
}

impl SubscriptionTable {
    /// A table for a node's data publisher holding at most `max` prefixes.
    pub fn data(max: usize) -> Self {
        SubscriptionTable {
            counts: HashMap::new(),
            max,
            valid: data_prefix,
        }
    }

    /// A table for a tower's beacon output: nodes subscribe to beacons and
    /// tower hellos, nothing else.
    pub fn beacons() -> Self {
        SubscriptionTable {
            counts: HashMap::new(),
            max: 2,
            valid: |p| p == [MessageId::Beacon as u8] || p == [MessageId::TowerHello as u8],
        }
    }

    /// Decides on one (un)subscription message: 0x01 or 0x00, then the prefix.
    pub fn on_message<'a>(&mut self, msg: &'a [u8]) -> SubAction<'a> {
        match msg.split_first() {
            Some((1, prefix)) => self.subscribe(prefix),
            Some((0, prefix)) => self.unsubscribe(prefix),
            _ => SubAction::Refuse,
        }
    }

    fn subscribe<'a>(&mut self, prefix: &'a [u8]) -> SubAction<'a> {
        if !(self.valid)(prefix) {
            return SubAction::Refuse;
        }
        if let Some(n) = self.counts.get_mut(prefix) {
            *n += 1;
            return SubAction::Subscribe(prefix);
        }
        if self.counts.len() >= self.max {
            return SubAction::Refuse;
        }
        self.counts.insert(prefix.to_vec(), 1);
        SubAction::Subscribe(prefix)
    }

    fn unsubscribe<'a>(&mut self, prefix: &'a [u8]) -> SubAction<'a> {
        let Some(n) = self.counts.get_mut(prefix) else {
            return SubAction::Ignore;
        };
        *n -= 1;
        if *n == 0 {
            self.counts.remove(prefix);
            // A departed crowd of prefixes should not keep its table.
            if self.counts.capacity() > 64 && self.counts.len() < self.counts.capacity() / 4 {
                self.counts.shrink_to_fit();
            }
        }
        SubAction::Unsubscribe(prefix)
    }

    /// Distinct prefixes applied.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether no prefix is applied.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// A prefix some node subscribes with: a message id alone (stores take
/// every RECORD, HEAD, FETCH, GET-HEADS), then a node id (direct messages,
/// ACK and FETCH of a partition) or a topic and the 0x00 that ends it.
fn data_prefix(p: &[u8]) -> bool {
    let Some((&id, key)) = p.split_first() else {
        return false;
    };
    if MessageId::from_byte(id).is_none() {
        return false;
    }
    match key {
        [] => true,
        k if k.len() == 16 => true,
        [topic @ .., 0] => std::str::from_utf8(topic).is_ok_and(|t| validate_topic(t).is_ok()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dafka_proto::{routing, NodeId};

    fn sub(p: &[u8]) -> Vec<u8> {
        [&[1u8][..], p].concat()
    }

    fn unsub(p: &[u8]) -> Vec<u8> {
        [&[0u8][..], p].concat()
    }

    #[test]
    fn accepts_the_prefixes_the_protocol_uses() {
        let mut t = SubscriptionTable::data(100);
        let id = NodeId([7; 16]);
        for p in [
            routing::any_key(MessageId::Record),
            routing::node_key(MessageId::Ack, &id),
            routing::topic_key(MessageId::Head, "orders"),
        ] {
            let m = sub(&p);
            assert_eq!(t.on_message(&m), SubAction::Subscribe(&p));
        }
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn refuses_anything_else() {
        let mut t = SubscriptionTable::data(100);
        for p in [
            &b""[..],
            b"Zabc",
            b"R\xff\xfe\x00",
            b"Rno-terminator",
            b"Rtwo\x00zero\x00",
            b"A123",
        ] {
            let m = sub(p);
            assert_eq!(t.on_message(&m), SubAction::Refuse, "{p:?}");
        }
        assert!(t.is_empty());
        assert_eq!(t.on_message(b""), SubAction::Refuse);
        assert_eq!(t.on_message(b"\x02R"), SubAction::Refuse);
    }

    #[test]
    fn holds_at_most_max_prefixes_and_frees_them_when_subscribers_leave() {
        let mut t = SubscriptionTable::data(2);
        let (a, b, c) = (b"Ra\x00", b"Rb\x00", b"Rc\x00");
        assert_eq!(t.on_message(&sub(a)), SubAction::Subscribe(a));
        assert_eq!(
            t.on_message(&sub(a)),
            SubAction::Subscribe(a),
            "a second subscriber"
        );
        assert_eq!(t.on_message(&sub(b)), SubAction::Subscribe(b));
        assert_eq!(t.on_message(&sub(c)), SubAction::Refuse, "full");
        assert_eq!(t.on_message(&unsub(a)), SubAction::Unsubscribe(a));
        assert_eq!(
            t.on_message(&sub(c)),
            SubAction::Refuse,
            "a still has a subscriber"
        );
        assert_eq!(t.on_message(&unsub(a)), SubAction::Unsubscribe(a));
        assert_eq!(
            t.on_message(&sub(c)),
            SubAction::Subscribe(c),
            "a's place is free"
        );
        assert_eq!(t.on_message(&unsub(b"Rnever\x00")), SubAction::Ignore);
    }

    #[test]
    fn a_tower_takes_only_beacon_subscriptions() {
        let mut t = SubscriptionTable::beacons();
        assert_eq!(t.on_message(b"\x01B"), SubAction::Subscribe(b"B"));
        assert_eq!(t.on_message(b"\x01W"), SubAction::Subscribe(b"W"));
        assert_eq!(t.on_message(b"\x01R"), SubAction::Refuse);
        assert_eq!(t.on_message(b"\x01Bx"), SubAction::Refuse);
    }
}
