//! The routing frame: message ids and routing keys.
//!
//! Frame 0 of every message is what ZeroMQ pub/sub filters on: one message
//! id byte followed by a key. Subscriptions are byte prefixes of it, so:
//!
//! * topic keys end in a 0x00 byte, so that a subscription to topic `a`
//!   (`R a \0`) does not also match topic `ab` (a flaw of prefix matching
//!   that a bare topic name would have);
//! * node and partition keys are exactly 16 bytes, so they need no end mark.

use crate::types::{Message, NodeId};

/// The one-byte id that starts the routing frame. ASCII letters, so a packet
/// capture is readable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageId {
    /// RECORD, key: topic + 0x00.
    Record = b'R',
    /// DIRECT-RECORD, key: receiver id.
    DirectRecord = b'D',
    /// HEAD, key: topic + 0x00.
    Head = b'H',
    /// DIRECT-HEAD, key: receiver id.
    DirectHead = b'E',
    /// FETCH, key: partition.
    Fetch = b'F',
    /// ACK, key: partition.
    Ack = b'A',
    /// GET-HEADS, key: topic + 0x00.
    GetHeads = b'G',
    /// STORE-HELLO, key: receiver id.
    StoreHello = b'S',
    /// CONSUMER-HELLO, key: receiver id.
    ConsumerHello = b'C',
    /// BEACON, no key.
    Beacon = b'B',
    /// TOWER-HELLO, no key.
    TowerHello = b'W',
    /// COMMIT, key: consumer name + 0x00.
    Commit = b'M',
    /// COMMIT-ACK, key: receiver id.
    CommitAck = b'N',
    /// GET-POSITIONS, key: consumer name + 0x00.
    GetPositions = b'P',
    /// DIRECT-POSITIONS, key: receiver id.
    DirectPositions = b'Q',
    /// GET-PARTITIONS, key: topic + 0x00 (an empty topic: every topic).
    GetPartitions = b'L',
    /// DIRECT-PARTITIONS, key: receiver id.
    DirectPartitions = b'T',
}

impl MessageId {
    /// Every id, in wire order of their letters.
    pub const ALL: [MessageId; 17] = [
        MessageId::Ack,
        MessageId::Beacon,
        MessageId::ConsumerHello,
        MessageId::DirectRecord,
        MessageId::DirectHead,
        MessageId::Fetch,
        MessageId::GetHeads,
        MessageId::Head,
        MessageId::GetPartitions,
        MessageId::Commit,
        MessageId::CommitAck,
        MessageId::GetPositions,
        MessageId::DirectPositions,
        MessageId::Record,
        MessageId::StoreHello,
        MessageId::DirectPartitions,
        MessageId::TowerHello,
    ];

    /// This id's place in [`MessageId::ALL`]: an index for per-kind
    /// counters.
    pub fn index(self) -> usize {
        match self {
            MessageId::Ack => 0,
            MessageId::Beacon => 1,
            MessageId::ConsumerHello => 2,
            MessageId::DirectRecord => 3,
            MessageId::DirectHead => 4,
            MessageId::Fetch => 5,
            MessageId::GetHeads => 6,
            MessageId::Head => 7,
            MessageId::GetPartitions => 8,
            MessageId::Commit => 9,
            MessageId::CommitAck => 10,
            MessageId::GetPositions => 11,
            MessageId::DirectPositions => 12,
            MessageId::Record => 13,
            MessageId::StoreHello => 14,
            MessageId::DirectPartitions => 15,
            MessageId::TowerHello => 16,
        }
    }

