//! Encoding messages to frames and decoding frames to messages.
//!
//! ```text
//! frame 0  [id: 1 byte][key]            routing key, see crate::routing
//! frame 1  [0xDA 0xFA][version][body]   protobuf body, see proto/dafka.proto
//! frame 2  [content]                    RECORD and DIRECT-RECORD only
//! ```

use crate::error::DecodeError;
use crate::limits::*;
use crate::pb;
use crate::routing::MessageId;
use crate::types::*;
use bytes::Bytes;
use prost::Message as _;

/// The two bytes every header frame starts with.
pub const SIGNATURE: [u8; 2] = [0xDA, 0xFA];
/// The protocol version this codec speaks.
pub const VERSION: u8 = 1;
const PREAMBLE: usize = 3;

/// A message as ZeroMQ frames, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frames {
    /// Frame 0: message id and routing key.
    pub key: Vec<u8>,
    /// Frame 1: signature, version, protobuf body.
    pub header: Vec<u8>,
    /// Frame 2, for RECORD and DIRECT-RECORD: the content, shared, not copied.
    pub content: Option<Bytes>,
}

impl Frames {
    /// The frames in order, for a socket's multipart send.
    pub fn to_vec(&self) -> Vec<&[u8]> {
        let mut v: Vec<&[u8]> = vec![&self.key, &self.header];
        if let Some(c) = &self.content {
            v.push(c);
        }
        v
    }
}

/// Encodes a message. Never fails: every `Message` value is encodable.
pub fn encode(msg: &Message) -> Frames {
    let mut header = Vec::new();
    let content = match msg {
        // The hot path: a RECORD's body is encoded straight into its frame.
        Message::Record(r) => {
            let b = pb::Record {
                record: Some(record_to_pb(r)),
            };
            header.reserve_exact(PREAMBLE + b.encoded_len());
            header.extend_from_slice(&SIGNATURE);
            header.push(VERSION);
            // Cannot fail: the Vec has room (and would grow anyway).
            let _ = b.encode(&mut header);
            Some(r.content.clone())
        }
        other => {
            let (body, content) = body_of(other);
            header.reserve_exact(PREAMBLE + body.len());
            header.extend_from_slice(&SIGNATURE);
            header.push(VERSION);
            header.extend_from_slice(&body);
            content
        }
    };
    Frames {
        key: msg.routing_key(),
        header,
        content,
    }
}

fn body_of(msg: &Message) -> (Vec<u8>, Option<Bytes>) {
    match msg {
        Message::Record(r) => {
            let b = pb::Record {
                record: Some(record_to_pb(r)),
            };
            (b.encode_to_vec(), Some(r.content.clone()))
        }
        Message::DirectRecord { to, record } => {
            let b = pb::DirectRecord {
                to: id_bytes(to),
                record: Some(record_to_pb(record)),
            };
            (b.encode_to_vec(), Some(record.content.clone()))
        }
        Message::Head(h) => (head_to_pb(h).encode_to_vec(), None),
        Message::DirectHead { to, head } => {
            let b = pb::DirectHead {
                to: id_bytes(to),
                head: Some(head_to_pb(head)),
            };
            (b.encode_to_vec(), None)
        }
        other => (control_body(other), None),
    }
}

fn control_body(msg: &Message) -> Vec<u8> {
    match msg {
        Message::Fetch(f) => pb::Fetch {
            topic: f.topic.clone(),
            partition: id_bytes(&f.partition),
            offset: f.offset,
            count: f.count,
            sender: id_bytes(&f.sender),
        }
        .encode_to_vec(),
        Message::Ack(a) => pb::Ack {
            topic: a.topic.clone(),
            partition: id_bytes(&a.partition),
            offset: a.offset,
            store: id_bytes(&a.store),
        }
        .encode_to_vec(),
        Message::GetHeads { topic, sender } => pb::GetHeads {
            topic: topic.clone(),
            sender: id_bytes(sender),
        }
        .encode_to_vec(),
        Message::StoreHello { to, store } => pb::StoreHello {
            to: id_bytes(to),
            store: id_bytes(store),
        }
        .encode_to_vec(),
        Message::ConsumerHello {
            to,
            consumer,
            topics,
        } => pb::ConsumerHello {
            to: id_bytes(to),
            consumer: id_bytes(consumer),
            topics: topics.clone(),
        }
        .encode_to_vec(),
        Message::Beacon(b) => beacon_to_pb(b).encode_to_vec(),
        Message::TowerHello { tower, peers } => pb::TowerHello {
            tower: id_bytes(tower),
            peers: peers.iter().map(beacon_to_pb).collect(),
        }
        .encode_to_vec(),
        // Record-carrying and head messages are encoded in body_of.
        Message::Record(_)
        | Message::DirectRecord { .. }
        | Message::Head(_)
        | Message::DirectHead { .. } => Vec::new(),
    }
}

