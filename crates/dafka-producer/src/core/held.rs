//! How a producer keeps each record until a quorum of stores has ACKed it.

use crate::record::ProducerRecord;
use bytes::Bytes;
use dafka_proto::{meta_len, RunRecord};
use dafka_protocol::tuning::RECORD_OVERHEAD;

/// A record kept for a retry: its offset and what it carries, without the
/// topic and partition that every record a producer keeps shares. 64 bytes
/// where a whole `Record` takes 152: in a burst the queue of kept records
/// is most of the memory a producer touches for the first time, and a
/// fresh page costs a page fault (the kernel zeroes it).
#[derive(Debug)]
pub(crate) struct Held {
    offset: u64,
    timestamp_ms: Option<i64>,
    content: Bytes,
    /// Key and headers: behind a pointer, as most records have neither.
    meta: Option<Box<Meta>>,
}

#[derive(Debug)]
struct Meta {
    key: Option<Bytes>,
    headers: Vec<(String, Bytes)>,
}

impl Held {
    /// `r`, published at `offset`.
    pub(crate) fn new(offset: u64, r: ProducerRecord) -> Self {
        let meta = (r.key.is_some() || !r.headers.is_empty()).then(|| {
            Box::new(Meta {
                key: r.key,
                headers: r.headers,
            })
        });
        Held {
            offset,
            timestamp_ms: r.timestamp_ms,
            content: r.content,
            meta,
        }
    }

    /// The record as the application published it.
    pub(crate) fn to_record(&self) -> ProducerRecord {
        ProducerRecord {
            key: self.key().cloned(),
            headers: self.headers().to_vec(),
            timestamp_ms: self.timestamp_ms,
            content: self.content.clone(),
        }
    }

    /// What the record counts against `max_unacked_bytes`: its content, key
    /// and headers plus what it costs on its way besides (frames, protobuf
    /// headers, ZeroMQ's bookkeeping at both ends), so that a window of
    /// small records bounds memory as well as one of large records does.
    pub(crate) fn cost(&self) -> usize {
        self.content.len() + meta_len(self.key(), self.headers()) + RECORD_OVERHEAD
    }
}

impl RunRecord for Held {
    fn offset(&self) -> u64 {
        self.offset
    }
    fn content(&self) -> &Bytes {
        &self.content
    }
    fn key(&self) -> Option<&Bytes> {
        self.meta.as_ref().and_then(|m| m.key.as_ref())
    }
    fn headers(&self) -> &[(String, Bytes)] {
        self.meta.as_ref().map_or(&[], |m| &m.headers)
    }
    fn timestamp_ms(&self) -> Option<i64> {
        self.timestamp_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_record_is_small_and_gives_back_what_was_published() {
        assert!(std::mem::size_of::<Held>() <= 64);
        let plain = ProducerRecord::new("c").timestamp_ms(5);
        let full = ProducerRecord::new("c")
            .key("k")
            .header("a", "1")
            .header("a", "2")
            .timestamp_ms(7);
        for r in [plain, full, ProducerRecord::new("")] {
            let h = Held::new(3, r.clone());
            assert_eq!(h.offset(), 3);
            assert_eq!(h.to_record(), r);
            assert_eq!(h.cost(), r.content.len() + r.meta_len() + RECORD_OVERHEAD);
        }
    }
}
