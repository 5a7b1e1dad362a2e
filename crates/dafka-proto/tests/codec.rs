//! The wire layer, tested four ways: round trip, truncation at every byte,
//! golden bytes, and malformed input (one case per DecodeError variant).

use bytes::Bytes;
use dafka_proto::*;

const P: NodeId = NodeId([0x11; 16]);
const Q: NodeId = NodeId([0x22; 16]);

fn record(offset: u64) -> Record {
    Record {
        topic: "orders".into(),
        partition: P,
        offset,
        key: Some(Bytes::from_static(b"k")),
        headers: vec![("trace".into(), Bytes::from_static(b"abc"))],
        timestamp_ms: Some(1_700_000_000_000),
        content: Bytes::from_static(b"hello world"),
    }
}

fn head() -> Head {
    Head {
        topic: "orders".into(),
        partition: P,
        offset: u64::MAX,
    }
}

fn beacon() -> Beacon {
    Beacon {
        node: Q,
        endpoint: "tcp://127.0.0.1:40000".into(),
        port: 40000,
        role: Role::Store,
        interval_ms: 1000,
        leaving: false,
        age_ms: 0,
        group: "workers".into(),
        topics: 0xfeed,
        key: String::new(),
    }
}

/// One sample of every message type.
fn samples() -> Vec<Message> {
    vec![
        Message::Record(record(7)),
        Message::DirectRecord {
            to: Q,
            record: record(8),
        },
        Message::Head(head()),
        Message::DirectHead {
            to: Q,
            head: head(),
            store: Some(P),
            state: HeadState::Holds,
            log_start: 0,
        },
        Message::Fetch(Fetch {
            topic: "orders".into(),
            partition: P,
            offset: 3,
            count: 100,
            sender: Q,
        }),
        Message::Ack(Ack {
            topic: "orders".into(),
            partition: P,
            offset: 9,
            store: Q,
        }),
        Message::GetHeads {
            topic: "orders".into(),
            sender: Q,
            partition: None,
        },
        Message::StoreHello { to: Q, store: P },
        Message::ConsumerHello {
            to: P,
            consumer: Q,
            topics: vec!["a".into(), "b".into()],
        },
        Message::Beacon(beacon()),
        Message::TowerHello {
            tower: P,
            peers: vec![beacon(), beacon()],
        },
        Message::Commit {
            name: "billing".into(),
            sender: Q,
            seq: 4,
            positions: vec![position(3), position(0)],
        },
        Message::CommitAck {
            to: Q,
            store: P,
            seq: 4,
        },
        Message::GetPositions {
            name: "billing".into(),
            sender: Q,
            topics: vec!["orders".into()],
            from_time_ms: None,
        },
        Message::DirectPositions {
            to: Q,
            store: P,
            name: "billing".into(),
            topics: vec!["orders".into(), "empty".into()],
            positions: vec![position(12)],
            more: true,
            from_time_ms: None,
        },
        Message::GetPartitions {
            sender: Q,
            topic: Some("orders".into()),
        },
        Message::DirectPartitions {
            to: Q,
            store: P,
            partitions: vec![partition_state(Some(40)), partition_state(None)],
            more: false,
        },
    ]
}

fn partition_state(conflict_at: Option<u64>) -> PartitionState {
    PartitionState {
        topic: "orders".into(),
        partition: P,
        head: 41,
        log_start: 7,
        bytes: 4096,
        conflict_at,
    }
}

#[test]
fn a_question_about_every_topic_has_an_empty_topic_key() {
    let all = Message::GetPartitions {
        sender: Q,
        topic: None,
    };
    let frames = encode(&all);
    assert_eq!(frames.key, b"L\0");
    assert_eq!(decode(&frames.to_vec()), Ok(all));
    let too_many = Message::DirectPartitions {
        to: Q,
        store: P,
        partitions: vec![partition_state(None); limits::MAX_PARTITION_STATES + 1],
        more: false,
    };
    assert!(matches!(
        decode(&encode(&too_many).to_vec()),
        Err(DecodeError::Oversize {
            field: "partitions",
            ..
        })
    ));
}

