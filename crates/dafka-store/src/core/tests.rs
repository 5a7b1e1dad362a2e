use super::*;
use crate::storage::MemStorage;
use bytes::Bytes;

const ME: NodeId = NodeId([0x5; 16]);
const P: NodeId = NodeId([0x1; 16]);
const C: NodeId = NodeId([0xC; 16]);

fn store() -> StoreCore<MemStorage> {
    let mut s = StoreCore::new(
        ME,
        MemStorage::default(),
        StoreConfig::default(),
        Instant::now(),
    )
    .expect("new");
    s.drain(&mut Vec::new());
    s
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

fn feed(s: &mut StoreCore<MemStorage>, m: Message) {
    s.on_event(Event::Message(m), Instant::now());
}

fn sent(s: &mut StoreCore<MemStorage>) -> Vec<Message> {
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
    s.flush();
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
    s.flush();
    assert!(sent(&mut s).is_empty());
    assert_eq!(s.write_errors(), 1);
    feed(&mut s, Message::Record(rec(1)));
    let fetches = sent(&mut s);
    assert!(matches!(&fetches[..], [Message::Fetch(f)] if f.offset == 0 && f.count == 1));
}

#[test]
fn drops_duplicates() {
    let mut s = store();
    feed(&mut s, Message::Record(rec(0)));
    s.flush();
    sent(&mut s);
    feed(&mut s, Message::Record(rec(0)));
    s.flush();
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
    s.flush();
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
    s.flush();
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
    s.flush();
    sent(&mut s);
    feed(
        &mut s,
        Message::GetHeads {
            topic: "t".into(),
            sender: C,
        },
    );
    let heads = sent(&mut s);
    assert_eq!(heads.len(), 2);
    assert!(heads
        .iter()
        .all(|m| matches!(m, Message::DirectHead { to, head } if *to == C && head.topic == "t")));
    feed(
        &mut s,
        Message::ConsumerHello {
            to: ME,
            consumer: C,
            topics: vec!["t".into(), "other".into()],
        },
    );
    assert_eq!(sent(&mut s).len(), 3);
}

#[test]
fn greets_a_consumer_that_subscribes_and_re_acks_a_returning_producer() {
    let mut s = store();
    s.on_event(
        Event::Subscribed(routing::node_key(MessageId::StoreHello, &C)),
        Instant::now(),
    );
    assert_eq!(sent(&mut s), [Message::StoreHello { to: C, store: ME }]);
    feed(&mut s, Message::Record(rec(0)));
    s.flush();
    sent(&mut s);
    s.on_event(
        Event::Subscribed(routing::node_key(MessageId::Ack, &P)),
        Instant::now(),
    );
    assert!(matches!(&sent(&mut s)[..], [Message::Ack(a)] if a.offset == 0));
}

#[test]
fn resumes_partitions_from_storage() {
    let mut mem = MemStorage::default();
    mem.write(&[rec(0), rec(1)]).expect("write");
    let mut s = StoreCore::new(ME, mem, StoreConfig::default(), Instant::now()).expect("new");
    sent(&mut s);
    assert_eq!(s.stored("t", &P), Some(1));
    feed(&mut s, Message::Record(rec(2)));
    s.flush();
    assert!(matches!(&sent(&mut s)[..], [Message::Ack(a)] if a.offset == 2));
}
