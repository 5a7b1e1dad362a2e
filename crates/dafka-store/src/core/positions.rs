//! Named consumers' positions: a store keeps what consumers COMMIT and
//! tells them on GET-POSITIONS. Positions are not copied between stores; a
//! consumer takes, per partition, the highest position any store reports.

use super::StoreCore;
use crate::storage::StorageError;
use crate::work::StoreWork;
use dafka_proto::{Message, NodeId, Position};
use dafka_protocol::Output;
use std::time::Instant;

/// Positions per DIRECT-POSITIONS message: far below the decoder's limit
/// and, with the longest topics, well inside a header frame.
const POSITIONS_PER_MESSAGE: usize = 1000;

impl StoreCore {
    pub(super) fn on_commit(
        &mut self,
        name: String,
        sender: NodeId,
        seq: u64,
        positions: Vec<Position>,
    ) {
        let work = StoreWork::Commit {
            name,
            sender,
            seq,
            positions,
        };
        self.outbox.push(Output::Persist(work));
    }

    pub(super) fn on_get_positions(
        &mut self,
        name: String,
        sender: NodeId,
        topics: Vec<String>,
        from_time_ms: Option<u64>,
    ) {
        let work = StoreWork::Positions {
            name,
            sender,
            topics,
            from_time_ms,
        };
        self.outbox.push(Output::Persist(work));
    }

    /// A kept commit is acknowledged; a failed one is not (the consumer
    /// commits again).
    pub(super) fn on_committed(
        &mut self,
        sender: NodeId,
        seq: u64,
        result: Result<(), StorageError>,
        now: Instant,
    ) {
        match result {
            Ok(()) => {
                let ack = Message::CommitAck {
                    to: sender,
                    store: self.id,
                    seq,
                };
                self.outbox.push(Output::Send(ack));
            }
            Err(e) => {
                if let Some(suppressed) = self.warn.allow(now) {
                    tracing::error!(consumer = %sender, seq, error = %e, suppressed, "could not keep a commit; not acknowledged");
                }
            }
        }
    }

    /// Answers a GET-POSITIONS: every kept position of the topics asked (or
    /// every partition's offset at the time asked), in
    /// as many messages as it takes (each names the topics, so even an
    /// answer with none says which topics it covers). A read that fails is
    /// not answered: the consumer asks again, or hears from other stores.
    pub(super) fn on_positions(
        &mut self,
        name: String,
        sender: NodeId,
        topics: Vec<String>,
        from_time_ms: Option<u64>,
        positions: Result<Vec<Position>, StorageError>,
        now: Instant,
    ) {
        let positions = match positions {
            Ok(p) => p,
            Err(e) => {
                if let Some(suppressed) = self.warn.allow(now) {
                    tracing::error!(%name, error = %e, suppressed, "could not read positions");
                }
                return;
            }
        };
        let mut chunks: Vec<Vec<Position>> = positions
            .chunks(POSITIONS_PER_MESSAGE)
            .map(<[Position]>::to_vec)
            .collect();
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        let last = chunks.len() - 1;
        for (i, positions) in chunks.into_iter().enumerate() {
            let msg = Message::DirectPositions {
                to: sender,
                store: self.id,
                name: name.clone(),
                topics: topics.clone(),
                positions,
                more: i < last,
                from_time_ms,
            };
            self.outbox.push(Output::Send(msg));
        }
    }
}