fn position(offset: u64) -> Position {
    Position {
        topic: "orders".into(),
        partition: P,
        offset,
    }
}

#[test]
fn a_position_message_with_a_bad_name_or_partition_is_malformed() {
    let bad_name = Message::GetPositions {
        name: String::new(),
        sender: Q,
        topics: vec![],
        from_time_ms: None,
    };
    assert!(matches!(
        decode(&encode(&bad_name).to_vec()),
        Err(DecodeError::InvalidField { field: "name", .. })
    ));
    let commit = |n| Message::Commit {
        name: "n".into(),
        sender: Q,
        seq: 1,
        positions: vec![position(1); n],
    };
    assert!(decode(&encode(&commit(limits::MAX_POSITIONS)).to_vec()).is_ok());
    assert!(matches!(
        decode(&encode(&commit(limits::MAX_POSITIONS + 1)).to_vec()),
        Err(DecodeError::Oversize {
            field: "positions",
            ..
        })
    ));
}

#[test]
fn a_question_about_a_time_needs_no_name() {
    let time = Some(1_764_547_200_000);
    let ask = Message::GetPositions {
        name: String::new(),
        sender: Q,
        topics: vec!["orders".into()],
        from_time_ms: time,
    };
    let answer = Message::DirectPositions {
        to: Q,
        store: P,
        name: String::new(),
        topics: vec!["orders".into()],
        positions: vec![position(7)],
        more: false,
        from_time_ms: time,
    };
    for msg in [ask, answer] {
        assert_eq!(decode(&encode(&msg).to_vec()).expect("decodes"), msg);
    }
}

fn frames_of(f: &Frames) -> Vec<Vec<u8>> {
    f.to_vec().into_iter().map(<[u8]>::to_vec).collect()
}

#[test]
fn every_message_id_has_its_own_index() {
    for (i, id) in MessageId::ALL.into_iter().enumerate() {
        assert_eq!(id.index(), i, "{id:?}");
    }
}

#[test]
fn every_message_type_round_trips() {
    let samples = samples();
    assert_eq!(
        samples.len(),
        MessageId::ALL.len(),
        "a sample per message id"
    );
    for msg in samples {
        let frames = encode(&msg);
        assert_eq!(frames.to_vec().len(), msg.id().frame_count());
        assert_eq!(decode(&frames.to_vec()), Ok(msg.clone()), "{:?}", msg.id());
    }
}

#[test]
fn every_direct_head_state_and_a_partition_query_round_trip() {
    let states = [
        HeadState::Empty,
        HeadState::Unreadable {
            from: 42,
            reason: "Corruption: block checksum mismatch".into(),
        },
    ];
    for state in states {
        let msg = Message::DirectHead {
            to: Q,
            head: head(),
            store: None,
            state,
            log_start: 0,
        };
        assert_eq!(decode(&encode(&msg).to_vec()), Ok(msg));
    }
    let ask = Message::GetHeads {
        topic: "orders".into(),
        sender: Q,
        partition: Some(P),
    };
    assert_eq!(decode(&encode(&ask).to_vec()), Ok(ask));
}

#[test]
fn record_without_optional_fields_round_trips() {
    let r = Record {
        topic: "t".into(),
        partition: P,
        content: Bytes::new(),
        ..Default::default()
    };
    let msg = Message::Record(r);
    assert_eq!(decode(&encode(&msg).to_vec()), Ok(msg));
}

#[test]
fn truncation_at_every_byte_never_yields_the_original() {
    for msg in samples() {
        let frames = frames_of(&encode(&msg));
        for (i, frame) in frames.iter().enumerate() {
            for cut in 0..frame.len() {
                let mut t = frames.clone();
                t[i].truncate(cut);
                // Must not panic, and must never pass for the original.
                assert_ne!(
                    decode(&t),
                    Ok(msg.clone()),
                    "{:?} frame {i} cut at {cut}",
                    msg.id()
                );
            }
        }
        for n in 0..frames.len() {
            assert!(
                decode(&frames[..n]).is_err(),
                "{:?} with {n} frames",
                msg.id()
            );
        }
    }
}

