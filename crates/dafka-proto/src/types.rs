//! The messages of the Dafka protocol as plain Rust values.
//!
//! These are what roles handle; the protobuf types in [`crate::pb`] are only
//! the bodies on the wire. Every value here has been validated by the codec:
//! ids are 16 bytes, topics are non-empty and short, lists are bounded.

use bytes::Bytes;
use std::fmt;

/// A node's identity, and the name of the partition a producer owns.
///
/// 16 bytes (a UUID). Displayed as 32 lowercase hex digits, the form used in
/// logs and in the console consumer's `--print-partition` output.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub [u8; 16]);

impl NodeId {
    /// The raw bytes, as they appear in routing keys and bodies.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses 16 raw bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(NodeId)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex digits are enough to tell nodes apart in a log line.
        let s = self.to_string();
        write!(f, "NodeId({})", &s[..8])
    }
}

impl NodeId {
    /// Sixteen zero bytes: no node. A DIRECT-HEAD for this partition, with
    /// `empty` set, ends a store's answer about a whole topic (RFC 4).
    pub const NONE: NodeId = NodeId([0; 16]);
}

/// One record of a partition: where it sits, and what it carries.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Record {
    /// The topic the partition belongs to. Shared: the records decoded
    /// from one run hold one copy of the name between them, so a received
    /// record costs no allocation for its topic.
    pub topic: std::sync::Arc<str>,
    /// The partition: the id of the producer that wrote the record.
    pub partition: NodeId,
    /// The record's position in its partition, from 0.
    pub offset: u64,
    /// Optional record key (carried, not yet interpreted).
    pub key: Option<Bytes>,
    /// Optional user headers, in order.
    pub headers: Vec<(String, Bytes)>,
    /// Optional producer timestamp, ms since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// The payload. Travels in its own frame, never inside the protobuf body.
    pub content: Bytes,
}

impl Record {
    /// Bytes of the key and headers (names and values): what a record
    /// carries besides its content, counted against
    /// [`crate::limits::MAX_RECORD_META_LEN`] and in run sizes.
    pub fn meta_len(&self) -> usize {
        meta_len(self.key.as_ref(), &self.headers)
    }
}

/// What a run of records is encoded from: each record's offset and what it
/// carries. The run's topic and partition are given once, beside it. A
/// [`Record`] is one; a producer keeps the records it must hold for a retry
/// in a smaller form (no topic or partition of their own), which is another.
pub trait RunRecord {
    /// The record's position in its partition.
    fn offset(&self) -> u64;
    /// The payload.
    fn content(&self) -> &Bytes;
    /// The key, if any.
    fn key(&self) -> Option<&Bytes>;
    /// The headers, in order.
    fn headers(&self) -> &[(String, Bytes)];
    /// The producer's timestamp, ms since the Unix epoch.
    fn timestamp_ms(&self) -> Option<i64>;
}

impl RunRecord for Record {
    fn offset(&self) -> u64 {
        self.offset
    }
    fn content(&self) -> &Bytes {
        &self.content
    }
    fn key(&self) -> Option<&Bytes> {
        self.key.as_ref()
    }
    fn headers(&self) -> &[(String, Bytes)] {
        &self.headers
    }
    fn timestamp_ms(&self) -> Option<i64> {
        self.timestamp_ms
    }
}

/// Bytes of a key and headers (names and values) together: the one rule
/// for [`Record::meta_len`] and the producer's check before publishing.
pub fn meta_len(key: Option<&Bytes>, headers: &[(String, Bytes)]) -> usize {
    let key = key.map_or(0, |k| k.len());
    key + headers
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum::<usize>()
}

/// "The last offset of this partition is `offset`" (HEAD and DIRECT-HEAD).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: NodeId,
    /// The last offset published (HEAD) or stored (DIRECT-HEAD).
    pub offset: u64,
}

/// What a DIRECT-HEAD says about its partition besides the head.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum HeadState {
    /// The store holds the partition up to `head.offset`.
    #[default]
    Holds,
    /// The store holds no record of the partition.
    Empty,
    /// The store holds the partition up to `head.offset` but cannot read it
    /// from `from` (its database is damaged): ask another store.
    Unreadable {
        /// The first offset it failed to read.
        from: u64,
        /// Why, as the store's database put it.
        reason: String,
    },
}

/// A request for `count` records of a partition from `offset`, answered with
/// DIRECT-RECORDs sent to `sender`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    /// The topic.
    pub topic: String,
    /// The partition wanted.
    pub partition: NodeId,
    /// The first offset wanted.
    pub offset: u64,
    /// How many records, at most. Responders cap it further.
    pub count: u32,
    /// Who asked: the DIRECT-RECORDs are routed to this id.
    pub sender: NodeId,
}

/// A store's acknowledgement: it holds the partition up to `offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The topic.
    pub topic: String,
    /// The partition acknowledged.
    pub partition: NodeId,
    /// Every offset up to and including this one is stored.
    pub offset: u64,
    /// The store that acknowledges; producers count distinct stores.
    pub store: NodeId,
}

/// The part a node plays in the mesh (carried in beacons, for logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Role {
    /// Not said.
    #[default]
    Unspecified,
    /// A producer.
    Producer,
    /// A consumer.
    Consumer,
    /// A store.
    Store,
    /// A tower.
    Tower,
    /// An operator's tool (`dafka_admin`): asks stores, stores nothing.
    Admin,
}

