//! The bodies of the position messages (COMMIT, COMMIT-ACK, GET-POSITIONS,
//! DIRECT-POSITIONS): named consumers' positions, kept by stores.

use crate::codec::{check_len, id_bytes, node_id, parse, topic};
use crate::error::DecodeError;
use crate::limits::{MAX_HELLO_TOPICS, MAX_POSITIONS};
use crate::pb;
use crate::routing::MessageId;
use crate::types::{Message, Position};
use prost::Message as _;

/// The protobuf body of a position message; `None` for other messages.
pub(crate) fn encode_body(msg: &Message) -> Option<Vec<u8>> {
    Some(match msg {
        Message::Commit {
            name,
            sender,
            seq,
            positions,
        } => pb::Commit {
            name: name.clone(),
            sender: id_bytes(sender),
            seq: *seq,
            positions: positions.iter().map(to_pb).collect(),
        }
        .encode_to_vec(),
        Message::CommitAck { to, store, seq } => pb::CommitAck {
            to: id_bytes(to),
            store: id_bytes(store),
            seq: *seq,
        }
        .encode_to_vec(),
        Message::GetPositions {
            name,
            sender,
            topics,
            from_time_ms,
        } => pb::GetPositions {
            name: name.clone(),
            sender: id_bytes(sender),
            topics: topics.clone(),
            from_time_ms: *from_time_ms,
        }
        .encode_to_vec(),
        Message::DirectPositions {
            to,
            store,
            name,
            topics,
            positions,
            more,
            from_time_ms,
        } => pb::DirectPositions {
            to: id_bytes(to),
            store: id_bytes(store),
            name: name.clone(),
            topics: topics.clone(),
            positions: positions.iter().map(to_pb).collect(),
            more: *more,
            from_time_ms: *from_time_ms,
        }
        .encode_to_vec(),
        _ => return None,
    })
}

fn to_pb(p: &Position) -> pb::Position {
    pb::Position {
        topic: p.topic.clone(),
        partition: id_bytes(&p.partition),
        offset: p.offset,
    }
}

fn from_pb(p: pb::Position) -> Result<Position, DecodeError> {
    Ok(Position {
        topic: topic(p.topic)?,
        partition: node_id("partition", &p.partition)?,
        offset: p.offset,
    })
}

fn positions(ps: Vec<pb::Position>) -> Result<Vec<Position>, DecodeError> {
    check_len("positions", ps.len(), MAX_POSITIONS)?;
    ps.into_iter().map(from_pb).collect()
}

fn topics(ts: Vec<String>) -> Result<Vec<String>, DecodeError> {
    check_len("topics", ts.len(), MAX_HELLO_TOPICS)?;
    ts.into_iter().map(topic).collect()
}

/// A consumer name: the rules of a topic name (it is a routing key too).
fn name(n: String) -> Result<String, DecodeError> {
    topic(n).map_err(|e| match e {
        DecodeError::InvalidField { reason, .. } => DecodeError::InvalidField {
            field: "name",
            reason,
        },
        DecodeError::Oversize { len, max, .. } => DecodeError::Oversize {
            field: "name",
            len,
            max,
        },
        other => other,
    })
}

/// The name of a question or answer: a consumer name, or empty when the
/// question is about a time (an unnamed consumer starting at a time).
fn name_or_time(n: String, from_time_ms: Option<u64>) -> Result<String, DecodeError> {
    if n.is_empty() && from_time_ms.is_some() {
        return Ok(n);
    }
    name(n)
}

/// Decodes the body of a position message (`id` is one of the four).
pub(crate) fn decode_body(id: MessageId, body: &[u8]) -> Result<Message, DecodeError> {
    let kind = id.name();
    Ok(match id {
        MessageId::Commit => {
            let b: pb::Commit = parse(kind, body)?;
            Message::Commit {
                name: name(b.name)?,
                sender: node_id("sender", &b.sender)?,
                seq: b.seq,
                positions: positions(b.positions)?,
            }
        }
        MessageId::CommitAck => {
            let b: pb::CommitAck = parse(kind, body)?;
            Message::CommitAck {
                to: node_id("to", &b.to)?,
                store: node_id("store", &b.store)?,
                seq: b.seq,
            }
        }
        MessageId::GetPositions => {
            let b: pb::GetPositions = parse(kind, body)?;
            Message::GetPositions {
                name: name_or_time(b.name, b.from_time_ms)?,
                sender: node_id("sender", &b.sender)?,
                topics: topics(b.topics)?,
                from_time_ms: b.from_time_ms,
            }
        }
        _ => {
            let b: pb::DirectPositions = parse(kind, body)?;
            Message::DirectPositions {
                to: node_id("to", &b.to)?,
                store: node_id("store", &b.store)?,
                name: name_or_time(b.name, b.from_time_ms)?,
                topics: topics(b.topics)?,
                positions: positions(b.positions)?,
                more: b.more,
                from_time_ms: b.from_time_ms,
            }
        }
    })
}
