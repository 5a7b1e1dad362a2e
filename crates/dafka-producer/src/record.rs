//! What an application publishes: content, and optionally a key, headers
//! and a timestamp.

use crate::content::Content;
use bytes::Bytes;
use dafka_proto::limits::{MAX_CONTENT_LEN, MAX_RECORD_HEADERS, MAX_RECORD_META_LEN};
use dafka_proto::Record;
use std::time::{SystemTime, UNIX_EPOCH};

/// A record to publish, built like Kafka's `ProducerRecord`:
///
/// ```
/// use dafka_producer::ProducerRecord;
/// let r = ProducerRecord::new("file a.txt is ready")
///     .key("a.txt")
///     .header("origin", "sync-server")
///     .timestamp_ms(1_790_000_000_000);
/// assert_eq!(r.headers.len(), 1);
/// ```
///
/// The topic and partition are the producer's, the offset is given when it
/// is published. Without a timestamp, [`crate::Producer::send`] stamps the
/// record with the wall clock (ms since the Unix epoch).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The key, if any: consumers see it; nothing in Dafka interprets it.
    pub key: Option<Bytes>,
    /// Headers in order; a name may repeat.
    pub headers: Vec<(String, Bytes)>,
    /// Milliseconds since the Unix epoch; `None` means "now".
    pub timestamp_ms: Option<i64>,
    /// The payload.
    pub content: Bytes,
}

impl ProducerRecord {
    /// A record with `content` and nothing else.
    pub fn new(content: impl Content) -> Self {
        ProducerRecord {
            content: content.into_bytes(),
            ..Default::default()
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Content) -> Self {
        self.key = Some(key.into_bytes());
        self
    }

    /// Adds a header (after those already there).
    pub fn header(mut self, name: impl Into<String>, value: impl Content) -> Self {
        self.headers.push((name.into(), value.into_bytes()));
        self
    }

    /// Sets the timestamp, in ms since the Unix epoch.
    pub fn timestamp_ms(mut self, ms: i64) -> Self {
        self.timestamp_ms = Some(ms);
        self
    }

    /// Bytes of the key and headers together.
    pub fn meta_len(&self) -> usize {
        dafka_proto::meta_len(self.key.as_ref(), &self.headers)
    }

    /// What makes the record unpublishable, if anything: the protocol's
    /// limits, checked before the record is numbered or spooled.
    pub fn check(&self) -> Result<(), RecordTooLarge> {
        if self.content.len() > MAX_CONTENT_LEN {
            return Err(RecordTooLarge::Content(self.content.len()));
        }
        if self.headers.len() > MAX_RECORD_HEADERS {
            return Err(RecordTooLarge::Headers(self.headers.len()));
        }
        if self.meta_len() > MAX_RECORD_META_LEN {
            return Err(RecordTooLarge::Meta(self.meta_len()));
        }
        Ok(())
    }

    /// The record with its timestamp set: the one given, or now.
    pub(crate) fn stamped(mut self) -> Self {
        if self.timestamp_ms.is_none() {
            self.timestamp_ms = Some(now_ms());
        }
        self
    }
}

impl From<&Record> for ProducerRecord {
    /// What an application published, from the record as delivered or kept.
    fn from(r: &Record) -> Self {
        ProducerRecord {
            key: r.key.clone(),
            headers: r.headers.clone(),
            timestamp_ms: r.timestamp_ms,
            content: r.content.clone(),
        }
    }
}

impl<C: Content> From<C> for ProducerRecord {
    fn from(content: C) -> Self {
        ProducerRecord::new(content)
    }
}

/// Which limit a record passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordTooLarge {
    /// Content over [`MAX_CONTENT_LEN`].
    #[error("a record of {0} bytes is over the {max} byte limit", max = MAX_CONTENT_LEN)]
    Content(usize),
    /// More than [`MAX_RECORD_HEADERS`] headers.
    #[error("a record with {0} headers is over the limit of {max}", max = MAX_RECORD_HEADERS)]
    Headers(usize),
    /// Key and headers over [`MAX_RECORD_META_LEN`] bytes together.
    #[error("a record's key and headers take {0} bytes, over the {max} byte limit", max = MAX_RECORD_META_LEN)]
    Meta(usize),
}

/// The wall clock in ms since the Unix epoch (0 for a clock set before it).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_built_field_by_field_and_stamped_only_when_unset() {
        let r = ProducerRecord::new("c")
            .key("k")
            .header("a", "1")
            .header("a", "2");
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.headers.len(), 2, "a name may repeat, order kept");
        assert_eq!(r.meta_len(), 1 + 2 + 2);
        let before = now_ms();
        let stamped = r.clone().stamped();
        assert!(stamped.timestamp_ms.is_some_and(|t| t >= before));
        assert_eq!(r.timestamp_ms(7).stamped().timestamp_ms, Some(7));
    }

    #[test]
    fn limits_are_checked_before_publishing() {
        assert_eq!(ProducerRecord::new("x").check(), Ok(()));
        let many = (0..=MAX_RECORD_HEADERS)
            .fold(ProducerRecord::new("x"), |r, i| r.header(i.to_string(), ""));
        assert_eq!(
            many.check(),
            Err(RecordTooLarge::Headers(MAX_RECORD_HEADERS + 1))
        );
        let big_key = ProducerRecord::new("x").key(vec![0u8; MAX_RECORD_META_LEN + 1]);
        assert_eq!(
            big_key.check(),
            Err(RecordTooLarge::Meta(MAX_RECORD_META_LEN + 1))
        );
    }
}
