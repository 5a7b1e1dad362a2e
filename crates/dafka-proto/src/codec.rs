//! Encoding messages to frames and decoding frames to messages.
//!
//! ```text
//! frame 0  [id: 1 byte][key]            routing key, see crate::routing
//! frame 1  [0xDA 0xFA][version][body]   protobuf body, see proto/dafka.proto
//! frame 2  [content]                    RECORD and DIRECT-RECORD only
//! ```

use crate::error::DecodeError;
use crate::limits::*;
use crate::pb;
use crate::routing::MessageId;
use crate::types::*;
use bytes::Bytes;
use prost::Message as _;

/// The two bytes every header frame starts with.
pub const SIGNATURE: [u8; 2] = [0xDA, 0xFA];
/// The protocol version this codec speaks.
pub const VERSION: u8 = 2;
const PREAMBLE: usize = 3;

/// A message as ZeroMQ frames, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frames {
    /// Frame 0: message id and routing key.
    pub key: Vec<u8>,
    /// Frame 1: signature, version, protobuf body.
    pub header: Vec<u8>,
    /// Frame 2, for RECORD and DIRECT-RECORD: the content, shared, not copied.
    pub content: Option<Bytes>,
}

impl Frames {
    /// The frames in order, for a socket's multipart send.
    pub fn to_vec(&self) -> Vec<&[u8]> {
        let mut v: Vec<&[u8]> = vec![&self.key, &self.header];
        if let Some(c) = &self.content {
            v.push(c);
        }
        v
    }
}

/// Encodes a message. Never fails: every `Message` value is encodable.
pub fn encode(msg: &Message) -> Frames {
    match msg {
        Message::Record(r) => encode_run(None, std::slice::from_ref(r)),
        Message::DirectRecord { to, record } => encode_run(Some(*to), std::slice::from_ref(record)),
        other => {
            let body = body_of(other);
            Frames {
                key: msg.routing_key(),
                header: with_preamble(body.len(), |h| h.extend_from_slice(&body)),
                content: None,
            }
        }
    }
}

/// A header frame: preamble, then what `body` writes (`len` bytes).
fn with_preamble(len: usize, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut header = Vec::with_capacity(PREAMBLE + len);
    header.extend_from_slice(&SIGNATURE);
    header.push(VERSION);
    body(&mut header);
    header
}

/// Whether `next` may follow `prev` in one RECORD or DIRECT-RECORD: same
/// topic and partition, the next offset.
pub fn continues(prev: &Record, next: &Record) -> bool {
    prev.offset.checked_add(1) == Some(next.offset)
        && prev.partition == next.partition
        && prev.topic == next.topic
}

/// Encodes a run of records as one RECORD (`to` is `None`) or DIRECT-RECORD
/// to `to`. Every record must [`continue`](continues) the one before it;
/// only the first one's topic, partition and offset are sent. An empty run
/// encodes an empty RECORD that no receiver accepts: callers send runs of
/// at least one record.
pub fn encode_run(to: Option<NodeId>, run: &[Record]) -> Frames {
    debug_assert!(run.windows(2).all(|w| continues(&w[0], &w[1])));
    match run.first() {
        Some(first) => encode_run_of(to, &first.topic, first.partition, run),
        None => Frames {
            key: vec![MessageId::Record as u8],
            header: Vec::new(),
            content: None,
        },
    }
}

/// As [`encode_run`], for records of partition `partition` of `topic` kept
/// in a form of their own ([`RunRecord`]); each offset must follow the one
/// before it.
pub fn encode_run_of<R: RunRecord>(
    to: Option<NodeId>,
    topic: &str,
    partition: NodeId,
    run: &[R],
) -> Frames {
    debug_assert!(run
        .windows(2)
        .all(|w| w[0].offset().checked_add(1) == Some(w[1].offset())));
    let Some((first, rest)) = run.split_first() else {
        return encode_run(to, &[]);
    };
    let key = match to {
        None => crate::routing::topic_key(MessageId::Record, topic),
        Some(to) => crate::routing::node_key(MessageId::DirectRecord, &to),
    };
    let at = Place { topic, partition };
    let header = with_preamble(run_body_estimate(topic, run), |h| {
        encode_run_body(to.as_ref(), at, first, rest, h)
    });
    let content = if rest.is_empty() {
        first.content().clone()
    } else {
        let mut all = Vec::new();
        append_contents(run, &mut all);
        Bytes::from(all)
    };
    Frames {
        key,
        header,
        content: Some(content),
    }
}