#[test]
fn golden_bytes_pin_the_head_layout() {
    let msg = Message::Head(Head {
        topic: "t".into(),
        partition: NodeId([0xAB; 16]),
        offset: 300,
    });
    let f = encode(&msg);
    assert_eq!(f.key, b"Ht\0");
    let mut want = vec![0xDA, 0xFA, 0x02];
    want.extend_from_slice(&[0x0A, 0x01, b't']); // 1: topic "t"
    want.extend_from_slice(&[0x12, 0x10]); // 2: partition, 16 bytes
    want.extend_from_slice(&[0xAB; 16]);
    want.extend_from_slice(&[0x18, 0xAC, 0x02]); // 3: offset 300 (varint)
    assert_eq!(f.header, want);
    assert_eq!(f.content, None);
}

/// The header frame of record 0 of topic "t", partition [1; 16], with no
/// optional fields: preamble, then field 1, the RecordHeader.
fn golden_first_header() -> Vec<u8> {
    let mut want = vec![0xDA, 0xFA, 0x02, 0x0A, 0x15]; // 1: RecordHeader, 21 bytes
    want.extend_from_slice(&[0x0A, 0x01, b't', 0x12, 0x10]);
    want.extend_from_slice(&[1; 16]);
    want
}

#[test]
fn golden_bytes_pin_the_record_layout() {
    let r = Record {
        topic: "t".into(),
        partition: NodeId([1; 16]),
        offset: 0,
        content: Bytes::from_static(b"hi"),
        ..Default::default()
    };
    let f = encode(&Message::Record(r));
    assert_eq!(f.key, b"Rt\0");
    let want = golden_first_header();
    assert_eq!(
        f.header, want,
        "offset 0 is the proto3 default and takes no bytes"
    );
    assert_eq!(
        f.content.as_deref(),
        Some(&b"hi"[..]),
        "content is its own frame"
    );
}

#[test]
fn golden_bytes_pin_node_keys() {
    let f = encode(&Message::Ack(Ack {
        topic: "t".into(),
        partition: NodeId([9; 16]),
        offset: 1,
        store: Q,
    }));
    let mut want = vec![b'A'];
    want.extend_from_slice(&[9; 16]);
    assert_eq!(f.key, want);
    assert_eq!(encode(&Message::Beacon(beacon())).key, b"B");
}

fn head_frames() -> Vec<Vec<u8>> {
    frames_of(&encode(&Message::Head(head())))
}

#[test]
fn malformed_empty() {
    let none: [&[u8]; 0] = [];
    assert_eq!(decode(&none), Err(DecodeError::Empty));
    assert_eq!(decode(&[&b""[..], b"x"]), Err(DecodeError::Empty));
}

#[test]
fn malformed_unknown_message_id() {
    let mut f = head_frames();
    f[0][0] = b'Z';
    assert_eq!(decode(&f), Err(DecodeError::UnknownMessageId(b'Z')));
}

#[test]
fn malformed_frame_count() {
    let mut f = head_frames();
    f.push(b"extra".to_vec());
    assert_eq!(
        decode(&f),
        Err(DecodeError::FrameCount {
            kind: "HEAD",
            expected: 2,
            got: 3
        })
    );
    let rec = frames_of(&encode(&Message::Record(record(1))));
    assert_eq!(
        decode(&rec[..2]),
        Err(DecodeError::FrameCount {
            kind: "RECORD",
            expected: 3,
            got: 2
        })
    );
}

#[test]
fn malformed_short_header() {
    let mut f = head_frames();
    f[1].truncate(2);
    assert_eq!(
        decode(&f),
        Err(DecodeError::ShortHeader { need: 3, have: 2 })
    );
}

