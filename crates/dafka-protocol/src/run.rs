//! Runs of records: consecutive records of one partition leave in one
//! ZeroMQ message ([`dafka_proto::encode_run`]).
//!
//! ZeroMQ's cost is per message and per frame, not per byte: a 100-byte
//! record alone costs about as much as 64 KiB of them together. Whatever a
//! node sends in one turn of its loop is grouped here, so under load a
//! producer's records and a store's FETCH answers go out in runs, while a
//! lone record (light load, the latency case) still leaves at once.

use dafka_proto::{continues, encode_run, meta_len, Frames, Message, NodeId, Record, RunRecord};

pub use crate::tuning::{RUN_BYTES, RUN_RECORDS};

/// Whether `next` may join `run` (non-empty, `bytes` in [`size`]s): it
/// continues the last record, and the run stays within [`RUN_RECORDS`] and
/// [`RUN_BYTES`]. The one rule for runs on the wire and at rest.
pub fn extends(run: &[Record], bytes: usize, next: &Record) -> bool {
    run.last().is_some_and(|last| continues(last, next)) && has_room(run.len(), bytes, next)
}

/// Whether a run of `len` records and `bytes` in [`size`]s stays within
/// [`RUN_RECORDS`] and [`RUN_BYTES`] with `next` in it.
fn has_room(len: usize, bytes: usize, next: &impl RunRecord) -> bool {
    len < RUN_RECORDS && bytes + size(next) <= RUN_BYTES
}

/// What a record adds to a run's size: its content, key and headers (keys
/// and headers share the message's header frame, whose size is limited).
pub fn size(r: &impl RunRecord) -> usize {
    r.content().len() + meta_len(r.key(), r.headers())
}

/// Splits records of one partition in offset order (a producer's) into runs
/// within [`RUN_RECORDS`] and [`RUN_BYTES`], the limits [`extends`] applies;
/// a record larger than a run goes alone, and a run also ends where the
/// next offset does not follow.
pub fn chunks<R: RunRecord>(records: &[R]) -> impl Iterator<Item = &[R]> {
    let mut rest = records;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let mut bytes = size(first);
        let mut n = 1;
        let follows = |n: usize, r: &R| rest[n - 1].offset().checked_add(1) == Some(r.offset());
        while let Some(next) = rest
            .get(n)
            .filter(|r| follows(n, r) && has_room(n, bytes, *r))
        {
            bytes += size(next);
            n += 1;
        }
        let (run, tail) = rest.split_at(n);
        rest = tail;
        Some(run)
    })
}

/// The run being built from a node's outputs.
#[derive(Debug, Default)]
pub struct RunBuilder {
    /// `None` for RECORDs, the receiver for DIRECT-RECORDs.
    to: Option<NodeId>,
    records: Vec<Record>,
    bytes: usize,
}

impl RunBuilder {
    /// Takes `msg` into the run if it is a record that continues it (or
    /// the run is empty) and returns `None`; gives it back otherwise.
    pub fn offer(&mut self, msg: Message) -> Option<Message> {
        let (to, record) = match msg {
            Message::Record(r) => (None, r),
            Message::DirectRecord { to, record } => (Some(to), record),
            other => return Some(other),
        };
        if !self.fits(to, &record) {
            return Some(match to {
                None => Message::Record(record),
                Some(to) => Message::DirectRecord { to, record },
            });
        }
        self.to = to;
        self.bytes += size(&record);
        self.records.push(record);
        None
    }

    fn fits(&self, to: Option<NodeId>, record: &Record) -> bool {
        self.records.is_empty() || (self.to == to && extends(&self.records, self.bytes, record))
    }

