//! With security on, who a message may come from.
//!
//! CURVE tells the receiving node which key every message came over (the
//! `User-Id` its ZAP handler gave the connection). Beacons, forwarded only
//! by a tower that checked them, bind each node id to its key. A message
//! is believed only if its key is the key of the node it claims to come
//! from: a partition's RECORD and HEAD only from its producer, an ACK only
//! from the store it names, and so on. Everything here is pure: the mesh
//! feeds it the key and the decoded message.

use crate::discovery::Discovery;
use dafka_proto::{Message, NodeId, Role};

/// Who a message says it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The node named in it (an ACK's store, a FETCH's sender).
    Node(NodeId),
    /// The producer of this partition (RECORD, HEAD).
    Writer(NodeId),
    /// The partition's producer or a store, which both answer FETCHes; a
    /// DIRECT-HEAD that names its store must come from that store.
    WriterOrStore(NodeId, Option<NodeId>),
    /// Nothing a data socket carries (beacons travel through towers).
    Nobody,
}

/// Who `m` claims to come from.
pub fn claim(m: &Message) -> Claim {
    match m {
        Message::Record(r) => Claim::Writer(r.partition),
        Message::Head(h) => Claim::Writer(h.partition),
        Message::DirectRecord { record, .. } => Claim::WriterOrStore(record.partition, None),
        Message::DirectHead { head, store, .. } => Claim::WriterOrStore(head.partition, *store),
        Message::Fetch(f) => Claim::Node(f.sender),
        Message::Ack(a) => Claim::Node(a.store),
        Message::GetHeads { sender, .. }
        | Message::Commit { sender, .. }
        | Message::GetPositions { sender, .. }
        | Message::GetPartitions { sender, .. } => Claim::Node(*sender),
        Message::StoreHello { store, .. }
        | Message::CommitAck { store, .. }
        | Message::DirectPositions { store, .. }
        | Message::DirectPartitions { store, .. } => Claim::Node(*store),
        Message::ConsumerHello { consumer, .. } => Claim::Node(*consumer),
        Message::Beacon(_) | Message::TowerHello { .. } => Claim::Nobody,
    }
}

impl Discovery {
    /// Whether a message claiming `claim` may have come over `key`: the
    /// node it names announced that key (and, for records, is a producer;
    /// for an ACK or a named DIRECT-HEAD, a store). A node this one has
    /// not heard of vouches for nothing.
    pub fn vouches(&self, key: &str, claim: &Claim) -> bool {
        let is = |id: &NodeId, role: Option<Role>| {
            self.peers
                .get(id)
                .is_some_and(|p| p.key == key && role.is_none_or(|r| p.role == r))
        };
        match claim {
            Claim::Node(id) => is(id, None),
            Claim::Writer(p) => is(p, Some(Role::Producer)),
            Claim::WriterOrStore(_, Some(store)) => is(store, Some(Role::Store)),
            Claim::WriterOrStore(p, None) => {
                is(p, Some(Role::Producer))
                    || self
                        .peers
                        .values()
                        .any(|peer| peer.role == Role::Store && peer.key == key)
            }
            Claim::Nobody => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dafka_proto::{Ack, Beacon, Head, Record};
    use std::time::{Duration, Instant};

    const P: NodeId = NodeId([1; 16]);
    const S: NodeId = NodeId([2; 16]);
    const M: NodeId = NodeId([3; 16]);

    fn table() -> Discovery {
        let mut d = Discovery::new(NodeId([0; 16]), |_| true, Duration::from_secs(4));
        for (id, role, key) in [
            (P, Role::Producer, "KP"),
            (S, Role::Store, "KS"),
            (M, Role::Consumer, "KM"),
        ] {
            let b = Beacon {
                node: id,
                endpoint: format!("tcp://h:{}", id.0[0]),
                role,
                key: key.into(),
                ..Default::default()
            };
            d.on_beacon(&b, Instant::now());
        }
        d
    }

    fn record() -> Message {
        Message::Record(Record {
            topic: "t".into(),
            partition: P,
            offset: 7,
            ..Default::default()
        })
    }

    #[test]
    fn a_record_is_believed_only_from_its_producers_key() {
        let d = table();
        assert!(d.vouches("KP", &claim(&record())));
        assert!(!d.vouches("KM", &claim(&record())), "another node's key");
        assert!(
            !d.vouches("KS", &claim(&record())),
            "a store does not write live records"
        );
        let head = Message::Head(Head {
            topic: "t".into(),
            partition: P,
            offset: 7,
        });
        assert!(d.vouches("KP", &claim(&head)) && !d.vouches("KM", &claim(&head)));
    }

    #[test]
    fn an_ack_counts_only_from_the_store_it_names() {
        let d = table();
        let ack = |store| {
            Message::Ack(Ack {
                topic: "t".into(),
                partition: P,
                offset: 7,
                store,
            })
        };
        assert!(d.vouches("KS", &claim(&ack(S))));
        assert!(
            !d.vouches("KM", &claim(&ack(S))),
            "someone else's ACK in its name"
        );
        assert!(
            !d.vouches("KM", &claim(&ack(NodeId([9; 16])))),
            "an invented store"
        );
    }

    #[test]
    fn a_repaired_record_comes_from_the_producer_or_a_store() {
        let d = table();
        let direct = Message::DirectRecord {
            to: M,
            record: match record() {
                Message::Record(r) => r,
                _ => unreachable!(),
            },
        };
        assert!(d.vouches("KP", &claim(&direct)));
        assert!(d.vouches("KS", &claim(&direct)));
        assert!(!d.vouches("KM", &claim(&direct)));
        assert!(!d.vouches("", &claim(&direct)), "no key, no belief");
    }
}
