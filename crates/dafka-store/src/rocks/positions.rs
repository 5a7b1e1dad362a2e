//! Named consumers' positions on RocksDB, in the `positions` column family:
//!
//! ```text
//! 'p' [name length: u8][name][topic length: u8][topic][partition: 16 bytes] -> offset: u64 BE
//! ```
//!
//! Names and topics are at most 249 bytes, so their lengths fit a byte, and
//! one name's positions in one topic are one contiguous key range.

use super::{io, RocksStorage, POSITIONS_CF};
use crate::storage::StorageError;
use dafka_proto::{NodeId, Position};
use rocksdb::{Direction, IteratorMode, WriteBatch};

const POSITION: u8 = b'p';

fn name_topic(name: &str, topic: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + name.len() + topic.len() + 16);
    k.push(POSITION);
    k.push(name.len() as u8);
    k.extend_from_slice(name.as_bytes());
    k.push(topic.len() as u8);
    k.extend_from_slice(topic.as_bytes());
    k
}

fn key(name: &str, p: &Position) -> Vec<u8> {
    let mut k = name_topic(name, &p.topic);
    k.extend_from_slice(p.partition.as_bytes());
    k
}

fn offset_of(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

impl RocksStorage {
    fn positions_cf(&self) -> Result<&rocksdb::ColumnFamily, StorageError> {
        self.db
            .cf_handle(POSITIONS_CF)
            .ok_or_else(|| StorageError::Corrupt("no positions column family".into()))
    }

    /// The writes that raise `name`'s kept positions to `positions` where
    /// they are higher (a store has one writer, so read-then-write is safe).
    pub(super) fn positions_batch(
        &self,
        name: &str,
        positions: &[Position],
    ) -> Result<WriteBatch, StorageError> {
        let cf = self.positions_cf()?;
        let mut batch = WriteBatch::default();
        for p in positions {
            let k = key(name, p);
            let kept = self.db.get_cf(cf, &k).map_err(io("read"))?;
            if kept
                .as_deref()
                .and_then(offset_of)
                .is_some_and(|o| o >= p.offset)
            {
                continue;
            }
            batch.put_cf(cf, k, p.offset.to_be_bytes());
        }
        Ok(batch)
    }

    pub(super) fn read_positions(
        &self,
        name: &str,
        topic: &str,
    ) -> Result<Vec<Position>, StorageError> {
        let cf = self.positions_cf()?;
        let start = name_topic(name, topic);
        let mode = IteratorMode::From(&start, Direction::Forward);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, mode) {
            let (k, v) = item.map_err(io("read"))?;
            let Some(partition) = k.strip_prefix(start.as_slice()) else {
                break;
            };
            let (Some(partition), Some(offset)) = (NodeId::from_slice(partition), offset_of(&v))
            else {
                return Err(StorageError::Corrupt("bad position entry".into()));
            };
            out.push(Position {
                topic: topic.to_string(),
                partition,
                offset,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::{Storage, SyncPolicy, WalRecovery};
    use crate::RocksStorage;
    use dafka_proto::{NodeId, Position};

    fn pos(topic: &str, p: u8, offset: u64) -> Position {
        Position {
            topic: topic.into(),
            partition: NodeId([p; 16]),
            offset,
        }
    }

    #[test]
    fn positions_keep_the_highest_per_name_and_partition_across_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = || {
            RocksStorage::open(dir.path(), SyncPolicy::Always, WalRecovery::PointInTime)
                .expect("open")
        };
        {
            let mut s = open();
            s.commit("a", &[pos("bc", 1, 5), pos("bc", 2, 7)])
                .expect("commit");
            s.commit("a", &[pos("bc", 1, 3)]).expect("a lower one");
            // Name "ab" + topic "c" must not be confused with "a" + "bc".
            s.commit("ab", &[pos("c", 1, 99)]).expect("commit");
        }
        let s = open();
        assert_eq!(
            s.positions("a", "bc").expect("read"),
            vec![pos("bc", 1, 5), pos("bc", 2, 7)]
        );
        assert_eq!(s.positions("ab", "c").expect("read"), vec![pos("c", 1, 99)]);
        assert!(s.positions("a", "c").expect("read").is_empty());
        assert!(s.positions("ab", "bc").expect("read").is_empty());
    }
}
