//! The bodies of the operators' messages (GET-PARTITIONS,
//! DIRECT-PARTITIONS): what each store holds, for `dafka_admin`.

use crate::codec::{check_len, id_bytes, node_id, parse, topic};
use crate::error::DecodeError;
use crate::limits::MAX_PARTITION_STATES;
use crate::pb;
use crate::routing::MessageId;
use crate::types::{Message, PartitionState};
use prost::Message as _;

/// The protobuf body of an operators' message; `None` for other messages.
pub(crate) fn encode_body(msg: &Message) -> Option<Vec<u8>> {
    Some(match msg {
        Message::GetPartitions { sender, topic } => pb::GetPartitions {
            sender: id_bytes(sender),
            topic: topic.clone().unwrap_or_default(),
        }
        .encode_to_vec(),
        Message::DirectPartitions {
            to,
            store,
            partitions,
            more,
        } => pb::DirectPartitions {
            to: id_bytes(to),
            store: id_bytes(store),
            partitions: partitions.iter().map(to_pb).collect(),
            more: *more,
        }
        .encode_to_vec(),
        _ => return None,
    })
}

fn to_pb(p: &PartitionState) -> pb::PartitionState {
    pb::PartitionState {
        topic: p.topic.clone(),
        partition: id_bytes(&p.partition),
        head: p.head,
        log_start: p.log_start,
        bytes: p.bytes,
        conflict_at: p.conflict_at,
    }
}

fn from_pb(p: pb::PartitionState) -> Result<PartitionState, DecodeError> {
    Ok(PartitionState {
        topic: topic(p.topic)?,
        partition: node_id("partition", &p.partition)?,
        head: p.head,
        log_start: p.log_start,
        bytes: p.bytes,
        conflict_at: p.conflict_at,
    })
}

/// Decodes the body of GET-PARTITIONS or DIRECT-PARTITIONS.
pub(crate) fn decode_body(id: MessageId, body: &[u8]) -> Result<Message, DecodeError> {
    let kind = id.name();
    Ok(match id {
        MessageId::GetPartitions => {
            let b: pb::GetPartitions = parse(kind, body)?;
            // Empty: every topic.
            let topic = match b.topic.is_empty() {
                true => None,
                false => Some(topic(b.topic)?),
            };
            Message::GetPartitions {
                sender: node_id("sender", &b.sender)?,
                topic,
            }
        }
        _ => {
            let b: pb::DirectPartitions = parse(kind, body)?;
            check_len("partitions", b.partitions.len(), MAX_PARTITION_STATES)?;
            Message::DirectPartitions {
                to: node_id("to", &b.to)?,
                store: node_id("store", &b.store)?,
                partitions: b
                    .partitions
                    .into_iter()
                    .map(from_pb)
                    .collect::<Result<_, _>>()?,
                more: b.more,
            }
        }
    })
}