#[test]
fn malformed_bad_signature() {
    let mut f = head_frames();
    f[1][0] = 0xDE;
    assert_eq!(decode(&f), Err(DecodeError::BadSignature([0xDE, 0xFA])));
}

#[test]
fn malformed_unsupported_version() {
    let mut f = head_frames();
    f[1][2] = 1;
    assert_eq!(decode(&f), Err(DecodeError::UnsupportedVersion(1, 2)));
}

#[test]
fn malformed_body() {
    let mut f = head_frames();
    f[1].truncate(3);
    f[1].extend_from_slice(&[0x0A, 0x05, b'a']); // length 5, 1 byte follows
    assert!(matches!(
        decode(&f),
        Err(DecodeError::MalformedBody { kind: "HEAD", .. })
    ));
}

#[test]
fn malformed_oversize_topic_and_content() {
    let long = "x".repeat(limits::MAX_TOPIC_LEN + 1);
    let mut h = head();
    h.topic = long;
    let f = frames_of(&encode(&Message::Head(h)));
    assert_eq!(
        decode(&f),
        Err(DecodeError::Oversize {
            field: "topic",
            len: 250,
            max: 249
        })
    );

    let mut rec = frames_of(&encode(&Message::Record(record(1))));
    rec[2] = vec![0; limits::MAX_CONTENT_LEN + 1];
    assert!(matches!(
        decode(&rec),
        Err(DecodeError::Oversize {
            field: "content",
            ..
        })
    ));
}

#[test]
fn malformed_oversize_header_frame() {
    let mut f = head_frames();
    f[1].resize(limits::MAX_HEADER_FRAME_LEN + 1, 0);
    assert!(matches!(
        decode(&f),
        Err(DecodeError::Oversize {
            field: "header frame",
            ..
        })
    ));
}

#[test]
fn malformed_invalid_fields() {
    // A 15-byte partition id.
    let body = pb::Head {
        topic: "t".into(),
        partition: Bytes::from(vec![1; 15]),
        offset: 1,
    };
    let mut header = vec![0xDA, 0xFA, VERSION];
    header.extend_from_slice(&prost::Message::encode_to_vec(&body));
    let err = decode(&[b"Ht\0".to_vec(), header]);
    assert_eq!(
        err,
        Err(DecodeError::InvalidField {
            field: "partition",
            reason: "must be exactly 16 bytes"
        })
    );
    // A DIRECT-HEAD that says both "empty" and "unreadable", one with a
    // 15-byte store id, and one with an endless reason.
    let direct = |store: Vec<u8>, empty: bool, unreadable: Option<u64>, reason: usize| {
        let body = pb::DirectHead {
            to: Bytes::copy_from_slice(Q.as_bytes()),
            head: Some(pb::Head {
                topic: "t".into(),
                partition: Bytes::copy_from_slice(P.as_bytes()),
                offset: 1,
            }),
            store: Bytes::from(store),
            empty,
            unreadable_from: unreadable,
            reason: "x".repeat(reason),
            log_start: 0,
        };
        let mut header = vec![0xDA, 0xFA, VERSION];
        header.extend_from_slice(&prost::Message::encode_to_vec(&body));
        let mut key = b"E".to_vec();
        key.extend_from_slice(Q.as_bytes());
        decode(&[key, header])
    };
    assert!(matches!(
        direct(vec![], true, Some(1), 0),
        Err(DecodeError::InvalidField { field: "empty", .. })
    ));
    assert!(matches!(
        direct(vec![1; 15], false, None, 0),
        Err(DecodeError::InvalidField { field: "store", .. })
    ));
    assert!(matches!(
        direct(vec![], false, Some(1), limits::MAX_REASON_LEN + 1),
        Err(DecodeError::Oversize {
            field: "reason",
            ..
        })
    ));
    // An empty topic.
    assert!(matches!(
        validate_topic(""),
        Err(DecodeError::InvalidField { field: "topic", .. })
    ));
    assert!(matches!(
        validate_topic("a\0b"),
        Err(DecodeError::InvalidField { field: "topic", .. })
    ));
}