/// The partition a run belongs to: what its first record's header names.
#[derive(Clone, Copy)]
pub(crate) struct Place<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: NodeId,
}

impl<'a> Place<'a> {
    pub(crate) fn of(r: &'a Record) -> Self {
        Place {
            topic: &r.topic,
            partition: r.partition,
        }
    }
}

/// Appends the contents of `run` back to back: frame 2 of a run, and the
/// tail of a stored run.
pub(crate) fn append_contents<R: RunRecord>(run: &[R], out: &mut Vec<u8>) {
    out.reserve(run.iter().map(|r| r.content().len()).sum());
    run.iter().for_each(|r| out.extend_from_slice(r.content()));
}

/// Appends the protobuf body of a run to `out`: a `pb::Record`, or with
/// `to` a `pb::DirectRecord`; the first record's header, then the others'.
/// Byte for byte what prost writes for the whole message, but the records
/// after the first are encoded one at a time straight from the run, never
/// gathered into a `Vec` of `NextRecord`s (a thousand of them a run).
pub(crate) fn encode_run_body<R: RunRecord>(
    to: Option<&NodeId>,
    at: Place,
    first: &R,
    rest: &[R],
    out: &mut Vec<u8>,
) {
    let record = Some(header_to_pb(at, first));
    // prost writes fields in field-number order, the repeated `next` last:
    // the message without it, then its elements, is the same encoding.
    // Cannot fail: a Vec grows as needed.
    let next = Vec::new();
    let next_field = match to {
        None => {
            let _ = pb::Record { record, next }.encode(out);
            2
        }
        Some(to) => {
            let to = id_bytes(to);
            let _ = pb::DirectRecord { to, record, next }.encode(out);
            3
        }
    };
    let mut prev = first.timestamp_ms();
    for r in rest {
        if r.key().is_none() && r.headers().is_empty() {
            encode_plain_next(next_field, prev, r, out);
        } else {
            prost::encoding::message::encode(next_field, &next_to_pb(prev, r), out);
        }
        prev = r.timestamp_ms();
    }
}

