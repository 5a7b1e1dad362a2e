//! The byte format of a record at rest, as stores keep it.
//!
//! ```text
//! [header length: u32 big-endian][RecordHeader protobuf][content]
//! ```
//!
//! The header is the same protobuf as on the wire, so a store can hand a
//! record back exactly as it arrived (key, headers and timestamp included).

use crate::codec::record_header_bytes;
use crate::error::DecodeError;
use crate::pb;
use crate::types::Record;
use bytes::Bytes;
use prost::Message as _;

/// Encodes a record for storage.
pub fn record_to_bytes(r: &Record) -> Vec<u8> {
    let header = record_header_bytes(r);
    let mut v = Vec::with_capacity(4 + header.len() + r.content.len());
    v.extend_from_slice(&(header.len() as u32).to_be_bytes());
    v.extend_from_slice(&header);
    v.extend_from_slice(&r.content);
    v
}

/// Decodes a stored record.
pub fn record_from_bytes(bytes: &[u8]) -> Result<Record, DecodeError> {
    let len_bytes: [u8; 4] =
        bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or(DecodeError::ShortHeader {
                need: 4,
                have: bytes.len(),
            })?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    let header = bytes.get(4..4 + len).ok_or(DecodeError::ShortHeader {
        need: 4 + len,
        have: bytes.len(),
    })?;
    let h = pb::RecordHeader::decode(header).map_err(|e| DecodeError::MalformedBody {
        kind: "stored record",
        reason: e.to_string(),
    })?;
    crate::codec::record_from_pb(Some(h), Some(&bytes[4 + len..]))
}

/// The content of a stored record without decoding its header, for callers
/// that only want the payload.
pub fn content_of(bytes: &[u8]) -> Option<Bytes> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    bytes.get(4 + len..).map(Bytes::copy_from_slice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;

    #[test]
    fn round_trips_and_rejects_truncation() {
        let r = Record {
            topic: "t".into(),
            partition: NodeId([3; 16]),
            offset: 42,
            headers: vec![("h".into(), Bytes::from_static(b"v"))],
            content: Bytes::from_static(b"payload"),
            ..Default::default()
        };
        let b = record_to_bytes(&r);
        assert_eq!(record_from_bytes(&b), Ok(r));
        assert_eq!(content_of(&b).as_deref(), Some(&b"payload"[..]));
        for cut in 0..b.len() - 7 {
            assert!(record_from_bytes(&b[..cut]).is_err() || cut >= b.len() - 7);
        }
    }
}