fn id_bytes(id: &NodeId) -> Bytes {
    Bytes::copy_from_slice(id.as_bytes())
}

fn record_to_pb(r: &Record) -> pb::RecordHeader {
    pb::RecordHeader {
        topic: r.topic.clone(),
        partition: id_bytes(&r.partition),
        offset: r.offset,
        key: r.key.clone(),
        headers: r
            .headers
            .iter()
            .map(|(name, value)| pb::Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        timestamp_ms: r.timestamp_ms,
    }
}

/// The protobuf RecordHeader of a record, alone (for the stored format).
pub(crate) fn record_header_bytes(r: &Record) -> Vec<u8> {
    record_to_pb(r).encode_to_vec()
}

fn head_to_pb(h: &Head) -> pb::Head {
    pb::Head {
        topic: h.topic.clone(),
        partition: id_bytes(&h.partition),
        offset: h.offset,
    }
}

fn beacon_to_pb(b: &Beacon) -> pb::Beacon {
    let role = match b.role {
        Role::Unspecified => pb::Role::Unspecified,
        Role::Producer => pb::Role::Producer,
        Role::Consumer => pb::Role::Consumer,
        Role::Store => pb::Role::Store,
        Role::Tower => pb::Role::Tower,
    };
    pb::Beacon {
        node: id_bytes(&b.node),
        endpoint: b.endpoint.clone(),
        port: b.port,
        role: role as i32,
        interval_ms: b.interval_ms,
        leaving: b.leaving,
    }
}

/// Decodes a message from its frames, checking everything the RFC requires.
pub fn decode<F: AsRef<[u8]>>(frames: &[F]) -> Result<Message, DecodeError> {
    let key = frames.first().map(AsRef::as_ref).unwrap_or_default();
    let first = *key.first().ok_or(DecodeError::Empty)?;
    let id = MessageId::from_byte(first).ok_or(DecodeError::UnknownMessageId(first))?;
    if frames.len() != id.frame_count() {
        return Err(DecodeError::FrameCount {
            kind: id.name(),
            expected: id.frame_count(),
            got: frames.len(),
        });
    }
    let body = check_header(frames[1].as_ref())?;
    let content = frames.get(2).map(|c| c.as_ref());
    let msg = decode_body(id, body, content)?;
    if msg.routing_key() != key {
        return Err(DecodeError::RoutingMismatch { kind: id.name() });
    }
    Ok(msg)
}

fn check_header(header: &[u8]) -> Result<&[u8], DecodeError> {
    if header.len() < PREAMBLE {
        return Err(DecodeError::ShortHeader {
            need: PREAMBLE,
            have: header.len(),
        });
    }
    if header[..2] != SIGNATURE {
        return Err(DecodeError::BadSignature([header[0], header[1]]));
    }
    if header[2] != VERSION {
        return Err(DecodeError::UnsupportedVersion(header[2], VERSION));
    }
    check_len("header frame", header.len(), MAX_HEADER_FRAME_LEN)?;
    Ok(&header[PREAMBLE..])
}

fn decode_body(id: MessageId, body: &[u8], content: Option<&[u8]>) -> Result<Message, DecodeError> {
    let kind = id.name();
    Ok(match id {
        MessageId::Record => {
            let b: pb::Record = parse(kind, body)?;
            Message::Record(record_from_pb(b.record, content)?)
        }
        MessageId::DirectRecord => {
            let b: pb::DirectRecord = parse(kind, body)?;
            Message::DirectRecord {
                to: node_id("to", &b.to)?,
                record: record_from_pb(b.record, content)?,
            }
        }
        MessageId::Head => Message::Head(head_from_pb(parse(kind, body)?)?),
        MessageId::DirectHead => {
            let b: pb::DirectHead = parse(kind, body)?;
            let head = b.head.ok_or(DecodeError::InvalidField {
                field: "head",
                reason: "missing",
            })?;
            Message::DirectHead {
                to: node_id("to", &b.to)?,
                head: head_from_pb(head)?,
            }
        }
        _ => decode_control(id, body)?,
    })
}

fn decode_control(id: MessageId, body: &[u8]) -> Result<Message, DecodeError> {
    let kind = id.name();
    Ok(match id {
        MessageId::Fetch => {
            let b: pb::Fetch = parse(kind, body)?;
            Message::Fetch(Fetch {
                topic: topic(b.topic)?,
                partition: node_id("partition", &b.partition)?,
                offset: b.offset,
                count: b.count,
                sender: node_id("sender", &b.sender)?,
            })
        }
        MessageId::Ack => {
            let b: pb::Ack = parse(kind, body)?;
            Message::Ack(Ack {
                topic: topic(b.topic)?,
                partition: node_id("partition", &b.partition)?,
                offset: b.offset,
                store: node_id("store", &b.store)?,
            })
        }
        MessageId::GetHeads => {
            let b: pb::GetHeads = parse(kind, body)?;
            Message::GetHeads {
                topic: topic(b.topic)?,
                sender: node_id("sender", &b.sender)?,
            }
        }
        MessageId::StoreHello => {
            let b: pb::StoreHello = parse(kind, body)?;
            Message::StoreHello {
                to: node_id("to", &b.to)?,
                store: node_id("store", &b.store)?,
            }
        }
        MessageId::ConsumerHello => {
            let b: pb::ConsumerHello = parse(kind, body)?;
            check_len("topics", b.topics.len(), MAX_HELLO_TOPICS)?;
            Message::ConsumerHello {
                to: node_id("to", &b.to)?,
                consumer: node_id("consumer", &b.consumer)?,
                topics: b.topics.into_iter().map(topic).collect::<Result<_, _>>()?,
            }
        }
        MessageId::Beacon => Message::Beacon(beacon_from_pb(parse(kind, body)?)?),
        MessageId::TowerHello => {
            let b: pb::TowerHello = parse(kind, body)?;
            check_len("peers", b.peers.len(), MAX_TOWER_PEERS)?;
            Message::TowerHello {
                tower: node_id("tower", &b.tower)?,
                peers: b
                    .peers
                    .into_iter()
                    .map(beacon_from_pb)
                    .collect::<Result<_, _>>()?,
            }
        }
        // Handled in decode_body.
        MessageId::Record | MessageId::DirectRecord | MessageId::Head | MessageId::DirectHead => {
            return Err(DecodeError::UnknownMessageId(id as u8))
        }
    })
}

fn parse<T: prost::Message + Default>(kind: &'static str, body: &[u8]) -> Result<T, DecodeError> {
    T::decode(body).map_err(|e| DecodeError::MalformedBody {
        kind,
        reason: e.to_string(),
    })
}

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        return Err(DecodeError::Oversize { field, len, max });
    }
    Ok(())
}