/// A record after the first with no key and no headers (most of them),
/// written straight from its length and timestamp: the same bytes as
/// prost's for its [`next_to_pb`], without building a `NextRecord` (a
/// `Vec` to drop, its length computed twice) for every record of a run.
fn encode_plain_next<R: RunRecord>(field: u32, prev: Option<i64>, r: &R, out: &mut Vec<u8>) {
    use prost::encoding::{encode_key, encode_varint, int64, sint64, uint32, WireType};
    let length = r.content().len() as u32;
    let (stamp, delta) = next_stamps(prev, r);
    // Field by field as prost writes them: a proto3 scalar only when not
    // zero, an `optional` one whenever present, in field-number order.
    let len = if length != 0 {
        uint32::encoded_len(1, &length)
    } else {
        0
    } + stamp.map_or(0, |t| int64::encoded_len(4, &t))
        + delta.map_or(0, |d| sint64::encoded_len(5, &d));
    encode_key(field, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
    if length != 0 {
        uint32::encode(1, &length, out);
    }
    if let Some(t) = stamp {
        int64::encode(4, &t, out);
    }
    if let Some(d) = delta {
        sint64::encode(5, &d, out);
    }
}

/// Room for a run's body, close enough that the header frame rarely grows:
/// a plain record after the first takes about a dozen bytes.
pub(crate) fn run_body_estimate<R: RunRecord>(topic: &str, run: &[R]) -> usize {
    let meta: usize = run
        .iter()
        .map(|r| meta_len(r.key(), r.headers()) + 8 * r.headers().len())
        .sum();
    64 + topic.len() + meta + 12 * run.len().saturating_sub(1)
}

/// A record after the first of a run; its timestamp as a difference from
/// the one before (`prev`) where both have one.
fn next_to_pb<R: RunRecord>(prev: Option<i64>, r: &R) -> pb::NextRecord {
    let (timestamp_ms, timestamp_delta_ms) = next_stamps(prev, r);
    pb::NextRecord {
        length: r.content().len() as u32,
        key: r.key().cloned(),
        headers: headers_to_pb(r.headers()),
        timestamp_ms,
        timestamp_delta_ms,
    }
}

/// A next record's timestamp fields `(timestamp_ms, timestamp_delta_ms)`:
/// the difference from the one before (`prev`) where both have one and
/// it fits, else its own timestamp.
fn next_stamps<R: RunRecord>(prev: Option<i64>, r: &R) -> (Option<i64>, Option<i64>) {
    let delta = prev
        .zip(r.timestamp_ms())
        .and_then(|(p, t)| t.checked_sub(p));
    match delta {
        Some(_) => (None, delta),
        None => (r.timestamp_ms(), None),
    }
}

/// A next record's timestamp: given, or the one before plus a difference.
fn next_timestamp(prev: Option<i64>, n: &pb::NextRecord) -> Result<Option<i64>, DecodeError> {
    match (n.timestamp_ms, n.timestamp_delta_ms) {
        (Some(t), _) => Ok(Some(t)),
        (None, None) => Ok(None),
        (None, Some(d)) => {
            prev.and_then(|p| p.checked_add(d))
                .map(Some)
                .ok_or(DecodeError::InvalidField {
                    field: "timestamp_delta_ms",
                    reason: "no timestamp before it to add it to, or the sum overflows",
                })
        }
    }
}

fn headers_to_pb(headers: &[(String, Bytes)]) -> Vec<pb::Header> {
    headers
        .iter()
        .map(|(name, value)| pb::Header {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

fn body_of(msg: &Message) -> Vec<u8> {
    match msg {
        Message::Head(h) => head_to_pb(h).encode_to_vec(),
        Message::DirectHead {
            to,
            head,
            store,
            state,
            log_start,
        } => {
            let (empty, unreadable_from, reason) = match state {
                HeadState::Holds => (false, None, String::new()),
                HeadState::Empty => (true, None, String::new()),
                HeadState::Unreadable { from, reason } => (false, Some(*from), reason.clone()),
            };
            pb::DirectHead {
                to: id_bytes(to),
                head: Some(head_to_pb(head)),
                store: store.as_ref().map(id_bytes).unwrap_or_default(),
                empty,
                unreadable_from,
                reason,
                log_start: *log_start,
            }
            .encode_to_vec()
        }
        other => control_body(other),
    }
}

fn control_body(msg: &Message) -> Vec<u8> {
    match msg {
        Message::Fetch(f) => pb::Fetch {
            topic: f.topic.clone(),
            partition: id_bytes(&f.partition),
            offset: f.offset,
            count: f.count,
            sender: id_bytes(&f.sender),
        }
        .encode_to_vec(),
        Message::Ack(a) => pb::Ack {
            topic: a.topic.clone(),
            partition: id_bytes(&a.partition),
            offset: a.offset,
            store: id_bytes(&a.store),
        }
        .encode_to_vec(),
        Message::GetHeads {
            topic,
            sender,
            partition,
        } => pb::GetHeads {
            topic: topic.clone(),
            sender: id_bytes(sender),
            partition: partition.as_ref().map(id_bytes).unwrap_or_default(),
        }
        .encode_to_vec(),
        Message::StoreHello { to, store } => pb::StoreHello {
            to: id_bytes(to),
            store: id_bytes(store),
        }
        .encode_to_vec(),
        Message::ConsumerHello {
            to,
            consumer,
            topics,
        } => pb::ConsumerHello {
            to: id_bytes(to),
            consumer: id_bytes(consumer),
            topics: topics.clone(),
        }
        .encode_to_vec(),
        Message::Beacon(b) => beacon_to_pb(b).encode_to_vec(),
        Message::TowerHello { tower, peers } => pb::TowerHello {
            tower: id_bytes(tower),
            peers: peers.iter().map(beacon_to_pb).collect(),
        }
        .encode_to_vec(),
        Message::Commit { .. }
        | Message::CommitAck { .. }
        | Message::GetPositions { .. }
        | Message::DirectPositions { .. } => crate::positions::encode_body(msg).unwrap_or_default(),
        Message::GetPartitions { .. } | Message::DirectPartitions { .. } => {
            crate::admin::encode_body(msg).unwrap_or_default()
        }
        // Record-carrying messages are encoded in encode_run, heads in body_of.
        Message::Record(_)
        | Message::DirectRecord { .. }
        | Message::Head(_)
        | Message::DirectHead { .. } => Vec::new(),
    }
}

pub(crate) fn id_bytes(id: &NodeId) -> Bytes {
    Bytes::copy_from_slice(id.as_bytes())
}

fn record_to_pb(r: &Record) -> pb::RecordHeader {
    header_to_pb(Place::of(r), r)
}

/// The header of a run's first record, which names the run's place.
fn header_to_pb<R: RunRecord>(at: Place, r: &R) -> pb::RecordHeader {
    pb::RecordHeader {
        topic: at.topic.to_owned(),
        partition: id_bytes(&at.partition),
        offset: r.offset(),
        key: r.key().cloned(),
        headers: headers_to_pb(r.headers()),
        timestamp_ms: r.timestamp_ms(),
    }
}

/// The protobuf RecordHeader of a record, alone (for the stored format).
pub(crate) fn record_header_bytes(r: &Record) -> Vec<u8> {
    record_to_pb(r).encode_to_vec()
}

fn head_to_pb(h: &Head) -> pb::Head {
    pb::Head {
        topic: h.topic.clone(),
        partition: id_bytes(&h.partition),
        offset: h.offset,
    }
}

fn beacon_to_pb(b: &Beacon) -> pb::Beacon {
    let role = match b.role {
        Role::Unspecified => pb::Role::Unspecified,
        Role::Producer => pb::Role::Producer,
        Role::Consumer => pb::Role::Consumer,
        Role::Store => pb::Role::Store,
        Role::Tower => pb::Role::Tower,
        Role::Admin => pb::Role::Admin,
    };
    pb::Beacon {
        node: id_bytes(&b.node),
        endpoint: b.endpoint.clone(),
        port: b.port,
        role: role as i32,
        interval_ms: b.interval_ms,
        leaving: b.leaving,
        age_ms: b.age_ms,
        group: b.group.clone(),
        topics: b.topics,
        key: b.key.clone(),
    }
}

/// Decodes a message from its frames, checking everything the RFC requires.
/// A RECORD or DIRECT-RECORD carrying a run of several records is an error
/// here ([`DecodeError::Run`]): receivers use [`decode_all`].
pub fn decode<F: AsRef<[u8]>>(frames: &[F]) -> Result<Message, DecodeError> {
    let mut out = Vec::with_capacity(1);
    decode_all(frames, &mut out)?;
    match out.pop() {
        Some(msg) if out.is_empty() => Ok(msg),
        _ => Err(DecodeError::Run(out.len() + 1)),
    }
}

/// What decoding appends to: a [`Message`] itself, or a receiver's own
/// event type that wraps one. A driver decodes straight into its queue of
/// events, not into a vector of messages moved over after: at 100 B each
/// record of a run was otherwise copied once more, a few percent of a
/// store's driver thread.
pub trait FromMessage: Sized {
    /// Wraps a decoded message.
    fn from_message(msg: Message) -> Self;
    /// The message this wraps, if it is one.
    fn message(&self) -> Option<&Message>;
}

impl FromMessage for Message {
    fn from_message(msg: Message) -> Self {
        msg
    }

    fn message(&self) -> Option<&Message> {
        Some(self)
    }
}

/// Decodes a message from its frames and appends it to `out`: one
/// [`Message`] per record for a run of records, in offset order, else one.
/// On an error nothing is appended. Returns how many were.
pub fn decode_all<F: AsRef<[u8]>, T: FromMessage>(
    frames: &[F],
    out: &mut Vec<T>,
) -> Result<usize, DecodeError> {
    let content = frames.get(2).map(|c| Content::Borrowed(c.as_ref()));
    decode_frames(frames, frames.len(), content, out)
}

/// As [`decode_all`], for a message whose last frame, a RECORD's or
/// DIRECT-RECORD's content, the caller holds as [`Bytes`]: `head` is the
/// frames before it. The records' contents are slices of `content`, not
/// copies of it.
pub fn decode_all_shared<F: AsRef<[u8]>, T: FromMessage>(
    head: &[F],
    content: Bytes,
    out: &mut Vec<T>,
) -> Result<usize, DecodeError> {
    decode_frames(head, head.len() + 1, Some(Content::Shared(content)), out)
}

/// A content frame: borrowed (copied once, if it decodes), or already
/// owned.
enum Content<'a> {
    Borrowed(&'a [u8]),
    Shared(Bytes),
}

impl Content<'_> {
    fn len(&self) -> usize {
        match self {
            Content::Borrowed(c) => c.len(),
            Content::Shared(c) => c.len(),
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Content::Borrowed(c) => Bytes::copy_from_slice(c),
            Content::Shared(c) => c,
        }
    }
}

/// `count` frames in all: `frames` and, after them, `content` if any.
fn decode_frames<F: AsRef<[u8]>, T: FromMessage>(
    frames: &[F],
    count: usize,
    content: Option<Content>,
    out: &mut Vec<T>,
) -> Result<usize, DecodeError> {
    let key = frames.first().map(AsRef::as_ref).unwrap_or_default();
    let first = *key.first().ok_or(DecodeError::Empty)?;
    let id = MessageId::from_byte(first).ok_or(DecodeError::UnknownMessageId(first))?;
    if count != id.frame_count() {
        return Err(DecodeError::FrameCount {
            kind: id.name(),
            expected: id.frame_count(),
            got: count,
        });
    }
    let body = check_header(frames[1].as_ref())?;
    let start = out.len();
    match content {
        Some(content) => decode_run(id, body, content, out)?,
        None => out.push(T::from_message(decode_body(id, body)?)),
    }
    // Fails closed: an entry that does not show its message is no match.
    let routed = out[start].message().map(Message::routing_key);
    if routed.as_deref() != Some(key) {
        out.truncate(start);
        return Err(DecodeError::RoutingMismatch { kind: id.name() });
    }
    Ok(out.len() - start)
}

fn check_header(header: &[u8]) -> Result<&[u8], DecodeError> {
    if header.len() < PREAMBLE {
        return Err(DecodeError::ShortHeader {
            need: PREAMBLE,
            have: header.len(),
        });
    }
    if header[..2] != SIGNATURE {
        return Err(DecodeError::BadSignature([header[0], header[1]]));
    }
    if header[2] != VERSION {
        return Err(DecodeError::UnsupportedVersion(header[2], VERSION));
    }
    check_len("header frame", header.len(), MAX_HEADER_FRAME_LEN)?;
    Ok(&header[PREAMBLE..])
}

/// A RECORD or DIRECT-RECORD: one message per record of the run.
fn decode_run<T: FromMessage>(
    id: MessageId,
    body: &[u8],
    content: Content,
    out: &mut Vec<T>,
) -> Result<(), DecodeError> {
    let kind = id.name();
    // One copy of the header frame, so that keys, header values and ids
    // decode as slices of it instead of an allocation each.
    let body = Bytes::copy_from_slice(body);
    let malformed = |e: prost::DecodeError| DecodeError::MalformedBody {
        kind,
        reason: e.to_string(),
    };
    let (to, first, next) = match id {
        MessageId::Record => {
            let b = pb::Record::decode(body).map_err(malformed)?;
            (None, b.record, b.next)
        }
        _ => {
            let b = pb::DirectRecord::decode(body).map_err(malformed)?;
            (Some(node_id("to", &b.to)?), b.record, b.next)
        }
    };
    // Checked before the copy: a frame too large is not copied at all.
    check_len("content", content.len(), MAX_CONTENT_LEN)?;
    records_from_pb(first, next, content.into_bytes(), out, |record| {
        T::from_message(match to {
            None => Message::Record(record),
            Some(to) => Message::DirectRecord { to, record },
        })
    })
}

fn decode_body(id: MessageId, body: &[u8]) -> Result<Message, DecodeError> {
    let kind = id.name();
    Ok(match id {
        MessageId::Head => Message::Head(head_from_pb(parse(kind, body)?)?),
        MessageId::DirectHead => {
            let b: pb::DirectHead = parse(kind, body)?;
            let head = b.head.ok_or(DecodeError::InvalidField {
                field: "head",
                reason: "missing",
            })?;
            check_len("reason", b.reason.len(), MAX_REASON_LEN)?;
            let state = match (b.empty, b.unreadable_from) {
                (false, None) => HeadState::Holds,
                (true, None) => HeadState::Empty,
                (false, Some(from)) => HeadState::Unreadable {
                    from,
                    reason: b.reason,
                },
                (true, Some(_)) => {
                    return Err(DecodeError::InvalidField {
                        field: "empty",
                        reason: "an empty partition cannot be unreadable",
                    })
                }
            };
            Message::DirectHead {
                to: node_id("to", &b.to)?,
                head: head_from_pb(head)?,
                store: optional_id("store", &b.store)?,
                state,
                log_start: b.log_start,
            }
        }
        _ => decode_control(id, body)?,
    })
}

fn decode_control(id: MessageId, body: &[u8]) -> Result<Message, DecodeError> {
    let kind = id.name();
    Ok(match id {
        MessageId::Fetch => {
            let b: pb::Fetch = parse(kind, body)?;
            Message::Fetch(Fetch {
                topic: topic(b.topic)?,
                partition: node_id("partition", &b.partition)?,
                offset: b.offset,
                count: b.count,
                sender: node_id("sender", &b.sender)?,
            })
        }
        MessageId::Ack => {
            let b: pb::Ack = parse(kind, body)?;
            Message::Ack(Ack {
                topic: topic(b.topic)?,
                partition: node_id("partition", &b.partition)?,
                offset: b.offset,
                store: node_id("store", &b.store)?,
            })
        }
        MessageId::GetHeads => {
            let b: pb::GetHeads = parse(kind, body)?;
            Message::GetHeads {
                topic: topic(b.topic)?,
                sender: node_id("sender", &b.sender)?,
                partition: optional_id("partition", &b.partition)?,
            }
        }
        MessageId::StoreHello => {
            let b: pb::StoreHello = parse(kind, body)?;
            Message::StoreHello {
                to: node_id("to", &b.to)?,
                store: node_id("store", &b.store)?,
            }
        }
        MessageId::ConsumerHello => {
            let b: pb::ConsumerHello = parse(kind, body)?;
            check_len("topics", b.topics.len(), MAX_HELLO_TOPICS)?;
            Message::ConsumerHello {
                to: node_id("to", &b.to)?,
                consumer: node_id("consumer", &b.consumer)?,
                topics: b.topics.into_iter().map(topic).collect::<Result<_, _>>()?,
            }
        }
        MessageId::Beacon => Message::Beacon(beacon_from_pb(parse(kind, body)?)?),
        MessageId::TowerHello => {
            let b: pb::TowerHello = parse(kind, body)?;
            check_len("peers", b.peers.len(), MAX_TOWER_PEERS)?;
            Message::TowerHello {
                tower: node_id("tower", &b.tower)?,
                peers: b
                    .peers
                    .into_iter()
                    .map(beacon_from_pb)
                    .collect::<Result<_, _>>()?,
            }
        }
        MessageId::Commit
        | MessageId::CommitAck
        | MessageId::GetPositions
        | MessageId::DirectPositions => crate::positions::decode_body(id, body)?,
        MessageId::GetPartitions | MessageId::DirectPartitions => {
            crate::admin::decode_body(id, body)?
        }
        // Handled in decode_body.
        MessageId::Record | MessageId::DirectRecord | MessageId::Head | MessageId::DirectHead => {
            return Err(DecodeError::UnknownMessageId(id as u8))
        }
    })
}

pub(crate) fn parse<T: prost::Message + Default>(
    kind: &'static str,
    body: &[u8],
) -> Result<T, DecodeError> {
    T::decode(body).map_err(|e| DecodeError::MalformedBody {
        kind,
        reason: e.to_string(),
    })
}

pub(crate) fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        return Err(DecodeError::Oversize { field, len, max });
    }
    Ok(())
}

pub(crate) fn node_id(field: &'static str, bytes: &[u8]) -> Result<NodeId, DecodeError> {
    NodeId::from_slice(bytes).ok_or(DecodeError::InvalidField {
        field,
        reason: "must be exactly 16 bytes",
    })
}

/// An id that may be absent (empty bytes), else exactly 16 bytes.
fn optional_id(field: &'static str, bytes: &[u8]) -> Result<Option<NodeId>, DecodeError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    node_id(field, bytes).map(Some)
}

/// Checks a topic name: 1 to [`MAX_TOPIC_LEN`] bytes, no 0x00 byte (it ends
/// the routing key). Public so that APIs can reject a bad topic up front.
pub fn validate_topic(t: &str) -> Result<(), DecodeError> {
    check_len("topic", t.len(), MAX_TOPIC_LEN)?;
    if t.is_empty() {
        return Err(DecodeError::InvalidField {
            field: "topic",
            reason: "must not be empty",
        });
    }
    if t.contains('\0') {
        return Err(DecodeError::InvalidField {
            field: "topic",
            reason: "must not contain a 0x00 byte",
        });
    }
    Ok(())
}

pub(crate) fn topic(t: String) -> Result<String, DecodeError> {
    validate_topic(&t).map(|_| t)
}

pub(crate) fn record_from_pb(
    h: Option<pb::RecordHeader>,
    content: Option<&[u8]>,
) -> Result<Record, DecodeError> {
    let content = content.unwrap_or_default();
    check_len("content", content.len(), MAX_CONTENT_LEN)?;
    record_with(h, Bytes::copy_from_slice(content))
}

fn record_with(h: Option<pb::RecordHeader>, content: Bytes) -> Result<Record, DecodeError> {
    let h = h.ok_or(DecodeError::InvalidField {
        field: "record",
        reason: "missing",
    })?;
    check_len("headers", h.headers.len(), MAX_RECORD_HEADERS)?;
    Ok(Record {
        topic: topic(h.topic)?.into(),
        partition: node_id("partition", &h.partition)?,
        offset: h.offset,
        key: h.key,
        headers: h.headers.into_iter().map(|x| (x.name, x.value)).collect(),
        timestamp_ms: h.timestamp_ms,
        content,
    })
}

/// Appends the records of a run to `out`, each as `wrap` makes it; each
/// record's content is a slice of `all`. Straight into `out`, not through
/// a vector of their own: a run holds up to a thousand records, and each
/// extra step is a copy of every one. On an error nothing is appended.
pub(crate) fn records_from_pb<T>(
    first: Option<pb::RecordHeader>,
    next: Vec<pb::NextRecord>,
    all: Bytes,
    out: &mut Vec<T>,
    wrap: impl Fn(Record) -> T,
) -> Result<(), DecodeError> {
    let start = out.len();
    let push = || -> Result<(), DecodeError> {
        let content = &all[..];
        check_len("content", content.len(), MAX_CONTENT_LEN)?;
        check_len("next", next.len(), MAX_RUN_RECORDS)?;
        let rest: u64 = next.iter().map(|n| u64::from(n.length)).sum();
        let first_len =
            (content.len() as u64)
                .checked_sub(rest)
                .ok_or(DecodeError::InvalidField {
                    field: "next",
                    reason: "lengths exceed the content frame",
                })? as usize;
        let head = record_with(first, all.slice(..first_len))?;
        head.offset
            .checked_add(next.len() as u64)
            .ok_or(DecodeError::InvalidField {
                field: "offset",
                reason: "the run passes the largest offset",
            })?;
        let (partition, offset) = (head.partition, head.offset);
        // Every record of the run shares the head's topic name (one
        // allocation per run, not per record).
        let topic = head.topic.clone();
        let mut timestamp = head.timestamp_ms;
        out.reserve(next.len() + 1);
        out.push(wrap(head));
        let mut at = first_len;
        for (i, n) in next.into_iter().enumerate() {
            check_len("headers", n.headers.len(), MAX_RECORD_HEADERS)?;
            let end = at + n.length as usize;
            timestamp = next_timestamp(timestamp, &n)?;
            out.push(wrap(Record {
                topic: topic.clone(),
                partition,
                offset: offset + 1 + i as u64,
                key: n.key,
                headers: n.headers.into_iter().map(|x| (x.name, x.value)).collect(),
                timestamp_ms: timestamp,
                content: all.slice(at..end),
            }));
            at = end;
        }
        Ok(())
    };
    let pushed = push();
    if pushed.is_err() {
        out.truncate(start);
    }
    pushed
}

fn head_from_pb(h: pb::Head) -> Result<Head, DecodeError> {
    Ok(Head {
        topic: topic(h.topic)?,
        partition: node_id("partition", &h.partition)?,
        offset: h.offset,
    })
}

fn beacon_from_pb(b: pb::Beacon) -> Result<Beacon, DecodeError> {
    check_len("endpoint", b.endpoint.len(), MAX_ENDPOINT_LEN)?;
    let role = match pb::Role::try_from(b.role) {
        Ok(pb::Role::Producer) => Role::Producer,
        Ok(pb::Role::Consumer) => Role::Consumer,
        Ok(pb::Role::Store) => Role::Store,
        Ok(pb::Role::Tower) => Role::Tower,
        Ok(pb::Role::Admin) => Role::Admin,
        // An unknown role from a newer peer is not a reason to ignore it.
        _ => Role::Unspecified,
    };
    Ok(Beacon {
        node: node_id("node", &b.node)?,
        endpoint: b.endpoint,
        port: b.port,
        role,
        interval_ms: b.interval_ms,
        leaving: b.leaving,
        age_ms: b.age_ms,
        group: topic_or_empty("group", b.group)?,
        topics: b.topics,
        key: public_key(b.key)?,
    })
}

/// A beacon's CURVE key: none, or 40 characters of Z85. Whether it is
/// the sender's is for the tower to check, not the codec.
fn public_key(k: String) -> Result<String, DecodeError> {
    if k.is_empty() || crate::is_z85_key(&k) {
        Ok(k)
    } else {
        Err(DecodeError::InvalidField {
            field: "key",
            reason: "not a CURVE public key (40 characters of Z85)",
        })
    }
}

/// A name that may be empty, else follows the rules of topic names.
fn topic_or_empty(field: &'static str, n: String) -> Result<String, DecodeError> {
    if n.is_empty() {
        return Ok(n);
    }
    topic(n).map_err(|e| match e {
        DecodeError::InvalidField { reason, .. } => DecodeError::InvalidField { field, reason },
        DecodeError::Oversize { len, max, .. } => DecodeError::Oversize { field, len, max },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(offset: u64, ts: Option<i64>, key: Option<&'static [u8]>, headers: usize) -> Record {
        Record {
            topic: "orders".into(),
            partition: NodeId([3; 16]),
            offset,
            key: key.map(Bytes::from_static),
            headers: (0..headers)
                .map(|i| (format!("h{i}"), Bytes::from(vec![i as u8; i])))
                .collect(),
            timestamp_ms: ts,
            content: Bytes::from(vec![offset as u8; offset as usize % 7]),
        }
    }

    /// What prost writes for the whole message, `next` gathered first.
    fn prost_body(to: Option<&NodeId>, run: &[Record]) -> Vec<u8> {
        let (first, rest) = run.split_first().expect("a run");
        let next: Vec<pb::NextRecord> = run
            .iter()
            .zip(rest)
            .map(|(prev, r)| next_to_pb(prev.timestamp_ms, r))
            .collect();
        let record = Some(record_to_pb(first));
        match to {
            None => pb::Record { record, next }.encode_to_vec(),
            Some(to) => pb::DirectRecord {
                to: id_bytes(to),
                record,
                next,
            }
            .encode_to_vec(),
        }
    }

    #[test]
    fn a_run_body_is_what_prost_writes_for_the_whole_message() {
        let runs = [
            vec![rec(0, Some(1_700_000_000_000), None, 0)],
            (0..50)
                .map(|o| rec(o, Some(1_700_000_000_000 + o as i64 * 3), None, 0))
                .collect(),
            vec![
                rec(7, None, Some(b"k"), 2),
                rec(8, Some(5), None, 0),
                rec(9, Some(4), Some(b""), 1),
                rec(10, None, None, 3),
                rec(11, Some(i64::MAX), Some(b"key"), 0),
                rec(12, Some(i64::MIN), None, 0),
            ],
            // Plain records (the hand-written path) in every timestamp
            // case: none, after none, a falling one, a delta that overflows.
            vec![
                rec(14, None, None, 0),
                rec(15, None, None, 0),
                rec(16, Some(-3), None, 0),
                rec(17, None, None, 0),
                rec(18, Some(0), None, 0),
                rec(19, Some(-9), None, 0),
                rec(20, Some(i64::MAX), None, 0),
                rec(21, Some(i64::MIN), None, 0),
                rec(22, Some(i64::MIN), None, 0),
                rec(23, Some(1), None, 0),
            ],
            // Lengths of two and three varint bytes.
            [300, 70_000]
                .iter()
                .enumerate()
                .map(|(i, &len)| Record {
                    content: Bytes::from(vec![1; len]),
                    ..rec(30 + i as u64, Some(7), None, 0)
                })
                .collect(),
        ];
        for run in &runs {
            for to in [None, Some(NodeId([9; 16]))] {
                let mut ours = Vec::new();
                let (first, rest) = run.split_first().expect("a run");
                encode_run_body(to.as_ref(), Place::of(first), first, rest, &mut ours);
                assert_eq!(ours, prost_body(to.as_ref(), run));
                let mut back: Vec<Message> = Vec::new();
                assert!(decode_all(&encode_run(to, run).to_vec(), &mut back).is_ok());
                assert_eq!(back.len(), run.len());
            }
        }
    }

    #[test]
    fn a_run_that_breaks_midway_appends_nothing() {
        let run = [
            rec(4, Some(i64::MAX - 1), None, 0),
            rec(5, None, None, 0),
            rec(6, None, None, 0),
        ];
        let mut next: Vec<pb::NextRecord> = run
            .iter()
            .zip(&run[1..])
            .map(|(prev, r)| next_to_pb(prev.timestamp_ms, r))
            .collect();
        // The last record's timestamp overflows the one before it.
        next[1].timestamp_delta_ms = Some(5);
        next[0].timestamp_ms = Some(i64::MAX - 1);
        let all: Bytes = run.iter().flat_map(|r| r.content.to_vec()).collect();
        let mut out = vec![rec(0, None, None, 0)];
        let got = records_from_pb(Some(record_to_pb(&run[0])), next, all, &mut out, |r| r);
        assert!(got.is_err());
        assert_eq!(out, vec![rec(0, None, None, 0)]);
    }
}