    /// Records waiting in the run.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is waiting.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The run as one message, leaving the builder empty; `None` if empty.
    pub fn take(&mut self) -> Option<Frames> {
        if self.records.is_empty() {
            return None;
        }
        let frames = encode_run(self.to, &self.records);
        self.records.clear();
        self.bytes = 0;
        Some(frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use dafka_proto::{decode_all, Head};

    fn rec(offset: u64, len: usize) -> Record {
        Record {
            topic: "t".into(),
            partition: NodeId([1; 16]),
            offset,
            content: Bytes::from(vec![7; len]),
            ..Default::default()
        }
    }

    fn decoded(f: Frames) -> Vec<Message> {
        let mut out = Vec::new();
        assert!(decode_all(&f.to_vec(), &mut out).is_ok());
        out
    }

    #[test]
    fn chunks_cut_where_a_run_would_stop_growing() {
        let recs: Vec<Record> = (0..RUN_RECORDS as u64 + 5).map(|o| rec(o, 1)).collect();
        let lens: Vec<usize> = chunks(&recs).map(<[Record]>::len).collect();
        assert_eq!(lens, [RUN_RECORDS, 5]);
        let big = [
            rec(0, RUN_BYTES + 1),
            rec(1, RUN_BYTES / 2),
            rec(2, RUN_BYTES / 2),
            rec(3, 1),
        ];
        let lens: Vec<usize> = chunks(&big).map(<[Record]>::len).collect();
        assert_eq!(lens, [1, 2, 1], "alone when too large, then by bytes");
        assert_eq!(chunks::<Record>(&[]).count(), 0);
        let jump = [rec(0, 1), rec(1, 1), rec(5, 1)];
        let lens: Vec<usize> = chunks(&jump).map(<[Record]>::len).collect();
        assert_eq!(lens, [2, 1], "a run ends where the offsets stop following");
        // The same cuts as records offered one by one.
        let mut b = RunBuilder::default();
        let mut cuts = Vec::new();
        for r in big {
            if let Some(Message::Record(r)) = b.offer(Message::Record(r)) {
                cuts.push(b.len());
                b.take();
                assert!(b.offer(Message::Record(r)).is_none());
            }
        }
        cuts.push(b.len());
        assert_eq!(cuts, [1, 2, 1]);
    }

    #[test]
    fn consecutive_records_make_one_message() {
        let mut b = RunBuilder::default();
        for o in 0..10 {
            assert_eq!(b.offer(Message::Record(rec(o, 100))), None);
        }
        let out = decoded(b.take().expect("a run"));
        assert_eq!(
            out,
            (0..10)
                .map(|o| Message::Record(rec(o, 100)))
                .collect::<Vec<_>>()
        );
        assert!(b.is_empty() && b.take().is_none());
    }

    #[test]
    fn a_run_breaks_at_gaps_other_receivers_kinds_and_limits() {
        let direct = |to, o| Message::DirectRecord {
            to: NodeId([to; 16]),
            record: rec(o, 10),
        };
        let mut b = RunBuilder::default();
        assert!(b.offer(Message::Record(rec(0, 10))).is_none());
        assert!(b.offer(Message::Record(rec(2, 10))).is_some(), "a gap");
        assert!(b.offer(direct(1, 1)).is_some(), "a DIRECT-RECORD");
        let head = Message::Head(Head {
            topic: "t".into(),
            partition: NodeId([1; 16]),
            offset: 0,
        });
        assert_eq!(b.offer(head.clone()), Some(head), "not a record");
        b.take();
        assert!(b.offer(direct(1, 1)).is_none());
        assert!(b.offer(direct(2, 2)).is_some(), "another receiver");
        b.take();
        assert!(b.offer(Message::Record(rec(0, RUN_BYTES))).is_none());
        assert!(
            b.offer(Message::Record(rec(1, 1))).is_some(),
            "full in bytes"
        );
        b.take();
        for o in 0..RUN_RECORDS as u64 {
            assert!(b.offer(Message::Record(rec(o, 0))).is_none());
        }
        assert!(
            b.offer(Message::Record(rec(RUN_RECORDS as u64, 0)))
                .is_some(),
            "full in records"
        );
        assert_eq!(b.len(), RUN_RECORDS);
    }
}