fn node_id(field: &'static str, bytes: &[u8]) -> Result<NodeId, DecodeError> {
    NodeId::from_slice(bytes).ok_or(DecodeError::InvalidField {
        field,
        reason: "must be exactly 16 bytes",
    })
}

/// Checks a topic name: 1 to [`MAX_TOPIC_LEN`] bytes, no 0x00 byte (it ends
/// the routing key). Public so that APIs can reject a bad topic up front.
pub fn validate_topic(t: &str) -> Result<(), DecodeError> {
    check_len("topic", t.len(), MAX_TOPIC_LEN)?;
    if t.is_empty() {
        return Err(DecodeError::InvalidField {
            field: "topic",
            reason: "must not be empty",
        });
    }
    if t.contains('\0') {
        return Err(DecodeError::InvalidField {
            field: "topic",
            reason: "must not contain a 0x00 byte",
        });
    }
    Ok(())
}

fn topic(t: String) -> Result<String, DecodeError> {
    validate_topic(&t).map(|_| t)
}

pub(crate) fn record_from_pb(
    h: Option<pb::RecordHeader>,
    content: Option<&[u8]>,
) -> Result<Record, DecodeError> {
    let h = h.ok_or(DecodeError::InvalidField {
        field: "record",
        reason: "missing",
    })?;
    let content = content.unwrap_or_default();
    check_len("content", content.len(), MAX_CONTENT_LEN)?;
    check_len("headers", h.headers.len(), MAX_RECORD_HEADERS)?;
    Ok(Record {
        topic: topic(h.topic)?,
        partition: node_id("partition", &h.partition)?,
        offset: h.offset,
        key: h.key,
        headers: h.headers.into_iter().map(|x| (x.name, x.value)).collect(),
        timestamp_ms: h.timestamp_ms,
        content: Bytes::copy_from_slice(content),
    })
}

fn head_from_pb(h: pb::Head) -> Result<Head, DecodeError> {
    Ok(Head {
        topic: topic(h.topic)?,
        partition: node_id("partition", &h.partition)?,
        offset: h.offset,
    })
}

fn beacon_from_pb(b: pb::Beacon) -> Result<Beacon, DecodeError> {
    check_len("endpoint", b.endpoint.len(), MAX_ENDPOINT_LEN)?;
    let role = match pb::Role::try_from(b.role) {
        Ok(pb::Role::Producer) => Role::Producer,
        Ok(pb::Role::Consumer) => Role::Consumer,
        Ok(pb::Role::Store) => Role::Store,
        Ok(pb::Role::Tower) => Role::Tower,
        // An unknown role from a newer peer is not a reason to ignore it.
        _ => Role::Unspecified,
    };
    Ok(Beacon {
        node: node_id("node", &b.node)?,
        endpoint: b.endpoint,
        port: b.port,
        role,
        interval_ms: b.interval_ms,
        leaving: b.leaving,
    })
}