#[test]
fn malformed_routing_mismatch() {
    let mut f = head_frames();
    f[0] = b"Hother\0".to_vec();
    assert_eq!(
        decode(&f),
        Err(DecodeError::RoutingMismatch { kind: "HEAD" })
    );
}

#[test]
fn topic_keys_do_not_prefix_match_longer_topics() {
    let a = routing::topic_key(MessageId::Record, "a");
    let ab = routing::topic_key(MessageId::Record, "ab");
    assert!(!ab.starts_with(&a));
}

#[test]
fn random_garbage_never_panics() {
    // A cheap deterministic stand-in for the fuzz target, run on every test.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..20_000 {
        let mut frames = Vec::new();
        for _ in 0..(x % 4) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 64) as usize;
            frames.push((0..len).map(|i| (x >> (i % 8)) as u8).collect::<Vec<u8>>());
        }
        let _ = decode(&frames);
        let _ = decode_all(&frames, &mut Vec::<Message>::new());
    }
}

/// Records `first..first + n` of one partition, each with its own content
/// length and optional fields, as `encode_run` takes them.
fn run(first: u64, n: u64) -> Vec<Record> {
    (first..first + n)
        .map(|o| Record {
            content: Bytes::from(vec![o as u8; o as usize % 5]),
            key: (o % 2 == 0).then(|| Bytes::from_static(b"k")),
            timestamp_ms: (o % 3 == 0).then_some(o as i64),
            ..record(o)
        })
        .collect()
}

/// A receiver's own queue entry: a decoded message or something else.
#[derive(Debug, PartialEq)]
enum Event {
    Tick,
    Got(Message),
}

impl FromMessage for Event {
    fn from_message(msg: Message) -> Self {
        Event::Got(msg)
    }

    fn message(&self) -> Option<&Message> {
        match self {
            Event::Got(m) => Some(m),
            Event::Tick => None,
        }
    }
}

#[test]
fn a_run_decodes_straight_into_a_receivers_own_events_and_a_bad_one_adds_nothing() {
    let records = run(5, 3);
    let mut out = vec![Event::Tick];
    let f = encode_run(None, &records);
    assert_eq!(decode_all(&f.to_vec(), &mut out), Ok(3));
    let want: Vec<Event> = std::iter::once(Event::Tick)
        .chain(
            records
                .iter()
                .map(|r| Event::Got(Message::Record(r.clone()))),
        )
        .collect();
    assert_eq!(out, want);
    let mut wrong = head_frames();
    wrong[0] = b"Hother\0".to_vec();
    assert_eq!(
        decode_all(&wrong, &mut out),
        Err(DecodeError::RoutingMismatch { kind: "HEAD" })
    );
    let mut cut: Vec<Vec<u8>> = f.to_vec().iter().map(|x| x.to_vec()).collect();
    let short = cut[1].len() - 1;
    cut[1].truncate(short);
    assert!(decode_all(&cut, &mut out).is_err());
    assert_eq!(out, want, "nothing appended on an error");
}

#[test]
fn the_records_of_a_run_share_one_topic_name() {
    let mut out: Vec<Message> = Vec::new();
    assert_eq!(
        decode_all(&encode_run(None, &run(0, 4)).to_vec(), &mut out),
        Ok(4)
    );
    let topics: Vec<&std::sync::Arc<str>> = out
        .iter()
        .map(|m| match m {
            Message::Record(r) => &r.topic,
            other => panic!("not a record: {other:?}"),
        })
        .collect();
    assert!(topics.iter().all(|t| std::sync::Arc::ptr_eq(t, topics[0])));
}

