//! Operators' questions: a store describes the partitions it holds
//! (GET-PARTITIONS), read from its database so that the bytes held are the
//! stored ones, with what only its memory knows (a conflict) added.

use super::StoreCore;
use crate::storage::{StorageError, StoredHead};
use dafka_proto::{Message, NodeId, PartitionState};
use dafka_protocol::Output;
use std::time::Instant;

/// Partitions per DIRECT-PARTITIONS message: with the longest topics,
/// about 300 KB, well inside a header frame.
const PARTITIONS_PER_MESSAGE: usize = 1000;

impl StoreCore {
    /// Answers a GET-PARTITIONS in as many messages as it takes; even a
    /// store holding nothing answers (one message, none), so the asker
    /// knows it heard everything. A read that fails is not answered: the
    /// asker reports this store as silent.
    pub(super) fn on_partitions(
        &mut self,
        sender: NodeId,
        heads: Result<Vec<StoredHead>, StorageError>,
        now: Instant,
    ) {
        let heads = match heads {
            Ok(h) => h,
            Err(e) => {
                if let Some(suppressed) = self.warn.allow(now) {
                    tracing::error!(asker = %sender, error = %e, suppressed, "could not list partitions");
                }
                return;
            }
        };
        let states: Vec<PartitionState> = heads.into_iter().map(|h| self.state_of(h)).collect();
        let mut chunks: Vec<&[PartitionState]> = states.chunks(PARTITIONS_PER_MESSAGE).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let msg = Message::DirectPartitions {
                to: sender,
                store: self.id,
                partitions: chunk.to_vec(),
                more: i < last,
            };
            self.outbox.push(Output::Send(msg));
        }
    }

    fn state_of(&self, h: StoredHead) -> PartitionState {
        let conflict_at = self
            .parts
            .get(&h.topic)
            .and_then(|ps| ps.get(&h.partition))
            .and_then(|p| p.conflict);
        PartitionState {
            topic: h.topic,
            partition: h.partition,
            head: h.offset,
            log_start: h.log_start,
            bytes: h.bytes,
            conflict_at,
        }
    }
}
