use super::*;
use bytes::Bytes;
use dafka_protocol::Machine;

const ME: NodeId = NodeId([0xC; 16]);
const P: NodeId = NodeId([0x1; 16]);
const S: NodeId = NodeId([0x5; 16]);

fn consumer(reset: OffsetReset) -> ConsumerCore {
    let cfg = ConsumerConfig {
        offset_reset: reset,
        ..Default::default()
    };
    let mut c = ConsumerCore::new(ME, cfg, Instant::now());
    c.subscribe("t", Instant::now());
    c
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

fn feed(c: &mut ConsumerCore, m: Message) {
    c.handle(Input::Message(m), Instant::now());
}

fn sent(c: &mut ConsumerCore) -> Vec<Message> {
    c.take_outbox()
        .into_iter()
        .filter_map(|o| {
            if let Output::Send(m) = o {
                Some(m)
            } else {
                None
            }
        })
        .collect()
}

fn delivered(c: &mut ConsumerCore) -> Vec<u64> {
    c.take_ready().map(|r| r.offset).collect()
}

#[test]
fn subscribing_with_earliest_asks_stores_for_heads() {
    let mut c = consumer(OffsetReset::Earliest);
    assert_eq!(
        sent(&mut c),
        [Message::GetHeads {
            topic: "t".into(),
            sender: ME,
            partition: None,
        }]
    );
    let mut l = consumer(OffsetReset::Latest);
    assert!(sent(&mut l).is_empty());
}

#[test]
fn latest_starts_at_the_first_record_seen() {
    let mut c = consumer(OffsetReset::Latest);
    feed(&mut c, Message::Record(rec(7)));
    feed(&mut c, Message::Record(rec(8)));
    assert_eq!(delivered(&mut c), [7, 8]);
    assert!(sent(&mut c).is_empty(), "nothing older is fetched");
}

#[test]
fn earliest_fetches_from_zero_on_a_direct_head() {
    let mut c = consumer(OffsetReset::Earliest);
    sent(&mut c);
    let head = Head {
        topic: "t".into(),
        partition: P,
        offset: 4,
    };
    feed(
        &mut c,
        Message::DirectHead {
            to: ME,
            head,
            store: None,
            state: HeadState::Holds,
            log_start: 0,
        },
    );
    assert!(
        matches!(&sent(&mut c)[..], [Message::Fetch(f)] if f.offset == 0 && f.count == 5 && f.sender == ME)
    );
    for o in 0..5 {
        feed(
            &mut c,
            Message::DirectRecord {
                to: ME,
                record: rec(o),
            },
        );
    }
    assert_eq!(delivered(&mut c), [0, 1, 2, 3, 4]);
}

#[test]
fn a_gap_is_fetched_once_and_records_ahead_are_kept() {
    let mut c = consumer(OffsetReset::Latest);
    feed(&mut c, Message::Record(rec(0)));
    feed(&mut c, Message::Record(rec(3)));
    feed(&mut c, Message::Record(rec(4)));
    let fetches = sent(&mut c);
    assert!(
        matches!(&fetches[..], [Message::Fetch(f)] if f.offset == 1 && f.count == 2),
        "{fetches:?}"
    );
    feed(
        &mut c,
        Message::DirectRecord {
            to: ME,
            record: rec(1),
        },
    );
    feed(
        &mut c,
        Message::DirectRecord {
            to: ME,
            record: rec(2),
        },
    );
    assert_eq!(
        delivered(&mut c),
        [0, 1, 2, 3, 4],
        "3 and 4 were not fetched again"
    );
}

#[test]
fn duplicates_from_store_and_producer_are_delivered_once() {
    let mut c = consumer(OffsetReset::Latest);
    feed(&mut c, Message::Record(rec(0)));
    feed(&mut c, Message::Record(rec(2)));
    for _ in 0..2 {
        feed(
            &mut c,
            Message::DirectRecord {
                to: ME,
                record: rec(1),
            },
        );
        feed(&mut c, Message::Record(rec(2)));
    }
    assert_eq!(delivered(&mut c), [0, 1, 2]);
}

#[test]
fn a_head_past_the_last_record_triggers_a_fetch_and_retries() {
    let mut c = consumer(OffsetReset::Latest);
    let t = Instant::now();
    c.handle(Input::Message(Message::Record(rec(0))), t);
    c.handle(
        Input::Message(Message::Head(Head {
            topic: "t".into(),
            partition: P,
            offset: 2,
        })),
        t,
    );
    assert!(matches!(&sent(&mut c)[..], [Message::Fetch(f)] if f.offset == 1 && f.count == 2));
    c.on_timeout(t + Duration::from_millis(100));
    assert!(
        sent(&mut c).is_empty(),
        "not again before the retry interval"
    );
    c.on_timeout(t + Duration::from_millis(600));
    assert!(matches!(&sent(&mut c)[..], [Message::Fetch(f)] if f.offset == 1));
}

#[test]
fn a_node_that_starts_listening_for_fetches_is_asked_at_once() {
    let mut c = consumer(OffsetReset::Latest);
    let t = Instant::now();
    c.handle(Input::Message(Message::Record(rec(0))), t);
    c.handle(Input::Message(Message::Record(rec(3))), t);
    assert!(matches!(&sent(&mut c)[..], [Message::Fetch(f)] if f.offset == 1 && f.count == 2));
    // The FETCH above may have gone out before the producer subscribed.
    let other = NodeId([0x2; 16]);
    c.handle(
        Input::Subscribed(routing::node_key(MessageId::Fetch, &other)),
        t,
    );
    assert!(sent(&mut c).is_empty(), "another partition's producer");
    c.handle(
        Input::Subscribed(routing::node_key(MessageId::Fetch, &P)),
        t,
    );
    assert!(
        matches!(&sent(&mut c)[..], [Message::Fetch(f)] if f.offset == 1 && f.count == 2),
        "the partition's producer is asked without waiting for the retry"
    );
    c.handle(Input::Subscribed(routing::any_key(MessageId::Fetch)), t);
    assert!(
        matches!(&sent(&mut c)[..], [Message::Fetch(f)] if f.offset == 1),
        "so is a store that joins"
    );
    c.handle(Input::Message(Message::Record(rec(1))), t);
    c.handle(Input::Message(Message::Record(rec(2))), t);
    sent(&mut c);
    c.handle(Input::Subscribed(routing::any_key(MessageId::Fetch)), t);
    assert!(sent(&mut c).is_empty(), "no gap, nothing to ask");
}

#[test]
fn answers_store_hello_with_its_topics() {
    let mut c = consumer(OffsetReset::Earliest);
    c.subscribe("u", Instant::now());
    sent(&mut c);
    feed(&mut c, Message::StoreHello { to: ME, store: S });
    let want = Message::ConsumerHello {
        to: S,
        consumer: ME,
        topics: vec!["t".into(), "u".into()],
    };
    assert_eq!(sent(&mut c), [want]);
    c.handle(
        Input::Subscribed(routing::node_key(MessageId::ConsumerHello, &S)),
        Instant::now(),
    );
    assert_eq!(
        sent(&mut c).len(),
        1,
        "a store that connects to us is greeted too"
    );
}

#[test]
fn ignores_unsubscribed_topics_and_other_consumers_direct_messages() {
    let mut c = consumer(OffsetReset::Latest);
    feed(
        &mut c,
        Message::Record(Record {
            topic: "other".into(),
            ..rec(0)
        }),
    );
    feed(
        &mut c,
        Message::DirectRecord {
            to: S,
            record: rec(0),
        },
    );
    assert!(delivered(&mut c).is_empty());
    c.unsubscribe("t");
    feed(&mut c, Message::Record(rec(0)));
    assert!(delivered(&mut c).is_empty());
}

#[test]
fn earliest_refreshes_heads_so_a_vanished_producer_is_still_found() {
    let mut c = consumer(OffsetReset::Earliest);
    let t = Instant::now();
    sent(&mut c);
    c.on_timeout(t + Duration::from_millis(5001));
    assert_eq!(
        sent(&mut c),
        [Message::GetHeads {
            topic: "t".into(),
            sender: ME,
            partition: None,
        }]
    );
    let mut l = consumer(OffsetReset::Latest);
    l.on_timeout(t + Duration::from_millis(5001));
    assert!(sent(&mut l).is_empty());
}

#[test]
fn a_gap_a_store_cannot_read_is_reported_with_its_reason_until_repaired() {
    let mut c = consumer(OffsetReset::Earliest);
    sent(&mut c);
    let store = NodeId([0x5; 16]);
    let head = Head {
        topic: "t".into(),
        partition: P,
        offset: 4,
    };
    let state = HeadState::Unreadable {
        from: 0,
        reason: "Corruption: block checksum mismatch".into(),
    };
    feed(
        &mut c,
        Message::DirectHead {
            to: ME,
            head,
            store: Some(store),
            state,
            log_start: 0,
        },
    );
    assert!(
        matches!(&sent(&mut c)[..], [Message::Fetch(f)] if f.offset == 0),
        "the other stores and the producer are asked"
    );
    let gaps = c.gaps();
    assert_eq!(gaps.len(), 1);
    assert_eq!((gaps[0].from, gaps[0].to), (0, 5));
    let (who, why) = gaps[0].unreadable.clone().expect("a reason");
    assert_eq!(who, Some(store));
    assert!(why.contains("checksum"), "{why}");
    for o in 0..5 {
        feed(&mut c, Message::Record(rec(o)));
    }
    assert_eq!(delivered(&mut c), [0, 1, 2, 3, 4]);
    assert!(c.gaps().is_empty(), "repaired by another source");
}

#[test]
fn an_empty_direct_head_creates_no_partition() {
    let mut c = consumer(OffsetReset::Earliest);
    sent(&mut c);
    let head = Head {
        topic: "t".into(),
        partition: P,
        offset: 0,
    };
    let m = Message::DirectHead {
        to: ME,
        head,
        store: None,
        state: HeadState::Empty,
        log_start: 0,
    };
    feed(&mut c, m);
    assert!(sent(&mut c).is_empty());
    assert!(c.gaps().is_empty());
    assert_eq!(c.position("t", &P), None);
}

fn head_with_log_start(offset: u64, log_start: u64) -> Message {
    Message::DirectHead {
        to: ME,
        head: Head {
            topic: "t".into(),
            partition: P,
            offset,
        },
        store: Some(S),
        state: HeadState::Holds,
        log_start,
    }
}

/// Retention deleted offsets 0 to 5: `earliest` moves on to the log start
/// (records held past the gap are delivered), `latest` past the head; a
/// consumer already past the log start is not moved.
#[test]
fn a_log_start_above_the_next_offset_moves_the_partition_on_as_offset_reset_says() {
    let mut c = consumer(OffsetReset::Earliest);
    feed(&mut c, head_with_log_start(3, 0));
    sent(&mut c);
    feed(&mut c, Message::Record(rec(7)));
    feed(&mut c, head_with_log_start(8, 6));
    let fetches: Vec<u64> = sent(&mut c)
        .iter()
        .filter_map(|m| match m {
            Message::Fetch(f) => Some(f.offset),
            _ => None,
        })
        .collect();
    assert_eq!(fetches, [6], "the gap left is 6 and 8");
    feed(
        &mut c,
        Message::DirectRecord {
            to: ME,
            record: rec(6),
        },
    );
    assert_eq!(delivered(&mut c), [6, 7]);
    // Already past it: nothing changes.
    feed(&mut c, head_with_log_start(8, 2));
    assert!(c.gaps().iter().all(|g| g.from == 8));

    let mut l = consumer(OffsetReset::Latest);
    feed(&mut l, Message::Record(rec(2)));
    feed(&mut l, head_with_log_start(3, 0));
    assert_eq!(delivered(&mut l), [2]);
    sent(&mut l);
    // The consumer still waits for 3 when the store says 0 to 9 are gone.
    feed(&mut l, head_with_log_start(12, 10));
    feed(&mut l, Message::Record(rec(13)));
    assert_eq!(delivered(&mut l), [13], "latest resumes after the head");
}

/// The records a turn made ready leave as one delivery, after what the
/// turn sends, in order; a turn with none adds no empty delivery.
#[test]
fn a_turns_ready_records_are_delivered_together_after_its_messages() {
    let mut c = consumer(OffsetReset::Latest);
    for offset in [5, 7, 6] {
        feed(&mut c, Message::Record(rec(offset)));
    }
    let mut out = Vec::new();
    c.drain(&mut out);
    let Some(Output::Deliver(ConsumerDelivery::Records(last))) = out.pop() else {
        panic!("the ready records come last, together");
    };
    assert_eq!(last.iter().map(|r| r.offset).collect::<Vec<_>>(), [5, 6, 7]);
    assert!(out
        .iter()
        .all(|o| !matches!(o, Output::Deliver(ConsumerDelivery::Records(_)))));
    let mut again = Vec::new();
    c.drain(&mut again);
    assert!(again.is_empty(), "nothing new: {again:?}");
}

#[test]
fn a_delivered_buffer_handed_back_takes_a_later_turns_records() {
    let mut c = consumer(OffsetReset::Latest);
    let records_of = |c: &mut ConsumerCore, offsets: std::ops::Range<u64>| {
        offsets.for_each(|o| feed(c, Message::Record(rec(o))));
        let mut out = Vec::new();
        c.drain(&mut out);
        match out.pop() {
            Some(Output::Deliver(ConsumerDelivery::Records(v))) => v,
            other => panic!("records expected, got {other:?}"),
        }
    };
    let mut first = records_of(&mut c, 0..100);
    let (at, room) = (first.as_ptr(), first.capacity());
    first.clear();
    c.reuse(ConsumerDelivery::Records(first));
    // Turn two fills the buffer made at the end of turn one; turn three
    // fills the one handed back.
    let second = records_of(&mut c, 100..150);
    let third = records_of(&mut c, 150..160);
    assert_eq!(second.first().map(|r| r.offset), Some(100));
    assert_eq!(
        third.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (150..160).collect::<Vec<_>>()
    );
    assert_eq!(
        (third.as_ptr(), third.capacity()),
        (at, room),
        "the same allocation"
    );
}