#[test]
fn a_run_of_records_is_one_message_and_decodes_to_each() {
    let records = run(5, 7);
    for to in [None, Some(Q)] {
        let f = encode_run(to, &records);
        assert_eq!(f.to_vec().len(), 3, "one message of three frames");
        let total: usize = records.iter().map(|r| r.content.len()).sum();
        assert_eq!(f.content.as_ref().map(|c| c.len()), Some(total));
        let mut out = vec![Message::Head(head())];
        assert_eq!(decode_all(&f.to_vec(), &mut out), Ok(7), "appends");
        let want: Vec<Message> = records
            .iter()
            .map(|r| match to {
                None => Message::Record(r.clone()),
                Some(to) => Message::DirectRecord {
                    to,
                    record: r.clone(),
                },
            })
            .collect();
        assert_eq!(out[1..], want[..]);
        assert_eq!(decode(&f.to_vec()), Err(DecodeError::Run(7)));
    }
}

#[test]
fn a_run_of_one_is_the_single_record_layout() {
    let r = record(3);
    assert_eq!(
        encode_run(None, std::slice::from_ref(&r)),
        encode(&Message::Record(r))
    );
}

#[test]
fn golden_bytes_pin_the_run_layout() {
    let mk = |offset, content: &'static [u8]| Record {
        topic: "t".into(),
        partition: NodeId([1; 16]),
        offset,
        content: Bytes::from_static(content),
        ..Default::default()
    };
    let f = encode_run(None, &[mk(0, b"hi"), mk(1, b"abc")]);
    let mut want = golden_first_header();
    want.extend_from_slice(&[0x12, 0x02, 0x08, 0x03]); // 2: NextRecord { length: 3 }
    assert_eq!(f.header, want);
    assert_eq!(
        f.content.as_deref(),
        Some(&b"hiabc"[..]),
        "contents back to back"
    );
}