    /// The id for a byte, if it names one.
    pub fn from_byte(b: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|id| *id as u8 == b)
    }

    /// The name the RFC uses, for errors and logs.
    pub fn name(self) -> &'static str {
        match self {
            MessageId::Record => "RECORD",
            MessageId::DirectRecord => "DIRECT-RECORD",
            MessageId::Head => "HEAD",
            MessageId::DirectHead => "DIRECT-HEAD",
            MessageId::Fetch => "FETCH",
            MessageId::Ack => "ACK",
            MessageId::GetHeads => "GET-HEADS",
            MessageId::StoreHello => "STORE-HELLO",
            MessageId::ConsumerHello => "CONSUMER-HELLO",
            MessageId::Beacon => "BEACON",
            MessageId::TowerHello => "TOWER-HELLO",
            MessageId::Commit => "COMMIT",
            MessageId::CommitAck => "COMMIT-ACK",
            MessageId::GetPositions => "GET-POSITIONS",
            MessageId::DirectPositions => "DIRECT-POSITIONS",
            MessageId::GetPartitions => "GET-PARTITIONS",
            MessageId::DirectPartitions => "DIRECT-PARTITIONS",
        }
    }

    /// Frames a message of this type always has (content frame included).
    pub fn frame_count(self) -> usize {
        match self {
            MessageId::Record | MessageId::DirectRecord => 3,
            _ => 2,
        }
    }
}

/// The routing frame for a topic-keyed message: id, topic, 0x00.
pub fn topic_key(id: MessageId, topic: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(topic.len() + 2);
    key.push(id as u8);
    key.extend_from_slice(topic.as_bytes());
    key.push(0);
    key
}

/// The routing frame for a node- or partition-keyed message: id, 16 bytes.
pub fn node_key(id: MessageId, node: &NodeId) -> Vec<u8> {
    let mut key = Vec::with_capacity(17);
    key.push(id as u8);
    key.extend_from_slice(node.as_bytes());
    key
}

/// A subscription to every message of one type, whatever its key.
pub fn any_key(id: MessageId) -> Vec<u8> {
    vec![id as u8]
}

impl Message {
    /// This message's id byte.
    pub fn id(&self) -> MessageId {
        match self {
            Message::Record(_) => MessageId::Record,
            Message::DirectRecord { .. } => MessageId::DirectRecord,
            Message::Head(_) => MessageId::Head,
            Message::DirectHead { .. } => MessageId::DirectHead,
            Message::Fetch(_) => MessageId::Fetch,
            Message::Ack(_) => MessageId::Ack,
            Message::GetHeads { .. } => MessageId::GetHeads,
            Message::StoreHello { .. } => MessageId::StoreHello,
            Message::ConsumerHello { .. } => MessageId::ConsumerHello,
            Message::Beacon(_) => MessageId::Beacon,
            Message::TowerHello { .. } => MessageId::TowerHello,
            Message::Commit { .. } => MessageId::Commit,
            Message::CommitAck { .. } => MessageId::CommitAck,
            Message::GetPositions { .. } => MessageId::GetPositions,
            Message::DirectPositions { .. } => MessageId::DirectPositions,
            Message::GetPartitions { .. } => MessageId::GetPartitions,
            Message::DirectPartitions { .. } => MessageId::DirectPartitions,
        }
    }

    /// The routing frame this message is published under.
    pub fn routing_key(&self) -> Vec<u8> {
        let id = self.id();
        match self {
            Message::Record(r) => topic_key(id, &r.topic),
            Message::Head(h) => topic_key(id, &h.topic),
            Message::GetHeads { topic, .. } => topic_key(id, topic),
            Message::GetPartitions { topic, .. } => {
                topic_key(id, topic.as_deref().unwrap_or_default())
            }
            Message::Commit { name, .. } | Message::GetPositions { name, .. } => {
                topic_key(id, name)
            }
            Message::DirectRecord { to, .. }
            | Message::CommitAck { to, .. }
            | Message::DirectPositions { to, .. }
            | Message::DirectPartitions { to, .. }
            | Message::DirectHead { to, .. }
            | Message::StoreHello { to, .. }
            | Message::ConsumerHello { to, .. } => node_key(id, to),
            Message::Fetch(f) => node_key(id, &f.partition),
            Message::Ack(a) => node_key(id, &a.partition),
            Message::Beacon(_) | Message::TowerHello { .. } => any_key(id),
        }
    }
}
