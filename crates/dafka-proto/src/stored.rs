//! The byte format of records at rest, as stores keep them.
//!
//! ```text
//! one record:  [header length: u32 BE][RecordHeader protobuf][content]
//! a run:       ['R'][body length: u32 BE][Record protobuf][contents]
//! ```
//!
//! The protobufs are the same as on the wire, so a store hands records back
//! exactly as they arrived (key, headers and timestamp included). A run is
//! what a RECORD carrying several records holds: consecutive records of one
//! partition stored under one key, so the database does its per-key work
//! (index, memtable, checksums) once per run instead of once per record.
//! A one-record value starts with the high byte of a header length that is
//! at most 1 MiB, never 'R', so the two formats cannot be confused and a
//! store reads what older versions wrote.

use crate::codec::{
    append_contents, encode_run_body, record_header_bytes, records_from_pb, run_body_estimate,
    Place,
};
use crate::error::DecodeError;
use crate::pb;
use crate::types::Record;
use bytes::Bytes;
use prost::Message as _;

/// The first byte of a stored run.
const RUN: u8 = b'R';

/// Appends a run of records (each continuing the one before, see
/// [`crate::continues`]) to `out` in the stored run format. An empty run
/// appends nothing.
pub fn run_to_bytes(run: &[Record], out: &mut Vec<u8>) {
    let Some((first, rest)) = run.split_first() else {
        return;
    };
    out.reserve(5 + run_body_estimate(&first.topic, run));
    out.push(RUN);
    // The body's length goes before it: write it, then fill the length in.
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    encode_run_body(None, Place::of(first), first, rest, out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    append_contents(run, out);
}

/// Decodes a stored value, a run or a single record, appending its records
/// in offset order to `out`. On an error nothing is appended.
pub fn records_from_bytes(bytes: &[u8], out: &mut Vec<Record>) -> Result<(), DecodeError> {
    if bytes.first() != Some(&RUN) {
        out.push(record_from_bytes(bytes)?);
        return Ok(());
    }
    let (body, content) = split_len(&bytes[1..])?;
    let b = pb::Record::decode(body).map_err(|e| DecodeError::MalformedBody {
        kind: "stored run",
        reason: e.to_string(),
    })?;
    let content = Bytes::copy_from_slice(content);
    records_from_pb(b.record, b.next, content, out, |r| r)
}

/// Splits `[length: u32 BE][length bytes][rest]`.
fn split_len(bytes: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    let short = |need| DecodeError::ShortHeader {
        need,
        have: bytes.len(),
    };
    let len_bytes: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(short(4))?;
    let end = 4 + u32::from_be_bytes(len_bytes) as usize;
    let body = bytes.get(4..end).ok_or(short(end))?;
    Ok((body, &bytes[end..]))
}

/// Encodes a record for storage.
pub fn record_to_bytes(r: &Record) -> Vec<u8> {
    let header = record_header_bytes(r);
    let mut v = Vec::with_capacity(4 + header.len() + r.content.len());
    v.extend_from_slice(&(header.len() as u32).to_be_bytes());
    v.extend_from_slice(&header);
    v.extend_from_slice(&r.content);
    v
}

/// Decodes a stored single record (the format older stores wrote).
pub fn record_from_bytes(bytes: &[u8]) -> Result<Record, DecodeError> {
    let (header, content) = split_len(bytes)?;
    let h = pb::RecordHeader::decode(header).map_err(|e| DecodeError::MalformedBody {
        kind: "stored record",
        reason: e.to_string(),
    })?;
    crate::codec::record_from_pb(Some(h), Some(content))
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
        assert_eq!(record_from_bytes(&b), Ok(r.clone()));
        assert_eq!(content_of(&b).as_deref(), Some(&b"payload"[..]));
        for cut in 0..b.len() - 7 {
            assert!(record_from_bytes(&b[..cut]).is_err() || cut >= b.len() - 7);
        }
        let mut out = Vec::new();
        assert_eq!(records_from_bytes(&b, &mut out), Ok(()));
        assert_eq!(out, vec![r], "the one-record format still reads");
    }

    #[test]
    fn runs_round_trip_and_reject_damage() {
        let run: Vec<Record> = (7..12)
            .map(|o| Record {
                topic: "t".into(),
                partition: NodeId([3; 16]),
                offset: o,
                timestamp_ms: (o % 2 == 0).then_some(o as i64),
                content: Bytes::from(vec![o as u8; o as usize]),
                ..Default::default()
            })
            .collect();
        let mut b = Vec::new();
        run_to_bytes(&run, &mut b);
        assert_eq!(b[0], b'R');
        let mut out = vec![];
        assert_eq!(records_from_bytes(&b, &mut out), Ok(()));
        assert_eq!(out, run);
        for cut in 0..b.len() {
            let mut out = vec![];
            let got = records_from_bytes(&b[..cut], &mut out).map(|_| out);
            assert_ne!(got, Ok(run.clone()), "cut at {cut}");
        }
    }
}