/// Timestamps after a run's first record travel as differences (two bytes
/// instead of seven for a steady stream) and come back exact, backwards
/// steps, extremes and records without one included.
#[test]
fn run_timestamps_travel_as_differences_and_come_back_exact() {
    let now = 1_790_000_000_000i64;
    let stamps = [
        Some(now),
        Some(now + 1),
        Some(now + 1),
        Some(now - 5),
        None,
        Some(i64::MIN),
        Some(i64::MAX),
        Some(now),
    ];
    let records: Vec<Record> = stamps
        .iter()
        .enumerate()
        .map(|(i, &t)| Record {
            timestamp_ms: t,
            ..record(i as u64)
        })
        .collect();
    let f = encode_run(None, &records);
    let mut out = Vec::new();
    assert_eq!(decode_all(&f.to_vec(), &mut out), Ok(stamps.len()));
    let got: Vec<Option<i64>> = out
        .iter()
        .map(|m| match m {
            Message::Record(r) => r.timestamp_ms,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, stamps);

    // A steady stream: each next record's timestamp costs a few bytes.
    let steady = |stamped: bool| {
        let rs: Vec<Record> = (0..100)
            .map(|o| Record {
                timestamp_ms: stamped.then_some(now + o as i64 / 10),
                ..record(o)
            })
            .collect();
        encode_run(None, &rs).header.len()
    };
    assert!(
        steady(true) - steady(false) <= 99 * 2 + 8,
        "{}",
        steady(true) - steady(false)
    );
}

#[test]
fn a_timestamp_difference_without_a_timestamp_before_it_is_malformed() {
    let good = encode_run(None, &run(0, 2));
    let first = pb::RecordHeader {
        topic: "orders".into(),
        partition: P.as_bytes().to_vec().into(),
        offset: 0,
        ..Default::default()
    };
    for (first_ts, delta) in [(None, 1), (Some(i64::MAX), 1)] {
        let b = pb::Record {
            record: Some(pb::RecordHeader {
                timestamp_ms: first_ts,
                ..first.clone()
            }),
            next: vec![pb::NextRecord {
                timestamp_delta_ms: Some(delta),
                ..Default::default()
            }],
        };
        let mut h = vec![0xDA, 0xFA, 0x02];
        prost::Message::encode(&b, &mut h).expect("encode");
        let frames = vec![good.key.clone(), h, Vec::new()];
        let mut out: Vec<Message> = Vec::new();
        assert_eq!(
            decode_all(&frames, &mut out),
            Err(DecodeError::InvalidField {
                field: "timestamp_delta_ms",
                reason: "no timestamp before it to add it to, or the sum overflows",
            })
        );
        assert!(out.is_empty());
    }
}

#[test]
fn truncating_a_run_never_yields_it() {
    let records = run(0, 4);
    let frames = frames_of(&encode_run(None, &records));
    let whole = {
        let mut v: Vec<Message> = Vec::new();
        decode_all(&frames, &mut v).map(|_| v)
    };
    for (i, frame) in frames.iter().enumerate() {
        for cut in 0..frame.len() {
            let mut t = frames.clone();
            t[i].truncate(cut);
            let mut out = Vec::new();
            let got = decode_all(&t, &mut out).map(|_| out);
            assert_ne!(got, whole, "frame {i} cut at {cut}");
        }
    }
}

#[test]
fn malformed_runs_are_rejected_whole() {
    let good = encode_run(None, &run(0, 3));
    let body = |b: pb::Record| {
        let mut h = vec![0xDA, 0xFA, 0x02];
        prost::Message::encode(&b, &mut h).expect("encode");
        vec![
            good.key.clone(),
            h,
            good.content.as_deref().unwrap_or_default().to_vec(),
        ]
    };
    let first = pb::RecordHeader {
        topic: "orders".into(),
        partition: P.as_bytes().to_vec().into(),
        offset: 0,
        ..Default::default()
    };
    let next = |length| pb::NextRecord {
        length,
        ..Default::default()
    };
    let cases = [
        (
            pb::Record {
                record: Some(first.clone()),
                next: vec![next(u32::MAX)],
            },
            DecodeError::InvalidField {
                field: "next",
                reason: "lengths exceed the content frame",
            },
        ),
        (
            pb::Record {
                record: Some(pb::RecordHeader {
                    offset: u64::MAX,
                    ..first.clone()
                }),
                next: vec![next(0)],
            },
            DecodeError::InvalidField {
                field: "offset",
                reason: "the run passes the largest offset",
            },
        ),
        (
            pb::Record {
                record: Some(first.clone()),
                next: vec![next(0); limits::MAX_RUN_RECORDS + 1],
            },
            DecodeError::Oversize {
                field: "next",
                len: limits::MAX_RUN_RECORDS + 1,
                max: limits::MAX_RUN_RECORDS,
            },
        ),
        (
            pb::Record {
                record: None,
                next: vec![next(0)],
            },
            DecodeError::InvalidField {
                field: "record",
                reason: "missing",
            },
        ),
    ];
    for (b, err) in cases {
        let mut out = vec![Message::Head(head())];
        assert_eq!(decode_all(&body(b), &mut out), Err(err));
        assert_eq!(out.len(), 1, "nothing appended on an error");
    }
}

/// A content frame the caller already owns decodes as the copied one
/// does, and its records' contents point into it rather than into a copy.
#[test]
fn a_shared_content_frame_decodes_the_same_without_a_copy() {
    let records = run(0, 3);
    let f = encode_run(None, &records);
    let content = f.content.clone().expect("a run has content");
    let mut copied = Vec::new();
    decode_all(&f.to_vec(), &mut copied).expect("decodes");
    let mut shared = Vec::new();
    let frames = [&f.key[..], &f.header[..]];
    decode_all_shared(&frames, content.clone(), &mut shared).expect("decodes");
    assert_eq!(shared, copied);
    let range = content.as_ptr_range();
    for m in &shared {
        let Message::Record(r) = m else {
            panic!("not a record: {m:?}")
        };
        assert!(range.contains(&r.content.as_ptr()) || r.content.is_empty());
    }
    // A message that takes no content frame, given one, is the wrong
    // number of frames.
    let h = encode(&Message::Head(head()));
    let err = decode_all_shared(&h.to_vec(), content, &mut Vec::<Message>::new());
    assert!(
        matches!(err, Err(DecodeError::FrameCount { .. })),
        "{err:?}"
    );
}
