use super::*;
use crate::storage::{MemStorage, Storage};
use crate::MemStore;
use bytes::Bytes;
use std::time::Duration;

const ME: NodeId = NodeId([0x5; 16]);
const P: NodeId = NodeId([0x1; 16]);
const C: NodeId = NodeId([0xC; 16]);
const Q: NodeId = NodeId([0x2; 16]);

fn store() -> MemStore {
    let mut s = MemStore::new(ME, MemStorage::default(), at_once(), Instant::now()).expect("new");
    s.drain(&mut Vec::new());
    s
}

/// A store that writes every batch at the end of its turn (no group
/// commit), so each test says when writes happen.
fn at_once() -> StoreConfig {
    StoreConfig {
        commit_delay: 0,
        ..StoreConfig::default()
    }
}

fn rec(offset: u64) -> Record {
    Record {
        topic: "t".into(),
        partition: P,
        offset,
        content: Bytes::from(format!("r{offset}")),
        ..Default::default()
    }
}

fn feed(s: &mut MemStore, m: Message) {
    s.handle(Input::Message(m), Instant::now());
}

fn sent(s: &mut MemStore) -> Vec<Message> {
    let mut out = Vec::new();
    s.drain(&mut out);
    out.into_iter()
        .filter_map(|o| {
            if let Output::Send(m) = o {
                Some(m)
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn acks_only_after_the_write() {
    let mut s = store();
    feed(&mut s, Message::Record(rec(0)));
    feed(&mut s, Message::Record(rec(1)));
    assert!(
        sent(&mut s).is_empty(),
        "no ACK before the batch is written"
    );
    s.end_of_turn(Instant::now());
    assert_eq!(
        sent(&mut s),
        [Message::Ack(Ack {
            topic: "t".into(),
            partition: P,
            offset: 1,
            store: ME
        })]
    );
    assert_eq!(
        s.storage_mut()
            .read("t", &P, 0, ReadLimit::records(10))
            .map(|v| v.len())
            .ok(),
        Some(2)
    );
}

#[test]
fn a_failed_write_is_not_acked_and_is_fetched_again() {
    let mut s = store();
    feed(&mut s, Message::Record(rec(0)));
    s.storage_mut().fail_next_write = true;
    s.end_of_turn(Instant::now());
    assert!(sent(&mut s).is_empty());
    assert_eq!(s.core().counters().write_errors, 1);
    feed(&mut s, Message::Record(rec(1)));
    let fetches = sent(&mut s);
    assert!(matches!(&fetches[..], [Message::Fetch(f)] if f.offset == 0 && f.count == 1));
}

#[test]
fn drops_duplicates() {
    let mut s = store();
    feed(&mut s, Message::Record(rec(0)));
    s.end_of_turn(Instant::now());
    sent(&mut s);
    feed(&mut s, Message::Record(rec(0)));
    s.end_of_turn(Instant::now());
    assert!(sent(&mut s).is_empty());
}

#[test]
fn fetches_its_own_gap_and_stores_in_order() {
    let mut s = store();
    feed(&mut s, Message::Record(rec(3)));
    assert!(
        matches!(&sent(&mut s)[..], [Message::Fetch(f)] if f.offset == 0 && f.count == 3 && f.sender == ME)
    );
    for o in 0..3 {
        feed(
            &mut s,
            Message::DirectRecord {
                to: ME,
                record: rec(o),
            },
        );
    }
    s.end_of_turn(Instant::now());
    assert!(matches!(&sent(&mut s)[..], [Message::Ack(a)] if a.offset == 3));
}

#[test]
fn a_head_past_what_it_holds_triggers_a_fetch() {
    let mut s = store();
    feed(
        &mut s,
        Message::Head(Head {
            topic: "t".into(),
            partition: P,
            offset: 9,
        }),
    );
    assert!(matches!(&sent(&mut s)[..], [Message::Fetch(f)] if f.offset == 0 && f.count == 10));
}

#[test]
fn answers_fetch_with_the_exact_range_capped() {
    let mut s = store();
    for o in 0..20 {
        feed(&mut s, Message::Record(rec(o)));
    }
    s.end_of_turn(Instant::now());
    sent(&mut s);
    feed(
        &mut s,
        Message::Fetch(Fetch {
            topic: "t".into(),
            partition: P,
            offset: 5,
            count: 3,
            sender: C,
        }),
    );
    let offs: Vec<u64> = sent(&mut s)
        .into_iter()
        .map(|m| match m {
            Message::DirectRecord { to, record } if to == C => record.offset,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(offs, [5, 6, 7]);
    feed(
        &mut s,
        Message::Fetch(Fetch {
            topic: "t".into(),
            partition: P,
            offset: 0,
            count: u32::MAX,
            sender: C,
        }),
    );
    assert_eq!(sent(&mut s).len(), 20);
}

#[test]
fn answers_get_heads_and_consumer_hello_with_every_partition() {
    let mut s = store();
    let q = NodeId([2; 16]);
    feed(&mut s, Message::Record(rec(0)));
    feed(
        &mut s,
        Message::Record(Record {
            partition: q,
            ..rec(0)
        }),
    );
    feed(
        &mut s,
        Message::Record(Record {
            topic: "other".into(),
            ..rec(0)
        }),
    );
    s.end_of_turn(Instant::now());
    sent(&mut s);
    feed(
        &mut s,
        Message::GetHeads {
            topic: "t".into(),
            sender: C,
            partition: None,
        },
    );
    let mut heads = sent(&mut s);
    // The answer ends with a DIRECT-HEAD of no partition: "that is all".
    let end = heads.pop();
    assert!(
        matches!(&end, Some(Message::DirectHead { to, head, state: HeadState::Empty, .. }) if *to == C && head.partition == NodeId::NONE && head.topic == "t"),
        "{end:?}"
    );
    assert_eq!(heads.len(), 2);
    assert!(heads
        .iter()
        .all(|m| matches!(m, Message::DirectHead { to, head, store: Some(ME), state: HeadState::Holds, .. } if *to == C && head.topic == "t")));
    feed(
        &mut s,
        Message::ConsumerHello {
            to: ME,
            consumer: C,
            topics: vec!["t".into(), "other".into()],
        },
    );
    assert_eq!(sent(&mut s).len(), 3 + 2, "three heads, an end per topic");
    // A topic the store holds nothing of still gets its end.
    feed(
        &mut s,
        Message::GetHeads {
            topic: "none".into(),
            sender: C,
            partition: None,
        },
    );
    assert!(
        matches!(&sent(&mut s)[..], [Message::DirectHead { head, state: HeadState::Empty, .. }] if head.partition == NodeId::NONE)
    );
}

#[test]
fn greets_a_consumer_that_subscribes_and_re_acks_a_returning_producer() {
    let mut s = store();
    s.handle(
        Input::Subscribed(routing::node_key(MessageId::StoreHello, &C)),
        Instant::now(),
    );
    assert_eq!(sent(&mut s), [Message::StoreHello { to: C, store: ME }]);
    feed(&mut s, Message::Record(rec(0)));
    s.end_of_turn(Instant::now());
    sent(&mut s);
    s.handle(
        Input::Subscribed(routing::node_key(MessageId::Ack, &P)),
        Instant::now(),
    );
    assert!(matches!(&sent(&mut s)[..], [Message::Ack(a)] if a.offset == 0));
}

/// A new producer's first HEAD makes the store FETCH before the producer
/// has subscribed to the store's FETCHes: that FETCH is lost. Its
/// subscription arriving makes the store ask again at once, not a retry
/// interval later.
#[test]
fn fetches_again_when_the_producer_starts_listening() {
    let mut s = store();
    let t = Instant::now();
    feed(
        &mut s,
        Message::Head(Head {
            topic: "t".into(),
            partition: P,
            offset: 4,
        }),
    );
    assert!(matches!(&sent(&mut s)[..], [Message::Fetch(f)] if f.offset == 0));
    s.handle(
        Input::Subscribed(routing::node_key(MessageId::Fetch, &Q)),
        t,
    );
    assert_eq!(sent(&mut s), [], "another partition's subscription");
    s.handle(
        Input::Subscribed(routing::node_key(MessageId::Fetch, &P)),
        t,
    );
    let again = sent(&mut s);
    assert!(
        matches!(&again[..], [Message::Fetch(f)] if f.offset == 0 && f.count == 5),
        "{again:?}"
    );
}

#[test]
fn resumes_partitions_from_storage() {
    let mut mem = MemStorage::default();
    mem.write(&[rec(0), rec(1)]).expect("write");
    let mut s = MemStore::new(ME, mem, at_once(), Instant::now()).expect("new");
    sent(&mut s);
    assert_eq!(s.core().stored("t", &P), Some(1));
    feed(&mut s, Message::Record(rec(2)));
    s.end_of_turn(Instant::now());
    assert!(matches!(&sent(&mut s)[..], [Message::Ack(a)] if a.offset == 2));
}

fn store_holding(n: u64) -> MemStore {
    let mut s = store();
    for o in 0..n {
        feed(&mut s, Message::Record(rec(o)));
    }
    s.end_of_turn(Instant::now());
    sent(&mut s);
    s
}

fn head(offset: u64) -> Message {
    Message::Head(Head {
        topic: "t".into(),
        partition: P,
        offset,
    })
}

#[test]
fn a_true_duplicate_is_dropped_and_acks_go_on() {
    let mut s = store_holding(10);
    feed(&mut s, Message::Record(rec(5)));
    feed(&mut s, Message::Record(rec(10)));
    s.end_of_turn(Instant::now());
    assert!(matches!(&sent(&mut s)[..], [Message::Ack(a)] if a.offset == 10));
    assert_eq!(s.core().counters().conflicts, 0);
}

#[test]
fn a_record_that_differs_from_the_stored_one_stops_acks_for_the_partition() {
    let mut s = store_holding(10);
    let other = Record {
        content: Bytes::from_static(b"another writer"),
        ..rec(5)
    };
    feed(&mut s, Message::Record(other));
    assert_eq!(s.core().counters().conflicts, 1, "counted");
    // Neither what follows nor a HEAD at the stored offset is ACKed: an ACK
    // of 10 would cover the conflicting offset 5.
    feed(&mut s, Message::Record(rec(10)));
    feed(&mut s, head(9));
    s.end_of_turn(Instant::now());
    s.handle(
        Input::Subscribed(routing::node_key(MessageId::Ack, &P)),
        Instant::now(),
    );
    assert_eq!(sent(&mut s), [], "no ACK, no FETCH");
    assert_eq!(s.core().stored("t", &P), Some(9), "nothing more stored");
    let read = s.storage_mut().read("t", &P, 5, ReadLimit::records(1));
    assert_eq!(read.expect("read"), [rec(5)], "the stored record is kept");
}

#[test]
fn a_partition_query_is_answered_with_its_head_or_empty() {
    let mut s = store_holding(3);
    let ask = |p| Message::GetHeads {
        topic: "t".into(),
        sender: C,
        partition: Some(p),
    };
    feed(&mut s, ask(P));
    let q = NodeId([0x9; 16]);
    feed(&mut s, ask(q));
    let got: Vec<(NodeId, u64, HeadState)> = sent(&mut s)
        .into_iter()
        .filter_map(|m| match m {
            Message::DirectHead {
                to: C,
                head,
                store: Some(ME),
                state,
                ..
            } => Some((head.partition, head.offset, state)),
            _ => None,
        })
        .collect();
    assert_eq!(got, [(P, 2, HeadState::Holds), (q, 0, HeadState::Empty)]);
}

#[test]
fn a_fetch_the_database_cannot_read_is_answered_unreadable() {
    let mut s = store_holding(3);
    s.storage_mut().fail_reads = true;
    feed(&mut s, fetch_from(1));
    let got = sent(&mut s);
    assert!(
        matches!(&got[..], [Message::DirectHead { to: C, head, state: HeadState::Unreadable { from: 1, reason }, .. }]
            if head.offset == 2 && reason.contains("injected")),
        "{got:?}"
    );
    assert_eq!(s.core().counters().unreadable, 1);
}

#[test]
fn partitions_known_only_from_heads_are_bounded_and_expire() {
    let mut s = store_holding(1);
    let t0 = Instant::now();
    for i in 0..(MAX_PENDING_PARTITIONS as u32 * 2) {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&i.to_be_bytes());
        id[15] = 0xEE;
        let h = Head {
            topic: "t".into(),
            partition: NodeId(id),
            offset: 5,
        };
        s.handle(Input::Message(Message::Head(h)), t0);
    }
    assert_eq!(s.core().partitions(), MAX_PENDING_PARTITIONS + 1);
    assert_eq!(
        s.core().counters().pending_refused,
        MAX_PENDING_PARTITIONS as u64
    );
    // A partition that stored a record is not pending, and stays.
    s.on_timeout(t0 + PENDING_TTL + Duration::from_secs(1));
    assert_eq!(
        s.core().partitions(),
        1,
        "only the partition with records is left"
    );
    assert_eq!(s.core().stored("t", &P), Some(0));
    assert_eq!(
        s.core().counters().pending_expired,
        MAX_PENDING_PARTITIONS as u64
    );
}

/// The store core asks for one write at a time: records that arrive while
/// a write is in flight form the next batch, written when the first is
/// durable, and nothing is ACKed before its write is.
#[test]
fn batches_form_behind_a_write_in_flight() {
    let t = Instant::now();
    let mut s = StoreCore::new(ME, Vec::new(), at_once(), t);
    let mut out = Vec::new();
    s.drain(&mut out);
    let works = |s: &mut StoreCore| -> (Vec<StoreWork>, Vec<Message>) {
        let mut out = Vec::new();
        s.drain(&mut out);
        let mut w = Vec::new();
        let mut m = Vec::new();
        for o in out {
            match o {
                Output::Persist(x) => w.push(x),
                Output::Send(x) => m.push(x),
                _ => {}
            }
        }
        (w, m)
    };
    for o in 0..2 {
        s.handle(Input::Message(Message::Record(rec(o))), t);
    }
    s.end_of_turn(t);
    let (w, _) = works(&mut s);
    assert!(
        matches!(&w[..], [StoreWork::Write(b)] if b.len() == 2),
        "{w:?}"
    );
    for o in 2..5 {
        s.handle(Input::Message(Message::Record(rec(o))), t);
    }
    s.end_of_turn(t);
    assert_eq!(works(&mut s), (vec![], vec![]), "one write at a time");
    s.handle(Input::Done(StoreDone::Written(Ok(Vec::new()))), t);
    let (w, m) = works(&mut s);
    assert!(
        matches!(&m[..], [Message::Ack(a)] if a.offset == 1),
        "{m:?}"
    );
    assert!(
        matches!(&w[..], [StoreWork::Write(b)] if b.len() == 3),
        "{w:?}"
    );
    // The second write fails: nothing of it is ACKed, and records arriving
    // meanwhile that continue it are not written over the hole.
    s.handle(Input::Message(Message::Record(rec(5))), t);
    s.handle(
        Input::Done(StoreDone::Written(Err(StorageError::Io {
            op: "write",
            source: "disk full".into(),
        }))),
        t,
    );
    s.end_of_turn(t);
    let (w, m) = works(&mut s);
    assert!(w.is_empty(), "{w:?}");
    assert!(!m.iter().any(|m| matches!(m, Message::Ack(_))), "{m:?}");
    assert_eq!(s.stored("t", &P), Some(1));
    assert_eq!(s.counters().write_errors, 1);
}

/// A durable write hands its vector back and a later batch gathers in it,
/// so a store under load fills pages it has mapped already.
#[test]
fn a_written_batch_vector_comes_back_for_a_later_batch() {
    let t = Instant::now();
    let mut s = StoreCore::new(ME, Vec::new(), at_once(), t);
    s.drain(&mut Vec::new());
    let write_of = |s: &mut StoreCore, offsets: std::ops::Range<u64>| {
        for o in offsets {
            s.handle(Input::Message(Message::Record(rec(o))), t);
        }
        s.end_of_turn(t);
        let mut out = Vec::new();
        s.drain(&mut out);
        out.into_iter().find_map(|o| match o {
            Output::Persist(StoreWork::Write(b)) => Some(b),
            _ => None,
        })
    };
    let first = write_of(&mut s, 0..2).expect("a first write");
    // Records 2 and 3 gather while the first write is in flight.
    assert!(write_of(&mut s, 2..4).is_none(), "one write at a time");
    let returned = Vec::with_capacity(3 * BATCH_ROOM);
    s.handle(Input::Done(StoreDone::Written(Ok(returned))), t);
    let second = write_of(&mut s, 4..5);
    assert_eq!(first.len(), 2);
    assert!(matches!(&second, Some(b) if b.len() == 2), "{second:?}");
    s.handle(Input::Done(StoreDone::Written(Ok(Vec::new()))), t);
    let third = write_of(&mut s, 5..5).expect("a third write");
    assert_eq!(third.iter().map(|r| r.offset).collect::<Vec<_>>(), [4]);
    assert_eq!(third.capacity(), 3 * BATCH_ROOM, "the first write's vector");
}

/// What gathered behind a long write leaves in writes of at most
/// WRITE_BYTES, so that the first ACKs come after a bounded write; a
/// record larger than that still goes, alone.
#[test]
fn a_large_backlog_is_written_in_bounded_writes() {
    let t = Instant::now();
    let mut s = StoreCore::new(ME, Vec::new(), at_once(), t);
    s.drain(&mut Vec::new());
    let big = |offset: u64, len: usize| Record {
        content: Bytes::from(vec![b'x'; len]),
        ..rec(offset)
    };
    // A quarter of a write, with what each record counts for beyond its
    // content (and room for its small header).
    let quarter = WRITE_BYTES / 4 - RECORD_OVERHEAD - 64;
    s.handle(Input::Message(Message::Record(big(0, 2 * WRITE_BYTES))), t);
    for o in 1..=9 {
        s.handle(Input::Message(Message::Record(big(o, quarter))), t);
    }
    let writes: Vec<Vec<u64>> = writes_until_idle(&mut s, t)
        .iter()
        .map(|b| b.iter().map(|r| r.offset).collect())
        .collect();
    assert_eq!(
        writes,
        [vec![0], vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9]],
        "the oversized record alone, then four quarters a write"
    );
    assert_eq!(s.stored("t", &P), Some(9));
}

/// Group commit: a few records wait up to `commit_delay` for company, so
/// that each synced write carries more than one; a full batch goes at once;
/// and nothing is ACKed before its write either way.
#[test]
fn a_small_batch_waits_for_the_commit_delay_and_a_full_one_does_not() {
    let t = Instant::now();
    let cfg = StoreConfig::default();
    let delay = cfg.commit_delay();
    assert!(delay > Duration::ZERO, "on by default");
    let mut s = MemStore::new(ME, MemStorage::default(), cfg, t).expect("new");
    s.on_timeout(t); // the first retry scan: the next is RETRY_SCAN away
    sent(&mut s);
    feed(&mut s, Message::Record(rec(0)));
    s.end_of_turn(t);
    assert_eq!(sent(&mut s), [], "waits for more records");
    assert_eq!(s.core().next_timeout(), Some(t + delay), "and wakes for it");
    feed(&mut s, Message::Record(rec(1)));
    s.end_of_turn(t + delay / 2);
    assert_eq!(sent(&mut s), []);
    s.on_timeout(t + delay);
    assert!(matches!(&sent(&mut s)[..], [Message::Ack(a)] if a.offset == 1));
    let t = t + delay;
    for o in 2..2 + COMMIT_RECORDS as u64 {
        feed(&mut s, Message::Record(rec(o)));
    }
    s.end_of_turn(t);
    assert!(
        matches!(&sent(&mut s)[..], [Message::Ack(a)] if a.offset == 1 + COMMIT_RECORDS as u64),
        "a full batch is written at once"
    );
}

/// COMMIT_BYTES of records go at once, as COMMIT_RECORDS do; the count
/// starts again after each write, so the next small record waits.
#[test]
fn a_batch_of_commit_bytes_goes_at_once_and_the_next_waits() {
    let t = Instant::now();
    let cfg = StoreConfig::default();
    let mut s = MemStore::new(ME, MemStorage::default(), cfg, t).expect("new");
    s.on_timeout(t);
    sent(&mut s);
    let half = |offset: u64| Record {
        content: Bytes::from(vec![b'x'; COMMIT_BYTES / 2]),
        ..rec(offset)
    };
    feed(&mut s, Message::Record(half(0)));
    s.end_of_turn(t);
    assert_eq!(sent(&mut s), [], "half the bytes wait");
    feed(&mut s, Message::Record(half(1)));
    s.end_of_turn(t);
    assert!(matches!(&sent(&mut s)[..], [Message::Ack(a)] if a.offset == 1));
    feed(&mut s, Message::Record(rec(2)));
    s.end_of_turn(t);
    assert_eq!(sent(&mut s), [], "a small record after the write waits");
}

fn position(offset: u64) -> dafka_proto::Position {
    dafka_proto::Position {
        topic: "t".into(),
        partition: P,
        offset,
    }
}

fn commit(seq: u64, offset: u64) -> Message {
    Message::Commit {
        name: "app".into(),
        sender: C,
        seq,
        positions: vec![position(offset)],
    }
}

fn get_positions(topics: &[&str]) -> Message {
    Message::GetPositions {
        name: "app".into(),
        sender: C,
        topics: topics.iter().map(|t| t.to_string()).collect(),
        from_time_ms: None,
    }
}

#[test]
fn commits_are_kept_highest_first_acknowledged_and_told() {
    let mut s = store();
    feed(&mut s, commit(1, 10));
    assert_eq!(
        sent(&mut s),
        vec![Message::CommitAck {
            to: C,
            store: ME,
            seq: 1
        }]
    );
    // A lower position changes nothing, but is acknowledged all the same.
    feed(&mut s, commit(2, 4));
    assert_eq!(sent(&mut s).len(), 1);
    feed(&mut s, get_positions(&["t", "other"]));
    assert_eq!(
        sent(&mut s),
        vec![Message::DirectPositions {
            to: C,
            store: ME,
            name: "app".into(),
            topics: vec!["t".into(), "other".into()],
            positions: vec![position(10)],
            more: false,
            from_time_ms: None,
        }]
    );
    // Another name holds nothing: the answer still covers the topic.
    feed(
        &mut s,
        Message::GetPositions {
            name: "other-app".into(),
            sender: C,
            topics: vec!["t".into()],
            from_time_ms: None,
        },
    );
    match sent(&mut s).as_slice() {
        [Message::DirectPositions {
            positions, more, ..
        }] => assert!(positions.is_empty() && !more),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_commit_that_cannot_be_kept_is_not_acknowledged() {
    let mut s = store();
    s.storage_mut().fail_next_write = true;
    feed(&mut s, commit(1, 10));
    assert!(sent(&mut s).is_empty());
}

/// A question about a time is answered from what is stored: per partition
/// the first offset at or after it, or the head + 1; the answer repeats
/// the time so the consumer knows which question it answers.
#[test]
fn a_time_question_gets_each_partitions_offset_at_that_time() {
    let mut s = store();
    for (offset, ts) in [(0, 1000), (1, 2000), (2, 3000)] {
        let mut r = rec(offset);
        r.timestamp_ms = Some(ts);
        feed(&mut s, Message::Record(r));
    }
    s.end_of_turn(Instant::now());
    sent(&mut s);
    let ask = |time| Message::GetPositions {
        name: String::new(),
        sender: C,
        topics: vec!["t".into()],
        from_time_ms: Some(time),
    };
    for (time, offset) in [(1500, 1), (3000, 2), (3001, 3)] {
        feed(&mut s, ask(time));
        assert_eq!(
            sent(&mut s),
            vec![Message::DirectPositions {
                to: C,
                store: ME,
                name: String::new(),
                topics: vec!["t".into()],
                positions: vec![position(offset)],
                more: false,
                from_time_ms: Some(time),
            }],
            "time {time}"
        );
    }
}

/// A FETCH from below what retention left is told the log start first,
/// then gets the records from there; a GET-HEADS answer carries it too.
#[test]
fn a_fetch_below_the_log_start_is_told_so_before_the_records() {
    let cfg = StoreConfig {
        retention_bytes: 1,
        retention_check: 1,
        ..at_once()
    };
    let t0 = Instant::now();
    let mut s = MemStore::new(ME, MemStorage::default(), cfg, t0).expect("new");
    s.drain(&mut Vec::new());
    for o in 0..5 {
        feed(&mut s, Message::Record(rec(o)));
    }
    s.end_of_turn(t0);
    sent(&mut s);
    // Retention runs at its check: with a 1-byte limit only the last
    // record stays.
    s.on_timeout(t0 + Duration::from_millis(5));
    sent(&mut s);
    assert_eq!(s.core().log_start("t", &P), 4);
    feed(&mut s, fetch_from(1));
    let got = sent(&mut s);
    assert!(
        matches!(&got[0], Message::DirectHead { to: C, head, log_start: 4, state: HeadState::Holds, .. } if head.offset == 4),
        "{got:?}"
    );
    assert!(matches!(&got[1..], [Message::DirectRecord { record, .. }] if record.offset == 4));
}

/// A scripted consumer's FETCH of ten records from `offset`.
fn fetch_from(offset: u64) -> Message {
    Message::Fetch(Fetch {
        topic: "t".into(),
        partition: P,
        offset,
        count: 10,
        sender: C,
    })
}

fn get_partitions(topic: Option<&str>) -> Message {
    Message::GetPartitions {
        sender: C,
        topic: topic.map(str::to_string),
    }
}

#[test]
fn an_admin_question_is_answered_from_storage_with_conflicts() {
    let mut s = store_holding(10);
    let other = Record {
        content: Bytes::from_static(b"another writer"),
        ..rec(5)
    };
    feed(&mut s, Message::Record(other));
    feed(&mut s, get_partitions(None));
    let got = sent(&mut s);
    let [Message::DirectPartitions {
        to: C,
        store: ME,
        partitions,
        more: false,
    }] = &got[..]
    else {
        panic!("one answer: {got:?}");
    };
    assert_eq!(partitions.len(), 1);
    let p = &partitions[0];
    assert_eq!((p.head, p.log_start, p.conflict_at), (9, 0, Some(5)));
    assert!(p.bytes > 0, "bytes as stored");
    // Another topic: an answer with none, so the asker knows it is all.
    feed(&mut s, get_partitions(Some("other")));
    assert!(matches!(
        &sent(&mut s)[..],
        [Message::DirectPartitions { partitions, more: false, .. }] if partitions.is_empty()
    ));
}

/// Every record a store receives is moved several times as an `Input`:
/// a rare answer (`StoreDone`) that grew past a message would make each
/// of those moves larger (it once doubled them, at a tenth of the
/// driver's samples at 100 B).
#[test]
fn an_input_is_no_larger_than_the_message_it_carries() {
    use dafka_protocol::machine::Input;
    let input = std::mem::size_of::<Input<StoreCommand, StoreDone>>();
    let message = std::mem::size_of::<Message>();
    assert!(
        input <= message + 8,
        "Input {input} bytes, Message {message}"
    );
}

/// The writes a store asks for, each completed at once, until it asks for
/// none (at most ten).
fn writes_until_idle(s: &mut StoreCore, t: Instant) -> Vec<Vec<Record>> {
    let mut writes = Vec::new();
    for _ in 0..10 {
        s.end_of_turn(t);
        let mut out = Vec::new();
        s.drain(&mut out);
        let Some(b) = out.into_iter().find_map(|o| match o {
            Output::Persist(StoreWork::Write(b)) => Some(b),
            _ => None,
        }) else {
            break;
        };
        writes.push(b);
        s.handle(Input::Done(StoreDone::Written(Ok(Vec::new()))), t);
    }
    writes
}

/// Small records count as a producer counts them (content and
/// RECORD_OVERHEAD): a write of 100 B records leaves most of a producer's
/// budget for the next write, not all of it.
#[test]
fn a_write_of_small_records_counts_their_overhead() {
    let t = Instant::now();
    let mut s = StoreCore::new(ME, Vec::new(), at_once(), t);
    s.drain(&mut Vec::new());
    let small = |offset: u64| Record {
        content: Bytes::from(vec![b'x'; 100]),
        ..rec(offset)
    };
    let count = (WRITE_BYTES / 100) as u64;
    for o in 0..count {
        s.handle(Input::Message(Message::Record(small(o))), t);
    }
    let lens: Vec<usize> = writes_until_idle(&mut s, t).iter().map(Vec::len).collect();
    let most = WRITE_BYTES / (100 + RECORD_OVERHEAD);
    assert!(
        lens[0] <= most && lens[0] > most / 2,
        "{lens:?}, at most {most}"
    );
    assert_eq!(
        lens.iter().sum::<usize>() as u64,
        count,
        "all written: {lens:?}"
    );
}

/// A batch past WRITE_BYTES is written in pieces, and what stays behind
/// is counted right: after the pieces, a small record waits again. A
/// record larger than a write goes alone.
#[test]
fn a_batch_past_the_write_limit_goes_in_pieces_and_keeps_its_count() {
    use dafka_protocol::tuning::WRITE_BYTES;
    let t = Instant::now();
    let mut s = MemStore::new(ME, MemStorage::default(), StoreConfig::default(), t).expect("new");
    s.on_timeout(t);
    sent(&mut s);
    let sized = |offset: u64, len: usize| Record {
        content: Bytes::from(vec![b'x'; len]),
        ..rec(offset)
    };
    let acks = |s: &mut MemStore| -> Vec<u64> {
        sent(s)
            .into_iter()
            .filter_map(|m| match m {
                Message::Ack(a) => Some(a.offset),
                _ => None,
            })
            .collect()
    };
    // Three of 3/8 of a write: the first write takes two.
    for offset in 0..3 {
        feed(&mut s, Message::Record(sized(offset, 3 * WRITE_BYTES / 8)));
    }
    s.end_of_turn(t);
    assert_eq!(acks(&mut s).last(), Some(&2), "all written, in pieces");
    feed(&mut s, Message::Record(rec(3)));
    s.end_of_turn(t);
    assert_eq!(acks(&mut s), [], "a small record after them waits");
    // One record larger than a write, then a small one: the large one
    // goes alone, and the small one is counted as small.
    let mut l = MemStore::new(ME, MemStorage::default(), StoreConfig::default(), t).expect("new");
    l.on_timeout(t);
    sent(&mut l);
    feed(&mut l, Message::Record(sized(0, WRITE_BYTES + 1)));
    feed(&mut l, Message::Record(rec(1)));
    l.end_of_turn(t);
    assert_eq!(acks(&mut l), [0], "the large record alone");
}