/// A node's announcement of itself to the mesh.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Beacon {
    /// Who is speaking.
    pub node: NodeId,
    /// Where its data socket can be reached; empty when the tower should fill
    /// in the host from the connection (then `port` is used).
    pub endpoint: String,
    /// The data socket's port, for a tower to complete an empty endpoint.
    pub port: u32,
    /// What the node is.
    pub role: Role,
    /// How often it beacons, so peers know when it is overdue.
    pub interval_ms: u32,
    /// Set once, on a clean shutdown: drop this node now.
    pub leaving: bool,
    /// In a TOWER-HELLO: milliseconds since the tower last heard this node
    /// (0 in a node's own beacon).
    pub age_ms: u32,
    /// A consumer's group (empty: none).
    pub group: String,
    /// A group member's topic set, hashed.
    pub topics: u64,
    /// With security on: the node's CURVE public key in Z85 (40
    /// characters); empty without.
    pub key: String,
}

/// One partition as a store holds it (DIRECT-PARTITIONS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: NodeId,
    /// The highest offset stored.
    pub head: u64,
    /// The lowest offset still held.
    pub log_start: u64,
    /// Bytes held, as stored.
    pub bytes: u64,
    /// Where a record different from the stored one arrived (two writers):
    /// the store stopped storing the partition there.
    pub conflict_at: Option<u64>,
}

/// Where a named consumer stands in a partition: every record below
/// `offset` is processed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: NodeId,
    /// The next offset to process.
    pub offset: u64,
}

/// Every message of the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A record, live from its producer.
    Record(Record),
    /// A record sent to one node in answer to a FETCH.
    DirectRecord {
        /// The node that asked.
        to: NodeId,
        /// The record.
        record: Record,
    },
    /// A producer's periodic "my last offset".
    Head(Head),
    /// A store's "my last offset" for one partition, to the node that
    /// asked (or why it has none to give).
    DirectHead {
        /// The node that asked.
        to: NodeId,
        /// The head (its offset means nothing when `state` is `Empty`).
        head: Head,
        /// The answering store, when it says (stores before protocol 2.1
        /// did not).
        store: Option<NodeId>,
        /// What the store can say about the partition.
        state: HeadState,
        /// The lowest offset the store still holds (retention deleted what
        /// is below); 0 from producers and stores that keep everything.
        log_start: u64,
    },
    /// A request for missed records.
    Fetch(Fetch),
    /// A store's acknowledgement to a producer.
    Ack(Ack),
    /// A consumer asking every store for the heads of a topic, or a
    /// producer asking for the head of one partition.
    GetHeads {
        /// The topic.
        topic: String,
        /// The node asking.
        sender: NodeId,
        /// Only this partition; stores that hold none of it say so.
        partition: Option<NodeId>,
    },
    /// A store greeting a consumer it saw subscribe.
    StoreHello {
        /// The consumer.
        to: NodeId,
        /// The store.
        store: NodeId,
    },
    /// A consumer answering a store's greeting with its topics.
    ConsumerHello {
        /// The store.
        to: NodeId,
        /// The consumer.
        consumer: NodeId,
        /// Every topic it is subscribed to.
        topics: Vec<String>,
    },
    /// A named consumer's processed positions, to every store.
    Commit {
        /// The consumer's name (`consumer.name`).
        name: String,
        /// The consumer node, for the COMMIT-ACKs.
        sender: NodeId,
        /// The consumer's number for this commit.
        seq: u64,
        /// The positions.
        positions: Vec<Position>,
    },
    /// A store's word that a commit is durable.
    CommitAck {
        /// The consumer.
        to: NodeId,
        /// The store.
        store: NodeId,
        /// The commit's number.
        seq: u64,
    },
    /// A named consumer asking every store for its positions, or any
    /// consumer asking where a time falls in each partition.
    GetPositions {
        /// The consumer's name (may be empty when `from_time_ms` is set).
        name: String,
        /// The node asking.
        sender: NodeId,
        /// The topics.
        topics: Vec<String>,
        /// Asks, instead of the name's positions, per partition for the
        /// first offset at or after this time (ms since the Unix epoch).
        from_time_ms: Option<u64>,
    },
    /// A store's answer to GET-POSITIONS.
    DirectPositions {
        /// The node that asked.
        to: NodeId,
        /// The store.
        store: NodeId,
        /// The consumer's name.
        name: String,
        /// The topics asked about.
        topics: Vec<String>,
        /// Positions held for them (all, unless `more`).
        positions: Vec<Position>,
        /// More messages of this answer follow.
        more: bool,
        /// The question's time, when it asked for one.
        from_time_ms: Option<u64>,
    },
    /// A node announcing itself.
    Beacon(Beacon),
    /// A tower's welcome, with the peers it knows.
    TowerHello {
        /// The tower.
        tower: NodeId,
        /// Every live peer the tower heard from.
        peers: Vec<Beacon>,
    },
    /// An admin tool asking every store to describe its partitions.
    GetPartitions {
        /// The node asking.
        sender: NodeId,
        /// Only this topic; every topic when `None`.
        topic: Option<String>,
    },
    /// A store's answer to GET-PARTITIONS.
    DirectPartitions {
        /// The node that asked.
        to: NodeId,
        /// The store.
        store: NodeId,
        /// Partitions it holds (all, unless `more`).
        partitions: Vec<PartitionState>,
        /// More messages of this answer follow.
        more: bool,
    },
}
